"""The machinery every scenario shares: building the C programs, starting and
stopping servers pinned to their core, and running a load tool against them.

Servers run on CPU 0 and load tools on CPU 1, so neither steals the other's
core. Every child process is bounded in time: a server that does not say it
is listening within START_TIMEOUT is killed, a load run that outlives its
own duration by RUN_GRACE seconds is killed, and a server that ignores
SIGTERM for STOP_TIMEOUT seconds is killed.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence

import psutil

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "bench" / ".build"
SERVER_CPU, CLIENT_CPU = 0, 1
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
RUN_GRACE = 60.0
# The load tool is the bottleneck, not the server, above this share of its core.
SATURATED_CPU = 0.9


class ServerUnavailable(RuntimeError):
    """A server could not be built or started (missing file, binary or module)."""


class LoadError(RuntimeError):
    """A load run failed (lost connection, bad output, timeout)."""


def pinned(cpu: int) -> Callable[[], None]:
    """A preexec_fn that pins the child to ``cpu`` (if the machine has it)."""
    cpus = {cpu} if cpu < (os.cpu_count() or 1) else None
    return lambda: os.sched_setaffinity(0, cpus) if cpus else None


def compile_c(name: str, sources: list[Path]) -> Path:
    """Compile ``sources`` into bench/.build/NAME (gcc -O2 -Wall -Wextra),
    unless the binary is newer than every source."""
    missing = [s for s in sources if not s.exists()]
    if missing:
        raise ServerUnavailable(f"{missing[0].relative_to(ROOT)} does not exist")
    BUILD.mkdir(parents=True, exist_ok=True)
    exe = BUILD / name
    headers = sorted((ROOT / "csrc").glob("*.h"))
    if not exe.exists() or any(s.stat().st_mtime > exe.stat().st_mtime
                               for s in sources + headers):
        result = subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-I", str(ROOT / "csrc"),
                                 "-o", str(exe), *map(str, sources)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise ServerUnavailable(f"gcc {name}: {result.stderr.strip()[-500:]}")
    return exe


def build_loadgen() -> Path:
    """bench/loadgen.c linked with fastnet's C engine (csrc/*.c)."""
    return compile_c("loadgen", [ROOT / "bench" / "loadgen.c"]
                     + sorted((ROOT / "csrc").glob("*.c")))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for servers that cannot pick one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server.

    ``command(port)`` returns its argv; it may raise ServerUnavailable.
    ``ready="line"``: the server is passed port 0 and prints a line naming its
    port ("listening PORT" or "... on HOST:PORT ..."); ``ready="port"``: it is
    passed a free port and is ready once that port accepts a connection.
    ``profile``: a Python process worth profiling with --profile.
    """
    name: str
    command: Callable[[int], list[str]]
    ready: Literal["line", "port"] = "line"
    profile: bool = False


_PORT_LINE = re.compile(r"(?:listening |:)(\d+)\b")


class RunningServer:
    """A started server: its process, port and log; stop() ends it."""

    def __init__(self, spec: ServerSpec, logdir: Path) -> None:
        self.spec = spec
        logdir.mkdir(parents=True, exist_ok=True)
        self.log_path = logdir / f"{spec.name}.log"
        port = free_port() if spec.ready == "port" else 0
        argv = spec.command(port)
        self.log = open(self.log_path, "w")
        try:
            self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=ROOT,
                                         preexec_fn=pinned(SERVER_CPU))
        except OSError as exc:
            self.log.close()
            raise ServerUnavailable(f"{argv[0]}: {exc}") from None
        self.process = psutil.Process(self.proc.pid)
        try:
            self.port = self._wait_ready(port)
        except ServerUnavailable:
            self.stop()
            raise

    def _wait_ready(self, port: int) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(f"exited with status {self.proc.returncode}: "
                                        f"{self.tail(1)}")
            if self.spec.ready == "line":
                match = _PORT_LINE.search(self.log_path.read_text(errors="replace"))
                if match:
                    return int(match.group(1))
            else:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return port
                except OSError:
                    pass
            time.sleep(0.05)
        raise ServerUnavailable(f"not listening after {START_TIMEOUT:g} s: {self.tail()}")

    def tail(self, lines: int = 3) -> str:
        """The last lines of the server's output, for error messages."""
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads)."""
        t = self.process.cpu_times()
        return t.user + t.system

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def run_bounded(argv: list[str], timeout: float, *, cpu: int = CLIENT_CPU,
                on_stderr_line: Optional[Callable[[str], None]] = None
                ) -> tuple[int, str, str, float]:
    """Run a load tool pinned to ``cpu``, killed after ``timeout`` seconds.
    Returns (status, stdout, stderr, CPU seconds the tool used).
    ``on_stderr_line`` sees each stderr line as it arrives."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, cwd=ROOT,
                            preexec_fn=pinned(cpu))
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    out_chunks: list[str] = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    err_lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        err_lines.append(line)
        if on_stderr_line:
            on_stderr_line(line)
    reader.join()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    timer.cancel()
    if fired.is_set():
        raise LoadError(f"{Path(argv[0]).name} killed after {timeout:g} s")
    return (proc.returncode, "".join(out_chunks), "".join(err_lines),
            usage.ru_utime + usage.ru_stime)


