"""Request bodies as a stream (``@app.route(..., stream=True)``) on every
engine: Content-Length and chunked bodies read as they arrive, with curl,
h11 and raw sockets in pieces; trailers kept; backpressure (what the server
holds unread stays bounded while the route reads slowly); max_body still
413; Expect: 100-continue answered when the route starts reading; the
requests pipelined behind a streamed one answered in order after it."""
from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import time

import h11

from fastnet import limits
from fastnet.errors import HttpBodyTooLarge
from fastnet.http import App, Request, Response
from helpers import GUARD, wait_for
from http_helpers import Reader, connect, h11_response, request, running_http

BIG = 8 * 1024 * 1024
#: What a streamed body may hold unread: the high-water mark and the reads
#: already taken from the socket when the session paused it (one, measured). Far below BIG.
HELD_BOUND = limits.HTTP_STREAM_HIGH_WATER + 2 * limits.READ_CHUNK


def stream_app(seen: dict) -> App:
    app = App()

    @app.route("POST", "/sum", stream=True)
    async def digest(req: Request) -> Response:
        sha, n, chunks = hashlib.sha256(), 0, 0
        seen["body"] = req.body
        async for chunk in req.stream:
            seen["held"] = max(seen.get("held", 0), req.stream.buffered + len(chunk))
            sha.update(chunk)
            n += len(chunk)
            chunks += 1
            if req.headers.get("x-slow"):
                await asyncio.sleep(0.002)  # a slow reader: the server must stop reading
        trailers = req.trailers.items() if req.trailers is not None else []
        return Response(f"{n} {sha.hexdigest()} {trailers}")

    @app.route("POST", "/read", stream=True)
    async def whole(req: Request) -> bytes:
        return await req.stream.read()

    @app.route("POST", "/refuse", stream=True)
    async def refuse(req: Request) -> Response:
        seen["refused"] = True
        return Response(b"no\n", 403)

    @app.route("POST", "/watch", stream=True)
    async def watch(req: Request) -> str:
        try:
            async for _ in req.stream:
                seen["started"] = True
        except (HttpBodyTooLarge, ConnectionResetError) as error:
            seen["error"] = error
            raise
        return "all read"

    @app.route("POST", "/whole")
    def whole_body(req: Request) -> str:
        trailers = req.trailers.items() if req.trailers is not None else []
        return f"{len(req.body)} {trailers}"

    @app.route("GET", "/next")
    def next_one(req: Request) -> str:
        return "next"
    return app


def expected(data: bytes, trailers: list = []) -> bytes:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()} {trailers}".encode()


def test_route_with_stream_needs_async_def():
    import pytest
    with pytest.raises(TypeError, match="async def"):
        App().route("POST", "/x", stream=True)(lambda req: b"")


def test_curl_uploads_a_big_file_read_slowly_with_bounded_memory(engine, tmp_path):
    curl = shutil.which("curl")
    assert curl, "curl is a test dependency (the README's apt-get line)"
    data = os.urandom(BIG)
    path = tmp_path / "big"
    path.write_bytes(data)
    seen: dict = {}
    with running_http(engine, stream_app(seen), max_body=2 * BIG) as (server, port):
        for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
            seen.clear()
            done = subprocess.run([curl, "-sS", "--data-binary", f"@{path}", "-H", "X-Slow: 1",
                                   *extra, f"http://127.0.0.1:{port}/sum"],
                                  capture_output=True, timeout=GUARD * 2)
            assert done.returncode == 0, done.stderr
            assert done.stdout == expected(data), extra
            assert seen["body"] == b""
            assert 0 < seen["held"] <= HELD_BOUND, (extra, seen["held"])


def test_h11_chunked_upload_with_trailers_then_keep_alive(engine):
    with running_http(engine, stream_app({})) as (server, port), connect(port) as s:
        client = h11.Connection(h11.CLIENT)
        pieces = [b"first ", b"second ", b"x" * 70000]
        for target in ("/sum", "/whole"):
            s.sendall(client.send(h11.Request(method="POST", target=target, headers=[
                ("Host", "x"), ("Transfer-Encoding", "chunked")])))
            for piece in pieces:
                s.sendall(client.send(h11.Data(data=piece)))
            s.sendall(client.send(h11.EndOfMessage(headers=[("X-Sum", "abc"), ("X-N", "3")])))
            status, body = h11_response(client, s)
            assert status == 200
            trailers = [("X-Sum", "abc"), ("X-N", "3")]
            if target == "/sum":
                assert body == expected(b"".join(pieces), trailers)
            else:
                assert body == f"{sum(map(len, pieces))} {trailers}".encode()
            client.start_next_cycle()


