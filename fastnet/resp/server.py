"""RespServer: the Redis protocol served over fastnet's engines.

The engine reads raw bytes (no framing of its own); each connection keeps
a RespRequestDecoder (the C twin unless told otherwise) and a Session. One
read is one batch: feed, decode every complete command (one crossing into
C for the batch, see fastnet.codec.resp.c), run each against the shared
Store, and send the replies of the whole batch as one write. Pipelined
commands therefore cost one handler call, one parse call and one send per
read, not per command.

Like redis-server:

* a protocol error is answered ``-ERR Protocol error: ...`` after the
  replies of the commands before it, and only that connection is closed;
* QUIT is answered ``+OK`` and the connection closes once it is written;
* clients over ``max_connections`` (and the server's backlog) are told
  ``-ERR max number of clients reached``;
* ``idle_timeout`` is Redis's ``timeout``: None (the default, Redis's 0)
  never closes an idle client;
* keys with a deadline expire lazily on access and by a bounded active
  step on a timer (``ACTIVE_EXPIRE_PERIOD``), never a full scan.

Commands run on the engine's thread one at a time (the threaded engine
takes one lock per batch), so every command is atomic, as in Redis.
"""
from __future__ import annotations

import inspect
import ipaddress
import logging
import math
import os
import platform
import sys
import threading
import time
from collections import deque
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Union, cast

from .. import __version__, limits
from ..codec import resp as _resp_codec
from ..codec.resp import encode_error, encode_reply
from ..engine.base import Listener
from ..errors import ClientQueryBufferLimit, ProtocolError, RespProtocolError
from ..server import Connection, ProtocolSpec, ProtocolUnit, Server, get, register
from ..server import Session as ServerSession
from ..server.options import Option, size
from ..server.protocols import MAX_LINE
from ..server.server import Hook
from .commands import (COMMANDS, REDIS_VERSION, WRONGTYPE, Command, Handler, InfoSection, Session,
                       call, intercept, resolve)
from .admin import (cpu_section, format_output_limits, memory_section, parse_bounded,
                    parse_output_limits, parse_yes_no, replication_section)
from .blocking import serve_ready, time_out, unblock
from .outbox import Outbox
from .pubsub import unsubscribe_all
from .shared import DEFAULT_DATABASES, Shared
from .store import Store, WrongType

__all__ = ["RESP", "RESP_PROTOCOL", "RespServer", "RespSession"]

log = logging.getLogger("fastnet.resp")

#: Seconds between active expiry steps, and the keys one step may visit
#: (it repeats while more than a quarter of those it visited were due, for
#: at most ACTIVE_EXPIRE_MAX_SECONDS): Redis's hz 10 and 20 keys per loop,
#: in bigger steps since each costs a Python call.
ACTIVE_EXPIRE_PERIOD = 0.1
ACTIVE_EXPIRE_BUDGET = 200
ACTIVE_EXPIRE_MAX_SECONDS = 0.002

#: Spellings of command names the fast path remembers (b"GET", b"get", ...).
FAST_SPELLINGS = 256
#: Commands that never take the fast path: QUIT ends the batch, INFO reads
#: the command counter the fast path updates once per batch, MULTI makes
#: the rest of the batch go through _execute() (which queues).
_SLOW_PATH = frozenset((b"quit", b"info", b"multi", b"blpop", b"brpop", b"blmove", b"brpoplpush"))

_MAX_CLIENTS = b"-ERR max number of clients reached\r\n"
_REJECTIONS = {
    "busy": _MAX_CLIENTS,
    "queue_timeout": _MAX_CLIENTS,
    "shutdown": b"-ERR server is shutting down\r\n",
}


