"""RESP (the Redis protocol) in pure Python: the reference for csrc/resp.c.

RespRequestDecoder parses requests as redis-server 7 does
(src/networking.c: processMultibulkBuffer, processInlineBuffer; src/sds.c:
sdssplitargs), byte for byte, including what Redis tolerates:

* the two bytes after a bulk argument and the byte after the "\\r" of a
  "*<count>" or "$<length>" line are skipped unread (Redis never checks
  that they are "\\r\\n");
* Redis finds delimiters with strchr(), which stops at a NUL byte: a NUL
  before the delimiter of an inline line or of a count line means the
  delimiter is never found, and the request waits until its bytes exceed
  the inline limit ("too big ... request/string");
* an empty line, a blank inline line and ``*0``/``*-N`` are skipped.

One deliberate difference: Redis checks the inline limit only while a line's
delimiter is missing, so whether it accepts a line longer than the limit
depends on how its reads split the input (a 70,000-byte line arriving in one
read passes; byte by byte it fails). Here a line longer than the limit fails
however the input is split, which is what Redis does when bytes trickle in.

RespReplyDecoder parses RESP2 and RESP3 replies (client side); see
fastnet.codec.resp._common for the values it returns and the error texts.

Both keep their state across feeds: a bulk arriving in many reads is never
rescanned, a line's delimiter search resumes where it stopped, and the
arguments (or reply elements) parsed so far are kept, so parsing is
O(bytes read). A declared count or length is never used to preallocate.
"""
from __future__ import annotations

import re
from typing import Callable

from ...limits import (
    DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
    DEFAULT_RESP_MAX_BULK_LEN,
    DEFAULT_RESP_MAX_DEPTH,
    DEFAULT_RESP_MAX_INLINE_LEN,
    DEFAULT_RESP_MAX_LINE_LEN,
    DEFAULT_RESP_MAX_MULTIBULK_LEN,
    RESP_MAX_BIG_NUMBER_DIGITS,
    RESP_MAX_DOUBLE_LEN,
)
from ...errors import ClientQueryBufferLimit, RespProtocolError
from . import _common as _resp
from .._common import byte_view, check_limit
from ._common import (
    INT_MAX,
    MAX_PAIRS,
    BIG_NUMBER_RE,
    DOUBLE_RE,
    LONG_STR_MAX,
    NEED_DATA,
    Assembler,
    BigNumber,
    Kind,
    Push,
    RequestDecoderBase,
    ReplyDecoderBase,
    RespError,
    Verbatim,
    string2ll,
)
from . import _encode
from ._encode import *  # noqa: F403 (the encoders: one set, see _encode.__all__)

__all__ = [
    "NEED_DATA",
    "BigNumber",
    "Push",
    "RespError",
    "RespReplyDecoder",
    "RespRequestDecoder",
    "Verbatim",
    "encode_bulk_array",
] + _encode.__all__


def encode_bulk_array(items: list[bytes]) -> bytes:
    """An array of bulk strings (the same bytes in RESP2 and RESP3), in one
    join: encode_array's per-item type dispatch is most of LRANGE's cost.
    The C twin writes the headers in C."""
    return b"*%d\r\n" % len(items) + b"".join([b"$%d\r\n%s\r\n" % (len(item), item) for item in items])

# --- requests -----------------------------------------------------------------

_NONE, _INLINE, _MULTIBULK = 0, 1, 2

#: isspace() in the C locale: what sdssplitargs skips between arguments.
_BLANKS = b" \t\n\v\f\r"
#: What ends an unquoted argument (sdssplitargs: not "\v" or "\f").
_ENDS_ARG = b" \n\r\t"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("a"): 0x07}
#: Lines without these bytes split exactly like bytes.split().
_NEEDS_SDSSPLITARGS = re.compile(rb"[\"'\v\f]")


