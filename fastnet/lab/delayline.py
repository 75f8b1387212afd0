"""The user-space delay line: a TUN device in each namespace, tunnelled over the veth pair.

This kernel has no netem, so delay is added here. The relay holds a TUN
device in namespace A (``ta``) and one in namespace B (``tb``), and one UDP
socket in each namespace bound to the veth's address there. An IP packet the
stack in A routes to ``ta`` is read by the relay, held for the configured
one-way delay (plus optional jitter, never reordering: a packet is released
no earlier than the one before it), then sent as one UDP datagram across the
veth to B's socket, and written into ``tb``, where B's stack receives it as
if it had arrived on a wire. B to A is the mirror image. So the veth pair
is the wire: the tbf qdisc on A's veth limits its rate and the nftables
rule on B's veth drops tunnelled datagrams, i.e. the packets inside them.

Run as ``python -m fastnet.lab.delayline NS_A NS_B ADDR_A ADDR_B PORT``; it
prints ``ready`` once both devices exist and then reads commands on stdin:
``delay MS JITTER_MS`` (one-way), ``stats`` (prints one JSON line of
counters) and ``quit``. End of stdin also ends it, so it never outlives the
lab that started it.
"""
from __future__ import annotations

import collections
import fcntl
import json
import os
import random
import select
import socket
import struct
import sys
import time
from typing import Deque

from ._sys import enter_netns

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
#: Packets held per direction before the relay drops (and counts) new ones:
#: nothing grows without bound. 100 Mbit/s x 100 ms of 1400-byte packets is under 1000.
MAX_HELD = 20000
#: Packets read from one descriptor per wake-up, so neither direction starves the other.
BATCH = 64
TUN_MTU = 1400


def open_tun(netns: str, name: str) -> int:
    """Create TUN device ``name`` in ``netns`` (gone when the descriptor closes); return the fd."""
    enter_netns(netns)
    tun = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return tun


def udp_in(netns: str, addr: str, port: int) -> socket.socket:
    """A non-blocking UDP socket in ``netns`` bound to ``addr:port``, with large buffers."""
    enter_netns(netns)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    big_buffers(s)
    s.bind((addr, port))
    s.setblocking(False)
    return s


SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33


def big_buffers(s: socket.socket, size: int = 8 << 20) -> None:
    """Socket buffers of ``size`` bytes past net.core.[rw]mem_max (root may), so bursts queue."""
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, size)


class Direction:
    """One way through the line: read from ``src`` (a TUN fd or a socket), hold, then deliver."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.held: Deque[tuple[float, bytes]] = collections.deque()
        self.last_release = 0.0
        self.forwarded = 0
        self.dropped_full = 0

    def hold(self, now: float, pkt: bytes, delay: float, jitter: float) -> None:
        if len(self.held) >= MAX_HELD:
            self.dropped_full += 1
            return
        at = now + delay + (random.uniform(-jitter, jitter) if jitter else 0.0)
        at = max(at, self.last_release)  # jitter never reorders
        self.last_release = at
        self.held.append((at, pkt))


def main(argv: list[str]) -> int:
    ns_a, ns_b, addr_a, addr_b, port_s = argv
    port = int(port_s)
    tun_a = open_tun(ns_a, "ta")
    sock_a = udp_in(ns_a, addr_a, port)
    tun_b = open_tun(ns_b, "tb")
    sock_b = udp_in(ns_b, addr_b, port)
    delay = jitter = 0.0
    # A -> B: read ta, hold, send over the veth; B's socket receives it and writes tb.
    ab, ba = Direction("a_to_b"), Direction("b_to_a")
    sent = {"a_to_b": 0, "b_to_a": 0}
    delivered = {"a_to_b": 0, "b_to_a": 0}
    send_errors = 0
    print("ready", flush=True)
    stdin = sys.stdin.fileno()
    commands = b""
    rlist = [tun_a, tun_b, sock_a.fileno(), sock_b.fileno(), stdin]
    while True:
        now = time.monotonic()
        heads = [d.held[0][0] for d in (ab, ba) if d.held]
        timeout = max(0.0, min(heads) - now) if heads else None
        ready, _, _ = select.select(rlist, [], [], timeout)
        now = time.monotonic()
        for fd in ready:
            if fd == stdin:
                # os.read, not sys.stdin: a buffered reader can swallow two
                # commands at once, and select() would never report the second.
                chunk = os.read(stdin, 4096)
                if not chunk:
                    return 0
                commands += chunk
                while b"\n" in commands:
                    line, commands = commands.split(b"\n", 1)
                    words = line.decode().split()
                    if not words:
                        continue
                    if words[0] == "quit":
                        return 0
                    if words[0] == "delay":
                        delay, jitter = float(words[1]) / 1e3, float(words[2]) / 1e3
                    elif words[0] == "stats":
                        print(json.dumps({
                            "forwarded": {"a_to_b": ab.forwarded, "b_to_a": ba.forwarded},
                            "dropped_full": ab.dropped_full + ba.dropped_full,
                            "sent": sent, "delivered": delivered, "send_errors": send_errors,
                            "held": len(ab.held) + len(ba.held)}), flush=True)
                    if len(commands) > 4096:  # nothing grows without bound
                        return 2
                continue
            if fd in (tun_a, tun_b):
                d = ab if fd == tun_a else ba
                for _ in range(BATCH):
                    try:
                        d.hold(now, os.read(fd, 65536), delay, jitter)
                    except BlockingIOError:
                        break
            else:
                sock, tun, key = ((sock_b, tun_b, "a_to_b") if fd == sock_b.fileno()
                                  else (sock_a, tun_a, "b_to_a"))
                for _ in range(BATCH):
                    try:
                        pkt = sock.recv(65536)
                    except BlockingIOError:
                        break
                    try:
                        os.write(tun, pkt)
                        delivered[key] += 1
                    except OSError:
                        send_errors += 1
        for d, sock, peer in ((ab, sock_a, addr_b), (ba, sock_b, addr_a)):
            while d.held and d.held[0][0] <= now:
                _, pkt = d.held.popleft()
                try:
                    sock.sendto(pkt, (peer, port))
                    sent[d.name] += 1
                except OSError:  # a full socket buffer: the packet is lost, counted
                    send_errors += 1
                d.forwarded += 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
