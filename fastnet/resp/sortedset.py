"""The sorted set: a dict of member -> score beside a skip list with spans.

Redis's own design (t_zset.c): elements ordered by (score, member bytes),
each node knowing how many level-0 steps each of its forward links skips,
so insert, delete, rank and "the element at rank r" are O(log n) expected
and a range is O(log n + its length). Scores are floats, never nan.

``listpack`` mirrors Redis's encoding choice, which is observable: Redis
keeps a sorted set of at most 128 members, none over 64 bytes, as a
listpack (ZSCAN answers it whole in one call; OBJECT ENCODING says so;
lexicographic ranges scan it linearly) and converts it to a skip list for
good once either bound is passed. In a listpack a score of -0 reads back
as 0, so it is stored as 0 there.

Nothing recurses; a node's level is drawn as Redis does (p = 1/4, at most 32).
"""
from __future__ import annotations

import random
from typing import Callable, Iterator, Optional

__all__ = ["SortedSet", "Node", "LISTPACK_MAX_ENTRIES", "LISTPACK_MAX_VALUE"]

#: Redis's zset-max-listpack-entries and zset-max-listpack-value defaults.
LISTPACK_MAX_ENTRIES = 128
LISTPACK_MAX_VALUE = 64
_MAX_LEVEL = 32


class Node:
    """One element; ``forward[i]`` skips ``span[i]`` level-0 steps."""

    __slots__ = ("member", "score", "forward", "span", "backward")

    def __init__(self, member: bytes, score: float, level: int) -> None:
        self.member = member
        self.score = score
        self.forward: list[Optional[Node]] = [None] * level
        self.span = [0] * level
        self.backward: Optional[Node] = None


def _random_level() -> int:
    level = 1
    while level < _MAX_LEVEL and random.getrandbits(2) == 0:
        level += 1
    return level


