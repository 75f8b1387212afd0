"""A REST client of the inventory service over HTTP/2 (prior knowledge):
python-hyper's h2 on a blocking socket (what httpx's HTTP/2 support runs
on), the same calls and errors as client_rest."""
from __future__ import annotations

import gzip as gzip_module
import json
import socket
from typing import Any, Iterator, Optional

import h2.config
import h2.connection
import h2.events

from . import client_rest
from .client_rest import RestError


class InventoryClient(client_rest.InventoryClient):
    """The four calls as streams of one HTTP/2 connection; a refused call
    raises RestError. The calls are client_rest's; how they travel is here."""

    def __init__(self, port: int, gzip: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.authority = f"127.0.0.1:{port}"
        self.h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.h2conn.initiate_connection()
        self.sock.sendall(self.h2conn.data_to_send())
        self.extra = [("accept", "application/json")]
        if gzip:
            self.extra.append(("accept-encoding", "gzip"))

    def _open(self, method: str, path: str, body: Optional[bytes]) -> int:
        stream = self.h2conn.get_next_available_stream_id()
        headers = [(":method", method), (":scheme", "http"), (":authority", self.authority),
                   (":path", path), *self.extra]
        if body is not None:
            headers.append(("content-type", "application/json"))
        self.h2conn.send_headers(stream, headers, end_stream=body is None)
        if body is not None:
            self.h2conn.send_data(stream, body, end_stream=True)
        self.sock.sendall(self.h2conn.data_to_send())
        return stream

    def _events(self, stream: int) -> Iterator[tuple[str, Any]]:
        """("headers", dict) then ("data", bytes)... of one stream, to its end."""
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            ended = False
            for event in self.h2conn.receive_data(data):
                if getattr(event, "stream_id", None) != stream:
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    yield "headers", {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h2.events.DataReceived):
                    self.h2conn.acknowledge_received_data(event.flow_controlled_length, stream)
                    yield "data", event.data
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended = True
            self.sock.sendall(self.h2conn.data_to_send())
            if ended:
                return

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers: dict[str, str] = {}
        chunks = []
        for kind, value in self._events(self._open(method, path, data)):
            if kind == "headers":
                headers = value
            else:
                chunks.append(value)
        raw = b"".join(chunks)
        if headers.get("content-encoding") == "gzip":
            raw = gzip_module.decompress(raw)
        parsed = json.loads(raw)
        if headers.get(":status") != "200":
            raise RestError(int(headers.get(":status", "0")), parsed["error"])
        return parsed

    def watch_items(self, count: int) -> Iterator[dict]:
        pending = b""
        for kind, value in self._events(self._open("GET", f"/v1/items:watch?count={count}",
                                                   None)):
            if kind == "headers":
                if value.get(":status") != "200":
                    raise RestError(int(value.get(":status", "0")), {})
                continue
            pending += value
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield json.loads(line)

    def close(self) -> None:
        self.sock.close()
