"""A measuring process for ``python -m bench proto`` (one per protobuf backend).

    python -m bench.proto_worker

google.protobuf picks its backend (upb or pure Python) once per process,
from PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION, so the scenario starts one of
these per backend and asks each, in turn, to time one (peer, message, op):
one JSON request per line on stdin, one JSON answer per line on stdout.
Peers: ``google`` (this process's google.protobuf backend) and, where the
extension is built, ``fastnet-c`` and ``fastnet-python`` (the wire twins).

Messages (tests/proto_wire/kinds.proto): ``anchor`` (int32, int64, string,
bytes, packed repeated int32 x50, a nested message, map<string,int32> x10,
325 B), ``small`` (20 B) and ``large`` (64 KiB of bytes). Each op is timed
as a loop of ``n`` calls with the cyclic GC off; the answer is ns per call.
"""
from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import proto_helpers  # noqa: E402  (tests/: protoc and the descriptor converter)

from fastnet.proto import message, wire  # noqa: E402


def payloads() -> dict[str, dict[str, Any]]:
    """Keyword arguments of the three benchmark messages (nested as dicts)."""
    return {
        "anchor": {"id": 150_000, "stamp": 1_733_000_000_123_456,
                   "name": "fastnet benchmark anchor message",
                   "blob": bytes(range(48)),
                   "samples": [(i * 331) % 16_000 for i in range(50)],
                   "inner": {"a": 42, "s": "nested message text", "zs": [-1, 2, -3]},
                   "counts": {f"counter-{i}": i * 1_000 for i in range(10)}},
        "small": {"id": 12_345, "name": "sensor-01", "value": 1_234_567},
        "large": {"payload": bytes(range(256)) * 255 + bytes(251)},
    }


TYPES = {"anchor": "fastnet.test.Anchor", "small": "fastnet.test.Small",
         "large": "fastnet.test.Large"}


def google_message(cls: Any, kw: dict[str, Any]) -> Any:
    kw = dict(kw)
    inner = kw.pop("inner", None)
    msg = cls(**kw)
    if inner is not None:
        msg.inner.a, msg.inner.s = inner["a"], inner["s"]
        msg.inner.zs.extend(inner["zs"])
    return msg


def setup() -> dict[tuple[str, str], tuple[Callable[[], object], Callable[[], object], int]]:
    """(peer, message) -> (serialize, parse, size)."""
    files, google = proto_helpers.schema()
    out = {}
    for name, kw in payloads().items():
        g = google_message(google[TYPES[name]], kw)
        data = g.SerializeToString(deterministic=True)
        gcls = google[TYPES[name]]
        out[("google", name)] = (lambda g=g: g.SerializeToString(deterministic=True),
                                 lambda gcls=gcls, data=data: gcls.FromString(data), len(data))
        for twin in wire.impls:
            cls = message.build(files, twin)[TYPES[name]]
            m = cls(**kw)
            if m.SerializeToString() != data:
                raise SystemExit(f"fastnet-{twin} {name}: bytes differ from google.protobuf's")
            out[(f"fastnet-{twin}", name)] = (m.SerializeToString,
                                              lambda cls=cls, data=data: cls.FromString(data),
                                              len(data))
    return out


def timed(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        return (time.perf_counter_ns() - start) / n
    finally:
        gc.enable()


def main() -> None:
    from google.protobuf.internal import api_implementation

    cases = setup()
    print(json.dumps({"backend": api_implementation.Type(),
                      "peers": sorted({p for p, _ in cases}),
                      "sizes": {m: cases[("google", m)][2] for m in TYPES}}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        ser, parse, _ = cases[(req["peer"], req["message"])]
        fn = ser if req["op"] == "serialize" else parse
        print(json.dumps({"ns": timed(fn, int(req["n"]))}), flush=True)


if __name__ == "__main__":
    main()
