"""What the two REST servers share: the messages (fastnet.proto classes from
inventory.proto), the proto3 JSON mapping, Google's JSON error form and the
gRPC-status-to-HTTP table, gzip when the client accepts it.

JSON is written compact (no spaces), as FastAPI's JSONResponse writes it,
so the sizes compared with protobuf are JSON at its smallest usual form.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs

from fastnet.proto import load
from fastnet.proto.json_format import from_json, to_json_value

from .store import ServiceError, Store

PROTO = Path(__file__).with_name("inventory.proto")
#: The HTTP status of each gRPC status a call can fail with (google.rpc.Code's mapping).
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "INTERNAL": 500}
JSON = "application/json"
NDJSON = "application/x-ndjson"

_classes = load(PROTO, include=[PROTO.parent])
messages = _classes.inventory.v1
Timestamp = _classes.google.protobuf.Timestamp


def new_store() -> Store:
    """A Store of fastnet.proto messages."""
    return Store(messages.Item, Timestamp, messages.ListItemsResponse, messages.ItemEvent)


def dumps(msg: Any) -> bytes:
    """The message as compact proto3 JSON."""
    return json.dumps(to_json_value(msg), separators=(",", ":"), ensure_ascii=False).encode()


def parse_item(body: bytes) -> Any:
    """A CreateItem body (an Item in JSON), or INVALID_ARGUMENT."""
    try:
        return from_json(messages.Item, body)
    except ValueError as exc:  # ProtoJsonError: not JSON, or not an Item
        raise ServiceError("INVALID_ARGUMENT", f"body is not an Item: {exc}") from None


def query_int(query: str, *names: str, default: int = 0) -> int:
    """An integer query parameter by any of its names (JSON name first)."""
    params = parse_qs(query)
    for name in names:
        if name in params:
            text = params[name][0]
            if not text.lstrip("-").isdigit():
                raise ServiceError("INVALID_ARGUMENT", f"{name} must be an integer")
            return int(text)
    return default


def query_str(query: str, *names: str) -> str:
    params = parse_qs(query)
    return next((params[n][0] for n in names if n in params), "")


def error_body(err: ServiceError) -> tuple[int, bytes]:
    """(HTTP status, Google's JSON error body) of a failed call: the field
    violations of a refused item as a google.rpc.BadRequest detail."""
    status = HTTP_STATUS.get(err.code, 500)
    error: dict[str, Any] = {"code": status, "message": err.message, "status": err.code}
    if err.violations:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                             "fieldViolations": [{"field": f, "description": d}
                                                 for f, d in err.violations]}]
    return status, json.dumps({"error": error}, separators=(",", ":")).encode()


def maybe_gzip(body: bytes, accept_encoding: Optional[str]) -> tuple[bytes, list[tuple[str, str]]]:
    """The body gzipped (with its Content-Encoding header) when the client
    accepts gzip, else as it is."""
    if accept_encoding and "gzip" in accept_encoding:
        return gzip.compress(body, mtime=0), [("Content-Encoding", "gzip"),
                                              ("Vary", "Accept-Encoding")]
    return body, []
