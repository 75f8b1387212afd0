"""HPACK over csrc/hpack.c (see fastnet.codec.hpack.py for the rules).

A decoded block crosses as one CPython marshal stream built in C (the RESP
request bridge): marshal.loads turns it into the list of tuples at once.
"""
from __future__ import annotations

import marshal
from array import array
from collections.abc import Iterable

from ... import native
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

__all__ = ["Decoder", "Encoder", "NeverIndexed", "huffman_decode", "huffman_encode"]

lib = native.require()
ffi = native.ffi

#: fn_hpack_decode's error codes -> the exception each one means.
HPACK_ERRORS: dict[int, type[HpackError]] = {
    lib.FN_E_HPACK_TRUNCATED: HpackTruncated,
    lib.FN_E_HPACK_INTEGER: HpackIntegerOverflow,
    lib.FN_E_HPACK_INDEX: HpackBadIndex,
    lib.FN_E_HPACK_HUFFMAN: HpackBadHuffman,
    lib.FN_E_HPACK_TABLE_SIZE: HpackBadTableSizeUpdate,
}


def huffman_encode(data: bytes) -> bytes:
    """The Huffman code of data (RFC 7541 5.2), padded with EOS's leading ones."""
    view = byte_view(data)
    out = ffi.new("uint8_t[]", 4 * len(view) + 1)
    n = lib.fn_hpack_huffman_encode(ffi.from_buffer("uint8_t[]", view), len(view), out)
    return ffi.buffer(out, n)[:]


def huffman_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Decode a Huffman string; HpackBadHuffman for EOS in it, padding over 7
    bits, or padding that is not EOS's leading ones."""
    view = byte_view(data)
    out = ffi.new("uint8_t[]", len(view) * 8 // 5 + 1)
    n = lib.fn_hpack_huffman_decode(ffi.from_buffer("uint8_t[]", view), len(view), out)
    if n < 0:
        raise hpack_error(HpackBadHuffman)
    return ffi.buffer(out, n)[:]


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
        decoder = lib.fn_hpack_decoder_new(self._allowed)
        if decoder == ffi.NULL:
            raise MemoryError("fn_hpack_decoder_new")
        self._d = ffi.gc(decoder, lib.fn_hpack_decoder_free)
        self._out = ffi.new("const char **")
        self._never = ffi.new("size_t *")
        self._error: HpackError | None = None

    def _allow(self, size: int) -> None:
        lib.fn_hpack_decoder_set_allowed(self._d, size)

    @property
    def table_size(self) -> int:
        """Bytes the dynamic table holds now, counted as RFC 7541 4.1 does."""
        return int(lib.fn_hpack_decoder_table_size(self._d))

    def decode(self, block: bytes | bytearray | memoryview) -> list[tuple[bytes, bytes]]:
        """Decode one complete header block (HEADERS plus its CONTINUATIONs)."""
        if self._error is not None:
            raise self._error
        view = block if type(block) is bytes else byte_view(block)
        n = lib.fn_hpack_decode(
            self._d, ffi.from_buffer("uint8_t[]", view), len(view),
            self._max_header_list_size, self._out, self._never,
        )
        if n < 0:
            if n == lib.FN_E_NOMEM:
                raise MemoryError("fn_hpack_decode")
            error = (
                HeaderListTooLarge(self.max_header_list_size)
                if n == lib.FN_E_HPACK_LIST_TOO_LARGE
                else hpack_error(HPACK_ERRORS[n])
            )
            self._error = error
            raise error
        headers: list[tuple[bytes, bytes]] = marshal.loads(ffi.buffer(self._out[0], n))
        if self._never[0]:
            headers = [NeverIndexed(h[0], h[1]) if len(h) == 3 else h for h in headers]
        return headers


class Encoder:
    """Encodes the header lists of one direction of one connection.

    max_table_size is the dynamic table size to use, at most the peer's
    SETTINGS_HEADER_TABLE_SIZE (set_max_table_size when it changes) and at
    most limits.DEFAULT_H2_MAX_HEADER_TABLE_SIZE (our memory).
    """

    def __init__(self, max_table_size: int = H2_DEFAULT_HEADER_TABLE_SIZE, huffman: bool = True) -> None:
        size = min(check_table_size(max_table_size), DEFAULT_H2_MAX_HEADER_TABLE_SIZE)
        encoder = lib.fn_hpack_encoder_new(size, bool(huffman))
        if encoder == ffi.NULL:
            raise MemoryError("fn_hpack_encoder_new")
        self._e = ffi.gc(encoder, lib.fn_hpack_encoder_free)
        self._huffman = bool(huffman)
        self._out = ffi.new("uint8_t[]", 256)  # reused while big enough
        self._cap = 256

    @property
    def huffman(self) -> bool:
        """Whether strings are Huffman-coded where that is shorter."""
        return self._huffman

    @property
    def table_size(self) -> int:
        """Bytes the dynamic table holds now, counted as RFC 7541 4.1 does."""
        return int(lib.fn_hpack_encoder_table_size(self._e))

    def set_max_table_size(self, size: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE changed: use min(size, our
        ceiling) and announce it at the start of the next block (RFC 7541 4.2)."""
        size = min(check_table_size(size, "size"), DEFAULT_H2_MAX_HEADER_TABLE_SIZE)
        lib.fn_hpack_encoder_set_max_table_size(self._e, size)

    def encode(self, headers: Iterable[tuple[Text, Text]]) -> bytes:
        """One header block for headers ((name, value) pairs of bytes or str)."""
        triples = fields(headers)
        parts: list[bytes] = []
        lens = array("I")
        for name, value, _ in triples:
            parts += (name, value)
            lens.append(len(name))  # OverflowError past 2**32 - 1
            lens.append(len(value))
        data = b"".join(parts)
        cap = lib.fn_hpack_encode_bound(len(triples), len(data))
        if cap > self._cap:
            self._out = ffi.new("uint8_t[]", cap)
            self._cap = cap
        n = lib.fn_hpack_encode(
            self._e, data, ffi.from_buffer("uint32_t[]", lens) if lens else ffi.NULL,
            bytes(t[2] for t in triples), len(triples), self._out, self._cap,
        )
        if n < 0:
            raise MemoryError("fn_hpack_encode")
        return ffi.buffer(self._out, n)[:]
