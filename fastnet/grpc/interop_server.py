"""grpc.testing.TestService as the gRPC interoperability suite's server
(grpc's doc/interop-test-descriptions.md), on fastnet.grpc::

    python -m fastnet.grpc.interop_server --port 50051 [--host 127.0.0.1]

Any implementation's interop client can be pointed at it. The messages are
fastnet.proto's, from the suite's own .proto files (shipped in
fastnet/grpc/protos).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any, AsyncIterator, Optional

from .server import Server, ServicerContext
from .service import load_bundled

PROTOS = load_bundled("src/proto/grpc/testing/test.proto")
T = PROTOS.grpc.testing

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def _echo_metadata(context: ServicerContext) -> None:
    md = dict(context.invocation_metadata())
    if ECHO_INITIAL in md:
        context.send_initial_metadata([(ECHO_INITIAL, md[ECHO_INITIAL])])
    if ECHO_TRAILING in md:
        context.set_trailing_metadata([(ECHO_TRAILING, md[ECHO_TRAILING])])


def _check_compressed(request: Any, context: ServicerContext) -> None:
    expect = request.expect_compressed
    if expect is not None and expect.value and not context.request_compressed():
        context.abort(3, "Expected compressed request")   # INVALID_ARGUMENT


def _status(request: Any, context: ServicerContext) -> None:
    status = request.response_status
    if status is not None and status.code:
        context.abort(status.code, status.message)


def _payload(size: int) -> Any:
    return T.Payload(type=T.PayloadType.COMPRESSABLE, body=bytes(size))


class TestServicer:
    """The suite's TestService: async handlers, so streams wait on the
    loop and never hold a thread."""

    async def EmptyCall(self, request: Any, context: ServicerContext) -> Any:
        _echo_metadata(context)
        return T.Empty()

    async def UnaryCall(self, request: Any, context: ServicerContext) -> Any:
        _echo_metadata(context)
        _check_compressed(request, context)
        if request.response_compressed is not None and request.response_compressed.value:
            context.set_compression("gzip")
        _status(request, context)
        return T.SimpleResponse(payload=_payload(request.response_size))

    async def CacheableUnaryCall(self, request: Any, context: ServicerContext) -> Any:
        return await self.UnaryCall(request, context)

    async def StreamingOutputCall(self, request: Any,
                                  context: ServicerContext) -> AsyncIterator[Any]:
        _echo_metadata(context)
        compressed = any(p.compressed is not None and p.compressed.value
                         for p in request.response_parameters)
        if compressed:
            context.set_compression("gzip")
        for param in request.response_parameters:
            if param.interval_us:
                await asyncio.sleep(param.interval_us / 1e6)
            if compressed and not (param.compressed is not None and param.compressed.value):
                context.disable_next_message_compression()
            yield T.StreamingOutputCallResponse(payload=_payload(param.size))
        _status(request, context)

    async def StreamingInputCall(self, requests: AsyncIterator[Any],
                                 context: ServicerContext) -> Any:
        size = 0
        async for request in requests:
            _check_compressed(request, context)
            size += len(request.payload.body) if request.payload is not None else 0
        return T.StreamingInputCallResponse(aggregated_payload_size=size)

    async def FullDuplexCall(self, requests: AsyncIterator[Any],
                             context: ServicerContext) -> AsyncIterator[Any]:
        _echo_metadata(context)
        async for request in requests:
            _status(request, context)
            for param in request.response_parameters:
                if param.interval_us:
                    await asyncio.sleep(param.interval_us / 1e6)
                yield T.StreamingOutputCallResponse(payload=_payload(param.size))

    async def HalfDuplexCall(self, requests: AsyncIterator[Any],
                             context: ServicerContext) -> AsyncIterator[Any]:
        held = [r async for r in requests]
        for request in held:
            for param in request.response_parameters:
                yield T.StreamingOutputCallResponse(payload=_payload(param.size))


def make_server(host: str = "127.0.0.1", port: int = 0, **options: Any) -> tuple[Server, int]:
    """A Server with the TestService (and health) listening on host:port."""
    from .health import add_health
    server = Server(**options)
    server.add_service(T.TestService, TestServicer())
    add_health(server)
    listener = server.listen(host, port)
    return server, int(listener.port)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fastnet.grpc.interop_server",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--use_tls", default="false", choices=("false",),
                        help="TLS is not supported (the flag exists as grpc's runners pass it)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server, port = make_server(args.host, args.port)
    logging.info("fastnet gRPC interop server listening on %s:%d", args.host, port)
    server.run()


if __name__ == "__main__":
    main()
