"""The sorted set's skip list against a sorted-list model, and the number
texts of fastnet.resp.floats against their C definitions."""
from __future__ import annotations

import ctypes
import ctypes.util
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from fastnet.resp.floats import LongDouble, format_double, parse_double, parse_range_bound, strtod_prefix
from fastnet.resp.sortedset import LISTPACK_MAX_ENTRIES, SortedSet

members = st.binary(max_size=3) | st.sampled_from([b"m" * 70, b"a", b"b"])
scores = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1.5, math.inf, -math.inf, 2.0]) | st.floats(allow_nan=False)
operations = st.lists(st.tuples(st.sampled_from(["add", "add", "remove"]), members, scores), max_size=300)


def check(zset: SortedSet, model: dict[bytes, float]) -> None:
    expected = sorted(model, key=lambda m: (model[m], m))
    assert [n.member for n in zset] == expected
    assert [n.member for n in zset.walk(zset.last, reverse=True)] == expected[::-1]
    assert zset.scores == model and len(zset) == len(model)
    for rank, member in enumerate(expected):
        assert zset.rank(member) == rank
        node = zset.at(rank)
        assert node is not None and node.member == member
    assert zset.at(len(model)) is None and zset.at(-1) is None
    # every level's spans add up to the length (the rank arithmetic rests on it)
    head = zset._head
    for level in range(zset._level):
        total, node = 0, head
        while node is not None:
            total += node.span[level] if node.forward[level] is not None else 0
            node = node.forward[level]
        assert total == len(model) or level > 0 and total <= len(model)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_skip_list_matches_a_sorted_model(ops):
    zset = SortedSet()
    model: dict[bytes, float] = {}
    for op, member, score in ops:
        if op == "add":
            zset.add(member, score)
            model[member] = 0.0 if zset.listpack and score == 0 else score
            if member in model and zset.scores[member] != model[member]:
                model[member] = zset.scores[member]  # -0 kept once a skip list
        else:
            assert zset.remove(member) == (model.pop(member, None) is not None)
    check(zset, model)


def test_listpack_flag_follows_redis_bounds():
    zset = SortedSet()
    for i in range(LISTPACK_MAX_ENTRIES):
        zset.add(b"%d" % i, float(i))
    assert zset.listpack
    zset.add(b"one-more", 0.0)
    assert not zset.listpack
    zset.remove(b"one-more")
    assert not zset.listpack  # Redis never converts back
    small = SortedSet()
    small.add(b"x" * 65, 1.0)
    assert not small.listpack


def test_rank_walks_are_logarithmic():
    """Inserts and rank queries compare O(log n) scores: every score is a
    float that counts its comparisons (100,000 members; a linear walk would
    make ~50,000 per query, the skip list makes a few dozen)."""
    comparisons = 0

    class Counting(float):
        def __gt__(self, other):
            nonlocal comparisons
            comparisons += 1
            return float.__gt__(self, other)


    zset = SortedSet()
    n = 100_000
    for i in range(n):
        zset.add(b"%06d" % i, Counting(i))
    assert comparisons < 200 * n
    for rank in (0, 50_000, 99_999, 73_123):
        comparisons = 0
        node = zset.at(rank)
        assert node is not None and zset.rank(node.member) == rank
        assert comparisons < 300, comparisons
    comparisons = 0
    zset.add(b"new", Counting(12_345.5))
    zset.remove(b"000007")
    assert comparisons < 600, comparisons


_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.strtod.restype = ctypes.c_double
_libc.strtod.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]

texts = st.one_of(
    st.from_regex(rb"\A[ \t]?[+-]?(0[xX])?[0-9a-fA-F.]{0,6}([eEpP][+-]?[0-9]{0,4})?[ x]?\Z"),
    st.sampled_from([b"inf", b"-Infinity", b"infin", b"nan", b"NaN(12)", b"1e400", b"1e-400", b"-0",
                     b"4.9e-324", b"2.4e-324", b".", b"+", b"0x", b"0x1p-1074", b"1e", b"1e+", b""]),
)


@settings(max_examples=500, deadline=None)
@given(texts)
def test_strtod_prefix_is_libc_strtod(text):
    end = ctypes.c_char_p()
    buffer = ctypes.create_string_buffer(text)
    value = _libc.strtod(buffer, ctypes.byref(end))
    consumed = ctypes.cast(end, ctypes.c_void_p).value - ctypes.addressof(buffer)
    parsed = strtod_prefix(text)
    if parsed is None:
        assert consumed == 0
        return
    assert parsed.end == consumed
    ours = parse_range_bound(text[:parsed.end])
    if math.isnan(value):
        assert ours is None
    else:
        assert ours is not None and format_double(ours) == format_double(value)


def test_redis_double_rules():
    assert parse_double(b"1.5") == 1.5
    assert parse_double(b" 1") is None and parse_double(b"1 ") is None and parse_double(b"") is None
    assert parse_double(b"1e400") is None and parse_double(b"1e-400") is None  # ERANGE
    assert parse_double(b"4.9e-324") == 5e-324  # a subnormal is no error
    assert parse_double(b"nan") is None and parse_double(b"inf") == math.inf
    assert parse_range_bound(b"") == 0.0 and parse_range_bound(b"1\x00z") == 1.0
    assert parse_range_bound(b" 2") == 2.0 and parse_range_bound(b"1e400") == math.inf
    assert format_double(1.1) == b"1.1000000000000001" and format_double(-math.inf) == b"-inf"
    assert format_double(-0.0) == b"-0"


def test_long_double_formatting():
    def incr(a: bytes, b: bytes) -> bytes:
        x, y = LongDouble.parse(a), LongDouble.parse(b)
        assert isinstance(x, LongDouble) and isinstance(y, LongDouble)
        total = x.add(y)
        assert total is not None
        return total.human()

    assert incr(b"1.6", b"0.1") == b"1.7"  # doubles would print 1.70000000000000018
    assert incr(b"10.5", b"0.1") == b"10.6"
    assert incr(b"5.0e3", b"2.0e2") == b"5200"
    assert incr(b"0", b"-0.0000000000000000001") == b"0"  # "-0" is printed 0
    # no overflow in 80 bits; digits and the tie (ties to even) as redis-server prints them
    assert incr(b"1e308", b"1e308")[:40] == b"1999999999999999999933717593116912913211"
    assert incr(b"1", b"0.000003814697265625") == b"1.00000381469726562"
    assert LongDouble.parse(b"1e5000") is None and LongDouble.parse(b"1e-5000") is None
    assert LongDouble.parse(b"inf") == math.inf and LongDouble.parse(b"nan") is None
    assert LongDouble.parse(b"1" * 5120) is None  # MAX_LONG_DOUBLE_CHARS
