"""Length-prefixed frames (4-byte big-endian or varint header) and lines:
the public API.

``from fastnet.codec.framing import LengthPrefixDecoder, encode_frame`` gives
the active twin: ``c`` (cffi over csrc/framer.c) unless fastnet.native fell
back to ``py`` (pure Python, the readable reference). ``impls`` maps backend
names to the twins available, ``backend`` names the one in use, ``active`` is
it. ``new_decoder`` builds a decoder by framing name, as the engines do.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ... import native
from .. import _twins
from ._common import Decoder

impls: dict[str, ModuleType] = _twins.load(__name__)
backend: str = native.backend
active: ModuleType = impls[backend]

if TYPE_CHECKING:  # the twins share one API: type checkers read the reference's
    from .py import LengthPrefixDecoder, LineDecoder, encode_frame, encode_line
else:
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
    "Decoder",
    "FRAMINGS",
    "LengthPrefixDecoder",
    "LineDecoder",
    "active",
    "backend",
    "encode_frame",
    "encode_line",
    "impls",
    "new_decoder",
]
