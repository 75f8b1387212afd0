"""The packet capture and annotation (python -m fastnet.lab handshake / capture).

The oracle is tshark: every annotated field is compared with tshark's own
dissection of the same pcap. The BPF compiler is checked against its
reference interpreter and against the kernel (packets delivered to the
socket are counted by the kernel's PACKET_STATISTICS).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from fastnet.lab import Annotator, Capture, PcapWriter, bpf, decode, read_pcap
from fastnet.lab.handshake import run_handshake
from fastnet.lab.netlab import lab_namespaces
from fastnet.lab.packet import ACK, FIN, PSH, RST, SYN

from lab_helpers import need_root, syn_options, tcp_frame, tshark_fields

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
A, B = ("10.1.0.1", 40000), ("10.1.0.2", 80)


# -- the BPF compiler -----------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("", True), ("tcp", True), ("udp", False), ("ip", True), ("icmp", False),
    ("port 80", True), ("tcp port 80", True), ("udp port 80", False), ("port 81", False),
    ("src port 40000", True), ("dst port 40000", False), ("dst port 80", True),
    ("host 10.1.0.2", True), ("src host 10.1.0.2", False), ("dst host 10.1.0.2", True),
    ("net 10.1.0.0/16", True), ("net 10.2.0.0/16", False),
    ("not tcp", False), ("! udp", True), ("tcp and port 81", False), ("udp or port 80", True),
    ("host 10.9.9.9 or (tcp && dst port 80)", True), ("not (port 80 or port 81)", False),
])
def test_bpf_program_decides_as_the_expression_says(expr, expected):
    frame = tcp_frame(A[0], A[1], B[0], B[1], 1, 0, SYN)
    prog = bpf.compile_filter(expr)
    assert (bpf.run(prog, frame) > 0) is expected
    raw_ip = bpf.compile_filter(expr, link_header=0)  # a TUN device: no Ethernet header
    assert (bpf.run(raw_ip, frame[14:]) > 0) is expected


def test_bpf_rejects_truncated_and_non_ip_frames():
    prog = bpf.compile_filter("tcp port 80")
    frame = tcp_frame(A[0], A[1], B[0], B[1], 1, 0, SYN)
    assert bpf.run(prog, frame[:30]) == 0           # cut inside the IP header
    assert bpf.run(prog, frame[:12] + b"\x86\xdd" + frame[14:]) == 0  # IPv6 ethertype
    frag = bytearray(frame)
    frag[14 + 6:14 + 8] = b"\x00\x10"                # a later fragment: no ports in it
    assert bpf.run(prog, bytes(frag)) == 0


@pytest.mark.parametrize("bad", ["port", "port 70000", "host 300.1.1.1", "tcp src", "(tcp",
                                 "tcp or", "frobnicate", "tcp $"])
def test_bpf_syntax_errors_name_the_problem(bad):
    with pytest.raises(bpf.FilterSyntaxError):
        bpf.compile_filter(bad)


def test_bpf_filter_drops_other_traffic_in_the_kernel():
    need_root()
    wanted = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with wanted, other, tx:
        wanted.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        port = wanted.getsockname()[1]
        with Capture(f"udp port {port}") as cap, Capture("udp") as everything:
            for i in range(250):
                tx.sendto(b"x", other.getsockname())
                if i % 5 == 0:
                    tx.sendto(b"y", wanted.getsockname())
            got = [cap.next(timeout=10) for _ in range(50)]
            assert all(g is not None for g in got)
            assert all(decode(*g).dport == port for g in got)  # type: ignore[union-attr, misc]
            assert cap.next(timeout=0.2) is None
            delivered, dropped = cap.stats()
            seen_all, _ = everything.stats()
        # The kernel queued exactly the 50 datagrams for the filtered socket,
        # while a socket filtered to all UDP got the other 200 as well.
        assert (delivered, dropped) == (50, 0)
        assert seen_all >= 250


# -- the handshake, field by field against tshark ------------------------------

FIELDS = ["ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "tcp.seq", "tcp.seq_raw", "tcp.ack",
          "tcp.ack_raw", "tcp.len", "tcp.flags", "tcp.window_size_value", "tcp.window_size",
          "tcp.options.mss_val", "tcp.options.wscale.shift", "tcp.options.sack_perm",
          "tcp.options.timestamp.tsval", "tcp.options.timestamp.tsecr",
          "tcp.analysis.initial_rtt", "tcp.analysis.retransmission", "tcp.analysis.zero_window",
          "tcp.analysis.window_update", "tcp.analysis.duplicate_ack", "tcp.analysis.keep_alive"]
FLAG_BITS = {"SYN": SYN, "FIN": FIN, "RST": RST, "PSH": PSH, "ACK": ACK, "URG": 0x20,
             "ECE": 0x40, "CWR": 0x80}


def assert_same_as_tshark(annotations, theirs):
    assert len(annotations) == len(theirs)
    for ours, t in zip(annotations, theirs):
        where = f"packet {ours['number']}"
        assert (ours["src"], ours["dst"]) == (t["ip.src"], t["ip.dst"]), where
        assert (str(ours["sport"]), str(ours["dport"])) == (t["tcp.srcport"], t["tcp.dstport"])
        assert str(ours["seq"]) == t["tcp.seq"] and str(ours["seq_raw"]) == t["tcp.seq_raw"], where
        assert str(ours["ack"] or 0) == t["tcp.ack"], where
        if ours["ack_raw"] is not None:
            assert str(ours["ack_raw"]) == t["tcp.ack_raw"], where
        assert str(ours["len"]) == t["tcp.len"], where
        assert sum(FLAG_BITS[f] for f in ours["flags"]) == int(t["tcp.flags"], 16), where
        assert str(ours["window"]) == t["tcp.window_size_value"], where
        assert str(ours["window_size"]) == t["tcp.window_size"], where
        o = ours["options"]
        assert str(o["mss"] or "") == t["tcp.options.mss_val"], where
        assert str("" if o["wscale"] is None else o["wscale"]) == t["tcp.options.wscale.shift"]
        assert o["sack_perm"] == bool(t["tcp.options.sack_perm"]), where
        assert str("" if o["tsval"] is None else o["tsval"]) == t["tcp.options.timestamp.tsval"]
        assert str("" if o["tsecr"] is None else o["tsecr"]) == t["tcp.options.timestamp.tsecr"]
        meaning = " ".join(ours["meaning"])
        for word, field in (("retransmission", "tcp.analysis.retransmission"),
                            ("zero window", "tcp.analysis.zero_window"),
                            ("window update", "tcp.analysis.window_update"),
                            ("duplicate ACK", "tcp.analysis.duplicate_ack"),
                            ("keep-alive", "tcp.analysis.keep_alive")):
            assert (word in meaning) == bool(t[field]), f"{where}: {word!r} vs tshark {field}"


def test_handshake_annotation_matches_tshark(tmp_path):
    need_root()
    pcap = str(tmp_path / "hs.pcap")
    result = run_handshake(pcap)
    packets = result["packets"]
    theirs = tshark_fields(pcap, FIELDS)
    assert_same_as_tshark(packets, theirs)
    rtt = [t["tcp.analysis.initial_rtt"] for t in theirs if t["tcp.analysis.initial_rtt"]][0]
    assert result["connection"]["handshake_rtt_s"] == pytest.approx(float(rtt), abs=1e-9)
    # What each packet means, and each side's state after it.
    assert packets[0]["meaning"][0].startswith("SYN")
    assert (packets[0]["client_state"], packets[0]["server_state"]) == ("SYN_SENT", "SYN_RECEIVED")
    assert packets[1]["meaning"][0].startswith("SYN-ACK")
    assert packets[1]["client_state"] == "ESTABLISHED"
    assert "ACK completing the handshake" in packets[2]["meaning"]
    assert packets[2]["server_state"] == "ESTABLISHED"
    meanings = [" ".join(p["meaning"]) for p in packets]
    assert any("first data segment client->server" in m for m in meanings)
    assert any("first data segment server->client" in m for m in meanings)
    fin = next(i for i, m in enumerate(meanings) if "active close" in m)
    assert packets[fin]["client_state"] == "FIN_WAIT_1"
    assert packets[fin]["server_state"] == "CLOSE_WAIT"
    assert any(p["server_state"] == "LAST_ACK" for p in packets)
    assert "final ACK" in meanings[-1]
    assert (packets[-1]["client_state"], packets[-1]["server_state"]) == ("TIME_WAIT", "CLOSED")


def test_handshake_between_namespaces_through_the_delay_line(tmp_path):
    need_root()
    pcap = str(tmp_path / "ns.pcap")
    result = run_handshake(pcap, rtt_ms=20.0)
    theirs = tshark_fields(pcap, FIELDS)  # a raw-IP pcap (captured on the TUN device)
    assert_same_as_tshark(result["packets"], theirs)
    rtt = result["connection"]["handshake_rtt_s"]
    assert rtt >= 0.020  # a floor: the delay line holds each way 10 ms; load only adds
    assert (result["packets"][-1]["client_state"], result["packets"][-1]["server_state"]) == (
        "TIME_WAIT", "CLOSED")
    assert lab_namespaces() == []


def test_pcap_opens_in_tshark_without_warnings(tmp_path):
    need_root()
    pcap = str(tmp_path / "hs.pcap")
    run_handshake(pcap)
    p = subprocess.run(["tshark", "-r", pcap, "-q", "-z", "expert,warn"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0
    noise = [line for line in p.stderr.splitlines() if line and "Running as user" not in line]
    assert noise == []
    assert "Warning" not in p.stdout and "Error" not in p.stdout, p.stdout


def test_handshake_cli_json_and_pcap(tmp_path):
    need_root()
    pcap = tmp_path / "cli.pcap"
    p = subprocess.run([sys.executable, "-m", "fastnet.lab", "handshake", "--json", "-w", str(pcap)],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["connection"]["client_state"] == "TIME_WAIT"
    assert len(tshark_fields(str(pcap), ["frame.number"])) == len(out["packets"])


# -- retransmission, zero window, window update, simultaneous close, reset ------

def _scenario() -> list[bytes]:
    """Two hand-built connections holding every event the annotator names."""
    c, s = A, B
    f = []
    f.append(tcp_frame(*c, *s, 1000, 0, SYN, options=syn_options(wscale=7)))
    f.append(tcp_frame(*s, *c, 5000, 1001, SYN | ACK, options=syn_options(wscale=2)))
    f.append(tcp_frame(*c, *s, 1001, 5001, ACK, window=500))
    f.append(tcp_frame(*c, *s, 1001, 5001, ACK | PSH, window=500, payload=b"a" * 100))
    f.append(tcp_frame(*c, *s, 1001, 5001, ACK | PSH, window=500, payload=b"a" * 100))  # again
    f.append(tcp_frame(*s, *c, 5001, 1101, ACK, window=0))                 # zero window
    f.append(tcp_frame(*s, *c, 5001, 1101, ACK, window=300))               # window update
    f.append(tcp_frame(*c, *s, 1101, 5001, FIN | ACK, window=500))         # both FIN before
    f.append(tcp_frame(*s, *c, 5001, 1101, FIN | ACK, window=300))         # either is acked
    f.append(tcp_frame(*c, *s, 1102, 5002, ACK, window=500))
    f.append(tcp_frame(*s, *c, 5002, 1102, ACK, window=300))
    c2 = (A[0], A[1] + 1)
    f.append(tcp_frame(*c2, *s, 7000, 0, SYN, options=syn_options()))
    f.append(tcp_frame(*s, *c2, 9000, 7001, SYN | ACK, options=syn_options()))
    f.append(tcp_frame(*c2, *s, 7001, 9001, ACK))
    f.append(tcp_frame(*c2, *s, 7001, 9001, RST | ACK))
    return f


def test_events_are_named_as_tshark_names_them(tmp_path):
    pcap = tmp_path / "events.pcap"
    with open(pcap, "wb") as fh:
        w = PcapWriter(fh)
        for i, frame in enumerate(_scenario()):
            w.write(1_700_000_000_000_000_000 + i * 1_000_000, frame)
    with open(pcap, "rb") as fh:
        linktype, records = read_pcap(fh)
        ann = Annotator()
        ours = [ann.feed(decode(ts, data, linktype)) for ts, data in records]  # type: ignore[arg-type]
    assert_same_as_tshark(ours, tshark_fields(str(pcap), FIELDS))
    meanings = [" ".join(a["meaning"]) for a in ours]
    assert "retransmission" in meanings[4]
    assert "zero window" in meanings[5] and "window update" in meanings[6]
    assert "active close" in meanings[7] and "simultaneous close" in meanings[8]
    assert (ours[8]["client_state"], ours[8]["server_state"]) == ("CLOSING", "CLOSING")
    assert (ours[10]["client_state"], ours[10]["server_state"]) == ("TIME_WAIT", "TIME_WAIT")
    assert "reset" in meanings[-1] and ours[-1]["client_state"] == "CLOSED"
    # The window is scaled by the sender's shift once both SYNs offered one.
    assert ours[2]["window_size"] == 500 << 7 and ours[5]["window_shift"] == 2


def test_capture_cli_names_a_reset(tmp_path):
    need_root()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "fastnet.lab", "capture", "--port", str(port),
                             "--count", "4", "--timeout", "30", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stderr is not None and "capturing on lo" in proc.stderr.readline()
        got: list[dict] = []
        reader = threading.Thread(target=lambda: got.extend(json.loads(line) for line in proc.stdout))
        reader.start()
        c = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()  # linger 0: a reset instead of a FIN
        conn.close()
        reader.join(30)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    tcp = [a for a in got if a["proto"] == "tcp"]
    assert [a["meaning"][0].split(":")[0] for a in tcp[:3]] == ["SYN", "SYN-ACK", "ACK completing the handshake"]
    assert tcp[3]["flags"][:1] == ["RST"] and "reset" in tcp[3]["meaning"][0]
    assert tcp[3]["client_state"] == tcp[3]["server_state"] == "CLOSED"
