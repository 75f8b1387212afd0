"""HTTP/2 served on the seam, against peers nobody here wrote: curl
(prior knowledge and the h2c upgrade), nghttp, h2load (a bounded run), the
h2 package over a socket; fastnet's own clients (the asyncio stream client,
``fastnet.http.Client(http2=True)``, which also runs against nghttpd).
The control plane: drain as GOAWAY, PING keep-alive, REFUSED_STREAM and
GOAWAY rejections; streams of one connection run concurrently."""
from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import pytest

from fastnet import Server
from fastnet.codec.h2frame import Flag, Frame, FrameDecoder, FrameType, Setting, encode
from fastnet.codec.hpack import Encoder
from fastnet.errors import H2ErrorCode as E
from fastnet.errors import H2StreamReset
from fastnet.h2 import H2Server, open_connection, serve_streams
from fastnet.h2.connection import PREFACE
from fastnet.http import App, Client, Response

from h2_helpers import h2_until
from helpers import (AVAILABLE_ENGINES, GUARD, free_port, require_engine, running_server, serving,
                     wait_for)

ENGINES = AVAILABLE_ENGINES


def _app() -> App:
    app = App()

    @app.route("GET", "/")
    def hello(request):
        return Response(b"Hello, World!")

    @app.route("POST", "/echo")
    def echo(request):
        return Response(request.body, headers={"X-Version": request.version})

    @app.route("GET", "/big")
    def big(request):
        return Response(bytes(range(256)) * 1024)  # 256 KiB: past every window
    return app


def _async_app() -> App:
    app = App()

    @app.route("GET", "/")
    async def hello(request):
        await asyncio.sleep(0)
        return Response(b"Hello, async!")

    @app.route("POST", "/echo")
    async def echo(request):
        return Response(request.body)

    @app.route("GET", "/stream")
    async def stream(request):
        async def pieces():
            for i in range(50):
                yield b"%04d" % i * 1000
        return Response(pieces())
    return app


def curl(*args: str) -> tuple[str, int, bytes]:
    """curl's HTTP version, status and body."""
    out = subprocess.run(["curl", "-s", "-S", "--max-time", str(int(GUARD)), "-o", "-", "-w",
                          "\n%{http_version} %{http_code}", *args],
                         capture_output=True, timeout=GUARD + 5)
    assert out.returncode == 0, out.stderr
    body, _, tail = out.stdout.rpartition(b"\n")
    version, code = tail.decode().split()
    return version, int(code), body


# -- curl --------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("protocol", ["h2", "http"])
def test_curl_prior_knowledge_kata_200_and_404_for_get_and_post(engine: str, protocol: str) -> None:
    with running_server(engine, protocol) as (_, port):
        url = f"http://127.0.0.1:{port}"
        assert curl("--http2-prior-knowledge", url + "/") == ("2", 200, b"Hello, World!")
        version, status, body = curl("--http2-prior-knowledge", url + "/nope")
        assert (version, status) == ("2", 404) and body
        version, status, body = curl("--http2-prior-knowledge", "-d", "x=1", url + "/nope")
        assert (version, status) == ("2", 404) and body


@pytest.mark.parametrize("engine", ENGINES)
def test_curl_h2c_upgrade_and_http1_on_one_port(engine: str) -> None:
    with running_server(engine, "http", _app()) as (_, port):
        url = f"http://127.0.0.1:{port}"
        assert curl("--http2", url + "/") == ("2", 200, b"Hello, World!")      # Upgrade: h2c
        assert curl("--http1.1", url + "/") == ("1.1", 200, b"Hello, World!")
        assert curl("--http2-prior-knowledge", url + "/") == ("2", 200, b"Hello, World!")
        assert curl("--http2-prior-knowledge", "--data-binary", "posted", url + "/echo") == (
            "2", 200, b"posted")
        # An upgrade with a body is served as HTTP/1.1 (RFC 7540 3.2 allows it).
        assert curl("--http2", "--data-binary", "posted", url + "/echo") == ("1.1", 200, b"posted")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("app", ["sync", "async"])
