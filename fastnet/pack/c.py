"""fastnet.pack, C twin: csrc/pack.c does the work, CPython's marshal is the
bridge (see csrc/pack.h and ARCHITECTURE.md, "fastnet.pack: the C bridge").

packb:    ``marshal.dumps(obj, 4)`` flattens the object in CPython's C code;
          fn_pack_encode transcodes that stream to MessagePack (resolving
          marshal's reference records by copying bytes already written).
unpackb:  fn_pack_unpackb transcodes MessagePack to a marshal stream;
          ``marshal.loads`` builds the objects in CPython's C code.

What marshal cannot carry falls back, per call (or per object in the
Unpacker), to the pure-Python twin, which then produces the result or words
the error: objects marshal refuses (datetime, ExtType, Timestamp,
subclasses, anything for default=) or that have no MessagePack form (sets,
ints over 64 bits, lone surrogates, cycles, nesting over max_depth), and on
decode any object holding an ext (C writes None in its place and flags
it), and any error. So the twins agree on every error by construction, and
the common case (plain dicts, lists, str, bytes, int, float, bool, None)
never runs Python code per value. The cost of a fallback is one marshal
attempt on top of the Python twin's own time.

Measured on the anchor document (bench/scenarios/pack.py; quiet-moment
timeit minima, ARCHITECTURE.md has the table): marshal.dumps 9.2 µs and the
C transcoding 3.9 µs against msgpack.packb's 14.1; the C transcoding 6.8 µs
and marshal.loads 12.4 µs against msgpack.unpackb's 23.5. marshal version 4
beats version 2 both ways (short-ASCII records), and writing each repeated
map key as a marshal reference cut loads from 19.0 to 12.4 µs. A walk in
Python (what a token array would need) costs what the Python twin costs,
over 10x more. Per object (10,000 small ints) the bridge costs about 20 ns
(dumps) + 14 (C) to pack and 5 (C) + 11 (loads) to unpack; per byte (a
1 MiB blob) 0.03-0.05 ns each step, memcpy speed.

Each thread has its own C encoder and one-shot decoder (cffi releases the
GIL during calls, so state is never shared between threads).
"""
from __future__ import annotations

import marshal
import threading
from typing import Any, Callable, Iterator, Optional

from .. import native
from ..codec._common import byte_view, check_limit
from ..errors import BufferFull, UnpackError, UnpackLimitExceeded
from . import py
from ._common import (
    DEFAULT_MAX_DEPTH,
    TIMESTAMP_AS_DATETIME,
    ExtType,
    Timestamp,
    UnpackOptions,
    check_default,
    unpack_options,
)

__all__ = ["ExtType", "Timestamp", "Unpacker", "packb", "unpackb"]

lib = native.require()
ffi = native.ffi

_OBJECT = lib.FN_PACK_OBJECT
_NEED_DATA = lib.FN_PACK_NEED_DATA
_NOMEM = lib.FN_E_NOMEM
_LOADS_UTF8 = lib.FN_PACK_LOADS_UTF8
_dumps = marshal.dumps
_loads = marshal.loads
_encode = lib.fn_pack_encode
_unpackb_c = lib.fn_pack_unpackb
_unpack = ffi.unpack
_buffer = ffi.buffer
_tls = threading.local()


def _new_encoder() -> Any:
    enc = lib.fn_pack_enc_new()
    if enc == ffi.NULL:
        raise MemoryError("fn_pack_enc_new failed")
    enc = ffi.gc(enc, lib.fn_pack_enc_free)
    _tls.enc = enc
    return enc


