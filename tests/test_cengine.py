"""CEngine (csrc/loop.c) driven directly, with real sockets on 127.0.0.1.

Most tests step the engine from the test thread (``run_once``) and use
non-blocking client sockets, so nothing depends on timing: every wait is a
loop on a condition, with a generous deadline only as a failure guard.
"""
from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Callable, Optional

import pytest

from fastnet import limits, native

if native.lib is None:
    pytest.skip("C extension not built", allow_module_level=True)

from fastnet.engine.base import CloseReason, ConnSpec, Listener  # noqa: E402
from fastnet.engine.cengine import CEngine  # noqa: E402
from fastnet.errors import (  # noqa: E402
    BadFrameHeader,
    EngineError,
    FrameTooLarge,
    LineTooLong,
    VarintOverlong,
)

GUARD = 20.0  # seconds: only ever reached when a test is failing


def be32(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


class Recorder:
    """Records every event; optional reply hook for on_message."""

    def __init__(self) -> None:
        self.engine: Optional[CEngine] = None
        self.events: list[tuple] = []
        self.reply: Optional[Callable[[int, bytes], None]] = None

    def on_accept(self, conn: int, listener: Listener) -> None:
        self.events.append(("accept", conn, listener.id))

    def on_connected(self, conn: int) -> None:
        self.events.append(("connected", conn))

    def on_message(self, conn: int, message: bytes) -> None:
        self.events.append(("message", conn, message))
        if self.reply is not None:
            self.reply(conn, message)

    def on_eof(self, conn: int) -> None:
        self.events.append(("eof", conn))

    def on_protocol_error(self, conn: int, error: Exception) -> None:
        self.events.append(("error", conn, error))

    def on_close(self, conn: int, reason: CloseReason, err: int) -> None:
        self.events.append(("close", conn, reason, err))

    # queries
    def of(self, kind: str, conn: Optional[int] = None) -> list[tuple]:
        return [e for e in self.events if e[0] == kind and (conn is None or e[1] == conn)]

    def messages(self, conn: int) -> list[bytes]:
        return [e[2] for e in self.of("message", conn)]

    def accepted(self) -> list[int]:
        return [e[1] for e in self.of("accept")]


def pump(engine: CEngine, cond: Callable[[], bool], what: str = "condition") -> None:
    """Step the engine until cond() holds."""
    deadline = time.monotonic() + GUARD
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        engine.run_once(10)


def client(port: int, host: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection((host, port), timeout=GUARD)
    s.setblocking(False)
    return s


def recv_some(s: socket.socket) -> Optional[bytes]:
    """Non-blocking recv: bytes, b"" at EOF, None if nothing yet."""
    try:
        return s.recv(1 << 16)
    except BlockingIOError:
        return None


def read_exactly(engine: CEngine, s: socket.socket, n: int) -> bytes:
    got = bytearray()

    def enough() -> bool:
        chunk = recv_some(s)
        if chunk == b"":
            raise AssertionError(f"EOF after {len(got)} of {n} bytes")
        if chunk:
            got.extend(chunk)
        return len(got) >= n

    pump(engine, enough, f"{n} bytes")
    assert len(got) == n, f"got {len(got)} bytes, expected {n}"
    return bytes(got)


def read_to_eof(engine: CEngine, s: socket.socket) -> bytes:
    got = bytearray()
    done = []

    def eof() -> bool:
        chunk = recv_some(s)
        if chunk == b"":
            done.append(1)
        elif chunk:
            got.extend(chunk)
        return bool(done)

    pump(engine, eof, "EOF")
    return bytes(got)


def send_all(engine: CEngine, s: socket.socket, data: bytes, sink: Optional[bytearray] = None) -> None:
    """Send everything from a non-blocking socket while stepping the engine
    (and reading into sink, so an echo cannot deadlock)."""
    view = memoryview(data)

    def sent() -> bool:
        nonlocal view
        if view:
            try:
                view = view[s.send(view[: 1 << 16]):]
            except BlockingIOError:
                pass
        if sink is not None:
            chunk = recv_some(s)
            if chunk:
                sink.extend(chunk)
        return not view

    pump(engine, sent, "send")


@pytest.fixture
def rec():
    return Recorder()


@pytest.fixture
def make_engine(rec):
    engines = []

    def make(**kw) -> CEngine:
        e = CEngine(rec, **kw)
        rec.engine = e
        engines.append(e)
        return e

    yield make
    for e in engines:
        e.release()


def serve(make_engine, spec: ConnSpec, **kw) -> tuple[CEngine, Listener]:
    engine = make_engine(**kw)
    return engine, engine.listen("127.0.0.1", 0, spec)


# -- echo in C ------------------------------------------------------------------


def test_raw_echo_in_c(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="raw", echo=True))
    s = client(lst.port)
    s.sendall(b"hello")
    assert read_exactly(engine, s, 5) == b"hello"
    data = bytes(range(256)) * 4096  # 1 MiB, echoed while we keep sending
    got = bytearray()
    send_all(engine, s, data, got)
    got += read_exactly(engine, s, len(data) - len(got))
    assert got == data
    assert not rec.of("message"), "echo connections report no messages"
    st = engine.stats()
    assert st["accepted"] == 1 and st["open"] == 1
    assert st["bytes_in"] == st["bytes_out"] == len(data) + 5


def test_be32_echo_split_byte_by_byte(make_engine):
    engine, lst = serve(make_engine, ConnSpec(framing="be32", echo=True, max_size=1000))
    s = client(lst.port)
    wire = be32(b"abc") + be32(b"") + be32(b"x" * 300)
    for i in range(len(wire)):
        s.sendall(wire[i:i + 1])
        engine.run_once(0)
    assert read_exactly(engine, s, len(wire)) == wire
    assert engine.stats()["messages_in"] == 3


def test_be32_echo_many_messages_in_one_send(make_engine):
    engine, lst = serve(make_engine, ConnSpec(framing="be32", echo=True))
    s = client(lst.port)
    wire = b"".join(be32(b"m%d" % i) for i in range(5000))
    got = bytearray()
    send_all(engine, s, wire, got)
    got += read_exactly(engine, s, len(wire) - len(got))
    assert got == wire
    assert engine.stats()["messages_in"] == 5000


def test_varint_and_line_echo(make_engine):
    engine = make_engine()
    v = engine.listen("127.0.0.1", 0, ConnSpec(framing="varint", echo=True))
    strict = engine.listen("127.0.0.1", 0, ConnSpec(framing="line", echo=True))
    bare = engine.listen("127.0.0.1", 0, ConnSpec(framing="line", bare_lf=True, echo=True))
    sv, ss, sb = client(v.port), client(strict.port), client(bare.port)
    vwire = b"\x03abc" + b"\x80\x01" + b"y" * 128
    sv.sendall(vwire + b"\x05par")  # a partial frame stays buffered
    ss.sendall(b"one\r\ntw\no\r\n\rx")
    sb.sendall(b"a\nb\r\nc")
    assert read_exactly(engine, sv, len(vwire)) == vwire
    assert read_exactly(engine, ss, 11) == b"one\r\ntw\no\r\n"
    assert read_exactly(engine, sb, 6) == b"a\r\nb\r\n"


# -- Python handler path -------------------------------------------------------


def test_handler_receives_whole_messages_and_replies(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="be32"))
    rec.reply = lambda conn, msg: engine.send(conn, msg.upper())
    s = client(lst.port)
    wire = be32(b"hello") + be32(b"") + be32(b"w" * 70000)
    send_all(engine, s, wire[:3])
    send_all(engine, s, wire[3:20])
    send_all(engine, s, wire[20:])
    expected = be32(b"HELLO") + be32(b"") + be32(b"W" * 70000)
    assert read_exactly(engine, s, len(expected)) == expected
    (conn,) = rec.accepted()
    assert rec.messages(conn) == [b"hello", b"", b"w" * 70000]
    assert engine.peer(conn) == s.getsockname()