def split_args(line: bytes) -> list[bytes] | None:
    """sdssplitargs(): the arguments of an inline request line, or None for
    unbalanced quotes (also: a closing quote followed by neither a blank
    nor the end of the line). The line holds no NUL and no final "\\r\\n".
    """
    if not _NEEDS_SDSSPLITARGS.search(line):
        return line.split()
    args: list[bytes] = []
    n = len(line)

    def at(i: int) -> int:  # the byte at i; 0 past the end, like C's NUL
        return line[i] if i < n else 0

    p = 0
    while True:
        while p < n and line[p] in _BLANKS:
            p += 1
        if p == n:
            return args
        current = bytearray()
        in_double = in_single = done = False
        while not done:
            c = at(p)
            if in_double:
                if c == 0x5C and at(p + 1) == 0x78 and at(p + 2) in _HEX_DIGITS and at(p + 3) in _HEX_DIGITS:
                    current.append(int(line[p + 2 : p + 4], 16))  # \xHH
                    p += 3
                elif c == 0x5C and at(p + 1):
                    p += 1
                    current.append(_ESCAPES.get(line[p], line[p]))
                elif c == 0x22:
                    if at(p + 1) and at(p + 1) not in _BLANKS:
                        return None
                    done = True
                elif c == 0:
                    return None
                else:
                    current.append(c)
            elif in_single:
                if c == 0x5C and at(p + 1) == 0x27:
                    p += 1
                    current.append(0x27)
                elif c == 0x27:
                    if at(p + 1) and at(p + 1) not in _BLANKS:
                        return None
                    done = True
                elif c == 0:
                    return None
                else:
                    current.append(c)
            elif c == 0 or c in _ENDS_ARG:
                done = True
            elif c == 0x22:
                in_double = True
            elif c == 0x27:
                in_single = True
            else:
                current.append(c)
            if p < n:
                p += 1
        args.append(bytes(current))


class _Fail(Exception):
    """Internal: a protocol error found while scanning (carries the text,
    and the exception class when it is not RespProtocolError)."""


class _Buffer:
    """The input side both decoders share: a bytearray that starts at the
    message in progress (each decoder defines _clear_state for the rest)."""

    _buf: bytearray
    _error: str | None
    _clear_state: Callable[[], None]
    _reset_queue: Callable[[], None]

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet decoded into complete messages."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data; discarded after a protocol error."""
        view = byte_view(data)
        if self._error is None:
            self._buf += view

    def reset(self) -> None:
        """Forget buffered bytes, the message in progress and any error."""
        self._buf.clear()
        self._clear_state()
        self._reset_queue()


