"""fastnet.h2.H2Connection against RFC 9113, one test per rule, named by
its section: each checks the exact error code and whether the connection
(GOAWAY) or only the stream (RST_STREAM) ends. A raw peer (h2_helpers)
writes the frames; both roles are covered."""
from __future__ import annotations

import struct

import pytest

from fastnet.codec.h2frame import FrameDecoder
from fastnet.errors import H2ErrorCode as E
from fastnet.h2 import H2Connection
from fastnet.h2.connection import PREFACE, TRANSITIONS, StreamState
from fastnet.h2.events import (ConnectionTerminated, DataReceived, InformationalResponseReceived,
                               PingAcked, PingReceived, RequestReceived, ResponseReceived,
                               SettingsAcknowledged, SettingsChanged, StreamEnded, StreamReset,
                               TrailersReceived, WindowUpdated)
from fastnet.limits import DEFAULT_H2_CONNECTION_WINDOW, H2_DEFAULT_WINDOW_SIZE

from h2_helpers import (REQUEST, RESPONSE, Flag, Frame, FrameType, Peer, Setting,
                        assert_connection_error, assert_stream_error, goaway, post,
                        reader_impl)  # noqa: F401 (a fixture, used by name)

# Each test runs on both twins of the per-read batch (fastnet.codec.h2sess).
pytestmark = pytest.mark.usefixtures("reader_impl")


def raw(length: int, kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return length.to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big") + payload


def kinds(events: list) -> list[type]:
    return [type(e) for e in events]


# -- 3.4 the preface -------------------------------------------------------

def test_3_4_server_requires_the_client_preface() -> None:
    conn = H2Connection(client_side=False)
    conn.initiate()
    conn.data_to_send()
    events = conn.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(events[-1], ConnectionTerminated) and events[-1].error_code == E.PROTOCOL_ERROR
    assert b"\x07" in conn.data_to_send()[3:4]  # a GOAWAY frame
    assert conn.terminated


def test_3_4_preface_split_anywhere_is_accepted() -> None:
    conn = H2Connection(client_side=False)
    conn.initiate()
    data = PREFACE + raw(0, FrameType.SETTINGS, 0, 0)
    events = []
    for i in range(len(data)):
        events += conn.receive(data[i:i + 1])
    assert kinds(events) == [SettingsChanged]


def test_3_4_server_first_frame_must_be_settings() -> None:
    conn = H2Connection(client_side=False)
    conn.initiate()
    events = conn.receive(PREFACE + raw(8, FrameType.PING, 0, 0, b"12345678"))
    assert isinstance(events[-1], ConnectionTerminated)
    assert events[-1].error_code == E.PROTOCOL_ERROR and not events[-1].remote


def test_3_4_client_needs_settings_first_from_the_server() -> None:
    conn = H2Connection(client_side=True)
    conn.initiate()
    assert conn.data_to_send().startswith(PREFACE)
    events = conn.receive(raw(8, FrameType.PING, 0, 0, b"12345678"))
    assert isinstance(events[-1], ConnectionTerminated) and events[-1].error_code == E.PROTOCOL_ERROR


def test_3_4_initiate_opens_the_connection_window() -> None:
    conn = H2Connection(client_side=False)
    conn.initiate()
    out = FrameDecoder().receive(conn.data_to_send())
    assert [f.type for f in out] == [FrameType.SETTINGS, FrameType.WINDOW_UPDATE]
    assert out[1].increment == DEFAULT_H2_CONNECTION_WINDOW - H2_DEFAULT_WINDOW_SIZE


# -- 4.2, 4.3 frame size and header compression ----------------------------------

def test_4_2_frame_over_max_frame_size_is_a_connection_error() -> None:
    peer = Peer()
    events = peer.send(raw(16385, FrameType.DATA, 0, 1, bytes(16385)))
    assert_connection_error(peer, events, E.FRAME_SIZE_ERROR)


def test_4_2_larger_frames_after_our_max_frame_size_setting() -> None:
    peer = Peer(settings={Setting.MAX_FRAME_SIZE: 65536})
    events = peer.request(post(), end_stream=False)
    events = peer.send(Frame(FrameType.DATA, 1, Flag.END_STREAM, bytes(20000)))
    assert kinds(events) == [DataReceived, StreamEnded]


def test_4_3_undecodable_field_block_is_compression_error() -> None:
    peer = Peer()
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS | Flag.END_STREAM, b"\xff\xff\xff\xff\xff\xff"))
    assert_connection_error(peer, events, E.COMPRESSION_ERROR)


def test_4_3_header_list_past_our_limit_ends_the_connection() -> None:
    peer = Peer(settings={Setting.MAX_HEADER_LIST_SIZE: 200})
    events = peer.request(REQUEST + [(b"x-big", b"v" * 300)])
    assert_connection_error(peer, events, E.ENHANCE_YOUR_CALM)


