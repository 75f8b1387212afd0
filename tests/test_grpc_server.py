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
from helpers import GUARD, require_engine, wait_for
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


def test_a_long_server_stream_through_grpcios_flow_control(served):
    """20,000 messages of varied sizes (coalesced into 64 KiB sends on the
    engine's thread, each waiting for grpcio's window) arrive whole and in
    order, and a call on the same channel is served while it is open."""
    stub = served[0]
    sizes = [(i * 7919) % 300 for i in range(20_000)]
    responses = stub.StreamingOutputCall(
        M.StreamingOutputCallRequest(response_parameters=[M.ResponseParameters(size=s)
                                                          for s in sizes]), timeout=GUARD)
    got = [len(next(responses).payload.body) for _ in range(10)]
    assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
    got += [len(r.payload.body) for r in responses]
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


class ContextServicer(T.test_grpc.TestServiceServicer):
    """UnaryCall uses its context in one way or another, by response_size."""

    def UnaryCall(self, request, context):
        n = request.response_size
        if n == 1:
            context.set_code(grpc.StatusCode.NOT_FOUND)
            context.set_details("no such thing")
            return M.SimpleResponse()
        if n == 2:
            context.set_trailing_metadata([("x-after", "yes")])
            return M.SimpleResponse(username=context.peer().rsplit(":", 1)[0])
        if n == 3:
            raise RuntimeError("boom")
        if n == 4:
            return None
        if n == 5:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")
        if n == 6:
            return "not a message"
        return M.SimpleResponse(payload=payload(n))


class _NoOpHook:
    def call_started(self, call):
        pass


def test_the_short_way_answers_as_the_general_way(monkeypatch):
    """A whole unary call on a server without hooks takes the short way
    (no ServerCall unless the handler asks its context for something); a
    server with a hook that does nothing serves the same calls the general
    way. Both give the same answers: status, message, data, trailing
    metadata, for a handler that only returns, sets a code, sets trailing
    metadata, raises, returns None, aborts, returns what cannot be
    serialized, and for a message that is not one (a bad prefix)."""
    require_engine(DEFAULT_ENGINE)
    made: list[str] = []
    init = fastnet.grpc.ServerCall.__init__

    def counted(self, server, stream, headers=None, path="", peer=("", 0)):
        made.append(path)
        init(self, server, stream, headers, path, peer)
    monkeypatch.setattr(fastnet.grpc.ServerCall, "__init__", counted)
    cases = [p.encode_message(M.SimpleRequest(response_size=n).SerializeToString())
             for n in (0, 1, 2, 3, 4, 5, 6, 9)] + [b"\x00\x00\x00\x00\x09ab"]
    answers: dict[str, list] = {}
    calls: dict[str, list] = {}
    for way, hooks in (("short", []), ("general", [_NoOpHook()])):
        server = fastnet.grpc.Server(engine=DEFAULT_ENGINE, hooks=hooks)
        T.test_grpc.add_TestServiceServicer_to_server(ContextServicer(), server)
        answers[way], calls[way] = [], []
        with serving_grpc(server) as port:
            client = RawClient(port)
            try:
                for body in cases:
                    del made[:]
                    resp, trailers, data = client.call("/grpc.testing.TestService/UnaryCall", body)
                    end = trailers or resp
                    answers[way].append((resp.get(b":status"), end.get(b"grpc-status"),
                                         end.get(b"grpc-message"), end.get(b"x-after"), data))
                    calls[way].append(len(made))
            finally:
                client.close()
    assert answers["short"] == answers["general"]
    statuses = [int(a[1]) for a in answers["short"]]
    assert statuses == [0, 5, 0, 2, 0, 7, 2, 0, 13], statuses
    assert M.SimpleResponse.FromString(
        p.MessageDecoder().feed(answers["short"][7][4])[0]).payload.body == b"a" * 9
    # The short way made a ServerCall only for handlers that asked their
    # context (or failed) and for the bad prefix; the general way for all.
    assert calls["short"] == [0, 1, 1, 1, 1, 1, 1, 0, 1], calls["short"]
    assert calls["general"] == [1] * len(cases)


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


# -- over the connection limit: RESOURCE_EXHAUSTED ------------------------------

