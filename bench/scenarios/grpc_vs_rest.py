"""grpc_vs_rest: one inventory service (bench/grpc_vs_rest/inventory.proto)
as REST/JSON and as gRPC, on fastnet and on the peers a team would pick
(FastAPI on uvicorn, grpcio's sync server), measured in one run.

    python -m bench grpc_vs_rest [--quick] [--reps N] [--seconds S] [--rate R]
                                 [--only IMPL,...] [--out DIR]

Per call (GetItem, ListItems, CreateItem and a refused CreateItem): latency
p50/p95/p99 from one connection in sequence, over a fixed number of
connections, and at a fixed open-loop rate (from each request's intended
send time); requests/s and the server's CPU per call; bytes on the wire per
call each way, headers and body apart, with and without gzip; payload
sizes; the server stream (messages/s, time to the first message); a
developer-experience table and a schema-evolution experiment. Writes
DIR/grpc_vs_rest.md (its own report: the command's whole output), .json
and three PNGs. Implementations that are not built yet are rows saying
"not yet measured", never numbers.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

from fastnet import native
from fastnet.server import units

from .. import harness
from ..grpc_vs_rest import measure
from ..grpc_vs_rest.measure import CALLS
from ..harness import LoadError, RunningServer, ServerSpec, ServerUnavailable, log
from ..scenario import Options, Scenario, register, spread
from .servers import fastnet

PKG = harness.ROOT / "bench" / "grpc_vs_rest"
MODES = ("sequential", "concurrent", "open")
#: (full, quick) settings; --reps, --seconds and --rate override theirs.
SETTINGS = {
    "reps": (3, 1), "seconds": (2.0, 0.3), "warmup": (0.5, 0.1), "conns": (16, 4),
    "rate": (500.0, 100.0), "open_conns": (8, 4), "stream_count": (20_000, 200),
    "stream_reps": (3, 1), "byte_calls": (20, 3),
}
REFERENCES = ("grpcio", "fastapi")


@dataclass
class Impl:
    """One implementation of the service."""
    name: str
    side: str                       # "REST" or "gRPC"
    stack: str
    h2: bool
    spec: Callable[[], ServerSpec]  # ServerUnavailable: not built (a "not yet measured" row)
    service: tuple[str, ...]        # its own files under bench/grpc_vs_rest (lines of code)
    gzip_spec: Optional[Callable[[], ServerSpec]] = None  # a server that gzips responses
    pending: bool = False           # a missing spec means "not built yet", not "failed"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def grpc(self) -> bool:
        return self.side == "gRPC"


def _uvicorn() -> ServerSpec:
    return ServerSpec("fastapi", lambda port: [
        sys.executable, "-m", "uvicorn", "bench.grpc_vs_rest.rest_fastapi:app", "--host",
        "127.0.0.1", "--port", str(port), "--http", "httptools", "--loop", "uvloop",
        "--log-level", "warning", "--no-access-log"], ready="port")


def _grpc_module(name: str, module: str, *extra: str) -> Callable[[], ServerSpec]:
    """A gRPC server module of bench/grpc_vs_rest (``python -m MODULE PORT``)."""
    return lambda: ServerSpec(name + ("-gzip" if extra else ""), lambda port: [
        sys.executable, "-m", module, str(port), *extra])


def _grpcio(*extra: str) -> Callable[[], ServerSpec]:
    return _grpc_module("grpcio", "bench.grpc_vs_rest.grpc_grpcio", *extra)


def _have_fastnet_grpc() -> bool:
    """fastnet's gRPC server is on this branch (issue 16)."""
    try:
        from fastnet import grpc as fastnet_grpc  # noqa: F401
    except ImportError:
        return False
    return hasattr(fastnet_grpc, "Server") and "h2" in units()


def _fastnet_rest(protocol: str = "http") -> ServerSpec:
    """The REST App on the C engine (the Python one where the C extension
    is not in use: FASTNET_PURE=1 reaches the server too), over HTTP/1.1
    or (``protocol="h2"``) HTTP/2 by prior knowledge."""
    return fastnet("fastnet-rest" if protocol == "http" else "fastnet-rest-h2", protocol,
                   "c" if native.backend == "c" else "python",
                   "--handler", "bench.grpc_vs_rest.rest_fastnet:app")


def _pending(unit: str, what: str) -> Callable[[], ServerSpec]:
    def spec() -> ServerSpec:
        if unit not in units():
            raise ServerUnavailable(f"not yet measured: {what} is not built on this branch")
        raise ServerUnavailable(f"not yet measured: {what} exists but is not plugged in here")
    return spec