def test_4_3_a_field_block_of_an_ignored_stream_is_still_decoded() -> None:
    # A stream we reset: its later HEADERS (trailers) is ignored, but the
    # HPACK table follows it, so the next request (indexing the same
    # dynamic entry) decodes.
    peer = Peer()
    peer.request(post(), end_stream=False)
    peer.conn.reset_stream(1, E.CANCEL)
    peer.read()
    events = peer.send(peer.headers(1, [(b"x-trailer", b"new-value")]))
    assert events == []
    events = peer.send(peer.headers(3, REQUEST + [(b"x-trailer", b"new-value")]))
    assert isinstance(events[0], RequestReceived)
    assert (b"x-trailer", b"new-value") in events[0].headers


# -- 5.1 stream states ---------------------------------------------------------

def test_5_1_the_transition_table_matches_the_rfc_diagram() -> None:
    S = StreamState
    assert TRANSITIONS[(S.IDLE, 4)] == S.OPEN                   # recv H
    assert TRANSITIONS[(S.OPEN, 6)] == S.HALF_CLOSED_REMOTE     # recv ES
    assert TRANSITIONS[(S.OPEN, 2)] == S.HALF_CLOSED_LOCAL      # send ES
    assert TRANSITIONS[(S.HALF_CLOSED_REMOTE, 2)] == S.CLOSED
    assert TRANSITIONS[(S.HALF_CLOSED_LOCAL, 6)] == S.CLOSED
    for state in (S.OPEN, S.HALF_CLOSED_LOCAL, S.HALF_CLOSED_REMOTE):
        assert TRANSITIONS[(state, 3)] == S.CLOSED and TRANSITIONS[(state, 7)] == S.CLOSED
    assert (S.HALF_CLOSED_REMOTE, 5) not in TRANSITIONS      # recv DATA
    assert (S.HALF_CLOSED_LOCAL, 1) not in TRANSITIONS       # send DATA
    assert not [k for k in TRANSITIONS if k[0] == S.CLOSED]


def test_5_1_states_of_a_request_on_both_sides() -> None:
    peer = Peer(ours="client")
    conn = peer.conn
    conn.send_headers(1, post(), end_stream=False)
    assert conn.stream_state(1) == StreamState.OPEN
    conn.send_data(1, b"", end_stream=True)
    assert conn.stream_state(1) == StreamState.HALF_CLOSED_LOCAL
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS | Flag.END_STREAM,
                             peer.block(RESPONSE)))
    assert kinds(events) == [ResponseReceived, StreamEnded]
    assert conn.stream_state(1) == StreamState.CLOSED
    server = Peer()
    server.request(post(), end_stream=False)
    assert server.conn.stream_state(1) == StreamState.OPEN
    server.send(Frame(FrameType.DATA, 1, Flag.END_STREAM))
    assert server.conn.stream_state(1) == StreamState.HALF_CLOSED_REMOTE
    server.conn.send_headers(1, RESPONSE, end_stream=True)
    assert server.conn.stream_state(1) == StreamState.CLOSED
    assert server.conn.stream_state(3) == StreamState.IDLE


def test_5_1_data_on_an_idle_stream_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(Frame(FrameType.DATA, 1, 0, b"x")), E.PROTOCOL_ERROR)


def test_5_1_rst_stream_on_an_idle_stream_is_a_connection_error() -> None:
    peer = Peer()
    events = peer.send(Frame(FrameType.RST_STREAM, 1, error_code=E.CANCEL))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_5_1_window_update_on_an_idle_stream_is_a_connection_error() -> None:
    peer = Peer()
    events = peer.send(Frame(FrameType.WINDOW_UPDATE, 1, increment=1))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_5_1_priority_on_an_idle_stream_is_allowed() -> None:
    peer = Peer()
    events = peer.send(Frame(FrameType.PRIORITY, 5, depends_on=0, weight=16))
    assert not peer.conn.terminated and peer.conn.stream_state(5) == StreamState.IDLE
    assert kinds(peer.request()) == [RequestReceived, StreamEnded]
    assert events


def test_5_1_half_closed_remote_data_is_a_stream_error() -> None:
    peer = Peer()
    peer.request()
    events = peer.send(Frame(FrameType.DATA, 1, 0, b"late"))
    assert_stream_error(peer, events, 1, E.STREAM_CLOSED)


def test_5_1_half_closed_remote_headers_is_a_stream_error() -> None:
    peer = Peer()
    peer.request()
    events = peer.send(peer.headers(1, [(b"x-late", b"1")]))
    assert_stream_error(peer, events, 1, E.STREAM_CLOSED)


def test_5_1_frames_after_end_stream_on_a_closed_stream_are_a_connection_error() -> None:
    peer = Peer()
    peer.request()
    peer.conn.send_headers(1, RESPONSE, end_stream=True)
    peer.read()
    events = peer.send(Frame(FrameType.DATA, 1, 0, b"late"))
    assert_connection_error(peer, events, E.STREAM_CLOSED)


def test_5_1_frames_after_we_reset_a_stream_are_ignored() -> None:
    peer = Peer()
    peer.request(post(), end_stream=False)
    peer.conn.reset_stream(1)
    peer.read()
    events = peer.send(Frame(FrameType.DATA, 1, 0, b"in flight"),
                       Frame(FrameType.WINDOW_UPDATE, 1, increment=5),
                       Frame(FrameType.RST_STREAM, 1, error_code=E.CANCEL))
    assert events == [] and not peer.conn.terminated
    assert goaway(peer.read()) is None


