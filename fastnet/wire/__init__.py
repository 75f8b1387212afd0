"""The fastnet wire protocol: versioned request/response frames whose
bodies are fastnet.pack objects (README "The wire protocol").

Serve it with ``python -m fastnet.serve --protocol wire --handler
MODULE:FUNCTION`` or ``Server().listen(..., protocol="wire",
handler=handle)`` where ``handle(request) -> response`` (plain or async);
call it with :func:`connect` (blocking) or :func:`open_connection`
(asyncio). The frame codec is fastnet.codec.wire.
"""
from __future__ import annotations

from ..errors import WireRemoteError
from ._proto import MAX_VERSION, MIN_VERSION, VERSIONS, ErrorCode, codec_names
from .client import AsyncWireClient, WireClient, connect, open_connection
from .server import WIRE, WireConfig, WireSession, make_server

__all__ = [
    "AsyncWireClient",
    "ErrorCode",
    "MAX_VERSION",
    "MIN_VERSION",
    "VERSIONS",
    "WIRE",
    "WireClient",
    "WireConfig",
    "WireRemoteError",
    "WireSession",
    "codec_names",
    "connect",
    "make_server",
    "open_connection",
]
