"""HTTP/2's per-read batch: every complete frame of a read as one list of
event tuples, field blocks reassembled, HPACK-decoded and checked (the
public API).

``from fastnet.codec.h2sess import Reader`` gives the active twin: ``c``
(cffi over csrc/h2sess.c, which runs csrc/h2frame.c and csrc/hpack.c in
the same call) unless fastnet.native fell back to ``py`` (pure Python over
the Python twins of h2frame and hpack; its docstring states the tuples and
the rules). ``impls`` maps backend names to the twins available,
``backend`` names the one in use, ``active`` is it.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ... import native
from .. import _twins
from ._common import (DATA, ERROR, GOAWAY, HEADERS, NOT_A_REQUEST, PING, PRIORITY, PUSH_PROMISE,
                      RST_STREAM, SETTINGS, UNKNOWN, WINDOW_UPDATE, error_of)

impls: dict[str, ModuleType] = _twins.load(__name__)
backend: str = native.backend
active: ModuleType = impls[backend]

if TYPE_CHECKING:  # the twins share one API: type checkers read the reference's
    from .py import Reader
else:
    Reader = active.Reader

__all__ = ["DATA", "ERROR", "GOAWAY", "HEADERS", "NOT_A_REQUEST", "PING", "PRIORITY",
           "PUSH_PROMISE", "RST_STREAM", "Reader", "SETTINGS", "UNKNOWN", "WINDOW_UPDATE",
           "active", "backend", "error_of", "impls"]
