"""Client interceptors for gRPC: the same Chain around the calls of a
channel: blocking (fastnet.grpc.Channel, or grpcio's: the same methods) or
asyncio (fastnet.grpc.AsyncChannel, or grpc.aio's).

    channel = intercept_channel(fastnet.grpc.Channel("127.0.0.1:50051"),
                                Chain([AddMetadata({"authorization": "Bearer s3cret"}),
                                       LoggingInterceptor("json")]),
                                retry=retry_on({Status.UNAVAILABLE, Status.RESOURCE_EXHAUSTED}))

    async with fastnet.grpc.AsyncChannel("127.0.0.1:50051") as inner:
        channel = intercept_channel(inner, chain)     # an asyncio channel: async hooks too
        reply = await channel.unary_unary("/pkg.S/M")(request)
        async for item in channel.unary_stream("/pkg.S/Items")(request): ...

The order is the server's: ``before`` (may add to ``call.metadata``,
which is what is sent, or refuse: the caller gets the Abort), each request
message (first registered first) and each response message (last
registered first), ``after`` once the status is known (a streamed
response: when it is exhausted or fails). ``retry(call, attempt)``
returns the seconds to wait before trying a unary call again, or None;
every attempt is a Call of its own through the chain. A refusal by
``before`` raises the :class:`~fastnet.interceptors.Abort` (the server
never hears of the call); a failed call raises what the channel raised
(its RpcError, with ``code()``).

An asyncio channel's calls (:class:`InterceptedAsyncCall`) are the
channel's own shape: awaited for a unary response, ``async for`` over a
response stream, ``write``/``done_writing``/``read`` when no request
iterator was given, ``code()``, ``details()``, ``trailing_metadata()``,
``initial_metadata()``, ``cancel()``; a chain with ``async def`` hooks is
awaited, and ``sleep`` is ``asyncio.sleep``.
"""
from __future__ import annotations

import asyncio
import inspect
import sys
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Collection, Iterator, Optional, Union

from ..grpc import status_code
from ..grpc.client import EOF
from .core import DROP, Abort, Call, Chain, Interceptor, Status

__all__ = ["AddMetadata", "InterceptedAsyncCall", "InterceptedAsyncChannel", "InterceptedChannel",
           "intercept_channel", "retry_on"]

#: ``retry(call, attempt) -> seconds to wait, or None: give up``.
Retry = Callable[[Call, int], Optional[float]]


