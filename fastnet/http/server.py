"""HTTP/1.1 served on the protocol seam (``--protocol http``).

One :class:`HttpSession` per connection, fed every read (raw framing). It
keeps the unparsed bytes in one buffer, parses each head in place (the
parser keeps its place across reads, so a head in many pieces is searched
once), reads the body by Content-Length or chunked, runs the app and
answers. Every complete request of a read is answered in order in one
write (pipelining); an app's async results are awaited one request at a
time, in order (the session is then ``is_async``).

Bad input gets the status its error names (400, 408, 413, 414, 431, 501,
505) with ``Connection: close`` after the responses owed, and only that
connection closes. The request-smuggling cases are all 400: both
Content-Length and Transfer-Encoding, conflicting or malformed
Content-Length, chunked not last or twice, Transfer-Encoding on HTTP/1.0,
obs-fold, whitespace before a colon, a missing or repeated Host on
HTTP/1.1.

Request bodies are read whole (``request.body``, bounded by max_body)
unless the route was registered with ``stream=True``: that route is called
once the head is in and reads the body from ``request.stream``
(:class:`BodyStream`) while the session moves each read's body bytes into
it; past HTTP_STREAM_HIGH_WATER unread bytes the session stops reading the
connection until the route has read half of them. Such a request is run
by the session's own task, so the server goes on feeding it reads; the
requests pipelined behind it wait in the buffer (bounded the same way)
and are served by that task once the route has answered.
``Expect: 100-continue`` is answered when the route first waits for body
bytes (a whole-body route: at once, when the head is in without its body);
a route that answers without reading the whole body gets its connection
closed after the response.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import inspect
import logging
import time
from email.utils import formatdate
from typing import (Any, AsyncIterable, Awaitable, Callable, Generator, Iterable, Iterator,
                    Mapping, Optional, Union, cast)

from .. import limits
from ..codec import http1
from ..codec.http1 import REQ_WORDS, ConnectionState, Event, Role
from ..engine.base import HttpHandler, TimerHandle
from ..errors import (EngineError, H2ConnectionError, HttpBodyTooLarge, HttpError,
                      HttpMalformed, HttpTimeout, HttpUnsupportedCoding, ProtocolError)
from ..server import Connection, ProtocolSpec, ProtocolUnit, Server, Session, register
from ..server.options import Option, count, seconds, size
from .app import (App, Handler, Headers, Request, Response, is_async_handler, kata_app,
                  reason_phrase, request_path)

__all__ = ["HTTP", "HTTP_PROTOCOL", "BodyStream", "HttpLimits", "HttpServer", "HttpSession"]

log = logging.getLogger("fastnet.http")

_date_cache: list[Any] = [0, b""]


def http_date() -> bytes:
    """The Date header's value now (IMF-fixdate), computed once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode()
    return cast(bytes, _date_cache[1])


class HttpLimits:
    """A server's request limits (defaults in fastnet.limits)."""

    __slots__ = ("max_request_line", "max_header_bytes", "max_header_fields", "max_body",
                 "header_timeout")

    def __init__(self, max_request_line: int = limits.DEFAULT_HTTP_MAX_REQUEST_LINE,
                 max_header_bytes: int = limits.DEFAULT_HTTP_MAX_HEADER_BYTES,
                 max_header_fields: int = limits.DEFAULT_HTTP_MAX_HEADER_FIELDS,
                 max_body: int = limits.DEFAULT_HTTP_MAX_BODY,
                 header_timeout: Optional[float] = limits.DEFAULT_HTTP_HEADER_TIMEOUT) -> None:
        for name, value in (("max_request_line", max_request_line),
                            ("max_header_bytes", max_header_bytes),
                            ("max_header_fields", max_header_fields)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        if max_body < 0:
            raise ValueError(f"max_body must be >= 0, not {max_body}")
        if header_timeout is not None and not header_timeout > 0:
            raise ValueError("header_timeout must be positive (or None: never)")
        self.max_request_line = max_request_line
        self.max_header_bytes = max_header_bytes
        self.max_header_fields = max_header_fields
        self.max_body = max_body
        self.header_timeout = header_timeout


def _simple_response(status: int, text: str, *extra: bytes, close: bool = True) -> bytes:
    body = text.encode() + b"\n"
    return b"".join((b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status).encode()),
                     b"Content-Type: text/plain\r\nContent-Length: %d\r\n" % len(body),
                     b"Date: " + http_date() + b"\r\n", *extra,
                     b"Connection: close\r\n" if close else b"", b"\r\n", body))


def _error_reply(error: ProtocolError) -> Optional[bytes]:
    if isinstance(error, H2ConnectionError):
        return None  # an HTTP/2 connection on this port: its GOAWAY is written
    status = error.status_hint if isinstance(error, HttpError) else 400
    return _simple_response(status, f"{reason_phrase(status)}: {error}")


def _rejection(why: str) -> Optional[bytes]:
    text = "shutting down" if why == "shutdown" else "busy"
    return _simple_response(503, f"Service Unavailable: server {text}",
                            b"Retry-After: %d\r\n" % limits.HTTP_RETRY_AFTER)


def _handler_error(error: BaseException) -> Optional[bytes]:
    return _simple_response(500, "Internal Server Error")


#: HTTP/1.1's wire: raw reads; errors, rejections and failures as responses.
HTTP_PROTOCOL = ProtocolSpec("http", "raw", _error_reply, _rejection,
                             handler_error=_handler_error, session_probe=True)

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
#: The HTTP/2 client preface (RFC 9113 3.4): a connection that starts
#: with it speaks HTTP/2.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: HttpSession.h2 before the connection's first bytes.
_UNDECIDED = object()


def _wants_h2c(request: Request) -> bool:
    """An HTTP/1.1 request asking for ``Upgrade: h2c`` with HTTP2-Settings
    and no body (one with a body is served as HTTP/1.1: RFC 7540 3.2
    lets a server ignore the upgrade)."""
    upgrade = request.headers.get("upgrade")
    if upgrade is None or request.version != "HTTP/1.1" or request.body:
        return False
    if "h2c" not in _tokens(request.headers.get_all("upgrade")):
        return False
    connection = _tokens(request.headers.get_all("connection"))
    return ("upgrade" in connection and "http2-settings" in connection
            and len(request.headers.get_all("http2-settings")) == 1
            and "content-length" not in request.headers
            and "transfer-encoding" not in request.headers)
_NO_BODY_STATUS = frozenset((204, 304))
_OWN_FIELDS = frozenset(("content-length", "transfer-encoding", "connection", "date"))


