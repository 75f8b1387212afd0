"""HPACK, HTTP/2's header compression (RFC 7541): the public API.

``from fastnet.codec.hpack import Decoder, Encoder`` gives the active twin:
``c`` (cffi over csrc/hpack.c) unless fastnet.native fell back to ``py``
(pure Python, the readable reference, whose docstring states the rules).
``impls`` maps backend names to the twins available, ``backend`` names the
one in use, ``active`` is it.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ... import native
from .. import _twins
from ._common import NeverIndexed

impls: dict[str, ModuleType] = _twins.load(__name__)
backend: str = native.backend
active: ModuleType = impls[backend]

if TYPE_CHECKING:  # the twins share one API: type checkers read the reference's
    from .py import Decoder, Encoder, huffman_decode, huffman_encode
else:
    Decoder = active.Decoder
    Encoder = active.Encoder
    huffman_decode = active.huffman_decode
    huffman_encode = active.huffman_encode

__all__ = [
    "Decoder",
    "Encoder",
    "NeverIndexed",
    "active",
    "backend",
    "huffman_decode",
    "huffman_encode",
    "impls",
]
