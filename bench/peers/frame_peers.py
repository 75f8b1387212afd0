"""Length-prefixed frame servers on asyncio (optionally uvloop): the peers a
Python user would write, each calling ``bench.handlers.frame_handler`` once
per frame, as fastnet's ``--protocol frame --handler`` does.

    python -m bench.peers.frame_peers PORT --api protocol|streams [--uvloop]

Frames are a 4-byte big-endian length, then the payload (at most 16 MiB,
fastnet's default limit: a larger declared length closes the connection).
Prints "listening PORT" once ready; exits 0 on SIGTERM or SIGINT.

protocol: asyncio.Protocol with an incremental buffer. Frames are cut from
    each chunk that arrives by offset, without copying the chunk; only an
    unfinished frame is kept, in a bytearray that grows until the frame is
    complete (so a big frame arriving in many chunks costs O(its size)).
    The replies to one chunk leave in one ``transport.write``.
streams: asyncio streams, ``readexactly`` for the header and the payload,
    one ``writer.write`` per reply, ``drain`` only when output backs up.
"""
from __future__ import annotations

import asyncio
import struct
from typing import Any, Optional

from bench.handlers import frame_handler
from bench.peers._asyncio_server import main

MAX_FRAME = 16 * 1024 * 1024
HEADER = struct.Struct(">I")


class FrameProtocol(asyncio.Protocol):
    """One connection: frames in, frame_handler per frame, framed replies out."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.partial = bytearray()  # an unfinished frame (header included)
        self.need = 0               # bytes `partial` must hold to be looked at again

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        partial = self.partial
        if partial:
            partial += data
            if len(partial) < self.need:
                return
            data = bytes(partial)
            partial.clear()
        unpack_from, pack, handler = HEADER.unpack_from, HEADER.pack, frame_handler
        out = []
        pos, end = 0, len(data)
        while end - pos >= 4:
            (size,) = unpack_from(data, pos)
            if size > MAX_FRAME:
                self.transport.close()  # type: ignore[union-attr]
                return
            stop = pos + 4 + size
            if stop > end:
                self.need = 4 + size
                break
            reply = handler(None, data[pos + 4:stop])
            out.append(pack(len(reply)))
            out.append(reply)
            pos = stop
        else:
            self.need = 4
        if out:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]
        if pos < end:
            partial += memoryview(data)[pos:]


async def handle_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One connection on the streams API."""
    transport: Any = writer.transport
    try:
        while True:
            (size,) = HEADER.unpack(await reader.readexactly(4))
            if size > MAX_FRAME:
                break
            reply = frame_handler(None, await reader.readexactly(size))
            writer.write(HEADER.pack(len(reply)) + reply)
            if transport.get_write_buffer_size():
                await writer.drain()  # only waits when output is backing up
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


if __name__ == "__main__":
    main(__doc__, FrameProtocol, handle_stream)
