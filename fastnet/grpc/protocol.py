"""gRPC over HTTP/2, sans I/O: what grpc's PROTOCOL-HTTP2.md defines above
the HTTP/2 layer, with no socket and no clock.

- messages: a 5-byte prefix (compressed flag, big-endian 32-bit length)
  then the payload (:class:`MessageDecoder`, :func:`encode_message`);
- compression per message: ``identity``, ``gzip``, ``deflate``;
- ``grpc-timeout`` (1 to 8 digits and a unit), ``grpc-message``
  (percent-encoded UTF-8), metadata (ASCII values; ``-bin`` keys base64);
- the header lists of a request, a response, its trailers and a
  trailers-only response, and the HTTP status a client maps to a gRPC one.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
import struct
import zlib
from typing import Iterable, Optional, Sequence, Union

from .. import limits
from ..errors import (GrpcBadHeader, GrpcBadPrefix, GrpcCompressionError, GrpcMessageTooLarge,
                      GrpcStatusCode, GrpcTruncated, GrpcUnknownEncoding)

StatusCode = GrpcStatusCode

#: A metadata value: ``str`` for ASCII keys, ``bytes`` for ``-bin`` keys.
MetadataValue = Union[str, bytes]
Metadata = Sequence[tuple[str, MetadataValue]]
Headers = list[tuple[bytes, bytes]]

PREFIX = struct.Struct(">BI")
PREFIX_SIZE = PREFIX.size  # 5

#: Encodings this end implements, in the order ``grpc-accept-encoding`` lists them.
ENCODINGS = ("identity", "deflate", "gzip")
ACCEPT_ENCODING = ",".join(ENCODINGS).encode()

CONTENT_TYPE = b"application/grpc"


# -- compression -----------------------------------------------------------

def _wbits(encoding: str) -> int:
    if encoding == "gzip":
        return 31
    if encoding == "deflate":
        return 15
    raise GrpcUnknownEncoding(encoding)


def check_encoding(encoding: Optional[str]) -> None:
    """Raise GrpcUnknownEncoding unless ``encoding`` (a ``grpc-encoding``
    value; None means identity) is one this end implements."""
    if encoding is not None and encoding not in ENCODINGS:
        raise GrpcUnknownEncoding(encoding)


def compress(data: bytes, encoding: str) -> bytes:
    """``data`` compressed with ``encoding`` (gzip or deflate)."""
    c = zlib.compressobj(6, zlib.DEFLATED, _wbits(encoding))
    return c.compress(data) + c.flush()


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """``data`` decompressed, never producing more than ``limit`` bytes: a
    compression bomb stops at ``limit + 1`` (GrpcMessageTooLarge)."""
    d = zlib.decompressobj(_wbits(encoding))
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise GrpcCompressionError(f"{encoding} message cannot be decompressed: {e}") from None
    if len(out) > limit:
        raise GrpcMessageTooLarge(len(out), limit)
    if not d.eof:
        raise GrpcCompressionError(f"{encoding} message is truncated")
    return out


# -- messages --------------------------------------------------------------

def encode_message(payload: bytes, encoding: Optional[str] = None) -> bytes:
    """One length-prefixed message; compressed (flag 1) when ``encoding``
    is gzip or deflate."""
    if encoding is not None and encoding != "identity":
        payload = compress(payload, encoding)
        return PREFIX.pack(1, len(payload)) + payload
    return PREFIX.pack(0, len(payload)) + payload


class MessageDecoder:
    """Incremental decoder of length-prefixed messages from DATA frames.

    ``feed(data)`` returns the payloads completed by ``data`` (decompressed).
    A prefix's length is checked against ``max_size`` from the prefix
    alone, before any of its payload is kept, so a peer declaring 4 GiB
    costs us 5 bytes. ``encoding`` is the stream's ``grpc-encoding`` (None
    or identity: a compressed flag is an error). ``end()`` raises
    GrpcTruncated if the stream ended inside a message. Errors are sticky."""

    __slots__ = ("max_size", "encoding", "_buf", "_need", "_flag", "_error")

    def __init__(self, max_size: int = limits.DEFAULT_GRPC_MAX_RECEIVE_MESSAGE,
                 encoding: Optional[str] = None) -> None:
        check_encoding(encoding)
        self.max_size = max_size
        self.encoding = None if encoding == "identity" else encoding
        self._buf = bytearray()
        self._need = -1   # payload length of the message being read, -1: reading a prefix
        self._flag = 0
        self._error: Optional[Exception] = None

    def feed(self, data: bytes) -> list[bytes]:
        """The payloads completed by ``data``."""
        return [payload for _, payload in self.feed_flagged(data)]

    def feed_flagged(self, data: bytes) -> list[tuple[bool, bytes]]:
        """(was it compressed, payload) for each message completed by ``data``."""
        if self._error is not None:
            raise self._error
        try:
            return self._feed(data)
        except Exception as e:
            self._error = e
            raise

    def _feed(self, data: bytes) -> list[tuple[bool, bytes]]:
        buf = self._buf
        buf += data
        out: list[tuple[bool, bytes]] = []
        pos = 0
        while True:
            if self._need < 0:
                if len(buf) - pos < PREFIX_SIZE:
                    break
                flag, size = PREFIX.unpack_from(buf, pos)
                if flag > 1:
                    raise GrpcBadPrefix(flag)
                if size > self.max_size:
                    raise GrpcMessageTooLarge(size, self.max_size)
                if flag and self.encoding is None:
                    raise GrpcCompressionError("message flagged compressed on a stream "
                                               "without grpc-encoding")
                pos += PREFIX_SIZE
                self._flag, self._need = flag, size
            if len(buf) - pos < self._need:
                break
            payload = bytes(buf[pos:pos + self._need])
            pos += self._need
            self._need = -1
            if self._flag:
                assert self.encoding is not None
                payload = decompress(payload, self.encoding, self.max_size)
            out.append((bool(self._flag), payload))
        del buf[:pos]
        return out

    def end(self) -> None:
        """The stream ended: raise GrpcTruncated if a message is incomplete."""
        if self._error is not None:
            raise self._error
        if self._need >= 0:
            self._error = GrpcTruncated(self._need - len(self._buf))
        elif self._buf:
            self._error = GrpcTruncated(PREFIX_SIZE - len(self._buf))
        if self._error is not None:
            raise self._error


# -- grpc-timeout ----------------------------------------------------------

_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_TIMEOUT_RE = re.compile(rb"([0-9]{1,8})([HMSmun])")
_FORMAT_UNITS = (("n", 1), ("u", 1000), ("m", 10**6), ("S", 10**9), ("M", 60 * 10**9),
                 ("H", 3600 * 10**9))


def parse_timeout(value: bytes) -> float:
    """A ``grpc-timeout`` value in seconds (GrpcBadHeader if malformed)."""
    m = _TIMEOUT_RE.fullmatch(value)
    if m is None:
        raise GrpcBadHeader(f"malformed grpc-timeout {value!r}")
    return int(m.group(1)) * _TIMEOUT_UNITS[m.group(2).decode()]


def format_timeout(seconds: float) -> bytes:
    """``seconds`` as a ``grpc-timeout`` value: the finest unit whose count
    fits in 8 digits, rounded up (a deadline is never made earlier)."""
    ns = max(0, math.ceil(seconds * 1e9))
    for unit, scale in _FORMAT_UNITS:
        count = -(-ns // scale)
        if count <= 99_999_999:
            return b"%d%s" % (count, unit.encode())
    return b"99999999H"


# -- grpc-message ----------------------------------------------------------

_KEEP = frozenset(range(0x20, 0x7F)) - {0x25}


def encode_message_text(text: str) -> bytes:
    """``grpc-message``'s percent-encoding: UTF-8, every byte outside
    0x20-0x7E and ``%`` itself as ``%XX``."""
    raw = text.encode("utf-8", "surrogatepass")
    if all(b in _KEEP for b in raw):
        return raw
    return b"".join(bytes((b,)) if b in _KEEP else b"%%%02X" % b for b in raw)


_PCT_RE = re.compile(rb"%([0-9A-Fa-f]{2})")


def decode_message_text(value: bytes) -> str:
    """The inverse of encode_message_text, lenient as the spec asks: a
    ``%`` not followed by two hex digits is kept as it is, and bytes that
    are not UTF-8 are replaced."""
    raw = _PCT_RE.sub(lambda m: bytes((int(m.group(1), 16),)), value)
    return raw.decode("utf-8", "replace")


# -- metadata --------------------------------------------------------------

_KEY_RE = re.compile(r"[0-9a-z_.\-]+")
_RESERVED = frozenset({"content-type", "te", "grpc-timeout", "grpc-encoding",
                       "grpc-accept-encoding", "grpc-status", "grpc-message",
                       "grpc-status-details-bin", "grpc-message-type", "grpc-previous-rpc-attempts",
                       "grpc-retry-pushback-ms", "grpc-tags-bin", "grpc-trace-bin"})


def is_reserved(key: str) -> bool:
    """Whether ``key`` is gRPC's or HTTP/2's own (pseudo-headers,
    content-type, te, grpc-*): such headers are never user metadata,
    except ``grpc-status-details-bin`` which carries rich status."""
    return key.startswith(":") or key in _RESERVED or key.startswith("grpc-")


def encode_metadata(metadata: Optional[Iterable[tuple[str, MetadataValue]]],
                    allow: frozenset[str] = frozenset()) -> Headers:
    """User metadata as HTTP/2 header fields. Keys are lowercase
    ``[0-9a-z_.-]``; a ``-bin`` key's value is bytes, sent base64 without
    padding; others are printable ASCII. A reserved key (is_reserved) not in
    ``allow`` is a ValueError: the caller's mistake, never sent."""
    out: Headers = []
    if not metadata:
        return out
    for key, value in metadata:
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(f"metadata key {key!r} is not lowercase [0-9a-z_.-]")
        if is_reserved(key) and key not in allow:
            raise ValueError(f"metadata key {key!r} is reserved by gRPC")
        if key.endswith("-bin"):
            if isinstance(value, str):
                value = value.encode()
            raw = base64.b64encode(bytes(value)).rstrip(b"=")
        else:
            if isinstance(value, bytes):
                value = value.decode("ascii")
            if not all(0x20 <= ord(c) <= 0x7E for c in value):
                raise ValueError(f"metadata value of {key!r} is not printable ASCII")
            raw = value.encode("ascii")
        out.append((key.encode("ascii"), raw))
    return out


