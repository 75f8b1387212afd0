"""A sans-IO Redis command layer: a keyspace (:mod:`.store`) and a command
table that turns one parsed request into its encoded reply
(:mod:`.commands`). No sockets, no engine: a server feeds it the commands
RespRequestDecoder yields and writes back the bytes it returns."""
from __future__ import annotations

from .commands import COMMANDS, Session, execute
from .store import Store

__all__ = ["COMMANDS", "Session", "Store", "execute"]
