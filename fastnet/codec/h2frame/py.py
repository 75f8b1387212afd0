"""HTTP/2 frames (RFC 9113 sections 4 and 6) in pure Python.

:class:`FrameDecoder` buffers a byte stream and returns every complete
frame in it as a :class:`Frame`, checking each frame-level rule of sections
4 and 6 in a fixed order: a declared length over max_frame_size as soon as
the 9-byte header is in (nothing of that frame is buffered), a frame other
than CONTINUATION on the same stream while a field block is open, then per
type the stream id (0 or not), the length, padding, and the values
(SETTINGS parameters, WINDOW_UPDATE's increment). A connection error raises
H2FrameError (its ``frames`` are those decoded before it) and is sticky; a
stream error (PRIORITY of the wrong length, a stream depending on itself, a
zero WINDOW_UPDATE on a stream) is returned on its frame as Frame.error.
Unknown frame types are returned as they came, to be ignored (5.5); the
reserved bit of every stream id is ignored (4.1).

:func:`encode` writes any Frame (padding included) and checks what the
caller gives it (TypeError/ValueError: the local side's mistake).
"""
from __future__ import annotations

from ...errors import H2FrameError
from ...limits import H2_DEFAULT_MAX_FRAME_SIZE, H2_MAX_MAX_FRAME_SIZE, H2_MAX_STREAM_ID, H2_MAX_WINDOW_SIZE
from .._common import byte_view, check_limit
from ._common import HEADER_SIZE, STREAM_RULES, Flag, check_max_frame_size, Frame, FrameType, Setting, frame_error

__all__ = ["Flag", "Frame", "FrameDecoder", "FrameType", "Setting", "encode"]

_MASK31 = 0x7FFFFFFF
_STREAM_ZERO_OK = {FrameType.SETTINGS, FrameType.PING, FrameType.GOAWAY, FrameType.WINDOW_UPDATE}
_NEEDS_STREAM = {FrameType.DATA, FrameType.HEADERS, FrameType.PRIORITY, FrameType.RST_STREAM,
                 FrameType.PUSH_PROMISE, FrameType.CONTINUATION}
_FIXED_LENGTH = {FrameType.RST_STREAM: 4, FrameType.PING: 8, FrameType.WINDOW_UPDATE: 4}
_PADDABLE = {FrameType.DATA, FrameType.HEADERS, FrameType.PUSH_PROMISE}


