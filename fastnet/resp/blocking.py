"""Blocking list pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH (and LMOVE and
RPOPLPUSH, their non-blocking forms), as Redis 7.0.

A pop that finds every key missing blocks its client: the client is
queued on each key (``Store.waiting``, arrival order) and a timer is armed
(timeout in float seconds, 0 = forever). A key that is created while
clients wait on it is reported in the server's ready queue (Store.set);
after each command the server calls :func:`serve_ready`, which hands the
new elements to the waiting clients in arrival order (the first client
waiting gets the first element), each answered through the push path as
Redis's handleClientsBlockedOnKeys does. The timeout's reply is a null
array. Inside MULTI (and without a connection, sans-IO) nothing blocks: a
missing key answers at once as a timeout would (BLMOVE: a null).

While blocked a client runs nothing else: the server (RespSession) keeps
its later commands (at most client-query-buffer-limit bytes of them) and
runs them once it is answered; it goes on reading, so a client that leaves
while blocked is dropped at once, as in Redis.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable, Optional

from ..codec._common import INT64_MAX, INT64_MIN
from ..codec.resp._encode import encode_array, encode_bulk
from .floats import LongDouble
from .commands import SYNTAX_ERROR, WRONGTYPE, Command, Session, _error, _null, _option
from .store import Store

__all__ = ["BLOCKING_COMMANDS", "Blocked", "serve_ready", "time_out", "unblock"]

def parse_timeout(arg: bytes) -> int | bytes:
    """A blocking timeout in ms (0: forever) as Redis 7.0 reads it on
    x86-64, or the error: string2ld (strtold), the product with 1000.0 in
    long double rounded up (ceill), then the cast to long long. So -1e-9
    and even -0.001 (just under a thousandth as a long double) are 0,
    forever, and 1e-4940 is 1 ms; an infinity or a product past the range
    casts to INT64_MIN, negative."""
    parsed = LongDouble.parse(arg)
    if parsed is None:
        return _error(b"ERR timeout is not a float or out of range")
    product = None if isinstance(parsed, float) else parsed.times(1000)
    ms = INT64_MIN if product is None else math.ceil(product.value)
    if not INT64_MIN <= ms <= INT64_MAX:
        ms = INT64_MIN  # x86-64's answer for a value out of range
    if ms < 0:
        return _error(b"ERR timeout is negative")
    return ms


class Blocked:
    """What a blocked client waits for: keys of one database, where it pops
    (``left``), and for BLMOVE where the element goes (``target``,
    ``target_left``); ``timer`` its timeout's handle, if any."""

    __slots__ = ("store", "keys", "left", "target", "target_left", "timer")

    def __init__(self, store: Store, keys: list[bytes], left: bool,
                 target: Optional[bytes] = None, target_left: bool = True) -> None:
        self.store = store
        self.keys = keys
        self.left = left
        self.target = target
        self.target_left = target_left
        self.timer: Any = None


def _list(store: Store, key: bytes) -> Any:
    """The list under key (None if missing); WrongType raised by the caller's check."""
    value = store.lookup(key)
    if value is None or type(value) is deque:
        return value
    return False  # another type


def _can_block(session: Session) -> bool:
    return session.conn is not None and not session.deny_blocking and session.host is not None


def _move(session: Session, store: Store, source: bytes, items: deque, target: bytes,
          left: bool, target_left: bool) -> bytes:
    """Pop from items (the list under source) and push onto target (made if
    missing): the element's reply, or WRONGTYPE (nothing moved) if target
    holds another type."""
    destination = store.lookup(target)
    if destination is not None and type(destination) is not deque:
        return WRONGTYPE
    value = items.popleft() if left else items.pop()
    if destination is None:  # never source itself: it holds items
        destination = deque()
        store.set(target, destination)
    (destination.appendleft if target_left else destination.append)(value)
    store.modified(target)
    if not items:
        store.delete(source)
    elif source != target:
        store.modified(source)
    return encode_bulk(value)


def _block(session: Session, blocked: Blocked, timeout_ms: int) -> bytes:
    """Queue session on its keys and arm its timeout: no reply for now."""
    store = blocked.store
    for key in dict.fromkeys(blocked.keys):
        store.waiting.setdefault(key, deque()).append(session)
    session.blocked = blocked
    if timeout_ms:
        host = session.host
        assert host is not None
        blocked.timer = host.later(timeout_ms / 1000, lambda: time_out(session))
    return b""


def _pop(session: Session, args: list[bytes], left: bool) -> bytes:
    timeout = parse_timeout(args[-1])
    if isinstance(timeout, bytes):
        return timeout
    store = session.store
    keys = args[1:-1]
    for key in keys:
        items = _list(store, key)
        if items is False:
            return WRONGTYPE
        if items:
            value = items.popleft() if left else items.pop()
            if items:
                store.modified(key)
            else:
                store.delete(key)
            return encode_array([key, value], session.protocol)
    if not _can_block(session):
        return b"_\r\n" if session.protocol == 3 else b"*-1\r\n"
    return _block(session, Blocked(store, keys, left), timeout)


def cmd_blpop(session: Session, args: list[bytes]) -> bytes:
    """BLPOP key [key ...] timeout: [key, element] from the first non-empty
    list, else wait for one (a null array at the timeout)."""
    return _pop(session, args, True)