def implementations() -> list[Impl]:
    """Every implementation, in report order."""
    return [
        Impl("fastnet-rest", "REST", "fastnet.http App, HTTP/1.1, C engine", False,
             _fastnet_rest, ("rest_fastnet.py", "rest.py")),
        Impl("fastapi", "REST", "FastAPI 'async def' routes on uvicorn (httptools, uvloop), "
             "HTTP/1.1", False, _uvicorn, ("rest_fastapi.py", "rest.py")),
        Impl("grpcio", "gRPC", "grpcio sync server, thread pool of 10, HTTP/2", True,
             _grpcio(), ("grpc_grpcio.py",), gzip_spec=_grpcio("--gzip")),
        Impl("fastnet-grpc", "gRPC", "fastnet.grpc.Server serving grpcio's generated "
             "servicer unchanged, HTTP/2, C engine", True,
             _grpc_module("fastnet-grpc", "bench.grpc_vs_rest.grpc_fastnet") if _have_fastnet_grpc()
             else _pending("grpc", "fastnet's gRPC (issue 16)"), ("grpc_fastnet.py",),
             gzip_spec=_grpc_module("fastnet-grpc", "bench.grpc_vs_rest.grpc_fastnet", "--gzip"),
             pending=not _have_fastnet_grpc()),
        Impl("fastnet-rest-h2", "REST", "the same fastnet.http App over fastnet's HTTP/2 "
             "(prior knowledge), C engine", True,
             (lambda: _fastnet_rest("h2")) if "h2" in units()
             else _pending("h2", "fastnet's HTTP/2 server (issue 15)"),
             ("rest_fastnet.py", "rest.py"), pending="h2" not in units()),
    ]


def _client(impl: Impl) -> Callable[[int, bool], Any]:
    if impl.grpc:
        from ..grpc_vs_rest.client_grpc import InventoryClient as GrpcClient
        return GrpcClient
    if impl.h2:
        from ..grpc_vs_rest.client_rest_h2 import InventoryClient as RestH2Client
        return RestH2Client
    from ..grpc_vs_rest.client_rest import InventoryClient as RestClient
    return RestClient


def _describe_error(exc: BaseException) -> str:
    """How a refused call looks to the caller, in one line."""
    if hasattr(exc, "code") and callable(exc.code):  # grpc.RpcError
        details = exc.details()  # type: ignore[attr-defined]
        return f"grpc.RpcError: code() {exc.code()}, details() {details!r}"
    status, error = getattr(exc, "status", "?"), getattr(exc, "error", {})
    details = error.get("details", [])
    violations = sum(len(d.get("fieldViolations", [])) for d in details)
    return (f"HTTP {status}, JSON error: status {error.get('status')!r}, message "
            f"{error.get('message')!r}"
            + (f", a google.rpc.BadRequest with {violations} field violations" if details else ""))


def _check(impl: Impl, port: int) -> dict[str, str]:
    """Each call once with the natural client; what the refusal looks like.
    A wrong answer is a failed implementation (never measured)."""
    client = _client(impl)(port, False)
    try:
        item = measure.call_with(client, measure.calls()["GetItem"], impl.grpc)
        name = item.name if impl.grpc else item.get("name")
        if name != "Cobalt lamp 42":
            raise ServerUnavailable(f"GetItem(42) answered {item!r}")
        page = measure.call_with(client, measure.calls()["ListItems"], impl.grpc)
        if len(page.items if impl.grpc else page["items"]) != 20:
            raise ServerUnavailable("ListItems did not answer 20 items")
        created = measure.call_with(client, measure.calls()["CreateItem"], impl.grpc)
        if isinstance(created, Exception):
            raise ServerUnavailable(f"CreateItem refused a valid item: {created}")
        refused = measure.call_with(client, measure.calls()["CreateItem (invalid)"], impl.grpc)
        if not isinstance(refused, Exception):
            raise ServerUnavailable("CreateItem accepted an invalid item")
        events = list(client.watch_items(3))
        if len(events) != 3:
            raise ServerUnavailable(f"WatchItems(3) sent {len(events)} messages")
        absent = measure.Call("GetItem", "GetItem", measure.messages.GetItemRequest(id=999_999),
                              "GET", "/v1/items/999999", None)
        missing = measure.call_with(client, absent, impl.grpc)
        if not isinstance(missing, Exception):
            raise ServerUnavailable("GetItem(999999) did not fail")
        return {"invalid": _describe_error(refused), "not_found": _describe_error(missing)}
    finally:
        client.close()


