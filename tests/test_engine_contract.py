"""The engine contract: every engine, through the base interface only, over
real sockets on 127.0.0.1. Every test runs on each engine (the ``engine``
fixture of conftest.py, as the codecs' ``impl``); engines differ only where
their capability flags say so. Timeouts are failure guards, never speed
assertions."""
from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator, Optional

import pytest

from fastnet import codec, limits
from fastnet.engine import CloseReason, ConnSpec, Engine, Listener, engine_class
from fastnet.engine.base import (TRANSITIONS, ConnEvent, ConnState, LifecycleError,
                                 next_state)
from fastnet.errors import (BadFrameHeader, EngineError, FrameTooLarge, LineTooLong,
                            ProtocolError, VarintOverlong)

GUARD = 30.0  # seconds: a failure guard only


class Recorder:
    """An EngineHandler that records every event (thread-safe, for the
    threaded engine) and reacts through hooks that tests replace."""

    def __init__(self) -> None:
        self.engine: Engine = None  # type: ignore[assignment]
        self.events: list[tuple[Any, ...]] = []
        # Reentrant: connect() and close() record under it (see attach).
        self.cond = threading.Condition(threading.RLock())
        # The lifecycle as engine.base.TRANSITIONS allows it: each
        # connection's state, every (state, event) pair seen, and what broke
        # the table (checked when the test ends).
        self.states: dict[int, ConnState] = {}
        self.walked: set[tuple[Optional[ConnState], ConnEvent]] = set()
        self.violations: list[str] = []
        # Default reactions: messages are not answered, EOF and protocol
        # errors close the connection.
        self.accept_hook: Callable[[int, Listener], None] = lambda conn, listener: None
        self.message_hook: Callable[[int, bytes], None] = lambda conn, m: None
        self.connected_hook: Callable[[int], None] = lambda conn: None
        self.eof_hook: Callable[[int], None] = lambda conn: self.engine.close(conn)
        self.error_hook: Callable[[int, ProtocolError], None] = lambda conn, e: self.engine.close(conn)

    def attach(self, engine: Engine) -> None:
        """Drive ``engine``, and see its connect() and close() calls as
        lifecycle events (recorded before the call: what they cause may be
        reported from another thread before they return)."""
        self.engine = engine
        connect, close = engine.connect, engine.close

        def connect_(host: str, port: int, spec: ConnSpec) -> int:
            with self.cond:  # its callbacks wait until CONNECT is recorded
                conn = connect(host, port, spec)
                self._step(conn, ConnEvent.CONNECT)
                return conn

        def close_(conn: int, abort: bool = False) -> None:
            with self.cond:
                if self.states.get(conn) not in (None, ConnState.CLOSED):
                    self._step(conn, ConnEvent.CLOSE)  # else a documented no-op
            close(conn, abort)

        engine.connect = connect_  # type: ignore[method-assign]
        engine.close = close_  # type: ignore[method-assign]

    def _step(self, conn: int, event: ConnEvent) -> None:
        state = self.states.get(conn)
        self.walked.add((state, event))
        try:
            self.states[conn] = next_state(state, event)
        except LifecycleError as exc:
            self.violations.append(f"connection {conn}: {exc}")

    def _record(self, *event: Any) -> None:
        with self.cond:
            self.events.append(event)
            if event[0] in _LIFECYCLE:
                self._step(event[1], _LIFECYCLE[event[0]])
            self.cond.notify_all()

    def on_accept(self, conn: int, listener: Listener) -> None:
        self._record("accept", conn, listener.id)
        self.accept_hook(conn, listener)

    def on_connected(self, conn: int) -> None:
        self._record("connected", conn)
        self.connected_hook(conn)

    def on_message(self, conn: int, message: bytes) -> None:
        self._record("message", conn, message)
        self.message_hook(conn, message)

    def on_eof(self, conn: int) -> None:
        self._record("eof", conn)
        self.eof_hook(conn)

    def on_protocol_error(self, conn: int, error: ProtocolError) -> None:
        self._record("error", conn, error)
        self.error_hook(conn, error)

    def on_close(self, conn: int, reason: CloseReason, errno_: int) -> None:
        self._record("close", conn, reason, errno_)

    def on_idle(self, conn: int, silent: float) -> None:
        # With the moment it was reported, to compare with the test's clock.
        self._record("idle", conn, silent, time.monotonic())

    def idle_reports(self, conn: int) -> list[tuple[Any, ...]]:
        return [e for e in self.of("idle") if e[1] == conn]

    def accepted_on(self, listener: Listener) -> int:
        """The id of the (first) connection accepted on listener."""
        found: list[int] = []

        def seen() -> bool:
            found[:] = [e[1] for e in self.events if e[0] == "accept" and e[2] == listener.id]
            return bool(found)

        self.wait_for(seen, f"an accept on listener {listener.id}")
        return found[0]

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        with self.cond:
            return [e for e in self.events if e[0] == kind]

    def wait_for(self, predicate: Callable[[], Any], what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, GUARD), f"timed out waiting for {what}"

    def wait_event(self, *prefix: Any) -> tuple[Any, ...]:
        """Wait for the first event starting with prefix and return it."""
        found: list[tuple[Any, ...]] = []

        def seen() -> bool:
            found[:] = [e for e in self.events if e[:len(prefix)] == prefix]
            return bool(found)

        self.wait_for(seen, f"event {prefix}")
        return found[0]


_LIFECYCLE = {"accept": ConnEvent.ACCEPT, "connected": ConnEvent.CONNECTED,
              "message": ConnEvent.MESSAGE, "idle": ConnEvent.IDLE, "eof": ConnEvent.EOF,
              "error": ConnEvent.PROTOCOL_ERROR, "close": ConnEvent.CLOSED}


@pytest.fixture
def rec(engine: str) -> Iterator[Recorder]:
    """A Recorder driving the engine under test; at the end, every
    connection must have followed the lifecycle table."""
    recorder = Recorder()
    recorder.attach(engine_class(engine)(recorder))
    yield recorder
    assert not recorder.violations, recorder.violations


@contextlib.contextmanager
def running(engine: Engine) -> Iterator[threading.Thread]:
    """engine.run() on a background thread, stopped (and checked) at exit."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            engine.run()
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    thread = threading.Thread(target=run, name="engine", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        engine.stop()
        thread.join(GUARD)
        assert not thread.is_alive(), "run() did not return after stop()"
        if errors:
            raise errors[0]


def client(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=GUARD)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, have = [], 0
    while have < n:
        data = sock.recv(min(65536, n - have))
        assert data, f"connection closed after {have} of {n} bytes"
        chunks.append(data)
        have += len(data)
    return b"".join(chunks)


def recv_messages(sock: socket.socket, framing: str, count: int) -> list[bytes]:
    dec = codec.new_decoder(framing, limits.DEFAULT_MAX_FRAME)
    messages: list[bytes] = []
    while len(messages) < count:
        message = dec.next_message()
        if message is None:
            data = sock.recv(65536)
            assert data, f"connection closed after {len(messages)} of {count} messages"
            dec.feed(data)
        else:
            messages.append(message)
    return messages


def encode(framing: str, payload: bytes) -> bytes:
    return codec.encode_line(payload) if framing == "line" else codec.encode_frame(payload, framing)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (FIN or RST)."""
    chunks = []
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_raw_echo(engine, rec):
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(echo=True))
    with running(rec.engine), client(listener.port) as c:
        for payload in (b"x", b"hello world", bytes(range(256)) * 100):
            c.sendall(payload)
            assert recv_exactly(c, len(payload)) == payload
        assert rec.of("message") == []      # echo happens in the engine
    assert rec.engine.stats()["accepted"] == 1


