"""A stand-in for fastnet.h2's serving while it is being built: the
ServerStream interface of fastnet/h2/streams.py over the h2 package on
asyncio streams. Only for developing fastnet.grpc's call path."""
from __future__ import annotations

import asyncio
from typing import Any, Optional

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from fastnet.errors import H2StreamReset


class ShimStream:
    def __init__(self, conn: "ShimConn", stream_id: int, headers: list) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.headers = [(bytes(k), bytes(v)) for k, v in headers]
        self.peer = conn.peer
        self.trailers = None
        d = dict(self.headers)
        self.method = d.get(b":method", b"").decode()
        self.path = d.get(b":path", b"").decode()
        self.scheme = d.get(b":scheme", b"").decode()
        self.authority = d.get(b":authority", b"").decode()
        self._data: asyncio.Queue = asyncio.Queue()
        self._cancelled = asyncio.Event()
        self._window = asyncio.Event()
        self.ended = False
        self.reset_code: Optional[int] = None

    def header(self, name: bytes) -> Optional[bytes]:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    async def wait_cancelled(self) -> None:
        await self._cancelled.wait()

    async def read(self) -> Optional[bytes]:
        if self.cancelled:
            raise H2StreamReset(self.stream_id, 8)
        get = asyncio.ensure_future(self._data.get())
        cancel = asyncio.ensure_future(self._cancelled.wait())
        done, _ = await asyncio.wait({get, cancel}, return_when=asyncio.FIRST_COMPLETED)
        cancel.cancel()
        if get not in done:
            get.cancel()
            raise H2StreamReset(self.stream_id, 8)
        item = get.result()
        if item is not None:
            self.conn.h2.acknowledge_received_data(len(item), self.stream_id)
            self.conn.flush()
        return item

    def send_headers(self, headers: Any, end_stream: bool = False) -> None:
        if self.cancelled:
            raise H2StreamReset(self.stream_id, 8)
        self.conn.h2.send_headers(self.stream_id, list(headers), end_stream=end_stream)
        if end_stream:
            self.ended = True
        self.conn.flush()

    async def send_data(self, data: bytes, end_stream: bool = False) -> None:
        data = bytes(data)
        while True:
            if self.cancelled:
                raise H2StreamReset(self.stream_id, 8)
            window = min(self.conn.h2.local_flow_control_window(self.stream_id),
                         self.conn.h2.max_outbound_frame_size)
            if not data and window >= 0:
                break
            if window <= 0:
                self._window.clear()
                w = asyncio.ensure_future(self._window.wait())
                c = asyncio.ensure_future(self._cancelled.wait())
                await asyncio.wait({w, c}, return_when=asyncio.FIRST_COMPLETED)
                w.cancel()
                c.cancel()
                continue
            piece, data = data[:window], data[window:]
            self.conn.h2.send_data(self.stream_id, piece, end_stream=end_stream and not data)
            self.conn.flush()
            if not data:
                return
        if end_stream:
            self.conn.h2.end_stream(self.stream_id)
            self.conn.flush()

    def send_trailers(self, headers: Any) -> None:
        if self.cancelled:
            raise H2StreamReset(self.stream_id, 8)
        self.conn.h2.send_headers(self.stream_id, list(headers), end_stream=True)
        self.ended = True
        self.conn.flush()

    def reset(self, code: int = 8) -> None:
        if not self.ended:
            try:
                self.conn.h2.reset_stream(self.stream_id, code)
            except h2.exceptions.StreamClosedError:
                pass
            self.conn.flush()
        self.ended = True
        self._cancelled.set()


class ShimConn:
    def __init__(self, handler: Any, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.handler = handler
        self.reader, self.writer = reader, writer
        self.peer = writer.get_extra_info("peername")[:2]
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False))
        self.streams: dict[int, ShimStream] = {}
        self.tasks: set = set()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def run(self) -> None:
        self.h2.initiate_connection()
        self.flush()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self.flush()
                    break
                for ev in events:
                    self.on_event(ev)
                self.flush()
        finally:
            for s in self.streams.values():
                s._cancelled.set()
            self.writer.close()

    def on_event(self, ev: Any) -> None:
        if isinstance(ev, h2.events.RequestReceived):
            s = ShimStream(self, ev.stream_id, ev.headers)
            self.streams[ev.stream_id] = s
            t = asyncio.ensure_future(self.serve(s))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)
        elif isinstance(ev, h2.events.DataReceived):
            s = self.streams.get(ev.stream_id)
            if s is not None:
                s._data.put_nowait(ev.data)
        elif isinstance(ev, h2.events.StreamEnded):
            s = self.streams.get(ev.stream_id)
            if s is not None:
                s._data.put_nowait(None)
        elif isinstance(ev, h2.events.StreamReset):
            s = self.streams.get(ev.stream_id)
            if s is not None:
                s.ended = True
                s.reset_code = ev.error_code
                s._cancelled.set()
        elif isinstance(ev, h2.events.WindowUpdated):
            for s in self.streams.values():
                s._window.set()

    async def serve(self, s: ShimStream) -> None:
        try:
            await self.handler(s)
            if not s.ended:
                s.send_headers([(b":status", b"200")], end_stream=True)
        except Exception:
            import traceback
            traceback.print_exc()
            s.reset(2)
        finally:
            self.streams.pop(s.stream_id, None)


async def serve(handler: Any, host: str = "127.0.0.1", port: int = 0) -> asyncio.AbstractServer:
    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await ShimConn(handler, r, w).run()
    return await asyncio.start_server(on_conn, host, port)
