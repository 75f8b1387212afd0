"""Unsigned LEB128 varints (up to 64 bits) and zigzag, in pure Python.

Decoding is strict because an untrusted peer chooses the bytes (see
csrc/varint.h): truncated input, overlong encodings (a final zero byte after
the first, e.g. ``80 00``) and values over 64 bits (a 10th byte > 1) are
errors. Bytes are checked in input order and the first byte that proves the
input bad decides the error, so a prefix of a bad varint already fails the
way the whole of it would.
"""
from __future__ import annotations

from ...errors import VarintOverflow, VarintOverlong, VarintTruncated
from ...limits import VARINT_MAX_BYTES
from .._common import byte_view, check_int64, check_offset, check_uint64
from ._common import varint_error

__all__ = [
    "decode_svarint",
    "decode_uvarint",
    "encode_svarint",
    "encode_uvarint",
    "zigzag_decode",
    "zigzag_encode",
]


def encode_uvarint(value: int) -> bytes:
    """Encode 0 <= value < 2**64 as LEB128 (1 to 10 bytes).

    TypeError for a non-int, OverflowError for a value out of range.
    """
    value = check_uint64(value, "value")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode the varint at data[offset:]; return (value, offset after it).

    Raises VarintTruncated, VarintOverlong or VarintOverflow for bad input.
    """
    view = byte_view(data)
    check_offset(offset, len(view))
    value = 0
    for i in range(min(len(view) - offset, VARINT_MAX_BYTES)):
        byte = view[offset + i]
        if i == VARINT_MAX_BYTES - 1 and byte > 1:
            raise varint_error(VarintOverflow)
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if byte == 0 and i > 0:
                raise varint_error(VarintOverlong)
            return value, offset + i + 1
    # Every byte so far had its high bit set: a 10th byte with it set would
    # have been > 1 (overflow), so the input simply ended.
    raise varint_error(VarintTruncated)


def zigzag_encode(value: int) -> int:
    """Map -2**63 <= value < 2**63 to an unsigned int: 0, -1, 1, -2 -> 0, 1, 2, 3."""
    value = check_int64(value, "value")
    return (value << 1) ^ (value >> 63)


def zigzag_decode(value: int) -> int:
    """Inverse of zigzag_encode, for 0 <= value < 2**64."""
    value = check_uint64(value, "value")
    return (value >> 1) ^ -(value & 1)


def encode_svarint(value: int) -> bytes:
    """Encode a signed 64-bit int as the varint of its zigzag mapping."""
    return encode_uvarint(zigzag_encode(value))


def decode_svarint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode a zigzag varint at data[offset:]; return (value, offset after it)."""
    value, end = decode_uvarint(data, offset)
    return zigzag_decode(value), end
