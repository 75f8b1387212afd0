"""Kata 5: one TCP connection on loopback, captured and annotated packet by packet.

A listener and a client (threads of this process, 127.0.0.1, a free port)
make one connection; the client sends a request, the server answers, the
client closes first (the active close, so the client ends in TIME_WAIT),
the server closes on end of file. A capture on ``lo`` filtered to that
port runs the whole time and stops once both sides are closed.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any, Optional

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


def run_handshake(pcap_path: Optional[str] = None, host: str = "127.0.0.1") -> dict[str, Any]:
    """Make one annotated connection; return {"packets": [...], "connection": {...}}."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    frames: list[tuple[int, bytes]] = []
    annotator = Annotator()
    annotations: list[dict[str, Any]] = []
    with Capture(f"tcp port {port}", iface="lo") as cap:
        server = threading.Thread(target=_serve, args=(listener,), daemon=True)
        server.start()
        with socket.create_connection((host, port), timeout=GUARD_S) as client:
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
            pkt = decode(*item)
            if pkt is None:
                continue
            frames.append(item)
            annotations.append(annotator.feed(pkt))
    if pcap_path:
        with open(pcap_path, "wb") as f:
            w = PcapWriter(f)
            for ts, data in frames:
                w.write(ts, data)
    conn = next(iter(annotator.connections.values()))
    return {"packets": annotations, "connection": conn.summary()}
