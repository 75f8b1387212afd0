"""The only module that imports the C extension ``fastnet._native``.

``backend`` is ``"c"`` when the extension loaded and ``"python"`` otherwise.

* ``FASTNET_PURE=1`` forces the pure-Python twins (the extension is not
  even imported).
* ``FASTNET_REQUIRE_NATIVE=1`` turns a missing or broken extension into an
  :class:`~fastnet.errors.NativeUnavailable` (an ImportError), so a broken C
  build cannot hide behind the fallback. CI sets it.
"""
from __future__ import annotations

import os
from typing import Any

from .errors import NativeUnavailable

ffi: Any = None
lib: Any = None
backend: str = "python"
#: Why the C extension is not in use ("" when it is).
unavailable_reason: str = ""


def _env(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


if _env("FASTNET_PURE"):
    if _env("FASTNET_REQUIRE_NATIVE"):
        raise NativeUnavailable("FASTNET_PURE=1 and FASTNET_REQUIRE_NATIVE=1 contradict each other")
    unavailable_reason = "FASTNET_PURE=1"
else:
    try:
        from . import _native  # type: ignore[attr-defined]
    except ImportError as exc:
        if _env("FASTNET_REQUIRE_NATIVE"):
            raise NativeUnavailable(f"fastnet._native failed to import: {exc}") from exc
        unavailable_reason = f"fastnet._native failed to import: {exc}"
    else:
        ffi = _native.ffi
        lib = _native.lib
        backend = "c"


def require() -> Any:
    """Return ``lib``, or raise NativeUnavailable naming why it is missing."""
    if lib is None:
        raise NativeUnavailable(f"the C extension is not available ({unavailable_reason})")
    return lib
