"""RESP encoders, shared by both twins (pure Python: building a reply is a
few joins, with no hot loop for C to take over yet).

``encode_command(*args)`` writes a request as a multibulk. Replies:
``encode_reply(value, protocol)`` maps a Python value to its RESP type (the
inverse of RespReplyDecoder, see fastnet.codec.resp._common), and one helper per
type writes that type explicitly.

``protocol`` is 2 or 3. With 2, RESP3-only types are written the way
redis-server writes them to a RESP2 client: map -> flat array of key, value;
set and push -> array; double, big number and verbatim string -> bulk
string; boolean -> integer 1/0; null -> null bulk. Attributes have no RESP2
form (ValueError).

Strings: ``bytes``-like values are written as they are, ``str`` as UTF-8.
Nesting is walked with an explicit stack; deeper than max_depth (which also
catches a list that contains itself) is a ValueError.
"""
from __future__ import annotations

from itertools import chain
from typing import Any, Iterable, Iterator, Mapping

from ...limits import DEFAULT_RESP_MAX_DEPTH
from .._common import INT64_MAX, INT64_MIN, check_limit
from ._common import BigNumber, Push, RespError, SimpleString, Text, Verbatim, to_bytes

__all__ = [
    "encode_array",
    "encode_attribute",
    "encode_big_number",
    "encode_boolean",
    "encode_bulk",
    "encode_command",
    "encode_double",
    "encode_error",
    "encode_integer",
    "encode_map",
    "encode_null",
    "encode_push",
    "encode_reply",
    "encode_set",
    "encode_simple",
    "encode_verbatim",
]



def _check_protocol(protocol: int) -> int:
    if protocol not in (2, 3):
        raise ValueError(f"protocol must be 2 or 3, got {protocol!r}")
    return protocol


def _line(value: Text, what: str) -> bytes:
    data = to_bytes(value)
    if b"\r" in data or b"\n" in data:
        raise ValueError(f"a {what} cannot contain b'\\r' or b'\\n'")
    return data


def encode_command(*args: Text | int | float) -> bytes:
    """A request as a multibulk: ``*<argc>`` then one bulk per argument.

    Arguments may be bytes-like, str (UTF-8), int (decimal) or float
    (repr()); bool is refused (TypeError) as ambiguous. At least one.
    """
    if not args:
        raise ValueError("a command needs at least one argument")
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bool):
            raise TypeError("a bool is not a command argument: pass b'1'/b'0' or a string")
        if isinstance(arg, int):
            data = b"%d" % arg
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            data = to_bytes(arg)
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


def encode_simple(text: Text) -> bytes:
    """``+<text>``; ValueError if text holds "\\r" or "\\n"."""
    return b"+" + _line(text, "simple string") + b"\r\n"


def encode_error(message: Text | RespError, protocol: int = 2) -> bytes:
    """``-<message>``, message including its code (``"ERR no such key"``).

    A message with "\\r" or "\\n" is a RESP3 blob error (``!``), and a
    ValueError in RESP2.
    """
    data = message.message if isinstance(message, RespError) else to_bytes(message)
    if b"\r" in data or b"\n" in data:
        if _check_protocol(protocol) == 2:
            raise ValueError("a RESP2 error cannot contain b'\\r' or b'\\n'")
        return b"!%d\r\n%s\r\n" % (len(data), data)
    return b"-" + data + b"\r\n"


def encode_integer(value: int) -> bytes:
    """``:<value>`` for a signed 64-bit int (OverflowError outside it)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"an integer reply needs an int, not {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise OverflowError(f"{value} does not fit in 64 bits: use encode_big_number")
    return b":%d\r\n" % value


def encode_bulk(data: Text) -> bytes:
    """``$<length>`` and the bytes."""
    data = to_bytes(data)
    return b"$%d\r\n%s\r\n" % (len(data), data)


def encode_null(protocol: int = 2, array: bool = False) -> bytes:
    """RESP3 ``_``; in RESP2 the null bulk ``$-1``, or with array=True the
    null array ``*-1``."""
    if _check_protocol(protocol) == 3:
        return b"_\r\n"
    return b"*-1\r\n" if array else b"$-1\r\n"


def encode_double(value: float, protocol: int = 2) -> bytes:
    """``,<value>`` (``inf``, ``-inf``, ``nan``); a bulk string in RESP2.

    Written with repr(): the shortest text that reads back as the same float.
    """
    text = repr(float(value)).encode()
    return b",%s\r\n" % text if _check_protocol(protocol) == 3 else encode_bulk(text)


def encode_boolean(value: bool, protocol: int = 2) -> bytes:
    """``#t`` / ``#f``; ``:1`` / ``:0`` in RESP2."""
    if _check_protocol(protocol) == 3:
        return b"#t\r\n" if value else b"#f\r\n"
    return b":1\r\n" if value else b":0\r\n"


