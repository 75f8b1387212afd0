"""The sans-IO HTTP/2 connection (RFC 9113), both roles.

Bytes in (:meth:`H2Connection.receive`) give events
(:mod:`fastnet.h2.events`); calls (``send_headers``, ``send_data``, ...)
queue frames; :meth:`H2Connection.data_to_send` hands over the bytes to
write. Nothing here touches a socket or a clock.

Each read goes through fastnet.codec.h2sess in one call (C, or its
Python twin): its frames parsed (the frame-level rules of sections 4 and
6), field blocks reassembled, HPACK-decoded and checked as a request and
as trailers (8.2, 8.3), all as one list of tuples; this module keeps the
rest of RFC 9113, over those tuples:

* stream states (5.1) in one transition table, :data:`TRANSITIONS`:
  (state, what happened) -> next state; a received frame the table has no
  row for is the error the RFC names for that state (:func:`_violation`);
* stream ids (5.1.1): the peer's new streams have its parity and grow;
* concurrency (5.1.2): a HEADERS past our SETTINGS_MAX_CONCURRENT_STREAMS is
  refused with RST_STREAM(REFUSED_STREAM);
* flow control (5.2, 6.9) at both levels: a DATA frame past a window we
  advertised is FLOW_CONTROL_ERROR (the connection's: connection error; a
  stream's: stream error); we give credit back only as the user
  acknowledges consumed data; we never send past the peer's windows;
* SETTINGS (6.5) answered and applied, ours applied on the peer's ACK;
  PING (6.7) answered; GOAWAY (6.8) with the last stream id processed;
* header validation (8.2, 8.3): the reader's verdicts (lowercase valid
  names, values without NUL/CR/LF or edge whitespace, no
  connection-specific fields, TE only "trailers", pseudo fields first,
  known, once, the required ones present) applied as the stream's state
  asks (request, trailers; a response's here); content-length against the
  DATA received (8.1.1). A malformed message is a stream error
  PROTOCOL_ERROR;
* the flood defences of fastnet.limits (rapid reset, CONTINUATION floods,
  control frame floods): GOAWAY ENHANCE_YOUR_CALM.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Optional, Union

from .. import limits
from ..codec.h2frame import Flag, FrameType, Setting
from ..codec.h2sess import (DATA, ERROR, GOAWAY, HEADERS, NOT_A_REQUEST, PING, PRIORITY,
                            PUSH_PROMISE, RST_STREAM, SETTINGS, WINDOW_UPDATE, Reader, error_of)
from ..codec.h2sess.py import check_fields
from ..codec.hpack import Encoder
from ..errors import H2ConnectionError, H2ErrorCode, H2FrameError, HpackError
from .events import (ConnectionTerminated, DataReceived, Event, Headers,
                     InformationalResponseReceived, PingAcked, PingReceived, PriorityUpdated,
                     RequestComplete, RequestReceived, ResponseReceived, SettingsAcknowledged,
                     SettingsChanged,
                     StreamEnded, StreamReset, TrailersReceived, WindowUpdated)

__all__ = ["H2Connection", "PREFACE", "StreamState", "TRANSITIONS"]

#: A header list as callers give it: (name, value) pairs, bytes or str.
HeaderInput = Iterable[tuple[Union[bytes, str], Union[bytes, str]]]

#: The client connection preface (RFC 9113 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

E = H2ErrorCode


class StreamState:
    """The stream states of RFC 9113 5.1 (no push: never reserved)."""

    IDLE = 0
    OPEN = 1
    HALF_CLOSED_LOCAL = 2
    HALF_CLOSED_REMOTE = 3
    CLOSED = 4
    NAMES = ("idle", "open", "half-closed (local)", "half-closed (remote)", "closed")


# What can happen to a stream (the inputs of the table).
SEND_HEADERS, SEND_DATA, SEND_END, SEND_RST = 0, 1, 2, 3
RECV_HEADERS, RECV_DATA, RECV_END, RECV_RST = 4, 5, 6, 7

S = StreamState
#: (state, input) -> next state. A pair absent from the table is not
#: allowed: a local one is the caller's mistake (ValueError), a received
#: one the error of RFC 9113 5.1 for that state.
TRANSITIONS: dict[tuple[int, int], int] = {
    (S.IDLE, SEND_HEADERS): S.OPEN,
    (S.IDLE, RECV_HEADERS): S.OPEN,
    (S.OPEN, SEND_HEADERS): S.OPEN,
    (S.OPEN, SEND_DATA): S.OPEN,
    (S.OPEN, SEND_END): S.HALF_CLOSED_LOCAL,
    (S.OPEN, RECV_HEADERS): S.OPEN,
    (S.OPEN, RECV_DATA): S.OPEN,
    (S.OPEN, RECV_END): S.HALF_CLOSED_REMOTE,
    (S.OPEN, SEND_RST): S.CLOSED,
    (S.OPEN, RECV_RST): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, RECV_HEADERS): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, RECV_DATA): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, RECV_END): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, SEND_RST): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, RECV_RST): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, SEND_HEADERS): S.HALF_CLOSED_REMOTE,
    (S.HALF_CLOSED_REMOTE, SEND_DATA): S.HALF_CLOSED_REMOTE,
    (S.HALF_CLOSED_REMOTE, SEND_END): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, SEND_RST): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, RECV_RST): S.CLOSED,
}

# Why a stream is closed, as the closed-stream record remembers it.
_ENDED, _RESET_BY_US, _RESET_BY_PEER = 0, 1, 2

_HEADER = struct.Struct(">BHBBI")  # 24-bit length as byte + short, type, flags, stream id
_WINDOW_UPDATE = struct.Struct(">BHBBII")
_RST = struct.Struct(">BHBBII")


class _Stream:
    """One stream's state beside its place in the table."""

    __slots__ = ("id", "state", "send_window", "recv_window", "unacked", "expected_length",
                 "received", "headers_done", "head_request", "local")

    def __init__(self, stream_id: int, send_window: int, recv_window: int, local: bool) -> None:
        self.id = stream_id
        self.state = S.IDLE
        self.send_window = send_window   # what we may still send it
        self.recv_window = recv_window   # what the peer may still send us
        self.unacked = 0                 # consumed, credit not yet given back
        self.expected_length = -1        # content-length of the peer's message, or -1
        self.received = 0                # DATA payload bytes received
        self.headers_done = False        # the peer's final (non-1xx) headers came
        self.head_request = False        # client: we sent HEAD (no body in the response)
        self.local = local               # we opened it


class _Violation(Exception):
    """A stream error found while processing a frame (internal)."""

    def __init__(self, code: H2ErrorCode, why: str) -> None:
        super().__init__(code, why)
        self.code = code
        self.why = why


