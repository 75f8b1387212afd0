"""The C codec and engine tests, again, against an extension built with
AddressSanitizer and UndefinedBehaviorSanitizer (FASTNET_SANITIZE, build.py).

The sanitized extension is built outside the tree (build.py --out, a copy
of the package in a temporary directory) and the tests run in a subprocess
whose working directory is that copy, so `import fastnet` finds it first;
gcc's ASan and UBSan runtimes are preloaded into the Python process
(CPython itself is not instrumented) with leak detection off (CPython keeps
memory until exit) and PYTHONMALLOC=malloc, so a C read past a Python
buffer lands in an ASan redzone instead of inside a pymalloc arena. The
first report aborts (-fno-sanitize-recover=all). ARCHITECTURE.md ("C rigor")
has the same as one command.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

#: The C codec tests (both twins: the Python twin is the reference) and the
#: engine tests that run in-process (no CLI subprocesses, no redis-server:
#: the preloaded runtime would follow them).
SANITIZED_TESTS = [
    "test_varint.py", "test_framing.py", "test_resp_requests.py", "test_resp_replies.py",
    "test_codec_differential.py", "test_resp_differential.py", "test_guard_pages.py",
    "test_cengine.py", "test_direct.py",
    # every C parser that joined since: MessagePack, protobuf, HTTP/1.1, the
    # wire protocol's frames, HPACK and HTTP/2 frames
    "test_pack.py", "test_proto_wire.py", "test_http1_codec.py", "test_http1_differential.py",
    "test_wire_codec.py", "test_hpack.py", "test_h2frame.py",
    # the C engine's HTTP/1.1 kata answers (csrc/loop.c)
    "test_http_kata.py",
    "test_wire_batch.py",  # the wire server session's C path
    "test_wire_engine.py",  # the wire protocol framed by the C engine (csrc/loop.c)
    "test_h2sess.py", "test_h2_conformance.py",  # HTTP/2's per-read batch (csrc/h2sess.c)
    "test_http_engine_parse.py",  # HTTP/1.1's simple requests parsed in the C poll
]
SANITIZERS = "address,undefined"


def _runtime(name: str) -> str:
    path = subprocess.run(["gcc", f"-print-file-name={name}"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert os.path.isabs(path), f"gcc has no {name} (install gcc's sanitizer runtimes)"
    return path


def sanitized_env(package_dir: Path) -> dict[str, str]:
    """The environment that runs Python against the sanitized copy."""
    env = dict(os.environ)
    env.update(
        LD_PRELOAD=f"{_runtime('libasan.so')} {_runtime('libubsan.so')}",
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
        PYTHONMALLOC="malloc",
        PYTHONPATH=str(package_dir),
        FASTNET_REQUIRE_NATIVE="1",
    )
    env.pop("FASTNET_PURE", None)
    return env


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory) -> Path:
    """A directory holding fastnet/ with an ASan + UBSan extension."""
    out = tmp_path_factory.mktemp("sanitized")
    env = dict(os.environ, FASTNET_SANITIZE=SANITIZERS)
    proc = subprocess.run([sys.executable, str(ROOT / "build.py"), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    assert list((out / "fastnet").glob("_native*.so")), "no extension built"
    return out


def run_python(sanitized: Path, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=sanitized, env=sanitized_env(sanitized),
                          capture_output=True, text=True, timeout=timeout)


def test_the_sanitizer_is_live(sanitized):
    """The copy is the one imported, and a read one byte past a buffer is
    caught: proof that a passing run below means something."""
    proc = run_python(sanitized, "-c", (
        "import ctypes\n"
        "import fastnet.native as n\n"
        f"assert n.__file__.startswith({str(sanitized)!r}), n.__file__\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.malloc.restype = ctypes.c_void_p\n"
        "buf = libc.malloc(1)\n"  # ASan's malloc: one byte, then a redzone
        "ctypes.memset(buf, 0x80, 1)\n"  # a continuation byte: decode reads on
        "n.lib.fn_uvarint_decode(n.ffi.cast('uint8_t *', buf), 2, n.ffi.new('uint64_t *'))\n"))
    assert proc.returncode != 0
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in proc.stderr, proc.stderr[-3000:]
    assert "fn_uvarint_decode" in proc.stderr


@pytest.mark.timeout(1200)  # run_python's own guard: pytest's 300 s ran out at load 10
def test_codec_and_engine_tests_pass_under_asan_and_ubsan(sanitized):
    # Not the threaded engine: it runs no C of its own (its codec calls are
    # the codec tests'), and ASan's slowness widens the race behind
    # test_direct's known threaded flake (issue 9).
    # Nor the benchmark smoke tests some codec files carry (the sanitized
    # copy of the package has no bench/ beside it).
    proc = run_python(sanitized, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                      "-k", "not threaded and not bench",
                      "--rootdir", str(ROOT), *(str(TESTS / t) for t in SANITIZED_TESTS))
    output = proc.stdout + proc.stderr
    assert "AddressSanitizer" not in output and "runtime error:" not in output, output[-6000:]
    assert proc.returncode == 0, output[-6000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout
