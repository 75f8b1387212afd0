"""Decoding captured frames: Ethernet or raw IP, IPv4, TCP (with its options) and UDP."""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import Optional

from .pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
FLAG_NAMES = [(SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"),
              (URG, "URG"), (ECE, "ECE"), (CWR, "CWR")]


@dataclass
class TcpOptions:
    """The TCP options the lab reports (None: absent)."""
    mss: Optional[int] = None
    wscale: Optional[int] = None
    sack_perm: bool = False
    sack: list[tuple[int, int]] = field(default_factory=list)
    tsval: Optional[int] = None
    tsecr: Optional[int] = None


@dataclass
class Packet:
    """One decoded IPv4 packet (``proto`` 6: TCP, 17: UDP, else only the IP fields are set)."""
    ts_ns: int
    src: str
    dst: str
    proto: int
    ip_len: int
    sport: int = 0
    dport: int = 0
    seq: int = 0
    ack: int = 0
    flags: int = 0
    window: int = 0
    options: TcpOptions = field(default_factory=TcpOptions)
    payload_len: int = 0

    def flag_names(self) -> list[str]:
        return [name for bit, name in FLAG_NAMES if self.flags & bit]


def _tcp_options(raw: bytes) -> TcpOptions:
    opts = TcpOptions()
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            break  # malformed: stop, as a receiver would
        size = raw[i + 1]
        body = raw[i + 2:i + size]
        if kind == 2 and size == 4:
            opts.mss = struct.unpack("!H", body)[0]
        elif kind == 3 and size == 3:
            opts.wscale = body[0]
        elif kind == 4 and size == 2:
            opts.sack_perm = True
        elif kind == 5 and (size - 2) % 8 == 0:
            opts.sack = [struct.unpack("!II", body[j:j + 8]) for j in range(0, len(body), 8)]
        elif kind == 8 and size == 10:
            opts.tsval, opts.tsecr = struct.unpack("!II", body)
        i += size
    return opts


def decode(ts_ns: int, frame: bytes, linktype: int = LINKTYPE_ETHERNET) -> Optional[Packet]:
    """Decode one frame; None for anything that is not a whole IPv4 header."""
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14 or frame[12:14] != b"\x08\x00":
            return None
        ip = frame[14:]
    elif linktype == LINKTYPE_RAW:
        ip = frame
    else:
        return None
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    ip = ip[:total]
    pkt = Packet(ts_ns, socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), ip[9], total)
    frag_offset = struct.unpack("!H", ip[6:8])[0] & 0x1FFF
    l4 = ip[ihl:]
    if frag_offset:
        return pkt
    if pkt.proto == socket.IPPROTO_TCP and len(l4) >= 20:
        pkt.sport, pkt.dport, pkt.seq, pkt.ack = struct.unpack("!HHII", l4[:12])
        off = (l4[12] >> 4) * 4
        pkt.flags = l4[13]
        pkt.window = struct.unpack("!H", l4[14:16])[0]
        pkt.options = _tcp_options(l4[20:off])
        pkt.payload_len = max(0, len(l4) - off)
    elif pkt.proto == socket.IPPROTO_UDP and len(l4) >= 8:
        pkt.sport, pkt.dport, ulen = struct.unpack("!HHH", l4[:6])
        pkt.payload_len = max(0, ulen - 8)
    return pkt
