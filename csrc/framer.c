/* framer.c - incremental message framing, see framer.h for the contract.
 *
 * Buffer invariants: buf is NULL or holds cap bytes; start <= scan <= end
 * <= cap; bytes [start, end) are buffered and not yet returned. Memory only
 * moves (compaction, growth) inside ensure_room(), which only feed and
 * reserve call, so views handed out by next() stay valid until then.
 */
#include <stdlib.h>
#include <string.h>

#include "framer.h"
#include "varint.h"

/* Smallest buffer ever allocated: a first read of a few bytes does not
 * trigger a string of tiny reallocations. */
#define FN_FRAMER_MIN_CAP 1024

void fn_framer_init(fn_framer *f, int kind, uint64_t max, int flags)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->max = max;
    f->flags = flags;
}

void fn_framer_release(fn_framer *f)
{
    free(f->buf);
    fn_framer_init(f, f->kind, f->max, f->flags);
}

fn_framer *fn_framer_new(int kind, uint64_t max, int flags)
{
    fn_framer *f = malloc(sizeof *f);

    if (f)
        fn_framer_init(f, kind, max, flags);
    return f;
}

void fn_framer_free(fn_framer *f)
{
    if (f) {
        fn_framer_release(f);
        free(f);
    }
}

void fn_framer_reset(fn_framer *f)
{
    /* The allocation is kept for reuse; fn_framer_trim() gives it back. */
    f->start = f->end = f->scan = 0;
    f->body = 0;
    f->header = 0;
    f->err = 0;
    f->err_value = 0;
}

void fn_framer_trim(fn_framer *f, size_t keep)
{
    if (f->buf && f->start == f->end && f->cap > keep) {
        free(f->buf);
        f->buf = NULL;
        f->cap = 0;
        f->start = f->end = f->scan = 0;
    }
}

void fn_framer_skip(fn_framer *f, size_t n)
{
    if (n > f->end - f->start)
        n = f->end - f->start;
    f->start += n;
    if (f->scan < f->start)
        f->scan = f->start;
}

size_t fn_framer_buffered(const fn_framer *f)
{
    return f->end - f->start;
}

uint64_t fn_framer_error_value(const fn_framer *f)
{
    return f->err_value;
}

/* Make need bytes writable at buf + end. Compacts when that is cheap (the
 * unconsumed bytes fill at most half the buffer), otherwise grows the buffer
 * to max(2 * cap, used + need): geometric growth, driven only by bytes that
 * are buffered or about to be written. Returns 0, or FN_E_NOMEM. */
static int ensure_room(fn_framer *f, size_t need)
{
    size_t used = f->end - f->start;
    size_t want, newcap;
    char *nb;

    if (used == 0)
        f->start = f->end = f->scan = 0;
    if (f->buf && f->cap - f->end >= need)
        return 0;
    if (f->buf && need <= f->cap - used && used <= f->cap / 2) {
        memmove(f->buf, f->buf + f->start, used);
        f->scan -= f->start;
        f->end = used;
        f->start = 0;
        return 0;
    }
    if (need > SIZE_MAX - used)
        return FN_E_NOMEM;
    want = used + need;
    newcap = f->cap > SIZE_MAX / 2 ? SIZE_MAX : f->cap * 2;
    if (newcap < want)
        newcap = want;
    if (newcap < FN_FRAMER_MIN_CAP)
        newcap = FN_FRAMER_MIN_CAP;
    if (f->start == 0) {
        nb = realloc(f->buf, newcap);  /* may extend in place */
        if (!nb)
            return FN_E_NOMEM;
    } else {
        nb = malloc(newcap);
        if (!nb)
            return FN_E_NOMEM;
        memcpy(nb, f->buf + f->start, used);
        free(f->buf);
        f->scan -= f->start;
        f->end = used;
        f->start = 0;
    }
    f->buf = nb;
    f->cap = newcap;
    return 0;
}

int fn_framer_feed(fn_framer *f, const char *data, size_t len)
{
    if (f->err || len == 0)
        return 0;  /* after an error, input is discarded */
    if (ensure_room(f, len) < 0)
        return FN_E_NOMEM;
    memcpy(f->buf + f->end, data, len);
    f->end += len;
    return 0;
}

char *fn_framer_reserve(fn_framer *f, size_t min_room, size_t *room)
{
    if (ensure_room(f, min_room) < 0)
        return NULL;
    *room = f->cap - f->end;
    return f->buf + f->end;
}

void fn_framer_commit(fn_framer *f, size_t n)
{
    if (f->err)
        return;  /* after an error, input is discarded */
    if (n > f->cap - f->end)
        n = f->cap - f->end;  /* never claim bytes past the buffer */
    f->end += n;
}

