"""A handler cannot take a server down: a result that is not bytes-like or
None, or any exception from handler code (plain or async), closes that one
connection (in the protocol's error form where it has one), is logged with
the handler's name and the type, is counted, and every other client keeps
being served, on every engine (the C engine's direct path included)."""
from __future__ import annotations

import asyncio
import gc
import logging
import socket
import struct

import pytest

import fastnet
from helpers import AVAILABLE_ENGINES, GUARD, cli_server, read_all, running_server, wait_for

pytestmark = pytest.mark.parametrize("engine", AVAILABLE_ENGINES)


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def bad_result(conn: fastnet.Connection, message: bytes) -> object:
    kinds = {b"str": "text", b"int": 7, b"dict": {"a": 1}, b"list": [b"x"]}
    return kinds.get(message, message)


async def bad_async_result(conn: fastnet.Connection, message: bytes) -> object:
    await asyncio.sleep(0)
    return bad_result(conn, message)


async def async_raises(conn: fastnet.Connection, message: bytes) -> bytes:
    await asyncio.sleep(0)
    if not message.startswith(b"fine"):
        raise KeyError(message)
    return message


def assert_others_served(port: int, protocol: str = "frame") -> None:
    with fastnet.connect("127.0.0.1", port, protocol) as good:
        for i in range(20):
            good.send(b"fine %d" % i)
        assert [good.recv() for _ in range(20)] == [b"fine %d" % i for i in range(20)]


@pytest.mark.parametrize("kind", [b"str", b"int", b"dict", b"list"])
@pytest.mark.parametrize("handler", [bad_result, bad_async_result], ids=["plain", "async"])
def test_a_result_that_is_not_bytes_closes_only_that_connection(engine, kind, handler, caplog):
    caplog.set_level(logging.ERROR, "fastnet.server")
    with running_server(engine, "frame", handler=handler) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as bad:
            # One write: on the C engine the three arrive in one batch.
            bad.sendall(frame(b"first") + frame(kind) + frame(b"never"))
            assert read_all(bad) == frame(b"first")
        assert_others_served(port)
        # The threaded engine may close the socket before on_close has run.
        wait_for(lambda: server.stats().get("closed_handler_error") == 1, "the close")
        assert server.stats()["handler_errors"] == 1
    logged = [r.getMessage() for r in caplog.records if r.name == "fastnet.server"]
    assert any(handler.__name__ in m and "TypeError" in m and
               f"returned {type(bad_result(None, kind)).__name__}" in m  # type: ignore[arg-type]
               for m in logged), logged


def test_an_async_exception_closes_the_connection_and_leaves_no_orphan_task(engine, caplog):
    caplog.set_level(logging.ERROR)
    with running_server(engine, "frame", handler=async_raises) as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as bad:
            bad.send(b"fine")
            assert bad.recv() == b"fine"
            bad.send(b"boom")
            with pytest.raises((fastnet.errors.ConnectionClosed, ConnectionResetError)):
                bad.recv()
        assert_others_served(port)
        wait_for(lambda: server.stats().get("closed_handler_error") == 1, "the close")
    gc.collect()  # an unretrieved task exception is reported when the task dies
    messages = [r.getMessage() for r in caplog.records]
    assert not any("never retrieved" in m for m in messages), messages
    assert any("async_raises" in m and "KeyError" in m for m in messages), messages


def test_the_line_protocol_answers_a_failed_handler_in_its_error_form(engine):
    def handler(conn: fastnet.Connection, message: bytes) -> object:
        return {b"quiet": None, b"ok": b"ok"}.get(message, message.decode())

    with running_server(engine, "line", handler=handler) as (server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as bad:
            bad.sendall(b"quiet\r\nok\r\nhello\r\nnever\r\n")
            assert read_all(bad) == b"ok\r\n-ERR internal error\r\n"
        with fastnet.connect("127.0.0.1", port, "line") as good:
            good.send(b"ok")
            assert good.recv() == b"ok"
        wait_for(lambda: server.stats().get("closed_handler_error") == 1, "the close")


def test_listen_refuses_a_handler_that_is_not_callable(engine):
    server = fastnet.Server(engine=engine)
    with pytest.raises(TypeError, match="handler must be callable, not str"):
        server.listen("127.0.0.1", 0, protocol="frame", handler="mod:f")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_connect must be callable"):
        server.listen("127.0.0.1", 0, protocol="frame", handler=bad_result, on_connect=3)  # type: ignore[arg-type]
    assert server.listeners == []


def test_a_str_from_a_cli_handler_does_not_kill_the_server(engine):
    with cli_server("--protocol", "frame", "--engine", engine,
                    "--handler", "serve_handlers:to_str") as (proc, port, line):
        for _ in range(3):
            with fastnet.connect("127.0.0.1", port, "frame") as c:
                c.send(b"ok")
                assert c.recv() == b"ok"
                c.send(b"text")
                with pytest.raises((fastnet.errors.ConnectionClosed, ConnectionResetError)):
                    c.recv()
        assert proc.poll() is None, "the server died"
        proc.terminate()
        assert proc.wait(GUARD) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
    assert "serve_handlers.to_str failed" in err and "returned str" in err
