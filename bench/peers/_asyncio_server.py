"""What the asyncio peers share: serve a Protocol class or a streams handler
on 127.0.0.1, print "listening PORT", stop on SIGTERM or SIGINT, and the
command line ``PORT [--api protocol|streams] [--uvloop]``."""
from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Awaitable, Callable

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(port: int, api: str, protocol: Callable[[], asyncio.Protocol],
                stream_handler: StreamHandler) -> None:
    """Listen with the chosen API until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    if api == "protocol":
        server = await loop.create_server(protocol, "127.0.0.1", port, backlog=1024)
    else:
        server = await asyncio.start_server(stream_handler, "127.0.0.1", port, backlog=1024)
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    await stop
    server.close()


def main(doc: str, protocol: Callable[[], asyncio.Protocol], stream_handler: StreamHandler) -> None:
    """Parse the command line and serve."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("--api", choices=("protocol", "streams"), default="protocol")
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    asyncio.run(serve(args.port, args.api, protocol, stream_handler))
