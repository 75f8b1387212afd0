"""Services from fastnet.grpc.load (fastnet.proto messages, plain and
async servicers), health and reflection against grpcio's own clients of
them (grpcio-health-checking, grpcio-reflection), the call-path hooks,
and ``python -m fastnet.serve --protocol grpc``."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase)

import fastnet.grpc
from fastnet.grpc import health, reflection
from fastnet.grpc.interop_server import T as OM
from fastnet.grpc.interop_server import TestServicer
from grpc_helpers import serving_grpc
from fastnet import native
from helpers import GUARD, cli_server

ENGINE = "c" if native.backend == "c" else "python"

PROTO = """
syntax = "proto3";
package demo;
message Num { int64 n = 1; }
service Calc {
  rpc Square(Num) returns (Num);
  rpc Count(Num) returns (stream Num);
  rpc Sum(stream Num) returns (Num);
  rpc Running(stream Num) returns (stream Num);
}
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("proto")
    (d / "demo.proto").write_text(PROTO)
    ns = fastnet.grpc.load(d / "demo.proto", include=[d])
    out = tmp_path_factory.mktemp("pb2")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{d}", f"--python_out={out}",
                    f"--grpc_python_out={out}", "demo.proto"], check=True, timeout=GUARD)
    sys.path.insert(0, str(out))
    import demo_pb2
    import demo_pb2_grpc
    return ns, demo_pb2, demo_pb2_grpc


class AsyncCalc:
    async def Square(self, request, context):
        return type(request)(n=request.n * request.n)

    async def Count(self, request, context):
        for i in range(request.n):
            yield type(request)(n=i)

    async def Sum(self, requests, context):
        total = 0
        async for r in requests:
            total += r.n
        return type(r)(n=total)

    async def Running(self, requests, context):
        total = 0
        async for r in requests:
            total += r.n
            yield type(r)(n=total)


class PlainCalc:
    def Square(self, request, context):
        return type(request)(n=request.n * request.n)

    def Count(self, request, context):
        return iter([type(request)(n=i) for i in range(request.n)])

    def Sum(self, requests, context):
        return self._num(sum(r.n for r in requests))

    def Running(self, requests, context):
        total = 0
        for r in requests:
            total += r.n
            yield self._num(total)

    _num = None


@pytest.mark.parametrize("servicer", [AsyncCalc, PlainCalc])
def test_fastnet_service_all_kinds_both_clients(demo, servicer):
    ns, pb2, pb2_grpc = demo
    impl = servicer()
    if servicer is PlainCalc:
        impl._num = lambda n: ns.demo.Num(n=n)
    server = fastnet.grpc.Server(engine=ENGINE)
    server.add_service(ns.demo.Calc, impl)
    assert [m for m in ns.demo.Calc.methods] == ["Square", "Count", "Sum", "Running"]
    with serving_grpc(server) as port:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:      # grpcio, google.protobuf
            stub = pb2_grpc.CalcStub(ch)
            assert stub.Square(pb2.Num(n=12), timeout=GUARD).n == 144
            assert [x.n for x in stub.Count(pb2.Num(n=4), timeout=GUARD)] == [0, 1, 2, 3]
            assert stub.Sum(iter([pb2.Num(n=i) for i in range(5)]), timeout=GUARD).n == 10
            assert [x.n for x in stub.Running(iter([pb2.Num(n=i) for i in (1, 2, 3)]),
                                              timeout=GUARD)] == [1, 3, 6]
        with fastnet.grpc.Channel(f"127.0.0.1:{port}") as ch:       # ours, fastnet.proto
            stub = ch.stub(ns.demo.Calc)
            assert stub.Square(ns.demo.Num(n=-3), timeout=GUARD).n == 9
            assert [x.n for x in stub.Count(ns.demo.Num(n=2), timeout=GUARD)] == [0, 1]
            assert stub.Sum(iter([ns.demo.Num(n=7)] * 3), timeout=GUARD).n == 21
            assert [x.n for x in stub.Running(iter([ns.demo.Num(n=5)] * 2),
                                              timeout=GUARD)] == [5, 10]


def test_generic_handler_api(demo):
    ns, pb2, pb2_grpc = demo
    handlers = {"Square": grpc.unary_unary_rpc_method_handler(
        lambda r, c: pb2.Num(n=r.n + 1), request_deserializer=pb2.Num.FromString,
        response_serializer=pb2.Num.SerializeToString)}
    server = fastnet.grpc.Server(engine=ENGINE)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.Calc", handlers),))
    with serving_grpc(server) as port, grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        assert pb2_grpc.CalcStub(ch).Square(pb2.Num(n=1), timeout=GUARD).n == 2
        with pytest.raises(grpc.RpcError) as e:
            list(pb2_grpc.CalcStub(ch).Count(pb2.Num(n=1), timeout=GUARD))
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_health_check_and_watch_with_grpcio_health_client():
    server = fastnet.grpc.Server(engine=ENGINE)
    h = health.add_health(server)
    with serving_grpc(server) as port, grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        assert stub.Check(health_pb2.HealthCheckRequest(), timeout=GUARD).status == \
            health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as e:
            stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=GUARD)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        watch = stub.Watch(health_pb2.HealthCheckRequest(service="svc"), timeout=GUARD)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        h.set("svc", h.SERVING)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        h.set("svc", h.NOT_SERVING)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        assert stub.Check(health_pb2.HealthCheckRequest(service="svc"), timeout=GUARD).status \
            == health_pb2.HealthCheckResponse.NOT_SERVING


