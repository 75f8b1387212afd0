"""Interceptors on fastnet.grpc's server, called by grpcio's client: every
RPC kind through a chain of three, each built-in (missing and wrong
tokens, allowed and denied methods, a burst over the rate then recovery
on a fake clock, log lines parsed), an interceptor that raises giving
INTERNAL to that call alone.

The server is fastnet.grpc's over fastnet.h2 on a real socket."""
from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from typing import Iterator

import grpc
import pytest

import fastnet.grpc
from fastnet.interceptors import (AuthInterceptor, Chain, Interceptor, LoggingInterceptor,
                                  RateLimitInterceptor, current_call)
from fastnet.grpc import StatusCode, status_code
from fastnet.grpc import protocol as p
from fastnet.interceptors import Call, Status
from fastnet.interceptors.grpc import PUSHBACK, ChainHook, call_of
from fastnet.interceptors.grpc_client import AddMetadata, intercept_channel, retry_on
from grpc_helpers import serving_grpc
from interceptor_helpers import AsyncRecorder, Recorder
from helpers import GUARD, cli_server, require_engine

SERVICE = "test.Echo"


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now


def unary(request, context):
    return request + b"|" + _meta(context, "x-a")  # x-a: set by interceptor a


def _meta(context, key):
    for item in context.invocation_metadata():
        if item.key == key:
            return item.value.encode()
    return b"-"


def server_stream(request, context):
    for n in range(3):
        yield request + b"%d" % n


def client_stream(requests, context):
    return b"+".join(requests)


def bidi(requests, context):
    for message in requests:
        yield message.upper()


def whoami(request, context):
    loop_side = current_call()
    return f"{call_of(context).identity} {loop_side.identity if loop_side else None}".encode()


def boom(request, context):
    raise RuntimeError("handler bug")


HANDLERS = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
    "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    "WhoAmI": grpc.unary_unary_rpc_method_handler(whoami),
    "Boom": grpc.unary_unary_rpc_method_handler(boom),
}


@contextlib.contextmanager
def serving(chain: Chain) -> Iterator[tuple[grpc.Channel, str]]:
    """A fastnet.grpc.Server with the chain as its hook on a free port: a
    grpcio channel to it and its target."""
    require_engine("c")  # fastnet.grpc.Server's default engine
    server = fastnet.grpc.Server(hooks=[ChainHook(chain)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, HANDLERS)])
    with serving_grpc(server) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            yield channel, f"127.0.0.1:{port}"
        finally:
            channel.close()


def method(channel, name, kind="unary_unary"):
    return getattr(channel, kind)(f"/{SERVICE}/{name}")


KINDS = {  # name -> (grpcio call kind, request, expected response after the chain's changes)
    "Unary": ("unary_unary", b"hi", b"hi<a><b><c>|1<c><b><a>"),
    "ServerStream": ("unary_stream", b"s", [b"s<a><b><c>%d<c><b><a>" % n for n in range(3)]),
    "ClientStream": ("stream_unary", [b"x", b"y"], b"x<a><b><c>+y<a><b><c><c><b><a>"),
    "Bidi": ("stream_stream", [b"p", b"q"], [b"P<A><B><C><c><b><a>", b"Q<A><B><C><c><b><a>"]),
}


def _call(channel, name):
    kind, request, _ = KINDS[name]
    rpc = method(channel, name, kind)
    metadata = [("x-trace", "t-" + name)]
    if kind == "unary_unary":
        return rpc(request, metadata=metadata, timeout=GUARD)
    if kind == "unary_stream":
        return list(rpc(request, metadata=metadata, timeout=GUARD))
    if kind == "stream_unary":
        return rpc(iter(request), metadata=metadata, timeout=GUARD)
    return list(rpc(iter(request), metadata=metadata, timeout=GUARD))


