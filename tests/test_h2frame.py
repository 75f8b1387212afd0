"""HTTP/2 frames (RFC 9113 sections 4 and 6): each frame-level MUST by its
section with its exact error code, hyperframe (python-hyper's parser) as the
oracle both ways, random split points. Only the Python twin exists so far:
the tests run on every twin in fastnet.codec.h2frame.impls."""
from __future__ import annotations

import hyperframe.frame as hf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnet.codec import h2frame
from fastnet.codec.h2frame import Flag, Frame, FrameType
from fastnet.errors import H2ErrorCode, H2FrameError, ProtocolError

twin_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@pytest.fixture(params=sorted(h2frame.impls))
def fr(request):
    return h2frame.impls[request.param]


def raw(kind: int, flags: int, stream_id: int, payload: bytes = b"", length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    return n.to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big") + payload


def connection_error(fr, data: bytes, code: H2ErrorCode, decoder=None) -> H2FrameError:
    decoder = decoder or fr.FrameDecoder()
    with pytest.raises(H2FrameError) as info:
        decoder.receive(data)
    assert info.value.error_code == code
    assert isinstance(info.value, ProtocolError) and isinstance(info.value, ValueError)
    with pytest.raises(H2FrameError):  # sticky
        decoder.receive(raw(FrameType.PING, 0, 0, bytes(8)))
    return info.value


# ---- section 4 ---------------------------------------------------------------

def test_4_2_frame_over_max_frame_size_refused_before_buffering(fr):
    d = fr.FrameDecoder()
    # only the 9-byte header arrives: the error comes before any payload
    err = connection_error(fr, raw(FrameType.DATA, 0, 1, length=2**14 + 1), H2ErrorCode.FRAME_SIZE_ERROR, d)
    assert err.section == "4.2"


def test_4_2_max_frame_size_is_settable(fr):
    d = fr.FrameDecoder(max_frame_size=2**20)
    frame = raw(FrameType.DATA, 0, 1, b"x" * (2**14 + 1))
    assert d.receive(frame)[0].data == b"x" * (2**14 + 1)
    with pytest.raises(ValueError):
        d.max_frame_size = 2**14 - 1


def test_4_1_reserved_bit_of_stream_id_ignored(fr):
    (frame,) = fr.FrameDecoder().receive(raw(FrameType.DATA, 0, 2**31 | 3, b"a"))
    assert frame.stream_id == 3


def test_4_1_unknown_flags_ignored_and_kept(fr):
    (frame,) = fr.FrameDecoder().receive(raw(FrameType.PING, 0xF0, 0, bytes(8)))
    assert frame.flags == 0xF0


def test_5_5_unknown_frame_type_returned_to_be_ignored(fr):
    frames = fr.FrameDecoder().receive(raw(0xFA, 0x3, 7, b"zz") + raw(FrameType.PING, 0, 0, bytes(8)))
    assert (frames[0].type, frames[0].data) == (0xFA, b"zz") and frames[1].type == FrameType.PING


# ---- section 6, frame by frame ---------------------------------------------

STREAM_ZERO = [FrameType.DATA, FrameType.HEADERS, FrameType.PRIORITY, FrameType.RST_STREAM,
               FrameType.PUSH_PROMISE, FrameType.CONTINUATION]
STREAM_NONZERO = [FrameType.SETTINGS, FrameType.PING, FrameType.GOAWAY]


@pytest.mark.parametrize("kind", STREAM_ZERO, ids=lambda k: k.name)
def test_6_frame_on_stream_0_is_protocol_error(fr, kind):
    payload = {FrameType.PRIORITY: bytes(5), FrameType.RST_STREAM: bytes(4), FrameType.PUSH_PROMISE: bytes(4)}
    connection_error(fr, raw(kind, Flag.END_HEADERS, 0, payload.get(kind, b"")), H2ErrorCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("kind", STREAM_NONZERO, ids=lambda k: k.name)
def test_6_connection_frame_on_a_stream_is_protocol_error(fr, kind):
    payload = {FrameType.PING: bytes(8), FrameType.GOAWAY: bytes(8)}
    connection_error(fr, raw(kind, 0, 1, payload.get(kind, b"")), H2ErrorCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("kind", [FrameType.DATA, FrameType.HEADERS, FrameType.PUSH_PROMISE], ids=lambda k: k.name)
def test_6_1_padding_as_long_as_payload_is_protocol_error(fr, kind):
    connection_error(fr, raw(kind, Flag.PADDED | Flag.END_HEADERS, 1, b"\x05abcd"), H2ErrorCode.PROTOCOL_ERROR)


def test_6_1_padding_of_all_but_the_pad_length_is_allowed(fr):
    (frame,) = fr.FrameDecoder().receive(raw(FrameType.DATA, Flag.PADDED, 1, b"\x04abcd"))
    assert (frame.data, frame.pad_length) == (b"", 4)


def test_6_1_padded_frame_without_pad_length_is_frame_size_error(fr):
    connection_error(fr, raw(FrameType.DATA, Flag.PADDED, 1), H2ErrorCode.FRAME_SIZE_ERROR)


def test_6_1_padding_removed(fr):
    (frame,) = fr.FrameDecoder().receive(raw(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, b"\x03ab\0\0\0"))
    assert (frame.data, frame.pad_length, frame.flags & Flag.END_STREAM) == (b"ab", 3, 1)


def test_6_2_headers_priority_too_short_is_frame_size_error(fr):
    connection_error(fr, raw(FrameType.HEADERS, Flag.PRIORITY | Flag.END_HEADERS, 1, bytes(4)),
                     H2ErrorCode.FRAME_SIZE_ERROR)


def test_6_3_priority_wrong_length_is_stream_error(fr):
    d = fr.FrameDecoder()
    (frame,) = d.receive(raw(FrameType.PRIORITY, 0, 3, bytes(4)))
    assert frame.error == H2ErrorCode.FRAME_SIZE_ERROR
    assert d.receive(raw(FrameType.PING, 0, 0, bytes(8)))[0].type == FrameType.PING  # connection goes on


@pytest.mark.parametrize("kind", [FrameType.PRIORITY, FrameType.HEADERS], ids=lambda k: k.name)
def test_5_3_1_stream_depending_on_itself_is_stream_error(fr, kind):
    flags = Flag.PRIORITY | Flag.END_HEADERS if kind == FrameType.HEADERS else 0
    (frame,) = fr.FrameDecoder().receive(raw(kind, flags, 5, (5).to_bytes(4, "big") + b"\x0f"))
    assert frame.error == H2ErrorCode.PROTOCOL_ERROR


@pytest.mark.parametrize(("kind", "length"), [(FrameType.RST_STREAM, 3), (FrameType.RST_STREAM, 5),
                                              (FrameType.PING, 7), (FrameType.PING, 9),
                                              (FrameType.WINDOW_UPDATE, 3), (FrameType.WINDOW_UPDATE, 5)],
                         ids=["6.4-RST_STREAM-3", "6.4-RST_STREAM-5", "6.7-PING-7", "6.7-PING-9",
                              "6.9-WINDOW_UPDATE-3", "6.9-WINDOW_UPDATE-5"])
def test_6_fixed_length_frames_wrong_length_is_frame_size_error(fr, kind, length):
    stream = 0 if kind == FrameType.PING else 1
    connection_error(fr, raw(kind, 0, stream, b"\x01" * length), H2ErrorCode.FRAME_SIZE_ERROR)


def test_6_5_settings_ack_with_payload_is_frame_size_error(fr):
    connection_error(fr, raw(FrameType.SETTINGS, Flag.ACK, 0, bytes(6)), H2ErrorCode.FRAME_SIZE_ERROR)


def test_6_5_settings_length_not_multiple_of_6_is_frame_size_error(fr):
    connection_error(fr, raw(FrameType.SETTINGS, 0, 0, bytes(7)), H2ErrorCode.FRAME_SIZE_ERROR)


@pytest.mark.parametrize(("ident", "value", "code"), [
    (0x2, 2, H2ErrorCode.PROTOCOL_ERROR),
    (0x4, 2**31, H2ErrorCode.FLOW_CONTROL_ERROR),
    (0x5, 2**14 - 1, H2ErrorCode.PROTOCOL_ERROR),
    (0x5, 2**24, H2ErrorCode.PROTOCOL_ERROR),
], ids=["ENABLE_PUSH-2", "INITIAL_WINDOW_SIZE-2**31", "MAX_FRAME_SIZE-16383", "MAX_FRAME_SIZE-2**24"])
def test_6_5_2_setting_out_of_range(fr, ident, value, code):
    connection_error(fr, raw(FrameType.SETTINGS, 0, 0, ident.to_bytes(2, "big") + value.to_bytes(4, "big")), code)


def test_6_5_2_unknown_setting_kept_to_be_ignored(fr):
    (frame,) = fr.FrameDecoder().receive(raw(FrameType.SETTINGS, 0, 0, b"\x00\x99\x00\x00\x00\x07"
                                             + b"\x00\x04\x7f\xff\xff\xff"))
    assert frame.settings == ((0x99, 7), (0x4, 2**31 - 1))


def test_6_6_push_promise_too_short_is_frame_size_error(fr):
    connection_error(fr, raw(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, bytes(3)), H2ErrorCode.FRAME_SIZE_ERROR)


def test_6_8_goaway_too_short_is_frame_size_error(fr):
    connection_error(fr, raw(FrameType.GOAWAY, 0, 0, bytes(7)), H2ErrorCode.FRAME_SIZE_ERROR)


def test_6_9_zero_increment_on_stream_0_is_connection_error(fr):
    connection_error(fr, raw(FrameType.WINDOW_UPDATE, 0, 0, bytes(4)), H2ErrorCode.PROTOCOL_ERROR)


def test_6_9_zero_increment_on_a_stream_is_stream_error(fr):
    (frame,) = fr.FrameDecoder().receive(raw(FrameType.WINDOW_UPDATE, 0, 1, bytes(4)))
    assert frame.error == H2ErrorCode.PROTOCOL_ERROR


def test_6_10_continuation_without_open_block_is_protocol_error(fr):
    connection_error(fr, raw(FrameType.CONTINUATION, Flag.END_HEADERS, 1, b"x"), H2ErrorCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("second", [raw(FrameType.PING, 0, 0, bytes(8)),
                                    raw(FrameType.CONTINUATION, Flag.END_HEADERS, 3, b"x")],
                         ids=["other-type", "other-stream"])
def test_6_10_open_block_admits_only_its_continuation(fr, second):
    err = connection_error(fr, raw(FrameType.HEADERS, 0, 1, b"ab") + second, H2ErrorCode.PROTOCOL_ERROR)
    assert [f.type for f in err.frames] == [FrameType.HEADERS]  # what came before is handed over


def test_6_10_continuations_close_the_block(fr):
    d = fr.FrameDecoder()
    frames = d.receive(raw(FrameType.HEADERS, 0, 1, b"a") + raw(FrameType.CONTINUATION, 0, 1, b"b")
                       + raw(FrameType.CONTINUATION, Flag.END_HEADERS, 1, b"c") + raw(FrameType.PING, 0, 0, bytes(8)))
    assert b"".join(f.data for f in frames[:3]) == b"abc" and frames[3].type == FrameType.PING


# ---- hyperframe as the oracle, both ways; random splits ----------------------

sid = st.integers(1, 2**31 - 1)
data = st.binary(max_size=300)
pad = st.one_of(st.none(), st.integers(0, 255))


@st.composite
def hyper_frames(draw):
    kind = draw(st.sampled_from(list(FrameType)))
    if kind == FrameType.DATA:
        f = hf.DataFrame(draw(sid), data=draw(data))
        p = draw(pad)
        if p is not None:
            f.flags.add("PADDED"); f.pad_length = p
        if draw(st.booleans()):
            f.flags.add("END_STREAM")
    elif kind == FrameType.HEADERS:
        # hyperframe refuses padding that leaves no field block and no
        # priority fields, which RFC 9113 6.2 allows: keep a byte of block
        f = hf.HeadersFrame(draw(sid), data=draw(st.binary(min_size=1, max_size=300)))
        f.flags.add("END_HEADERS")
        p = draw(pad)
        if p is not None:
            f.flags.add("PADDED"); f.pad_length = p
        if draw(st.booleans()):
            f.flags.add("PRIORITY")
            f.depends_on = draw(st.integers(0, 2**31 - 1).filter(lambda d: d != f.stream_id))
            f.stream_weight = draw(st.integers(0, 255)); f.exclusive = draw(st.booleans())
    elif kind == FrameType.PRIORITY:
        f = hf.PriorityFrame(draw(sid))
        f.depends_on = draw(st.integers(0, 2**31 - 1).filter(lambda d: d != f.stream_id))
        f.stream_weight = draw(st.integers(0, 255)); f.exclusive = draw(st.booleans())
    elif kind == FrameType.RST_STREAM:
        f = hf.RstStreamFrame(draw(sid), error_code=draw(st.integers(0, 2**32 - 1)))
    elif kind == FrameType.SETTINGS:
        # unknown ids only (known ones have ranges); hyperframe 6.1 writes
        # ids above 255 as their low byte, so stay below that
        f = hf.SettingsFrame(0, settings=dict(draw(st.lists(st.tuples(st.integers(7, 0xFF), st.integers(0, 2**32 - 1)), max_size=5))))
    elif kind == FrameType.PUSH_PROMISE:
        # promised ids are even: hyperframe checks that (a connection-level rule)
        f = hf.PushPromiseFrame(draw(sid), promised_stream_id=2 * draw(st.integers(1, 2**30 - 1)), data=draw(data))
        f.flags.add("END_HEADERS")
    elif kind == FrameType.PING:
        f = hf.PingFrame(0, opaque_data=draw(st.binary(min_size=8, max_size=8)))
        if draw(st.booleans()):
            f.flags.add("ACK")
    elif kind == FrameType.GOAWAY:
        f = hf.GoAwayFrame(0, last_stream_id=draw(st.integers(0, 2**31 - 1)),
                           error_code=draw(st.integers(0, 2**32 - 1)), additional_data=draw(data))
    elif kind == FrameType.WINDOW_UPDATE:
        f = hf.WindowUpdateFrame(draw(st.integers(0, 2**31 - 1)), window_increment=draw(st.integers(1, 2**31 - 1)))
    else:  # a CONTINUATION needs an open block: a HEADERS without END_HEADERS before it
        s = draw(sid)
        first = hf.HeadersFrame(s, data=draw(data))
        f = hf.ContinuationFrame(s, data=draw(data))
        f.flags.add("END_HEADERS")
        return [first, f]
    return [f]


def same(ours: Frame, theirs) -> None:
    assert ours.type == theirs.type and ours.stream_id == theirs.stream_id
    assert ours.flags == sum(flag.bit for flag in theirs.defined_flags if flag.name in theirs.flags)
    t = ours.type
    if t in (FrameType.DATA, FrameType.HEADERS, FrameType.PUSH_PROMISE, FrameType.CONTINUATION):
        assert ours.data == theirs.data
    if "PADDED" in theirs.flags:
        assert ours.pad_length == theirs.pad_length
    if t == FrameType.PRIORITY or (t == FrameType.HEADERS and "PRIORITY" in theirs.flags):
        assert (ours.depends_on, ours.weight - 1, ours.exclusive) == (theirs.depends_on, theirs.stream_weight, theirs.exclusive)
    if t == FrameType.RST_STREAM:
        assert ours.error_code == theirs.error_code
    if t == FrameType.SETTINGS:
        assert dict(ours.settings) == theirs.settings
    if t == FrameType.PUSH_PROMISE:
        assert ours.promised_stream_id == theirs.promised_stream_id
    if t == FrameType.PING:
        assert ours.data == theirs.opaque_data
    if t == FrameType.GOAWAY:
        assert (ours.last_stream_id, ours.error_code, ours.data) == (theirs.last_stream_id, theirs.error_code, theirs.additional_data)
    if t == FrameType.WINDOW_UPDATE:
        assert ours.increment == theirs.window_increment


@twin_settings
@given(groups=st.lists(hyper_frames(), min_size=1, max_size=8), cuts=st.lists(st.integers(0, 10**5), max_size=6))
def test_hyperframe_bytes_decoded_at_random_splits(fr, groups, cuts):
    theirs = [f for g in groups for f in g]
    stream = b"".join(f.serialize() for f in theirs)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    d = fr.FrameDecoder()
    ours = []
    for a, b in zip([0] + points, points + [len(stream)]):
        ours += d.receive(stream[a:b])
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        same(o, t)
        assert o.error is None


@twin_settings
@given(groups=st.lists(hyper_frames(), min_size=1, max_size=8))
def test_our_encoding_parsed_by_hyperframe(fr, groups):
    d = fr.FrameDecoder()
    for group in groups:
        for theirs in group:
            (ours,) = d.receive(theirs.serialize())
            wire = fr.encode(ours)
            assert wire == theirs.serialize()
            parsed, length = hf.Frame.parse_frame_header(memoryview(wire[:9]))
            parsed.parse_body(memoryview(wire[9:]))
            same(ours, parsed)


def test_encode_checks_its_arguments(fr):
    with pytest.raises(OverflowError):
        fr.encode(Frame(FrameType.DATA, 2**31, data=b""))
    with pytest.raises(ValueError):
        fr.encode(Frame(FrameType.PRIORITY, 1, weight=0))
    with pytest.raises(OverflowError):
        fr.encode(Frame(FrameType.DATA, 1, Flag.PADDED, pad_length=256))


def outcome(decoder, pieces):
    frames = []
    try:
        for piece in pieces:
            frames += decoder.receive(piece)
    except H2FrameError as exc:
        return frames + exc.frames, (exc.error_code, exc.section, exc.message)
    return frames, None


@twin_settings
@given(junk=st.binary(max_size=400), cuts=st.lists(st.integers(0, 10**4), max_size=8),
       size=st.sampled_from([2**14, 2**20]))
def test_garbage_whole_or_split_gives_the_same_frames_or_error(fr, junk, cuts, size):
    # Only H2FrameError may escape, and where the input is cut changes
    # nothing: the same frames, then the same error or none.
    stream = raw(FrameType.SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00\x64") + junk
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0] + points, points + [len(stream)])]
    whole = outcome(fr.FrameDecoder(size), [stream])
    assert outcome(fr.FrameDecoder(size), pieces) == whole
    for frame in whole[0]:
        fr.encode(frame)  # every decoded frame encodes again


@pytest.mark.skipif("c" not in h2frame.impls, reason="needs the C twin")
@settings(deadline=None, max_examples=400)
@given(groups=st.lists(hyper_frames(), max_size=6), junk=st.binary(max_size=200),
       mutations=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
       cuts=st.lists(st.integers(0, 10**5), max_size=8), size=st.sampled_from([2**14, 2**20]))
def test_twins_agree_on_mutated_streams_split_anywhere(groups, junk, mutations, cuts, size):
    stream = bytearray(b"".join(f.serialize() for g in groups for f in g) + junk)
    for at, byte in mutations:
        if stream:
            stream[at % len(stream)] = byte
    stream = bytes(stream)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0] + points, points + [len(stream)])]
    c = outcome(h2frame.impls["c"].FrameDecoder(size), pieces)
    assert c == outcome(h2frame.impls["python"].FrameDecoder(size), pieces)
    assert c == outcome(h2frame.impls["c"].FrameDecoder(size), [stream])


@pytest.mark.skipif("c" not in h2frame.impls, reason="needs the C twin")
def test_c_parses_more_frames_than_one_batch():
    pings = b"".join(raw(FrameType.PING, 0, 0, i.to_bytes(8, "big")) for i in range(200))
    frames = h2frame.impls["c"].FrameDecoder().receive(pings)
    assert [int.from_bytes(f.data, "big") for f in frames] == list(range(200))
