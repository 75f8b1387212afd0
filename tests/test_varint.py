"""Varints and zigzag, on both twins (the `impl` fixture)."""
from __future__ import annotations

import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnet.errors import VarintError, VarintOverflow, VarintOverlong, VarintTruncated

U64 = 2**64 - 1

# The impl fixture is a stateless module, so sharing it across examples is safe.
twin_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

KNOWN = [
    (0, "00"),
    (1, "01"),
    (127, "7f"),
    (128, "8001"),
    (255, "ff01"),
    (300, "ac02"),
    (16383, "ff7f"),
    (16384, "808001"),
    (2**32 - 1, "ffffffff0f"),
    (2**63 - 1, "ff" * 8 + "7f"),
    (2**63, "80" * 9 + "01"),
    (U64, "ff" * 9 + "01"),
]


@pytest.mark.parametrize(("value", "encoding"), KNOWN)
def test_known_encodings(impl, value, encoding):
    data = bytes.fromhex(encoding)
    assert impl.encode_uvarint(value) == data
    assert impl.decode_uvarint(data) == (value, len(data))


@pytest.mark.parametrize("value", [0, 127, 128, 2**14 - 1, 2**14, 2**63, U64])
def test_round_trip_at_boundaries(impl, value):
    data = impl.encode_uvarint(value)
    assert impl.decode_uvarint(data) == (value, len(data))
    assert impl.decode_uvarint(b"junk" + data + b"more", 4) == (value, 4 + len(data))


@twin_settings
@given(st.integers(0, U64))
def test_round_trip_any(impl, value):
    data = impl.encode_uvarint(value)
    assert 1 <= len(data) <= 10
    assert impl.decode_uvarint(data) == (value, len(data))


@twin_settings
@given(st.integers(-(2**63), 2**63 - 1))
def test_svarint_round_trip_any(impl, value):
    data = impl.encode_svarint(value)
    assert impl.decode_svarint(data) == (value, len(data))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x80", id="one-continuation"),
        pytest.param(b"\xff" * 9, id="nine-continuations"),
        pytest.param(b"\x80" * 9, id="nine-zero-continuations"),
    ],
)
def test_truncated(impl, data):
    with pytest.raises(VarintTruncated):
        impl.decode_uvarint(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x80\x00", id="zero-in-two"),
        pytest.param(b"\xff\x00", id="127-in-two"),
        pytest.param(b"\x81\x80\x00", id="one-in-three"),
        pytest.param(b"\x80" * 9 + b"\x00", id="tenth-byte-zero"),
        pytest.param(b"\x80\x00\xff", id="decided-before-later-bytes"),
    ],
)
def test_overlong(impl, data):
    with pytest.raises(VarintOverlong):
        impl.decode_uvarint(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff" * 9 + b"\x02", id="tenth-byte-2"),
        pytest.param(b"\x80" * 9 + b"\x7f", id="tenth-byte-7f-last"),
        pytest.param(b"\xff" * 10, id="tenth-byte-continues"),
        pytest.param(b"\xff" * 11, id="eleven-bytes"),
        pytest.param(b"\x80" * 9 + b"\x80\x00", id="tenth-0x80-not-overlong"),
    ],
)
def test_overflow(impl, data):
    with pytest.raises(VarintOverflow):
        impl.decode_uvarint(data)


def test_ten_byte_valid_edge(impl):
    assert impl.decode_uvarint(b"\x80" * 9 + b"\x01") == (2**63, 10)
    assert impl.decode_uvarint(b"\xff" * 9 + b"\x01" + b"\xff") == (U64, 10)


def test_decode_offset_at_end_is_truncated(impl):
    with pytest.raises(VarintTruncated):
        impl.decode_uvarint(b"\x05", 1)


@pytest.mark.parametrize("offset", [-1, 3])
def test_decode_offset_out_of_range(impl, offset):
    with pytest.raises(ValueError):
        impl.decode_uvarint(b"\x01\x02", offset)


@pytest.mark.parametrize(
    "data",
    [bytearray(b"\xac\x02"), memoryview(b"\xac\x02"), memoryview(b"__\xac\x02")[2:], array.array("B", [0xAC, 2])],
    ids=["bytearray", "memoryview", "memoryview-slice", "array"],
)
def test_decode_any_bytes_like(impl, data):
    assert impl.decode_uvarint(data) == (300, 2)


@pytest.mark.parametrize("data", ["ac02", 300, None, memoryview(b"\xac\x00\x02")[::2]])
def test_decode_rejects_non_bytes(impl, data):
    with pytest.raises(TypeError):
        impl.decode_uvarint(data)


@twin_settings
@given(st.binary(max_size=16), st.data())
def test_decode_random_bytes_only_raises_varint_errors(impl, data, draw):
    offset = draw.draw(st.integers(0, len(data)))
    try:
        value, end = impl.decode_uvarint(data, offset)
    except VarintError:
        return
    # Strict decoding: whatever decodes re-encodes to exactly the same bytes.
    assert impl.encode_uvarint(value) == data[offset:end]


@pytest.mark.parametrize(("value", "exc"), [(-1, OverflowError), (2**64, OverflowError), ("1", TypeError), (1.0, TypeError)])
def test_encode_uvarint_rejects(impl, value, exc):
    with pytest.raises(exc):
        impl.encode_uvarint(value)


ZIGZAG = [
    (0, 0),
    (-1, 1),
    (1, 2),
    (-2, 3),
    (2, 4),
    (2**31 - 1, 2**32 - 2),
    (-(2**31), 2**32 - 1),
    (2**63 - 1, 2**64 - 2),
    (-(2**63), 2**64 - 1),
]


@pytest.mark.parametrize(("signed", "unsigned"), ZIGZAG)
def test_zigzag_table(impl, signed, unsigned):
    assert impl.zigzag_encode(signed) == unsigned
    assert impl.zigzag_decode(unsigned) == signed


@pytest.mark.parametrize(("value", "encoding"), [(0, "00"), (-1, "01"), (1, "02"), (-64, "7f"), (64, "8001"), (-(2**63), "ff" * 9 + "01")])
def test_svarint_known(impl, value, encoding):
    assert impl.encode_svarint(value) == bytes.fromhex(encoding)
    assert impl.decode_svarint(bytes.fromhex(encoding)) == (value, len(encoding) // 2)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_zigzag_encode_range(impl, value):
    with pytest.raises(OverflowError):
        impl.zigzag_encode(value)
    with pytest.raises(OverflowError):
        impl.encode_svarint(value)


@pytest.mark.parametrize("value", [-1, 2**64])
def test_zigzag_decode_range(impl, value):
    with pytest.raises(OverflowError):
        impl.zigzag_decode(value)


def test_varint_errors_are_protocol_errors(impl):
    with pytest.raises(ValueError):  # every ProtocolError is a ValueError too
        impl.decode_uvarint(b"\x80")