@pytest.mark.parametrize("asynchronous", [False, True], ids=["plain", "async"])
@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_through_three_interceptors(name, asynchronous):
    seen = []
    middle = AsyncRecorder("b", seen) if asynchronous else Recorder("b", seen)
    chain = Chain([Recorder("a", seen), middle, Recorder("c", seen)])
    with serving(chain) as (channel, _):
        expected = KINDS[name][2]
        assert _call(channel, name) == expected
        end = threading.Event()
        for _ in range(int(GUARD * 100)):  # call_ended runs after the status went out
            if any(s[1] == "after" and s[0] == "a" for s in seen):
                break
            end.wait(0.01)
    kind, request, _ = KINDS[name]
    n_in = len(request) if isinstance(request, list) else 1
    n_out = len(expected) if isinstance(expected, list) else 1
    steps = [s[:2] for s in seen]
    assert steps[:3] == [("a", "before"), ("b", "before"), ("c", "before")]
    assert steps[-3:] == [("c", "after"), ("b", "after"), ("a", "after")]
    middle_part = steps[3:-3]
    assert middle_part.count(("a", "request")) == n_in
    assert middle_part.count(("a", "response")) == n_out
    for i in range(0, len(middle_part), 3):  # each message passes the three in order
        trio = [who for who, _ in middle_part[i:i + 3]]
        assert trio in (["a", "b", "c"], ["c", "b", "a"]), middle_part
        assert trio == (["a", "b", "c"] if middle_part[i][1] == "request" else ["c", "b", "a"])
    grpc_kind = {"Unary": "unary", "ServerStream": "server_stream",
                 "ClientStream": "client_stream", "Bidi": "bidi"}[name]
    assert seen[0] == ("a", "before", f"/{SERVICE}/{name}", grpc_kind, "t-" + name)
    assert seen[-1] == ("a", "after", "OK", n_in, n_out, True, True)


def wait_lines(lines, n):
    end = threading.Event()
    for _ in range(int(GUARD * 100)):
        if len(lines) >= n:
            return
        end.wait(0.01)
    raise AssertionError(f"{len(lines)} log lines, expected {n}")


class Boom(Interceptor):
    def before(self, call):
        if call.metadata.get("boom"):
            raise RuntimeError("interceptor bug")


def test_a_raising_interceptor_gives_internal_to_that_call_alone():
    lines = []
    chain = Chain([LoggingInterceptor("json", sink=lines.append), Boom()])
    with serving(chain) as (channel, _):
        rpc = method(channel, "Unary")
        with pytest.raises(grpc.RpcError) as info:
            rpc(b"x", metadata=[("boom", "1")], timeout=GUARD)
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert "interceptor bug" not in info.value.details()
        assert rpc(b"y", timeout=GUARD) == b"y|-"
        with pytest.raises(grpc.RpcError) as info:
            method(channel, "Boom")(b"z", timeout=GUARD)
        assert info.value.code() == grpc.StatusCode.UNKNOWN
        with pytest.raises(grpc.RpcError) as info:
            method(channel, "Missing")(b"z", timeout=GUARD)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        wait_lines(lines, 4)
    assert [json.loads(line)["status"] for line in lines] == [
        "INTERNAL", "OK", "UNKNOWN", "UNIMPLEMENTED"]


class StreamSpy:
    """A plain server hook beside the chain: each call's stream (None: the
    call was served whole inside the read that brought it)."""

    def __init__(self) -> None:
        self.streams: list = []

    def call_ended(self, scall):
        self.streams.append(scall.stream)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["plain", "async"])
