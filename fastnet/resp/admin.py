"""Commands that administer the server: CLIENT LIST/INFO/KILL/HELP, CONFIG
SET/HELP, MEMORY USAGE/HELP, AUTH; and INFO's Memory, CPU and Replication
sections. Replies and error texts are Redis 7.0's; the figures are this
process's own (RSS, rusage), since Python's allocator cannot be asked what
the keyspace alone holds."""
from __future__ import annotations

import os
import resource
import sys
import time
from typing import Any, Optional

from ..codec.resp._encode import encode_integer, encode_verbatim
from ..errors import EngineError
from .commands import (CLIENT_SUBCOMMANDS, CONFIG_SUBCOMMANDS, NOT_INTEGER, OK, SYNTAX_ERROR,
                       WRONGPASS, Command, Handler, InfoSection, Session, _cstr, _error, _int, _no_subcommand,
                       _null, _option)
from .pubsub import help_reply

__all__ = ["ADMIN_COMMANDS", "client_line", "cpu_section", "memory_section",
           "parse_output_limits", "replication_section"]


# --- CLIENT -------------------------------------------------------------------------


def _address(conn: Any) -> str:
    try:
        host, port = conn.peer[:2]
    except (OSError, ValueError, TypeError):
        return "?:0"
    return f"{host}:{port}"


def _kind(session: Session) -> bytes:
    """CLIENT LIST's TYPE: pubsub for a subscriber, normal otherwise."""
    return b"pubsub" if session.channels or session.patterns else b"normal"


def client_line(session: Session, now: float) -> bytes:
    """One CLIENT LIST line (Redis's fields; the buffer figures fastnet
    does not keep per client are 0, omem is the output the engine holds)."""
    conn = session.conn
    fd, omem, laddr, addr = -1, 0, "?:0", "?:0"
    if conn is not None and not conn.closed:
        engine = conn.server.engine
        try:
            fd, omem = engine.fileno(conn.id), engine.output_size(conn.id)
        except EngineError:
            pass  # gone, its close not yet reported: listed as it was
        laddr = f"{conn.listener.host}:{conn.listener.port}"
        addr = _address(conn)
    flags = ("P" if _kind(session) == b"pubsub" else "") + ("x" if session.multi is not None else "")
    flags += "b" if session.blocked is not None else ""
    fields = [
        ("id", session.id), ("addr", addr), ("laddr", laddr), ("fd", fd),
        ("name", (session.name or b"").decode("latin-1")),
        ("age", int(now - session.created)), ("idle", int(now - session.last_active)),
        ("flags", flags or "N"), ("db", session.db), ("sub", len(session.channels)),
        ("psub", len(session.patterns)), ("ssub", 0),
        ("multi", -1 if session.multi is None else len(session.multi)),
        ("qbuf", 0), ("qbuf-free", 0), ("argv-mem", 0), ("multi-mem", 0), ("rbs", 0), ("rbp", 0),
        ("obl", 0), ("oll", 0), ("omem", omem), ("tot-mem", omem), ("events", "r"),
        ("cmd", session.last_command.lower().decode("latin-1")), ("user", "default"),
        ("redir", -1), ("resp", session.protocol),
    ]
    return " ".join(f"{k}={v}" for k, v in fields).encode("latin-1") + b"\n"


def _text(session: Session, text: bytes) -> bytes:
    return encode_verbatim(text, b"txt", session.protocol)


