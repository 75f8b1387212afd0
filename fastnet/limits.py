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

# --- RESP (the Redis protocol) ----------------------------------------------
# Request defaults are redis-server 7's own, so a fastnet server accepts and
# refuses exactly what Redis does.

#: Longest bulk string a RESP request or reply may declare (Redis's
#: proto-max-bulk-len).
DEFAULT_RESP_MAX_BULK_LEN = 512 * 1024 * 1024

#: Most arguments a multibulk request, or elements an aggregate reply, may
#: declare (Redis: INT_MAX). A declared count is never used to preallocate
#: more than a few slots; storage grows with the elements that arrive.
DEFAULT_RESP_MAX_MULTIBULK_LEN = 2**31 - 1

#: Longest inline request line, or "*<count>" / "$<length>" line of a
#: multibulk request, before its delimiter (Redis's PROTO_INLINE_MAX_SIZE).
DEFAULT_RESP_MAX_INLINE_LEN = 64 * 1024

#: Longest reply line (simple string, error, number) before its "\r\n": as
#: long as a bulk string may be, since a server may send either.
DEFAULT_RESP_MAX_LINE_LEN = DEFAULT_RESP_MAX_BULK_LEN

#: Most aggregate replies (arrays, maps, sets, pushes, attributes) open at
#: once. Redis itself nests a handful deep; scripts can return deeper tables.
DEFAULT_RESP_MAX_DEPTH = 128

#: Longest RESP3 double (",<value>"): hiredis refuses longer ones.
RESP_MAX_DOUBLE_LEN = 325

#: Most digits of a RESP3 big number ("(<digits>"): CPython's default
#: int_max_str_digits, so converting one to an int can never be refused.
RESP_MAX_BIG_NUMBER_DIGITS = 4300

#: Most memory one unfinished RESP request may hold: the bytes of its
#: finished parts plus 8 per token the C twin keeps (argc, then 2 per
#: argument), checked as each part completes (Redis's
#: client-query-buffer-limit, 1 GiB as there). Past it the connection is
#: closed without a reply, as Redis closes it.
DEFAULT_CLIENT_QUERY_BUFFER_LIMIT = 1024 * 1024 * 1024

#: Seconds a connection with output pending may go without write progress
#: (its peer stopped reading, or a graceful close cannot finish) before it is
#: aborted and counted as closed_send_timeout (nginx's send_timeout, 60 s).
DEFAULT_SEND_TIMEOUT = 60.0

#: Seconds after which a listener starved of descriptors or memory (EMFILE,
#: ENFILE, ENOBUFS, ENOMEM on accept) is tried again, if no connection
#: closed before (nginx waits 500 ms too).
ACCEPT_RETRY_DELAY = 0.5

#: The longest one engine sleep, in seconds: epoll and poll take int
#: milliseconds (about 24.8 days). A longer timeout is waited out in steps.
MAX_POLL_WAIT = (2**31 - 1) / 1000
