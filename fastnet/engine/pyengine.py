"""PyEngine: the pure-Python twin of the C engine (csrc/loop.c).

select.epoll, level-triggered, over non-blocking sockets; one thread. It
behaves like the C engine event for event: the same backpressure, echo mode,
half-close, protocol-error and close-reason rules (see csrc/loop.h), so every
server runs on either and the benchmarks compare like with like.

A poll round: wait in epoll, then for each ready socket accept (up to
ACCEPT_BATCH per listener), read once (one recv of limits.READ_CHUNK), frame
and dispatch; then deliver deferred ``on_close`` callbacks and write queued
output. Replies are only queued while handlers run and are written once per
round, before the loop sleeps again (redis's beforeSleep), so many replies to
one peer cost one send(). EPOLLOUT is armed only for a connection whose
output did not fit into its socket.

``on_close`` is always deferred to the end of the round, never called from
inside the engine method (``close``) that caused it, so handlers need not be
re-entrant. As on the C engine (and as asyncio does with callbacks), an
exception that escapes a handler callback is logged (``fastnet.engine``) and
the round goes on.

``send``/``write``/``peer``/``fileno`` on a connection that is closed or
unknown raise ``EngineError(EBADF)``; ``close``/``pause_reading`` on one do
nothing. Output queued on a connection that is closing gracefully still goes
out first.

Idle detection (``set_idle_timeout``, ``on_idle``) follows csrc/loop.h and
costs what it costs there: the IdleClock shared with the threaded engine
(engine/_accounting.py), O(1) per read, a check looking only at the
connections that expired (10,000 quiet connections cost nothing until their
deadlines). The epoll wait sleeps no longer than until the head's deadline
(and the next timer); under asyncio one ``call_later`` at the head's
deadline does the check.

Timers (``call_later``, ``call_soon_threadsafe``) run after every round, on
the loop's thread; ``_wake`` writes to the eventfd that ``stop`` uses, which
stays open as long as this object, so a late wake-up from another thread
never writes to a reused descriptor.
"""
from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import select
import socket
import struct
import threading
import time
import weakref
from typing import Any, Callable, Optional

from .. import limits
from ..errors import EngineError, ProtocolError
from . import _sockets
from ._accounting import Counters, IdleClock
from .base import (Buffer, CloseReason, ConnSpec, DirectHandler, Engine, EngineHandler,
                   Listener, check_reply)

log = logging.getLogger("fastnet.engine")

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_ERRHUP = select.EPOLLERR | select.EPOLLHUP

#: Connections accepted per listener per round, so a connect storm cannot
#: starve the established connections.
ACCEPT_BATCH = 64

_READ_CHUNK = limits.READ_CHUNK
_get_ident = threading.get_ident
_BE32 = struct.Struct(">I")


class _Conn:
    """One connection's state. ``read_done`` is final (EOF, protocol error,
    closing); ``paused`` is the user's; ``bp`` is backpressure."""

    __slots__ = ("id", "sock", "fd", "spec", "dec", "frame", "echo", "out", "mask",
                 "read_done", "paused", "bp", "want_out", "connecting", "closing",
                 "closed", "peer", "last_in", "direct", "be32")

    def __init__(self, conn_id: int, sock: socket.socket, spec: ConnSpec) -> None:
        self.id = conn_id
        self.sock = sock
        self.fd = sock.fileno()
        self.spec = spec
        self.dec = _sockets.new_decoder(spec)
        self.frame = _sockets.framer(spec)
        self.echo = spec.echo
        self.out = bytearray()
        self.mask = 0
        self.read_done = False
        self.paused = False
        self.bp = False
        self.want_out = False        # a write was left incomplete: EPOLLOUT armed
        self.connecting = False
        self.closing: Optional[CloseReason] = None  # graceful close under way
        self.closed = False
        self.peer: Optional[tuple[str, int]] = None
        self.last_in = 0.0           # when its last byte arrived (or it opened)
        # serve_directly: (handler, its argument, on_error), or None.
        self.direct: Optional[tuple[DirectHandler, object, Callable[[Any], None]]] = None
        self.be32 = spec.framing == "be32"


