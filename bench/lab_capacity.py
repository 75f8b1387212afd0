"""Can the lab's Python hold the rate? ``python -m bench.lab_capacity`` (root).

1. The delay line: CPU time the relay process uses per forwarded packet
   while fastnet's TCP fills the 100 Mbit/s wire, and the packets the lab
   lost by falling behind (TUN queue overflows, full socket buffers).
2. The capture loop: a UDP sender floods loopback for a second while a
   filtered ``Capture`` reads; how many packets per second it took, and how
   many the kernel dropped because the reader fell behind.

Both figures are of this machine under its present load (shared, 2 cores):
they decide C against Python by a margin, not to the percent.
"""
from __future__ import annotations

import os
import socket
import threading
import time

from fastnet.lab import Capture
from fastnet.lab import measure
from fastnet.lab.netlab import Lab


def _cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def relay(seconds: float = 3.0) -> None:
    with Lab() as lab:
        lab.set_delay(5.0)
        assert lab.relay is not None
        before = lab.relay_stats()
        cpu0 = _cpu_s(lab.relay.pid)
        r = measure.tcp_run(lab, seconds, "cubic")
        cpu = _cpu_s(lab.relay.pid) - cpu0
        after = lab.relay_stats()
        fwd = sum(after["forwarded"].values()) - sum(before["forwarded"].values())
        drops = lab.link_drops() + after["dropped_full"]
        print(f"delay line: TCP {r['goodput_bps'] / 1e6:.1f} Mbit/s over {r['seconds']:.1f} s, "
              f"{fwd} packets forwarded ({fwd / r['seconds']:.0f}/s both ways), relay CPU "
              f"{cpu / r['seconds'] * 100:.0f}% of a core = {cpu / max(fwd, 1) * 1e6:.1f} us/packet "
              f"(tunnelled: read TUN, sendto, recv, write TUN); packets lost in the lab: {drops}")


def capture(seconds: float = 1.0) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    stop = threading.Event()
    got = [0]
    with Capture(f"udp dst port {port}") as cap:
        def read() -> None:
            while not stop.is_set():
                if cap.next(timeout=0.1) is not None:
                    got[0] += 1
        t = threading.Thread(target=read)
        t.start()
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(100):
                tx.sendto(b"x" * 64, ("127.0.0.1", port))
            sent += 100
        time.sleep(0.5)
        stop.set()
        t.join()
        delivered, dropped = cap.stats()
    print(f"capture: {sent / seconds:.0f} packets/s offered on lo (one Python sender), "
          f"{got[0] / seconds:.0f}/s read by the Python capture loop, kernel dropped {dropped} "
          f"of {delivered + dropped} accepted by the filter")


if __name__ == "__main__":
    relay()
    capture()