class RespRequestDecoder(_Buffer, RequestDecoderBase):
    """Redis requests (multibulk and inline) -> lists of arguments.

    Limits (defaults from fastnet.limits, Redis's own): max_bulk_len is the
    longest argument a multibulk request may declare ("invalid bulk length"
    above it), max_multibulk_len the most arguments (at most INT_MAX;
    "invalid multibulk length" above it), max_inline_len the longest inline
    line or "*"/"$" line before its delimiter ("too big ..."),
    client_query_buffer_limit the most memory one command may hold
    (ClientQueryBufferLimit above it; fastnet.limits says how it is counted).
    """

    def __init__(
        self,
        max_bulk_len: int = DEFAULT_RESP_MAX_BULK_LEN,
        max_multibulk_len: int = DEFAULT_RESP_MAX_MULTIBULK_LEN,
        max_inline_len: int = DEFAULT_RESP_MAX_INLINE_LEN,
        client_query_buffer_limit: int = DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
    ) -> None:
        super().__init__()
        self.max_bulk_len = check_limit(max_bulk_len, "max_bulk_len", INT_MAX)
        self.max_multibulk_len = check_limit(max_multibulk_len, "max_multibulk_len", INT_MAX)
        self.max_inline_len = check_limit(max_inline_len, "max_inline_len")
        self.client_query_buffer_limit = check_limit(
            client_query_buffer_limit, "client_query_buffer_limit")
        self._buf = bytearray()  # starts at the command in progress
        self._clear_state()

    def _clear_state(self) -> None:
        self._start = 0  # the first byte of the command in progress
        self._pos = 0  # next byte to parse
        self._scan = 0  # where the current line's delimiter search resumes
        self._mode = _NONE
        self._stuck = False  # a NUL hides the current line's delimiter
        self._left = 0  # multibulk: arguments still to come
        self._bulk = -1  # multibulk: the awaited argument's length, -1 before its "$" line
        self._args: list[bytes] = []

    def _decode(self) -> list[list[bytes]]:
        buf = self._buf
        commands: list[list[bytes]] = []
        done = 0  # bytes of complete (or skipped) commands
        try:
            while True:
                if self._mode == _NONE:
                    if self._pos == len(buf):
                        break
                    self._mode = _MULTIBULK if buf[self._pos] == 0x2A else _INLINE
                    self._start = self._pos
                command = self._inline() if self._mode == _INLINE else self._multibulk()
                if command is None:
                    break
                self._mode = _NONE
                done = self._scan = self._pos
                if command:
                    commands.append(command)
        except _Fail as exc:
            self._error = exc.args[0]
            self._error_class = exc.args[1] if len(exc.args) > 1 else RespProtocolError
        if done:
            del buf[:done]
            self._start -= done
            self._pos -= done
            self._scan -= done
        return commands

    def _check_query(self, tokens: int) -> None:
        """A part of the command (count line, argument, inline line) is
        complete: fail if the command now holds more than the limit, counted
        as the C twin holds it (its bytes, 8 per token)."""
        limit = self.client_query_buffer_limit
        if self._pos - self._start + 8 * tokens > limit:
            raise _Fail(_resp.query_buffer_limit(limit), ClientQueryBufferLimit)

    def _find(self, delimiter: bytes, message: str) -> int:
        """The index of the current line's delimiter, or -1 while it has not
        arrived. strchr() semantics: a NUL before it hides it for good.
        Raises when the line is longer than max_inline_len."""
        buf = self._buf
        found = -1
        if not self._stuck:
            found = buf.find(delimiter, self._scan)
            if buf.find(0, self._scan, len(buf) if found < 0 else found) >= 0:
                self._stuck = True
                found = -1
        if found < 0:
            self._scan = len(buf)
            if len(buf) - self._pos > self.max_inline_len:
                raise _Fail(message)
            return -1
        if found - self._pos > self.max_inline_len:
            raise _Fail(message)
        self._scan = found
        return found

    def _inline(self) -> list[bytes] | None:
        newline = self._find(b"\n", _resp.TOO_BIG_INLINE)
        if newline < 0:
            return None
        buf = self._buf
        start = self._pos
        end = newline - 1 if newline > start and buf[newline - 1] == 0x0D else newline
        args = split_args(bytes(buf[start:end]))
        if args is None:
            raise _Fail(_resp.UNBALANCED_QUOTES)
        self._pos = newline + 1
        self._check_query(1 + 2 * len(args) if args else 0)
        return args

    def _count_line(self, message: str) -> tuple[int, bytes, int] | None:
        """A "*<count>" or "$<length>" line: (its first byte, the bytes
        between that and the "\\r", where the next line starts), or None
        until the byte after the "\\r" has arrived (Redis skips it unread)."""
        buf = self._buf
        cr = self._find(b"\r", message)
        if cr < 0 or cr + 1 == len(buf):
            return None
        return buf[self._pos], bytes(buf[self._pos + 1 : cr]), cr + 2

    def _multibulk(self) -> list[bytes] | None:
        buf = self._buf
        if self._left == 0:
            line = self._count_line(_resp.TOO_BIG_MBULK_COUNT)
            if line is None:
                return None
            _, digits, self._pos = line
            count = string2ll(digits)
            if count is None or count > self.max_multibulk_len:
                raise _Fail(_resp.INVALID_MULTIBULK_LEN)
            self._scan = self._pos
            if count <= 0:
                self._check_query(0)
                return []
            self._left = count
            self._check_query(1)
        while self._left:
            if self._bulk < 0:
                line = self._count_line(_resp.TOO_BIG_BULK_COUNT)
                if line is None:
                    return None
                first, digits, after = line
                if first != 0x24:
                    raise _Fail(_resp.expected_dollar(first))
                length = string2ll(digits)
                if length is None or length < 0 or length > self.max_bulk_len:
                    raise _Fail(_resp.INVALID_BULK_LEN)
                self._pos = self._scan = after
                self._bulk = length
            end = self._pos + self._bulk
            if len(buf) < end + 2:  # the argument and the two bytes after it
                return None
            self._args.append(bytes(buf[self._pos : end]))
            self._pos = self._scan = end + 2
            self._bulk = -1
            self._left -= 1
            self._check_query(1 + 2 * len(self._args))
        args, self._args = self._args, []
        return args


# --- replies ----------------------------------------------------------------

#: The longest content each line type can have; longer fails at once, with
#: the type's own message, without waiting for the rest of the line. None:
#: max_line_len applies (and the message names it).
_LINE_LIMITS: dict[int, tuple[int | None, str]] = {
    0x2B: (None, ""),  # + simple string
    0x2D: (None, ""),  # - error
    0x3A: (LONG_STR_MAX, _resp.BAD_INTEGER),  # :
    0x2C: (RESP_MAX_DOUBLE_LEN, _resp.BAD_DOUBLE),  # ,
    0x23: (1, _resp.BAD_BOOL),  # #
    0x5F: (0, _resp.BAD_NULL),  # _
    0x28: (RESP_MAX_BIG_NUMBER_DIGITS + 1, _resp.BAD_BIG_NUMBER),  # ( sign + digits
    0x24: (LONG_STR_MAX, _resp.BAD_BULK_LEN),  # $
    0x21: (LONG_STR_MAX, _resp.BAD_BULK_LEN),  # ! blob error
    0x3D: (LONG_STR_MAX, _resp.BAD_BULK_LEN),  # = verbatim
    **{int(kind): (LONG_STR_MAX, _resp.BAD_COUNT) for kind in Kind},
}


class RespReplyDecoder(_Buffer, ReplyDecoderBase):
    """Redis replies, RESP2 and RESP3 -> Python values (fastnet.codec.resp._common).

    Limits (defaults from fastnet.limits): max_bulk_len (bulk, blob error and
    verbatim strings), max_multibulk_len (elements, or pairs, an aggregate
    may declare), max_line_len (simple strings and errors), max_depth (most
    aggregates open at once, attributes included). A bulk string must be
    followed by "\\r\\n". RESP3 streamed strings and aggregates ("$?") are
    not supported: Redis never sends them.
    """

    def __init__(
        self,
        max_bulk_len: int = DEFAULT_RESP_MAX_BULK_LEN,
        max_multibulk_len: int = DEFAULT_RESP_MAX_MULTIBULK_LEN,
        max_line_len: int = DEFAULT_RESP_MAX_LINE_LEN,
        max_depth: int = DEFAULT_RESP_MAX_DEPTH,
    ) -> None:
        super().__init__()
        self.max_bulk_len = check_limit(max_bulk_len, "max_bulk_len")
        self.max_multibulk_len = check_limit(max_multibulk_len, "max_multibulk_len", MAX_PAIRS)
        self.max_line_len = check_limit(max_line_len, "max_line_len")
        self.max_depth = check_limit(max_depth, "max_depth", INT_MAX)
        self._buf = bytearray()  # starts at the reply in progress
        self._clear_state()

    def _clear_state(self) -> None:
        self._pos = 0  # next byte to parse
        self._scan = 0  # where the current line's "\r\n" search resumes
        self._body: tuple[int, int] | None = None  # (type byte, length) of an awaited bulk
        self._assembler = Assembler()

    def _decode(self) -> list[object]:
        replies: list[object] = []
        done = 0  # bytes of complete replies
        try:
            while True:
                value = self._element()
                if value is _MORE:
                    break
                if value is not NEED_DATA:
                    replies.append(value)
                    done = self._pos
        except _Fail as exc:
            self._error = exc.args[0]
        if done:
            del self._buf[:done]
            self._pos -= done
            self._scan -= done
        return replies

    def _line(self) -> tuple[int, bytes] | None:
        """(type byte, content) of the line at _pos, or None until its "\\r\\n"."""
        buf = self._buf
        pos = self._pos
        kind = buf[pos]
        if kind not in _LINE_LIMITS:
            raise _Fail(_resp.bad_type_byte(kind))
        limit, message = _LINE_LIMITS[kind]
        if limit is None:
            limit = self.max_line_len
        end = buf.find(b"\r\n", max(self._scan, pos + 1))
        if end < 0:
            # Must be O(bytes read): resume at the last byte, a possible "\r".
            self._scan = max(len(buf) - 1, pos + 1)
            content = len(buf) - pos - 1 - (buf[-1] == 0x0D)
        else:
            content = end - pos - 1
        if content > limit:
            raise _Fail(message or _resp.line_too_long(limit))
        if end < 0:
            return None
        self._pos = self._scan = end + 2
        return kind, bytes(buf[pos + 1 : end])

    def _element(self) -> object:
        """Parse one element: the finished reply, NEED_DATA if the reply
        goes on, or _MORE when the element's bytes have not all arrived."""
        if self._body is None:
            if self._pos == len(self._buf):
                return _MORE
            line = self._line()
            if line is None:
                return _MORE
            kind, content = line
            handler = _SCALARS.get(kind)
            if handler is not None:
                return self._assembler.add(handler(content))
            if kind in _AGGREGATE_BYTES:
                return self._open(kind, content)
            length = string2ll(content)
            if length == -1 and kind == 0x24:
                return self._assembler.add(None)  # $-1: the RESP2 null bulk
            if length is None or length < 0:
                raise _Fail(_resp.BAD_BULK_LEN)
            if length > self.max_bulk_len:
                raise _Fail(_resp.bulk_too_long(self.max_bulk_len))
            self._body = (kind, length)
        kind, length = self._body
        buf = self._buf
        start = self._pos
        if len(buf) - start < length + 2:
            return _MORE
        if buf[start + length : start + length + 2] != b"\r\n":
            raise _Fail(_resp.MISSING_CRLF)
        data = bytes(buf[start : start + length])
        self._pos = self._scan = start + length + 2
        self._body = None
        if kind == 0x24:
            return self._assembler.add(data)
        if kind == 0x21:
            return self._assembler.add(RespError(data))
        if length < 4 or data[3] != 0x3A:
            raise _Fail(_resp.BAD_VERBATIM)
        return self._assembler.add(Verbatim(data[:3], data[4:]))

    def _open(self, kind: int, content: bytes) -> object:
        count = string2ll(content)
        if count == -1 and kind == Kind.ARRAY:
            return self._assembler.add(None)  # *-1: the RESP2 null array
        if count is None or count < 0:
            raise _Fail(_resp.BAD_COUNT)
        if count > self.max_multibulk_len:
            raise _Fail(_resp.count_too_big(self.max_multibulk_len))
        if len(self._assembler.stack) >= self.max_depth:
            raise _Fail(_resp.too_deep(self.max_depth))
        pairs = kind in (Kind.MAP, Kind.ATTRIBUTE)
        return self._assembler.open(kind, 2 * count if pairs else count)


