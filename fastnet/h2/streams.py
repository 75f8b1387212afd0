"""The low-level HTTP/2 stream API (what gRPC stands on), both sides.

Server side: give ``serve_streams(handler)`` as the handler of an
``h2`` (or ``http``) listener; every request stream runs
``await handler(stream)`` with a :class:`ServerStream`::

    async def handler(stream):
        body = b"".join([chunk async for chunk in stream])
        stream.send_headers([(b":status", b"200"), (b"content-type", b"text/plain")])
        await stream.send_data(body)          # waits for the peer's window
        stream.send_trailers([(b"x-done", b"1")])

    server.listen("127.0.0.1", 0, protocol="h2", handler=serve_streams(handler))

The quick way, for requests that arrive whole (gRPC's unary calls):
``serve_streams(handler, on_complete=answer)`` asks
``answer(stream_id, headers, body, peer)`` about every request whose
headers, body and END_STREAM came in one read, inside that read, with no
task and no ServerStream. It returns ``(headers, body, trailers)``, sent
as HEADERS + DATA + trailing HEADERS in one go (blocks of repeated header
lists are cached; see ``H2Connection.send_response``), or None to take the
stream path (``handler(stream)``, the body already readable)::

    OK = ((b"grpc-status", b"0"),)
    def answer(stream_id, headers, body, peer):
        return ((b":status", b"200"), (b"content-type", b"application/grpc")), body, OK

Client side: ``conn = await open_connection(host, port)`` gives a
:class:`Client`; ``stream = await conn.request(headers, body)`` a
:class:`ClientStream` with the same reading and sending methods plus
``await stream.response()`` for the response headers.

Backpressure: ``send_data`` waits while the peer's window is short, so a
slow reader never makes us buffer more than one window; our reading side
gives the peer credit only as the app consumes data (``read()``), so a
slow app slows the peer. A stream ends normally when both sides sent
END_STREAM; it is *cancelled* when the peer resets it or the connection
goes away: reads and sends then raise :class:`~fastnet.errors.H2StreamReset`,
``stream.cancelled`` is True and ``await stream.wait_cancelled()`` returns.
"""
from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import AsyncIterable, Optional, Protocol, Union

from ..codec.h2frame import Setting
from ..errors import ConnectionClosed, H2ErrorCode, H2StreamReset
from .connection import H2Connection, header_list
from .events import (ConnectionTerminated, DataReceived, Event, Headers, PingAcked,
                     ResponseReceived, SettingsChanged, StreamEnded, StreamReset,
                     TrailersReceived, WindowUpdated)

__all__ = ["Client", "ClientStream", "CompleteHandler", "Reply", "ServerStream", "Stream",
           "StreamApp", "StreamHandler", "open_connection", "serve_streams"]

#: A header list as callers give it: (name, value) pairs, bytes or str.
HeaderInput = Iterable[tuple[Union[bytes, str], Union[bytes, str]]]
#: A request body for Client.request: all at once, or pieces as they come.
BodyInput = Union[bytes, bytearray, memoryview, Iterable[bytes], AsyncIterable[bytes], None]


class _Owner(Protocol):
    """What a stream needs of its connection (a server session or a Client)."""

    h2: H2Connection
    peer: tuple[str, int]
    window_timeout: Optional[float]
    #: Streams waiting for a window (a connection-level update wakes them).
    blocked: set["Stream"]

    def flush(self) -> None:
        """Write what the H2Connection has queued (soon)."""
        raise NotImplementedError

    def stream_done(self, stream: "Stream") -> None:
        """The stream ended (both sides) or was reset."""


