"""fastnet.resp: the keyspace and the Redis command table.

Unit tests run on an injected clock. test_matches_real_redis replays
hypothesis-generated scripts on redis-server 7.0.15 and on the executor and
requires byte-identical replies, except: KEYS and SCAN replies are compared
as sorted sets (hash order is Redis's own; SCAN cursors are compared and
are 0 since the keyspace is far below COUNT; a SCAN from any other cursor
is only checked to succeed or fail alike), TTL may differ by 1 and PTTL
by 100 ms (the two clocks start a few ms apart). Expiry amounts are never
small positives, so no key expires while an example runs. Option words are
C strings to Redis (strcasecmp): b"NX\\0z" is NX, and the scripts check it.
"""
from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnet.codec import NEED_DATA, RespReplyDecoder, encode_command
from fastnet.resp import Session, Store, execute
from fastnet.resp.commands import compile_glob, glob_match
from helpers import redis_server


class Clock:
    """A settable clock pair: monotonic ms and Unix ms, moving together."""

    def __init__(self) -> None:
        self.mono = 1_000
        self.wall = 1_700_000_000_000

    def advance(self, ms: int) -> None:
        self.mono += ms
        self.wall += ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def session(clock: Clock) -> Session:
    return Session(Store(clock=lambda: clock.mono, wall_clock=lambda: clock.wall))


def run(session: Session, *args: bytes | str) -> bytes:
    return execute(session, [a.encode() if isinstance(a, str) else a for a in args])


# --- unit tests -----------------------------------------------------------------


def test_ping_echo_case_insensitive(session):
    assert run(session, "PiNg") == b"+PONG\r\n"
    assert run(session, "ping", "hi") == b"$2\r\nhi\r\n"
    assert run(session, "ping", "a", "b") == b"-ERR wrong number of arguments for 'ping' command\r\n"
    assert run(session, "ECHO", "x") == b"$1\r\nx\r\n"


