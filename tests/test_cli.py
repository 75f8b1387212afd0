"""`python -m fastnet.serve`: starts, serves, reports its port, exits 0 on
SIGTERM/SIGINT; server memory stays bounded under a peer that never reads."""
from __future__ import annotations

import selectors
import signal
import socket
import subprocess
import sys

import psutil
import pytest

import fastnet
from helpers import ENGINES, GUARD, cli_server


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_and_exits_0_on_signal(engine, signum):
    with cli_server("--protocol", "frame", "--engine", engine) as (proc, port, line):
        assert f"engine {engine}" in line and "serving frame on 127.0.0.1:" in line
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            c.send(b"hello")
            assert c.recv() == b"hello"
            proc.send_signal(signum)
            assert proc.wait(GUARD) == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=GUARD)


@pytest.mark.parametrize("protocol", ["echo", "line"])
def test_each_protocol_from_the_cli(protocol):
    with cli_server("--protocol", protocol) as (proc, port, line):
        assert f"serving {protocol}" in line and "engine c" in line
        with fastnet.connect("127.0.0.1", port, protocol) as c:
            c.send(b"abc")
            assert (c.recv() if protocol == "line" else c.recv_exactly(3)) == b"abc"
        proc.terminate()
        assert proc.wait(GUARD) == 0


def test_help_lists_every_option():
    out = subprocess.run([sys.executable, "-m", "fastnet.serve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for option in ("--protocol", "--host", "--port", "--engine", "--max-frame", "--log-level"):
        assert option in out


def test_port_in_use_is_a_clear_error():
    with cli_server("--protocol", "echo") as (proc, port, line):
        result = subprocess.run([sys.executable, "-m", "fastnet.serve", "--port", str(port)],
                                capture_output=True, text=True, timeout=GUARD)
        assert result.returncode == 2
        assert "cannot listen" in result.stderr and "in use" in result.stderr
        proc.terminate()
        assert proc.wait(GUARD) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_memory_bounded_under_a_peer_that_never_reads(engine):
    with cli_server("--protocol", "echo", "--engine", engine) as (proc, port, line):
        server = psutil.Process(proc.pid)
        with fastnet.connect("127.0.0.1", port, "echo") as c:  # warm up
            c.send(b"x")
            assert c.recv() == b"x"
        before = server.memory_info().rss
        hogs = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        sel = selectors.DefaultSelector()
        for h in hogs:
            h.setblocking(False)
            sel.register(h, selectors.EVENT_WRITE)
        chunk, sent = b"m" * 65536, 0
        while sent < 1024 * 1024 * 1024:
            ready = sel.select(timeout=1.0)
            if not ready:
                break  # every hog is blocked: the server stopped reading them all
            for key, _ in ready:
                try:
                    sent += key.fileobj.send(chunk)
                except BlockingIOError:
                    pass
        sel.close()
        grown = server.memory_info().rss - before
        # Per connection: 4 MiB high water + one 256 KiB read + buffers.
        assert sent < 4 * 64 * 1024 * 1024, f"server kept reading: {sent} bytes taken"
        assert grown < 4 * 12 * 1024 * 1024, f"server RSS grew by {grown} bytes"
        with fastnet.connect("127.0.0.1", port, "echo") as c:
            c.send(b"others still served")
            assert c.recv_exactly(19) == b"others still served"
        for h in hogs:
            h.close()
        proc.terminate()
        assert proc.wait(GUARD) == 0
