"""Interceptors for the wire protocol: the unit with a chain around every
request's handler call.

A wire request is a unary call: ``method`` is its v2 metadata's "method"
(else "call"), ``metadata`` the rest of its metadata map (string keys,
lower-cased), ``peer`` the connection's. Bytes are the fastnet.pack
payload sizes (before compression). A refusal is an ERROR frame with code
REFUSED (8), its "status" (UNAUTHENTICATED, PERMISSION_DENIED,
RESOURCE_EXHAUSTED, ...) and "retry_after" (seconds) when given; an
interceptor's failure is a HANDLER (3) ERROR with status INTERNAL; the
handler's own exception is answered as without interceptors.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any, Callable, Optional

from .. import pack
from ..server.protocols import ProtocolUnit, Session
from ..wire import WIRE, ErrorCode, WireSession
from .core import DROP, Call, Chain, Status

if TYPE_CHECKING:
    from ..server.server import Connection

__all__ = ["CallRefused", "intercept_wire", "wire_code"]


def wire_code(status: Status) -> ErrorCode:
    """The ERROR code a status is sent with."""
    return ErrorCode.HANDLER if status in (Status.INTERNAL, Status.UNKNOWN) else ErrorCode.REFUSED


class CallRefused(Exception):
    """What the wrapped handler raises for a call that did not end OK: the
    wire session sends it as an ERROR with ``wire_code`` and ``wire_fields``."""

    def __init__(self, call: Call) -> None:
        super().__init__(f"{call.status.name}: {call.details}")
        self.wire_code = wire_code(call.status)
        self.wire_fields: dict[str, Any] = {"status": call.status.name}
        if call.retry_after is not None:
            self.wire_fields["retry_after"] = call.retry_after


def _takes_metadata(handler: Callable[..., Any]) -> bool:
    try:
        return "metadata" in inspect.signature(handler).parameters
    except (TypeError, ValueError):
        return False


def _echo(request: Any) -> Any:
    return request


def _packed_size(obj: Any) -> int:
    try:
        return len(pack.packb(obj))
    except (TypeError, ValueError, OverflowError):
        return 0  # the session answers it with its own error


def _begin(chain: Chain, conn: "Connection", metadata: Any) -> Call:
    meta = {str(k).lower(): v for k, v in metadata.items()} if metadata else {}
    method = meta.pop("method", "call")
    call = chain.start("wire", str(method), conn.peer, meta)
    call.protocol_status_of = _code_of
    return call


def _code_of(call: Call) -> int:
    return int(wire_code(call.status)) if call.failed else 0


def _finish(call: Call, handler_error: Optional[BaseException]) -> None:
    if handler_error is not None:  # answered as the session always does
        raise handler_error
    if call.failed:
        raise CallRefused(call)


def _handler_for(chain: Chain, conn: "Connection", handler: Callable[..., Any]) -> Callable[..., Any]:
    """This connection's handler: the user's through the chain."""
    with_metadata = _takes_metadata(handler)

    def inner(request: Any, call: Call) -> Any:
        if with_metadata:
            return handler(request, metadata=call.metadata)
        return handler(request)

    def unhandled(call: Call) -> Optional[BaseException]:
        if call.status == Status.UNKNOWN and call.exception is not None:
            return call.exception
        return None

    if chain.is_async or inspect.iscoroutinefunction(handler):
        async def intercepted_async(request: Any, metadata: Any = None) -> Any:
            call = _begin(chain, conn, metadata)
            result = await chain.arun_unary(call, request, lambda r: inner(r, call),
                                            _packed_size(request), _packed_size)
            _finish(call, unhandled(call))
            return result
        return intercepted_async

    def intercepted(request: Any, metadata: Any = None) -> Any:
        call = _begin(chain, conn, metadata)
        result = chain.run_unary(call, request, lambda r: inner(r, call),
                                 _packed_size(request), _packed_size)
        _finish(call, unhandled(call))
        assert result is not DROP
        return result
    return intercepted


def intercept_wire(chain: Chain, unit: ProtocolUnit = WIRE) -> ProtocolUnit:
    """The wire unit (or one derived from it) with chain around every
    request: ``server.listen(..., protocol=intercept_wire(chain), handler=h)``."""

    def session(conn: "Connection", handler: Any) -> Session:
        return WireSession(conn, _handler_for(chain, conn, handler or _echo))

    def needs_asyncio(handler: Any) -> bool:
        return chain.is_async or unit.needs_asyncio(handler)

    return dataclasses.replace(unit, session=session, needs_asyncio=needs_asyncio)
