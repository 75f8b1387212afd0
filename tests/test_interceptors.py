"""The protocol-neutral interceptor chain and the built-ins, in memory with
a fake clock (the adapters' socket tests are test_interceptors_wire.py and
test_interceptors_http.py)."""
from __future__ import annotations

import asyncio
import json
import logging
import tracemalloc

import pytest

from fastnet.interceptors import (DROP, Abort, AuthInterceptor, BucketTable, Call, Chain, LineWriter,
                                  Interceptor, LoggingInterceptor, RateLimitInterceptor, Status,
                                  allow_per_identity, credential_identity, current_call)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder(Interceptor):
    """Writes what it sees, tagged with its name, into a shared list."""

    def __init__(self, name, seen):
        self.name, self.seen = name, seen

    def before(self, call):
        self.seen.append((self.name, "before", call.method))

    def on_request(self, call, message):
        self.seen.append((self.name, "request", message))
        return message + [self.name]

    def on_response(self, call, message):
        self.seen.append((self.name, "response", message))
        return message + [self.name]

    def after(self, call):
        self.seen.append((self.name, "after", call.status.name, call.messages_in,
                          call.messages_out))


class AsyncRecorder(Recorder):
    async def before(self, call):
        await asyncio.sleep(0)
        super().before(call)

    async def on_request(self, call, message):
        await asyncio.sleep(0)
        return super().on_request(call, message)

    async def after(self, call):
        await asyncio.sleep(0)
        super().after(call)


def echo(request):
    return request + ["handler"]


def test_order_of_a_unary_call():
    seen = []
    chain = Chain([Recorder(n, seen) for n in "abc"])
    call = chain.start("test", "/m")
    assert chain.run_unary(call, [], echo) == ["a", "b", "c", "handler", "c", "b", "a"]
    assert [s[:2] for s in seen] == [
        ("a", "before"), ("b", "before"), ("c", "before"),
        ("a", "request"), ("b", "request"), ("c", "request"),
        ("c", "response"), ("b", "response"), ("a", "response"),
        ("c", "after"), ("b", "after"), ("a", "after")]
    assert seen[-1] == ("a", "after", "OK", 1, 1)
    assert not chain.is_async


def test_order_with_async_interceptors():
    seen = []
    chain = Chain([Recorder("a", seen), AsyncRecorder("b", seen), Recorder("c", seen)])
    assert chain.is_async

    async def handler(request):
        return request + ["handler"]

    call = chain.start("test", "/m")
    result = asyncio.run(chain.arun_unary(call, [], handler))
    assert result == ["a", "b", "c", "handler", "c", "b", "a"]
    assert [s[:2] for s in seen][:3] == [("a", "before"), ("b", "before"), ("c", "before")]
    assert [s[:2] for s in seen][-3:] == [("c", "after"), ("b", "after"), ("a", "after")]


class Reject(Interceptor):
    def __init__(self, status=Status.PERMISSION_DENIED):
        self.status = status

    def before(self, call):
        raise Abort(self.status, "no", retry_after=2.5, trailing_metadata={"why": "test"})


def test_a_rejection_skips_the_rest_and_only_entered_interceptors_see_after():
    seen = []
    chain = Chain([Recorder("a", seen), Reject(), Recorder("c", seen)])
    call = chain.start("test", "/m")
    called = []
    assert chain.run_unary(call, [], lambda r: called.append(r)) is DROP
    assert not called
    assert seen == [("a", "before", "/m"), ("a", "after", "PERMISSION_DENIED", 0, 0)]
    assert (call.status, call.details, call.retry_after) == (Status.PERMISSION_DENIED, "no", 2.5)
    assert call.trailing_metadata == {"why": "test"}


class Boom(Interceptor):
    def __init__(self, where):
        self.where = where

    def before(self, call):
        if self.where == "before":
            raise KeyError("before")

    def on_request(self, call, message):
        if self.where == "request":
            raise KeyError("request")
        return message

    def after(self, call):
        if self.where == "after":
            raise KeyError("after")


