"""The built-in interceptors: logging, authentication, rate limiting.

Each works on any protocol an adapter serves (the Call is protocol-neutral)
and takes a ``clock`` where time matters, so tests drive it with a fake one.
"""
from __future__ import annotations

import collections
import fnmatch
import hashlib
import json
import logging
import re
import time
from typing import Any, Callable, Collection, Iterable, Mapping, Optional, Union

from .. import limits
from .core import Abort, Call, Interceptor, Status

__all__ = ["AuthInterceptor", "BucketTable", "LineWriter", "LoggingInterceptor", "PUBLIC_METHODS",
           "RateLimitInterceptor", "MethodPatterns", "credential_identity"]


def _cut(text: str, limit: int = limits.CALL_LOG_MAX_FIELD) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


_json_str: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _json_value(value: Any) -> str:
    return f"{value:d}" if isinstance(value, int) else json.dumps(value)


#: Status names by number (an Enum's .name is a property lookup).
_NAMES = tuple(status.name for status in Status)
#: Methods whose escaped JSON form a LoggingInterceptor keeps.
_ESCAPED_METHODS = 1024

_PLAIN = re.compile(r"[!-~]*")  # printable ASCII without spaces: written as it is


def _text_value(value: Any) -> str:
    text = _cut(str(value))
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


class LineWriter:
    """A LoggingInterceptor ``sink`` writing each line to a text stream
    with no logging machinery (a LogRecord, its formatting and a flush per
    line cost ~30 µs; this ~1 µs): flushed when a line finds the last flush
    ``flush_interval`` seconds old (``limits.CALL_LOG_FLUSH_INTERVAL``),
    and by :meth:`flush`. Lines of a quiet server's last moments wait in
    the buffer until the next call or the flush at exit."""

    def __init__(self, stream: Any, *, flush_interval: float = limits.CALL_LOG_FLUSH_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.flush_interval = flush_interval
        self.clock = clock
        self._flushed = clock()

    def __call__(self, line: str) -> None:
        self.stream.write(line + "\n")
        now = self.clock()
        if now - self._flushed >= self.flush_interval:
            self._flushed = now
            self.stream.flush()

    def flush(self) -> None:
        """Write out what is buffered."""
        self.stream.flush()


class LoggingInterceptor(Interceptor):
    """One line per call, written when it ends (a stream: at its end).

    ``format``: "text" (``key=value`` pairs; a value with spaces or
    control characters quoted as a JSON string, so a peer's method name
    cannot forge a line) or "json" (one JSON object a line). The fields:
    protocol, method, peer, status, code (the protocol's own), duration_ms,
    messages_in, bytes_in, messages_out, bytes_out, and when set, identity
    and details. ``level`` (logging.INFO) on ``logger`` (a name or a
    Logger, default "fastnet.calls"); or ``sink``: a function given each
    line instead (the level is then ignored).
    """

    def __init__(self, format: str = "text", *, level: int = logging.INFO,
                 logger: Union[str, logging.Logger] = "fastnet.calls",
                 sink: Optional[Callable[[str], None]] = None) -> None:
        if format not in ("text", "json"):
            raise ValueError(f"format must be 'text' or 'json', not {format!r}")
        self.format = format
        self.level = level
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.sink = sink
        self._escaped: dict[str, str] = {}

    def record(self, call: Call) -> dict[str, Any]:
        """The fields of a call's line."""
        fields: dict[str, Any] = {
            "protocol": call.protocol, "method": _cut(call.method),
            "peer": f"{call.peer[0]}:{call.peer[1]}", "status": call.status.name,
            "code": call.protocol_status, "duration_ms": round(call.duration * 1000, 3),
            "messages_in": call.messages_in, "bytes_in": call.bytes_in,
            "messages_out": call.messages_out, "bytes_out": call.bytes_out}
        if call.identity is not None:
            fields["identity"] = _cut(str(call.identity))
        if call.details:
            fields["details"] = _cut(call.details)
        return fields

    def line(self, call: Call) -> str:
        """The call's line in the chosen format (the fields of :meth:`record`)."""
        if self.format == "text":
            return " ".join(f"{key}={_text_value(value)}" for key, value in self.record(call).items())
        # JSON written field by field (json.dumps of the record costs 3x more,
        # and this runs once per call): strings escaped by json's C encoder,
        # a method's escaped form kept (a bounded table: names come from peers).
        code = call.protocol_status
        method = self._escaped.get(call.method)
        if method is None:
            method = _json_str(_cut(call.method))
            if len(self._escaped) < _ESCAPED_METHODS:
                self._escaped[call.method] = method
        line = (f'{{"protocol":{_json_str(call.protocol)},"method":{method},'
                f'"peer":{_json_str(f"{call.peer[0]}:{call.peer[1]}")},'
                f'"status":"{_NAMES[call.status]}","code":'
                f'{"null" if code is None else _json_value(code)},'
                f'"duration_ms":{round(call.duration * 1000, 3)!r},'
                f'"messages_in":{call.messages_in:d},"bytes_in":{call.bytes_in:d},'
                f'"messages_out":{call.messages_out:d},"bytes_out":{call.bytes_out:d}')
        if call.identity is not None:
            line += f',"identity":{_json_str(_cut(str(call.identity)))}'
        if call.details:
            line += f',"details":{_json_str(_cut(call.details))}'
        return line + "}"

    def after(self, call: Call) -> None:
        if self.sink is not None:
            self.sink(self.line(call))
        elif self.logger.isEnabledFor(self.level):
            self.logger.log(self.level, "%s", self.line(call))


#: Methods an AuthInterceptor lets through without credentials by default:
#: gRPC's health and reflection services.
PUBLIC_METHODS = ("/grpc.health.v1.Health/*", "/grpc.reflection.v1.ServerReflection/*",
                  "/grpc.reflection.v1alpha.ServerReflection/*")


class MethodPatterns:
    """Method names matched against shell-style patterns (``*``, ``?``,
    ``[...]``, as fnmatch), compiled once into one regular expression."""

    __slots__ = ("patterns", "_regex")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in self.patterns)
        self._regex = re.compile(joined) if self.patterns else None

    def __contains__(self, method: object) -> bool:
        return (self._regex is not None and isinstance(method, str)
                and self._regex.match(method) is not None)

    def __repr__(self) -> str:
        return f"MethodPatterns({list(self.patterns)!r})"