@pytest.mark.parametrize("framing", ["be32", "varint", "line"])
def test_framed_echo(engine, rec, framing):
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing=framing, echo=True))
    messages = [b"", b"a", b"hello", b"z" * 70_000] if framing != "line" else [b"", b"a", b"hello"]
    with running(rec.engine), client(listener.port) as c:
        c.sendall(b"".join(encode(framing, m) for m in messages))
        assert recv_messages(c, framing, len(messages)) == messages
        stats = rec.engine.stats()
    assert stats["messages_in"] == len(messages)


def test_handler_gets_whole_messages_and_replies(engine, rec):
    rec.message_hook = lambda conn, m: rec.engine.send(conn, b"got " + m)
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="be32"))
    with running(rec.engine), client(listener.port) as c:
        for byte in codec.encode_frame(b"one byte at a time"):
            c.sendall(bytes([byte]))
        assert recv_messages(c, "be32", 1) == [b"got one byte at a time"]
        many = [b"m%d" % i for i in range(500)]
        c.sendall(b"".join(codec.encode_frame(m) for m in many))
        assert recv_messages(c, "be32", len(many)) == [b"got " + m for m in many]
    messages = [e[2] for e in rec.of("message")]
    assert messages == [b"one byte at a time"] + many
    assert all(type(m) is bytes for m in messages)


def test_raw_handler_gets_bytes(engine, rec):
    rec.message_hook = lambda conn, m: rec.engine.write(conn, m[::-1])
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec())
    with running(rec.engine), client(listener.port) as c:
        c.sendall(b"abc")
        assert recv_exactly(c, 3) == b"cba"
    assert [(type(e[2]), e[2]) for e in rec.of("message")] == [(bytes, b"abc")]


def test_handler_exception_is_logged_and_the_connection_goes_on(engine, rec, caplog):
    def on_message(conn: int, message: bytes) -> None:
        if message == b"boom":
            raise ProtocolError("a handler bug, not the peer's")
        rec.engine.send(conn, message)

    rec.message_hook = on_message
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    with running(rec.engine), client(listener.port) as c:
        c.sendall(b"boom\r\nafter\r\n")
        assert recv_messages(c, "line", 1) == [b"after"]
    assert rec.of("error") == []
    assert any("handler failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_half_close_echo_returns_every_byte_then_eof(engine, rec):
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(echo=True))
    data = bytes(range(256)) * 2000  # 512 000 bytes
    with running(rec.engine), client(listener.port) as c:
        sender = threading.Thread(target=lambda: (c.sendall(data), c.shutdown(socket.SHUT_WR)))
        sender.start()
        assert recv_exactly(c, len(data)) == data
        assert c.recv(1) == b""  # EOF
        sender.join(GUARD)
        _, conn, reason, err = rec.wait_event("close")
    assert (reason, err) == (CloseReason.PEER, 0)
    assert rec.of("eof") == []


def test_half_close_with_handler_keeps_write_side_open(engine, rec):
    replies: list[int] = []

    def on_eof(conn: int) -> None:
        # The peer is done sending; we can still answer, then close.
        rec.engine.send(conn, b"bye")
        rec.engine.close(conn)
        replies.append(conn)

    rec.message_hook = lambda conn, m: rec.engine.send(conn, m.upper())
    rec.eof_hook = on_eof
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    with running(rec.engine), client(listener.port) as c:
        c.sendall(b"abc\r\ndef\r\n")
        c.shutdown(socket.SHUT_WR)
        assert read_until_closed(c) == b"ABC\r\nDEF\r\nbye\r\n"
        _, conn, reason, err = rec.wait_event("close")
    assert replies == [conn]
    assert (reason, err) == (CloseReason.LOCAL, 0)


@pytest.mark.parametrize("echo", [False, True])
def test_oversized_frame_closes_only_that_connection(engine, rec, echo):
    rec.message_hook = lambda conn, m: rec.engine.send(conn, m)
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="be32", max_size=1024, echo=echo))
    with running(rec.engine), client(listener.port) as good, client(listener.port) as bad:
        good.sendall(codec.encode_frame(b"before"))
        assert recv_messages(good, "be32", 1) == [b"before"]
        bad.sendall(codec.encode_frame(b"fine") + struct.pack(">I", 1025))
        # The message before the bad header is still answered.
        assert read_until_closed(bad) == codec.encode_frame(b"fine")
        _, bad_conn, error = rec.wait_event("error")
        _, closed, reason, err = rec.wait_event("close")
        good.sendall(codec.encode_frame(b"after"))
        assert recv_messages(good, "be32", 1) == [b"after"]
    assert isinstance(error, FrameTooLarge) and (error.size, error.limit) == (1025, 1024)
    assert closed == bad_conn
    assert (reason, err) == ((CloseReason.PROTOCOL if echo else CloseReason.LOCAL), 0)


def test_error_reply_written_before_echo_connection_closes(engine, rec):
    rec.error_hook = lambda conn, e: rec.engine.write(conn, b"-ERR " + str(e).encode() + b"\r\n")
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line", max_size=8, echo=True))
    with running(rec.engine), client(listener.port) as c:
        c.sendall(b"ok\r\n" + b"x" * 9)
        got = read_until_closed(c)
        rec.wait_event("close")
    assert got.startswith(b"ok\r\n-ERR ") and b"max_line_length=8" in got
    assert rec.of("close")[0][2] is CloseReason.PROTOCOL


def test_peer_reset_mid_message(engine, rec):
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="be32"))
    with running(rec.engine), client(listener.port) as other:
        victim = client(listener.port)
        victim.sendall(codec.encode_frame(b"complete") + struct.pack(">I", 1000) + b"partial")
        rec.wait_event("message")
        rec.wait_for(lambda: rec.engine.stats()["bytes_in"] >= 4 + 8 + 4 + 7, "the partial frame")
        victim.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        victim.close()  # RST
        _, conn, reason, err = rec.wait_event("close")
        rec.message_hook = lambda conn, m: rec.engine.send(conn, m)
        other.sendall(codec.encode_frame(b"unaffected"))
        assert recv_messages(other, "be32", 1) == [b"unaffected"]
    assert (reason, err) == (CloseReason.RESET, errno.ECONNRESET)
    assert conn == rec.of("message")[0][1]


def test_abort_resets_the_peer(engine, rec):
    rec.message_hook = lambda conn, m: rec.engine.close(conn, abort=True)
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec())
    with running(rec.engine), client(listener.port) as c:
        c.sendall(b"abort me")
        with pytest.raises(ConnectionResetError):
            while c.recv(65536):
                pass
        _, conn, reason, err = rec.wait_event("close")
    assert (reason, err) == (CloseReason.ABORT, 0)


