"""Protocol Buffers: serialize and parse ops/s, fastnet's twins against google.protobuf.

    python -m bench proto [--quick] [--reps N] [--seconds S]

Two measuring processes (bench/proto_worker.py): one with google.protobuf's
default upb backend (it also holds fastnet's C and Python twins), one with
PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python. Every (peer, message, op)
is timed once per repetition, the peers taking turns, so load from
elsewhere on the machine lands on all alike; ratios are taken within a
repetition (fastnet-c / upb, fastnet-python / google's pure Python) and
reported as median [min-max] over repetitions.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..harness import ROOT, log
from ..scenario import Options, Scenario, fmt_ratio, register, spread

MESSAGES = ("anchor", "small", "large")
OPS = ("serialize", "parse")
PEERS = ("fastnet-c", "upb", "fastnet-python", "protobuf-python")
#: Whose ratio each fastnet twin is quoted against.
REFERENCE = {"fastnet-c": "upb", "fastnet-python": "protobuf-python"}


class Worker:
    """One bench.proto_worker process."""

    def __init__(self, pure: bool) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if pure:
            env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.proto_worker"], cwd=ROOT,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        self.hello = json.loads(self.proc.stdout.readline())

    def time(self, peer: str, message: str, op: str, n: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"peer": peer, "message": message, "op": op,
                                          "n": n}) + "\n")
        self.proc.stdin.flush()
        return float(json.loads(self.proc.stdout.readline())["ns"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@register
class Proto(Scenario):
    """Serialize / parse throughput of the anchor, small and large messages."""
    name = "proto"
    title = "proto (Protocol Buffers serialize and parse)"

    def server_names(self) -> list[str]:
        return list(PEERS)

    def run(self, opts: Options) -> dict:
        reps = opts.reps or (3 if opts.quick else 7)
        seconds = opts.seconds or (0.1 if opts.quick else 0.3)
        upb, pure = Worker(pure=False), Worker(pure=True)
        try:
            where = {"upb": (upb, "google"), "protobuf-python": (pure, "google"),
                     "fastnet-c": (upb, "fastnet-c"), "fastnet-python": (upb, "fastnet-python")}
            peers = [p for p in PEERS if where[p][1] in where[p][0].hello["peers"]]
            if opts.only:
                peers = [p for p in peers if p in opts.only]
            # calls per timed loop: about `seconds` each, from a short probe
            calls: dict[tuple[str, str, str], int] = {}
            for m in MESSAGES:
                for op in OPS:
                    for p in peers:
                        w, peer = where[p]
                        probe = w.time(peer, m, op, 20)
                        calls[(p, m, op)] = max(20, int(seconds * 1e9 / max(probe, 1.0)))
            runs: dict[str, list[float]] = {f"{p}|{m}|{op}": [] for p in peers
                                            for m in MESSAGES for op in OPS}
            for rep in range(reps):
                for m in MESSAGES:
                    for op in OPS:
                        for p in peers:
                            w, peer = where[p]
                            runs[f"{p}|{m}|{op}"].append(w.time(peer, m, op, calls[(p, m, op)]))
                log(f"[proto] rep {rep + 1}/{reps} done")
            sizes = upb.hello["sizes"]
            backends = {"upb": upb.hello["backend"], "protobuf-python": pure.hello["backend"]}
        finally:
            upb.close()
            pure.close()
        cells = []
        for m in MESSAGES:
            for op in OPS:
                summary: dict[str, Any] = {}
                for p in peers:
                    ns = runs[f"{p}|{m}|{op}"]
                    s: dict[str, Any] = {"ops_per_s": spread([1e9 / x for x in ns]),
                                         "ns": spread(ns)}
                    ref = REFERENCE.get(p)
                    if ref in peers:
                        s["ratio"] = spread([r / x for x, r in zip(ns, runs[f"{ref}|{m}|{op}"])])
                        s["reference"] = ref
                    summary[p] = s
                cells.append({"message": m, "op": op, "size": sizes[m], "summary": summary})
        result = {"scenario": self.name, "kind": "proto", "title": self.title,
                  "config": {"reps": reps, "seconds_per_loop": seconds, "quick": opts.quick,
                             "backends": backends},
                  "peers": peers, "cells": cells}
        result["targets"] = self.targets(result)
        return result

    @staticmethod
    def targets(result: dict) -> list[dict]:
        out = []
        for twin, ref, ops in (("fastnet-c", "upb", OPS),
                               ("fastnet-python", "protobuf-python", OPS)):
            for op in ops:
                cell = next(c for c in result["cells"] if c["message"] == "anchor" and c["op"] == op)
                ratio = cell["summary"].get(twin, {}).get("ratio")
                name = f"anchor {op}: {twin} ≥ 1.0x {ref}"
                if not ratio:
                    out.append({"name": name, "verdict": "NOT MEASURED", "detail": ""})
                    continue
                ok = ratio["median"] >= 1.0
                out.append({"name": name, "verdict": "PASS" if ok else "MISS",
                            "detail": f"{fmt_ratio(ratio)}" + ("" if ok else
                                      f"; short by {1 - ratio['median']:.0%}"),
                            "worst": ratio["median"], "bound": 1.0})
        return out

    def markdown(self, result: dict) -> str:
        c = result["config"]
        lines = [f"## {result['title']}", "",
                 f"{c['reps']} repetitions, each op timed as a loop of about "
                 f"{c['seconds_per_loop']:g} s, peers taking turns; median [min-max] over "
                 "repetitions. Ratios are ops/s over the reference's in the same repetition: "
                 "fastnet-c against upb, fastnet-python against google.protobuf's pure-Python "
                 "backend. A shared, noisy 2-core machine: compare ratios, not absolute rates.",
                 "", "| message | op | peer | ops/s | ns/op | ratio |",
                 "|---|---|---|---:|---:|---:|"]
        for cell in result["cells"]:
            for p, s in cell["summary"].items():
                ratio = (f"{fmt_ratio(s['ratio'])} vs {s['reference']}" if "ratio" in s else "-")
                lines.append(f"| {cell['message']} ({cell['size']:,} B) | {cell['op']} | {p} | "
                             f"{s['ops_per_s']['median']:,.0f} | {s['ns']['median']:,.0f} | "
                             f"{ratio} |")
        lines += ["", "### Targets", "", "| target | verdict | detail |", "|---|---|---|"]
        lines += [f"| {t['name']} | **{t['verdict']}** | {t['detail']} |" for t in result["targets"]]
        return "\n".join(lines) + "\n"

    def plot(self, result: dict, outdir: Path) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(MESSAGES), figsize=(12, 3.6))
        for ax, m in zip(axes, MESSAGES):
            cells = [c for c in result["cells"] if c["message"] == m]
            width = 0.8 / max(1, len(result["peers"]))
            for i, p in enumerate(result["peers"]):
                xs = [x + (i - (len(result["peers"]) - 1) / 2) * width for x in range(len(cells))]
                ax.bar(xs, [c["summary"][p]["ops_per_s"]["median"] for c in cells], width,
                       label=p)
            ax.set_xticks(range(len(cells)))
            ax.set_xticklabels([c["op"] for c in cells])
            ax.set_yscale("log")
            ax.set_title(f"{m} ({cells[0]['size']:,} B)", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
        axes[0].set_ylabel("ops/s (log)")
        axes[-1].legend(fontsize=7)
        fig.tight_layout()
        path = outdir / "proto-throughput.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return [path]
