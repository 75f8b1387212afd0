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

# --- MessagePack (fastnet.pack) ---------------------------------------------
# Read by both twins; the C side takes every one as an argument.

#: Most containers (arrays, maps) open at once, when packing and when
#: unpacking. 512 nested containers are accepted, the 513th is an error.
DEFAULT_PACK_MAX_DEPTH = 512

#: Most bytes an Unpacker buffers, and the longest input unpackb accepts
#: (msgpack-python's max_buffer_size default).
DEFAULT_PACK_MAX_BUFFER_SIZE = 100 * 1024 * 1024

#: Longest str, bin and ext payload an input may declare (bytes). A declared
#: length is checked against these as soon as its header is read, and never
#: used to preallocate anything.
DEFAULT_PACK_MAX_STR_LEN = DEFAULT_PACK_MAX_BUFFER_SIZE
DEFAULT_PACK_MAX_BIN_LEN = DEFAULT_PACK_MAX_BUFFER_SIZE
DEFAULT_PACK_MAX_EXT_LEN = DEFAULT_PACK_MAX_BUFFER_SIZE

#: Most elements an array, and pairs a map, may declare. Every element takes
#: at least one byte, so these never admit more than the buffer can hold.
DEFAULT_PACK_MAX_ARRAY_LEN = DEFAULT_PACK_MAX_BUFFER_SIZE
DEFAULT_PACK_MAX_MAP_LEN = DEFAULT_PACK_MAX_BUFFER_SIZE // 2

#: The format's own ceiling: a str, bin, ext, array or map holds at most
#: 2**32 - 1 bytes or elements (32-bit lengths).
PACK_MAX_LEN = 2**32 - 1
# --- Protocol Buffers (fastnet.proto) -------------------------------------

#: Most submessages (and groups) nested inside one top-level message on
#: decode: google.protobuf's default recursion limit (upb parses 100 levels
#: below the top-level message and refuses the 101st).
PROTO_MAX_DEPTH = 100

#: Largest serialized message the decoders accept (bytes). protobuf itself
#: stops at 2 GiB; a server should not need more than this, and the C
#: twin's marshal bridge has 32-bit sizes.
DEFAULT_PROTO_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

# --- HTTP/1.1 (fastnet.http, fastnet.codec.http1) ----------------------------
# Read by both twins. Defaults follow nginx where it has one.

#: Longest request line, its CRLF excluded (nginx's large_client_header_buffers
#: size, 8 KiB): longer is 414 URI Too Long.
DEFAULT_HTTP_MAX_REQUEST_LINE = 8 * 1024

#: Most bytes of a request's or response's head (start line, fields and the
#: blank line): more is 431 Request Header Fields Too Large.
DEFAULT_HTTP_MAX_HEADER_BYTES = 64 * 1024

#: Most header fields of one head (and of one chunked body's trailers).
DEFAULT_HTTP_MAX_HEADER_FIELDS = 100

#: Largest request body the server accepts, by Content-Length or chunked
#: (nginx's client_max_body_size, 1 MiB): more is 413 Content Too Large.
DEFAULT_HTTP_MAX_BODY = 1024 * 1024

#: Largest response body the client reads (bytes).
DEFAULT_HTTP_CLIENT_MAX_BODY = 1024 * 1024 * 1024

#: Seconds a request head may take to arrive once its first byte has
#: (nginx's client_header_timeout): later is 408, the slowloris guard.
DEFAULT_HTTP_HEADER_TIMEOUT = 60.0

#: Longest chunk-size line of a chunked body (size and extensions), CRLF excluded.
HTTP_MAX_CHUNK_LINE = 4096

#: Seconds an overloaded server asks a client to wait (503's Retry-After).
HTTP_RETRY_AFTER = 1

#: Bytes of a streamed request body (a ``stream=True`` route) the server
#: holds that the route has not read yet: above this it stops reading that
#: connection until the route has read down to half of it.
HTTP_STREAM_HIGH_WATER = 256 * 1024

#: Bytes of output queued on a connection at which a response body given as
#: an iterator stops being drawn: the server takes its next piece once the
#: queue is below this again (looked at after HTTP_BODY_WAIT seconds,
#: doubling while the peer reads nothing, up to HTTP_BODY_MAX_WAIT).
HTTP_BODY_HIGH_WATER = 256 * 1024
HTTP_BODY_WAIT = 0.001
HTTP_BODY_MAX_WAIT = 0.1
# --- The wire protocol (fastnet.wire) ---------------------------------------
# Read by both frame codec twins; the C side takes the limit as an argument.

