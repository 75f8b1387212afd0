"""HTTP/2 (RFC 9113), cleartext: the sans-IO connection, the stream API,
serving (``--protocol h2``; ``--protocol http`` answers HTTP/1.1 and
HTTP/2 on one port) and a client.

* :class:`H2Connection`: bytes in, events out (:mod:`fastnet.h2.events`),
  both roles; flow control, stream states, SETTINGS, PING, GOAWAY.
* :func:`serve_streams`: a per-stream ``async def handler(stream)`` as a
  listener's handler (:class:`ServerStream`); a ``fastnet.http.App`` is
  served over HTTP/2 as it is over HTTP/1.1.
* :func:`open_connection` -> :class:`Client`; ``await client.request(...)``
  -> :class:`ClientStream`.
"""
from __future__ import annotations

from ..errors import H2ConnectionError, H2ErrorCode, H2StreamReset
from .connection import H2Connection
from .events import (ConnectionTerminated, DataReceived, Event, InformationalResponseReceived,
                     PingAcked, PingReceived, PriorityUpdated, RequestReceived, ResponseReceived,
                     SettingsAcknowledged, SettingsChanged, StreamEnded, StreamReset,
                     TrailersReceived, WindowUpdated)
from .streams import (Client, ClientStream, CompleteHandler, Reply, ServerStream, Stream, StreamApp, StreamHandler,
                      open_connection, serve_streams)
from .server import H2, H2Options, H2Server, H2Session

__all__ = [
    "Client", "ClientStream", "CompleteHandler", "Reply", "H2", "H2Options", "H2Server", "H2Session", "ConnectionTerminated", "DataReceived", "Event", "H2Connection",
    "H2ConnectionError", "H2ErrorCode", "H2StreamReset", "InformationalResponseReceived",
    "PingAcked", "PingReceived", "PriorityUpdated", "RequestReceived", "ResponseReceived",
    "ServerStream", "SettingsAcknowledged", "SettingsChanged", "Stream", "StreamApp",
    "StreamEnded", "StreamHandler", "StreamReset", "TrailersReceived", "WindowUpdated",
    "open_connection", "serve_streams",
]
