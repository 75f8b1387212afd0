"""The HTTP benchmark's apps: ``GET /`` answers the 13-byte ``Hello, World!``.

``app``: a fastnet.http App with a Python route (``--handler
bench.peers.http_apps:app``); ``asgi``: the same as an ASGI app, for
uvicorn and granian."""
from __future__ import annotations

from fastnet.http import App, Request, Response

app = App()


@app.route("GET", "/")
def hello(request: Request) -> Response:
    return Response(b"Hello, World!", content_type="text/plain")


_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]


async def asgi(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b"Hello, World!"})
