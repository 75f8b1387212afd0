"""Differential tests: the C and Python RESP twins, fed the same input split
at the same random points with the same random limits, must produce the
same commands / replies, the same `buffered` counts and the same errors.

Inputs are structured (valid requests and replies, some near the limits)
mixed with garbage built from the bytes that matter to the grammar. The
only exception a decoder may raise is RespProtocolError; anything else
fails the test. And the split itself changes nothing but when things are
seen: the same commands or replies and the same error as fed whole.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnet import codec
from fastnet.errors import RespProtocolError
from resp_helpers import canon, resp2_values, resp3_values, splits

pytwin = codec.impls["python"]
ctwin = codec.impls.get("c")
pytestmark = pytest.mark.skipif(ctwin is None, reason="C extension not built")

# --- requests ---------------------------------------------------------------

request_limits = st.fixed_dictionaries(
    {},
    optional={
        "max_bulk_len": st.integers(0, 64),
        "max_multibulk_len": st.integers(0, 8),
        "max_inline_len": st.integers(0, 64),
        "client_query_buffer_limit": st.integers(0, 400),
    },
)
request_tokens = st.sampled_from([
    b"*", b"$", b"\r", b"\n", b"\r\n", b"\x00", b"-1", b"0", b"1", b"3", b"12", b"-", b"+",
    b'"', b"'", b"\\", b"\\x", b"4f", b"Zz", b" ", b"\t", b"\v", b"\f", b"a", b"PING", b"\xff",
])
request_garbage = st.one_of(st.binary(max_size=12), st.lists(request_tokens, max_size=16).map(b"".join))


@st.composite
def request_stream(draw) -> bytes:
    """Valid and nearly valid requests, mixed with garbage."""
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            pieces.append(draw(request_garbage))
        elif choice in (1, 2):  # a multibulk command, sometimes long arguments
            args = draw(st.lists(st.one_of(st.binary(max_size=10), st.binary(min_size=60, max_size=70)),
                                 min_size=1, max_size=5))
            pieces.append(codec.encode_command(*args))
        elif choice == 3:  # a multibulk with a lying count or length
            count = draw(st.integers(-2, 4))
            body = b"".join(b"$%d\r\n%s\r\n" % (draw(st.integers(-1, 6)), draw(st.binary(max_size=5)))
                            for _ in range(draw(st.integers(0, 4))))
            pieces.append(b"*%d\r\n" % count + body)
        else:  # an inline line, quotes and escapes included
            words = draw(st.lists(st.lists(request_tokens.filter(lambda t: t not in (b"\r", b"\n", b"\r\n")),
                                           max_size=5).map(b"".join), max_size=4))
            pieces.append(b" ".join(words) + draw(st.sampled_from([b"\r\n", b"\n"])))
    return b"".join(pieces)


def request_transcript(twin, limits, chunks) -> list[tuple]:
    """Everything observable while feeding chunks one by one and draining."""
    decoder = twin.RespRequestDecoder(**limits)
    events: list[tuple] = []
    for i, chunk in enumerate(chunks):
        try:
            if i % 3 == 2:  # a server's way: feed and decode in one call
                events.append(("commands", decoder.feed_commands(chunk)))
                events.append(("pending error", decoder.error))
            else:
                decoder.feed(chunk)
            if i % 3 == 1:
                while (command := decoder.next_command()) is not None:
                    events.append(("command", command))
            else:
                while batch := decoder.commands():
                    events.append(("commands", batch))
        except RespProtocolError as exc:
            events.append(("error", type(exc).__name__, str(exc)))
        events.append(("buffered", decoder.buffered))
    return events


def request_summary(events) -> tuple:
    commands = []
    for event in events:
        if event[0] == "command":
            commands.append(event[1])
        elif event[0] == "commands":
            commands += event[1]
    errors = [e[1:] for e in events if e[0] == "error"]
    return commands, errors[:1]


def assert_request_twins_agree(limits, data, chunks):
    expected = request_transcript(pytwin, limits, chunks)
    assert request_transcript(ctwin, limits, chunks) == expected
    assert request_summary(expected) == request_summary(request_transcript(pytwin, limits, [data]))


@settings(max_examples=500, deadline=None)
@given(request_limits, request_stream(), st.data())
def test_requests_structured(limits, data, draw):
    assert_request_twins_agree(limits, data, draw.draw(splits(data)))


@settings(max_examples=300, deadline=None)
@given(request_limits, st.one_of(st.binary(max_size=200), request_garbage), st.data())
def test_requests_random_bytes(limits, data, draw):
    assert_request_twins_agree(limits, data, draw.draw(splits(data)))


# --- replies -----------------------------------------------------------------

reply_limits = st.fixed_dictionaries(
    {},
    optional={
        "max_bulk_len": st.integers(0, 16),
        "max_multibulk_len": st.integers(0, 4),
        "max_line_len": st.integers(0, 16),
        "max_depth": st.integers(0, 4),
    },
)
reply_tokens = st.sampled_from([
    b"+", b"-", b":", b"$", b"*", b"%", b"~", b">", b"|", b",", b"#", b"_", b"(", b"=", b"!",
    b"\r", b"\n", b"\r\n", b"-1", b"0", b"1", b"2", b"4", b"t", b"f", b"inf", b"nan", b".5", b"e3",
    b"txt:", b"\x00", b"?",
])
reply_garbage = st.one_of(st.binary(max_size=12), st.lists(reply_tokens, max_size=16).map(b"".join))


@st.composite
def reply_stream(draw) -> bytes:
    pieces = []
    for _ in range(draw(st.integers(0, 6))):
        choice = draw(st.integers(0, 4))
        if choice == 0:
            pieces.append(draw(reply_garbage))
        elif choice == 1:
            pieces.append(codec.encode_reply(draw(resp2_values), 2))
        else:
            pieces.append(codec.encode_reply(draw(resp3_values), 3))
    return b"".join(pieces)


def reply_transcript(twin, limits, chunks) -> list[tuple]:
    decoder = twin.RespReplyDecoder(**limits)
    events: list[tuple] = []
    for i, chunk in enumerate(chunks):
        decoder.feed(chunk)
        try:
            if i % 2:
                while (reply := decoder.next_reply()) is not codec.resp.NEED_DATA:
                    events.append(("reply", canon(reply)))
            else:
                while batch := decoder.replies():
                    events += [("reply", canon(reply)) for reply in batch]
        except RespProtocolError as exc:
            events.append(("error", str(exc)))
        events.append(("buffered", decoder.buffered))
    return events


def reply_summary(events) -> tuple:
    errors = [e[1] for e in events if e[0] == "error"]
    return [e[1] for e in events if e[0] == "reply"], errors[:1]


def assert_reply_twins_agree(limits, data, chunks):
    expected = reply_transcript(pytwin, limits, chunks)
    assert reply_transcript(ctwin, limits, chunks) == expected
    assert reply_summary(expected) == reply_summary(reply_transcript(pytwin, limits, [data]))


@settings(max_examples=500, deadline=None)
@given(reply_limits, reply_stream(), st.data())
def test_replies_structured(limits, data, draw):
    assert_reply_twins_agree(limits, data, draw.draw(splits(data)))


@settings(max_examples=300, deadline=None)
@given(reply_limits, st.one_of(st.binary(max_size=200), reply_garbage), st.data())
def test_replies_random_bytes(limits, data, draw):
    assert_reply_twins_agree(limits, data, draw.draw(splits(data)))
