"""Varints and zigzag over csrc/varint.c (see fastnet.codec.varint.py for the rules)."""
from __future__ import annotations

from ... import native
from ...errors import VarintError, VarintOverflow, VarintOverlong, VarintTruncated
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

lib = native.require()
ffi = native.ffi

#: fn_uvarint_decode's error codes -> the exception each one means.
VARINT_ERRORS: dict[int, type[VarintError]] = {
    lib.FN_E_VARINT_TRUNCATED: VarintTruncated,
    lib.FN_E_VARINT_OVERLONG: VarintOverlong,
    lib.FN_E_VARINT_OVERFLOW: VarintOverflow,
}


def encode_uvarint(value: int) -> bytes:
    """Encode 0 <= value < 2**64 as LEB128 (1 to 10 bytes).

    TypeError for a non-int, OverflowError for a value out of range.
    """
    check_uint64(value, "value")
    out = ffi.new("uint8_t[]", lib.FN_VARINT_MAX_BYTES)
    return ffi.buffer(out, lib.fn_uvarint_encode(value, out))[:]


def decode_uvarint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode the varint at data[offset:]; return (value, offset after it).

    Raises VarintTruncated, VarintOverlong or VarintOverflow for bad input.
    """
    view = byte_view(data)
    check_offset(offset, len(view))
    value = ffi.new("uint64_t *")
    n = lib.fn_uvarint_decode(ffi.from_buffer("uint8_t[]", view) + offset, len(view) - offset, value)
    if n < 0:
        raise varint_error(VARINT_ERRORS[n])
    return value[0], offset + n


def zigzag_encode(value: int) -> int:
    """Map -2**63 <= value < 2**63 to an unsigned int: 0, -1, 1, -2 -> 0, 1, 2, 3."""
    return lib.fn_zigzag_encode(check_int64(value, "value"))


def zigzag_decode(value: int) -> int:
    """Inverse of zigzag_encode, for 0 <= value < 2**64."""
    return lib.fn_zigzag_decode(check_uint64(value, "value"))


def encode_svarint(value: int) -> bytes:
    """Encode a signed 64-bit int as the varint of its zigzag mapping."""
    return encode_uvarint(zigzag_encode(value))


def decode_svarint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode a zigzag varint at data[offset:]; return (value, offset after it)."""
    value, end = decode_uvarint(data, offset)
    return zigzag_decode(value), end
