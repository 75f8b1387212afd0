"""gRPC clients over fastnet.h2's client: :class:`AsyncChannel` (asyncio)
and :class:`Channel` (blocking; its asyncio loop runs in a thread).

Both have grpcio's channel methods (``unary_unary``, ``unary_stream``,
``stream_unary``, ``stream_stream``), so grpcio-generated stubs work on
them as they are, and ``channel.stub(service)`` makes a stub from a
fastnet.grpc Service::

    with fastnet.grpc.Channel("127.0.0.1:50051") as channel:
        stub = channel.stub(protos.pkg.Greeter)
        reply = stub.SayHello(protos.pkg.HelloRequest(name="x"), timeout=5)

A failed call raises :class:`RpcError` (``code()``, ``details()``,
``trailing_metadata()``), as grpcio's does.

**Client hooks** (for interceptors): ``Channel(target, hooks=[...])``; a
hook has any of ``call_started(call)`` (before the request headers go: it
may edit ``call.metadata``, a list, or raise ``fastnet.grpc.Abort`` to fail
the call locally), ``message_sending(call, message) -> message`` and
``message_received(call, message) -> message`` (None drops it), and
``call_ended(call)`` (``call.method``, ``code()``, ``details()``,
``messages_out``/``messages_in``, ``duration``), run on the channel's loop
in the order given (call_ended in reverse); none may be ``async``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterable, Iterator, Optional

from .. import limits
from ..errors import ConnectionClosed, GrpcError, H2ErrorCode, H2StreamReset
from ..h2 import Client, ClientStream, ConnectionTerminated
from . import protocol as p
from .protocol import Metadata, MetadataValue, StatusCode
from .server import Abort
from .service import Service

log = logging.getLogger("fastnet.grpc")

__all__ = ["AsyncChannel", "Channel", "RpcError"]


def _encoding_name(compression: Any) -> Optional[str]:
    name = getattr(compression, "name", compression)
    if name is None:
        return None
    name = str(name).lower()
    return None if name in ("nocompression", "identity") else name


class RpcError(Exception):
    """A call that ended with a status other than OK."""

    def __init__(self, code: StatusCode, details: str,
                 initial_metadata: Metadata = (), trailing_metadata: Metadata = ()) -> None:
        super().__init__(code, details)
        self._code, self._details = code, details
        self._initial, self._trailing = tuple(initial_metadata), tuple(trailing_metadata)

    def code(self) -> StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> tuple[tuple[str, MetadataValue], ...]:
        return self._initial

    def trailing_metadata(self) -> tuple[tuple[str, MetadataValue], ...]:
        return self._trailing

    def __str__(self) -> str:
        return f"<RpcError {self._code.name}: {self._details!r}>"


class _Client(Client):
    """fastnet.h2's Client, hearing gRPC's GOAWAY ENHANCE_YOUR_CALM with
    ``too_many_pings``: it doubles the channel's keepalive_time (gRPC's A8)."""

    channel: Optional["AsyncChannel"] = None

    def _handle(self, events: list[Any]) -> None:
        channel = self.channel
        for event in events:
            if type(event) is ConnectionTerminated and event.remote \
                    and event.error_code == H2ErrorCode.ENHANCE_YOUR_CALM \
                    and event.additional_data == b"too_many_pings" and channel is not None \
                    and channel.keepalive_time is not None:
                channel.keepalive_time *= 2
                log.warning("the server %s:%d said too_many_pings: keepalive_time is now %gs",
                            channel.host, channel.port, channel.keepalive_time)
        super()._handle(events)


async def _open(host: str, port: int) -> _Client:
    reader, writer = await asyncio.open_connection(host, port)
    return _Client(reader, writer)


def _split_target(target: str) -> tuple[str, int]:
    target = target.removeprefix("dns:///").removeprefix("ipv4:")
    host, _, port = target.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    return ("127.0.0.1" if host == "localhost" else host), int(port)


class _Call:
    """One RPC on a client stream: the client side's call path."""

    def __init__(self, channel: "AsyncChannel", path: str, serializer: Optional[Callable[..., Any]],
                 deserializer: Optional[Callable[..., Any]], timeout: Optional[float],
                 metadata: Optional[Metadata], compression: Any) -> None:
        self.channel = channel
        self.path = self.method = path
        self.started_at = time.monotonic()
        self.duration = 0.0
        self.messages_out = self.messages_in = 0
        self.serializer = serializer
        self.deserializer = deserializer
        self.timeout = timeout
        self.metadata: list[tuple[str, MetadataValue]] = list(metadata or ())
        self._hooks = channel.hooks
        self.encoding = _encoding_name(compression) or channel.compression
        if self.encoding is not None:
            p.check_encoding(self.encoding)
        self.stream: Optional[ClientStream] = None
        self._conn: Optional[Client] = None
        self._code: Optional[StatusCode] = None
        self._details = ""
        self._initial: tuple[tuple[str, MetadataValue], ...] = ()
        self._trailing: tuple[tuple[str, MetadataValue], ...] = ()
        self._got_headers = False
        self._decoder: Optional[p.MessageDecoder] = None
        self._pending: collections.deque[tuple[bool, bytes]] = collections.deque()
        #: Whether the response message last returned by recv() came compressed.
        self.last_compressed = False
        self._timer: Optional[asyncio.TimerHandle] = None
        self._done = asyncio.Event()

    async def start(self) -> None:
        if self.timeout is not None and self.timeout <= 0:
            self._end(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            raise self.error()
        for hook in self._hooks:
            fn = getattr(hook, "call_started", None)
            if fn is not None:
                try:
                    fn(self)
                except Abort as e:
                    self._end(e.code, e.details)
                    raise self.error() from None
        conn = await self.channel.connection()
        authority = f"{self.channel.host}:{self.channel.port}"
        headers = p.request_headers(self.path, authority, timeout=self.timeout,
                                    metadata=self.metadata, encoding=self.encoding)
        if self.timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(self.timeout, self._deadline)
        try:
            self.stream = await conn.request(headers, None, end_stream=False)
        except ConnectionClosed as e:
            self._end(StatusCode.UNAVAILABLE, str(e))
            raise self.error() from None
        self._conn = conn

    def _deadline(self) -> None:
        if self._code is None:
            self._end(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            if self.stream is not None:
                self.stream.reset(H2ErrorCode.CANCEL)

    def cancel(self) -> bool:
        """Cancel the call (RST_STREAM CANCEL); False if it had ended."""
        if self._code is not None:
            return False
        self._end(StatusCode.CANCELLED, "Locally cancelled by application!")
        if self.stream is not None:
            self.stream.reset(H2ErrorCode.CANCEL)
        return True

    def _end(self, code: StatusCode, details: str) -> None:
        if self._code is None:
            self._code, self._details = code, details
            if self._timer is not None:
                self._timer.cancel()
            self._done.set()
            self.duration = time.monotonic() - self.started_at
            for hook in reversed(self._hooks):
                fn = getattr(hook, "call_ended", None)
                if fn is not None:
                    fn(self)
            stream = self.stream
            if stream is not None and not stream.ended and stream.reset_code is None \
                    and code == StatusCode.OK:
                try:
                    stream.end()   # the server is done: so are we (frees the stream)
                except (H2StreamReset, ValueError):
                    pass

    def error(self) -> RpcError:
        assert self._code is not None
        return RpcError(self._code, self._details, self._initial, self._trailing)

    def _check(self) -> None:
        if self._code is not None and self._code != StatusCode.OK:
            raise self.error()

    # -- sending -------------------------------------------------------------

    async def send(self, message: Any, compress: Optional[bool] = None) -> None:
        """Send one request; ``compress`` False sends this one uncompressed
        on a compressed call (True: compressed, the call's encoding or gzip)."""
        self._check()
        if self._code is not None:
            return   # the call ended well before this request: dropped
        assert self.stream is not None
        for hook in self._hooks:
            fn = getattr(hook, "message_sending", None)
            if fn is not None:
                message = fn(self, message)
                if message is None:
                    return
        payload = self.serializer(message) if self.serializer is not None else message
        self.messages_out += 1
        encoding = self.encoding if compress is None else \
            (self.encoding or "gzip") if compress else None
        if encoding is not None and encoding != self.encoding:
            raise ValueError("a message compressed with another encoding than the call's")
        try:
            await self.stream.send_data(p.encode_message(payload, encoding))
        except ValueError:
            return   # the server closed the stream (after its response): recv() has the status
        except H2StreamReset:
            await self._reset_status()
            raise self.error() from None

    def done_writing(self) -> None:
        if self._code is None and self.stream is not None and not self.stream.ended:
            try:
                self.stream.end()
            except (H2StreamReset, ValueError):
                pass

    async def send_all(self, requests: Any) -> None:
        """Send every request (an iterable or async iterable), then end our side."""
        try:
            if hasattr(requests, "__aiter__"):
                async for m in requests:
                    await self.send(m)
            else:
                for m in requests:
                    await self.send(m)
            self.done_writing()
        except RpcError:
            pass

    # -- receiving -----------------------------------------------------------

    async def _reset_status(self) -> None:
        if self._code is None:
            if self._conn is not None and self._conn.closed:
                self._end(StatusCode.UNAVAILABLE, "the connection was lost")
                return
            code = self.stream.reset_code if self.stream is not None else None
            self._end(StatusCode.CANCELLED if code == H2ErrorCode.CANCEL else
                      StatusCode.UNAVAILABLE if code == H2ErrorCode.REFUSED_STREAM else
                      StatusCode.INTERNAL, f"stream reset by the server (code {code})")

    async def _headers(self) -> None:
        assert self.stream is not None
        try:
            headers = await self.stream.response()
        except H2StreamReset:
            await self._reset_status()
            raise self.error() from None
        self._got_headers = True
        status = self.stream.status
        fields = dict(headers)
        if b"grpc-status" in fields:   # trailers-only
            self._trailing = tuple(p.decode_metadata(headers))
            code, details = p.parse_status(headers)
            self._end(code, details)
            return
        if status != 200:
            self._end(p.status_from_http(status or 0), f"HTTP status {status}")
            return
        if not p.is_grpc_content_type(fields.get(b"content-type")):
            self._end(StatusCode.UNKNOWN, "response is not application/grpc")
            return
        self._initial = tuple(p.decode_metadata(headers))
        enc = fields.get(b"grpc-encoding")
        try:
            self._decoder = p.MessageDecoder(self.channel.max_receive_message_length,
                                             enc.decode("latin-1") if enc else None)
        except GrpcError as e:
            self._end(e.status, str(e))

    async def initial_metadata(self) -> tuple[tuple[str, MetadataValue], ...]:
        if not self._got_headers and self._code is None:
            try:
                await self._headers()
            except RpcError:
                pass
        return self._initial

    async def recv(self) -> Any:
        """The next response message, or the end marker _EOF (status OK)."""
        if not self._got_headers:
            if self._code is not None:
                raise self.error()
            await self._headers()
        while not self._pending:
            self._check()
            if self._code == StatusCode.OK:
                return _EOF
            assert self.stream is not None and self._decoder is not None
            try:
                chunk = await self.stream.read()
            except H2StreamReset:
                await self._reset_status()
                raise self.error() from None
            try:
                if chunk is None:
                    self._decoder.end()
                    trailers = self.stream.trailers or []
                    self._trailing = tuple(p.decode_metadata(trailers))
                    code, details = p.parse_status(trailers)
                    self._end(code, details)
                    continue
                self._pending.extend(self._decoder.feed_flagged(chunk))
            except GrpcError as e:
                self._end(e.status, str(e))
                self.stream.reset(H2ErrorCode.CANCEL)
        self.last_compressed, payload = self._pending.popleft()
        self.messages_in += 1
        message = self.deserializer(payload) if self.deserializer is not None else payload
        for hook in self._hooks:
            fn = getattr(hook, "message_received", None)
            if fn is not None:
                message = fn(self, message)
                if message is None:
                    return await self.recv()
        return message

    async def recv_one(self) -> Any:
        """A unary response: exactly one message, then status OK."""
        first = await self.recv()
        if first is _EOF:
            self._end(StatusCode.INTERNAL, "no response message")   # only if OK so far
            raise RpcError(StatusCode.INTERNAL, "the server sent no response message")
        rest = await self.recv()
        if rest is not _EOF:
            raise RpcError(StatusCode.INTERNAL, "the server sent more than one response")
        return first

    def code(self) -> Optional[StatusCode]:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, MetadataValue], ...]:
        return self._trailing


