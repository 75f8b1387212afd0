"""Commands beyond the core table: every table of the modules below,
merged into fastnet.resp.commands.COMMANDS (one line there)."""
from __future__ import annotations

from .commands import Command
from .scans import SCAN_COMMANDS
from .zset import ZSET_COMMANDS

__all__ = ["MORE_COMMANDS"]

#: name (lower case) -> Command, for COMMANDS.update().
MORE_COMMANDS: dict[bytes, Command] = {**ZSET_COMMANDS, **SCAN_COMMANDS}
