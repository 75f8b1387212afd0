"""The gRPC server: RPCs over fastnet's HTTP/2 streams (fastnet.h2).

Every request stream of an HTTP/2 listener becomes one :class:`ServerCall`,
which checks the request's headers, finds the method handler, decodes the
request messages, runs the handler with a :class:`ServicerContext`, and
ends the stream with ``grpc-status``.

**Where handlers run.** ``async def`` handlers (and async generators) run
on the server's asyncio loop. Plain handlers whose request is one message
(unary and server streaming) run on that loop too, on the engine's thread,
by default: the fast path, for handlers that do not block. With
``thread_pool=True`` (or a number of threads, or an Executor) they run in a
thread pool, as grpcio runs every handler. Plain handlers whose requests
stream always run in the pool: they block on the request iterator.

**The call path** (the hook interface interceptors use). A hook is any
object with some of these methods; they run on the loop, in the order the
hooks were added (``Server(hooks=[...])`` or :meth:`Server.add_hook`), and
may be ``async def`` (then no unary call is served inside the read that
brought it: they all take the stream path, where hooks can be awaited):

- ``call_started(call)`` once the method is known, before the handler runs.
  It may end the call by raising :class:`Abort` (or calling
  ``call.context.abort(code, details)``); it may add to
  ``call.invocation_metadata`` or set ``call.identity``.
- ``message_received(call, message) -> message`` for each request message
  (decoded); returning None drops it.
- ``message_sending(call, message) -> message`` for each response message
  before it is serialized; returning None drops it.
- ``call_ended(call)`` once the status is known (``call.code``,
  ``call.details``, ``call.trailing_metadata``, ``call.error``, the counters
  ``messages_in``/``messages_out``/``bytes_in``/``bytes_out``, ``duration``),
  in the reverse order, after the status was sent (a unary call served
  inside its read: just before its reply is written).

An exception other than Abort from a hook ends that call with INTERNAL.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import inspect
import logging
import math
import struct
import threading
import time
from typing import (Any, AsyncIterator, Callable, Iterable, Mapping, NamedTuple, Optional,
                    Sequence, Union)

from .. import limits
from .._threads import block_signals
from ..errors import GrpcError, GrpcUnknownEncoding, H2ErrorCode, H2StreamReset
from ..engine.base import TimerHandle
from ..h2 import ServerStream, serve_streams
from ..h2.server import (CONNECTION_WINDOW, H2_PROTOCOL, MAX_CONCURRENT_STREAMS, STREAM_WINDOW,
                         WINDOW_TIMEOUT, H2Server, H2Session, server_options)
from ..h2.streams import StreamApp
from ..server.options import Option, off_or_seconds, seconds, size
from ..server.protocols import ProtocolUnit, register
from . import protocol as p
from .protocol import Metadata, MetadataValue, StatusCode
from .service import GenericHandler, HandlerCallDetails, Service, handler_function

log = logging.getLogger("fastnet.grpc")

E = H2ErrorCode

__all__ = ["Abort", "AbortError", "Metadatum", "Server", "ServerCall", "ServicerContext",
           "status_code"]


class Metadatum(NamedTuple):
    """One metadata entry (grpcio's shape: ``.key``, ``.value``)."""

    key: str
    value: MetadataValue


class AbortError(Exception):
    """Raised by ``context.abort()``: ends the handler; the call's status
    is what abort was given."""


class Abort(AbortError):
    """End a call with ``code`` and ``details`` (a hook's way to refuse a
    call; ``trailing_metadata`` goes with the status)."""

    def __init__(self, code: Any, details: str = "",
                 trailing_metadata: Optional[Metadata] = None) -> None:
        super().__init__(code, details)
        self.code = status_code(code)
        self.details = details
        self.trailing_metadata = trailing_metadata


def status_code(code: Any) -> StatusCode:
    """A status as fastnet's StatusCode, from an int, fastnet's enum or
    grpcio's ``grpc.StatusCode`` (whose value is ``(number, name)``)."""
    value = getattr(code, "value", code)
    if isinstance(value, tuple):
        value = value[0]
    return StatusCode(int(value))


def _format_peer(peer: tuple[str, int]) -> str:
    host, port = peer[0], peer[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


class ServicerContext:
    """What a handler gets beside its request: grpcio's ServicerContext
    (and grpc.aio's: ``read``/``write`` are coroutines, ``abort`` works
    awaited or not since it raises at once)."""

    __slots__ = ("_call",)

    def __init__(self, call: "ServerCall") -> None:
        self._call = call

    # -- what the call is ----------------------------------------------------

    def invocation_metadata(self) -> tuple[Metadatum, ...]:
        """The request's metadata (reserved headers left out)."""
        return tuple(Metadatum(k, v) for k, v in self._call.invocation_metadata)

    def peer(self) -> str:
        """The client's address as grpcio writes it: ``ipv4:127.0.0.1:5000``."""
        return self._call.peer

    def time_remaining(self) -> Optional[float]:
        """Seconds left before the deadline (None without one; 0 once past)."""
        d = self._call.deadline
        return None if d is None else max(0.0, d - time.monotonic())

    def is_active(self) -> bool:
        """False once the call ended: cancelled, past its deadline or done."""
        return not self._call.done

    def cancelled(self) -> bool:
        """True once the client cancelled the call or its deadline passed."""
        return self._call.cancelled

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Run ``callback()`` when the call ends (any way)."""
        call = self._call
        if call._callbacks is None:
            call._callbacks = []
        call._callbacks.append(callback)
        return True

    def auth_context(self) -> dict[str, Any]:
        return {}

    def peer_identities(self) -> None:
        return None

    def peer_identity_key(self) -> None:
        return None

    # -- what the handler says -----------------------------------------------

    def send_initial_metadata(self, metadata: Metadata) -> None:
        """Send the response headers now, with ``metadata``."""
        self._call.send_initial(metadata)

    def set_trailing_metadata(self, metadata: Metadata) -> None:
        self._call.trailing_metadata = list(metadata)

    def trailing_metadata(self) -> Sequence[tuple[str, MetadataValue]]:
        return self._call.trailing_metadata

    def set_code(self, code: Any) -> None:
        self._call.code = status_code(code)

    def set_details(self, details: str) -> None:
        self._call.details = details

    def code(self) -> Optional[StatusCode]:
        return self._call.code

    def details(self) -> str:
        return self._call.details

    def abort(self, code: Any, details: str = "") -> Any:
        """End the call with ``code`` and ``details``: raises AbortError."""
        if status_code(code) == StatusCode.OK:
            raise ValueError("abort() needs a status other than OK")
        self._call.code = status_code(code)
        self._call.details = details
        raise AbortError(code, details)

    def abort_with_status(self, status: Any) -> Any:
        """abort() from a grpc.Status-like object (code, details, trailing_metadata)."""
        if getattr(status, "trailing_metadata", None):
            self._call.trailing_metadata = list(status.trailing_metadata)
        return self.abort(status.code, status.details)

    def set_compression(self, compression: Any) -> None:
        """Compress the responses with ``compression`` (a name, or grpcio's
        ``grpc.Compression``), if the client accepts it; before the first one."""
        self._call.set_compression(compression)

    def disable_next_message_compression(self) -> None:
        self._call.skip_compression = True

    def request_compressed(self) -> bool:
        """Whether the request message last received came compressed
        (fastnet's; the interop suite's compression cases ask it)."""
        return self._call.last_request_compressed

    @property
    def call(self) -> "ServerCall":
        """The call behind this context (what hooks see)."""
        return self._call

    def cancel(self) -> None:
        """End the call as CANCELLED (the client sees RST_STREAM; a unary
        call served whole inside its read gets a CANCELLED status instead)."""
        self._call.cancel(reset=True)

    # -- grpc.aio's streaming ------------------------------------------------

    async def read(self) -> Any:
        """The next request message (grpc.aio); ``EOF`` past the last."""
        try:
            return await self._call.requests().__anext__()
        except StopAsyncIteration:
            return EOF

    async def write(self, message: Any) -> None:
        """Send one response message (grpc.aio)."""
        await self._call.send(message)

    async def done_writing(self) -> None:
        return None


class _ShortContext(ServicerContext):
    """The context of a call served the short way (Server._serve_short):
    the ServerCall behind it is made the first time the handler asks
    anything of the context; most handlers never do, and then the call
    needs no object at all."""

    __slots__ = ("_server", "_handler", "_headers", "_path", "_peer", "_made")

    def __init__(self, server: "Server", handler: Any, headers: list[tuple[bytes, bytes]],
                 path: str, peer: tuple[str, int]) -> None:
        self._server = server
        self._handler = handler
        self._headers = headers
        self._path = path
        self._peer = peer
        self._made: Optional[ServerCall] = None

    @property  # type: ignore[override]
    def _call(self) -> "ServerCall":
        call = self._made
        if call is None:
            call = self._made = ServerCall(self._server, None, self._headers, self._path,
                                           self._peer)
            call._handler = self._handler
            call._read_request_headers()  # the short way took no header it could refuse
        return call

    @_call.setter
    def _call(self, call: "ServerCall") -> None:
        self._made = call


#: What context.read() returns past the last request (grpc.aio's EOF).
EOF = type("EOF", (), {"__repr__": lambda self: "EOF"})()


#: The content-types the short way takes (others go the general way, 415 included).
_SHORT_CONTENT_TYPES = frozenset((p.CONTENT_TYPE, p.CONTENT_TYPE + b"+proto"))

#: What fastnet.h2 sends for a call served whole: (headers, body, trailers or None).
Reply = tuple[Sequence[tuple[bytes, bytes]], bytes, Optional[Sequence[tuple[bytes, bytes]]]]

_UNSUPPORTED_MEDIA_TYPE: p.Headers = [(b":status", b"415"), (b"content-type", b"text/plain")]


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> Optional[bytes]:
    for key, value in headers:
        if key == name:
            return value
    return None


#: Request headers that are never metadata, checked first (the common ones).
_NOT_METADATA = frozenset((b"content-type", b"te", b"grpc-timeout", b"grpc-encoding",
                           b"grpc-accept-encoding"))

#: Header name -> its metadata key, "" for a header that is not metadata:
#: decoded and checked once, not per call (hooks read every call's metadata).
_METADATA_KEYS: dict[bytes, str] = {}


def _metadata_key(name: bytes) -> str:
    """name's metadata key ("": not metadata), remembered in _METADATA_KEYS
    (at most limits.GRPC_METADATA_NAMES: names come from peers, so a full
    table starts over)."""
    key = "" if name[:1] == b":" or name in _NOT_METADATA else name.decode("latin-1")
    if key and p.is_reserved(key):
        key = ""
    if len(_METADATA_KEYS) >= limits.GRPC_METADATA_NAMES:
        _METADATA_KEYS.clear()
    _METADATA_KEYS[name] = key
    return key


_KINDS = {(False, False): "unary", (False, True): "server_stream",
          (True, False): "client_stream", (True, True): "bidi"}


class _HookLists(NamedTuple):
    """The hooks' bound methods by call-path point, found once per hook
    added (not per call); call_ended's in reverse order."""

    call_started: list[Callable[..., Any]]
    message_received: list[Callable[..., Any]]
    message_sending: list[Callable[..., Any]]
    call_ended: list[Callable[..., Any]]

    #: No hook method is a coroutine function: a unary call served whole
    #: inside its read (Server._serve_complete) runs them there.
    plain: bool

    @classmethod
    def of(cls, hooks: Sequence[Any]) -> "_HookLists":
        def bound(name: str, order: Iterable[Any]) -> list[Callable[..., Any]]:
            return [fn for fn in (getattr(h, name, None) for h in order) if fn is not None]
        lists = (bound("call_started", hooks), bound("message_received", hooks),
                 bound("message_sending", hooks), bound("call_ended", reversed(hooks)))
        return cls(*lists, plain=not any(inspect.iscoroutinefunction(fn)
                                         for fns in lists for fn in fns))


class _Resolved(NamedTuple):
    """A method handler and what its call path asks of it, found once per
    handler (registered ones are cached by path)."""

    handler: Any
    fn: Callable[..., Any]
    is_async: bool       # async def or async generator: runs on the loop
    is_asyncgen: bool
    watch: bool          # may wait: must hear of a reset while it waits


def _resolve(handler: Any, pooled: bool) -> _Resolved:
    fn = handler_function(handler)
    asyncgen = inspect.isasyncgenfunction(fn)
    is_async = asyncgen or inspect.iscoroutinefunction(fn)
    return _Resolved(handler, fn, is_async, asyncgen,
                     bool(handler.request_streaming) or pooled or is_async)


class ServerCall:
    """One RPC on the server: what hooks see (the module docstring).

    ``stream`` is the call's ServerStream, or None for a unary call served
    whole inside the read that brought it (:meth:`Server._serve_complete`):
    its response is then collected and handed back to fastnet.h2 as one
    reply instead of being sent piece by piece."""

    # What a call starts with, as class attributes: an instance sets only
    # what changes (a unary call sets few of them).
    deadline: Optional[float] = None
    _metadata: Optional[list[tuple[str, MetadataValue]]] = None
    identity: Any = None
    #: What fastnet.interceptors' ChainHook keeps for this call (its Call, or
    #: the hook itself while a fused chain needed none), else None.
    interceptor_call: Any = None
    code: Optional[StatusCode] = None
    details = ""
    error: Optional[BaseException] = None
    messages_in = messages_out = bytes_in = bytes_out = 0
    duration = 0.0
    _finished = False
    cancelled = False
    headers_sent = False
    encoding: Optional[str] = None      # responses' grpc-encoding
    skip_compression = False
    #: Whether the request message last decoded came compressed.
    last_request_compressed = False
    _request_encoding: Optional[str] = None
    _accept: frozenset[str] = frozenset()
    _handler: Any = None
    _requests: Optional[AsyncIterator[Any]] = None
    _task: Optional[asyncio.Task[Any]] = None
    _end_reason: Optional[str] = None
    #: The connection's session (its keep-alive policy counts our messages).
    session: Optional["_GrpcSession"] = None
    # A call without a stream collects its response here.
    _head: Optional[p.Headers] = None
    _body = b""
    _reply: Optional[Reply] = None
    _callbacks: Optional[list[Callable[[], None]]] = None   # context.add_callback's

    def __init__(self, server: "Server", stream: Optional[ServerStream],
                 headers: Optional[list[tuple[bytes, bytes]]] = None, path: str = "",
                 peer: tuple[str, int] = ("", 0)) -> None:
        self.server = server
        self.stream = stream
        if stream is not None:
            headers, path, peer = stream.headers, stream.path, stream.peer
        assert headers is not None
        self.headers = headers
        self.method = path
        self.peer_address = peer
        self.started_at = time.monotonic()
        self.trailing_metadata: list[tuple[str, MetadataValue]] = []
        self._hooks = server._hook_lists
        # What hooks set, set here first (every call alike): CPython keeps an
        # instance's attributes inline only for the first 30 names its class
        # sees; set later, past those, they made a hooked call's __dict__ a
        # real dict (~10k instructions more a call, measured with callgrind).
        self.identity = self.interceptor_call = None
        self.duration = 0.0

    @property
    def peer(self) -> str:
        """The client's address as grpcio writes it: ``ipv4:127.0.0.1:5000``."""
        return _format_peer(self.peer_address)

    @property
    def context(self) -> ServicerContext:
        """A ServicerContext of this call (its state is the call's: the call
        keeps no reference to it, so a finished call is freed at once, with
        no cycle left for the garbage collector)."""
        return ServicerContext(self)

    @property
    def invocation_metadata(self) -> list[tuple[str, MetadataValue]]:
        """The request's metadata (reserved headers left out), decoded from
        the headers the first time it is asked for; hooks may add to it."""
        md = self._metadata
        if md is None:
            md = self._metadata = []
            keys = _METADATA_KEYS
            for name, value in self.headers:
                key = keys.get(name)
                if key is None:
                    key = _metadata_key(name)
                if key:
                    md.append((key, p.decode_metadata_value(key, value)))
        return md

    @invocation_metadata.setter
    def invocation_metadata(self, metadata: list[tuple[str, MetadataValue]]) -> None:
        self._metadata = metadata

    # -- the stream's life ---------------------------------------------------

    async def run(self) -> None:
        stream = self.stream
        assert stream is not None
        if stream.method != "POST":
            stream.send_headers([(b":status", b"405")], end_stream=True)
            return
        if not p.is_grpc_content_type(stream.header(b"content-type")):
            stream.send_headers(_UNSUPPORTED_MEDIA_TYPE, end_stream=True)
            return
        try:
            self._read_request_headers()
        except GrpcError as e:
            self._finish(e.status, str(e), error=e)
            return
        if self.deadline is not None and self.deadline <= time.monotonic():
            self._finish(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            return
        resolved = self.server._lookup(self.method, self)
        if resolved is None:
            self._finish(StatusCode.UNIMPLEMENTED, f"Method not found: {self.method}")
            return
        self._handler = resolved.handler
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        timer = None
        if self.deadline is not None:
            timer = loop.call_at(loop.time() + self.deadline - time.monotonic(),
                                 self._deadline_passed)
        watcher = None
        if resolved.watch:
            watcher = loop.create_task(self._watch_cancel())
        try:
            for fn in self._hooks.call_started:
                try:
                    r = fn(self)
                    if r is not None and inspect.isawaitable(r):
                        await r
                except AbortError:
                    raise
                except Exception as e:
                    raise _hook_failed(e) from e
            await self._invoke(resolved, loop)
            self._finish_ok()
        except asyncio.CancelledError:
            if self._end_reason is None:
                raise
        except H2StreamReset as e:
            self.cancelled = True
            self._finish(StatusCode.CANCELLED, "Cancelled by the client", error=e, send=False)
        except Exception as e:
            self._failed_with(e)
        finally:
            if timer is not None:
                timer.cancel()
            if watcher is not None:
                watcher.cancel()

    def run_complete(self, resolved: "_Resolved", body: bytes) -> Reply:
        """Serve a unary call whose request came whole (``body``), with a
        plain handler on the engine's thread, and return its response as
        fastnet.h2's reply: (headers, body, trailers), or a trailers-only
        (headers, b"", None). The same checks and statuses as run()."""
        if not p.is_grpc_content_type(_header(self.headers, b"content-type")):
            return (_UNSUPPORTED_MEDIA_TYPE, b"", None)
        try:
            self._read_request_headers()
            if self.deadline is not None and self.deadline <= time.monotonic():
                self._finish(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            else:
                self._handler = resolved.handler
                for fn in self._hooks.call_started:  # plain hooks (_HookLists.plain)
                    try:
                        fn(self)
                    except AbortError:
                        raise
                    except Exception as e:
                        raise _hook_failed(e) from e
                self.bytes_in = size = len(body)
                if size >= p.PREFIX_SIZE and body[0] == 0 \
                        and size - p.PREFIX_SIZE == p.PREFIX.unpack_from(body)[1] \
                        and size - p.PREFIX_SIZE <= self.server.max_receive_message_length:
                    payloads = [(False, body[p.PREFIX_SIZE:])]  # one uncompressed message
                else:
                    decoder = p.MessageDecoder(self.server.max_receive_message_length,
                                               self._request_encoding)
                    payloads = decoder.feed_flagged(body)
                    decoder.end()
                request = self._deserialize_one(payloads)
                for fn in self._hooks.message_received:  # plain hooks (_HookLists.plain)
                    request = fn(self, request)
                    if request is None:
                        raise _RequestCount(0)
                result = resolved.fn(request, self.context)
                return self.answer(result)
        except Exception as e:
            self._failed_with(e)
        assert self._reply is not None
        return self._reply

    def answer(self, result: Any) -> Reply:
        """A call without a stream whose plain unary handler returned
        ``result``: its reply (the message and the status it set)."""
        try:
            if result is not None and self.code is None and not self._finished:
                self._queue(result)
                if self.deadline is None and not self.trailing_metadata \
                        and self._callbacks is None:
                    # The common end, decided without _finish: OK, only the hooks to run.
                    self._finished = True
                    self.code = StatusCode.OK
                    if self._hooks.call_ended:
                        self.duration = time.monotonic() - self.started_at
                        self._call_ended()
                    return (self._head, self._body, p.OK_TRAILERS)  # type: ignore[return-value]
            self._finish_ok()
        except Exception as e:
            self._failed_with(e)
        assert self._reply is not None
        return self._reply

    def _finish_ok(self) -> None:
        """The handler returned: the status it set (OK by default), or
        DEADLINE_EXCEEDED if it returned past the deadline."""
        code = self.code if self.code is not None else StatusCode.OK
        if code == StatusCode.OK and self.deadline is not None \
                and time.monotonic() >= self.deadline:
            code, self.details = StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"
        self._finish(code, self.details)

    def _failed_with(self, e: Exception) -> None:
        """The status of a call whose handler (or hook) raised ``e``."""
        if isinstance(e, Abort):
            if e.trailing_metadata:
                self.trailing_metadata = list(e.trailing_metadata)
            self._finish(e.code, e.details, error=e)
        elif isinstance(e, AbortError):
            self._finish(self.code or StatusCode.UNKNOWN, self.details, error=e)
        elif isinstance(e, GrpcError):
            self._finish(e.status, str(e), error=e)
        elif self.done:  # the handler raised after its call ended (cancelled, deadline)
            return
        else:
            log.warning("gRPC handler of %s raised %s", self.method, type(e).__name__,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            if self.code is not None and self.code != StatusCode.OK:
                self._finish(self.code, self.details, error=e)
            else:
                self._finish(StatusCode.UNKNOWN,
                             f"Exception calling application: {type(e).__name__}", error=e)

    def _read_request_headers(self) -> None:
        for name, value in self.headers:
            if name == b"grpc-timeout":
                self.deadline = self.started_at + p.parse_timeout(value)
            elif name == b"grpc-encoding":
                enc = value.decode("latin-1")
                if enc != "identity":
                    self._request_encoding = enc
            elif name == b"grpc-accept-encoding":
                self._accept = frozenset(e.strip() for e in value.decode("latin-1").split(","))
        if self._request_encoding is not None and self._request_encoding not in p.ENCODINGS:
            raise GrpcUnknownEncoding(self._request_encoding)
        if self.server.compression is not None:
            self.set_compression(self.server.compression)

    @property
    def kind(self) -> str:
        """"unary", "client_stream", "server_stream" or "bidi" (what hooks
        see; "unary" until the method is known)."""
        handler = self._handler
        if handler is None:
            return "unary"
        return _KINDS[bool(handler.request_streaming), bool(handler.response_streaming)]

    @property
    def done(self) -> bool:
        """The status is decided (and sent, unless the stream was reset)."""
        return self._finished

    async def _watch_cancel(self) -> None:
        assert self.stream is not None
        await self.stream.wait_cancelled()
        if not self._finished:
            self.cancelled = True
            self._finish(StatusCode.CANCELLED, "Cancelled by the client", send=False)
            self._stop_task("cancelled")

    def _deadline_passed(self) -> None:
        if self._finished:
            return
        self.cancelled = True
        self._finish(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        self._stop_task("deadline")

    def _stop_task(self, reason: str) -> None:
        """Stop the handler's work on the loop (a thread's runs on, its
        writes dropped) for ``reason``."""
        self._end_reason = reason
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    def cancel(self, reset: bool) -> None:
        if self._finished:
            return
        self.cancelled = True
        if self.stream is None:  # served whole: the reply is trailers-only CANCELLED
            self._finish(StatusCode.CANCELLED, "Cancelled by the server")
            return
        self.stream.reset()
        self._finish(StatusCode.CANCELLED, "Cancelled by the server", send=False)
        self._stop_task("server-cancel")

    # -- messages ------------------------------------------------------------

    def requests(self) -> AsyncIterator[Any]:
        """The request messages, decoded, as they arrive (one iterator per call)."""
        if self._requests is None:
            self._requests = self._read_messages()
        return self._requests

    async def _read_messages(self) -> AsyncIterator[Any]:
        decoder = p.MessageDecoder(self.server.max_receive_message_length,
                                   self._request_encoding)
        deserialize = self._handler.request_deserializer
        hooks = self._hooks.message_received
        stream = self.stream
        assert stream is not None
        while True:
            chunk = await stream.read()
            if chunk is None:
                decoder.end()
                return
            self.bytes_in += len(chunk)
            for compressed, payload in decoder.feed_flagged(chunk):
                self.messages_in += 1
                self.last_request_compressed = compressed
                try:
                    message = deserialize(payload) if deserialize is not None else payload
                except Exception:
                    raise _Deserialize() from None
                for fn in hooks:
                    message = fn(self, message)
                    if inspect.isawaitable(message):
                        message = await message
                    if message is None:
                        break
                if message is not None:
                    yield message

    async def _one_request(self) -> Any:
        if self._hooks.message_received:  # hooks that see no message keep the fast path
            messages = [m async for m in self.requests()]
        else:  # the unary fast path: no async generator between the stream and us
            decoder = p.MessageDecoder(self.server.max_receive_message_length,
                                       self._request_encoding)
            payloads: list[tuple[bool, bytes]] = []
            stream = self.stream
            assert stream is not None
            while True:
                chunk = await stream.read()
                if chunk is None:
                    decoder.end()
                    break
                self.bytes_in += len(chunk)
                payloads += decoder.feed_flagged(chunk)
            return self._deserialize_one(payloads)
        if len(messages) != 1:
            raise _RequestCount(len(messages))
        return messages[0]

    def _deserialize_one(self, payloads: list[tuple[bool, bytes]]) -> Any:
        """A unary call's request from its decoded (compressed, payload) list."""
        self.messages_in = len(payloads)
        if len(payloads) != 1:
            raise _RequestCount(len(payloads))
        self.last_request_compressed, payload = payloads[0]
        deserialize = self._handler.request_deserializer
        try:
            return deserialize(payload) if deserialize is not None else payload
        except Exception:
            raise _Deserialize() from None

    def set_compression(self, compression: Any) -> None:
        if self.headers_sent:
            return
        name = getattr(compression, "name", compression)
        name = None if name is None else str(name).lower()
        if name in ("nocompression", "identity", None):
            self.encoding = None
        elif name in self._accept and name in p.ENCODINGS:
            self.encoding = name
        else:
            self.encoding = None   # the client does not accept it: identity

    def send_initial(self, metadata: Optional[Metadata] = None) -> None:
        if self.headers_sent or self.done:
            return
        self.headers_sent = True
        head = p.response_headers(metadata, self.encoding)
        if self.stream is None:
            self._head = head
        else:
            self.stream.send_headers(head)

    def _frame(self, message: Any) -> bytes:
        """Serialize and frame one response message (the response headers
        go first if they have not)."""
        serialize = self._handler.response_serializer
        payload = serialize(message) if serialize is not None else message
        if not self.headers_sent:
            self.send_initial()
        encoding = None if self.skip_compression else self.encoding
        self.skip_compression = False
        data = p.encode_message(payload, encoding)
        self.messages_out += 1
        self.bytes_out += len(data)
        return data

    async def send(self, message: Any) -> None:
        """Serialize, frame and send one response message (dropped once
        the call has ended: cancelled, past its deadline)."""
        if self.done:
            return
        for fn in self._hooks.message_sending:
            message = fn(self, message)
            if inspect.isawaitable(message):
                message = await message
            if message is None:
                return
        assert self.stream is not None
        if self.session is not None:
            self.session.activity += 1
        await self.stream.send_data(self._frame(message))

    def _queue(self, message: Any) -> None:
        """A call without a stream: its one response message (after the
        plain message_sending hooks)."""
        for fn in self._hooks.message_sending:
            message = fn(self, message)
            if message is None:
                return
        self._body = self._frame(message)

    async def _send_all(self, messages: Iterable[Any]) -> None:
        """Send a plain generator's messages. It runs on the engine's thread,
        so the loop does nothing else between two of its messages anyway:
        they are framed together, up to GRPC_STREAM_COALESCE bytes (or
        GRPC_STREAM_COALESCE_DELAY seconds since the first of them) per
        send, one DATA frame per 16 KiB rather than one per message; after
        each send the loop gets a turn, so the batch is written while the
        next is made and other calls are served."""
        if self._hooks.message_sending:
            for m in messages:
                if self.done:
                    break
                await self.send(m)
            return
        assert self.stream is not None
        session = self.session
        send_data = self.stream.send_data
        frame = self._frame
        size_limit, delay = limits.GRPC_STREAM_COALESCE, limits.GRPC_STREAM_COALESCE_DELAY
        clock = time.monotonic
        batch: list[bytes] = []
        size = 0
        first = 0.0
        for m in messages:
            if self.done:
                return
            data = frame(m)
            if not batch:
                first = clock()
            batch.append(data)
            size += len(data)
            if size >= size_limit or clock() - first >= delay:
                if session is not None:
                    session.activity += 1
                await send_data(b"".join(batch))
                batch.clear()
                size = 0
                await asyncio.sleep(0)  # the loop writes it (and serves others) meanwhile
        if batch and not self.done:
            await send_data(b"".join(batch))

    # -- running the handler -------------------------------------------------

    async def _invoke(self, resolved: _Resolved, loop: asyncio.AbstractEventLoop) -> None:
        handler, fn = resolved.handler, resolved.fn
        ctx = self.context
        pool = self.server._pool_size is not None
        arg: Any
        if resolved.is_async:
            arg = self.requests() if handler.request_streaming else await self._one_request()
            if resolved.is_asyncgen:
                async for m in fn(arg, ctx):
                    await self.send(m)
                return
            result = await fn(arg, ctx)
            if handler.response_streaming:
                if result is not None:
                    async for m in _aiter(result):
                        await self.send(m)
            elif result is not None and not self._failed():
                await self.send(result)
            return
        if handler.request_streaming:
            arg = _BlockingIterator(self.requests(), loop, self)
        else:
            arg = await self._one_request()
        if not pool and not handler.request_streaming:
            result = fn(arg, ctx)
            if handler.response_streaming:
                await self._send_all(result)
            elif result is not None and not self._failed():
                await self.send(result)
            return
        executor = self.server._executor()
        if handler.response_streaming:
            await loop.run_in_executor(executor, self._drive_in_thread, fn, arg, loop)
            return
        result = await loop.run_in_executor(executor, fn, arg, ctx)
        if result is not None and not self._failed():
            await self.send(result)

    def _failed(self) -> bool:
        return self.code is not None and self.code != StatusCode.OK

    def _drive_in_thread(self, fn: Callable[..., Any], arg: Any,
                         loop: asyncio.AbstractEventLoop) -> None:
        for m in fn(arg, self.context):
            if self.done:
                return
            asyncio.run_coroutine_threadsafe(self.send(m), loop).result()

    # -- the end -------------------------------------------------------------

    def _finish(self, code: StatusCode, details: str, *, error: Optional[BaseException] = None,
                send: bool = True) -> None:
        """Decide the status (once), send it, run callbacks and call_ended."""
        if self._finished:
            return
        self._finished = True
        self.code, self.details = code, details
        self.error = error
        self.duration = time.monotonic() - self.started_at
        stream = self.stream
        if send and (stream is None or not stream.ended):
            try:
                fields = p.trailers(code, details, self.trailing_metadata or None)
            except ValueError as e:   # the handler's trailing metadata is not sendable
                log.warning("gRPC call %s: trailing metadata refused: %s", self.method, e)
                self.code, self.details = StatusCode.INTERNAL, "invalid trailing metadata"
                fields = p.trailers(self.code, self.details)
            if stream is None:
                self._reply = (self._head, self._body, fields) if self._head is not None \
                    else (p.TRAILERS_ONLY_HEAD + fields, b"", None)
            else:
                try:
                    if not self.headers_sent:
                        self.headers_sent = True
                        stream.send_headers(p.TRAILERS_ONLY_HEAD + fields, end_stream=True)
                    else:
                        stream.send_trailers(fields)
                except H2StreamReset:
                    self.cancelled = True
        for cb in self._callbacks or ():
            try:
                cb()
            except Exception:
                log.warning("gRPC call callback raised", exc_info=True)
        if self._hooks.call_ended:
            self._call_ended()

    def _call_ended(self) -> None:
        """Run the call_ended hooks (the status is decided)."""
        for fn in self._hooks.call_ended:
            try:
                r = fn(self)
                if r is not None and inspect.isawaitable(r):
                    asyncio.ensure_future(r)
            except Exception:
                log.warning("gRPC hook call_ended raised", exc_info=True)


def _hook_failed(e: Exception) -> Abort:
    """What a call_started hook's failure (other than an abort) ends its call with."""
    log.warning("gRPC hook call_started raised %s", type(e).__name__)
    return Abort(StatusCode.INTERNAL, "interceptor failed")


class _Deserialize(GrpcError):
    def __str__(self) -> str:
        return "Exception deserializing request!"


class _RequestCount(GrpcError):
    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.n = n

    def __str__(self) -> str:
        return f"a unary request needs exactly one message, got {self.n}"


async def _aiter(it: Any) -> AsyncIterator[Any]:
    if hasattr(it, "__aiter__"):
        async for m in it:
            yield m
    else:
        for m in it:
            yield m


class _BlockingIterator:
    """The request messages for a plain handler in a thread: each next()
    asks the loop for one message, so nothing is read ahead of the handler."""

    def __init__(self, messages: AsyncIterator[Any], loop: asyncio.AbstractEventLoop,
                 call: ServerCall) -> None:
        self._messages = messages
        self._loop = loop
        self._call = call

    def __iter__(self) -> "_BlockingIterator":
        return self

    def __next__(self) -> Any:
        if self._call.done:
            raise StopIteration
        future = asyncio.run_coroutine_threadsafe(_next(self._messages), self._loop)
        item = future.result()
        if item is _END:
            raise StopIteration
        return item


_END = object()


async def _next(messages: AsyncIterator[Any]) -> Any:
    try:
        return await messages.__anext__()
    except StopAsyncIteration:
        return _END


def _parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "[::]", "::", "0.0.0.0"):
        host = "127.0.0.1" if host == "" else host
    if host == "localhost":
        host = "127.0.0.1"
    return host, int(port)


class Server(H2Server):
    """A fastnet Server that serves gRPC (grpcio's server API as well).

    ::

        server = fastnet.grpc.Server()
        server.add_service(protos.pkg.Greeter, GreeterServicer())   # fastnet.proto services
        pb2_grpc.add_GreeterServicer_to_server(Servicer(), server)  # grpcio-generated code
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()               # in a thread; or server.run() / await run_async()

    ``thread_pool``: False runs plain handlers on the engine's thread (those
    whose requests stream always go to the pool); True, a number of threads
    or an Executor runs every plain handler there. ``compression``: the
    responses' encoding when the client accepts it (gzip, deflate).
    ``hooks``: the call-path hooks (module docstring).
    ``keepalive_permit_without_calls``, ``min_recv_ping_interval_without_data``
    (seconds), ``max_ping_strikes``: the keep-alive policy enforced on
    clients' PINGs, grpcio's defaults (also read from grpcio's ``options``
    names: ``grpc.keepalive_permit_without_calls``,
    ``grpc.http2.min_ping_interval_without_data_ms``,
    ``grpc.http2.max_ping_strikes``). ``keepalive_time``: the server PINGs
    a client silent that many seconds (grpcio's default, two hours; None:
    never) and closes the connection if the answer does not come within
    ``keepalive_timeout`` seconds (20); grpcio's ``grpc.keepalive_time_ms``
    and ``grpc.keepalive_timeout_ms`` set them too, and fastnet.Server's
    ``keepalive_interval``, if given, is the time. Other keyword
    arguments are fastnet.h2's H2Server's (max_concurrent_streams, stream_window, ...)
    and fastnet.Server's (engine, max_connections, ...)."""

    def __init__(self, *, thread_pool: Union[bool, int, concurrent.futures.Executor] = False,
                 max_receive_message_length: int = limits.DEFAULT_GRPC_MAX_RECEIVE_MESSAGE,
                 compression: Optional[Any] = None, hooks: Iterable[Any] = (),
                 keepalive_permit_without_calls: bool = limits.GRPC_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                 min_recv_ping_interval_without_data: float =
                 limits.GRPC_MIN_RECV_PING_INTERVAL_WITHOUT_DATA,
                 max_ping_strikes: int = limits.GRPC_MAX_PING_STRIKES,
                 keepalive_time: Optional[float] = limits.GRPC_SERVER_KEEPALIVE_TIME,
                 keepalive_timeout: float = limits.GRPC_SERVER_KEEPALIVE_TIMEOUT,
                 options: Iterable[tuple[str, Any]] = (),
                 **server_options: Any) -> None:
        options = list(options)
        for key, value in options:  # grpcio's server options, the keep-alive ones
            if key == "grpc.keepalive_time_ms":
                keepalive_time = value / 1000 if value > 0 else None
            elif key == "grpc.keepalive_timeout_ms":
                keepalive_timeout = value / 1000
        if not keepalive_timeout > 0:
            raise ValueError("keepalive_timeout must be positive")
        self.keepalive_timeout = keepalive_timeout
        server_options.setdefault("keepalive_interval", keepalive_time)
        super().__init__(**server_options)
        for key, value in options:
            if key == "grpc.keepalive_permit_without_calls":
                keepalive_permit_without_calls = bool(value)
            elif key == "grpc.http2.min_ping_interval_without_data_ms":
                min_recv_ping_interval_without_data = value / 1000
            elif key == "grpc.http2.max_ping_strikes":
                max_ping_strikes = int(value)
        if min_recv_ping_interval_without_data < 0 or max_ping_strikes < 0:
            raise ValueError("min_recv_ping_interval_without_data and max_ping_strikes "
                             "must be >= 0")
        self.keepalive_permit_without_calls = keepalive_permit_without_calls
        self.min_recv_ping_interval_without_data = min_recv_ping_interval_without_data
        self.max_ping_strikes = max_ping_strikes
        self.max_receive_message_length = max_receive_message_length
        name = getattr(compression, "name", compression)
        self.compression = None if name is None or str(name).lower() == "nocompression" \
            else str(name).lower()
        if self.compression is not None:
            p.check_encoding(self.compression)
        self._hooks: list[Any] = list(hooks)
        self._hook_lists = _HookLists.of(self._hooks)
        self._registered: dict[str, Any] = {}
        self._services: list[Service] = []
        self._resolved: dict[str, _Resolved] = {}
        self._generic: list[Any] = []
        self._pool: Optional[concurrent.futures.Executor] = None
        self._pool_size: Optional[int]
        if isinstance(thread_pool, concurrent.futures.Executor):
            self._pool, self._pool_size = thread_pool, 0
        elif thread_pool is True:
            self._pool_size = limits.DEFAULT_GRPC_THREAD_POOL
        elif thread_pool:
            self._pool_size = int(thread_pool)
        else:
            self._pool_size = None
        self._pool_lock = threading.Lock()
        #: Every connection's session, by peer (what its calls count on).
        self._sessions: dict[tuple[str, int], _GrpcSession] = {}
        self._refused = 0          # of them, turned away (answering RESOURCE_EXHAUSTED)
        self._too_many_pings = 0   # connections closed by the keep-alive policy
        self._pings = 0            # PINGs received from clients
        self._keepalive_pings = 0  # keep-alive PINGs sent to clients
        self._keepalive_acks = 0   # and answered
        self._keepalive_timeouts = 0  # connections closed for not answering in time
        self._thread: Optional[threading.Thread] = None
        self._stopped = threading.Event()
        self.stream_app = serve_streams(self._serve_stream)
        # fastnet.h2's quick way for requests complete in one read, where it has one
        self.stream_app.on_complete = self._serve_complete  # type: ignore[attr-defined]

    # -- registering ---------------------------------------------------------

    def add_hook(self, hook: Any) -> None:
        """Add a call-path hook (after those already added)."""
        self._hooks.append(hook)
        self._hook_lists = _HookLists.of(self._hooks)

    def add_service(self, service: Service, servicer: Any) -> None:
        """Serve ``servicer``'s methods for ``service`` (from fastnet.grpc.load)."""
        self.add_registered_method_handlers(service.full_name, service.handlers(servicer))
        self._services.append(service)

    def services(self) -> list[Service]:
        """The services added with add_service (reflection serves their files)."""
        return list(self._services)

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[Any]) -> None:
        """grpcio's: objects with ``service(handler_call_details)``."""
        self._generic.extend(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str,
                                       method_handlers: dict[str, Any]) -> None:
        """grpcio's (1.62+): method name -> RpcMethodHandler for one service."""
        for name, h in method_handlers.items():
            self._registered[f"/{service_name}/{name}"] = h
            self._resolved.pop(f"/{service_name}/{name}", None)

    def _lookup(self, path: str, call: Optional[ServerCall]) -> Optional[_Resolved]:
        """The handler of ``path``: registered ones resolved once; generic
        handlers asked per call (they see ``call``'s metadata)."""
        r = self._resolved.get(path)
        if r is not None:
            return r
        h = self._registered.get(path)
        if h is not None:
            r = self._resolved[path] = _resolve(h, self._pool_size is not None)
            return r
        if self._generic and call is not None:
            details = HandlerCallDetails(path, tuple(Metadatum(k, v)
                                                     for k, v in call.invocation_metadata))
            for g in self._generic:
                h = g.service(details)
                if h is not None:
                    return _resolve(h, self._pool_size is not None)
        return None

    def service_names(self) -> list[str]:
        """Every service served (registered, and generic handlers that say)."""
        names = {path.split("/")[1] for path in self._registered}
        for g in self._generic:
            fn = getattr(g, "service_name", None)
            if fn is not None:
                names.add(fn())
        return sorted(names)

    def _executor(self) -> concurrent.futures.Executor:
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = concurrent.futures.ThreadPoolExecutor(
                        self._pool_size or limits.DEFAULT_GRPC_THREAD_POOL,
                        thread_name_prefix="fastnet-grpc", initializer=block_signals)
        return self._pool

    # -- serving -------------------------------------------------------------

    async def _serve_stream(self, stream: ServerStream) -> None:
        call = ServerCall(self, stream)
        session = self._sessions.get(stream.peer)
        if session is not None:
            if session.refused is not None:
                stream.send_headers(session.refusal()[0], end_stream=True)
                return
            session.activity += 1
            call.session = session
        await call.run()

    def _serve_complete(self, stream_id: int, headers: list[tuple[bytes, bytes]], body: bytes,
                        peer: tuple[str, int]) -> Optional[Reply]:
        """fastnet.h2's quick way, for a request that came whole in one read:
        a unary call to a registered plain handler on the engine's thread,
        whose hooks are plain (interceptors' included), is served here,
        inside that read, without a task or a stream; anything else (None)
        takes the stream path."""
        session = self._sessions.get(peer)
        if session is not None:
            if session.refused is not None:
                return session.refusal()
            session.activity += 1
        if not self._hook_lists.plain:
            return None
        method = path = content_type = None
        short = True   # no header asks for more than the short way does
        for name, value in headers:
            if name == b":path":
                path = value
            elif name == b":method":
                method = value
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout" or name == b"grpc-encoding" and value != b"identity":
                short = False
        if method != b"POST" or path is None:
            return None
        spath = path.decode("latin-1")
        resolved = self._resolved.get(spath) or self._lookup(spath, None)
        if resolved is None or resolved.watch or resolved.handler.response_streaming:
            return None
        if short and content_type in _SHORT_CONTENT_TYPES and not self._hooks \
                and self.compression is None:
            reply = self._serve_short(resolved, headers, spath, peer, body)
            if reply is not None:
                return reply
        return ServerCall(self, None, headers, spath, peer).run_complete(resolved, body)

    def _serve_short(self, resolved: _Resolved, headers: list[tuple[bytes, bytes]], path: str,
                     peer: tuple[str, int], body: bytes) -> Optional[Reply]:
        """The short way of _serve_complete: a unary call with no hooks, no
        deadline, no compression and one well-formed message, whose handler
        is a plain one on the engine's thread. The request is decoded from
        the body, the handler called with a context that makes the call's
        object only if asked (_ShortContext), and a reply that only
        returned a message is the constant head, that message framed and
        the OK trailers. None (nothing done yet) for a message the general
        way must judge: a bad prefix, over the limit, not decodable."""
        size = len(body) - p.PREFIX_SIZE
        if size < 0 or body[0] != 0 or p.PREFIX.unpack_from(body)[1] != size \
                or size > self.max_receive_message_length:
            return None
        handler = resolved.handler
        deserialize = handler.request_deserializer
        try:
            request = deserialize(body[p.PREFIX_SIZE:]) if deserialize is not None \
                else body[p.PREFIX_SIZE:]
        except Exception:
            return None
        context = _ShortContext(self, handler, headers, path, peer)
        try:
            result = resolved.fn(request, context)
            if context._made is None and result is not None:
                serialize = handler.response_serializer
                payload = serialize(result) if serialize is not None else result
                return (p.RESPONSE_HEAD_FIELDS, p.PREFIX.pack(0, len(payload)) + payload,
                        p.OK_TRAILER_FIELDS)
        except Exception as e:
            call = context._call
            call._failed_with(e)
            assert call._reply is not None
            return call._reply
        return context._call.answer(result)

    def listen(self, host: str = "127.0.0.1", port: int = 9000, *,  # type: ignore[override]
               protocol: Any = "grpc", handler: Optional[Any] = None, **options: Any) -> Any:
        """Listen for gRPC (HTTP/2 with prior knowledge) on host:port;
        ``handler``, if given, is ``setup(server)`` (run first)."""
        if protocol in ("grpc", "h2") or getattr(protocol, "name", None) == "grpc":
            return _grpc_listen(self, host, port, handler, options)
        return super().listen(host, port, protocol=protocol, handler=handler, **options)

    def add_insecure_port(self, address: str) -> int:
        """grpcio's: listen on ``host:port`` (0: any free port); returns the port.
        ``[::]`` and ``0.0.0.0`` listen on every address as asked."""
        host, port = _parse_address(address)
        return int(self.listen(host, port).port)

    def start(self) -> None:
        """Serve in a background thread (grpcio's start)."""
        from .._threads import start_without_signals
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._stopped.clear()

        def run() -> None:
            try:
                self.run(handle_signals=False)
            finally:
                self._stopped.set()
        self._thread = threading.Thread(target=run, name="fastnet-grpc", daemon=True)
        start_without_signals(self._thread)

    def stop(self, grace: Optional[float] = None) -> threading.Event:  # type: ignore[override]
        """grpcio's stop: with ``grace`` None, at once; else drain (GOAWAY,
        RPCs in flight finish) for up to ``grace`` seconds. Returns an Event
        set once stopped (already set if the server never started)."""
        if grace is None:
            super().stop()
        else:
            self.shutdown(timeout=grace)
        if self._thread is None:
            self._stopped.set()
        return self._stopped

    def stats(self) -> dict[str, int]:
        """Server's counters, grpc_pings (PINGs received from clients),
        grpc_too_many_pings (connections closed by the keep-alive policy:
        GOAWAY ENHANCE_YOUR_CALM), grpc_keepalive_pings / _acks (the
        server's keep-alive PINGs sent / answered) and
        grpc_keepalive_timeouts (connections closed for not answering one
        within keepalive_timeout)."""
        out = super().stats()
        out["grpc_pings"] = self._pings
        out["grpc_too_many_pings"] = self._too_many_pings
        out["grpc_keepalive_pings"] = self._keepalive_pings
        out["grpc_keepalive_acks"] = self._keepalive_acks
        out["grpc_keepalive_timeouts"] = self._keepalive_timeouts
        return out

    def wait_for_termination(self, timeout: Optional[float] = None) -> bool:
        """Block until the server stopped; False if ``timeout`` passed first."""
        return self._stopped.wait(timeout)


# -- the registered unit: --protocol grpc -------------------------------------

def _setup_function(handler: Any) -> Optional[Callable[["Server"], Any]]:
    return handler if handler is not None and not isinstance(handler, StreamApp) else None


def _grpc_listen(server: "Server", host: str, port: int, handler: Any,
                 options: dict[str, Any]) -> Any:
    setup = _setup_function(handler)
    if setup is not None:
        setup(server)  # registers its services on the server
    if not server.service_names():
        from .health import add_health
        add_health(server)
    return H2Server.listen(server, host, port, protocol=GRPC, handler=server.stream_app,
                           **options)


class _GrpcSession(H2Session):
    """fastnet.h2's session with gRPC's connection rules.

    Refusing in gRPC's words: a connection turned away (over
    max_connections and the backlog, or past queue_timeout in it) is
    served just long enough to answer each call it sends with
    RESOURCE_EXHAUSTED (trailers-only, grpc-status 8), then GOAWAY; it is
    closed once the client goes, or GRPC_REFUSED_LINGER seconds after it
    was turned away. At most GRPC_MAX_REFUSED_CONNECTIONS are held so at
    once; past that, and during a drain, HTTP/2's GOAWAY turns it away.

    Keep-alive enforcement, as grpc core's (doc/keepalive.md): a PING
    that comes sooner after the previous one than the server's
    ``min_recv_ping_interval_without_data`` (GRPC_IDLE_PING_INTERVAL, two
    hours, while no call is open, unless ``keepalive_permit_without_calls``)
    is a strike; past ``max_ping_strikes`` strikes the connection gets
    GOAWAY ENHANCE_YOUR_CALM with debug data ``too_many_pings`` and is
    closed. A call or a response message since the last PING (grpc core:
    headers or data sent) forgives the strikes.

    The server's own keep-alive, as grpc core's: a client silent for the
    server's keepalive_time gets a PING (fastnet.Server's keep-alive
    probe, asked of the session: ``keepalive_probe``); unanswered within
    keepalive_timeout, the connection is closed."""

    _server: Optional["Server"] = None
    #: Why the connection was turned away (its calls' grpc-message), or None.
    refused: Optional[str] = None
    #: Calls and response messages so far (what forgives ping strikes).
    activity = 0
    _activity_at_ping = 0
    _last_ping = -math.inf
    _strikes = 0
    _linger: Optional[TimerHandle] = None
    _keepalive: Optional[TimerHandle] = None   # the unanswered keep-alive PING's deadline

    def keepalive_probe(self) -> Optional[bytes]:
        """A keep-alive PING of our own payload (the seam hands its answer
        to the session, which cancels the keepalive_timeout it armed)."""
        server = self._server
        if server is None or self.done:
            return None
        server._keepalive_pings += 1
        if self._keepalive is None:
            self._keepalive = server.engine.call_later(server.keepalive_timeout,
                                                       self._keepalive_expired)
        return KEEPALIVE_PING

    def ping_acked(self, data: bytes) -> None:
        if data == KEEPALIVE_DATA and self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
            if self._server is not None:
                self._server._keepalive_acks += 1

    def _keepalive_expired(self) -> None:
        self._keepalive = None
        if self.done or self._server is None:
            return
        log.info("closing gRPC connection from %s: keep-alive PING unanswered for %ss",
                 self.peer, self._server.keepalive_timeout)
        self._server._keepalive_timeouts += 1
        self.done = True
        self.conn.close()

    def refuse(self, why: str) -> bool:
        server = self.conn.server
        if why == "shutdown" or not isinstance(server, Server) \
                or server._refused >= limits.GRPC_MAX_REFUSED_CONNECTIONS:
            return False
        server._refused += 1
        self.refused = (f"server busy: over max_connections={server.max_connections}"
                        if why == "busy" else "server busy: waited past queue_timeout")
        self._linger = server.engine.call_later(limits.GRPC_REFUSED_LINGER, self._give_up)
        return True

    def opened(self) -> None:
        super().opened()
        server = self.conn.server
        if isinstance(server, Server):
            self._server = server
            server._sessions[self.peer] = self

    def refusal(self) -> Reply:
        """The answer to a call of a refused connection; GOAWAY follows."""
        if not self.draining:
            self.conn.server.engine.call_later(0, self._goaway)
        return (p.trailers_only(StatusCode.RESOURCE_EXHAUSTED, self.refused or ""), b"", None)

    def _goaway(self) -> None:
        if not self.done:
            out = self.drain()
            if out:
                self.conn.write(out)

    def _give_up(self) -> None:
        self._linger = None
        if not self.done:
            self._goaway()
            self.conn.close()

    def ping_received(self) -> None:
        server = self._server
        if server is None or self.done:
            return
        server._pings += 1
        now = time.monotonic()
        if self.activity != self._activity_at_ping:
            self._activity_at_ping = self.activity
            self._strikes = 0
            self._last_ping = -math.inf
        if self.idle() and not server.keepalive_permit_without_calls:
            interval = limits.GRPC_IDLE_PING_INTERVAL
        else:
            interval = server.min_recv_ping_interval_without_data
        allowed = self._last_ping + interval
        self._last_ping = now
        if allowed <= now:
            return
        self._strikes += 1
        if server.max_ping_strikes and self._strikes > server.max_ping_strikes:
            log.info("closing gRPC connection from %s: too many pings (%d strikes)",
                     self.peer, self._strikes)
            server._too_many_pings += 1
            self.h2.close(E.ENHANCE_YOUR_CALM, additional_data=b"too_many_pings")
            self.done = True
            self.conn.write(self.h2.data_to_send())
            self.conn.close()

    def closed(self) -> None:
        super().closed()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        server = self._server or self.conn.server
        if not isinstance(server, Server):
            return
        if self.refused is not None:
            server._refused -= 1
        if server._sessions.get(self.peer) is self:
            del server._sessions[self.peer]


#: The server's keep-alive PING (its 8 bytes are not the h2 probe's, whose
#: answer the seam drops: this one's answer must reach the session).
KEEPALIVE_DATA = b"grpc-ka!"
KEEPALIVE_PING = struct.pack(">BHBBI", 0, 8, 6, 0, 0) + KEEPALIVE_DATA


def _grpc_session(conn: Any, handler: Any) -> Any:
    options, http_limits = server_options(conn)
    return _GrpcSession(conn, handler, options, http_limits)


THREAD_POOL = Option("--grpc-thread-pool", type=int, default=0, metavar="N",
                     help="run plain gRPC handlers in a pool of N threads (default 0: on the "
                     "engine's thread; handlers of streaming requests always use a pool)")
MAX_RECEIVE = Option("--grpc-max-receive", type=size,
                     default=limits.DEFAULT_GRPC_MAX_RECEIVE_MESSAGE, metavar="SIZE",
                     help="largest gRPC message received (default: 4M, as grpcio)")
COMPRESSION = Option("--grpc-compression", choices=("gzip", "deflate"), default=None,
                     help="compress responses when the client accepts it (default: none)")


PERMIT_WITHOUT_CALLS = Option("--grpc-keepalive-permit-without-calls", action="store_true",
                              default=limits.GRPC_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                              help="let clients ping with no call open as often as with one")
MIN_PING_INTERVAL = Option("--grpc-min-ping-interval", type=seconds,
                           default=limits.GRPC_MIN_RECV_PING_INTERVAL_WITHOUT_DATA,
                           metavar="SECONDS", help="a client PING sooner than this after the "
                           "previous one, with nothing sent between, is a strike "
                           "(default: %(default)s, as grpcio)")
KEEPALIVE_TIME = Option("--grpc-keepalive-time", type=off_or_seconds,
                        default=limits.GRPC_SERVER_KEEPALIVE_TIME, metavar="SECONDS",
                        help="PING a client silent this long; off: never (default: "
                        "%(default)s, as grpcio; --keepalive-interval, if given, wins)")
KEEPALIVE_TIMEOUT = Option("--grpc-keepalive-timeout", type=seconds,
                           default=limits.GRPC_SERVER_KEEPALIVE_TIMEOUT, metavar="SECONDS",
                           help="close a connection whose keep-alive PING is unanswered "
                           "this long (default: %(default)s, as grpcio)")
MAX_PING_STRIKES = Option("--grpc-max-ping-strikes", type=int, default=limits.GRPC_MAX_PING_STRIKES,
                          metavar="N", help="strikes before GOAWAY ENHANCE_YOUR_CALM "
                          "too_many_pings (0: never; default: %(default)s, as grpcio)")


def _make_grpc_server(values: Mapping[str, Any], server_options: dict[str, Any]) -> "Server":
    v = dict(values)
    server_options = dict(server_options)
    if server_options.get("keepalive_interval", 0) is None:
        del server_options["keepalive_interval"]  # not given: --grpc-keepalive-time's
    return Server(keepalive_time=v.pop("grpc_keepalive_time"),
                  keepalive_timeout=v.pop("grpc_keepalive_timeout"),
                  thread_pool=v.pop("grpc_thread_pool") or False,
                  max_receive_message_length=v.pop("grpc_max_receive"),
                  compression=v.pop("grpc_compression"),
                  keepalive_permit_without_calls=v.pop("grpc_keepalive_permit_without_calls"),
                  min_recv_ping_interval_without_data=v.pop("grpc_min_ping_interval"),
                  max_ping_strikes=v.pop("grpc_max_ping_strikes"), **v, **server_options)


#: gRPC as a registered unit (``--protocol grpc``): HTTP/2 with prior
#: knowledge; ``--handler MODULE:FUNCTION`` names ``setup(server)``, which
#: adds the services (without one: the health service alone).
GRPC = register(ProtocolUnit(
    dataclasses.replace(H2_PROTOCOL, name="grpc", session_probe=True),
    help="gRPC over HTTP/2 (--handler: setup(server) adding services; default: health only)",
    session=_grpc_session, echo=False,
    options=(MAX_CONCURRENT_STREAMS, STREAM_WINDOW, CONNECTION_WINDOW, WINDOW_TIMEOUT,
             THREAD_POOL, MAX_RECEIVE, COMPRESSION, PERMIT_WITHOUT_CALLS, MIN_PING_INTERVAL,
             MAX_PING_STRIKES, KEEPALIVE_TIME, KEEPALIVE_TIMEOUT),
    make_server=_make_grpc_server, server_class=Server, needs_asyncio=lambda handler: True))
