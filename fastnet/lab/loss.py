"""Kata 6: TCP against UDP under induced loss and delay, with iperf3 as the reference.

One :class:`~fastnet.lab.netlab.Lab` for the whole run. For each RTT and
each loss rate the measurements (fastnet TCP with each congestion control,
fastnet UDP, iperf3 TCP, iperf3 UDP) run back to back, and the whole sweep is repeated ``reps``
times, so load from elsewhere on the machine lands on all of them alike;
each reported value is the median over repetitions, with the range.
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import measure
from .netlab import Lab


@dataclass
class Plan:
    """What one ``loss`` run measures."""
    rtts_ms: tuple[float, ...] = (1.0, 10.0, 50.0)
    losses: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
    seconds: float = 2.0
    reps: int = 3
    rate_mbit: float = 100.0
    udp_rate_bps: float = 50e6
    iperf3: bool = True
    #: Congestion controls for fastnet's TCP sender; iperf3 runs the first one.
    ccs: tuple[str, ...] = ("cubic", "bbr")
    jitter_ms: float = 0.0
    #: Extra repetitions of a point whose TCP goodput ranged over more than
    #: NOISY_SPREAD times its median after ``reps`` (short runs at long RTTs
    #: see few loss events, so their spread is wide).
    noisy_reps: int = 2


#: (max - min) / median of a TCP series' goodput above which a point is re-measured.
NOISY_SPREAD = 1.0
QUICK = Plan(rtts_ms=(10.0,), losses=(0.0, 0.1), seconds=1.0, reps=1, noisy_reps=0)


def _median_point(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One point from its repetitions: numbers are medians, goodput also keeps its range."""
    out: dict[str, Any] = dict(runs[0])
    for key, value in runs[0].items():
        values = [r.get(key) for r in runs]
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and all(isinstance(v, (int, float)) for v in values):
            out[key] = statistics.median(values)  # type: ignore[type-var]
    good = [r["goodput_bps"] for r in runs]
    out["goodput_bps_min"], out["goodput_bps_max"] = min(good), max(good)
    out["reps"] = len(runs)
    return out


def run(plan: Plan, log: Optional[Callable[[str], None]] = None,
        on_rep: Optional[Callable[[list[dict[str, Any]]], None]] = None) -> list[dict[str, Any]]:
    """Measure every point of ``plan``; one dict per (tool, proto, cc, rtt, loss).

    ``on_rep`` gets the points measured so far after each repetition (the
    CLI rewrites its report then, so a long run interrupted late keeps its data).
    An iperf3 run that fails is logged and left out of its point's median.
    """
    say = log or (lambda s: None)
    raw: dict[tuple[str, str, Optional[str], float, float], list[dict[str, Any]]] = {}

    def point(lab: Lab, rtt: float, loss: float, rep: int, label: str) -> None:
        lab.set_delay(rtt / 2, plan.jitter_ms)
        lab.set_loss(loss)
        runs = [measure.tcp_run(lab, plan.seconds, cc) for cc in plan.ccs]
        runs.append(measure.udp_run(lab, plan.seconds, plan.udp_rate_bps))
        if plan.iperf3:
            for rate in (None, plan.udp_rate_bps):
                try:
                    runs.append(measure.iperf3_run(lab, plan.seconds, rate, cc=plan.ccs[0]))
                except measure.Iperf3Failed as exc:
                    say(f"rtt {rtt:g} ms loss {loss:.1%}: {exc}")
        lab_drops = lab.link_drops() + lab.relay_stats().get("dropped_full", 0)
        for r in runs:
            r.update(rtt_ms=rtt, loss_configured=loss, rep=rep,
                     link_mbit=plan.rate_mbit, delay_line_drops_total=lab_drops)
            raw.setdefault((r["tool"], r["proto"], r["cc"], rtt, loss), []).append(r)
            say(f"{time.strftime('%H:%M:%S')} {label} rtt {rtt:g} ms loss {loss:.1%}: "
                f"{r['tool']} {r['proto']} {r['cc'] or ''} {r['goodput_bps'] / 1e6:.1f} Mbit/s "
                f"(measured loss {_pct(r.get('loss_measured'))})")

    with Lab(rate_mbit=plan.rate_mbit) as lab:
        for rep in range(plan.reps):
            for rtt in plan.rtts_ms:
                for loss in plan.losses:
                    point(lab, rtt, loss, rep, f"rep {rep + 1}/{plan.reps}")
            if on_rep is not None:
                on_rep([_median_point(v) for v in raw.values()])
        noisy = sorted({(k[3], k[4]) for k, runs in raw.items()
                        if k[:2] == ("fastnet", "tcp") and _spread(runs) > NOISY_SPREAD})
        for extra in range(plan.noisy_reps if noisy else 0):
            for rtt, loss in noisy:
                point(lab, rtt, loss, plan.reps + extra, f"noisy {extra + 1}/{plan.noisy_reps}")
            if on_rep is not None:
                on_rep([_median_point(v) for v in raw.values()])
    return [_median_point(v) for v in raw.values()]


def _spread(runs: list[dict[str, Any]]) -> float:
    good = [r["goodput_bps"] for r in runs]
    mid = statistics.median(good)
    return (max(good) - min(good)) / mid if mid > 0 else 0.0


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2%}"


def main_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