def test_reader_that_never_reads_does_not_stall_others(engine, rec):
    high, low = 1 << 20, 256 << 10
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(echo=True, high_water=high, low_water=low))
    with running(rec.engine):
        hog = client(listener.port)
        hog.setblocking(False)
        chunk = b"h" * 65536
        sent = 0
        with selectors.DefaultSelector() as sel:
            sel.register(hog, selectors.EVENT_WRITE)
            # Push until the engine has stopped taking bytes (bounded).
            while sent < 512 << 20 and sel.select(timeout=1.0):
                try:
                    sent += hog.send(chunk)
                except BlockingIOError:
                    pass
        assert sent < 64 << 20, f"the engine kept reading: {sent} bytes taken"
        pings = [b"ping %d" % i for i in range(10)]
        with client(listener.port) as c:
            for ping in pings:
                c.sendall(ping)
                assert recv_exactly(c, len(ping)) == ping
        # What the engine read from the hog and has not written back is its
        # output queue: bounded by the high-water mark plus one read. The
        # pings' echoes may have reached us before the engine's thread
        # counted them out (a Python engine run missed by 6 bytes), so they
        # are allowed for.
        stats = rec.engine.stats()
        assert stats["bytes_in"] - stats["bytes_out"] <= high + limits.READ_CHUNK + sum(map(len, pings))
        hog.close()


def test_pause_holds_messages_already_read_until_resumed(engine, rec):
    def on_message(conn: int, message: bytes) -> None:
        if message == b"pause me":
            rec.engine.pause_reading(conn)
        elif message.startswith(b"resume "):
            rec.engine.pause_reading(int(message.split()[1]), False)
        rec.engine.send(conn, b"ok " + message)

    rec.message_hook = on_message
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    with running(rec.engine), client(listener.port) as a, client(listener.port) as b:
        # Three messages in one write: the two after the pause are already
        # read and framed, and must wait anyway.
        a.sendall(b"pause me\r\nsecond\r\nthird\r\n")
        assert recv_messages(a, "line", 1) == [b"ok pause me"]
        a_conn = rec.of("message")[0][1]
        b.sendall(b"ping\r\n")
        assert recv_messages(b, "line", 1) == [b"ok ping"]
        assert [e[2] for e in rec.of("message") if e[1] == a_conn] == [b"pause me"]
        b.sendall(b"resume %d\r\n" % a_conn)
        assert recv_messages(a, "line", 2) == [b"ok second", b"ok third"]


def test_unlisten_refuses_new_connections(engine, rec):
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(echo=True))

    def on_message(conn: int, message: bytes) -> None:
        rec.engine.unlisten(listener)
        rec.engine.send(conn, b"done")

    rec.message_hook = on_message
    control = rec.engine.listen("127.0.0.1", 0, ConnSpec())
    with running(rec.engine), client(listener.port) as kept, client(control.port) as c:
        # Accepted before the unlisten: connections still in the kernel's
        # accept queue are reset when the listener closes.
        rec.accepted_on(listener)
        c.sendall(b"unlisten")
        assert recv_exactly(c, 4) == b"done"
        with pytest.raises(ConnectionRefusedError):
            client(listener.port)
        kept.sendall(b"still served")
        assert recv_exactly(kept, 12) == b"still served"


def test_stop_from_a_signal_handler(engine, rec):
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(echo=True))
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: rec.engine.stop())

    def poke() -> None:
        with client(listener.port) as c:
            c.sendall(b"x")
            assert recv_exactly(c, 1) == b"x"
            os.kill(os.getpid(), signal.SIGUSR1)
            assert read_until_closed(c) == b""

    poker = threading.Thread(target=poke)
    poker.start()
    try:
        rec.engine.run()  # on the main thread, where signal handlers run
    finally:
        signal.signal(signal.SIGUSR1, previous)
        poker.join(GUARD)
    assert not poker.is_alive()
    assert [e[2] for e in rec.of("close")] == [CloseReason.ABORT]


def test_a_closed_connection_id_stays_dead(engine, rec):
    probes: list[Any] = []

    def on_message(conn: int, message: bytes) -> None:
        old = int(message)
        for call in (lambda: rec.engine.send(old, b"x"), lambda: rec.engine.write(old, b"x"),
                     lambda: rec.engine.peer(old)):
            try:
                call()
            except EngineError as exc:
                probes.append(exc.errno)
        rec.engine.close(old)                 # does nothing
        rec.engine.close(old, abort=True)     # does nothing
        rec.engine.pause_reading(old)         # does nothing
        rec.engine.send(conn, b"probed")

    rec.message_hook = on_message
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    with running(rec.engine):
        with client(listener.port) as first:
            first.shutdown(socket.SHUT_WR)
            assert read_until_closed(first) == b""
        _, old, reason, _ = rec.wait_event("close")
        with client(listener.port) as second:
            second.sendall(b"%d\r\n" % old)
            assert recv_messages(second, "line", 1) == [b"probed"]
    assert probes == [errno.EBADF] * 3
    assert [e[1:3] for e in rec.of("close")][0] == (old, CloseReason.LOCAL)


def test_ids_are_never_reused(engine, rec):
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(echo=True))
    with running(rec.engine):
        for _ in range(20):
            with client(listener.port) as c:
                c.sendall(b"x")
                assert recv_exactly(c, 1) == b"x"
        rec.wait_for(lambda: len(rec.of("close")) == 20, "20 closes")
    ids = [e[1] for e in rec.of("accept")]
    assert len(set(ids)) == 20
    assert rec.engine.stats()["open"] == 0


def runs_inside_asyncio(engine: Engine) -> bool:
    """True for the engines with run_async (runs_in_asyncio); on the others,
    check that it refuses as documented (NotImplementedError) and return
    False."""
    if engine.runs_in_asyncio:
        return True
    with pytest.raises(NotImplementedError, match="cannot run inside asyncio"):
        asyncio.run(engine.run_async())
    return False


def test_run_async_inside_asyncio(engine, rec):
    if not runs_inside_asyncio(rec.engine):
        return

    def on_message(conn: int, message: bytes) -> None:
        # Reply now, and again later from a task: output sent outside a
        # poll round is written once flush_soon() asks for it.
        rec.engine.send(conn, b"now " + message)

        async def later() -> None:
            await asyncio.sleep(0)
            rec.engine.send(conn, b"later " + message)
            rec.engine.flush_soon()

        asyncio.get_running_loop().create_task(later())

    rec.message_hook = on_message
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))

    async def main() -> list[bytes]:
        task = asyncio.get_running_loop().create_task(rec.engine.run_async())
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        got = []
        for word in (b"a", b"b"):
            writer.write(word + b"\r\n")
            got.append(await reader.readline())
            got.append(await reader.readline())
        writer.close()
        rec.engine.stop()
        await asyncio.wait_for(task, GUARD)
        return got

    assert asyncio.run(asyncio.wait_for(main(), GUARD)) == [
        b"now a\r\n", b"later a\r\n", b"now b\r\n", b"later b\r\n"]


def test_stop_from_another_thread_closes_everything(engine, rec):
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(echo=True))
    with running(rec.engine) as thread:
        clients = [client(listener.port) for _ in range(3)]
        for c in clients:
            c.sendall(b"x")
            assert recv_exactly(c, 1) == b"x"
        rec.engine.stop()
        thread.join(GUARD)
        assert not thread.is_alive()
    for c in clients:
        assert read_until_closed(c) == b""
        c.close()
    assert [e[2] for e in rec.of("close")] == [CloseReason.ABORT] * 3
    assert rec.engine.stats()["open"] == 0
    with pytest.raises(ConnectionRefusedError):
        client(listener.port)


