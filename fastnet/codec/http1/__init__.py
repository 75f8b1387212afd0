"""HTTP/1.1 (RFC 9112) sans-IO: request and response heads parsed into
offsets of the caller's buffer, chunked bodies, and the connection's state
machine (:mod:`.state`) that fastnet.http's server and client share.

``impls`` maps backend names to the twins available, ``backend`` names the
one in use, ``active`` is it. Only the pure-Python twin (``py``) exists so
far; the C twin (csrc/http1.c) will join it under the same API and errors.
"""
from __future__ import annotations

from types import ModuleType

from . import py
from ._common import HeaderSpans, RequestHead, ResponseHead
from .state import TRANSITIONS, ConnectionState, Event, Role, State

impls: dict[str, ModuleType] = {"python": py}
backend: str = "python"
active: ModuleType = impls[backend]

ChunkedDecoder = py.ChunkedDecoder
RequestHeadParser = py.RequestHeadParser
ResponseHeadParser = py.ResponseHeadParser

__all__ = [
    "ChunkedDecoder",
    "ConnectionState",
    "Event",
    "HeaderSpans",
    "RequestHead",
    "RequestHeadParser",
    "ResponseHead",
    "ResponseHeadParser",
    "Role",
    "State",
    "TRANSITIONS",
    "active",
    "backend",
    "impls",
]
