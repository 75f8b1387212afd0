"""Message classes (fastnet.proto.message) on both wire twins, against google.protobuf."""
from __future__ import annotations

import enum
import threading

import pytest

from fastnet import errors
from fastnet.proto import message, wire

from proto_helpers import schema

FILES, GOOGLE = schema()


@pytest.fixture(params=["c", "python"])
def impl(request):
    """The wire twin under test."""
    if request.param not in wire.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")
    return wire.impls[request.param]


@pytest.fixture
def ns(impl):
    return message.build(FILES, impl)


def test_namespace_by_package_and_full_name(ns):
    assert ns.fastnet.test.Everything is ns["fastnet.test.Everything"]
    assert ns.fastnet.test.Everything.MStringInt32Entry is ns["fastnet.test.Everything.MStringInt32Entry"]
    assert ns.fastnet.test2.Legacy.Item is ns["fastnet.test2.Legacy.Item"]
    Color = ns.fastnet.test.Color
    assert issubclass(Color, enum.IntEnum)
    assert (Color.RED, Color.NEGATIVE, Color(2).name) == (1, -3, "GREEN")


def test_proto3_defaults_and_keyword_construction(ns):
    E = ns.fastnet.test.Everything
    e = E()
    assert (e.f_int32, e.f_string, e.f_bytes, e.f_bool, e.f_double, e.f_enum) == (0, "", b"", False, 0.0, 0)
    assert e.r_int32 == [] and e.m_string_int32 == {}
    assert e.f_message == ns.fastnet.test.Inner() and not e.HasField("f_message")
    e = E(f_int32=5, r_string=("a", "b"), f_message={"a": 1}, m_int64_message={1: {"s": "x"}})
    assert e.f_int32 == 5 and e.r_string == ["a", "b"]
    assert e.f_message.a == 1 and e.m_int64_message[1].s == "x"
    with pytest.raises(ValueError, match='no field "nope"'):
        E(nope=1)
    with pytest.raises(TypeError):
        E(r_int32="abc")


def test_presence_oneof_and_clear(ns):
    E = ns.fastnet.test.Everything
    e = E(o_int32=0)
    assert e.HasField("o_int32") and e.o_int32 == 0
    assert not e.HasField("o_string") and e.o_string == ""
    e.c_int32 = 5
    assert e.WhichOneof("choice") == "c_int32" and e.HasField("choice")
    e.c_string = "s"
    assert e.WhichOneof("choice") == "c_string" and not e.HasField("c_int32") and e.c_int32 == 0
    e.c_message = ns.fastnet.test.Inner(a=1)
    assert e.WhichOneof("choice") == "c_message"
    e.ClearField("choice")
    assert e.WhichOneof("choice") is None
    e.ClearField("o_int32")
    assert not e.HasField("o_int32")
    e.r_int32.append(1)
    e.ClearField("r_int32")
    assert e.r_int32 == []
    with pytest.raises(ValueError):
        e.HasField("f_int32")        # no presence in proto3
    with pytest.raises(ValueError):
        e.WhichOneof("nope")
    e.f_int32 = 3
    e.Clear()
    assert e == E()


def test_equality_repr_and_listfields(ns):
    I = ns.fastnet.test.Inner
    a, b = I(a=1, s="x"), I(a=1, s="x")
    assert a == b and a != I(a=2) and a != "x"
    assert repr(a) == "Inner(a=1, s='x')"
    assert repr(I()) == "Inner()"
    assert I(a=1, zs=[1]).ListFields() == [("a", 1), ("zs", [1])]
    with pytest.raises(TypeError):
        hash(a)


def test_google_method_names(ns):
    A = ns.fastnet.test.Anchor
    G = GOOGLE["fastnet.test.Anchor"]
    a = A(id=1, name="n", samples=[1, 2], inner={"a": 3}, counts={"x": 1})
    data = a.SerializeToString(deterministic=True)
    assert A.FromString(data) == a
    b = A()
    assert b.ParseFromString(data) == len(data) and b == a
    b.MergeFrom(A(id=9, samples=[3], inner={"s": "t"}, counts={"y": 2}))
    g = G.FromString(data)
    g.MergeFrom(G.FromString(A(id=9, samples=[3], inner={"s": "t"}, counts={"y": 2}).SerializeToString()))
    assert b.SerializeToString() == g.SerializeToString(deterministic=True)
    assert b.samples == [1, 2, 3] and b.inner.a == 3 and b.inner.s == "t"
    c = A()
    c.CopyFrom(a)
    assert c == a and c.samples is not a.samples
    c.MergeFromString(b"\x08\x07")
    assert c.id == 7
    assert a.ByteSize() == len(data) == G.FromString(data).ByteSize()
    with pytest.raises(TypeError):
        c.CopyFrom(ns.fastnet.test.Small())


