"""The inventory service as REST/JSON on FastAPI (run by uvicorn with
httptools and uvloop), the peer a Python team would otherwise pick.

    uvicorn bench.grpc_vs_rest.rest_fastapi:app

The bodies are the same fastnet.proto messages in the same proto3 JSON as
the fastnet server's (rest.py), so both send the same bytes of data; the
routes are ``async def`` (nothing in them blocks: a plain ``def`` would run
in the thread pool) returning a Response of those bytes (no pydantic
models: they would carry different JSON).
"""
from __future__ import annotations

from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from .rest import (JSON, NDJSON, dumps, error_body, maybe_gzip, new_store, parse_item,
                   query_int, query_str)
from .store import ServiceError

app = FastAPI()
store = new_store()


def _ok(request: Request, body: bytes) -> Response:
    body, headers = maybe_gzip(body, request.headers.get("accept-encoding"))
    return Response(body, media_type=JSON, headers=dict(headers))


def _error(err: ServiceError) -> Response:
    status, body = error_body(err)
    return Response(body, status, media_type=JSON)


@app.get("/v1/items:watch")
async def watch_items(request: Request) -> Response:
    try:
        events = store.watch(query_int(request.url.query, "count", default=1))
    except ServiceError as err:
        return _error(err)

    async def lines() -> AsyncIterator[bytes]:
        for event in events:
            yield dumps(event) + b"\n"
    return StreamingResponse(lines(), media_type=NDJSON)


@app.get("/v1/items/{item_id}")
async def get_item(item_id: str, request: Request) -> Response:
    try:
        if not item_id.isdigit():
            raise ServiceError("INVALID_ARGUMENT", "id must be an integer")
        return _ok(request, dumps(store.get(int(item_id))))
    except ServiceError as err:
        return _error(err)


@app.get("/v1/items")
async def list_items(request: Request) -> Response:
    try:
        query = request.url.query
        page = store.list(query_int(query, "pageSize", "page_size"),
                          query_str(query, "pageToken", "page_token"))
        return _ok(request, dumps(page))
    except ServiceError as err:
        return _error(err)


@app.post("/v1/items")
async def create_item(request: Request) -> Response:
    try:
        return _ok(request, dumps(store.create(parse_item(await request.body()))))
    except ServiceError as err:
        return _error(err)
