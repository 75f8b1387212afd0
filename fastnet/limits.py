"""Every default limit, defined once.

The C twins take limits as arguments and define no defaults of their own,
so the C path and the pure-Python path can never disagree about them.
"""
from __future__ import annotations

#: Largest payload a length-prefixed frame may declare (bytes).
DEFAULT_MAX_FRAME = 16 * 1024 * 1024

#: Longest line content (delimiter excluded) the line framing accepts (bytes).
DEFAULT_MAX_LINE = 64 * 1024

#: A LEB128 encoding of a 64-bit value never needs more bytes than this.
VARINT_MAX_BYTES = 10

#: Stop reading from a connection while more than this many bytes are queued
#: for output to it; resume once the queue drains to the low-water mark.
DEFAULT_OUTPUT_HIGH_WATER = 4 * 1024 * 1024
DEFAULT_OUTPUT_LOW_WATER = 1024 * 1024

#: Most bytes an engine reads from one socket per readiness event.
READ_CHUNK = 256 * 1024

#: Messages queued for one connection's (coroutine) handler before the engine
#: stops reading from it.
MAX_PENDING_MESSAGES = 1024

#: Default listen(2) backlog: the kernel's queue of completed handshakes.
DEFAULT_LISTEN_BACKLOG = 1024

#: Connections a Server serves at once (Redis's maxclients default).
DEFAULT_MAX_CONNECTIONS = 10000

#: Connections over max_connections that wait, accepted but unread, for a
#: slot (the server's own backlog, distinct from the kernel's listen backlog).
DEFAULT_BACKLOG = 128

#: Seconds a connection may wait in that backlog before it is turned away.
DEFAULT_QUEUE_TIMEOUT = 10.0

#: Seconds of silence after which a peer is closed (keep-alive).
DEFAULT_IDLE_TIMEOUT = 30.0

#: Seconds a graceful shutdown waits for busy connections before forcing them.
DEFAULT_DRAIN_TIMEOUT = 30.0
