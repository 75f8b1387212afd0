"""Two network namespaces joined by a veth pair, with loss, a rate limit and a delay line.

::

    namespace A                                         namespace B
    app -> ta (TUN 10.77.1.1) -> relay --UDP--> va ==veth==> vb --> relay -> tb (10.77.1.2) -> app
                                         tbf on va        nftables drop on vb

Everything is created inside namespaces whose names are unique to this run
(``fnlab<pid>x<random>a`` and ``...b``), so parallel runs never collide and
the host's own namespace (its interfaces, routes and firewall) is never
touched. :class:`Lab` is a context manager: leaving it (normally, by an
exception, or by SIGINT/SIGTERM/SIGHUP, which it turns into an exception)
stops the relay and deletes both namespaces, which removes the veth pair,
the TUN devices and the nftables table with them.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from types import FrameType, TracebackType
from typing import Any, Callable, Optional, TypeVar

from ._sys import CAP_NET_ADMIN, CAP_SYS_ADMIN, in_netns, require_capabilities, require_tools
from .delayline import TUN_MTU

T = TypeVar("T")
VETH_A, VETH_B = "10.77.0.1", "10.77.0.2"
#: The addresses applications use: routed through the delay line.
ADDR_A, ADDR_B = "10.77.1.1", "10.77.1.2"
RELAY_PORT = 4789
NFT_TABLE = "fastnet_lab"
PREFIX = "fnlab"
GUARD_S = 10.0


def _run(*cmd: str, stdin: Optional[str] = None) -> str:
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=GUARD_S)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def lab_namespaces() -> list[str]:
    """The namespaces of this process's labs that exist now (the tests check none is left)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    mine = f"{PREFIX}{os.getpid()}x"
    return [line.split()[0] for line in out.splitlines() if line.startswith(mine)]


class _Interrupted(BaseException):
    """A signal arrived while the lab was up; raised so every finally clause runs."""


