/* http1.h - HTTP/1.1 (RFC 9112) request and response heads and chunked
 * bodies, incrementally, sans-IO; the C twin of fastnet/codec/http1/py.py,
 * which is the readable reference of every rule here.
 *
 * picohttpparser's approach: the caller owns the buffer and the parsers
 * return offsets into it (no copy). A head parser keeps how many bytes
 * after `start` it already searched for the blank line, so a head that
 * arrives a byte at a time is searched once (O(bytes)); the caller passes
 * the same head bytes at `start` on every call (it may move them, offsets
 * count from start). Every limit is an argument (fastnet/limits.py holds
 * the defaults). Errors are sticky: the state keeps the first error code
 * and returns it until the caller resets the state; err_a/err_b say where
 * (offsets into the buffer) or which value, for the message Python builds.
 * No recursion; nothing is allocated: field spans go to the caller's
 * array of 4 * max_fields size_t.
 */
#ifndef FASTNET_HTTP1_H
#define FASTNET_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* cdef: begin */
#define FN_HTTP1_NEED_MORE 0
#define FN_HTTP1_DONE 1

#define FN_E_HTTP1_LINE_TOO_LONG -700      /* 414; err_a: the line's length, 0 before its CRLF */
#define FN_E_HTTP1_HEAD_TOO_LARGE -701     /* 431 */
#define FN_E_HTTP1_TOO_MANY_FIELDS -702    /* 431 */
#define FN_E_HTTP1_BAD_REQUEST_LINE -703   /* 400; err_a..err_b: the line */
#define FN_E_HTTP1_H2_PREFACE -704         /* 400 */
#define FN_E_HTTP1_VERSION -705            /* 505; err_a: offset of "M.m" */
#define FN_E_HTTP1_OBS_FOLD -706           /* 400 */
#define FN_E_HTTP1_SPACE_BEFORE_COLON -707 /* 400 */
#define FN_E_HTTP1_BAD_FIELD -708          /* 400; err_a..err_b: the line */
#define FN_E_HTTP1_BAD_STATUS_LINE -709    /* 400; err_a..err_b: the line */
#define FN_E_HTTP1_BAD_CHUNK_SIZE -710     /* 400; err_a..err_b: the line */
#define FN_E_HTTP1_CHUNK_LINE_TOO_LONG -711 /* 400 */
#define FN_E_HTTP1_NO_CHUNK_CRLF -712      /* 400 */
#define FN_E_HTTP1_BODY_TOO_LARGE -713     /* 413 */
#define FN_E_HTTP1_TRAILER_TOO_LARGE -714  /* 431; err_a: the line limit */
#define FN_E_HTTP1_TOO_MANY_TRAILERS -715  /* 431 */

typedef struct {
    size_t searched;   /* bytes after start searched without finding the end */
    int line_seen;     /* the first line's CRLF was found */
    int error;         /* 0, or the sticky FN_E_HTTP1_* */
    size_t err_a, err_b;
} fn_http1_head_state;

/* A parsed head. Requests: a/b the method, c/d the target, num the minor
 * version. Responses: a/b the reason, num the minor version, status. */
typedef struct {
    size_t start, end;
    size_t a, b, c, d;
    int minor;
    int status;
    size_t nfields;
} fn_http1_head;

/* Parse the request head at buf[start..len). FN_HTTP1_DONE with *head and
 * fields[4 * i .. 4 * i + 3] = (name start, name end, value start, value
 * end) filled; FN_HTTP1_NEED_MORE; or an FN_E_HTTP1_* (sticky). Empty
 * lines before the request line are skipped (head->start says where it
 * begins) and count toward max_request_line. */
int fn_http1_parse_request(fn_http1_head_state *st, const uint8_t *buf, size_t start,
                           size_t len, size_t max_request_line, size_t max_header_bytes,
                           size_t max_fields, fn_http1_head *head, size_t *fields);

/* The same for a response head (no request-line limit, no skipping). */
int fn_http1_parse_response(fn_http1_head_state *st, const uint8_t *buf, size_t start,
                            size_t len, size_t max_header_bytes, size_t max_fields,
                            fn_http1_head *head, size_t *fields);

/* fn_http1_chunked.state from the last chunk's line on: reading the
 * trailer section, then done (the states before are the decoder's own). */
#define FN_HTTP1_CHUNKED_TRAILERS 3
#define FN_HTTP1_CHUNKED_DONE 4

typedef struct {
    int state;
    uint64_t remaining;      /* data bytes left in the current chunk */
    uint64_t total;          /* data bytes of the body so far */
    size_t trailer_bytes;
    size_t trailer_fields;
    int error;
    size_t err_a, err_b;
} fn_http1_chunked;

/* Decode the chunked body at buf[start..len): up to max_spans data spans
 * (start, end) into spans, their count in *nspans, the offset consumed in
 * *pos. FN_HTTP1_DONE once the last chunk and the trailers are read;
 * FN_HTTP1_NEED_MORE when the input (or the span array: call again from
 * *pos) ran out; or an FN_E_HTTP1_* (sticky). A zeroed struct is a new body. */
int fn_http1_chunked_decode(fn_http1_chunked *ch, const uint8_t *buf, size_t start, size_t len,
                            uint64_t max_body, size_t max_trailer_bytes, size_t max_fields,
                            size_t max_chunk_line, size_t *spans, size_t max_spans,
                            size_t *nspans, size_t *pos);
/* The simple requests at the head of data[start..len): bodiless HTTP/1.1
 * heads with exactly one Host and no Connection, Expect, Upgrade,
 * Content-Length or Transfer-Encoding field (names compared without
 * case), which a server answers without framing checks or a state step.
 * Each is parsed from a fresh state within b's limits and written to
 * b->words as FN_HTTP1_REQ_WORDS words, (end, method start, method end,
 * target start, target end, field count), then its field spans, 4 words
 * each. It stops before the first head that is incomplete, bad (the
 * caller's own parser reports it) or not simple, or when the next record
 * might not fit in b->max_words (at least FN_HTTP1_REQ_WORDS + 4 *
 * b->max_fields; call again from b->pos). Returns the words written (>= 0)
 * or FN_E_ARG (max_words too small); b->pos is the end of the last
 * request taken (start if none). Every offset counts from data. */
#define FN_HTTP1_REQ_WORDS 6
typedef struct {
    size_t max_request_line, max_header_bytes, max_fields;  /* the limits */
    size_t *words;
    size_t max_words;
    size_t pos;  /* out */
} fn_http1_batch;
int64_t fn_http1_simple_requests(const char *data, size_t start, size_t len,
                                 fn_http1_batch *b);
/* cdef: end */

#endif