def test_curl_bodies_past_every_window_both_ways(engine: str, app: str, tmp_path) -> None:
    upload = tmp_path / "upload"
    data = os.urandom(700_000)
    upload.write_bytes(data)
    handler = _app() if app == "sync" else _async_app()
    with running_server(engine, "h2", handler) as (_, port):
        url = f"http://127.0.0.1:{port}"
        assert curl("--http2-prior-knowledge", "--data-binary", f"@{upload}", url + "/echo") == (
            "2", 200, data)
        if app == "sync":
            assert curl("--http2-prior-knowledge", url + "/big")[2] == bytes(range(256)) * 1024
        else:
            body = curl("--http2-prior-knowledge", url + "/stream")[2]
            assert body == b"".join(b"%04d" % i * 1000 for i in range(50))


# -- nghttp and h2load ----------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_nghttp_many_streams_on_one_connection(engine: str) -> None:
    with running_server(engine, "h2", _app()) as (_, port):
        urls = ([f"http://127.0.0.1:{port}/?n={i}" for i in range(5)]
                + [f"http://127.0.0.1:{port}/big?n={i}" for i in range(3)])
        out = subprocess.run(["nghttp", "-n", "-s", "-t", str(int(GUARD)), *urls],
                             capture_output=True, timeout=GUARD + 5, text=True)
        assert out.returncode == 0, out.stderr
        # -s prints one line per stream: 8 streams answered on one connection.
        assert len(re.findall(r"^\s*\d+\s+\+\S+\s+\+\S+\s+\S+\s+200 ", out.stdout, re.M)) == 8, out.stdout


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("protocol", ["h2", "http"])
def test_h2load_bounded_run_without_errors(engine: str, protocol: str, tmp_path) -> None:
    body = tmp_path / "body"
    body.write_bytes(b"b" * 1024)
    with running_server(engine, protocol, _app()) as (_, port):
        for extra, path in (([], "/"), (["-d", str(body)], "/echo")):
            out = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10", *extra,
                                  f"http://127.0.0.1:{port}{path}"],
                                 capture_output=True, timeout=GUARD * 2, text=True)
            assert out.returncode == 0, out.stderr
            assert "2000 succeeded, 0 failed, 0 errored, 0 timeout" in out.stdout, out.stdout
            assert "status codes: 2000 2xx" in out.stdout, out.stdout


# -- the h2 package over a socket --------------------------------------------------------

def _h2_client(port: int) -> tuple[socket.socket, h2.connection.H2Connection]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def _h2_until(sock: socket.socket, conn: h2.connection.H2Connection, done) -> list:
    return h2_until(sock, conn, done, GUARD)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_h2_package_as_a_client_over_a_socket(engine: str) -> None:
    with running_server(engine, "h2", _app()) as (_, port):
        sock, conn = _h2_client(port)
        ids = []
        for path in ("/", "/big", "/nope"):
            stream_id = conn.get_next_available_stream_id()
            ids.append(stream_id)
            conn.send_headers(stream_id, [(":method", "GET"), (":scheme", "http"), (":path", path),
                                          (":authority", "x")], end_stream=True)
        sock.sendall(conn.data_to_send())
        events = _h2_until(sock, conn, lambda evs: len(
            [e for e in evs if isinstance(e, h2.events.StreamEnded)]) == 3)
        bodies = {i: b"" for i in ids}
        statuses = {}
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] += event.data
            elif isinstance(event, h2.events.ResponseReceived):
                statuses[event.stream_id] = dict(event.headers)[b":status"]
        assert statuses == {ids[0]: b"200", ids[1]: b"200", ids[2]: b"404"}
        assert bodies[ids[0]] == b"Hello, World!" and bodies[ids[1]] == bytes(range(256)) * 1024
        sock.close()


# -- the stream API: concurrency, flow control, cancellation ------------------------------

def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, GUARD))


@pytest.mark.parametrize("engine", ENGINES)
def test_streams_of_one_connection_run_concurrently(engine: str) -> None:
    # Stream A waits for stream B's request: if streams ran one at a time,
    # A would never finish.
    arrived: dict[str, asyncio.Event] = {}

    async def handler(stream):
        name = stream.path
        event = arrived.setdefault(name, asyncio.Event())
        event.set()
        if name == "/a":
            await asyncio.wait_for(arrived.setdefault("/b", asyncio.Event()).wait(), GUARD)
        stream.send_headers([(b":status", b"200")])
        await stream.send_data(name.encode(), end_stream=True)

    async def main(port):
        async with await open_connection("127.0.0.1", port) as client:
            a = await client.request(_get("/a"))
            await asyncio.sleep(0.05)
            b = await client.request(_get("/b"))
            bodies = [await s.read_all(100) for s in (a, b)]
            assert bodies == [b"/a", b"/b"]

    with running_server(engine, "h2", serve_streams(handler)) as (_, port):
        _run(main(port))


