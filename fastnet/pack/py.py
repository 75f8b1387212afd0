"""fastnet.pack, pure-Python twin: the readable reference of the format.

Packing walks the object recursively (the caller's objects are trusted; the
depth is bounded by max_depth). Unpacking never recurses: one loop keeps the
open containers on an explicit stack, so nesting costs memory bounded by
max_depth, and the loop can stop at any item boundary when the input runs
out and resume there later. That makes the Unpacker O(bytes fed): an item
(a header and, for str/bin/ext, its whole payload) is parsed once, when all
of it is buffered, and the containers around it stay built on the stack
between feeds. A declared length is checked against its limit as soon as
its header is read and is never used to preallocate.
"""
from __future__ import annotations

import datetime as _dt
import struct
from typing import Any, Callable, Iterator, Optional

from ..codec._common import byte_view, check_limit
from ..errors import (
    BadMapKey,
    BufferFull,
    ExtraData,
    InvalidUtf8,
    PackDepthError,
    PackError,
    PackOverflow,
    PackTypeError,
    ReservedByte,
    SelfContaining,
    UnpackError,
    UnpackLimitExceeded,
    UnpackTruncated,
)
from ..limits import PACK_MAX_LEN
from ._common import (
    DEFAULT_MAX_DEPTH,
    ExtType,
    Timestamp,
    UnpackOptions,
    check_default,
    decode_timestamp,
    unpack_options,
)

__all__ = ["ExtType", "Timestamp", "Unpacker", "packb", "unpackb"]

# --------------------------------------------------------------------------
# Packing

_BB = struct.Struct(">BB").pack
_Bb = struct.Struct(">Bb").pack
_BH = struct.Struct(">BH").pack
_Bh = struct.Struct(">Bh").pack
_BI = struct.Struct(">BI").pack
_Bi = struct.Struct(">Bi").pack
_BQ = struct.Struct(">BQ").pack
_Bq = struct.Struct(">Bq").pack
_Bd = struct.Struct(">Bd").pack
_BBb = struct.Struct(">BBb").pack
_BHb = struct.Struct(">BHb").pack
_BIb = struct.Struct(">BIb").pack
_FIXEXT = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}


class _TooDeep(Exception):
    """Internal: the container ``obj`` would open past max_depth. Each open
    container it propagates through checks whether it is that container (a
    cycle: SelfContaining); at the top it becomes PackDepthError."""

    def __init__(self, obj: object) -> None:
        self.obj = obj


def _int_out_of_range(value: int) -> PackOverflow:
    return PackOverflow(f"int of {value.bit_length()} bits is outside [-2**63, 2**64)")


def _too_long(what: str, n: int) -> PackOverflow:
    return PackOverflow(f"{what} of {n} bytes or elements is over the format's {PACK_MAX_LEN}")