def packb(
    obj: object,
    *,
    default: Optional[Callable[[Any], Any]] = None,
    use_bin_type: bool = True,
    datetime: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """Pack obj as MessagePack bytes: same contract, bytes and errors as
    fastnet.pack.py.packb (byte-identical with ``msgpack.packb(obj,
    use_bin_type=True, datetime=True)``)."""
    if max_depth is not DEFAULT_MAX_DEPTH:
        check_limit(max_depth, "max_depth")
    if default is not None:
        check_default(default)
    try:
        stream = _dumps(obj, 4)  # type: ignore[arg-type]
    except ValueError:
        # unmarshallable (a datetime, ExtType, subclass, object for
        # default=...) or nested past marshal's own limit
        return py.packb(obj, default=default, use_bin_type=use_bin_type, datetime=datetime,
                        max_depth=max_depth)
    try:
        enc = _tls.enc
    except AttributeError:
        enc = _new_encoder()
    n = _encode(enc, stream, len(stream), max_depth, 0 if use_bin_type else lib.FN_PACK_NO_BIN)
    if n >= 0:
        return _unpack(enc.out, n)
    if n == _NOMEM:
        raise MemoryError("fn_pack_encode: out of memory")
    return py.packb(obj, default=default, use_bin_type=use_bin_type, datetime=datetime,
                    max_depth=max_depth)


def c_options(o: UnpackOptions) -> tuple[Any, int]:
    """The ``fn_pack_limits *`` and the flags csrc/pack.c's decoders take
    for a set of options (fastnet.pack._common.unpack_options): for C
    callers of fn_pack_unpackb outside this module (fastnet.wire's batch
    path, the engine's wire framing), so that they decode as unpackb does."""
    limits = ffi.new("fn_pack_limits *", {
        "max_depth": o.max_depth, "max_str": o.max_str_len, "max_bin": o.max_bin_len,
        "max_ext": o.max_ext_len, "max_array": o.max_array_len, "max_map": o.max_map_len,
    })
    flags = ((lib.FN_PACK_RAW if o.raw else 0) | (0 if o.use_list else lib.FN_PACK_TUPLES)
             | (lib.FN_PACK_STRICT_KEYS if o.strict_map_key else 0)
             | (lib.FN_PACK_TS_DATETIME if o.timestamp == TIMESTAMP_AS_DATETIME else 0))
    return limits, flags


_DEFAULT = unpack_options()
_DEFAULT_C = c_options(_DEFAULT)


def _new_decoder() -> Any:
    dec = lib.fn_pack_dec_new(_DEFAULT_C[0], 0)
    if dec == ffi.NULL:
        raise MemoryError("fn_pack_dec_new failed")
    dec = ffi.gc(dec, lib.fn_pack_dec_free)
    _tls.dec = dec
    return dec


def unpackb(data: bytes | bytearray | memoryview, **options: Any) -> Any:
    """Unpack exactly one MessagePack object from data: same options,
    results and errors as fastnet.pack.py.unpackb."""
    if options:
        o = unpack_options(**options)
        limits, flags = c_options(o)
    else:
        o = _DEFAULT
        limits, flags = _DEFAULT_C
    if type(data) is not bytes:
        data = bytes(byte_view(data))
    if len(data) > o.max_buffer_size:
        raise UnpackLimitExceeded("max_buffer_size", len(data), o.max_buffer_size)
    try:
        dec = _tls.dec
    except AttributeError:
        dec = _new_decoder()
    n = _unpackb_c(dec, data, len(data), limits, flags | _LOADS_UTF8)
    if n >= 0:
        try:
            return _loads(_buffer(dec.out, n))
        except (ValueError, TypeError, EOFError):
            pass  # invalid UTF-8, or nested past marshal's own limit: the twin decides
    elif n == _NOMEM:
        raise MemoryError("fn_pack_unpackb: out of memory")
    return py._unpackb(data, o)


class Unpacker:
    """Streaming, sans-IO unpacking over csrc/pack.c: same contract, limits
    and errors as fastnet.pack.py.Unpacker."""

    def __init__(self, **options: Any) -> None:
        self._o = unpack_options(**options)
        limits, flags = c_options(self._o)
        dec = lib.fn_pack_dec_new(limits, flags)
        if dec == ffi.NULL:
            raise MemoryError("fn_pack_dec_new failed")
        self._d: Any = ffi.gc(dec, lib.fn_pack_dec_free)
        self._error: Optional[UnpackError] = None

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet returned in an object."""
        return lib.fn_pack_dec_buffered(self._d)

    @property
    def work(self) -> int:
        """Items transcoded so far (each one exactly once: the O(bytes fed) bound)."""
        return self._d.work

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data. BufferFull past max_buffer_size."""
        view = byte_view(data)
        if self._error is not None:
            return
        size = lib.fn_pack_dec_buffered(self._d) + len(view)
        if size > self._o.max_buffer_size:
            raise BufferFull("max_buffer_size", size, self._o.max_buffer_size)
        if lib.fn_pack_dec_feed(self._d, ffi.from_buffer(view), len(view)) != 0:
            raise MemoryError("fn_pack_dec_feed: out of memory")

    def reset(self) -> None:
        """Forget buffered bytes, the object in progress and any error."""
        lib.fn_pack_dec_reset(self._d)
        self._error = None

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._error is not None:
            raise self._error
        d = self._d
        rc = lib.fn_pack_dec_next(d)
        if rc == _NEED_DATA:
            raise StopIteration
        if rc == _OBJECT:
            if not d.fallback:
                try:
                    return _loads(_buffer(d.out, d.out_len))
                except (ValueError, TypeError, EOFError):
                    pass
            size = d.obj_len
        elif rc == _NOMEM:
            raise MemoryError("fn_pack_dec_next: out of memory")
        else:
            size = lib.fn_pack_dec_buffered(d)
        # The twin decodes this object (it holds an ext) or words its error.
        data = bytes(_buffer(lib.fn_pack_dec_data(d), size))
        try:
            return py.decode_one(data, self._o)
        except UnpackError as exc:
            self._error = exc
            raise
