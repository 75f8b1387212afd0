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
"""
from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterator, Optional

from .. import limits
from ..errors import GrpcError, H2ErrorCode, H2StreamReset
from ..h2 import Client, ClientStream, StreamEnded, StreamReset
from . import protocol as p
from .protocol import Metadata, MetadataValue, StatusCode
from .service import Service

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
    """fastnet.h2's Client, keeping a response that is complete when the
    server then resets the stream with NO_ERROR (RFC 9113 8.1: it asks us to
    stop sending; the response stands). grpcio's server does that when it
    ends a call before the client half-closed; fastnet.h2's stream drops
    the buffered response then, so such resets of ended streams are taken
    here as the end of our side instead."""

    def _handle(self, events: list[Any]) -> None:
        ended: set[int] = set()
        kept = []
        for event in events:
            if isinstance(event, StreamEnded):
                ended.add(event.stream_id)
            elif isinstance(event, StreamReset) and event.error_code == H2ErrorCode.NO_ERROR \
                    and event.remote and event.stream_id in ended:
                continue   # our side ends when the call reads its status (_Call._end)
            kept.append(event)
        super()._handle(kept)


async def _open(host: str, port: int) -> Client:
    reader, writer = await asyncio.open_connection(host, port)
    client = _Client(reader, writer)
    return client


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
        self.path = path
        self.serializer = serializer
        self.deserializer = deserializer
        self.timeout = timeout
        self.metadata = metadata
        self.encoding = _encoding_name(compression) or channel.compression
        if self.encoding is not None:
            p.check_encoding(self.encoding)
        self.stream: Optional[ClientStream] = None
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
        conn = await self.channel.connection()
        authority = f"{self.channel.host}:{self.channel.port}"
        headers = p.request_headers(self.path, authority, timeout=self.timeout,
                                    metadata=self.metadata, encoding=self.encoding)
        if self.timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(self.timeout, self._deadline)
        self.stream = await conn.request(headers, None, end_stream=False)

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
        payload = self.serializer(message) if self.serializer is not None else message
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
        return self.deserializer(payload) if self.deserializer is not None else payload

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


class AsyncChannel:
    """An asyncio gRPC channel to ``target`` (``host:port``): one HTTP/2
    connection, opened on the first call, its streams concurrent.
    ``compression``: the requests' encoding (gzip, deflate)."""

    def __init__(self, target: str, *, compression: Any = None,
                 max_receive_message_length: int = limits.DEFAULT_GRPC_MAX_RECEIVE_MESSAGE
                 ) -> None:
        self.host, self.port = _split_target(target)
        self.compression = _encoding_name(compression)
        self.max_receive_message_length = max_receive_message_length
        self._conn: Optional[Client] = None
        self._lock: Optional[asyncio.Lock] = None

    async def connection(self) -> Client:
        if self._conn is None or self._conn.closed:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._conn is None or self._conn.closed:
                    try:
                        self._conn = await _open(self.host, self.port)
                    except OSError as e:
                        raise RpcError(StatusCode.UNAVAILABLE, f"failed to connect: {e}") from None
        return self._conn

    def unary_unary(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                    response_deserializer: Optional[Callable[..., Any]] = None,
                    **_ignored: Any) -> _AsyncMultiCallable:
        return _AsyncMultiCallable(self, method, False, False, request_serializer,
                                   response_deserializer)

    def unary_stream(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                     response_deserializer: Optional[Callable[..., Any]] = None,
                     **_ignored: Any) -> _AsyncMultiCallable:
        return _AsyncMultiCallable(self, method, False, True, request_serializer,
                                   response_deserializer)

    def stream_unary(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                     response_deserializer: Optional[Callable[..., Any]] = None,
                     **_ignored: Any) -> _AsyncMultiCallable:
        return _AsyncMultiCallable(self, method, True, False, request_serializer,
                                   response_deserializer)

    def stream_stream(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                      response_deserializer: Optional[Callable[..., Any]] = None,
                      **_ignored: Any) -> _AsyncMultiCallable:
        return _AsyncMultiCallable(self, method, True, True, request_serializer,
                                   response_deserializer)

    def stub(self, service: Service) -> Any:
        """A stub for ``service``: one attribute per rpc, named as in the .proto."""
        return _stub(self, service)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> "AsyncChannel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _stub(channel: Any, service: Service) -> Any:
    attrs = {}
    for m in service.methods.values():
        kind = ("stream_" if m.client_streaming else "unary_") + \
            ("stream" if m.server_streaming else "unary")
        attrs[m.name] = getattr(channel, kind)(m.path, _serialize, m.response.FromString)
    return type(f"{service.name}Stub", (), attrs)()


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
        run(call.start())
        if not self._kinds[0]:
            run(call.send(request))
            run(_sync(call.done_writing))
        elif self._kinds[1]:
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


class Channel:
    """A blocking gRPC channel to ``target`` (``host:port``), grpcio's
    channel methods and ``stub(service)``; its calls run on one asyncio
    loop in a background thread. Close it (or use ``with``)."""

    def __init__(self, target: str, *, compression: Any = None,
                 max_receive_message_length: int = limits.DEFAULT_GRPC_MAX_RECEIVE_MESSAGE
                 ) -> None:
        self._aio = AsyncChannel(target, compression=compression,
                                 max_receive_message_length=max_receive_message_length)
        self._loop = _Loop()

    def _run(self, coro: Any) -> Any:
        return self._loop.run(coro)

    def unary_unary(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                    response_deserializer: Optional[Callable[..., Any]] = None,
                    **_ignored: Any) -> _MultiCallable:
        return _MultiCallable(self, method, False, False, request_serializer,
                              response_deserializer)

    def unary_stream(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                     response_deserializer: Optional[Callable[..., Any]] = None,
                     **_ignored: Any) -> _MultiCallable:
        return _MultiCallable(self, method, False, True, request_serializer,
                              response_deserializer)

    def stream_unary(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                     response_deserializer: Optional[Callable[..., Any]] = None,
                     **_ignored: Any) -> _MultiCallable:
        return _MultiCallable(self, method, True, False, request_serializer,
                              response_deserializer)

    def stream_stream(self, method: str, request_serializer: Optional[Callable[..., Any]] = None,
                      response_deserializer: Optional[Callable[..., Any]] = None,
                      **_ignored: Any) -> _MultiCallable:
        return _MultiCallable(self, method, True, True, request_serializer,
                              response_deserializer)

    def stub(self, service: Service) -> Any:
        """A stub for ``service``: one attribute per rpc, named as in the .proto."""
        return _stub(self, service)

    def close(self) -> None:
        try:
            self._run(self._aio.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

