"""What each captured packet means: per-connection TCP bookkeeping and each side's state.

An observer sees segments, not system calls, so it infers each endpoint's
RFC 9293 state from the segments that endpoint sends and receives. All the
logic is the transition table below: ``(state, event) -> state``. An event
the table does not list for a state leaves the state as it was (a capture
may start mid-connection, or miss a packet); the meaning printed beside the
packet still says what the packet is.

Sequence numbers are shown absolute (``seq_raw``) and relative to the
sender's initial sequence number (``seq``), as Wireshark does; windows are
scaled by the sender's window-scale shift once both SYNs offered one.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any, Optional

from .packet import ACK, FIN, RST, SYN, Packet

#: Events: snd_* for the endpoint that sent the segment, rcv_* for the one it reached.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("CLOSED", "snd_syn"): "SYN_SENT",
    ("LISTEN", "rcv_syn"): "SYN_RECEIVED",
    ("SYN_SENT", "rcv_syn"): "SYN_RECEIVED",          # simultaneous open
    ("SYN_SENT", "rcv_synack"): "ESTABLISHED",
    ("SYN_RECEIVED", "rcv_synack"): "ESTABLISHED",     # simultaneous open
    ("SYN_RECEIVED", "rcv_ack_of_syn"): "ESTABLISHED",
    ("SYN_RECEIVED", "snd_fin"): "FIN_WAIT_1",
    ("ESTABLISHED", "snd_fin"): "FIN_WAIT_1",
    ("CLOSE_WAIT", "snd_fin"): "LAST_ACK",
    ("ESTABLISHED", "rcv_fin"): "CLOSE_WAIT",
    ("SYN_RECEIVED", "rcv_fin"): "CLOSE_WAIT",
    ("FIN_WAIT_1", "rcv_ack_of_fin"): "FIN_WAIT_2",
    ("FIN_WAIT_1", "rcv_fin"): "CLOSING",              # simultaneous close
    ("FIN_WAIT_2", "rcv_fin"): "TIME_WAIT",
    ("CLOSING", "rcv_ack_of_fin"): "TIME_WAIT",
    ("LAST_ACK", "rcv_ack_of_fin"): "CLOSED",
}
#: A reset closes whatever the state was.
RESET_STATE = "CLOSED"


def _after(a: int, b: int) -> bool:
    """Sequence number ``a`` is after ``b`` (modulo 2**32)."""
    return 0 < (a - b) & 0xFFFFFFFF < 0x80000000


@dataclass
class _Side:
    state: str
    isn: Optional[int] = None
    wscale: Optional[int] = None        # shift offered in this side's SYN
    next_seq: Optional[int] = None      # highest seq + len (+1 for SYN/FIN) sent
    fin_seq: Optional[int] = None
    fin_acked: bool = False
    syn_acked: bool = False
    sent_data: bool = False
    last_ack: Optional[int] = None
    last_win: Optional[int] = None
    sent_syn: bool = False


@dataclass
class TcpConnection:
    """One TCP conversation: its two sides and what was learned of it."""
    client: tuple[str, int]
    server: tuple[str, int]
    sides: dict[tuple[str, int], _Side] = field(default_factory=dict)
    syn_ns: Optional[int] = None
    synack_ns: Optional[int] = None
    initial_rtt_ns: Optional[int] = None
    handshake_done: bool = False
    first_fin: Optional[tuple[str, int]] = None

    def name(self, end: tuple[str, int]) -> str:
        return "client" if end == self.client else "server"

    @property
    def scaling(self) -> bool:
        return all(s.wscale is not None for s in self.sides.values())

    def summary(self) -> dict[str, Any]:
        rtt = None if self.initial_rtt_ns is None else self.initial_rtt_ns / 1e9
        syn_synack = (None if self.syn_ns is None or self.synack_ns is None
                      else (self.synack_ns - self.syn_ns) / 1e9)
        return {"client": f"{self.client[0]}:{self.client[1]}",
                "server": f"{self.server[0]}:{self.server[1]}",
                "handshake_rtt_s": rtt, "syn_to_synack_s": syn_synack,
                "client_state": self.sides[self.client].state,
                "server_state": self.sides[self.server].state}


class Annotator:
    """Feed decoded packets in capture order; :meth:`feed` returns one annotation (a dict) each."""

    def __init__(self) -> None:
        self.connections: dict[frozenset[tuple[str, int]], TcpConnection] = {}
        self.udp_flows: dict[frozenset[tuple[str, int]], tuple[str, int]] = {}
        self.count = 0
        self.first_ns: Optional[int] = None

    def feed(self, pkt: Packet) -> dict[str, Any]:
        self.count += 1
        if self.first_ns is None:
            self.first_ns = pkt.ts_ns
        base: dict[str, Any] = {
            "number": self.count, "time_s": (pkt.ts_ns - self.first_ns) / 1e9,
            "src": pkt.src, "sport": pkt.sport, "dst": pkt.dst, "dport": pkt.dport,
            "len": pkt.payload_len}
        if pkt.proto == socket.IPPROTO_TCP:
            base["proto"] = "tcp"
            base.update(self._tcp(pkt))
        elif pkt.proto == socket.IPPROTO_UDP:
            base["proto"] = "udp"
            key = frozenset([(pkt.src, pkt.sport), (pkt.dst, pkt.dport)])
            first = self.udp_flows.setdefault(key, (pkt.src, pkt.sport))
            towards = "a->b" if (pkt.src, pkt.sport) == first else "b->a"
            base.update(direction=towards, flags=[], meaning=[f"UDP datagram ({towards})"])
        else:
            base.update(proto=str(pkt.proto), direction="", flags=[], meaning=["IP packet"])
        return base

    # -- TCP -----------------------------------------------------------------

    def _connection(self, pkt: Packet) -> TcpConnection:
        src, dst = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
        key = frozenset([src, dst])
        conn = self.connections.get(key)
        opening = pkt.flags & (SYN | ACK) == SYN
        if conn is None or (opening and conn.sides[src].state in ("CLOSED", "TIME_WAIT")
                            and conn.sides[dst].state in ("CLOSED", "TIME_WAIT")
                            and conn.sides[src].sent_syn and conn.sides[src].isn != pkt.seq):
            if opening or pkt.flags & (SYN | ACK) == SYN | ACK:
                client, server = (src, dst) if opening else (dst, src)
                conn = TcpConnection(client, server, {client: _Side("CLOSED"),
                                                      server: _Side("LISTEN")})
            else:  # mid-stream: the first sender is called the client
                conn = TcpConnection(src, dst, {src: _Side("ESTABLISHED"),
                                                dst: _Side("ESTABLISHED")})
            self.connections[key] = conn
        return conn

    def _step(self, side: _Side, event: str) -> bool:
        new = TRANSITIONS.get((side.state, event))
        if new is None:
            return False
        side.state = new
        return True

    def _tcp(self, pkt: Packet) -> dict[str, Any]:
        conn = self._connection(pkt)
        src, dst = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
        me, peer = conn.sides[src], conn.sides[dst]
        f = pkt.flags
        syn, fin, rst, has_ack = bool(f & SYN), bool(f & FIN), bool(f & RST), bool(f & ACK)
        seg_end = (pkt.seq + pkt.payload_len + syn + fin) & 0xFFFFFFFF
        meaning: list[str] = []
        who = conn.name(src)
        towards = f"{who}->{conn.name(dst)}"

        if syn and me.isn is None:
            me.isn = pkt.seq
        if me.isn is None:  # mid-stream: relative to the first sequence number seen
            me.isn = pkt.seq
        if syn:
            me.wscale = pkt.options.wscale

        # What it is.
        retransmission = (not rst and me.next_seq is not None
                          and (pkt.payload_len > 0 or syn or fin)
                          and not _after(seg_end, me.next_seq)
                          and not (pkt.payload_len <= 1 and not syn and not fin
                                   and (pkt.seq + 1) & 0xFFFFFFFF == me.next_seq))
        keep_alive = (not (syn or fin or rst) and pkt.payload_len <= 1 and me.next_seq is not None
                      and (pkt.seq + 1) & 0xFFFFFFFF == me.next_seq)
        if rst:
            meaning.append(f"reset (RST) from {who}")
        elif syn and not has_ack:
            meaning.append("SYN: the client opens" + (" (retransmission)" if me.sent_syn else ""))
            if conn.syn_ns is None:
                conn.syn_ns = pkt.ts_ns
        elif syn:
            meaning.append("SYN-ACK: the server accepts" + (" (retransmission)" if me.sent_syn else ""))
            if conn.synack_ns is None:
                conn.synack_ns = pkt.ts_ns
        if keep_alive:
            meaning.append("keep-alive")
        elif retransmission and not syn:
            meaning.append("retransmission")
        acks_syn = (has_ack and peer.sent_syn and not peer.syn_acked and peer.isn is not None
                    and pkt.ack == (peer.isn + 1) & 0xFFFFFFFF)
        acks_fin = (has_ack and peer.fin_seq is not None and not peer.fin_acked
                    and pkt.ack == (peer.fin_seq + 1) & 0xFFFFFFFF)
        if (acks_syn and not syn and src == conn.client and not conn.handshake_done):
            meaning.append("ACK completing the handshake")
            conn.handshake_done = True
            if conn.syn_ns is not None:
                conn.initial_rtt_ns = pkt.ts_ns - conn.syn_ns
        if pkt.payload_len > 0 and not retransmission and not keep_alive:
            meaning.append(f"first data segment {towards}" if not me.sent_data else f"data {towards}")
            me.sent_data = True
        if fin and not retransmission:
            if conn.first_fin is None:
                conn.first_fin = src
                meaning.append(f"FIN from the {who}: active close")
            elif not acks_fin:
                meaning.append(f"FIN from the {who}: simultaneous close")
            else:
                meaning.append(f"FIN from the {who}: passive close")

        window_scaled = (not syn and conn.scaling and me.wscale is not None)
        shift = me.wscale if window_scaled else None
        window_size = pkt.window << shift if shift is not None else pkt.window
        plain = not (syn or fin or rst)
        if plain and pkt.window == 0 and not keep_alive:
            meaning.append("zero window")
        if (plain and pkt.payload_len == 0 and has_ack and me.last_ack == pkt.ack
                and me.last_win is not None):
            if pkt.window != me.last_win:
                meaning.append("window update")
            elif (peer.next_seq is not None and _after(peer.next_seq, pkt.ack)
                  and not keep_alive):
                meaning.append("duplicate ACK")

        # State changes: the receiver first (it reacts to what arrived), then the sender.
        before = (conn.sides[conn.client].state, conn.sides[conn.server].state)
        if rst:
            me.state = peer.state = RESET_STATE
        else:
            if syn and has_ack:
                self._step(peer, "rcv_synack")
            elif syn:
                self._step(me, "snd_syn")
                self._step(peer, "rcv_syn")
            if acks_syn:
                self._step(peer, "rcv_ack_of_syn")
            if acks_fin:
                self._step(peer, "rcv_ack_of_fin")
            if fin:
                if peer.fin_seq is not None and not peer.fin_acked and not acks_fin \
                        and me.state == "CLOSE_WAIT":
                    # A FIN that does not acknowledge the peer's: it left before the
                    # peer's FIN arrived (a simultaneous close). Revise what was
                    # inferred: this side sent from ESTABLISHED, then got the peer's FIN.
                    me.state = "ESTABLISHED"
                    self._step(me, "snd_fin")
                    self._step(me, "rcv_fin")
                else:
                    self._step(me, "snd_fin")
                self._step(peer, "rcv_fin")
        if acks_syn:
            peer.syn_acked = True
        if acks_fin:
            peer.fin_acked = True
            if peer.state == "CLOSED":
                meaning.append("final ACK: the connection is closed")
            else:
                meaning.append(f"ACK of the {conn.name(dst)}'s FIN")
        if not meaning:
            meaning.append("ACK" if has_ack else "segment")

        # Bookkeeping for the next segment.
        if syn:
            me.sent_syn = True
        if fin and me.fin_seq is None:
            me.fin_seq = (pkt.seq + pkt.payload_len) & 0xFFFFFFFF
        if me.next_seq is None or _after(seg_end, me.next_seq):
            me.next_seq = seg_end
        if has_ack:
            me.last_ack = pkt.ack
        me.last_win = pkt.window

        after = (conn.sides[conn.client].state, conn.sides[conn.server].state)
        o = pkt.options
        return {
            "direction": towards,
            "flags": pkt.flag_names(),
            "seq_raw": pkt.seq, "ack_raw": pkt.ack if has_ack else None,
            "seq": (pkt.seq - me.isn) & 0xFFFFFFFF,
            "ack": (pkt.ack - peer.isn) & 0xFFFFFFFF if has_ack and peer.isn is not None else None,
            "window": pkt.window, "window_shift": shift, "window_size": window_size,
            "options": {"mss": o.mss, "wscale": o.wscale, "sack_perm": o.sack_perm,
                        "sack": o.sack, "tsval": o.tsval, "tsecr": o.tsecr},
            "meaning": meaning,
            "client_state": after[0], "server_state": after[1],
            "state_changed": after != before,
        }


def format_text(a: dict[str, Any]) -> str:
    """One annotation as a line (two for TCP) for people."""
    head = (f"{a['number']:>3} {a['time_s'] * 1e3:9.3f} ms  {a['src']}:{a['sport']} > "
            f"{a['dst']}:{a['dport']}  {a['proto'].upper()} ")
    if a["proto"] != "tcp":
        return head + f"len={a['len']}  {'; '.join(a['meaning'])}"
    o = a["options"]
    opts = []
    if o["mss"] is not None:
        opts.append(f"mss={o['mss']}")
    if o["sack_perm"]:
        opts.append("sackOK")
    if o["sack"]:
        opts.append("sack=" + ",".join(f"{lo}-{hi}" for lo, hi in o["sack"]))
    if o["tsval"] is not None:
        opts.append(f"ts={o['tsval']}/{o['tsecr']}")
    if o["wscale"] is not None:
        opts.append(f"wscale={o['wscale']}")
    ack = "" if a["ack"] is None else f" ack={a['ack']} ({a['ack_raw']})"
    win = f"win={a['window']}"
    if a["window_shift"] is not None:
        win += f"x{1 << a['window_shift']}={a['window_size']}"
    line1 = (head + f"[{','.join(a['flags'])}] seq={a['seq']} ({a['seq_raw']}){ack} {win} "
             f"len={a['len']}" + (f" <{' '.join(opts)}>" if opts else ""))
    line2 = (f"{'':>17}{a['direction']}: {'; '.join(a['meaning'])}  => client "
             f"{a['client_state']}, server {a['server_state']}")
    return line1 + "\n" + line2
