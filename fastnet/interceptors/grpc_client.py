"""Client interceptors for gRPC: the same Chain around the calls of a
channel (fastnet.grpc.Channel, or grpcio's: the same methods).

    channel = intercept_channel(fastnet.grpc.Channel("127.0.0.1:50051"),
                                Chain([AddMetadata({"authorization": "Bearer s3cret"}),
                                       LoggingInterceptor("json")]),
                                retry=retry_on({Status.UNAVAILABLE, Status.RESOURCE_EXHAUSTED}))

The order is the server's: ``before`` (may add to ``call.metadata``,
which is what is sent, or refuse: the caller gets the Abort), each request
message (first registered first) and each response message (last
registered first), ``after`` once the status is known (a streamed
response: when it is exhausted or fails). ``retry(call, attempt)``
returns the seconds to wait before trying a unary call again, or None;
every attempt is a Call of its own through the chain.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Collection, Iterator, Optional

from ..grpc import status_code
from .core import DROP, Abort, Call, Chain, Interceptor, Status

__all__ = ["AddMetadata", "InterceptedChannel", "intercept_channel", "retry_on"]

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
    if callable(code):
        number = int(status_code(code()))
        call.status = Status(number) if 0 <= number <= 16 else Status.UNKNOWN
        call.protocol_status = number
        call.details = str(error.details()) if hasattr(error, "details") else ""  # type: ignore[attr-defined]
        trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else ()  # type: ignore[attr-defined]
        call.trailing_metadata = {k: v for k, v in (trailing or ())}
    else:
        call.status, call.exception = Status.UNKNOWN, error
    call.failed = True


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
                raise Abort(Status.INVALID_ARGUMENT, "the request was dropped")
        try:
            result = self.inner(request, timeout=timeout, metadata=sent)
        except Exception as exc:
            _ended(call, exc)
            chain.after(call)
            raise
        if self.kind in ("server_stream", "bidi"):
            return self._responses(call, result)
        response = chain.response(call, result)
        _ended(call, None)
        chain.after(call)
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
                failed = Call("grpc", self.method)
                _ended(failed, exc)
                wait = retry(failed, attempt)
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

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> "InterceptedChannel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def intercept_channel(channel: Any, chain: Chain, *, retry: Optional[Retry] = None,
                      target: str = "", sleep: Callable[[float], None] = time.sleep
                      ) -> InterceptedChannel:
    """``channel`` (fastnet.grpc.Channel or a grpcio channel) with ``chain``
    around every call; ``target`` ("host:port") names the peer in logs;
    ``sleep`` waits between retries (tests pass a fake)."""
    return InterceptedChannel(channel, chain, retry=retry, target=target, sleep=sleep)
