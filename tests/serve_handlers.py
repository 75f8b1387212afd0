"""Handlers for `python -m fastnet.serve --handler serve_handlers:NAME` in
the CLI tests (the tests put this directory on PYTHONPATH)."""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("serve_handlers")


async def slow(conn, message: bytes) -> bytes:
    """Answer after half a second: a request in flight. Logs "started" so a
    test knows the server has received the request."""
    log.info("started %r", message)
    await asyncio.sleep(0.5)
    return b"done " + message


async def never(conn, message: bytes) -> bytes:
    """Never answer: a request that cannot finish."""
    log.info("started %r", message)
    await asyncio.Event().wait()
    return message


def to_str(conn, message: bytes) -> str:
    """A handler that returns a str (a mistake): its connection is closed,
    the server goes on."""
    if message == b"ok":
        return message  # type: ignore[return-value]
    return message.decode()


def wire_double(request):
    """The wire protocol's handle(request): request * 2."""
    return request * 2


def grpc_echo_setup(server) -> None:
    """``--protocol grpc --handler serve_handlers:grpc_echo_setup``: a raw
    bytes echo at /test.Echo/Unary (and the health service)."""
    import grpc

    from fastnet.grpc.health import add_health
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "test.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(lambda request, context: request)})])
    add_health(server)
