"""RespServer driven by real Redis clients nobody here wrote: redis-py (its
synchronous and asyncio clients, RESP2 and RESP3), redis-cli and
redis-benchmark. Every test runs on every engine and on both RESP codec
twins (the redis-cli and redis-benchmark ones through
``python -m fastnet.serve --protocol resp``, where FASTNET_PURE=1 in the
server's environment selects the Python twin)."""
from __future__ import annotations

import asyncio
import csv
import io
import os
import pty
import select
import shutil
import signal
import subprocess
import time

import pytest
import redis
import redis.asyncio

from fastnet import codec
from fastnet.resp import COMMANDS
from helpers import ENGINES, GUARD, cli_server, running_resp_server, wait_for

CODECS = ["c", "python"]


def _require_codec(name: str) -> None:
    if name not in codec.impls:
        pytest.skip("C extension not built (set FASTNET_REQUIRE_NATIVE=1 to make this an error)")


@pytest.fixture(params=[(e, c) for e in ENGINES for c in CODECS],
                ids=[f"{e}-{c}codec" for e in ENGINES for c in CODECS])
def resp_server(request):
    """(server, port): a RespServer on one engine and one codec twin."""
    engine, codec_name = request.param
    _require_codec(codec_name)
    with running_resp_server(engine, codec_name) as served:
        yield served


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    return request.param


@pytest.fixture
def r(resp_server, protocol):
    """A redis-py client (decoded responses) speaking RESP2 or RESP3 (HELLO 3)."""
    server, port = resp_server
    client = redis.Redis(port=port, protocol=protocol, decode_responses=True,
                         socket_timeout=GUARD, socket_connect_timeout=GUARD)
    yield client
    client.close()


# -- redis-py, synchronous --------------------------------------------------

def test_ping_echo_and_binary_safety(r, resp_server):
    server, port = resp_server
    assert r.ping() is True
    assert r.echo("hello world") == "hello world"
    raw = redis.Redis(port=port, socket_timeout=GUARD)
    value = bytes(range(256)) + b"\r\n*1\r\n$4\r\nPING\r\n"
    assert raw.set(b"\x00bin\r\nkey", value) is True
    assert raw.get(b"\x00bin\r\nkey") == value
    raw.close()


def test_set_get_and_their_options(r):
    assert r.get("missing") is None
    assert r.set("k", "v") is True
    assert r.get("k") == "v"
    assert r.set("k", "w", get=True) == "v"
    assert r.set("k", "x", nx=True) is None
    assert r.set("new", "x", xx=True) is None and r.exists("new") == 0
    assert r.set("k", "y", xx=True) is True and r.get("k") == "y"
    assert r.set("fresh", "1", nx=True) is True
    assert r.set("k", "z", xx=True, get=True) == "y"
    assert r.set("ex", "v", ex=100) is True
    assert 0 < r.ttl("ex") <= 100
    assert r.set("px", "v", px=100_000) is True
    assert 0 < r.pttl("px") <= 100_000
    assert r.ttl("k") == -1 and r.ttl("missing") == -2
    with pytest.raises(redis.ResponseError, match="invalid expire time in 'set' command"):
        r.set("k", "v", ex=0)


def test_counters(r):
    assert r.incr("n") == 1
    assert r.incr("n") == 2
    assert r.decr("n") == 1
    assert r.incrby("n", 41) == 42
    assert r.decrby("n", 50) == -8
    assert r.get("n") == "-8"
    r.set("s", "not a number")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.incr("s")
    r.set("big", str(2**63 - 1))
    with pytest.raises(redis.ResponseError, match="increment or decrement would overflow"):
        r.incr("big")


def test_mset_mget_append_strlen(r):
    assert r.mset({"a": "1", "b": "2", "c": "3"}) is True
    assert r.mget("a", "nope", "c") == ["1", None, "3"]
    assert r.append("a", "23") == 3
    assert r.append("fresh", "xyz") == 3
    assert r.strlen("a") == 3 and r.strlen("missing") == 0
    assert r.get("a") == "123"


def test_expiry_commands(r):
    r.set("k", "v")
    assert r.expire("k", 100) is True
    assert 0 < r.ttl("k") <= 100
    assert r.pexpire("k", 50_000) is True
    assert 0 < r.pttl("k") <= 50_000
    assert r.persist("k") is True
    assert r.ttl("k") == -1 and r.pttl("k") == -1
    assert r.persist("k") is False
    assert r.expire("missing", 10) is False
    assert r.expire("k", 100, nx=True) is True
    assert r.expire("k", 200, nx=True) is False


