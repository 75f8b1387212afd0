"""The Server: listeners, connections, sessions, and the policy.

The engine moves bytes and frames them; the Server hands each message to
the connection's session (the protocol unit's, see
:mod:`fastnet.server.protocols`: for the message protocols, the user's
handler), sends what it answers, answers framing errors and failed
handlers in the protocol's form, and runs the control plane:

* a connection limit with a FIFO backlog (``max_connections``,
  ``backlog``, ``queue_timeout``): connections over the limit wait unread,
  oldest promoted first; beyond the backlog they are turned away at once;
* graceful shutdown (``shutdown``, and SIGINT/SIGTERM under ``run()`` on
  the main thread): stop accepting, turn the backlog away, write each
  session's goodbye, let requests already received finish and their
  replies be written, close each connection as soon as it is idle, force
  the rest at a deadline;
* keep-alive: a peer silent for ``idle_timeout`` is closed, and on
  protocols with a probe a quiet peer is probed after
  ``keepalive_interval`` and closed if it does not answer;
* counters (``stats``).

A handler is ``handler(conn, message) -> bytes | None`` or the same as an
``async def``. A returned value is sent back as one message; ``None`` sends
nothing (the handler may call ``conn.send`` itself, any number of times).
Anything else returned, or an exception, closes that connection alone.
Messages of one connection are handled in order, one at a time, unless the
protocol's session is ``multiplexed``; coroutine handlers of different
connections run concurrently, so a slow one never stalls the others.

Threads: with the C and Python engines everything here runs on the
engine's thread. The threaded engine calls in from every connection's
thread, so the control-plane state is guarded by one lock (taken per
connection event, never per message).
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import logging
import resource
import signal
import sys
import threading
import time
from typing import Any, Awaitable, Callable, Coroutine, Iterator, Optional, Union

from .. import limits
from .._threads import start_without_signals
from ..engine import engine_class
from ..engine.base import CloseReason, DirectHandler, Listener, TimerHandle, check_reply
from ..errors import EngineError, ProtocolError
from .protocols import ProtocolSpec, ProtocolUnit, Reply, Session, get

log = logging.getLogger("fastnet.server")

HandlerResult = Reply
Handler = Callable[["Connection", bytes],
                   Union[HandlerResult, Awaitable[HandlerResult]]]
#: on_connect / on_close hooks of Server.listen.
Hook = Callable[["Connection"], None]

_QUEUED, _ACTIVE, _REJECTED = "queued", "active", "rejected"


class Connection:
    """One client connection, as a handler (or a protocol's session) sees it.

    ``state`` is a dict for the handler's own per-connection data;
    ``session`` is the protocol's :class:`~fastnet.server.protocols.Session`
    for this connection; ``server`` the Server it belongs to.
    """

    __slots__ = ("id", "listener", "state", "server", "session", "_route", "_peer",
                 "_queue", "_busy", "_inflight", "_paused", "_eof", "_closed", "_closing",
                 "_phase", "_why", "_deadline", "_opened", "_feed", "_feed_arg")

    def __init__(self, server: "Server", conn_id: int, route: "_Route") -> None:
        self.id = conn_id
        self.listener = route.listener
        self.state: dict[str, Any] = {}
        self.server = server
        self.session: Optional[Session] = None
        self._route = route
        self._peer: Optional[tuple[str, int]] = None
        self._queue: collections.deque[bytes] = collections.deque()
        self._busy = False      # a coroutine handler is working through _queue
        self._inflight = 0      # multiplexed: requests running
        self._paused = False    # reading paused because _queue is long
        self._eof = False       # the peer will send nothing more
        self._closed = False    # on_close has run
        self._closing = False   # the handler closed it: what it returns is dropped
        self._phase = _ACTIVE   # _QUEUED in the backlog, _REJECTED turned away
        self._why = ""          # why the server closed it ("" if it did not)
        self._deadline = 0.0    # queued: when it is turned away
        self._opened = False    # session.opened() and on_connect have run
        self._feed: Optional[DirectHandler] = None  # session.direct(): what a message goes to
        self._feed_arg: object = None

    @property
    def peer(self) -> tuple[str, int]:
        """The client's (host, port)."""
        if self._peer is None:
            self._peer = self.server.engine.peer(self.id)
        return self._peer

    @property
    def protocol(self) -> ProtocolSpec:
        """The protocol this connection speaks."""
        return self._route.unit.spec

    @property
    def closed(self) -> bool:
        """True once the connection is gone, or closing because the handler
        (or the server) closed it: sends are dropped from then on."""
        return self._closed or self._closing

    @property
    def eof(self) -> bool:
        """The peer has half-closed: it will send nothing more."""
        return self._eof

    def send(self, message: Reply) -> None:
        """Send one message, framed by this connection's protocol."""
        if not self._closed:
            self.server.engine.send(self.id, message)  # type: ignore[arg-type]

    def write(self, data: Reply) -> None:
        """Send raw bytes, without framing."""
        if not self._closed:
            self.server.engine.write(self.id, data)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close after everything already sent has been written. A reply
        the handler returns after this is dropped."""
        if not self._closed:
            self._closing = True
            self.server.engine.close(self.id)

    def abort(self) -> None:
        """Close at once with a reset, dropping unsent output."""
        if not self._closed:
            self._closing = True
            self.server.engine.close(self.id, abort=True)

    def protocol_error(self, error: ProtocolError) -> None:
        """The peer broke the protocol (for sessions that parse their own
        bytes): log and count it, send the protocol's error form and close
        this connection once what was sent before is written."""
        self.server._protocol_error(self, error)

    def idle(self) -> None:
        """A session that said it was not :meth:`Session.idle` calls this
        once it is: the server closes the connection now if it is draining
        (or the peer has half-closed)."""
        self.server._after_request(self)

    def __repr__(self) -> str:
        return f"<Connection {self.id} on {self.listener.host}:{self.listener.port}>"


class _Route:
    """What a listener's connections run: protocol unit, handler, hooks."""

    __slots__ = ("listener", "unit", "handler", "on_connect", "on_close", "probe_reply",
                 "echo")

    def __init__(self, listener: Listener, unit: ProtocolUnit, handler: Any,
                 on_connect: Optional[Hook], on_close: Optional[Hook], echo: bool) -> None:
        self.listener = listener
        self.unit = unit
        self.handler = handler
        self.on_connect = on_connect
        self.on_close = on_close
        self.echo = echo  # the engine echoes: no session
        self.probe_reply = unit.spec.probe_reply  # read per message: one hop


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


def _callable_name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else str(name)


class _EngineEvents:
    """The server's EngineHandler: the engine's callbacks, kept off
    Server's public surface. Each attribute is the server's private method
    itself, so an event costs no extra call."""

    on_accept: Callable[[int, Listener], None]
    on_connected: Callable[[int], None]
    on_message: Callable[[int, bytes], None]
    on_eof: Callable[[int], None]
    on_protocol_error: Callable[[int, ProtocolError], None]
    on_close: Callable[[int, CloseReason, int], None]
    on_idle: Callable[[int, float], None]

    def __init__(self, server: "Server") -> None:
        self.on_accept = server._on_accept
        self.on_connected = server._on_connected
        self.on_message = server._on_message
        self.on_eof = server._on_eof
        self.on_protocol_error = server._on_protocol_error
        self.on_close = server._on_close
        self.on_idle = server._on_idle


class Server:
    """A fastnet server: one engine, one or more listeners.

    >>> server = Server(engine="c", max_connections=1000)
    >>> server.listen("127.0.0.1", 9000, protocol="frame", handler=upper)
    >>> server.run()          # until SIGINT/SIGTERM, server.shutdown() or server.stop()

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
        self._check_limits(max_connections, backlog, queue_timeout)
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive (or None for never)")
        if keepalive_interval is not None and keepalive_interval <= 0:
            raise ValueError("keepalive_interval must be positive (or None)")
        if frame_header not in ("be32", "varint"):
            raise ValueError(f"frame_header must be 'be32' or 'varint', not {frame_header!r}")
        if send_timeout is not None and not send_timeout > 0:
            raise ValueError("send_timeout must be positive (or None for never)")
        self._engine_events = _EngineEvents(self)
        self.engine = engine_class(engine)(self._engine_events)
        self.send_timeout = send_timeout
        self.engine.set_send_timeout(send_timeout)
        self.max_frame = max_frame
        self.max_line = max_line
        self.bare_lf = bare_lf
        self.frame_header = frame_header
        self.tcp_keepalive = tcp_keepalive
        self.drain_timeout = drain_timeout
        self.stats_interval = stats_interval
        self.max_connections, self.backlog, self.queue_timeout = max_connections, backlog, queue_timeout
        self.idle_timeout = idle_timeout
        self.keepalive_interval = keepalive_interval
        raise_open_file_limit(max_connections + backlog + 64)

        self._threaded = self.engine.callbacks_from_many_threads
        self._routes: dict[int, _Route] = {}
        self._conns: dict[int, Connection] = {}
        self._backlog: collections.OrderedDict[int, Connection] = collections.OrderedDict()
        self._active = 0
        self._counters: collections.Counter[str] = collections.Counter()
        # The threaded engine calls in from many threads; the others from one.
        self._lock = threading.RLock()
        self._aio: Optional[asyncio.AbstractEventLoop] = None  # loop running coroutine handlers
        self._aio_thread: Optional[threading.Thread] = None    # its thread, threaded engine only
        self._tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references
        self._queue_timer: Optional[TimerHandle] = None
        self._drain_timer: Optional[TimerHandle] = None
        self._draining = False
        #: Connections force-closed at the drain deadline (or by a second
        #: shutdown request): ``python -m fastnet.serve`` exits 1 when > 0.
        self.forced_closes = 0

    # -- set-up ----------------------------------------------------------

    def listen(self, host: str = "127.0.0.1", port: int = 9000, *,
               protocol: Union[str, ProtocolUnit, ProtocolSpec] = "echo",
               handler: Optional[Any] = None,
               on_connect: Optional[Hook] = None, on_close: Optional[Hook] = None,
               backlog: int = limits.DEFAULT_LISTEN_BACKLOG) -> Listener:
        """Listen on host:port (0 picks a free port: see the returned
        Listener's ``port``) and serve ``protocol`` there: a registered
        protocol's name (fastnet.server.protocols), or a unit or spec.

        ``handler`` is what the protocol's session runs: for echo, frame
        and line ``handler(conn, message) -> bytes | None`` (plain or
        ``async def``); without one every message is echoed back by the
        engine itself (in C on the C engine, with no Python call per
        message). ``on_connect(conn)`` runs once a connection is served
        (after a wait in the backlog, if any), ``on_close(conn)`` once it
        is gone (only after on_connect ran); an exception in on_connect
        closes that connection as a handler's would.

        ``backlog`` here is listen(2)'s: the kernel's queue of completed
        handshakes not yet accepted. The server's own backlog (connections
        accepted over max_connections, waiting) is the constructor's."""
        unit = get(protocol)
        if unit.server_class is not None and not isinstance(self, unit.server_class):
            raise ValueError(f"the {unit.name} protocol is served by "
                             f"{unit.server_class.__module__}.{unit.server_class.__qualname__}, "
                             f"not {type(self).__name__}")
        if handler is not None and not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        for name, hook in (("on_connect", on_connect), ("on_close", on_close)):
            if hook is not None and not callable(hook):
                raise TypeError(f"{name} must be callable, not {type(hook).__name__}")
        echo = handler is None and unit.echo
        conn_spec = unit.spec.conn_spec(max_frame=self.max_frame, max_line=self.max_line,
                                        bare_lf=self.bare_lf, frame_header=self.frame_header,
                                        echo=echo, tcp_keepalive=self.tcp_keepalive)
        listener = self.engine.listen(host, port, conn_spec, backlog)
        self._routes[listener.id] = _Route(listener, unit, handler, on_connect, on_close, echo)
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

    def run(self, *, handle_signals: bool = True) -> None:
        """Serve until :meth:`shutdown` has drained or :meth:`stop`.
        Coroutine handlers run on an asyncio loop (the engine runs inside
        it, or beside it for the threaded engine).

        On the main thread (and unless ``handle_signals`` is False),
        SIGINT and SIGTERM start a graceful :meth:`shutdown`, as
        ``python -m fastnet.serve`` does, and a second one forces it; the
        previous handlers are back once run() returns."""
        needs_aio = any(not route.echo and route.unit.needs_asyncio(route.handler)
                        for route in self._routes.values())
        self._start_stats_timer()
        with self._signals_drain(handle_signals):
            if not needs_aio:
                self.engine.run()
            elif not self.engine.runs_in_asyncio:
                self._start_aio_thread()
                try:
                    self.engine.run()
                finally:
                    self._stop_aio_thread()
            elif hasattr(asyncio, "Runner"):  # Python 3.11+
                with asyncio.Runner(loop_factory=self.engine.new_event_loop) as runner:
                    runner.run(self.run_async())
            else:
                asyncio.run(self.run_async())

    @contextlib.contextmanager
    def _signals_drain(self, wanted: bool) -> Iterator[None]:
        if not wanted or threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, frame: object) -> None:
            log.info("%s: shutting down", signal.Signals(signum).name)
            self.shutdown()  # a second one forces

        previous = {signum: signal.signal(signum, on_signal)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

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

    # -- engine events (the EngineHandler, through _EngineEvents) --------

    def _on_accept(self, conn: int, listener: Listener) -> None:
        route = self._routes[listener.id]
        c = Connection(self, conn, route)
        with self._lock:
            self._conns[conn] = c
            if self._draining:
                self._reject(c, "shutdown")
                return
            if not route.echo and not self._start_session(c):
                return
            if self._active < self.max_connections:
                self._active += 1
                self._open(c)
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

    def _start_session(self, c: Connection) -> bool:
        """Make the connection's session and offer the engine the direct
        path for it; False (and the connection closing) if that failed."""
        route = c._route
        try:
            session = c.session = route.unit.session(c, route.handler)
            c._feed, c._feed_arg = session.direct()
        except Exception:
            self._handler_failed(c)
            return False
        if not session.is_async and route.probe_reply is None:
            # The engine may call it per message itself: what _on_message
            # does, less the probe and coroutine checks that do not apply.
            # on_error gets the direct path's argument (the session, for
            # most protocols), not the Connection: bind the connection.
            def on_error(_arg: object) -> None:
                self._handler_failed(c)
            self.engine.serve_directly(c.id, c._feed, c._feed_arg, on_error)
        return True

    def _open(self, c: Connection) -> None:
        """The connection is served from now on: the session and the hook hear of it."""
        if c.session is None and c._route.on_connect is None:
            return
        c._opened = True
        try:
            if c.session is not None:
                c.session.opened()
            if c._route.on_connect is not None:
                c._route.on_connect(c)
        except Exception:
            self._handler_failed(c)

    def _on_connected(self, conn: int) -> None:
        # A server makes no outgoing connections.
        self.engine.close(conn, abort=True)

    def _on_message(self, conn: int, message: bytes) -> None:
        c = self._conns[conn]
        if c._route.probe_reply is not None and message == c._route.probe_reply:
            return  # a keep-alive answer, not a request
        session = c.session
        if session is None or c._closing:
            return  # its session failed to start, or the handler closed it
        if session.is_async:
            self._enqueue(c, session, message)
            return
        try:
            reply = c._feed(c._feed_arg, message)  # type: ignore[misc]
            if reply is not None and type(reply) is not bytes:
                reply = check_reply(reply)
        except Exception:
            self._handler_failed(c)
            return
        if reply is not None and not (c._closed or c._closing):
            self.engine.send(conn, reply)

    def _on_eof(self, conn: int) -> None:
        c = self._conns[conn]
        c._eof = True
        if self._idle(c):
            self.engine.close(conn)

    def _on_protocol_error(self, conn: int, error: ProtocolError) -> None:
        self._protocol_error(self._conns[conn], error)

    def _protocol_error(self, c: Connection, error: ProtocolError) -> None:
        try:
            host, port = c.peer
        except OSError:
            host, port = "?", 0
        log.warning("closing connection %d from %s:%d: %s", c.id, host, port, error)
        self._count("protocol_errors")
        c._why = c._why or error.close_reason
        reply = c.protocol.error_reply(error)
        try:
            if reply is not None:
                self.engine.write(c.id, reply)
            self.engine.close(c.id)
        except EngineError:
            pass  # an echo connection the engine is already closing

    def _on_close(self, conn: int, reason: CloseReason, errno: int) -> None:
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
        if c._opened:
            try:
                if c.session is not None:
                    c.session.closed()
                if c._route.on_close is not None:
                    c._route.on_close(c)
            except Exception:
                log.exception("%s failed in on_close of connection %d",
                              _callable_name(c._route.on_close or c.session), conn)
                self._count("handler_errors")

    def _on_idle(self, conn: int, silent: float) -> None:
        c = self._conns.get(conn)
        if c is None or c._phase != _ACTIVE:
            return  # waiting connections answer to queue_timeout instead
        if not self._idle(c) or self.engine.output_size(conn):
            return  # a request in progress, or a reply still going out: not idle
        idle, interval = self.idle_timeout, self.keepalive_interval
        probe = c.protocol.probe
        if c.protocol.session_probe and c.session is not None:
            probe = c.session.keepalive_probe() or probe
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
        if self.keepalive_interval and any(r.unit.spec.probe or r.unit.spec.session_probe
                                           for r in self._routes.values()):
            periods.append(self.keepalive_interval)
        return min(periods) if periods else None

    def _close_for(self, c: Connection, why: str) -> None:
        c._why = why
        self.engine.close(c.id)

    @staticmethod
    def _idle(c: Connection) -> bool:
        """Nothing in flight on the connection: no request running, and its
        session holds no work of its own."""
        return (not c._busy and not c._inflight
                and (c.session is None or c.session.idle()))

    # -- connection limit and backlog ------------------------------------

    def _reject(self, c: Connection, why: str) -> None:
        """Turn a connection away, in the protocol's own words if it has any."""
        c._phase = _REJECTED
        c._why = "rejected"
        self._counters["rejected_" + why] += 1
        session = c.session
        if session is not None and session.refuse(why):
            c._opened = True  # it answers the refusal itself: it hears of the close
            self.engine.pause_reading(c.id, False)  # a backlog's connection was unread
            session.opened()
            return
        reply = c.protocol.rejection(why)
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
            self._open(c)

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
                if c._phase != _ACTIVE or c._closed or c._closing:
                    continue
                if c.session is not None and not self._say_goodbye(c):
                    continue
                if self._idle(c):
                    self._close_for(c, "drained")
                else:
                    busy += 1
                    assert c.session is not None
                    if not c.session.multiplexed:
                        # Finish what was received, read no more (a
                        # multiplexed session reads on: its requests in
                        # flight may need more input, and it refuses new ones).
                        self.engine.pause_reading(c.id)
            log.info("shutting down: %d connection(s) busy, waiting up to %gs",
                     busy, timeout)
            if not self._conns:
                self._drained_all()
            else:
                self._drain_timer = self.engine.call_later(timeout, self._force)

    def _say_goodbye(self, c: Connection) -> bool:
        """The session's drain(): write its goodbye. False if it failed."""
        assert c.session is not None
        try:
            goodbye = c.session.drain()
            if goodbye is not None:
                self.engine.write(c.id, check_reply(goodbye))
        except Exception:
            self._handler_failed(c)
            return False
        return True

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

    def _enqueue(self, c: Connection, session: Session, message: bytes) -> None:
        if session.multiplexed:
            self._start_one(c, message)
            return
        c._queue.append(message)
        if len(c._queue) >= limits.MAX_PENDING_MESSAGES and not c._paused:
            c._paused = True
            self.engine.pause_reading(c.id)
        if c._busy:
            return
        c._busy = True
        if self.engine.callbacks_from_many_threads:
            # We are on the connection's own thread: run each coroutine on the
            # shared asyncio loop and wait for it here, keeping order.
            self._drain_blocking(c)
        elif self._aio is None:
            self._no_loop(c)
        else:
            self._spawn(self._drain(c))

    def _no_loop(self, c: Connection) -> None:
        try:
            raise RuntimeError("a coroutine session runs only under run() or run_async()")
        except RuntimeError:
            self._handler_failed(c)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._aio is not None
        task = self._aio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _request(self, c: Connection, message: bytes,
                       started: Optional[Awaitable[Any]] = None) -> bool:
        """Run one coroutine request (``started``: what feed already
        returned for it) and send its reply; False if it failed (the
        connection is then closing)."""
        try:
            reply = started if started is not None else c._feed(c._feed_arg, message)  # type: ignore[misc]
            if inspect.isawaitable(reply):  # else answered at once (a multiplexed session may)
                reply = await reply
            if reply is not None:
                reply = check_reply(reply)
        except Exception:
            self._handler_failed(c)
            return False
        if reply is not None and not (c._closed or c._closing):
            self.engine.send(c.id, reply)
            self.engine.flush_soon()
        return True

    async def _drain(self, c: Connection) -> None:
        while c._queue:
            if not await self._request(c, c._queue.popleft()):
                break
            if c._closed or c._closing:
                break
            self._maybe_resume(c)
        c._busy = False
        self._after_request(c)

    def _drain_blocking(self, c: Connection) -> None:
        assert self._aio is not None
        while c._queue:
            future: concurrent.futures.Future[bool] = asyncio.run_coroutine_threadsafe(
                self._request(c, c._queue.popleft()), self._aio)
            try:
                ok = future.result()
            except concurrent.futures.CancelledError:
                return  # stopping (_cancel_coroutine_handlers): the connection is being reset
            if not ok or c._closed or c._closing:
                break
            self._maybe_resume(c)
        c._busy = False
        self._after_request(c)

    def _start_one(self, c: Connection, message: bytes) -> None:
        """A multiplexed session: this request runs beside the others of
        its connection (at most MAX_PENDING_MESSAGES before reading pauses)."""
        if self._aio is not None and not self._threaded:
            # On the loop's own thread the session may answer at once (feed
            # returns bytes or None, not an awaitable): no task, no lock (no
            # other thread touches the connection), and the reply goes out
            # with this round's flush.
            c._inflight += 1
            try:
                reply = c._feed(c._feed_arg, message)  # type: ignore[misc]
            except Exception:
                self._handler_failed(c)
                self._one_done(c)
                return
            if reply is None or type(reply) is bytes:
                if reply is not None and not (c._closed or c._closing):
                    self.engine.send(c.id, reply)
                c._inflight -= 1
                if c._paused or c._eof or self._draining:
                    self._after_request(c)
                return
            if inspect.isawaitable(reply):
                if c._inflight >= limits.MAX_PENDING_MESSAGES and not c._paused:
                    c._paused = True
                    self.engine.pause_reading(c.id)
                self._spawn(self._one(c, message, reply))
                return
            self._reply_now(c, reply)
            self._one_done(c)
            return
        with self._lock:
            c._inflight += 1
            if c._inflight >= limits.MAX_PENDING_MESSAGES and not c._paused:
                c._paused = True
                self.engine.pause_reading(c.id)
        if self._aio is None:
            c._inflight -= 1
            self._no_loop(c)
        else:
            asyncio.run_coroutine_threadsafe(self._one(c, message), self._aio)

    def _reply_now(self, c: Connection, reply: Any) -> None:
        """Send what a multiplexed session's feed answered at once."""
        try:
            if reply is not None:
                reply = check_reply(reply)
        except Exception:
            self._handler_failed(c)
            return
        if reply is not None and not (c._closed or c._closing):
            self.engine.send(c.id, reply)

    def _one_done(self, c: Connection) -> None:
        with self._lock:
            c._inflight -= 1
        self._after_request(c)

    async def _one(self, c: Connection, message: bytes, started: Optional[Awaitable[Any]] = None) -> None:
        try:
            await self._request(c, message, started)
        finally:
            self._one_done(c)

    def _maybe_resume(self, c: Connection) -> None:
        if (c._paused and len(c._queue) + c._inflight < limits.MAX_PENDING_MESSAGES // 2
                and not c._closed and not self._draining):
            c._paused = False
            self.engine.pause_reading(c.id, False)

    def _after_request(self, c: Connection) -> None:
        """A request finished (or a session became idle): resume reading,
        or close the connection if it is draining or half-closed and idle."""
        with self._lock:
            if c._closed or c._closing:
                return
            self._maybe_resume(c)
            if (self._draining or c._eof) and self._idle(c):
                if self._draining:
                    self._close_for(c, "drained")
                else:
                    self.engine.close(c.id)

    def _handler_failed(self, c: Connection) -> None:
        """The handler (or session) raised, or returned what is not a
        reply: log its name and the error, count it, and close this
        connection once the replies before are written, after the
        protocol's error form where it has one."""
        route = c._route
        failed = (route.handler if route.handler is not None
                  else c.session if c.session is not None else route.unit.session)
        error = sys.exc_info()[1]
        log.error("%s failed on connection %d: %s: %s; closing it", _callable_name(failed),
                  c.id, type(error).__name__, error, exc_info=error)
        self._count("handler_errors")
        c._queue.clear()
        if c._closed:
            return
        c._why = c._why or "handler_error"
        reply = None
        try:
            reply = c.protocol.handler_error(error) if error is not None else None
        except Exception:
            log.exception("the handler_error form of %s failed", c.protocol.name)
        c._closing = True
        try:
            # Replies to the messages before this one are owed: they go out
            # first, then the error form, then the close.
            if reply is not None:
                self.engine.write(c.id, reply)
            self.engine.close(c.id)
        except EngineError:
            pass  # already closing

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
