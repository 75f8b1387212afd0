"""The Server: listeners, connections, the Python handler, and the policy.

The engine moves bytes and frames them; the Server decides what happens to
each message (the user's handler, or the engine's own echo), answers
framing errors in the protocol's form, and runs the control plane:

* a connection limit with a FIFO backlog (``max_connections``,
  ``backlog``, ``queue_timeout``): connections over the limit wait unread,
  oldest promoted first; beyond the backlog they are turned away at once;
* graceful shutdown (``shutdown``): stop accepting, turn the backlog away,
  let requests already received finish and their replies be written, close
  each connection as soon as it is idle, force the rest at a deadline;
* keep-alive: a peer silent for ``idle_timeout`` is closed, and on
  protocols with a probe a quiet peer is probed after
  ``keepalive_interval`` and closed if it does not answer;
* counters (``stats``).

A handler is ``handler(conn, message) -> bytes | None`` or the same as an
``async def``. A returned value is sent back as one message; ``None`` sends
nothing (the handler may call ``conn.send`` itself, any number of times).
Messages of one connection are handled in order, one at a time; coroutine
handlers of different connections run concurrently, so a slow one never
stalls the others.

Threads: with the C and Python engines everything here runs on the
engine's thread. The threaded engine calls in from every connection's
thread, so the control-plane state is guarded by one lock (taken per
connection event, never per message).
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import inspect
import logging
import resource
import threading
import time
from typing import Any, Awaitable, Callable, Optional, Union, cast

from .. import limits
from .._threads import start_without_signals
from ..engine import engine_class
from ..engine.base import CloseReason, EngineHandler, Listener, TimerHandle
from ..errors import EngineError, ProtocolError
from .protocols import PROTOCOLS, ProtocolSpec

log = logging.getLogger("fastnet.server")

HandlerResult = Union[bytes, bytearray, memoryview, None]
Handler = Callable[["Connection", bytes],
                   Union[HandlerResult, Awaitable[HandlerResult]]]

_QUEUED, _ACTIVE, _REJECTED = "queued", "active", "rejected"


class Connection:
    """One client connection, as a handler sees it.

    ``state`` is a dict for the handler's own per-connection data.
    """

    __slots__ = ("id", "listener", "state", "_server", "_route", "_peer",
                 "_queue", "_busy", "_paused", "_eof", "_closed", "_closing", "_phase",
                 "_why", "_deadline")

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
        self._closing = False   # the handler closed it: what it returns is dropped
        self._phase = _ACTIVE   # _QUEUED in the backlog, _REJECTED turned away
        self._why = ""          # why the server closed it ("" if it did not)
        self._deadline = 0.0    # queued: when it is turned away

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
        """Close after everything already sent has been written. A reply
        the handler returns after this is dropped."""
        if not self._closed:
            self._closing = True
            self._server.engine.close(self.id)

    def abort(self) -> None:
        """Close at once with a reset, dropping unsent output."""
        if not self._closed:
            self._closing = True
            self._server.engine.close(self.id, abort=True)

    def __repr__(self) -> str:
        return f"<Connection {self.id} on {self.listener.host}:{self.listener.port}>"


class _Route:
    """What a listener's connections run: protocol and handler."""

    __slots__ = ("listener", "protocol", "handler", "is_async", "probe_reply")

    def __init__(self, listener: Listener, protocol: ProtocolSpec,
                 handler: Optional[Handler]) -> None:
        self.listener = listener
        self.protocol = protocol
        self.handler = handler
        self.probe_reply = protocol.probe_reply  # read per message: one hop
        self.is_async = handler is not None and _is_coroutine_function(handler)


def _is_coroutine_function(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None))


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE toward ``wanted`` (at most the
    hard limit) and return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if new > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
    return soft