def test_parse_errors_are_typed(ns):
    with pytest.raises(errors.ProtoDecodeError):
        ns.fastnet.test.Anchor.FromString(b"\x0a\x05ab")
    with pytest.raises(ValueError):
        ns.fastnet.test.Anchor.FromString(b"\x0f")


def test_unknown_fields_survive_a_round_trip_through_an_older_schema(ns):
    E = ns.fastnet.test.Everything
    full = E(f_int32=1, f_string="s", r_message=[{"a": 2}], m_int32_string={1: "x"}).SerializeToString()
    small = ns.fastnet.test.Small.FromString(full)    # field 9 is unknown to Small: kept
    assert small.SerializeToString() != b"" and E.FromString(small.SerializeToString()).f_string == "s"
    assert sorted(E.FromString(small.SerializeToString()).ListFields()) == sorted(E.FromString(full).ListFields())


def test_to_dict_and_from_dict(ns):
    E = ns.fastnet.test.Everything
    e = E(f_int32=2, f_message={"a": 1, "zs": [1]}, r_message=[{"s": "q"}],
          m_int64_message={5: {"a": 5}}, o_string="o")
    d = e.to_dict()
    assert d["f_int32"] == 2 and d["f_message"]["zs"] == [1] and d["r_message"][0]["s"] == "q"
    assert d["m_int64_message"] == {5: {"a": 5, "s": "", "zs": []}}
    assert d["o_string"] == "o" and "o_int32" not in d and "c_int32" not in d
    assert E.from_dict(d) == e


def test_proto2_defaults_and_presence(ns):
    L = ns.fastnet.test2.Legacy
    msg = L()
    assert (msg.count, msg.label, msg.level) == (42, "hello", 2)
    assert not msg.HasField("label")
    msg.label = "hello"
    assert msg.HasField("label") and L.FromString(msg.SerializeToString()).HasField("label")


def test_threads_share_a_class(ns):
    # the C twin releases the GIL in its calls: each thread has its own context
    A = ns.fastnet.test.Anchor
    data = A(id=1, name="x" * 100, samples=list(range(100))).SerializeToString()
    failures = []

    def work():
        for _ in range(300):
            if A.FromString(data).SerializeToString() != data:
                failures.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures and not any(t.is_alive() for t in threads)


def test_grpcio_uses_messages_as_serializers(ns):
    grpc = pytest.importorskip("grpc")
    from concurrent import futures

    Small = ns.fastnet.test.Small

    def echo(request, context):
        return Small(id=request.id + 1, name=request.name.upper(), value=request.value)

    handler = grpc.method_handlers_generic_handler("fastnet.test.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(
            echo, request_deserializer=Small.FromString,
            response_serializer=Small.SerializeToString)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/fastnet.test.Echo/Echo",
                                       request_serializer=Small.SerializeToString,
                                       response_deserializer=Small.FromString)
            reply = call(Small(id=41, name="abc", value=-5), timeout=30)
        assert reply == Small(id=42, name="ABC", value=-5)
    finally:
        server.stop(grace=None).wait(timeout=30)


def test_a_message_without_fields(impl, ns):
    from fastnet.proto import descriptor as d

    # its unknown fields are its only slot
    E = message.build([d.FileDescriptorProto(name="e.proto", package="e", syntax="proto3",
                                             message_type=[d.DescriptorProto(name="E")])],
                      impl).e.E
    assert E().SerializeToString() == b""
    assert E.FromString(b"") == E() and repr(E.FromString(b"")) == "E()"
    back = E.FromString(ns.fastnet.test.Small(id=1).SerializeToString())
    assert back.SerializeToString() == b"\x08\x01"
