"""The protocol seam (fastnet.server.protocols): protocols are registered
units whose per-connection sessions the server feeds; the public
lifecycle (hooks, Connection.closed, the engine callbacks off Server's
surface); sessions that push, multiplex, say goodbye and hold a drain;
the asyncio client. Every test runs on every engine."""
from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Optional

import pytest

import fastnet
from fastnet.server import PROTOCOLS, ProtocolSpec, ProtocolUnit, Session
from helpers import AVAILABLE_ENGINES, GUARD, read_all, running_resp_server, running_server, wait_for

pytestmark = pytest.mark.parametrize("engine", AVAILABLE_ENGINES)


def register(monkeypatch: pytest.MonkeyPatch, unit: ProtocolUnit) -> ProtocolUnit:
    monkeypatch.setitem(PROTOCOLS, unit.name, unit)
    return unit


# -- public lifecycle -------------------------------------------------------

def test_engine_callbacks_are_not_public_methods_of_server(engine):
    server = fastnet.Server(engine=engine)
    for name in ("on_accept", "on_connected", "on_message", "on_eof", "on_protocol_error",
                 "on_close", "on_idle"):
        assert not hasattr(server, name), name
    assert server.engine.handler is not server


def test_on_connect_and_on_close_hooks_and_connection_closed(engine):
    events: list[tuple[str, int, bool]] = []
    closed = threading.Event()

    def on_connect(conn: fastnet.Connection) -> None:
        events.append(("connect", conn.id, conn.closed))

    def on_close(conn: fastnet.Connection) -> None:
        events.append(("close", conn.id, conn.closed))
        closed.set()

    def handler(conn: fastnet.Connection, message: bytes) -> Optional[bytes]:
        if message == b"bye":
            conn.close()
            return b"dropped: the handler closed it"
        return message

    with running_server(engine, "frame", handler=handler, on_connect=on_connect,
                        on_close=on_close) as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            c.send(b"hi")
            assert c.recv() == b"hi"
            c.send(b"bye")
            with pytest.raises(fastnet.errors.ConnectionClosed):
                c.recv()
        assert closed.wait(GUARD)
    assert [e[0] for e in events] == ["connect", "close"]
    assert events[0][1] == events[1][1]
    assert events[0][2] is False and events[1][2] is True


def test_an_exception_in_on_connect_closes_that_connection(engine):
    def on_connect(conn: fastnet.Connection) -> None:
        raise RuntimeError("refused")

    with running_server(engine, "frame", handler=lambda conn, m: m,
                        on_connect=on_connect) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as s:
            assert read_all(s) == b""
        wait_for(lambda: server.stats().get("closed_handler_error") == 1, "the close")


# -- sessions ---------------------------------------------------------------

class Greeter(Session):
    """Pushes a greeting when the connection opens (nothing asked for it),
    answers messages upper-cased."""

    def opened(self) -> None:
        self.conn.send(b"welcome")

    def feed(self, data: bytes) -> bytes:
        return data.upper()


def test_a_session_pushes_on_open_and_answers(engine, monkeypatch):
    register(monkeypatch, ProtocolUnit(ProtocolSpec("greet", "be32"), echo=False,
                                       session=lambda conn, handler: Greeter(conn)))
    with running_server(engine, "greet") as (server, port):
        with fastnet.connect("127.0.0.1", port, "greet") as c:
            assert c.recv() == b"welcome"
            c.send(b"abc")
            assert c.recv() == b"ABC"


class Failing(Session):
    """Answers "ok", and raises on "boom"."""

    def feed(self, data: bytes) -> bytes:
        if data == b"boom":
            raise RuntimeError("boom")
        return b"ok"


def test_a_session_that_raises_closes_only_its_connection(engine, monkeypatch):
    # Regression: on the direct path the engine hands on_error the session
    # (Session.direct's argument), and the server took it for the Connection
    # (AttributeError inside the error handler on the C engine).
    register(monkeypatch, ProtocolUnit(ProtocolSpec("failing", "be32"), echo=False,
                                       session=lambda conn, handler: Failing(conn)))
    with running_server(engine, "failing") as (server, port):
        with fastnet.connect("127.0.0.1", port, "failing") as bad, \
                fastnet.connect("127.0.0.1", port, "failing") as good:
            bad.send(b"fine")
            assert bad.recv() == b"ok"
            bad.send(b"boom")
            with pytest.raises(fastnet.errors.ConnectionClosed):
                bad.recv()
            good.send(b"still")
            assert good.recv() == b"ok"
        wait_for(lambda: server.stats().get("closed_handler_error") == 1, "the close counted")
        assert server.stats()["handler_errors"] == 1


