"""The quick way of the stream API (serve_streams(handler, on_complete)):
a request complete in one read answered inside that read, in one encode,
with cached header blocks; and what takes the stream path instead. The
h2 package is the client; python-hyper's hpack decodes the cached blocks."""
from __future__ import annotations

import socket
import threading

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest

from fastnet.codec.h2frame import Flag, Frame, FrameType, Setting, encode
from fastnet.codec.hpack import Encoder
from fastnet.errors import H2ErrorCode as E
from fastnet.h2 import H2Connection, H2Server, serve_streams
from fastnet.h2.connection import StreamState
from fastnet.h2.events import DataReceived, RequestComplete, RequestReceived, StreamEnded

from h2_helpers import REQUEST, Peer, h2_until, reader_impl  # noqa: F401 (a fixture)
from helpers import AVAILABLE_ENGINES, GUARD, require_engine, running_server, serving

ENGINES = AVAILABLE_ENGINES
HEAD = ((b":status", b"200"), (b"content-type", b"application/grpc"))
OK = ((b"grpc-status", b"0"),)


def _client(port: int, window: int = 0) -> tuple[socket.socket, h2.connection.H2Connection]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    if window:
        conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def _until(sock: socket.socket, conn: h2.connection.H2Connection, done) -> list:
    return h2_until(sock, conn, done, GUARD)


def _ends(n: int):
    return lambda events: len([e for e in events if isinstance(
        e, (h2.events.StreamEnded, h2.events.StreamReset))]) >= n


def _request(path: str, method: str = "POST") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", "x")]


def _answers(events: list) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for event in events:
        entry = out.setdefault(getattr(event, "stream_id", 0), {"body": b""})
        if isinstance(event, h2.events.ResponseReceived):
            entry["headers"] = event.headers
        elif isinstance(event, h2.events.DataReceived):
            entry["body"] += event.data
        elif isinstance(event, h2.events.TrailersReceived):
            entry["trailers"] = event.headers
        elif isinstance(event, h2.events.StreamReset):
            entry["reset"] = event.error_code
    return out


class _Recorder:
    """A quick answer for /echo and /empty, None (the stream path) for
    anything else, an exception for /boom; and the stream handler."""

    def __init__(self) -> None:
        self.quick: list[tuple[int, str, bytes]] = []
        self.streamed: list[tuple[str, bytes]] = []
        self.thread: list[threading.Thread] = []

    def on_complete(self, stream_id, headers, body, peer):
        path = dict(headers)[b":path"].decode()
        self.quick.append((stream_id, path, body))
        assert peer[0] == "127.0.0.1"
        if path == "/echo":
            return HEAD, b"echo:" + body, OK
        if path == "/empty":
            return ((b":status", b"204"),), b"", None
        if path == "/body-only":
            return ((b":status", b"200"),), body * 3, None
        if path == "/boom":
            raise RuntimeError("on_complete failed on purpose")
        return None

    async def handler(self, stream):
        if stream.path == "/late":
            stream.send_headers([(b":status", b"200")])  # before the body: the client waits for it
            body = await stream.read_all(1 << 20)
        else:
            body = await stream.read_all(1 << 20)
            stream.send_headers([(b":status", b"201")])
        self.streamed.append((stream.path, body))
        await stream.send_data(b"streamed:" + body)
        stream.send_trailers([(b"x-path", stream.path.encode())])