def deliver(event: Event, streams: Mapping[int, "Stream"], owner: _Owner) -> bool:
    """Hand a stream's event (data, its end, trailers, a window, a reset)
    to its stream among ``streams``; False for any other event. Data for a
    stream no longer there is acknowledged at once (nobody will read it)."""
    kind = type(event)
    if kind is DataReceived:
        assert isinstance(event, DataReceived)
        stream = streams.get(event.stream_id)
        if stream is not None:
            stream._data(event.data, event.flow_controlled_length)
        else:
            owner.h2.acknowledge(event.stream_id, event.flow_controlled_length)
    elif kind is StreamEnded:
        assert isinstance(event, StreamEnded)
        stream = streams.get(event.stream_id)
        if stream is not None:
            stream._ended()
    elif kind is TrailersReceived:
        assert isinstance(event, TrailersReceived)
        stream = streams.get(event.stream_id)
        if stream is not None:
            stream.trailers = event.headers
    elif kind is WindowUpdated:
        assert isinstance(event, WindowUpdated)
        if event.stream_id == 0:
            for blocked in list(owner.blocked):
                blocked._window()
        else:
            stream = streams.get(event.stream_id)
            if stream is not None:
                stream._window()
    elif kind is StreamReset:
        assert isinstance(event, StreamReset)
        stream = streams.get(event.stream_id)
        if stream is not None:
            stream._was_reset(event.error_code, event.remote)
    else:
        return False
    return True