#: Largest frame body a wire peer accepts (bytes), checked as soon as a
#: header is complete; also the most a compressed body may expand to.
DEFAULT_WIRE_MAX_BODY = 16 * 1024 * 1024

#: The header's body length field is 32 bits: no frame carries more.
WIRE_MAX_BODY = 2**32 - 1
# --- HTTP/2 (fastnet.codec.hpack, fastnet.codec.h2frame) -------------------
# Read by both twins; the C side takes every one as an argument.

#: SETTINGS_HEADER_TABLE_SIZE's initial value (RFC 9113 6.5.2): the HPACK
#: dynamic table size both ends start with.
H2_DEFAULT_HEADER_TABLE_SIZE = 4096

#: The largest dynamic table our HPACK decoder lets a peer's encoder use
#: (the SETTINGS_HEADER_TABLE_SIZE we advertise). Also the most an encoder
#: of ours keeps, whatever a peer allows (its memory is ours).
DEFAULT_H2_MAX_HEADER_TABLE_SIZE = 64 * 1024

#: Most bytes of a decoded header list, counted as RFC 9113 6.5.2 does
#: (name + value + 32 per field), checked as each field is decoded, so a
#: small block that repeats a large table entry (an HPACK bomb) is stopped
#: before it is expanded.
DEFAULT_H2_MAX_HEADER_LIST_SIZE = 64 * 1024

#: Largest HPACK integer accepted (RFC 7541 5.1 sets no ceiling; every
#: value HTTP/2 carries in one fits in 32 bits).
HPACK_MAX_INTEGER = 2**32 - 1

#: SETTINGS_MAX_FRAME_SIZE's initial value and floor, and its ceiling
#: (RFC 9113 6.5.2): the largest frame payload a peer may send us until it
#: has our SETTINGS, and the range a peer's setting must lie in.
H2_DEFAULT_MAX_FRAME_SIZE = 2**14
H2_MAX_MAX_FRAME_SIZE = 2**24 - 1

#: Largest flow-control window (RFC 9113 6.9.1) and stream id (4.1).
H2_MAX_WINDOW_SIZE = 2**31 - 1
H2_MAX_STREAM_ID = 2**31 - 1

# --- HTTP/2 connection and serving (fastnet.h2) ------------------------------

#: SETTINGS_MAX_CONCURRENT_STREAMS we advertise: streams a peer may have
#: open at once; a HEADERS past it is refused (RST_STREAM REFUSED_STREAM).
DEFAULT_H2_MAX_CONCURRENT_STREAMS = 100

#: SETTINGS_INITIAL_WINDOW_SIZE's initial value (RFC 9113 6.9.2), and the
#: connection window's (which only WINDOW_UPDATE changes).
H2_DEFAULT_WINDOW_SIZE = 65535

#: The stream window we advertise (SETTINGS_INITIAL_WINDOW_SIZE) and the
#: connection window we open at the start: what a peer may have in flight
#: to us unread, per stream and in all (the bound of request body buffering
#: per connection before the app reads).
DEFAULT_H2_STREAM_WINDOW = 65535
DEFAULT_H2_CONNECTION_WINDOW = 1024 * 1024

#: Closed streams remembered (to tell a late frame of a stream we reset,
#: ignored, from a frame after END_STREAM, a connection error).
H2_MAX_CLOSED_STREAMS = 256

#: Flood defences, each a debt that one kind of frame that makes us work
#: without progress adds 1 to and useful work (a stream served to its end,
#: a DATA frame with payload) pays back; past it the peer gets GOAWAY
#: ENHANCE_YOUR_CALM. Rapid reset (2023): streams the peer resets or we
#: refuse before they end. Control frames: SETTINGS and PING (each makes us
#: answer), PRIORITY, empty DATA without END_STREAM, WINDOW_UPDATE on
#: stream 0 ... and unknown frame types.
H2_MAX_RESET_DEBT = 200
H2_MAX_CONTROL_DEBT = 1000

#: CONTINUATION flood (2024): the most CONTINUATION frames one field block
#: may take, and the most bytes of field block fragments buffered before
#: they are decoded (the decoded list is bounded by max_header_list_size).
H2_MAX_CONTINUATIONS = 64
DEFAULT_H2_MAX_FIELD_BLOCK = 64 * 1024

#: Seconds a stream may wait with a response to send and no window from
#: the peer before it is reset (a peer that never opens its window).
DEFAULT_H2_WINDOW_TIMEOUT = 30.0

#: Most response bytes of one connection waiting for the peer's window
#: (sync apps' bodies) before the connection is ended with ENHANCE_YOUR_CALM.
DEFAULT_H2_MAX_PENDING_OUTPUT = 8 * 1024 * 1024
# gRPC (fastnet.grpc)

