"""What one unary gRPC call costs the server's protocol layers, in process.

    python -m bench.grpc_feed [--calls 20000] [--instructions]

A gRPC connection's session (fastnet.h2's H2Session with gRPC's rules,
serving bench/peers/grpc_peers.py's Echo) fed reads as h2load sends them
at -c1 -m1: one read per call, its HEADERS (HPACK-indexed after the first)
and one DATA frame with a 20-byte Echo message; ``feed`` returns the
reply. No socket, no engine, no asyncio round: what is measured is the
HTTP/2 connection, the session, the gRPC call path, protobuf and the
handler. CPU µs per call (a shared machine: noisy), or with
``--instructions`` instructions per call counted by valgrind's callgrind
(a run of --calls calls less a run of none, divided by --calls: the same
on a busy machine as on an idle one).
"""
from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import fastnet.grpc
from fastnet import native
from fastnet.codec.hpack import Encoder
from fastnet.grpc.protocol import encode_message
from fastnet.grpc.server import _grpc_session
from fastnet.h2.connection import PREFACE

from .peers.grpc_peers import HERE, PROTO, setup

_HEADERS = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/bench.Echo/Echo"),
            (b":authority", b"127.0.0.1:50051"), (b"user-agent", b"h2load nghttp2/1.52.0"),
            (b"content-type", b"application/grpc"), (b"te", b"trailers")]


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) \
        + struct.pack(">I", stream_id) + payload


class _Timer:
    def cancel(self) -> None:
        pass


class _Engine:
    def call_later(self, *_: Any) -> _Timer:
        return _Timer()


class _Conn:
    """What the session asks of its connection."""

    peer = ("127.0.0.1", 40000)
    closed = False

    def __init__(self, server: Any) -> None:
        self.server = server

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def idle(self) -> None:
        pass

    def protocol_error(self, error: Exception) -> None:
        raise error


def _calls(n: int) -> tuple[Any, list[bytes]]:
    """A session past the connection's start and its first call, and the reads of n calls."""
    server = fastnet.grpc.Server(engine="c" if native.backend == "c" else "python")
    setup(server)
    server.engine = _Engine()  # type: ignore[assignment]
    session = _grpc_session(_Conn(server), server.stream_app)
    session.opened()
    ns = fastnet.grpc.load(PROTO, include=[HERE])
    body = encode_message(ns.bench.Msg(data=bytes(20)).SerializeToString())
    encoder = Encoder()
    first, later = encoder.encode(_HEADERS), encoder.encode(_HEADERS)
    window = _frame(8, 0, 0, struct.pack(">I", 2**31 - 1 - 65535))
    start = PREFACE + _frame(4, 0, 0, b"") + _frame(4, 1, 0, b"") + window \
        + _frame(1, 4, 1, first) + _frame(0, 1, 1, body)
    if not session.feed(start):
        raise SystemExit("the first call was not answered")
    return session, [_frame(1, 4, sid, later) + _frame(0, 1, sid, body)
                     for sid in range(3, 3 + 2 * n, 2)]


async def _run(n: int) -> float:
    session, reads = _calls(n)
    feed = session.feed
    t = time.process_time()
    for data in reads:
        if not feed(data):
            raise SystemExit("a call was not answered in its read")
    return (time.process_time() - t) / max(n, 1)


def instructions(calls: int) -> float:
    """Instructions per call under callgrind (a run of ``calls`` less one of none)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")

    def counted(n: int) -> int:
        out = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              sys.executable, "-m", "bench.grpc_feed", "--calls", str(n)],
                             capture_output=True, text=True, timeout=900,
                             cwd=Path(__file__).resolve().parent.parent)
        found = re.search(r"Collected : (\d+)", out.stderr)
        if out.returncode != 0 or found is None:
            raise SystemExit(f"callgrind failed: {out.stderr[-500:]}")
        return int(found.group(1))
    return (counted(calls) - counted(0)) / calls


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_feed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per call with valgrind's callgrind")
    args = parser.parse_args(argv)
    if args.instructions:
        print(f"{instructions(args.calls):.0f} instructions per unary call (callgrind, "
              f"{args.calls} calls)")
        return 0
    per_call = asyncio.run(_run(args.calls))
    if args.calls:
        print(f"{per_call * 1e6:.2f} µs of CPU per unary call ({args.calls} calls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