def test_line_framing_to_handler(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="line", max_size=100))
    # A lone "\n" is line content; a reply holding one could not be a line.
    rec.reply = lambda conn, msg: engine.send(conn, b"<" + msg.replace(b"\n", b"|") + b">")
    s = client(lst.port)
    s.sendall(b"PING\r\nSET a\nb\r\n\r\n")
    assert read_exactly(engine, s, 23) == b"<PING>\r\n<SET a|b>\r\n<>\r\n"
    engine.write(rec.accepted()[0], b"raw")
    assert read_exactly(engine, s, 3) == b"raw"


# -- EOF, errors, resets -----------------------------------------------------


def test_half_close_echo_gets_everything_then_eof(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="be32", echo=True))
    s = client(lst.port)
    wire = b"".join(be32(b"z" * 1000) for _ in range(500))
    got = bytearray()
    send_all(engine, s, wire, got)
    s.shutdown(socket.SHUT_WR)
    got += read_to_eof(engine, s)
    assert got == wire
    pump(engine, lambda: rec.of("close"), "close")
    (conn,) = rec.accepted()
    assert rec.of("close") == [("close", conn, CloseReason.PEER, 0)]
    assert not rec.of("eof"), "echo connections close without on_eof"


def test_half_close_handler_replies_after_eof(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="line"))

    def on_eof(conn: int) -> None:
        rec.events.append(("eof", conn))
        engine.send(conn, b"count=%d" % len(rec.messages(conn)))
        engine.write(conn, b"x" * 500000)
        engine.close(conn)

    rec.on_eof = on_eof  # type: ignore[method-assign]
    s = client(lst.port)
    s.sendall(b"a\r\nb\r\npartial")
    s.shutdown(socket.SHUT_WR)
    got = read_to_eof(engine, s)
    assert got == b"count=2\r\n" + b"x" * 500000
    pump(engine, lambda: rec.of("close"), "close")
    (conn,) = rec.accepted()
    assert [e[0] for e in rec.events] == ["accept", "message", "message", "eof", "close"]
    assert rec.of("close")[0][2] is CloseReason.LOCAL


