"""HTTP/1.1 heads and chunked bodies over csrc/http1.c (see
fastnet.codec.http1.py, the reference: same API, limits and errors).

One C call per parse or decode: the C side finds the head's end where its
last search stopped, checks the whole head and writes the field spans into
an array this object owns; Python builds the offsets tuple from it.
"""
from __future__ import annotations

from typing import Optional, Union

from ... import limits, native
from ...errors import (HttpBodyTooLarge, HttpError, HttpHeadersTooLarge, HttpMalformed,
                       HttpRequestLineTooLong, HttpVersionNotSupported)
from ._common import REQ_WORDS, HeaderSpans, RequestHead, ResponseHead

__all__ = ["ChunkedDecoder", "RequestHeadParser", "ResponseHeadParser"]

lib = native.require()
ffi = native.ffi

Buffer = Union[bytes, bytearray, memoryview]

#: Data spans per C call of the chunked decoder (it is called again when full).
SPANS_PER_CALL = 64
#: Words a request parser's span array holds at least: its simple_requests
#: takes as many requests per C call as fit (it calls again when full).
SIMPLE_WORDS = 64

if lib.FN_HTTP1_REQ_WORDS != REQ_WORDS:
    raise ImportError("csrc/http1.h's FN_HTTP1_REQ_WORDS is not fastnet.codec.http1's REQ_WORDS")

_simple_requests = lib.fn_http1_simple_requests
_from_buffer = ffi.from_buffer


def _line(buf: Buffer, a: int, b: int) -> bytes:
    return bytes(buf[a:b])[:64]


def _error(code: int, buf: Buffer, a: int, b: int, what: str, owner: object) -> HttpError:
    """The exception of an FN_E_HTTP1_* code, worded as the Python twin words it."""
    if code == lib.FN_E_HTTP1_LINE_TOO_LONG:
        limit = getattr(owner, "max_request_line")
        if a:
            return HttpRequestLineTooLong(f"request line of {a} bytes exceeds "
                                          f"max_request_line={limit}")
        return HttpRequestLineTooLong(f"request line longer than max_request_line={limit}")
    if code == lib.FN_E_HTTP1_HEAD_TOO_LARGE:
        return HttpHeadersTooLarge("head larger than max_header_bytes="
                                   f"{getattr(owner, 'max_header_bytes')}")
    if code == lib.FN_E_HTTP1_TOO_MANY_FIELDS:
        return HttpHeadersTooLarge(f"more than max_header_fields="
                                   f"{getattr(owner, 'max_header_fields')} header fields")
    if code == lib.FN_E_HTTP1_BAD_REQUEST_LINE:
        return HttpMalformed(f"malformed request line {_line(buf, a, b)!r}")
    if code == lib.FN_E_HTTP1_H2_PREFACE:
        return HttpMalformed("an HTTP/2 connection preface on an HTTP/1.1 port "
                             "(HTTP/2 is not served here)")
    if code == lib.FN_E_HTTP1_VERSION:
        return HttpVersionNotSupported(f"HTTP version {chr(buf[a])}.{chr(buf[a + 2])} "
                                       "is not supported")
    if code == lib.FN_E_HTTP1_OBS_FOLD:
        return HttpMalformed(f"obs-fold (a {what} field line starting with whitespace) "
                             "is not accepted")
    if code == lib.FN_E_HTTP1_SPACE_BEFORE_COLON:
        return HttpMalformed(f"whitespace between a {what} field name and its colon")
    if code == lib.FN_E_HTTP1_BAD_FIELD:
        return HttpMalformed(f"malformed {what} field line {_line(buf, a, b)!r}")
    if code == lib.FN_E_HTTP1_BAD_STATUS_LINE:
        return HttpMalformed(f"malformed status line {_line(buf, a, b)!r}")
    if code == lib.FN_E_HTTP1_BAD_CHUNK_SIZE:
        return HttpMalformed(f"malformed chunk-size line {_line(buf, a, b)!r}")
    if code == lib.FN_E_HTTP1_CHUNK_LINE_TOO_LONG:
        return HttpMalformed(f"chunk-size line longer than {limits.HTTP_MAX_CHUNK_LINE} bytes")
    if code == lib.FN_E_HTTP1_NO_CHUNK_CRLF:
        return HttpMalformed("a chunk's data is not followed by CRLF")
    if code == lib.FN_E_HTTP1_BODY_TOO_LARGE:
        return HttpBodyTooLarge(f"chunked body larger than max_body={getattr(owner, 'max_body')}")
    if code == lib.FN_E_HTTP1_TRAILER_TOO_LARGE:
        return HttpHeadersTooLarge(f"trailer line longer than {a} bytes")
    if code == lib.FN_E_HTTP1_TOO_MANY_TRAILERS:
        return HttpHeadersTooLarge(f"more than max_header_fields={getattr(owner, 'max_fields')} "
                                   "trailer fields")
    raise AssertionError(f"unknown http1 status {code}")


