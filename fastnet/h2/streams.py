"""The low-level HTTP/2 stream API (what gRPC stands on), both sides.

Server side: give ``serve_streams(handler)`` as the handler of an
``h2`` (or ``http``) listener; every request stream runs
``await handler(stream)`` with a :class:`ServerStream`::

    async def handler(stream):
        body = b"".join([chunk async for chunk in stream])
        stream.send_headers([(b":status", b"200"), (b"content-type", b"text/plain")])
        await stream.send_data(body)          # waits for the peer's window
        stream.send_trailers([(b"x-done", b"1")])

    server.listen("127.0.0.1", 0, protocol="h2", handler=serve_streams(handler))

Client side: ``conn = await open_connection(host, port)`` gives a
:class:`Client`; ``stream = await conn.request(headers, body)`` a
:class:`ClientStream` with the same reading and sending methods plus
``await stream.response()`` for the response headers.

Backpressure: ``send_data`` waits while the peer's window is short, so a
slow reader never makes us buffer more than one window; our reading side
gives the peer credit only as the app consumes data (``read()``), so a
slow app slows the peer. A stream ends normally when both sides sent
END_STREAM; it is *cancelled* when the peer resets it or the connection
goes away: reads and sends then raise :class:`~fastnet.errors.H2StreamReset`,
``stream.cancelled`` is True and ``await stream.wait_cancelled()`` returns.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import AsyncIterable, Optional, Union

from ..errors import H2ErrorCode
from .events import Headers

__all__ = ["Client", "ClientStream", "ServerStream", "Stream", "StreamApp", "StreamHandler",
           "open_connection", "serve_streams"]

#: A header list as callers give it: (name, value) pairs, bytes or str.
HeaderInput = Iterable[tuple[Union[bytes, str], Union[bytes, str]]]
#: A request body for Client.request: all at once, or pieces as they come.
BodyInput = Union[bytes, bytearray, memoryview, Iterable[bytes], AsyncIterable[bytes], None]


class Stream:
    """One HTTP/2 stream, seen from our side.

    ``stream_id``; ``peer`` is the remote (host, port); ``headers`` the
    peer's header block that opened the stream on the server side (the
    request) and the request we sent on the client side. ``trailers`` is
    the peer's trailing header list once the body has ended (None before or
    without one).
    """

    stream_id: int
    peer: tuple[str, int]
    headers: Headers
    trailers: Optional[Headers]

    # -- reading the peer's body -------------------------------------------

    async def read(self) -> Optional[bytes]:
        """The next piece of the peer's body, or None at its end (after
        which ``trailers`` is set if the peer sent any). Gives the peer
        flow-control credit for what it returns. Raises H2StreamReset if
        the stream was reset or the connection lost before the end."""
        raise NotImplementedError

    def __aiter__(self) -> AsyncIterator[bytes]:
        """``async for chunk in stream``: read() until None."""
        raise NotImplementedError

    async def read_all(self, limit: int) -> bytes:
        """The whole remaining body; H2StreamReset, or ValueError (after
        resetting the stream with CANCEL) past ``limit`` bytes."""
        raise NotImplementedError

    # -- sending our side --------------------------------------------------

    def send_headers(self, headers: HeaderInput, end_stream: bool = False) -> None:
        """Send a header block: the response (server; 1xx allowed before
        the final one) or, on the client, only through Client.request."""
        raise NotImplementedError

    async def send_data(self, data: bytes | bytearray | memoryview, end_stream: bool = False) -> None:
        """Send data, waiting as long as the peer's flow-control windows
        (stream and connection) are short: returns once all of it is queued
        for writing. H2StreamReset if the stream is reset meanwhile."""
        raise NotImplementedError

    def send_trailers(self, headers: HeaderInput) -> None:
        """Send trailing headers and end our side (after the last
        send_data has returned)."""
        raise NotImplementedError

    def end(self) -> None:
        """End our side without trailers (an empty END_STREAM DATA)."""
        raise NotImplementedError

    def reset(self, error_code: int = H2ErrorCode.CANCEL) -> None:
        """Reset the stream (RST_STREAM): both sides are done with it."""
        raise NotImplementedError

    # -- cancellation --------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """True once the peer reset the stream or the connection went away
        before both sides ended it."""
        raise NotImplementedError

    @property
    def reset_code(self) -> Optional[int]:
        """The error code the stream was reset with (either side), or None."""
        raise NotImplementedError

    async def wait_cancelled(self) -> None:
        """Return when the stream is cancelled (never, if it ends well:
        run it as a task beside the work it cancels)."""
        raise NotImplementedError

    @property
    def ended(self) -> bool:
        """Both sides sent END_STREAM, or the stream was reset."""
        raise NotImplementedError


class ServerStream(Stream):
    """A request stream on the server. ``method``, ``path``, ``scheme``,
    ``authority`` are the request's pseudo fields as str (authority "" if
    absent); ``header(name)`` the first value of a regular field."""

    method: str
    path: str
    scheme: str
    authority: str

    def header(self, name: bytes) -> Optional[bytes]:
        """The first value of field ``name`` (lowercase bytes), or None."""
        raise NotImplementedError


class ClientStream(Stream):
    """A request stream we opened (Client.request)."""

    async def response(self) -> Headers:
        """The final response headers (1xx are skipped), waiting for them;
        H2StreamReset if the stream is reset first."""
        raise NotImplementedError

    @property
    def status(self) -> Optional[int]:
        """The response's :status once response() has returned, else None."""
        raise NotImplementedError


