"""The interface every engine implements, and what an engine drives.

An engine owns sockets and moves bytes; it knows framing (how to cut a byte
stream into messages, see :class:`ConnSpec`) but no protocol grammar and no
policy. It reports what happens on its connections to one
:class:`EngineHandler` (the server's control plane, or a client), by calling
its ``on_*`` methods from the thread that runs the engine (for the threaded
engine: from each connection's own thread).

Connections are named by ``int`` ids that are never reused while an engine
lives. Engine methods may be called from inside handler callbacks and from
coroutines on the engine's asyncio loop; only :meth:`Engine.stop` may be
called from any thread or a signal handler.
"""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import ClassVar, Protocol

from .. import limits
from ..errors import ProtocolError

FRAMINGS = ("raw", "be32", "varint", "line")


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
    """

    framing: str = "raw"
    max_size: int = limits.DEFAULT_MAX_FRAME
    bare_lf: bool = False
    echo: bool = False
    high_water: int = limits.DEFAULT_OUTPUT_HIGH_WATER
    low_water: int = limits.DEFAULT_OUTPUT_LOW_WATER

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {FRAMINGS}, not {self.framing!r}")
        if self.max_size <= 0:
            raise ValueError("max_size must be positive")
        if not 0 <= self.low_water <= self.high_water:
            raise ValueError("need 0 <= low_water <= high_water")


class CloseReason(enum.Enum):
    """Why a connection closed (the ``reason`` of ``on_close``)."""

    LOCAL = "local"                    # close() finished flushing
    ABORT = "abort"                    # close(abort=True), or the engine shut down
    PEER = "peer"                      # echo connection: the peer closed, output flushed
    RESET = "reset"                    # socket error: ECONNRESET, EPIPE, ...
    CONNECT_FAILED = "connect_failed"  # an outgoing connect failed
    PROTOCOL = "protocol"              # echo connection: framing error, output flushed


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


class Engine(abc.ABC):
    """An I/O engine: listen, connect, move bytes, report events."""

    #: "c", "python" or "threaded"
    name: ClassVar[str]

    def __init__(self, handler: EngineHandler) -> None:
        self.handler = handler

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

    @abc.abstractmethod
    def send(self, conn: int, message: bytes) -> None:
        """Queue one message, framed per the connection's ConnSpec."""

    @abc.abstractmethod
    def write(self, conn: int, data: bytes) -> None:
        """Queue raw bytes, as they are."""

    @abc.abstractmethod
    def close(self, conn: int, abort: bool = False) -> None:
        """Close a connection: gracefully (stop reading, flush what is
        queued, then close) or, with abort, at once with a reset. Closing a
        connection that is already closing or gone does nothing."""

    def flush_soon(self) -> None:
        """Make sure output queued from outside a poll round (by a coroutine,
        say) is written soon. Engines that write at once need nothing."""

    @abc.abstractmethod
    def pause_reading(self, conn: int, paused: bool = True) -> None:
        """Stop (or resume) reading from a connection."""

    @abc.abstractmethod
    def peer(self, conn: int) -> tuple[str, int]:
        """The remote address of a connection."""

    @abc.abstractmethod
    def run(self) -> None:
        """Run until :meth:`stop`, then close every socket."""

    async def run_async(self) -> None:
        """Run inside the running asyncio loop until :meth:`stop`."""
        raise NotImplementedError(f"the {self.name} engine cannot run inside asyncio")

    @abc.abstractmethod
    def stop(self) -> None:
        """Make run()/run_async() return soon. Safe from any thread and from
        signal handlers."""

    @abc.abstractmethod
    def stats(self) -> dict[str, int]:
        """Counters: accepted, connected, closed, open, bytes_in, bytes_out,
        messages_in."""
