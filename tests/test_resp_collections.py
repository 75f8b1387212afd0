"""Collections through the command table: HSCAN/SSCAN/ZSCAN cursors under
concurrent changes, the compact encodings answered whole, and the
complexity guard (100,000 elements per type; the operations that must not
be linear per call are not)."""
from __future__ import annotations

import random
import time
from typing import Callable

import pytest

from fastnet.codec import RespReplyDecoder
from fastnet.resp import Session, Store, execute
from fastnet.resp.sortedset import SortedSet


def run(session: Session, *args: bytes) -> object:
    decoder = RespReplyDecoder()
    decoder.feed(execute(session, list(args)))
    (value,) = decoder.replies()
    return value


SCANS = {
    b"hscan": (b"HSET", lambda i: [b"f%d" % i, b"v"], 2),
    b"sscan": (b"SADD", lambda i: [b"m%d" % i], 1),
    b"zscan": (b"ZADD", lambda i: [b"%d" % (i % 7), b"m%d" % i], 2),
}


@pytest.mark.parametrize("scan", list(SCANS))
def test_scan_returns_stable_elements_exactly_once_under_changes(scan):
    """2,000 elements (past the compact encodings) walked COUNT 7 at a
    time while others are added and removed between calls: every element
    present throughout comes back exactly once, nothing comes back twice."""
    add, element, width = SCANS[scan]
    session = Session(Store())
    stable = set(range(1000))
    churn = list(range(1000, 2000))
    for i in [*stable, *churn]:
        run(session, add, b"k", *element(i))
    seen: list[bytes] = []
    cursor = b"0"
    rng = random.Random(7)
    calls = 0
    while True:
        cursor, items = run(session, scan.upper(), b"k", cursor, b"COUNT", b"7")
        seen += items[::width]
        calls += 1
        if cursor == b"0":
            break
        # churn: remove one, add a new one
        victim = churn.pop(rng.randrange(len(churn)))
        remove = {b"hscan": b"HDEL", b"sscan": b"SREM", b"zscan": b"ZREM"}[scan]
        run(session, remove, b"k", element(victim)[-1])
        new = 5000 + calls
        churn.append(new)
        run(session, add, b"k", *element(new))
    assert len(seen) == len(set(seen)), "an element came back twice"
    names = {element(i)[-1] if scan != b"hscan" else element(i)[0] for i in stable}
    assert names <= set(seen)
    assert calls > 2000 // 7 // 2  # walked in steps, not answered whole


@pytest.mark.parametrize("scan,fill,expected", [
    (b"HSCAN", [b"HSET", b"k", b"b", b"1", b"a", b"2"], [b"b", b"1", b"a", b"2"]),  # insertion order
    (b"SSCAN", [b"SADD", b"k", b"10", b"-3", b"2"], [b"-3", b"2", b"10"]),  # an intset: numeric order
    (b"ZSCAN", [b"ZADD", b"k", b"2", b"x", b"1", b"y"], [b"y", b"1", b"x", b"2"]),  # score order
])
def test_compact_collections_are_answered_whole(scan, fill, expected):
    """Redis answers a listpack or an intset in one reply whatever COUNT
    says, in the encoding's order; so does fastnet."""
    session = Session(Store())
    run(session, *fill)
    assert run(session, scan, b"k", b"0", b"COUNT", b"1") == [b"0", expected]
    assert run(session, scan, b"k", b"0", b"MATCH", b"[by]*") == [b"0", [
        x for pair in zip(expected[::2], expected[1::2]) if pair[0][:1] in b"by" for x in pair]
        if scan != b"SSCAN" else []]


# --- the complexity guard ----------------------------------------------------------

SMALL, LARGE = 1_000, 100_000
CALLS = 150  # x 5 rounds: fewer than the small list holds (LPOP)


def _fill(session: Session, kind: str, n: int) -> None:
    store = session.store
    if kind == "zset":
        zset = SortedSet()
        for i in range(n):
            zset.add(b"m%d" % i, float(i))
        store.set(b"k", zset)
    elif kind == "list":
        run(session, b"RPUSH", b"k", *[b"e%d" % i for i in range(n)])
    elif kind == "hash":
        run(session, b"HSET", b"k", *[x for i in range(n) for x in (b"f%d" % i, b"v")])
    else:
        run(session, b"SADD", b"k", *[b"m%d" % i for i in range(n)])