def test_connect_to_a_listening_socket(engine, rec):
    rec.connected_hook = lambda conn: rec.engine.send(conn, b"hello")
    rec.message_hook = lambda conn, m: rec.engine.close(conn)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        conn = rec.engine.connect("127.0.0.1", port, ConnSpec(framing="be32"))
        rec.engine.send(conn, b"early")  # queued until the connect completes
        with running(rec.engine):
            peer, _ = server.accept()
            with peer:
                peer.settimeout(GUARD)
                assert recv_messages(peer, "be32", 2) == [b"early", b"hello"]
                peer.sendall(codec.encode_frame(b"welcome"))
                assert read_until_closed(peer) == b""
            _, closed, reason, err = rec.wait_event("close")
    assert rec.of("connected") == [("connected", conn)]
    assert rec.of("message") == [("message", conn, b"welcome")]
    assert (closed, reason, err) == (conn, CloseReason.LOCAL, 0)
    assert rec.engine.stats()["connected"] == 1


def test_connect_to_a_closed_port_fails(engine, rec):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]   # bound, not listening: connects are refused
        conn = rec.engine.connect("127.0.0.1", port, ConnSpec())
        with running(rec.engine):
            event = rec.wait_event("close")
    assert event == ("close", conn, CloseReason.CONNECT_FAILED, errno.ECONNREFUSED)
    assert rec.of("connected") == []
    assert rec.engine.stats()["connected"] == 0


_EMFILE_SCRIPT = r"""
import logging, os, resource, socket, sys, threading
from fastnet.engine import ConnSpec, engine_class

logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
out_of_fds = threading.Event()
logging.getLogger("fastnet.engine").addFilter(lambda record: out_of_fds.set() or True)

class Handler:
    def on_accept(self, conn, listener): pass
    def on_connected(self, conn): pass
    def on_message(self, conn, message): pass
    def on_eof(self, conn): engine.close(conn)
    def on_protocol_error(self, conn, error): engine.close(conn)
    def on_close(self, conn, reason, errno): pass

engine = engine_class(sys.argv[1])(Handler())
listener = engine.listen("127.0.0.1", 0, ConnSpec(echo=True))
thread = threading.Thread(target=engine.run, daemon=True)
thread.start()
socks = [socket.socket() for _ in range(8)]
# Room for only 3 accepted connections (listdir's own fd is closed again).
used = len(os.listdir("/proc/self/fd")) - 1
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (used + 3, hard))
for s in socks:
    s.settimeout(30)
    s.connect(("127.0.0.1", listener.port))  # completes in the listen backlog
assert out_of_fds.wait(30), "the engine never ran out of descriptors"
for i, s in enumerate(socks):
    # Client i is accepted only once earlier connections have closed.
    s.sendall(b"x")
    assert s.recv(1) == b"x", i
    s.shutdown(socket.SHUT_WR)
    assert s.recv(1) == b"", i
    s.close()
    print(f"served {i}", flush=True)
engine.stop()
thread.join(30)
assert not thread.is_alive()
"""


def test_out_of_descriptors_pauses_accepting_until_a_close(engine):
    out = subprocess.run([sys.executable, "-c", _EMFILE_SCRIPT, engine], capture_output=True,
                         text=True, timeout=GUARD, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == [f"served {i}" for i in range(8)]
    warnings = [line for line in out.stderr.splitlines() if line.startswith("WARNING")]
    # One warning per time the listener ran out (not one per poll or retry).
    assert 1 <= len(warnings) <= 8, warnings
    assert "Too many open files" in warnings[0]


# -- idle reports ---------------------------------------------------------------

IDLE = 0.2   # seconds of silence: configuration, not a speed assertion
MS = 0.002   # the C engine reports whole milliseconds


def test_idle_is_reported_after_the_timeout_and_again_after_another(engine, rec):
    rec.engine.set_idle_timeout(IDLE)
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec())
    with running(rec.engine), client(listener.port):
        conn = rec.accepted_on(listener)
        rec.wait_for(lambda: len(rec.idle_reports(conn)) >= 2, "two idle reports")
        first, second = rec.idle_reports(conn)[:2]
    assert IDLE - MS <= first[2] < GUARD           # counted from the accept
    assert second[2] - first[2] >= IDLE - MS       # one more timeout of silence


def test_a_read_resets_the_idle_clock(engine, rec):
    rec.engine.set_idle_timeout(IDLE)
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec())
    with running(rec.engine), client(listener.port) as c:
        conn = rec.accepted_on(listener)
        rec.wait_for(lambda: rec.idle_reports(conn), "the first idle report")
        sent_at = time.monotonic()
        c.sendall(b"x")
        rec.wait_event("message", conn)

        def counted_from_the_byte() -> bool:
            # Without the reset, silence would count from the accept, at
            # least IDLE before sent_at. (Reports collected before the read
            # may still be delivered after it on the threaded engine.)
            return any(at >= sent_at and IDLE - MS <= silent <= at - sent_at + 0.001
                       for _, _, silent, at in rec.idle_reports(conn))

        rec.wait_for(counted_from_the_byte, "an idle report counted from the byte")


