"""A blocking HTTP/2 client connection (cleartext, prior knowledge): one
request at a time over a socket, for ``fastnet.http.Client(http2=True)``.
The asyncio :class:`fastnet.h2.Client` is the one with concurrent streams."""
from __future__ import annotations

import socket
from typing import Optional

from .. import limits
from ..errors import ConnectionClosed, H2ErrorCode, H2StreamReset, HttpBodyTooLarge
from .connection import H2Connection
from .events import (ConnectionTerminated, DataReceived, Event, ResponseReceived, StreamEnded,
                     StreamReset, TrailersReceived, WindowUpdated)

__all__ = ["BlockingConnection"]

Fields = list[tuple[bytes, bytes]]


class BlockingConnection:
    """One HTTP/2 connection on a blocking socket (its timeout applies to
    every operation). :meth:`request` sends a request and reads its whole
    response; the connection stays open for the next while :attr:`usable`."""

    def __init__(self, sock: socket.socket, max_body: int = limits.DEFAULT_HTTP_CLIENT_MAX_BODY) -> None:
        self.sock = sock
        self.max_body = max_body
        self.h2 = H2Connection(client_side=True)
        self.h2.initiate()
        self._flush()

    @property
    def usable(self) -> bool:
        """No GOAWAY either way and no connection error: a new stream may open."""
        h2 = self.h2
        return not h2.terminated and h2.goaway_received is None and h2.goaway_sent is None

    def close(self) -> None:
        """GOAWAY (if the connection is still good) and close the socket."""
        try:
            if not self.h2.terminated:
                self.h2.close()
                self._flush()
        except OSError:
            pass
        self.sock.close()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def _events(self) -> list[Event]:
        data = self.sock.recv(limits.READ_CHUNK)
        if not data:
            raise ConnectionClosed("the server closed the HTTP/2 connection")
        events = self.h2.receive(data)
        self._flush()
        return events

    def request(self, headers: Fields, body: Optional[bytes] = None) -> tuple[Fields, bytes, Optional[Fields]]:
        """Send headers (pseudo fields first) and body; return the final
        response's headers, its body and its trailers (or None).
        H2StreamReset if the server resets the stream, ConnectionClosed if
        the connection ends first, HttpBodyTooLarge past max_body."""
        h2 = self.h2
        stream_id = h2.get_next_available_stream_id()
        h2.send_headers(stream_id, headers, end_stream=not body)
        self._flush()
        response: Optional[Fields] = None
        trailers: Optional[Fields] = None
        parts: list[bytes] = []
        size = 0
        view = memoryview(body or b"")
        sent = 0
        ended = False
        while True:
            if sent < len(view) and h2.stream_state(stream_id) in (1, 3):  # open, half-closed (remote)
                sent += h2.send_data(stream_id, view[sent:], end_stream=True)
                self._flush()
            if ended and sent >= len(view):
                assert response is not None
                return response, b"".join(parts), trailers
            for event in self._events():
                kind = type(event)
                if kind is DataReceived:
                    assert isinstance(event, DataReceived)
                    h2.acknowledge(event.stream_id, event.flow_controlled_length)
                    if event.stream_id == stream_id:
                        size += len(event.data)
                        if size > self.max_body:
                            h2.reset_stream(stream_id, H2ErrorCode.CANCEL)
                            self._flush()
                            raise HttpBodyTooLarge(f"body larger than max_body={self.max_body}")
                        parts.append(event.data)
                elif kind is ResponseReceived and event.stream_id == stream_id:  # type: ignore[attr-defined]
                    assert isinstance(event, ResponseReceived)
                    response = event.headers
                elif kind is TrailersReceived and event.stream_id == stream_id:  # type: ignore[attr-defined]
                    assert isinstance(event, TrailersReceived)
                    trailers = event.headers
                elif kind is StreamEnded and event.stream_id == stream_id:  # type: ignore[attr-defined]
                    ended = True
                    if sent < len(view):  # the server answered before reading it all
                        h2.reset_stream(stream_id, H2ErrorCode.NO_ERROR)
                        self._flush()
                        sent = len(view)
                elif kind is StreamReset and event.stream_id == stream_id:  # type: ignore[attr-defined]
                    assert isinstance(event, StreamReset)
                    if ended and response is not None:
                        continue
                    raise H2StreamReset(stream_id, event.error_code, event.remote)
                elif kind is ConnectionTerminated:
                    assert isinstance(event, ConnectionTerminated)
                    if not event.remote or event.error_code != H2ErrorCode.NO_ERROR \
                            or event.last_stream_id < stream_id:
                        raise ConnectionClosed(f"HTTP/2 GOAWAY ({event.error_code}) "
                                               f"before the response to stream {stream_id}")
                elif kind is WindowUpdated:
                    pass  # the loop's next turn sends what the window allows
            self._flush()  # the credit acknowledged above