def client_list(session: Session, args: list[bytes]) -> bytes:
    """CLIENT LIST [TYPE type] [ID id ...]: one line per client."""
    clients = list(session.shared.clients.values()) or [session]
    if len(args) > 2:
        option = _option(args[2])
        if option == b"type" and len(args) == 4:
            kind = _option(args[3])
            if kind not in (b"normal", b"master", b"replica", b"slave", b"pubsub"):
                return _error(b"ERR Unknown client type '%s'" % _cstr(args[3]), trim=True)
            clients = [c for c in clients if _kind(c) == kind]
        elif option == b"id" and len(args) > 3:
            ids = [_int(arg) for arg in args[3:]]
            if any(i is None or i < 1 for i in ids):
                return _error(b"ERR Invalid client ID")
            clients = [c for c in clients if c.id in ids]
        else:
            return SYNTAX_ERROR
    now = time.monotonic()
    return _text(session, b"".join(client_line(c, now) for c in clients))


def client_info(session: Session, args: list[bytes]) -> bytes:
    """CLIENT INFO: this client's CLIENT LIST line."""
    return _text(session, client_line(session, time.monotonic()))


def _kill(session: Session, victim: Session) -> None:
    if victim is session:
        session.closing = True  # after this reply, as Redis's CLOSE_AFTER_REPLY
    elif victim.conn is not None:
        victim.conn.close()


def client_kill(session: Session, args: list[bytes]) -> bytes:
    """CLIENT KILL ip:port (the old form: +OK), or CLIENT KILL with
    ID/ADDR/LADDR/TYPE/USER/SKIPME filters (how many were killed)."""
    clients = list(session.shared.clients.values())
    if len(args) == 3:
        wanted = args[2].decode("latin-1")
        for victim in clients:
            if victim.conn is not None and _address(victim.conn) == wanted:
                _kill(session, victim)
                return OK
        return _error(b"ERR No such client")
    if len(args) % 2:
        return SYNTAX_ERROR
    skipme = True
    for index in range(2, len(args), 2):
        option, value = _option(args[index]), args[index + 1]
        if option == b"id":
            number = _int(value)
            if number is None or number < 1:
                return _error(b"ERR client-id should be greater than 0")
            clients = [c for c in clients if c.id == number]
        elif option == b"type":
            kind = _option(value)
            if kind not in (b"normal", b"master", b"replica", b"slave", b"pubsub"):
                return _error(b"ERR Unknown client type '%s'" % _cstr(value), trim=True)
            clients = [c for c in clients if _kind(c) == kind]
        elif option in (b"addr", b"laddr"):
            text = value.decode("latin-1")
            clients = [c for c in clients if c.conn is not None and text == (
                _address(c.conn) if option == b"addr"
                else f"{c.conn.listener.host}:{c.conn.listener.port}")]
        elif option == b"user":
            if value != b"default":
                return _error(b"ERR No such user '%s'" % _cstr(value), trim=True)
        elif option == b"skipme" and _option(value) in (b"yes", b"no"):
            skipme = _option(value) == b"yes"
        else:
            return SYNTAX_ERROR
    killed = 0
    for victim in clients:
        if victim is session and skipme:
            continue
        _kill(session, victim)
        killed += 1
    return encode_integer(killed)


#: CLIENT HELP's lines (Redis 7.0's text: clients show it as it is).
CLIENT_HELP = [
    b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CACHING (YES|NO)",
    b"    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    b"GETREDIR",
    b"    Return the client ID we are redirecting to when tracking is enabled.",
    b"GETNAME",
    b"    Return the name of the current connection.",
    b"ID",
    b"    Return the ID of the current connection.",
    b"INFO",
    b"    Return information about the current client connection.",
    b"KILL <ip:port>",
    b"    Kill connection made from <ip:port>.",
    b"KILL <option> <value> [<option> <value> [...]]",
    b"    Kill connections. Options are:",
    b"    * ADDR (<ip:port>|<unixsocket>:0)",
    b"      Kill connections made from the specified address",
    b"    * LADDR (<ip:port>|<unixsocket>:0)",
    b"      Kill connections made to specified local address",
    b"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    b"      Kill connections by type.",
    b"    * USER <username>",
    b"      Kill connections authenticated by <username>.",
    b"    * SKIPME (YES|NO)",
    b"      Skip killing current connection (default: yes).",
    b"LIST [options ...]",
    b"    Return information about client connections. Options:",
    b"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    b"      Return clients of specified type.",
    b"UNPAUSE",
    b"    Stop the current client pause, resuming traffic.",
    b"PAUSE <timeout> [WRITE|ALL]",
    b"    Suspend all, or just write, clients for <timeout> milliseconds.",
    b"REPLY (ON|OFF|SKIP)",
    b"    Control the replies sent to the current connection.",
    b"SETNAME <name>",
    b"    Assign the name <name> to the current connection.",
    b"UNBLOCK <clientid> [TIMEOUT|ERROR]",
    b"    Unblock the specified blocked client.",
    b"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    b"         [OPTIN] [OPTOUT] [NOLOOP]",
    b"    Control server assisted client side caching.",
    b"TRACKINGINFO",
    b"    Report tracking status for the current connection.",
    b"NO-EVICT (ON|OFF)",
    b"    Protect current client connection from eviction.",
    b"HELP",
    b"    Prints this help.",
]

