"""fastnet.grpc's clients (Channel, AsyncChannel) against grpcio's server:
the four kinds, deadlines, metadata, cancellation, compression, every
status code, through grpcio-generated stubs and through stubs from
fastnet.grpc.load (fastnet.proto messages)."""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent import futures

import grpc
import pytest

import fastnet.grpc
from fastnet.grpc.service import load_bundled
from grpc_helpers import pb2
from helpers import GUARD, wait_for

T = pb2()
M = T.messages
OURS = load_bundled("src/proto/grpc/testing/test.proto")
OM = OURS.grpc.testing


class Servicer(T.test_grpc.TestServiceServicer):
    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def EmptyCall(self, request, context):
        return T.empty.Empty()

    def UnaryCall(self, request, context):
        md = dict(context.invocation_metadata())
        if "x-grpc-test-echo-initial" in md:
            context.send_initial_metadata([("x-grpc-test-echo-initial",
                                            md["x-grpc-test-echo-initial"])])
        if "x-grpc-test-echo-trailing-bin" in md:
            context.set_trailing_metadata([("x-grpc-test-echo-trailing-bin",
                                            md["x-grpc-test-echo-trailing-bin"])])
        if "x-sleep" in md:
            if not context.add_callback(self.cancelled.set):
                self.cancelled.set()
            time.sleep(float(md["x-sleep"]))
        if request.response_status.code:
            context.abort(grpc.StatusCode(next(c for c in grpc.StatusCode
                                               if c.value[0] == request.response_status.code)),
                          request.response_status.message)
        return M.SimpleResponse(payload=M.Payload(body=b"a" * request.response_size),
                                username=f"remaining={context.time_remaining()}")

    def StreamingOutputCall(self, request, context):
        for param in request.response_parameters:
            yield M.StreamingOutputCallResponse(payload=M.Payload(body=b"a" * param.size))

    def StreamingInputCall(self, request_iterator, context):
        return M.StreamingInputCallResponse(
            aggregated_payload_size=sum(len(r.payload.body) for r in request_iterator))

    def FullDuplexCall(self, request_iterator, context):
        for request in request_iterator:
            for param in request.response_parameters:
                yield M.StreamingOutputCallResponse(payload=M.Payload(body=b"b" * param.size))


@pytest.fixture(scope="module")
def grpcio_server():
    servicer = Servicer()
    server = grpc.server(futures.ThreadPoolExecutor(8))
    T.test_grpc.add_TestServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, servicer
    server.stop(None)


@pytest.fixture
def channel(grpcio_server):
    with fastnet.grpc.Channel(f"127.0.0.1:{grpcio_server[0]}") as ch:
        yield ch


def test_grpcio_stub_on_our_channel(channel):
    stub = T.test_grpc.TestServiceStub(channel)
    assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
    assert len(stub.UnaryCall(M.SimpleRequest(response_size=314159), timeout=GUARD)
               .payload.body) == 314159
    sizes = [31415, 9, 2653, 58979]
    out = stub.StreamingOutputCall(M.StreamingOutputCallRequest(
        response_parameters=[M.ResponseParameters(size=s) for s in sizes]), timeout=GUARD)
    assert [len(r.payload.body) for r in out] == sizes
    r = stub.StreamingInputCall(iter(M.StreamingInputCallRequest(payload=M.Payload(body=b"x" * s))
                                     for s in sizes), timeout=GUARD)
    assert r.aggregated_payload_size == sum(sizes)
    out = stub.FullDuplexCall(iter(M.StreamingOutputCallRequest(
        response_parameters=[M.ResponseParameters(size=s)]) for s in sizes), timeout=GUARD)
    assert [len(r.payload.body) for r in out] == sizes


def test_our_stub_with_fastnet_messages(channel):
    stub = channel.stub(OM.TestService)
    r = stub.UnaryCall(OM.SimpleRequest(response_size=10), timeout=GUARD)
    assert r.payload.body == b"a" * 10 and isinstance(r, OM.SimpleResponse)
    out = stub.FullDuplexCall(iter([OM.StreamingOutputCallRequest(
        response_parameters=[OM.ResponseParameters(size=3)])]), timeout=GUARD)
    assert [r.payload.body for r in out] == [b"bbb"]


