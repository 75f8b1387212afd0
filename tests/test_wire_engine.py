"""The wire protocol framed by the C engine itself (csrc/wire.h's
fn_loop_wire, CEngine.serve_wire) against the Python engine, which keeps
the session's own path: the same byte streams, split anywhere, must get the
same bytes back, the connection closing at the same point. Real sockets on
127.0.0.1."""
from __future__ import annotations

import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnet import pack, wire
from fastnet.codec.wire import (ERROR, GOAWAY, HELLO, PING, PONG, REQUEST, RESPONSE, WireDecoder,
                                encode_wire_frame)
from fastnet.wire.server import WireSession
from helpers import GUARD, read_all, require_engine, serving


def req(obj, request_id=0, version=1, flags=0):
    return encode_wire_frame(REQUEST, pack.packb(obj), version=version, flags=flags,
                             request_id=request_id)


def handler(request):
    if request == "boom" or request is True:
        raise ValueError("handler says no")
    if isinstance(request, list) and request[:1] == [None]:
        return {1, 2}  # packs nowhere: an ERROR frame
    if request == "big":
        return "text " * 2000  # over the codec's threshold: compressed when negotiated
    if request == "ext":
        return pack.ExtType(5, b"xyz")  # marshal refuses it: the session frames it
    return request


class _Servers:
    """One wire server per engine for the module, each in its thread."""

    def __init__(self):
        self.ports = {}
        self._stack = []

    def start(self, engine):
        require_engine(engine)
        server = wire.make_server(wire.WireConfig(), engine=engine)
        listener = server.listen("127.0.0.1", 0, protocol="wire", handler=handler)
        ctx = serving(server)
        ctx.__enter__()
        self._stack.append(ctx)
        self.ports[engine] = listener.port


@pytest.fixture(scope="module")
def servers():
    s = _Servers()
    try:
        for engine in ("c", "python"):
            s.start(engine)
        yield s.ports
    finally:
        for ctx in reversed(s._stack):
            ctx.__exit__(None, None, None)