static int fail(fn_framer *f, int err, uint64_t value)
{
    f->err = err;
    f->err_value = value;
    return err;
}

static int next_raw(fn_framer *f, const char **msg, size_t *len)
{
    if (f->end == f->start)
        return FN_NEED_DATA;
    *msg = f->buf + f->start;
    *len = f->end - f->start;
    f->start = f->scan = f->end;
    return FN_MESSAGE;
}

static int next_length_prefixed(fn_framer *f, const char **msg, size_t *len)
{
    size_t avail = f->end - f->start;

    if (f->header == 0) {
        const uint8_t *h;

        if (avail == 0)
            return FN_NEED_DATA;  /* and buf may still be NULL */
        h = (const uint8_t *)f->buf + f->start;
        if (f->kind == FN_FRAME_BE32) {
            if (avail < 4)
                return FN_NEED_DATA;
            f->body = (uint64_t)h[0] << 24 | (uint64_t)h[1] << 16
                    | (uint64_t)h[2] << 8 | (uint64_t)h[3];
            f->header = 4;
        } else {
            uint64_t value = 0;
            /* An incomplete header is TRUNCATED unless its bytes already
             * prove it malformed (varint.h checks bytes in input order). */
            int rc = fn_uvarint_decode(h, avail, &value);

            if (rc == FN_E_VARINT_TRUNCATED)
                return FN_NEED_DATA;
            if (rc < 0)
                return fail(f, FN_E_FRAMER_BAD_HEADER, (uint64_t)(int64_t)rc);
            f->body = value;
            f->header = rc;
        }
        /* Checked before any payload byte is needed: a peer cannot make
         * us wait for (or buffer) a frame we will refuse anyway. */
        if (f->body > f->max) {
            f->header = 0;
            return fail(f, FN_E_FRAMER_TOO_LARGE, f->body);
        }
    }
    if ((uint64_t)(avail - (size_t)f->header) < f->body)
        return FN_NEED_DATA;
    *msg = f->buf + f->start + f->header;
    *len = (size_t)f->body;
    f->start += (size_t)f->header + (size_t)f->body;
    f->scan = f->start;  /* unused by this kind, but start <= scan holds for all */
    f->header = 0;
    f->body = 0;
    return FN_MESSAGE;
}

static int next_line(fn_framer *f, const char **msg, size_t *len)
{
    int bare_lf = f->flags & FN_LINE_BARE_LF;
    size_t p = f->scan;
    size_t content;

    /* Must be O(bytes read) to avoid DoS by a slow, long line: the search
     * resumes at scan, past every byte examined before. A "\r" right before
     * a "\n" found now may have been scanned already; it is looked at again,
     * one byte, when its "\n" arrives. */
    while (p < f->end) {
        const char *nl = memchr(f->buf + p, '\n', f->end - p);
        size_t i, stop;

        if (!nl)
            break;
        i = (size_t)(nl - f->buf);
        if (i > f->start && f->buf[i - 1] == '\r')
            stop = i - 1;
        else if (bare_lf)
            stop = i;
        else {
            p = i + 1;  /* strict: a lone "\n" is line content */
            continue;
        }
        content = stop - f->start;
        if ((uint64_t)content > f->max)
            return fail(f, FN_E_FRAMER_LINE_TOO_LONG, content);
        *msg = f->buf + f->start;
        *len = content;
        f->start = f->scan = i + 1;
        return FN_MESSAGE;
    }
    f->scan = f->end;
    /* No delimiter yet: a final "\r" may start "\r\n", so it is not content. */
    content = f->end - f->start;
    if (content && f->buf[f->end - 1] == '\r')
        content--;
    if ((uint64_t)content > f->max)
        return fail(f, FN_E_FRAMER_LINE_TOO_LONG, content);
    return FN_NEED_DATA;
}

int fn_framer_next(fn_framer *f, const char **msg, size_t *len)
{
    if (f->err)
        return f->err;
    switch (f->kind) {
    case FN_FRAME_RAW:
        return next_raw(f, msg, len);
    case FN_FRAME_BE32:
    case FN_FRAME_VARINT:
        return next_length_prefixed(f, msg, len);
    case FN_FRAME_LINE:
        return next_line(f, msg, len);
    default:
        return FN_NEED_DATA;  /* unknown kind: never yields a message */
    }
}

int fn_frame_header(int kind, uint64_t len, uint8_t *out)
{
    switch (kind) {
    case FN_FRAME_BE32:
        if (len > UINT32_MAX)
            return FN_E_FRAMER_TOO_LARGE;
        out[0] = (uint8_t)(len >> 24);
        out[1] = (uint8_t)(len >> 16);
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    case FN_FRAME_VARINT:
        return fn_uvarint_encode(len, out);
    default:
        return 0;
    }
}
