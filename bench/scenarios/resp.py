"""resp: the Redis protocol, fastnet against redis-server, driven both by
redis-benchmark and by loadgen in resp mode.

redis-benchmark also runs the data-type tests (its -t names: LPUSH, LPOP,
SADD, HSET, ZADD, LRANGE_100); loadgen speaks PING, SET and GET only. The
ratio targets stay on PING, SET and GET."""
from __future__ import annotations

import shutil
from typing import ClassVar

from ..harness import RunningServer, ServerSpec, ServerUnavailable, run_loadgen, run_redis_benchmark
from ..scenario import Cell, Load, LoadScenario, ratio_target, register
from .servers import fastnet

COMMANDS = ("ping", "set", "get")
#: redis-benchmark's data-type tests, in an order where LPOP finds the
#: elements LPUSH left (each server keeps its keyspace across cells).
TYPE_COMMANDS = ("lpush", "lpop", "sadd", "hset", "zadd", "lrange_100")


def redis_server() -> ServerSpec:
    """redis-server on a free port, persistence off."""
    def command(port: int) -> list[str]:
        exe = shutil.which("redis-server")
        if not exe:
            raise ServerUnavailable("redis-server is not installed")
        return [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--protected-mode", "no"]
    return ServerSpec("redis-server", command, ready="port")


@register
class Resp(LoadScenario):
    """PING, SET, GET and the data-type commands (value --size bytes) over
    50 connections, pipelined."""
    name = "resp"
    title = "resp (Redis protocol)"
    dims = ("tool", "cmd", "conns", "pipeline", "size")
    references: ClassVar[tuple[str, ...]] = ("redis-server",)

    def servers(self):
        return [redis_server(), fastnet("fastnet-c", "resp", "c"),
                fastnet("fastnet-python", "resp", "python")]

    def cells(self, quick: bool) -> list[Cell]:
        cells = self.product(tool=["redis-benchmark"], cmd=[*COMMANDS, *TYPE_COMMANDS], conns=[50],
                             pipeline=[1, 16], size=[3])
        return cells + self.product(tool=["loadgen"], cmd=list(COMMANDS), conns=[50],
                                    pipeline=[16] if quick else [1, 16], size=[3])

    def measure(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        args = {k: v for k, v in cell.items() if k != "tool"}
        if cell["tool"] == "redis-benchmark":
            return run_redis_benchmark(server, seconds=load.seconds, **args)
        return run_loadgen(server, proto="resp", seconds=load.seconds, warmup=load.warmup,
                           rate=load.rate, **args)

    def targets(self, result: dict) -> list[dict]:
        return [ratio_target(
            result, f"resp: C engine ≥1.0x redis-server, {cmd.upper()} P{p} (redis-benchmark)",
            "fastnet-c", "redis-server", at_least=1.0,
            where=lambda c, cmd=cmd, p=p: (c["tool"], c["cmd"], c["pipeline"])
            == ("redis-benchmark", cmd, p))
            for cmd in COMMANDS for p in (1, 16)]
