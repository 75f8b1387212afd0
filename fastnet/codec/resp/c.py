"""RESP over csrc/resp.c (see fastnet.codec.resp.py for the reference).

The boundary (ARCHITECTURE.md: cffi cannot build Python objects from C): C scans
every complete message buffered into a flat token array; what crosses
depends on what Python must build from it.

Requests (the server's hot path) cross as a marshal stream: C writes the
batch's commands in CPython's marshal format (a list of lists of bytes,
fn_resp_req_marshal) and ``marshal.loads`` builds every object in
CPython's own C code. Per batch: parse, marshal, one buffer, one loads;
nothing per command or argument in Python. Measured on pipelined SETs, this
is several times cheaper than walking the tokens in Python (about 450 ns
per command, nearly all of it the walk's slicing and list building); the
price is one more memcpy of the arguments, and a 32-bit size per argument,
which is why a request's max_bulk_len stops at 2 GiB - 1.

Replies (the client side) are (type byte, a, b) token triples in
pre-order, walked in Python once per batch and assembled by the shared
fastnet.codec.resp._common.Assembler, so both twins build values the same way.
bench/resp_boundary.py measures the C and the Python twin.
"""
from __future__ import annotations

import marshal
from array import array
from typing import Any

from ... import native
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
from ...errors import ClientQueryBufferLimit
from . import _common as _resp
from .._common import byte_view, check_limit
from ._common import (
    INT_MAX,
    MAX_PAIRS,
    NEED_DATA,
    Assembler,
    BigNumber,
    Push,
    RequestDecoderBase,
    ReplyDecoderBase,
    RespError,
    Verbatim,
)
# Encoding has no C hot path: both twins share the Python encoders.
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

lib = native.require()
ffi = native.ffi
#: fn_resp_bulk_array() writes every byte of its output: no need to clear it.
_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def encode_bulk_array(items: list[bytes]) -> bytes:
    """An array of bulk strings (the same bytes in RESP2 and RESP3): the
    items joined once in Python, the headers written around them in C
    (fn_resp_bulk_array), a few times faster than formatting one header
    per item in Python once an array has more than a few elements."""
    data = b"".join(items)
    lens = array("Q", map(len, items))
    n = len(lens)
    cap = lib.fn_resp_bulk_array_cap(n, len(data))
    out = _uncleared("char[]", cap)
    written = lib.fn_resp_bulk_array(data, len(data), ffi.from_buffer("uint64_t[]", lens), n, out, cap)
    if written < 0:  # the lengths come from the items themselves: cannot happen
        raise RuntimeError(f"fn_resp_bulk_array failed ({written})")
    return ffi.buffer(out, written)[:]

#: fn_resp_*_parse() error codes -> the message (a function of the parser
#: for the codes whose text carries a detail).
_MESSAGES: dict[int, Any] = {
    lib.FN_E_RESP_MULTIBULK_LEN: _resp.INVALID_MULTIBULK_LEN,
    lib.FN_E_RESP_BULK_LEN: _resp.INVALID_BULK_LEN,
    lib.FN_E_RESP_INLINE_TOO_BIG: _resp.TOO_BIG_INLINE,
    lib.FN_E_RESP_MBULK_COUNT_TOO_BIG: _resp.TOO_BIG_MBULK_COUNT,
    lib.FN_E_RESP_BULK_COUNT_TOO_BIG: _resp.TOO_BIG_BULK_COUNT,
    lib.FN_E_RESP_UNBALANCED: _resp.UNBALANCED_QUOTES,
    lib.FN_E_RESP_EXPECTED_DOLLAR: lambda d: _resp.expected_dollar(d._error_value()),
    lib.FN_E_RESP_TYPE_BYTE: lambda d: _resp.bad_type_byte(d._error_value()),
    lib.FN_E_RESP_INTEGER: _resp.BAD_INTEGER,
    lib.FN_E_RESP_BULK: _resp.BAD_BULK_LEN,
    lib.FN_E_RESP_BULK_RANGE: lambda d: _resp.bulk_too_long(d.max_bulk_len),
    lib.FN_E_RESP_COUNT: _resp.BAD_COUNT,
    lib.FN_E_RESP_COUNT_RANGE: lambda d: _resp.count_too_big(d.max_multibulk_len),
    lib.FN_E_RESP_DOUBLE: _resp.BAD_DOUBLE,
    lib.FN_E_RESP_BOOL: _resp.BAD_BOOL,
    lib.FN_E_RESP_NULL: _resp.BAD_NULL,
    lib.FN_E_RESP_BIG_NUMBER: _resp.BAD_BIG_NUMBER,
    lib.FN_E_RESP_VERBATIM: _resp.BAD_VERBATIM,
    lib.FN_E_RESP_CRLF: _resp.MISSING_CRLF,
    lib.FN_E_RESP_DEPTH: lambda d: _resp.too_deep(d.max_depth),
    lib.FN_E_RESP_LINE: lambda d: _resp.line_too_long(d.max_line_len),
    lib.FN_E_RESP_QUERY_BUFFER: lambda d: _resp.query_buffer_limit(d.client_query_buffer_limit),
}