@pytest.mark.parametrize("where", ["before", "request", "after"])
def test_a_failing_interceptor_ends_the_call_internal(where):
    seen = []
    chain = Chain([Recorder("a", seen), Boom(where)])
    call = chain.start("test", "/m")
    assert chain.run_unary(call, [], echo) is DROP
    assert call.status == Status.INTERNAL
    assert isinstance(call.exception, KeyError) and call.exception.args == (where,)
    assert "Boom" in call.details
    assert seen[-1][:3] == ("a", "after", "INTERNAL")  # the outer one saw the status
    # the next call on the same chain is not affected by the last one's state
    ok = Chain([Recorder("a", [])]).run_unary(Chain().start("t", "/m"), [], echo)
    assert ok == ["a", "handler", "a"]


def test_a_failing_handler_is_unknown_and_its_abort_is_its_status():
    chain = Chain([Recorder("a", [])])
    call = chain.start("test", "/m")
    assert chain.run_unary(call, [], lambda r: 1 / 0) is DROP
    assert call.status == Status.UNKNOWN and isinstance(call.exception, ZeroDivisionError)

    def refuse(request):
        raise Abort(Status.NOT_FOUND, "gone")
    call = chain.start("test", "/m")
    assert chain.run_unary(call, [], refuse) is DROP
    assert (call.status, call.details) == (Status.NOT_FOUND, "gone")


class Dropper(Interceptor):
    def __init__(self, side):
        self.side = side

    def on_request(self, call, message):
        return DROP if self.side == "request" else message

    def on_response(self, call, message):
        return DROP if self.side == "response" else message


def test_dropped_messages():
    seen = []
    chain = Chain([Dropper("request"), Recorder("b", seen)])
    call = chain.start("test", "/m")
    assert chain.run_unary(call, [], echo) is DROP
    assert call.status == Status.INVALID_ARGUMENT
    assert ("b", "request", []) not in seen  # b never saw the dropped message
    chain = Chain([Recorder("a", seen), Dropper("response")])
    call = chain.start("test", "/m")
    assert chain.run_unary(call, [], echo) is DROP
    assert call.status == Status.INTERNAL and call.messages_out == 0


def test_streaming_hooks_count_and_replace():
    """What a streaming adapter does: request/response per message, after once."""
    seen = []
    chain = Chain([Recorder("a", seen), Dropper("none")])
    call = chain.start("test", "/m", kind="bidi")
    assert chain.before(call)
    for n in range(3):
        assert chain.request(call, [n], size=10) == [n, "a"]
        assert chain.response(call, [n], size=7) == [n, "a"]
    chain.after(call)
    chain.after(call)  # once only
    assert (call.messages_in, call.bytes_in, call.messages_out, call.bytes_out) == (3, 30, 3, 21)
    assert [s for s in seen if s[1] == "after"] == [("a", "after", "OK", 3, 3)]


def test_metadata_changes_and_identity_reach_the_handler():
    class Stamp(Interceptor):
        def before(self, call):
            call.metadata["x-stamped"] = "yes"
            call.identity = "alice"

    def handler(request):
        call = current_call()
        return (call.identity, call.metadata["x-stamped"])

    chain = Chain([Stamp()])
    assert chain.run_unary(chain.start("t", "/m", metadata={}), None, handler) == ("alice", "yes")
    assert current_call() is None


def test_duration_from_the_chain_clock():
    clock = FakeClock()

    def slow(request):
        clock.now += 0.25
        return request

    chain = Chain([Recorder("a", [])], clock=clock)
    call = chain.start("t", "/m")
    chain.run_unary(call, [], slow)
    assert call.started_at == 1000.0 and call.duration == pytest.approx(0.25)


def test_only_overridden_hooks_are_called():
    chain = Chain([Interceptor(), LoggingInterceptor(sink=lambda line: None)])
    assert not chain.sees_messages and not chain._before and len(chain._after) == 1
    with pytest.raises(TypeError):
        Chain([object()])  # type: ignore[list-item]


# -- logging -----------------------------------------------------------------

