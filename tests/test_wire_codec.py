"""The wire frame codec on both twins (the `impl` fixture), and the twins
against each other on random input split at random points."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnet import codec
from fastnet.codec.wire import FRAME_TYPES, GOAWAY, HEADER_SIZE, HELLO, PING, REQUEST, Frame
from fastnet.errors import (
    ProtocolError,
    WireBadMagic,
    WireBadType,
    WireBadVersion,
    WireBodyTooLarge,
    WireFrameError,
)
from fastnet.limits import DEFAULT_WIRE_MAX_BODY


def test_header_layout_byte_by_byte(impl):
    frame = impl.encode_wire_frame(REQUEST, b"abc", version=2, flags=0x09, request_id=0x01020304)
    assert frame == bytes([0xFB, 2, 2, 0x09, 1, 2, 3, 4, 0, 0, 0, 3]) + b"abc"
    assert len(frame) == HEADER_SIZE + 3


def test_round_trip_every_type(impl):
    decoder = impl.WireDecoder()
    assert decoder.max_body == DEFAULT_WIRE_MAX_BODY
    wire = b"".join(
        impl.encode_wire_frame(t, bytes([t]) * t, version=t, request_id=t * 1000)
        for t in FRAME_TYPES.values()
    )
    decoder.feed(wire)
    frames = list(decoder)
    assert frames == [Frame(t, t, 0, t * 1000, bytes([t]) * t) for t in FRAME_TYPES.values()]
    assert decoder.buffered == 0
    assert decoder.next_frame() is None


def test_byte_at_a_time(impl):
    wire = impl.encode_wire_frame(PING, b"xy", request_id=7) + impl.encode_wire_frame(HELLO)
    decoder = impl.WireDecoder(10)
    got = []
    for i in range(len(wire)):
        decoder.feed(wire[i : i + 1])
        got += list(decoder)
        assert decoder.buffered == sum(len(x) for x in _frames_prefix(wire, i + 1))
    assert got == [Frame(1, PING, 0, 7, b"xy"), Frame(1, HELLO, 0, 0, b"")]


def _frames_prefix(wire: bytes, n: int) -> list[bytes]:
    """The bytes of wire[:n] that are not yet a whole frame (a helper for buffered)."""
    rest = wire[:n]
    while len(rest) >= HEADER_SIZE:
        size = HEADER_SIZE + int.from_bytes(rest[8:12], "big")
        if len(rest) < size:
            break
        rest = rest[size:]
    return [rest]


def test_body_limit_checked_as_soon_as_the_header_is_complete(impl):
    decoder = impl.WireDecoder(1000)
    header = impl.encode_wire_frame(REQUEST, b"x" * 1001)[:HEADER_SIZE]
    decoder.feed(header[:-1])
    assert decoder.next_frame() is None
    decoder.feed(header[-1:])  # not one byte of the body
    with pytest.raises(WireBodyTooLarge) as info:
        decoder.next_frame()
    assert (info.value.size, info.value.limit) == (1001, 1000)
    assert "max_body=1000" in str(info.value)
    assert isinstance(info.value, ProtocolError) and isinstance(info.value, ValueError)


def test_body_at_the_limit_is_accepted(impl):
    decoder = impl.WireDecoder(5)
    decoder.feed(impl.encode_wire_frame(REQUEST, b"12345"))
    assert decoder.next_frame().body == b"12345"


def test_four_gib_declared_is_refused_without_allocating(impl):
    decoder = impl.WireDecoder()
    decoder.feed(bytes([0xFB, 1, REQUEST, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]))
    with pytest.raises(WireBodyTooLarge) as info:
        decoder.next_frame()
    assert info.value.size == 2**32 - 1
    assert decoder.buffered == HEADER_SIZE


@pytest.mark.parametrize(
    "prefix, error, value",
    [
        (b"\x00", WireBadMagic, 0),
        (b"GET / HTTP/1.1\r\n", WireBadMagic, ord("G")),
        (b"\xfb\x00", WireBadVersion, 0),
        (b"\xfb\x01\x00", WireBadType, 0),
        (b"\xfb\x01\x08", WireBadType, 8),
        (b"\xfb\x09\xff", WireBadType, 255),
    ],
)
def test_bad_headers_fail_on_the_first_byte_that_proves_them(impl, prefix, error, value):
    decoder = impl.WireDecoder()
    decoder.feed(prefix)
    with pytest.raises(error) as info:
        decoder.next_frame()
    assert info.value.value == value and isinstance(info.value, WireFrameError)
    # sticky, and later input is discarded
    decoder.feed(impl.encode_wire_frame(PING))
    with pytest.raises(error):
        decoder.next_frame()
    assert decoder.buffered == len(prefix)
    decoder.reset()
    assert decoder.buffered == 0
    decoder.feed(impl.encode_wire_frame(PING))
    assert decoder.next_frame() == Frame(1, PING, 0, 0, b"")


def test_unknown_flag_bits_pass_through(impl):
    decoder = impl.WireDecoder()
    decoder.feed(impl.encode_wire_frame(REQUEST, b"", flags=0xF0))
    assert decoder.next_frame().flags == 0xF0


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"version": 0}, ValueError),
        ({"version": 256}, OverflowError),
        ({"flags": -1}, OverflowError),
        ({"request_id": 2**32}, OverflowError),
        ({"request_id": "1"}, TypeError),
    ],
)
def test_encode_refuses_fields_that_do_not_fit(impl, kwargs, error):
    with pytest.raises(error):
        impl.encode_wire_frame(REQUEST, b"", **kwargs)


@pytest.mark.parametrize("type_", [0, GOAWAY + 1])
def test_encode_refuses_unknown_types(impl, type_):
    with pytest.raises((ValueError, OverflowError)):
        impl.encode_wire_frame(type_)


def test_large_body_in_chunks(impl):
    body = bytes(range(256)) * 8192  # 2 MiB
    wire = impl.encode_wire_frame(REQUEST, body, request_id=1) + impl.encode_wire_frame(PING)
    decoder = impl.WireDecoder()
    got = []
    for i in range(0, len(wire), 65536):
        decoder.feed(memoryview(wire)[i : i + 65536])
        got += list(decoder)
    assert [f.body for f in got] == [body, b""]


# --- the twins against each other ---------------------------------------------

pytwin = codec.impls["python"]
ctwin = codec.impls.get("c")


def run(twin, chunks: list[bytes], max_body: int) -> list:
    """Everything a decoder yields for chunks: frames, buffered counts, errors."""
    decoder = twin.WireDecoder(max_body)
    out: list = []
    for chunk in chunks:
        decoder.feed(chunk)
        try:
            out += list(decoder)
        except WireFrameError as exc:
            out.append((type(exc), exc.args, str(exc)))
        out.append(decoder.buffered)
    return out


frames = st.builds(
    lambda t, body, v, fl, rid: (t, body, v, fl, rid),
    st.integers(HELLO, GOAWAY),
    st.binary(max_size=80),
    st.integers(1, 255),
    st.integers(0, 255),
    st.integers(0, 2**32 - 1),
)


@pytest.mark.skipif(ctwin is None, reason="C extension not built")
@settings(max_examples=300, deadline=None)
@given(
    st.lists(frames, max_size=6),
    st.binary(max_size=20),
    st.integers(0, 100),
    st.lists(st.integers(0, 600), max_size=8),
    st.integers(0, 600),
)
def test_twins_agree_on_random_splits(specs, junk, max_body, cuts, junk_at):
    wire = b"".join(
        pytwin.encode_wire_frame(t, b, version=v, flags=f, request_id=r) for t, b, v, f, r in specs
    )
    assert wire == b"".join(
        ctwin.encode_wire_frame(t, b, version=v, flags=f, request_id=r) for t, b, v, f, r in specs
    )
    at = min(junk_at, len(wire))
    wire = wire[:at] + junk + wire[at:]  # garbage anywhere: both must fail the same way
    points = sorted({min(c, len(wire)) for c in cuts} | {0, len(wire)})
    chunks = [wire[a:b] for a, b in zip(points, points[1:])]
    assert run(pytwin, chunks, max_body) == run(ctwin, chunks, max_body)
