"""HTTP/2's per-read batch in pure Python (the reference twin).

:class:`Reader` takes the bytes of one connection direction (after the
client preface) and returns, per ``receive(data)``, one list of tuples:
one per complete frame, in order, except that a HEADERS frame without
END_HEADERS and its CONTINUATIONs give one HEADERS tuple when the block
ends. Frames are parsed by fastnet.codec.h2frame's rules (a connection
error there ends the batch), field blocks decoded by fastnet.codec.hpack's
(our table; each list bounded by max_header_list_size as it is decoded).

The tuples (ints, bools, bytes; ``sid`` a stream id):

* ``(DATA, sid, end_stream, data, flow_controlled_length)`` (payload plus
  padding and its length byte);
* ``(HEADERS, sid, end_stream, headers, req, trailers_ok, error, never)``:
  ``headers`` the decoded list of (name, value) tuples (never-indexed ones
  as NeverIndexed, ``never`` of them); ``req`` the list checked as a
  request (RFC 9113 8.2 and 8.3.1: lowercase valid names, values without
  NUL/CR/LF or edge whitespace, no connection-specific fields, TE only
  "trailers", the request pseudo fields first, known, once, non-empty but
  :authority, :method, :scheme and :path present, or CONNECT with
  :authority alone; content-length digits, at most 18, repeats equal): its
  content-length, -1 without one, NOT_A_REQUEST if malformed;
  ``trailers_ok`` the same regular-field rules with no pseudo field at
  all and content-length not read; ``error`` a stream error code from the
  HEADERS frame's priority (0 if none);
* ``(PRIORITY, sid, depends_on, weight, exclusive, error)``,
  ``(RST_STREAM, sid, error_code)``, ``(SETTINGS, ack, ((id, value), ...))``,
  ``(PUSH_PROMISE, sid)`` (its field block is not decoded: no peer of ours
  may push), ``(PING, ack, data)``, ``(GOAWAY, last_stream_id, error_code,
  debug_data)``, ``(WINDOW_UPDATE, sid, increment, error)``,
  ``(UNKNOWN, frame_type)``;
* ``(ERROR, rule)`` ends a batch: a frame-level rule (h2frame's names), an
  HPACK one (``hpack_*``, ``header_list_too_large``), or a field block over
  DEFAULT_H2_MAX_FIELD_BLOCK bytes (``field_block``; ``continuation_block``
  when CONTINUATIONs made it so) or in more than H2_MAX_CONTINUATIONS
  CONTINUATIONs (``continuations``). Sticky: every later batch is that
  tuple alone. :func:`~fastnet.codec.h2sess.error_of` gives its exception.

A field block is buffered across reads only while it is open, and never
past DEFAULT_H2_MAX_FIELD_BLOCK. max_frame_size, max_header_list_size and
header_table_size (our settings in force) apply from the next call.
"""
from __future__ import annotations

import re
from typing import Any, Optional

from ...errors import H2FrameError, HpackError
from ...limits import (DEFAULT_H2_MAX_FIELD_BLOCK, DEFAULT_H2_MAX_HEADER_LIST_SIZE,
                       H2_DEFAULT_HEADER_TABLE_SIZE, H2_DEFAULT_MAX_FRAME_SIZE,
                       H2_MAX_CONTINUATIONS)
from ..h2frame._common import RULES, Flag, FrameType
from ..h2frame.py import FrameDecoder
from ..hpack._common import NeverIndexed
from ..hpack.py import Decoder
from ._common import (DATA, ERROR, GOAWAY, HEADERS, NOT_A_REQUEST, PING, PRIORITY, PUSH_PROMISE,
                      RST_STREAM, SETTINGS, UNKNOWN, WINDOW_UPDATE, rule_of)

__all__ = ["Reader", "check_fields", "check_request"]

