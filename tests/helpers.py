"""Helpers shared by the server tests: run a Server in a thread, or the CLI in
a subprocess, on 127.0.0.1 with an OS-assigned port."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator, Optional, TypeVar

import pytest

from fastnet import Server, native
from fastnet import backend as fastnet_backend
from fastnet.resp import RespServer
from fastnet.server import Handler

ENGINES = ["c", "python", "threaded"]
GUARD = 30.0  # seconds: a failure guard, never a speed assertion


def require_engine(name: str) -> None:
    """Skip a case on the c engine when the C extension is not in use
    (FASTNET_PURE=1, or not built). Never under FASTNET_REQUIRE_NATIVE=1,
    where a missing extension already fails at import: then it fails here."""
    if name != "c" or native.backend == "c":
        return
    if os.environ.get("FASTNET_REQUIRE_NATIVE", "") not in ("", "0"):
        pytest.fail(f"the c engine is required but unavailable ({native.unavailable_reason})")
    pytest.skip(f"the c engine needs the C extension ({native.unavailable_reason})")
S = TypeVar("S", bound=Server)


@contextlib.contextmanager
def running_server(engine: str, protocol: str = "echo", handler: Optional[Handler] = None,
                   **options: object) -> Iterator[tuple[Server, int]]:
    """A Server on a free port, run() in a background thread (on_connect
    and on_close go to listen(), every other option to Server)."""
    hooks = {k: options.pop(k) for k in ("on_connect", "on_close") if k in options}
    require_engine(engine)
    server = Server(engine=engine, **options)  # type: ignore[arg-type]
    listener = server.listen("127.0.0.1", 0, protocol=protocol, handler=handler,
                             **hooks)  # type: ignore[arg-type]
    with serving(server):
        yield server, listener.port


@contextlib.contextmanager
def running_resp_server(engine: str, codec: str,
                        setup: Optional[Callable[[RespServer], object]] = None,
                        **options: object) -> Iterator[tuple[RespServer, int]]:
    """A RespServer on a free port, run() in a background thread. setup(server)
    runs before it listens (to register custom commands)."""
    require_engine(engine)
    server = RespServer(engine=engine, codec=codec, **options)  # type: ignore[arg-type]
    if setup is not None:
        setup(server)
    listener = server.listen("127.0.0.1", 0)
    with serving(server):
        yield server, listener.port


@contextlib.contextmanager
def serving(server: S) -> Iterator[S]:
    """server.run() in a background thread until the block ends; then
    server.stop(), and an exception run() raised is raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"server-{server.engine.name}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(GUARD)
        assert not thread.is_alive(), "server did not stop"
        if errors:
            raise errors[0]


def wait_for(predicate: Callable[[], object], what: str) -> None:
    """Poll until predicate() is true; fail after GUARD seconds."""
    deadline = time.monotonic() + GUARD
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


SERVING_LINE = re.compile(r"fastnet serving (\w+) on (\S+):(\d+) \(engine (\w+)")


@contextlib.contextmanager
def cli_server(*args: str, pure: bool = False) -> Iterator[tuple[subprocess.Popen, int, str]]:
    # stderr is a pipe the tests may read (logs); keep them short.
    """`python -m fastnet.serve --port 0 ARGS` in a subprocess; yields the
    process, the port from its first line, and that line. pure: the child
    runs on the pure-Python twins (FASTNET_PURE=1, and without
    FASTNET_REQUIRE_NATIVE, which contradicts it), so only the python and
    threaded engines are available to it."""
    if not pure:  # the child's engine: --engine's, or the default (c)
        require_engine(args[args.index("--engine") + 1] if "--engine" in args else "c")
    env = dict(os.environ)
    if pure:
        env["FASTNET_PURE"] = "1"
        env.pop("FASTNET_REQUIRE_NATIVE", None)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastnet.serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = SERVING_LINE.search(line)
        if not match:
            proc.kill()
            raise AssertionError(f"no serving line: {line!r} stderr={proc.stderr.read()!r}")
        yield proc, int(match.group(3)), line
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(GUARD)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that
    cannot pick their own and report it, such as redis-server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def redis_server(directory: str, *options: str, tcp: bool = False) -> Iterator[str]:
    """A throwaway redis-server on a Unix socket in ``directory`` (no TCP
    port to race for), stopped by its PID; yields the socket path. The
    README's test command installs redis-server: in CI its absence fails,
    elsewhere the test is skipped. ``options`` are added to its command
    line. tcp=True also listens on 127.0.0.1 at a free port and yields
    (path, port): a port taken by someone else in between is retried."""
    import pytest

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (the README's test command installs it)")
        pytest.skip("redis-server is not installed")
    path = os.path.join(directory, "redis.sock")
    for _ in range(5 if tcp else 1):
        port = free_port() if tcp else 0
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--unixsocket", path,
             "--save", "", "--appendonly", "no", *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while proc.poll() is None:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait(10)
                    pytest.fail("redis-server did not start")
                time.sleep(0.02)
        if proc.poll() is None:
            break
    else:
        pytest.fail("redis-server did not start")
    try:
        yield (path, port) if tcp else path  # type: ignore[misc]
    finally:
        proc.terminate()
        proc.wait(10)


def read_all(sock: socket.socket) -> bytes:
    """Every byte until the server closes (or resets) the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


#: ENGINES without "c" when the C extension is not in use (FASTNET_PURE=1).
#: CI sets FASTNET_REQUIRE_NATIVE=1, where a missing extension fails at
#: import, so there every engine always runs.
AVAILABLE_ENGINES = [e for e in ENGINES if e != "c" or fastnet_backend == "c"]