#: Largest gRPC message a server or client receives (bytes, after
#: decompression), grpcio's default: checked against the 5-byte prefix's
#: length before the message is buffered.
DEFAULT_GRPC_MAX_RECEIVE_MESSAGE = 4 * 1024 * 1024

#: Threads of a gRPC server's pool for blocking handlers (``thread_pool=True``;
#: handlers whose requests stream always run there).
DEFAULT_GRPC_THREAD_POOL = 16

# --- Interceptors (fastnet.interceptors) -----------------------------------

#: Most token buckets a rate-limiting interceptor keeps per limit (calls,
#: messages): past it the least recently used bucket is forgotten, so a
#: peer inventing identities, ports or method names cannot grow memory.
DEFAULT_RATE_LIMIT_MAX_KEYS = 10_000

#: Longest method name, identity or detail text a log line carries
#: (characters); longer ones are cut and marked with "...".
CALL_LOG_MAX_FIELD = 256

#: Seconds a LineWriter (``--log-calls-to FILE``) lets call lines sit in
#: its buffer at most while calls keep coming.
CALL_LOG_FLUSH_INTERVAL = 0.2

#: Most lines a LineWriter holds before it writes them out (whatever the
#: interval): with fields cut at CALL_LOG_MAX_FIELD, a bounded buffer.
CALL_LOG_MAX_BUFFERED = 256

#: Entries in each of the tables of preformatted pieces a LoggingInterceptor
#: keeps (methods, peers, identities) and of the answers an
#: AuthInterceptor remembers (public methods, allowed identity/method pairs):
#: names come from peers, so a full table starts over.
INTERCEPTOR_TABLE_ENTRIES = 1024

#: Request header names a gRPC server remembers the metadata key of (each
#: decoded and checked once, for the hooks that read every call's
#: metadata); names come from peers, so a full table starts over.
GRPC_METADATA_NAMES = 1024

#: SRANDMEMBER's negative count repeats members, so its reply grows with the
#: count alone (Redis accepts any LONG_MAX): counts below minus this are refused.
DEFAULT_RESP_MAX_RANDOM_COUNT = 10_000_000

# --- HTTP/2 at C speed (fastnet.h2) ----------------------------------------

#: Encoded header blocks a connection keeps for reuse (lists that encoded
#: as indexed fields only, e.g. a server's repeated response and trailers);
#: past it they are dropped and rebuilt.
H2_MAX_CACHED_BLOCKS = 16

# --- gRPC speed and control plane (fastnet.grpc) ----------------------------

#: A plain server-streaming handler's messages framed into one send up to
#: this many bytes (or this many seconds since the first of them).
GRPC_STREAM_COALESCE = 65536
GRPC_STREAM_COALESCE_DELAY = 0.002

#: A gRPC connection turned away (over max_connections) answers its calls
#: RESOURCE_EXHAUSTED for at most this many seconds, and at most this many
#: such connections are held at once (past it: HTTP/2's GOAWAY).
GRPC_REFUSED_LINGER = 2.0
GRPC_MAX_REFUSED_CONNECTIONS = 64

#: gRPC's keep-alive, grpcio's defaults (grpc's doc/keepalive.md). Server:
#: a client PING sooner than the interval after the previous one (with no
#: call or response between) is a strike; more than the strikes: GOAWAY
#: ENHANCE_YOUR_CALM "too_many_pings". With no call open the interval is
#: TCP keep-alive's two hours unless pings without calls are permitted.
GRPC_KEEPALIVE_PERMIT_WITHOUT_CALLS = False
GRPC_MIN_RECV_PING_INTERVAL_WITHOUT_DATA = 300.0
GRPC_MAX_PING_STRIKES = 2
GRPC_IDLE_PING_INTERVAL = 7200.0
#: Client: seconds between keep-alive PINGs (None: never, as grpcio's
#: channels) and the seconds an unanswered one may wait before the
#: connection is given up.
GRPC_CLIENT_KEEPALIVE_TIME: "float | None" = None
GRPC_CLIENT_KEEPALIVE_TIMEOUT = 20.0
#: Server: seconds of silence from a client before the server PINGs it
#: (grpcio's GRPC_ARG_KEEPALIVE_TIME_MS for servers: two hours), and the
#: seconds the PING may go unanswered before the connection is closed
#: (GRPC_ARG_KEEPALIVE_TIMEOUT_MS: 20 s).
GRPC_SERVER_KEEPALIVE_TIME = 7200.0
GRPC_SERVER_KEEPALIVE_TIMEOUT = 20.0