def test_5_1_frames_after_the_peer_reset_a_stream_are_a_stream_error() -> None:
    peer = Peer()
    peer.request(post(), end_stream=False)
    events = peer.send(Frame(FrameType.RST_STREAM, 1, error_code=E.CANCEL))
    assert kinds(events) == [StreamReset] and events[0].remote
    events = peer.send(Frame(FrameType.DATA, 1, 0, b"x"))
    frames = peer.read()
    assert [f.error_code for f in frames if f.type == FrameType.RST_STREAM] == [E.STREAM_CLOSED]
    assert not peer.conn.terminated


def test_5_1_priority_on_a_closed_stream_is_allowed() -> None:
    peer = Peer()
    peer.request()
    peer.conn.send_headers(1, RESPONSE, end_stream=True)
    peer.send(Frame(FrameType.PRIORITY, 1, depends_on=0, weight=1))
    assert not peer.conn.terminated and goaway(peer.read()) is None


def test_5_1_sending_in_a_state_that_forbids_it_is_a_local_error() -> None:
    peer = Peer()
    peer.request()
    peer.conn.send_headers(1, RESPONSE, end_stream=True)
    with pytest.raises(ValueError):
        peer.conn.send_data(1, b"x")
    client = Peer(ours="client")
    client.conn.send_headers(1, REQUEST, end_stream=True)
    with pytest.raises(ValueError):
        client.conn.send_data(1, b"x")
    with pytest.raises(ValueError):
        client.conn.send_trailers(1, [(b"x", b"y")])


# -- 5.1.1 stream identifiers -----------------------------------------------------

def test_5_1_1_an_even_stream_from_a_client_is_a_connection_error() -> None:
    peer = Peer()
    events = peer.send(peer.headers(2))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_5_1_1_a_new_stream_id_must_grow() -> None:
    peer = Peer()
    peer.send(peer.headers(5))
    events = peer.send(peer.headers(3))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_5_1_1_skipped_stream_ids_are_closed() -> None:
    peer = Peer()
    assert kinds(peer.send(peer.headers(7))) == [RequestReceived, StreamEnded]
    assert peer.conn.stream_state(3) == StreamState.CLOSED


def test_5_1_1_a_server_may_not_open_streams() -> None:
    peer = Peer(ours="client")
    events = peer.send(Frame(FrameType.HEADERS, 2, Flag.END_HEADERS, peer.block(RESPONSE)))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_5_1_1_a_client_answer_on_a_stream_we_never_opened() -> None:
    peer = Peer(ours="client")
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS, peer.block(RESPONSE)))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_5_1_1_our_stream_ids_are_odd_and_grow() -> None:
    peer = Peer(ours="client")
    conn = peer.conn
    assert conn.get_next_available_stream_id() == 1
    conn.send_headers(1, REQUEST, end_stream=True)
    assert conn.get_next_available_stream_id() == 3
    with pytest.raises(ValueError):
        conn.send_headers(1, REQUEST)
    with pytest.raises(ValueError):
        conn.send_headers(4, REQUEST)


# -- 5.1.2 concurrency ------------------------------------------------------------

def test_5_1_2_streams_over_max_concurrent_streams_are_refused() -> None:
    peer = Peer(settings={Setting.MAX_CONCURRENT_STREAMS: 2})
    peer.request(end_stream=False)
    peer.request(end_stream=False)
    events = peer.request(end_stream=False)
    assert_stream_error(peer, events, 5, E.REFUSED_STREAM)
    peer.conn.send_headers(1, RESPONSE, end_stream=True)  # stream 1: half-closed local
    peer.send(Frame(FrameType.DATA, 1, Flag.END_STREAM))    # ... closed: a slot frees
    assert kinds(peer.request()) == [RequestReceived, StreamEnded]


# -- 5.4 error handling -----------------------------------------------------------

def test_5_4_1_nothing_is_read_after_a_connection_error() -> None:
    peer = Peer()
    events = peer.send(raw(4, FrameType.SETTINGS, 0, 1, bytes(6)))  # SETTINGS on a stream
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)
    assert peer.conn.receive(b"anything") == []


def test_5_4_1_goaway_names_the_last_stream_processed() -> None:
    peer = Peer()
    peer.request()
    peer.request()
    events = peer.send(Frame(FrameType.DATA, 9, 0, b"x"))  # idle
    assert isinstance(events[-1], ConnectionTerminated) and events[-1].last_stream_id == 3
    assert goaway(peer.read()).last_stream_id == 3


# -- 5.5 extensions ----------------------------------------------------------------

def test_5_5_unknown_frame_types_and_settings_are_ignored() -> None:
    peer = Peer()
    events = peer.send(raw(3, 0xFA, 0xFF, 1, b"abc"),
                       Frame(FrameType.SETTINGS, settings=((0x99, 7),)))
    assert kinds(events) == [SettingsChanged] and not peer.conn.terminated
    assert kinds(peer.request()) == [RequestReceived, StreamEnded]


# -- 6.1 DATA ------------------------------------------------------------------------

def test_6_1_data_on_stream_zero_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(1, FrameType.DATA, 0, 0, b"x")), E.PROTOCOL_ERROR)