_FRAMING_FIELDS = frozenset((b"host", b"connection", b"transfer-encoding", b"content-length"))
_VERSIONS = ("HTTP/1.0", "HTTP/1.1")
_STATUS_LINES: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status).encode())
        if len(_STATUS_LINES) < 1000:
            _STATUS_LINES[status] = line
    return line


_heads_cache: dict[tuple[Any, ...], bytes] = {}  # (status, *header items) -> head
_BYTES_KEY: tuple[Any, ...] = (200, ("Content-Type", "text/plain"))  # Response(bytes)'s
_EMPTY_KEY: tuple[Any, ...] = (200,)
_end_cache: list[Any] = [0, b""]  # [the second, b"Date: ...\r\n\r\n"]
_clock = time.time
_new_request = object.__new__


#: The last reply _simple_reply made for a Response with no fields of its
#: own (``Response(body, status, content_type=...)``): (body, status,
#: content type, the second of its Date, the reply), for
#: HttpSession.serve_simple. Read and replaced whole (threads).
_last_reply: tuple[Any, int, Optional[str], int, bytes] = (None, 0, None, 0, b"")


def _simple_reply(result: Any) -> Optional[bytes]:
    """The whole response to a simple request (see HttpSession.serve_simple)
    for a route's Response with a bytes body, or bytes; None for the
    general way (streams, str, a status without a body, a header it must
    refuse)."""
    global _last_reply
    if type(result) is Response:
        body, status = result.body, result.status
        if type(body) is not bytes or status < 200 or status in _NO_BODY_STATUS:
            return None
        fields = result._headers
        if fields is not None:
            return _reply_bytes(body, (status, *fields._items))
        content_type = result._content_type
        reply = _reply_bytes(body, (status, ("Content-Type", content_type)) if content_type
                             else (status,))
        if reply is not None:
            _last_reply = (body, status, content_type, _end_cache[0], reply)
        return reply
    if type(result) is bytes:
        return _reply_bytes(result, _BYTES_KEY if result else _EMPTY_KEY)
    return None


def _reply_bytes(body: bytes, key: tuple[Any, ...]) -> Optional[bytes]:
    """The response for key (status, *header items) with a bytes body:
    the head cached per key, Date per second."""
    status = key[0]
    head = _heads_cache.get(key)
    if head is None:
        parts = [_status_line(status)]
        for name, value in cast(tuple[tuple[str, str], ...], key[1:]):
            if name.lower() in _OWN_FIELDS:
                continue
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                return None  # the general way raises
            parts.append(f"{name}: {value}\r\n".encode("latin-1"))
        head = b"".join(parts)
        if len(_heads_cache) < 256:
            _heads_cache[key] = head
    now = int(_clock())
    if _end_cache[0] != now:
        _end_cache[0], _end_cache[1] = now, b"Date: " + http_date() + b"\r\n\r\n"
    return b"%sContent-Length: %d\r\n%s%s" % (head, len(body), _end_cache[1], body)


class _LazyRequest(Request):
    """A simple request (HttpSession.serve_simple) read from the words of
    ``RequestHeadParser.simple_requests``: its method, target, path, query
    and peer are decoded on first use, its Headers built on first use.
    serve_simple makes each (no __init__: one call less per request) with
    every field below set, _line, _peer, _headers and _params None, the rest as
    Request's for a bodiless HTTP/1.1 request."""

    __slots__ = ("_buf", "_words", "_at", "_conn", "_line", "_peer", "_headers", "_params")

    _buf: bytes                         # the read
    _words: list[int]                   # its words (simple_requests')
    _at: int                            # this request's first word
    _conn: Connection
    _line: Optional[list[str]]          # None, then [method, target, path, query]
    _peer: Optional[tuple[str, int]]
    _headers: Optional[Headers]
    _params: Optional[dict[str, str]]   # None until read or set

    def _request_line(self) -> list[str]:
        line = self._line
        if line is None:
            buf, words, at = self._buf, self._words, self._at
            method = buf[words[at + 1]:words[at + 2]].decode("latin-1")
            target = buf[words[at + 3]:words[at + 4]].decode("latin-1")
            if "?" in target or "%" in target or ":" in target or target[0] != "/":
                path, query = request_path(target)
            else:
                path, query = target, ""
            line = self._line = [method, target, path, query]
        return line

    def _set(self, index: int, value: str) -> None:
        self._request_line()[index] = value

    method = property(lambda self: self._request_line()[0],  # type: ignore[assignment]
                      lambda self, value: self._set(0, value))
    target = property(lambda self: self._request_line()[1],  # type: ignore[assignment]
                      lambda self, value: self._set(1, value))
    path = property(lambda self: self._request_line()[2],  # type: ignore[assignment]
                    lambda self, value: self._set(2, value))
    query = property(lambda self: self._request_line()[3],  # type: ignore[assignment]
                     lambda self, value: self._set(3, value))

    @property  # type: ignore[override]
    def params(self) -> dict[str, str]:
        params = self._params
        if params is None:
            params = self._params = {}
        return params

    @params.setter
    def params(self, value: dict[str, str]) -> None:
        self._params = value

    @property  # type: ignore[override]
    def peer(self) -> tuple[str, int]:
        peer = self._peer
        if peer is None:
            peer = self._peer = self._conn.peer
        return peer

    @peer.setter
    def peer(self, value: tuple[str, int]) -> None:
        self._peer = value

    @property  # type: ignore[override]
    def headers(self) -> Headers:
        fields = self._headers
        if fields is None:
            buf, w, i = self._buf, self._words, self._at + REQ_WORDS
            fields = self._headers = Headers([
                (buf[w[k]:w[k + 1]].decode("latin-1"), buf[w[k + 2]:w[k + 3]].decode("latin-1"))
                for k in range(i, i + 4 * w[self._at + 5], 4)])
        return fields

    @headers.setter
    def headers(self, value: Optional[Headers]) -> None:
        self._headers = value


def _tokens(values: list[str]) -> list[str]:
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


def _trailers(raw: bytes) -> Optional[Headers]:
    """The trailer fields of a chunked body (lines the decoder checked)."""
    items = []
    for line in raw.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b":")
            items.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return Headers(items) if items else None


class _Pending:
    """A request whose head has arrived, its body not yet whole."""

    __slots__ = ("request", "length", "chunked", "parts", "trailer", "stream", "ended")

    def __init__(self, request: Request, length: int, chunked: bool) -> None:
        self.request = request
        self.length = length          # Content-Length bytes still to come
        self.chunked = chunked
        self.parts: list[bytes] = []  # chunked body so far (not yet in the stream)
        self.trailer = b""            # trailer lines so far
        self.stream: Optional[BodyStream] = None  # a stream=True route's body
        self.ended = False            # the body has all arrived


