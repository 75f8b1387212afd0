"""The built-in protocols: how each frames its bytes and answers bad input.

A protocol here is deliberately small: a framing for the engine, whether the
engine may echo on its own, and the protocol's own error form (if it has
one) for a peer that broke the framing. Richer protocols (RESP, HTTP) build
their own servers on the same engines.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from ..engine.base import ConnSpec
from ..errors import ProtocolError


def _no_error_form(error: ProtocolError) -> Optional[bytes]:
    return None


def _line_error(error: ProtocolError) -> Optional[bytes]:
    return b"-ERR Protocol error: " + str(error).encode() + b"\r\n"


#: Why a connection was turned away, as the line protocol says it.
_LINE_REJECTIONS = {
    "busy": b"-ERR server busy\r\n",
    "queue_timeout": b"-ERR server busy\r\n",
    "shutdown": b"-ERR server shutting down\r\n",
}


def _no_rejection_form(why: str) -> Optional[bytes]:
    return None


def _line_rejection(why: str) -> Optional[bytes]:
    return _LINE_REJECTIONS[why]


@dataclass(frozen=True)
class ProtocolSpec:
    """A built-in protocol.

    name:        what --protocol calls it.
    framing:     the engine framing ("raw", "be32", "varint", "line").
    error_reply: bytes to send a peer that broke the framing before closing
                 its connection, or None where the protocol has no error form
                 (raw echo and length-prefixed frames: the peer sees the
                 connection close after every complete message before the
                 bad one has been answered).
    rejection:   bytes to send a connection turned away ("busy": over the
                 connection limit and the backlog; "queue_timeout": waited
                 in the backlog too long; "shutdown": the server is
                 draining), or None: the peer sees its connection accepted
                 and then closed without a byte (echo, frame).
    probe:       a keep-alive probe message (framed like any message) sent
                 to a quiet peer after the keep-alive interval, or None
                 where the protocol has none; any byte from the peer answers
                 it. probe_reply is the message a peer answers with; the
                 server drops it instead of handing it to the handler.
    """

    name: str
    framing: str
    error_reply: Callable[[ProtocolError], Optional[bytes]] = _no_error_form
    rejection: Callable[[str], Optional[bytes]] = _no_rejection_form
    probe: Optional[bytes] = None
    probe_reply: Optional[bytes] = None

    def conn_spec(self, *, max_frame: int, max_line: int, bare_lf: bool,
                  frame_header: str, echo: bool,
                  tcp_keepalive: Optional[tuple[int, int, int]] = None) -> ConnSpec:
        """The engine ConnSpec for this protocol with the given limits."""
        framing = self.framing
        if framing == "be32" and frame_header == "varint":
            framing = "varint"
        elif frame_header not in ("be32", "varint"):
            raise ValueError(f"frame_header must be 'be32' or 'varint', not {frame_header!r}")
        max_size = max_line if framing == "line" else max_frame
        return ConnSpec(framing=framing, max_size=max_size, bare_lf=bare_lf, echo=echo,
                        tcp_keepalive=tcp_keepalive)


PROTOCOLS: dict[str, ProtocolSpec] = {
    # Raw bytes: every read is one "message"; the echo handler sends it back.
    "echo": ProtocolSpec("echo", "raw"),
    # Length-prefixed messages (4-byte big-endian header, or varint).
    "frame": ProtocolSpec("frame", "be32"),
    # "\r\n"-terminated lines; errors in the Redis-like "-ERR ..." form.
    "line": ProtocolSpec("line", "line", _line_error, _line_rejection),
}
