"""Sorted-set commands (ZADD ... ZSCAN) over :class:`.sortedset.SortedSet`.

Each handler follows redis-server 7.0.15's t_zset.c in the order it checks
things (options, then numbers, then the key's type), so errors are Redis's
byte for byte. Scores are replied as Redis's addReplyDouble does: a bulk
string of ``%.17g`` in RESP2, a RESP3 double (``,1.1000000000000001``)
otherwise, infinities spelled inf and -inf.
"""
from __future__ import annotations

from typing import Callable, Optional

from ..codec.resp._encode import encode_bulk, encode_integer
from .commands import (SYNTAX_ERROR, bulk_array, Command, Session, _changed, _error, _int, _null, _option,
                       _typed)
from .floats import format_double, parse_double, parse_range_bound
from .scans import scan_reply
from .sortedset import Node, SortedSet

__all__ = ["ZSET_COMMANDS", "SortedSet"]

_NOT_FLOAT = b"-ERR value is not a valid float\r\n"
_RANGE_NOT_FLOAT = b"-ERR min or max is not a float\r\n"
_LEX_INVALID = b"-ERR min or max not valid string range item\r\n"
_NOT_INTEGER = b"-ERR value is not an integer or out of range\r\n"
_EMPTY = b"*0\r\n"


def reply_double(session: Session, value: float) -> bytes:
    """Redis's addReplyDouble."""
    text = format_double(value)
    if session.protocol == 3:
        return b",%s\r\n" % text
    return b"$%d\r\n%s\r\n" % (len(text), text)


def _zset(session: Session, key: bytes) -> Optional[SortedSet]:
    return _typed(session, key, SortedSet)  # type: ignore[no-any-return]


# --- ZADD / ZINCRBY --------------------------------------------------------------

_ZADD_WORDS = {b"nx", b"xx", b"ch", b"incr", b"gt", b"lt"}


