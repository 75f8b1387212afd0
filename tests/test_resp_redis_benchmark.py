"""redis-benchmark's full default test list against fastnet: every test
completes and the server answers no command with an error.

``redis-benchmark -q -n 20000`` runs PING (inline and multibulk), SET, GET,
INCR, LPUSH, RPUSH, LPOP, RPOP, SADD, HSET, SPOP, ZADD, ZPOPMIN, LRANGE_100
to _600 and MSET, 50 clients each. Nothing here measures speed: the run is
only bounded in time (a generous guard against a hang)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from helpers import running_resp_server

#: redis-benchmark's default tests, as its -q output names them.
DEFAULT_TESTS = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP", "SADD",
                 "HSET", "SPOP", "ZADD", "ZPOPMIN", "LPUSH (needed to benchmark LRANGE)",
                 "LRANGE_100 (first 100 elements)", "LRANGE_300 (first 300 elements)",
                 "LRANGE_500 (first 500 elements)", "LRANGE_600 (first 600 elements)", "MSET (10 keys)"]
GUARD_SECONDS = 600


@pytest.fixture
def redis_benchmark() -> str:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-benchmark is not installed (the README's test command installs redis-tools)")
        pytest.skip("redis-benchmark is not installed")
    return binary


@pytest.mark.timeout(GUARD_SECONDS + 60)
@pytest.mark.parametrize("engine", ["c", "python"])
def test_default_suite_completes_without_errors(redis_benchmark, engine):
    with running_resp_server(engine, "c" if engine == "c" else "python") as (_, port):
        run = subprocess.run([redis_benchmark, "-h", "127.0.0.1", "-p", str(port), "-q", "-n", "20000"],
                             capture_output=True, timeout=GUARD_SECONDS, text=True)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "rror" not in output, output  # "Error from server: ..." / "error" lines
    # -q prints "NAME: N requests per second, p50=..." per test; the
    # carriage-return progress lines are overwritten by the final one.
    finished = [part.split(":")[0].strip() for part in re.split(r"[\r\n]", output)
                if re.search(r": [0-9.]+ requests per second", part)]
    assert finished == DEFAULT_TESTS, output
