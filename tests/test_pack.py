"""fastnet.pack on both twins: msgpack-python (software nobody here wrote)
is the oracle for bytes and values; the twins must agree on every object
and every error."""
from __future__ import annotations

import datetime as dt
import math
import threading

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnet import errors, limits, pack
from fastnet.pack import ExtType, Timestamp

UTC = dt.timezone.utc


@pytest.fixture(params=["c", "python"], scope="module")
def impl(request):
    """The fastnet.pack twin under test."""
    if request.param not in pack.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")
    return pack.impls[request.param]


def twins():
    return [pack.impls[name] for name in sorted(pack.impls)]


# ---------------------------------------------------------------------------
# Strategies: plain values (what msgpack packs alike with use_bin_type=True)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.sampled_from([0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -32, -33, -128,
                       -129, -32768, -32769, -(2**31), -(2**31) - 1, 2**63, -(2**63)])
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
keys = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | st.binary()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=20)
    | st.dictionaries(keys, inner, max_size=20)
    | st.lists(inner, max_size=5).map(tuple),
    max_leaves=60,
)
aware = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                     timezones=st.just(UTC))


def normal(value):
    """What a value unpacks as: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_bytes_equal_msgpack_and_round_trip(impl, value):
    data = impl.packb(value)
    assert data == msgpack.packb(value, use_bin_type=True)
    assert impl.unpackb(data) == normal(value)
    assert msgpack.unpackb(data, strict_map_key=False) == normal(value)


@settings(max_examples=200, deadline=None)
@given(values)
def test_reads_what_msgpack_writes(impl, value):
    assert impl.unpackb(msgpack.packb(value, use_bin_type=True)) == normal(value)


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=True))
def test_floats_bit_for_bit(impl, value):
    data = impl.packb(value)
    assert data == msgpack.packb(value)
    back = impl.unpackb(data)
    assert math.isnan(back) if math.isnan(value) else back == value


@pytest.mark.parametrize("value", [1.5, -0.0, float("inf"), 3.4028234663852886e38, 1e-45])
def test_float32_decodes(impl, value):
    data = msgpack.packb(value, use_single_float=True)
    assert data[0] == 0xCA
    assert impl.unpackb(data) == msgpack.unpackb(data)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 2**200, -(2**100)])
def test_int_out_of_range_names_bit_length(impl, value):
    with pytest.raises(errors.PackOverflow, match=f"int of {value.bit_length()} bits"):
        impl.packb(value)
    with pytest.raises(errors.PackOverflow):
        impl.packb([1, {"k": value}])


def test_int_extremes(impl):
    for value in (2**64 - 1, -(2**63), 2**63, 2**31, -(2**31) - 1, 2**32):
        assert impl.packb(value) == msgpack.packb(value)
        assert impl.unpackb(impl.packb(value)) == value


# ---------------------------------------------------------------------------
# Types marshal cannot carry: the C twin hands them to the Python twin


class MyInt(int):
    pass


class MyStr(str):
    pass


class MyDict(dict):
    pass


def test_subclasses_pack_as_their_base(impl):
    value = [MyInt(5), MyStr("x"), MyDict(a=1), (1, 2), bytearray(b"ab"), memoryview(b"cd")]
    assert impl.packb(value) == msgpack.packb(value, use_bin_type=True)


@pytest.mark.parametrize("size", [1, 2, 4, 8, 16, 0, 3, 255, 256, 70000])
def test_ext_cross_reads(impl, size):
    data = bytes(range(256)) * (size // 256 + 1)
    ours = ExtType(5, data[:size])
    theirs = msgpack.ExtType(5, data[:size])
    packed = impl.packb([ours, {"e": ours}])
    assert packed == msgpack.packb([theirs, {"e": theirs}])
    assert impl.unpackb(packed) == [ours, {"e": ours}]
    assert msgpack.unpackb(packed) == [theirs, {"e": theirs}]


def test_ext_negative_code_and_hook(impl):
    packed = impl.packb(ExtType(-5, b"xy"))
    assert packed == b"\xd5\xfbxy"
    assert impl.unpackb(packed) == ExtType(-5, b"xy")
    assert impl.unpackb(packed, ext_hook=lambda code, data: (code, data)) == (-5, b"xy")
    with pytest.raises(errors.PackError):
        impl.packb(ExtType(200, b""))


# seconds, nanoseconds, payload size: the three sizes of the timestamp extension
STAMPS = [(0, 0, 4), (2**32 - 1, 0, 4), (1, 1, 8), (2**34 - 1, 999999999, 8), (2**32, 0, 8),
          (-1, 0, 12), (2**34, 5, 12), (-(2**35), 999999999, 12)]


@pytest.mark.parametrize("seconds,nanoseconds,size", STAMPS)
def test_timestamp_three_sizes_cross_read(impl, seconds, nanoseconds, size):
    packed = impl.packb(Timestamp(seconds, nanoseconds))
    theirs = msgpack.Timestamp(seconds, nanoseconds)
    assert packed == msgpack.packb(theirs)
    assert len(packed) == {4: 6, 8: 10, 12: 15}[size]
    assert impl.unpackb(packed, timestamp=0) == Timestamp(seconds, nanoseconds)
    assert msgpack.unpackb(packed) == theirs
    assert impl.unpackb(msgpack.packb(theirs), timestamp=2) == seconds * 10**9 + nanoseconds
    expected_dt = msgpack.unpackb(packed, timestamp=3)
    assert impl.unpackb(packed) == expected_dt
    assert impl.unpackb(packed, timestamp=1) == msgpack.unpackb(packed, timestamp=1)


@settings(max_examples=100, deadline=None)
@given(aware)
def test_datetimes_cross_read(impl, value):
    packed = impl.packb({"t": value})
    assert packed == msgpack.packb({"t": value}, datetime=True)
    assert impl.unpackb(packed) == {"t": value}
    assert msgpack.unpackb(packed, timestamp=3) == {"t": value}


def test_naive_datetime_and_unknown_types(impl):
    with pytest.raises(errors.PackError, match="naive datetime"):
        impl.packb([dt.datetime(2020, 1, 1)])
    with pytest.raises(errors.PackTypeError, match="set"):
        impl.packb({"a": {1, 2}})
    with pytest.raises(TypeError):
        impl.packb(object())
    assert impl.packb({1, 2}, default=sorted) == msgpack.packb([1, 2])
    assert impl.packb([object()], default=lambda o: "obj") == msgpack.packb(["obj"])


def test_bad_timestamps(impl):
    with pytest.raises(errors.BadTimestamp):
        impl.unpackb(b"\xd5\xff\x00\x00")  # 2 bytes
    with pytest.raises(errors.BadTimestamp):
        impl.unpackb(b"\xd7\xff" + (10**9 << 34).to_bytes(8, "big"))  # nanoseconds over
    far = b"\xc7\x0c\xff" + (0).to_bytes(4, "big") + (2**62).to_bytes(8, "big")
    with pytest.raises(errors.BadTimestamp, match="datetime range"):
        impl.unpackb(far)
    assert impl.unpackb(far, timestamp=0) == Timestamp(2**62, 0)


def test_surrogates_refused(impl):
    with pytest.raises(errors.PackError, match="UTF-8"):
        impl.packb(["ok", "\ud800"])


def test_use_bin_type_false(impl):
    for value in [b"x" * 40, "y" * 40, {b"k": [b"", "s"]}]:
        assert impl.packb(value, use_bin_type=False) == msgpack.packb(value, use_bin_type=False)


# ---------------------------------------------------------------------------
# Decoding options


def test_raw_use_list_keys(impl):
    data = msgpack.packb({"a": [1, [2]], b"b": "é"})
    assert impl.unpackb(data, raw=True) == {b"a": [1, [2]], b"b": "é".encode()}
    assert impl.unpackb(data, use_list=False) == {"a": (1, (2,)), b"b": "é"}
    array_key = b"\x81\x92\x01\x91\x02\xc0"  # {[1, [2]]: None}
    assert impl.unpackb(array_key) == {(1, (2,)): None}
    with pytest.raises(errors.BadMapKey, match="unhashable"):
        impl.unpackb(b"\x81\x81\x01\x02\xc0")  # {{1: 2}: None}
    with pytest.raises(errors.BadMapKey):
        impl.unpackb(b"\x81\x01\x02", strict_map_key=True)
    assert impl.unpackb(b"\x81\x01\x02") == {1: 2}
    assert impl.unpackb(b"\x81\xa1k\x02", strict_map_key=True) == {"k": 2}


def test_invalid_utf8(impl):
    for bad in [b"\xa2\xc3\x28", b"\xa3\xed\xa0\x80", b"\xa2\xc0\xaf", b"\xa4\xf4\x90\x80\x80", b"\xa1\xff"]:
        with pytest.raises(errors.InvalidUtf8, match="raw=True"):
            impl.unpackb(bad)
        assert impl.unpackb(bad, raw=True) == bad[1:]


def test_truncated_and_extra(impl):
    data = impl.packb({"a": [1, 2, "xyz"]})
    for cut in range(len(data)):
        with pytest.raises(errors.UnpackTruncated):
            impl.unpackb(data[:cut])
    with pytest.raises(errors.ExtraData) as info:
        impl.unpackb(data + b"\x01\x02")
    assert info.value.unpacked == {"a": [1, 2, "xyz"]}
    assert info.value.extra == b"\x01\x02"


def test_repeated_keys_share_only_keys(impl):
    """The C twin writes a repeated map key as a marshal reference: equal
    keys may be one object, values never are."""
    rows = impl.unpackb(impl.packb([{"k": [], "b": {}} for _ in range(3)]))
    assert rows == [{"k": [], "b": {}}] * 3
    rows[0]["k"].append(1)
    rows[1]["b"]["x"] = 2
    assert rows[2] == {"k": [], "b": {}} and rows[0]["k"] == [1]
    raw = impl.unpackb(msgpack.packb([{"k": 1, b"k": 2}, {"k": 3, b"k": 4}]), raw=True)
    assert raw == [{b"k": 2}, {b"k": 4}]
    mixed = impl.unpackb(msgpack.packb([{"k": 1, b"k": 2}, {b"k": 3, "k": 4}]))
    assert mixed == [{"k": 1, b"k": 2}, {b"k": 3, "k": 4}]


def test_reserved_byte(impl):
    with pytest.raises(errors.ReservedByte):
        impl.unpackb(b"\x91\xc1")


# ---------------------------------------------------------------------------
# Limits (fastnet.limits, read by both twins)


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_depth_limit_both_ways(impl):
    ok = nested(limits.DEFAULT_PACK_MAX_DEPTH)
    data = impl.packb(ok)
    assert impl.unpackb(data) == ok
    with pytest.raises(errors.PackDepthError, match="max_depth=512"):
        impl.packb(nested(limits.DEFAULT_PACK_MAX_DEPTH + 1))
    too_deep = b"\x91" * limits.DEFAULT_PACK_MAX_DEPTH + b"\x90"
    with pytest.raises(errors.UnpackLimitExceeded, match="max_depth=512"):
        impl.unpackb(too_deep)
    with pytest.raises(errors.PackDepthError, match="max_depth=3"):
        impl.packb({"a": {"b": {"c": {}}}}, max_depth=3)
    assert impl.unpackb(b"\x91\x91\x90", max_depth=3) == [[[]]]
    with pytest.raises(errors.UnpackLimitExceeded):
        impl.unpackb(b"\x91\x91\x90", max_depth=2)


def test_depth_counts_shared_subobjects(impl):
    """A subobject met twice (marshal writes a reference the second time)
    counts at its own depth each time."""
    inner = nested(300)
    assert impl.packb([inner, inner], max_depth=301) == msgpack.packb([inner, inner])
    with pytest.raises(errors.PackDepthError, match="max_depth=301"):
        impl.packb([inner, [inner]], max_depth=301)
    with pytest.raises(errors.PackDepthError):
        impl.packb([inner, {"k": [[inner]]}], max_depth=302)


def test_self_containing(impl):
    loop = [1, 2]
    loop.append(loop)
    with pytest.raises(errors.SelfContaining):
        impl.packb(loop)
    d = {"a": 1}
    d["self"] = [d]
    with pytest.raises(errors.SelfContaining):
        impl.packb({"x": d})
    shared = [1]
    assert impl.packb([shared, shared, {"k": shared}]) == msgpack.packb([shared, shared, {"k": shared}])


@pytest.mark.parametrize("data,limit", [
    (b"\xdd\xff\xff\xff\xff", "max_array_len"),
    (b"\xdf\xff\xff\xff\xff", "max_map_len"),
    (b"\xdb\xff\xff\xff\xff", "max_str_len"),
    (b"\xc6\xff\xff\xff\xff", "max_bin_len"),
    (b"\xc9\xff\xff\xff\xff\x01", "max_ext_len"),
])
def test_declared_lengths_checked_at_the_header(impl, data, limit):
    with pytest.raises(errors.UnpackLimitExceeded, match=limit) as info:
        impl.unpackb(data)
    assert info.value.limit == limit and info.value.size == 2**32 - 1
    u = impl.Unpacker()
    u.feed(data[:5])  # the header alone: no payload needed to refuse it
    with pytest.raises(errors.UnpackLimitExceeded, match=limit):
        next(u)
    with pytest.raises(errors.UnpackLimitExceeded):  # sticky
        next(u)
    u.reset()
    u.feed(b"\x01")
    assert list(u) == [1]


def test_declared_count_never_preallocates(impl):
    # dd ff ff ff ff accepted by the limits: only what arrives is stored
    u = impl.Unpacker(max_array_len=2**32 - 1, max_buffer_size=1 << 20)
    u.feed(b"\xdd\xff\xff\xff\xff" + b"\x01" * 1000)
    assert list(u) == []
    assert u.buffered == 1005


@pytest.mark.parametrize("option,data", [
    ("max_str_len", b"\xa5hello"), ("max_bin_len", b"\xc4\x05hello"),
    ("max_ext_len", b"\xd7\x01" + b"x" * 8), ("max_array_len", b"\x95" + b"\x00" * 5),
    ("max_map_len", b"\x85" + b"\x00" * 10),
])
def test_small_limits(impl, option, data):
    with pytest.raises(errors.UnpackLimitExceeded, match=f"exceeds {option}=4"):
        impl.unpackb(data, **{option: 4})
    impl.unpackb(data, **{option: 8})


def test_buffer_limits(impl):
    with pytest.raises(errors.UnpackLimitExceeded, match="max_buffer_size"):
        impl.unpackb(b"\xc4\x05hello", max_buffer_size=6)
    u = impl.Unpacker(max_buffer_size=8)
    u.feed(b"\xc4\x05hel")
    with pytest.raises(errors.BufferFull, match="max_buffer_size=8"):
        u.feed(b"lo!!!!")
    u.feed(b"lo")
    assert list(u) == [b"hello"]
    u.feed(b"\x01" * 8)  # the returned object no longer counts
    assert list(u) == [1] * 8


# ---------------------------------------------------------------------------
# The Unpacker


def test_unpacker_split_everywhere(impl):
    objs = [{"a": [1, 2.5, "é" * 40]}, ExtType(3, b"abc"), [], b"x" * 300, dt.datetime(2020, 1, 1, tzinfo=UTC)]
    data = b"".join(impl.packb(o) for o in objs)
    for cut in range(len(data) + 1):
        u = impl.Unpacker()
        u.feed(data[:cut])
        out = list(u)
        u.feed(data[cut:])
        out += list(u)
        assert out == objs, cut


@settings(max_examples=150, deadline=None)
@given(st.lists(values, max_size=5), st.data())
def test_unpacker_random_splits_equal_one_feed(impl, objs, data):
    stream = b"".join(msgpack.packb(o, use_bin_type=True) for o in objs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    u = impl.Unpacker()
    out = []
    start = 0
    for cut in cuts + [len(stream)]:
        u.feed(stream[start:cut])
        start = cut
        out += list(u)
    assert out == [normal(o) for o in objs]
    assert u.buffered == 0


@pytest.mark.parametrize("name", ["ints", "str", "dicts"])
def test_unpacker_is_linear_in_bytes_fed(impl, name):
    """Fed one byte at a time, no item is parsed twice: the work counter
    (items parsed, attempts that need more bytes included) stays within the
    bytes fed plus the items, never growing with the square of the size."""
    value = {"ints": list(range(5000)), "str": "s" * 50000,
             "dicts": [{"k": i, "v": [i, "x"]} for i in range(1000)]}[name]
    data = impl.packb(value)
    u = impl.Unpacker()
    got = []
    for i in range(len(data)):
        u.feed(data[i : i + 1])
        got += list(u)
    assert got == [value]
    assert u.work <= 2 * len(data) + 2


def test_unpacker_error_is_sticky_and_names_itself(impl):
    u = impl.Unpacker()
    u.feed(b"\x01\x92\x01\xc1\x02")
    assert next(u) == 1
    with pytest.raises(errors.ReservedByte):
        next(u)
    u.feed(b"\x03")
    with pytest.raises(errors.ReservedByte):
        next(u)


# ---------------------------------------------------------------------------
# Differential: both twins, same bytes, same answer


def outcome(twin, data, **options):
    try:
        return ("ok", twin.unpackb(data, **options))
    except errors.UnpackError as exc:
        return ("error", type(exc).__name__, str(exc))


def stream_outcome(twin, data, cuts):
    u = twin.Unpacker()
    out = []
    start = 0
    try:
        for cut in cuts + [len(data)]:
            u.feed(data[start:cut])
            start = cut
            out += list(u)
    except errors.UnpackError as exc:
        out.append(("error", type(exc).__name__, str(exc)))
    return out


def same(a, b):
    return msgpack.packb(a, default=repr) == msgpack.packb(b, default=repr)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64), st.sampled_from([{}, {"raw": True}, {"use_list": False},
                                                 {"strict_map_key": True}, {"timestamp": 0}]))
def test_random_bytes_same_result_or_error(data, options):
    results = [outcome(t, data, **options) for t in twins()]
    assert all(same(r, results[0]) for r in results), results


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.data())
def test_mutated_bytes_same_result_or_error(value, data):
    packed = bytearray(msgpack.packb(value, use_bin_type=True))
    for _ in range(data.draw(st.integers(1, 4))):
        if packed:
            packed[data.draw(st.integers(0, len(packed) - 1))] = data.draw(st.integers(0, 255))
    packed = bytes(packed[: data.draw(st.integers(0, len(packed)))]) + data.draw(st.binary(max_size=3))
    results = [outcome(t, packed) for t in twins()]
    assert all(same(r, results[0]) for r in results), results
    cuts = sorted(data.draw(st.lists(st.integers(0, len(packed)), max_size=4)))
    streams = [stream_outcome(t, packed, cuts) for t in twins()]
    assert all(same(s, streams[0]) for s in streams), streams


def test_twins_agree_on_pack_errors():
    loop = []
    loop.append(loop)
    for bad in [2**64, {1, 2}, "\udc00", loop, dt.datetime(2000, 1, 1), nested(600), ExtType(999, b"")]:
        seen = set()
        for twin in twins():
            try:
                twin.packb(bad)
                seen.add("ok")
            except errors.PackError as exc:
                seen.add((type(exc).__name__, str(exc)))
        assert len(seen) == 1, seen


def test_threads_share_nothing(impl):
    docs = [{"n": i, "s": "x" * i, "l": list(range(i))} for i in range(50)]
    failures = []

    def work():
        for _ in range(50):
            for doc in docs:
                if impl.unpackb(impl.packb(doc)) != doc:
                    failures.append(doc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures


def test_option_checks(impl):
    with pytest.raises(TypeError):
        impl.packb([], max_depth="deep")
    with pytest.raises(OverflowError):
        impl.packb([], max_depth=-1)
    with pytest.raises(TypeError):
        impl.packb([], default=5)
    with pytest.raises(ValueError):
        impl.unpackb(b"\x01", timestamp=7)
    with pytest.raises(TypeError):
        impl.Unpacker(ext_hook=3)


def test_package_api():
    assert pack.backend in pack.impls
    assert pack.packb is pack.impls[pack.backend].packb
    assert pack.unpackb(pack.packb({"a": 1})) == {"a": 1}
