"""The pure-Python codec twin: the readable reference for fastnet.codec.c.

Same API, same limits, same errors as the C twin; the differential tests feed
both the same bytes and demand the same messages and errors.
"""
from __future__ import annotations

from .framing import LengthPrefixDecoder, LineDecoder, encode_frame, encode_line
from . import resp
from .resp import *  # noqa: F403 (the RESP API: see resp.__all__)
from .varint import (
    decode_svarint,
    decode_uvarint,
    encode_svarint,
    encode_uvarint,
    zigzag_decode,
    zigzag_encode,
)

__all__ = [
    "LengthPrefixDecoder",
    "LineDecoder",
    "decode_svarint",
    "decode_uvarint",
    "encode_frame",
    "encode_line",
    "encode_svarint",
    "encode_uvarint",
    "resp",
    "zigzag_decode",
    "zigzag_encode",
] + resp.__all__
