"""What interceptors cost on a unary gRPC echo (20-byte message).

    python -m bench.interceptors [--calls 3000] [--rounds 7] [--grpcio-calls 1000]
                                 [--path quick|stream] [--instructions]

fastnet: the server's call path in process: by default the way of a
unary request that came whole in one read (``Server._serve_complete``:
header checks, method lookup, decoding, the handler, encoding, trailers,
handed back as one reply; no task, no stream), ``--path stream`` the
stream path (``ServerCall.run`` over an in-memory stream); no HTTP/2
framing, no socket. So the interceptors' cost is measured against the
least there is to measure it against: over a real connection the same
cost is a smaller share. Peers:
no hook, ChainHook with each built-in alone and with the three chained
(logging a JSON line through a LineWriter, as ``--log-calls-to FILE``,
to a stream that discards it; authentication of a bearer token; a rate
limit by identity that never refuses). CPU µs per call, and what each adds.

grpcio: its sync server (thread pool) and its blocking client over
127.0.0.1, sequential unary calls, with no interceptor and with three
grpc.ServerInterceptor equivalents (the same JSON line and writer, the same token
check, the same token bucket). CPU µs per call of this process (client
and server both), so the ratio is diluted by the client's share.

Every round runs each peer once, in turn (interleaved), median of
--rounds; the ratio is with interceptors / without, in the same run.

``--instructions``: fastnet's peers only, instructions per call counted
by valgrind's callgrind instead of CPU time: slow (a process per peer
under valgrind) but the same on a busy machine as on an idle one.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import statistics
import time
from typing import Any, Callable, Optional

import grpc

import fastnet.grpc
from fastnet.grpc import protocol as p
from fastnet.interceptors import (AuthInterceptor, Chain, LineWriter, LoggingInterceptor,
                                  RateLimitInterceptor)
from fastnet.interceptors.builtins import BucketTable
from fastnet.interceptors.grpc import ChainHook



def cpu_timed(run: Callable[[], object]) -> float:
    """CPU ns this process spent in run() (every thread: grpcio's client,
    server pool and core threads; the in-process fastnet path). CPU time,
    not wall time: on a shared machine the wall clock also counts other
    work, CPU time only ours. The cyclic GC stays on, as in a server: a
    server call and its context hold each other, so calls are freed by it
    (off, their garbage piles up and allocation slows)."""
    import gc
    gc.collect()
    start = time.process_time_ns()
    run()
    return time.process_time_ns() - start


METHOD = "/bench.Echo/Unary"
TOKEN = "bench-token"
PAYLOAD = b"x" * 20


def echo(request: bytes, context: Any) -> bytes:
    return request


def _handlers() -> Any:
    return grpc.method_handlers_generic_handler(
        "bench.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(echo)})


class _Never:
    """An event that never fires (no reset arrives in memory)."""

    async def wait(self) -> None:
        await asyncio.Event().wait()


class MemoryStream:
    """The ServerStream interface of fastnet.h2 over memory: one request
    message in, the response dropped."""

    peer = ("127.0.0.1", 50000)
    method = "POST"
    path = METHOD
    cancelled = False

    def __init__(self, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.headers = headers
        self._chunks: list[Optional[bytes]] = [None, body]
        self.ended = False

    def header(self, name: bytes) -> Optional[bytes]:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def read(self) -> Optional[bytes]:
        return self._chunks.pop()

    async def wait_cancelled(self) -> None:
        await _Never().wait()

    def send_headers(self, headers: Any, end_stream: bool = False) -> None:
        self.ended = self.ended or end_stream

    async def send_data(self, data: bytes, end_stream: bool = False) -> None:
        self.ended = self.ended or end_stream

    def send_trailers(self, headers: Any) -> None:
        self.ended = True

    def reset(self, code: int = 8) -> None:
        self.ended = True


def builtins_chain(sink: Callable[[str], None]) -> Chain:
    """The three built-ins as the benchmark runs them."""
    return Chain([LoggingInterceptor("json", sink=sink),
                  AuthInterceptor({TOKEN: "bench"}),
                  RateLimitInterceptor(1e12, key="identity")])


def fastnet_server(hooks: list[Any]) -> fastnet.grpc.Server:
    server = fastnet.grpc.Server(hooks=hooks, engine="python")
    # registered, as add_service registers (resolved once, not per call)
    server.add_registered_method_handlers(
        "bench.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(echo)})
    return server


def fastnet_calls(server: fastnet.grpc.Server, calls: int, loop: asyncio.AbstractEventLoop,
                  path: str = "quick") -> Callable[[], object]:
    """calls unary calls on server's ``path``: "quick", the way of a request
    that came whole in one read (``Server._serve_complete``: no task, no
    stream), or "stream" (``ServerCall.run`` over a MemoryStream)."""
    headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", METHOD.encode()),
               (b":authority", b"127.0.0.1"), (b"content-type", b"application/grpc"),
               (b"te", b"trailers"), (b"authorization", b"Bearer " + TOKEN.encode())]
    body = p.encode_message(PAYLOAD)
    peer = MemoryStream.peer

    def quick() -> None:
        serve = server._serve_complete
        for n in range(calls):
            if serve(2 * n + 1, headers, body, peer) is None:
                raise RuntimeError("the call took the stream path")

    async def stream() -> None:
        for _ in range(calls):
            await fastnet.grpc.ServerCall(server, MemoryStream(headers, body)).run()  # type: ignore[arg-type]
    return quick if path == "quick" else lambda: loop.run_until_complete(stream())


# -- grpcio with equivalent interceptors ----------------------------------------

class _Abort:
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details

    def handler(self) -> Any:
        def refuse(request: Any, context: Any) -> Any:
            context.abort(self.code, self.details)
        return grpc.unary_unary_rpc_method_handler(refuse)


class GrpcioLogging(grpc.ServerInterceptor):
    """One JSON line per call with status, duration, sizes (unary only)."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink = sink

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        behaviour, sink, method = handler.unary_unary, self.sink, details.method

        def logged(request: Any, context: Any) -> Any:
            start = time.monotonic()
            status = "OK"
            response = b""
            try:
                response = behaviour(request, context)
                return response
            except Exception:
                status = "UNKNOWN"
                raise
            finally:
                sink(json.dumps({"protocol": "grpc", "method": method, "peer": context.peer(),
                                 "status": status,
                                 "duration_ms": round((time.monotonic() - start) * 1000, 3),
                                 "messages_in": 1, "bytes_in": len(request),
                                 "messages_out": 1, "bytes_out": len(response)},
                                separators=(",", ":")))
        return grpc.unary_unary_rpc_method_handler(
            logged, handler.request_deserializer, handler.response_serializer)


