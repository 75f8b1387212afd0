"""ThreadedEngine: the classic model, blocking sockets and a thread per
connection.

One accept thread per listener and one daemon thread per connection (started
on accept, or by ``connect``). Nothing is served before ``run()`` starts, as
on the event-loop engines: listeners and connects made earlier get their
threads then (the kernel queues incoming connections meanwhile). Each connection's
thread reads, frames, and calls the handler: **handler callbacks run on that
connection's own thread, concurrently with other connections' callbacks, so
the handler must be thread-safe.** A callback may block; that stalls only its
own connection. ``on_accept`` is the exception: the listener's accept thread
calls it, in accept order, before it starts the connection's thread (so it
should not block: it holds up that listener's next accepts).

Writes are synchronous: ``send``/``write`` call ``sendall`` at once, under a
per-connection lock, from whatever thread calls them (so writes from several
threads never interleave). Backpressure is therefore natural: an echo
connection whose peer does not read blocks in ``sendall`` and stops reading.
Everything else follows the C engine (csrc/loop.h): echo mode, EOF and
half-close, protocol errors, close reasons, counters.

``pause_reading`` takes effect before the connection's next read or next
message (a read already under way completes). A connection paused in
``on_accept`` (a server's backlog) has nothing read from it until it is
resumed: its thread starts after ``on_accept`` returns. As on
the other engines, an exception that escapes a handler callback is logged
(``fastnet.engine``) and the connection goes on;
``send``/``write``/``peer``/``fileno`` on a connection that is closed or
unknown raise ``EngineError(EBADF)``, ``close``/``pause_reading`` on one do
nothing. Engine methods are safe from any thread, including the run()
thread's timers.

The ``run()`` thread is the engine's own: it runs timers and thread-safe
callbacks and reports ``on_idle``, and, after ``stop()``, closes the
listeners and every connection (``on_close`` ABORT) and joins every thread.
It sleeps on a socketpair until the next timer or idle deadline: ``stop()``
and ``call_soon_threadsafe()`` wake it with a one-byte send, which takes no
lock, so both are safe from signal handlers (a threading.Event's ``set``
takes a lock that the interrupted thread may be holding).

Idle detection costs what it costs in csrc/loop.c: the IdleClock shared
with PyEngine (engine/_accounting.py), whose marks a read moves, O(1),
under the engine lock it already takes to count the bytes; a check looks
only at the connections that expired. The run() thread reports them
without holding any engine lock (the handler's own lock, a Server's RLock,
is taken inside on_idle, and connection threads take it in their
callbacks).
"""
from __future__ import annotations

import errno
import heapq
import logging
import math
import select
import signal
import socket
import struct
import threading
import time
from typing import Any, Callable, Optional

from .. import limits
from .._threads import start_without_signals
from ..errors import EngineError, ProtocolError
from . import _sockets
from ._accounting import Counters, IdleClock
from .base import Buffer, CloseReason, ConnSpec, Engine, EngineHandler, Listener, TimerHandle

log = logging.getLogger("fastnet.engine")

_READ_CHUNK = limits.READ_CHUNK
_GRACEFUL = (CloseReason.LOCAL, CloseReason.PEER, CloseReason.PROTOCOL)
#: Close requests after which writes are refused (EBADF).
_REFUSING = (CloseReason.ABORT, CloseReason.RESET, CloseReason.SEND_TIMEOUT)


