"""What both fastnet.pack twins share: the value types, option checks and
the timestamp rules, written once so the twins cannot drift apart."""
from __future__ import annotations

import datetime as _dt
import struct
from typing import Any, Callable, NamedTuple, Optional

from ..errors import BadTimestamp, PackOverflow
from ..codec._common import check_limit
from ..limits import (
    DEFAULT_PACK_MAX_ARRAY_LEN,
    DEFAULT_PACK_MAX_BIN_LEN,
    DEFAULT_PACK_MAX_BUFFER_SIZE,
    DEFAULT_PACK_MAX_DEPTH,
    DEFAULT_PACK_MAX_EXT_LEN,
    DEFAULT_PACK_MAX_MAP_LEN,
    DEFAULT_PACK_MAX_STR_LEN,
    PACK_MAX_LEN,
)

#: The timestamp extension's type code (MessagePack spec).
TIMESTAMP_CODE = -1

EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_NS = 10**9


class ExtType(NamedTuple):
    """An extension value: a type code in [-128, 127] and its payload bytes.

    Codes 0..127 are the application's; negative codes are reserved by the
    spec (-1 is the timestamp, which unpacks as a datetime or a Timestamp
    unless ``timestamp=`` says otherwise)."""

    code: int
    data: bytes


class Timestamp:
    """The timestamp extension's value: seconds since the epoch (may be
    negative) and nanoseconds in [0, 999999999]. Keeps the nanoseconds a
    datetime cannot hold."""

    __slots__ = ("seconds", "nanoseconds")

    def __init__(self, seconds: int, nanoseconds: int = 0) -> None:
        if not isinstance(seconds, int) or not isinstance(nanoseconds, int):
            raise TypeError("Timestamp seconds and nanoseconds must be ints")
        if not 0 <= nanoseconds < _NS:
            raise ValueError(f"nanoseconds must be in [0, {_NS - 1}], got {nanoseconds}")
        self.seconds = seconds
        self.nanoseconds = nanoseconds

    def __repr__(self) -> str:
        return f"Timestamp(seconds={self.seconds}, nanoseconds={self.nanoseconds})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Timestamp:
            return NotImplemented
        return (self.seconds, self.nanoseconds) == (other.seconds, other.nanoseconds)

    def __hash__(self) -> int:
        return hash((self.seconds, self.nanoseconds))

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> "Timestamp":
        """The Timestamp of a timezone-aware datetime (exact: integer arithmetic)."""
        delta = value - EPOCH
        return cls(delta.days * 86400 + delta.seconds, delta.microseconds * 1000)

    def to_datetime(self) -> _dt.datetime:
        """This instant as an aware datetime in UTC (nanoseconds truncated to
        microseconds). OverflowError outside the datetime range."""
        return EPOCH + _dt.timedelta(seconds=self.seconds, microseconds=self.nanoseconds // 1000)

    def to_unix(self) -> float:
        """Seconds since the epoch as a float."""
        return self.seconds + self.nanoseconds / 1e9

    def to_unix_nano(self) -> int:
        """Nanoseconds since the epoch."""
        return self.seconds * _NS + self.nanoseconds

    def to_bytes(self) -> bytes:
        """The extension payload: the smallest of the three sizes that holds
        this value (4 bytes: seconds < 2**32 and no nanoseconds; 8 bytes:
        seconds < 2**34; else 12)."""
        if self.seconds >> 34 == 0:
            value = self.nanoseconds << 34 | self.seconds
            if value >> 32 == 0:
                return _U32.pack(value)
            return _U64.pack(value)
        if not -(2**63) <= self.seconds < 2**63:
            raise PackOverflow(f"Timestamp seconds {self.seconds} do not fit in 64 bits")
        return _TS96.pack(self.nanoseconds, self.seconds)


_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TS96 = struct.Struct(">Iq")

#: ``timestamp=`` values of unpackb/Unpacker: what the timestamp extension becomes.
TIMESTAMP_AS_TIMESTAMP = 0
TIMESTAMP_AS_FLOAT = 1
TIMESTAMP_AS_NS = 2
TIMESTAMP_AS_DATETIME = 3


def decode_timestamp(data: bytes, mode: int) -> Any:
    """The timestamp extension's payload as ``timestamp=mode`` asks.
    BadTimestamp for a wrong size, nanoseconds over 999999999, or (as a
    datetime) an instant outside the datetime range."""
    size = len(data)
    if size == 4:
        seconds, nanoseconds = _U32.unpack(data)[0], 0
    elif size == 8:
        value = _U64.unpack(data)[0]
        seconds, nanoseconds = value & 0x3FFFFFFFF, value >> 34
    elif size == 12:
        nanoseconds, seconds = _TS96.unpack(data)
    else:
        raise BadTimestamp(f"a timestamp is 4, 8 or 12 bytes, not {size}")
    if nanoseconds >= _NS:
        raise BadTimestamp(f"timestamp nanoseconds {nanoseconds} over {_NS - 1}")
    stamp = Timestamp(seconds, nanoseconds)
    if mode == TIMESTAMP_AS_DATETIME:
        try:
            return stamp.to_datetime()
        except OverflowError:
            raise BadTimestamp(f"timestamp {seconds} s is outside the datetime range") from None
    if mode == TIMESTAMP_AS_TIMESTAMP:
        return stamp
    if mode == TIMESTAMP_AS_FLOAT:
        return stamp.to_unix()
    return stamp.to_unix_nano()


class UnpackOptions(NamedTuple):
    """unpackb/Unpacker options, checked once (both twins take this)."""

    raw: bool
    use_list: bool
    strict_map_key: bool
    timestamp: int
    ext_hook: Callable[[int, bytes], Any]
    max_depth: int
    max_str_len: int
    max_bin_len: int
    max_ext_len: int
    max_array_len: int
    max_map_len: int
    max_buffer_size: int


def unpack_options(
    raw: bool = False,
    use_list: bool = True,
    strict_map_key: bool = False,
    timestamp: int = TIMESTAMP_AS_DATETIME,
    ext_hook: Optional[Callable[[int, bytes], Any]] = None,
    max_depth: int = DEFAULT_PACK_MAX_DEPTH,
    max_str_len: int = DEFAULT_PACK_MAX_STR_LEN,
    max_bin_len: int = DEFAULT_PACK_MAX_BIN_LEN,
    max_ext_len: int = DEFAULT_PACK_MAX_EXT_LEN,
    max_array_len: int = DEFAULT_PACK_MAX_ARRAY_LEN,
    max_map_len: int = DEFAULT_PACK_MAX_MAP_LEN,
    max_buffer_size: int = DEFAULT_PACK_MAX_BUFFER_SIZE,
) -> UnpackOptions:
    """Check and bundle the decoding options (TypeError/ValueError/OverflowError
    on a bad one)."""
    if timestamp not in (0, 1, 2, 3):
        raise ValueError(f"timestamp must be 0, 1, 2 or 3, got {timestamp!r}")
    if ext_hook is None:
        ext_hook = ExtType
    elif not callable(ext_hook):
        raise TypeError("ext_hook must be callable")
    return UnpackOptions(
        bool(raw),
        bool(use_list),
        bool(strict_map_key),
        timestamp,
        ext_hook,
        check_limit(max_depth, "max_depth", 2**31 - 1),
        check_limit(max_str_len, "max_str_len", PACK_MAX_LEN),
        check_limit(max_bin_len, "max_bin_len", PACK_MAX_LEN),
        check_limit(max_ext_len, "max_ext_len", PACK_MAX_LEN),
        check_limit(max_array_len, "max_array_len", PACK_MAX_LEN),
        check_limit(max_map_len, "max_map_len", PACK_MAX_LEN),
        check_limit(max_buffer_size, "max_buffer_size"),
    )


def check_default(default: object) -> None:
    """TypeError unless default is None or callable."""
    if default is not None and not callable(default):
        raise TypeError("default must be callable")


DEFAULT_MAX_DEPTH = DEFAULT_PACK_MAX_DEPTH