class SortedSet:
    """Members with scores, ordered by (score, member)."""

    __slots__ = ("scores", "listpack", "_head", "_tail", "_level")

    def __init__(self) -> None:
        #: member -> score (O(1) ZSCORE and membership).
        self.scores: dict[bytes, float] = {}
        self.listpack = True
        self._head = Node(b"", 0.0, _MAX_LEVEL)
        self._tail: Optional[Node] = None
        self._level = 1

    def __len__(self) -> int:
        return len(self.scores)

    def __bool__(self) -> bool:
        return bool(self.scores)

    # --- changes -------------------------------------------------------------

    def add(self, member: bytes, score: float) -> None:
        """Insert member (not held) or move it to score."""
        old = self.scores.get(member)
        if old is not None:
            if old == score:
                return
            self._unlink(member, old)
        if self.listpack:
            if len(self.scores) + (old is None) > LISTPACK_MAX_ENTRIES or len(member) > LISTPACK_MAX_VALUE:
                self.listpack = False
            elif score == 0:
                score = 0.0  # a listpack reads -0 back as 0
        self.scores[member] = score
        self._insert(member, score)

    def remove(self, member: bytes) -> bool:
        """Remove member; False if it was not held."""
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self._unlink(member, score)
        return True

    def _insert(self, member: bytes, score: float) -> None:
        top = self._level
        level = _random_level()
        height = max(top, level)
        update: list[Node] = [self._head] * height
        rank = [0] * height
        node = self._head
        traversed = 0
        for i in range(top - 1, -1, -1):
            ahead = node.forward[i]
            while ahead is not None and (ahead.score < score or (ahead.score == score and ahead.member < member)):
                traversed += node.span[i]
                node = ahead
                ahead = node.forward[i]
            update[i] = node
            rank[i] = traversed
        if level > top:
            for i in range(top, level):
                self._head.span[i] = len(self.scores) - 1  # the length before this insert
            self._level = level
        new = Node(member, score, level)
        forward, span = new.forward, new.span
        for i in range(level):
            before = update[i]
            forward[i] = before.forward[i]
            before.forward[i] = new
            span[i] = before.span[i] - (traversed - rank[i])
            before.span[i] = traversed - rank[i] + 1
        for i in range(level, top):
            update[i].span[i] += 1
        new.backward = None if update[0] is self._head else update[0]
        after = forward[0]
        if after is None:
            self._tail = new
        else:
            after.backward = new

    def _unlink(self, member: bytes, score: float) -> None:
        top = self._level
        update: list[Node] = [self._head] * top
        node = self._head
        for i in range(top - 1, -1, -1):
            ahead = node.forward[i]
            while ahead is not None and (ahead.score < score or (ahead.score == score and ahead.member < member)):
                node = ahead
                ahead = node.forward[i]
            update[i] = node
        target = node.forward[0]
        assert target is not None and target.member == member
        for i in range(top):
            before = update[i]
            if before.forward[i] is target:
                before.span[i] += target.span[i] - 1
                before.forward[i] = target.forward[i]
            else:
                before.span[i] -= 1
        after = target.forward[0]
        if after is None:
            self._tail = target.backward
        else:
            after.backward = target.backward
        while self._level > 1 and self._head.forward[self._level - 1] is None:
            self._level -= 1

    # --- reads ---------------------------------------------------------------

    def rank(self, member: bytes) -> Optional[int]:
        """member's 0-based rank in increasing order, None if not held."""
        score = self.scores.get(member)
        if score is None:
            return None
        traversed = 0
        node = self._head
        for i in range(self._level - 1, -1, -1):
            ahead = node.forward[i]
            while ahead is not None and (ahead.score < score or (ahead.score == score and ahead.member <= member)):
                traversed += node.span[i]
                node = ahead
                ahead = node.forward[i]
            if node is not self._head and node.member == member:
                return traversed - 1
        raise AssertionError("a member in the dict is in the list")

    def rank_of(self, node: Node) -> int:
        """A held node's 0-based rank."""
        rank = self.rank(node.member)
        assert rank is not None
        return rank

    def at(self, rank: int) -> Optional[Node]:
        """The node at 0-based rank, None outside 0..len-1."""
        if not 0 <= rank < len(self.scores):
            return None
        wanted = rank + 1
        traversed = 0
        node = self._head
        for i in range(self._level - 1, -1, -1):
            while True:
                ahead = node.forward[i]
                if ahead is None or traversed + node.span[i] > wanted:
                    break
                traversed += node.span[i]
                node = ahead
            if traversed == wanted:
                return node
        raise AssertionError("every rank below the length is held")

    @property
    def first(self) -> Optional[Node]:
        return self._head.forward[0]

    @property
    def last(self) -> Optional[Node]:
        return self._tail

    def first_where(self, below: Callable[[Node], bool]) -> Optional[Node]:
        """The first node for which ``below`` is false, found by descending
        the levels (as Redis's zslFirstInRange: ``below`` must be true for a
        prefix of the order for the answer to mean "the first")."""
        node = self._head
        for i in range(self._level - 1, -1, -1):
            while True:
                ahead = node.forward[i]
                if ahead is None or not below(ahead):
                    break
                node = ahead
        return node.forward[0]

    def last_where(self, within: Callable[[Node], bool]) -> Optional[Node]:
        """The last node of the prefix for which ``within`` is true (None if
        the first node fails it), as Redis's zslLastInRange descends."""
        node = self._head
        for i in range(self._level - 1, -1, -1):
            while True:
                ahead = node.forward[i]
                if ahead is None or not within(ahead):
                    break
                node = ahead
        return None if node is self._head else node

    def walk(self, node: Optional[Node], reverse: bool = False) -> Iterator[Node]:
        """Nodes from node on, forward (or backward)."""
        while node is not None:
            yield node
            node = node.backward if reverse else node.forward[0]

    def __iter__(self) -> Iterator[Node]:
        return self.walk(self.first)