def encode_big_number(value: int, protocol: int = 2) -> bytes:
    """``(<digits>`` for any int; a bulk string of the digits in RESP2."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a big number needs an int, not {type(value).__name__}")
    digits = b"%d" % value
    return b"(%s\r\n" % digits if _check_protocol(protocol) == 3 else encode_bulk(digits)


def encode_verbatim(data: Text, format: Text = b"txt", protocol: int = 2) -> bytes:
    """``=<length>`` then ``<format>:<data>``; format is 3 bytes (``txt``,
    ``mkd``). In RESP2 a bulk string of data alone."""
    data = to_bytes(data)
    fmt = to_bytes(format)
    if len(fmt) != 3:
        raise ValueError(f"a verbatim format is 3 bytes, got {fmt!r}")
    if _check_protocol(protocol) == 2:
        return encode_bulk(data)
    return b"=%d\r\n%s:%s\r\n" % (len(data) + 4, fmt, data)


def encode_array(items: Iterable[Any], protocol: int = 2, max_depth: int = DEFAULT_RESP_MAX_DEPTH) -> bytes:
    """``*<n>`` and each item as encode_reply() writes it."""
    items = list(items)
    return _encode(b"*%d\r\n" % len(items), iter(items), _check_protocol(protocol), max_depth)


def encode_map(mapping: Mapping[Any, Any], protocol: int = 2, max_depth: int = DEFAULT_RESP_MAX_DEPTH) -> bytes:
    """``%<pairs>`` then key, value, ...; a flat array in RESP2."""
    header = _map_header(len(mapping), _check_protocol(protocol))
    return _encode(header, chain.from_iterable(mapping.items()), protocol, max_depth)


def encode_set(items: Iterable[Any], protocol: int = 2, max_depth: int = DEFAULT_RESP_MAX_DEPTH) -> bytes:
    """``~<n>`` and the members (written as given); an array in RESP2."""
    items = list(items)
    prefix = b"~" if _check_protocol(protocol) == 3 else b"*"
    return _encode(b"%s%d\r\n" % (prefix, len(items)), iter(items), protocol, max_depth)


def encode_push(items: Iterable[Any], protocol: int = 2, max_depth: int = DEFAULT_RESP_MAX_DEPTH) -> bytes:
    """``><n>`` and the items (a pub/sub message, ...); an array in RESP2."""
    items = list(items)
    prefix = b">" if _check_protocol(protocol) == 3 else b"*"
    return _encode(b"%s%d\r\n" % (prefix, len(items)), iter(items), protocol, max_depth)


def encode_attribute(attributes: Mapping[Any, Any], max_depth: int = DEFAULT_RESP_MAX_DEPTH) -> bytes:
    """``|<pairs>`` then key, value, ...: RESP3 only, written right before the
    reply it annotates (RespReplyDecoder parses and drops it)."""
    header = b"|%d\r\n" % len(attributes)
    return _encode(header, chain.from_iterable(attributes.items()), 3, max_depth)


def encode_reply(value: Any, protocol: int = 2, max_depth: int = DEFAULT_RESP_MAX_DEPTH) -> bytes:
    """value in its RESP type (the table in fastnet.codec.resp._common, read backwards).

    bytes-like and str -> bulk string, int -> integer (big number beyond 64
    bits), float -> double, bool -> boolean, None -> null, list and tuple ->
    array, dict -> map, set and frozenset -> set, and RespError, BigNumber,
    Verbatim, Push, SimpleString -> their own types. TypeError for anything
    else.
    """
    return _encode(b"", iter((value,)), _check_protocol(protocol), max_depth, depth=0)


def _map_header(pairs: int, protocol: int) -> bytes:
    return b"%%%d\r\n" % pairs if protocol == 3 else b"*%d\r\n" % (2 * pairs)


def _encode(header: bytes, items: Iterator[Any], protocol: int, max_depth: int, depth: int = 1) -> bytes:
    """header, then every value items yields, nested values included; depth
    is the number of aggregates open around those values (header's own, or
    0 for encode_reply's bare value).

    Explicit stack of iterators, one per open aggregate: a value that is an
    aggregate writes its header and pushes its children's iterator, and the
    parent's iterator resumes once that one is exhausted.
    """
    check_limit(max_depth, "max_depth")
    if depth > max_depth:
        raise ValueError(f"reply nested deeper than max_depth={max_depth}")
    out = [header]
    stack = [items]
    while stack:
        for value in stack[-1]:
            children = _encode_one(value, protocol, out)
            if children is not None:
                if len(stack) - 1 + depth >= max_depth:
                    raise ValueError(f"reply nested deeper than max_depth={max_depth}")
                stack.append(children)
                break
        else:
            stack.pop()
    return b"".join(out)


def _encode_one(value: Any, protocol: int, out: list[bytes]) -> Iterator[Any] | None:
    """Append value's encoding (an aggregate's header only) to out; return
    an aggregate's children, None for a scalar."""
    if value is None:
        out.append(encode_null(protocol))
    elif isinstance(value, bool):
        out.append(encode_boolean(value, protocol))
    elif isinstance(value, BigNumber):
        out.append(encode_big_number(value, protocol))
    elif isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            out.append(b":%d\r\n" % value)
        else:
            out.append(encode_big_number(value, protocol))
    elif isinstance(value, float):
        out.append(encode_double(value, protocol))
    elif isinstance(value, SimpleString):
        out.append(encode_simple(value))
    elif isinstance(value, (bytes, bytearray, memoryview, str)):
        out.append(encode_bulk(value))
    elif isinstance(value, RespError):
        out.append(encode_error(value, protocol))
    elif isinstance(value, Verbatim):
        out.append(encode_verbatim(value.data, value.format, protocol))
    elif isinstance(value, Push):
        out.append(b"%s%d\r\n" % (b">" if protocol == 3 else b"*", len(value)))
        return iter(value)
    elif isinstance(value, (list, tuple)):
        out.append(b"*%d\r\n" % len(value))
        return iter(value)
    elif isinstance(value, dict):
        out.append(_map_header(len(value), protocol))
        return chain.from_iterable(value.items())
    elif isinstance(value, (set, frozenset)):
        out.append(b"%s%d\r\n" % (b"~" if protocol == 3 else b"*", len(value)))
        return iter(value)
    else:
        raise TypeError(f"no RESP type for {type(value).__name__}")
    return None
