"""What both RESP twins share: reply value types, the NEED_DATA marker, the
error texts, limit checks, the batch/queue logic of the decoders and the
assembly of aggregate replies, written once so the twins cannot drift.

Values a RespReplyDecoder returns (RESP2 and RESP3 alike, no mode switch):

=====================  ==========================================================
``+`` simple string    ``bytes``
``-`` / ``!`` error    :class:`RespError` (a value, never raised)
``:`` integer          ``int`` (signed 64-bit on the wire)
``$`` bulk string      ``bytes``; ``$-1`` is ``None``
``*`` array            ``list``; ``*-1`` is ``None``
``%`` map              ``dict`` (a repeated key keeps its last value)
``~`` set              ``set`` (repeated members collapse)
``,`` double           ``float`` (``inf``, ``-inf``, ``nan``)
``#`` boolean          ``bool``
``_`` null             ``None``
``(`` big number       :class:`BigNumber` (an ``int``)
``=`` verbatim string  :class:`Verbatim` (format and data)
``>`` push             :class:`Push` (a ``list``)
``|`` attribute        parsed (grammar and limits apply) and dropped: the reply
                       is the value it annotates. Redis 7 never sends one.
=====================  ==========================================================

Strings stay ``bytes``: RESP is binary-safe and only the application knows an
encoding. A map key or set member must be hashable, so an aggregate in that
position (and everything inside it) is frozen: array and push become
``tuple``, set becomes ``frozenset``, map becomes a ``frozenset`` of
``(key, value)`` tuples. Python's own equality applies to keys: ``1``,
``1.0``, ``True`` and ``BigNumber(1)`` are one key.
"""
from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Generic, Iterator, TypeVar

from ...errors import RespProtocolError
from .._common import INT64_MAX, INT64_MIN, byte_view

#: Redis's string2ll refuses strings of LONG_STR_SIZE (21) bytes or more.
LONG_STR_MAX = 20
#: C's INT_MAX: the most a request's max_multibulk_len or max_bulk_len (the
#: C twin hands arguments over in marshal's format, whose sizes are 32-bit),
#: or a reply's max_depth, may be.
INT_MAX = 2**31 - 1
#: The most a reply's max_multibulk_len may be: a map of that many pairs
#: still counts its values in a signed 64-bit int.
MAX_PAIRS = 2**62 - 1


class NeedData(enum.Enum):
    """The type of :data:`NEED_DATA`."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"

    __str__ = __repr__


#: What ``RespReplyDecoder.next_reply()`` returns until a whole reply is
#: buffered: a reply may itself be ``None``, so ``None`` cannot mean "wait".
NEED_DATA = NeedData.NEED_DATA


#: What the encoders and the value types take as text: bytes-like, or str (UTF-8).
Text = bytes | bytearray | memoryview | str


def to_bytes(value: object, what: str = "value") -> bytes:
    """str as UTF-8, any bytes-like object as its bytes; else a TypeError
    naming ``what`` (an int is refused, never taken as bytes(n))."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    try:
        return byte_view(value).tobytes()
    except TypeError:
        raise TypeError(f"{what} must be bytes-like or str, not {type(value).__name__}") from None


@dataclass(frozen=True, init=False)
class RespError:
    """An error reply (``-ERR ...`` or a RESP3 blob error ``!``), as a value.

    ``message`` is the whole text, code included (``b"ERR unknown command"``);
    it may be given as str (kept as its UTF-8 bytes). Anything else is a
    TypeError at once.
    """

    message: bytes

    def __init__(self, message: Text) -> None:
        object.__setattr__(self, "message", to_bytes(message, "RespError message"))

    @property
    def code(self) -> bytes:
        """The first word of the message, by convention the error code."""
        return self.message.split(b" ", 1)[0]


class SimpleString(bytes):
    """Bytes to be sent as a RESP simple string (``+OK``) rather than a bulk
    string. Encoding only: decoders return both kinds as plain ``bytes``.
    ``SimpleString("OK")`` takes str as UTF-8 and any bytes-like object as
    its bytes; anything else (an int too) is a TypeError at once. It must
    not contain CR or LF (encoding raises ValueError)."""

    def __new__(cls, text: Text = b"") -> "SimpleString":
        return super().__new__(cls, to_bytes(text, "SimpleString"))


class BigNumber(int):
    """A RESP3 big number (``(<digits>``): an int that remembers its wire type."""

    def __repr__(self) -> str:
        return f"BigNumber({int(self)})"


@dataclass(frozen=True)
class Verbatim:
    """A RESP3 verbatim string: a 3-byte format (``b"txt"``, ``b"mkd"``) and data."""

    format: bytes
    data: bytes


class Push(list):  # type: ignore[type-arg]
    """A RESP3 push (``>``): out-of-band data such as a pub/sub message."""

    def __repr__(self) -> str:
        return f"Push({list.__repr__(self)})"


# --- request errors: redis-server's exact texts -------------------------------
# Verified against redis-server 7.0.15: each is sent as "-ERR <text>\r\n" and
# the connection is closed after it (see tests/test_resp_requests.py).