def decode_metadata_value(key: str, value: bytes) -> MetadataValue:
    """A received header's value as metadata: ``-bin`` values base64
    decoded (padded or not), others as str."""
    if key.endswith("-bin"):
        try:
            return base64.b64decode(value + b"=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise GrpcBadHeader(f"metadata {key!r} is not base64") from None
    return value.decode("latin-1")


def decode_metadata(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, MetadataValue]]:
    """The user metadata among ``headers`` (reserved ones left out, but
    TRAILER_KEYS kept: a client reads them as trailing metadata)."""
    out: list[tuple[str, MetadataValue]] = []
    for name, value in headers:
        key = name.decode("latin-1")
        if is_reserved(key) and key not in TRAILER_KEYS:
            continue
        out.append((key, decode_metadata_value(key, value)))
    return out


# -- header lists ----------------------------------------------------------

def is_grpc_content_type(value: Optional[bytes]) -> bool:
    """``application/grpc`` alone or followed by ``+subtype`` or ``;params``."""
    if value is None or not value.startswith(CONTENT_TYPE):
        return False
    return len(value) == len(CONTENT_TYPE) or value[len(CONTENT_TYPE)] in b"+;"


def request_headers(path: str, authority: str, *, timeout: Optional[float] = None,
                    metadata: Optional[Metadata] = None, encoding: Optional[str] = None,
                    user_agent: bytes = b"fastnet-grpc") -> Headers:
    """A request's header list (pseudo-headers first)."""
    h: Headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
                  (b":authority", authority.encode()), (b"content-type", CONTENT_TYPE),
                  (b"te", b"trailers"), (b"user-agent", user_agent),
                  (b"grpc-accept-encoding", ACCEPT_ENCODING)]
    if timeout is not None:
        h.append((b"grpc-timeout", format_timeout(timeout)))
    if encoding is not None and encoding != "identity":
        h.append((b"grpc-encoding", encoding.encode()))
    h += encode_metadata(metadata)
    return h