#: Fields that are per hop in HTTP/1.1 and malformed in HTTP/2 (8.2.2).
_CONNECTION_SPECIFIC = frozenset((b"connection", b"keep-alive", b"proxy-connection",
                                  b"transfer-encoding", b"upgrade"))
_REQUEST_PSEUDO = frozenset((b":method", b":scheme", b":path", b":authority"))
# A field name: no 0x00-0x20, A-Z, 0x7f-0xff, no colon (8.2.1).
_NAME_OK = bytes(c for c in range(256) if 0x20 < c < 0x7F and not 0x41 <= c <= 0x5A and c != 0x3A)
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")
_FRAME_RULE = {(section, message): rule for rule, (section, _, message) in RULES.items()}


def check_fields(headers: Any, trailers: bool = False) -> int:
    """Regular fields (8.2): their content-length (-1 if none), or
    NOT_A_REQUEST if one is malformed; trailers: content-length not read."""
    length = -1
    for name, value in headers:
        if name[:1] == b":" or not name or name.translate(None, _NAME_OK):
            return NOT_A_REQUEST
        if value and _BAD_VALUE.search(value):
            return NOT_A_REQUEST
        if name in _CONNECTION_SPECIFIC:
            return NOT_A_REQUEST
        if name == b"te" and value != b"trailers":
            return NOT_A_REQUEST
        if name == b"content-length" and not trailers:
            if not value.isdigit() or len(value) > 18 or (length >= 0 and int(value) != length):
                return NOT_A_REQUEST
            length = int(value)
    return length


def check_request(headers: Any) -> int:
    """A request's header list (8.3.1): its content-length, -1 if none,
    NOT_A_REQUEST if malformed."""
    seen: dict[bytes, bytes] = {}
    i = 0
    for name, value in headers:
        if name[:1] != b":":
            break
        if name not in _REQUEST_PSEUDO or name in seen:
            return NOT_A_REQUEST
        if name != b":authority" and not value or value and _BAD_VALUE.search(value):
            return NOT_A_REQUEST
        seen[name] = value
        i += 1
    method = seen.get(b":method")
    if method is None:
        return NOT_A_REQUEST
    if method == b"CONNECT":
        if b":authority" not in seen or b":scheme" in seen or b":path" in seen:
            return NOT_A_REQUEST
    elif b":scheme" not in seen or b":path" not in seen:
        return NOT_A_REQUEST
    return check_fields(headers[i:])