class Concurrent(Session):
    """Records how many requests of its connection run at once; with
    ``until`` set, each waits until that many are running."""

    is_async = True

    def __init__(self, conn: fastnet.Connection, record: dict[str, Any],
                 multiplexed: bool) -> None:
        super().__init__(conn)
        self.record = record
        self.multiplexed = multiplexed

    async def feed(self, data: bytes) -> bytes:
        record = self.record
        record["running"] += 1
        record["most"] = max(record["most"], record["running"])
        if record["until"]:
            event = record.setdefault("all_running", asyncio.Event())
            if record["running"] >= record["until"]:
                event.set()
            await asyncio.wait_for(event.wait(), GUARD)
        else:
            await asyncio.sleep(0.01)
        record["running"] -= 1
        return b"re " + data


@pytest.mark.parametrize("multiplexed", [True, False], ids=["multiplexed", "in-order"])
def test_requests_of_one_connection_run_concurrently_only_when_multiplexed(
        engine, multiplexed, monkeypatch):
    record: dict[str, Any] = {"running": 0, "most": 0, "until": 5 if multiplexed else 0}
    register(monkeypatch, ProtocolUnit(
        ProtocolSpec("conc", "be32"), echo=False, needs_asyncio=lambda handler: True,
        session=lambda conn, handler: Concurrent(conn, record, multiplexed)))
    with running_server(engine, "conc") as (server, port):
        with fastnet.connect("127.0.0.1", port, "conc") as c:
            for i in range(5):
                c.send(b"%d" % i)
            replies = [c.recv() for _ in range(5)]
    expected = [b"re %d" % i for i in range(5)]
    if multiplexed:
        # All five were running at once (else each would have waited GUARD).
        assert sorted(replies) == expected and record["most"] == 5
    else:
        assert replies == expected and record["most"] == 1


class AtOnce(Session):
    """A multiplexed session whose feed answers "even" messages at once
    (bytes, no awaitable) and the others through a coroutine; it records
    whether each feed ran inside a task."""

    is_async = multiplexed = True

    def __init__(self, conn: fastnet.Connection, in_task: list[bool]) -> None:
        super().__init__(conn)
        self.in_task = in_task

    def feed(self, data: bytes) -> Any:
        self.in_task.append(asyncio.current_task() is not None)
        if int(data) % 2 == 0:
            return b"now " + data
        return self._later(data)

    async def _later(self, data: bytes) -> bytes:
        await asyncio.sleep(0)
        return b"later " + data


def test_a_multiplexed_session_may_answer_at_once_without_a_task(engine, monkeypatch):
    """On the loop's thread the server calls a multiplexed session's feed
    inside the engine's round: an answer given at once is sent without a
    task, an awaitable still runs as one; both reach the client."""
    in_task: list[bool] = []
    register(monkeypatch, ProtocolUnit(
        ProtocolSpec("atonce", "be32"), echo=False, needs_asyncio=lambda handler: True,
        session=lambda conn, handler: AtOnce(conn, in_task)))
    with running_server(engine, "atonce") as (server, port):
        with fastnet.connect("127.0.0.1", port, "atonce") as c:
            for i in range(6):
                c.send(b"%d" % i)
            replies = sorted(c.recv() for _ in range(6))
    assert replies == sorted([b"now %d" % i for i in (0, 2, 4)] + [b"later %d" % i for i in (1, 3, 5)])
    threaded = engine == "threaded"
    # The threaded engine hands each message to the loop as a coroutine (a task).
    assert in_task == [threaded] * 6