@pytest.mark.parametrize("engine", ENGINES)
def test_complete_requests_are_answered_by_on_complete_and_none_takes_the_stream_path(engine: str) -> None:
    rec = _Recorder()
    with running_server(engine, "h2", serve_streams(rec.handler, rec.on_complete)) as (_, port):
        sock, conn = _client(port)
        plan = {"/echo": b"x" * 3000, "/empty": b"", "/body-only": b"abc", "/stream": b"for you"}
        ids = {}
        for path, body in plan.items():
            stream_id = conn.get_next_available_stream_id()
            ids[path] = stream_id
            conn.send_headers(stream_id, _request(path), end_stream=not body)
            if body:
                conn.send_data(stream_id, body, end_stream=True)
        sock.sendall(conn.data_to_send())  # one write: the server reads it whole or in pieces
        got = _answers(_until(sock, conn, _ends(len(plan))))
        sock.close()
    # Each request is offered to on_complete once, whole, in the read that
    # completes it; one a read happened to split takes the stream path.
    offered = {path for _, path, _ in rec.quick}
    assert all(body == plan[path] for _, path, body in rec.quick)
    assert sorted(p for p, _ in rec.streamed) == sorted({"/stream"} | (set(plan) - offered))
    assert "/stream" in offered and dict(rec.streamed)["/stream"] == b"for you"
    quick = {"/echo": (list(HEAD), b"echo:" + plan["/echo"], list(OK)),
             "/empty": ([(b":status", b"204")], b"", None),
             "/body-only": ([(b":status", b"200")], b"abcabcabc", None)}
    for path, stream_id in ids.items():
        answer = got[stream_id]
        if path in quick and path in offered:
            assert (answer["headers"], answer["body"], answer.get("trailers")) == quick[path]
        else:
            assert answer["headers"] == [(b":status", b"201")]
            assert answer["body"] == b"streamed:" + plan[path]
            assert answer["trailers"] == [(b"x-path", path.encode())]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_request_whose_end_comes_in_a_later_read_takes_the_stream_path(engine: str) -> None:
    rec = _Recorder()
    with running_server(engine, "h2", serve_streams(rec.handler, rec.on_complete)) as (_, port):
        sock, conn = _client(port)
        conn.send_headers(1, _request("/late"))
        sock.sendall(conn.data_to_send())
        # The handler answers before reading: the server has the stream open.
        _until(sock, conn, lambda events: any(isinstance(e, h2.events.ResponseReceived)
                                              for e in events))
        conn.send_data(1, b"second read", end_stream=True)
        sock.sendall(conn.data_to_send())
        got = _answers(_until(sock, conn, _ends(1)))
        sock.close()
    assert got[1]["body"] == b"streamed:second read"
    assert rec.quick == [] and rec.streamed == [("/late", b"second read")]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_on_complete_failure_resets_only_its_stream(engine: str) -> None:
    rec = _Recorder()
    with running_server(engine, "h2", serve_streams(rec.handler, rec.on_complete)) as (_, port):
        sock, conn = _client(port)
        conn.send_headers(1, _request("/boom"), end_stream=True)
        sock.sendall(conn.data_to_send())
        got = _answers(_until(sock, conn, _ends(1)))
        assert got[1]["reset"] == E.INTERNAL_ERROR
        conn.send_headers(3, _request("/echo"))
        conn.send_data(3, b"after", end_stream=True)
        sock.sendall(conn.data_to_send())
        got = _answers(_until(sock, conn, _ends(1)))
        sock.close()
    assert got[3]["body"] == b"echo:after" and got[3]["trailers"] == list(OK)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_reply_past_the_clients_window_goes_out_as_the_window_opens(engine: str) -> None:
    rec = _Recorder()
    require_engine(engine)
    server = H2Server(engine=engine)
    listener = server.listen("127.0.0.1", 0, protocol="h2",
                             handler=serve_streams(rec.handler, rec.on_complete))
    with serving(server):
        sock, conn = _client(listener.port, window=1000)
        body = bytes(range(256)) * 40  # 10240 bytes; echoed 3x past a 1000-byte window
        conn.send_headers(1, _request("/body-only"))
        conn.send_data(1, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        got = _answers(_until(sock, conn, _ends(1)))
        sock.close()
    assert got[1]["headers"] == [(b":status", b"200")] and got[1]["body"] == body * 3


def test_send_response_reuses_cached_blocks_and_drops_them_when_the_table_changes() -> None:
    # Our server connection against a raw peer; hpack (python-hyper) decodes.
    peer = Peer("server")
    decoder = hpack.Decoder()
    custom = ((b":status", b"200"), (b"x-changes", b"value-%d"))
    sizes: list[tuple[int, ...]] = []
    for round_ in range(6):
        stream_id = peer.next_stream
        peer.request(REQUEST)
        if round_ == 3:
            fields = (custom[0], (custom[1][0], custom[1][1] % round_))
            assert peer.conn.send_response(stream_id, fields, b"", None)
            expect = [[*fields]]
        else:
            assert peer.conn.send_response(stream_id, HEAD, b"payload", OK)
            expect = [list(HEAD), list(OK)]
        frames = peer.read()
        blocks = [f.data for f in frames if f.type == FrameType.HEADERS]
        assert [decoder.decode(b, raw=True) for b in blocks] == expect
        assert [f.data for f in frames if f.type == FrameType.DATA] == (
            [] if round_ == 3 else [b"payload"])
        sizes.append(tuple(len(b) for b in blocks))
    # Literals the first time, then one byte per field; the custom list
    # changed the table, after which each block is encoded (indexed) anew.
    assert sizes[0] > (2, 1) and sizes[1] == sizes[2] == (2, 1)
    assert sizes[4] == sizes[5] == (2, 1)
    assert len(peer.conn._blocks) == 2


def test_send_response_queues_nothing_past_the_windows() -> None:
    peer = Peer("server", peer_settings=((4, 10),))  # SETTINGS_INITIAL_WINDOW_SIZE 10
    peer.request(REQUEST)
    assert not peer.conn.send_response(1, HEAD, b"x" * 11, OK)
    assert peer.read() == []
    assert peer.conn.send_response(1, HEAD, b"x" * 10, OK)
    types = [f.type for f in peer.read()]
    assert types == [FrameType.HEADERS, FrameType.DATA, FrameType.HEADERS]
    with pytest.raises(ValueError):
        peer.conn.send_response(1, HEAD, b"", None)


# -- whole_requests: a request whole in one read as one event --------------------

POST = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/m"), (b":authority", b"x")]
LENGTH_4 = POST + [(b"content-length", b"4")]


def _reads(enc: Encoder) -> list[list[bytes]]:
    """Reads of a client, each a list of frames: whole requests and every
    way a request can fail to be one (the connection must then read it
    frame by frame)."""
    def h(sid: int, fields: list, end: bool = False) -> bytes:
        return encode(Frame(FrameType.HEADERS, sid, Flag.END_HEADERS | (Flag.END_STREAM if end else 0),
                            enc.encode(fields)))

    def d(sid: int, data: bytes, end: bool = True, pad: int = 0) -> bytes:
        flags = (Flag.END_STREAM if end else 0) | (Flag.PADDED if pad else 0)
        return encode(Frame(FrameType.DATA, sid, flags, data, pad_length=pad))

    rst = encode(Frame(FrameType.RST_STREAM, 15, 0, error_code=E.CANCEL))
    return [
        [h(1, POST), d(1, b"body")],                          # whole
        [h(3, LENGTH_4), d(3, b"four")],                      # whole, content-length matching
        [h(5, LENGTH_4), d(5, b"three")],                     # content-length differs: reset
        [h(7, REQUEST, end=True)],                            # no body: not a RequestComplete
        [h(9, POST), d(9, b"a", end=False)], [d(9, b"b")],    # the end in a later read
        [h(11, POST), d(11, b"a", end=False), d(11, b"b")],   # two DATA frames
        [h(13, POST), d(13, b"pad", pad=20)],                 # padded: flow 24 for 3 bytes
        [h(15, POST), d(15, b"x"), rst],                      # whole, then reset in the same read
        [h(17, POST), d(17, b"x"), h(19, POST), d(19, b"y"), h(21, POST), d(21, b"z")],
        [h(25, POST), d(23, b"x")],                           # DATA for another (idle) stream
    ]


def _expanded(events: list) -> list:
    out: list = []
    for e in events:
        if isinstance(e, RequestComplete):
            out += [RequestReceived(e.stream_id, e.headers, False),
                    DataReceived(e.stream_id, e.data, e.flow_controlled_length, True),
                    StreamEnded(e.stream_id)]
        else:
            out.append(e)
    return out


@pytest.mark.parametrize("concurrency", [100, 2])
def test_whole_requests_leave_the_state_reading_frame_by_frame_leaves(reader_impl: str,
                                                                      concurrency: int) -> None:
    """The same reads to a connection with whole_requests and one without:
    the same events once each RequestComplete is spelled out as the three
    it stands for, the same bytes queued, the same stream states, the same
    answers (answer() against acknowledge() and send_response());
    RequestComplete exactly where a request came whole (and, with
    a concurrency limit of 2, not for a stream that is refused)."""
    settings = {Setting.MAX_CONCURRENT_STREAMS: concurrency}
    whole, plain = Peer("server", settings, whole_requests=True), Peer("server", settings)
    enc = Encoder()
    completes: list[int] = []
    for read in _reads(enc):
        data = b"".join(read)
        got, want = whole.conn.receive(data), plain.conn.receive(data)
        assert _expanded(got) == want
        assert whole.conn.data_to_send() == plain.conn.data_to_send()
        for e in got:
            if isinstance(e, RequestComplete):
                completes.append(e.stream_id)
        for sid in range(1, 27, 2):
            assert whole.conn.stream_state(sid) == plain.conn.stream_state(sid), sid
        # Answer what came whole: answer() on one, acknowledge() and
        # send_response() on the other (stream 15 was reset: nothing to send).
        for e in got:
            if isinstance(e, RequestComplete):
                assert whole.conn.answer(e.stream_id, HEAD, b"ok", OK, e.flow_controlled_length)
                plain.conn.acknowledge(e.stream_id, e.flow_controlled_length)
                if plain.conn.stream_state(e.stream_id) == StreamState.HALF_CLOSED_REMOTE:
                    assert plain.conn.send_response(e.stream_id, HEAD, b"ok", OK)
        whole_ids = {e.stream_id for e in got if isinstance(e, RequestComplete)}
        for e in want:  # and the rest that ended, both alike
            if isinstance(e, StreamEnded) and e.stream_id not in whole_ids \
                    and plain.conn.stream_state(e.stream_id) == StreamState.HALF_CLOSED_REMOTE:
                for peer in (whole, plain):
                    peer.conn.acknowledge(e.stream_id, 4)
                    peer.conn.send_response(e.stream_id, HEAD, b"ok", OK)
        assert whole.conn.data_to_send() == plain.conn.data_to_send()
        for sid in range(1, 27, 2):
            assert whole.conn.stream_state(sid) == plain.conn.stream_state(sid), sid
    expected = [1, 3, 13, 15, 17, 19, 21] if concurrency == 100 else [1, 3, 13, 15, 17, 19]
    assert completes == expected


def _by_stream(events: list) -> dict[int, list]:
    out: dict[int, list] = {}
    for e in events:
        out.setdefault(getattr(e, "stream_id", 0), []).append(e)
    return out


def test_whole_requests_pair_headers_with_their_data_later_in_the_read(reader_impl: str) -> None:
    """nghttp2 (and so h2load) writes several requests as every HEADERS,
    then every DATA: each request is still one RequestComplete, where only
    other streams' HEADERS and DATA lie between its two frames. Any other
    frame between (a PING here), or a DATA of its own without END_STREAM,
    keeps it frame by frame. Per stream, the events are those of a
    connection without whole_requests, in the same order, and every stream
    ends in the same state."""
    whole, plain = Peer("server", whole_requests=True), Peer("server")
    enc = Encoder()

    def h(sid: int) -> bytes:
        return encode(Frame(FrameType.HEADERS, sid, Flag.END_HEADERS, enc.encode(POST)))

    def d(sid: int, data: bytes = b"x", end: bool = True) -> bytes:
        return encode(Frame(FrameType.DATA, sid, Flag.END_STREAM if end else 0, data))

    ping = encode(Frame(FrameType.PING, 0, 0, b"12345678"))
    reads = [
        [h(1), h(3), h(5), d(1), d(3), d(5)],          # h2load -m3: all three whole
        [h(7), h(9), ping, d(7), d(9)],                # a PING between: frame by frame
        [h(11), h(13), d(11, end=False), d(13), d(11)],  # 11 has two DATA frames: 13 only
        [h(15), d(15), h(17), h(19), d(17), d(19)],    # adjacent, then interleaved
    ]
    completes: list[list[int]] = []
    for read in reads:
        data = b"".join(read)
        got, want = whole.conn.receive(data), plain.conn.receive(data)
        assert _by_stream(_expanded(got)) == _by_stream(want)
        completes.append([e.stream_id for e in got if isinstance(e, RequestComplete)])
        for sid in range(1, 21, 2):
            assert whole.conn.stream_state(sid) == plain.conn.stream_state(sid), sid
        for e in got:
            if isinstance(e, RequestComplete):
                assert whole.conn.answer(e.stream_id, HEAD, b"ok", OK, e.flow_controlled_length)
                plain.conn.acknowledge(e.stream_id, e.flow_controlled_length)
                assert plain.conn.send_response(e.stream_id, HEAD, b"ok", OK)
        for sid in range(1, 21, 2):
            assert whole.conn.stream_state(sid) == plain.conn.stream_state(sid), sid
    assert completes == [[1, 3, 5], [], [13], [15, 17, 19]]


def test_whole_requests_are_not_for_clients() -> None:
    with pytest.raises(ValueError):
        H2Connection(True, whole_requests=True)
