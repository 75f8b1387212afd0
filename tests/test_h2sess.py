"""fastnet.codec.h2sess, HTTP/2's per-read batch: each case on both twins
(the ``impl`` fixture), bytes from the h2 package (python-hyper) as the
peer nobody here wrote, and a differential test feeding both twins the
same random frame streams split at the same random points."""
from __future__ import annotations

import h2.config
import h2.connection
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnet import limits
from fastnet.codec import h2sess
from fastnet.codec.h2frame import Flag, Frame, FrameType, encode
from fastnet.codec.hpack import Encoder, NeverIndexed
from fastnet.codec.h2sess import (DATA, ERROR, HEADERS, NOT_A_REQUEST, PING, SETTINGS, UNKNOWN,
                                  WINDOW_UPDATE, error_of)
from fastnet.errors import H2ConnectionError, H2ErrorCode, H2FrameError, HeaderListTooLarge, HpackError

from h2_helpers import REQUEST


@pytest.fixture(params=sorted(h2sess.impls))
def impl(request: pytest.FixtureRequest):
    return h2sess.impls[request.param]


def _headers(block: bytes, sid: int = 1, flags: int = Flag.END_HEADERS | Flag.END_STREAM) -> bytes:
    return encode(Frame(FrameType.HEADERS, sid, flags, block))


def _one(impl, fields, **reader) -> tuple:
    events = impl.Reader(**reader).receive(_headers(Encoder().encode(fields)))
    assert len(events) == 1 and events[0][0] == HEADERS, events
    return events[0]


def test_a_request_from_the_h2_package_is_one_batch(impl) -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", "/p"),
                            (":authority", "x"), ("content-length", "5")])
    client.send_data(1, b"hello", end_stream=True, pad_length=3)
    client.ping(b"12345678")
    data = client.data_to_send()[len(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):]
    events = impl.Reader().receive(data)
    assert [e[0] for e in events] == [SETTINGS, HEADERS, DATA, PING]
    assert events[1][:3] == (HEADERS, 1, False)
    assert events[1][3][:4] == [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/p"),
                                (b":authority", b"x")]
    assert events[1][4:7] == (5, False, 0)  # content-length 5; not valid as trailers
    assert events[2] == (DATA, 1, True, b"hello", 5 + 3 + 1)
    assert events[3] == (PING, False, b"12345678")


def test_split_anywhere_gives_the_same_tuples(impl) -> None:
    block = Encoder().encode(REQUEST)
    data = (_headers(block[:3], 1, 0) + encode(Frame(FrameType.CONTINUATION, 1, 0, block[3:6]))
            + encode(Frame(FrameType.CONTINUATION, 1, Flag.END_HEADERS, block[6:]))
            + encode(Frame(FrameType.WINDOW_UPDATE, 0, increment=10))
            + encode(Frame(42, 0, 0, b"unknown")))
    whole = impl.Reader().receive(data)
    reader = impl.Reader()
    pieces = [e for i in range(len(data)) for e in reader.receive(data[i:i + 1])]
    assert whole == pieces
    assert whole == [(HEADERS, 1, False, REQUEST, -1, False, 0, 0),
                     (WINDOW_UPDATE, 0, 10, 0), (UNKNOWN, 42)]


@pytest.mark.parametrize("fields, req, trailers", [
    (REQUEST, -1, False),
    (REQUEST + [(b"content-length", b"12"), (b"content-length", b"12")], 12, False),
    (REQUEST + [(b"content-length", b"12"), (b"content-length", b"13")], NOT_A_REQUEST, False),
    (REQUEST + [(b"content-length", b"1" * 19)], NOT_A_REQUEST, False),
    (REQUEST + [(b"content-length", b"+1")], NOT_A_REQUEST, False),
    (REQUEST + [(b"Upper", b"x")], NOT_A_REQUEST, False),
    (REQUEST + [(b"connection", b"close")], NOT_A_REQUEST, False),
    (REQUEST + [(b"te", b"gzip")], NOT_A_REQUEST, False),
    (REQUEST + [(b"te", b"trailers")], -1, False),
    (REQUEST + [(b"x", b" edge")], NOT_A_REQUEST, False),
    (REQUEST + [(b":path", b"/again")], NOT_A_REQUEST, False),
    (REQUEST[:2], NOT_A_REQUEST, False),                        # no :path
    ([(b":method", b"CONNECT"), (b":authority", b"h:1")], -1, False),
    ([(b":method", b"CONNECT"), (b":authority", b"h:1"), (b":path", b"/")], NOT_A_REQUEST, False),
    ([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b""), (b":authority", b"")],
     NOT_A_REQUEST, False),
    ([(b"grpc-status", b"0"), (b"content-length", b"x")], NOT_A_REQUEST, True),
    ([(b"x-ok", b"1"), (b"x-bad", b"a\r\nb")], NOT_A_REQUEST, False),
])
def test_each_list_is_checked_as_a_request_and_as_trailers(impl, fields, req, trailers) -> None:
    event = _one(impl, fields)
    assert event[4] == req and event[5] is trailers


def test_never_indexed_fields_come_back_as_such(impl) -> None:
    fields = REQUEST + [NeverIndexed(b"authorization", b"secret")]
    event = _one(impl, fields)
    assert event[7] == 1 and type(event[3][-1]) is NeverIndexed and event[3] == fields
    fields = [NeverIndexed(b"cookie", b"a")] + REQUEST + [NeverIndexed(b"cookie", b"b")]
    event = _one(impl, fields)
    assert event[7] == 2 and event[3] == fields
    assert [type(f) is NeverIndexed for f in event[3]] == [True] + [False] * len(REQUEST) + [True]


