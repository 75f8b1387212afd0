"""What both framing twins share: the decoder interface, the header names and
their checks, and the error a malformed varint header raises."""
from __future__ import annotations

from typing import Iterator, Protocol

from ...errors import BadFrameHeader, VarintError
from ..varint._common import varint_error

#: Largest payload a 4-byte big-endian header can declare.
BE32_MAX = 2**32 - 1
#: Length-prefix header names accepted by encode_frame and LengthPrefixDecoder.
#: The ValueError's text for a line payload holding a line break (every
#: engine's send() on a line connection raises it too).
LINE_BREAK = "a line cannot contain b'\\r' or b'\\n'"

HEADERS = ("be32", "varint")


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


def check_header(header: object) -> str:
    """Return header if it names a length-prefix header; else ValueError."""
    if header not in HEADERS:
        raise ValueError(f"header must be 'be32' or 'varint', got {header!r}")
    return header  # type: ignore[return-value]


def check_be32_payload(size: int) -> None:
    """Raise OverflowError if a payload of size bytes cannot get a BE32 header."""
    if size > BE32_MAX:
        raise OverflowError(f"a be32 header cannot declare {size} bytes (max {BE32_MAX})")


def bad_frame_header(cls: type[VarintError]) -> BadFrameHeader:
    """A new BadFrameHeader whose cause is a VarintError of class cls."""
    return BadFrameHeader(varint_error(cls))