#: What Redis 7.0 tells a client refused by protected mode (its text, as clients show it).
PROTECTED_MODE_DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted from "
    b"the loopback interface. If you want to connect from external computers to Redis you may "
    b"adopt one of the following solutions: 1) Just disable protected mode sending the command "
    b"'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
    b"the same host the server is running, however MAKE SURE Redis is not publicly accessible "
    b"from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    b"Alternatively you can just disable the protected mode by editing the Redis configuration "
    b"file, and setting the protected mode option to 'no', and then restarting the server. 3) "
    b"If you started the server manually just for testing, restart it with the "
    b"'--protected-mode no' option. 4) Setup a an authentication password for the default "
    b"user. NOTE: You only need to do one of the above things in order for the server to start "
    b"accepting connections from the outside.\r\n")


def _is_loopback(host: str) -> bool:
    """A peer on the loopback interface (or a Unix socket), as Redis's connIsLocal."""
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return not host  # a Unix socket has no address
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def _resp_error(error: ProtocolError) -> Optional[bytes]:
    if isinstance(error, ClientQueryBufferLimit):
        return None  # Redis closes such a client without a word
    # latin-1: Redis quotes any byte as one character ("expected '$', got 'x'").
    return b"-ERR " + str(error).encode("latin-1", "replace") + b"\r\n"


def _resp_rejection(why: str) -> Optional[bytes]:
    return _REJECTIONS[why]


def _resp_handler_error(error: BaseException) -> Optional[bytes]:
    return b"-ERR internal error\r\n"


#: The Redis protocol's wire: raw reads, Redis's error forms.
RESP_PROTOCOL = ProtocolSpec("resp", "raw", _resp_error, _resp_rejection,
                             handler_error=_resp_handler_error)


