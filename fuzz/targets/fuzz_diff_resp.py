"""Atheris: the C and Python twins of RESP, requests and replies, through
the Python API.

Input: a config byte (requests or replies, limits), split points, then the
stream. Both twins get the same chunks, alternating feed()+commands(),
feed_commands() and next_command() (next_reply() for replies); they must
agree on every command or reply, `buffered`, and the error (type and
text). The only exception a decoder may raise is RespProtocolError. Run:
fuzz/run diff_resp 30.
"""
from __future__ import annotations

import math
import sys

import atheris

from diff_input import config_and_chunks

with atheris.instrument_imports():
    from fastnet import codec
    from fastnet.errors import RespProtocolError

pytwin = codec.impls["python"]  # every codec's Python twin
ctwin = codec.impls["c"]
SMALL = (0, 5, 64, 1 << 20)


def canon(value: object) -> object:
    """Replies compared by value; NaN equal to itself; types kept."""
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [canon(v) for v in value])
    if isinstance(value, dict):
        return ("dict", sorted((repr(canon(k)), repr(canon(v))) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(repr(canon(v)) for v in value))
    return (type(value).__name__, value)


def transcript(twin, config: int, chunks: list[bytes]) -> list[object]:
    limit = SMALL[(config >> 1) & 3]
    if config & 1:
        d = twin.RespReplyDecoder(max_bulk_len=limit, max_multibulk_len=SMALL[(config >> 3) & 3],
                                  max_depth=(1, 4, 16, 128)[(config >> 5) & 3])
    else:
        d = twin.RespRequestDecoder(max_bulk_len=limit, max_multibulk_len=SMALL[(config >> 3) & 3],
                                    max_inline_len=SMALL[(config >> 5) & 3] or 16,
                                    client_query_buffer_limit=(64, 512, 4096, 1 << 30)[config >> 6 & 3])
    events: list[object] = []
    for i, chunk in enumerate(chunks):
        try:
            if config & 1:
                d.feed(chunk)
                while (reply := d.next_reply()) is not codec.resp.NEED_DATA:
                    events.append(canon(reply))
            elif i % 3 == 0:
                events.append(d.feed_commands(chunk))
            elif i % 3 == 1:
                d.feed(chunk)
                events.append(d.commands())
            else:
                d.feed(chunk)
                while (command := d.next_command()) is not None:
                    events.append(command)
        except RespProtocolError as exc:
            events.append((type(exc).__name__, str(exc)))
        events.append(d.buffered)
    return events


def test_one_input(raw: bytes) -> None:
    config, _, chunks = config_and_chunks(raw)
    expected = transcript(pytwin, config, chunks)
    got = transcript(ctwin, config, chunks)
    if got != expected:
        raise AssertionError(f"C twin {got!r} != Python twin {expected!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
