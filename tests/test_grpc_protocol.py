"""gRPC's framing and header rules (fastnet.grpc.protocol), sans I/O.

The oracle for the byte forms is grpcio itself where it exposes them (the
status codes' numbers) and grpc's PROTOCOL-HTTP2.md's grammar elsewhere;
the over-the-wire checks against grpcio are in test_grpc_server.py."""
from __future__ import annotations

import gzip
import zlib

import grpc
import pytest
from hypothesis import given, settings, strategies as st

from fastnet import limits
from fastnet.errors import (GrpcBadHeader, GrpcBadPrefix, GrpcCompressionError, GrpcError,
                            GrpcMessageTooLarge, GrpcTruncated, GrpcUnknownEncoding, ProtocolError)
from fastnet.grpc import protocol as p
from fastnet.grpc.protocol import StatusCode


def test_status_codes_are_grpcios():
    ours = {c.name: int(c) for c in StatusCode}
    theirs = {c.name: c.value[0] for c in grpc.StatusCode}
    assert ours == theirs and len(ours) == 17


def test_message_prefix_and_round_trip():
    assert p.encode_message(b"abc") == b"\x00\x00\x00\x00\x03abc"
    framed = p.encode_message(b"x" * 100, "gzip")
    assert framed[0] == 1
    assert gzip.decompress(framed[5:]) == b"x" * 100
    d = p.MessageDecoder(encoding="gzip")
    assert d.feed(framed + p.encode_message(b"")) == [b"x" * 100, b""]
    d.end()
    framed = p.encode_message(b"y" * 50, "deflate")
    assert zlib.decompress(framed[5:]) == b"y" * 50


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from([None, "gzip", "deflate"]),
       st.lists(st.integers(1, 40), min_size=1, max_size=50))
def test_decoder_split_anywhere(payloads, encoding, steps):
    data = b"".join(p.encode_message(m, encoding if i % 2 else None)
                    for i, m in enumerate(payloads))
    d = p.MessageDecoder(encoding=encoding)
    out, pos, i = [], 0, 0
    while pos < len(data):
        step = steps[i % len(steps)]
        i += 1
        out += d.feed(data[pos:pos + step])
        pos += step
    d.end()
    assert out == payloads


def test_length_checked_from_prefix_alone():
    d = p.MessageDecoder(max_size=10)
    with pytest.raises(GrpcMessageTooLarge) as e:
        d.feed(b"\x00\xff\xff\xff\xff")       # no payload byte needed to refuse it
    assert e.value.status == StatusCode.RESOURCE_EXHAUSTED
    assert "max_receive_message_length=10" in str(e.value)
    assert isinstance(e.value, ProtocolError) and isinstance(e.value, ValueError)
    with pytest.raises(GrpcMessageTooLarge):   # sticky
        d.feed(b"")
    assert p.MessageDecoder().max_size == limits.DEFAULT_GRPC_MAX_RECEIVE_MESSAGE == 4 << 20


def test_decompressed_size_is_bounded():
    bomb = p.encode_message(b"\0" * (1 << 20), "gzip")
    assert len(bomb) < 2000
    with pytest.raises(GrpcMessageTooLarge) as e:
        p.MessageDecoder(max_size=1500, encoding="gzip").feed(bomb)
    assert e.value.size == 1501                # stopped one byte past the limit


def test_bad_prefix_and_compression_errors():
    with pytest.raises(GrpcBadPrefix) as e:
        p.MessageDecoder().feed(b"\x02\x00\x00\x00\x00")
    assert e.value.status == StatusCode.INTERNAL
    with pytest.raises(GrpcCompressionError):  # flag 1 without grpc-encoding
        p.MessageDecoder().feed(b"\x01\x00\x00\x00\x00")
    with pytest.raises(GrpcCompressionError):
        p.MessageDecoder(encoding="gzip").feed(b"\x01\x00\x00\x00\x03abc")
    with pytest.raises(GrpcUnknownEncoding) as u:
        p.MessageDecoder(encoding="snappy")
    assert u.value.status == StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("data,missing", [(b"\x00\x00", 3), (b"\x00\x00\x00\x00\x05ab", 3)])
def test_truncated_stream(data, missing):
    d = p.MessageDecoder()
    assert d.feed(data) == []
    with pytest.raises(GrpcTruncated) as e:
        d.end()
    assert e.value.missing == missing


@pytest.mark.parametrize("text,seconds", [(b"1H", 3600), (b"2M", 120), (b"3S", 3),
                                          (b"4m", 0.004), (b"5u", 5e-6), (b"99999999n", 0.099999999)])
