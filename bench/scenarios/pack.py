"""pack: MessagePack encode/decode speed and size, fastnet.pack against its peers.

    python -m bench pack [--quick] [--reps N] [--only fastnet-c,msgpack,...]

A micro benchmark (no servers): each workload is encoded and decoded by
every peer in the same process, the peers taking turns batch by batch
(A B C A B C ...) with the cyclic GC off while a batch is timed (as
bench.resp_boundary does), so load from the rest of the machine lands on
all of them alike; figures are medians over the rounds and ratios are to
msgpack's C extension measured in the same rounds.

Peers: fastnet.pack's C twin and Python twin, msgpack (its C extension and
its pure-Python fallback, msgpack.fallback), ormsgpack, msgspec.msgpack,
orjson and json (JSON peers skip the binary blob, which JSON cannot hold).
"""
from __future__ import annotations

import gc
import json
import marshal
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional

from ..scenario import Options, Scenario, register

Codec = tuple[Callable[[Any], bytes], Callable[[bytes], Any]]


def anchor_document() -> dict[str, Any]:
    """The anchor: 20 fields, one of them a list of 50 small dicts (2.2 KB
    of MessagePack, 3.7 KB of JSON as json.dumps writes it)."""
    items = [{"id": i, "sku": f"S{i:04d}", "qty": i % 7, "price": 9.5 + i, "ok": bool(i % 2)}
             for i in range(50)]
    return {
        "id": 123456789, "user": "alice@example.com", "active": True, "score": 97.5,
        "created": "2026-12-01T09:00:00Z", "tags": ["alpha", "beta", "gamma"], "count": 42,
        "ratio": 0.125, "nothing": None, "nested": {"a": 1, "b": [1, 2, 3], "c": {"d": "e"}},
        "items": items, "version": 3, "flags": [True, False, True], "big": 2**40,
        "neg": -12345, "title": "Le café déjà vu", "empty_list": [], "empty_map": {},
        "status": "ok", "checksum": "deadbeefcafebabe",
    }


def deep_document(depth: int = 100) -> Any:
    value: Any = {"leaf": 1}
    for i in range(depth):
        value = {"level": i, "child": [value]} if i % 2 else [value, i]
    return value


def workloads() -> dict[str, Any]:
    """name -> the object every peer encodes and decodes."""
    return {
        "anchor": anchor_document(),
        "10k small ints": list(range(100)) * 100,
        "1 MiB blob": bytes(range(256)) * 4096,
        "deep nesting": deep_document(),
        "unicode strings": ["Ωμέγα – 日本語のテキスト – emoji 🎉🚀 – Ünïcödé " * 3 for _ in range(50)],
        "64-byte message": {"id": 7, "method": "get", "params": ["user:1234", 60],
                            "ok": True, "ts": 1733043600, "trace": "a1b2c3d4e5f6"},
    }


def peers() -> dict[str, Optional[Codec]]:
    """name -> (encode, decode), None for a peer that is not installed."""
    from fastnet import pack

    out: dict[str, Optional[Codec]] = {}
    for twin in ("c", "python"):
        impl = pack.impls.get(twin)
        out[f"fastnet-{twin}"] = (impl.packb, impl.unpackb) if impl else None
    try:
        import msgpack
        import msgpack.fallback as fallback

        out["msgpack"] = (lambda o: msgpack.packb(o, use_bin_type=True),
                          lambda b: msgpack.unpackb(b, strict_map_key=False))
        packer = fallback.Packer(use_bin_type=True)
        out["msgpack-python"] = (packer.pack, lambda b: fallback.unpackb(b, strict_map_key=False))
    except ImportError:
        out["msgpack"] = out["msgpack-python"] = None
    try:
        import ormsgpack

        out["ormsgpack"] = (ormsgpack.packb, ormsgpack.unpackb)
    except ImportError:
        out["ormsgpack"] = None
    try:
        import msgspec

        out["msgspec"] = (msgspec.msgpack.Encoder().encode, msgspec.msgpack.Decoder().decode)
    except ImportError:
        out["msgspec"] = None
    try:
        import orjson

        out["orjson"] = (orjson.dumps, orjson.loads)
    except ImportError:
        out["orjson"] = None
    out["json"] = (lambda o: json.dumps(o).encode(), json.loads)
    return out


JSON_PEERS = ("orjson", "json")
REFERENCE = "msgpack"


