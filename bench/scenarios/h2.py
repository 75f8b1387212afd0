"""h2: HTTP/2 cleartext (prior knowledge) under h2load, GET / and POST / with
a 1 KiB body (both answered with 13 bytes), ``-c10 -m10`` and ``-c1 -m1``:
fastnet with a Python handler (``--protocol h2``) against nginx (http2 on a
cleartext port, one worker) and hypercorn (a Python HTTP/2 server, one
worker), interleaved; beside them fastnet's stream API with the same answer
(``fastnet-streams``: a task per stream, gRPC's path; ``fastnet-quick``: the
on_complete hook answering complete requests inside the read)."""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

from ..harness import LoadError, RunningServer, ServerSpec, ServerUnavailable, run_bounded
from ..scenario import Cell, Load, LoadScenario, ratio_target, register
from .http import _have, _tree_cpu, nginx
from .servers import fastnet


def hypercorn() -> ServerSpec:
    """hypercorn (asyncio), one worker, h2c with prior knowledge."""
    def command(port: int) -> list[str]:
        if not _have("hypercorn"):
            raise ServerUnavailable("hypercorn is not installed (pip install -e '.[bench]')")
        return [sys.executable, "-m", "hypercorn", "bench.peers.h2_apps:asgi", "--bind",
                f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"]
    return ServerSpec("hypercorn", command, ready="port")


def _body_file() -> str:
    path = Path(tempfile.gettempdir()) / "fastnet-bench-h2-1k.bin"
    if not path.exists() or path.stat().st_size != 1024:
        path.write_bytes(b"b" * 1024)
    return str(path)


def run_h2load(server: RunningServer, *, conns: int, streams: int, method: str,
               seconds: float, warmup: float) -> dict:
    """One ``h2load -cN -mM -D seconds`` run, in loadgen's JSON keys, plus
    the server's CPU per request over the measured run; latency percentiles
    from h2load's per-request log."""
    exe = shutil.which("h2load")
    if not exe:
        raise LoadError("h2load is not installed (apt-get install nghttp2-client)")
    url = f"http://127.0.0.1:{server.port}/"
    body = ["-d", _body_file()] if method == "POST" else []
    argv = [exe, "-t1", f"-c{conns}", f"-m{streams}", *body]
    if warmup > 0:
        run_bounded([*argv, "-D", str(max(1, round(warmup))), url], warmup + 30)
    with tempfile.NamedTemporaryFile("r", suffix=".tsv") as log:
        cpu0 = _tree_cpu(server)
        status, out, err, client_cpu = run_bounded(
            [*argv, "-D", str(max(1, round(seconds))), f"--log-file={log.name}", url], seconds + 30)
        server_cpu = _tree_cpu(server) - cpu0
        # Per request: start (us since the epoch), status, microseconds to the response's end.
        times = sorted(float(line.split("\t")[2]) for line in log if line.count("\t") >= 2)
    if status != 0:
        raise LoadError(f"h2load exited {status}: {err.strip()[-300:]}")
    finished = re.search(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                     r"(\d+) errored, (\d+) timeout", out)
    if not finished or not done or not times:
        raise LoadError(f"h2load printed no rate: {out.strip()[-300:]}")
    wall = float(finished.group(1)) / (1e3 if finished.group(2) == "ms" else 1)
    n = int(done.group(2))
    errors = sum(int(done.group(i)) for i in (3, 4, 5))

    def pct(q: float) -> float:
        return times[min(len(times) - 1, int(q / 100 * len(times)))]
    return {"requests": n, "seconds": wall, "rate": float(finished.group(3)), "errors": errors,
            "mean_us": sum(times) / len(times), "p50_us": pct(50), "p95_us": pct(95),
            "p99_us": pct(99), "p999_us": pct(99.9), "max_us": times[-1],
            "client_cpu": client_cpu / wall if wall else 0.0, "mode": "closed",
            "target_rate": 0.0, "server_cpu_us": server_cpu / n * 1e6 if n else None}


@register
class H2(LoadScenario):
    """GET / and POST / (1 KiB), h2load -c10 -m10 and -c1 -m1."""
    name = "h2"
    title = "h2 (HTTP/2 cleartext, h2load)"
    dims = ("method", "conns", "streams")
    references: ClassVar[tuple[str, ...]] = ("nginx", "hypercorn")

    def servers(self) -> list[ServerSpec]:
        return [fastnet("fastnet-handler", "h2", "c", "--handler", "bench.peers.h2_apps:app"),
                fastnet("fastnet-streams", "h2", "c", "--handler", "bench.peers.h2_apps:streams"),
                fastnet("fastnet-quick", "h2", "c", "--handler", "bench.peers.h2_apps:quick"),
                nginx(http2=True), hypercorn()]

    def cells(self, quick: bool) -> list[Cell]:
        return [{"method": m, "conns": c, "streams": s}
                for m in ("GET", "POST") for c, s in ((10, 10), (1, 1))]

    def measure(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        return run_h2load(server, conns=cell["conns"], streams=cell["streams"],
                          method=cell["method"], seconds=load.seconds, warmup=load.warmup)

    def profile_cell(self, cells: list[Cell]) -> Cell:
        return {"method": "GET", "conns": 10, "streams": 10}

    @staticmethod
    def label(cell: Cell) -> str:
        """"GET, -c10 -m10" (the keys a plot panel has, in that order)."""
        parts = [str(cell["method"])] if "method" in cell else []
        flags = [f"-{flag}{cell[key]}" for key, flag in (("conns", "c"), ("streams", "m")) if key in cell]
        return ", ".join(parts + ([" ".join(flags)] if flags else []))

    def targets(self, result: dict) -> list[dict]:
        busy = lambda cell: cell["conns"] == 10  # noqa: E731
        return [
            ratio_target(result, "h2: Python handler ≥0.8x nginx req/s, -c10 -m10",
                         "fastnet-handler", "nginx", where=busy, at_least=0.8),
            ratio_target(result, "h2: Python handler ≥10x hypercorn req/s, -c10 -m10",
                         "fastnet-handler", "hypercorn", where=busy, at_least=10.0),
        ]
