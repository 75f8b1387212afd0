"""http: HTTP/1.1 GET / (a 13-byte body) under wrk, fastnet with a Python
handler and with its built-in kata against nginx (one worker), uvicorn
(httptools + uvloop) and granian (one worker), interleaved."""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

from ..harness import LoadError, RunningServer, ServerSpec, ServerUnavailable, run_bounded
from ..scenario import Cell, Load, LoadScenario, ratio_target, register
from .servers import fastnet

_NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port}{http2};
        location = / {{ default_type text/plain; return 200 "Hello, World!"; }}
    }}
}}
"""


def nginx(http2: bool = False) -> ServerSpec:
    """nginx, one worker, answering GET / (and, with http2, any method: its
    ``return`` does not look at the method) from its config (a temp dir);
    http2: HTTP/2 cleartext (``listen P http2``, nginx 1.22) instead of HTTP/1.1."""
    def command(port: int) -> list[str]:
        exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if not exe:
            raise ServerUnavailable("nginx is not installed (apt-get install nginx)")
        where = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        (where / "nginx.conf").write_text(_NGINX_CONF.format(dir=where, port=port,
                                                             http2=" http2" if http2 else ""))
        return [exe, "-c", str(where / "nginx.conf"), "-p", str(where), "-g", "daemon off;"]
    return ServerSpec("nginx", command, ready="port")


def uvicorn() -> ServerSpec:
    """uvicorn with httptools and uvloop, one process."""
    def command(port: int) -> list[str]:
        for module in ("uvicorn", "httptools", "uvloop"):
            if not _have(module):
                raise ServerUnavailable(f"{module} is not installed (pip install -e '.[bench]')")
        return [sys.executable, "-m", "uvicorn", "bench.peers.http_apps:asgi", "--host",
                "127.0.0.1", "--port", str(port), "--http", "httptools", "--loop", "uvloop",
                "--log-level", "warning", "--no-access-log"]
    return ServerSpec("uvicorn", command, ready="port")


def granian() -> ServerSpec:
    """granian (Rust, ASGI), one worker."""
    def command(port: int) -> list[str]:
        exe = shutil.which("granian")
        if not exe:
            raise ServerUnavailable("granian is not installed (pip install granian)")
        return [exe, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--no-log", "bench.peers.http_apps:asgi"]
    return ServerSpec("granian", command, ready="port")


def _have(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


# wrk reports its own percentiles through a Lua done() hook: microseconds.
_WRK_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("fastnet-latency %d %d %d %d %d %d\\n", latency.mean,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency:percentile(99.9), latency.max))
  io.write(string.format("fastnet-errors %d\\n", summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
"""


def _tree_cpu(server: RunningServer) -> float:
    """CPU seconds of the server and its children (nginx's and granian's
    workers are children of the process started)."""
    total = server.cpu_seconds()
    for child in server.process.children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except Exception:  # psutil.NoSuchProcess: a child that just ended
            pass
    return total


def run_wrk(server: RunningServer, *, conns: int, seconds: float, warmup: float) -> dict:
    """One ``wrk -t1 -cN`` run of GET /, in loadgen's JSON keys, plus the
    server's CPU per request over the measured run."""
    exe = shutil.which("wrk")
    if not exe:
        raise LoadError("wrk is not installed (apt-get install wrk)")
    url = f"http://127.0.0.1:{server.port}/"
    if warmup > 0:
        run_bounded([exe, "-t1", f"-c{conns}", f"-d{max(1, round(warmup))}s", url], warmup + 30)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_WRK_LUA)
        script.flush()
        cpu0 = _tree_cpu(server)
        status, out, err, client_cpu = run_bounded(
            [exe, "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-s", script.name, url],
            seconds + 30)
        server_cpu = _tree_cpu(server) - cpu0
    if status != 0:
        raise LoadError(f"wrk exited {status}: {err.strip()[-300:]}")
    requests = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = re.search(r"fastnet-latency (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    errors = re.search(r"fastnet-errors (\d+)", out)
    if not requests or not rate or not latency or not errors:
        raise LoadError(f"wrk printed no rate: {out.strip()[-300:]}")
    n = int(requests.group(1))
    wall = float(requests.group(2)) * (60 if requests.group(3) == "m" else 1)
    mean, p50, p95, p99, p999, most = (float(x) for x in latency.groups())
    return {"requests": n, "seconds": wall, "rate": float(rate.group(1)),
            "errors": int(errors.group(1)), "mean_us": mean, "p50_us": p50, "p95_us": p95,
            "p99_us": p99, "p999_us": p999, "max_us": most,
            "client_cpu": client_cpu / wall if wall else 0.0, "mode": "closed",
            "target_rate": 0.0, "server_cpu_us": server_cpu / n * 1e6 if n else None}


@register
class Http(LoadScenario):
    """GET / with a 13-byte body, wrk -t1 over 50 connections and over 1."""
    name = "http"
    title = "http (HTTP/1.1 GET /, wrk)"
    dims = ("conns",)
    references: ClassVar[tuple[str, ...]] = ("nginx", "uvicorn", "granian")

    def servers(self):
        return [fastnet("fastnet-handler", "http", "c", "--handler", "bench.peers.http_apps:app"),
                fastnet("fastnet-kata", "http", "c"), nginx(), uvicorn(), granian()]

    def cells(self, quick: bool) -> list[Cell]:
        return self.product(conns=[50, 1])

    def measure(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        return run_wrk(server, conns=cell["conns"], seconds=load.seconds, warmup=load.warmup)

    def targets(self, result: dict) -> list[dict]:
        fifty = lambda cell: cell["conns"] == 50  # noqa: E731
        return [
            ratio_target(result, "http: Python handler ≥0.8x nginx req/s, 50 conns",
                         "fastnet-handler", "nginx", where=fifty, at_least=0.8),
            ratio_target(result, "http: built-in kata ≥1.0x nginx req/s, 50 conns",
                         "fastnet-kata", "nginx", where=fifty, at_least=1.0),
        ]
