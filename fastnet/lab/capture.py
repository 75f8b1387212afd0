"""Packet capture from an AF_PACKET raw socket with a kernel-side BPF filter.

No libpcap and no tcpdump: the socket is opened with protocol 0 (it receives
nothing yet), the compiled filter is attached, and only then is it bound to
the interface with ETH_P_ALL. Attaching before binding means no unfiltered
packet can slip into the queue in between.
"""
from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from typing import Any, Callable, Optional

from . import bpf
from ._sys import CAP_NET_RAW, require_capabilities
from .pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_TIMESTAMPNS = 35
SO_RCVBUF = socket.SO_RCVBUF
ARPHRD_NONE = 0xFFFE  # TUN devices: raw IP, no link header


def _hardware_type(iface: str) -> int:
    """The ARPHRD_* type of ``iface`` in this thread's namespace (sysfs shows the mount's)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as probe:  # protocol 0: receives nothing
        probe.bind((iface, 0))
        return int(probe.getsockname()[3])


class Capture:
    """A filtered capture on one interface (``lo`` by default).

    ``next(timeout)`` returns ``(ts_ns, frame)`` or None on timeout;
    ``stats()`` returns ``(delivered, dropped)`` since the last call, from
    PACKET_STATISTICS: the packets the filter accepted and the kernel
    queued, and those dropped for lack of buffer.
    """

    def __init__(self, expression: str = "", iface: str = "lo",
                 snaplen: int = bpf.DEFAULT_SNAPLEN, rcvbuf: int = 4 << 20) -> None:
        require_capabilities(CAP_NET_RAW, why="capturing from an AF_PACKET socket")
        self.iface = iface
        self.expression = expression
        socket.if_nametoindex(iface)  # OSError now if the interface does not exist
        self.linktype = LINKTYPE_RAW if _hardware_type(iface) == ARPHRD_NONE else LINKTYPE_ETHERNET
        link_header = 0 if self.linktype == LINKTYPE_RAW else 14
        self.program = bpf.compile_filter(expression, link_header=link_header, snaplen=snaplen,
                                          skip_outgoing=iface == "lo")
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            bpf.attach(self.sock, self.program)
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUF, rcvbuf)
            self.sock.bind((iface, ETH_P_ALL))
            self.snaplen = snaplen
            self.untimestamped = 0
            self.stats()  # start counting from here
        except BaseException:
            self.sock.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def next(self, timeout: Optional[float] = None) -> Optional[tuple[int, bytes]]:
        """The next accepted frame with its kernel timestamp, or None after ``timeout`` seconds."""
        if timeout is not None:
            ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
            if not ready:
                return None
        data, ancdata, _flags, _addr = self.sock.recvmsg(self.snaplen, socket.CMSG_SPACE(16))
        for level, kind, value in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack("qq", value[:16])
                return sec * 1_000_000_000 + nsec, data
        # No kernel timestamp (seen on a TUN device for an outgoing SYN): the
        # time of reading, counted, so a reader that lags is not silent about it.
        self.untimestamped += 1
        return time.time_ns(), data

    def stats(self) -> tuple[int, int]:
        """(delivered, dropped) since the previous call (the kernel resets them on read)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        packets, drops = struct.unpack("II", raw)
        return packets, drops

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def capture_and_annotate(expression: str, iface: str = "lo", count: Optional[int] = None,
                         timeout: Optional[float] = None, pcap_path: Optional[str] = None,
                         on_packet: Optional[Callable[[dict[str, Any]], None]] = None,
                         on_ready: Optional[Callable[[], None]] = None) -> list[dict[str, Any]]:
    """Capture until ``count`` packets or ``timeout`` seconds, annotating each as it arrives.

    ``on_packet`` is called with each annotation (the CLI prints it at once),
    ``on_ready`` once the filtered socket is bound (nothing sent earlier is seen);
    with ``pcap_path`` every accepted frame is also written there.
    """
    from .annotate import Annotator
    from .packet import decode
    from .pcap import PcapWriter

    out: list[dict[str, Any]] = []
    annotator = Annotator()
    deadline = None if timeout is None else time.monotonic() + timeout
    with Capture(expression, iface=iface) as cap, contextlib.ExitStack() as files:
        writer = None
        if pcap_path:
            writer = PcapWriter(files.enter_context(open(pcap_path, "wb")), linktype=cap.linktype)
        if on_ready is not None:
            on_ready()
        while count is None or len(out) < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            item = cap.next(timeout=left)
            if item is None:
                break
            if writer is not None:
                writer.write(*item)
                writer.flush()
            pkt = decode(item[0], item[1], cap.linktype)
            if pkt is None:
                continue
            a = annotator.feed(pkt)
            out.append(a)
            if on_packet is not None:
                on_packet(a)
    return out

