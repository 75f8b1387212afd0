"""What :meth:`fastnet.h2.H2Connection.receive` returns: one event per
thing the peer did that its user must hear of, in the order the frames
came. Header lists are lists of ``(name, value)`` tuples of bytes, pseudo
fields first, as HPACK decoded them (already validated, RFC 9113 8.2-8.3)."""
from __future__ import annotations

__all__ = [
    "ConnectionTerminated", "DataReceived", "Event", "Headers", "InformationalResponseReceived",
    "PingAcked", "PingReceived", "PriorityUpdated", "RequestComplete", "RequestReceived",
    "ResponseReceived", "SettingsAcknowledged", "SettingsChanged", "StreamEnded", "StreamReset", "TrailersReceived",
    "WindowUpdated",
]

#: A header list: (name, value) pairs of bytes, in order.
Headers = list[tuple[bytes, bytes]]


class Event:
    """Base class of the connection's events."""

    __slots__ = ()

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        names: tuple[str, ...] = self.__slots__
        return type(other) is type(self) and all(getattr(self, n) == getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]


class RequestReceived(Event):
    """Server side: a request's HEADERS opened stream ``stream_id``.
    ``end_stream``: it has no body (a StreamEnded follows at once)."""

    __slots__ = ("stream_id", "headers", "end_stream")

    def __init__(self, stream_id: int, headers: Headers, end_stream: bool = False) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.end_stream = end_stream


class RequestComplete(Event):
    """Server side, only where the connection was made with
    ``whole_requests=True``: a request whose HEADERS and one DATA frame
    with END_STREAM came together in one read, as one event instead of
    RequestReceived, DataReceived and StreamEnded. The stream is
    half-closed (remote); ``flow_controlled_length`` is the DATA frame's
    flow-controlled size, to acknowledge once consumed."""

    __slots__ = ("stream_id", "headers", "data", "flow_controlled_length")

    def __init__(self, stream_id: int, headers: Headers, data: bytes,
                 flow_controlled_length: int) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.data = data
        self.flow_controlled_length = flow_controlled_length


class ResponseReceived(Event):
    """Client side: the final (non-1xx) response headers of a stream."""

    __slots__ = ("stream_id", "headers", "end_stream")

    def __init__(self, stream_id: int, headers: Headers, end_stream: bool = False) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.end_stream = end_stream


class InformationalResponseReceived(Event):
    """Client side: a 1xx response's headers (more headers follow)."""

    __slots__ = ("stream_id", "headers")

    def __init__(self, stream_id: int, headers: Headers) -> None:
        self.stream_id = stream_id
        self.headers = headers


class TrailersReceived(Event):
    """A trailing header block; the stream's end follows (StreamEnded)."""

    __slots__ = ("stream_id", "headers")

    def __init__(self, stream_id: int, headers: Headers) -> None:
        self.stream_id = stream_id
        self.headers = headers


class DataReceived(Event):
    """A DATA frame's payload. ``flow_controlled_length`` (payload plus
    padding) is what the user gives back with ``acknowledge(stream_id, n)``
    once it has consumed the data: until then it counts against the
    windows we advertised, which is how a slow reader slows the peer."""

    __slots__ = ("stream_id", "data", "flow_controlled_length", "end_stream")

    def __init__(self, stream_id: int, data: bytes, flow_controlled_length: int,
                 end_stream: bool = False) -> None:
        self.stream_id = stream_id
        self.data = data
        self.flow_controlled_length = flow_controlled_length
        self.end_stream = end_stream


class StreamEnded(Event):
    """The peer ended its side of the stream (END_STREAM)."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class StreamReset(Event):
    """A stream was reset: by the peer (``remote``, its RST_STREAM) or by
    us for a stream error it made (our RST_STREAM is queued; ``remote``
    False). Its state is closed; nothing more comes on it."""

    __slots__ = ("stream_id", "error_code", "remote")

    def __init__(self, stream_id: int, error_code: int, remote: bool = True) -> None:
        self.stream_id = stream_id
        self.error_code = error_code
        self.remote = remote


class WindowUpdated(Event):
    """The peer's window grew by ``delta`` for ``stream_id`` (0: the
    connection's; also sent for every stream when a SETTINGS change of
    INITIAL_WINDOW_SIZE grows them): blocked sends may go on."""

    __slots__ = ("stream_id", "delta")

    def __init__(self, stream_id: int, delta: int) -> None:
        self.stream_id = stream_id
        self.delta = delta


class SettingsChanged(Event):
    """The peer's SETTINGS (already acknowledged and applied): ``changed``
    maps each setting id in the frame to its new value."""

    __slots__ = ("changed",)

    def __init__(self, changed: dict[int, int]) -> None:
        self.changed = changed


class SettingsAcknowledged(Event):
    """The peer acknowledged our SETTINGS: they are in force now."""

    __slots__ = ("changed",)

    def __init__(self, changed: dict[int, int]) -> None:
        self.changed = changed


class PingReceived(Event):
    """The peer pinged (already answered with a PING ACK)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class PingAcked(Event):
    """The answer to one of our pings (its 8 opaque bytes)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class PriorityUpdated(Event):
    """A PRIORITY frame (RFC 9113 deprecates the scheme: it is reported,
    never acted on)."""

    __slots__ = ("stream_id", "depends_on", "weight", "exclusive")

    def __init__(self, stream_id: int, depends_on: int, weight: int, exclusive: bool) -> None:
        self.stream_id = stream_id
        self.depends_on = depends_on
        self.weight = weight
        self.exclusive = exclusive


class ConnectionTerminated(Event):
    """GOAWAY. ``remote``: the peer sent it (streams above
    ``last_stream_id`` were not processed and may be retried; those at or
    below it go on unless ``error_code`` is an error). Not remote: we
    ended the connection for a connection error (our GOAWAY is queued,
    ``error`` says why); nothing more is received after it."""

    __slots__ = ("error_code", "last_stream_id", "additional_data", "remote", "error")

    def __init__(self, error_code: int, last_stream_id: int, additional_data: bytes = b"",
                 remote: bool = True, error: Exception | None = None) -> None:
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.additional_data = additional_data
        self.remote = remote
        self.error = error
