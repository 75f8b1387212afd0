"""The protocol seam: how a protocol plugs into Server, and the registry.

A protocol is a registered :class:`ProtocolUnit`:

* its :class:`ProtocolSpec`: the engine framing, the protocol's error form
  for bad input and for a failed handler, its rejection form (busy,
  shutting down), its keep-alive probe and its goodbye for a graceful
  drain (HTTP/2's GOAWAY);
* a :class:`Session` factory: the server makes one session per accepted
  connection and feeds it every message (raw framing: every read's bytes,
  for protocols that frame themselves); the session answers (its return
  value), pushes (``conn.send`` from anywhere), runs requests of one
  connection concurrently where the protocol multiplexes them
  (``multiplexed``) and tells the server whether it is idle during a drain;
* its command-line options (:class:`~fastnet.server.options.Option`) and
  how ``python -m fastnet.serve`` builds a server from them.

``Server``, ``python -m fastnet.serve``, ``fastnet.connect`` and
``fastnet.open_connection`` find protocols by name here; nothing else
knows one protocol from another. The built-in units are echo, frame and
line (this module) and resp (fastnet.resp, loaded on first lookup).
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Optional, Union,
                    cast)

from .. import limits
from ..engine.base import ConnSpec, DirectHandler
from ..errors import ProtocolError
from .options import Option, size

if TYPE_CHECKING:
    from .server import Connection, Server

#: What a handler or a session may answer a message with.
Reply = Union[bytes, bytearray, memoryview, None]

#: The largest payload a 4-byte big-endian header can declare.
BE32_MAX = 0xFFFFFFFF


def _no_error_form(error: BaseException) -> Optional[bytes]:
    return None


def _no_rejection_form(why: str) -> Optional[bytes]:
    return None


@dataclass(frozen=True)
class ProtocolSpec:
    """What the server needs to know of a protocol's wire.

    name:        what --protocol calls it.
    framing:     the engine framing ("raw", "be32", "varint", "line").
    error_reply: bytes to send a peer that broke the framing before closing
                 its connection, or None where the protocol has no error form
                 (raw echo and length-prefixed frames: the peer sees the
                 connection close after every complete message before the
                 bad one has been answered).
    handler_error: bytes to send when the handler (or session) failed on
                 a message (it raised, or returned something that is not
                 bytes-like), before that connection is closed; None where
                 the protocol has no error form (the connection is reset).
    rejection:   bytes to send a connection turned away ("busy": over the
                 connection limit and the backlog; "queue_timeout": waited
                 in the backlog too long; "shutdown": the server is
                 draining), or None: the peer sees its connection accepted
                 and then closed without a byte (echo, frame).
    probe:       a keep-alive probe message (framed like any message) sent
                 to a quiet peer after the keep-alive interval, or None
                 where the protocol has none; any byte from the peer answers
                 it. probe_reply is the message a peer answers with; the
                 server drops it instead of handing it to the handler.
    session_probe: the sessions may probe in words of their own
                 (:meth:`Session.keepalive_probe`, which wins over probe):
                 a connection of ``--protocol http`` that became HTTP/2.
    goodbye:     raw bytes written to each connection when a graceful drain
                 begins (HTTP/2 GOAWAY, the wire protocol's GOAWAY), or
                 None. A session whose goodbye depends on its state (the
                 last stream id) overrides :meth:`Session.drain` instead.
    """

    name: str
    framing: str
    error_reply: Callable[[ProtocolError], Optional[bytes]] = _no_error_form
    rejection: Callable[[str], Optional[bytes]] = _no_rejection_form
    probe: Optional[bytes] = None
    probe_reply: Optional[bytes] = None
    goodbye: Optional[bytes] = None
    handler_error: Callable[[BaseException], Optional[bytes]] = _no_error_form
    session_probe: bool = False

    def conn_spec(self, *, max_frame: int, max_line: int, bare_lf: bool,
                  frame_header: str, echo: bool,
                  tcp_keepalive: Optional[tuple[int, int, int]] = None) -> ConnSpec:
        """The engine ConnSpec for this protocol with the given limits."""
        framing = self.framing
        if frame_header not in ("be32", "varint"):
            raise ValueError(f"frame_header must be 'be32' or 'varint', not {frame_header!r}")
        if framing == "be32" and frame_header == "varint":
            framing = "varint"
        if framing == "be32" and max_frame > BE32_MAX:
            raise ValueError(f"max_frame {max_frame} does not fit a 4-byte length header "
                             f"(at most {BE32_MAX}); use frame_header='varint'")
        max_size = max_line if framing == "line" else max_frame
        return ConnSpec(framing=framing, max_size=max_size, bare_lf=bare_lf, echo=echo,
                        tcp_keepalive=tcp_keepalive)


class Session:
    """One connection's protocol state; the server makes one per accepted
    connection (the unit's ``session`` factory) and feeds it.

    The server calls, in order: :meth:`opened` once the connection is
    served (after a wait in the backlog, if any), :meth:`feed` for each
    message in arrival order, :meth:`drain` when a graceful shutdown
    begins, :meth:`closed` once the connection is gone. ``feed`` returns the
    reply to send as one message (None: nothing); a session may also send
    at any time, from any thread, through ``self.conn.send``/``write``.

    If ``is_async``, ``feed`` returns an awaitable, run on the server's
    asyncio loop: by default strictly one at a time per connection, in
    order; with ``multiplexed``, every message's awaitable runs at once
    (HTTP/2 streams, wire v2 request ids), each reply sent as it finishes,
    so the session puts its own ids in its replies.

    An exception from any of these methods, or a reply that is not
    bytes-like, closes that connection (with the protocol's
    ``handler_error`` form), is logged and counted as ``handler_errors``;
    every other connection goes on being served.
    """

    #: feed() returns awaitables (run on the server's asyncio loop).
    is_async: bool = False
    #: Requests of one connection may run concurrently (needs is_async).
    multiplexed: bool = False

    def __init__(self, conn: "Connection") -> None:
        self.conn = conn

    def feed(self, data: bytes) -> Union[Reply, Awaitable[Reply]]:
        """One message (raw framing: the bytes of one read): the reply."""
        raise NotImplementedError

    def keepalive_probe(self) -> Optional[bytes]:
        """This connection's keep-alive probe where its protocol's spec has
        ``session_probe`` (None: the spec's probe, if any)."""
        return None

    def direct(self) -> tuple[DirectHandler, object]:
        """``(fn, arg)`` such that ``fn(arg, data)`` does what ``feed(data)``
        does, for the engine to call per message itself (the fast path,
        Engine.serve_directly). Default: the unbound ``feed`` and self."""
        return cast(DirectHandler, type(self).feed), self

    def opened(self) -> None:
        """The connection is now served."""

    def refuse(self, why: str) -> bool:
        """The server turns this connection away (``why`` as for the spec's
        rejection: busy, queue_timeout, shutdown). A session that answers
        in its protocol's own words itself (gRPC: RESOURCE_EXHAUSTED for
        each call) returns True: the server then calls :meth:`opened` and
        feeds it, and the session closes the connection soon (bounded).
        Default False: the spec's rejection bytes, then the close."""
        return False

    def drain(self) -> Optional[bytes]:
        """A graceful drain began: stop taking new work and return raw bytes
        to write first (default: the spec's ``goodbye``). Once :meth:`idle`,
        the server closes the connection."""
        return self.conn.protocol.goodbye

    def idle(self) -> bool:
        """Nothing is half done that the server cannot see (it already
        waits for replies in flight). A session that holds work of its
        own (a request body still arriving, a blocked pop) says False and
        calls ``conn.idle()`` once it is done."""
        return True

    def closed(self) -> None:
        """The connection is gone; sends are dropped from now on."""


def _is_coroutine_function(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None))


class HandlerSession(Session):
    """The session of the message protocols: a user's handler,
    ``handler(conn, message) -> bytes | None`` (or an ``async def``)."""

    def __init__(self, conn: "Connection", handler: Callable[..., Any]) -> None:
        super().__init__(conn)
        self.handler = handler
        self.is_async = _is_coroutine_function(handler)

    def feed(self, data: bytes) -> Union[Reply, Awaitable[Reply]]:
        return cast(Union[Reply, Awaitable[Reply]], self.handler(self.conn, data))

    def direct(self) -> tuple[DirectHandler, object]:
        return self.handler, self.conn


def handler_session(conn: "Connection", handler: Any) -> Session:
    """The session factory of the message protocols (echo, frame, line)."""
    if handler is None:
        raise ValueError("a handler is needed (or echo=True in the unit)")
    return HandlerSession(conn, handler)


#: (connection, the handler given to listen()) -> its Session.
SessionFactory = Callable[["Connection", Any], Session]


@dataclass(frozen=True)
class ProtocolUnit:
    """A protocol as a registered unit.

    spec:      its :class:`ProtocolSpec`.
    help:      one line for ``--protocol``'s help.
    session:   the session factory, ``session(conn, handler)``; ``handler``
               is what was given to ``Server.listen`` (a function for the
               message protocols, None for resp).
    echo:      without a handler, the engine echoes every message itself.
    options:   its command-line options.
    takes_handler: ``--handler MODULE:FUNCTION`` applies to it.
    make_server: ``python -m fastnet.serve``'s way to build the server:
               ``make_server(values, server_options)`` where values are this
               unit's options by dest and server_options the common ones
               (engine, max_connections, ...; idle_timeout only if given).
               Default: a plain Server, the values passed as keywords.
    server_class: the Server subclass that serves it (its sessions need
               what that class holds, as resp's need RespServer's keyspace),
               or None for any Server.
    needs_asyncio: ``needs_asyncio(handler)``: whether sessions made with
               this handler are ``is_async`` (``Server.run`` then runs an
               asyncio loop). Default: the handler is a coroutine function.
    check:     ``check(values)``: a complaint about a combination of this
               unit's option values that means nothing, in flag terms, or
               None.
    """

    spec: ProtocolSpec
    help: str = ""
    session: SessionFactory = handler_session
    echo: bool = True
    options: tuple[Option, ...] = ()
    takes_handler: bool = True
    make_server: Optional[Callable[[Mapping[str, Any], dict[str, Any]], "Server"]] = None
    server_class: Optional[type] = None
    needs_asyncio: Callable[[Any], bool] = field(default=lambda handler: _is_coroutine_function(handler))
    check: Callable[[Mapping[str, Any]], Optional[str]] = field(
        default=lambda values: None)

    @property
    def name(self) -> str:
        """The protocol's name (its spec's)."""
        return self.spec.name

    def build_server(self, values: Mapping[str, Any], server_options: dict[str, Any]) -> "Server":
        """The server ``python -m fastnet.serve`` runs for this unit."""
        if self.make_server is not None:
            return self.make_server(values, server_options)
        from .server import Server
        return Server(**server_options, **values)


#: name -> unit. Use :func:`register` and :func:`get`; :func:`units` lists them.
PROTOCOLS: dict[str, ProtocolUnit] = {}

#: Packages that register built-in units when imported (loaded on first
#: lookup, so importing fastnet.server stays light and free of cycles).
BUILTIN_PACKAGES = ("fastnet.resp", "fastnet.http", "fastnet.wire", "fastnet.h2", "fastnet.grpc")
_loaded = False


def register(unit: ProtocolUnit) -> ProtocolUnit:
    """Add a protocol unit (replacing one of the same name) and return it."""
    PROTOCOLS[unit.name] = unit
    return unit


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for package in BUILTIN_PACKAGES:
            importlib.import_module(package)


def units() -> dict[str, ProtocolUnit]:
    """Every registered unit by name (the built-in packages loaded)."""
    _load_builtins()
    return dict(PROTOCOLS)


def get(protocol: Union[str, ProtocolUnit, ProtocolSpec]) -> ProtocolUnit:
    """The unit for a name (or the unit itself; a bare ProtocolSpec becomes
    a message protocol's unit). ValueError names the choices."""
    if isinstance(protocol, ProtocolUnit):
        return protocol
    if isinstance(protocol, ProtocolSpec):
        return ProtocolUnit(protocol)
    unit = PROTOCOLS.get(protocol)
    if unit is None:
        _load_builtins()
        unit = PROTOCOLS.get(protocol)
    if unit is None:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {sorted(PROTOCOLS)}")
    return unit


# -- the message protocols ------------------------------------------------

def _line_error(error: BaseException) -> Optional[bytes]:
    return b"-ERR Protocol error: " + str(error).encode() + b"\r\n"


def _line_handler_error(error: BaseException) -> Optional[bytes]:
    return b"-ERR internal error\r\n"


#: Why a connection was turned away, as the line protocol says it.
_LINE_REJECTIONS = {
    "busy": b"-ERR server busy\r\n",
    "queue_timeout": b"-ERR server busy\r\n",
    "shutdown": b"-ERR server shutting down\r\n",
}


def _line_rejection(why: str) -> Optional[bytes]:
    return _LINE_REJECTIONS[why]


MAX_FRAME = Option("--max-frame", type=size, default=limits.DEFAULT_MAX_FRAME,
                   metavar="SIZE", help="largest frame payload accepted, e.g. 1M (default: 16M)")
FRAME_HEADER = Option("--frame-header", choices=("be32", "varint"), default="be32",
                      help="frame length header (default: %(default)s)")
MAX_LINE = Option("--max-line", type=size, default=limits.DEFAULT_MAX_LINE, metavar="SIZE",
                  help="longest line accepted; resp: longest inline command (default: 64K)")
BARE_LF = Option("--bare-lf", action="store_true",
                 help="accept a bare \\n as the line end too")


def _check_frame(values: Mapping[str, Any]) -> Optional[str]:
    if values["frame_header"] == "be32" and values["max_frame"] > BE32_MAX:
        return (f"--max-frame {values['max_frame']} is more than a 4-byte length header can "
                f"declare (at most {BE32_MAX} bytes); use --frame-header varint or a "
                "smaller --max-frame")
    return None


ECHO = register(ProtocolUnit(
    ProtocolSpec("echo", "raw"),
    help="raw bytes back (or each read to the handler)"))
FRAME = register(ProtocolUnit(
    ProtocolSpec("frame", "be32"),
    help="length-prefixed messages", options=(MAX_FRAME, FRAME_HEADER), check=_check_frame))
LINE = register(ProtocolUnit(
    ProtocolSpec("line", "line", _line_error, _line_rejection,
                 handler_error=_line_handler_error),
    help="\\r\\n-terminated lines, errors as -ERR", options=(MAX_LINE, BARE_LF)))
