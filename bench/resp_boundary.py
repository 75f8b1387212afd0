"""RESP decoding cost per message, C twin vs Python twin (the boundary choice).

    python -m bench.resp_boundary [--commands 10000] [--repeat 30]

Requests: a pipelined buffer of N ``SET key:<i> value`` multibulk commands,
fed to a fresh RespRequestDecoder and drained with commands(): once whole
(one batch, one boundary crossing) and once in 16 KiB reads (what a server
sees). Replies: N ``$5 value`` bulk replies through RespReplyDecoder.replies().
Best of --repeat runs, in ns per message.

For reference it also times marshal.loads() of the same commands as a
marshal stream: what "C writes a form CPython's own C code turns into
objects" (DESIGN.md's second option) would cost on the Python side alone,
the lower bound that option could reach.
"""
from __future__ import annotations

import argparse
import marshal
import time
from typing import Callable

from fastnet import codec


def best_ns(run: Callable[[], object], repeat: int) -> int:
    best = None
    for _ in range(repeat):
        start = time.perf_counter_ns()
        run()
        elapsed = time.perf_counter_ns() - start
        best = elapsed if best is None else min(best, elapsed)
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    n = args.commands
    expected = [[b"SET", b"key:%d" % i, b"value"] for i in range(n)]
    wire = b"".join(codec.encode_command(*command) for command in expected)
    reads = [wire[i : i + 16384] for i in range(0, len(wire), 16384)]
    replies = codec.encode_bulk(b"value") * n

    print(f"{n} pipelined SET commands, {len(wire)} bytes; best of {args.repeat}")
    for name, twin in codec.impls.items():
        def whole(twin=twin):
            decoder = twin.RespRequestDecoder()
            decoder.feed(wire)
            return decoder.commands()

        def in_reads(twin=twin):
            decoder = twin.RespRequestDecoder()
            out = []
            for chunk in reads:
                decoder.feed(chunk)
                out += decoder.commands()
            return out

        def reply_batch(twin=twin):
            decoder = twin.RespReplyDecoder()
            decoder.feed(replies)
            return decoder.replies()

        assert whole() == in_reads() == expected and reply_batch() == [b"value"] * n
        print(f"  {name:7s} requests whole {best_ns(whole, args.repeat) / n:7.0f} ns/command"
              f"   in 16 KiB reads {best_ns(in_reads, args.repeat) / n:7.0f} ns/command"
              f"   replies {best_ns(reply_batch, args.repeat) / n:7.0f} ns/reply")
    stream = marshal.dumps(expected)
    print(f"  (reference: marshal.loads of the same commands {best_ns(lambda: marshal.loads(stream), args.repeat) / n:.0f}"
          " ns/command)")


if __name__ == "__main__":
    main()
