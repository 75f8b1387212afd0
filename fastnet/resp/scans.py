"""HSCAN, SSCAN and ZSCAN: cursors over one collection.

What Redis shows, reproduced: a collection in a compact encoding (a hash
or sorted set in a listpack, a set of integers in an intset) is answered
whole in one reply with cursor 0, in the encoding's order (insertion order
for a hash, score order for a sorted set, numeric order for an intset),
whatever COUNT says. A larger one is walked COUNT elements at a time.

The cursor of a large collection is a position in a fixed order of its
elements: the 64-bit hash of each element (Python's, stable for the
process as Redis's cursors are for its own). A call returns the elements
whose hash lies in [cursor, next) and answers next (0 at the end), so the
guarantee is Redis's: an element present for the whole iteration is
returned exactly once (colliding hashes are returned together), one added
or removed meanwhile may or may not be. The sorted hash index is built when
an iteration starts (cursor 0) or when a cursor comes for a collection not
indexed, and kept for the few collections scanned last (``INDEXED``), so a
call is a bisect plus COUNT steps; elements removed since the index was
built are skipped. Redis's cursor walks hash buckets instead: the numbers
differ, which no client can rely on.
"""
from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from typing import Any, Callable, Collection, Optional

from ..codec.resp._common import string2ll
from ..codec.resp._encode import encode_reply
from .encodings import is_hash_listpack, is_intset
from .members import Members
from .commands import (NOT_INTEGER, SYNTAX_ERROR, Command, Session, Token, _cstr, _error, _option,
                       _parse_cursor, _typed, compile_glob, glob_match)

__all__ = ["INDEXED", "SCAN_COMMANDS", "is_hash_listpack", "is_intset", "scan_reply"]

#: How many collections keep a hash index between calls.
INDEXED = 4
_MASK = 2**64 - 1
_EMPTY_SCAN = b"*2\r\n$1\r\n0\r\n*0\r\n"

_indexes: "OrderedDict[int, tuple[Any, list[int], list[bytes]]]" = OrderedDict()
_indexes_lock = threading.Lock()


def _index(container: Collection[bytes], fresh: bool) -> tuple[list[int], list[bytes]]:
    """The (hashes, elements) of container sorted by hash; rebuilt if fresh.
    The cache is the process's (servers on threaded engines share it), so
    it is locked; the container itself is only read under its server's lock."""
    with _indexes_lock:
        entry = _indexes.get(id(container))
        if entry is None or entry[0] is not container or fresh:
            pairs = sorted((hash(element) & _MASK, element) for element in container)
            entry = (container, [h for h, _ in pairs], [e for _, e in pairs])
            _indexes[id(container)] = entry
            while len(_indexes) > INDEXED:
                _indexes.popitem(last=False)
        _indexes.move_to_end(id(container))
        return entry[1], entry[2]


def _walk(container: Collection[bytes], cursor: int, count: int) -> tuple[int, list[bytes]]:
    """Up to count live elements from cursor on (whole hash groups), and the next cursor."""
    hashes, elements = _index(container, cursor == 0)
    at = bisect.bisect_left(hashes, cursor)
    found: list[bytes] = []
    while at < len(hashes) and (len(found) < count or hashes[at] == hashes[at - 1]):
        if elements[at] in container:
            found.append(elements[at])
        at += 1
    return (hashes[at] if at < len(hashes) else 0), found


def scan_reply(session: Session, args: list[bytes], kind: type,
               compact: Callable[[Any], bool], ordered: Callable[[Any], list[bytes]],
               container: Callable[[Any], Collection[bytes]],
               expand: Callable[[Any], Callable[[bytes], list[bytes]]]) -> bytes:
    """[HSZ]SCAN key cursor [MATCH pattern] [COUNT n] for a value of kind:
    compact(value) says whether Redis would answer it whole, ordered(value)
    lists it in its encoding's order, container(value) is what membership
    is tested on, expand(value)(element) the reply items of one element."""
    cursor = _parse_cursor(_cstr(args[2]))
    if cursor is None:
        return _error(b"ERR invalid cursor")
    value = _typed(session, args[1], kind)
    if value is None:
        return _EMPTY_SCAN
    count = 10
    tokens: Optional[list[Token]] = None
    index = 3
    while index < len(args):  # Redis parses options after the type check
        word = _option(args[index])
        if index + 1 >= len(args) or word not in (b"count", b"match"):
            return SYNTAX_ERROR
        if word == b"count":
            parsed = string2ll(args[index + 1])
            if parsed is None:
                return NOT_INTEGER
            if parsed < 1:
                return SYNTAX_ERROR
            count = parsed
        else:
            tokens = None if args[index + 1] == b"*" else compile_glob(args[index + 1])
        index += 2
    if args[1] not in session.store.big and compact(value):  # see fastnet.resp.encodings
        next_cursor, elements = 0, ordered(value)
    else:
        next_cursor, elements = _walk(container(value), cursor, count)
    if tokens is not None:
        elements = [e for e in elements if glob_match(tokens, e)]
    items = expand(value)
    return encode_reply([b"%d" % next_cursor, [item for e in elements for item in items(e)]],
                        session.protocol)


def cmd_hscan(session: Session, args: list[bytes]) -> bytes:
    """HSCAN key cursor [MATCH pattern] [COUNT n]: fields and values."""
    return scan_reply(session, args, dict, is_hash_listpack, list, lambda h: h,
                      lambda h: lambda field: [field, h[field]])


def cmd_sscan(session: Session, args: list[bytes]) -> bytes:
    """SSCAN key cursor [MATCH pattern] [COUNT n]: members."""
    return scan_reply(session, args, Members, is_intset, lambda s: sorted(s, key=lambda m: string2ll(m) or 0),
                      lambda s: s, lambda s: lambda member: [member])


_SCAN = (("readonly",), 1, 1, 1)

#: HSCAN and SSCAN (ZSCAN is in fastnet.resp.zset).
SCAN_COMMANDS: dict[bytes, Command] = {
    b"hscan": Command(cmd_hscan, -3, *_SCAN, ("@read", "@hash", "@slow")),
    b"sscan": Command(cmd_sscan, -3, *_SCAN, ("@read", "@set", "@slow")),
}
