"""The loss lab: namespaces made and removed, loss and delay applied within tolerance, report shape.

Never a speed: loss is checked against its binomial tolerance, delay
against its floor (a minimum RTT cannot be below what the delay line adds,
and load can only add to it), and the report for its structure.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from fastnet.lab import loss, measure, report
from fastnet.lab.netlab import ADDR_B, Lab, lab_namespaces

from lab_helpers import need_root

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _all_namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_namespaces_are_created_and_removed():
    need_root()
    with Lab() as lab:
        assert sorted(lab_namespaces()) == sorted([lab.ns_a, lab.ns_b])
        # The veth pair and the TUN devices live only inside the lab's namespaces.
        links_a = subprocess.run(["ip", "-n", lab.ns_a, "-o", "link"], capture_output=True,
                                 text=True).stdout
        assert " va@" in links_a and " ta:" in links_a
        host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert " va@" not in host_links and " ta:" not in host_links
    assert lab_namespaces() == []


def test_namespaces_are_removed_when_interrupted():
    need_root()
    code = ("from fastnet.lab.netlab import Lab\nimport time\n"
            "with Lab() as lab:\n    print(lab.ns_a, lab.ns_b, flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        names = proc.stdout.readline().split()
        assert len(names) == 2 and all(n in _all_namespaces() for n in names)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any(n in _all_namespaces() for n in names)
    assert proc.returncode != 0  # interrupted, not a normal exit


def test_loss_is_applied_within_tolerance():
    need_root()
    with Lab() as lab:
        lab.set_delay(0.5)
        lab.set_loss(0.10)
        r = measure.udp_run(lab, 2.5, 45e6)
    # About 10,000 datagrams; binomial sd at p = 0.1 is 0.3 %, so +-2 % is far outside noise.
    assert r["sent"] >= 8000
    assert r["wire_loss"] == pytest.approx(0.10, abs=0.02)
    assert r["loss_measured"] == pytest.approx(0.10, abs=0.02)
    assert r["duplicates"] == 0 and r["reordered"] == 0  # no jitter configured: order kept


def test_commands_sent_back_to_back_are_all_answered():
    need_root()
    with Lab() as lab:  # two commands in one read of the relay's stdin, then a question
        lab.set_delay(1.0)
        lab.set_delay(2.0)
        assert lab.relay_stats()["held"] == 0


def test_no_loss_configured_means_none_on_the_wire():
    need_root()
    with Lab() as lab:
        lab.set_loss(0.0)
        r = measure.udp_run(lab, 0.5, 10e6)
    assert r["wire_loss"] == 0.0 and r["received"] > 0


def test_delay_is_applied():
    need_root()
    with Lab() as lab:
        lab.set_delay(0.0)
        fast = measure.tcp_run(lab, 0.3)
        lab.set_delay(10.0)  # one way: an RTT of 20 ms
        slow = measure.tcp_run(lab, 0.3)
        udp = measure.udp_run(lab, 0.3, 5e6)
        # A handshake through the line takes at least one RTT (its SYN-ACK's
        # RTT sample is TCP_INFO's min_rtt); the least of five shrugs off load.
        listener = lab.socket_b(socket.SOCK_STREAM)
        listener.bind((ADDR_B, 0))
        listener.listen(8)
        handshakes = []
        with listener:
            for _ in range(5):
                with lab.socket_a(socket.SOCK_STREAM) as s:
                    s.connect(listener.getsockname())
                    handshakes.append(measure.tcp_info(s)["min_rtt_us"] / 1e3)
    assert fast["rtt_measured_ms"] < 10.0
    assert slow["rtt_measured_ms"] >= 20.0  # a floor: queueing and load only add to it
    assert 20.0 <= min(handshakes) < 30.0
    assert 10.0 <= udp["one_way_ms_min"] < 15.0


def test_jitter_keeps_order_and_spreads_delay():
    need_root()
    with Lab() as lab:
        lab.set_delay(5.0, jitter_ms=2.0)
        r = measure.udp_run(lab, 0.5, 5e6)
    assert r["reordered"] == 0
    assert r["one_way_ms_min"] >= 3.0
    assert r["jitter_ms"] > 0.05


def test_report_has_its_shape(tmp_path):
    need_root()
    plan = loss.Plan(rtts_ms=(4.0,), losses=(0.0, 0.1), seconds=0.5, reps=1, udp_rate_bps=10e6,
                     ccs=("cubic",))
    points = loss.run(plan)
    # fastnet TCP per congestion control, fastnet UDP, iperf3 TCP and UDP, at each loss.
    assert len(points) == 2 * (len(plan.ccs) + 3)
    for p in points:
        assert p["proto"] in ("tcp", "udp") and p["tool"] in ("fastnet", "iperf3")
        assert p["loss_configured"] in plan.losses and p["rtt_ms"] == 4.0
        assert isinstance(p["goodput_bps"], float) and p["goodput_bps"] >= 0
        assert p["loss_measured"] is None or 0.0 <= p["loss_measured"] <= 1.0
        json.dumps(p)
    lossless = [p for p in points if p["loss_configured"] == 0 and p["proto"] == "udp"]
    assert all(p["loss_measured"] == 0 for p in lossless)
    md = report.write(points, str(tmp_path), plan, "test")
    text = open(md).read()
    assert "## RTT 4 ms" in text and "Mathis bound" in text and "## Conclusions" in text
    assert text.count("\n| 10.00% |") == 1 and text.count("\n| 0.00% |") == 1
    png = (tmp_path / "goodput.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "At 4 ms RTT, fastnet's TCP with cubic" in report.conclusions(points, plan.udp_rate_bps)
    fields, again, command = report.load(str(tmp_path))  # what --render reads back
    assert again == json.loads(json.dumps(points)) and command == "test"
    assert fields["losses"] == [0.0, 0.1] and fields["ccs"] == ["cubic"]
    assert lab_namespaces() == []


def test_mathis_bound():
    assert report.mathis_bps(1460, 100.0, 0.01) == pytest.approx(1460 * 8 / 0.1 * 1.2247 / 0.1, rel=1e-3)
    assert report.mathis_bps(1460, 10.0, 0.0) == float("inf")


def test_without_root_the_message_names_the_capability():
    # Root without the three capabilities (dropped from the bounding set).
    drop = ["setpriv", "--bounding-set=-net_raw,-net_admin,-sys_admin",
            "--inh-caps=-net_raw,-net_admin,-sys_admin"]
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run(drop + [sys.executable, "-m", "fastnet.lab", "handshake"],
                       capture_output=True, text=True, timeout=60, cwd="/", env=env)
    assert p.returncode == 77
    assert "CAP_NET_RAW" in p.stderr
    p = subprocess.run(drop + [sys.executable, "-m", "fastnet.lab", "loss", "--quick"],
                       capture_output=True, text=True, timeout=60, cwd="/", env=env)
    assert p.returncode == 77
    assert "CAP_NET_ADMIN and CAP_SYS_ADMIN" in p.stderr


def test_noisy_points_are_measured_again(monkeypatch):
    need_root()
    monkeypatch.setattr(loss, "NOISY_SPREAD", -1.0)  # every point counts as noisy
    plan = loss.Plan(rtts_ms=(2.0,), losses=(0.0,), seconds=0.3, reps=1, noisy_reps=1,
                     iperf3=False, ccs=("cubic",))
    points = loss.run(plan)
    assert sorted((p["proto"], p["reps"]) for p in points) == [("tcp", 2), ("udp", 2)]
    monkeypatch.setattr(loss, "NOISY_SPREAD", 1e9)  # none is
    assert all(p["reps"] == 1 for p in loss.run(plan))
