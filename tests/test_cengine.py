"""CEngine (csrc/loop.c) driven directly, with real sockets on 127.0.0.1:
what only the C engine has (run_once stepping, the event array and its
overflow, the batched crossings, the waker and the signal wakeup fd). What
every engine must do is in test_engine_contract.py, which runs on it too.

Most tests step the engine from the test thread (``run_once``) and use
non-blocking client sockets, so nothing depends on timing: every wait is a
loop on a condition, with a generous deadline only as a failure guard.
"""
from __future__ import annotations

import errno
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Callable, Optional

import pytest

from fastnet import limits, native

if native.lib is None:
    pytest.skip("C extension not built", allow_module_level=True)

from fastnet.engine.base import CloseReason, ConnSpec, Listener  # noqa: E402
from fastnet.engine.cengine import CEngine  # noqa: E402
from fastnet.errors import EngineError  # noqa: E402

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


def test_line_framing_to_handler(make_engine, rec):
    engine, lst = serve(make_engine, ConnSpec(framing="line", max_size=100))
    # A lone "\n" is line content; a reply holding one could not be a line.
    rec.reply = lambda conn, msg: engine.send(conn, b"<" + msg.replace(b"\n", b"|") + b">")
    s = client(lst.port)
    s.sendall(b"PING\r\nSET a\nb\r\n\r\n")
    assert read_exactly(engine, s, 23) == b"<PING>\r\n<SET a|b>\r\n<>\r\n"
    engine.write(rec.accepted()[0], b"raw")
    assert read_exactly(engine, s, 3) == b"raw"


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


def test_server_run_waits_once_per_round_in_a_loop_of_its_own(monkeypatch):
    """Server.run makes its asyncio loop with the engine's EngineSelector:
    the C loop's poll is a round's only wait, asyncio's own epoll is asked
    (without waiting) only when one of its fds ended that wait, and what
    asyncio waits for still wakes it: a socket (sock_recv), a timer, and
    call_soon_threadsafe (the stop at the end of the block)."""
    import asyncio
    import selectors

    import fastnet
    from fastnet.engine.cengine import EngineSelector
    from helpers import running_server

    asked: list[Optional[float]] = []  # asyncio's epoll, asked by an EngineSelector
    select = selectors.EpollSelector.select

    def counting(self: selectors.EpollSelector, timeout: Optional[float] = None) -> list:
        if isinstance(self, EngineSelector) and self._engine is not None:
            asked.append(timeout)
        return select(self, timeout)

    monkeypatch.setattr(selectors.EpollSelector, "select", counting)
    theirs, ours = socket.socketpair()

    async def handler(conn: object, message: bytes) -> bytes:
        if message == b"io":  # an fd of asyncio's own
            return b"io " + await asyncio.get_running_loop().sock_recv(ours, 16)
        if message == b"timer":
            await asyncio.sleep(0.01)
        return message

    ours.setblocking(False)
    try:
        with running_server("c", "frame", handler=handler) as (server, port):
            with fastnet.connect("127.0.0.1", port, "frame", timeout=GUARD) as c:
                for i in range(200):
                    c.send(b"%d" % i)
                    assert c.recv() == b"%d" % i
                plain = len(asked)
                c.send(b"timer")
                assert c.recv() == b"timer"
                c.send(b"io")
                theirs.sendall(b"ready")
                assert c.recv() == b"io ready"
        # 200 requests, each a round or more, asked asyncio's epoll only
        # for the few wakes of its own (none are expected: a margin).
        assert plain < 20, asked
        assert len(asked) > plain  # the socket's readiness ended a C wait
    finally:
        theirs.close()
        ours.close()
