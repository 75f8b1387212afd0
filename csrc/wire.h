/* wire.h - the fastnet wire protocol's frame codec: incremental, sans-IO.
 *
 * Every frame is a 12-byte header and a body (see README "The wire
 * protocol" for the byte-by-byte layout):
 *
 *   0      magic 0xFB
 *   1      protocol_version (1..255; 0 is malformed)
 *   2      frame type (FN_WIRE_HELLO .. FN_WIRE_GOAWAY)
 *   3      flags: bits 0-2 compression codec, bit 3 metadata present,
 *          bits 4-7 reserved (sent as 0, ignored on receipt)
 *   4..7   request id, unsigned 32-bit big-endian
 *   8..11  body length, unsigned 32-bit big-endian
 *
 * A decoder owns a RAW fn_framer as its buffer. Bytes go in with
 * fn_wire_feed() (a copy); fn_wire_next() returns one frame whose body is a
 * view into that buffer, valid until the next feed/next/reset/free call.
 * The header is checked as soon as its 12 bytes are buffered: a bad magic,
 * version 0, an unknown frame type or a body length above max_body is an
 * error before any byte of the body arrives. A declared length is never
 * used to preallocate: the buffer grows with the bytes that arrive.
 *
 * Errors are sticky: once fn_wire_next() has returned an FN_E_WIRE_* code
 * it returns the same code until fn_wire_reset(); bytes fed after it are
 * discarded. fn_wire_err_value() gives the offending value (the magic byte,
 * the type, the declared length).
 */
#ifndef FASTNET_WIRE_H
#define FASTNET_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "pack.h"

/* cdef: begin */
#define FN_WIRE_HEADER_SIZE 12
#define FN_WIRE_MAGIC 0xFB
#define FN_WIRE_MAX_BODY 4294967295

#define FN_WIRE_HELLO 1
#define FN_WIRE_REQUEST 2
#define FN_WIRE_RESPONSE 3
#define FN_WIRE_ERROR 4
#define FN_WIRE_PING 5
#define FN_WIRE_PONG 6
#define FN_WIRE_GOAWAY 7

#define FN_WIRE_FLAG_CODEC_MASK 7
#define FN_WIRE_FLAG_METADATA 8

/* fn_wire_next() results */
#define FN_WIRE_NEED_DATA 0
#define FN_WIRE_FRAME 1
#define FN_E_WIRE_MAGIC -1100       /* err_value = the first byte */
#define FN_E_WIRE_VERSION -1101     /* err_value = the version byte (0) */
#define FN_E_WIRE_TYPE -1102        /* err_value = the type byte */
#define FN_E_WIRE_TOO_LARGE -1103   /* err_value = declared body length */
#define FN_E_WIRE_REPLY -1104       /* fn_wire_sess_replies(): Python must frame these results */

typedef struct fn_wire_frame {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint32_t request_id;
    const char *body;    /* view into the decoder's buffer */
    size_t len;
} fn_wire_frame;

typedef struct fn_wire_decoder fn_wire_decoder;

/* A decoder refusing bodies longer than max_body; NULL on ENOMEM. */
fn_wire_decoder *fn_wire_new(uint64_t max_body);
void fn_wire_free(fn_wire_decoder *d);
void fn_wire_reset(fn_wire_decoder *d);
/* Append a copy of data[0..len): FN_OK or FN_E_NOMEM. */
int fn_wire_feed(fn_wire_decoder *d, const char *data, size_t len);
/* FN_WIRE_FRAME with *out set, FN_WIRE_NEED_DATA, or a sticky FN_E_WIRE_*. */
int fn_wire_next(fn_wire_decoder *d, fn_wire_frame *out);
size_t fn_wire_buffered(const fn_wire_decoder *d);
uint64_t fn_wire_err_value(const fn_wire_decoder *d);

/* Write a header to out (FN_WIRE_HEADER_SIZE bytes): returns
 * FN_WIRE_HEADER_SIZE, FN_E_WIRE_TOO_LARGE when len > FN_WIRE_MAX_BODY,
 * FN_E_WIRE_VERSION for version 0 or FN_E_WIRE_TYPE for an unknown type. */
int fn_wire_header(uint8_t version, uint8_t type, uint8_t flags,
                   uint32_t request_id, uint64_t len, uint8_t *out);
/* The frame fn_wire_next() returned last stays buffered: the next call
 * returns it again. */
