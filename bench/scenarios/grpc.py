"""grpc: a unary Echo (20 B and 1 KiB) under h2load with gRPC's headers
(-c10 -m10), sequential calls (h2load -c1 -m1, and Python clients: grpcio's
and fastnet's), and a server stream of 100,000 20-byte messages; fastnet's
server (plain handlers on the engine thread) against grpcio sync (a thread
pool) and grpc.aio with the same service (bench/peers/grpc_peers.py).
fastnet-icept is fastnet's server with the three built-in interceptors
(logging, authentication, rate limiting), grpcio-sync-icept grpcio's with
three equivalent ones (issue 17)."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

from fastnet.grpc import load
from fastnet.grpc.protocol import encode_message

from ..harness import LoadError, RunningServer, ServerSpec, run_bounded
from ..scenario import Cell, Load, LoadScenario, ratio_target, register
from .servers import fastnet

PEERS = Path(__file__).resolve().parent.parent / "peers"
STREAM_MESSAGES = 100_000
_HEADERS = ["-H", "content-type: application/grpc", "-H", "te: trailers",
            "-H", "authorization: Bearer bench-token"]  # fastnet-icept's token; others ignore it
#: fastnet's three built-in interceptors as the command line sets them: a
#: JSON line per call written to a file (--log-calls-to: buffered, not
#: through logging), the bench token, a rate limit by identity that never refuses.
CALL_LOG = str(Path(tempfile.gettempdir()) / "fastnet-bench-calls.log")
ICEPT = ("--log-calls", "json", "--log-calls-to", CALL_LOG,
         "--auth-tokens", str(PEERS / "grpc_tokens.txt"), "--rate-limit", "1e9/s")


def grpcio(name: str, mode: str) -> ServerSpec:
    return ServerSpec(name, lambda port: [sys.executable, "-m", "bench.peers.grpc_peers", mode,
                                          str(port)], ready="port")


def _body(kind: str, size: int) -> str:
    ns = load(PEERS / "grpc_bench.proto", include=[PEERS])
    msg = ns.bench.Count(n=STREAM_MESSAGES, size=size) if kind == "stream" else \
        ns.bench.Msg(data=bytes(size))
    f = tempfile.NamedTemporaryFile("wb", suffix=".grpc", delete=False)
    f.write(encode_message(msg.SerializeToString()))
    f.close()
    return f.name


def _percentiles(log: Path) -> dict:
    times = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines() if line)
    if not times:
        raise LoadError("h2load logged no request")

    def pct(q: float) -> float:
        return float(times[min(len(times) - 1, int(q * len(times)))])
    return {"mean_us": sum(times) / len(times), "p50_us": pct(0.5), "p95_us": pct(0.95),
            "p99_us": pct(0.99), "p999_us": pct(0.999), "max_us": float(times[-1])}


def run_h2load(server: RunningServer, *, path: str, body: str, conns: int, streams: int,
               seconds: float, warmup: float, requests: int = 0) -> dict:
    """h2load with gRPC's request headers; per-request times from its log."""
    exe = shutil.which("h2load")
    if not exe:
        raise LoadError("h2load is not installed (apt-get install nghttp2-client)")
    url = f"http://127.0.0.1:{server.port}{path}"
    common = [exe, f"-c{conns}", f"-m{streams}", "-d", body, *_HEADERS]
    if warmup > 0 and not requests:
        run_bounded(common + ["-D", f"{max(1, round(warmup))}", url], warmup + 30)
    amount = ["-n", str(requests)] if requests else ["-D", f"{max(1, round(seconds))}"]
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "h2load.log"
        cpu0 = server.cpu_seconds()
        status, out, err, client_cpu = run_bounded(
            common + amount + [f"--log-file={log}", url], seconds + 120)
        server_cpu = server.cpu_seconds() - cpu0
        if status != 0:
            raise LoadError(f"h2load exited {status}: {err.strip()[-300:]}")
        lat = _percentiles(log)
    import re
    fin = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    counts = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed, (\d+) errored", out)
    if not fin or not counts:
        raise LoadError(f"h2load printed no rate: {out.strip()[-300:]}")
    wall = float(fin.group(1)) / (1000 if fin.group(2) == "ms" else 1)
    done = int(counts.group(3))
    return {"requests": done, "seconds": wall, "rate": done / wall if wall else 0.0,
            "errors": int(counts.group(4)) + int(counts.group(5)), **lat,
            "client_cpu": client_cpu / wall if wall else 0.0, "mode": "closed",
            "target_rate": 0.0, "server_cpu_us": server_cpu / done * 1e6 if done else None}


