"""Helpers shared by the RESP tests: comparing reply values exactly (types,
nan, -0.0) and hypothesis strategies for reply values and byte splits."""
from __future__ import annotations

from hypothesis import strategies as st

from fastnet.codec.resp._common import BigNumber, Push, RespError, Verbatim
from fastnet.errors import RespProtocolError

INT64 = st.integers(-(2**63), 2**63 - 1)


def canon(value: object) -> object:
    """A form of value that compares equal only for the same types and values
    (bool is not int, Push is not list, BigNumber is not int, nan equals nan,
    -0.0 is not 0.0). Dicts compare in order: both sides insert in wire order."""
    kind = type(value).__name__
    if isinstance(value, float):
        return (kind, repr(value))
    if isinstance(value, (list, tuple)):
        return (kind, [canon(item) for item in value])
    if isinstance(value, dict):
        return (kind, [(canon(k), canon(v)) for k, v in value.items()])
    if isinstance(value, (set, frozenset)):
        return (kind, sorted(repr(canon(item)) for item in value))
    return (kind, value)


def drive_replies(decoder, chunks) -> tuple[list[object], RespProtocolError | None]:
    """Feed each chunk and drain replies; stop at the first protocol error."""
    replies: list[object] = []
    for chunk in chunks:
        decoder.feed(chunk)
        try:
            while batch := decoder.replies():
                replies += batch
        except RespProtocolError as exc:
            return replies, exc
    return replies, None


@st.composite
def splits(draw, data: bytes) -> list[bytes]:
    """data cut at random points (empty chunks included), or byte by byte."""
    if draw(st.integers(0, 9)) == 0:
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=16)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def _no_newline(data: bytes) -> bool:
    return b"\r" not in data and b"\n" not in data


# Scalars that survive encode -> decode in RESP3 with their exact type.
hashable_scalars = st.one_of(
    st.binary(max_size=12),
    INT64,
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.builds(RespError, st.binary(max_size=12)),
    st.builds(BigNumber, st.integers(-(10**40), 10**40)),
    st.builds(Verbatim, st.binary(min_size=3, max_size=3), st.binary(max_size=12)),
)
scalars = st.one_of(hashable_scalars, st.floats(allow_nan=True))
# Map keys and set members: what a decoder freezes aggregates into.
keys = st.recursive(
    hashable_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(tuple), st.frozensets(inner, max_size=3)),
    max_leaves=6,
)
resp3_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(Push),
        st.dictionaries(keys, inner, max_size=3),
        st.sets(keys, max_size=3),
    ),
    max_leaves=24,
)
# RESP2 has no type for the others: they come back as arrays, ints, bulks.
resp2_values = st.recursive(
    st.one_of(st.binary(max_size=12), INT64, st.none(),
              st.builds(RespError, st.binary(max_size=12).filter(_no_newline))),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=24,
)