void fn_wire_unread(fn_wire_decoder *d);

/* A server's side of a connection, one C call per read each way.
 *
 * fn_wire_sess_read() feeds a read, then takes the frames at the head of
 * the buffer while they are plain REQUESTs (no codec, no metadata flag) of
 * the session's version whose bodies are one MessagePack object each
 * (checked body by body with fn_pack_unpackb), and transcodes all their
 * bodies, as one array, to a single marshal stream of a list (a single
 * body's own stream under a list header): one marshal.loads builds every
 * request of the read. PONG and GOAWAY frames
 * among them are dropped (nothing answers them). It stops at the first
 * other frame, which stays buffered for fn_wire_next(), and keeps the
 * requests' ids for the replies (with append, after the last read's).
 * Version 0 batches nothing.
 *
 * It returns (length << 3) | FN_WIRE_SESS_INTO | why, or FN_E_NOMEM:
 * length is the marshal stream's (0: no request), copied to w->into when
 * it fits (FN_WIRE_SESS_INTO set), else at w->out; why is
 * FN_WIRE_SESS_NEED_DATA, FN_WIRE_SESS_CALLER (a frame or a sticky error
 * waits for fn_wire_next: HELLO, PING, another version, flags, a body
 * MessagePack refuses) or FN_WIRE_SESS_FALLBACK (a plain REQUEST whose
 * valid body marshal cannot carry: an ext, a str/bin over 2 GiB).
 *
 * fn_wire_sess_replies() takes one marshal stream of a list of results,
 * one per request id kept, transcodes it with fn_pack_encode (w->max_depth
 * for each result) and writes a RESPONSE frame (the session's version,
 * flags 0, the request's id) per result. It returns (length << 1) |
 * FN_WIRE_SESS_INTO_REPLY (the frames copied to w->into, else at w->out),
 * FN_E_NOMEM, or FN_E_WIRE_REPLY when Python must frame them itself: the
 * count is not the ids', pack refused a result, or a body reaches
 * threshold (the caller compresses it). */
#define FN_WIRE_SESS_NEED_DATA 0
#define FN_WIRE_SESS_CALLER 1
#define FN_WIRE_SESS_FALLBACK 2
#define FN_WIRE_SESS_INTO 4
#define FN_WIRE_SESS_INTO_REPLY 1

/* One thread's tools for the sessions it serves (cffi releases the GIL
 * during calls, so threads never share one). */
typedef struct fn_wire_work {
    fn_pack_dec *pd;          /* owned */
    fn_pack_enc *enc;         /* owned */
    fn_pack_limits lim;       /* each request body's */
    int flags;                /* fn_pack_unpackb's */
    uint64_t max_buffer;      /* the longest body fn_pack_unpackb is given */
    uint64_t max_depth;       /* each result's, for fn_pack_encode */
    char *into;               /* not owned: the caller's buffer for results */
    size_t into_cap;
    const char *out;          /* a result that did not fit in into */
} fn_wire_work;

fn_wire_work *fn_wire_work_new(const fn_pack_limits *lim, int flags, uint64_t max_buffer,
                               uint64_t max_depth, char *into, size_t into_cap);
void fn_wire_work_free(fn_wire_work *w);

typedef struct fn_wire_sess fn_wire_sess;

fn_wire_sess *fn_wire_sess_new(uint64_t max_body);
void fn_wire_sess_free(fn_wire_sess *s);
/* The session's frame decoder (owned by the session). */
fn_wire_decoder *fn_wire_sess_decoder(fn_wire_sess *s);
void fn_wire_sess_set_version(fn_wire_sess *s, uint8_t version);
int64_t fn_wire_sess_read(fn_wire_sess *s, fn_wire_work *w, const char *data, size_t len,
                          int append);
/* Keep one more request id (a request the caller decoded itself): FN_OK
 * or FN_E_NOMEM. */
int fn_wire_sess_push_id(fn_wire_sess *s, uint32_t request_id);
/* The request ids kept, *n of them. */
const uint32_t *fn_wire_sess_ids(const fn_wire_sess *s, size_t *n);
int64_t fn_wire_sess_replies(fn_wire_sess *s, fn_wire_work *w, const char *m, size_t len,
                             uint64_t threshold);

