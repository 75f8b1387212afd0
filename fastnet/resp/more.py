"""Commands beyond the core table, and the merge of every extra table into
fastnet.resp.commands.COMMANDS (one line there).

Here: float increments (INCRBYFLOAT, HINCRBYFLOAT, computed in long double
as Redis does, see fastnet.resp.floats), LREM, LINSERT, LPOS (LMOVE and
RPOPLPUSH are fastnet.resp.blocking's, beside BLMOVE), SPOP and SRANDMEMBER with counts, SINTER/SUNION/SDIFF and their
STORE forms, SMOVE, RANDOMKEY, EXPIREAT, PEXPIREAT, EXPIRETIME,
PEXPIRETIME, OBJECT ENCODING, GETEX, GETRANGE, SETRANGE, COPY, the bit
commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP) and TIME. Each follows
redis-server 7.0.15's checks in its order (its t_*.c and bitops.c), so
errors are Redis's byte for byte.

Randomness (SPOP, SRANDMEMBER, RANDOMKEY) is Python's ``random``: the
members differ from Redis's, the count and duplicate rules do not.
"""
from __future__ import annotations

import random
import time
from collections import deque
from typing import Any, Optional

from ..codec._common import INT64_MAX, INT64_MIN
from ..codec.resp._common import string2ll
from ..codec.resp._encode import encode_array, encode_bulk, encode_integer, encode_set
from ..limits import DEFAULT_RESP_MAX_BULK_LEN, DEFAULT_RESP_MAX_RANDOM_COUNT
from .commands import (NOT_INTEGER, SYNTAX_ERROR, Command, Handler, Session, _changed, _created,
                       _error, _expire, _int, _no_subcommand, _null, _option, _typed)
from .floats import LongDouble
from .members import Members
from .encodings import hash_written, is_hash_listpack, is_intset, set_shrinking
from .scans import SCAN_COMMANDS
from .sortedset import SortedSet
from .zset import ZSET_COMMANDS

__all__ = ["MORE_COMMANDS"]

_NOT_FLOAT = b"-ERR value is not a valid float\r\n"
_NAN_OR_INF = b"-ERR increment would produce NaN or Infinity\r\n"
_TOO_BIG = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
_NOT_POSITIVE = b"-ERR value is out of range, must be positive\r\n"
_EMPTY_BULK = b"$0\r\n\r\n"


def _empty_set(session: Session) -> bytes:
    return b"~0\r\n" if session.protocol == 3 else b"*0\r\n"


# --- float increments -------------------------------------------------------------


def _float_sum(old: bytes, increment: bytes) -> tuple[Optional[bytes], bytes]:
    """(old + increment as INCRBYFLOAT stores it, b"") or (None, the error reply)."""
    value, by = LongDouble.parse(old), LongDouble.parse(increment)
    if value is None or by is None:
        return None, _NOT_FLOAT
    if not isinstance(value, LongDouble) or not isinstance(by, LongDouble):
        return None, _NAN_OR_INF  # a literal inf parses; the sum is inf or nan
    total = value.add(by)
    return (None, _NAN_OR_INF) if total is None else (total.human(), b"")


def cmd_incrbyfloat(session: Session, args: list[bytes]) -> bytes:
    """INCRBYFLOAT key increment: the new value, computed in long double."""
    store = session.store
    old = store.get(args[1])
    total, error = _float_sum(b"0" if old is None else old, args[2])
    if total is None:
        return error
    store.set(args[1], total, keep_ttl=True)
    store.text.add(args[1])  # made as text: never int-encoded (OBJECT ENCODING)
    return encode_bulk(total)


def cmd_hincrbyfloat(session: Session, args: list[bytes]) -> bytes:
    """HINCRBYFLOAT key field increment: the field's new value."""
    by = LongDouble.parse(args[3])
    if by is None:
        return _NOT_FLOAT
    if not isinstance(by, LongDouble):
        return _error(b"ERR value is NaN or Infinity")
    hash_ = _typed(session, args[1], dict) or {}
    old = hash_.get(args[2])
    if old is not None and LongDouble.parse(old) is None:
        return _error(b"ERR hash value is not a float")
    total, error = _float_sum(b"0" if old is None else old, args[3])
    if total is None:
        return error
    hash_ = _created(session, args[1], dict)
    hash_[args[2]] = total
    hash_written(session.store, args[1], hash_, (args[2], total))
    session.store.modified(args[1])
    return encode_bulk(total)