def _expected_ok(impl: Impl, call: str, r: dict) -> Optional[str]:
    """Why a load run's answers are wrong (None when they are right): a
    refused CreateItem is 400 in REST, a trailers-only 200 in gRPC; every
    other call is 200 and, in gRPC, carries a message."""
    want = 400 if call == "CreateItem (invalid)" and not impl.grpc else 200
    wrong = sum(n for s, n in r["statuses"].items() if int(s) != want)
    if wrong:
        return f"{wrong} answers were not {want}: {r['statuses']}"
    if "grpc_statuses" in r:
        want_grpc = "3" if call == "CreateItem (invalid)" else "0"  # INVALID_ARGUMENT, OK
        if set(r["grpc_statuses"]) != {want_grpc}:
            return f"grpc-status was not {want_grpc}: {r['grpc_statuses']}"
    if impl.grpc and call != "CreateItem (invalid)" and r["data_per_request"] < 6:
        return f"gRPC answers carried {r['data_per_request']:.1f} bytes of data: no message"
    return None


@register
class GrpcVsRest(Scenario):
    """The service both ways, every implementation, one run."""
    name = "grpc_vs_rest"
    title = "grpc_vs_rest (one service as REST/JSON and as gRPC)"
    own_report: ClassVar[bool] = True

    def server_names(self) -> list[str]:
        return [i.name for i in implementations()]

    def run(self, opts: Options) -> dict:
        q = int(opts.quick)
        cfg: dict[str, Any] = {k: v[q] for k, v in SETTINGS.items()}
        cfg["reps"] = opts.reps or cfg["reps"]
        cfg["seconds"] = opts.seconds or cfg["seconds"]
        cfg["warmup"] = cfg["warmup"] if opts.warmup is None else opts.warmup
        cfg["rate"] = opts.rate or cfg["rate"]
        cfg["quick"] = opts.quick
        impls = [i for i in implementations() if not opts.only or i.name in opts.only]
        result: dict[str, Any] = {
            "scenario": self.name, "kind": "grpc_vs_rest", "title": self.title, "config": cfg,
            "impls": [{"name": i.name, "side": i.side, "stack": i.stack, "h2": i.h2}
                      for i in impls],
            "status": {}, "errors_seen": {}, "load": [], "bytes": [], "stream": {},
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": measure.env_note(),
        }
        running: dict[str, RunningServer] = {}
        by_name = {i.name: i for i in impls}
        logdir = opts.out / "logs" / self.name
        try:
            for impl in impls:
                try:
                    server = RunningServer(impl.spec(), logdir)
                except ServerUnavailable as exc:
                    result["status"][impl.name] = (str(exc) if impl.pending
                                                   else f"failed to start: {exc}")
                    log(f"[{self.name}] {impl.name}: {exc}")
                    continue
                running[impl.name] = server
                try:
                    result["errors_seen"][impl.name] = _check(impl, server.port)
                    result["status"][impl.name] = "measured"
                    log(f"[{self.name}] {impl.name} listening on {server.port}, answers checked")
                except (ServerUnavailable, LoadError, OSError) as exc:
                    result["status"][impl.name] = f"failed its check: {exc}"
                    running.pop(impl.name).stop()
            self._load(result, cfg, running, by_name)
            self._bytes(result, cfg, running, by_name, logdir)
            self._streams(result, cfg, running, by_name)
        finally:
            for server in running.values():
                server.stop()
        result["payload"] = measure.payload_sizes()
        result["evolution"] = measure.schema_evolution()
        result["dx"] = {"lines": {i.name: {f: measure.code_lines(PKG / f) for f in i.service}
                                  for i in impls},
                        "clients": {"gRPC": measure.code_lines(PKG / "client_grpc.py"),
                                    "REST": measure.code_lines(PKG / "client_rest.py")},
                        "store": measure.code_lines(PKG / "store.py"),
                        "generated": measure.generated_lines()}
        return result

    # -- the phases ----------------------------------------------------------

    def _load(self, result: dict, cfg: dict, running: dict[str, RunningServer],
              by_name: dict[str, Impl]) -> None:
        all_calls = measure.calls()
        for call_name in CALLS:
            call = all_calls[call_name]
            for mode in MODES:
                runs: dict[str, list[dict]] = {name: [] for name in running}
                for rep in range(cfg["reps"]):
                    for name, server in running.items():
                        impl = by_name[name]
                        try:
                            if mode == "open":
                                r = measure.open_loop(server, call, impl.grpc, impl.h2,
                                                      rate=cfg["rate"], seconds=cfg["seconds"],
                                                      conns=cfg["open_conns"])
                            else:
                                r = measure.closed_loop(
                                    server, call, impl.grpc, impl.h2, seconds=cfg["seconds"],
                                    conns=1 if mode == "sequential" else cfg["conns"],
                                    warmup=cfg["warmup"])
                            wrong = _expected_ok(impl, call_name, r)
                            if wrong:
                                r = {"error": wrong}
                        except LoadError as exc:
                            r = {"error": str(exc)}
                        runs[name].append(r)
                        log(f"[{self.name}] {call_name} {mode} rep {rep + 1}/{cfg['reps']} "
                            f"{name}: " + (r["error"] if "error" in r else
                                           f"{r['rate']:,.0f}/s p50 {r['p50_us']:,.0f} us "
                                           f"p99 {r['p99_us']:,.0f} us"))
                result["load"].append({"call": call_name, "mode": mode, "runs": runs,
                                       "summary": _summarise(runs)})

    def _bytes(self, result: dict, cfg: dict, running: dict[str, RunningServer],
               by_name: dict[str, Impl], logdir: Path) -> None:
        all_calls = measure.calls()
        for name, server in running.items():
            impl = by_name[name]
            gz_server = None
            try:
                for gzip_on in (False, True):
                    port = server.port
                    if gzip_on and impl.gzip_spec:
                        gz_server = RunningServer(impl.gzip_spec(), logdir)
                        port = gz_server.port
                    for call_name in CALLS:
                        counts = measure.wire_bytes(port, all_calls[call_name], impl.grpc,
                                                    impl.h2, n=cfg["byte_calls"],
                                                    gzip_on=gzip_on, make_client=_client(impl))
                        result["bytes"].append({"impl": name, "call": call_name,
                                                "gzip": gzip_on, **counts})
            except (ServerUnavailable, LoadError, OSError, ValueError) as exc:
                log(f"[{self.name}] bytes of {name}: {exc}")
                result["status"][name] += f" (bytes not counted: {exc})"
            finally:
                if gz_server:
                    gz_server.stop()

    def _streams(self, result: dict, cfg: dict, running: dict[str, RunningServer],
                 by_name: dict[str, Impl]) -> None:
        runs: dict[str, list[dict]] = {name: [] for name in running}
        for _ in range(cfg["stream_reps"]):
            for name, server in running.items():
                client = _client(by_name[name])(server.port, False)
                try:
                    runs[name].append(measure.stream(client, cfg["stream_count"]))
                except (LoadError, OSError) as exc:
                    runs[name].append({"error": str(exc)})
                finally:
                    client.close()
        for name, reps in runs.items():
            ok = [r for r in reps if "error" not in r]
            result["stream"][name] = ({"error": reps[0]["error"]} if not ok else
                                      {k: spread([r[k] for r in ok])
                                       for k in ("messages_per_s", "ttfm_ms")})

    # -- the report ----------------------------------------------------------

    def markdown(self, result: dict) -> str:
        from ..grpc_vs_rest import report
        return report.markdown(result)

    def plot(self, result: dict, outdir: Path) -> list[Path]:
        from ..grpc_vs_rest import report
        return report.plots(result, outdir)


def _summarise(runs: dict[str, list[dict]]) -> dict[str, Any]:
    """Per implementation: median [min-max] of each figure over repetitions,
    and same-repetition ratios to each reference."""
    out: dict[str, Any] = {}
    for name, reps in runs.items():
        ok = [r for r in reps if "error" not in r]
        if not ok:
            out[name] = {"error": reps[0]["error"] if reps else "not measured"}
            continue
        s: dict[str, Any] = {k: spread([r[k] for r in ok])
                             for k in ("rate", "p50_us", "p95_us", "p99_us", "mean_us",
                                       "server_cpu_us")}
        s["ratios"] = {}
        for ref in REFERENCES:
            pairs = [(r, q) for r, q in zip(reps, runs.get(ref, []))
                     if "error" not in r and "error" not in q]
            s["ratios"][ref] = {k: spread([r[k] / q[k] for r, q in pairs if q[k]])
                                for k in ("rate", "p50_us", "p99_us", "server_cpu_us")}
        out[name] = s
    return out

