"""Client chains on asyncio channels (fastnet.grpc.AsyncChannel, and
grpc.aio's for comparison) calling a grpcio server: every RPC kind through
three interceptors (plain and async), one that adds metadata, a retry of
UNAVAILABLE, refusals before the call and on a streamed response, and the
write/read form of a call."""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from concurrent import futures
from typing import Any, AsyncIterator, Iterator

import grpc
import grpc.aio
import pytest

import fastnet.grpc
from fastnet.grpc import StatusCode, status_code
from fastnet.interceptors import Abort, Chain, Interceptor, LoggingInterceptor, Status
from fastnet.interceptors.grpc_client import (AddMetadata, InterceptedAsyncChannel,
                                              intercept_channel, retry_on)
from helpers import GUARD
from interceptor_helpers import AsyncRecorder, Recorder

SERVICE = "test.AioEcho"


def _meta(context: Any, key: str) -> bytes:
    return dict(context.invocation_metadata()).get(key, "-").encode()


class Service:
    """The grpcio server's handlers (bytes in, bytes out); counts calls."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        self.flaky_failures = 2

    def _count(self, name: str) -> int:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1
            return self.calls[name]

    def unary(self, request: bytes, context: Any) -> bytes:
        self._count("Unary")
        return request + b"|" + _meta(context, "x-a") + b"|" + _meta(context, "authorization")

    def server_stream(self, request: bytes, context: Any) -> Iterator[bytes]:
        self._count("ServerStream")
        for n in range(3):
            yield request + b"%d" % n

    def client_stream(self, requests: Iterator[bytes], context: Any) -> bytes:
        self._count("ClientStream")
        return b"+".join(requests)

    def bidi(self, requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        self._count("Bidi")
        for message in requests:
            yield message.upper()

    def flaky(self, request: bytes, context: Any) -> bytes:
        if self._count("Flaky") <= self.flaky_failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
        return b"at last"

    def handlers(self) -> Any:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
            "Flaky": grpc.unary_unary_rpc_method_handler(self.flaky)})


@pytest.fixture(scope="module")
def grpcio_server() -> Iterator[tuple[str, Service]]:
    service = Service()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers([service.handlers()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", service
    finally:
        server.stop(None)


@contextlib.asynccontextmanager
async def inner_channel(client: str, target: str) -> AsyncIterator[Any]:
    if client == "fastnet":
        async with fastnet.grpc.AsyncChannel(target) as channel:
            yield channel
    else:
        async with grpc.aio.insecure_channel(target) as channel:
            yield channel


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, GUARD))


KINDS = {  # name -> (channel method, request, response after the chain's changes, in, out)
    "Unary": ("unary_unary", b"hi", b"hi<a><b><c>|1|-<c><b><a>", 1, 1),
    "ServerStream": ("unary_stream", b"s", [b"s<a><b><c>%d<c><b><a>" % n for n in range(3)], 1, 3),
    "ClientStream": ("stream_unary", [b"x", b"y"], b"x<a><b><c>+y<a><b><c><c><b><a>", 2, 1),
    "Bidi": ("stream_stream", [b"p", b"q"], [b"P<A><B><C><c><b><a>", b"Q<A><B><C><c><b><a>"], 2, 2),
}


async def _call(channel: Any, name: str) -> Any:
    kind, request, _, _, _ = KINDS[name]
    rpc = getattr(channel, kind)(f"/{SERVICE}/{name}")
    metadata = [("x-trace", "t-" + name)]
    if kind in ("stream_unary", "stream_stream"):
        request = iter(request)
    call = rpc(request, metadata=metadata, timeout=GUARD)
    if kind in ("unary_unary", "stream_unary"):
        return await call
    return [m async for m in call]


@pytest.mark.parametrize("client", ["fastnet", "grpc.aio"])
@pytest.mark.parametrize("asynchronous", [False, True], ids=["plain", "async"])
def test_every_kind_through_three_interceptors(grpcio_server, asynchronous, client):
    target, _ = grpcio_server
    seen: list[tuple[Any, ...]] = []
    middle = AsyncRecorder("b", seen) if asynchronous else Recorder("b", seen)
    chain = Chain([Recorder("a", seen), middle, Recorder("c", seen)])

    async def main() -> None:
        async with inner_channel(client, target) as inner:
            channel = intercept_channel(inner, chain, target=target)
            assert isinstance(channel, InterceptedAsyncChannel)
            for name, (kind, _, expected, messages_in, messages_out) in sorted(KINDS.items()):
                seen.clear()
                assert await _call(channel, name) == expected, name
                call_kind = {"unary_unary": "unary", "unary_stream": "server_stream",
                             "stream_unary": "client_stream", "stream_stream": "bidi"}[kind]
                assert seen[:3] == [(n, "before", f"/{SERVICE}/{name}", call_kind, "t-" + name)
                                    for n in "abc"], name
                assert [s[:5] for s in seen[-3:]] == [
                    (n, "after", "OK", messages_in, messages_out) for n in "cba"], name
                steps = [s[1] for s in seen[3:-3]]
                assert steps.count("request") == 3 * messages_in, name
                assert steps.count("response") == 3 * messages_out, name
                # each response passed c, b, a in that order
                responses = [s[0] for s in seen if s[1] == "response"]
                assert responses == list("cba") * messages_out, name
    run(main())


def test_added_metadata_reaches_the_server_and_the_log_sees_every_call(grpcio_server):
    target, service = grpcio_server
    lines: list[str] = []
    chain = Chain([LoggingInterceptor("json", sink=lines.append),
                   AddMetadata({"authorization": "Bearer s3cret"})])

    async def main() -> bytes:
        async with fastnet.grpc.AsyncChannel(target) as inner:
            channel = intercept_channel(inner, chain, target=target)
            return await channel.unary_unary(f"/{SERVICE}/Unary")(b"m", timeout=GUARD)
    assert run(main()) == b"m|-|Bearer s3cret"
    (record,) = (json.loads(line) for line in lines)
    assert record["method"] == f"/{SERVICE}/Unary" and record["status"] == "OK"
    assert record["peer"] == target and record["messages_out"] == 1


def test_retry_of_unavailable(grpcio_server):
    target, service = grpcio_server
    lines: list[str] = []
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main(attempts: int) -> bytes:
        service.calls["Flaky"] = 0
        async with fastnet.grpc.AsyncChannel(target) as inner:
            channel = intercept_channel(
                inner, Chain([LoggingInterceptor("json", sink=lines.append)]),
                retry=retry_on({Status.UNAVAILABLE}, attempts=attempts, backoff=0.1),
                target=target, sleep=sleep)
            return await channel.unary_unary(f"/{SERVICE}/Flaky")(b"", timeout=GUARD)
    assert run(main(3)) == b"at last"
    assert waits == [pytest.approx(0.1), pytest.approx(0.2)]
    assert service.calls["Flaky"] == 3
    assert [json.loads(line)["status"] for line in lines] == ["UNAVAILABLE", "UNAVAILABLE", "OK"]
    lines.clear()
    with pytest.raises(fastnet.grpc.RpcError) as info:  # two attempts are not enough
        run(main(2))
    assert status_code(info.value.code()) == StatusCode.UNAVAILABLE
    assert service.calls["Flaky"] == 2
    assert [json.loads(line)["status"] for line in lines] == ["UNAVAILABLE", "UNAVAILABLE"]


class Refuse(Interceptor):
    def before(self, call):
        if call.method.endswith("/Unary"):
            raise Abort(Status.PERMISSION_DENIED, "not from this client")


class CutStream(Interceptor):
    """Lets two responses through, then refuses the stream."""

    def on_response(self, call, message):
        if call.messages_out >= 2:
            raise Abort(Status.RESOURCE_EXHAUSTED, "enough")
        return message


@pytest.mark.parametrize("client", ["fastnet", "grpc.aio"])
def test_an_interceptor_that_aborts(grpcio_server, client):
    target, service = grpcio_server
    seen: list[tuple[Any, ...]] = []
    chain = Chain([Recorder("a", seen), Refuse(), CutStream()])

    async def main() -> None:
        async with inner_channel(client, target) as inner:
            channel = intercept_channel(inner, chain, target=target)
            before = service.calls.get("Unary", 0)
            with pytest.raises(Abort) as info:
                await channel.unary_unary(f"/{SERVICE}/Unary")(b"x", timeout=GUARD)
            assert info.value.status == Status.PERMISSION_DENIED
            assert service.calls.get("Unary", 0) == before  # never sent
            assert seen[-1][:5] == ("a", "after", "PERMISSION_DENIED", 0, 0)
            got = []
            with pytest.raises(Abort) as info:
                async for message in channel.unary_stream(f"/{SERVICE}/ServerStream")(
                        b"s", timeout=GUARD):
                    got.append(message)
            assert info.value.status == Status.RESOURCE_EXHAUSTED
            assert got == [b"s<a>0<a>", b"s<a>1<a>"]
            assert seen[-1][:5] == ("a", "after", "RESOURCE_EXHAUSTED", 1, 2)
    run(main())


def test_write_and_read_through_the_chain(grpcio_server):
    target, _ = grpcio_server
    seen: list[tuple[Any, ...]] = []

    async def main() -> list[bytes]:
        async with fastnet.grpc.AsyncChannel(target) as inner:
            channel = intercept_channel(inner, Chain([Recorder("a", seen)]), target=target)
            call = channel.stream_stream(f"/{SERVICE}/Bidi")(timeout=GUARD)
            got = []
            for message in (b"u", b"v"):
                await call.write(message)
                got.append(await call.read())
            await call.done_writing()
            assert await call.read() is fastnet.grpc.client.EOF
            assert await call.code() == StatusCode.OK
            return got
    assert run(main()) == [b"U<A><a>", b"V<A><a>"]
    assert seen[-1][:5] == ("a", "after", "OK", 2, 2)


def test_a_stub_from_a_fastnet_service_through_the_chain():
    """channel.stub(service) of an intercepted asyncio channel: fastnet.proto
    messages through the chain to grpcio's generated servicer."""
    from fastnet.grpc.service import load_bundled
    from grpc_helpers import pb2
    T = pb2()
    OM = load_bundled("src/proto/grpc/testing/test.proto").grpc.testing

    class Servicer(T.test_grpc.TestServiceServicer):
        def UnaryCall(self, request, context):
            user = dict(context.invocation_metadata()).get("x-user", "-")
            return T.messages.SimpleResponse(
                payload=T.messages.Payload(body=b"a" * request.response_size), username=user)

        def StreamingOutputCall(self, request, context):
            for param in request.response_parameters:
                yield T.messages.StreamingOutputCallResponse(
                    payload=T.messages.Payload(body=b"b" * param.size))

    server = grpc.server(futures.ThreadPoolExecutor(2))
    T.test_grpc.add_TestServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    lines: list[str] = []

    async def main() -> tuple[Any, list[int]]:
        async with fastnet.grpc.AsyncChannel(f"127.0.0.1:{port}") as inner:
            channel = intercept_channel(inner, Chain([LoggingInterceptor("json", sink=lines.append),
                                                      AddMetadata({"x-user": "ann"})]))
            stub = channel.stub(OM.TestService)
            reply = await stub.UnaryCall(OM.SimpleRequest(response_size=3), timeout=GUARD)
            sizes = [len(r.payload.body) async for r in stub.StreamingOutputCall(
                OM.StreamingOutputCallRequest(response_parameters=[
                    OM.ResponseParameters(size=n) for n in (1, 2)]), timeout=GUARD)]
            return reply, sizes
    try:
        reply, sizes = run(main())
    finally:
        server.stop(None)
    assert isinstance(reply, OM.SimpleResponse) and reply.payload.body == b"aaa"
    assert reply.username == "ann" and sizes == [1, 2]
    assert [(r["method"], r["messages_out"]) for r in map(json.loads, lines)] == [
        ("/grpc.testing.TestService/UnaryCall", 1),
        ("/grpc.testing.TestService/StreamingOutputCall", 2)]
