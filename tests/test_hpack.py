"""HPACK (RFC 7541) on both twins: the RFC's Appendix C examples byte for
byte, every decoding error by its section, the header-list bound (an HPACK
bomb), and hypothesis round trips against the ``hpack`` package (python-hyper,
the oracle) and between the twins."""
from __future__ import annotations

import hpack as oracle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnet.codec import hpack
from fastnet.errors import (
    H2ErrorCode,
    HeaderListTooLarge,
    HpackBadHuffman,
    HpackBadIndex,
    HpackBadTableSizeUpdate,
    HpackError,
    HpackIntegerOverflow,
    HpackTruncated,
    ProtocolError,
)
from fastnet.limits import DEFAULT_H2_MAX_HEADER_TABLE_SIZE

# The twins hold no module state, so sharing one across examples is safe.
twin_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@pytest.fixture(params=["c", "python"])
def hp(request):
    """fastnet.codec.hpack's C twin or its Python twin."""
    if request.param not in hpack.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")
    return hpack.impls[request.param]


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# ---- Appendix C.2: one representation each, from an empty table --------------

def test_c2_1_literal_with_indexing(hp):
    d = hp.Decoder()
    assert d.decode(h("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")) == [
        (b"custom-key", b"custom-header")
    ]
    assert d.table_size == 55


def test_c2_2_literal_without_indexing(hp):
    d = hp.Decoder()
    assert d.decode(h("040c 2f73 616d 706c 652f 7061 7468")) == [(b":path", b"/sample/path")]
    assert d.table_size == 0


def test_c2_3_literal_never_indexed(hp):
    d = hp.Decoder()
    (field,) = d.decode(h("1008 7061 7373 776f 7264 0673 6563 7265 74"))
    assert field == (b"password", b"secret") and isinstance(field, hpack.NeverIndexed)
    assert d.table_size == 0
    # ...and the encoder sends a NeverIndexed field the same way, byte for byte
    assert hp.Encoder(huffman=False).encode([hpack.NeverIndexed("password", "secret")]) == h(
        "1008 7061 7373 776f 7264 0673 6563 7265 74"
    )


def test_c2_4_indexed(hp):
    assert hp.Decoder().decode(h("82")) == [(b":method", b"GET")]
    assert hp.Encoder().encode([(b":method", b"GET")]) == h("82")


# ---- Appendix C.3 to C.6: sequences sharing one dynamic table -----------------

REQUESTS = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com"),
     (b"cache-control", b"no-cache")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
     (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")],
]
REQUEST_TABLE_SIZES = [57, 110, 164]
C3 = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
]
C4 = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
]
DATE1 = b"Mon, 21 Oct 2013 20:13:21 GMT"
DATE2 = b"Mon, 21 Oct 2013 20:13:22 GMT"
LOCATION = b"https://www.example.com"
COOKIE = b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
RESPONSES = [
    [(b":status", b"302"), (b"cache-control", b"private"), (b"date", DATE1), (b"location", LOCATION)],
    [(b":status", b"307"), (b"cache-control", b"private"), (b"date", DATE1), (b"location", LOCATION)],
    [(b":status", b"200"), (b"cache-control", b"private"), (b"date", DATE2), (b"location", LOCATION),
     (b"content-encoding", b"gzip"), (b"set-cookie", COOKIE)],
]
RESPONSE_TABLE_SIZES = [222, 222, 215]
C6 = [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6"
    "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab"
    "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f"
    "9587 3160 65c0 03ed 4ee5 b106 3d50 07",
]


@pytest.mark.parametrize(("blocks", "huffman"), [(C3, False), (C4, True)], ids=["C.3", "C.4"])
def test_c3_c4_requests(hp, blocks, huffman):
    d = hp.Decoder()
    e = hp.Encoder(huffman=huffman)
    for block, headers, size in zip(blocks, REQUESTS, REQUEST_TABLE_SIZES):
        assert d.decode(h(block)) == headers
        assert d.table_size == size
        assert e.encode(headers) == h(block)
        assert e.table_size == size


def test_c6_responses_with_eviction(hp):
    d = hp.Decoder(max_table_size=256)
    for block, headers, size in zip(C6, RESPONSES, RESPONSE_TABLE_SIZES):
        assert d.decode(h(block)) == headers
        assert d.table_size == size
    # Our encoder announces its 256-byte table first (the peer's starts at
    # 4096), and Huffman-codes "307" only when shorter, which it is not
    # (the RFC's 83 640eff is as long as the raw 03 333037).
    e = hp.Encoder(max_table_size=256)
    expected = [h("3fe101") + h(C6[0]), h("4803 3330 37c1 c0bf"), h(C6[2])]
    for headers, block, size in zip(RESPONSES, expected, RESPONSE_TABLE_SIZES):
        assert e.encode(headers) == block
        assert e.table_size == size


# ---- bad input, by section: the exact error, COMPRESSION_ERROR, sticky -------

BAD = [
    ("5.1 integer truncated", "ff", HpackTruncated),
    ("5.1 integer over 2**32-1", "ff ff ff ff ff 0f", HpackIntegerOverflow),
    ("5.1 integer with 6 continuation bytes", "ff 80 80 80 80 80 00", HpackIntegerOverflow),
    ("5.2 string longer than the block", "40 05 61 62", HpackTruncated),
    ("5.2 literal with no name", "40", HpackTruncated),
    ("5.2 literal with no value", "40 01 61", HpackTruncated),
    ("5.2 Huffman EOS inside", "40 84 ff ff ff ff 01 61", HpackBadHuffman),
    ("5.2 Huffman padding over 7 bits", "00 01 61 82 1f ff", HpackBadHuffman),
    ("5.2 Huffman padding not ones", "00 01 61 81 00", HpackBadHuffman),
    ("2.3.3 index 0", "80", HpackBadIndex),
    ("2.3.3 index past the tables", "be", HpackBadIndex),
    ("2.3.3 name index past the tables", "7e 01 61", HpackBadIndex),
    ("4.2 size update above the setting", "3f e2 1f", HpackBadTableSizeUpdate),
    ("4.2 size update after a field", "82 20", HpackBadTableSizeUpdate),
]


