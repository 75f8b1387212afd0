"""A gRPC client of the inventory service: grpcio's generated stub."""
from __future__ import annotations

from typing import Any, Iterator, Optional

import grpc

from .generated import grpcio_modules

pb2, pb2_grpc = grpcio_modules()


class InventoryClient:
    """The four calls; a failed call raises grpc.RpcError (code(), details())."""

    def __init__(self, port: int, gzip: bool = False) -> None:
        compression = grpc.Compression.Gzip if gzip else None
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", compression=compression)
        self.stub = pb2_grpc.InventoryStub(self.channel)

    def get_item(self, item_id: int) -> Any:
        return self.stub.GetItem(pb2.GetItemRequest(id=item_id), timeout=10)

    def list_items(self, page_size: int = 20, page_token: str = "") -> Any:
        return self.stub.ListItems(pb2.ListItemsRequest(page_size=page_size,
                                                        page_token=page_token), timeout=10)

    def create_item(self, **fields: Any) -> Any:
        return self.stub.CreateItem(pb2.CreateItemRequest(item=pb2.Item(**fields)), timeout=10)

    def watch_items(self, count: int, timeout: Optional[float] = 60) -> Iterator[Any]:
        return self.stub.WatchItems(pb2.WatchItemsRequest(count=count), timeout=timeout)

    def close(self) -> None:
        self.channel.close()
