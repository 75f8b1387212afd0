"""The wire frame codec over csrc/wire.c (fastnet.codec.wire.py is the
reference). Each decoder owns one heap fn_wire_decoder (freed by ffi.gc);
input reaches C as a view, bodies come out as bytes copies."""
from __future__ import annotations

from typing import Any, Iterator

from ... import native
from ...errors import WireBadMagic, WireBadType, WireBadVersion, WireBodyTooLarge, WireFrameError
from ...limits import DEFAULT_WIRE_MAX_BODY
from .._common import byte_view, check_limit
from ._common import Frame, check_header_fields

__all__ = ["WireDecoder", "encode_wire_frame"]

lib = native.require()
ffi = native.ffi

_FRAME = lib.FN_WIRE_FRAME
_NEED_DATA = lib.FN_WIRE_NEED_DATA


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
    out = ffi.new("uint8_t[]", lib.FN_WIRE_HEADER_SIZE)
    n = lib.fn_wire_header(version, type, flags, request_id, len(view), out)
    if n < 0:  # check_header_fields already refused what C refuses
        raise AssertionError(f"fn_wire_header returned {n}")
    return ffi.buffer(out, n)[:] + view


class WireDecoder:
    """Incremental frame decoder refusing bodies longer than max_body.

    next_frame() raises WireBadMagic, WireBadVersion, WireBadType or
    WireBodyTooLarge (all WireFrameError, a ProtocolError), and the same
    error again on every later call until reset(); bytes fed after an error
    are discarded.
    """

    def __init__(self, max_body: int = DEFAULT_WIRE_MAX_BODY) -> None:
        self._max_body = check_limit(max_body, "max_body")
        decoder = lib.fn_wire_new(max_body)
        if decoder == ffi.NULL:
            raise MemoryError("fn_wire_new failed")
        self._d: Any = ffi.gc(decoder, lib.fn_wire_free)
        self._out = ffi.new("fn_wire_frame *")
        self._owner: object = None  # what holds _d when another object owns it (over())

    @classmethod
    def over(cls, decoder: Any, max_body: int, owner: object) -> "WireDecoder":
        """A WireDecoder over a fn_wire_decoder that owner holds (a C wire
        session's): owner is kept alive with it."""
        self = cls.__new__(cls)
        self._max_body = max_body
        self._d = decoder
        self._out = ffi.new("fn_wire_frame *")
        self._owner = owner
        return self

    @property
    def max_body(self) -> int:
        """The body length limit."""
        return self._max_body

    @property
    def buffered(self) -> int:
        """Bytes held and not yet returned in frames."""
        return lib.fn_wire_buffered(self._d)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data (discarded after an error)."""
        view = byte_view(data)
        if lib.fn_wire_feed(self._d, ffi.from_buffer(view), len(view)) != lib.FN_OK:
            raise MemoryError("fn_wire_feed: out of memory")

    def next_frame(self) -> Frame | None:
        """Return the next whole frame, or None until more data arrives."""
        rc = lib.fn_wire_next(self._d, self._out)
        if rc == _FRAME:
            o = self._out
            return Frame(o.version, o.type, o.flags, o.request_id, ffi.unpack(o.body, o.len))
        if rc == _NEED_DATA:
            return None
        raise self._error(rc)

    def reset(self) -> None:
        """Forget buffered bytes and any error."""
        lib.fn_wire_reset(self._d)

    def __iter__(self) -> Iterator[Frame]:
        """Yield whole frames until more data is needed."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def _error(self, rc: int) -> WireFrameError:
        value = int(lib.fn_wire_err_value(self._d))
        if rc == lib.FN_E_WIRE_MAGIC:
            return WireBadMagic(value)
        if rc == lib.FN_E_WIRE_VERSION:
            return WireBadVersion(value)
        if rc == lib.FN_E_WIRE_TYPE:
            return WireBadType(value)
        if rc == lib.FN_E_WIRE_TOO_LARGE:
            return WireBodyTooLarge(value, self._max_body)
        raise AssertionError(f"fn_wire_next returned unknown code {rc}")
