"""Every fuzz target in fuzz/targets/ runs for a short bounded time (CI: 30 s
each, FASTNET_FUZZ_SECONDS to change it) through `fuzz/run`, which builds
the libFuzzer ones with clang, ASan and UBSan. A target joins by existing:
fuzz/targets/fuzz_NAME.c or fuzz_NAME.py (fuzz/README.md).

A run passes when libFuzzer ends without a crash or a broken invariant
(each target checks its parser's invariants, not only memory safety) and
executed at least MIN_EXECUTIONS inputs: a target that fails to start, or
that spends its time in one input, does not pass by doing nothing.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastnet import native

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "fuzz" / "run"
SECONDS = int(os.environ.get("FASTNET_FUZZ_SECONDS", "30"))
#: Far below what any target does here (tens of thousands per second for
#: the C ones, thousands for atheris), far above a target that is stuck.
MIN_EXECUTIONS = 1000


def _targets() -> list[str]:
    names = subprocess.run([sys.executable, str(RUN), "--list"], check=True,
                           capture_output=True, text=True).stdout.split()
    return names


TARGETS = _targets()


def test_every_c_parser_has_a_target():
    """varint, framing (be32, varint, line), RESP requests, RESP replies,
    and the two differential (atheris) targets."""
    assert {"varint", "framer", "resp_req", "resp_reply", "diff_framing", "diff_resp"} <= set(TARGETS)


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target(name):
    if (ROOT / "fuzz" / "targets" / f"fuzz_{name}.py").exists() and native.lib is None:
        pytest.skip("an atheris target compares the twins: the C extension is not loaded "
                    "(FASTNET_REQUIRE_NATIVE=1 makes that an error)")
    env = dict(os.environ, FASTNET_WERROR="1")
    proc = subprocess.run([sys.executable, str(RUN), name, str(SECONDS)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=SECONDS + 600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    summary = re.search(rf"^{name}: (\d+) executions in \d+ s, cov: (\d+) ft: (\d+)", proc.stdout, re.M)
    assert summary, output[-4000:]
    print(summary.group(0))
    executions, cov = int(summary.group(1)), int(summary.group(2))
    assert executions >= MIN_EXECUTIONS, summary.group(0)
    assert cov > 0, summary.group(0)
