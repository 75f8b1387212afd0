"""The control plane, end to end over real sockets on every engine:
connection limit and backlog, graceful drain, keep-alive, counters."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time

import pytest

import fastnet
from fastnet.server import PROTOCOLS, ProtocolSpec, ProtocolUnit
from helpers import ENGINES, GUARD, cli_server, running_server, wait_for

pytestmark = pytest.mark.parametrize("engine", ENGINES)


def line_client(port: int) -> fastnet.Client:
    return fastnet.connect("127.0.0.1", port, "line")


def assert_closed(c: fastnet.Client) -> None:
    with pytest.raises((fastnet.errors.ConnectionClosed, ConnectionResetError)):
        c.recv()


# -- connection limit and backlog --------------------------------------------

def test_limit_backlog_fifo_promotion_and_busy_rejection(engine):
    with running_server(engine, "line", max_connections=2, backlog=2,
                        queue_timeout=GUARD) as (server, port):
        served = [line_client(port) for _ in range(2)]
        for i, c in enumerate(served):
            c.send(b"served %d" % i)
            assert c.recv() == b"served %d" % i
        waiting = [line_client(port) for _ in range(2)]
        wait_for(lambda: server.stats()["queued"] == 2, "two connections to queue")
        for i, c in enumerate(waiting):
            c.send(b"waiting %d" % i)  # accepted, but nothing is read yet
        turned_away = line_client(port)
        assert turned_away.recv() == b"-ERR server busy"
        assert_closed(turned_away)
        assert server.stats()["active"] == 2 and server.stats()["bytes_in"] == 2 * len(b"served 0\r\n")

        served[0].close()  # a slot frees: the oldest waiting one is served
        assert waiting[0].recv() == b"waiting 0"
        assert server.stats()["queued"] == 1
        served[1].close()
        assert waiting[1].recv() == b"waiting 1"
        stats = server.stats()
        assert stats["rejected_busy"] == 1 and stats["queued"] == 0 and stats["active"] == 2
        for c in waiting + [turned_away]:
            c.close()


def test_queue_timeout_rejects_a_waiting_connection(engine):
    with running_server(engine, "line", max_connections=1, backlog=1,
                        queue_timeout=0.3) as (server, port):
        with line_client(port) as first:
            first.send(b"hi")
            assert first.recv() == b"hi"
            with line_client(port) as waiting:
                assert waiting.recv() == b"-ERR server busy"
                assert_closed(waiting)
            assert server.stats()["rejected_queue_timeout"] == 1
            first.send(b"still served")
            assert first.recv() == b"still served"


@pytest.mark.parametrize("protocol", ["echo", "frame"])
def test_rejected_raw_and_frame_clients_see_a_close_without_bytes(engine, protocol):
    with running_server(engine, protocol, max_connections=1, backlog=0) as (server, port):
        with fastnet.connect("127.0.0.1", port, protocol) as first:
            first.send(b"x")
            assert (first.recv() if protocol == "frame" else first.recv_exactly(1)) == b"x"
            with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as s:
                assert s.recv(100) == b""  # accepted, then closed: no error form
            assert server.stats()["rejected_busy"] == 1


def test_set_limits_while_serving(engine):
    with running_server(engine, "line", max_connections=1, backlog=5,
                        queue_timeout=GUARD) as (server, port):
        clients = [line_client(port) for _ in range(3)]
        wait_for(lambda: server.stats()["queued"] == 2, "two to queue")
        server.set_limits(max_connections=3)  # promotes both at once
        for i, c in enumerate(clients):
            c.send(b"%d" % i)
            assert c.recv() == b"%d" % i
        server.set_limits(max_connections=1)  # never drops the ones served
        for i, c in enumerate(clients):
            c.send(b"again %d" % i)
            assert c.recv() == b"again %d" % i
        late = line_client(port)
        wait_for(lambda: server.stats()["queued"] == 1, "the newcomer to wait")
        assert server.stats()["active"] == 3
        for c in clients + [late]:
            c.close()


def test_stats_counts_what_happened(engine):
    with running_server(engine, "line", max_connections=1, backlog=0) as (server, port):
        with line_client(port) as c:
            c.send(b"abc")
            assert c.recv() == b"abc"
            line_client(port).close()  # rejected busy
            wait_for(lambda: server.stats().get("closed_rejected") == 1, "the rejection")
        wait_for(lambda: server.stats()["active"] == 0, "the close")
        stats = server.stats()
        assert stats["accepted"] == 2 and stats["rejected_busy"] == 1
        assert stats["bytes_in"] == 5 and stats["bytes_out"] >= 5
        assert stats["closed_peer"] + stats.get("closed_local", 0) == 1


# -- graceful shutdown with in-flight drain ----------------------------------

def test_shutdown_finishes_every_request_in_flight(engine):
    started = threading.Semaphore(0)

    async def slow(conn, message):
        started.release()
        await asyncio.sleep(0.5)
        return b"done " + message

    with running_server(engine, "frame", handler=slow) as (server, port):
        clients = [fastnet.connect("127.0.0.1", port, "frame") for _ in range(50)]
        for i, c in enumerate(clients):
            c.send(b"%d" % i)
        for _ in clients:
            assert started.acquire(timeout=GUARD)
        server.shutdown()
        wait_for(lambda: _refused(port), "the listener to close")
        for i, c in enumerate(clients):
            assert c.recv() == b"done %d" % i
            assert_closed(c)
            c.close()
    assert server.forced_closes == 0
    # >= : a refusal probe that connected before the drain began is drained too.
    assert server.stats()["closed_drained"] >= 50


def _refused(port: int) -> bool:
    """Is a new connect refused? One that is accepted, or times out, counts
    as not refused yet; the caller asks again."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    except (TimeoutError, ConnectionResetError):
        pass  # a connect that raced the listener's close: ask again
    return False


