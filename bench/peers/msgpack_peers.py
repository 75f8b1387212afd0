"""The peer a user would write instead of the wire protocol: asyncio (or
uvloop) streams, a 4-byte big-endian length prefix, msgpack bodies, the
same echo handler (``bench.handlers.wire_handler``) per request.

    python -m bench.peers.msgpack_peers PORT --api streams [--uvloop]

Prints "listening PORT" once ready; exits 0 on SIGTERM or SIGINT. Only the
streams API exists (``--api protocol`` is refused): this is the peer the
issue names.
"""
from __future__ import annotations

import asyncio
import struct
import sys
from typing import Any

import msgpack

from bench.handlers import wire_handler
from bench.peers._asyncio_server import main

MAX_FRAME = 16 * 1024 * 1024
HEADER = struct.Struct(">I")


async def handle_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One connection: length, msgpack body, handler, msgpack reply."""
    transport: Any = writer.transport
    try:
        while True:
            (size,) = HEADER.unpack(await reader.readexactly(4))
            if size > MAX_FRAME:
                break
            request = msgpack.unpackb(await reader.readexactly(size))
            reply = msgpack.packb(wire_handler(request))
            writer.write(HEADER.pack(len(reply)) + reply)
            if transport.get_write_buffer_size():
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


class _NoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sys.exit("msgpack_peers has only --api streams")


if __name__ == "__main__":
    main(__doc__, _NoProtocol, handle_stream)
