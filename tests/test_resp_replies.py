"""RESP2/RESP3 reply parsing and reply encoding on both twins (`impl`).

Every table case runs three ways: fed whole, one byte at a time, and
followed by a partial reply that must stay in `buffered`. Values are
compared with resp_helpers.canon: types included (bool is not int, Push is
not list), nan equal to nan.
"""
from __future__ import annotations

import inspect
import math
import tracemalloc
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnet import codec, limits
from fastnet.codec.resp import _common as _resp
from fastnet.codec.resp._common import NEED_DATA, BigNumber, Push, RespError, SimpleString, Verbatim
from fastnet.errors import RespProtocolError
from resp_helpers import canon, drive_replies, resp2_values, resp3_values, splits

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
NAN = float("nan")
INF = float("inf")


def bad_type(char: str) -> str:
    return f'Protocol error, got "{char}" as reply type byte'


@dataclass
class Case:
    name: str
    data: bytes
    replies: list
    error: str | None = None
    pending: bytes = b""  # bytes of data still buffered at the end
    trailing: bytes = b"*2\r\n:1\r\n$3\r\nab"
    limits: dict | None = None


SPEC_ATTRIBUTE = (  # the RESP3 specification's example
    b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
    b"*2\r\n:2039123\r\n:9543892\r\n"
)

