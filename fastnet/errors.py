"""fastnet's exceptions.

Two families, by who is to blame (h11/h2 style):

* the remote peer broke the protocol: :class:`ProtocolError` and its
  subclasses. Each names the limit or rule that was broken and carries the
  values involved, so a server can log and answer in the protocol's own form.
* the local caller misused the API: plain ``ValueError``/``TypeError``/
  ``OverflowError`` (for example encoding a negative varint).

Every fastnet exception also inherits a builtin, so ``except ValueError``
keeps working for callers that do not know fastnet.
"""
from __future__ import annotations

from enum import IntEnum


class FastnetError(Exception):
    """Base class of every exception fastnet raises on purpose."""


class NativeUnavailable(ImportError, FastnetError):
    """The C extension is missing or broken and FASTNET_REQUIRE_NATIVE=1."""


class ProtocolError(FastnetError, ValueError):
    """The remote peer sent bytes that break the protocol.

    A server that closes the connection for it counts ``closed_`` +
    ``close_reason`` ("protocol" unless a subclass says otherwise)."""

    close_reason = "protocol"


class VarintError(ProtocolError):
    """A malformed LEB128 varint."""


class VarintTruncated(VarintError):
    """The input ended in the middle of a varint."""


class VarintOverlong(VarintError):
    """A varint used more bytes than its value needs (e.g. ``80 00`` for 0)."""


class VarintOverflow(VarintError):
    """A varint's value does not fit in 64 bits."""


class FrameTooLarge(ProtocolError):
    """A length-prefixed frame declared a payload above the maximum frame size."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size, limit)  # args stay (size, limit): picklable
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return f"frame of {self.size} bytes exceeds max_frame_size={self.limit}"


class LineTooLong(ProtocolError):
    """A line exceeded the maximum line length before its delimiter arrived."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size, limit)
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return f"line of at least {self.size} bytes exceeds max_line_length={self.limit}"


class BadFrameHeader(ProtocolError):
    """A varint frame header is malformed (overlong or over 64 bits)."""

    def __init__(self, cause: VarintError) -> None:
        super().__init__(cause)
        self.cause = cause

    def __str__(self) -> str:
        return f"invalid varint frame header: {self.cause}"


class RespProtocolError(ProtocolError):
    """A RESP (Redis protocol) peer broke the protocol.

    ``str()`` is the error text alone. For requests it is exactly what
    redis-server 7 replies after its ``-ERR`` prefix, for example
    ``Protocol error: invalid bulk length``, so a server can answer
    ``b"-ERR " + str(exc).encode("latin-1")`` (latin-1: one character per byte,
    since ``expected '$', got '<byte>'`` may quote any byte).
    """


class ClientQueryBufferLimit(RespProtocolError):
    """A RESP request in progress holds more than client_query_buffer_limit
    bytes. Redis closes such a client without a reply, and so does
    RespServer (counted as closed_query_buffer_limit)."""

    close_reason = "query_buffer_limit"


class EngineError(FastnetError, OSError):
    """An engine operation failed at the OS level (bind, listen, connect)."""


class ConnectionClosed(FastnetError, ConnectionError):
    """The peer closed the connection before a whole message arrived."""


# --- MessagePack (fastnet.pack) ---------------------------------------------


class PackError(FastnetError, ValueError):
    """packb() was given an object it cannot pack (the local caller's fault)."""


class PackTypeError(PackError, TypeError):
    """An object of a type MessagePack has no form for (and no default= for it)."""


class PackOverflow(PackError, OverflowError):
    """An int outside [-2**63, 2**64), or a length over the format's 2**32 - 1."""


