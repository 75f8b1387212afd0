"""The Protocol Buffers wire codec: C hot path (csrc/proto.c) and Python twin.

A schema is compiled once (``compile_schema``) into flat tables; ``codec()``
returns a twin's Codec over it, whose ``encode(index, flat)`` and
``decode(index, data)`` turn a message's flat form (see ``_table``) into wire
bytes and back. ``impls`` maps backend names to the twins available,
``backend`` names the one fastnet.native selected; the message classes
(fastnet.proto.message) use the active one unless told otherwise.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

from ... import native
from . import py
from ._table import Schema, compile_schema

impls: dict[str, ModuleType] = {"python": py}
if native.backend == "c":
    from . import c

    impls["c"] = c

backend: str = native.backend
active: ModuleType = impls[backend]
Codec = active.Codec


def codec(schema: Schema, impl: ModuleType | str | None = None) -> Any:
    """A Codec of twin ``impl`` (a module from ``impls`` or its name; default
    the active twin) over ``schema``."""
    if impl is None:
        twin = active
    elif isinstance(impl, str):
        if impl not in impls:
            raise ValueError(f"proto wire backend {impl!r} is not available (have {sorted(impls)})")
        twin = impls[impl]
    else:
        twin = impl
    return twin.Codec(schema)


__all__ = ["Codec", "Schema", "active", "backend", "codec", "compile_schema", "impls"]
