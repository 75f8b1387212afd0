"""Server.run() in a script, on the main thread, drains on SIGINT and
SIGTERM as ``python -m fastnet.serve`` does: the request in flight is
answered, the process exits normally (no traceback, not 143)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import fastnet
from helpers import AVAILABLE_ENGINES, GUARD

SCRIPT = """
import logging, sys
import fastnet
from serve_handlers import slow

logging.basicConfig(level=logging.INFO)
server = fastnet.Server(engine=sys.argv[1])
listener = server.listen("127.0.0.1", 0, protocol="frame", handler=slow)
print(listener.port, flush=True)
server.run()
print("run returned", flush=True)
"""


@pytest.mark.parametrize("engine", AVAILABLE_ENGINES)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_drains_on_a_signal_in_a_script(engine, signum):
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, engine], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        port = int(proc.stdout.readline())
        with fastnet.connect("127.0.0.1", port, "frame", timeout=GUARD) as c:
            c.send(b"x")
            while "started" not in proc.stderr.readline():
                pass  # the request is in flight
            proc.send_signal(signum)
            assert c.recv() == b"done x"
        out, err = proc.communicate(timeout=GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(GUARD)
    assert proc.returncode == 0, err
    assert "run returned" in out
    assert "Traceback" not in err and "drained" in err