class Stream:
    """One HTTP/2 stream, seen from our side.

    ``stream_id``; ``peer`` is the remote (host, port); ``headers`` the
    peer's header block that opened the stream on the server side (the
    request) and the request we sent on the client side. ``trailers`` is
    the peer's trailing header list once the body has ended (None before or
    without one).
    """

    __slots__ = ("stream_id", "peer", "headers", "trailers", "_owner", "_chunks", "_remote_ended",
                 "_local_ended", "_reset_code", "_reset_remote", "_readable", "_writable",
                 "_cancel", "_headers_sent", "_why")

    def __init__(self, owner: _Owner, stream_id: int, headers: Headers) -> None:
        self.stream_id = stream_id
        self.peer = owner.peer
        self.headers = headers
        self.trailers: Optional[Headers] = None
        self._owner = owner
        self._chunks: collections.deque[tuple[bytes, int]] = collections.deque()
        self._remote_ended = False
        self._local_ended = False
        self._reset_code: Optional[int] = None
        self._reset_remote = False
        self._why = ""
        self._readable: Optional[asyncio.Event] = None
        self._writable: Optional[asyncio.Event] = None
        self._cancel: Optional[asyncio.Event] = None
        self._headers_sent = False

    # -- what the connection tells the stream ---------------------------------

    def _data(self, data: bytes, flow: int) -> None:
        self._chunks.append((data, flow))
        if self._readable is not None:
            self._readable.set()

    def _ended(self) -> None:
        self._remote_ended = True
        if self._readable is not None:
            self._readable.set()
        self._check_done()

    def _window(self) -> None:
        if self._writable is not None:
            self._writable.set()

    def _was_reset(self, code: int, remote: bool, why: str = "") -> None:
        if self._reset_code is not None or (self._local_ended and self._remote_ended):
            return
        self._reset_code = code
        self._reset_remote = remote
        self._why = why
        self._chunks.clear()
        for event in (self._readable, self._writable, self._cancel):
            if event is not None:
                event.set()
        self._owner.stream_done(self)

    def _check_done(self) -> None:
        if self._local_ended and self._remote_ended and self._reset_code is None:
            self._owner.stream_done(self)

    def _raise_reset(self) -> None:
        assert self._reset_code is not None
        raise H2StreamReset(self.stream_id, self._reset_code, self._reset_remote, self._why)

    # -- reading the peer's body -------------------------------------------

    async def read(self) -> Optional[bytes]:
        """The next piece of the peer's body, or None at its end (after
        which ``trailers`` is set if the peer sent any). Gives the peer
        flow-control credit for what it returns. Raises H2StreamReset if
        the stream was reset or the connection lost before the end."""
        while True:
            if self._reset_code is not None:
                self._raise_reset()
            if self._chunks:
                data, flow = self._chunks.popleft()
                owner = self._owner
                owner.h2.acknowledge(self.stream_id, flow)
                owner.flush()
                return data
            if self._remote_ended:
                return None
            if self._readable is None:
                self._readable = asyncio.Event()
            self._readable.clear()
            await self._readable.wait()

    def __aiter__(self) -> AsyncIterator[bytes]:
        """``async for chunk in stream``: read() until None."""
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes]:
        while True:
            data = await self.read()
            if data is None:
                return
            yield data

    async def read_all(self, limit: int) -> bytes:
        """The whole remaining body; H2StreamReset, or ValueError (after
        resetting the stream with CANCEL) past ``limit`` bytes."""
        parts: list[bytes] = []
        size = 0
        while True:
            data = await self.read()
            if data is None:
                return b"".join(parts)
            size += len(data)
            if size > limit:
                self.reset(H2ErrorCode.CANCEL)
                raise ValueError(f"body exceeds {limit} bytes")
            parts.append(data)

    # -- sending our side --------------------------------------------------

    def _check_open(self) -> None:
        if self._reset_code is not None:
            self._raise_reset()
        if self._local_ended:
            raise ValueError(f"stream {self.stream_id}: our side has ended")

    def send_headers(self, headers: HeaderInput, end_stream: bool = False) -> None:
        """Send a header block: the response (server; 1xx allowed before
        the final one) or, on the client, only through Client.request."""
        self._check_open()
        owner = self._owner
        owner.h2.send_headers(self.stream_id, headers, end_stream)
        self._headers_sent = True
        owner.flush()
        if end_stream:
            self._local_end()

    def _local_end(self) -> None:
        self._local_ended = True
        self._check_done()

    async def send_data(self, data: Union[bytes, bytearray, memoryview], end_stream: bool = False) -> None:
        """Send data, waiting as long as the peer's flow-control windows
        (stream and connection) are short: returns once all of it is queued
        for writing. H2StreamReset if the stream is reset meanwhile, or
        after it waited the owner's window_timeout for a window (we reset
        it with CANCEL then)."""
        self._check_open()
        owner = self._owner
        h2 = owner.h2
        view = memoryview(data) if len(data) else b""
        total = len(view)
        pos = 0
        while True:
            n = h2.send_data(self.stream_id, view[pos:] if pos else view, end_stream)
            pos += n
            if n:
                owner.flush()
            if pos >= total:
                break
            if self._writable is None:
                self._writable = asyncio.Event()
            self._writable.clear()
            owner.blocked.add(self)
            try:
                await asyncio.wait_for(self._writable.wait(), owner.window_timeout)
            except asyncio.TimeoutError:
                self._timeout_reset()
            finally:
                owner.blocked.discard(self)
            if self._reset_code is not None:
                self._raise_reset()
        if end_stream:
            owner.flush()
            self._local_end()

    def _timeout_reset(self) -> None:
        why = f"no flow-control window for window_timeout={self._owner.window_timeout}s"
        self._owner.h2.reset_stream(self.stream_id, H2ErrorCode.CANCEL)
        self._owner.flush()
        self._was_reset(H2ErrorCode.CANCEL, False, why)

    def send_trailers(self, headers: HeaderInput) -> None:
        """Send trailing headers and end our side (after the last
        send_data has returned)."""
        self._check_open()
        owner = self._owner
        owner.h2.send_trailers(self.stream_id, headers)
        owner.flush()
        self._local_end()

    def end(self) -> None:
        """End our side without trailers (an empty END_STREAM DATA)."""
        self._check_open()
        owner = self._owner
        owner.h2.end_stream(self.stream_id)
        owner.flush()
        self._local_end()

    def reset(self, error_code: int = H2ErrorCode.CANCEL) -> None:
        """Reset the stream (RST_STREAM): both sides are done with it.
        Nothing happens if it has ended or was reset already."""
        if self._reset_code is not None or (self._local_ended and self._remote_ended):
            return
        owner = self._owner
        owner.h2.reset_stream(self.stream_id, error_code)
        owner.flush()
        self._was_reset(error_code, False)

    # -- cancellation --------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """True once the peer reset the stream or the connection went away
        before both sides ended it."""
        return self._reset_code is not None

    @property
    def reset_code(self) -> Optional[int]:
        """The error code the stream was reset with (either side), or None."""
        return self._reset_code

    async def wait_cancelled(self) -> None:
        """Return when the stream is cancelled (never, if it ends well:
        run it as a task beside the work it cancels)."""
        if self._reset_code is not None:
            return
        if self._cancel is None:
            self._cancel = asyncio.Event()
        await self._cancel.wait()

    @property
    def ended(self) -> bool:
        """Both sides sent END_STREAM, or the stream was reset."""
        return self._reset_code is not None or (self._local_ended and self._remote_ended)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.stream_id}>"


class ServerStream(Stream):
    """A request stream on the server. ``method``, ``path``, ``scheme``,
    ``authority`` are the request's pseudo fields as str (authority "" if
    absent); ``header(name)`` the first value of a regular field."""

    __slots__ = ("method", "path", "scheme", "authority")

    def __init__(self, owner: _Owner, stream_id: int, headers: Headers) -> None:
        super().__init__(owner, stream_id, headers)
        pseudo = {}
        for name, value in headers:
            if name[:1] != b":":
                break
            pseudo[name] = value
        self.method = pseudo.get(b":method", b"").decode("latin-1")
        self.path = pseudo.get(b":path", b"").decode("latin-1")
        self.scheme = pseudo.get(b":scheme", b"").decode("latin-1")
        self.authority = pseudo.get(b":authority", b"").decode("latin-1")

    def header(self, name: bytes) -> Optional[bytes]:
        """The first value of field ``name`` (lowercase bytes), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class ClientStream(Stream):
    """A request stream we opened (Client.request)."""

    __slots__ = ("_response", "_got_response", "_status")

    def __init__(self, owner: _Owner, stream_id: int, headers: Headers) -> None:
        super().__init__(owner, stream_id, headers)
        self._response: Optional[Headers] = None
        self._got_response: Optional[asyncio.Event] = None
        self._status: Optional[int] = None

    def _response_headers(self, headers: Headers) -> None:
        self._response = headers
        if self._got_response is not None:
            self._got_response.set()

    def _was_reset(self, code: int, remote: bool, why: str = "") -> None:
        super()._was_reset(code, remote, why)
        if self._got_response is not None:
            self._got_response.set()

    async def response(self) -> Headers:
        """The final response headers (1xx are skipped), waiting for them;
        H2StreamReset if the stream is reset first."""
        while self._response is None:
            if self._reset_code is not None:
                self._raise_reset()
            if self._got_response is None:
                self._got_response = asyncio.Event()
            await self._got_response.wait()
        if self._status is None:
            for name, value in self._response:
                if name == b":status":
                    self._status = int(value)
                    break
        return self._response

    @property
    def status(self) -> Optional[int]:
        """The response's :status once response() has returned, else None."""
        return self._status


