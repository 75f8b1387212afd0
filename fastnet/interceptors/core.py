"""The protocol-neutral part of interceptors: statuses, the Call, the
Interceptor base class and the Chain that runs them.

The order, for interceptors registered as ``[a, b, c]``::

    a.before  b.before  c.before        (first registered sees the call first)
    a.on_request  b.on_request  c.on_request   (each request message, in order)
        handler
    c.on_response  b.on_response  a.on_response  (each response message)
    c.after  b.after  a.after           (first registered sees the status last)

``after`` runs for every interceptor whose ``before`` was called (the one
that rejected included), once per call, at its very end (a stream's last
message, or its failure). A message hook that returns :data:`DROP` stops
that message: the interceptors after it, and the handler (request) or the
peer (response), never see it.
"""
from __future__ import annotations

import contextvars
import inspect
import time
from typing import Any, Awaitable, Callable, Optional, Sequence, Union

from ..errors import FastnetError, GrpcStatusCode

__all__ = ["Abort", "Call", "Chain", "DROP", "Interceptor", "Status", "current_call"]


#: A call's outcome in protocol-neutral names: gRPC's seventeen statuses
#: (the same class as fastnet.grpc.StatusCode); each adapter maps a status
#: to its protocol's own form (gRPC status, wire ERROR code, HTTP status).
Status = GrpcStatusCode


class Abort(FastnetError, Exception):
    """Raised by an interceptor (or a handler) to end the call with a
    status: ``Abort(Status.PERMISSION_DENIED, "not for you")``.

    ``retry_after`` (seconds) is how long the peer should wait before
    trying again: gRPC's ``grpc-retry-pushback-ms`` trailing metadata,
    HTTP's Retry-After, the wire ERROR's ``retry_after``.
    ``trailing_metadata`` is added to the call's."""

    def __init__(self, status: Status, details: str = "", *,
                 retry_after: Optional[float] = None,
                 trailing_metadata: Optional[dict[str, str]] = None) -> None:
        super().__init__(status, details)
        self.status = Status(status)
        self.details = details
        self.retry_after = retry_after
        self.trailing_metadata = dict(trailing_metadata or {})

    def __str__(self) -> str:
        return f"{self.status.name}: {self.details}"


_OK = Status.OK  # (an Enum member by attribute is a slower lookup)


class _Drop:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


#: Returned by a message hook: the message goes no further.
DROP: Any = _Drop()


class Call:
    """One call as interceptors see it.

    Set when the call starts: ``protocol`` ("grpc", "wire", "http"),
    ``method`` (gRPC ``/pkg.Service/Method``; HTTP ``GET /path``; wire:
    the request metadata's ``method``, else ``call``), ``peer`` ((host,
    port)), ``metadata`` (a dict of lower-case names; an interceptor's
    ``before`` may change it and the handler sees the change), ``deadline``
    (``time.monotonic()`` seconds, or None), ``kind`` ("unary",
    "client_stream", "server_stream", "bidi"), ``started_at`` (the
    chain's clock). ``identity`` is set by an authenticating interceptor
    and reaches the handler (:func:`current_call`).

    Counted as messages pass: ``messages_in``/``bytes_in`` (requests),
    ``messages_out``/``bytes_out`` (responses).

    Set when the call ends (what ``after`` sees): ``status``, ``details``,
    ``trailing_metadata``, ``duration`` (seconds), ``exception`` (what the
    handler or an interceptor raised, or None), ``protocol_status`` (the
    protocol's own code: HTTP status, wire ERROR code, gRPC code),
    ``retry_after``.

    ``values`` is a dict interceptors may keep their own per-call state in.
    """

    __slots__ = ("protocol", "method", "peer", "metadata", "deadline", "identity", "kind",
                 "started_at", "messages_in", "messages_out", "bytes_in", "bytes_out",
                 "status", "details", "trailing_metadata", "duration", "exception",
                 "protocol_status", "protocol_status_of", "retry_after", "values", "failed",
                 "_entered", "_done")

    def __init__(self, protocol: str, method: str, peer: tuple[str, int] = ("", 0),
                 metadata: Optional[dict[str, str]] = None, deadline: Optional[float] = None,
                 kind: str = "unary", started_at: float = 0.0) -> None:
        # (positional or keyword: adapters pass them by position, the quicker call)
        self.protocol = protocol
        self.method = method
        self.peer = peer
        self.metadata: dict[str, str] = metadata if metadata is not None else {}
        self.deadline = deadline
        self.kind = kind
        self.started_at = started_at
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = self._entered = 0
        self.identity: Any = None
        self.exception: Optional[BaseException] = None
        self.protocol_status: Any = None
        #: Set by the adapter: the protocol's code for the call as it ended,
        #: computed into protocol_status just before the after hooks.
        self.protocol_status_of: Optional[Callable[[Call], Any]] = None
        self.retry_after: Optional[float] = None
        self.status = _OK
        self.details = ""
        self.trailing_metadata: dict[str, Any] = {}
        self.duration = 0.0
        self.values: dict[str, Any] = {}
        #: An Abort or a failure ended it (not a status an adapter read off
        #: a response the handler gave, such as an app's own 404).
        self.failed = self._done = False  # _done: after() has run
        # _entered: interceptors whose before() was called

    def abort(self, error: Abort) -> None:
        """Record a status an Abort carries (the call will end with it)."""
        self.failed = True
        self.status = error.status
        self.details = error.details
        self.retry_after = error.retry_after
        self.trailing_metadata.update(error.trailing_metadata)

    def fail(self, status: Status, exc: BaseException, details: str) -> None:
        """Record a failure: the status, the exception, its details."""
        self.failed = True
        self.status = status
        self.exception = exc
        self.details = details

    @property
    def ok(self) -> bool:
        """The status is OK."""
        return self.status == _OK

    def __repr__(self) -> str:
        return f"<Call {self.protocol} {self.method} {self.status.name}>"


