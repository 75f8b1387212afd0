"""fastnet.h2.H2Connection against the h2 package (python-hyper), in
memory: an h2 client against our server connection and our client against
an h2 server connection, bodies larger than every window (so the flow
control of both sides must agree), trailers, pings, GOAWAY."""
from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnet.h2 import H2Connection
from fastnet.h2.events import (ConnectionTerminated, DataReceived, PingAcked, RequestReceived,
                               ResponseReceived, StreamEnded, TrailersReceived)


def _pump(ours: H2Connection, theirs: h2.connection.H2Connection) -> tuple[list, list]:
    """Exchange bytes until both sides are quiet; our events, theirs."""
    our_events: list = []
    their_events: list = []
    for _ in range(1000):
        to_them = ours.data_to_send()
        if to_them:
            their_events += theirs.receive_data(to_them)
        to_us = theirs.data_to_send()
        if to_us:
            our_events += ours.receive(to_us)
        if not to_them and not to_us:
            return our_events, their_events
    raise AssertionError("the connections never went quiet")


def _their_client() -> h2.connection.H2Connection:
    theirs = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    theirs.initiate_connection()
    return theirs


def _their_server() -> h2.connection.H2Connection:
    theirs = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    theirs.initiate_connection()
    return theirs


def _request(path: str = "/", method: str = "GET") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", "example")]


def test_an_h2_client_against_our_server_with_large_bodies_both_ways() -> None:
    ours = H2Connection(client_side=False)
    ours.initiate()
    theirs = _their_client()
    _pump(ours, theirs)
    body = bytes(range(256)) * 1200  # 300 KiB: past every initial window
    stream_id = theirs.get_next_available_stream_id()
    theirs.send_headers(stream_id, _request("/upload", "POST"))
    sent = 0
    received = bytearray()
    ended = False
    for _ in range(200):
        window = min(theirs.local_flow_control_window(stream_id), theirs.max_outbound_frame_size)
        if sent < len(body) and window:
            chunk = body[sent:sent + window]
            sent += len(chunk)
            theirs.send_data(stream_id, chunk, end_stream=sent == len(body))
        events, _ = _pump(ours, theirs)
        for event in events:
            if isinstance(event, DataReceived):
                received += event.data
                ours.acknowledge(event.stream_id, event.flow_controlled_length)
            elif isinstance(event, StreamEnded):
                ended = True
        if ended:
            break
    assert ended and bytes(received) == body
    # The answer, as large, flow-controlled by their window.
    ours.send_headers(stream_id, [(b":status", b"200")])
    got = bytearray()
    answered = 0
    their_end = False
    for _ in range(200):
        if answered < len(body):
            answered += ours.send_data(stream_id, memoryview(body)[answered:], end_stream=True)
        _, their_events = _pump(ours, theirs)
        for event in their_events:
            if isinstance(event, h2.events.DataReceived):
                got += event.data
                theirs.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                their_end = True
        _pump(ours, theirs)
        if their_end:
            break
    assert their_end and bytes(got) == body


def test_our_client_against_an_h2_server_with_trailers_and_ping() -> None:
    ours = H2Connection(client_side=True)
    ours.initiate()
    theirs = _their_server()
    _pump(ours, theirs)
    ours.send_headers(1, _request("/rpc", "POST") + [("te", "trailers")])
    assert ours.send_data(1, b"request body", end_stream=True) == 12
    _, their_events = _pump(ours, theirs)
    received = [e for e in their_events if isinstance(e, h2.events.RequestReceived)]
    assert received and dict(received[0].headers)[b":path"] == b"/rpc"
    assert any(isinstance(e, h2.events.StreamEnded) for e in their_events)
    theirs.send_headers(1, [(":status", "200"), ("content-type", "application/grpc")])
    theirs.send_data(1, b"answer")
    theirs.send_headers(1, [("grpc-status", "0")], end_stream=True)
    data = ours.ping()
    events, _ = _pump(ours, theirs)
    assert [type(e) for e in events if not isinstance(e, PingAcked)] == [
        ResponseReceived, DataReceived, TrailersReceived, StreamEnded]
    assert events[0].headers[0] == (b":status", b"200")
    assert [e.data for e in events if isinstance(e, PingAcked)] == [data]
    assert [e.headers for e in events if isinstance(e, TrailersReceived)] == [[(b"grpc-status", b"0")]]