CONFIG_HELP = [
    b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"GET <pattern>",
    b"    Return parameters matching the glob-like <pattern> and their values.",
    b"SET <directive> <value>",
    b"    Set the configuration <directive> to <value>.",
    b"RESETSTAT",
    b"    Reset statistics reported by the INFO command.",
    b"REWRITE",
    b"    Rewrite the configuration file.",
    b"HELP",
    b"    Prints this help.",
]

MEMORY_HELP = [
    b"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DOCTOR",
    b"    Return memory problems reports.",
    b"MALLOC-STATS",
    b"    Return internal statistics report from the memory allocator.",
    b"PURGE",
    b"    Attempt to purge dirty pages for reclamation by the allocator.",
    b"STATS",
    b"    Return information about the memory usage of the server.",
    b"USAGE <key> [SAMPLES <count>]",
    b"    Return memory in bytes used by <key> and its value. Nested values are",
    b"    sampled up to <count> times (default: 5, 0 means sample all).",
    b"HELP",
    b"    Prints this help.",
]


def client_help(session: Session, args: list[bytes]) -> bytes:
    """CLIENT HELP: what CLIENT's subcommands do."""
    return help_reply(CLIENT_HELP)


def config_help(session: Session, args: list[bytes]) -> bytes:
    """CONFIG HELP: what CONFIG's subcommands do."""
    return help_reply(CONFIG_HELP)


def memory_help(session: Session, args: list[bytes]) -> bytes:
    """MEMORY HELP: what MEMORY's subcommands do."""
    return help_reply(MEMORY_HELP)


# --- CONFIG SET ---------------------------------------------------------------------

_UNITS = {b"": 1, b"b": 1, b"k": 1000, b"kb": 1024, b"m": 1000**2, b"mb": 1024**2,
          b"g": 1000**3, b"gb": 1024**3}


def _memory(text: bytes) -> Optional[int]:
    """Redis's memtoull: digits and an optional unit (k = 1000, kb = 1024 ...)."""
    digits = text.rstrip(b"bBkKmMgG")
    unit = _UNITS.get(text[len(digits):].lower())
    if unit is None or not digits.isdigit():
        return None
    return int(digits) * unit


_CLASSES = {b"normal": "normal", b"slave": "replica", b"replica": "replica", b"pubsub": "pubsub"}


def parse_output_limits(value: bytes) -> dict[str, tuple[int, int, int]] | str:
    """client-output-buffer-limit's value (class hard soft seconds, ...) as
    limits by class, or the error text Redis gives for it."""
    words = value.split()
    if len(words) % 4:
        return "Wrong number of arguments in buffer limit configuration."
    limits: dict[str, tuple[int, int, int]] = {}
    for index in range(0, len(words), 4):
        kind = _CLASSES.get(words[index].lower())
        if kind is None:
            return "Invalid client class specified in buffer limit configuration."
        hard, soft = _memory(words[index + 1]), _memory(words[index + 2])
        seconds = words[index + 3]
        if hard is None or soft is None or not seconds.lstrip(b"-").isdigit() or int(seconds) < 0:
            return "Error in hard, soft or soft_seconds setting in buffer limit configuration."
        limits[kind] = (hard, soft, int(seconds))
    return limits


