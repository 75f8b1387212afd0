"""HTTP/1.1 heads and chunked bodies in pure Python (the reference twin).

Sans-IO and zero-copy in the picohttpparser manner: the caller owns the
buffer and the parsers return offsets into it. A head parser remembers how
far its search for the blank line got, so a head arriving a byte at a time
costs O(bytes), not O(bytes**2): bytes already searched are never searched
again. Errors are sticky: once a parser has raised, it raises the same
error until :meth:`reset`.
"""
from __future__ import annotations

import re
from typing import Optional, Union

from ... import limits
from ...errors import (HttpBodyTooLarge, HttpError, HttpHeadersTooLarge, HttpMalformed,
                       HttpRequestLineTooLong, HttpVersionNotSupported)
from ._common import HeaderSpans, RequestHead, ResponseHead, is_simple

__all__ = ["ChunkedDecoder", "RequestHeadParser", "ResponseHeadParser"]

Buffer = Union[bytes, bytearray, memoryview]

# RFC 9110 5.6.2: token = 1*tchar.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# A field: name ":" OWS value OWS; the value's characters are VCHAR,
# obs-text, and SP/HTAB inside it (RFC 9110 5.5). No space before the colon.
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[\x21-\x7e\x80-\xff]"
                    rb"(?:[\x20-\x7e\x80-\xff\t]*[\x21-\x7e\x80-\xff])?)?)[ \t]*")
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: ([\x20-\x7e\x80-\xff\t]*))?")
_H2_PREFACE = b"PRI * HTTP/2.0"
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[\x20-\x7e\x80-\xff\t]*)?")


def _fields(buf: Buffer, pos: int, end: int, max_fields: int,
            what: str) -> tuple[HeaderSpans, int]:
    """The field lines of buf[pos:end] (end is the blank line's CRLF):
    (name start, name end, value start, value end) each, and their count."""
    spans: HeaderSpans = []
    while pos < end:
        eol = buf.find(b"\r\n", pos, end + 2)  # type: ignore[union-attr]
        if buf[pos] in (0x20, 0x09):
            raise HttpMalformed(f"obs-fold (a {what} field line starting with whitespace) "
                                "is not accepted")
        match = _FIELD.fullmatch(buf, pos, eol)  # type: ignore[call-overload]
        if match is None:
            line = bytes(buf[pos:eol])
            if b":" in line and line.split(b":", 1)[0][-1:] in (b" ", b"\t"):
                raise HttpMalformed(f"whitespace between a {what} field name and its colon")
            raise HttpMalformed(f"malformed {what} field line {line[:64]!r}")
        if len(spans) == max_fields:
            raise HttpHeadersTooLarge(f"more than max_header_fields={max_fields} {what} fields")
        spans.append((match.start(1), match.end(1), match.start(2), match.end(2)))
        pos = eol + 2
    return spans, len(spans)


