"""Scenarios: the registered units ``python -m bench NAME`` runs.

A scenario is a class with a name that turns Options into a JSON-able result
dict and that result into a markdown section and plots. Most are load
scenarios (LoadScenario): a matrix of cells (message size, connections,
pipeline depth, ...) crossed with a set of servers, every server measured in
every cell in every repetition, servers interleaved (A B C A B C ...) so the
machine's noise hits all alike, and each figure also given as a ratio to a
reference server measured in the same repetition.

A new protocol adds its scenario by subclassing and decorating with
@register; bench/scenarios/ imports every module in it.
"""
from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

from . import harness, plots, profiling
from .harness import LoadError, RunningServer, ServerSpec, ServerUnavailable, log

Cell = dict[str, Any]
#: What a cell's label says, for the report and --help.
CELL_GLOSSARY = (
    "A cell such as \"64 B, 50 conns, P16\" is 64-byte messages over 50 concurrent "
    "connections, each with 16 requests in flight: P16 is the pipeline depth (a connection "
    "keeps 16 requests outstanding, sending one more per reply), and P1 is one request at "
    "a time, each waiting for its reply (pure round trips).")
METRICS = ("rate", "mean_us", "p50_us", "p95_us", "p99_us", "p999_us", "max_us",
           "server_cpu_us", "client_cpu")


@dataclass
class Options:
    """What the command line asked for. None: the scenario's default."""
    quick: bool = False
    reps: Optional[int] = None
    seconds: Optional[float] = None
    warmup: Optional[float] = None
    only: Optional[set[str]] = None
    matrix: dict[str, list[Any]] = field(default_factory=dict)
    profile: bool = False
    rate: float = 0.0
    out: Path = harness.ROOT / "bench" / "results"


@dataclass(frozen=True)
class Load:
    """How long to load each cell and how: closed loop (rate 0) or open loop
    at ``rate`` requests/s in total (loadgen only)."""
    seconds: float
    warmup: float
    rate: float = 0.0


class Scenario:
    """A named benchmark: run() -> result dict, markdown(result), plot(result).

    ``server_names()`` and ``matrix()`` say what ``--only`` and ``--matrix``
    take (``python -m bench --help`` lists them for every scenario)."""
    name: ClassVar[str]
    title: ClassVar[str]
    #: The scenario's markdown is a whole report, written as DIR/<name>.md
    #: rather than a section of DIR/report.md.
    own_report: ClassVar[bool] = False

    def server_names(self) -> list[str]:
        """The names ``--only`` selects among."""
        return []

    def matrix(self) -> dict[str, list[Any]]:
        """Each ``--matrix`` key and the values the scenario's cells take."""
        return {}

    def run(self, opts: Options) -> dict:
        raise NotImplementedError

    def markdown(self, result: dict) -> str:
        raise NotImplementedError

    def plot(self, result: dict, outdir: Path) -> list[Path]:
        return []


SCENARIOS: dict[str, Scenario] = {}


def register(cls: type[Scenario]) -> type[Scenario]:
    """Class decorator: make the scenario runnable as ``python -m bench NAME``."""
    SCENARIOS[cls.name] = cls()
    return cls


