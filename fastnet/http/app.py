"""The application side of fastnet.http: App, route, Request, Response,
Headers. Nothing here touches a socket; the HTTP/1.1 session
(:mod:`.server`) and the HTTP/2 one serve the same apps."""
from __future__ import annotations

import http
import inspect
import re
from typing import (Any, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping,
                    Optional, Union)
from urllib.parse import unquote

__all__ = ["App", "Body", "Handler", "Headers", "Request", "Response", "reason_phrase",
           "request_path"]

#: What a Response body may be: bytes (or str, sent UTF-8) with a
#: Content-Length, or an iterator / async iterator of bytes sent chunked.
Body = Union[bytes, bytearray, memoryview, str, Iterable[bytes], AsyncIterable[bytes]]


def reason_phrase(status: int) -> str:
    """The standard reason phrase of a status code ("" if it has none)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class Headers:
    """Header fields in order, looked up case-insensitively, a name may
    repeat. Names and values are str (latin-1 decoded: one character per byte)."""

    __slots__ = ("_items",)

    def __init__(self, items: Union[Iterable[tuple[str, str]], Mapping[str, str], None] = None) -> None:
        if items is None:
            self._items: list[tuple[str, str]] = []
        elif isinstance(items, Mapping):
            self._items = [(str(k), str(v)) for k, v in items.items()]
        else:
            self._items = [(str(k), str(v)) for k, v in items]

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of field ``name``, or default."""
        name = name.lower()
        for key, value in self._items:
            if key.lower() == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of field ``name``, in order."""
        name = name.lower()
        return [value for key, value in self._items if key.lower() == name]

    def add(self, name: str, value: str) -> None:
        """Append a field (a name may repeat)."""
        self._items.append((name, value))

    def items(self) -> list[tuple[str, str]]:
        """Every (name, value), in order."""
        return list(self._items)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def request_path(target: str) -> tuple[str, str]:
    """A request target's (percent-decoded path, query)."""
    raw, _, query = target.partition("?")
    if "://" in raw:  # absolute-form: the path is after the authority
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    return (unquote(raw, errors="surrogateescape") if "%" in raw else raw), query


class Request:
    """One request as an app sees it.

    method (``"GET"``), target (as sent, ``"/items/7?x=1"``), path
    (percent-decoded, ``"/items/7"``), query (``"x=1"``), version
    (``"HTTP/1.1"``), headers (:class:`Headers`), body (bytes), peer
    ((host, port) of the client), params (what the route's ``{name}``
    parts matched), trailers (a chunked body's trailer fields as
    :class:`Headers`, None if it had none) and stream: for a route
    registered with ``stream=True``, the body as it arrives, an async
    iterator of bytes (``async for chunk in request.stream``; body is then
    b""), else None."""

    __slots__ = ("method", "target", "path", "query", "version", "headers", "body", "peer",
                 "params", "trailers", "stream")

    def __init__(self, method: str, target: str, headers: Headers, body: bytes = b"",
                 version: str = "HTTP/1.1", peer: tuple[str, int] = ("", 0)) -> None:
        self.method = method
        self.target = target
        self.path, self.query = request_path(target)
        self.version = version
        self.headers = headers
        self.body = body
        self.peer = peer
        self.params: dict[str, str] = {}
        self.trailers: Optional[Headers] = None
        self.stream: Optional[AsyncIterator[bytes]] = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


class Response:
    """A response: status, headers, body.

    ``body`` is bytes (str is sent UTF-8) with a Content-Length, or an
    iterator or async iterator of bytes, sent chunked (to an HTTP/1.0
    client: as it comes, then the connection closes). ``content_type``
    sets Content-Type (default for a str or bytes body: text/plain).
    Content-Length, Transfer-Encoding, Date and Connection are the
    server's to set."""

    __slots__ = ("status", "_headers", "_content_type", "body")
    body: Union[bytes, bytearray, memoryview, Iterable[bytes], AsyncIterable[bytes]]  # str encoded

    def __init__(self, body: Body = b"", status: int = 200,
                 headers: Union[Iterable[tuple[str, str]], Mapping[str, str], None] = None,
                 content_type: Optional[str] = None) -> None:
        if not 100 <= status <= 999:
            raise ValueError(f"status must be 100-999, not {status}")
        self.status = status
        if headers is None and type(body) is bytes:  # the common case, quickly
            # Headers made when first read (a server may not need them).
            self._headers = None
            self._content_type = content_type or ("text/plain" if body else None)
            self.body = body
            return
        self._headers = Headers(headers)
        if isinstance(body, str):
            body = body.encode()
            content_type = content_type or "text/plain; charset=utf-8"
        elif isinstance(body, (bytes, bytearray, memoryview)):
            content_type = content_type or ("text/plain" if body else None)
        if content_type is not None and (headers is None or "content-type" not in self.headers):
            self.headers.add("Content-Type", content_type)
        self.body = body

    @property
    def headers(self) -> Headers:
        """The response's header fields (Content-Type among them once set)."""
        fields = self._headers
        if fields is None:
            fields = self._headers = Headers.__new__(Headers)
            content_type = self._content_type
            fields._items = [] if content_type is None else [("Content-Type", content_type)]
        return fields

    @headers.setter
    def headers(self, value: Headers) -> None:
        self._headers = value

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


#: What a route's function returns: a Response, bytes or str (a 200).
Result = Union[Response, bytes, str]
Handler = Callable[[Request], Union[Result, Awaitable[Result]]]