def format_output_limits(limits: dict[str, tuple[int, int, int]]) -> bytes:
    """CONFIG GET client-output-buffer-limit's value."""
    names = (("normal", "normal"), ("slave", "replica"), ("pubsub", "pubsub"))
    return " ".join(f"{name} {' '.join(map(str, limits[kind]))}" for name, kind in names).encode()


def config_set(session: Session, args: list[bytes]) -> bytes:
    """CONFIG SET parameter value [parameter value ...]: all or none applied."""
    if len(args) % 2:
        return _error(b"ERR wrong number of arguments for 'config|set' command")
    host = session.host
    settable = host.settable() if host is not None else {}
    pairs: dict[bytes, bytes] = {}
    for index in range(2, len(args), 2):
        name = args[index].lower()
        if name not in settable:
            return _error(b"ERR Unknown option or number of arguments for CONFIG SET - '%s'"
                          % _cstr(args[index]), trim=True)
        if name in pairs:
            return _error(b"ERR CONFIG SET failed (possibly related to argument '%s') - "
                          b"duplicate parameter" % name)
        pairs[name] = args[index + 1]
    assert host is not None or not pairs
    parsed: dict[bytes, Any] = {}
    for name, value in pairs.items():
        result = settable[name](value)
        if isinstance(result, str):
            return _error(b"ERR CONFIG SET failed (possibly related to argument '%s') - %s"
                          % (name, result.encode()))
        parsed[name] = result
    for name, value in parsed.items():
        host.config_set(name, value)  # type: ignore[union-attr]
    return OK


def parse_bounded(low: int, high: int) -> Any:
    """A parser of an integer setting between low and high (Redis's texts)."""
    def parse(value: bytes) -> int | str:
        number = _int(value)
        if number is None:
            return "argument couldn't be parsed into an integer"
        if not low <= number <= high:
            return f"argument must be between {low} and {high} inclusive"
        return number
    return parse


def parse_yes_no(value: bytes) -> bool | str:
    """A yes/no setting."""
    word = value.lower()
    if word not in (b"yes", b"no"):
        return "argument must be 'yes' or 'no'"
    return word == b"yes"


# --- MEMORY USAGE -------------------------------------------------------------------

#: Rough per-object costs (bytes) in the spirit of Redis's figures: a key's
#: dict entry and object header, and each element's container slot.
_KEY_OVERHEAD = 56
_ELEMENT_OVERHEAD = 16


def value_size(value: Any, samples: int) -> int:
    """An estimate of what a value costs: exact for strings, from up to
    ``samples`` elements (0: all) for containers, scaled to their size."""
    if type(value) is bytes:
        return sys.getsizeof(value)
    size = sys.getsizeof(value)
    count = len(value)
    if not count:
        return size
    items: Any = value.items() if type(value) is dict else value
    taken = 0
    total = 0
    for item in items:
        if samples and taken >= samples:
            break
        parts = item if isinstance(item, tuple) else (item,)
        total += sum(sys.getsizeof(part) if type(part) is bytes else 8 for part in parts)
        total += _ELEMENT_OVERHEAD
        taken += 1
    return size + total * count // taken


def memory_usage(session: Session, args: list[bytes]) -> bytes:
    """MEMORY USAGE key [SAMPLES count]: bytes the key and its value take."""
    samples = 5
    if len(args) > 3:
        if len(args) != 5 or _option(args[3]) != b"samples":
            return SYNTAX_ERROR
        parsed = _int(args[4])
        if parsed is None:
            return NOT_INTEGER
        samples = parsed
    value = session.store.lookup(args[2])
    if value is None:
        return _null(session)
    return encode_integer(_KEY_OVERHEAD + sys.getsizeof(args[2]) + value_size(value, samples))


