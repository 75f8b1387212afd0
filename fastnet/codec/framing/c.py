"""Framing over csrc/framer.c (see fastnet.codec.framing.py for the reference).

Each decoder owns one heap fn_framer (freed by ffi.gc). Input is passed to C
as a view (ffi.from_buffer), never copied into an ffi.new array; arguments
are range-checked here, before C sees them. Messages are copied out as bytes,
so they stay valid after the next feed.
"""
from __future__ import annotations

from typing import Any, Iterator

from ... import native
from ...errors import FrameTooLarge, LineTooLong, ProtocolError
from ...limits import DEFAULT_MAX_FRAME, DEFAULT_MAX_LINE
from .._common import byte_view, check_uint64
from ._common import bad_frame_header, check_be32_payload, check_header
# Appending b"\r\n" has no C hot path: both twins share the Python encode_line.
from .py import encode_line
from ..varint.c import VARINT_ERRORS

__all__ = ["LengthPrefixDecoder", "LineDecoder", "encode_frame", "encode_line"]

lib = native.require()
ffi = native.ffi

_KINDS = {"be32": lib.FN_FRAME_BE32, "varint": lib.FN_FRAME_VARINT}
_MESSAGE = lib.FN_MESSAGE
_NEED_DATA = lib.FN_NEED_DATA


def encode_frame(payload: bytes | bytearray | memoryview, header: str = "be32") -> bytes:
    """Return payload behind its length header ("be32" or "varint").

    OverflowError if a be32 header cannot declare the payload's length.
    """
    view = byte_view(payload)
    kind = _KINDS[check_header(header)]
    if kind == lib.FN_FRAME_BE32:
        check_be32_payload(len(view))
    out = ffi.new("uint8_t[]", lib.FN_VARINT_MAX_BYTES)
    n = lib.fn_frame_header(kind, len(view), out)
    return ffi.buffer(out, n)[:] + view


class _Decoder:
    """One owned fn_framer and the calls every decoder makes on it."""

    def __init__(self, kind: int, max_size: int, name: str, flags: int = 0) -> None:
        self._max_size = check_uint64(max_size, name)
        framer = lib.fn_framer_new(kind, max_size, flags)
        if framer == ffi.NULL:
            raise MemoryError("fn_framer_new failed")
        self._f: Any = ffi.gc(framer, lib.fn_framer_free)
        self._msg = ffi.new("const char **")
        self._len = ffi.new("size_t *")

    @property
    def max_size(self) -> int:
        """The limit this decoder enforces."""
        return self._max_size

    @property
    def buffered(self) -> int:
        """Bytes held and not yet returned as messages."""
        return lib.fn_framer_buffered(self._f)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data; discarded after a protocol error."""
        view = byte_view(data)
        if lib.fn_framer_feed(self._f, ffi.from_buffer(view), len(view)) != 0:
            raise MemoryError("fn_framer_feed: out of memory")

    def next_message(self) -> bytes | None:
        """Return the next whole message, or None until more data arrives."""
        rc = lib.fn_framer_next(self._f, self._msg, self._len)
        if rc == _MESSAGE:
            return ffi.unpack(self._msg[0], self._len[0])
        if rc == _NEED_DATA:
            return None
        raise self._error(rc)

    def reset(self) -> None:
        """Forget buffered bytes and any error."""
        lib.fn_framer_reset(self._f)

    def __iter__(self) -> Iterator[bytes]:
        """Yield whole messages until more data is needed."""
        while (message := self.next_message()) is not None:
            yield message

    def _error(self, rc: int) -> ProtocolError:
        """The exception for fn_framer_next's (sticky) error code rc."""
        value = lib.fn_framer_error_value(self._f)
        if rc == lib.FN_E_FRAMER_TOO_LARGE:
            return FrameTooLarge(value, self._max_size)
        if rc == lib.FN_E_FRAMER_LINE_TOO_LONG:
            return LineTooLong(value, self._max_size)
        if rc == lib.FN_E_FRAMER_BAD_HEADER:
            # err_value holds the negative FN_VARINT_* code as a uint64.
            return bad_frame_header(VARINT_ERRORS[int(ffi.cast("int64_t", value))])
        raise AssertionError(f"fn_framer_next returned unknown code {rc}")


class LengthPrefixDecoder(_Decoder):
    """Frames with a 4-byte big-endian ("be32") or LEB128 ("varint") length.

    next_message() raises FrameTooLarge(size, max_frame_size) as soon as a
    header declaring more than max_frame_size bytes is complete, and
    BadFrameHeader(cause) for a malformed varint header. A zero-length frame
    is a valid empty message.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME, header: str = "be32") -> None:
        super().__init__(_KINDS[check_header(header)], max_frame_size, "max_frame_size")


class LineDecoder(_Decoder):
    """Lines ending in "\\r\\n" (and in a bare "\\n" too with bare_lf=True).

    Messages are lines without their delimiter; with bare_lf a "\\r" right
    before the "\\n" is stripped. In strict mode a lone "\\r" or "\\n" is
    content. next_message() raises LineTooLong(size, max_line_length) when a
    line's content exceeds the limit, or when more content than that is
    buffered without a delimiter (a final "\\r" that may start "\\r\\n" is not
    counted).
    """

    def __init__(self, max_line_length: int = DEFAULT_MAX_LINE, bare_lf: bool = False) -> None:
        flags = lib.FN_LINE_BARE_LF if bare_lf else 0
        super().__init__(lib.FN_FRAME_LINE, max_line_length, "max_line_length", flags)
