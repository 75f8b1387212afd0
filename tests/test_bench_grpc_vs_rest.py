"""bench grpc_vs_rest: the report's shape from a --quick run (tables, plots,
a row for every implementation, "not yet measured" for those not built),
never a speed; and the pieces it counts with, on bytes whose answer is known."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import GUARD

from bench.grpc_vs_rest import measure, wirecount
from bench.scenarios.grpc_vs_rest import MODES, implementations

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("## Implementations", "## Latency, throughput and server CPU per call",
            "## Bytes on the wire per call", "## Payload size: protobuf vs JSON",
            "## The stream (WatchItems)", "## Developer experience",
            "## Schema evolution, tried", "## Conclusions")
PLOTS = ("grpc_vs_rest-latency.png", "grpc_vs_rest-bytes.png", "grpc_vs_rest-throughput.png")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpc_vs_rest")
    run = subprocess.run([sys.executable, "-m", "bench", "grpc_vs_rest", "--quick",
                          "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=240 + GUARD)
    assert run.returncode == 0, run.stderr[-2000:]
    return out


def test_quick_run_writes_every_table_plot_and_row(quick_run):
    report = (quick_run / "grpc_vs_rest.md").read_text()
    assert not (quick_run / "report.md").exists()  # its own report, not a section
    positions = [report.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    for png in PLOTS:
        assert (quick_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in report
    result = json.loads((quick_run / "grpc_vs_rest.json").read_text())
    names = [i.name for i in implementations()]
    assert [i["name"] for i in result["impls"]] == names
    measured = [n for n in names if result["status"][n] == "measured"]
    # the peers and fastnet's REST server are always built; the others say why not
    assert {"fastnet-rest", "fastapi", "grpcio"} <= set(measured)
    for impl in implementations():
        if impl.name not in measured:
            assert impl.pending and result["status"][impl.name].startswith("not yet measured")
    assert [(e["call"], e["mode"]) for e in result["load"]] == [
        (c, m) for c in measure.CALLS for m in MODES]
    for entry in result["load"]:
        for name in measured:
            s = entry["summary"][name]
            assert "error" not in s, (entry["call"], entry["mode"], name, s)
            assert s["p50_us"]["median"] <= s["p95_us"]["median"] <= s["p99_us"]["median"]
            assert s["rate"]["median"] > 0
        for name in names:  # a row per implementation in every table: numbers or why not
            row = f"| {entry['call']} | {name} | "
            assert row in report
            if name not in measured:
                assert row + "not yet measured |" in report
    for name in measured:
        assert {(b["call"], b["gzip"]) for b in result["bytes"] if b["impl"] == name} == {
            (c, g) for c in measure.CALLS for g in (False, True)}
        assert result["stream"][name]["messages_per_s"]["median"] > 0
    assert len(result["evolution"]) == len(measure.EVOLUTIONS)


def test_errors_look_as_each_protocol_says(quick_run):
    seen = json.loads((quick_run / "grpc_vs_rest.json").read_text())["errors_seen"]
    assert "StatusCode.INVALID_ARGUMENT" in seen["grpcio"]["invalid"]
    assert "StatusCode.NOT_FOUND" in seen["grpcio"]["not_found"]
    for rest in ("fastnet-rest", "fastapi"):
        assert seen[rest]["invalid"].startswith("HTTP 400")
        assert "3 field violations" in seen[rest]["invalid"]
        assert seen[rest]["not_found"].startswith("HTTP 404")


def test_split_h1_counts_head_body_and_chunk_framing():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    chunked_head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    data = head + b"hello" + chunked_head + b"3\r\nabc\r\n0\r\n\r\n"
    assert wirecount.split_h1(data, 0, len(data)) == {
        "headers": len(head) + len(chunked_head), "body": 8, "framing": 3 + 2 + 3 + 2,
        "control": 0}
    assert wirecount.split_h1(data, len(head) + 5, len(data))["body"] == 3


def test_split_h2_by_frame_type_and_where_frames_start():
    def frame(kind: int, payload: bytes) -> bytes:
        return len(payload).to_bytes(3, "big") + bytes((kind, 0)) + (1).to_bytes(4, "big") + payload
    settings, headers, data = frame(4, b"\0" * 6), frame(1, b"h" * 10), frame(0, b"d" * 20)
    wire = wirecount.H2_PREFACE + settings + headers + data + headers
    whole = wirecount.split_h2(wire, 0, len(wire))
    assert whole == {"headers": 2 * 19, "body": 29, "framing": 0,
                     "control": len(wirecount.H2_PREFACE) + 15}
    # from the second HEADERS on: the walk keeps in step from the start
    tail = wirecount.split_h2(wire, len(wire) - len(headers), len(wire))
    assert tail == {"headers": 19, "body": 0, "framing": 0, "control": 0}


def test_payload_sizes_match_google_protobuf():
    from bench.grpc_vs_rest.generated import grpcio_modules
    from bench.grpc_vs_rest.rest import new_store

    pb2, _ = grpcio_modules()
    ours = new_store().get(42).SerializeToString()
    theirs = pb2.Item.FromString(ours)
    assert theirs.SerializeToString(deterministic=True) == ours
    assert theirs.name == "Cobalt lamp 42"
    sizes = {p["message"]: p for p in measure.payload_sizes()}
    assert sizes["GetItem response (Item)"]["protobuf"] == len(ours)
