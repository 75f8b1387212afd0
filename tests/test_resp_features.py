"""RespServer's server features through redis-py and raw sockets, on the C
and Python engines with both codec twins: databases (SELECT, MOVE,
SWAPDB, redis-py's ``db=``), and the sans-IO table's view of them. The
byte-for-byte comparisons with redis-server are in tests/test_resp_vs_redis.py."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Iterator

import psutil
import pytest
import redis

from fastnet import codec
from fastnet.codec import encode_command
from fastnet.resp import RespServer, Session, Store, execute
from fastnet.resp.server import PROTECTED_MODE_DENIED
from fastnet.resp.shared import Shared
from helpers import GUARD, SERVING_LINE, running_resp_server, wait_for

MiB = 1024 * 1024
COMBOS = [(e, c) for e in ("c", "python") for c in ("c", "python")]


def _serve(engine: str, twin: str):
    if twin not in codec.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")
    with running_resp_server(engine, twin) as pair:
        yield pair


@pytest.fixture(params=COMBOS, ids=[f"{e}-{c}codec" for e, c in COMBOS])
def served(request):
    """(server, port) on one engine and one codec twin."""
    yield from _serve(*request.param)


#: The output-limit tests run on the threaded engine too (its writes are
#: synchronous: a subscriber's output waits in its Outbox instead).
ALL_ENGINES = COMBOS + [("threaded", c) for c in ("c", "python")]


@pytest.fixture(params=ALL_ENGINES, ids=[f"{e}-{c}codec" for e, c in ALL_ENGINES])
def served_anywhere(request):
    """(server, port) on one engine (the threaded one too) and one codec twin."""
    yield from _serve(*request.param)


def client(port: int, **options) -> redis.Redis:
    return redis.Redis(port=port, decode_responses=True, socket_timeout=GUARD,
                       socket_connect_timeout=GUARD, **options)


# --- databases ------------------------------------------------------------------------


def test_redis_py_db_selects_a_database(served):
    server, port = served
    zero, five = client(port), client(port, db=5)
    try:
        five.set("k", "five")
        assert zero.get("k") is None
        assert five.get("k") == "five"
        assert five.move("k", 0) is True
        assert (zero.get("k"), five.get("k")) == ("five", None)
        five.set("only5", "x")
        assert zero.swapdb(0, 5) is True
        assert (zero.get("only5"), five.get("k")) == ("x", "five")
        assert zero.info("keyspace") == {"db0": {"keys": 1, "expires": 0, "avg_ttl": 0},
                                         "db5": {"keys": 1, "expires": 0, "avg_ttl": 0}}
        five.flushdb()
        assert zero.dbsize() == 1 and five.dbsize() == 0
        zero.flushall()
        assert zero.dbsize() == 0
        assert zero.config_get("databases") == {"databases": "16"}
    finally:
        zero.close()
        five.close()


def test_move_keeps_the_ttl(served):
    _, port = served
    r = client(port)
    try:
        r.set("k", "v", ex=1000)
        assert r.move("k", 3)
        r.execute_command("SELECT", 3)
        assert 990 <= r.ttl("k") <= 1000
    finally:
        r.close()


def test_databases_option():
    server = RespServer(engine="python", databases=2)
    session = Session(server.store, shared=server.shared)
    assert execute(session, [b"SELECT", b"1"]) == b"+OK\r\n"
    assert execute(session, [b"SELECT", b"2"]) == b"-ERR DB index is out of range\r\n"
    assert server.config()[b"databases"] == b"2"
    with pytest.raises(ValueError, match="at least 1"):
        Shared.of(0)


def test_sans_io_session_has_one_database():
    session = Session(Store())
    assert execute(session, [b"SELECT", b"0"]) == b"+OK\r\n"
    assert execute(session, [b"SELECT", b"1"]) == b"-ERR DB index is out of range\r\n"
    assert execute(session, [b"MOVE", b"k", b"0"]) == \
        b"-ERR source and destination objects are the same\r\n"


# --- pub/sub --------------------------------------------------------------------------


def test_redis_py_pubsub_listen_and_get_message(served, protocol):
    _, port = served
    r = client(port, protocol=protocol)
    pubsub = r.pubsub()
    try:
        pubsub.subscribe("news")
        pubsub.psubscribe("n*")
        assert pubsub.get_message(timeout=GUARD)["type"] == "subscribe"
        assert pubsub.get_message(timeout=GUARD)["type"] == "psubscribe"
        assert r.publish("news", "one") == 2  # the channel and the pattern
        assert r.publish("nope", "two") == 1
        received = []
        for message in pubsub.listen():
            received.append((message["type"], message["channel"], message["data"]))
            if len(received) == 3:
                break
        assert received == [("message", "news", "one"), ("pmessage", "news", "one"),
                            ("pmessage", "nope", "two")]
        assert r.pubsub_numsub("news", "x") == [("news", 1), ("x", 0)]
        assert r.pubsub_numpat() == 1
        assert r.pubsub_channels() == ["news"]
        pubsub.unsubscribe("news")
        assert pubsub.get_message(timeout=GUARD)["type"] == "unsubscribe"
        assert r.publish("news", "three") == 1
    finally:
        pubsub.close()
        r.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    return request.param


def test_redis_py_asyncio_pubsub(served, protocol):
    import asyncio

    import redis.asyncio

    _, port = served

    async def main() -> list[tuple[str, str]]:
        r = redis.asyncio.Redis(port=port, protocol=protocol, decode_responses=True,
                                socket_timeout=GUARD)
        pubsub = r.pubsub()
        await pubsub.subscribe("a", "b")
        for _ in range(2):
            assert (await pubsub.get_message(timeout=GUARD))["type"] == "subscribe"
        for index in range(20):
            await r.publish("ab"[index % 2], str(index))
        got = []
        while len(got) < 20:
            message = await pubsub.get_message(timeout=GUARD)
            assert message is not None
            got.append((message["channel"], message["data"]))
        await pubsub.aclose()
        await r.aclose()
        return got

    # Messages arrive in the order they were published.
    assert asyncio.run(main()) == [("ab"[i % 2], str(i)) for i in range(20)]


def _subscriber(port: int, channel: bytes) -> socket.socket:
    """A subscriber with a small receive buffer that will stop reading."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(GUARD)
    sock.connect(("127.0.0.1", port))
    sock.sendall(encode_command(b"SUBSCRIBE", channel))
    expected = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel)
    received = b""
    while len(received) < len(expected):
        received += sock.recv(4096)
    assert received == expected
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Read (what the kernel holds) until EOF or a reset: True; a timeout: False."""
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


def test_slow_subscriber_is_disconnected_at_the_hard_limit(served_anywhere):
    """A subscriber that never reads is disconnected once the output held
    for it passes client-output-buffer-limit pubsub's hard limit; the
    server's memory stays bounded by it (nothing queues past it), and the
    publisher and other subscribers carry on."""
    server, port = served_anywhere
    r = client(port)
    assert r.config_set("client-output-buffer-limit", "pubsub 1mb 0 0")
    slow = _subscriber(port, b"ch")
    message = b"m" * 65536
    published = 0
    try:
        # The kernel's socket buffers take some; the limit the rest. Past
        # 1 MiB + the buffers, it must be gone.
        while r.publish("ch", message) == 1:
            published += 1
            assert published * len(message) < 64 * MiB, "the slow subscriber was never disconnected"
        assert _closed_by_server(slow)
        assert r.publish("ch", b"x") == 0
        assert r.pubsub_numsub("ch") == [("ch", 0)]
        wait_for(lambda: server.stats()["active"] == 1, "the publisher alone")
    finally:
        slow.close()
        r.close()


def test_slow_subscriber_does_not_hold_up_other_clients(served_anywhere):
    """While a subscriber that never reads is sent more than its socket
    buffers hold (under its limit: it stays connected), the publisher goes
    on publishing and another client goes on being served, each reply
    awaited with the failure guard only; then the subscriber reads
    everything, in order."""
    _, port = served_anywhere
    r, other = client(port), client(port)
    slow = _subscriber(port, b"ch")
    message = b"m" * 65536
    try:
        for number in range(128):  # 8 MiB: far past the kernel's buffers
            assert r.publish("ch", b"%04d" % number + message) == 1
            assert other.ping() is True
            assert other.incr("served") == number + 1
        expected = b"".join(encode_command(b"message", b"ch", b"%04d" % number + message)
                            for number in range(128))
        received = b""
        while len(received) < len(expected):
            chunk = slow.recv(1 << 20)
            assert chunk, "the subscriber was closed"
            received += chunk
        assert received == expected
        assert r.pubsub_numsub("ch") == [("ch", 1)]
    finally:
        slow.close()
        r.close()
        other.close()


def test_slow_subscriber_over_the_soft_limit_for_its_seconds(served_anywhere):
    """Over the soft limit for longer than its seconds (checked at the next
    message, as Redis does): disconnected, though under the hard limit."""
    _, port = served_anywhere
    r = client(port)
    assert r.config_set("client-output-buffer-limit", "pubsub 64mb 256kb 1")
    slow = _subscriber(port, b"ch")
    try:
        message = b"m" * 65536
        sent = 0
        while sent < 16 * MiB:  # past the soft limit plus the kernel's buffers
            assert r.publish("ch", message) == 1
            sent += len(message)
        over = time.monotonic()
        while time.monotonic() - over < 1.2:  # the soft seconds pass
            time.sleep(0.1)
        r.publish("ch", b"x")
        assert _closed_by_server(slow)
        assert r.publish("ch", b"x") == 0
    finally:
        slow.close()
        r.close()


def test_default_limit_bounds_server_memory(served_anywhere):
    """Redis's defaults (32mb hard): a subscriber that never reads costs
    the server at most about that, then it is disconnected."""
    _, port = served_anywhere
    r = client(port)
    slow = _subscriber(port, b"ch")
    process = psutil.Process()
    before = process.memory_info().rss
    message = b"m" * (256 * 1024)
    try:
        count = 0
        while r.publish("ch", message) == 1:
            count += 1
            assert count * len(message) < 256 * MiB, "never disconnected"
        grown = process.memory_info().rss - before
        assert grown < 96 * MiB, f"RSS grew by {grown / MiB:.0f} MiB"
        assert _closed_by_server(slow)
    finally:
        slow.close()
        r.close()


# --- blocking pops ----------------------------------------------------------------------


def test_redis_py_blocking_pops(served):
    _, port = served
    r, other = client(port), client(port)
    try:
        assert r.blpop(["nothing"], timeout=0.05) is None  # the timeout: a null array
        other.rpush("q", "one")
        assert r.blpop(["empty", "q"], timeout=1) == ("q", "one")
        other.rpush("src", "a", "b")
        assert r.blmove("src", "dst", 1, "RIGHT", "LEFT") == "b"
        other.set("str", "x")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            r.brpop(["str"], timeout=1)
    finally:
        r.close()
        other.close()


def test_blocked_clients_are_served_in_arrival_order(served):
    server, port = served
    waiters = [socket.create_connection(("127.0.0.1", port), timeout=GUARD) for _ in range(3)]
    r = client(port)
    try:
        for index, sock in enumerate(waiters):
            sock.sendall(encode_command(b"BLPOP", b"q", b"0"))
            wait_for(lambda: r.info("clients")["blocked_clients"] == index + 1, "blocked")
        r.rpush("q", "1", "2", "3")
        for index, sock in enumerate(waiters):
            expected = b"*2\r\n$1\r\nq\r\n$1\r\n%d\r\n" % (index + 1)
            received = b""
            while len(received) < len(expected):
                received += sock.recv(100)
            assert received == expected
        assert r.info("clients")["blocked_clients"] == 0
    finally:
        for sock in waiters:
            sock.close()
        r.close()


@pytest.mark.parametrize("engine", ["c", "python"])
def test_drain_answers_blocked_clients(engine):
    """fastnet's choice: during a graceful drain a blocked client is not
    idle (it waits on: a connection still working may push to it); once
    only blocked clients are left it is answered as its timeout would be
    (a null array) and closed, and the drain ends without forcing."""
    if engine == "c" and "c" not in codec.impls:
        pytest.skip("C extension not built")
    with running_resp_server(engine, "python") as (server, port):
        sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        r = client(port)
        sock.sendall(encode_command(b"BLPOP", b"q", b"0"))
        wait_for(lambda: r.info("clients")["blocked_clients"] == 1, "blocked")
        (blocked,) = [c for c in server.shared.clients.values() if c.blocked is not None]
        assert blocked.conn.session.idle() is False
        r.close()
        server.shutdown(timeout=GUARD)
        received = b""
        while chunk := sock.recv(100):
            received += chunk
        assert received == b"*-1\r\n"
        sock.close()
    assert server.forced_closes == 0


def test_a_blocked_client_that_leaves_is_dropped(served):
    server, port = served
    r = client(port)
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        sock.sendall(encode_command(b"BLPOP", b"q", b"0") + encode_command(b"SET", b"after", b"1"))
        wait_for(lambda: r.info("clients")["blocked_clients"] == 1, "blocked")
        sock.close()
        wait_for(lambda: r.info("clients")["connected_clients"] == 1, "dropped")
        r.rpush("q", "kept")
        assert r.lrange("q", 0, -1) == ["kept"]  # nobody took it
        assert r.get("after") is None  # its queued command never ran
    finally:
        r.close()


# --- AUTH, protected mode -----------------------------------------------------------------


def test_requirepass(served):
    server, port = served
    server.shared.requirepass = b"sekret"
    try:
        anonymous = client(port)
        with pytest.raises(redis.AuthenticationError):
            anonymous.get("k")
        anonymous.close()
        with pytest.raises(redis.AuthenticationError):
            client(port, password="wrong").ping()
        authed = client(port, password="sekret")
        assert authed.set("k", "v") and authed.get("k") == "v"
        authed.close()
        resp3 = client(port, username="default", password="sekret", protocol=3)
        assert resp3.get("k") == "v"
        resp3.close()
    finally:
        server.shared.requirepass = None


def test_noauth_replies():
    server = RespServer(engine="python", requirepass="pw")
    session = Session(server.store, shared=server.shared, authenticated=False, host=server)
    assert execute(session, [b"GET", b"k"]) == b"-NOAUTH Authentication required.\r\n"
    assert execute(session, [b"AUTH", b"nope"]).startswith(b"-WRONGPASS")
    assert execute(session, [b"AUTH", b"default", b"pw"]) == b"+OK\r\n"
    assert execute(session, [b"GET", b"k"]) == b"$-1\r\n"


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    """A network namespace with a veth address, 10.77.0.1, that is not
    loopback (the namespace keeps it away from every other test)."""
    name = f"fastnet-resps-{os.getpid()}"
    ip = shutil.which("ip")
    if ip is None or os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the protected-mode test needs root and iproute2 (ip netns)")
        pytest.skip("needs root and iproute2 for a network namespace")
    subprocess.run([ip, "netns", "add", name], check=True, timeout=GUARD)
    try:
        for command in (["link", "set", "lo", "up"],
                        ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                        ["addr", "add", "10.77.0.1/24", "dev", "v0"],
                        ["link", "set", "v0", "up"], ["link", "set", "v1", "up"]):
            subprocess.run([ip, "-n", name, *command], check=True, timeout=GUARD)
        yield name
    finally:
        subprocess.run([ip, "netns", "del", name], timeout=GUARD)


_PROBE = """
import socket, sys
sock = socket.create_connection(("10.77.0.1", int(sys.argv[1])), timeout=30)
sock.sendall(b"PING\\r\\n")
data = b""
while not data.endswith(b"\\r\\n"):
    chunk = sock.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.buffer.write(data)
