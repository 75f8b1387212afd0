"""The sans-IO HTTP/2 connection (RFC 9113), both roles.

Bytes in (:meth:`H2Connection.receive`) give events
(:mod:`fastnet.h2.events`); calls (``send_headers``, ``send_data``, ...)
queue frames; :meth:`H2Connection.data_to_send` hands over the bytes to
write. Nothing here touches a socket or a clock.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Optional

from ..errors import H2ErrorCode
from .events import Event

__all__ = ["H2Connection"]

#: A header list as callers give it: (name, value) pairs, bytes or str.
HeaderInput = Iterable[tuple[bytes | str, bytes | str]]


class H2Connection:
    """One HTTP/2 connection's state: ``client_side`` True for the client.

    ``settings`` are the SETTINGS we advertise (fastnet.codec.h2frame
    Setting ids -> values), over the defaults of fastnet.limits; they are in
    force once the peer acknowledges them.
    """

    def __init__(self, client_side: bool, settings: Optional[Mapping[int, int]] = None) -> None:
        raise NotImplementedError

    def initiate(self) -> None:
        """Queue the start of the connection: the client preface (client
        side) and our SETTINGS. Call once, before anything else."""
        raise NotImplementedError

    def receive(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes from the peer; return the events they complete, in
        order. Control frames are answered here (SETTINGS ACK, PING ACK). A
        stream error resets that stream (StreamReset, remote False); a
        connection error queues GOAWAY and ends the list with
        ConnectionTerminated(remote=False, error=...): nothing is read after
        it (later calls return [])."""
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        """Every byte queued so far (b"" if none), removed from the queue."""
        raise NotImplementedError

    def get_next_available_stream_id(self) -> int:
        """The next stream id this side may open (odd for a client)."""
        raise NotImplementedError

    def send_headers(self, stream_id: int, headers: HeaderInput, end_stream: bool = False) -> None:
        """Queue a HEADERS frame (CONTINUATIONs past the peer's max frame
        size): a client opens stream_id with a request, a server answers
        with a response (1xx first, if any). ValueError for a stream id or
        state where the RFC does not allow it."""
        raise NotImplementedError

    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview,
                  end_stream: bool = False) -> int:
        """Queue as much of data as the flow-control windows allow now (the
        smaller of the stream's and the connection's), in frames no larger
        than the peer's SETTINGS_MAX_FRAME_SIZE; return how many bytes were
        taken. Nothing is buffered here: when the windows are short the
        caller keeps the rest and sends it after a WindowUpdated event
        (fastnet.h2 streams do that for you: ``await stream.send_data``).
        end_stream is honoured only when all of data was taken (then the
        return value is len(data)); an empty data with end_stream sends an
        empty END_STREAM DATA frame, which the windows never block."""
        raise NotImplementedError

    def send_trailers(self, stream_id: int, headers: HeaderInput) -> None:
        """Queue a trailing HEADERS block with END_STREAM (no pseudo
        fields): the end of our side of the stream."""
        raise NotImplementedError

    def end_stream(self, stream_id: int) -> None:
        """End our side of the stream with an empty END_STREAM DATA frame."""
        raise NotImplementedError

    def reset_stream(self, stream_id: int, error_code: int = H2ErrorCode.CANCEL) -> None:
        """Queue RST_STREAM; the stream is closed from now on (frames the
        peer had in flight for it are ignored)."""
        raise NotImplementedError

    def ping(self, data: Optional[bytes] = None) -> bytes:
        """Queue a PING; return its 8 opaque bytes (a PingAcked with them
        is the answer). data defaults to a counter."""
        raise NotImplementedError

    def close(self, error_code: int = H2ErrorCode.NO_ERROR,
              last_stream_id: Optional[int] = None, additional_data: bytes = b"") -> None:
        """Queue GOAWAY. last_stream_id defaults to the highest stream the
        peer opened that we processed. With NO_ERROR the streams at or
        below it go on (a graceful drain); new ones are refused."""
        raise NotImplementedError

    def acknowledge(self, stream_id: int, n: int) -> None:
        """The user consumed n flow-controlled bytes of stream_id (from
        DataReceived.flow_controlled_length): give the peer that credit
        back, on the stream and the connection, with WINDOW_UPDATE frames
        once half a window is owed (fewer, larger updates)."""
        raise NotImplementedError

    def local_flow_window(self, stream_id: int) -> int:
        """How many DATA bytes we may send on stream_id now (the smaller
        of its window and the connection's)."""
        raise NotImplementedError

    def update_settings(self, settings: Mapping[int, int]) -> None:
        """Queue a SETTINGS frame with new values of ours (in force on ACK)."""
        raise NotImplementedError

    @property
    def open_streams(self) -> int:
        """Streams open or half-closed (counted against concurrency limits)."""
        raise NotImplementedError
