"""The fastnet wire protocol's frame codec: the public API.

``from fastnet.codec.wire import WireDecoder, encode_wire_frame`` gives the
active twin: ``c`` (cffi over csrc/wire.c) unless fastnet.native fell back
to ``py`` (pure Python, the reference). ``impls`` maps backend names to the
twins available, ``backend`` names the one in use, ``active`` is it. The
layout is in the README ("The wire protocol") and csrc/wire.h.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ... import native
from .. import _twins
from ._common import (
    ERROR,
    FLAG_CODEC_MASK,
    FLAG_METADATA,
    FRAME_TYPES,
    GOAWAY,
    HEADER_SIZE,
    HELLO,
    MAGIC,
    PING,
    PONG,
    REQUEST,
    RESPONSE,
    Frame,
)

impls: dict[str, ModuleType] = _twins.load(__name__)
backend: str = native.backend
active: ModuleType = impls[backend]

if TYPE_CHECKING:  # the twins share one API: type checkers read the reference's
    from .py import WireDecoder, encode_wire_frame
else:
    WireDecoder = active.WireDecoder
    encode_wire_frame = active.encode_wire_frame

__all__ = [
    "ERROR",
    "FLAG_CODEC_MASK",
    "FLAG_METADATA",
    "FRAME_TYPES",
    "Frame",
    "GOAWAY",
    "HEADER_SIZE",
    "HELLO",
    "MAGIC",
    "PING",
    "PONG",
    "REQUEST",
    "RESPONSE",
    "WireDecoder",
    "active",
    "backend",
    "encode_wire_frame",
    "impls",
]