def small_window_client(port: int) -> socket.socket:
    """A client whose receive window stays small: output to it backs up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(GUARD)
    sock.connect(("127.0.0.1", port))
    return sock


def test_a_closing_connection_is_not_reported_idle(engine, rec):
    def on_message(conn: int, message: bytes) -> None:
        # Close gracefully, then queue more than the sockets hold: the close
        # cannot finish while the peer reads nothing (on the threaded
        # engine this thread blocks in the write), so it stays closing.
        rec.engine.set_idle_timeout(IDLE)
        rec.engine.close(conn)
        rec.engine.write(conn, b"f" * (16 << 20))

    rec.message_hook = on_message
    flood_listener = rec.engine.listen("127.0.0.1", 0, ConnSpec())
    quiet_listener = rec.engine.listen("127.0.0.1", 0, ConnSpec())
    with running(rec.engine), small_window_client(flood_listener.port) as flood:
        flood.sendall(b"close and flood me")
        _, closing, _ = rec.wait_event("message")
        with client(quiet_listener.port):
            quiet = rec.accepted_on(quiet_listener)
            # Three reports of the quiet one: time enough for the other.
            rec.wait_for(lambda: len(rec.idle_reports(quiet)) >= 3, "three idle reports")
        assert rec.idle_reports(closing) == []
        assert [e for e in rec.of("close") if e[1] == closing] == []   # still closing


def test_idle_reports_under_run_async(engine, rec):
    if not runs_inside_asyncio(rec.engine):
        return
    rec.engine.set_idle_timeout(IDLE)
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec())

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(rec.engine.run_async())
        _, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        # Nothing else happens on the loop: only the engine's idle timer
        # can produce these.
        while len(rec.of("idle")) < 2:
            await asyncio.sleep(0.01)
        writer.close()
        rec.engine.stop()
        await task

    asyncio.run(asyncio.wait_for(main(), GUARD))
    (_, conn, _), = rec.of("accept")
    first, second = rec.idle_reports(conn)[:2]
    assert IDLE - MS <= first[2] < GUARD
    assert second[2] - first[2] >= IDLE - MS


# -- timers ---------------------------------------------------------------------

def test_call_later_runs_in_order_on_the_engine_thread_and_cancel_works(engine, rec, caplog):
    engine = rec.engine
    ran: list[tuple[str, threading.Thread]] = []
    done = threading.Event()

    def mark(tag: str) -> Callable[[], None]:
        return lambda: ran.append((tag, threading.current_thread()))

    def chain() -> None:
        mark("c")()
        engine.call_later(0.05, lambda: (mark("d")(), done.set()))  # from a timer

    def boom() -> None:
        raise RuntimeError("a timer bug")

    engine.call_later(0.15, mark("b"))
    engine.call_later(0.05, mark("a"))
    engine.call_later(0.1, mark("cancelled")).cancel()
    engine.call_later(0.12, boom)     # logged; the others still run
    engine.call_later(0.2, chain)
    with running(engine) as thread:
        assert done.wait(GUARD), "the timers did not all run"
    assert [tag for tag, _ in ran] == ["a", "b", "c", "d"]
    assert all(t is thread for _, t in ran)
    assert any("timer callback" in r.getMessage() and r.exc_info for r in caplog.records)


def test_call_soon_threadsafe_wakes_a_sleeping_run(engine, rec):
    engine = rec.engine
    ran: list[tuple[str, threading.Thread]] = []
    done = threading.Event()

    def soon() -> None:
        ran.append(("soon", threading.current_thread()))
        # A timer set while run() has no deadline must shorten its sleep.
        engine.call_later(0.05, lambda: (ran.append(("later", threading.current_thread())),
                                         done.set()))

    with running(engine) as thread:
        time.sleep(0.1)  # let run() reach its sleep (not needed for correctness)
        engine.call_soon_threadsafe(soon)
        assert done.wait(GUARD), "call_soon_threadsafe did not wake run()"
    assert ran == [("soon", thread), ("later", thread)]


def test_timers_under_run_async(engine, rec):
    if not runs_inside_asyncio(rec.engine):
        return
    engine = rec.engine
    ran: list[tuple[str, threading.Thread]] = []

    def mark(tag: str) -> Callable[[], None]:
        return lambda: ran.append((tag, threading.current_thread()))

    engine.call_later(0.05, mark("set before run_async"))
    engine.call_later(0.02, mark("cancelled")).cancel()

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(engine.run_async())
        await asyncio.sleep(0)  # run_async has started: asyncio runs the timers now
        engine.call_later(0.1, mark("set under run_async"))
        engine.call_later(0.01, mark("cancelled")).cancel()
        other = threading.Thread(target=engine.call_soon_threadsafe, args=(mark("threadsafe"),))
        other.start()
        while len(ran) < 3:
            await asyncio.sleep(0.01)
        other.join(GUARD)
        engine.stop()
        await task

    asyncio.run(asyncio.wait_for(main(), GUARD))
    timers = [tag for tag, _ in ran if tag != "threadsafe"]
    assert timers == ["set before run_async", "set under run_async"]
    assert sorted(tag for tag, _ in ran) == sorted(timers + ["threadsafe"])
    assert all(t is threading.main_thread() for _, t in ran)


# -- socket options ---------------------------------------------------------------

def socket_options(engine: Engine, conn: int) -> tuple[int, int, int, int]:
    """SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT of a connection."""
    with socket.socket(fileno=os.dup(engine.fileno(conn))) as sock:
        return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT))


def test_fileno_and_tcp_keepalive(engine, rec):
    with socket.socket() as fresh:
        defaults = (fresh.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    fresh.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    fresh.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT))
    options: dict[int, tuple[int, int, int, int]] = {}
    gone: list[int] = []

    def record(conn: int) -> None:
        options[conn] = socket_options(rec.engine, conn)  # on the engine's thread

    def on_close(conn: int) -> None:
        try:
            rec.engine.fileno(conn)
        except EngineError as exc:
            gone.append(exc.errno)

    rec.message_hook = lambda conn, m: (record(conn), rec.engine.send(conn, b"ok"))
    rec.connected_hook = lambda conn: (record(conn), rec.engine.close(conn))
    specs = {"plain": ConnSpec(), "set": ConnSpec(tcp_keepalive=(7, 3, 4)),
             "defaults": ConnSpec(tcp_keepalive=(0, 0, 0)),
             "some": ConnSpec(tcp_keepalive=(0, 9, 0))}
    listeners = {key: rec.engine.listen("127.0.0.1", 0, spec) for key, spec in specs.items()}
    with socket.create_server(("127.0.0.1", 0)) as server:
        outgoing = rec.engine.connect("127.0.0.1", server.getsockname()[1],
                                      ConnSpec(tcp_keepalive=(5, 2, 6)))
        with running(rec.engine):
            server.accept()[0].close()
            for key, listener in listeners.items():
                with client(listener.port) as c:
                    c.sendall(b"x")
                    assert recv_exactly(c, 2) == b"ok"
                conn = rec.accepted_on(listener)
                rec.wait_event("close", conn)
                on_close(conn)
            rec.wait_event("close", outgoing)
    accepted = {key: options[rec.accepted_on(listener)] for key, listener in listeners.items()}
    assert accepted["plain"][0] == 0
    assert accepted["set"] == (1, 7, 3, 4)
    assert accepted["defaults"] == (1, *defaults)
    assert accepted["some"] == (1, defaults[0], 9, defaults[2])
    assert options[outgoing] == (1, 5, 2, 6)
    assert gone == [errno.EBADF] * len(listeners)
    with pytest.raises(EngineError) as info:
        rec.engine.fileno(12345)
    assert info.value.errno == errno.EBADF


# -- pausing in on_accept -------------------------------------------------------

def test_a_connection_paused_in_on_accept_is_not_read_until_resumed(engine, rec):
    """A server's backlog: nothing may be read from a waiting connection."""
    waiting_listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    control = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))

    def on_accept(conn: int, listener: Listener) -> None:
        if listener.id == waiting_listener.id:
            rec.engine.pause_reading(conn)

    def on_message(conn: int, message: bytes) -> None:
        if message.startswith(b"resume "):
            rec.engine.pause_reading(int(message.split()[1]), False)
        rec.engine.send(conn, b"ok " + message)

    rec.accept_hook = on_accept
    rec.message_hook = on_message
    with running(rec.engine), client(waiting_listener.port) as waiting:
        waiting.sendall(b"early\r\n")
        conn = rec.accepted_on(waiting_listener)
        with client(control.port) as ctl:
            sent = 0
            for i in range(20):   # many rounds of the engine meanwhile
                line = b"ping %d\r\n" % i
                ctl.sendall(line)
                sent += len(line)
                assert recv_messages(ctl, "line", 1) == [b"ok " + line[:-2]]
            assert rec.engine.stats()["bytes_in"] == sent
            assert [e for e in rec.of("message") if e[1] == conn] == []
            resume = b"resume %d\r\n" % conn
            ctl.sendall(resume)
            assert recv_messages(waiting, "line", 1) == [b"ok early"]
            assert rec.engine.stats()["bytes_in"] == sent + len(resume) + len(b"early\r\n")


# -- the push path ------------------------------------------------------------------

@contextlib.contextmanager
def serving_with_asyncio(engine: Engine) -> Iterator[asyncio.AbstractEventLoop]:
    """The engine serving beside an asyncio loop, yielded: under run_async
    inside that loop (engines that run in asyncio), else run() on its own
    thread with the loop on another (as a Server runs coroutine handlers
    there). Stopped and checked at exit."""
    if not engine.runs_in_asyncio:
        aio = asyncio.new_event_loop()
        aio_thread = threading.Thread(target=aio.run_forever, name="asyncio", daemon=True)
        aio_thread.start()
        try:
            with running(engine):
                yield aio
        finally:
            aio.call_soon_threadsafe(aio.stop)
            aio_thread.join(GUARD)
            aio.close()
        return
    ready: list[asyncio.AbstractEventLoop] = []
    errors: list[BaseException] = []
    started = threading.Event()

    async def main() -> None:
        ready.append(asyncio.get_running_loop())
        started.set()
        await engine.run_async()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=run, name="engine-asyncio", daemon=True)
    thread.start()
    assert started.wait(GUARD)
    try:
        if errors:
            raise errors[0]
        yield ready[0]
    finally:
        engine.stop()
        thread.join(GUARD)
        assert not thread.is_alive(), "run_async() did not return after stop()"
        if errors:
            raise errors[0]