INVALID_MULTIBULK_LEN = "Protocol error: invalid multibulk length"
INVALID_BULK_LEN = "Protocol error: invalid bulk length"
TOO_BIG_INLINE = "Protocol error: too big inline request"
TOO_BIG_MBULK_COUNT = "Protocol error: too big mbulk count string"
TOO_BIG_BULK_COUNT = "Protocol error: too big bulk count string"
UNBALANCED_QUOTES = "Protocol error: unbalanced quotes in request"


def query_buffer_limit(limit: int) -> str:
    """The text of ClientQueryBufferLimit: Redis sends nothing (it logs
    "Closing client that reached max query buffer length")."""
    return f"client query buffer limit reached: a command holds more than client_query_buffer_limit={limit} bytes"


def expected_dollar(byte: int) -> str:
    """Redis's text for a multibulk argument that does not start with "$".

    Redis formats the byte with %c and then turns "\\r" and "\\n" into
    spaces; any other byte is quoted as is (one latin-1 character).
    """
    char = " " if byte in (0x0A, 0x0D) else chr(byte)
    return f"Protocol error: expected '$', got '{char}'"


# --- reply errors (client side): hiredis's texts where it has one ------------

BAD_INTEGER = "Bad integer value"
BAD_BULK_LEN = "Bad bulk string length"
BAD_COUNT = "Bad multi-bulk length"
BAD_DOUBLE = "Bad double value"
BAD_BOOL = "Bad bool value"
BAD_NULL = "Bad nil value"
BAD_BIG_NUMBER = "Bad big number value"
BAD_VERBATIM = "Verbatim string 4 bytes of content type are missing or incorrectly encoded."
MISSING_CRLF = "Bulk string is not followed by CRLF"


def bad_type_byte(byte: int) -> str:
    """hiredis's text for an unknown reply type byte (printable ASCII as is)."""
    shown = chr(byte) if 0x21 <= byte <= 0x7E and byte not in (0x22, 0x5C) else f"\\x{byte:02x}"
    return f'Protocol error, got "{shown}" as reply type byte'


def bulk_too_long(limit: int) -> str:
    return f"Bulk string length out of range (max_bulk_len={limit})"


def count_too_big(limit: int) -> str:
    return f"Multi-bulk length out of range (max_multibulk_len={limit})"


def too_deep(limit: int) -> str:
    return f"Reply nested deeper than max_depth={limit}"


def line_too_long(limit: int) -> str:
    return f"Reply line longer than max_line_len={limit}"


# --- grammar shared by the Python scanners ------------------------------------


def string2ll(data: bytes) -> int | None:
    """Redis's (and hiredis's) string2ll: a strict signed 64-bit decimal.

    No sign but "-", no leading zero (so no "-0"), no blanks, at most 20
    bytes. Returns None for anything else.
    """
    if not data or len(data) > LONG_STR_MAX:
        return None
    if data == b"0":
        return 0
    negative = data[0] == 0x2D
    digits = data[1:] if negative else data
    if not digits or not 0x31 <= digits[0] <= 0x39 or not digits.isdigit():
        return None
    value = -int(digits) if negative else int(digits)
    return value if INT64_MIN <= value <= INT64_MAX else None


