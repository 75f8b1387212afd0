"""The gRPC interoperability cases both ways: grpcio's client (written in
grpc_interop_peers from the suite's descriptions) against
``python -m fastnet.grpc.interop_server``, and
``python -m fastnet.grpc.interop_client`` against grpcio's server."""
from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest

import grpc_interop_peers as peers
from fastnet.grpc import interop_client
from helpers import GUARD

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_issue_case_is_implemented_both_sides():
    names = [c.__name__ for c in peers.CASES]
    assert names == list(interop_client.CASES)
    assert len(names) == 18


@pytest.fixture(scope="module")
def fastnet_server():
    env = dict(os.environ, PYTHONPATH=ROOT)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fastnet.grpc.interop_server",
                             "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening" in line, line
        yield port
    finally:
        proc.terminate()
        proc.wait(GUARD)


def _free_port() -> int:
    from helpers import free_port
    return free_port()


@pytest.mark.parametrize("case", peers.CASES, ids=lambda c: c.__name__)
def test_grpcio_client_against_fastnet_server(fastnet_server, case):
    with grpc.insecure_channel(f"127.0.0.1:{fastnet_server}") as channel:
        case(peers.T.test_grpc.TestServiceStub(channel), channel)


@pytest.fixture(scope="module")
def grpcio_server():
    server, port = peers.grpcio_server()
    yield port
    server.stop(None)


def test_fastnet_client_against_grpcio_server(grpcio_server):
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-m", "fastnet.grpc.interop_client",
                          "--server_host", "127.0.0.1", "--server_port", str(grpcio_server),
                          "--test_case", "all", "--no_compression_probe"],
                         env=env, capture_output=True, text=True, timeout=GUARD * 4)
    lines = out.stdout.splitlines()
    assert lines == [f"{name}: passed" for name in interop_client.CASES], out.stdout + out.stderr
    assert out.returncode == 0


def test_fastnet_client_against_fastnet_server_with_probes(fastnet_server):
    out = subprocess.run([sys.executable, "-m", "fastnet.grpc.interop_client",
                          "--server_port", str(fastnet_server), "--test_case", "all"],
                         env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                         timeout=GUARD * 4)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_failing_case_fails_the_run(grpcio_server):
    # grpcio's server cannot see the compressed flag: with the probe the case must fail
    out = subprocess.run([sys.executable, "-m", "fastnet.grpc.interop_client",
                          "--server_port", str(grpcio_server),
                          "--test_case", "client_compressed_unary"],
                         env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                         timeout=GUARD * 2)
    assert out.returncode == 1 and "FAILED" in out.stdout