def _logged_call(fmt, lines, method="/pkg.S/Echo", status=None):
    clock = FakeClock()
    chain = Chain([LoggingInterceptor(fmt, sink=lines.append)], clock=clock)
    call = chain.start("grpc", method, ("127.0.0.1", 5555))

    def handler(request):
        clock.now += 0.002
        if status:
            raise Abort(status, "said no")
        return b"x" * 25

    chain.run_unary(call, b"y" * 20, handler, request_size=20, size_of=len)
    return call


def test_logging_json_lines():
    lines = []
    _logged_call("json", lines)
    _logged_call("json", lines, status=Status.NOT_FOUND)
    first, second = (json.loads(line) for line in lines)
    assert first == {"protocol": "grpc", "method": "/pkg.S/Echo", "peer": "127.0.0.1:5555",
                     "status": "OK", "code": None, "duration_ms": 2.0, "messages_in": 1,
                     "bytes_in": 20, "messages_out": 1, "bytes_out": 25}
    assert second["status"] == "NOT_FOUND" and second["details"] == "said no"
    assert second["messages_out"] == 0


def test_logging_json_is_the_record_whatever_the_values():
    log = LoggingInterceptor("json")
    chain = Chain([log])
    for method, identity, details, code in (
            ("/a", None, "", None), ('/q"uote\n\u2028', 'id"\x00', "d\r\n", "weird"),
            ("x" * 1000, 12, "é", 404)):
        call = chain.start("grpc", method, ("::1", 7))
        call.identity, call.details, call.protocol_status = identity, details, code
        call.duration = 0.0123456
        for _ in range(2):  # the second time from the escaped-method table
            assert json.loads(log.line(call)) == log.record(call)
    assert json.loads(log.line(call))["method"].endswith("...")  # cut at the limit


def test_logging_text_quotes_what_a_peer_could_forge():
    lines = []
    _logged_call("text", lines)
    _logged_call("text", lines, method="/evil\nstatus=OK fake")
    assert lines[0].startswith("protocol=grpc method=/pkg.S/Echo peer=127.0.0.1:5555 status=OK")
    assert "bytes_in=20" in lines[0] and "duration_ms=2.000" in lines[0]
    assert "\n" not in lines[1] and 'method="/evil\\nstatus=OK fake"' in lines[1]


def test_logging_to_a_logger_at_a_level(caplog):
    chain = Chain([LoggingInterceptor("json", level=logging.WARNING, logger="test.calls")])
    with caplog.at_level(logging.WARNING, logger="test.calls"):
        chain.run_unary(chain.start("wire", "call"), 1, echo_any)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert json.loads(caplog.records[0].getMessage())["method"] == "call"
    with pytest.raises(ValueError):
        LoggingInterceptor("xml")


def echo_any(request):
    return request


# -- authentication -----------------------------------------------------------

def _auth(icept, method="/pkg.S/Echo", **metadata):
    chain = Chain([icept])
    call = chain.start("grpc", method, metadata=dict(metadata))
    result = chain.run_unary(call, 1, lambda r: current_call().identity)
    return call, result


def test_auth_bearer_and_api_key():
    auth = AuthInterceptor({"tok-a": "alice", "tok-b": "bob"})
    assert _auth(auth, authorization="Bearer tok-a")[1] == "alice"
    assert _auth(auth, authorization="bearer   tok-b ")[1] == "bob"
    assert _auth(auth, **{"x-api-key": "tok-b"})[1] == "bob"
    for metadata, details in (({}, "missing credentials"),
                              ({"authorization": "Basic tok-a"}, "missing credentials"),
                              ({"authorization": "Bearer"}, "missing credentials"),
                              ({"authorization": "Bearer nope"}, "invalid credentials")):
        call, result = _auth(auth, **metadata)
        assert result is DROP and (call.status, call.details) == (Status.UNAUTHENTICATED, details)
    only_keys = AuthInterceptor({"k": "kim"}, bearer=False)
    assert _auth(only_keys, authorization="Bearer k")[0].status == Status.UNAUTHENTICATED