_current: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "fastnet_call", default=None)


#: type -> a function making the Call of a protocol's own call object: an
#: adapter that keeps no Call per call (gRPC's fused built-ins) sets its
#: call object as the current one, and the Call is made only if asked for.
LAZY_CALLS: dict[type, Callable[[Any], Optional[Call]]] = {}


def current_call() -> Optional[Call]:
    """The Call being handled (in a handler called through a chain: its
    ``identity``, ``metadata``, ``peer``), or None outside one."""
    found = _current.get()
    if found is None or found.__class__ is Call:
        return found
    return LAZY_CALLS[found.__class__](found)


class Interceptor:
    """Override any of the four hooks; each may be plain or ``async def``
    (a chain with any async hook runs its calls as coroutines).

    ``before(call)``: raise :class:`Abort` to reject; change
    ``call.metadata`` or set ``call.identity``. ``on_request(call,
    message)`` / ``on_response(call, message)``: return the message (the
    same or a replacement) or :data:`DROP`; raise Abort to end the call.
    ``after(call)``: sees the status and every counter. An exception other
    than Abort from any hook ends that call alone with INTERNAL.
    """

    def before(self, call: Call) -> Union[None, Awaitable[None]]:
        """The call starts (nothing read from it yet but its metadata)."""
        return None

    def on_request(self, call: Call, message: Any) -> Any:
        """A request message on its way to the handler."""
        return message

    def on_response(self, call: Call, message: Any) -> Any:
        """A response message on its way to the peer."""
        return message

    def after(self, call: Call) -> Union[None, Awaitable[None]]:
        """The call ended: status, details, trailing metadata, counters."""
        return None


def _overrides(obj: Interceptor, name: str) -> bool:
    """obj's hook does something (it is not the base class's no-op)."""
    return getattr(getattr(obj, name), "__func__", None) is not getattr(Interceptor, name)


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)


def _name(hook: Callable[..., Any]) -> str:
    owner = getattr(hook, "__self__", None)
    return type(owner).__name__ if owner is not None else getattr(hook, "__qualname__", "?")


