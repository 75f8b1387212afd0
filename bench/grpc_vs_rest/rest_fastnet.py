"""The inventory service as REST/JSON on fastnet.http (HTTP/1.1, and HTTP/2
where fastnet serves it: the same App).

    python -m fastnet.serve --protocol http --handler bench.grpc_vs_rest.rest_fastnet:app
"""
from __future__ import annotations

from typing import Iterator

from fastnet.http import App, Request, Response

from .rest import (JSON, NDJSON, dumps, error_body, maybe_gzip, new_store, parse_item,
                   query_int, query_str)
from .store import ServiceError

app = App()
store = new_store()


def _ok(request: Request, body: bytes) -> Response:
    body, headers = maybe_gzip(body, request.headers.get("accept-encoding"))
    return Response(body, headers=headers, content_type=JSON)


def _error(err: ServiceError) -> Response:
    status, body = error_body(err)
    return Response(body, status, content_type=JSON)


@app.route("GET", "/v1/items/{id}")
def get_item(request: Request) -> Response:
    try:
        if not request.params["id"].isdigit():
            raise ServiceError("INVALID_ARGUMENT", "id must be an integer")
        return _ok(request, dumps(store.get(int(request.params["id"]))))
    except ServiceError as err:
        return _error(err)


@app.route("GET", "/v1/items")
def list_items(request: Request) -> Response:
    try:
        page = store.list(query_int(request.query, "pageSize", "page_size"),
                          query_str(request.query, "pageToken", "page_token"))
        return _ok(request, dumps(page))
    except ServiceError as err:
        return _error(err)


@app.route("POST", "/v1/items")
def create_item(request: Request) -> Response:
    try:
        return _ok(request, dumps(store.create(parse_item(request.body))))
    except ServiceError as err:
        return _error(err)


@app.route("GET", "/v1/items:watch")
def watch_items(request: Request) -> Response:
    try:
        events = store.watch(query_int(request.query, "count", default=1))
    except ServiceError as err:
        return _error(err)

    def lines() -> Iterator[bytes]:
        for event in events:
            yield dumps(event) + b"\n"
    return Response(lines(), content_type=NDJSON)