class _Listen:
    __slots__ = ("listener", "sock", "fd", "spec", "suspended")

    def __init__(self, listener: Listener, sock: socket.socket, spec: ConnSpec) -> None:
        self.listener = listener
        self.sock = sock
        self.fd = sock.fileno()
        self.spec = spec
        self.suspended = False       # out of descriptors: not polled until a conn closes


class PyEngine(Engine):
    """The pure-Python epoll engine (single-threaded).

    Engine methods are for the engine's thread (handler callbacks, timers,
    coroutines on the asyncio loop running :meth:`run_async`), except the
    thread-safe ones listed in :mod:`fastnet.engine.base`: from another
    thread those are queued to the engine's thread and the epoll wait is
    woken (the eventfd) to carry them out.

    Under :meth:`run_async`, output queued from outside a poll round (a
    coroutine calling :meth:`send`, :meth:`write`, :meth:`close`, ...) is
    written by a flush that the engine schedules itself on the asyncio loop,
    once per loop iteration; :meth:`flush_soon` does the same explicitly.
    """

    name = "python"
    runs_in_asyncio = True
    direct_path = True

    def __init__(self, handler: EngineHandler) -> None:
        super().__init__(handler)
        self._ep = select.epoll()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        weakref.finalize(self, os.close, self._wake_fd)
        self._ep.register(self._wake_fd, _IN)
        self._rbuf = bytearray(_READ_CHUNK)         # every recv lands here
        self._rview = memoryview(self._rbuf)
        self._conns: dict[int, _Conn] = {}          # by id
        self._by_fd: dict[int, _Conn] = {}
        self._listeners: dict[int, _Listen] = {}    # by listener id
        self._listen_fds: dict[int, _Listen] = {}
        self._next_conn = 1
        self._next_listener = 0
        self._dirty: set[_Conn] = set()             # output queued since the last flush
        self._redispatch: set[_Conn] = set()        # resumed with messages still buffered
        self._deferred: list[tuple[int, CloseReason, int]] = []  # on_close to deliver
        self._graveyard: list[socket.socket] = []   # closed at the end of the round
        self._starved: list[_Listen] = []
        self._in_round = False
        self._stopping = False
        self._running = False
        self._done = False
        self._aio: Optional[asyncio.AbstractEventLoop] = None
        self._aio_done: Optional[asyncio.Future[None]] = None
        self._flush_scheduled = False
        # Open, non-closing connections -> idle mark, oldest mark first (see
        # the module docstring); kept whether or not a timeout is set.
        self._idle_clock: IdleClock[_Conn] = IdleClock()
        self._idle = self._idle_clock.marks         # inlined by the read path
        # Connections with output pending -> when it last made progress (or
        # became pending), oldest first: the send timeout's list.
        self._sending: collections.OrderedDict[_Conn, float] = collections.OrderedDict()
        self._send_timeout: Optional[float] = None
        self._idle_timer: Optional[asyncio.TimerHandle] = None  # under run_async
        self._now = 0.0                             # when this round's poll returned
        self._n = Counters()

    # -- listening and connecting ---------------------------------------

    def listen(self, host: str, port: int, spec: ConnSpec,
               backlog: int = limits.DEFAULT_LISTEN_BACKLOG) -> Listener:
        self._check_alive()
        sock = _sockets.listening_socket(host, port, backlog)
        sock.setblocking(False)
        listener = Listener(self._next_listener, host, sock.getsockname()[1])
        self._next_listener += 1
        lst = _Listen(listener, sock, spec)
        self._listeners[listener.id] = lst
        self._listen_fds[lst.fd] = lst
        self._ep.register(lst.fd, _IN)
        return listener

    def unlisten(self, listener: Listener) -> None:
        lst = self._listeners.pop(listener.id, None)
        if lst is None:
            return
        del self._listen_fds[lst.fd]
        if lst in self._starved:
            self._starved.remove(lst)
        else:
            self._ep.unregister(lst.fd)
        # Refuse connects at once; the fd itself is closed at the end of the round.
        try:
            lst.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._bury(lst.sock)

    def connect(self, host: str, port: int, spec: ConnSpec) -> int:
        self._check_alive()
        family, addr = _sockets.sockaddr(host, port)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        c = self._add_conn(sock, spec)
        c.connecting = True
        err = sock.connect_ex(addr)
        if err in (0, errno.EINPROGRESS):
            # Completion (or failure) is reported by EPOLLOUT, in a round.
            self._set_mask(c)
        else:
            self._finalize(c, CloseReason.CONNECT_FAILED, err)
        return c.id

    def serve_directly(self, conn: int, handler: DirectHandler, arg: object,
                       on_error: Callable[[Any], None]) -> bool:
        """Taken for framed and raw connections (not echo ones): each read's
        messages go to ``handler(arg, message)`` straight from the read
        buffer, their replies framed into the output queue, with no
        on_message or send() in between (see _serve_be32)."""
        c = self._conns.get(conn)
        if c is None or c.echo:
            return False
        c.direct = (handler, arg, on_error)
        return True

    # -- output -----------------------------------------------------------

    def send(self, conn: int, message: Buffer) -> None:
        """Queue one message (thread-safe: see engine.base)."""
        self._output(self.send, conn, message, True)

    def write(self, conn: int, data: Buffer) -> None:
        """Queue raw bytes (thread-safe: see engine.base)."""
        self._output(self.write, conn, data, False)

    def _output(self, method: Callable[[int, Buffer], None], conn: int, data: Buffer,
                framed: bool) -> None:
        owner = self._owner
        if owner is not None and owner != _get_ident():
            self._output_from_thread(method, conn, data)
            return
        c = self._conns.get(conn)
        if c is None:
            raise _sockets.gone(conn)
        frame = c.frame
        c.out += frame(data) if framed and frame is not None else data
        self._dirty.add(c)
        if not self._in_round and self._aio is not None:
            self.flush_soon()

    def flush_soon(self) -> None:
        """Under run_async, make sure output (and close) requests made
        outside a poll round are carried out on the next asyncio loop
        iteration; at most one flush is scheduled at a time. Inside a round,
        or under run(), the round's own flush takes care of it."""
        if self._aio is not None and not self._in_round and not self._flush_scheduled:
            self._flush_scheduled = True
            self._aio.call_soon(self._async_settle)

    # -- connection control ---------------------------------------------

    def close(self, conn: int, abort: bool = False) -> None:
        """Close gracefully, or with abort at once (RST, output dropped). An
        abort also cuts short a graceful close that is still flushing.
        Thread-safe."""
        if self._foreign():
            self._from_thread(conn, lambda: self.close(conn, abort), strict=False)
            return
        c = self._conns.get(conn)
        if c is None:
            return
        if abort:
            _sockets.set_abort_linger(c.sock)
            self._finalize(c, CloseReason.ABORT, 0)
        elif c.connecting:
            # As in C: nothing was sent yet, and on_connected must not follow.
            self._finalize(c, CloseReason.LOCAL, 0)
        elif c.closing is None:
            self._begin_close(c, CloseReason.LOCAL)

    def pause_reading(self, conn: int, paused: bool = True) -> None:
        """Stop (or resume) reading, and delivering messages already read.
        Thread-safe."""
        if self._foreign():
            self._from_thread(conn, lambda: self.pause_reading(conn, paused), strict=False)
            return
        c = self._conns.get(conn)
        if c is None or c.paused == paused:
            return
        c.paused = paused
        if not c.connecting:
            self._set_mask(c)
        if not paused and c.dec is not None and c.dec.buffered and not c.read_done:
            # Messages left in the decoder when reading paused mid-chunk.
            self._redispatch.add(c)
            self.flush_soon()

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
        if c is None:
            raise _sockets.gone(conn)
        return c.fd

    def output_size(self, conn: int) -> int:
        """Bytes queued for output on a connection (0 if it is gone)."""
        c = self._conns.get(conn)
        return len(c.out) if c is not None else 0

    def set_idle_timeout(self, seconds: Optional[float]) -> None:
        """Report on_idle for connections silent this long (None or 0: off;
        at least a millisecond, as on the C engine). Costs O(1) per read
        and, per check, O(connections that expired): see the module
        docstring."""
        self._idle_clock.set_timeout(seconds)
        if self._aio is not None:
            self._arm_idle_timer(rearm=True)

    def set_send_timeout(self, seconds: Optional[float]) -> None:
        """Abort a connection whose output made no progress for this long
        (None or 0: never), closing or not. Kept like the idle list: O(1)
        per write, per check O(connections that expired)."""
        self._send_timeout = max(0.001, seconds) if seconds else None
        if self._aio is not None:
            self._arm_idle_timer(rearm=True)

    def stats(self) -> dict[str, int]:
        """Counters. ``open`` = accepted + connected - closed: connects that
        fail are counted in none of them."""
        return self._n.as_stats()

    # -- running ----------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop`, then close every socket. A round: wait in
        epoll (no longer than the next timer or idle deadline), handle the
        ready sockets, report idle connections, run due timers and
        thread-safe callbacks, then write the output and deliver closes."""
        self._start()
        self._owner = _get_ident()
        try:
            while not self._stopping:
                self._settle()
                if self._stopping:
                    break
                events = self._ep.poll(self._poll_timeout())
                self._in_round = True
                try:
                    self._handle(events)
                    self._expire_idle()
                    if self._timers or self._soon:
                        self._run_callbacks()
                finally:
                    self._in_round = False
        finally:
            try:
                self._shutdown()
            finally:
                self._owner = None

    async def run_async(self) -> None:
        """Run inside the running asyncio loop (the epoll fd is registered
        with ``loop.add_reader``) until :meth:`stop`. Handler callbacks run
        as plain calls on the loop's thread."""
        self._start()
        loop = asyncio.get_running_loop()
        self._owner = _get_ident()
        self._aio = loop
        self._aio_done = loop.create_future()
        loop.add_reader(self._ep.fileno(), self._async_round)
        self._timers_to_asyncio(loop)
        try:
            self._async_settle()
            self._arm_idle_timer()
            await self._aio_done
        finally:
            self._timers_from_asyncio()
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            loop.remove_reader(self._ep.fileno())
            self._aio = None
            try:
                self._shutdown()
            finally:
                self._owner = None

    def stop(self) -> None:
        """Make run()/run_async() return soon. Safe from any thread and from
        signal handlers (a write to the eventfd, no lock)."""
        self._stopping = True
        self._wake()

    def _wake(self) -> None:
        """End the epoll wait (or, under asyncio, make the epoll fd
        readable). The eventfd lives as long as this object."""
        try:
            os.eventfd_write(self._wake_fd, 1)
        except OSError:
            pass  # the counter is full: a wake-up is pending anyway

    def _is_open(self, conn: int) -> bool:
        return conn in self._conns

    # -- the poll round ---------------------------------------------------

    def _handle(self, events: list[tuple[int, int]]) -> None:
        self._now = time.monotonic()  # this round's idle marks
        by_fd = self._by_fd
        for fd, ev in events:
            c = by_fd.get(fd)
            if c is not None:
                if c.connecting:
                    self._finish_connect(c)
                    continue
                # Decide by the mask as it is now: a handler may have paused
                # this connection since the poll returned.
                mask = c.mask
                if mask & _IN and ev & (_IN | _ERRHUP):
                    self._read(c)
                    if c.closed:
                        continue
                if ev & _OUT or (mask & _OUT and ev & _ERRHUP):
                    self._write(c)
                elif ev & _ERRHUP and not mask & (_IN | _OUT):
                    # A connection we neither read nor write (paused, or
                    # half-closed and waiting for the handler) died.
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    self._finalize(c, CloseReason.RESET, err or errno.ECONNRESET)
                continue
            lst = self._listen_fds.get(fd)
            if lst is not None:
                self._accept(lst)
            elif fd == self._wake_fd:
                try:
                    os.eventfd_read(self._wake_fd)
                except BlockingIOError:
                    pass

    def _read(self, c: _Conn) -> None:
        # recv_into one preallocated buffer: recv(READ_CHUNK) would allocate
        # (and page-fault in) 256 KiB per call, several times the cost of
        # the syscall itself for small messages.
        try:
            n = c.sock.recv_into(self._rbuf)
        except BlockingIOError:
            return
        except OSError as exc:
            self._finalize(c, CloseReason.RESET, exc.errno or errno.ECONNRESET)
            return
        if not n:
            c.read_done = True
            if c.echo:
                self._begin_close(c, CloseReason.PEER)
            else:
                self._set_mask(c)
                self._call_handler(self.handler.on_eof, c.id)
            return
        self._n.bytes_in += n
        # O(1) per read: c is in _idle (it is open and, since it still
        # reads, not closing); it becomes the newest.
        c.last_in = now = self._now
        idle = self._idle
        idle[c] = now
        idle.move_to_end(c)
        dec = c.dec
        if dec is None:
            self._n.messages_in += 1
            if c.echo:
                self._echo(c, self._rview[:n])
            elif c.direct is not None:
                self._serve_one(c, bytes(self._rview[:n]))
            else:
                try:
                    self.handler.on_message(c.id, bytes(self._rview[:n]))
                except Exception:
                    log.exception("handler failed in on_message of connection %d", c.id)
            return
        if c.be32 and c.direct is not None and not dec.buffered:
            pos = self._serve_be32(c, n)
            if pos == n:
                return
            dec.feed(self._rview[pos:n])  # a partial frame, a bad header, or paused
        else:
            dec.feed(self._rview[:n])
        self._dispatch(c)

    def _serve_be32(self, c: _Conn, n: int) -> int:
        """The direct path's hot loop, for a read that starts on a frame
        boundary (nothing buffered): cut the be32 frames out of the read
        buffer by offset, call the handler on each, frame its reply into
        the output queue. Stops at a frame that is not whole, or declares
        more than the limit, or once the handler paused or closed its
        connection, and returns the offset reached: the rest goes to the
        decoder, which holds a partial frame and raises for a bad one
        exactly as it would have. The asyncio peer it is measured against
        (bench/peers/frame_peers.py) cuts frames the same way."""
        assert c.direct is not None
        handler, arg, _ = c.direct
        # One copy of the read, sliced per message (a bytes slice is one
        # allocation; bytes(memoryview slice) two).
        data, out = self._rview[:n].tobytes(), c.out
        unpack_from, pack, limit = _BE32.unpack_from, _BE32.pack, c.spec.max_size
        pos = count = 0
        while n - pos >= 4:
            (size,) = unpack_from(data, pos)
            stop = pos + 4 + size
            if stop > n or size > limit:
                break
            message = data[pos + 4:stop]
            pos = stop
            count += 1
            try:
                reply = handler(arg, message)
                # read_done: the handler closed its connection (nothing else
                # sets it during a read): its reply is dropped.
                if reply is not None and not c.read_done:
                    if type(reply) is not bytes:
                        reply = bytes(check_reply(reply))  # TypeError naming a non-buffer
                    out += pack(len(reply))
                    out += reply
            except Exception:
                self._direct_failed(c)
            if c.read_done or c.paused:  # closed (the rest is dropped) or paused (held)
                if c.read_done:
                    pos = n
                break
        self._n.messages_in += count
        if out:
            self._dirty.add(c)
        return pos

    def _serve_one(self, c: _Conn, message: bytes) -> None:
        """The direct path, one message (raw reads, and the decoder's)."""
        assert c.direct is not None
        try:
            reply = c.direct[0](c.direct[1], message)
            if reply is not None and c.closing is None and not c.closed:
                if type(reply) is not bytes:
                    reply = bytes(check_reply(reply))  # TypeError naming a non-buffer
                frame = c.frame
                c.out += frame(reply) if frame is not None else reply
                self._dirty.add(c)
        except Exception:
            self._direct_failed(c)

    def _direct_failed(self, c: _Conn) -> None:
        """A direct handler raised, or returned what is not bytes-like: its
        on_error decides (and closes)."""
        assert c.direct is not None
        try:
            c.direct[2](c.direct[1])
        except Exception:
            log.exception("on_error failed for connection %d", c.id)

    def _echo(self, c: _Conn, data: memoryview) -> None:
        """Raw echo of one read. With nothing queued, send straight from the
        read buffer and queue only what the socket did not take: appending
        to an emptied bytearray reallocates it (CPython gives a bytearray
        that shrank below half its size back to malloc), and for 100 KiB
        reads that meant an mmap, page faults and an munmap per message."""
        if c.out:
            c.out += data
            self._dirty.add(c)
            return
        try:
            sent = c.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._finalize(c, CloseReason.RESET, exc.errno or errno.ECONNRESET)
            return
        self._n.bytes_out += sent
        if sent < len(data):
            c.out += data[sent:]
            self._dirty.add(c)  # _write arms EPOLLOUT and applies backpressure

    def _dispatch(self, c: _Conn) -> None:
        """Hand out every whole message buffered in c's decoder, until it
        needs more data, the connection stops reading, or the peer breaks
        the framing."""
        dec = c.dec
        if c.echo:
            self._dirty.add(c)
            out, frame = c.out, c.frame
            assert frame is not None  # a framing with a decoder frames its output
            count = 0
            try:
                while not (c.paused or c.read_done):
                    message = dec.next_message()
                    if message is None:
                        break
                    count += 1
                    out += frame(message)
            except ProtocolError as err:
                self._n.messages_in += count
                self._protocol_error(c, err)
                return
            self._n.messages_in += count
            return
        on_message, cid, direct = self.handler.on_message, c.id, c.direct
        while not (c.paused or c.read_done):
            # Only the decoder's errors are the peer's fault; a handler's
            # exception (even a ProtocolError) is logged and the loop goes on.
            try:
                message = dec.next_message()
            except ProtocolError as err:
                self._protocol_error(c, err)
                return
            if message is None:
                return
            self._n.messages_in += 1
            if direct is not None:
                self._serve_one(c, message)
                continue
            try:
                on_message(cid, message)
            except Exception:
                log.exception("handler failed in on_message of connection %d", cid)

    def _protocol_error(self, c: _Conn, err: ProtocolError) -> None:
        c.read_done = True
        if c.echo:
            # Close with PROTOCOL after flushing whatever the handler writes
            # now (an error reply): its close() during the callback is a no-op.
            self._begin_close(c, CloseReason.PROTOCOL)
        else:
            self._set_mask(c)
        self._call_handler(self.handler.on_protocol_error, c.id, err)

    def _write(self, c: _Conn) -> None:
        """Write as much queued output as the socket takes; finish a graceful
        close once it is all out; apply backpressure."""
        out = c.out
        if out:
            try:
                n = c.sock.send(out)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                self._finalize(c, CloseReason.RESET, exc.errno or errno.ECONNRESET)
                return
            if n:
                del out[:n]
                self._n.bytes_out += n
            if not out:
                self._sending.pop(c, None)
            elif n or c not in self._sending:  # progress, or newly pending
                self._sending[c] = time.monotonic()
                self._sending.move_to_end(c)
        if not out and c.closing is not None:
            try:
                c.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the peer is already gone; close() below reports nothing else
            self._finalize(c, c.closing, 0)
            return
        size = len(out)
        want_out = size > 0
        if c.bp:
            bp = size > c.spec.low_water
        else:
            bp = size > c.spec.high_water
        if want_out != c.want_out or bp != c.bp:
            c.want_out = want_out
            c.bp = bp
            self._set_mask(c)

    def _flush(self) -> None:
        dirty = self._dirty
        while dirty:
            c = dirty.pop()
            if not c.connecting:
                self._write(c)

    def _settle(self) -> None:
        """End a round: dispatch resumed connections, deliver deferred
        on_close calls and flush output until neither makes more work, then
        close the sockets finalized during the round."""
        was_in_round, self._in_round = self._in_round, True
        try:
            while self._redispatch or self._deferred or self._dirty:
                while self._redispatch:
                    c = self._redispatch.pop()
                    if not c.closed:
                        self._dispatch(c)
                self._deliver_closes()
                self._flush()
            self._empty_graveyard()
        finally:
            self._in_round = was_in_round

    def _deliver_closes(self) -> None:
        deferred, self._deferred = self._deferred, []
        for conn_id, reason, err in deferred:
            self._call_handler(self.handler.on_close, conn_id, reason, err)

    @staticmethod
    def _call_handler(callback: Callable[..., None], conn: int, *args: Any) -> None:
        """Call a handler callback; log what escapes it."""
        try:
            callback(conn, *args)
        except Exception:
            log.exception("handler failed in %s of connection %d", callback.__name__, conn)

    def _async_round(self) -> None:
        """add_reader callback: one non-blocking poll round, then settle."""
        self._in_round = True
        try:
            self._handle(self._ep.poll(0))
            self._settle()
        except BaseException as exc:
            self._fail_async(exc)
            return
        finally:
            self._in_round = False
        if self._stopping:
            self._finish_async()

    def _async_settle(self) -> None:
        """The flush scheduled by flush_soon()."""
        self._flush_scheduled = False
        try:
            self._settle()
        except BaseException as exc:
            self._fail_async(exc)
            return
        if self._stopping:
            self._finish_async()

    def _finish_async(self) -> None:
        done = self._aio_done
        if done is not None and not done.done():
            done.set_result(None)

    def _fail_async(self, exc: BaseException) -> None:
        done = self._aio_done
        if done is not None and not done.done():
            done.set_exception(exc)
        else:
            raise exc

    # -- idle detection ---------------------------------------------------

    def _idle_deadline(self) -> Optional[float]:
        """When the connection quiet for longest reaches the idle timeout,
        or the one whose output is stuck longest the send timeout, whichever
        is first (None: neither)."""
        deadlines = []
        idle = self._idle_clock.deadline()
        if idle is not None:
            deadlines.append(idle)
        if self._send_timeout is not None and self._sending:
            deadlines.append(next(iter(self._sending.values())) + self._send_timeout)
        return min(deadlines) if deadlines else None

    def _expire_send(self) -> None:
        """Abort the connections whose output made no progress for the send
        timeout, looking only at expired ones (from the head)."""
        timeout = self._send_timeout
        sending = self._sending
        if timeout is None or not sending:
            return
        now = time.monotonic()
        while sending:
            c, mark = next(iter(sending.items()))
            if mark + timeout > now:
                break
            _sockets.set_abort_linger(c.sock)
            self._finalize(c, CloseReason.SEND_TIMEOUT, 0)  # leaves _sending

    def _expire_idle(self) -> None:
        """Abort connections stuck past the send timeout, then report every
        connection whose silence reached the idle timeout (only expired ones
        are looked at: IdleClock.due). A handler may close any of them
        meanwhile: those are not reported."""
        self._expire_send()
        if self._idle_clock.timeout is None or not self._idle:
            return
        on_idle = self.handler.on_idle
        for c, silent in self._idle_clock.due(time.monotonic()):
            if c.closing is None and not c.closed:
                self._call_handler(on_idle, c.id, silent)

    def _poll_timeout(self) -> float:
        """Seconds epoll may sleep (-1: no limit): until the next timer or
        the idle head's deadline, whichever is first."""
        timeout = self._next_timeout()
        deadline = self._idle_deadline()
        if deadline is not None:
            until = max(0.0, deadline - time.monotonic())
            timeout = until if timeout is None else min(timeout, until)
        # epoll takes int milliseconds: a longer sleep just wakes and waits on.
        return -1 if timeout is None else min(timeout, limits.MAX_POLL_WAIT)

    def _arm_idle_timer(self, rearm: bool = False) -> None:
        """Under run_async: make sure one asyncio timer is pending at (or
        before) the idle head's deadline. The head's deadline only moves
        later (reads and reports move connections to the end, new ones join
        the end), so a pending timer is never late; when it fires early it
        just re-arms. ``rearm`` replaces it (the timeout changed)."""
        aio = self._aio
        if aio is None:
            return
        if rearm and self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._idle_timer is not None:
            return
        deadline = self._idle_deadline()
        if deadline is not None:
            self._idle_timer = aio.call_later(max(0.0, deadline - time.monotonic()),
                                              self._async_idle)

    def _async_idle(self) -> None:
        """The asyncio timer at the idle head's deadline: report, write what
        the handler queued, re-arm."""
        self._idle_timer = None
        self._in_round = True
        try:
            self._expire_idle()
            self._settle()
        except BaseException as exc:
            self._fail_async(exc)
            return
        finally:
            self._in_round = False
        self._arm_idle_timer()
        if self._stopping:
            self._finish_async()

    # -- connections ------------------------------------------------------

    def _accept(self, lst: _Listen) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = lst.sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _sockets.RESOURCE_ERRNOS:
                    self._starve(lst, exc)
                    return
                # ECONNABORTED and the like: that one connection is gone.
                continue
            sock.setblocking(False)
            _sockets.tune(sock, lst.spec)
            c = self._add_conn(sock, lst.spec)
            c.peer = _sockets.peer_address(addr)
            self._set_mask(c)
            self._n.accepted += 1
            self._idle_open(c)
            # A handler that pauses c here (a server's backlog) does it
            # before anything is read: c's fd was not in this round's events.
            self._call_handler(self.handler.on_accept, c.id, lst.listener)
            if lst.suspended or self._listeners.get(lst.listener.id) is not lst:
                return  # the handler unlistened it

    def _starve(self, lst: _Listen, exc: OSError) -> None:
        """Out of descriptors: stop polling this listener (it would be ready
        again at once) until some connection closes or ACCEPT_RETRY_DELAY
        has passed (a retry that fails again starves it again)."""
        log.warning("listener %s:%d: accept failed: %s; retrying in %gs or when a connection "
                    "closes", lst.listener.host, lst.listener.port, exc.strerror,
                    limits.ACCEPT_RETRY_DELAY)
        lst.suspended = True
        self._ep.unregister(lst.fd)
        if not self._starved:
            self.call_later(limits.ACCEPT_RETRY_DELAY, self._wake_starved)
        self._starved.append(lst)

    def _wake_starved(self) -> None:
        """Poll the starved listeners again."""
        for lst in self._starved:
            if self._listeners.get(lst.listener.id) is lst:
                lst.suspended = False
                self._ep.register(lst.fd, _IN)
        self._starved.clear()

    def _finish_connect(self, c: _Conn) -> None:
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._finalize(c, CloseReason.CONNECT_FAILED, err)
            return
        c.connecting = False
        _sockets.tune(c.sock, c.spec)
        self._n.connected += 1
        self._idle_open(c)
        self._set_mask(c)
        if c.out or c.closing is not None:
            self._dirty.add(c)
        self._call_handler(self.handler.on_connected, c.id)

    def _idle_open(self, c: _Conn) -> None:
        """c is established: its silence counts from now."""
        c.last_in = self._now
        self._idle[c] = self._now
        self._arm_idle_timer()

    def _add_conn(self, sock: socket.socket, spec: ConnSpec) -> _Conn:
        c = _Conn(self._next_conn, sock, spec)
        self._next_conn += 1
        self._conns[c.id] = c
        self._by_fd[c.fd] = c
        self._ep.register(c.fd, 0)
        return c

    def _set_mask(self, c: _Conn) -> None:
        if c.connecting:
            mask = _OUT
        else:
            mask = 0 if (c.read_done or c.paused or c.bp) else _IN
            if c.want_out:
                mask |= _OUT
        if mask != c.mask:
            c.mask = mask
            self._ep.modify(c.fd, mask)

    def _begin_close(self, c: _Conn, reason: CloseReason) -> None:
        """Graceful close: stop reading now; _write finishes it once the
        output is flushed."""
        c.closing = reason
        c.read_done = True
        self._idle.pop(c, None)  # closing connections are not reported
        if not c.connecting:
            self._set_mask(c)
        self._dirty.add(c)
        self.flush_soon()

    def _finalize(self, c: _Conn, reason: CloseReason, err: int) -> None:
        """Forget a connection now and queue its on_close. The socket itself
        is closed at the end of the round, so its fd number cannot be reused
        by an accept while stale events for it are still being handled."""
        c.closed = True
        c.read_done = True
        del self._conns[c.id]
        del self._by_fd[c.fd]
        self._idle.pop(c, None)
        self._sending.pop(c, None)
        self._dirty.discard(c)
        self._redispatch.discard(c)
        self._ep.unregister(c.fd)
        self._bury(c.sock)
        if not c.connecting:
            self._n.closed += 1   # it was established (accepted or connected)
        self._deferred.append((c.id, reason, err))
        self.flush_soon()

    def _bury(self, sock: socket.socket) -> None:
        self._graveyard.append(sock)
        self.flush_soon()

    def _empty_graveyard(self) -> None:
        if not self._graveyard:
            return
        for sock in self._graveyard:
            sock.close()
        self._graveyard.clear()
        # Descriptors were freed: starved listeners may accept again.
        self._wake_starved()

    # -- life cycle -------------------------------------------------------

    def _check_alive(self) -> None:
        if self._done:
            raise EngineError(errno.EBADF, "the engine has shut down")

    def _start(self) -> None:
        self._check_alive()
        if self._running:
            raise RuntimeError("the engine is already running")
        self._running = True

    def _shutdown(self) -> None:
        """After run: write what is queued (best effort, without waiting),
        then close every connection (on_close ABORT) and every socket."""
        self._running = False
        self._done = True
        try:
            self._settle()
        finally:
            self._in_round = True
            for c in list(self._conns.values()):
                self._finalize(c, CloseReason.ABORT, 0)
            for lst in list(self._listeners.values()):
                self.unlisten(lst.listener)
            self._empty_graveyard()
            self._ep.close()
            self._in_round = False
            self._deliver_closes()