class Server(EngineHandler):
    """A fastnet server: one engine, one or more listeners.

    >>> server = Server(engine="c", max_connections=1000)
    >>> server.listen("127.0.0.1", 9000, protocol="frame", handler=upper)
    >>> server.run()          # until server.shutdown() or server.stop()

    engine:             "c" (epoll in C), "python" (select.epoll) or "threaded".
    max_frame:          largest payload a "frame" message may declare.
    max_line:           longest line the "line" protocol accepts.
    bare_lf:            "line" also accepts a bare "\\n" as the delimiter.
    frame_header:       "be32" (4-byte big-endian length) or "varint".
    max_connections:    connections served at once (default 10000, as Redis).
    backlog:            connections over the limit that wait, unread, for a
                        slot (FIFO); beyond it a connection is turned away.
    queue_timeout:      seconds a connection may wait in the backlog.
    idle_timeout:       close a peer silent this long (None: never).
    keepalive_interval: on protocols with a probe, probe a peer silent this
                        long and close it if still silent one more interval.
    tcp_keepalive:      (idle, interval, count) for the kernel's TCP
                        keep-alive on every accepted socket, or None.
    drain_timeout:      default deadline of :meth:`shutdown`, in seconds.
    stats_interval:     log the counters this often (None: never).
    send_timeout:       abort a connection whose queued output made no
                        progress for this long, closing or not (60 s, as
                        nginx's send_timeout; None: never), counted as
                        closed_send_timeout.

    The process's open-file limit is raised (up to the hard limit) to fit
    max_connections + backlog, as Redis does for maxclients.
    """

    def __init__(self, *, engine: str = "c",
                 max_frame: int = limits.DEFAULT_MAX_FRAME,
                 max_line: int = limits.DEFAULT_MAX_LINE,
                 bare_lf: bool = False,
                 frame_header: str = "be32",
                 max_connections: int = limits.DEFAULT_MAX_CONNECTIONS,
                 backlog: int = limits.DEFAULT_BACKLOG,
                 queue_timeout: float = limits.DEFAULT_QUEUE_TIMEOUT,
                 idle_timeout: Optional[float] = limits.DEFAULT_IDLE_TIMEOUT,
                 keepalive_interval: Optional[float] = None,
                 tcp_keepalive: Optional[tuple[int, int, int]] = None,
                 drain_timeout: float = limits.DEFAULT_DRAIN_TIMEOUT,
                 stats_interval: Optional[float] = None,
                 send_timeout: Optional[float] = limits.DEFAULT_SEND_TIMEOUT) -> None:
        self.engine = engine_class(engine)(self)
        if send_timeout is not None and not send_timeout > 0:
            raise ValueError("send_timeout must be positive (or None for never)")
        self.send_timeout = send_timeout
        self.engine.set_send_timeout(send_timeout)
        self.max_frame = max_frame
        self.max_line = max_line
        self.bare_lf = bare_lf
        self.frame_header = frame_header
        self.tcp_keepalive = tcp_keepalive
        self.drain_timeout = drain_timeout
        self.stats_interval = stats_interval
        self._check_limits(max_connections, backlog, queue_timeout)
        self.max_connections, self.backlog, self.queue_timeout = max_connections, backlog, queue_timeout
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive (or None for never)")
        if keepalive_interval is not None and keepalive_interval <= 0:
            raise ValueError("keepalive_interval must be positive (or None)")
        self.idle_timeout = idle_timeout
        self.keepalive_interval = keepalive_interval
        raise_open_file_limit(max_connections + backlog + 64)

        self._routes: dict[int, _Route] = {}
        self._conns: dict[int, Connection] = {}
        self._backlog: collections.OrderedDict[int, Connection] = collections.OrderedDict()
        self._active = 0
        self._counters: collections.Counter[str] = collections.Counter()
        # The threaded engine calls in from many threads; the others from one.
        self._lock = threading.RLock()
        self._aio: Optional[asyncio.AbstractEventLoop] = None  # loop running coroutine handlers
        self._aio_thread: Optional[threading.Thread] = None    # its thread, threaded engine only
        self._queue_timer: Optional[TimerHandle] = None
        self._drain_timer: Optional[TimerHandle] = None
        self._draining = False
        #: Connections force-closed at the drain deadline (or by a second
        #: shutdown request): ``python -m fastnet.serve`` exits 1 when > 0.
        self.forced_closes = 0

    # -- set-up ----------------------------------------------------------

    def listen(self, host: str = "127.0.0.1", port: int = 9000, *,
               protocol: Union[str, ProtocolSpec] = "echo", handler: Optional[Handler] = None,
               backlog: int = limits.DEFAULT_LISTEN_BACKLOG) -> Listener:
        """Listen on host:port (0 picks a free port: see the returned
        Listener's ``port``) and serve ``protocol`` there. Without a
        handler every message is echoed back, by the engine itself (in C on
        the C engine, with no Python call per message). ``protocol`` is a
        built-in protocol's name or a ProtocolSpec of a protocol built on
        the server (as fastnet.resp's).

        ``backlog`` here is listen(2)'s: the kernel's queue of completed
        handshakes not yet accepted. The server's own backlog (connections
        accepted over max_connections, waiting) is the constructor's."""
        if isinstance(protocol, ProtocolSpec):
            spec = protocol
        elif protocol in PROTOCOLS:
            spec = PROTOCOLS[protocol]
        else:
            raise ValueError(f"unknown protocol {protocol!r}; "
                             f"choose from {sorted(PROTOCOLS)}")
        conn_spec = spec.conn_spec(max_frame=self.max_frame, max_line=self.max_line,
                                   bare_lf=self.bare_lf, frame_header=self.frame_header,
                                   echo=handler is None, tcp_keepalive=self.tcp_keepalive)
        listener = self.engine.listen(host, port, conn_spec, backlog)
        self._routes[listener.id] = _Route(listener, spec, handler)
        self.engine.set_idle_timeout(self._idle_tick())
        return listener

    @property
    def listeners(self) -> list[Listener]:
        """Every listener, in the order they were added."""
        return [route.listener for route in self._routes.values()]

    def set_limits(self, max_connections: Optional[int] = None,
                   backlog: Optional[int] = None,
                   queue_timeout: Optional[float] = None) -> None:
        """Change the connection limits while serving (from any thread).
        Raising max_connections promotes waiting connections at once;
        lowering it never drops a connection already served, it only stops
        new ones until enough have left."""
        new = (self.max_connections if max_connections is None else max_connections,
               self.backlog if backlog is None else backlog,
               self.queue_timeout if queue_timeout is None else queue_timeout)
        self._check_limits(*new)
        raise_open_file_limit(new[0] + new[1] + 64)

        def apply() -> None:
            with self._lock:
                self.max_connections, self.backlog, self.queue_timeout = new
                self._promote()
        self.engine.call_soon_threadsafe(apply)

    @staticmethod
    def _check_limits(max_connections: int, backlog: int, queue_timeout: float) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if backlog < 0:
            raise ValueError("backlog must be >= 0")
        if queue_timeout <= 0:
            raise ValueError("queue_timeout must be positive")

    # -- running ---------------------------------------------------------

    def run(self) -> None:
        """Serve until :meth:`shutdown` has drained or :meth:`stop`.
        Coroutine handlers run on an asyncio loop (the engine runs inside
        it, or beside it for the threaded engine)."""
        needs_aio = any(route.is_async for route in self._routes.values())
        self._start_stats_timer()
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
        """Serve inside the running asyncio loop until :meth:`shutdown` has
        drained or :meth:`stop`."""
        self._aio = asyncio.get_running_loop()
        try:
            await self.engine.run_async()
        finally:
            self._aio = None

    def stop(self) -> None:
        """Stop at once: run()/run_async() return soon and every connection
        is reset. Safe from signal handlers and other threads. See
        :meth:`shutdown` for the graceful way."""
        self._cancel_coroutine_handlers()
        self.engine.stop()

    def shutdown(self, timeout: Optional[float] = None) -> None:
        """Shut down gracefully; safe from signal handlers and other threads.

        Stops accepting at once (the listening sockets close, so a new
        connect is refused), turns waiting connections away with the
        protocol's "shutting down" error, lets every request already
        received finish and its reply be written, closes each connection as
        soon as it is idle, and then makes run() return. Connections still
        busy after ``timeout`` seconds (default: drain_timeout) are reset and
        counted in :attr:`forced_closes`. Calling it again while draining
        forces at once (a second Ctrl-C)."""
        self.engine.call_soon_threadsafe(
            lambda: self._begin_drain(self.drain_timeout if timeout is None else timeout))

    def stats(self) -> dict[str, int]:
        """Counters: active and queued connections (now); accepted;
        rejected_<why> (busy, queue_timeout, shutdown); closed_<why>, where
        why is the server's reason (idle, keepalive, drained, forced,
        rejected, protocol, handler_error) or else the engine's (peer,
        local, reset, abort, ...); protocol_errors; bytes_in and bytes_out;
        open, closed and messages_in from the engine."""
        with self._lock:
            out = dict(self._counters)
            out["active"] = self._active
            out["queued"] = len(self._backlog)
        out.update(self.engine.stats())
        return out

    def log_stats(self) -> None:
        """Log the counters once (SIGUSR1 and --stats-interval do this)."""
        items = sorted(self.stats().items())
        log.info("stats: %s", " ".join(f"{k}={v}" for k, v in items))

    # -- engine events ---------------------------------------------------

    def on_accept(self, conn: int, listener: Listener) -> None:
        route = self._routes[listener.id]
        c = Connection(self, conn, route)
        direct = self._direct_handler(route)
        if direct is not None:
            self.engine.serve_directly(conn, direct, c, self._handler_failed)
        with self._lock:
            self._conns[conn] = c
            if self._draining:
                self._reject(c, "shutdown")
            elif self._active < self.max_connections:
                self._active += 1
            elif len(self._backlog) < self.backlog:
                # Nothing is read from it until a slot frees.
                self.engine.pause_reading(conn)
                c._phase = _QUEUED
                c._deadline = time.monotonic() + self.queue_timeout
                self._backlog[conn] = c
                if self._queue_timer is None:
                    self._arm_queue_timer()
            else:
                self._reject(c, "busy")

    def on_connected(self, conn: int) -> None:
        # A server makes no outgoing connections.
        self.engine.close(conn, abort=True)

    def _direct_handler(self, route: _Route) -> Optional[Callable[[Any, bytes], Any]]:
        """What the engine may call per message of this route's connections
        itself (Engine.serve_directly), or None. It must do what on_message
        does, so: only a plain handler on a protocol without a probe, and
        only while on_message is this class's."""
        if (type(self).on_message is not Server.on_message or route.handler is None
                or route.is_async or route.probe_reply is not None):
            return None
        return route.handler

    def on_message(self, conn: int, message: bytes) -> None:
        c = self._conns[conn]
        route = c._route
        if route.probe_reply is not None and message == route.probe_reply:
            return  # a keep-alive answer, not a request
        if route.is_async:
            self._enqueue(c, message)
            return
        try:
            reply = cast(HandlerResult, route.handler(c, message))  # type: ignore[misc]
        except Exception:
            self._handler_failed(c)
            return
        if reply is not None and not (c._closed or c._closing):
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
        c._why = c._why or error.close_reason
        reply = c._route.protocol.error_reply(error)
        try:
            if reply is not None:
                self.engine.write(conn, reply)
            self.engine.close(conn)
        except EngineError:
            pass  # an echo connection the engine is already closing

    def on_close(self, conn: int, reason: CloseReason, errno: int) -> None:
        with self._lock:
            c = self._conns.pop(conn, None)
            if c is None:
                return
            c._closed = True
            c._queue.clear()
            if c._phase == _ACTIVE:
                self._active -= 1
                self._promote()
            elif c._phase == _QUEUED:
                del self._backlog[conn]
            self._counters["closed_" + (c._why or reason.value)] += 1
            if self._draining and not self._conns:
                self._drained_all()
        if reason is CloseReason.RESET:
            log.debug("connection %d reset by peer (errno %d)", conn, errno)

    def on_idle(self, conn: int, silent: float) -> None:
        c = self._conns.get(conn)
        if c is None or c._phase != _ACTIVE:
            return  # waiting connections answer to queue_timeout instead
        if c._busy or self.engine.output_size(conn):
            return  # a request in progress, or a reply still going out: not idle
        idle, interval = self.idle_timeout, self.keepalive_interval
        probe = c._route.protocol.probe
        # The engine reports every tick (the smaller of the two periods) of
        # silence; allow for its millisecond rounding.
        slack = 0.005
        if idle is not None and silent + slack >= idle:
            self._close_for(c, "idle")
        elif probe is not None and interval is not None:
            if silent + slack >= 2 * interval:
                self._close_for(c, "keepalive")  # the probe went unanswered
            elif silent + slack >= interval:
                self.engine.send(conn, probe)

    def _idle_tick(self) -> Optional[float]:
        """The engine's idle period: the smallest keep-alive period in use."""
        periods = [self.idle_timeout] if self.idle_timeout else []
        if self.keepalive_interval and any(r.protocol.probe for r in self._routes.values()):
            periods.append(self.keepalive_interval)
        return min(periods) if periods else None

    def _close_for(self, c: Connection, why: str) -> None:
        c._why = why
        self.engine.close(c.id)

    # -- connection limit and backlog ------------------------------------

    def _reject(self, c: Connection, why: str) -> None:
        """Turn a connection away, in the protocol's own words if it has any."""
        c._phase = _REJECTED
        c._why = "rejected"
        self._counters["rejected_" + why] += 1
        reply = c._route.protocol.rejection(why)
        if reply is not None:
            self.engine.write(c.id, reply)
        self.engine.close(c.id)

    def _promote(self) -> None:
        """Give free slots to waiting connections, oldest first."""
        while self._backlog and self._active < self.max_connections:
            _, c = self._backlog.popitem(last=False)
            c._phase = _ACTIVE
            self._active += 1
            self.engine.pause_reading(c.id, False)

    def _arm_queue_timer(self) -> None:
        head = next(iter(self._backlog.values()))
        self._queue_timer = self.engine.call_later(
            head._deadline - time.monotonic(), self._expire_queue)

    def _expire_queue(self) -> None:
        """Turn away connections that waited longer than queue_timeout. The
        backlog is in arrival order, so only expired ones are looked at."""
        with self._lock:
            self._queue_timer = None
            now = time.monotonic()
            while self._backlog:
                c = next(iter(self._backlog.values()))
                if c._deadline > now:
                    self._arm_queue_timer()
                    break
                del self._backlog[c.id]
                self._reject(c, "queue_timeout")

    # -- graceful shutdown -----------------------------------------------

    def _begin_drain(self, timeout: float) -> None:
        with self._lock:
            if self._draining:
                log.warning("second shutdown request: forcing %d connection(s) closed",
                            len(self._conns))
                self._force()
                return
            self._draining = True
            for route in self._routes.values():
                self.engine.unlisten(route.listener)
            while self._backlog:
                _, c = self._backlog.popitem(last=False)
                self._reject(c, "shutdown")
            busy = 0
            for c in list(self._conns.values()):
                if c._phase != _ACTIVE:
                    continue
                if c._busy:
                    busy += 1
                    self.engine.pause_reading(c.id)  # finish what was received, read no more
                else:
                    self._close_for(c, "drained")
            log.info("shutting down: %d connection(s) busy, waiting up to %gs",
                     busy, timeout)
            if not self._conns:
                self._drained_all()
            else:
                self._drain_timer = self.engine.call_later(timeout, self._force)

    def _force(self) -> None:
        with self._lock:
            for c in list(self._conns.values()):
                if not c._closed:
                    self.forced_closes += 1
                    c._why = "forced"
                    self.engine.close(c.id, abort=True)
            if self.forced_closes:
                log.warning("forced %d connection(s) closed at the drain deadline",
                            self.forced_closes)
            self._cancel_coroutine_handlers()
            self.engine.stop()

    def _drained_all(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        log.info("drained: every connection closed")
        self.engine.stop()

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
            if c._closed or c._closing:
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
            future: concurrent.futures.Future[HandlerResult] = asyncio.run_coroutine_threadsafe(
                handler(c, message), self._aio)  # type: ignore[arg-type]
            try:
                reply = future.result()
            except concurrent.futures.CancelledError:
                return  # stopping (_cancel_coroutine_handlers): the connection is being reset
            except Exception:
                self._handler_failed(c)
                break
            if reply is not None and not (c._closed or c._closing):
                self.engine.send(c.id, reply)
        self._drained(c)

    def _maybe_resume(self, c: Connection) -> None:
        if (c._paused and len(c._queue) < limits.MAX_PENDING_MESSAGES // 2
                and not c._closed and not self._draining):
            c._paused = False
            self.engine.pause_reading(c.id, False)

    def _drained(self, c: Connection) -> None:
        with self._lock:
            c._busy = False
            if c._closed:
                return
            self._maybe_resume(c)
            if self._draining:
                self._close_for(c, "drained")
            elif c._eof:
                self.engine.close(c.id)

    def _handler_failed(self, c: Connection) -> None:
        log.exception("handler failed on connection %d; closing it", c.id)
        self._count("handler_errors")
        c._queue.clear()
        if not c._closed:
            c._why = "handler_error"
            self.engine.close(c.id, abort=True)

    def _cancel_coroutine_handlers(self) -> None:
        """Threaded engine: cancel the coroutine handlers still running, as
        asyncio.run() does for the other engines once run_async returns.
        Otherwise a connection thread waiting for one that never finishes
        could never be joined, and the engine's run() would never return."""
        loop = self._aio if self._aio_thread is not None else None
        if loop is None:
            return

        def cancel_all() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()
        try:
            loop.call_soon_threadsafe(cancel_all)
        except RuntimeError:
            pass  # that loop is closed: nothing runs on it

    def _start_aio_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._aio = loop
        self._aio_thread = threading.Thread(target=loop.run_forever,
                                            name="fastnet-asyncio", daemon=True)
        start_without_signals(self._aio_thread)

    def _stop_aio_thread(self) -> None:
        loop, thread = self._aio, self._aio_thread
        assert loop is not None and thread is not None
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._aio = self._aio_thread = None

    def _start_stats_timer(self) -> None:
        interval = self.stats_interval
        if not interval:
            return

        def tick() -> None:
            self.log_stats()
            self.engine.call_later(interval, tick)
        self.engine.call_later(interval, tick)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counters[key] += 1
