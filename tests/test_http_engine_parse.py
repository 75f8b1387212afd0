"""Simple HTTP/1.1 requests parsed in the C engine's poll (csrc/loop.c's
fn_loop_http, Engine.serve_http) for a plain app: the app is called with
the words C found, what is not simple goes to feed as before, in order,
and the engine is offered the connection again once the session holds
nothing. Every engine writes the same bytes (the others parse in Python).
No subprocesses, so it also runs under ASan and UBSan
(tests/test_sanitized.py)."""
from __future__ import annotations

import time

from fastnet.http import App, Request, Response
from http_helpers import Reader, connect, request, running_http


def _app() -> App:
    app = App()

    @app.route("GET", "/")
    def hello(req: Request) -> Response:
        return Response(b"Hello, World!", content_type="text/plain")

    @app.route("GET", "/items/{id}")
    def item(req: Request) -> Response:
        return Response(f"item {req.params['id']} q={req.query} h={req.headers.get('x-h')}")

    @app.route("POST", "/echo")
    def echo(req: Request) -> Response:
        return Response(req.body, headers={"X-Method": req.method})

    @app.route("GET", "/stream")
    def stream(req: Request) -> Response:
        return Response(iter([b"one ", b"two"]), content_type="text/plain")

    @app.route("GET", "/boom")
    def boom(req: Request) -> Response:
        raise RuntimeError("boom")
    return app