def test_6_1_padding_as_long_as_the_payload_is_a_connection_error() -> None:
    peer = Peer()
    peer.request(post(), end_stream=False)
    events = peer.send(raw(3, FrameType.DATA, Flag.PADDED, 1, b"\x05ab"))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_6_1_padding_counts_against_flow_control() -> None:
    peer = Peer()
    peer.request(post(), end_stream=False)
    events = peer.send(Frame(FrameType.DATA, 1, Flag.PADDED, b"abc", pad_length=10))
    assert isinstance(events[0], DataReceived)
    assert events[0].data == b"abc" and events[0].flow_controlled_length == 14


def test_6_1_data_before_headers_ended_on_a_client_stream() -> None:
    peer = Peer(ours="client")
    peer.conn.send_headers(1, REQUEST, end_stream=True)
    events = peer.send(Frame(FrameType.DATA, 1, 0, b"x"))
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)


# -- 6.2 HEADERS ---------------------------------------------------------------------

def test_6_2_headers_on_stream_zero_is_a_connection_error() -> None:
    peer = Peer()
    events = peer.send(raw(1, FrameType.HEADERS, Flag.END_HEADERS, 0, b"\x82"))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_6_2_a_stream_depending_on_itself_is_a_stream_error() -> None:
    peer = Peer()
    events = peer.send(peer.headers(1, REQUEST + [(b"x-one", b"first")], extra_flags=Flag.PRIORITY,
                                    depends_on=1, weight=16))
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)
    events = peer.send(peer.headers(3, REQUEST + [(b"x-one", b"first")]))
    assert isinstance(events[0], RequestReceived)  # the table stayed in step


def test_6_2_headers_with_priority_fields_are_accepted() -> None:
    peer = Peer()
    events = peer.send(peer.headers(1, extra_flags=Flag.PRIORITY, depends_on=0, weight=200))
    assert kinds(events) == [RequestReceived, StreamEnded]


# -- 6.3 PRIORITY ----------------------------------------------------------------------

def test_6_3_priority_of_the_wrong_length_is_a_stream_error() -> None:
    peer = Peer()
    events = peer.send(raw(4, FrameType.PRIORITY, 0, 1, bytes(4)))
    resets = [e for e in events if isinstance(e, StreamReset)]
    assert resets[0].error_code == E.FRAME_SIZE_ERROR and not peer.conn.terminated
    assert [f.error_code for f in peer.read() if f.type == FrameType.RST_STREAM] == [E.FRAME_SIZE_ERROR]


def test_6_3_priority_on_stream_zero_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(5, FrameType.PRIORITY, 0, 0, bytes(5))),
                            E.PROTOCOL_ERROR)


# -- 6.4 RST_STREAM ---------------------------------------------------------------------

def test_6_4_rst_stream_on_stream_zero_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(4, FrameType.RST_STREAM, 0, 0, bytes(4))),
                            E.PROTOCOL_ERROR)


def test_6_4_rst_stream_of_the_wrong_length_is_a_connection_error() -> None:
    peer = Peer()
    peer.request(end_stream=False)
    assert_connection_error(peer, peer.send(raw(3, FrameType.RST_STREAM, 0, 1, bytes(3))),
                            E.FRAME_SIZE_ERROR)


def test_6_4_rst_stream_closes_the_stream() -> None:
    peer = Peer()
    peer.request(end_stream=False)
    events = peer.send(Frame(FrameType.RST_STREAM, 1, error_code=E.CANCEL))
    assert events == [StreamReset(1, E.CANCEL, True)]
    assert peer.conn.stream_state(1) == StreamState.CLOSED
    with pytest.raises(ValueError):
        peer.conn.send_headers(1, RESPONSE)


# -- 6.5 SETTINGS -----------------------------------------------------------------------

def test_6_5_settings_ack_with_a_payload_is_a_connection_error() -> None:
    peer = Peer()
    events = peer.send(raw(6, FrameType.SETTINGS, Flag.ACK, 0, bytes(6)))
    assert_connection_error(peer, events, E.FRAME_SIZE_ERROR)


def test_6_5_settings_on_a_stream_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(0, FrameType.SETTINGS, 0, 1)), E.PROTOCOL_ERROR)


def test_6_5_settings_length_not_a_multiple_of_6_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(5, FrameType.SETTINGS, 0, 0, bytes(5))),
                            E.FRAME_SIZE_ERROR)


def test_6_5_2_enable_push_other_than_0_or_1_is_a_connection_error() -> None:
    peer = Peer()
    events = peer.send(raw(6, FrameType.SETTINGS, 0, 0, struct.pack(">HI", 2, 2)))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_6_5_2_a_server_enabling_push_is_a_connection_error() -> None:
    peer = Peer(ours="client")
    events = peer.send(Frame(FrameType.SETTINGS, settings=((Setting.ENABLE_PUSH, 1),)))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_6_5_2_initial_window_size_above_2_31_is_flow_control_error() -> None:
    peer = Peer()
    events = peer.send(raw(6, FrameType.SETTINGS, 0, 0, struct.pack(">HI", 4, 2**31)))
    assert_connection_error(peer, events, E.FLOW_CONTROL_ERROR)


