"""HTTP/2 served on the protocol seam (``--protocol h2``, prior knowledge;
``--protocol http`` hands its HTTP/2 connections here too).

One :class:`H2Session` per connection, fed every read (raw framing), over
one :class:`~fastnet.h2.H2Connection`. What it runs:

* a ``fastnet.http`` App (or any ``handler(request)``), as HTTP/1.1 does.
  A plain (sync) app is served inside ``feed``: a request is answered in
  the read that ends it, its body buffered up to max_body (413 past it),
  the response queued as far as the peer's windows allow, the rest sent
  as WINDOW_UPDATEs come (reset after window_timeout without one). An app
  with ``async def`` routes runs on asyncio, one task per stream
  (``multiplexed``), reading and writing with flow control;
* a stream handler (:func:`fastnet.h2.serve_streams`): one task per
  stream, ``await handler(stream)``; with an ``on_complete`` hook, a
  request complete in its read is answered inside ``feed`` first (no task:
  see fastnet.h2.streams), and only the rest become tasks.

The control plane: a graceful drain sends GOAWAY with the last stream
processed and closes once the streams in flight are done; keep-alive
probes are PINGs (``--keepalive-interval``); a connection turned away gets
SETTINGS and GOAWAY(REFUSED_STREAM); streams past the concurrency limit get
RST_STREAM(REFUSED_STREAM); a connection error is answered with GOAWAY and
its code, then that connection closes.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import struct
from threading import get_ident
from typing import Any, Awaitable, Mapping, Optional, Union, cast

from .. import limits
from ..codec.h2frame import Flag, FrameType, Setting
from ..engine.base import TimerHandle
from ..errors import H2ErrorCode, H2StreamReset, ProtocolError
from ..http.app import Headers as HttpHeaders
from ..http.app import Request, Response, is_async_handler, kata_app
from ..http.server import MAX_BODY, HttpLimits, HttpServer, http_date
from ..server import Connection, ProtocolSpec, ProtocolUnit, Session, register
from ..server.options import Option, count, seconds, size
from .connection import H2Connection
from .events import (ConnectionTerminated, DataReceived, Event, PingAcked, PingReceived,
                     RequestComplete,
                     RequestReceived, StreamEnded, StreamReset, TrailersReceived, WindowUpdated)
from .streams import CompleteHandler, ServerStream, Stream, StreamApp, deliver

__all__ = ["H2", "H2Options", "H2Server", "H2Session", "H2_PROTOCOL"]

log = logging.getLogger("fastnet.h2")

E = H2ErrorCode


class H2Options:
    """A server's HTTP/2 settings and limits (defaults in fastnet.limits).

    max_concurrent_streams (SETTINGS_MAX_CONCURRENT_STREAMS), stream_window
    (SETTINGS_INITIAL_WINDOW_SIZE), connection_window (opened at the start),
    max_header_list_size (SETTINGS_MAX_HEADER_LIST_SIZE), window_timeout
    (seconds a response may wait for the peer's window before its stream is
    reset; None: never), max_pending_output (response bytes of a sync app
    waiting for windows, per connection)."""

    __slots__ = ("max_concurrent_streams", "stream_window", "connection_window",
                 "max_header_list_size", "window_timeout", "max_pending_output")

    def __init__(self, max_concurrent_streams: int = limits.DEFAULT_H2_MAX_CONCURRENT_STREAMS,
                 stream_window: int = limits.DEFAULT_H2_STREAM_WINDOW,
                 connection_window: int = limits.DEFAULT_H2_CONNECTION_WINDOW,
                 max_header_list_size: int = limits.DEFAULT_H2_MAX_HEADER_LIST_SIZE,
                 window_timeout: Optional[float] = limits.DEFAULT_H2_WINDOW_TIMEOUT,
                 max_pending_output: int = limits.DEFAULT_H2_MAX_PENDING_OUTPUT) -> None:
        for name, value, top in (("max_concurrent_streams", max_concurrent_streams, 2**31 - 1),
                                 ("stream_window", stream_window, limits.H2_MAX_WINDOW_SIZE),
                                 ("connection_window", connection_window, limits.H2_MAX_WINDOW_SIZE),
                                 ("max_header_list_size", max_header_list_size, 2**32 - 1),
                                 ("max_pending_output", max_pending_output, 2**62)):
            if not 1 <= value <= top:
                raise ValueError(f"{name} must be in 1..{top}, not {value}")
        if window_timeout is not None and not window_timeout > 0:
            raise ValueError("window_timeout must be positive (or None: never)")
        self.max_concurrent_streams = max_concurrent_streams
        self.stream_window = stream_window
        self.connection_window = connection_window
        self.max_header_list_size = max_header_list_size
        self.window_timeout = window_timeout
        self.max_pending_output = max_pending_output

    def settings(self) -> dict[int, int]:
        """The SETTINGS a server connection advertises."""
        return {Setting.MAX_CONCURRENT_STREAMS: self.max_concurrent_streams,
                Setting.INITIAL_WINDOW_SIZE: self.stream_window,
                Setting.MAX_HEADER_LIST_SIZE: self.max_header_list_size}


_DEFAULT_OPTIONS = H2Options()
_DEFAULT_LIMITS = HttpLimits()

_FRAME = struct.Struct(">BHBBI")


def _goaway(code: int, debug: bytes = b"") -> bytes:
    payload = struct.pack(">II", 0, code) + debug
    return _FRAME.pack(0, len(payload), FrameType.GOAWAY, 0, 0) + payload


#: What a connection turned away reads: our (empty) SETTINGS, then GOAWAY.
_SETTINGS_EMPTY = _FRAME.pack(0, 0, FrameType.SETTINGS, 0, 0)
_PROBE_DATA = b"fastnet!"
#: The keep-alive probe and the answer the server drops.
PROBE = _FRAME.pack(0, 8, FrameType.PING, 0, 0) + _PROBE_DATA
PROBE_REPLY = _FRAME.pack(0, 8, FrameType.PING, Flag.ACK, 0) + _PROBE_DATA


def _rejection(why: str) -> Optional[bytes]:
    text = b"server shutting down" if why == "shutdown" else b"server busy"
    return _SETTINGS_EMPTY + _goaway(E.REFUSED_STREAM, text)


def _error_reply(error: ProtocolError) -> Optional[bytes]:
    return None  # the session has queued its GOAWAY already


def _handler_error(error: BaseException) -> Optional[bytes]:
    return _goaway(E.INTERNAL_ERROR)


#: HTTP/2's wire: raw reads; goodbyes, rejections and failures as GOAWAY.
H2_PROTOCOL = ProtocolSpec("h2", "raw", _error_reply, _rejection, probe=PROBE,
                           probe_reply=PROBE_REPLY, handler_error=_handler_error)

#: The events that concern one stream (they have a stream_id).
_STREAM_EVENTS = frozenset((DataReceived, StreamEnded, TrailersReceived, WindowUpdated,
                            StreamReset))

#: Fields of an app's Response that HTTP/2 does not carry or that we set.
_DROPPED = frozenset(("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                      "upgrade", "content-length", "date"))


def _request(stream_id: int, headers: list[tuple[bytes, bytes]], body: bytes,
             peer: tuple[str, int]) -> Request:
    """A fastnet.http Request from an HTTP/2 header list (Host from
    :authority when the request has none)."""
    method = path = authority = ""
    items = []
    has_host = False
    for name, value in headers:
        if name[:1] == b":":
            if name == b":method":
                method = value.decode("latin-1")
            elif name == b":path":
                path = value.decode("latin-1")
            elif name == b":authority":
                authority = value.decode("latin-1")
            continue
        if name == b"host":
            has_host = True
        items.append((name.decode("latin-1"), value.decode("latin-1")))
    if authority and not has_host:
        items.insert(0, ("host", authority))
    return Request(method, path, HttpHeaders(items), body, "HTTP/2", peer)


def _result(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, (bytes, bytearray, memoryview, str)):
        return Response(result)
    raise TypeError(f"a route returned {type(result).__name__}, not a Response, bytes or str")


#: The fields of recent responses less the date, by (status, headers, length).
_FIELDS: dict[tuple[int, tuple[tuple[str, str], ...], Optional[int]],
              tuple[tuple[bytes, bytes], ...]] = {}
_MAX_FIELDS = 64


def _response_fields(response: Response, length: Optional[int]) -> tuple[tuple[bytes, bytes], ...]:
    """A Response's HTTP/2 header list: :status, its fields lowercased less
    those HTTP/2 drops, content-length, date. Apps answer alike, so the
    list (less the date) is kept per (status, headers, length): the same
    tuple again is also the same cached HPACK block (send_response)."""
    key = (response.status, tuple(response.headers.items()), length)
    fields = _FIELDS.get(key)
    if fields is None:
        built = [(b":status", b"%d" % response.status)]
        for name, value in key[1]:
            low = name.lower()
            if low in _DROPPED:
                continue
            built.append((low.encode("latin-1"), value.encode("latin-1")))
        if length is not None and response.status not in (204, 304) and response.status >= 200:
            built.append((b"content-length", b"%d" % length))
        if len(_FIELDS) >= _MAX_FIELDS:
            _FIELDS.clear()
        fields = _FIELDS[key] = tuple(built)
    return fields + ((b"date", http_date()),)


class _Pending:
    """A sync app's request: its head, its body so far; then its response
    bytes still waiting for a window."""

    __slots__ = ("headers", "parts", "size", "out", "progressed")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.parts: list[bytes] = []
        self.size = 0
        self.out: Optional[memoryview] = None
        self.progressed = True


class _Early:
    """A request of a session with an on_complete hook, held within the
    read that opened it: its head, its DATA (with flow-controlled sizes),
    its trailers. Bounded by the read: at the read's end it is answered
    or becomes a stream."""

    __slots__ = ("headers", "parts", "trailers")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.parts: list[tuple[bytes, int]] = []
        self.trailers: Optional[list[tuple[bytes, bytes]]] = None


class H2Session(Session):
    """One HTTP/2 connection (see the module's docstring)."""

    def __init__(self, conn: Connection, handler: Any, options: H2Options = _DEFAULT_OPTIONS,
                 http_limits: HttpLimits = _DEFAULT_LIMITS,
                 h2: Optional[H2Connection] = None) -> None:
        super().__init__(conn)
        self.handler = kata_app() if handler is None else handler
        self.streaming = isinstance(handler, StreamApp)
        self._quick: Optional[CompleteHandler] = (
            cast(StreamApp, handler).on_complete if self.streaming else None)
        self.is_async = self.multiplexed = self.streaming or is_async_handler(self.handler)
        self.options = options
        self.http_limits = http_limits
        self.window_timeout = options.window_timeout
        self.h2 = h2 or H2Connection(False, options.settings(),
                                     connection_window=options.connection_window,
                                     whole_requests=self._quick is not None)
        if h2 is None:
            self.h2.initiate()
        self.peer = ("", 0)
        self.blocked: set[Stream] = set()
        self.draining = False
        self.done = False
        self._pending: dict[int, _Pending] = {}     # sync: requests and responses in progress
        self._pending_output = 0
        self._timer: Optional[TimerHandle] = None
        self._streams: dict[int, ServerStream] = {}  # async: streams being served
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._flush_soon = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread = -1   # the thread whose running loop _loop is

    # -- the seam ----------------------------------------------------------

    def opened(self) -> None:
        self.peer = self.conn.peer
        out = self.h2.data_to_send()
        if out:
            self.conn.write(out)

    def feed(self, data: bytes) -> Union[bytes, None, Awaitable[Optional[bytes]]]:
        """One read: its events handled, what they queued as the reply."""
        if self.done:
            return None
        if self.is_async:
            # Streams become tasks of the running loop; the read itself is
            # handled now (a request complete in it may be answered at once).
            # The loop is asked for once per thread, not per read (asyncio's
            # get_running_loop makes a getpid system call each time).
            if self._loop_thread != get_ident():
                try:
                    self._loop = asyncio.get_running_loop()
                except RuntimeError:
                    return self._feed_async(data)
                self._loop_thread = get_ident()
            self._async_events(self.h2.receive(data))
        else:
            self._sync_events(self.h2.receive(data))
        return self._reply()

    async def _feed_async(self, data: bytes) -> Optional[bytes]:
        """feed off the loop's thread: handled once on the loop."""
        return self.feed(data)  # type: ignore[return-value]

    def _reply(self) -> Optional[bytes]:
        out = self.h2.data_to_send()
        if self.done:
            if out:
                self.conn.write(out)
            return None
        return out or None

    def drain(self) -> Optional[bytes]:
        """A graceful drain: GOAWAY with the last stream processed; the
        streams at or below it are served to their end."""
        self.draining = True
        if not self.h2.terminated and self.h2.goaway_sent is None:
            self.h2.close(E.NO_ERROR)
        return self.h2.data_to_send() or None

    def idle(self) -> bool:
        return not self._pending and not self._streams

    def keepalive_probe(self) -> Optional[bytes]:
        """A PING (the server drops its answer, as the h2 protocol's probe_reply)."""
        return PROBE

    def closed(self) -> None:
        self.done = True
        self._cancel_timer()
        for stream in list(self._streams.values()):
            stream._was_reset(E.CANCEL, False, "the connection closed")
        for task in list(self._tasks.values()):
            task.cancel()
        self._pending.clear()

    # -- what both modes share -----------------------------------------------

    def ping_received(self) -> None:
        """The peer sent a PING (the connection has answered it already):
        the hook of a policy over pings (gRPC's keep-alive enforcement,
        fastnet.grpc); nothing by default."""

    def ping_acked(self, data: bytes) -> None:
        """The peer answered one of our PINGs (``data``: its 8 bytes; the
        keep-alive probe's answer never gets here, the server drops it):
        the hook of a session's own keep-alive (fastnet.grpc's); nothing by
        default. Called for streams' sessions (async or stream handlers)."""

    def _terminated(self, event: ConnectionTerminated) -> None:
        if not event.remote:  # the peer broke the protocol: our GOAWAY is queued
            self.done = True
            out = self.h2.data_to_send()
            if out:
                self.conn.write(out)
            error = event.error if isinstance(event.error, ProtocolError) else ProtocolError(str(event.error))
            self.conn.protocol_error(error)
            return
        if event.error_code != E.NO_ERROR or self.idle():
            self.done = True
            self.conn.close()

    def _finished(self) -> None:
        """A stream was served to its end (or reset): close if that was the last."""
        if self.idle() and (self.draining or self.h2.goaway_received is not None):
            out = self.h2.data_to_send()  # the stream's last frames go before the close
            if out:
                self.conn.write(out)
            if self.h2.goaway_received is not None:
                self.done = True
                self.conn.close()
            else:
                self.conn.idle()

    # -- a sync app, inside feed ---------------------------------------------

    def _sync_events(self, events: list[Event]) -> None:
        pending = self._pending
        h2 = self.h2
        for event in events:
            if self.done:
                break
            kind = type(event)
            if kind is RequestReceived:
                pending[event.stream_id] = _Pending(event.headers)  # type: ignore[attr-defined]
            elif kind is DataReceived:
                assert isinstance(event, DataReceived)
                entry = pending.get(event.stream_id)
                h2.acknowledge(event.stream_id, event.flow_controlled_length)
                if entry is None or entry.out is not None:
                    continue
                entry.size += len(event.data)
                if entry.size > self.http_limits.max_body:
                    self._too_large(event.stream_id, entry)
                    continue
                entry.parts.append(event.data)
            elif kind is StreamEnded:
                sid = event.stream_id  # type: ignore[attr-defined]
                entry = pending.get(sid)
                if entry is not None and entry.out is None:
                    self._serve_sync(sid, entry)
            elif kind is WindowUpdated:
                if self._pending_output:
                    self._send_pending()
            elif kind is StreamReset:
                entry = pending.pop(event.stream_id, None)  # type: ignore[attr-defined]
                if entry is not None:
                    if entry.out is not None:
                        self._pending_output -= len(entry.out)
                    self._finished()
            elif kind is ConnectionTerminated:
                assert isinstance(event, ConnectionTerminated)
                self._terminated(event)
            elif kind is TrailersReceived:
                pass  # a request's trailers: fastnet.http requests have none
            elif kind is PingReceived:
                self.ping_received()

    def _too_large(self, stream_id: int, entry: _Pending) -> None:
        limit = self.http_limits.max_body
        self._respond(stream_id, entry, Response(f"Payload Too Large: body exceeds max_body={limit}\n",
                                                 413))
        if stream_id not in self._pending:
            self.h2.reset_stream(stream_id, E.NO_ERROR)  # stop the body (8.1)

    def _serve_sync(self, stream_id: int, entry: _Pending) -> None:
        request = _request(stream_id, entry.headers, b"".join(entry.parts), self.peer)
        entry.parts = []
        try:
            response = _result(self.handler(request))
            body = response.body
            if not isinstance(body, (bytes, bytearray, memoryview)):
                if hasattr(body, "__aiter__"):
                    raise TypeError("an async iterator body needs an async app")
                response.body = b"".join(body)
        except Exception:
            log.exception("the app failed on %r from %s", request, self.peer)
            response = Response(b"Internal Server Error\n", 500)
        self._respond(stream_id, entry, response, request.method == "HEAD")

    def _respond(self, stream_id: int, entry: _Pending, response: Response, head: bool = False) -> None:
        body = cast(Union[bytes, bytearray, memoryview], response.body)
        h2 = self.h2
        fields = _response_fields(response, len(body))
        if head or response.status in (204, 304) or not body:
            h2.send_response(stream_id, fields)
            del self._pending[stream_id]
            self._finished()
            return
        if h2.send_response(stream_id, fields, body):  # the windows took all of it
            del self._pending[stream_id]
            self._finished()
            return
        h2.send_headers(stream_id, fields)
        sent = h2.send_data(stream_id, body, end_stream=True)
        if sent == len(body):
            del self._pending[stream_id]
            self._finished()
            return
        entry.out = memoryview(body)[sent:]
        self._pending_output += len(entry.out)
        if self._pending_output > self.options.max_pending_output:
            self._calm("response bytes waiting for the peer's window exceed "
                       f"max_pending_output={self.options.max_pending_output}")
            return
        self._arm_timer()

    def _send_pending(self) -> None:
        h2 = self.h2
        for stream_id, entry in list(self._pending.items()):
            out = entry.out
            if out is None:
                continue
            sent = h2.send_data(stream_id, out, end_stream=True)
            if not sent:
                continue
            entry.progressed = True
            self._pending_output -= sent
            if sent == len(out):
                del self._pending[stream_id]
                self._finished()
            else:
                entry.out = out[sent:]

    def _calm(self, why: str) -> None:
        log.warning("closing HTTP/2 connection from %s: %s", self.peer, why)
        self.h2.close(E.ENHANCE_YOUR_CALM, additional_data=why.encode())
        self.done = True
        self.conn.write(self.h2.data_to_send())
        self.conn.close()

    def _arm_timer(self) -> None:
        timeout = self.window_timeout
        if timeout is None or self._timer is not None:
            return
        self._timer = self.conn.server.engine.call_later(timeout, self._stalled)

    def _stalled(self) -> None:
        """Every window_timeout while responses wait: reset those that did
        not move since the last time (the peer never opened their window)."""
        self._timer = None
        if self.done:
            return
        for stream_id, entry in list(self._pending.items()):
            if entry.out is None:
                continue
            if entry.progressed:
                entry.progressed = False
                continue
            self._pending_output -= len(entry.out)
            del self._pending[stream_id]
            self.h2.reset_stream(stream_id, E.CANCEL)
            log.info("reset stream %d from %s: no window for window_timeout=%ss", stream_id,
                     self.peer, self.window_timeout)
        out = self.h2.data_to_send()
        if out:
            self.conn.write(out)
        if self._pending_output:
            self._arm_timer()
        self._finished()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- an async app or a stream handler: a task per stream -----------------

    def flush(self) -> None:
        """Write what the connection queued, once per loop turn."""
        if not self._flush_soon and self._loop is not None:
            self._flush_soon = True
            self._loop.call_soon(self._write_out)

    def _write_out(self) -> None:
        self._flush_soon = False
        out = self.h2.data_to_send()
        if out and not self.conn.closed:
            self.conn.write(out)

    def stream_done(self, stream: Stream) -> None:
        if self._streams.pop(stream.stream_id, None) is not None:
            self._finished()

    def _async_events(self, events: list[Event]) -> None:
        streams = self._streams
        quick = self._quick
        early: dict[int, _Early] = {}
        for event in events:
            kind = type(event)
            if kind is RequestComplete:
                assert isinstance(event, RequestComplete)
                self._whole(event, quick)
                continue
            if quick is not None:
                if kind is RequestReceived:
                    assert isinstance(event, RequestReceived)
                    early[event.stream_id] = _Early(event.headers)
                    continue
                if early and kind in _STREAM_EVENTS:
                    entry = early.get(event.stream_id)  # type: ignore[attr-defined]
                    if entry is not None:
                        self._early_event(event, entry, early, quick)
                        continue
            if deliver(event, streams, self):
                continue
            if kind is RequestReceived:
                assert isinstance(event, RequestReceived)
                self._start_stream(event.stream_id, event.headers)
            elif kind is ConnectionTerminated:
                assert isinstance(event, ConnectionTerminated)
                for stream_id, entry in list(early.items()):
                    self._promote(stream_id, entry, False)
                early.clear()
                if not event.remote or event.error_code != E.NO_ERROR:
                    for stream in list(streams.values()):
                        stream._was_reset(event.error_code, event.remote, "the connection ended")
                self._terminated(event)
            elif kind is PingReceived:
                self.ping_received()
            elif kind is PingAcked:
                assert isinstance(event, PingAcked)
                self.ping_acked(event.data)
        for stream_id, entry in early.items():  # not complete in this read
            self._promote(stream_id, entry, False)

    def _early_event(self, event: Event, entry: _Early, early: dict[int, _Early],
                     quick: CompleteHandler) -> None:
        kind = type(event)
        if kind is DataReceived:
            assert isinstance(event, DataReceived)
            entry.parts.append((event.data, event.flow_controlled_length))
        elif kind is TrailersReceived:
            assert isinstance(event, TrailersReceived)
            entry.trailers = event.headers
        elif kind is StreamEnded:
            assert isinstance(event, StreamEnded)
            del early[event.stream_id]
            self._complete(event.stream_id, entry, quick)
        elif kind is StreamReset:
            assert isinstance(event, StreamReset)
            del early[event.stream_id]
            self.h2.acknowledge(event.stream_id, sum(flow for _, flow in entry.parts))
        # WindowUpdated: nothing is being sent on it yet

    def _complete(self, stream_id: int, entry: _Early, quick: CompleteHandler) -> None:
        """A request complete in one read: on_complete answers it now, or
        it becomes a stream."""
        if entry.trailers is not None:
            self._promote(stream_id, entry, True)
            return
        parts = entry.parts
        body = parts[0][0] if len(parts) == 1 else b"".join(data for data, _ in parts)
        try:
            reply = quick(stream_id, entry.headers, body, self.peer)
        except Exception:
            log.exception("on_complete failed on stream %d from %s", stream_id, self.peer)
            reply = None
            self.h2.reset_stream(stream_id, E.INTERNAL_ERROR)
        else:
            if reply is None:
                self._promote(stream_id, entry, True)
                return
        if parts:
            self.h2.acknowledge(stream_id, sum(flow for _, flow in parts))
        if reply is not None:
            headers, out, trailers = reply
            if not self.h2.send_response(stream_id, headers, out, trailers):
                stream = self._start_stream(stream_id, entry.headers, (), True, run=False)
                self._run(stream, self._send_reply(stream, headers, out, trailers))
                return
        self._finished()

    def _whole(self, event: RequestComplete, quick: Optional[CompleteHandler]) -> None:
        """A request the connection saw whole (one event): on_complete
        answers it now, or it becomes a stream."""
        stream_id = event.stream_id
        h2 = self.h2
        try:
            reply = quick(stream_id, event.headers, event.data, self.peer) \
                if quick is not None else None
        except Exception:
            log.exception("on_complete failed on stream %d from %s", stream_id, self.peer)
            h2.reset_stream(stream_id, E.INTERNAL_ERROR)
            h2.acknowledge(stream_id, event.flow_controlled_length)
            self._finished()
            return
        if reply is None:
            self._start_stream(stream_id, event.headers,
                               ((event.data, event.flow_controlled_length),), True)
            return
        headers, out, trailers = reply
        if not h2.answer(stream_id, headers, out, trailers, event.flow_controlled_length):
            stream = self._start_stream(stream_id, event.headers, (), True, run=False)
            self._run(stream, self._send_reply(stream, headers, out, trailers))
            return
        self._finished()

    def _promote(self, stream_id: int, entry: _Early, ended: bool) -> None:
        """An early request the stream path serves."""
        stream = self._start_stream(stream_id, entry.headers, entry.parts, ended)
        stream.trailers = entry.trailers

    async def _send_reply(self, stream: ServerStream, headers: Any, body: Any,
                          trailers: Any) -> None:
        """An on_complete reply larger than the windows were: sent as they open."""
        try:
            stream.send_headers(headers)
            await stream.send_data(body, end_stream=trailers is None)
            if trailers is not None:
                stream.send_trailers(trailers)
        except H2StreamReset:
            pass

    def _start_stream(self, stream_id: int, headers: list[tuple[bytes, bytes]],
                      parts: Any = (), ended: bool = False, run: bool = True) -> ServerStream:
        stream = ServerStream(self, stream_id, headers)
        self._streams[stream_id] = stream
        for data, flow in parts:
            stream._data(data, flow)
        if ended:
            stream._ended()
        if run:
            self._run(stream, (self._run_stream if self.streaming else self._run_app)(stream))
        return stream

    def _run(self, stream: ServerStream, work: Any) -> None:
        assert self._loop is not None
        stream_id = stream.stream_id
        task = self._loop.create_task(work)
        self._tasks[stream_id] = task

        def forget(_task: "asyncio.Task[None]") -> None:
            self._tasks.pop(stream_id, None)
        task.add_done_callback(forget)

    async def _run_stream(self, stream: ServerStream) -> None:
        handler = cast(StreamApp, self.handler).handler
        try:
            await handler(stream)
        except H2StreamReset:
            pass
        except Exception:
            log.exception("the stream handler failed on stream %d from %s", stream.stream_id,
                          self.peer)
            stream.reset(E.INTERNAL_ERROR)
            return
        if not stream.ended and not stream._local_ended:
            if stream._headers_sent:
                stream.end()
            else:
                stream.reset(E.INTERNAL_ERROR)

    async def _run_app(self, stream: ServerStream) -> None:
        try:
            try:
                body = await stream.read_all(self.http_limits.max_body)
            except ValueError:
                limit = self.http_limits.max_body
                response = Response(f"Payload Too Large: body exceeds max_body={limit}\n", 413)
                body = None
            if body is not None:
                request = _request(stream.stream_id, stream.headers, body, self.peer)
                try:
                    result = self.handler(request)
                    if inspect.isawaitable(result):
                        result = await result
                    response = _result(result)
                except Exception:
                    log.exception("the app failed on %r from %s", request, self.peer)
                    response = Response(b"Internal Server Error\n", 500)
            await self._send_response(stream, response, stream.method == "HEAD")
        except H2StreamReset:
            pass

    async def _send_response(self, stream: ServerStream, response: Response, head: bool) -> None:
        body = response.body
        if isinstance(body, (bytes, bytearray, memoryview)):
            no_body = head or not body or response.status in (204, 304)
            if stream.ended:  # reset while the app ran (413 after our CANCEL)
                return
            stream.send_headers(_response_fields(response, len(body)), end_stream=no_body)
            if not no_body:
                await stream.send_data(body, end_stream=True)
            return
        stream.send_headers(_response_fields(response, None), end_stream=head)
        if head:
            return
        try:
            if hasattr(body, "__aiter__"):
                async for piece in cast(Any, body):
                    await stream.send_data(piece)
            else:
                for piece in body:
                    await stream.send_data(piece)
        except H2StreamReset:
            raise
        except Exception:
            log.exception("the body of the response on stream %d failed", stream.stream_id)
            stream.reset(E.INTERNAL_ERROR)
            return
        stream.end()


class H2Server(HttpServer):
    """A Server whose HTTP/2 (and HTTP/1.1) listeners use these settings and
    limits: the keywords of :class:`H2Options` (max_concurrent_streams,
    stream_window, connection_window, max_header_list_size,
    window_timeout, max_pending_output), those of HttpServer, then
    Server's."""

    def __init__(self, *, max_concurrent_streams: int = limits.DEFAULT_H2_MAX_CONCURRENT_STREAMS,
                 stream_window: int = limits.DEFAULT_H2_STREAM_WINDOW,
                 connection_window: int = limits.DEFAULT_H2_CONNECTION_WINDOW,
                 max_header_list_size: int = limits.DEFAULT_H2_MAX_HEADER_LIST_SIZE,
                 window_timeout: Optional[float] = limits.DEFAULT_H2_WINDOW_TIMEOUT,
                 max_pending_output: int = limits.DEFAULT_H2_MAX_PENDING_OUTPUT,
                 **options: Any) -> None:
        self.h2_options = H2Options(max_concurrent_streams, stream_window, connection_window,
                                    max_header_list_size, window_timeout, max_pending_output)
        super().__init__(**options)


def server_options(conn: Connection) -> tuple[H2Options, HttpLimits]:
    """The HTTP/2 options and HTTP limits a connection's server gives."""
    host = conn.server
    return (host.h2_options if isinstance(host, H2Server) else _DEFAULT_OPTIONS,
            host.http_limits if isinstance(host, HttpServer) else _DEFAULT_LIMITS)


#: HTTP/1.1 fields that do not carry over to the stream of an h2c upgrade.
_NOT_CARRIED = frozenset(("connection", "upgrade", "http2-settings", "host", "keep-alive",
                          "proxy-connection", "transfer-encoding", "te"))


def upgrade_session(conn: Connection, handler: Any, request: Optional[Request] = None,
                    settings: bytes = b"") -> H2Session:
    """The H2Session an HTTP/1.1 connection of ``--protocol http`` becomes:
    on the client preface (request None: the caller calls opened()), or
    after ``Upgrade: h2c`` (the 101 written), with the request served as
    stream 1 and ``settings`` the decoded HTTP2-Settings."""
    options, http_limits = server_options(conn)
    if request is None:
        return H2Session(conn, handler, options, http_limits)
    h2 = H2Connection(False, options.settings(), connection_window=options.connection_window)
    h2.initiate_upgrade(settings)
    session = H2Session(conn, handler, options, http_limits, h2=h2)
    session.opened()
    fields = [(b":method", request.method.encode("latin-1")), (b":scheme", b"http"),
              (b":path", request.target.encode("latin-1")),
              (b":authority", (request.headers.get("host") or "").encode("latin-1"))]
    fields += [(name.lower().encode("latin-1"), value.encode("latin-1"))
               for name, value in request.headers if name.lower() not in _NOT_CARRIED]
    events: list[Event] = [RequestReceived(1, fields, True), StreamEnded(1)]
    if session.is_async:
        session._loop = asyncio.get_running_loop()
        session._async_events(events)
    else:
        session._sync_events(events)
    out = h2.data_to_send()
    if out:
        conn.write(out)
    return session


def _h2_session(conn: Connection, handler: Any) -> Session:
    options, http_limits = server_options(conn)
    return H2Session(conn, handler, options, http_limits)


MAX_CONCURRENT_STREAMS = Option(
    "--max-concurrent-streams", type=count, default=limits.DEFAULT_H2_MAX_CONCURRENT_STREAMS,
    metavar="N", help="HTTP/2 streams a client may have open, else REFUSED_STREAM "
    "(default: %(default)s)")
STREAM_WINDOW = Option("--stream-window", type=size, default=limits.DEFAULT_H2_STREAM_WINDOW,
                       metavar="SIZE", help="HTTP/2 flow-control window per stream "
                       "(default: %(default)s)")
CONNECTION_WINDOW = Option("--connection-window", type=size,
                           default=limits.DEFAULT_H2_CONNECTION_WINDOW, metavar="SIZE",
                           help="HTTP/2 flow-control window per connection (default: 1M)")
WINDOW_TIMEOUT = Option("--window-timeout", type=seconds, default=limits.DEFAULT_H2_WINDOW_TIMEOUT,
                        metavar="SECONDS", help="seconds a response waits for the client's "
                        "window before its stream is reset (default: %(default)s)")


def _make_h2_server(values: Mapping[str, Any], server_options: dict[str, Any]) -> H2Server:
    return H2Server(**values, **server_options)


#: HTTP/2 with prior knowledge as a registered unit (``--protocol h2``).
H2 = register(ProtocolUnit(
    H2_PROTOCOL, help="HTTP/2 cleartext (--handler: an App; default: the kata)",
    session=_h2_session, echo=False,
    options=(MAX_CONCURRENT_STREAMS, STREAM_WINDOW, CONNECTION_WINDOW, WINDOW_TIMEOUT, MAX_BODY),
    make_server=_make_h2_server, needs_asyncio=is_async_handler))