def test_keyspace_commands(r):
    r.mset({f"user:{i}": str(i) for i in range(120)})
    r.set("other", "x")
    assert r.dbsize() == 121
    assert sorted(r.keys("user:1?")) == [f"user:{i}" for i in range(10, 20)]
    assert sorted(r.scan_iter(match="user:*", count=7)) == sorted(f"user:{i}" for i in range(120))
    assert sorted(r.scan_iter()) == sorted([f"user:{i}" for i in range(120)] + ["other"])
    assert r.exists("user:1", "user:2", "nope", "user:1") == 3
    assert r.delete("user:1", "user:2", "nope") == 2
    assert r.dbsize() == 119
    assert r.flushdb() is True
    assert r.dbsize() == 0 and r.keys() == []


def test_client_name_and_id(r):
    assert r.client_getname() is None
    assert r.client_setname("fastnet-test") is True
    assert r.client_getname() == "fastnet-test"
    first = r.client_id()
    assert isinstance(first, int) and first > 0
    other = redis.Redis(port=r.connection_pool.connection_kwargs["port"], socket_timeout=GUARD)
    assert other.client_id() != first
    other.close()
    with pytest.raises(redis.ResponseError, match="Client names cannot contain spaces"):
        r.client_setname("has space")


def test_info_and_config_get(r, resp_server):
    server, port = resp_server
    r.set("k", "v")
    info = r.info()
    assert info["redis_version"] == "7.0.15"
    assert info["tcp_port"] == port
    assert info["fastnet_engine"] == server.engine.name
    assert info["fastnet_codec"] == server.codec
    assert info["connected_clients"] >= 1
    # The SET at least (and HELLO under RESP3); INFO counts after itself and,
    # as in Redis, redis-py's rejected CLIENT SETINFO calls never count.
    assert info["total_commands_processed"] >= 1
    # fastnet's own counters (Server.stats()), prefixed fastnet_:
    assert info["fastnet_open"] >= 1 and info["fastnet_messages_in"] >= 2
    assert info["fastnet_queued_clients"] == 0
    assert info["total_net_input_bytes"] > 0 and info["total_net_output_bytes"] > 0
    assert info["db0"]["keys"] == 1
    assert r.info("server")["redis_mode"] == "standalone"
    assert "connected_clients" not in r.info("server")
    assert r.config_get("maxclients") == {"maxclients": str(server.max_connections)}
    assert r.config_get("port") == {"port": str(port)}
    timeouts = r.config_get("*timeout*")
    assert timeouts == {"timeout": "0"}


def test_pipeline_of_hundreds_of_commands(r):
    with r.pipeline(transaction=False) as pipe:
        for i in range(300):
            pipe.set(f"key:{i}", i)
            pipe.incr("counter")
            pipe.get(f"key:{i}")
        results = pipe.execute()
    assert results == [x for i in range(300) for x in (True, i + 1, str(i))]
    with r.pipeline(transaction=False) as pipe:
        pipe.mget([f"key:{i}" for i in range(300)])
        pipe.dbsize()
        pipe.incr("key:0")
        pipe.echo("done")
        assert pipe.execute() == [[str(i) for i in range(300)], 301, 1, "done"]


def test_an_error_inside_a_pipeline_does_not_stop_it(r):
    r.set("s", "text")
    with r.pipeline(transaction=False) as pipe:
        pipe.set("a", "1").incr("s").incr("a").execute_command("NOSUCH", "x").get("a")
        results = pipe.execute(raise_on_error=False)
    assert results[0] is True and results[2] == 2 and results[4] == "2"
    assert isinstance(results[1], redis.ResponseError)
    assert "unknown command 'NOSUCH'" in str(results[3])


def test_transaction_pipeline_runs_all_or_reports(r):
    """r.pipeline() is MULTI/EXEC: the queued commands run together and a
    runtime error inside does not roll the others back (Redis's rule)."""
    r.set("acct", 100)
    r.set("text", "x")
    with r.pipeline() as pipe:
        pipe.decrby("acct", 30).incrby("other", 30).incr("text").get("acct")
        results = pipe.execute(raise_on_error=False)
    assert results[:2] == [70, 30] and results[3] == "70"
    assert isinstance(results[2], redis.ResponseError)