def _conn_error(code: H2ErrorCode, section: str, message: str) -> H2ConnectionError:
    return H2ConnectionError(code, section, message)


def _later_data(batch: list[tuple], start: int) -> dict[int, int]:
    """For each HEADERS (without END_STREAM) from ``start`` on, the index of
    its stream's END_STREAM DATA where only other streams' HEADERS and DATA
    lie between (a DATA of its own without END_STREAM, or any other frame,
    and it has none)."""
    found: dict[int, int] = {}
    open_: dict[int, int] = {}  # stream -> its HEADERS' index, since the last other frame
    for j in range(start, len(batch)):
        event = batch[j]
        kind = event[0]
        if kind == HEADERS:
            if not event[2]:
                open_[event[1]] = j
            else:
                open_.pop(event[1], None)
        elif kind == DATA:
            h = open_.pop(event[1], None)
            if h is not None and event[2]:
                found[h] = j
        else:
            open_.clear()
    return found


class H2Connection:
    """One HTTP/2 connection's state: ``client_side`` True for the client.

    ``settings`` are the SETTINGS we advertise (fastnet.codec.h2frame
    Setting ids -> values) over these defaults: MAX_CONCURRENT_STREAMS
    limits.DEFAULT_H2_MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE
    limits.DEFAULT_H2_STREAM_WINDOW, MAX_HEADER_LIST_SIZE
    limits.DEFAULT_H2_MAX_HEADER_LIST_SIZE, ENABLE_PUSH 0 (client side);
    they are in force once the peer acknowledges them.
    ``connection_window`` is the connection-level receive window we open
    at the start (WINDOW_UPDATE on stream 0). ``whole_requests`` (server
    side): a request whose HEADERS and single END_STREAM DATA frame came
    in one read, with nothing for the stream's state to decide, is one
    :class:`~fastnet.h2.events.RequestComplete` (for a caller that answers
    such requests at once: fewer events, one stream step).
    """

    def __init__(self, client_side: bool, settings: Optional[Mapping[int, int]] = None, *,
                 connection_window: int = limits.DEFAULT_H2_CONNECTION_WINDOW,
                 whole_requests: bool = False) -> None:
        if whole_requests and client_side:
            raise ValueError("whole_requests is for the server side")
        self.client_side = client_side
        self._whole_requests = whole_requests
        ours: dict[int, int] = {
            Setting.MAX_CONCURRENT_STREAMS: limits.DEFAULT_H2_MAX_CONCURRENT_STREAMS,
            Setting.INITIAL_WINDOW_SIZE: limits.DEFAULT_H2_STREAM_WINDOW,
            Setting.MAX_HEADER_LIST_SIZE: limits.DEFAULT_H2_MAX_HEADER_LIST_SIZE,
        }
        if client_side:
            ours[Setting.ENABLE_PUSH] = 0
        if settings:
            ours.update(settings)
        if not 0 < connection_window <= limits.H2_MAX_WINDOW_SIZE:
            raise ValueError(f"connection_window must be in 1..{limits.H2_MAX_WINDOW_SIZE}")
        self._advertised = ours
        #: Our settings in force (RFC defaults until the peer's ACK).
        self.local_settings: dict[int, int] = {
            Setting.HEADER_TABLE_SIZE: limits.H2_DEFAULT_HEADER_TABLE_SIZE,
            Setting.MAX_CONCURRENT_STREAMS: 2**31 - 1,
            Setting.INITIAL_WINDOW_SIZE: limits.H2_DEFAULT_WINDOW_SIZE,
            Setting.MAX_FRAME_SIZE: limits.H2_DEFAULT_MAX_FRAME_SIZE,
            Setting.MAX_HEADER_LIST_SIZE: ours[Setting.MAX_HEADER_LIST_SIZE],
        }
        #: The peer's settings (RFC defaults until its SETTINGS).
        self.remote_settings: dict[int, int] = {
            Setting.HEADER_TABLE_SIZE: limits.H2_DEFAULT_HEADER_TABLE_SIZE,
            Setting.ENABLE_PUSH: 1,
            Setting.MAX_CONCURRENT_STREAMS: 2**31 - 1,
            Setting.INITIAL_WINDOW_SIZE: limits.H2_DEFAULT_WINDOW_SIZE,
            Setting.MAX_FRAME_SIZE: limits.H2_DEFAULT_MAX_FRAME_SIZE,
        }
        self._unacked_settings: list[dict[int, int]] = []
        self._reader = Reader(limits.H2_DEFAULT_HEADER_TABLE_SIZE,
                              ours[Setting.MAX_HEADER_LIST_SIZE])
        self._encoder = Encoder()
        #: Encoded blocks that are still valid as they are (see _header_block).
        self._blocks: dict[tuple[tuple[Union[bytes, str], Union[bytes, str]], ...], bytes] = {}
        self._out = bytearray()
        self._streams: dict[int, _Stream] = {}
        self._closed: dict[int, int] = {}        # recently closed: id -> why
        self._remote_open = 0                    # peer-opened streams counting to the limit
        self._highest_remote = 0                 # the peer's highest stream id so far
        self._highest_processed = 0              # the highest we did (or will) act on
        self._next_local = 1 if client_side else 2
        self._send_window = limits.H2_DEFAULT_WINDOW_SIZE   # connection, what we may send
        self._recv_window = limits.H2_DEFAULT_WINDOW_SIZE   # connection, what the peer may send
        self._recv_target = connection_window
        self._recv_unacked = 0
        self._preface_needed = not client_side   # server: the client preface comes first
        self._preface = bytearray()
        self._settings_seen = False              # the peer's first frame must be SETTINGS
        self._ping_counter = 0
        self._reset_debt = 0
        self._control_debt = 0
        self._dead = False                       # a connection error happened (or ours, fatal)
        #: GOAWAY we sent (its last stream id) / the peer's, or None.
        self.goaway_sent: Optional[int] = None
        self.goaway_received: Optional[int] = None
        self._initiated = False

    # -- starting ----------------------------------------------------------

    def initiate(self) -> None:
        """Queue the start of the connection: the client preface (client
        side), our SETTINGS and the connection window's opening. Call once,
        before anything else."""
        if self._initiated:
            raise ValueError("initiate() was already called")
        self._initiated = True
        if self.client_side:
            self._out += PREFACE
        self._queue_settings(dict(self._advertised))
        grow = self._recv_target - limits.H2_DEFAULT_WINDOW_SIZE
        if grow > 0:
            self._recv_window += grow
            self._out += _WINDOW_UPDATE.pack(0, 4, FrameType.WINDOW_UPDATE, 0, 0, grow)

    def initiate_upgrade(self, settings_payload: bytes) -> list[Event]:
        """Server side of ``Upgrade: h2c`` (RFC 7540 3.2): the HTTP/1.1
        request becomes stream 1, half-closed (remote), as if its HEADERS had
        come; settings_payload is the decoded HTTP2-Settings field. Call
        instead of initiate(); the client's preface still comes. Returns the
        SettingsChanged for the client's settings."""
        self.initiate()
        if len(settings_payload) % 6:
            raise _conn_error(E.PROTOCOL_ERROR, "3.2.1", "HTTP2-Settings not a SETTINGS payload")
        pairs = tuple(struct.iter_unpack(">HI", settings_payload))
        events: list[Event] = []
        self._apply_remote_settings(pairs, events, ack=False)
        stream = self._new_stream(1, local=False)
        stream.state = S.HALF_CLOSED_REMOTE
        stream.headers_done = True
        self._highest_remote = self._highest_processed = 1
        self._remote_open += 1
        return events

    # -- output ------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Every byte queued so far (b"" if none), removed from the queue."""
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- receiving -----------------------------------------------------------

    def receive(self, data: Union[bytes, bytearray, memoryview]) -> list[Event]:
        """Feed bytes from the peer; return the events they complete, in
        order. Control frames are answered here (SETTINGS ACK, PING ACK). A
        stream error resets that stream (StreamReset, remote False); a
        connection error queues GOAWAY and ends the list with
        ConnectionTerminated(remote=False, error=...): nothing is read after
        it (later calls return [])."""
        if self._dead:
            return []
        events: list[Event] = []
        try:
            if self._preface_needed:
                data = self._read_preface(data)
                if not data:
                    return events
            batch = self._reader.receive(data)
            if self._whole_requests:
                self._receive_whole(batch, events)
            else:
                for event in batch:
                    self._event(event, events)
                    if self._dead:
                        break
        except H2ConnectionError as exc:
            self._fail(exc, events)
        except HpackError as exc:
            self._fail(_conn_error(exc.error_code, "4.3", str(exc)), events)
        return events

    def _receive_whole(self, batch: list[tuple], events: list[Event]) -> None:
        """receive's loop with whole_requests: a HEADERS tuple whose
        stream's one END_STREAM DATA follows in the same read is offered to
        _whole first. The DATA may come right after it (one request per
        read) or after other streams' HEADERS and DATA, as nghttp2 and so
        h2load write several requests at once (every HEADERS, then every
        DATA); any other frame in between (SETTINGS, PING, WINDOW_UPDATE,
        RST_STREAM, PRIORITY, GOAWAY, an error) keeps the two apart."""
        i, n = 0, len(batch)
        later: Optional[dict[int, int]] = None  # HEADERS index -> its DATA's, once looked for
        taken: set[int] = set()  # DATA indexes consumed by a RequestComplete
        while i < n:
            event = batch[i]
            i += 1
            if event[0] == HEADERS and i < n and not event[2]:
                data = batch[i]
                if data[0] == DATA and data[2] and data[1] == event[1]:
                    if self._whole(event, data, events):
                        i += 1
                        continue
                else:
                    if later is None:
                        later = _later_data(batch, i - 1)
                    j = later.get(i - 1)
                    if j is not None and self._whole(event, batch[j], events):
                        taken.add(j)
                        continue
            elif taken and i - 1 in taken:
                continue
            self._event(event, events)
            if self._dead:
                break

    def _whole(self, headers: tuple, data: tuple, events: list[Event]) -> bool:
        """A new request's HEADERS and its one END_STREAM DATA frame as one
        RequestComplete, where every rule _open_remote and _data apply
        passes (a new client stream above the last, no GOAWAY sent, under
        the concurrency limit, a valid request, content-length matching,
        within both receive windows): the same state they leave, in one
        step. False, with nothing changed, otherwise (the frames are then
        read one by one)."""
        stream_id = headers[1]
        body, size = data[3], data[4]
        expected = headers[4]
        local = self.local_settings
        window = local[Setting.INITIAL_WINDOW_SIZE]
        if (not self._settings_seen or headers[6] or expected == NOT_A_REQUEST
                or not stream_id & 1 or stream_id <= self._highest_remote
                or self.goaway_sent is not None
                or 0 <= expected != len(body) or size > self._recv_window or size > window
                or self._remote_open >= min(local[Setting.MAX_CONCURRENT_STREAMS],
                                            self._advertised.get(Setting.MAX_CONCURRENT_STREAMS,
                                                                 2**31 - 1))):
            return False
        self._highest_remote = self._highest_processed = stream_id
        self._recv_window -= size
        if self._control_debt:  # _progress for the HEADERS and for a DATA with payload
            self._control_debt -= 2 if size and self._control_debt > 1 else 1
        stream = _Stream(stream_id, self.remote_settings[Setting.INITIAL_WINDOW_SIZE],
                         window - size, False)
        stream.state = S.HALF_CLOSED_REMOTE
        stream.headers_done = True
        stream.expected_length = expected
        stream.received = len(body)
        self._streams[stream_id] = stream
        self._remote_open += 1
        events.append(RequestComplete(stream_id, headers[3], body, size))
        return True

    def _read_preface(self, data: Union[bytes, bytearray, memoryview]) -> bytes:
        need = len(PREFACE) - len(self._preface)
        self._preface += data[:need]
        if PREFACE[:len(self._preface)] != self._preface:
            raise _conn_error(E.PROTOCOL_ERROR, "3.4", "the client preface is missing")
        if len(self._preface) < len(PREFACE):
            return b""
        self._preface_needed = False
        return bytes(data[need:])

    def _fail(self, exc: H2ConnectionError, events: list[Event]) -> None:
        """A connection error: GOAWAY with its code, nothing read after."""
        if not self._dead:
            self._dead = True
            last = self._highest_processed
            self._goaway(exc.error_code, last, str(exc).encode()[:256])
            events.append(ConnectionTerminated(exc.error_code, last, b"", False, exc))

    def _event(self, event: tuple, events: list[Event]) -> None:
        """One tuple of the reader's batch (fastnet.codec.h2sess)."""
        kind = event[0]
        if kind == ERROR:
            error = error_of(event[1], self._reader.max_header_list_size)
            if isinstance(error, H2FrameError):
                raise _conn_error(error.error_code, error.section, error.message)
            if isinstance(error, HpackError):
                raise _conn_error(error.error_code, "4.3", str(error))
            raise error
        if not self._settings_seen:
            if kind != SETTINGS or event[1]:
                raise _conn_error(E.PROTOCOL_ERROR, "3.4",
                                  "the peer's first frame must be SETTINGS")
            self._settings_seen = True
        if kind == DATA:
            self._data(event[1], event[2], event[3], event[4], events)
        elif kind == HEADERS:
            self._headers(event, events)
        elif kind == WINDOW_UPDATE:
            self._window_update(event[1], event[2], event[3], events)
        elif kind == RST_STREAM:
            self._rst_stream(event[1], event[2], events)
        elif kind == SETTINGS:
            if event[1]:
                self._settings_acked(events)
            else:
                self._charge_control("SETTINGS")
                self._apply_remote_settings(event[2], events, ack=True)
        elif kind == PING:
            if event[1]:
                events.append(PingAcked(event[2]))
            else:
                self._charge_control("PING")
                self._out += _HEADER.pack(0, 8, FrameType.PING, Flag.ACK, 0) + event[2]
                events.append(PingReceived(event[2]))
        elif kind == GOAWAY:
            self._goaway_received(event[1], event[2], event[3], events)
        elif kind == PRIORITY:
            self._charge_control("PRIORITY")
            self._priority(event, events)
        elif kind == PUSH_PROMISE:
            # 8.4: a client never pushes; we told a server ENABLE_PUSH=0.
            raise _conn_error(E.PROTOCOL_ERROR, "8.4",
                              "PUSH_PROMISE from a client" if not self.client_side
                              else "PUSH_PROMISE after SETTINGS_ENABLE_PUSH=0")
        else:
            self._charge_control("an unknown frame type")  # 5.5: ignored

    # -- flood accounting --------------------------------------------------

    def _charge_control(self, what: str) -> None:
        self._control_debt += 1
        if self._control_debt > limits.H2_MAX_CONTROL_DEBT:
            raise _conn_error(E.ENHANCE_YOUR_CALM, "10.5",
                              f"{what} flood: more than H2_MAX_CONTROL_DEBT="
                              f"{limits.H2_MAX_CONTROL_DEBT} frames without progress")

    def _charge_reset(self) -> None:
        self._reset_debt += 1
        if self._reset_debt > limits.H2_MAX_RESET_DEBT:
            raise _conn_error(E.ENHANCE_YOUR_CALM, "10.5",
                              "rapid reset: more than H2_MAX_RESET_DEBT="
                              f"{limits.H2_MAX_RESET_DEBT} streams reset or refused before "
                              "they ended")

    def _progress(self) -> None:
        if self._control_debt:
            self._control_debt -= 1

    # -- streams -------------------------------------------------------------

    def _new_stream(self, stream_id: int, local: bool) -> _Stream:
        stream = _Stream(stream_id, self.remote_settings[Setting.INITIAL_WINDOW_SIZE],
                         self.local_settings[Setting.INITIAL_WINDOW_SIZE], local)
        self._streams[stream_id] = stream
        return stream

    def _step(self, stream: _Stream, what: int) -> None:
        """Move stream along the table (the caller checked the row exists)."""
        old = stream.state
        new = TRANSITIONS[(old, what)]
        stream.state = new
        if new == S.CLOSED:
            self._forget(stream, _RESET_BY_US if what == SEND_RST else
                         _RESET_BY_PEER if what == RECV_RST else _ENDED)

    def _forget(self, stream: _Stream, why: int) -> None:
        del self._streams[stream.id]
        if not stream.local:
            self._remote_open -= 1
        if why == _ENDED:
            if self._reset_debt:
                self._reset_debt -= 1
        closed = self._closed
        closed[stream.id] = why
        if len(closed) > limits.H2_MAX_CLOSED_STREAMS:
            del closed[next(iter(closed))]

    def _peer_parity(self, stream_id: int) -> bool:
        return bool(stream_id & 1) != self.client_side

    def _stream_for(self, stream_id: int, frame_name: str) -> Optional[_Stream]:
        """The open stream, or None for a closed one; a connection error for
        an idle one (5.1: only HEADERS and PRIORITY may name one)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            return stream
        if self._is_idle(stream_id):
            raise _conn_error(E.PROTOCOL_ERROR, "5.1", f"{frame_name} on idle stream {stream_id}")
        return None

    def _is_idle(self, stream_id: int) -> bool:
        if self._peer_parity(stream_id):
            return stream_id > self._highest_remote
        return stream_id >= self._next_local

    def _reset(self, stream: _Stream, code: int, events: list[Event]) -> None:
        """A stream error (5.4.2): RST_STREAM and the stream is closed. It
        counts as a stream ended early (a flood of malformed requests is a
        rapid reset too)."""
        self._charge_reset()
        self._out += _RST.pack(0, 4, FrameType.RST_STREAM, 0, stream.id, code)
        if stream.state != S.CLOSED:
            stream.state = S.CLOSED
            self._forget(stream, _RESET_BY_US)
        events.append(StreamReset(stream.id, code, False))

    def _reset_closed(self, stream_id: int, code: int) -> None:
        """A stream error on a stream no longer open."""
        self._charge_reset()
        self._out += _RST.pack(0, 4, FrameType.RST_STREAM, 0, stream_id, code)

    def _closed_frame(self, stream_id: int, frame_name: str, events: list[Event]) -> None:
        """A DATA or HEADERS frame for a closed stream (5.1, closed)."""
        why = self._closed.get(stream_id, _RESET_BY_US if stream_id > self.goaway_floor() else -1)
        if why == _RESET_BY_US:
            return  # frames in flight when we reset it: ignored
        if why == _ENDED:
            raise _conn_error(E.STREAM_CLOSED, "5.1",
                              f"{frame_name} on stream {stream_id} after END_STREAM")
        self._reset_closed(stream_id, E.STREAM_CLOSED)

    def goaway_floor(self) -> int:
        """Streams above this id were ignored after our GOAWAY."""
        return self.goaway_sent if self.goaway_sent is not None else 2**31

    # -- DATA -----------------------------------------------------------------

    def _data(self, stream_id: int, end: bool, data: bytes, size: int,
              events: list[Event]) -> None:
        self._recv_window -= size
        if self._recv_window < 0:
            raise _conn_error(E.FLOW_CONTROL_ERROR, "6.9.1",
                              "DATA beyond the connection's flow-control window")
        if size:
            self._progress()
        elif not end:
            self._charge_control("empty DATA")
        stream = self._stream_for(stream_id, "DATA")
        if stream is None or stream.state not in (S.OPEN, S.HALF_CLOSED_LOCAL):
            self._credit_connection(size)  # nobody will acknowledge it
            if stream is None:
                self._closed_frame(stream_id, "DATA", events)
            else:
                self._reset(stream, E.STREAM_CLOSED, events)
            return
        stream.recv_window -= size
        if stream.recv_window < 0:
            self._credit_connection(size)
            self._reset(stream, E.FLOW_CONTROL_ERROR, events)
            return
        if not stream.headers_done:
            # DATA before the (final) response headers, or a second message.
            self._credit_connection(size)
            self._reset(stream, E.PROTOCOL_ERROR, events)
            return
        stream.received += len(data)
        if stream.expected_length >= 0 and not stream.head_request and (
                stream.received > stream.expected_length
                or end and stream.received != stream.expected_length):
            self._credit_connection(size)
            self._reset(stream, E.PROTOCOL_ERROR, events)  # 8.1.1: content-length
            return
        events.append(DataReceived(stream_id, data, size, end))
        if end:
            self._step(stream, RECV_END)
            events.append(StreamEnded(stream_id))

    def _credit_connection(self, size: int) -> None:
        if size:
            self._recv_unacked += size
            self._maybe_update_connection()

    def _maybe_update_connection(self) -> None:
        if self._recv_unacked >= self._recv_target // 2:
            n = self._recv_unacked
            self._recv_unacked = 0
            self._recv_window += n
            self._out += _WINDOW_UPDATE.pack(0, 4, FrameType.WINDOW_UPDATE, 0, 0, n)

    def acknowledge(self, stream_id: int, n: int) -> None:
        """The user consumed n flow-controlled bytes of stream_id (from
        DataReceived.flow_controlled_length): give the peer that credit
        back, on the stream and the connection, with WINDOW_UPDATE frames
        once half a window is owed (fewer, larger updates)."""
        if n <= 0:
            if n < 0:
                raise ValueError("acknowledge() takes a count >= 0")
            return
        self._credit_connection(n)
        stream = self._streams.get(stream_id)
        if stream is None or stream.state not in (S.OPEN, S.HALF_CLOSED_LOCAL):
            return  # the peer sends no more on it: no stream credit needed
        stream.unacked += n
        initial = self.local_settings[Setting.INITIAL_WINDOW_SIZE]
        if stream.unacked >= initial // 2 or stream.recv_window <= 0:
            grow = stream.unacked
            stream.unacked = 0
            stream.recv_window += grow
            self._out += _WINDOW_UPDATE.pack(0, 4, FrameType.WINDOW_UPDATE, 0, stream_id, grow)

    # -- HEADERS --------------------------------------------------------------

    def _headers(self, event: tuple, events: list[Event]) -> None:
        """A field block, decoded (every block is, before anything decides
        to ignore it: the HPACK table must follow them all) and checked."""
        _, stream_id, end, headers, req, trailers_ok, error, _ = event
        stream = self._streams.get(stream_id)
        if stream is None:
            if self._peer_parity(stream_id) and stream_id > self._highest_remote:
                self._open_remote(stream_id, headers, end, req, error, events)
            elif self._is_idle(stream_id):
                raise _conn_error(E.PROTOCOL_ERROR, "5.1.1",
                                  f"HEADERS on stream {stream_id}, which the peer may not open")
            elif (stream_id in self._closed or stream_id > self.goaway_floor()
                  or not self._peer_parity(stream_id)):
                self._closed_frame(stream_id, "HEADERS", events)
            else:
                raise _conn_error(E.PROTOCOL_ERROR, "5.1.1",
                                  f"new stream {stream_id} not above the peer's last stream "
                                  f"{self._highest_remote}")
            return
        if error:
            self._reset(stream, error, events)
            return
        if stream.state not in (S.OPEN, S.HALF_CLOSED_LOCAL):
            self._reset(stream, E.STREAM_CLOSED, events)
            return
        self._progress()
        if self.client_side and not stream.headers_done:
            self._response(stream, headers, end, events)
            return
        # A trailing block (8.1): END_STREAM, no pseudo fields.
        try:
            if not end:
                raise _Violation(E.PROTOCOL_ERROR, "trailers without END_STREAM")
            if not trailers_ok:
                raise _Violation(E.PROTOCOL_ERROR, "a malformed trailing block")
            if (stream.expected_length >= 0 and not stream.head_request
                    and stream.received != stream.expected_length):
                raise _Violation(E.PROTOCOL_ERROR, "content-length differs from the DATA sent")
        except _Violation as bad:
            self._reset(stream, bad.code, events)
            return
        events.append(TrailersReceived(stream_id, headers))
        self._step(stream, RECV_END)
        events.append(StreamEnded(stream_id))

    def _open_remote(self, stream_id: int, headers: Headers, end: bool, req: int, error: int,
                     events: list[Event]) -> None:
        if self.client_side:
            raise _conn_error(E.PROTOCOL_ERROR, "8.4", "a server opened a stream")
        self._highest_remote = stream_id
        if self.goaway_sent is not None and stream_id > self.goaway_sent:
            return  # after our GOAWAY: ignored (6.8)
        self._highest_processed = stream_id
        if error:
            self._closed[stream_id] = _RESET_BY_US
            self._reset_closed(stream_id, error)
            events.append(StreamReset(stream_id, error, False))
            return
        limit = min(self.local_settings[Setting.MAX_CONCURRENT_STREAMS],
                    self._advertised.get(Setting.MAX_CONCURRENT_STREAMS, 2**31 - 1))
        if self._remote_open >= limit:
            self._closed[stream_id] = _RESET_BY_US
            self._reset_closed(stream_id, E.REFUSED_STREAM)  # 5.1.2
            events.append(StreamReset(stream_id, E.REFUSED_STREAM, False))
            return
        stream = self._new_stream(stream_id, local=False)
        self._remote_open += 1
        stream.state = S.OPEN
        if req == NOT_A_REQUEST:
            self._reset(stream, E.PROTOCOL_ERROR, events)  # 8.1.1: malformed
            return
        stream.expected_length = req
        if end and stream.expected_length > 0:
            self._reset(stream, E.PROTOCOL_ERROR, events)  # 8.1.1: no DATA to match
            return
        stream.headers_done = True
        self._progress()
        events.append(RequestReceived(stream_id, headers, end))
        if end:
            self._step(stream, RECV_END)
            events.append(StreamEnded(stream_id))

    def _response(self, stream: _Stream, headers: Headers, end: bool, events: list[Event]) -> None:
        try:
            status, length = _check_response(headers)
            if status < 200:
                if end:
                    raise _Violation(E.PROTOCOL_ERROR, "a 1xx response with END_STREAM")
                events.append(InformationalResponseReceived(stream.id, headers))
                return
        except _Violation as bad:
            self._reset(stream, bad.code, events)
            return
        stream.headers_done = True
        if status in (204, 304):
            length = -1 if status == 304 else 0
        stream.expected_length = length
        if end and length > 0 and not stream.head_request:
            self._reset(stream, E.PROTOCOL_ERROR, events)
            return
        events.append(ResponseReceived(stream.id, headers, end))
        if end:
            self._step(stream, RECV_END)
            events.append(StreamEnded(stream.id))

    # -- RST_STREAM, WINDOW_UPDATE, PRIORITY, GOAWAY -----------------------------

    def _rst_stream(self, stream_id: int, error_code: int, events: list[Event]) -> None:
        stream = self._stream_for(stream_id, "RST_STREAM")
        if stream is None:
            self._charge_control("RST_STREAM on a closed stream")
            return  # already closed: nothing to do (5.1)
        if not stream.local and stream.state in (S.OPEN, S.HALF_CLOSED_REMOTE):
            self._charge_reset()  # we were still working on it
        self._step(stream, RECV_RST)
        events.append(StreamReset(stream_id, error_code, True))

    def _window_update(self, stream_id: int, increment: int, error: int,
                       events: list[Event]) -> None:
        if stream_id == 0:
            self._send_window += increment
            if self._send_window > limits.H2_MAX_WINDOW_SIZE:
                raise _conn_error(E.FLOW_CONTROL_ERROR, "6.9.1",
                                  "WINDOW_UPDATE grew the connection window past 2**31-1")
            events.append(WindowUpdated(0, increment))
            return
        stream = self._stream_for(stream_id, "WINDOW_UPDATE")
        if stream is None:
            self._charge_control("WINDOW_UPDATE on a closed stream")
            return
        if error:
            self._reset(stream, error, events)
            return
        stream.send_window += increment
        if stream.send_window > limits.H2_MAX_WINDOW_SIZE:
            self._reset(stream, E.FLOW_CONTROL_ERROR, events)
            return
        events.append(WindowUpdated(stream_id, increment))

    def _priority(self, event: tuple, events: list[Event]) -> None:
        _, stream_id, depends_on, weight, exclusive, error = event
        if error:
            stream = self._streams.get(stream_id)
            if stream is not None:
                self._reset(stream, error, events)
            else:
                self._reset_closed(stream_id, error)
                events.append(StreamReset(stream_id, error, False))
            return
        events.append(PriorityUpdated(stream_id, depends_on, weight, exclusive))

    def _goaway_received(self, last: int, error_code: int, debug: bytes,
                         events: list[Event]) -> None:
        if self.goaway_received is not None and last > self.goaway_received:
            raise _conn_error(E.PROTOCOL_ERROR, "6.8", "a GOAWAY raised the last stream id")
        self.goaway_received = last
        for stream in [s for s in self._streams.values() if s.local and s.id > last]:
            stream.state = S.CLOSED
            self._forget(stream, _RESET_BY_PEER)
            events.append(StreamReset(stream.id, E.REFUSED_STREAM, True))
        events.append(ConnectionTerminated(error_code, last, debug, True))

    # -- SETTINGS -------------------------------------------------------------

    def _queue_settings(self, values: dict[int, int]) -> None:
        payload = b"".join(struct.pack(">HI", k, v) for k, v in values.items())
        self._out += _HEADER.pack(0, len(payload), FrameType.SETTINGS, 0, 0) + payload
        self._unacked_settings.append(values)
        for key, value in values.items():
            # A more lenient value of ours applies at once: the peer may act
            # on it as soon as it reads it, before our ACK arrives.
            if key in self.local_settings and value > self.local_settings[key]:
                self._apply_local(key, value)

    def _apply_local(self, key: int, value: int) -> None:
        local = self.local_settings
        if key == Setting.INITIAL_WINDOW_SIZE:
            delta = value - local[key]
            for stream in self._streams.values():
                stream.recv_window += delta
        elif key == Setting.HEADER_TABLE_SIZE:
            self._reader.header_table_size = value
        elif key == Setting.MAX_HEADER_LIST_SIZE:
            self._reader.max_header_list_size = value
        elif key == Setting.MAX_FRAME_SIZE:
            self._reader.max_frame_size = value
        local[key] = value

    def update_settings(self, settings: Mapping[int, int]) -> None:
        """Queue a SETTINGS frame with new values of ours (in force on ACK)."""
        values = dict(settings)
        self._advertised.update(values)
        self._queue_settings(values)

    def _settings_acked(self, events: list[Event]) -> None:
        if not self._unacked_settings:
            self._charge_control("SETTINGS ACK")
            return  # nothing to apply (the RFC names no error for it)
        values = self._unacked_settings.pop(0)
        for key, value in values.items():
            if key in self.local_settings and value != self.local_settings[key]:
                self._apply_local(key, value)
        events.append(SettingsAcknowledged(values))

    def _apply_remote_settings(self, settings: tuple[tuple[int, int], ...], events: list[Event],
                               ack: bool) -> None:
        remote = self.remote_settings
        changed: dict[int, int] = {}
        for key, value in settings:
            if key == Setting.INITIAL_WINDOW_SIZE:
                if value > limits.H2_MAX_WINDOW_SIZE:
                    raise _conn_error(E.FLOW_CONTROL_ERROR, "6.5.2",
                                      "SETTINGS_INITIAL_WINDOW_SIZE above 2**31-1")
                delta = value - remote[key]
                for stream in self._streams.values():
                    stream.send_window += delta
                    if stream.send_window > limits.H2_MAX_WINDOW_SIZE:
                        raise _conn_error(E.FLOW_CONTROL_ERROR, "6.9.2",
                                          "SETTINGS_INITIAL_WINDOW_SIZE grew a window past 2**31-1")
                if delta > 0:
                    for stream in self._streams.values():
                        events.append(WindowUpdated(stream.id, delta))
            elif key == Setting.HEADER_TABLE_SIZE:
                self._encoder.set_max_table_size(min(value, limits.DEFAULT_H2_MAX_HEADER_TABLE_SIZE))
                self._blocks.clear()  # the next block starts with a size update
            elif key == Setting.ENABLE_PUSH:
                if self.client_side and value != 0:
                    raise _conn_error(E.PROTOCOL_ERROR, "6.5.2",
                                      "a server's SETTINGS_ENABLE_PUSH must be 0")
            elif key == Setting.MAX_FRAME_SIZE:
                if not limits.H2_DEFAULT_MAX_FRAME_SIZE <= value <= limits.H2_MAX_MAX_FRAME_SIZE:
                    raise _conn_error(E.PROTOCOL_ERROR, "6.5.2",
                                      "SETTINGS_MAX_FRAME_SIZE outside 2**14 .. 2**24-1")
            remote[key] = value
            changed[key] = value
        if ack:
            self._out += _HEADER.pack(0, 0, FrameType.SETTINGS, Flag.ACK, 0)
        events.append(SettingsChanged(changed))

    # -- sending --------------------------------------------------------------

    def get_next_available_stream_id(self) -> int:
        """The next stream id this side may open (odd for a client)."""
        return self._next_local

    def _local_stream(self, stream_id: int) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise ValueError(f"stream {stream_id} is not open")
        return stream

    def _header_block(self, headers: HeaderInput) -> bytes:
        """HPACK-encode headers. A list encoded as nothing but one-byte
        indexed fields left the table as it was, so the same list is the
        same block for as long as no other block changes the table: those
        blocks are kept (at most H2_MAX_CACHED_BLOCKS, keyed by the list as
        given) and reused without an encoder call or a normalization; the
        first block that changes the table drops them all. A server's
        responses and trailers repeat, so in the steady state each is a
        dictionary lookup."""
        fields = headers if type(headers) is tuple else tuple(headers)
        blocks = self._blocks
        try:
            block = blocks.get(fields)
        except TypeError:  # an unhashable piece (a bytearray): encoded every time
            block = None
            fields = tuple(header_list(fields))
        if block is not None:
            return block
        normal = header_list(fields)
        block = self._encoder.encode(normal)
        if len(block) == len(normal) and min(block, default=0x80) >= 0x80:
            if len(blocks) >= limits.H2_MAX_CACHED_BLOCKS:
                blocks.clear()
            blocks[fields] = block
        else:
            blocks.clear()
        return block

    def _block_frames(self, stream_id: int, headers: HeaderInput, flags: int) -> None:
        block = self._header_block(headers)
        size = self.remote_settings[Setting.MAX_FRAME_SIZE]
        out = self._out
        if len(block) <= size:
            out += _HEADER.pack(len(block) >> 16, len(block) & 0xFFFF, FrameType.HEADERS,
                                flags | Flag.END_HEADERS, stream_id)
            out += block
            return
        first, pos = block[:size], size
        out += _HEADER.pack(0, len(first), FrameType.HEADERS, flags, stream_id) + first
        while pos < len(block):
            piece = block[pos:pos + size]
            pos += size
            last = Flag.END_HEADERS if pos >= len(block) else 0
            out += _HEADER.pack(len(piece) >> 16, len(piece) & 0xFFFF, FrameType.CONTINUATION,
                                last, stream_id) + piece

    def send_headers(self, stream_id: int, headers: HeaderInput, end_stream: bool = False) -> None:
        """Queue a HEADERS frame (CONTINUATIONs past the peer's max frame
        size): a client opens stream_id with a request, a server answers
        with a response (1xx first, if any). Names are sent lowercase.
        ValueError for a stream id or state where the RFC does not allow it."""
        if self._dead:
            raise ValueError("the connection is closed")
        stream = self._streams.get(stream_id)
        if stream is None:
            if not self.client_side:
                raise ValueError(f"stream {stream_id} is not open (a server answers streams)")
            if stream_id < self._next_local or not stream_id & 1:
                raise ValueError(f"stream id {stream_id} is not the next one "
                                 f"({self._next_local})")
            if self.goaway_received is not None:
                raise ValueError("the server sent GOAWAY: no new streams")
            headers = list(headers)
            stream = self._new_stream(stream_id, local=True)
            self._next_local = stream_id + 2
            stream.head_request = (b":method", b"HEAD") in headers or (":method", "HEAD") in headers
            stream.headers_done = False
        state = stream.state
        if (state, SEND_HEADERS) not in TRANSITIONS:
            raise ValueError(f"no HEADERS may be sent on stream {stream_id} "
                             f"({StreamState.NAMES[state]})")
        stream.state = TRANSITIONS[(state, SEND_HEADERS)]
        self._block_frames(stream_id, headers, Flag.END_STREAM if end_stream else 0)
        if end_stream:
            self._step(stream, SEND_END)

    def send_data(self, stream_id: int, data: Union[bytes, bytearray, memoryview],
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
        stream = self._local_stream(stream_id)
        if (stream.state, SEND_DATA) not in TRANSITIONS:
            raise ValueError(f"no DATA may be sent on stream {stream_id} "
                             f"({StreamState.NAMES[stream.state]})")
        total = len(data)
        n = min(total, stream.send_window, self._send_window)
        out = self._out
        size = self.remote_settings[Setting.MAX_FRAME_SIZE]
        end = end_stream and n == total
        if n <= size:
            out += _HEADER.pack(n >> 16, n & 0xFFFF, FrameType.DATA,
                                Flag.END_STREAM if end else 0, stream_id)
            if n:
                out += data[:n] if n < total else data
            if not n and not end:
                del out[-9:]  # nothing to send after all
        else:
            view = memoryview(data)
            pos = 0
            while pos < n:
                piece = view[pos:min(pos + size, n)]
                pos += len(piece)
                flags = Flag.END_STREAM if end and pos == n else 0
                out += _HEADER.pack(len(piece) >> 16, len(piece) & 0xFFFF, FrameType.DATA,
                                    flags, stream_id)
                out += piece
        stream.send_window -= n
        self._send_window -= n
        if end:
            self._step(stream, SEND_END)
        return n

    def send_trailers(self, stream_id: int, headers: HeaderInput) -> None:
        """Queue a trailing HEADERS block with END_STREAM (no pseudo
        fields): the end of our side of the stream."""
        stream = self._local_stream(stream_id)
        if (stream.state, SEND_END) not in TRANSITIONS:
            raise ValueError(f"stream {stream_id} is {StreamState.NAMES[stream.state]}: "
                             "no trailers")
        self._block_frames(stream_id, headers, Flag.END_STREAM)
        self._step(stream, SEND_END)

    def send_response(self, stream_id: int, headers: HeaderInput,
                      body: Union[bytes, bytearray, memoryview] = b"",
                      trailers: Optional[HeaderInput] = None) -> bool:
        """Queue a whole answer at once: HEADERS, the body's DATA (in
        frames of the peer's max frame size) and the trailers, END_STREAM
        on the last frame (the HEADERS itself when there is neither body
        nor trailers: a trailers-only answer). Repeated header lists and
        trailers cost a lookup (see send_headers). Returns False with
        nothing queued when the flow-control windows cannot take all of
        body now: send it the usual way (send_headers, send_data, ...).
        ValueError where the stream's state allows no HEADERS."""
        stream = self._local_stream(stream_id)
        size = len(body)
        if size > stream.send_window or size > self._send_window:
            return False
        state = stream.state
        if (state, SEND_HEADERS) not in TRANSITIONS:
            raise ValueError(f"no HEADERS may be sent on stream {stream_id} "
                             f"({StreamState.NAMES[state]})")
        stream.state = TRANSITIONS[(state, SEND_HEADERS)]
        if not size and trailers is None:
            self._block_frames(stream_id, headers, Flag.END_STREAM)
            self._step(stream, SEND_END)
            return True
        self._block_frames(stream_id, headers, 0)
        if not size:
            pass
        elif size <= self.remote_settings[Setting.MAX_FRAME_SIZE]:  # one DATA frame
            self._out += _HEADER.pack(size >> 16, size & 0xFFFF, FrameType.DATA,
                                      0 if trailers is not None else Flag.END_STREAM, stream_id)
            self._out += body
            stream.send_window -= size
            self._send_window -= size
            if trailers is None:
                self._step(stream, SEND_END)
        else:
            self.send_data(stream_id, body, end_stream=trailers is None)
        if trailers is not None:
            self._block_frames(stream_id, trailers, Flag.END_STREAM)
            self._step(stream, SEND_END)
        return True

    def answer(self, stream_id: int, headers: HeaderInput,
               body: Union[bytes, bytearray, memoryview], trailers: Optional[HeaderInput],
               consumed: int) -> bool:
        """Answer a RequestComplete: ``acknowledge(stream_id, consumed)``
        and ``send_response(stream_id, headers, body, trailers)`` in one
        call. A body in one DATA frame between two blocks of one frame each
        (an RPC's reply) is queued as one piece, the stream closed at once;
        anything else is send_response's. False, nothing sent (the
        acknowledgement made), when the windows cannot take the body; True
        for a stream the peer has reset since (nothing to answer)."""
        if consumed:
            self._recv_unacked += consumed
            if self._recv_unacked >= self._recv_target // 2:
                self._maybe_update_connection()
        stream = self._streams.get(stream_id)
        if stream is None:
            return True
        size = len(body)
        frame_size = self.remote_settings[Setting.MAX_FRAME_SIZE]
        if (trailers is None or not size or stream.state != S.HALF_CLOSED_REMOTE
                or size > stream.send_window or size > self._send_window or size > frame_size):
            return self.send_response(stream_id, headers, body, trailers)
        head = self._header_block(headers)
        tail = self._header_block(trailers)
        if len(head) > frame_size or len(tail) > frame_size:
            return self.send_response(stream_id, headers, body, trailers)
        self._out += b"".join((
            _HEADER.pack(len(head) >> 16, len(head) & 0xFFFF, FrameType.HEADERS,
                         Flag.END_HEADERS, stream_id), head,
            _HEADER.pack(size >> 16, size & 0xFFFF, FrameType.DATA, 0, stream_id), body,
            _HEADER.pack(len(tail) >> 16, len(tail) & 0xFFFF, FrameType.HEADERS,
                         Flag.END_HEADERS | Flag.END_STREAM, stream_id), tail))
        self._send_window -= size
        stream.state = S.CLOSED
        self._forget(stream, _ENDED)
        return True

    def end_stream(self, stream_id: int) -> None:
        """End our side of the stream with an empty END_STREAM DATA frame."""
        self.send_data(stream_id, b"", end_stream=True)

    def reset_stream(self, stream_id: int, error_code: int = H2ErrorCode.CANCEL) -> None:
        """Queue RST_STREAM; the stream is closed from now on (frames the
        peer had in flight for it are ignored). Resetting a stream already
        closed does nothing."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        self._out += _RST.pack(0, 4, FrameType.RST_STREAM, 0, stream_id, error_code)
        self._step(stream, SEND_RST)

    def ping(self, data: Optional[bytes] = None) -> bytes:
        """Queue a PING; return its 8 opaque bytes (a PingAcked with them
        is the answer). data defaults to a counter."""
        if data is None:
            self._ping_counter += 1
            data = self._ping_counter.to_bytes(8, "big")
        if len(data) != 8:
            raise ValueError("a PING carries exactly 8 bytes")
        self._out += _HEADER.pack(0, 8, FrameType.PING, 0, 0) + data
        return data

    def _goaway(self, code: int, last: int, debug: bytes) -> None:
        self.goaway_sent = last if self.goaway_sent is None else min(last, self.goaway_sent)
        payload = struct.pack(">II", last, code) + debug
        self._out += _HEADER.pack(0, len(payload), FrameType.GOAWAY, 0, 0) + payload

    def close(self, error_code: int = H2ErrorCode.NO_ERROR,
              last_stream_id: Optional[int] = None, additional_data: bytes = b"") -> None:
        """Queue GOAWAY. last_stream_id defaults to the highest stream the
        peer opened that we processed. With NO_ERROR the streams at or
        below it go on (a graceful drain); new ones are ignored. With an
        error code nothing is received after it."""
        last = self._highest_processed if last_stream_id is None else last_stream_id
        self._goaway(error_code, last, additional_data)
        if error_code != E.NO_ERROR:
            self._dead = True

    # -- state ---------------------------------------------------------------

    def local_flow_window(self, stream_id: int) -> int:
        """How many DATA bytes we may send on stream_id now (the smaller
        of its window and the connection's)."""
        stream = self._local_stream(stream_id)
        return max(0, min(stream.send_window, self._send_window))

    def stream_state(self, stream_id: int) -> int:
        """The StreamState of stream_id (closed for one forgotten)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            return stream.state
        return S.IDLE if self._is_idle(stream_id) else S.CLOSED

    @property
    def open_streams(self) -> int:
        """Streams open or half-closed (counted against concurrency limits)."""
        return len(self._streams)

    @property
    def terminated(self) -> bool:
        """A connection error ended it (either side's): read nothing more."""
        return self._dead


def header_list(headers: HeaderInput) -> list[tuple[bytes, bytes]]:
    """headers as (name, value) bytes pairs, names lowercased (str as latin-1)."""
    out = []
    for name, value in headers:
        if type(name) is not bytes:
            name = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        if type(value) is not bytes:
            value = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        out.append((name.lower(), value))
    return out


def _check_response(headers: Headers) -> tuple[int, int]:
    """A response's header list (8.3.2): its status and content-length."""
    status = -1
    i = 0
    for name, value in headers:
        if name[:1] != b":":
            break
        if name != b":status" or status != -1:
            raise _Violation(E.PROTOCOL_ERROR, f"pseudo field {name!r} in a response")
        if len(value) != 3 or not value.isdigit():
            raise _Violation(E.PROTOCOL_ERROR, "invalid :status")
        status = int(value)
        i += 1
    if status < 0:
        raise _Violation(E.PROTOCOL_ERROR, "a response without :status")
    length = check_fields(headers[i:])
    if length == NOT_A_REQUEST:
        raise _Violation(E.PROTOCOL_ERROR, "a malformed response field")
    return status, length