class _HeadParser:
    def __init__(self, max_header_bytes: int, max_header_fields: int) -> None:
        if max_header_bytes < 4 or max_header_fields < 0:
            raise ValueError("max_header_bytes must be at least 4 and max_header_fields >= 0")
        self.max_header_bytes = max_header_bytes
        self.max_header_fields = max_header_fields
        self._st = ffi.new("fn_http1_head_state *")
        self._head = ffi.new("fn_http1_head *")
        # Field spans of a head; a request parser's simple_requests words.
        self._size = max(4 * max_header_fields + REQ_WORDS, SIMPLE_WORDS)
        self._fields = ffi.new("size_t[]", self._size)
        self._words = memoryview(ffi.buffer(self._fields)).cast("B").cast("N")  # type: ignore[call-overload]
        self.error: Optional[HttpError] = None

    def reset(self) -> None:
        """Forget the head in progress and any error: ready for the next head."""
        ffi.memmove(self._st, bytes(ffi.sizeof("fn_http1_head_state")),
                    ffi.sizeof("fn_http1_head_state"))
        self.error = None

    def _spans(self) -> HeaderSpans:
        f = self._fields
        return [(f[i], f[i + 1], f[i + 2], f[i + 3]) for i in range(0, 4 * self._head.nfields, 4)]

    def _raise(self, rc: int, buf: Buffer) -> None:
        if self.error is None:
            self.error = _error(rc, buf, self._st.err_a, self._st.err_b, "header", self)
        raise self.error


class RequestHeadParser(_HeadParser):
    """Finds and parses one request head (see fastnet.codec.http1.py)."""

    def __init__(self, max_request_line: int = limits.DEFAULT_HTTP_MAX_REQUEST_LINE,
                 max_header_bytes: int = limits.DEFAULT_HTTP_MAX_HEADER_BYTES,
                 max_header_fields: int = limits.DEFAULT_HTTP_MAX_HEADER_FIELDS) -> None:
        super().__init__(max_header_bytes, max_header_fields)
        if max_request_line < 1:
            raise ValueError("max_request_line must be at least 1")
        self.max_request_line = max_request_line
        self._batch = ffi.new("fn_http1_batch *", (max_request_line, max_header_bytes,
                                                   max_header_fields, self._fields, self._size))
        # simple_requests may have stopped for room once it wrote more words than this.
        self._full = self._size - REQ_WORDS - 4 * max_header_fields

    def parse(self, buf: Buffer, start: int = 0, end: Optional[int] = None) -> Optional[RequestHead]:
        """The head at buf[start:end] once complete (None: more bytes needed)."""
        if end is None:
            end = len(buf)
        if not 0 <= start <= end <= len(buf):
            raise ValueError(f"start {start} and end {end} must fit the buffer ({len(buf)} bytes)")
        rc = lib.fn_http1_parse_request(self._st, ffi.from_buffer(buf), start, end,
                                        self.max_request_line, self.max_header_bytes,
                                        self.max_header_fields, self._head, self._fields)
        if rc == lib.FN_HTTP1_NEED_MORE:
            return None
        if rc < 0:
            self._raise(rc, buf)
        h = self._head
        return RequestHead(h.start, h.end, h.a, h.b, h.c, h.d, h.minor, self._spans())


    def simple_requests(self, buf: Buffer, start: int = 0) -> tuple[list[int], int]:
        """The simple requests at the head of buf[start:] (see the Python
        twin): one C call, one list of ints."""
        end = len(buf)
        if not 0 <= start <= end:
            raise ValueError(f"start {start} must fit the buffer ({end} bytes)")
        batch = self._batch
        data = buf if type(buf) is bytes else _from_buffer(buf)
        n = _simple_requests(data, start, end, batch)
        if not n:
            return [], start
        out = self._words[:n].tolist()
        while n > self._full and batch.pos < end:  # it stopped for room: on from there
            n = _simple_requests(data, batch.pos, end, batch)
            out += self._words[:n].tolist()
        return out, batch.pos