class FrameDecoder:
    """Decodes the frames of one connection direction.

    max_frame_size is our SETTINGS_MAX_FRAME_SIZE (set it when the peer has
    acknowledged a new value). The buffer never holds more than one frame's
    header and payload plus what one receive() call passed.
    """

    def __init__(self, max_frame_size: int = H2_DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._continuing = 0  # the stream whose field block is open, or 0
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
        buffer = self._buffer
        buffer += byte_view(data)
        frames: list[Frame] = []
        pos = 0
        try:
            while len(buffer) - pos >= HEADER_SIZE:
                length = int.from_bytes(buffer[pos:pos + 3], "big")
                kind, flags = buffer[pos + 3], buffer[pos + 4]
                stream_id = int.from_bytes(buffer[pos + 5:pos + 9], "big") & _MASK31
                if length > self._max_frame_size:
                    raise frame_error("too_large")
                if self._continuing and (kind != FrameType.CONTINUATION or stream_id != self._continuing):
                    raise frame_error("expected_continuation")
                if len(buffer) - pos - HEADER_SIZE < length:
                    break
                payload = bytes(buffer[pos + HEADER_SIZE:pos + HEADER_SIZE + length])
                pos += HEADER_SIZE + length
                frames.append(self._frame(kind, flags, stream_id, payload))
        except H2FrameError as exc:
            exc.frames = list(frames)
            self._error = exc
            del buffer[:]
            raise
        del buffer[:pos]
        return frames

    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> Frame:
        if kind > FrameType.CONTINUATION:
            return Frame(kind, stream_id, flags, payload)
        kind = FrameType(kind)
        if stream_id == 0 and kind in _NEEDS_STREAM:
            raise frame_error("stream_zero")
        if stream_id and kind in _STREAM_ZERO_OK and kind != FrameType.WINDOW_UPDATE:
            raise frame_error("stream_nonzero")
        fixed = _FIXED_LENGTH.get(kind)
        if fixed is not None and len(payload) != fixed:
            raise frame_error("bad_length")
        frame = Frame(kind, stream_id, flags)
        body = payload
        if kind in _PADDABLE and flags & Flag.PADDED:
            if not payload:
                raise frame_error("pad_missing")
            pad = payload[0]
            if pad >= len(payload):
                raise frame_error("pad_too_long")
            frame.pad_length = pad
            body = payload[1:len(payload) - pad]
        if kind == FrameType.DATA:
            frame.data = body
        elif kind == FrameType.HEADERS:
            if flags & Flag.PRIORITY:
                if len(body) < 5:
                    raise frame_error("too_short")
                self._priority(frame, body)
                body = body[5:]
            frame.data = body
            self._open_block(frame)
        elif kind == FrameType.PRIORITY:
            if len(payload) != 5:
                frame.error = STREAM_RULES["priority_length"]
            else:
                self._priority(frame, payload)
        elif kind == FrameType.RST_STREAM:
            frame.error_code = int.from_bytes(payload, "big")
        elif kind == FrameType.SETTINGS:
            self._settings(frame, payload)
        elif kind == FrameType.PUSH_PROMISE:
            if len(body) < 4:
                raise frame_error("too_short")
            frame.promised_stream_id = int.from_bytes(body[:4], "big") & _MASK31
            frame.data = body[4:]
            self._open_block(frame)
        elif kind == FrameType.PING:
            frame.data = payload
        elif kind == FrameType.GOAWAY:
            if len(payload) < 8:
                raise frame_error("too_short")
            frame.last_stream_id = int.from_bytes(payload[:4], "big") & _MASK31
            frame.error_code = int.from_bytes(payload[4:8], "big")
            frame.data = payload[8:]
        elif kind == FrameType.WINDOW_UPDATE:
            frame.increment = int.from_bytes(payload, "big") & _MASK31
            if frame.increment == 0:
                if stream_id == 0:
                    raise frame_error("window_zero")
                frame.error = STREAM_RULES["window_zero_stream"]
        else:  # CONTINUATION
            if not self._continuing:
                raise frame_error("unexpected_continuation")
            frame.data = payload
            if flags & Flag.END_HEADERS:
                self._continuing = 0
        return frame

    def _open_block(self, frame: Frame) -> None:
        if not frame.flags & Flag.END_HEADERS:
            self._continuing = frame.stream_id

    @staticmethod
    def _priority(frame: Frame, body: bytes) -> None:
        dependency = int.from_bytes(body[:4], "big")
        frame.exclusive = bool(dependency >> 31)
        frame.depends_on = dependency & _MASK31
        frame.weight = body[4] + 1
        if frame.depends_on == frame.stream_id:
            frame.error = STREAM_RULES["self_dependency"]

    @staticmethod
    def _settings(frame: Frame, payload: bytes) -> None:
        if frame.flags & Flag.ACK:
            if payload:
                raise frame_error("settings_ack_payload")
            return
        if len(payload) % 6:
            raise frame_error("settings_length")
        settings = []
        for at in range(0, len(payload), 6):
            ident = int.from_bytes(payload[at:at + 2], "big")
            value = int.from_bytes(payload[at + 2:at + 6], "big")
            if ident == Setting.ENABLE_PUSH and value > 1:
                raise frame_error("enable_push")
            if ident == Setting.INITIAL_WINDOW_SIZE and value > H2_MAX_WINDOW_SIZE:
                raise frame_error("initial_window")
            if ident == Setting.MAX_FRAME_SIZE and not H2_DEFAULT_MAX_FRAME_SIZE <= value <= H2_MAX_MAX_FRAME_SIZE:
                raise frame_error("max_frame_size")
            settings.append((ident, value))
        frame.settings = tuple(settings)


def encode(frame: Frame) -> bytes:
    """The bytes of frame: its fields laid out by its type, PADDED frames
    with pad_length zero bytes of padding. ValueError for fields that do not
    fit their wire form."""
    check_limit(frame.stream_id, "stream_id", H2_MAX_STREAM_ID)
    kind = frame.type
    flags = frame.flags
    if kind == FrameType.HEADERS and flags & Flag.PRIORITY or kind == FrameType.PRIORITY:
        check_limit(frame.depends_on, "depends_on", H2_MAX_STREAM_ID)
        if not 1 <= frame.weight <= 256:
            raise ValueError(f"weight must be in [1, 256], got {frame.weight}")
        body = ((frame.exclusive << 31) | frame.depends_on).to_bytes(4, "big") + bytes([frame.weight - 1])
    else:
        body = b""
    if kind == FrameType.PRIORITY:
        payload = body
    elif kind == FrameType.HEADERS:
        payload = body + frame.data
    elif kind == FrameType.RST_STREAM:
        payload = check_limit(frame.error_code, "error_code", 2**32 - 1).to_bytes(4, "big")
    elif kind == FrameType.SETTINGS:
        payload = b"".join(
            check_limit(i, "setting id", 0xFFFF).to_bytes(2, "big")
            + check_limit(v, "setting value", 2**32 - 1).to_bytes(4, "big")
            for i, v in frame.settings
        )
    elif kind == FrameType.PUSH_PROMISE:
        payload = check_limit(frame.promised_stream_id, "promised_stream_id", H2_MAX_STREAM_ID).to_bytes(4, "big") + frame.data
    elif kind == FrameType.GOAWAY:
        payload = (check_limit(frame.last_stream_id, "last_stream_id", H2_MAX_STREAM_ID).to_bytes(4, "big")
                   + check_limit(frame.error_code, "error_code", 2**32 - 1).to_bytes(4, "big") + frame.data)
    elif kind == FrameType.WINDOW_UPDATE:
        payload = check_limit(frame.increment, "increment", H2_MAX_WINDOW_SIZE).to_bytes(4, "big")
    else:  # DATA, PING, CONTINUATION, unknown types: the data as it is
        payload = bytes(frame.data)
    if kind in _PADDABLE and flags & Flag.PADDED:
        pad = check_limit(frame.pad_length, "pad_length", 255)
        payload = bytes([pad]) + payload + bytes(pad)
    if len(payload) > H2_MAX_MAX_FRAME_SIZE:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds {H2_MAX_MAX_FRAME_SIZE}")
    check_limit(kind, "type", 255)
    check_limit(flags, "flags", 255)
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + frame.stream_id.to_bytes(4, "big") + payload

