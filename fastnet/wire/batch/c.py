"""The request batcher over csrc/wire.c's session (fastnet.wire.batch.py
is the reference): one C call per read decodes every plain REQUEST of it
into one marshal stream that one ``marshal.loads`` turns into the list of
requests; one ``marshal.dumps`` of the results and one C call frame every
RESPONSE. What the C side will not take (a body only the Python twin of
fastnet.pack can decode, a result marshal or C pack refuses) is done here
with fastnet.pack, so the twins agree result for result."""
from __future__ import annotations

import marshal
import threading
from typing import Any, Optional, Sequence

from ... import native, pack
from ...codec.wire import Frame
from ...codec.wire.c import WireDecoder
from ...limits import DEFAULT_PACK_MAX_DEPTH, DEFAULT_WIRE_MAX_BODY
from ...pack._common import unpack_options
from ...pack.c import c_options
from ._common import frame_replies

__all__ = ["RequestBatcher"]

lib = native.require()
ffi = native.ffi

_LIMITS, _FLAGS = c_options(unpack_options())
_MAX_BUFFER = unpack_options().max_buffer_size
_CALLER = lib.FN_WIRE_SESS_CALLER
_FALLBACK = lib.FN_WIRE_SESS_FALLBACK
_INTO = lib.FN_WIRE_SESS_INTO
_INTO_REPLY = lib.FN_WIRE_SESS_INTO_REPLY
_NOMEM = lib.FN_E_NOMEM
_NO_THRESHOLD = 2**64 - 1
#: Results up to this size are copied into each thread's buffer, which
#: Python reads without asking C where they are.
INTO_SIZE = 256 * 1024
_read = lib.fn_wire_sess_read
_replies = lib.fn_wire_sess_replies
_loads = marshal.loads
_dumps = marshal.dumps
_buffer = ffi.buffer
_unpack = ffi.unpack
_tls = threading.local()  # each thread's fn_wire_work and its buffer


def _new_work() -> Any:
    into = bytearray(INTO_SIZE)
    work = lib.fn_wire_work_new(_LIMITS, _FLAGS, _MAX_BUFFER, DEFAULT_PACK_MAX_DEPTH,
                                ffi.from_buffer(into), INTO_SIZE)
    if work == ffi.NULL:
        raise MemoryError("fn_wire_work_new failed")
    _tls.work = ffi.gc(work, lib.fn_wire_work_free)
    _tls.into = memoryview(into)  # the view keeps the bytearray's size (and address) fixed
    return _tls.work


