"""`python -m bench wire --quick` end to end on its smallest form: every way
of speaking wire the load generator knows (v1 without HELLO, v2 after a
HELLO, v2 with compression negotiated) is answered without an ERROR, and
the report has its shape. Never asserts a speed: one request in flight per
connection (a second's window at least, under load a pure-Python server
with 800 in flight answered none in a short one)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastnet import native

from helpers import GUARD

ROOT = Path(__file__).resolve().parent.parent
# Under FASTNET_PURE=1 (inherited by the servers bench starts) only the
# Python engine can serve.
WIRE = (("fastnet-c", "fastnet-c-v2", "fastnet-c-v2-zstd") if native.backend == "c"
        else ("fastnet-py", "fastnet-py-v2"))
SERVERS = (*WIRE, "asyncio-msgpack-streams")


def test_bench_wire_quick_speaks_every_version_and_writes_its_report(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "bench", "wire", "--quick", "--reps", "1", "--seconds", "1",
         "--warmup", "0.2", "--only", ",".join(SERVERS), "--matrix", "pipeline=1",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=90 + GUARD)
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "wire.json").read_text())
    assert result["failed"] == {} and result["servers"] == list(SERVERS)
    assert [e["cell"] for e in result["cells"]] == [{"size": 64, "conns": 50, "pipeline": 1}]
    cell = result["cells"][0]
    for name in SERVERS:
        (rep,) = cell["runs"][name]
        assert rep["requests"] > 0 and rep["errors"] == 0, name
        assert rep["proto"] == ("be32pack" if "msgpack" in name else "wire")
        assert rep["p50_us"] <= rep["p99_us"]
    verdicts = {t["name"]: t["verdict"] for t in result["targets"]}
    assert len(verdicts) == 4 and set(verdicts.values()) <= {"PASS", "MISS", "NOT MEASURED"}
    report = (tmp_path / "report.md").read_text()
    assert "## wire (fastnet wire v1/v2" in report and "### Targets" in report
    assert report.count("| 64 B, 50 conns, P1 |") == len(SERVERS)
    assert (tmp_path / "wire-throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

