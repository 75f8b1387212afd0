"""grpcio's side of the interop suite, written here from grpc's
doc/interop-test-descriptions.md on grpcio-generated code: a TestService
server and the cases as a client."""
from __future__ import annotations

import queue
from concurrent import futures

import grpc

from grpc_helpers import pb2

T = pb2()
M = T.messages
E = T.empty
GUARD = 30.0
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def _code(number: int) -> grpc.StatusCode:
    return next(c for c in grpc.StatusCode if c.value[0] == number)


def _echo(context) -> None:
    md = dict(context.invocation_metadata())
    if ECHO_INITIAL in md:
        context.send_initial_metadata([(ECHO_INITIAL, md[ECHO_INITIAL])])
    if ECHO_TRAILING in md:
        context.set_trailing_metadata([(ECHO_TRAILING, md[ECHO_TRAILING])])


def _payload(size: int):
    return M.Payload(body=bytes(size))


class Servicer(T.test_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        _echo(context)
        return E.Empty()

    def UnaryCall(self, request, context):
        _echo(context)
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        if request.response_status.code:
            context.abort(_code(request.response_status.code), request.response_status.message)
        return M.SimpleResponse(payload=_payload(request.response_size))

    def StreamingOutputCall(self, request, context):
        _echo(context)
        for param in request.response_parameters:
            if param.compressed.value:
                context.set_compression(grpc.Compression.Gzip)
            else:
                context.disable_next_message_compression()
            yield M.StreamingOutputCallResponse(payload=_payload(param.size))

    def StreamingInputCall(self, request_iterator, context):
        return M.StreamingInputCallResponse(
            aggregated_payload_size=sum(len(r.payload.body) for r in request_iterator))

    def FullDuplexCall(self, request_iterator, context):
        _echo(context)
        for request in request_iterator:
            if request.response_status.code:
                context.abort(_code(request.response_status.code),
                              request.response_status.message)
            for param in request.response_parameters:
                yield M.StreamingOutputCallResponse(payload=_payload(param.size))


def grpcio_server():
    server = grpc.server(futures.ThreadPoolExecutor(16))
    T.test_grpc.add_TestServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


# -- the client cases ----------------------------------------------------------

def _expect(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as e:
        assert e.code() == code, (e.code(), e.details())
        return e
    raise AssertionError(f"expected {code}")


def empty_unary(stub, channel):
    assert stub.EmptyCall(E.Empty(), timeout=GUARD) == E.Empty()


def large_unary(stub, channel):
    r = stub.UnaryCall(M.SimpleRequest(response_size=314159, payload=_payload(271828)),
                       timeout=GUARD)
    assert r.payload.body == bytes(314159)


def client_streaming(stub, channel):
    r = stub.StreamingInputCall(iter([M.StreamingInputCallRequest(payload=_payload(s))
                                      for s in (27182, 8, 1828, 45904)]), timeout=GUARD)
    assert r.aggregated_payload_size == 74922


def server_streaming(stub, channel):
    sizes = [31415, 9, 2653, 58979]
    out = stub.StreamingOutputCall(M.StreamingOutputCallRequest(
        response_parameters=[M.ResponseParameters(size=s) for s in sizes]), timeout=GUARD)
    assert [r.payload.body for r in out] == [bytes(s) for s in sizes]


class _Requests:
    """A request iterator the case feeds one message at a time."""

    def __init__(self):
        self.q = queue.Queue()

    def __iter__(self):
        while True:
            item = self.q.get(timeout=GUARD)
            if item is None:
                return
            yield item


def ping_pong(stub, channel):
    reqs = _Requests()
    call = stub.FullDuplexCall(iter(reqs), timeout=GUARD)
    for size, body in ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904)):
        reqs.q.put(M.StreamingOutputCallRequest(response_parameters=[M.ResponseParameters(
            size=size)], payload=_payload(body)))
        assert next(call).payload.body == bytes(size)
    reqs.q.put(None)
    assert list(call) == [] and call.code() == grpc.StatusCode.OK


def empty_stream(stub, channel):
    assert list(stub.FullDuplexCall(iter([]), timeout=GUARD)) == []


