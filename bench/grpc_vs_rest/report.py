"""The grpc_vs_rest report: markdown tables, conclusions computed from the
measured numbers, and three plots (latency percentiles, bytes per call,
throughput). Every figure comes from the result dict of one run."""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Optional

from .measure import CALLS

MODE_TITLES = {
    "sequential": "sequential (one connection, one call at a time)",
    "concurrent": "fixed concurrency (N connections, each one call at a time)",
    "open": "open loop (fixed rate, latency from each request's intended send time)",
}
PAIRS = (("grpcio", "fastapi", "the peers: grpcio vs FastAPI"),
         ("fastnet-rest", "grpcio", "fastnet REST vs grpcio"),
         ("fastnet-rest", "fastapi", "fastnet REST vs FastAPI"),
         ("fastnet-grpc", "grpcio", "fastnet gRPC vs grpcio (the same servicer)"))


def _med(s: Optional[dict]) -> Optional[float]:
    return None if not s else s["median"]


def _fmt(s: Optional[dict], pattern: str = "{:,.0f}") -> str:
    return "-" if not s else pattern.format(s["median"])


def _ratio(s: Optional[dict]) -> str:
    return "-" if not s else f"{s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}]"


def measured(result: dict) -> list[str]:
    return [i["name"] for i in result["impls"] if result["status"].get(i["name"]) == "measured"
            or str(result["status"].get(i["name"], "")).startswith("measured")]


def _entry(result: dict, call: str, mode: str) -> dict:
    return next(e for e in result["load"] if e["call"] == call and e["mode"] == mode)


def _steady(result: dict, impl: str, call: str, gzip: bool) -> Optional[dict]:
    for b in result["bytes"]:
        if b["impl"] == impl and b["call"] == call and b["gzip"] == gzip:
            return b["steady"]
    return None


def _bytes_total(steady: dict) -> float:
    return sum(steady["up"].values()) + sum(steady["down"].values())


def markdown(result: dict) -> str:
    c = result["config"]
    lines = ["# gRPC vs REST, measured", "",
             f"`python -m bench grpc_vs_rest{' --quick' if c['quick'] else ''}`, started "
             f"{result['started']}, {result.get('elapsed_s', 0):.0f} s, {result['machine']} at "
             "the end of the run, on a 2-core machine shared with other engineers' builds and "
             "tests: absolute figures swing between repetitions; read the ratios taken within "
             "a repetition. Server on CPU 0, load generator on CPU 1.", "",
             "The same service (bench/grpc_vs_rest/inventory.proto: GetItem, ListItems, "
             "CreateItem with validation, WatchItems streaming) and the same data "
             "(1,000 seeded items, the same bytes of JSON from both REST servers) in every "
             "implementation.", "", "## Implementations", "",
             "| implementation | side | stack | status |", "|---|---|---|---|"]
    for i in result["impls"]:
        lines.append(f"| {i['name']} | {i['side']} | {i['stack']} | "
                     f"{result['status'].get(i['name'], 'not run')} |")
    names = measured(result)
    lines += ["", _load_tables(result, names), _bytes_tables(result, names),
              _payload_table(result), _stream_table(result, names), _dx_table(result),
              _evolution_table(result), "## Conclusions", "", *conclusions(result, names), "",
              "![latency](grpc_vs_rest-latency.png)", "", "![bytes](grpc_vs_rest-bytes.png)", "",
              "![throughput](grpc_vs_rest-throughput.png)", ""]
    return "\n".join(lines)


def _not_measured_rows(result: dict, width: int, prefix: str) -> list[str]:
    return [f"| {prefix}{i['name']} | " + " | ".join(["not yet measured"] + ["-"] * (width - 1))
            + " |" for i in result["impls"] if i["name"] not in measured(result)]


