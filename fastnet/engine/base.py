"""The interface every engine implements, and what an engine drives.

An engine owns sockets and moves bytes; it knows framing (how to cut a byte
stream into messages, see :class:`ConnSpec`) but no protocol grammar and no
policy. It reports what happens on its connections to one
:class:`EngineHandler` (the server's control plane, or a client), by calling
its ``on_*`` methods from the thread that runs the engine (for the threaded
engine: from each connection's own thread).

Connections are named by ``int`` ids that are never reused while an engine
lives. What an engine may report about one connection, and in which order,
is the table :data:`TRANSITIONS` (its states are :class:`ConnState`); the
contract tests walk it on every engine.

Threads. Handler callbacks run on the engine's thread: the one in ``run()``,
or the asyncio loop's under ``run_async()`` (on an engine with
``callbacks_from_many_threads``, each connection's own thread). Thread-safe
on every engine, from any thread: :meth:`Engine.send`, :meth:`Engine.write`,
:meth:`Engine.close`, :meth:`Engine.pause_reading`, :meth:`Engine.call_later`,
:meth:`Engine.call_soon_threadsafe` and :meth:`Engine.stop` (the last two
also from signal handlers). On the C and Python engines, the first five
called from a thread other than the engine's are queued, in call order, to
the engine's thread, which is woken to carry them out: the data is copied
at the call, send and write raise ``EngineError`` (EBADF) at once for a
connection already known to be gone, and a call that finds its connection
gone when it runs is dropped. (The threaded engine carries them out on the
calling thread: its writes are synchronous, under a lock per connection.)
Every other method is for the engine's thread only (callbacks, timers,
coroutines on its asyncio loop), or for set-up before it runs.

The push path. Output is written promptly whatever its origin, without
waiting for input from the peer: from a callback, before the engine sleeps
again; from a timer, a coroutine or task on the engine's asyncio loop, or
another thread, by a flush the engine schedules itself (``flush_soon`` is
never needed, only allowed).
"""
from __future__ import annotations

import abc
import asyncio
import collections
import enum
import errno
import heapq
import inspect
import logging
import threading
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping, Optional, Protocol, Union

from .. import limits
from ..errors import EngineError, ProtocolError

FRAMINGS = ("raw", "be32", "varint", "line")

#: What send() and write() take: any contiguous bytes-like object.
Buffer = Union[bytes, bytearray, memoryview]



def check_reply(reply: object) -> Buffer:
    """``reply`` if it is bytes-like (what send() takes), else TypeError
    naming its type; a coroutine returned where a reply was due is closed,
    so Python does not also warn that it was never awaited."""
    if isinstance(reply, (bytes, bytearray, memoryview)):
        return reply
    if inspect.iscoroutine(reply):
        reply.close()
    raise TypeError(f"returned {type(reply).__name__}: a reply must be bytes, "
                    "bytearray, memoryview or None")


#: A handler an engine may call per message itself (Engine.serve_directly):
#: (its argument, the message) -> the reply to send, or None.
DirectHandler = Callable[[object, bytes], Optional[Buffer]]
#: serve_http's handler: ``fn(arg, data, words, start, end)`` answers the
#: simple HTTP/1.1 requests in data whose words (as
#: ``RequestHeadParser.simple_requests`` gives them, offsets into data) are
#: ``words[start:end]``; it returns the reply, as a DirectHandler does.
HttpHandler = Callable[[object, bytes, list[int], int, int], Optional[Buffer]]


