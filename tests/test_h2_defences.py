"""The HTTP/2 flood defences, each shown: the offender gets GOAWAY
ENHANCE_YOUR_CALM (its debt past the limit in fastnet.limits), a peer that
does the same amount of useful work does not, and on a server every other
connection keeps being served."""
from __future__ import annotations

import socket
import time

import pytest

from fastnet import limits
from fastnet.codec.h2frame import FrameDecoder, encode
from fastnet.codec.hpack import Encoder
from fastnet.errors import H2ErrorCode as E
from fastnet.h2.connection import PREFACE
from fastnet.http import App, Response

from h2_helpers import (REQUEST, Flag, Frame, FrameType, Peer, Setting, assert_connection_error,
                        goaway, reader_impl)  # noqa: F401 (a fixture, used by name)
from fastnet.h2 import H2Server
from helpers import GUARD, require_engine, running_server, serving

# Each test runs on both twins of the per-read batch (fastnet.codec.h2sess).
pytestmark = pytest.mark.usefixtures("reader_impl")


def _calm(peer: Peer, frames: list[Frame], batch: int = 50) -> list:
    """Send frames in batches until the connection ends; its events."""
    for at in range(0, len(frames), batch):
        events = peer.send(*frames[at:at + batch])
        if peer.conn.terminated:
            return events
    raise AssertionError("the flood was never stopped")


def test_rapid_reset_headers_and_rst_stream_flood() -> None:
    peer = Peer()
    frames = []
    for i in range(limits.H2_MAX_RESET_DEBT + 10):
        stream_id = 1 + 2 * i
        frames += [peer.headers(stream_id, end_stream=False),
                   Frame(FrameType.RST_STREAM, stream_id, error_code=E.CANCEL)]
    events = _calm(peer, frames)
    assert_connection_error(peer, events, E.ENHANCE_YOUR_CALM)


def test_streams_served_to_their_end_pay_back_the_reset_debt() -> None:
    peer = Peer()
    for i in range(limits.H2_MAX_RESET_DEBT * 3):
        stream_id = 1 + 4 * i
        peer.send(peer.headers(stream_id, end_stream=False),
                  Frame(FrameType.RST_STREAM, stream_id, error_code=E.CANCEL))
        peer.send(peer.headers(stream_id + 2))              # a request served in full
        peer.conn.send_headers(stream_id + 2, [(b":status", b"204")], end_stream=True)
    assert not peer.conn.terminated


def test_refused_streams_count_as_rapid_reset() -> None:
    peer = Peer(settings={Setting.MAX_CONCURRENT_STREAMS: 1})
    frames = [peer.headers(1 + 2 * i, end_stream=False) for i in range(limits.H2_MAX_RESET_DEBT + 10)]
    events = _calm(peer, frames)
    assert_connection_error(peer, events, E.ENHANCE_YOUR_CALM)


def test_malformed_request_flood_counts_as_rapid_reset() -> None:
    peer = Peer()
    frames = [Frame(FrameType.HEADERS, 1 + 2 * i, Flag.END_HEADERS | Flag.END_STREAM, b"")
              for i in range(limits.H2_MAX_RESET_DEBT + 10)]  # empty HEADERS: no pseudo fields
    events = _calm(peer, frames)
    assert_connection_error(peer, events, E.ENHANCE_YOUR_CALM)


def test_continuation_flood_of_empty_frames() -> None:
    peer = Peer()
    frames = [Frame(FrameType.HEADERS, 1, 0, peer.block(REQUEST))]
    frames += [Frame(FrameType.CONTINUATION, 1, 0, b"") for _ in range(limits.H2_MAX_CONTINUATIONS + 1)]
    events = _calm(peer, frames)
    assert_connection_error(peer, events, E.ENHANCE_YOUR_CALM)


def test_continuation_flood_of_bytes_is_stopped_before_decoding() -> None:
    peer = Peer()
    frames = [Frame(FrameType.HEADERS, 1, 0, peer.block(REQUEST))]
    frames += [Frame(FrameType.CONTINUATION, 1, 0, b"\x00" * 16000) for _ in range(10)]
    # Stopped by the CONTINUATION that takes the block past the limit,
    # not at the block's end (nothing was decoded: no HPACK error).
    first = len(frames[0].data)
    crossing = next(k for k in range(1, 11) if first + 16000 * k > limits.DEFAULT_H2_MAX_FIELD_BLOCK)
    sent = 0
    for frame in frames:
        events = peer.send(frame)
        sent += 1
        if peer.conn.terminated:
            break
    assert sent == 1 + crossing
    assert "CONTINUATION flood" in str(events[-1].error)
    assert_connection_error(peer, events, E.ENHANCE_YOUR_CALM)


@pytest.mark.parametrize("flood", ["settings", "ping", "empty_data", "priority", "unknown",
                                   "window_update_closed"])
def test_control_frame_floods(flood: str) -> None:
    peer = Peer()
    if flood in ("empty_data", "window_update_closed"):
        peer.request(REQUEST, end_stream=False)
        if flood == "window_update_closed":
            peer.conn.reset_stream(1)
    make = {
        "settings": lambda: Frame(FrameType.SETTINGS, settings=((Setting.HEADER_TABLE_SIZE, 4096),)),
        "ping": lambda: Frame(FrameType.PING, data=b"flooding"),
        "empty_data": lambda: Frame(FrameType.DATA, 1, 0, b""),
        "priority": lambda: Frame(FrameType.PRIORITY, 3, depends_on=0, weight=16),
        "unknown": lambda: b"\x00\x00\x00\xee\x00\x00\x00\x00\x00",
        "window_update_closed": lambda: Frame(FrameType.WINDOW_UPDATE, 1, increment=1),
    }[flood]
    events = _calm(peer, [make() for _ in range(limits.H2_MAX_CONTROL_DEBT + 10)], batch=100)
    assert_connection_error(peer, events, E.ENHANCE_YOUR_CALM)


