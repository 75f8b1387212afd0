"""RespServer over real sockets on every engine and both RESP codec twins:
the custom commands API, Redis's protocol behaviour (QUIT, protocol errors,
bulk limits), and the control plane (max clients, graceful drain, idle
timeout, INFO's counters), in-process and through
``python -m fastnet.serve --protocol resp``."""
from __future__ import annotations

import os
import signal
import socket
import contextlib
import subprocess
import sys
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fastnet import codec
from fastnet.resp import COMMANDS, RespError, RespServer, Session, SimpleString, execute
from helpers import ENGINES, GUARD, cli_server, redis_server, running_resp_server, wait_for

CODECS = ["c", "python"]
COMBOS = [(e, c) for e in ENGINES for c in CODECS]
COMBO_IDS = [f"{e}-{c}codec" for e, c in COMBOS]


def _require_codec(name: str) -> None:
    if name not in codec.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")


class RawClient:
    """A plain socket speaking RESP: bytes out, decoded replies or raw bytes in."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(GUARD)
        self.sock.connect(("127.0.0.1", port))
        self.decoder = codec.resp.RespReplyDecoder()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self, n: int) -> list[object]:
        out: list[object] = []
        while len(out) < n:
            out += self.decoder.replies()
            if len(out) < n:
                data = self.sock.recv(1 << 16)
                assert data, f"closed after {len(out)} of {n} replies: {out!r}"
                self.decoder.feed(data)
        assert len(out) == n, out
        return out

    def call(self, data: bytes, n: int = 1) -> list[object]:
        self.send(data)
        return self.replies(n)

    def read_some(self) -> bytes:
        return self.sock.recv(1 << 16)

    def read_to_eof(self) -> bytes:
        """Everything the server sends until it closes (a reset counts as a
        close only after the bytes before it were read)."""
        chunks = []
        while data := self.sock.recv(1 << 16):
            chunks.append(data)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def info(port: int) -> dict[str, str]:
    """INFO's fields, asked on a fresh plain connection (redis-py would run
    its own handshake commands first, which count as commands)."""
    with RawClient(port) as c:
        (text,) = c.call(b"INFO\r\n")
    assert isinstance(text, bytes)
    fields = (line.split(":", 1) for line in text.decode().splitlines() if ":" in line)
    return {key: value for key, value in fields}


# -- the codec the server runs by default ------------------------------------

def test_default_codec_is_the_active_backend():
    assert RespServer(engine="python").codec == codec.backend


@pytest.mark.parametrize("idle_timeout, reported", [(None, b"0"), (0.5, b"1"), (30, b"30")])
def test_config_get_timeout_is_whole_seconds_and_never_0_for_a_fraction(idle_timeout, reported):
    # Regression: int(0.5) reported an idle timeout of half a second as 0 ("never").
    server = RespServer(engine="python", idle_timeout=idle_timeout)
    session = Session(server.store, host=server)
    assert execute(session, [b"CONFIG", b"GET", b"timeout"], server.commands) == (
        b"*2\r\n$7\r\ntimeout\r\n$%d\r\n%s\r\n" % (len(reported), reported))


def test_cli_under_fastnet_pure_serves_with_the_python_codec():
    # Regression: RespServer named the active twin "py" (its module's name),
    # not "python" (its key in fastnet.codec.impls), and crashed at start.
    env = {k: v for k, v in os.environ.items() if k != "FASTNET_REQUIRE_NATIVE"}
    env["FASTNET_PURE"] = "1"
    code = "from fastnet.resp import RespServer; print(RespServer(engine='python').codec)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=GUARD)
    assert out.returncode == 0 and out.stdout == "python\n", out


# -- custom commands ---------------------------------------------------------

def custom_commands(server: RespServer) -> None:
    @server.command("HELLOWORLD", arity=2)
    def helloworld(ctx, name):
        return b"Hello, " + name

    @server.command("Join", arity=-2, flags=("readonly", "fast"))
    def join(ctx, *parts):
        return b",".join(parts)

    values = {
        b"bytes": b"raw \x00 bytes",
        b"str": "text \u00e9",
        b"int": -42,
        b"none": None,
        b"list": [1, b"two", [None, b"three"]],
        b"dict": {b"a": 1, b"b": [b"x"]},
        b"error": RespError(b"MYERR custom failure"),
        b"simple": SimpleString(b"FINE"),
    }

    @server.command("RTYPE", arity=2)
    def rtype(ctx, kind):
        return values[kind]

    @server.command("BOOM", arity=1)
    def boom(ctx):
        raise RuntimeError("kaboom")

    @server.command("WHOAMI", arity=1)
    def whoami(ctx):
        return [ctx.id, ctx.name, ctx.protocol, ctx.conn.id]

    @server.command("KSET", arity=3, flags=("write",), first_key=1, last_key=1, step=1)
    def kset(ctx, key, value):
        ctx.store.set(key, value.upper())
        return SimpleString(b"OK")

    @server.command("echo", arity=2)  # replaces the built-in
    def reversed_echo(ctx, message):
        return message[::-1]


@pytest.fixture(params=COMBOS, ids=COMBO_IDS)
def custom(request):
    engine, codec_name = request.param
    _require_codec(codec_name)
    with running_resp_server(engine, codec_name, setup=custom_commands) as served:
        yield served


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_custom_commands_with_redis_py(custom, protocol):
    server, port = custom
    r = redis.Redis(port=port, protocol=protocol, socket_timeout=GUARD)
    assert r.execute_command("HELLOWORLD", "world") == b"Hello, world"
    assert r.execute_command("helloworld", b"\x00\xff") == b"Hello, \x00\xff"
    assert r.execute_command("JOIN", "a") == b"a"
    assert r.execute_command("join", "a", "b", "c") == b"a,b,c"
    assert r.execute_command("RTYPE", "bytes") == b"raw \x00 bytes"
    assert r.execute_command("RTYPE", "str") == "text \u00e9".encode()
    assert r.execute_command("RTYPE", "int") == -42
    assert r.execute_command("RTYPE", "none") is None
    assert r.execute_command("RTYPE", "list") == [1, b"two", [None, b"three"]]
    expected_map = {b"a": 1, b"b": [b"x"]} if protocol == 3 else [b"a", 1, b"b", [b"x"]]
    assert r.execute_command("RTYPE", "dict") == expected_map
    assert r.execute_command("RTYPE", "simple") == b"FINE"
    with pytest.raises(redis.ResponseError, match="^MYERR custom failure$"):
        r.execute_command("RTYPE", "error")
    assert r.execute_command("KSET", "k", "value") == b"OK"
    assert r.get("k") == b"VALUE"
    assert r.echo("abc") == b"cba"
    session_id, name, proto, conn_id = r.execute_command("WHOAMI")
    assert session_id == r.client_id() and name is None and proto == protocol
    assert conn_id in server._conns
    r.close()


def test_custom_command_replies_on_the_wire(custom):
    server, port = custom
    with RawClient(port) as c:
        c.send(command(b"RTYPE", b"dict") + command(b"RTYPE", b"none")
               + command(b"RTYPE", b"error") + command(b"RTYPE", b"simple"))
        expected = (b"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*1\r\n$1\r\nx\r\n"
                    b"$-1\r\n-MYERR custom failure\r\n+FINE\r\n")
        got = b""
        while len(got) < len(expected):
            got += c.sock.recv(1 << 16)
        assert got == expected
        c.send(b"HELLO 3\r\n")
        c.replies(1)
        c.send(command(b"RTYPE", b"dict") + command(b"RTYPE", b"none"))
        expected = b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*1\r\n$1\r\nx\r\n_\r\n"
        got = b""
        while len(got) < len(expected):
            got += c.sock.recv(1 << 16)
        assert got == expected


def test_custom_command_arity_errors_are_redis_words(custom):
    server, port = custom
    with RawClient(port) as c:
        c.send(b"HELLOWORLD\r\nhelloworld a b\r\n" + command(b"JOIN") + command(b"WHOAMI", b"x")
               + command(b"HELLOWORLD", b"ok"))
        want = (b"-ERR wrong number of arguments for 'helloworld' command\r\n"
                b"-ERR wrong number of arguments for 'helloworld' command\r\n"
                b"-ERR wrong number of arguments for 'join' command\r\n"
                b"-ERR wrong number of arguments for 'whoami' command\r\n"
                b"$9\r\nHello, ok\r\n")
        got = b""
        while len(got) < len(want):
            got += c.sock.recv(1 << 16)
        assert got == want
    r = redis.Redis(port=port, socket_timeout=GUARD)
    with pytest.raises(redis.ResponseError,
                       match="^wrong number of arguments for 'helloworld' command$"):
        r.execute_command("HELLOWORLD")
    r.close()


def test_custom_command_exception_is_an_error_reply_and_the_connection_lives(custom, caplog):
    server, port = custom
    r = redis.Redis(port=port, socket_timeout=GUARD)
    before = r.client_id()
    with pytest.raises(redis.ResponseError, match="^command 'boom' failed: RuntimeError$"):
        r.execute_command("BOOM")  # redis-py drops the ERR code
    assert r.client_id() == before  # the same connection, still served
    assert r.execute_command("HELLOWORLD", "again") == b"Hello, again"
    with pytest.raises(redis.ResponseError):  # KeyError inside: same path
        r.execute_command("RTYPE", "nonsense")
    assert r.ping() is True and r.client_id() == before
    assert "command BOOM failed" in caplog.text and "kaboom" in caplog.text
    with RawClient(port) as c:
        c.send(b"BOOM\r\nPING\r\n")
        assert c.replies(2) == [RespError(b"ERR command 'boom' failed: RuntimeError"), b"PONG"]
    stats = server.stats()
    assert stats.get("closed_handler_error", 0) == 0 and stats.get("handler_errors", 0) == 0
    r.close()


def test_command_info_and_count_list_custom_commands(custom):
    server, port = custom
    r = redis.Redis(port=port, socket_timeout=GUARD)
    # COMMAND's replies read raw: redis-py's parser for COMMAND would reshape them.
    assert r.execute_command("COMMAND COUNT") == len(COMMANDS) + 6  # 6 new names, ECHO replaced
    with RawClient(port) as c:
        (hello, join, kset, missing), = c.call(command(b"COMMAND", b"INFO", b"helloworld",
                                                        b"JOIN", b"kset", b"nosuch"))
        assert hello == [b"helloworld", 2, [], 0, 0, 0, [], [], [], []]
        assert join[:6] == [b"join", -2, [b"readonly", b"fast"], 0, 0, 0]
        assert kset[:6] == [b"kset", 3, [b"write"], 1, 1, 1]
        assert missing is None
        (names,) = c.call(command(b"COMMAND", b"LIST"))
        assert {b"helloworld", b"join", b"rtype", b"boom", b"whoami", b"kset"} <= set(names)
    r.close()


def test_command_registration_refuses_what_cannot_work():
    server = RespServer(engine="python")

    async def coroutine_command(ctx):
        return b"never"

    with pytest.raises(TypeError, match="coroutine"):
        server.command("ASYNCY", arity=1)(coroutine_command)
    for bad in ["", "two words", "tab\there", "new\r\nline", "caf\u00e9", "nul\x00"]:
        with pytest.raises(ValueError, match="printable ASCII"):
            server.command(bad, arity=1)
    with pytest.raises(ValueError, match="arity"):
        server.command("ZERO", arity=0)
    assert b"asyncy" not in server.commands


# -- protocol behaviour over sockets ------------------------------------------

@pytest.fixture(params=COMBOS, ids=COMBO_IDS)
def served(request):
    engine, codec_name = request.param
    _require_codec(codec_name)
    with running_resp_server(engine, codec_name) as pair:
        yield pair


def test_quit_replies_ok_then_closes_and_runs_nothing_after_it(served):
    server, port = served
    with RawClient(port) as c:
        c.send(b"SET a 1\r\nQUIT\r\nSET b 2\r\n")
        assert c.read_to_eof() == b"+OK\r\n+OK\r\n"
    with RawClient(port) as c:
        c.send(command(b"QUIT") + command(b"SET", b"c", b"3"))
        assert c.read_to_eof() == b"+OK\r\n"
    r = redis.Redis(port=port, socket_timeout=GUARD)
    assert r.get("a") == b"1" and r.get("b") is None and r.get("c") is None
    r.close()


def test_inline_commands(served):
    server, port = served
    with RawClient(port) as c:
        c.send(b"PING\r\nSET k v\r\nGET k\r\n")
        assert c.replies(3) == [b"PONG", b"OK", b"v"]
        # Redis's inline grammar: quotes, escapes, a bare LF, blank lines skipped.
        c.send(b"SET \"a b\" 'c d'\n\r\n\nGET \"a b\"\r\nECHO \"tab\\there\\x41\"\r\n")
        assert c.replies(3) == [b"OK", b"c d", b"tab\thereA"]


@pytest.mark.parametrize("bad, error", [
    (b"*1\r\nfoo\r\n", b"expected '$', got 'f'"),
    (b"*1\r\n$x\r\n", b"invalid bulk length"),
    (b"*x\r\n", b"invalid multibulk length"),
    (b'SET "a\r\n', b"unbalanced quotes in request"),
])
def test_protocol_error_after_the_replies_before_it_closes_only_that_client(served, bad, error):
    server, port = served
    with RawClient(port) as bystander, RawClient(port) as c:
        assert bystander.call(b"PING\r\n") == [b"PONG"]
        c.send(b"PING\r\nSET k v\r\n" + command(b"GET", b"k") + bad + b"PING\r\n")
        assert c.read_to_eof() == b"+PONG\r\n+OK\r\n$1\r\nv\r\n-ERR Protocol error: " + error + b"\r\n"
        assert bystander.call(b"GET k\r\n") == [b"v"]
        wait_for(lambda: server.stats().get("closed_protocol") == 1, "the close to be counted")
        assert server.stats()["protocol_errors"] == 1
        assert bystander.call(command(b"INFO", b"stats"))[0].count(b"fastnet_protocol_errors:1\r\n") == 1


def test_inline_line_over_64k_is_a_protocol_error(served):
    server, port = served
    with RawClient(port) as bystander, RawClient(port) as c:
        c.send(b"PING\r\n" + b"a" * (70 * 1024))
        assert c.read_to_eof() == b"+PONG\r\n-ERR Protocol error: too big inline request\r\n"
        assert bystander.call(b"PING\r\n") == [b"PONG"]


def test_a_client_that_half_closes_after_its_commands_gets_every_reply(served):
    # `printf 'SET a 1\r\nGET a\r\n' | nc -N`: the peer's EOF follows its commands.
    server, port = served
    with RawClient(port) as c:
        c.send(b"SET a 1\r\nGET a\r\n" + b"INCR n\r\n" * 100)
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_to_eof() == b"+OK\r\n$1\r\n1\r\n" + b"".join(
            b":%d\r\n" % i for i in range(1, 101))


def test_protocol_error_split_across_reads(served):
    server, port = served
    with RawClient(port) as c:
        c.send(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r")
        assert c.replies(1) == [b"hi"]
        c.send(b"\n$-5\r\n")
        assert c.read_to_eof() == b"-ERR Protocol error: invalid bulk length\r\n"
    assert server.stats()["protocol_errors"] == 1


@pytest.mark.parametrize("engine, codec_name", COMBOS, ids=COMBO_IDS)
def test_bulk_over_the_limit_is_a_protocol_error(engine, codec_name):
    _require_codec(codec_name)
    with running_resp_server(engine, codec_name, max_bulk_len=1024) as (server, port):
        with RawClient(port) as bystander, RawClient(port) as c:
            assert c.call(command(b"SET", b"k", b"x" * 1024)) == [b"OK"]
            c.send(command(b"SET", b"k", b"y" * 2048))
            assert c.read_to_eof() == b"-ERR Protocol error: invalid bulk length\r\n"
            assert bystander.call(b"STRLEN k\r\n") == [1024]
        assert server.stats()["protocol_errors"] == 1


def _read_until_closed(c: RawClient) -> bytes:
    """What arrives before the server closes; a reset (the server closed
    with our bytes unread, as Redis does too) ends it like EOF."""
    chunks = []
    try:
        while data := c.sock.recv(1 << 16):
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


@pytest.mark.parametrize("engine, codec_name", COMBOS, ids=COMBO_IDS)
def test_unfinished_command_over_client_query_buffer_limit_is_closed_counted_logged(
        engine, codec_name, caplog):
    """Regression: `*2147483647` and empty bulks forever grew the server
    without limit. Past client_query_buffer_limit the client is closed
    without a reply (as Redis), logged and counted; others are served."""
    _require_codec(codec_name)
    with running_resp_server(engine, codec_name, client_query_buffer_limit=4096) as (server, port):
        with RawClient(port) as bystander, RawClient(port) as c:
            assert bystander.call(b"CONFIG GET client-query-buffer-limit\r\n") == [
                [b"client-query-buffer-limit", b"4096"]]
            c.send(b"PING\r\n*2147483647\r\n")
            assert c.replies(1) == [b"PONG"]
            try:
                for _ in range(100):  # 100 * 22 bytes held per argument > 4096
                    c.send(b"$0\r\n\r\n" * 10)
            except OSError:
                pass  # closed while still sending: what is asserted next
            assert _read_until_closed(c) == b""
            assert bystander.call(b"PING\r\n") == [b"PONG"]
        wait_for(lambda: server.stats().get("closed_query_buffer_limit") == 1,
                 "the close to be counted")
        assert server.stats()["protocol_errors"] == 1
    assert "client_query_buffer_limit=4096" in caplog.text


# -- control plane: counters ----------------------------------------------------

REJECTED_THEN_INFO = (b"INFO stats\r\nNOSUCH\r\nGET\r\nCLIENT SETINFO x y\r\nCONFIG\r\n"
                      b"COMMAND NOSUCH\r\nPING\r\nPING\r\nINFO stats\r\n")


def _processed(reply: object) -> int:
    text = bytes(reply).decode()  # type: ignore[arg-type]
    return int(text.split("total_commands_processed:", 1)[1].split("\r\n", 1)[0])


def test_rejected_commands_are_not_counted(served, tmp_path):
    """As Redis: an unknown command or subcommand, or a wrong argument
    count, never runs and is not counted; a command counts once it ran (so
    a later command of the same pipelined batch sees it)."""
    server, port = served
    with RawClient(port) as c:
        replies = c.call(REJECTED_THEN_INFO, 9)
    with redis_server(str(tmp_path)) as path, socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(GUARD)
        sock.connect(path)
        sock.sendall(REJECTED_THEN_INFO)
        decoder = codec.resp.RespReplyDecoder()
        theirs: list[object] = []
        while len(theirs) < 9:
            decoder.feed(sock.recv(1 << 16))
            theirs += decoder.replies()
    assert replies[1:8] == theirs[1:8]  # the rejections, word for word, and the PONGs
    assert [_processed(replies[0]), _processed(replies[8])] == [0, 3]
    assert [_processed(theirs[0]), _processed(theirs[8])] == [0, 3]

def test_info_counts_clients_and_commands(served):
    server, port = served
    observer = RawClient(port)
    asked = 0

    def ask() -> dict[str, str]:
        nonlocal asked
        (text,) = observer.call(b"INFO\r\n")
        asked += 1
        return dict(line.split(":", 1) for line in text.decode().splitlines() if ":" in line)

    clients = [RawClient(port) for _ in range(5)]
    for i, c in enumerate(clients):
        assert c.call(b"PING\r\n" * (i + 1), i + 1) == [b"PONG"] * (i + 1)
    stats = ask()
    assert stats["connected_clients"] == "6"  # the 5 and the observer
    assert stats["total_commands_processed"] == "15"  # 1+2+3+4+5: INFO counts after itself
    assert stats["total_connections_received"] == "6"
    for c in clients[:3]:
        c.close()
    wait_for(lambda: ask()["connected_clients"] == "3", "three clients to leave")
    stats = ask()
    assert stats["total_commands_processed"] == str(15 + asked - 1)
    assert stats["total_connections_received"] == "6"
    for c in clients[3:] + [observer]:
        c.close()


def test_pipelined_commands_are_one_batch_each_read(served):
    server, port = served
    with RawClient(port) as c:
        n = 5000
        replies = c.call(b"".join(command(b"INCR", b"n") for _ in range(n)), n)
        assert replies == list(range(1, n + 1))
    assert server.commands_processed == n


# -- control plane through python -m fastnet.serve --protocol resp -----------

#: (engine, pure): FASTNET_PURE=1 gives the child the Python codec twin (and
#: the python or threaded engine: the C engine needs the C backend).
CLI_COMBOS = [("c", False), ("python", False), ("threaded", False), ("python", True)]
CLI_IDS = [f"{e}-{'py' if pure else 'c'}codec" for e, pure in CLI_COMBOS]
cli_combos = pytest.mark.parametrize("engine, pure", CLI_COMBOS, ids=CLI_IDS)


@contextlib.contextmanager
def resp_cli(engine: str, pure: bool, *args: str):
    """`python -m fastnet.serve --protocol resp` with args; yields (proc, port)."""
    if not pure:
        _require_codec("c")
    with cli_server("--protocol", "resp", "--engine", engine, *args, pure=pure) as (proc, port, line):
        assert f"(engine {engine}, backend {'python' if pure else 'c'})" in line
        yield proc, port


def stop_cleanly(proc: subprocess.Popen) -> None:
    proc.terminate()
    assert proc.wait(GUARD) == 0


@cli_combos
def test_cli_max_clients_turns_the_next_one_away_in_redis_words(engine, pure):
    with resp_cli(engine, pure, "--max-connections", "1", "--backlog", "0") as (proc, port):
        with RawClient(port) as first:
            assert first.call(b"PING\r\n") == [b"PONG"]
            with RawClient(port) as second:
                assert second.read_to_eof() == b"-ERR max number of clients reached\r\n"
            r = redis.Redis(port=port, socket_timeout=GUARD, retry=Retry(NoBackoff(), 0))
            with pytest.raises(redis.ConnectionError, match="max number of clients reached"):
                r.ping()
            r.close()
            (text,) = first.call(b"INFO\r\n")
            assert b"rejected_connections:2\r\n" in text and b"connected_clients:1\r\n" in text
            assert b"fastnet_rejected_busy:2\r\n" in text
            assert first.call(b"CONFIG GET maxclients\r\n") == [[b"maxclients", b"1"]]
        # The slot is free again.
        wait_for(lambda: _pings(port), "the freed slot to serve a new client")
        stop_cleanly(proc)


def _pings(port: int) -> bool:
    with RawClient(port) as c:
        c.send(b"PING\r\n")
        return c.read_some() == b"+PONG\r\n"


@cli_combos
def test_cli_sigterm_drains_a_pipeline_of_5000_commands(engine, pure):
    n, value = 5000, b"v" * 512
    with resp_cli(engine, pure) as (proc, port):
        with RawClient(port) as setup:
            assert setup.call(command(b"SET", b"big", value)) == [b"OK"]
        # A small receive window keeps most of the 2.5 MB of replies queued
        # in the server when the signal comes.
        c = RawClient(port, rcvbuf=4096)
        c.send(command(b"GET", b"big") * (n - 1) + command(b"ECHO", b"last"))
        wait_for(lambda: int(info(port)["total_commands_processed"]) >= n + 1,
                 "the server to run the whole pipeline")
        proc.send_signal(signal.SIGTERM)
        replies = c.replies(n)
        assert replies[:-1] == [value] * (n - 1) and replies[-1] == b"last"
        assert c.read_to_eof() == b""
        c.close()
        assert proc.wait(GUARD) == 0


@cli_combos
def test_cli_idle_timeout_closes_a_silent_client(engine, pure):
    with resp_cli(engine, pure, "--idle-timeout", "1") as (proc, port):
        with RawClient(port) as silent:
            assert silent.call(b"CONFIG GET timeout\r\n") == [[b"timeout", b"1"]]
            assert silent.read_to_eof() == b""  # closed without a word, as Redis does
        # The client may see the close before the server has counted it
        # (the threaded engine closes the socket, then reports on_close).
        wait_for(lambda: info(port).get("fastnet_closed_idle") == "1", "the idle close counted")
        stop_cleanly(proc)


def test_cli_without_idle_timeout_never_closes_a_silent_client():
    # resp's default is Redis's timeout 0. One wait covers every engine.
    silence = 2.5
    with contextlib.ExitStack() as stack:
        clients = []
        for engine, pure in CLI_COMBOS:
            proc, port = stack.enter_context(resp_cli(engine, pure))
            c = stack.enter_context(RawClient(port))
            assert c.call(b"CONFIG GET timeout\r\n") == [[b"timeout", b"0"]]
            clients.append((proc, port, c))
        time.sleep(silence)  # the behaviour under test: nothing happens
        for proc, port, c in clients:
            assert c.call(b"PING\r\n") == [b"PONG"]
            assert "fastnet_closed_idle" not in info(port)
            stop_cleanly(proc)


@cli_combos
def test_cli_proto_max_bulk_len(engine, pure):
    with resp_cli(engine, pure, "--proto-max-bulk-len", "1K") as (proc, port):
        with RawClient(port) as bystander, RawClient(port) as c:
            assert bystander.call(b"CONFIG GET proto-max-bulk-len\r\n") == [
                [b"proto-max-bulk-len", b"1024"]]
            assert c.call(command(b"SET", b"k", b"x" * 1024)) == [b"OK"]
            c.send(command(b"SET", b"k", b"y" * 2048))
            assert c.read_to_eof() == b"-ERR Protocol error: invalid bulk length\r\n"
            assert bystander.call(b"STRLEN k\r\n") == [1024]
            assert info(port)["fastnet_protocol_errors"] == "1"
        stop_cleanly(proc)


@cli_combos
def test_cli_client_query_buffer_limit(engine, pure):
    with resp_cli(engine, pure, "--client-query-buffer-limit", "2K") as (proc, port):
        with RawClient(port) as bystander, RawClient(port) as c:
            assert bystander.call(b"CONFIG GET client-query-buffer-limit\r\n") == [
                [b"client-query-buffer-limit", b"2048"]]
            c.send(b"*2147483647\r\n" + b"$0\r\n\r\n" * 200)
            assert _read_until_closed(c) == b""
            assert info(port)["fastnet_closed_query_buffer_limit"] == "1"
        stop_cleanly(proc)
