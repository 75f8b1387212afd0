"""What both HPACK twins share: the header field types, argument checks and
the one message each decoding error carries, so the twins fail alike."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Union

from ...errors import (
    HpackBadHuffman,
    HpackBadIndex,
    HpackBadTableSizeUpdate,
    HpackError,
    HpackIntegerOverflow,
    HpackTruncated,
)
from ...limits import DEFAULT_H2_MAX_HEADER_TABLE_SIZE, HPACK_MAX_INTEGER
from .._common import check_limit

#: What an encoder accepts as a name or a value (str is encoded as UTF-8).
Text = Union[bytes, str]


class NeverIndexed(tuple[bytes, bytes]):
    """A (name, value) field that must never enter a compression table
    (RFC 7541 6.2.3): an encoder sends it as a never-indexed literal, and a
    decoder returns one it received so. Equal to the plain tuple."""

    __slots__ = ()

    def __new__(cls, name: Text, value: Text) -> NeverIndexed:
        return super().__new__(cls, (as_bytes(name), as_bytes(value)))


_MESSAGES: dict[type[HpackError], str] = {
    HpackTruncated: "header block ends inside a field",
    HpackIntegerOverflow: f"HPACK integer exceeds {HPACK_MAX_INTEGER}",
    HpackBadIndex: "HPACK index is 0 or past the tables",
    HpackBadHuffman: "invalid Huffman string (EOS, or bad padding)",
    HpackBadTableSizeUpdate: "dynamic table size update above the allowed size or after a field",
}


def hpack_error(cls: type[HpackError]) -> HpackError:
    """A new HpackError of class cls, with the message both twins use."""
    return cls(_MESSAGES[cls])


def as_bytes(text: Text) -> bytes:
    """bytes as they are, str as UTF-8; TypeError for anything else."""
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode()
    if isinstance(text, (bytearray, memoryview)):
        return bytes(text)
    raise TypeError(f"header names and values must be bytes or str, not {type(text).__name__}")


#: Fields an encoder never indexes even when the caller did not say so
#: (RFC 7541 7.1.3: guessable secrets), besides cookies shorter than 20 bytes.
_SENSITIVE = frozenset({b"authorization", b"proxy-authorization"})


def fields(headers: Iterable[tuple[Text, Text]]) -> list[tuple[bytes, bytes, bool]]:
    """The (name, value, never_indexed) triples an encoder writes, in order."""
    out = []
    for field in headers:
        name, value = field
        if type(name) is not bytes:  # the common case costs no call
            name = as_bytes(name)
        if type(value) is not bytes:
            value = as_bytes(value)
        sensitive = (
            type(field) is NeverIndexed
            or name in _SENSITIVE
            or (name == b"cookie" and len(value) < 20)
        )
        out.append((name, value, sensitive))
    return out


def check_table_size(size: object, name: str = "max_table_size") -> int:
    """A table size: an int in [0, HPACK_MAX_INTEGER]."""
    return check_limit(size, name, HPACK_MAX_INTEGER)


class DecoderLimits:
    """The two limits of a Decoder, checked the same way by both twins:
    ``max_table_size`` (the SETTINGS_HEADER_TABLE_SIZE we advertise: the
    largest dynamic table the peer's encoder may ask for) and
    ``max_header_list_size`` (bounds each decoded list). A twin that keeps
    the first elsewhere too (in C) overrides ``_allow``."""

    _allowed: int
    _max_header_list_size: int

    def _init_limits(self, max_table_size: int, max_header_list_size: int) -> None:
        self._allowed = check_limit(max_table_size, "max_table_size", DEFAULT_H2_MAX_HEADER_TABLE_SIZE)
        self.max_header_list_size = max_header_list_size

    def _allow(self, size: int) -> None:
        """A new max_table_size, checked, is in effect."""

    @property
    def max_table_size(self) -> int:
        """The largest table size update the peer may send (our setting)."""
        return self._allowed

    @max_table_size.setter
    def max_table_size(self, size: int) -> None:
        self._allowed = check_limit(size, "max_table_size", DEFAULT_H2_MAX_HEADER_TABLE_SIZE)
        self._allow(self._allowed)

    @property
    def max_header_list_size(self) -> int:
        """The most bytes a decoded header list may count (RFC 9113 6.5.2)."""
        return self._max_header_list_size

    @max_header_list_size.setter
    def max_header_list_size(self, size: int) -> None:
        self._max_header_list_size = check_limit(size, "max_header_list_size")
