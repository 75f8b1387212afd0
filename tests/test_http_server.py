"""The HTTP/1.1 server (``--protocol http``) on every engine: the kata,
keep-alive, pipelining, HEAD, 100-continue, HTTP/1.0, bodies both ways,
every bad-input case with its status (that connection alone closed), the
header timeout, overload and the graceful drain; curl, h11, requests and
urllib as clients."""
from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import threading
import time
import types
import urllib.request

import h11
import pytest
import requests

from fastnet import limits
from fastnet.http import App, Request, Response
from helpers import GUARD, require_engine, wait_for
from http_helpers import Reader, connect, h11_response, request, running_http

DATE = re.compile(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")


def echo_app() -> App:
    app = App()

    @app.route("POST", "/echo")
    def echo(req: Request) -> Response:
        return Response(req.body, headers={"X-Method": req.method})

    @app.route("GET", "/items/{id}")
    def item(req: Request) -> Response:
        return Response(f"item {req.params['id']} q={req.query}")

    @app.route("GET", "/stream")
    def stream(req: Request) -> Response:
        return Response(iter([b"one ", b"two ", b"three"]), content_type="text/plain")

    @app.route("GET", "/boom")
    def boom(req: Request) -> Response:
        raise RuntimeError("boom")

    @app.route("GET", "/headers")
    def headers(req: Request) -> str:
        return ",".join(req.headers.get_all("x-multi")) + "|" + str(req.headers.get("X-ONE"))
    return app


# -- the kata -----------------------------------------------------------------

def test_kata_with_curl_v(engine):
    curl = shutil.which("curl")
    assert curl, "curl is a test dependency (the README's apt-get line)"
    with running_http(engine) as (server, port):
        done = subprocess.run([curl, "-sv", f"http://127.0.0.1:{port}/"],
                              capture_output=True, timeout=GUARD, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "Hello, World!"
        assert "< HTTP/1.1 200 OK" in done.stderr
        assert "< Content-Length: 13" in done.stderr
        assert "< Content-Type: text/plain" in done.stderr
        assert re.search(r"< Date: \w{3}, ", done.stderr)
        done = subprocess.run([curl, "-sv", f"http://127.0.0.1:{port}/missing"],
                              capture_output=True, timeout=GUARD, text=True)
        assert "< HTTP/1.1 404 Not Found" in done.stderr and done.stdout == "Not Found\n"


def test_kata_in_three_pieces_with_pauses(engine):
    data = request("GET", "/")
    with running_http(engine) as (server, port), connect(port) as s:
        for piece in (data[:5], data[5:-3], data[-3:]):
            s.sendall(piece)
            time.sleep(0.05)  # each piece its own read
        status, headers, body = Reader(s).response()
        assert (status, body) == (200, b"Hello, World!")
        assert headers["content-type"] == "text/plain" and headers["content-length"] == "13"
        assert DATE.match(headers["date"])


def test_split_at_every_byte_inside_the_blank_line(engine):
    data = request("GET", "/")
    with running_http(engine) as (server, port), connect(port) as s:
        reader = Reader(s)
        for cut in range(len(data) - 4, len(data)):
            s.sendall(data[:cut])
            time.sleep(0.02)
            s.sendall(data[cut:])
            assert reader.response()[2] == b"Hello, World!"


# -- keep-alive, pipelining, HEAD, HTTP/1.0 ------------------------------------

def test_keep_alive_and_pipelining_in_order(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        reader = Reader(s)
        s.sendall(request("GET", "/items/1"))
        assert reader.response()[2] == b"item 1 q="
        s.sendall(b"".join(request("GET", f"/items/{i}?n={i}") for i in range(2, 12)))
        for i in range(2, 12):
            assert reader.response()[2] == f"item {i} q=n={i}".encode()
    assert server.stats()["accepted"] == 1


def test_head_has_the_headers_without_the_body(engine):
    with running_http(engine) as (server, port), connect(port) as s:
        reader = Reader(s)
        s.sendall(request("HEAD", "/") + request("GET", "/"))
        status, headers, body = reader.response(head_only=True)
        assert (status, headers["content-length"], body) == (200, "13", b"")
        assert reader.response()[2] == b"Hello, World!"  # nothing of a body came between


def test_connection_close_is_honoured(engine):
    with running_http(engine) as (server, port), connect(port) as s:
        s.sendall(request("GET", "/", "Connection: close") + request("GET", "/"))
        reader = Reader(s)
        status, headers, _ = reader.response()
        assert headers["connection"] == "close"
        assert reader.closed()  # the second request was not answered


def test_http10_closes_unless_keep_alive(engine):
    with running_http(engine) as (server, port):
        with connect(port) as s:
            s.sendall(request(version="HTTP/1.0", host=None))
            reader = Reader(s)
            assert reader.response()[1]["connection"] == "close"
            assert reader.closed()
        with connect(port) as s:
            reader = Reader(s)
            for _ in range(2):
                s.sendall(request("GET", "/", "Connection: keep-alive", version="HTTP/1.0"))
                status, headers, body = reader.response()
                assert headers["connection"] == "keep-alive" and body == b"Hello, World!"


# -- bodies -----------------------------------------------------------------------

def test_content_length_body_in_pieces(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        data = request("POST", "/echo", body=b"x" * 5000)
        for i in range(0, len(data), 1500):
            s.sendall(data[i:i + 1500])
            time.sleep(0.01)
        assert Reader(s).response()[2] == b"x" * 5000


def test_chunked_request_with_trailers(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        s.sendall(request("POST", "/echo", "Transfer-Encoding: chunked")
                  + b"3\r\nabc\r\n4;ext=y\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n"
                  + request("GET", "/items/9"))
        reader = Reader(s)
        assert reader.response()[2] == b"abcdefg"
        assert reader.response()[2] == b"item 9 q="


def test_expect_100_continue(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        head = request("POST", "/echo", "Expect: 100-continue", body=b"hello")[:-5]
        s.sendall(head)
        reader = Reader(s)
        assert reader.response()[0] == 100  # before the body was sent
        s.sendall(b"hello")
        assert reader.response()[2] == b"hello"


def test_streamed_response_is_chunked(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        s.sendall(request("GET", "/stream") + request("GET", "/items/2"))
        reader = Reader(s)
        status, headers, body = reader.response()
        assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
        assert body == b"one two three"
        assert reader.response()[2] == b"item 2 q="


def test_a_slow_reader_of_an_endless_body_holds_the_server_to_a_bound(engine):
    """An endless iterator body read by a peer that reads nothing: the
    server stops drawing pieces once its queued output reaches
    HTTP_BODY_HIGH_WATER (what is drawn is bounded by that, a piece and the
    kernel's socket buffers), serves other connections meanwhile, draws
    again as the peer reads, and closes the iterator when the peer goes."""
    endless_body_against_a_slow_reader(engine, "/endless")


@pytest.mark.parametrize("engine_name", ["c", "python"])
def test_a_slow_reader_of_an_endless_async_body_holds_the_server_to_a_bound(engine_name):
    """The same with an async iterator body (on the event-loop engines: the
    threaded engine writes from the asyncio loop's thread synchronously, so
    a peer that reads nothing holds that thread in sendall, the slow-
    subscriber limitation ARCHITECTURE.md describes)."""
    require_engine(engine_name)
    endless_body_against_a_slow_reader(engine_name, "/aendless")


def endless_body_against_a_slow_reader(engine: str, target: str) -> None:
    piece = b"x" * 65536
    drawn, ended = [0], threading.Event()
    app = App()

    def endless(req: Request) -> Response:
        def pieces():
            try:
                while True:
                    drawn[0] += 1
                    yield piece
            finally:
                ended.set()
        return Response(pieces(), content_type="application/octet-stream")

    async def aendless(req: Request) -> Response:
        async def pieces():
            try:
                while True:
                    drawn[0] += 1
                    yield piece
            finally:
                ended.set()
        return Response(pieces(), content_type="application/octet-stream")

    # One route or the other: an async one makes the whole app async.
    app.route("GET", target)(endless if target == "/endless" else aendless)

    @app.route("GET", "/")
    def hello(req: Request) -> bytes:
        return b"hi"

    rcvbuf = 65536
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        sndbuf_max = int(f.read().split()[2])
    bound = limits.HTTP_BODY_HIGH_WATER + len(piece) + sndbuf_max + 4 * rcvbuf
    with running_http(engine, app) as (server, port):
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        slow.settimeout(GUARD)
        slow.connect(("127.0.0.1", port))
        slow.sendall(request("GET", target) + request("GET", "/"))
        seen = [-1, 0]  # the count last looked at, how many looks it held still

        def held_still() -> bool:
            assert drawn[0] * len(piece) <= bound, f"{drawn[0]} pieces drawn"
            seen[1] = seen[1] + 1 if drawn[0] == seen[0] else 0
            seen[0] = drawn[0]
            return drawn[0] > 0 and seen[1] >= 30  # 0.3 s without a piece drawn
        wait_for(held_still, "the endless body to stop being drawn")
        with connect(port) as other:
            other.sendall(request("GET", "/"))
            assert Reader(other).response()[2] == b"hi"
        before, got = drawn[0], 0
        while got < 4 * bound:  # the peer reads: the server draws again
            data = slow.recv(1 << 20)
            assert data
            got += len(data)
        assert drawn[0] > before
        slow.close()
        wait_for(ended.is_set, "the iterator to be closed")


def test_a_long_body_that_waited_for_the_peer_is_followed_by_the_requests_behind_it(engine):
    """A finite iterator body far past HTTP_BODY_HIGH_WATER, its reader
    reading only once the server has stopped drawing: the whole body, then
    the answers to the requests pipelined behind it (also those sent while
    it waited), in order, on the same connection."""
    pieces, drawn = 160, [0]  # 10 MiB: more than the kernel buffers hold
    app = App()

    @app.route("GET", "/long")
    def long(req: Request) -> Response:
        def body():
            for i in range(pieces):
                drawn[0] += 1
                yield bytes([65 + i % 26]) * 65536
        return Response(body())

    @app.route("GET", "/")
    def hello(req: Request) -> bytes:
        return b"hi"

    with running_http(engine, app) as (server, port), connect(port) as s:
        s.sendall(request("GET", "/long") + request("GET", "/"))
        seen = [-1, 0]

        def held_still() -> bool:
            seen[1] = seen[1] + 1 if drawn[0] == seen[0] else 0
            seen[0] = drawn[0]
            return drawn[0] > 0 and seen[1] >= 30
        wait_for(held_still, "the body to stop being drawn, or end")
        s.sendall(request("GET", "/", "X-Late: 1"))
        reader = Reader(s)
        status, headers, body = reader.response()
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == b"".join(bytes([65 + i % 26]) * 65536 for i in range(pieces))
        assert reader.response()[2] == b"hi"
        assert reader.response()[2] == b"hi"


def test_headers_are_case_insensitive_and_multi_valued(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        s.sendall(request("GET", "/headers", "X-Multi: a", "x-one: 1", "X-MULTI: b"))
        assert Reader(s).response()[2] == b"a,b|1"


def test_routes_404_405_and_a_failing_route_is_500(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        reader = Reader(s)
        s.sendall(request("GET", "/nope"))
        assert reader.response()[0] == 404
        s.sendall(request("GET", "/echo"))
        status, headers, _ = reader.response()
        assert (status, headers["allow"]) == (405, "POST")
        s.sendall(request("GET", "/boom"))
        status, headers, _ = reader.response()
        assert (status, headers["connection"]) == (500, "close")
        assert reader.closed()


def test_async_app_and_async_iterator_body(engine):
    app = App()

    @app.route("GET", "/")
    async def hello(req: Request) -> Response:
        await asyncio.sleep(0)

        async def pieces():
            for word in (b"async ", b"body"):
                yield word
        return Response(pieces())

    @app.route("POST", "/len")
    async def length(req: Request) -> str:
        return str(len(req.body))

    with running_http(engine, app) as (server, port), connect(port) as s:
        s.sendall(request("GET", "/") + request("POST", "/len", body=b"12345"))
        reader = Reader(s)
        assert reader.response()[2] == b"async body"
        assert reader.response()[2] == b"5"


# -- bad input -----------------------------------------------------------------

LONG_LINE = request("GET", "/" + "a" * 8200)
BAD = [
    (LONG_LINE, 414),
    (request("GET", "/", *[f"X-{i}: {'v' * 1000}" for i in range(70)]), 431),
    (request("GET", "/", *[f"X-{i}: v" for i in range(101)]), 431),
    (request("POST", "/echo", "Content-Length: 2000000"), 413),
    (request("POST", "/echo", "Transfer-Encoding: chunked") + b"200000\r\n", 413),
    (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", 400),
    (request("POST", "/echo", "Content-Length: 3", "Transfer-Encoding: chunked"), 400),
    (request("POST", "/echo", "Content-Length: 3", "Content-Length: 4"), 400),
    (request("POST", "/echo", "Content-Length: +3"), 400),
    (request("POST", "/echo", "Content-Length: 3, 4"), 400),
    (request("GET", "/", "X-A: b", " folded"), 400),
    (request("GET", "/", "Host : y", host=None), 400),
    (request("GET", "/", host=None), 400),
    (request("GET", "/", "Host: y"), 400),
    (request("POST", "/echo", "Transfer-Encoding: gzip"), 501),
    (request("POST", "/echo", "Transfer-Encoding: chunked, chunked"), 400),
    (request("POST", "/echo", "Transfer-Encoding: chunked", version="HTTP/1.0"), 400),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    (request("POST", "/echo", "Transfer-Encoding: chunked") + b"zz\r\n", 400),
]


@pytest.mark.parametrize("data,status", BAD, ids=[f"{s}-{i}" for i, (_, s) in enumerate(BAD)])
def test_bad_input_gets_its_status_and_only_that_connection_closes(engine, data, status):
    with running_http(engine, echo_app()) as (server, port):
        with connect(port) as other, connect(port) as s:
            other_reader = Reader(other)
            other.sendall(request("GET", "/items/1"))
            assert other_reader.response()[0] == 200
            reader = Reader(s)
            s.sendall(request("GET", "/items/0"))  # a keep-alive request first
            assert reader.response()[0] == 200
            s.sendall(data)
            got, headers, body = reader.response()
            assert (got, headers["connection"]) == (status, "close"), body
            assert reader.closed()
            other.sendall(request("GET", "/items/2"))
            assert other_reader.response()[2] == b"item 2 q="


@pytest.mark.parametrize("kind", ["app", "kata"])
@pytest.mark.parametrize("data,status", BAD, ids=[f"{s}-{i}" for i, (_, s) in enumerate(BAD)])
def test_bad_input_in_pieces_after_a_keep_alive_request(engine, kind, data, status):
    """Each bad input in three pieces with pauses (three reads), on a
    connection that has served requests, with an app (whose simple
    requests the C engine parses) and with the kata (whose plain GET / the
    C engine answers itself): its status, the close,
    and the other connection served on."""
    app, first = (echo_app(), "/items/0") if kind == "app" else (None, "/")
    with running_http(engine, app) as (server, port):
        with connect(port) as other, connect(port) as s:
            other_reader = Reader(other)
            other.sendall(request("GET", first))
            assert other_reader.response()[0] == 200
            reader = Reader(s)
            for _ in range(2):  # the second: parsed by the C engine for the app
                s.sendall(request("GET", first))
                assert reader.response()[0] == 200
            cuts = [0, max(1, len(data) // 3), max(2, 2 * len(data) // 3), len(data)]
            for a, b in zip(cuts, cuts[1:]):
                s.sendall(data[a:b])
                time.sleep(0.03)
            got, headers, body = reader.response()
            assert (got, headers["connection"]) == (status, "close"), body
            assert reader.closed()
            other.sendall(request("GET", first))
            assert other_reader.response()[0] == 200


def test_header_timeout_is_408(engine):
    with running_http(engine, header_timeout=0.3) as (server, port), connect(port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        status, headers, body = Reader(s).response()
        assert status == 408 and b"header_timeout" in body


def test_idle_keep_alive_connection_closes_at_idle_timeout(engine):
    with running_http(engine, idle_timeout=0.3) as (server, port), connect(port) as s:
        s.sendall(request())
        reader = Reader(s)
        assert reader.response()[0] == 200
        assert reader.closed()
    wait_for(lambda: server.stats().get("closed_idle") == 1, "the idle close")


def test_overload_is_503_with_retry_after(engine):
    with running_http(engine, max_connections=1, backlog=0) as (server, port):
        with connect(port) as first:
            first.sendall(request())
            assert Reader(first).response()[0] == 200
            with connect(port) as second:
                status, headers, _ = Reader(second).response()
                assert (status, headers["retry-after"]) == (503, "1")


def test_graceful_drain_finishes_in_flight_with_connection_close(engine):
    started, release = threading.Event(), threading.Event()
    app = App()

    @app.route("GET", "/slow")
    async def slow(req: Request) -> str:
        started.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, GUARD)
        return "finished"

    with running_http(engine, app) as (server, port), connect(port) as s, connect(port) as quiet:
        quiet.sendall(request("GET", "/nothing"))
        quiet_reader = Reader(quiet)
        assert quiet_reader.response()[0] == 404
        s.sendall(request("GET", "/slow"))
        assert started.wait(GUARD)
        server.shutdown()
        assert quiet_reader.closed()  # idle: closed at once
        release.set()
        reader = Reader(s)
        status, headers, body = reader.response()
        assert (status, body, headers["connection"]) == (200, b"finished", "close")
        assert reader.closed()


# -- other clients -----------------------------------------------------------

def test_h11_client(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        client = h11.Connection(h11.CLIENT)
        for i in range(3):
            s.sendall(client.send(h11.Request(method="POST", target="/echo",
                                              headers=[("Host", "x"), ("Content-Length", "2")])))
            s.sendall(client.send(h11.Data(data=b"%02d" % i)) + client.send(h11.EndOfMessage()))
            status, body = h11_response(client, s)
            assert status == 200
            assert body == b"%02d" % i
            client.start_next_cycle()


def test_requests_and_urllib(engine):
    with running_http(engine, echo_app()) as (server, port):
        base = f"http://127.0.0.1:{port}"
        with requests.Session() as session:
            for i in range(3):
                reply = session.post(base + "/echo", data=b"r%d" % i, timeout=GUARD)
                assert (reply.status_code, reply.content) == (200, b"r%d" % i)
            assert session.get(base + "/stream", timeout=GUARD).content == b"one two three"
            assert session.get(base + "/missing", timeout=GUARD).status_code == 404
        with urllib.request.urlopen(base + "/items/5?z=1", timeout=GUARD) as reply:
            assert reply.read() == b"item 5 q=z=1"
    assert server.stats()["accepted"] == 2


def test_cli_serves_the_kata_with_its_options():
    from helpers import cli_server
    with cli_server("--protocol", "http", "--max-request-line", "100") as (proc, port, line):
        assert "serving http" in line
        with connect(port) as s:
            s.sendall(request("GET", "/"))
            assert Reader(s).response()[2] == b"Hello, World!"
        with connect(port) as s:
            s.sendall(request("GET", "/" + "a" * 120))
            assert Reader(s).response()[0] == 414


def test_kata_fast_path_answers_as_the_general_path():
    """KataSession's prebuilt 200 is byte for byte what HttpSession writes
    for the same request (Date aside), and what it does not take (a
    pipelined pair, Connection: close, a split head, a bad one) goes the
    general way."""
    from fastnet.http.server import _DEFAULT_LIMITS, _KATA, HttpSession, KataSession

    class Conn:
        peer = ("127.0.0.1", 1)
        closed = False

        def __init__(self) -> None:
            self.id = 1
            self.out: list[bytes] = []
            self.timers: list[float] = []
            later = lambda delay, fn: self.timers.append(delay) or types.SimpleNamespace(
                cancel=lambda: None)
            # An engine without the C kata (Engine.serve_http_kata's default).
            self.server = types.SimpleNamespace(engine=types.SimpleNamespace(
                call_later=later, serve_http_kata=lambda *args: False,
                serve_http=lambda *args: False))

        def write(self, data: bytes) -> None:
            self.out.append(data)

        def close(self) -> None:
            pass

        def protocol_error(self, error: Exception) -> None:
            self.out.append(b"error %d" % error.status_hint)

    def undated(data):
        return re.sub(rb"Date: [^\r]*\r\n", b"", data or b"")

    cases = [request(), request() + request(), request("GET", "/", "Connection: close"),
             request("GET", "/x"), request("HEAD", "/"), b"GET / HTTP/1.1\r\nHost: x\r\n",
             b"GET /  HTTP/1.1\r\n\r\n"]
    for data in cases:
        fast_conn, slow_conn = Conn(), Conn()
        fast = KataSession(fast_conn, _KATA, _DEFAULT_LIMITS)
        slow = HttpSession(slow_conn, _KATA, _DEFAULT_LIMITS)
        assert undated(fast.feed(data)) == undated(slow.feed(data)), data
        assert [undated(o) for o in fast_conn.out] == [undated(o) for o in slow_conn.out]
        assert fast.buf == slow.buf
    split = KataSession(Conn(), _KATA, _DEFAULT_LIMITS)
    assert split.feed(b"GET / HT") is None and split.conn.timers == [60.0]
    assert undated(split.feed(b"TP/1.1\r\nHost: x\r\n\r\n")).endswith(b"Hello, World!")


@pytest.mark.parametrize("handler", ["kata", "app"])
def test_wrk_runs_without_errors(handler):
    wrk = shutil.which("wrk")
    assert wrk, "wrk is a test dependency (the README's apt-get line)"
    app = None
    if handler == "app":
        app = App()

        @app.route("GET", "/")
        def hello(req: Request) -> bytes:
            return b"Hello, World!"
    with running_http("c", app) as (server, port):
        done = subprocess.run([wrk, "-t1", "-c10", "-d1s", f"http://127.0.0.1:{port}/"],
                              capture_output=True, text=True, timeout=GUARD)
        assert done.returncode == 0, done.stderr
        assert re.search(r"\d+ requests in", done.stdout), done.stdout
        assert "Non-2xx" not in done.stdout and "Socket errors" not in done.stdout, done.stdout
    assert server.stats().get("protocol_errors", 0) == 0


def test_pipelined_good_then_bad_in_one_read(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        s.sendall(request("GET", "/items/1") + b"BAD REQUEST LINE\r\n\r\n")
        reader = Reader(s)
        assert reader.response()[2] == b"item 1 q="
        status, headers, _ = reader.response()
        assert (status, headers["connection"]) == (400, "close")
        assert reader.closed()


def test_streamed_response_with_connection_close_closes(engine):
    with running_http(engine, echo_app()) as (server, port), connect(port) as s:
        s.sendall(request("GET", "/stream", "Connection: close"))
        reader = Reader(s)
        status, headers, body = reader.response()
        assert (body, headers["connection"]) == (b"one two three", "close")
        assert reader.closed()



def test_simple_request_path_writes_what_the_general_path_writes():
    """HttpSession._simple (a whole bodiless keep-alive head, a lazy
    Request, a cached response head, no state-machine step) answers byte
    for byte as the general path does: the same requests fed whole (the
    quick way) and with their first byte alone first (the general way),
    every route kind, pipelined, then what only the general way takes."""
    import logging

    from fastnet.http.server import _DEFAULT_LIMITS, HttpSession

    app = echo_app()

    @app.route("GET", "/bytes")
    def raw(req: Request) -> bytes:
        return b"raw" if req.headers["host"] == "x" else b"wrong host"

    @app.route("GET", "/empty")
    def empty(req: Request) -> bytes:
        return b""

    @app.route("GET", "/own")
    def own(req: Request) -> Response:
        return Response(b"o", 201, {"Content-Length": "99", "X-A": "b", "Date": "no"})

    @app.route("GET", "/none")
    def none(req: Request) -> Response:
        return Response(b"", 204)

    @app.route("GET", "/crlf")
    def crlf(req: Request) -> Response:
        return Response(b"x", headers={"X-Bad": "a\r\nInjected: 1"})

    class Conn:
        peer = ("127.0.0.1", 1)
        closed = False
        id = 1
        server = types.SimpleNamespace(engine=types.SimpleNamespace(
            call_later=lambda delay, fn: types.SimpleNamespace(cancel=lambda: None),
            output_size=lambda conn: 0, serve_http=lambda *args: False))

        def __init__(self) -> None:
            self.out: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.out.append(data)

        def close(self) -> None:
            self.out.append(b"<close>")

        def protocol_error(self, error: Exception) -> None:
            self.out.append(b"<error %d>" % error.status_hint)

    def run(data: bytes, split: bool, draining: bool) -> list[bytes]:
        conn = Conn()
        session = HttpSession(conn, app, _DEFAULT_LIMITS)
        session.draining = draining
        for piece in ([data[:1], data[1:]] if split else [data]):
            reply = session.feed(piece)
            conn.out.append(reply or b"")
        return [re.sub(rb"Date: [^\r]*\r\n", b"", o) for o in conn.out if o]

    gets = ["/bytes", "/empty", "/own", "/none", "/items/3?q=1", "/stream", "/headers", "/nope",
            "/echo", "/crlf", "/boom"]
    cases = [request("GET", t, "X-Multi: m", "X-One: 1") for t in gets]
    cases += [request("HEAD", "/bytes"), request("GET", "/bytes") + request("GET", "/own"),
              request("GET", "/items/1") + request("POST", "/echo", body=b"hi") + request("GET", "/bytes"),
              request("GET", "/bytes") + b"BAD LINE\r\n\r\n", request("GET", "/bytes") + b"GET / HT",
              request("GET", "/bytes", "Connection: close") + request("GET", "/bytes"),
              request("GET", "/bytes", host=None), request("GET", "/bytes", version="HTTP/1.0")]
    general = []
    start = HttpSession._start
    HttpSession._start = lambda self, buf, head: general.append(1) or start(self, buf, head)
    try:
        run(request("GET", "/bytes") * 3, False, False)
        assert general == []  # the quick way took them all
        run(request("GET", "/bytes") * 3, True, False)
        assert general == [1, 1, 1]
    finally:
        HttpSession._start = start
    logging.disable(logging.ERROR)  # the failing routes log
    try:
        for data in cases:
            for draining in (False, True):
                assert run(data, False, draining) == run(data, True, draining), (data, draining)
    finally:
        logging.disable(logging.NOTSET)


def test_exact_route_finds_what_the_app_would_call():
    """App.exact_route (the simple request's routing by its raw line)
    returns the function App.__call__ would call for an exact route, None
    for what it must decide itself (patterns, queries, escapes, misses),
    and forgets what it kept when a route is added."""
    app = echo_app()

    @app.route("GET", "/plain")
    def plain(req: Request) -> bytes:
        return b"p"

    @app.route("*", "/any")
    def any_method(req: Request) -> bytes:
        return b"a"

    assert app.exact_route(b"GET /plain") is plain
    assert app.exact_route(b"GET /plain") is plain  # kept
    assert app.exact_route(b"HEAD /plain") is plain
    assert app.exact_route(b"DELETE /any") is any_method
    for line in (b"POST /plain", b"GET /items/1", b"GET /plain?x=1", b"GET /pl%61in", b"GET *",
                 b"GET http://h/plain", b"GET /nope"):
        assert app.exact_route(line) is None, line

    @app.route("POST", "/plain")
    def post(req: Request) -> bytes:
        return b"P"
    assert app.exact_route(b"POST /plain") is post

    class Wrapped(App):
        def __call__(self, request: Request):  # type: ignore[no-untyped-def]
            return b"wrapped"
    wrapped = Wrapped()
    wrapped.route("GET", "/")(plain)
    conn = types.SimpleNamespace(peer=("127.0.0.1", 1), closed=False, id=1,
                                 server=types.SimpleNamespace(engine=types.SimpleNamespace(
                                     serve_http=lambda *args: False)))
    # A subclass's own __call__ is called: the session does not route around it.
    from fastnet.http.server import _DEFAULT_LIMITS, HttpSession
    assert HttpSession(conn, wrapped, _DEFAULT_LIMITS)._routes is None
    assert HttpSession(conn, app, _DEFAULT_LIMITS)._routes is not None
    reply = HttpSession(conn, wrapped, _DEFAULT_LIMITS).feed(request("GET", "/"))
    assert reply.endswith(b"\r\n\r\nwrapped")


def test_a_simple_request_reads_as_any_request():
    """The simple request's lazy Request gives what a parsed Request gives,
    and takes assignments."""
    seen = []
    app = App()

    @app.route("GET", "/{name}")
    def show(req: Request) -> bytes:
        seen.append((req.method, req.target, req.path, req.query, req.version, req.body,
                     req.params, req.peer, req.headers.items(), req.trailers, req.stream))
        req.path = "/changed"
        req.params = {}
        seen.append((req.path, req.target, req.params))
        return b"ok"

    conn = types.SimpleNamespace(peer=("127.0.0.1", 7), closed=False, id=1,
                                 server=types.SimpleNamespace(engine=types.SimpleNamespace(
                                     serve_http=lambda *args: False)))
    from fastnet.http.server import _DEFAULT_LIMITS, HttpSession
    reply = HttpSession(conn, app, _DEFAULT_LIMITS).feed(
        request("GET", "/x%41?q=1", "X-A: b", host="h"))
    assert reply.endswith(b"\r\n\r\nok")
    assert seen == [("GET", "/x%41?q=1", "/xA", "q=1", "HTTP/1.1", b"", {"name": "xA"},
                     ("127.0.0.1", 7), [("Host", "h"), ("X-A", "b")], None, None),
                    ("/changed", "/x%41?q=1", {})]
