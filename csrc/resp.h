/* resp.h - incremental, sans-IO parsing of RESP, the Redis protocol.
 *
 *   fn_resp_req    requests (server side), parsed exactly as redis-server 7
 *                  parses them: networking.c processMultibulkBuffer() and
 *                  processInlineBuffer(), sds.c sdssplitargs(). Redis's
 *                  quirks copied here are listed in fastnet/codec/resp/py.py,
 *                  the readable twin of this file.
 *   fn_resp_reply  replies (client side), RESP2 and RESP3.
 *
 * The boundary: cffi cannot build Python objects from C, so neither parser
 * makes values. Each scans into a flat token array that Python walks,
 * building its objects from slices of one view of the input; one parse
 * call covers every complete message buffered (a batch), not one message.
 *
 *   requests: per complete command, argc, then (start, end) of each
 *             argument. An inline argument with quotes or escapes is
 *             decoded in place (its text only ever shrinks), so it is a
 *             span of the buffer too. Empty commands emit nothing.
 *   replies:  per element, in pre-order, three int64: the type byte, then
 *               + - $ , ( =   (start, end) of the text ("!" blob errors
 *                             come as "-"; "=" spans "fmt:data")
 *               :             (value, 0)
 *               #             (1 or 0, 0)
 *               _             (0, 0): also the null bulk $-1 and array *-1
 *               * % ~ >       (number of child values, 0): 2 per map pair
 *             Attributes ("|") are parsed and checked but emit no tokens.
 *   Offsets count from the first byte of the batch, fn_resp_*_data().
 *
 * Each parser owns its input in a RAW fn_framer (framer.h: feed copies,
 * geometric growth, compaction). After fn_resp_*_parse(), the complete
 * messages are the first done_bytes bytes at fn_resp_*_data() and the first
 * done_tok tokens; both stay valid until the next parse, feed or reset,
 * which drop them first. fn_resp_*_buffered() counts the bytes after them.
 *
 * Cost: parsing is O(bytes read). The position inside the current message,
 * where a line's delimiter search resumes, the tokens of its finished parts
 * and the length still expected of a bulk are kept across feeds, so a big
 * bulk arriving in small reads is never rescanned and a message with many
 * parts is never reparsed from its start. A declared count reserves at most
 * FN_RESP_PREALLOC elements' tokens up front; the rest grows with the
 * elements that actually arrive.
 *
 * Errors are sticky (hiredis style): once parse has returned an error code
 * it returns the same code until reset, and bytes fed after it are
 * discarded. The call that finds an error still reports the messages
 * completed before it. The texts for the codes live in Python
 * (fastnet/codec/resp/_common.py), written once for both twins.
 */
#ifndef FASTNET_RESP_H
#define FASTNET_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "framer.h"
#include "status.h"

/* cdef: begin */
/* Redis's string2ll() refuses numbers written with 21 bytes or more. */
#define FN_RESP_LONG_STR_MAX 20

/* fn_resp_*_parse() results: FN_OK, or resp's block of status.h (-300 ..
 * -399); err_value holds a detail where noted. */
/* requests: Redis's protocol errors */
#define FN_E_RESP_MULTIBULK_LEN -300      /* invalid multibulk length */
#define FN_E_RESP_BULK_LEN -301           /* invalid bulk length */
#define FN_E_RESP_INLINE_TOO_BIG -302     /* too big inline request */
#define FN_E_RESP_MBULK_COUNT_TOO_BIG -303 /* too big mbulk count string */
#define FN_E_RESP_BULK_COUNT_TOO_BIG -304 /* too big bulk count string */
#define FN_E_RESP_UNBALANCED -305         /* unbalanced quotes in request */
#define FN_E_RESP_EXPECTED_DOLLAR -306    /* err_value = the byte found */
/* replies */
#define FN_E_RESP_TYPE_BYTE -307          /* err_value = the byte */
#define FN_E_RESP_INTEGER -308
#define FN_E_RESP_BULK -309              /* not a length */
#define FN_E_RESP_BULK_RANGE -310        /* over max_bulk */
#define FN_E_RESP_COUNT -311             /* not a count */
#define FN_E_RESP_COUNT_RANGE -312       /* over max_count */
#define FN_E_RESP_DOUBLE -313
#define FN_E_RESP_BOOL -314
#define FN_E_RESP_NULL -315
#define FN_E_RESP_BIG_NUMBER -316
#define FN_E_RESP_VERBATIM -317
#define FN_E_RESP_CRLF -318              /* a bulk not followed by "\r\n" */
#define FN_E_RESP_DEPTH -319             /* over max_depth */
#define FN_E_RESP_LINE -320              /* a simple string or error over max_line */
/* requests: the command in progress holds more than max_query (Redis's
 * client-query-buffer-limit) */
