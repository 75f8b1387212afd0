"""Regression: a SIGTERM that landed on one of the threaded engine's helper
threads did not interrupt the main thread's wait, so a graceful shutdown
only began at the next timeout (the 30 s idle timeout). Helper threads now
start with the asynchronous signals blocked."""
from __future__ import annotations

import signal
import threading

import fastnet
from helpers import running_server


def blocked_signals(thread: threading.Thread) -> int:
    """The SigBlk mask of a thread of this process, from /proc."""
    with open(f"/proc/self/task/{thread.native_id}/status") as status:
        for line in status:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    raise AssertionError("no SigBlk line")


def test_threaded_engine_threads_leave_sigterm_to_the_main_thread():
    async def handler(conn, message):
        return message  # a coroutine handler: the server also starts an asyncio thread

    with running_server("threaded", "frame", handler=handler) as (server, port):
        with fastnet.connect("127.0.0.1", port, "frame") as c:
            c.send(b"x")
            assert c.recv() == b"x"
            helpers = [t for t in threading.enumerate() if t.name.startswith("fastnet-")]
            # accept, connection and asyncio threads all exist now
            assert {t.name.split("-")[1] for t in helpers} >= {"accept", "conn", "asyncio"}
            for t in helpers:
                mask = blocked_signals(t)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
                    assert mask & (1 << (sig - 1)), f"{t.name} can receive {sig.name}"
