"""echo: raw bytes echoed back, every engine against hand-written C and asyncio."""
from __future__ import annotations

from typing import ClassVar

from ..harness import RunningServer, run_loadgen
from ..scenario import Cell, Load, LoadScenario, ratio_target, register
from .servers import c_epoll, fastnet, python_peer


@register
class Echo(LoadScenario):
    """Raw echo; loadgen counts bytes back (a request is --size bytes)."""
    name = "echo"
    title = "echo (raw bytes)"
    dims = ("size", "conns", "pipeline")
    # c-epoll: the reference for the C engine; asyncio-protocol: for the Python engine.
    references: ClassVar[tuple[str, ...]] = ("c-epoll", "asyncio-protocol")

    def servers(self):
        return [
            fastnet("fastnet-c", "echo", "c"),
            fastnet("fastnet-python", "echo", "python"),
            fastnet("fastnet-threaded", "echo", "threaded"),
            python_peer("asyncio-protocol", "bench.peers.asyncio_echo"),
            python_peer("asyncio-streams", "bench.peers.asyncio_echo", "--api", "streams"),
            python_peer("uvloop-protocol", "bench.peers.asyncio_echo", uvloop=True),
            c_epoll(),
        ]

    def cells(self, quick: bool) -> list[Cell]:
        if quick:
            return [{"size": 64, "conns": 1, "pipeline": 1},
                    {"size": 64, "conns": 50, "pipeline": 1},
                    {"size": 64, "conns": 50, "pipeline": 16},
                    {"size": 16384, "conns": 50, "pipeline": 1}]
        return self.product(size=[64, 1024, 16384, 102400], conns=[1, 50], pipeline=[1, 16])

    def measure(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        return run_loadgen(server, proto="raw", seconds=load.seconds, warmup=load.warmup,
                           rate=load.rate, **cell)

    def targets(self, result: dict) -> list[dict]:
        fifty = lambda cell: cell["conns"] == 50  # noqa: E731
        return [
            ratio_target(result, "echo: C engine ≥0.95x c-epoll throughput, every 50-conn cell",
                         "fastnet-c", "c-epoll", where=fifty, at_least=0.95),
            ratio_target(result, "echo: C engine p99 ≤1.1x c-epoll, every 50-conn cell",
                         "fastnet-c", "c-epoll", where=fifty, metric="p99_us", at_most=1.1),
            ratio_target(result, "echo: Python engine ≥1.0x asyncio Protocol, every cell",
                         "fastnet-python", "asyncio-protocol", at_least=1.0),
        ]