MEMORY_SUBCOMMANDS: dict[bytes, tuple[Handler, int]] = {
    b"usage": (memory_usage, -3),
    b"help": (memory_help, 2),
}


# --- AUTH ---------------------------------------------------------------------------

def cmd_auth(session: Session, args: list[bytes]) -> bytes:
    """AUTH [username] password: authenticate this client."""
    if len(args) > 3:
        return SYNTAX_ERROR
    if len(args) == 2:
        if session.shared.requirepass is None:
            return _error(b"ERR AUTH <password> called without any password configured for "
                          b"the default user. Are you sure your configuration is correct?")
        user, password = b"default", args[1]
    else:
        user, password = args[1], args[2]
    if not session.shared.authenticates(user, password):
        return WRONGPASS
    session.authenticated = True
    return OK


# --- INFO sections ------------------------------------------------------------------


def _human(size: float) -> str:
    """Redis's bytesToHuman: 1.58M, 900B."""
    for unit in ("B", "K", "M", "G", "T", "P"):
        if size < 1024 or unit == "P":
            return f"{int(size)}B" if unit == "B" else f"{size:.2f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _rss() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_section() -> InfoSection:
    """INFO Memory: this process's RSS (used_memory too: Python's allocator
    keeps no total of its own) and its peak."""
    rss = _rss()
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, rss)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return ("Memory", [
        ("used_memory", rss), ("used_memory_human", _human(rss)),
        ("used_memory_rss", rss), ("used_memory_rss_human", _human(rss)),
        ("used_memory_peak", peak), ("used_memory_peak_human", _human(peak)),
        ("used_memory_peak_perc", f"{100 * rss / peak:.2f}%"),
        ("total_system_memory", total), ("total_system_memory_human", _human(total)),
        ("maxmemory", 0), ("maxmemory_human", "0B"), ("maxmemory_policy", "noeviction"),
        ("mem_fragmentation_ratio", "1.00"), ("mem_allocator", "libc"),
    ])


def cpu_section() -> InfoSection:
    """INFO CPU: this process's and its children's CPU seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ("CPU", [
        ("used_cpu_sys", f"{own.ru_stime:.6f}"), ("used_cpu_user", f"{own.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
    ])


def replication_section(replid: str) -> InfoSection:
    """INFO Replication: a master without replicas, as redis-cli expects."""
    return ("Replication", [
        ("role", "master"), ("connected_slaves", 0), ("master_failover_state", "no-failover"),
        ("master_replid", replid), ("master_replid2", "0" * 40), ("master_repl_offset", 0),
        ("second_repl_offset", -1), ("repl_backlog_active", 0), ("repl_backlog_size", 1048576),
        ("repl_backlog_first_byte_offset", 0), ("repl_backlog_histlen", 0),
    ])


def blocked_count(session: Session) -> int:
    """How many clients are blocked (INFO's blocked_clients)."""
    return sum(c.blocked is not None for c in session.shared.clients.values())


CLIENT_SUBCOMMANDS.update({
    b"list": (client_list, -2),
    b"info": (client_info, 2),
    b"kill": (client_kill, -3),
    b"help": (client_help, 2),
})
CONFIG_SUBCOMMANDS.update({
    b"set": (config_set, -4),
    b"help": (config_help, 2),
})

ADMIN_COMMANDS: dict[bytes, Command] = {
    b"auth": Command(cmd_auth, -2, ("noscript", "loading", "stale", "fast", "no_auth", "allow_busy"),
                     categories=("@fast", "@connection")),
    b"memory": Command(_no_subcommand, -2, categories=("@slow",), subcommands=MEMORY_SUBCOMMANDS),
}
