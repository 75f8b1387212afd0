"""The wire protocol end to end: negotiation, the version matrix, errors,
compatibility rules, keep-alive, drain, compression bounds. Real sockets on
127.0.0.1 on every engine."""
from __future__ import annotations

import asyncio
import socket
import threading
import tracemalloc
import zlib

import pytest

from fastnet import pack, wire
from fastnet.codec.wire import (ERROR, FRAME_TYPES, GOAWAY, HELLO, PING, PONG, REQUEST, RESPONSE,
                                WireDecoder, encode_wire_frame)
from fastnet.errors import WireDecompressError, WireRemoteError
from fastnet.wire import ErrorCode, compression
from helpers import GUARD, require_engine, serving

CLIENTS = {  # name -> connect() arguments
    "v1-no-hello": {"max_version": 1, "hello": False},
    "v1": {"max_version": 1},
    "v2": {"max_version": 2},
}


def handle(request):
    if request == "boom":
        raise KeyError("no such thing")
    return {"got": request}


def start(engine, handler=handle, **config):
    require_engine(engine)
    server = wire.make_server(wire.WireConfig(**config), engine=engine)
    listener = server.listen("127.0.0.1", 0, protocol="wire", handler=handler)
    return server, listener.port


def raw(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    return sock, WireDecoder()


def read_frame(sock, decoder):
    while (frame := decoder.next_frame()) is None:
        data = sock.recv(65536)
        if not data:
            return None
        decoder.feed(data)
    return frame


@pytest.mark.parametrize("compress", [True, False], ids=["zstd", "plain"])
@pytest.mark.parametrize("server_max", [1, 2])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_matrix(engine, client, server_max, compress):
    server, port = start(engine, max_version=server_max)
    codecs = ["zstd"] if compress else []
    big = "text " * 4000  # compressible, over every threshold
    with serving(server):
        with wire.connect("127.0.0.1", port, codecs=codecs, **CLIENTS[client]) as c:
            assert c.version == min(server_max, CLIENTS[client]["max_version"])
            assert c.codecs == (codecs if c.version == 2 else [])
            assert c.call([1, "two", b"3", {"k": None}]) == {"got": [1, "two", b"3", {"k": None}]}
            assert c.call(big) == {"got": big}
            with pytest.raises(WireRemoteError) as info:
                c.call("boom")
            assert info.value.code == ErrorCode.HANDLER and info.value.type_name == "KeyError"
            assert c.call(5) == {"got": 5}  # the connection stayed open


@pytest.mark.parametrize("compress", [True, False], ids=["lz4", "plain"])
@pytest.mark.parametrize("server_max", [1, 2])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_matrix_asyncio_client(engine, client, server_max, compress):
    server, port = start(engine, max_version=server_max)
    codecs = ["lz4"] if compress else []
    big = b"bytes " * 3000

    async def main():
        c = await wire.open_connection("127.0.0.1", port, codecs=codecs, **CLIENTS[client])
        assert c.version == min(server_max, CLIENTS[client]["max_version"])
        assert c.codecs == (codecs if c.version == 2 else [])
        replies = await asyncio.gather(*(c.call([i, big]) for i in range(20)))
        assert replies == [{"got": [i, big]} for i in range(20)]
        with pytest.raises(WireRemoteError) as info:
            await c.call("boom")
        assert info.value.code == ErrorCode.HANDLER
        assert await c.call(1) == {"got": 1}
        await c.close()

    with serving(server):
        asyncio.run(main())


def test_compression_is_used_and_never_bigger(engine):
    server, port = start(engine, handler=lambda r: r)
    with serving(server):
        sock, dec = raw(port)
        sock.sendall(encode_wire_frame(HELLO, pack.packb({"versions": [2], "codecs": ["zlib"]})))
        assert pack.unpackb(read_frame(sock, dec).body)["codecs"] == ["zlib"]
        body = pack.packb("a" * 10000)
        sock.sendall(encode_wire_frame(REQUEST, body, version=2, request_id=1))
        frame = read_frame(sock, dec)
        assert frame.flags & 7 == 1 and len(frame.body) < len(body) // 10
        assert zlib.decompress(frame.body[4:]) == body
        noise = pack.packb(bytes(range(256)) * 8 + b"".join(i.to_bytes(4, "big") * 3 for i in range(900)))
        random_body = pack.packb(__import__("os").urandom(8000))
        for payload in (random_body, noise):
            sock.sendall(encode_wire_frame(REQUEST, payload, version=2, request_id=2))
            frame = read_frame(sock, dec)
            assert len(frame.body) <= len(payload)
            if frame.flags & 7 == 0:
                assert frame.body == payload
        sock.close()


def test_v2_requests_answered_as_they_finish(engine):
    events: dict[str, asyncio.Event] = {}

    async def handler(request):
        release = events.setdefault("release", asyncio.Event())  # on the server's loop
        if request == "wait":
            await asyncio.wait_for(release.wait(), GUARD)
            return "waited"
        release.set()
        return "released"

    async def main(port):
        c = await wire.open_connection("127.0.0.1", port)
        assert c.version == 2
        first = asyncio.ensure_future(c.call("wait"))
        # "wait" can only finish once "go" has run: served one at a time,
        # "wait" would hold the connection until its guard expired.
        assert await asyncio.wait_for(c.call("go"), GUARD) == "released"
        assert await asyncio.wait_for(first, GUARD) == "waited"
        many = await asyncio.gather(*(c.call(i) for i in range(100)))
        assert many == ["released"] * 100
        await c.close()

    server, port = start(engine, handler=handler)
    with serving(server):
        asyncio.run(main(port))


def test_v1_async_client_calls_one_at_a_time(engine):
    async def handler(request):
        await asyncio.sleep(0)
        return request + 1

    async def main(port):
        c = await wire.open_connection("127.0.0.1", port, max_version=1, hello=False)
        assert await asyncio.gather(*(c.call(i) for i in range(20))) == list(range(1, 21))
        await c.close()

    server, port = start(engine, handler=handler)
    with serving(server):
        asyncio.run(main(port))


def test_no_common_version_gets_the_range_then_close(engine):
    server, port = start(engine, max_version=1)
    with serving(server):
        sock, dec = raw(port)
        sock.sendall(encode_wire_frame(HELLO, pack.packb({"versions": [2, 3]})))
        frame = read_frame(sock, dec)
        assert frame.type == ERROR
        body = pack.unpackb(frame.body)
        assert body["code"] == ErrorCode.UNSUPPORTED_VERSION
        assert (body["min"], body["max"]) == (1, 1)
        assert read_frame(sock, dec) is None  # closed
        sock.close()


def test_handler_error_is_type_and_message_never_a_traceback(engine):
    def bad(request):
        raise ValueError("bad input: " + str(request))

    server, port = start(engine, handler=bad)
    with serving(server):
        with wire.connect("127.0.0.1", port) as c:
            for i in range(3):
                with pytest.raises(WireRemoteError) as info:
                    c.call(i)
                assert (info.value.code, info.value.type_name, info.value.message) == (
                    ErrorCode.HANDLER, "ValueError", f"bad input: {i}")
                assert "Traceback" not in str(info.value)


def test_compatibility_rules(engine):
    """What a newer minor revision may add without breaking older peers:
    unknown flag bits 4-7, unknown HELLO keys, unknown metadata keys and
    unknown keys in body maps are ignored. A new frame type needs a new
    version: an old server refuses it as a broken frame."""
    seen = []

    def handler(request, metadata):
        seen.append(metadata)
        return request

    server, port = start(engine, handler=handler)
    with serving(server):
        sock, dec = raw(port)
        hello = {"versions": [1, 2, 9], "codecs": ["brotli", "zlib"], "future": {"x": 1}}
        sock.sendall(encode_wire_frame(HELLO, pack.packb(hello), flags=0xF0))
        answer = pack.unpackb(read_frame(sock, dec).body)
        assert (answer["version"], answer["codecs"]) == (2, ["zlib"])
        body = pack.packb([{"trace": "abc", "x-new": [1, 2]}, {"a": 1, "unknown": 2}])
        sock.sendall(encode_wire_frame(REQUEST, body, version=2, flags=0x08 | 0xF0, request_id=9))
        frame = read_frame(sock, dec)
        assert (frame.type, frame.request_id, pack.unpackb(frame.body)) == (
            RESPONSE, 9, {"a": 1, "unknown": 2})
        assert seen == [{"trace": "abc", "x-new": [1, 2]}]
        sock.sendall(bytes([0xFB, 2, len(FRAME_TYPES) + 1, 0]) + bytes(8))
        frame = read_frame(sock, dec)
        assert frame.type == ERROR and pack.unpackb(frame.body)["code"] == ErrorCode.BAD_FRAME
        assert read_frame(sock, dec) is None
        sock.close()


def test_v2_frame_without_hello_is_refused(engine):
    server, port = start(engine)
    with serving(server):
        sock, dec = raw(port)
        sock.sendall(encode_wire_frame(REQUEST, pack.packb(1), version=2, request_id=1))
        frame = read_frame(sock, dec)
        assert pack.unpackb(frame.body)["code"] == ErrorCode.PROTOCOL
        assert read_frame(sock, dec) is None
        sock.close()


def test_ping_is_answered_by_both_sides(engine):
    server, port = start(engine)
    with serving(server):
        sock, dec = raw(port)
        sock.sendall(encode_wire_frame(PING, b"t", request_id=3))
        assert read_frame(sock, dec)[:4] == (1, PONG, 0, 3)
        sock.close()


def test_keepalive_probe_is_answered_by_the_client(engine):
    require_engine(engine)
    server = wire.make_server(wire.WireConfig(), engine=engine, keepalive_interval=0.05)
    port = server.listen("127.0.0.1", 0, protocol="wire", handler=handle).port

    async def main():
        client = await wire.open_connection("127.0.0.1", port)  # silent from now on
        sock, dec = await asyncio.to_thread(raw, port)
        assert (await asyncio.to_thread(read_frame, sock, dec)).type == PING
        # the silent raw peer never answers: the server closes it ...
        assert await asyncio.to_thread(read_frame, sock, dec) is None
        sock.close()
        # ... while the client, as silent but answering probes itself, stays
        assert await asyncio.wait_for(client.call(1), GUARD) == {"got": 1}
        await client.close()

    with serving(server):
        asyncio.run(main())
        with wire.connect("127.0.0.1", port) as c:
            assert c.call(2) == {"got": 2}


def test_drain_sends_goaway_and_refuses_new_requests(engine):
    require_engine(engine)
    entered, leave = threading.Event(), threading.Event()

    def slow(request):
        entered.set()
        leave.wait(GUARD)
        return request

    server = wire.make_server(wire.WireConfig(), engine=engine)
    port = server.listen("127.0.0.1", 0, protocol="wire", handler=slow).port
    with serving(server):
        sock, dec = raw(port)
        sock.sendall(encode_wire_frame(REQUEST, pack.packb("x")))
        assert entered.wait(GUARD)
        stopper = threading.Thread(target=server.shutdown, kwargs={"timeout": GUARD})
        stopper.start()
        leave.set()
        types = []
        while (frame := read_frame(sock, dec)) is not None:
            types.append(frame.type)
        assert RESPONSE in types and GOAWAY in types
        stopper.join(GUARD)
        sock.close()


def test_rejections_are_error_frames(engine):
    require_engine(engine)
    server = wire.make_server(wire.WireConfig(), engine=engine, max_connections=1, backlog=0)
    port = server.listen("127.0.0.1", 0, protocol="wire", handler=handle).port
    with serving(server):
        with wire.connect("127.0.0.1", port) as c:
            assert c.call(1) == {"got": 1}
            sock, dec = raw(port)
            frame = read_frame(sock, dec)
            assert frame.type == ERROR and pack.unpackb(frame.body)["code"] == ErrorCode.BUSY
            sock.close()


# --- bounded decompression --------------------------------------------------

def zstd_bomb(size: int) -> bytes:
    """A zstd frame of RLE blocks (4 bytes per 128 KiB of zeros) expanding to size."""
    block = 128 * 1024
    out = bytearray(b"\x28\xb5\x2f\xfd\x00\x38")  # magic, no content size, 128 KiB window
    blocks = size // block
    for i in range(blocks):
        last = 1 if i == blocks - 1 else 0
        out += (last | (1 << 1) | (block << 3)).to_bytes(3, "little") + b"\0"
    return bytes(out)


@pytest.mark.parametrize("declared", [1024, 2**30])
def test_a_small_body_expanding_to_a_gib_gets_at_most_the_limit(declared):
    bomb = zstd_bomb(2**30)
    assert len(bomb) < 33 * 1024
    limit = 1 << 20
    body = declared.to_bytes(4, "big") + bomb
    tracemalloc.start()
    try:
        with pytest.raises(WireDecompressError) as info:
            compression.decompress(compression.CODECS["zstd"], body, limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"max_body={limit}" in str(info.value)
    assert peak < 2 * limit


def test_zlib_bomb_over_the_server_gets_an_error_and_the_connection_stays(engine):
    server, port = start(engine, max_body=1 << 20)
    bomb = (1024).to_bytes(4, "big") + zlib.compress(bytes(64 << 20), 9)  # 64 MiB in ~64 KiB
    with serving(server):
        sock, dec = raw(port)
        sock.sendall(encode_wire_frame(HELLO, pack.packb({"versions": [2], "codecs": ["zlib"]})))
        read_frame(sock, dec)
        sock.sendall(encode_wire_frame(REQUEST, bomb, version=2, flags=1, request_id=4))
        frame = read_frame(sock, dec)
        assert (frame.type, frame.request_id) == (ERROR, 4)
        fields = pack.unpackb(frame.body)
        assert fields["code"] == ErrorCode.BAD_BODY and "max_body=1048576" in fields["message"]
        sock.sendall(encode_wire_frame(REQUEST, pack.packb(7), version=2, request_id=5))
        assert pack.unpackb(read_frame(sock, dec).body) == {"got": 7}
        sock.close()


@pytest.mark.parametrize("max_version", ["1", "2"])
def test_cli_serves_wire_and_caps_its_version(max_version):
    from helpers import cli_server

    with cli_server("--protocol", "wire", "--handler", "serve_handlers:wire_double",
                    "--wire-max-version", max_version) as (_, port, _line):
        with wire.connect("127.0.0.1", port) as c:
            assert c.version == int(max_version)
            assert c.call(21) == 42


def test_cli_refuses_an_unknown_version():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "fastnet.serve", "--protocol", "wire",
                          "--wire-max-version", "3", "--port", "0"],
                         capture_output=True, text=True, timeout=GUARD)
    assert out.returncode == 2 and "--wire-max-version 3" in out.stderr


def test_compress_threshold_sets_where_a_client_starts_compressing():
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(GUARD)
    seen = []

    def serve():
        conn, _ = listener.accept()
        conn.settimeout(GUARD)
        dec = WireDecoder()
        assert read_frame(conn, dec).type == HELLO
        conn.sendall(encode_wire_frame(HELLO, pack.packb(
            {"version": 2, "codecs": ["zlib"], "max_body": 1 << 20}), version=2))
        for _ in range(2):
            frame = read_frame(conn, dec)
            seen.append(frame.flags & 7)
            conn.sendall(encode_wire_frame(RESPONSE, pack.packb(1), version=2,
                                           request_id=frame.request_id))
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    with wire.connect("127.0.0.1", listener.getsockname()[1], codecs=["zlib"],
                      compress_threshold=10) as client:
        assert client.call("a" * 100) == 1  # 102 bytes: over 10, compressed
        assert client.call("a") == 1        # 2 bytes: sent as it is
    thread.join(GUARD)
    listener.close()
    assert seen == [compression.CODECS["zlib"].id, 0]
