"""The wire protocol on the seam (``--protocol wire``): negotiation, v1 and
v2 sessions, ERROR, PING/PONG, GOAWAY.

The session frames its own bytes (raw framing) with fastnet.codec.wire's
decoder. The handler is ``handle(request) -> response`` (plain or ``async
def``), both fastnet.pack objects; with a ``metadata`` parameter it also
receives a v2 request's metadata map. Without a handler every request is
answered with itself.
"""
from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Optional, Union

from .. import pack
from ..codec.wire import (FLAG_CODEC_MASK, FLAG_METADATA, GOAWAY, HELLO, PING, PONG, REQUEST, RESPONSE,
                          Frame, encode_wire_frame)
from ..engine.base import WireHello
from ..errors import ProtocolError, WireFrameError
from ..limits import DEFAULT_WIRE_MAX_BODY
from ..server.options import Option, count, size
from ..server.protocols import ProtocolSpec, ProtocolUnit, Reply, Session, register
from .batch import RequestBatcher
from .compression import Codec
from ._proto import (CODECS, MAX_VERSION, MIN_VERSION, V2, ErrorCode, codec_names,
                     decode_message, encode_message, error_frame)

if TYPE_CHECKING:
    from ..server.server import Connection, Server


@dataclass(frozen=True)
class WireConfig:
    """What a wire server offers: the highest version (``--wire-max-version``
    plays an older server), the compression codecs, the body limit."""

    max_version: int = MAX_VERSION
    codecs: tuple[str, ...] = field(default_factory=lambda: tuple(codec_names()))
    max_body: int = DEFAULT_WIRE_MAX_BODY

    def __post_init__(self) -> None:
        if not MIN_VERSION <= self.max_version <= MAX_VERSION:
            raise ValueError(f"max_version must be in [{MIN_VERSION}, {MAX_VERSION}], "
                             f"got {self.max_version}")
        unknown = set(self.codecs) - set(CODECS)
        if unknown:
            raise ValueError(f"unknown or unavailable codecs {sorted(unknown)}; have {sorted(CODECS)}")


def _echo(request: Any) -> Any:
    return request


def _takes_metadata(handler: Callable[..., Any]) -> bool:
    try:
        return "metadata" in inspect.signature(handler).parameters
    except (TypeError, ValueError):
        return False