def test_a_unary_call_served_inside_its_read_goes_through_the_chain(asynchronous):
    """A chain of plain hooks keeps the server's quickest unary path (no
    task, no stream: the request came whole in one read) and sees the same
    as on the stream path, refusals and failures included; a chain with an
    async hook takes the stream path."""
    from test_grpc_server import RawClient  # sends a request whole, in one write
    require_engine("c")
    seen, spy = [], StreamSpy()
    middle = AsyncRecorder("b", seen) if asynchronous else Recorder("b", seen)
    chain = Chain([Recorder("a", seen), middle, Recorder("c", seen), Boom(),
                   AuthInterceptor({"tok": "alice"}, public=[f"/{SERVICE}/Unary"])])
    server = fastnet.grpc.Server(hooks=[ChainHook(chain), spy])
    server.add_registered_method_handlers(SERVICE, HANDLERS)  # (generic ones: the stream path)

    def ended(step):  # the first registered's after (an async one runs in a task of its own)
        deadline = time.monotonic() + GUARD
        while not (seen and seen[-1][:2] == ("a", "after")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen[-1][:3] == ("a", "after", step)
        return seen[-1][3:]

    with serving_grpc(server) as port:
        client = RawClient(port)
        try:
            _, trailers, data = client.call(f"/{SERVICE}/Unary", p.encode_message(b"hi"))
            assert trailers[b"grpc-status"] == b"0"
            assert p.MessageDecoder().feed(data) == [b"hi<a><b><c>|1<c><b><a>"]
            assert ended("OK") == (1, 1, True, True)
            assert [s[:2] for s in seen] == [
                (n, "before") for n in "abc"] + [(n, "request") for n in "abc"] + [
                (n, "response") for n in "cba"] + [(n, "after") for n in "cba"]
            seen.clear()
            head, _, _ = client.call(f"/{SERVICE}/WhoAmI", p.encode_message(b""))
            assert head[b"grpc-status"] == b"%d" % StatusCode.UNAUTHENTICATED  # trailers-only
            assert ended("UNAUTHENTICATED") == (0, 0, False, False)
            seen.clear()
            _, trailers, data = client.call(f"/{SERVICE}/WhoAmI", p.encode_message(b""),
                                            authorization=b"Bearer tok")
            assert p.MessageDecoder().feed(data) == [b"alice alice<c><b><a>"]  # current_call() too
            assert ended("OK") == (1, 1, True, True)
            seen.clear()
            head, _, _ = client.call(f"/{SERVICE}/Unary", p.encode_message(b"x"), boom=b"1")
            assert head[b"grpc-status"] == b"%d" % StatusCode.INTERNAL
            assert ended("INTERNAL") == (0, 0, False, False)
        finally:
            client.close()
    assert [s is None for s in spy.streams] == [not asynchronous] * 4


def test_builtins_with_a_grpcio_client():
    clock = FakeClock()
    lines: list[str] = []
    chain = Chain([LoggingInterceptor("json", sink=lines.append),
                   AuthInterceptor({"tok-a": "alice", "tok-b": "bob"},
                                   allow={f"/{SERVICE}/Bidi": {"alice"}}),
                   RateLimitInterceptor(2, burst=2, key="identity", clock=clock)])
    alice = [("authorization", "Bearer tok-a")]
    bob = [("x-api-key", "tok-b")]
    with serving(chain) as (channel, _):
        who = method(channel, "WhoAmI")

        def refused(metadata, code, rpc=who):
            with pytest.raises(grpc.RpcError) as info:
                rpc(b"", metadata=metadata, timeout=GUARD)
            assert info.value.code() == code, info.value.details()
            return info.value
        assert "missing" in refused([], grpc.StatusCode.UNAUTHENTICATED).details()
        assert "invalid" in refused([("authorization", "Bearer no")],
                                    grpc.StatusCode.UNAUTHENTICATED).details()
        assert who(b"", metadata=alice, timeout=GUARD) == b"alice alice"
        bidi_rpc = method(channel, "Bidi", "stream_stream")
        assert list(bidi_rpc(iter([b"a"]), metadata=alice, timeout=GUARD)) == [b"A"]
        with pytest.raises(grpc.RpcError) as info:
            list(bidi_rpc(iter([b"a"]), metadata=bob, timeout=GUARD))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert who(b"", metadata=bob, timeout=GUARD) == b"bob bob"
        assert who(b"", metadata=bob, timeout=GUARD) == b"bob bob"
        limited = refused(bob, grpc.StatusCode.RESOURCE_EXHAUSTED)
        pushback = dict(limited.trailing_metadata())[PUSHBACK]
        assert pushback == "500"
        refused(alice, grpc.StatusCode.RESOURCE_EXHAUSTED)  # alice spent her two as well
        with clock.lock:
            clock.now += int(pushback) / 1000
        assert who(b"", metadata=bob, timeout=GUARD) == b"bob bob"
        wait_lines(lines, 10)
    records = [json.loads(line) for line in lines]
    assert [(r["method"].rsplit("/", 1)[1], r["status"], r.get("identity")) for r in records] == [
        ("WhoAmI", "UNAUTHENTICATED", None), ("WhoAmI", "UNAUTHENTICATED", None),
        ("WhoAmI", "OK", "alice"), ("Bidi", "OK", "alice"), ("Bidi", "PERMISSION_DENIED", "bob"),
        ("WhoAmI", "OK", "bob"), ("WhoAmI", "OK", "bob"), ("WhoAmI", "RESOURCE_EXHAUSTED", "bob"),
        ("WhoAmI", "RESOURCE_EXHAUSTED", "alice"), ("WhoAmI", "OK", "bob")]
    assert all(r["protocol"] == "grpc" and r["peer"].startswith("127.0.0.1:") for r in records)
    assert records[2]["code"] == 0 and records[0]["code"] == 16
    assert records[3]["messages_in"] == 1 and records[3]["messages_out"] == 1


def test_cli_grpc_with_the_three_builtins(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("tok-a alice\n")
    with cli_server("--protocol", "grpc", "--handler", "serve_handlers:grpc_echo_setup",
                    "--log-calls", "json", "--auth-tokens", str(tokens),
                    "--rate-limit", "1/m:2") as (proc, port, _):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = channel.unary_unary("/grpc.health.v1.Health/Check")
            assert health(b"", timeout=GUARD) == b"\x08\x01"  # SERVING, no token: public
            echo = channel.unary_unary(f"/{SERVICE}/Unary")
            with pytest.raises(grpc.RpcError) as info:
                echo(b"x", timeout=GUARD)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            alice = [("authorization", "Bearer tok-a")]
            assert echo(b"hi", metadata=alice, timeout=GUARD) == b"hi"
            assert echo(b"hi", metadata=alice, timeout=GUARD) == b"hi"
            with pytest.raises(grpc.RpcError) as info:
                echo(b"x", metadata=alice, timeout=GUARD)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert int(dict(info.value.trailing_metadata())[PUSHBACK]) > 0
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=GUARD)
    records = [json.loads(line.split("fastnet.calls: ", 1)[1])
               for line in err.splitlines() if "fastnet.calls: " in line]
    assert [(r["method"], r["status"]) for r in records] == [
        ("/grpc.health.v1.Health/Check", "OK"), (f"/{SERVICE}/Unary", "UNAUTHENTICATED"),
        (f"/{SERVICE}/Unary", "OK"), (f"/{SERVICE}/Unary", "OK"),
        (f"/{SERVICE}/Unary", "RESOURCE_EXHAUSTED")]


class Passive(Interceptor):
    """Does nothing, but is no built-in: a chain with it is run with Calls (not fused)."""

    def before(self, call):
        return None


class Failing:
    """A log sink that raises: the loggers after it (before it in the chain) see INTERNAL."""

    def __call__(self, line):
        raise RuntimeError("sink down")


def _builtins_scenario(fused: bool, split: bool):
    """Calls through logging (JSON), authentication, rate limiting and a
    second logger (text, after authentication: it sees only the calls let
    through), with a Passive interceptor at the end unless ``fused``;
    ``split``: every request takes the stream path, else the quick one.
    Returns (what each call got, the JSON records, the text lines), with
    what differs from run to run (durations, the client's port) left out."""
    from test_grpc_server import RawClient
    require_engine("c")
    clock = FakeClock()
    records, texts = [], []
    interceptors = [LoggingInterceptor("json", sink=records.append),
                    AuthInterceptor({"tok-a": "alice", "tok-b": "bob"},
                                    allow={f"/{SERVICE}/Unary": {"alice"}}),
                    RateLimitInterceptor(1, burst=3, key="identity", clock=clock),
                    LoggingInterceptor("text", sink=texts.append)]
    chain = Chain(interceptors + ([] if fused else [Passive()]))
    hook = ChainHook(chain)
    assert hook.fused is fused
    server = fastnet.grpc.Server(hooks=[hook])
    server.add_registered_method_handlers(SERVICE, HANDLERS)
    got = []
    alice, bob = {"authorization": b"Bearer tok-a"}, {"authorization": b"Bearer tok-b"}
    calls = [("Unary", alice), ("WhoAmI", bob), ("Unary", bob), ("WhoAmI", {}),
             ("WhoAmI", {"authorization": b"Bearer nope"}), ("WhoAmI", {"x_api_key": b"tok-a"}),
             ("WhoAmI", {"authorization": b"bearer  tok-b "}), ("WhoAmI", bob), ("WhoAmI", bob),
             ("Missing", bob), ("Boom", alice)]
    with serving_grpc(server) as port:
        client = RawClient(port)
        try:
            for name, metadata in calls:
                head, trailers, data = client.call(f"/{SERVICE}/{name}", p.encode_message(b"hi"),
                                                   split=split, **metadata)
                ends = trailers or head
                got.append((name, int(ends[b"grpc-status"]), ends.get(PUSHBACK.encode()),
                            p.MessageDecoder().feed(data)))
            wait_lines(records, len(calls))
        finally:
            client.close()
    records = [json.loads(line) for line in records]
    for record in records:
        assert record.pop("duration_ms") >= 0
        record["peer"] = record["peer"].rsplit(":", 1)[0]
    texts = [" ".join(w for w in line.split() if not w.startswith(("duration_ms=", "peer=")))
             for line in texts]
    return got, records, texts


@pytest.mark.parametrize("split", [False, True], ids=["quick", "stream"])
def test_fused_builtins_do_what_a_chain_of_calls_does(split):
    """A chain of built-ins only is fused (no Call per call): on the quick
    path and on the stream path it answers, refuses and logs exactly as the
    same chain run with Calls does, in the documented order."""
    fused = _builtins_scenario(True, split)
    assert fused == _builtins_scenario(False, split)
    got, records, texts = fused
    ok, denied, unauthenticated = 0, StatusCode.PERMISSION_DENIED, StatusCode.UNAUTHENTICATED
    assert [(name, code) for name, code, _, _ in got] == [
        ("Unary", ok), ("WhoAmI", ok), ("Unary", denied), ("WhoAmI", unauthenticated),
        ("WhoAmI", unauthenticated), ("WhoAmI", ok), ("WhoAmI", ok), ("WhoAmI", ok),
        ("WhoAmI", StatusCode.RESOURCE_EXHAUSTED), ("Missing", StatusCode.UNIMPLEMENTED),
        ("Boom", StatusCode.UNKNOWN)]
    assert got[1][3] == [b"bob bob"] and got[5][3] == [b"alice alice"]  # call_of, current_call
    assert got[8][2] == b"1000"  # bob's three tokens spent: a second to wait
    assert [(r["status"], r.get("identity")) for r in records] == [
        ("OK", "alice"), ("OK", "bob"), ("PERMISSION_DENIED", "bob"), ("UNAUTHENTICATED", None),
        ("UNAUTHENTICATED", None), ("OK", "alice"), ("OK", "bob"), ("OK", "bob"),
        ("RESOURCE_EXHAUSTED", "bob"), ("UNIMPLEMENTED", None), ("UNKNOWN", "alice")]
    assert records[0] == {"protocol": "grpc", "method": f"/{SERVICE}/Unary", "peer": "127.0.0.1",
                          "status": "OK", "code": 0, "messages_in": 1, "bytes_in": 7,
                          "messages_out": 1, "bytes_out": 9, "identity": "alice"}  # hi|-
    # the text logger comes after authentication and rate limiting: it sees the
    # calls they let through, and the one that ended before the chain started
    assert [line.split()[2] for line in texts] == [
        "status=OK", "status=OK", "status=OK", "status=OK", "status=OK", "status=UNIMPLEMENTED",
        "status=UNKNOWN"]


@pytest.mark.parametrize("split", [False, True], ids=["quick", "stream"])
def test_fused_builtins_with_no_after_hook(split):
    """Authentication and rate limiting alone: fused with nothing to run at
    the call's end (no call_ended), refusing and identifying all the same."""
    from test_grpc_server import RawClient
    require_engine("c")
    clock = FakeClock()
    hook = ChainHook(Chain([AuthInterceptor({"tok-a": "alice"}),
                            RateLimitInterceptor(1, burst=1, key="identity", clock=clock)]))
    assert hook.fused and hook.call_ended is None
    server = fastnet.grpc.Server(hooks=[hook])
    server.add_registered_method_handlers(SERVICE, HANDLERS)
    with serving_grpc(server) as port:
        client = RawClient(port)
        try:
            def call(**metadata):
                head, trailers, data = client.call(f"/{SERVICE}/WhoAmI", p.encode_message(b""),
                                                   split=split, **metadata)
                return int((trailers or head)[b"grpc-status"]), p.MessageDecoder().feed(data)
            assert call(authorization=b"Bearer tok-a") == (0, [b"alice alice"])
            assert call(authorization=b"Bearer tok-a") == (StatusCode.RESOURCE_EXHAUSTED, [])
            assert call() == (StatusCode.UNAUTHENTICATED, [])
            with clock.lock:
                clock.now += 1
            assert call(authorization=b"Bearer tok-a") == (0, [b"alice alice"])
        finally:
            client.close()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "calls"])