class GrpcioAuth(grpc.ServerInterceptor):
    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        for key, value in details.invocation_metadata:
            if key == "authorization" and value.startswith("Bearer "):
                if value[7:] in self.tokens:
                    return continuation(details)
                break
        return _Abort(grpc.StatusCode.UNAUTHENTICATED, "invalid credentials").handler()


class GrpcioRateLimit(grpc.ServerInterceptor):
    def __init__(self, rate: float) -> None:
        self.table = BucketTable(rate)

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        key = next((v for k, v in details.invocation_metadata if k == "authorization"), "")
        if self.table.take(key, time.monotonic()):
            return _Abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit").handler()
        return continuation(details)


def grpcio_server(interceptors: list[Any]) -> tuple[grpc.Server, int]:
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(4), interceptors=interceptors)
    server.add_generic_rpc_handlers([_handlers()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def grpcio_calls(port: int, calls: int) -> tuple[Callable[[], object], grpc.Channel]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    rpc = channel.unary_unary(METHOD)
    metadata = [("authorization", "Bearer " + TOKEN)]
    rpc(PAYLOAD, metadata=metadata, timeout=10)  # connected

    def run() -> None:
        for _ in range(calls):
            rpc(PAYLOAD, metadata=metadata, timeout=10)
    return run, channel


class _Discard:
    """A text stream that keeps only how much was written to it."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)

    def flush(self) -> None:
        return None


def fastnet_peers(sink: Callable[[str], None]) -> dict[str, Chain]:
    """Each built-in alone, then the three chained (as builtins_chain)."""
    return {"fastnet, logging": Chain([LoggingInterceptor("json", sink=sink)]),
            "fastnet, authentication": Chain([AuthInterceptor({TOKEN: "bench"})]),
            "fastnet, rate limiting": Chain([RateLimitInterceptor(1e12, key="identity")]),
            "fastnet, three built-ins": builtins_chain(sink)}


def measure(calls: int, rounds: int, grpcio_n: int, path: str = "quick") -> dict[str, Any]:
    """{peer: median µs per call} and the ratios, interleaved rounds
    (grpcio_n 0: fastnet's peers only)."""
    stream = _Discard()
    sink = LineWriter(stream)  # as --log-calls-to FILE writes them
    loop = asyncio.new_event_loop()
    peers: dict[str, tuple[Callable[[], object], int]] = {
        "fastnet, no interceptor": (fastnet_calls(fastnet_server([]), calls, loop, path), calls)}
    for name, chain in fastnet_peers(sink).items():
        peers[name] = (fastnet_calls(fastnet_server([ChainHook(chain)]), calls, loop, path),
                       calls)
    servers, channels = [], []
    for name, interceptors in (("grpcio, no interceptor", []),
                               ("grpcio, three interceptors",
                                [GrpcioLogging(sink), GrpcioAuth({TOKEN: "bench"}),
                                 GrpcioRateLimit(1e12)])):
        if not grpcio_n:
            break
        server, port = grpcio_server(interceptors)
        run, channel = grpcio_calls(port, grpcio_n)
        servers.append(server)
        channels.append(channel)
        peers[name] = (run, grpcio_n)
    try:
        for run, _ in peers.values():  # warm-up
            run()
        times: dict[str, list[float]] = {name: [] for name in peers}
        for _ in range(rounds):
            for name, (run, n) in peers.items():
                times[name].append(cpu_timed(run) / n / 1000)
    finally:
        for channel in channels:
            channel.close()
        for server in servers:
            server.stop(None)
        loop.close()
    sink.flush()
    assert stream.chars, "the logging interceptors wrote nothing"
    us = {name: statistics.median(values) for name, values in times.items()}
    spread = {name: (min(values), max(values)) for name, values in times.items()}
    base = us["fastnet, no interceptor"]
    result: dict[str, Any] = {
        "us_per_call": us, "range": spread,
        "fastnet_added_us": {name: value - base for name, value in us.items()
                             if name.startswith("fastnet, ") and value is not base},
        "fastnet_ratio": us["fastnet, three built-ins"] / base}
    if grpcio_n:
        result["grpcio_ratio"] = us["grpcio, three interceptors"] / us["grpcio, no interceptor"]
    return result


def _fastnet_runs(calls: int, path: str) -> dict[str, Callable[[], object]]:
    """Every fastnet peer's run of ``calls`` calls (servers built alike)."""
    sink = LineWriter(_Discard())
    loop = asyncio.new_event_loop()
    runs = {"fastnet, no interceptor": fastnet_calls(fastnet_server([]), calls, loop, path)}
    for name, chain in fastnet_peers(sink).items():
        runs[name] = fastnet_calls(fastnet_server([ChainHook(chain)]), calls, loop, path)
    return runs


def run_one(peer: str, calls: int, path: str) -> None:
    """What --instructions runs under callgrind: every peer built and warmed
    alike, then ``calls`` calls of ``peer`` (the cyclic GC on, as cpu_timed)."""
    import gc
    for run in _fastnet_runs(WARMUP_CALLS, path).values():
        run()
    runs = _fastnet_runs(calls, path)
    gc.collect()
    runs[peer]()


#: Calls each peer makes before --instructions counts.
WARMUP_CALLS = 300


def instructions(calls: int, path: str) -> dict[str, Any]:
    """Instructions per call of each fastnet peer, counted by valgrind's
    callgrind (deterministic: a busy machine changes nothing): a process
    making ``calls`` calls of one peer, less one making none, divided by
    ``calls``. About a minute a peer."""
    import re
    import shutil
    import subprocess
    import sys
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")

    def counted(peer: str, n: int) -> int:
        out = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             "-m", "bench.interceptors", "--one", peer, "--calls", str(n), "--path", path],
            capture_output=True, text=True, timeout=900,
            env={**os.environ, "PYTHONHASHSEED": "0"})
        found = re.search(r"Collected : (\d+)", out.stderr)
        if out.returncode != 0 or found is None:
            raise SystemExit(f"callgrind of {peer!r} failed: {out.stderr[-500:]}")
        return int(found.group(1))
    zero = counted("fastnet, no interceptor", 0)
    per_call = {peer: (counted(peer, calls) - zero) / calls
                for peer in _fastnet_runs(0, path)}
    base = per_call["fastnet, no interceptor"]
    return {"instructions_per_call": per_call,
            "added": {peer: n - base for peer, n in per_call.items() if n is not base},
            "ratio": per_call["fastnet, three built-ins"] / base}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.interceptors", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="fastnet calls per round")
    parser.add_argument("--grpcio-calls", type=int, default=1000,
                        help="grpcio calls per round (0: fastnet's peers only)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--path", choices=("quick", "stream"), default="quick",
                        help="fastnet's call path: a request whole in one read (the usual "
                             "unary call), or the stream path (default: %(default)s)")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per call of fastnet's peers with valgrind "
                             "(deterministic; --calls of each, about a minute a peer)")
    parser.add_argument("--one", metavar="PEER", help=argparse.SUPPRESS)  # --instructions' child
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.one is not None:
        run_one(args.one, args.calls, args.path)
        return 0
    if args.instructions:
        counts = instructions(args.calls, args.path)
        print(f"unary echo of {len(PAYLOAD)} bytes ({args.path} path), instructions per call "
              f"(callgrind, {args.calls} calls)")
        for name, n in counts["instructions_per_call"].items():
            added = counts["added"].get(name)
            print(f"{name:32} {n:9.0f}" + (f"  +{added:7.0f}" if added is not None else ""))
        print(f"fastnet: three built-ins cost {100 * (counts['ratio'] - 1):.1f}% of the call "
              "path's instructions in process")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(counts, f, indent=2)
        return 0
    result = measure(args.calls, args.rounds, args.grpcio_calls, args.path)
    print(f"unary echo of {len(PAYLOAD)} bytes ({args.path} path), median of {args.rounds} "
          "interleaved rounds "
          "(a shared machine: read the ratios, not the absolute figures)")
    print(f"{'peer':32} {'CPU us/call':>11} {'range':>17}")
    for name, us in result["us_per_call"].items():
        low, high = result["range"][name]
        print(f"{name:32} {us:11.2f} {low:8.2f}-{high:<8.2f}")
    for name, added in result["fastnet_added_us"].items():
        print(f"{name:32} adds {added:6.2f} us a call")
    print(f"fastnet: three built-ins cost {100 * (result['fastnet_ratio'] - 1):.1f}% of the "
          "call path in process (target: at most 20%)")
    if "grpcio_ratio" in result:
        print(f"grpcio: three equivalent interceptors cost "
              f"{100 * (result['grpcio_ratio'] - 1):.1f}% end to end")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
