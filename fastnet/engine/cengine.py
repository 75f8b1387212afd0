"""The C epoll engine: csrc/loop.c behind the :class:`~.base.Engine` interface.

C owns the sockets and the byte path (accept, read, frame, echo, write);
this class turns each batch of ``fn_event`` records into handler calls.
Messages arrive as views into C buffers valid until the next poll, and are
copied into ``bytes`` once, for the handler.

Waking up: ``run()`` sleeps in ``epoll_wait`` with no timeout. ``stop()``
writes to a pipe that the C loop watches (``fn_loop_set_waker``), so it
returns at once, from any thread or a signal handler; the pipe lives as
long as this object, so a late ``stop()`` never writes to a reused fd.
Signals: Python runs a signal's handler only once C returns, and C returns
early only if the signal interrupts ``epoll_wait``; one that lands while C
is busy (or just before it sleeps) would wait for the next event. So on the
main thread ``run()`` makes that pipe Python's signal wakeup fd
(``signal.set_wakeup_fd``, as asyncio does), unless one is set already:
every signal then wakes the poll.
Under asyncio, ``stop()`` resolves a future with ``call_soon_threadsafe``,
and idle connections are reported by a round that one asyncio timer, at the
idle deadline of the connection quiet for longest, asks for (the epoll fd
says nothing when nothing arrives). In a loop the engine made itself
(:meth:`CEngine.new_event_loop`, what ``Server.run`` uses) there is one
wait per round instead of two: see :class:`EngineSelector`.

Errors: C returns status.h codes (``FN_E_SYS - errno`` for a failed system
call); each becomes :class:`~fastnet.errors.EngineError` with its errno, and
a line break in a line payload the codec's ValueError.
``send``/``write``/``peer`` on a connection that is closed or unknown raise
``EngineError(EBADF)``; ``close``/``pause_reading`` on one do nothing.
Output queued on a closing connection goes out before it closes (an error
reply from ``on_protocol_error``, say). Handler exceptions are logged (``fastnet.engine``) and the batch
goes on, as asyncio does with callbacks.

Direct handlers (``serve_directly``): for a connection whose handler
offered a plain function, the dispatch loop calls it per message itself and
queues what it returns as ``send`` would, without ``on_message`` and
``send`` (two Python frames a message). Anything else the handler does to
the engine mid-run (close, pause, write, a send to another connection)
clears ``_out_conn``, which the loop checks after each call: a closed
connection's reply and undelivered messages are dropped, a paused one's
rest is held, as below.

Wire connections (``serve_wire``): C frames the wire protocol itself
(csrc/wire.h's fn_loop_wire) and a poll's requests of every such
connection arrive as one marshal stream (fn_batch.wire) with one
``FN_EV_WIRE`` record per connection; _dispatch calls each session's
``call`` per request, and the results go back to C in one call
(fn_loop_wire_replies), or through each session's ``answer`` when C cannot
frame one of them. The requests of a round are all answered even if a
handler pauses its connection meanwhile (the pause holds what C has not
taken yet); a handler that closes it drops its replies and the rest. A
poll that holds wire requests only (FN_BATCH_WIRE_ONLY), when every wire
connection's session has the same ``call`` (one server's handler), skips
the words: ``map`` calls the handler over the poll's list of requests with
no Python frame of ours per request (_wire_round); a handler that closes a
connection then drops that connection's replies only, as the sessions'
batch path does on the Python engines.

HTTP/1.1 connections (``serve_http``, for a directly served conn): C
parses each read's leading simple requests in the poll (csrc/loop.h's
fn_loop_http) and a poll's words for all of them arrive in one array;
each read's are one ``FN_EV_HTTP`` record, for which _dispatch calls the
session's handler with the read's bytes and the words and queues the
reply as a direct handler's; the rest of the read is a message as usual.
A record of a conn paused (or no longer so served) meanwhile is handled
as that message.

Pausing in the middle of a batch: C frames a whole read at once, so when a
handler pauses a connection, its later events in the same batch (messages,
EOF, a framing error) already exist. They are held here, in order, and
dispatched first once it is resumed (C holds what it has not framed yet), so
a pause stops delivery at once, as on the Python engines.
"""
from __future__ import annotations

import asyncio
import collections
import errno as errnos
import logging
import marshal
import os
import selectors
import signal
import socket
import struct
import threading
import weakref
from typing import Any, Callable, Optional

from .. import limits, native
from ..codec.framing._common import LINE_BREAK
from ..errors import EngineError, FrameTooLarge, LineTooLong, ProtocolError
from ..pack._common import unpack_options
from ..pack.c import c_options
from .base import (Buffer, CloseReason, ConnSpec, DirectHandler, Engine, EngineHandler,
                   HttpHandler, Listener, WireHello, WireServing, check_reply)

lib = native.require()
ffi = native.ffi

log = logging.getLogger("fastnet.engine")

_FRAMINGS = {
    "raw": lib.FN_FRAME_RAW,
    "be32": lib.FN_FRAME_BE32,
    "varint": lib.FN_FRAME_VARINT,
    "line": lib.FN_FRAME_LINE,
}
# Indexed by FN_CLOSE_* code.
_REASONS: dict[int, CloseReason] = {
    lib.FN_CLOSE_LOCAL: CloseReason.LOCAL,
    lib.FN_CLOSE_ABORT: CloseReason.ABORT,
    lib.FN_CLOSE_PEER: CloseReason.PEER,
    lib.FN_CLOSE_RESET: CloseReason.RESET,
    lib.FN_CLOSE_CONNECT_FAILED: CloseReason.CONNECT_FAILED,
    lib.FN_CLOSE_PROTOCOL: CloseReason.PROTOCOL,
    lib.FN_CLOSE_SEND_TIMEOUT: CloseReason.SEND_TIMEOUT,
}
_EV_ACCEPT = lib.FN_EV_ACCEPT
_EV_CONNECTED = lib.FN_EV_CONNECTED
_EV_MESSAGE = lib.FN_EV_MESSAGE
_EV_EOF = lib.FN_EV_EOF
_EV_ERROR = lib.FN_EV_ERROR
_EV_CLOSED = lib.FN_EV_CLOSED
_EV_LISTEN_ERROR = lib.FN_EV_LISTEN_ERROR
_EV_IDLE = lib.FN_EV_IDLE
_EV_MESSAGE_REF = lib.FN_EV_MESSAGE_REF
_EV_WIRE = lib.FN_EV_WIRE
_EV_HTTP = lib.FN_EV_HTTP
_EV_HTTP_REF = lib.FN_EV_HTTP_REF
_WIRE_INTO = lib.FN_WIRE_SESS_INTO
_WIRE_ONLY = lib.FN_BATCH_WIRE_ONLY
_NO_THRESHOLD = 2**64 - 1
#: Size of the buffer a poll's wire requests (and the replies) are copied to.
_WIRE_INTO_SIZE = 256 * 1024
_loads = marshal.loads
_dumps = marshal.dumps
_fn_loop_wire_replies = lib.fn_loop_wire_replies
_HOLDABLE = (_EV_MESSAGE, _EV_EOF, _EV_ERROR)  # held while their connection is paused