#: Where a push comes from: (origin, how the engine runs). "callback": from
#: on_message itself; "timer": engine.call_later; "thread": the test's own
#: thread, once the first reply arrived (the engine is asleep by then);
#: "coroutine": a coroutine the callback started, after an await; "task": a
#: ticker task started beside the engine, knowing nothing of its rounds.
PUSH_ORIGINS = [("callback", "run"), ("timer", "run"), ("thread", "run"),
                ("timer", "asyncio"), ("thread", "asyncio"), ("coroutine", "asyncio"),
                ("task", "asyncio")]


@pytest.mark.parametrize("origin,mode", PUSH_ORIGINS, ids=[f"{o}-{m}" for o, m in PUSH_ORIGINS])
def test_a_push_from_anywhere_is_written_without_further_input(engine, rec, origin, mode):
    """The client sends one line and then only reads. A send and a write
    from the origin must reach it, and then, once it has them, a close from
    the same origin: it never sends the input that once made the C engine
    flush, and the close comes only after the push arrived (a close makes
    every engine flush, so it must not help the push along)."""
    engine_ = rec.engine
    listener = engine_.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    first: list[int] = []
    got_push = threading.Event()
    aio_box: list[asyncio.AbstractEventLoop] = []

    def push(conn: int) -> None:
        engine_.send(conn, b"push")
        engine_.write(conn, b"raw\r\n")

    def close_when_pushed(conn: int) -> None:  # a timer that re-arms itself
        if got_push.is_set():
            engine_.close(conn)
        else:
            engine_.call_later(0.005, lambda: close_when_pushed(conn))

    async def from_a_coroutine(conn: int) -> None:
        await asyncio.sleep(0.01)
        push(conn)
        while not got_push.is_set():
            await asyncio.sleep(0.005)
        engine_.close(conn)

    async def ticker() -> None:
        while not first:
            await asyncio.sleep(0.005)
        push(first[0])
        while not got_push.is_set():
            await asyncio.sleep(0.005)
        engine_.close(first[0])

    def on_message(conn: int, message: bytes) -> None:
        first.append(conn)
        engine_.send(conn, b"ack")
        if origin == "callback":
            push(conn)
            engine_.close(conn)
        elif origin == "timer":
            engine_.call_later(0.01, lambda: (push(conn), close_when_pushed(conn)))
        elif origin == "coroutine":
            if engine_.runs_in_asyncio:
                asyncio.get_running_loop().create_task(from_a_coroutine(conn))
            else:
                asyncio.run_coroutine_threadsafe(from_a_coroutine(conn), aio_box[0])

    rec.message_hook = on_message

    def talk() -> None:
        with client(listener.port) as sock:
            sock.sendall(b"hi\r\n")
            assert recv_exactly(sock, 5) == b"ack\r\n"
            if origin == "thread":
                # Let the engine fall asleep first (past the C poll's 10 ms
                # of spinning): not needed to pass, needed to mean something.
                time.sleep(0.05)
                push(first[0])  # from this thread, not the engine's
            assert recv_exactly(sock, 11) == b"push\r\nraw\r\n"
            got_push.set()
            if origin == "thread":
                time.sleep(0.05)
                engine_.close(first[0])
            assert read_until_closed(sock) == b""
        # ... and on_close follows, with nothing more from the peer.
        assert rec.wait_event("close", first[0])[2] is CloseReason.LOCAL

    if mode == "run":
        with running(engine_):
            talk()
    else:
        with serving_with_asyncio(engine_) as aio:
            aio_box.append(aio)
            if origin == "task":
                asyncio.run_coroutine_threadsafe(ticker(), aio)
            talk()


def test_output_from_another_thread_keeps_its_order_and_raises_for_a_closed_connection(engine, rec):
    """Many sends from a foreign thread, interleaved with replies the engine
    thread makes: each side's messages arrive in the order it sent them;
    once on_close was seen, a send from that thread raises EBADF."""
    engine_ = rec.engine
    listener = engine_.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    rec.message_hook = lambda conn, m: engine_.send(conn, b"echo " + m)
    with running(engine_):
        with client(listener.port) as sock:
            sock.sendall(b"0\r\n")
            assert recv_messages(sock, "line", 1) == [b"echo 0"]
            conn = rec.accepted_on(listener)

            def pusher() -> None:
                for i in range(200):
                    engine_.send(conn, b"push %d" % i)

            thread = threading.Thread(target=pusher)
            thread.start()
            sock.sendall(b"".join(b"%d\r\n" % i for i in range(1, 51)))
            thread.join(GUARD)
            got = recv_messages(sock, "line", 250)
        assert [m for m in got if m.startswith(b"push")] == [b"push %d" % i for i in range(200)]
        assert [m for m in got if m.startswith(b"echo")] == [b"echo %d" % i for i in range(1, 51)]
        rec.wait_event("close", conn)
        with pytest.raises(EngineError) as err:
            engine_.send(conn, b"too late")
        assert err.value.errno == errno.EBADF


# -- the lifecycle table ------------------------------------------------------------

def test_the_table_refuses_what_no_engine_may_do():
    for state, event in [(None, ConnEvent.MESSAGE), (ConnState.CLOSING, ConnEvent.MESSAGE),
                         (ConnState.CLOSING, ConnEvent.IDLE), (ConnState.EOF, ConnEvent.MESSAGE),
                         (ConnState.EOF, ConnEvent.PROTOCOL_ERROR), (ConnState.CLOSED, ConnEvent.CLOSED),
                         (ConnState.CONNECTING, ConnEvent.MESSAGE)]:
        with pytest.raises(LifecycleError):
            next_state(state, event)
    assert next_state(ConnState.EOF, ConnEvent.CLOSED) is ConnState.CLOSED  # on_close after EOF


def test_nothing_but_on_close_follows_a_close_from_the_handler(engine, rec):
    """Three messages in one read (one batch on the C engine); the handler
    closes its connection on the first: the other two are never delivered."""
    rec.message_hook = lambda conn, m: rec.engine.close(conn)
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    with running(rec.engine):
        with client(listener.port) as sock:
            sock.sendall(b"one\r\ntwo\r\nthree\r\n")
            assert read_until_closed(sock) == b""
        conn = rec.accepted_on(listener)
        rec.wait_event("close", conn)
    assert [e[2] for e in rec.of("message")] == [b"one"]


