"""Wire protocol clients: :func:`connect` (blocking) and
:func:`open_connection` (asyncio, many concurrent calls over one v2
connection). Both negotiate with HELLO, answer PING with PONG by
themselves, and raise WireRemoteError carrying the server's ERROR code."""
from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any, Optional, Sequence

from .. import pack
from ..codec.wire import (ERROR, GOAWAY, HELLO, PING, PONG, REQUEST, RESPONSE, Frame,
                          WireDecoder, encode_wire_frame)
from ..errors import ProtocolError, WireRemoteError
from ..limits import DEFAULT_WIRE_MAX_BODY
from ._proto import (CODECS, MAX_VERSION, MIN_VERSION, V2, codec_names, decode_message,
                     encode_message, remote_error)
from .compression import Codec

_READ = 256 * 1024


class _Negotiation:
    """What both clients share: the offer, the answer, bodies both ways."""

    def __init__(self, max_version: int, codecs: Optional[Sequence[str]], hello: bool,
                 max_body: int, threshold: Optional[int] = None) -> None:
        if not MIN_VERSION <= max_version <= MAX_VERSION:
            raise ValueError(f"max_version must be in [{MIN_VERSION}, {MAX_VERSION}]")
        if not hello and max_version != MIN_VERSION:
            raise ValueError("only a version 1 client may skip HELLO")
        self.offer_versions = list(range(MIN_VERSION, max_version + 1))
        self.offer_codecs = list(codec_names() if codecs is None else codecs)
        self.hello = hello
        self.max_body = max_body
        self.threshold = threshold
        self.version = MIN_VERSION
        self.codecs: list[str] = []
        self.codec: Optional[Codec] = None
        self.goaway = False
        self.decoder = WireDecoder(max_body)

    def hello_frame(self) -> bytes:
        return encode_wire_frame(HELLO, pack.packb(
            {"versions": self.offer_versions, "codecs": self.offer_codecs}))

    def settle(self, frame: Frame) -> None:
        """Take the server's answer to HELLO (or raise its ERROR)."""
        if frame.type == ERROR:
            raise _remote(frame)
        if frame.type != HELLO:
            raise ProtocolError(f"expected HELLO, got frame type {frame.type}")
        answer = pack.unpackb(frame.body)
        self.version = int(answer["version"])
        self.codecs = [c for c in answer.get("codecs", ()) if c in CODECS]
        self.codec = CODECS[self.codecs[0]] if self.codecs else None

    def request(self, obj: Any, request_id: int, metadata: Optional[dict[str, Any]]) -> bytes:
        if metadata and self.version < V2:
            raise ValueError("metadata needs protocol version 2")
        return encode_message(REQUEST, obj, version=self.version, request_id=request_id,
                              codec=self.codec, threshold=self.threshold, metadata=metadata)

    def result(self, frame: Frame) -> Any:
        if frame.type == ERROR:
            raise _remote(frame)
        obj, _ = decode_message(frame.flags, frame.body, version=self.version,
                                codecs=self.codecs, limit=self.max_body)
        return obj

    def control(self, frame: Frame) -> Optional[bytes]:
        """A PING's PONG; notes GOAWAY; None otherwise."""
        if frame.type == PING:
            return encode_wire_frame(PONG, frame.body, version=self.version,
                                     request_id=frame.request_id)
        if frame.type == GOAWAY:
            self.goaway = True
        return None


def _remote(frame: Frame) -> WireRemoteError:
    code, type_name, message, fields = remote_error(frame.body)
    return WireRemoteError(code, type_name, message, fields)


