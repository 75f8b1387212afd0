"""The C codec twin: thin cffi wrappers over csrc/varint.c and csrc/framer.c.

Importing it raises fastnet.errors.NativeUnavailable when the C extension is
not loaded. Same API, limits and errors as the pure-Python twin (fastnet.codec.py).
"""
from __future__ import annotations

from .framing import LengthPrefixDecoder, LineDecoder, encode_frame, encode_line
from . import resp
from .resp import (
    NEED_DATA,
    BigNumber,
    Push,
    RespError,
    RespReplyDecoder,
    RespRequestDecoder,
    Verbatim,
    encode_array,
    encode_attribute,
    encode_big_number,
    encode_boolean,
    encode_bulk,
    encode_command,
    encode_double,
    encode_error,
    encode_integer,
    encode_map,
    encode_null,
    encode_push,
    encode_reply,
    encode_set,
    encode_simple,
    encode_verbatim,
)
from .varint import (
    decode_svarint,
    decode_uvarint,
    encode_svarint,
    encode_uvarint,
    zigzag_decode,
    zigzag_encode,
)

__all__ = [
    "BigNumber",
    "LengthPrefixDecoder",
    "LineDecoder",
    "NEED_DATA",
    "Push",
    "RespError",
    "RespReplyDecoder",
    "RespRequestDecoder",
    "Verbatim",
    "decode_svarint",
    "decode_uvarint",
    "encode_array",
    "encode_attribute",
    "encode_big_number",
    "encode_boolean",
    "encode_bulk",
    "encode_command",
    "encode_double",
    "encode_error",
    "encode_frame",
    "encode_integer",
    "encode_line",
    "encode_map",
    "encode_null",
    "encode_push",
    "encode_reply",
    "encode_set",
    "encode_simple",
    "encode_svarint",
    "encode_uvarint",
    "encode_verbatim",
    "resp",
    "zigzag_decode",
    "zigzag_encode",
]
