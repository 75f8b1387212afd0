"""HTTP/2 codec cost: HPACK blocks and frames, our twins against python-hyper's.

    python -m bench.h2codec [--blocks 2000] [--frames 5000] [--repeat 15]

HPACK: the header block of a gRPC unary request (:method, :scheme, :path,
:authority, content-type, te, grpc-timeout, user-agent, grpc-accept-encoding)
and its response (:status, content-type, grpc-encoding) encoded and decoded
--blocks times in a row by one encoder/decoder pair, as one connection does:
the first block fills the dynamic table, the rest are mostly indexed. Peers:
fastnet.codec.hpack's C twin and Python twin, and the ``hpack`` package
(python-hyper, what h2 uses). ns per header block.

Frames: the frames of one unary RPC each way (request HEADERS, DATA with
END_STREAM; response HEADERS, DATA, trailing HEADERS), plus a
WINDOW_UPDATE and a PING, repeated to --frames frames in one buffer, decoded
in 16 KiB reads by one FrameDecoder and encoded one by one. Peers: the
twins of fastnet.codec.h2frame (both encode with the same Python function:
its two rows differ by noise only) and ``hyperframe``
(Frame.parse_frame_header + parse_body, as h2 drives it). ns per frame.

Every round runs each peer once, in turn (interleaved), median of --repeat
rounds; the ratio column is peer / the reference peer named in the table.
"""
from __future__ import annotations

import argparse

import hpack as hyper_hpack
import hyperframe.frame as hf

from fastnet.codec import h2frame, hpack

from .resp_boundary import timed

REQUEST = [
    (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/helloworld.Greeter/SayHello"),
    (b":authority", b"127.0.0.1:50051"), (b"content-type", b"application/grpc"), (b"te", b"trailers"),
    (b"grpc-timeout", b"1S"), (b"user-agent", b"grpc-python/1.60.0 grpc-c/37.0.0 (linux; chttp2)"),
    (b"grpc-accept-encoding", b"identity,deflate,gzip"),
]
RESPONSE = [(b":status", b"200"), (b"content-type", b"application/grpc"), (b"grpc-encoding", b"identity")]


def hpack_runs(blocks: int) -> dict[str, dict[str, object]]:
    """name -> {"encode": fn, "decode": fn}, each doing `blocks` blocks."""
    lists = [REQUEST, RESPONSE] * (blocks // 2)
    enc = hyper_hpack.Encoder()
    wire = [enc.encode(h) for h in lists]
    runs: dict[str, dict[str, object]] = {}
    for name, twin in sorted(hpack.impls.items()):
        runs[f"fastnet {name}"] = {
            "encode": lambda twin=twin: [e.encode(h) for e in [twin.Encoder()] for h in lists],
            "decode": lambda twin=twin: [d.decode(b) for d in [twin.Decoder()] for b in wire],
        }
    runs["hpack"] = {
        "encode": lambda: [e.encode(h) for e in [hyper_hpack.Encoder()] for h in lists],
        "decode": lambda: [d.decode(b, raw=True) for d in [hyper_hpack.Decoder()] for b in wire],
    }
    return runs


def rpc_frames() -> list[hf.Frame]:
    """The frames of one unary RPC, both directions, and two control frames."""
    request_block = hyper_hpack.Encoder().encode(REQUEST)
    frames: list[hf.Frame] = []
    headers = hf.HeadersFrame(1, data=request_block)
    headers.flags.add("END_HEADERS")
    frames.append(headers)
    data = hf.DataFrame(1, data=b"\0\0\0\0\x07\n\x05world")
    data.flags.add("END_STREAM")
    frames.append(data)
    response = hf.HeadersFrame(1, data=b"\x88\xc0\xbf")
    response.flags.add("END_HEADERS")
    frames += [response, hf.DataFrame(1, data=b"\0\0\0\0\x0d\n\x0bHello world")]
    trailers = hf.HeadersFrame(1, data=b"\x40\x8a\x9a\xca\xc8\xb2\x4d\x49\x4f\x6a\x7f\x01\x30")
    trailers.flags.add("END_HEADERS")
    trailers.flags.add("END_STREAM")
    frames += [trailers, hf.WindowUpdateFrame(0, window_increment=13), hf.PingFrame(0, opaque_data=b"12345678")]
    return frames


def frame_runs(count: int) -> dict[str, dict[str, object]]:
    base = rpc_frames()
    frames = (base * (count // len(base) + 1))[:count]
    stream = b"".join(f.serialize() for f in frames)
    reads = [stream[i:i + 16384] for i in range(0, len(stream), 16384)]
    runs: dict[str, dict[str, object]] = {}
    for name, twin in sorted(h2frame.impls.items()):
        ours = [f for d in [twin.FrameDecoder()] for r in reads for f in d.receive(r)]
        runs[f"fastnet {name}"] = {
            "decode": lambda twin=twin: [f for d in [twin.FrameDecoder()] for r in reads for f in d.receive(r)],
            "encode": lambda twin=twin, ours=ours: [twin.encode(f) for f in ours],
        }

    def hyper_decode() -> list[hf.Frame]:
        out = []
        buffer = b""
        for r in reads:
            buffer += r
            view = memoryview(buffer)
            pos = 0
            while len(buffer) - pos >= 9:
                frame, length = hf.Frame.parse_frame_header(view[pos:pos + 9])
                if len(buffer) - pos - 9 < length:
                    break
                frame.parse_body(view[pos + 9:pos + 9 + length])
                out.append(frame)
                pos += 9 + length
            view.release()
            buffer = buffer[pos:]
        return out

    runs["hyperframe"] = {"decode": hyper_decode, "encode": lambda: [f.serialize() for f in frames]}
    return runs


def measure(runs: dict[str, dict[str, object]], op: str, units: int, repeat: int) -> dict[str, float]:
    """Median ns per unit of runs[*][op], the peers taking turns each round."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, ops in runs.items():
            samples[name].append(timed(ops[op]) / units)  # type: ignore[arg-type]
    return {name: sorted(s)[len(s) // 2] for name, s in samples.items()}


def table(title: str, results: dict[str, float], reference: str) -> str:
    lines = [f"{title} (ratio: / {reference})"]
    for name, ns in results.items():
        lines.append(f"  {name:<16} {ns:9.0f} ns   {ns / results[reference]:6.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    hp = hpack_runs(args.blocks)
    fr = frame_runs(args.frames)
    print(f"fastnet hpack backend: {hpack.backend}; h2frame: {h2frame.backend}")
    print(table("HPACK decode, ns per header block", measure(hp, "decode", args.blocks, args.repeat), "hpack"))
    print(table("HPACK encode, ns per header block", measure(hp, "encode", args.blocks, args.repeat), "hpack"))
    print(table("frames decode, ns per frame", measure(fr, "decode", args.frames, args.repeat), "hyperframe"))
    print(table("frames encode, ns per frame", measure(fr, "encode", args.frames, args.repeat), "hyperframe"))


if __name__ == "__main__":
    main()