def test_reflection_with_grpcio_reflection_client():
    server = fastnet.grpc.Server(engine=ENGINE)
    server.add_service(OM.TestService, TestServicer())
    health.add_health(server)
    reflection.add_reflection(server)
    with serving_grpc(server) as port, grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        db = ProtoReflectionDescriptorDatabase(ch)
        services = db.get_services()
        assert "grpc.testing.TestService" in services and "grpc.health.v1.Health" in services
        pool = descriptor_pool.DescriptorPool(db)
        svc = pool.FindServiceByName("grpc.testing.TestService")
        assert [m.name for m in svc.methods][:3] == ["EmptyCall", "UnaryCall",
                                                     "CacheableUnaryCall"]
        method = svc.methods_by_name["StreamingOutputCall"]
        assert method.output_type.full_name == "grpc.testing.StreamingOutputCallResponse"
        assert method.server_streaming and not method.client_streaming
        msg = pool.FindMessageTypeByName("grpc.testing.SimpleRequest")
        assert msg.fields_by_name["payload"].message_type.full_name == "grpc.testing.Payload"
        with pytest.raises(KeyError):
            pool.FindMessageTypeByName("grpc.testing.NoSuchThing")


class Recorder:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def call_started(self, call):
        self.log.append((self.name, "start", call.method))
        if dict(call.invocation_metadata).get("x-deny") == self.name:
            raise fastnet.grpc.Abort(fastnet.grpc.StatusCode.PERMISSION_DENIED, "no")

    async def message_received(self, call, message):
        self.log.append((self.name, "in", message.n))
        return type(message)(n=message.n + 1)

    def message_sending(self, call, message):
        self.log.append((self.name, "out", message.n))
        return message

    def call_ended(self, call):
        self.log.append((self.name, "end", call.code.name, call.messages_in, call.messages_out))


def test_hooks_see_the_call_path_in_order(demo):
    ns, pb2, pb2_grpc = demo
    log: list = []
    server = fastnet.grpc.Server(engine=ENGINE, hooks=[Recorder("a", log), Recorder("b", log)])
    server.add_service(ns.demo.Calc, AsyncCalc())
    with serving_grpc(server) as port, grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = pb2_grpc.CalcStub(ch)
        assert stub.Square(pb2.Num(n=3), timeout=GUARD).n == 25    # (3 + 1 + 1) ** 2
        assert log == [("a", "start", "/demo.Calc/Square"), ("b", "start", "/demo.Calc/Square"),
                       ("a", "in", 3), ("b", "in", 4), ("a", "out", 25), ("b", "out", 25),
                       ("b", "end", "OK", 1, 1), ("a", "end", "OK", 1, 1)]
        log.clear()
        with pytest.raises(grpc.RpcError) as e:
            stub.Square(pb2.Num(n=3), metadata=[("x-deny", "b")], timeout=GUARD)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert log == [("a", "start", "/demo.Calc/Square"), ("b", "start", "/demo.Calc/Square"),
                       ("b", "end", "PERMISSION_DENIED", 0, 0),
                       ("a", "end", "PERMISSION_DENIED", 0, 0)]


def test_protocol_grpc_on_the_command_line():
    with cli_server("--protocol", "grpc", "--handler", "grpc_setup:setup",
                    "--grpc-compression", "gzip") as (proc, port, line):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            db = ProtoReflectionDescriptorDatabase(ch)
            assert "grpc.testing.TestService" in db.get_services()
        with fastnet.grpc.Channel(f"127.0.0.1:{port}") as ch:
            stub = ch.stub(OM.TestService)
            r = stub.UnaryCall(OM.SimpleRequest(response_size=10), timeout=GUARD)
            assert r.payload.body == bytes(10)


def test_protocol_grpc_without_handler_serves_health():
    with cli_server("--protocol", "grpc") as (proc, port, line):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                     timeout=GUARD)
            assert r.status == health_pb2.HealthCheckResponse.SERVING


def test_drain_lets_calls_in_flight_finish(demo):
    started, release = threading.Event(), threading.Event()

    class Slow:
        async def Square(self, request, context):
            started.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait, GUARD)
            return type(request)(n=request.n * request.n)
    demo_ns = demo[0]
    server = fastnet.grpc.Server(engine=ENGINE)
    server.add_service(demo_ns.demo.Calc, Slow())
    with serving_grpc(server) as port, fastnet.grpc.Channel(f"127.0.0.1:{port}") as ch:
        future = ch.stub(demo_ns.demo.Calc).Square.future(demo_ns.demo.Num(n=9), timeout=GUARD)
        # Drain once the call has reached its handler (a drain that began
        # before the request arrived would rightly refuse it).
        assert started.wait(GUARD)
        server.shutdown(timeout=GUARD)      # the call is in flight: the drain waits for it
        release.set()
        assert future.result(GUARD).n == 81