# --- lists -----------------------------------------------------------------------


def cmd_lrem(session: Session, args: list[bytes]) -> bytes:
    """LREM key count element: remove count matches (from the tail if
    negative, all if 0); how many were removed."""
    count = _int(args[2])
    if count is None:
        return NOT_INTEGER
    items = _typed(session, args[1], deque)
    if items is None:
        return b":0\r\n"
    element = args[3]
    limit = abs(count) or len(items)
    ordered = reversed(items) if count < 0 else iter(items)
    kept: list[bytes] = []
    removed = 0
    for item in ordered:
        if removed < limit and item == element:
            removed += 1
        else:
            kept.append(item)
    if removed:
        items.clear()
        items.extend(reversed(kept) if count < 0 else kept)
        _changed(session, args[1], items)
    return encode_integer(removed)


def cmd_linsert(session: Session, args: list[bytes]) -> bytes:
    """LINSERT key BEFORE|AFTER pivot element: the new length, -1 without
    the pivot, 0 without the key."""
    where = _option(args[2])
    if where not in (b"before", b"after"):
        return SYNTAX_ERROR
    items = _typed(session, args[1], deque)
    if items is None:
        return b":0\r\n"
    try:
        at = items.index(args[3])
    except ValueError:
        return b":-1\r\n"
    items.insert(at + (where == b"after"), args[4])
    session.store.modified(args[1])
    return encode_integer(len(items))