def test_unknown_and_arity_errors(session):
    assert run(session, "foo", "a", "b") == b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"
    assert run(session, "foo") == b"-ERR unknown command 'foo', with args beginning with: \r\n"
    assert run(session, "GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert run(session, "mset", "a") == b"-ERR wrong number of arguments for 'mset' command\r\n"
    assert run(session, "mset", "a", "1", "b") == b"-ERR wrong number of arguments for 'mset' command\r\n"


def test_empty_command_is_a_caller_error(session):
    with pytest.raises(ValueError):
        execute(session, [])


def test_unknown_command_quotes_at_most_128_bytes(session):
    reply = run(session, "nope", "x" * 300, "y")
    assert reply == b"-ERR unknown command 'nope', with args beginning with: '" + b"x" * 128 + b"' \r\n"
    assert b"\n" not in run(session, "a\nb", "c\rd")[:-2]


def test_set_get_options(session, clock):
    assert run(session, "SET", "k", "v") == b"+OK\r\n"
    assert run(session, "SET", "k", "w", "NX") == b"$-1\r\n"
    assert run(session, "SET", "k", "w", "XX", "GET") == b"$1\r\nv\r\n"
    assert run(session, "SET", "n", "w", "XX") == b"$-1\r\n"
    assert run(session, "SET", "k", "v", "NX", "XX") == b"-ERR syntax error\r\n"
    assert run(session, "SET", "k", "v", "EX", "1", "PX", "5") == b"-ERR syntax error\r\n"
    assert run(session, "SET", "k", "v", "KEEPTTL", "EX", "5") == b"-ERR syntax error\r\n"
    assert run(session, "SET", "k", "v", "EX") == b"-ERR syntax error\r\n"
    assert run(session, "SET", "k", "v", "EX", "x") == b"-ERR value is not an integer or out of range\r\n"
    assert run(session, "SET", "k", "v", "EX", "0") == b"-ERR invalid expire time in 'set' command\r\n"
    assert run(session, "SET", "k", "v", "EX", "10") == b"+OK\r\n"
    assert run(session, "TTL", "k") == b":10\r\n"
    assert run(session, "SET", "k", "v2", "KEEPTTL") == b"+OK\r\n"
    assert run(session, "PTTL", "k") == b":10000\r\n"
    assert run(session, "SET", "k", "v3") == b"+OK\r\n"
    assert run(session, "TTL", "k") == b":-1\r\n"
    assert run(session, "SET", "k", "v", "PXAT", str(clock.wall + 2500)) == b"+OK\r\n"
    assert run(session, "TTL", "k") == b":3\r\n"  # (2500 + 500) // 1000, as Redis rounds
    clock.advance(2500)
    assert run(session, "GET", "k") == b"$-1\r\n"
    assert run(session, "TTL", "k") == b":-2\r\n"


def test_resp3_null(session):
    assert run(session, "HELLO", "3").startswith(b"%7\r\n$6\r\nserver\r\n")
    assert run(session, "GET", "nope") == b"_\r\n"
    assert run(session, "MGET", "nope", "nope") == b"*2\r\n_\r\n_\r\n"
    assert run(session, "HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n"
    assert session.protocol == 3
    assert run(session, "HELLO", "2", "AUTH", "bob", "pw", "SETNAME", "a b") == (
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
    assert run(session, "HELLO", "2", "AUTH", "default", "any", "SETNAME", "me").startswith(b"*14\r\n")
    assert (session.protocol, session.name) == (2, b"me")


def test_incr_family(session):
    assert run(session, "INCR", "n") == b":1\r\n"
    assert run(session, "INCRBY", "n", "41") == b":42\r\n"
    assert run(session, "DECRBY", "n", "2") == b":40\r\n"
    assert run(session, "DECR", "n") == b":39\r\n"
    assert run(session, "INCRBY", "n", "1.5") == b"-ERR value is not an integer or out of range\r\n"
    run(session, "SET", "n", "9223372036854775807")
    assert run(session, "INCR", "n") == b"-ERR increment or decrement would overflow\r\n"
    assert run(session, "DECRBY", "n", "-9223372036854775808") == b"-ERR decrement would overflow\r\n"
    run(session, "SET", "s", "01")
    assert run(session, "INCR", "s") == b"-ERR value is not an integer or out of range\r\n"


def test_append_strlen_del_exists(session):
    assert run(session, "APPEND", "a", "xy") == b":2\r\n"
    assert run(session, "APPEND", "a", "z") == b":3\r\n"
    assert run(session, "STRLEN", "a") == b":3\r\n"
    assert run(session, "EXISTS", "a", "a", "b") == b":2\r\n"
    assert run(session, "DEL", "a", "a", "b") == b":1\r\n"
    assert run(session, "DBSIZE") == b":0\r\n"


def test_expire_options(session, clock):
    run(session, "SET", "k", "v")
    assert run(session, "EXPIRE", "k", "10", "XX") == b":0\r\n"
    assert run(session, "EXPIRE", "k", "10", "GT") == b":0\r\n"  # no TTL counts as infinite
    assert run(session, "EXPIRE", "k", "10", "NX") == b":1\r\n"
    assert run(session, "EXPIRE", "k", "5", "GT") == b":0\r\n"
    assert run(session, "EXPIRE", "k", "5", "LT") == b":1\r\n"
    assert run(session, "PEXPIRE", "k", "100", "NX", "XX") == (
        b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n")
    assert run(session, "EXPIRE", "k", "1", "GT", "LT") == b"-ERR GT and LT options at the same time are not compatible\r\n"
    assert run(session, "EXPIRE", "k", "1", "foo") == b"-ERR Unsupported option foo\r\n"
    assert run(session, "EXPIRE", "k", "9223372036854775807") == b"-ERR invalid expire time in 'expire' command\r\n"
    assert run(session, "PERSIST", "k") == b":1\r\n"
    assert run(session, "PERSIST", "k") == b":0\r\n"
    assert run(session, "EXPIRE", "k", "-1") == b":1\r\n"
    assert run(session, "EXISTS", "k") == b":0\r\n"
    assert run(session, "EXPIRE", "k", "5") == b":0\r\n"


def test_active_expire_is_bounded(clock):
    store = Store(clock=lambda: clock.mono, wall_clock=lambda: clock.wall)
    for i in range(100):
        store.set(b"%d" % i, b"v")
        store.set_deadline(b"%d" % i, clock.mono + (10 if i % 2 else 10_000))
    store.set(b"forever", b"v")
    clock.advance(20)
    assert store.active_expire(clock.mono, 10) <= 10
    assert len(store) > 50
    while store.active_expire(clock.mono, 10):
        pass
    for _ in range(10):  # odd keys are visited round-robin: all go eventually
        store.active_expire(clock.mono, 10)
    assert len(store) == 51


def test_scan_survives_deletions(session):
    keys = [b"k%03d" % i for i in range(200)]
    for key in keys:
        run(session, "SET", key, "v")
    seen: list[bytes] = []
    cursor = b"0"
    decoder = RespReplyDecoder()
    deleted: set[bytes] = set()
    while True:
        decoder.feed(run(session, "SCAN", cursor, "COUNT", "7"))
        cursor, batch = decoder.next_reply()
        seen += batch
        for key in keys[len(seen) * 2 % 200 :][:3]:  # delete keys ahead and behind
            if key not in seen and run(session, "DEL", key) == b":1\r\n":
                deleted.add(key)
        run(session, "SET", b"new%d" % len(seen), "v")
        if cursor == b"0":
            break
    survivors = set(keys) - deleted
    assert survivors <= set(seen)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("pattern,string,expected", [
    (b"*", b"", False), (b"", b"", True), (b"a*", b"a", True), (b"h?llo", b"hello", True),
    (b"h[ae]llo", b"hallo", True), (b"h[^e]llo", b"hello", False), (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hallo", True), (b"\\*", b"*", True), (b"\\*", b"a", False), (b"[]", b"a", False),
    (b"[abc", b"c", True), (b"*a*a*a*a*a*a*a*a*a*a*a*a*b", b"a" * 5000, False),
    # Redis gives up past 1000 nested stars (checked on redis-server 7.0.15).
    (b"a*" * 1001, b"a" * 1200, True), (b"a*" * 1001 + b"a", b"a" * 1200, False),
])
def test_glob(pattern, string, expected):
    assert glob_match(compile_glob(pattern), string) is expected


def test_keys_and_flush(session):
    run(session, "MSET", "one", "1", "two", "2", "three", "3")
    assert sorted(RespReplyDecoder_replies(run(session, "KEYS", "t*"))[0]) == [b"three", b"two"]
    assert run(session, "FLUSHDB", "bad") == b"-ERR syntax error\r\n"
    assert run(session, "FLUSHALL", "ASYNC") == b"+OK\r\n"
    assert run(session, "KEYS", "*") == b"*0\r\n"


def test_select_client_quit(session):
    assert run(session, "SELECT", "0") == b"+OK\r\n"
    assert run(session, "SELECT", "1") == b"-ERR DB index is out of range\r\n"
    assert run(session, "CLIENT", "GETNAME") == b"$-1\r\n"
    assert run(session, "CLIENT", "SETNAME", "a b") == (
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n")
    assert run(session, "CLIENT", "SETNAME", "me") == b"+OK\r\n"
    assert run(session, "CLIENT", "GETNAME") == b"$2\r\nme\r\n"
    assert run(session, "CLIENT", "ID") == b":%d\r\n" % session.id
    assert run(session, "CLIENT", "nope") == b"-ERR unknown subcommand 'nope'. Try CLIENT HELP.\r\n"
    assert run(session, "CLIENT", "ID", "x") == b"-ERR wrong number of arguments for 'client|id' command\r\n"
    assert run(session, "QUIT") == b"+OK\r\n" and session.closing


def RespReplyDecoder_replies(data: bytes) -> list[object]:
    decoder = RespReplyDecoder()
    decoder.feed(data)
    return decoder.replies()


# --- against a real redis-server ---------------------------------------------------


@pytest.fixture(scope="module")
def redis_socket(tmp_path_factory):
    """A connected socket to a throwaway redis-server."""
    with redis_server(str(tmp_path_factory.mktemp("redis"))) as path:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        sock.settimeout(10)
        yield sock
        sock.close()


def redis_call(sock: socket.socket, args: list[bytes]) -> bytes:
    """One command's raw reply bytes (the reply decoder finds its end)."""
    sock.sendall(encode_command(*args))
    decoder = RespReplyDecoder()
    raw = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, "redis-server closed the connection"
        raw += chunk
        decoder.feed(chunk)
        if decoder.next_reply() is not NEED_DATA:
            return raw


KEYS = [b"a", b"b", b"c", b""]
# No small positive numbers: as an expiry they could fire mid-example.
VALUES = [b"x", b"", b"-5", b"0", b"01", b" 1", b"1.5", b"100000", b"1700000000", b"9223372036854775",
          b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808", b"-1"]
WORDS = [b"NX", b"xx", b"GT", b"lt", b"EX", b"px", b"EXAT", b"PXAT", b"KEEPTTL", b"get", b"MATCH",
         b"COUNT", b"type", b"string", b"ASYNC", b"sync", b"*", b"a*", b"[a-b]", b"[^a]", b"\\a", b"?",
         b"[", b"*[c-a]*", b"a\nb", b"a\x00b", b"\r\n", b"y" * 130, b"\xff", b"[\x80-\xff]",
         b"NX\x00z", b"ex\x00", b"0\x00", b"COUNT\x00"]
NAMES = [b"PING", b"echo", b"GET", b"set", b"SET", b"DEL", b"EXISTS", b"INCR", b"DECR", b"INCRBY",
         b"DECRBY", b"MGET", b"MSET", b"APPEND", b"STRLEN", b"EXPIRE", b"PEXPIRE", b"TTL", b"PTTL",
         b"PERSIST", b"KEYS", b"SCAN", b"DBSIZE", b"FLUSHDB", b"SELECT", b"nosuch", b"Get"]

args_pool = st.one_of(st.sampled_from(KEYS), st.sampled_from(VALUES), st.sampled_from(WORDS))
commands = st.one_of(
    st.builds(lambda name, args: [name, *args], st.sampled_from(NAMES), st.lists(args_pool, max_size=5)),
    st.builds(lambda key, rest: [b"SET", key, b"v", *rest], st.sampled_from(KEYS),
              st.lists(st.one_of(st.sampled_from(WORDS[:10]), st.sampled_from(VALUES)), max_size=4)),
    st.sampled_from([[b"HELLO", b"4"], [b"HELLO", b"abc"], [b"HELLO", b"2", b"foo"], [b"CLIENT", b"nope"],
                     [b"CLIENT", b"SETNAME", b"a b"], [b"SELECT", b"16"], [b"CLIENT", b"SETNAME", b"me"],
                     [b"CLIENT", b"GETNAME"], [b"CLIENT", b"SETNAME", b""], [b"CLIENT", b"GETNAME", b"x"],
                     [b"HELLO", b"3", b"SETNAME", b"x y"], [b"HELLO", b"3", b"AUTH", b"bob", b"x"],
                     [b"HELLO", b"2", b"AUTH", b"bob"], [b"PING", b"a", b"b"]]),
)


def comparable(name: bytes, raw: bytes) -> object:
    """Replies as compared: raw bytes, except as the module docstring says."""
    name = name.lower()
    if name in (b"keys", b"scan") and raw[:1] == b"*":
        (reply,) = RespReplyDecoder_replies(raw)
        if name == b"keys":
            return ("keys", sorted(reply))
        return ("scan", reply[0], sorted(reply[1]))
    return raw


def close_enough(args: list[bytes], ours: bytes, theirs: bytes) -> bool:
    name = args[0].lower()
    if name == b"scan" and args[1:2] != [b"0"] and ours[:1] == theirs[:1] == b"*":
        return True  # a non-zero cursor means something else to each server
    if name in (b"ttl", b"pttl") and ours[:1] == theirs[:1] == b":":
        slack = 1 if name == b"ttl" else 100
        return abs(int(ours[1:-2]) - int(theirs[1:-2])) <= slack
    return comparable(name, ours) == comparable(name, theirs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(protocol=st.sampled_from([2, 3]), script=st.lists(commands, min_size=1, max_size=12))
def test_matches_real_redis(redis_socket, protocol, script):
    assert redis_call(redis_socket, [b"FLUSHALL"]) == b"+OK\r\n"
    redis_call(redis_socket, [b"HELLO", b"%d" % protocol])
    assert redis_call(redis_socket, [b"CLIENT", b"SETNAME", b""]) == b"+OK\r\n"  # the connection outlives examples
    session = Session(Store(), protocol=protocol)
    for args in script:
        theirs = redis_call(redis_socket, args)
        ours = execute(session, args)
        assert close_enough(args, ours, theirs), (args, ours, theirs)
