"""A small synchronous client: whole messages in, whole messages out.

>>> with fastnet.connect("127.0.0.1", 9000, protocol="frame") as c:
...     c.send(b"hello")
...     c.recv()
b'hello'

It frames with the active codec twin (C when available), so what it sends
is exactly what the servers expect.
"""
from __future__ import annotations

import socket
import time
from typing import Optional

from . import codec, limits
from .errors import ConnectionClosed
from .server.protocols import PROTOCOLS

_RECV_CHUNK = 256 * 1024


class Client:
    """A blocking connection speaking one of fastnet's protocols.

    protocol: "echo" (raw bytes: ``recv`` returns whatever arrived),
    "frame" (length-prefixed messages) or "line" ("\\r\\n"-terminated lines),
    or any other name in ``fastnet.server.PROTOCOLS``. On a protocol with a
    keep-alive probe, ``recv`` answers the server's probes on its own.
    """

    def __init__(self, sock: socket.socket, protocol: str = "frame", *,
                 max_frame: int = limits.DEFAULT_MAX_FRAME,
                 max_line: int = limits.DEFAULT_MAX_LINE,
                 bare_lf: bool = False, frame_header: str = "be32") -> None:
        try:
            spec = PROTOCOLS[protocol]
        except KeyError:
            raise ValueError(f"unknown protocol {protocol!r}; "
                             f"choose from {sorted(PROTOCOLS)}") from None
        self.sock = sock
        self.protocol = protocol
        self._probe, self._probe_reply = spec.probe, spec.probe_reply or b""
        self._framing = spec.framing
        if self._framing == "be32" and frame_header == "varint":
            self._framing = "varint"
        if self._framing == "raw":
            self._decoder = None
        elif self._framing == "line":
            self._decoder = codec.new_decoder("line", max_line, bare_lf)
        else:
            self._decoder = codec.new_decoder(self._framing, max_frame)

    def send(self, message: bytes) -> None:
        """Send one message, framed for the protocol."""
        if self._framing == "line":
            self.sock.sendall(codec.encode_line(message))
        elif self._framing == "raw":
            self.sock.sendall(message)
        else:
            self.sock.sendall(codec.encode_frame(message, self._framing))

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
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Client(sock, protocol, **options)  # type: ignore[arg-type]
