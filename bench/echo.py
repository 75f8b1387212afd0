"""Echo sanity benchmark: every fastnet engine and asyncio/uvloop peers,
measured in one run by the C load generator (bench/loadgen.c).

    python -m bench.echo [--size 64] [--conns 50] [--pipeline 1] [--seconds 5] [--reps 3]

Servers are pinned to CPU 0 and the load generator to CPU 1, and run
interleaved (A B C A B C ...) so machine noise hits all alike. Each figure
is reported as the median over repetitions and as a ratio to asyncio's
Protocol API measured in the same repetition.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "bench" / ".build"
SERVER_CPU, CLIENT_CPU = 0, 1


def build_loadgen() -> Path:
    """Compile bench/loadgen.c with fastnet's C engine sources."""
    BUILD.mkdir(exist_ok=True)
    exe = BUILD / "loadgen"
    sources = [ROOT / "bench" / "loadgen.c"] + sorted((ROOT / "csrc").glob("*.c"))
    if not exe.exists() or any(s.stat().st_mtime > exe.stat().st_mtime for s in sources):
        subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-I", str(ROOT / "csrc"),
                        "-o", str(exe), *map(str, sources)], check=True)
    return exe


def servers() -> dict[str, list[str]]:
    py = sys.executable
    fastnet = [py, "-m", "fastnet.serve", "--port", "0", "--protocol", "echo",
               "--log-level", "WARNING", "--engine"]
    out = {
        "fastnet-c": fastnet + ["c"],
        "fastnet-python": fastnet + ["python"],
        "fastnet-threaded": fastnet + ["threaded"],
        "asyncio-protocol": [py, "-m", "bench.peers.asyncio_echo", "0"],
    }
    try:
        import uvloop  # noqa: F401
        out["uvloop-protocol"] = [py, "-m", "bench.peers.asyncio_echo", "0", "--uvloop"]
    except ImportError:
        print("uvloop not installed: skipping it (pip install '.[bench]')", file=sys.stderr)
    return out


def start(cmd: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(?:listening |:)(\d+)\b", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"{cmd}: no port in {line!r}")
    return proc, int(match.group(1))


def measure(exe: Path, cmd: list[str], args: argparse.Namespace) -> dict:
    """One load run against a freshly started server. Besides the load
    generator's figures, records the server's CPU time per message: when
    the generator (one core, the same syscalls per message as the server)
    is the limit, CPU per message still tells the servers apart."""
    proc, port = start(cmd)
    server = psutil.Process(proc.pid)
    try:
        cpu0 = server.cpu_times()
        out = subprocess.run(
            ["taskset", "-c", str(CLIENT_CPU), str(exe), "127.0.0.1", str(port),
             str(args.conns), str(args.pipeline), str(args.size), str(args.seconds),
             str(args.warmup), "raw"],
            capture_output=True, text=True, check=True, timeout=args.seconds + 60).stdout
        cpu1 = server.cpu_times()
        result = json.loads(out)
        # The server also served the warm-up: spread its CPU over both.
        served = result["rate"] * (args.seconds + args.warmup)
        cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        result["server_cpu_us_per_msg"] = cpu / served * 1e6
        return result
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", help="comma-separated server names")
    args = ap.parse_args()
    exe = build_loadgen()
    table = servers()
    if args.only:
        table = {k: v for k, v in table.items() if k in args.only.split(",")}
    results: dict[str, list[dict]] = {name: [] for name in table}
    ratios: dict[str, list[float]] = {name: [] for name in table}
    for rep in range(args.reps):
        this: dict[str, dict] = {}
        for name, cmd in table.items():
            this[name] = r = measure(exe, cmd, args)
            results[name].append(r)
            print(f"rep {rep + 1} {name:18} {r['rate']:>12,.0f} msg/s  p99 {r['p99_us']:8.1f} us"
                  f"  loadgen cpu {r['client_cpu']:.0%}", file=sys.stderr)
        ref = this.get("asyncio-protocol")
        for name in table:
            if ref:
                ratios[name].append(this[name]["rate"] / ref["rate"])
    print(f"\necho {args.size} B, {args.conns} connections, pipeline {args.pipeline}, "
          f"{args.seconds:g} s x {args.reps} (median; ratio to asyncio-protocol in the same rep)\n")
    print("| server | msg/s | vs asyncio | p50 us | p99 us | server CPU us/msg | loadgen CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rs in results.items():
        med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
        ratio = f"{statistics.median(ratios[name]):.2f}x" if ratios[name] else "-"
        print(f"| {name} | {med('rate'):,.0f} | {ratio} | {med('p50_us'):.1f} | "
              f"{med('p99_us'):.1f} | {med('server_cpu_us_per_msg'):.2f} | {med('client_cpu'):.0%} |")


if __name__ == "__main__":
    main()
