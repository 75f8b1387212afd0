"""The keyspace: bytes -> a value with optional per-key expiry.

A value is a string (bytes), a hash (dict of bytes to bytes), a list (a
deque of bytes), a set (fastnet.resp.members.Members: bytes, indexable)
or a sorted set (fastnet.resp.sortedset.SortedSet). :meth:`Store.get` is for string
commands: it raises :class:`WrongType` on any other type, which the command
layer answers with Redis's WRONGTYPE error; :meth:`Store.lookup` returns any
type. A command that changes a container in place calls
:meth:`Store.modified` (WATCH sees it) and deletes the key once it is empty.

Deadlines are milliseconds on a monotonic clock (``clock``), so a wall-clock
step never expires or revives keys; ``wall_clock`` (Unix ms) is only read to
convert absolute times (EXAT/PXAT) and to reproduce Redis's overflow checks.
Both are injectable for tests.

Expiry is lazy (every read of a key first drops it if its deadline passed)
plus :meth:`Store.active_expire`, which visits at most ``budget`` keys with a
deadline per call, round-robin over a dense list: a caller can run it from a
timer without ever paying for a full scan of a large keyspace.

SCAN order: every key gets a sequence number when it is created (an
overwrite keeps it). The cursor is the next sequence number to visit, and
``_order`` lists (seq, key) by increasing seq, so a SCAN call is a bisect
plus COUNT steps. Deleted keys leave stale entries that are skipped and
compacted away once they outnumber the live ones; compaction keeps seq
values, so cursors stay valid. A key present for the whole iteration is
returned exactly once; a key created during it may or may not be.

WATCH: a :class:`Watcher` (one per client) registers keys with
:meth:`Store.watch`; every write of a watched key (set, a deadline set or
removed, delete, lazy or active expiry, a flush of a key held) marks its
watchers ``dirty``, as Redis's signalModifiedKey does, so EXEC can refuse.
"""
from __future__ import annotations

import bisect
import random
import time
from collections import deque
from typing import Any, Callable

__all__ = ["Store", "Watcher", "WrongType"]


class WrongType(Exception):
    """A command met a key holding another type (Redis's WRONGTYPE)."""


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Watcher:
    """One client's WATCHed keys (with the Store, the database, of each)
    and whether any was written since."""

    __slots__ = ("keys", "dirty")

    def __init__(self) -> None:
        self.keys: set[tuple["Store", bytes]] = set()
        self.dirty = False

    def unwatch(self) -> None:
        """Forget every watched key; the dirty flag is cleared (UNWATCH)."""
        for store, key in self.keys:
            watching = store._watchers.get(key)
            if watching is not None:
                watching.discard(self)
                if not watching:
                    del store._watchers[key]
        self.keys.clear()
        self.dirty = False

    def expire_due(self) -> None:
        """Expire the watched keys whose deadline passed: EXEC sees a key
        that expired since WATCH as changed, as Redis does."""
        for store, key in list(self.keys):
            store.exists(key)


