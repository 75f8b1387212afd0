"""The proto3 JSON mapping (fastnet.proto.json_format) against google.protobuf.json_format."""
from __future__ import annotations

import json
import math

import pytest
from google.protobuf import json_format as gjson
from hypothesis import HealthCheck, assume, given, settings

from fastnet import errors
from fastnet.proto import json_format, message, wire

from proto_helpers import schema
from test_proto_wire import everything

FILES, GOOGLE = schema()


@pytest.fixture(params=["c", "python"])
def impl(request):
    """The wire twin under test."""
    if request.param not in wire.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")
    return wire.impls[request.param]


NAMESPACES = {name: message.build(FILES, twin) for name, twin in wire.impls.items()}


def ns_of(impl):
    return NAMESPACES["c" if impl is wire.impls.get("c") else "python"]


def same_json(a, b):
    """JSON values equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b) or (isinstance(a, (int, float)) and not isinstance(a, bool)
                                             and isinstance(b, (int, float)) and a == b)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(kw=everything())
def test_json_equals_googles(impl, kw):
    E = ns_of(impl).fastnet.test.Everything
    ours = E(**kw)
    theirs = GOOGLE["fastnet.test.Everything"](**kw)
    text = ours.to_json()
    expected = json.loads(gjson.MessageToJson(theirs))
    assert same_json(json.loads(text), expected), (text, expected)
    # each side reads the other's JSON back to an equal message
    assert E.from_json(gjson.MessageToJson(theirs)).SerializeToString() == ours.SerializeToString()
    # google.protobuf cannot read back the shortest text of FLT_MAX, which it
    # writes itself (fastnet can): a deliberate difference
    assume("3.4028235e+38" not in text)
    back = gjson.Parse(text, GOOGLE["fastnet.test.Everything"]())
    assert back.SerializeToString(deterministic=True) == ours.SerializeToString()


def test_names_and_forms(impl):
    E = ns_of(impl).fastnet.test.Everything
    e = E(f_int64=-5, f_uint64=2**64 - 1, f_bytes=b"\xff\x00", f_enum=2, r_enum=[1, 7],
          f_float=0.1, f_double=math.inf, m_bool_bytes={True: b"x"}, m_int32_string={-1: "a"})
    d = json.loads(e.to_json())
    assert d["fInt64"] == "-5" and d["fUint64"] == "18446744073709551615"
    assert d["fBytes"] == "/wA=" and d["fEnum"] == "GREEN" and d["rEnum"] == ["RED", 7]
    assert d["fFloat"] == 0.1 and d["fDouble"] == "Infinity"
    assert d["mBoolBytes"] == {"true": "eA=="} and d["mInt32String"] == {"-1": "a"}
    assert "f_int64" in json.loads(e.to_json(preserve_names=True))
    # both spellings of one field: the later wins, as google.protobuf reads it
    assert E.from_json('{"fInt32": 1, "f_int32": 2}').f_int32 == 2
    # stricter than google.protobuf (a deliberate difference): it drops
    # characters outside the base64 alphabet, fastnet refuses them
    with pytest.raises(errors.ProtoJsonError):
        E.from_json('{"fBytes": "!!"}')
    # input: field names or json names, integers as numbers or strings, null as unset
    e2 = E.from_json('{"f_int64": "-5", "fUint64": 18446744073709551615, "fBytes": "_wA",'
                     ' "fEnum": "GREEN", "fInt32": null, "fDouble": "Infinity"}')
    assert (e2.f_int64, e2.f_uint64, e2.f_bytes, e2.f_enum, e2.f_double) == (
        -5, 2**64 - 1, b"\xff\x00", 2, math.inf)


@pytest.mark.parametrize("text", [
    '{"nope": 1}', '{"fInt32": "x"}', '{"fInt32": 1.5}', '{"fInt32": 4294967296}',
    '{"fUint32": -1}', '{"fBool": 1}', '{"fString": 5}', '{"fBytes": 5}',
    '{"fEnum": "PURPLE"}', '{"rInt32": 5}', '{"fMessage": 5}', '{"cInt32": 1, "cString": "x"}',
    "[1]", "{", '{"fFloat": 1e39}', '{"fDouble": Infinity}',
])
def test_bad_json_is_refused_like_google(impl, text):
    E = ns_of(impl).fastnet.test.Everything
    with pytest.raises(gjson.ParseError):
        gjson.Parse(text, GOOGLE["fastnet.test.Everything"]())
    with pytest.raises(errors.ProtoJsonError):
        E.from_json(text)


KNOWN = [
    {"ts": {"seconds": 1_700_000_000, "nanos": 123_000_000}},
    {"ts": {"seconds": -62135596800}},
    {"ts": {"seconds": 253402300799, "nanos": 999_999_999}},
    {"ts": {"seconds": 5, "nanos": 1000}},
    {"dur": {"seconds": -3, "nanos": -500_000_000}},
    {"dur": {"seconds": 0, "nanos": -1}},
    {"dur": {"seconds": 315576000000}},
    {"i64": {"value": -2**63}, "u32": {"value": 7}, "flag": {"value": False},
     "str": {"value": "s"}, "raw": {"value": b"\x01"}, "dbl": {"value": -0.5},
     "flt": {"value": 0.25}, "i32": {"value": 0}, "u64": {"value": 2**64 - 1}},
    {"mask": {"paths": ["foo_bar.baz", "x"]}},
    {"empty": {}},
    {"stamps": [{"seconds": 1}, {"seconds": 2, "nanos": 5}]},
]


@pytest.mark.parametrize("index", range(len(KNOWN)))
def test_well_known_types_as_google(impl, index):
    K = ns_of(impl).fastnet.wkt.Known
    G = GOOGLE["fastnet.wkt.Known"]
    kw = KNOWN[index]
    ours = K(**kw)
    theirs = G.FromString(ours.SerializeToString())
    assert json.loads(ours.to_json()) == json.loads(gjson.MessageToJson(theirs))
    assert K.from_json(gjson.MessageToJson(theirs)) == ours


def test_struct_value_list_and_any(impl):
    ns = ns_of(impl)
    K = ns.fastnet.wkt.Known
    G = GOOGLE["fastnet.wkt.Known"]
    text = json.dumps({
        "obj": {"a": 1.5, "b": [True, None, "x", {"c": []}], "d": {}},
        "val": [1, {"k": None}], "list": ["z", 2], "values": {"n": None, "s": "t"},
        "any": {"@type": "type.googleapis.com/fastnet.test.Small", "id": 5, "name": "n"},
    })
    pool = G.DESCRIPTOR.file.pool
    ours = K.from_json(text)
    theirs = gjson.Parse(text, G(), descriptor_pool=pool)
    assert ours.SerializeToString() == theirs.SerializeToString(deterministic=True)
    assert json.loads(ours.to_json()) == json.loads(gjson.MessageToJson(theirs,
                                                                         descriptor_pool=pool))
    wkt_any = '{"any": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1.5s"}}'
    ours = K.from_json(wkt_any)
    assert ours.SerializeToString() == gjson.Parse(wkt_any, G(), descriptor_pool=pool).SerializeToString()
    assert json.loads(ours.to_json()) == json.loads(wkt_any.replace("1.5s", "1.500s"))
    assert json.loads(ours.to_json()) == json.loads(gjson.MessageToJson(
        G.FromString(ours.SerializeToString()), descriptor_pool=pool))
    null_value = K.from_json('{"val": null}')
    assert null_value.HasField("val") and null_value.val.WhichOneof("kind") == "null_value"


@pytest.mark.parametrize("text", [
    '{"ts": "2020-13-01T00:00:00Z"}', '{"ts": "2020-01-01 00:00:00Z"}', '{"ts": 5}',
    '{"dur": "1.5"}', '{"dur": "315576000001s"}', '{"mask": 5}',
    '{"any": {"@type": "type.googleapis.com/no.Such", "x": 1}}', '{"i64": "x"}',
])
def test_bad_well_known_json(impl, text):
    K = ns_of(impl).fastnet.wkt.Known
    G = GOOGLE["fastnet.wkt.Known"]
    with pytest.raises(gjson.ParseError):
        gjson.Parse(text, G(), descriptor_pool=G.DESCRIPTOR.file.pool)
    with pytest.raises(errors.ProtoJsonError):
        K.from_json(text)


def test_module_functions(impl):
    S = ns_of(impl).fastnet.test.Small
    s = S(id=1, name="x")
    assert json_format.to_json_value(s) == {"id": 1, "name": "x"}
    assert json_format.from_json_value(S, {"id": "1"}) == S(id=1)
    assert json_format.to_json(s, indent=None) == '{"id": 1, "name": "x"}'


def test_proto2_presence_groups_and_defaults_as_google(impl):
    L = ns_of(impl).fastnet.test2.Legacy
    G = GOOGLE["fastnet.test2.Legacy"]
    for msg in (L(key=1), L(key=1, count=42, values=[1], item=L.Item(x=3, y="q"), level=1,
                             tiny=-math.inf, raw=b"z")):
        theirs = G.FromString(msg.SerializeToString())
        assert json.loads(msg.to_json()) == json.loads(gjson.MessageToJson(theirs))
        assert L.from_json(gjson.MessageToJson(theirs)) == msg
