"""bench compress, end to end: request time per codec and payload size over
links of limited bandwidth, between two network namespaces built for the
run by fastnet.lab's Lab (a veth pair shaped by tbf, all traffic between
the two namespaces only, both removed on every exit), and on loopback.

A wire server (C engine where built) runs in namespace B with a handler
that answers each request with its length; a blocking wire client in
namespace A sends fastnet.pack documents of each size as v2 REQUESTs,
compressed with the codec under test at every size (compress_threshold=0;
"none" offers no codec). So each timing is one direction's trade: the
client's compression, the payload across the shaped link, the server's
decompression and a reply of a few bytes. Both directions of the veth are
shaped, with a small bucket (burst()) so that a message takes its size
over the rate whatever its size.

Bounded in time: per link and size the codecs take turns call by call for
about ``budget`` seconds each (at least ``MIN_CALLS`` rounds, at most
``MAX_CALLS``); the median per codec is reported.
"""
from __future__ import annotations

import statistics
import subprocess
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from fastnet import native, wire
from fastnet.server import Server

MIN_CALLS, MAX_CALLS = 3, 200


def burst(mbit: float) -> int:
    """tbf's bucket in bytes: two full-size packets, or 100 µs at the rate
    where that is more (a smaller one cannot hold 1 Gbit/s here)."""
    return max(3000, int(mbit * 1e6 / 8 * 100e-6))
#: link name -> Mbit/s (None: loopback, unshaped)
LINKS: dict[str, Optional[float]] = {"10 Mbit/s": 10.0, "100 Mbit/s": 100.0,
                                     "1 Gbit/s": 1000.0, "loopback": None}
CODECS = ("none", "zlib", "zstd", "lz4")


def _length(request: Any) -> int:
    return len(request)


@contextmanager
def _serving(host: str, in_ns: Callable[[Callable[[], Any]], Any]) -> Iterator[int]:
    """A wire server whose listener is made in a namespace; yields its port."""
    server = Server(engine="c" if native.backend == "c" else "python", idle_timeout=None)
    listener = in_ns(lambda: server.listen(host, 0, protocol="wire", handler=_length))
    thread = threading.Thread(target=lambda: server.run(handle_signals=False),
                              name="compress-links-server", daemon=True)
    thread.start()
    try:
        yield listener.port
    finally:
        server.stop()
        thread.join(timeout=10)


def _time_round_robin(clients: dict[str, Any], obj: bytes, budget: float) -> dict[str, list[float]]:
    """Request times per codec, one call each in turn (so load from
    elsewhere lands on every codec alike) for about budget seconds per codec."""
    out: dict[str, list[float]] = {c: [] for c in clients}
    end = time.perf_counter() + budget * len(clients)
    rounds = 0
    while rounds < MIN_CALLS or (time.perf_counter() < end and rounds < MAX_CALLS):
        for c, client in clients.items():
            t0 = time.perf_counter()
            n = client.call(obj)
            out[c].append(time.perf_counter() - t0)
            assert n == len(obj)
        rounds += 1
    return out


def _measure_link(host: str, in_a: Callable[[Callable[[], Any]], Any],
                  in_b: Callable[[Callable[[], Any]], Any], payloads: dict[int, bytes],
                  codecs: tuple[str, ...], budget: float) -> dict[str, Any]:
    cells: dict[str, dict[str, list[float]]] = {str(size): {c: [] for c in codecs}
                                                for size in payloads}
    with _serving(host, in_b) as port:
        clients = {c: in_a(lambda c=c: wire.connect(host, port, codecs=[] if c == "none" else [c],
                                                    compress_threshold=0, timeout=60))
                   for c in codecs}
        try:
            for c, client in clients.items():
                assert client.codecs == ([] if c == "none" else [c]), (c, client.codecs)
                client.call(b"warm up")
            for size, obj in payloads.items():
                for c, times in _time_round_robin(clients, obj, budget).items():
                    cells[str(size)][c] += times
        finally:
            for client in clients.values():
                client.close()
    return {size: {c: {"median_ms": statistics.median(v) * 1e3, "calls": len(v)}
                   for c, v in row.items()} for size, row in cells.items()}


def measure(payloads: dict[int, bytes], codecs: tuple[str, ...] = CODECS, budget: float = 0.4,
            links: Optional[dict[str, Optional[float]]] = None) -> dict[str, Any]:
    """link -> size -> codec -> median request time; or {"skipped": why}
    when the namespaces cannot be built (not root, no ip/tc/nft)."""
    from fastnet.lab import netlab

    out: dict[str, Any] = {}
    for name, mbit in (links or LINKS).items():
        if mbit is None:
            def here(fn: Callable[[], Any]) -> Any:
                return fn()
            out[name] = _measure_link("127.0.0.1", here, here, payloads, codecs, budget)
            continue
        try:
            lab = netlab.Lab(rate_mbit=mbit)
        except (PermissionError, OSError, RuntimeError, SystemExit) as exc:
            return {"skipped": f"no network namespaces here: {exc}"}
        with lab:
            # Both directions shaped, with a bucket of two packets: Lab's
            # 32 KB bucket refills between two requests, so every message
            # under 32 KB would cross at the veth's own speed.
            for prefix, dev in ((lab.exec_a(), "va"), (lab.exec_b(), "vb")):
                subprocess.run([*prefix, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
                                "rate", f"{mbit}mbit", "burst", str(burst(mbit)), "latency", "100ms"],
                               check=True, capture_output=True, timeout=10)
            out[name] = _measure_link(netlab.VETH_B, lab.in_a, lab.in_b, payloads, codecs,
                                      budget)
            out[name]["namespaces"] = [lab.ns_a, lab.ns_b]
    return out


def break_even(links: dict[str, Any]) -> dict[str, dict[str, Optional[int]]]:
    """link -> codec -> the smallest measured size from which the codec's
    request time is below "none"'s at that size and every larger one
    (None: it never pays)."""
    out: dict[str, dict[str, Optional[int]]] = {}
    for link, rows in links.items():
        if not isinstance(rows, dict) or link == "skipped":
            continue
        sizes = sorted(int(s) for s in rows if s.isdigit())
        out[link] = {}
        for codec in CODECS[1:]:
            threshold = None
            for size in reversed(sizes):
                row = rows[str(size)]
                if codec not in row or row[codec]["median_ms"] >= row["none"]["median_ms"]:
                    break
                threshold = size
            out[link][codec] = threshold
    return out