def transcript(port, pieces):
    """Every byte the server sends for pieces sent one by one, then EOF."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(0.001)  # let most pieces be reads of their own (not required)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # EPIPE, ECONNRESET, ENOTCONN
            pass  # the server closed after an ERROR: what it sent is the transcript
        return read_all(sock)


_objects = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.binary(max_size=20)
    | st.sampled_from(["boom", "big", "ext", [None, 1]]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=12)


#: HELLOs that are not well formed, or find no common version: the
#: session answers (or refuses) them, on every engine alike.
BAD_HELLOS = [
    encode_wire_frame(HELLO, pack.packb({"versions": [7, 8]})),
    encode_wire_frame(HELLO, pack.packb({"codecs": ["zstd"]})),
    encode_wire_frame(HELLO, pack.packb({"versions": [True, 2]})),
    encode_wire_frame(HELLO, pack.packb({"versions": "12"})),
    encode_wire_frame(HELLO, pack.packb({"versions": [1], "codecs": "zstd"})),
    encode_wire_frame(HELLO, pack.packb([1, 2])),
    encode_wire_frame(HELLO, b"\x82\xa8versions\x91\x01\xa8versions\x91\x02"),  # a key twice
    encode_wire_frame(HELLO, b"\x81\x01\x91\x01"),  # an int key
    encode_wire_frame(HELLO, b"\xc1"),
]


@st.composite
def streams(draw):
    version = draw(st.sampled_from([1, 2]))
    frames = []
    if version == 2 or draw(st.booleans()):
        codecs = draw(st.sampled_from([[], ["zstd"], ["lz4", "nope", "zstd"], ["zlib"]]))
        offer = draw(st.sampled_from([
            {"versions": [version], "codecs": codecs},
            {"future": {"x": [1.5, None]}, "versions": [3, version, 0], "codecs": codecs},
            {"versions": [version]},
        ]))
        frames.append(encode_wire_frame(HELLO, pack.packb(offer)))
    elif draw(st.integers(0, 3)) == 0:  # a HELLO the engine leaves to the session
        frames.append(draw(st.sampled_from(BAD_HELLOS)))
    # Frames that leave the connection open, then maybe one that closes it.
    kinds = [draw(st.sampled_from(["req"] * 5 + ["ping", "ping", "pong", "goaway", "junk-body",
                                                "codec", "ext-body"]))
             for _ in range(draw(st.integers(1, 16)))]
    kinds.append(draw(st.sampled_from(["none"] * 3 + ["other-version", "hello", "garbage"])))
    for kind in kinds:
        rid = draw(st.integers(0, 2**32 - 1))
        if kind == "req":
            frames.append(req(draw(_objects), rid, version))
        elif kind == "other-version":
            frames.append(req(draw(_objects), rid, 3 - version))
        elif kind == "ping":
            frames.append(encode_wire_frame(PING, draw(st.binary(max_size=8)), version=version,
                                            request_id=rid))
        elif kind == "pong":
            frames.append(encode_wire_frame(PONG, version=version, request_id=rid))
        elif kind == "goaway":
            frames.append(encode_wire_frame(GOAWAY, pack.packb({}), version=version))
        elif kind == "hello":
            frames.append(encode_wire_frame(HELLO, pack.packb({"versions": [1, 2]})))
        elif kind == "junk-body":
            frames.append(encode_wire_frame(REQUEST, draw(st.binary(max_size=12)),
                                            version=version, request_id=rid))
        elif kind == "codec":
            frames.append(req(draw(_objects), rid, version, flags=draw(st.integers(1, 255))))
        elif kind == "ext-body":
            frames.append(req(pack.ExtType(1, b"ab"), rid, version))
        elif kind == "garbage":
            frames.append(draw(st.binary(min_size=1, max_size=16)))
    data = b"".join(frames)
    # Cuts between frames (where the session hands the connection to the
    # engine) and anywhere.
    ends, pos = [], 0
    for frame in frames[:-1]:
        pos += len(frame)
        ends.append(pos)
    cuts = [end for end in ends if draw(st.booleans())]
    cuts += draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=4))
    cuts = sorted(set(cut for cut in cuts if 0 < cut < len(data)))
    bounds = [0, *cuts, len(data)]
    return [data[lo:hi] for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(streams())
def test_the_c_engine_answers_every_stream_as_the_python_engine(servers, pieces):
    assert transcript(servers["c"], pieces) == transcript(servers["python"], pieces)


@pytest.mark.parametrize("version", [1, 2])
def test_hello_requests_and_pings_never_reach_the_session(monkeypatch, version):
    """The C engine negotiates (a HELLO, or a v1 REQUEST without one),
    decodes and frames the requests and answers PINGs itself: the
    session's feed sees none of them."""
    require_engine("c")
    fed = []
    feed = WireSession.feed

    def counting_feed(self, data):
        fed.append(bytes(data))
        return feed(self, data)

    monkeypatch.setattr(WireSession, "feed", counting_feed)
    server = wire.make_server(wire.WireConfig(), engine="c")
    port = server.listen("127.0.0.1", 0, protocol="wire", handler=handler).port
    with serving(server):
        s = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        d = WireDecoder()
        if version == 2:
            s.sendall(encode_wire_frame(HELLO, pack.packb({"versions": [2]})))
            assert next_frame(s, d).type == HELLO
        for i in range(20):
            s.sendall(req({"n": i}, i, version))
            frame = next_frame(s, d)
            assert (frame.version, frame.type, frame.request_id) == (version, RESPONSE, i)
            assert pack.unpackb(frame.body) == {"n": i}
        s.sendall(encode_wire_frame(PING, b"probe", version=version, request_id=9))
        assert next_frame(s, d)[:4] == (version, PONG, 0, 9)
        s.sendall(req("boom", 21, version))
        frame = next_frame(s, d)
        assert frame.type == ERROR and pack.unpackb(frame.body)["type"] == "ValueError"
        s.close()
    assert fed == []


