"""What every codec's twins share: argument checks written once, so the twins
of every protocol cannot drift apart in what they accept or in how they fail.

Each protocol package keeps its own shared pieces beside its twins
(varint/_common.py, framing/_common.py, resp/_common.py); this module holds
only what more than one protocol uses. Nothing here touches bytes on the hot
path; the twins do that themselves.
"""
from __future__ import annotations

UINT64_MAX = 2**64 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def byte_view(data: object) -> memoryview:
    """Return a flat unsigned-byte view of a bytes-like object.

    Raises TypeError for anything else (str, int, non-contiguous buffers).
    """
    view = memoryview(data)  # type: ignore[arg-type]
    if not view.c_contiguous:
        raise TypeError("data must be a contiguous bytes-like object")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise OverflowError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def check_uint64(value: object, name: str) -> int:
    """Return value if it is an int in [0, 2**64); else TypeError/OverflowError."""
    return _check_int(value, name, 0, UINT64_MAX)


def check_int64(value: object, name: str) -> int:
    """Return value if it is an int in [-2**63, 2**63); else TypeError/OverflowError."""
    return _check_int(value, name, INT64_MIN, INT64_MAX)


def check_limit(value: object, name: str, high: int = INT64_MAX) -> int:
    """Return value if it is an int in [0, high] (a size or count limit);
    else TypeError/OverflowError."""
    return _check_int(value, name, 0, high)


def check_offset(offset: object, size: int) -> int:
    """Return offset if it is an int in [0, size]; else TypeError/ValueError."""
    if not isinstance(offset, int):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    if not 0 <= offset <= size:
        raise ValueError(f"offset must be in [0, {size}], got {offset}")
    return offset
