"""The Server: listeners, connections and the Python handler.

The engine moves bytes and frames them; the Server decides what happens to
each message (the user's handler, or the engine's own echo), answers
framing errors in the protocol's form, and counts what happened.

A handler is ``handler(conn, message) -> bytes | None`` or the same as an
``async def``. A returned value is sent back as one message; ``None`` sends
nothing (the handler may call ``conn.send`` itself, any number of times).
Messages of one connection are handled in order, one at a time; coroutine
handlers of different connections run concurrently, so a slow one never
stalls the others.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import threading
from typing import Any, Awaitable, Callable, Optional, Union

from .. import limits
from ..engine import engine_class
from ..engine.base import CloseReason, EngineHandler, Listener
from ..errors import EngineError, ProtocolError
from .protocols import PROTOCOLS, ProtocolSpec

log = logging.getLogger("fastnet.server")

HandlerResult = Union[bytes, bytearray, memoryview, None]
Handler = Callable[["Connection", bytes],
                   Union[HandlerResult, Awaitable[HandlerResult]]]


class Connection:
    """One client connection, as a handler sees it.

    ``state`` is a dict for the handler's own per-connection data.
    """

    __slots__ = ("id", "listener", "state", "_server", "_route", "_peer",
                 "_queue", "_busy", "_paused", "_eof", "_closed")

    def __init__(self, server: "Server", conn_id: int, route: "_Route") -> None:
        self.id = conn_id
        self.listener = route.listener
        self.state: dict[str, Any] = {}
        self._server = server
        self._route = route
        self._peer: Optional[tuple[str, int]] = None
        self._queue: collections.deque[bytes] = collections.deque()
        self._busy = False      # a coroutine handler is working through _queue
        self._paused = False    # reading paused because _queue is long
        self._eof = False       # the peer will send nothing more
        self._closed = False    # on_close has run

    @property
    def peer(self) -> tuple[str, int]:
        """The client's (host, port)."""
        if self._peer is None:
            self._peer = self._server.engine.peer(self.id)
        return self._peer

    def send(self, message: bytes) -> None:
        """Send one message, framed by this connection's protocol."""
        if not self._closed:
            self._server.engine.send(self.id, message)

    def write(self, data: bytes) -> None:
        """Send raw bytes, without framing."""
        if not self._closed:
            self._server.engine.write(self.id, data)

    def close(self) -> None:
        """Close after everything already sent has been written."""
        if not self._closed:
            self._server.engine.close(self.id)

    def abort(self) -> None:
        """Close at once with a reset, dropping unsent output."""
        if not self._closed:
            self._server.engine.close(self.id, abort=True)

    def __repr__(self) -> str:
        return f"<Connection {self.id} on {self.listener.host}:{self.listener.port}>"


class _Route:
    """What a listener's connections run: protocol and handler."""

    __slots__ = ("listener", "protocol", "handler", "is_async")

    def __init__(self, listener: Listener, protocol: ProtocolSpec,
                 handler: Optional[Handler]) -> None:
        self.listener = listener
        self.protocol = protocol
        self.handler = handler
        self.is_async = handler is not None and _is_coroutine_function(handler)


def _is_coroutine_function(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None))


