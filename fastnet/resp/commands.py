"""The command table: one parsed request in, its encoded reply out.

``execute(session, args)`` looks the command up (case-insensitively), checks
its arity with Redis's convention (positive: exactly that many arguments,
name included; negative: at least that many), runs the handler and returns
the reply encoded for the session's protocol (2 or 3). Replies and error
texts are redis-server 7.0's, byte for byte (tests/test_resp_store.py
compares them with a real server). Inside MULTI, execute() queues what
intercept() says to queue; EXEC runs it without anything in between.
Strings, hashes, lists, sets and sorted sets exist; a command meeting a
key of another type answers WRONGTYPE (see call()) before it changes
anything. The tables of fastnet.resp.more (sorted sets, scans and the other
data commands) are merged in below the core table.

Threat model: every argument is untrusted. Handlers never recurse on input
(KEYS/SCAN patterns are matched iteratively), never allocate from a declared
size, and refuse values over the bulk limit as Redis does.
"""
from __future__ import annotations

import itertools
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Optional, Protocol

from ..codec._common import INT64_MAX, INT64_MIN
from ..codec.resp._common import string2ll
from ..codec.resp._encode import (
    encode_array,
    encode_bulk,
    encode_error,
    encode_integer,
    encode_map,
    encode_null,
    encode_reply,
    encode_set,
    encode_verbatim,
)
from ..codec.resp._common import SimpleString
from ..codec.resp import encode_bulk_array as _bulk_array, impls as _codec_impls
from ..limits import DEFAULT_RESP_MAX_BULK_LEN
from .encodings import hash_written, set_shrinking
from .members import Members
from .sortedset import SortedSet
from .store import Store, Watcher, WrongType

if TYPE_CHECKING:
    from .shared import Shared

__all__ = [
    "COMMANDS",
    "REDIS_VERSION",
    "Command",
    "CommandHost",
    "Session",
    "WRONGTYPE",
    "call",
    "compile_glob",
    "discard",
    "execute",
    "glob_match",
    "intercept",
    "resolve",
    "unknown_command",
]

#: What HELLO reports: clients gate features on it, so claim what we mimic.
REDIS_VERSION = b"7.0.15"

_ids = itertools.count(1)


#: One section of INFO: its title ("Server") and its fields, in order.
InfoSection = tuple[str, list[tuple[str, object]]]


class CommandHost(Protocol):
    """What a server tells the commands that describe it (INFO, CONFIG GET,
    COMMAND). Without a host (sans-IO use) they describe the bare table."""

    commands: Mapping[bytes, "Command"]
    #: Commands run (INFO's total_commands_processed); execute() adds to it.
    commands_processed: int

    def config(self) -> dict[bytes, bytes]:
        """Every CONFIG GET parameter (lower case) and its value."""

    def info(self) -> list[InfoSection]:
        """INFO's sections before Keyspace (which the store provides)."""

    def settable(self) -> dict[bytes, Callable[[bytes], Any]]:
        """CONFIG SET's parameters: name -> its parser (the value, or an
        error text as Redis words it)."""

    def config_set(self, name: bytes, value: Any) -> None:
        """Apply a parsed CONFIG SET value."""

    def later(self, delay: float, callback: Callable[[], None]) -> Any:
        """Run callback after delay seconds, as a command runs (atomic
        with them); a handle with ``cancel()``."""


@dataclass(eq=False)  # identity: sessions are dict keys (subscribers, waiters)
class Session:
    """One client's state: its keyspace, protocol (2/3), name and id; the
    server it talks to (``host``) and its connection (``conn``), if any.
    A custom command receives its client's Session as its first argument.

    ``closing`` becomes True after QUIT: the caller writes the reply, then
    closes the connection.
    """

    store: Store
    protocol: int = 2
    name: bytes | None = None
    id: int = field(default_factory=lambda: next(_ids))
    closing: bool = False
    host: Optional[CommandHost] = None
    conn: Any = None
    #: Inside MULTI: the queued (handler, arguments); None outside.
    multi: Optional[list[tuple["Handler", list[bytes]]]] = None
    #: A command was refused while queuing: EXEC answers EXECABORT.
    multi_failed: bool = False
    #: The keys this client WATCHes.
    watcher: Watcher = field(default_factory=Watcher)
    #: What this client shares with the others of its server (databases,
    #: channels, blocked clients): a Shared of its own if not given.
    shared: "Shared" = None  # type: ignore[assignment]
    #: The selected database's number (``store`` is that database).
    db: int = 0
    #: The channels and patterns this client is subscribed to, in order.
    channels: dict[bytes, None] = field(default_factory=dict)
    patterns: dict[bytes, None] = field(default_factory=dict)
    #: False until AUTH when the server has a password.
    authenticated: bool = True
    #: While blocked (BLPOP ...): what it waits for (fastnet.resp.blocking).
    blocked: Any = None
    #: Blocking commands answer at once instead of blocking (inside EXEC).
    deny_blocking: bool = False
    #: Called with the reply once a blocked command is answered (the server's).
    on_unblock: Optional[Callable[[bytes], None]] = None
    #: While the server runs this client's batch: the replies so far, so a
    #: message this client publishes to itself comes after them.
    batch: Optional[list[bytes]] = None
    #: The last command's name (CLIENT LIST's cmd=).
    last_command: bytes = b"NULL"
    #: Since when its output has been over the soft output limit (None: it is not).
    over_soft_since: Optional[float] = None
    #: When it connected and last sent a command (monotonic seconds).
    created: float = field(default_factory=time.monotonic)
    last_active: float = field(default_factory=time.monotonic)
    #: On the threaded engine, once others may write to it: the queue its
    #: output goes through (fastnet.resp.outbox.Outbox), else None.
    outbox: Any = None

    def __post_init__(self) -> None:
        if self.shared is None:
            from .shared import Shared
            self.shared = Shared([self.store])

    @property
    def gated(self) -> bool:
        """Whether commands must go through intercept() (inside MULTI, in
        subscribed mode, before AUTH): never the server's fast path."""
        return (self.multi is not None or not self.authenticated
                or bool(self.channels or self.patterns))

    def push(self, data: bytes) -> None:
        """Send data to this client now (after the replies of its batch
        in progress, if the server is running one)."""
        if self.batch is not None:
            self.batch.append(data)
        elif self.outbox is not None:
            self.outbox.write(data)
        elif self.conn is not None:
            self.conn.write(data)


Handler = Callable[[Session, list[bytes]], bytes]

OK = b"+OK\r\n"
WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
QUEUED = b"+QUEUED\r\n"
SYNTAX_ERROR = b"-ERR syntax error\r\n"
NOT_INTEGER = b"-ERR value is not an integer or out of range\r\n"


def call(handler: "Handler", session: "Session", args: list[bytes]) -> bytes:
    """handler's reply to args; WRONGTYPE if it met a key of another type
    (handlers check types before they change anything)."""
    try:
        return handler(session, args)
    except WrongType:
        return WRONGTYPE


def _cstr(arg: bytes) -> bytes:
    """arg as C's %s prints it: up to its first NUL."""
    return arg.split(b"\0", 1)[0]


def _option(arg: bytes) -> bytes:
    """An option word as Redis's strcasecmp sees it: lower case, cut at NUL."""
    return _cstr(arg).lower()


def _error(text: bytes, trim: bool = False) -> bytes:
    """An error reply; like Redis, newlines in quoted input become spaces
    (an error reply is one line). trim: first strip trailing CR/LF, as
    Redis's addReplyErrorFormat does (its rejectCommandFormat does not)."""
    if trim:
        text = text.rstrip(b"\r\n")
    return encode_error(text.replace(b"\r", b" ").replace(b"\n", b" "))


def _int(arg: bytes) -> int | None:
    """Redis's getLongLongFromObject: strict signed 64-bit decimal."""
    return string2ll(arg)


_NULL3, _NULL2 = encode_null(3), encode_null(2)


_py_bulk_array = _codec_impls["python"].encode_bulk_array
#: From how many elements the C twin's encode_bulk_array is the faster
#: (its fixed cost, an array of lengths and one crossing, is ~1-2 us).
_C_BULK_ARRAY_FROM = 16


