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