def test_every_transition_of_the_table_is_walked(engine, rec):
    """Drive connections through every (state, event) pair of
    engine.base.TRANSITIONS; the recorder checks each step against the
    table and collects the pairs it saw, which must be all of them. Closes
    are made on the engine's thread (call_soon_threadsafe), as a server's
    control plane makes them."""
    eng = rec.engine
    rec.eof_hook = lambda conn: None            # EOF and errors leave the connection open
    rec.error_hook = lambda conn, e: None
    line = eng.listen("127.0.0.1", 0, ConnSpec(framing="line", max_size=16))
    echo = eng.listen("127.0.0.1", 0, ConnSpec(framing="line", max_size=16, echo=True))
    eng.set_idle_timeout(0.05)
    by_peer_port: dict[int, int] = {}   # filled on the engine's thread

    def note_peer(conn: int, listener: Listener) -> None:
        with rec.cond:
            by_peer_port[eng.peer(conn)[1]] = conn
            rec.cond.notify_all()
    rec.accept_hook = note_peer

    def on_engine_thread(fn: Callable[[], None]) -> None:
        eng.call_soon_threadsafe(fn)

    def connect_on_engine_thread(port: int) -> int:
        """connect() is for the engine's thread: call it there, wait for the id."""
        box: list[int] = []
        done = threading.Event()
        on_engine_thread(lambda: (box.append(eng.connect("127.0.0.1", port, ConnSpec(framing="line"))),
                                  done.set()))
        assert done.wait(GUARD)
        return box[0]

    def idle_in(conn: int, count: int = 1) -> None:
        rec.wait_for(lambda: len(rec.idle_reports(conn)) >= count, f"idle report {count} of {conn}")

    # CONNECTING -> CLOSE -> CLOSED, before the engine runs.
    early = eng.connect("127.0.0.1", line.port, ConnSpec(framing="line"))
    eng.close(early)
    with running(eng):
        rec.wait_event("close", early)
        # CONNECTING -> CONNECTED -> OPEN, then OPEN -> CLOSE -> CLOSING -> CLOSE again.
        out = connect_on_engine_thread(line.port)
        rec.wait_event("connected", out)
        on_engine_thread(lambda: (eng.close(out), eng.close(out)))
        rec.wait_event("close", out)
        # CONNECTING -> CLOSED: a refused connect.
        with socket.socket() as spare:
            spare.bind(("127.0.0.1", 0))
            refused_port = spare.getsockname()[1]
        refused = connect_on_engine_thread(refused_port)
        rec.wait_event("close", refused)
        socks: list[socket.socket] = []

        def next_accept(on: Listener) -> int:
            """The id of the connection accepted for the newest client."""
            port = socks[-1].getsockname()[1]
            rec.wait_for(lambda: port in by_peer_port, f"the accept of the client on :{port}")
            return by_peer_port[port]

        # ACCEPT, MESSAGE, IDLE, EOF, IDLE in EOF, CLOSE from EOF.
        socks.append(client(line.port))
        a = next_accept(line)
        socks[-1].sendall(b"hello\r\n")
        rec.wait_event("message", a)
        idle_in(a)
        socks[-1].shutdown(socket.SHUT_WR)
        rec.wait_event("eof", a)
        n = len(rec.idle_reports(a))
        idle_in(a, n + 1)
        on_engine_thread(lambda: eng.close(a))
        rec.wait_event("close", a)
        # PROTOCOL_ERROR, IDLE in ERROR, CLOSE from ERROR.
        socks.append(client(line.port))
        b = next_accept(line)
        socks[-1].sendall(b"x" * 40 + b"\r\n")
        rec.wait_event("error", b)
        n = len(rec.idle_reports(b))
        idle_in(b, n + 1)
        on_engine_thread(lambda: eng.close(b))
        rec.wait_event("close", b)
        # OPEN -> CLOSED: the peer resets.
        socks.append(client(line.port))
        c = next_accept(line)
        socks[-1].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        socks[-1].close()
        rec.wait_event("close", c)
        # ERROR -> CLOSED: an echo connection closes itself after a framing error.
        socks.append(client(echo.port))
        d = next_accept(echo)
        socks[-1].sendall(b"y" * 40 + b"\r\n")
        rec.wait_event("close", d)
        # EOF -> CLOSED: half-closed, then the engine shuts down (ABORT).
        socks.append(client(line.port))
        e = next_accept(line)
        socks[-1].shutdown(socket.SHUT_WR)
        rec.wait_event("eof", e)
    rec.wait_event("close", e)
    for sock in socks:
        sock.close()
    missing = set(TRANSITIONS) - rec.walked
    assert not missing, sorted((s.value if s else None, ev.value) for s, ev in missing)


# -- moved from test_cengine.py: contract tests that ran on the C engine only ------

def test_be32_echo_split_byte_by_byte_and_many_in_one_send(engine, rec):
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="be32", echo=True, max_size=1000))
    split = encode("be32", b"abc") + encode("be32", b"") + encode("be32", b"x" * 300)
    many = b"".join(encode("be32", b"m%d" % i) for i in range(5000))
    with running(rec.engine), client(listener.port) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(split)):
            c.sendall(split[i:i + 1])
        assert recv_exactly(c, len(split)) == split
        reader = threading.Thread(target=lambda: got.append(recv_exactly(c, len(many))))
        got: list[bytes] = []
        reader.start()  # read while sending: the echo must not deadlock on full buffers
        c.sendall(many)
        reader.join(GUARD)
        assert got == [many]
        stats = rec.engine.stats()
    assert stats["messages_in"] == 3 + 5000


def test_framing_errors_are_the_codec_exceptions(engine, rec):
    """What on_protocol_error gets is what the codec raises: a varint header
    that is overlong is BadFrameHeader(cause VarintOverlong); a line over
    the limit is LineTooLong naming it. The echo connection echoes the good
    frame before it, then closes by itself (PROTOCOL)."""
    varint = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="varint", echo=True))
    line = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line", max_size=8))
    with running(rec.engine), client(varint.port) as sv, client(line.port) as sl:
        sv.sendall(b"\x01a\x80\x00")   # one good frame, then an overlong header
        sl.sendall(b"short\r\n" + b"L" * 20)
        assert read_until_closed(sv) == b"\x01a"
        rec.wait_for(lambda: len(rec.of("error")) == 2, "two protocol errors")
        rec.wait_for(lambda: len(rec.of("close")) == 2, "both closed")
    errors = {type(e[2]): e[2] for e in rec.of("error")}
    assert isinstance(errors[BadFrameHeader].cause, VarintOverlong)
    assert errors[LineTooLong].limit == 8 and errors[LineTooLong].size > 8
    assert sorted(e[2].value for e in rec.of("close")) == ["local", "protocol"]


def test_ipv6_loopback(engine, rec):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        listener = rec.engine.listen("::1", 0, ConnSpec(framing="raw", echo=True))
    except EngineError:
        pytest.skip("::1 unavailable on this machine")
    peers: list[tuple[str, int]] = []
    rec.accept_hook = lambda conn, lst: peers.append(rec.engine.peer(conn))
    with running(rec.engine), socket.create_connection(("::1", listener.port), timeout=GUARD) as c:
        c.sendall(b"six")
        assert recv_exactly(c, 3) == b"six"
    assert peers[0][0] == "::1"


@pytest.mark.parametrize("count", [1, 3, 4, 40])
def test_replies_keep_their_order_whatever_the_call(engine, rec, count):
    """Replies a handler makes with send (small bytes: batched on the C
    engine), write, a bytearray and a big message reach the wire in call
    order, however many messages the batch held."""
    eng = rec.engine
    listener = eng.listen("127.0.0.1", 0, ConnSpec(framing="be32"))
    big = b"L" * (70 * 1024)

    def reply(conn: int, msg: bytes) -> None:
        eng.send(conn, msg)
        if msg == b"m1":
            eng.write(conn, encode("be32", b"raw"))
            eng.send(conn, bytearray(b"ba"))
            eng.send(conn, big)
        eng.send(conn, msg + b"!")

    rec.message_hook = reply
    want = b""
    for i in range(count):
        want += encode("be32", b"m%d" % i)
        if i == 1:
            want += encode("be32", b"raw") + encode("be32", b"ba") + encode("be32", big)
        want += encode("be32", b"m%d!" % i)
    with running(eng), client(listener.port) as c:
        c.sendall(b"".join(encode("be32", b"m%d" % i) for i in range(count)))
        assert recv_exactly(c, len(want)) == want