def _get(path: str, method: str = "GET") -> list[tuple[bytes, bytes]]:
    return [(b":method", method.encode()), (b":scheme", b"http"), (b":path", path.encode()),
            (b":authority", b"localhost")]


@pytest.mark.parametrize("engine", ENGINES)
def test_stream_bodies_stream_both_ways_with_flow_control(engine: str) -> None:
    # An echo that sends each piece as it reads it, with windows far smaller
    # than the body: both sides wait for each other's credit.
    total = 2_000_000
    seen_max = []

    async def handler(stream):
        stream.send_headers([(b":status", b"200")])
        async for piece in stream:
            seen_max.append(len(piece))
            await stream.send_data(piece)
        stream.send_trailers([(b"x-total", b"done")])

    async def main(port):
        settings = {Setting.INITIAL_WINDOW_SIZE: 16384}
        async with await open_connection("127.0.0.1", port, settings=settings) as client:
            payload = os.urandom(total)

            async def pieces():
                for at in range(0, total, 50_000):
                    yield payload[at:at + 50_000]
            stream = await client.request(_get("/echo", "POST"), pieces())
            headers = await stream.response()
            assert headers[0] == (b":status", b"200")
            got = await stream.read_all(total)
            assert got == payload and stream.trailers == [(b"x-total", b"done")]

    require_engine(engine)
    server = H2Server(engine=engine, stream_window=16384, connection_window=65535)
    listener = server.listen("127.0.0.1", 0, protocol="h2", handler=serve_streams(handler))
    with serving(server):
        _run(main(listener.port))
    assert max(seen_max) <= 16384  # never more than one window in flight to the app


@pytest.mark.parametrize("engine", ENGINES)
def test_a_client_reset_cancels_the_servers_stream(engine: str) -> None:
    cancelled = threading.Event()

    async def handler(stream):
        stream.send_headers([(b":status", b"200")])
        await stream.wait_cancelled()
        assert stream.cancelled and stream.reset_code == E.CANCEL
        cancelled.set()

    async def main(port):
        async with await open_connection("127.0.0.1", port) as client:
            stream = await client.request(_get("/"), None)
            await stream.response()
            stream.reset(E.CANCEL)
            await asyncio.get_running_loop().run_in_executor(None, cancelled.wait, GUARD)
            assert cancelled.is_set()

    with running_server(engine, "h2", serve_streams(handler)) as (_, port):
        _run(main(port))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failing_stream_handler_resets_only_its_stream(engine: str) -> None:
    async def handler(stream):
        if stream.path == "/fail":
            raise RuntimeError("boom")
        stream.send_headers([(b":status", b"200")], end_stream=True)

    async def main(port):
        async with await open_connection("127.0.0.1", port) as client:
            bad = await client.request(_get("/fail"))
            with pytest.raises(H2StreamReset) as info:
                await bad.response()
            assert info.value.error_code == E.INTERNAL_ERROR and info.value.remote
            good = await client.request(_get("/ok"))
            assert (await good.response())[0] == (b":status", b"200")

    with running_server(engine, "h2", serve_streams(handler)) as (_, port):
        _run(main(port))


