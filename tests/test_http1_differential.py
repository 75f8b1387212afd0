"""The C and Python twins of the HTTP/1.1 codec on the same random input,
split at the same random points: identical heads, spans and errors (type
and text)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fastnet import codec
from fastnet.errors import HttpError
from helpers import require_engine

C, PY = codec.impls.get("c"), codec.impls["python"]


def twins():
    """(C twin, Python twin); skipped without the C extension, except under
    FASTNET_REQUIRE_NATIVE=1, where that fails."""
    require_engine("c")
    assert C is not None
    return C.http1, PY.http1


def run_head(parser, data: bytes, cuts: list[int], start: int = 0):
    """Parse growing prefixes ending at each cut, then the whole: every
    result (None, a head) or the error, as comparable values."""
    out = []
    for end in sorted(set(c for c in cuts if start <= c <= len(data))) + [len(data)]:
        try:
            out.append(parser.parse(data, start, end))
        except HttpError as error:
            out.append((type(error).__name__, str(error), error.status_hint))
            break
    return out


def run_chunked(decoder, data: bytes, cuts: list[int]):
    out, pos = [], 0
    for end in sorted(set(c for c in cuts if c <= len(data))) + [len(data)]:
        if end < pos:
            continue
        try:
            spans, pos, done = decoder.decode(data, pos, end)
            out.append((spans, pos, done))
        except HttpError as error:
            out.append((type(error).__name__, str(error), error.status_hint))
            break
    return out


tokens = st.sampled_from([b"GET", b"POST", b"HEAD", b"PRI", b"G\x00T", b"", b"get"])
targets = st.sampled_from([b"/", b"/a?b=c", b"*", b"http://h/x", b"/\x7f", b"/ /", b""])
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.12", b"http/1.1",
                            b"HTTP/9.9"])
names = st.sampled_from([b"Host", b"Content-Length", b"X", b"Bad Name", b"X ", b" X", b"",
                         b"\tY", b"A:B"])
values = st.binary(max_size=12)
seps = st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\n\r\n"])


@st.composite
def heads(draw):
    line = draw(tokens) + b" " + draw(targets) + b" " + draw(versions)
    fields = b"".join(draw(names) + b":" + draw(values) + draw(seps)
                      for _ in range(draw(st.integers(0, 6))))
    data = draw(st.sampled_from([b"", b"\r\n"])) + line + b"\r\n" + fields + b"\r\n"
    if draw(st.booleans()):  # mutate some bytes
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        data = bytes(data)
    return data + draw(st.binary(max_size=8))


cuts = st.lists(st.integers(0, 200), max_size=5)
small = st.sampled_from([(8192, 65536, 100), (16, 64, 2), (4, 40, 0), (30, 30, 3)])


@settings(max_examples=1500, deadline=None)
@given(data=heads(), cuts=cuts, lims=small, start=st.integers(0, 3))
def test_request_heads_agree(data, cuts, lims, start):
    c, py = twins()
    data = b"x" * start + data
    assert run_head(c.RequestHeadParser(*lims), data, cuts, start) == \
        run_head(py.RequestHeadParser(*lims), data, cuts, start)


@settings(max_examples=800, deadline=None)
@given(data=st.binary(max_size=120), cuts=cuts, lims=small)
def test_random_bytes_agree(data, cuts, lims):
    c, py = twins()
    for prefix in (b"", b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n"):
        assert run_head(c.RequestHeadParser(*lims), prefix + data, cuts) == \
            run_head(py.RequestHeadParser(*lims), prefix + data, cuts)
        assert run_head(c.ResponseHeadParser(*lims[1:]), prefix + data, cuts) == \
            run_head(py.ResponseHeadParser(*lims[1:]), prefix + data, cuts)


status_lines = st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 404", b"HTTP/1.1 301 Moved",
                                b"HTTP/2 200", b"HTTP/1.1 20 OK", b"HTTP/1.1 200 \x01",
                                b"HTTP/1.1 200  x"])


@settings(max_examples=600, deadline=None)
@given(line=status_lines, rest=st.binary(max_size=40), cuts=cuts, lims=small)
def test_response_heads_agree(line, rest, cuts, lims):
    c, py = twins()
    data = line + b"\r\n" + rest + b"\r\n\r\n"
    assert run_head(c.ResponseHeadParser(*lims[1:]), data, cuts) == \
        run_head(py.ResponseHeadParser(*lims[1:]), data, cuts)


@st.composite
def chunked(draw):
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        body = draw(st.binary(max_size=20))
        size = draw(st.sampled_from([b"%x" % len(body), b"%X" % len(body), b"%x;e=1" % len(body),
                                     b"%x " % len(body), b"0" * 17, b"g"]))
        parts.append(size + b"\r\n" + body + draw(st.sampled_from([b"\r\n", b"\r\n", b"xx"])))
    trailer = b"".join(draw(names) + b": " + draw(values) + b"\r\n"
                       for _ in range(draw(st.integers(0, 3))))
    return b"".join(parts) + b"0\r\n" + trailer + b"\r\n" + draw(st.binary(max_size=5))


@settings(max_examples=1500, deadline=None)
@given(data=chunked(), cuts=cuts,
       lims=st.sampled_from([(1 << 20, 65536, 100), (10, 20, 1), (0, 2, 0), (50, 8, 5)]))
def test_chunked_bodies_agree(data, cuts, lims):
    c, py = twins()
    assert run_chunked(c.ChunkedDecoder(*lims), data, cuts) == \
        run_chunked(py.ChunkedDecoder(*lims), data, cuts)


def test_many_chunks_cross_more_than_one_c_call():
    c, py = twins()
    data = b"1\r\na\r\n" * 200 + b"0\r\n\r\n"
    assert run_chunked(c.ChunkedDecoder(), data, []) == run_chunked(py.ChunkedDecoder(), data, [])
    spans, pos, done = c.ChunkedDecoder().decode(data)
    assert len(spans) == 200 and done and pos == len(data)


def run_simple(parser, data: bytes, cuts: list[int], start: int = 0):
    """simple_requests on every prefix ending at a cut, then on the whole."""
    return [parser.simple_requests(data[:end], start)
            for end in sorted(set(c for c in cuts if start <= c <= len(data))) + [len(data)]]


simple_names = st.sampled_from([b"Host", b"host", b"HOST", b"Connection", b"expect", b"Upgrade",
                                b"Content-Length", b"TRANSFER-ENCODING", b"X", b"Hosts", b"Hos"])


@st.composite
def pipelines(draw):
    """Requests back to back, most of them simple, some not, some bad."""
    out = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 4)) == 0:
            out.append(draw(heads()))
            continue
        fields = b"".join(draw(simple_names) + b": " + draw(st.sampled_from([b"a", b"", b"1"]))
                          + b"\r\n" for _ in range(draw(st.integers(0, 4))))
        out.append(draw(st.sampled_from([b"GET", b"HEAD", b"POST"])) + b" "
                   + draw(st.sampled_from([b"/", b"/x?y=1", b"/%41"])) + b" "
                   + draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"])) + b"\r\n"
                   + draw(st.sampled_from([b"Host: h\r\n", b""])) + fields + b"\r\n")
    return b"".join(out)


@settings(max_examples=1500, deadline=None)
@given(data=pipelines(), cuts=cuts, lims=small, start=st.integers(0, 3),
       kind=st.sampled_from([bytes, bytearray]))
def test_simple_requests_agree(data, cuts, lims, start, kind):
    """Both twins take the same simple requests from every prefix, as the
    same words, and stop at the same place; what each took is what parse()
    finds there, and a simple head is one Host and no framing field."""
    c_twin, py_twin = twins()
    c, py = c_twin.RequestHeadParser(*lims), py_twin.RequestHeadParser(*lims)
    start = min(start, len(data))
    got = run_simple(c, kind(data), cuts, start)
    assert got == run_simple(py, kind(data), cuts, start)
    words, end = got[-1]
    pos, i = start, 0
    while i < len(words):
        head = py_twin.RequestHeadParser(*lims).parse(data, pos)
        assert head is not None and head.minor == 1
        n = words[i + 5]
        assert words[i:i + 5] == [head.end, head.method_start, head.method_end,
                                  head.target_start, head.target_end]
        assert [tuple(words[k:k + 4]) for k in range(i + 6, i + 6 + 4 * n, 4)] == head.headers
        names = [data[a:b].lower() for a, b, _, _ in head.headers]
        assert names.count(b"host") == 1
        assert not {b"connection", b"expect", b"upgrade", b"content-length",
                    b"transfer-encoding"} & set(names)
        pos, i = head.end, i + 6 + 4 * n
    assert end == pos


def test_simple_requests_past_one_c_call():
    """More simple requests than one C call's words hold: all taken, and
    the same as the Python twin's."""
    c_twin, py_twin = twins()
    data = b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\nX: %d\r\n\r\n" % (i, i) for i in range(300))
    data += b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"
    c, py = c_twin.RequestHeadParser(max_header_fields=2), py_twin.RequestHeadParser(max_header_fields=2)
    words, end = c.simple_requests(data)
    assert (words, end) == py.simple_requests(data)
    assert len(words) == 300 * 14 and end == data.index(b"POST")


def test_simple_requests_leave_the_parser_as_it_was():
    """simple_requests parses afresh: a head in progress and a sticky error
    of the parser itself stay as they were."""
    for twin in twins():
        p = twin.RequestHeadParser()
        assert p.parse(b"GET / HTTP/1.1\r\nHo") is None
        assert p.simple_requests(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")[1] == 27
        assert p.parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").end == 27
        bad = twin.RequestHeadParser()
        try:
            bad.parse(b"BAD\r\n\r\n")
        except HttpError:
            pass
        assert bad.simple_requests(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")[1] == 27
        try:
            bad.parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            raise AssertionError("the error is not sticky")
        except HttpError:
            pass