CASES = [
    # --- RESP2 ----------------------------------------------------------------
    Case("simple", b"+OK\r\n", [b"OK"]),
    Case("simple-lone-cr-lf", b"+a\rb\nc\r\n", [b"a\rb\nc"]),
    Case("simple-empty", b"+\r\n", [b""]),
    Case("error", b"-ERR unknown command\r\n", [RespError(b"ERR unknown command")]),
    Case("integers", b":0\r\n:-5\r\n:9223372036854775807\r\n:-9223372036854775808\r\n", [0, -5, I64_MAX, I64_MIN]),
    Case("bulk", b"$5\r\nhello\r\n$0\r\n\r\n", [b"hello", b""]),
    Case("bulk-binary", b"$6\r\n\r\n\x00\xff*$\r\n", [b"\r\n\x00\xff*$"]),
    Case("null-bulk", b"$-1\r\n", [None]),
    Case("null-array", b"*-1\r\n", [None]),
    Case("empty-array", b"*0\r\n", [[]]),
    Case("array", b"*3\r\n:1\r\n$1\r\na\r\n$-1\r\n", [[1, b"a", None]]),
    Case("nested", b"*2\r\n*1\r\n:1\r\n*0\r\n", [[[1], []]]),
    Case("pipelined", b"+OK\r\n:1\r\n*1\r\n+x\r\n$-1\r\n", [b"OK", 1, [b"x"], None]),
    # --- RESP3 ----------------------------------------------------------------
    Case("map", b"%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", [{b"a": 1, b"b": 2}]),
    Case("map-repeated-key-last-wins", b"%2\r\n+a\r\n:1\r\n+a\r\n:2\r\n", [{b"a": 2}]),
    Case("empty-map-set-push", b"%0\r\n~0\r\n>0\r\n", [{}, set(), Push()]),
    Case("set", b"~3\r\n:1\r\n:2\r\n:1\r\n", [{1, 2}]),
    Case("doubles", b",1.5\r\n,inf\r\n,-inf\r\n,nan\r\n,-0.0\r\n,1e+25\r\n,3\r\n,INF\r\n,-nan\r\n,1E-5\r\n,+2.5\r\n",
         [1.5, INF, -INF, NAN, -0.0, 1e25, 3.0, INF, NAN, 1e-5, 2.5]),
    Case("double-overflows-to-inf", b",1e999\r\n", [INF]),
    Case("booleans", b"#t\r\n#f\r\n", [True, False]),
    Case("null", b"_\r\n", [None]),
    Case("big-numbers", b"(3492890328409238509324850943850943825024385\r\n(-1\r\n(007\r\n(+5\r\n",
         [BigNumber(3492890328409238509324850943850943825024385), BigNumber(-1), BigNumber(7), BigNumber(5)]),
    Case("verbatim", b"=15\r\ntxt:Some string\r\n=4\r\nmkd:\r\n",
         [Verbatim(b"txt", b"Some string"), Verbatim(b"mkd", b"")]),
    Case("blob-error", b"!21\r\nSYNTAX invalid syntax\r\n!4\r\na\r\nb\r\n",
         [RespError(b"SYNTAX invalid syntax"), RespError(b"a\r\nb")]),
    Case("push", b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", [Push([b"message", b"ch", b"hi"])]),
    Case("push-nested", b"*1\r\n>1\r\n:1\r\n", [[Push([1])]]),
    # attributes: parsed and dropped
    Case("attribute-spec-example", SPEC_ATTRIBUTE, [[2039123, 9543892]]),
    Case("attribute-in-array", b"*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n", [[1, 2]]),
    Case("attribute-before-last", b"*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n", [[1, 2]]),
    Case("attribute-empty", b"|0\r\n:7\r\n", [7]),
    Case("attribute-in-attribute", b"|1\r\n|1\r\n+a\r\n+b\r\n+k\r\n+v\r\n:1\r\n", [1]),
    Case("attribute-then-null", b"|1\r\n+k\r\n*1\r\n:1\r\n_\r\n", [None]),
    # freezing: aggregates where a hashable value is needed
    Case("map-key-array", b"%1\r\n*2\r\n:1\r\n:2\r\n+v\r\n", [{(1, 2): b"v"}]),
    Case("map-value-array-not-frozen", b"%1\r\n+k\r\n*1\r\n:1\r\n", [{b"k": [1]}]),
    Case("set-member-array", b"~1\r\n*1\r\n:1\r\n", [{(1,)}]),
    Case("set-member-set", b"~1\r\n~1\r\n:1\r\n", [{frozenset({1})}]),
    Case("map-key-map", b"%1\r\n%1\r\n+a\r\n*1\r\n:1\r\n+v\r\n", [{frozenset({(b"a", (1,))}): b"v"}]),
    Case("map-key-push", b"%1\r\n>1\r\n:1\r\n:2\r\n", [{(1,): 2}]),
    Case("frozen-all-the-way-down", b"~1\r\n*1\r\n%1\r\n+k\r\n*1\r\n:1\r\n", [{(frozenset({(b"k", (1,))}),)}]),
    # --- errors ---------------------------------------------------------------
    Case("type-byte", b"x\r\n", [], bad_type("x")),
    Case("type-byte-nul", b"\x00", [], bad_type("\\x00")),
    Case("type-byte-quote", b'"', [], bad_type("\\x22")),
    Case("type-byte-cr", b"\r\n", [], bad_type("\\x0d")),
    Case("type-byte-after-good", b"+OK\r\n:1\r\n?", [b"OK", 1], bad_type("?")),
    Case("streamed-string", b"$?\r\n", [], _resp.BAD_BULK_LEN),
    Case("streamed-aggregate", b"*?\r\n", [], _resp.BAD_COUNT),
    *[Case(f"integer-{i}", data, [], _resp.BAD_INTEGER) for i, data in enumerate([
        b":abc\r\n", b":\r\n", b":01\r\n", b":-0\r\n", b":9223372036854775808\r\n", b":+1\r\n", b": 1\r\n",
        b":1 \r\n", b":-9223372036854775809\r\n", b":" + b"1" * 21])],
    *[Case(f"bulk-length-{i}", data, [], _resp.BAD_BULK_LEN) for i, data in enumerate([
        b"$abc\r\n", b"$-2\r\n", b"$\r\n", b"$" + b"1" * 21, b"!-1\r\n", b"=-1\r\n", b"$01\r\n"])],
    Case("bulk-missing-crlf", b"$3\r\nabcXY", [], _resp.MISSING_CRLF),
    Case("bulk-missing-lf", b"$3\r\nabc\rX", [], _resp.MISSING_CRLF),
    *[Case(f"count-{i}", data, [], _resp.BAD_COUNT) for i, data in enumerate([
        b"*abc\r\n", b"*-2\r\n", b"%-1\r\n", b"~-1\r\n", b">-1\r\n", b"|-1\r\n", b"*" + b"1" * 21, b"*\r\n"])],
    *[Case(f"double-{i}", data, [], _resp.BAD_DOUBLE) for i, data in enumerate([
        b",abc\r\n", b",\r\n", b",1.\r\n", b",.5\r\n", b",1e\r\n", b",+inf\r\n", b",1_0\r\n", b", 1\r\n",
        b",infinity\r\n", b",1.5x\r\n", b",--1\r\n"])],
    *[Case(f"bool-{i}", data, [], _resp.BAD_BOOL) for i, data in enumerate([b"#x\r\n", b"#\r\n", b"#tt", b"#T\r\n"])],
    Case("null-with-content", b"_x", [], _resp.BAD_NULL),
    *[Case(f"big-number-{i}", data, [], _resp.BAD_BIG_NUMBER) for i, data in enumerate([
        b"(\r\n", b"(1.5\r\n", b"(+\r\n", b"(1e5\r\n", b"( 1\r\n"])],
    Case("verbatim-too-short", b"=3\r\ntxt\r\n", [], _resp.BAD_VERBATIM),
    Case("verbatim-no-colon", b"=4\r\ntxtx\r\n", [], _resp.BAD_VERBATIM),
    Case("error-inside-aggregate", b"*2\r\n:1\r\n:x\r\n", [], _resp.BAD_INTEGER),
    # --- what the decoder waits on ------------------------------------------------
    Case("declared-huge-array-waits", b"*2147483647\r\n:1\r\n", [], pending=b"*2147483647\r\n:1\r\n", trailing=b"+x"),
    Case("declared-huge-bulk-waits", b"$536870912\r\nabc", [], pending=b"$536870912\r\nabc", trailing=b"def"),
    Case("attribute-alone-waits", b"|1\r\n+k\r\n+v\r\n", [], pending=b"|1\r\n+k\r\n+v\r\n"),
    # --- limits: at the limit and one above ----------------------------------------
    Case("bulk-at-limit", b"$4\r\nabcd\r\n", [b"abcd"], limits={"max_bulk_len": 4}),
    Case("bulk-over-limit", b"$5\r\n", [], _resp.bulk_too_long(4), limits={"max_bulk_len": 4}),
    Case("verbatim-over-limit", b"=5\r\n", [], _resp.bulk_too_long(4), limits={"max_bulk_len": 4}),
    Case("count-at-limit", b"*2\r\n:1\r\n:2\r\n%2\r\n:1\r\n:2\r\n:3\r\n:4\r\n", [[1, 2], {1: 2, 3: 4}],
         limits={"max_multibulk_len": 2}),
    Case("count-over-limit", b"*3\r\n", [], _resp.count_too_big(2), limits={"max_multibulk_len": 2}),
    Case("map-pairs-over-limit", b"%3\r\n", [], _resp.count_too_big(2), limits={"max_multibulk_len": 2}),
    Case("depth-at-limit", b"*1\r\n*1\r\n:1\r\n*1\r\n%0\r\n", [[[1]], [{}]], limits={"max_depth": 2}),
    Case("depth-over-limit", b"*1\r\n*1\r\n*0\r\n", [], _resp.too_deep(2), limits={"max_depth": 2}),
    Case("depth-counts-attributes", b"*1\r\n|1\r\n+k\r\n*0\r\n:1\r\n", [], _resp.too_deep(2),
         limits={"max_depth": 2}),
    Case("depth-zero", b":1\r\n*0\r\n", [1], _resp.too_deep(0), limits={"max_depth": 0}),
    Case("depth-zero-null-array-is-no-aggregate", b"*-1\r\n", [None], limits={"max_depth": 0}, trailing=b"+x"),
    Case("line-at-limit", b"+abcd\r\n-abcd\r\n", [b"abcd", RespError(b"abcd")], limits={"max_line_len": 4}),
    Case("line-at-limit-cr-waits", b"+abcd\r", [], pending=b"+abcd\r", trailing=b"", limits={"max_line_len": 4}),
    Case("line-over-limit", b"+abcde\r\n", [], _resp.line_too_long(4), limits={"max_line_len": 4}),
    Case("line-over-limit-early", b"-abcde", [], _resp.line_too_long(4), limits={"max_line_len": 4}),
    Case("double-at-limit", b"," + b"1" * 325 + b"\r\n", [float("1" * 325)]),
    Case("double-over-limit", b"," + b"1" * 326, [], _resp.BAD_DOUBLE),
    Case("big-number-at-limit", b"(-" + b"7" * 4300 + b"\r\n(" + b"7" * 4300 + b"\r\n",
         [BigNumber("-" + "7" * 4300), BigNumber("7" * 4300)]),
    Case("big-number-over-limit", b"(" + b"7" * 4301 + b"\r\n", [], _resp.BAD_BIG_NUMBER),
    Case("big-number-over-limit-early", b"(-" + b"7" * 4301, [], _resp.BAD_BIG_NUMBER),
]


@pytest.mark.parametrize("how", ["whole", "bytewise", "trailing"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cases(impl, case, how):
    trailing = case.trailing if how == "trailing" else b""
    data = case.data + trailing
    chunks = [data[i : i + 1] for i in range(len(data))] if how == "bytewise" else [data]
    decoder = impl.RespReplyDecoder(**(case.limits or {}))
    replies, error = drive_replies(decoder, chunks)
    assert canon(replies) == canon(case.replies)
    if case.error is None:
        assert error is None
        assert decoder.buffered == len(case.pending) + len(trailing)
    else:
        assert type(error) is RespProtocolError
        assert str(error) == case.error


def test_default_depth_limit(impl):
    depth = limits.DEFAULT_RESP_MAX_DEPTH
    decoder = impl.RespReplyDecoder()
    decoder.feed(b"*1\r\n" * depth + b":1\r\n")
    reply = decoder.next_reply()
    for _ in range(depth):
        reply = reply[0]
    assert reply == 1
    decoder.feed(b"*1\r\n" * (depth + 1))
    with pytest.raises(RespProtocolError, match=f"max_depth={depth}"):
        decoder.next_reply()


def test_deep_nesting_uses_no_recursion(impl):
    depth = 50_000  # far past Python's recursion limit
    decoder = impl.RespReplyDecoder(max_depth=depth)
    decoder.feed(b"*1\r\n" * (depth - 1) + b"*0\r\n" + b"%1\r\n+k\r\n" * (depth - 1) + b"~1\r\n+m\r\n")
    reply = decoder.next_reply()
    for _ in range(depth - 1):  # walked iteratively: == on it would recurse
        assert type(reply) is list and len(reply) == 1
        reply = reply[0]
    assert reply == []
    reply = decoder.next_reply()
    for _ in range(depth - 1):
        assert type(reply) is dict and len(reply) == 1
        reply = reply[b"k"]
    assert reply == {b"m"}
    assert decoder.buffered == 0


# --- the NEED_DATA marker, iteration, errors ----------------------------------------


def test_none_replies_are_not_need_data(impl):
    decoder = impl.RespReplyDecoder()
    assert decoder.next_reply() is NEED_DATA
    decoder.feed(b"_\r\n$-1\r\n*-1\r\n:1")
    assert [decoder.next_reply() for _ in range(4)] == [None, None, None, NEED_DATA]
    decoder.feed(b"\r\n+x\r\n")
    assert list(decoder) == [1, b"x"]
    assert decoder.next_reply() is NEED_DATA
    assert impl.NEED_DATA is codec.resp.NEED_DATA is NEED_DATA
    assert repr(NEED_DATA) == "NEED_DATA"


@pytest.mark.parametrize("data", [b"?", b":x\r\n", b"$3\r\nabcde", b"*1\r\n" * 200])
def test_errors_are_sticky(impl, data):
    decoder = impl.RespReplyDecoder()
    decoder.feed(data)
    with pytest.raises(RespProtocolError) as first:
        decoder.replies()
    buffered = decoder.buffered
    decoder.feed(b"+OK\r\n")
    assert decoder.buffered == buffered
    for call in (decoder.replies, decoder.next_reply):
        with pytest.raises(RespProtocolError) as again:
            call()
        assert again.value is not first.value and str(again.value) == str(first.value)
    decoder.reset()
    assert decoder.buffered == 0
    decoder.feed(b"+OK\r\n")
    assert decoder.replies() == [b"OK"]


def test_replies_before_an_error_come_first(impl):
    decoder = impl.RespReplyDecoder()
    decoder.feed(b"+a\r\n*1\r\n+b\r\n:nope\r\n")
    assert decoder.next_reply() == b"a"
    assert decoder.next_reply() == [b"b"]
    with pytest.raises(RespProtocolError, match="Bad integer value"):
        decoder.next_reply()


def test_reset_drops_a_partial_reply(impl):
    decoder = impl.RespReplyDecoder()
    decoder.feed(b"*3\r\n:1\r\n%1\r\n+k")
    assert decoder.replies() == []
    decoder.reset()
    decoder.feed(b":2\r\n")
    assert decoder.replies() == [2]


# --- O(bytes read) -----------------------------------------------------------------


def _overwrite(impl, decoder, index: int, data: bytes) -> None:
    """Overwrite buffered bytes (counted from the reply in progress)."""
    if impl is codec.impls.get("c"):
        p = decoder._p
        for k, byte in enumerate(data):
            p.raw.buf[p.raw.start + p.done_bytes + index + k] = bytes([byte])
    else:
        decoder._buf[index : index + len(data)] = data


def test_line_is_never_rescanned(impl):
    decoder = impl.RespReplyDecoder()
    decoder.feed(b"+abc")
    assert decoder.replies() == []
    _overwrite(impl, decoder, 1, b"\r\n")  # "+\r\nc": a rescan would end the line there
    for byte in b"defgh":
        decoder.feed(bytes([byte]))
        assert decoder.replies() == []
    decoder.feed(b"\r\n")
    assert decoder.replies() == [b"\r\ncdefgh"]


def test_aggregate_is_never_reparsed_from_its_start(impl):
    decoder = impl.RespReplyDecoder()
    decoder.feed(b"*3\r\n:1\r\n$5\r\nab")
    assert decoder.replies() == []
    _overwrite(impl, decoder, 0, b"?\r\n?")  # "*3\r\n:": a reparse would fail on "?"
    _overwrite(impl, decoder, 8, b"????")  # "$5\r\n"
    decoder.feed(b"cde\r\n+x\r\n")
    assert decoder.replies() == [[1, b"abcde", b"x"]]


def test_big_bulk_in_small_reads(impl):
    payload = bytes(range(256)) * (4 * 1024 * 4)  # 4 MiB
    wire = b"*2\r\n" + codec.encode_bulk(payload) + b":1\r\n+OK\r\n"
    decoder = impl.RespReplyDecoder()
    replies = []
    for i in range(0, len(wire), 4096):
        decoder.feed(wire[i : i + 4096])
        replies += decoder.replies()
    assert replies == [[payload, 1], b"OK"]
    assert decoder.buffered == 0


# --- memory: a declared size is never trusted ------------------------------------------


@pytest.mark.parametrize("data", [b"*2147483647\r\n:1\r\n", b"%2147483647\r\n:1\r\n", b"$536870912\r\nabc"])
def test_declared_size_does_not_allocate(impl, data):
    decoder = impl.RespReplyDecoder()
    tracemalloc.start()
    try:
        decoder.feed(data)
        assert decoder.replies() == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.buffered == len(data)
    assert peak < 64 * 1024
    if impl is codec.impls.get("c"):
        p = decoder._p
        assert p.raw.cap <= 64 * 1024
        assert p.tok_cap <= 64 and p.stack_cap <= 64


# --- arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [({"max_bulk_len": -1}, OverflowError), ({"max_depth": 2**31}, OverflowError),
     ({"max_line_len": 2**63}, OverflowError), ({"max_multibulk_len": 2**62}, OverflowError),
     ({"max_multibulk_len": None}, TypeError)],
)
def test_rejects_bad_limits(impl, kwargs, exc):
    with pytest.raises(exc):
        impl.RespReplyDecoder(**kwargs)


def test_defaults_come_from_limits_module(impl):
    params = inspect.signature(impl.RespReplyDecoder).parameters
    assert params["max_bulk_len"].default is limits.DEFAULT_RESP_MAX_BULK_LEN
    assert params["max_multibulk_len"].default is limits.DEFAULT_RESP_MAX_MULTIBULK_LEN
    assert params["max_line_len"].default is limits.DEFAULT_RESP_MAX_LINE_LEN
    assert params["max_depth"].default is limits.DEFAULT_RESP_MAX_DEPTH == 128
    if impl is codec.impls.get("c"):
        lim = impl.RespReplyDecoder(max_depth=7)._p.lim
        assert (lim.max_depth, lim.max_double, lim.max_big_number) == (
            7, limits.RESP_MAX_DOUBLE_LEN, limits.RESP_MAX_BIG_NUMBER_DIGITS)


# --- encoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "resp2", "resp3"),
    [
        (lambda p: codec.encode_reply(b"hi", p), b"$2\r\nhi\r\n", b"$2\r\nhi\r\n"),
        (lambda p: codec.encode_reply("h\xe9", p), b"$3\r\nh\xc3\xa9\r\n", b"$3\r\nh\xc3\xa9\r\n"),
        (lambda p: codec.encode_reply(-7, p), b":-7\r\n", b":-7\r\n"),
        (lambda p: codec.encode_reply(2**64, p), b"$20\r\n18446744073709551616\r\n", b"(18446744073709551616\r\n"),
        (lambda p: codec.encode_reply(BigNumber(5), p), b"$1\r\n5\r\n", b"(5\r\n"),
        (lambda p: codec.encode_reply(None, p), b"$-1\r\n", b"_\r\n"),
        (lambda p: codec.encode_null(p, array=True), b"*-1\r\n", b"_\r\n"),
        (lambda p: codec.encode_reply(True, p), b":1\r\n", b"#t\r\n"),
        (lambda p: codec.encode_boolean(False, p), b":0\r\n", b"#f\r\n"),
        (lambda p: codec.encode_reply(1.5, p), b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (lambda p: codec.encode_double(-INF, p), b"$4\r\n-inf\r\n", b",-inf\r\n"),
        (lambda p: codec.encode_double(NAN, p), b"$3\r\nnan\r\n", b",nan\r\n"),
        (lambda p: codec.encode_reply(RespError(b"ERR x"), p), b"-ERR x\r\n", b"-ERR x\r\n"),
        (lambda p: codec.encode_error("ERR x", p), b"-ERR x\r\n", b"-ERR x\r\n"),
        (lambda p: codec.encode_reply(Verbatim(b"txt", b"ab"), p), b"$2\r\nab\r\n", b"=6\r\ntxt:ab\r\n"),
        (lambda p: codec.encode_reply([1, [b"a"]], p), b"*2\r\n:1\r\n*1\r\n$1\r\na\r\n",
         b"*2\r\n:1\r\n*1\r\n$1\r\na\r\n"),
        (lambda p: codec.encode_reply((1,), p), b"*1\r\n:1\r\n", b"*1\r\n:1\r\n"),
        (lambda p: codec.encode_reply({b"k": 1}, p), b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
        (lambda p: codec.encode_reply({1}, p), b"*1\r\n:1\r\n", b"~1\r\n:1\r\n"),
        (lambda p: codec.encode_reply(Push([b"m"]), p), b"*1\r\n$1\r\nm\r\n", b">1\r\n$1\r\nm\r\n"),
        (lambda p: codec.encode_array([1, 2], p), b"*2\r\n:1\r\n:2\r\n", b"*2\r\n:1\r\n:2\r\n"),
        (lambda p: codec.encode_map({1: 2}, p), b"*2\r\n:1\r\n:2\r\n", b"%1\r\n:1\r\n:2\r\n"),
        (lambda p: codec.encode_set([1, 1], p), b"*2\r\n:1\r\n:1\r\n", b"~2\r\n:1\r\n:1\r\n"),
        (lambda p: codec.encode_push([b"m"], p), b"*1\r\n$1\r\nm\r\n", b">1\r\n$1\r\nm\r\n"),
        (lambda p: codec.encode_big_number(-12, p), b"$3\r\n-12\r\n", b"(-12\r\n"),
        (lambda p: codec.encode_verbatim("x", "mkd", p), b"$1\r\nx\r\n", b"=5\r\nmkd:x\r\n"),
    ],
)
def test_encoders(call, resp2, resp3):
    assert call(2) == resp2
    assert call(3) == resp3


def test_protocol_independent_encoders():
    assert codec.encode_simple(b"OK") == codec.encode_simple("OK") == b"+OK\r\n"
    assert codec.encode_integer(I64_MIN) == b":-9223372036854775808\r\n"
    assert codec.encode_bulk(memoryview(b"ab")) == b"$2\r\nab\r\n"
    assert codec.encode_attribute({b"ttl": 1}) == b"|1\r\n$3\r\nttl\r\n:1\r\n"
    assert codec.encode_error(b"ERR a\r\nb", 3) == b"!8\r\nERR a\r\nb\r\n"
    assert codec.encode_command("SET", b"k", 1, 2.5, bytearray(b"v")) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$3\r\n2.5\r\n$1\r\nv\r\n")


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda: codec.encode_simple(b"a\r\nb"), ValueError),
        (lambda: codec.encode_simple(b"a\nb"), ValueError),
        (lambda: codec.encode_error(b"ERR\nx", 2), ValueError),
        (lambda: codec.encode_integer(2**63), OverflowError),
        (lambda: codec.encode_integer(True), TypeError),
        (lambda: codec.encode_big_number(1.0), TypeError),
        (lambda: codec.encode_command(), ValueError),
        (lambda: codec.encode_command(b"SET", True), TypeError),
        (lambda: codec.encode_command(b"SET", None), TypeError),
        (lambda: codec.encode_reply(object()), TypeError),
        (lambda: codec.encode_reply(b"x", protocol=4), ValueError),
        (lambda: codec.encode_verbatim(b"x", b"md"), ValueError),
        (lambda: codec.encode_reply([[[]]], max_depth=2), ValueError),
        (lambda: codec.encode_array([[]], max_depth=1), ValueError),
    ],
)
def test_encoders_refuse(call, exc):
    with pytest.raises(exc):
        call()


