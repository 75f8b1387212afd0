"""Measurements inside a :class:`~fastnet.lab.netlab.Lab`: fastnet's TCP and UDP, and iperf3.

Senders run in namespace A, receivers in namespace B, so every byte of
data crosses the delay line and the lossy, rate-limited wire once.

* TCP: goodput is the bytes the receiving application read, divided by
  the time from connect() to the end of the run (slow start included, as
  iperf3 counts it); retransmissions, cwnd, MSS and the smoothed and
  minimum RTT come from the sender's TCP_INFO.
* UDP: datagrams at a fixed offered rate, each carrying a sequence number
  and its send time (CLOCK_MONOTONIC, which both namespaces share): loss,
  reordering, duplicates, one-way delay and RFC 3550 jitter are computed
  by the receiver.
"""
from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
import time
from typing import Any, Optional

from .delayline import big_buffers
from .netlab import ADDR_B, GUARD_S, Lab

CHUNK = 64 * 1024
#: UDP payload: the inner IP packet is then exactly the TUN MTU (1400 = 20 + 8 + 1372).
UDP_PAYLOAD = 1372
UDP_HEADER = struct.Struct("!QQ")  # sequence number, send time (ns)
#: Offered rate is paced in steps of this many seconds.
PACE_STEP = 0.001

# struct tcp_info (linux/tcp.h): the fields read here, by byte offset.
_TCP_INFO = {"snd_mss": (16, "I"), "retrans": (36, "I"), "rtt_us": (68, "I"),
             "rttvar_us": (72, "I"), "snd_cwnd": (80, "I"), "total_retrans": (100, "I"),
             "segs_out": (136, "I"), "min_rtt_us": (148, "I"), "data_segs_out": (156, "I")}


