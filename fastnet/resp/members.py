"""The members of a Redis set, indexable: SPOP and SRANDMEMBER in O(count).

A Python set has no random access: a uniform draw from one needs a copy,
O(n) where Redis picks a bucket in O(1). :class:`Members` is a dict of
member -> its position in ``order``, a list of the members: membership,
length and iteration are the dict's (C speed, as a set's), a uniformly
random member is one index into ``order``, and removing a member moves
the last one of ``order`` into its place (swap-remove), so both stay O(1).
"""
from __future__ import annotations

import random
from typing import Iterable

__all__ = ["Members"]


class Members(dict[bytes, int]):
    """A set's members (the value of a key of type set). Change it only
    through :meth:`add`, :meth:`discard` and the pops, which keep the dict
    and ``order`` in step; read it as a set (``in``, ``len``, iteration)."""

    __slots__ = ("order",)

    def __init__(self, members: Iterable[bytes] = ()) -> None:
        super().__init__()
        self.order: list[bytes] = []
        self.extend(members)

    def add(self, member: bytes) -> bool:
        """Add member; True if it was new."""
        if member in self:
            return False
        self[member] = len(self.order)
        self.order.append(member)
        return True

    def extend(self, members: Iterable[bytes]) -> int:
        """Add each of members; how many were new."""
        order = self.order
        before = len(order)
        for member in members:
            if member not in self:
                self[member] = len(order)
                order.append(member)
        return len(order) - before

    def discard(self, member: bytes) -> bool:
        """Remove member if present; True if it was."""
        index = dict.pop(self, member, None)
        if index is None:
            return False
        order = self.order
        last = order.pop()
        if index < len(order):  # fill the hole with the last member
            order[index] = last
            self[last] = index
        return True

    def choice(self) -> bytes:
        """A uniformly random member (the set must not be empty)."""
        order = self.order
        return order[random.randrange(len(order))]

    def sample(self, count: int) -> list[bytes]:
        """count distinct members drawn uniformly (count < len(self)): O(count)
        (random.sample draws indices into the list without copying it
        unless the list is at most a small multiple of count)."""
        return random.sample(self.order, count)

    def pop_random(self, count: int) -> list[bytes]:
        """Remove and return count distinct uniformly random members
        (count <= len(self)), one random index at a time: O(count)."""
        order = self.order
        popped = []
        for _ in range(count):
            member = order[random.randrange(len(order))]
            self.discard(member)
            popped.append(member)
        return popped

    def copy(self) -> "Members":  # type: ignore[override]
        """A new Members with the same members."""
        return Members(self.order)

    def __repr__(self) -> str:
        return f"Members({self.order!r})"