class WireSession(Session):
    """One wire connection: version None until its first frame decides.

    With a plain handler on an engine that frames wire itself (the C
    engine's ``serve_wire``), the engine negotiates, decodes the requests
    and frames the replies, calling ``call`` per request; the session sees
    only the frames the engine hands back, and learns then what the engine
    negotiated."""

    def __init__(self, conn: "Connection", handler: Optional[Callable[..., Any]]) -> None:
        super().__init__(conn)
        self.config: WireConfig = getattr(conn.server, "wire_config", None) or WireConfig()
        self.handler: Callable[..., Any] = handler or _echo
        self.with_metadata = _takes_metadata(self.handler)
        self.is_async = inspect.iscoroutinefunction(self.handler)
        self.multiplexed = self.is_async
        self.batcher = RequestBatcher(self.config.max_body)
        #: the handler as a batch calls it, with one request
        handler_fn: Callable[..., Any] = self.handler
        self.call: Callable[[Any], Any] = (
            partial(handler_fn, metadata={}) if self.with_metadata else handler_fn)
        self.version: Optional[int] = None
        self.codecs: tuple[str, ...] = ()
        self.codec: Optional[Codec] = None  # the codec this side compresses with
        self.threshold: Optional[int] = None  # its threshold
        self.draining = False
        self.failed = False
        self._v1_lock: Optional[asyncio.Lock] = None
        #: The engine frames this connection's requests itself (serve_wire);
        #: _offer: it may be asked (a plain handler, an engine that can).
        self._in_engine = False
        self._offer = not self.is_async and getattr(getattr(conn.server, "engine", None),
                                                     "wire_path", False)

    # -- the seam ----------------------------------------------------------

    def opened(self) -> None:
        if self._offer:  # from the first frame on, the engine may negotiate too
            self._offer_engine()

    def feed(self, data: bytes) -> Union[Reply, Awaitable[Reply]]:
        # A plain handler's requests come in batches (batcher.version is
        # the connection's once known); every other frame, one at a time.
        # With the engine framing them (serve_wire), only the frames it
        # hands back come here, and it is asked again once this is done.
        if self._in_engine:
            self._take_back()
        objs = self.batcher.read(data)
        if objs and not self.batcher.stopped:  # the common case: plain requests only
            reply: Union[Reply, Awaitable[Reply]] = self._serve(objs)
        else:
            reply = self._feed_frames(objs)
        if self._offer:
            self._offer_engine()
        return reply

    def _offer_engine(self) -> None:
        """Ask the engine to frame this connection's requests itself (and
        to negotiate, before the first frame) while this side holds nothing
        half read."""
        if self.draining or self.failed or self.batcher.buffered:
            return
        engine = self.conn.server.engine
        if self.version is None:
            self._in_engine = engine.serve_wire(self.conn.id, self, 0, self.config.max_body,
                                                hello=_hello_table(self.config))
        elif self.batcher.version == self.version:
            self._in_engine = engine.serve_wire(self.conn.id, self, self.version,
                                                self.config.max_body, self.threshold)

    def _take_back(self) -> None:
        """The engine handed the connection back: learn what it negotiated."""
        self._in_engine = False
        self._learn_version()

    def _learn_version(self) -> None:
        """The version and codecs the engine negotiated, if it did."""
        if self.version is None:
            version, mask = self.conn.server.engine.wire_state(self.conn.id)
            if version:
                self._negotiated(version, tuple(
                    name for i, name in enumerate(self.config.codecs) if mask >> i & 1))
                if not self.is_async and not self.draining:
                    self.batcher.version = version

    # -- what the engine's batches call (fastnet.engine.base.WireServing) --

    def fail(self, exc: Exception) -> "_Failed":
        """The ERROR a handler's exception becomes."""
        return _failure(exc)

    def answer(self, request_id: int, result: Any) -> bytes:
        """The RESPONSE (or ERROR) frame for a request's result."""
        self._learn_version()  # the engine may have negotiated it
        return self._answer(request_id, result)

    def _feed_frames(self, objs: list[Any]) -> Union[Reply, Awaitable[Reply]]:
        """feed() for a read holding frames other than plain requests."""
        out: list[bytes] = []
        pending: list[Frame] = []
        batcher = self.batcher
        while True:
            if objs:
                out.append(self._serve(objs))
            if not batcher.stopped or self.failed:
                break
            try:
                frame = batcher.next_frame()
            except WireFrameError as exc:
                self._fatal(out, ErrorCode.BAD_FRAME, exc)
                break
            if frame is None:
                break
            if frame.type == REQUEST and self._admit(frame, out):
                if self.is_async:
                    pending.append(frame)
                else:
                    out.append(self._answer(frame.request_id, self._call(frame)))
            elif frame.type != REQUEST:
                self._control(frame, out)
            if self.failed:
                break
            if not self.is_async and not self.draining and batcher.version != self.version:
                batcher.version = self.version or 0
            objs = batcher.read()
        if self.is_async:
            return self._run(b"".join(out), pending)
        return b"".join(out) or None

    def _serve(self, objs: list[Any]) -> bytes:
        """The replies to a batch of plain requests (the ids are the batcher's)."""
        call = self.call
        results: list[Any] = []
        append = results.append
        try:
            for obj in objs:
                append(call(obj))
        except Exception as exc:  # the handler raised: that request gets an ERROR
            append(_failure(exc))
            for obj in objs[len(results):]:
                try:
                    append(call(obj))
                except Exception as exc2:
                    append(_failure(exc2))
        else:
            reply = self.batcher.replies(results, self.threshold)
            if reply is not None:
                return reply
        return b"".join(self._answer(request_id, result)
                        for request_id, result in zip(self.batcher.ids, results))

    def drain(self) -> Optional[bytes]:
        self.draining = True
        if self._in_engine:  # what the engine holds comes back to feed
            self.conn.server.engine.serve_wire(self.conn.id, None)
            self._take_back()
        self.batcher.version = 0  # every request now gets the SHUTTING_DOWN ERROR
        return encode_wire_frame(GOAWAY, pack.packb({}), version=self.version or MIN_VERSION)

    # -- frames --------------------------------------------------------------

    def _fatal(self, out: list[bytes], code: ErrorCode, exc: BaseException, **extra: Any) -> None:
        """An ERROR for the connection, then close it once written."""
        out.append(error_frame(code, type(exc).__name__, str(exc),
                               version=self.version or MIN_VERSION, **extra))
        self.failed = True
        self.conn.write(b"".join(out))
        out.clear()
        self.conn.close()

    def _error(self, code: ErrorCode, exc: BaseException, request_id: int) -> bytes:
        return error_frame(code, type(exc).__name__, str(exc), version=self.version or MIN_VERSION,
                           request_id=request_id, **getattr(exc, "wire_fields", {}))

    def _control(self, frame: Frame, out: list[bytes]) -> None:
        if frame.type == HELLO:
            self._hello(frame, out)
        elif frame.type == PING:
            out.append(encode_wire_frame(PONG, frame.body, version=self.version or MIN_VERSION,
                                         request_id=frame.request_id))
        elif frame.type in (PONG, GOAWAY):
            return  # a keep-alive answer; a client going away needs nothing
        else:  # RESPONSE and ERROR travel from servers only
            self._fatal(out, ErrorCode.PROTOCOL, ProtocolError(
                f"a client sent a frame of type {frame.type}"))

    def _hello(self, frame: Frame, out: list[bytes]) -> None:
        if self.version is not None:
            self._fatal(out, ErrorCode.PROTOCOL, ProtocolError("a second HELLO"))
            return
        try:
            offer = pack.unpackb(frame.body)
            versions = {int(v) for v in offer["versions"]}
            codecs = [str(c) for c in offer.get("codecs", ())]
        except (ValueError, TypeError, KeyError) as exc:
            self._fatal(out, ErrorCode.BAD_BODY, exc)
            return
        common = versions & set(range(MIN_VERSION, self.config.max_version + 1))
        if not common:
            self._fatal(out, ErrorCode.UNSUPPORTED_VERSION, ProtocolError(
                f"no common version: this server speaks {MIN_VERSION}..{self.config.max_version}, "
                f"the client offered {sorted(versions)}"),
                min=MIN_VERSION, max=self.config.max_version)
            return
        version = max(common)
        self._negotiated(version, tuple(c for c in self.config.codecs if c in codecs))
        out.append(_hello_reply(self.config, version, self.codecs))

    def _negotiated(self, version: int, codecs: tuple[str, ...]) -> None:
        """The version and (v2) the codecs both sides speak, chosen."""
        self.version = version
        if version >= V2:
            self.codecs = codecs
            self.codec = CODECS[codecs[0]] if codecs else None
            self.threshold = self.codec.threshold if self.codec else None

    def _admit(self, frame: Frame, out: list[bytes]) -> bool:
        """Whether a REQUEST is served; if not its ERROR is in out."""
        if self.version is None:
            if frame.version != MIN_VERSION:
                self._fatal(out, ErrorCode.PROTOCOL, ProtocolError(
                    f"a version {frame.version} request before HELLO (only v1 may skip it)"))
                return False
            self.version = MIN_VERSION
        if frame.version != self.version:
            self._fatal(out, ErrorCode.PROTOCOL, ProtocolError(
                f"a version {frame.version} frame on a version {self.version} connection"))
            return False
        if self.draining:
            out.append(self._error(ErrorCode.SHUTTING_DOWN, ProtocolError(
                "the server is shutting down"), frame.request_id))
            return False
        return True

    def _decode(self, frame: Frame) -> tuple[Any, dict[Any, Any]]:
        if not frame.flags & (FLAG_CODEC_MASK | FLAG_METADATA):  # plain body, no metadata
            return pack.unpackb(frame.body), {}
        return decode_message(frame.flags, frame.body, version=self.version or MIN_VERSION,
                              codecs=self.codecs, limit=self.config.max_body)

    def _call(self, frame: Frame) -> Any:
        """The handler's answer to a REQUEST, or the exception as (code, exc)."""
        try:
            obj, meta = self._decode(frame)
        except (ValueError, TypeError) as exc:
            return _Failed(ErrorCode.BAD_BODY, exc)
        try:
            if self.with_metadata:
                return self.handler(obj, metadata=meta)
            return self.handler(obj)
        except Exception as exc:
            return _failure(exc)

    def _answer(self, request_id: int, result: Any) -> bytes:
        """The RESPONSE (or ERROR) frame for a request's result."""
        if isinstance(result, _Failed):
            return self._error(result.code, result.exc, request_id)
        try:
            return encode_message(RESPONSE, result, version=self.version or MIN_VERSION,
                                  request_id=request_id, codec=self.codec)
        except (TypeError, ValueError, OverflowError) as exc:
            return self._error(ErrorCode.HANDLER, exc, request_id)

    # -- async handlers ------------------------------------------------------

    async def _run(self, now: bytes, frames: list[Frame]) -> None:
        if now:
            self.conn.write(now)
        if self.version == MIN_VERSION:  # v1: one request at a time, in order
            if self._v1_lock is None:
                self._v1_lock = asyncio.Lock()
            async with self._v1_lock:
                for frame in frames:
                    await self._one(frame)
        else:  # v2: all at once, each answered as it finishes
            await asyncio.gather(*(self._one(frame) for frame in frames))

    async def _one(self, frame: Frame) -> None:
        result = self._call(frame)
        if inspect.isawaitable(result):
            try:
                result = await result
            except Exception as exc:
                result = _failure(exc)
        self.conn.write(self._answer(frame.request_id, result))


