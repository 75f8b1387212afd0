"""The control plane: Server, Connection, and the protocol seam (the
registry of protocol units, their specs and per-connection sessions)."""
from ..engine.base import check_reply
from .options import Option
from .protocols import (PROTOCOLS, HandlerSession, ProtocolSpec, ProtocolUnit, Session, get,
                        register, units)
from .server import Connection, Handler, Server

__all__ = ["Connection", "Handler", "HandlerSession", "Option", "PROTOCOLS", "ProtocolSpec",
           "ProtocolUnit", "Server", "Session", "check_reply", "get", "register", "units"]