def _limits(**values: int) -> Any:
    """An fn_resp_limits with the given fields (the others 0)."""
    return ffi.new("fn_resp_limits *", values)


def _fail(decoder: Any, rc: int, items: list[Any]) -> None:
    """Record parse's error code rc. Out of memory is no protocol error: the
    items decoded before it are queued and MemoryError is raised (and, C's
    error being sticky, raised again until reset)."""
    if rc == lib.FN_E_NOMEM:
        decoder._ready.extend(items)
        items.clear()
        raise MemoryError("fn_resp: out of memory")
    message = _MESSAGES[rc]
    decoder._error = message if isinstance(message, str) else message(decoder)
    if rc == lib.FN_E_RESP_QUERY_BUFFER:
        decoder._error_class = ClientQueryBufferLimit


class RespRequestDecoder(RequestDecoderBase):
    """Redis requests (multibulk and inline) -> lists of arguments.

    Same contract, limits and errors as fastnet.codec.resp.py.RespRequestDecoder.
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
        limits = _limits(max_bulk=max_bulk_len, max_count=max_multibulk_len,
                         max_line=max_inline_len, max_query=client_query_buffer_limit)
        parser = lib.fn_resp_req_new(limits)
        if parser == ffi.NULL:
            raise MemoryError("fn_resp_req_new failed")
        self._p: Any = ffi.gc(parser, lib.fn_resp_req_free)
        self._size: Any = ffi.new("size_t *")

    def _error_value(self) -> int:
        return lib.fn_resp_req_error_value(self._p)

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet decoded into complete commands."""
        return lib.fn_resp_req_buffered(self._p)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data; discarded after a protocol error."""
        view = byte_view(data)
        if lib.fn_resp_req_feed(self._p, ffi.from_buffer(view), len(view)) != 0:
            raise MemoryError("fn_resp_req_feed: out of memory")

    def reset(self) -> None:
        """Forget buffered bytes, the command in progress and any error."""
        lib.fn_resp_req_reset(self._p)
        self._reset_queue()

    def feed_commands(self, data: bytes | bytearray | memoryview) -> list[list[bytes]]:
        """feed(data), then commands(): one crossing into C per read."""
        if self._ready or self._error is not None:
            return super().feed_commands(data)
        p = self._p
        if type(data) is bytes:
            rc = lib.fn_resp_req_feed_parse(p, data, len(data))
        else:
            view = byte_view(data)
            rc = lib.fn_resp_req_feed_parse(p, ffi.from_buffer(view), len(view))
        out = lib.fn_resp_req_output(p, self._size)
        size = self._size[0]
        commands = marshal.loads(ffi.buffer(out, size)) if size else []
        if rc:
            _fail(self, rc, commands)
            if not commands:
                raise self._error_class(self._error)
        return commands

    def _decode(self) -> list[list[bytes]]:
        p = self._p
        rc = lib.fn_resp_req_parse(p)
        commands: list[list[bytes]] = []
        if lib.fn_resp_req_done_tokens(p):
            size = self._size
            stream = lib.fn_resp_req_marshal(p, size)
            if stream == ffi.NULL:
                raise MemoryError("fn_resp_req_marshal: out of memory")
            commands = marshal.loads(ffi.buffer(stream, size[0]))
        if rc:
            _fail(self, rc, commands)
        return commands


_AGGREGATES = frozenset(int(kind) for kind in _resp.Kind)


class RespReplyDecoder(ReplyDecoderBase):
    """Redis replies, RESP2 and RESP3 -> Python values.

    Same contract, limits and errors as fastnet.codec.resp.py.RespReplyDecoder.
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
        limits = _limits(
            max_bulk=max_bulk_len,
            max_count=max_multibulk_len,
            max_line=max_line_len,
            max_depth=max_depth,
            max_double=RESP_MAX_DOUBLE_LEN,
            max_big_number=RESP_MAX_BIG_NUMBER_DIGITS,
        )
        parser = lib.fn_resp_reply_new(limits)
        if parser == ffi.NULL:
            raise MemoryError("fn_resp_reply_new failed")
        self._p: Any = ffi.gc(parser, lib.fn_resp_reply_free)
        self._ntok: Any = ffi.new("size_t *")

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet decoded into complete replies."""
        return lib.fn_resp_reply_buffered(self._p)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data; discarded after a protocol error."""
        view = byte_view(data)
        if lib.fn_resp_reply_feed(self._p, ffi.from_buffer(view), len(view)) != 0:
            raise MemoryError("fn_resp_reply_feed: out of memory")

    def reset(self) -> None:
        """Forget buffered bytes, the reply in progress and any error."""
        lib.fn_resp_reply_reset(self._p)
        self._reset_queue()

    def _error_value(self) -> int:
        return lib.fn_resp_reply_error_value(self._p)

    def _decode(self) -> list[object]:
        p = self._p
        rc = lib.fn_resp_reply_parse(p)
        tok = lib.fn_resp_reply_tokens(p, self._ntok)
        ntok = self._ntok[0]
        replies: list[object] = []
        if ntok:
            data = ffi.buffer(lib.fn_resp_reply_data(p), lib.fn_resp_reply_done_bytes(p))
            replies = _replies(ffi.unpack(tok, ntok), data)
        if rc:
            _fail(self, rc, replies)
        return replies


def _replies(t: list[int], data: Any) -> list[object]:
    """Walk reply tokens (type, a, b) into values; tokens cover whole replies."""
    replies: list[object] = []
    assembler = Assembler()
    for i in range(0, len(t), 3):
        kind = t[i]
        if kind in _AGGREGATES:
            value = assembler.open(kind, t[i + 1])
        else:
            if kind == 0x24 or kind == 0x2B:  # $ +
                value = data[t[i + 1] : t[i + 2]]
            elif kind == 0x3A:  # :
                value = t[i + 1]
            elif kind == 0x5F:  # _
                value = None
            elif kind == 0x2D:  # -
                value = RespError(data[t[i + 1] : t[i + 2]])
            elif kind == 0x2C:  # ,
                value = float(data[t[i + 1] : t[i + 2]])
            elif kind == 0x23:  # #
                value = t[i + 1] == 1
            elif kind == 0x28:  # (
                value = BigNumber(data[t[i + 1] : t[i + 2]])
            else:  # = "fmt:data"
                text = data[t[i + 1] : t[i + 2]]
                value = Verbatim(text[:3], text[4:])
            value = assembler.add(value) if assembler.stack else value
        if value is not NEED_DATA:
            replies.append(value)
    return replies