def credential_identity(token: str) -> str:
    """The identity a token from a plain set stands for: ``key-`` and 12
    hex digits of its SHA-256 (logs never carry the token itself)."""
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:12]


#: Who may call what: ``policy(identity, method) -> bool``.
Policy = Callable[[Any, str], bool]


class AuthInterceptor(Interceptor):
    """Bearer tokens (``authorization: Bearer TOKEN``) or API keys
    (``x-api-key: KEY``, the header named by ``api_key_header``) checked
    before the call.

    ``credentials``: a Mapping token -> identity, a collection of valid
    tokens (each one's identity is :func:`credential_identity`), or a
    function ``token -> identity or None``. Missing credentials, or ones
    the check refuses, end the call UNAUTHENTICATED. ``allow``: a Mapping
    from method pattern to the identities that may call it (methods no
    pattern matches are open to every identity), or a function
    ``(identity, method) -> bool``; a refusal is PERMISSION_DENIED.
    ``public``: method patterns served without credentials (default
    :data:`PUBLIC_METHODS`). The identity is ``call.identity`` (the
    handler reads it through :func:`~fastnet.interceptors.current_call`).
    """

    def __init__(self, credentials: Union[Mapping[str, Any], Collection[str],
                                          Callable[[str], Any]], *,
                 allow: Union[Mapping[str, Collection[Any]], Policy, None] = None,
                 public: Iterable[str] = PUBLIC_METHODS, bearer: bool = True,
                 api_key_header: Optional[str] = "x-api-key") -> None:
        if isinstance(credentials, Mapping):
            table = dict(credentials)
            self.check: Callable[[str], Any] = table.get
        elif callable(credentials):
            self.check = credentials
        else:
            valid = frozenset(credentials)
            self.check = lambda token: credential_identity(token) if token in valid else None
        if not bearer and api_key_header is None:
            raise ValueError("no place to find credentials: bearer=False and no api_key_header")
        self.bearer = bearer
        self.api_key_header = api_key_header.lower() if api_key_header else None
        self.public = MethodPatterns(public)
        self.policy: Optional[Policy] = None
        if callable(allow):
            self.policy = allow
        elif allow is not None:
            rules = [(MethodPatterns([pattern]), frozenset(who)) for pattern, who in allow.items()]
            self.policy = lambda identity, method: all(
                identity in who for patterns, who in rules if method in patterns)

    def credential(self, metadata: Mapping[str, str]) -> Optional[str]:
        """The token or key the metadata carries, or None."""
        if self.bearer:
            header = metadata.get("authorization")
            if header is not None:
                scheme, _, token = header.strip().partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return token.strip()
        if self.api_key_header is not None:
            key = metadata.get(self.api_key_header)
            if key:
                return key.strip()
        return None

    def before(self, call: Call) -> None:
        if call.method in self.public:
            return
        token = self.credential(call.metadata)
        if token is None:
            raise Abort(Status.UNAUTHENTICATED, "missing credentials")
        identity = self.check(token)
        if identity is None:
            raise Abort(Status.UNAUTHENTICATED, "invalid credentials")
        call.identity = identity
        if self.policy is not None and not self.policy(identity, call.method):
            raise Abort(Status.PERMISSION_DENIED,
                        f"{_cut(str(identity), 64)} may not call {_cut(call.method, 128)}")