def test_auth_public_methods_and_static_set_and_function():
    auth = AuthInterceptor({"tok-a"})
    call, result = _auth(auth, "/grpc.health.v1.Health/Check")
    assert call.ok and result is None  # exempt: no identity
    assert _auth(auth, authorization="Bearer tok-a")[1] == credential_identity("tok-a")
    assert "tok-a" not in credential_identity("tok-a")
    checked = []
    fn_auth = AuthInterceptor(lambda token: checked.append(token) or ("u-" + token if token == "ok" else None),
                              public=())
    assert _auth(fn_auth, authorization="Bearer ok")[1] == "u-ok"
    assert _auth(fn_auth, "/grpc.health.v1.Health/Check")[0].status == Status.UNAUTHENTICATED
    assert checked == ["ok"]


def test_auth_per_method_policy():
    auth = AuthInterceptor({"a": "alice", "b": "bob"}, allow={"/pkg.Admin/*": {"alice"}})
    assert _auth(auth, "/pkg.Admin/Reset", authorization="Bearer a")[1] == "alice"
    call, _ = _auth(auth, "/pkg.Admin/Reset", authorization="Bearer b")
    assert call.status == Status.PERMISSION_DENIED and "bob may not call /pkg.Admin/Reset" in call.details
    assert call.identity == "bob"
    assert _auth(auth, "/pkg.S/Echo", authorization="Bearer b")[1] == "bob"
    per = AuthInterceptor({"a": "alice", "b": "bob"},
                          allow=allow_per_identity({"alice": ["*"], "bob": ["/pkg.S/Get*"]}))
    assert _auth(per, "/pkg.S/GetX", authorization="Bearer b")[0].ok
    assert _auth(per, "/pkg.S/Put", authorization="Bearer b")[0].status == Status.PERMISSION_DENIED
    assert _auth(per, "/pkg.S/Put", authorization="Bearer a")[0].ok


# -- rate limiting ------------------------------------------------------------

