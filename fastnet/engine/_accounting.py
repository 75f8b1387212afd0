"""What the two Python engines (PyEngine, ThreadedEngine) both keep: the
counters behind ``Engine.stats()`` and the idle clock behind
``set_idle_timeout``/``on_idle``. The C engine keeps both in C
(csrc/loop.c), with the same rules; neither class locks (the threaded
engine calls them under its own lock).
"""
from __future__ import annotations

import collections
from typing import Generic, Optional, Protocol, TypeVar


class Counters:
    """The engine counters; ``open`` is derived (accepted + connected -
    closed: a connect that fails counts in none of them)."""

    __slots__ = ("accepted", "connected", "closed", "bytes_in", "bytes_out", "messages_in")

    def __init__(self) -> None:
        self.accepted = self.connected = self.closed = 0
        self.bytes_in = self.bytes_out = self.messages_in = 0

    def as_stats(self) -> dict[str, int]:
        """The dict Engine.stats() returns."""
        return {
            "accepted": self.accepted,
            "connected": self.connected,
            "closed": self.closed,
            "open": self.accepted + self.connected - self.closed,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "messages_in": self.messages_in,
        }


class _Quiet(Protocol):
    last_in: float  # when its last byte arrived (or it opened)


C = TypeVar("C", bound=_Quiet)


class IdleClock(Generic[C]):
    """Idle detection at the cost it has in csrc/loop.c.

    ``marks`` holds every open, non-closing connection, oldest idle mark
    first (its last byte, its accept or connect, or its last report). A read
    moves its connection to the end, O(1) (``marks[c] = now;
    marks.move_to_end(c)``, inlined by the engines' read paths). Marks come
    from a clock that never goes back, so the dict stays in deadline order
    and a check looks only at its head: the cost grows with the connections
    that expire, never with the connections that are open.
    """

    __slots__ = ("marks", "timeout")

    def __init__(self) -> None:
        self.marks: collections.OrderedDict[C, float] = collections.OrderedDict()
        self.timeout: Optional[float] = None

    def set_timeout(self, seconds: Optional[float]) -> None:
        """None or 0: off; else at least a millisecond, as on the C engine."""
        self.timeout = max(0.001, seconds) if seconds else None

    def deadline(self) -> Optional[float]:
        """When the connection quiet for longest reaches the timeout (None:
        no timeout, or no connection)."""
        timeout = self.timeout
        if timeout is None or not self.marks:
            return None
        return next(iter(self.marks.values())) + timeout

    def wait(self, timeout: Optional[float], now: float) -> Optional[float]:
        """``timeout`` (None: no limit), shortened to the idle deadline."""
        deadline = self.deadline()
        if deadline is None:
            return timeout
        until = max(0.0, deadline - now)
        return until if timeout is None else min(timeout, until)

    def due(self, now: float) -> list[tuple[C, float]]:
        """The connections whose silence reached the timeout, with how long
        each has been silent; each is marked ``now`` and moves to the end,
        so the scan stops at the first one that has not expired. The caller
        reports them, skipping any that began closing meanwhile."""
        timeout, marks = self.timeout, self.marks
        due: list[tuple[C, float]] = []
        if timeout is None:
            return due
        while marks:
            c, mark = next(iter(marks.items()))
            if mark + timeout > now:
                break
            marks[c] = now
            marks.move_to_end(c)
            due.append((c, now - c.last_in))
        return due
