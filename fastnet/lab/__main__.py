"""``python -m fastnet.lab {handshake,capture,loss}``: the network lab's command line."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Optional

from ._sys import LabPermissionError, require_tools


def _handshake(args: argparse.Namespace) -> int:
    from .annotate import format_text
    from .handshake import run_handshake

    t0 = time.monotonic()
    result = run_handshake(args.write, rtt_ms=args.rtt)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for a in result["packets"]:
        print(format_text(a))
    c = result["connection"]
    rtt = c["handshake_rtt_s"]
    print()
    print(f"handshake RTT (SYN to the ACK completing it): {_us(rtt)}; "
          f"SYN to SYN-ACK: {_us(c['syn_to_synack_s'])}")
    print(f"final states: client {c['client_state']}, server {c['server_state']}; "
          f"{len(result['packets'])} packets in {time.monotonic() - t0:.2f} s"
          + (f"; pcap written to {args.write}" if args.write else ""))
    return 0


def _us(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} us"


def _capture(args: argparse.Namespace) -> int:
    from .annotate import format_text
    from .capture import capture_and_annotate

    expr = args.filter or (f"port {args.port}" if args.port is not None else "")

    def show(a: dict[str, Any]) -> None:
        print(json.dumps(a) if args.json else format_text(a), flush=True)

    try:
        capture_and_annotate(expr, iface=args.iface, count=args.count, timeout=args.timeout,
                             pcap_path=args.write, on_packet=show,
                             on_ready=lambda: print(f"fastnet.lab: capturing on {args.iface}, "
                                                    f"filter {expr!r}", file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        pass
    return 0


def _loss(args: argparse.Namespace) -> int:
    from . import loss, report

    if args.render:
        fields, points, command = report.load(args.render)
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in fields.items()}
        plan = loss.Plan(**kwargs)
        print(f"report written to {report.write(points, args.render, plan, command)}")
        return 0
    plan = loss.QUICK if args.quick else loss.Plan()
    if args.seconds:
        plan.seconds = args.seconds
    if args.reps:
        plan.reps = args.reps
    if args.no_iperf3:
        plan.iperf3 = False
    if plan.iperf3:
        require_tools("iperf3")
    command = "python -m fastnet.lab loss" + (" --quick" if args.quick else "") + \
        (f" --out {args.out}" if args.out else "")

    def save(points: list[dict[str, Any]]) -> None:
        if args.out:
            path = report.write(points, args.out, plan, command)
            print(f"report written to {path}", file=sys.stderr, flush=True)

    points = loss.run(plan, log=None if args.json else loss.main_log, on_rep=save)
    if args.json:
        for p in points:
            print(json.dumps(p))
    if not args.json:
        print(report.conclusions(points, plan.udp_rate_bps))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastnet.lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("handshake", help="one TCP connection on loopback, every packet annotated")
    h.add_argument("--json", action="store_true", help="print the annotations as JSON")
    h.add_argument("-w", "--write", metavar="FILE", help="also write the packets to a pcap file")
    h.add_argument("--rtt", type=float, metavar="MS",
                   help="run between two network namespaces with this RTT (the delay line)")
    c = sub.add_parser("capture", help="capture and annotate TCP or UDP traffic on an interface")
    c.add_argument("--port", type=int, help="the port to capture (TCP or UDP)")
    c.add_argument("--filter", help="a capture expression instead of --port (e.g. 'tcp and host 10.0.0.1')")
    c.add_argument("--iface", default="lo", help="interface (default lo)")
    c.add_argument("--count", type=int, help="stop after N packets")
    c.add_argument("--timeout", type=float, help="stop after S seconds")
    c.add_argument("--json", action="store_true", help="one JSON object per packet")
    c.add_argument("-w", "--write", metavar="FILE", help="also write the packets to a pcap file")
    lo = sub.add_parser("loss", help="TCP against UDP under loss and delay, iperf3 as reference")
    lo.add_argument("--quick", action="store_true", help="10 ms RTT, 0%% and 10%% loss, 1 s each")
    lo.add_argument("--json", action="store_true", help="one JSON object per measured point")
    lo.add_argument("--out", help="write loss.md, loss.json and goodput.png to this directory")
    lo.add_argument("--seconds", type=float, help="seconds per measurement")
    lo.add_argument("--reps", type=int, help="repetitions of the whole sweep")
    lo.add_argument("--no-iperf3", action="store_true", help="skip the iperf3 reference runs")
    lo.add_argument("--render", metavar="DIR", help="only rewrite DIR's report from its loss.json")
    args = p.parse_args(argv)
    try:
        return {"handshake": _handshake, "capture": _capture, "loss": _loss}[args.cmd](args)
    except LabPermissionError as exc:
        print(f"fastnet.lab: {exc}", file=sys.stderr)
        return 77
    except KeyboardInterrupt:
        print("fastnet.lab: interrupted (namespaces removed)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
