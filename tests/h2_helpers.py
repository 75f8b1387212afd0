"""A raw HTTP/2 peer for the connection tests: it writes frames of its own
choosing (fastnet.codec.h2frame's encoder, hpack's for field blocks) to a
fastnet.h2.H2Connection in memory and decodes what it answers."""
from __future__ import annotations

import socket
import time
from typing import Any, Callable, Iterable, Iterator, Optional

import h2.connection
import h2.events
import pytest

from fastnet.codec import h2sess
from fastnet.h2 import connection as h2_connection
from fastnet.codec.h2frame import Flag, Frame, FrameDecoder, FrameType, Setting, encode
from fastnet.codec.hpack import Decoder, Encoder
from fastnet.h2 import H2Connection
from fastnet.h2.connection import PREFACE
from fastnet.h2.events import ConnectionTerminated, Event, StreamReset

@pytest.fixture(params=sorted(h2sess.impls))
def reader_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every H2Connection made in the test reads through this twin of the
    per-read batch (fastnet.codec.h2sess): "c" or "python"."""
    monkeypatch.setattr(h2_connection, "Reader", h2sess.impls[request.param].Reader)
    yield request.param


REQUEST = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
           (b":authority", b"example")]
RESPONSE = [(b":status", b"200")]


def post(length: Optional[int] = None) -> list[tuple[bytes, bytes]]:
    fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/p"),
              (b":authority", b"example")]
    if length is not None:
        fields.append((b"content-length", str(length).encode()))
    return fields


class Peer:
    """The other side of ``conn`` (ours), speaking raw frames.

    ours="server": conn is a server connection and this peer the client
    (preface and SETTINGS already exchanged and acknowledged); "client":
    the reverse."""

    def __init__(self, ours: str = "server", settings: Optional[dict[int, int]] = None,
                 peer_settings: tuple[tuple[int, int], ...] = (), **options: object) -> None:
        self.conn = H2Connection(client_side=ours == "client", settings=settings,
                                 **options)  # type: ignore[arg-type]
        self.conn.initiate()
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.frames = FrameDecoder()
        self.received: list[Frame] = []
        if ours == "client":
            opening = self.conn.data_to_send()
            assert opening.startswith(PREFACE)
            start = self.frames.receive(opening[len(PREFACE):])
        else:
            start = self.read()
        assert start[0].type == FrameType.SETTINGS
        first = encode(Frame(FrameType.SETTINGS, settings=peer_settings))
        ack = encode(Frame(FrameType.SETTINGS, flags=Flag.ACK))
        events = self.conn.receive((PREFACE if ours == "server" else b"") + first + ack)
        assert not [e for e in events if isinstance(e, ConnectionTerminated)], events
        answer = self.read()
        assert [f.type for f in answer] == [FrameType.SETTINGS], answer  # the ACK
        self.next_stream = 1

    # -- writing --------------------------------------------------------------

    def send(self, *frames: Frame | bytes) -> list[Event]:
        data = b"".join(f if isinstance(f, bytes) else encode(f) for f in frames)
        return self.conn.receive(data)

    def block(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        return self.encoder.encode(list(headers))

    def headers(self, stream_id: int, headers: Iterable[tuple[bytes, bytes]] = REQUEST,
                end_stream: bool = True, **fields: object) -> Frame:
        flags = Flag.END_HEADERS | (Flag.END_STREAM if end_stream else 0)
        return Frame(FrameType.HEADERS, stream_id, flags | int(fields.pop("extra_flags", 0)),  # type: ignore[call-overload]
                     self.block(headers), **fields)  # type: ignore[arg-type]

    def request(self, headers: Iterable[tuple[bytes, bytes]] = REQUEST, end_stream: bool = True,
                **fields: object) -> list[Event]:
        stream_id = self.next_stream
        self.next_stream += 2
        return self.send(self.headers(stream_id, headers, end_stream, **fields))

    # -- reading ------------------------------------------------------------

    def read(self) -> list[Frame]:
        frames = self.frames.receive(self.conn.data_to_send())
        self.received += frames
        return frames

    def read_headers(self, frames: list[Frame]) -> list[list[tuple[bytes, bytes]]]:
        return [self.decoder.decode(f.data) for f in frames if f.type == FrameType.HEADERS]


def h2_until(sock: socket.socket, conn: h2.connection.H2Connection,
             done: Callable[[list[Any]], bool], guard: float = 30.0) -> list[Any]:
    """Read from sock into the h2 package's connection until done(events)
    (or the server closes), acknowledging data; the events."""
    events: list[Any] = []
    deadline = time.monotonic() + guard
    while not done(events):
        assert time.monotonic() < deadline, events
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            events.append(event)
            if isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            break  # the server closed (a rejection): what it sent is read
    return events


def goaway(frames: list[Frame]) -> Optional[Frame]:
    found = [f for f in frames if f.type == FrameType.GOAWAY]
    return found[-1] if found else None


def assert_connection_error(peer: Peer, events: list[Event], code: int) -> None:
    """The connection ended with code: our GOAWAY carries it, the last event
    says so, and nothing more is read."""
    assert events and isinstance(events[-1], ConnectionTerminated), events
    assert events[-1].error_code == code and not events[-1].remote, events[-1]
    frame = goaway(peer.read())
    assert frame is not None and frame.error_code == code, frame
    assert peer.conn.terminated
    assert peer.conn.receive(encode(Frame(FrameType.PING, data=b"12345678"))) == []
    assert peer.read() == []


def assert_stream_error(peer: Peer, events: list[Event], stream_id: int, code: int) -> None:
    """Only the stream ended: RST_STREAM with code, and the connection
    goes on (no GOAWAY, and a PING is still answered)."""
    resets = [e for e in events if isinstance(e, StreamReset)]
    assert resets and resets[-1].stream_id == stream_id and resets[-1].error_code == code \
        and not resets[-1].remote, events
    assert not any(isinstance(e, ConnectionTerminated) for e in events), events
    frames = peer.read()
    rst = [f for f in frames if f.type == FrameType.RST_STREAM and f.stream_id == stream_id]
    assert rst and rst[-1].error_code == code, frames
    assert goaway(frames) is None
    assert not peer.conn.terminated
    peer.send(Frame(FrameType.PING, data=b"stillup!"))
    assert any(f.type == FrameType.PING and f.flags & Flag.ACK for f in peer.read())


__all__ = ["h2_until", "reader_impl", "Flag", "Frame", "FrameType", "Peer", "REQUEST", "RESPONSE", "Setting",
           "assert_connection_error", "assert_stream_error", "goaway", "post"]
