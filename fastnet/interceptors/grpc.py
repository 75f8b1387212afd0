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
from typing import Any, Mapping, Optional

from ..grpc import Abort as GrpcAbort
from ..grpc import Server, ServerCall, ServicerContext, StatusCode
from ..grpc.server import GRPC
from ..server.protocols import ProtocolUnit
from .core import DROP, Abort, Call, Chain, Status, _current

__all__ = ["ChainHook", "PUSHBACK", "call_of", "intercept_grpc"]

log = logging.getLogger("fastnet.interceptors")

#: The trailer a retry time goes in (milliseconds), as gRPC's retry design reads it.
PUSHBACK = "grpc-retry-pushback-ms"


def call_of(context: ServicerContext) -> Optional[Call]:
    """The interceptors' Call of a handler's context (identity, metadata);
    None once the call has ended."""
    return getattr(getattr(context, "call", None), "interceptor_call", None)


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


class ChainHook:
    """A fastnet.grpc.Server hook that runs ``chain`` (plain hooks, or
    coroutines when the chain has an async one). One per server: its Call
    is the server call's ``interceptor_call`` (a chain takes any number of
    interceptors). The message hooks are left out when no interceptor has
    one (the server's unary fast path stays on)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.clock = chain.clock
        #: The server's start time is the chain's: read, not taken again.
        self._same_clock = chain.clock is time.monotonic
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
        self.chain.after(self._ended(scall))
        _current.set(None)  # a call served inside a read ran in the engine's context
        # The server call and its context hold each other: left on it, the
        # Call and its dicts would wait for the cyclic GC (more of its work
        # per call); let go, they are freed now.
        scall.interceptor_call = None

    async def _aended(self, scall: ServerCall) -> None:
        await self.chain.aafter(self._ended(scall))
        scall.interceptor_call = None


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
