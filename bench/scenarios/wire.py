"""wire: the fastnet wire protocol (v1, no HELLO) against the plain frame
protocol with the same kind of handler (the wire layer's cost) and the peer
a user would write (uvloop streams + msgpack + a length prefix).

Reduced form: v1 only (the C load generator speaks v1 without HELLO: a
REQUEST whose body is a MessagePack bin of --size bytes, answered by an
echo handler with a RESPONSE of the same length; P16 pipelines v1 requests,
which the server answers in order). v2 with 16 in flight,
compression and the Python twins are not in this scenario yet.
"""
from __future__ import annotations

from typing import ClassVar

from ..harness import RunningServer, run_loadgen
from ..scenario import Cell, Load, LoadScenario, ratio_target, register
from .servers import fastnet, python_peer

_PROTO = {"fastnet-c": "wire", "fastnet-frame-c": "be32",
          "uvloop-msgpack-streams": "be32pack", "asyncio-msgpack-streams": "be32pack"}


@register
class Wire(LoadScenario):
    """One Python call per request behind every server."""
    name = "wire"
    title = "wire (fastnet wire v1 + Python handler per request)"
    dims = ("size", "conns", "pipeline")
    references: ClassVar[tuple[str, ...]] = ("fastnet-frame-c", "uvloop-msgpack-streams")

    def servers(self):
        peers = "bench.peers.msgpack_peers"
        return [
            fastnet("fastnet-c", "wire", "c", "--handler", "bench.handlers:wire_handler"),
            fastnet("fastnet-frame-c", "frame", "c", "--handler", "bench.handlers:frame_handler"),
            python_peer("uvloop-msgpack-streams", peers, "--api", "streams", uvloop=True),
            python_peer("asyncio-msgpack-streams", peers, "--api", "streams"),
        ]

    def cells(self, quick: bool) -> list[Cell]:
        if quick:
            return self.product(size=[64], conns=[50], pipeline=[1, 16])
        return self.product(size=[64, 1024, 65536], conns=[1, 50], pipeline=[1, 16])

    def measure(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        return run_loadgen(server, proto=_PROTO[server.spec.name], seconds=load.seconds,
                           warmup=load.warmup, rate=load.rate, **cell)

    def targets(self, result: dict) -> list[dict]:
        return [
            ratio_target(result, "wire: at most 15% under the frame protocol at 64 B",
                         "fastnet-c", "fastnet-frame-c", at_least=0.85,
                         where=lambda c: c["size"] == 64),
            ratio_target(result, "wire: ≥1.5x uvloop streams + msgpack",
                         "fastnet-c", "uvloop-msgpack-streams", at_least=1.5,
                         where=lambda c: c["size"] == 64),
        ]