def test_oversized_frame_closes_only_that_connection(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="be32", max_size=100))
    rec.reply = lambda conn, msg: engine.send(conn, msg)

    def on_protocol_error(conn: int, error: Exception) -> None:
        rec.events.append(("error", conn, error))
        engine.write(conn, b"-ERR too large")
        engine.close(conn)

    rec.on_protocol_error = on_protocol_error  # type: ignore[method-assign]
    bad, good = client(lst.port), client(lst.port)
    pump(engine, lambda: len(rec.accepted()) == 2, "two accepts")
    bad.sendall(be32(b"ok") + struct.pack(">I", 1000) + b"more")
    assert read_to_eof(engine, bad) == be32(b"ok") + b"-ERR too large"
    (err,) = rec.of("error")
    assert isinstance(err[2], FrameTooLarge)
    assert (err[2].size, err[2].limit) == (1000, 100)
    good.sendall(be32(b"still here"))
    assert read_exactly(engine, good, 14) == be32(b"still here")
    assert [e[2] for e in rec.of("close")] == [CloseReason.LOCAL]
    assert engine.stats()["open"] == 1


def test_protocol_errors_map_to_codec_exceptions(make_engine, rec):
    engine = make_engine()
    v = engine.listen("127.0.0.1", 0, ConnSpec(framing="varint", echo=True))
    line = engine.listen("127.0.0.1", 0, ConnSpec(framing="line", max_size=8))
    sv, sl = client(v.port), client(line.port)
    sv.sendall(b"\x01a\x80\x00")   # one good frame, then an overlong header
    sl.sendall(b"short\r\n" + b"L" * 20)
    assert read_to_eof(engine, sv) == b"\x01a"
    pump(engine, lambda: len(rec.of("error")) == 2, "two protocol errors")
    errors = {type(e[2]): e[2] for e in rec.of("error")}
    assert isinstance(errors[BadFrameHeader].cause, VarintOverlong)
    assert errors[LineTooLong].limit == 8 and errors[LineTooLong].size > 8
    pump(engine, lambda: rec.of("close"), "echo close")
    assert [e[2] for e in rec.of("close")] == [CloseReason.PROTOCOL]


def test_echo_protocol_error_reply_goes_out_before_the_close(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="line", max_size=8, echo=True))
    peers = []

    def on_protocol_error(conn: int, error: Exception) -> None:
        rec.events.append(("error", conn, error))
        peers.append(engine.peer(conn))  # still open while we handle it
        engine.write(conn, b"-ERR " + str(error).encode() + b"\r\n")
        engine.close(conn)  # already closing: does nothing

    rec.on_protocol_error = on_protocol_error  # type: ignore[method-assign]
    s = client(lst.port)
    s.sendall(b"ok\r\n" + b"x" * 50 + b"\r\n")
    got = read_to_eof(engine, s)
    assert got == b"ok\r\n-ERR line of at least 50 bytes exceeds max_line_length=8\r\n"
    assert peers == [s.getsockname()]
    pump(engine, lambda: rec.of("close"), "close")
    assert [e[2] for e in rec.of("close")] == [CloseReason.PROTOCOL]


