"""Interceptors: one ordered chain around the calls of gRPC, the wire
protocol and the HTTP app (ARCHITECTURE.md "Interceptors").

>>> chain = Chain([LoggingInterceptor("json"), AuthInterceptor({"s3cret": "alice"}),
...                RateLimitInterceptor(100, key="identity")])
>>> server.listen("127.0.0.1", 0, protocol=intercept("wire", chain), handler=handle)

An :class:`Interceptor` overrides any of ``before(call)``,
``on_request(call, message)``, ``on_response(call, message)``,
``after(call)`` (plain or ``async def``); the first registered sees the
call first and its status last. :class:`Abort` ends a call with a
:class:`Status`, which each protocol's adapter says in its own words.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable, Union

from .builtins import (PUBLIC_METHODS, AuthInterceptor, BucketTable, LineWriter, LoggingInterceptor,
                       MethodPatterns, RateLimitInterceptor, allow_per_identity,
                       credential_identity)
from .core import DROP, Abort, Call, Chain, Interceptor, Status, current_call

if TYPE_CHECKING:
    from ..server.protocols import ProtocolUnit

#: protocol name -> "module:function" making its intercepted unit,
#: ``function(chain) -> ProtocolUnit`` (imported when first asked for).
ADAPTERS: dict[str, Union[str, Callable[[Chain], "ProtocolUnit"]]] = {
    "wire": "fastnet.interceptors.wire:intercept_wire",
    "http": "fastnet.interceptors.http:intercept_http",
    "grpc": "fastnet.interceptors.grpc:intercept_grpc",
}


def register_adapter(protocol: str, adapter: Union[str, Callable[[Chain], "ProtocolUnit"]]) -> None:
    """Make :func:`intercept` serve ``protocol`` with adapter (a function
    of the chain returning the protocol's unit, or "module:function")."""
    ADAPTERS[protocol] = adapter


def intercept(protocol: str, chain: Chain) -> "ProtocolUnit":
    """The registered protocol's unit with chain around every call, for
    ``Server.listen(..., protocol=intercept("wire", chain), handler=h)``.
    ValueError names the protocols that have an adapter."""
    adapter = ADAPTERS.get(protocol)
    if adapter is None:
        raise ValueError(f"no interceptor adapter for protocol {protocol!r}; "
                         f"have {sorted(ADAPTERS)}")
    if isinstance(adapter, str):
        module, _, name = adapter.partition(":")
        adapter = ADAPTERS[protocol] = getattr(importlib.import_module(module), name)
    return adapter(chain)


__all__ = ["ADAPTERS", "Abort", "AuthInterceptor", "BucketTable", "Call", "Chain", "DROP", "Interceptor",
           "LineWriter", "LoggingInterceptor", "MethodPatterns", "PUBLIC_METHODS", "RateLimitInterceptor",
           "Status", "allow_per_identity", "credential_identity", "current_call", "intercept",
           "register_adapter"]
