"""Helpers for the gRPC tests: grpcio's generated code for the interop
protos (grpc_tools.protoc, at test time), and a fastnet.grpc.Server run on
a free port in a background thread."""
from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import fastnet.grpc
from helpers import GUARD, serving

PROTO_ROOT = Path(__file__).resolve().parent / "proto"
TESTING = "src/proto/grpc/testing"
_generated: dict[str, SimpleNamespace] = {}


def pb2() -> SimpleNamespace:
    """grpcio's modules for grpc.testing (test, messages, empty), made by
    protoc from the repository's copies of the interop protos."""
    if "testing" not in _generated:
        out = tempfile.mkdtemp(prefix="fastnet-grpc-pb2-")
        files = [f"{TESTING}/{n}.proto" for n in ("empty", "messages", "test")]
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
                        f"--python_out={out}", f"--grpc_python_out={out}", *files],
                       check=True, timeout=GUARD)
        sys.path.insert(0, out)
        pkg = TESTING.replace("/", ".")
        _generated["testing"] = SimpleNamespace(
            test=importlib.import_module(f"{pkg}.test_pb2"),
            test_grpc=importlib.import_module(f"{pkg}.test_pb2_grpc"),
            messages=importlib.import_module(f"{pkg}.messages_pb2"),
            empty=importlib.import_module(f"{pkg}.empty_pb2"))
    return _generated["testing"]


@contextlib.contextmanager
def serving_grpc(server: fastnet.grpc.Server) -> Iterator[int]:
    """Serve ``server`` on 127.0.0.1 (a free port) in a thread while the block runs."""
    listener = server.listen("127.0.0.1", 0)
    with serving(server):
        yield listener.port
