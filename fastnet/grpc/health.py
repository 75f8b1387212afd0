"""The standard health service, ``grpc.health.v1.Health`` (grpc's
doc/health-checking.md): Check, Watch and List.

::

    health = fastnet.grpc.health.add_health(server)   # "" is SERVING at once
    health.set("pkg.Greeter", health.NOT_SERVING)
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Optional

from .server import Server
from .service import load_bundled

PROTO = load_bundled("grpc/health/v1/health.proto")
HealthService = PROTO.grpc.health.v1.Health
HealthCheckRequest = PROTO.grpc.health.v1.HealthCheckRequest
HealthCheckResponse = PROTO.grpc.health.v1.HealthCheckResponse
ServingStatus = HealthCheckResponse.ServingStatus


class HealthServicer:
    """Statuses by service name (``""``: the server as a whole). Check of
    a name never set is NOT_FOUND; Watch of one streams SERVICE_UNKNOWN
    until it is set, then every change. ``set`` is safe from any thread."""

    UNKNOWN = ServingStatus.UNKNOWN
    SERVING = ServingStatus.SERVING
    NOT_SERVING = ServingStatus.NOT_SERVING
    SERVICE_UNKNOWN = ServingStatus.SERVICE_UNKNOWN

    def __init__(self) -> None:
        self._statuses: dict[str, int] = {}
        self._lock = threading.Lock()
        self._watchers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def set(self, service: str, status: int) -> None:
        """Set ``service``'s status; Watch streams see it."""
        with self._lock:
            self._statuses[service] = int(status)
            watchers = list(self._watchers.get(service, ()))
        for loop, changed in watchers:
            loop.call_soon_threadsafe(changed.set)

    def status(self, service: str) -> Optional[int]:
        with self._lock:
            return self._statuses.get(service)

    def Check(self, request: Any, context: Any) -> Any:
        status = self.status(request.service)
        if status is None:
            context.abort(5, f"unknown service {request.service!r}")   # NOT_FOUND
        return HealthCheckResponse(status=status)

    def List(self, request: Any, context: Any) -> Any:
        with self._lock:
            statuses = dict(self._statuses)
        return PROTO.grpc.health.v1.HealthListResponse(
            statuses={k: HealthCheckResponse(status=v) for k, v in statuses.items()})

    async def Watch(self, request: Any, context: Any) -> AsyncIterator[Any]:
        # A flag, not a queue: a watcher reads the newest status when it
        # wakes, so a slow one holds nothing (the spec lets it skip some).
        changed = asyncio.Event()
        key = (asyncio.get_running_loop(), changed)
        with self._lock:
            self._watchers.setdefault(request.service, set()).add(key)
            current = self._statuses.get(request.service, int(self.SERVICE_UNKNOWN))
        try:
            last = None
            while True:
                if current != last:
                    yield HealthCheckResponse(status=current)
                    last = current
                await changed.wait()
                changed.clear()
                current = self._statuses.get(request.service, int(self.SERVICE_UNKNOWN))
        finally:
            with self._lock:
                self._watchers.get(request.service, set()).discard(key)


def add_health(server: Server, servicer: Optional[HealthServicer] = None) -> HealthServicer:
    """Serve the health service on ``server`` (``""`` set to SERVING)."""
    servicer = servicer or HealthServicer()
    if servicer.status("") is None:
        servicer.set("", HealthServicer.SERVING)
    server.add_service(HealthService, servicer)
    return servicer