_EOF = object()


# -- asyncio -------------------------------------------------------------------

class AsyncCall:
    """An asyncio call (grpc.aio's): await it for a unary response, or
    ``async for`` its response stream; ``write``/``done_writing``/``read``
    for streaming requests given no iterator; ``cancel()``."""

    def __init__(self, call: _Call, request: Any, request_streaming: bool,
                 response_streaming: bool) -> None:
        self._call = call
        self._request = request
        self._request_streaming = request_streaming
        self._response_streaming = response_streaming
        self._started: Optional[asyncio.Task[None]] = None
        self._sender: Optional[asyncio.Task[None]] = None

    async def start(self) -> None:
        """Open the stream now (otherwise the first use of the call does)."""
        await self._start()

    async def _start(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._begin())
        await self._started

    async def _begin(self) -> None:
        await self._call.start()
        if not self._request_streaming:
            await self._call.send(self._request)
            self._call.done_writing()
        elif self._request is not None:
            self._sender = asyncio.ensure_future(self._call.send_all(self._request))

    def __await__(self) -> Any:
        return self._unary().__await__()

    async def _unary(self) -> Any:
        await self._start()
        return await self._call.recv_one()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._responses()

    async def _responses(self) -> AsyncIterator[Any]:
        await self._start()
        while True:
            m = await self._call.recv()
            if m is _EOF:
                return
            yield m

    async def read(self) -> Any:
        await self._start()
        m = await self._call.recv()
        return EOF if m is _EOF else m

    async def write(self, message: Any, compress: Optional[bool] = None) -> None:
        """Send one request (``compress``: as _Call.send)."""
        await self._start()
        await self._call.send(message, compress)

    def last_response_compressed(self) -> bool:
        """Whether the response last read came compressed (fastnet's)."""
        return self._call.last_compressed

    async def done_writing(self) -> None:
        await self._start()
        self._call.done_writing()

    def cancel(self) -> bool:
        if self._sender is not None:
            self._sender.cancel()
        return self._call.cancel()

    def cancelled(self) -> bool:
        return self._call.code() == StatusCode.CANCELLED

    async def initial_metadata(self) -> tuple[tuple[str, MetadataValue], ...]:
        await self._start()
        return await self._call.initial_metadata()

    async def trailing_metadata(self) -> tuple[tuple[str, MetadataValue], ...]:
        await self._call._done.wait()
        return self._call.trailing_metadata()

    async def code(self) -> Optional[StatusCode]:
        await self._call._done.wait()
        return self._call.code()

    async def details(self) -> str:
        await self._call._done.wait()
        return self._call.details()


