"""``python -m fastnet.serve``: run a fastnet server from the command line.

Prints one line naming the address, protocol and engine, then serves.
SIGTERM or SIGINT starts a graceful shutdown (stop accepting, finish what
was received, close idle connections); a second SIGINT forces it. Exit
status 0 when everything drained, 1 when connections had to be forced at
the --drain-timeout deadline. SIGUSR1 logs the counters once.

The protocols, and each one's own options, come from the registry
(fastnet.server.units()): a flag of one protocol given with another is an
error, as are combinations that mean nothing (the unit's check); every
error names the flag and what it accepts, and exits 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from typing import Any, Optional, Sequence

from . import limits, native
from .engine import ENGINE_NAMES
from .errors import EngineError, NativeUnavailable
from .interceptors import cli as interceptor_cli
from .interceptors import intercept
from .server import ProtocolUnit, options
from .server import get as get_unit
from .server import units as server_units


def _tcp_keepalive(text: str) -> Optional[tuple[int, int, int]]:
    if text.strip().lower() in ("off", "none"):
        return None
    parts = text.split(",")
    try:
        idle, interval, count = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError("expected IDLE,INTERVAL,COUNT, e.g. 60,10,6") from None
    if min(idle, interval, count) < 1:
        raise argparse.ArgumentTypeError("each of IDLE,INTERVAL,COUNT must be >= 1")
    return idle, interval, count


def _handler(text: str) -> object:
    """module:function -> the function."""
    module, _, name = text.partition(":")
    if not module or not name:
        raise argparse.ArgumentTypeError("expected MODULE:FUNCTION")
    try:
        handler = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot load {text}: {exc}") from None
    if not callable(handler):
        raise argparse.ArgumentTypeError(
            f"{text} is a {type(handler).__name__}, not a function")
    return handler


def _common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=options.port, default=9000,
                   help="port to bind, 1-65535, or 0 for any free port (default: %(default)s)")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="c",
                   help="c: epoll in C; python: select.epoll; threaded: a thread per "
                        "connection (default: %(default)s)")
    p.add_argument("--handler", type=_handler, metavar="MODULE:FUNCTION",
                   help="handle each message with this Python function (plain or "
                        "async def, (conn, message) -> reply); default: echo")
    p.add_argument("--max-connections", type=options.count,
                   default=limits.DEFAULT_MAX_CONNECTIONS, metavar="N",
                   help="connections served at once, at least 1 (default: %(default)s)")
    p.add_argument("--backlog", type=options.count0, default=limits.DEFAULT_BACKLOG,
                   metavar="N",
                   help="connections over --max-connections that wait, accepted "
                        "but unread, for a slot, oldest first (default: %(default)s)")
    p.add_argument("--queue-timeout", type=options.seconds, default=limits.DEFAULT_QUEUE_TIMEOUT,
                   metavar="SECONDS",
                   help="seconds a connection may wait in --backlog (default: %(default)s)")
    p.add_argument("--listen-backlog", type=options.count, default=limits.DEFAULT_LISTEN_BACKLOG,
                   metavar="N",
                   help="listen(2) backlog: the kernel's queue of completed "
                        "handshakes not yet accepted (default: %(default)s)")
    p.add_argument("--drain-timeout", type=options.seconds, default=limits.DEFAULT_DRAIN_TIMEOUT,
                   metavar="SECONDS",
                   help="seconds a graceful shutdown waits for busy connections "
                        "before forcing them (default: %(default)s)")
    p.add_argument("--idle-timeout", type=options.off_or_seconds, default=argparse.SUPPRESS,
                   metavar="SECONDS",
                   help="close a peer silent this many seconds; 0 or off: never "
                        f"(default: {limits.DEFAULT_IDLE_TIMEOUT:g}; resp: never, "
                        "as Redis's timeout 0)")
    p.add_argument("--keepalive-interval", type=options.off_or_seconds, default=None,
                   metavar="SECONDS",
                   help="on protocols with a keep-alive probe: probe a peer silent "
                        "this long, close it if silent one more interval (default: off)")
    p.add_argument("--tcp-keepalive", type=_tcp_keepalive, default=None,
                   metavar="IDLE,INTERVAL,COUNT",
                   help="the kernel's TCP keep-alive on every connection: seconds "
                        "idle before the first probe, seconds between probes, "
                        "probes before reset (default: off)")
    p.add_argument("--send-timeout", type=options.off_or_seconds,
                   default=limits.DEFAULT_SEND_TIMEOUT, metavar="SECONDS",
                   help="abort a connection whose output made no progress this many "
                        "seconds (a peer that stopped reading); 0 or off: never "
                        "(default: %(default)g)")
    p.add_argument("--stats-interval", type=options.off_or_seconds, default=None,
                   metavar="SECONDS",
                   help="log the counters every this many seconds (default: off)")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="(default: %(default)s)")


def _unit_options(units: dict[str, ProtocolUnit]) -> dict[str, tuple[options.Option, list[str]]]:
    """flag -> (the Option, the protocols declaring it), each flag once."""
    found: dict[str, tuple[options.Option, list[str]]] = {}
    for name, unit in sorted(units.items()):
        for option in unit.options:
            if option.flag in found:
                found[option.flag][1].append(name)
            else:
                found[option.flag] = (option, [name])
    return found


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m fastnet.serve``: the common options,
    then each registered protocol's own (fastnet.server.units())."""
    units = server_units()
    p = argparse.ArgumentParser(
        prog="python -m fastnet.serve",
        description="Serve one of fastnet's registered protocols. "
                    "Without a handler each message is echoed back.")
    p.add_argument("--protocol", choices=sorted(units), default="echo",
                   help="; ".join(f"{name}: {unit.help}" for name, unit in sorted(units.items()))
                   + " (default: %(default)s)")
    _common_options(p)
    interceptor_cli.add_options(p)
    group = p.add_argument_group("protocol options", "each applies only to the protocols named")
    for flag, (option, names) in _unit_options(units).items():
        kwargs = dict(option.kwargs)
        help_text = str(kwargs.pop("help", "")).replace("%(default)s", str(option.default))
        kwargs.pop("default", None)
        group.add_argument(flag, default=argparse.SUPPRESS,
                           help=f"[{', '.join(names)}] {help_text}", **kwargs)
    return p


