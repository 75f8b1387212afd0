"""Interceptors for gRPC: a chain as one of fastnet.grpc.Server's call-path
hooks (fastnet/grpc/server.py's docstring), around all four kinds of RPC.

``server = fastnet.grpc.Server(hooks=[ChainHook(chain)])``, or
``server.add_hook(ChainHook(chain))``. A call's ``method`` is
``/package.Service/Method``, ``metadata`` the invocation metadata (a
repeated key's text values joined with ", "; an interceptor's change is
what the handler sees), ``deadline`` from grpc-timeout, ``kind`` the RPC's
kind. Each request and response message passes the message hooks as it
is decoded or before it is serialized (bytes are those on the wire,
prefixes included, as the server counts them). A refusal is the status
itself; ``retry_after`` becomes the ``grpc-retry-pushback-ms`` trailer
(gRPC's retry design). ``after`` runs when the server's ``call_ended``
does, once the status was sent, so a failure there is only logged; a call
that ends before the chain starts (UNIMPLEMENTED, a bad header, a passed
deadline) is seen by every ``after``. The identity reaches the handler as
``call_of(context).identity`` (also ``current_call()`` for handlers on
the server's loop) and the server's ``call.identity``.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable, Mapping, Optional

from ..grpc import Abort as GrpcAbort
from ..grpc import Server, ServerCall, ServicerContext, StatusCode
from ..grpc.server import GRPC
from ..server.protocols import ProtocolUnit
from .builtins import _NAMES, AuthInterceptor, _remember, _Remembered, LoggingInterceptor, RateLimitInterceptor
from .core import DROP, LAZY_CALLS, Abort, Call, Chain, Status, _current, _name

__all__ = ["ChainHook", "PUSHBACK", "call_of", "intercept_grpc"]

log = logging.getLogger("fastnet.interceptors")

#: The trailer a retry time goes in (milliseconds), as gRPC's retry design reads it.
PUSHBACK = "grpc-retry-pushback-ms"


def call_of(context: ServicerContext) -> Optional[Call]:
    """The interceptors' Call of a handler's context (identity, metadata);
    None once the call has ended."""
    scall = getattr(context, "call", None)
    found = getattr(scall, "interceptor_call", None)
    if found is None or found.__class__ is Call:
        return found
    return found.call_of(scall)


_STATUSES = tuple(Status)  # by number: gRPC's codes are 0..16


def _metadata(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    meta = dict(pairs)
    if len(meta) == len(pairs):  # no repeated key: the common case, in C
        return meta
    meta = {}
    for key, value in pairs:
        if key in meta and isinstance(value, str) and isinstance(meta[key], str):
            meta[key] = f"{meta[key]}, {value}"
        elif key not in meta:
            meta[key] = value
    return meta


def _refusal(refused: Any) -> GrpcAbort:
    """The server's Abort for a Call or an Abort of ours (same fields)."""
    trailing = list(refused.trailing_metadata.items())
    if refused.retry_after is not None:
        trailing.append((PUSHBACK, str(max(0, math.ceil(refused.retry_after * 1000)))))
    return GrpcAbort(StatusCode(int(refused.status)), refused.details, trailing or None)


#: A step of the fused path: one built-in's work on the server call itself.
Step = Callable[[ServerCall], None]


def _fusable(chain: Chain) -> bool:
    """Only built-ins that need no Call (plain, no message hooks, the server's clock)."""
    return not chain.is_async and not chain.sees_messages and chain.clock is time.monotonic \
        and all(type(icept) in (LoggingInterceptor, AuthInterceptor) or (
            type(icept) is RateLimitInterceptor and icept.key_name is not None)
            for icept in chain.interceptors)


def _authenticate(auth: AuthInterceptor, method: str) -> Optional[Step]:
    """auth's before for calls of method: none for a public one; else the
    identity of the one authorization header, looked up as the request
    carries it (the metadata decoded only when that finds none)."""
    if auth.is_public(method):
        return None
    by_header, policy, identify = auth.bearer_headers, auth.policy, auth.identify
    # fixed rules (a _Remembered policy): this method's answers kept by identity
    rules = policy.rules if isinstance(policy, _Remembered) else None
    answers: dict[Any, bool] = {}

    def authenticate(scall: ServerCall) -> None:
        header, seen = None, 0
        for name, value in scall.headers:
            if name == b"authorization":
                header, seen = value, seen + 1
        identity = by_header.get(header) if seen == 1 else None  # type: ignore[arg-type]
        if identity is None:  # another scheme, x-api-key, a function, no credentials...
            identity = identify(_metadata(scall.invocation_metadata))
        scall.identity = identity
        if rules is not None:
            allowed = answers.get(identity)
            if allowed is None:
                allowed = _remember(answers, identity, rules(identity, method))
        else:
            allowed = policy is None or policy(identity, method)
        if not allowed:
            raise auth.denied(identity, method)
    return authenticate