def _make_packer(
    default: Optional[Callable[[Any], Any]], use_bin_type: bool, pack_datetime: bool
) -> Callable[[object, bytearray, int], None]:
    """A pack(obj, buf, depth) function for one set of options; depth is how
    many more containers may open."""
    str8 = 256 if use_bin_type else 32

    def pack_str(data: bytes, buf: bytearray) -> None:
        n = len(data)
        if n < 32:
            buf.append(0xA0 | n)
        elif n < str8:
            buf += _BB(0xD9, n)
        elif n < 0x10000:
            buf += _BH(0xDA, n)
        elif n <= PACK_MAX_LEN:
            buf += _BI(0xDB, n)
        else:
            raise _too_long("str", n)
        buf += data

    def pack_bin(data: Any, n: int, buf: bytearray) -> None:
        if not use_bin_type:
            return pack_str(data, buf)
        if n < 0x100:
            buf += _BB(0xC4, n)
        elif n < 0x10000:
            buf += _BH(0xC5, n)
        elif n <= PACK_MAX_LEN:
            buf += _BI(0xC6, n)
        else:
            raise _too_long("bin", n)
        buf += data

    def pack_int(v: int, buf: bytearray) -> None:
        if v >= 0:
            if v < 0x80:
                buf.append(v)
            elif v < 0x100:
                buf += _BB(0xCC, v)
            elif v < 0x10000:
                buf += _BH(0xCD, v)
            elif v < 0x100000000:
                buf += _BI(0xCE, v)
            else:
                buf += _BQ(0xCF, v)
        elif v >= -0x20:
            buf.append(v + 0x100)
        elif v >= -0x80:
            buf += _Bb(0xD0, v)
        elif v >= -0x8000:
            buf += _Bh(0xD1, v)
        elif v >= -0x80000000:
            buf += _Bi(0xD2, v)
        else:
            buf += _Bq(0xD3, v)

    def pack_ext(code: Any, data: Any, buf: bytearray) -> None:
        if not isinstance(code, int) or not isinstance(data, bytes):
            raise PackTypeError("ExtType needs an int code and bytes data")
        if not -128 <= code <= 127:
            raise PackError(f"ext type code {code} is outside [-128, 127]")
        n = len(data)
        head = _FIXEXT.get(n)
        if head is not None:
            buf += _Bb(head, code)
        elif n < 0x100:
            buf += _BBb(0xC7, n, code)
        elif n < 0x10000:
            buf += _BHb(0xC8, n, code)
        elif n <= PACK_MAX_LEN:
            buf += _BIb(0xC9, n, code)
        else:
            raise _too_long("ext", n)
        buf += data

    def pack_array_header(n: int, buf: bytearray) -> None:
        if n < 16:
            buf.append(0x90 | n)
        elif n < 0x10000:
            buf += _BH(0xDC, n)
        elif n <= PACK_MAX_LEN:
            buf += _BI(0xDD, n)
        else:
            raise _too_long("array", n)

    def pack_map_header(n: int, buf: bytearray) -> None:
        if n < 16:
            buf.append(0x80 | n)
        elif n < 0x10000:
            buf += _BH(0xDE, n)
        elif n <= PACK_MAX_LEN:
            buf += _BI(0xDF, n)
        else:
            raise _too_long("map", n)

    # list and tuple subclasses met so far (not ExtType): packed as arrays
    array_types: set[type] = set()

    def pack(obj: Any, buf: bytearray, depth: int) -> None:
        t = type(obj)
        if t is str:
            try:
                pack_str(obj.encode(), buf)
            except UnicodeEncodeError as exc:
                raise PackError(f"str is not encodable as UTF-8: {exc.reason}") from None
        elif t is int:
            if 0 <= obj < 0x80:
                buf.append(obj)
            elif -(2**63) <= obj < 2**64:
                pack_int(obj, buf)
            elif default is not None:
                pack_other(obj, buf, depth)
            else:
                raise _int_out_of_range(obj)
        elif t is dict:
            if depth <= 0:
                raise _TooDeep(obj)
            pack_map_header(len(obj), buf)
            try:
                for k, v in obj.items():
                    pack(k, buf, depth - 1)
                    pack(v, buf, depth - 1)
            except _TooDeep as exc:
                if exc.obj is obj:
                    raise SelfContaining() from None
                raise
        elif t is float:
            buf += _Bd(0xCB, obj)
        elif obj is None:
            buf.append(0xC0)
        elif obj is True:
            buf.append(0xC3)
        elif obj is False:
            buf.append(0xC2)
        elif t is bytes:
            pack_bin(obj, len(obj), buf)
        elif t is list or t is tuple or t in array_types:
            # one Python frame per nesting level: max_depth 512 stays far
            # from the interpreter's recursion limit
            if depth <= 0:
                raise _TooDeep(obj)
            pack_array_header(len(obj), buf)
            try:
                for item in obj:
                    pack(item, buf, depth - 1)
            except _TooDeep as exc:
                if exc.obj is obj:
                    raise SelfContaining() from None
                raise
        else:
            pack_other(obj, buf, depth)

    def pack_other(obj: Any, buf: bytearray, depth: int, default_used: bool = False) -> None:
        """Everything but the exact built-in types: subclasses, ExtType,
        Timestamp, datetime, buffers, then default=."""
        if isinstance(obj, ExtType):
            return pack_ext(obj.code, obj.data, buf)
        if isinstance(obj, Timestamp):
            return pack_ext(-1, obj.to_bytes(), buf)
        if isinstance(obj, int):
            v = int(obj)
            if -(2**63) <= v < 2**64:
                return pack(v, buf, depth)
        elif isinstance(obj, (str, float, dict)):
            return pack(_as_base(obj), buf, depth)
        elif isinstance(obj, (list, tuple)):
            array_types.add(type(obj))
            return pack(obj, buf, depth)
        elif pack_datetime and isinstance(obj, _dt.datetime) and obj.tzinfo is not None:
            return pack_ext(-1, Timestamp.from_datetime(obj).to_bytes(), buf)
        else:
            # Any contiguous buffer (bytes subclasses, bytearray, memoryview,
            # array.array...) is bin: the C twin sees them through marshal,
            # which writes every buffer as bytes.
            try:
                view = memoryview(obj)
            except TypeError:
                pass
            else:
                if view.c_contiguous:
                    return pack_bin(view.cast("B") if view.format != "B" or view.ndim != 1 else view,
                                    view.nbytes, buf)
        if default is not None and not default_used:
            return pack_converted(default(obj), buf, depth)
        if isinstance(obj, int):
            raise _int_out_of_range(obj)
        if isinstance(obj, _dt.datetime) and pack_datetime:
            raise PackError(f"cannot pack a naive datetime (no tzinfo): {obj!r}")
        raise PackTypeError(f"cannot pack an object of type {type(obj).__name__}")

    def pack_converted(obj: Any, buf: bytearray, depth: int) -> None:
        """Pack what default= returned; default is not called again for it."""
        t = type(obj)
        if t in _EXACT or obj is None:
            return pack(obj, buf, depth)
        return pack_other(obj, buf, depth, True)

    return pack


