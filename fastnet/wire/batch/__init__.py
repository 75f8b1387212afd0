"""A wire server's frames in batches: every plain REQUEST of a read decoded
in one call, and every RESPONSE of those requests framed in one call.

``RequestBatcher`` is the active twin's: ``c`` (csrc/wire.c's session:
one C call per read each way, the bodies crossing as one marshal stream,
as RESP's requests do) unless fastnet.native fell back to ``py``, the
reference. ``impls`` maps backend names to the twins available,
``backend`` names the one in use, ``active`` is it. It sits beside the
protocol rather than in fastnet.codec.wire because it reads and writes
fastnet.pack bodies, a layer above the codecs.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ... import native
from ...codec import _twins

impls: dict[str, ModuleType] = _twins.load(__name__)
backend: str = native.backend
active: ModuleType = impls[backend]

if TYPE_CHECKING:  # the twins share one API: type checkers read the reference's
    from .py import RequestBatcher
else:
    RequestBatcher = active.RequestBatcher

__all__ = ["RequestBatcher", "active", "backend", "impls"]
