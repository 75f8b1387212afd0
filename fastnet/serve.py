"""``python -m fastnet.serve``: run a fastnet server from the command line.

Prints one line naming the address, protocol and engine, then serves until
SIGINT or SIGTERM, and exits 0.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Optional, Sequence

from . import limits, native
from .engine import ENGINE_NAMES
from .errors import EngineError, NativeUnavailable
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


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m fastnet.serve``."""
    p = argparse.ArgumentParser(
        prog="python -m fastnet.serve",
        description="Serve one of fastnet's built-in protocols. "
                    "Without a handler each message is echoed back.")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="echo",
                   help="echo: raw bytes back; frame: length-prefixed messages; "
                        "line: \\r\\n-terminated lines (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=9000,
                   help="port to bind, 0 for any free port (default: %(default)s)")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="c",
                   help="c: epoll in C; python: select.epoll; threaded: a thread per "
                        "connection (default: %(default)s)")
    p.add_argument("--max-frame", type=_size, default=limits.DEFAULT_MAX_FRAME,
                   help="largest frame payload accepted, e.g. 1M (default: 16M)")
    p.add_argument("--max-line", type=_size, default=limits.DEFAULT_MAX_LINE,
                   help="longest line accepted (default: 64K)")
    p.add_argument("--frame-header", choices=("be32", "varint"), default="be32",
                   help="frame length header (default: %(default)s)")
    p.add_argument("--bare-lf", action="store_true",
                   help="line protocol: accept a bare \\n as the line end too")
    p.add_argument("--listen-backlog", type=int, default=limits.DEFAULT_LISTEN_BACKLOG,
                   help="listen(2) backlog: the kernel's queue of completed "
                        "handshakes (default: %(default)s)")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="(default: %(default)s)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the server; return the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = Server(engine=args.engine, max_frame=args.max_frame,
                        max_line=args.max_line, bare_lf=args.bare_lf,
                        frame_header=args.frame_header)
        listener = server.listen(args.host, args.port, protocol=args.protocol,
                                 backlog=args.listen_backlog)
    except NativeUnavailable as exc:
        print(f"fastnet: {exc}; try --engine python", file=sys.stderr)
        return 2
    except (EngineError, OSError) as exc:
        print(f"fastnet: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2

    def on_signal(signum: int, frame: object) -> None:
        logging.getLogger("fastnet.serve").info("%s: stopping", signal.Signals(signum).name)
        server.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    print(f"fastnet serving {args.protocol} on {host}:{listener.port} "
          f"(engine {args.engine}, backend {native.backend})", flush=True)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