def test_value_types_take_str():
    # Regression: SimpleString("OK") raised "string argument without an
    # encoding", and RespError("ERR x") was built but failed when encoded.
    assert SimpleString("OK") == b"OK" and type(SimpleString("OK")) is SimpleString
    assert SimpleString(bytearray(b"OK")) == SimpleString(memoryview(b"OK")) == b"OK"
    assert RespError("ERR bad") == RespError(b"ERR bad")
    assert RespError("ERR bad").message == b"ERR bad" and RespError("ERR bad").code == b"ERR"
    assert RespError("ERR é").message == "ERR é".encode()
    assert codec.encode_reply([SimpleString("OK"), RespError("ERR bad")]) == b"*2\r\n+OK\r\n-ERR bad\r\n"
    assert hash(RespError("E")) == hash(RespError(b"E"))


@pytest.mark.parametrize("bad", [3, None, 2.5, [b"OK"]])
def test_value_types_refuse_non_text_at_once(bad):
    # Refused when built, naming the type: an int is never taken as bytes(n).
    with pytest.raises(TypeError, match=f"SimpleString must be bytes-like or str, not {type(bad).__name__}"):
        SimpleString(bad)
    with pytest.raises(TypeError, match=f"RespError message must be bytes-like or str, not {type(bad).__name__}"):
        RespError(bad)