class RespSession(ServerSession):
    """One client of a RespServer: its request decoder and its command
    Session. One read is one batch (see the module's docstring)."""

    def __init__(self, conn: Connection, host: "RespServer") -> None:
        super().__init__(conn)
        self.host = host
        self.decoder = host._decoder_class(**host._decoder_limits)
        self.client = Session(host.store, host=host, conn=conn, shared=host.shared,
                              authenticated=host.shared.requirepass is None)
        self._fast = host._fast  # the server's dict itself: command() clears it in place
        #: Commands received while blocked, run once it is answered.
        self.pending: deque[list[bytes]] = deque()
        self.pending_bytes = 0
        self.client.on_unblock = self._unblocked

    def opened(self) -> None:
        """The client is served: CLIENT LIST sees it. In protected mode
        (no password) a client from outside the loopback interface is
        told so in Redis's words and closed, as Redis does."""
        if self.host.protected_mode and self.client.shared.requirepass is None \
                and not _is_loopback(self.conn.peer[0]):
            self.client.closing = True
            self.conn.write(PROTECTED_MODE_DENIED)
            self.conn.close()
            return
        self.client.shared.clients[self.client.id] = self.client

    def feed(self, data: bytes) -> Optional[bytes]:
        """One read of one connection: run every complete command in it and
        return the replies as one write."""
        session = self.client
        if session.closing:
            return None  # after QUIT: what follows is not read
        try:
            commands = self.decoder.feed_commands(data)
        except RespProtocolError as error:
            self._fail(b"", error)
            return None
        if session.blocked is not None or self.pending:
            # Run once it is answered. Reading goes on (so a client that
            # leaves is seen at once, as Redis sees it), bounded as Redis
            # bounds a blocked client's query buffer.
            self.pending.extend(commands)
            self.pending_bytes += len(data)
            if self.pending_bytes > self.host.client_query_buffer_limit:
                log.warning("closing blocked client id=%d: %d bytes sent while blocked "
                            "(client-query-buffer-limit)", session.id, self.pending_bytes)
                self.conn.abort()
            return None
        if not commands:
            return None  # part of a command: nothing to answer yet
        return self._finish(self._run(commands))

    def _run(self, commands: list[list[bytes]]) -> bytes:
        """Run commands in order and return their replies; a command that
        blocks keeps the rest in ``pending`` (see fastnet.resp.blocking)."""
        # The fast path: a command spelled as already seen (no lower(), no
        # table entry to unpack) with a count its arity allows. The rest go
        # through _execute(): rejections, containers, and the commands that
        # end a batch (QUIT), read its counters (INFO) or may block. A
        # command counts once it ran, as in Redis, so an INFO sees those
        # before it. After each, clients blocked on keys it created are served.
        session = self.client
        fast = self._fast
        host = self.host
        ready = host.shared.ready
        replies: list[bytes] = []
        append = replies.append
        ran = 0
        queuing = session.gated  # inside MULTI, subscribed, before AUTH: no fast path
        session.batch = replies
        for index, args in enumerate(commands):
            entry = None if queuing else fast.get(args[0])
            if entry is not None and entry[1] <= len(args) <= entry[2]:
                try:
                    append(entry[0](session, args))
                except WrongType:
                    append(WRONGTYPE)
                ran += 1
            else:
                host.commands_processed += ran
                ran = 0
                append(host._execute(session, args))
                queuing = session.gated
                if session.closing:
                    break  # QUIT: Redis runs nothing after it
                if session.blocked is not None:
                    self.pending.extend(commands[index + 1:])
                    break
            if ready:
                serve_ready(ready)
        session.batch = None
        if entry is not None:  # the last one took the fast path (else _execute named it)
            session.last_command = args[0].lower()
        session.last_active = time.monotonic()
        host.commands_processed += ran
        return replies[0] if len(replies) == 1 else b"".join(replies)

    def _finish(self, reply: bytes) -> Optional[bytes]:
        """After a batch: close after QUIT or a protocol error the decoder
        held back; else the reply to send."""
        if self.client.closing:
            self._write(reply)
            self._close()  # once the replies are written
            return None
        if self.client.blocked is None and not self.pending:
            pending = self.decoder.error_exception()
            if pending is not None:
                self._fail(reply, pending)
                return None
        return reply

    def _write(self, data: bytes) -> None:
        """Send data outside a batch's reply (the Outbox's, once there is one)."""
        outbox = self.client.outbox
        if outbox is not None:
            outbox.write(data)
        else:
            self.conn.write(data)

    def _close(self) -> None:
        """Close once everything sent so far is written."""
        outbox = self.client.outbox
        if outbox is not None:
            outbox.then(self.conn.close)
        else:
            self.conn.close()

    def _fail(self, reply: bytes, error: ProtocolError) -> None:
        """Send reply, then the protocol error's, and close."""
        outbox = self.client.outbox
        if outbox is not None:
            outbox.write(reply)
            outbox.then(lambda: self.conn.protocol_error(error))
        else:
            if reply:
                self.conn.write(reply)
            self.conn.protocol_error(error)

    def _unblocked(self, reply: bytes) -> None:
        """The blocked command was answered (an element, or its timeout):
        send that, then run what the client sent meanwhile."""
        self._write(reply)
        if self.pending:
            self.host.later(0, self._resume)
        else:
            self._done_waiting()

    def _resume(self) -> None:
        if self.conn.closed or self.client.blocked is not None:
            return
        commands = list(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        reply = self._finish(self._run(commands))
        if reply:
            self._write(reply)
        if self.client.blocked is None and not self.pending:
            self._done_waiting()

    def _done_waiting(self) -> None:
        if self.host.draining or self.conn.eof:
            if self.client.outbox is not None:  # once what it was sent is written
                self.client.outbox.then(self.conn.idle)
            else:
                self.conn.idle()  # the drain closes it now

    def idle(self) -> bool:
        """Not while blocked, nor with commands received while it was;
        but a blocked client whose peer left is done with (Redis drops it)."""
        return (self.client.blocked is None and not self.pending) or self.conn.eof

    def drain(self) -> Optional[bytes]:
        """A graceful drain began: a blocked client waits on (see
        RespServer's docstring and _release_blocked)."""
        self.host.draining = True
        if self.client.blocked is not None:
            self.host.later(0, self.host._release_blocked)
        return super().drain()

    def closed(self) -> None:
        """The client is gone: its WATCHes, subscriptions and waits go with it."""
        if self.client.outbox is not None:
            self.client.outbox.stop()
        self.client.watcher.unwatch()
        unsubscribe_all(self.client)
        unblock(self.client)
        self.pending.clear()
        self.pending_bytes = 0
        self.client.shared.clients.pop(self.client.id, None)
        if self.host.draining:
            self.host._release_blocked()
        super().closed()


class _LockedRespSession(RespSession):
    """The threaded engine calls in from every connection's thread: each
    batch takes the server's lock, so every command stays atomic. A batch
    that leaves its client open to writes from other clients' commands
    (subscribed, blocked) gives it an Outbox first: those writes are made
    under the lock, and a synchronous one to a client that does not read
    would hold the lock, and the server, until it read."""

    def feed(self, data: bytes) -> Optional[bytes]:
        with self.host._exec_lock:  # type: ignore[union-attr]
            reply = super().feed(data)
            client = self.client
            if client.outbox is None and not client.closing and (
                    client.channels or client.patterns or client.blocked is not None or self.pending):
                client.outbox = Outbox(self.conn)
            if client.outbox is not None and reply:
                client.outbox.write(reply)  # after what others queued before it
                return None
            return reply

    def closed(self) -> None:
        with self.host._exec_lock:  # type: ignore[union-attr]
            super().closed()


def _resp_session(conn: Connection, handler: Any) -> ServerSession:
    host = cast(RespServer, conn.server)  # RESP's server_class
    return (_LockedRespSession if host._exec_lock is not None else RespSession)(conn, host)


class RespServer(Server):
    """A Redis-protocol server over an in-memory keyspace.

    >>> server = RespServer(engine="c")
    >>> @server.command("HELLOWORLD", arity=2)
    ... def helloworld(ctx, name):
    ...     return b"Hello, " + name
    >>> server.listen("127.0.0.1", 6379)
    >>> server.run()

    store:             database 0 (a new empty Store by default), shared by
                       every client.
    codec:             the RESP parser twin, "c" or "python" (default: the
                       active one, see fastnet.codec).
    max_bulk_len:      longest bulk argument a client may declare (Redis's
                       proto-max-bulk-len, default 512 MiB).
    max_multibulk_len: most arguments a command may declare.
    max_inline_len:    longest inline command line (64 KiB, as Redis).
    client_query_buffer_limit: most memory one unfinished command may hold
                       (1 GiB, as Redis's client-query-buffer-limit); past it
                       the client is closed without a reply, logged and
                       counted as closed_query_buffer_limit.
    idle_timeout:      Redis's ``timeout``: close a client silent this many
                       seconds; None (default) never does.
    databases:         how many databases (Redis's ``databases``, default 16).
    requirepass:       the ``default`` user's password: clients must AUTH (or
                       HELLO ... AUTH) first (None: no password, as Redis).
    protected_mode:    Redis's protected-mode (default on): without a
                       password, clients not connecting from the loopback
                       interface get Redis's DENIED error and are closed.

    Blocked clients (BLPOP ...) are not idle: a graceful drain waits on
    them while other connections finish, then, once only blocked clients
    are left, answers each as its timeout would (a null array) and closes it.

    Every other keyword is Server's (engine, max_connections, backlog,
    queue_timeout, drain_timeout, tcp_keepalive, stats_interval, ...).
    """

    def __init__(self, *, store: Optional[Store] = None, codec: Optional[str] = None,
                 max_bulk_len: int = limits.DEFAULT_RESP_MAX_BULK_LEN,
                 max_multibulk_len: int = limits.DEFAULT_RESP_MAX_MULTIBULK_LEN,
                 max_inline_len: int = limits.DEFAULT_RESP_MAX_INLINE_LEN,
                 client_query_buffer_limit: int = limits.DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
                 idle_timeout: Optional[float] = None, databases: int = DEFAULT_DATABASES,
                 requirepass: Union[str, bytes, None] = None, protected_mode: bool = True,
                 **server_options: Any) -> None:
        super().__init__(idle_timeout=idle_timeout, **server_options)
        if codec is not None and codec not in _resp_codec.impls:
            raise ValueError(f"codec {codec!r} is not available (have {sorted(_resp_codec.impls)})")
        self.codec = codec or _resp_codec.backend
        self._decoder_class = _resp_codec.impls[self.codec].RespRequestDecoder
        # A decoder checks its limits when built: fail here, not per client.
        self._decoder_limits = dict(max_bulk_len=max_bulk_len,
                                    max_multibulk_len=max_multibulk_len,
                                    max_inline_len=max_inline_len,
                                    client_query_buffer_limit=client_query_buffer_limit)
        self._decoder_class(**self._decoder_limits)
        self.max_bulk_len = max_bulk_len
        self.client_query_buffer_limit = client_query_buffer_limit
        #: Every client's shared state: the databases (``databases`` of
        #: them, SELECT's 0 to databases-1), channels, blocked clients.
        self.shared = Shared.of(databases, store)
        #: Database 0.
        self.store = self.shared.databases[0]
        self._commands: dict[bytes, Command] = dict(COMMANDS)
        #: The command table, read-only: name (lower case) -> Command. It
        #: starts as fastnet.resp.COMMANDS; :meth:`command` adds to it.
        self.commands: Mapping[bytes, Command] = MappingProxyType(self._commands)
        # Spellings seen (b"GET", b"get") -> (handler, least, most arguments).
        self._fast: dict[bytes, tuple[Handler, int, int]] = {}
        #: Commands run since the server started (INFO's total_commands_processed).
        self.commands_processed = 0
        self._started = time.monotonic()
        # The threaded engine calls in from every connection's thread.
        self._exec_lock = threading.Lock() if self.engine.callbacks_from_many_threads else None
        self._expiry_armed = False
        self._replid = os.urandom(20).hex()
        #: A graceful drain began (blocked clients: see the class docstring).
        self.draining = False
        #: Redis's protected-mode: with no password, refuse clients that do
        #: not connect from the loopback interface.
        self.protected_mode = protected_mode
        if requirepass is not None:
            self.shared.requirepass = requirepass.encode() if isinstance(requirepass, str) else requirepass

    # -- set-up ----------------------------------------------------------

    def listen(self, host: str = "127.0.0.1", port: int = 6379, *,  # type: ignore[override]
               protocol: Union[str, ProtocolUnit, ProtocolSpec] = "resp",
               handler: None = None, on_connect: Optional[Hook] = None,
               on_close: Optional[Hook] = None,
               backlog: int = limits.DEFAULT_LISTEN_BACKLOG) -> Listener:
        """Serve the Redis protocol on host:port (0 picks a free port: see
        the returned Listener's ``port``). ``backlog`` is listen(2)'s;
        on_connect and on_close are Server.listen's hooks. Commands are
        added with :meth:`command`, not a handler."""
        if get(protocol) is not RESP or handler is not None:
            raise ValueError("a RespServer serves the resp protocol, with commands "
                             "registered by RespServer.command (no handler)")
        listener = super().listen(host, port, protocol=RESP, on_connect=on_connect,
                                  on_close=on_close, backlog=backlog)
        if not self._expiry_armed:
            self._expiry_armed = True
            self.engine.call_later(ACTIVE_EXPIRE_PERIOD, self._expire_tick)
        return listener

    def command(self, name: str, arity: int, *, flags: tuple[str, ...] = (),
                first_key: int = 0, last_key: int = 0, step: int = 0
                ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a command, as a decorator::

            @server.command("HELLOWORLD", arity=2)
            def helloworld(ctx: Session, name: bytes) -> bytes:
                return b"Hello, " + name

        The function gets the client's :class:`Session` (its ``store``,
        ``protocol``, ``name``, ``id`` and ``conn``) and the command's
        arguments as bytes, one parameter each. ``arity`` is Redis's: it
        counts the name, so 2 is one argument; -2 is at least one (the
        function then takes ``*args``). Clients sending another count get
        Redis's "wrong number of arguments" error without the function
        being called. Names are case-insensitive; a built-in command of the
        same name is replaced.

        The return value is sent in its RESP type (fastnet.codec.encode_reply:
        bytes/str -> bulk, int -> integer, None -> null, list -> array,
        dict -> map, RespError -> error, SimpleString -> ``+status``). An
        exception is logged and the client gets ``-ERR`` naming the command
        and the exception type; the connection stays open.

        Commands run on the engine's thread and block it while they run, so
        they must be plain functions (coroutine functions are refused with
        TypeError) and quick, as Redis commands are. flags, first_key,
        last_key and step are what COMMAND INFO reports.
        """
        key = name.lower().encode()
        if not key or any(byte <= 0x20 or byte >= 0x7F for byte in key):
            raise ValueError(f"command name must be printable ASCII without spaces, not {name!r}")
        if arity == 0:
            raise ValueError("arity counts the command name: it is never 0")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if inspect.iscoroutinefunction(fn):
                raise TypeError(f"{name}: RESP commands run on the engine thread; "
                                "a coroutine function cannot be one")

            def run(session: Session, args: list[bytes]) -> bytes:
                try:
                    return encode_reply(fn(session, *args[1:]), session.protocol)
                except WrongType:
                    raise  # call() answers WRONGTYPE
                except Exception as exc:
                    log.exception("command %s failed", name)
                    return encode_error(b"ERR command '%s' failed: %s"
                                        % (key, type(exc).__name__.encode()))

            self._commands[key] = Command(run, arity, tuple(flags), first_key, last_key, step)
            self._fast.clear()  # a spelling may now mean the new command
            return fn
        return register

    # -- serving (RespSession.feed runs the batch) ------------------------

    def _execute(self, session: Session, args: list[bytes]) -> bytes:
        """execute(), learning the spelling of a plain command for the fast
        path (at most FAST_SPELLINGS spellings: a client cannot grow it)."""
        handler = resolve(args, self._commands)
        refused = intercept(session, args, handler)
        if refused is not None:
            return refused
        assert not isinstance(handler, bytes)
        name = args[0].lower()
        entry = self._commands[name]
        if (entry.subcommands is None and name not in _SLOW_PATH
                and len(self._fast) < FAST_SPELLINGS):
            low, high = (entry.arity, entry.arity) if entry.arity >= 0 else (-entry.arity, sys.maxsize)
            self._fast[args[0]] = (handler, low, high)
        session.last_command = name if entry.subcommands is None or len(args) < 2 \
            else name + b"|" + args[1].lower()
        reply = call(handler, session, args)
        self.commands_processed += 1
        return reply

    def later(self, delay: float, callback: Callable[[], None]) -> Any:
        """callback after delay seconds on the engine's thread, under the
        command lock on the threaded engine (CommandHost.later)."""
        lock = self._exec_lock
        if lock is None:
            return self.engine.call_later(delay, callback)

        def locked() -> None:
            with lock:
                callback()
        return self.engine.call_later(delay, locked)

    def _release_blocked(self) -> None:
        """During a drain, once every client left is blocked (nothing can
        push to them any more), answer each as its timeout would and let
        the drain close it."""
        clients = list(self.shared.clients.values())
        if any(c.blocked is None for c in clients):
            return
        for client in clients:
            time_out(client)

    # -- what INFO, CONFIG GET and COMMAND report (CommandHost) ------------

    def config(self) -> dict[bytes, bytes]:
        """CONFIG GET's parameters: this server's settings under Redis's names."""
        listener = next(iter(self.listeners), None)
        tcp_keepalive = self.tcp_keepalive[0] if self.tcp_keepalive else 0
        values: dict[str, object] = {
            "bind": listener.host if listener else "",
            "port": listener.port if listener else 0,
            "maxclients": self.max_connections,
            # Redis's timeout is whole seconds and 0 means never: round a
            # fraction up, so 0.5 is not reported as "never".
            "timeout": math.ceil(self.idle_timeout or 0),
            "tcp-keepalive": tcp_keepalive,
            "proto-max-bulk-len": self.max_bulk_len,
            "client-query-buffer-limit": self.client_query_buffer_limit,
            "databases": len(self.shared.databases),
            "save": "",
            "appendonly": "no",
            "maxmemory": 0,
            "maxmemory-policy": "noeviction",
            "hz": round(1 / ACTIVE_EXPIRE_PERIOD),
            "client-output-buffer-limit": format_output_limits(self.shared.output_limits).decode(),
            "protected-mode": "yes" if self.protected_mode else "no",
            "requirepass": (self.shared.requirepass or b"").decode("latin-1"),
        }
        return {k.encode(): str(v).encode("latin-1") for k, v in values.items()}

    def settable(self) -> dict[bytes, Callable[[bytes], Any]]:
        """CONFIG SET's parameters and their parsers (Redis's bounds and texts)."""
        return {b"maxclients": parse_bounded(1, 4294967295),
                b"timeout": parse_bounded(0, 2147483647),
                b"client-output-buffer-limit": parse_output_limits,
                b"protected-mode": parse_yes_no,
                b"requirepass": lambda value: value}

    def config_set(self, name: bytes, value: Any) -> None:
        """Apply one CONFIG SET value (parsed by :meth:`settable`'s parser)."""
        if name == b"maxclients":
            self.set_limits(max_connections=value)
        elif name == b"timeout":
            self.idle_timeout = value or None
            self.engine.call_soon_threadsafe(lambda: self.engine.set_idle_timeout(self._idle_tick()))
        elif name == b"client-output-buffer-limit":
            self.shared.output_limits.update(value)
        elif name == b"protected-mode":
            self.protected_mode = value
        elif name == b"requirepass":
            self.shared.requirepass = value or None

    def info(self) -> list[InfoSection]:
        """INFO's Server, Clients and Stats sections (fastnet's own counters
        in Stats, prefixed fastnet_)."""
        stats = self.stats()
        uptime = int(time.monotonic() - self._started)
        listener = next(iter(self.listeners), None)
        server: list[tuple[str, object]] = [
            ("redis_version", REDIS_VERSION.decode()),
            ("redis_mode", "standalone"),
            ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
            ("multiplexing_api", "threads" if self.engine.callbacks_from_many_threads else "epoll"),
            ("process_id", os.getpid()),
            ("tcp_port", listener.port if listener else 0),
            ("server_time_usec", time.time_ns() // 1000),
            ("uptime_in_seconds", uptime),
            ("uptime_in_days", uptime // 86400),
            ("hz", round(1 / ACTIVE_EXPIRE_PERIOD)),
            ("executable", sys.executable),
            ("fastnet_version", __version__),
            ("fastnet_engine", self.engine.name),
            ("fastnet_codec", self.codec),
        ]
        clients: list[tuple[str, object]] = [
            ("connected_clients", stats["active"]),
            ("maxclients", self.max_connections),
            ("blocked_clients", sum(c.blocked is not None for c in self.shared.clients.values())),
            ("fastnet_queued_clients", stats["queued"]),
        ]
        rejected = sum(v for k, v in stats.items() if k.startswith("rejected_"))
        shown = {"active", "queued", "accepted", "bytes_in", "bytes_out"}
        counters: list[tuple[str, object]] = [
            ("total_connections_received", stats.get("accepted", 0)),
            ("total_commands_processed", self.commands_processed),
            ("total_net_input_bytes", stats.get("bytes_in", 0)),
            ("total_net_output_bytes", stats.get("bytes_out", 0)),
            ("rejected_connections", rejected),
            ("expired_keys", sum(store.expired for store in self.shared.databases)),
            ("pubsub_channels", len(self.shared.channels)),
            ("pubsub_patterns", len(self.shared.patterns)),
        ]
        counters += [(f"fastnet_{k}", v) for k, v in sorted(stats.items()) if k not in shown]
        return [("Server", server), ("Clients", clients), memory_section(), ("Stats", counters),
                replication_section(self._replid), cpu_section()]

    # -- expiry ------------------------------------------------------------

    def _expire_tick(self) -> None:
        """One active expiry step per database, then re-arm (see ACTIVE_EXPIRE_*)."""
        for store in self.shared.databases:
            if not store.expiring:
                continue
            if self._exec_lock is not None:
                with self._exec_lock:
                    self._expire_some(store)
            else:
                self._expire_some(store)
        self.engine.call_later(ACTIVE_EXPIRE_PERIOD, self._expire_tick)

    @staticmethod
    def _expire_some(store: Store) -> None:
        deadline = time.monotonic() + ACTIVE_EXPIRE_MAX_SECONDS
        while (store.active_expire(store.now(), ACTIVE_EXPIRE_BUDGET) > ACTIVE_EXPIRE_BUDGET // 4
               and time.monotonic() < deadline):
            pass


PROTO_MAX_BULK_LEN = Option(
    "--proto-max-bulk-len", type=size, default=limits.DEFAULT_RESP_MAX_BULK_LEN,
    metavar="SIZE", help="longest bulk argument a client may declare, as Redis's "
    "proto-max-bulk-len (default: 512M)")
MAX_MULTIBULK_LEN = Option(
    "--max-multibulk-len", type=size, default=limits.DEFAULT_RESP_MAX_MULTIBULK_LEN,
    metavar="N", help="most arguments one command may declare (default: %(default)s)")
CLIENT_QUERY_BUFFER_LIMIT = Option(
    "--client-query-buffer-limit", type=size, default=limits.DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
    metavar="SIZE", help="most memory one unfinished command may hold before the client is "
    "closed, as Redis's client-query-buffer-limit (default: 1G)")


DATABASES = Option(
    "--databases", type=int, default=DEFAULT_DATABASES, metavar="N",
    help="how many databases (SELECT 0 to N-1), as Redis's databases (default: %(default)s)")


REQUIREPASS = Option(
    "--requirepass", metavar="PASSWORD", default=None,
    help="the default user's password: clients must AUTH first, as Redis's requirepass")
PROTECTED_MODE = Option(
    "--protected-mode", choices=("yes", "no"), default="yes",
    help="without a password, refuse clients not on the loopback interface, as Redis's "
    "protected-mode (default: %(default)s)")


def _make_resp_server(values: Mapping[str, Any], server_options: dict[str, Any]) -> "RespServer":
    return RespServer(databases=values["databases"], requirepass=values["requirepass"],
                      protected_mode=values["protected_mode"] == "yes",
                      max_bulk_len=values["proto_max_bulk_len"],
                      max_multibulk_len=values["max_multibulk_len"],
                      max_inline_len=values["max_line"],
                      client_query_buffer_limit=values["client_query_buffer_limit"],
                      **server_options)


#: The Redis protocol as a registered unit (``--protocol resp``).
RESP = register(ProtocolUnit(
    RESP_PROTOCOL, help="a Redis-protocol in-memory key-value store (register commands "
    "with RespServer.command; idle timeout off by default, as Redis's timeout 0)",
    session=_resp_session, echo=False, takes_handler=False,
    options=(MAX_LINE, PROTO_MAX_BULK_LEN, MAX_MULTIBULK_LEN, CLIENT_QUERY_BUFFER_LIMIT, DATABASES,
             REQUIREPASS, PROTECTED_MODE),
    make_server=_make_resp_server, server_class=RespServer,
    needs_asyncio=lambda handler: False))
