"""fastnet.grpc.Server against grpcio's client: the four kinds, deadlines,
cancellation, metadata, compression, every status code, and bad input
from a raw HTTP/2 client (the h2 package), each answered with its status
while other calls are served. The servicer is grpcio-generated code
(grpc_tools.protoc at test time) registered unchanged."""
from __future__ import annotations

import socket
import threading
import time

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

import fastnet.grpc
from fastnet.grpc import protocol as p
from grpc_helpers import pb2, serving_grpc
from helpers import GUARD, require_engine
from fastnet import native

DEFAULT_ENGINE = "c" if native.backend == "c" else "python"

T = pb2()
M = T.messages


def payload(n: int) -> "M.Payload":
    return M.Payload(body=b"a" * n)


class Servicer(T.test_grpc.TestServiceServicer):
    """grpcio-generated base class, unchanged API."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.seen_remaining: list = []

    def EmptyCall(self, request, context):
        return T.empty.Empty()

    def UnaryCall(self, request, context):
        self.seen_remaining.append(context.time_remaining())
        md = dict(context.invocation_metadata())
        if "x-grpc-test-echo-initial" in md:
            context.send_initial_metadata([("x-grpc-test-echo-initial",
                                            md["x-grpc-test-echo-initial"])])
        if "x-grpc-test-echo-trailing-bin" in md:
            context.set_trailing_metadata([("x-grpc-test-echo-trailing-bin",
                                            md["x-grpc-test-echo-trailing-bin"])])
        if "x-raise" in md:
            raise RuntimeError("secret detail that must not leak")
        if "x-sleep" in md:
            deadline = time.monotonic() + float(md["x-sleep"])
            while context.is_active() and context.time_remaining() != 0 \
                    and time.monotonic() < deadline:
                time.sleep(0.01)
            if not context.is_active():
                self.cancelled.set()
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        if request.response_status.code:
            context.abort(request.response_status.code, request.response_status.message)
        return M.SimpleResponse(payload=payload(request.response_size),
                                username=context.peer())

    def StreamingOutputCall(self, request, context):
        for param in request.response_parameters:
            yield M.StreamingOutputCallResponse(payload=payload(param.size))

    def StreamingInputCall(self, request_iterator, context):
        return M.StreamingInputCallResponse(
            aggregated_payload_size=sum(len(r.payload.body) for r in request_iterator))

    def FullDuplexCall(self, request_iterator, context):
        for request in request_iterator:
            if request.response_status.code:
                context.abort(request.response_status.code, request.response_status.message)
            for param in request.response_parameters:
                yield M.StreamingOutputCallResponse(payload=payload(param.size))


@pytest.fixture(scope="module", params=["c/engine-thread", "c/thread-pool",
                                        "python/engine-thread", "threaded/engine-thread"])
def served(request):
    engine, mode = request.param.split("/")
    require_engine(engine)
    servicer = Servicer()
    server = fastnet.grpc.Server(engine=engine, thread_pool=mode == "thread-pool")
    T.test_grpc.add_TestServiceServicer_to_server(servicer, server)
    with serving_grpc(server) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield T.test_grpc.TestServiceStub(channel), servicer, port, mode
        channel.close()


def test_unary(served):
    stub, _, port, _ = served
    assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
    r = stub.UnaryCall(M.SimpleRequest(response_size=314159, payload=payload(271828)),
                       timeout=GUARD)
    assert r.payload.body == b"a" * 314159
    assert r.username.startswith("ipv4:127.0.0.1:")


def test_server_streaming(served):
    stub = served[0]
    sizes = [31415, 9, 2653, 58979]
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(
        M.StreamingOutputCallRequest(response_parameters=[M.ResponseParameters(size=s)
                                                          for s in sizes]), timeout=GUARD)]
    assert got == sizes


def test_client_streaming(served):
    stub = served[0]
    sizes = [27182, 8, 1828, 45904]
    r = stub.StreamingInputCall(iter(M.StreamingInputCallRequest(payload=payload(s))
                                     for s in sizes), timeout=GUARD)
    assert r.aggregated_payload_size == sum(sizes)


def test_bidi_ping_pong(served):
    stub = served[0]
    import queue
    q: "queue.Queue" = queue.Queue()

    def requests():
        while True:
            item = q.get()
            if item is None:
                return
            yield item
    call = stub.FullDuplexCall(requests(), timeout=GUARD)
    for size in (31415, 9, 2653, 58979):
        q.put(M.StreamingOutputCallRequest(response_parameters=[M.ResponseParameters(size=size)]))
        assert len(next(call).payload.body) == size   # each answer before the next request
    q.put(None)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_empty_stream(served):
    assert list(served[0].FullDuplexCall(iter([]), timeout=GUARD)) == []


def test_metadata_both_ways(served):
    stub = served[0]
    r, call = stub.UnaryCall.with_call(
        M.SimpleRequest(response_size=1), timeout=GUARD,
        metadata=[("x-grpc-test-echo-initial", "test_initial_metadata_value"),
                  ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")])
    assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in call.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab") in call.trailing_metadata()


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK])
def test_every_status_code(served, code):
    stub = served[0]
    details = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
    with pytest.raises(grpc.RpcError) as e:
        stub.UnaryCall(M.SimpleRequest(response_status=M.EchoStatus(code=code.value[0],
                                                                    message=details)),
                       timeout=GUARD)
    assert e.value.code() == code
    assert e.value.details() == details


def test_handler_error_is_unknown_without_traceback(served):
    with pytest.raises(grpc.RpcError) as e:
        served[0].UnaryCall(M.SimpleRequest(), metadata=[("x-raise", "1")], timeout=GUARD)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert "secret" not in e.value.details() and "Traceback" not in e.value.details()
    assert served[0].EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()


def test_unimplemented_method_and_service(served):
    stub, _, port, _ = served
    with pytest.raises(grpc.RpcError) as e:
        stub.UnimplementedCall(T.empty.Empty(), timeout=GUARD)   # in the servicer base class
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        other = T.test_grpc.UnimplementedServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            other.UnimplementedCall(T.empty.Empty(), timeout=GUARD)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_deadline_seen_and_enforced(served):
    stub, servicer, _, mode = served
    stub.UnaryCall(M.SimpleRequest(), timeout=50)
    assert 0 < servicer.seen_remaining[-1] <= 51  # grpcio rounds its timeout up
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        stub.UnaryCall(M.SimpleRequest(), metadata=[("x-sleep", "5")], timeout=0.3)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 5


def test_deadline_on_server_stream(served):
    stub = served[0]
    # a bidi stream that is never finished by the client: the server ends it at the deadline
    import queue
    q: "queue.Queue" = queue.Queue()

    def requests():
        yield M.StreamingOutputCallRequest(response_parameters=[M.ResponseParameters(size=1)])
        q.get(timeout=GUARD)
    call = stub.FullDuplexCall(requests(), timeout=0.5)
    assert len(next(call).payload.body) == 1
    with pytest.raises(grpc.RpcError) as e:
        next(call)
    q.put(None)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_cancellation_reaches_the_handler():
    # a plain handler in the pool (on the engine thread it cannot see a reset while it runs)
    servicer = Servicer()
    server = fastnet.grpc.Server(engine=DEFAULT_ENGINE, thread_pool=2)
    T.test_grpc.add_TestServiceServicer_to_server(servicer, server)
    with serving_grpc(server) as port, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = T.test_grpc.TestServiceStub(channel)
        check_cancellation(stub, servicer)


def check_cancellation(stub, servicer):
    future = stub.UnaryCall.future(M.SimpleRequest(), metadata=[("x-sleep", "20")], timeout=GUARD)
    time.sleep(0.2)  # let the call start; the assertion below waits on an event, not a time
    future.cancel()
    assert servicer.cancelled.wait(GUARD)
    assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()


def test_cancel_after_first_response(served):
    stub = served[0]
    import queue
    q: "queue.Queue" = queue.Queue()

    def requests():
        yield M.StreamingOutputCallRequest(response_parameters=[M.ResponseParameters(size=31415)])
        q.get(timeout=GUARD)
    call = stub.FullDuplexCall(requests(), timeout=GUARD)
    assert len(next(call).payload.body) == 31415
    call.cancel()
    q.put(None)
    assert call.code() == grpc.StatusCode.CANCELLED
    assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_compression_both_ways(served, compression):
    stub = served[0]
    r = stub.UnaryCall(M.SimpleRequest(response_size=314159, payload=payload(271828),
                                       response_compressed=T.messages.BoolValue(value=True)),
                       compression=compression, timeout=GUARD)
    assert r.payload.body == b"a" * 314159


def test_message_over_the_limit(served):
    stub = served[0]
    with pytest.raises(grpc.RpcError) as e:
        stub.UnaryCall(M.SimpleRequest(payload=payload(5 * 1024 * 1024)), timeout=GUARD)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()


# -- a raw HTTP/2 client for what grpcio never sends ----------------------------

class RawClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def call(self, path: str, body: bytes, split: bool = False,
             **extra: bytes) -> tuple[dict, dict, bytes]:
        """One call; ``split``: the body goes only once the server has read
        the headers (a PING answered in between), so the request is not
        complete in one read and takes the stream path."""
        sid = self.conn.get_next_available_stream_id()
        headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
                   (b":authority", b"x"), (b"te", b"trailers"),
                   (b"content-type", b"application/grpc")]
        headers = [(k, extra.pop(k.decode().lstrip(":").replace("-", "_"), v))
                   for k, v in headers]
        headers += [(k.replace("_", "-").encode(), v) for k, v in extra.items()]
        self.conn.send_headers(sid, headers)
        self.frames = 0
        got: dict = {"resp": {}, "trailers": {}, "data": b"", "ended": False, "acked": False}
        if split:
            self.conn.ping(b"splitbdy")
            self.sock.sendall(self.conn.data_to_send())
            while not got["acked"] and not got["ended"]:
                self._read(sid, got)
        if not got["ended"]:  # (an early answer, UNIMPLEMENTED say, ended it already)
            self.conn.send_data(sid, body, end_stream=True)
            self.sock.sendall(self.conn.data_to_send())
        while not got["ended"]:
            self._read(sid, got)
        return got["resp"], got["trailers"], got["data"]

    def _read(self, sid: int, got: dict) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, "connection closed"
        for ev in self.conn.receive_data(chunk):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                got["resp"] = dict(ev.headers)
            elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                got["trailers"] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                got["data"] += ev.data
                self.frames += 1
                self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) \
                    and ev.stream_id == sid:
                got["ended"] = True
            elif isinstance(ev, h2.events.PingAckReceived):
                got["acked"] = True
        self.sock.sendall(self.conn.data_to_send())

    def close(self) -> None:
        self.sock.close()


EMPTY_CALL = "/grpc.testing.TestService/EmptyCall"


@pytest.fixture
def raw(served):
    client = RawClient(served[2])
    yield client
    client.close()


def status_of(resp: dict, trailers: dict) -> int:
    return int((trailers or resp)[b"grpc-status"])


def test_raw_client_sees_a_normal_call(raw):
    resp, trailers, data = raw.call(EMPTY_CALL, p.encode_message(b""))
    assert resp[b":status"] == b"200" and resp[b"content-type"] == b"application/grpc"
    assert trailers[b"grpc-status"] == b"0" and data == p.encode_message(b"")


@pytest.mark.parametrize("body,extra,status", [
    (b"\x00\x7f\xff\xff\xff", {}, fastnet.grpc.StatusCode.RESOURCE_EXHAUSTED),  # prefix alone
    (b"\x05\x00\x00\x00\x00", {}, fastnet.grpc.StatusCode.INTERNAL),            # bad flag
    (b"\x01\x00\x00\x00\x00", {}, fastnet.grpc.StatusCode.INTERNAL),            # compressed, no encoding
    (b"\x00\x00\x00", {}, fastnet.grpc.StatusCode.INTERNAL),                    # truncated
    (b"", {}, fastnet.grpc.StatusCode.INTERNAL),                                # no message
    (p.encode_message(b"") * 2, {}, fastnet.grpc.StatusCode.INTERNAL),          # two messages
    (p.encode_message(b""), {"grpc_encoding": b"snappy"}, fastnet.grpc.StatusCode.UNIMPLEMENTED),
    (p.encode_message(b""), {"grpc_timeout": b"0n"}, fastnet.grpc.StatusCode.DEADLINE_EXCEEDED),
    (p.encode_message(b""), {"grpc_timeout": b"soon"}, fastnet.grpc.StatusCode.INTERNAL),
    (p.encode_message(b"\xff"), {}, fastnet.grpc.StatusCode.INTERNAL),          # not protobuf
])
@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_bad_input_gets_its_status(raw, body, extra, status, split):
    resp, trailers, _ = raw.call(EMPTY_CALL, body, split, **dict(extra))
    assert resp[b":status"] == b"200"
    assert status_of(resp, trailers) == status
    if status == fastnet.grpc.StatusCode.UNIMPLEMENTED:
        assert b"gzip" in (trailers or resp)[b"grpc-accept-encoding"]
    # the same connection goes on serving
    resp, trailers, data = raw.call(EMPTY_CALL, p.encode_message(b""))
    assert status_of(resp, trailers) == 0


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_wrong_content_type_is_415(raw, split):
    resp, _, _ = raw.call(EMPTY_CALL, p.encode_message(b""), split,
                          content_type=b"application/json")
    assert resp[b":status"] == b"415"
    resp, trailers, _ = raw.call(EMPTY_CALL, p.encode_message(b""))
    assert status_of(resp, trailers) == 0


class TrailerServicer(T.test_grpc.TestServiceServicer):
    def UnaryCall(self, request, context):
        if request.response_size == 1:
            context.set_trailing_metadata([("Bad Key", "x")])   # not sendable
        else:
            context.set_trailing_metadata([("grpc-retry-pushback-ms", "250")])
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")


def test_trailing_metadata_pushback_and_refused():
    server = fastnet.grpc.Server(engine=DEFAULT_ENGINE)
    T.test_grpc.add_TestServiceServicer_to_server(TrailerServicer(), server)
    with serving_grpc(server) as port, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = T.test_grpc.TestServiceStub(channel)
        with pytest.raises(grpc.RpcError) as e:
            stub.UnaryCall(M.SimpleRequest(response_size=2), timeout=GUARD)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.RpcError) as e:
            stub.UnaryCall(M.SimpleRequest(response_size=1), timeout=GUARD)
        assert e.value.code() == grpc.StatusCode.INTERNAL
        assert e.value.details() == "invalid trailing metadata"


def test_pushback_reaches_fastnet_client():
    server = fastnet.grpc.Server(engine=DEFAULT_ENGINE)
    T.test_grpc.add_TestServiceServicer_to_server(TrailerServicer(), server)
    with serving_grpc(server) as port, fastnet.grpc.Channel(f"127.0.0.1:{port}") as channel:
        stub = T.test_grpc.TestServiceStub(channel)
        with pytest.raises(fastnet.grpc.RpcError) as e:
            stub.UnaryCall(M.SimpleRequest(response_size=2), timeout=GUARD)
        assert e.value.code() == fastnet.grpc.StatusCode.RESOURCE_EXHAUSTED
        assert ("grpc-retry-pushback-ms", "250") in e.value.trailing_metadata()


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_a_call_whole_or_split_gets_the_same_answer(raw, split):
    """The quick way (a request complete in one read, served inside it) and
    the stream path answer alike: headers, the message, OK."""
    request = M.SimpleRequest(response_size=7).SerializeToString()
    resp, trailers, data = raw.call("/grpc.testing.TestService/UnaryCall",
                                    p.encode_message(request), split)
    assert resp[b":status"] == b"200" and trailers[b"grpc-status"] == b"0"
    reply = M.SimpleResponse.FromString(p.MessageDecoder().feed(data)[0])
    assert reply.payload.body == b"a" * 7 and reply.username.startswith("ipv4:127.0.0.1:")


class PathServicer(T.test_grpc.TestServiceServicer):
    """Says whether each call had a stream (None: served whole inside its read)."""

    def __init__(self) -> None:
        self.streams: list = []

    def EmptyCall(self, request, context):
        self.streams.append(context.call.stream)
        return T.empty.Empty()

    async def UnaryCall(self, request, context):
        self.streams.append(context.call.stream)
        return M.SimpleResponse()


def test_a_plain_unary_call_is_served_within_its_read():
    require_engine(DEFAULT_ENGINE)
    servicer = PathServicer()
    server = fastnet.grpc.Server(engine=DEFAULT_ENGINE)
    T.test_grpc.add_TestServiceServicer_to_server(servicer, server)
    with serving_grpc(server) as port:
        client = RawClient(port)
        try:
            for _ in range(3):
                resp, trailers, data = client.call(EMPTY_CALL, p.encode_message(b""))
                assert trailers[b"grpc-status"] == b"0" and data == p.encode_message(b"")
            client.call("/grpc.testing.TestService/UnaryCall", p.encode_message(b""))
            client.call(EMPTY_CALL, p.encode_message(b""), split=True)
        finally:
            client.close()
    # whole plain unary calls have no stream; an async handler's and a split one's have
    assert [s is None for s in servicer.streams] == [True, True, True, False, False]


def test_a_plain_server_stream_is_framed_together(served, raw):
    """A plain generator's small messages share DATA frames (not one frame
    each) on the engine's thread; in the pool each goes as it comes."""
    request = M.StreamingOutputCallRequest(
        response_parameters=[M.ResponseParameters(size=3)] * 200).SerializeToString()
    resp, trailers, data = raw.call("/grpc.testing.TestService/StreamingOutputCall",
                                    p.encode_message(request))
    messages = p.MessageDecoder().feed(data)
    assert trailers[b"grpc-status"] == b"0" and len(messages) == 200
    assert all(M.StreamingOutputCallResponse.FromString(m).payload.body == b"aaa"
               for m in messages)
    if served[3] == "engine-thread":
        assert raw.frames <= 20, raw.frames