def test_metadata_and_deadline_seen_by_grpcio(channel):
    stub = channel.stub(OM.TestService)
    r, call = stub.UnaryCall.with_call(
        OM.SimpleRequest(), timeout=30,
        metadata=[("x-grpc-test-echo-initial", "v"), ("x-grpc-test-echo-trailing-bin", b"\0\1")])
    assert ("x-grpc-test-echo-initial", "v") in call.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\0\1") in call.trailing_metadata()
    assert call.code() == fastnet.grpc.StatusCode.OK
    assert 0 < float(r.username.split("=")[1]) <= 30


@pytest.mark.parametrize("code", [c for c in fastnet.grpc.StatusCode if c != 0])
def test_every_status_code(channel, code):
    stub = channel.stub(OM.TestService)
    details = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
    with pytest.raises(fastnet.grpc.RpcError) as e:
        stub.UnaryCall(OM.SimpleRequest(response_status=OM.EchoStatus(code=code,
                                                                      message=details)),
                       timeout=GUARD)
    assert e.value.code() == code and e.value.details() == details


def test_deadline_exceeded(channel):
    stub = channel.stub(OM.TestService)
    start = time.monotonic()
    with pytest.raises(fastnet.grpc.RpcError) as e:
        stub.UnaryCall(OM.SimpleRequest(), metadata=[("x-sleep", "3")], timeout=0.2)
    assert e.value.code() == fastnet.grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 3


def test_unimplemented(channel):
    with pytest.raises(fastnet.grpc.RpcError) as e:
        channel.stub(OM.UnimplementedService).UnimplementedCall(OM.Empty(), timeout=GUARD)
    assert e.value.code() == fastnet.grpc.StatusCode.UNIMPLEMENTED


def test_cancel_reaches_grpcio(grpcio_server, channel):
    _, servicer = grpcio_server
    servicer.cancelled.clear()
    future = channel.stub(OM.TestService).UnaryCall.future(
        OM.SimpleRequest(), metadata=[("x-sleep", "2")], timeout=GUARD)
    # grpcio runs callbacks when the call terminates: at the cancel
    time.sleep(0.2)
    assert future.cancel()
    assert servicer.cancelled.wait(GUARD)
    assert future.code() == fastnet.grpc.StatusCode.CANCELLED


@pytest.mark.parametrize("compression", ["gzip", "deflate"])
def test_compressed_requests(grpcio_server, compression):
    with fastnet.grpc.Channel(f"127.0.0.1:{grpcio_server[0]}", compression=compression) as ch:
        r = ch.stub(OM.TestService).UnaryCall(
            OM.SimpleRequest(response_size=1000, payload=OM.Payload(body=b"z" * 100000)),
            timeout=GUARD)
    assert r.payload.body == b"a" * 1000


def test_asyncio_channel(grpcio_server):
    async def main():
        async with fastnet.grpc.AsyncChannel(f"127.0.0.1:{grpcio_server[0]}") as ch:
            stub = ch.stub(OM.TestService)
            r = await stub.UnaryCall(OM.SimpleRequest(response_size=5), timeout=GUARD)
            assert r.payload.body == b"aaaaa"
            got = [len(m.payload.body) async for m in stub.StreamingOutputCall(
                OM.StreamingOutputCallRequest(response_parameters=[
                    OM.ResponseParameters(size=s) for s in (1, 2, 3)]), timeout=GUARD)]
            assert got == [1, 2, 3]

            async def reqs():
                for s in (4, 5):
                    yield OM.StreamingInputCallRequest(payload=OM.Payload(body=b"x" * s))
            r = await stub.StreamingInputCall(reqs(), timeout=GUARD)
            assert r.aggregated_payload_size == 9
            call = stub.FullDuplexCall(timeout=GUARD)
            for s in (6, 7):                     # ping-pong through write/read
                await call.write(OM.StreamingOutputCallRequest(
                    response_parameters=[OM.ResponseParameters(size=s)]))
                assert len((await call.read()).payload.body) == s
            await call.done_writing()
            assert await call.read() is fastnet.grpc.client.EOF
            assert await call.code() == fastnet.grpc.StatusCode.OK
            with pytest.raises(fastnet.grpc.RpcError) as e:
                await stub.UnaryCall(OM.SimpleRequest(), metadata=[("x-sleep", "3")],
                                     timeout=0.2)
            assert e.value.code() == fastnet.grpc.StatusCode.DEADLINE_EXCEEDED
            # many calls at once on one connection
            rs = await asyncio.gather(*[stub.UnaryCall(OM.SimpleRequest(response_size=i),
                                                       timeout=GUARD) for i in range(50)])
            assert [len(r.payload.body) for r in rs] == list(range(50))
    asyncio.run(main())


