"""The benchmark framework end to end on one tiny cell: it builds the load
generator, starts and stops the servers, and writes JSON, markdown and PNGs
of the right shape. Never asserts a speed (ARCHITECTURE.md: speed is asserted in
benchmarks, not in tests)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastnet import native
import pytest
from matplotlib.container import ErrorbarContainer

from helpers import GUARD

from bench import plots, scenarios  # noqa: F401  (scenarios: registration)
from bench.scenario import CELL_GLOSSARY, METRICS, SCENARIOS, LoadScenario

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
    assert CELL_GLOSSARY in report and "P1 is one request at a time" in report
    assert report.count("| 64 B, 1 conn, P1 |") == len(SERVERS)
    for png in ("echo-throughput.png", "echo-latency.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in report


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=GUARD)


def test_help_lists_every_scenarios_servers_and_matrix_keys():
    run = bench("--help")
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())  # unwrapped
    assert len(SCENARIOS) >= 4
    for name, scenario in SCENARIOS.items():
        assert f"{name}: {scenario.title}" in text
        # Micro benchmarks (pack) have peers but no matrix of cells.
        assert scenario.server_names()
        assert scenario.matrix() or not isinstance(scenario, LoadScenario)
        for server in scenario.server_names():
            assert server in text, (name, server)
        for key, values in scenario.matrix().items():
            assert f"{key}={','.join(map(str, values))}" in text, (name, key)
    assert "P16 is the pipeline depth" in text and "P1 is one request at a time" in text


@pytest.mark.parametrize(("args", "says"), [
    (("echo", "--only", "fastnet-C"), "--only: fastnet-C is not in echo"),
    (("frame", "--matrix", "sizes=64"), "--matrix: sizes is not in frame"),
])
def test_a_selection_that_matches_nothing_is_refused(args, says, tmp_path):
    run = bench(*args, "--out", str(tmp_path))
    assert run.returncode != 0 and says in run.stderr and "--help" in run.stderr
    assert not list(tmp_path.iterdir())  # refused before anything ran


def fake_result(scenario: LoadScenario) -> dict:
    """A result of the shape LoadScenario.run() returns, for two connection
    counts at pipeline 1 and 16, where a 1-connection cell is 100x slower."""
    cells = []
    for conns in (1, 50):
        for pipeline in (1, 16):
            cell = {"size": 64, "conns": conns, "pipeline": pipeline}
            summary = {}
            for i, server in enumerate(("fastnet-c", "asyncio-protocol")):
                base = (1 + i) * conns * pipeline * 100.0
                summary[server] = {m: {"median": base, "min": base * 0.9, "max": base * 1.2}
                                   for m in METRICS}
            cells.append({"cell": cell, "label": scenario.label(cell), "summary": summary,
                          "runs": {}})
    return {"scenario": scenario.name, "title": scenario.title, "config": {"reps": 3},
            "servers": ["fastnet-c", "asyncio-protocol"], "cells": cells}


def whiskers(ax) -> list[tuple[float, float]]:
    """(bottom, top) of every error bar drawn on ax, sorted."""
    return sorted((round(lo[1], 6), round(hi[1], 6)) for c in ax.containers
                  if isinstance(c, ErrorbarContainer) for lo, hi in c.lines[2][0].get_segments())


def test_plots_give_each_connection_count_its_own_panel_with_min_max_whiskers():
    echo = SCENARIOS["echo"]
    assert isinstance(echo, LoadScenario)
    result = fake_result(echo)
    figs = plots.figures(result, echo.label)
    try:
        panels = [ax for ax in figs["throughput"].axes if ax.get_title()]
        assert [ax.get_title() for ax in panels] == [
            "1 conn, P1", "1 conn, P16", "50 conns, P1", "50 conns, P16"]
        one_conn = panels[0]
        # The 1-connection cell fills its own axis (linear, from zero) instead of
        # being a sliver beside the 50-connection cells.
        assert one_conn.get_yscale() == "linear" and one_conn.get_ylim()[0] == 0
        assert one_conn.get_ylim()[1] < 2 * 2 * 100.0 * 1.2 * 1.5
        assert whiskers(one_conn) == [(90.0, 120.0), (180.0, 240.0)]  # each server's min-max

        latency = [ax for ax in figs["latency"].axes if ax.get_title()]
        assert len(latency) == 4 * len(plots.PERCENTILES)
        for ax in latency:
            assert ax.get_yscale() == "log" and "not from 0" in ax.get_ylabel()
        assert "do not start at zero" in figs["latency"].texts[0].get_text()
        assert whiskers(latency[0]) == [(90.0, 120.0), (180.0, 240.0)]
    finally:
        for fig in figs.values():
            plots.plt.close(fig)


def test_a_percentile_no_load_generator_measured_gets_no_log_panel():
    """redis-benchmark gives no p99.9: its column is left out (a log axis of
    nothing but missing values raised "Data cannot be log-scaled"), and a
    panel where only some cells lack a value still draws the others."""
    echo = SCENARIOS["echo"]
    result = fake_result(echo)
    for entry in result["cells"]:
        for summary in entry["summary"].values():
            del summary["p999_us"]
    del result["cells"][0]["summary"]["asyncio-protocol"]["p99_us"]
    figs = plots.figures(result, echo.label)
    try:
        latency = [ax for ax in figs["latency"].axes if ax.get_title()]
        assert [ax.get_title().split(",")[0] for ax in latency[:2]] == ["p50", "p99"]
        assert len(latency) == 4 * 2
        assert all(ax.get_yscale() == "log" for ax in latency)
    finally:
        for fig in figs.values():
            plots.plt.close(fig)


def test_interceptors_bench_runs_every_peer(tmp_path):
    out = tmp_path / "icept.json"
    done = subprocess.run([sys.executable, "-m", "bench.interceptors", "--calls", "50",
                           "--grpcio-calls", "20", "--rounds", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=GUARD * 4, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert sorted(result["us_per_call"]) == [
        "fastnet, authentication", "fastnet, logging", "fastnet, no interceptor",
        "fastnet, rate limiting", "fastnet, three built-ins", "grpcio, no interceptor",
        "grpcio, three interceptors"]
    assert all(us > 0 for us in result["us_per_call"].values())
    assert sorted(result["fastnet_added_us"]) == [
        "fastnet, authentication", "fastnet, logging", "fastnet, rate limiting",
        "fastnet, three built-ins"]
    assert "three built-ins cost" in done.stdout