class Lingering(Session):
    """Not idle from the drain's start until a timer releases it: the
    server must wait for it (and then close it) rather than close at once."""

    def __init__(self, conn: fastnet.Connection) -> None:
        super().__init__(conn)
        self.busy = False

    def feed(self, data: bytes) -> bytes:
        return data

    def drain(self) -> Optional[bytes]:
        self.busy = True
        self.conn.server.engine.call_later(0.05, self.release)
        return super().drain()  # the spec's goodbye

    def release(self) -> None:
        self.busy = False
        self.conn.send(b"finished")
        self.conn.idle()

    def idle(self) -> bool:
        return not self.busy


def test_drain_writes_the_goodbye_and_waits_for_the_session_to_be_idle(engine, monkeypatch):
    register(monkeypatch, ProtocolUnit(ProtocolSpec("linger", "be32", goodbye=b"GOAWAY"),
                                       echo=False,
                                       session=lambda conn, handler: Lingering(conn)))
    with running_server(engine, "linger") as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as s:
            s.sendall(b"\0\0\0\x02hi")
            assert s.recv(6) == b"\0\0\0\x02hi"
            server.shutdown()
            assert read_all(s) == b"GOAWAY\0\0\0\x08finished"
        wait_for(lambda: server.stats().get("closed_drained") == 1, "the drained close")


def test_a_plain_server_refuses_resp_but_resp_server_serves_it(engine):
    with pytest.raises(ValueError, match="served by fastnet.resp.server.RespServer, not Server"):
        fastnet.Server(engine=engine).listen("127.0.0.1", 0, protocol="resp")
    with running_resp_server(engine, "python") as (server, port):
        with fastnet.connect("127.0.0.1", port, "resp") as c:
            c.send(b"PING\r\n")
            assert c.recv() == b"+PONG\r\n"


# -- the asyncio client -----------------------------------------------------

@pytest.mark.parametrize("protocol", ["frame", "line", "echo"])
def test_open_connection_sends_and_receives_whole_messages(engine, protocol):
    async def talk(port: int) -> list[bytes]:
        async with await fastnet.open_connection("127.0.0.1", port, protocol=protocol) as c:
            out = []
            for i in range(10):
                await c.send(b"message %d" % i)
                out.append(await asyncio.wait_for(c.recv(), GUARD))
            return out

    with running_server(engine, protocol, handler=lambda conn, m: m.upper()) as (server, port):
        got = asyncio.run(talk(port))
    assert got == [b"MESSAGE %d" % i for i in range(10)]


def test_open_connection_refuses_an_unknown_protocol(engine):
    with pytest.raises(ValueError, match="unknown protocol 'nope'"):
        asyncio.run(fastnet.open_connection("127.0.0.1", 1, protocol="nope"))


def test_on_connect_waits_for_a_slot_in_the_backlog(engine):
    connected: list[int] = []
    with running_server(engine, "frame", handler=lambda conn, m: m,
                        on_connect=lambda conn: connected.append(conn.id),
                        max_connections=1, backlog=1) as (server, port):
        first = fastnet.connect("127.0.0.1", port, "frame")
        first.send(b"1")
        assert first.recv() == b"1"
        second = fastnet.connect("127.0.0.1", port, "frame")
        second.send(b"2")  # waits, unread, in the backlog
        wait_for(lambda: server.stats()["queued"] == 1, "the second to wait")
        assert len(connected) == 1
        first.close()
        assert second.recv() == b"2"
        second.close()
    assert len(connected) == 2 and connected[0] != connected[1]


class Prober(Session):
    def feed(self, data: bytes) -> bytes:
        return data


def test_open_connection_answers_probes_while_it_waits(engine, monkeypatch):
    register(monkeypatch, ProtocolUnit(
        ProtocolSpec("probed", "be32", probe=b"\0PING", probe_reply=b"\0PONG"), echo=False,
        session=lambda conn, handler: Prober(conn)))
    interval = 0.4

    async def talk(port: int) -> bytes:
        async with await fastnet.open_connection("127.0.0.1", port, protocol="probed") as c:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.recv(), 6 * interval)  # probes answered meanwhile
            await c.send(b"still here")
            return await asyncio.wait_for(c.recv(), GUARD)

    with running_server(engine, "probed", idle_timeout=None,
                        keepalive_interval=interval) as (server, port):
        assert asyncio.run(talk(port)) == b"still here"
        assert server.stats().get("closed_keepalive", 0) == 0
