"""Small clients: whole messages in, whole messages out, synchronous
(:func:`connect`) or asyncio (:func:`open_connection`).

>>> with fastnet.connect("127.0.0.1", 9000, protocol="frame") as c:
...     c.send(b"hello")
...     c.recv()
b'hello'

>>> conn = await fastnet.open_connection("127.0.0.1", 9000, protocol="frame")
>>> await conn.send(b"hello")
>>> await conn.recv()
b'hello'

It frames with the active codec twin (C when available), so what it sends
is exactly what the servers expect.
"""
from __future__ import annotations

import socket
import time
import asyncio
from typing import Any, Optional

from . import codec, limits
from .errors import ConnectionClosed
from .server.protocols import get

_RECV_CHUNK = 256 * 1024


class _Framing:
    """How a protocol unit's messages are framed, on the client's side:
    encode() one message, and the decoder of the incoming stream (None for
    raw protocols, where a message is whatever arrived)."""

    def __init__(self, protocol: str, max_frame: int, max_line: int, bare_lf: bool,
                 frame_header: str) -> None:
        spec = get(protocol).spec
        self.probe, self.probe_reply = spec.probe, spec.probe_reply or b""
        self.framing = spec.framing
        if self.framing == "be32" and frame_header == "varint":
            self.framing = "varint"
        self.decoder: Optional[Any]
        if self.framing == "raw":
            self.decoder = None
        elif self.framing == "line":
            self.decoder = codec.new_decoder("line", max_line, bare_lf)
        else:
            self.decoder = codec.new_decoder(self.framing, max_frame)

    def encode(self, message: bytes) -> bytes:
        if self.framing == "line":
            return codec.encode_line(message)
        if self.framing == "raw":
            return message
        return codec.encode_frame(message, self.framing)


class Client:
    """A blocking connection speaking one of fastnet's protocols.

    protocol: "echo" (raw bytes: ``recv`` returns whatever arrived),
    "frame" (length-prefixed messages) or "line" ("\\r\\n"-terminated lines),
    or any other registered protocol (``fastnet.server.units()``): its
    unit's spec says how messages are framed. On a protocol with a
    keep-alive probe, ``recv`` answers the server's probes on its own.
    """

    def __init__(self, sock: socket.socket, protocol: str = "frame", *,
                 max_frame: int = limits.DEFAULT_MAX_FRAME,
                 max_line: int = limits.DEFAULT_MAX_LINE,
                 bare_lf: bool = False, frame_header: str = "be32") -> None:
        framing = _Framing(protocol, max_frame, max_line, bare_lf, frame_header)
        self.sock = sock
        self.protocol = protocol
        self._framing = framing
        self._probe, self._probe_reply = framing.probe, framing.probe_reply
        self._decoder = framing.decoder

    def send(self, message: bytes) -> None:
        """Send one message, framed for the protocol."""
        self.sock.sendall(self._framing.encode(message))

    def write(self, data: bytes) -> None:
        """Send raw bytes, as they are."""
        self.sock.sendall(data)

    def recv(self) -> bytes:
        """Return the next whole message (raw protocol: the next bytes that
        arrive). Raises ConnectionClosed if the peer closes first, and the
        codec's ProtocolError if the peer's framing is bad. On a protocol
        with a probe, the socket's timeout bounds the whole call: answering
        the server's probes does not extend it."""
        if self._decoder is None:
            data = self.sock.recv(_RECV_CHUNK)
            if not data:
                raise ConnectionClosed("connection closed by peer")
            return data
        timeout = self.sock.gettimeout()
        deadline = time.monotonic() + timeout if self._probe is not None and timeout else None
        try:
            while True:
                message = self._decoder.next_message()
                if message is not None:
                    if self._probe is not None and message == self._probe:
                        self.send(self._probe_reply)  # keep-alive: answer, keep waiting
                        continue
                    return message
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise socket.timeout("timed out")
                    self.sock.settimeout(remaining)
                data = self.sock.recv(_RECV_CHUNK)
                if not data:
                    raise ConnectionClosed(
                        f"connection closed by peer ({self._decoder.buffered} bytes of a partial message)")
                self._decoder.feed(data)
        finally:
            if deadline is not None:
                self.sock.settimeout(timeout)

    def recv_exactly(self, n: int) -> bytes:
        """Raw protocol: return exactly n bytes."""
        if self._decoder is not None:
            raise ValueError("recv_exactly is for the raw 'echo' protocol; use recv()")
        chunks, have = [], 0
        while have < n:
            data = self.sock.recv(min(_RECV_CHUNK, n - have))
            if not data:
                raise ConnectionClosed(f"connection closed by peer after {have} of {n} bytes")
            chunks.append(data)
            have += len(data)
        return b"".join(chunks)

    def shutdown_write(self) -> None:
        """Half-close: tell the server nothing more will be sent."""
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(host: str = "127.0.0.1", port: int = 9000, protocol: str = "frame", *,
            timeout: Optional[float] = 10.0, **options: object) -> Client:
    """Connect to a fastnet server (or anything speaking the protocol).

    ``timeout`` applies to the connect and to every later send/recv (None
    blocks forever). Other options (max_frame, max_line, bare_lf,
    frame_header) are passed to :class:`Client`.
    """
    get(protocol)  # an unknown protocol fails before connecting
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Client(sock, protocol, **options)  # type: ignore[arg-type]