def test_many_concurrent_streams_and_their_goaway() -> None:
    ours = H2Connection(client_side=False)
    ours.initiate()
    theirs = _their_client()
    _pump(ours, theirs)
    for i in range(20):
        theirs.send_headers(theirs.get_next_available_stream_id(), _request(f"/{i}"), end_stream=True)
    events, _ = _pump(ours, theirs)
    requests = [e for e in events if isinstance(e, RequestReceived)]
    assert [dict(e.headers)[b":path"] for e in requests] == [f"/{i}".encode() for i in range(20)]
    for event in reversed(requests):  # answered out of order
        ours.send_headers(event.stream_id, [(b":status", b"204")], end_stream=True)
    ours.close()
    _, their_events = _pump(ours, theirs)
    ended = [e.stream_id for e in their_events if isinstance(e, h2.events.StreamEnded)]
    assert sorted(ended) == [e.stream_id for e in requests]
    goaway = [e for e in their_events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway and goaway[0].last_stream_id == requests[-1].stream_id and goaway[0].error_code == 0


def test_h2s_goaway_reaches_our_client() -> None:
    ours = H2Connection(client_side=True)
    ours.initiate()
    theirs = _their_server()
    _pump(ours, theirs)
    theirs.close_connection(error_code=0xB, additional_data=b"calm")
    events, _ = _pump(ours, theirs)
    terminated = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert terminated and terminated[0].error_code == 0xB and terminated[0].additional_data == b"calm"


_FIELD_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
_FIELD_VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(_FIELD_NAME, _FIELD_VALUE), max_size=8), min_size=1, max_size=6),
       st.data())
def test_random_header_lists_arrive_as_sent_both_ways(lists: list, data: st.DataObject) -> None:
    # h2 client -> our server, our server's answer -> h2, through both
    # HPACK dynamic tables across several requests, bytes split anywhere.
    ours = H2Connection(client_side=False)
    ours.initiate()
    theirs = _their_client()
    _pump(ours, theirs)
    lists = [[(n, v) for n, v in fields if n not in ("te", "connection", "keep-alive",
                                                    "proxy-connection", "transfer-encoding",
                                                    "upgrade", "content-length", "host")]
             for fields in lists]
    for fields in lists:
        stream_id = theirs.get_next_available_stream_id()
        theirs.send_headers(stream_id, _request() + fields, end_stream=True)
        wire = theirs.data_to_send()
        cut = data.draw(st.integers(0, len(wire)))
        events = ours.receive(wire[:cut]) + ours.receive(wire[cut:])
        request = [e for e in events if isinstance(e, RequestReceived)]
        assert len(request) == 1, events
        assert request[0].headers[4:] == [(n.encode(), v.encode()) for n, v in fields]
        ours.send_headers(stream_id, [(b":status", b"200")] + [(n.encode(), v.encode()) for n, v in fields],
                          end_stream=True)
        their_events = theirs.receive_data(ours.data_to_send())
        response = [e for e in their_events if isinstance(e, h2.events.ResponseReceived)]
        assert response[0].headers[1:] == [(n.encode(), v.encode()) for n, v in fields]


@pytest.mark.parametrize("split", [1, 7, 100])
def test_our_server_reads_h2s_bytes_split_anywhere(split: int) -> None:
    ours = H2Connection(client_side=False)
    ours.initiate()
    theirs = _their_client()
    stream_id = theirs.get_next_available_stream_id()
    theirs.send_headers(stream_id, _request("/a", "POST"))
    theirs.send_data(stream_id, b"x" * 1000, end_stream=True)
    wire = theirs.data_to_send()
    events: list = []
    for at in range(0, len(wire), split):
        events += ours.receive(wire[at:at + split])
    assert b"".join(e.data for e in events if isinstance(e, DataReceived)) == b"x" * 1000
    assert isinstance(events[-1], StreamEnded)
