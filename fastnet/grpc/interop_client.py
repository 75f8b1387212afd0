"""The gRPC interoperability suite's client (grpc's
doc/interop-test-descriptions.md) on fastnet.grpc's AsyncChannel::

    python -m fastnet.grpc.interop_client --server_host H --server_port P --test_case NAME|all

Exit status 0 when every case asked for passed; each failure is printed.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Awaitable, Callable, Optional

from .client import EOF, AsyncChannel, RpcError
from .interop_server import ECHO_INITIAL, ECHO_TRAILING, T
from .protocol import StatusCode

Case = Callable[[AsyncChannel], Awaitable[None]]
CASES: dict[str, Case] = {}
GUARD = 30.0
#: The client compression cases first send an uncompressed probe that says
#: it expects compression and demand INVALID_ARGUMENT. A server that cannot
#: see a message's compressed flag (grpcio's Python API gives no way to)
#: cannot pass it: --no_compression_probe leaves the probes out.
OPTIONS = {"compression_probe": True}


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


def _stub(channel: AsyncChannel) -> Any:
    return channel.stub(T.TestService)


def _payload(size: int) -> Any:
    return T.Payload(body=bytes(size))


async def _expect_error(code: StatusCode, awaitable: Awaitable[Any]) -> RpcError:
    try:
        await awaitable
    except RpcError as e:
        assert e.code() == code, f"expected {code.name}, got {e.code().name}: {e.details()!r}"
        return e
    raise AssertionError(f"expected {code.name}, the call succeeded")


@case
async def empty_unary(channel: AsyncChannel) -> None:
    r = await _stub(channel).EmptyCall(T.Empty(), timeout=GUARD)
    assert r == T.Empty()


@case
async def large_unary(channel: AsyncChannel) -> None:
    r = await _stub(channel).UnaryCall(T.SimpleRequest(response_size=314159,
                                                       payload=_payload(271828)), timeout=GUARD)
    assert r.payload.body == bytes(314159)


@case
async def client_streaming(channel: AsyncChannel) -> None:
    async def requests() -> Any:
        for size in (27182, 8, 1828, 45904):
            yield T.StreamingInputCallRequest(payload=_payload(size))
    r = await _stub(channel).StreamingInputCall(requests(), timeout=GUARD)
    assert r.aggregated_payload_size == 74922


@case
async def server_streaming(channel: AsyncChannel) -> None:
    sizes = [31415, 9, 2653, 58979]
    call = _stub(channel).StreamingOutputCall(T.StreamingOutputCallRequest(
        response_parameters=[T.ResponseParameters(size=s) for s in sizes]), timeout=GUARD)
    got = [r.payload.body async for r in call]
    assert got == [bytes(s) for s in sizes]


@case
async def ping_pong(channel: AsyncChannel) -> None:
    call = _stub(channel).FullDuplexCall(timeout=GUARD)
    for size, body in ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904)):
        await call.write(T.StreamingOutputCallRequest(
            response_parameters=[T.ResponseParameters(size=size)], payload=_payload(body)))
        r = await call.read()
        assert r is not EOF and r.payload.body == bytes(size)
    await call.done_writing()
    assert await call.read() is EOF
    assert await call.code() == StatusCode.OK


@case
async def empty_stream(channel: AsyncChannel) -> None:
    call = _stub(channel).FullDuplexCall(timeout=GUARD)
    await call.done_writing()
    assert await call.read() is EOF
    assert await call.code() == StatusCode.OK


@case
async def custom_metadata(channel: AsyncChannel) -> None:
    md = [(ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab")]
    stub = _stub(channel)
    call = stub.UnaryCall(T.SimpleRequest(response_size=314159, payload=_payload(271828)),
                          metadata=md, timeout=GUARD)
    await call
    assert md[0] in await call.initial_metadata()
    assert md[1] in await call.trailing_metadata()
    call = stub.FullDuplexCall(metadata=md, timeout=GUARD)
    await call.write(T.StreamingOutputCallRequest(
        response_parameters=[T.ResponseParameters(size=314159)], payload=_payload(271828)))
    assert (await call.read()).payload.body == bytes(314159)
    await call.done_writing()
    assert await call.read() is EOF
    assert md[0] in await call.initial_metadata()
    assert md[1] in await call.trailing_metadata()


async def _status_case(channel: AsyncChannel, message: str) -> None:
    stub = _stub(channel)
    status = T.EchoStatus(code=2, message=message)
    e = await _expect_error(StatusCode.UNKNOWN, stub.UnaryCall(
        T.SimpleRequest(response_status=status), timeout=GUARD))
    assert e.details() == message, repr(e.details())
    call = stub.FullDuplexCall(timeout=GUARD)
    await call.write(T.StreamingOutputCallRequest(response_status=status))
    await call.done_writing()
    await _expect_error(StatusCode.UNKNOWN, call.read())
    assert await call.details() == message


@case
async def status_code_and_message(channel: AsyncChannel) -> None:
    await _status_case(channel, "test status message")


@case
async def special_status_message(channel: AsyncChannel) -> None:
    await _status_case(channel, "\t\ntest with whitespace\r\nand Unicode BMP \u263a and "
                                "non-BMP \U0001f608\t\n")


@case
async def unimplemented_method(channel: AsyncChannel) -> None:
    await _expect_error(StatusCode.UNIMPLEMENTED,
                        _stub(channel).UnimplementedCall(T.Empty(), timeout=GUARD))


@case
async def unimplemented_service(channel: AsyncChannel) -> None:
    stub = channel.stub(T.UnimplementedService)
    await _expect_error(StatusCode.UNIMPLEMENTED, stub.UnimplementedCall(T.Empty(), timeout=GUARD))


@case
async def cancel_after_begin(channel: AsyncChannel) -> None:
    call = _stub(channel).StreamingInputCall(timeout=GUARD)
    await call.start()   # the stream is open, nothing sent
    call.cancel()
    assert await call.code() == StatusCode.CANCELLED


@case
async def cancel_after_first_response(channel: AsyncChannel) -> None:
    call = _stub(channel).FullDuplexCall(timeout=GUARD)
    await call.write(T.StreamingOutputCallRequest(
        response_parameters=[T.ResponseParameters(size=31415)], payload=_payload(27182)))
    assert (await call.read()).payload.body == bytes(31415)
    call.cancel()
    assert await call.code() == StatusCode.CANCELLED


@case
async def timeout_on_sleeping_server(channel: AsyncChannel) -> None:
    call = _stub(channel).FullDuplexCall(timeout=0.001)
    try:
        await call.write(T.StreamingOutputCallRequest(payload=_payload(27182)))
    except RpcError:
        pass
    await _expect_error(StatusCode.DEADLINE_EXCEEDED, call.read())


@case
async def client_compressed_unary(channel: AsyncChannel) -> None:
    stub = _stub(channel)
    probe = T.SimpleRequest(expect_compressed=T.BoolValue(value=True), response_size=314159,
                            payload=_payload(271828))
    if OPTIONS["compression_probe"]:
        await _expect_error(StatusCode.INVALID_ARGUMENT, stub.UnaryCall(probe, timeout=GUARD))
    for expect in (True, False):
        r = await stub.UnaryCall(T.SimpleRequest(expect_compressed=T.BoolValue(value=expect),
                                                 response_size=314159, payload=_payload(271828)),
                                 compression="gzip" if expect else None, timeout=GUARD)
        assert r.payload.body == bytes(314159)


@case
async def server_compressed_unary(channel: AsyncChannel) -> None:
    stub = _stub(channel)
    for compressed in (True, False):
        call = stub.UnaryCall(T.SimpleRequest(response_compressed=T.BoolValue(value=compressed),
                                              response_size=314159, payload=_payload(271828)),
                              timeout=GUARD)
        r = await call
        assert r.payload.body == bytes(314159)
        assert call.last_response_compressed() == compressed


@case
async def client_compressed_streaming(channel: AsyncChannel) -> None:
    stub = _stub(channel)
    if OPTIONS["compression_probe"]:
        probe = stub.StreamingInputCall(timeout=GUARD)
        await probe.write(T.StreamingInputCallRequest(expect_compressed=T.BoolValue(value=True),
                                                      payload=_payload(27182)), compress=False)
        await probe.done_writing()
        await _expect_error(StatusCode.INVALID_ARGUMENT, probe)
    call = stub.StreamingInputCall(timeout=GUARD, compression="gzip")
    await call.write(T.StreamingInputCallRequest(expect_compressed=T.BoolValue(value=True),
                                                 payload=_payload(27182)))
    await call.write(T.StreamingInputCallRequest(expect_compressed=T.BoolValue(value=False),
                                                 payload=_payload(45904)), compress=False)
    await call.done_writing()
    r = await call
    assert r.aggregated_payload_size == 73086


@case
async def server_compressed_streaming(channel: AsyncChannel) -> None:
    call = _stub(channel).StreamingOutputCall(T.StreamingOutputCallRequest(response_parameters=[
        T.ResponseParameters(compressed=T.BoolValue(value=True), size=31415),
        T.ResponseParameters(compressed=T.BoolValue(value=False), size=92653)]), timeout=GUARD)
    first = await call.read()
    assert first.payload.body == bytes(31415) and call.last_response_compressed()
    second = await call.read()
    assert second.payload.body == bytes(92653) and not call.last_response_compressed()
    assert await call.read() is EOF


async def run_cases(host: str, port: int, names: list[str]) -> list[tuple[str, str]]:
    """Run the named cases, each on a fresh channel; (name, error) per failure."""
    failures = []
    for name in names:
        async with AsyncChannel(f"{host}:{port}") as channel:
            try:
                await asyncio.wait_for(CASES[name](channel), GUARD)
            except Exception as e:  # every failure is reported, the run goes on
                failures.append((name, f"{type(e).__name__}: {e}"))
    return failures


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastnet.grpc.interop_client",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--server_host", default="127.0.0.1")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--test_case", default="all", help="one of: all, " + ", ".join(CASES))
    parser.add_argument("--use_tls", default="false", choices=("false",))
    parser.add_argument("--no_compression_probe", action="store_true",
                        help="leave out the client compression cases' probes (for servers "
                        "that cannot see a message's compressed flag)")
    args = parser.parse_args(argv)
    OPTIONS["compression_probe"] = not args.no_compression_probe
    names = list(CASES) if args.test_case == "all" else [args.test_case]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown test case {unknown[0]!r}")
    failures = asyncio.run(run_cases(args.server_host, args.server_port, names))
    for name in names:
        error = dict(failures).get(name)
        print(f"{name}: {'FAILED ' + error if error else 'passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
