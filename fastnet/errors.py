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


class FastnetError(Exception):
    """Base class of every exception fastnet raises on purpose."""


class NativeUnavailable(ImportError, FastnetError):
    """The C extension is missing or broken and FASTNET_REQUIRE_NATIVE=1."""


class ProtocolError(FastnetError, ValueError):
    """The remote peer sent bytes that break the protocol."""


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


class EngineError(FastnetError, OSError):
    """An engine operation failed at the OS level (bind, listen, connect)."""


class ConnectionClosed(FastnetError, ConnectionError):
    """The peer closed the connection before a whole message arrived."""


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
