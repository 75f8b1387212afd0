"""The kata answered in the C engine (csrc/loop.c's fn_loop_http_kata):
the bytes Python writes, only what Python's session would answer the same
way, the session's limits; no subprocesses, so it also runs under ASan and
UBSan (tests/test_sanitized.py)."""
from __future__ import annotations

import re
import time

from http_helpers import Reader, connect, request, running_http


def _raw_response(reader: Reader) -> bytes:
    """One kata response's bytes as they came (Content-Length: 13)."""
    head = reader._until(b"\r\n\r\n") + b"\r\n\r\n"
    return head + reader._exactly(int(re.search(rb"Content-Length: (\d+)", head).group(1)))


def test_c_engine_answers_the_kata_itself_with_the_python_bytes(monkeypatch):
    """On the C engine the plain GET / never reaches Python (but the first
    of each second, which refreshes the reply's Date); its bytes are those
    the Python engine writes; what is not the plain kata goes to Python, in
    order; a connection given a split head is Python's from then on."""
    from fastnet.http import server as http_server
    calls = []
    feed = http_server.KataSession.feed
    monkeypatch.setattr(http_server.KataSession, "feed",
                        lambda self, data: calls.append(data) or feed(self, data))
    answers = {}
    for engine in ("python", "c"):
        with running_http(engine) as (server, port), connect(port) as s:
            reader = Reader(s)
            calls.clear()
            before = time.time()
            for _ in range(20):
                s.sendall(request())
                answers[engine] = _raw_response(reader)
            seconds = int(time.time()) - int(before) + 1
            if engine == "c":
                assert len(calls) <= seconds, calls
                date = re.search(rb"Date: ([^\r]*)", answers["c"]).group(1)
                assert answers["c"] == http_server._kata_reply().replace(
                    http_server.http_date(), date)
                calls.clear()
                s.sendall(request() + request("GET", "/missing") + request("HEAD", "/") + request())
                assert [reader.response(head_only=i == 2)[0] for i in range(4)] == [200, 404, 200, 200]
                assert len(calls) == 1 and calls[0].startswith(b"GET /missing")
                s.sendall(request()[:10])
                time.sleep(0.05)
                s.sendall(request()[10:])
                assert reader.response()[2] == b"Hello, World!"
                calls.clear()
                s.sendall(request())
                assert reader.response()[2] == b"Hello, World!" and len(calls) == 1
            else:
                assert len(calls) == 20
    def undated(data):
        return re.sub(rb"Date: [^\r]*\r\n", b"", data)
    assert undated(answers["c"]) == undated(answers["python"])


def test_c_engine_kata_keeps_the_sessions_limits():
    with running_http("c", max_header_bytes=200, max_request_line=50) as (server, port):
        with connect(port) as s:
            s.sendall(request("GET", "/", "X-Pad: " + "p" * 300))
            assert Reader(s).response()[0] == 431
        with connect(port) as s:
            s.sendall(request("GET", "/?" + "q" * 60))
            assert Reader(s).response()[0] == 414
        with connect(port) as s:
            s.sendall(request("GET", "/", "Connection: close"))
            reader = Reader(s)
            assert reader.response()[1]["connection"] == "close" and reader.closed()
