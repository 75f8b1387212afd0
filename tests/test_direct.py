"""The direct path (Engine.serve_directly): an engine with ``direct_path``
(C, Python) calls a plain handler itself and queues its reply, without
Server.on_message. Every Server semantic must hold on it, and on the
engines that do not take it."""
from __future__ import annotations

import socket
import struct

import pytest

import fastnet
from helpers import ENGINES, GUARD, running_server

pytestmark = pytest.mark.parametrize("engine", ENGINES)


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def read_until_closed(sock: socket.socket) -> list[bytes]:
    """Every whole frame that arrives before the server closes (or resets)."""
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    out = []
    while len(data) >= 4:
        (size,) = struct.unpack_from(">I", data)
        if len(data) < 4 + size:
            break
        out.append(data[4:4 + size])
        data = data[4 + size:]
    return out


def count_on_message(server: fastnet.Server) -> list[int]:
    """Count the engine's on_message calls (the engine looks the callback
    up on its handler, the server's private adapter, per batch)."""
    calls = [0]
    events = server.engine.handler
    on_message = events.on_message

    def counting(conn: int, message: bytes) -> None:
        calls[0] += 1
        on_message(conn, message)
    events.on_message = counting  # type: ignore[method-assign]
    return calls


def test_a_direct_path_engine_calls_a_plain_handler_without_on_message(engine):
    with running_server(engine, "frame", handler=lambda conn, m: m.upper()) as (server, port):
        calls = count_on_message(server)
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            for i in range(20):
                c.send(b"m%d" % i)
            assert [c.recv() for _ in range(20)] == [b"M%d" % i for i in range(20)]
    assert (calls[0] == 0) == server.engine.direct_path


def test_coroutine_handler_is_not_served_directly(engine):
    async def handler(conn: fastnet.Connection, message: bytes) -> bytes:
        return message

    with running_server(engine, "frame", handler=handler) as (server, port):
        calls = count_on_message(server)
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            c.send(b"x")
            assert c.recv() == b"x"
    assert calls[0] == 1


def test_handler_exception_closes_only_that_connection_and_is_counted(engine):
    def handler(conn: fastnet.Connection, message: bytes) -> bytes:
        if message == b"boom":
            raise RuntimeError("boom")
        return message

    with running_server(engine, "frame", handler=handler) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as bad, \
                fastnet.connect("127.0.0.1", port, "frame") as good:
            good.send(b"before")
            assert good.recv() == b"before"
            # One write: on the C engine the three arrive in one batch.
            bad.sendall(frame(b"ok1") + frame(b"boom") + frame(b"ok2"))
            replies = read_until_closed(bad)
            assert b"ok2" not in replies and b"boom" not in replies
            for i in range(50):
                good.send(b"after %d" % i)
            assert [good.recv() for _ in range(50)] == [b"after %d" % i for i in range(50)]
        stats = server.stats()
    assert stats["handler_errors"] == 1
    assert stats["closed_handler_error"] == 1