def run_loadgen(server: RunningServer, *, proto: str, conns: int, pipeline: int, size: int,
                seconds: float, warmup: float, cmd: str = "ping",
                rate: float = 0.0, extra: Sequence[str] = ()) -> dict:
    """One bench/loadgen run against ``server``: loadgen's JSON plus the
    server's CPU per request over loadgen's measured window (extra: more
    loadgen arguments)."""
    argv = [str(build_loadgen()), "--port", str(server.port), "--conns", str(conns),
            "--pipeline", str(pipeline), "--size", str(size), "--seconds", str(seconds),
            "--warmup", str(warmup), "--proto", proto, "--cmd", cmd, *extra]
    if rate:
        argv += ["--rate", str(rate)]
    marks: list[float] = []

    def on_line(line: str) -> None:
        if line.strip() == "recording":
            marks.append(server.cpu_seconds())

    status, out, err, _ = run_bounded(argv, seconds + warmup + RUN_GRACE, on_stderr_line=on_line)
    if status != 0 or not marks:
        raise LoadError(f"loadgen exited {status}: {err.strip()[-300:]}")
    result = json.loads(out)
    cpu = server.cpu_seconds() - marks[0]
    result["server_cpu_us"] = cpu / result["requests"] * 1e6 if result["requests"] else None
    return result


def _redis_benchmark() -> str:
    exe = shutil.which("redis-benchmark")
    if not exe:
        raise LoadError("redis-benchmark is not installed (apt-get install redis-tools)")
    return exe


# redis-benchmark runs a fixed number of requests: aim each run at `seconds`
# using the rate this (server, test) reached last time.
_rb_rates: dict[tuple[str, str, int, int], float] = {}


def run_redis_benchmark(server: RunningServer, *, cmd: str, conns: int, pipeline: int,
                        size: int, seconds: float) -> dict:
    """One redis-benchmark run (-t cmd --csv) against ``server``, pinned to
    the client core, in the same keys as loadgen's JSON where it has them."""
    test = {"ping": "ping_mbulk"}.get(cmd, cmd)
    key = (server.spec.name, cmd, conns, pipeline)
    guess = _rb_rates.get(key, 20_000.0 * (4 if pipeline > 1 else 1))
    n = int(min(max(guess * seconds, 2_000), 50_000_000))
    argv = [_redis_benchmark(), "-h", "127.0.0.1", "-p", str(server.port), "-c", str(conns),
            "-P", str(pipeline), "-n", str(n), "-d", str(size), "-r", "100000",
            "-t", test, "--csv"]
    cpu0 = server.cpu_seconds()
    started = time.monotonic()
    status, out, err, client_cpu = run_bounded(argv, 10 * seconds + RUN_GRACE)
    wall = time.monotonic() - started
    server_cpu = server.cpu_seconds() - cpu0
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r.get("rps")]
    if status != 0 or not rows:
        raise LoadError(f"redis-benchmark exited {status}: {(err or out).strip()[-300:]}")
    row = rows[-1]
    rate = float(row["rps"])
    _rb_rates[key] = rate
    return {
        "requests": n, "seconds": round(n / rate, 3), "rate": rate, "errors": None,
        "mean_us": float(row["avg_latency_ms"]) * 1e3,
        "p50_us": float(row["p50_latency_ms"]) * 1e3,
        "p95_us": float(row["p95_latency_ms"]) * 1e3,
        "p99_us": float(row["p99_latency_ms"]) * 1e3,
        "p999_us": None,
        "max_us": float(row["max_latency_ms"]) * 1e3,
        "client_cpu": client_cpu / wall, "mode": "closed", "target_rate": 0.0,
        "server_cpu_us": server_cpu / n * 1e6,
    }


def log(message: str) -> None:
    """Progress on stderr (stdout is left for the caller)."""
    print(message, file=sys.stderr, flush=True)