class _Conn:
    """One connection. ``lock`` serializes writes; ``cv`` guards the state
    flags (and the socket's shutdown/close, so neither hits a reused fd).
    Lock order: ``lock``, then ``cv``, then the engine's ``_lock``; none of
    them is held while a handler callback runs."""

    __slots__ = ("id", "sock", "spec", "dec", "frame", "echo", "lock", "cv", "paused",
                 "close_req", "close_errno", "connected", "pending", "closed", "peer",
                 "last_in")

    def __init__(self, conn_id: int, sock: socket.socket, spec: ConnSpec, connected: bool) -> None:
        self.id = conn_id
        self.sock = sock
        self.spec = spec
        self.dec = _sockets.new_decoder(spec)
        self.frame = _sockets.framer(spec)
        self.echo = spec.echo
        self.lock = threading.Lock()
        self.cv = threading.Condition(threading.Lock())
        self.paused = False
        self.close_req: Optional[CloseReason] = None  # why the connection is to close
        self.close_errno = 0
        self.connected = connected
        self.pending: list[bytes] = []   # output queued before an outgoing connect completed
        self.closed = False
        self.peer: Optional[tuple[str, int]] = None
        self.last_in = 0.0               # when its last byte arrived (or it opened)

    def shutdown(self, how: int) -> None:
        """shutdown(2) unless already closed; call with ``cv`` held."""
        if not self.closed:
            try:
                self.sock.shutdown(how)
            except OSError:
                pass  # not connected (yet, or any more)


