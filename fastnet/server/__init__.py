"""The control plane: Server, Connection and the built-in protocols."""
from .protocols import PROTOCOLS, ProtocolSpec
from .server import Connection, Handler, Server

__all__ = ["Connection", "Handler", "PROTOCOLS", "ProtocolSpec", "Server"]