def custom_metadata(stub, channel):
    md = [(ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab")]
    _, call = stub.UnaryCall.with_call(M.SimpleRequest(response_size=314159,
                                                       payload=_payload(271828)),
                                       metadata=md, timeout=GUARD)
    assert md[0] in call.initial_metadata() and md[1] in call.trailing_metadata()
    call = stub.FullDuplexCall(iter([M.StreamingOutputCallRequest(
        response_parameters=[M.ResponseParameters(size=314159)], payload=_payload(271828))]),
        metadata=md, timeout=GUARD)
    assert [len(r.payload.body) for r in call] == [314159]
    assert md[0] in call.initial_metadata() and md[1] in call.trailing_metadata()


def _status(stub, message):
    status = M.EchoStatus(code=2, message=message)
    e = _expect(grpc.StatusCode.UNKNOWN, stub.UnaryCall, M.SimpleRequest(response_status=status),
                timeout=GUARD)
    assert e.details() == message
    call = stub.FullDuplexCall(iter([M.StreamingOutputCallRequest(response_status=status)]),
                               timeout=GUARD)
    e = _expect(grpc.StatusCode.UNKNOWN, list, call)
    assert e.details() == message


def status_code_and_message(stub, channel):
    _status(stub, "test status message")


def special_status_message(stub, channel):
    _status(stub, "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n")


def unimplemented_method(stub, channel):
    _expect(grpc.StatusCode.UNIMPLEMENTED, stub.UnimplementedCall, E.Empty(), timeout=GUARD)


def unimplemented_service(stub, channel):
    other = T.test_grpc.UnimplementedServiceStub(channel)
    _expect(grpc.StatusCode.UNIMPLEMENTED, other.UnimplementedCall, E.Empty(), timeout=GUARD)


def cancel_after_begin(stub, channel):
    reqs = _Requests()
    future = stub.StreamingInputCall.future(iter(reqs), timeout=GUARD)
    future.cancel()
    reqs.q.put(None)
    assert future.cancelled() or future.code() == grpc.StatusCode.CANCELLED


def cancel_after_first_response(stub, channel):
    reqs = _Requests()
    call = stub.FullDuplexCall(iter(reqs), timeout=GUARD)
    reqs.q.put(M.StreamingOutputCallRequest(response_parameters=[M.ResponseParameters(
        size=31415)], payload=_payload(27182)))
    assert next(call).payload.body == bytes(31415)
    call.cancel()
    reqs.q.put(None)
    assert call.code() == grpc.StatusCode.CANCELLED


def timeout_on_sleeping_server(stub, channel):
    reqs = _Requests()
    call = stub.FullDuplexCall(iter(reqs), timeout=0.001)
    reqs.q.put(M.StreamingOutputCallRequest(payload=_payload(27182)))
    _expect(grpc.StatusCode.DEADLINE_EXCEEDED, list, call)
    reqs.q.put(None)


def client_compressed_unary(stub, channel):
    # grpcio compresses a whole call or none of it, which is what these need
    _expect(grpc.StatusCode.INVALID_ARGUMENT, stub.UnaryCall, M.SimpleRequest(
        expect_compressed=M.BoolValue(value=True), response_size=314159,
        payload=_payload(271828)), timeout=GUARD)
    for expect in (True, False):
        r = stub.UnaryCall(M.SimpleRequest(expect_compressed=M.BoolValue(value=expect),
                                           response_size=314159, payload=_payload(271828)),
                           compression=grpc.Compression.Gzip if expect else None, timeout=GUARD)
        assert r.payload.body == bytes(314159)


def server_compressed_unary(stub, channel):
    for compressed in (True, False):
        r = stub.UnaryCall(M.SimpleRequest(response_compressed=M.BoolValue(value=compressed),
                                           response_size=314159, payload=_payload(271828)),
                           timeout=GUARD)
        assert r.payload.body == bytes(314159)


def client_compressed_streaming(stub, channel):
    _expect(grpc.StatusCode.INVALID_ARGUMENT, stub.StreamingInputCall, iter([
        M.StreamingInputCallRequest(expect_compressed=M.BoolValue(value=True),
                                    payload=_payload(27182))]), timeout=GUARD)
    # grpcio cannot leave one message of a compressed stream uncompressed:
    # both go compressed (the second does not ask for it, so it passes)
    r = stub.StreamingInputCall(iter([
        M.StreamingInputCallRequest(expect_compressed=M.BoolValue(value=True),
                                    payload=_payload(27182)),
        M.StreamingInputCallRequest(expect_compressed=M.BoolValue(value=False),
                                    payload=_payload(45904))]),
        compression=grpc.Compression.Gzip, timeout=GUARD)
    assert r.aggregated_payload_size == 73086


def server_compressed_streaming(stub, channel):
    out = stub.StreamingOutputCall(M.StreamingOutputCallRequest(response_parameters=[
        M.ResponseParameters(compressed=M.BoolValue(value=True), size=31415),
        M.ResponseParameters(compressed=M.BoolValue(value=False), size=92653)]), timeout=GUARD)
    assert [len(r.payload.body) for r in out] == [31415, 92653]


CASES = [empty_unary, large_unary, client_streaming, server_streaming, ping_pong, empty_stream,
         custom_metadata, status_code_and_message, special_status_message, unimplemented_method,
         unimplemented_service, cancel_after_begin, cancel_after_first_response,
         timeout_on_sleeping_server, client_compressed_unary, server_compressed_unary,
         client_compressed_streaming, server_compressed_streaming]
