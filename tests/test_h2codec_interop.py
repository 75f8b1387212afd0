"""The two codecs together against the ``h2`` package (python-hyper's HTTP/2
state machine) as the peer in memory: what an h2 client writes, our frame
decoder and HPACK decoder read; what our encoders write, an h2 server
accepts. Runs on every twin pair."""
from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import pytest

from fastnet.codec import h2frame, hpack
from fastnet.codec.h2frame import Flag, Frame, FrameType

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REQUEST = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/svc/Method"),
           (b":authority", b"localhost"), (b"content-type", b"application/grpc"), (b"te", b"trailers")]


@pytest.fixture(params=[(f, h) for f in sorted(h2frame.impls) for h in sorted(hpack.impls)],
                ids=lambda p: f"frames-{p[0]}-hpack-{p[1]}")
def twins(request):
    f, h = request.param
    return h2frame.impls[f], hpack.impls[h]


def test_h2_client_requests_read_by_our_decoders(twins):
    fr, hp = twins
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    for stream_id in (1, 3, 5):
        client.send_headers(stream_id, REQUEST + [(b"x-n", str(stream_id).encode())])
        client.send_data(stream_id, b"body-%d" % stream_id, end_stream=True)
    wire = client.data_to_send()
    assert wire.startswith(PREFACE)
    frames = fr.FrameDecoder().receive(wire[len(PREFACE):])
    decoder = hp.Decoder()
    seen = {}
    for frame in frames:
        if frame.type == FrameType.HEADERS:
            assert frame.flags & Flag.END_HEADERS
            seen[frame.stream_id] = [decoder.decode(frame.data)]
        elif frame.type == FrameType.DATA:
            seen[frame.stream_id].append(frame.data)
    assert frames[0].type == FrameType.SETTINGS
    assert seen == {n: [REQUEST + [(b"x-n", str(n).encode())], b"body-%d" % n] for n in (1, 3, 5)}


def test_our_encoders_accepted_by_an_h2_server(twins):
    fr, hp = twins
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    encoder = hp.Encoder()
    wire = PREFACE + fr.encode(Frame(FrameType.SETTINGS))
    for stream_id in (1, 3):
        block = encoder.encode(REQUEST + [hpack.NeverIndexed(b"authorization", b"Bearer t")])
        # split the block over HEADERS and a CONTINUATION, the DATA padded
        wire += fr.encode(Frame(FrameType.HEADERS, stream_id, 0, block[:5]))
        wire += fr.encode(Frame(FrameType.CONTINUATION, stream_id, Flag.END_HEADERS, block[5:]))
        wire += fr.encode(Frame(FrameType.DATA, stream_id, Flag.END_STREAM | Flag.PADDED, b"hi", pad_length=7))
    wire += fr.encode(Frame(FrameType.PING, 0, 0, b"12345678"))
    events = server.receive_data(wire)
    requests = [e for e in events if isinstance(e, h2.events.RequestReceived)]
    assert [r.stream_id for r in requests] == [1, 3]
    for r in requests:
        assert [tuple(h) for h in r.headers] == REQUEST + [(b"authorization", b"Bearer t")]
    assert [e.data for e in events if isinstance(e, h2.events.DataReceived)] == [b"hi", b"hi"]
    assert any(isinstance(e, h2.events.PingReceived) for e in events)
    # the server's answer (its SETTINGS, the ACKs, the PING ACK) reads back as frames
    answer = fr.FrameDecoder().receive(server.data_to_send())
    assert {(f.type, f.flags & Flag.ACK) for f in answer} >= {(FrameType.SETTINGS, 0), (FrameType.SETTINGS, 1),
                                                               (FrameType.PING, 1)}
