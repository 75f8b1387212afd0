"""frame: be32-framed messages, each answered by a Python handler."""
from __future__ import annotations

from typing import ClassVar

from ..harness import RunningServer, run_loadgen
from ..scenario import Cell, Load, LoadScenario, ratio_target, register
from .servers import fastnet, python_peer

HANDLER = "bench.handlers:frame_handler"


@register
class Frame(LoadScenario):
    """The same Python handler (bench/handlers.py) behind every server."""
    name = "frame"
    title = "frame (be32 + Python handler per message)"
    dims = ("size", "conns", "pipeline")
    references: ClassVar[tuple[str, ...]] = ("uvloop-protocol",)

    def servers(self):
        peers = "bench.peers.frame_peers"
        return [
            fastnet("fastnet-c", "frame", "c", "--handler", HANDLER),
            fastnet("fastnet-python", "frame", "python", "--handler", HANDLER),
            python_peer("asyncio-protocol", peers, "--api", "protocol"),
            python_peer("asyncio-streams", peers, "--api", "streams"),
            python_peer("uvloop-protocol", peers, "--api", "protocol", uvloop=True),
        ]

    def cells(self, quick: bool) -> list[Cell]:
        if quick:
            return self.product(size=[64], conns=[50], pipeline=[1, 16])
        return self.product(size=[64], conns=[1, 50], pipeline=[1, 16])

    def measure(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        return run_loadgen(server, proto="be32", seconds=load.seconds, warmup=load.warmup,
                           rate=load.rate, **cell)

    def targets(self, result: dict) -> list[dict]:
        return [ratio_target(
            result, "frame: C engine + Python handler ≥1.5x uvloop, 64 B / 50 conns, P1 and P16",
            "fastnet-c", "uvloop-protocol", at_least=1.5,
            where=lambda c: c["size"] == 64 and c["conns"] == 50)]