class Lab:
    """The namespaces, the wire and the delay line; ``with Lab(...) as lab:``.

    ``rate_mbit`` is the wire's rate (tbf on A's veth, A to B). Loss and
    one-way delay are set per measurement with :meth:`set_loss` and
    :meth:`set_delay`. Loss applies to the A to B direction (the data
    direction of every measurement: senders run in A, receivers in B).
    """

    def __init__(self, rate_mbit: float = 100.0) -> None:
        require_capabilities(CAP_NET_ADMIN, CAP_SYS_ADMIN,
                             why="building network namespaces, veth pairs and nftables rules")
        require_tools("ip", "nft", "tc")
        tag = f"{PREFIX}{os.getpid()}x{secrets.token_hex(2)}"
        self.ns_a, self.ns_b = tag + "a", tag + "b"
        self.rate_mbit = rate_mbit
        self.relay: Optional[subprocess.Popen[str]] = None
        self._created: list[str] = []
        self._old_handlers: dict[int, Any] = {}
        self.loss = 0.0
        self.one_way_ms = 0.0

    # -- life cycle -----------------------------------------------------------

    def __enter__(self) -> "Lab":
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: the caller handles signals
                break
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, t: Optional[type], v: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()
        if isinstance(v, _Interrupted):
            raise KeyboardInterrupt(str(v)) from None

    def _on_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    def _setup(self) -> None:
        a, b = self.ns_a, self.ns_b
        for ns in (a, b):
            _run("ip", "netns", "add", ns)
            self._created.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b)
        _run("ip", "-n", a, "addr", "add", f"{VETH_A}/24", "dev", "va")
        _run("ip", "-n", b, "addr", "add", f"{VETH_B}/24", "dev", "vb")
        _run("ip", "-n", a, "link", "set", "va", "up")
        _run("ip", "-n", b, "link", "set", "vb", "up")
        # The wire's rate, A to B. latency bounds tbf's queue (rate x 100 ms).
        _run("ip", "netns", "exec", a, "tc", "qdisc", "add", "dev", "va", "root", "tbf",
             "rate", f"{self.rate_mbit}mbit", "burst", "32kb", "latency", "100ms")
        _run("ip", "netns", "exec", b, "nft", "-f", "-", stdin=f"""
table inet {NFT_TABLE} {{
  counter seen {{}}
  counter dropped {{}}
  chain wire_in {{
    type filter hook prerouting priority raw; policy accept;
    iifname "vb" udp dport {RELAY_PORT} counter name "seen"
  }}
}}""")
        self.relay = subprocess.Popen(
            [sys.executable, "-m", "fastnet.lab.delayline", a, b, VETH_A, VETH_B, str(RELAY_PORT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            start_new_session=True)  # a ^C on the terminal reaches us, and we stop it
        assert self.relay.stdout is not None
        line = self.relay.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the delay line did not start (said {line!r})")
        for ns, dev, local, peer in ((a, "ta", ADDR_A, ADDR_B), (b, "tb", ADDR_B, ADDR_A)):
            _run("ip", "-n", ns, "link", "set", dev, "mtu", str(TUN_MTU), "up")
            _run("ip", "-n", ns, "addr", "add", local, "peer", peer, "dev", dev)

    def close(self) -> None:
        """Stop the relay and delete the namespaces (idempotent; never raises)."""
        if self.relay is not None:
            try:
                if self.relay.stdin:
                    self.relay.stdin.close()
                self.relay.wait(timeout=2)
            except Exception:
                pass
            if self.relay.poll() is None:
                self.relay.kill()
                self.relay.wait()
            if self.relay.stdout:
                self.relay.stdout.close()
            self.relay = None
        while self._created:
            ns = self._created.pop()
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=GUARD_S)
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()

    # -- knobs ------------------------------------------------------------------

    def _relay_command(self, line: str) -> Optional[str]:
        assert self.relay is not None and self.relay.stdin and self.relay.stdout
        self.relay.stdin.write(line + "\n")
        self.relay.stdin.flush()
        return self.relay.stdout.readline() if line == "stats" else None

    def set_delay(self, one_way_ms: float, jitter_ms: float = 0.0) -> None:
        """Hold every packet ``one_way_ms`` in each direction (RTT = twice that)."""
        self._relay_command(f"delay {one_way_ms} {jitter_ms}")
        self.one_way_ms = one_way_ms

    def set_loss(self, fraction: float) -> None:
        """Drop ``fraction`` of the A to B wire's packets at random (nftables numgen)."""
        per_million = round(fraction * 1_000_000)
        rules = f"flush chain inet {NFT_TABLE} wire_in\n"
        rules += (f'add rule inet {NFT_TABLE} wire_in iifname "vb" udp dport {RELAY_PORT} '
                  f'counter name "seen"\n')
        if per_million:
            rules += (f'add rule inet {NFT_TABLE} wire_in iifname "vb" udp dport {RELAY_PORT} '
                      f'numgen random mod 1000000 < {per_million} counter name "dropped" drop\n')
        _run("ip", "netns", "exec", self.ns_b, "nft", "-f", "-", stdin=rules)
        self.loss = fraction

    def wire_counters(self, reset: bool = False) -> dict[str, int]:
        """Packets seen and dropped on B's veth since the last reset."""
        cmd = ["ip", "netns", "exec", self.ns_b, "nft", "-j"]
        cmd += ["reset", "counters", "table", "inet", NFT_TABLE] if reset else \
            ["list", "counters", "table", "inet", NFT_TABLE]
        data = json.loads(_run(*cmd))
        out = {}
        for item in data.get("nftables", []):
            c = item.get("counter")
            if c:
                out[c["name"]] = c["packets"]
        return out

    def relay_stats(self) -> dict[str, Any]:
        """The delay line's counters (forwarded, dropped for a full queue, send errors)."""
        line = self._relay_command("stats")
        return json.loads(line or "{}")

    def link_drops(self) -> int:
        """Packets lost inside the lab rather than by the loss rule, since it was built.

        The TUN devices' queue overflows (the relay fell behind) and UDP
        datagrams dropped for a full socket buffer in either namespace (the
        relay's sockets, or a receiver that fell behind).
        """
        total = 0
        for ns, dev in ((self.ns_a, "ta"), (self.ns_b, "tb")):
            info = json.loads(_run("ip", "-n", ns, "-s", "-j", "link", "show", dev))
            total += info[0]["stats64"]["tx"]["dropped"]
            snmp = _run("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").splitlines()
            udp = [line.split() for line in snmp if line.startswith("Udp:")]
            if len(udp) == 2:
                total += int(dict(zip(udp[0], udp[1])).get("RcvbufErrors", 0))
        return total

    # -- sockets in a namespace ------------------------------------------------

    def in_a(self, fn: Callable[[], T]) -> T:
        return in_netns(self.ns_a, fn)

    def in_b(self, fn: Callable[[], T]) -> T:
        return in_netns(self.ns_b, fn)

    def socket_a(self, kind: int) -> socket.socket:
        return self.in_a(lambda: socket.socket(socket.AF_INET, kind))

    def socket_b(self, kind: int) -> socket.socket:
        return self.in_b(lambda: socket.socket(socket.AF_INET, kind))

    def exec_a(self) -> list[str]:
        """Command prefix running a program in namespace A."""
        return ["ip", "netns", "exec", self.ns_a]

    def exec_b(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns_b]


def wait_until(pred: Callable[[], bool], guard: float = GUARD_S, step: float = 0.01) -> bool:
    """Poll ``pred`` until it holds or ``guard`` seconds pass (a failure guard, not a timing)."""
    end = time.monotonic() + guard
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
