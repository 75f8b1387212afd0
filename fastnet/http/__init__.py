"""HTTP/1.1 (RFC 9110/9112): apps, the server on the protocol seam
(``--protocol http``) and a client.

>>> app = App()
>>> @app.route("GET", "/items/{id}")
... def item(request):
...     return Response("item " + request.params["id"])
>>> server = fastnet.Server()
>>> server.listen("127.0.0.1", 8080, protocol="http", handler=app)
"""
from __future__ import annotations

from .app import App, Headers, Request, Response, kata_app
from .client import Client, ClientResponse, get, request
from .server import HTTP, HTTP_PROTOCOL, HttpLimits, HttpServer, HttpSession

__all__ = ["App", "Client", "ClientResponse", "HTTP", "HTTP_PROTOCOL", "Headers", "HttpLimits", "HttpServer", "HttpSession",
           "Request", "Response", "get", "kata_app", "request"]
