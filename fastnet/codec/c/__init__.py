"""The C codec twin: thin cffi wrappers over csrc/varint.c and csrc/framer.c.

Importing it raises fastnet.errors.NativeUnavailable when the C extension is
not loaded. Same API, limits and errors as the pure-Python twin (fastnet.codec.py).
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
