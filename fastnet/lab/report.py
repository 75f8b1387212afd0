"""The loss report: a table per RTT, plots with the Mathis bound, and conclusions drawn from the data.

The Mathis et al. (1997) bound for a Reno-style sender with random loss p:
``rate <= MSS / RTT * C / sqrt(p)``, C = sqrt(3/2) ~ 1.22. It is drawn with
the MSS the sender reported (TCP_INFO) and the configured base RTT.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Optional

MATHIS_C = math.sqrt(1.5)
#: "Collapse": TCP's goodput below this fraction of its own loss-free goodput.
COLLAPSE_FRACTION = 0.1
HALVED_FRACTION = 0.5


def mathis_bps(mss: float, rtt_ms: float, p: float) -> float:
    """The Mathis bound in bit/s (infinite at p = 0)."""
    if p <= 0:
        return math.inf
    return mss * 8 / (rtt_ms / 1e3) * MATHIS_C / math.sqrt(p)


def _get(points: list[dict[str, Any]], tool: str, proto: str, rtt: float,
         cc: Optional[str] = None) -> list[dict[str, Any]]:
    return sorted((p for p in points if p["tool"] == tool and p["proto"] == proto
                   and p["rtt_ms"] == rtt and (cc is None or p.get("cc") == cc)),
                  key=lambda p: p["loss_configured"])


def _ccs(points: list[dict[str, Any]]) -> list[str]:
    """The congestion controls fastnet's TCP ran with, in the order first measured."""
    out: list[str] = []
    for p in points:
        if p["proto"] == "tcp" and p["tool"] == "fastnet" and p.get("cc") not in out:
            out.append(p["cc"])
    return out