def test_a_failing_logger_gives_internal_to_the_loggers_before_it(fused):
    """An after that raises: the after hooks still to run see INTERNAL (the
    reply, already decided, is OK), fused or not."""
    from test_grpc_server import RawClient
    require_engine("c")
    lines = []
    chain = Chain([LoggingInterceptor("json", sink=lines.append),
                   LoggingInterceptor("json", sink=Failing())] + ([] if fused else [Passive()]))
    server = fastnet.grpc.Server(hooks=[ChainHook(chain)])
    server.add_registered_method_handlers(SERVICE, HANDLERS)
    with serving_grpc(server) as port:
        client = RawClient(port)
        try:
            _, trailers, _ = client.call(f"/{SERVICE}/Unary", p.encode_message(b"hi"))
            assert trailers[b"grpc-status"] == b"0"
            wait_lines(lines, 1)
        finally:
            client.close()
    record = json.loads(lines[0])
    assert (record["status"], record["details"]) == ("INTERNAL", "interceptor LoggingInterceptor failed")


# -- client interceptors --------------------------------------------------------

@pytest.mark.parametrize("client", ["fastnet", "grpcio"])
def test_client_chain_on_every_kind(client):
    seen = []
    with serving(Chain([])) as (grpcio_channel, target):
        inner = fastnet.grpc.Channel(target) if client == "fastnet" else grpcio_channel
        channel = intercept_channel(inner, Chain([Recorder(n, seen) for n in "abc"]), target=target)
        for name in sorted(KINDS):
            seen.clear()
            kind, request, _ = KINDS[name]
            rpc = getattr(channel, kind)(f"/{SERVICE}/{name}")
            if kind in ("unary_unary", "stream_unary"):
                got = rpc(iter(request) if kind == "stream_unary" else request,
                          metadata=[("x-trace", "t")], timeout=GUARD)
            else:
                got = list(rpc(iter(request) if kind == "stream_stream" else request,
                               metadata=[("x-trace", "t")], timeout=GUARD))
            steps = [s[:2] for s in seen]
            assert steps[:3] == [("a", "before"), ("b", "before"), ("c", "before")], name
            assert steps[-3:] == [("c", "after"), ("b", "after"), ("a", "after")], name
            assert seen[-1][2] == "OK"
            # the request passed a, b, c on its way out; the server's handler saw x-a as "1"
            if name == "Unary":
                assert got == b"hi<a><b><c>|1<c><b><a>"
        if client == "fastnet":
            inner.close()