def _limit(limiter: RateLimitInterceptor, method: str) -> Optional[Step]:
    """limiter's before for calls of method (its key read off the server call)."""
    assert limiter.calls is not None  # (no calls limited: a message limit, not fused)
    take, clock, refusal, by = limiter.calls.take, limiter.clock, limiter.refusal, limiter.key_name

    def limit(scall: ServerCall) -> None:
        if by == "identity":
            identity = scall.identity
            key: Any = ("id", identity) if identity is not None else ("peer", scall.peer_address[0])
        else:
            key = scall.peer_address[0] if by == "peer" else method
        wait = take(key, clock())
        if wait:
            raise refusal("calls", wait)
    return limit


#: A server call's code -> (status name, number) for a log line (None: OK).
_ENDS: dict[Any, tuple[str, int]] = {code: (_NAMES[code], int(code)) for code in StatusCode}
_ENDS[None] = _ENDS[StatusCode.OK]


def _log(logger: LoggingInterceptor) -> Step:
    """logger's after: the line from the server call's own fields."""
    emit, line = logger.emit, logger.format_line

    def log_call(scall: ServerCall) -> None:
        code = scall.code
        end = _ENDS.get(code)
        if end is None:  # a number that is no status: UNKNOWN, as _ended says
            end = ("UNKNOWN", int(code))  # type: ignore[arg-type]
        fields = ("grpc", scall.method, scall.peer_address, end[0], end[1], scall.duration,
                  scall.messages_in, scall.bytes_in, scall.messages_out, scall.bytes_out,
                  scall.identity, scall.details)
        sink = logger.sink
        if sink is not None:
            sink(line(*fields))
        else:
            emit(*fields)
    return log_call


