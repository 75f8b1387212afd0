"""What every client of one server shares: its databases, its clients, the
pub/sub channels and patterns, the clients blocked on keys, the password.

A sans-IO :class:`~fastnet.resp.commands.Session` made without one gets a
Shared of its own around its store (one database, no other client).
"""
from __future__ import annotations

import hmac
from collections import deque
from typing import TYPE_CHECKING, Any, Optional

from .store import Store

if TYPE_CHECKING:
    from .commands import Session

__all__ = ["DEFAULT_DATABASES", "DEFAULT_OUTPUT_LIMITS", "Shared"]

#: Redis's ``databases`` default.
DEFAULT_DATABASES = 16

_MB = 1024 * 1024
#: Redis's client-output-buffer-limit defaults: class -> (hard, soft, seconds).
DEFAULT_OUTPUT_LIMITS = {"normal": (0, 0, 0), "replica": (256 * _MB, 64 * _MB, 60),
                         "pubsub": (32 * _MB, 8 * _MB, 60)}


class Shared:
    """One server's state beyond a single client.

    databases: the Stores, by index (SELECT's numbers); each keeps its
               index for life (SWAPDB swaps their contents, see
               :meth:`Store.swap`), so a WATCH or a blocked client stays on
               its database's number, as in Redis.
    clients:   every connected client's Session by id (CLIENT LIST, KILL).
    channels:  channel -> its subscribers, in subscription order.
    patterns:  pattern -> (its compiled glob, its subscribers).
    ready:     (database, key) pairs that got a value while clients were
               blocked on them, in the order they did; the server serves
               them after each command (see fastnet.resp.blocking).
    requirepass: the ``default`` user's password (None: no password, as
               Redis's ``nopass``).
    output_limits: client-output-buffer-limit by class ("normal",
               "replica", "pubsub"): (hard bytes, soft bytes, soft seconds),
               0 meaning no limit; Redis's defaults.
    """

    def __init__(self, databases: list[Store], requirepass: Optional[bytes] = None) -> None:
        if not databases:
            raise ValueError("a server has at least one database")
        self.databases = databases
        self.clients: dict[int, "Session"] = {}
        self.channels: dict[bytes, dict["Session", None]] = {}
        self.patterns: dict[bytes, tuple[Any, dict["Session", None]]] = {}
        self.ready: deque[tuple[Store, bytes]] = deque()
        self.requirepass = requirepass
        self.output_limits: dict[str, tuple[int, int, int]] = dict(DEFAULT_OUTPUT_LIMITS)
        for store in databases:
            store.ready = self.ready

    def authenticates(self, user: bytes, password: bytes) -> bool:
        """Whether user/password is the ``default`` user's (any password
        while it has none, as Redis's nopass; no other user exists)."""
        if user != b"default":
            return False
        wanted = self.requirepass
        return wanted is None or hmac.compare_digest(wanted, password)

    @classmethod
    def of(cls, count: int, first: Optional[Store] = None) -> "Shared":
        """count databases (the first one ``first`` if given)."""
        if count < 1:
            raise ValueError(f"databases must be at least 1, not {count}")
        stores = [first if first is not None else Store()]
        stores += [Store(stores[0].clock, stores[0].wall_clock) for _ in range(count - 1)]
        return cls(stores)