def run_client(server: RunningServer, kind: str, *, seconds: float, size: int) -> dict:
    status, out, err, _ = run_bounded([sys.executable, "-m", "bench.peers.grpc_peers", "client",
                                       kind, str(server.port), str(seconds), str(size)],
                                      seconds + 60)
    if status != 0:
        raise LoadError(f"the {kind} client exited {status}: {err.strip()[-300:]}")
    r = json.loads(out)
    r.update(mode="closed", target_rate=0.0, server_cpu_us=None)
    return r


@register
class Grpc(LoadScenario):
    """Unary Echo under h2load, sequential calls, a 100k-message stream."""
    name = "grpc"
    title = "grpc (unary Echo and a server stream, h2load and Python clients)"
    dims = ("load", "size")
    references: ClassVar[tuple[str, ...]] = ("grpcio-sync", "grpcio-aio", "fastnet-c")

    def servers(self) -> list[ServerSpec]:
        return [fastnet("fastnet-c", "grpc", "c", "--handler", "bench.peers.grpc_peers:setup"),
                grpcio("grpcio-sync", "sync"), grpcio("grpcio-aio", "aio"),
                fastnet("fastnet-icept", "grpc", "c", "--handler", "bench.peers.grpc_peers:setup",
                        *ICEPT),
                grpcio("grpcio-sync-icept", "sync-icept")]

    def cells(self, quick: bool) -> list[Cell]:
        cells = [{"load": "h2load c10 m10", "size": 20}, {"load": "h2load c10 m10", "size": 1024},
                 {"load": "sequential h2load", "size": 20},
                 {"load": "stream 100k", "size": 20},
                 {"load": "sequential grpcio client", "size": 20},
                 {"load": "sequential fastnet client", "size": 20}]
        return cells

    def measure(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        kind, size = cell["load"], cell["size"]
        if kind.startswith("sequential") and kind.endswith("client"):
            return run_client(server, kind.split()[1], seconds=load.seconds, size=size)
        if kind == "stream 100k":
            r = run_h2load(server, path="/bench.Echo/Stream", body=_body("stream", size),
                           conns=1, streams=1, seconds=load.seconds, warmup=0, requests=1)
            # one request of 100k messages: the figure is messages per second
            r["rate"] = STREAM_MESSAGES / r["seconds"] if r["seconds"] else 0.0
            r["server_cpu_us"] = (r["server_cpu_us"] or 0) / STREAM_MESSAGES
            return r
        conns, streams = (10, 10) if kind.startswith("h2load") else (1, 1)
        return run_h2load(server, path="/bench.Echo/Echo", body=_body("unary", size),
                          conns=conns, streams=streams, seconds=load.seconds, warmup=load.warmup)

    def profile_cell(self, cells: list[Cell]) -> Cell:
        return cells[0]

    def targets(self, result: dict) -> list[dict]:
        unary = lambda cell: cell["load"] == "h2load c10 m10"  # noqa: E731
        seq = lambda cell: cell["load"] == "sequential h2load"  # noqa: E731
        stream = lambda cell: cell["load"] == "stream 100k"  # noqa: E731
        out = [ratio_target(result, "interceptors: the three built-ins cost ≤20% of fastnet's "
                            "requests/s (h2load c10 m10)", "fastnet-icept", "fastnet-c",
                            where=unary, at_least=0.8)]
        for ref in ("grpcio-sync", "grpcio-aio"):
            out += [
                ratio_target(result, f"grpc: ≥10x {ref} requests/s (h2load c10 m10)", "fastnet-c",
                             ref, where=unary, at_least=10.0),
                ratio_target(result, f"grpc: p50 ≤0.3x {ref} (sequential)", "fastnet-c", ref,
                             where=seq, metric="p50_us", at_most=0.3),
                ratio_target(result, f"grpc: ≥10x {ref} stream messages/s", "fastnet-c", ref,
                             where=stream, at_least=10.0),
            ]
        return out
