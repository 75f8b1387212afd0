"""Kata 5: one TCP connection, captured and annotated packet by packet.

A listener and a client (threads of this process, a free port) make one
connection; the client sends a request, the server answers, the client
closes first (the active close, so the client ends in TIME_WAIT), the
server closes on end of file. A capture filtered to that port runs the
whole time and stops once both sides are closed.

By default both ends are on loopback (127.0.0.1, captured on ``lo``). With
``rtt_ms`` they are in the two namespaces of a :class:`~fastnet.lab.netlab.Lab`,
the client in A, the server in B, with the delay line holding every packet
half the RTT each way; the capture runs in B on its TUN device (raw IP),
where the SYN arrives: captured leaving A's TUN device, the SYN sometimes
carried a kernel timestamp about 30 ms late (after the SYN-ACK's), which
made the handshake RTT negative in 8 of 25 runs; where it arrives, 0 of 16.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Optional

from .annotate import Annotator
from .capture import Capture
from .packet import decode
from .pcap import PcapWriter

REQUEST = b"hello from the client\n"
REPLY = b"hello from the server\n"
GUARD_S = 10.0


def _read_line(sock: socket.socket) -> bytes:
    got = b""
    while not got.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def _serve(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        _read_line(conn)
        conn.sendall(REPLY)
        while conn.recv(4096):  # until the client's FIN
            pass


def run_handshake(pcap_path: Optional[str] = None,
                  rtt_ms: Optional[float] = None) -> dict[str, Any]:
    """Make one annotated connection; return {"packets": [...], "connection": {...}}."""
    if rtt_ms is None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        return _converse(listener, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
                         lambda expr: Capture(expr, iface="lo"), pcap_path)
    from .netlab import ADDR_B, Lab

    with Lab() as lab:
        lab.set_delay(rtt_ms / 2)
        listener = lab.socket_b(socket.SOCK_STREAM)
        listener.bind((ADDR_B, 0))
        return _converse(listener, lambda: lab.socket_a(socket.SOCK_STREAM),
                         lambda expr: lab.in_b(lambda: Capture(expr, iface="tb")), pcap_path)


def _converse(listener: socket.socket, make_client: Callable[[], socket.socket],
              open_capture: Callable[[str], Capture], pcap_path: Optional[str]) -> dict[str, Any]:
    listener.listen(1)
    addr = listener.getsockname()
    frames: list[tuple[int, bytes]] = []
    annotator = Annotator()
    annotations: list[dict[str, Any]] = []
    with open_capture(f"tcp port {addr[1]}") as cap:
        server = threading.Thread(target=_serve, args=(listener,), daemon=True)
        server.start()
        with make_client() as client:
            client.settimeout(GUARD_S)
            client.connect(addr)
            client.sendall(REQUEST)
            _read_line(client)
        server.join(GUARD_S)
        listener.close()
        deadline = time.monotonic() + GUARD_S
        while time.monotonic() < deadline:
            item = cap.next(timeout=0.2 if annotations else deadline - time.monotonic())
            if item is None:
                conn = next(iter(annotator.connections.values()), None)
                if conn is not None and conn.sides[conn.server].state == "CLOSED":
                    break
                continue
            pkt = decode(item[0], item[1], cap.linktype)
            if pkt is None:
                continue
            frames.append(item)
            annotations.append(annotator.feed(pkt))
    if pcap_path:
        with open(pcap_path, "wb") as f:
            w = PcapWriter(f, linktype=cap.linktype)
            for ts, data in frames:
                w.write(ts, data)
    conn = next(iter(annotator.connections.values()))
    return {"packets": annotations, "connection": conn.summary()}