def test_reply_order_is_kept_across_connections_and_extra_sends(engine):
    """Pipelined messages of many connections in the same batches; some
    handlers also send a message of their own before returning, some return
    None, one sends to another connection: each connection gets exactly its
    own sequence, in order."""
    peers: dict[bytes, fastnet.Connection] = {}

    def handler(conn: fastnet.Connection, message: bytes) -> bytes | None:
        name, _, op = message.partition(b":")
        peers.setdefault(name, conn)
        if op.startswith(b"two"):
            conn.send(b"pre-" + message)
        elif op.startswith(b"none"):
            return None
        elif op.startswith(b"poke") and b"c0" in peers:
            peers[b"c0"].send(b"poked by " + name)
        return message

    nconns, depth = 20, 40
    with running_server(engine, "frame", handler=handler) as (server, port):
        socks = [socket.create_connection(("127.0.0.1", port), timeout=GUARD)
                 for _ in range(nconns)]
        # Register every connection's name first (c0 must exist before a poke).
        for i, s in enumerate(socks):
            s.sendall(frame(b"c%d:hello" % i))
        for s in socks:
            assert read_frames(s, 1) == [b"c%d:hello" % socks.index(s)]
        expected: list[list[bytes]] = [[] for _ in socks]
        for i, s in enumerate(socks):
            wire = []
            for j in range(depth):
                op = (b"two", b"none", b"one", b"poke" if i else b"one")[j % 4]
                m = b"c%d:%s%d" % (i, op, j)
                wire.append(frame(m))
                if op == b"two":
                    expected[i].append(b"pre-" + m)
                if op != b"none":
                    expected[i].append(m)
            s.sendall(b"".join(wire))
        pokes = sum(1 for i in range(1, nconns) for j in range(depth) if j % 4 == 3)
        got = [read_frames(s, len(expected[i]) + (pokes if i == 0 else 0))
               for i, s in enumerate(socks)]
        for s in socks:
            s.close()
    c0 = [m for m in got[0] if not m.startswith(b"poked by ")]
    assert c0 == expected[0]
    for i in range(1, nconns):
        assert got[i] == expected[i]
        # Pokes from one connection reach c0 in the order they were sent.
        from_i = [m for m in got[0] if m == b"poked by c%d" % i]
        assert len(from_i) == depth // 4


def read_frames(sock: socket.socket, n: int) -> list[bytes]:
    """The next n frames (the test pipelines; nothing is left over)."""
    data = b""
    out: list[bytes] = []
    while len(out) < n:
        while len(data) < 4 or len(data) < 4 + struct.unpack_from(">I", data)[0]:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(out)} of {n} frames"
            data += chunk
        (size,) = struct.unpack_from(">I", data)
        out.append(data[4:4 + size])
        data = data[4 + size:]
    return out


def test_connection_closed_by_its_handler_gets_no_reply_after_close(engine):
    seen: list[bytes] = []

    def handler(conn: fastnet.Connection, message: bytes) -> bytes:
        seen.append(message)
        if message == b"bye":
            conn.send(b"goodbye")  # sent before the close: it goes out
            conn.close()
            return b"late"          # returned after it: dropped
        return message

    with running_server(engine, "frame", handler=handler) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
            sock.sendall(frame(b"a") + frame(b"bye") + frame(b"after"))
            assert read_until_closed(sock) == [b"a", b"goodbye"]
        with fastnet.connect("127.0.0.1", port, "frame") as c:  # the server lives on
            c.send(b"still")
            assert c.recv() == b"still"
    assert b"after" not in seen


def test_frames_split_anywhere_are_answered_in_order(engine):
    """Frames of many sizes (empty to several reads long), sent in pieces
    that cut headers and payloads anywhere, and byte by byte: every reply,
    in order (the Python engine's direct path cuts whole frames out of a
    read itself and leaves the rest to the decoder)."""
    sizes = [0, 1, 3, 4, 5, 100, 4096, 70000, 2, 0, 300000, 7]
    payloads = [bytes([65 + i % 26]) * size for i, size in enumerate(sizes)]
    wire = b"".join(frame(p) for p in payloads)
    with running_server(engine, "frame", handler=lambda conn, m: m[::-1]) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in wire[:40]:          # the first frames a byte at a time
                sock.sendall(bytes([b]))
            pos, step = 40, 1
            while pos < len(wire):       # then pieces of growing, odd sizes
                sock.sendall(wire[pos:pos + step])
                pos += step
                step = step * 3 + 1
            assert read_frames(sock, len(payloads)) == [p[::-1] for p in payloads]


def test_an_oversized_frame_after_good_ones_answers_them_then_closes(engine):
    wire = frame(b"one") + frame(b"two") + struct.pack(">I", 1 << 20) + b"x" * 100
    with running_server(engine, "frame", handler=lambda conn, m: m.upper(),
                        max_frame=1000) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
            sock.sendall(wire)
            assert read_until_closed(sock) == [b"ONE", b"TWO"]
        with fastnet.connect("127.0.0.1", port, "frame") as c:  # the server lives on
            c.send(b"still")
            assert c.recv() == b"STILL"
        assert server.stats()["protocol_errors"] == 1
