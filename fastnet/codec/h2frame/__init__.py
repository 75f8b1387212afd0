"""HTTP/2 frames (RFC 9113 sections 4 and 6): the public API.

``from fastnet.codec.h2frame import FrameDecoder, encode`` gives the active
twin: ``c`` (cffi over csrc/h2frame.c: the decoder; encoding is shared)
unless fastnet.native fell back to ``py`` (pure Python, the readable
reference, whose docstring states the rules). ``impls`` maps backend names
to the twins available, ``backend`` names the one in use, ``active`` is it.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ... import native
from .. import _twins
from ._common import Flag, Frame, FrameType, Setting

impls: dict[str, ModuleType] = _twins.load(__name__)
backend: str = native.backend
active: ModuleType = impls[backend]

if TYPE_CHECKING:  # the twins share one API: type checkers read the reference's
    from .py import FrameDecoder, encode
else:
    FrameDecoder = active.FrameDecoder
    encode = active.encode

__all__ = ["Flag", "Frame", "FrameDecoder", "FrameType", "Setting", "active", "backend", "encode", "impls"]
