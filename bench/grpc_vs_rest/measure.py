"""The measurements of ``python -m bench grpc_vs_rest``, one function each.

Load: h2load (nghttp2's C load generator, one tool for every server: HTTP/1.1
with --h1, gRPC as HTTP/2 POSTs of a prebuilt length-prefixed message),
pinned to the client core, latency per request from its --log-file.
Bytes, streams and errors: each protocol's natural Python client
(client_grpc, client_rest) through the counting relay (wirecount).
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..harness import RUN_GRACE, LoadError, RunningServer, run_bounded
from . import wirecount
from .rest import dumps, messages

#: The calls, in report order; "CreateItem (invalid)" is refused by every server.
CALLS = ("GetItem", "ListItems", "CreateItem", "CreateItem (invalid)")
GRPC_SERVICE = "/inventory.v1.Inventory/"
_NEW_ITEM = dict(sku="NEW-0001", name="Walnut stool", description="Three legs, oiled.",
                 price_cents=4_500, quantity=12, tags=["walnut", "seating"])
_BAD_ITEM = dict(sku="x", name="", price_cents=-5)


@dataclass(frozen=True)
class Call:
    """One call as each side sends it."""
    name: str
    rpc: str                 # the gRPC method
    request: Any             # its request message (fastnet.proto)
    method: str              # REST
    path: str
    body: Optional[bytes]    # REST body (JSON) or None


def calls() -> dict[str, Call]:
    m = messages
    item, bad = m.Item(**_NEW_ITEM), m.Item(**_BAD_ITEM)
    return {c.name: c for c in (
        Call("GetItem", "GetItem", m.GetItemRequest(id=42), "GET", "/v1/items/42", None),
        Call("ListItems", "ListItems", m.ListItemsRequest(page_size=20), "GET",
             "/v1/items?pageSize=20", None),
        Call("CreateItem", "CreateItem", m.CreateItemRequest(item=item), "POST", "/v1/items",
             dumps(item)),
        Call("CreateItem (invalid)", "CreateItem", m.CreateItemRequest(item=bad), "POST",
             "/v1/items", dumps(bad)),
    )}


def grpc_frame(message: Any) -> bytes:
    """A gRPC message on the wire: uncompressed flag, big-endian length, bytes."""
    data = message.SerializeToString()
    return b"\0" + struct.pack(">I", len(data)) + data


# -- load (h2load) ---------------------------------------------------------

def h2load_exe() -> str:
    exe = shutil.which("h2load")
    if not exe:
        raise LoadError("h2load is not installed (apt-get install nghttp2-client)")
    return exe


def h2load_argv(port: int, call: Call, grpc: bool, h2: bool,
                workdir: Path) -> tuple[list[str], str]:
    """(h2load options, URL) for one call against one kind of server
    (HTTP/2 by prior knowledge unless ``h2`` is false: --h1)."""
    if grpc:
        body = workdir / f"{call.name}.grpc"
        body.write_bytes(grpc_frame(call.request))
        return (["-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers"],
                f"http://127.0.0.1:{port}{GRPC_SERVICE}{call.rpc}")
    opts = ([] if h2 else ["--h1"]) + ["-H", "accept: application/json"]
    if call.body is not None:
        body = workdir / f"{call.name}.json"
        body.write_bytes(call.body)
        opts += ["-d", str(body), "-H", "content-type: application/json"]
    return opts, f"http://127.0.0.1:{port}{call.path}"


def _read_log(path: Path) -> list[tuple[int, int, int]]:
    """h2load's --log-file rows: (start us since the epoch, status, us to the end)."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return rows


_DATA = re.compile(r"traffic: .*?, ([\d.]+\w*) \((\d+)\) data")