#: (type, name, the i-th call's arguments given the size n)
OPERATIONS: list[tuple[str, str, Callable[[int, int], list[bytes]]]] = [
    ("zset", "ZADD", lambda n, i: [b"ZADD", b"k", b"%d.5" % (i * 7919 % n), b"new%d" % i]),
    ("zset", "ZRANK", lambda n, i: [b"ZRANK", b"k", b"m%d" % (i * 7919 % n)]),
    ("zset", "ZRANGE", lambda n, i: [b"ZRANGE", b"k", b"%d" % (n // 2), b"%d" % (n // 2 + 9)]),
    ("zset", "ZRANGEBYSCORE", lambda n, i: [b"ZRANGEBYSCORE", b"k", b"%d" % (n // 2), b"+inf",
                                            b"LIMIT", b"0", b"10"]),
    ("zset", "ZCOUNT", lambda n, i: [b"ZCOUNT", b"k", b"%d" % (n // 3), b"%d" % (n // 2)]),
    ("list", "LPUSH", lambda n, i: [b"LPUSH", b"k", b"x"]),
    ("list", "LPOP", lambda n, i: [b"LPOP", b"k"]),
    ("hash", "HSET", lambda n, i: [b"HSET", b"k", b"new%d" % i, b"v"]),
    ("set", "SADD", lambda n, i: [b"SADD", b"k", b"new%d" % i]),
    ("set", "SISMEMBER", lambda n, i: [b"SISMEMBER", b"k", b"m%d" % (i * 7919 % n)]),
    ("set", "SRANDMEMBER", lambda n, i: [b"SRANDMEMBER", b"k"]),
    ("set", "SRANDMEMBER 10", lambda n, i: [b"SRANDMEMBER", b"k", b"10"]),
    ("set", "SRANDMEMBER -10", lambda n, i: [b"SRANDMEMBER", b"k", b"-10"]),
    ("set", "SPOP", lambda n, i: [b"SPOP", b"k"]),
    ("set", "SPOP 1", lambda n, i: [b"SPOP", b"k", b"1"]),
]


def _per_call(session: Session, make: Callable[[int, int], list[bytes]], n: int) -> float:
    calls = [make(n, i) for i in range(CALLS)]
    start = time.perf_counter()
    for args in calls:
        execute(session, args)
    return (time.perf_counter() - start) / CALLS


@pytest.mark.parametrize("kind,name,make", OPERATIONS, ids=[op[1] for op in OPERATIONS])
def test_operations_are_not_linear_in_the_collection_size(kind, name, make):
    """The cost per call at 100,000 elements against 1,000: a linear
    operation is ~100x slower; the bound is 15x, and each size keeps its
    fastest of 5 interleaved rounds, so load (which only adds time, to
    either side) cannot make an O(1) or O(log n) operation fail it."""
    small, large = Session(Store()), Session(Store())
    _fill(small, kind, SMALL)
    _fill(large, kind, LARGE)
    best_small = best_large = float("inf")
    for _ in range(5):
        best_small = min(best_small, _per_call(small, make, SMALL))
        best_large = min(best_large, _per_call(large, make, LARGE))
    assert best_large < 15 * best_small, f"{name}: {best_large / best_small:.1f}x slower at {LARGE}"


def test_bounds_are_refused_as_redis_words_them():
    """Nothing grows with a number alone: SETRANGE and SETBIT past
    proto-max-bulk-len (512 MiB) get Redis's errors and store nothing, and
    SRANDMEMBER's repeating (negative) count is bounded by
    limits.DEFAULT_RESP_MAX_RANDOM_COUNT, in Redis's own range error."""
    from fastnet.limits import DEFAULT_RESP_MAX_BULK_LEN, DEFAULT_RESP_MAX_RANDOM_COUNT

    session = Session(Store())
    big = b"%d" % DEFAULT_RESP_MAX_BULK_LEN
    assert execute(session, [b"SETRANGE", b"k", big, b"x"]) == (
        b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n")
    assert execute(session, [b"SETBIT", b"k", b"%d" % (8 * DEFAULT_RESP_MAX_BULK_LEN), b"1"]) == (
        b"-ERR bit offset is not an integer or out of range\r\n")
    assert execute(session, [b"EXISTS", b"k"]) == b":0\r\n"
    execute(session, [b"SADD", b"s", b"a"])
    over = b"-%d" % (DEFAULT_RESP_MAX_RANDOM_COUNT + 1)
    assert execute(session, [b"SRANDMEMBER", b"s", over]) == (
        b"-ERR value is out of range, value must between -%d and 9223372036854775807\r\n"
        % DEFAULT_RESP_MAX_RANDOM_COUNT)
    assert execute(session, [b"SRANDMEMBER", b"s", b"-3"]) == b"*3\r\n" + b"$1\r\na\r\n" * 3


# --- random members ----------------------------------------------------------------

#: The chi-square statistic's 0.1th and 99.9th percentiles for 99 degrees
#: of freedom (Wilson-Hilferty): independent uniform draws fall outside
#: one time in five hundred.
CHI_SQUARE_99_DF = (61.14, 148.23)


@pytest.mark.parametrize("command", [[b"SPOP", b"k"], [b"SPOP", b"k", b"5"], [b"SRANDMEMBER", b"k"],
                                     [b"SRANDMEMBER", b"k", b"5"], [b"SRANDMEMBER", b"k", b"-5"]],
                         ids=lambda c: b" ".join(c[:1] + c[2:]).decode())
def test_random_members_are_uniform(command):
    """Each of 100 members is drawn as often as the others, and no more
    evenly than chance allows: 10,000 draws (SPOP's members added back
    after each call) counted per member, and the chi-square statistic
    between its 0.1th and 99.9th percentiles. The generator is seeded, so
    the outcome is fixed. A draw that favours members lands above; one
    that cycles through them lands below (set.pop(), which SPOP used on
    sets of 64 or more, walks the hash table: popped and added back, it
    returns each member in turn)."""
    state = random.getstate()
    random.seed(20)
    try:
        session = Session(Store())
        members = [b"m%d" % i for i in range(100)]
        run(session, b"SADD", b"k", *members)
        counts = dict.fromkeys(members, 0)
        drawn = 0
        while drawn < 10_000:
            reply = run(session, *command)
            got = reply if isinstance(reply, list) else [reply]
            assert len(got) == (abs(int(command[2])) if len(command) == 3 else 1)
            if command[2:] != [b"-5"]:
                assert len(set(got)) == len(got), "a positive count repeated a member"
            for member in got:
                counts[member] += 1
            drawn += len(got)
            if command[0] == b"SPOP":
                run(session, b"SADD", b"k", *got)
        assert run(session, b"SCARD", b"k") == 100
    finally:
        random.setstate(state)
    expected = drawn / len(members)
    statistic = sum((count - expected) ** 2 / expected for count in counts.values())
    low, high = CHI_SQUARE_99_DF
    assert low < statistic < high, (statistic, counts)