def response_headers(metadata: Optional[Metadata] = None,
                     encoding: Optional[str] = None) -> Headers:
    """A response's initial header list."""
    h: Headers = [(b":status", b"200"), (b"content-type", CONTENT_TYPE),
                  (b"grpc-accept-encoding", ACCEPT_ENCODING)]
    if encoding is not None and encoding != "identity":
        h.append((b"grpc-encoding", encoding.encode()))
    h += encode_metadata(metadata)
    return h


#: gRPC's own trailers a server may set through trailing metadata: rich
#: status, and the retry pushback of gRPC's retry design (A6).
TRAILER_KEYS = frozenset({"grpc-status-details-bin", "grpc-retry-pushback-ms"})


#: The trailers of a call that ended well without trailing metadata.
OK_TRAILERS: Headers = [(b"grpc-status", b"0")]

#: response_headers() and OK_TRAILERS as tuples: fastnet.h2 keys its
#: cached header blocks by the tuple given (a list is copied to one first).
RESPONSE_HEAD_FIELDS: tuple[tuple[bytes, bytes], ...] = tuple(response_headers())
OK_TRAILER_FIELDS: tuple[tuple[bytes, bytes], ...] = tuple(OK_TRAILERS)


def trailers(code: int, details: str = "", metadata: Optional[Metadata] = None) -> Headers:
    """A response's trailers: ``grpc-status``, ``grpc-message`` when there
    are details, then trailing metadata (TRAILER_KEYS allowed). OK_TRAILERS
    itself (not a copy) for OK alone: callers must not change it."""
    if code == 0 and not details and not metadata:
        return OK_TRAILERS
    h: Headers = [(b"grpc-status", b"%d" % int(code))]
    if details:
        h.append((b"grpc-message", encode_message_text(details)))
    h += encode_metadata(metadata, allow=TRAILER_KEYS)
    return h