class _HeadParser:
    """What request and response heads share: finding the blank line
    incrementally within the limits, and the field lines."""

    _first_line_limit: Optional[int] = None

    def __init__(self, max_header_bytes: int, max_header_fields: int) -> None:
        if max_header_bytes < 4 or max_header_fields < 0:
            raise ValueError("max_header_bytes must be at least 4 and max_header_fields >= 0")
        self.max_header_bytes = max_header_bytes
        self.max_header_fields = max_header_fields
        self._searched = 0   # bytes after start known to hold no blank line
        self._line_seen = False  # the first line's CRLF has been found
        self.error: Optional[HttpError] = None

    def reset(self) -> None:
        """Forget the head in progress and any error: ready for the next head."""
        self._searched = 0
        self._line_seen = False
        self.error = None

    def _find(self, buf: Buffer, origin: int, start: int, end: int) -> int:
        """The offset just past the head's blank line, or -1 if the head is
        not complete yet; raises on a limit. The limits count from origin
        (empty lines skipped before the head count too)."""
        if self.error is not None:
            raise self.error
        try:
            return self._scan(buf, origin, start, end)
        except HttpError as error:
            self.error = error
            raise

    def _scan(self, buf: Buffer, origin: int, start: int, end: int) -> int:
        # Resume 3 bytes back: the CRLFCRLF may straddle the last stop.
        frm = start + max(0, self._searched - 3)  # relative to start: the caller may compact
        if not self._line_seen:
            eol = buf.find(b"\r\n", frm, end)  # type: ignore[union-attr]
            limit = self._first_line_limit
            if eol < 0:
                if limit is not None and end - origin > limit + 1:
                    raise HttpRequestLineTooLong(f"request line longer than "
                                                 f"max_request_line={limit}")
            else:
                if limit is not None and eol - origin > limit:
                    raise HttpRequestLineTooLong(f"request line of {eol - origin} bytes exceeds "
                                                 f"max_request_line={limit}")
                self._line_seen = True
                frm = eol
        found = buf.find(b"\r\n\r\n", frm, min(end, origin + self.max_header_bytes))  # type: ignore[union-attr]
        if found < 0:
            if end - origin >= self.max_header_bytes:
                raise HttpHeadersTooLarge(
                    f"head larger than max_header_bytes={self.max_header_bytes}")
            self._searched = end - start
            return -1
        return found + 4

    def _finish(self, buf: Buffer, line_end: int, head_end: int, what: str) -> HeaderSpans:
        try:
            spans, _ = _fields(buf, line_end + 2, head_end - 2, self.max_header_fields, what)
        except HttpError as error:
            self.error = error
            raise
        self._searched = 0
        self._line_seen = False
        return spans


class RequestHeadParser(_HeadParser):
    """Finds and parses one request head at ``buf[start:end]``.

    ``parse(buf, start)`` returns a :class:`RequestHead` (offsets into buf)
    once the whole head is there, None before; call it again with the same
    bytes at ``start`` followed by more. Limits: max_request_line (414),
    max_header_bytes and max_header_fields (431); malformed lines are 400,
    a major version other than 1 is 505. Empty lines before the request
    line are skipped (RFC 9112 2.2).
    """

    def __init__(self, max_request_line: int = limits.DEFAULT_HTTP_MAX_REQUEST_LINE,
                 max_header_bytes: int = limits.DEFAULT_HTTP_MAX_HEADER_BYTES,
                 max_header_fields: int = limits.DEFAULT_HTTP_MAX_HEADER_FIELDS) -> None:
        super().__init__(max_header_bytes, max_header_fields)
        if max_request_line < 1:
            raise ValueError("max_request_line must be at least 1")
        self.max_request_line = max_request_line
        self._first_line_limit = max_request_line

    def parse(self, buf: Buffer, start: int = 0, end: Optional[int] = None) -> Optional[RequestHead]:
        """The head at buf[start:end] once complete (None: more bytes needed)."""
        if end is None:
            end = len(buf)
        if not 0 <= start <= end <= len(buf):
            raise ValueError(f"start {start} and end {end} must fit the buffer ({len(buf)} bytes)")
        origin = start
        if self.error is None:
            while (start + 2 <= end and buf[start:start + 2] == b"\r\n"
                   and start - origin < self.max_request_line):
                start += 2  # skipped: the caller sees it in head.start
        head_end = self._find(buf, origin, start, end)
        if head_end < 0:
            return None
        line_end = buf.find(b"\r\n", start, head_end)  # type: ignore[union-attr]
        match = _REQUEST_LINE.fullmatch(buf, start, line_end)  # type: ignore[call-overload]
        if match is None or match.group(3) != b"1":
            self.error = self._bad_line(bytes(buf[start:line_end]), match)
            raise self.error
        spans = self._finish(buf, line_end, head_end, "header")
        return RequestHead(start, head_end, match.start(1), match.end(1), match.start(2),
                           match.end(2), int(match.group(4)), spans)

    def simple_requests(self, buf: Buffer, start: int = 0) -> tuple[list[int], int]:
        """The simple requests at the head of buf[start:] as one flat list of
        ints, and the offset just past the last: a bodiless HTTP/1.1 head
        with exactly one Host and no Connection, Expect, Upgrade,
        Content-Length or Transfer-Encoding field, which a server may answer
        without framing checks. Each is REQ_WORDS ints (end, method start,
        method end, target start, target end, field count) and then its
        field spans, 4 ints each. It stops before the first head that is
        incomplete, bad or not simple; each head is parsed afresh within
        this parser's limits, leaving its own state (a head in progress, a
        sticky error) as it was."""
        if not 0 <= start <= len(buf):
            raise ValueError(f"start {start} must fit the buffer ({len(buf)} bytes)")
        scratch = RequestHeadParser(self.max_request_line, self.max_header_bytes,
                                    self.max_header_fields)
        words: list[int] = []
        while start < len(buf):
            scratch.reset()
            try:
                head = scratch.parse(buf, start)
            except HttpError:
                break
            if head is None or head.minor != 1 or not is_simple(buf, head.headers):
                break
            words += (head.end, head.method_start, head.method_end, head.target_start,
                      head.target_end, len(head.headers))
            for span in head.headers:
                words += span
            start = head.end
        return words, start

    @staticmethod
    def _bad_line(line: bytes, match: Optional["re.Match[bytes]"]) -> HttpError:
        if line == _H2_PREFACE:
            return HttpMalformed("an HTTP/2 connection preface on an HTTP/1.1 port "
                                 "(HTTP/2 is not served here)")
        if match is not None:
            return HttpVersionNotSupported(f"HTTP version {match.group(3).decode()}."
                                           f"{match.group(4).decode()} is not supported")
        return HttpMalformed(f"malformed request line {line[:64]!r}")


