"""What both codec twins share: argument checks, error construction and the
decoder interface, written once so the twins cannot drift apart in what they
accept or in how they fail.

Nothing here touches bytes on the hot path; the twins do that themselves.
"""
from __future__ import annotations

from typing import Iterator, Protocol

from ..errors import (
    BadFrameHeader,
    VarintError,
    VarintOverflow,
    VarintOverlong,
    VarintTruncated,
)

UINT64_MAX = 2**64 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Largest payload a 4-byte big-endian header can declare.
BE32_MAX = 2**32 - 1
#: Length-prefix header names accepted by encode_frame and LengthPrefixDecoder.
HEADERS = ("be32", "varint")

_VARINT_MESSAGES: dict[type[VarintError], str] = {
    VarintTruncated: "input ends inside a varint",
    VarintOverlong: "overlong varint: the value has a shorter encoding",
    VarintOverflow: "varint value does not fit in 64 bits",
}


class Decoder(Protocol):
    """The interface of LengthPrefixDecoder and LineDecoder in both twins."""

    @property
    def max_size(self) -> int:
        """The limit this decoder enforces (frame payload or line content)."""

    @property
    def buffered(self) -> int:
        """Bytes held and not yet returned as messages."""

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data (discarded after a protocol error)."""

    def next_message(self) -> bytes | None:
        """Return the next whole message, or None until more data arrives."""

    def reset(self) -> None:
        """Forget buffered bytes and any error."""

    def __iter__(self) -> Iterator[bytes]:
        """Yield whole messages until more data is needed."""


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


def check_header(header: object) -> str:
    """Return header if it names a length-prefix header; else ValueError."""
    if header not in HEADERS:
        raise ValueError(f"header must be 'be32' or 'varint', got {header!r}")
    return header  # type: ignore[return-value]


def check_be32_payload(size: int) -> None:
    """Raise OverflowError if a payload of size bytes cannot get a BE32 header."""
    if size > BE32_MAX:
        raise OverflowError(f"a be32 header cannot declare {size} bytes (max {BE32_MAX})")


def varint_error(cls: type[VarintError]) -> VarintError:
    """A new VarintError of class cls, with the message both twins use."""
    return cls(_VARINT_MESSAGES[cls])


def bad_frame_header(cls: type[VarintError]) -> BadFrameHeader:
    """A new BadFrameHeader whose cause is a VarintError of class cls."""
    return BadFrameHeader(varint_error(cls))
