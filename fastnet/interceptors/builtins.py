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
    return "null" if value is None else f"{value:d}" if isinstance(value, int) \
        else json.dumps(value)


#: Status names by number (an Enum's .name is a property lookup).
_NAMES = tuple(status.name for status in Status)

_PLAIN = re.compile(r"[!-~]*")  # printable ASCII without spaces: written as it is


def _text_value(value: Any) -> str:
    text = _cut(str(value))
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


def _remember(table: dict[Any, Any], key: Any, value: Any) -> Any:
    """table[key] = value, the table emptied first when full (its keys come
    from peers: limits.INTERCEPTOR_TABLE_ENTRIES bounds it); returns value."""
    if len(table) >= limits.INTERCEPTOR_TABLE_ENTRIES:
        table.clear()
    table[key] = value
    return value


class LineWriter:
    """A LoggingInterceptor ``sink`` writing lines to a text stream with no
    logging machinery (a LogRecord, its formatting and a flush per line
    cost ~30 µs): lines are kept and written as one block when a line finds
    the last write ``flush_interval`` seconds old
    (``limits.CALL_LOG_FLUSH_INTERVAL``), when ``max_lines`` are waiting
    (``limits.CALL_LOG_MAX_BUFFERED``), and by :meth:`flush`. Lines of a
    quiet server's last moments wait until the next call or the flush at
    exit. Safe to call from several threads (no lock: a deque)."""

    def __init__(self, stream: Any, *, flush_interval: float = limits.CALL_LOG_FLUSH_INTERVAL,
                 max_lines: int = limits.CALL_LOG_MAX_BUFFERED,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, not {max_lines}")
        self.stream = stream
        self.flush_interval = flush_interval
        self.max_lines = max_lines
        self.clock = clock
        self._lines: collections.deque[str] = collections.deque()
        self._flushed = clock()

    def __call__(self, line: str) -> None:
        lines = self._lines
        lines.append(line)
        if len(lines) >= self.max_lines or self.clock() - self._flushed >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write out the lines kept and flush the stream."""
        self._flushed = self.clock()
        lines, popleft = self._lines, self._lines.popleft
        if lines:
            # popleft, not a swap of lists: a line another thread adds meanwhile stays
            self.stream.write("".join([popleft() + "\n" for _ in range(len(lines))]))
        self.stream.flush()


class _Line:
    """A call's line for the logging module, formatted only if a handler
    formats the record (logging's lazy ``%s`` argument)."""

    __slots__ = ("format", "fields")

    def __init__(self, format: Callable[..., str], fields: tuple[Any, ...]) -> None:
        self.format, self.fields = format, fields

    def __str__(self) -> str:
        return self.format(*self.fields)


class LoggingInterceptor(Interceptor):
    """One line per call, written when it ends (a stream: at its end).

    ``format``: "text" (``key=value`` pairs; a value with spaces or
    control characters quoted as a JSON string, so a peer's method name
    cannot forge a line) or "json" (one JSON object a line). The fields:
    protocol, method, peer, status, code (the protocol's own), duration_ms
    (three decimals), messages_in, bytes_in, messages_out, bytes_out, and
    when set, identity and details. ``level`` (logging.INFO) on ``logger``
    (a name or a Logger, default "fastnet.calls"; the line is formatted
    only if a handler emits it); or ``sink``: a function given each line
    instead (the level is then ignored), such as a :class:`LineWriter`.

    A line is three pieces kept (protocol, method, peer, status and code;
    the four counts; identity: bounded tables, their keys come from peers)
    and the duration, the one number formatted per call.
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
        json_form = format == "json"
        self._quote: Callable[[Any], str] = (lambda v: _json_str(_cut(str(v)))) if json_form \
            else _text_value
        self._key: Callable[[str], str] = (lambda k: f',"{k}":') if json_form \
            else (lambda k: f" {k}=")
        self._end = "}" if json_form else ""
        # (protocol, method, peer, status, code) -> the line up to duration_ms's value;
        # (messages_in, bytes_in, messages_out, bytes_out) -> the line after it
        self._heads: dict[tuple[Any, ...], str] = {}
        self._tails: dict[tuple[int, int, int, int], str] = {}
        self._identities: dict[Any, str] = {}

    def record(self, call: Call) -> dict[str, Any]:
        """The fields of a call's line (as :meth:`line` writes them)."""
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
        return self.format_line(call.protocol, call.method, call.peer, _NAMES[call.status],
                                call.protocol_status, call.duration, call.messages_in,
                                call.bytes_in, call.messages_out, call.bytes_out, call.identity,
                                call.details)

    def format_line(self, protocol: str, method: str, peer: tuple[str, int], status: str,
                    code: Any, duration: float, messages_in: int, bytes_in: int,
                    messages_out: int, bytes_out: int, identity: Any = None,
                    details: str = "") -> str:
        """A call's line from its fields (``status`` by name, ``code`` the
        protocol's own, ``duration`` in seconds)."""
        # the pieces before and after the duration kept (bounded tables): a
        # line is one float formatted and joined (a % of all its numbers
        # costs three times as much)
        cached = code.__class__ is int or code is None
        whose = (protocol, method, peer, status, code)
        head = self._heads.get(whose) if cached else None
        if head is None:
            key, quote = self._key, self._quote
            if self.format == "json":
                head = f'{{"protocol":{_json_str(protocol)}' + key("method") + quote(method) \
                    + key("peer") + quote(f"{peer[0]}:{peer[1]}") + f',"status":"{status}"' \
                    + key("code") + _json_value(code)
            else:
                head = f"protocol={_text_value(protocol)}" + key("method") + quote(method) \
                    + key("peer") + quote(f"{peer[0]}:{peer[1]}") + f" status={status}" \
                    + key("code") + _text_value(code)
            head += key("duration_ms")
            if cached:
                _remember(self._heads, whose, head)
        counts = (messages_in, bytes_in, messages_out, bytes_out)
        tail = self._tails.get(counts)
        if tail is None:
            key = self._key
            tail = _remember(self._tails, counts, key("messages_in") + f"{messages_in:d}"
                             + key("bytes_in") + f"{bytes_in:d}" + key("messages_out")
                             + f"{messages_out:d}" + key("bytes_out") + f"{bytes_out:d}")
        text = ""
        if identity is not None:
            try:
                known = self._identities.get(identity)
            except TypeError:  # an identity that is not hashable
                known = None
            if known is None:
                known = self._key("identity") + self._quote(identity)
                if isinstance(identity, str):
                    _remember(self._identities, identity, known)
            text = known
        if details:
            text += self._key("details") + self._quote(details)
        return "".join((head, "%.3f" % (duration * 1000), tail, text, self._end))

    def emit(self, *fields: Any) -> None:
        """Write the line of these fields (:meth:`format_line`'s) to the
        sink, or to the logger if it is enabled for the level."""
        if self.sink is not None:
            self.sink(self.format_line(*fields))
        elif self.logger.isEnabledFor(self.level):
            self.logger.log(self.level, "%s", _Line(self.format_line, fields))

    def after(self, call: Call) -> None:
        self.emit(call.protocol, call.method, call.peer, _NAMES[call.status],
                  call.protocol_status, call.duration, call.messages_in, call.bytes_in,
                  call.messages_out, call.bytes_out, call.identity, call.details)


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
        # token -> identity when the credentials are a table or a set (a
        # function decides otherwise), and the same by the whole header
        # value (``Bearer TOKEN``): the common case is one dict lookup.
        tokens: Optional[dict[str, Any]] = None
        if isinstance(credentials, Mapping):
            tokens = dict(credentials)
        elif not callable(credentials):
            tokens = {token: credential_identity(token) for token in credentials}
        self.check: Callable[[str], Any] = tokens.get if tokens is not None \
            else credentials  # type: ignore[assignment]
        if not bearer and api_key_header is None:
            raise ValueError("no place to find credentials: bearer=False and no api_key_header")
        self.bearer = bearer
        self.api_key_header = api_key_header.lower() if api_key_header else None
        self._headers: dict[str, Any] = {}
        #: The same by the header's bytes, as a request carries it (gRPC's
        #: fused path looks it up before any metadata is decoded).
        self.bearer_headers: dict[bytes, Any] = {}
        if tokens is not None and bearer:
            self._headers = {f"Bearer {token}": identity for token, identity in tokens.items()}
            for header, identity in self._headers.items():
                try:
                    self.bearer_headers[header.encode("latin-1")] = identity
                except UnicodeEncodeError:  # no request's header decodes to it
                    pass
        self.public = MethodPatterns(public)
        self._public: dict[str, bool] = {}   # method -> in self.public (bounded)
        self.policy: Optional[Policy] = None
        if callable(allow):
            self.policy = allow
        elif allow is not None:
            rules = [(MethodPatterns([pattern]), frozenset(who)) for pattern, who in allow.items()]
            self.policy = _remembered(lambda identity, method: all(
                identity in who for patterns, who in rules if method in patterns))

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

    def identify(self, metadata: Mapping[str, str]) -> Any:
        """The identity the metadata's credential stands for; Abort if none."""
        token = self.credential(metadata)
        if token is None:
            raise Abort(Status.UNAUTHENTICATED, "missing credentials")
        identity = self.check(token)
        if identity is None:
            raise Abort(Status.UNAUTHENTICATED, "invalid credentials")
        return identity

    def is_public(self, method: str) -> bool:
        """method is served without credentials (answers kept in a bounded table)."""
        public = self._public.get(method)
        if public is None:
            public = _remember(self._public, method, method in self.public)
        return public

    def denied(self, identity: Any, method: str) -> Abort:
        """The refusal of a method the policy does not let identity call."""
        return Abort(Status.PERMISSION_DENIED,
                     f"{_cut(str(identity), 64)} may not call {_cut(method, 128)}")

    def before(self, call: Call) -> None:
        method = call.method
        if self.is_public(method):
            return
        metadata = call.metadata
        header = metadata.get("authorization")
        # the header exactly as the table has it, else the whole parse
        identity = self._headers.get(header) if header.__class__ is str else None
        if identity is None:
            identity = self.identify(metadata)
        call.identity = identity
        if self.policy is not None and not self.policy(identity, method):
            raise self.denied(identity, method)


class _Remembered:
    """A policy (a pure function of fixed rules) with its answers remembered
    per (identity, method) in a bounded table; ``rules`` is the function
    itself (gRPC's fused path keeps a method's answers by identity)."""

    __slots__ = ("rules", "_answers")

    def __init__(self, rules: Policy) -> None:
        self.rules = rules
        self._answers: dict[tuple[Any, str], bool] = {}

    def __call__(self, identity: Any, method: str) -> bool:
        key = (identity, method)
        answer = self._answers.get(key)
        if answer is None:
            answer = _remember(self._answers, key, self.rules(identity, method))
        return answer


def _remembered(policy: Policy) -> Policy:
    """policy with its answers remembered (:class:`_Remembered`)."""
    return _Remembered(policy)


def allow_per_identity(rules: Mapping[Any, Iterable[str]]) -> Policy:
    """A policy from identity -> the method patterns it may call (an
    identity not in rules may call nothing)."""
    compiled = {identity: MethodPatterns(patterns) for identity, patterns in rules.items()}
    empty = MethodPatterns(())

    def policy(identity: Any, method: str) -> bool:
        return method in compiled.get(identity, empty)
    return _remembered(policy)


class BucketTable:
    """Token buckets by key, ``rate`` tokens a second up to ``burst``,
    at most ``max_keys`` of them: the least recently used is forgotten
    first (a forgotten key starts again full, the price of bounded memory
    under a hostile key space).

    A bucket is one float, the time its tokens are spent up to (GCRA, the
    token bucket's equal): a key has a token while that time is at most
    ``burst - 1`` tokens' worth ahead of now, and taking one adds a token's
    interval. O(1), no lock: the table is used on the thread of the loop or
    engine that runs the chain."""

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
        self._interval = 1.0 / self.rate  # seconds a token takes to come back
        # How far ahead of now a key's time may be with a token left: a
        # billionth of a token of slack for float rounding, so a peer that
        # waits exactly the retry time it was told is served.
        self._ahead = (self.burst - 1.0 + 1e-9) * self._interval
        self._spent: collections.OrderedDict[Any, float] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._spent)

    def take(self, key: Any, now: float) -> float:
        """Take one token for key: 0.0 if there was one, else the seconds
        until there will be."""
        spent = self._spent.pop(key, None)  # put back below: the most recently used
        if spent is None or spent < now:
            spent = now
        elif spent - now > self._ahead:
            self._spent[key] = spent
            return spent - now - self._ahead
        self._spent[key] = spent + self._interval
        if len(self._spent) > self.max_keys:
            self._spent.popitem(last=False)
        return 0.0


def _peer_host(call: Call) -> Any:
    return call.peer[0]


def _by_identity(call: Call) -> Any:
    return ("id", call.identity) if call.identity is not None else ("peer", call.peer[0])


_KEYS: dict[str, Callable[[Call], Any]] = {
    "identity": _by_identity,
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
        #: "identity", "peer" or "method"; None for a function.
        self.key_name: Optional[str] = key if isinstance(key, str) else None
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

    def refusal(self, what: str, wait: float) -> Abort:
        """The refusal of one more of ``what`` ("calls", "messages") for ``wait`` seconds."""
        return Abort(Status.RESOURCE_EXHAUSTED, f"rate limit: too many {what}; retry in {wait:.3f} s",
                     retry_after=wait)

    def before(self, call: Call) -> None:
        if self.calls is not None:
            if self.key is _by_identity:  # the usual key, without a frame for it
                identity = call.identity
                key = ("id", identity) if identity is not None else ("peer", call.peer[0])
            else:
                key = self.key(call)
            wait = self.calls.take(key, self.clock())
            if wait:
                raise self.refusal("calls", wait)

    def on_request(self, call: Call, message: Any) -> Any:
        assert self.messages is not None
        key = call.values.get("rate_key")
        if key is None:
            key = call.values["rate_key"] = self.key(call)
        wait = self.messages.take(key, self.clock())
        if wait:
            raise self.refusal("messages", wait)
        return message
