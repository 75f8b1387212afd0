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

from .builtins import (PUBLIC_METHODS, AuthInterceptor, BucketTable, LoggingInterceptor,
                       MethodPatterns, RateLimitInterceptor, allow_per_identity,
                       credential_identity)
from .core import DROP, Abort, Call, Chain, Interceptor, Status, current_call

__all__ = ["Abort", "AuthInterceptor", "BucketTable", "Call", "Chain", "DROP", "Interceptor",
           "LoggingInterceptor", "MethodPatterns", "PUBLIC_METHODS", "RateLimitInterceptor",
           "Status", "allow_per_identity", "credential_identity", "current_call"]