def _hello_reply(config: WireConfig, version: int, codecs: tuple[str, ...]) -> bytes:
    """The HELLO a server with config answers when version and codecs were
    chosen."""
    return encode_wire_frame(HELLO, pack.packb({
        "version": version, "codecs": list(codecs) if version >= V2 else [],
        "max_body": config.max_body}), version=version)


@lru_cache(maxsize=64)
def _hello_table(config: WireConfig) -> WireHello:
    """Every HELLO reply a server with config may send, for an engine that
    negotiates (Engine.serve_wire)."""
    n = len(config.codecs)
    replies = []
    for version in range(MIN_VERSION, config.max_version + 1):
        for mask in range(1 << n):
            replies.append(_hello_reply(config, version, tuple(
                name for i, name in enumerate(config.codecs) if mask >> i & 1)))
    return WireHello(config.max_version, config.codecs,
                     tuple(CODECS[name].threshold for name in config.codecs), tuple(replies))


@dataclass(frozen=True)
class _Failed:
    code: ErrorCode
    exc: BaseException


def _failure(exc: BaseException) -> _Failed:
    """A handler's exception as its ERROR: HANDLER, or the code an
    interceptor's refusal names (``wire_code``)."""
    return _Failed(getattr(exc, "wire_code", ErrorCode.HANDLER), exc)