def cmd_lpos(session: Session, args: list[bytes]) -> bytes:
    """LPOS key element [RANK rank] [COUNT n] [MAXLEN len]: the index (or
    indexes) of matches."""
    rank, count, maxlen = 1, -1, 0
    index = 3
    while index < len(args):
        word = _option(args[index])
        if index + 1 >= len(args) or word not in (b"rank", b"count", b"maxlen"):
            return SYNTAX_ERROR
        value = args[index + 1]
        if word == b"rank":
            parsed = _int(value)
            if parsed is None:
                return NOT_INTEGER
            if parsed == 0:
                return _error(b"ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                              b"second ... or use negative to start from the end of the list")
            rank = parsed
        else:
            parsed = _int(value)
            if parsed is None or parsed < 0:
                return _error(b"ERR %s can't be negative" % word.upper())
            if word == b"count":
                count = parsed
            else:
                maxlen = parsed
        index += 2
    from_tail = rank < 0
    if from_tail:
        rank = -rank if rank != INT64_MIN else INT64_MIN  # C's negation overflows
    items = _typed(session, args[1], deque)
    if items is None:
        return encode_array([], session.protocol) if count != -1 else _null(session)
    size = len(items)
    found: list[int] = []
    matches = 0
    for at, item in enumerate(reversed(items) if from_tail else items):
        if maxlen and at >= maxlen:
            break
        if item != args[2]:
            continue
        matches += 1
        if matches >= rank:
            found.append(size - 1 - at if from_tail else at)
            # matches - rank + 1 in C's 64-bit arithmetic (it wraps for INT64_MIN)
            taken = (matches - rank + 1 + 2**63) % 2**64 - 2**63
            if count == -1 or (count and taken >= count):
                break
    if count == -1:
        return encode_integer(found[0]) if found else _null(session)
    return encode_array(found, session.protocol)


# --- sets ------------------------------------------------------------------------


def cmd_spop(session: Session, args: list[bytes]) -> bytes:
    """SPOP key [count]: remove and return uniformly random members, in
    O(count) (fastnet.resp.members)."""
    if len(args) > 3:
        return SYNTAX_ERROR
    count = 1
    if len(args) == 3:
        parsed = _int(args[2])
        if parsed is None or parsed < 0:
            return _NOT_POSITIVE
        count = parsed
    members = _typed(session, args[1], Members)
    if len(args) == 2:
        if members is None:
            return _null(session)
        set_shrinking(session.store, args[1], members)
        (member,) = members.pop_random(1)
        _changed(session, args[1], members)
        return encode_bulk(member)
    if members is None or count == 0:
        return _empty_set(session)
    if count >= len(members):
        popped = members.order
        session.store.delete(args[1])
    else:
        set_shrinking(session.store, args[1], members)
        popped = members.pop_random(count)
        _changed(session, args[1], members)
    return encode_set(popped, session.protocol)


def cmd_srandmember(session: Session, args: list[bytes]) -> bytes:
    """SRANDMEMBER key [count]: uniformly random members (distinct for a
    positive count, with repeats for a negative one), in O(count)."""
    if len(args) > 3:
        return SYNTAX_ERROR
    if len(args) == 2:
        members = _typed(session, args[1], Members)
        if members is None:
            return _null(session)
        return encode_bulk(members.choice())
    count = _int(args[2])
    if count is None:
        return NOT_INTEGER
    # Redis's range is -LONG_MAX..LONG_MAX. A negative count repeats
    # members, so its reply grows with the count alone: it is also bounded
    # here (limits.DEFAULT_RESP_MAX_RANDOM_COUNT), in Redis's words.
    if count == INT64_MIN or count < -DEFAULT_RESP_MAX_RANDOM_COUNT:
        low = INT64_MAX if count == INT64_MIN else DEFAULT_RESP_MAX_RANDOM_COUNT
        return _error(b"ERR value is out of range, value must between -%d and %d" % (low, INT64_MAX))
    members = _typed(session, args[1], Members)
    if members is None or count == 0:
        return encode_array([], session.protocol)
    if count < 0 or count == 1:
        return encode_array(random.choices(members.order, k=abs(count)), session.protocol)
    if count >= len(members):
        return encode_array(members.order, session.protocol)
    return encode_array(members.sample(count), session.protocol)


def _sets(session: Session, keys: list[bytes]) -> list[Optional[Members]]:
    """Each key's set (None if missing); WRONGTYPE if any is another type."""
    return [_typed(session, key, Members) for key in keys]


def _store_set(session: Session, target: bytes, result: set[bytes]) -> bytes:
    """A *STORE result: the set replaces target (or target goes if empty)."""
    if result:
        session.store.set(target, Members(result))
    else:
        session.store.delete(target)
    return encode_integer(len(result))


def _sinter(session: Session, keys: list[bytes]) -> set[bytes]:
    sets = _sets(session, keys)
    if any(s is None for s in sets):
        return set()
    ordered = sorted((s for s in sets if s is not None), key=len)
    result = set(ordered[0])
    for other in ordered[1:]:
        result &= other.keys()  # walks the smaller side
    return result


def _sunion(session: Session, keys: list[bytes]) -> set[bytes]:
    result: set[bytes] = set()
    for members in _sets(session, keys):
        if members:
            result.update(members)
    return result


def _sdiff(session: Session, keys: list[bytes]) -> set[bytes]:
    sets = _sets(session, keys)
    result = set(sets[0] or ())
    for other in sets[1:]:
        if other:
            result.difference_update(other)
    return result


def cmd_sinter(session: Session, args: list[bytes]) -> bytes:
    """SINTER key...: the members in every set."""
    return encode_set(_sinter(session, args[1:]), session.protocol)


def cmd_sunion(session: Session, args: list[bytes]) -> bytes:
    """SUNION key...: the members in any set."""
    return encode_set(_sunion(session, args[1:]), session.protocol)


def cmd_sdiff(session: Session, args: list[bytes]) -> bytes:
    """SDIFF key...: the first set's members in none of the others."""
    return encode_set(_sdiff(session, args[1:]), session.protocol)


def cmd_sinterstore(session: Session, args: list[bytes]) -> bytes:
    """SINTERSTORE destination key...: the size of the stored intersection."""
    return _store_set(session, args[1], _sinter(session, args[2:]))


def cmd_sunionstore(session: Session, args: list[bytes]) -> bytes:
    """SUNIONSTORE destination key...: the size of the stored union."""
    return _store_set(session, args[1], _sunion(session, args[2:]))


def cmd_sdiffstore(session: Session, args: list[bytes]) -> bytes:
    """SDIFFSTORE destination key...: the size of the stored difference."""
    return _store_set(session, args[1], _sdiff(session, args[2:]))


def cmd_smove(session: Session, args: list[bytes]) -> bytes:
    """SMOVE source destination member: 1 if moved."""
    store = session.store
    if store.lookup(args[1]) is None:
        return b":0\r\n"
    source = _typed(session, args[1], Members)
    target = _typed(session, args[2], Members)
    member = args[3]
    if source is target:
        return encode_integer(int(member in source))
    if member not in source:
        return b":0\r\n"
    set_shrinking(store, args[1], source)
    source.discard(member)
    _changed(session, args[1], source)
    into = _created(session, args[2], Members)
    into.add(member)
    store.modified(args[2])
    return b":1\r\n"


# --- keys --------------------------------------------------------------------------


def cmd_randomkey(session: Session, args: list[bytes]) -> bytes:
    """RANDOMKEY: a random live key, or null."""
    key = session.store.random_key()
    return _null(session) if key is None else encode_bulk(key)


def cmd_expireat(session: Session, args: list[bytes]) -> bytes:
    """EXPIREAT key unix-seconds [NX|XX|GT|LT]."""
    return _expire(session, args, 1000, b"expireat", absolute=True)


def cmd_pexpireat(session: Session, args: list[bytes]) -> bytes:
    """PEXPIREAT key unix-ms [NX|XX|GT|LT]."""
    return _expire(session, args, 1, b"pexpireat", absolute=True)


def _expiretime(session: Session, key: bytes, in_ms: bool) -> bytes:
    store = session.store
    if store.lookup(key) is None:
        return b":-2\r\n"
    deadline = store.deadline(key)
    if deadline is None:
        return b":-1\r\n"
    unix_ms = store.deadline_to_unix(deadline)
    return encode_integer(unix_ms if in_ms else unix_ms // 1000)


def cmd_expiretime(session: Session, args: list[bytes]) -> bytes:
    """EXPIRETIME key: the Unix time (s) it expires at, -1 without, -2 if missing."""
    return _expiretime(session, args[1], False)


def cmd_pexpiretime(session: Session, args: list[bytes]) -> bytes:
    """PEXPIRETIME key: the Unix time in ms."""
    return _expiretime(session, args[1], True)


def encoding(value: Any, big: bool = False, text: bool = False) -> bytes:
    """OBJECT ENCODING's word for a value, as Redis 7.0 would hold it: from
    its type and what it holds, or the general encoding if ``big`` (the
    key is in Store.big: a string changed in place, a hash or set Redis
    converted while it was larger and never converts back); a string with
    ``text`` (Store.text: INCRBYFLOAT's) is never "int"."""
    if type(value) is bytes:
        if big:
            return b"raw"
        if not text and len(value) <= 20 and string2ll(value) is not None:
            return b"int"
        return b"embstr" if len(value) <= 44 else b"raw"
    if type(value) is dict:
        return b"listpack" if not big and is_hash_listpack(value) else b"hashtable"
    if type(value) is deque:
        return b"quicklist"
    if type(value) is Members:
        return b"intset" if not big and is_intset(value) else b"hashtable"
    assert type(value) is SortedSet
    return b"listpack" if value.listpack else b"skiplist"


def object_encoding(session: Session, args: list[bytes]) -> bytes:
    """OBJECT ENCODING key: how Redis would hold the value, or null."""
    value = session.store.lookup(args[2])
    store = session.store
    return _null(session) if value is None else encode_bulk(
        encoding(value, args[2] in store.big, args[2] in store.text))


_OBJECT_HELP = [
    b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"ENCODING <key>",
    b"    Return the kind of internal representation used in order to store the value",
    b"    associated with a <key>.",
    b"HELP",
    b"    Print this help.",
]


def object_help(session: Session, args: list[bytes]) -> bytes:
    """OBJECT HELP: the subcommands served."""
    return b"*%d\r\n" % len(_OBJECT_HELP) + b"".join(b"+%s\r\n" % line for line in _OBJECT_HELP)


OBJECT_SUBCOMMANDS: dict[bytes, tuple[Handler, int]] = {
    b"encoding": (object_encoding, 3),
    b"help": (object_help, 2),
}


def _container_copy(value: Any) -> Any:
    if type(value) is bytes:
        return value
    if type(value) is SortedSet:
        copy = SortedSet()
        for node in value:
            copy.add(node.member, node.score)
        copy.listpack = value.listpack
        return copy
    return type(value)(value)


def cmd_copy(session: Session, args: list[bytes]) -> bytes:
    """COPY source destination [DB index] [REPLACE]: 1 if copied (with its TTL)."""
    replace = False
    index = 3
    while index < len(args):
        word = _option(args[index])
        if word == b"replace":
            replace = True
        elif word == b"db" and index + 1 < len(args):
            db = _int(args[index + 1])
            if db is None:
                return NOT_INTEGER
            if not -(2**31) <= db < 2**31:
                return _error(b"ERR value is out of range, value must between -2147483648 and 2147483647")
            if db != 0:  # one database here (resps's databases extend this)
                return _error(b"ERR DB index is out of range")
            index += 1
        else:
            return SYNTAX_ERROR
        index += 1
    source, target = args[1], args[2]
    if source == target:
        return _error(b"ERR source and destination objects are the same")
    store = session.store
    value = store.lookup(source)
    if value is None:
        return b":0\r\n"
    deadline = store.deadline(source)
    if store.lookup(target) is not None:
        if not replace:
            return b":0\r\n"
        store.delete(target)
    store.set(target, _container_copy(value))
    store.mark(target, store.encoding_marks(source))
    if deadline is not None:
        store.set_deadline(target, deadline)
    return b":1\r\n"


# --- strings: GETEX, ranges, bits -----------------------------------------------

_EX, _PX, _EXAT, _PXAT, _PERSIST = (1 << i for i in range(5))
_ANY_EXPIRY = _EX | _PX | _EXAT | _PXAT
#: GETEX's options: word -> (flag, flags it cannot follow, takes a value).
_GETEX_OPTIONS: dict[bytes, tuple[int, int, bool]] = {
    b"ex": (_EX, _PERSIST | _PX | _EXAT | _PXAT, True),
    b"px": (_PX, _PERSIST | _EX | _EXAT | _PXAT, True),
    b"exat": (_EXAT, _PERSIST | _EX | _PX | _PXAT, True),
    b"pxat": (_PXAT, _PERSIST | _EX | _PX | _EXAT, True),
    b"persist": (_PERSIST, _ANY_EXPIRY, False),
}


def cmd_getex(session: Session, args: list[bytes]) -> bytes:
    """GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]: the value, and its TTL changed."""
    flags = 0
    amount_arg: Optional[bytes] = None
    index = 2
    while index < len(args):
        option = _GETEX_OPTIONS.get(_option(args[index]))
        if option is None or flags & option[1] or (option[2] and index + 1 >= len(args)):
            return SYNTAX_ERROR
        flags |= option[0]
        if option[2]:
            amount_arg = args[index + 1]
            index += 1
        index += 1
    store = session.store
    value = store.get(args[1])
    if value is None:
        return _null(session)
    deadline: Optional[int] = None
    if amount_arg is not None:
        amount = _int(amount_arg)
        if amount is None:
            return NOT_INTEGER
        seconds = bool(flags & (_EX | _EXAT))
        invalid = _error(b"ERR invalid expire time in 'getex' command")
        if amount <= 0 or (seconds and amount > INT64_MAX // 1000):
            return invalid
        ms = amount * 1000 if seconds else amount
        if flags & (_EX | _PX):
            wall = store.wall_clock()
            if ms > INT64_MAX - wall:
                return invalid
            ms += wall
        deadline = store.unix_to_deadline(ms)
    reply = encode_bulk(value)
    if deadline is not None:
        if flags & (_EXAT | _PXAT) and deadline <= store.now():
            store.delete(args[1])
        else:
            store.set_deadline(args[1], deadline)
    elif flags & _PERSIST and store.deadline(args[1]) is not None:
        store.set_deadline(args[1], None)
    return reply


def cmd_getrange(session: Session, args: list[bytes]) -> bytes:
    """GETRANGE key start end: the substring (inclusive; negative from the end)."""
    start, end = _int(args[2]), _int(args[3])
    if start is None or end is None:
        return NOT_INTEGER
    value = session.store.get(args[1])
    if value is None:
        return _EMPTY_BULK
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return _EMPTY_BULK
    start = max(start + size if start < 0 else start, 0)
    end = max(end + size if end < 0 else end, 0)
    end = min(end, size - 1)
    if start > end or size == 0:
        return _EMPTY_BULK
    return encode_bulk(value[start:end + 1])


def cmd_setrange(session: Session, args: list[bytes]) -> bytes:
    """SETRANGE key offset value: overwrite from offset (zero-padded); the new length."""
    offset = _int(args[2])
    if offset is None:
        return NOT_INTEGER
    if offset < 0:
        return _error(b"ERR offset is out of range")
    store = session.store
    old = store.get(args[1])
    patch = args[3]
    if not patch:
        return encode_integer(0 if old is None else len(old))
    if offset + len(patch) > DEFAULT_RESP_MAX_BULK_LEN:
        return _TOO_BIG
    base = old or b""
    if len(base) < offset:
        base += bytes(offset - len(base))
    value = base[:offset] + patch + base[offset + len(patch):]
    store.set(args[1], value, keep_ttl=True)
    store.big.add(args[1])  # changed in place (or made so): raw
    return encode_integer(len(value))


_BIT_OFFSET = b"-ERR bit offset is not an integer or out of range\r\n"


def _bit_offset(arg: bytes) -> Optional[int]:
    """getBitOffsetFromArgument: 0 <= offset, offset / 8 < proto-max-bulk-len."""
    offset = string2ll(arg)
    if offset is None or offset < 0 or offset >> 3 >= DEFAULT_RESP_MAX_BULK_LEN:
        return None
    return offset


def cmd_setbit(session: Session, args: list[bytes]) -> bytes:
    """SETBIT key offset 0|1: the bit's old value (the string grows zero-padded)."""
    offset = _bit_offset(args[2])
    if offset is None:
        return _BIT_OFFSET
    bit = _int(args[3])
    if bit is None or bit & ~1:
        return _error(b"ERR bit is not an integer or out of range")
    store = session.store
    value = bytearray(store.get(args[1]) or b"")
    byte = offset >> 3
    if len(value) <= byte:
        value += bytes(byte + 1 - len(value))
    mask = 1 << (7 - (offset & 7))
    old = value[byte] & mask
    value[byte] = (value[byte] | mask) if bit else (value[byte] & ~mask)
    store.set(args[1], bytes(value), keep_ttl=True)
    store.big.add(args[1])  # changed in place (or made so): raw
    return b":1\r\n" if old else b":0\r\n"


def cmd_getbit(session: Session, args: list[bytes]) -> bytes:
    """GETBIT key offset: the bit there (0 past the end)."""
    offset = _bit_offset(args[2])
    if offset is None:
        return _BIT_OFFSET
    value = session.store.get(args[1]) or b""
    byte = offset >> 3
    if byte >= len(value):
        return b":0\r\n"
    return b":1\r\n" if value[byte] & (1 << (7 - (offset & 7))) else b":0\r\n"


def _bit_range(value: bytes, start: int, end: int, in_bits: bool) -> Optional[tuple[int, int]]:
    """BITCOUNT/BITPOS's range as bit indexes [first, last], None if empty
    (Redis's index rules: negative from the end, clamped)."""
    total = len(value) * (8 if in_bits else 1)
    start = max(start + total if start < 0 else start, 0)
    end = max(end + total if end < 0 else end, 0)
    end = min(end, total - 1)
    if start > end:
        return None
    return (start, end) if in_bits else (start * 8, end * 8 + 7)


def _unit(arg: bytes) -> Optional[bool]:
    word = _option(arg)
    return True if word == b"bit" else False if word == b"byte" else None


def _bits(value: bytes, first: int, last: int) -> int:
    """The bits [first, last] (big-endian bit order) as one integer."""
    chunk = int.from_bytes(value[first >> 3:(last >> 3) + 1], "big")
    return (chunk >> (7 - (last & 7))) & ((1 << (last - first + 1)) - 1)


def cmd_bitcount(session: Session, args: list[bytes]) -> bytes:
    """BITCOUNT key [start end [BYTE|BIT]]: how many bits are set."""
    value = session.store.get(args[1])  # Redis 7.0 looks the key up first
    if value is None:
        return b":0\r\n"
    if len(args) not in (2, 4, 5):
        return SYNTAX_ERROR
    if len(args) == 2:
        return encode_integer(int.from_bytes(value, "big").bit_count())
    start, end = _int(args[2]), _int(args[3])
    if start is None or end is None:
        return NOT_INTEGER
    in_bits = False
    if len(args) == 5:
        unit = _unit(args[4])
        if unit is None:
            return SYNTAX_ERROR
        in_bits = unit
    if start < 0 and end < 0 and start > end:
        return b":0\r\n"
    span = _bit_range(value, start, end, in_bits)
    return b":0\r\n" if span is None else encode_integer(_bits(value, *span).bit_count())


def cmd_bitpos(session: Session, args: list[bytes]) -> bytes:
    """BITPOS key 0|1 [start [end [BYTE|BIT]]]: the first bit of that value."""
    bit = _int(args[2])
    if bit is None:
        return NOT_INTEGER
    if bit not in (0, 1):
        return _error(b"ERR The bit argument must be 1 or 0.")
    value = session.store.get(args[1])
    if value is None:
        return b":-1\r\n" if bit else b":0\r\n"
    if len(args) > 6:
        return SYNTAX_ERROR
    start, end, in_bits, end_given = 0, len(value) - 1, False, False
    if len(args) >= 4:
        parsed = _int(args[3])
        if parsed is None:
            return NOT_INTEGER
        start = parsed
        if len(args) == 6:
            unit = _unit(args[5])
            if unit is None:
                return SYNTAX_ERROR
            in_bits = unit
        if len(args) >= 5:
            parsed = _int(args[4])
            if parsed is None:
                return NOT_INTEGER
            end, end_given = parsed, True
        else:
            end = len(value) * 8 + 7 if in_bits else len(value) - 1
    span = _bit_range(value, start, end, in_bits)
    if span is None:
        return b":-1\r\n"
    first, last = span
    width = last - first + 1
    bits = _bits(value, first, last)
    if bit:
        found = width - bits.bit_length() if bits else -1
    else:
        inverted = ~bits & ((1 << width) - 1)
        found = width - inverted.bit_length() if inverted else -1
    if found >= 0:
        return encode_integer(first + found)
    if bit == 0 and not end_given:
        return encode_integer((last >> 3) * 8 + 8)  # zero padding after the string
    return b":-1\r\n"


_BITOPS = {b"and", b"or", b"xor", b"not"}


def cmd_bitop(session: Session, args: list[bytes]) -> bytes:
    """BITOP AND|OR|XOR|NOT destkey key...: the result's length."""
    op = _option(args[1])
    if op not in _BITOPS:
        return SYNTAX_ERROR
    if op == b"not" and len(args) != 4:
        return _error(b"ERR BITOP NOT must be called with a single source key.")
    store = session.store
    values = [store.get(key) for key in args[3:]]
    size = max((len(v) for v in values if v is not None), default=0)
    if not size:
        store.delete(args[2])
        return b":0\r\n"
    numbers = [int.from_bytes((v or b"").ljust(size, b"\0"), "big") for v in values]
    if op == b"not":
        result = ~numbers[0] & ((1 << (8 * size)) - 1)
    else:
        result = numbers[0]
        for number in numbers[1:]:
            result = result & number if op == b"and" else result | number if op == b"or" else result ^ number
    store.set(args[2], result.to_bytes(size, "big"))
    store.big.add(args[2])  # Redis stores BITOP's result as made: raw
    return encode_integer(size)


def cmd_time(session: Session, args: list[bytes]) -> bytes:
    """TIME: the Unix time as seconds and microseconds."""
    now = time.time_ns() // 1000
    return encode_array([b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)], session.protocol)


_W = ("write", "denyoom")
_R = ("readonly",)

#: This module's commands (flags, key positions and categories as Redis 7.0's).
_COMMANDS: dict[bytes, Command] = {
    b"incrbyfloat": Command(cmd_incrbyfloat, 3, (*_W, "fast"), 1, 1, 1, ("@write", "@string", "@fast")),
    b"hincrbyfloat": Command(cmd_hincrbyfloat, 4, (*_W, "fast"), 1, 1, 1, ("@write", "@hash", "@fast")),
    b"lrem": Command(cmd_lrem, 4, ("write",), 1, 1, 1, ("@write", "@list", "@slow")),
    b"linsert": Command(cmd_linsert, 5, _W, 1, 1, 1, ("@write", "@list", "@slow")),
    b"lpos": Command(cmd_lpos, -3, _R, 1, 1, 1, ("@read", "@list", "@slow")),
    b"spop": Command(cmd_spop, -2, ("write", "fast"), 1, 1, 1, ("@write", "@set", "@fast")),
    b"srandmember": Command(cmd_srandmember, -2, _R, 1, 1, 1, ("@read", "@set", "@slow")),
    b"sinter": Command(cmd_sinter, -2, _R, 1, -1, 1, ("@read", "@set", "@slow")),
    b"sunion": Command(cmd_sunion, -2, _R, 1, -1, 1, ("@read", "@set", "@slow")),
    b"sdiff": Command(cmd_sdiff, -2, _R, 1, -1, 1, ("@read", "@set", "@slow")),
    b"sinterstore": Command(cmd_sinterstore, -3, _W, 1, -1, 1, ("@write", "@set", "@slow")),
    b"sunionstore": Command(cmd_sunionstore, -3, _W, 1, -1, 1, ("@write", "@set", "@slow")),
    b"sdiffstore": Command(cmd_sdiffstore, -3, _W, 1, -1, 1, ("@write", "@set", "@slow")),
    b"smove": Command(cmd_smove, 4, ("write", "fast"), 1, 2, 1, ("@write", "@set", "@fast")),
    b"randomkey": Command(cmd_randomkey, 1, _R, categories=("@keyspace", "@read", "@slow")),
    b"expireat": Command(cmd_expireat, -3, ("write", "fast"), 1, 1, 1, ("@keyspace", "@write", "@fast")),
    b"pexpireat": Command(cmd_pexpireat, -3, ("write", "fast"), 1, 1, 1, ("@keyspace", "@write", "@fast")),
    b"expiretime": Command(cmd_expiretime, 2, ("readonly", "fast"), 1, 1, 1, ("@keyspace", "@read", "@fast")),
    b"pexpiretime": Command(cmd_pexpiretime, 2, ("readonly", "fast"), 1, 1, 1,
                            ("@keyspace", "@read", "@fast")),
    b"object": Command(_no_subcommand, -2, categories=("@slow",), subcommands=OBJECT_SUBCOMMANDS),
    b"copy": Command(cmd_copy, -3, _W, 1, 2, 1, ("@keyspace", "@write", "@slow")),
    b"getex": Command(cmd_getex, -2, ("write", "fast"), 1, 1, 1, ("@write", "@string", "@fast")),
    b"getrange": Command(cmd_getrange, 4, _R, 1, 1, 1, ("@read", "@string", "@slow")),
    b"setrange": Command(cmd_setrange, 4, _W, 1, 1, 1, ("@write", "@string", "@slow")),
    b"setbit": Command(cmd_setbit, 4, _W, 1, 1, 1, ("@write", "@bitmap", "@slow")),
    b"getbit": Command(cmd_getbit, 3, ("readonly", "fast"), 1, 1, 1, ("@read", "@bitmap", "@fast")),
    b"bitcount": Command(cmd_bitcount, -2, _R, 1, 1, 1, ("@read", "@bitmap", "@slow")),
    b"bitpos": Command(cmd_bitpos, -3, _R, 1, 1, 1, ("@read", "@bitmap", "@slow")),
    b"bitop": Command(cmd_bitop, -4, _W, 2, -1, 1, ("@write", "@bitmap", "@slow")),
    b"time": Command(cmd_time, 1, ("loading", "stale", "fast"), categories=("@fast",)),
}

#: name (lower case) -> Command, for COMMANDS.update().
MORE_COMMANDS: dict[bytes, Command] = {**ZSET_COMMANDS, **SCAN_COMMANDS, **_COMMANDS}