class WireClient:
    """A blocking wire connection: ``call(obj) -> obj``, one call at a time."""

    def __init__(self, sock: socket.socket, neg: _Negotiation) -> None:
        self.sock = sock
        self._neg = neg
        self._ids = itertools.count(1)
        if neg.hello:
            sock.sendall(neg.hello_frame())
            neg.settle(self._next_frame())

    @property
    def version(self) -> int:
        """The negotiated protocol version."""
        return self._neg.version

    @property
    def codecs(self) -> list[str]:
        """The compression codecs both sides speak (v2), preferred first."""
        return list(self._neg.codecs)

    def call(self, obj: Any, metadata: Optional[dict[str, Any]] = None) -> Any:
        """Send obj as a REQUEST and return the RESPONSE's object;
        WireRemoteError for an ERROR answer."""
        rid = next(self._ids) & 0xFFFFFFFF if self._neg.version >= V2 else 0
        self.sock.sendall(self._neg.request(obj, rid, metadata))
        while True:
            frame = self._next_frame()
            if frame.type in (RESPONSE, ERROR) and frame.request_id == rid:
                return self._neg.result(frame)
            if frame.type == ERROR and frame.request_id == 0:
                raise _remote(frame)

    def _next_frame(self) -> Frame:
        neg = self._neg
        while True:
            frame = neg.decoder.next_frame()
            if frame is not None:
                reply = neg.control(frame)
                if reply is not None:
                    self.sock.sendall(reply)
                elif frame.type not in (PING, GOAWAY):
                    return frame
                continue
            data = self.sock.recv(_READ)
            if not data:
                raise ConnectionError("the wire server closed the connection")
            neg.decoder.feed(data)

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def __enter__(self) -> "WireClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(host: str, port: int, *, max_version: int = MAX_VERSION,
            codecs: Optional[Sequence[str]] = None, hello: bool = True,
            max_body: int = DEFAULT_WIRE_MAX_BODY, timeout: Optional[float] = 30.0,
            compress_threshold: Optional[int] = None) -> WireClient:
    """A blocking wire client connected to host:port and negotiated:
    ``max_version`` caps what it offers (1 plays an old client; with
    ``hello=False`` it speaks v1 without negotiating), ``codecs`` the
    compression it offers (default: every one available; ``[]``: none),
    ``compress_threshold`` the body size from which its requests are
    compressed (default: the negotiated codec's own threshold)."""
    neg = _Negotiation(max_version, codecs, hello, max_body, compress_threshold)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return WireClient(sock, neg)
    except BaseException:
        sock.close()
        raise


class AsyncWireClient:
    """An asyncio wire connection: concurrent ``await call(obj)`` (v2: all
    in flight at once, matched by request id; v1: one after another)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 neg: _Negotiation) -> None:
        self._reader, self._writer, self._neg = reader, writer, neg
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Frame]] = {}
        self._lock = asyncio.Lock()
        self._task: Optional[asyncio.Task[None]] = None
        self._hello: Optional[asyncio.Future[Frame]] = None

    @property
    def version(self) -> int:
        """The negotiated protocol version."""
        return self._neg.version

    @property
    def codecs(self) -> list[str]:
        """The compression codecs both sides speak (v2), preferred first."""
        return list(self._neg.codecs)

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._read())
        if self._neg.hello:
            self._hello = loop.create_future()
            self._writer.write(self._neg.hello_frame())
            self._neg.settle(await self._hello)

    async def _read(self) -> None:
        neg = self._neg
        error: BaseException = ConnectionError("the wire server closed the connection")
        try:
            while data := await self._reader.read(_READ):
                neg.decoder.feed(data)
                for frame in neg.decoder:
                    reply = neg.control(frame)
                    if reply is not None:
                        self._writer.write(reply)
                    elif frame.type in (PING, GOAWAY):
                        continue
                    elif self._hello is not None and not self._hello.done():
                        self._hello.set_result(frame)
                    elif (fut := self._waiting.pop(frame.request_id, None)) is not None:
                        if not fut.done():
                            fut.set_result(frame)
                    elif frame.type == ERROR:
                        error = _remote(frame)
        except Exception as exc:  # a broken frame: every waiter hears of it
            error = exc
        for fut in [self._hello, *self._waiting.values()]:
            if fut is not None and not fut.done():
                fut.set_exception(error)
        self._waiting.clear()

    async def call(self, obj: Any, metadata: Optional[dict[str, Any]] = None) -> Any:
        """Send obj as a REQUEST and await the RESPONSE's object."""
        if self._task is None or self._task.done():
            raise ConnectionError("the wire connection is closed")
        if self._neg.version < V2:
            async with self._lock:
                return await self._call(obj, 0, metadata)
        return await self._call(obj, next(self._ids) & 0xFFFFFFFF, metadata)

    async def _call(self, obj: Any, rid: int, metadata: Optional[dict[str, Any]]) -> Any:
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        self._writer.write(self._neg.request(obj, rid, metadata))
        return self._neg.result(await fut)

    async def close(self) -> None:
        """Close the connection and stop reading."""
        self._writer.close()
        if self._task is not None:
            self._task.cancel()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, asyncio.CancelledError):
            pass

    async def __aenter__(self) -> "AsyncWireClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_connection(host: str, port: int, *, max_version: int = MAX_VERSION,
                          codecs: Optional[Sequence[str]] = None, hello: bool = True,
                          max_body: int = DEFAULT_WIRE_MAX_BODY,
                          compress_threshold: Optional[int] = None) -> AsyncWireClient:
    """An asyncio wire client connected to host:port and negotiated (the
    arguments are :func:`connect`'s)."""
    neg = _Negotiation(max_version, codecs, hello, max_body, compress_threshold)
    reader, writer = await asyncio.open_connection(host, port)
    client = AsyncWireClient(reader, writer, neg)
    try:
        await client._start()
    except BaseException:
        await client.close()
        raise
    return client