class ClientHook:
    def __init__(self, log):
        self.log = log

    def call_started(self, call):
        self.log.append(("start", call.method))
        if call.method.endswith("/EmptyCall"):
            raise fastnet.grpc.Abort(fastnet.grpc.StatusCode.PERMISSION_DENIED, "local policy")
        call.metadata.append(("x-grpc-test-echo-initial", "from-hook"))

    def message_sending(self, call, message):
        self.log.append(("out", message.response_size))
        return type(message)(response_size=message.response_size + 1)

    def message_received(self, call, message):
        self.log.append(("in", len(message.payload.body)))
        return message

    def call_ended(self, call):
        self.log.append(("end", call.code().name, call.messages_out, call.messages_in))


def test_client_hooks(grpcio_server):
    log: list = []
    with fastnet.grpc.Channel(f"127.0.0.1:{grpcio_server[0]}", hooks=[ClientHook(log)]) as ch:
        stub = ch.stub(OM.TestService)
        r, call = stub.UnaryCall.with_call(OM.SimpleRequest(response_size=4), timeout=GUARD)
        assert len(r.payload.body) == 5                         # the hook changed the request
        assert ("x-grpc-test-echo-initial", "from-hook") in call.initial_metadata()
        with pytest.raises(fastnet.grpc.RpcError) as e:
            stub.EmptyCall(OM.Empty(), timeout=GUARD)
        assert e.value.code() == fastnet.grpc.StatusCode.PERMISSION_DENIED
    assert log == [("start", "/grpc.testing.TestService/UnaryCall"), ("out", 4), ("in", 5),
                   ("end", "OK", 1, 1), ("start", "/grpc.testing.TestService/EmptyCall"),
                   ("end", "PERMISSION_DENIED", 0, 0)]


# -- keep-alive against grpcio's server and its ping policy -----------------------

def grpcio_with(options):
    server = grpc.server(futures.ThreadPoolExecutor(4), options=options)
    T.test_grpc.add_TestServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_keepalive_within_grpcio_servers_policy():
    """grpcio's server permitting pings without calls every 10 ms answers
    our PINGs every 50 ms and never complains (keepalive_time unchanged)."""
    server, port = grpcio_with([("grpc.keepalive_permit_without_calls", 1),
                                ("grpc.http2.min_ping_interval_without_data_ms", 10)])
    try:
        with fastnet.grpc.Channel(f"127.0.0.1:{port}", options=[
                ("grpc.keepalive_time_ms", 50), ("grpc.keepalive_permit_without_calls", 1)]) as ch:
            stub = T.test_grpc.TestServiceStub(ch)
            assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
            wait_for(lambda: ch.keepalive_pings_acked >= 5, "five answered pings")
            assert ch.keepalive_time == 0.05
            assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
    finally:
        server.stop(None)


def test_too_many_pings_from_grpcio_doubles_keepalive_time():
    """grpcio's default policy (5 min, 2 hours with no call, 2 strikes)
    answers our PINGs every 50 ms with GOAWAY ENHANCE_YOUR_CALM
    too_many_pings: keepalive_time doubles and the next call reconnects."""
    server, port = grpcio_with([])
    try:
        with fastnet.grpc.Channel(f"127.0.0.1:{port}", keepalive_time=0.05,
                                  keepalive_permit_without_calls=True) as ch:
            stub = T.test_grpc.TestServiceStub(ch)
            assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
            wait_for(lambda: ch.keepalive_time >= 0.1, "keepalive_time doubled")
            assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
    finally:
        server.stop(None)


def test_an_unanswered_keepalive_ping_gives_the_connection_up():
    """A peer that accepts and never answers: the call ends UNAVAILABLE
    once a PING went unanswered for keepalive_timeout, long before its
    deadline (without keep-alive it would wait for the deadline)."""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        with fastnet.grpc.Channel(f"127.0.0.1:{port}", keepalive_time=0.05, keepalive_timeout=0.2,
                                  keepalive_permit_without_calls=True) as ch:
            stub = T.test_grpc.TestServiceStub(ch)
            with pytest.raises(fastnet.grpc.RpcError) as e:
                stub.EmptyCall(T.empty.Empty(), timeout=10 * GUARD)
            assert e.value.code() == fastnet.grpc.StatusCode.UNAVAILABLE
    finally:
        listener.close()
