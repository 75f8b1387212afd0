"""Interceptors for the HTTP app: an app wrapped so that a chain runs
around every request (HTTP/1.1 and HTTP/2 serve the same apps).

A request is a call whose ``method`` is ``"GET /path"`` (the
percent-decoded path, no query), ``metadata`` the header fields
(lower-case names; a repeated field's values joined with ", "; an
interceptor's change is what the app sees in ``request.headers``). The
request message is the :class:`~fastnet.http.Request` (``bytes_in``: its
body), the response message the :class:`~fastnet.http.Response`
(``bytes_out``: its body; an iterator body is counted chunk by chunk and
the call ends, ``after`` runs, when it is exhausted). A refusal is a
response: UNAUTHENTICATED 401 (with ``WWW-Authenticate: Bearer``),
PERMISSION_DENIED 403, RESOURCE_EXHAUSTED 429 with Retry-After (whole
seconds, rounded up), an interceptor's failure 500; the app's own
exception is answered as without interceptors (500, the connection
closes); a response an interceptor drops is a 204. A status the app answers with is read back into ``call.status``
(401 UNAUTHENTICATED, 404 NOT_FOUND, 5xx INTERNAL ...).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, AsyncIterator, Iterator, Optional

from ..http import HTTP, Headers, Request, Response, kata_app
from ..http.app import is_async_handler
from ..server.protocols import ProtocolUnit
from .core import DROP, Abort, Call, Chain, Status, _current

__all__ = ["HTTP_STATUS", "InterceptedApp", "from_http_status", "intercept_app", "intercept_http", "refusal"]

#: The HTTP status a call's status is answered with.
HTTP_STATUS = {
    Status.OK: 200, Status.CANCELLED: 499, Status.UNKNOWN: 500, Status.INVALID_ARGUMENT: 400,
    Status.DEADLINE_EXCEEDED: 504, Status.NOT_FOUND: 404, Status.ALREADY_EXISTS: 409,
    Status.PERMISSION_DENIED: 403, Status.RESOURCE_EXHAUSTED: 429,
    Status.FAILED_PRECONDITION: 400, Status.ABORTED: 409, Status.OUT_OF_RANGE: 400,
    Status.UNIMPLEMENTED: 501, Status.INTERNAL: 500, Status.UNAVAILABLE: 503,
    Status.DATA_LOSS: 500, Status.UNAUTHENTICATED: 401,
}

_FROM_HTTP = {400: Status.INVALID_ARGUMENT, 401: Status.UNAUTHENTICATED,
              403: Status.PERMISSION_DENIED, 404: Status.NOT_FOUND, 409: Status.ABORTED,
              429: Status.RESOURCE_EXHAUSTED, 501: Status.UNIMPLEMENTED,
              503: Status.UNAVAILABLE, 504: Status.DEADLINE_EXCEEDED}


def from_http_status(status: int) -> Status:
    """The call status an app's response status stands for."""
    if status < 400:
        return Status.OK
    return _FROM_HTTP.get(status, Status.INTERNAL if status >= 500 else Status.FAILED_PRECONDITION)


def _metadata(headers: Headers) -> dict[str, str]:
    meta: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        meta[key] = f"{meta[key]}, {value}" if key in meta else value
    return meta


def refusal(call: Call) -> Response:
    """The response for a call that an interceptor ended."""
    status = HTTP_STATUS.get(call.status, 500)
    headers: list[tuple[str, str]] = []
    if call.status == Status.UNAUTHENTICATED:
        headers.append(("WWW-Authenticate", "Bearer"))
    if call.retry_after is not None:
        headers.append(("Retry-After", str(max(1, math.ceil(call.retry_after)))))
    text = "Internal Server Error" if status == 500 else f"{call.status.name}: {call.details}"
    return Response(text + "\n", status, headers)


def _http_status_of(call: Call) -> Any:
    return HTTP_STATUS.get(call.status, 500) if call.failed else call.protocol_status


def _body_size(body: Any) -> Optional[int]:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return len(body)
    return None


