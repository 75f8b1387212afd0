"""The control plane: Server, Connection, and the protocol seam (the
registry of protocol units, their specs and per-connection sessions)."""
from .options import Option
from .protocols import (PROTOCOLS, HandlerSession, ProtocolSpec, ProtocolUnit, Session,
                        check_reply, get, register, units)
from .server import Connection, Handler, Server

__all__ = ["Connection", "Handler", "HandlerSession", "Option", "PROTOCOLS", "ProtocolSpec",
           "ProtocolUnit", "Server", "Session", "check_reply", "get", "register", "units"]