def test_encoding_a_cycle_fails_instead_of_looping():
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="max_depth=128"):
        codec.encode_reply(cycle)


def test_encoding_deep_nesting_uses_no_recursion():
    value: list = []
    for _ in range(50_000):
        value = [value]
    wire = codec.encode_reply(value, max_depth=10**6)
    assert wire == b"*1\r\n" * 50_000 + b"*0\r\n"


# --- round trips ---------------------------------------------------------------------
# `impl` only selects a module: nothing to reset between hypothesis examples.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(resp3_values, max_size=4), st.data())
def test_round_trip_resp3(impl, values, data):
    wire = b"".join(codec.encode_reply(v, 3) for v in values)
    decoder = impl.RespReplyDecoder()
    replies, error = drive_replies(decoder, data.draw(splits(wire)))
    assert error is None
    assert canon(replies) == canon(values)
    assert decoder.buffered == 0


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(resp2_values, max_size=4), st.data())
def test_round_trip_resp2(impl, values, data):
    wire = b"".join(codec.encode_reply(v, 2) for v in values)
    replies, error = drive_replies(impl.RespReplyDecoder(), data.draw(splits(wire)))
    assert error is None
    assert canon(replies) == canon(values)


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.floats())
def test_doubles_round_trip_exactly(impl, value):
    decoder = impl.RespReplyDecoder()
    decoder.feed(codec.encode_double(value, 3))
    reply = decoder.next_reply()
    assert (math.isnan(reply) and math.isnan(value)) or repr(reply) == repr(value)


