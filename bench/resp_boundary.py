"""RESP decoding cost per message: C twin, Python twin and hiredis (the boundary choice).

    python -m bench.resp_boundary [--commands 10000] [--repeat 15]

Requests: three pipelined buffers of N multibulk commands, ``SET key:<i>
value``, ``GET key:<i>`` and a mix (SET, GET, INCR, MGET of four keys,
PING), each fed to a fresh RespRequestDecoder and drained with commands()
once whole (one batch, one boundary crossing) and once in 16 KiB reads
(what a server sees). The same buffer goes through ``hiredis.Reader``
(hiredis parses RESP arrays of bulk strings, so it reads a request buffer
as "replies"; one gets() call per command, as redis-py drives it), timed
in the same run, the parsers taking turns: the ratio column is twin /
hiredis. The reads use feed_commands(), one call per read, as RespServer
does. Replies: N ``$5\r\nvalue`` bulk replies through
RespReplyDecoder.replies(). Median of --repeat runs (cyclic GC off while
timing, as timeit), in ns per message.

The C twin's cost is split into its parts (the boundary, see
fastnet.codec.resp.c): the C scan alone (fn_resp_req_parse over the whole
buffer), C writing the batch as a marshal stream (fn_resp_req_marshal),
and marshal.loads building the Python lists and bytes.
"""
from __future__ import annotations

import argparse
import gc
import marshal
import statistics
import time
from typing import Callable, Optional

from fastnet import codec


def timed(run: Callable[[], object]) -> float:
    """One run's wall time in ns, with the cyclic GC off (as timeit does):
    a collection triggered by earlier garbage would land on whichever
    parser happens to run then. The result is dropped outside the timing."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        result = run()
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    del result
    return elapsed


def median_ns(run: Callable[[], object], repeat: int, before: Optional[Callable[[], object]] = None) -> float:
    """Median wall time of run() over repeat runs; before() (untimed) first."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        times.append(timed(run))
    return statistics.median(times)


def interleaved_medians(runs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median wall time of each run, the runs taking turns (one of each per
    round), so a burst of load from elsewhere slows them alike and the
    ratios between them stay meaningful on a shared machine."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            times[name].append(timed(run))
    return {name: statistics.median(values) for name, values in times.items()}


def buffers(n: int) -> dict[str, list[list[bytes]]]:
    """The pipelined workloads: name -> its commands."""
    mixed: list[list[bytes]] = []
    for i in range(n):
        key = b"key:%d" % i
        kind = i % 5
        if kind == 0:
            mixed.append([b"SET", key, b"value"])
        elif kind == 1:
            mixed.append([b"GET", key])
        elif kind == 2:
            mixed.append([b"INCR", b"counter:%d" % (i % 100)])
        elif kind == 3:
            mixed.append([b"MGET", key, b"key:1", b"key:2", b"key:3"])
        else:
            mixed.append([b"PING"])
    return {
        "SET": [[b"SET", b"key:%d" % i, b"value"] for i in range(n)],
        "GET": [[b"GET", b"key:%d" % i] for i in range(n)],
        "mixed": mixed,
    }


def hiredis_reader() -> Optional[Callable[[bytes], list[object]]]:
    try:
        import hiredis
    except ImportError:
        return None

    def parse(wire: bytes) -> list[object]:
        reader = hiredis.Reader()
        reader.feed(wire)
        out = []
        gets = reader.gets
        while (command := gets()) is not False:
            out.append(command)
        return out

    return parse


def c_split(wire: bytes, n: int, repeat: int) -> Optional[tuple[float, float, float]]:
    """The C twin's cost in parts, ns per command: C scan, C marshal, loads."""
    if "c" not in codec.resp.impls:
        return None
    from fastnet.codec.resp import c as c_resp

    lib, ffi = c_resp.lib, c_resp.ffi
    state: dict[str, object] = {}
    size = ffi.new("size_t *")

    def fed() -> None:
        decoder = c_resp.RespRequestDecoder()
        decoder.feed(wire)
        state["decoder"] = decoder

    def scan() -> None:
        assert lib.fn_resp_req_parse(state["decoder"]._p) == 0  # type: ignore[attr-defined]

    scan_ns = median_ns(scan, repeat, before=fed)
    fed()
    scan()
    p = state["decoder"]._p  # type: ignore[attr-defined]
    marshal_ns = median_ns(lambda: lib.fn_resp_req_marshal(p, size), repeat)
    stream = ffi.buffer(lib.fn_resp_req_marshal(p, size), size[0])
    loads_ns = median_ns(lambda: marshal.loads(stream), repeat)
    return scan_ns / n, marshal_ns / n, loads_ns / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    n, repeat = args.commands, args.repeat
    parse_hiredis = hiredis_reader()
    print(f"{n} pipelined commands per buffer; median of {repeat} runs; ns per command"
          + ("" if parse_hiredis else " (hiredis not installed: pip install -e '.[bench]')"))

    for label, expected in buffers(n).items():
        wire = b"".join(codec.encode_command(*command) for command in expected)
        reads = [wire[i : i + 16384] for i in range(0, len(wire), 16384)]
        print(f"{label}: {len(wire)} bytes")
        runs: dict[str, Callable[[], object]] = {}
        if parse_hiredis is not None:
            runs["hiredis"] = lambda: parse_hiredis(wire)
        for name, twin in codec.resp.impls.items():
            def whole(twin=twin):
                decoder = twin.RespRequestDecoder()
                decoder.feed(wire)
                return decoder.commands()

            def in_reads(twin=twin):
                decoder = twin.RespRequestDecoder()
                out = []
                for chunk in reads:
                    out += decoder.feed_commands(chunk)
                return out

            runs[name], runs[name + " reads"] = whole, in_reads
        for run in runs.values():
            assert run() == expected
        ns = interleaved_medians(runs, repeat)
        reference = ns.get("hiredis")
        if reference is not None:
            print(f"  {'hiredis':7s} whole {reference / n:7.0f}   (hiredis.Reader, one gets() per command)")
        for name in codec.resp.impls:
            ratio = f"   {ns[name] / reference:5.2f}x hiredis" if reference else ""
            print(f"  {name:7s} whole {ns[name] / n:7.0f}{ratio}"
                  f"   in 16 KiB reads {ns[name + ' reads'] / n:7.0f}")
        split = c_split(wire, n, repeat)
        if split is not None:
            scan_ns, marshal_ns, loads_ns = split
            print(f"  c split: C scan {scan_ns:5.0f} + C marshal {marshal_ns:5.0f}"
                  f" + marshal.loads {loads_ns:5.0f} = {sum(split):5.0f}")

    replies = codec.encode_bulk(b"value") * n
    print(f"replies: {n} bulk replies")
    for name, twin in codec.resp.impls.items():
        def reply_batch(twin=twin):
            decoder = twin.RespReplyDecoder()
            decoder.feed(replies)
            return decoder.replies()

        assert reply_batch() == [b"value"] * n
        print(f"  {name:7s} {median_ns(reply_batch, repeat) / n:7.0f} ns/reply")


if __name__ == "__main__":
    main()
