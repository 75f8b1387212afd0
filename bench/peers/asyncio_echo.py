"""A raw echo server on asyncio (optionally on uvloop): the peer a Python user
would otherwise write, on either of asyncio's two APIs.

    python -m bench.peers.asyncio_echo PORT [--api protocol|streams] [--uvloop]

protocol: an asyncio.Protocol whose data_received writes the data back.
streams: asyncio.start_server, a coroutine per connection doing
read(64 KiB) / write / drain. Prints "listening PORT" once ready; exits 0 on
SIGTERM or SIGINT.
"""
from __future__ import annotations

import asyncio

from bench.peers._asyncio_server import main

READ_SIZE = 64 * 1024


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


if __name__ == "__main__":
    main(__doc__, Echo, echo_stream)
