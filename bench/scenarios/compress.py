"""compress: where per-message compression of wire bodies pays.

    python -m bench compress [--quick] [--reps N] [--only zlib-1,zstd-3,...]

A micro benchmark (no servers): for payload sizes from 64 B to 1 MiB and
three kinds of data (JSON-like text, fastnet.pack documents, random
bytes), every codec at a low and its default level compresses and
decompresses the same payload, the codecs taking turns batch by batch, GC
off while timing. Reported: ratio (compressed / original, with the wire's
4-byte length prefix), compress and decompress CPU ns per input byte.

Break-even per link, modeled from those measurements: compression pays on
a link of bandwidth B when the transmit time saved, (original -
compressed) * 8 / B, exceeds the CPU spent on both ends, compress +
decompress.

Break-even per link, measured end to end (bench/compress_links.py): wire
requests of fastnet.pack documents, each codec at its wire default level,
between two network namespaces joined by a veth pair shaped with tbf (10
Mbit/s, 100 Mbit/s, 1 Gbit/s), built and removed by the run, and on
loopback. The threshold for a codec and link is the smallest measured size
from which it pays at that size and every larger one; the README's rule
and fastnet.wire.compression's thresholds are read from this table.
"""
from __future__ import annotations

import gc
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional

from fastnet import pack
from fastnet.wire.compression import CODECS

from .. import compress_links
from ..scenario import Options, Scenario, register

SIZES = [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576]
LINKS = {"10 Mbit/s": 10e6, "100 Mbit/s": 100e6, "1 Gbit/s": 1e9}


def _levels() -> dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]]:
    import zlib

    out: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
        "zlib-1": (lambda b: zlib.compress(b, 1), zlib.decompress),
        "zlib-6": (lambda b: zlib.compress(b, 6), zlib.decompress),
    }
    if "zstd" in CODECS:
        import zstandard

        for level in (1, 3):
            c, d = zstandard.ZstdCompressor(level=level), zstandard.ZstdDecompressor()
            out[f"zstd-{level}"] = (c.compress, d.decompress)
    if "lz4" in CODECS:
        import lz4.frame  # type: ignore[import-untyped]

        out["lz4-0"] = (lambda b: lz4.frame.compress(b, compression_level=0), lz4.frame.decompress)
        out["lz4-9"] = (lambda b: lz4.frame.compress(b, compression_level=9), lz4.frame.decompress)
    return out


#: The default level of each codec, as fastnet.wire.compression uses it.
DEFAULTS = {"zlib": "zlib-6", "zstd": "zstd-3", "lz4": "lz4-0"}


def _document(i: int) -> dict[str, Any]:
    return {"id": i, "user": f"user{i % 97}@example.com", "active": bool(i % 3), "score": i * 0.5,
            "tags": ["alpha", "beta", "gamma"][: i % 4], "sku": f"S{i:06d}", "qty": i % 13}


def payload(kind: str, size: int) -> bytes:
    """size bytes of one kind of data."""
    if kind == "random":
        return os.urandom(size)
    out = b""
    i = 0
    while len(out) < size:
        chunk = [_document(j) for j in range(i, i + 64)]
        out += json.dumps(chunk).encode() if kind == "json" else pack.packb(chunk)
        i += 64
    return out[:size]


KINDS = ("json", "pack", "random")


def _batch_ns(run: Callable[[], Any], n: int) -> float:
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            run()
        return (time.perf_counter_ns() - t0) / n
    finally:
        gc.enable()