#define FN_E_RESP_QUERY_BUFFER -321
/* both: out of memory is status.h's FN_E_NOMEM (sticky too: a line may be
 * half decoded in place) */

/* Limits, all passed in from Python (fastnet/limits.py has the defaults).
 * Lengths and counts above INT64_MAX are treated as INT64_MAX. */
typedef struct fn_resp_limits {
    uint64_t max_bulk;        /* longest bulk string a message may declare */
    uint64_t max_count;       /* most arguments / aggregate elements (pairs) */
    uint64_t max_line;        /* requests: inline line or "*"/"$" line;
                                 replies: simple string or error line */
    uint64_t max_depth;       /* replies: most aggregates open at once */
    uint64_t max_double;      /* replies: longest double */
    uint64_t max_big_number;  /* replies: most digits of a big number */
    uint64_t max_query;       /* requests: most memory one command may hold
                                 (Redis's client-query-buffer-limit), counted
                                 as the bytes of its finished parts plus 8 per
                                 token (argc, then 2 per argument); checked as
                                 each part (count line, argument, inline
                                 line) completes, so the outcome does not
                                 depend on how the input is split. The part
                                 still arriving is bounded by max_bulk or
                                 max_line. Replies ignore it. */
} fn_resp_limits;

/* The parsers' layouts are in the cdef for the white-box tests (resume
 * points, token capacity) and the fuzz targets; fastnet's Python code reads
 * none of it and calls the accessors below. */
typedef struct fn_resp_req {
    fn_framer raw;            /* FN_FRAME_RAW: the bytes not yet dropped */
    fn_resp_limits lim;
    /* Offsets below count from raw.start. */
    size_t done_bytes;        /* bytes of the complete (or skipped) commands */
    size_t done_tok;          /* tokens of the complete commands */
    size_t pos;               /* next byte to parse */
    size_t scan;              /* where the current line's delimiter search resumes */
    int mode;                 /* 0 between commands, else inline or multibulk */
    int stuck;                /* a NUL hides the current line's delimiter */
    int64_t left;             /* multibulk: arguments still to come, 0 before "*" */
    int64_t bulk;             /* multibulk: awaited argument length, -1 before "$" */
    uint64_t *tok;            /* owned; complete commands, then the current one */
    size_t ntok;
    size_t tok_cap;
    int err;                  /* sticky FN_RESP_E_*, 0 if none */
    uint64_t err_value;
    char *out;                /* owned; fn_resp_req_marshal()'s output */
    size_t out_cap;
    size_t out_len;           /* fn_resp_req_feed_parse(): bytes at out, 0 if none */
} fn_resp_req;

typedef struct fn_resp_frame {
    uint64_t left;            /* child values still expected */
    int type;                 /* the aggregate's type byte */
} fn_resp_frame;

typedef struct fn_resp_reply {
    fn_framer raw;
    fn_resp_limits lim;
    size_t done_bytes;        /* bytes of the complete replies */
    size_t done_tok;          /* tokens of the complete replies */
    size_t pos;
    size_t scan;              /* where the current line's "\r\n" search resumes */
    int64_t body;             /* awaited bulk's length, -1 when none */
    int body_type;            /* its type byte: $ ! = */
    int64_t *tok;             /* owned; three per element */
    size_t ntok;
    size_t tok_cap;
    fn_resp_frame *stack;     /* owned; the open aggregates, innermost last */
    size_t depth;
    size_t stack_cap;
    size_t skip;              /* open attributes: tokens are not emitted inside */
    int err;
    uint64_t err_value;
} fn_resp_reply;