# -- the control plane ------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_streams_past_max_concurrent_streams_are_refused(engine: str) -> None:
    release = threading.Event()

    async def handler(stream):
        await asyncio.get_running_loop().run_in_executor(None, release.wait, GUARD)
        stream.send_headers([(b":status", b"200")], end_stream=True)

    require_engine(engine)
    server = H2Server(engine=engine, max_concurrent_streams=2)
    listener = server.listen("127.0.0.1", 0, protocol="h2", handler=serve_streams(handler))
    with serving(server):
        sock, conn = _h2_client(listener.port)
        for _ in range(3):
            conn.send_headers(conn.get_next_available_stream_id(), _get("/"), end_stream=True)
        sock.sendall(conn.data_to_send())
        events = _h2_until(sock, conn, lambda evs: any(isinstance(e, h2.events.StreamReset) for e in evs))
        reset = [e for e in events if isinstance(e, h2.events.StreamReset)][0]
        assert reset.stream_id == 5 and reset.error_code == E.REFUSED_STREAM
        release.set()
        events = _h2_until(sock, conn, lambda evs: len(
            [e for e in evs if isinstance(e, h2.events.StreamEnded)]) == 2)
        sock.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_drain_sends_goaway_and_lets_open_streams_finish(engine: str) -> None:
    started = threading.Event()
    release = threading.Event()

    async def handler(stream):
        started.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, GUARD)
        stream.send_headers([(b":status", b"200")])
        await stream.send_data(b"finished", end_stream=True)

    require_engine(engine)
    server = Server(engine=engine)
    listener = server.listen("127.0.0.1", 0, protocol="h2", handler=serve_streams(handler))
    with serving(server):
        # Raw frames: the h2 package treats any GOAWAY as the end of everything.
        sock = socket.create_connection(("127.0.0.1", listener.port), timeout=GUARD)
        sock.sendall(PREFACE + encode(Frame(FrameType.SETTINGS))
                     + encode(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS | Flag.END_STREAM,
                                    Encoder().encode(_get("/")))))
        assert started.wait(GUARD)
        server.shutdown(timeout=GUARD)
        decoder = FrameDecoder()
        frames: list[Frame] = []
        deadline = time.monotonic() + GUARD
        while not any(f.type == FrameType.GOAWAY for f in frames):
            assert time.monotonic() < deadline
            frames += decoder.receive(sock.recv(65536))
        goaway = [f for f in frames if f.type == FrameType.GOAWAY][0]
        assert goaway.error_code == 0 and goaway.last_stream_id == 1
        release.set()
        while True:
            data = sock.recv(65536)
            if not data:
                break  # then the connection closes
            frames += decoder.receive(data)
        assert b"".join(f.data for f in frames if f.type == FrameType.DATA) == b"finished"
        assert [f for f in frames if f.type == FrameType.DATA][-1].flags & Flag.END_STREAM
        sock.close()


