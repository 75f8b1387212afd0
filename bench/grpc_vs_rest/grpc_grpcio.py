"""The inventory service on grpcio's sync server (a thread pool), from the
code grpc_tools.protoc generates.

    python -m bench.grpc_vs_rest.grpc_grpcio PORT [--workers N] [--gzip]

Prints ``listening PORT`` once it serves; SIGTERM stops it.
"""
from __future__ import annotations

import argparse
import signal
import sys
from concurrent import futures
from typing import Any, Iterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from .generated import grpcio_modules
from .store import ServiceError, Store

pb2, pb2_grpc = grpcio_modules()


class Inventory(pb2_grpc.InventoryServicer):
    """The servicer: each method a Store call, errors as gRPC statuses."""

    def __init__(self) -> None:
        self.store = Store(pb2.Item, Timestamp, pb2.ListItemsResponse, pb2.ItemEvent)

    def GetItem(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._call(context, self.store.get, request.id)

    def ListItems(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._call(context, self.store.list, request.page_size, request.page_token)

    def CreateItem(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._call(context, self.store.create, request.item)

    def WatchItems(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        yield from self._call(context, self.store.watch, request.count)

    @staticmethod
    def _call(context: grpc.ServicerContext, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ServiceError as err:
            context.abort(getattr(grpc.StatusCode, err.code), err.message)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--workers", type=int, default=10)
    p.add_argument("--gzip", action="store_true", help="compress every response")
    args = p.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                         compression=grpc.Compression.Gzip if args.gzip else None)
    pb2_grpc.add_InventoryServicer_to_server(Inventory(), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"listening {port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(1))
    server.wait_for_termination()
    sys.exit(0)


if __name__ == "__main__":
    main()