class Server(EngineHandler):
    """A fastnet server: one engine, one or more listeners.

    >>> server = Server(engine="c")
    >>> server.listen("127.0.0.1", 9000, protocol="frame", handler=upper)
    >>> server.run()            # until server.stop() or a signal handler calls it

    engine:       "c" (epoll in C), "python" (select.epoll) or "threaded".
    max_frame:    largest payload a "frame" message may declare.
    max_line:     longest line the "line" protocol accepts.
    bare_lf:      "line" also accepts a bare "\\n" as the delimiter.
    frame_header: "be32" (4-byte big-endian length) or "varint".
    """

    def __init__(self, *, engine: str = "c",
                 max_frame: int = limits.DEFAULT_MAX_FRAME,
                 max_line: int = limits.DEFAULT_MAX_LINE,
                 bare_lf: bool = False,
                 frame_header: str = "be32") -> None:
        self.engine = engine_class(engine)(self)
        self.max_frame = max_frame
        self.max_line = max_line
        self.bare_lf = bare_lf
        self.frame_header = frame_header
        self._routes: dict[int, _Route] = {}
        self._conns: dict[int, Connection] = {}
        self._counters: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()  # counters and _conns under the threaded engine
        self._aio: Optional[asyncio.AbstractEventLoop] = None  # loop running coroutine handlers
        self._aio_thread: Optional[threading.Thread] = None    # its thread, threaded engine only

    # -- set-up ----------------------------------------------------------

    def listen(self, host: str = "127.0.0.1", port: int = 9000, *,
               protocol: str = "echo", handler: Optional[Handler] = None,
               backlog: int = limits.DEFAULT_LISTEN_BACKLOG) -> Listener:
        """Listen on host:port (0 picks a free port: see the returned
        Listener's ``port``) and serve ``protocol`` there. Without a
        handler every message is echoed back, by the engine itself (in C on
        the C engine, with no Python call per message)."""
        try:
            spec = PROTOCOLS[protocol]
        except KeyError:
            raise ValueError(f"unknown protocol {protocol!r}; "
                             f"choose from {sorted(PROTOCOLS)}") from None
        conn_spec = spec.conn_spec(max_frame=self.max_frame, max_line=self.max_line,
                                   bare_lf=self.bare_lf, frame_header=self.frame_header,
                                   echo=handler is None)
        listener = self.engine.listen(host, port, conn_spec, backlog)
        self._routes[listener.id] = _Route(listener, spec, handler)
        return listener

    @property
    def listeners(self) -> list[Listener]:
        """Every listener, in the order they were added."""
        return [route.listener for route in self._routes.values()]

    # -- running ---------------------------------------------------------

    def run(self) -> None:
        """Serve until :meth:`stop`. Coroutine handlers run on an asyncio loop
        (the engine runs inside it, or beside it for the threaded engine)."""
        needs_aio = any(route.is_async for route in self._routes.values())
        if not needs_aio:
            self.engine.run()
        elif self.engine.name == "threaded":
            self._start_aio_thread()
            try:
                self.engine.run()
            finally:
                self._stop_aio_thread()
        else:
            asyncio.run(self.run_async())

    async def run_async(self) -> None:
        """Serve inside the running asyncio loop until :meth:`stop`."""
        self._aio = asyncio.get_running_loop()
        try:
            await self.engine.run_async()
        finally:
            self._aio = None

    def stop(self) -> None:
        """Stop serving: run()/run_async() return soon and every connection
        is closed. Safe from signal handlers and other threads."""
        self.engine.stop()

    def stats(self) -> dict[str, int]:
        """The engine's counters (accepted, closed, open, bytes_in,
        bytes_out, messages_in, ...) and the server's (protocol_errors,
        handler_errors, closed_<reason>)."""
        with self._lock:
            out = dict(self._counters)
        out.update(self.engine.stats())
        return out

    # -- engine events ---------------------------------------------------

    def on_accept(self, conn: int, listener: Listener) -> None:
        self._conns[conn] = Connection(self, conn, self._routes[listener.id])

    def on_connected(self, conn: int) -> None:
        # A server makes no outgoing connections.
        self.engine.close(conn, abort=True)

    def on_message(self, conn: int, message: bytes) -> None:
        c = self._conns[conn]
        route = c._route
        if route.is_async:
            self._enqueue(c, message)
            return
        try:
            reply = route.handler(c, message)  # type: ignore[misc]
        except Exception:
            self._handler_failed(c)
            return
        if reply is not None and not c._closed:
            self.engine.send(conn, reply)

    def on_eof(self, conn: int) -> None:
        c = self._conns[conn]
        c._eof = True
        if not c._busy:
            self.engine.close(conn)

    def on_protocol_error(self, conn: int, error: ProtocolError) -> None:
        c = self._conns[conn]
        try:
            host, port = c.peer
        except OSError:
            host, port = "?", 0
        log.warning("closing connection %d from %s:%d: %s", conn, host, port, error)
        self._count("protocol_errors")
        reply = c._route.protocol.error_reply(error)
        try:
            if reply is not None:
                self.engine.write(conn, reply)
            self.engine.close(conn)
        except EngineError:
            pass  # an echo connection the engine is already closing

    def on_close(self, conn: int, reason: CloseReason, errno: int) -> None:
        c = self._conns.pop(conn, None)
        if c is not None:
            c._closed = True
            c._queue.clear()
        self._count("closed_" + reason.value)
        if reason is CloseReason.RESET:
            log.debug("connection %d reset by peer (errno %d)", conn, errno)

    # -- coroutine handlers ----------------------------------------------

    def _enqueue(self, c: Connection, message: bytes) -> None:
        c._queue.append(message)
        if len(c._queue) >= limits.MAX_PENDING_MESSAGES and not c._paused:
            c._paused = True
            self.engine.pause_reading(c.id)
        if c._busy:
            return
        c._busy = True
        if self.engine.name == "threaded":
            # We are on the connection's own thread: run each coroutine on the
            # shared asyncio loop and wait for it here, keeping order.
            self._drain_blocking(c)
        else:
            assert self._aio is not None, "coroutine handler outside run_async()"
            self._aio.create_task(self._drain(c))

    async def _drain(self, c: Connection) -> None:
        handler = c._route.handler
        assert handler is not None
        while c._queue:
            message = c._queue.popleft()
            try:
                reply = await handler(c, message)  # type: ignore[misc]
            except Exception:
                self._handler_failed(c)
                break
            if c._closed:
                break
            if reply is not None:
                self.engine.send(c.id, reply)
                self.engine.flush_soon()
            self._maybe_resume(c)
        self._drained(c)

    def _drain_blocking(self, c: Connection) -> None:
        handler = c._route.handler
        assert handler is not None and self._aio is not None
        while c._queue:
            message = c._queue.popleft()
            future = asyncio.run_coroutine_threadsafe(handler(c, message), self._aio)  # type: ignore[arg-type]
            try:
                reply = future.result()
            except Exception:
                self._handler_failed(c)
                break
            if reply is not None and not c._closed:
                self.engine.send(c.id, reply)
        self._drained(c)

    def _maybe_resume(self, c: Connection) -> None:
        if c._paused and len(c._queue) < limits.MAX_PENDING_MESSAGES // 2 and not c._closed:
            c._paused = False
            self.engine.pause_reading(c.id, False)

    def _drained(self, c: Connection) -> None:
        c._busy = False
        if c._closed:
            return
        self._maybe_resume(c)
        if c._eof:
            self.engine.close(c.id)

    def _handler_failed(self, c: Connection) -> None:
        log.exception("handler failed on connection %d; closing it", c.id)
        self._count("handler_errors")
        c._queue.clear()
        if not c._closed:
            self.engine.close(c.id, abort=True)

    def _start_aio_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._aio = loop
        self._aio_thread = threading.Thread(target=loop.run_forever,
                                            name="fastnet-asyncio", daemon=True)
        self._aio_thread.start()

    def _stop_aio_thread(self) -> None:
        loop, thread = self._aio, self._aio_thread
        assert loop is not None and thread is not None
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._aio = self._aio_thread = None

    def _count(self, key: str) -> None:
        with self._lock:
            self._counters[key] += 1
