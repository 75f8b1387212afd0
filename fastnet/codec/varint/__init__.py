"""LEB128 varints (up to 64 bits) and zigzag: the public API.

``from fastnet.codec.varint import encode_uvarint, decode_uvarint`` gives the
active twin: ``c`` (cffi over csrc/varint.c) unless fastnet.native fell back
to ``py`` (pure Python, the readable reference). ``impls`` maps backend names
to the twins available, ``backend`` names the one in use, ``active`` is it.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ... import native
from .. import _twins

impls: dict[str, ModuleType] = _twins.load(__name__)
backend: str = native.backend
active: ModuleType = impls[backend]

if TYPE_CHECKING:  # the twins share one API: type checkers read the reference's
    from .py import (
        decode_svarint,
        decode_uvarint,
        encode_svarint,
        encode_uvarint,
        zigzag_decode,
        zigzag_encode,
    )
else:
    encode_uvarint = active.encode_uvarint
    decode_uvarint = active.decode_uvarint
    zigzag_encode = active.zigzag_encode
    zigzag_decode = active.zigzag_decode
    encode_svarint = active.encode_svarint
    decode_svarint = active.decode_svarint

__all__ = [
    "active",
    "backend",
    "decode_svarint",
    "decode_uvarint",
    "encode_svarint",
    "encode_uvarint",
    "impls",
    "zigzag_decode",
    "zigzag_encode",
]