#: Default size of the event array one poll fills.
DEFAULT_MAX_EVENTS = 1024
#: Bytes of small message payloads one poll copies out (see fn_loop_poll_batch).
_BLOB_SIZE = 256 * 1024
#: Messages sent from a handler during a batch and at most this long are
#: queued here and handed to C in one call when the batch ends
#: (fn_loop_send_batch); longer ones go at once, without the extra copy.
_SEND_BATCH_MAX = 64 * 1024
_SEND_ONE_BY_ONE = 3  # at most this many: a call each is cheaper than packing
_HOSTLEN = 64  # INET6_ADDRSTRLEN is 46
_get_ident = threading.get_ident


class _Discard(collections.deque):  # type: ignore[type-arg]
    """The held-events queue of a connection closed mid-batch: what is
    appended is dropped."""

    def append(self, item: Any) -> None:
        pass


def _error(err: int) -> EngineError:
    """The exception for an errno."""
    return EngineError(err, os.strerror(err))


#: loop.h's own return codes (status.h) -> the errno EngineError carries.
_ERRNOS = {
    lib.FN_E_LOOP_NO_CONN: errnos.EBADF,
    lib.FN_E_NOMEM: errnos.ENOMEM,
    lib.FN_E_ARG: errnos.EINVAL,
    lib.FN_E_LIMIT: errnos.EMFILE,
    lib.FN_E_LOOP_TOO_LONG: errnos.EMSGSIZE,
}
_E_SYS = lib.FN_E_SYS
_E_LINE_BREAK = lib.FN_E_LOOP_LINE_BREAK


def _ms(seconds: Optional[float]) -> int:
    """Seconds (None or 0: off) as C's uint64 milliseconds: at least 1,
    saturating at the largest (C saturates its deadlines too)."""
    if not seconds:
        return 0
    return max(1, min(2**64 - 1, int(min(seconds, 2.0**64) * 1000)))


def _status_error(code: int) -> Exception:
    """The exception for a negative return code of csrc/loop.c: a failed
    system call (FN_E_SYS - errno) or one of loop.h's own codes. A line
    break in a line payload is the ValueError every engine raises."""
    if code == _E_LINE_BREAK:
        return ValueError(LINE_BREAK)
    return _error(_E_SYS - code if code <= _E_SYS else _ERRNOS.get(code, errnos.EINVAL))


def _numeric_host(host: str, port: int, passive: bool) -> str:
    """Resolve host to a numeric address for C (which only takes those).

    May block on DNS for a name; raises socket.gaierror if it cannot be
    resolved. "" means every IPv4 address when listening."""
    if not host and passive:
        return "0.0.0.0"
    flags = socket.AI_PASSIVE if passive else 0
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                               proto=socket.IPPROTO_TCP, flags=flags)
    return str(infos[0][4][0])


def _protocol_error(code: int, value: int, limit: int) -> ProtocolError:
    """The exception the Python codec twin raises for FN_EV_ERROR(code, value)."""
    if code == lib.FN_E_FRAMER_TOO_LARGE:
        return FrameTooLarge(value, limit)
    if code == lib.FN_E_FRAMER_LINE_TOO_LONG:
        return LineTooLong(value, limit)
    # FN_E_FRAMER_BAD_HEADER: value holds a negative FN_VARINT_* code as a uint64.
    # Imported here (rare path): the codec's messages are the ones to match.
    from ..codec.framing._common import bad_frame_header
    from ..codec.varint.c import VARINT_ERRORS
    return bad_frame_header(VARINT_ERRORS[int(ffi.cast("int64_t", value))])


#: The longest wait handed to C's int milliseconds (a day: asyncio asks
#: again after its next timer or event anyway).
_MAX_WAIT_MS = 86_400_000


class EngineSelector(selectors.EpollSelector):
    """asyncio's selector in a loop made by :meth:`CEngine.new_event_loop`.

    While that engine runs in the loop (``run_async``), ``select`` waits in
    the C loop's poll, whose waker is this selector's own epoll fd: a round
    of the engine (poll, dispatch, flush) happens inside ``select``, and
    asyncio's epoll is asked which of its fds are ready (without waiting)
    only when one of them ended the C wait. So a round costs one
    ``epoll_wait`` and no asyncio callback, where ``add_reader`` costs
    asyncio's wait, a callback and C's own non-blocking wait. Otherwise it
    is an :class:`selectors.EpollSelector`."""

    def __init__(self) -> None:
        super().__init__()
        self._engine: Optional[CEngine] = None

    def select(self, timeout: Optional[float] = None) -> list[tuple[selectors.SelectorKey, int]]:
        engine = self._engine
        if engine is None or engine._loop is None or engine._stopping:
            return super().select(timeout)
        if engine._select_round(timeout):
            return super().select(0)
        return []


