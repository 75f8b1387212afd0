"""RespServer against a real redis-server, over TCP sockets.

Every test runs on the C and Python engines, each with both codec twins
(RespServer(codec=...)), and sends the same bytes to fastnet and to a
throwaway redis-server 7.0.15 (16 databases on both, Redis's default).

test_scripts_match_redis: hypothesis writes a script of commands (multibulk,
plain inline and quoted inline requests over small key and value alphabets,
so commands collide on keys), maybe followed by a malformed tail (garbage,
bad multibulk or bulk headers, a missing "$", unbalanced quotes), and cuts
its bytes into several writes at random points. The two reply streams must
be byte-identical, reply by reply, except by meaning for: HELLO's id field,
CLIENT ID, INFO (the sections both have, the version, the keyspace counts),
KEYS (sorted), SCAN (sorted keys when both servers end the scan at once;
Redis's COUNT is a hint over hash buckets, so a partial scan, or one from a
non-zero cursor, is only checked to be an array on both) and TTL/PTTL
(within 1 s / 1000 ms: the servers run the script at different moments);
an EXEC's array is compared reply by reply by the same rules.
TTLs are long, so no key expires during a script. Values include a 40 KB
one (past Redis's 16 KiB reads and 32 KiB big-argument path); inline lines
stay under the 64 KiB inline limit, past which Redis's answer depends on
how its reads split the line (see tests/test_resp_requests.py).

How a script ends decides how its stream is read (the sans-IO decoder says
which case it is): a clean script ends with ``ECHO <uuid>`` and is read up
to that reply, then the client half-closes and reads to EOF; one that ends
in a protocol error is read to EOF (the server must close by itself, after
its error reply); one that ends in an incomplete request is half-closed at
once and read to EOF. Whether the server closed by itself is compared too.
An ERROR logged by fastnet fails the example even when the bytes match.

The other tests are Redis's own negative protocol cases (tests/unit/
protocol.tcl) and the NUL-flood desync regression, checked for the same
observable behaviour on both servers, with a bystander client that must be
served throughout.
"""
from __future__ import annotations

import contextlib
import logging
import re
import select
import socket
import time
import uuid
from typing import Iterator, Optional

import psutil
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from fastnet import codec
from fastnet.codec import encode_command
from fastnet.errors import RespProtocolError
from helpers import GUARD, redis_server, running_resp_server

MiB = 1024 * 1024
COMBOS = [(engine, twin) for engine in ("c", "python") for twin in ("c", "python")]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory) -> Iterator[int]:
    with redis_server(str(tmp_path_factory.mktemp("redis")), tcp=True) as (_, port):
        yield port