def test_peer_reset_is_counted_and_isolated(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="be32", echo=True))
    victim, other = client(lst.port), client(lst.port)
    pump(engine, lambda: len(rec.accepted()) == 2, "two accepts")
    victim.sendall(struct.pack(">I", 50) + b"half a mess")
    engine.run_once(10)
    victim.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    victim.close()
    pump(engine, lambda: rec.of("close"), "close after reset")
    ((_, conn, reason, err),) = rec.of("close")
    assert conn == rec.accepted()[0]
    assert reason is CloseReason.RESET and err == errno.ECONNRESET
    other.sendall(be32(b"fine"))
    assert read_exactly(engine, other, 8) == be32(b"fine")
    st = engine.stats()
    assert st["closed"] == 1 and st["open"] == 1


# -- backpressure ---------------------------------------------------------------


def test_backpressure_bounds_output_and_others_are_served(make_engine, rec):
    high, low = 64 * 1024, 16 * 1024
    engine, lst = serve(make_engine, ConnSpec(framing="raw", echo=True,
                                              high_water=high, low_water=low))
    hog, other = client(lst.port), client(lst.port)
    pump(engine, lambda: len(rec.accepted()) == 2, "two accepts")
    hog_id = rec.accepted()[0]
    chunk = b"h" * 65536
    sent = 0
    stalled = 0
    max_out = 0
    deadline = time.monotonic() + GUARD
    # The hog never reads: once the kernel buffers and our output queue are
    # full the server stops reading it, and its sends stall for good.
    while stalled < 50:
        assert time.monotonic() < deadline, "the hog was never stalled"
        try:
            sent += hog.send(chunk)
            stalled = 0
        except BlockingIOError:
            stalled += 1
        engine.run_once(1)
        max_out = max(max_out, engine.output_size(hog_id))
    assert max_out <= high + limits.READ_CHUNK
    # The server stopped reading the hog: what the hog sent waits in the
    # kernel, and more rounds read nothing more.
    read_so_far = engine.stats()["bytes_in"]
    assert read_so_far < sent
    for _ in range(20):
        engine.run_once(1)
    assert engine.stats()["bytes_in"] == read_so_far
    assert engine.output_size(hog_id) > low
    other.sendall(b"ping")
    assert read_exactly(engine, other, 4) == b"ping"
    # Reading resumes once the hog drains its echo.
    echoed = bytearray()
    pump(engine, lambda: (echoed.extend(recv_some(hog) or b""), len(echoed) >= sent)[1],
         "the hog's full echo")
    assert echoed == b"h" * sent


def test_pause_reading_holds_messages(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="line"))
    s = client(lst.port)
    pump(engine, lambda: rec.accepted(), "accept")
    (conn,) = rec.accepted()
    engine.pause_reading(conn)
    s.sendall(b"a\r\nb\r\n")
    for _ in range(5):
        engine.run_once(10)
    assert rec.messages(conn) == []
    engine.pause_reading(conn, False)
    pump(engine, lambda: len(rec.messages(conn)) == 2, "messages after resume")
    assert rec.messages(conn) == [b"a", b"b"]


# -- outgoing connections -------------------------------------------------------


def test_connect_to_python_server(make_engine, rec):
    engine = make_engine()
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(GUARD)
    conn = engine.connect("127.0.0.1", server.getsockname()[1], ConnSpec(framing="be32"))
    engine.send(conn, b"queued before connect")
    peer, _ = server.accept()
    pump(engine, lambda: rec.of("connected"), "connected")
    assert rec.of("connected") == [("connected", conn)]
    peer.settimeout(GUARD)
    expected = be32(b"queued before connect")
    got = b""
    while len(got) < len(expected):
        engine.run_once(10)
        got += peer.recv(100)
    assert got == expected
    peer.sendall(be32(b"reply") + be32(b"two"))
    pump(engine, lambda: len(rec.messages(conn)) == 2, "replies")
    assert rec.messages(conn) == [b"reply", b"two"]
    assert engine.stats()["connected"] == 1
    peer.close()
    server.close()


def test_connect_refused(make_engine, rec):
    engine = make_engine()
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    conn = engine.connect("127.0.0.1", port, ConnSpec())
    pump(engine, lambda: rec.of("close"), "connect failure")
    assert rec.of("close") == [("close", conn, CloseReason.CONNECT_FAILED, errno.ECONNREFUSED)]
    assert engine.stats()["open"] == 0