@pytest.mark.parametrize("value", [2**14 - 1, 2**24])
def test_6_5_2_max_frame_size_out_of_range_is_a_connection_error(value: int) -> None:
    peer = Peer()
    events = peer.send(raw(6, FrameType.SETTINGS, 0, 0, struct.pack(">HI", 5, value)))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_6_5_3_settings_are_acknowledged_and_applied() -> None:
    peer = Peer()
    events = peer.send(Frame(FrameType.SETTINGS, settings=((Setting.MAX_FRAME_SIZE, 20000),
                                                           (Setting.HEADER_TABLE_SIZE, 0))))
    assert events == [SettingsChanged({Setting.MAX_FRAME_SIZE: 20000, Setting.HEADER_TABLE_SIZE: 0})]
    frames = peer.read()
    assert [(f.type, f.flags) for f in frames] == [(FrameType.SETTINGS, Flag.ACK)]
    peer.frames.max_frame_size = 20000  # the peer (our test side) said it takes them
    peer.request()
    peer.conn.send_headers(1, RESPONSE)
    assert peer.conn.send_data(1, bytes(20000), end_stream=True) == 20000
    frames = peer.read()
    assert [len(f.data) for f in frames if f.type == FrameType.DATA] == [20000]


def test_6_5_3_our_settings_apply_on_the_peers_ack() -> None:
    conn = H2Connection(client_side=False, settings={Setting.MAX_CONCURRENT_STREAMS: 1})
    conn.initiate()
    conn.data_to_send()
    events = conn.receive(PREFACE + raw(0, FrameType.SETTINGS, 0, 0) + raw(0, FrameType.SETTINGS, Flag.ACK, 0))
    assert kinds(events) == [SettingsChanged, SettingsAcknowledged]
    assert conn.local_settings[Setting.MAX_CONCURRENT_STREAMS] == 1


def test_6_5_3_an_unsolicited_ack_is_ignored() -> None:
    peer = Peer()
    assert peer.send(raw(0, FrameType.SETTINGS, Flag.ACK, 0)) == []
    assert not peer.conn.terminated


# -- 6.7 PING ------------------------------------------------------------------------------

def test_6_7_ping_is_answered_with_the_same_data() -> None:
    peer = Peer()
    assert peer.send(Frame(FrameType.PING, data=b"opaque!!")) == [PingReceived(b"opaque!!")]
    frames = peer.read()
    assert [(f.type, f.flags, f.data) for f in frames] == [(FrameType.PING, Flag.ACK, b"opaque!!")]


def test_6_7_a_ping_ack_is_not_answered() -> None:
    peer = Peer()
    data = peer.conn.ping()
    peer.read()
    assert peer.send(Frame(FrameType.PING, flags=Flag.ACK, data=data)) == [PingAcked(data)]
    assert peer.read() == []


def test_6_7_ping_on_a_stream_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(8, FrameType.PING, 0, 1, bytes(8))), E.PROTOCOL_ERROR)


def test_6_7_ping_of_the_wrong_length_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(7, FrameType.PING, 0, 0, bytes(7))),
                            E.FRAME_SIZE_ERROR)


# -- 6.8 GOAWAY --------------------------------------------------------------------------------

def test_6_8_goaway_on_a_stream_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(8, FrameType.GOAWAY, 0, 1, bytes(8))),
                            E.PROTOCOL_ERROR)


def test_6_8_streams_after_our_goaway_are_ignored_and_earlier_ones_go_on() -> None:
    peer = Peer()
    peer.request(post(), end_stream=False)
    peer.conn.close()
    assert goaway(peer.read()).last_stream_id == 1
    assert peer.request() == []  # stream 3: ignored
    events = peer.send(Frame(FrameType.DATA, 1, Flag.END_STREAM, b"body"))
    assert kinds(events) == [DataReceived, StreamEnded]
    peer.conn.send_headers(1, RESPONSE, end_stream=True)
    assert peer.read()[0].type == FrameType.HEADERS


def test_6_8_a_servers_goaway_refuses_our_streams_above_its_last() -> None:
    peer = Peer(ours="client")
    for stream_id in (1, 3, 5):
        peer.conn.send_headers(stream_id, REQUEST, end_stream=True)
    events = peer.send(Frame(FrameType.GOAWAY, last_stream_id=1, error_code=E.NO_ERROR))
    assert events[:2] == [StreamReset(3, E.REFUSED_STREAM, True), StreamReset(5, E.REFUSED_STREAM, True)]
    assert isinstance(events[2], ConnectionTerminated) and events[2].remote
    with pytest.raises(ValueError):
        peer.conn.send_headers(7, REQUEST)
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS | Flag.END_STREAM, peer.block(RESPONSE)))
    assert kinds(events) == [ResponseReceived, StreamEnded]


def test_6_8_a_goaway_may_not_raise_the_last_stream_id() -> None:
    peer = Peer(ours="client")
    peer.send(Frame(FrameType.GOAWAY, last_stream_id=1))
    events = peer.send(Frame(FrameType.GOAWAY, last_stream_id=5))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


# -- 6.9 WINDOW_UPDATE and flow control ---------------------------------------------------------

