"""Sans-IO codecs: bytes in -> messages out; message -> bytes.

Two twins with one API: ``fastnet.codec.c`` (cffi over csrc/) and
``fastnet.codec.py`` (pure Python, the readable reference). ``impls`` maps
backend names to the twins available, ``backend`` names the one
fastnet.native selected, ``active`` is that twin, and its public names are
re-exported here, and ``resp`` is the active twin's RESP module (the Redis
protocol: decoders, encoders, reply value types and ``resp.NEED_DATA``).
"""
from __future__ import annotations

from types import ModuleType

from .. import native
from ._common import Decoder
from . import py

impls: dict[str, ModuleType] = {"python": py}
if native.backend == "c":
    from . import c

    impls["c"] = c

backend: str = native.backend
active: ModuleType = impls[backend]

encode_uvarint = active.encode_uvarint
decode_uvarint = active.decode_uvarint
zigzag_encode = active.zigzag_encode
zigzag_decode = active.zigzag_decode
encode_svarint = active.encode_svarint
decode_svarint = active.decode_svarint
encode_frame = active.encode_frame
encode_line = active.encode_line
LengthPrefixDecoder = active.LengthPrefixDecoder
LineDecoder = active.LineDecoder
resp: ModuleType = active.resp
NEED_DATA = active.NEED_DATA
BigNumber = active.BigNumber
Push = active.Push
RespError = active.RespError
RespReplyDecoder = active.RespReplyDecoder
RespRequestDecoder = active.RespRequestDecoder
Verbatim = active.Verbatim
encode_array = active.encode_array
encode_attribute = active.encode_attribute
encode_big_number = active.encode_big_number
encode_boolean = active.encode_boolean
encode_bulk = active.encode_bulk
encode_command = active.encode_command
encode_double = active.encode_double
encode_error = active.encode_error
encode_integer = active.encode_integer
encode_map = active.encode_map
encode_null = active.encode_null
encode_push = active.encode_push
encode_reply = active.encode_reply
encode_set = active.encode_set
encode_simple = active.encode_simple
encode_verbatim = active.encode_verbatim

FRAMINGS = ("be32", "varint", "line")


def new_decoder(
    framing: str, max_size: int, bare_lf: bool = False, impl: ModuleType | str | None = None
) -> Decoder:
    """Return a decoder for framing "be32", "varint" or "line".

    max_size is the frame payload or line content limit; bare_lf (line only)
    lets a bare "\\n" end a line. impl picks a twin (a module from ``impls``
    or its name); the default is ``active``. Raw framing needs no decoder:
    any other framing name is a ValueError.
    """
    if impl is None:
        twin = active
    elif isinstance(impl, str):
        if impl not in impls:
            raise ValueError(f"codec backend {impl!r} is not available (have {sorted(impls)})")
        twin = impls[impl]
    else:
        twin = impl
    if framing == "line":
        return twin.LineDecoder(max_size, bare_lf)
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}: expected one of {FRAMINGS}")
    if bare_lf:
        raise ValueError("bare_lf applies to line framing only")
    return twin.LengthPrefixDecoder(max_size, framing)


__all__ = [
    "BigNumber",
    "Decoder",
    "FRAMINGS",
    "LengthPrefixDecoder",
    "LineDecoder",
    "NEED_DATA",
    "Push",
    "RespError",
    "RespReplyDecoder",
    "RespRequestDecoder",
    "Verbatim",
    "active",
    "backend",
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
    "impls",
    "new_decoder",
    "resp",
    "zigzag_decode",
    "zigzag_encode",
]