#: What serve_streams runs per request stream.
StreamHandler = Callable[[ServerStream], Awaitable[None]]


class StreamApp:
    """A stream handler as the handler of an h2 listener (serve_streams).
    When the handler returns, the server ends our side of the stream if
    the handler did not (an empty END_STREAM, or RST_STREAM(INTERNAL_ERROR)
    if it sent no headers); when it raises, the stream is reset with
    INTERNAL_ERROR and the connection goes on."""

    def __init__(self, handler: StreamHandler) -> None:
        self.handler = handler
        #: Sessions serving it run on asyncio.
        self.is_async = True


def serve_streams(handler: StreamHandler) -> StreamApp:
    """The listener handler that runs ``await handler(stream)`` for every
    request stream (``Server.listen(..., protocol="h2", handler=serve_streams(fn))``)."""
    return StreamApp(handler)


class Client:
    """One client HTTP/2 connection (prior knowledge, cleartext) on
    asyncio. Make one with :func:`open_connection`; use as an async context
    manager or ``await close()``. Streams of one Client run concurrently,
    at most the server's SETTINGS_MAX_CONCURRENT_STREAMS at once (request()
    waits for a slot)."""

    async def request(self, headers: HeaderInput, body: BodyInput = b"", *,
                      end_stream: bool = True) -> ClientStream:
        """Open a stream with the request ``headers`` (pseudo fields
        first: :method, :scheme, :path, :authority). ``body``: bytes sent
        whole, an iterable or async iterable sent piece by piece by a task
        beside the caller (each piece waits for the window), or None to
        send nothing now (then stream.send_data / send_trailers / end, as
        gRPC streaming does). end_stream False keeps our side open after
        the body. Returns once HEADERS is queued, before the response."""
        raise NotImplementedError

    async def ping(self) -> float:
        """Ping the server; return the round trip in seconds."""
        raise NotImplementedError

    async def close(self, error_code: int = H2ErrorCode.NO_ERROR) -> None:
        """GOAWAY and close the socket; open streams are cancelled."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """True once the connection is gone (either side)."""
        raise NotImplementedError

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_connection(host: str, port: int, *,
                          settings: Optional[dict[int, int]] = None) -> Client:
    """Connect (cleartext, prior knowledge), exchange the preface and
    SETTINGS, and return the :class:`Client`."""
    raise NotImplementedError
