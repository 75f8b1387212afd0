"""RespServer's server features through redis-py and raw sockets, on the C
and Python engines with both codec twins: databases (SELECT, MOVE,
SWAPDB, redis-py's ``db=``), and the sans-IO table's view of them. The
byte-for-byte comparisons with redis-server are in tests/test_resp_vs_redis.py."""
from __future__ import annotations

import pytest
import redis

from fastnet import codec
from fastnet.resp import RespServer, Session, Store, execute
from fastnet.resp.shared import Shared
from helpers import GUARD, running_resp_server

COMBOS = [(e, c) for e in ("c", "python") for c in ("c", "python")]


@pytest.fixture(params=COMBOS, ids=[f"{e}-{c}codec" for e, c in COMBOS])
def served(request):
    """(server, port) on one engine and one codec twin."""
    engine, twin = request.param
    if twin not in codec.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")
    with running_resp_server(engine, twin) as pair:
        yield pair


def client(port: int, **options) -> redis.Redis:
    return redis.Redis(port=port, decode_responses=True, socket_timeout=GUARD,
                       socket_connect_timeout=GUARD, **options)


# --- databases ------------------------------------------------------------------------


def test_redis_py_db_selects_a_database(served):
    server, port = served
    zero, five = client(port), client(port, db=5)
    try:
        five.set("k", "five")
        assert zero.get("k") is None
        assert five.get("k") == "five"
        assert five.move("k", 0) is True
        assert (zero.get("k"), five.get("k")) == ("five", None)
        five.set("only5", "x")
        assert zero.swapdb(0, 5) is True
        assert (zero.get("only5"), five.get("k")) == ("x", "five")
        assert zero.info("keyspace") == {"db0": {"keys": 1, "expires": 0, "avg_ttl": 0},
                                         "db5": {"keys": 1, "expires": 0, "avg_ttl": 0}}
        five.flushdb()
        assert zero.dbsize() == 1 and five.dbsize() == 0
        zero.flushall()
        assert zero.dbsize() == 0
        assert zero.config_get("databases") == {"databases": "16"}
    finally:
        zero.close()
        five.close()


def test_move_keeps_the_ttl(served):
    _, port = served
    r = client(port)
    try:
        r.set("k", "v", ex=1000)
        assert r.move("k", 3)
        r.execute_command("SELECT", 3)
        assert 990 <= r.ttl("k") <= 1000
    finally:
        r.close()


def test_databases_option():
    server = RespServer(engine="python", databases=2)
    session = Session(server.store, shared=server.shared)
    assert execute(session, [b"SELECT", b"1"]) == b"+OK\r\n"
    assert execute(session, [b"SELECT", b"2"]) == b"-ERR DB index is out of range\r\n"
    assert server.config()[b"databases"] == b"2"
    with pytest.raises(ValueError, match="at least 1"):
        Shared.of(0)


def test_sans_io_session_has_one_database():
    session = Session(Store())
    assert execute(session, [b"SELECT", b"0"]) == b"+OK\r\n"
    assert execute(session, [b"SELECT", b"1"]) == b"-ERR DB index is out of range\r\n"
    assert execute(session, [b"MOVE", b"k", b"0"]) == \
        b"-ERR source and destination objects are the same\r\n"