def _unit_values(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 unit: ProtocolUnit) -> dict[str, Any]:
    """This unit's option values (given, or its defaults); a protocol
    option given for a protocol that does not declare it is an error."""
    own = {option.dest for option in unit.options}
    for flag, (option, names) in _unit_options(server_units()).items():
        if option.dest not in own and hasattr(args, option.dest):
            parser.error(f"{flag} does not apply to --protocol {unit.name} "
                         f"(it is for: {', '.join(names)})")
    values = {option.dest: getattr(args, option.dest, option.default) for option in unit.options}
    complaint = unit.check(values)
    if complaint:
        parser.error(complaint)
    return values


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the server; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    unit = get_unit(args.protocol)
    if args.handler is not None and not unit.takes_handler:
        parser.error(f"--handler does not apply to --protocol {unit.name}")
    values = _unit_values(parser, args, unit)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server_options: dict[str, Any] = dict(
        engine=args.engine, max_connections=args.max_connections,
        backlog=args.backlog, queue_timeout=args.queue_timeout,
        keepalive_interval=args.keepalive_interval,
        tcp_keepalive=args.tcp_keepalive, drain_timeout=args.drain_timeout,
        stats_interval=args.stats_interval, send_timeout=args.send_timeout)
    if hasattr(args, "idle_timeout"):
        server_options["idle_timeout"] = args.idle_timeout
    try:
        chain = interceptor_cli.chain_from_args(args)
        served = unit if chain is None else intercept(unit.name, chain)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        server = served.build_server(values, server_options)
    except NativeUnavailable as exc:
        print(f"fastnet: {exc}; try --engine python", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"fastnet: {exc}", file=sys.stderr)
        return 2
    try:
        listener = server.listen(args.host, args.port, protocol=served, handler=args.handler,
                                 backlog=args.listen_backlog)
    except (EngineError, OSError) as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"fastnet: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        print(f"fastnet: {exc}", file=sys.stderr)
        return 2

    signal.signal(signal.SIGUSR1,
                  lambda signum, frame: server.engine.call_soon_threadsafe(server.log_stats))
    # A SIGINT/SIGTERM right after the banner (before run() installs its
    # own, identical handlers) is a graceful shutdown too, not a traceback.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: server.shutdown())
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    print(f"fastnet serving {unit.name} on {host}:{listener.port} "
          f"(engine {args.engine}, backend {native.backend})", flush=True)
    server.run()  # SIGINT/SIGTERM drain it; a second one forces
    return 1 if server.forced_closes else 0


if __name__ == "__main__":
    sys.exit(main())
