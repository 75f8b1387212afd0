"""What the HTTP/2 frame twins share: frame types and flags, the Frame
value, and each frame-level rule (its RFC 9113 section, error code and
message), so the twins name a broken rule alike."""
from __future__ import annotations

from enum import IntEnum

from ...errors import H2ErrorCode, H2FrameError
from ...limits import H2_DEFAULT_MAX_FRAME_SIZE, H2_MAX_MAX_FRAME_SIZE
from .._common import check_limit

#: The frame header's size (RFC 9113 4.1).
HEADER_SIZE = 9


class FrameType(IntEnum):
    """Frame types of RFC 9113 section 6."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class Flag(IntEnum):
    """Frame flags (RFC 9113 section 6); ACK and END_STREAM share a bit."""

    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


class Setting(IntEnum):
    """SETTINGS parameters (RFC 9113 6.5.2)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


class Frame:
    """One HTTP/2 frame. ``data`` is the DATA payload, the field block
    fragment of HEADERS, PUSH_PROMISE and CONTINUATION, PING's 8 bytes,
    GOAWAY's debug data, an unknown type's payload (padding removed). The
    other fields are those of the frame's type (0, False or () otherwise);
    ``weight`` is 1..256. ``error`` is set on a frame that is a stream error
    (RFC 9113 5.4.2): the stream must be reset with that code, the
    connection goes on."""

    __slots__ = ("type", "flags", "stream_id", "data", "pad_length", "depends_on", "weight",
                 "exclusive", "promised_stream_id", "error_code", "last_stream_id", "increment",
                 "settings", "error")

    def __init__(
        self,
        type: int,
        stream_id: int = 0,
        flags: int = 0,
        data: bytes = b"",
        *,
        pad_length: int = 0,
        depends_on: int = 0,
        weight: int = 16,
        exclusive: bool = False,
        promised_stream_id: int = 0,
        error_code: int = 0,
        last_stream_id: int = 0,
        increment: int = 0,
        settings: tuple[tuple[int, int], ...] = (),
        error: H2ErrorCode | None = None,
    ) -> None:
        self.type = type
        self.stream_id = stream_id
        self.flags = flags
        self.data = data
        self.pad_length = pad_length
        self.depends_on = depends_on
        self.weight = weight
        self.exclusive = exclusive
        self.promised_stream_id = promised_stream_id
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.increment = increment
        self.settings = settings
        self.error = error

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frame) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        name = FrameType(self.type).name if self.type in FrameType._value2member_map_ else hex(self.type)
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__[1:])
        return f"Frame({name}, {fields})"


E = H2ErrorCode
#: Each frame-level rule: (section, error code, message). A rule marked by a
#: stream error is reported on the frame (Frame.error), the others raise.
RULES: dict[str, tuple[str, H2ErrorCode, str]] = {
    "too_large": ("4.2", E.FRAME_SIZE_ERROR, "frame payload exceeds SETTINGS_MAX_FRAME_SIZE"),
    "expected_continuation": ("6.10", E.PROTOCOL_ERROR,
                              "a field block is open: only CONTINUATION on its stream may follow"),
    "unexpected_continuation": ("6.10", E.PROTOCOL_ERROR, "CONTINUATION without an open field block"),
    "stream_zero": ("6", E.PROTOCOL_ERROR, "this frame type needs a stream id"),
    "stream_nonzero": ("6", E.PROTOCOL_ERROR, "this frame type is for stream 0 only"),
    "pad_missing": ("6.1", E.FRAME_SIZE_ERROR, "PADDED frame too short for its Pad Length"),
    "pad_too_long": ("6.1", E.PROTOCOL_ERROR, "padding as long as the payload or longer"),
    "too_short": ("4.2", E.FRAME_SIZE_ERROR, "frame too short for its type's fields"),
    "bad_length": ("4.2", E.FRAME_SIZE_ERROR, "frame length wrong for its type"),
    "settings_ack_payload": ("6.5", E.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload"),
    "settings_length": ("6.5", E.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6"),
    "enable_push": ("6.5.2", E.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH other than 0 or 1"),
    "initial_window": ("6.5.2", E.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2**31-1"),
    "max_frame_size": ("6.5.2", E.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE outside 2**14 .. 2**24-1"),
    "window_zero": ("6.9", E.PROTOCOL_ERROR, "WINDOW_UPDATE with an increment of 0 on stream 0"),
}
#: Stream errors (RFC 9113 5.4.2): the frame is returned with Frame.error.
STREAM_RULES: dict[str, H2ErrorCode] = {
    "priority_length": E.FRAME_SIZE_ERROR,   # 6.3: PRIORITY not 5 bytes long
    "self_dependency": E.PROTOCOL_ERROR,     # 5.3.1: a stream depending on itself
    "window_zero_stream": E.PROTOCOL_ERROR,  # 6.9: an increment of 0 on a stream
}


def frame_error(rule: str) -> H2FrameError:
    """The connection error of one rule, with the message both twins use."""
    section, code, message = RULES[rule]
    return H2FrameError(code, section, message)


def check_max_frame_size(size: object) -> int:
    """A SETTINGS_MAX_FRAME_SIZE of ours: an int in 2**14 .. 2**24-1
    (OverflowError above, ValueError below, TypeError for a non-int)."""
    size = check_limit(size, "max_frame_size", H2_MAX_MAX_FRAME_SIZE)
    if size < H2_DEFAULT_MAX_FRAME_SIZE:
        raise ValueError(f"max_frame_size must be at least {H2_DEFAULT_MAX_FRAME_SIZE}")
    return size
