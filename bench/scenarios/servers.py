"""Server commands the scenarios share."""
from __future__ import annotations

import importlib.util
import sys

from fastnet.server import get as protocol_unit

from ..harness import ROOT, ServerSpec, ServerUnavailable, compile_c


def fastnet(name: str, protocol: str, engine: str, *extra: str) -> ServerSpec:
    """``python -m fastnet.serve`` with one registered protocol and engine,
    port picked by the OS (an unknown protocol fails here, naming the
    registry's choices)."""
    protocol_unit(protocol)
    return ServerSpec(name, lambda port: [
        sys.executable, "-m", "fastnet.serve", "--protocol", protocol, "--engine", engine,
        "--port", str(port), "--log-level", "WARNING", "--idle-timeout", "off",
        "--max-connections", "20000", *extra], profile=True)


def python_peer(name: str, module: str, *extra: str, uvloop: bool = False) -> ServerSpec:
    """A peer in bench/peers (``python -m MODULE PORT ...``), optionally on uvloop."""
    def command(port: int) -> list[str]:
        if uvloop and importlib.util.find_spec("uvloop") is None:
            raise ServerUnavailable("uvloop is not installed (pip install -e '.[bench]')")
        if importlib.util.find_spec(module) is None:
            raise ServerUnavailable(f"{module} does not exist yet")
        return [sys.executable, "-m", module, str(port), *extra,
                *(["--uvloop"] if uvloop else [])]
    return ServerSpec(name, command)


def c_epoll() -> ServerSpec:
    """bench/peers/c_echo.c: a minimal hand-written epoll echo server, the
    reference for the C engine (``c_echo PORT``; prints ``listening PORT``)."""
    return ServerSpec("c-epoll", lambda port: [
        str(compile_c("c_echo", [ROOT / "bench" / "peers" / "c_echo.c"])), str(port)])