def test_bucket_burst_refill_and_retry_time():
    table = BucketTable(rate=10, burst=3)
    now = 50.0
    assert [table.take("k", now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert table.take("k", now) == pytest.approx(0.1)
    assert table.take("k", now + 0.05) == pytest.approx(0.05)
    assert table.take("k", now + 0.1) == 0.0  # one token refilled
    assert table.take("other", now) == 0.0    # keys are separate
    assert [table.take("k", now + 10) for _ in range(4)][-1] > 0  # never above burst
    with pytest.raises(ValueError):
        BucketTable(0)
    with pytest.raises(ValueError):
        BucketTable(1, burst=0.5)


def test_rate_limit_calls_with_recovery_after_the_refill_time():
    clock = FakeClock()
    chain = Chain([RateLimitInterceptor(2, burst=2, key="peer", clock=clock)])

    def one(peer="10.0.0.1"):
        call = chain.start("grpc", "/m", (peer, 1234))
        chain.run_unary(call, 1, echo_any)
        return call
    assert one().ok and one().ok
    refused = one()
    assert refused.status == Status.RESOURCE_EXHAUSTED
    assert refused.retry_after == pytest.approx(0.5)
    assert one("10.0.0.2").ok  # another peer's bucket
    clock.now += refused.retry_after
    assert one().ok
    assert one().status == Status.RESOURCE_EXHAUSTED


def test_rate_limit_keyed_by_identity_after_auth_and_by_method():
    clock = FakeClock()
    chain = Chain([AuthInterceptor({"a": "alice", "b": "bob"}),
                   RateLimitInterceptor(1, key="identity", clock=clock)])

    def one(token):
        call = chain.start("grpc", "/m", ("10.0.0.1", 1), metadata={"authorization": "Bearer " + token})
        chain.run_unary(call, 1, echo_any)
        return call.status
    assert [one("a"), one("a"), one("b")] == [Status.OK, Status.RESOURCE_EXHAUSTED, Status.OK]
    by_method = Chain([RateLimitInterceptor(1, key="method", clock=clock)])
    statuses = []
    for method in ("/x", "/x", "/y"):
        call = by_method.start("grpc", method)
        by_method.run_unary(call, 1, echo_any)
        statuses.append(call.status)
    assert statuses == [Status.OK, Status.RESOURCE_EXHAUSTED, Status.OK]


def test_rate_limit_streamed_messages():
    clock = FakeClock()
    limiter = RateLimitInterceptor(None, key="peer", message_rate=100, message_burst=3, clock=clock)
    chain = Chain([limiter])
    call = chain.start("grpc", "/m", ("10.0.0.1", 1), kind="client_stream")
    assert chain.before(call)
    for n in range(3):
        assert chain.request(call, n) == n
    with pytest.raises(Abort) as info:
        chain.request(call, 3)
    assert info.value.status == Status.RESOURCE_EXHAUSTED
    assert info.value.retry_after == pytest.approx(0.01)
    clock.now += 0.01
    assert chain.request(call, 4) == 4
    calls_only = Chain([RateLimitInterceptor(5, key="peer", clock=clock)])
    assert not calls_only.sees_messages  # no per-message hook when messages are unlimited


def test_rate_limit_memory_is_bounded_under_a_hostile_key_space():
    clock = FakeClock()
    limiter = RateLimitInterceptor(1, key="peer", message_rate=1, max_keys=1000, clock=clock)
    chain = Chain([limiter])
    tracemalloc.start()
    try:
        for n in range(1000):  # warm: the tables are full
            call = chain.start("grpc", "/m", (f"warm-{n}", 1))
            chain.before(call)
            chain.request(call, n)
        base, _ = tracemalloc.get_traced_memory()
        for n in range(100_000):
            call = chain.start("grpc", "/m", (f"key-{n}", 1))
            assert chain.before(call)  # every new key starts full
            chain.request(call, n)
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(limiter.calls) == 1000 and len(limiter.messages) == 1000
    # 1e5 keys kept would be ~30 MB (two tables of ~150 B a bucket); 1000 kept
    # and the tables' slack are well under 1 MB
    assert grown - base < 1_000_000
    with pytest.raises(ValueError):
        RateLimitInterceptor(None)
    with pytest.raises(ValueError):
        RateLimitInterceptor(1, key="colour")


def test_call_repr_and_abort_text():
    call = Call("wire", "call")
    assert repr(call) == "<Call wire call OK>" and call.ok
    assert str(Abort(Status.UNAUTHENTICATED, "missing")) == "UNAUTHENTICATED: missing"


def test_line_writer_flushes_on_its_interval_and_on_request():
    class Stream:
        def __init__(self):
            self.written, self.flushed = [], 0

        def write(self, text):
            self.written.append(text)

        def flush(self):
            self.flushed += 1
    clock, stream = FakeClock(), Stream()
    writer = LineWriter(stream, flush_interval=0.2, clock=clock)
    chain = Chain([LoggingInterceptor("json", sink=writer)])
    for _ in range(3):
        chain.run_unary(chain.start("wire", "call"), 1, echo_any)
    assert stream.written == [] and stream.flushed == 0  # kept until the interval has passed
    clock.now += 0.2
    chain.run_unary(chain.start("wire", "call"), 1, echo_any)
    assert stream.flushed == 1 and len(stream.written) == 1  # the four lines in one write
    lines = stream.written[0].split("\n")
    assert lines[-1] == "" and [json.loads(line)["method"] for line in lines[:-1]] == ["call"] * 4
    writer.flush()
    assert stream.flushed == 2 and len(stream.written) == 1  # nothing more to write


def test_line_writer_holds_a_bounded_number_of_lines():
    class Stream:
        def __init__(self):
            self.written = []

        def write(self, text):
            self.written.append(text)

        def flush(self):
            pass
    stream = Stream()
    writer = LineWriter(stream, flush_interval=1e9, max_lines=3, clock=FakeClock())
    for n in range(7):
        writer(f"line {n}")
    assert stream.written == ["line 0\nline 1\nline 2\n", "line 3\nline 4\nline 5\n"]
    assert len(writer._lines) == 1
    with pytest.raises(ValueError):
        LineWriter(stream, max_lines=0)
