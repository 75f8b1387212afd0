/* framer.h - incremental, sans-IO message framing over an owned buffer.
 *
 * One fn_framer turns a byte stream into messages. It owns a growable
 * buffer: bytes go in with fn_framer_feed() (a copy) or, zero-copy from a
 * socket, with fn_framer_reserve() + recv() + fn_framer_commit(); whole
 * messages come out of fn_framer_next() as (pointer, length) views into
 * that buffer. A view stays valid until the next feed/reserve/reset/free
 * call on the same framer: compaction and growth only happen there.
 *
 * Kinds:
 *   FN_FRAME_RAW    every call to next() returns all buffered bytes (if any)
 *                   as one message. No limit applies beyond the buffer.
 *   FN_FRAME_BE32   4-byte big-endian length, then that many payload bytes.
 *   FN_FRAME_VARINT unsigned LEB128 length (see varint.h), then payload.
 *   FN_FRAME_LINE   lines ending in "\r\n"; with FN_LINE_BARE_LF a bare "\n"
 *                   also ends a line (a "\r" right before it is stripped).
 *                   In strict mode a lone "\n" or "\r" is line content.
 *                   The message is the line without its delimiter.
 *
 * Limits (the caller passes them; fastnet/limits.py defines the defaults so
 * both twins share one definition):
 *   BE32/VARINT: a declared length > max is an error as soon as the header is
 *                complete: next() reports it without waiting for any byte of
 *                the payload. A VARINT header that is still incomplete is
 *                FN_NEED_DATA unless its bytes already prove it malformed
 *                (varint.h: the first byte that proves it bad decides).
 *   LINE:        a line whose content (delimiter excluded) is longer than max
 *                is an error. Without a delimiter yet, buffered content
 *                longer than max is an error, where a final "\r" that may be
 *                the start of "\r\n" is not counted as content.
 *   A declared length is never used to preallocate: the buffer grows with
 *   the bytes that actually arrive.
 *
 * Errors are sticky (hiredis style): once next() has returned an error,
 * every later next() returns the same error until fn_framer_reset(). Bytes
 * fed (or committed) after an error are discarded; the bytes buffered before
 * it stay counted by fn_framer_buffered() until reset.
 *
 * Cost: a partially received line is never rescanned from its start; the
 * scan resumes where the previous one stopped, so framing is O(bytes read).
 */
#ifndef FASTNET_FRAMER_H
#define FASTNET_FRAMER_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* cdef: begin */
#define FN_FRAME_RAW 0
#define FN_FRAME_BE32 1
#define FN_FRAME_VARINT 2
#define FN_FRAME_LINE 3

#define FN_LINE_BARE_LF 1

/* fn_framer_next() results: >= 0, or framer's block of status.h (-200 ..
 * -299). Out of memory (feed) is status.h's FN_E_NOMEM. */
#define FN_NEED_DATA 0
#define FN_MESSAGE 1
#define FN_E_FRAMER_TOO_LARGE -200     /* err_value = declared length */
#define FN_E_FRAMER_LINE_TOO_LONG -201 /* err_value = bytes of content seen so far (> max) */
#define FN_E_FRAMER_BAD_HEADER -202    /* err_value = varint error (FN_E_VARINT_*) */

/* The layout is in the cdef so the white-box tests (tests/test_framing.py)
 * and the fuzz target can check the buffer's invariants; fastnet's Python
 * code reads none of it and calls the functions below. */
typedef struct fn_framer {
    int kind;
    int flags;
    uint64_t max;        /* max payload (BE32/VARINT) or max line content (LINE) */
    char *buf;           /* owned; NULL until the first byte arrives */
    size_t cap;          /* allocated size of buf */
    size_t start;        /* first unconsumed byte */
    size_t end;          /* one past the last buffered byte */
    size_t scan;         /* LINE: offset (from buf) where the delimiter search resumes */
    uint64_t body;       /* BE32/VARINT: payload length once the header is parsed */
    int header;          /* BE32/VARINT: header length once parsed, 0 before */
    int err;             /* sticky error, 0 if none */
    uint64_t err_value;  /* detail for err, see above */
} fn_framer;

/* Initialise/free a framer embedded in another struct. kind must be one of
 * FN_FRAME_*; with any other kind next() only ever returns FN_NEED_DATA. */
void fn_framer_init(fn_framer *f, int kind, uint64_t max, int flags);
void fn_framer_release(fn_framer *f);
/* Heap-allocated framer, for Python (ffi.gc(f, lib.fn_framer_free)). */
fn_framer *fn_framer_new(int kind, uint64_t max, int flags);
void fn_framer_free(fn_framer *f);

/* Forget all buffered bytes and any error; keeps kind, max and flags. */
void fn_framer_reset(fn_framer *f);

/* Append a copy of data[0..len). Returns 0, or FN_E_NOMEM. */
int fn_framer_feed(fn_framer *f, const char *data, size_t len);

/* Make at least min_room bytes writable after the buffered data and return a
 * pointer to them; *room receives how many are writable (>= min_room). May
 * compact or grow the buffer (invalidating views). Returns NULL on ENOMEM.
 * After writing n bytes there, call fn_framer_commit(f, n). */
char *fn_framer_reserve(fn_framer *f, size_t min_room, size_t *room);
void fn_framer_commit(fn_framer *f, size_t n);

/* Extract the next message: FN_MESSAGE with msg and len set, FN_NEED_DATA, or
 * a (sticky) FN_ERR_* code. */
int fn_framer_next(fn_framer *f, const char **msg, size_t *len);

/* Bytes buffered and not yet returned as messages. */
size_t fn_framer_buffered(const fn_framer *f);
/* The detail of the sticky error (see the FN_E_FRAMER_* codes), 0 if none. */
uint64_t fn_framer_error_value(const fn_framer *f);

/* Write the frame header for a payload of len bytes to out (room for 10
 * bytes); return its length: 4 for BE32, 1..10 for VARINT, 0 for RAW/LINE
 * (a LINE message is followed by "\r\n" instead), or FN_E_FRAMER_TOO_LARGE
 * for BE32 when len does not fit in 32 bits. */
int fn_frame_header(int kind, uint64_t len, uint8_t *out);
/* cdef: end */

/* Drop the first n buffered bytes (at most all of them): for parsers that
 * keep their own offsets into a RAW framer's buffer (resp.c). */
void fn_framer_skip(fn_framer *f, size_t n);

/* Free the buffer if it holds no unconsumed bytes and its capacity is larger
 * than keep bytes (idle memory). */
void fn_framer_trim(fn_framer *f, size_t keep);

#endif
