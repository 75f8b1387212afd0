"""redis-py's sorted-set, scan and float APIs against fastnet, on every
engine, in RESP2 and RESP3 (redis-py parses scores itself: RESP2 bulk
strings, RESP3 doubles, so both reply forms are read by a real client)."""
from __future__ import annotations

import pytest
import redis

from helpers import ENGINES, GUARD, running_resp_server


@pytest.fixture(params=ENGINES)
def port(request):
    with running_resp_server(request.param, "c" if request.param == "c" else "python") as (_, port):
        yield port


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(port, request):
    client = redis.Redis(port=port, protocol=request.param, decode_responses=True,
                         socket_timeout=GUARD, socket_connect_timeout=GUARD)
    yield client
    client.close()


def pairs(reply) -> list[tuple]:
    """(member, score) pairs: redis-py gives tuples in RESP2, lists in RESP3."""
    return [tuple(p) for p in reply]


def test_sorted_sets_through_redis_py(r):
    assert r.zadd("board", {"ann": 3, "bob": 1.5, "cy": 2}) == 3
    assert r.zadd("board", {"bob": 5}, gt=True, ch=True) == 1
    assert r.zincrby("board", 0.25, "cy") == 2.25
    assert pairs(r.zrange("board", 0, -1, withscores=True)) == [("cy", 2.25), ("ann", 3.0), ("bob", 5.0)]
    assert r.zrevrange("board", 0, 0) == ["bob"]
    assert pairs(r.zrangebyscore("board", "(2.25", "+inf", withscores=True)) == [("ann", 3.0), ("bob", 5.0)]
    assert r.zrange("board", "+inf", 3, byscore=True, desc=True, offset=0, num=1) == ["bob"]
    assert (r.zrank("board", "ann"), r.zrevrank("board", "ann"), r.zcard("board")) == (1, 1, 3)
    assert r.zscore("board", "nobody") is None and r.zmscore("board", ["ann", "x"]) == [3.0, None]
    assert r.zcount("board", 2, 3) == 2
    assert pairs(r.zpopmin("board", 1)) == [("cy", 2.25)]
    assert pairs(r.zpopmax("board", 2)) == [("bob", 5.0), ("ann", 3.0)]
    assert not r.exists("board")
    r.zadd("lex", {m: 0 for m in "abcde"})
    assert r.zrangebylex("lex", "[b", "(d") == ["b", "c"] and r.zlexcount("lex", "-", "+") == 5
    assert r.zremrangebylex("lex", "[d", "+") == 2 and r.type("lex") == "zset"


def test_scan_iterators_see_every_element_once(r):
    """redis-py's *scan_iter drive the cursors to the end: 1,000 elements
    (past the compact encodings), each exactly once."""
    r.hset("h", mapping={f"f{i}": i for i in range(1000)})
    r.sadd("s", *[f"m{i}" for i in range(1000)])
    r.zadd("z", {f"m{i}": i for i in range(1000)})
    fields = [f for f, _ in r.hscan_iter("h", count=17)]
    members = list(r.sscan_iter("s", count=17))
    scored = pairs(r.zscan_iter("z", count=17))
    assert sorted(fields) == sorted(f"f{i}" for i in range(1000)) and len(fields) == 1000
    assert sorted(members) == sorted(f"m{i}" for i in range(1000)) and len(members) == 1000
    assert sorted(scored, key=lambda p: p[1]) == [(f"m{i}", float(i)) for i in range(1000)]
    assert sorted(f for f, _ in r.hscan_iter("h", match="f99*")) == ["f99", "f990", "f991", "f992", "f993",
                                                                     "f994", "f995", "f996", "f997", "f998",
                                                                     "f999"]


def test_floats_bits_and_lists_through_redis_py(r):
    r.set("f", "1.6")
    assert r.incrbyfloat("f", 0.1) == 1.7 and r.get("f") == "1.7"
    assert r.hincrbyfloat("h2", "x", 2.5) == 2.5
    assert r.setbit("bits", 7, 1) == 0 and r.getbit("bits", 7) == 1 and r.bitcount("bits") == 1
    assert r.bitpos("bits", 1) == 7 and r.bitop("NOT", "inv", "bits") == 1 and r.getbit("inv", 7) == 0
    r.rpush("l", "a", "b", "a", "c")
    assert r.lpos("l", "a", rank=-1) == 2 and r.lpos("l", "a", count=0) == [0, 2]
    assert r.lrem("l", 0, "a") == 2 and r.linsert("l", "before", "c", "z") == 3
    assert r.lmove("l", "l2", "LEFT", "RIGHT") == "b" and r.lrange("l2", 0, -1) == ["b"]
    r.sadd("s1", "a", "b", "c")
    r.sadd("s2", "b")
    assert r.sdiff("s1", "s2") == {"a", "c"} and r.sinterstore("both", ["s1", "s2"]) == 1
    assert r.copy("s1", "s3") and r.smembers("s3") == {"a", "b", "c"}
    assert r.getrange("f", 0, 0) == "1" and r.setrange("f", 1, "!") == 3 and r.get("f") == "1!7"
    assert r.object("encoding", "s1") == "hashtable" and r.object("encoding", "l") == "quicklist"