def test_failed_transfer_is_not_applied(r, resp_server):
    """The issue's regression: a transfer whose transaction fails leaves
    both accounts as they were, on a WATCH conflict (another client wrote
    the watched key) and on a command refused while queuing (EXECABORT)."""
    server, port = resp_server
    r.set("acct", 100)
    r.set("other", 0)
    other = redis.Redis(port=port, socket_timeout=GUARD)
    with r.pipeline() as pipe:
        pipe.watch("acct")
        balance = int(pipe.get("acct"))
        other.set("acct", balance - 50)  # a concurrent spender
        pipe.multi()
        pipe.decrby("acct", 30).incrby("other", 30)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert (r.get("acct"), r.get("other")) == ("50", "0")
    with r.pipeline() as pipe:
        pipe.decrby("acct", 30).incrby("other", 30).execute_command("NOSUCH")
        with pytest.raises(redis.ResponseError, match="EXECABORT|unknown command"):
            pipe.execute()
    assert (r.get("acct"), r.get("other")) == ("50", "0")
    other.close()


def test_eval_is_refused_before_anything_runs(r):
    """EVAL and EVALSHA are out of scope: the unknown-command error, and
    nothing of the script runs (r.lock() therefore fails plainly)."""
    with pytest.raises(redis.ResponseError, match="unknown command 'EVAL'"):
        r.eval("redis.call('SET', KEYS[1], 'v')", 1, "scripted")
    with pytest.raises(redis.ResponseError, match="unknown command 'EVALSHA'"):
        r.evalsha("0" * 40, 1, "scripted")
    assert r.exists("scripted") == 0


def test_hashes_lists_sets_through_redis_py(r):
    assert r.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert r.hget("h", "a") == "1" and r.hgetall("h") == {"a": "1", "b": "2"}
    assert r.hincrby("h", "a", 5) == 6 and r.hlen("h") == 2 and r.hexists("h", "b")
    assert r.hdel("h", "a", "b") == 2 and r.exists("h") == 0  # emptied: gone
    assert r.rpush("l", "a", "b", "c") == 3 and r.lpush("l", "z") == 4
    assert r.lrange("l", 0, -1) == ["z", "a", "b", "c"] and r.lindex("l", -1) == "c"
    assert r.lpop("l") == "z" and r.rpop("l", 2) == ["c", "b"] and r.llen("l") == 1
    assert r.sadd("s", "x", "y", "x") == 2 and r.smembers("s") == {"x", "y"}
    assert r.sismember("s", "x") and r.srem("s", "x") == 1 and r.scard("s") == 1
    assert [r.type(k) for k in ("h", "l", "s", "nothing")] == ["none", "list", "set", "none"]
    r.set("str", "v")
    for wrong in (lambda: r.lpush("str", "x"), lambda: r.hget("l", "f"), lambda: r.get("s"),
                  lambda: r.incr("l"), lambda: r.sadd("l", "x")):
        with pytest.raises(redis.ResponseError, match="^WRONGTYPE Operation against a key"):
            wrong()
    assert r.mget("str", "l") == ["v", None]  # MGET answers null for other types
    assert r.get("str") == "v" and r.llen("l") == 1


# -- redis-py, asyncio --------------------------------------------------------