def _load_tables(result: dict, names: list[str]) -> str:
    c = result["config"]
    out = ["## Latency, throughput and server CPU per call", "",
           f"h2load (C, one tool for every server: `--h1` for HTTP/1.1, HTTP/2 POSTs of a "
           f"prebuilt length-prefixed message for gRPC), {c['reps']} repetition(s) of "
           f"{c['seconds']:g} s per cell, implementations interleaved; median [min-max] over "
           f"repetitions; ratios within a repetition. Fixed concurrency: {c['conns']} "
           f"connections. Open loop: {c['rate']:,.0f} requests/s due on a fixed schedule over "
           f"{c['open_conns']} connections, sent by bench/grpc_vs_rest/openloop.py (the same "
           "minimal Python socket client for HTTP/1.1 and HTTP/2, one request in flight per "
           "connection; its own cost, some tens of microseconds, is in every open-loop "
           "figure alike). Latency in microseconds; server CPU from psutil on the server "
           "process over the measured run (at the open loop's fixed rate it includes what "
           "the server spends idle, e.g. grpcio's polling threads; psutil's resolution is "
           "10 ms per run).", ""]
    for mode in ("sequential", "concurrent", "open"):
        out += [f"### {MODE_TITLES[mode]}", "",
                "| call | implementation | p50 | p95 | p99 | requests/s | server CPU us/call "
                "| req/s vs grpcio | p50 vs grpcio | p99 vs grpcio | req/s vs fastapi |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for call in CALLS:
            e = _entry(result, call, mode)
            for name in names:
                s = e["summary"].get(name, {"error": "not run"})
                if "error" in s:
                    out.append(f"| {call} | {name} | {s['error']} |" + " |" * 9)
                    continue
                r = s["ratios"]
                fixed = mode == "open"  # the rate is the schedule's: no ratio to take
                out.append(f"| {call} | {name} | {_fmt(s['p50_us'])} | {_fmt(s['p95_us'])} | "
                           f"{_fmt(s['p99_us'])} | {_fmt(s['rate'])} | "
                           f"{_fmt(s['server_cpu_us'], '{:.1f}')} | "
                           f"{'-' if fixed else _ratio(r['grpcio']['rate'])} | "
                           f"{_ratio(r['grpcio']['p50_us'])} | {_ratio(r['grpcio']['p99_us'])} | "
                           f"{'-' if fixed else _ratio(r['fastapi']['rate'])} |")
            out += [row for row in _not_measured_rows(result, 10, f"{call} | ")]
        retried = [f"{e['call']} {name} ({r['retried']})" for e in result["load"]
                   if e["mode"] == mode for name, reps in e["runs"].items() for r in reps
                   if "retried" in r]
        if retried:
            out += ["", "Measured again over a longer window: " + "; ".join(retried) + "."]
        out.append("")
    return "\n".join(out)


def _bytes_tables(result: dict, names: list[str]) -> str:
    c = result["config"]
    out = ["## Bytes on the wire per call", "",
           f"Counted at the socket (a relay between client and server), each protocol's usual "
           "client: grpcio's stub; the standard library's http.client over HTTP/1.1, "
           "python-hyper's h2 over HTTP/2 (both with Accept: application/json). "
           f"Steady state: the mean of {c['byte_calls']} calls on one "
           "connection after a first call (connection setup, HPACK tables filling); that "
           "first call is the last column. HTTP/1.1: headers are the head (start line and "
           "fields), framing the chunked encoding; HTTP/2: headers are HEADERS frames "
           "(trailers too), body DATA frames (the 5-byte gRPC prefix too), control "
           "SETTINGS, WINDOW_UPDATE, PING and the preface. With gzip: the client sends "
           "`grpc-encoding: gzip` (grpcio, server started with gzip) or `Accept-Encoding: "
           "gzip` (REST: the servers gzip their bodies).", "",
           "| call | implementation | gzip | request headers | request body | response headers "
           "| response body | control (both ways) | total | first call total |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for call in CALLS:
        for gz in (False, True):
            for name in names:
                b = next((x for x in result["bytes"] if x["impl"] == name and x["call"] == call
                          and x["gzip"] == gz), None)
                if b is None:
                    continue
                up, down = b["steady"]["up"], b["steady"]["down"]
                first = _bytes_total(b["first"])
                out.append(f"| {call} | {name} | {'yes' if gz else 'no'} | {up['headers']:,.0f} | "
                           f"{up['body']:,.0f} | {down['headers']:,.0f} | "
                           f"{down['body'] + down['framing']:,.0f} | "
                           f"{up['control'] + down['control']:,.0f} | "
                           f"{_bytes_total(b['steady']):,.0f} | {first:,.0f} |")
    out += _not_measured_rows(result, 9, "(every call) | ")
    return "\n".join(out + [""])


def _payload_table(result: dict) -> str:
    out = ["## Payload size: protobuf vs JSON", "",
           "The messages alone (no HTTP), serialized by fastnet.proto (protobuf; the same "
           "bytes as upb's deterministic output) and by the proto3 JSON mapping, compact; "
           "gzip level 6.", "",
           "| message | protobuf | JSON | JSON / protobuf | protobuf gzip | JSON gzip | "
           "JSON gzip / protobuf gzip |", "|---|---:|---:|---:|---:|---:|---:|"]
    for p in result["payload"]:
        out.append(f"| {p['message']} | {p['protobuf']:,} | {p['json']:,} | "
                   f"{p['json'] / p['protobuf']:.2f}x | {p['protobuf_gzip']:,} | "
                   f"{p['json_gzip']:,} | {p['json_gzip'] / p['protobuf_gzip']:.2f}x |")
    return "\n".join(out + [""])


def _stream_table(result: dict, names: list[str]) -> str:
    c = result["config"]
    out = ["## The stream (WatchItems)", "",
           f"One call of {c['stream_count']:,} ItemEvents, read to the end by the usual "
           "client, each message parsed (grpcio's stub; http.client reading JSON lines, "
           f"json.loads each), {c['stream_reps']} repetition(s), median [min-max]. The client "
           "is Python in both cases and may be the limit: this is what a Python caller gets.",
           "", "| implementation | messages/s | time to first message (ms) |",
           "|---|---:|---:|"]
    for name in names:
        s = result["stream"].get(name)
        if not s or "error" in s:
            out.append(f"| {name} | {(s or {}).get('error', 'not run')} | - |")
            continue
        out.append(f"| {name} | {_fmt(s['messages_per_s'])} | {_fmt(s['ttfm_ms'], '{:.2f}')} |")
    out += _not_measured_rows(result, 2, "")
    return "\n".join(out + [""])


def _dx_table(result: dict) -> str:
    dx = result["dx"]
    loc = {name: sum(files.values()) for name, files in dx["lines"].items()}
    gen = dx["generated"]
    gen_text = ", ".join(f"{n} ({v:,} lines)" for n, v in gen.items())
    errs = result["errors_seen"]

    def err(name: str, key: str) -> str:
        return errs.get(name, {}).get(key, "-").replace("|", "\\|")

    rest_err = next((n for n in ("fastnet-rest", "fastapi") if n in errs), None)
    rows = [
        ("Lines of code: service (shared store.py: "
         f"{dx['store']} lines, not counted)",
         f"fastnet-rest {loc.get('fastnet-rest', '-')}, fastapi {loc.get('fastapi', '-')} "
         "(rest.py, the JSON mapping, error form and gzip they share, counted in both)",
         f"grpcio {loc.get('grpcio', '-')}; fastnet-grpc runs grpcio's servicer and "
         f"generated registration unchanged: {loc.get('fastnet-grpc', '-')} lines of "
         "server setup (grpc_fastnet.py), the drop-in"),
        ("Lines of code: client (bench/grpc_vs_rest/client_*.py)",
         f"{dx['clients']['REST']} (http.client + json)", f"{dx['clients']['gRPC']} (the stub)"),
        ("What is generated",
         "nothing on disk: fastnet.proto builds message classes from the .proto at import; "
         "the URL mapping and the error form are hand-written (FastAPI's OpenAPI page knows "
         "nothing of these bodies: no pydantic models)",
         f"grpc_tools.protoc, at run time: {gen_text}"),
        ("A refused CreateItem, as the caller sees it",
         err(rest_err, "invalid") if rest_err else "-", err("grpcio", "invalid")),
        ("A missing item", err(rest_err, "not_found") if rest_err else "-",
         err("grpcio", "not_found")),
        ("Field-level error details",
         "in the body (google.rpc.BadRequest as JSON), read by any client",
         "only grpc-message text here; structured details need google.rpc.Status in "
         "grpc-status-details-bin (grpcio-status) on both sides"),
        ("Tooling", "curl, a browser, any HTTP client: `curl localhost:P/v1/items/42`",
         "a generated stub or grpcurl with reflection or the .proto; curl cannot frame "
         "the 5-byte prefix and read trailers by hand in practice"),
        ("Browser reachability", "yes (fetch, EventSource/streams)",
         "no: browsers do not expose HTTP/2 trailers; gRPC-Web and a proxy (Envoy) are needed"),
        ("Schema evolution", "JSON names are the contract: renaming breaks, renumbering "
         "does not; strict parsers refuse new fields (table below)",
         "field numbers are the contract: new fields are ignored, renaming is free, "
         "renumbering silently loses data (table below)"),
        ("Streaming", "server push as chunked JSON lines (or SSE); no client or bidi streams "
         "on HTTP/1.1", "all four kinds built in (unary, server, client, bidi), flow-controlled"),
    ]
    out = ["## Developer experience", "", "| | REST/JSON | gRPC |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(out + [""])


def _evolution_table(result: dict) -> str:
    out = ["## Schema evolution, tried", "",
           "A v2 server sends an Item; a v1 client reads it (fastnet.proto's protobuf and "
           "JSON parsers, which behave as google.protobuf's here). Strict JSON is the proto3 "
           "JSON mapping's default (unknown fields refused); lenient is "
           "`ignore_unknown_fields=True`.", "",
           "| change | protobuf | JSON, strict | JSON, lenient |", "|---|---|---|---|"]
    for row in result["evolution"]:
        out.append(f"| {row['change']} | {row['protobuf']} | {row['json_strict']} | "
                   f"{row['json_lenient']} |")
    return "\n".join(out + [""])


def _rate(result: dict, name: str, call: str, mode: str, key: str = "rate") -> Optional[float]:
    s = _entry(result, call, mode)["summary"].get(name, {})
    return None if "error" in s else _med(s.get(key))


def _pair_ratio(result: dict, a: str, b: str, call: str, mode: str, key: str) -> Optional[float]:
    s = _entry(result, call, mode)["summary"].get(a, {})
    if "error" in s:
        return None
    return _med(s.get("ratios", {}).get(b, {}).get(key))


def conclusions(result: dict, names: list[str]) -> list[str]:
    """Sentences computed from the run's medians (nothing here is typed in)."""
    out: list[str] = []
    have = set(names)
    for a, b, title in PAIRS:
        if not {a, b} <= have:
            continue
        if b not in ("grpcio", "fastapi"):
            continue
        parts = []
        for call in ("GetItem", "ListItems", "CreateItem"):
            rate = _pair_ratio(result, a, b, call, "concurrent", "rate")
            p50 = _pair_ratio(result, a, b, call, "sequential", "p50_us")
            cpu = _pair_ratio(result, a, b, call, "concurrent", "server_cpu_us")
            if rate is None or p50 is None:
                continue
            parts.append(f"{call} {rate:.2f}x the requests/s, {p50:.2f}x the sequential p50"
                         + (f", {cpu:.2f}x the server CPU per call" if cpu else ""))
        if parts:
            out.append(f"- **{title}** ({a} relative to {b}, same repetitions): "
                       + "; ".join(parts) + ".")
    if {"grpcio", "fastapi"} <= have:
        for call in ("GetItem", "ListItems"):
            g, r = (_steady(result, "grpcio", call, False), _steady(result, "fastapi", call, False))
            if g and r:
                out.append(f"- **Bytes, {call}**: grpcio moves {_bytes_total(g):,.0f} bytes per "
                           f"call (both ways, steady), FastAPI {_bytes_total(r):,.0f}: REST "
                           f"{_bytes_total(r) / _bytes_total(g):.2f}x. Of that, headers: gRPC "
                           f"{g['up']['headers'] + g['down']['headers']:,.0f} (HPACK-indexed "
                           f"after the first call), REST "
                           f"{r['up']['headers'] + r['down']['headers']:,.0f} (sent whole every "
                           "time).")
    if {"grpcio", "fastnet-rest-h2", "fastnet-rest"} <= have:
        for call in ("GetItem", "ListItems"):
            g = _steady(result, "grpcio", call, False)
            h2 = _steady(result, "fastnet-rest-h2", call, False)
            h1 = _steady(result, "fastnet-rest", call, False)
            if g and h2 and h1:
                out.append(f"- **What HTTP/2 alone buys, {call}**: the same REST App moves "
                           f"{_bytes_total(h1):,.0f} bytes per call over HTTP/1.1 and "
                           f"{_bytes_total(h2):,.0f} over HTTP/2 (headers "
                           f"{h1['up']['headers'] + h1['down']['headers']:,.0f} -> "
                           f"{h2['up']['headers'] + h2['down']['headers']:,.0f}, HPACK); "
                           f"grpcio {_bytes_total(g):,.0f}. REST over HTTP/2 is "
                           f"{_bytes_total(h2) / _bytes_total(g):.2f}x gRPC's bytes: what "
                           "is left is JSON against protobuf in the body.")
    pay = {p["message"]: p for p in result["payload"]}
    item, page = pay.get("GetItem response (Item)"), pay.get("ListItems response (100 Items)")
    if item and page:
        out.append(f"- **Payloads**: JSON is {item['json'] / item['protobuf']:.2f}x protobuf "
                   f"for one Item and {page['json'] / page['protobuf']:.2f}x for a page of 100; "
                   f"gzip brings the page to {page['json_gzip'] / page['protobuf_gzip']:.2f}x "
                   f"(JSON {page['json_gzip']:,} vs protobuf {page['protobuf_gzip']:,} bytes), "
                   f"but one Item gzipped is {item['protobuf_gzip'] / item['protobuf']:.2f}x "
                   f"its protobuf size and {item['json_gzip'] / item['json']:.2f}x its JSON: "
                   "compressing small messages costs CPU for little or nothing.")
    streams = {n: result["stream"].get(n) for n in names}
    ok = {n: s for n, s in streams.items() if s and "error" not in s}
    if "grpcio" in ok and len(ok) > 1:
        g = ok["grpcio"]["messages_per_s"]["median"]
        parts = [f"{n} {s['messages_per_s']['median'] / g:.2f}x" for n, s in ok.items()
                 if n != "grpcio"]
        out.append(f"- **Streaming** (messages/s read by a Python client, relative to grpcio's "
                   f"{g:,.0f}/s): " + ", ".join(parts) + ".")
    if ok:
        slow = [(n, s["ttfm_ms"]["median"]) for n, s in ok.items()]
        best = min(t for _, t in slow)
        late = [(n, t) for n, t in slow if t > 10 * best]
        rest_late = [n for n, _ in late if n.startswith("fastnet-rest")]
        whole_ms = {n: 1000 * result["config"]["stream_count"] / s["messages_per_s"]["median"]
                    for n, s in ok.items()}
        if late:
            out.append("- **Time to the first streamed message**: " + ", ".join(
                f"{n} {t:,.1f} ms" for n, t in slow) + f" for {result['config']['stream_count']:,} "
                "messages: " + ", ".join(
                    f"{n}'s first message came {t / whole_ms[n]:.0%} of the way through the "
                    "call" for n, t in late)
                + ". " + ("For " + " and ".join(rest_late) + " the cause is fastnet.http's: "
                          "a plain iterator body is run to its end inside one read's handling "
                          "and the engine flushes after, so their messages/s is batching. "
                          if rest_late else "")
                + "A push that must not wait for the stream's end, a live feed, needs each "
                "message flushed as it is made.")
    cpu = _per_item_cpu(result, have)
    if cpu:
        out.append("- **Where a bigger message costs** (server CPU per call, fixed concurrency, "
                   "ListItems' 20 items against GetItem's 1): " + ", ".join(
                       f"{n} {v:,.1f} us per extra item" for n, v in cpu) + ". The REST "
                   "servers build JSON with fastnet.proto's proto3 JSON mapping, which is "
                   "Python; grpcio serializes in C (upb). On list-shaped answers that, not the "
                   "protocol, decides the throughput.")
    out += _verdict(result, have)
    pending = [i["name"] for i in result["impls"] if i["name"] not in have]
    if pending:
        out.append("- Not yet measured: " + ", ".join(
            f"{n} ({result['status'].get(n, 'not run')})" for n in pending) + ".")
    return out


def _per_item_cpu(result: dict, have: set[str]) -> list[tuple[str, float]]:
    """(implementation, server CPU us per item beyond the first), from
    ListItems (20 items) against GetItem (1) at fixed concurrency."""
    out = []
    for name in sorted(have, key=lambda n: [i["name"] for i in result["impls"]].index(n)):
        one = _rate(result, name, "GetItem", "concurrent", "server_cpu_us")
        twenty = _rate(result, name, "ListItems", "concurrent", "server_cpu_us")
        if one and twenty:
            out.append((name, (twenty - one) / 19))
    return out


def _verdict(result: dict, have: set[str]) -> list[str]:
    """When gRPC wins, by how much, and when REST is the better choice,
    from the peers' numbers."""
    if not {"grpcio", "fastapi"} <= have:
        return []
    wins = []
    for call in ("GetItem", "ListItems", "CreateItem"):
        r = _pair_ratio(result, "grpcio", "fastapi", call, "concurrent", "rate")
        if r is not None:
            wins.append((call, r))
    if not wins:
        return []
    better = [f"{c} ({r:.2f}x)" for c, r in wins if r > 1.05]
    worse = [f"{c} ({r:.2f}x)" for c, r in wins if r < 0.95]
    out = ["- **When gRPC wins**: " + (
        "grpcio served more requests/s than FastAPI for " + ", ".join(better)
        if better else "grpcio did not serve more requests/s than FastAPI for any call")
        + (("; fewer for " + ", ".join(worse)) if worse else "")
        + ". Its clearest win is on the wire (the bytes above), which counts on a "
          "metered or slow link, not on loopback."]
    fast = [(c, _pair_ratio(result, "fastnet-rest", "grpcio", c, "concurrent", "rate"))
            for c, _ in wins] if "fastnet-rest" in have else []
    fast = [(c, r) for c, r in fast if r is not None]
    if fast:
        same = [_pair_ratio(result, "fastnet-rest", "fastapi", c, "concurrent", "rate")
                for c, _ in wins]
        impl_gap = statistics.median(abs(math.log(r)) for r in same if r)
        proto_gap = statistics.median(abs(math.log(r)) for _, r in wins)
        out.append("- **When REST is the better choice**: when callers are browsers, curl or "
                   "third parties (the table above); on throughput, the REST server chosen "
                   "matters too: fastnet's REST server against grpcio served "
                   + ", ".join(f"{c} {r:.2f}x the requests/s" for c, r in fast) + ". "
                   + (f"The server implementation moved throughput more than the protocol did "
                      f"(two REST servers: a median factor of {math.exp(impl_gap):.2f} apart; "
                      f"grpcio and FastAPI: {math.exp(proto_gap):.2f})."
                      if impl_gap > proto_gap else
                      f"The protocol moved throughput more than the server implementation did "
                      f"(grpcio and FastAPI: a median factor of {math.exp(proto_gap):.2f} "
                      f"apart; two REST servers: {math.exp(impl_gap):.2f})."))
    return out


# -- plots ------------------------------------------------------------------

def plots(result: dict, outdir: Path) -> list[Path]:
    """grpc_vs_rest-latency.png, -bytes.png, -throughput.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import grouped_bars

    outdir.mkdir(parents=True, exist_ok=True)
    names = measured(result)
    paths = []

    def series(mode: str, key: str) -> dict[str, list[float]]:
        return {n: [(_rate(result, n, call, mode, key) or 0.0) for call in CALLS] for n in names}

    fig, axes = plt.subplots(3, 3, figsize=(13, 9.5), squeeze=False)
    for row, mode in enumerate(("sequential", "concurrent", "open")):
        for col, (key, label) in enumerate((("p50_us", "p50"), ("p95_us", "p95"),
                                            ("p99_us", "p99"))):
            ax = axes[row][col]
            grouped_bars(ax, list(CALLS), series(mode, key), log=True)
            ax.set_title(f"{label}, {mode}", fontsize=9)
            ax.set_ylabel("us (log: not from 0)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("grpc_vs_rest: latency per call (median of repetitions); a shared, noisy "
                 "machine", fontsize=10)
    fig.tight_layout()
    paths.append(outdir / "grpc_vs_rest-latency.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), squeeze=False)
    for ax, gz in zip(axes[0], (False, True)):
        data: dict[str, list[float]] = {}
        for n in names:
            for direction in ("up", "down"):
                vals = []
                for call in CALLS:
                    s = _steady(result, n, call, gz)
                    vals.append(sum(s[direction].values()) if s else 0.0)
                data[f"{n} {'request' if direction == 'up' else 'response'}"] = vals
        grouped_bars(ax, list(CALLS), data)
        ax.set_title(f"bytes per call on the wire, steady state, gzip {'on' if gz else 'off'}",
                     fontsize=9)
        ax.set_ylabel("bytes (from 0)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(outdir / "grpc_vs_rest-bytes.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), squeeze=False)
    grouped_bars(axes[0][0], list(CALLS), series("concurrent", "rate"))
    axes[0][0].set_title(f"requests/s, {result['config']['conns']} connections", fontsize=9)
    axes[0][0].set_ylabel("requests/s (from 0)")
    grouped_bars(axes[0][1], list(CALLS), series("concurrent", "server_cpu_us"))
    axes[0][1].set_title("server CPU per call", fontsize=9)
    axes[0][1].set_ylabel("us of CPU (from 0)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("grpc_vs_rest: throughput and server CPU (median of repetitions)", fontsize=10)
    fig.tight_layout()
    paths.append(outdir / "grpc_vs_rest-throughput.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths
