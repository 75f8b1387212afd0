"""Framing on both twins (the `impl` fixture).

Every table case runs three ways (h11's tr() style): fed whole, one byte at a
time, and followed by trailing partial data that must stay in `buffered`.
"""
from __future__ import annotations

import array
import importlib
import inspect
import mmap
from dataclasses import dataclass

import pytest

from fastnet import codec, limits
from fastnet.errors import (
    BadFrameHeader,
    FrameTooLarge,
    LineTooLong,
    ProtocolError,
    VarintOverflow,
    VarintOverlong,
)


def be32(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def drive(decoder, chunks):
    """Feed each chunk and drain messages; stop at the first protocol error."""
    messages = []
    for chunk in chunks:
        decoder.feed(chunk)
        try:
            messages.extend(decoder)
        except ProtocolError as exc:
            return messages, exc
    return messages, None


def error_key(exc):
    """What must be equal between two errors: type, message, and the details."""
    key = (type(exc), str(exc), getattr(exc, "size", None), getattr(exc, "limit", None))
    cause = getattr(exc, "cause", None)
    return key + ((type(cause), cause.args) if cause is not None else (None,))


@dataclass
class Case:
    name: str
    framing: str  # "be32" | "varint" | "line" | "line-lf"
    max_size: int
    data: bytes
    messages: list[bytes]
    # (type, size or None when the size seen depends on the split, cause type)
    error: tuple[type, int | None, type | None] | None = None
    # An incomplete message to append in the "trailing" run (default: TRAILING).
    trailing: bytes | None = None

    def trailing_data(self) -> bytes:
        return TRAILING[self.framing] if self.trailing is None else self.trailing


TRAILING = {
    "be32": b"\x00\x00\x00\x05ab",
    "varint": b"\x05ab",
    "line": b"partial\r",
    "line-lf": b"partial\r",
}

CASES = [
    # be32
    Case("be32-nothing", "be32", 16, b"", []),
    Case("be32-one", "be32", 16, be32(b"hello"), [b"hello"]),
    Case("be32-empty-frame", "be32", 16, be32(b""), [b""]),
    Case("be32-many", "be32", 16, be32(b"a") + be32(b"") + be32(b"bc") + be32(b"x" * 16), [b"a", b"", b"bc", b"x" * 16]),
    Case("be32-exactly-max", "be32", 16, be32(b"m" * 16), [b"m" * 16]),
    Case("be32-max-plus-one", "be32", 16, be32(b"m" * 17), [], (FrameTooLarge, 17, None)),
    Case("be32-max-zero", "be32", 0, be32(b"") * 3, [b"", b"", b""], trailing=b"\x00\x00"),
    Case("be32-huge-declared", "be32", 16, b"\xff\xff\xff\xff", [], (FrameTooLarge, 2**32 - 1, None)),
    Case("be32-good-then-too-large", "be32", 16, be32(b"ok") + be32(b"z" * 40), [b"ok"], (FrameTooLarge, 40, None)),
    # varint
    Case("varint-empty-frame", "varint", 300, b"\x00", [b""]),
    Case("varint-one", "varint", 300, b"\x05hello", [b"hello"]),
    Case("varint-two-byte-header-at-max", "varint", 300, b"\xac\x02" + b"v" * 300, [b"v" * 300]),
    Case("varint-max-plus-one", "varint", 300, b"\xad\x02" + b"v" * 301, [], (FrameTooLarge, 301, None)),
    Case("varint-many", "varint", 300, b"\x01a\x00\x02bc", [b"a", b"", b"bc"]),
    Case("varint-overlong-header", "varint", 300, b"\x01a\x80\x00", [b"a"], (BadFrameHeader, None, VarintOverlong)),
    Case("varint-overflow-header", "varint", 300, b"\xff" * 9 + b"\x02", [], (BadFrameHeader, None, VarintOverflow)),
    Case("varint-overflow-11-bytes", "varint", 300, b"\xff" * 11, [], (BadFrameHeader, None, VarintOverflow)),
    Case("varint-2-63-too-large", "varint", 300, b"\x80" * 9 + b"\x01", [], (FrameTooLarge, 2**63, None)),
    # strict lines
    Case("line-one", "line", 8, b"abc\r\n", [b"abc"]),
    Case("line-empty", "line", 8, b"\r\n", [b""]),
    Case("line-many", "line", 8, b"a\r\n\r\nbc\r\n", [b"a", b"", b"bc"]),
    Case("line-lone-cr-is-content", "line", 8, b"a\rb\r\n", [b"a\rb"]),
    Case("line-lone-lf-is-content", "line", 8, b"a\nb\r\n", [b"a\nb"]),
    Case("line-lf-then-crlf", "line", 8, b"\n\r\n", [b"\n"]),
    Case("line-cr-cr-lf", "line", 8, b"a\r\r\n", [b"a\r"]),
    Case("line-exactly-max", "line", 8, b"12345678\r\n", [b"12345678"]),
    Case("line-max-plus-one", "line", 8, b"123456789\r\n", [], (LineTooLong, 9, None)),
    Case("line-max-then-lone-lf", "line", 8, b"12345678\n\r\n", [], (LineTooLong, 9, None)),
    Case("line-long-after-good", "line", 8, b"ok\r\n" + b"y" * 20 + b"\r\n", [b"ok"], (LineTooLong, None, None)),
    Case("line-max-zero", "line", 0, b"\r\n\r\n", [b"", b""], trailing=b"\r"),
    # bare-LF lines
    Case("lf-one", "line-lf", 8, b"abc\n", [b"abc"]),
    Case("lf-crlf", "line-lf", 8, b"abc\r\n", [b"abc"]),
    Case("lf-empties", "line-lf", 8, b"\n\r\n\n", [b"", b"", b""]),
    Case("lf-lone-cr-is-content", "line-lf", 8, b"a\rb\n", [b"a\rb"]),
    Case("lf-cr-cr-lf", "line-lf", 8, b"a\r\r\n", [b"a\r"]),
    Case("lf-exactly-max", "line-lf", 8, b"12345678\n", [b"12345678"]),
    Case("lf-exactly-max-crlf", "line-lf", 8, b"12345678\r\n", [b"12345678"]),
    Case("lf-max-plus-one", "line-lf", 8, b"123456789\n", [], (LineTooLong, 9, None)),
]


def make(impl, framing: str, max_size: int):
    if framing == "line":
        return impl.LineDecoder(max_size)
    if framing == "line-lf":
        return impl.LineDecoder(max_size, bare_lf=True)
    return impl.LengthPrefixDecoder(max_size, framing)


@pytest.mark.parametrize("how", ["whole", "bytewise", "trailing"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cases(impl, case, how):
    trailing = case.trailing_data() if how == "trailing" else b""
    data = case.data + trailing
    if how == "bytewise":
        chunks = [data[i : i + 1] for i in range(len(data))]
    else:
        chunks = [data]
    decoder = make(impl, case.framing, case.max_size)
    messages, error = drive(decoder, chunks)
    assert messages == case.messages
    if case.error is None:
        assert error is None
        assert decoder.buffered == len(trailing)
        return
    kind, size, cause = case.error
    assert type(error) is kind
    if kind is BadFrameHeader:
        assert type(error.cause) is cause
    else:
        assert error.limit == case.max_size
        assert error.size == size if size is not None else error.size > case.max_size


# --- length prefixes --------------------------------------------------------


@pytest.mark.parametrize("header", ["be32", "varint"])
def test_declared_length_checked_with_only_the_header(impl, header):
    decoder = impl.LengthPrefixDecoder(1000, header)
    head = (1 << 30).to_bytes(4, "big") if header == "be32" else impl.encode_uvarint(1 << 30)
    decoder.feed(head)
    with pytest.raises(FrameTooLarge) as info:
        decoder.next_message()
    assert (info.value.size, info.value.limit) == (1 << 30, 1000)
    assert decoder.buffered == len(head) <= 5
    decoder.feed(b"x" * 4096)  # discarded: the stream is already bad
    assert decoder.buffered == len(head)


def test_varint_header_incomplete_is_need_data_until_proven_bad(impl):
    decoder = impl.LengthPrefixDecoder(100, "varint")
    decoder.feed(b"\xff" * 9)
    assert decoder.next_message() is None  # could still be a valid (too large) header
    decoder.feed(b"\x02")
    with pytest.raises(BadFrameHeader) as info:
        decoder.next_message()
    assert type(info.value.cause) is VarintOverflow


def test_varint_overlong_header_fails_before_the_rest_arrives(impl):
    decoder = impl.LengthPrefixDecoder(100, "varint")
    decoder.feed(b"\x80")
    assert decoder.next_message() is None
    decoder.feed(b"\x00")
    with pytest.raises(BadFrameHeader) as info:
        decoder.next_message()
    assert type(info.value.cause) is VarintOverlong


@pytest.mark.parametrize("header", ["be32", "varint"])
@pytest.mark.parametrize("chunk", [64 * 1024, 10 * 1024 * 1024 + 10])
def test_ten_mib_frame(impl, header, chunk):
    payload = bytes(range(256)) * (10 * 1024 * 4)
    assert len(payload) == 10 * 1024 * 1024
    wire = impl.encode_frame(payload, header) + impl.encode_frame(b"after", header)
    decoder = impl.LengthPrefixDecoder(header=header)
    messages = []
    for i in range(0, len(wire), chunk):
        decoder.feed(wire[i : i + chunk])
        messages.extend(decoder)
    assert messages == [payload, b"after"]
    assert decoder.buffered == 0


def test_partial_frame_counts_its_header_as_buffered(impl):
    decoder = impl.LengthPrefixDecoder(100)
    decoder.feed(be32(b"abcdef")[:7])
    assert decoder.next_message() is None
    assert decoder.buffered == 7


# --- lines ------------------------------------------------------------------


@pytest.mark.parametrize("bare_lf", [False, True])
def test_line_delimiter_split_across_feeds(impl, bare_lf):
    decoder = impl.LineDecoder(8, bare_lf)
    decoder.feed(b"abc\r")
    assert decoder.next_message() is None
    assert decoder.buffered == 4
    decoder.feed(b"\n")
    assert decoder.next_message() == b"abc"
    assert decoder.buffered == 0


def test_strict_lone_lf_after_consumed_cr_is_content(impl):
    decoder = impl.LineDecoder(8)
    decoder.feed(b"a\r\n")
    assert decoder.next_message() == b"a"
    decoder.feed(b"\nb\r\n")  # the "\r" before this "\n" belonged to the last line
    assert decoder.next_message() == b"\nb"


@pytest.mark.parametrize("bare_lf", [False, True])
def test_line_limit_edges(impl, bare_lf):
    limit = 16
    exactly = impl.LineDecoder(limit, bare_lf)
    exactly.feed(b"x" * limit)
    assert exactly.next_message() is None

    cr_pending = impl.LineDecoder(limit, bare_lf)
    cr_pending.feed(b"x" * limit + b"\r")  # the "\r" may start "\r\n": not content yet
    assert cr_pending.next_message() is None
    cr_pending.feed(b"\n")
    assert cr_pending.next_message() == b"x" * limit

    over = impl.LineDecoder(limit, bare_lf)
    over.feed(b"x" * (limit + 1))
    with pytest.raises(LineTooLong) as info:
        over.next_message()
    assert (info.value.size, info.value.limit) == (limit + 1, limit)

    cr_was_content = impl.LineDecoder(limit, bare_lf)
    cr_was_content.feed(b"x" * limit + b"\r")
    assert cr_was_content.next_message() is None
    cr_was_content.feed(b"y")
    with pytest.raises(LineTooLong) as info:
        cr_was_content.next_message()
    assert info.value.size == limit + 2


def _scan_offset(impl, decoder) -> int:
    """Where the decoder's next "\\n" search starts, from its first unconsumed byte."""
    if impl is codec.impls.get("c"):
        return decoder._f.scan - decoder._f.start
    return decoder._scan


def _overwrite(impl, decoder, index: int, data: bytes) -> None:
    """Overwrite buffered (already scanned) bytes behind the decoder's back."""
    if impl is codec.impls.get("c"):
        framer = decoder._f
        for i, byte in enumerate(data):
            framer.buf[framer.start + index + i] = bytes([byte])
    else:
        decoder._buf[index : index + len(data)] = data


@pytest.mark.parametrize("bare_lf", [False, True])
def test_line_scan_is_linear_never_rescans(impl, bare_lf):
    """Regression guard against O(n**2) line scanning (a slow-line DoS).

    A 60 KiB line arrives one byte at a time. After the first bytes are
    scanned, a delimiter is planted behind the scan position: a decoder that
    searches from the line's start on every call finds it at once, one that
    resumes where it stopped (O(bytes read)) never looks there again.
    """
    size = 60 * 1024
    decoder = impl.LineDecoder(limits.DEFAULT_MAX_LINE, bare_lf)
    decoder.feed(b"ab")
    assert decoder.next_message() is None
    assert _scan_offset(impl, decoder) == 2
    _overwrite(impl, decoder, 0, b"\r\n")
    for _ in range(size - 2):
        decoder.feed(b"y")
        assert decoder.next_message() is None
        assert _scan_offset(impl, decoder) == decoder.buffered
    decoder.feed(b"\r\n")
    assert decoder.next_message() == b"\r\n" + b"y" * (size - 2)


# --- sticky errors, reset, inputs -------------------------------------------

ERROR_INPUTS = [
    ("be32", be32(b"x" * 9)),
    ("varint", b"\x80\x00"),
    ("line", b"y" * 9),
]


@pytest.mark.parametrize(("framing", "data"), ERROR_INPUTS)
def test_errors_are_sticky(impl, framing, data):
    decoder = make(impl, framing, 8)
    decoder.feed(data)
    with pytest.raises(ProtocolError) as first:
        decoder.next_message()
    buffered = decoder.buffered
    decoder.feed(b"more bytes\r\n")
    assert decoder.buffered == buffered  # fed after the error: discarded
    for _ in range(3):
        with pytest.raises(ProtocolError) as again:
            decoder.next_message()
        assert again.value is not first.value
        assert error_key(again.value) == error_key(first.value)


@pytest.mark.parametrize(("framing", "data"), ERROR_INPUTS)
def test_reset_clears_error_and_buffer(impl, framing, data):
    decoder = make(impl, framing, 8)
    decoder.feed(data)
    with pytest.raises(ProtocolError):
        decoder.next_message()
    decoder.reset()
    assert decoder.buffered == 0
    good = b"ok\r\n" if framing == "line" else impl.encode_frame(b"ok", framing)
    decoder.feed(good)
    assert list(decoder) == [b"ok"]


@pytest.mark.parametrize("framing", ["be32", "varint", "line"])
def test_reset_drops_a_partial_message(impl, framing):
    decoder = make(impl, framing, 8)
    decoder.feed(b"\x00\x00\x00\x05ab" if framing == "be32" else b"\x05ab")
    assert decoder.next_message() is None
    decoder.reset()
    assert decoder.buffered == 0
    good = b"ok\r\n" if framing == "line" else impl.encode_frame(b"ok", framing)
    decoder.feed(good)
    assert list(decoder) == [b"ok"]


@pytest.mark.parametrize(
    "make_input",
    [bytes, bytearray, memoryview, lambda b: memoryview(b"__" + b)[2:], lambda b: array.array("B", b)],
    ids=["bytes", "bytearray", "memoryview", "memoryview-slice", "array"],
)
def test_feed_accepts_bytes_like(impl, make_input):
    decoder = impl.LengthPrefixDecoder()
    decoder.feed(make_input(be32(b"abc")))
    assert decoder.next_message() == b"abc"


def test_feed_non_byte_items_counts_bytes(impl):
    decoder = impl.LineDecoder()
    decoder.feed(array.array("H", [0x6968, 0x0A0D]))  # b"hi\r\n" little-endian
    assert decoder.buffered == 4


@pytest.mark.parametrize("data", ["text\r\n", 5, None])
def test_feed_rejects_non_bytes(impl, data):
    with pytest.raises(TypeError):
        impl.LineDecoder().feed(data)


def test_feed_copies_its_input(impl):
    data = bytearray(b"abc")
    decoder = impl.LineDecoder()
    decoder.feed(data)
    data[:] = b"xyz\r\n"
    decoder.feed(b"\r\n")
    assert decoder.next_message() == b"abc"


@pytest.mark.parametrize(
    ("args", "exc"),
    [((-1,), OverflowError), ((2**64,), OverflowError), (("8",), TypeError), ((8, "be16"), ValueError)],
)
def test_length_prefix_decoder_rejects_bad_arguments(impl, args, exc):
    with pytest.raises(exc):
        impl.LengthPrefixDecoder(*args)


@pytest.mark.parametrize(("args", "exc"), [((-1,), OverflowError), ((2**64,), OverflowError), ((1.5,), TypeError)])
def test_line_decoder_rejects_bad_arguments(impl, args, exc):
    with pytest.raises(exc):
        impl.LineDecoder(*args)


def test_max_u64_limit_is_accepted(impl):
    decoder = impl.LengthPrefixDecoder(2**64 - 1, "varint")
    decoder.feed(b"\xff" * 9 + b"\x01")
    assert decoder.next_message() is None  # 2**64-1 declared and allowed: waits for it
    assert decoder.max_size == 2**64 - 1


# --- encoders -----------------------------------------------------------------


def test_encode_frame(impl):
    assert impl.encode_frame(b"hello") == b"\x00\x00\x00\x05hello"
    assert impl.encode_frame(b"") == b"\x00\x00\x00\x00"
    assert impl.encode_frame(b"hello", "varint") == b"\x05hello"
    assert impl.encode_frame(bytearray(b"x" * 300), "varint") == b"\xac\x02" + b"x" * 300
    assert impl.encode_frame(memoryview(b"hi")) == b"\x00\x00\x00\x02hi"


@pytest.mark.parametrize("header", ["be16", "", None, "BE32"])
def test_encode_frame_rejects_unknown_header(impl, header):
    with pytest.raises(ValueError):
        impl.encode_frame(b"x", header)


def test_encode_frame_be32_overflow(impl):
    try:
        huge = mmap.mmap(-1, 2**32)  # anonymous and never touched: no RAM used
    except (OSError, OverflowError, MemoryError, ValueError):
        pytest.skip("cannot map 4 GiB of address space here")
    with huge:
        with pytest.raises(OverflowError):
            impl.encode_frame(huge)


def test_encode_line(impl):
    assert impl.encode_line(b"PING") == b"PING\r\n"
    assert impl.encode_line(b"") == b"\r\n"
    assert impl.encode_line(memoryview(b"ok")) == b"ok\r\n"


@pytest.mark.parametrize("payload", [b"a\nb", b"a\rb", b"\r", b"\n"])
def test_encode_line_rejects_delimiters(impl, payload):
    with pytest.raises(ValueError):
        impl.encode_line(payload)


@pytest.mark.parametrize("header", ["be32", "varint"])
def test_encode_then_decode(impl, header):
    payloads = [b"", b"a", b"x" * 127, b"y" * 128, bytes(range(256)) * 4]
    decoder = impl.LengthPrefixDecoder(header=header)
    decoder.feed(b"".join(impl.encode_frame(p, header) for p in payloads))
    assert list(decoder) == payloads


# --- selection and shared limits ----------------------------------------------


def test_new_decoder(impl):
    assert isinstance(codec.new_decoder("be32", 10, impl=impl), impl.LengthPrefixDecoder)
    assert isinstance(codec.new_decoder("varint", 10, impl=impl), impl.LengthPrefixDecoder)
    line = codec.new_decoder("line", 10, bare_lf=True, impl=impl)
    assert isinstance(line, impl.LineDecoder)
    line.feed(b"a\n")
    assert line.next_message() == b"a"
    assert line.max_size == 10
    name = next(n for n, m in codec.impls.items() if m is impl)
    assert isinstance(codec.new_decoder("be32", 10, impl=name), impl.LengthPrefixDecoder)


@pytest.mark.parametrize(("framing", "bare_lf"), [("raw", False), ("be16", False), ("be32", True)])
def test_new_decoder_rejects(impl, framing, bare_lf):
    with pytest.raises(ValueError):
        codec.new_decoder(framing, 10, bare_lf, impl=impl)


def test_defaults_come_from_limits_module(impl):
    frames, lines = impl.LengthPrefixDecoder(), impl.LineDecoder()
    assert frames.max_size == limits.DEFAULT_MAX_FRAME
    assert lines.max_size == limits.DEFAULT_MAX_LINE
    for cls, param, value in [
        (impl.LengthPrefixDecoder, "max_frame_size", limits.DEFAULT_MAX_FRAME),
        (impl.LineDecoder, "max_line_length", limits.DEFAULT_MAX_LINE),
    ]:
        assert inspect.signature(cls).parameters[param].default is value
    if impl is codec.impls.get("c"):
        from fastnet import native

        # The limit C enforces is the one Python passed: C has no default of its own.
        assert frames._f.max == limits.DEFAULT_MAX_FRAME
        assert lines._f.max == limits.DEFAULT_MAX_LINE
        assert native.lib.FN_VARINT_MAX_BYTES == limits.VARINT_MAX_BYTES


def test_codec_package_reexports_the_active_twin():
    assert codec.active is codec.impls[codec.backend]
    for name in codec.active.__all__:
        assert getattr(codec, name) is getattr(codec.active, name)


@pytest.mark.parametrize("package", ["varint", "framing", "resp", "http1"])
def test_codec_laid_out_by_protocol(package):
    # Each protocol is a package: its public API re-exports the active twin
    # (c.py or py.py inside it), and both twins are there wherever C is.
    pkg = importlib.import_module(f"fastnet.codec.{package}")
    assert pkg.backend == codec.backend
    assert pkg.active is pkg.impls[pkg.backend]
    assert set(pkg.impls) == set(codec.impls)
    for name, twin in pkg.impls.items():
        assert twin.__name__ == f"fastnet.codec.{package}.{'py' if name == 'python' else 'c'}"
        assert getattr(codec.impls[name], package) is twin
    for name in pkg.active.__all__:
        assert getattr(pkg, name) is getattr(pkg.active, name) is getattr(codec, name)