def test_asyncio_client(resp_server, protocol):
    server, port = resp_server

    async def main() -> None:
        r = redis.asyncio.Redis(port=port, protocol=protocol, decode_responses=True,
                                socket_timeout=GUARD, socket_connect_timeout=GUARD)
        try:
            assert await r.ping() is True
            assert await r.set("k", "v", ex=100) is True
            assert await r.set("k", "w", xx=True, get=True) == "v"
            assert await r.set("k", "x", nx=True) is None
            assert await r.get("k") == "w" and await r.ttl("k") == -1
            assert await r.set("p", "v", px=100_000) is True and 0 < await r.pttl("p") <= 100_000
            assert await r.incr("n") == 1 and await r.incrby("n", 9) == 10
            assert await r.decr("n") == 9 and await r.decrby("n", 10) == -1
            assert await r.mset({"a": "1", "b": "2"}) is True
            assert await r.mget("a", "b", "c") == ["1", "2", None]
            assert await r.append("a", "0") == 2 and await r.strlen("a") == 2
            assert await r.expire("a", 100) is True and 0 < await r.ttl("a") <= 100
            assert await r.pexpire("a", 100_000) is True and 0 < await r.pttl("a") <= 100_000
            assert await r.persist("a") is True and await r.ttl("a") == -1
            assert sorted(await r.keys("*")) == ["a", "b", "k", "n", "p"]
            assert sorted([k async for k in r.scan_iter(count=2)]) == ["a", "b", "k", "n", "p"]
            assert await r.exists("a", "zz") == 1 and await r.delete("a", "zz") == 1
            assert await r.dbsize() == 4
            assert await r.echo("hi") == "hi"
            assert await r.client_setname("aio") is True
            assert await r.client_getname() == "aio"
            assert await r.client_id() > 0
            info = await r.info()
            assert info["redis_version"] == "7.0.15" and info["fastnet_engine"] == server.engine.name
            assert await r.config_get("maxclients") == {"maxclients": str(server.max_connections)}
            async with r.pipeline(transaction=False) as pipe:
                for i in range(500):
                    pipe.incr("pipelined")
                assert await pipe.execute() == list(range(1, 501))
            assert await r.flushdb() is True and await r.dbsize() == 0
        finally:
            await r.aclose()

    asyncio.run(main())


def test_asyncio_concurrent_clients_see_atomic_commands(resp_server, protocol):
    server, port = resp_server
    clients, rounds = 10, 40

    async def worker(i: int) -> None:
        r = redis.asyncio.Redis(port=port, protocol=protocol, socket_timeout=GUARD,
                                socket_connect_timeout=GUARD)
        try:
            for n in range(rounds):
                await r.incr("shared")
                await r.set(f"w{i}:{n}", n)
                async with r.pipeline(transaction=False) as pipe:
                    await pipe.incr("shared").get(f"w{i}:{n}").execute()
        finally:
            await r.aclose()

    async def main() -> None:
        await asyncio.gather(*(worker(i) for i in range(clients)))
        r = redis.asyncio.Redis(port=port, socket_timeout=GUARD)
        assert await r.get("shared") == b"%d" % (2 * clients * rounds)
        assert await r.dbsize() == 1 + clients * rounds
        await r.aclose()

    asyncio.run(main())


def test_expired_key_is_gone(r):
    r.set("gone", "v", px=1)
    wait_for(lambda: r.get("gone") is None, "the key to expire")
    wait_for(lambda: r.dbsize() == 0, "active expiry to remove it")


# -- redis-cli and redis-benchmark against `python -m fastnet.serve` ----------

#: (engine, pure): the CLI's codec twin follows the child's backend, and the
#: C engine needs the C backend.
CLI_COMBOS = [("c", False), ("python", False), ("threaded", False), ("python", True)]


@pytest.fixture(params=CLI_COMBOS,
                ids=[f"{e}-{'py' if pure else 'c'}codec" for e, pure in CLI_COMBOS])