class PackDepthError(PackError):
    """Containers nested deeper than max_depth."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    def __str__(self) -> str:
        return f"containers nested deeper than max_depth={self.limit}"


class SelfContaining(PackError):
    """A container that contains itself (a reference cycle) cannot be packed."""

    def __str__(self) -> str:
        return "a container contains itself: a reference cycle cannot be packed"


class UnpackError(ProtocolError):
    """The bytes given to unpackb() or an Unpacker are not valid MessagePack."""


class UnpackTruncated(UnpackError):
    """unpackb(): the input ends inside an object."""

    def __str__(self) -> str:
        return "input ends inside an object (truncated MessagePack)"


class ExtraData(UnpackError):
    """unpackb(): bytes follow the one object. ``unpacked`` is that object,
    ``extra`` the bytes after it."""

    def __init__(self, unpacked: object, extra: bytes) -> None:
        super().__init__(unpacked, extra)
        self.unpacked = unpacked
        self.extra = extra

    def __str__(self) -> str:
        return f"{len(self.extra)} bytes of extra data after the object"


class UnpackLimitExceeded(UnpackError):
    """A declared length, a nesting depth or the input size is over a limit.
    ``limit`` names it (an Unpacker/unpackb option), ``size`` is what the
    input asked for, ``maximum`` the limit's value."""

    def __init__(self, limit: str, size: int, maximum: int) -> None:
        super().__init__(limit, size, maximum)
        self.limit = limit
        self.size = size
        self.maximum = maximum

    def __str__(self) -> str:
        return f"{self.size} exceeds {self.limit}={self.maximum}"


class BufferFull(UnpackLimitExceeded):
    """Unpacker.feed() would buffer more than max_buffer_size bytes."""


class InvalidUtf8(UnpackError):
    """A str whose bytes are not UTF-8 (unpack with raw=True to get bytes)."""


class ReservedByte(UnpackError):
    """The byte 0xc1, which MessagePack reserves ("never used")."""

    def __str__(self) -> str:
        return "reserved type byte 0xc1"


class BadMapKey(UnpackError):
    """A map key that cannot be one: unhashable (a map), or not str/bytes
    with strict_map_key=True."""


class BadTimestamp(UnpackError):
    """A timestamp extension (type -1) of a wrong size, with nanoseconds over
    999999999, or outside the datetime range."""
class ProtoDecodeError(ProtocolError):
    """Bytes that are not a valid serialized Protocol Buffers message.

    ``cause`` names the rule that was broken (one word, the same from both
    wire twins); ``str()`` explains it.
    """

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(cause, detail)
        self.cause = cause
        self.detail = detail

    def __str__(self) -> str:
        return f"invalid protobuf message ({self.cause}): {self.detail}"


class ProtoDepthExceeded(ProtoDecodeError):
    """Submessages and groups nested deeper than the decoder's max_depth."""

    def __init__(self, limit: int) -> None:
        super().__init__("depth", f"submessages nested deeper than max_depth={limit}")
        self.args = (limit,)
        self.limit = limit


