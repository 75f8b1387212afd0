"""Helpers of the HTTP tests: an HttpServer in a thread, raw-socket reads."""
from __future__ import annotations

import contextlib
import socket
from typing import Any, Iterator, Optional

import h11

from fastnet.http import HttpServer
from helpers import GUARD, require_engine, serving


@contextlib.contextmanager
def running_http(engine: str, handler: Any = None,
                 **options: Any) -> Iterator[tuple[HttpServer, int]]:
    """An HttpServer serving handler (None: the kata) on a free port."""
    require_engine(engine)
    server = HttpServer(engine=engine, **options)
    listener = server.listen("127.0.0.1", 0, protocol="http", handler=handler)
    with serving(server):
        yield server, listener.port


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=GUARD)


class Reader:
    """Reads responses off a raw socket: heads to the blank line, bodies by
    Content-Length or chunked (the tests' own small parser, independent of
    fastnet.codec)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            assert self._more(), f"connection closed before {marker!r}: {self.buf!r}"
        out, self.buf = self.buf.split(marker, 1)
        return out

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            assert self._more(), "connection closed inside a body"
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body)."""
        lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        version, status, *_ = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        if head_only or int(status) < 200 or int(status) in (204, 304):
            return int(status), headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if not size:
                    self._until(b"\r\n")
                    return int(status), headers, body
                body += self._exactly(size)
                assert self._exactly(2) == b"\r\n"
        if "content-length" in headers:
            return int(status), headers, self._exactly(int(headers["content-length"]))
        while self._more():
            pass
        body, self.buf = self.buf, b""
        return int(status), headers, body

    def closed(self) -> bool:
        """True if the peer closes with nothing more to read."""
        return not self.buf and not self._more()


def request(method: str = "GET", target: str = "/", *fields: str, body: bytes = b"",
            version: str = "HTTP/1.1", host: Optional[str] = "x") -> bytes:
    head = f"{method} {target} {version}\r\n"
    if host is not None:
        head += f"Host: {host}\r\n"
    head += "".join(f + "\r\n" for f in fields)
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


def h11_response(client: h11.Connection, sock: socket.socket) -> tuple[int, bytes]:
    """The next response as h11 reads it off sock: (status, body)."""
    status, body = 0, b""
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, body
