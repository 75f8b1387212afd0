"""Idle-connection benchmark: what 10,000 quiet connections cost a server.

    python -m bench.idle [--conns 10000] [--engines c,python,threaded] [--timeout 4]

For each engine, a `python -m fastnet.serve` subprocess (pinned to CPU 0)
receives N connections that then say nothing. Measured with psutil:

* memory per connection: the server's RSS growth / N;
* idle CPU: server CPU per second while all N sit idle (measured once the
  server has settled after accepting them), before any expires.
  The keep-alive check looks only at the connection quiet for longest, and
  the loop sleeps until that one's deadline, so this should be ~0 however
  large N is (a per-tick scan of every connection would show here);
* cost per tick: keep-alive ticks while nothing expires are wake-ups that
  find the head not yet due; we report CPU per second, which bounds them;
* expiry: server CPU from the first deadline until all N were closed for
  idleness, per expired connection (detect + close + count).

The process's open-file limit is raised to fit N in this process (the
client side) and the server raises its own (Server does, for
max_connections), up to the hard limit.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def measure(engine: str, conns: int, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "fastnet.serve", "--port", "0", "--protocol", "echo",
           "--engine", engine, "--log-level", "WARNING", "--idle-timeout", str(timeout),
           "--max-connections", str(conns + 100), "--listen-backlog", "4096"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    socks: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split(":")[1].split()[0])
        server = psutil.Process(proc.pid)
        time.sleep(0.3)
        rss0 = server.memory_info().rss
        opened_at = time.monotonic()
        for _ in range(conns):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        connected_in = time.monotonic() - opened_at
        # All opened. Wait until the server has settled (the threaded engine
        # is still starting a thread per connection for a while), so the idle
        # window measures idleness, not set-up.
        settle_deadline = opened_at + timeout - 2.0
        while time.monotonic() < settle_deadline:
            c0, w0 = cpu_seconds(server), time.monotonic()
            time.sleep(0.25)
            if (cpu_seconds(server) - c0) / (time.monotonic() - w0) < 0.02:
                break
        else:
            raise RuntimeError(f"{engine}: server still busy {timeout - 2:g}s after the "
                               "first connect; use a longer --timeout")
        rss1 = server.memory_info().rss
        # The first deadline is `timeout` after the first accept.
        idle_window = timeout - (time.monotonic() - opened_at) - 0.5
        cpu0, t0 = cpu_seconds(server), time.monotonic()
        time.sleep(idle_window)
        cpu1, t1 = cpu_seconds(server), time.monotonic()
        # Now every connection expires: wait until the server closed them all.
        closed = 0
        deadline = time.monotonic() + timeout + 60
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                if s.recv(1) == b"":
                    closed += 1
            except (socket.timeout, ConnectionResetError):
                pass
        cpu2 = cpu_seconds(server)
        return {
            "engine": engine,
            "connections": conns,
            "connect_seconds": round(connected_in, 3),
            "rss_per_conn_bytes": round((rss1 - rss0) / conns),
            "idle_cpu_ms_per_s": round((cpu1 - cpu0) / (t1 - t0) * 1e3, 3),
            "idle_window_s": round(t1 - t0, 2),
            "expired_closed": closed,
            "expiry_cpu_us_per_conn": round((cpu2 - cpu1) / max(1, closed) * 1e6, 2),
        }
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--engines", default="c,python,threaded")
    ap.add_argument("--timeout", type=float, default=12.0,
                    help="server --idle-timeout: long enough to open every connection")
    args = ap.parse_args()
    limit = raise_nofile(args.conns + 256)
    if limit < args.conns + 64:
        sys.exit(f"open-file limit {limit} is too low for {args.conns} connections")
    print(f"(raised this process's open-file limit to {limit})", file=sys.stderr)
    rows = [measure(engine, args.conns, args.timeout) for engine in args.engines.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "idle.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\n{args.conns} idle connections, --idle-timeout {args.timeout:g}s "
          f"(JSON: {out.relative_to(ROOT)})\n")
    print("| engine | RSS per conn | idle CPU (ms per s) | expiry CPU per conn | expired |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['engine']} | {r['rss_per_conn_bytes']:,} B | {r['idle_cpu_ms_per_s']} | "
              f"{r['expiry_cpu_us_per_conn']} us | {r['expired_closed']}/{r['connections']} |")


if __name__ == "__main__":
    main()