@dataclass(frozen=True)
class ConnSpec:
    """How an engine frames the bytes of a connection.

    framing:    "raw" (whatever each read returned), "be32" (4-byte big-endian
                length prefix), "varint" (LEB128 length prefix) or "line".
    max_size:   max frame payload (be32/varint) or line length (line).
    bare_lf:    line framing also accepts a bare "\\n" as the delimiter.
    echo:       the engine echoes every message itself (in C on the C engine)
                and the handler's ``on_message`` is not called.
    high_water: stop reading from a connection while more than this many
                bytes are queued for output to it...
    low_water:  ...and resume once the queue has drained to this many.
    tcp_keepalive: None, or (idle, interval, count): turn on the kernel's
                TCP keep-alive (SO_KEEPALIVE) with TCP_KEEPIDLE seconds of
                silence before the first probe, TCP_KEEPINTVL seconds
                between probes and TCP_KEEPCNT unanswered probes before the
                kernel resets the connection (0 keeps the kernel default).
    """

    framing: str = "raw"
    max_size: int = limits.DEFAULT_MAX_FRAME
    bare_lf: bool = False
    echo: bool = False
    high_water: int = limits.DEFAULT_OUTPUT_HIGH_WATER
    low_water: int = limits.DEFAULT_OUTPUT_LOW_WATER
    tcp_keepalive: Optional[tuple[int, int, int]] = None

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {FRAMINGS}, not {self.framing!r}")
        if self.max_size <= 0:
            raise ValueError("max_size must be positive")
        if not 0 <= self.low_water <= self.high_water:
            raise ValueError("need 0 <= low_water <= high_water")
        if self.tcp_keepalive is not None and (
                len(self.tcp_keepalive) != 3 or min(self.tcp_keepalive) < 0):
            raise ValueError("tcp_keepalive must be (idle, interval, count), each >= 0")


class CloseReason(enum.Enum):
    """Why a connection closed (the ``reason`` of ``on_close``)."""

    LOCAL = "local"                    # close() finished flushing
    ABORT = "abort"                    # close(abort=True), or the engine shut down
    PEER = "peer"                      # echo connection: the peer closed, output flushed
    RESET = "reset"                    # socket error: ECONNRESET, EPIPE, ...
    CONNECT_FAILED = "connect_failed"  # an outgoing connect failed
    PROTOCOL = "protocol"              # echo connection: framing error, output flushed
    SEND_TIMEOUT = "send_timeout"      # output pending, no write progress for the send timeout


class ConnState(enum.Enum):
    """Where a connection is in its life, as its EngineHandler sees it."""

    CONNECTING = "connecting"  # Engine.connect() returned its id
    OPEN = "open"              # on_accept / on_connected: reading and writing
    EOF = "eof"                # on_eof: nothing more is read; writing goes on
    ERROR = "error"            # on_protocol_error: nothing more is read; writing goes on
    CLOSING = "closing"        # Engine.close() was called: only on_close follows
    CLOSED = "closed"          # on_close: gone, its id never reused


class ConnEvent(enum.Enum):
    """What moves a connection between states: a callback the engine makes
    (``on_*``), or a call the handler makes (``connect``, ``close``)."""

    CONNECT = "connect"                # Engine.connect()
    ACCEPT = "on_accept"
    CONNECTED = "on_connected"
    MESSAGE = "on_message"
    IDLE = "on_idle"
    EOF = "on_eof"
    PROTOCOL_ERROR = "on_protocol_error"
    CLOSE = "close"                    # Engine.close(), graceful or abort
    CLOSED = "on_close"


_S, _E = ConnState, ConnEvent
#: The connection lifecycle: (state, event) -> the next state; ``None`` is
#: the state before the connection exists. A pair that is not here is a
#: broken engine. Notably: on_close may follow on_eof or on_protocol_error
#: without a close() (the peer reset, an echo connection finished, the
#: engine shut down); on_idle may come after on_eof and on_protocol_error
#: (the connection is still open) but never once close() was called; a
#: failed connect goes from CONNECTING straight to CLOSED; calling close()
#: again does nothing (an abort cuts a graceful close short).
TRANSITIONS: Mapping[tuple[Optional[ConnState], ConnEvent], ConnState] = MappingProxyType({
    (None, _E.CONNECT): _S.CONNECTING,
    (None, _E.ACCEPT): _S.OPEN,
    (_S.CONNECTING, _E.CONNECTED): _S.OPEN,
    (_S.CONNECTING, _E.CLOSE): _S.CLOSING,
    (_S.CONNECTING, _E.CLOSED): _S.CLOSED,
    (_S.OPEN, _E.MESSAGE): _S.OPEN,
    (_S.OPEN, _E.IDLE): _S.OPEN,
    (_S.OPEN, _E.EOF): _S.EOF,
    (_S.OPEN, _E.PROTOCOL_ERROR): _S.ERROR,
    (_S.OPEN, _E.CLOSE): _S.CLOSING,
    (_S.OPEN, _E.CLOSED): _S.CLOSED,
    (_S.EOF, _E.IDLE): _S.EOF,
    (_S.EOF, _E.CLOSE): _S.CLOSING,
    (_S.EOF, _E.CLOSED): _S.CLOSED,
    (_S.ERROR, _E.IDLE): _S.ERROR,
    (_S.ERROR, _E.CLOSE): _S.CLOSING,
    (_S.ERROR, _E.CLOSED): _S.CLOSED,
    (_S.CLOSING, _E.CLOSE): _S.CLOSING,
    (_S.CLOSING, _E.CLOSED): _S.CLOSED,
})
del _S, _E