def test_stale_id_after_close(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="raw", echo=False))
    s1 = client(lst.port)
    pump(engine, lambda: rec.accepted(), "accept")
    (old,) = rec.accepted()
    engine.close(old, abort=True)
    engine.close(old)  # closing twice does nothing
    pump(engine, lambda: rec.of("close"), "close")
    assert rec.of("close") == [("close", old, CloseReason.ABORT, 0)]
    s1.close()
    s2 = client(lst.port)  # very likely reuses the fd
    pump(engine, lambda: len(rec.accepted()) == 2, "second accept")
    new = rec.accepted()[1]
    assert new != old
    with pytest.raises(EngineError) as info:
        engine.send(old, b"x")
    assert info.value.errno == errno.EBADF
    with pytest.raises(EngineError):
        engine.peer(old)
    engine.pause_reading(old)  # does nothing
    assert engine.output_size(old) == 0
    engine.write(new, b"fresh")
    assert read_exactly(engine, s2, 5) == b"fresh"


# -- event array overflow ------------------------------------------------------


def test_event_array_overflow_delivers_everything_in_order(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="be32"), max_events=3)
    a, b = client(lst.port), client(lst.port)
    pump(engine, lambda: len(rec.accepted()) == 2, "two accepts")
    ca, cb = rec.accepted()
    a.sendall(b"".join(be32(b"a%d" % i) for i in range(200)))
    b.sendall(b"".join(be32(b"b%d" % i) for i in range(200)))
    a.shutdown(socket.SHUT_WR)
    pump(engine, lambda: rec.of("eof", ca) and len(rec.messages(cb)) == 200, "all messages")
    assert rec.messages(ca) == [b"a%d" % i for i in range(200)]
    assert rec.messages(cb) == [b"b%d" % i for i in range(200)]
    a_events = [e[0] for e in rec.events if e[1] == ca]
    assert a_events == ["accept"] + ["message"] * 200 + ["eof"]


def test_poll_does_not_sleep_while_messages_are_buffered(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="line"), max_events=2)
    s = client(lst.port)
    s.sendall(b"1\r\n2\r\n3\r\n4\r\n5\r\n")
    pump(engine, lambda: rec.messages(rec.accepted()[0]) if rec.accepted() else False, "first")
    # Messages left over are delivered by polls that would otherwise wait
    # forever: nothing else will ever happen on this socket.
    while len(rec.messages(rec.accepted()[0])) < 5:
        assert engine.run_once(-1) > 0
    assert rec.messages(rec.accepted()[0]) == [b"1", b"2", b"3", b"4", b"5"]


# -- running ------------------------------------------------------------------


def test_run_in_thread_and_stop_from_another(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="be32", echo=True))
    t = threading.Thread(target=engine.run)
    t.start()
    with socket.create_connection(("127.0.0.1", lst.port), timeout=GUARD) as s:
        s.sendall(be32(b"threaded"))
        got = b""
        while len(got) < 12:
            got += s.recv(100)
        assert got == be32(b"threaded")
        engine.stop()  # wakes the sleeping epoll_wait
        t.join(GUARD)
        assert not t.is_alive()
        assert s.recv(100) == b""  # run() closed every socket on return
    assert rec.of("close")[-1][2] is CloseReason.ABORT


def test_stop_from_a_signal_handler(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="raw", echo=True))
    s = client(lst.port)
    old = signal.signal(signal.SIGALRM, lambda *_: engine.stop())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        engine.run()  # sleeps in epoll_wait until the signal arrives
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert rec.of("close") == [("close", rec.accepted()[0], CloseReason.ABORT, 0)]
    s.setblocking(True)
    s.settimeout(GUARD)
    assert s.recv(10) == b""


def test_run_async_with_coroutine_replies(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="line"))

    async def reply_later(conn: int, msg: bytes) -> None:
        await asyncio.sleep(0)
        engine.send(conn, msg[::-1])
        engine.flush_soon()

    async def main() -> bytes:
        rec.reply = lambda conn, msg: asyncio.get_running_loop().create_task(reply_later(conn, msg))
        runner = asyncio.get_running_loop().create_task(engine.run_async())
        reader, writer = await asyncio.open_connection("127.0.0.1", lst.port)
        writer.write(b"abc\r\nxyz\r\n")
        got = await asyncio.wait_for(reader.readexactly(10), GUARD)
        engine.stop()
        await asyncio.wait_for(runner, GUARD)
        writer.close()
        return got

    assert asyncio.run(main()) == b"cba\r\nzyx\r\n"


def test_ipv6_loopback(make_engine, rec):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    engine = make_engine()
    try:
        lst = engine.listen("::1", 0, ConnSpec(framing="raw", echo=True))
    except EngineError:
        pytest.skip("::1 unavailable")
    s = client(lst.port, "::1")
    s.sendall(b"six")
    assert read_exactly(engine, s, 3) == b"six"
    assert engine.peer(rec.accepted()[0])[0] == "::1"


