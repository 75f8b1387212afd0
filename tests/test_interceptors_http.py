"""Interceptors on the HTTP app over real sockets, every engine, with
requests and curl as clients: the order a chain of three sees, 401/403/429
with Retry-After, streamed bodies ending the call, an interceptor's
failure as a 500 for that request alone."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading

import pytest
import requests

from fastnet.http import App, HttpServer, Request, Response
from fastnet.interceptors import (AuthInterceptor, Chain, Interceptor, LoggingInterceptor,
                                  RateLimitInterceptor, Status, current_call, intercept)
from fastnet.interceptors.http import from_http_status, intercept_app
from helpers import GUARD, require_engine, serving


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
        self.seen.append((self.name, "before", call.method, call.metadata.get("x-trace")))
        call.metadata[f"x-{self.name}"] = self.name

    def on_request(self, call, message):
        self.seen.append((self.name, "request", type(message).__name__))
        return message

    def on_response(self, call, message):
        self.seen.append((self.name, "response", message.status))
        message.headers.add("X-Seen-By", self.name)
        return message

    def after(self, call):
        self.seen.append((self.name, "after", call.status.name, call.protocol_status,
                          call.bytes_in, call.bytes_out))


class AsyncRecorder(Recorder):
    async def before(self, call):
        await asyncio.sleep(0)
        super().before(call)


def make_app(is_async=False):
    app = App()

    if is_async:
        @app.route("POST", "/echo")
        async def echo(req: Request) -> Response:
            await asyncio.sleep(0)
            return Response(req.body + b"|" + ",".join(req.headers.get_all("x-b")).encode())
    else:
        @app.route("POST", "/echo")
        def echo(req: Request) -> Response:
            return Response(req.body + b"|" + ",".join(req.headers.get_all("x-b")).encode())

    @app.route("GET", "/whoami")
    def whoami(req: Request) -> str:
        return str(current_call().identity)

    @app.route("GET", "/stream")
    def stream(req: Request) -> Response:
        return Response(iter([b"one ", b"two ", b"three"]))

    @app.route("GET", "/boom")
    def boom(req: Request) -> Response:
        raise RuntimeError("boom")
    return app


def start(engine, chain, app):
    require_engine(engine)
    server = HttpServer(engine=engine)
    listener = server.listen("127.0.0.1", 0, protocol=intercept("http", chain), handler=app)
    return server, f"http://127.0.0.1:{listener.port}"


@pytest.mark.parametrize("kind", ["plain", "async-interceptor", "async-app"])
def test_three_interceptors_in_order(engine, kind):
    seen = []
    middle = AsyncRecorder("b", seen) if kind == "async-interceptor" else Recorder("b", seen)
    chain = Chain([Recorder("a", seen), middle, Recorder("c", seen)])
    server, url = start(engine, chain, make_app(is_async=kind == "async-app"))
    with serving(server), requests.Session() as http:
        reply = http.post(url + "/echo", data=b"hello", headers={"X-Trace": "t1"}, timeout=GUARD)
        assert reply.status_code == 200 and reply.content == b"hello|b"  # the header b added
        assert reply.headers["X-Seen-By"] == "c, b, a"
        assert [s[:2] for s in seen] == [
            ("a", "before"), ("b", "before"), ("c", "before"),
            ("a", "request"), ("b", "request"), ("c", "request"),
            ("c", "response"), ("b", "response"), ("a", "response"),
            ("c", "after"), ("b", "after"), ("a", "after")]
        assert seen[0] == ("a", "before", "POST /echo", "t1")
        assert seen[-1] == ("a", "after", "OK", 200, 5, 7)
        seen.clear()
        stream = http.get(url + "/stream", timeout=GUARD)
        assert stream.content == b"one two three"
        # the streamed call ends with its body: after ran once, every chunk counted
        assert [s for s in seen if s[1] == "after"][-1] == ("a", "after", "OK", 200, 0, 13)
        seen.clear()
        missing = http.get(url + "/nothing", timeout=GUARD)
        assert missing.status_code == 404
        assert seen[-1][:4] == ("a", "after", "NOT_FOUND", 404)


class Boom(Interceptor):
    def before(self, call):
        if "x-boom" in call.metadata:
            raise RuntimeError("interceptor bug")


def test_a_raising_interceptor_is_a_500_for_that_request_alone(engine):
    seen = []
    server, url = start(engine, Chain([Recorder("a", seen), Boom()]), make_app())
    with serving(server), requests.Session() as http:
        failed = http.get(url + "/whoami", headers={"X-Boom": "1"}, timeout=GUARD)
        assert failed.status_code == 500 and b"interceptor bug" not in failed.content
        assert seen[-1][:4] == ("a", "after", "INTERNAL", 500)
        assert http.get(url + "/whoami", timeout=GUARD).text == "None"  # same connection
        # the app's own exception: 500 and the connection closes, as without interceptors
        broken = http.get(url + "/boom", timeout=GUARD)
        assert broken.status_code == 500 and broken.headers["Connection"] == "close"
        assert seen[-1][:4] == ("a", "after", "UNKNOWN", 500)


def test_builtins_over_http(engine):
    clock = FakeClock()
    lines: list[str] = []
    chain = Chain([LoggingInterceptor("json", sink=lines.append),
                   AuthInterceptor({"tok-a": "alice", "tok-b": "bob"},
                                   allow={"POST *": {"alice"}}, public=["GET /health"]),
                   RateLimitInterceptor(1, burst=1, key="identity", clock=clock)])
    app = make_app()

    @app.route("GET", "/health")
    def health(req: Request) -> str:
        return "ok"
    server, url = start(engine, chain, app)
    alice = {"Authorization": "Bearer tok-a"}
    with serving(server), requests.Session() as http:
        missing = http.get(url + "/whoami", timeout=GUARD)
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
        assert http.get(url + "/whoami", headers={"Authorization": "Bearer x"},
                        timeout=GUARD).status_code == 401
        assert http.get(url + "/health", timeout=GUARD).text == "ok"
        assert http.get(url + "/whoami", headers=alice, timeout=GUARD).text == "alice"
        denied = http.post(url + "/echo", data=b"x", headers={"X-API-Key": "tok-b"}, timeout=GUARD)
        assert denied.status_code == 403 and b"PERMISSION_DENIED" in denied.content
        limited = http.get(url + "/whoami", headers=alice, timeout=GUARD)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
        with clock.lock:
            clock.now += 1.0
        assert http.get(url + "/whoami", headers=alice, timeout=GUARD).text == "alice"
    records = [json.loads(line) for line in lines]
    assert [(r["method"], r["status"], r["code"]) for r in records] == [
        ("GET /whoami", "UNAUTHENTICATED", 401), ("GET /whoami", "UNAUTHENTICATED", 401),
        ("GET /health", "OK", 200), ("GET /whoami", "OK", 200),
        ("POST /echo", "PERMISSION_DENIED", 403), ("GET /whoami", "RESOURCE_EXHAUSTED", 429),
        ("GET /whoami", "OK", 200)]
    assert records[3]["identity"] == "alice" and records[3]["bytes_out"] == 5


def test_curl_sees_the_refusal(engine):
    curl = shutil.which("curl")
    assert curl, "curl is a test dependency (the README's apt-get line)"
    server, url = start(engine, Chain([RateLimitInterceptor(0.01, burst=1, key="peer")]), make_app())
    with serving(server):
        done = subprocess.run([curl, "-s", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} ",
                               url + "/whoami", url + "/whoami"],
                              capture_output=True, timeout=GUARD, text=True)
    assert done.stdout.split() == ["200", "429"]  # a token every 100 s: the second waits


def test_wrapping_an_app_directly_and_status_mapping():
    app = intercept_app(make_app(), Chain([AuthInterceptor({"k": "kim"})]))
    from fastnet.http import Headers
    request = Request("GET", "/whoami", Headers([("Authorization", "Bearer k")]))
    assert app(request).body == b"kim"
    refused = app(Request("GET", "/whoami", Headers()))
    assert refused.status == 401
    assert [from_http_status(s) for s in (200, 301, 400, 401, 403, 404, 418, 429, 500, 503)] == [
        Status.OK, Status.OK, Status.INVALID_ARGUMENT, Status.UNAUTHENTICATED,
        Status.PERMISSION_DENIED, Status.NOT_FOUND, Status.FAILED_PRECONDITION,
        Status.RESOURCE_EXHAUSTED, Status.INTERNAL, Status.UNAVAILABLE]


def test_http2_serves_the_intercepted_app(engine):
    curl = shutil.which("curl")
    assert curl, "curl is a test dependency (the README's apt-get line)"
    require_engine(engine)
    lines = []
    app = intercept_app(make_app(), Chain([LoggingInterceptor("json", sink=lines.append),
                                           AuthInterceptor({"tok": "kim"})]))
    server = HttpServer(engine=engine)
    port = server.listen("127.0.0.1", 0, protocol="h2", handler=app).port
    with serving(server):
        out = []
        for headers in ([], ["-H", "Authorization: Bearer tok"]):
            done = subprocess.run([curl, "-s", "--http2-prior-knowledge", "-w", " %{http_code}",
                                   *headers, f"http://127.0.0.1:{port}/whoami"],
                                  capture_output=True, timeout=GUARD, text=True)
            out.append(done.stdout.split()[-1])
            if headers:
                assert done.stdout.startswith("kim ")
    assert out == ["401", "200"]
    assert [json.loads(line)["status"] for line in lines] == ["UNAUTHENTICATED", "OK"]