def test_many_connections_in_one_poll_each_get_their_replies():
    """Requests of many connections cross in one batch; each connection gets
    its own replies, in order, with its own ids."""
    require_engine("c")
    server = wire.make_server(wire.WireConfig(), engine="c")
    port = server.listen("127.0.0.1", 0, protocol="wire", handler=handler).port
    n = 20
    with serving(server):
        socks = []
        for k in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
            s.sendall(req(("first", k), 1))
            socks.append(s)
        decoders = [WireDecoder() for _ in socks]
        for s, d in zip(socks, decoders):
            frame = next_frame(s, d)
            assert frame.type == RESPONSE and frame.request_id == 1
        # now every connection is framed in C: send all, then read all
        for k, s in enumerate(socks):
            s.sendall(b"".join(req([k, i], 100 + i) for i in range(5)))
        for k, (s, d) in enumerate(zip(socks, decoders)):
            for i in range(5):
                frame = next_frame(s, d)
                assert (frame.type, frame.request_id) == (RESPONSE, 100 + i)
                assert pack.unpackb(frame.body) == [k, i]
            s.close()


def test_drain_takes_the_connection_back_from_the_engine():
    """A drain ends the engine's framing: after GOAWAY no request is answered
    with a RESPONSE (it gets SHUTTING_DOWN, or finds the connection closed)."""
    require_engine("c")
    entered, leave = threading.Event(), threading.Event()

    def slow(request):
        if request == "slow":
            entered.set()
            leave.wait(GUARD)
        return request

    server = wire.make_server(wire.WireConfig(), engine="c")
    port = server.listen("127.0.0.1", 0, protocol="wire", handler=slow).port
    with serving(server):
        s = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        d = WireDecoder()
        s.sendall(req(1, 1))
        assert next_frame(s, d).type == RESPONSE  # the session's: the version is decided
        s.sendall(req("slow", 2))  # taken by the engine
        assert entered.wait(GUARD)
        stopper = threading.Thread(target=server.shutdown, kwargs={"timeout": GUARD})
        stopper.start()
        leave.set()
        types = []
        while (frame := read_frame(s, d)) is not None and frame.type != GOAWAY:
            types.append(frame.type)
        assert types == [RESPONSE] and frame is not None
        try:
            s.sendall(req(3, 3))
        except (BrokenPipeError, ConnectionResetError):
            pass
        after = []
        while (frame := read_frame(s, d)) is not None:
            after.append((frame.type, pack.unpackb(frame.body)))
        assert all(t == ERROR and body["code"] == wire.ErrorCode.SHUTTING_DOWN
                   for t, body in after), after
        stopper.join(GUARD)
        s.close()


def next_frame(sock, decoder):
    frame = read_frame(sock, decoder)
    assert frame is not None, "the server closed"
    return frame


def read_frame(sock, decoder):
    """The next frame, or None once the server closed."""
    while (frame := decoder.next_frame()) is None:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return None
        if not data:
            return None
        decoder.feed(data)
    return frame


def test_results_the_engine_cannot_frame_are_framed_by_the_session(servers):
    """A body over the codec's threshold (compressed), a result marshal
    refuses (an ext), a handler's exception: the poll's replies come from
    the sessions, in order, as on the Python engine."""
    hello = encode_wire_frame(HELLO, pack.packb({"versions": [2], "codecs": ["zstd"]}),
                              version=2)
    rest = b"".join(req(obj, i, 2) for i, obj in enumerate(["big", 1, "ext", "boom", 2]))

    def replies(port):
        # the requests leave once the HELLO is answered: the engine has them
        s = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        with s:
            d = WireDecoder()
            s.sendall(hello)
            assert next_frame(s, d).type == HELLO
            s.sendall(rest)
            s.shutdown(socket.SHUT_WR)
            d.feed(read_all(s))
            frames = []
            while (frame := d.next_frame()) is not None:
                frames.append(frame)
            return frames

    frames = replies(servers["c"])
    assert frames == replies(servers["python"])
    assert [(f.type, f.request_id) for f in frames] == [
        (RESPONSE, 0), (RESPONSE, 1), (RESPONSE, 2), (ERROR, 3), (RESPONSE, 4)]
    assert frames[0].flags & 7  # compressed
    assert pack.unpackb(frames[2].body) == pack.ExtType(5, b"xyz")