"""


@pytest.mark.parametrize("options,expected", [
    ((), PROTECTED_MODE_DENIED),
    (("--protected-mode", "no"), b"+PONG\r\n"),
    (("--requirepass", "pw"), b"-NOAUTH Authentication required.\r\n"),
], ids=["protected", "protected-mode-no", "with-password"])
def test_protected_mode_refuses_a_client_from_outside_loopback(options, expected):
    """Listening on a non-loopback address (inside a namespace the test
    makes) with no password: the client gets Redis's DENIED text and is
    closed, unless --protected-mode no or a password is set."""
    with namespace() as name:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        server = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, "-m", "fastnet.serve", "--protocol",
             "resp", "--engine", "python", "--host", "10.77.0.1", "--port", "0", *options],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            assert server.stdout is not None
            match = SERVING_LINE.search(server.stdout.readline())
            assert match, "no serving line"
            port = int(match.group(3))
            probe = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", _PROBE,
                                    str(port)], capture_output=True, timeout=GUARD)
            assert probe.stdout == expected, probe
        finally:
            server.terminate()
            server.wait(GUARD)


def test_loopback_clients_are_not_refused(served):
    server, port = served
    assert server.protected_mode is True and server.shared.requirepass is None
    r = client(port)
    assert r.ping()
    r.close()


# --- CLIENT, CONFIG SET, redis-cli's tools ----------------------------------------------


def test_client_list_info_and_kill(served):
    _, port = served
    r = client(port)
    victim = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    try:
        victim.sendall(encode_command(b"CLIENT", b"SETNAME", b"victim") + encode_command(b"SELECT", b"3"))
        wait_for(lambda: any(c["name"] == "victim" and c["db"] == "3" for c in r.client_list()),
                 "the victim listed")
        (listed,) = [c for c in r.client_list() if c["name"] == "victim"]
        info = r.client_info()
        assert info["id"] == r.client_id() and info["cmd"] == "client|info"
        assert info["laddr"] == f"127.0.0.1:{port}"
        assert r.client_kill_filter(_id=int(listed["id"])) == 1
        assert _closed_by_server(victim)
        assert "victim" not in [c["name"] for c in r.client_list()]
    finally:
        r.close()
        victim.close()


def test_client_kill_old_form_and_type(served):
    _, port = served
    r = client(port)
    sub = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    try:
        sub.sendall(encode_command(b"SUBSCRIBE", b"c"))
        wait_for(lambda: r.pubsub_numsub("c") == [("c", 1)], "subscribed")
        (line,) = [c for c in r.client_list(_type="pubsub")]
        assert line["flags"] == "P" and line["sub"] == "1"
        assert r.execute_command("CLIENT", "KILL", line["addr"]) == "OK"
        assert _closed_by_server(sub)
        assert r.execute_command("CLIENT", "KILL", "TYPE", "normal") == 0  # SKIPME yes
    finally:
        sub.close()
        r.close()


def test_config_set_maxclients_and_timeout(served):
    server, port = served
    r = client(port)
    try:
        assert r.config_set("maxclients", 2) and r.config_get("maxclients") == {"maxclients": "2"}
        wait_for(lambda: server.max_connections == 2, "maxclients applied")
        assert r.config_set("timeout", 1) and r.config_get("timeout") == {"timeout": "1"}
        idle = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        assert _closed_by_server(idle)  # closed after a second of silence
        idle.close()
        r.config_set("timeout", 0)
        assert server.idle_timeout is None
        with pytest.raises(redis.ResponseError, match="argument must be between 1 and"):
            r.config_set("maxclients", 0)
        assert r.config_get("client-output-buffer-limit") == {
            "client-output-buffer-limit":
                "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"}
    finally:
        r.close()


def _redis_cli_on_a_pty(port: int, *args: str, until: bytes) -> bytes:
    """redis-cli ARGS on a terminal (its --stat prints only there), read
    until ``until`` shows, then killed."""
    import pty
    import select
    import signal

    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="dumb", HOME="/nonexistent")
        os.execv(shutil.which("redis-cli") or "redis-cli", ["redis-cli", "-p", str(port), *args])
    seen = b""
    try:
        deadline = time.monotonic() + GUARD
        while until not in seen:
            assert time.monotonic() < deadline, f"no {until!r} in {seen!r}"
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
        return seen
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def test_redis_cli_bigkeys_memkeys_and_stat(served):
    _, port = served
    if shutil.which("redis-cli") is None:
        pytest.fail("redis-cli is not installed (the README's test command installs redis-tools)")
    r = client(port)
    try:
        r.set("s", "hello")
        r.rpush("l", *"abcdefg")
        r.hset("h", mapping={"f": "v", "g": "w"})
        r.sadd("st", "m")
        for flag, expected in (("--bigkeys", [b"Biggest   list found '\"l\"' has 7 items",
                                              b"Biggest   hash found '\"h\"' has 2 fields",
                                              b"Biggest string found '\"s\"' has 5 bytes"]),
                               ("--memkeys", [b"Biggest   list found '\"l\"' has "])):
            result = subprocess.run(["redis-cli", "-p", str(port), flag], capture_output=True,
                                    timeout=GUARD)
            assert result.returncode == 0, result
            assert b"Sampled 4 keys in the keyspace!" in result.stdout, result
            for line in expected:
                assert line in result.stdout, result.stdout
        # --stat: its header, then a line per interval with the key count.
        seen = _redis_cli_on_a_pty(port, "--stat", "-i", "0.1", until=b"\n4 ")
        assert b"keys       mem      clients blocked requests" in seen
    finally:
        r.close()


def test_info_memory_cpu_replication(served):
    _, port = served
    r = client(port)
    try:
        memory, cpu, replication = r.info("memory"), r.info("cpu"), r.info("replication")
        assert 0 < memory["used_memory_rss"] <= memory["used_memory_peak"]
        assert memory["used_memory_human"].endswith(("K", "M", "G"))
        assert cpu["used_cpu_user"] > 0 and cpu["used_cpu_sys"] >= 0
        assert replication["role"] == "master" and replication["connected_slaves"] == 0
        r.set("k", "v" * 1000)
        assert 1000 < r.memory_usage("k") < 2000
        assert r.memory_usage("missing") is None
    finally:
        r.close()


def test_client_kill_by_addr_and_laddr(served):
    _, port = served
    r = client(port)
    victim = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    try:
        host, victim_port = victim.getsockname()[:2]
        wait_for(lambda: len(r.client_list()) == 2, "both listed")
        assert r.execute_command("CLIENT", "KILL", "ADDR", "1.2.3.4:5") == 0
        assert r.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{victim_port}") == 1
        assert _closed_by_server(victim)
        assert r.execute_command("CLIENT", "KILL", "LADDR", f"127.0.0.1:{port}", "SKIPME", "no") == 1
    finally:
        victim.close()
        r.close()