class Store:
    """One Redis database of string values."""

    def __init__(
        self,
        clock: Callable[[], int] = _monotonic_ms,
        wall_clock: Callable[[], int] = _wall_ms,
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self._offset = wall_clock() - clock()
        self._data: dict[bytes, Any] = {}
        self._seq: dict[bytes, int] = {}
        self._order_seqs: list[int] = []
        self._order_keys: list[bytes] = []
        self._next_seq = 1
        self._deadlines: dict[bytes, int] = {}
        # Dense list of the keys with a deadline, for bounded active expiry.
        self._ttl_keys: list[bytes] = []
        self._ttl_pos: dict[bytes, int] = {}
        self._ttl_cursor = 0
        #: Keys removed because their deadline passed (INFO's expired_keys).
        self.expired = 0
        # WATCHed key -> the watchers of it (see the module's docstring).
        self._watchers: dict[bytes, set[Watcher]] = {}
        #: key -> the clients blocked on it, in arrival order (blocking.py).
        self.waiting: dict[bytes, deque[Any]] = {}
        #: Where keys that clients wait on are reported once they exist.
        self.ready: deque[tuple["Store", bytes]] = deque()
        #: Keys whose value Redis would hold in its general encoding though
        #: what it holds now would fit the compact one (OBJECT ENCODING): a
        #: string changed in place (raw), a hash or set converted while it
        #: was larger (hashtable). Any new value under the key clears it.
        self.big: set[bytes] = set()
        #: Keys whose string Redis made as text and never int-encoded
        #: (INCRBYFLOAT's result: embstr or raw by length, even "5"). Any
        #: new value under the key clears it, as for big.
        self.text: set[bytes] = set()

    # --- time ----------------------------------------------------------------

    def now(self) -> int:
        """The monotonic clock, in ms."""
        return self.clock()

    def unix_to_deadline(self, unix_ms: int) -> int:
        """A Unix time in ms as a deadline on the monotonic clock."""
        return unix_ms - self._wall_offset()

    def deadline_to_unix(self, deadline: int) -> int:
        """A deadline as a Unix time in ms (EXPIRETIME), the exact inverse of
        unix_to_deadline while the wall clock does not step."""
        return deadline + self._wall_offset()

    def _wall_offset(self) -> int:
        """Unix ms minus monotonic ms. Each clock is read in whole ms, so
        two readings of an unchanged offset differ by up to 1: the offset
        kept is the larger reading, and changes on a smaller one only past
        that 1 ms (a wall clock step back). So a PXAT set reads back exactly
        through deadline_to_unix, and a relative TTL (ms + wall, converted
        here) never comes out longer than asked."""
        offset = self.wall_clock() - self.clock()
        if offset > self._offset or offset < self._offset - 1:
            self._offset = offset
        return self._offset

    # --- reads ---------------------------------------------------------------

    def _expire_if_due(self, key: bytes) -> bool:
        """Drop key if its deadline passed; True if it was dropped."""
        deadline = self._deadlines.get(key)
        if deadline is not None and deadline <= self.clock():
            self.delete(key)
            self.expired += 1
            return True
        return False

    def get(self, key: bytes) -> bytes | None:
        """The string value of a live key, or None; WrongType if the key
        holds another type."""
        if key in self._deadlines and self._expire_if_due(key):
            return None
        value = self._data.get(key)
        if value is None or type(value) is bytes:
            return value
        raise WrongType(key)

    def lookup(self, key: bytes) -> Any:
        """The value of a live key, of any type, or None."""
        if key in self._deadlines and self._expire_if_due(key):
            return None
        return self._data.get(key)

    def exists(self, key: bytes) -> bool:
        """Whether key is held and live."""
        return self.lookup(key) is not None

    def deadline(self, key: bytes) -> int | None:
        """A live key's deadline (monotonic ms), None if it has none or is missing."""
        if self._expire_if_due(key):
            return None
        return self._deadlines.get(key)

    def __len__(self) -> int:
        """Keys held, including expired ones not yet collected (as DBSIZE)."""
        return len(self._data)

    @property
    def expiring(self) -> int:
        """Keys held that have a deadline (INFO's expires=)."""
        return len(self._deadlines)

    def keys(self) -> list[bytes]:
        """Every live key (expired ones are collected on the way)."""
        now = self.clock()
        due = [k for k, d in self._deadlines.items() if d <= now]
        for key in due:
            self.delete(key)
        self.expired += len(due)
        return list(self._data)

    def random_key(self) -> bytes | None:
        """A random live key (RANDOMKEY), None if none is held: a draw from
        the SCAN order list, whose stale entries are at most about half of
        it (see _compact_order), so a few draws on average; an expired key
        drawn is collected and the draw repeats, as Redis's dbRandomKey."""
        while self._data:
            index = random.randrange(len(self._order_keys))
            key = self._order_keys[index]
            if self._seq.get(key) != self._order_seqs[index]:
                continue  # stale: deleted since
            if not self._expire_if_due(key):
                return key
        return None

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """Up to ``count`` live keys from cursor on; the next cursor (0 at the end)."""
        index = bisect.bisect_left(self._order_seqs, cursor)
        found: list[bytes] = []
        visited = 0
        total = len(self._order_seqs)
        while index < total and visited < count:
            seq, key = self._order_seqs[index], self._order_keys[index]
            index += 1
            if self._seq.get(key) != seq:
                continue  # a stale entry: deleted (and maybe recreated later)
            visited += 1
            if not self._expire_if_due(key):
                found.append(key)
        return (self._order_seqs[index] if index < total else 0), found

    # --- writes --------------------------------------------------------------

    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store value (any type); without keep_ttl any deadline is removed (as SET)."""
        deadlines = self._deadlines
        if key in deadlines:
            self._expire_if_due(key)
        if self._watchers:
            self._touch(key)
        if key not in self._data:
            if self.waiting and key in self.waiting:
                self.ready.append((self, key))
            self._seq[key] = self._next_seq
            self._order_seqs.append(self._next_seq)
            self._order_keys.append(key)
            self._next_seq += 1
        self._data[key] = value
        if self.big:
            self.big.discard(key)
        if self.text:
            self.text.discard(key)
        if not keep_ttl and key in deadlines:
            self.set_deadline(key, None)

    def encoding_marks(self, key: bytes) -> tuple[bool, bool]:
        """Whether key is in big and in text: what a value moved or copied
        to another key (RENAME, MOVE, COPY) keeps, given by :meth:`mark`."""
        return key in self.big, key in self.text

    def mark(self, key: bytes, marks: tuple[bool, bool]) -> None:
        """Give key the encoding marks :meth:`encoding_marks` read (after
        the value is set under it: a new value clears them)."""
        big, text = marks
        if big:
            self.big.add(key)
        if text:
            self.text.add(key)

    def modified(self, key: bytes) -> None:
        """A container under key was changed in place (WATCH sees it)."""
        if self._watchers:
            self._touch(key)

    def set_deadline(self, key: bytes, deadline: int | None) -> None:
        """Give an existing key a deadline (monotonic ms), or None to persist it."""
        if self._watchers:
            self._touch(key)
        if deadline is None:
            if self._deadlines.pop(key, None) is not None:
                self._ttl_remove(key)
            return
        if key not in self._deadlines:
            self._ttl_pos[key] = len(self._ttl_keys)
            self._ttl_keys.append(key)
        self._deadlines[key] = deadline

    def delete(self, key: bytes) -> bool:
        """Remove key whether or not it expired; True if it was held."""
        if self._data.pop(key, None) is None:
            return False
        if self._watchers:
            self._touch(key)
        if self.big:
            self.big.discard(key)
        if self.text:
            self.text.discard(key)
        del self._seq[key]
        if self._deadlines.pop(key, None) is not None:
            self._ttl_remove(key)
        if 2 * len(self._data) < len(self._order_seqs) - 64:
            self._compact_order()
        return True

    def flush(self) -> None:
        """Remove every key (FLUSHDB). Sequence numbers keep growing, so a
        cursor from before the flush ends at once instead of repeating keys."""
        for key in [k for k in self._watchers if k in self._data]:
            self._touch(key)
        self._data.clear()
        self.big.clear()
        self.text.clear()
        self._seq.clear()
        self._order_seqs.clear()
        self._order_keys.clear()
        self._deadlines.clear()
        self._ttl_keys.clear()
        self._ttl_pos.clear()
        self._ttl_cursor = 0

    #: What SWAPDB exchanges: the keys and their bookkeeping, not the
    #: watchers or blocked clients (those belong to the database's number).
    _CONTENTS = ("_data", "_seq", "_order_seqs", "_order_keys", "_next_seq", "_deadlines",
                 "_ttl_keys", "_ttl_pos", "_ttl_cursor", "big", "text")

    def swap(self, other: "Store") -> None:
        """Exchange every key with other (SWAPDB): clients WATCHing a key
        held on either side see it changed, and keys clients are blocked
        on that now exist are reported ready, as Redis does."""
        for store, peer in ((self, other), (other, self)):
            for key in [k for k in store._watchers if k in store._data or k in peer._data]:
                store._touch(key)
        for name in self._CONTENTS:
            mine = getattr(self, name)
            setattr(self, name, getattr(other, name))
            setattr(other, name, mine)
        for store in (self, other):
            for key in store.waiting:
                if key in store._data:
                    store.ready.append((store, key))

    def active_expire(self, now: int, budget: int) -> int:
        """Visit at most ``budget`` keys that have a deadline, round-robin,
        and delete those due at ``now``; return how many were deleted."""
        removed = 0
        for _ in range(min(budget, len(self._ttl_keys))):
            if self._ttl_cursor >= len(self._ttl_keys):
                self._ttl_cursor = 0
            key = self._ttl_keys[self._ttl_cursor]
            if self._deadlines[key] <= now:
                self.delete(key)  # swaps the last key into this slot: revisit it
                removed += 1
            else:
                self._ttl_cursor += 1
        self.expired += removed
        return removed

    # --- WATCH ---------------------------------------------------------------

    def watch(self, key: bytes, watcher: Watcher) -> None:
        """Mark watcher dirty at the next write of key (a due key is first
        expired: a key that was already gone has not changed)."""
        if key in self._deadlines:
            self._expire_if_due(key)
        self._watchers.setdefault(key, set()).add(watcher)
        watcher.keys.add((self, key))

    def _touch(self, key: bytes) -> None:
        for watcher in self._watchers.get(key, ()):
            watcher.dirty = True

    # --- internals -----------------------------------------------------------

    def _ttl_remove(self, key: bytes) -> None:
        """Swap-remove key from the dense list of keys with a deadline (O(1))."""
        pos = self._ttl_pos.pop(key)
        last = self._ttl_keys.pop()
        if last != key:
            self._ttl_keys[pos] = last
            self._ttl_pos[last] = pos

    def _compact_order(self) -> None:
        """Drop stale SCAN entries; seq values (and so cursors) are kept."""
        pairs = [(s, k) for s, k in zip(self._order_seqs, self._order_keys) if self._seq.get(k) == s]
        self._order_seqs = [s for s, _ in pairs]
        self._order_keys = [k for _, k in pairs]