#: Request lines App.exact_route keeps the function of.
EXACT_ROUTES_KEPT = 1024

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _pattern(path: str) -> "re.Pattern[str]":
    """"/items/{id}" -> a regex whose groups are the named segments."""
    out, pos = [], 0
    for match in _PARAM.finditer(path):
        out.append(re.escape(path[pos:match.start()]))
        out.append(f"(?P<{match.group(1)}>[^/]+)")
        pos = match.end()
    out.append(re.escape(path[pos:]))
    return re.compile("".join(out))


class App:
    """Routes from (method, path pattern) to functions.

    >>> app = App()
    >>> @app.route("GET", "/items/{id}")
    ... def item(request):
    ...     return Response("item " + request.params["id"])

    A function takes the :class:`Request` and returns a :class:`Response`,
    bytes or str (200); it may be ``async def``. ``{name}`` in a pattern
    matches one path segment, given in ``request.params``. A path no route
    matches is 404; a path matched for other methods only is 405 with
    Allow; a HEAD is served by the GET route (the server drops the body).
    An App is itself a handler: ``app(request)``.

    A route registered with ``stream=True`` (an ``async def``) is called as
    soon as the request head has arrived and reads the body from
    ``request.stream`` as it comes, however large (up to the server's
    max_body); every other route gets the whole body as ``request.body``.
    """

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._patterns: list[tuple[str, "re.Pattern[str]", Handler]] = []
        self._paths: dict[str, set[str]] = {}
        self._streamed: set[Handler] = set()
        #: What exact_route has found, b"GET /" -> function: a caller may
        #: look here first (it is emptied whenever a route is added).
        self.exact_lines: dict[bytes, Handler] = {}
        #: Some route is a coroutine function: sessions await results.
        self.is_async = False

    def route(self, method: str, path: str, stream: bool = False) -> Callable[[Handler], Handler]:
        """Register the decorated function for ``method`` ("GET", "POST",
        ... or "*" for any) on ``path`` (may hold ``{name}`` segments);
        ``stream``: it reads the body from ``request.stream`` (see the class)."""
        if not path.startswith("/") and path != "*":
            raise ValueError(f"a route's path starts with '/', not {path!r}")
        method = method.upper()

        def register(fn: Handler) -> Handler:
            if inspect.iscoroutinefunction(fn):
                self.is_async = True
            if stream:
                if not inspect.iscoroutinefunction(fn):
                    raise TypeError("a route with stream=True is an async def "
                                    "(it awaits the body as it arrives)")
                self._streamed.add(fn)
            if _PARAM.search(path):
                self._patterns.append((method, _pattern(path), fn))
            else:
                self._exact[(method, path)] = fn
            self._paths.setdefault(path, set()).add(method)
            self.exact_lines.clear()
            return fn
        return register

    def _find(self, request: Request, allowed: Optional[set[str]] = None) -> Optional[Handler]:
        """The route's function for request (its params set), or None;
        adds the methods routed for its path to ``allowed``."""
        method, path = request.method, request.path
        fn = self._exact.get((method, path)) or self._exact.get(("*", path))
        if fn is None and method == "HEAD":
            fn = self._exact.get(("GET", path))
        if fn is not None:
            return fn
        for route_method, pattern, fn in self._patterns:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method in (method, "*") or (method == "HEAD" and route_method == "GET"):
                request.params = match.groupdict()
                return fn
            if allowed is not None:
                allowed.add(route_method)
        return None

    def exact_route(self, line: bytes) -> Optional[Handler]:
        """The function of the route a request line's ``b"METHOD target"``
        goes to when that is an exact route (no pattern, no params) and the
        target is a plain path (no query, nothing to percent-decode), else
        None: the caller then calls the App. What it found is kept (up to
        EXACT_ROUTES_KEPT lines), so a server routes a request by one
        lookup of the bytes it read."""
        fn = self.exact_lines.get(line)
        if fn is not None:
            return fn
        method, _, target = line.decode("latin-1").partition(" ")
        if not target.startswith("/") or "?" in target or "%" in target or ":" in target:
            return None
        fn = self._exact.get((method, target)) or self._exact.get(("*", target))
        if fn is None and method == "HEAD":
            fn = self._exact.get(("GET", target))
        if fn is not None and len(self.exact_lines) < EXACT_ROUTES_KEPT:
            self.exact_lines[line] = fn
        return fn

    def streams(self, request: Request) -> bool:
        """Whether the route for request reads its body as a stream."""
        return bool(self._streamed) and self._find(request) in self._streamed

    def __call__(self, request: Request) -> Union[Result, Awaitable[Result]]:
        allowed: set[str] = set()
        fn = self._find(request, allowed)
        if fn is not None:
            return fn(request)
        path = request.path
        allowed |= {m for (m, p) in self._exact if p == path}
        if allowed:
            allow = ", ".join(sorted(allowed | ({"HEAD"} if "GET" in allowed else set())))
            return Response(b"Method Not Allowed\n", 405, {"Allow": allow})
        return Response(b"Not Found\n", 404)


def kata_app() -> App:
    """The default app: ``GET /`` is 200 ``Hello, World!`` (13 bytes of
    text/plain), anything else 404 with a short text body."""
    app = App()

    @app.route("GET", "/")
    def hello(request: Request) -> Response:
        return KATA_HELLO

    return app


#: The kata's answer (immutable: shared by every request).
KATA_HELLO = Response(b"Hello, World!", 200)


def is_async_handler(handler: Any) -> bool:
    """Whether sessions serving ``handler`` await its results."""
    return bool(getattr(handler, "is_async", False)) or inspect.iscoroutinefunction(handler) \
        or inspect.iscoroutinefunction(getattr(handler, "__call__", None))