def _zadd(session: Session, args: list[bytes], incr: bool) -> bytes:
    """zaddGenericCommand: options, pairs, then the key."""
    seen: set[bytes] = set()
    index = 2
    while index < len(args):
        word = _option(args[index])
        if word not in _ZADD_WORDS:
            break
        seen.add(word)
        index += 1
    incr = incr or b"incr" in seen
    pairs = len(args) - index
    if pairs % 2 or not pairs:
        return SYNTAX_ERROR
    nx, xx, gt, lt = (w in seen for w in (b"nx", b"xx", b"gt", b"lt"))
    if nx and xx:
        return _error(b"ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        return _error(b"ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and pairs > 2:
        return _error(b"ERR INCR option supports a single increment-element pair")
    scores: list[float] = []
    for at in range(index, len(args), 2):
        score = parse_double(args[at])
        if score is None:
            return _NOT_FLOAT
        scores.append(score)
    key = args[1]
    zset = _zset(session, key)
    added = updated = processed = 0
    result = 0.0
    if zset is None and not xx:
        zset = SortedSet()
        session.store.set(key, zset)
    if zset is not None:
        for score, member in zip(scores, args[index + 1::2]):
            current = zset.scores.get(member)
            if current is None:
                if xx:
                    continue
                zset.add(member, score)
                added += 1
            else:
                if nx:
                    continue
                if incr:
                    score += current
                    if score != score:
                        _changed(session, key, zset)
                        return _error(b"ERR resulting score is not a number (NaN)")
                if (lt and score >= current) or (gt and score <= current):
                    continue
                if score != current:
                    zset.add(member, score)
                    updated += 1
            processed += 1
            result = score  # the score asked for (Redis replies -0 where a listpack holds 0)
        if added or updated:
            session.store.modified(key)
    if incr:
        return reply_double(session, result) if processed else _null(session)
    return encode_integer(added + updated if b"ch" in seen else added)


def cmd_zadd(session: Session, args: list[bytes]) -> bytes:
    """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]."""
    return _zadd(session, args, False)


def cmd_zincrby(session: Session, args: list[bytes]) -> bytes:
    """ZINCRBY key increment member: the new score."""
    return _zadd(session, args, True)


# --- reads of single members -------------------------------------------------------


def cmd_zrem(session: Session, args: list[bytes]) -> bytes:
    """ZREM key member...: how many were removed."""
    zset = _zset(session, args[1])
    if zset is None:
        return b":0\r\n"
    removed = sum(zset.remove(member) for member in args[2:])
    if removed:
        _changed(session, args[1], zset)
    return encode_integer(removed)


def cmd_zcard(session: Session, args: list[bytes]) -> bytes:
    """ZCARD key: how many members."""
    return encode_integer(len(_zset(session, args[1]) or ()))


def cmd_zscore(session: Session, args: list[bytes]) -> bytes:
    """ZSCORE key member: the score, or null."""
    zset = _zset(session, args[1])
    score = None if zset is None else zset.scores.get(args[2])
    return _null(session) if score is None else reply_double(session, score)


def cmd_zmscore(session: Session, args: list[bytes]) -> bytes:
    """ZMSCORE key member...: each score, or null."""
    zset = _zset(session, args[1])
    scores = {} if zset is None else zset.scores
    parts = [b"*%d\r\n" % (len(args) - 2)]
    for member in args[2:]:
        score = scores.get(member)
        parts.append(_null(session) if score is None else reply_double(session, score))
    return b"".join(parts)


def _zrank(session: Session, args: list[bytes], reverse: bool) -> bytes:
    zset = _zset(session, args[1])
    rank = None if zset is None else zset.rank(args[2])
    if rank is None or zset is None:
        return _null(session)
    return encode_integer(len(zset) - 1 - rank if reverse else rank)


def cmd_zrank(session: Session, args: list[bytes]) -> bytes:
    """ZRANK key member: the 0-based rank by increasing score, or null."""
    return _zrank(session, args, False)


def cmd_zrevrank(session: Session, args: list[bytes]) -> bytes:
    """ZREVRANK key member: the rank by decreasing score, or null."""
    return _zrank(session, args, True)


# --- ranges ------------------------------------------------------------------------


class _ScoreRange:
    """zrangespec: min and max, each maybe exclusive."""

    __slots__ = ("low", "low_ex", "high", "high_ex")

    def __init__(self, low: float, low_ex: bool, high: float, high_ex: bool) -> None:
        self.low, self.low_ex, self.high, self.high_ex = low, low_ex, high, high_ex

    def gte_min(self, node: Node) -> bool:
        return node.score > self.low if self.low_ex else node.score >= self.low

    def lte_max(self, node: Node) -> bool:
        return node.score < self.high if self.high_ex else node.score <= self.high

    def empty(self) -> bool:
        return self.low > self.high or (self.low == self.high and (self.low_ex or self.high_ex))


def _score_bound(arg: bytes) -> Optional[tuple[float, bool]]:
    exclusive = arg[:1] == b"("
    value = parse_range_bound(arg[1:] if exclusive else arg)
    return None if value is None else (value, exclusive)


def parse_score_range(low: bytes, high: bytes) -> Optional[_ScoreRange]:
    """Redis's zslParseRange."""
    a, b = _score_bound(low), _score_bound(high)
    if a is None or b is None:
        return None
    return _ScoreRange(a[0], a[1], b[0], b[1])


_MIN, _MAX = object(), object()  # shared.minstring / shared.maxstring


class _LexRange:
    """zlexrangespec: bytes or the -/+ extremes, each maybe exclusive."""

    __slots__ = ("low", "low_ex", "high", "high_ex")

    def __init__(self, low: object, low_ex: bool, high: object, high_ex: bool) -> None:
        self.low, self.low_ex, self.high, self.high_ex = low, low_ex, high, high_ex

    @staticmethod
    def _cmp(a: object, b: object) -> int:
        """sdscmplex: minstring < every string < maxstring."""
        if a is b:
            return 0
        if a is _MIN or b is _MAX:
            return -1
        if a is _MAX or b is _MIN:
            return 1
        assert isinstance(a, bytes) and isinstance(b, bytes)
        return (a > b) - (a < b)

    def gte_min(self, node: Node) -> bool:
        cmp = self._cmp(node.member, self.low)
        return cmp > 0 if self.low_ex else cmp >= 0

    def lte_max(self, node: Node) -> bool:
        cmp = self._cmp(node.member, self.high)
        return cmp < 0 if self.high_ex else cmp <= 0

    def empty(self) -> bool:
        cmp = self._cmp(self.low, self.high)
        return cmp > 0 or (cmp == 0 and (self.low_ex or self.high_ex))


def _lex_item(arg: bytes) -> Optional[tuple[object, bool]]:
    """zslParseLexRangeItem ("+" and "-" as C strings: a NUL may follow)."""
    head = arg[:1]
    if head in (b"+", b"-"):
        if arg[1:2] not in (b"", b"\0"):
            return None
        return (_MAX if head == b"+" else _MIN), True
    if head == b"(":
        return arg[1:], True
    if head == b"[":
        return arg[1:], False
    return None


def parse_lex_range(low: bytes, high: bytes) -> Optional[_LexRange]:
    """Redis's zslParseLexRange."""
    a, b = _lex_item(low), _lex_item(high)
    if a is None or b is None:
        return None
    return _LexRange(a[0], a[1], b[0], b[1])


Range = _ScoreRange | _LexRange


def _in_range(zset: SortedSet, spec: Range) -> bool:
    """zslIsInRange / zslIsInLexRange: the range can hold some element."""
    first, last = zset.first, zset.last
    return not (spec.empty() or first is None or last is None
                or not spec.gte_min(last) or not spec.lte_max(first))


def first_in(zset: SortedSet, spec: Range) -> Optional[Node]:
    """The first element in range. A listpack (and any score range, whose
    order agrees) is as Redis's linear zzlFirstIn*Range; a lexicographic
    range over a skip list descends it as zslFirstInLexRange."""
    if not _in_range(zset, spec):
        return None
    if zset.listpack and isinstance(spec, _LexRange):
        node = next((n for n in zset if spec.gte_min(n)), None)
    else:
        node = zset.first_where(lambda n: not spec.gte_min(n))
    return node if node is not None and spec.lte_max(node) else None


def last_in(zset: SortedSet, spec: Range) -> Optional[Node]:
    """The last element in range (see first_in)."""
    if not _in_range(zset, spec):
        return None
    if zset.listpack and isinstance(spec, _LexRange):
        node = next((n for n in zset.walk(zset.last, True) if spec.lte_max(n)), None)
    else:
        node = zset.last_where(spec.lte_max)
    return node if node is not None and spec.gte_min(node) else None


def _emit(session: Session, nodes: list[Node], withscores: bool, nested: bool) -> bytes:
    """A range's reply: members, or with scores flat (RESP2) or in pairs (RESP3)."""
    if not withscores:
        return bulk_array([n.member for n in nodes])
    if nested:
        return b"*%d\r\n" % len(nodes) + b"".join(
            b"*2\r\n" + encode_bulk(n.member) + reply_double(session, n.score) for n in nodes)
    return b"*%d\r\n" % (2 * len(nodes)) + b"".join(
        encode_bulk(n.member) + reply_double(session, n.score) for n in nodes)


def _by_rank(zset: SortedSet, start: int, end: int, reverse: bool) -> list[Node]:
    size = len(zset)
    if start < 0:
        start += size
    if end < 0:
        end += size
    start = max(start, 0)
    if start > end or start >= size:
        return []
    end = min(end, size - 1)
    first = zset.at(size - 1 - start if reverse else start)
    nodes = []
    for node in zset.walk(first, reverse):
        nodes.append(node)
        if len(nodes) == end - start + 1:
            break
    return nodes


def _by_range(zset: SortedSet, spec: Range, offset: int, limit: int, reverse: bool) -> list[Node]:
    """genericZrangeby{score,lex}Command: from the first (last) in range,
    skip offset, then up to limit (negative: no limit) while in range. A
    negative offset walks off the end in Redis: nothing."""
    if offset > 0 and offset >= len(zset):
        return []
    start = last_in(zset, spec) if reverse else first_in(zset, spec)
    if start is None or offset < 0:
        return []
    if offset:
        rank = zset.rank_of(start) + (-offset if reverse else offset)
        start = zset.at(rank)
    nodes: list[Node] = []
    for node in zset.walk(start, reverse):
        if len(nodes) == limit or not (spec.gte_min(node) if reverse else spec.lte_max(node)):
            break
        nodes.append(node)
    return nodes


_RANK, _SCORE, _LEX = "rank", "score", "lex"


def _zrange(session: Session, args: list[bytes], kind: Optional[str], reverse: Optional[bool]) -> bytes:
    """zrangeGenericCommand: ``kind``/``reverse`` None are ZRANGE's
    (options may set them)."""
    withscores = False
    offset, limit = 0, -1
    index = 4
    while index < len(args):
        word = _option(args[index])
        left = len(args) - index - 1
        if word == b"withscores":
            withscores = True
        elif word == b"limit" and left >= 2:
            offset_arg, limit_arg = _int(args[index + 1]), _int(args[index + 2])
            if offset_arg is None or limit_arg is None:
                return _NOT_INTEGER
            offset, limit = offset_arg, limit_arg
            index += 2
        elif reverse is None and word == b"rev":
            reverse = True
        elif kind is None and word == b"bylex":
            kind = _LEX
        elif kind is None and word == b"byscore":
            kind = _SCORE
        else:
            return SYNTAX_ERROR
        index += 1
    reverse = bool(reverse)
    kind = kind or _RANK
    if limit != -1 and kind == _RANK:
        return _error(b"ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    if withscores and kind == _LEX:
        return _error(b"ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    low, high = (args[3], args[2]) if reverse and kind != _RANK else (args[2], args[3])
    spec: Optional[Range] = None
    ranks: tuple[int, int] = (0, 0)
    if kind == _RANK:
        start, end = _int(low), _int(high)
        if start is None or end is None:
            return _NOT_INTEGER
        ranks = (start, end)
    elif kind == _SCORE:
        spec = parse_score_range(low, high)
        if spec is None:
            return _RANGE_NOT_FLOAT
    else:
        spec = parse_lex_range(low, high)
        if spec is None:
            return _LEX_INVALID
    zset = _zset(session, args[1])
    if zset is None:
        return _EMPTY
    if spec is None:
        nodes = _by_rank(zset, ranks[0], ranks[1], reverse)
    else:
        nodes = _by_range(zset, spec, offset, limit, reverse)
    return _emit(session, nodes, withscores, session.protocol == 3)


def cmd_zrange(session: Session, args: list[bytes]) -> bytes:
    """ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]."""
    return _zrange(session, args, None, None)


def cmd_zrevrange(session: Session, args: list[bytes]) -> bytes:
    """ZREVRANGE key start stop [WITHSCORES]."""
    return _zrange(session, args, _RANK, True)


def cmd_zrangebyscore(session: Session, args: list[bytes]) -> bytes:
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]."""
    return _zrange(session, args, _SCORE, False)


def cmd_zrevrangebyscore(session: Session, args: list[bytes]) -> bytes:
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]."""
    return _zrange(session, args, _SCORE, True)


def cmd_zrangebylex(session: Session, args: list[bytes]) -> bytes:
    """ZRANGEBYLEX key min max [LIMIT offset count]."""
    return _zrange(session, args, _LEX, False)


def cmd_zrevrangebylex(session: Session, args: list[bytes]) -> bytes:
    """ZREVRANGEBYLEX key max min [LIMIT offset count]."""
    return _zrange(session, args, _LEX, True)


def _count(session: Session, key: bytes, spec: Range) -> bytes:
    """ZCOUNT / ZLEXCOUNT: from the ranks of the first and last in range
    (a listpack's lexicographic count walks, as Redis's)."""
    zset = _zset(session, key)
    if zset is None:
        return b":0\r\n"
    first = first_in(zset, spec)
    if first is None:
        return b":0\r\n"
    if zset.listpack and isinstance(spec, _LexRange):
        count = 0
        for node in zset.walk(first):
            if not spec.lte_max(node):
                break
            count += 1
        return encode_integer(count)
    count = len(zset) - zset.rank_of(first)
    last = last_in(zset, spec)
    if last is not None:
        count -= len(zset) - 1 - zset.rank_of(last)
    return encode_integer(count)


def cmd_zcount(session: Session, args: list[bytes]) -> bytes:
    """ZCOUNT key min max: how many scores are in range."""
    spec = parse_score_range(args[2], args[3])
    return _RANGE_NOT_FLOAT if spec is None else _count(session, args[1], spec)


def cmd_zlexcount(session: Session, args: list[bytes]) -> bytes:
    """ZLEXCOUNT key min max: how many members are in the lexicographic range."""
    spec = parse_lex_range(args[2], args[3])
    return _LEX_INVALID if spec is None else _count(session, args[1], spec)


def _zremrange(session: Session, args: list[bytes], kind: str) -> bytes:
    """zremrangeGenericCommand: the range parsed first, then the key; how
    many were removed (O(log n) to the start, then the range)."""
    spec: Optional[Range] = None
    ranks: tuple[int, int] = (0, 0)
    if kind == _RANK:
        start, end = _int(args[2]), _int(args[3])
        if start is None or end is None:
            return _NOT_INTEGER
        ranks = (start, end)
    elif kind == _SCORE:
        spec = parse_score_range(args[2], args[3])
        if spec is None:
            return _RANGE_NOT_FLOAT
    else:
        spec = parse_lex_range(args[2], args[3])
        if spec is None:
            return _LEX_INVALID
    zset = _zset(session, args[1])
    if zset is None:
        return b":0\r\n"
    if spec is None:
        nodes = _by_rank(zset, ranks[0], ranks[1], False)
    else:
        nodes = []
        for node in zset.walk(first_in(zset, spec)):
            if not spec.lte_max(node):
                break
            nodes.append(node)
    for node in nodes:
        zset.remove(node.member)
    if nodes:
        _changed(session, args[1], zset)
    return encode_integer(len(nodes))


def cmd_zremrangebyrank(session: Session, args: list[bytes]) -> bytes:
    """ZREMRANGEBYRANK key start stop: remove the members ranked start..stop."""
    return _zremrange(session, args, _RANK)


def cmd_zremrangebyscore(session: Session, args: list[bytes]) -> bytes:
    """ZREMRANGEBYSCORE key min max: remove the members scored in range."""
    return _zremrange(session, args, _SCORE)


def cmd_zremrangebylex(session: Session, args: list[bytes]) -> bytes:
    """ZREMRANGEBYLEX key min max: remove the members in the lexicographic range."""
    return _zremrange(session, args, _LEX)


# --- pops and scans ----------------------------------------------------------------


def _zpop(session: Session, args: list[bytes], reverse: bool) -> bytes:
    if len(args) > 3:
        return SYNTAX_ERROR
    count = -1
    if len(args) == 3:
        parsed = _int(args[2])
        if parsed is None or parsed < 0:
            return _error(b"ERR value is out of range, must be positive")
        count = parsed
    zset = _zset(session, args[1])
    if zset is None or count == 0:
        return _EMPTY
    nested = session.protocol == 3 and count != -1
    nodes: list[Node] = []
    for node in zset.walk(zset.last if reverse else zset.first, reverse):
        if len(nodes) == max(count, 1):
            break
        nodes.append(node)
    reply = _emit(session, nodes, True, nested)
    for node in nodes:
        zset.remove(node.member)
    _changed(session, args[1], zset)
    return reply


def cmd_zpopmin(session: Session, args: list[bytes]) -> bytes:
    """ZPOPMIN key [count]: remove and return the lowest members with scores."""
    return _zpop(session, args, False)


def cmd_zpopmax(session: Session, args: list[bytes]) -> bytes:
    """ZPOPMAX key [count]: remove and return the highest members with scores."""
    return _zpop(session, args, True)


def cmd_zscan(session: Session, args: list[bytes]) -> bytes:
    """ZSCAN key cursor [MATCH pattern] [COUNT n]: members and scores (see fastnet.resp.scans)."""
    def pairs(zset: SortedSet) -> Callable[[bytes], list[bytes]]:
        return lambda member: [member, format_double(zset.scores[member])]
    return scan_reply(session, args, SortedSet, lambda z: z.listpack,
                      lambda z: [n.member for n in z], lambda z: z.scores, pairs)


_ZWRITE = (("write", "denyoom", "fast"), 1, 1, 1, ("@write", "@sortedset", "@fast"))
_ZREAD = (("readonly", "fast"), 1, 1, 1, ("@read", "@sortedset", "@fast"))
_ZSLOW = (("readonly",), 1, 1, 1, ("@read", "@sortedset", "@slow"))

#: The sorted-set commands, merged into fastnet.resp.commands.COMMANDS.
ZSET_COMMANDS: dict[bytes, Command] = {
    b"zadd": Command(cmd_zadd, -4, *_ZWRITE),
    b"zincrby": Command(cmd_zincrby, 4, *_ZWRITE),
    b"zrem": Command(cmd_zrem, -3, ("write", "fast"), 1, 1, 1, ("@write", "@sortedset", "@fast")),
    b"zcard": Command(cmd_zcard, 2, *_ZREAD),
    b"zscore": Command(cmd_zscore, 3, *_ZREAD),
    b"zmscore": Command(cmd_zmscore, -3, *_ZREAD),
    b"zrank": Command(cmd_zrank, 3, *_ZREAD),
    b"zrevrank": Command(cmd_zrevrank, 3, *_ZREAD),
    b"zcount": Command(cmd_zcount, 4, *_ZREAD),
    b"zlexcount": Command(cmd_zlexcount, 4, *_ZREAD),
    b"zrange": Command(cmd_zrange, -4, *_ZSLOW),
    b"zrevrange": Command(cmd_zrevrange, -4, *_ZSLOW),
    b"zrangebyscore": Command(cmd_zrangebyscore, -4, *_ZSLOW),
    b"zrevrangebyscore": Command(cmd_zrevrangebyscore, -4, *_ZSLOW),
    b"zrangebylex": Command(cmd_zrangebylex, -4, *_ZSLOW),
    b"zrevrangebylex": Command(cmd_zrevrangebylex, -4, *_ZSLOW),
    b"zpopmin": Command(cmd_zpopmin, -2, ("write", "fast"), 1, 1, 1, ("@write", "@sortedset", "@fast")),
    b"zpopmax": Command(cmd_zpopmax, -2, ("write", "fast"), 1, 1, 1, ("@write", "@sortedset", "@fast")),
    b"zscan": Command(cmd_zscan, -3, *_ZSLOW),
    b"zremrangebyrank": Command(cmd_zremrangebyrank, 4, ("write",), 1, 1, 1, ("@write", "@sortedset", "@slow")),
    b"zremrangebyscore": Command(cmd_zremrangebyscore, 4, ("write",), 1, 1, 1, ("@write", "@sortedset", "@slow")),
    b"zremrangebylex": Command(cmd_zremrangebylex, 4, ("write",), 1, 1, 1, ("@write", "@sortedset", "@slow")),
}