class ResponseHeadParser(_HeadParser):
    """Finds and parses one response head (see fastnet.codec.http1.py)."""

    def __init__(self, max_header_bytes: int = limits.DEFAULT_HTTP_MAX_HEADER_BYTES,
                 max_header_fields: int = limits.DEFAULT_HTTP_MAX_HEADER_FIELDS) -> None:
        super().__init__(max_header_bytes, max_header_fields)

    def parse(self, buf: Buffer, start: int = 0, end: Optional[int] = None) -> Optional[ResponseHead]:
        """The head at buf[start:end] once complete (None: more bytes needed)."""
        if end is None:
            end = len(buf)
        if not 0 <= start <= end <= len(buf):
            raise ValueError(f"start {start} and end {end} must fit the buffer ({len(buf)} bytes)")
        rc = lib.fn_http1_parse_response(self._st, ffi.from_buffer(buf), start, end,
                                         self.max_header_bytes, self.max_header_fields,
                                         self._head, self._fields)
        if rc == lib.FN_HTTP1_NEED_MORE:
            return None
        if rc < 0:
            self._raise(rc, buf)
        h = self._head
        return ResponseHead(h.start, h.end, h.minor, h.status, h.a, h.b, self._spans())


class ChunkedDecoder:
    """A chunked body, incrementally (see fastnet.codec.http1.py)."""

    def __init__(self, max_body: int = limits.DEFAULT_HTTP_MAX_BODY,
                 max_trailer_bytes: int = limits.DEFAULT_HTTP_MAX_HEADER_BYTES,
                 max_fields: int = limits.DEFAULT_HTTP_MAX_HEADER_FIELDS) -> None:
        self.max_body = max_body
        self.max_trailer_bytes = max_trailer_bytes
        self.max_fields = max_fields
        self._ch = ffi.new("fn_http1_chunked *")
        self._spans = ffi.new("size_t[]", 2 * SPANS_PER_CALL)
        self._n = ffi.new("size_t *")
        self._pos = ffi.new("size_t *")
        self.error: Optional[HttpError] = None

    def reset(self) -> None:
        """Ready for a new body."""
        ffi.memmove(self._ch, bytes(ffi.sizeof("fn_http1_chunked")), ffi.sizeof("fn_http1_chunked"))
        self.error = None

    @property
    def done(self) -> bool:
        """The last chunk and the trailers have been read."""
        return bool(self._ch.state == lib.FN_HTTP1_CHUNKED_DONE)

    @property
    def in_trailers(self) -> bool:
        """The last chunk has been read: what follows is trailer lines (or done)."""
        return bool(self._ch.state >= lib.FN_HTTP1_CHUNKED_TRAILERS)

    @property
    def total(self) -> int:
        """Data bytes of the body so far."""
        return int(self._ch.total)

    def decode(self, buf: Buffer, start: int = 0,
               end: Optional[int] = None) -> tuple[list[tuple[int, int]], int, bool]:
        """Decode what is complete of buf[start:end] (see the Python twin)."""
        if self.error is not None:
            raise self.error
        if end is None:
            end = len(buf)
        if not 0 <= start <= end <= len(buf):
            raise ValueError(f"start {start} and end {end} must fit the buffer ({len(buf)} bytes)")
        # Released before returning or raising: a bytearray the caller
        # resizes next must not be held by a view (BufferError).
        with ffi.from_buffer(buf) as view:
            return self._decode(buf, view, start, end)

    def _decode(self, buf: Buffer, view: object, start: int,
                end: int) -> tuple[list[tuple[int, int]], int, bool]:
        out: list[tuple[int, int]] = []
        pos = start
        sp, n_ptr, pos_ptr = self._spans, self._n, self._pos
        while True:
            rc = lib.fn_http1_chunked_decode(self._ch, view, pos, end, self.max_body,
                                             self.max_trailer_bytes, self.max_fields,
                                             limits.HTTP_MAX_CHUNK_LINE, sp, SPANS_PER_CALL,
                                             n_ptr, pos_ptr)
            if rc < 0:
                self.error = _error(rc, buf, self._ch.err_a, self._ch.err_b, "trailer", self)
                raise self.error
            n = n_ptr[0]
            out += [(sp[2 * i], sp[2 * i + 1]) for i in range(n)]
            pos = pos_ptr[0]
            if rc == lib.FN_HTTP1_DONE or n < SPANS_PER_CALL:
                return out, pos, rc == lib.FN_HTTP1_DONE