class BodyStream:
    """A request body as it arrives: ``request.stream`` of a route
    registered with ``stream=True``.

    ``async for chunk in request.stream`` gives its bytes in the pieces they
    came in (a chunked body's chunk by chunk as read), ``await
    request.stream.read()`` the rest at once. Reading is what lets more come:
    the server holds at most ``HTTP_STREAM_HIGH_WATER`` unread bytes before it
    stops reading the connection. A body that breaks the protocol or
    max_body raises that error here (the server has answered it, 400 or 413,
    and closes the connection); a connection gone first raises
    ConnectionResetError. A chunked body's trailer fields are in
    ``request.trailers`` once the stream has ended."""

    __slots__ = ("_session", "_loop", "_chunks", "buffered", "received", "ended", "_error",
                 "_waiter")

    def __init__(self, session: "HttpSession") -> None:
        self._session = session
        self._loop = asyncio.get_running_loop()  # made by the session's coroutine
        self._chunks: collections.deque[bytes] = collections.deque()
        #: Bytes arrived and not read yet.
        self.buffered = 0
        #: Bytes arrived so far.
        self.received = 0
        #: The whole body has arrived (it may not all be read yet).
        self.ended = False
        self._error: Optional[BaseException] = None
        self._waiter: Optional[asyncio.Future[None]] = None

    def __aiter__(self) -> "BodyStream":
        return self

    async def __anext__(self) -> bytes:
        chunks = self._chunks
        while not chunks:
            if self._error is not None:
                raise self._error
            if self.ended:
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            self._session._stream_waits(self)
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = chunks.popleft()
        self.buffered -= len(chunk)
        self._session._stream_read(self)
        return chunk

    async def read(self) -> bytes:
        """The rest of the body, as one bytes."""
        return b"".join([chunk async for chunk in self])

    @property
    def waiting(self) -> bool:
        """The route waits for bytes that have not arrived."""
        return self._waiter is not None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _push(self, chunk: bytes) -> None:
        if chunk:
            self._chunks.append(chunk)
            self.buffered += len(chunk)
            self.received += len(chunk)
            self._wake()

    def _end(self) -> None:
        self.ended = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()


_END = object()  # next()'s default: the iterator has ended


