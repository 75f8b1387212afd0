"""The request batcher in pure Python: the readable reference twin.

read() feeds a read to a WireDecoder and takes the frames at the head of
its buffer while they are plain REQUESTs (no codec, no metadata flag) of
the batcher's version whose bodies unpack; PONG and GOAWAY frames among
them are dropped, since nothing answers them. The first other frame (or a
sticky decoder error) waits for next_frame(), and ``stopped`` says so.
replies() frames one RESPONSE per result, or returns None when the caller
must answer itself (a result that does not pack, a body that reaches the
compression threshold).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from ...codec.wire import FLAG_CODEC_MASK, FLAG_METADATA, GOAWAY, PONG, REQUEST, Frame
from ...codec.wire.py import WireDecoder
from ...errors import WireFrameError
from ...limits import DEFAULT_WIRE_MAX_BODY
from ...pack import py as pack
from ._common import frame_replies

__all__ = ["RequestBatcher"]

_PLAIN = FLAG_CODEC_MASK | FLAG_METADATA


class RequestBatcher:
    """A server's side of one wire connection's frames (see the module).

    ``version`` is the connection's negotiated version; 0 (the start)
    batches nothing, so every frame goes through next_frame() until the
    caller sets it.
    """

    def __init__(self, max_body: int = DEFAULT_WIRE_MAX_BODY) -> None:
        self._decoder = WireDecoder(max_body)
        self._held: Optional[Frame] = None  # the frame read() stopped at
        self._ids: list[int] = []
        self.version = 0
        #: Whether the last read() stopped at a frame (or a decoder error)
        #: that next_frame() returns (raises); False: it needs more data.
        self.stopped = False

    @property
    def max_body(self) -> int:
        """The body length limit."""
        return self._decoder.max_body

    @property
    def buffered(self) -> int:
        """Bytes held and not yet returned (in a batch or a frame)."""
        held = self._held
        return self._decoder.buffered + (0 if held is None else 12 + len(held.body))

    @property
    def ids(self) -> list[int]:
        """The request ids of the last read's requests, in order."""
        return list(self._ids)

    def read(self, data: bytes | bytearray | memoryview = b"", *, append: bool = False) -> list[Any]:
        """Feed data, then return the objects of the plain REQUESTs at the
        head of the buffer (their ids in ``ids``; with append, after the
        last read's)."""
        if data:
            self._decoder.feed(data)
        if not append:
            self._ids = []
        objs: list[Any] = []
        self.stopped = True
        while True:
            frame = self._held
            if frame is None:
                try:
                    frame = self._decoder.next_frame()
                except WireFrameError:
                    return objs
                if frame is None:
                    self.stopped = False
                    return objs
            if frame.type == PONG or frame.type == GOAWAY:
                self._held = None
                continue
            if (frame.type != REQUEST or not self.version or frame.version != self.version
                    or frame.flags & _PLAIN):
                self._held = frame
                return objs
            try:
                obj = pack.unpackb(frame.body)
            except ValueError:
                self._held = frame
                return objs
            self._held = None
            objs.append(obj)
            self._ids.append(frame.request_id)

    def next_frame(self) -> Optional[Frame]:
        """The frame read() stopped at, then the next ones: the decoder's
        next_frame() (None until more data arrives; errors are sticky)."""
        frame = self._held
        if frame is not None:
            self._held = None
            return frame
        return self._decoder.next_frame()

    def push_id(self, request_id: int) -> None:
        """Keep one more request id (a request the caller decoded itself)."""
        self._ids.append(request_id)

    def replies(self, results: Sequence[Any], threshold: Optional[int] = None) -> Optional[bytes]:
        """One RESPONSE frame per result (this version, flags 0, the ids of
        the last read's requests), or None if the caller must frame them:
        the count is not the ids', a result does not pack, or a body is at
        least threshold bytes long (the caller compresses it)."""
        return frame_replies(results, self._ids, self.version, threshold, pack.packb)
