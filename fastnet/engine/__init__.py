"""fastnet's I/O engines, all behind one interface (:mod:`.base`).

* ``"c"``: :class:`~fastnet.engine.cengine.CEngine`, epoll in C (csrc/loop.c);
  needs the C extension, imported only when asked for.
* ``"python"``: :class:`~fastnet.engine.pyengine.PyEngine`, its pure-Python
  twin (select.epoll).
* ``"threaded"``: :class:`~fastnet.engine.threaded.ThreadedEngine`, blocking
  sockets and a thread per connection.

>>> engine = engine_class("python")(handler)
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from .. import native
from ..errors import NativeUnavailable
from .base import CloseReason, ConnSpec, Engine, EngineHandler, Listener
from .pyengine import PyEngine
from .threaded import ThreadedEngine

ENGINE_NAMES = ("c", "python", "threaded")


def engine_class(name: str) -> type[Engine]:
    """The engine class called ``name`` (one of ENGINE_NAMES).

    Raises NativeUnavailable for "c" when the C extension is not in use, and
    ValueError for an unknown name.
    """
    if name == "python":
        return PyEngine
    if name == "threaded":
        return ThreadedEngine
    if name == "c":
        if native.backend != "c":
            raise NativeUnavailable(
                f"the c engine needs the C extension ({native.unavailable_reason})")
        from .cengine import CEngine
        return CEngine
    raise ValueError(f"unknown engine {name!r}; choose from {ENGINE_NAMES}")


class _Engines(Mapping[str, type[Engine]]):
    """name -> engine class; "c" is imported on first access."""

    def __getitem__(self, name: str) -> type[Engine]:
        if name not in ENGINE_NAMES:
            raise KeyError(name)
        return engine_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(ENGINE_NAMES)

    def __len__(self) -> int:
        return len(ENGINE_NAMES)


#: Every engine by name; ``ENGINES["c"]`` raises NativeUnavailable without
#: the C extension.
ENGINES: Mapping[str, type[Engine]] = _Engines()

__all__ = ["ENGINES", "ENGINE_NAMES", "CloseReason", "ConnSpec", "Engine",
           "EngineHandler", "Listener", "PyEngine", "ThreadedEngine", "engine_class"]