class ProtoMessageTooLarge(ProtoDecodeError):
    """A serialized message over the decoder's max_message_size."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("size", f"message of {size} bytes exceeds max_message_size={limit}")
        self.args = (size, limit)
        self.size = size
        self.limit = limit


class ProtoBadUtf8(ProtoDecodeError, UnicodeError):
    """A ``string`` field whose bytes are not valid UTF-8."""


class ProtoJsonError(ProtocolError):
    """JSON that does not map to the message (proto3 JSON mapping)."""


# --- HTTP/1.1 (fastnet.http) ------------------------------------------------


class HttpError(ProtocolError):
    """An HTTP/1.1 peer broke the protocol. ``status_hint`` is the status a
    server answers it with (400, 408, 413, 414, 431, 501, 505), as h11's
    error_status_hint; ``str()`` says which rule or limit was broken."""

    status_hint = 400

    def __init__(self, message: str, status_hint: int | None = None) -> None:
        super().__init__(message)
        if status_hint is not None:
            self.status_hint = status_hint

    def __str__(self) -> str:
        return str(self.args[0])


class HttpMalformed(HttpError):
    """A start line, header field or chunk that breaks RFC 9112's grammar,
    or framing a server must refuse (the request-smuggling cases): 400."""


class HttpRequestLineTooLong(HttpError):
    """A request line longer than max_request_line: 414."""

    status_hint = 414


class HttpHeadersTooLarge(HttpError):
    """A head over max_header_bytes, or with more than max_header_fields
    fields: 431."""

    status_hint = 431


class HttpBodyTooLarge(HttpError):
    """A body over max_body: 413."""

    status_hint = 413


class HttpUnsupportedCoding(HttpError):
    """A transfer coding other than chunked: 501."""

    status_hint = 501


class HttpVersionNotSupported(HttpError):
    """An HTTP major version other than 1 (an HTTP/2 preface included): 505."""

    status_hint = 505


class HttpTimeout(HttpError):
    """A request head that did not arrive within header_timeout: 408."""

    status_hint = 408
class ProtoSchemaError(FastnetError, ValueError):
    """A .proto schema that protoc would reject (fastnet.proto's front end).

    ``errors`` lists every error found, each as protoc prints it:
    ``file:line:col: message`` (``file: message`` where protoc gives no
    position); ``str()`` is those lines. A schema is the local caller's
    input, not a peer's, so this is not a :class:`ProtocolError`.
    """

    def __init__(self, errors: list[str]) -> None:
        super().__init__(errors)
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(self.errors)
class WireFrameError(ProtocolError):
    """A fastnet wire frame header that breaks the layout (fastnet.codec.wire)."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


class WireBadMagic(WireFrameError):
    """A frame that does not start with the wire magic byte 0xFB."""

    def __str__(self) -> str:
        return f"wire frame starts with 0x{self.value:02x}, not the magic 0xfb"


class WireBadVersion(WireFrameError):
    """A frame header whose protocol_version byte is 0."""

    def __str__(self) -> str:
        return "wire frame declares protocol_version 0"


class WireBadType(WireFrameError):
    """A frame type this codec does not know (a new type needs a new version)."""

    def __str__(self) -> str:
        return f"unknown wire frame type {self.value}"


class WireBodyTooLarge(WireFrameError):
    """A frame header declaring a body longer than max_body."""

    def __init__(self, size: int, limit: int) -> None:
        ProtocolError.__init__(self, size, limit)
        self.value = self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return f"wire frame body of {self.size} bytes exceeds max_body={self.limit}"


class WireDecompressError(ProtocolError):
    """A compressed wire body that is corrupt, or that declares or expands to
    more than max_body bytes (checked while decompressing: at most the
    limit is ever produced)."""

    def __init__(self, codec: str, detail: str) -> None:
        super().__init__(codec, detail)
        self.codec = codec
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.codec} body: {self.detail}"


class WireRemoteError(FastnetError, RuntimeError):
    """The wire server answered with an ERROR frame: its code (an
    ``fastnet.wire.ErrorCode`` value), the error's type name and message."""

    def __init__(self, code: int, type_name: str, message: str) -> None:
        super().__init__(code, type_name, message)
        self.code = code
        self.type_name = type_name
        self.message = message

    def __str__(self) -> str:
        return f"wire error {self.code} ({self.type_name}): {self.message}"
class H2ErrorCode(IntEnum):
    """HTTP/2 error codes (RFC 9113 section 7), as RST_STREAM and GOAWAY carry them."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class HpackError(ProtocolError):
    """A header block HPACK cannot decode. The decoder's dynamic table is
    then out of step with the peer's encoder, so this is a connection error
    (RFC 9113 4.3): ``error_code`` is what GOAWAY carries."""

    error_code: H2ErrorCode = H2ErrorCode.COMPRESSION_ERROR


class HpackTruncated(HpackError):
    """The header block ends inside a field representation (RFC 7541 6)."""


class HpackIntegerOverflow(HpackError):
    """An HPACK integer exceeds limits.HPACK_MAX_INTEGER (RFC 7541 5.1)."""


class HpackBadIndex(HpackError):
    """An index of 0 or past the static and dynamic tables (RFC 7541 2.3.3)."""


class HpackBadHuffman(HpackError):
    """A Huffman string holding EOS, or padded with more than 7 bits or with
    bits other than EOS's leading ones (RFC 7541 5.2)."""


class HpackBadTableSizeUpdate(HpackError):
    """A dynamic table size update above the SETTINGS_HEADER_TABLE_SIZE we
    allow, or after the first field of a block (RFC 7541 4.2, 6.3)."""


class HeaderListTooLarge(HpackError):
    """The decoded header list would exceed max_header_list_size (counted as
    RFC 9113 6.5.2 does). Decoding stops there, so the table is lost too:
    the connection ends with ENHANCE_YOUR_CALM, as for other floods."""

    error_code = H2ErrorCode.ENHANCE_YOUR_CALM

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    def __str__(self) -> str:
        return f"decoded header list exceeds max_header_list_size={self.limit}"