class Reader:
    """The per-read batch of one connection direction (see the module's
    docstring). ``header_table_size`` is our SETTINGS_HEADER_TABLE_SIZE,
    ``max_header_list_size`` and ``max_frame_size`` our settings."""

    def __init__(self, header_table_size: int = H2_DEFAULT_HEADER_TABLE_SIZE,
                 max_header_list_size: int = DEFAULT_H2_MAX_HEADER_LIST_SIZE,
                 max_frame_size: int = H2_DEFAULT_MAX_FRAME_SIZE) -> None:
        self._frames = FrameDecoder(max_frame_size)
        self._decoder = Decoder(header_table_size, max_header_list_size)
        self._block: Optional[tuple[int, bool, int]] = None  # (sid, end_stream, error)
        self._parts: list[bytes] = []
        self._size = 0
        self._continuations = 0
        self._error: Optional[str] = None

    @property
    def max_frame_size(self) -> int:
        """Our SETTINGS_MAX_FRAME_SIZE: the largest payload accepted."""
        return self._frames.max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, size: int) -> None:
        self._frames.max_frame_size = size

    @property
    def max_header_list_size(self) -> int:
        """Our SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 6.5.2's count)."""
        return self._decoder.max_header_list_size

    @max_header_list_size.setter
    def max_header_list_size(self, size: int) -> None:
        self._decoder.max_header_list_size = size

    @property
    def header_table_size(self) -> int:
        """Our SETTINGS_HEADER_TABLE_SIZE: the table the peer may use."""
        return self._decoder.max_table_size

    @header_table_size.setter
    def header_table_size(self, size: int) -> None:
        self._decoder.max_table_size = size

    def receive(self, data: bytes | bytearray | memoryview) -> list[tuple[Any, ...]]:
        """Buffer data; the tuples of every frame now complete."""
        if self._error is not None:
            return [(ERROR, self._error)]
        events: list[tuple[Any, ...]] = []
        failed: Optional[str] = None
        try:
            frames = self._frames.receive(data)
        except H2FrameError as exc:
            frames = exc.frames  # type: ignore[assignment]
            failed = _FRAME_RULE[(exc.section, exc.message)]
        for frame in frames:
            kind = frame.type
            if kind == FrameType.DATA:
                flow = len(frame.data) + (frame.pad_length + 1 if frame.flags & Flag.PADDED else 0)
                events.append((DATA, frame.stream_id, bool(frame.flags & Flag.END_STREAM),
                               frame.data, flow))
            elif kind == FrameType.HEADERS:
                end = bool(frame.flags & Flag.END_STREAM)
                error = int(frame.error or 0)
                if frame.flags & Flag.END_HEADERS:
                    if len(frame.data) > DEFAULT_H2_MAX_FIELD_BLOCK:
                        return self._fail("field_block", events)
                    if not self._headers(frame.stream_id, end, error, frame.data, events):
                        return events
                else:
                    self._block = (frame.stream_id, end, error)
                    self._parts = [frame.data]
                    self._size = len(frame.data)
                    self._continuations = 0
            elif kind == FrameType.CONTINUATION:
                if self._block is None:
                    continue  # a PUSH_PROMISE's: the connection ends at the PUSH_PROMISE
                self._continuations += 1
                if self._continuations > H2_MAX_CONTINUATIONS:
                    return self._fail("continuations", events)
                self._size += len(frame.data)
                if self._size > DEFAULT_H2_MAX_FIELD_BLOCK:
                    return self._fail("continuation_block", events)
                self._parts.append(frame.data)
                if frame.flags & Flag.END_HEADERS:
                    stream_id, end, error = self._block
                    self._block = None
                    block = b"".join(self._parts)
                    self._parts = []
                    if not self._headers(stream_id, end, error, block, events):
                        return events
            elif kind == FrameType.PRIORITY:
                events.append((PRIORITY, frame.stream_id, frame.depends_on, frame.weight,
                               frame.exclusive, int(frame.error or 0)))
            elif kind == FrameType.RST_STREAM:
                events.append((RST_STREAM, frame.stream_id, frame.error_code))
            elif kind == FrameType.SETTINGS:
                events.append((SETTINGS, bool(frame.flags & Flag.ACK), frame.settings))
            elif kind == FrameType.PUSH_PROMISE:
                events.append((PUSH_PROMISE, frame.stream_id))
            elif kind == FrameType.PING:
                events.append((PING, bool(frame.flags & Flag.ACK), frame.data))
            elif kind == FrameType.GOAWAY:
                events.append((GOAWAY, frame.last_stream_id, frame.error_code, frame.data))
            elif kind == FrameType.WINDOW_UPDATE:
                events.append((WINDOW_UPDATE, frame.stream_id, frame.increment,
                               int(frame.error or 0)))
            else:
                events.append((UNKNOWN, int(kind)))
        if failed is not None:
            return self._fail(failed, events)
        return events

    def _headers(self, stream_id: int, end: bool, error: int, block: bytes,
                 events: list[tuple[Any, ...]]) -> bool:
        try:
            headers = self._decoder.decode(block)
        except HpackError as exc:
            self._fail(rule_of(exc), events)
            return False
        never = sum(1 for field in headers if type(field) is NeverIndexed)
        trailers = not headers or check_fields(headers, trailers=True) >= -1
        events.append((HEADERS, stream_id, end, headers, check_request(headers), trailers,
                       error, never))
        return True

    def _fail(self, rule: str, events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        self._error = rule
        events.append((ERROR, rule))
        return events