class AsyncClient:
    """An asyncio connection speaking one of fastnet's protocols, framed
    as :class:`Client` frames (from the protocol's registered unit). Made
    by :func:`open_connection`; ``async with`` closes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 protocol: str = "frame", *, max_frame: int = limits.DEFAULT_MAX_FRAME,
                 max_line: int = limits.DEFAULT_MAX_LINE, bare_lf: bool = False,
                 frame_header: str = "be32") -> None:
        self._framing = _Framing(protocol, max_frame, max_line, bare_lf, frame_header)
        self.protocol = protocol
        self.reader, self.writer = reader, writer

    async def send(self, message: bytes) -> None:
        """Send one message, framed for the protocol (waits while the
        socket's buffer is full)."""
        self.writer.write(self._framing.encode(message))
        await self.writer.drain()

    async def write(self, data: bytes) -> None:
        """Send raw bytes, as they are."""
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self) -> bytes:
        """The next whole message (raw protocol: the next bytes that
        arrive). ConnectionClosed if the peer closes first; the codec's
        ProtocolError if its framing is bad. Server probes are answered."""
        decoder = self._framing.decoder
        if decoder is None:
            data = await self.reader.read(_RECV_CHUNK)
            if not data:
                raise ConnectionClosed("connection closed by peer")
            return data
        probe = self._framing.probe
        while True:
            message = decoder.next_message()
            if message is not None:
                if probe is not None and message == probe:
                    await self.send(self._framing.probe_reply)
                    continue
                return message  # type: ignore[no-any-return]
            data = await self.reader.read(_RECV_CHUNK)
            if not data:
                raise ConnectionClosed(
                    f"connection closed by peer ({decoder.buffered} bytes of a partial message)")
            decoder.feed(data)

    def shutdown_write(self) -> None:
        """Half-close: tell the server nothing more will be sent."""
        if self.writer.can_write_eof():
            self.writer.write_eof()

    async def close(self) -> None:
        """Close the connection and wait until it is closed."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass  # the peer reset it: closed all the same

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_connection(host: str = "127.0.0.1", port: int = 9000, protocol: str = "frame",
                          **options: Any) -> AsyncClient:
    """Connect from asyncio to a fastnet server (or anything speaking the
    protocol): ``await conn.send(msg)``, ``await conn.recv()``. Options
    (max_frame, max_line, bare_lf, frame_header) as for :func:`connect`;
    bound waits with ``asyncio.wait_for``/``asyncio.timeout``."""
    get(protocol)  # an unknown protocol fails before connecting
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return AsyncClient(reader, writer, protocol, **options)
