"""gRPC over fastnet's HTTP/2 (grpc's PROTOCOL-HTTP2.md), server and client.

* :func:`load` a .proto file: its messages (fastnet.proto) and services.
* :class:`Server`: serves servicers of those services, and grpcio's
  generated servicers unchanged (``add_XServicer_to_server(servicer, server)``).
* :class:`Channel` / :class:`aio.Channel`: sync and asyncio clients; stubs
  from the same services, or grpcio's generated stubs.
* :mod:`fastnet.grpc.protocol`: the sans-IO rules (message prefix,
  compression, timeouts, metadata, status).
"""
from __future__ import annotations

from ..errors import GrpcStatusCode as StatusCode
from .client import AsyncCall, AsyncChannel, Call, Channel, RpcError
from .protocol import Metadata
from .server import Abort, AbortError, Metadatum, Server, ServerCall, ServicerContext, status_code
from .service import (GenericHandler, Method, MethodHandler, Service, load, method_handler,
                      services_of)


def method_handlers_generic_handler(service: str, method_handlers: dict) -> GenericHandler:
    """grpcio's ``method_handlers_generic_handler``: a generic handler for
    one service's method handlers."""
    return GenericHandler(service, method_handlers)


__all__ = ["Abort", "AbortError", "AsyncCall", "AsyncChannel", "Call", "Channel", "RpcError", "GenericHandler", "Metadata", "Metadatum", "Method",
           "MethodHandler", "Server", "ServerCall", "Service", "ServicerContext", "StatusCode",
           "load", "method_handler", "method_handlers_generic_handler", "services_of",
           "status_code"]