#: What AsyncCall.read() returns past the last response.
EOF = type("EOF", (), {"__repr__": lambda self: "EOF"})()


class _AsyncMultiCallable:
    def __init__(self, channel: "AsyncChannel", path: str, request_streaming: bool,
                 response_streaming: bool, serializer: Optional[Callable[..., Any]],
                 deserializer: Optional[Callable[..., Any]]) -> None:
        self._args = (channel, path, serializer, deserializer)
        self._kinds = (request_streaming, response_streaming)

    def __call__(self, request: Any = None, *, timeout: Optional[float] = None,
                 metadata: Optional[Metadata] = None, compression: Any = None,
                 **_ignored: Any) -> AsyncCall:
        channel, path, ser, de = self._args
        return AsyncCall(_Call(channel, path, ser, de, timeout, metadata, compression),
                         request, *self._kinds)


class _ChannelMethods:
    """grpcio's channel methods (what generated stubs call) and stub()."""

    def _multicallable(self, method: str, request_streaming: bool, response_streaming: bool,
                       serializer: Optional[Callable[..., Any]],
                       deserializer: Optional[Callable[..., Any]]) -> Any:
        raise NotImplementedError

    def unary_unary(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                    response_deserializer: Optional[Callable[..., Any]] = None,
                    **_ignored: Any) -> Any:
        return self._multicallable(method, False, False, request_serializer,
                                   response_deserializer)

    def unary_stream(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                     response_deserializer: Optional[Callable[..., Any]] = None,
                     **_ignored: Any) -> Any:
        return self._multicallable(method, False, True, request_serializer,
                                   response_deserializer)

    def stream_unary(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                     response_deserializer: Optional[Callable[..., Any]] = None,
                     **_ignored: Any) -> Any:
        return self._multicallable(method, True, False, request_serializer,
                                   response_deserializer)

    def stream_stream(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                      response_deserializer: Optional[Callable[..., Any]] = None,
                      **_ignored: Any) -> Any:
        return self._multicallable(method, True, True, request_serializer,
                                   response_deserializer)

    def stub(self, service: Service) -> Any:
        """A stub for ``service``: one attribute per rpc, named as in the .proto."""
        attrs = {}
        for m in service.methods.values():
            attrs[m.name] = self._multicallable(m.path, m.client_streaming, m.server_streaming,
                                                _serialize, m.response.FromString)
        return type(f"{service.name}Stub", (), attrs)()