class _Listen:
    __slots__ = ("listener", "sock", "spec", "closed", "lock")

    def __init__(self, listener: Listener, sock: socket.socket, spec: ConnSpec) -> None:
        self.listener = listener
        self.sock = sock
        self.spec = spec
        self.closed = False
        self.lock = threading.Lock()     # the socket's shutdown vs its close

    def shut(self) -> None:
        """Stop listening: connects are refused, and the blocked accept()
        returns (its thread then closes the socket)."""
        with self.lock:
            self.closed = True
            if self.sock.fileno() >= 0:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class ThreadedEngine(Engine):
    """Blocking sockets, a thread per connection. See the module docstring
    for the threading rules handlers must follow."""

    name = "threaded"
    callbacks_from_many_threads = True

    def __init__(self, handler: EngineHandler) -> None:
        super().__init__(handler)
        self._lock = threading.Lock()             # the dicts, ids, threads, counters, _idle
        self._freed = threading.Condition(self._lock)  # a connection closed (or stopping)
        self._conns: dict[int, _Conn] = {}
        self._listeners: dict[int, _Listen] = {}
        self._threads: set[threading.Thread] = set()
        self._next_conn = 1
        self._next_listener = 0
        self._stopping = False
        self._tearing_down = False
        self._running = False
        self._waiting: list[tuple[Any, tuple[Any, ...], str]] = []  # threads to start in run()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._wake_poll = select.poll()
        self._wake_poll.register(self._wake_r, select.POLLIN)
        # Timers are scheduled from connection threads too (a Server arms
        # its backlog timer in on_accept): the heap is guarded.
        self._timer_lock = threading.Lock()
        # Open, non-closing connections -> idle mark, oldest first (module
        # docstring); guarded by _lock.
        self._idle_clock: IdleClock[_Conn] = IdleClock()
        self._idle = self._idle_clock.marks          # inlined by the read loop
        self._n = Counters()                         # guarded by _lock
        self._send_timeout: Optional[float] = None  # SO_SNDTIMEO on every socket

    # -- listening and connecting ---------------------------------------

    def listen(self, host: str, port: int, spec: ConnSpec,
               backlog: int = limits.DEFAULT_LISTEN_BACKLOG) -> Listener:
        """Bind and listen; accepting (on a new thread) starts with run()."""
        sock = _sockets.listening_socket(host, port, backlog)
        with self._lock:
            if self._tearing_down:
                sock.close()
                raise EngineError(errno.EBADF, "the engine has shut down")
            listener = Listener(self._next_listener, host, sock.getsockname()[1])
            self._next_listener += 1
            lst = _Listen(listener, sock, spec)
            self._listeners[listener.id] = lst
        self._spawn(self._accept_loop, (lst,), f"fastnet-accept-{listener.port}")
        return listener

    def unlisten(self, listener: Listener) -> None:
        with self._lock:
            lst = self._listeners.pop(listener.id, None)
            self._freed.notify_all()
        if lst is not None:
            lst.shut()

    def connect(self, host: str, port: int, spec: ConnSpec) -> int:
        """Start connecting on the connection's own thread (a blocking
        connect); output sent before it completes is queued."""
        family, addr = _sockets.sockaddr(host, port)
        c = self._add_conn(socket.socket(family, socket.SOCK_STREAM), spec, connected=False)
        self._spawn(self._serve, (c, addr), f"fastnet-conn-{c.id}")
        return c.id

    # -- output -----------------------------------------------------------

    def send(self, conn: int, message: Buffer) -> None:
        c = self._conns.get(conn)
        if c is None:
            raise _sockets.gone(conn)
        frame = c.frame
        if not self._write_out(c, frame(message) if frame is not None else message):
            raise _sockets.gone(conn)

    def write(self, conn: int, data: Buffer) -> None:
        c = self._conns.get(conn)
        if c is None or not self._write_out(c, data):
            raise _sockets.gone(conn)

    def _write_out(self, c: _Conn, data: Any) -> bool:
        """sendall under the connection's write lock. False if the connection
        is closed, being aborted or broken by an earlier write; a socket
        error is not raised here but closes the connection with RESET (as a
        failed flush does in the event-loop engines), and the writes after
        it are refused (a writer looping on a dead peer learns of it before
        its thread delivers on_close)."""
        with c.lock:
            if c.closed or c.close_req in _REFUSING:
                return False
            if not c.connected:
                c.pending.append(bytes(data))
                return True
            try:
                c.sock.sendall(data)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    # SO_SNDTIMEO: no progress for the send timeout.
                    _sockets.set_abort_linger(c.sock)
                    self._broken(c, 0, CloseReason.SEND_TIMEOUT)
                else:
                    self._broken(c, exc.errno or errno.ECONNRESET)
                return True
        with self._lock:
            self._n.bytes_out += len(data)
        return True

    def _broken(self, c: _Conn, err: int, reason: CloseReason = CloseReason.RESET) -> None:
        """A write failed: the connection closes with RESET, or the given
        reason (its thread is woken to do it)."""
        with c.cv:
            if c.close_req is None or c.close_req in _GRACEFUL:
                c.close_req, c.close_errno = reason, err
            self._idle_forget(c)
            c.shutdown(socket.SHUT_RDWR)
            c.cv.notify_all()

    # -- connection control ---------------------------------------------

    def close(self, conn: int, abort: bool = False) -> None:
        """Close gracefully (every write has already been sent: writes are
        synchronous) or abort with a RST. The connection's thread finishes
        the close and calls on_close. An abort also overrides a graceful
        close still under way."""
        c = self._conns.get(conn)
        if c is None:
            return
        with c.cv:
            if c.closed:
                return
            if c.close_req is not None and not (abort and c.close_req in _GRACEFUL):
                return
            if abort:
                c.close_req = CloseReason.ABORT
                _sockets.set_abort_linger(c.sock)
                # A writer blocked in sendall holds c.lock: SHUT_WR wakes it
                # (it is about to be reset anyway). Otherwise wake only the
                # reader, so the peer sees the RST and no FIN before it.
                c.shutdown(socket.SHUT_RDWR if c.lock.locked() else socket.SHUT_RD)
            else:
                c.close_req = CloseReason.LOCAL
                if c.connected:  # else its thread sees close_req once connected
                    c.shutdown(socket.SHUT_RD)
            self._idle_forget(c)
            c.cv.notify_all()

    def pause_reading(self, conn: int, paused: bool = True) -> None:
        c = self._conns.get(conn)
        if c is None:
            return
        with c.cv:
            c.paused = paused
            c.cv.notify_all()

    def peer(self, conn: int) -> tuple[str, int]:
        c = self._conns.get(conn)
        if c is None:
            raise _sockets.gone(conn)
        if c.peer is None:
            c.peer = _sockets.peer_of(c.sock, conn)
        return c.peer

    def fileno(self, conn: int) -> int:
        """The connection's socket descriptor (do not read, write or close
        it). EngineError(EBADF) if the connection is closed or unknown."""
        c = self._conns.get(conn)
        fd = -1 if c is None or c.closed else c.sock.fileno()
        if fd < 0:
            raise _sockets.gone(conn)
        return fd

    def set_idle_timeout(self, seconds: Optional[float]) -> None:
        """Report on_idle (from the run() thread) for connections silent this
        long (None or 0: off; at least a millisecond, as on the C
        engine). Costs O(1) per read and, per check, O(connections that
        expired): see the module docstring. Safe from any thread."""
        self._idle_clock.set_timeout(seconds)
        self._wake()  # the run() thread recomputes how long it may sleep

    def set_send_timeout(self, seconds: Optional[float]) -> None:
        """Abort a connection whose write made no progress for this long
        (None or 0: never): SO_SNDTIMEO on each socket, so a blocked sendall
        gives up after that long without progress. Safe from any thread."""
        self._send_timeout = max(0.001, seconds) if seconds else None
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            self._apply_send_timeout(c.sock)

    def _apply_send_timeout(self, sock: socket.socket) -> None:
        seconds = min(self._send_timeout or 0.0, limits.MAX_POLL_WAIT)
        whole = int(seconds)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                            struct.pack("ll", whole, int((seconds - whole) * 1e6)))
        except OSError:
            pass  # closed meanwhile

    def output_size(self, conn: int) -> int:
        """Bytes queued for output on a connection: writes are synchronous,
        so only what was sent before an outgoing connect completed."""
        c = self._conns.get(conn)
        return sum(map(len, c.pending)) if c is not None else 0

    def stats(self) -> dict[str, int]:
        """Counters. ``open`` = accepted + connected - closed: connects that
        fail are counted in none of them."""
        with self._lock:
            return self._n.as_stats()

    # -- running ----------------------------------------------------------

    def run(self) -> None:
        """Wait until :meth:`stop`; then close the listeners and every
        connection (on_close ABORT), join every thread, and return."""
        with self._lock:
            if self._running:
                raise RuntimeError("the engine is already running")
            self._running = True
            waiting, self._waiting = self._waiting, []
        for target, args, name in waiting:
            self._spawn(target, args, name)
        # The kernel may deliver a signal to any of our threads; its Python
        # handler (stop(), a Server's shutdown()) runs on the main thread,
        # which would sleep on until something else woke it. The wake-up fd
        # makes every signal wake it.
        previous_wakeup: Optional[int] = None
        if threading.current_thread() is threading.main_thread():
            previous_wakeup = signal.set_wakeup_fd(self._wake_w.fileno(),
                                                   warn_on_full_buffer=False)
        try:
            while not self._stopping:
                self._run_callbacks()
                if self._stopping:
                    break
                self._expire_idle()
                self._sleep(self._wait_timeout())
        finally:
            if previous_wakeup is not None:
                signal.set_wakeup_fd(previous_wakeup)
            self._teardown()

    def stop(self) -> None:
        """Wake run(), which then closes everything. Takes no lock, so it is
        safe from signal handlers."""
        self._stopping = True
        self._wake()

    def _wake(self) -> None:
        """Wake the run() thread: one byte, no lock (signal-safe)."""
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # the wake pipe is full (run() will wake anyway) or closed

    def _sleep(self, timeout: Optional[float]) -> None:
        """Wait for a wake-up, at most ``timeout`` seconds (None: no limit)."""
        ms = None if timeout is None else math.ceil(min(timeout, limits.MAX_POLL_WAIT) * 1000)
        if self._wake_poll.poll(ms):
            self._wake_r.recv(64)

    def _wait_timeout(self) -> Optional[float]:
        """How long the run() thread may sleep: until the next timer or the
        idle head's deadline, whichever is first (None: no limit)."""
        timeout = self._next_timeout()
        with self._lock:
            return self._idle_clock.wait(timeout, time.monotonic())

    # -- timers (the run() thread) ----------------------------------------

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Call ``callback()`` on the run() thread after ``delay`` seconds.
        Safe from any thread here: handlers run on connection threads."""
        handle = TimerHandle(time.monotonic() + max(0.0, delay), callback)
        with self._timer_lock:
            heapq.heappush(self._timers, handle)
            first = self._timers[0] is handle
        if first:
            self._wake()  # it may be due before the run() thread's wake-up
        return handle

    def _run_callbacks(self) -> None:
        """Run queued thread-safe callbacks, then every due timer. Callbacks
        run without the timer lock: they may schedule timers, and a
        connection thread may schedule one while holding the lock that a
        callback waits for (a Server's)."""
        soon = self._soon
        while soon:
            self._call(soon.popleft())
        timers = self._timers
        now = time.monotonic()
        while True:
            with self._timer_lock:
                if not timers or timers[0].when > now:
                    return
                handle = heapq.heappop(timers)
            if not handle.cancelled:
                self._call(handle.callback)

    def _next_timeout(self) -> Optional[float]:
        with self._timer_lock:
            return super()._next_timeout()

    # -- idle detection ---------------------------------------------------

    def _idle_open(self, c: _Conn) -> None:
        """c is established: its silence counts from now. Not if it is
        already closing (close() may come before an outgoing connect
        completes)."""
        with self._lock:
            if c.close_req is not None:
                return
            c.last_in = now = time.monotonic()
            idle = self._idle
            idle[c] = now
            first = len(idle) == 1
        if first and self._idle_clock.timeout is not None:
            self._wake()  # the run() thread may be sleeping with no deadline

    def _idle_forget(self, c: _Conn) -> None:
        """c is closing: it is reported no more. Called after close_req is
        set, so a read that races with this cannot put c back (reads only
        move connections already in the dict)."""
        with self._lock:
            self._idle.pop(c, None)

    def _expire_idle(self) -> None:
        """Report every connection whose silence reached the idle timeout,
        looking only at expired ones (from the head). They are collected
        under the lock and reported after it is released."""
        if self._idle_clock.timeout is None:
            return
        with self._lock:
            due = self._idle_clock.due(time.monotonic())
        on_idle = self.handler.on_idle
        for c, silent in due:
            if c.close_req is None:  # it may have begun closing meanwhile
                _call(on_idle, c.id, silent)

    def _teardown(self) -> None:
        with self._lock:
            self._tearing_down = True
            listeners = list(self._listeners.values())
            self._listeners.clear()
            conns = list(self._conns.values())
            self._freed.notify_all()
        for lst in listeners:
            lst.shut()
        for c in conns:
            with c.cv:
                if c.close_req is None or c.close_req in _GRACEFUL:
                    c.close_req = CloseReason.ABORT
                c.shutdown(socket.SHUT_RDWR)   # wakes its reader and any blocked writer
                c.cv.notify_all()
        me = threading.current_thread()
        while True:
            with self._lock:
                threads = [t for t in self._threads if t is not me]
            if not threads:
                break
            for thread in threads:
                thread.join()
        self._wake_poll.unregister(self._wake_r)
        self._wake_r.close()
        self._wake_w.close()

    # -- threads ----------------------------------------------------------

    def _spawn(self, target: Any, args: tuple[Any, ...], name: str) -> None:
        """Start a daemon thread running target(*args), or, before run(),
        remember to."""
        def main() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(thread)

        thread = threading.Thread(target=main, name=name, daemon=True)
        with self._lock:
            if not self._running:
                self._waiting.append((target, args, name))
                return
            self._threads.add(thread)
            # Started under the lock, so _teardown never finds a thread it
            # cannot join yet (start() returns before main() takes the lock).
            start_without_signals(thread)  # signals go to the main thread

    def _add_conn(self, sock: socket.socket, spec: ConnSpec, connected: bool) -> _Conn:
        with self._lock:
            if self._tearing_down:
                sock.close()
                raise EngineError(errno.EBADF, "the engine has shut down")
            c = _Conn(self._next_conn, sock, spec, connected)
            self._next_conn += 1
            self._conns[c.id] = c
        if self._send_timeout is not None:
            self._apply_send_timeout(sock)
        return c

    def _accept_loop(self, lst: _Listen) -> None:
        try:
            while not lst.closed:
                try:
                    sock, addr = lst.sock.accept()
                except OSError as exc:
                    if lst.closed:
                        break
                    if exc.errno in _sockets.RESOURCE_ERRNOS:
                        self._wait_for_descriptor(lst, exc)
                    continue  # ECONNABORTED and the like: that one connection is gone
                _sockets.tune(sock, lst.spec)
                try:
                    c = self._add_conn(sock, lst.spec, connected=True)
                except EngineError:
                    break
                c.peer = _sockets.peer_address(addr)
                with self._lock:
                    self._n.accepted += 1
                self._idle_open(c)
                # Here, in accept order (a server's FIFO backlog relies on
                # it), and before the connection's thread starts: one paused
                # here has nothing read from it until it is resumed.
                _call(self.handler.on_accept, c.id, lst.listener)
                self._spawn(self._serve, (c, None), f"fastnet-conn-{c.id}")
        finally:
            with lst.lock:
                lst.sock.close()

    def _wait_for_descriptor(self, lst: _Listen, exc: OSError) -> None:
        """Out of descriptors: retrying at once would spin, so wait until some
        connection closes, or ACCEPT_RETRY_DELAY."""
        log.warning("listener %s:%d: accept failed: %s; retrying in %gs or when a connection "
                    "closes", lst.listener.host, lst.listener.port, exc.strerror,
                    limits.ACCEPT_RETRY_DELAY)
        with self._freed:
            closed = self._n.closed
            self._freed.wait_for(lambda: self._n.closed != closed or lst.closed or self._tearing_down,
                                 limits.ACCEPT_RETRY_DELAY)

    # -- one connection ---------------------------------------------------

    def _serve(self, c: _Conn, addr: Optional[tuple[Any, ...]]) -> None:
        """A connection's thread: connect and report it (outgoing; accepted
        ones were reported by the accept thread), read until it closes, then
        close it and report that."""
        reason, err = CloseReason.ABORT, 0
        try:
            if addr is not None:
                if c.close_req is None:
                    try:
                        c.sock.connect(addr)
                    except OSError as exc:
                        reason, err = CloseReason.CONNECT_FAILED, exc.errno or errno.ECONNREFUSED
                        return
                if c.close_req is not None:
                    # Closed while connecting: as in C, nothing was sent and
                    # on_connected does not follow.
                    reason = CloseReason.LOCAL if c.close_req is CloseReason.LOCAL else CloseReason.ABORT
                    return
                _sockets.tune(c.sock, c.spec)
                with self._lock:
                    self._n.connected += 1
                self._idle_open(c)
                self._flush_pending(c)
                _call(self.handler.on_connected, c.id)
            reason, err = self._read_loop(c)
        finally:
            self._finish(c, reason, err)

    def _flush_pending(self, c: _Conn) -> None:
        with c.lock:
            c.connected = True
            pending, c.pending = b"".join(c.pending), []
        if pending:
            self._write_out(c, pending)

    def _read_loop(self, c: _Conn) -> tuple[CloseReason, int]:
        """Read, frame and dispatch until the connection is to close; return
        why (and the errno for RESET)."""
        sock, dec, echo, cid = c.sock, c.dec, c.echo, c.id
        on_message = None if echo else self.handler.on_message
        # Marks are taken under the lock, so the idle dict stays in order.
        lock, idle = self._lock, self._idle
        # The thread's own read buffer (recv(READ_CHUNK) would allocate and
        # page-fault in 256 KiB per call); only the pages a read touches
        # become resident.
        buf = bytearray(_READ_CHUNK)
        view = memoryview(buf)
        while True:
            if (c.paused or c.close_req is not None) and not self._may_read(c):
                return c.close_req, c.close_errno  # type: ignore[return-value]
            try:
                n = sock.recv_into(buf)
            except OSError as exc:
                if c.close_req is not None:   # woken by our own shutdown()
                    return c.close_req, c.close_errno
                return CloseReason.RESET, exc.errno or errno.ECONNRESET
            if not n:
                if c.close_req is not None:
                    return c.close_req, c.close_errno
                if echo:
                    return CloseReason.PEER, 0    # every echo has been written
                _call(self.handler.on_eof, cid)
                return self._wait_close(c)
            if c.close_req is not None:   # close() from another thread mid-recv
                return c.close_req, c.close_errno
            if dec is None:
                with lock:
                    self._n.bytes_in += n
                    self._n.messages_in += 1
                    if c in idle:  # O(1): it becomes the newest
                        c.last_in = idle[c] = time.monotonic()
                        idle.move_to_end(c)
                if echo:
                    self._write_out(c, view[:n])
                else:
                    _call(on_message, cid, bytes(view[:n]))
                continue
            with lock:
                self._n.bytes_in += n
                if c in idle:
                    c.last_in = idle[c] = time.monotonic()
                    idle.move_to_end(c)
            dec.feed(view[:n])
            try:
                if echo:
                    self._echo(c)
                    continue
                while c.close_req is None:
                    if c.paused and not self._may_read(c):
                        break
                    message = dec.next_message()
                    if message is None:
                        break
                    # Counted before the handler can reply: a peer that
                    # got the answer sees the message counted.
                    with self._lock:
                        self._n.messages_in += 1
                    _call(on_message, cid, message)
            except ProtocolError as error:   # only the decoder's: _call catches the handler's
                return self._protocol_error(c, error)

    def _echo(self, c: _Conn) -> None:
        """Echo every whole message buffered in c's decoder with one
        sendall; a framing error is raised after the messages before it are
        echoed."""
        dec, frame = c.dec, c.frame
        assert frame is not None  # a framing with a decoder frames its output
        out: list[bytes] = []
        error: Optional[ProtocolError] = None
        while c.close_req is None and (not c.paused or self._may_read(c)):
            try:
                message = dec.next_message()
            except ProtocolError as exc:
                error = exc
                break
            if message is None:
                break
            out.append(frame(message))
        if out:
            with self._lock:
                self._n.messages_in += len(out)
            self._write_out(c, b"".join(out))
        if error is not None:
            raise error

    def _protocol_error(self, c: _Conn, error: ProtocolError) -> tuple[CloseReason, int]:
        if not c.echo:
            _call(self.handler.on_protocol_error, c.id, error)
            return self._wait_close(c)
        # Set before the callback: what it writes (an error reply) still goes
        # out, and its close() is a no-op, so the reason stays PROTOCOL.
        with c.cv:
            if c.close_req is None:
                c.close_req = CloseReason.PROTOCOL
            self._idle_forget(c)
        _call(self.handler.on_protocol_error, c.id, error)
        return c.close_req, c.close_errno  # type: ignore[return-value]

    def _may_read(self, c: _Conn) -> bool:
        """Wait while paused; False once the connection is to close."""
        with c.cv:
            c.cv.wait_for(lambda: not c.paused or c.close_req is not None)
            return c.close_req is None

    def _wait_close(self, c: _Conn) -> tuple[CloseReason, int]:
        """Reading is over (EOF, protocol error); the write side stays open
        until close() (or stop())."""
        with c.cv:
            c.cv.wait_for(lambda: c.close_req is not None)
            return c.close_req, c.close_errno  # type: ignore[return-value]

    def _finish(self, c: _Conn, reason: CloseReason, err: int) -> None:
        """Report the close, then close the socket (after any write in
        flight: graceful closes send a FIN after the last byte).

        on_close runs before the peer can see the FIN or RST, as on the
        event-loop engines (which close the socket after the round that
        delivers on_close): a peer that saw its connection closed by the
        handler finds the handler's bookkeeping of that close done."""
        with c.lock, c.cv:
            c.closed = True       # no more writes; shutdown() is ours alone now
            c.close_req = c.close_req or reason
        with self._lock:
            del self._conns[c.id]
            self._idle.pop(c, None)
            if c.connected:  # it was established (accepted, or connected)
                self._n.closed += 1
        try:
            _call(self.handler.on_close, c.id, reason, err)
        finally:
            with c.lock, c.cv:
                if reason in _GRACEFUL:
                    try:
                        c.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                c.sock.close()
            with self._lock:
                self._freed.notify_all()  # a descriptor is free


def _call(callback: Any, conn: int, *args: Any) -> None:
    """Call a handler callback; log what escapes it."""
    try:
        callback(conn, *args)
    except Exception:
        log.exception("handler failed in %s of connection %d", callback.__name__, conn)
