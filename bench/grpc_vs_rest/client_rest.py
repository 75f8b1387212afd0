"""A REST client of the inventory service: the standard library's
http.client, JSON in and out."""
from __future__ import annotations

import gzip as gzip_module
import http.client
import json
from typing import Any, Iterator


class RestError(Exception):
    """A call the server refused: ``status`` and the parsed JSON ``error``."""

    def __init__(self, status: int, error: dict) -> None:
        super().__init__(f"HTTP {status}: {error.get('message')}")
        self.status, self.error = status, error


class InventoryClient:
    """The four calls over one keep-alive connection; a refused call raises
    RestError."""

    def __init__(self, port: int, gzip: bool = False) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"Accept": "application/json"}
        if gzip:
            self.headers["Accept-Encoding"] = "gzip"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, data, headers)
        response = self.conn.getresponse()
        raw = response.read()
        if response.getheader("Content-Encoding") == "gzip":
            raw = gzip_module.decompress(raw)
        value = json.loads(raw)
        if response.status != 200:
            raise RestError(response.status, value["error"])
        return value

    def get_item(self, item_id: int) -> dict:
        return self._call("GET", f"/v1/items/{item_id}")

    def list_items(self, page_size: int = 20, page_token: str = "") -> dict:
        return self._call("GET", f"/v1/items?pageSize={page_size}&pageToken={page_token}")

    def create_item(self, **fields: Any) -> dict:
        return self._call("POST", "/v1/items", fields)

    def watch_items(self, count: int) -> Iterator[dict]:
        self.conn.request("GET", f"/v1/items:watch?count={count}", headers=self.headers)
        response = self.conn.getresponse()
        if response.status != 200:
            raise RestError(response.status, json.loads(response.read())["error"])
        for line in response:
            yield json.loads(line)

    def close(self) -> None:
        self.conn.close()
