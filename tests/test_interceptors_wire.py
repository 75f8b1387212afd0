"""Interceptors on the wire protocol over real sockets, every engine, with
fastnet.wire's clients: the order a chain of three sees, each built-in,
an interceptor's failure ending that call alone."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading

import pytest

from fastnet import wire
from fastnet.errors import WireRemoteError
from fastnet.interceptors import (Abort, AuthInterceptor, Chain, Interceptor, LoggingInterceptor,
                                  RateLimitInterceptor, Status, current_call, intercept)
from fastnet.wire import ErrorCode
from helpers import GUARD, cli_server, require_engine, serving


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now


class Recorder(Interceptor):
    def __init__(self, name, seen):
        self.name, self.seen = name, seen

    def before(self, call):
        self.seen.append((self.name, "before", call.method, call.peer[0],
                          call.metadata.get("x-trace")))
        call.metadata[f"x-{self.name}"] = "1"

    def on_request(self, call, message):
        self.seen.append((self.name, "request", message))
        return message + [self.name]

    def on_response(self, call, message):
        self.seen.append((self.name, "response", message))
        return message + [self.name]

    def after(self, call):
        self.seen.append((self.name, "after", call.status.name, call.messages_in,
                          call.messages_out, call.bytes_in > 0, call.bytes_out > 0))


class AsyncRecorder(Recorder):
    async def before(self, call):
        await asyncio.sleep(0)
        super().before(call)


def handle(request, metadata):
    if request == ["boom", "a", "b", "c"]:
        raise KeyError("no such thing")
    return request + [sorted(k for k in metadata if k.startswith("x-"))]


async def ahandle(request, metadata):
    await asyncio.sleep(0)
    return handle(request, metadata)


def start(engine, chain, handler=handle):
    require_engine(engine)
    server = wire.make_server(wire.WireConfig(), engine=engine)
    listener = server.listen("127.0.0.1", 0, protocol=intercept("wire", chain), handler=handler)
    return server, listener.port


@pytest.mark.parametrize("kind", ["plain", "async-interceptor", "async-handler"])
def test_three_interceptors_in_order(engine, kind):
    seen = []
    middle = AsyncRecorder("b", seen) if kind == "async-interceptor" else Recorder("b", seen)
    chain = Chain([Recorder("a", seen), middle, Recorder("c", seen)])
    server, port = start(engine, chain, ahandle if kind == "async-handler" else handle)
    with serving(server), wire.connect("127.0.0.1", port) as client:
        got = client.call([], metadata={"method": "Echo", "x-trace": "t1"})
        assert got == ["a", "b", "c", ["x-a", "x-b", "x-c", "x-trace"], "c", "b", "a"]
        assert [s[:2] for s in seen] == [
            ("a", "before"), ("b", "before"), ("c", "before"),
            ("a", "request"), ("b", "request"), ("c", "request"),
            ("c", "response"), ("b", "response"), ("a", "response"),
            ("c", "after"), ("b", "after"), ("a", "after")]
        assert seen[0] == ("a", "before", "Echo", "127.0.0.1", "t1")
        assert seen[-1] == ("a", "after", "OK", 1, 1, True, True)
        # the handler's own exception: answered as without interceptors, status UNKNOWN
        seen.clear()
        with pytest.raises(WireRemoteError) as info:
            client.call(["boom"])
        assert info.value.code == ErrorCode.HANDLER and info.value.type_name == "KeyError"
        assert seen[-1][:3] == ("a", "after", "UNKNOWN")
        assert client.call([]) [:3] == ["a", "b", "c"]  # the connection goes on


class Boom(Interceptor):
    def before(self, call):
        if call.metadata.get("boom"):
            raise RuntimeError("interceptor bug")


def test_a_raising_interceptor_fails_that_call_alone(engine):
    server, port = start(engine, Chain([Boom()]))
    with serving(server), wire.connect("127.0.0.1", port) as client, \
            wire.connect("127.0.0.1", port) as other:
        with pytest.raises(WireRemoteError) as info:
            client.call([1], metadata={"boom": "yes"})
        assert info.value.code == ErrorCode.HANDLER
        assert info.value.fields["status"] == "INTERNAL"
        assert "interceptor bug" not in info.value.message  # its text stays on the server
        assert client.call([2]) == [2, []]
        assert other.call([3]) == [3, []]


def test_builtins_over_wire(engine):
    clock = FakeClock()
    lines: list[str] = []

    def whoami(request, metadata):
        return current_call().identity

    chain = Chain([LoggingInterceptor("json", sink=lines.append),
                   AuthInterceptor({"tok-a": "alice", "tok-b": "bob"},
                                   allow={"Admin*": {"alice"}}),
                   RateLimitInterceptor(2, burst=2, key="identity", clock=clock)])
    server, port = start(engine, chain, whoami)

    def refused(client, metadata):
        with pytest.raises(WireRemoteError) as info:
            client.call(1, metadata=metadata)
        assert info.value.code == ErrorCode.REFUSED
        return info.value

    with serving(server), wire.connect("127.0.0.1", port) as client:
        assert refused(client, {"method": "Get"}).fields["status"] == "UNAUTHENTICATED"
        wrong = refused(client, {"method": "Get", "authorization": "Bearer nope"})
        assert wrong.fields["status"] == "UNAUTHENTICATED" and "invalid" in wrong.message
        assert client.call(1, metadata={"method": "AdminReset", "authorization": "Bearer tok-a"}) == "alice"
        denied = refused(client, {"method": "AdminReset", "x-api-key": "tok-b"})
        assert denied.fields["status"] == "PERMISSION_DENIED"
        assert client.call(1, metadata={"method": "Get", "x-api-key": "tok-b"}) == "bob"
        assert client.call(1, metadata={"method": "Get", "x-api-key": "tok-b"}) == "bob"
        # the denied call never reached the limiter: bob has spent his two, alice one
        limited = refused(client, {"method": "Get", "x-api-key": "tok-b"})
        assert limited.fields["status"] == "RESOURCE_EXHAUSTED"
        assert limited.fields["retry_after"] == pytest.approx(0.5)
        assert client.call(1, metadata={"method": "Get", "x-api-key": "tok-a"}) == "alice"
        with clock.lock:
            clock.now += limited.fields["retry_after"]
        assert client.call(1, metadata={"method": "Get", "x-api-key": "tok-b"}) == "bob"
    records = [json.loads(line) for line in lines]
    assert [(r["method"], r["status"], r.get("identity")) for r in records] == [
        ("Get", "UNAUTHENTICATED", None), ("Get", "UNAUTHENTICATED", None),
        ("AdminReset", "OK", "alice"), ("AdminReset", "PERMISSION_DENIED", "bob"),
        ("Get", "OK", "bob"), ("Get", "OK", "bob"), ("Get", "RESOURCE_EXHAUSTED", "bob"), ("Get", "OK", "alice"),
        ("Get", "OK", "bob")]
    assert all(r["protocol"] == "wire" and r["peer"].startswith("127.0.0.1:") for r in records)
    ok = records[2]
    assert (ok["messages_in"], ok["messages_out"], ok["code"]) == (1, 1, 0)
    assert ok["bytes_in"] == 1 and ok["bytes_out"] == len(b"\xa5alice")
    assert records[0]["code"] == ErrorCode.REFUSED


def test_asyncio_client_and_v1_without_metadata(engine):
    chain = Chain([AuthInterceptor({"k"}, public=["call"])])  # a v1 request's method is "call"
    server, port = start(engine, chain, lambda request: request * 2)

    async def main():
        async with await wire.open_connection("127.0.0.1", port) as client:
            return await asyncio.gather(*(client.call(n) for n in range(5)))
    with serving(server):
        assert asyncio.run(main()) == [0, 2, 4, 6, 8]
        with wire.connect("127.0.0.1", port, max_version=1, hello=False) as v1:
            assert v1.call("ab") == "abab"


def test_a_handler_abort_is_its_status(engine):
    def handler(request):
        raise Abort(Status.NOT_FOUND, f"no {request}")
    server, port = start(engine, Chain([]), handler)
    with serving(server), wire.connect("127.0.0.1", port) as client:
        with pytest.raises(WireRemoteError) as info:
            client.call("x")
        assert (info.value.code, info.value.fields["status"]) == (ErrorCode.REFUSED, "NOT_FOUND")
        assert "no x" in info.value.message


# -- the command line ---------------------------------------------------------

def test_cli_wire_with_the_three_builtins(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# token identity [methods]\ntok-a alice\ntok-b bob Get*\n")
    with cli_server("--protocol", "wire", "--log-calls", "json", "--auth-tokens", str(tokens),
                    "--rate-limit", "2/m:2", "--rate-limit-by", "identity") as (proc, port, _):
        with wire.connect("127.0.0.1", port) as client:
            with pytest.raises(WireRemoteError) as info:
                client.call(1, metadata={"method": "Get"})
            assert info.value.fields["status"] == "UNAUTHENTICATED"
            with pytest.raises(WireRemoteError) as info:
                client.call(1, metadata={"method": "Put", "x-api-key": "tok-b"})
            assert info.value.fields["status"] == "PERMISSION_DENIED"
            for _ in range(2):
                assert client.call(7, metadata={"method": "Get", "x-api-key": "tok-b"}) == 7
            with pytest.raises(WireRemoteError) as info:
                client.call(1, metadata={"method": "Get", "x-api-key": "tok-b"})
            assert info.value.fields["status"] == "RESOURCE_EXHAUSTED"
            assert info.value.fields["retry_after"] > 0
            assert client.call(8, metadata={"method": "Put", "x-api-key": "tok-a"}) == 8
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=GUARD)
    records = [json.loads(line.split("fastnet.calls: ", 1)[1])
               for line in err.splitlines() if "fastnet.calls: " in line]
    assert [r["status"] for r in records] == ["UNAUTHENTICATED", "PERMISSION_DENIED", "OK", "OK",
                                              "RESOURCE_EXHAUSTED", "OK"]
    assert records[-1]["identity"] == "alice"


def test_cli_refuses_what_cannot_work(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("lonely\n")
    for args, complaint in (
            (["--protocol", "resp", "--log-calls", "json"], "no interceptor adapter"),
            (["--protocol", "wire", "--auth-tokens", str(bad)], "bad:1: expected TOKEN IDENTITY"),
            (["--protocol", "wire", "--auth-tokens", str(tmp_path / "none")], "No such file"),
            (["--protocol", "wire", "--rate-limit", "fast"], "is not a rate"),
            (["--protocol", "wire", "--log-calls-to", "x"], "needs --log-calls")):
        done = subprocess.run([sys.executable, "-m", "fastnet.serve", "--port", "0", *args],
                              capture_output=True, text=True, timeout=GUARD)
        assert done.returncode == 2 and complaint in done.stderr, (args, done.stderr)


def test_cli_log_calls_to_a_file(tmp_path):
    log = tmp_path / "calls.log"
    with cli_server("--protocol", "wire", "--log-calls", "text", "--log-calls-to", str(log)) \
            as (proc, port, _):
        with wire.connect("127.0.0.1", port) as client:
            for n in range(3):
                assert client.call(n, metadata={"method": f"m{n}"}) == n
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=GUARD)
    lines = log.read_text().splitlines()  # flushed at exit at the latest
    assert [line.split()[1] for line in lines] == ["method=m0", "method=m1", "method=m2"]
    assert all(" status=OK " in line for line in lines)