def test_shutdown_rejects_the_backlog_and_closes_idle_connections(engine):
    with running_server(engine, "line", max_connections=1, backlog=1,
                        queue_timeout=GUARD) as (server, port):
        idle = line_client(port)
        idle.send(b"x")
        assert idle.recv() == b"x"
        waiting = line_client(port)
        wait_for(lambda: server.stats()["queued"] == 1, "the second to wait")
        server.shutdown()
        assert waiting.recv() == b"-ERR server shutting down"
        assert_closed(waiting)
        assert_closed(idle)
        for c in (idle, waiting):
            c.close()
    assert server.forced_closes == 0
    assert server.stats()["rejected_shutdown"] == 1


def wait_started(proc, n: int) -> None:
    """Read the server's log until n requests have reached the handler."""
    seen = 0
    assert proc.stderr is not None
    for text in proc.stderr:
        seen += "serve_handlers: started" in text
        if seen == n:
            return
    raise AssertionError(f"server exited after {seen} of {n} requests started")


def test_cli_sigterm_drains_50_requests_then_exits_0(engine):
    with cli_server("--protocol", "frame", "--engine", engine,
                    "--handler", "serve_handlers:slow") as (proc, port, line):
        clients = [fastnet.connect("127.0.0.1", port, "frame") for _ in range(50)]
        for i, c in enumerate(clients):
            c.send(b"%d" % i)
        wait_started(proc, 50)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: _refused(port), "the listener to close")
        for i, c in enumerate(clients):
            assert c.recv() == b"done %d" % i
            c.close()
        assert proc.wait(GUARD) == 0
        assert time.monotonic() - began < 15  # the default deadline is 30 s


def test_cli_drain_deadline_forces_and_exits_1(engine):
    with cli_server("--protocol", "frame", "--engine", engine, "--drain-timeout", "0.5",
                    "--handler", "serve_handlers:never") as (proc, port, line):
        c = fastnet.connect("127.0.0.1", port, "frame")
        c.send(b"forever")
        wait_started(proc, 1)
        proc.send_signal(signal.SIGTERM)
        assert_closed(c)
        assert proc.wait(GUARD) == 1
        c.close()


def test_cli_second_sigint_forces_at_once(engine):
    with cli_server("--protocol", "frame", "--engine", engine,
                    "--handler", "serve_handlers:never") as (proc, port, line):
        c = fastnet.connect("127.0.0.1", port, "frame")
        c.send(b"forever")
        wait_started(proc, 1)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: _refused(port), "the listener to close")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(GUARD) == 1
        assert time.monotonic() - began < 15  # not the 30 s deadline
        c.close()


def test_sigusr1_logs_the_counters(engine):
    with cli_server("--protocol", "echo", "--engine", engine) as (proc, port, line):
        with fastnet.connect("127.0.0.1", port, "echo") as c:
            c.send(b"abc")
            assert c.recv_exactly(3) == b"abc"
            proc.send_signal(signal.SIGUSR1)
            assert proc.stderr is not None
            for text in proc.stderr:
                if "stats:" in text:
                    break
            assert "accepted=1" in text and "active=1" in text and "bytes_in=3" in text
        proc.terminate()
        assert proc.wait(GUARD) == 0


# -- keep-alive ----------------------------------------------------------------

def test_silent_peer_is_closed_and_a_talking_one_is_not(engine):
    timeout = 0.3
    with running_server(engine, "line", idle_timeout=timeout) as (server, port):
        with line_client(port) as talker, line_client(port) as silent:
            began = time.monotonic()
            while time.monotonic() - began < 4 * timeout:
                talker.send(b"tick")
                assert talker.recv() == b"tick"
                time.sleep(timeout / 4)
            # The silent one went at its timeout, within one tick of it.
            assert_closed(silent)
            talker.send(b"still here")
            assert talker.recv() == b"still here"
        stats = server.stats()
        assert stats["closed_idle"] == 1


def test_idle_close_happens_within_one_tick(engine):
    timeout = 0.25
    with running_server(engine, "echo", idle_timeout=timeout) as (server, port):
        with fastnet.connect("127.0.0.1", port, "echo") as c:
            c.send(b"x")
            assert c.recv_exactly(1) == b"x"
            quiet_since = time.monotonic()
            assert_closed(c)
            silent_for = time.monotonic() - quiet_since
        # One tick is the idle timeout itself; generous slack for a busy machine.
        assert timeout * 0.9 <= silent_for < 2 * timeout + 1.0


def test_busy_coroutine_request_is_not_an_idle_peer(engine):
    async def slow(conn, message):
        await asyncio.sleep(0.6)
        return message

    with running_server(engine, "frame", handler=slow, idle_timeout=0.2) as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            c.send(b"patience")
            assert c.recv() == b"patience"


@pytest.fixture
def probing_protocol(monkeypatch):
    """A length-prefixed protocol with a keep-alive probe (the later wire
    protocol and HTTP/2 have one; the built-in echo protocols do not)."""
    spec = ProtocolSpec("probing", "be32", probe=b"\x00PING", probe_reply=b"\x00PONG")
    monkeypatch.setitem(PROTOCOLS, "probing", ProtocolUnit(spec))
    return spec


def test_probe_unanswered_closes_and_fastnet_client_answers(engine, probing_protocol):
    interval = 0.4
    with running_server(engine, "probing", handler=lambda conn, m: m,
                        idle_timeout=None, keepalive_interval=interval) as (server, port):
        raw = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        client = fastnet.connect("127.0.0.1", port, "probing", timeout=6 * interval)
        # The fastnet client answers every probe while it waits in recv()...
        with pytest.raises(socket.timeout):
            client.recv()
        client.sock.settimeout(GUARD)
        client.send(b"alive")
        assert client.recv() == b"alive"
        # ...while the raw socket got the probe, did not answer, and was closed.
        got = b""
        while True:
            data = raw.recv(100)
            if not data:
                break
            got += data
        assert got == b"\x00\x00\x00\x05\x00PING"
        assert server.stats()["closed_keepalive"] == 1
        raw.close()
        client.close()


def test_tcp_keepalive_is_set_on_accepted_sockets(engine):
    with running_server(engine, "echo", tcp_keepalive=(7, 3, 4)) as (server, port):
        with fastnet.connect("127.0.0.1", port, "echo") as c:
            c.send(b"x")
            assert c.recv_exactly(1) == b"x"
            (conn_id,) = list(server._conns)
            fd = os.dup(server.engine.fileno(conn_id))
            with socket.socket(fileno=fd) as s:
                assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
                assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
                assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
