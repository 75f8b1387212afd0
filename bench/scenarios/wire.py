"""wire: the fastnet wire protocol against the plain frame protocol with the
same kind of handler (the wire layer's cost) and the peers a user would
write instead (asyncio and uvloop streams + msgpack + a length prefix).

Every server gets the same request, built here: a MessagePack bin of
--size bytes of fastnet.pack documents (bench compress's "pack" data, so
compression has something real to work on), echoed by each server's
handler. The fastnet servers, one process per way of speaking:

- ``fastnet-c``: C engine and C twins, wire v1 without HELLO;
- ``fastnet-c-v2``: the same, a v2 HELLO first, then v2 REQUESTs;
- ``fastnet-c-v2-zstd``: v2 with compression negotiated (the client offers
  every codec, the server picks zstd) at the default threshold: requests and
  replies of 4 KiB and more travel compressed;
- ``fastnet-py``, ``fastnet-py-v2``: ``FASTNET_PURE=1`` (the Python engine
  and the Python twins), v1 and v2.

P16 keeps 16 requests in flight per connection: v2's multiplexing with a
plain handler (answered in order, each read's requests in one batch), and
v1 pipelining. The load generator reads the replies frame by frame.
"""
from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import ClassVar

from fastnet import pack
from fastnet.codec.wire import HELLO, REQUEST, encode_wire_frame
from fastnet.wire import compression
from fastnet.wire._proto import codec_names, encode_message

from ..harness import RunningServer, ServerSpec, run_loadgen
from ..scenario import Cell, Load, LoadScenario, ratio_target, register
from .compress import payload
from .servers import fastnet, python_peer

#: fastnet wire servers: name -> (engine, pure Python, version, codecs offered)
WIRE_SERVERS: dict[str, tuple[str, bool, int, tuple[str, ...]]] = {
    "fastnet-c": ("c", False, 1, ()),
    "fastnet-c-v2": ("c", False, 2, ()),
    "fastnet-c-v2-zstd": ("c", False, 2, tuple(codec_names())),
    "fastnet-py": ("python", True, 1, ()),
    "fastnet-py-v2": ("python", True, 2, ()),
}
_PEER_PROTO = {"fastnet-frame-c": "be32", "uvloop-msgpack-streams": "be32pack",
               "asyncio-msgpack-streams": "be32pack"}


def _pure(spec: ServerSpec) -> ServerSpec:
    """spec under FASTNET_PURE=1 (env execs the server: the pid is its own)."""
    return ServerSpec(spec.name, lambda port: ["env", "FASTNET_PURE=1", *spec.command(port)],
                      spec.ready, spec.profile)


def request_files(name: str, size: int, outdir: Path) -> list[str]:
    """loadgen's --request-file (and --hello-file) arguments for server name
    at size, the files written under outdir."""
    obj = payload("pack", size)
    if name in _PEER_PROTO:
        body, hello = pack.packb(obj), b""
    else:
        _, _, version, codecs = WIRE_SERVERS[name]
        codec = compression.CODECS[codecs[0]] if codecs else None
        hello = b"" if version == 1 else encode_wire_frame(
            HELLO, pack.packb({"versions": [version], "codecs": list(codecs)}), version=version)
        body = encode_message(REQUEST, obj, version=version, codec=codec)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{name}-{size}.req"
    path.write_bytes(body)
    args = ["--request-file", str(path)]
    if hello:
        (outdir / f"{name}.hello").write_bytes(hello)
        args += ["--hello-file", str(outdir / f"{name}.hello")]
    return args


@cache
def _files() -> Path:
    """Where this run's request files go (removed at exit)."""
    return Path(_FILES.setdefault("dir", tempfile.TemporaryDirectory(prefix="bench-wire-")).name)


_FILES: dict[str, tempfile.TemporaryDirectory] = {}


@register
class Wire(LoadScenario):
    """One Python call per request behind every server."""
    name = "wire"
    title = "wire (fastnet wire v1/v2 + Python handler per request)"
    dims = ("size", "conns", "pipeline")
    references: ClassVar[tuple[str, ...]] = ("fastnet-frame-c", "uvloop-msgpack-streams")

    def servers(self) -> list[ServerSpec]:
        peers = "bench.peers.msgpack_peers"
        out = []
        for name, (engine, pure, _, _) in WIRE_SERVERS.items():
            spec = fastnet(name, "wire", engine, "--handler", "bench.handlers:wire_handler")
            out.append(_pure(spec) if pure else spec)
        return out + [
            fastnet("fastnet-frame-c", "frame", "c", "--handler", "bench.handlers:frame_handler"),
            python_peer("uvloop-msgpack-streams", peers, "--api", "streams", uvloop=True),
            python_peer("asyncio-msgpack-streams", peers, "--api", "streams"),
        ]

    def cells(self, quick: bool) -> list[Cell]:
        if quick:
            return self.product(size=[64], conns=[50], pipeline=[1, 16])
        return self.product(size=[64, 1024, 65536], conns=[1, 50], pipeline=[1, 16])

    def measure(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        name = server.spec.name
        files = request_files(name, cell["size"], _files())
        return run_loadgen(server, proto=_PEER_PROTO.get(name, "wire"), seconds=load.seconds,
                           warmup=load.warmup, rate=load.rate, extra=files, **cell)

    def targets(self, result: dict) -> list[dict]:
        out = []
        for name in ("fastnet-c", "fastnet-c-v2"):
            out += [
                ratio_target(result, f"{name}: at most 15% under the frame protocol at 64 B",
                             name, "fastnet-frame-c", at_least=0.85,
                             where=lambda c: c["size"] == 64),
                ratio_target(result, f"{name}: ≥1.5x uvloop streams + msgpack at 64 B",
                             name, "uvloop-msgpack-streams", at_least=1.5,
                             where=lambda c: c["size"] == 64),
            ]
        return out