def test_client_metadata_logging_and_retry_after_the_pushback():
    clock = FakeClock()
    waits = []

    def sleep(seconds):  # the client's wait moves the server's clock
        waits.append(seconds)
        with clock.lock:
            clock.now += seconds
    server_chain = Chain([AuthInterceptor({"tok-a": "alice"}),
                          RateLimitInterceptor(1, burst=1, key="identity", clock=clock)])
    lines = []
    with serving(server_chain) as (_, target):
        with fastnet.grpc.Channel(target) as inner:
            bare = intercept_channel(inner, Chain([LoggingInterceptor("json", sink=lines.append)]),
                                     target=target)
            with pytest.raises(Exception) as info:
                bare.unary_unary(f"/{SERVICE}/WhoAmI")(b"", timeout=GUARD)
            assert status_code(info.value.code()) == StatusCode.UNAUTHENTICATED
            channel = intercept_channel(
                inner, Chain([LoggingInterceptor("json", sink=lines.append),
                              AddMetadata({"authorization": "Bearer tok-a"})]),
                retry=retry_on({Status.RESOURCE_EXHAUSTED}), target=target, sleep=sleep)
            who = channel.unary_unary(f"/{SERVICE}/WhoAmI")
            assert who(b"", timeout=GUARD).startswith(b"alice")
            assert who(b"", timeout=GUARD).startswith(b"alice")  # limited once, then retried
            assert waits == [pytest.approx(1.0)]  # the server's pushback, not the backoff
            no_retry = intercept_channel(inner, Chain([AddMetadata({"authorization": "Bearer tok-a"})]),
                                         retry=retry_on({Status.UNAVAILABLE}), sleep=sleep)
            with pytest.raises(Exception) as info:
                no_retry.unary_unary(f"/{SERVICE}/WhoAmI")(b"", timeout=GUARD)
            assert status_code(info.value.code()) == StatusCode.RESOURCE_EXHAUSTED
            assert len(waits) == 1
    records = [json.loads(line) for line in lines]
    assert [r["status"] for r in records] == ["UNAUTHENTICATED", "OK", "RESOURCE_EXHAUSTED", "OK"]
    assert all(r["peer"] == target and r["method"] == f"/{SERVICE}/WhoAmI" for r in records)


def test_retry_policy():
    policy = retry_on({Status.UNAVAILABLE}, attempts=3, backoff=0.1)
    call = Call("grpc", "/m")
    call.status = Status.UNAVAILABLE
    assert [policy(call, n) for n in (1, 2, 3)] == [pytest.approx(0.1), pytest.approx(0.2), None]
    call.trailing_metadata = {"grpc-retry-pushback-ms": "250"}
    assert policy(call, 1) == pytest.approx(0.25)
    call.trailing_metadata = {"grpc-retry-pushback-ms": "soon"}
    assert policy(call, 1) is None  # malformed pushback: do not retry
    call.status = Status.NOT_FOUND
    assert policy(call, 1) is None
    with pytest.raises(ValueError):
        intercept_channel(None, Chain([AsyncRecorder("x", [])]))