@register
class CompressScenario(Scenario):
    """Ratio and CPU per byte per codec, level, size and kind of data."""
    name = "compress"
    title = "compress (wire body compression: ratio, CPU, break-even per link)"

    def server_names(self) -> list[str]:
        return list(_levels())

    def run(self, opts: Options) -> dict:
        reps = opts.reps or (3 if opts.quick else 9)
        budget = 2e6 if opts.quick else 10e6
        levels = _levels()
        # --only names of other scenarios (bench all --only fastnet-c) select none: all run
        chosen = set(levels) & (opts.only or set())
        codecs = {k: v for k, v in levels.items() if not chosen or k in chosen}
        sizes = SIZES[::2] if opts.quick else SIZES
        cells = []
        for kind in KINDS:
            for size in sizes:
                data = payload(kind, size)
                cell: dict[str, Any] = {"kind": kind, "size": size, "codecs": {}}
                runs = {}
                for name, (comp, decomp) in codecs.items():
                    packed = comp(data)
                    assert decomp(packed) == data
                    one = _batch_ns(lambda: comp(data), 1) + _batch_ns(lambda: decomp(packed), 1)
                    n = max(1, int(budget / max(one, 1.0)))
                    runs[name] = (lambda c=comp: c(data), lambda d=decomp, p=packed: d(p), n)
                    cell["codecs"][name] = {"ratio": (len(packed) + 4) / size,
                                            "compress_ns": [], "decompress_ns": []}
                for _ in range(reps):
                    for name, (c, d, n) in runs.items():
                        cell["codecs"][name]["compress_ns"].append(_batch_ns(c, n))
                        cell["codecs"][name]["decompress_ns"].append(_batch_ns(d, n))
                for entry in cell["codecs"].values():
                    for op in ("compress", "decompress"):
                        entry[f"{op}_ns_per_byte"] = statistics.median(entry[f"{op}_ns"]) / size
                cells.append(cell)
        result = {"scenario": self.name, "kind": "micro", "title": self.title,
                  "config": {"reps": reps, "quick": opts.quick, "sizes": sizes},
                  "codecs": list(codecs), "cells": cells}
        result["break_even"] = self.break_even(result)
        e2e_sizes = [256, 4096, 65536] if opts.quick else SIZES
        links = ({k: v for k, v in compress_links.LINKS.items() if k in ("100 Mbit/s", "loopback")}
                 if opts.quick else compress_links.LINKS)
        result["links"] = compress_links.measure(
            {size: payload("pack", size) for size in e2e_sizes},
            budget=0.1 if opts.quick else 1.0, links=links)
        result["links_break_even"] = compress_links.break_even(result["links"])
        return result

    @staticmethod
    def gain_us(entry: dict, size: int, bandwidth: float) -> float:
        """Microseconds saved per message on a link (negative: it costs)."""
        saved = size * (1 - entry["ratio"]) * 8 / bandwidth * 1e6
        cpu = (entry["compress_ns_per_byte"] + entry["decompress_ns_per_byte"]) * size / 1e3
        return saved - cpu

    def break_even(self, result: dict) -> dict[str, dict[str, Optional[int]]]:
        """link -> codec level -> smallest size (pack documents) from which
        it pays at every larger measured size, or None if it never does."""
        out: dict[str, dict[str, Optional[int]]] = {}
        docs = [c for c in result["cells"] if c["kind"] == "pack"]
        for link, bw in LINKS.items():
            out[link] = {}
            for name in result["codecs"]:
                pays = [(c["size"], self.gain_us(c["codecs"][name], c["size"], bw) > 0) for c in docs]
                threshold = None
                for size, ok in reversed(pays):
                    if not ok:
                        break
                    threshold = size
                out[link][name] = threshold
        return out

    def markdown(self, result: dict) -> str:
        lines = [f"## {result['title']}", "",
                 f"Micro benchmark, one process, codecs interleaved batch by batch "
                 f"({result['config']['reps']} rounds, GC off while timing), medians. "
                 "The machine is shared with other work: CPU figures swing between runs. "
                 "Break-even is modeled from these figures (transmit time saved against "
                 "CPU on both ends), not measured over a shaped link.", ""]
        for kind in KINDS:
            lines += [f"### {kind}", "", "| size | codec | ratio | compress ns/B | decompress ns/B |",
                      "|---:|---|---:|---:|---:|"]
            for c in result["cells"]:
                if c["kind"] != kind:
                    continue
                for name, e in c["codecs"].items():
                    lines.append(f"| {c['size']:,} | {name} | {e['ratio']:.3f} | "
                                 f"{e['compress_ns_per_byte']:.2f} | {e['decompress_ns_per_byte']:.2f} |")
            lines.append("")
        lines += ["### Break-even, modeled (fastnet.pack documents)", "",
                  "| link | " + " | ".join(result["codecs"]) + " |",
                  "|---|" + "---:|" * len(result["codecs"])]
        for link, row in result["break_even"].items():
            lines.append(f"| {link} | " + " | ".join(
                f"{v:,} B" if v else "never" for v in row.values()) + " |")
        lines += ["", *self.links_markdown(result)]
        return "\n".join(lines) + "\n"

    @staticmethod
    def links_markdown(result: dict) -> list[str]:
        """The end-to-end tables: request time per link, size and codec."""
        links = result.get("links") or {}
        if "skipped" in links:
            return ["### End to end over shaped links", "", f"Not measured: {links['skipped']}.", ""]
        lines = ["### End to end over shaped links (measured)", "",
                 "Median ms per wire request (v2, fastnet.pack documents, compressed at every "
                 "size with the codec's default level; the reply is the length, a few bytes), "
                 "between two network namespaces joined by a veth pair shaped by tbf both ways, "
                 "and on loopback. The codecs take turns; the machine is shared, so the "
                 "loopback and 1 Gbit/s figures (CPU-bound) move the most between runs.", ""]
        for link, rows in links.items():
            sizes = sorted(int(k) for k in rows if k.isdigit())
            big = rows[str(sizes[-1])]["none"]["median_ms"]
            mbit = compress_links.LINKS.get(link)
            bucket = (f" tbf's bucket is {compress_links.burst(mbit):,} B: a message that "
                      "fits it crosses unshaped when the bucket has refilled since the last "
                      "one, so below that size this table understates the transfer time "
                      "(and the gain)." if mbit else "")
            lines += [f"#### {link}", "",
                      f"Uncompressed {sizes[-1]:,} B requests crossed at "
                      f"{sizes[-1] * 8 / big / 1e3:,.0f} Mbit/s (the shaping and the two "
                      f"stacks' CPU on this VM included).{bucket}", "",
                      "| size | " + " | ".join(compress_links.CODECS) + " |",
                      "|---:|" + "---:|" * len(compress_links.CODECS)]
            for size in sizes:
                row = rows[str(size)]
                lines.append(f"| {size:,} | " + " | ".join(
                    f"{row[c]['median_ms']:.3f}" for c in compress_links.CODECS) + " |")
            lines.append("")
        lines += ["#### Break-even, measured", "",
                  "| link | " + " | ".join(compress_links.CODECS[1:]) + " |",
                  "|---|" + "---:|" * (len(compress_links.CODECS) - 1)]
        for link, row in result.get("links_break_even", {}).items():
            lines.append(f"| {link} | " + " | ".join(
                f"{v:,} B" if v else "never" for v in row.values()) + " |")
        return lines + [""]

    def plot(self, result: dict, outdir: Path) -> list[Path]:
        paths = self.plot_model(result, outdir)
        links = result.get("links") or {}
        if links and "skipped" not in links:
            paths.append(self.plot_links(links, outdir))
        return paths

    @staticmethod
    def plot_links(links: dict, outdir: Path) -> Path:
        """Request time with each codec over request time without, per link."""
        from ..plots import plt

        fig, axes = plt.subplots(1, len(links), figsize=(5 * len(links), 4.5), sharey=True)
        for ax, (link, rows) in zip(axes, links.items()):
            sizes = sorted(int(k) for k in rows if k.isdigit())
            for codec in compress_links.CODECS[1:]:
                ax.plot(sizes, [rows[str(s)][codec]["median_ms"] / rows[str(s)]["none"]["median_ms"]
                                for s in sizes], marker="o", label=codec)
            ax.axhline(1, color="black", linewidth=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{link}: request time vs uncompressed")
            ax.set_xlabel("payload bytes (fastnet.pack documents)")
        axes[0].set_ylabel("time with codec / time without (below 1: it pays)")
        axes[0].legend()
        path = outdir / "compress_links.png"
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path

    def plot_model(self, result: dict, outdir: Path) -> list[Path]:
        from ..plots import plt

        outdir.mkdir(parents=True, exist_ok=True)
        fig, axes = plt.subplots(1, len(LINKS), figsize=(15, 4.5), sharey=False)
        docs = [c for c in result["cells"] if c["kind"] == "pack"]
        for ax, (link, bw) in zip(axes, LINKS.items()):
            for name in result["codecs"]:
                ax.plot([c["size"] for c in docs],
                        [self.gain_us(c["codecs"][name], c["size"], bw) for c in docs],
                        marker="o", label=name)
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xscale("log")
            ax.set_yscale("symlog")
            ax.set_title(f"{link}: µs saved per message")
            ax.set_xlabel("payload bytes (fastnet.pack documents)")
        axes[0].legend()
        path = outdir / "compress_break_even.png"
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return [path]
