"""Atheris: the C and Python twins of varint and framing, through the Python API.

Input: a config byte (kind, limit, bare_lf), split points, then the stream.
Both twins are fed the same chunks; they must return the same messages, the
same `buffered` counts and the same error (type and text), and the stream fed
whole must give the same messages and error type as split. The only
exception a decoder may raise is its ProtocolError. Run: fuzz/run diff_framing 30.
"""
from __future__ import annotations

import sys

import atheris

from diff_input import config_and_chunks

with atheris.instrument_imports():
    from fastnet import codec
    from fastnet.errors import ProtocolError

pytwin = codec.impls["python"]  # every codec's Python twin
ctwin = codec.impls["c"]  # FASTNET_REQUIRE_NATIVE=1 (fuzz/run sets it): never absent
LIMITS = (0, 1, 3, 8, 64, 300, 65536, 2**64 - 1)


def decoder(twin, config: int):
    kind = config % 3
    limit = LIMITS[(config >> 2) & 7]
    if kind == 2:
        return twin.LineDecoder(limit, bare_lf=bool(config & 32))
    return twin.LengthPrefixDecoder(limit, header=("be32", "varint")[kind])


def transcript(twin, config: int, chunks: list[bytes]) -> list[object]:
    d = decoder(twin, config)
    events: list[object] = []
    for chunk in chunks:
        d.feed(chunk)
        try:
            while (message := d.next_message()) is not None:
                events.append(message)
        except ProtocolError as exc:
            events.append((type(exc).__name__, str(exc)))
        events.append(d.buffered)
    return events


def varint(twin, data: bytes) -> object:
    try:
        return twin.decode_uvarint(data), twin.decode_svarint(data)
    except ProtocolError as exc:
        return type(exc).__name__, str(exc)


def test_one_input(raw: bytes) -> None:
    config, data, chunks = config_and_chunks(raw)
    expected = transcript(pytwin, config, chunks)
    got = transcript(ctwin, config, chunks)
    if got != expected:
        raise AssertionError(f"C twin {got!r} != Python twin {expected!r}")
    whole = transcript(pytwin, config, [data])

    def summary(events: list[object]) -> tuple[list[object], list[object]]:
        messages = [e for e in events if isinstance(e, bytes)]
        errors = [e[0] for e in events if isinstance(e, tuple)]  # type: ignore[index]
        return messages, errors[:1]

    if summary(whole) != summary(expected):
        raise AssertionError(f"whole {whole!r} != split {expected!r}")
    if varint(ctwin, data) != varint(pytwin, data):
        raise AssertionError(f"varint: C {varint(ctwin, data)!r} != Python {varint(pytwin, data)!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
