"""``python -m bench grpc`` end to end, reduced: every cell measured for
fastnet and grpcio sync with no errors, the targets evaluated."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import GUARD

ROOT = Path(__file__).resolve().parent.parent


def test_grpc_scenario_measures_every_cell(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "bench", "grpc", "--quick", "--reps", "1", "--seconds", "0.5",
         "--warmup", "0", "--only", "fastnet-c,grpcio-sync", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240 + GUARD)
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "grpc.json").read_text())
    assert result["failed"] == {}
    loads = [e["cell"]["load"] for e in result["cells"]]
    assert loads == ["h2load c10 m10", "h2load c10 m10", "sequential h2load", "stream 100k",
                     "sequential grpcio client", "sequential fastnet client"]
    for entry in result["cells"]:
        for name in ("fastnet-c", "grpcio-sync"):
            (rep,) = entry["runs"][name]
            assert "error" not in rep, (entry["label"], name, rep)
            assert rep["requests"] > 0 and rep["errors"] == 0 and rep["rate"] > 0
            assert rep["p50_us"] <= rep["p99_us"] <= rep["max_us"]
    verdicts = {t["name"]: t["verdict"] for t in result["targets"]}
    assert verdicts["grpc: ≥10x grpcio-sync requests/s (h2load c10 m10)"] in ("PASS", "MISS")
    assert verdicts["grpc: ≥10x grpcio-aio requests/s (h2load c10 m10)"] == "NOT MEASURED"
    assert "## grpc" in (tmp_path / "report.md").read_text()


def test_grpc_feed_answers_every_call_in_its_read(capsys):
    """bench.grpc_feed's driver: each h2load-like read of one unary call is
    answered by the session's feed itself (it exits if one is not)."""
    from bench import grpc_feed
    assert grpc_feed.main(["--calls", "200"]) == 0
    assert "per unary call (200 calls)" in capsys.readouterr().out