class Fastnet:
    """The fastnet server under test: its port, and every ERROR the fastnet
    loggers recorded (a handler or engine failure is a bug even when the
    client sees nothing)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.errors: list[str] = []

    def take_errors(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors


class _ErrorLog(logging.Handler):
    def __init__(self, target: Fastnet) -> None:
        super().__init__(logging.ERROR)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.errors.append(self.format(record))


@pytest.fixture(scope="module", params=COMBOS, ids=[f"engine={e}-codec={c}" for e, c in COMBOS])
def fastnet(request) -> Iterator[Fastnet]:
    engine, twin = request.param
    if twin not in codec.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")
    with running_resp_server(engine, twin) as (_, port):
        target = Fastnet(port)
        handler = _ErrorLog(target)
        logging.getLogger("fastnet").addHandler(handler)
        try:
            yield target
        finally:
            logging.getLogger("fastnet").removeHandler(handler)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_to_eof(sock: socket.socket, received: bytes = b"") -> tuple[bytes, bool]:
    """Everything until the peer closes; (bytes, False) if it never does."""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        return received, False
    return received, True


def call(sock: socket.socket, *args: bytes) -> bytes:
    """One command and its (short, single-line or bulk) reply."""
    sock.sendall(encode_command(*args))
    reply = b""
    while not complete_reply(reply):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {reply!r}"
        reply += chunk
    return reply


def complete_reply(data: bytes) -> bool:
    try:
        replies, rest = split_replies(data)
    except ValueError:
        return False
    return len(replies) == 1 and not rest


# --- the raw reply stream, cut into replies -----------------------------------------


_BULK_TYPES = b"$!="
_AGGREGATE_TYPES = {ord("*"): 1, ord("~"): 1, ord(">"): 1, ord("%"): 2, ord("|"): 2}


def _reply_end(data: bytes, pos: int) -> int:
    """Where the reply starting at pos ends; ValueError if it is cut short."""
    pending = 1  # replies still to skip (an explicit count, not recursion)
    while pending:
        eol = data.index(b"\r\n", pos)  # ValueError: incomplete
        kind, line = data[pos], data[pos + 1 : eol]
        pos = eol + 2
        pending -= 1
        if kind in _BULK_TYPES and int(line) >= 0:
            pos += int(line) + 2
            if pos > len(data):
                raise ValueError("incomplete bulk")
        elif kind in _AGGREGATE_TYPES and int(line) > 0:
            pending += int(line) * _AGGREGATE_TYPES[kind]
        if kind == ord("|"):
            pending += 1  # an attribute annotates the next reply
    return pos


def split_replies(data: bytes) -> tuple[list[bytes], bytes]:
    """The complete replies in data, and what follows the last one."""
    replies = []
    pos = 0
    while pos < len(data):
        try:
            end = _reply_end(data, pos)
        except ValueError:
            break
        replies.append(data[pos:end])
        pos = end
    return replies, data[pos:]


# --- replies compared by meaning -----------------------------------------------------

_HELLO_ID = re.compile(rb"\$2\r\nid\r\n:\d+\r\n")
_SHARED_SECTIONS = {"Server", "Clients", "Memory", "Stats", "Replication", "CPU", "Keyspace"}


def _decode(raw: bytes) -> object:
    decoder = codec.RespReplyDecoder()
    decoder.feed(raw)
    (value,) = decoder.replies()
    return value


def _info_meaning(raw: bytes) -> object:
    """INFO's text as compared: the sections both servers have, the version,
    and the keyspace lines without avg_ttl."""
    value = _decode(raw)
    text = (value.data if isinstance(value, codec.resp.Verbatim) else value).decode("latin-1")
    sections = {line[2:] for line in text.split("\r\n") if line.startswith("# ")}
    version = re.findall(r"^redis_version:.*$", text, re.M)
    keyspace = [re.sub(r",avg_ttl=\d+", "", line) for line in re.findall(r"^db\d+:.*$", text, re.M)]
    return (raw[:1], sorted(sections & _SHARED_SECTIONS), version, keyspace)


def _unordered(name: bytes, raw: bytes) -> object:
    """A collection reply as a sorted list (HGETALL's pairs kept together)."""
    value = _decode(raw)
    if isinstance(value, dict):
        return sorted(value.items())
    if name == b"hgetall":
        return sorted(zip(value[::2], value[1::2]))
    return sorted(value)


def same_exec(queued: list[list[bytes]], ours: bytes, theirs: bytes) -> bool:
    """EXEC's array compared reply by reply, each by same_reply."""
    header = ours[: ours.index(b"\r\n") + 2]
    if not theirs.startswith(header) or int(header[1:-2]) != len(queued):
        return False
    our_replies, _ = split_replies(ours[len(header):])
    their_replies, _ = split_replies(theirs[len(header):])
    return len(our_replies) == len(their_replies) and all(
        same_reply(args, a, b) for args, a, b in zip(queued, our_replies, their_replies))


def same_reply(args: Optional[list[bytes]], ours: bytes, theirs: bytes,
               queued: Optional[list[list[bytes]]] = None) -> bool:
    """Whether fastnet's reply to args is Redis's (see the module
    docstring); queued: the commands an EXEC ran."""
    if ours == theirs:
        return True
    if args is not None and args[0].lower() == b"exec" and ours[:1] == b"*" and queued is not None:
        return same_exec(queued, ours, theirs)
    if args is None or ours[:1] != theirs[:1] or ours[:1] in b"-!":
        return False
    name = args[0].lower()
    sub = args[1].lower() if len(args) > 1 else b""
    if name == b"hello":
        return _HELLO_ID.sub(b"ID", ours) == _HELLO_ID.sub(b"ID", theirs)
    if name == b"client" and sub == b"id":
        return ours[:1] == b":"
    if name == b"info":
        return _info_meaning(ours) == _info_meaning(theirs)
    if name == b"keys":
        return sorted(_decode(ours)) == sorted(_decode(theirs))
    if name in UNORDERED:
        return _unordered(name, ours) == _unordered(name, theirs)
    if name in (b"hscan", b"sscan", b"zscan"):
        (our_cursor, our_items), (their_cursor, their_items) = _decode(ours), _decode(theirs)
        if our_cursor == their_cursor == b"0":  # both answered whole: the same elements
            width = 1 if name == b"sscan" else 2
            return sorted(zip(*[iter(our_items)] * width)) == sorted(zip(*[iter(their_items)] * width))
        return True  # a partial walk: each server's own order
    if name == b"scan":
        if args[1] != b"0":
            return True  # a non-zero cursor means something else to each server
        (our_cursor, our_keys), (their_cursor, their_keys) = _decode(ours), _decode(theirs)
        if our_cursor == their_cursor == b"0":
            return sorted(our_keys) == sorted(their_keys)
        return True  # Redis's COUNT is a hint over hash buckets: a partial scan either way
    if name == b"memory" and sub == b"usage":
        return ours[:1] == b":"  # an estimate on each side
    if name in (b"ttl", b"pttl") and ours[:1] == b":":
        slack = 1 if name == b"ttl" else 1000
        return abs(int(ours[1:-2]) - int(theirs[1:-2])) <= slack
    return False


# --- scripts -------------------------------------------------------------------------

KEYS = [b"a", b"b", b"c", b""]
# No small positive numbers: as an expiry they could fire mid-script.
VALUES = [b"x", b"", b"-5", b"0", b"01", b" 1", b"1.5", b"100000", b"1700000000", b"4102444800",
          b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808", b"-1", b"a b",
          b'"q"', b"\x00z", b"\r\n", b"\xff"]
# Longer than Redis's 16 KiB reads and its 32 KiB "big argument" path, yet
# as a quoted inline line still under the 64 KiB inline limit.
BIG = b"0123456789abcdef" * 2500
SET_WORDS = [b"NX", b"xx", b"GET", b"EX", b"px", b"EXAT", b"PXAT", b"KEEPTTL", b"keepttl", b"ex\x00"]
EXPIRE_WORDS = [b"NX", b"xx", b"GT", b"lt", b"foo"]
NAMES = [b"PING", b"echo", b"GET", b"set", b"DEL", b"EXISTS", b"INCR", b"decr", b"INCRBY", b"DECRBY",
         b"MGET", b"MSET", b"APPEND", b"STRLEN", b"EXPIRE", b"PEXPIRE", b"TTL", b"PTTL", b"PERSIST",
         b"DBSIZE", b"FLUSHDB", b"FLUSHALL", b"SELECT", b"HELLO", b"CLIENT", b"nosuch", b"GeT", b"KEYS",
         b"SCAN", b"INFO", b"MULTI", b"exec", b"EXEC", b"DISCARD", b"WATCH", b"UNWATCH"]
#: The commands of the other types (hashes, lists, sets) and TYPE.
TYPE_NAMES = [b"TYPE", b"HSET", b"hmset", b"HSETNX", b"HGET", b"HMGET", b"HGETALL", b"HKEYS", b"HVALS",
              b"HDEL", b"HEXISTS", b"HLEN", b"HSTRLEN", b"HINCRBY", b"LPUSH", b"RPUSH", b"LPUSHX",
              b"RPUSHX", b"LPOP", b"RPOP", b"LLEN", b"LRANGE", b"LINDEX", b"SADD", b"SREM", b"SMEMBERS",
              b"SISMEMBER", b"SMISMEMBER", b"SCARD", b"SETNX", b"GETSET", b"GETDEL",
              b"MSETNX", b"UNLINK", b"TOUCH", b"RENAME", b"RENAMENX", b"LSET", b"LTRIM", b"MOVE",
              b"ZADD", b"zincrby", b"ZREM", b"ZCARD", b"ZSCORE", b"ZMSCORE", b"ZRANK", b"ZREVRANK",
              b"ZCOUNT", b"ZRANGE", b"ZRANGEBYSCORE", b"ZREVRANGE", b"ZPOPMIN", b"ZPOPMAX", b"ZSCAN",
              b"HSCAN", b"SSCAN", b"INCRBYFLOAT", b"HINCRBYFLOAT", b"LREM", b"LINSERT", b"LPOS", b"LMOVE",
              b"RPOPLPUSH", b"SINTER", b"SUNION", b"SDIFF", b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE",
              b"SMOVE", b"GETRANGE", b"GETBIT", b"BITCOUNT", b"BITPOS", b"BITOP", b"COPY", b"EXPIREAT",
              b"PEXPIREAT"]
NUMBERS = [b"0", b"1", b"2", b"-1", b"-2", b"3", b"15", b"16", b"100", b"-100", b"x"]
#: Replies whose order is the server's hash table order (compared sorted).
UNORDERED = {b"smembers", b"hgetall", b"hkeys", b"hvals", b"sinter", b"sunion", b"sdiff"}
FIXED = [
    [b"HELLO", b"2"], [b"HELLO", b"3"], [b"hello"], [b"HELLO", b"3", b"SETNAME", b"n3"],
    [b"HELLO", b"4"], [b"HELLO", b"x"], [b"HELLO", b"2", b"AUTH", b"default", b"pw"],
    [b"CLIENT", b"SETNAME", b"me"], [b"CLIENT", b"SETNAME", b""], [b"CLIENT", b"SETNAME", b"a b"],
    [b"CLIENT", b"GETNAME"], [b"client", b"getname", b"x"], [b"CLIENT", b"ID"], [b"CLIENT"],
    [b"CLIENT", b"nope"], [b"SELECT", b"0"], [b"SELECT", b"1"], [b"SELECT", b"15"], [b"SELECT", b"-1"],
    [b"SELECT", b"x"], [b"SELECT", b"2147483648"], [b"SELECT", b"00"], [b"SELECT", b"16"],
    [b"SELECT", b"1"], [b"SELECT", b"0"], [b"SWAPDB", b"0", b"1"], [b"SWAPDB", b"1", b"1"],
    [b"SWAPDB", b"x", b"1"], [b"SWAPDB", b"0", b"x"], [b"SWAPDB", b"0", b"16"], [b"SWAPDB", b"-1", b"x"],
    [b"INFO", b"keyspace"], [b"FLUSHDB"], [b"DBSIZE"],
    [b"INFO", b"memory"], [b"INFO", b"CPU"], [b"INFO", b"replication"], [b"INFO", b"default"],
    [b"CLIENT", b"HELP"], [b"CONFIG", b"HELP"], [b"MEMORY", b"HELP"], [b"config", b"help", b"x"],
    [b"AUTH", b"x"], [b"AUTH", b"default", b"x"], [b"AUTH", b"other", b"x"], [b"AUTH", b"a", b"b", b"c"],
    [b"CONFIG", b"SET", b"maxclients", b"x"], [b"CONFIG", b"SET", b"nosuch", b"1"],
    [b"CONFIG", b"SET", b"timeout", b"-1"], [b"CONFIG", b"SET", b"timeout"],
    [b"CONFIG", b"SET", b"maxclients", b"0"], [b"CONFIG", b"SET", b"timeout", b"0", b"timeout", b"0"],
    [b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 1mb"],
    [b"CONFIG", b"SET", b"client-output-buffer-limit", b"foo 1 1 1"],
    [b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 1x 0 0"],
    [b"CONFIG", b"GET", b"client-output-buffer-limit"], [b"CONFIG", b"GET", b"maxclients"],
    [b"CLIENT", b"KILL", b"1.2.3.4:5"], [b"CLIENT", b"KILL", b"ID", b"x"], [b"CLIENT", b"KILL", b"ID", b"99999"],
    [b"CLIENT", b"KILL", b"TYPE", b"foo"], [b"CLIENT", b"KILL", b"foo", b"bar"], [b"CLIENT", b"KILL", b"ID"],
    [b"CLIENT", b"KILL", b"SKIPME", b"maybe"], [b"CLIENT", b"KILL", b"USER", b"nobody"],
    [b"CLIENT", b"LIST", b"TYPE", b"foo"], [b"CLIENT", b"LIST", b"x"], [b"CLIENT", b"LIST", b"ID", b"x"],
    [b"CLIENT", b"LIST", b"ID", b"99999"], [b"CLIENT", b"INFO", b"x"],
    [b"MEMORY", b"USAGE", b"a"], [b"MEMORY", b"USAGE", b"a", b"x"], [b"MEMORY", b"USAGE", b"a", b"SAMPLES", b"x"],
    [b"MEMORY", b"USAGE", b"a", b"SAMPLES", b"0"], [b"MEMORY", b"nope"],
    [b"PUBSUB", b"NUMPAT"], [b"PUBSUB", b"CHANNELS"], [b"PUBSUB", b"NUMSUB", b"a"], [b"PUBLISH", b"a", b"b"],
    [b"BLPOP", b"a", b"x"], [b"BLPOP", b"a", b"-1"], [b"BRPOP", b"a", b" 1"], [b"BLPOP", b"a", b"1e5000"],
    [b"BLPOP", b"a", b"inf"], [b"BLPOP", b"a", b"1e400"], [b"BLPOP", b"a", b""], [b"BLPOP", b"a", b"-0.0011"],
    [b"BLMOVE", b"a", b"b", b"up", b"left", b"1"], [b"BLMOVE", b"a", b"b", b"left", b"x", b"1"],
    [b"BLMOVE", b"a", b"b", b"left", b"left", b"x"], [b"BRPOPLPUSH", b"a", b"b", b"-1"], [b"BLPOP", b"a"],
    [b"INFO"], [b"INFO", b"keyspace"], [b"INFO", b"SERVER"], [b"INFO", b"nosuch"], [b"INFO", b"all"],
    [b"KEYS", b"*"], [b"KEYS", b"[a-b]"], [b"SCAN", b"0"], [b"SCAN", b"0", b"MATCH", b"a*"],
    [b"SCAN", b"0", b"COUNT", b"2"], [b"SCAN", b"x"], [b"DBSIZE"], [b"FLUSHDB"], [b"FLUSHALL", b"ASYNC"],
    [b"FLUSHDB", b"x"], [b"PING", b"hi"], [b"PING", b"a", b"b"], [b"ECHO"], [b"QUIT"],
    [b"MULTI"], [b"MULTI"], [b"EXEC"], [b"EXEC"], [b"DISCARD"], [b"WATCH", b"a"], [b"WATCH", b"a", b"b"],
    [b"UNWATCH"], [b"EXEC", b"x"],
]

key = st.sampled_from(KEYS)
value = st.sampled_from(VALUES + [BIG])
commands = st.one_of(
    st.builds(lambda name, args: [name, *args], st.sampled_from(NAMES),
              st.lists(st.one_of(key, value), max_size=4)),
    st.builds(lambda k, v, rest: [b"SET", k, v, *rest], key, value,
              st.lists(st.one_of(st.sampled_from(SET_WORDS), value), max_size=4)),
    st.builds(lambda name, k, amount, rest: [name, k, amount, *rest],
              st.sampled_from([b"EXPIRE", b"pexpire"]), key, value,
              st.lists(st.sampled_from(EXPIRE_WORDS), max_size=2)),
    st.builds(lambda name, k: [name, k], st.sampled_from([b"TTL", b"PTTL", b"PERSIST", b"GET", b"INCR"]), key),
    st.sampled_from(FIXED),
    st.builds(lambda name, k, rest: [name, k, *rest], st.sampled_from(TYPE_NAMES), key,
              st.lists(st.one_of(key, value, st.sampled_from(NUMBERS)), max_size=4)),
    # Amounts from VALUES only: no small positive TTL that could fire mid-script.
    st.builds(lambda name, k, amount, v: [name, k, amount, v], st.sampled_from([b"SETEX", b"psetex"]),
              key, st.sampled_from(VALUES), value),
)

_PLAIN = re.compile(rb"[!#-&(-\[\]-~]+")  # printable, no blank, quote or backslash


def quote(arg: bytes) -> bytes:
    """arg as a double-quoted inline argument (sdssplitargs unquotes it)."""
    out = bytearray(b'"')
    for byte in arg:
        if byte in b'"\\':
            out += b"\\" + bytes([byte])
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += b"\\x%02x" % byte
    return bytes(out + b'"')


#: Inline lines stay under Redis's 64 KiB inline limit: past it, whether
#: Redis accepts a line depends on how its reads split it (the deliberate
#: difference tests/test_resp_requests.py documents).
MAX_INLINE = 60_000


def encode_request(args: list[bytes], how: str) -> bytes:
    if how == "inline" and all(_PLAIN.fullmatch(arg) for arg in args):
        line = b" ".join(args) + b"\r\n"
    elif how in ("inline", "quoted"):
        line = b" ".join(quote(arg) for arg in args) + b"\n"
    else:
        return encode_command(*args)
    return line if len(line) <= MAX_INLINE else encode_command(*args)


_GARBAGE_PIECES = [b"*", b"$", b"\r", b"\n", b"\r\n", b"1", b"3", b"-", b"0", b" ", b'"', b"'", b"\\",
                   b"x", b"\x00", b"PING", b"ECHO ", b":", b"+"]
tails = st.one_of(
    st.lists(st.sampled_from(_GARBAGE_PIECES), min_size=1, max_size=16).map(b"".join),
    st.binary(min_size=1, max_size=24),
    st.sampled_from([b"-0", b"01", b"+1", b"", b"1 ", b"x", b"3000000000", b"-10", b"2147483648",
                     b"99999999999999999999"]).map(lambda n: b"*" + n + b"\r\nPING\r\n"),
    st.sampled_from([b"blabla", b"-10", b"-1", b"2000000000", b"", b"01", b"536870913", b"+1"]).map(
        lambda n: b"*2\r\n$4\r\nECHO\r\n$" + n + b"\r\nPING\r\n"),
    st.sampled_from([b"*1\r\nfoo\r\n", b"*2\r\n$4\r\nECHO\r\n:1\r\n", b"*1\r\n\r\n", b"*1\r\n\xff\r\n",
                     b'ECHO "abc\r\n', b"ECHO 'a'b\r\n", b'SET "k" "v\r\n', b'set """k""" v\r\n',
                     b"PI\x00NG\r\nPING\r\n", b"*1\x00\r\n$4\r\nPING\r\n"]),
)


@st.composite
def scripts(draw) -> tuple[list[list[bytes]], bytes]:
    """(commands, the bytes sent): a FLUSHALL, the commands, maybe a tail."""
    script = [[b"FLUSHALL"]] + draw(st.lists(commands, min_size=1, max_size=10))
    how = st.sampled_from(["multibulk", "multibulk", "inline", "quoted"])
    data = b"".join(encode_request(args, draw(how)) for args in script)
    if draw(st.integers(0, 2)) == 0:
        data += draw(tails)
    return script, data


def classify(data: bytes) -> str:
    """How the stream ends, as the sans-IO decoder parses it."""
    decoder = codec.RespRequestDecoder()
    decoder.feed(data)
    try:
        while decoder.commands():
            pass
    except RespProtocolError:
        return "error"
    return "incomplete" if decoder.buffered else "clean"


def exchange(port: int, chunks: list[bytes], ending: str, sentinel: bytes) -> tuple[bytes, bool]:
    """Send chunks (a pause between them so the server reads them apart),
    then read the whole reply stream (see the module docstring). Returns it
    and whether the server closed the connection by itself."""
    with connect(port) as sock:
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(0.0005)
            try:
                sock.sendall(chunk)
            except OSError:  # closed early (a protocol error): read what came
                break
        if ending == "error":
            return read_to_eof(sock)
        received = b""
        if ending == "clean":
            while not received.endswith(sentinel):
                try:
                    chunk = sock.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    chunk = b""
                if not chunk:
                    return received, True  # QUIT (or a bug: the comparison shows it)
                received += chunk
        with contextlib.suppress(OSError):  # already closed (after QUIT)
            sock.shutdown(socket.SHUT_WR)
        received, eof = read_to_eof(sock, received)
        assert eof, f"no EOF after a half-close: {received!r}"
        return received, False


def short(value: object) -> str:
    """repr() with BIG written as <BIG> (failure messages stay readable)."""
    return repr(value).replace(repr(BIG)[2:-1], "<BIG>")


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=scripts(), points=st.lists(st.integers(0, 10**6), max_size=6))
def test_scripts_match_redis(fastnet, redis_port, script, points):
    commands, data = script
    ending = classify(data)
    event(f"ends {ending}")
    sentinel = b""
    if ending == "clean":
        marker = uuid.uuid4().hex.encode()
        # A script may leave a MULTI open: the ECHO would only be +QUEUED and
        # its reply never come. DISCARD first (answered alike by both servers:
        # +OK, or "DISCARD without MULTI").
        data += encode_command(b"DISCARD") + encode_command(b"ECHO", marker)
        commands = commands + [[b"DISCARD"], [b"ECHO", marker]]
        sentinel = codec.encode_bulk(marker)
    chunks = cut(data, points)
    ours, our_close = exchange(fastnet.port, chunks, ending, sentinel)
    theirs, their_close = exchange(redis_port, chunks, ending, sentinel)
    our_replies, our_rest = split_replies(ours)
    their_replies, their_rest = split_replies(theirs)
    context = "\n".join(["", f"sent {short(data)}", f"fastnet {short(ours)}", f"redis   {short(theirs)}"])
    assert not fastnet.take_errors(), context
    assert len(our_replies) == len(their_replies), context
    queued: list[list[bytes]] = []  # since MULTI, the commands Redis answered +QUEUED
    for i, (mine, real) in enumerate(zip(our_replies, their_replies)):
        args = commands[i] if i < len(commands) else None
        assert same_reply(args, mine, real, queued), \
            f"reply {i} to {short(args)}: {short(mine)} != {short(real)}" + context
        if args is not None and args[0].lower() == b"multi" and real == b"+OK\r\n":
            queued = []
        elif real == b"+QUEUED\r\n":
            queued.append(args)
    assert (our_rest, our_close) == (their_rest, their_close), context


# --- Redis's own negative protocol cases (tests/unit/protocol.tcl) -----------------------


def observe(port: int, data: bytes, then: bytes = b"") -> tuple[bytes, bool]:
    """Send data, then (if given) ``then``; read until the server closes, or
    until the reply to a final ``ECHO <uuid>`` (sent after ``then``) shows
    the connection kept being served. (reply bytes, closed)."""
    marker = uuid.uuid4().hex.encode()
    sentinel = codec.encode_bulk(marker)
    with connect(port) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
            sock.sendall(then + encode_command(b"ECHO", marker))
        received = b""
        while not received.endswith(sentinel):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return received, True
            received += chunk
        return received[: -len(sentinel)], False


def protocol_error(text: str) -> bytes:
    return b"-ERR Protocol error: " + text.encode("latin-1") + b"\r\n"


NEGATIVE_CASES = [
    # (name, request, what Redis answers, whether it then closes)
    ("negative-multibulk-then-ping", b"*-10\r\nPING\r\n", b"+PONG\r\n", False),
    ("invalid-multibulk-length", b"*3000000000\r\n", protocol_error("invalid multibulk length"), True),
    ("bulk-2000000000", b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
     protocol_error("invalid bulk length"), True),
    ("bulk-blabla", b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", protocol_error("invalid bulk length"), True),
    ("bulk-negative", b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", protocol_error("invalid bulk length"), True),
    ("missing-dollar", b"*1\r\nfoo\r\n", protocol_error("expected '$', got 'f'"), True),
    ("missing-dollar-after-arg", b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
     protocol_error("expected '$', got 'f'"), True),
    ("empty-query", b"\r\nPING\r\n", b"+PONG\r\n", False),
    ("unbalanced-quotes", b'set """test-key""" test-value\r\nping\r\n',
     protocol_error("unbalanced quotes in request"), True),
    ("replies-before-the-error", b"PING\r\nECHO x\r\n*1\r\nfoo\r\n",
     b"+PONG\r\n$1\r\nx\r\n" + protocol_error("expected '$', got 'f'"), True),
]


@pytest.mark.parametrize("case", NEGATIVE_CASES, ids=[c[0] for c in NEGATIVE_CASES])
def test_negative_protocol_cases(fastnet, redis_port, case):
    """Same reply bytes and the same close (or continued service) as
    redis-server; a client connected before keeps being served."""
    _, request, expected, closes = case
    with connect(fastnet.port) as bystander:
        assert call(bystander, b"SET", b"bystander", b"here") == b"+OK\r\n"
        for port in (redis_port, fastnet.port):
            assert observe(port, request) == (expected, closes), port
        assert call(bystander, b"GET", b"bystander") == b"$4\r\nhere\r\n"
    assert not fastnet.take_errors()


def all_still_open(socks: list[socket.socket], quiet: float = 0.3) -> bool:
    """Nothing received on any of socks for ``quiet`` seconds, and no EOF."""
    readable, _, _ = select.select(socks, [], [], quiet)
    return not readable


@pytest.mark.parametrize("request_bytes", [b"*20000000\r\n", b"*1\r\n$536870912\r\n"],
                         ids=["multibulk-20000000", "bulk-512MiB"])
def test_declared_sizes_are_not_preallocated(fastnet, redis_port, request_bytes):
    """protocol.tcl's "Out of range multibulk length" counterpart: a count
    (or bulk length) at the limit is accepted and the connection waits for
    the rest, as in Redis; fastnet allocates nothing for it (its RSS, this
    process's, does not jump, nor does its address space), and serves
    other clients meanwhile."""
    process = psutil.Process()
    before = process.memory_info()
    waiting = []
    try:
        for port in (redis_port, fastnet.port):
            for _ in range(4):  # several clients, so a preallocation could not hide
                waiting.append(connect(port))
                waiting[-1].sendall(request_bytes)
        assert all_still_open(waiting)
        after = process.memory_info()
        # RSS catches touched memory; an untouched malloc of the declared
        # size (4 x 512 MiB, or 4 x 20M pointers) would still show in VMS.
        assert after.rss - before.rss < 64 * MiB, f"RSS grew by {(after.rss - before.rss) / MiB:.0f} MiB"
        assert after.vms - before.vms < 1024 * MiB, f"VMS grew by {(after.vms - before.vms) / MiB:.0f} MiB"
        for port in (redis_port, fastnet.port):
            with connect(port) as bystander:
                assert call(bystander, b"PING") == b"+PONG\r\n"
    finally:
        for sock in waiting:
            sock.close()
    assert not fastnet.take_errors()


def flood(port: int, prefix: bytes, bystander_port: int) -> tuple[bytes, int]:
    """Send prefix, then 1 KiB chunks with no newline until the server
    closes (at most 1 MiB); meanwhile a bystander must get PONG every 64
    KiB. Returns what the server sent and how many bytes it had been sent
    when its reply came."""
    chunk = b"A" * 1024
    received = b""
    sent = 0
    with connect(port) as sock, connect(bystander_port) as bystander:
        sock.setblocking(False)
        pending = prefix
        while sent < MiB:
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], GUARD)
            assert readable or writable, "the server neither read nor answered"
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    return received, sent
                received += data
                pending = b""  # answered: stop writing, wait for the close
                continue
            try:
                n = sock.send(pending)
            except OSError:  # closed while we wrote: read its last words
                pending = b""
                continue
            sent += n
            pending = pending[n:] or (chunk if not received else b"")
            if sent // (64 * 1024) != (sent - n) // (64 * 1024):
                assert call(bystander, b"PING") == b"+PONG\r\n"
        raise AssertionError(f"still open after {sent} bytes; received {received!r}")


@pytest.mark.parametrize("prefix,error", [
    (b"\x00", "too big inline request"),
    (b"*\x00", "too big mbulk count string"),
    (b"$\x00", "too big inline request"),
], ids=["nul", "star-nul", "dollar-nul"])
def test_flood_after_nul_is_refused(fastnet, redis_port, prefix, error):
    """protocol.tcl's desync regression: a NUL hides every later delimiter
    from Redis (strchr), so the request can only grow; both servers must
    refuse it with the same error once it passes the 64 KiB inline limit,
    close, and keep serving the others."""
    answers = {}
    for name, port in (("redis", redis_port), ("fastnet", fastnet.port)):
        received, sent = flood(port, prefix, port)
        assert received == protocol_error(error), name
        assert sent < MiB, name
        answers[name] = received
    assert answers["fastnet"] == answers["redis"]
    assert not fastnet.take_errors()


# --- transactions with two clients (WATCH races) -----------------------------------------

#: What the watching client does (around MULTI/EXEC) and what the other writes.
TX_STEPS = st.one_of(
    st.builds(lambda k: (0, [b"WATCH", k]), key),
    st.sampled_from([(0, [b"MULTI"]), (0, [b"EXEC"]), (0, [b"DISCARD"]), (0, [b"UNWATCH"])]),
    st.builds(lambda k, v: (0, [b"SET", k, v]), key, st.sampled_from(VALUES)),
    st.builds(lambda k: (0, [b"INCR", k]), key),
    st.builds(lambda k: (0, [b"GET", k]), key),
    st.builds(lambda name, k, v: (1, [name, k, v]), st.sampled_from([b"SET", b"APPEND"]), key,
              st.sampled_from(VALUES)),
    st.builds(lambda name, k: (1, [name, k]), st.sampled_from([b"DEL", b"INCR", b"PERSIST", b"GET"]), key),
    st.builds(lambda k: (1, [b"SET", k, b"v", b"NX"]), key),
    st.builds(lambda k: (1, [b"EXPIRE", k, b"1000"]), key),
    st.sampled_from([(1, [b"FLUSHDB"]), (1, [b"EXISTS", b"a", b"b"])]),
    # Databases: WATCH holds to the database it was given in.
    st.builds(lambda who, db: (who, [b"SELECT", db]), st.integers(0, 1), st.sampled_from([b"0", b"1"])),
    st.sampled_from([(1, [b"SWAPDB", b"0", b"1"]), (1, [b"FLUSHALL"]), (0, [b"DBSIZE"])]),
    st.builds(lambda k, db: (1, [b"MOVE", k, db]), key, st.sampled_from([b"0", b"1"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(TX_STEPS, min_size=1, max_size=14))
def test_watch_races_match_redis(fastnet, redis_port, steps):
    """Client 0 watches and runs transactions while client 1 writes between
    its commands, one command at a time: every reply (EXEC's null array
    after a conflicting write, or its results) is Redis's."""
    answers = {}
    for name, port in (("fastnet", fastnet.port), ("redis", redis_port)):
        with connect(port) as watcher, connect(port) as writer:
            call(writer, b"FLUSHALL")  # every database
            socks = (watcher, writer)
            answers[name] = [call(socks[who], *args) for who, args in steps]
            answers[name].append(call(watcher, b"EXEC"))  # close any open MULTI
    assert answers["fastnet"] == answers["redis"], steps
    assert not fastnet.take_errors()


def test_watched_key_that_expires_fails_exec(fastnet, redis_port):
    """A WATCHed key whose deadline passes before EXEC counts as changed
    (Redis 7.0), though no client touched it; a key that was already gone
    when watched does not."""
    answers = {}
    for name, port in (("fastnet", fastnet.port), ("redis", redis_port)):
        with connect(port) as sock:
            call(sock, b"FLUSHALL")
            call(sock, b"SET", b"k", b"v", b"PX", b"100")
            watched = time.monotonic()
            replies = [call(sock, b"WATCH", b"k"), call(sock, b"MULTI"), call(sock, b"GET", b"k")]
            time.sleep(max(0.0, watched + 0.3 - time.monotonic()))  # the deadline passes
            replies.append(call(sock, b"EXEC"))
            replies += [call(sock, b"WATCH", b"k"), call(sock, b"MULTI"), call(sock, b"EXEC")]
            answers[name] = replies
    assert answers["fastnet"] == answers["redis"]
    assert answers["redis"][3] == b"*-1\r\n" and answers["redis"][-1] == b"*0\r\n"


# --- pub/sub with several clients ------------------------------------------------------

CHANNELS = [b"news", b"n", b"sport", b""]
PATTERNS = [b"n*", b"*", b"s?ort", b"[a-n]*", b"news"]
PUBSUB_STEPS = st.one_of(
    st.builds(lambda who, chans: (who, [b"SUBSCRIBE", *chans]), st.integers(0, 2),
              st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3)),
    st.builds(lambda who, chans: (who, [b"UNSUBSCRIBE", *chans]), st.integers(0, 2),
              st.lists(st.sampled_from(CHANNELS), max_size=2)),
    st.builds(lambda who, pats: (who, [b"PSUBSCRIBE", *pats]), st.integers(0, 2),
              st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2)),
    st.builds(lambda who, pats: (who, [b"PUNSUBSCRIBE", *pats]), st.integers(0, 2),
              st.lists(st.sampled_from(PATTERNS), max_size=2)),
    st.builds(lambda who, chan, msg: (who, [b"PUBLISH", chan, msg]), st.integers(0, 2),
              st.sampled_from(CHANNELS + [b"nope"]), st.sampled_from(VALUES)),
    st.builds(lambda who, args: (who, args), st.integers(0, 2), st.sampled_from([
        [b"PUBSUB", b"CHANNELS"], [b"PUBSUB", b"CHANNELS", b"n*"], [b"PUBSUB", b"NUMPAT"],
        [b"PUBSUB", b"NUMSUB", b"news", b"n", b"x"], [b"PUBSUB", b"NUMSUB"], [b"PUBSUB", b"nope"],
        [b"GET", b"a"], [b"SET", b"a", b"1"], [b"PING"], [b"PING", b"m"], [b"HELLO", b"3"],
        [b"HELLO", b"2"], [b"CLIENT", b"GETNAME"], [b"PUBSUB", b"HELP"],
        [b"SUBSCRIBE"], [b"PUBLISH", b"x"]])),
)
#: Replies whose order within a run is Redis's hash-table order.
_HASH_ORDERED = (b"unsubscribe", b"punsubscribe", b"pmessage")


def _pubsub_meaning(replies: list[bytes], sort_last: bool) -> list[object]:
    """A client's replies of one step, as compared: runs of (p)unsubscribe
    confirmations and of pmessages sorted (counts kept in order), and the
    step's own reply sorted if it is PUBSUB CHANNELS."""
    out: list[object] = []
    run: list[list[object]] = []
    kind = None
    for raw in replies + [b""]:
        value = _decode(raw) if raw else None
        word = value[0] if isinstance(value, list) and value and isinstance(value[0], bytes) else None
        if run and word != kind:
            counts = [item[-1] for item in run] if kind != b"pmessage" else []
            out.append((kind, sorted(repr(item[:-1] if counts else item) for item in run), counts))
            run = []
        if word in _HASH_ORDERED:
            kind = word
            run.append(value)
        elif raw:
            kind = None
            out.append(_HELLO_ID.sub(b"ID", raw))  # HELLO's id differs by nature
    if sort_last and out and isinstance(out[-1], bytes) and out[-1][:1] == b"*":
        out[-1] = sorted(_decode(out[-1]))
    return out


def _read_to_marker(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while not received.endswith(marker + b"\r\n"):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {received!r}"
        received += chunk
    return received


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocols=st.lists(st.sampled_from([b"2", b"3"]), min_size=3, max_size=3),
       steps=st.lists(PUBSUB_STEPS, min_size=1, max_size=12))
def test_pubsub_matches_redis(fastnet, redis_port, protocols, steps):
    """Three clients (each RESP2 or RESP3) subscribe, unsubscribe and
    publish, one command at a time; after each step every client's output
    (confirmations, messages in order, RESP2 subscribed-mode errors,
    RESP3 pushes) is Redis's."""
    answers = {}
    for name, port in (("fastnet", fastnet.port), ("redis", redis_port)):
        socks = [connect(port) for _ in range(3)]
        try:
            for sock, protocol in zip(socks, protocols):
                call(sock, b"HELLO", protocol)
            transcript = []
            for who, args in steps:
                socks[who].sendall(encode_command(*args))
                for index, sock in enumerate(socks):
                    marker = uuid.uuid4().hex.encode()
                    sock.sendall(encode_command(b"PING", marker))
                    replies, _ = split_replies(_read_to_marker(sock, marker))
                    sorted_reply = index == who and args[:2] == [b"PUBSUB", b"CHANNELS"]
                    transcript.append(_pubsub_meaning(replies[:-1], sorted_reply))
            answers[name] = transcript
        finally:
            for sock in socks:
                sock.close()
    assert answers["fastnet"] == answers["redis"], steps
    assert not fastnet.take_errors()


# --- blocking pops with several clients ----------------------------------------------

LIST_KEYS = [b"a", b"b", b"s"]
BLOCKING_STEPS = st.one_of(
    # (who, command, ...): what one client sends in one step.
    st.builds(lambda who, name, keys: (who, [name, *keys, b"0"]), st.integers(0, 2),
              st.sampled_from([b"BLPOP", b"BRPOP"]), st.lists(st.sampled_from(LIST_KEYS), min_size=1, max_size=2)),
    st.builds(lambda who, src, dst, a, b: (who, [b"BLMOVE", src, dst, a, b, b"0"]), st.integers(0, 2),
              st.sampled_from(LIST_KEYS), st.sampled_from(LIST_KEYS), st.sampled_from([b"LEFT", b"right"]),
              st.sampled_from([b"LEFT", b"right"])),
    st.builds(lambda who, src, dst: (who, [b"BRPOPLPUSH", src, dst, b"0"]), st.integers(0, 2),
              st.sampled_from(LIST_KEYS), st.sampled_from(LIST_KEYS)),
    st.builds(lambda who, name, k, vals: (who, [name, k, *vals]), st.integers(0, 2),
              st.sampled_from([b"LPUSH", b"RPUSH"]), st.sampled_from(LIST_KEYS),
              st.lists(st.sampled_from([b"x", b"y", b"z"]), min_size=1, max_size=3)),
    st.builds(lambda who, args: (who, args), st.integers(0, 2), st.sampled_from([
        [b"SET", b"s", b"str"], [b"DEL", b"a"], [b"LRANGE", b"a", b"0", b"-1"], [b"LRANGE", b"b", b"0", b"-1"],
        [b"LMOVE", b"a", b"b", b"LEFT", b"LEFT"], [b"RPOPLPUSH", b"b", b"a"],
        [b"BLPOP", b"a", b"x"], [b"BLPOP", b"a", b"-1"], [b"BLMOVE", b"a", b"b", b"up", b"left", b"0"],
        [b"SWAPDB", b"0", b"1"], [b"SELECT", b"1"], [b"MOVE", b"a", b"1"], [b"HELLO", b"3"],
        [b"LPUSH", b"a", b"x"], [b"RPUSH", b"b", b"y", b"z"]])),
    # Inside MULTI nothing blocks: EXEC answers a missing key at once.
    st.builds(lambda who, cmd: (who, [b"MULTI"], cmd, [b"EXEC"]), st.integers(0, 2), st.sampled_from([
        [b"BLPOP", b"a", b"b", b"0"], [b"BLMOVE", b"a", b"b", b"LEFT", b"RIGHT", b"0"],
        [b"BRPOP", b"b", b"0"]])),
)

_FLAGS = re.compile(rb"id=(\d+) .*? flags=(\w+) ")


def _blocked_ids(control: socket.socket) -> set[int]:
    listing = _decode(call(control, b"CLIENT", b"LIST"))
    return {int(m.group(1)) for m in _FLAGS.finditer(listing) if b"b" in m.group(2)}


def _read_available(socks: list[socket.socket], streams: list[bytes]) -> None:
    """Add what each socket holds now to its stream, without waiting."""
    for index, sock in enumerate(socks):
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while chunk := sock.recv(65536):
                streams[index] += chunk
        sock.setblocking(True)


def _settle(socks: list[socket.socket], control: socket.socket, ids: list[int],
            streams: list[bytes], awaited: list[Optional[bytes]]) -> None:
    """Wait until each client has answered its awaited marker or is blocked
    (CLIENT LIST's b flag), then read once more: a client woken and blocked
    again between this loop's read of its socket and CLIENT LIST had its
    replies written before CLIENT LIST was answered (both servers write in
    one thread), so only a read after that answer is sure to see them."""
    deadline = time.monotonic() + GUARD
    while True:
        _read_available(socks, streams)
        for index, mark in enumerate(awaited):
            if mark is not None and streams[index].endswith(mark):
                awaited[index] = None
        blocked = _blocked_ids(control)
        if all(mark is None or ids[i] in blocked for i, mark in enumerate(awaited)):
            break
        assert time.monotonic() < deadline, (streams, blocked)
    _read_available(socks, streams)


#: Timeouts as Redis 7.0 reads them (strtold, times 1000 in long double,
#: rounded up, cast): refused, forever (0: -1e-9 and -0.001 round up to it)
#: or, for the SHORT ones, a millisecond. A script must never hold a
#: forever (it would wait for ever), so they are tried here.
EDGE_TIMEOUTS = [b"-1e-9", b"-0.001", b"-0.0011", b"-.0009", b"-0.0", b"+0", b".0", b"0e0", b"-1e-4940",
                 b"1e-5000", b"inf", b"-inf", b"1e400", b"-1", b"9223372036854775", b"9223372036854776",
                 b"1e15", b" 1", b"1 ", b"0x", b"nan", b"0.0004", b"0x1p-20", b"1e-4940"]
SHORT_TIMEOUTS = {b"0.0004", b"0x1p-20", b"1e-4940"}


def test_blocking_timeouts_match_redis(fastnet, redis_port):
    """Each edge timeout answers at once (its error), times out (a null
    array) or blocks until a push wakes the client, as in Redis: the test
    pushes only to a client CLIENT LIST shows blocked (its b flag), and
    never to one whose timeout is a millisecond (the push would race it)."""
    answers = {}
    for name, port in (("fastnet", fastnet.port), ("redis", redis_port)):
        replies = []
        with connect(port) as sock, connect(port) as control:
            call(control, b"FLUSHALL")
            client_id = int(call(sock, b"CLIENT", b"ID")[1:-2])
            for number, timeout in enumerate(EDGE_TIMEOUTS):
                marker = codec.encode_bulk(b"t%d" % number)
                sock.sendall(encode_command(b"BLPOP", b"k", timeout) + encode_command(b"ECHO", b"t%d" % number))
                received, pushed = b"", False
                deadline = time.monotonic() + GUARD
                while not received.endswith(marker):
                    assert time.monotonic() < deadline, (timeout, received)
                    readable, _, _ = select.select([sock], [], [], 0.01)
                    if readable:
                        received += sock.recv(65536)
                    elif (not pushed and timeout not in SHORT_TIMEOUTS
                          and client_id in _blocked_ids(control)):
                        call(control, b"RPUSH", b"k", b"woke")
                        pushed = True
                replies.append((timeout, pushed, received))
        answers[name] = replies
    assert answers["fastnet"] == answers["redis"]
    assert not fastnet.take_errors()


class _SendsOnFirstRead:
    """A client socket whose first read sends its command and returns the
    reply up to the marker: what another client's socket held at that
    moment was already read by _settle's pass, as when a server answers
    between two of its reads."""

    def __init__(self, sock: socket.socket, command: bytes, marker: bytes) -> None:
        self.sock = sock
        self.command: Optional[bytes] = command
        self.marker = marker

    def setblocking(self, flag: bool) -> None:
        self.sock.setblocking(flag)

    def recv(self, size: int) -> bytes:
        if self.command is None:
            return self.sock.recv(size)
        self.sock.sendall(self.command)
        self.command = None
        self.sock.setblocking(True)
        try:
            return _read_to_marker(self.sock, self.marker)
        finally:
            self.sock.setblocking(False)  # as _read_available left it


def test_settle_reads_a_woken_client_blocked_again(fastnet, redis_port):
    """Regression (the example test_blocking_pops_match_redis failed on):
    a client blocked with a second BLPOP queued is woken by a push that
    the server answers after the test read the woken client's socket and
    before it read the pusher's; the woken client blocks again at once, so
    CLIENT LIST shows every client settled. Its element must be in its
    stream all the same (the wait read nothing after CLIENT LIST)."""
    for port in (fastnet.port, redis_port):
        socks = [connect(port) for _ in range(2)]
        control = connect(port)
        try:
            call(control, b"FLUSHALL")
            ids = [int(call(sock, b"CLIENT", b"ID")[1:-2]) for sock in socks]
            streams = [b""] * 2
            socks[0].sendall(encode_command(b"BLPOP", b"a", b"0") + encode_command(b"BLPOP", b"b", b"0")
                             + encode_command(b"ECHO", b"m0"))
            awaited: list[Optional[bytes]] = [codec.encode_bulk(b"m0"), None]
            _settle(socks, control, ids, streams, awaited)
            assert streams == [b"", b""]
            pusher = _SendsOnFirstRead(socks[1], encode_command(b"LPUSH", b"a", b"x")
                                       + encode_command(b"ECHO", b"m1"), b"m1")
            awaited[1] = codec.encode_bulk(b"m1")
            _settle([socks[0], pusher], control, ids, streams, awaited)  # type: ignore[list-item]
            assert streams == [b"*2\r\n$1\r\na\r\n$1\r\nx\r\n", b":1\r\n$2\r\nm1\r\n"], port
            assert ids[0] in _blocked_ids(control)  # on b, ECHO m0 queued
        finally:
            for sock in socks + [control]:
                sock.close()
    assert not fastnet.take_errors()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(BLOCKING_STEPS, min_size=1, max_size=12))
@example(steps=[(1, [b"BLPOP", b"a", b"0"]), (1, [b"BLPOP", b"b", b"0"]),
                (1, [b"BLMOVE", b"b", b"a", b"LEFT", b"LEFT", b"0"]), (0, [b"LPUSH", b"a", b"x"]),
                (0, [b"LPUSH", b"a", b"x"]), (0, [b"BLMOVE", b"a", b"a", b"LEFT", b"LEFT", b"0"]),
                (2, [b"BRPOPLPUSH", b"a", b"b", b"0"])])  # lost client 1's "b x" (see _settle)
def test_blocking_pops_match_redis(fastnet, redis_port, steps):
    """Three clients block on lists and push to them, one command at a
    time (a blocked client's later commands wait their turn); who gets which
    element, in which order, and every reply (WRONGTYPE for a BLMOVE onto a
    string, SWAPDB and MOVE waking a client, MULTI not blocking) is Redis's.
    After each step the test waits until each client has answered its
    last command or is blocked (CLIENT LIST's b flag), never for a time,
    then reads what was written before that answer (_settle)."""
    answers = {}
    for name, port in (("fastnet", fastnet.port), ("redis", redis_port)):
        socks = [connect(port) for _ in range(3)]
        control = connect(port)
        try:
            # The clients of the example before must be gone (their waits
            # with them) before this one pushes.
            deadline = time.monotonic() + GUARD
            while _decode(call(control, b"CLIENT", b"LIST")).count(b"\n") != 4:
                assert time.monotonic() < deadline, "earlier clients still listed"
            call(control, b"FLUSHALL")
            ids = [int(call(sock, b"CLIENT", b"ID")[1:-2]) for sock in socks]
            streams = [b""] * 3
            awaited: list[Optional[bytes]] = [None] * 3
            for number, (who, *commands) in enumerate(steps):
                marker = b"m%d" % number
                socks[who].sendall(b"".join(encode_command(*args) for args in commands)
                                   + encode_command(b"ECHO", marker))
                awaited[who] = codec.encode_bulk(marker)
                _settle(socks, control, ids, streams, awaited)
            answers[name] = [_HELLO_ID.sub(b"ID", s) for s in streams]
        finally:
            for sock in socks + [control]:
                sock.close()
    assert answers["fastnet"] == answers["redis"], steps
    assert not fastnet.take_errors()
