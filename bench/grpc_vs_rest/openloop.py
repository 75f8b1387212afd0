"""An open-loop client: requests due at a fixed rate, latency from each
one's intended send time.

    python -m bench.grpc_vs_rest.openloop SPEC.json

SPEC: {"port", "h2": bool, "rate", "seconds", "conns", "method", "path",
"headers": [[name, value], ...], "body_hex"}. Prints one JSON line:
{"latencies_us", "statuses", "grpc_statuses", "data"}.

Request i is due at i / rate seconds. ``conns`` threads each own one
connection and take the next due request when their last is answered (one
in flight per connection, HTTP/1.1's rule, kept for HTTP/2 too); a request
that waited for a free connection is charged for the wait, so a server
that stalls is not excused (no coordinated omission). The two framings are
written the same minimal way (a socket, fastnet's HPACK codec for HTTP/2),
so neither side's client costs more than the other's. h2load is not used
here: its --timing-script-file times each request from the previous
answer, and its --rps ticks came in bunches, milliseconds late.
"""
from __future__ import annotations

import json
import queue
import socket
import struct
import sys
import threading
import time
from typing import Any

from fastnet.codec.hpack import Decoder, Encoder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, RST = 0, 1, 4, 6, 7, 8, 3
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
WINDOW = 1 << 30


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + \
        struct.pack(">I", stream) + payload


class H1:
    """One HTTP/1.1 keep-alive connection."""

    def __init__(self, spec: dict) -> None:
        self.sock = socket.create_connection(("127.0.0.1", spec["port"]), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = bytes.fromhex(spec["body_hex"])
        head = [f"{spec['method']} {spec['path']} HTTP/1.1", f"Host: 127.0.0.1:{spec['port']}"]
        head += [f"{k}: {v}" for k, v in spec["headers"]]
        if body:
            head.append(f"Content-Length: {len(body)}")
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.buf = b""

    def call(self) -> tuple[int, str, int]:
        """Send the request, read the answer: (status, "", body bytes)."""
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(int(line.split(b":", 1)[1]) for line in lines[1:]
                      if line.lower().startswith(b"content-length:"))
        while len(self.buf) < length:
            self._more()
        self.buf = self.buf[length:]
        return status, "", length

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data


class H2:
    """One HTTP/2 connection (prior knowledge, as gRPC clients connect)."""

    def __init__(self, spec: dict) -> None:
        self.sock = socket.create_connection(("127.0.0.1", spec["port"]), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder, self.decoder = Encoder(), Decoder()
        self.headers = [(":method", spec["method"]), (":scheme", "http"),
                        (":path", spec["path"]), (":authority", f"127.0.0.1:{spec['port']}"),
                        *[(k, v) for k, v in spec["headers"]]]
        self.body = bytes.fromhex(spec["body_hex"])
        self.stream = 1
        self.send_window = 65535  # the connection's, for our DATA
        self.buf = b""
        settings = struct.pack(">HI", 4, WINDOW)  # SETTINGS_INITIAL_WINDOW_SIZE
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, settings)
                          + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", WINDOW - 65535)))

    def call(self) -> tuple[int, str, int]:
        """One stream: HEADERS (+ DATA), read to END_STREAM: (:status,
        grpc-status or "", DATA bytes)."""
        stream, self.stream = self.stream, self.stream + 2
        block = self.encoder.encode(self.headers)
        flags = END_HEADERS | (0 if self.body else END_STREAM)
        out = frame(HEADERS, flags, stream, block)
        if self.body:
            while self.send_window < len(self.body):
                self._handle(*self._frame())
            self.send_window -= len(self.body)
            out += frame(DATA, END_STREAM, stream, self.body)
        self.sock.sendall(out)
        status, grpc_status, data = 0, "", 0
        while True:
            kind, flags, sid, payload = self._frame()
            if sid != stream:
                self._handle(kind, flags, payload)
                continue
            if kind == HEADERS:
                for name, value in self.decoder.decode(payload):
                    if name == b":status":
                        status = int(value)
                    elif name == b"grpc-status":
                        grpc_status = value.decode()
            elif kind == DATA:
                data += len(payload)
            elif kind == RST:
                raise ConnectionError(f"stream {stream} reset")
            if flags & END_STREAM and kind in (HEADERS, DATA):
                return status, grpc_status, data

    def _frame(self) -> tuple[int, int, int, bytes]:
        while len(self.buf) < 9:
            self._more()
        length = int.from_bytes(self.buf[:3], "big")
        while len(self.buf) < 9 + length:
            self._more()
        kind, flags = self.buf[3], self.buf[4]
        sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
        payload, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
        return kind, flags, sid, payload

    def _handle(self, kind: int, flags: int, payload: bytes) -> None:
        """A connection-level frame (or one of a finished stream)."""
        if kind == SETTINGS and not flags & ACK:
            self.sock.sendall(frame(SETTINGS, ACK, 0, b""))
        elif kind == PING and not flags & ACK:
            self.sock.sendall(frame(PING, ACK, 0, payload))
        elif kind == WINDOW_UPDATE and len(payload) == 4:
            self.send_window += int.from_bytes(payload, "big") & 0x7FFFFFFF
        elif kind == GOAWAY:
            raise ConnectionError("GOAWAY from the server")

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data


def run(spec: dict) -> dict[str, Any]:
    """The open-loop run the spec describes."""
    n = max(1, int(spec["rate"] * spec["seconds"]))
    due: "queue.Queue[int]" = queue.Queue()
    for i in range(n):
        due.put(i)
    conns = [(H2 if spec["h2"] else H1)(spec) for _ in range(spec["conns"])]
    results: list[tuple[float, int, str, int]] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.05
    period = 1.0 / spec["rate"]

    def worker(conn: Any) -> None:
        while True:
            try:
                i = due.get_nowait()
            except queue.Empty:
                return
            at = start + i * period
            wait = at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                status, grpc_status, data = conn.call()
            except (OSError, ConnectionError, ValueError) as exc:
                errors.append(str(exc))
                return
            took = time.perf_counter() - at
            with lock:
                results.append((took * 1e6, status, grpc_status, data))

    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies_us": [r[0] for r in results], "statuses": [r[1] for r in results],
            "grpc_statuses": [r[2] for r in results], "data": sum(r[3] for r in results),
            "errors": errors[:3], "wall_s": time.perf_counter() - start}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(json.dumps(run(json.load(f))))