class Chain:
    """Interceptors in order (see the module's docstring for what runs
    when). An adapter starts a :class:`Call`, then calls :meth:`before`,
    :meth:`request`/:meth:`response` per message and :meth:`after` once;
    if ``is_async`` the ``a``-prefixed coroutines instead.

    ``clock`` (``time.monotonic``) times ``started_at`` and ``duration``.
    """

    def __init__(self, interceptors: Sequence[Interceptor] = (), *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interceptors = tuple(interceptors)
        for icept in self.interceptors:
            if not isinstance(icept, Interceptor):
                raise TypeError(f"{icept!r} is not a fastnet.interceptors.Interceptor")
        self.clock = clock
        # Only the hooks an interceptor overrides are called (no-op frames cost).
        self._before = [(i, x.before) for i, x in enumerate(self.interceptors)
                        if _overrides(x, "before")]
        self._on_request = [x.on_request for x in self.interceptors if _overrides(x, "on_request")]
        self._on_response = [x.on_response for x in reversed(self.interceptors)
                             if _overrides(x, "on_response")]
        self._after = [(i, x.after) for i, x in reversed(list(enumerate(self.interceptors)))
                       if _overrides(x, "after")]
        hooks = [h for _, h in self._before] + self._on_request + self._on_response \
            + [h for _, h in self._after]
        #: Some hook is a coroutine function: adapters use the a-methods.
        self.is_async = any(_is_async(h) for h in hooks)
        #: Some interceptor looks at messages (adapters may skip per-message work otherwise).
        self.sees_messages = bool(self._on_request or self._on_response)

    def __len__(self) -> int:
        return len(self.interceptors)

    def start(self, protocol: str, method: str, peer: tuple[str, int] = ("", 0),
              metadata: Optional[dict[str, str]] = None, *, deadline: Optional[float] = None,
              kind: str = "unary") -> Call:
        """A new Call, started now."""
        return Call(protocol, method, peer, metadata, deadline, kind, self.clock())

    # -- plain -------------------------------------------------------------

    def before(self, call: Call) -> bool:
        """Run every before hook; False if the call was rejected or an
        interceptor failed (the status is on the call; run :meth:`after`)."""
        call._entered = len(self.interceptors)
        for index, hook in self._before:
            try:
                hook(call)
            except Abort as error:
                call._entered = index + 1
                call.abort(error)
                return False
            except Exception as exc:
                call._entered = index + 1
                call.fail(Status.INTERNAL, exc, f"interceptor {_name(hook)} failed")
                return False
        return True

    def request(self, call: Call, message: Any, size: int = 0) -> Any:
        """A request message through the chain: the message, DROP, or
        raises Abort (an interceptor's failure becomes an INTERNAL Abort)."""
        call.messages_in += 1
        call.bytes_in += size
        for hook in self._on_request:
            message = self._message(call, hook, message)
            if message is DROP:
                break
        return message

    def response(self, call: Call, message: Any, size: int = 0) -> Any:
        """A response message through the chain (last registered first):
        the message, DROP, or raises Abort. ``size`` is counted unless the
        message is dropped (:meth:`sent` counts it later instead when the
        size is only known once encoded)."""
        for hook in self._on_response:
            message = self._message(call, hook, message)
            if message is DROP:
                return DROP
        call.messages_out += 1
        call.bytes_out += size
        return message

    def sent(self, call: Call, size: int) -> None:
        """Count bytes of a response once encoded."""
        call.bytes_out += size

    def _message(self, call: Call, hook: Callable[[Call, Any], Any], message: Any) -> Any:
        try:
            return hook(call, message)
        except Abort:
            raise
        except Exception as exc:
            call.exception = exc
            raise Abort(Status.INTERNAL, f"interceptor {_name(hook)} failed") from exc

    def after(self, call: Call) -> None:
        """Run the after hooks (once) of every interceptor whose before ran."""
        if call._done:
            return
        call._done = True
        call.duration = self.clock() - call.started_at
        if call.protocol_status_of is not None:
            call.protocol_status = call.protocol_status_of(call)
        self._after_hooks(call, self._after)

    def _after_hooks(self, call: Call, hooks: Sequence[tuple[int, Callable[[Call], Any]]]) -> None:
        """Run these plain after hooks of interceptors whose before ran."""
        for index, hook in hooks:
            if index < call._entered:
                try:
                    hook(call)
                except Exception as exc:
                    call.fail(Status.INTERNAL, exc, f"interceptor {_name(hook)} failed")

    # -- async ---------------------------------------------------------------

    async def abefore(self, call: Call) -> bool:
        """:meth:`before` with async hooks awaited."""
        call._entered = len(self.interceptors)
        for index, hook in self._before:
            try:
                result = hook(call)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Abort as error:
                call._entered = index + 1
                call.abort(error)
                return False
            except Exception as exc:
                call._entered = index + 1
                call.fail(Status.INTERNAL, exc, f"interceptor {_name(hook)} failed")
                return False
        return True

    async def arequest(self, call: Call, message: Any, size: int = 0) -> Any:
        """:meth:`request` with async hooks awaited."""
        call.messages_in += 1
        call.bytes_in += size
        for hook in self._on_request:
            message = await self._amessage(call, hook, message)
            if message is DROP:
                break
        return message

    async def aresponse(self, call: Call, message: Any, size: int = 0) -> Any:
        """:meth:`response` with async hooks awaited."""
        for hook in self._on_response:
            message = await self._amessage(call, hook, message)
            if message is DROP:
                return DROP
        call.messages_out += 1
        call.bytes_out += size
        return message

    async def _amessage(self, call: Call, hook: Callable[[Call, Any], Any], message: Any) -> Any:
        try:
            result = hook(call, message)
            if inspect.isawaitable(result):
                result = await result
            return result
        except Abort:
            raise
        except Exception as exc:
            call.exception = exc
            raise Abort(Status.INTERNAL, f"interceptor {_name(hook)} failed") from exc

    async def aafter(self, call: Call) -> None:
        """:meth:`after` with async hooks awaited."""
        if call._done:
            return
        call._done = True
        call.duration = self.clock() - call.started_at
        if call.protocol_status_of is not None:
            call.protocol_status = call.protocol_status_of(call)
        for index, hook in self._after:
            if index < call._entered:
                try:
                    result = hook(call)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    call.fail(Status.INTERNAL, exc, f"interceptor {_name(hook)} failed")

    # -- running a handler ------------------------------------------------

    def handler_failed(self, call: Call, exc: BaseException) -> None:
        """Record what a handler raised: its Abort's status, else UNKNOWN
        (the handler's error; its text is not sent to the peer)."""
        if isinstance(exc, Abort):
            if call.exception is None and exc.status == Status.INTERNAL and exc.__cause__:
                call.exception = exc.__cause__
            call.abort(exc)
        else:
            call.fail(Status.UNKNOWN, exc, f"{type(exc).__name__} in the handler")

    def run_unary(self, call: Call, request: Any, handler: Callable[[Any], Any],
                  request_size: int = 0, size_of: Optional[Callable[[Any], int]] = None) -> Any:
        """A unary call through the chain (plain hooks, plain handler):
        the response, or DROP when the call failed (the status is on the
        call; :meth:`after` has run). A dropped request ends it
        INVALID_ARGUMENT, a dropped response INTERNAL."""
        token = _current.set(call)
        response: Any = DROP
        try:
            if self.before(call):
                try:
                    request = self.request(call, request, request_size)
                    if request is DROP:
                        raise Abort(Status.INVALID_ARGUMENT, "the request was dropped")
                    response = handler(request)
                    response = self.response(call, response,
                                             size_of(response) if size_of is not None else 0)
                    if response is DROP:
                        raise Abort(Status.INTERNAL, "the response was dropped")
                except Exception as exc:
                    self.handler_failed(call, exc)
        finally:
            self.after(call)
            _current.reset(token)
        return DROP if call.failed else response

    async def arun_unary(self, call: Call, request: Any, handler: Callable[[Any], Any],
                         request_size: int = 0,
                         size_of: Optional[Callable[[Any], int]] = None) -> Any:
        """:meth:`run_unary` with async hooks and a plain or async handler."""
        token = _current.set(call)
        response: Any = DROP
        try:
            if await self.abefore(call):
                try:
                    request = await self.arequest(call, request, request_size)
                    if request is DROP:
                        raise Abort(Status.INVALID_ARGUMENT, "the request was dropped")
                    response = handler(request)
                    if inspect.isawaitable(response):
                        response = await response
                    response = await self.aresponse(
                        call, response, size_of(response) if size_of is not None else 0)
                    if response is DROP:
                        raise Abort(Status.INTERNAL, "the response was dropped")
                except Exception as exc:
                    self.handler_failed(call, exc)
        finally:
            await self.aafter(call)
            _current.reset(token)
        return DROP if call.failed else response