class _BodyPump:
    """A response body given as an iterator, being written (_write_body)."""

    __slots__ = ("request", "pieces", "chunked", "timer", "wait", "waited")

    def __init__(self, request: Request, pieces: Iterator[bytes], chunked: bool) -> None:
        self.request = request
        self.pieces = pieces
        self.chunked = chunked
        self.timer: Optional[TimerHandle] = None   # set while it waits for the peer
        self.wait = limits.HTTP_BODY_WAIT
        self.waited = False  # feed, which began it, has returned since

    def stop(self) -> None:
        """The connection is gone: no more pieces (a generator's finally runs)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        close = getattr(self.pieces, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("closing the body of the response to %r failed", self.request)


class HttpSession(Session):
    """One HTTP/1.1 connection (see the module's docstring)."""

    _offers_http = True  # KataSession: the engine answers the kata instead

    def __init__(self, conn: Connection, handler: Handler, limits_: HttpLimits) -> None:
        super().__init__(conn)
        self.handler = handler
        self.is_async = is_async_handler(handler)
        self.limits = limits_
        self.parser = http1.RequestHeadParser(limits_.max_request_line,
                                              limits_.max_header_bytes,
                                              limits_.max_header_fields)
        self.chunks = http1.ChunkedDecoder(limits_.max_body, limits_.max_header_bytes,
                                           limits_.max_header_fields)
        self.state = ConnectionState()
        #: b"METHOD /path" -> the function an App routes it to exactly, or
        #: None (App.exact_route; a handler that is not an App: None), and
        #: the lines it found so far.
        self._routes: Optional[Callable[[bytes], Optional[Handler]]] = None
        self._lines: dict[bytes, Handler] = {}
        if isinstance(handler, App) and type(handler).__call__ is App.__call__:
            self._routes, self._lines = handler.exact_route, handler.exact_lines
        #: Whether to offer the engine the simple requests (Engine.serve_http):
        #: plain apps, until an engine says no.
        self._http_offer = self._offers_http and not self.is_async
        self.buf = bytearray()
        self.pending: Optional[_Pending] = None
        # A stream=True route reads its body: run by _task, the session's own.
        self._streams = getattr(handler, "streams", None) if self.is_async else None
        self._streaming: Optional[_Pending] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._paused = False       # reading paused: a streamed body not read fast enough
        self.draining = False
        self.done = False          # answered Connection: close: read no more
        self._out: list[bytes] = []
        self._body: Optional[_BodyPump] = None  # an iterator body being written
        self._timer: Optional[TimerHandle] = None
        self._heads = 0            # heads completed: which head a timer is for
        #: The HTTP/2 session this connection became (client preface or
        #: Upgrade: h2c), None while it speaks HTTP/1.1, _UNDECIDED before
        #: its first bytes.
        self.h2: Any = _UNDECIDED

    # -- the seam ----------------------------------------------------------

    def feed(self, data: bytes) -> Union[bytes, None, Awaitable[Optional[bytes]]]:
        """One read: every request it completes, answered in order."""
        if self.h2 is not None and self._is_h2(data):
            return cast(Union[bytes, None, Awaitable[Optional[bytes]]], self.h2.feed(data))
        if self.is_async:
            return self._feed_async(data)
        if self.done:
            return None
        if self._body is not None:  # the requests behind it wait in the buffer
            self.buf += data
            if len(self.buf) > limits.HTTP_STREAM_HIGH_WATER:
                self._pause(True)
            return None
        upgrade = None
        if not self.buf and self.pending is None:
            data = self._simple(data)
            if not data:
                return self._fed()
        try:
            requests = self._requests(data)
            for request in requests:
                if _wants_h2c(request):
                    upgrade = request
                    requests.close()
                    break
                try:
                    result = self.handler(request)
                except Exception:
                    self._failed(request)
                    break
                self._answer(request, cast(Any, result))
                if self.done or self._body is not None:
                    requests.close()  # what follows stays in the buffer
                    break
        except HttpError as error:
            self._fail(error)
            return None
        if upgrade is not None:
            return self._upgrade(upgrade)
        return self._fed()

    def _fed(self) -> Optional[bytes]:
        """The end of a plain app's feed: the reply, after offering the
        engine (again) to parse the next reads' simple requests, if this
        session holds nothing (Engine.serve_http: the engine stops after
        each read it hands over whole, as this one was)."""
        if self._http_offer and not self.buf and self.pending is None and self._body is None \
                and not self.done and not self.draining and self.h2 is None:
            lim = self.limits
            self._http_offer = self.conn.server.engine.serve_http(
                self.conn.id, True, cast(HttpHandler, type(self).serve_simple), self,
                lim.max_request_line, lim.max_header_bytes, lim.max_header_fields)
        return self._flush()

    async def _feed_async(self, data: bytes) -> Optional[bytes]:
        if self.done:
            return None
        if self._task is not None:
            # The session's task serves a streamed request (or those behind
            # it): the bytes go to the buffer, a streamed body's to its stream.
            self.buf += data
            self._pump()
            return None
        reply = await self._serve_async(data)
        if self._streaming is not None and not self.done:
            self._task = asyncio.get_running_loop().create_task(self._drive())
        return reply

    async def _serve_async(self, data: bytes) -> Optional[bytes]:
        """The async app's answers to the requests buffered, in order,
        until one streams its body (_drive runs that one) or asks for h2c."""
        upgrade = None
        try:
            requests = self._requests(data)
            for request in requests:
                if _wants_h2c(request):
                    upgrade = request
                    requests.close()
                    break
                if request.stream is not None:  # the last one: _drive runs it
                    out, self._out = self._out, []
                    if out:
                        self.conn.write(b"".join(out))  # owed before its answer
                    continue
                try:
                    result = self.handler(request)
                    if inspect.isawaitable(result):
                        result = await result
                except Exception:
                    self._failed(request)
                    break
                await self._answer_async(request, cast(Any, result))
                if self.done:
                    break
        except HttpError as error:
            self._fail(error)
            return None
        if upgrade is not None:
            answer = self._upgrade(upgrade)
            return await answer if inspect.isawaitable(answer) else answer
        return self._flush()

    # -- HTTP/2 on the same port ---------------------------------------------

    def _is_h2(self, data: bytes) -> bool:
        """Whether this read goes to HTTP/2: decided by the first bytes of
        the connection (RFC 9113 3.4, the client preface), then kept."""
        if self.h2 is _UNDECIDED:
            if data[:3] == b"PRI" and PREFACE.startswith(bytes(data[:len(PREFACE)])):
                from ..h2.server import upgrade_session
                self.h2 = upgrade_session(self.conn, self.handler)
                self.multiplexed = self.h2.multiplexed
                self.h2.opened()
                self._h2_began()
            else:
                self.h2 = None
                return False
        return True

    def _upgrade(self, request: Request) -> Union[bytes, None, Awaitable[Optional[bytes]]]:
        """``Upgrade: h2c`` (RFC 7540 3.2): 101, then HTTP/2 with the
        request as stream 1, answered there; the rest of the read is the
        client's preface and frames."""
        from ..h2.server import upgrade_session
        settings = request.headers.get("http2-settings") or ""
        try:
            payload = base64.urlsafe_b64decode(settings + "=" * (-len(settings) % 4))
        except ValueError:
            payload = b"\x00"  # not a SETTINGS payload: refused below
        if len(payload) % 6:
            self._fail(HttpMalformed("HTTP2-Settings is not a base64url SETTINGS payload"))
            return None
        self._out.append(_SWITCHING)
        self.conn.write(b"".join(self._out))
        self._out = []
        session = upgrade_session(self.conn, self.handler, request, payload)
        self.h2 = session
        self.multiplexed = session.multiplexed
        self._h2_began()
        rest = bytes(self.buf)
        del self.buf[:]
        return session.feed(rest) if rest else None

    def _h2_began(self) -> None:
        """HTTP/2 has taken this connection: the engine stops parsing
        HTTP/1.1 for it (KataSession: answering the kata), as an h2 read
        may start with any bytes."""
        if self._http_offer:
            self._http_offer = False
            self.conn.server.engine.serve_http(self.conn.id, False)

    def drain(self) -> Optional[bytes]:
        """A graceful drain: every response from now on says Connection: close
        (HTTP/2: GOAWAY)."""
        self.draining = True
        if self.h2 is not None and self.h2 is not _UNDECIDED:
            return cast(Optional[bytes], self.h2.drain())
        return None

    def closed(self) -> None:
        self._cancel_timer()
        if self._body is not None:
            self._body.stop()
            self._body = None
        if self.h2 is not None and self.h2 is not _UNDECIDED:
            self.h2.closed()
        streaming = self._streaming
        if streaming is not None and streaming.stream is not None and not streaming.ended:
            # From the engine's thread, which is not the loop's on the threaded engine.
            streaming.stream._loop.call_soon_threadsafe(streaming.stream._fail, ConnectionResetError(
                "the connection closed before the request body ended"))

    def keepalive_probe(self) -> Optional[bytes]:
        """HTTP/2's PING once the connection became HTTP/2 (HTTP/1.1 has no probe)."""
        if self.h2 is not None and self.h2 is not _UNDECIDED:
            return cast(Optional[bytes], self.h2.keepalive_probe())
        return None

    def idle(self) -> bool:
        """No streamed request is being served, or its route waits for body
        bytes (so a half-closed, draining or silent connection may close)."""
        if self.h2 is not None and self.h2 is not _UNDECIDED:
            return bool(self.h2.idle())
        if self._body is not None:
            return False  # conn.idle() once it is written
        streaming = self._streaming
        return self._task is None or (streaming is not None and streaming.stream is not None
                                      and streaming.stream.waiting)

    # -- streamed request bodies ------------------------------------------------

    async def _drive(self) -> None:
        """The session's task: each streamed request's route, then the
        requests buffered behind it, until none streams."""
        try:
            while self._streaming is not None and not self.done:
                self._pump()
                await self._run_streamed(self._streaming)
                if not self.done:
                    reply = await self._serve_async(b"")
                    if reply is not None:
                        self.conn.write(reply)
        except Exception:
            log.exception("serving a streamed request failed on %s", self.conn.peer)
            self.done = True
            self.conn.abort()
        finally:
            self._task = None
            self._pause(False)
        self.conn.idle()

    async def _run_streamed(self, pending: _Pending) -> None:
        request = pending.request
        try:
            result = self.handler(request)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            if not self.done:
                self._failed(request)
        else:
            if not self.done:
                if not pending.ended:
                    self.state.no_keep_alive()  # the rest is not read: close after the answer
                await self._answer_async(request, result)
        self._streaming = None
        reply = self._flush()
        if reply is not None:
            self.conn.write(reply)

    def _pump(self) -> None:
        """Move what has arrived of the streamed body from the buffer to its
        stream (a bad body: its error answered, the route told); past the
        high-water mark, stop reading the connection."""
        pending, buf = self._streaming, self.buf
        if pending is None or pending.stream is None:
            if len(buf) > limits.HTTP_STREAM_HIGH_WATER:
                self._pause(True)  # requests pipelined behind a streamed one
            return
        stream = pending.stream
        if not pending.ended and buf:
            try:
                if pending.chunked:
                    pos, pending.ended = self._chunked(pending, buf, 0)
                    for part in pending.parts:
                        stream._push(part)
                    pending.parts = []
                else:
                    pos = min(pending.length, len(buf))
                    stream._push(bytes(buf[:pos]))
                    pending.length -= pos
                    pending.ended = not pending.length
            except HttpError as error:
                stream._fail(error)
                self._fail(error)
                return
            del buf[:pos]
            if pending.ended:
                stream._end()
        if stream.buffered + len(buf) > limits.HTTP_STREAM_HIGH_WATER:
            self._pause(True)

    def _stream_waits(self, stream: BodyStream) -> None:
        """The route waits for body bytes: the first time, answer
        Expect: 100-continue; the server may close an idle connection now."""
        pending = self._streaming
        if (pending is not None and stream.received == 0 and not self.done
                and self._expects_continue(pending.request)):
            self.conn.write(_CONTINUE)
        self.conn.idle()

    def _stream_read(self, stream: BodyStream) -> None:
        if self._paused and stream.buffered + len(self.buf) <= limits.HTTP_STREAM_HIGH_WATER // 2:
            self._pause(False)

    def _pause(self, paused: bool) -> None:
        if paused != self._paused:
            self._paused = paused
            if not self.conn.closed:
                self.conn.server.engine.pause_reading(self.conn.id, paused)

    def _chunked(self, pending: _Pending, buf: bytearray, pos: int) -> tuple[int, bool]:
        """Decode what has arrived of a chunked body: its data into
        pending.parts, its trailer lines into pending.trailer; (the position
        reached, whether it ended)."""
        chunks = self.chunks
        trailing = chunks.in_trailers
        spans, end, ended = chunks.decode(buf, pos)
        if spans:
            pending.parts += [bytes(buf[s:e]) for s, e in spans]
        if chunks.in_trailers:
            start = pos
            if not trailing:  # the last chunk's line was in this read: they follow it
                start = spans[-1][1] if spans else pos
                if buf.startswith(b"\r\n", start):
                    start += 2  # the CRLF after the data
                start = buf.index(b"\r\n", start) + 2
            pending.trailer += bytes(buf[start:end])
        if ended:
            chunks.reset()
            pending.request.trailers = _trailers(pending.trailer)
        return end, ended

    # -- the common case, quickly ----------------------------------------------

    def _simple(self, data: bytes) -> bytes:
        """Answer the read's leading simple requests (a bodiless HTTP/1.1
        head with one Host and no Connection, Expect, Upgrade or framing
        field: all of them found by one parser call) and return the rest,
        for the general way (which also reports any error a head holds);
        b"" if the connection is done or writing an iterator body."""
        words, pos = self.parser.simple_requests(data)
        if not words:
            return data
        self.serve_simple(data, words, 0, len(words), False)
        return b"" if self.done or self._body is not None else data[pos:]

    def serve_simple(self, data: bytes, words: list[int], i: int, stop: int,
                     reply: bool = True) -> Optional[bytes]:
        """Answer simple requests: data whose words are ``words[i:stop]``
        (``RequestHeadParser.simple_requests``'s, from the engine's poll,
        Engine.serve_http: this is an HttpHandler), as ``feed(data)`` would
        (which takes them whenever this session holds something or speaks
        HTTP/2), and return the reply; with ``reply`` False (_simple's
        call) the replies stay in self._out.

        Each Request is decoded only as far as the app reads it, its route
        looked up by its raw request line, a bytes answer's head cached,
        and a Response like the last one (the same body object, status and
        fields in the same second: a route answering with a constant) gets
        the last one's bytes. It stops early once the connection is done
        (a route failed: 500) or writes an iterator body (what follows
        waits in the buffer). Each such cycle ends where it began,
        IDLE/IDLE, so the state machine is not stepped; what is written is
        what the general way writes (a test compares them). One frame for
        the lot, on purpose: this is the handler path's loop."""
        if self.buf or self.pending is not None or self._body is not None or self.done \
                or self.h2 is not None:
            return cast(Optional[bytes], self.feed(data))  # a plain app's: no awaitable
        handler, routes, lines, conn, out = (self.handler, self._routes, self._lines, self.conn,
                                             self._out)
        now = int(_clock())
        while i < stop:
            at = i
            i += REQ_WORDS + 4 * words[i + 5]
            self._heads += 1
            request = _new_request(_LazyRequest)  # its fields: see _LazyRequest
            request._buf, request._words, request._at, request._conn = data, words, at, conn
            request._line = request._peer = request._headers = request._params = None
            request.trailers = request.stream = None
            request.version, request.body = "HTTP/1.1", b""
            try:
                if routes is not None:
                    line = data[words[at + 1]:words[at + 4]]
                    fn = lines.get(line) or routes(line)
                    result = handler(request) if fn is None else fn(request)
                else:
                    result = handler(request)
            except Exception:
                self.state.process(Role.CLIENT, Event.REQUEST)
                self._failed(request)
                break
            if not self.draining and (data[words[at + 1]] != 72  # b"H"
                                      or not data.startswith(b"HEAD ", words[at + 1])):
                if type(result) is Response and result._headers is None:
                    last = _last_reply
                    if result.body is last[0] and result.status == last[1] \
                            and result._content_type == last[2] and last[3] == now:
                        out.append(last[4])
                        continue
                answer = _simple_reply(result)
                if answer is not None:
                    out.append(answer)
                    continue
            self.state.process(Role.CLIENT, Event.REQUEST)
            self._answer(request, cast(Any, result))
            out = self._out  # a streamed answer replaces the list
            if self.done:
                break
            if self._body is not None:  # what follows waits for the body's end
                self.buf += data[words[at]:]
                break
        if not reply:
            return None
        if len(out) == 1 and not self.done:
            return out.pop()
        return self._flush()

    # -- reading requests ---------------------------------------------------

    def _requests(self, data: bytes) -> Generator[Request, None, None]:
        """The requests this read completes (raises HttpError on bad input)."""
        buf = self.buf
        buf += data
        pos = 0
        try:
            while pos < len(buf) and not self.done:
                pending = self.pending
                if pending is None:
                    head = self.parser.parse(buf, pos)
                    if head is None:
                        self._arm_timer()
                        break
                    self._cancel_timer()
                    self._heads += 1
                    pending = self.pending = self._start(buf, head)
                    pos = head.end
                    if pending.length == 0 and not pending.chunked:
                        self.pending = None
                        yield pending.request
                        continue
                    if self._streams is not None and self._streams(pending.request):
                        self.pending = None
                        self._streaming = pending
                        pending.stream = pending.request.stream = BodyStream(self)
                        yield pending.request
                        return  # _drive serves it and what follows
                    if (self._expects_continue(pending.request)
                            and len(buf) - pos < (pending.length or 1)):
                        self._out.append(_CONTINUE)
                if pending.chunked:
                    pos, finished = self._chunked(pending, buf, pos)
                    if not finished:
                        break
                    pending.request.body = b"".join(pending.parts)
                else:
                    if len(buf) - pos < pending.length:
                        break
                    pending.request.body = bytes(buf[pos:pos + pending.length])
                    pos += pending.length
                self.pending = None
                yield pending.request
        finally:
            del buf[:pos]

    def _start(self, buf: bytearray, head: http1.RequestHead) -> _Pending:
        """A request from its head; its body's framing checked."""
        items = []
        framing: dict[bytes, list[str]] = {}
        for a, b, c, d in head.headers:
            name = bytes(buf[a:b])
            value = buf[c:d].decode("latin-1")
            items.append((name.decode("latin-1"), value))
            low = name.lower()
            if low in _FRAMING_FIELDS:
                framing.setdefault(low, []).append(value)
        fields = Headers(items)
        method = buf[head.method_start:head.method_end].decode("latin-1")
        target = buf[head.target_start:head.target_end].decode("latin-1")
        version = _VERSIONS[head.minor] if head.minor < 2 else "HTTP/1.%d" % head.minor
        request = Request(method, target, fields, b"", version, self.conn.peer)
        hosts = framing.get(b"host", ())
        if head.minor >= 1 and len(hosts) != 1:
            raise HttpMalformed("an HTTP/1.1 request needs exactly one Host field, "
                                f"not {len(hosts)}")
        connection = _tokens(framing[b"connection"]) if b"connection" in framing else ()
        keep_alive = ("close" not in connection if head.minor >= 1
                      else "keep-alive" in connection)
        self.state.process(Role.CLIENT, Event.REQUEST)
        if not keep_alive:
            self.state.no_keep_alive()
        if b"transfer-encoding" in framing:
            codings = _tokens(framing[b"transfer-encoding"])
            if b"content-length" in framing:
                raise HttpMalformed("both Content-Length and Transfer-Encoding")
            if head.minor == 0:
                raise HttpMalformed("Transfer-Encoding in an HTTP/1.0 request")
            unknown = [c for c in codings if c != "chunked"]
            if unknown:
                raise HttpUnsupportedCoding(f"transfer coding {unknown[0]!r} is not supported")
            if len(codings) != 1:
                raise HttpMalformed("chunked applied more than once" if codings
                                    else "an empty Transfer-Encoding")
            return _Pending(request, 0, True)
        length = 0
        lengths = framing.get(b"content-length")
        if lengths:
            values = {v.strip() for v in ",".join(lengths).split(",")}
            if len(values) != 1:
                raise HttpMalformed("conflicting Content-Length values")
            value = values.pop()
            if not value.isdigit() or not value.isascii() or len(value) > 18:
                raise HttpMalformed(f"invalid Content-Length {value[:20]!r}")
            length = int(value)
            if length > self.limits.max_body:
                raise HttpBodyTooLarge(f"body of {length} bytes exceeds "
                                       f"max_body={self.limits.max_body}")
        return _Pending(request, length, False)

    @staticmethod
    def _expects_continue(request: Request) -> bool:
        return (request.version == "HTTP/1.1"
                and (request.headers.get("expect") or "").lower() == "100-continue")

    # -- the header timeout (slowloris) -----------------------------------

    def _arm_timer(self) -> None:
        timeout = self.limits.header_timeout
        if timeout is None or self._timer is not None or not self.buf:
            return
        heads = self._heads
        self._timer = self.conn.server.engine.call_later(timeout, lambda: self._late(heads))

    def _late(self, heads: int) -> None:
        self._timer = None
        if heads == self._heads and not self.conn.closed and self.pending is None:
            self.done = True
            self.conn.protocol_error(HttpTimeout(
                f"request head not complete within header_timeout={self.limits.header_timeout}s"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- answering ------------------------------------------------------------

    def _fail(self, error: HttpError) -> None:
        """Bad input: the responses owed, then the error's, then the close."""
        out, self._out = self._out, []
        self.done = True
        if out:
            self.conn.write(b"".join(out))
        self.conn.protocol_error(error)

    def _flush(self) -> Optional[bytes]:
        """What this read answered, as the reply to return; written and
        followed by the close instead once the connection is done."""
        out, self._out = self._out, []
        reply = (out[0] if len(out) == 1 else b"".join(out)) if out else None
        if self.done:
            if reply is not None:
                self.conn.write(reply)
            self.conn.close()  # once the responses are written
            return None
        return reply

    @staticmethod
    def _result(result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if isinstance(result, (bytes, bytearray, memoryview, str)):
            return Response(result)
        raise TypeError(f"a route returned {type(result).__name__}, not a Response, bytes or str")

    def _head(self, request: Request, response: Response, length: Optional[int]) -> bytes:
        """The response head; decides whether the connection stays open."""
        keep = self.state.keep_alive and not self.draining
        if length is None and request.version == "HTTP/1.0":
            keep = False  # no chunked for 1.0: the close ends the body
        if not keep:
            self.state.no_keep_alive()
        parts = [_status_line(response.status)]
        for name, value in response.headers:
            if name.lower() in _OWN_FIELDS:
                continue
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                raise ValueError(f"header {name!r} holds a CR or LF")
            parts.append(f"{name}: {value}\r\n".encode("latin-1"))
        if response.status in _NO_BODY_STATUS or response.status < 200:
            pass
        elif length is not None:
            parts.append(b"Content-Length: %d\r\n" % length)
        elif request.version != "HTTP/1.0":
            parts.append(b"Transfer-Encoding: chunked\r\n")
        parts.append(b"Date: " + http_date() + b"\r\n")
        if not keep:
            parts.append(b"Connection: close\r\n")
        elif request.version == "HTTP/1.0":
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def _end(self) -> None:
        self.state.process(Role.CLIENT, Event.END)
        self.state.process(Role.SERVER, Event.RESPONSE)
        self.state.process(Role.SERVER, Event.END)
        if not self.state.keep_alive:
            self.done = True

    def _failed(self, request: Request) -> None:
        log.exception("the app failed on %r from %s", request, self.conn.peer)
        self.state.no_keep_alive()
        self._out.append(_simple_response(500, "Internal Server Error"))
        self.done = True

    def _answer(self, request: Request, result: Any) -> None:
        try:
            response = self._result(result)
            body = response.body
            if isinstance(body, (bytes, bytearray, memoryview)):
                self._out.append(self._whole(request, response, body))
                self._end()
                return
            if hasattr(body, "__aiter__"):
                raise TypeError("an async iterator body needs an async app (an async def route)")
            head = self._head(request, response, None)
        except Exception:
            self._failed(request)
            return
        self._stream(request, head, body)

    async def _answer_async(self, request: Request, result: Any) -> None:
        try:
            response = self._result(result)
            body = response.body
        except Exception:
            self._failed(request)
            return
        if isinstance(body, (bytes, bytearray, memoryview)):
            self._answer(request, response)
            return
        try:
            head = self._head(request, response, None)
        except Exception:
            self._failed(request)
            return
        chunked = self._begin_stream(request, head)
        try:
            if request.method != "HEAD":
                if hasattr(body, "__aiter__"):
                    async for piece in cast(AsyncIterable[bytes], body):
                        self._piece(piece, chunked)
                        if not await self._room():
                            self.done = True
                            await cast(Any, body).aclose()
                            return
                else:
                    for piece in body:
                        self._piece(piece, chunked)
                        if not await self._room():
                            self.done = True
                            getattr(body, "close", lambda: None)()
                            return
        except EngineError:  # the connection is gone
            self.done = True
            return
        except Exception:
            self._broken(request)
            return
        self._finish_stream(chunked)

    async def _room(self) -> bool:
        """Wait while the connection's queued output is at
        HTTP_BODY_HIGH_WATER (looking again after HTTP_BODY_WAIT, doubling
        up to HTTP_BODY_MAX_WAIT); False once the connection is gone."""
        conn = self.conn
        engine, wait = conn.server.engine, limits.HTTP_BODY_WAIT
        while not conn.closed and engine.output_size(conn.id) >= limits.HTTP_BODY_HIGH_WATER:
            await asyncio.sleep(wait)
            wait = min(2 * wait, limits.HTTP_BODY_MAX_WAIT)
        return not conn.closed

    def _whole(self, request: Request, response: Response, body: Union[bytes, bytearray, memoryview]) -> bytes:
        head = self._head(request, response, len(body))
        if request.method == "HEAD" or response.status in _NO_BODY_STATUS or response.status < 200:
            return head
        return head + bytes(body) if body else head

    def _begin_stream(self, request: Request, head: bytes) -> bool:
        """Write what is owed and the head; True if the body goes chunked."""
        self._out.append(head)
        out = b"".join(self._out)
        self._out = []
        self.conn.write(out)
        return request.version != "HTTP/1.0" and request.method != "HEAD"

    def _piece(self, piece: bytes, chunked: bool) -> None:
        if not isinstance(piece, (bytes, bytearray, memoryview)):
            raise TypeError(f"a body iterator gave {type(piece).__name__}, not bytes")
        if piece:
            self.conn.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else bytes(piece))

    def _finish_stream(self, chunked: bool) -> None:
        if chunked:
            self.conn.write(b"0\r\n\r\n")
        self._end()

    def _broken(self, request: Request) -> None:
        """The body's iterator failed after the head went out: the
        response cannot be ended well, so the connection is reset."""
        log.exception("the body of the response to %r failed", request)
        self.done = True
        self.conn.abort()

    def _stream(self, request: Request, head: bytes, body: Iterable[bytes]) -> None:
        """An iterator body: its pieces are drawn while the connection's
        queued output is below HTTP_BODY_HIGH_WATER (_write_body); the
        requests behind it wait in the buffer until it has ended."""
        chunked = self._begin_stream(request, head)
        if request.method == "HEAD":
            self._finish_stream(chunked)
            return
        try:
            pieces = iter(body)
        except Exception:
            self._broken(request)
            return
        self._body = _BodyPump(request, pieces, chunked)
        self._write_body()

    def _write_body(self) -> None:
        """Write the iterator body's next pieces until the connection's
        output reaches HTTP_BODY_HIGH_WATER, then look again after a wait
        (an engine timer: the engines say how much is queued, not when it
        drains); once it has ended, serve the requests that waited."""
        pump = self._body
        if pump is None:
            return
        pump.timer = None
        conn = self.conn
        engine = conn.server.engine
        queued = engine.output_size(conn.id)
        if queued < limits.HTTP_BODY_HIGH_WATER:
            pump.wait = limits.HTTP_BODY_WAIT  # it drains: look again soon
        try:
            while queued < limits.HTTP_BODY_HIGH_WATER:
                if conn.closed:  # writes are dropped from now on: no more pieces
                    self._body = None
                    pump.stop()
                    return
                piece = next(pump.pieces, _END)
                if piece is _END:
                    break
                self._piece(cast(bytes, piece), pump.chunked)
                queued = engine.output_size(conn.id)
            else:
                pump.timer = engine.call_later(pump.wait, self._write_body)
                pump.wait = min(2 * pump.wait, limits.HTTP_BODY_MAX_WAIT)
                pump.waited = True
                return
        except EngineError:  # the connection is gone (the threaded engine says so here)
            self._body = None
            pump.stop()
            return
        except Exception:
            self._body = None
            pump.stop()
            self._broken(pump.request)
            return
        self._body = None
        self._finish_stream(pump.chunked)
        if pump.waited:
            self._after_body()

    def _after_body(self) -> None:
        """An iterator body that waited has ended: close if that was the
        last response, else serve the requests that arrived meanwhile."""
        if self.done:
            self.conn.close()
            return
        self._pause(False)
        if self.buf:
            reply = self.feed(b"")
            if reply is not None:
                self.conn.write(cast(bytes, reply))
        self.conn.idle()


_KATA_SIMPLE_FIELDS = frozenset((b"connection", b"transfer-encoding", b"content-length",
                                  b"expect"))
_kata_cache: list[Any] = [b"", b""]


def _kata_reply() -> bytes:
    """The kata's 200, as the general path writes it, rebuilt once a second."""
    date = http_date()
    if _kata_cache[0] != date:
        _kata_cache[0] = date
        _kata_cache[1] = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: 13\r\nDate: " + date + b"\r\n\r\nHello, World!")
    return cast(bytes, _kata_cache[1])


class KataSession(HttpSession):
    """The built-in kata's session: a read that is exactly one plain
    ``GET / HTTP/1.1`` (one Host, no body, no Connection or Expect) is
    answered with the prebuilt 200, without a Request or a state-machine
    step (the cycle would end where it began, IDLE/IDLE). Anything else
    takes the general path, which answers it byte for byte the same.

    On an engine that offers it (the C engine: csrc/loop.h's
    fn_loop_http_kata) the plain kata requests are answered by the engine
    itself with this reply, refreshed here each second, and only the rest
    reach feed. The engine is asked only after the connection's first read,
    once that read has shown HTTP/1.1 (not HTTP/2's preface, which is only
    valid as a connection's first bytes: Python must see those) and left
    nothing half read here."""

    _engine: Any = None  # answering the kata in the engine (serve_http_kata)
    _offered = False
    _offers_http = False

    def _offer_engine(self) -> None:
        """Offer the engine to answer the plain kata requests itself, if
        this connection speaks HTTP/1.1 and holds nothing half done."""
        if self.h2 is not None or self.buf or self.pending is not None or self.done \
                or self.draining:
            return
        self._offered = True
        engine, lim = self.conn.server.engine, self.limits
        if engine.serve_http_kata(self.conn.id, True, lim.max_request_line,
                                  lim.max_header_bytes, lim.max_header_fields):
            self._engine = engine
            self._refresh_engine()

    def _refresh_engine(self) -> None:
        """Give the engine this second's reply (it hands the kata to us
        once its reply is a second old)."""
        reply = _kata_reply()
        if self._engine.http_kata_second != _date_cache[0]:
            self._engine.set_http_kata_reply(reply, _date_cache[0])

    def _h2_began(self) -> None:
        if self._engine is not None:
            self._engine.serve_http_kata(self.conn.id, False)
            self._engine = None

    def drain(self) -> Optional[bytes]:
        if self._engine is not None:
            self._engine.serve_http_kata(self.conn.id, False)  # Connection: close from now on
            self._engine = None
        return super().drain()

    def feed(self, data: bytes) -> Union[bytes, None, Awaitable[Optional[bytes]]]:
        if self.h2 is not None and self._is_h2(data):
            return cast(Union[bytes, None, Awaitable[Optional[bytes]]], self.h2.feed(data))
        if self._engine is not None:
            self._refresh_engine()
        reply = self._kata(data)
        if not self._offered:
            self._offer_engine()
        return reply

    def _kata(self, data: bytes) -> Union[bytes, None, Awaitable[Optional[bytes]]]:
        if self.buf or self.pending is not None or self.done or self.draining:
            return super().feed(data)
        try:
            head = self.parser.parse(data)
        except HttpError:
            return super().feed(data)  # the error is sticky: the general path reports it
        if head is None:
            self.buf += data  # the parser's place is kept relative to this start
            self._arm_timer()
            return None
        self._heads += 1
        if (head.end == len(data) and head.minor == 1
                and data[head.method_start:head.method_end] == b"GET"
                and data[head.target_start:head.target_end] == b"/"):
            hosts = 0
            for a, b, _, _ in head.headers:
                name = data[a:b].lower()
                if name == b"host":
                    hosts += 1
                elif name in _KATA_SIMPLE_FIELDS:
                    hosts = 2
                    break
            if hosts == 1:
                return _kata_reply()
        self.parser.reset()
        return super().feed(data)


class HttpServer(Server):
    """A Server whose HTTP listeners use these request limits (a plain
    Server serves ``protocol="http"`` with the defaults):

    max_request_line (414), max_header_bytes and max_header_fields (431),
    max_body (413), header_timeout (seconds for a request head once its
    first byte arrived: 408; None never). Every other keyword is Server's.
    """

    def __init__(self, *, max_request_line: int = limits.DEFAULT_HTTP_MAX_REQUEST_LINE,
                 max_header_bytes: int = limits.DEFAULT_HTTP_MAX_HEADER_BYTES,
                 max_header_fields: int = limits.DEFAULT_HTTP_MAX_HEADER_FIELDS,
                 max_body: int = limits.DEFAULT_HTTP_MAX_BODY,
                 header_timeout: Optional[float] = limits.DEFAULT_HTTP_HEADER_TIMEOUT,
                 **server_options: Any) -> None:
        self.http_limits = HttpLimits(max_request_line, max_header_bytes, max_header_fields,
                                      max_body, header_timeout)
        super().__init__(**server_options)


_DEFAULT_LIMITS = HttpLimits()


def _http_session(conn: Connection, handler: Any) -> Session:
    host = conn.server
    http_limits = host.http_limits if isinstance(host, HttpServer) else _DEFAULT_LIMITS
    if handler is None:
        return KataSession(conn, _KATA, http_limits)
    return HttpSession(conn, handler, http_limits)


_KATA = kata_app()

MAX_REQUEST_LINE = Option("--max-request-line", type=size,
                          default=limits.DEFAULT_HTTP_MAX_REQUEST_LINE, metavar="SIZE",
                          help="longest request line, else 414 (default: 8K)")
MAX_HEADER_BYTES = Option("--max-header-bytes", type=size,
                          default=limits.DEFAULT_HTTP_MAX_HEADER_BYTES, metavar="SIZE",
                          help="largest request head, else 431 (default: 64K)")
MAX_HEADER_FIELDS = Option("--max-header-fields", type=count,
                           default=limits.DEFAULT_HTTP_MAX_HEADER_FIELDS, metavar="N",
                           help="most header fields, else 431 (default: %(default)s)")
MAX_BODY = Option("--max-body", type=size, default=limits.DEFAULT_HTTP_MAX_BODY,
                  metavar="SIZE", help="largest request body, else 413 (default: 1M)")
HEADER_TIMEOUT = Option("--header-timeout", type=seconds,
                        default=limits.DEFAULT_HTTP_HEADER_TIMEOUT, metavar="SECONDS",
                        help="seconds for a request head to arrive, else 408 "
                        "(default: %(default)s)")


def _make_http_server(values: Mapping[str, Any], server_options: dict[str, Any]) -> HttpServer:
    return HttpServer(**values, **server_options)


#: HTTP/1.1 as a registered unit (``--protocol http``).
HTTP = register(ProtocolUnit(
    HTTP_PROTOCOL, help="HTTP/1.1 (--handler: an App; default: the kata)",
    session=_http_session, echo=False,
    options=(MAX_REQUEST_LINE, MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_BODY, HEADER_TIMEOUT),
    make_server=_make_http_server, needs_asyncio=is_async_handler))