def test_a_poll_of_one_handlers_requests_is_answered_in_one_round(monkeypatch):
    """Every wire connection with the same handler: a poll of their
    requests only is answered by CEngine._wire_round (map over the poll's
    requests); an exception in the middle of a read's requests gets its
    ERROR, the others their RESPONSEs, in order, on every connection."""
    require_engine("c")
    from fastnet.engine.cengine import CEngine
    rounds = []
    wire_round = CEngine._wire_round

    def counting(self, call, r):
        rounds.append(call)
        return wire_round(self, call, r)

    monkeypatch.setattr(CEngine, "_wire_round", counting)
    server = wire.make_server(wire.WireConfig(), engine="c")
    port = server.listen("127.0.0.1", 0, protocol="wire", handler=handler).port
    with serving(server):
        socks = [socket.create_connection(("127.0.0.1", port), timeout=GUARD) for _ in range(4)]
        decoders = [WireDecoder() for _ in socks]
        for s, d in zip(socks, decoders):
            s.sendall(req("first", 1))  # the session's: then the engine's
            assert next_frame(s, d).type == RESPONSE
        for k, s in enumerate(socks):
            s.sendall(b"".join(req(obj, 10 + i) for i, obj in enumerate([k, "boom", [k], "boom"])))
        for k, (s, d) in enumerate(zip(socks, decoders)):
            frames = [next_frame(s, d) for _ in range(4)]
            assert [(f.type, f.request_id) for f in frames] == [
                (RESPONSE, 10), (ERROR, 11), (RESPONSE, 12), (ERROR, 13)]
            assert pack.unpackb(frames[0].body) == k and pack.unpackb(frames[2].body) == [k]
            assert pack.unpackb(frames[1].body)["type"] == "ValueError"
        # results marshal refuses (an ext) or C will not frame (a set), no exception
        for k, s in enumerate(socks):
            s.sendall(b"".join(req(obj, 20 + i) for i, obj in enumerate([k, "ext", [None, k]])))
        for k, (s, d) in enumerate(zip(socks, decoders)):
            frames = [next_frame(s, d) for _ in range(3)]
            assert [(f.type, f.request_id) for f in frames] == [
                (RESPONSE, 20), (RESPONSE, 21), (ERROR, 22)]
            assert pack.unpackb(frames[1].body) == pack.ExtType(5, b"xyz")
            s.close()
    assert rounds and all(call is handler for call in rounds)


def test_connections_with_different_handlers_in_one_poll_get_their_own_answers():
    """Two listeners of one server with different handlers: their
    connections' requests share polls, and each is answered by its own
    handler, while both kinds are open and after one kind has gone."""
    require_engine("c")

    class Tagging:  # a callable that is not hashable (it defines __eq__)
        def __init__(self, tag):
            self.tag = tag

        def __eq__(self, other):
            return isinstance(other, Tagging) and other.tag == self.tag

        def __call__(self, request):
            return [self.tag, request]

    tag_a, tag_b = Tagging("a"), Tagging("b")

    server = wire.make_server(wire.WireConfig(), engine="c")
    port_a = server.listen("127.0.0.1", 0, protocol="wire", handler=tag_a).port
    port_b = server.listen("127.0.0.1", 0, protocol="wire", handler=tag_b).port
    with serving(server):
        socks = [(tag, socket.create_connection(("127.0.0.1", port), timeout=GUARD), WireDecoder())
                 for tag, port in [("a", port_a), ("b", port_b)] * 5]
        for tag, s, d in socks:
            s.sendall(req(0, 1))
            assert pack.unpackb(next_frame(s, d).body) == [tag, 0]
        for rnd in range(3):
            for k, (tag, s, d) in enumerate(socks):
                s.sendall(b"".join(req([rnd, k, i], i) for i in range(3)))
            for k, (tag, s, d) in enumerate(socks):
                for i in range(3):
                    frame = next_frame(s, d)
                    assert frame.request_id == i
                    assert pack.unpackb(frame.body) == [tag, [rnd, k, i]]
            if rnd == 1:  # only a's connections are left for the last round
                for tag, s, d in socks:
                    if tag == "b":
                        s.close()
                socks = [sock for sock in socks if sock[0] == "a"]
        for _, s, _ in socks:
            s.close()