class ChainHook:
    """A fastnet.grpc.Server hook that runs ``chain`` (plain hooks, or
    coroutines when the chain has an async one). One per server: its Call
    is the server call's ``interceptor_call`` (a chain takes any number of
    interceptors). The message hooks are left out when no interceptor has
    one (the server's unary fast path stays on).

    A chain of built-ins only (logging, authentication, rate limiting by
    a built-in key; plain, no message limit, the default clock) is fused:
    no Call per call, each built-in's work done on the server call itself
    (:data:`Step`), the steps of a method found once (a public method has
    no authentication step); ``interceptor_call`` is then this hook, and a
    Call is made only when asked for (:func:`call_of`,
    :func:`~fastnet.interceptors.current_call`) or when a step refuses the
    call (then the call ends as a chain of Calls would end it)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.clock = chain.clock
        #: The server's start time is the chain's: read, not taken again.
        self._same_clock = chain.clock is time.monotonic
        #: method -> its before steps, (chain index, step) in order (fused chains)
        self._plans: dict[str, tuple[tuple[int, Step], ...]] = {}
        #: (position in chain._after, step) in after's order (fused chains)
        self._after_steps: tuple[tuple[int, Step], ...] = ()
        #: The chain is fused (built-ins only: no Call per call).
        self.fused = _fusable(chain)
        if self.fused:
            self._after_steps = tuple(
                (position, _log(chain.interceptors[index]))  # type: ignore[arg-type]
                for position, (index, _) in enumerate(chain._after))
            self.call_started = self._fused_started  # type: ignore[method-assign]
            # no after step (authentication, rate limiting): nothing to run at the end
            ended = self._fused_ended if chain._after else None
            self.call_ended = ended  # type: ignore[method-assign,assignment]
        if chain.is_async:
            self.call_started = self._astarted  # type: ignore[method-assign,assignment]
            self.message_received = self._areceived  # type: ignore[method-assign,assignment]
            self.message_sending = self._asending  # type: ignore[method-assign,assignment]
            self.call_ended = self._aended  # type: ignore[method-assign,assignment]
        elif not chain.sees_messages:  # nothing to do per message: no hook frames
            self.message_received = None  # type: ignore[assignment,method-assign]
            self.message_sending = None  # type: ignore[assignment,method-assign]

    def _begin(self, scall: ServerCall) -> tuple[Call, dict[str, Any]]:
        """The call's Call (its metadata a copy of the invocation metadata)
        and that metadata as it was, to see a change."""
        if scall.interceptor_call is not None:
            raise RuntimeError("two ChainHooks on one server: give one chain every interceptor")
        original = _metadata(scall.invocation_metadata)
        call = scall.interceptor_call = Call(
            "grpc", scall.method, scall.peer_address, original.copy(), scall.deadline,
            scall.kind, scall.started_at if self._same_clock else self.clock())
        _current.set(call)  # the handler, when it runs in this task or inside this read
        return call, original

    # -- fused (built-ins only) ------------------------------------------------

    def _plan(self, method: str) -> tuple[tuple[int, Step], ...]:
        steps: list[tuple[int, Step]] = []
        for index, icept in enumerate(self.chain.interceptors):
            step = _authenticate(icept, method) if type(icept) is AuthInterceptor \
                else _limit(icept, method) if type(icept) is RateLimitInterceptor \
                else None  # type: ignore[arg-type]
            if step is not None:
                steps.append((index, step))
        return _remember(self._plans, method, tuple(steps))

    def _fused_started(self, scall: ServerCall) -> None:
        """The built-ins' before steps of the call's method, in order."""
        if scall.interceptor_call is not None:
            raise RuntimeError("two ChainHooks on one server: give one chain every interceptor")
        steps = self._plans.get(scall.method)
        if steps is None:
            steps = self._plan(scall.method)
        scall.interceptor_call = self  # no Call yet: call_of makes one if asked
        _current.set(scall)
        index = 0
        try:
            for index, step in steps:
                step(scall)
        except Exception as exc:  # refused: from here on the call has a Call
            call = self.call_of(scall)
            assert call is not None
            call._entered = index + 1
            if isinstance(exc, Abort):
                call.abort(exc)
            else:
                call.fail(Status.INTERNAL, exc,
                          f"interceptor {type(self.chain.interceptors[index]).__name__} failed")
            raise _refusal(call) from None

    def call_of(self, scall: ServerCall) -> Optional[Call]:
        """The Call of a fused call, made now (kept as its interceptor_call);
        None once it has ended."""
        if scall.done:
            return None
        call = scall.interceptor_call = Call(
            "grpc", scall.method, scall.peer_address, _metadata(scall.invocation_metadata),
            scall.deadline, scall.kind, scall.started_at)
        call.identity = scall.identity
        call._entered = len(self.chain)  # (a refusal says how far it got)
        _current.set(call)
        return call

    def _fused_ended(self, scall: ServerCall) -> None:
        """The built-ins' after steps (a call that has a Call: the chain's after)."""
        found = scall.interceptor_call
        if found is not self and found is not None:
            self._chain_ended(scall)
            return
        # (interceptor_call stays this hook, and the current call this one
        # until the next: call_of and current_call give None once it is done)
        position = 0
        try:
            for position, step in self._after_steps:
                step(scall)
        except Exception as exc:  # the rest of the chain sees INTERNAL, as after() would
            scall.interceptor_call = None  # (_ended makes the Call of a call that had none)
            call = self._ended(scall)
            call.duration, call._done = scall.duration, True
            call.fail(Status.INTERNAL, exc, f"interceptor {_name(self.chain._after[position][1])} "
                                            "failed")
            self.chain._after_hooks(call, self.chain._after[position + 1:])

    # -- a chain of Calls ------------------------------------------------------

    @staticmethod
    def _started(scall: ServerCall, call: Call, original: dict[str, Any], ok: bool) -> None:
        if call.identity is not None:
            scall.identity = call.identity
        if not ok:
            raise _refusal(call)
        if call.metadata != original:
            scall.invocation_metadata = list(call.metadata.items())

    def call_started(self, scall: ServerCall) -> None:
        """Run the before hooks; a refusal is the server's Abort."""
        call, original = self._begin(scall)
        ok = self.chain.before(call)
        if ok and call.metadata == original:  # the usual end: only the identity to carry over
            if call.identity is not None:
                scall.identity = call.identity
        else:
            self._started(scall, call, original, ok)

    async def _astarted(self, scall: ServerCall) -> None:
        call, original = self._begin(scall)
        self._started(scall, call, original, await self.chain.abefore(call))

    def message_received(self, scall: ServerCall, message: Any) -> Any:
        """A request message through the chain (None: dropped)."""
        try:
            call = scall.interceptor_call
            if call is None:  # ended (a deadline, say) while its handler runs on
                return message
            message = self.chain.request(call, message)
        except Abort as error:
            raise _refusal(error) from error.__cause__
        return None if message is DROP else message

    async def _areceived(self, scall: ServerCall, message: Any) -> Any:
        try:
            call = scall.interceptor_call
            if call is None:  # ended (a deadline, say) while its handler runs on
                return message
            message = await self.chain.arequest(call, message)
        except Abort as error:
            raise _refusal(error) from error.__cause__
        return None if message is DROP else message

    def message_sending(self, scall: ServerCall, message: Any) -> Any:
        """A response message through the chain (None: dropped)."""
        try:
            call = scall.interceptor_call
            if call is None:  # ended (a deadline, say) while its handler runs on
                return message
            message = self.chain.response(call, message)
        except Abort as error:
            raise _refusal(error) from error.__cause__
        return None if message is DROP else message

    async def _asending(self, scall: ServerCall, message: Any) -> Any:
        try:
            call = scall.interceptor_call
            if call is None:  # ended (a deadline, say) while its handler runs on
                return message
            message = await self.chain.aresponse(call, message)
        except Abort as error:
            raise _refusal(error) from error.__cause__
        return None if message is DROP else message

    def _ended(self, scall: ServerCall) -> Call:
        call: Optional[Call] = scall.interceptor_call
        if call is None:  # ended before call_started: every after sees it
            call = self.chain.start("grpc", scall.method, scall.peer_address,
                                    _metadata(scall.invocation_metadata),
                                    deadline=scall.deadline, kind=scall.kind)
            call.started_at -= scall.duration
            call._entered = len(self.chain)
        code = scall.code
        number = 0 if code is None else int(code)
        call.protocol_status = number
        if number:
            call.status = _STATUSES[number] if 0 < number < len(_STATUSES) else Status.UNKNOWN
            call.failed = True
        call.details = scall.details
        if scall.trailing_metadata:
            call.trailing_metadata = dict(scall.trailing_metadata)
        error = scall.error
        if error is not None and call.exception is None and not isinstance(error, GrpcAbort):
            call.exception = error
        call.messages_in, call.messages_out = scall.messages_in, scall.messages_out
        call.bytes_in, call.bytes_out = scall.bytes_in, scall.bytes_out
        return call

    def call_ended(self, scall: ServerCall) -> None:
        """Run the after hooks (reverse order) with the final status."""
        self._chain_ended(scall)

    def _chain_ended(self, scall: ServerCall) -> None:
        self.chain.after(self._ended(scall))
        _current.set(None)  # a call served inside a read ran in the engine's context
        # The server call and its context hold each other: left on it, the
        # Call and its dicts would wait for the cyclic GC (more of its work
        # per call); let go, they are freed now.
        scall.interceptor_call = None

    async def _aended(self, scall: ServerCall) -> None:
        await self.chain.aafter(self._ended(scall))
        scall.interceptor_call = None


def _lazy_call(scall: ServerCall) -> Optional[Call]:
    found = scall.interceptor_call
    return found if found is None or found.__class__ is Call else found.call_of(scall)


LAZY_CALLS[ServerCall] = _lazy_call


def intercept_grpc(chain: Chain, unit: ProtocolUnit = GRPC) -> ProtocolUnit:
    """The gRPC unit whose servers (``make_server``: ``python -m
    fastnet.serve --protocol grpc``) run chain as a hook. In
    Python, give a Server the hook itself: ``Server(hooks=[ChainHook(chain)])``."""
    make = unit.make_server

    def make_server(values: Mapping[str, Any], server_options: dict[str, Any]) -> Server:
        server = make(values, server_options) if make is not None else Server(**server_options)
        assert isinstance(server, Server)
        server.add_hook(ChainHook(chain))  # a new server: the first hook
        return server

    return dataclasses.replace(unit, make_server=make_server)