#: What serve_streams runs per request stream.
StreamHandler = Callable[[ServerStream], Awaitable[None]]
#: A whole answer: (headers, body, trailers or None).
Reply = tuple[HeaderInput, Union[bytes, bytearray, memoryview], Optional[HeaderInput]]
#: The quick way for a request complete in one read:
#: ``on_complete(stream_id, headers, body, peer) -> Reply | None``.
CompleteHandler = Callable[[int, Headers, bytes, tuple[str, int]], Optional[Reply]]


class StreamApp:
    """A stream handler as the handler of an h2 listener (serve_streams).
    When the handler returns, the server ends our side of the stream if
    the handler did not (an empty END_STREAM, or RST_STREAM(INTERNAL_ERROR)
    if it sent no headers); when it raises, the stream is reset with
    INTERNAL_ERROR and the connection goes on.

    ``on_complete``, if given, is asked first about every request whose
    headers, body and END_STREAM came in one read (no request trailers),
    inside that read, on the engine's thread, without a task or a
    ServerStream: ``on_complete(stream_id, headers, body, peer)`` returns
    ``(headers, body, trailers)`` (trailers None: END_STREAM on the body's
    last frame, or on the HEADERS if the body is empty too), which goes
    out in one encode (repeated header lists and trailers are cached
    blocks) in the reply to that read; or None, and the request takes the
    stream path (``handler(stream)`` with the body already readable). A
    reply larger than the peer's windows is sent by a task as the windows
    open. If on_complete raises, the stream is reset with INTERNAL_ERROR.
    Requests not complete in their first read always take the stream path.
    """

    def __init__(self, handler: StreamHandler,
                 on_complete: Optional[CompleteHandler] = None) -> None:
        self.handler = handler
        self.on_complete = on_complete
        #: Sessions serving it run on asyncio.
        self.is_async = True

    def __call__(self, stream: ServerStream) -> Awaitable[None]:
        """Serve one stream (what the session runs per request)."""
        return self.handler(stream)