def _batch_ns(run: Callable[[], Any], n: int) -> float:
    """ns per call of run over a batch of n calls, cyclic GC off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(n):
            run()
        return (time.perf_counter_ns() - start) / n
    finally:
        gc.enable()


def _calibrate(run: Callable[[], Any], budget_ns: float) -> int:
    """Calls per batch so that a batch takes about budget_ns."""
    one = _batch_ns(run, 1)
    one = min(one, _batch_ns(run, 1))
    return max(1, min(100000, int(budget_ns / max(one, 1.0))))


def bridge_costs(reps: int) -> dict[str, float]:
    """The C twin's marshal bridge, measured in parts: ns per object (10k
    small ints) and per byte (the 1 MiB blob), each way, and what a
    fallback to the Python twin costs (the anchor with one datetime)."""
    import datetime as dt

    from fastnet import native, pack

    if "c" not in pack.impls:
        return {}
    lib, ffi = native.lib, native.ffi
    c = pack.impls["c"]
    enc = c._new_encoder()
    dec = c._new_decoder()
    limits, flags = c._DEFAULT_C
    out: dict[str, float] = {}
    for name, obj, per in (("object", list(range(100)) * 100, 10000),
                           ("byte", bytes(range(256)) * 4096, 1 << 20)):
        stream = marshal.dumps(obj, 4)
        packed = c.packb(obj)
        n = lib.fn_pack_unpackb(dec, packed, len(packed), limits, flags | lib.FN_PACK_LOADS_UTF8)
        back = bytes(ffi.buffer(dec.out, n))
        parts = {
            "marshal.dumps": lambda: marshal.dumps(obj, 4),
            "C marshal->msgpack": lambda: lib.fn_pack_encode(enc, stream, len(stream), 512, 0),
            "C msgpack->marshal": lambda: lib.fn_pack_unpackb(dec, packed, len(packed), limits,
                                                              flags | lib.FN_PACK_LOADS_UTF8),
            "marshal.loads": lambda: marshal.loads(back),
        }
        for part, run in parts.items():
            n = _calibrate(run, 5e6)
            out[f"{part} ns/{name}"] = statistics.median(_batch_ns(run, n) for _ in range(reps)) / per
    doc = anchor_document()
    with_dt = dict(doc, when=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    runs = {"anchor": lambda: c.packb(doc), "anchor + datetime (fallback)": lambda: c.packb(with_dt)}
    for part, run in runs.items():
        n = _calibrate(run, 5e6)
        out[f"encode {part} ns"] = statistics.median(_batch_ns(run, n) for _ in range(reps))
    return out


@register
class PackScenario(Scenario):
    """Encode and decode ops/s and encoded size per workload and peer."""
    name = "pack"
    title = "pack (MessagePack encode/decode)"

    def server_names(self) -> list[str]:
        return list(peers())

    def run(self, opts: Options) -> dict:
        reps = opts.reps or (5 if opts.quick else 25)
        budget = 5e6 if opts.quick else 20e6
        available = {k: v for k, v in peers().items()
                     if v is not None and (not opts.only or k in opts.only)}
        result: dict[str, Any] = {
            "scenario": self.name, "kind": "micro", "title": self.title,
            "config": {"reps": reps, "batch_ms": budget / 1e6, "quick": opts.quick},
            "peers": list(available), "reference": REFERENCE, "workloads": [],
        }
        for wname, obj in workloads().items():
            entry: dict[str, Any] = {"name": wname, "size": {}, "encode_ns": {}, "decode_ns": {}}
            runs: dict[tuple[str, str], tuple[Callable[[], Any], int]] = {}
            for pname, (encode, decode) in available.items():
                if pname in JSON_PEERS and isinstance(obj, bytes):
                    continue
                data = encode(obj)
                entry["size"][pname] = len(data)
                for op, run in (("encode", lambda e=encode: e(obj)),
                                ("decode", lambda d=decode, b=data: d(b))):
                    runs[(pname, op)] = (run, _calibrate(run, budget))
            times: dict[tuple[str, str], list[float]] = {k: [] for k in runs}
            for _ in range(reps):
                for key, (run, n) in runs.items():
                    times[key].append(_batch_ns(run, n))
            for (pname, op), values in times.items():
                entry[f"{op}_ns"][pname] = {"median": statistics.median(values),
                                            "min": min(values), "max": max(values),
                                            "rounds": values}
            result["workloads"].append(entry)
        result["bridge"] = bridge_costs(reps)
        result["targets"] = self.targets(result)
        return result

    @staticmethod
    def ratio(entry: dict, op: str, peer: str, other: str) -> Optional[float]:
        """ops/s of peer over ops/s of other: the median over rounds of the
        ratio within each round (time of other / time of peer, measured
        back to back), so a burst of load that slows one round slows both
        sides of its ratio."""
        t = entry[f"{op}_ns"]
        if peer not in t or other not in t:
            return None
        pairs = zip(t[other]["rounds"], t[peer]["rounds"])
        return statistics.median(o / p for o, p in pairs)

    def targets(self, result: dict) -> list[dict]:
        anchor = next(w for w in result["workloads"] if w["name"] == "anchor")
        out = []
        for op in ("encode", "decode"):
            for twin, peer in (("fastnet-c", "msgpack"), ("fastnet-python", "msgpack-python")):
                r = self.ratio(anchor, op, twin, peer)
                out.append({"name": f"{twin} {op} anchor ≥1.0x {peer}",
                            "ratio": r, "verdict": "NOT MEASURED" if r is None
                            else "PASS" if r >= 1.0 else "MISS"})
            for peer in ("msgspec", "orjson"):
                r = self.ratio(anchor, op, "fastnet-c", peer)
                out.append({"name": f"fastnet-c {op} anchor vs {peer} (reported)", "ratio": r,
                            "verdict": "NOT MEASURED" if r is None else "REPORTED"})
        return out

    def markdown(self, result: dict) -> str:
        cfg = result["config"]
        lines = [f"## {result['title']}", "",
                 f"Micro benchmark, one process, peers interleaved batch by batch "
                 f"({cfg['reps']} rounds of ~{cfg['batch_ms']:g} ms batches per peer and "
                 f"operation, cyclic GC off while timing), median ops/s. Ratios are to "
                 f"{result['reference']} (C extension): the median over rounds of the ratio "
                 f"within each round. The machine is shared with other work (a 2-core VM, "
                 f"load average 5-10 during these runs): single figures swing by 2x and more "
                 f"between rounds; the paired ratios are what to read.", ""]
        for w in result["workloads"]:
            lines += [f"### {w['name']}", "",
                      "| peer | encode ops/s | × msgpack | decode ops/s | × msgpack | size (B) |",
                      "|---|---:|---:|---:|---:|---:|"]
            for peer in result["peers"]:
                if peer not in w["size"]:
                    continue
                cols = []
                for op in ("encode", "decode"):
                    ops = 1e9 / w[f"{op}_ns"][peer]["median"]
                    r = self.ratio(w, op, peer, REFERENCE)
                    cols += [f"{ops:,.0f}", f"{r:.2f}" if r else "–"]
                lines.append(f"| {peer} | {' | '.join(cols)} | {w['size'][peer]:,} |")
            lines.append("")
        lines += ["### Size against JSON", "",
                  "| workload | MessagePack (B) | JSON (B) | MessagePack / JSON |", "|---|---:|---:|---:|"]
        for w in result["workloads"]:
            mp = w["size"].get("fastnet-c") or w["size"].get("fastnet-python")
            js = w["size"].get("json")
            lines.append(f"| {w['name']} | {mp:,} | {f'{js:,}' if js else 'n/a (bytes)'} | "
                         f"{f'{mp / js:.2f}' if js else '–'} |")
        bridge = result.get("bridge") or {}
        if bridge:
            lines += ["", "### The C twin's marshal bridge", "",
                      "| part | cost |", "|---|---:|"]
            lines += [f"| {k} | {v:,.2f} |" for k, v in bridge.items()]
        lines += ["", "### Targets", "", "| target | ratio | verdict |", "|---|---:|---|"]
        for t in result["targets"]:
            lines.append(f"| {t['name']} | {t['ratio']:.2f} | {t['verdict']} |" if t["ratio"]
                         else f"| {t['name']} | – | {t['verdict']} |")
        return "\n".join(lines) + "\n"

    def plot(self, result: dict, outdir: Path) -> list[Path]:
        from ..plots import grouped_bars, plt

        outdir.mkdir(parents=True, exist_ok=True)
        labels = [w["name"] for w in result["workloads"]]
        paths = []
        for what, title, ylabel in (("encode", "encode", "ops/s (log)"), ("decode", "decode", "ops/s (log)"),
                                    ("size", "encoded size", "bytes (log)")):
            series = {}
            for peer in result["peers"]:
                if what == "size":
                    series[peer] = [w["size"].get(peer, 0) for w in result["workloads"]]
                else:
                    series[peer] = [1e9 / w[f"{what}_ns"][peer]["median"] if peer in w[f"{what}_ns"]
                                    else 0 for w in result["workloads"]]
            fig, ax = plt.subplots(figsize=(10, 4.5))
            grouped_bars(ax, labels, series, log=True)
            ax.set_title(f"fastnet.pack: {title} per workload")
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=7, ncol=4)
            fig.tight_layout()
            path = outdir / f"pack-{what}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
        return paths
