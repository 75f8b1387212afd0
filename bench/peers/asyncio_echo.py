"""A raw echo server on asyncio (optionally on uvloop): the peer a Python user
would otherwise write, on either of asyncio's two APIs.

    python -m bench.peers.asyncio_echo PORT [--api protocol|streams] [--uvloop]

protocol: an asyncio.Protocol whose data_received writes the data back.
streams: asyncio.start_server, a coroutine per connection doing
read(64 KiB) / write / drain. Prints "listening PORT" once ready; exits 0 on
SIGTERM or SIGINT.
"""
from __future__ import annotations

import argparse
import asyncio
import signal

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


async def main(port: int, api: str) -> None:
    loop = asyncio.get_running_loop()
    if api == "protocol":
        server = await loop.create_server(Echo, "127.0.0.1", port, backlog=1024)
    else:
        server = await asyncio.start_server(echo_stream, "127.0.0.1", port, backlog=1024)
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("--api", choices=("protocol", "streams"), default="protocol")
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    asyncio.run(main(args.port, args.api))