#: What a trailers-only response has before its trailers.
TRAILERS_ONLY_HEAD: Headers = [(b":status", b"200"), (b"content-type", CONTENT_TYPE),
                               (b"grpc-accept-encoding", ACCEPT_ENCODING)]


def trailers_only(code: int, details: str = "", metadata: Optional[Metadata] = None) -> Headers:
    """A trailers-only response: one HEADERS frame (with END_STREAM) holding
    ``:status``, ``content-type`` and the trailers."""
    return TRAILERS_ONLY_HEAD + trailers(code, details, metadata)


_HTTP_TO_GRPC = {400: StatusCode.INTERNAL, 401: StatusCode.UNAUTHENTICATED,
                 403: StatusCode.PERMISSION_DENIED, 404: StatusCode.UNIMPLEMENTED,
                 429: StatusCode.UNAVAILABLE, 502: StatusCode.UNAVAILABLE,
                 503: StatusCode.UNAVAILABLE, 504: StatusCode.UNAVAILABLE}


def status_from_http(http_status: int) -> StatusCode:
    """The gRPC status a client reports for a non-200 HTTP response without
    ``grpc-status`` (grpc's doc/http-grpc-status-mapping.md)."""
    return _HTTP_TO_GRPC.get(http_status, StatusCode.UNKNOWN)


def parse_status(headers: Iterable[tuple[bytes, bytes]]) -> tuple[StatusCode, str]:
    """``grpc-status`` and ``grpc-message`` from trailers; a missing or
    unknown status is UNKNOWN (a number outside the 17 as well)."""
    code: Optional[int] = None
    details = ""
    for name, value in headers:
        if name == b"grpc-status":
            try:
                code = int(value)
            except ValueError:
                code = None
        elif name == b"grpc-message":
            details = decode_message_text(value)
    if code is None:
        return StatusCode.UNKNOWN, details or "missing grpc-status"
    try:
        return StatusCode(code), details
    except ValueError:
        return StatusCode.UNKNOWN, details
