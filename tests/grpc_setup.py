"""A ``setup(server)`` for ``python -m fastnet.serve --protocol grpc --handler
grpc_setup:setup`` in the tests: the interop TestService and reflection."""
from fastnet.grpc import reflection
from fastnet.grpc.interop_server import T, TestServicer


def setup(server):
    server.add_service(T.TestService, TestServicer())
    reflection.add_reflection(server)