def spread(values: list[float]) -> Optional[dict[str, float]]:
    """median, min and max of the values that exist."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class LoadScenario(Scenario):
    """Servers x matrix cells x repetitions, measured by a load tool."""
    dims: ClassVar[tuple[str, ...]]
    references: ClassVar[tuple[str, ...]]
    default_reps: ClassVar[tuple[int, int]] = (3, 2)         # full, quick
    # Full runs: 2 s per run keeps the whole matrix (7 servers x 16 echo
    # cells x 3 repetitions) near half an hour; ratios settle well before.
    default_seconds: ClassVar[tuple[float, float]] = (2.0, 1.0)
    default_warmup: ClassVar[tuple[float, float]] = (0.5, 0.25)

    def servers(self) -> list[ServerSpec]:
        raise NotImplementedError

    def cells(self, quick: bool) -> list[Cell]:
        raise NotImplementedError

    def server_names(self) -> list[str]:
        return [spec.name for spec in self.servers()]

    def matrix(self) -> dict[str, list[Any]]:
        cells = self.cells(False) + self.cells(True)
        return {key: sorted({c[key] for c in cells if key in c}) for key in self.dims}

    def measure(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        """One load run of ``cell`` against ``server``: loadgen's JSON keys."""
        raise NotImplementedError

    def targets(self, result: dict) -> list[dict]:
        """The issue's targets for this scenario, evaluated on ``result``."""
        return []

    def profile_cell(self, cells: list[Cell]) -> Cell:
        """The cell --profile loads the servers with: the busiest one."""
        return max(cells, key=lambda c: (c.get("conns", 0), c.get("pipeline", 0)))

    @staticmethod
    def label(cell: Cell) -> str:
        parts = []
        for key, value in cell.items():
            if key == "size":
                parts.append(f"{value:,} B" if value < 1024 else f"{value // 1024} KiB")
            elif key == "conns":
                parts.append(f"{value} conn" + ("s" if value != 1 else ""))
            elif key == "pipeline":
                parts.append(f"P{value}")
            else:
                parts.append(str(value))
        return ", ".join(parts)

    @staticmethod
    def product(**dims: list[Any]) -> list[Cell]:
        """Every combination of the given dimension values, as cells."""
        keys = list(dims)
        return [dict(zip(keys, values)) for values in itertools.product(*dims.values())]

    def run(self, opts: Options) -> dict:
        q = int(opts.quick)
        reps = opts.reps or self.default_reps[q]
        seconds = opts.seconds or self.default_seconds[q]
        warmup = self.default_warmup[q] if opts.warmup is None else opts.warmup
        load = Load(seconds, warmup, opts.rate)
        cells = [c for c in self.cells(opts.quick)
                 if all(c.get(k) in vs for k, vs in opts.matrix.items() if k in c)]
        specs = [s for s in self.servers() if not opts.only or s.name in opts.only]
        result: dict[str, Any] = {
            "scenario": self.name, "kind": "load", "title": self.title,
            "config": {"reps": reps, "seconds": seconds, "warmup": warmup, "quick": opts.quick,
                       "rate": opts.rate,
                       "server_cpu": harness.SERVER_CPU, "client_cpu": harness.CLIENT_CPU},
            "references": [r for r in self.references if any(s.name == r for s in specs)],
            "servers": [s.name for s in specs], "failed": {}, "cells": [],
        }
        running: dict[str, RunningServer] = {}
        try:
            for spec in specs:
                try:
                    running[spec.name] = RunningServer(spec, opts.out / "logs" / self.name)
                    log(f"[{self.name}] {spec.name} listening on {running[spec.name].port}")
                except ServerUnavailable as exc:
                    result["failed"][spec.name] = f"failed to start: {exc}"
                    log(f"[{self.name}] SERVER FAILED TO START: {spec.name}: {exc}")
            for cell in cells:
                runs: dict[str, list[dict]] = {name: [] for name in running}
                for rep in range(reps):
                    for name, server in running.items():
                        runs[name].append(self._measure_one(server, cell, load))
                        r = runs[name][-1]
                        log(f"[{self.name}] {self.label(cell)} rep {rep + 1}/{reps} {name}: "
                            + (f"{r['rate']:,.0f}/s p99 {r['p99_us']:.0f} us "
                               f"loadgen cpu {r['client_cpu']:.0%}" if "error" not in r
                               else r["error"]))
                    for name in [n for n, s in running.items() if not s.alive()]:
                        result["failed"][name] = f"died: {running.pop(name).tail()}"
                result["cells"].append({"cell": cell, "label": self.label(cell), "runs": runs,
                                        "summary": self._summarise(runs, result["references"])})
            if opts.profile and cells:
                result["profiles"] = {}
                cell = self.profile_cell(cells)
                for name, server in running.items():
                    if server.spec.profile:
                        log(f"[{self.name}] profiling {name} at {self.label(cell)}")
                        result["profiles"][name] = profiling.profile(
                            server, lambda s=server: self.measure(s, cell, load),
                            opts.out / "profiles" / f"{self.name}-{name}")
                        result["profiles"][name]["cell"] = self.label(cell)
        finally:
            for name, server in running.items():
                status = server.stop()
                if status not in (0, -15):
                    log(f"[{self.name}] {name} exited with status {status}")
        result["targets"] = self.targets(result)
        return result

    def _measure_one(self, server: RunningServer, cell: Cell, load: Load) -> dict:
        try:
            r = self.measure(server, cell, load)
        except (LoadError, ServerUnavailable) as exc:
            return {"error": str(exc)}
        r["loadgen_saturated"] = r["client_cpu"] > harness.SATURATED_CPU
        if r["loadgen_saturated"]:
            log(f"[{self.name}] WARNING: the load generator used {r['client_cpu']:.0%} of its "
                f"core at {self.label(cell)} against {server.spec.name}: it may be the limit")
        return r

    @staticmethod
    def _summarise(runs: dict[str, list[dict]], references: list[str]) -> dict:
        out: dict[str, Any] = {}
        for name, reps in runs.items():
            ok = [r for r in reps if "error" not in r]
            if not ok:
                out[name] = {"error": reps[0]["error"] if reps else "not measured"}
                continue
            s: dict[str, Any] = {m: spread([r.get(m) for r in ok]) for m in METRICS}
            s["errors"] = sum(r.get("errors") or 0 for r in ok)
            s["loadgen_saturated"] = s["client_cpu"]["median"] > harness.SATURATED_CPU
            s["ratios"] = {}
            for ref in references:
                pairs = [(r, q) for r, q in zip(reps, runs.get(ref, []))
                         if "error" not in r and "error" not in q]
                s["ratios"][ref] = {
                    m: spread([r[m] / q[m] for r, q in pairs if r.get(m) and q.get(m)])
                    for m in ("rate", "p50_us", "p99_us")}
            out[name] = s
        return out

    def markdown(self, result: dict) -> str:
        refs = result["references"]
        c = result["config"]
        lines = [f"## {result['title']}", "",
                 f"{c['reps']} repetitions of {c['seconds']:g} s (+{c['warmup']:g} s warm-up), "
                 + (f"open loop at {c['rate']:,.0f} requests/s (latency from each request's "
                    "intended send time; redis-benchmark cells stay closed loop), "
                    if c.get("rate") else "closed loop, ")
                 + 
                 "servers interleaved; median [min-max] over repetitions; ratios are to the "
                 "reference measured in the same repetition. Latency in microseconds. "
                 "⚠ marks a cell where the load generator used more than "
                 f"{harness.SATURATED_CPU:.0%} of its core (it, not the server, may be the limit).",
                 ""]
        for name, why in result["failed"].items():
            lines.append(f"- **{name}: {why}**")
        if result["failed"]:
            lines.append("")
        head = ["cell", "server", "requests/s"] + [f"vs {r}" for r in refs] + [
            "p50", "p99", "p99 vs " + refs[0] if refs else "p99 ratio", "p99.9", "mean",
            "server CPU us/req", "loadgen CPU"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
        for entry in result["cells"]:
            for name, s in entry["summary"].items():
                if "error" in s:
                    lines.append(f"| {entry['label']} | {name} | {s['error']} |"
                                 + " |" * (len(head) - 3))
                    continue
                ratio = [fmt_ratio(s["ratios"][r]["rate"]) for r in refs]
                p99r = fmt_ratio(s["ratios"][refs[0]]["p99_us"]) if refs else "-"
                warn = " ⚠" if s["loadgen_saturated"] else ""
                lines.append(
                    f"| {entry['label']} | {name} | {fmt_spread(s['rate'], '{:,.0f}')} | "
                    + " | ".join(ratio) + (" | " if ratio else "")
                    + f"{fmt(s['p50_us'])} | {fmt(s['p99_us'])} | {p99r} | {fmt(s['p999_us'])} | "
                    f"{fmt(s['mean_us'])} | {fmt(s['server_cpu_us'], '{:.2f}')} | "
                    f"{fmt(s['client_cpu'], '{:.0%}')}{warn} |")
        lines.append("")
        if result.get("targets"):
            lines += ["### Targets", "", "| target | verdict | detail |", "|---|---|---|"]
            lines += [f"| {t['name']} | **{t['verdict']}** | {t['detail']} |"
                      for t in result["targets"]]
            lines.append("")
        if result.get("profiles"):
            lines.append(profiling.markdown(result["profiles"]))
        return "\n".join(lines)

    def plot(self, result: dict, outdir: Path) -> list[Path]:
        if not result["cells"]:
            return []  # --matrix kept none of this scenario's cells: nothing to draw
        return plots.load_plots(result, outdir, self.label)


def fmt(s: Optional[dict], pattern: str = "{:,.0f}") -> str:
    return "-" if not s else pattern.format(s["median"])


def fmt_spread(s: Optional[dict], pattern: str) -> str:
    if not s:
        return "-"
    return (f"{pattern.format(s['median'])} [{pattern.format(s['min'])}-"
            f"{pattern.format(s['max'])}]")


def fmt_ratio(s: Optional[dict]) -> str:
    return "-" if not s else f"{s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}]"


def ratio_target(result: dict, name: str, server: str, reference: str, *,
                 where: Callable[[Cell], bool] = lambda cell: True, metric: str = "rate",
                 at_least: Optional[float] = None, at_most: Optional[float] = None) -> dict:
    """Evaluate "server's metric is >= at_least (or <= at_most) times the
    reference's in every cell matching ``where``", on the per-cell median of
    the same-repetition ratios. MISS says by how much the worst cell falls short."""
    bound = at_least if at_least is not None else at_most
    assert bound is not None
    sign = "≥" if at_least is not None else "≤"
    cells = [e for e in result["cells"] if where(e["cell"])]
    missing = [e["label"] for e in cells
               if (e["summary"].get(server, {}).get("ratios", {}).get(reference) or {}).get(metric)
               is None]
    for who in (server, reference):
        if who in result["failed"]:
            return {"name": name, "verdict": "NOT MEASURED",
                    "detail": f"{who} {result['failed'][who]}"}
        if who not in result["servers"]:
            return {"name": name, "verdict": "NOT MEASURED", "detail": f"{who} not run (--only)"}
    if not cells or missing:
        return {"name": name, "verdict": "NOT MEASURED",
                "detail": "no matching cell ran" if not cells
                else "no ratio in: " + "; ".join(missing)}
    ratios = [(e["summary"][server]["ratios"][reference][metric]["median"], e["label"])
              for e in cells]
    worst, where_worst = min(ratios) if at_least is not None else max(ratios)
    ok = worst >= bound if at_least is not None else worst <= bound
    detail = (f"worst {worst:.2f}x at {where_worst} (target {sign}{bound:g}x"
              + ("" if ok else f"; {'short' if at_least is not None else 'over'} by "
                                 f"{abs(worst - bound) / bound:.0%}")
              + f"); {len(cells)} cell(s): "
              + ", ".join(f"{r:.2f}x" for r, _ in ratios))
    return {"name": name, "verdict": "PASS" if ok else "MISS", "detail": detail,
            "worst": worst, "bound": bound}
