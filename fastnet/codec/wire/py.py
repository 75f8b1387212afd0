"""The wire frame codec in pure Python: the readable reference twin.

A frame is a 12-byte header (magic 0xFB, protocol_version, type, flags,
request id and body length as 32-bit big-endian) and the body. The decoder
is incremental and sans-IO: feed() bytes, next_frame() returns a Frame or
None. Each header byte is judged as soon as it arrives (magic, version,
type), the body length as soon as the header is complete, before any body
byte. Errors are sticky until reset().
"""
from __future__ import annotations

from typing import Iterator, NoReturn

from ...errors import WireBadMagic, WireBadType, WireBadVersion, WireBodyTooLarge, WireFrameError
from ...limits import DEFAULT_WIRE_MAX_BODY
from .._common import byte_view, check_limit
from ._common import GOAWAY, HEADER_SIZE, HELLO, MAGIC, Frame, check_header_fields

__all__ = ["WireDecoder", "encode_wire_frame"]


def encode_wire_frame(
    type: int,
    body: bytes | bytearray | memoryview = b"",
    *,
    version: int = 1,
    flags: int = 0,
    request_id: int = 0,
) -> bytes:
    """Return one frame: the header for body, then body."""
    view = byte_view(body)
    check_header_fields(version, type, flags, request_id, len(view))
    header = bytes((MAGIC, version, type, flags)) + request_id.to_bytes(4, "big")
    return header + len(view).to_bytes(4, "big") + view


class WireDecoder:
    """Incremental frame decoder refusing bodies longer than max_body.

    next_frame() raises WireBadMagic, WireBadVersion, WireBadType or
    WireBodyTooLarge (all WireFrameError, a ProtocolError), and the same
    error again on every later call until reset(); bytes fed after an error
    are discarded.
    """

    def __init__(self, max_body: int = DEFAULT_WIRE_MAX_BODY) -> None:
        self._max_body = check_limit(max_body, "max_body")
        self._buf = bytearray()
        self._pos = 0  # start of the first unreturned byte in _buf
        self._error: WireFrameError | None = None

    @property
    def max_body(self) -> int:
        """The body length limit."""
        return self._max_body

    @property
    def buffered(self) -> int:
        """Bytes held and not yet returned in frames."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data (discarded after an error)."""
        view = byte_view(data)
        if self._error is None:
            if self._pos:  # drop returned frames before growing
                del self._buf[: self._pos]
                self._pos = 0
            self._buf += view

    def next_frame(self) -> Frame | None:
        """Return the next whole frame, or None until more data arrives."""
        if self._error is not None:
            raise self._error
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail == 0:
            return None
        if buf[pos] != MAGIC:
            self._fail(WireBadMagic(buf[pos]))
        if avail >= 2 and buf[pos + 1] == 0:
            self._fail(WireBadVersion(0))
        if avail >= 3 and not HELLO <= buf[pos + 2] <= GOAWAY:
            self._fail(WireBadType(buf[pos + 2]))
        if avail < HEADER_SIZE:
            return None
        size = int.from_bytes(buf[pos + 8 : pos + 12], "big")
        if size > self._max_body:
            self._fail(WireBodyTooLarge(size, self._max_body))
        if avail < HEADER_SIZE + size:
            return None
        start = pos + HEADER_SIZE
        self._pos = start + size
        return Frame(
            buf[pos + 1],
            buf[pos + 2],
            buf[pos + 3],
            int.from_bytes(buf[pos + 4 : pos + 8], "big"),
            bytes(buf[start : start + size]),
        )

    def reset(self) -> None:
        """Forget buffered bytes and any error."""
        self._buf.clear()
        self._pos = 0
        self._error = None

    def __iter__(self) -> Iterator[Frame]:
        """Yield whole frames until more data is needed."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def _fail(self, error: WireFrameError) -> NoReturn:
        self._error = error
        raise error
