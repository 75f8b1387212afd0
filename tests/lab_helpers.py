"""Helpers of the lab tests: tshark's dissection of a pcap, and hand-built TCP/IP frames."""
from __future__ import annotations

import shutil
import socket
import struct
import subprocess

import pytest

from fastnet.lab._sys import CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN, effective_capabilities


def need_root() -> None:
    """The lab needs root; CI runs as root, so this is never a skip there."""
    caps = effective_capabilities()
    for cap in (CAP_NET_RAW, CAP_NET_ADMIN, CAP_SYS_ADMIN):
        if not caps & (1 << cap):
            pytest.fail("the lab tests need root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_SYS_ADMIN)")


def tshark_fields(pcap: str, fields: list[str]) -> list[dict[str, str]]:
    """tshark's own dissection of ``pcap``: one dict per packet, field -> text ('' if absent)."""
    assert shutil.which("tshark"), "tshark is not installed (see the README's test command)"
    cmd = ["tshark", "-r", pcap, "-o", "tcp.relative_sequence_numbers:TRUE",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [dict(zip(fields, line.split("\t"))) for line in out.splitlines()]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_frame(src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int,
              window: int = 65535, payload: bytes = b"", options: bytes = b"") -> bytes:
    """An Ethernet frame holding one IPv4/TCP segment, checksums right."""
    options += b"\x00" * (-len(options) % 4)
    off = (20 + len(options)) // 4
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, 0)
    tcp += options + payload
    pseudo = s + d + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x00" * 12 + b"\x08\x00" + ip + tcp


def syn_options(mss: int = 1460, wscale: int = 7) -> bytes:
    """MSS, SACK-permitted, a timestamp and window scale, in Linux's order."""
    return (struct.pack("!BBH", 2, 4, mss) + b"\x04\x02" + struct.pack("!BBII", 8, 10, 1, 0)
            + b"\x01" + struct.pack("!BBB", 3, 3, wscale))