_EMFILE_SCRIPT = r"""
import logging, resource, socket, sys
from fastnet.engine.base import ConnSpec
from fastnet.engine.cengine import CEngine

class H:
    def __init__(self): self.accepted = []; self.closed = 0
    def on_accept(self, c, l): self.accepted.append(c)
    def on_close(self, c, r, e): self.closed += 1
    def __getattr__(self, name): return lambda *a: None

logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
h = H(); e = CEngine(h)
lst = e.listen("127.0.0.1", 0, ConnSpec(echo=True))
socks = [socket.create_connection(("127.0.0.1", lst.port)) for _ in range(8)]
import os
nfds = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (nfds + 3, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
for _ in range(20):
    e.run_once(10)
print("accepted", len(h.accepted))
e.close(h.accepted[0], abort=True)
for _ in range(20):
    e.run_once(10)
print("accepted", len(h.accepted))
"""


def test_accept_emfile_reports_once_and_resumes_after_a_close():
    out = subprocess.run([sys.executable, "-c", _EMFILE_SCRIPT], capture_output=True,
                         text=True, timeout=GUARD * 2)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    warnings = [line for line in lines if "accept failed" in line]
    assert len(warnings) >= 1 and "EMFILE" in warnings[0]
    counts = [int(line.split()[1]) for line in lines if line.startswith("accepted")]
    assert counts[0] < 8 and counts[1] > counts[0]
    # one warning per starvation episode, not one per poll
    assert len(warnings) <= 2


# -- batched crossing: fn_loop_poll_batch / fn_loop_send_batch -----------------

lib, ffi = native.lib, native.ffi


class RawLoop:
    """csrc/loop.c driven through cffi directly, for the batch API."""

    def __init__(self, framing: int, blob_cap: int = 1 << 16, max_events: int = 64) -> None:
        self.loop = ffi.gc(lib.fn_loop_new(), lib.fn_loop_free)
        self.opts = ffi.new("fn_conn_opts *", {
            "framing": framing, "max": 1 << 20,
            "high_water": 1 << 22, "low_water": 1 << 20})
        self.evs = ffi.new("fn_event[]", max_events)
        self.words = ffi.new("uint64_t[]", 4 * max_events)
        self.blob = ffi.new("char[]", max(blob_cap, 1))
        self.batch = ffi.new("fn_batch *", {
            "evs": self.evs, "max": max_events, "words": self.words,
            "blob": self.blob, "blob_cap": blob_cap})
        lid = lib.fn_loop_listen(self.loop, b"127.0.0.1", 0, 16, self.opts)
        assert lid >= 0
        self.port = lib.fn_loop_listener_port(self.loop, lid)
        self.accepted: list[int] = []

    def poll(self) -> tuple[list[int], bytes]:
        n = lib.fn_loop_poll_batch(self.loop, self.batch, 10)
        assert n >= 0
        return (list(ffi.unpack(self.words, self.batch.nwords)),
                ffi.unpack(self.blob, self.batch.blob_len))

    def accept(self) -> int:
        deadline = time.monotonic() + GUARD
        while not self.accepted:
            assert time.monotonic() < deadline, "no accept"
            words, _ = self.poll()
            self.accepted += [c for t, c in record_kinds(words) if t == lib.FN_EV_ACCEPT]
        return self.accepted.pop(0)

    def poll_until(self, count: int) -> list[tuple[list[int], bytes]]:
        """Polls until `count` messages (copied or not) were reported."""
        rounds, seen = [], 0
        deadline = time.monotonic() + GUARD
        while seen < count:
            assert time.monotonic() < deadline, "timed out"
            words, blob = self.poll()
            if words:
                rounds.append((words, blob))
                seen += sum(1 for _ in messages_of(words, blob, self.evs))
        return rounds


def messages_of(words: list[int], blob: bytes, evs) -> list[tuple[int, bytes]]:
    """Decode the words of one poll_batch as cengine does: (conn, message)."""
    out, i, pos = [], 0, 0
    while i < len(words):
        t, conn = words[i], words[i + 1]
        if t == lib.FN_EV_MESSAGE:
            k = words[i + 2]
            for end in words[i + 3:i + 3 + k]:
                out.append((conn, blob[pos:end]))
                pos = end
            i += 3 + k
        else:
            if t == lib.FN_EV_MESSAGE_REF:
                ev = evs[words[i + 2]]
                assert ev.type == lib.FN_EV_MESSAGE and ev.conn == conn
                out.append((conn, ffi.unpack(ev.data, ev.len)))
            i += 3
    return out


