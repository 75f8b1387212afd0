"""A client's output queue on the threaded engine, written by a thread of its own.

The threaded engine's writes are synchronous: ``conn.write`` blocks in
sendall until the peer has read enough. A write made on behalf of another
client (PUBLISH delivering to a subscriber, a push waking a blocked
client) runs under the server's command lock, so a subscriber that stops
reading would block PUBLISH, the lock and with it every client. An
:class:`Outbox` takes such writes instead: they are queued (``size``
counts the bytes not yet written, what client-output-buffer-limit is
checked against, as the engine's queued output is on the other engines)
and a writer thread of the client's own writes them out in order, blocking
only itself. Once a client has an outbox, everything it is sent goes
through it (its own replies too), so the order is the order of the
commands that produced it; a close requested meanwhile waits for what was
queued before it.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable, Optional

from .._threads import start_without_signals
from ..errors import EngineError

__all__ = ["Outbox"]


class Outbox:
    """Output queued for one connection, written by its own thread until
    :meth:`stop` (the connection closed) or a final action (a close) ran."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        #: Bytes queued or being written: what the output limits see.
        self.size = 0
        self._queue: deque[bytes] = deque()
        self._then: Optional[Callable[[], None]] = None
        self._stopped = False
        self._cv = threading.Condition()
        start_without_signals(threading.Thread(target=self._run, daemon=True,
                                               name=f"resp-outbox-{conn.id}"))

    def write(self, data: bytes) -> None:
        """Queue data (dropped once stopped)."""
        if not data:
            return
        with self._cv:
            if self._stopped or self._then is not None or self.conn.closed:
                return  # an aborted client's output is dropped, not kept
            self._queue.append(data)
            self.size += len(data)
            self._cv.notify()

    def then(self, action: Callable[[], None]) -> None:
        """Run action (a close) on the writer's thread once everything
        queued so far is written; nothing is queued after it."""
        with self._cv:
            if not self._stopped and self._then is None:
                self._then = action
                self._cv.notify()

    def stop(self) -> None:
        """The connection is gone: drop what is queued, end the thread."""
        with self._cv:
            self._stopped = True
            self._queue.clear()
            self.size = 0
            self._cv.notify()

    def _run(self) -> None:
        cv = self._cv
        while True:
            with cv:
                while not self._queue and not self._stopped and self._then is None:
                    cv.wait()
                if self._stopped:
                    return
                if not self._queue:
                    action, self._then, self._stopped = self._then, None, True
                    data = b""
                else:
                    action = None
                    data = b"".join(self._queue)
                    self._queue.clear()
            if action is not None:
                action()
                return
            try:
                self.conn.write(data)  # blocks while the peer does not read
            except EngineError:
                self.stop()  # closed under us (an abort past the limit)
                return
            with cv:
                if not self._stopped:
                    self.size -= len(data)
