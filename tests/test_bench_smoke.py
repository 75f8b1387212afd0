"""The benchmark framework end to end on one tiny cell: it builds the load
generator, starts and stops the servers, and writes JSON, markdown and PNGs
of the right shape. Never asserts a speed (DESIGN.md: speed is asserted in
benchmarks, not in tests)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastnet import native
from helpers import GUARD

ROOT = Path(__file__).resolve().parent.parent
# fastnet's server on the C engine; under FASTNET_PURE=1 (inherited by the
# servers bench starts), on its Python twin.
SERVERS = ("fastnet-c" if native.backend == "c" else "fastnet-python", "asyncio-protocol")
LATENCY_KEYS = ("mean_us", "p50_us", "p95_us", "p99_us", "p999_us", "max_us")


def test_echo_scenario_writes_json_markdown_and_plots(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "bench", "echo", "--quick", "--reps", "1", "--seconds", "0.5",
         "--warmup", "0.1", "--only", ",".join(SERVERS), "--matrix", "size=64",
         "--matrix", "conns=1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60 + GUARD)
    assert run.returncode == 0, run.stderr

    result = json.loads((tmp_path / "echo.json").read_text())
    assert result["scenario"] == "echo" and result["failed"] == {}
    assert result["servers"] == list(SERVERS)
    assert [e["cell"] for e in result["cells"]] == [{"size": 64, "conns": 1, "pipeline": 1}]
    cell = result["cells"][0]
    for name in SERVERS:
        (rep,) = cell["runs"][name]
        assert rep["requests"] > 0 and rep["errors"] == 0 and rep["mode"] == "closed"
        assert rep["proto"] == "raw" and rep["conns"] == 1 and rep["size"] == 64
        assert all(rep[k] > 0 for k in LATENCY_KEYS)
        assert rep["p50_us"] <= rep["p99_us"] <= rep["p999_us"] <= rep["max_us"] * 1.02
        assert sum(count for _, count in rep["histogram"]) == rep["requests"]
        assert 0 <= rep["client_cpu"] and rep["server_cpu_us"] > 0
        summary = cell["summary"][name]
        assert set(summary["ratios"]) == {"asyncio-protocol"}
    ref = cell["summary"]["asyncio-protocol"]["ratios"]["asyncio-protocol"]["rate"]
    assert ref["median"] == 1.0
    verdicts = {t["name"].split(",")[0]: t["verdict"] for t in result["targets"]}
    # A target whose server did not run is NOT MEASURED, never a verdict.
    measured = verdicts["echo: Python engine ≥1.0x asyncio Protocol"] != "NOT MEASURED"
    assert measured == ("fastnet-python" in SERVERS)
    assert set(verdicts.values()) <= {"PASS", "MISS", "NOT MEASURED"}

    report = (tmp_path / "report.md").read_text()
    assert "## echo (raw bytes)" in report and "### Targets" in report
    assert report.count("| 64 B, 1 conn, P1 |") == len(SERVERS)
    for png in ("echo-throughput.png", "echo-latency.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in report
