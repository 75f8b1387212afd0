"""``python -m fastnet.serve``: run a fastnet server from the command line.

Prints one line naming the address, protocol and engine, then serves.
SIGTERM or SIGINT starts a graceful shutdown (stop accepting, finish what
was received, close idle connections); a second SIGINT forces it. Exit
status 0 when everything drained, 1 when connections had to be forced at
the --drain-timeout deadline. SIGUSR1 logs the counters once.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from typing import Optional, Sequence

from . import limits, native
from .engine import ENGINE_NAMES
from .errors import EngineError, NativeUnavailable
from .resp import RespServer
from .server import PROTOCOLS, Server


def _size(text: str) -> int:
    """A byte count, optionally with a K/M/G suffix (powers of 1024)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b")
    scale = units.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in units else text
    try:
        value = int(digits) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _off_or_seconds(text: str) -> Optional[float]:
    """Seconds, or 0/"off" for never."""
    if text.strip().lower() in ("0", "off", "none"):
        return None
    return _seconds(text)


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
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot load {text}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m fastnet.serve``."""
    p = argparse.ArgumentParser(
        prog="python -m fastnet.serve",
        description="Serve one of fastnet's built-in protocols. "
                    "Without a handler each message is echoed back.")
    p.add_argument("--protocol", choices=sorted([*PROTOCOLS, "resp"]), default="echo",
                   help="echo: raw bytes back; frame: length-prefixed messages; "
                        "line: \\r\\n-terminated lines; resp: a Redis-protocol "
                        "in-memory key-value store (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=9000,
                   help="port to bind, 0 for any free port (default: %(default)s)")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="c",
                   help="c: epoll in C; python: select.epoll; threaded: a thread per "
                        "connection (default: %(default)s)")
    p.add_argument("--max-frame", type=_size, default=limits.DEFAULT_MAX_FRAME,
                   help="largest frame payload accepted, e.g. 1M (default: 16M)")
    p.add_argument("--max-line", type=_size, default=limits.DEFAULT_MAX_LINE,
                   help="longest line accepted, and resp's longest inline "
                        "command (default: 64K)")
    p.add_argument("--proto-max-bulk-len", type=_size, default=limits.DEFAULT_RESP_MAX_BULK_LEN,
                   help="resp: longest bulk argument a client may declare, as "
                        "Redis's proto-max-bulk-len (default: 512M)")
    p.add_argument("--max-multibulk-len", type=_size,
                   default=limits.DEFAULT_RESP_MAX_MULTIBULK_LEN,
                   help="resp: most arguments one command may declare (default: %(default)s)")
    p.add_argument("--client-query-buffer-limit", type=_size,
                   default=limits.DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
                   help="resp: most memory one unfinished command may hold before "
                        "the client is closed, as Redis's client-query-buffer-limit "
                        "(default: 1G)")
    p.add_argument("--frame-header", choices=("be32", "varint"), default="be32",
                   help="frame length header (default: %(default)s)")
    p.add_argument("--bare-lf", action="store_true",
                   help="line protocol: accept a bare \\n as the line end too")
    p.add_argument("--handler", type=_handler, metavar="MODULE:FUNCTION",
                   help="handle each message with this Python function (plain or "
                        "async def, (conn, message) -> reply); default: echo")
    p.add_argument("--max-connections", type=int, default=limits.DEFAULT_MAX_CONNECTIONS,
                   help="connections served at once (default: %(default)s)")
    p.add_argument("--backlog", type=int, default=limits.DEFAULT_BACKLOG,
                   help="connections over --max-connections that wait, accepted "
                        "but unread, for a slot, oldest first (default: %(default)s)")
    p.add_argument("--queue-timeout", type=_seconds, default=limits.DEFAULT_QUEUE_TIMEOUT,
                   help="seconds a connection may wait in --backlog (default: %(default)s)")
    p.add_argument("--listen-backlog", type=int, default=limits.DEFAULT_LISTEN_BACKLOG,
                   help="listen(2) backlog: the kernel's queue of completed "
                        "handshakes not yet accepted (default: %(default)s)")
    p.add_argument("--drain-timeout", type=_seconds, default=limits.DEFAULT_DRAIN_TIMEOUT,
                   help="seconds a graceful shutdown waits for busy connections "
                        "before forcing them (default: %(default)s)")
    p.add_argument("--idle-timeout", type=_off_or_seconds, default=argparse.SUPPRESS,
                   help="close a peer silent this many seconds; 0 or off: never "
                        f"(default: {limits.DEFAULT_IDLE_TIMEOUT:g}; resp: never, "
                        "as Redis's timeout 0)")
    p.add_argument("--keepalive-interval", type=_off_or_seconds, default=None,
                   help="on protocols with a keep-alive probe: probe a peer silent "
                        "this long, close it if silent one more interval (default: off)")
    p.add_argument("--tcp-keepalive", type=_tcp_keepalive, default=None,
                   metavar="IDLE,INTERVAL,COUNT",
                   help="the kernel's TCP keep-alive on every connection: seconds "
                        "idle before the first probe, seconds between probes, "
                        "probes before reset (default: off)")
    p.add_argument("--send-timeout", type=_off_or_seconds, default=limits.DEFAULT_SEND_TIMEOUT,
                   help="abort a connection whose output made no progress this many "
                        "seconds (a peer that stopped reading); 0 or off: never "
                        "(default: %(default)g)")
    p.add_argument("--stats-interval", type=_off_or_seconds, default=None,
                   help="log the counters every this many seconds (default: off)")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="(default: %(default)s)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the server; return the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    resp = args.protocol == "resp"
    if resp and args.handler is not None:
        print("fastnet: --handler does not apply to resp (register commands with "
              "RespServer.command)", file=sys.stderr)
        return 2
    default_idle = None if resp else limits.DEFAULT_IDLE_TIMEOUT
    options = dict(engine=args.engine, max_connections=args.max_connections,
                   backlog=args.backlog, queue_timeout=args.queue_timeout,
                   idle_timeout=getattr(args, "idle_timeout", default_idle),
                   keepalive_interval=args.keepalive_interval,
                   tcp_keepalive=args.tcp_keepalive, drain_timeout=args.drain_timeout,
                   stats_interval=args.stats_interval, send_timeout=args.send_timeout)
    server: Server
    try:
        if resp:
            server = RespServer(max_bulk_len=args.proto_max_bulk_len,
                                max_multibulk_len=args.max_multibulk_len,
                                max_inline_len=args.max_line,
                                client_query_buffer_limit=args.client_query_buffer_limit,
                                **options)
            listener = server.listen(args.host, args.port, backlog=args.listen_backlog)
        else:
            server = Server(max_frame=args.max_frame, max_line=args.max_line,
                            bare_lf=args.bare_lf, frame_header=args.frame_header, **options)
            listener = server.listen(args.host, args.port, protocol=args.protocol,
                                     handler=args.handler,  # type: ignore[arg-type]
                                     backlog=args.listen_backlog)
    except NativeUnavailable as exc:
        print(f"fastnet: {exc}; try --engine python", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"fastnet: {exc}", file=sys.stderr)
        return 2
    except (EngineError, OSError) as exc:
        print(f"fastnet: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2

    def on_signal(signum: int, frame: object) -> None:
        logging.getLogger("fastnet.serve").info("%s: shutting down", signal.Signals(signum).name)
        server.shutdown()  # a second one forces

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGUSR1,
                  lambda signum, frame: server.engine.call_soon_threadsafe(server.log_stats))
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    print(f"fastnet serving {args.protocol} on {host}:{listener.port} "
          f"(engine {args.engine}, backend {native.backend})", flush=True)
    server.run()
    return 1 if server.forced_closes else 0


if __name__ == "__main__":
    sys.exit(main())