class ResponseHeadParser(_HeadParser):
    """Finds and parses one response head (the client's side), as
    :class:`RequestHeadParser` does requests; returns a :class:`ResponseHead`."""

    def __init__(self, max_header_bytes: int = limits.DEFAULT_HTTP_MAX_HEADER_BYTES,
                 max_header_fields: int = limits.DEFAULT_HTTP_MAX_HEADER_FIELDS) -> None:
        super().__init__(max_header_bytes, max_header_fields)

    def parse(self, buf: Buffer, start: int = 0, end: Optional[int] = None) -> Optional[ResponseHead]:
        """The head at buf[start:end] once complete (None: more bytes needed)."""
        if end is None:
            end = len(buf)
        if not 0 <= start <= end <= len(buf):
            raise ValueError(f"start {start} and end {end} must fit the buffer ({len(buf)} bytes)")
        head_end = self._find(buf, start, start, end)
        if head_end < 0:
            return None
        line_end = buf.find(b"\r\n", start, head_end)  # type: ignore[union-attr]
        match = _STATUS_LINE.fullmatch(buf, start, line_end)  # type: ignore[call-overload]
        if match is None or match.group(1) != b"1":
            self.error = HttpMalformed(f"malformed status line {bytes(buf[start:line_end])[:64]!r}")
            raise self.error
        spans = self._finish(buf, line_end, head_end, "header")
        reason = match.span(4) if match.group(4) is not None else (line_end, line_end)
        return ResponseHead(start, head_end, int(match.group(2)), int(match.group(3)),
                            reason[0], reason[1], spans)


