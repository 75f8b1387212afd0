"""Sans-IO framing in pure Python: length-prefixed frames and lines.

The reference for csrc/framer.c. Decoders buffer what feed() is given and
hand out whole messages from next_message(); they never touch a socket.
Limits come from fastnet.limits and are checked as early as the bytes allow:
a declared frame length the moment its header is complete, a line's length
while it is still arriving. Errors are sticky until reset(), and bytes fed
after an error are discarded.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from functools import partial
from typing import Callable, Iterator

from ...errors import FrameTooLarge, LineTooLong, ProtocolError, VarintError, VarintTruncated
from ...limits import DEFAULT_MAX_FRAME, DEFAULT_MAX_LINE, VARINT_MAX_BYTES
from .._common import byte_view, check_uint64
from ._common import LINE_BREAK, bad_frame_header, check_be32_payload, check_header
from ..varint.py import decode_uvarint, encode_uvarint

__all__ = ["LengthPrefixDecoder", "LineDecoder", "encode_frame", "encode_line"]


def encode_frame(payload: bytes | bytearray | memoryview, header: str = "be32") -> bytes:
    """Return payload behind its length header ("be32" or "varint").

    OverflowError if a be32 header cannot declare the payload's length.
    """
    view = byte_view(payload)
    check_header(header)
    if header == "be32":
        check_be32_payload(len(view))
        prefix = len(view).to_bytes(4, "big")
    else:
        prefix = encode_uvarint(len(view))
    return prefix + view


def encode_line(payload: bytes | bytearray | memoryview) -> bytes:
    """Return payload + b"\\r\\n"; ValueError if payload holds "\\r" or "\\n"."""
    data = byte_view(payload).tobytes()
    if b"\n" in data or b"\r" in data:
        raise ValueError(LINE_BREAK)
    return data + b"\r\n"


class _Decoder(ABC):
    """What both decoders share: the buffer, the limit and the sticky error."""

    def __init__(self, max_size: int, name: str) -> None:
        self._max_size = check_uint64(max_size, name)
        self._buf = bytearray()  # unconsumed bytes only
        # Builds the sticky error anew for each raise (re-raising one
        # instance would grow its traceback forever).
        self._error: Callable[[], ProtocolError] | None = None

    @property
    def max_size(self) -> int:
        """The limit this decoder enforces."""
        return self._max_size

    @property
    def buffered(self) -> int:
        """Bytes held and not yet returned as messages."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer a copy of data; discarded after a protocol error."""
        view = byte_view(data)
        if self._error is None:
            self._buf += view

    @abstractmethod
    def next_message(self) -> bytes | None:
        """Return the next whole message, or None until more data arrives."""

    def reset(self) -> None:
        """Forget buffered bytes and any error."""
        self._buf.clear()
        self._error = None

    def __iter__(self) -> Iterator[bytes]:
        """Yield whole messages until more data is needed."""
        while (message := self.next_message()) is not None:
            yield message

    def _fail(self, make_error: Callable[[], ProtocolError]) -> ProtocolError:
        self._error = make_error
        return make_error()


class LengthPrefixDecoder(_Decoder):
    """Frames with a 4-byte big-endian ("be32") or LEB128 ("varint") length.

    next_message() raises FrameTooLarge(size, max_frame_size) as soon as a
    header declaring more than max_frame_size bytes is complete, and
    BadFrameHeader(cause) for a malformed varint header. A zero-length frame
    is a valid empty message.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME, header: str = "be32") -> None:
        check_header(header)
        super().__init__(max_frame_size, "max_frame_size")
        self._header = header
        # (header length, payload length) of the frame being received, once
        # its header is complete.
        self._frame: tuple[int, int] | None = None

    def next_message(self) -> bytes | None:
        """Return the next whole frame's payload, or None until more data arrives."""
        if self._error is not None:
            raise self._error()
        if self._frame is None:
            self._frame = self._parse_header()
            if self._frame is None:
                return None
        header_len, size = self._frame
        end = header_len + size
        if len(self._buf) < end:
            return None
        message = bytes(self._buf[header_len:end])
        del self._buf[:end]
        self._frame = None
        return message

    def reset(self) -> None:
        """Forget buffered bytes, the frame in progress and any error."""
        super().reset()
        self._frame = None

    def _parse_header(self) -> tuple[int, int] | None:
        """(header length, payload length), None while incomplete; raises if bad."""
        buf = self._buf
        if self._header == "be32":
            if len(buf) < 4:
                return None
            header_len, size = 4, int.from_bytes(buf[:4], "big")
        else:
            malformed: type[VarintError] | None = None
            try:
                size, header_len = decode_uvarint(buf[:VARINT_MAX_BYTES])
            except VarintTruncated:
                return None  # incomplete, and no byte proves it bad yet
            except VarintError as exc:
                malformed = type(exc)
            if malformed is not None:
                raise self._fail(partial(bad_frame_header, malformed))
        # Checked before any payload byte is needed: a peer cannot make us
        # wait for (or buffer) a frame we will refuse anyway.
        if size > self._max_size:
            raise self._fail(partial(FrameTooLarge, size, self._max_size))
        return header_len, size


class LineDecoder(_Decoder):
    """Lines ending in "\\r\\n" (and in a bare "\\n" too with bare_lf=True).

    Messages are lines without their delimiter; with bare_lf a "\\r" right
    before the "\\n" is stripped. In strict mode a lone "\\r" or "\\n" is
    content. next_message() raises LineTooLong(size, max_line_length) when a
    line's content exceeds the limit, or when more content than that is
    buffered without a delimiter (a final "\\r" that may start "\\r\\n" is not
    counted).
    """

    def __init__(self, max_line_length: int = DEFAULT_MAX_LINE, bare_lf: bool = False) -> None:
        super().__init__(max_line_length, "max_line_length")
        self._bare_lf = bool(bare_lf)
        self._scan = 0  # where the "\n" search resumes in _buf

    def next_message(self) -> bytes | None:
        """Return the next whole line, or None until more data arrives."""
        if self._error is not None:
            raise self._error()
        buf = self._buf
        # Must be O(bytes read) to avoid DoS by a slow, long line: the search
        # resumes at _scan, past every byte examined before.
        newline = buf.find(b"\n", self._scan)
        while newline >= 0:
            if newline > 0 and buf[newline - 1] == 0x0D:
                stop = newline - 1
            elif self._bare_lf:
                stop = newline
            else:  # strict: a lone "\n" is line content
                newline = buf.find(b"\n", newline + 1)
                continue
            if stop > self._max_size:
                raise self._fail(partial(LineTooLong, stop, self._max_size))
            line = bytes(buf[:stop])
            del buf[: newline + 1]
            self._scan = 0
            return line
        self._scan = len(buf)
        # No delimiter yet: a final "\r" may start "\r\n", so it is not content.
        content = len(buf) - (1 if buf.endswith(b"\r") else 0)
        if content > self._max_size:
            raise self._fail(partial(LineTooLong, content, self._max_size))
        return None

    def reset(self) -> None:
        """Forget buffered bytes and any error."""
        super().reset()
        self._scan = 0
