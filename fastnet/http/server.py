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
"""
from __future__ import annotations

import base64
import inspect
import logging
import time
from email.utils import formatdate
from typing import (Any, AsyncIterable, Awaitable, Generator, Iterable, Mapping, Optional, Union,
                    cast)

from .. import limits
from ..codec import http1
from ..codec.http1 import ConnectionState, Event, Role
from ..engine.base import TimerHandle
from ..errors import (H2ConnectionError, HttpBodyTooLarge, HttpError, HttpMalformed, HttpTimeout,
                      HttpUnsupportedCoding, ProtocolError)
from ..server import Connection, ProtocolSpec, ProtocolUnit, Server, Session, register
from ..server.options import Option, count, seconds, size
from .app import Handler, Headers, Request, Response, is_async_handler, kata_app, reason_phrase

__all__ = ["HTTP", "HTTP_PROTOCOL", "HttpLimits", "HttpServer", "HttpSession"]

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
                             handler_error=_handler_error)

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


def _tokens(values: list[str]) -> list[str]:
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


class _Pending:
    """A request whose head has arrived, its body not yet whole."""

    __slots__ = ("request", "length", "chunked", "parts")

    def __init__(self, request: Request, length: int, chunked: bool) -> None:
        self.request = request
        self.length = length          # Content-Length bytes still to come
        self.chunked = chunked
        self.parts: list[bytes] = []  # chunked body so far


class HttpSession(Session):
    """One HTTP/1.1 connection (see the module's docstring)."""

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
        self.buf = bytearray()
        self.pending: Optional[_Pending] = None
        self.draining = False
        self.done = False          # answered Connection: close: read no more
        self._out: list[bytes] = []
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
        upgrade = None
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
                if self.done:
                    break
        except HttpError as error:
            self._fail(error)
            return None
        if upgrade is not None:
            return self._upgrade(upgrade)
        return self._flush()

    async def _feed_async(self, data: bytes) -> Optional[bytes]:
        if self.done:
            return None
        upgrade = None
        try:
            requests = self._requests(data)
            for request in requests:
                if _wants_h2c(request):
                    upgrade = request
                    requests.close()
                    break
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
        rest = bytes(self.buf)
        del self.buf[:]
        return session.feed(rest) if rest else None

    def drain(self) -> Optional[bytes]:
        """A graceful drain: every response from now on says Connection: close
        (HTTP/2: GOAWAY)."""
        self.draining = True
        if self.h2 is not None and self.h2 is not _UNDECIDED:
            return cast(Optional[bytes], self.h2.drain())
        return None

    def idle(self) -> bool:
        if self.h2 is not None and self.h2 is not _UNDECIDED:
            return bool(self.h2.idle())
        return True

    def closed(self) -> None:
        self._cancel_timer()
        if self.h2 is not None and self.h2 is not _UNDECIDED:
            self.h2.closed()

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
                    if (self._expects_continue(pending.request)
                            and len(buf) - pos < (pending.length or 1)):
                        self._out.append(_CONTINUE)
                if pending.chunked:
                    spans, pos, finished = self.chunks.decode(buf, pos)
                    pending.parts += [bytes(buf[s:e]) for s, e in spans]
                    if not finished:
                        break
                    self.chunks.reset()
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
        if not hasattr(body, "__aiter__"):
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
                async for piece in cast(AsyncIterable[bytes], body):
                    self._piece(piece, chunked)
        except Exception:
            self._broken(request)
            return
        self._finish_stream(chunked)

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
        chunked = self._begin_stream(request, head)
        try:
            if request.method != "HEAD":
                for piece in body:
                    self._piece(piece, chunked)
        except Exception:
            self._broken(request)
            return
        self._finish_stream(chunked)


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
    takes the general path, which answers it byte for byte the same."""

    def feed(self, data: bytes) -> Union[bytes, None, Awaitable[Optional[bytes]]]:
        if self.h2 is not None and self._is_h2(data):
            return cast(Union[bytes, None, Awaitable[Optional[bytes]]], self.h2.feed(data))
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
