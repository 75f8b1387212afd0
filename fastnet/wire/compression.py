"""Per-message compression of wire bodies: none, zlib, zstd and lz4.

A compressed body is the uncompressed length (4 bytes, big-endian) then the
codec's stream. Decompression is bounded: a declared length over the limit
is refused before any work, and the codec is asked for at most limit + 1
bytes, so a small body that would expand to gigabytes costs no more than
the limit. The actual length must equal the declared one.

``compress`` returns None when a body is below the codec's threshold or
when compressing did not make it smaller: a frame is never sent bigger.
The thresholds come from ``python -m bench compress``'s end-to-end run
(bench/report/compress.md: wire requests of fastnet.pack documents over
tbf-shaped links between two network namespaces): every codec pays from
4 KiB on 100 Mbit/s (and from 256 B on 10 Mbit/s); at 1 Gbit/s lz4 and
zstd pay from 16 KiB (below tbf's 12.5 KB bucket the run cannot shape;
adding the serialization time back, lz4 pays at 4 KiB and costs at 1 KiB)
and zlib never. So each threshold is 4 KiB: the size from which each
codec pays on every link up to 100 Mbit/s, and lz4 (and zstd, at break
even) at 1 Gbit/s too.
"""
from __future__ import annotations

import io
import threading
import zlib
from typing import Callable, NamedTuple, Optional

from ..errors import WireDecompressError


class Codec(NamedTuple):
    """One compression codec: its flag number, name, default threshold
    (bytes: bodies shorter than this are sent as they are) and functions."""

    id: int
    name: str
    threshold: int
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes, int], bytes]  # (stream, at most n bytes) -> bytes


def _zlib_decompress(data: bytes, limit: int) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise WireDecompressError("zlib", f"corrupt stream ({exc})") from None
    return out


CODECS: dict[str, Codec] = {
    "zlib": Codec(1, "zlib", 4096, lambda b: zlib.compress(b, 6), _zlib_decompress),
}

try:
    import zstandard

    _zstd = threading.local()  # zstandard's contexts are not thread-safe: one per thread

    def _zstd_compress(data: bytes) -> bytes:
        if not hasattr(_zstd, "c"):
            _zstd.c = zstandard.ZstdCompressor(level=3)
        return bytes(_zstd.c.compress(data))

    def _zstd_decompress(data: bytes, limit: int) -> bytes:
        if not hasattr(_zstd, "d"):
            _zstd.d = zstandard.ZstdDecompressor()
        try:
            with _zstd.d.stream_reader(io.BytesIO(data)) as reader:
                return reader.read(limit + 1)
        except zstandard.ZstdError as exc:
            raise WireDecompressError("zstd", f"corrupt stream ({exc})") from None

    CODECS["zstd"] = Codec(2, "zstd", 4096, _zstd_compress, _zstd_decompress)
except ImportError:  # pragma: no cover - the test extra installs it
    pass

try:
    import lz4.frame  # type: ignore[import-untyped]

    def _lz4_decompress(data: bytes, limit: int) -> bytes:
        try:
            return lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=limit + 1)
        except RuntimeError as exc:
            raise WireDecompressError("lz4", f"corrupt stream ({exc})") from None

    CODECS["lz4"] = Codec(3, "lz4", 4096, lambda b: lz4.frame.compress(b, store_size=False),
                          _lz4_decompress)
except ImportError:  # pragma: no cover - the test extra installs it
    pass

#: Codecs by the number carried in the frame flags' bits 0-2.
BY_ID: dict[int, Codec] = {c.id: c for c in CODECS.values()}


def compress(codec: Codec, body: bytes, threshold: Optional[int] = None) -> Optional[bytes]:
    """The compressed form of body, or None when it is not worth sending
    (shorter than the threshold, or not smaller once compressed)."""
    if len(body) < (codec.threshold if threshold is None else threshold):
        return None
    packed = len(body).to_bytes(4, "big") + codec.compress(body)
    return packed if len(packed) < len(body) else None


def decompress(codec: Codec, data: bytes, limit: int) -> bytes:
    """The body data decompresses to; WireDecompressError if it is corrupt,
    declares or yields a length other than its own, or more than limit."""
    if len(data) < 4:
        raise WireDecompressError(codec.name, "no length prefix")
    declared = int.from_bytes(data[:4], "big")
    if declared > limit:
        raise WireDecompressError(codec.name, f"declares {declared} bytes, over max_body={limit}")
    out = codec.decompress(data[4:], limit)
    if len(out) > limit:
        raise WireDecompressError(codec.name, f"expands past max_body={limit}")
    if len(out) != declared:
        raise WireDecompressError(codec.name, f"declared {declared} bytes, produced {len(out)}")
    return out