def tcp_info(sock: socket.socket) -> dict[str, int]:
    """The TCP_INFO fields above for ``sock`` (those the kernel did not fill are left out)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    out = {}
    for name, (off, fmt) in _TCP_INFO.items():
        if off + struct.calcsize(fmt) <= len(raw):
            out[name] = struct.unpack_from(fmt, raw, off)[0]
    return out


def _loss_from(counters: dict[str, int]) -> Optional[float]:
    seen = counters.get("seen", 0)
    return counters.get("dropped", 0) / seen if seen else None


def tcp_run(lab: Lab, seconds: float, cc: str = "cubic") -> dict[str, Any]:
    """Bulk TCP A -> B for ``seconds`` with congestion control ``cc``; goodput and TCP_INFO."""
    listener = lab.socket_b(socket.SOCK_STREAM)
    listener.bind((ADDR_B, 0))
    listener.listen(1)
    listener.settimeout(GUARD_S)
    port = listener.getsockname()[1]
    received = [0]
    stop = threading.Event()

    def receive() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.settimeout(0.2)
        buf = bytearray(1 << 20)
        with conn:
            while not stop.is_set():
                try:
                    n = conn.recv_into(buf)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not n:
                    break
                received[0] += n

    rx = threading.Thread(target=receive, daemon=True)
    rx.start()
    sender = lab.socket_a(socket.SOCK_STREAM)
    sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
    lab.wire_counters(reset=True)
    t0 = time.monotonic()
    info: dict[str, int] = {}
    try:
        sender.settimeout(GUARD_S)
        sender.connect((ADDR_B, port))
        connect_s = time.monotonic() - t0
        sender.settimeout(0.1)
        payload = b"\x00" * CHUNK
        end = t0 + seconds
        while time.monotonic() < end:
            try:
                sender.send(payload)
            except socket.timeout:
                continue
        got = received[0]
        elapsed = time.monotonic() - t0
        info = tcp_info(sender)
    finally:
        stop.set()
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sender.close()  # a reset: nothing queued is drained after the run
        rx.join(GUARD_S)
        listener.close()
    counters = lab.wire_counters()
    return {"proto": "tcp", "tool": "fastnet", "cc": cc, "goodput_bps": got * 8 / elapsed,
            "bytes": got, "seconds": elapsed, "connect_ms": connect_s * 1e3,
            "loss_measured": _loss_from(counters), "wire_packets": counters.get("seen", 0),
            "retransmits": info.get("total_retrans"), "segments_out": info.get("data_segs_out"),
            "cwnd": info.get("snd_cwnd"), "mss": info.get("snd_mss"),
            "srtt_ms": info.get("rtt_us", 0) / 1e3,
            "rtt_measured_ms": info.get("min_rtt_us", 0) / 1e3}


def udp_run(lab: Lab, seconds: float, rate_bps: float) -> dict[str, Any]:
    """Datagrams A -> B at ``rate_bps`` (payload bits) for ``seconds``; what arrived and how."""
    rx_sock = lab.socket_b(socket.SOCK_DGRAM)
    big_buffers(rx_sock)
    rx_sock.bind((ADDR_B, 0))
    rx_sock.settimeout(0.1)
    port = rx_sock.getsockname()[1]
    arrivals: list[tuple[int, int, int]] = []  # (seq, sent_ns, received_ns)
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                data = rx_sock.recv(65536)
            except socket.timeout:
                continue
            now = time.monotonic_ns()
            if len(data) >= UDP_HEADER.size:
                seq, sent_ns = UDP_HEADER.unpack_from(data)
                arrivals.append((seq, sent_ns, now))

    rx = threading.Thread(target=receive, daemon=True)
    rx.start()
    tx = lab.socket_a(socket.SOCK_DGRAM)
    big_buffers(tx)
    tx.connect((ADDR_B, port))
    pps = rate_bps / (UDP_PAYLOAD * 8)
    pad = b"\x00" * (UDP_PAYLOAD - UDP_HEADER.size)
    lab.wire_counters(reset=True)
    sent = 0
    t0 = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if now - t0 >= seconds:
                break
            due = min(int((now - t0) * pps) + 1 - sent, 200)  # a stall never turns into a burst
            for _ in range(max(due, 0)):
                try:
                    tx.send(UDP_HEADER.pack(sent, time.monotonic_ns()) + pad)
                except OSError:  # ENOBUFS: the datagram was not offered; it keeps its number
                    break
                sent += 1
            time.sleep(PACE_STEP)
        elapsed = time.monotonic() - t0
        # Wait for the datagrams still in the delay line (a guard, not a timing).
        time.sleep(lab.one_way_ms * 2 / 1e3 + 0.2)
    finally:
        stop.set()
        rx.join(GUARD_S)
        tx.close()
        rx_sock.close()
    counters = lab.wire_counters()
    return {"proto": "udp", "tool": "fastnet", "cc": None, "seconds": elapsed,
            "offered_bps": sent * UDP_PAYLOAD * 8 / elapsed, "wire_packets": counters.get("seen", 0),
            "wire_loss": _loss_from(counters), **udp_stats(arrivals, sent, elapsed)}


def udp_stats(arrivals: list[tuple[int, int, int]], sent: int, elapsed: float) -> dict[str, Any]:
    """Loss, reordering, duplicates, delay and RFC 3550 jitter from (seq, sent_ns, received_ns)."""
    seen: set[int] = set()
    duplicates = reordered = 0
    highest = -1
    jitter = 0.0
    prev_transit: Optional[int] = None
    delays = []
    for seq, sent_ns, recv_ns in arrivals:
        if seq in seen:
            duplicates += 1
            continue
        seen.add(seq)
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
        transit = recv_ns - sent_ns
        delays.append(transit)
        if prev_transit is not None:
            jitter += (abs(transit - prev_transit) - jitter) / 16
        prev_transit = transit
    delays.sort()
    unique = len(seen)
    return {"sent": sent, "received": unique, "duplicates": duplicates, "reordered": reordered,
            "loss_measured": 1 - unique / sent if sent else None,
            "goodput_bps": unique * UDP_PAYLOAD * 8 / elapsed,
            "jitter_ms": jitter / 1e6,
            "one_way_ms_min": delays[0] / 1e6 if delays else None,
            "one_way_ms_median": delays[len(delays) // 2] / 1e6 if delays else None,
            "rtt_measured_ms": 2 * delays[len(delays) // 2] / 1e6 if delays else None}


class Iperf3Failed(RuntimeError):
    """One iperf3 run did not produce a result (the sweep records it and goes on)."""


def iperf3_run(lab: Lab, seconds: float, udp_rate_bps: Optional[float] = None,
               cc: str = "cubic", attempts: int = 3) -> dict[str, Any]:
    """iperf3 in the same setup: server in B, client in A; TCP (with ``cc``), or UDP at ``udp_rate_bps``.

    iperf3 3.12 opens a UDP test with a single datagram and never resends it,
    so under loss a run can hang at the start; such a run is abandoned after
    a guard and started again, up to ``attempts`` times.
    """
    for attempt in range(attempts):
        try:
            return _iperf3_once(lab, seconds, udp_rate_bps, cc)
        except Iperf3Failed:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _iperf3_once(lab: Lab, seconds: float, udp_rate_bps: Optional[float],
                 cc: str) -> dict[str, Any]:
    server = subprocess.Popen(lab.exec_b() + ["iperf3", "-s", "-1", "--forceflush", "-B", ADDR_B, "-p", "5201"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        while line and "listening" not in line:
            line = server.stdout.readline()
        cmd = lab.exec_a() + ["iperf3", "-c", ADDR_B, "-p", "5201", "-J",
                              "-t", str(max(1, round(seconds)))]
        if udp_rate_bps is not None:
            cmd += ["-u", "-b", str(int(udp_rate_bps)), "-l", str(UDP_PAYLOAD)]
        else:
            cmd += ["-C", cc]
        lab.wire_counters(reset=True)
        try:
            client = subprocess.run(cmd, capture_output=True, text=True,
                                    timeout=seconds + GUARD_S)
        except subprocess.TimeoutExpired:
            raise Iperf3Failed(f"iperf3 did not finish within {seconds + GUARD_S:g} s") from None
        counters = lab.wire_counters()
        try:
            result = json.loads(client.stdout)
        except ValueError:
            raise Iperf3Failed(f"iperf3 printed no JSON: {client.stderr.strip()[:200]}") from None
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(GUARD_S)
        if server.stdout:
            server.stdout.close()
    if "error" in result:
        raise Iperf3Failed(f"iperf3: {result['error']}")
    end = result["end"]
    if udp_rate_bps is None:
        return {"proto": "tcp", "tool": "iperf3", "cc": cc,
                "goodput_bps": end["sum_received"]["bits_per_second"],
                "seconds": end["sum_received"]["seconds"],
                "retransmits": end["sum_sent"].get("retransmits"),
                "loss_measured": _loss_from(counters), "wire_packets": counters.get("seen", 0),
                "rtt_measured_ms": end["streams"][0]["sender"].get("min_rtt", 0) / 1e3}
    s = end["sum"]
    lost = s["lost_percent"] / 100
    return {"proto": "udp", "tool": "iperf3", "cc": None, "seconds": s["seconds"],
            "offered_bps": s["bits_per_second"], "goodput_bps": s["bits_per_second"] * (1 - lost),
            "loss_measured": lost, "jitter_ms": s["jitter_ms"],
            "wire_loss": _loss_from(counters), "wire_packets": counters.get("seen", 0)}
