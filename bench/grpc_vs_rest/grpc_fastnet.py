"""The inventory service on fastnet's gRPC server: grpc_grpcio's servicer
and grpcio's generated registration, unchanged (the drop-in: only the
server object differs).

    python -m bench.grpc_vs_rest.grpc_fastnet PORT [--gzip]

Prints ``listening PORT`` once it serves; SIGTERM drains and stops it.
"""
from __future__ import annotations

import argparse

from fastnet import grpc as fastnet_grpc
from fastnet import native

from .grpc_grpcio import Inventory, pb2_grpc


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--gzip", action="store_true", help="compress every response")
    args = p.parse_args()
    # the C engine, or the Python one where the C extension is not in use
    server = fastnet_grpc.Server(compression="gzip" if args.gzip else None,
                                 engine="c" if native.backend == "c" else "python")
    pb2_grpc.add_InventoryServicer_to_server(Inventory(), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    print(f"listening {port}", flush=True)
    server.run()


if __name__ == "__main__":
    main()