class H2FrameError(ProtocolError):
    """An HTTP/2 frame that breaks a frame-level rule of RFC 9113 sections 4
    and 6, treated as a connection error: ``error_code`` is what GOAWAY
    carries, ``frames`` the well-formed frames decoded before it (a caller
    acts on them before it closes), ``section`` the rule broken. Sticky."""

    def __init__(self, error_code: H2ErrorCode, section: str, message: str) -> None:
        super().__init__(error_code, section, message)
        self.error_code = error_code
        self.section = section
        self.message = message
        self.frames: list[object] = []

    def __str__(self) -> str:
        return f"{self.error_code.name} (RFC 9113 {self.section}): {self.message}"


class H2ConnectionError(ProtocolError):
    """The HTTP/2 peer broke a rule of RFC 9113 that ends the connection
    (5.4.1): ``error_code`` is what our GOAWAY carries, ``section`` the
    rule's section. Flood defences raise it with ENHANCE_YOUR_CALM."""

    def __init__(self, error_code: H2ErrorCode, section: str, message: str) -> None:
        super().__init__(error_code, section, message)
        self.error_code = error_code
        self.section = section
        self.message = message

    def __str__(self) -> str:
        return f"{self.error_code.name} (RFC 9113 {self.section}): {self.message}"


class H2StreamReset(FastnetError, ConnectionError):
    """An HTTP/2 stream ended before its time: the peer reset it
    (RST_STREAM, ``remote`` True), we did (a stream error, or reset()), or
    the connection went away (GOAWAY or loss). Raised by a stream's reads
    and sends; ``error_code`` is the H2ErrorCode."""

    def __init__(self, stream_id: int, error_code: int, remote: bool, why: str = "") -> None:
        super().__init__(stream_id, error_code, remote, why)
        self.stream_id = stream_id
        self.error_code = error_code
        self.remote = remote
        self.why = why

    def __str__(self) -> str:
        try:
            name = H2ErrorCode(self.error_code).name
        except ValueError:
            name = hex(self.error_code)
        who = "the peer" if self.remote else "us"
        return f"stream {self.stream_id} reset by {who} with {name}" + (f": {self.why}" if self.why else "")
class GrpcStatusCode(IntEnum):
    """The 17 gRPC status codes (grpc's doc/statuscodes.md), as ``grpc-status``
    carries them. ``fastnet.grpc.StatusCode`` is this class."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class GrpcError(ProtocolError):
    """A peer broke gRPC's framing or header rules; ``status`` is the gRPC
    status the call ends with (the server answers with it, the client
    raises it)."""

    status: GrpcStatusCode = GrpcStatusCode.INTERNAL


class GrpcMessageTooLarge(GrpcError):
    """A message's 5-byte prefix (or its decompressed size) exceeds the
    maximum receive size; refused before the message is buffered."""

    status = GrpcStatusCode.RESOURCE_EXHAUSTED

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size, limit)
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return f"gRPC message of {self.size} bytes exceeds max_receive_message_length={self.limit}"


class GrpcBadPrefix(GrpcError):
    """A message prefix whose compressed-flag byte is neither 0 nor 1."""

    def __init__(self, flag: int) -> None:
        super().__init__(flag)
        self.flag = flag

    def __str__(self) -> str:
        return f"gRPC message prefix has compressed flag {self.flag}, not 0 or 1"


class GrpcTruncated(GrpcError):
    """The stream ended inside a message (its prefix or its payload)."""

    def __init__(self, missing: int) -> None:
        super().__init__(missing)
        self.missing = missing

    def __str__(self) -> str:
        return f"gRPC stream ended {self.missing} bytes short of a whole message"


class GrpcCompressionError(GrpcError):
    """A compressed message that cannot be decompressed, or one flagged
    compressed on a stream without ``grpc-encoding``."""


class GrpcUnknownEncoding(GrpcError):
    """A ``grpc-encoding`` this end does not implement."""

    status = GrpcStatusCode.UNIMPLEMENTED

    def __init__(self, encoding: str) -> None:
        super().__init__(encoding)
        self.encoding = encoding

    def __str__(self) -> str:
        return f"grpc-encoding {self.encoding!r} is not supported"


class GrpcBadHeader(GrpcError):
    """A malformed gRPC header: ``grpc-timeout``, ``-bin`` base64, a
    metadata key, or a missing/invalid ``grpc-status`` in a response."""
