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
from helpers import AVAILABLE_ENGINES, ENGINES, GUARD, cli_server


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


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastnet.serve", *args],
                          capture_output=True, text=True, timeout=GUARD)


@pytest.mark.parametrize("args, words", [
    (("--port", "-1"), ["--port", "-1 is not a port", "1-65535", "0 for any free port"]),
    (("--port", "70000"), ["--port", "70000 is not a port"]),
    (("--port", "http"), ["--port", "'http' is not a port number"]),
    (("--max-connections", "0"), ["--max-connections", "at least 1"]),
    (("--protocol", "frame", "--max-frame", "1.5M"),
     ["--max-frame", "'1.5M' is not a size", "K, M or G", "16M"]),
    (("--protocol", "frame", "--max-frame", "0"), ["--max-frame", "at least 1 byte"]),
    (("--protocol", "line", "--frame-header", "varint"),
     ["--frame-header does not apply to --protocol line", "frame"]),
    (("--protocol", "echo", "--bare-lf"), ["--bare-lf does not apply to --protocol echo"]),
    (("--protocol", "frame", "--max-frame", "10G"),
     ["--max-frame", "4-byte length header", "--frame-header varint"]),
    (("--protocol", "resp", "--handler", "os:getcwd"),
     ["--handler does not apply to --protocol resp"]),
    (("--handler", "os:sep"), ["--handler", "os:sep is a str, not a function"]),
    (("--queue-timeout", "nan"), ["--queue-timeout", "positive number of seconds"]),
])
def test_bad_flags_are_named_in_plain_words(args, words):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    assert "max_connections" not in result.stderr  # the Python argument's name


def test_a_varint_header_takes_a_large_max_frame():
    with cli_server("--protocol", "frame", "--frame-header", "varint", "--engine", "python",
                    "--max-frame", "10G") as (proc, port, line):
        with fastnet.connect("127.0.0.1", port, "frame", frame_header="varint") as c:
            c.send(b"big enough")
            assert c.recv() == b"big enough"
        proc.terminate()
        assert proc.wait(GUARD) == 0


@pytest.mark.parametrize("engine", AVAILABLE_ENGINES)
def test_port_in_use_is_said_once_on_every_engine(engine):
    with cli_server("--protocol", "echo", "--engine", "python") as (proc, port, line):
        result = run_cli("--port", str(port), "--engine", engine)
        assert result.returncode == 2
        assert result.stderr.count("in use") == 1, result.stderr
        assert result.stderr.count("cannot listen") == 1, result.stderr
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
        proc.terminate()
        assert proc.wait(GUARD) == 0


def test_protocols_and_their_options_come_from_the_registry(monkeypatch):
    from fastnet import serve
    from fastnet.server import PROTOCOLS, Option, ProtocolSpec, ProtocolUnit

    monkeypatch.setitem(PROTOCOLS, "shout", ProtocolUnit(
        ProtocolSpec("shout", "line"), help="lines, shouted",
        options=(Option("--volume", type=int, default=11, help="how loud"),)))
    parser = serve.build_parser()
    text = parser.format_help()
    assert "shout: lines, shouted" in text and "[shout] how loud" in text
    args = parser.parse_args(["--protocol", "shout"])
    assert serve._unit_values(parser, args, PROTOCOLS["shout"]) == {"volume": 11}
    with pytest.raises(SystemExit):
        args = parser.parse_args(["--protocol", "frame", "--volume", "3"])
        serve._unit_values(parser, args, PROTOCOLS["frame"])
