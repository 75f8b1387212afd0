"""Redis, served: a keyspace (:mod:`.store`), a command table that turns
one parsed request into its encoded reply (:mod:`.commands`, sans-IO), and
:class:`RespServer`, which serves them over fastnet's engines to redis-cli,
redis-py and redis-benchmark."""
from __future__ import annotations

from ..codec.resp._common import RespError, SimpleString
from .commands import COMMANDS, Command, Session, execute
from .admin import ADMIN_COMMANDS
from .blocking import BLOCKING_COMMANDS
from .databases import DATABASE_COMMANDS
from .pubsub import PUBSUB_COMMANDS

# The command modules beside commands.py join the table (one line each).
COMMANDS.update(DATABASE_COMMANDS)
COMMANDS.update(PUBSUB_COMMANDS)
COMMANDS.update(ADMIN_COMMANDS)
COMMANDS.update(BLOCKING_COMMANDS)
from .server import RESP_PROTOCOL, RespServer
from .store import Store

__all__ = ["COMMANDS", "Command", "RESP_PROTOCOL", "RespError", "RespServer", "Session",
           "SimpleString", "Store", "execute"]
