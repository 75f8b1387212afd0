"""HTTP/2's per-read batch over csrc/h2sess.c (see fastnet.codec.h2sess.py
for the tuples and the rules).

One C call per read parses the frames, reassembles and HPACK-decodes the
field blocks and checks them; the batch crosses as one CPython marshal
stream (the RESP request bridge) that marshal.loads turns into the list of
tuples at once.
"""
from __future__ import annotations

import marshal
from typing import Any

from ... import native
from ...limits import (DEFAULT_H2_MAX_FIELD_BLOCK, DEFAULT_H2_MAX_HEADER_LIST_SIZE,
                       DEFAULT_H2_MAX_HEADER_TABLE_SIZE, H2_DEFAULT_HEADER_TABLE_SIZE,
                       H2_DEFAULT_MAX_FRAME_SIZE, H2_MAX_CONTINUATIONS)
from .._common import byte_view, check_limit
from ..h2frame._common import check_max_frame_size
from ..hpack._common import NeverIndexed
from ._common import HEADERS

__all__ = ["Reader"]

lib = native.require()
ffi = native.ffi


class Reader:
    """The per-read batch of one connection direction (see the Python
    twin's docstring). ``header_table_size`` is our
    SETTINGS_HEADER_TABLE_SIZE, ``max_header_list_size`` and
    ``max_frame_size`` our settings."""

    def __init__(self, header_table_size: int = H2_DEFAULT_HEADER_TABLE_SIZE,
                 max_header_list_size: int = DEFAULT_H2_MAX_HEADER_LIST_SIZE,
                 max_frame_size: int = H2_DEFAULT_MAX_FRAME_SIZE) -> None:
        self._table = check_limit(header_table_size, "max_table_size",
                                  DEFAULT_H2_MAX_HEADER_TABLE_SIZE)
        self.max_header_list_size = max_header_list_size
        self.max_frame_size = max_frame_size
        reader = lib.fn_h2sess_new(self._table)
        if reader == ffi.NULL:
            raise MemoryError("fn_h2sess_new")
        self._s = ffi.gc(reader, lib.fn_h2sess_free)
        self._out = ffi.new("const char **")

    @property
    def max_frame_size(self) -> int:
        """Our SETTINGS_MAX_FRAME_SIZE: the largest payload accepted."""
        return self._max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, size: int) -> None:
        self._max_frame_size = check_max_frame_size(size)

    @property
    def max_header_list_size(self) -> int:
        """Our SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 6.5.2's count)."""
        return self._max_header_list_size

    @max_header_list_size.setter
    def max_header_list_size(self, size: int) -> None:
        self._max_header_list_size = check_limit(size, "max_header_list_size")

    @property
    def header_table_size(self) -> int:
        """Our SETTINGS_HEADER_TABLE_SIZE: the table the peer may use."""
        return self._table

    @header_table_size.setter
    def header_table_size(self, size: int) -> None:
        self._table = check_limit(size, "max_table_size", DEFAULT_H2_MAX_HEADER_TABLE_SIZE)
        lib.fn_h2sess_set_table_size(self._s, self._table)

    def receive(self, data: bytes | bytearray | memoryview) -> list[tuple[Any, ...]]:
        """Buffer data; the tuples of every frame now complete."""
        view = data if type(data) is bytes else byte_view(data)
        n = lib.fn_h2sess_read(self._s, ffi.from_buffer("uint8_t[]", view), len(view),
                               self._max_frame_size, self._max_header_list_size,
                               DEFAULT_H2_MAX_FIELD_BLOCK, H2_MAX_CONTINUATIONS, self._out)
        if n < 0:
            raise MemoryError("fn_h2sess_read")
        events: list[tuple[Any, ...]] = marshal.loads(ffi.buffer(self._out[0], n))
        for event in events:
            never = event[0] == HEADERS and event[7]
            if never:  # that many fields came as 3-tuples: found by C-level scans
                fields = event[3]
                lengths = list(map(len, fields))
                j = -1
                for _ in range(never):
                    j = lengths.index(3, j + 1)
                    fields[j] = tuple.__new__(NeverIndexed, fields[j][:2])
        return events