def test_serve_directly_keeps_every_rule_of_on_message(engine, rec):
    """A handler offered with serve_directly (taken exactly by engines with
    direct_path; the others call on_message, which here does the same): its
    replies in order, a pause mid-read holds the rest until resumed, an
    exception goes to on_error (which aborts that connection only)."""
    eng = rec.engine
    listener = eng.listen("127.0.0.1", 0, ConnSpec(framing="be32"))
    taken: list[bool] = []
    failed: list[int] = []

    def handler(conn: Any, message: bytes) -> Optional[bytes]:
        if message == b"pause":
            eng.pause_reading(conn)
            eng.call_later(0.02, lambda: eng.pause_reading(conn, False))
        elif message == b"boom":
            raise RuntimeError("a handler bug")
        return message.upper()

    def on_error(conn: Any) -> None:
        failed.append(conn)
        eng.close(conn, abort=True)

    def on_message(conn: int, message: bytes) -> None:  # where the offer was not taken
        try:
            reply = handler(conn, message)
        except RuntimeError:
            on_error(conn)
            return
        if reply is not None:
            eng.send(conn, reply)

    rec.accept_hook = lambda conn, lst: taken.append(eng.serve_directly(conn, handler, conn, on_error))
    rec.message_hook = on_message
    words = [b"a", b"pause", b"b", b"c" * 5000, b"d"]
    with running(eng):
        with client(listener.port) as good, client(listener.port) as bad:
            good.sendall(b"".join(encode("be32", w) for w in words))
            assert recv_messages(good, "be32", len(words)) == [w.upper() for w in words]
            bad.sendall(encode("be32", b"x") + encode("be32", b"boom") + encode("be32", b"y"))
            # The abort drops what is still queued: X only if it left before.
            assert read_until_closed(bad) in (b"", encode("be32", b"X"))
            conn = rec.accepted_on(listener)
            good.sendall(encode("be32", b"still"))
            assert recv_messages(good, "be32", 1) == [b"STILL"]
        rec.wait_for(lambda: len(rec.of("close")) == 2, "both closed")
    assert taken == [eng.direct_path] * 2
    assert len(failed) == 1 and failed[0] != conn
    assert [e[2] for e in rec.of("close") if e[1] == failed[0]] == [CloseReason.ABORT]

@pytest.mark.parametrize("payload", [b"two\r\nlines", b"a\nb", b"cr\r", b"\n"])
def test_a_line_payload_with_cr_or_lf_is_refused_with_one_valueerror(engine, rec, payload):
    """Regression: the C engine sent b"a\\nb" on a line connection as two
    lines; the Python engines raised ValueError. Every engine now raises
    the same ValueError from send(), queues nothing, and keeps serving."""
    raised: list[str] = []

    def on_message(conn: int, message: bytes) -> None:
        try:
            rec.engine.send(conn, payload)
        except ValueError as exc:
            raised.append(str(exc))
        rec.engine.send(conn, b"ok " + message)

    rec.message_hook = on_message
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    with running(rec.engine), client(listener.port) as c:
        c.sendall(b"x\r\n")
        assert recv_messages(c, "line", 1) == [b"ok x"]
        c.sendall(b"y\r\n")
        assert recv_messages(c, "line", 1) == [b"ok y"]
    with pytest.raises(ValueError) as info:
        codec.encode_line(payload)
    assert raised == [str(info.value)] * 2


def test_huge_idle_timeout_never_fires_and_never_breaks_the_loop(engine, rec):
    """Regression: an idle timeout of 1.8e10 s wrapped in C (an idle event
    per connection per poll) and overflowed epoll's timeout in Python
    (OverflowError out of run()). It now means "practically never"."""
    rec.message_hook = lambda conn, m: rec.engine.send(conn, b"ok " + m)
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    rec.engine.set_idle_timeout(18_446_744_073.0)  # ms * 1e6 is within 0.7 s of 2**64
    with running(rec.engine), client(listener.port) as c:
        for word in (b"a", b"b", b"c"):
            c.sendall(word + b"\r\n")
            assert recv_messages(c, "line", 1) == [b"ok " + word]
    assert rec.of("idle") == []


def _fill_descriptors() -> list[int]:
    """Open descriptors until EMFILE; the caller closes them."""
    fds: list[int] = []
    try:
        while True:
            fds.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        assert exc.errno == errno.EMFILE
    return fds


def test_a_listener_starved_by_emfile_is_retried_on_a_timer(engine, rec, caplog):
    """Regression: after accept failed with EMFILE the C engine polled that
    listener again only when a connection closed: descriptors freed any
    other way left it deaf for good. Every engine now retries it after
    limits.ACCEPT_RETRY_DELAY, with a log line, as nginx and Redis do."""
    import resource

    rec.message_hook = lambda conn, m: rec.engine.send(conn, b"ok " + m)
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with running(rec.engine):
        c = socket.socket()  # its descriptor exists before the others run out
        c.settimeout(GUARD)
        fds: list[int] = []
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
            fds = _fill_descriptors()
            c.connect(("127.0.0.1", listener.port))  # the kernel's backlog takes it
            deadline = time.monotonic() + GUARD
            while "accept failed" not in caplog.text:
                assert time.monotonic() < deadline, "the engine never tried to accept"
                time.sleep(0.01)
        finally:
            for fd in fds:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        # Descriptors are free again and no connection closed: only the
        # retry timer can get the pending connection accepted.
        c.sendall(b"x\r\n")
        assert recv_messages(c, "line", 1) == [b"ok x"]
        c.close()
    assert rec.of("accept")
    assert "retrying in" in caplog.text


def _stuck_client(port: int) -> socket.socket:
    """A client that will never read: a small receive buffer, so the
    server's output stops making progress soon."""
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.settimeout(GUARD)
    c.connect(("127.0.0.1", port))
    return c


@pytest.mark.parametrize("closing", [False, True], ids=["open", "closing"])
def test_output_stuck_for_the_send_timeout_aborts_the_connection(engine, rec, closing):
    """Regression: a peer that stops reading held its connection, its fd
    and up to the high-water mark of output forever, and a graceful close
    waiting for that output never finished. Past the send timeout without
    write progress the connection is aborted (SEND_TIMEOUT), on every
    engine, closing or not; other connections are served meanwhile."""
    big = b"x" * (8 << 20)

    def on_message(conn: int, message: bytes) -> None:
        if message == b"flood":
            rec.engine.write(conn, big)
            if closing:
                rec.engine.close(conn)
        else:
            rec.engine.send(conn, b"ok " + message)

    rec.message_hook = on_message
    listener = rec.engine.listen("127.0.0.1", 0, ConnSpec(framing="line"))
    rec.engine.set_send_timeout(0.3)
    with running(rec.engine), _stuck_client(listener.port) as stuck, client(listener.port) as other:
        stuck.sendall(b"flood\r\n")
        _, conn, reason, _ = rec.wait_event("close")
        assert reason is CloseReason.SEND_TIMEOUT
        other.sendall(b"still here\r\n")
        assert recv_messages(other, "line", 1) == [b"ok still here"]
        with pytest.raises(OSError):  # reset: the output was dropped
            while stuck.recv(1 << 16):
                pass
