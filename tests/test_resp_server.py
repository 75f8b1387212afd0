"""RespServer over real sockets on every engine and both RESP codec twins:
the custom commands API, Redis's protocol behaviour (QUIT, protocol errors,
bulk limits), and the control plane (max clients, graceful drain, idle
timeout, INFO's counters), in-process and through
``python -m fastnet.serve --protocol resp``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fastnet import codec
from fastnet.resp import RespServer
from helpers import GUARD


def test_default_codec_is_the_active_backend():
    assert RespServer(engine="python").codec == codec.backend


def test_cli_under_fastnet_pure_serves_with_the_python_codec():
    # Regression: RespServer named the active twin "py" (its module's name),
    # not "python" (its key in fastnet.codec.impls), and crashed at start.
    env = {k: v for k, v in os.environ.items() if k != "FASTNET_REQUIRE_NATIVE"}
    env["FASTNET_PURE"] = "1"
    code = "from fastnet.resp import RespServer; print(RespServer(engine='python').codec)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=GUARD)
    assert out.returncode == 0 and out.stdout == "python\n", out