def _data_bytes(out: str) -> int:
    match = _DATA.search(out)
    return int(match.group(2)) if match else 0


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50, p95, p99 and mean of the latencies (us), nearest rank."""
    xs = sorted(latencies)
    pick = lambda q: xs[min(len(xs) - 1, max(0, int(round(q * len(xs))) - 1))]  # noqa: E731
    return {"p50_us": pick(0.50), "p95_us": pick(0.95), "p99_us": pick(0.99),
            "mean_us": statistics.fmean(xs)}


def _summary(latencies: list[float], statuses: list[int], seconds: float, cpu: float,
             data: int) -> dict[str, Any]:
    if not latencies:
        raise LoadError("h2load completed no request")
    n = len(latencies)
    out: dict[str, Any] = {"requests": n, "rate": n / seconds if seconds else 0.0,
                           "server_cpu_us": cpu / n * 1e6, "data_per_request": data / n,
                           "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))}}
    out.update(percentiles(latencies))
    return out


def closed_loop(server: RunningServer, call: Call, grpc: bool, h2: bool, *, conns: int,
                seconds: float, warmup: float) -> dict[str, Any]:
    """h2load -cN -m1 for ``seconds`` (a warm-up run first, not counted):
    N connections (HTTP/2 streams for gRPC: one per connection), each
    sending its next request when the last is answered."""
    try:
        return _closed_loop(server, call, grpc, h2, conns=conns, seconds=seconds, warmup=warmup)
    except LoadError as exc:
        if "no request" not in str(exc):
            raise
        # A window so short that a stall on a loaded machine covers all of
        # it: measure once more over four times the window (said in the result).
        r = _closed_loop(server, call, grpc, h2, conns=conns, seconds=4 * seconds, warmup=0)
        r["retried"] = f"no request completed in {seconds:g} s; measured over {4 * seconds:g} s"
        return r


def _closed_loop(server: RunningServer, call: Call, grpc: bool, h2: bool, *, conns: int,
                 seconds: float, warmup: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        opts, url = h2load_argv(server.port, call, grpc, h2, Path(tmp))
        base = [h2load_exe(), "-c", str(conns), "-m", "1", *opts]
        if warmup > 0:
            run_bounded(base + ["-D", f"{max(1, round(warmup * 1000))}ms", url],
                        warmup + RUN_GRACE)
        log = Path(tmp) / "log.tsv"
        cpu0 = server.cpu_seconds()
        started = time.monotonic()
        status, out, err, _ = run_bounded(
            base + ["-D", f"{max(1, round(seconds * 1000))}ms", f"--log-file={log}", url],
            seconds + RUN_GRACE)
        wall = time.monotonic() - started
        cpu = server.cpu_seconds() - cpu0
        if status != 0:
            raise LoadError(f"h2load exited {status}: {(err or out).strip()[-300:]}")
        rows = _read_log(log)
    return _summary([float(r[2]) for r in rows], [r[1] for r in rows], min(wall, seconds),
                    cpu, _data_bytes(out)) | {"mode": "closed", "conns": conns}


def open_loop(server: RunningServer, call: Call, grpc: bool, h2: bool, *, rate: float,
              seconds: float, conns: int) -> dict[str, Any]:
    """bench.grpc_vs_rest.openloop (pinned to the client core): ``rate``
    requests/s over ``conns`` connections for ``seconds``, latency from each
    request's intended send time."""
    if grpc:
        headers = [["content-type", "application/grpc"], ["te", "trailers"]]
        spec = {"method": "POST", "path": GRPC_SERVICE + call.rpc,
                "body_hex": grpc_frame(call.request).hex()}
    else:
        headers = [["accept", "application/json"]]
        if call.body is not None:
            headers.append(["content-type", "application/json"])
        spec = {"method": call.method, "path": call.path, "body_hex": (call.body or b"").hex()}
    spec.update(port=server.port, h2=h2, rate=rate, seconds=seconds, conns=conns,
                headers=headers)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(spec, f)
        f.flush()
        cpu0 = server.cpu_seconds()
        status, out, err, _ = run_bounded([sys.executable, "-m", "bench.grpc_vs_rest.openloop",
                                           f.name], seconds + RUN_GRACE)
        cpu = server.cpu_seconds() - cpu0
    if status != 0:
        raise LoadError(f"openloop exited {status}: {err.strip()[-300:]}")
    r = json.loads(out)
    if r["errors"]:
        raise LoadError(f"openloop: {r['errors'][0]}")
    result = _summary(r["latencies_us"], r["statuses"], seconds, cpu, r["data"])
    if grpc:
        result["grpc_statuses"] = {s: r["grpc_statuses"].count(s)
                                   for s in sorted(set(r["grpc_statuses"]))}
    result.update(mode="open", target_rate=rate, conns=conns, achieved_rate=len(
        r["latencies_us"]) / r["wall_s"])
    return result


# -- bytes on the wire ------------------------------------------------------

def call_with(client: Any, call: Call, grpc: bool) -> Any:
    """Make one call with a client_grpc / client_rest InventoryClient; a
    refused call returns its exception (grpc.RpcError, RestError) instead
    of raising it."""
    import grpc as grpcio

    from .client_rest import RestError

    try:
        if call.name == "GetItem":
            return client.get_item(call.request.id)
        if call.name == "ListItems":
            return client.list_items(20)
        fields = _NEW_ITEM if call.name == "CreateItem" else _BAD_ITEM
        if grpc:
            return client.create_item(**fields)
        # the JSON mapping's names and forms (priceCents as a string)
        return client.create_item(**json.loads(dumps(messages.Item(**fields))))
    except (grpcio.RpcError, RestError) as exc:
        return exc


def wire_bytes(port: int, call: Call, grpc: bool, h2: bool, *, n: int, gzip_on: bool,
               make_client: Callable[[int, bool], Any]) -> dict[str, Any]:
    """n + 1 sequential calls through the counting relay: the first (with
    connection setup) and the mean of the n after it, each direction split
    into headers, body, framing and control."""
    relay = wirecount.CountingRelay(port)
    client = make_client(relay.port, gzip_on)
    try:
        call_with(client, call, grpc)
        relay.mark()
        for _ in range(n):
            call_with(client, call, grpc)
        time.sleep(0.05)  # frames sent after the last answer (WINDOW_UPDATE) land in it
        relay.mark()
    finally:
        client.close()
        relay.close()
    return wirecount.per_call(relay, h2, n)


# -- payload sizes ----------------------------------------------------------

def payload_sizes() -> list[dict[str, Any]]:
    """Each message both ways: protobuf and JSON bytes, gzipped and not
    (gzip level 6, as grpcio and the REST servers use it)."""
    from .rest import new_store

    store = new_store()
    m = messages
    rows = [("GetItem response (Item)", store.get(42)),
            ("ListItems response (20 Items)", store.list(20, "")),
            ("ListItems response (100 Items)", store.list(100, "")),
            ("CreateItem request", m.CreateItemRequest(item=m.Item(**_NEW_ITEM))),
            ("WatchItems message (ItemEvent)", next(store.watch(1))),
            ("GetItem request", m.GetItemRequest(id=42))]
    out = []
    for label, msg in rows:
        pb = msg.SerializeToString()
        # REST sends CreateItem's item alone as the body
        js = dumps(msg.item if label == "CreateItem request" else msg)
        out.append({"message": label, "protobuf": len(pb), "json": len(js),
                    "protobuf_gzip": len(gzip.compress(pb, mtime=0)),
                    "json_gzip": len(gzip.compress(js, mtime=0))})
    return out


# -- the stream -------------------------------------------------------------

def stream(client: Any, count: int) -> dict[str, float]:
    """One WatchItems of ``count`` messages read to the end by a natural
    client (each message parsed): time to the first, messages/s overall."""
    started = time.perf_counter()
    it = iter(client.watch_items(count))
    next(it)
    first = time.perf_counter() - started
    got = 1 + sum(1 for _ in it)
    took = time.perf_counter() - started
    if got != count:
        raise LoadError(f"WatchItems sent {got} messages, not {count}")
    return {"ttfm_ms": first * 1000, "messages_per_s": count / took, "seconds": took}


# -- developer experience ----------------------------------------------------

def code_lines(path: Path) -> int:
    """Lines of code: not blank, not a comment, not part of a docstring."""
    import ast

    text = path.read_text()
    doc_lines: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant) and isinstance(
                    body[0].value.value, str):
                doc_lines.update(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
    return sum(1 for i, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and i not in doc_lines)


def generated_lines() -> dict[str, int]:
    """Lines of what grpc_tools.protoc writes for inventory.proto."""
    from .generated import protoc_out

    out = protoc_out()
    return {p.name: len(p.read_text().splitlines()) for p in sorted(out.glob("*.py"))}


# -- schema evolution -------------------------------------------------------

EVOLUTIONS = (
    ("add a field (string color = 10)", "  google.protobuf.Timestamp updated_at = 9;\n",
     "  google.protobuf.Timestamp updated_at = 9;\n  string color = 10;\n", "color", "red"),
    ("rename a field (name -> title, same number)", "  string name = 3; ",
     "  string title = 3; ", "title", "Oak hinge"),
    ("renumber a field (quantity 6 -> 11)", "  int32 quantity = 6; ",
     "  int32 quantity = 11; ", "quantity", 7),
    ("widen a type (quantity int32 -> int64)", "  int32 quantity = 6; ",
     "  int64 quantity = 6; ", "quantity", 7),
)


def schema_evolution() -> list[dict[str, str]]:
    """A v2 server's Item read by a v1 client, for each change: protobuf
    (fastnet.proto's parser, as upb behaves), strict JSON (the proto3 JSON
    mapping's default: unknown fields refused) and lenient JSON
    (ignore_unknown_fields). Each outcome is what happened, in words."""
    from fastnet.proto import load
    from fastnet.proto.json_format import from_json, to_json

    from .rest import PROTO

    source = PROTO.read_text()
    v1 = messages.Item
    out = []
    for label, old, new, field, value in EVOLUTIONS:
        assert old in source, old
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "inventory.proto").write_text(source.replace(old, new))
            v2 = load(Path(tmp) / "inventory.proto", include=[tmp]).inventory.v1.Item
        sent = v2(id=1, sku="SKU-1", **{field: value})
        row = {"change": label}
        for how, read in (("protobuf", lambda: v1.FromString(sent.SerializeToString())),
                          ("json_strict", lambda: from_json(v1, to_json(sent))),
                          ("json_lenient", lambda: from_json(v1, to_json(sent), True))):
            try:
                got = read()
            except ValueError as exc:
                row[how] = f"error: {str(exc)[:70]}"
                continue
            seen = getattr(got, field, None) if field in v1._names else None
            old_field = {"title": "name"}.get(field)
            if old_field:
                seen = getattr(got, old_field)
            if seen == value:
                row[how] = "reads it"
            elif field in v1._names or old_field:
                row[how] = f"silently reads {seen!r} (sent {value!r})"
            else:
                kept = " (kept as unknown)" if how == "protobuf" and got._unknown else ""
                row[how] = f"ignores it{kept}"
        out.append(row)
    return out


def env_note() -> str:
    """Load average when called (the machine is shared)."""
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