def test_6_9_zero_increment_on_a_stream_is_a_stream_error() -> None:
    peer = Peer()
    peer.request(end_stream=False)
    events = peer.send(Frame(FrameType.WINDOW_UPDATE, 1, increment=0))
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)


def test_6_9_zero_increment_on_the_connection_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(4, FrameType.WINDOW_UPDATE, 0, 0, bytes(4))),
                            E.PROTOCOL_ERROR)


def test_6_9_window_update_of_the_wrong_length_is_a_connection_error() -> None:
    peer = Peer()
    assert_connection_error(peer, peer.send(raw(3, FrameType.WINDOW_UPDATE, 0, 0, bytes(3))),
                            E.FRAME_SIZE_ERROR)


def test_6_9_1_a_stream_window_past_2_31_is_a_stream_error() -> None:
    peer = Peer()
    peer.request(end_stream=False)
    events = peer.send(Frame(FrameType.WINDOW_UPDATE, 1, increment=2**31 - 1))
    assert_stream_error(peer, events, 1, E.FLOW_CONTROL_ERROR)


def test_6_9_1_the_connection_window_past_2_31_is_a_connection_error() -> None:
    peer = Peer()
    events = peer.send(Frame(FrameType.WINDOW_UPDATE, 0, increment=2**31 - 1))
    assert_connection_error(peer, events, E.FLOW_CONTROL_ERROR)


def test_6_9_1_data_past_the_stream_window_is_a_stream_error() -> None:
    peer = Peer(settings={Setting.INITIAL_WINDOW_SIZE: 100})
    peer.request(post(), end_stream=False)
    events = peer.send(Frame(FrameType.DATA, 1, 0, bytes(101)))
    assert_stream_error(peer, events, 1, E.FLOW_CONTROL_ERROR)


def test_6_9_1_data_past_the_connection_window_is_a_connection_error() -> None:
    peer = Peer(settings={Setting.INITIAL_WINDOW_SIZE: 2**20}, connection_window=65535)
    for stream_id in (1, 3, 5, 7, 9):
        peer.send(peer.headers(stream_id, post(), end_stream=False))
    events = []
    for stream_id in (1, 3, 5, 7, 9):
        events = peer.send(Frame(FrameType.DATA, stream_id, 0, bytes(16000)))
    assert_connection_error(peer, events, E.FLOW_CONTROL_ERROR)


def test_6_9_1_credit_is_given_back_only_as_data_is_acknowledged() -> None:
    peer = Peer()
    peer.request(post(), end_stream=False)
    events = peer.send(Frame(FrameType.DATA, 1, 0, bytes(16384)), Frame(FrameType.DATA, 1, 0, bytes(16384)))
    assert peer.read() == []  # nothing consumed: no WINDOW_UPDATE
    for event in events:
        peer.conn.acknowledge(1, event.flow_controlled_length)
    updates = {f.stream_id: f.increment for f in peer.read() if f.type == FrameType.WINDOW_UPDATE}
    assert updates == {1: 32768}  # the connection's window is larger: not yet half used
    events = peer.send(Frame(FrameType.DATA, 1, 0, bytes(16384)), Frame(FrameType.DATA, 1, 0, bytes(16384)))
    assert kinds(events) == [DataReceived, DataReceived]  # the stream's window reopened


def test_6_9_1_we_never_send_past_the_peers_windows() -> None:
    peer = Peer(peer_settings=((Setting.INITIAL_WINDOW_SIZE, 10),))
    peer.request()
    conn = peer.conn
    conn.send_headers(1, RESPONSE)
    assert conn.local_flow_window(1) == 10
    assert conn.send_data(1, b"a" * 25, end_stream=True) == 10
    assert conn.stream_state(1) == StreamState.HALF_CLOSED_REMOTE  # END_STREAM not sent
    assert conn.send_data(1, b"a" * 15, end_stream=True) == 0
    events = peer.send(Frame(FrameType.WINDOW_UPDATE, 1, increment=100))
    assert events == [WindowUpdated(1, 100)]
    assert conn.send_data(1, b"a" * 15, end_stream=True) == 15
    data = [f for f in peer.read() if f.type == FrameType.DATA]
    assert [len(f.data) for f in data] == [10, 15] and data[-1].flags & Flag.END_STREAM


def test_6_9_1_the_connection_window_bounds_all_streams() -> None:
    peer = Peer(peer_settings=((Setting.INITIAL_WINDOW_SIZE, 2**20),))
    conn = peer.conn
    peer.request()
    peer.request()
    conn.send_headers(1, RESPONSE)
    conn.send_headers(3, RESPONSE)
    assert conn.send_data(1, bytes(60000)) == 60000
    assert conn.send_data(3, bytes(60000)) == 65535 - 60000
    peer.send(Frame(FrameType.WINDOW_UPDATE, 0, increment=1000))
    assert conn.local_flow_window(3) == 1000