class AddMetadata(Interceptor):
    """Adds fixed metadata (an auth token, a tenant) to every call."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self.metadata = dict(metadata)

    def before(self, call: Call) -> None:
        call.metadata.update(self.metadata)


def retry_on(statuses: Collection[Status], *, attempts: int = 3, backoff: float = 0.1,
             multiplier: float = 2.0, max_wait: float = 5.0) -> Retry:
    """A retry policy: at most ``attempts`` tries for the statuses given,
    waiting ``backoff`` then ``multiplier`` times more each time, or the
    server's pushback (``grpc-retry-pushback-ms``) when it sent one, at
    most ``max_wait`` seconds."""
    wanted = frozenset(statuses)

    def retry(call: Call, attempt: int) -> Optional[float]:
        if call.status not in wanted or attempt >= attempts:
            return None
        pushback = call.trailing_metadata.get("grpc-retry-pushback-ms")
        if pushback is not None:
            try:
                wait = int(pushback) / 1000
            except ValueError:
                return None  # gRPC's rule: a malformed pushback means do not retry
            return min(max(wait, 0.0), max_wait)
        return min(backoff * multiplier ** (attempt - 1), max_wait)
    return retry


def _peer(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0


def _ended(call: Call, error: Optional[BaseException]) -> None:
    if error is None:
        call.status, call.protocol_status = Status.OK, 0
        return
    code = getattr(error, "code", None)
    if isinstance(error, Abort):  # an interceptor's, on a message
        call.abort(error)
        call.protocol_status = int(error.status)
        if error.status == Status.INTERNAL and error.__cause__ is not None:
            call.exception = error.__cause__
        return
    if not isinstance(error, Exception):  # the caller stopped reading, or was cancelled
        call.status, call.details = Status.CANCELLED, "cancelled by the caller"
        call.protocol_status = int(Status.CANCELLED)
    elif callable(code):
        number = int(status_code(code()))
        call.status = Status(number) if 0 <= number <= 16 else Status.UNKNOWN
        call.protocol_status = number
        call.details = str(error.details()) if hasattr(error, "details") else ""  # type: ignore[attr-defined]
        trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else ()  # type: ignore[attr-defined]
        call.trailing_metadata = {k: v for k, v in (trailing or ())}
    else:
        call.status, call.exception = Status.UNKNOWN, error
    call.failed = True


def _retry_wait(retry: Retry, method: str, error: Exception, attempt: int) -> Optional[float]:
    """What the policy says of a failed attempt: seconds to wait, or None."""
    failed = Call("grpc", method)
    _ended(failed, error)
    return retry(failed, attempt)


def _stub(channel: Any, service: Any) -> Any:
    """A stub for a fastnet.grpc Service on an intercepted channel (one
    attribute per rpc, as ``Channel.stub``)."""
    kinds = {(False, False): "unary_unary", (False, True): "unary_stream",
             (True, False): "stream_unary", (True, True): "stream_stream"}
    attrs = {m.name: getattr(channel, kinds[bool(m.client_streaming), bool(m.server_streaming)])(
        m.path, request_serializer=_serialize, response_deserializer=m.response.FromString)
        for m in service.methods.values()}
    return type(f"{service.name}Stub", (), attrs)()


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


class _Intercepted:
    """One method of an intercepted channel (grpcio's multi-callable shape)."""

    def __init__(self, channel: "InterceptedChannel", inner: Any, method: str, kind: str) -> None:
        self.channel, self.inner, self.method, self.kind = channel, inner, method, kind

    def _start(self, metadata: Any) -> Call:
        chain = self.channel.chain
        call = chain.start("grpc", self.method, self.channel.peer,
                           {k: v for k, v in (metadata or ())}, kind=self.kind)
        if not chain.before(call):
            chain.after(call)
            raise Abort(call.status, call.details, retry_after=call.retry_after)
        return call

    def _requests(self, call: Call, requests: Any) -> Iterator[Any]:
        for message in requests:
            message = self.channel.chain.request(call, message)
            if message is not DROP:
                yield message

    def _responses(self, call: Call, responses: Any) -> Iterator[Any]:
        chain = self.channel.chain
        error: Optional[BaseException] = None
        try:
            for message in responses:
                message = chain.response(call, message)
                if message is not DROP:
                    yield message
        except Exception as exc:
            error = exc
            raise
        finally:
            _ended(call, error)
            chain.after(call)

    def _once(self, request: Any, timeout: Optional[float], metadata: Any) -> Any:
        chain = self.channel.chain
        call = self._start(metadata)
        sent = list(call.metadata.items())
        if self.kind in ("client_stream", "bidi"):
            request = self._requests(call, request)
        else:
            request = chain.request(call, request)
            if request is DROP:
                dropped = Abort(Status.INVALID_ARGUMENT, "the request was dropped")
                _ended(call, dropped)
                chain.after(call)
                raise dropped
        try:
            result = self.inner(request, timeout=timeout, metadata=sent)
        except Exception as exc:
            _ended(call, exc)
            chain.after(call)
            raise
        if self.kind in ("server_stream", "bidi"):
            return self._responses(call, result)
        error: Optional[Abort] = None
        try:
            response = chain.response(call, result)
            if response is DROP:
                error = Abort(Status.INTERNAL, "the response was dropped")
        except Abort as exc:
            error = exc
        _ended(call, error)
        chain.after(call)
        if error is not None:
            raise error
        return response

    def __call__(self, request: Any, timeout: Optional[float] = None, metadata: Any = None,
                 **_ignored: Any) -> Any:
        retry = self.channel.retry
        if retry is None or self.kind != "unary":
            return self._once(request, timeout, metadata)
        attempt = 1
        while True:
            try:
                return self._once(request, timeout, metadata)
            except Exception as exc:
                wait = _retry_wait(retry, self.method, exc, attempt)
                if wait is None:
                    raise
                self.channel.sleep(wait)
                attempt += 1


class InterceptedChannel:
    """A channel whose calls go through ``chain`` (see the module docstring)."""

    def __init__(self, channel: Any, chain: Chain, *, retry: Optional[Retry] = None,
                 target: str = "", sleep: Callable[[float], None] = time.sleep) -> None:
        if chain.is_async:
            raise ValueError("a blocking channel's chain takes plain hooks only")
        self.inner, self.chain, self.retry, self.sleep = channel, chain, retry, sleep
        self.peer = _peer(target) if target else ("", 0)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _Intercepted:
        return _Intercepted(self, self.inner.unary_unary(method, *args, **kwargs), method, "unary")

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _Intercepted:
        return _Intercepted(self, self.inner.unary_stream(method, *args, **kwargs), method,
                            "server_stream")

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> _Intercepted:
        return _Intercepted(self, self.inner.stream_unary(method, *args, **kwargs), method,
                            "client_stream")

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> _Intercepted:
        return _Intercepted(self, self.inner.stream_stream(method, *args, **kwargs), method, "bidi")

    def stub(self, service: Any) -> Any:
        """A stub for a fastnet.grpc Service whose calls go through the chain."""
        return _stub(self, service)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> "InterceptedChannel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InterceptedAsyncCall:
    """A call of an intercepted asyncio channel (the module docstring):
    ``await`` it (unary response), ``async for`` it (response stream), or
    ``write``/``done_writing``/``read``. Started by the first of these;
    ``code()`` and the others are the last attempt's."""

    def __init__(self, rpc: "_AsyncIntercepted", request: Any, timeout: Optional[float],
                 metadata: Any, options: dict[str, Any]) -> None:
        self._rpc = rpc
        self._request = request
        self._timeout = timeout
        self._metadata = metadata
        self._options = options
        self._inner: Any = None       # the channel's call of the current attempt
        self._call: Optional[Call] = None
        self._started: Optional["asyncio.Future[Call]"] = None

    # -- one attempt -----------------------------------------------------------

    async def _start(self) -> Call:
        rpc = self._rpc
        chain = rpc.channel.chain
        call = self._call = chain.start("grpc", rpc.method, rpc.channel.peer,
                                        {k: v for k, v in (self._metadata or ())}, kind=rpc.kind)
        if not await chain.abefore(call):
            await chain.aafter(call)
            raise Abort(call.status, call.details, retry_after=call.retry_after,
                        trailing_metadata=call.trailing_metadata)
        request = self._request
        if rpc.kind in ("client_stream", "bidi"):
            if request is not None:
                request = self._requests(call, request)
        else:
            request = await self._through(call, chain.arequest, request)
            if request is DROP:
                await self._end(call, Abort(Status.INVALID_ARGUMENT, "the request was dropped"))
        self._inner = rpc.inner(request, timeout=self._timeout,
                                metadata=list(call.metadata.items()), **self._options)
        return call

    async def _through(self, call: Call, hook: Callable[[Call, Any], Awaitable[Any]],
                       message: Any) -> Any:
        """message through chain.arequest/aresponse; an Abort ends the call."""
        try:
            return await hook(call, message)
        except Abort as error:
            await self._end(call, error)

    async def _end(self, call: Call, error: Optional[BaseException]) -> None:
        """The call's status from error (None: OK), the after hooks, and
        error raised again (the inner call cancelled if it runs on)."""
        if not call._done:
            _ended(call, error)
            await self._rpc.channel.chain.aafter(call)
        if error is not None:
            if isinstance(error, Abort) and self._inner is not None:
                self._inner.cancel()
            raise error

    async def _requests(self, call: Call, requests: Any) -> AsyncIterator[Any]:
        chain = self._rpc.channel.chain
        if hasattr(requests, "__aiter__"):
            async for message in requests:
                message = await self._through(call, chain.arequest, message)
                if message is not DROP:
                    yield message
        else:
            for message in requests:
                message = await self._through(call, chain.arequest, message)
                if message is not DROP:
                    yield message

    async def _begin(self) -> Call:
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        return await self._started

    async def _once(self) -> Any:
        call = await self._begin()
        try:
            response = await self._inner
        except Exception as exc:
            await self._end(call, exc)
        response = await self._through(call, self._rpc.channel.chain.aresponse, response)
        await self._end(call, Abort(Status.INTERNAL, "the response was dropped")
                        if response is DROP else None)
        return response

    # -- the call's shape --------------------------------------------------------

    def __await__(self) -> Any:
        return self._unary().__await__()

    async def _unary(self) -> Any:
        retry = self._rpc.channel.retry
        attempt = 1
        while True:
            try:
                return await self._once()
            except Exception as exc:
                if retry is None or self._rpc.kind != "unary":
                    raise
                wait = _retry_wait(retry, self._rpc.method, exc, attempt)
                if wait is None:
                    raise
                await self._rpc.channel.sleep(wait)
                self._started = None
                attempt += 1

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._responses()

    async def _responses(self) -> AsyncIterator[Any]:
        call = await self._begin()
        chain = self._rpc.channel.chain
        try:
            async for message in self._inner:
                message = await self._through(call, chain.aresponse, message)
                if message is not DROP:
                    yield message
        except BaseException as exc:  # CancelledError, GeneratorExit: the caller stopped
            await self._end(call, exc)
            raise
        await self._end(call, None)

    async def write(self, message: Any) -> None:
        """Send one request through the chain (no request iterator given)."""
        call = await self._begin()
        message = await self._through(call, self._rpc.channel.chain.arequest, message)
        if message is not DROP:
            await self._inner.write(message)

    async def done_writing(self) -> None:
        """No more requests."""
        await self._begin()
        await self._inner.done_writing()

    async def read(self) -> Any:
        """The next response through the chain, or the channel's EOF past the
        last (the call's after hooks then run)."""
        call = await self._begin()
        chain = self._rpc.channel.chain
        while True:
            try:
                message = await self._inner.read()
            except Exception as exc:
                await self._end(call, exc)
            if _is_eof(message):
                await self._end(call, None)
                return message
            message = await self._through(call, chain.aresponse, message)
            if message is not DROP:
                return message

    def cancel(self) -> bool:
        """Cancel the call (False if it had not started or had ended)."""
        return bool(self._inner.cancel()) if self._inner is not None else False

    async def code(self) -> Any:
        await self._begin()
        return await self._inner.code()

    async def details(self) -> str:
        await self._begin()
        return await self._inner.details()  # type: ignore[no-any-return]

    async def initial_metadata(self) -> Any:
        await self._begin()
        return await self._inner.initial_metadata()

    async def trailing_metadata(self) -> Any:
        await self._begin()
        return await self._inner.trailing_metadata()


def _is_eof(message: Any) -> bool:
    """message is read()'s end marker: fastnet.grpc's, or grpc.aio's (when
    grpcio is loaded: it is not imported for this)."""
    if message is EOF:
        return True
    aio = sys.modules.get("grpc.aio")
    return aio is not None and message is getattr(aio, "EOF", None)


class _AsyncIntercepted:
    """One method of an intercepted asyncio channel."""

    def __init__(self, channel: "InterceptedAsyncChannel", inner: Any, method: str,
                 kind: str) -> None:
        self.channel, self.inner, self.method, self.kind = channel, inner, method, kind

    def __call__(self, request: Any = None, *, timeout: Optional[float] = None,
                 metadata: Any = None, **options: Any) -> InterceptedAsyncCall:
        return InterceptedAsyncCall(self, request, timeout, metadata, options)


class InterceptedAsyncChannel:
    """An asyncio channel whose calls go through ``chain`` (the module docstring)."""

    def __init__(self, channel: Any, chain: Chain, *, retry: Optional[Retry] = None,
                 target: str = "",
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.inner, self.chain, self.retry, self.sleep = channel, chain, retry, sleep
        self.peer = _peer(target) if target else ("", 0)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _AsyncIntercepted:
        return _AsyncIntercepted(self, self.inner.unary_unary(method, *args, **kwargs), method,
                                 "unary")

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _AsyncIntercepted:
        return _AsyncIntercepted(self, self.inner.unary_stream(method, *args, **kwargs), method,
                                 "server_stream")

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> _AsyncIntercepted:
        return _AsyncIntercepted(self, self.inner.stream_unary(method, *args, **kwargs), method,
                                 "client_stream")

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> _AsyncIntercepted:
        return _AsyncIntercepted(self, self.inner.stream_stream(method, *args, **kwargs), method,
                                 "bidi")

    def stub(self, service: Any) -> Any:
        """A stub for a fastnet.grpc Service whose calls go through the chain."""
        return _stub(self, service)

    async def close(self) -> None:
        await self.inner.close()

    async def __aenter__(self) -> "InterceptedAsyncChannel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def intercept_channel(channel: Any, chain: Chain, *, retry: Optional[Retry] = None,
                      target: str = "",
                      sleep: Optional[Callable[[float], Any]] = None
                      ) -> Union[InterceptedChannel, InterceptedAsyncChannel]:
    """``channel`` with ``chain`` around every call: a blocking channel
    (fastnet.grpc.Channel or grpcio's; plain hooks only) gives an
    :class:`InterceptedChannel`, an asyncio one (fastnet.grpc.AsyncChannel
    or grpc.aio's: its ``close`` is a coroutine) an
    :class:`InterceptedAsyncChannel`. ``target`` ("host:port") names the
    peer in logs; ``sleep`` waits between retries (time.sleep, or
    asyncio.sleep for an asyncio channel; tests pass a fake)."""
    if inspect.iscoroutinefunction(getattr(channel, "close", None)):
        return InterceptedAsyncChannel(channel, chain, retry=retry, target=target,
                                       sleep=sleep or asyncio.sleep)
    return InterceptedChannel(channel, chain, retry=retry, target=target,
                              sleep=sleep or time.sleep)