def bulk_array(items: list[bytes]) -> bytes:
    """An array of bulk strings (the same bytes in RESP2 and RESP3):
    encode_array's per-item type dispatch is most of LRANGE's cost. Past
    a few elements the codec's C twin writes it, if the extension is built
    (fastnet.codec.resp's encode_bulk_array)."""
    if len(items) < _C_BULK_ARRAY_FROM:
        return _py_bulk_array(items)
    return _bulk_array(items)


def _null(session: Session) -> bytes:
    return _NULL3 if session.protocol == 3 else _NULL2


# --- connection -------------------------------------------------------------


def cmd_ping(session: Session, args: list[bytes]) -> bytes:
    """PING [message]: +PONG, or message as a bulk string."""
    if len(args) > 2:
        return _error(b"ERR wrong number of arguments for 'ping' command")
    if session.protocol == 2 and (session.channels or session.patterns):
        return encode_array([b"pong", args[1] if len(args) == 2 else b""])  # subscribed mode
    return encode_bulk(args[1]) if len(args) == 2 else b"+PONG\r\n"


def cmd_echo(session: Session, args: list[bytes]) -> bytes:
    """ECHO message: message as a bulk string."""
    return encode_bulk(args[1])


def cmd_quit(session: Session, args: list[bytes]) -> bytes:
    """QUIT: +OK, and the session is marked closing."""
    session.closing = True
    return OK


def db_index(arg: bytes) -> int | bytes:
    """A database number as Redis's getIntFromObjectOrReply reads it, or
    the error reply (the number is not checked against the databases)."""
    index = _int(arg)
    if index is None:
        return NOT_INTEGER
    if not -(2**31) <= index < 2**31:
        return _error(b"ERR value is out of range, value must between -2147483648 and 2147483647")
    return index


def database(session: Session, index: int) -> Store | None:
    """Database number index of the session's server, None if out of range."""
    databases = session.shared.databases
    return databases[index] if 0 <= index < len(databases) else None


def cmd_select(session: Session, args: list[bytes]) -> bytes:
    """SELECT index: make database index the session's keyspace."""
    index = db_index(args[1])
    if isinstance(index, bytes):
        return index
    store = database(session, index)
    if store is None:
        return _error(b"ERR DB index is out of range")
    session.store, session.db = store, index
    return OK


def _valid_name(name: bytes) -> bool:
    return all(0x21 <= byte <= 0x7E for byte in name)


def _bad_name() -> bytes:
    return _error(b"ERR Client names cannot contain spaces, newlines or special characters.")


def cmd_hello(session: Session, args: list[bytes]) -> bytes:
    """HELLO [protover [AUTH user pass] [SETNAME name]]: switch protocol, reply Redis's server map."""
    version = 0
    index = 1
    if len(args) >= 2:
        parsed = _int(args[1])
        if parsed is None:
            return _error(b"ERR Protocol version is not an integer or out of range")
        if not 2 <= parsed <= 3:
            return _error(b"NOPROTO unsupported protocol version")
        version, index = parsed, 2
    name = None
    user: bytes | None = None
    password = b""
    while index < len(args):
        option = _option(args[index])
        if option == b"auth" and index + 2 < len(args):
            user, password = args[index + 1], args[index + 2]
            index += 3
        elif option == b"setname" and index + 1 < len(args):
            name = args[index + 1]
            index += 2
        else:
            return _error(b"ERR Syntax error in HELLO option '%s'" % _cstr(args[index]), trim=True)
    # The only user is "default": any password while it has none (Redis's
    # nopass), the server's requirepass otherwise.
    if user is not None:
        if not session.shared.authenticates(user, password):
            return WRONGPASS
        session.authenticated = True
    if not session.authenticated:
        return _error(b"NOAUTH HELLO must be called with the client already authenticated, "
                      b"otherwise the HELLO AUTH <user> <pass> option can be used to "
                      b"authenticate the client and select the RESP protocol version at the "
                      b"same time")
    if name is not None:  # checked after AUTH, as Redis does
        if not _valid_name(name):
            return _bad_name()
        session.name = name or None
    if version:
        session.protocol = version
    reply = {
        b"server": b"redis",
        b"version": REDIS_VERSION,
        b"proto": session.protocol,
        b"id": session.id,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }
    return encode_map(reply, session.protocol)


def client_id(session: Session, args: list[bytes]) -> bytes:
    """CLIENT ID: the session's id."""
    return encode_integer(session.id)


def client_getname(session: Session, args: list[bytes]) -> bytes:
    """CLIENT GETNAME: the session's name, or null."""
    return _null(session) if session.name is None else encode_bulk(session.name)


def client_setname(session: Session, args: list[bytes]) -> bytes:
    """CLIENT SETNAME name: name the session (empty clears it)."""
    if not _valid_name(args[2]):
        return _bad_name()
    session.name = args[2] or None
    return OK


#: CLIENT's subcommands: name -> (handler, arity counting "CLIENT" itself).
CLIENT_SUBCOMMANDS: dict[bytes, tuple[Handler, int]] = {
    b"id": (client_id, 2),
    b"getname": (client_getname, 2),
    b"setname": (client_setname, 3),
}


def _no_subcommand(session: Session, args: list[bytes]) -> bytes:
    """A container called bare: its arity (-2) never lets this run."""
    raise AssertionError("unreachable: a container's arity requires a subcommand")


# --- transactions -------------------------------------------------------------

