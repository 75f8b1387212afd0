"""Bytes on the wire per call, counted at the socket: a relay between the
client and the server keeps what passes each way, and the transcripts are
split into headers, body and the rest.

HTTP/1.1: a message's head (start line and fields, through the blank
line) is headers; its body is body; chunked framing (size lines and CRLFs)
is framing. HTTP/2: HEADERS and CONTINUATION frames (trailers included,
9-byte frame headers included) are headers; DATA frames are body (a gRPC
message's 5-byte prefix included); the connection preface, SETTINGS,
WINDOW_UPDATE, PING and the rest are control.

The client marks call boundaries (``mark()``) between sequential calls:
what passed before the first mark is the first call with connection
setup, what passed between the first and the last the steady calls.
"""
from __future__ import annotations

import socket
import threading
from typing import Optional

#: The relay keeps at most this much per direction (a run sends far less).
MAX_TRANSCRIPT = 64 << 20
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
KINDS = ("headers", "body", "framing", "control")


class CountingRelay:
    """Listens on 127.0.0.1 (``port``), relays one connection at a time to
    ``target_port`` and keeps both directions' bytes."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = bytearray()     # client -> server
        self.down = bytearray()   # server -> client
        self.marks: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for src, dst, into in ((client, server, self.up), (server, client, self.down)):
                t = threading.Thread(target=self._pump, args=(src, dst, into), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, into: bytearray) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    if len(into) + len(data) > MAX_TRANSCRIPT:
                        raise RuntimeError("the relay's transcript is over its bound")
                    into += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def mark(self) -> None:
        """A call boundary: everything each way so far belongs to the calls before."""
        with self.lock:
            self.marks.append((len(self.up), len(self.down)))

    def close(self) -> None:
        self.listener.close()
        for t in self.threads:
            t.join(timeout=5)


def split_h1(data: bytes, start: int, end: int) -> dict[str, int]:
    """Bytes of headers, body and framing among the whole HTTP/1.1 messages
    in data[start:end]."""
    out = dict.fromkeys(KINDS, 0)
    pos = start
    while pos < end:
        head_end = data.find(b"\r\n\r\n", pos, end)
        if head_end < 0:
            raise ValueError(f"an incomplete HTTP/1.1 head at {pos}")
        head = bytes(data[pos:head_end]).lower()
        out["headers"] += head_end + 4 - pos
        pos = head_end + 4
        if b"transfer-encoding: chunked" in head:
            while True:
                line_end = data.index(b"\r\n", pos)
                size = int(bytes(data[pos:line_end]).split(b";")[0], 16)
                out["framing"] += line_end + 2 - pos + 2
                out["body"] += size
                pos = line_end + 2 + size + 2
                if size == 0:
                    break
        else:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            out["body"] += length
            pos += length
    return out


def split_h2(data: bytes, start: int, end: int) -> dict[str, int]:
    """Bytes of headers, body and control among the HTTP/2 frames that
    start in data[start:end] (the preface is control). The walk starts at
    the transcript's beginning, so a frame that was arriving at a mark
    (a PING, a WINDOW_UPDATE) cannot put it out of step."""
    out = dict.fromkeys(KINDS, 0)
    pos = 0
    if data.startswith(H2_PREFACE):
        if start == 0:
            out["control"] += len(H2_PREFACE)
        pos = len(H2_PREFACE)
    while pos < min(end, len(data)):
        if pos + 9 > len(data):
            raise ValueError(f"an incomplete HTTP/2 frame header at {pos}")
        length = int.from_bytes(data[pos:pos + 3], "big")
        kind = data[pos + 3]
        if pos >= start:
            out["body" if kind == 0 else "headers" if kind in (1, 9) else "control"] += 9 + length
        pos += 9 + length
    return out


def per_call(relay: CountingRelay, h2: bool, calls: int) -> dict[str, dict[str, float]]:
    """{"first": ..., "steady": ...}, each {"up": {kind: bytes}, "down": ...}:
    the first call with connection setup, and the mean of the calls between
    the first and the last mark (``calls`` of them)."""
    split = split_h2 if h2 else split_h1
    (u1, d1), (u2, d2) = relay.marks[0], relay.marks[-1]
    up, down = bytes(relay.up), bytes(relay.down)
    first = {"up": split(up, 0, u1), "down": split(down, 0, d1)}
    steady = {"up": split(up, u1, u2), "down": split(down, d1, d2)}
    return {"first": {k: {kind: float(v) for kind, v in d.items()} for k, d in first.items()},
            "steady": {k: {kind: v / calls for kind, v in d.items()} for k, d in steady.items()}}


def total(counts: dict[str, float], kinds: Optional[tuple[str, ...]] = None) -> float:
    """The sum of some kinds (default all) of one direction's counts."""
    return sum(v for k, v in counts.items() if kinds is None or k in kinds)
