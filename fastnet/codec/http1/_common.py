"""What both HTTP/1.1 twins return: heads as offsets into the caller's buffer."""
from __future__ import annotations

from typing import NamedTuple

#: (name start, name end, value start, value end) per field, in order.
HeaderSpans = list[tuple[int, int, int, int]]


class RequestHead(NamedTuple):
    """A parsed request head: offsets into the buffer given to parse().

    start is where the request line begins (after skipped empty lines),
    end just past the blank line; method and target are [start, end)
    pairs; minor is the HTTP/1.x minor version; headers the field spans."""

    start: int
    end: int
    method_start: int
    method_end: int
    target_start: int
    target_end: int
    minor: int
    headers: HeaderSpans


class ResponseHead(NamedTuple):
    """A parsed response head: offsets into the buffer given to parse()."""

    start: int
    end: int
    minor: int
    status: int
    reason_start: int
    reason_end: int
    headers: HeaderSpans
