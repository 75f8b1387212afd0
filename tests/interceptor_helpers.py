"""Interceptors the interceptor tests share: each records what it saw,
and tags every message with its name, so a test sees the order."""
from __future__ import annotations

import asyncio
from typing import Any

from fastnet.interceptors import Interceptor


class Recorder(Interceptor):
    """Appends (name, hook, ...) to seen; before sets the metadata x-NAME;
    messages (bytes) get <NAME> appended."""

    def __init__(self, name: str, seen: list[tuple[Any, ...]]) -> None:
        self.name, self.seen = name, seen

    def before(self, call):
        self.seen.append((self.name, "before", call.method, call.kind, call.metadata.get("x-trace")))
        call.metadata[f"x-{self.name}"] = "1"

    def on_request(self, call, message):
        self.seen.append((self.name, "request"))
        return message + b"<%s>" % self.name.encode()

    def on_response(self, call, message):
        self.seen.append((self.name, "response"))
        return message + b"<%s>" % self.name.encode()

    def after(self, call):
        self.seen.append((self.name, "after", call.status.name, call.messages_in,
                          call.messages_out, call.bytes_in > 0, call.bytes_out > 0))


class AsyncRecorder(Recorder):
    """The same with every hook a coroutine."""

    async def before(self, call):
        await asyncio.sleep(0)
        super().before(call)

    async def on_request(self, call, message):
        await asyncio.sleep(0)
        return super().on_request(call, message)

    async def on_response(self, call, message):
        await asyncio.sleep(0)
        return super().on_response(call, message)

    async def after(self, call):
        super().after(call)