def _probed_and_answered(port: int) -> None:
    """An HTTP/2 connection that stays silent is sent our PING probe; once
    it is answered the connection is still served."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    sock.sendall(PREFACE + encode(Frame(FrameType.SETTINGS)))
    decoder = FrameDecoder()
    frames: list[Frame] = []
    deadline = time.monotonic() + GUARD
    while not any(f.type == FrameType.PING and not f.flags & Flag.ACK for f in frames):
        assert time.monotonic() < deadline
        frames += decoder.receive(sock.recv(65536))
    ping = [f for f in frames if f.type == FrameType.PING][0]
    assert ping.data == b"fastnet!"
    sock.sendall(encode(Frame(FrameType.PING, flags=Flag.ACK, data=ping.data)))
    sock.sendall(encode(Frame(FrameType.PING, data=b"12345678")))  # answered: still served
    while not any(f.type == FrameType.PING and f.flags & Flag.ACK for f in frames):
        frames += decoder.receive(sock.recv(65536))
    sock.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_keepalive_probes_are_pings(engine: str) -> None:
    with running_server(engine, "h2", _app(), keepalive_interval=0.2) as (_, port):
        _probed_and_answered(port)


@pytest.mark.parametrize("engine", ENGINES)
def test_connections_over_the_limit_get_goaway(engine: str) -> None:
    with running_server(engine, "h2", _app(), max_connections=1, backlog=0) as (server, port):
        first, conn = _h2_client(port)
        _h2_until(first, conn, lambda evs: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in evs))
        second, conn2 = _h2_client(port)
        events = _h2_until(second, conn2, lambda evs: any(
            isinstance(e, h2.events.ConnectionTerminated) for e in evs))
        goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)][0]
        assert goaway.error_code == E.REFUSED_STREAM and goaway.last_stream_id == 0
        first.close()
        second.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_protocol_error_closes_only_that_connection(engine: str) -> None:
    with running_server(engine, "h2", _app()) as (server, port):
        bad = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        bad.sendall(PREFACE + encode(Frame(FrameType.SETTINGS)) + encode(Frame(FrameType.DATA, 1, 0, b"x")))
        decoder = FrameDecoder()
        frames: list[Frame] = []
        while True:
            data = bad.recv(65536)
            if not data:
                break
            frames += decoder.receive(data)
        bad.close()
        assert [f.error_code for f in frames if f.type == FrameType.GOAWAY] == [E.PROTOCOL_ERROR]
        wait_for(lambda: server.stats()["protocol_errors"] >= 1, "the protocol error counted")
        assert curl("--http2-prior-knowledge", f"http://127.0.0.1:{port}/")[1] == 200


# -- fastnet.http.Client(http2=True) ---------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_fastnet_http_client_over_http2_against_our_server(engine: str) -> None:
    with running_server(engine, "http", _app()) as (_, port):
        with Client(http2=True, timeout=GUARD) as client:
            url = f"http://127.0.0.1:{port}"
            response = client.get(url + "/")
            assert (response.status, response.version, response.body) == (200, "HTTP/2", b"Hello, World!")
            response = client.request("POST", url + "/echo", body=b"z" * 300_000)
            assert response.body == b"z" * 300_000 and response.headers["x-version"] == "HTTP/2"
            assert client.get(url + "/nope").status == 404


def test_fastnet_http_client_over_http2_against_nghttpd(tmp_path) -> None:
    (tmp_path / "index.html").write_bytes(b"served by nghttpd")
    big = os.urandom(400_000)
    (tmp_path / "big.bin").write_bytes(big)
    port = free_port()
    proc = subprocess.Popen(["nghttpd", "--no-tls", "-d", str(tmp_path), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(listening, "nghttpd listening")
        with Client(http2=True, timeout=GUARD) as client:
            url = f"http://127.0.0.1:{port}"
            response = client.get(url + "/index.html")
            assert (response.status, response.version, response.body) == (200, "HTTP/2", b"served by nghttpd")
            assert response.headers["server"].startswith("nghttpd")
            assert client.get(url + "/big.bin").body == big
            assert client.get(url + "/missing").status == 404
            assert client.request("POST", url + "/index.html", body=b"p" * 200_000).status == 200
    finally:
        proc.terminate()
        proc.wait(GUARD)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_complete_response_then_a_no_error_reset_stays_complete(engine: str) -> None:
    # RFC 9113 8.1: the server answers before the request's end, then
    # resets with NO_ERROR to stop the upload: the client keeps the
    # response (data and trailers) and its later sends are dropped.
    async def handler(stream):
        stream.send_headers([(b":status", b"200")])
        await stream.send_data(b"answered early")
        stream.send_trailers([(b"x-end", b"1")])
        stream.reset(E.NO_ERROR)

    async def main(port):
        async with await open_connection("127.0.0.1", port) as client:
            stream = await client.request(_get("/upload", "POST"), None, end_stream=False)
            await stream.send_data(b"part one")
            assert (await stream.response())[0] == (b":status", b"200")
            assert await stream.read_all(1000) == b"answered early"
            assert stream.trailers == [(b"x-end", b"1")]
            await asyncio.wait_for(_until_ended(stream), GUARD)
            assert not stream.cancelled and stream.reset_code is None
            await stream.send_data(b"dropped")  # the server wants no more: no error
            stream.end()
            assert await client.ping() >= 0  # the connection goes on

    with running_server(engine, "h2", serve_streams(handler)) as (_, port):
        _run(main(port))


async def _until_ended(stream) -> None:
    while not stream.ended:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("engine", ENGINES)
def test_keepalive_probes_are_pings_on_the_shared_http_port(engine: str) -> None:
    # --protocol http: a connection that became HTTP/2 is probed with PING;
    # an HTTP/1.1 one beside it is never sent a probe (HTTP/1.1 has none).
    with running_server(engine, "http", _app(), keepalive_interval=0.2) as (_, port):
        http1 = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        _probed_and_answered(port)
        # The HTTP/1.1 connection sat through those probe periods: its first
        # bytes are still the answer to its request.
        http1.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert http1.recv(65536).startswith(b"HTTP/1.1 200 ")
        http1.close()