def cmd_brpop(session: Session, args: list[bytes]) -> bytes:
    """BRPOP key [key ...] timeout: as BLPOP, from the tail."""
    return _pop(session, args, False)


def _side(arg: bytes) -> Optional[bool]:
    word = _option(arg)
    return True if word == b"left" else False if word == b"right" else None


def _lmove(session: Session, source: bytes, target: bytes, left: bool, target_left: bool,
           timeout: Optional[int]) -> bytes:
    store = session.store
    items = _list(store, source)
    if items is False:
        return WRONGTYPE
    if items:
        return _move(session, store, source, items, target, left, target_left)
    if timeout is None or not _can_block(session):
        return _null(session)
    return _block(session, Blocked(store, [source], left, target, target_left), timeout)


def cmd_lmove(session: Session, args: list[bytes]) -> bytes:
    """LMOVE source destination LEFT|RIGHT LEFT|RIGHT: the moved element, or null."""
    left, target_left = _side(args[3]), _side(args[4])
    if left is None or target_left is None:
        return SYNTAX_ERROR
    return _lmove(session, args[1], args[2], left, target_left, None)


def cmd_blmove(session: Session, args: list[bytes]) -> bytes:
    """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout: LMOVE, waiting
    for an element while source is missing."""
    left, target_left = _side(args[3]), _side(args[4])
    if left is None or target_left is None:
        return SYNTAX_ERROR
    timeout = parse_timeout(args[5])
    if isinstance(timeout, bytes):
        return timeout
    return _lmove(session, args[1], args[2], left, target_left, timeout)


def cmd_rpoplpush(session: Session, args: list[bytes]) -> bytes:
    """RPOPLPUSH source destination: LMOVE source destination RIGHT LEFT."""
    return _lmove(session, args[1], args[2], False, True, None)


def cmd_brpoplpush(session: Session, args: list[bytes]) -> bytes:
    """BRPOPLPUSH source destination timeout: BLMOVE ... RIGHT LEFT timeout."""
    timeout = parse_timeout(args[3])
    if isinstance(timeout, bytes):
        return timeout
    return _lmove(session, args[1], args[2], False, True, timeout)


# --- waking -------------------------------------------------------------------------


def unblock(session: Session) -> None:
    """Take session off every key it waits on and disarm its timer."""
    blocked = session.blocked
    if blocked is None:
        return
    session.blocked = None
    if blocked.timer is not None:
        blocked.timer.cancel()
    waiting = blocked.store.waiting
    for key in dict.fromkeys(blocked.keys):
        queue = waiting.get(key)
        if queue is not None:
            try:
                queue.remove(session)
            except ValueError:
                pass
            if not queue:
                del waiting[key]


def _answer(session: Session, reply: bytes) -> None:
    unblock(session)
    resume: Optional[Callable[[bytes], None]] = session.on_unblock
    if resume is not None:
        resume(reply)


def time_out(session: Session) -> None:
    """session's timeout passed: a null array (RESP3 null), as Redis."""
    if session.blocked is not None:
        _answer(session, b"_\r\n" if session.protocol == 3 else b"*-1\r\n")


def serve_ready(ready: deque[tuple[Store, bytes]]) -> None:
    """Hand the elements of keys that got a list to the clients waiting on
    them, first come first served, until each list or its waiters run out
    (Redis's serveClientsBlockedOnListKey). A BLMOVE whose destination
    holds another type is answered WRONGTYPE and its element stays."""
    while ready:
        store, key = ready.popleft()
        queue = store.waiting.get(key)
        while queue:
            items = _list(store, key)
            if not items:
                break  # gone again, or not a list: the waiters wait on
            session = queue[0]
            blocked = session.blocked
            assert blocked is not None
            if blocked.target is None:
                value = items.popleft() if blocked.left else items.pop()
                if items:
                    store.modified(key)
                else:
                    store.delete(key)
                reply = encode_array([key, value], session.protocol)
            else:
                reply = _move(session, store, key, items, blocked.target, blocked.left,
                              blocked.target_left)
            _answer(session, reply)
            queue = store.waiting.get(key)


_BLOCKING = ("write", "noscript", "blocking")
_CATEGORIES = ("@write", "@list", "@slow", "@blocking")

BLOCKING_COMMANDS: dict[bytes, Command] = {
    b"blpop": Command(cmd_blpop, -3, _BLOCKING, 1, -2, 1, _CATEGORIES),
    b"brpop": Command(cmd_brpop, -3, _BLOCKING, 1, -2, 1, _CATEGORIES),
    b"blmove": Command(cmd_blmove, 6, ("write", "denyoom", "noscript", "blocking"), 1, 2, 1,
                       _CATEGORIES),
    b"brpoplpush": Command(cmd_brpoplpush, 4, ("write", "denyoom", "noscript", "blocking"), 1, 2, 1,
                           _CATEGORIES),
    b"lmove": Command(cmd_lmove, 5, ("write", "denyoom"), 1, 2, 1, ("@write", "@list", "@slow")),
    b"rpoplpush": Command(cmd_rpoplpush, 3, ("write", "denyoom"), 1, 2, 1, ("@write", "@list", "@slow")),
}
