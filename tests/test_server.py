"""The Server over real sockets, on every engine."""
from __future__ import annotations

import asyncio
import logging
import os
import selectors
import socket
import struct
import threading

import pytest

import fastnet
from helpers import ENGINES, GUARD, require_engine, running_server, wait_for

pytestmark = pytest.mark.parametrize("engine", ENGINES)


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def test_frame_echo_round_trip(engine):
    with running_server(engine, "frame") as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            for payload in (b"", b"x", b"hello" * 100):
                c.send(payload)
                assert c.recv() == payload


def test_frame_split_byte_by_byte_and_many_in_one_write(engine):
    with running_server(engine, "frame") as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            for byte in frame(b"one byte at a time"):
                c.write(bytes([byte]))
            assert c.recv() == b"one byte at a time"
            messages = [b"m%d" % i for i in range(1000)]
            c.write(b"".join(frame(m) for m in messages))
            assert [c.recv() for _ in messages] == messages


def test_line_echo(engine):
    with running_server(engine, "line") as (server, port):
        with fastnet.connect("127.0.0.1", port, "line") as c:
            c.write(b"first\r\nsec")
            c.write(b"ond\r")
            c.write(b"\nthird\r\n")
            assert [c.recv(), c.recv(), c.recv()] == [b"first", b"second", b"third"]


def test_500_concurrent_clients(engine):
    with running_server(engine, "frame") as (server, port):
        clients = [fastnet.connect("127.0.0.1", port, "frame") for _ in range(500)]
        try:
            for i, c in enumerate(clients):
                c.send(b"client %d" % i)
            for i, c in enumerate(clients):
                assert c.recv() == b"client %d" % i
        finally:
            for c in clients:
                c.close()
        wait_for(lambda: server.stats()["open"] == 0, "all connections to close")
        assert server.stats()["accepted"] == 500


@pytest.mark.parametrize("protocol", ["echo", "frame"])
def test_10_mib_message_echoed_intact(engine, protocol):
    payload = os.urandom(10 * 1024 * 1024)
    with running_server(engine, protocol) as (server, port):
        with fastnet.connect("127.0.0.1", port, protocol) as c:
            # Send from another thread: raw echo answers while we still send.
            sender = threading.Thread(target=c.send, args=(payload,))
            sender.start()
            if protocol == "frame":
                got = c.recv()
            else:
                got = c.recv_exactly(len(payload))
            sender.join(GUARD)
            assert got == payload


def test_half_close_gets_every_echoed_byte_then_eof(engine):
    data = os.urandom(300_000)
    with running_server(engine, "echo") as (server, port):
        with fastnet.connect("127.0.0.1", port, "echo") as c:
            sender = threading.Thread(target=lambda: (c.write(data), c.shutdown_write()))
            sender.start()
            got = c.recv_exactly(len(data))
            sender.join(GUARD)
            assert got == data
            with pytest.raises(fastnet.errors.ConnectionClosed):
                c.recv()


def test_half_close_with_python_handler(engine):
    with running_server(engine, "frame", handler=lambda conn, m: m.upper()) as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            c.send(b"abc")
            c.send(b"def")
            c.shutdown_write()
            assert [c.recv(), c.recv()] == [b"ABC", b"DEF"]
            with pytest.raises(fastnet.errors.ConnectionClosed):
                c.recv()


def test_python_handler_gets_whole_messages(engine):
    seen: list[bytes] = []

    def handler(conn: fastnet.Connection, message: bytes) -> bytes:
        seen.append(message)
        return b"len=%d" % len(message)

    with running_server(engine, "frame", handler=handler) as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            big = b"z" * 100_000
            wire = frame(b"a") + frame(big) + frame(b"")
            for i in range(0, len(wire), 777):
                c.write(wire[i:i + 777])
            assert [c.recv(), c.recv(), c.recv()] == [b"len=1", b"len=100000", b"len=0"]
    assert seen == [b"a", big, b""]


def test_handler_may_send_several_messages_and_close(engine):
    def handler(conn: fastnet.Connection, message: bytes) -> None:
        for part in message.split(b","):
            conn.send(part)
        if message == b"bye":
            conn.close()

    with running_server(engine, "line", handler=handler) as (server, port):
        with fastnet.connect("127.0.0.1", port, "line") as c:
            c.send(b"a,b,c")
            assert [c.recv(), c.recv(), c.recv()] == [b"a", b"b", b"c"]
            c.send(b"bye")
            assert c.recv() == b"bye"
            with pytest.raises(fastnet.errors.ConnectionClosed):
                c.recv()


def test_slow_coroutine_handler_does_not_stall_other_connections(engine):
    started = threading.Event()
    release: dict[str, object] = {}

    async def handler(conn: fastnet.Connection, message: bytes) -> bytes:
        if message == b"slow":
            gate = asyncio.Event()
            release["gate"], release["loop"] = gate, asyncio.get_running_loop()
            started.set()
            await gate.wait()
        return b"done " + message

    with running_server(engine, "frame", handler=handler) as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as slow, \
                fastnet.connect("127.0.0.1", port, "frame") as fast:
            slow.send(b"slow")
            assert started.wait(GUARD)
            # The slow handler is parked; another connection is still served.
            for i in range(20):
                fast.send(b"fast %d" % i)
                assert fast.recv() == b"done fast %d" % i
            release["loop"].call_soon_threadsafe(release["gate"].set)  # type: ignore[attr-defined]
            assert slow.recv() == b"done slow"


def test_coroutine_handler_keeps_per_connection_order(engine):
    async def handler(conn: fastnet.Connection, message: bytes) -> bytes:
        await asyncio.sleep(0.001 * (message[-1] % 3))
        return message

    with running_server(engine, "frame", handler=handler) as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            messages = [b"m%d" % i for i in range(50)]
            c.write(b"".join(frame(m) for m in messages))
            assert [c.recv() for _ in messages] == messages


def test_oversized_frame_closes_only_that_connection(engine, caplog):
    caplog.set_level(logging.WARNING, logger="fastnet.server")
    with running_server(engine, "frame", max_frame=1024) as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as good, \
                fastnet.connect("127.0.0.1", port, "frame") as bad:
            good.send(b"before")
            assert good.recv() == b"before"
            bad.send(b"fine")
            assert bad.recv() == b"fine"
            bad.write(struct.pack(">I", 1025))  # only the header: rejected at once
            with pytest.raises((fastnet.errors.ConnectionClosed, ConnectionResetError)):
                bad.recv()
            good.send(b"after")
            assert good.recv() == b"after"
        wait_for(lambda: server.stats().get("protocol_errors") == 1, "the error to be counted")
    messages = [r.getMessage() for r in caplog.records if r.name == "fastnet.server"]
    assert any("1025" in m and "max_frame_size=1024" in m for m in messages), messages


def test_long_line_gets_error_reply_then_close(engine):
    with running_server(engine, "line", max_line=16) as (server, port):
        with fastnet.connect("127.0.0.1", port, "line") as c, \
                fastnet.connect("127.0.0.1", port, "line") as other:
            c.write(b"x" * 17)
            reply = c.recv()
            assert reply.startswith(b"-ERR Protocol error: ")
            assert b"max_line_length=16" in reply
            with pytest.raises((fastnet.errors.ConnectionClosed, ConnectionResetError)):
                c.recv()
            other.send(b"still here")
            assert other.recv() == b"still here"


def test_peer_reset_mid_message_is_counted(engine):
    with running_server(engine, "frame") as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as other:
            victim = socket.create_connection(("127.0.0.1", port))
            victim.sendall(frame(b"complete"))
            victim.sendall(struct.pack(">I", 1000) + b"partial")  # a frame cut short
            wait_for(lambda: server.stats()["bytes_in"] >= 4 + 8 + 4 + 7, "bytes to arrive")
            victim.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            victim.close()  # RST
            wait_for(lambda: server.stats().get("closed_reset", 0) == 1, "the reset to be counted")
            other.send(b"unaffected")
            assert other.recv() == b"unaffected"


def test_client_that_never_reads_does_not_stall_others(engine):
    """The classic event-loop mistake: one peer's full socket must not block
    the loop, and the server must stop reading it instead of buffering."""
    with running_server(engine, "echo") as (server, port):
        hog = socket.create_connection(("127.0.0.1", port))
        hog.setblocking(False)
        chunk = b"h" * 65536
        sent = 0
        sel = selectors.DefaultSelector()
        sel.register(hog, selectors.EVENT_WRITE)
        # Push until the server has stopped reading for a while (bounded).
        while sent < 512 * 1024 * 1024 and sel.select(timeout=1.0):
            try:
                sent += hog.send(chunk)
            except BlockingIOError:
                pass
        sel.close()
        # Everything we pushed sits in kernel buffers and at most the
        # high-water mark (4 MiB) plus one read chunk in the server.
        assert sent < 64 * 1024 * 1024, f"server kept reading: {sent} bytes taken"
        with fastnet.connect("127.0.0.1", port, "echo") as c:
            for i in range(10):
                c.write(b"ping %d" % i)
                assert c.recv_exactly(len(b"ping %d" % i)) == b"ping %d" % i
        hog.close()


def test_an_empty_raw_reply_sends_nothing_and_keeps_the_connection(engine):
    """Regression: on the C engine an empty send on a raw connection with no
    output buffer yet failed with ENOMEM and the connection was reset."""
    quiet = threading.Event()

    def handler(conn: fastnet.Connection, message: bytes) -> bytes:
        if message == b"quiet":
            quiet.set()
            return b""
        return message

    with running_server(engine, "echo", handler=handler) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
            sock.sendall(b"quiet")
            assert quiet.wait(GUARD)
            sock.sendall(b"loud")
            assert sock.recv(16) == b"loud"
        assert server.stats().get("handler_errors", 0) == 0


def test_a_peer_that_stops_reading_is_aborted_at_the_send_timeout_and_counted(engine):
    """Regression: output for a peer that never reads stayed queued (and the
    connection open) forever; the server skipped its idle close because
    output was pending. Past send_timeout without progress it is aborted
    and counted as closed_send_timeout; the others are served."""
    big = b"y" * (8 << 20)
    with running_server(engine, "line", handler=lambda conn, m: big if m == b"flood" else m,
                        send_timeout=0.3) as (server, port):
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", port))
        stuck.sendall(b"flood\r\n")
        wait_for(lambda: server.stats().get("closed_send_timeout") == 1, "the abort to be counted")
        with fastnet.connect("127.0.0.1", port, "line") as c:
            c.send(b"hi")
            assert c.recv() == b"hi"
        stuck.close()


def test_send_timeout_settings(engine):
    require_engine(engine)  # it builds a Server on that engine itself
    from fastnet import limits
    from fastnet.serve import build_parser

    assert fastnet.Server(engine=engine).send_timeout == limits.DEFAULT_SEND_TIMEOUT == 60.0
    assert build_parser().parse_args(["--send-timeout", "off"]).send_timeout is None
    assert build_parser().parse_args(["--send-timeout", "2.5"]).send_timeout == 2.5
    with pytest.raises(ValueError, match="send_timeout"):
        fastnet.Server(engine=engine, send_timeout=0)


def test_a_drain_forces_a_close_stuck_behind_unread_output(engine):
    """With no send timeout, a graceful close waiting on output its peer
    never reads is still bounded: the drain deadline resets it and counts
    it as forced."""
    big = b"z" * (8 << 20)
    with running_server(engine, "line", handler=lambda conn, m: big, send_timeout=None) as (server, port):
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", port))
        stuck.sendall(b"flood\r\n")
        wait_for(lambda: server.stats()["messages_in"] == 1, "the request to arrive")
        server.shutdown(0.3)
        wait_for(lambda: server.stats().get("closed_forced") == 1, "the forced close")
        assert server.forced_closes == 1
        stuck.close()