def record_kinds(words: list[int]) -> list[tuple[int, int]]:
    """(type, conn) of each record of one poll_batch."""
    out, i = [], 0
    while i < len(words):
        out.append((words[i], words[i + 1]))
        i += 3 + (words[i + 2] if words[i] == lib.FN_EV_MESSAGE else 0)
    return out


def test_poll_batch_runs_of_messages_and_references():
    raw = RawLoop(lib.FN_FRAME_BE32)
    a, b = client(raw.port), client(raw.port)
    ca, cb = raw.accept(), raw.accept()
    big = b"B" * (lib.FN_BATCH_INLINE + 1)
    a.sendall(be32(b"a1") + be32(b"") + be32(big) + be32(b"a3"))
    b.sendall(be32(b"b1"))
    rounds = raw.poll_until(5)
    got = [m for words, blob in rounds for m in messages_of(words, blob, raw.evs)]
    assert [m for c, m in got if c == ca] == [b"a1", b"", big, b"a3"]
    assert [m for c, m in got if c == cb] == [b"b1"]
    # The big one is a reference into evs; a's small ones come in runs.
    kinds = [(t, c) for words, _ in rounds for t, c in record_kinds(words)]
    assert (lib.FN_EV_MESSAGE_REF, ca) in kinds
    assert kinds.count((lib.FN_EV_MESSAGE, ca)) <= 2
    a.close()
    b.close()


def test_poll_batch_blob_full_falls_back_to_references():
    raw = RawLoop(lib.FN_FRAME_LINE, blob_cap=5)
    s = client(raw.port)
    raw.accept()
    s.sendall(b"abc\r\ndef\r\nghi\r\n")
    rounds = raw.poll_until(3)
    got = [m for words, blob in rounds for _, m in messages_of(words, blob, raw.evs)]
    assert got == [b"abc", b"def", b"ghi"]
    assert all(len(blob) <= 5 for _, blob in rounds)
    s.close()


def test_poll_batch_other_events_point_into_evs():
    raw = RawLoop(lib.FN_FRAME_LINE)
    s = client(raw.port)
    conn = raw.accept()
    s.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + GUARD
    while True:
        assert time.monotonic() < deadline
        words, blob = raw.poll()
        if words:
            break
    assert words == [lib.FN_EV_EOF, conn, 0] and blob == b""
    assert raw.evs[0].type == lib.FN_EV_EOF
    s.close()


def test_send_batch_runs_and_drops_unknown_connections():
    raw = RawLoop(lib.FN_FRAME_BE32)
    a, b = client(raw.port), client(raw.port)
    ca, cb = raw.accept(), raw.accept()
    stale = (ca & 0xffffffff) | ((ca >> 32) + 7 << 32)  # right fd, wrong generation
    messages = [b"1", b"22", b"", b"4444", b"x", b"yy"]
    conns, firsts = [ca, stale, cb, ca], [0, 2, 3, 5]
    words = struct.pack(f"{2 * len(conns) + len(messages)}Q",
                        *conns, *firsts, *map(len, messages))
    data = b"".join(messages)
    failed = lib.fn_loop_send_batch(raw.loop, words, len(conns), data, len(data), len(messages))
    assert failed == 1  # the stale one's message
    lib.fn_loop_flush(raw.loop)
    a.setblocking(True)
    b.setblocking(True)
    want_a = be32(b"1") + be32(b"22") + be32(b"yy")
    want_b = be32(b"4444") + be32(b"x")
    got_a = got_b = b""
    while len(got_a) < len(want_a):
        got_a += a.recv(100)
    while len(got_b) < len(want_b):
        got_b += b.recv(100)
    assert (got_a, got_b) == (want_a, want_b)
    assert lib.fn_loop_send_batch(raw.loop, b"", 0, b"", 0, 0) == 0
    a.close()
    b.close()


