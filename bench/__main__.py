"""``python -m bench``: run scenarios, write JSON, a markdown report and plots.

    python -m bench all [--quick]
    python -m bench echo|frame|resp|idle [--quick] [--reps N] [--seconds S]
                    [--only SERVER,...] [--matrix KEY=V1,V2 ...] [--rate R] [--profile]
                    [--out DIR]

Writes DIR/<scenario>.json for each scenario run, DIR/report.md covering
the scenarios of this invocation and DIR/<scenario>-*.png (DIR defaults to
bench/results/); a scenario with its own report (grpc_vs_rest) writes
DIR/<scenario>.md instead of a section of report.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from . import harness, scenarios  # noqa: F401  (scenarios: registration)
from .harness import log
from .scenario import CELL_GLOSSARY, SCENARIOS, Options


def _matrix(items: list[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise SystemExit(f"--matrix expects KEY=V1,V2, got {item!r}")
        out[key] = [int(v) if v.isdigit() else v for v in values.split(",")]
    return out


def scenarios_help() -> str:
    """What --only and --matrix take in each registered scenario, and what a
    cell's label means (the epilog of --help)."""
    lines = ["scenarios (--only takes their server names, --matrix KEY=V1,V2 their keys):"]
    for name, scenario in SCENARIOS.items():
        lines.append(f"  {name}: {scenario.title}")
        lines.append(textwrap.fill(", ".join(scenario.server_names()), 88,
                                   initial_indent="    servers: ", subsequent_indent=" " * 13,
                                   break_on_hyphens=False))
        matrix = "  ".join(f"{key}={','.join(map(str, values))}"
                           for key, values in scenario.matrix().items())
        lines.append(textwrap.fill(matrix, 88, initial_indent="    matrix:  ",
                                   subsequent_indent=" " * 13, break_on_hyphens=False))
    lines += ["", textwrap.fill(CELL_GLOSSARY, 88)]
    return "\n".join(lines)


def check_selection(names: list[str], opts: Options) -> None:
    """SystemExit naming what --only or --matrix asked for that none of the
    scenarios ``names`` has (a typo would otherwise run nothing, silently)."""
    servers = {n for name in names for n in SCENARIOS[name].server_names()}
    keys = {k for name in names for k in SCENARIOS[name].matrix()}
    for flag, asked, known in (("--only", set(opts.only or ()), servers),
                               ("--matrix", set(opts.matrix), keys)):
        if asked - known:
            raise SystemExit(f"{flag}: {', '.join(sorted(asked - known))} is not in "
                             f"{' or '.join(names)} (it has {', '.join(sorted(known))}; "
                             "see python -m bench --help)")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench``."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                epilog=scenarios_help(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["all", *SCENARIOS])
    p.add_argument("--quick", action="store_true",
                   help="reduced matrix, fewer and shorter repetitions (all: under 5 minutes)")
    p.add_argument("--reps", type=int, help="repetitions per cell (default: 3, quick 2)")
    p.add_argument("--seconds", type=float, help="measured seconds per run (default: 2, quick 1)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per run (default: 0.5, quick 0.25)")
    p.add_argument("--only", metavar="SERVER,...",
                   help="comma-separated server names to run (references included only if "
                        "named); each scenario's names are listed below")
    p.add_argument("--matrix", action="append", default=[], metavar="KEY=V1,V2",
                   help="keep only cells whose KEY is one of the values, e.g. size=64 "
                        "(repeatable); each scenario's keys are listed below")
    p.add_argument("--profile", action="store_true",
                   help="also profile the fastnet servers (perf, py-spy) and say where "
                        "the time goes")
    p.add_argument("--rate", type=float, default=0.0, metavar="R",
                   help="open loop: loadgen sends R requests/s in total, latency measured "
                        "from each request's intended send time (default: closed loop)")
    p.add_argument("--out", type=Path, default=harness.ROOT / "bench" / "results",
                   help="where JSON, report.md and PNGs go (default: bench/results)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the scenarios asked for; return the exit status."""
    args = build_parser().parse_args(argv)
    opts = Options(quick=args.quick, reps=args.reps, seconds=args.seconds, warmup=args.warmup,
                   only=set(args.only.split(",")) if args.only else None,
                   matrix=_matrix(args.matrix), profile=args.profile, rate=args.rate,
                   out=args.out)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    check_selection(names, opts)
    args.out.mkdir(parents=True, exist_ok=True)
    harness.build_loadgen()
    started = time.monotonic()
    sections = []
    for name in names:
        scenario = SCENARIOS[name]
        t0 = time.monotonic()
        result = scenario.run(opts)
        result["elapsed_s"] = round(time.monotonic() - t0, 1)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        images = scenario.plot(result, args.out)
        section = scenario.markdown(result)
        if scenario.own_report:  # a whole report of its own, plots linked in it
            (args.out / f"{name}.md").write_text(section)
            log(f"[{name}] done in {result['elapsed_s']:g} s: {args.out / f'{name}.md'}")
            continue
        section += "".join(f"\n![{p.stem}]({p.name})\n" for p in images)
        sections.append(section)
        log(f"[{name}] done in {result['elapsed_s']:g} s")
    elapsed = time.monotonic() - started
    header = (f"# fastnet benchmarks\n\n`python -m bench {' '.join(sys.argv[1:] if argv is None else argv)}`"
              f", {time.strftime('%Y-%m-%d %H:%M')}, {elapsed:.0f} s. Server on CPU "
              f"{harness.SERVER_CPU}, load generator on CPU {harness.CLIENT_CPU}.\n\n"
              f"{CELL_GLOSSARY}\n")
    if sections:
        report = args.out / "report.md"
        report.write_text(header + "\n" + "\n".join(sections))
        log(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