class RequestBatcher:
    """A server's side of one wire connection's frames (see
    fastnet.wire.batch.py, the reference, for the contract).

    A batcher belongs to the thread that first reads with it: it keeps that
    thread's fn_wire_work (pack decoder and encoder, result buffer), which
    no other thread uses, so it must not be called from another thread
    (each engine feeds a connection from one thread)."""

    def __init__(self, max_body: int = DEFAULT_WIRE_MAX_BODY) -> None:
        sess = lib.fn_wire_sess_new(max_body)
        if sess == ffi.NULL:
            raise MemoryError("fn_wire_sess_new failed")
        self._s: Any = ffi.gc(sess, lib.fn_wire_sess_free)
        self._decoder = WireDecoder.over(lib.fn_wire_sess_decoder(self._s), max_body, self._s)
        self._version = 0
        self._work: Any = None  # the fn_wire_work of the thread that read first
        self._into: memoryview = memoryview(b"")
        #: Whether the last read() stopped at a frame (or a decoder error)
        #: that next_frame() returns (raises); False: it needs more data.
        self.stopped = False

    def _bind(self) -> Any:
        """Take this thread's fn_wire_work (see the class docstring)."""
        try:
            self._work, self._into = _tls.work, _tls.into
        except AttributeError:
            self._work, self._into = _new_work(), _tls.into
        return self._work

    @property
    def version(self) -> int:
        """The connection's version; 0 batches nothing."""
        return self._version

    @version.setter
    def version(self, version: int) -> None:
        lib.fn_wire_sess_set_version(self._s, version)
        self._version = version

    @property
    def max_body(self) -> int:
        """The body length limit."""
        return self._decoder.max_body

    @property
    def buffered(self) -> int:
        """Bytes held and not yet returned (in a batch or a frame)."""
        return self._decoder.buffered

    @property
    def ids(self) -> list[int]:
        """The request ids of the last read's requests, in order."""
        n = ffi.new("size_t *")
        ids = lib.fn_wire_sess_ids(self._s, n)
        return ffi.unpack(ids, n[0]) if n[0] else []

    def read(self, data: bytes | bytearray | memoryview = b"", *, append: bool = False) -> list[Any]:
        """Feed data, then return the objects of the plain REQUESTs at the
        head of the buffer (their ids in ``ids``; with append, after the
        last read's)."""
        work = self._work
        if work is None:
            work = self._bind()
        if type(data) is not bytes:
            data = bytes(data)
        r = _read(self._s, work, data, len(data), append)
        if r < 0:
            raise MemoryError("fn_wire_sess_read: out of memory")
        if r >> 3:
            objs = _loads(self._into) if r & _INTO else _loads(_buffer(work.out, r >> 3))
        else:
            objs = []
        while r & 3 == _FALLBACK:  # a valid body marshal cannot carry
            r = self._fallback(work, objs)
        self.stopped = r & 3 == _CALLER
        return objs

    def _fallback(self, work: Any, objs: list[Any]) -> int:
        """Decode the frame read() stopped at with fastnet.pack, then read on."""
        frame = self._decoder.next_frame()
        assert frame is not None
        try:
            obj = pack.unpackb(frame.body)
        except ValueError:  # not expected (C found it whole and valid): the caller decides
            lib.fn_wire_unread(lib.fn_wire_sess_decoder(self._s))
            return _CALLER
        objs.append(obj)
        self.push_id(frame.request_id)
        r = _read(self._s, work, b"", 0, True)
        if r < 0:
            raise MemoryError("fn_wire_sess_read: out of memory")
        if r >> 3:
            objs += _loads(self._into) if r & _INTO else _loads(_buffer(work.out, r >> 3))
        return r

    def next_frame(self) -> Optional[Frame]:
        """The frame read() stopped at, then the next ones: the decoder's
        next_frame() (None until more data arrives; errors are sticky)."""
        return self._decoder.next_frame()

    def push_id(self, request_id: int) -> None:
        """Keep one more request id (a request the caller decoded itself)."""
        if lib.fn_wire_sess_push_id(self._s, request_id) != 0:
            raise MemoryError("fn_wire_sess_push_id: out of memory")

    def replies(self, results: Sequence[Any], threshold: Optional[int] = None) -> Optional[bytes]:
        """One RESPONSE frame per result (this version, flags 0, the ids of
        the last read's requests), or None if the caller must frame them:
        the count is not the ids', a result does not pack, or a body is at
        least threshold bytes long (the caller compresses it)."""
        work = self._work
        if work is None:
            work = self._bind()
        try:
            stream = _dumps(results, 4)  # type: ignore[arg-type]
        except ValueError:  # something marshal refuses (a datetime, a subclass, ...)
            return self._replies_by_one(results, threshold)
        r = _replies(self._s, work, stream, len(stream),
                     _NO_THRESHOLD if threshold is None else threshold)
        if r >= 0:
            if r & _INTO_REPLY:
                return self._into[: r >> 1].tobytes()
            return _unpack(work.out, r >> 1)
        if r == _NOMEM:
            raise MemoryError("fn_wire_sess_replies: out of memory")
        return self._replies_by_one(results, threshold)

    def _replies_by_one(self, results: Sequence[Any], threshold: Optional[int]) -> Optional[bytes]:
        """replies() with fastnet.pack per result (what C pack would not take)."""
        return frame_replies(results, self.ids, self._version, threshold, pack.packb)