@pytest.mark.parametrize("lens, firsts, data_len", [
    ([3, 4], [0], 6),          # the lengths claim more than the data holds
    ([3, 4], [0], 8),          # or less
    ([2**63, 2**63], [0], 0),  # a sum that wraps
    ([1, 1], [1], 2),          # the first run does not start at 0
    ([1, 1, 1], [0, 2, 1], 3),  # runs going backwards
    ([1, 1], [0, 2], 2),       # a run starting past the last message
])
def test_send_batch_checks_its_words_before_queuing_anything(lens, firsts, data_len):
    """Regression: fn_loop_send_batch trusted its caller's lengths and read
    past the data when they claimed more. It now takes the total and checks
    every word first: FN_E_ARG, and nothing queued."""
    raw = RawLoop(lib.FN_FRAME_BE32)
    a = client(raw.port)
    conn = raw.accept()
    conns = [conn] * len(firsts)
    words = struct.pack(f"{2 * len(conns) + len(lens)}Q", *conns, *firsts, *lens)
    data = b"x" * min(data_len, 64)
    rc = lib.fn_loop_send_batch(raw.loop, words, len(conns), data, data_len if data_len <= 64 else 0,
                                len(lens))
    assert rc == lib.FN_E_ARG
    assert lib.fn_loop_output_size(raw.loop, conn) == 0
    a.close()


@pytest.mark.parametrize("count", [1, 3, 4, 40])
def test_replies_keep_their_order_whatever_the_call(make_engine, rec, count):
    """Replies queued during a batch (send of small bytes) and those that go
    at once (write, a bytearray, a big message) reach the wire in call order."""
    engine, lst = serve(make_engine, ConnSpec(framing="be32"))
    big = b"L" * (70 * 1024)

    def reply(conn: int, msg: bytes) -> None:
        engine.send(conn, msg)
        if msg == b"m1":
            engine.write(conn, be32(b"raw"))
            engine.send(conn, bytearray(b"ba"))
            engine.send(conn, big)
            assert engine.output_size(conn) >= len(big)
        engine.send(conn, msg + b"!")

    rec.reply = reply
    s = client(lst.port)
    s.sendall(b"".join(be32(b"m%d" % i) for i in range(count)))
    want = b""
    for i in range(count):
        want += be32(b"m%d" % i)
        if i == 1:
            want += be32(b"raw") + be32(b"ba") + be32(big)
        want += be32(b"m%d!" % i)
    assert read_exactly(engine, s, len(want)) == want
    s.close()


def test_batched_send_to_a_closed_connection_raises_ebadf(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="line"))
    first = client(lst.port)
    pump(engine, lambda: rec.accepted(), "accept")
    (old,) = rec.accepted()
    engine.close(old, abort=True)
    pump(engine, lambda: rec.of("close", old), "close")
    errors = []

    def reply(conn: int, msg: bytes) -> None:
        try:
            engine.send(old, b"x")
        except EngineError as exc:
            errors.append(exc.errno)
        engine.send(conn, b"ok")

    rec.reply = reply
    second = client(lst.port)
    second.sendall(b"go\r\n")
    assert read_exactly(engine, second, 4) == b"ok\r\n"
    assert errors == [errno.EBADF]
    first.close()
    second.close()


def test_run_on_the_main_thread_takes_the_signal_wakeup_fd(make_engine, rec):
    """A signal that lands while C is busy, not in epoll_wait, still wakes
    the poll: run() makes the engine's waker pipe Python's signal wakeup fd
    (and gives it back)."""
    engine = make_engine()
    seen = []

    def look() -> None:
        fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
        seen.append(fd)
        engine.stop()

    assert signal.set_wakeup_fd(-1) == -1
    engine.call_soon_threadsafe(look)
    engine.run()
    assert seen == [engine._wake_w]
    assert signal.set_wakeup_fd(-1) == -1


def test_a_pending_wakeup_byte_ends_a_poll_that_would_sleep(make_engine, rec):
    engine = make_engine()
    engine.listen("127.0.0.1", 0, ConnSpec())
    os.write(engine._wake_w, b"\x0a")  # what Python's C signal handler writes
    started = time.monotonic()
    assert engine.run_once(5000) == 0
    assert time.monotonic() - started < 2


def test_huge_idle_timeout_saturates_instead_of_wrapping():
    """Regression: idle_mark_ns + idle_ns wrapped for a timeout near 1.8e10 s,
    so the deadline lay in the past and every poll reported every
    connection idle. Deadlines saturate now: the wait is (nearly) forever."""
    raw = RawLoop(lib.FN_FRAME_RAW)
    s = client(raw.port)
    raw.accept()
    for ms in (18_000_000_000_000, 18_446_744_073_709, 2**64 - 1):
        lib.fn_loop_set_idle_timeout(raw.loop, ms)
        # As far as an int goes, or no deadline at all (saturated: never).
        assert lib.fn_loop_idle_wait_ms(raw.loop) in (0x7fffffff, -1)
        words, _ = raw.poll()
        assert lib.FN_EV_IDLE not in [t for t, _ in record_kinds(words)]
    s.close()