class AsyncChannel(_ChannelMethods):
    """An asyncio gRPC channel to ``target`` (``host:port``): one HTTP/2
    connection, opened on the first call, its streams concurrent.
    ``compression``: the requests' encoding (gzip, deflate); ``hooks``: the
    client hooks (module docstring).

    Keep-alive, as grpcio's channels: ``keepalive_time`` seconds between
    PINGs (None, the default: none), only while calls are open unless
    ``keepalive_permit_without_calls``; a PING unanswered for
    ``keepalive_timeout`` seconds gives the connection up (its calls end
    UNAVAILABLE; the next call reconnects). A server's GOAWAY
    ENHANCE_YOUR_CALM ``too_many_pings`` doubles keepalive_time. grpcio's
    ``options`` names are read too (``grpc.keepalive_time_ms``,
    ``grpc.keepalive_timeout_ms``, ``grpc.keepalive_permit_without_calls``).
    A connection that received GOAWAY takes no new calls: the next one
    opens a new connection."""

    def __init__(self, target: str, *, compression: Any = None,
                 max_receive_message_length: int = limits.DEFAULT_GRPC_MAX_RECEIVE_MESSAGE,
                 hooks: Iterable[Any] = (),
                 keepalive_time: Optional[float] = limits.GRPC_CLIENT_KEEPALIVE_TIME,
                 keepalive_timeout: float = limits.GRPC_CLIENT_KEEPALIVE_TIMEOUT,
                 keepalive_permit_without_calls: bool = False,
                 options: Iterable[tuple[str, Any]] = ()) -> None:
        self.host, self.port = _split_target(target)
        self.hooks = list(hooks)
        self.compression = _encoding_name(compression)
        self.max_receive_message_length = max_receive_message_length
        for key, value in options:
            if key == "grpc.keepalive_time_ms":
                keepalive_time = value / 1000
            elif key == "grpc.keepalive_timeout_ms":
                keepalive_timeout = value / 1000
            elif key == "grpc.keepalive_permit_without_calls":
                keepalive_permit_without_calls = bool(value)
        if (keepalive_time is not None and not keepalive_time > 0) or not keepalive_timeout > 0:
            raise ValueError("keepalive_time and keepalive_timeout must be positive")
        self.keepalive_time = keepalive_time
        self.keepalive_timeout = keepalive_timeout
        self.keepalive_permit_without_calls = keepalive_permit_without_calls
        #: Keep-alive PINGs the server has answered.
        self.keepalive_pings_acked = 0
        self._conn: Optional[Client] = None
        self._lock: Optional[asyncio.Lock] = None
        self._keepalive: Optional[asyncio.Task[None]] = None

    def _usable(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed and conn.h2.goaway_received is None

    async def connection(self) -> Client:
        if not self._usable():
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if not self._usable():
                    try:
                        conn = await _open(self.host, self.port)
                    except OSError as e:
                        raise RpcError(StatusCode.UNAVAILABLE, f"failed to connect: {e}") from None
                    conn.channel = self
                    self._conn = conn
                    if self.keepalive_time is not None:
                        if self._keepalive is not None:
                            self._keepalive.cancel()
                        self._keepalive = asyncio.get_running_loop().create_task(
                            self._keep_alive(conn))
        assert self._conn is not None
        return self._conn

    async def _keep_alive(self, conn: Client) -> None:
        """PING every keepalive_time (read each round: too_many_pings
        doubles it); give the connection up if one is not answered in time."""
        while True:
            assert self.keepalive_time is not None
            await asyncio.sleep(self.keepalive_time)
            if conn.closed or conn.h2.goaway_received is not None:
                return
            if not self.keepalive_permit_without_calls and not conn.h2.open_streams:
                continue
            try:
                await asyncio.wait_for(conn.ping(), self.keepalive_timeout)
            except asyncio.TimeoutError:
                log.warning("no answer from %s:%d to a keep-alive PING in %gs: "
                            "giving the connection up", self.host, self.port,
                            self.keepalive_timeout)
                await conn.close()
                return
            except ConnectionClosed:
                return
            self.keepalive_pings_acked += 1

    def _multicallable(self, method: str, request_streaming: bool, response_streaming: bool,
                       serializer: Optional[Callable[..., Any]],
                       deserializer: Optional[Callable[..., Any]]) -> Any:
        return _AsyncMultiCallable(self, method, request_streaming, response_streaming,
                                   serializer, deserializer)

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> "AsyncChannel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


# -- blocking --------------------------------------------------------------------

class _Loop:
    """An asyncio loop in a daemon thread, shared by a Channel's calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fastnet-grpc-client",
                                       daemon=True)
        from .._threads import start_without_signals
        start_without_signals(self.thread)

    def run(self, coro: Any, timeout: Optional[float] = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


class Call:
    """A blocking call's handle (grpcio's Call): iterate it for a response
    stream; ``code()``, ``details()``, ``initial_metadata()``,
    ``trailing_metadata()``, ``cancel()``, ``is_active()``, ``time_remaining()``."""

    def __init__(self, channel: "Channel", call: _Call) -> None:
        self._channel = channel
        self._call = call
        self._deadline = None if call.timeout is None else time.monotonic() + call.timeout

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        m = self._channel._run(self._call.recv())
        if m is _EOF:
            raise StopIteration
        return m

    def cancel(self) -> bool:
        return bool(self._channel._run(_sync(self._call.cancel)))

    def is_active(self) -> bool:
        return self._call.code() is None

    def time_remaining(self) -> Optional[float]:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def code(self) -> Optional[StatusCode]:
        self._channel._run(self._call._done.wait())
        return self._call.code()

    def details(self) -> str:
        self._channel._run(self._call._done.wait())
        return self._call.details()

    def initial_metadata(self) -> tuple[tuple[str, MetadataValue], ...]:
        return self._channel._run(self._call.initial_metadata())  # type: ignore[no-any-return]

    def trailing_metadata(self) -> tuple[tuple[str, MetadataValue], ...]:
        self._channel._run(self._call._done.wait())
        return self._call.trailing_metadata()


async def _sync(fn: Callable[[], Any]) -> Any:
    return fn()


async def _begin_unary(call: _Call, request: Any) -> None:
    await call.start()
    await call.send(request)
    call.done_writing()


async def _unary_unary(call: _Call, request: Any) -> Any:
    await _begin_unary(call, request)
    return await call.recv_one()


class _MultiCallable:
    def __init__(self, channel: "Channel", path: str, request_streaming: bool,
                 response_streaming: bool, serializer: Optional[Callable[..., Any]],
                 deserializer: Optional[Callable[..., Any]]) -> None:
        self._channel = channel
        self._path = path
        self._kinds = (request_streaming, response_streaming)
        self._codec = (serializer, deserializer)

    def _call(self, timeout: Optional[float], metadata: Optional[Metadata],
              compression: Any) -> _Call:
        return _Call(self._channel._aio, self._path, self._codec[0], self._codec[1], timeout,
                     metadata, compression)

    def _start(self, request: Any, call: _Call) -> None:
        run = self._channel._run
        if not self._kinds[0]:
            run(_begin_unary(call, request))
            return
        run(call.start())
        if self._kinds[1]:
            # bidi: a thread feeds the requests while the caller reads responses
            def feed() -> None:
                try:
                    for m in request:
                        run(call.send(m))
                    run(_sync(call.done_writing))
                except RpcError:
                    pass
            threading.Thread(target=feed, daemon=True, name="fastnet-grpc-requests").start()
        else:
            try:
                for m in request:
                    run(call.send(m))
                run(_sync(call.done_writing))
            except RpcError:
                pass

    def __call__(self, request: Any, timeout: Optional[float] = None,
                 metadata: Optional[Metadata] = None, compression: Any = None,
                 **_ignored: Any) -> Any:
        call = self._call(timeout, metadata, compression)
        if self._kinds == (False, False):   # one hop to the loop and back for the whole call
            return self._channel._run(_unary_unary(call, request))
        self._start(request, call)
        if self._kinds[1]:
            return Call(self._channel, call)
        return self._channel._run(call.recv_one())

    def with_call(self, request: Any, timeout: Optional[float] = None,
                  metadata: Optional[Metadata] = None, compression: Any = None,
                  **_ignored: Any) -> tuple[Any, Call]:
        call = self._call(timeout, metadata, compression)
        self._start(request, call)
        response = self._channel._run(call.recv_one())
        return response, Call(self._channel, call)

    def future(self, request: Any, timeout: Optional[float] = None,
               metadata: Optional[Metadata] = None, compression: Any = None,
               **_ignored: Any) -> "Future":
        call = self._call(timeout, metadata, compression)
        self._start(request, call)
        return Future(self._channel, call,
                      asyncio.run_coroutine_threadsafe(call.recv_one(), self._channel._loop.loop))


class Future(Call):
    """A unary call started with ``.future()``: ``result(timeout)``, ``cancel()``."""

    def __init__(self, channel: "Channel", call: _Call, future: Any) -> None:
        super().__init__(channel, call)
        self._future = future

    def result(self, timeout: Optional[float] = None) -> Any:
        return self._future.result(timeout)

    def done(self) -> bool:
        return bool(self._future.done())


class Channel(_ChannelMethods):
    """A blocking gRPC channel to ``target`` (``host:port``), grpcio's
    channel methods and ``stub(service)``; its calls run on one asyncio
    loop in a background thread. Close it (or use ``with``). Keep-alive
    (``keepalive_time``, ``keepalive_timeout``,
    ``keepalive_permit_without_calls``, ``options``) as AsyncChannel's."""

    def __init__(self, target: str, *, compression: Any = None,
                 max_receive_message_length: int = limits.DEFAULT_GRPC_MAX_RECEIVE_MESSAGE,
                 hooks: Iterable[Any] = (),
                 keepalive_time: Optional[float] = limits.GRPC_CLIENT_KEEPALIVE_TIME,
                 keepalive_timeout: float = limits.GRPC_CLIENT_KEEPALIVE_TIMEOUT,
                 keepalive_permit_without_calls: bool = False,
                 options: Iterable[tuple[str, Any]] = ()) -> None:
        self._aio = AsyncChannel(target, compression=compression,
                                 max_receive_message_length=max_receive_message_length,
                                 hooks=hooks, keepalive_time=keepalive_time,
                                 keepalive_timeout=keepalive_timeout,
                                 keepalive_permit_without_calls=keepalive_permit_without_calls,
                                 options=options)
        self._loop = _Loop()

    @property
    def keepalive_time(self) -> Optional[float]:
        """Seconds between keep-alive PINGs now (None: none)."""
        return self._aio.keepalive_time

    @property
    def keepalive_pings_acked(self) -> int:
        """Keep-alive PINGs the server has answered."""
        return self._aio.keepalive_pings_acked

    def _run(self, coro: Any) -> Any:
        return self._loop.run(coro)

    def _multicallable(self, method: str, request_streaming: bool, response_streaming: bool,
                       serializer: Optional[Callable[..., Any]],
                       deserializer: Optional[Callable[..., Any]]) -> Any:
        return _MultiCallable(self, method, request_streaming, response_streaming, serializer,
                              deserializer)

    def close(self) -> None:
        try:
            self._run(self._aio.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

