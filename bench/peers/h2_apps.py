"""The HTTP/2 benchmark's apps: ``GET /`` and ``POST /`` (its body read
whole) both answer the 13-byte ``Hello, World!``.

``app``: a fastnet.http App with Python routes (``--handler
bench.peers.h2_apps:app``); ``asgi``: the same as an ASGI app, for hypercorn;
``streams`` and ``quick``: the same answer from fastnet.h2's stream API
(gRPC's footing), a task per stream, and with the on_complete hook that
answers a request complete in its read without one."""
from __future__ import annotations

from fastnet.h2 import ServerStream, serve_streams
from fastnet.http import App, Request, Response

app = App()


@app.route("GET", "/")
def hello(request: Request) -> Response:
    return Response(b"Hello, World!", content_type="text/plain")


@app.route("POST", "/")
def posted(request: Request) -> Response:
    return Response(b"Hello, World!", content_type="text/plain")


_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]


async def asgi(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    more = True
    while more:  # the request body, read whole
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b"Hello, World!"})


_ANSWER = ((b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"13"))


async def _stream(stream: ServerStream) -> None:
    async for _ in stream:  # the request body, read whole
        pass
    stream.send_headers(_ANSWER)
    await stream.send_data(b"Hello, World!", end_stream=True)


def _complete(stream_id, headers, body, peer):  # type: ignore[no-untyped-def]
    return _ANSWER, b"Hello, World!", None


streams = serve_streams(_stream)
quick = serve_streams(_stream, on_complete=_complete)