/* The engine frames wire itself (csrc/loop.c; declared here, beside the
 * types they take). A RAW connection in wire mode is not handed its reads:
 * the loop takes the frames at the head of its input while they are
 *   - plain REQUESTs (no codec, no metadata flag) of the connection's
 *     version whose bodies fn_pack_unpackb takes (the session's checks):
 *     kept for the poll's batch, every wire connection's requests in one;
 *   - PINGs, answered in the loop with a PONG (the connection's version,
 *     the PING's id and body), unless a request of that connection came
 *     before it in this round;
 *   - PONGs and GOAWAYs (of any version), dropped;
 * each frame's header judged as fn_wire_next judges it (max_body, the
 * connection's). The requests of a round are reported as one FN_EV_WIRE
 * event per connection (value: how many) and their bodies, as one list,
 * in one marshal stream: fn_batch.wire, (length << 3) | FN_WIRE_SESS_INTO
 * (the stream in the work's into buffer, else at its out) or 0.
 * A frame Python must see (HELLO, another version, flags, a bad header, a
 * body pack refuses) ends it: when the round already took requests of the
 * connection, it waits there for the next round; else the connection
 * leaves wire mode and its input, from that frame on, is an FN_EV_MESSAGE
 * as on any RAW connection, whole frames and the part of one alike.
 *
 * fn_loop_set_wire: the work structure (pack decoder and encoder, limits,
 * buffers) the loop's wire connections use; not owned, it must live while
 * the loop uses it; NULL takes every connection out of wire mode. 0 or
 * FN_E_NOMEM.
 * fn_loop_wire: on = 1 puts conn in wire mode with the negotiated version
 * (1..255), its max_body and the size from which a reply body must be
 * compressed (threshold; UINT64_MAX: none); or, with version 0 and the
 * server's fn_wire_hello, before any frame: the loop negotiates. Its first
 * frame decides, as the session decides: a well-formed HELLO (a map whose
 * str keys are unique, "versions" an array of unsigned ints sharing one
 * with 1..max_version, "codecs", if there, an array of str; other keys
 * ignored) is answered with the reply the table holds for the highest
 * common version and the server's codecs the client offered; a version-1
 * REQUEST is v1; a PING is answered as v1; anything else is Python's.
 * 0, FN_E_LOOP_NO_CONN, FN_E_ARG (not RAW, no work set, version 0 without
 * a table, or input buffered: the caller holds nothing only when the loop
 * holds nothing). on = 0 ends it; input the loop holds is delivered as an
 * FN_EV_MESSAGE next round.
 * fn_loop_wire_state: the version the connection has (0: none yet) and the
 * codecs negotiated (bit i: the table's codec i), for the session the loop
 * hands it back to. 0 or FN_E_LOOP_NO_CONN.
 * fn_loop_wire_replies: the last poll's requests answered, one marshal
 * stream of a list of results in their order: each framed as a RESPONSE
 * and queued on its connection (one dropped when its connection is gone).
 * 0, FN_E_NOMEM, or FN_E_WIRE_REPLY (nothing queued: the count is not the
 * requests', pack refused a result, or a body reaches its connection's
 * threshold) and the caller answers them.
 * fn_loop_wire_ids: the request ids of the last poll's requests, *n. */
#define FN_WIRE_MAX_CODECS 6
typedef struct fn_wire_hello {
    uint8_t max_version;        /* the server speaks 1..max_version (at most 63) */
    uint8_t ncodecs;            /* its codecs, at most FN_WIRE_MAX_CODECS */
    const char *names;          /* their names, each NUL-ended, back to back, preferred first */
    const uint64_t *thresholds; /* each codec's compression threshold */
    const char *replies;        /* HELLO reply frames, back to back: reply (v - 1) << ncodecs | mask */
    const uint64_t *ends;       /* (max_version << ncodecs) of them: each reply's end */
} fn_wire_hello;

int fn_loop_set_wire(fn_loop *loop, fn_wire_work *w);
int fn_loop_wire(fn_loop *loop, uint64_t conn, int on, uint8_t version, uint64_t max_body,
                 uint64_t threshold, const fn_wire_hello *hello);
int fn_loop_wire_state(const fn_loop *loop, uint64_t conn, uint8_t *version, uint8_t *mask);
int64_t fn_loop_wire_replies(fn_loop *loop, const char *m, size_t len);
const uint32_t *fn_loop_wire_ids(const fn_loop *loop, size_t *n);
/* cdef: end */