# The chunked decoder's states.
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """A chunked body (RFC 9112 7.1), incrementally.

    ``decode(buf, start, end)`` returns ``(spans, pos, done)``: the offsets
    ``(s, e)`` of the body's data in buf[start:pos], how far it consumed
    (the caller drops those bytes before the next call, or passes pos as
    the next start) and whether the body, its trailers included, has ended.
    The body's total is held to max_body (413); trailer fields are checked
    as header fields and held to max_trailer_bytes and max_fields (431),
    then dropped. Errors are sticky until :meth:`reset`.
    """

    def __init__(self, max_body: int = limits.DEFAULT_HTTP_MAX_BODY,
                 max_trailer_bytes: int = limits.DEFAULT_HTTP_MAX_HEADER_BYTES,
                 max_fields: int = limits.DEFAULT_HTTP_MAX_HEADER_FIELDS) -> None:
        self.max_body = max_body
        self.max_trailer_bytes = max_trailer_bytes
        self.max_fields = max_fields
        self.reset()

    def reset(self) -> None:
        """Ready for a new body."""
        self.state = _SIZE
        self.remaining = 0      # data bytes left in the current chunk
        self.total = 0          # data bytes of the body so far
        self.trailer_bytes = 0
        self.trailer_fields = 0
        self.error: Optional[HttpError] = None

    @property
    def done(self) -> bool:
        """The last chunk and the trailers have been read."""
        return self.state == _DONE

    @property
    def in_trailers(self) -> bool:
        """The last chunk has been read: what follows is trailer lines (or done)."""
        return self.state >= _TRAILER

    def decode(self, buf: Buffer, start: int = 0,
               end: Optional[int] = None) -> tuple[list[tuple[int, int]], int, bool]:
        """Decode what is complete of buf[start:end] (see the class)."""
        if self.error is not None:
            raise self.error
        if end is None:
            end = len(buf)
        if not 0 <= start <= end <= len(buf):
            raise ValueError(f"start {start} and end {end} must fit the buffer ({len(buf)} bytes)")
        try:
            return self._decode(buf, start, end)
        except HttpError as error:
            self.error = error
            raise

    def _line(self, buf: Buffer, pos: int, end: int, limit: int, what: str) -> int:
        eol = buf.find(b"\r\n", pos, min(end, pos + limit + 2))  # type: ignore[union-attr]
        if eol < 0 and end - pos >= limit + 2:
            error = HttpHeadersTooLarge if what == "trailer" else HttpMalformed
            raise error(f"{what} line longer than {limit} bytes")
        return eol

    def _decode(self, buf: Buffer, pos: int,
                end: int) -> tuple[list[tuple[int, int]], int, bool]:
        spans: list[tuple[int, int]] = []
        while pos < end or self.state == _DONE:
            state = self.state
            if state == _DONE:
                return spans, pos, True
            if state == _DATA:
                take = min(self.remaining, end - pos)
                spans.append((pos, pos + take))
                pos += take
                self.remaining -= take
                if self.remaining:
                    break
                self.state = _DATA_END
            elif state == _DATA_END:
                if end - pos < 2:
                    if buf[pos:end] not in (b"\r",):
                        raise HttpMalformed("a chunk's data is not followed by CRLF")
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise HttpMalformed("a chunk's data is not followed by CRLF")
                pos += 2
                self.state = _SIZE
            elif state == _SIZE:
                eol = self._line(buf, pos, end, limits.HTTP_MAX_CHUNK_LINE, "chunk-size")
                if eol < 0:
                    break
                match = _CHUNK_LINE.fullmatch(buf, pos, eol)  # type: ignore[call-overload]
                if match is None:
                    raise HttpMalformed(f"malformed chunk-size line {bytes(buf[pos:eol])[:64]!r}")
                size = int(match.group(1), 16)
                if self.total + size > self.max_body:
                    raise HttpBodyTooLarge(f"chunked body larger than max_body={self.max_body}")
                self.total += size
                pos = eol + 2
                if size:
                    self.remaining = size
                    self.state = _DATA
                else:
                    self.state = _TRAILER
            else:  # _TRAILER: field lines up to an empty line
                room = self.max_trailer_bytes - self.trailer_bytes
                eol = self._line(buf, pos, end, max(0, room - 2), "trailer")
                if eol < 0:
                    break
                self.trailer_bytes += eol + 2 - pos
                if eol == pos:
                    self.state = _DONE
                    pos += 2
                    continue
                if self.trailer_fields == self.max_fields:
                    raise HttpHeadersTooLarge(f"more than max_header_fields={self.max_fields} "
                                              "trailer fields")
                _fields(buf, pos, eol, 1, "trailer")
                self.trailer_fields += 1
                pos = eol + 2
        return spans, pos, self.state == _DONE
