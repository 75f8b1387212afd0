"""The built-in interceptors from ``python -m fastnet.serve``'s command line:
``--log-calls text|json``, ``--auth-tokens FILE``, ``--rate-limit 100/s``
(and ``--rate-limit-by``, ``--message-rate-limit``), for every protocol
with an adapter (:data:`fastnet.interceptors.ADAPTERS`).

The token file: one credential a line, ``TOKEN IDENTITY [PATTERN ...]``,
where the patterns (shell-style, as ``/pkg.Service/*``) are the methods
that identity may call (none: every method); ``#`` starts a comment. A
token is accepted as ``authorization: Bearer TOKEN`` or ``x-api-key``.
"""
from __future__ import annotations

import argparse
import atexit
import logging
import sys
from typing import Any, Optional

from .. import limits
from .builtins import (AuthInterceptor, LineWriter, LoggingInterceptor, RateLimitInterceptor,
                       allow_per_identity)
from .core import Chain, Interceptor

__all__ = ["add_options", "chain_from_args", "load_tokens", "rate"]

_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


def rate(text: str) -> tuple[float, Optional[float]]:
    """``N/s``, ``N/m``, ``N/h`` or ``N`` (a second), optionally
    ``:BURST``: (tokens a second, burst or None)."""
    spec, _, burst_text = text.strip().partition(":")
    amount, _, per = spec.partition("/")
    try:
        value = float(amount)
        burst = float(burst_text) if burst_text else None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a rate: use N/s, N/m or N/h, optionally :BURST (100/s:200)") from None
    if per not in ("", *_PER):
        raise argparse.ArgumentTypeError(f"{text!r}: the unit is /s, /m or /h")
    if not value > 0 or (burst is not None and burst < 1):
        raise argparse.ArgumentTypeError(f"{text!r}: the rate must be positive, the burst at least 1")
    return value / _PER.get(per or "s", 1.0), burst


def load_tokens(path: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(token -> identity, identity -> method patterns) from a token file;
    ValueError names the line that is wrong."""
    tokens: dict[str, str] = {}
    rules: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) < 2:
                raise ValueError(f"{path}:{number}: expected TOKEN IDENTITY [PATTERN ...]")
            token, identity, patterns = words[0], words[1], words[2:]
            if token in tokens:
                raise ValueError(f"{path}:{number}: this token is already given above")
            tokens[token] = identity
            rules.setdefault(identity, []).extend(patterns or ["*"])
    if not tokens:
        raise ValueError(f"{path}: no tokens")
    return tokens, rules


def add_options(p: argparse.ArgumentParser) -> None:
    """The interceptor options, in their own argument group."""
    group = p.add_argument_group(
        "interceptors", "around every call of the protocols that have an adapter "
        "(wire, http, grpc), in this order: logging, authentication, rate limiting")
    group.add_argument("--log-calls", choices=("text", "json"), default=None,
                       help="log one line per call (method, peer, status, duration, "
                            "messages and bytes each way) as text or JSON lines")
    group.add_argument("--log-calls-level", default="INFO",
                       choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                       help="the level of those lines (default: %(default)s)")
    group.add_argument("--log-calls-to", metavar="FILE", default=None,
                       help="write those lines to FILE ('-': stderr) directly, buffered, "
                            "flushed at least every "
                            f"{limits.CALL_LOG_FLUSH_INTERVAL:g} s while calls come, instead "
                            "of through logging (~1 us a line instead of ~30)")
    group.add_argument("--auth-tokens", metavar="FILE", default=None,
                       help="accept only the tokens in FILE (lines: TOKEN IDENTITY [PATTERN ...]; "
                            "gRPC health and reflection stay public)")
    group.add_argument("--rate-limit", type=rate, metavar="RATE", default=None,
                       help="calls started per key, e.g. 100/s or 6000/m, optionally :BURST")
    group.add_argument("--message-rate-limit", type=rate, metavar="RATE", default=None,
                       help="request messages per key (streams), e.g. 1000/s")
    group.add_argument("--rate-limit-by", choices=("identity", "peer", "method"),
                       default="identity",
                       help="the key of the rate limits: the authenticated identity (else "
                            "the peer's host), the peer's host, or the method "
                            "(default: %(default)s)")


def _open_log(path: str) -> Any:
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"--log-calls-to {path}: {exc.strerror}") from None


def chain_from_args(args: argparse.Namespace) -> Optional[Chain]:
    """The chain the options ask for, or None if they ask for none.
    ValueError for a token file that cannot be used."""
    interceptors: list[Interceptor] = []
    if args.log_calls_to and not args.log_calls:
        raise ValueError("--log-calls-to needs --log-calls text|json")
    if args.log_calls:
        sink = None
        if args.log_calls_to:
            sink = LineWriter(sys.stderr if args.log_calls_to == "-" else _open_log(args.log_calls_to))
            atexit.register(sink.flush)
        interceptors.append(LoggingInterceptor(args.log_calls, sink=sink,
                                               level=getattr(logging, args.log_calls_level)))
    if args.auth_tokens:
        try:
            tokens, rules = load_tokens(args.auth_tokens)
        except OSError as exc:
            raise ValueError(f"--auth-tokens {args.auth_tokens}: {exc.strerror}") from None
        interceptors.append(AuthInterceptor(tokens, allow=allow_per_identity(rules)))
    if args.rate_limit or args.message_rate_limit:
        calls: Any = args.rate_limit or (None, None)
        messages: Any = args.message_rate_limit or (None, None)
        interceptors.append(RateLimitInterceptor(calls[0], calls[1], key=args.rate_limit_by,
                                                 message_rate=messages[0],
                                                 message_burst=messages[1]))
    return Chain(interceptors) if interceptors else None