def _rejection(why: str) -> Optional[bytes]:
    code = ErrorCode.SHUTTING_DOWN if why == "shutdown" else ErrorCode.BUSY
    return error_frame(code, "Rejected", f"connection refused: {why}")


def _protocol_error(error: BaseException) -> Optional[bytes]:
    return error_frame(ErrorCode.BAD_FRAME, type(error).__name__, str(error))


def _handler_error(error: BaseException) -> Optional[bytes]:
    return error_frame(ErrorCode.HANDLER, type(error).__name__, str(error))


def _session(conn: "Connection", handler: Any) -> Session:
    return WireSession(conn, handler)


#: A wire server's own settings live on it (sessions read ``wire_config``).
def make_server(config: WireConfig, **server_options: Any) -> "Server":
    """A Server whose wire listeners use config (``--wire-*`` options)."""
    from ..server.server import Server
    server = Server(**server_options)
    server.wire_config = config  # type: ignore[attr-defined]
    return server


def _make_server(values: Mapping[str, Any], server_options: dict[str, Any]) -> "Server":
    return make_server(WireConfig(max_version=values["wire_max_version"],
                                  max_body=values["wire_max_body"]), **server_options)


def _check(values: Mapping[str, Any]) -> Optional[str]:
    if not MIN_VERSION <= values["wire_max_version"] <= MAX_VERSION:
        return (f"--wire-max-version {values['wire_max_version']}: this fastnet speaks "
                f"versions {MIN_VERSION}..{MAX_VERSION}")
    return None


WIRE_MAX_VERSION = Option("--wire-max-version", type=count, default=MAX_VERSION, metavar="N",
                          help="highest wire protocol version offered (default: %(default)s)")
WIRE_MAX_BODY = Option("--wire-max-body", type=size, default=DEFAULT_WIRE_MAX_BODY,
                       metavar="SIZE", help="largest wire frame body, also once decompressed "
                       "(default: 16M)")

#: The wire protocol as a registered unit (``--protocol wire``).
WIRE = register(ProtocolUnit(
    ProtocolSpec("wire", "raw", error_reply=_protocol_error, rejection=_rejection,
                 probe=encode_wire_frame(PING), handler_error=_handler_error),
    help="versioned request/response frames with fastnet.pack bodies (handle(request))",
    session=_session, echo=False, options=(WIRE_MAX_VERSION, WIRE_MAX_BODY),
    make_server=_make_server, check=_check))
