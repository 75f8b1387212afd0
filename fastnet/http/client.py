"""An HTTP/1.1 client: ``get(url)`` for one request, :class:`Client` for
many (a small keep-alive pool per host), on blocking sockets.

It speaks what the server side does, with the same codec (heads parsed in
place, chunked bodies) and the same state machine. getaddrinfo picks the
addresses (IPv4 and IPv6, each tried in turn); redirects come back as they
are unless ``follow_redirects``; every socket operation has the Client's
timeout. Only ``http://`` URLs (no TLS).
"""
from __future__ import annotations

import socket
from typing import Any, Iterable, Mapping, Optional, Union
from urllib.parse import urljoin, urlsplit

from .. import limits
from ..codec import http1
from ..codec.http1 import ConnectionState, Event, Role
from ..errors import ConnectionClosed, HttpBodyTooLarge, HttpMalformed
from .app import Headers, reason_phrase

__all__ = ["Client", "ClientResponse", "get", "request"]

_REDIRECTS = frozenset((301, 302, 303, 307, 308))
#: Request fields HTTP/2 does not carry (RFC 9113 8.2.2).
_H2_DROPPED = frozenset(("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                         "upgrade", "te"))
FieldsIn = Union[Mapping[str, str], Iterable[tuple[str, str]], None]


class ClientResponse:
    """A response: status, reason, version ("HTTP/1.1"), headers
    (:class:`Headers`), body (bytes), and the url it answered."""

    __slots__ = ("status", "reason", "version", "headers", "body", "url")

    def __init__(self, status: int, reason: str, version: str, headers: Headers, body: bytes,
                 url: str) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.body = body
        self.url = url

    @property
    def text(self) -> str:
        """The body as UTF-8 text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.reason}>"


class _Conn:
    """One connection of the pool: its socket, read buffer and state."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.state = ConnectionState()
        self.used = False

    def fill(self) -> None:
        data = self.sock.recv(limits.READ_CHUNK)
        if not data:
            raise ConnectionClosed("the server closed the connection before the response ended")
        self.buf += data


class Client:
    """Requests with a keep-alive pool: at most ``max_idle`` idle
    connections kept per (host, port). ``timeout`` is each connect, send
    and receive's, in seconds; ``follow_redirects`` follows 301, 302, 303,
    307 and 308 up to ``max_redirects`` times (else they are returned);
    ``max_body`` bounds a response body (HttpBodyTooLarge). ``http2``:
    speak HTTP/2 (cleartext, prior knowledge), one connection per host,
    one stream per request. Use it as a context manager, or
    :meth:`close` it."""

    def __init__(self, *, timeout: float = 30.0, max_idle: int = 4,
                 follow_redirects: bool = False, max_redirects: int = 10,
                 max_body: int = limits.DEFAULT_HTTP_CLIENT_MAX_BODY,
                 headers: FieldsIn = None, http2: bool = False) -> None:
        self.timeout = timeout
        self.http2 = http2
        self._h2: dict[tuple[str, int], Any] = {}  # (host, port) -> fastnet.h2 BlockingConnection
        self.max_idle = max_idle
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.max_body = max_body
        self.headers = Headers(headers)
        self._idle: dict[tuple[str, int], list[_Conn]] = {}

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        for conns in self._idle.values():
            for conn in conns:
                conn.sock.close()
        self._idle.clear()
        for h2conn in self._h2.values():
            h2conn.close()
        self._h2.clear()

    def get(self, url: str, headers: FieldsIn = None) -> ClientResponse:
        """GET url."""
        return self.request("GET", url, headers=headers)

    def request(self, method: str, url: str, *, headers: FieldsIn = None,
                body: Optional[bytes] = None) -> ClientResponse:
        """Send one request and read its whole response (following
        redirects if the Client does)."""
        for _ in range(self.max_redirects + 1):
            response = self._one(method, url, Headers(headers), body)
            location = response.headers.get("location")
            if not (self.follow_redirects and response.status in _REDIRECTS and location):
                return response
            url = urljoin(url, location)
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
        return response

    # -- one exchange --------------------------------------------------------

    def _one(self, method: str, url: str, headers: Headers, body: Optional[bytes]) -> ClientResponse:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// URLs are served, not {url!r}")
        host = parts.hostname
        if not host:
            raise ValueError(f"no host in {url!r}")
        port = parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = f"[{host}]" if ":" in host else host
        if parts.port and parts.port != 80:
            authority += f":{parts.port}"
        key = (host, port)
        if self.http2:
            return self._h2_one(key, method, target, authority, headers, body, url)
        data = self._encode(method, target, authority, headers, body)
        idle = self._idle.get(key)
        if idle:
            conn = idle.pop()
            try:
                return self._exchange(conn, key, method, url, data)
            except (ConnectionClosed, ConnectionError) as error:
                conn.sock.close()
                if conn.buf or method not in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"):
                    raise error
                # The server closed an idle connection: once more, fresh.
        conn = _Conn(socket.create_connection((host, port), timeout=self.timeout))
        try:
            return self._exchange(conn, key, method, url, data)
        except BaseException:
            conn.sock.close()
            raise

    def _h2_one(self, key: tuple[str, int], method: str, target: str, authority: str,
                headers: Headers, body: Optional[bytes], url: str) -> ClientResponse:
        """One exchange over the host's HTTP/2 connection (opened on first
        use, prior knowledge), one stream."""
        from ..h2.blocking import BlockingConnection
        fields = [(b":method", method.encode("latin-1")), (b":scheme", b"http"),
                  (b":path", target.encode("latin-1"))]
        extra: list[tuple[bytes, bytes]] = []
        for name, value in Headers(self.headers.items() + headers.items()):
            low = name.lower()
            if low == "host":
                authority = value
            elif low not in _H2_DROPPED:
                extra.append((low.encode("latin-1"), value.encode("latin-1")))
        fields.append((b":authority", authority.encode("latin-1")))
        conn = self._h2.get(key)
        if conn is not None and not conn.usable:
            conn.close()
            conn = None
        if conn is None:
            sock = socket.create_connection(key, timeout=self.timeout)
            conn = self._h2[key] = BlockingConnection(sock, self.max_body)
        conn.sock.settimeout(self.timeout)
        try:
            answer, data, _ = conn.request(fields + extra, body)
        except BaseException:
            del self._h2[key]
            conn.close()
            raise
        status = 0
        out = []
        for field, content in answer:
            if field == b":status":
                status = int(content)
            elif field[:1] != b":":
                out.append((field.decode("latin-1"), content.decode("latin-1")))
        return ClientResponse(status, reason_phrase(status), "HTTP/2", Headers(out), data, url)

    def _encode(self, method: str, target: str, authority: str, headers: Headers,
                body: Optional[bytes]) -> bytes:
        fields = Headers(self.headers.items() + headers.items())
        lines = [f"{method} {target} HTTP/1.1"]
        if "host" not in fields:
            lines.append(f"Host: {authority}")
        lines += [f"{k}: {v}" for k, v in fields]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError(f"a CR or LF in the request: {line!r}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")

    def _exchange(self, conn: _Conn, key: tuple[str, int], method: str, url: str,
                  data: bytes) -> ClientResponse:
        conn.sock.settimeout(self.timeout)
        conn.sock.sendall(data)
        state = conn.state
        state.process(Role.CLIENT, Event.REQUEST)
        state.process(Role.CLIENT, Event.END)
        parser = http1.ResponseHeadParser()
        while True:  # 1xx responses come before the final one
            head = parser.parse(conn.buf)
            while head is None:
                conn.fill()
                head = parser.parse(conn.buf)
            if head.status >= 200 or head.status == 101:
                break
            del conn.buf[:head.end]
            parser.reset()
            state.process(Role.SERVER, Event.INFORMATIONAL)
        buf = conn.buf
        headers = Headers([(buf[a:b].decode("latin-1"), buf[c:d].decode("latin-1"))
                           for a, b, c, d in head.headers])
        reason = buf[head.reason_start:head.reason_end].decode("latin-1")
        del buf[:head.end]
        state.process(Role.SERVER, Event.RESPONSE)
        tokens = [t.strip().lower() for v in headers.get_all("connection") for t in v.split(",")]
        if "close" in tokens or (head.minor == 0 and "keep-alive" not in tokens):
            state.no_keep_alive()
        body = self._body(conn, method, head.status, headers, state)
        state.process(Role.SERVER, Event.END)
        response = ClientResponse(head.status, reason, f"HTTP/1.{head.minor}", headers, body, url)
        if state.keep_alive and not conn.buf:
            pool = self._idle.setdefault(key, [])
            if len(pool) < self.max_idle:
                pool.append(conn)
                return response
        conn.sock.close()
        return response

    def _body(self, conn: _Conn, method: str, status: int, headers: Headers,
              state: ConnectionState) -> bytes:
        if method == "HEAD" or status < 200 or status in (204, 304):
            return b""
        buf = conn.buf
        codings = [t.strip().lower() for v in headers.get_all("transfer-encoding")
                   for t in v.split(",") if t.strip()]
        if codings:
            if codings[-1] != "chunked":
                state.no_keep_alive()
                return self._until_close(conn)
            decoder = http1.ChunkedDecoder(self.max_body)
            parts: list[bytes] = []
            while True:
                spans, pos, done = decoder.decode(buf)
                parts += [bytes(buf[s:e]) for s, e in spans]
                del buf[:pos]
                if done:
                    return b"".join(parts)
                conn.fill()
        lengths = {v.strip() for v in ",".join(headers.get_all("content-length")).split(",")}
        if lengths and lengths != {""}:
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                raise HttpMalformed(f"invalid Content-Length {sorted(lengths)!r}")
            length = int(lengths.pop())
            if length > self.max_body:
                raise HttpBodyTooLarge(f"body of {length} bytes exceeds max_body={self.max_body}")
            while len(buf) < length:
                conn.fill()
            body = bytes(buf[:length])
            del buf[:length]
            return body
        state.no_keep_alive()
        return self._until_close(conn)

    def _until_close(self, conn: _Conn) -> bytes:
        while True:
            data = conn.sock.recv(limits.READ_CHUNK)
            if not data:
                break
            conn.buf += data
            if len(conn.buf) > self.max_body:
                raise HttpBodyTooLarge(f"body larger than max_body={self.max_body}")
        body = bytes(conn.buf)
        conn.buf.clear()
        return body


def request(method: str, url: str, *, headers: FieldsIn = None, body: Optional[bytes] = None,
            timeout: float = 30.0, follow_redirects: bool = False) -> ClientResponse:
    """One request on a connection of its own (closed after it)."""
    with Client(timeout=timeout, max_idle=0, follow_redirects=follow_redirects,
                headers={"Connection": "close"}) as client:
        return client.request(method, url, headers=headers, body=body)


def get(url: str, *, headers: FieldsIn = None, timeout: float = 30.0,
        follow_redirects: bool = False) -> ClientResponse:
    """GET url on a connection of its own: ``fastnet.http.get(url).body``."""
    return request("GET", url, headers=headers, timeout=timeout,
                   follow_redirects=follow_redirects)