#: _element(): the element's bytes have not all arrived.
_MORE = object()
_AGGREGATE_BYTES = frozenset(int(kind) for kind in Kind)


def _integer(content: bytes) -> int:
    value = string2ll(content)
    if value is None:
        raise _Fail(_resp.BAD_INTEGER)
    return value


def _double(content: bytes) -> float:
    if not DOUBLE_RE.fullmatch(content):
        raise _Fail(_resp.BAD_DOUBLE)
    return float(content)


def _boolean(content: bytes) -> bool:
    if content == b"t":
        return True
    if content == b"f":
        return False
    raise _Fail(_resp.BAD_BOOL)


def _null(content: bytes) -> None:
    if content:
        raise _Fail(_resp.BAD_NULL)


def _big_number(content: bytes) -> BigNumber:
    digits = len(content) - (content[:1] in (b"+", b"-"))
    if not BIG_NUMBER_RE.fullmatch(content) or digits > RESP_MAX_BIG_NUMBER_DIGITS:
        raise _Fail(_resp.BAD_BIG_NUMBER)
    return BigNumber(content)


#: Line types that are a whole value: type byte -> content -> value.
_SCALARS: dict[int, Callable[[bytes], object]] = {
    0x2B: bytes,
    0x2D: RespError,
    0x3A: _integer,
    0x2C: _double,
    0x23: _boolean,
    0x5F: _null,
    0x28: _big_number,
}
