"""Differential tests: the Python and C twins of the varint and framing
codecs (fastnet.codec.{varint,framing}.{py,c}), fed the same
input split at the same random points, must produce the same messages, the
same `buffered` counts and the same errors (type and args).

These compare the two twins directly, so they need both: without the C
extension they skip (with FASTNET_REQUIRE_NATIVE=1 that is an import error).
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnet import codec
from fastnet.errors import ProtocolError, VarintError

pytwin = codec.impls["python"]
ctwin = codec.impls.get("c")
pytestmark = pytest.mark.skipif(ctwin is None, reason="C extension not built")

U64 = 2**64 - 1


def error_key(exc: BaseException) -> tuple:
    """What must be equal between two errors: type, message, and the details."""
    key = (type(exc), str(exc), getattr(exc, "size", None), getattr(exc, "limit", None))
    cause = getattr(exc, "cause", None)
    return key + ((type(cause), cause.args) if cause is not None else (None,))


def outcome(fn, *args) -> tuple:
    """("ok", result) or ("raised", error_key) for fn(*args)."""
    try:
        return ("ok", fn(*args))
    except (ValueError, TypeError, OverflowError) as exc:
        return ("raised", error_key(exc))


def build(twin, config):
    framing, limit, bare_lf = config
    return codec.new_decoder(framing, limit, bare_lf, impl=twin)


def transcript(twin, config, chunks) -> list[tuple]:
    """Everything observable while feeding chunks one by one and draining."""
    decoder = build(twin, config)
    events: list[tuple] = []
    for chunk in chunks:
        decoder.feed(chunk)
        while True:
            try:
                message = decoder.next_message()
            except ProtocolError as exc:
                events.append(("error", error_key(exc)))
                break
            if message is None:
                break
            events.append(("message", message))
        events.append(("buffered", decoder.buffered))
    return events


limits_st = st.one_of(st.integers(0, 64), st.integers(0, 400), st.integers(0, U64))
configs = st.one_of(
    st.tuples(st.sampled_from(["be32", "varint"]), limits_st, st.just(False)),
    st.tuples(st.just("line"), limits_st, st.booleans()),
)
# Bytes that matter to some grammar: delimiters, varint continuation and zero
# bytes, small be32 lengths.
tokens = st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b"\x00", b"\x01", b"\x7f", b"\x80", b"\xff", b"\x00\x00\x00"])
garbage = st.one_of(st.binary(max_size=12), st.lists(tokens, max_size=12).map(b"".join))


@st.composite
def splits(draw, data: bytes) -> list[bytes]:
    """data cut at random points (empty chunks included), or byte by byte."""
    if draw(st.integers(0, 9)) == 0:
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=16)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@st.composite
def structured_stream(draw, config) -> bytes:
    """Valid messages for config's framing, mixed with garbage; some payloads
    sit right at the limit (limit - 1, limit, limit + 1 bytes)."""
    framing, limit, bare_lf = config
    near_limit = st.integers(max(0, limit - 1), limit + 1).map(lambda n: b"q" * n)
    payloads = [st.binary(max_size=80), st.lists(tokens, max_size=40).map(b"".join)]
    if limit <= 1000:
        payloads.append(near_limit)
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 4)) == 0:
            pieces.append(draw(garbage))
            continue
        payload = draw(st.one_of(*payloads))
        if framing == "line":
            line = payload.replace(b"\r", b"").replace(b"\n", b"")
            end = draw(st.sampled_from([b"\r\n", b"\n"] if bare_lf else [b"\r\n"]))
            pieces.append(line + end)
        else:
            pieces.append(pytwin.encode_frame(payload, framing))
    return b"".join(pieces)


def assert_twins_agree(config, chunks):
    expected = transcript(pytwin, config, chunks)
    assert transcript(ctwin, config, chunks) == expected


@settings(max_examples=400, deadline=None)
@given(configs, st.binary(max_size=300), st.data())
def test_random_bytes(config, data, draw):
    assert_twins_agree(config, draw.draw(splits(data)))


@settings(max_examples=400, deadline=None)
@given(configs, st.data())
def test_structured_input(config, draw):
    data = draw.draw(structured_stream(config))
    chunks = draw.draw(splits(data))
    assert_twins_agree(config, chunks)
    # And the split itself changes nothing but when things are seen: the same
    # messages, and the same kind of error (a line's size may be seen early).
    def summary(events):
        messages = [e[1] for e in events if e[0] == "message"]
        errors = [e[1] for e in events if e[0] == "error"]
        return messages, (errors[0][0], errors[0][3]) if errors else None

    assert summary(transcript(pytwin, config, chunks)) == summary(transcript(pytwin, config, [data]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=14), st.data())
def test_decode_uvarint(data, draw):
    offset = draw.draw(st.integers(-1, len(data) + 1))
    assert outcome(ctwin.decode_uvarint, data, offset) == outcome(pytwin.decode_uvarint, data, offset)
    assert outcome(ctwin.decode_svarint, data, offset) == outcome(pytwin.decode_svarint, data, offset)


ints = st.one_of(
    st.integers(-(2**64), 2**65),
    st.sampled_from([0, 127, 128, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, U64, 2**64, -1]),
    st.sampled_from(["1", 1.0, None, b"\x01"]),
)


@settings(max_examples=300, deadline=None)
@given(ints)
def test_int_functions(value):
    for name in ["encode_uvarint", "encode_svarint", "zigzag_encode", "zigzag_decode"]:
        assert outcome(getattr(ctwin, name), value) == outcome(getattr(pytwin, name), value), name


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.lists(tokens, max_size=20).map(b"".join)), st.sampled_from(["be32", "varint", "be16"]))
def test_encoders(payload, header):
    assert outcome(ctwin.encode_frame, payload, header) == outcome(pytwin.encode_frame, payload, header)
    assert outcome(ctwin.encode_line, payload) == outcome(pytwin.encode_line, payload)


@pytest.mark.parametrize("data", [b"\x80", b"\x80\x00", b"\xff" * 10])
def test_varint_error_messages_identical(data):
    errors = []
    for twin in (pytwin, ctwin):
        with pytest.raises(VarintError) as info:
            twin.decode_uvarint(data)
        errors.append(error_key(info.value))
    assert errors[0] == errors[1]


@pytest.mark.parametrize(
    ("config", "data"),
    [
        (("be32", 8, False), b"\x00\x00\x01\x00"),
        (("varint", 8, False), b"\x80\x00"),
        (("varint", 8, False), b"\xff" * 11),
        (("line", 8, False), b"z" * 30),
        (("line", 8, True), b"z" * 9 + b"\n"),
    ],
)
def test_sticky_errors_identical(config, data):
    assert_twins_agree(config, [data, b"", b"more\r\n", b"\x00\x00\x00\x00"])