@pytest.mark.parametrize(("block", "error"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_block(hp, block, error):
    d = hp.Decoder()
    with pytest.raises(error) as info:
        d.decode(h(block))
    assert isinstance(info.value, ProtocolError) and isinstance(info.value, ValueError)
    assert info.value.error_code == H2ErrorCode.COMPRESSION_ERROR
    with pytest.raises(error):  # the table is lost: sticky
        d.decode(h("82"))


def test_4_2_size_updates_evict_and_allow_up_to_the_setting(hp):
    d = hp.Decoder()
    d.decode(h(C3[0]))
    assert d.table_size == 57
    assert d.decode(h("20 3f e1 1f 82")) == [(b":method", b"GET")]  # 0 then 4096
    assert d.table_size == 0
    d.max_table_size = 8192
    d.decode(h("3f e1 3f"))  # 8192 is allowed now
    with pytest.raises(HpackBadTableSizeUpdate):
        hp.Decoder().decode(h("3f e1 3f"))


def test_encoder_announces_smallest_then_final_size(hp):
    e = hp.Encoder()
    e.encode(REQUESTS[0])
    e.set_max_table_size(0)
    e.set_max_table_size(4096)
    block = e.encode([(b":method", b"GET")])
    assert block == h("20 3f e1 1f 82")
    assert e.table_size == 0
    e.set_max_table_size(10**9)  # a peer's huge setting is capped by ours
    assert hp.Decoder(DEFAULT_H2_MAX_HEADER_TABLE_SIZE).decode(e.encode([])) == []


def test_sensitive_fields_are_never_indexed(hp):
    e = hp.Encoder()
    fields = [(b"authorization", b"Bearer x"), (b"cookie", b"short=1"), (b"cookie", b"a" * 40)]
    block = e.encode(fields)
    got = oracle.Decoder().decode(block, raw=True)
    assert [type(f).__name__ for f in got] == [
        "NeverIndexedHeaderTuple", "NeverIndexedHeaderTuple", "HeaderTuple"]
    assert e.table_size == 6 + 40 + 32  # only the long cookie entered the table


# ---- the header-list bound -------------------------------------------------

def test_hpack_bomb_is_stopped_before_expanding(hp):
    # One 4 KB entry, then a block that names it 4000 times: 4000 bytes of
    # input that would expand to 16 MB.
    big = b"x" * 4000
    e = oracle.Encoder()
    seed = e.encode([(b"a", big)])
    d = hp.Decoder(max_header_list_size=64 * 1024)
    assert d.decode(seed) == [(b"a", big)]
    with pytest.raises(HeaderListTooLarge) as info:
        d.decode(h("be") * 4000)
    assert info.value.limit == 64 * 1024
    assert info.value.error_code == H2ErrorCode.ENHANCE_YOUR_CALM
    assert "max_header_list_size=65536" in str(info.value)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_header_list_limit_is_exact(hp, n):
    # Each (b"a", b"b") counts 1 + 1 + 32 = 34 (RFC 9113 6.5.2).
    block = oracle.Encoder().encode([(b"a", b"b")] * 3)
    limit = 34 * 3 - n
    if n == 0:
        assert len(hp.Decoder(max_header_list_size=limit).decode(block)) == 3
    else:
        with pytest.raises(HeaderListTooLarge):
            hp.Decoder(max_header_list_size=limit).decode(block)


# ---- Huffman ------------------------------------------------------------------

@twin_settings
@given(data=st.binary(max_size=200))
def test_huffman_round_trip_and_oracle(hp, data):
    coded = hp.huffman_encode(data)
    assert hp.huffman_decode(coded) == data
    assert coded == oracle.huffman.HuffmanEncoder(
        oracle.huffman_constants.REQUEST_CODES, oracle.huffman_constants.REQUEST_CODES_LENGTH
    ).encode(data)


def test_every_symbol_round_trips(hp):
    data = bytes(range(256))
    assert hp.huffman_decode(hp.huffman_encode(data)) == data


# ---- hypothesis: our twins against hpack, both directions ----------------------

names = st.sampled_from([b":path", b":authority", b"content-type", b"user-agent", b"x-a", b"cookie",
                         b"authorization"]) | st.binary(min_size=1, max_size=20)
header_lists = st.lists(st.lists(st.tuples(names, st.binary(max_size=60)), max_size=12), min_size=1, max_size=6)


@twin_settings
@given(lists=header_lists, size=st.sampled_from([0, 64, 256, 4096]), huffman=st.booleans())
def test_our_encoder_to_hpack_decoder(hp, lists, size, huffman):
    ours = hp.Encoder(max_table_size=size, huffman=huffman)
    theirs = oracle.Decoder()
    for headers in lists:
        assert [tuple(f) for f in theirs.decode(ours.encode(headers), raw=True)] == headers


@twin_settings
@given(lists=header_lists, size=st.sampled_from([0, 64, 256, 4096]), huffman=st.booleans())
def test_hpack_encoder_to_our_decoder(hp, lists, size, huffman):
    theirs = oracle.Encoder()
    theirs.header_table_size = size
    ours = hp.Decoder()
    for headers in lists:
        assert ours.decode(theirs.encode(headers, huffman=huffman)) == headers
        assert ours.table_size == theirs.header_table._current_size


# ---- differential: C against Python on random and mutated blocks ---------------

def outcome(decoder, block):
    try:
        return [(type(f).__name__, tuple(f)) for f in decoder.decode(block)], decoder.table_size
    except HpackError as exc:
        return type(exc), str(exc)


@pytest.mark.skipif("c" not in hpack.impls, reason="needs the C twin")
@settings(deadline=None, max_examples=400)
@given(lists=header_lists, mutations=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
       garbage=st.binary(max_size=40), limit=st.sampled_from([100, 1000, 65536]))
def test_twins_agree_on_mutated_blocks(lists, mutations, garbage, limit):
    encoder = oracle.Encoder()
    c = hpack.impls["c"].Decoder(max_header_list_size=limit)
    py = hpack.impls["python"].Decoder(max_header_list_size=limit)
    blocks = [bytearray(encoder.encode(headers)) for headers in lists] + [bytearray(garbage)]
    for block in blocks:
        for at, byte in mutations:
            if block:
                block[at % len(block)] = byte
        assert outcome(c, bytes(block)) == outcome(py, bytes(block))


@pytest.mark.skipif("c" not in hpack.impls, reason="needs the C twin")
@settings(deadline=None)
@given(lists=header_lists, size=st.sampled_from([0, 64, 256, 4096, 100000]), huffman=st.booleans(),
       sensitive=st.lists(st.booleans(), max_size=80))
def test_twins_encode_alike(lists, size, huffman, sensitive):
    c = hpack.impls["c"].Encoder(max_table_size=size, huffman=huffman)
    py = hpack.impls["python"].Encoder(max_table_size=size, huffman=huffman)
    flags = iter(sensitive)
    for headers in lists:
        fields = [hpack.NeverIndexed(*f) if next(flags, False) else f for f in headers]
        assert c.encode(fields) == py.encode(fields)
        assert c.table_size == py.table_size


def test_bench_h2codec_runs_and_reports_every_peer(capsys):
    from bench import h2codec

    h2codec.main(["--blocks", "20", "--frames", "20", "--repeat", "1"])
    out = capsys.readouterr().out
    for peer in ["fastnet python", "hpack", "hyperframe"] + [f"fastnet {n}" for n in hpack.impls]:
        assert peer in out
