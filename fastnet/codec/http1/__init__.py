"""HTTP/1.1 (RFC 9112) sans-IO: request and response heads parsed into
offsets of the caller's buffer, chunked bodies, and the connection's state
machine (:mod:`.state`) that fastnet.http's server and client share.

``impls`` maps backend names to the twins available, ``backend`` names the
one in use, ``active`` is it: ``c`` (cffi over csrc/http1.c) unless
fastnet.native fell back to ``py`` (pure Python, the readable reference).
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ... import native
from .. import _twins
from ._common import REQ_WORDS, HeaderSpans, RequestHead, ResponseHead
from .state import TRANSITIONS, ConnectionState, Event, Role, State

impls: dict[str, ModuleType] = _twins.load(__name__)
backend: str = native.backend
active: ModuleType = impls[backend]

if TYPE_CHECKING:  # the twins share one API: type checkers read the reference's
    from .py import ChunkedDecoder, RequestHeadParser, ResponseHeadParser
else:
    ChunkedDecoder = active.ChunkedDecoder
    RequestHeadParser = active.RequestHeadParser
    ResponseHeadParser = active.ResponseHeadParser

__all__ = [
    "ChunkedDecoder",
    "ConnectionState",
    "Event",
    "HeaderSpans",
    "REQ_WORDS",
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
