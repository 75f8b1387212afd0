"""Idle-connection benchmark: what 10,000 quiet connections cost a server.

    python -m bench idle [--quick] [--reps N] [--only fastnet-c,...] [--matrix conns=N]

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

import resource
import socket
import statistics
import time
from typing import Any

from ..harness import RunningServer, log
from ..scenario import Options, Scenario, register
from .servers import fastnet

ENGINES = ("c", "python", "threaded")
FIELDS = (("rss_per_conn_bytes", "RSS per conn (B)", "{:,.0f}"),
          ("idle_cpu_ms_per_s", "idle CPU (ms per s)", "{:.3f}"),
          ("expiry_cpu_us_per_conn", "expiry CPU per conn (us)", "{:.1f}"),
          ("connect_seconds", "connect all (s)", "{:.2f}"))


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted``; the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def measure(server: RunningServer, conns: int, timeout: float) -> dict:
    """Open ``conns`` idle connections to a server started with
    --idle-timeout ``timeout``; measure memory and CPU until they expire."""
    socks: list[socket.socket] = []
    try:
        time.sleep(0.3)
        rss0 = server.process.memory_info().rss
        opened_at = time.monotonic()
        for _ in range(conns):
            socks.append(socket.create_connection(("127.0.0.1", server.port)))
        connected_in = time.monotonic() - opened_at
        # All opened. Wait until the server has settled (the threaded engine
        # is still starting a thread per connection for a while), so the idle
        # window measures idleness, not set-up.
        settle_deadline = opened_at + timeout - 2.0
        while time.monotonic() < settle_deadline:
            c0, w0 = server.cpu_seconds(), time.monotonic()
            time.sleep(0.25)
            if (server.cpu_seconds() - c0) / (time.monotonic() - w0) < 0.02:
                break
        else:
            raise RuntimeError(f"{server.spec.name}: still busy {timeout - 2:g}s after the "
                               "first connect; use a longer idle timeout")
        rss1 = server.process.memory_info().rss
        # The first deadline is `timeout` after the first accept.
        idle_window = timeout - (time.monotonic() - opened_at) - 0.5
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        time.sleep(max(0.1, idle_window))
        cpu1, t1 = server.cpu_seconds(), time.monotonic()
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
        cpu2 = server.cpu_seconds()
        return {
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


@register
class Idle(Scenario):
    """N idle connections per engine: memory, idle CPU, expiry cost."""
    name = "idle"
    title = "idle (keep-alive cost of idle connections)"

    def server_names(self) -> list[str]:
        return [f"fastnet-{e}" for e in ENGINES]

    def matrix(self) -> dict[str, list[Any]]:
        return {"conns": [2000, 10000]}  # quick, full; any N works (the first value given)

    def run(self, opts: Options) -> dict:
        conns = (opts.matrix.get("conns") or [2000 if opts.quick else 10000])[0]
        timeout = 5.0 if opts.quick and conns <= 2000 else max(12.0, conns / 1000)
        reps = opts.reps or (1 if opts.quick else 2)
        limit = raise_nofile(conns + 256)
        names = [n for n in self.server_names() if not opts.only or n in opts.only]
        result: dict = {"scenario": self.name, "kind": "idle", "title": self.title,
                        "config": {"conns": conns, "idle_timeout": timeout, "reps": reps},
                        "servers": names, "failed": {}, "rows": {n: [] for n in names}}
        if limit < conns + 64:
            result["failed"] = {n: f"open-file limit {limit} too low for {conns}" for n in names}
            return result
        for rep in range(reps):
            for name in names:
                if name in result["failed"]:
                    continue
                spec = fastnet(name, "echo", name.split("-", 1)[1], "--idle-timeout",
                               str(timeout), "--max-connections", str(conns + 100),
                               "--listen-backlog", "4096")
                try:
                    server = RunningServer(spec, opts.out / "logs" / self.name)
                except RuntimeError as exc:
                    result["failed"][name] = f"failed to start: {exc}"
                    log(f"[idle] SERVER FAILED TO START: {name}: {exc}")
                    continue
                try:
                    row = measure(server, conns, timeout)
                    result["rows"][name].append(row)
                    log(f"[idle] rep {rep + 1}/{reps} {name}: {row}")
                except (RuntimeError, OSError) as exc:
                    result["failed"][name] = str(exc)
                    log(f"[idle] {name}: {exc}")
                finally:
                    server.stop()
        return result

    def markdown(self, result: dict) -> str:
        c = result["config"]
        lines = [f"## {result['title']}", "",
                 f"{c['conns']:,} idle connections, server --idle-timeout {c['idle_timeout']:g} s, "
                 f"{c['reps']} repetition(s), median. Idle CPU is the server's CPU per second "
                 "while every connection sits idle (the cost of its keep-alive ticks); expiry "
                 "CPU is detect + close + count per expired connection.", ""]
        lines += [f"- **{n}: {why}**" for n, why in result["failed"].items()]
        lines += [""] if result["failed"] else []
        lines += ["| server | " + " | ".join(f[1] for f in FIELDS) + " | expired |",
                  "|---|" + "---:|" * (len(FIELDS) + 1)]
        for name, rows in result["rows"].items():
            if not rows:
                continue
            med = [fmt.format(statistics.median(r[key] for r in rows)) for key, _, fmt in FIELDS]
            expired = f"{min(r['expired_closed'] for r in rows)}/{c['conns']}"
            lines.append(f"| {name} | " + " | ".join(med) + f" | {expired} |")
        return "\n".join(lines) + "\n"