def test_raw_socket_pieces_and_a_pipelined_request_behind(engine):
    body = b"0123456789" * 500
    chunked = (b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: v\r\n\r\n")
    with running_http(engine, stream_app({})) as (server, port), connect(port) as s:
        reader = Reader(s)
        data = request("POST", "/sum", body=body) + request("GET", "/next")
        cuts = [0, 20, len(data) - len(body) - 40, len(data) - 2000, len(data) - 10, len(data)]
        for a, b in zip(cuts, cuts[1:]):  # inside the head, the body, the next request
            s.sendall(data[a:b])
            time.sleep(0.02)
        assert reader.response()[2] == expected(body)
        assert reader.response()[2] == b"next"
        data = (request("POST", "/sum", "Transfer-Encoding: chunked") + chunked
                + request("GET", "/next"))
        start = data.index(b"\r\n\r\n") + 4
        for a, b in zip([0, start + 1, start + 9, start + 30], [start + 1, start + 9, start + 30, len(data)]):
            s.sendall(data[a:b])  # inside a size line, the data, the trailers
            time.sleep(0.02)
        assert reader.response()[2] == expected(b"hello world", [("X-T", "v")])
        assert reader.response()[2] == b"next"
        s.sendall(request("POST", "/read", body=b"all of it") + request("GET", "/next"))
        assert reader.response()[2] == b"all of it"
        assert reader.response()[2] == b"next"


def test_streamed_body_over_max_body_is_413(engine):
    seen: dict = {}
    with running_http(engine, stream_app(seen), max_body=1000) as (server, port):
        with connect(port) as s:  # declared too large: refused before the route runs
            s.sendall(request("POST", "/watch", "Content-Length: 1001"))
            reader = Reader(s)
            assert reader.response()[0] == 413
            assert reader.closed() and "started" not in seen
        with connect(port) as s:  # chunked: found out while the route reads
            reader = Reader(s)
            s.sendall(request("POST", "/watch", "Transfer-Encoding: chunked")
                      + b"200\r\n" + b"a" * 512 + b"\r\n")
            wait_for(lambda: seen.get("started"), "the route reading")
            s.sendall(b"200\r\n" + b"b" * 512 + b"\r\n")
            status, headers, body = reader.response()
            assert (status, headers["connection"]) == (413, "close"), body
            assert reader.closed()
            wait_for(lambda: isinstance(seen.get("error"), HttpBodyTooLarge), "the route told")


def test_expect_100_continue_waits_for_the_route_to_read(engine):
    seen: dict = {}
    with running_http(engine, stream_app(seen)) as (server, port):
        with connect(port) as s:
            reader = Reader(s)
            s.sendall(request("POST", "/sum", "Expect: 100-continue", "Content-Length: 5"))
            assert reader.response()[0] == 100
            s.sendall(b"hello")
            assert reader.response()[2] == expected(b"hello")
        with connect(port) as s:  # a route that answers unread: no 100, then the close
            reader = Reader(s)
            s.sendall(request("POST", "/refuse", "Expect: 100-continue", "Content-Length: 5"))
            status, headers, _ = reader.response()
            assert (status, headers["connection"]) == (403, "close")
            assert reader.closed() and seen["refused"]


def test_connection_gone_mid_body_tells_the_route(engine):
    seen: dict = {}
    with running_http(engine, stream_app(seen)) as (server, port):
        with connect(port) as s:
            s.sendall(request("POST", "/watch", "Content-Length: 100000") + b"x" * 1000)
            wait_for(lambda: seen.get("started"), "the route reading")
        wait_for(lambda: isinstance(seen.get("error"), ConnectionResetError), "the route told")
        wait_for(lambda: server.stats()["open"] == 0 if "open" in server.stats() else True,
                 "the connection closed")
