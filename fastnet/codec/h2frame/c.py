"""HTTP/2 frames over csrc/h2frame.c (see fastnet.codec.h2frame.py for the rules).

C parses every complete frame of a read in one call into an array of frame
descriptions; Python builds the Frame objects from it. Encoding is the
Python twin's (serialization is a few byte joins).
"""
from __future__ import annotations

from ... import native
from ...errors import H2FrameError
from ...limits import H2_DEFAULT_MAX_FRAME_SIZE
from .._common import byte_view
from ._common import STREAM_RULES, Flag, check_max_frame_size, Frame, FrameType, Setting, frame_error
from .py import encode

__all__ = ["Flag", "Frame", "FrameDecoder", "FrameType", "Setting", "encode"]

lib = native.require()
ffi = native.ffi

#: fn_h2_parse's error codes -> the rule each one names (_common.RULES).
H2_RULES: dict[int, str] = {
    lib.FN_E_H2_TOO_LARGE: "too_large",
    lib.FN_E_H2_EXPECTED_CONTINUATION: "expected_continuation",
    lib.FN_E_H2_UNEXPECTED_CONTINUATION: "unexpected_continuation",
    lib.FN_E_H2_STREAM_ZERO: "stream_zero",
    lib.FN_E_H2_STREAM_NONZERO: "stream_nonzero",
    lib.FN_E_H2_PAD_MISSING: "pad_missing",
    lib.FN_E_H2_PAD_TOO_LONG: "pad_too_long",
    lib.FN_E_H2_TOO_SHORT: "too_short",
    lib.FN_E_H2_BAD_LENGTH: "bad_length",
    lib.FN_E_H2_SETTINGS_ACK_PAYLOAD: "settings_ack_payload",
    lib.FN_E_H2_SETTINGS_LENGTH: "settings_length",
    lib.FN_E_H2_ENABLE_PUSH: "enable_push",
    lib.FN_E_H2_INITIAL_WINDOW: "initial_window",
    lib.FN_E_H2_MAX_FRAME_SIZE: "max_frame_size",
    lib.FN_E_H2_WINDOW_ZERO: "window_zero",
}
#: fn_h2_frame.error -> the stream error's code.
STREAM_ERRORS = {
    lib.FN_H2_STREAM_PRIORITY_LENGTH: STREAM_RULES["priority_length"],
    lib.FN_H2_STREAM_SELF_DEPENDENCY: STREAM_RULES["self_dependency"],
    lib.FN_H2_STREAM_WINDOW_ZERO: STREAM_RULES["window_zero_stream"],
}
_BATCH = 64  # frames described per C call


class FrameDecoder:
    """Decodes the frames of one connection direction.

    max_frame_size is our SETTINGS_MAX_FRAME_SIZE (set it when the peer has
    acknowledged a new value). The buffer never holds more than one frame's
    header and payload plus what one receive() call passed.
    """

    def __init__(self, max_frame_size: int = H2_DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        parser = lib.fn_h2_parser_new()
        if parser == ffi.NULL:
            raise MemoryError("fn_h2_parser_new")
        self._p = ffi.gc(parser, lib.fn_h2_parser_free)
        self._out = ffi.new("fn_h2_frame[]", _BATCH)
        self._error: H2FrameError | None = None

    @property
    def max_frame_size(self) -> int:
        """The largest frame payload accepted."""
        return self._max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, size: int) -> None:
        self._max_frame_size = check_max_frame_size(size)

    def receive(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Buffer data; return every frame now complete, in order."""
        if self._error is not None:
            raise self._error
        view = data if type(data) is bytes else byte_view(data)
        frames: list[Frame] = []
        chunk = ffi.from_buffer("uint8_t[]", view)
        size = len(view)
        while True:
            n = lib.fn_h2_parse(self._p, chunk, size, self._max_frame_size, self._out, _BATCH)
            chunk, size = ffi.NULL, 0
            if n == lib.FN_E_NOMEM:
                raise MemoryError("fn_h2_parse")
            count = n if n >= 0 else lib.fn_h2_parser_parsed(self._p)
            if count:
                self._build(count, frames)
            if n < 0:
                error = frame_error(H2_RULES[n])
                error.frames = list(frames)
                self._error = error
                raise error
            if n < _BATCH:
                return frames

    def _build(self, count: int, frames: list[Frame]) -> None:
        base = lib.fn_h2_parser_buffer(self._p)
        for i in range(count):
            f = self._out[i]
            frame = Frame(f.type, f.stream_id, f.flags, ffi.buffer(base + f.data_off, f.data_len)[:])
            kind = f.type
            if kind == FrameType.HEADERS or kind == FrameType.PRIORITY:
                frame.depends_on, frame.weight, frame.exclusive = f.depends_on, f.weight, bool(f.exclusive)
            if kind <= FrameType.PUSH_PROMISE:
                frame.pad_length = f.pad_length
                frame.promised_stream_id = f.promised_stream_id
            frame.error_code, frame.last_stream_id, frame.increment = f.error_code, f.last_stream_id, f.increment
            if f.settings_count:
                raw = ffi.buffer(base + f.settings_off, 6 * f.settings_count)[:]
                frame.settings = tuple(
                    (int.from_bytes(raw[at:at + 2], "big"), int.from_bytes(raw[at + 2:at + 6], "big"))
                    for at in range(0, len(raw), 6)
                )
            if f.error:
                frame.error = STREAM_ERRORS[f.error]
            frames.append(frame)