class InterceptedApp:
    """``app`` (any HTTP handler: an App or a function of a Request) with
    ``chain`` around each request; itself an app."""

    def __init__(self, app: Any, chain: Chain) -> None:
        self.app = app
        self.chain = chain
        #: Sessions await results (the chain or the app is async).
        self.is_async = chain.is_async or is_async_handler(app)

    def __call__(self, request: Request) -> Any:
        if self.is_async:
            return self._acall(request)
        chain = self.chain
        call = self._begin(request)
        token = _current.set(call)
        try:
            if chain.before(call):
                try:
                    request = self._prepare(call, request, chain.request(call, request, len(request.body)))
                    response = self._response(call, self.app(request))
                    response = chain.response(call, response, _body_size(response.body) or 0)
                    if response is DROP:
                        response = Response(b"", 204)
                except Exception as exc:
                    chain.handler_failed(call, exc)
            if call.failed:
                chain.after(call)
                return self._failure(call)
            if _body_size(response.body) is None:  # a stream: the call ends with it
                response.body = self._stream(call, response.body)
                return response
            chain.after(call)
            return self._failure(call) if call.failed else response
        finally:
            _current.reset(token)

    async def _acall(self, request: Request) -> Any:
        chain = self.chain
        call = self._begin(request)
        token = _current.set(call)
        try:
            if await chain.abefore(call):
                try:
                    message = await chain.arequest(call, request, len(request.body))
                    request = self._prepare(call, request, message)
                    result = self.app(request)
                    if inspect.isawaitable(result):
                        result = await result
                    response = self._response(call, result)
                    response = await chain.aresponse(call, response, _body_size(response.body) or 0)
                    if response is DROP:
                        response = Response(b"", 204)
                except Exception as exc:
                    chain.handler_failed(call, exc)
            if call.failed:
                await chain.aafter(call)
                return self._failure(call)
            if _body_size(response.body) is None:
                response.body = self._astream(call, response.body)
                return response
            await chain.aafter(call)
            return self._failure(call) if call.failed else response
        finally:
            _current.reset(token)

    def _begin(self, request: Request) -> Call:
        meta = _metadata(request.headers)
        call = self.chain.start("http", f"{request.method} {request.path}", request.peer, meta)
        call.values["http_metadata"] = dict(meta)
        call.protocol_status_of = _http_status_of
        return call

    @staticmethod
    def _prepare(call: Call, request: Request, message: Any) -> Request:
        if message is DROP:
            raise Abort(Status.INVALID_ARGUMENT, "the request was dropped")
        if not isinstance(message, Request):
            raise TypeError(f"an interceptor replaced the Request with a {type(message).__name__}")
        if call.metadata != call.values["http_metadata"]:
            message.headers = Headers(list(call.metadata.items()))
        return message

    @staticmethod
    def _response(call: Call, result: Any) -> Response:
        response = result if isinstance(result, Response) else Response(result)
        call.protocol_status = response.status
        call.status = from_http_status(response.status)
        return response

    @staticmethod
    def _failure(call: Call) -> Response:
        """A refusal's response; the app's own exception goes on up."""
        if call.status == Status.UNKNOWN and call.exception is not None:
            raise call.exception
        return refusal(call)

    def _stream(self, call: Call, body: Any) -> Iterator[bytes]:
        chain = self.chain
        try:
            for piece in body:
                call.bytes_out += len(piece)
                yield piece
        except Exception as exc:
            call.fail(Status.INTERNAL, exc, f"{type(exc).__name__} in the response body")
            raise
        finally:
            chain.after(call)

    async def _astream(self, call: Call, body: Any) -> AsyncIterator[bytes]:
        chain = self.chain
        try:
            if hasattr(body, "__aiter__"):
                async for piece in body:
                    call.bytes_out += len(piece)
                    yield piece
            else:
                for piece in body:
                    call.bytes_out += len(piece)
                    yield piece
        except Exception as exc:
            call.fail(Status.INTERNAL, exc, f"{type(exc).__name__} in the response body")
            raise
        finally:
            await chain.aafter(call)


def intercept_app(app: Any, chain: Chain) -> InterceptedApp:
    """``app`` with ``chain`` around each request (serve it as any app)."""
    return InterceptedApp(app, chain)


def intercept_http(chain: Chain, unit: ProtocolUnit = HTTP) -> ProtocolUnit:
    """The HTTP unit with chain around every request of the app given to
    ``listen`` (the kata app when none is)."""
    session = unit.session

    def intercepted_session(conn: Any, handler: Any) -> Any:
        return session(conn, InterceptedApp(handler if handler is not None else kata_app(), chain))

    def needs_asyncio(handler: Any) -> bool:
        return chain.is_async or unit.needs_asyncio(handler)

    return dataclasses.replace(unit, session=intercepted_session, needs_asyncio=needs_asyncio)