@pytest.mark.parametrize("backlog", [0, 1], ids=["busy", "queue-timeout"])
def test_calls_over_the_connection_limit_are_resource_exhausted(backlog):
    """A grpcio client's calls on a connection over max_connections end
    RESOURCE_EXHAUSTED (trailers-only, status 8) naming the limit, while
    the connection within it is served; once that one goes, a new call
    on the refused channel (it reconnects after our GOAWAY) is served."""
    require_engine(DEFAULT_ENGINE)
    server = fastnet.grpc.Server(engine=DEFAULT_ENGINE, max_connections=1, backlog=backlog,
                                 queue_timeout=0.2)
    T.test_grpc.add_TestServiceServicer_to_server(Servicer(), server)
    with serving_grpc(server) as port:
        own = [("grpc.use_local_subchannel_pool", 1)]  # a connection each, not one shared
        first = grpc.insecure_channel(f"127.0.0.1:{port}", options=own)
        second = grpc.insecure_channel(f"127.0.0.1:{port}", options=own)
        try:
            stub1 = T.test_grpc.TestServiceStub(first)
            stub2 = T.test_grpc.TestServiceStub(second)
            assert stub1.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
            with pytest.raises(grpc.RpcError) as e:
                stub2.EmptyCall(T.empty.Empty(), timeout=GUARD)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            expected = "max_connections=1" if backlog == 0 else "queue_timeout"
            assert expected in e.value.details()
            assert stub1.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
            assert server.stats()["rejected_" + ("busy" if backlog == 0 else "queue_timeout")] >= 1
            first.close()
            deadline = time.monotonic() + GUARD
            while True:  # the server hears of the first connection's close soon
                try:
                    assert stub2.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
                    break
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    assert time.monotonic() < deadline, "the slot never came back"
        finally:
            first.close()
            second.close()
    assert not server._refused  # every refused connection was let go


# -- keep-alive: gRPC's ping policy ---------------------------------------------

def keepalive_server(**policy) -> fastnet.grpc.Server:
    require_engine(DEFAULT_ENGINE)
    server = fastnet.grpc.Server(engine=DEFAULT_ENGINE, **policy)
    T.test_grpc.add_TestServiceServicer_to_server(Servicer(), server)
    return server


def test_a_grpcio_client_pinging_too_often_gets_too_many_pings():
    """grpcio's defaults on our side (5 min between pings, 2 hours with no
    call, 2 strikes): a grpcio client pinging every 50 ms gets GOAWAY
    ENHANCE_YOUR_CALM on its 4th PING."""
    server = keepalive_server()
    with serving_grpc(server) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
            ("grpc.keepalive_time_ms", 50), ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0), ("grpc.use_local_subchannel_pool", 1)])
        try:
            stub = T.test_grpc.TestServiceStub(channel)
            assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
            wait_for(lambda: server.stats()["grpc_too_many_pings"] >= 1, "too_many_pings")
            assert server.stats()["grpc_pings"] >= 4
        finally:
            channel.close()


def test_a_grpcio_client_within_the_policy_is_never_cut_off():
    """Our server permitting pings without calls every 20 ms: a grpcio
    client pinging every 100 ms keeps its connection (and serves calls)."""
    server = keepalive_server(options=[("grpc.keepalive_permit_without_calls", 1),
                                       ("grpc.http2.min_ping_interval_without_data_ms", 20)])
    with serving_grpc(server) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
            ("grpc.keepalive_time_ms", 100), ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0), ("grpc.use_local_subchannel_pool", 1)])
        try:
            stub = T.test_grpc.TestServiceStub(channel)
            assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
            wait_for(lambda: server.stats()["grpc_pings"] >= 5, "five pings")
            assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
            assert server.stats()["grpc_too_many_pings"] == 0
            assert server.stats()["accepted"] == 1  # the same connection throughout
        finally:
            channel.close()