def allow_per_identity(rules: Mapping[Any, Iterable[str]]) -> Policy:
    """A policy from identity -> the method patterns it may call (an
    identity not in rules may call nothing)."""
    compiled = {identity: MethodPatterns(patterns) for identity, patterns in rules.items()}
    empty = MethodPatterns(())

    def policy(identity: Any, method: str) -> bool:
        return method in compiled.get(identity, empty)
    return policy


#: A token, less what float rounding of a refill can lose (a peer waiting
#: exactly the retry time it was told is served).
_ONE = 1.0 - 1e-9


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class BucketTable:
    """Token buckets by key, ``rate`` tokens a second up to ``burst``,
    at most ``max_keys`` of them: the least recently used is forgotten
    first (a forgotten key starts again full, the price of bounded memory
    under a hostile key space)."""

    def __init__(self, rate: float, burst: Optional[float] = None, *,
                 max_keys: int = limits.DEFAULT_RATE_LIMIT_MAX_KEYS) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate}")
        burst = rate if burst is None else burst
        if burst < 1:
            raise ValueError(f"burst must be at least 1 token, not {burst}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, not {max_keys}")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: collections.OrderedDict[Any, _Bucket] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Any, now: float) -> float:
        """Take one token for key: 0.0 if there was one, else the seconds
        until there will be."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = now - bucket.stamp
            if elapsed > 0:
                bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
                bucket.stamp = now
        if bucket.tokens >= _ONE:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def _peer_host(call: Call) -> Any:
    return call.peer[0]


_KEYS: dict[str, Callable[[Call], Any]] = {
    "identity": lambda call: ("id", call.identity) if call.identity is not None
    else ("peer", call.peer[0]),
    "peer": _peer_host,
    "method": lambda call: call.method,
}


class RateLimitInterceptor(Interceptor):
    """Token buckets: ``rate`` calls started a second (bursts of
    ``burst``, default one second's worth), and optionally
    ``message_rate`` request messages a second (``message_burst``) for
    streams; past either the call ends RESOURCE_EXHAUSTED with the seconds
    to wait (``retry_after``: gRPC's ``grpc-retry-pushback-ms`` trailer,
    HTTP's Retry-After).

    ``key``: "identity" (the authenticated identity, else the peer's
    host: put it after an AuthInterceptor), "peer" (the peer's host),
    "method", or a function ``call -> key``. ``max_keys`` bounds the
    buckets kept (:class:`BucketTable`). ``clock``: time.monotonic.
    """

    def __init__(self, rate: Optional[float], burst: Optional[float] = None, *,
                 key: Union[str, Callable[[Call], Any]] = "identity",
                 message_rate: Optional[float] = None, message_burst: Optional[float] = None,
                 max_keys: int = limits.DEFAULT_RATE_LIMIT_MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate is None and message_rate is None:
            raise ValueError("give rate, message_rate or both")
        if isinstance(key, str):
            if key not in _KEYS:
                raise ValueError(f"key must be one of {sorted(_KEYS)} or a function, not {key!r}")
            self.key: Callable[[Call], Any] = _KEYS[key]
        else:
            self.key = key
        self.calls = BucketTable(rate, burst, max_keys=max_keys) if rate is not None else None
        self.messages = (BucketTable(message_rate, message_burst, max_keys=max_keys)
                         if message_rate is not None else None)
        self.clock = clock
        if self.messages is None:  # no per-message work when only calls are limited
            self.on_request = Interceptor.on_request.__get__(self)  # type: ignore[method-assign]

    def _refuse(self, what: str, wait: float) -> Abort:
        return Abort(Status.RESOURCE_EXHAUSTED, f"rate limit: too many {what}; retry in {wait:.3f} s",
                     retry_after=wait)

    def before(self, call: Call) -> None:
        if self.calls is not None:
            wait = self.calls.take(self.key(call), self.clock())
            if wait:
                raise self._refuse("calls", wait)

    def on_request(self, call: Call, message: Any) -> Any:
        assert self.messages is not None
        key = call.values.get("rate_key")
        if key is None:
            key = call.values["rate_key"] = self.key(call)
        wait = self.messages.take(key, self.clock())
        if wait:
            raise self._refuse("messages", wait)
        return message
