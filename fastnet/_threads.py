"""Starting helper threads that never receive the process's signals.

The kernel delivers a process-directed signal (SIGTERM from `kill`, SIGINT,
SIGUSR1) to any thread that does not block it. CPython runs the Python-level
handler only in the main thread, and only when that thread next runs
bytecode: if the signal lands on a helper thread, a main thread asleep in
poll()/epoll_wait is not interrupted and the handler waits for its timeout
(found as a SIGTERM drain that took the 30 s idle timeout to begin on the
threaded engine). Threads started here inherit a mask that blocks the
asynchronous signals, so the kernel delivers them to the main thread.
"""
from __future__ import annotations

import signal
import threading

# Synchronous signals (faults) must stay deliverable to the thread at fault.
_SYNCHRONOUS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
                signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS}
_ASYNC_SIGNALS = set(signal.valid_signals()) - _SYNCHRONOUS - {signal.SIGKILL, signal.SIGSTOP}


def start_without_signals(thread: threading.Thread) -> None:
    """Start ``thread`` with the asynchronous signals blocked in it (a new
    thread inherits its creator's mask, so block around start())."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def block_signals() -> None:
    """Block the asynchronous signals in the calling thread: a thread pool's
    initializer (its threads start inside submit(), on whatever thread
    calls it)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