def resp_cli(request):
    """(process, port) of `python -m fastnet.serve --protocol resp`; checks on
    exit that it drains and exits 0 on SIGTERM."""
    engine, pure = request.param
    if not pure:
        _require_codec("c")
    with cli_server("--protocol", "resp", "--engine", engine, pure=pure) as (proc, port, line):
        assert f"serving resp on 127.0.0.1:{port} (engine {engine}, " \
               f"backend {'python' if pure else 'c'})" in line
        yield proc, port
        proc.terminate()
        assert proc.wait(GUARD) == 0


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (the README's test command installs redis-tools)")
    return path


def cli(port: int, *args: str, stdin: str | bytes | None = None) -> str:
    """Run redis-cli -p port ARGS (not on a terminal: raw output); its stdout."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run([tool("redis-cli"), "-p", str(port), *args], input=data,
                            capture_output=True, timeout=GUARD)
    assert result.returncode == 0, result
    assert result.stderr == b"", result
    return result.stdout.decode()


def test_redis_cli_commands(resp_cli):
    proc, port = resp_cli
    assert cli(port, "PING") == "PONG\n"
    assert cli(port, "SET", "greeting", "hello world") == "OK\n"
    assert cli(port, "GET", "greeting") == "hello world\n"
    assert cli(port, "INCRBY", "n", "5") == "5\n"
    assert cli(port, "GET", "missing") == "\n"
    assert cli(port, "MGET", "greeting", "missing", "n") == "hello world\n\n5\n"
    assert cli(port, "NOSUCH").startswith("ERR unknown command 'NOSUCH'")
    assert cli(port, "COMMAND", "COUNT") == f"{len(COMMANDS)}\n"
    server_info = cli(port, "INFO", "server")
    assert server_info.startswith("# Server\r\n") and "redis_version:7.0.15\r\n" in server_info
    assert f"tcp_port:{port}\r\n" in server_info and "# Clients" not in server_info
    assert cli(port, "CONFIG", "GET", "maxclients") == "maxclients\n10000\n"
    assert cli(port, "--no-raw", "INCR", "n") == "(integer) 6\n"


def test_redis_cli_reads_commands_from_stdin(resp_cli):
    proc, port = resp_cli
    out = cli(port, stdin="PING\r\nSET k v\r\nGET k\r\nECHO \"two words\"\r\nDBSIZE\r\n")
    assert out == "PONG\nOK\nv\ntwo words\n1\n"


def test_redis_cli_pipe_mass_insertion(resp_cli):
    proc, port = resp_cli
    n = 10_000
    payload = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                       % (len(k), k, len(v), v)
                       for k, v in ((b"key:%d" % i, b"value:%d" % i) for i in range(n)))
    out = cli(port, "--pipe", stdin=payload)
    assert "errors: 0, replies: 10000" in out, out
    assert cli(port, "DBSIZE") == "10000\n"
    assert cli(port, "GET", "key:9999") == "value:9999\n"


BENCH_TESTS = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]


def benchmark(port: int, *extra: str) -> str:
    result = subprocess.run(
        [tool("redis-benchmark"), "-p", str(port), "-t", "ping,set,get,incr,mset",
         "-P", "16", "-n", "20000", "-c", "50", *extra],
        capture_output=True, text=True, timeout=4 * GUARD)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for word in ("ERR", "error", "Error", "WARNING"):
        assert word not in out, out
    return result.stdout


def test_redis_benchmark_quiet(resp_cli):
    proc, port = resp_cli
    out = benchmark(port, "-q")
    # -q redraws a progress line with \r; the last state of each line counts.
    rates = {}
    for line in out.replace("\r", "\n").splitlines():
        name, sep, rest = line.strip().partition(": ")
        if sep and "requests per second" in rest:
            rates[name] = float(rest.split()[0])
    assert sorted(rates) == sorted(BENCH_TESTS), out
    assert all(rate > 0 for rate in rates.values()), rates


def test_redis_benchmark_csv(resp_cli):
    proc, port = resp_cli
    rows = list(csv.DictReader(io.StringIO(benchmark(port, "--csv"))))
    assert [row["test"] for row in rows] == BENCH_TESTS
    assert all(float(row["rps"]) > 0 for row in rows), rows
    assert cli(port, "DBSIZE") != "0\n"  # SET and MSET really stored keys


def test_redis_cli_interactive_on_a_terminal(resp_cli):
    # Interactive redis-cli asks COMMAND DOCS first (for its hints); it must
    # then work as against Redis. TERM=dumb: linenoise's plain line mode.
    proc, port = resp_cli
    pid, fd = pty.fork()
    if pid == 0:  # the child: become redis-cli on the terminal
        os.environ.update(TERM="dumb", HOME="/nonexistent")
        os.execv(tool("redis-cli"), ["redis-cli", "-p", str(port)])
    seen = b""

    def expect(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + GUARD
        while text not in seen:
            assert time.monotonic() < deadline, f"no {text!r} in {seen!r}"
            if select.select([fd], [], [], 0.1)[0]:
                seen += os.read(fd, 4096)

    try:
        prompt = b"127.0.0.1:%d> " % port
        expect(prompt)
        for line, reply in [(b"SET greeting hi", b"OK"), (b"GET greeting", b'"hi"'),
                            (b"INCR n", b"(integer) 1"), (b"MGET greeting nope", b"2) (nil)"),
                            (b"NOSUCH", b"(error) ERR unknown command 'NOSUCH', with args beginning with: ")]:
            seen = b""
            os.write(fd, line + b"\n")
            expect(reply + b"\r\n")
            expect(prompt)
        os.write(fd, b"quit\n")
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