def _exchange(sock, reader: Reader, data: bytes, heads: list[bool], pieces: int = 1) -> list[tuple]:
    """Send data (in pieces, with pauses) and read one response per entry
    of heads (True: a HEAD's, no body)."""
    cut = [len(data) * i // pieces for i in range(pieces + 1)]
    for a, b in zip(cut, cut[1:]):
        sock.sendall(data[a:b])
        if pieces > 1:
            time.sleep(0.03)
    return [reader.response(head_only=h) for h in heads]


def _conversation(engine: str, calls: list[tuple[str, bytes]]) -> list[tuple]:
    """One keep-alive connection's exchanges; every response read."""
    answers: list[tuple] = []
    with running_http(engine, _app()) as (server, port), connect(port) as s:
        reader = Reader(s)
        steps = [
            ("first", request(), [False], 1),
            ("plain", request(), [False], 1),
            ("query", request("GET", "/items/7?x=1", "X-H: v"), [False], 1),
            ("mixed", request() + request("GET", "/items/8") + request("HEAD", "/")
             + request("GET", "/missing") + request("POST", "/echo", body=b"posted")
             + request(), [False, False, True, False, False, False], 1),
            ("again", request(), [False], 1),
            ("stream", request("GET", "/stream") + request(), [False, False], 1),
            ("after-stream", request(), [False], 1),
            ("split", request("GET", "/items/9"), [False], 2),
            ("after-split", request(), [False], 1),
            ("bad-tail", request() + b"BAD LINE\r\n\r\n", [False, False], 1),
        ]
        for name, data, heads, pieces in steps:
            calls.append(("step", name.encode()))
            answers.append((name, _exchange(s, reader, data, heads, pieces)))
        assert reader.closed()  # the 400 closed it
    return answers


def test_the_c_engine_parses_simple_requests_for_the_app(engine, monkeypatch):
    """On the C engine, after a connection's first read, a read of simple
    requests reaches the app through serve_simple (no feed); a read with
    anything else goes to feed from its first other head on, in order;
    the engine takes the connection again once the session holds nothing
    (after a POST, an iterator body, a split head). The other engines
    parse in Python (feed only). The responses are the same everywhere."""
    from fastnet.http import server as http_server
    reference = _conversation("python", [])
    calls: list[tuple[str, bytes]] = []
    feed, simple = http_server.HttpSession.feed, http_server.HttpSession.serve_simple
    inside = [0]  # feed's own calls of serve_simple are not the engine's

    def feeding(self, data):  # type: ignore[no-untyped-def]
        calls.append(("feed", data))
        inside[0] += 1
        try:
            return feed(self, data)
        finally:
            inside[0] -= 1
    monkeypatch.setattr(http_server.HttpSession, "feed", feeding)

    def serving(self, data, *words):  # type: ignore[no-untyped-def]
        if not inside[0]:
            calls.append(("simple", data))
        return simple(self, data, *words)
    monkeypatch.setattr(http_server.HttpSession, "serve_simple", serving)
    answers = _conversation(engine, calls)
    def undated(conversation: list[tuple]) -> list[tuple]:
        return [(name, [(st, {k: v for k, v in h.items() if k != "date"}, b) for st, h, b in got])
                for name, got in conversation]
    assert undated(answers) == undated(reference)
    statuses = {name: [st for st, _, _ in got] for name, got in answers}
    assert statuses["mixed"] == [200, 200, 200, 404, 200, 200]
    assert statuses["bad-tail"] == [200, 400]
    assert answers[5][1][0][2] == b"one two"
    assert answers[2][1][0][2] == b"item 7 q=x=1 h=v"
    kinds: dict[str, list[str]] = {}
    step = ""
    for kind, data in calls:
        if kind == "step":
            step = data.decode()
            kinds[step] = []
        else:
            kinds[step].append(kind if kind == "feed" else "simple " + data.split(b" ", 2)[1].decode())
    if engine != "c":
        assert all(set(k) == {"feed"} for k in kinds.values()), kinds
        return
    assert kinds["first"] == ["feed"]  # the first read decides HTTP/1.1 or HTTP/2
    assert kinds["plain"] == ["simple /"]
    assert kinds["query"] == ["simple /items/7?x=1"]
    # C took the leading simple ones (HEAD and a miss are simple too);
    # the POST and all after it went to feed.
    assert kinds["mixed"] == ["simple /", "feed"]
    assert [d for k, d in calls if k == "simple"][2].count(b"\r\n\r\n") == 4
    assert kinds["again"] == ["simple /"]
    # The iterator body's request and the one behind it: one read, C's.
    assert kinds["stream"] == ["simple /stream"]
    assert kinds["after-stream"] == ["simple /"]
    assert kinds["split"] == ["feed", "feed"]
    assert kinds["after-split"] == ["simple /"]
    assert kinds["bad-tail"] == ["simple /", "feed"]


def test_many_pipelined_requests_in_one_read_are_all_answered_in_order(engine):
    """More records than the engine's first word array holds (it grows),
    and a read with more than a round keeps (the rest is feed's): every
    request answered, in order."""
    many = b"".join(request("GET", f"/items/{i}", "A: 1", "B: 2", "C: 3", "X-H: h")
                    for i in range(300))
    tiny = request() * 9000  # ~250 KiB: more words than one round keeps
    with running_http(engine, _app()) as (server, port), connect(port) as s:
        reader = Reader(s)
        s.sendall(request())
        assert reader.response()[2] == b"Hello, World!"
        s.sendall(many)
        for i in range(300):
            assert reader.response()[2] == f"item {i} q= h=h".encode()
        s.sendall(tiny + request("GET", "/items/last"))
        for _ in range(9000):
            assert reader.response()[2] == b"Hello, World!"
        assert reader.response()[2] == b"item last q= h=None"


def test_a_failing_route_on_a_parsed_request_is_500_and_closes(engine):
    with running_http(engine, _app()) as (server, port), connect(port) as s:
        reader = Reader(s)
        for _ in range(2):
            s.sendall(request())
            assert reader.response()[0] == 200
        s.sendall(request("GET", "/boom") + request())
        status, headers, _ = reader.response()
        assert (status, headers["connection"]) == (500, "close")
        assert reader.closed()


def test_parsed_requests_keep_the_sessions_limits(engine):
    """A head over the server's limits is not simple: feed answers 414/431."""
    with running_http(engine, _app(), max_header_bytes=200, max_request_line=50) as (server, port):
        for data, status in ((request("GET", "/", "X-Pad: " + "p" * 300), 431),
                             (request("GET", "/?" + "q" * 60), 414)):
            with connect(port) as s:
                reader = Reader(s)
                for _ in range(2):
                    s.sendall(request())
                    assert reader.response()[0] == 200
                s.sendall(request() + data)
                assert reader.response()[0] == 200
                got, headers, _ = reader.response()
                assert (got, headers["connection"]) == (status, "close")
                assert reader.closed()


def test_a_constant_response_is_written_anew_once_its_fields_change(engine):
    """A route answering with one Response object: the same bytes each
    time (the last reply kept), until its headers are read and changed."""
    shared = Response(b"same")
    assert shared._headers is None  # made when first read
    app = App()

    @app.route("GET", "/")
    def constant(req: Request) -> Response:
        return shared
    with running_http(engine, app) as (server, port), connect(port) as s:
        reader = Reader(s)
        for _ in range(3):
            s.sendall(request())
            status, headers, body = reader.response()
            assert (status, headers["content-type"], body) == (200, "text/plain", b"same")
            assert "x-added" not in headers
        shared.headers.add("X-Added", "1")
        s.sendall(request())
        status, headers, body = reader.response()
        assert (headers["x-added"], headers["content-type"], body) == ("1", "text/plain", b"same")
    assert [tuple(f) for f in Response(b"").headers] == []
    assert Response(b"x", content_type="a/b").headers.get("content-type") == "a/b"
