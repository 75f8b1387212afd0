"""What both wire frame codec twins share: the frame tuple, the frame type
and flag names, and the argument checks of encode_wire_frame."""
from __future__ import annotations

import struct
from typing import NamedTuple

from ...limits import WIRE_MAX_BODY

#: Bytes in every frame header.
HEADER_SIZE = 12
#: The first byte of every frame.
MAGIC = 0xFB

HELLO, REQUEST, RESPONSE, ERROR, PING, PONG, GOAWAY = range(1, 8)
#: Frame type numbers by name.
FRAME_TYPES = {
    "HELLO": HELLO,
    "REQUEST": REQUEST,
    "RESPONSE": RESPONSE,
    "ERROR": ERROR,
    "PING": PING,
    "PONG": PONG,
    "GOAWAY": GOAWAY,
}
#: Flags bits 0-2: the body's compression codec (0 = none).
FLAG_CODEC_MASK = 0x07
#: Flags bit 3: the body is [metadata map, payload] (v2 and later).
FLAG_METADATA = 0x08


class Frame(NamedTuple):
    """One decoded frame; body is still compressed if flags say so."""

    version: int
    type: int
    flags: int
    request_id: int
    body: bytes


def check_header_fields(version: int, type: int, flags: int, request_id: int, size: int) -> None:
    """Raise TypeError/ValueError/OverflowError unless the fields fit a header."""
    for name, value, high in (
        ("version", version, 255),
        ("type", type, GOAWAY),
        ("flags", flags, 255),
        ("request_id", request_id, 2**32 - 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, not {type_name(value)}")
        if not 0 <= value <= high:
            raise OverflowError(f"{name} must be in [0, {high}], got {value}")
    if version == 0:
        raise ValueError("version 0 is not a protocol version")
    if type < HELLO:
        raise ValueError(f"unknown frame type {type}")
    if size > WIRE_MAX_BODY:
        raise OverflowError(f"a wire frame cannot carry {size} bytes (max {WIRE_MAX_BODY})")


_HEADER = struct.Struct(">BBBBII")


def frame_bytes(type: int, body: bytes, version: int, flags: int, request_id: int) -> bytes:
    """A frame from fields the caller already knows to be valid (the wire
    session's own replies): no per-field checks but the body's length
    (OverflowError above WIRE_MAX_BODY)."""
    if len(body) > WIRE_MAX_BODY:
        raise OverflowError(f"a wire frame cannot carry {len(body)} bytes (max {WIRE_MAX_BODY})")
    return _HEADER.pack(MAGIC, version, type, flags, request_id, len(body)) + body


def type_name(value: object) -> str:
    """The name of value's type, for error messages."""
    return type(value).__name__
