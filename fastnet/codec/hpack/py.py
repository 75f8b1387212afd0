"""HPACK (RFC 7541) in pure Python: the readable reference of csrc/hpack.c.

A :class:`Decoder` turns header blocks into lists of (name, value) tuples of
bytes (:class:`NeverIndexed` for fields sent as never-indexed literals), an
:class:`Encoder` turns header lists into blocks. Each keeps one dynamic
table, so one connection direction has one of each, fed blocks in order.

Decoding is strict, because the peer chooses the bytes: a truncated field,
an integer over limits.HPACK_MAX_INTEGER, an index of 0 or past the tables,
a bad Huffman string and a misplaced or oversized table size update each
raise their HpackError (COMPRESSION_ERROR); a header list that would grow
past max_header_list_size raises HeaderListTooLarge before the field that
crosses it is appended. After any error the decoder's table no longer
matches the peer's, so every later call raises the same error (sticky).

The encoder's choices are fixed, so both twins write the same bytes: a
field in a table is sent indexed (the static table first, then the newest
dynamic entry); a sensitive field (a NeverIndexed, authorization,
proxy-authorization, a cookie under 20 bytes) as a never-indexed literal;
any other as a literal with incremental indexing if it fits in the table,
else without indexing. A literal reuses an indexed name where there is
one. A string is Huffman-coded when that is shorter (and huffman=True).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ...errors import (
    HeaderListTooLarge,
    HpackBadHuffman,
    HpackBadIndex,
    HpackBadTableSizeUpdate,
    HpackError,
    HpackIntegerOverflow,
    HpackTruncated,
)
from ...limits import (
    DEFAULT_H2_MAX_HEADER_LIST_SIZE,
    DEFAULT_H2_MAX_HEADER_TABLE_SIZE,
    H2_DEFAULT_HEADER_TABLE_SIZE,
    HPACK_MAX_INTEGER,
)
from .._common import byte_view
from ._common import (
    DecoderLimits,
    NeverIndexed,
    Text,
    check_table_size,
    fields,
    hpack_error,
)
from ._tables import HUFFMAN_CODES, STATIC_TABLE

__all__ = ["Decoder", "Encoder", "NeverIndexed", "huffman_decode", "huffman_encode"]

#: Bytes a table entry costs beyond its name and value (RFC 7541 4.1), which
#: RFC 9113 6.5.2 also charges per field of a header list.
ENTRY_OVERHEAD = 32
_STATIC_LEN = len(STATIC_TABLE)
#: The most continuation bytes an integer may have: 5 * 7 bits cover 32.
_MAX_INTEGER_BYTES = 5

# Canonical Huffman decoding (Appendix B's code is canonical: codes of one
# length are consecutive, in symbol order): codes of length L are
# _FIRST[L] .. _FIRST[L] + _COUNT[L] - 1, for symbols _SYMBOLS[_OFFSET[L]:].
_SYMBOLS = sorted(range(257), key=lambda s: (HUFFMAN_CODES[s][1], s))
_FIRST = [0] * 32
_COUNT = [0] * 32
_OFFSET = [0] * 32
for _i, _s in enumerate(_SYMBOLS):
    _code, _len = HUFFMAN_CODES[_s]
    if _COUNT[_len] == 0:
        _FIRST[_len], _OFFSET[_len] = _code, _i
    _COUNT[_len] += 1
_EOS = 256

_STATIC_FIELD: dict[tuple[bytes, bytes], int] = {}
_STATIC_NAME: dict[bytes, int] = {}
for _i, (_n, _v) in enumerate(STATIC_TABLE, 1):
    _STATIC_FIELD.setdefault((_n, _v), _i)
    _STATIC_NAME.setdefault(_n, _i)


def huffman_encode(data: bytes) -> bytes:
    """The Huffman code of data (RFC 7541 5.2), padded with EOS's leading ones."""
    acc = 0
    bits = 0
    for byte in data:
        code, length = HUFFMAN_CODES[byte]
        acc = acc << length | code
        bits += length
    pad = -bits % 8
    acc = acc << pad | (1 << pad) - 1
    return acc.to_bytes((bits + pad) // 8, "big")


def huffman_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Decode a Huffman string; HpackBadHuffman for EOS in it, padding over 7
    bits, or padding that is not EOS's leading ones."""
    out = bytearray()
    code = 0
    length = 0
    for byte in byte_view(data):
        for shift in range(7, -1, -1):
            code = code << 1 | (byte >> shift) & 1
            length += 1
            index = code - _FIRST[length]
            if 0 <= index < _COUNT[length]:
                symbol = _SYMBOLS[_OFFSET[length] + index]
                if symbol == _EOS:
                    raise hpack_error(HpackBadHuffman)
                out.append(symbol)
                code = 0
                length = 0
    if length > 7 or code != (1 << length) - 1:
        raise hpack_error(HpackBadHuffman)
    return bytes(out)


class _Table:
    """The dynamic table (RFC 7541 2.3.2, 4): newest entry first, evicted
    oldest first whenever the size would exceed max_size."""

    def __init__(self, max_size: int) -> None:
        self.entries: deque[tuple[bytes, bytes]] = deque()
        self.size = 0
        self.max_size = max_size

    def resize(self, max_size: int) -> None:
        self.max_size = max_size
        self._evict(0)

    def add(self, name: bytes, value: bytes) -> None:
        cost = len(name) + len(value) + ENTRY_OVERHEAD
        self._evict(cost)
        if cost <= self.max_size:  # a larger entry empties the table (4.4)
            self.entries.appendleft((name, value))
            self.size += cost

    def _evict(self, room: int) -> None:
        while self.entries and self.size + room > self.max_size:
            name, value = self.entries.pop()
            self.size -= len(name) + len(value) + ENTRY_OVERHEAD

    def get(self, index: int) -> tuple[bytes, bytes]:
        """The field at index (1-based over static then dynamic), or HpackBadIndex."""
        if 1 <= index <= _STATIC_LEN:
            return STATIC_TABLE[index - 1]
        if _STATIC_LEN < index <= _STATIC_LEN + len(self.entries):
            return self.entries[index - _STATIC_LEN - 1]
        raise hpack_error(HpackBadIndex)


class Decoder(DecoderLimits):
    """Decodes the header blocks of one direction of one connection.

    max_table_size is the SETTINGS_HEADER_TABLE_SIZE we advertise: the
    largest dynamic table the peer's encoder may ask for (its table starts at
    that size too). max_header_list_size bounds each decoded list.
    """

    def __init__(
        self,
        max_table_size: int = H2_DEFAULT_HEADER_TABLE_SIZE,
        max_header_list_size: int = DEFAULT_H2_MAX_HEADER_LIST_SIZE,
    ) -> None:
        self._init_limits(max_table_size, max_header_list_size)
        self._table = _Table(self._allowed)
        self._error: HpackError | None = None

    @property
    def table_size(self) -> int:
        """Bytes the dynamic table holds now, counted as RFC 7541 4.1 does."""
        return self._table.size

    def decode(self, block: bytes | bytearray | memoryview) -> list[tuple[bytes, bytes]]:
        """Decode one complete header block (HEADERS plus its CONTINUATIONs)."""
        if self._error is not None:
            raise self._error
        try:
            return self._decode(byte_view(block))
        except HpackError as exc:
            self._error = exc
            raise

    def _decode(self, data: memoryview) -> list[tuple[bytes, bytes]]:
        table = self._table
        headers: list[tuple[bytes, bytes]] = []
        budget = self._max_header_list_size
        pos = 0
        end = len(data)
        while pos < end:
            byte = data[pos]
            if byte & 0x80:  # indexed field (6.1)
                index, pos = _integer(data, pos, 7)
                name, value = table.get(index)
                never = False
            elif byte & 0xE0 == 0x20:  # dynamic table size update (6.3)
                if headers:
                    raise hpack_error(HpackBadTableSizeUpdate)
                size, pos = _integer(data, pos, 5)
                if size > self._allowed:
                    raise hpack_error(HpackBadTableSizeUpdate)
                table.resize(size)
                continue
            else:  # a literal: 6.2.1 (01), 6.2.3 never indexed (0001), 6.2.2 (0000)
                indexing = bool(byte & 0x40)
                never = not indexing and bool(byte & 0x10)
                index, pos = _integer(data, pos, 6 if indexing else 4)
                if index:
                    name = table.get(index)[0]
                else:
                    name, pos = _string(data, pos)
                value, pos = _string(data, pos)
            budget -= len(name) + len(value) + ENTRY_OVERHEAD
            if budget < 0:
                raise HeaderListTooLarge(self.max_header_list_size)
            if byte & 0xC0 == 0x40:
                table.add(name, value)
            headers.append(NeverIndexed(name, value) if never else (name, value))
        return headers


def _integer(data: memoryview, pos: int, prefix: int) -> tuple[int, int]:
    """Decode the integer (RFC 7541 5.1) whose prefix is the low ``prefix``
    bits of data[pos]; return (value, position after it)."""
    mask = (1 << prefix) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    for k in range(_MAX_INTEGER_BYTES):
        if pos >= len(data):
            raise hpack_error(HpackTruncated)
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << (7 * k)
        if value > HPACK_MAX_INTEGER:
            raise hpack_error(HpackIntegerOverflow)
        if not byte & 0x80:
            return value, pos
    raise hpack_error(HpackIntegerOverflow)


def _string(data: memoryview, pos: int) -> tuple[bytes, int]:
    """Decode the string literal (RFC 7541 5.2) at data[pos]."""
    if pos >= len(data):
        raise hpack_error(HpackTruncated)
    huffman = data[pos] & 0x80
    length, pos = _integer(data, pos, 7)
    if length > len(data) - pos:
        raise hpack_error(HpackTruncated)
    raw = data[pos:pos + length]
    return (huffman_decode(raw) if huffman else bytes(raw)), pos + length


class Encoder:
    """Encodes the header lists of one direction of one connection.

    max_table_size is the dynamic table size to use, at most the peer's
    SETTINGS_HEADER_TABLE_SIZE (set_max_table_size when it changes) and at
    most limits.DEFAULT_H2_MAX_HEADER_TABLE_SIZE (our memory).
    """

    def __init__(self, max_table_size: int = H2_DEFAULT_HEADER_TABLE_SIZE, huffman: bool = True) -> None:
        size = min(check_table_size(max_table_size), DEFAULT_H2_MAX_HEADER_TABLE_SIZE)
        self._table = _Table(size)
        # Size updates owed at the next block's start: the peer's decoder
        # starts at the protocol's initial size.
        self._pending: list[int] = [size] if size != H2_DEFAULT_HEADER_TABLE_SIZE else []
        self._huffman = bool(huffman)

    @property
    def huffman(self) -> bool:
        """Whether strings are Huffman-coded where that is shorter."""
        return self._huffman

    @property
    def table_size(self) -> int:
        """Bytes the dynamic table holds now, counted as RFC 7541 4.1 does."""
        return self._table.size

    def set_max_table_size(self, size: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE changed: use min(size, our
        ceiling) and announce it at the start of the next block (RFC 7541 4.2)."""
        size = min(check_table_size(size, "size"), DEFAULT_H2_MAX_HEADER_TABLE_SIZE)
        if size != self._table.max_size or self._pending:
            self._pending.append(size)
            self._table.resize(size)

    def encode(self, headers: Iterable[tuple[Text, Text]]) -> bytes:
        """One header block for headers ((name, value) pairs of bytes or str)."""
        out = bytearray()
        if self._pending:
            smallest = min(self._pending)
            if smallest < self._pending[-1]:
                _put_integer(out, 0x20, 5, smallest)
            _put_integer(out, 0x20, 5, self._pending[-1])
            self._pending.clear()
        table = self._table
        for name, value, sensitive in fields(headers):
            name_index = 0
            if not sensitive:
                index = _STATIC_FIELD.get((name, value), 0)
                if not index:
                    index = _dynamic_index(table, name, value)
                if index:
                    _put_integer(out, 0x80, 7, index)
                    continue
            name_index = _STATIC_NAME.get(name, 0) or _dynamic_index(table, name, None)
            if sensitive:
                _put_integer(out, 0x10, 4, name_index)
            elif len(name) + len(value) + ENTRY_OVERHEAD <= table.max_size:
                _put_integer(out, 0x40, 6, name_index)
                table.add(name, value)
            else:
                _put_integer(out, 0x00, 4, name_index)
            if not name_index:
                self._put_string(out, name)
            self._put_string(out, value)
        return bytes(out)

    def _put_string(self, out: bytearray, data: bytes) -> None:
        if self._huffman:
            coded = huffman_encode(data)
            if len(coded) < len(data):
                _put_integer(out, 0x80, 7, len(coded))
                out += coded
                return
        _put_integer(out, 0x00, 7, len(data))
        out += data


def _dynamic_index(table: _Table, name: bytes, value: bytes | None) -> int:
    """The index of the newest dynamic entry with this name (and value, unless
    None), or 0."""
    for i, (n, v) in enumerate(table.entries):
        if n == name and (value is None or v == value):
            return _STATIC_LEN + 1 + i
    return 0


def _put_integer(out: bytearray, flags: int, prefix: int, value: int) -> None:
    """Append value as an RFC 7541 5.1 integer with a prefix-bit prefix,
    the first byte's high bits being flags."""
    mask = (1 << prefix) - 1
    if value < mask:
        out.append(flags | value)
        return
    out.append(flags | mask)
    value -= mask
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
