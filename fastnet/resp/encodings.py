"""Which encoding Redis 7.0 would hold a hash or a set in (its built-in
defaults, what redis-server reports in CONFIG GET when started without a
configuration file; the redis.conf it ships lowers hash-max-listpack-entries
to 128): what OBJECT ENCODING names and what decides whether HSCAN and
SSCAN answer a collection whole.

A hash is a listpack while it has at most hash-max-listpack-entries (512)
fields and no field or value written to it was longer than
hash-max-listpack-value (64 bytes); a set is an intset while it holds at
most set-max-intset-entries (512) members, every one an integer. Redis
converts once either is passed and never back, so a collection that grew
and shrank keeps the general encoding (hashtable): the write that
converts records the key in ``Store.big`` (:func:`hash_written`,
:func:`set_shrinking`), and a new value under the key clears it.
"""
from __future__ import annotations

from typing import Any, Collection, Iterable

from ..codec.resp._common import string2ll

__all__ = ["HASH_LISTPACK_ENTRIES", "HASH_LISTPACK_VALUE", "SET_INTSET_ENTRIES", "hash_written",
           "is_hash_listpack", "is_intset", "set_shrinking"]

#: Redis 7.0's hash-max-listpack-entries/-value and set-max-intset-entries
#: (config.c's defaults).
HASH_LISTPACK_ENTRIES, HASH_LISTPACK_VALUE, SET_INTSET_ENTRIES = 512, 64, 512


def is_hash_listpack(hash_: dict[bytes, bytes]) -> bool:
    """Whether what the hash holds fits a listpack."""
    return len(hash_) <= HASH_LISTPACK_ENTRIES and all(
        len(f) <= HASH_LISTPACK_VALUE and len(v) <= HASH_LISTPACK_VALUE for f, v in hash_.items())


def is_intset(members: Collection[bytes]) -> bool:
    """Whether what the set holds fits an intset."""
    return len(members) <= SET_INTSET_ENTRIES and all(string2ll(m) is not None for m in members)


def hash_written(store: Any, key: bytes, hash_: dict[bytes, bytes], written: Iterable[bytes]) -> None:
    """After a write of fields and values (``written``) to the hash under
    key: Redis converts it to a hashtable (for good) once it has too many
    fields or was given a field or value too long."""
    if len(hash_) > HASH_LISTPACK_ENTRIES or max(map(len, written)) > HASH_LISTPACK_VALUE:
        store.big.add(key)


def set_shrinking(store: Any, key: bytes, members: Collection[bytes]) -> None:
    """Before members leave the set under key: if it is no intset now, it
    is a hashtable in Redis, and stays one however it shrinks."""
    if key not in store.big and not is_intset(members):
        store.big.add(key)
