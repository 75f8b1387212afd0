"""HTTP/2 frames (RFC 9113 sections 4 and 6): the public API.

The pure-Python twin ``py`` is the reference (its docstring states the
rules); the C twin over csrc/h2frame.c is not written yet, so ``impls`` holds
only "python" for now and ``backend`` says which one is in use.
"""
from __future__ import annotations

from types import ModuleType

from . import py
from ._common import Flag, Frame, FrameType, Setting

impls: dict[str, ModuleType] = {"python": py}
backend: str = "python"
active: ModuleType = py

FrameDecoder = py.FrameDecoder
encode = py.encode

__all__ = ["Flag", "Frame", "FrameDecoder", "FrameType", "Setting", "active", "backend", "encode", "impls"]