def test_pings_between_useful_work_are_not_a_flood() -> None:
    peer = Peer()
    for i in range(limits.H2_MAX_CONTROL_DEBT * 2):
        peer.send(Frame(FrameType.PING, data=b"12345678"))
        peer.request()
        peer.conn.send_headers(1 + 2 * i, [(b":status", b"204")], end_stream=True)
    assert not peer.conn.terminated


# -- on a server: the offender ends, everyone else is served --------------------------

def _client_socket(port: int, settings: tuple = ()) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    sock.sendall(PREFACE + encode(Frame(FrameType.SETTINGS, settings=settings))
                 + encode(Frame(FrameType.SETTINGS, flags=Flag.ACK)))
    return sock


def _read_until(sock: socket.socket, decoder: FrameDecoder, done) -> list[Frame]:
    frames: list[Frame] = []
    deadline = time.monotonic() + GUARD
    while not done(frames):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; got {frames}")
        data = sock.recv(65536)
        if not data:
            break
        frames += decoder.receive(data)
    return frames


def _get(port: int) -> bytes:
    sock = _client_socket(port)
    encoder = Encoder()
    sock.sendall(encode(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS | Flag.END_STREAM,
                              encoder.encode(REQUEST))))
    decoder = FrameDecoder()
    frames = _read_until(sock, decoder, lambda fs: any(
        f.type == FrameType.DATA and f.flags & Flag.END_STREAM for f in fs))
    sock.close()
    return b"".join(f.data for f in frames if f.type == FrameType.DATA)


def _app() -> App:
    app = App()

    @app.route("GET", "/")
    def hello(request):
        return Response(b"Hello, World!")

    @app.route("GET", "/big")
    def big(request):
        return Response(b"x" * 200_000)
    return app


@pytest.mark.parametrize("engine", ["c", "python"])
def test_a_rapid_reset_client_is_sent_away_and_others_are_served(engine: str) -> None:
    with running_server(engine, "h2", _app()) as (server, port):
        attacker = _client_socket(port)
        encoder = Encoder()
        flood = b"".join(
            encode(Frame(FrameType.HEADERS, 1 + 2 * i, Flag.END_HEADERS, encoder.encode(REQUEST)))
            + encode(Frame(FrameType.RST_STREAM, 1 + 2 * i, error_code=E.CANCEL))
            for i in range(limits.H2_MAX_RESET_DEBT + 50))
        attacker.sendall(flood)
        frames = _read_until(attacker, FrameDecoder(), lambda fs: goaway(fs) is not None)
        assert goaway(frames).error_code == E.ENHANCE_YOUR_CALM
        attacker.close()
        assert _get(port) == b"Hello, World!"


@pytest.mark.parametrize("engine", ["c", "python"])
def test_a_peer_that_never_opens_its_window_has_its_stream_reset(engine: str) -> None:
    require_engine(engine)
    server = H2Server(engine=engine, window_timeout=0.3)
    listener = server.listen("127.0.0.1", 0, protocol="h2", handler=_app())
    with serving(server):
        sock = _client_socket(listener.port, ((Setting.INITIAL_WINDOW_SIZE, 0),))
        encoder = Encoder()
        big = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/big"), (b":authority", b"x")]
        sock.sendall(encode(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS | Flag.END_STREAM,
                                  encoder.encode(big))))
        frames = _read_until(sock, FrameDecoder(), lambda fs: any(
            f.type == FrameType.RST_STREAM for f in fs))
        rst = [f for f in frames if f.type == FrameType.RST_STREAM]
        assert rst[0].stream_id == 1 and rst[0].error_code == E.CANCEL
        assert not [f for f in frames if f.type == FrameType.DATA]  # nothing past the window
        sock.close()
        assert _get(listener.port) == b"Hello, World!"


@pytest.mark.parametrize("engine", ["c", "python"])
def test_responses_waiting_for_windows_are_bounded_per_connection(engine: str) -> None:
    require_engine(engine)
    server = H2Server(engine=engine, max_pending_output=1_000_000)
    listener = server.listen("127.0.0.1", 0, protocol="h2", handler=_app())
    with serving(server):
        sock = _client_socket(listener.port, ((Setting.INITIAL_WINDOW_SIZE, 0),))
        encoder = Encoder()
        big = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/big"), (b":authority", b"x")]
        sock.sendall(b"".join(encode(Frame(FrameType.HEADERS, 1 + 2 * i, Flag.END_HEADERS | Flag.END_STREAM,
                                           encoder.encode(big))) for i in range(10)))
        frames = _read_until(sock, FrameDecoder(), lambda fs: goaway(fs) is not None)
        assert goaway(frames).error_code == E.ENHANCE_YOUR_CALM
        sock.close()
        assert _get(listener.port) == b"Hello, World!"


def test_the_defences_limits_live_in_fastnet_limits() -> None:
    for name in ("H2_MAX_RESET_DEBT", "H2_MAX_CONTROL_DEBT", "H2_MAX_CONTINUATIONS",
                 "DEFAULT_H2_MAX_FIELD_BLOCK", "DEFAULT_H2_WINDOW_TIMEOUT",
                 "DEFAULT_H2_MAX_PENDING_OUTPUT", "DEFAULT_H2_MAX_CONCURRENT_STREAMS"):
        assert getattr(limits, name) > 0
