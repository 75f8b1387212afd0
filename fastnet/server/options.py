"""Command-line options as protocol units declare them, and the argument
types they share with ``python -m fastnet.serve``.

Every error message speaks in the user's words (the flag and what it
accepts), never in the Python argument's name: argparse prefixes it with
the flag it was given for.
"""
from __future__ import annotations

import argparse
from typing import Any, Optional

_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
SIZE_FORMATS = "a whole number of bytes, optionally with K, M or G (powers of 1024), e.g. 65536, 64K, 16M"


def size(text: str) -> int:
    """A positive byte count: digits, optionally followed by K, M or G
    (powers of 1024) and an optional B."""
    clean = text.strip().lower().removesuffix("b")
    scale = _UNITS.get(clean[-1:], 1)
    digits = clean[:-1] if clean[-1:] in _UNITS else clean
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use {SIZE_FORMATS}")
    value = int(digits) * scale
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1 byte")
    return value


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
    return value


def count(text: str) -> int:
    """A whole number >= 1."""
    return _whole(text, 1)


def count0(text: str) -> int:
    """A whole number >= 0."""
    return _whole(text, 0)


def port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"{value} is not a port: use 1-65535, or 0 for any free port")
    return value


def seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def off_or_seconds(text: str) -> Optional[float]:
    """Seconds, or 0/"off" for never."""
    if text.strip().lower() in ("0", "off", "none"):
        return None
    return seconds(text)


class Option:
    """One command-line option of a protocol unit: ``add_argument``'s
    arguments (``flag``, then type, default, help, choices, action, ...).

    ``python -m fastnet.serve`` adds each flag once (units may share an
    Option object, as line and resp share --max-line), refuses a flag given
    with a protocol that does not declare it, and hands the unit the values
    of its own options (given or default) by ``dest``.
    """

    __slots__ = ("flag", "kwargs")

    def __init__(self, flag: str, **kwargs: Any) -> None:
        if not flag.startswith("--"):
            raise ValueError(f"an option flag starts with '--', not {flag!r}")
        self.flag = flag
        self.kwargs = kwargs

    @property
    def dest(self) -> str:
        """The attribute name argparse gives it (``--max-frame``: max_frame)."""
        return str(self.kwargs.get("dest", self.flag[2:].replace("-", "_")))

    @property
    def default(self) -> Any:
        """The value when the flag is not given."""
        if self.kwargs.get("action") == "store_true":
            return self.kwargs.get("default", False)
        return self.kwargs.get("default")

    def __repr__(self) -> str:
        return f"Option({self.flag!r})"
