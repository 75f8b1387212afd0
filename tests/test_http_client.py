"""The HTTP/1.1 client (fastnet.http.get, Client, python -m fastnet.http)
against servers nobody here wrote: http.server, nginx and uvicorn, started
on 127.0.0.1 (and ::1) by the tests; 200, 301, 404, chunked, keep-alive."""
from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from typing import Iterator

import pytest

from fastnet import http as fhttp
from fastnet.errors import HttpBodyTooLarge
from helpers import GUARD, wait_for
from http_helpers import running_http


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    ports: set[int] = set()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Handler.ports.add(self.client_address[1])
        if self.path == "/":
            self._send(200, b"hello from http.server")
        elif self.path == "/old":
            self.send_response(301)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"chunk one, ", b"chunk two"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(404, b"nothing here")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def stdlib_server(host: str = "127.0.0.1") -> Iterator[int]:
    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = Server((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(GUARD)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    def up() -> bool:
        assert proc.poll() is None, "the server exited"
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(up, f"a server on port {port}")


@contextlib.contextmanager
def serving_process(argv: list[str], port: int, stop: int, cwd) -> Iterator[None]:
    """A server process, until it listens on port; then ended with signal
    ``stop`` (killed if it outlives GUARD). Its output goes to cwd/server.log."""
    with open(cwd / "server.log", "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_listening(port, proc)
            yield
        finally:
            proc.send_signal(stop)
            try:
                proc.wait(GUARD)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(GUARD)


@contextlib.contextmanager
def nginx(tmp_path) -> Iterator[int]:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(exe), "nginx is a test dependency (the README's apt-get line)"
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fcgi; uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = / {{ return 200 "connection $connection\\n"; }}
        location = /old {{ return 301 /; }}
        location = /chunked {{  # sub_filter: a length nginx cannot know, so chunked
            default_type text/html; sub_filter "one" "1"; sub_filter_once off;
            return 200 "{'one two ' * 500}";
        }}
        location / {{ return 404 "no\\n"; }}
    }}
}}
""")
    with serving_process([exe, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
                         port, signal.SIGQUIT, tmp_path):
        yield port


UVICORN_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/":
        body = b"uvi %d" % scope["client"][1]  # the client's port: which connection
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})
    elif path == "/old":
        await send({"type": "http.response.start", "status": 301,
                    "headers": [(b"location", b"/"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/chunked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part a ", "more_body": True})
        await send({"type": "http.response.body", "body": b"part b"})
    else:
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"no"})
'''


@contextlib.contextmanager
def uvicorn(tmp_path) -> Iterator[int]:
    (tmp_path / "uviapp.py").write_text(UVICORN_APP)
    port = free_port()
    with serving_process([sys.executable, "-m", "uvicorn", "uviapp:app", "--host", "127.0.0.1",
                          "--port", str(port), "--http", "httptools", "--log-level", "warning"],
                         port, signal.SIGINT, tmp_path):
        yield port


def test_stdlib_server_200_301_404_chunked_keep_alive():
    Handler.ports.clear()
    with stdlib_server() as port, fhttp.Client() as client:
        base = f"http://127.0.0.1:{port}"
        first = client.get(base + "/")
        assert (first.status, first.reason, first.body) == (200, "OK", b"hello from http.server")
        moved = client.get(base + "/old")
        assert (moved.status, moved.headers["location"], moved.body) == (301, "/", b"")
        assert client.get(base + "/nope").status == 404
        chunked = client.get(base + "/chunked")
        assert chunked.body == b"chunk one, chunk two"
        assert len(Handler.ports) == 1  # one connection, kept alive
        with fhttp.Client(follow_redirects=True) as follow:
            followed = follow.get(base + "/old")
            assert (followed.status, followed.url) == (200, base + "/")


def test_get_over_ipv6():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 on this host")
    with stdlib_server("::1") as port:
        assert fhttp.get(f"http://[::1]:{port}/").body == b"hello from http.server"


def test_nginx_200_301_404_chunked_keep_alive(tmp_path):
    with nginx(tmp_path) as port, fhttp.Client() as client:
        base = f"http://127.0.0.1:{port}"
        first = client.get(base + "/")
        assert first.status == 200 and first.body.startswith(b"connection ")
        moved = client.get(base + "/old")
        assert moved.status == 301 and moved.headers["location"].endswith("/")
        assert client.get(base + "/x").status == 404
        again = client.get(base + "/")
        assert again.body == first.body  # nginx's $connection: the same connection
        other = fhttp.get(base + "/")
        assert other.body != first.body  # get(): a connection of its own
        chunked = client.get(base + "/chunked")
        assert chunked.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in chunked.headers
        assert chunked.body == b"1 two " * 500
        assert client.get(base + "/").body == first.body  # still that connection


def test_uvicorn_200_301_404_chunked_keep_alive(tmp_path):
    with uvicorn(tmp_path) as port, fhttp.Client() as client:
        base = f"http://127.0.0.1:{port}"
        first = client.get(base + "/").body
        assert first.startswith(b"uvi ")
        assert client.get(base + "/old").status == 301
        assert client.get(base + "/x").status == 404
        chunked = client.get(base + "/chunked")
        assert chunked.headers["transfer-encoding"] == "chunked"
        assert chunked.body == b"part a part b"
        assert client.get(base + "/").body == first  # the same connection throughout
        assert fhttp.get(base + "/").body != first


def test_against_fastnet_server_post_and_limits(engine):
    app = fhttp.App()

    @app.route("POST", "/echo")
    def echo(req: fhttp.Request) -> bytes:
        return req.body

    @app.route("GET", "/big")
    def big(req: fhttp.Request) -> bytes:
        return b"x" * 1000

    with running_http(engine, app) as (server, port), fhttp.Client(max_body=100) as client:
        base = f"http://127.0.0.1:{port}"
        for i in range(3):
            assert client.request("POST", base + "/echo", body=b"b%d" % i).body == b"b%d" % i
        assert server.stats()["accepted"] == 1
        with pytest.raises(HttpBodyTooLarge, match="max_body=100"):
            client.get(base + "/big")


def test_cli_prints_status_headers_body():
    with stdlib_server() as port:
        url = f"http://127.0.0.1:{port}/"
        done = subprocess.run([sys.executable, "-m", "fastnet.http", "GET", url, "-v"],
                              capture_output=True, timeout=GUARD)
        lines = done.stdout.split(b"\r\n" if b"\r\n" in done.stdout else b"\n")
        assert done.returncode == 0, done.stderr
        assert lines[0] == b"HTTP/1.1 200 OK"
        assert b"Content-Length: 22" in lines
        assert done.stdout.endswith(b"\n\nhello from http.server")
        quiet = subprocess.run([sys.executable, "-m", "fastnet.http", "GET", url + "old"],
                               capture_output=True, timeout=GUARD)
        assert quiet.stdout == b"HTTP/1.1 301 Moved Permanently\n"
        bad = subprocess.run([sys.executable, "-m", "fastnet.http", "GET", "https://x/"],
                             capture_output=True, timeout=GUARD)
        assert bad.returncode == 1 and b"only http://" in bad.stderr