def serve_streams(handler: StreamHandler,
                  on_complete: Optional[CompleteHandler] = None) -> StreamApp:
    """The listener handler that runs ``await handler(stream)`` for every
    request stream (``Server.listen(..., protocol="h2", handler=serve_streams(fn))``);
    ``on_complete``: the quick way for requests complete in one read (see
    :class:`StreamApp`)."""
    return StreamApp(handler, on_complete)


class Client:
    """One client HTTP/2 connection (prior knowledge, cleartext) on
    asyncio. Make one with :func:`open_connection`; use as an async context
    manager or ``await close()``. Streams of one Client run concurrently,
    at most the server's SETTINGS_MAX_CONCURRENT_STREAMS at once (request()
    waits for a slot)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 settings: Optional[Mapping[int, int]] = None,
                 window_timeout: Optional[float] = None) -> None:
        self.h2 = H2Connection(True, settings)
        peer = writer.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self.window_timeout = window_timeout
        self.blocked: set[Stream] = set()
        self._reader = reader
        self._writer = writer
        self._streams: dict[int, ClientStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pings: dict[bytes, asyncio.Future[None]] = {}
        self._changed = asyncio.Event()   # a slot freed, settings came, or the end
        self._settings = asyncio.Event()
        self._closed = False
        self._why = ""
        self.h2.initiate()
        self.flush()
        self._reading = asyncio.get_running_loop().create_task(self._read_loop())

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self._closed:
            self._writer.write(data)

    def stream_done(self, stream: Stream) -> None:
        self._streams.pop(stream.stream_id, None)
        self._changed.set()

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    self._why = "the server closed the connection"
                    break
                self._handle(self.h2.receive(data))
                self.flush()
                if self.h2.terminated:
                    break
        except (ConnectionError, OSError) as exc:
            self._why = f"connection lost: {exc}"
        finally:
            self._lost()

    def _handle(self, events: list[Event]) -> None:
        streams = self._streams
        for event in events:
            if deliver(event, streams, self):
                continue
            kind = type(event)
            if kind is ResponseReceived:
                assert isinstance(event, ResponseReceived)
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream._response_headers(event.headers)
            elif kind is SettingsChanged:
                self._settings.set()
                self._changed.set()
            elif kind is PingAcked:
                assert isinstance(event, PingAcked)
                future = self._pings.pop(event.data, None)
                if future is not None and not future.done():
                    future.set_result(None)
            elif kind is ConnectionTerminated:
                assert isinstance(event, ConnectionTerminated)
                self._terminated(event)

    def _terminated(self, event: ConnectionTerminated) -> None:
        if event.remote and event.error_code == H2ErrorCode.NO_ERROR:
            self._changed.set()  # streams at or below last_stream_id go on
            return
        why = (f"GOAWAY {event.error_code} from the server" if event.remote
               else f"we ended the connection: {event.error}")
        for stream in list(self._streams.values()):
            stream._was_reset(event.error_code, event.remote, why)
        self._changed.set()

    def _lost(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.close()
        for stream in list(self._streams.values()):
            stream._was_reset(H2ErrorCode.CANCEL, False, self._why or "the connection closed")
        for future in self._pings.values():
            if not future.done():
                future.set_exception(ConnectionClosed(self._why or "the connection closed"))
        self._pings.clear()
        self._changed.set()
        self._settings.set()

    def _check_usable(self) -> None:
        if self._closed or self.h2.terminated:
            raise ConnectionClosed(self._why or "the HTTP/2 connection is closed")
        if self.h2.goaway_received is not None:
            raise ConnectionClosed("the server sent GOAWAY: no new streams")

    async def request(self, headers: HeaderInput, body: BodyInput = b"", *,
                      end_stream: bool = True) -> ClientStream:
        """Open a stream with the request ``headers`` (pseudo fields
        first: :method, :scheme, :path, :authority). ``body``: bytes sent
        whole, an iterable or async iterable sent piece by piece by a task
        beside the caller (each piece waits for the window), or None to
        send nothing now (then stream.send_data / send_trailers / end, as
        gRPC streaming does). end_stream False keeps our side open after
        the body. Returns once HEADERS is queued, before the response.
        ConnectionClosed if the connection is gone or going away."""
        await self._settings.wait()  # the server's limits first
        while True:
            self._check_usable()
            limit = self.h2.remote_settings[Setting.MAX_CONCURRENT_STREAMS]
            if len(self._streams) < limit:
                break
            self._changed.clear()
            await self._changed.wait()
        fields = header_list(headers)
        stream_id = self.h2.get_next_available_stream_id()
        empty = isinstance(body, (bytes, bytearray, memoryview)) and not body
        stream = ClientStream(self, stream_id, fields)
        self._streams[stream_id] = stream
        stream.send_headers(fields, end_stream=empty and end_stream)
        if body is not None and not empty:
            task = asyncio.get_running_loop().create_task(self._send_body(stream, body, end_stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return stream

    @staticmethod
    async def _send_body(stream: ClientStream, body: BodyInput, end_stream: bool) -> None:
        try:
            if isinstance(body, (bytes, bytearray, memoryview)):
                await stream.send_data(body, end_stream)
                return
            if hasattr(body, "__aiter__"):
                async for piece in body:  # type: ignore[union-attr]
                    await stream.send_data(piece)
            else:
                for piece in body:  # type: ignore[union-attr]
                    await stream.send_data(piece)
            if end_stream:
                stream.end()
        except H2StreamReset:
            pass  # the stream's reader hears of it
        except Exception:
            stream.reset(H2ErrorCode.INTERNAL_ERROR)
            raise

    async def ping(self) -> float:
        """Ping the server; return the round trip in seconds."""
        self._check_usable()
        loop = asyncio.get_running_loop()
        started = loop.time()
        data = self.h2.ping()
        future: asyncio.Future[None] = loop.create_future()
        self._pings[data] = future
        self.flush()
        await future
        return loop.time() - started

    async def close(self, error_code: int = H2ErrorCode.NO_ERROR) -> None:
        """GOAWAY and close the socket; open streams are cancelled."""
        if not self._closed:
            if not self.h2.terminated:
                self.h2.close(error_code)
                self.flush()
            self._why = self._why or "closed by the client"
            self._closed = True
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self._reading.cancel()
        try:
            await self._reading
        except asyncio.CancelledError:
            pass

    @property
    def closed(self) -> bool:
        """True once the connection is gone (either side)."""
        return self._closed

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_connection(host: str, port: int, *,
                          settings: Optional[Mapping[int, int]] = None,
                          window_timeout: Optional[float] = None) -> Client:
    """Connect (cleartext, prior knowledge), send the preface and our
    SETTINGS, and return the :class:`Client` (requests wait for the
    server's SETTINGS). ``window_timeout``: seconds a send may wait for the
    server's window before its stream is reset (None: no limit)."""
    reader, writer = await asyncio.open_connection(host, port)
    return Client(reader, writer, settings, window_timeout)