def test_6_9_2_an_initial_window_change_adjusts_open_streams() -> None:
    peer = Peer()
    peer.request()
    conn = peer.conn
    conn.send_headers(1, RESPONSE)
    assert conn.send_data(1, bytes(1000)) == 1000
    peer.send(Frame(FrameType.SETTINGS, settings=((Setting.INITIAL_WINDOW_SIZE, 500),)))
    assert conn.local_flow_window(1) == 0  # 500 - 1000: negative, nothing may be sent
    events = peer.send(Frame(FrameType.SETTINGS, settings=((Setting.INITIAL_WINDOW_SIZE, 3000),)))
    assert WindowUpdated(1, 2500) in events
    assert conn.local_flow_window(1) == 2000


def test_6_9_2_an_initial_window_change_overflowing_a_stream_is_a_connection_error() -> None:
    peer = Peer()
    peer.request()
    peer.send(Frame(FrameType.WINDOW_UPDATE, 1, increment=2**31 - 1 - 65535))
    events = peer.send(Frame(FrameType.SETTINGS, settings=((Setting.INITIAL_WINDOW_SIZE, 65536),)))
    assert_connection_error(peer, events, E.FLOW_CONTROL_ERROR)


# -- 6.10 CONTINUATION ---------------------------------------------------------------------------

def test_6_10_a_field_block_over_continuations_is_assembled() -> None:
    peer = Peer()
    block = peer.block(REQUEST + [(b"x-long", b"v" * 100)])
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_STREAM, block[:10]),
                       Frame(FrameType.CONTINUATION, 1, 0, block[10:50]),
                       Frame(FrameType.CONTINUATION, 1, Flag.END_HEADERS, block[50:]))
    assert kinds(events) == [RequestReceived, StreamEnded]
    assert events[0].headers[-1] == (b"x-long", b"v" * 100)


def test_6_10_continuation_without_an_open_block_is_a_connection_error() -> None:
    peer = Peer()
    peer.request()
    events = peer.send(Frame(FrameType.CONTINUATION, 1, Flag.END_HEADERS, b""))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_6_10_another_frame_inside_a_field_block_is_a_connection_error() -> None:
    peer = Peer()
    block = peer.block(REQUEST)
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_STREAM, block[:5]),
                       Frame(FrameType.PING, data=bytes(8)))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_6_10_continuation_on_another_stream_is_a_connection_error() -> None:
    peer = Peer()
    block = peer.block(REQUEST)
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_STREAM, block[:5]),
                       Frame(FrameType.CONTINUATION, 3, Flag.END_HEADERS, block[5:]))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_6_10_our_large_field_blocks_go_out_in_continuations() -> None:
    peer = Peer()
    peer.request()
    peer.conn.send_headers(1, RESPONSE + [(b"x-big", bytes(range(256)) * 160)], end_stream=True)
    frames = peer.read()
    assert [f.type for f in frames] == [FrameType.HEADERS, FrameType.CONTINUATION, FrameType.CONTINUATION]
    assert frames[-1].flags & Flag.END_HEADERS
    headers = peer.decoder.decode(b"".join(f.data for f in frames))
    assert headers[-1][1] == bytes(range(256)) * 160


# -- 8.1 messages -------------------------------------------------------------------------------

def test_8_1_trailers_end_the_stream() -> None:
    peer = Peer()
    peer.request(post(), end_stream=False)
    peer.send(Frame(FrameType.DATA, 1, 0, b"body"))
    events = peer.send(peer.headers(1, [(b"grpc-status", b"0")]))
    assert kinds(events) == [TrailersReceived, StreamEnded]


def test_8_1_trailers_without_end_stream_are_a_stream_error() -> None:
    peer = Peer()
    peer.request(post(), end_stream=False)
    events = peer.send(peer.headers(1, [(b"x-trailer", b"1")], end_stream=False))
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)


def test_8_1_pseudo_fields_in_trailers_are_a_stream_error() -> None:
    peer = Peer()
    peer.request(post(), end_stream=False)
    events = peer.send(peer.headers(1, [(b":path", b"/")]))
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)


def test_8_1_1_less_data_than_content_length_is_a_stream_error() -> None:
    peer = Peer()
    peer.request(post(10), end_stream=False)
    events = peer.send(Frame(FrameType.DATA, 1, Flag.END_STREAM, b"short"))
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)


def test_8_1_1_more_data_than_content_length_is_a_stream_error() -> None:
    peer = Peer()
    peer.request(post(3), end_stream=False)
    events = peer.send(Frame(FrameType.DATA, 1, 0, b"too long"))
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)


def test_8_1_1_content_length_without_data_is_a_stream_error() -> None:
    peer = Peer()
    assert_stream_error(peer, peer.request(post(5), end_stream=True), 1, E.PROTOCOL_ERROR)


def test_8_1_1_matching_content_length_is_accepted() -> None:
    peer = Peer()
    peer.request(post(4), end_stream=False)
    events = peer.send(Frame(FrameType.DATA, 1, 0, b"ab"), Frame(FrameType.DATA, 1, Flag.END_STREAM, b"cd"))
    assert kinds(events) == [DataReceived, DataReceived, StreamEnded]


def test_8_1_1_a_responses_content_length_is_checked_by_the_client() -> None:
    peer = Peer(ours="client")
    peer.conn.send_headers(1, REQUEST, end_stream=True)
    peer.send(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS,
                    peer.block(RESPONSE + [(b"content-length", b"2")])))
    events = peer.send(Frame(FrameType.DATA, 1, Flag.END_STREAM, b"abc"))
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)


