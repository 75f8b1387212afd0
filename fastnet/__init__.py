"""fastnet: networking with handlers in Python and a byte path in C.

``fastnet.backend`` is "c" when the C extension is in use and "python" when
the pure-Python twins are (see fastnet.native for the environment switches).
"""
from __future__ import annotations

from .native import backend
from .client import AsyncClient, Client, connect, open_connection
from .errors import FastnetError, ProtocolError
from .server import Connection, Server

__all__ = ["backend", "AsyncClient", "Client", "connect", "open_connection", "Connection", "FastnetError",
           "ProtocolError", "Server", "__version__"]
__version__ = "0.1.0"