@pytest.mark.parametrize("rule, cls, code", [
    ("header_list_too_large", HeaderListTooLarge, H2ErrorCode.ENHANCE_YOUR_CALM),
    ("hpack_index", HpackError, H2ErrorCode.COMPRESSION_ERROR),
    ("too_large", H2FrameError, H2ErrorCode.FRAME_SIZE_ERROR),
    ("continuations", H2ConnectionError, H2ErrorCode.ENHANCE_YOUR_CALM),
])
def test_errors_end_the_batch_stick_and_name_their_rule(impl, rule, cls, code) -> None:
    reader = impl.Reader(max_header_list_size=100)
    ok = encode(Frame(FrameType.PING, 0, 0, b"12345678"))
    if rule == "header_list_too_large":
        bad = _headers(Encoder().encode(REQUEST + [(b"x", b"y" * 100)]))
    elif rule == "hpack_index":
        bad = _headers(b"\xff\x7f")  # index 190: past both tables
    elif rule == "too_large":
        bad = b"\x00\x40\x01\x00\x00\x00\x00\x00\x01"  # a 16385-byte frame declared
    else:
        bad = _headers(b"", 1, 0) + b"".join(encode(Frame(FrameType.CONTINUATION, 1, 0, b""))
                                            for _ in range(limits.H2_MAX_CONTINUATIONS + 1))
    events = reader.receive(ok + bad + ok)
    assert events == [(PING, False, b"12345678"), (ERROR, rule)]
    assert reader.receive(ok) == [(ERROR, rule)]
    error = error_of(rule, 100)
    assert isinstance(error, cls) and error.error_code == code
    if rule in ("header_list_too_large", "continuations"):
        assert ("max_header_list_size=100" if rule == "header_list_too_large"
                else f"H2_MAX_CONTINUATIONS={limits.H2_MAX_CONTINUATIONS}") in str(error)


def test_a_field_block_over_the_limit_is_refused_as_it_grows(impl) -> None:
    reader = impl.Reader()
    piece = b"\x00" * 16000
    events = reader.receive(_headers(piece, 1, 0))
    assert events == []
    for _ in range(limits.DEFAULT_H2_MAX_FIELD_BLOCK // 16000 - 1):
        assert reader.receive(encode(Frame(FrameType.CONTINUATION, 1, 0, piece))) == []
    assert reader.receive(encode(Frame(FrameType.CONTINUATION, 1, 0, piece))) == [
        (ERROR, "continuation_block")]


# -- the twins against each other ------------------------------------------------

_NAMES = [b":method", b":scheme", b":path", b":authority", b":status", b"content-length", b"te",
          b"connection", b"x-a", b"X-Up", b"", b"user-agent"]
_VALUES = [b"GET", b"CONNECT", b"http", b"/", b"", b"12", b"0", b"trailers", b" sp", b"a\nb",
           b"x" * 40]
fields_st = st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES)), max_size=8)


@st.composite
def frame_streams(draw) -> bytes:
    """A stream of frames, mostly well formed, some not, some garbage."""
    encoder = Encoder()
    out = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 12))
        sid = draw(st.sampled_from([0, 1, 3, 5]))
        flags = draw(st.sampled_from([0, 1, 4, 5, 8, 0x20, 0x25, 0xff]))
        if kind == FrameType.HEADERS:
            block = encoder.encode(draw(fields_st))
            if flags & Flag.END_HEADERS or draw(st.booleans()):
                out.append(encode(Frame(FrameType.HEADERS, sid or 1, flags & ~(8 | 0x20) | 4, block)))
            else:
                cut = draw(st.integers(0, len(block)))
                out.append(encode(Frame(FrameType.HEADERS, sid or 1, flags & 1, block[:cut])))
                out.append(encode(Frame(FrameType.CONTINUATION, sid or 1, 4, block[cut:])))
        elif kind == 11:
            out.append(draw(st.binary(max_size=24)))
        else:
            payload = draw(st.binary(max_size=20))
            length = len(payload) if draw(st.integers(0, 4)) else draw(st.integers(0, 2**24 - 1))
            head = length.to_bytes(3, "big") + bytes([kind if kind < 11 else 0x20, flags])
            out.append(head + sid.to_bytes(4, "big") + payload[:length])
    return b"".join(out)


@pytest.mark.skipif("c" not in h2sess.impls, reason="C extension not built (both twins needed)")
@settings(max_examples=300, deadline=None)
@given(data=frame_streams(), cuts=st.lists(st.integers(0, 2000), max_size=8),
       list_size=st.sampled_from([40, 200, 64 * 1024]))
def test_the_twins_give_the_same_batches_for_any_input_split_anywhere(data, cuts, list_size) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0] + points, points + [len(data)])]
    readers = [h2sess.impls[name].Reader(max_header_list_size=list_size) for name in ("c", "python")]
    for chunk in chunks + [b""]:
        batches = [reader.receive(chunk) for reader in readers]
        assert batches[0] == batches[1]
        assert [type(f) for e in batches[0] if e[0] == HEADERS for f in e[3]] == \
            [type(f) for e in batches[1] if e[0] == HEADERS for f in e[3]]