def test_timeout_parse(text, seconds):
    assert p.parse_timeout(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", [b"", b"1", b"S", b"123456789S", b"1s", b"-1S", b"1.5S", b" 1S"])
def test_timeout_malformed(bad):
    with pytest.raises(GrpcBadHeader):
        p.parse_timeout(bad)


@given(st.floats(min_value=0, max_value=3e8))
def test_timeout_format_never_earlier(seconds):
    text = p.format_timeout(seconds)
    assert len(text) <= 9
    back = p.parse_timeout(text)
    assert back >= seconds - 1e-9 * max(1, seconds) or text == b"99999999H"


def test_timeout_format_units():
    assert p.format_timeout(1.5) == b"1500000u"
    assert p.format_timeout(0.001) == b"1000000n"
    assert p.format_timeout(10) == b"10000000u"
    assert p.format_timeout(1000) == b"1000000m"
    assert p.format_timeout(0) == b"0n"


@pytest.mark.parametrize("text,wire", [
    ("plain", b"plain"), ("100%", b"100%25"), ("\t\n", b"%09%0A"),
    ("\u00e9", b"%C3%A9"),
    # the interop special_status_message case's text
    ("\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n",
     b"%09%0Atest with whitespace%0D%0Aand Unicode BMP %E2%98%BA and non-BMP %F0%9F%98%88%09%0A"),
])
def test_grpc_message_encoding(text, wire):
    assert p.encode_message_text(text) == wire
    assert p.decode_message_text(wire) == text


def test_grpc_message_decoding_is_lenient():
    assert p.decode_message_text(b"50%") == "50%"
    assert p.decode_message_text(b"%zz%4") == "%zz%4"
    assert p.decode_message_text(b"%FF") == "\ufffd"


@given(st.text())
def test_grpc_message_round_trip(text):
    wire = p.encode_message_text(text.encode("utf-8", "replace").decode("utf-8"))
    assert all(0x20 <= b <= 0x7E for b in wire)


def test_metadata_both_ways():
    md = [("x-a", "v 1"), ("x-b-bin", b"\x00\xff\x01"), ("x-c-bin", b"ab")]
    h = p.encode_metadata(md)
    assert h == [(b"x-a", b"v 1"), (b"x-b-bin", b"AP8B"), (b"x-c-bin", b"YWI")]
    assert p.decode_metadata(h) == md
    assert p.decode_metadata([(b"x-c-bin", b"YWI=")]) == [("x-c-bin", b"ab")]   # padded too
    assert p.decode_metadata([(b":path", b"/a"), (b"content-type", b"application/grpc"),
                              (b"grpc-timeout", b"1S"), (b"user-agent", b"u")]) == [
        ("user-agent", "u")]


@pytest.mark.parametrize("md", [[("X-Upper", "v")], [("grpc-timeout", "1S")], [(":path", "/")],
                                [("x", "caf\u00e9")], [("x", "a\nb")], [("te", "trailers")]])
def test_metadata_refused(md):
    with pytest.raises(ValueError):
        p.encode_metadata(md)


def test_bad_base64_metadata():
    with pytest.raises(GrpcBadHeader):
        p.decode_metadata([(b"x-bin", b"!!!")])


@pytest.mark.parametrize("value,ok", [(b"application/grpc", True), (b"application/grpc+proto", True),
                                      (b"application/grpc;charset=x", True), (None, False),
                                      (b"application/json", False), (b"application/grpcx", False)])
def test_content_type(value, ok):
    assert p.is_grpc_content_type(value) is ok


def test_trailers_and_trailers_only():
    t = p.trailers(StatusCode.NOT_FOUND, "no 100%", [("x-t", "1")])
    assert t == [(b"grpc-status", b"5"), (b"grpc-message", b"no 100%25"), (b"x-t", b"1")]
    assert p.parse_status(t) == (StatusCode.NOT_FOUND, "no 100%")
    only = p.trailers_only(StatusCode.UNIMPLEMENTED)
    assert only[:2] == [(b":status", b"200"), (b"content-type", b"application/grpc")]
    assert (b"grpc-accept-encoding", b"identity,deflate,gzip") in only
    assert p.parse_status([]) [0] == StatusCode.UNKNOWN
    assert p.parse_status([(b"grpc-status", b"99")])[0] == StatusCode.UNKNOWN


@pytest.mark.parametrize("http,code", [(400, "INTERNAL"), (401, "UNAUTHENTICATED"),
                                       (403, "PERMISSION_DENIED"), (404, "UNIMPLEMENTED"),
                                       (429, "UNAVAILABLE"), (502, "UNAVAILABLE"),
                                       (503, "UNAVAILABLE"), (504, "UNAVAILABLE"),
                                       (415, "UNKNOWN"), (500, "UNKNOWN")])
def test_http_status_mapping(http, code):
    assert p.status_from_http(http).name == code


def test_errors_are_typed():
    for cls in (GrpcBadHeader, GrpcBadPrefix, GrpcCompressionError, GrpcMessageTooLarge,
                GrpcTruncated, GrpcUnknownEncoding):
        assert issubclass(cls, GrpcError) and issubclass(cls, ValueError)
