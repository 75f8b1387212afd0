"""Sans-IO codecs: bytes in -> messages out; message -> bytes.

Two twins with one API: ``fastnet.codec.c`` (cffi over csrc/) and
``fastnet.codec.py`` (pure Python, the readable reference). ``impls`` maps
backend names to the twins available, ``backend`` names the one
fastnet.native selected, ``active`` is that twin, and its public names are
re-exported here.
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
    "FRAMINGS",
    "Decoder",
    "LengthPrefixDecoder",
    "LineDecoder",
    "active",
    "backend",
    "decode_svarint",
    "decode_uvarint",
    "encode_frame",
    "encode_line",
    "encode_svarint",
    "encode_uvarint",
    "impls",
    "new_decoder",
    "zigzag_decode",
    "zigzag_encode",
]