#: A RESP3 double (use fullmatch): inf, -inf, nan or -nan in any case, as
#: hiredis accepts them, or a decimal with optional fraction and exponent
#: (what Redis's "%.17g" and Python's repr() write).
DOUBLE_RE = re.compile(rb"(?i:-?inf|-?nan)|[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
#: A RESP3 big number (use fullmatch).
BIG_NUMBER_RE = re.compile(rb"[+-]?[0-9]+")


# --- aggregate assembly (reply decoders of both twins) --------------------------


class Kind(enum.IntEnum):
    """Aggregate reply kinds; the values are the type bytes."""

    ARRAY = 0x2A  # *
    MAP = 0x25  # %
    SET = 0x7E  # ~
    PUSH = 0x3E  # >
    ATTRIBUTE = 0x7C  # |


def build_aggregate(kind: int, items: list[object], frozen: bool) -> object:
    """The value of a finished aggregate; hashable when frozen."""
    if kind == Kind.ARRAY:
        return tuple(items) if frozen else items
    if kind == Kind.MAP:
        pairs = zip(items[0::2], items[1::2])
        return frozenset(pairs) if frozen else dict(pairs)
    if kind == Kind.SET:
        return frozenset(items) if frozen else set(items)
    return tuple(items) if frozen else Push(items)


class Assembler:
    """Builds reply values from a pre-order stream of scalars and aggregate
    headers, with an explicit stack (never recursion).

    Both twins feed it: the Python scanner element by element, the C twin's
    walker token by token. ``open()`` and ``add()`` return the finished
    top-level reply, or NEED_DATA while it is incomplete. Attributes are
    counted like maps and dropped when they end.
    """

    __slots__ = ("stack",)

    def __init__(self) -> None:
        # Frames: [kind, values still expected, values so far, frozen].
        self.stack: list[list] = []  # type: ignore[type-arg]

    def _child_frozen(self) -> bool:
        """Whether the next value lands where it must be hashable."""
        if not self.stack:
            return False
        kind, _, items, frozen = self.stack[-1]
        return frozen or kind == Kind.SET or (kind == Kind.MAP and len(items) % 2 == 0)

    def open(self, kind: int, values: int) -> object:
        """Start an aggregate of `values` values (2 per pair for maps)."""
        if values == 0:
            if kind == Kind.ATTRIBUTE:
                return NEED_DATA
            return self.add(build_aggregate(kind, [], self._child_frozen()))
        self.stack.append([kind, values, [], self._child_frozen()])
        return NEED_DATA

    def add(self, value: object) -> object:
        """Add one finished value, closing every aggregate it completes."""
        stack = self.stack
        while stack:
            frame = stack[-1]
            frame[2].append(value)
            frame[1] -= 1
            if frame[1]:
                return NEED_DATA
            stack.pop()
            if frame[0] == Kind.ATTRIBUTE:
                return NEED_DATA  # annotates the next value: dropped
            value = build_aggregate(frame[0], frame[2], frame[3])
        return value


# --- the decoders' shared surface ----------------------------------------------

T = TypeVar("T")


class BatchDecoder(ABC, Generic[T]):
    """Queueing and sticky errors for a decoder that parses in batches.

    A subclass implements ``_decode()``: every complete item buffered, in
    order; on a protocol error it sets ``_error`` (the message) and returns
    the items before the error. Those are handed out first; the error is
    raised from the next call, and from every call after it until reset().
    """

    def __init__(self) -> None:
        self._ready: deque[T] = deque()  # decoded, not yet handed out
        self._error: str | None = None
        self._error_class: type[RespProtocolError] = RespProtocolError

    @abstractmethod
    def _decode(self) -> list[T]:
        """All complete items buffered (see the class docstring)."""

    def _take_all(self) -> list[T]:
        if not self._ready and self._error is None:  # the usual case, first
            items = self._decode()
            if items or self._error is None:
                return items
            raise self._error_class(self._error)
        items = list(self._ready)
        self._ready.clear()
        if self._error is None:
            items += self._decode()
        if not items and self._error is not None:
            raise self._error_class(self._error)
        return items

    def _take_one(self, empty: object) -> object:
        """The next item, or `empty` when none is complete yet."""
        ready = self._ready
        if not ready:
            if self._error is None:
                ready.extend(self._decode())
            if not ready:
                if self._error is not None:
                    raise self._error_class(self._error)
                return empty
        return ready.popleft()

    @property
    def error(self) -> str | None:
        """The protocol error that follows the items handed out, not yet
        raised (the next call raises it), or None."""
        return self._error if not self._ready else None

    def error_exception(self) -> RespProtocolError | None:
        """:attr:`error` as the exception the next call raises (its class
        says more than the text: ClientQueryBufferLimit), or None."""
        error = self.error
        return None if error is None else self._error_class(error)

    def _reset_queue(self) -> None:
        self._ready.clear()
        self._error = None
        self._error_class = RespProtocolError


class RequestDecoderBase(BatchDecoder[list[bytes]]):
    """The public surface of RespRequestDecoder in both twins."""

    @property
    @abstractmethod
    def buffered(self) -> int:
        """Bytes fed and not yet decoded into complete commands."""

    @abstractmethod
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data; discarded after a protocol error."""

    @abstractmethod
    def reset(self) -> None:
        """Forget buffered bytes, the command in progress and any error."""

    def commands(self) -> list[list[bytes]]:
        """Every complete command buffered, oldest first (the fast path).

        Empty commands (an empty line, ``*0``, ``*-1``) are skipped, as Redis
        skips them. Raises RespProtocolError once no command precedes the
        error; it stays raised until reset().
        """
        return self._take_all()

    def feed_commands(self, data: bytes | bytearray | memoryview) -> list[list[bytes]]:
        """feed(data), then commands(): a server's one call per read."""
        self.feed(data)
        return self._take_all()

    def next_command(self) -> list[bytes] | None:
        """The next complete command, or None until more data arrives."""
        return self._take_one(None)  # type: ignore[return-value]

    def __iter__(self) -> Iterator[list[bytes]]:
        """Yield complete commands until more data is needed."""
        while (command := self.next_command()) is not None:
            yield command


class ReplyDecoderBase(BatchDecoder[object]):
    """The public surface of RespReplyDecoder in both twins."""

    @property
    @abstractmethod
    def buffered(self) -> int:
        """Bytes fed and not yet decoded into complete replies."""

    @abstractmethod
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data; discarded after a protocol error."""

    @abstractmethod
    def reset(self) -> None:
        """Forget buffered bytes, the reply in progress and any error."""

    def replies(self) -> list[object]:
        """Every complete reply buffered, oldest first (the fast path).

        Raises RespProtocolError once no reply precedes the error; it stays
        raised until reset().
        """
        return self._take_all()

    def next_reply(self) -> object:
        """The next complete reply (which may be None), or NEED_DATA until
        more data arrives."""
        return self._take_one(NEED_DATA)

    def __iter__(self) -> Iterator[object]:
        """Yield complete replies until more data is needed."""
        while (reply := self.next_reply()) is not NEED_DATA:
            yield reply
