"""Sans-IO codecs: bytes in -> messages out; message -> bytes.

One package per protocol, each with its public API in ``__init__`` and its
two twins inside, ``c.py`` (cffi over csrc/) and ``py.py`` (pure Python, the
readable reference): ``fastnet.codec.varint`` (LEB128 and zigzag),
``fastnet.codec.framing`` (length-prefixed frames and lines),
``fastnet.codec.resp`` (the Redis protocol), ``fastnet.codec.http1``
(HTTP/1.1 heads and chunked bodies) and ``fastnet.codec.wire`` (the
fastnet wire protocol's frames). Each package exposes ``impls``
(backend name -> its twins available), ``backend`` and ``active``, and
re-exports the active twin's names.

This module re-exports every package's public names. ``backend`` names the
backend fastnet.native selected (the same for every codec); ``impls`` maps
each backend name to one namespace holding that backend's twin of every
codec (``impls["python"].RespRequestDecoder`` is the pure-Python one,
``impls["python"].resp`` the module ``fastnet.codec.resp.py``), and
``active`` is the namespace in use. Tests run on both through it.
"""
from __future__ import annotations

from types import ModuleType

from .. import native
from . import _twins, framing, http1, resp, varint, wire
from .framing import (
    FRAMINGS,
    Decoder,
    LengthPrefixDecoder,
    LineDecoder,
    encode_frame,
    encode_line,
    new_decoder,
)
from .http1 import ChunkedDecoder, RequestHeadParser, ResponseHeadParser
from .resp import (
    BigNumber,
    NEED_DATA,
    Push,
    RespError,
    RespReplyDecoder,
    RespRequestDecoder,
    SimpleString,
    Verbatim,
    encode_array,
    encode_bulk_array,
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
from .wire import WireDecoder, encode_wire_frame
from .varint import (
    decode_svarint,
    decode_uvarint,
    encode_svarint,
    encode_uvarint,
    zigzag_decode,
    zigzag_encode,
)

backend: str = native.backend
impls: dict[str, ModuleType] = {
    name: _twins.combine(name, [varint, framing, resp, http1, wire]) for name in varint.impls
}
active: ModuleType = impls[backend]

__all__ = [
    "BigNumber",
    "ChunkedDecoder",
    "Decoder",
    "FRAMINGS",
    "LengthPrefixDecoder",
    "LineDecoder",
    "NEED_DATA",
    "Push",
    "RequestHeadParser",
    "RespError",
    "RespReplyDecoder",
    "RespRequestDecoder",
    "ResponseHeadParser",
    "SimpleString",
    "Verbatim",
    "WireDecoder",
    "active",
    "backend",
    "decode_svarint",
    "decode_uvarint",
    "encode_array",
    "encode_bulk_array",
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
    "encode_wire_frame",
    "framing",
    "http1",
    "impls",
    "new_decoder",
    "resp",
    "varint",
    "wire",
    "zigzag_decode",
    "zigzag_encode",
]
