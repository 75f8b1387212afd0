"""The gRPC peers of ``python -m bench grpc``: the same bench.Echo service
on grpcio (sync, thread pool) and grpc.aio, fastnet's ``setup(server)``,
and sequential clients (grpcio's and fastnet's).

    python -m bench.peers.grpc_peers sync PORT | aio PORT | sync-icept PORT
    python -m bench.peers.grpc_peers client grpcio|fastnet PORT SECONDS SIZE
"""
from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROTO = HERE / "grpc_bench.proto"


def google_messages() -> tuple[Any, Any]:
    """grpcio's generated modules for grpc_bench.proto (protoc, now)."""
    out = tempfile.mkdtemp(prefix="bench-grpc-")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE}", f"--python_out={out}",
                    f"--grpc_python_out={out}", PROTO.name], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("grpc_bench_pb2"), importlib.import_module("grpc_bench_pb2_grpc")


def setup(server: Any) -> None:
    """fastnet's server (``--protocol grpc --handler bench.peers.grpc_peers:setup``):
    plain handlers on the engine thread, fastnet.proto messages."""
    import fastnet.grpc
    ns = fastnet.grpc.load(PROTO, include=[HERE])
    Msg = ns.bench.Msg

    class Echo:
        def Echo(self, request: Any, context: Any) -> Any:
            return request

        def Stream(self, request: Any, context: Any) -> Any:
            m = Msg(data=bytes(request.size))
            for _ in range(request.n):
                yield m
    server.add_service(ns.bench.Echo, Echo())


#: Sent by every client of the benchmark (servers without authentication ignore it).
METADATA = [("authorization", "Bearer bench-token")]


def equivalent_interceptors() -> list[Any]:
    """grpcio's server with interceptors doing what fastnet's three built-ins
    do in ``fastnet-icept`` (bench.interceptors): a JSON line per call to a
    file (the same buffered LineWriter), the bearer token checked, a token
    bucket by token."""
    import atexit

    from bench.interceptors import GrpcioAuth, GrpcioLogging, GrpcioRateLimit
    from fastnet.interceptors import LineWriter
    sink = LineWriter(open(Path(tempfile.gettempdir()) / "grpcio-bench-calls.log", "a"))
    atexit.register(sink.flush)
    return [GrpcioLogging(sink), GrpcioAuth({"bench-token": "bench"}), GrpcioRateLimit(1e9)]


def serve_grpcio(port: int, aio: bool, intercepted: bool = False) -> None:
    import grpc
    pb2, pb2_grpc = google_messages()

    class Echo(pb2_grpc.EchoServicer):
        def Echo(self, request: Any, context: Any) -> Any:
            return request

        def Stream(self, request: Any, context: Any) -> Any:
            m = pb2.Msg(data=bytes(request.size))
            for _ in range(request.n):
                yield m

    class AioEcho(pb2_grpc.EchoServicer):
        async def Echo(self, request: Any, context: Any) -> Any:
            return request

        async def Stream(self, request: Any, context: Any) -> Any:
            m = pb2.Msg(data=bytes(request.size))
            for _ in range(request.n):
                yield m

    if not aio:
        server = grpc.server(futures.ThreadPoolExecutor(16),
                             interceptors=equivalent_interceptors() if intercepted else None)
        pb2_grpc.add_EchoServicer_to_server(Echo(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        print(f"listening {port}", flush=True)
        server.wait_for_termination()
        return

    async def main() -> None:
        server = grpc.aio.server()
        pb2_grpc.add_EchoServicer_to_server(AioEcho(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print(f"listening {port}", flush=True)
        await server.wait_for_termination()
    asyncio.run(main())


def client(kind: str, port: int, seconds: float, size: int) -> dict:
    """Sequential unary Echo calls for ``seconds``: rate, percentiles, CPU."""
    target = f"127.0.0.1:{port}"
    if kind == "grpcio":
        import grpc
        pb2, pb2_grpc = google_messages()
        channel: Any = grpc.insecure_channel(target)
        stub = pb2_grpc.EchoStub(channel)
        request = pb2.Msg(data=bytes(size))
    else:
        import fastnet.grpc
        ns = fastnet.grpc.load(PROTO, include=[HERE])
        channel = fastnet.grpc.Channel(target)
        stub = channel.stub(ns.bench.Echo)
        request = ns.bench.Msg(data=bytes(size))
    for _ in range(200):
        stub.Echo(request, timeout=10, metadata=METADATA)
    times = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    end = start + seconds
    now = start
    while now < end:
        stub.Echo(request, timeout=10, metadata=METADATA)
        t = time.perf_counter()
        times.append(t - now)
        now = t
    wall = now - start
    cpu = time.process_time() - cpu0
    channel.close()
    times.sort()

    def pct(q: float) -> float:
        return times[min(len(times) - 1, int(q * len(times)))] * 1e6
    return {"requests": len(times), "seconds": wall, "rate": len(times) / wall,
            "mean_us": sum(times) / len(times) * 1e6, "p50_us": pct(0.5), "p95_us": pct(0.95),
            "p99_us": pct(0.99), "p999_us": pct(0.999), "max_us": times[-1] * 1e6,
            "client_cpu": cpu / wall, "errors": 0}


if __name__ == "__main__":
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if sys.argv[1] in ("sync", "aio", "sync-icept"):
        serve_grpcio(int(sys.argv[2]), sys.argv[1] == "aio", sys.argv[1] == "sync-icept")
    else:
        print(json.dumps(client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
                                int(sys.argv[5]))))