class LifecycleError(AssertionError):
    """An engine reported something its TRANSITIONS table does not allow."""


def next_state(state: Optional[ConnState], event: ConnEvent) -> ConnState:
    """The state after ``event`` in ``state`` (None: before the connection
    exists); LifecycleError if the table does not allow it."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LifecycleError(
            f"{event.value} is not allowed in state {state.value if state else None}") from None


@dataclass(frozen=True)
class Listener:
    """A listening socket of an engine."""

    id: int
    host: str
    port: int


class EngineHandler(Protocol):
    """What an engine reports to. Callbacks must not block (except on the
    threaded engine, where each connection has its own thread)."""

    def on_accept(self, conn: int, listener: Listener) -> None:
        """A connection was accepted on ``listener``."""

    def on_connected(self, conn: int) -> None:
        """An outgoing connection (``Engine.connect``) is established."""

    def on_message(self, conn: int, message: bytes) -> None:
        """A whole message arrived (never called for echo connections)."""

    def on_eof(self, conn: int) -> None:
        """The peer shut its write side; nothing more will be read. The
        connection stays open for writing until ``Engine.close``."""

    def on_protocol_error(self, conn: int, error: ProtocolError) -> None:
        """The peer broke the framing; nothing more will be read. The
        connection stays open so an error reply can be sent before
        ``Engine.close`` (echo connections close by themselves)."""

    def on_close(self, conn: int, reason: CloseReason, errno: int) -> None:
        """The connection is gone. ``errno`` is 0 unless reason is RESET or
        CONNECT_FAILED."""

    def on_idle(self, conn: int, silent: float) -> None:
        """Nothing has arrived from ``conn`` for the idle timeout
        (``Engine.set_idle_timeout``): ``silent`` seconds since its last
        byte (or its accept). Reported again after each further timeout of
        silence, until it closes; closing connections are not reported."""


log = logging.getLogger("fastnet.engine")

_get_ident = threading.get_ident


@dataclass(frozen=True)
class WireHello:
    """A wire server's side of HELLO, for an engine that negotiates
    (:meth:`Engine.serve_wire` with version 0): the versions it speaks
    (1..max_version), its codecs in preference order with their compression
    thresholds, and the HELLO reply frame for each outcome, reply
    ``(version - 1) << len(codecs) | mask`` where bit i of mask is codecs[i]
    (v1: every mask, the same reply)."""

    max_version: int
    codecs: tuple[str, ...]
    thresholds: tuple[int, ...]
    replies: tuple[bytes, ...]


class WireServing(Protocol):
    """What :meth:`Engine.serve_wire` needs of a wire connection's session:
    the handler as a batch calls it (one request in, one result out), the
    failure a handler's exception becomes, and the frame (RESPONSE or
    ERROR) a result becomes when the engine cannot frame it itself."""

    call: Callable[[Any], Any]

    def fail(self, exc: Exception) -> Any:
        """The result standing for a handler's exception (answered as an ERROR)."""

    def answer(self, request_id: int, result: Any) -> bytes:
        """The whole frame answering request_id with result."""


class TimerHandle:
    """A callback scheduled with :meth:`Engine.call_later`."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not call the callback (if it has not run yet)."""
        self.cancelled = True

    def __lt__(self, other: "TimerHandle") -> bool:
        return self.when < other.when