def test_8_1_1_a_head_response_may_declare_a_length_without_data() -> None:
    peer = Peer(ours="client")
    peer.conn.send_headers(1, [(b":method", b"HEAD")] + REQUEST[1:], end_stream=True)
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS | Flag.END_STREAM,
                             peer.block(RESPONSE + [(b"content-length", b"20")])))
    assert kinds(events) == [ResponseReceived, StreamEnded]


def test_8_1_informational_responses_come_before_the_final_one() -> None:
    peer = Peer(ours="client")
    peer.conn.send_headers(1, REQUEST, end_stream=True)
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS, peer.block([(b":status", b"103")])),
                       Frame(FrameType.HEADERS, 1, Flag.END_HEADERS | Flag.END_STREAM, peer.block(RESPONSE)))
    assert kinds(events) == [InformationalResponseReceived, ResponseReceived, StreamEnded]


# -- 8.2 fields ------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", [
    (b"X-Upper", b"v"),            # 8.2.1: uppercase name
    (b"bad name", b"v"),           # 8.2.1: SP in a name
    (b"colon:in", b"v"),           # 8.2.1: colon in a regular name
    (b"", b"v"),                   # 8.2.1: an empty name
    (b"x-v", b"a\r\nb"),           # 8.2.1: CR LF in a value
    (b"x-v", b"a\x00b"),           # 8.2.1: NUL
    (b"x-v", b" lead"),            # 8.2.1: leading whitespace
    (b"x-v", b"trail\t"),          # 8.2.1: trailing whitespace
    (b"connection", b"close"),     # 8.2.2
    (b"keep-alive", b"1"),         # 8.2.2
    (b"proxy-connection", b"x"),   # 8.2.2
    (b"transfer-encoding", b"chunked"),  # 8.2.2
    (b"upgrade", b"h2c"),          # 8.2.2
    (b"te", b"gzip"),              # 8.2.2: TE other than trailers
])
def test_8_2_malformed_fields_are_a_stream_error(field: tuple[bytes, bytes]) -> None:
    peer = Peer()
    events = peer.request(REQUEST + [field])
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)


def test_8_2_2_te_trailers_is_allowed() -> None:
    peer = Peer()
    assert kinds(peer.request(REQUEST + [(b"te", b"trailers")])) == [RequestReceived, StreamEnded]


# -- 8.3 pseudo-header fields -------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    [(b":method", b"GET"), (b":scheme", b"http"), (b"x-a", b"1"), (b":path", b"/")],  # after regular
    REQUEST + [(b":unknown", b"1")],                                                 # unknown
    [(b":status", b"200")] + REQUEST,                                                # response's
    REQUEST + [(b":path", b"/again")],                                                # twice
    REQUEST[1:],                                                                     # no :method
    [REQUEST[0]] + REQUEST[2:],                                                      # no :scheme
    REQUEST[:2] + REQUEST[3:],                                                       # no :path
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"")],                  # empty :path
    [(b":method", b"CONNECT"), (b":scheme", b"http"), (b":authority", b"a:1")],      # CONNECT + scheme
    [(b":method", b"CONNECT")],                                                      # CONNECT alone
])
def test_8_3_1_malformed_request_pseudo_fields_are_a_stream_error(headers: list) -> None:
    peer = Peer()
    assert_stream_error(peer, peer.request(headers), 1, E.PROTOCOL_ERROR)


def test_8_3_1_connect_with_only_authority_is_accepted() -> None:
    peer = Peer()
    events = peer.request([(b":method", b"CONNECT"), (b":authority", b"example:443")], end_stream=False)
    assert kinds(events) == [RequestReceived]


@pytest.mark.parametrize("headers", [
    [(b"content-type", b"text/plain")],                     # no :status
    [(b":status", b"200"), (b":path", b"/")],                # a request's
    [(b":status", b"20")],                                  # not three digits
    [(b":status", b"200"), (b":status", b"204")],           # twice
])
def test_8_3_2_malformed_response_pseudo_fields_are_a_stream_error(headers: list) -> None:
    peer = Peer(ours="client")
    peer.conn.send_headers(1, REQUEST, end_stream=True)
    events = peer.send(Frame(FrameType.HEADERS, 1, Flag.END_HEADERS, peer.block(headers)))
    assert_stream_error(peer, events, 1, E.PROTOCOL_ERROR)


# -- 8.4 server push ----------------------------------------------------------------------------

def test_8_4_push_promise_from_a_client_is_a_connection_error() -> None:
    peer = Peer()
    peer.request(end_stream=False)
    events = peer.send(Frame(FrameType.PUSH_PROMISE, 1, Flag.END_HEADERS, peer.block(REQUEST),
                             promised_stream_id=2))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)


def test_8_4_push_promise_after_enable_push_0_is_a_connection_error() -> None:
    peer = Peer(ours="client")
    peer.conn.send_headers(1, REQUEST, end_stream=True)
    events = peer.send(Frame(FrameType.PUSH_PROMISE, 1, Flag.END_HEADERS, peer.block(REQUEST),
                             promised_stream_id=2))
    assert_connection_error(peer, events, E.PROTOCOL_ERROR)
