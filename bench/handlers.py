"""Python message handlers shared by the benchmarks.

The same function runs in fastnet (``python -m fastnet.serve --protocol
frame --handler bench.handlers:frame_handler``) and in the peers it is
compared with (``python -m bench.peers.frame_peers``), so every server pays
for exactly one Python call per message.
"""
from __future__ import annotations

from typing import Any


def frame_handler(conn: Any, message: bytes) -> bytes:
    """Echo one message: the reply is the message itself."""
    return message


def wire_handler(request: Any) -> Any:
    """The wire protocol's handle(request): the reply is the request itself."""
    return request