/* The loop's batch of one poll's wire requests (csrc/loop.c uses it). */
typedef struct fn_wire_req {
    uint64_t conn;           /* whose request */
    uint64_t threshold;      /* its connection's compression threshold */
    size_t end;              /* its reply frame's end, after fn_wire_poll_frame */
    uint8_t version;
} fn_wire_req;

typedef struct fn_wire_poll {
    char *scratch;           /* owned: BATCH_HEAD + the bodies; then the reply frames */
    size_t used, scratch_cap;
    fn_wire_req *reqs;       /* owned */
    size_t reqs_cap;
    uint32_t *ids;           /* owned: the request ids, n of them */
    size_t n, ids_cap;
    int last_ok;             /* the work's decoder holds the last body's stream */
} fn_wire_poll;

fn_wire_poll *fn_wire_poll_new(void);
void fn_wire_poll_free(fn_wire_poll *p);
/* Start of a round: no requests. */
void fn_wire_poll_reset(fn_wire_poll *p);
/* The frame at buf[0..len) judged as fn_wire_next judges it (max_body):
 * FN_WIRE_FRAME (*f set; its size is FN_WIRE_HEADER_SIZE + f->len),
 * FN_WIRE_NEED_DATA, or the FN_E_WIRE_* fn_wire_next would return. */
int fn_wire_scan(const char *buf, size_t len, uint64_t max_body, fn_wire_frame *f);
/* Take a plain REQUEST of conn (threshold: its connection's): 0,
 * FN_WIRE_SESS_CALLER (Python must see it: a body pack refuses or that
 * only Python decodes, one past max_buffer, a batch at max_array) or
 * FN_E_NOMEM. */
int fn_wire_poll_add(fn_wire_poll *p, fn_wire_work *w, uint64_t conn, const fn_wire_frame *f,
                     uint64_t threshold);
/* A wire connection as the loop keeps it (fn_loop_wire's arguments). */
typedef struct fn_wire_conn {
    uint8_t version;         /* negotiated; 0: the first frame decides (hello) */
    uint8_t mask;            /* the codecs negotiated, bits over hello's */
    uint64_t max_body;
    uint64_t threshold;      /* a reply body this long must be compressed */
    const fn_wire_hello *hello;  /* not owned */
} fn_wire_conn;
/* What the loop does with the frame at buf[0..len), the head of c's input,
 * `taken` requests of c being in this round's batch already (wire.h's
 * rules above): FN_WIRE_TAKE_REQUEST (taken: the frame is consumed),
 * FN_WIRE_TAKE_PING (answer it with a PONG, the body f's), _DROP (consumed,
 * nothing to do), _HELLO (negotiated: c's version, mask and threshold set;
 * answer with fn_wire_hello_reply), _NEED_DATA, _WAIT (leave it, and the
 * rest, for the next round), _CALLER (Python's from here on), or
 * FN_E_NOMEM. f is the frame (its size FN_WIRE_HEADER_SIZE + f->len) for
 * the first four. */
#define FN_WIRE_TAKE_NEED_DATA 0
#define FN_WIRE_TAKE_REQUEST 1
#define FN_WIRE_TAKE_PING 2
#define FN_WIRE_TAKE_DROP 3
#define FN_WIRE_TAKE_WAIT 4
#define FN_WIRE_TAKE_CALLER 5
#define FN_WIRE_TAKE_HELLO 6
/* The HELLO reply for c's negotiated version and codecs: its bytes, *len. */
const char *fn_wire_hello_reply(const fn_wire_conn *c, size_t *len);
int fn_wire_poll_take(fn_wire_poll *p, fn_wire_work *w, uint64_t conn, fn_wire_conn *c,
                      const char *buf, size_t len, int taken, fn_wire_frame *f);
/* The marshal stream of the requests' bodies (fn_batch.wire's value):
 * (length << 3) | FN_WIRE_SESS_INTO, bits 0 and 1 clear (loop.h's
 * FN_BATCH_WIRE_ONLY is bit 0), 0 with no request, or FN_E_NOMEM. */
int64_t fn_wire_poll_finish(fn_wire_poll *p, fn_wire_work *w);
/* The reply frames of a marshal stream of results, at w->out, each
 * request's end in its fn_wire_req: as fn_wire_sess_replies returns. */
int64_t fn_wire_poll_frame(fn_wire_poll *p, fn_wire_work *w, const char *m, size_t len);

#endif