#: Commands that run at once inside MULTI instead of being queued (Redis's
#: processCommand list).
RUN_IN_MULTI = frozenset((b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"))
_EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"


#: What a RESP2 client in subscribed mode may run (Redis's processCommand list).
SUBSCRIBED_MODE = frozenset((b"ping", b"subscribe", b"unsubscribe", b"psubscribe",
                             b"punsubscribe", b"quit", b"reset"))
NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


def _full_name(session: Session, args: list[bytes]) -> bytes:
    """The command's name as Redis's errors print it ("client|id")."""
    name = args[0].lower()
    entry = _table(session).get(name)
    if entry is not None and entry.subcommands is not None and len(args) > 1:
        return name + b"|" + args[1].lower()
    return name


def _refused(session: Session, args: list[bytes]) -> bytes | None:
    """Why a known command may not run for this client now (Redis's
    processCommand checks after the arity, in its order), or None."""
    name = args[0].lower()
    if not session.authenticated:
        entry = _table(session).get(name)
        if entry is None or "no_auth" not in entry.flags:
            return NOAUTH
    if session.protocol == 2 and (session.channels or session.patterns) and name not in SUBSCRIBED_MODE:
        return _error(b"ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                      b"QUIT / RESET are allowed in this context" % _full_name(session, args))
    return None


def intercept(session: Session, args: list[bytes], handler: Handler | bytes) -> bytes | None:
    """The reply to args when it does not run now, None when handler runs.
    A refused command (handler is its error, or the client may not run it
    now: before AUTH, in RESP2 subscribed mode) is answered its error, and
    inside MULTI makes EXEC answer EXECABORT; a refused EXEC aborts the
    transaction itself (Redis's execCommandAbort, inside MULTI or not).
    Inside MULTI the rest is queued (+QUEUED), except RUN_IN_MULTI."""
    if not isinstance(handler, bytes) and session.gated:
        refused = _refused(session, args)
        if refused is not None:
            handler = refused
    if isinstance(handler, bytes):
        if args[0].lower() == b"exec":
            discard(session)
            reason = handler[5:-2] if handler.startswith(b"-ERR ") else handler[1:-2]
            return _error(b"EXECABORT Transaction discarded because of: " + reason)
        if session.multi is not None:
            session.multi_failed = True
        return handler
    queued = session.multi
    if queued is None or args[0].lower() in RUN_IN_MULTI:
        return None
    queued.append((handler, args))
    return QUEUED


def discard(session: Session) -> None:
    """Leave MULTI, dropping what was queued, and UNWATCH."""
    session.multi = None
    session.multi_failed = False
    session.watcher.unwatch()


def cmd_multi(session: Session, args: list[bytes]) -> bytes:
    """MULTI: queue the commands that follow until EXEC or DISCARD."""
    if session.multi is not None:
        return _error(b"ERR MULTI calls can not be nested")
    session.multi = []
    return OK


def cmd_exec(session: Session, args: list[bytes]) -> bytes:
    """EXEC: run the queued commands, an array of their replies; a null
    array if a WATCHed key changed; EXECABORT if one was refused."""
    queued = session.multi
    if queued is None:
        return _error(b"ERR EXEC without MULTI")
    failed = session.multi_failed
    session.watcher.expire_due()
    dirty = session.watcher.dirty
    discard(session)
    if failed:
        return _EXECABORT
    if dirty:
        return b"_\r\n" if session.protocol == 3 else b"*-1\r\n"
    replies = [b"*%d\r\n" % len(queued)]
    session.deny_blocking = True  # as in Redis, a blocking pop inside EXEC does not block
    try:
        replies += [call(handler, session, queued_args) for handler, queued_args in queued]
    finally:
        session.deny_blocking = False
    if session.host is not None:
        session.host.commands_processed += len(queued)
    return b"".join(replies)


def cmd_discard(session: Session, args: list[bytes]) -> bytes:
    """DISCARD: leave MULTI without running anything."""
    if session.multi is None:
        return _error(b"ERR DISCARD without MULTI")
    discard(session)
    return OK


def cmd_watch(session: Session, args: list[bytes]) -> bytes:
    """WATCH key...: EXEC fails if one of them is written before it."""
    if session.multi is not None:
        return _error(b"ERR WATCH inside MULTI is not allowed")
    for key in args[1:]:
        session.store.watch(key, session.watcher)
    return OK


def cmd_unwatch(session: Session, args: list[bytes]) -> bytes:
    """UNWATCH: forget every WATCHed key."""
    session.watcher.unwatch()
    return OK


# --- strings ----------------------------------------------------------------


def cmd_get(session: Session, args: list[bytes]) -> bytes:
    """GET key: the value, or null."""
    value = session.store.get(args[1])
    if value is None:
        return _null(session)
    return b"$%d\r\n%s\r\n" % (len(value), value)  # encode_bulk, for bytes: per GET


# SET's option flags.
_NX, _XX, _GET, _KEEPTTL, _EX, _PX, _EXAT, _PXAT = (1 << i for i in range(8))
_EXPIRY_FLAGS = _EX | _PX | _EXAT | _PXAT
#: option -> (its flag, flags it cannot follow, whether it takes a value).
_SET_OPTIONS: dict[bytes, tuple[int, int, bool]] = {
    b"nx": (_NX, _XX, False),
    b"xx": (_XX, _NX, False),
    b"get": (_GET, 0, False),
    b"keepttl": (_KEEPTTL, _EXPIRY_FLAGS, False),
    b"ex": (_EX, _KEEPTTL | _PX | _EXAT | _PXAT, True),
    b"px": (_PX, _KEEPTTL | _EX | _EXAT | _PXAT, True),
    b"exat": (_EXAT, _KEEPTTL | _EX | _PX | _PXAT, True),
    b"pxat": (_PXAT, _KEEPTTL | _EX | _PX | _EXAT, True),
}


def cmd_set(session: Session, args: list[bytes]) -> bytes:
    """SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]."""
    store = session.store
    key, value = args[1], args[2]
    if len(args) == 3:  # plain SET, by far the most common: no options to read
        store.set(key, value)
        return OK
    flags = 0
    expire_arg: bytes | None = None
    index = 3
    # Redis's parseExtendedStringArgumentsOrReply: an option conflicting
    # with one already seen, or missing its value, is a syntax error.
    while index < len(args):
        option = _SET_OPTIONS.get(_option(args[index]))
        has_next = index + 1 < len(args)
        if option is None or flags & option[1] or (option[2] and not has_next):
            return SYNTAX_ERROR
        flags |= option[0]
        if option[2]:
            expire_arg = args[index + 1]
            index += 1
        index += 1
    deadline: int | None = None
    if expire_arg is not None:
        amount = _int(expire_arg)
        if amount is None:
            return NOT_INTEGER
        seconds = bool(flags & (_EX | _EXAT))
        if amount <= 0 or (seconds and amount > INT64_MAX // 1000):
            return _error(b"ERR invalid expire time in 'set' command")
        ms = amount * 1000 if seconds else amount
        wall = store.wall_clock()
        if flags & (_EX | _PX):
            if ms > INT64_MAX - wall:  # Redis's mstime() + ms overflows
                return _error(b"ERR invalid expire time in 'set' command")
            ms += wall
        deadline = store.unix_to_deadline(ms)
    old = store.get(key) if flags & _GET else store.lookup(key)  # GET needs a string
    reply = (_null(session) if old is None else encode_bulk(old)) if flags & _GET else OK
    if (flags & _NX and old is not None) or (flags & _XX and old is None):
        return reply if flags & _GET else _null(session)
    store.set(key, value, keep_ttl=bool(flags & _KEEPTTL))
    if deadline is not None:
        store.set_deadline(key, deadline)
    return reply


def cmd_del(session: Session, args: list[bytes]) -> bytes:
    """DEL key...: how many of the keys existed and were removed."""
    store = session.store
    return encode_integer(sum(store.lookup(key) is not None and store.delete(key) for key in args[1:]))


def cmd_exists(session: Session, args: list[bytes]) -> bytes:
    """EXISTS key...: how many of the keys exist (repeats count again)."""
    return encode_integer(sum(session.store.exists(key) for key in args[1:]))


def _incr(session: Session, key: bytes, by: int) -> bytes:
    store = session.store
    old = store.get(key)
    current = 0 if old is None else _int(old)
    if current is None:
        return NOT_INTEGER
    if not INT64_MIN <= current + by <= INT64_MAX:
        return _error(b"ERR increment or decrement would overflow")
    store.set(key, b"%d" % (current + by), keep_ttl=True)
    return encode_integer(current + by)


def cmd_incr(session: Session, args: list[bytes]) -> bytes:
    """INCR key: add 1 to an integer value (missing is 0)."""
    return _incr(session, args[1], 1)


def cmd_decr(session: Session, args: list[bytes]) -> bytes:
    """DECR key: subtract 1."""
    return _incr(session, args[1], -1)


def cmd_incrby(session: Session, args: list[bytes]) -> bytes:
    """INCRBY key increment."""
    by = _int(args[2])
    return NOT_INTEGER if by is None else _incr(session, args[1], by)


def cmd_decrby(session: Session, args: list[bytes]) -> bytes:
    """DECRBY key decrement."""
    by = _int(args[2])
    if by is None:
        return NOT_INTEGER
    if by == INT64_MIN:  # cannot be negated in 64 bits
        return _error(b"ERR decrement would overflow")
    return _incr(session, args[1], -by)


def cmd_mget(session: Session, args: list[bytes]) -> bytes:
    """MGET key...: an array of values and nulls."""
    values = [session.store.lookup(key) for key in args[1:]]
    return encode_array([v if type(v) is bytes else None for v in values], session.protocol)


def cmd_mset(session: Session, args: list[bytes]) -> bytes:
    """MSET key value [key value ...]: +OK."""
    if len(args) % 2 == 0:
        return _error(b"ERR wrong number of arguments for 'mset' command")
    for index in range(1, len(args), 2):
        session.store.set(args[index], args[index + 1])
    return OK


def cmd_append(session: Session, args: list[bytes]) -> bytes:
    """APPEND key value: the new length (the TTL is kept)."""
    store = session.store
    existing = store.get(args[1])
    old = existing or b""
    if len(old) + len(args[2]) > DEFAULT_RESP_MAX_BULK_LEN:
        return _error(b"ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    store.set(args[1], old + args[2], keep_ttl=True)
    if existing is not None:
        store.big.add(args[1])  # changed in place: raw (a new key is encoded as SET's)
    return encode_integer(len(old) + len(args[2]))


def cmd_strlen(session: Session, args: list[bytes]) -> bytes:
    """STRLEN key: the value's length, 0 if missing."""
    return encode_integer(len(session.store.get(args[1]) or b""))


# --- expiry -------------------------------------------------------------------


def _expire(session: Session, args: list[bytes], unit_ms: int, name: bytes, absolute: bool = False) -> bytes:
    """EXPIRE / PEXPIRE key amount [NX|XX|GT|LT]: Redis's expireGenericCommand
    (absolute: EXPIREAT / PEXPIREAT, the amount is a Unix time)."""
    seen: set[bytes] = set()
    for option in args[3:]:
        lowered = _option(option)
        if lowered not in (b"nx", b"xx", b"gt", b"lt"):
            return _error(b"ERR Unsupported option %s" % _cstr(option), trim=True)
        seen.add(lowered)
    if b"nx" in seen and seen & {b"xx", b"gt", b"lt"}:
        return _error(b"ERR NX and XX, GT or LT options at the same time are not compatible")
    if {b"gt", b"lt"} <= seen:
        return _error(b"ERR GT and LT options at the same time are not compatible")
    amount = _int(args[2])
    if amount is None:
        return NOT_INTEGER
    invalid = _error(b"ERR invalid expire time in '%s' command" % name)
    if unit_ms == 1000 and not INT64_MIN // 1000 < amount < INT64_MAX // 1000 + 1:
        return invalid
    ms = amount * unit_ms
    store = session.store
    wall = 0 if absolute else store.wall_clock()
    if ms > INT64_MAX - wall:
        return invalid
    when = store.unix_to_deadline(ms + wall)
    key = args[1]
    if store.lookup(key) is None:
        return b":0\r\n"
    current = store.deadline(key)
    if (
        (b"nx" in seen and current is not None)
        or (b"xx" in seen and current is None)
        or (b"gt" in seen and (current is None or when <= current))  # no TTL = infinite
        or (b"lt" in seen and current is not None and when >= current)
    ):
        return b":0\r\n"
    if when <= store.now():
        store.delete(key)
    else:
        store.set_deadline(key, when)
    return b":1\r\n"


def cmd_expire(session: Session, args: list[bytes]) -> bytes:
    """EXPIRE key seconds [NX|XX|GT|LT]: 1 if the TTL was set."""
    return _expire(session, args, 1000, b"expire")


def cmd_pexpire(session: Session, args: list[bytes]) -> bytes:
    """PEXPIRE key milliseconds [NX|XX|GT|LT]."""
    return _expire(session, args, 1, b"pexpire")


def _ttl(session: Session, key: bytes, in_ms: bool) -> bytes:
    store = session.store
    if store.lookup(key) is None:
        return b":-2\r\n"
    deadline = store.deadline(key)
    if deadline is None:
        return b":-1\r\n"
    left = max(deadline - store.now(), 0)
    return encode_integer(left if in_ms else (left + 500) // 1000)


def cmd_ttl(session: Session, args: list[bytes]) -> bytes:
    """TTL key: seconds left (rounded), -1 without TTL, -2 if missing."""
    return _ttl(session, args[1], False)


def cmd_pttl(session: Session, args: list[bytes]) -> bytes:
    """PTTL key: milliseconds left, -1 without TTL, -2 if missing."""
    return _ttl(session, args[1], True)


def cmd_persist(session: Session, args: list[bytes]) -> bytes:
    """PERSIST key: 1 if a TTL was removed."""
    store = session.store
    if store.deadline(args[1]) is None:
        return b":0\r\n"
    store.set_deadline(args[1], None)
    return b":1\r\n"


# --- keyspace ---------------------------------------------------------------


#: Redis's stringmatchlen stops (no match) past this many nested stars.
MAX_GLOB_NESTING = 1000

#: A compiled glob token (see compile_glob).
Token = int | str | None | tuple[bool, tuple[tuple[int, int], ...]]


def compile_glob(pattern: bytes) -> list[Token]:
    """Redis's stringmatchlen pattern as tokens: None for "?", "*" for a
    star (runs collapsed), an int for a literal byte, and (negated, ranges)
    for a bracket class. Bracket quirks are Redis's: "]" right after "["
    closes an empty class, an unterminated class runs to the pattern's end,
    reversed ranges are swapped, range ends compare as signed C chars."""
    tokens: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        byte = pattern[i]
        if byte == 0x2A:  # *
            if not tokens or tokens[-1] != "*":
                tokens.append("*")
        elif byte == 0x3F:  # ?
            tokens.append(None)
        elif byte == 0x5B:  # [
            i += 1
            negated = i < n and pattern[i] == 0x5E
            i += negated
            ranges: list[tuple[int, int]] = []
            while i < n and pattern[i] != 0x5D:
                if pattern[i] == 0x5C and i + 1 < n:
                    i += 1
                    ranges.append((pattern[i], pattern[i]))
                elif i + 2 < n and pattern[i + 1] == 0x2D:
                    low, high = _signed(pattern[i]), _signed(pattern[i + 2])
                    ranges.append((min(low, high), max(low, high)))
                    i += 2
                else:
                    ranges.append((pattern[i], pattern[i]))
                i += 1
            tokens.append((negated, tuple(ranges)))
        elif byte == 0x5C and i + 1 < n:  # backslash escapes the next byte
            i += 1
            tokens.append(pattern[i])
        else:
            tokens.append(byte)
        i += 1
    return tokens


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


def _token_matches(token: Token, byte: int) -> bool:
    if token is None:
        return True
    if isinstance(token, int):
        return token == byte
    assert isinstance(token, tuple)
    negated, ranges = token
    literal, signed = byte, _signed(byte)
    hit = any(low <= signed <= high or low == high == literal for low, high in ranges)
    return hit != negated


def glob_match(tokens: list[Token], string: bytes) -> bool:
    """Whether string matches compiled tokens, as Redis's stringmatchlen.

    Iterative, with backtracking to the last star only: O(len(tokens) *
    len(string)) at worst, so patterns like ``*a*a*a*...b`` cannot blow up
    (Redis itself recurses per star). As in Redis, the empty string matches
    only the empty pattern.
    """
    if not string:
        return not tokens
    t = s = 0
    star = -1
    mark = 0
    nesting = 0
    while s < len(string):
        if t < len(tokens) and tokens[t] == "*":
            if t != len(tokens) - 1:
                # Redis recurses once per star that still has bytes to match
                # and gives up past 1000 levels (a no-match): same answer.
                nesting += 1
                if nesting > MAX_GLOB_NESTING:
                    return False
            star, mark = t, s
            t += 1
        elif t < len(tokens) and _token_matches(tokens[t], string[s]):
            t += 1
            s += 1
        elif star >= 0:
            mark += 1
            t, s = star + 1, mark
        else:
            return False
    while t < len(tokens) and tokens[t] == "*":
        t += 1
    return t == len(tokens)


def cmd_keys(session: Session, args: list[bytes]) -> bytes:
    """KEYS pattern: every live key matching the glob pattern."""
    keys = session.store.keys()
    if args[1] != b"*":  # Redis's shortcut: "*" matches every key, even b""
        tokens = compile_glob(args[1])
        keys = [key for key in keys if glob_match(tokens, key)]
    return encode_array(keys, session.protocol)


def _parse_cursor(arg: bytes) -> int | None:
    """Redis's strtoul-based cursor parse: optional sign, decimal digits, no
    leading blank, fits in 64 bits (a "-" wraps, as in C); b"" is 0."""
    body = arg[1:] if arg[:1] in (b"+", b"-") else arg
    if body and not body.isdigit() or (not body and arg):
        return None
    value = int(body or b"0")
    if value >= 2**64:
        return None
    return (-value) % 2**64 if arg[:1] == b"-" else value


def cmd_scan(session: Session, args: list[bytes]) -> bytes:
    """SCAN cursor [MATCH pattern] [COUNT n] [TYPE type] (cursor: see fastnet.resp.store)."""
    cursor = _parse_cursor(_cstr(args[1]))
    if cursor is None:
        return _error(b"ERR invalid cursor")
    count = 10
    tokens: list[Token] | None = None
    type_filter: bytes | None = None
    index = 2
    while index < len(args):
        option = _option(args[index])
        if index + 1 >= len(args) or option not in (b"count", b"match", b"type"):
            return SYNTAX_ERROR
        value = args[index + 1]
        if option == b"count":
            parsed = _int(value)
            if parsed is None:
                return NOT_INTEGER
            if parsed < 1:
                return SYNTAX_ERROR
            count = parsed
        elif option == b"match":
            tokens = None if value == b"*" else compile_glob(value)
        else:
            type_filter = _option(value)
        index += 2
    next_cursor, keys = session.store.scan(cursor, count)
    if tokens is not None:
        keys = [key for key in keys if glob_match(tokens, key)]
    if type_filter is not None:
        keys = [key for key in keys if type_name(session.store.lookup(key)) == type_filter]
    return encode_reply([b"%d" % next_cursor, keys], session.protocol)


def cmd_dbsize(session: Session, args: list[bytes]) -> bytes:
    """DBSIZE: keys held."""
    return encode_integer(len(session.store))


def cmd_flush(session: Session, args: list[bytes]) -> bytes:
    """FLUSHDB / FLUSHALL [ASYNC|SYNC]: remove every key (always synchronously)."""
    if len(args) == 2 and _option(args[1]) in (b"sync", b"async"):
        pass
    elif len(args) != 1:
        return SYNTAX_ERROR
    if args[0].lower() == b"flushall":
        for store in session.shared.databases:
            store.flush()
    else:
        session.store.flush()
    return OK


# --- types: hashes, lists, sets ------------------------------------------------


def type_name(value: object) -> bytes:
    """TYPE's word for a value (b"none" for a missing key)."""
    if value is None:
        return b"none"
    return _TYPE_NAMES[type(value)]


_TYPE_NAMES: dict[type, bytes] = {bytes: b"string", dict: b"hash", deque: b"list", Members: b"set",
                                  SortedSet: b"zset"}


def _typed(session: Session, key: bytes, kind: type) -> Any:
    """The value under key if it is of kind, None if missing; WrongType otherwise."""
    value = session.store.lookup(key)
    if value is None or type(value) is kind:
        return value
    raise WrongType(key)


def _created(session: Session, key: bytes, kind: type) -> Any:
    """The container under key, made (empty, stored) if missing."""
    value = _typed(session, key, kind)
    if value is None:
        value = kind()
        session.store.set(key, value)
    return value


def _changed(session: Session, key: bytes, value: Any) -> None:
    """A container was changed in place: WATCH sees it; an empty one goes."""
    if value:
        session.store.modified(key)
    else:
        session.store.delete(key)


def cmd_type(session: Session, args: list[bytes]) -> bytes:
    """TYPE key: string, hash, list, set, zset or none."""
    return b"+%s\r\n" % type_name(session.store.lookup(args[1]))


def cmd_hset(session: Session, args: list[bytes]) -> bytes:
    """HSET key field value [field value ...]: how many fields were new."""
    if len(args) % 2:
        return _error(b"ERR wrong number of arguments for '%s' command" % args[0].lower())
    hash_ = _created(session, args[1], dict)
    before = len(hash_)
    for index in range(2, len(args), 2):
        hash_[args[index]] = args[index + 1]
    hash_written(session.store, args[1], hash_, args[2:])
    session.store.modified(args[1])
    return encode_integer(len(hash_) - before)


def cmd_hmset(session: Session, args: list[bytes]) -> bytes:
    """HMSET key field value [field value ...]: +OK."""
    reply = cmd_hset(session, args)
    return reply if reply[:1] == b"-" else OK


def cmd_hsetnx(session: Session, args: list[bytes]) -> bytes:
    """HSETNX key field value: 1 if the field was new and set."""
    hash_ = _typed(session, args[1], dict)
    if hash_ is not None and args[2] in hash_:
        return b":0\r\n"
    hash_ = _created(session, args[1], dict)
    hash_[args[2]] = args[3]
    hash_written(session.store, args[1], hash_, args[2:4])
    session.store.modified(args[1])
    return b":1\r\n"


def cmd_hget(session: Session, args: list[bytes]) -> bytes:
    """HGET key field: the value, or null."""
    hash_ = _typed(session, args[1], dict) or {}
    value = hash_.get(args[2])
    return _null(session) if value is None else encode_bulk(value)


def cmd_hmget(session: Session, args: list[bytes]) -> bytes:
    """HMGET key field...: values and nulls."""
    hash_ = _typed(session, args[1], dict) or {}
    return encode_array([hash_.get(f) for f in args[2:]], session.protocol)


def cmd_hgetall(session: Session, args: list[bytes]) -> bytes:
    """HGETALL key: every field and value (a map in RESP3)."""
    return encode_map(_typed(session, args[1], dict) or {}, session.protocol)


def cmd_hkeys(session: Session, args: list[bytes]) -> bytes:
    """HKEYS key: the fields."""
    return encode_array(list(_typed(session, args[1], dict) or ()), session.protocol)


def cmd_hvals(session: Session, args: list[bytes]) -> bytes:
    """HVALS key: the values."""
    return encode_array(list((_typed(session, args[1], dict) or {}).values()), session.protocol)


def cmd_hdel(session: Session, args: list[bytes]) -> bytes:
    """HDEL key field...: how many fields were removed."""
    hash_ = _typed(session, args[1], dict)
    if hash_ is None:
        return b":0\r\n"
    removed = sum(hash_.pop(f, None) is not None for f in args[2:])
    if removed:
        _changed(session, args[1], hash_)
    return encode_integer(removed)


def cmd_hexists(session: Session, args: list[bytes]) -> bytes:
    """HEXISTS key field: 1 if the field is set."""
    return encode_integer(int(args[2] in (_typed(session, args[1], dict) or {})))


def cmd_hlen(session: Session, args: list[bytes]) -> bytes:
    """HLEN key: how many fields."""
    return encode_integer(len(_typed(session, args[1], dict) or ()))


def cmd_hstrlen(session: Session, args: list[bytes]) -> bytes:
    """HSTRLEN key field: the value's length, 0 if missing."""
    return encode_integer(len((_typed(session, args[1], dict) or {}).get(args[2], b"")))


def cmd_hincrby(session: Session, args: list[bytes]) -> bytes:
    """HINCRBY key field increment: the new integer value."""
    by = _int(args[3])
    if by is None:
        return NOT_INTEGER
    hash_ = _typed(session, args[1], dict) or {}
    old = hash_.get(args[2], b"0")
    current = _int(old)
    if current is None:
        return _error(b"ERR hash value is not an integer")
    if not INT64_MIN <= current + by <= INT64_MAX:
        return _error(b"ERR increment or decrement would overflow")
    hash_ = _created(session, args[1], dict)
    hash_[args[2]] = b"%d" % (current + by)
    hash_written(session.store, args[1], hash_, (args[2],))
    session.store.modified(args[1])
    return encode_integer(current + by)


def _push(session: Session, args: list[bytes], left: bool, only_existing: bool) -> bytes:
    if only_existing and _typed(session, args[1], deque) is None:
        return b":0\r\n"
    items = _created(session, args[1], deque)
    (items.extendleft if left else items.extend)(args[2:])
    session.store.modified(args[1])
    return encode_integer(len(items))


def cmd_lpush(session: Session, args: list[bytes]) -> bytes:
    """LPUSH key element...: the list's new length."""
    return _push(session, args, True, False)


def cmd_rpush(session: Session, args: list[bytes]) -> bytes:
    """RPUSH key element...: the list's new length."""
    return _push(session, args, False, False)


def cmd_lpushx(session: Session, args: list[bytes]) -> bytes:
    """LPUSHX key element...: as LPUSH, only onto an existing list."""
    return _push(session, args, True, True)


def cmd_rpushx(session: Session, args: list[bytes]) -> bytes:
    """RPUSHX key element...: as RPUSH, only onto an existing list."""
    return _push(session, args, False, True)


def _pop(session: Session, args: list[bytes], left: bool) -> bytes:
    if len(args) > 3:
        return _error(b"ERR wrong number of arguments for '%s' command" % args[0].lower())
    count = None
    if len(args) == 3:
        count = _int(args[2])
        if count is None or count < 0:
            return _error(b"ERR value is out of range, must be positive")
    items = _typed(session, args[1], deque)
    if items is None:
        return _null(session) if count is None else (b"_\r\n" if session.protocol == 3 else b"*-1\r\n")
    pop = items.popleft if left else items.pop
    if count is None:
        reply = encode_bulk(pop())
    else:
        reply = encode_array([pop() for _ in range(min(count, len(items)))], session.protocol)
    _changed(session, args[1], items)
    return reply


def cmd_lpop(session: Session, args: list[bytes]) -> bytes:
    """LPOP key [count]: the first element(s), null if the key is missing."""
    return _pop(session, args, True)


def cmd_rpop(session: Session, args: list[bytes]) -> bytes:
    """RPOP key [count]: the last element(s)."""
    return _pop(session, args, False)


def cmd_llen(session: Session, args: list[bytes]) -> bytes:
    """LLEN key: the list's length."""
    return encode_integer(len(_typed(session, args[1], deque) or ()))


def cmd_lrange(session: Session, args: list[bytes]) -> bytes:
    """LRANGE key start stop: the elements from start to stop (inclusive; negative from the end)."""
    start, stop = _int(args[2]), _int(args[3])
    if start is None or stop is None:
        return NOT_INTEGER
    items = _typed(session, args[1], deque) or deque()
    size = len(items)
    start = max(start + size if start < 0 else start, 0)
    stop = min(stop + size if stop < 0 else stop, size - 1)
    if start > stop:
        return b"*0\r\n"
    if start > size - 1 - stop:  # nearer the end: deque walks from there
        items.rotate(-start)
        found = list(itertools.islice(items, stop - start + 1))
        items.rotate(start)
    else:
        found = list(itertools.islice(items, start, stop + 1))
    return bulk_array(found)


def cmd_lindex(session: Session, args: list[bytes]) -> bytes:
    """LINDEX key index: the element there, or null."""
    items = _typed(session, args[1], deque)
    if items is None:
        return _null(session)
    index = _int(args[2])
    if index is None:
        return NOT_INTEGER
    if not -len(items) <= index < len(items):
        return _null(session)
    return encode_bulk(items[index])


def cmd_sadd(session: Session, args: list[bytes]) -> bytes:
    """SADD key member...: how many members were new."""
    members = _created(session, args[1], Members)
    added = members.extend(args[2:])
    session.store.modified(args[1])
    return encode_integer(added)


def cmd_srem(session: Session, args: list[bytes]) -> bytes:
    """SREM key member...: how many members were removed."""
    members = _typed(session, args[1], Members)
    if members is None:
        return b":0\r\n"
    set_shrinking(session.store, args[1], members)
    removed = sum(members.discard(member) for member in args[2:])
    if removed:
        _changed(session, args[1], members)
    return encode_integer(removed)


def cmd_smembers(session: Session, args: list[bytes]) -> bytes:
    """SMEMBERS key: every member (a set in RESP3)."""
    return encode_set(_typed(session, args[1], Members) or (), session.protocol)


def cmd_sismember(session: Session, args: list[bytes]) -> bytes:
    """SISMEMBER key member: 1 if member is in the set."""
    return encode_integer(int(args[2] in (_typed(session, args[1], Members) or ())))


def cmd_smismember(session: Session, args: list[bytes]) -> bytes:
    """SMISMEMBER key member...: 1 or 0 for each member."""
    members = _typed(session, args[1], Members) or ()
    return encode_array([int(m in members) for m in args[2:]], session.protocol)


def cmd_scard(session: Session, args: list[bytes]) -> bytes:
    """SCARD key: how many members."""
    return encode_integer(len(_typed(session, args[1], Members) or ()))


# --- string and key extras ---------------------------------------------------


def cmd_setnx(session: Session, args: list[bytes]) -> bytes:
    """SETNX key value: 1 if the key was missing and is now set."""
    if session.store.lookup(args[1]) is not None:
        return b":0\r\n"
    session.store.set(args[1], args[2])
    return b":1\r\n"


def _setex(session: Session, args: list[bytes], unit_ms: int) -> bytes:
    """SETEX / PSETEX key amount value (Redis's setGenericCommand checks)."""
    amount = _int(args[2])
    if amount is None:
        return NOT_INTEGER
    store = session.store
    wall = store.wall_clock()
    if amount <= 0 or (unit_ms == 1000 and amount > INT64_MAX // 1000) or amount * unit_ms > INT64_MAX - wall:
        return _error(b"ERR invalid expire time in '%s' command" % args[0].lower())
    store.set(args[1], args[3])
    store.set_deadline(args[1], store.unix_to_deadline(amount * unit_ms + wall))
    return OK


def cmd_setex(session: Session, args: list[bytes]) -> bytes:
    """SETEX key seconds value: SET with a TTL."""
    return _setex(session, args, 1000)


def cmd_psetex(session: Session, args: list[bytes]) -> bytes:
    """PSETEX key milliseconds value."""
    return _setex(session, args, 1)


def cmd_getset(session: Session, args: list[bytes]) -> bytes:
    """GETSET key value: the old value (or null); the TTL is dropped."""
    old = session.store.get(args[1])
    session.store.set(args[1], args[2])
    return _null(session) if old is None else encode_bulk(old)


def cmd_getdel(session: Session, args: list[bytes]) -> bytes:
    """GETDEL key: the value (or null), and the key is deleted."""
    old = session.store.get(args[1])
    if old is None:
        return _null(session)
    session.store.delete(args[1])
    return encode_bulk(old)


def cmd_msetnx(session: Session, args: list[bytes]) -> bytes:
    """MSETNX key value [key value ...]: 1 if none existed and all were set."""
    if len(args) % 2 == 0:
        return _error(b"ERR wrong number of arguments for 'msetnx' command")
    store = session.store
    if any(store.lookup(args[i]) is not None for i in range(1, len(args), 2)):
        return b":0\r\n"
    for index in range(1, len(args), 2):
        store.set(args[index], args[index + 1])
    return b":1\r\n"


def cmd_touch(session: Session, args: list[bytes]) -> bytes:
    """TOUCH key...: how many of the keys exist."""
    return cmd_exists(session, args)


def _rename(session: Session, args: list[bytes], nx: bool) -> bytes:
    store = session.store
    source, target = args[1], args[2]
    value = store.lookup(source)
    if value is None:
        return _error(b"ERR no such key")
    if source == target:
        return b":0\r\n" if nx else OK
    if nx and store.lookup(target) is not None:
        return b":0\r\n"
    deadline = store.deadline(source)
    marks = store.encoding_marks(source)
    store.delete(source)
    store.delete(target)
    store.set(target, value)
    store.mark(target, marks)
    if deadline is not None:
        store.set_deadline(target, deadline)
    return b":1\r\n" if nx else OK


def cmd_rename(session: Session, args: list[bytes]) -> bytes:
    """RENAME key newkey: move the value and its TTL (newkey is replaced)."""
    return _rename(session, args, False)


def cmd_renamenx(session: Session, args: list[bytes]) -> bytes:
    """RENAMENX key newkey: 1 if moved, 0 if newkey exists."""
    return _rename(session, args, True)


def cmd_lset(session: Session, args: list[bytes]) -> bytes:
    """LSET key index element: +OK, or an error for a missing key or index."""
    items = _typed(session, args[1], deque)
    if items is None:
        return _error(b"ERR no such key")
    index = _int(args[2])
    if index is None:
        return NOT_INTEGER
    if not -len(items) <= index < len(items):
        return _error(b"ERR index out of range")
    items[index] = args[3]
    session.store.modified(args[1])
    return OK


def cmd_ltrim(session: Session, args: list[bytes]) -> bytes:
    """LTRIM key start stop: keep only that range (Redis's index rules)."""
    start, stop = _int(args[2]), _int(args[3])
    if start is None or stop is None:
        return NOT_INTEGER
    items = _typed(session, args[1], deque)
    if items is None:
        return OK
    size = len(items)
    start = max(start + size if start < 0 else start, 0)
    stop = stop + size if stop < 0 else stop
    if start > stop or start >= size:
        left, right = size, 0
    else:
        left, right = start, size - min(stop, size - 1) - 1
    for _ in range(left):
        items.popleft()
    for _ in range(right):
        items.pop()
    _changed(session, args[1], items)
    return OK


# --- the server itself ----------------------------------------------------


def _info_text(session: Session, wanted: set[bytes]) -> bytes:
    """INFO's text: the host's sections plus Keyspace, those in wanted
    (lower-case titles; "all", "everything" and "default" mean every one)."""
    sections: list[InfoSection] = list(session.host.info()) if session.host else [
        ("Server", [("redis_version", REDIS_VERSION.decode()), ("process_id", os.getpid())])]
    keyspace: list[tuple[str, object]] = [
        (f"db{index}", f"keys={len(store)},expires={store.expiring},avg_ttl=0")
        for index, store in enumerate(session.shared.databases) if len(store)]
    sections.append(("Keyspace", keyspace))
    every = not wanted or wanted & {b"all", b"everything", b"default"}
    chunks = []
    for title, fields in sections:
        if every or title.lower().encode() in wanted:
            lines = [f"# {title}\r\n"] + [f"{key}:{value}\r\n" for key, value in fields]
            chunks.append("".join(lines))
    return "\r\n".join(chunks).encode()


def cmd_info(session: Session, args: list[bytes]) -> bytes:
    """INFO [section ...]: the server's description (RESP3: a verbatim "txt" string)."""
    text = _info_text(session, {_option(arg) for arg in args[1:]})
    return encode_verbatim(text, b"txt", session.protocol)


def config_get(session: Session, args: list[bytes]) -> bytes:
    """CONFIG GET pattern [pattern ...]: matching parameters and values, each once."""
    config = session.host.config() if session.host else {}
    found: dict[bytes, bytes] = {}
    for pattern in args[2:]:
        pattern = pattern.lower()
        if pattern in config:
            found[pattern] = config[pattern]
            continue
        tokens = compile_glob(pattern)
        for name, value in config.items():
            if name not in found and glob_match(tokens, name):
                found[name] = value
    return encode_map(found, session.protocol)


#: CONFIG's subcommands (only GET: settings change through the server's API).
CONFIG_SUBCOMMANDS: dict[bytes, tuple[Handler, int]] = {b"get": (config_get, -3)}


def _command_info(name: bytes, command: "Command") -> list[object]:
    """One command's COMMAND INFO entry, in Redis 7's ten fields (key
    specs and subcommands are left empty)."""
    return [name, command.arity, [SimpleString(f.encode()) for f in command.flags],
            command.first_key, command.last_key, command.step,
            [SimpleString(c.encode()) for c in command.categories], [], [], []]


def _table(session: Session) -> Mapping[bytes, "Command"]:
    return session.host.commands if session.host else COMMANDS


def command_count(session: Session, args: list[bytes]) -> bytes:
    """COMMAND COUNT: how many commands the table holds."""
    return encode_integer(len(_table(session)))


def command_list(session: Session, args: list[bytes]) -> bytes:
    """COMMAND LIST: every command's name (FILTERBY is not supported)."""
    if len(args) > 2:
        return SYNTAX_ERROR
    return encode_array(list(_table(session)), session.protocol)


def command_info(session: Session, args: list[bytes]) -> bytes:
    """COMMAND INFO [name ...]: each named command's entry (null if
    unknown); every command's without names."""
    table = _table(session)
    names = [arg.lower() for arg in args[2:]] or list(table)
    entries = [_command_info(n, table[n]) if n in table else None for n in names]
    return encode_reply(entries, session.protocol)


def command_docs(session: Session, args: list[bytes]) -> bytes:
    """COMMAND DOCS [name ...]: no documentation is kept, so an empty map
    (redis-cli then uses its own built-in help)."""
    return encode_map({}, session.protocol)


def cmd_command(session: Session, args: list[bytes]) -> bytes:
    """COMMAND: every command's entry (subcommands: COMMAND_SUBCOMMANDS)."""
    table = _table(session)
    return encode_reply([_command_info(n, c) for n, c in table.items()], session.protocol)


COMMAND_SUBCOMMANDS: dict[bytes, tuple[Handler, int]] = {
    b"count": (command_count, 2),
    b"list": (command_list, -2),
    b"info": (command_info, -2),
    b"docs": (command_docs, -2),
}


class Command(NamedTuple):
    """A command as the table holds it, with what COMMAND INFO reports.

    arity counts the command name; negative means "at least". flags and
    categories are Redis's words for it ("readonly", "fast"; "@read");
    first_key, last_key and step locate its keys (0, 0, 0: none; a
    negative last_key counts from the end).
    """

    handler: Handler
    arity: int
    flags: tuple[str, ...] = ()
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    categories: tuple[str, ...] = ()
    #: A container's subcommands: name (lower case) -> (handler, arity
    #: counting the container's name). The handler above then runs only
    #: for the bare container (COMMAND with no subcommand).
    subcommands: Optional[dict[bytes, tuple[Handler, int]]] = None


_READ1 = (("readonly", "fast"), 1, 1, 1, ("@read", "@string", "@fast"))
_WRITE1 = (("write", "denyoom", "fast"), 1, 1, 1, ("@write", "@string", "@fast"))
_TTL_WRITE = (("write", "fast"), 1, 1, 1, ("@keyspace", "@write", "@fast"))
_TTL_READ = (("readonly", "fast"), 1, 1, 1, ("@keyspace", "@read", "@fast"))
_CONN = ("loading", "stale", "fast")
_HWRITE = (("write", "denyoom", "fast"), 1, 1, 1, ("@write", "@hash", "@fast"))
_HREAD = (("readonly", "fast"), 1, 1, 1, ("@read", "@hash", "@fast"))
_LWRITE = (("write", "denyoom", "fast"), 1, 1, 1, ("@write", "@list", "@fast"))
_SWRITE = (("write", "denyoom", "fast"), 1, 1, 1, ("@write", "@set", "@fast"))
_SREAD = (("readonly", "fast"), 1, 1, 1, ("@read", "@set", "@fast"))
_BARE = ("noscript", "loading", "stale", "fast", "no_auth", "allow_busy")

#: name (lower case) -> Command. Flags, key positions and categories are
#: redis-server 7.0's (COMMAND INFO), so clients that read them see Redis.
COMMANDS: dict[bytes, Command] = {
    b"ping": Command(cmd_ping, -1, ("fast",), categories=("@fast", "@connection")),
    b"echo": Command(cmd_echo, 2, ("fast",), categories=("@fast", "@connection")),
    b"quit": Command(cmd_quit, -1, _BARE, categories=("@fast", "@connection")),
    b"select": Command(cmd_select, 2, _CONN, categories=("@fast", "@connection")),
    b"hello": Command(cmd_hello, -1, _BARE, categories=("@fast", "@connection")),
    b"client": Command(_no_subcommand, -2, categories=("@slow",), subcommands=CLIENT_SUBCOMMANDS),
    b"multi": Command(cmd_multi, 1, ("noscript", "loading", "stale", "fast", "allow_busy"),
                      categories=("@fast", "@transaction")),
    b"exec": Command(cmd_exec, 1, ("noscript", "loading", "stale", "skip_slowlog"),
                     categories=("@slow", "@transaction")),
    b"discard": Command(cmd_discard, 1, ("noscript", "loading", "stale", "fast", "allow_busy"),
                        categories=("@fast", "@transaction")),
    b"watch": Command(cmd_watch, -2, ("noscript", "loading", "stale", "fast", "allow_busy"),
                      1, -1, 1, ("@fast", "@transaction")),
    b"unwatch": Command(cmd_unwatch, 1, ("noscript", "loading", "stale", "fast", "allow_busy"),
                        categories=("@fast", "@transaction")),
    b"get": Command(cmd_get, 2, *_READ1),
    b"setnx": Command(cmd_setnx, 3, *_WRITE1),
    b"setex": Command(cmd_setex, 4, ("write", "denyoom"), 1, 1, 1, ("@write", "@string", "@slow")),
    b"psetex": Command(cmd_psetex, 4, ("write", "denyoom"), 1, 1, 1, ("@write", "@string", "@slow")),
    b"getset": Command(cmd_getset, 3, *_WRITE1),
    b"getdel": Command(cmd_getdel, 2, ("write", "fast"), 1, 1, 1, ("@write", "@string", "@fast")),
    b"msetnx": Command(cmd_msetnx, -3, ("write", "denyoom"), 1, -1, 2, ("@write", "@string", "@slow")),
    b"unlink": Command(cmd_del, -2, ("write", "fast"), 1, -1, 1, ("@keyspace", "@write", "@fast")),
    b"touch": Command(cmd_touch, -2, ("readonly", "fast"), 1, -1, 1, ("@keyspace", "@read", "@fast")),
    b"rename": Command(cmd_rename, 3, ("write",), 1, 2, 1, ("@keyspace", "@write", "@slow")),
    b"renamenx": Command(cmd_renamenx, 3, ("write", "fast"), 1, 2, 1, ("@keyspace", "@write", "@fast")),
    b"lset": Command(cmd_lset, 4, ("write", "denyoom"), 1, 1, 1, ("@write", "@list", "@slow")),
    b"ltrim": Command(cmd_ltrim, 4, ("write",), 1, 1, 1, ("@write", "@list", "@slow")),
    b"type": Command(cmd_type, 2, ("readonly", "fast"), 1, 1, 1, ("@keyspace", "@read", "@fast")),
    b"hset": Command(cmd_hset, -4, *_HWRITE),
    b"hmset": Command(cmd_hmset, -4, *_HWRITE),
    b"hsetnx": Command(cmd_hsetnx, 4, *_HWRITE),
    b"hget": Command(cmd_hget, 3, *_HREAD),
    b"hmget": Command(cmd_hmget, -3, *_HREAD),
    b"hgetall": Command(cmd_hgetall, 2, ("readonly",), 1, 1, 1, ("@read", "@hash", "@slow")),
    b"hkeys": Command(cmd_hkeys, 2, ("readonly",), 1, 1, 1, ("@read", "@hash", "@slow")),
    b"hvals": Command(cmd_hvals, 2, ("readonly",), 1, 1, 1, ("@read", "@hash", "@slow")),
    b"hdel": Command(cmd_hdel, -3, ("write", "fast"), 1, 1, 1, ("@write", "@hash", "@fast")),
    b"hexists": Command(cmd_hexists, 3, *_HREAD),
    b"hlen": Command(cmd_hlen, 2, *_HREAD),
    b"hstrlen": Command(cmd_hstrlen, 3, *_HREAD),
    b"hincrby": Command(cmd_hincrby, 4, *_HWRITE),
    b"lpush": Command(cmd_lpush, -3, *_LWRITE),
    b"rpush": Command(cmd_rpush, -3, *_LWRITE),
    b"lpushx": Command(cmd_lpushx, -3, *_LWRITE),
    b"rpushx": Command(cmd_rpushx, -3, *_LWRITE),
    b"lpop": Command(cmd_lpop, -2, ("write", "fast"), 1, 1, 1, ("@write", "@list", "@fast")),
    b"rpop": Command(cmd_rpop, -2, ("write", "fast"), 1, 1, 1, ("@write", "@list", "@fast")),
    b"llen": Command(cmd_llen, 2, ("readonly", "fast"), 1, 1, 1, ("@read", "@list", "@fast")),
    b"lrange": Command(cmd_lrange, 4, ("readonly",), 1, 1, 1, ("@read", "@list", "@slow")),
    b"lindex": Command(cmd_lindex, 3, ("readonly",), 1, 1, 1, ("@read", "@list", "@slow")),
    b"sadd": Command(cmd_sadd, -3, *_SWRITE),
    b"srem": Command(cmd_srem, -3, ("write", "fast"), 1, 1, 1, ("@write", "@set", "@fast")),
    b"smembers": Command(cmd_smembers, 2, ("readonly",), 1, 1, 1, ("@read", "@set", "@slow")),
    b"sismember": Command(cmd_sismember, 3, *_SREAD),
    b"smismember": Command(cmd_smismember, -3, *_SREAD),
    b"scard": Command(cmd_scard, 2, *_SREAD),
    b"set": Command(cmd_set, -3, ("write", "denyoom"), 1, 1, 1, ("@write", "@string", "@slow")),
    b"del": Command(cmd_del, -2, ("write",), 1, -1, 1, ("@keyspace", "@write", "@slow")),
    b"exists": Command(cmd_exists, -2, ("readonly", "fast"), 1, -1, 1, ("@keyspace", "@read", "@fast")),
    b"incr": Command(cmd_incr, 2, *_WRITE1),
    b"decr": Command(cmd_decr, 2, *_WRITE1),
    b"incrby": Command(cmd_incrby, 3, *_WRITE1),
    b"decrby": Command(cmd_decrby, 3, *_WRITE1),
    b"mget": Command(cmd_mget, -2, ("readonly", "fast"), 1, -1, 1, ("@read", "@string", "@fast")),
    b"mset": Command(cmd_mset, -3, ("write", "denyoom"), 1, -1, 2, ("@write", "@string", "@slow")),
    b"append": Command(cmd_append, 3, *_WRITE1),
    b"strlen": Command(cmd_strlen, 2, *_READ1),
    b"expire": Command(cmd_expire, -3, *_TTL_WRITE),
    b"pexpire": Command(cmd_pexpire, -3, *_TTL_WRITE),
    b"ttl": Command(cmd_ttl, 2, *_TTL_READ),
    b"pttl": Command(cmd_pttl, 2, *_TTL_READ),
    b"persist": Command(cmd_persist, 2, *_TTL_WRITE),
    b"keys": Command(cmd_keys, 2, ("readonly",), categories=("@keyspace", "@read", "@slow", "@dangerous")),
    b"scan": Command(cmd_scan, -2, ("readonly",), categories=("@keyspace", "@read", "@slow")),
    b"dbsize": Command(cmd_dbsize, 1, ("readonly", "fast"), categories=("@keyspace", "@read", "@fast")),
    b"flushdb": Command(cmd_flush, -1, ("write",), categories=("@keyspace", "@write", "@slow", "@dangerous")),
    b"flushall": Command(cmd_flush, -1, ("write",), categories=("@keyspace", "@write", "@slow", "@dangerous")),
    b"info": Command(cmd_info, -1, ("loading", "stale"), categories=("@slow", "@dangerous")),
    b"config": Command(_no_subcommand, -2, categories=("@slow",), subcommands=CONFIG_SUBCOMMANDS),
    b"command": Command(cmd_command, -1, ("loading", "stale"), categories=("@slow", "@connection"),
                        subcommands=COMMAND_SUBCOMMANDS),
}

from .more import MORE_COMMANDS  # noqa: E402 (those modules import this one)
COMMANDS.update(MORE_COMMANDS)


def _arity_ok(arity: int, argc: int) -> bool:
    return argc == arity if arity >= 0 else argc >= -arity


def unknown_command(args: list[bytes]) -> bytes:
    """Redis 7.0's text: the name and the first arguments, each quoted and
    followed by a space, cut once 128 bytes of arguments are quoted."""
    quoted = b""
    for arg in args[1:]:
        if len(quoted) >= 128:
            break
        quoted += b"'%s' " % _cstr(arg)[: 128 - len(quoted)]
    name = _cstr(args[0])[:128]
    return _error(b"ERR unknown command '%s', with args beginning with: %s" % (name, quoted))


def resolve(args: list[bytes], table: dict[bytes, Command]) -> Handler | bytes:
    """The handler that runs args, or the error reply that rejects them
    (Redis's texts for an unknown command or subcommand and a wrong
    argument count). A rejected command never runs, and Redis does not
    count it in total_commands_processed."""
    entry = table.get(args[0].lower())
    if entry is None:
        return unknown_command(args)
    arity = entry.arity
    if len(args) != arity if arity >= 0 else len(args) < -arity:
        return _error(b"ERR wrong number of arguments for '%s' command" % args[0].lower())
    subcommands = entry.subcommands
    if subcommands is None or len(args) == 1:
        return entry.handler
    name = args[0].lower()
    sub = args[1].lower()
    found = subcommands.get(sub)
    if found is None:
        return _error(b"ERR unknown subcommand '%s'. Try %s HELP."
                      % (_cstr(args[1])[:128], name.upper()))
    handler, arity = found
    if not _arity_ok(arity, len(args)):
        return _error(b"ERR wrong number of arguments for '%s|%s' command" % (name, sub))
    return handler


def execute(session: Session, args: list[bytes], table: dict[bytes, Command] = COMMANDS) -> bytes:
    """Run one command (name first, as RespRequestDecoder yields it) from
    ``table`` and return its reply encoded for ``session.protocol``. A
    command that runs (is not rejected, see :func:`resolve`) is counted in
    the host's ``commands_processed``.

    ValueError for an empty command: the request decoder never yields one
    (Redis skips them), so an empty list is the caller's mistake.
    """
    if not args:
        raise ValueError("a command has at least its name")
    handler = resolve(args, table)
    refused = intercept(session, args, handler)
    if refused is not None:
        return refused
    assert not isinstance(handler, bytes)
    reply = call(handler, session, args)
    if session.host is not None:
        session.host.commands_processed += 1
    return reply