_EXACT = frozenset((str, int, dict, list, tuple, float, bool, bytes))


def _as_base(obj: Any) -> Any:
    """A str, float or dict subclass instance as its exact base type."""
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, float):
        return float(obj)
    return dict(obj)


_PACKERS: dict[tuple[Any, bool, bool], Callable[[object, bytearray, int], None]] = {}


def packb(
    obj: object,
    *,
    default: Optional[Callable[[Any], Any]] = None,
    use_bin_type: bool = True,
    datetime: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """Pack obj as MessagePack bytes, the smallest encoding of every value
    (byte-identical with ``msgpack.packb(obj, use_bin_type=True,
    datetime=True)``).

    None, bool, int in [-2**63, 2**64), float (as float64), str (UTF-8),
    bytes-like (bin), list/tuple (array), dict (map), ExtType, Timestamp and
    timezone-aware datetimes (the timestamp extension). ``default(obj)`` is
    called once for anything else and its result packed. Errors: PackTypeError,
    PackOverflow, PackDepthError (over max_depth nested containers),
    SelfContaining, PackError (a str with lone surrogates, a naive datetime).
    """
    if max_depth is not DEFAULT_MAX_DEPTH:
        check_limit(max_depth, "max_depth")
    key = (default, bool(use_bin_type), bool(datetime))
    pack = _PACKERS.get(key)
    if pack is None:
        check_default(default)
        pack = _make_packer(default, bool(use_bin_type), bool(datetime))
        if len(_PACKERS) < 64:
            _PACKERS[key] = pack
    buf = bytearray()
    try:
        pack(obj, buf, max_depth)
    except _TooDeep:
        raise PackDepthError(max_depth) from None
    return bytes(buf)


# --------------------------------------------------------------------------
# Unpacking

#: Returned by _decode when the input ends before the object does.
_NEED = object()
_NOKEY = object()

# Frame kinds on the decoding stack. A frame is [container, left, kind, key].
_LIST = 0
_TUPLE = 1
_KEYTUPLE = 2   # an array inside a map key: a tuple, and so are its arrays
_MAP = 3

_U8 = struct.Struct(">B").unpack_from
_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_I8 = struct.Struct(">b").unpack_from
_I16 = struct.Struct(">h").unpack_from
_I32 = struct.Struct(">i").unpack_from
_I64 = struct.Struct(">q").unpack_from
_F32 = struct.Struct(">f").unpack_from
_F64 = struct.Struct(">d").unpack_from

#: 0xc0..0xdf -> (kind, header bytes after the type byte, unpacker of the
#: value or the length). Kinds: 0 constant, 1 number, 2 str, 3 bin, 4 ext
#: with a length, 5 fixext (value = payload size), 6 array, 7 map.
_TABLE: dict[int, tuple[int, int, Any]] = {
    0xC4: (3, 1, _U8), 0xC5: (3, 2, _U16), 0xC6: (3, 4, _U32),
    0xC7: (4, 1, _U8), 0xC8: (4, 2, _U16), 0xC9: (4, 4, _U32),
    0xCA: (1, 4, _F32), 0xCB: (1, 8, _F64),
    0xCC: (1, 1, _U8), 0xCD: (1, 2, _U16), 0xCE: (1, 4, _U32), 0xCF: (1, 8, _U64),
    0xD0: (1, 1, _I8), 0xD1: (1, 2, _I16), 0xD2: (1, 4, _I32), 0xD3: (1, 8, _I64),
    0xD4: (5, 0, 1), 0xD5: (5, 0, 2), 0xD6: (5, 0, 4), 0xD7: (5, 0, 8), 0xD8: (5, 0, 16),
    0xD9: (2, 1, _U8), 0xDA: (2, 2, _U16), 0xDB: (2, 4, _U32),
    0xDC: (6, 2, _U16), 0xDD: (6, 4, _U32),
    0xDE: (7, 2, _U16), 0xDF: (7, 4, _U32),
}
_CONSTANTS = {0xC0: None, 0xC2: False, 0xC3: True}


def _bad_utf8(exc: UnicodeDecodeError) -> InvalidUtf8:
    return InvalidUtf8(f"str is not valid UTF-8: {exc.reason} (unpack with raw=True for bytes)")


def _decode(buf: Any, pos: int, stack: list[list[Any]], o: UnpackOptions, counter: list[int]) -> tuple[Any, int]:
    """Decode from buf[pos:], continuing the containers open on ``stack``.

    Returns (object, position after it) once an object is complete, or
    (_NEED, position) when the input ends first: every item before that
    position is already in the containers on ``stack``, so a later call
    with more bytes resumes there. counter[0] counts the items parsed (the
    Unpacker's work, checked by the O(bytes fed) tests)."""
    end = len(buf)
    items = 0
    while True:
        if pos >= end:
            counter[0] += items
            return _NEED, pos
        items += 1
        b = buf[pos]
        if b < 0x80:
            obj: Any = b
            pos += 1
        elif b >= 0xE0:
            obj = b - 0x100
            pos += 1
        elif 0xA0 <= b < 0xC0:
            n = b & 0x1F
            if pos + 1 + n > end:
                counter[0] += items
                return _NEED, pos
            if n > o.max_str_len:
                raise UnpackLimitExceeded("max_str_len", n, o.max_str_len)
            data = buf[pos + 1 : pos + 1 + n]
            pos += 1 + n
            if o.raw:
                obj = bytes(data)
            else:
                try:
                    obj = data.decode()
                except UnicodeDecodeError as exc:
                    raise _bad_utf8(exc) from None
        elif b < 0xA0:
            if b < 0x90:
                kind, n = 7, b & 0x0F
            else:
                kind, n = 6, b & 0x0F
            pos += 1
            obj = _open(kind, n, stack, o)
            if obj is None:
                continue
        else:
            entry = _TABLE.get(b)
            if entry is None:
                if b == 0xC1:
                    raise ReservedByte()
                obj = _CONSTANTS[b]
                pos += 1
            else:
                kind, size, unpack = entry
                if kind == 5:
                    n = unpack
                    if pos + 2 + n > end:
                        counter[0] += items
                        return _NEED, pos
                    if n > o.max_ext_len:
                        raise UnpackLimitExceeded("max_ext_len", n, o.max_ext_len)
                    code = _I8(buf, pos + 1)[0]
                    data = bytes(buf[pos + 2 : pos + 2 + n])
                    pos += 2 + n
                    obj = _ext(code, data, o)
                else:
                    if pos + 1 + size > end:
                        counter[0] += items
                        return _NEED, pos
                    value = unpack(buf, pos + 1)[0]
                    if kind == 1:
                        obj = value
                        pos += 1 + size
                    elif kind >= 6:
                        pos += 1 + size
                        obj = _open(kind, value, stack, o)
                        if obj is None:
                            continue
                    else:
                        n = value
                        start = pos + 1 + size + (kind == 4)
                        if kind == 2:
                            if n > o.max_str_len:
                                raise UnpackLimitExceeded("max_str_len", n, o.max_str_len)
                        elif kind == 3:
                            if n > o.max_bin_len:
                                raise UnpackLimitExceeded("max_bin_len", n, o.max_bin_len)
                        elif n > o.max_ext_len:
                            raise UnpackLimitExceeded("max_ext_len", n, o.max_ext_len)
                        if start + n > end:
                            counter[0] += items
                            return _NEED, pos
                        data = buf[start : start + n]
                        if kind == 3 or (kind == 2 and o.raw):
                            obj = bytes(data)
                        elif kind == 2:
                            try:
                                obj = data.decode()
                            except UnicodeDecodeError as exc:
                                raise _bad_utf8(exc) from None
                        else:
                            obj = _ext(_I8(buf, start - 1)[0], bytes(data), o)
                        pos = start + n
        # Attach the finished value to the containers it completes.
        while stack:
            frame = stack[-1]
            if frame[2] == _MAP:
                if frame[3] is _NOKEY:
                    if o.strict_map_key and type(obj) is not str and type(obj) is not bytes:
                        raise BadMapKey(f"a map key must be str or bytes with strict_map_key, not {type(obj).__name__}")
                    try:
                        hash(obj)
                    except TypeError:
                        raise BadMapKey(f"unhashable map key of type {type(obj).__name__}") from None
                    frame[3] = obj
                    break
                frame[0][frame[3]] = obj
                frame[3] = _NOKEY
            else:
                frame[0].append(obj)
            frame[1] -= 1
            if frame[1]:
                break
            stack.pop()
            obj = frame[0] if frame[2] == _LIST or frame[2] == _MAP else tuple(frame[0])
        else:
            counter[0] += items
            return obj, pos


def _open(kind: int, n: int, stack: list[list[Any]], o: UnpackOptions) -> Any:
    """A container header of n elements: push its frame and return None, or
    return the container itself when it is empty."""
    if len(stack) >= o.max_depth:
        raise UnpackLimitExceeded("max_depth", len(stack) + 1, o.max_depth)
    in_key = False
    if stack:
        top = stack[-1]
        in_key = top[2] == _KEYTUPLE or (top[2] == _MAP and top[3] is _NOKEY)
    if kind == 7:
        if n > o.max_map_len:
            raise UnpackLimitExceeded("max_map_len", n, o.max_map_len)
        if in_key:
            raise BadMapKey("a map cannot be a map key (unhashable)")
        if n == 0:
            return {}
        stack.append([{}, n, _MAP, _NOKEY])
        return None
    if n > o.max_array_len:
        raise UnpackLimitExceeded("max_array_len", n, o.max_array_len)
    frame_kind = _KEYTUPLE if in_key else _LIST if o.use_list else _TUPLE
    if n == 0:
        return [] if frame_kind == _LIST else ()
    stack.append([[], n, frame_kind, None])
    return None


def _ext(code: int, data: bytes, o: UnpackOptions) -> Any:
    if code == -1:
        return decode_timestamp(data, o.timestamp)
    return o.ext_hook(code, data)


def unpackb(data: bytes | bytearray | memoryview, **options: Any) -> Any:
    """Unpack exactly one MessagePack object from data.

    Options (all keyword): raw (str as bytes), use_list (False: arrays as
    tuples), strict_map_key (keys must be str or bytes), timestamp (0
    Timestamp, 1 float, 2 int nanoseconds, 3 aware datetime: the default),
    ext_hook(code, data) (default ExtType), and the limits max_depth,
    max_str_len, max_bin_len, max_ext_len, max_array_len, max_map_len,
    max_buffer_size (fastnet.limits has the defaults). Errors, all
    UnpackError: UnpackTruncated, ExtraData, UnpackLimitExceeded,
    InvalidUtf8, ReservedByte, BadMapKey, BadTimestamp.
    """
    return _unpackb(data, unpack_options(**options))


def _unpackb(data: Any, o: UnpackOptions) -> Any:
    if type(data) is not bytes:
        data = bytes(byte_view(data))
    if len(data) > o.max_buffer_size:
        raise UnpackLimitExceeded("max_buffer_size", len(data), o.max_buffer_size)
    obj, pos = _decode(data, 0, [], o, [0])
    if obj is _NEED:
        raise UnpackTruncated()
    if pos != len(data):
        raise ExtraData(obj, data[pos:])
    return obj


def decode_one(data: bytes, o: UnpackOptions) -> Any:
    """Decode the object at the start of data, which holds it whole (the C
    twin's fallback for objects marshal cannot carry). Raises the error
    the object contains, or UnpackTruncated."""
    obj, _ = _decode(data, 0, [], o, [0])
    if obj is _NEED:
        raise UnpackTruncated()
    return obj


class Unpacker:
    """Streaming, sans-IO unpacking: feed() bytes as they arrive, iterate to
    get each whole object (iteration stops when more bytes are needed).

    An object split across feeds at any byte comes out whole, and the work
    is O(bytes fed): nothing is rescanned. Takes unpackb's options;
    max_buffer_size bounds the bytes held (BufferFull). After an error the
    Unpacker raises it again until reset().
    """

    def __init__(self, **options: Any) -> None:
        self._o = unpack_options(**options)
        self._buf = bytearray()
        self._stack: list[list[Any]] = []
        self._error: Optional[UnpackError] = None
        self._items = [0]
        #: bytes of the object in progress already parsed into _stack
        self._partial = 0

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet returned in an object."""
        return self._partial + len(self._buf)

    @property
    def work(self) -> int:
        """Items parsed so far (each one exactly once: the O(bytes fed) bound)."""
        return self._items[0]

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data. BufferFull past max_buffer_size."""
        view = byte_view(data)
        if self._error is not None:
            return
        size = self._partial + len(self._buf) + len(view)
        if size > self._o.max_buffer_size:
            raise BufferFull("max_buffer_size", size, self._o.max_buffer_size)
        self._buf += view

    def reset(self) -> None:
        """Forget buffered bytes, the object in progress and any error."""
        self._buf = bytearray()
        self._stack = []
        self._error = None
        self._partial = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._error is not None:
            raise self._error
        buf = self._buf
        try:
            obj, pos = _decode(buf, 0, self._stack, self._o, self._items)
        except UnpackError as exc:
            self._error = exc
            raise
        del buf[:pos]
        if obj is _NEED:
            self._partial += pos
            raise StopIteration
        self._partial = 0
        return obj