# --- encode_bulk_array: the twins agree, and read back ---------------------------------

@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.binary(max_size=300), max_size=200))
def test_bulk_array_twins_agree_and_decode(items):
    """Both twins write the same bytes for the same items (empty, long,
    holding CR LF or NUL), and those bytes read back as the items, in RESP2
    and RESP3 (a bulk array is the same in both: encode_array's bytes)."""
    outputs = {name: codec.impls[name].encode_bulk_array(items) for name in codec.impls}
    assert len(set(outputs.values())) == 1, outputs
    (reply,) = set(outputs.values())
    assert reply == codec.encode_array(items, 2) == codec.encode_array(items, 3)
    decoder = codec.RespReplyDecoder()
    decoder.feed(reply)
    assert decoder.replies() == [items]


def test_bulk_array_c_refuses_lengths_that_do_not_add_up():
    """fn_resp_bulk_array checks what it is given (FN_E_ARG): lengths that
    add up to more or less than the data, or a buffer smaller than
    fn_resp_bulk_array_cap, write nothing usable and return the error."""
    if "c" not in codec.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")
    from fastnet import native

    lib, ffi = native.lib, native.ffi
    data = b"abcdef"
    cap = lib.fn_resp_bulk_array_cap(2, len(data))
    out = ffi.new("char[]", cap)
    assert lib.fn_resp_bulk_array(data, 6, ffi.new("uint64_t[]", [3, 3]), 2, out, cap) == 22
    assert ffi.buffer(out, 22)[:] == b"*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n"
    for lens in ([3, 4], [3, 2], [7, 0], [2**64 - 1, 7]):
        assert lib.fn_resp_bulk_array(data, 6, ffi.new("uint64_t[]", lens), 2, out, cap) == lib.FN_E_ARG
    assert lib.fn_resp_bulk_array(data, 6, ffi.new("uint64_t[]", [3, 3]), 2, out, cap - 1) == lib.FN_E_ARG
    assert lib.fn_resp_bulk_array_cap(2**64 - 1, 0) == 2**64 - 1  # saturates, never wraps
