"""Socket set-up shared by the Python engines (PyEngine, ThreadedEngine).

Addresses are numeric only, as in the C engine (csrc/loop.h): an engine never
blocks its loop on a DNS lookup.
"""
from __future__ import annotations

import errno
import socket
import struct
from typing import Any, Callable

from .. import codec
from ..errors import EngineError
from .base import Buffer, ConnSpec

#: accept() errors that mean "out of descriptors or memory": retrying at once
#: would spin, so the listener waits until some connection closes or
#: limits.ACCEPT_RETRY_DELAY has passed.
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

_LINGER_ABORT = struct.pack("ii", 1, 0)

#: In the order of ConnSpec.tcp_keepalive: (idle, interval, count).
_KEEPALIVE_OPTIONS = (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT)


def sockaddr(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """Resolve a numeric IPv4/IPv6 host (no DNS) to (family, address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
    except (socket.gaierror, UnicodeError, OverflowError, TypeError) as exc:
        raise EngineError(errno.EINVAL,
                          f"not a numeric IP address and port: {host!r}:{port!r} ({exc})") from None
    family, _, _, _, addr = infos[0]
    return family, addr


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A bound, listening TCP socket with SO_REUSEADDR (blocking)."""
    family, addr = sockaddr(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise EngineError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def tune(sock: socket.socket, spec: ConnSpec) -> None:
    """Options every established connection gets (accepted, or connected),
    as csrc/loop.c's tune_socket: TCP_NODELAY (replies are already batched
    by the engine) and, if the spec asks, the kernel's TCP keep-alive. Best
    effort: the peer may already have reset the connection."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if spec.tcp_keepalive is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for option, value in zip(_KEEPALIVE_OPTIONS, spec.tcp_keepalive):
                if value:  # 0 keeps the kernel's default
                    sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError:
        pass


def set_abort_linger(sock: socket.socket) -> None:
    """Make the next close() send a RST and drop unsent output."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ABORT)
    except OSError:
        pass


def peer_address(addr: tuple[Any, ...]) -> tuple[str, int]:
    """(host, port) of an IPv4 or IPv6 socket address."""
    return addr[0], addr[1]


def peer_of(sock: socket.socket, conn: int) -> tuple[str, int]:
    """The peer address of connection ``conn``'s socket, or EngineError."""
    try:
        return peer_address(sock.getpeername())
    except OSError as exc:
        raise EngineError(exc.errno, f"connection {conn}: {exc.strerror}") from None


def new_decoder(spec: ConnSpec) -> Any:
    """The codec decoder for a connection, or None for raw framing (each
    read is one message)."""
    if spec.framing == "raw":
        return None
    return codec.new_decoder(spec.framing, spec.max_size, spec.bare_lf and spec.framing == "line")


def framer(spec: ConnSpec) -> Callable[[Buffer], bytes] | None:
    """The function that frames one outgoing message, or None for raw."""
    if spec.framing == "raw":
        return None
    if spec.framing == "line":
        return codec.encode_line
    header = spec.framing
    return lambda payload: codec.encode_frame(payload, header)


def gone(conn: int) -> EngineError:
    """The error for an operation on a connection that is closed or unknown."""
    return EngineError(errno.EBADF, f"connection {conn} is closed or unknown")