/* Heap-allocated parsers for Python (ffi.gc(p, lib.fn_resp_*_free)); NULL
 * when out of memory. */
fn_resp_req *fn_resp_req_new(const fn_resp_limits *lim);
void fn_resp_req_free(fn_resp_req *p);
/* Forget buffered bytes, the command in progress and any error. */
void fn_resp_req_reset(fn_resp_req *p);
/* Append a copy of data[0..len). Returns 0, or FN_E_NOMEM (framer.h). */
int fn_resp_req_feed(fn_resp_req *p, const char *data, size_t len);
/* Parse every complete command buffered: FN_OK or a sticky error. */
int fn_resp_req_parse(fn_resp_req *p);
/* The first byte of the batch parse reported (tokens count from here). */
const char *fn_resp_req_data(const fn_resp_req *p);
size_t fn_resp_req_buffered(const fn_resp_req *p);
/* The batch parse reported, as one value in CPython's marshal format (a
 * list of lists of bytes), so that marshal.loads() builds every argument
 * in C: one call per batch instead of a Python slice per argument. Sets
 * *len and returns the bytes (owned by p, valid until the next call on p),
 * or NULL when out of memory or when an argument is 2 GiB or longer (too
 * long for marshal's 32-bit sizes; the limits keep max_bulk under that). */
const char *fn_resp_req_marshal(fn_resp_req *p, size_t *len);
/* feed, parse and marshal in one call (the server's path: one crossing per
 * read). Returns parse's result, or FN_E_NOMEM if the feed or the
 * marshal failed (the batch is then lost). The batch's marshal stream is
 * out[0..out_len), out_len 0 when no command completed. */
int fn_resp_req_feed_parse(fn_resp_req *p, const char *data, size_t len);
/* feed_parse's marshal stream: *len bytes (0 when no command completed). */
const char *fn_resp_req_output(const fn_resp_req *p, size_t *len);
/* Tokens of the batch parse reported (0: no command completed). */
size_t fn_resp_req_done_tokens(const fn_resp_req *p);
/* The detail of the sticky error (the byte found, ...), 0 if none. */
uint64_t fn_resp_req_error_value(const fn_resp_req *p);

fn_resp_reply *fn_resp_reply_new(const fn_resp_limits *lim);
void fn_resp_reply_free(fn_resp_reply *r);
void fn_resp_reply_reset(fn_resp_reply *r);
int fn_resp_reply_feed(fn_resp_reply *r, const char *data, size_t len);
int fn_resp_reply_parse(fn_resp_reply *r);
const char *fn_resp_reply_data(const fn_resp_reply *r);
size_t fn_resp_reply_buffered(const fn_resp_reply *r);
/* The batch parse reported: *n tokens (three per element, see above) over
 * its first fn_resp_reply_done_bytes() bytes at fn_resp_reply_data(). */
const int64_t *fn_resp_reply_tokens(const fn_resp_reply *r, size_t *n);
size_t fn_resp_reply_done_bytes(const fn_resp_reply *r);
uint64_t fn_resp_reply_error_value(const fn_resp_reply *r);

/* Replies: an array of n bulk strings ("*<n>\r\n", then "$<len>\r\n<item>\r\n"
 * for each; the same bytes in RESP2 and RESP3), the items' bytes taken back
 * to back from data[0..data_len), item i being lens[i] bytes long. The
 * reply is at most fn_resp_bulk_array_cap(n, data_len) bytes; out must hold
 * cap bytes. Returns the reply's length, or FN_E_ARG if the lengths do not
 * add up to data_len or the reply would not fit in cap (nothing usable is
 * written then). */
size_t fn_resp_bulk_array_cap(size_t n, size_t data_len);
int64_t fn_resp_bulk_array(const char *data, size_t data_len, const uint64_t *lens, size_t n,
                           char *out, size_t cap);
/* cdef: end */

/* Tokens reserved up front for a declared count (redis and hiredis:
 * min(count, 1024)). */
#define FN_RESP_PREALLOC 1024

#endif