def _mbit(x: Optional[float]) -> str:
    return "-" if x is None else f"{x / 1e6:.1f}"


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def analyse(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per RTT and congestion control: where TCP halves and collapses, and where UDP overtakes it."""
    out = []
    for rtt, cc in [(r, c) for r in sorted({p["rtt_ms"] for p in points}) for c in _ccs(points)]:
        tcp = _get(points, "fastnet", "tcp", rtt, cc)
        udp = {p["loss_configured"]: p for p in _get(points, "fastnet", "udp", rtt)}
        if not tcp:
            continue
        base = tcp[0]["goodput_bps"] if tcp[0]["loss_configured"] == 0 else None
        halved = collapsed = crossover = None
        for p in tcp:
            if base and halved is None and p["goodput_bps"] < HALVED_FRACTION * base:
                halved = p["loss_configured"]
            if base and collapsed is None and p["goodput_bps"] < COLLAPSE_FRACTION * base:
                collapsed = p["loss_configured"]
            u = udp.get(p["loss_configured"])
            if crossover is None and u and u["goodput_bps"] > p["goodput_bps"]:
                crossover = p["loss_configured"]
        mss = next((p["mss"] for p in tcp if p.get("mss")), 1348)
        vs_mathis = [(p["loss_configured"], p["goodput_bps"] / mathis_bps(mss, rtt, p["loss_configured"]))
                     for p in tcp if p["loss_configured"] > 0]
        out.append({"rtt_ms": rtt, "cc": cc, "tcp_lossless_bps": base, "halved_at": halved,
                    "collapsed_at": collapsed, "udp_better_from": crossover, "mss": mss,
                    "tcp_over_mathis": vs_mathis,
                    "worst": tcp[-1], "udp_worst": udp.get(tcp[-1]["loss_configured"])})
    return out


def conclusions(points: list[dict[str, Any]], udp_rate_bps: float) -> str:
    """A paragraph (markdown) generated from the measured points."""
    parts = []
    for a in analyse(points):
        rtt = a["rtt_ms"]
        s = (f"At {rtt:g} ms RTT, fastnet's TCP with {a['cc']} moved "
             f"{_mbit(a['tcp_lossless_bps'])} Mbit/s without loss")
        if a["halved_at"] is not None:
            s += f"; its goodput fell below half of that at {_pct(a['halved_at'])} loss"
        else:
            s += "; it never fell below half of that in the losses measured"
        if a["collapsed_at"] is not None:
            s += f" and collapsed (under a tenth) at {_pct(a['collapsed_at'])}"
        w = a["worst"]
        s += (f" (at {_pct(w['loss_configured'])}: {_mbit(w['goodput_bps'])} Mbit/s, "
              f"{w.get('retransmits') or 0:.0f} retransmissions).")
        if a["udp_better_from"] is not None:
            s += (f" UDP at a fixed {udp_rate_bps / 1e6:.0f} Mbit/s delivered more than TCP from "
                  f"{_pct(a['udp_better_from'])} loss on")
            u = a["udp_worst"]
            if u:
                s += (f" ({_mbit(u['goodput_bps'])} Mbit/s at {_pct(u['loss_configured'])}, "
                      f"measured loss {_pct(u.get('loss_measured'))}, jitter "
                      f"{u.get('jitter_ms') or 0:.2f} ms)")
            s += "."
        else:
            s += f" TCP delivered more than UDP's fixed {udp_rate_bps / 1e6:.0f} Mbit/s at every loss measured."
        over = [r for _, r in a["tcp_over_mathis"] if math.isfinite(r)]
        if over:
            s += (f" Measured TCP ran at {min(over):.2f}x to {max(over):.2f}x the Mathis bound "
                  f"(MSS {a['mss']} B, base RTT)")
            if a["cc"] == "bbr":
                s += (": BBR paces to its estimate of the bottleneck's rate and does not treat "
                      "random loss as congestion, so the loss-based bound does not apply to it.")
            elif max(over) > 1:
                s += ("; above it where SACK and RACK recover several losses per window in one "
                      "reduction, which the model's one-loss-per-window Reno does not.")
            else:
                s += ", within it as the model predicts."
        parts.append(s)
    analysis = analyse(points)
    first_cross = [a for a in analysis if a["udp_better_from"] is not None and a["cc"] != "bbr"]
    workload = ("**Which to choose.** For a bulk transfer every byte must arrive, so UDP's higher "
                "delivered rate under loss is not goodput: a bulk sender over UDP must add its own "
                "retransmission and congestion control (as QUIC does), and TCP remains the choice "
                "until the collapse points above, where a transfer takes ten times longer or more. "
                "For real-time media (a fixed-rate stream where a late packet is as useless as a "
                "lost one) UDP is the better choice as soon as TCP cannot sustain the stream's rate")
    if first_cross:
        workload += ": in these measurements (loss-based TCP) from " + ", ".join(
            f"{_pct(a['udp_better_from'])} loss at {a['rtt_ms']:g} ms ({a['cc']})"
            for a in first_cross)
    bbr = [a for a in analysis if a["cc"] == "bbr"]
    if bbr:
        workload += (", while BBR kept more than UDP's rate up to " + ", ".join(
            f"{_pct(max((p['loss_configured'] for p in _get(points, 'fastnet', 'tcp', a['rtt_ms'], 'bbr') if u_ok(points, p)), default=0.0))} at {a['rtt_ms']:g} ms"
            for a in bbr))
    workload += (". For request/response, throughput matters less than the time to complete one "
                 "exchange: with TCP a lost segment at the end of a reply waits for a "
                 "retransmission timeout (200 ms at least on Linux, many RTTs at short RTTs), so at "
                 "a few percent loss the tail latency is set by timeouts; small idempotent requests "
                 "over UDP with an application retry after about one RTT (as DNS does) finish sooner.")
    return "\n\n".join(parts + [workload])


def u_ok(points: list[dict[str, Any]], tcp_point: dict[str, Any]) -> bool:
    """TCP delivered at least what fastnet's UDP did at the same RTT and loss."""
    for u in _get(points, "fastnet", "udp", tcp_point["rtt_ms"]):
        if u["loss_configured"] == tcp_point["loss_configured"]:
            return bool(tcp_point["goodput_bps"] >= u["goodput_bps"])
    return False


def write(points: list[dict[str, Any]], out_dir: str, plan: Any, command: str) -> str:
    """Write loss.json, goodput.png and loss.md into ``out_dir``; return the markdown path."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "loss.json"), "w") as f:
        json.dump({"command": command, "plan": dataclasses.asdict(plan), "points": points}, f,
                  indent=1, default=str)
    plot(points, os.path.join(out_dir, "goodput.png"))
    md = ["# TCP against UDP under loss and delay\n",
          f"`{command}`: {plan.reps} repetition(s) x {plan.seconds:g} s per measurement, the "
          f"measurements of a point back to back; a point whose TCP goodput ranged over more "
          f"than its median got {plan.noisy_reps} more; values are medians over "
          f"repetitions (goodput range in brackets). Wire: a veth pair limited to {plan.rate_mbit:g} Mbit/s by tbf, "
          f"random loss by nftables on the data direction, delay by fastnet's TUN delay line. "
          f"UDP offered at {plan.udp_rate_bps / 1e6:g} Mbit/s. The machine is a shared, loaded "
          f"2-core VM: absolute rates are noisy, compare the columns of one row.\n",
          "![goodput against loss](goodput.png)\n"]
    for rtt in sorted({p["rtt_ms"] for p in points}):
        md.append(f"\n## RTT {rtt:g} ms\n")
        ccs = _ccs(points)
        md.append("| loss set | " + " | ".join(f"TCP {c} fastnet Mbit/s" for c in ccs) +
                  f" | loss measured | retrans | TCP {ccs[0]} iperf3 | "
                  "Mathis bound | UDP fastnet delivered | UDP loss | jitter ms | UDP iperf3 | "
                  "RTT measured ms |")
        md.append("|---:" * (10 + len(ccs)) + "|")
        tcp = _get(points, "fastnet", "tcp", rtt, ccs[0])
        by = {(p["tool"], p["proto"], p.get("cc"), p["loss_configured"]): p
              for p in points if p["rtt_ms"] == rtt}
        for t in tcp:
            p = t["loss_configured"]
            u = by.get(("fastnet", "udp", None, p), {})
            it = by.get(("iperf3", "tcp", ccs[0], p), {})
            iu = by.get(("iperf3", "udp", None, p), {})
            cells = []
            for c in ccs:
                q = by.get(("fastnet", "tcp", c, p))
                cells.append("-" if q is None else f"{_mbit(q['goodput_bps'])} "
                             f"[{_mbit(q['goodput_bps_min'])}-{_mbit(q['goodput_bps_max'])}]")
            bound = mathis_bps(t.get("mss") or 1348, rtt, p)
            md.append(
                f"| {_pct(p)} | {' | '.join(cells)} | {_pct(t.get('loss_measured'))} | "
                f"{t.get('retransmits') or 0:.0f} | {_mbit(it.get('goodput_bps'))} | "
                f"{'-' if math.isinf(bound) else _mbit(bound)} | {_mbit(u.get('goodput_bps'))} | "
                f"{_pct(u.get('loss_measured'))} | {u.get('jitter_ms') or 0:.2f} | "
                f"{_mbit(iu.get('goodput_bps'))} | {t.get('rtt_measured_ms') or 0:.1f} |")
    md.append("\n## Conclusions (generated from the data above)\n")
    md.append(conclusions(points, plan.udp_rate_bps))
    drops = max((p.get("delay_line_drops_total", 0) for p in points), default=0)
    md.append(f"\nPackets lost inside the lab rather than by the loss rule, whole run (TUN queue "
              f"overflows, full holding queues in the delay line, and UDP receive-buffer "
              f"overflows in either namespace, the receivers' included): {drops}.\n")
    path = os.path.join(out_dir, "loss.md")
    with open(path, "w") as f:
        f.write("\n".join(md) + "\n")
    return path


def load(out_dir: str) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """Read back ``out_dir``/loss.json: (plan fields, points, the command that measured them)."""
    with open(os.path.join(out_dir, "loss.json")) as f:
        data = json.load(f)
    return data["plan"], data["points"], data["command"]


def plot(points: list[dict[str, Any]], path: str) -> None:
    """Goodput against loss, one panel per RTT, log scale, with the Mathis bound."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rtts = sorted({p["rtt_ms"] for p in points})
    fig, axes = plt.subplots(1, len(rtts), figsize=(5 * len(rtts), 4), squeeze=False, sharey=True)
    for ax, rtt in zip(axes[0], rtts):
        ccs = _ccs(points)
        series: list[tuple[str, str, Optional[str], str]] = [("fastnet", "tcp", c, m) for c, m in zip(ccs, ("o-", "D-", "P-"))]
        series += [("iperf3", "tcp", ccs[0], "s--"), ("fastnet", "udp", None, "^-"),
                   ("iperf3", "udp", None, "v--")]
        for tool, proto, cc, style in series:
            pts = _get(points, tool, proto, rtt, cc)
            if not pts:
                continue
            xs = [max(p["loss_configured"], 1e-3) * 100 for p in pts]
            ys = [max(p["goodput_bps"], 1e3) / 1e6 for p in pts]
            ax.plot(xs, ys, style, label=f"{proto.upper()} {cc or ''} {tool}")
            if tool == "fastnet" and proto == "tcp":
                lo = [max(p["goodput_bps_min"], 1e3) / 1e6 for p in pts]
                hi = [max(p["goodput_bps_max"], 1e3) / 1e6 for p in pts]
                ax.fill_between(xs, lo, hi, alpha=0.2)
        tcp = _get(points, "fastnet", "tcp", rtt, ccs[0])
        mss = next((p["mss"] for p in tcp if p.get("mss")), 1348)
        lossy = [p["loss_configured"] for p in tcp if p["loss_configured"] > 0]
        if lossy:
            grid = [lossy[0] * (lossy[-1] / lossy[0]) ** (i / 40) for i in range(41)]
            ax.plot([g * 100 for g in grid], [mathis_bps(mss, rtt, g) / 1e6 for g in grid], "k:",
                    label="Mathis bound (MSS/RTT x 1.22/sqrt(p))")
        ax.axhline(points[0].get("link_mbit", 100.0), color="grey", lw=0.8, label="link rate")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"RTT {rtt:g} ms")
        ax.set_xlabel("loss configured (%; 0 drawn at 0.1)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("goodput (Mbit/s)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("TCP vs UDP under loss (shared, loaded 2-core VM: noisy)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