def test_ping_strikes_are_counted_and_forgiven_by_a_call():
    """The policy frame by frame (raw HTTP/2): the first PING is free, the
    next two are strikes, a call forgives them, and the third strike after
    it is answered GOAWAY ENHANCE_YOUR_CALM with debug data too_many_pings."""
    server = keepalive_server()
    with serving_grpc(server) as port:
        client = RawClient(port)
        try:
            def ping() -> list:
                client.conn.ping(b"12345678")
                client.sock.sendall(client.conn.data_to_send())
                seen: list = []
                while not any(isinstance(ev, (h2.events.PingAckReceived,
                                              h2.events.ConnectionTerminated)) for ev in seen):
                    chunk = client.sock.recv(65536)
                    if not chunk:
                        break
                    seen += client.conn.receive_data(chunk)
                return seen
            for _ in range(3):  # free, strike 1, strike 2
                assert not any(isinstance(ev, h2.events.ConnectionTerminated) for ev in ping())
            client.call(EMPTY_CALL, p.encode_message(b""))  # forgives
            for _ in range(3):  # free again, strike 1, strike 2
                assert not any(isinstance(ev, h2.events.ConnectionTerminated) for ev in ping())
            ended = [ev for ev in ping() if isinstance(ev, h2.events.ConnectionTerminated)]
            assert ended and ended[0].error_code == 11  # ENHANCE_YOUR_CALM
            assert ended[0].additional_data == b"too_many_pings"
        finally:
            client.close()
    assert server.stats()["grpc_too_many_pings"] == 1


# -- keep-alive: the server's own PINGs -----------------------------------------

def test_the_server_keepalive_defaults_are_grpcios():
    server = fastnet.grpc.Server(engine=DEFAULT_ENGINE)
    assert (server.keepalive_interval, server.keepalive_timeout) == (7200.0, 20.0)
    server = fastnet.grpc.Server(engine=DEFAULT_ENGINE, options=[
        ("grpc.keepalive_time_ms", 1500), ("grpc.keepalive_timeout_ms", 500)])
    assert (server.keepalive_interval, server.keepalive_timeout) == (1.5, 0.5)
    assert fastnet.grpc.Server(engine=DEFAULT_ENGINE, keepalive_time=None).keepalive_interval is None


def test_the_server_pings_a_silent_grpcio_client_and_keeps_it():
    """keepalive_time 200 ms (grpcio's option name): a grpcio client that
    made a call and fell silent is PINGed, answers, keeps its connection,
    and its next call is served on it."""
    server = keepalive_server(options=[("grpc.keepalive_time_ms", 200)])
    with serving_grpc(server) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}",
                                        options=[("grpc.use_local_subchannel_pool", 1)])
        try:
            stub = T.test_grpc.TestServiceStub(channel)
            assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
            wait_for(lambda: server.stats()["grpc_keepalive_acks"] >= 2, "two answered PINGs")
            assert stub.EmptyCall(T.empty.Empty(), timeout=GUARD) == T.empty.Empty()
            stats = server.stats()
            assert stats["accepted"] == 1 and stats["grpc_keepalive_timeouts"] == 0
            assert stats["grpc_keepalive_pings"] >= stats["grpc_keepalive_acks"] >= 2
        finally:
            channel.close()


def test_a_client_that_does_not_answer_the_keepalive_ping_is_closed():
    """A raw client that sends its preface and then reads without ever
    answering: it gets the server's PING after keepalive_time, and the
    connection closes keepalive_timeout later."""
    server = keepalive_server(keepalive_time=0.3, keepalive_timeout=0.1)
    with serving_grpc(server) as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        try:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            got = sock.recv(65536)  # the server's SETTINGS first, then our preface
            sock.sendall(conn.data_to_send())
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        finally:
            sock.close()
        wait_for(lambda: server.stats()["grpc_keepalive_timeouts"] == 1, "the timeout")
    assert b"\x00\x00\x08\x06\x00\x00\x00\x00\x00grpc-ka!" in got
    assert server.stats()["grpc_keepalive_acks"] == 0


@pytest.mark.parametrize("flags, interval, timeout", [
    ([], 7200.0, 20.0),
    (["--grpc-keepalive-time", "5", "--grpc-keepalive-timeout", "2"], 5.0, 2.0),
    (["--grpc-keepalive-time", "off"], None, 20.0),
    (["--grpc-keepalive-time", "5", "--keepalive-interval", "7"], 7.0, 20.0),
])
def test_the_keepalive_flags_of_protocol_grpc(flags, interval, timeout):
    """The command line's keep-alive: grpcio's schedule unless told, the
    server-wide --keepalive-interval winning when given."""
    from fastnet import serve
    from fastnet.server import get as get_unit
    parser = serve.build_parser()
    args = parser.parse_args(["--protocol", "grpc", *flags])
    unit = get_unit("grpc")
    server = unit.make_server(serve._unit_values(parser, args, unit),
                              {"engine": DEFAULT_ENGINE,
                               "keepalive_interval": args.keepalive_interval})
    assert (server.keepalive_interval, server.keepalive_timeout) == (interval, timeout)