class Engine(abc.ABC):
    """An I/O engine: listen, connect, move bytes, report events.

    Timers: :meth:`call_later` and :meth:`call_soon_threadsafe` run
    callbacks on the engine's own thread, between rounds. Under
    ``run_async`` they are handed to the asyncio loop; under ``run`` each
    engine's loop calls :meth:`_run_callbacks` after every round and sleeps
    no longer than :meth:`_next_timeout`.
    """

    #: "c", "python" or "threaded"; for logs and reports. Servers and
    #: clients decide by the capability flags below, never by the name.
    name: ClassVar[str]
    #: Handler callbacks run on many threads at once (one per connection):
    #: the handler must be thread-safe, and a callback may block.
    callbacks_from_many_threads: ClassVar[bool] = False
    #: run_async() runs the engine inside the running asyncio loop (else it
    #: raises NotImplementedError: run coroutines on a loop of their own).
    runs_in_asyncio: ClassVar[bool] = False
    #: serve_directly() takes its offer: the engine calls a plain handler
    #: per message itself.
    direct_path: ClassVar[bool] = False
    #: serve_wire() takes its offer: the engine frames the wire protocol.
    wire_path: ClassVar[bool] = False

    def __init__(self, handler: EngineHandler) -> None:
        self.handler = handler
        self._timers: list[TimerHandle] = []   # a heap, under run()
        self._soon: collections.deque[Callable[[], None]] = collections.deque()
        self._timer_aio: Optional[asyncio.AbstractEventLoop] = None
        # The ident of the thread running the engine (None: not running);
        # calls from any other thread are queued to it (_from_thread).
        self._owner: Optional[int] = None

    # -- threads -------------------------------------------------------------

    def _foreign(self) -> bool:
        """Called from a thread other than the running engine's?"""
        owner = self._owner
        return owner is not None and owner != _get_ident()

    def _from_thread(self, conn: int, call: Callable[[], None], strict: bool = True) -> None:
        """Carry out ``call`` (an engine method on ``conn``) on the engine's
        thread: queued in order, the engine woken. With ``strict`` (output),
        EBADF now if ``conn`` is known to be gone; either way, dropped if it
        is gone when the call runs."""
        if strict and not self._is_open(conn):
            raise EngineError(errno.EBADF, f"connection {conn} is closed or unknown")

        def run() -> None:
            try:
                call()
            except EngineError:
                pass  # it closed meanwhile: as its other queued output, dropped
        self.call_soon_threadsafe(run)

    def _output_from_thread(self, method: Callable[[int, Buffer], None], conn: int,
                            data: Buffer) -> None:
        """send() or write() from a foreign thread: a copy of the data,
        queued to the engine's thread."""
        copy = bytes(data)
        self._from_thread(conn, lambda: method(conn, copy))

    def _is_open(self, conn: int) -> bool:
        """Is ``conn`` open (or connecting, or closing)? Safe from any
        thread: a dict lookup (each engine)."""
        return True

    # -- timers ------------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Call ``callback()`` on the engine's thread after ``delay``
        seconds. Thread-safe."""
        handle = TimerHandle(time.monotonic() + max(0.0, delay), callback)
        if self._foreign():
            self.call_soon_threadsafe(lambda: self._schedule(handle))
        else:
            self._schedule(handle)
        return handle

    def _schedule(self, handle: TimerHandle) -> None:
        aio = self._timer_aio
        if aio is not None:
            aio.call_later(max(0.0, handle.when - time.monotonic()), self._fire, handle)
        else:
            heapq.heappush(self._timers, handle)

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on the engine's thread soon. Safe from any
        thread and from signal handlers."""
        aio = self._timer_aio
        if aio is not None:
            try:
                aio.call_soon_threadsafe(callback)
                return
            except RuntimeError:
                pass  # that loop closed: run() takes over
        self._soon.append(callback)
        self._wake()

    def _wake(self) -> None:
        """Interrupt the engine's wait so new callbacks run (each engine)."""

    @staticmethod
    def _fire(handle: TimerHandle) -> None:
        if not handle.cancelled:
            handle.callback()

    def _run_callbacks(self) -> None:
        """Run queued thread-safe callbacks, then every timer that is due."""
        soon = self._soon
        while soon:
            self._call(soon.popleft())
        timers = self._timers
        now = time.monotonic()
        while timers and timers[0].when <= now:
            handle = heapq.heappop(timers)
            if not handle.cancelled:
                self._call(handle.callback)

    def _next_timeout(self) -> Optional[float]:
        """Seconds the engine may sleep: None (no timer), else until the
        next timer is due."""
        if self._soon:
            return 0.0
        timers = self._timers
        while timers and timers[0].cancelled:
            heapq.heappop(timers)
        if not timers:
            return None
        return max(0.0, timers[0].when - time.monotonic())

    def _timers_to_asyncio(self, aio: asyncio.AbstractEventLoop) -> None:
        """run_async() starts: asyncio runs the timers from now on."""
        self._timer_aio = aio
        now = time.monotonic()
        for handle in self._timers:
            aio.call_later(max(0.0, handle.when - now), self._fire, handle)
        self._timers.clear()
        while self._soon:
            aio.call_soon(self._soon.popleft())

    def _timers_from_asyncio(self) -> None:
        self._timer_aio = None

    @staticmethod
    def _call(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("timer callback %r failed", callback)

    @abc.abstractmethod
    def listen(self, host: str, port: int, spec: ConnSpec,
               backlog: int = limits.DEFAULT_LISTEN_BACKLOG) -> Listener:
        """Bind and listen on host:port (port 0 picks a free port; the
        returned Listener holds the real one)."""

    @abc.abstractmethod
    def unlisten(self, listener: Listener) -> None:
        """Close a listening socket: new connects are refused from now on."""

    @abc.abstractmethod
    def connect(self, host: str, port: int, spec: ConnSpec) -> int:
        """Start an outgoing connection; ``on_connected`` or ``on_close``
        follows. Returns its id."""

    def serve_directly(self, conn: int, handler: "DirectHandler", arg: object,
                       on_error: Callable[[Any], None]) -> bool:
        """Offer to call ``handler(arg, message)`` for each message of
        ``conn`` (an accepted connection: call this from ``on_accept``)
        instead of ``EngineHandler.on_message``, and to send what it returns
        as one message (None: nothing). If it raises, or returns anything
        but a bytes-like object or None, the engine logs nothing and calls
        ``on_error(arg)``, which is expected to close ``conn``. Engines
        with ``direct_path`` take the offer.

        Returns whether the engine took the offer; an engine that did not
        (the default) keeps calling ``on_message``, so the handler must work
        either way. An engine that takes it keeps every other event on the
        usual path: messages held while ``conn`` is paused, EOF, errors,
        close. After ``close(conn)`` from inside ``handler``, the reply it
        returns and the messages of ``conn`` not yet delivered are dropped."""
        return False

    def serve_http_kata(self, conn: int, on: bool, max_request_line: int = 0,
                        max_header_bytes: int = 0, max_header_fields: int = 0) -> bool:
        """Offer to answer, in the engine, the plain ``GET / HTTP/1.1``
        requests of a raw ``conn`` with the reply last given to
        :meth:`set_http_kata_reply` (fastnet.http's built-in kata; the rules
        are csrc/loop.h's fn_loop_http_kata), heads checked with these
        limits; every other request still arrives as a message. ``on=False``
        stops it. Returns whether the engine does it (the default: no)."""
        return False

    def serve_wire(self, conn: int, session: Optional[WireServing], version: int = 0,
                   max_body: int = 0, threshold: Optional[int] = None,
                   hello: Optional[WireHello] = None) -> bool:
        """Offer to frame a raw ``conn``'s wire protocol in the engine from
        its next read (csrc/wire.h's fn_loop_wire): its plain REQUESTs of
        ``version`` are decoded there, every connection's of a poll at once,
        answered with ``session.call`` and framed back in one call; PINGs
        are answered and PONGs and GOAWAYs dropped there; every other frame
        arrives as a message, from which point the offer has lapsed (the
        session makes it again once it holds nothing). With version 0 and
        ``hello``, before the connection's first frame, the engine also
        negotiates: a well-formed HELLO is answered there, a v1 REQUEST makes
        the connection v1 (:meth:`wire_state` tells the session what came
        of it). ``session=None`` ends it (input the engine holds arrives as
        a message). Call it only while the session holds no input. Returns
        whether the engine does it (the default: no)."""
        return False

    def wire_state(self, conn: int) -> tuple[int, int]:
        """(version, codecs mask) the engine negotiated for a connection it
        served with :meth:`serve_wire` (0, 0: none yet)."""
        return 0, 0

    def serve_http(self, conn: int, on: bool, handler: Optional["HttpHandler"] = None,
                   arg: object = None, max_request_line: int = 0, max_header_bytes: int = 0,
                   max_header_fields: int = 0) -> bool:
        """Offer to parse, in the engine's poll, the simple HTTP/1.1
        requests of ``conn``, a raw connection already served directly
        (:meth:`serve_directly`: its on_error applies), heads checked with
        these limits (the rules are csrc/loop.h's fn_loop_http): from its
        next read on, a read's leading simple requests go to
        ``handler(arg, data, words, start, end)`` (see HttpHandler) and the
        rest of it, from the first other head on, is a message as before.
        After such a message the engine leaves the connection's reads to
        ``on_message`` until offered again (the caller does so once it holds
        nothing). ``on=False`` stops it. Returns whether the engine does it
        (the default: no)."""
        return False

    def set_http_kata_reply(self, reply: bytes, second: int) -> None:
        """The reply :meth:`serve_http_kata` answers with, valid during the
        wall-clock second ``second`` (int(time.time()): its Date). An engine
        that does not answer ignores it."""

    @abc.abstractmethod
    def send(self, conn: int, message: Buffer) -> None:
        """Queue one message, framed per the connection's ConnSpec.
        Thread-safe; written promptly from anywhere (module docstring)."""

    @abc.abstractmethod
    def write(self, conn: int, data: Buffer) -> None:
        """Queue raw bytes, as they are. Thread-safe, as send()."""

    @abc.abstractmethod
    def close(self, conn: int, abort: bool = False) -> None:
        """Close a connection: gracefully (stop reading, flush what is
        queued, then close) or, with abort, at once with a reset. Closing a
        connection that is already closing or gone does nothing.
        Thread-safe."""

    def flush_soon(self) -> None:
        """Make sure output queued from outside a poll round is written
        soon. Never needed (every engine schedules that flush itself, see
        the module docstring), allowed from the engine's thread."""

    @abc.abstractmethod
    def pause_reading(self, conn: int, paused: bool = True) -> None:
        """Stop (or resume) reading from a connection. Thread-safe."""

    @abc.abstractmethod
    def peer(self, conn: int) -> tuple[str, int]:
        """The remote address of a connection."""

    @abc.abstractmethod
    def fileno(self, conn: int) -> int:
        """The connection's socket descriptor, for getsockopt/setsockopt.
        Do not read, write or close it."""

    @abc.abstractmethod
    def output_size(self, conn: int) -> int:
        """Bytes queued for output on a connection (0 if unknown)."""

    @abc.abstractmethod
    def set_idle_timeout(self, seconds: Optional[float]) -> None:
        """Report ``on_idle`` for connections silent this long (None: off).
        Detection costs O(1) per read and, per check, O(connections that
        expired): never a scan of every open connection."""

    @abc.abstractmethod
    def set_send_timeout(self, seconds: Optional[float]) -> None:
        """Abort (reason SEND_TIMEOUT) a connection whose output has made no
        write progress for this long (None: never), a closing one too: a
        peer that stops reading cannot hold a descriptor and its queued
        output forever."""

    @abc.abstractmethod
    def run(self) -> None:
        """Run until :meth:`stop`, then close every socket."""

    async def run_async(self) -> None:
        """Run inside the running asyncio loop until :meth:`stop`."""
        raise NotImplementedError(f"the {self.name} engine cannot run inside asyncio")

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """A new asyncio loop for :meth:`run_async` (an engine may make one
        it runs in at less cost per round than in any other)."""
        return asyncio.new_event_loop()

    @abc.abstractmethod
    def stop(self) -> None:
        """Make run()/run_async() return soon. Safe from any thread and from
        signal handlers."""

    @abc.abstractmethod
    def stats(self) -> dict[str, int]:
        """Counters: accepted, connected, closed, open, bytes_in, bytes_out,
        messages_in."""
