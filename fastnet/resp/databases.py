"""Commands across databases: MOVE and SWAPDB (SELECT, FLUSHDB and
FLUSHALL are in fastnet.resp.commands). Replies and errors are Redis 7.0's,
checked in its order."""
from __future__ import annotations

from .commands import OK, Command, Session, _error, database, db_index

__all__ = ["DATABASE_COMMANDS"]

_OUT_OF_RANGE = b"-ERR DB index is out of range\r\n"


def cmd_move(session: Session, args: list[bytes]) -> bytes:
    """MOVE key db: move a key (with its TTL) to another database; 1 if
    moved, 0 if missing here or present there."""
    index = db_index(args[2])
    if isinstance(index, bytes):
        return index
    target = database(session, index)
    if target is None:
        return _OUT_OF_RANGE
    source = session.store
    if target is source:
        return _error(b"ERR source and destination objects are the same")
    key = args[1]
    value = source.lookup(key)
    if value is None or target.lookup(key) is not None:
        return b":0\r\n"
    deadline = source.deadline(key)
    marks = source.encoding_marks(key)
    source.delete(key)
    target.set(key, value)
    target.mark(key, marks)
    if deadline is not None:
        target.set_deadline(key, deadline)
    return b":1\r\n"


def cmd_swapdb(session: Session, args: list[bytes]) -> bytes:
    """SWAPDB index1 index2: exchange two databases' keys; every client
    keeps its database number (so it sees the other's keys)."""
    first = db_index(args[1])
    if isinstance(first, bytes):
        return _error(b"ERR invalid first DB index")
    second = db_index(args[2])
    if isinstance(second, bytes):
        return _error(b"ERR invalid second DB index")
    one, other = database(session, first), database(session, second)
    if one is None or other is None:
        return _OUT_OF_RANGE
    one.swap(other)
    return OK


DATABASE_COMMANDS: dict[bytes, Command] = {
    b"move": Command(cmd_move, 3, ("write", "fast"), 1, 1, 1, ("@keyspace", "@write", "@fast")),
    b"swapdb": Command(cmd_swapdb, 3, ("write", "fast"), categories=("@keyspace", "@write", "@fast", "@dangerous")),
}
