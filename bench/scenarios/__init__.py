"""The registered scenarios: importing this package registers every one.

A new scenario is a module here that defines a Scenario subclass decorated
with ``bench.scenario.register``, and is listed below (in report order)."""
from . import echo, frame, resp, idle, pack, proto, http, compress, wire, h2, grpc, grpc_vs_rest  # noqa: F401  (registration)
