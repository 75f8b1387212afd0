"""What both HTTP/1.1 twins return: heads as offsets into the caller's buffer."""
from __future__ import annotations

from typing import NamedTuple, Union

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


#: Words per simple request in ``RequestHeadParser.simple_requests``'s list,
#: before its field spans (csrc/http1.h's FN_HTTP1_REQ_WORDS): end, method
#: start and end, target start and end, field count.
REQ_WORDS = 6

#: The field names that make a request not simple, by length (Host: one).
_NOT_SIMPLE = {6: b"expect", 7: b"upgrade", 10: b"connection", 14: b"content-length",
               17: b"transfer-encoding"}


def is_simple(buf: Union[bytes, bytearray, memoryview], spans: HeaderSpans) -> bool:
    """Exactly one Host and none of Connection, Expect, Upgrade,
    Content-Length, Transfer-Encoding (names looked at by length first)."""
    hosts = 0
    names = _NOT_SIMPLE
    for a, b, _, _ in spans:
        if b - a == 4:
            if bytes(buf[a:b]).lower() == b"host":
                hosts += 1
            continue
        name = names.get(b - a)
        if name is not None and bytes(buf[a:b]).lower() == name:
            return False
    return hosts == 1