class CEngine(Engine):
    """The C epoll engine. Single-threaded: call its methods from the thread
    that runs it (handlers, timers, coroutines on its asyncio loop), except
    the thread-safe ones listed in :mod:`fastnet.engine.base`, which from
    another thread are queued to it and wake its poll (the waker pipe)."""

    name = "c"
    runs_in_asyncio = True
    direct_path = True
    wire_path = True

    def __init__(self, handler: EngineHandler, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        """``max_events`` is the size of the event array one poll fills."""
        super().__init__(handler)
        if max_events < 1:
            raise ValueError("max_events must be positive")
        loop = lib.fn_loop_new()
        if loop == ffi.NULL:
            raise _error(ffi.errno or errnos.ENOMEM)
        self._loop: Any = ffi.gc(loop, lib.fn_loop_free)
        lib.fn_loop_set_accept_retry(loop, _ms(limits.ACCEPT_RETRY_DELAY))
        self._max_events = max_events
        self._evs = ffi.new("fn_event[]", max_events)
        self._words = ffi.new("uint64_t[]", 4 * max_events)
        self._blob = ffi.new("char[]", _BLOB_SIZE)
        self._batch = ffi.new("fn_batch *", {
            "evs": self._evs, "max": max_events, "words": self._words,
            "blob": self._blob, "blob_cap": _BLOB_SIZE})
        self._wakefd, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        weakref.finalize(self, os.close, self._wakefd)
        weakref.finalize(self, os.close, self._wake_w)
        rc = lib.fn_loop_set_waker(self._loop, self._wakefd)
        if rc < 0:
            raise _status_error(rc)
        self._stopping = False
        #: The second of the reply set_http_kata_reply gave C (0: none yet).
        self.http_kata_second = 0
        self._running = False  # inside run()/run_async(): release() must wait
        self._listeners: dict[int, Listener] = {}       # kept after unlisten
        self._listener_specs: dict[int, ConnSpec] = {}
        self._conns: dict[int, ConnSpec] = {}           # open connections
        self._opts: dict[ConnSpec, Any] = {}            # fn_conn_opts per spec
        self._host = ffi.new("char[]", _HOSTLEN)
        self._port = ffi.new("int *")
        self._stats = ffi.new("fn_loop_stats *")
        self._final_stats: dict[str, int] = {}
        self._aio: Optional[asyncio.AbstractEventLoop] = None
        self._done: Optional[asyncio.Future[None]] = None
        self._round_scheduled = False
        self._flush_scheduled = False
        self._idle_timer: Optional[asyncio.TimerHandle] = None  # under run_async
        # The loop new_event_loop made and its selector (weakly: the loop is the caller's).
        self._own_loop: Optional[weakref.ref[asyncio.AbstractEventLoop]] = None
        self._own_selector: Optional[EngineSelector] = None
        self._idle_unheaded = False   # the pending timer is the send timeout's: no idle head then
        self._idle_on = False                           # an idle or send timeout is set
        self._idle_ms = self._send_ms = 0
        self._dispatching = False
        # During a batch: the messages send() queued, in order, for runs of
        # connections: _out_conns[j] gets those from _out_firsts[j] on.
        self._out: Optional[list[bytes]] = None
        self._out_conns: list[int] = []
        self._out_firsts: list[int] = []
        self._out_conn: Optional[int] = None  # the last run's, checked open
        self._paused: set[int] = set()                  # paused by the handler
        # Events C produced after their connection was paused mid-batch,
        # in order (see the module docstring); usually empty.
        self._held: dict[int, collections.deque[tuple[int, Any]]] = {}
        self._released: list[int] = []                  # resumed with events held
        # Connections whose messages _dispatch hands to a handler itself
        # (serve_directly): conn -> (handler, its argument, on_error).
        # Leaves at close(), so a handler that closes its connection stops
        # its delivery at once.
        self._direct: dict[int, tuple[DirectHandler, object, Any]] = {}
        # Connections whose wire protocol C frames (serve_wire): conn ->
        # session. Leaves at close(), as _direct (through _wire_drop).
        self._wire: dict[int, WireServing] = {}
        # Connections whose simple HTTP/1.1 requests C parses in the poll
        # (serve_http): conn -> (handler, its argument, on_error). Leaves
        # at close(), as _direct.
        self._http: dict[int, tuple[HttpHandler, object, Any]] = {}
        self._http_n = ffi.new("size_t *")
        # How many of them have each session.call (by id: a callable need
        # not be hashable, and the sessions keep theirs alive); _wire_call
        # is the one call when they all share it (else None), _wire_drops
        # counts departures (a round sees its handlers closing connections).
        self._wire_calls: collections.Counter[int] = collections.Counter()
        self._wire_call: Optional[Callable[[Any], Any]] = None
        self._wire_drops = 0
        self._wire_work: Any = None  # the fn_wire_work C decodes them with
        self._hellos: dict[WireHello, Any] = {}  # fn_wire_hello tables, by server settings
        self._hello_keep: list[tuple[Any, ...]] = []  # what those tables point at
        self._wire_into: memoryview = memoryview(b"")

    # -- setup -------------------------------------------------------------

    def _conn_opts(self, spec: ConnSpec) -> Any:
        opts = self._opts.get(spec)
        if opts is None:
            opts = ffi.new("fn_conn_opts *", {
                "framing": _FRAMINGS[spec.framing],
                "frame_flags": lib.FN_LINE_BARE_LF if spec.bare_lf else 0,
                "max": spec.max_size,
                "echo": 1 if spec.echo else 0,
                "high_water": spec.high_water,
                "low_water": spec.low_water,
            })
            if spec.tcp_keepalive is not None:
                idle, interval, count = spec.tcp_keepalive
                opts.keepalive = 1
                opts.keepalive_idle = idle
                opts.keepalive_interval = interval
                opts.keepalive_count = count
            self._opts[spec] = opts
        return opts

    def listen(self, host: str, port: int, spec: ConnSpec,
               backlog: int = limits.DEFAULT_LISTEN_BACKLOG) -> Listener:
        """Bind and listen on host:port (a name is resolved first; "" is
        0.0.0.0; port 0 picks a free port)."""
        numeric = _numeric_host(host, port, passive=True)
        lid = lib.fn_loop_listen(self._loop, numeric.encode(), port, backlog,
                                 self._conn_opts(spec))
        if lid < 0:
            raise _status_error(lid)
        real_port = lib.fn_loop_listener_port(self._loop, lid)
        if real_port < 0:
            raise _status_error(real_port)
        listener = Listener(lid, numeric, real_port)
        self._listeners[lid] = listener
        self._listener_specs[lid] = spec
        return listener

    def unlisten(self, listener: Listener) -> None:
        """Close a listening socket; new connects are refused from now on."""
        rc = lib.fn_loop_unlisten(self._loop, listener.id)
        if rc < 0:
            raise _status_error(rc)

    def connect(self, host: str, port: int, spec: ConnSpec) -> int:
        """Start an outgoing connection (a name is resolved first, which may
        block); ``on_connected`` or ``on_close(CONNECT_FAILED)`` follows."""
        numeric = _numeric_host(host, port, passive=False)
        conn = lib.fn_loop_connect(self._loop, numeric.encode(), port, self._conn_opts(spec))
        if conn < 0:
            raise _status_error(conn)
        self._conns[conn] = spec
        self._kick()
        return conn

    # -- per connection ----------------------------------------------------

    def serve_directly(self, conn: int, handler: DirectHandler, arg: object,
                       on_error: Any) -> bool:
        """Taken: _dispatch calls ``handler(arg, message)`` for each message
        of ``conn`` in a batch and queues its reply as send() would, which
        saves the handler's on_message and send() frames per message."""
        if conn not in self._conns:
            return False
        self._direct[conn] = (handler, arg, on_error)
        return True

    def serve_http_kata(self, conn: int, on: bool, max_request_line: int = 0,
                        max_header_bytes: int = 0, max_header_fields: int = 0) -> bool:
        """Taken: csrc/loop.c answers the conn's kata requests itself
        (fn_loop_http_kata), without a Python call."""
        rc = lib.fn_loop_http_kata(self._loop, conn, 1 if on else 0, max_request_line,
                                   max_header_bytes, max_header_fields)
        return rc == 0 and on

    def serve_wire(self, conn: int, session: Optional[WireServing], version: int = 0,
                   max_body: int = 0, threshold: Optional[int] = None,
                   hello: Optional[WireHello] = None) -> bool:
        """Taken: csrc/loop.c frames the conn's wire protocol (fn_loop_wire),
        and _dispatch answers its requests in batches (_wire_replies)."""
        if session is None:
            if self._wire_drop(conn):
                lib.fn_loop_wire(self._loop, conn, 0, 0, 0, 0, ffi.NULL)
            return False
        if self._wire_work is None:
            self._new_wire_work()
        table = self._hello_table(hello) if hello is not None and not version else ffi.NULL
        rc = lib.fn_loop_wire(self._loop, conn, 1, version, max_body,
                              _NO_THRESHOLD if threshold is None else threshold, table)
        self._wire_drop(conn)
        if rc != 0:
            return False
        self._wire[conn] = session
        calls = self._wire_calls
        calls[id(session.call)] += 1
        self._wire_call = session.call if len(calls) == 1 else None
        return True

    def _wire_drop(self, conn: int) -> bool:
        """conn's C framing of wire is over (closed, taken back): whether
        it had it."""
        session = self._wire.pop(conn, None)
        if session is None:
            return False
        self._wire_drops += 1
        calls, key = self._wire_calls, id(session.call)
        calls[key] -= 1
        if not calls[key]:
            del calls[key]
        self._wire_call = next(iter(self._wire.values())).call if len(calls) == 1 else None
        return True

    def wire_state(self, conn: int) -> tuple[int, int]:
        """What fn_loop_wire_state says (see Engine.wire_state)."""
        version, mask = ffi.new("uint8_t *"), ffi.new("uint8_t *")
        if lib.fn_loop_wire_state(self._loop, conn, version, mask) != 0:
            return 0, 0
        return version[0], mask[0]

    def _hello_table(self, hello: WireHello) -> Any:
        """hello as the fn_wire_hello C reads (kept while the engine lives:
        the loop's connections point at it)."""
        table = self._hellos.get(hello)
        if table is None:
            names = ffi.new("char[]", b"".join(name.encode() + b"\0" for name in hello.codecs))
            thresholds = ffi.new("uint64_t[]", list(hello.thresholds) or [0])
            replies = ffi.new("char[]", b"".join(hello.replies))
            ends, end = [], 0
            for reply in hello.replies:
                end += len(reply)
                ends.append(end)
            ends_c = ffi.new("uint64_t[]", ends)
            table = ffi.new("fn_wire_hello *", {
                "max_version": hello.max_version, "ncodecs": len(hello.codecs), "names": names,
                "thresholds": thresholds, "replies": replies, "ends": ends_c})
            self._hellos[hello] = table
            self._hello_keep.append((names, thresholds, replies, ends_c))
        return table

    def _new_wire_work(self) -> None:
        """The fn_wire_work C decodes wire requests with (fastnet.pack's
        default limits, as the sessions' batchers)."""
        options = unpack_options()
        pack_limits, flags = c_options(options)
        into = bytearray(_WIRE_INTO_SIZE)
        work = lib.fn_wire_work_new(pack_limits, flags, options.max_buffer_size,
                                    limits.DEFAULT_PACK_MAX_DEPTH, ffi.from_buffer(into),
                                    _WIRE_INTO_SIZE)
        if work == ffi.NULL:
            raise MemoryError("fn_wire_work_new failed")
        work = ffi.gc(work, lib.fn_wire_work_free)
        rc = lib.fn_loop_set_wire(self._loop, work)
        if rc:
            raise _status_error(rc)
        self._wire_work = work
        self._wire_into = memoryview(into)  # keeps the bytearray's size (and address) fixed

    def serve_http(self, conn: int, on: bool, handler: Optional[HttpHandler] = None,
                   arg: object = None, max_request_line: int = 0, max_header_bytes: int = 0,
                   max_header_fields: int = 0) -> bool:
        """Taken for a directly served conn: csrc/loop.c parses its simple
        requests in the poll (fn_loop_http) and _dispatch hands each read's
        to ``handler`` with the poll's words."""
        direct = self._direct.get(conn)
        if not on or direct is None or handler is None:
            self._http.pop(conn, None)
            lib.fn_loop_http(self._loop, conn, 0, 0, 0, 0)
            return False
        if lib.fn_loop_http(self._loop, conn, 1, max_request_line, max_header_bytes,
                            max_header_fields):
            return False
        self._http[conn] = (handler, arg, direct[2])
        return True

    def set_http_kata_reply(self, reply: bytes, second: int) -> None:
        """Copied into C (see Engine.set_http_kata_reply)."""
        rc = lib.fn_loop_set_http_kata_reply(self._loop, reply, len(reply), second)
        if rc:
            raise _status_error(rc)
        self.http_kata_second = second

    def send(self, conn: int, message: Buffer) -> None:
        """Queue one message framed per the connection's spec. EngineError
        (EBADF) if the connection is closed or unknown.

        From a handler, a small message is queued in Python and handed to C
        with the others of the batch in one call when the batch ends (each
        call into C costs as much as a small message): a message to a
        connection that closed in C while its on_close is still to come is
        then dropped, as its other output is, rather than raising."""
        owner = self._owner
        if owner is not None and owner != _get_ident():
            self._output_from_thread(self.send, conn, message)
            return
        out = self._out
        if out is not None and type(message) is bytes and len(message) <= _SEND_BATCH_MAX:
            if (b"\n" in message or b"\r" in message) and self._is_line(conn):
                raise ValueError(LINE_BREAK)  # as C would say, but now
            if conn is not self._out_conn:  # the handler's conn: the same int object
                self._start_run(conn)
            out.append(message)
            return
        if out:
            self._send_queued()
        if type(message) is not bytes:
            message = ffi.from_buffer(message)
        rc = lib.fn_loop_send_msg(self._loop, conn, message, len(message))
        if rc:
            raise _status_error(rc)
        if out is None and self._aio is not None:
            self.flush_soon()  # from outside a round: a timer, a coroutine, a task

    def _is_line(self, conn: int) -> bool:
        spec = self._conns.get(conn)
        return spec is not None and spec.framing == "line"

    def _start_run(self, conn: int) -> None:
        if conn not in self._conns:
            raise _error(errnos.EBADF)
        assert self._out is not None
        self._out_conn = conn
        self._out_conns.append(conn)
        self._out_firsts.append(len(self._out))

    def _send_queued(self) -> None:
        """Hand the messages queued by send() during this batch to C: one
        call for them all, or one each when there are so few that packing
        them would cost more."""
        out = self._out
        assert out
        conns, firsts = self._out_conns, self._out_firsts
        n = len(out)
        if n <= _SEND_ONE_BY_ONE:
            send_msg, loop, j = lib.fn_loop_send_msg, self._loop, 0
            for i, message in enumerate(out):
                while j + 1 < len(conns) and firsts[j + 1] <= i:
                    j += 1
                if send_msg(loop, conns[j], message, len(message)) == lib.FN_E_NOMEM:
                    # Once more through fn_loop_send_batch, which closes the
                    # connection (RESET, ENOMEM) if it fails again.
                    lib.fn_loop_send_batch(loop, struct.pack("3Q", conns[j], 0, len(message)),
                                           1, message, len(message), 1)
        else:
            nconns = len(conns)
            words = struct.pack(f"{2 * nconns + n}Q", *conns, *firsts, *map(len, out))
            data = b"".join(out)
            lib.fn_loop_send_batch(self._loop, words, nconns, data, len(data), n)
        out.clear()
        conns.clear()
        firsts.clear()
        self._out_conn = None

    def write(self, conn: int, data: Buffer) -> None:
        """Queue raw bytes as they are. EngineError(EBADF) as for send;
        thread-safe as send."""
        owner = self._owner
        if owner is not None and owner != _get_ident():
            self._output_from_thread(self.write, conn, data)
            return
        out = self._out
        if out:
            self._send_queued()  # after the messages sent before it
        if type(data) is not bytes:
            data = ffi.from_buffer(data)
        rc = lib.fn_loop_send(self._loop, conn, data, len(data))
        if rc:
            raise _status_error(rc)
        if out is None and self._aio is not None:
            self.flush_soon()

    def close(self, conn: int, abort: bool = False) -> None:
        """Close gracefully (flush first) or with a reset; ``on_close``
        follows. Does nothing for a connection already closing or gone.
        Thread-safe."""
        if self._foreign():
            self._from_thread(conn, lambda: self.close(conn, abort), strict=False)
            return
        if self._out:
            self._send_queued()  # they go out before the close
        self._out_conn = None  # also tells _dispatch's direct loop to look
        self._direct.pop(conn, None)
        self._wire_drop(conn)
        self._http.pop(conn, None)
        rc = lib.fn_loop_close(self._loop, conn, 1 if abort else 0)
        held = self._held.pop(conn, None)
        if held:
            held.clear()  # undelivered input is dropped, as in C
        if self._dispatching and conn in self._conns:
            # Its events later in this batch (C framed them already) are
            # dropped too: nothing but on_close follows a close().
            self._held[conn] = _Discard()
        if rc == 0:
            self._kick()

    def pause_reading(self, conn: int, paused: bool = True) -> None:
        """Stop (or resume) reading, and delivering already buffered
        messages. Does nothing for a connection that is gone. Thread-safe."""
        if self._foreign():
            self._from_thread(conn, lambda: self.pause_reading(conn, paused), strict=False)
            return
        if lib.fn_loop_pause(self._loop, conn, 1 if paused else 0) < 0:
            return
        if paused:
            self._paused.add(conn)
            if self._dispatching:
                self._held.setdefault(conn, collections.deque())
                self._out_conn = None  # _dispatch's direct loop must hold the rest
            return
        self._paused.discard(conn)
        if self._held.get(conn):
            self._released.append(conn)
            if not self._dispatching:
                self._wake()  # a round to dispatch them, with nothing new to read
        self._kick()

    def peer(self, conn: int) -> tuple[str, int]:
        """The remote (host, port) of a connection."""
        rc = lib.fn_loop_peer(self._loop, conn, self._host, _HOSTLEN, self._port)
        if rc < 0:
            raise _status_error(rc)
        return ffi.string(self._host).decode(), self._port[0]

    def fileno(self, conn: int) -> int:
        """The connection's socket descriptor (do not read, write or close it)."""
        if self._loop is None:
            raise _error(errnos.EBADF)
        fd = lib.fn_loop_conn_fd(self._loop, conn)
        if fd < 0:
            raise _status_error(fd)
        return fd

    def set_idle_timeout(self, seconds: Optional[float]) -> None:
        """Report on_idle for connections silent this long (None or 0: off).
        The C loop keeps open connections on a list ordered by last
        activity and looks only at its head (see fn_loop_set_idle_timeout)."""
        if self._loop is None:
            raise _error(errnos.EBADF)
        self._idle_ms = _ms(seconds)
        lib.fn_loop_set_idle_timeout(self._loop, self._idle_ms)
        self._rearm_idle_timer()

    def set_send_timeout(self, seconds: Optional[float]) -> None:
        """Abort a connection whose output made no progress for this long
        (None or 0: never); see fn_loop_set_send_timeout."""
        if self._loop is None:
            raise _error(errnos.EBADF)
        self._send_ms = _ms(seconds)
        lib.fn_loop_set_send_timeout(self._loop, self._send_ms)
        self._rearm_idle_timer()

    def _rearm_idle_timer(self, retry: bool = False) -> None:
        """A timer setting changed, or a deadline may have come sooner
        (retry: a starved listener's accept retry)."""
        self._idle_on = retry or self._idle_ms > 0 or self._send_ms > 0
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._arm_idle_timer()

    def output_size(self, conn: int) -> int:
        """Bytes queued for output on a connection (0 if it is gone)."""
        if self._out:
            self._send_queued()
        return lib.fn_loop_output_size(self._loop, conn)

    def stats(self) -> dict[str, int]:
        """accepted, connected, closed, open, bytes_in, bytes_out, messages_in
        (a failed connect counts in none of them)."""
        if self._loop is None:
            return dict(self._final_stats)  # released: the counters at that moment
        s = self._stats
        lib.fn_loop_get_stats(self._loop, s)
        return {
            "accepted": s.accepted, "connected": s.connected, "closed": s.closed,
            "open": s.open, "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
            "messages_in": s.messages_in,
        }

    def _is_open(self, conn: int) -> bool:
        return conn in self._conns

    # -- dispatch (the hot path) ---------------------------------------------

    def _dispatch(self, n: int) -> None:
        """Call the handler for the n events of the last poll, after the
        events held for connections resumed since.

        The poll summed the events up in words and copied small messages
        back to back into one blob (fn_loop_poll_batch): per batch, one read
        of each; per run of a connection's messages, one int for its id; per
        message, one int (its end in blob) and a slice of blob. Replies sent
        during the batch go to C in one call at its end (send). Aliases in
        locals on purpose."""
        batch = self._batch
        call = self._wire_call
        if call is not None and n and (r := batch.wire) & _WIRE_ONLY and not self._released:
            self._wire_round(call, r)
            return
        handler = self.handler
        on_message = handler.on_message
        held = self._held
        nwords = batch.nwords if n else 0
        if nwords:
            words = ffi.unpack(self._words, nwords)
            blob = ffi.unpack(self._blob, batch.blob_len)
        else:
            words, blob = [], b""
        pos = i = 0
        direct = self._direct
        wire = self._wire
        wobjs: Optional[list[Any]] = None  # the poll's wire requests, once read
        wres: list[Any] = []                # their results, in order
        wruns: list[tuple[int, Optional[WireServing], int, int]] = []
        wbad = False                        # a result C cannot frame, a conn gone
        http, out_conns, out_firsts = self._http, self._out_conns, self._out_firsts
        hwords: Optional[list[int]] = None  # the poll's simple-request words, once read
        wpos = 0                            # where the next HTTP record's words start
        self._dispatching = True
        out: list[bytes] = []
        self._out = out
        try:
            if self._released:
                self._release_held()
            while i < nwords:
                t = words[i]
                conn = words[i + 1]
                if t == _EV_MESSAGE:
                    k = words[i + 2]
                    i += 3 + k
                    ends = words[i - k:i]
                    d = direct.get(conn) if direct else None
                    if d is not None and not (held and conn in held):
                        # The handler itself, its reply queued as send()
                        # would. Anything else the handler does to the
                        # engine (close, pause, write, send elsewhere)
                        # resets _out_conn, and the slow branch looks.
                        fn: Optional[DirectHandler]
                        fn, arg, on_error = d
                        if self._out_conn is not conn:
                            self._start_run(conn)
                        for end in ends:
                            message = blob[pos:end]
                            pos = end
                            if fn is None:  # paused meanwhile: hold the rest
                                held[conn].append((t, message))
                                continue
                            try:
                                reply = fn(arg, message)
                            except Exception:
                                reply = None
                                self._direct_failed(conn, on_error, arg)
                            if self._out_conn is not conn:
                                if conn not in direct:  # closed: drop its reply and the rest
                                    pos = ends[-1]
                                    break
                                if conn in held:
                                    fn = None
                                    if reply is not None and not self._send_direct_reply(
                                            conn, reply, on_error, arg):
                                        pos = ends[-1]  # conn is closing: drop the rest
                                        break
                                    continue
                                self._start_run(conn)
                            if reply is not None:
                                if type(reply) is bytes and len(reply) <= _SEND_BATCH_MAX:
                                    out.append(reply)
                                elif not self._send_direct_reply(conn, reply, on_error, arg):
                                    pos = ends[-1]  # not a reply: conn is closing, drop the rest
                                    break
                        continue
                    for end in ends:
                        message = blob[pos:end]
                        pos = end
                        try:
                            if held and conn in held:
                                held[conn].append((t, message))
                            else:
                                on_message(conn, message)
                        except Exception:
                            log.exception("handler failed on event %d of connection %d", t, conn)
                elif t == _EV_HTTP or t == _EV_HTTP_REF:
                    # The simple requests C parsed from one read of conn:
                    # their bytes (in blob, or evs[index]), their words in
                    # hwords[wstart:wpos]; the reply queued as a direct
                    # handler's is.
                    wstart = wpos
                    wpos = words[i + 3]
                    if t == _EV_HTTP:
                        end = words[i + 2]
                        message = blob[pos:end]
                        pos = end
                    else:
                        ev = self._evs[words[i + 2]]
                        message = ffi.unpack(ev.data, ev.len)
                    i += 4
                    h = http.get(conn)
                    if h is None or held and conn in held:
                        self._http_aside(conn, message)
                        continue
                    if hwords is None:
                        hwords = self._http_words()
                    try:
                        reply = h[0](h[1], message, hwords, wstart, wpos)
                    except Exception:
                        self._direct_failed(conn, h[2], h[1])
                        continue
                    if reply is None:
                        continue
                    if type(reply) is bytes and len(reply) <= _SEND_BATCH_MAX and conn in direct \
                            and not (held and conn in held):
                        if self._out_conn is not conn:  # a run of its own (_start_run)
                            self._out_conn = conn
                            out_conns.append(conn)
                            out_firsts.append(len(out))
                        out.append(reply)
                    elif conn in direct:  # paused meanwhile, or a large reply: as send()
                        self._send_direct_reply(conn, reply, h[2], h[1])
                elif t == _EV_WIRE:
                    # k requests C took from conn: the next k of the poll's
                    # list; answered by the session's call, framed at the end.
                    k = words[i + 2]
                    i += 3
                    if wobjs is None:
                        wobjs = self._wire_objects(batch.wire)
                    first = len(wres)
                    w = wire.get(conn)
                    wruns.append((conn, w, first, k))
                    if w is None or first + k > len(wobjs):
                        if w is not None:  # C ran out of memory for the stream
                            self.close(conn, abort=True)
                        wres += [None] * k  # closed: no replies
                        wbad = True
                        continue
                    call = w.call
                    for obj in wobjs[first:first + k]:
                        try:
                            wres.append(call(obj))
                        except Exception as exc:  # that request gets an ERROR
                            wres.append(w.fail(exc))
                            wbad = True
                        if conn not in wire:  # the handler closed it: drop the rest
                            wres += [None] * (first + k - len(wres))
                            wbad = True
                            break
                else:
                    index = words[i + 2]
                    i += 3
                    try:
                        self._dispatch_slow(t, conn, index)
                    except Exception:
                        log.exception("handler failed on event %d of connection %d", t, conn)
            if self._released:
                self._release_held()
            if wobjs is not None:
                self._wire_replies(wres, wruns, wbad)
        finally:
            if self._out and self._loop is not None:
                self._send_queued()
            self._out_conns.clear()   # runs started for replies that never came
            self._out_firsts.clear()
            self._out = None
            self._out_conn = None
            self._dispatching = False
        if held:
            for conn in [conn for conn, events in held.items() if not events]:
                del held[conn]

    def _http_words(self) -> list[int]:
        """The poll's simple-request words (fn_loop_http_words)."""
        count = self._http_n
        return ffi.unpack(lib.fn_loop_http_words(self._loop, count), count[0])

    def _http_aside(self, conn: int, message: bytes) -> None:
        """An HTTP record of a conn paused meanwhile (held) or no longer so
        served: its bytes go as a message, parsed again by the session."""
        held = self._held.get(conn)
        if held is not None:
            held.append((_EV_MESSAGE, message))
            return
        try:
            self.handler.on_message(conn, message)
        except Exception:
            log.exception("handler failed on event %d of connection %d", _EV_MESSAGE, conn)

    def _wire_round(self, call: Callable[[Any], Any], r: int) -> None:
        """A poll of wire requests only (its stream built: C had the
        memory), every session's handler being call: the results by map (no
        frame of ours per request), one marshal stream back to C; the words
        are read only when something needs them (an exception, a connection
        gone, a result C cannot frame), and _wire_replies then answers as
        _dispatch does."""
        objs = _loads(self._wire_into) if r & _WIRE_INTO else self._wire_objects(r)
        drops = self._wire_drops
        results: list[Any] = []
        calls = map(call, objs)
        bad = False
        self._dispatching = True
        self._out = []
        try:
            while True:
                try:
                    results.extend(calls)  # what came before an exception stays
                    break
                except Exception as exc:  # that request gets an ERROR
                    w = self._wire_session_of(len(results))
                    results.append(w.fail(exc) if w is not None else None)
                    bad = True
            self._wire_replies(results, None, bad or drops != self._wire_drops)
        finally:
            if self._out and self._loop is not None:
                self._send_queued()
            self._out_conns.clear()
            self._out_firsts.clear()
            self._out = None
            self._out_conn = None
            self._dispatching = False

    def _wire_runs(self) -> list[tuple[int, Optional[WireServing], int, int]]:
        """The last poll's wire runs from its words (conn, session, first,
        k), all FN_EV_WIRE records (FN_BATCH_WIRE_ONLY)."""
        words = ffi.unpack(self._words, self._batch.nwords)
        runs, first, wire = [], 0, self._wire
        for i in range(0, len(words), 3):
            conn, k = words[i + 1], words[i + 2]
            runs.append((conn, wire.get(conn), first, k))
            first += k
        return runs

    def _wire_session_of(self, index: int) -> Optional[WireServing]:
        """The session of the last poll's wire request at index."""
        for _, w, first, k in self._wire_runs():
            if first <= index < first + k:
                return w
        return None

    def _wire_objects(self, r: int) -> list[Any]:
        """The poll's wire requests (fn_batch.wire: one marshal stream)."""
        if r <= 0:  # out of memory in C (the stream is never empty here)
            return []
        if r & _WIRE_INTO:
            objs: list[Any] = _loads(self._wire_into)
        else:
            objs = _loads(ffi.buffer(self._wire_work.out, r >> 3))
        return objs

    def _wire_replies(self, results: list[Any],
                      runs: Optional[list[tuple[int, Optional[WireServing], int, int]]],
                      bad: bool) -> None:
        """Answer the poll's wire requests: one marshal stream of the results
        that C frames and queues, or (a result C cannot frame, a failure, a
        connection closed meanwhile) each run framed by its session (runs
        None: read from the words, a wire-only poll's)."""
        if not bad:
            try:
                stream = _dumps(results, 4)
            except ValueError:  # something marshal refuses (a datetime, a subclass, ...)
                pass
            else:
                rc = _fn_loop_wire_replies(self._loop, stream, len(stream))
                if rc == 0:
                    return
                if rc == lib.FN_E_NOMEM:
                    for conn, _, _, _ in runs or self._wire_runs():
                        self.close(conn, abort=True)
                    return
        if runs is None:
            runs = self._wire_runs()
        n = ffi.new("size_t *")
        ids = lib.fn_loop_wire_ids(self._loop, n)
        ids = ffi.unpack(ids, n[0]) if n[0] else []
        wire = self._wire
        for conn, w, first, k in runs:
            if w is None or wire.get(conn) is not w or first + k > len(ids):
                continue  # gone, or closed by its handler: its replies are dropped
            frames = b"".join(w.answer(ids[j], results[j]) for j in range(first, first + k))
            try:
                self.write(conn, frames)
            except EngineError:
                pass  # closed in C meanwhile: its on_close is to come

    def _send_direct_reply(self, conn: int, reply: object, on_error: Any, arg: object) -> bool:
        """send() a direct handler's reply that is not small bytes; if it is
        not bytes-like at all, on_error decides as for an exception (the
        TypeError names what came). False then."""
        try:
            self.send(conn, check_reply(reply))
        except TypeError:
            self._direct_failed(conn, on_error, arg)
            return False
        return True

    def _direct_failed(self, conn: int, on_error: Any, arg: object) -> None:
        """A direct handler raised: its on_error decides (and closes)."""
        try:
            on_error(arg)
        except Exception:
            log.exception("on_error failed for connection %d", conn)

    def _dispatch_slow(self, t: int, conn: int, index: int) -> None:
        """An event other than a message in the blob: its details are in
        the event array."""
        ev = self._evs[index]
        payload: Any = None
        if t == _EV_MESSAGE_REF:
            t = _EV_MESSAGE
            payload = ffi.unpack(ev.data, ev.len)
        held = self._held
        if held and conn in held and t in _HOLDABLE:
            if t == _EV_ERROR:
                payload = self._error_of(ev)
            held[conn].append((t, payload))
        elif t == _EV_MESSAGE:
            self.handler.on_message(conn, payload)
        else:
            self._dispatch_other(self.handler, ev, t)

    def _release_held(self) -> None:
        """Dispatch the events held for resumed connections, in order, until
        one is paused again (or closed: close() empties its queue)."""
        released, self._released = self._released, []
        handler = self.handler
        for conn in released:
            events = self._held.get(conn)
            while events and conn not in self._paused:
                t, payload = events.popleft()
                try:
                    if t == _EV_MESSAGE:
                        handler.on_message(conn, payload)
                    elif t == _EV_EOF:
                        handler.on_eof(conn)
                    else:
                        handler.on_protocol_error(conn, payload)
                except Exception:
                    log.exception("handler failed on event %d of connection %d", t, conn)

    def _error_of(self, ev: Any) -> ProtocolError:
        spec = self._conns.get(ev.conn)
        return _protocol_error(ev.code, ev.value, spec.max_size if spec is not None else 0)

    def _dispatch_other(self, handler: EngineHandler, ev: Any, t: int) -> None:
        conn = ev.conn
        if t == _EV_ACCEPT:
            lid = ev.value
            self._conns[conn] = self._listener_specs[lid]
            handler.on_accept(conn, self._listeners[lid])
        elif t == _EV_CLOSED:
            self._conns.pop(conn, None)
            self._direct.pop(conn, None)
            self._wire_drop(conn)
            self._out_conn = None
            self._paused.discard(conn)
            self._held.pop(conn, None)
            handler.on_close(conn, _REASONS[ev.code], ev.value)
        elif t == _EV_CONNECTED:
            handler.on_connected(conn)
        elif t == _EV_EOF:
            handler.on_eof(conn)
        elif t == _EV_IDLE:
            handler.on_idle(conn, ev.value / 1000)
        elif t == _EV_ERROR:
            handler.on_protocol_error(conn, self._error_of(ev))
        elif t == _EV_LISTEN_ERROR:
            err = ev.value
            log.warning("listener %d: accept failed: %s (%s); retrying in %gs or when a "
                        "connection closes", conn, os.strerror(err), errnos.errorcode.get(err, err),
                        limits.ACCEPT_RETRY_DELAY)
            if self._aio is not None:
                self._rearm_idle_timer(retry=True)  # the retry is a deadline too

    # -- running -------------------------------------------------------------

    def run_once(self, timeout_ms: int = 0) -> int:
        """One round: write queued output, wait up to timeout_ms (-1: no
        limit) for events, dispatch them, write the replies. Returns how many
        events were dispatched. For tests and for driving the engine from
        another loop."""
        n = lib.fn_loop_poll_batch(self._loop, self._batch, timeout_ms)
        if n < 0:
            raise _status_error(n)
        if n or self._released:
            self._dispatch(n)
        self._run_callbacks()
        lib.fn_loop_flush(self._loop)
        return n

    def run(self) -> None:
        """Run until :meth:`stop`, then close every socket."""
        loop = self._loop
        if loop is None:
            raise _error(errnos.EBADF)
        poll = lib.fn_loop_poll_batch
        batch = self._batch
        dispatch = self._dispatch
        run_callbacks = self._run_callbacks
        next_timeout = self._next_timeout
        self._running = True
        self._owner = _get_ident()
        wakeup = self._take_signal_wakeup()
        try:
            while not self._stopping:
                timeout = next_timeout() if self._timers or self._soon else None
                n = poll(loop, batch, -1 if timeout is None else int(timeout * 1000 + 0.999))
                if n > 0 or (n == 0 and self._released):
                    dispatch(n)
                elif n < 0:
                    raise _status_error(n)
                if self._timers or self._soon:
                    run_callbacks()
            lib.fn_loop_flush(loop)  # best effort: replies of the last batch
        finally:
            if wakeup:
                signal.set_wakeup_fd(-1)
            self._running = False
            try:
                self.release()
            finally:
                self._owner = None

    def _take_signal_wakeup(self) -> bool:
        """On the main thread, with no signal wakeup fd set: make our pipe
        Python's, so a signal wakes the poll (see the module docstring)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        previous = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        if previous != -1:  # someone else's (asyncio's, say): leave it
            signal.set_wakeup_fd(previous)
            return False
        return True

    async def run_async(self) -> None:
        """Run inside the running asyncio loop until :meth:`stop`, then close
        every socket. The epoll fd is watched with ``add_reader``."""
        aio = asyncio.get_running_loop()
        loop = self._loop
        if loop is None:
            raise _error(errnos.EBADF)
        fd = lib.fn_loop_fd(loop)
        self._done = aio.create_future()
        self._aio = aio
        self._running = True
        self._owner = _get_ident()
        if self._stopping:
            self._done.set_result(None)
        own = self._own_loop is not None and self._own_loop() is aio
        selector = self._own_selector if own else None
        if selector is not None:
            rc = lib.fn_loop_set_waker(loop, selector.fileno())
            if rc < 0:
                raise _status_error(rc)
            selector._engine = self
        else:
            aio.add_reader(fd, self._on_readable)
        self._timers_to_asyncio(aio)
        self._schedule_round()  # events or output queued before we started
        try:
            await self._done
        finally:
            self._timers_from_asyncio()
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            if selector is not None:
                selector._engine = None
                lib.fn_loop_set_waker(loop, self._wakefd)
            else:
                aio.remove_reader(fd)
            self._aio = None
            self._running = False
            lib.fn_loop_flush(loop)
            try:
                self.release()
            finally:
                self._owner = None

    def _on_readable(self) -> None:
        """asyncio callback: one non-blocking round."""
        self._round_scheduled = False
        loop = self._loop
        if loop is None or self._stopping:
            return
        self._round(loop, 0)

    def _round(self, loop: Any, ms: int) -> bool:
        """A round under asyncio: poll (waiting up to ms, -1: no limit),
        dispatch, flush; another round asked for if C has events pending,
        the idle timer kept armed. False if the poll failed (run_async then
        raises)."""
        n = lib.fn_loop_poll_batch(loop, self._batch, ms)
        if n > 0 or (n == 0 and self._released):
            self._dispatch(n)
        elif n < 0:
            self._fail(_status_error(n))
            return False
        lib.fn_loop_flush(loop)
        if lib.fn_loop_has_pending(loop):
            self._schedule_round()
        self._arm_idle_timer()
        return True

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """A new asyncio loop in which :meth:`run_async` waits once per
        round (:class:`EngineSelector`); run_async in any other loop
        watches the C loop's epoll fd with ``add_reader``."""
        selector = EngineSelector()
        aio = asyncio.SelectorEventLoop(selector)
        self._own_loop = weakref.ref(aio)
        self._own_selector = selector
        return aio

    def _select_round(self, timeout: Optional[float]) -> bool:
        """EngineSelector.select: one round that waits up to timeout (None:
        no limit) for the engine's sockets and asyncio's (the waker).
        True when asyncio's own fds are to be looked at."""
        loop = self._loop
        if timeout is None:
            ms = -1
        else:
            ms = 0 if timeout <= 0 else min(int(timeout * 1000 + 0.999), _MAX_WAIT_MS)
        try:
            if not self._round(loop, ms):
                return True
        except Exception as exc:  # not a handler's (those are caught): ours
            log.exception("engine round failed")
            self._fail(exc)
            return True
        return bool(lib.fn_loop_woken(loop))

    def _arm_idle_timer(self) -> None:
        """Under asyncio: keep one timer pending at the idle head's deadline.
        That deadline only moves later (reads and reports move connections
        to the tail, new ones join it), so a pending timer is never late;
        one that fires early costs a round that finds nothing and re-arms.
        The exception: a timer armed for the send timeout while no
        connection had an idle deadline is re-armed once one has."""
        aio, loop = self._aio, self._loop
        if not self._idle_on or aio is None or loop is None:
            return
        if self._idle_timer is not None:
            if not self._idle_unheaded:
                return
            # Armed for the send timeout while no connection had an idle
            # deadline: one that joined since may be due much sooner.
            ms = lib.fn_loop_idle_wait_ms(loop)
            if ms < 0:
                return
            self._idle_timer.cancel()
        else:
            ms = lib.fn_loop_idle_wait_ms(loop)
        self._idle_unheaded = ms < 0
        if self._send_ms and (ms < 0 or ms > self._send_ms):
            # A send deadline set after this timer is at least a send timeout
            # away: waking within one re-arms in time for it.
            ms = self._send_ms
        if ms >= 0:
            self._idle_timer = aio.call_later(ms / 1000, self._on_idle_timer)

    def _on_idle_timer(self) -> None:
        self._idle_timer = None
        self._on_readable()  # the poll reports what expired, then re-arms

    def _schedule_round(self) -> None:
        if self._aio is not None and not self._round_scheduled:
            self._round_scheduled = True
            self._aio.call_soon(self._on_readable)

    def flush_soon(self) -> None:
        """Write output queued from outside a round (a coroutine, say) once
        per asyncio iteration. Under run() the next poll writes it anyway."""
        if self._aio is not None and not self._flush_scheduled:
            self._flush_scheduled = True
            self._aio.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        loop = self._loop
        if loop is not None:
            lib.fn_loop_flush(loop)
            if lib.fn_loop_has_pending(loop):  # a close finished: CLOSED to deliver
                self._schedule_round()

    def _kick(self) -> None:
        """Under asyncio, a change made between rounds (close, resume,
        connect) may need a round the epoll fd will not ask for."""
        if self._aio is not None:
            self.flush_soon()

    def _fail(self, exc: BaseException) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass  # full: the poll is woken anyway

    def stop(self) -> None:
        """Make run()/run_async() return soon. Safe from any thread and from
        signal handlers."""
        self._stopping = True
        self._wake()
        aio = self._aio
        if aio is not None:
            try:
                aio.call_soon_threadsafe(self._finish)
            except RuntimeError:
                pass  # that loop is closed

    def release(self) -> None:
        """Close every socket now (no flushing) and free the C loop; then
        ``on_close(ABORT)`` for each connection that was still open. run()
        and run_async() call this when they return; called while they run
        (from a handler), it stops them instead. Idempotent."""
        loop = self._loop
        if loop is None:
            return
        if self._running:
            self.stop()
            return
        self._final_stats = stats = self.stats()
        # fn_loop_free closes what is open: count it as closed, as the
        # Python engines do (their on_close(ABORT) follows below too).
        stats["closed"] += stats["open"]
        stats["open"] = 0
        self._held.clear()
        self._released.clear()
        self._paused.clear()
        self._direct.clear()
        self._wire.clear()
        self._wire_calls.clear()
        self._wire_call = None
        self._loop = None
        ffi.release(loop)  # fn_loop_free, now rather than at GC
        conns = list(self._conns)
        self._conns.clear()
        for conn in conns:
            try:
                self.handler.on_close(conn, CloseReason.ABORT, 0)
            except Exception:
                log.exception("handler failed in on_close of connection %d", conn)
