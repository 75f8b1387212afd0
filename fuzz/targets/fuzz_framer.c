/* fuzz_framer.c - csrc/framer.c: be32, varint and line framing.
 *
 * Input: byte 0 picks the kind (and bare_lf for lines), byte 1 the limit,
 * the rest is the stream. It is framed three ways: fed whole; split at
 * random points, alternating fn_framer_feed with fn_framer_reserve +
 * fn_framer_commit (the engine's zero-copy path), draining after every
 * piece; and fed whole again after fn_framer_reset. Checked:
 *   - the three give the same messages and the same error (for lines the
 *     error's detail, bytes seen so far, may differ with the split: only
 *     that it is over the limit is required);
 *   - start <= scan <= end <= cap after every call (framer.c's invariant);
 *   - no message exceeds the limit; no line holds its delimiter;
 *   - errors are sticky: next() repeats the error, input fed after it is
 *     dropped, buffered() does not move;
 *   - length-prefixed: buffered() is exactly what the messages left.
 */
#include <string.h>

#include "framer.h"
#include "fuzz_util.h"
#include "varint.h"

static const uint64_t LIMITS[8] = {0, 1, 3, 8, 64, 300, 65536, UINT64_MAX};

typedef struct run {
    uint8_t *rec;      /* per message: 8-byte length, then its bytes */
    size_t rec_len;
    int err;
    uint64_t err_value;
    uint64_t consumed; /* length-prefixed: header + payload bytes returned */
} run;

static void check_layout(const fn_framer *f)
{
    CHECK(f->start <= f->scan);
    CHECK(f->scan <= f->end);
    CHECK(f->end <= f->cap);
    CHECK(f->buf != NULL || f->cap == 0);
    CHECK(fn_framer_buffered(f) == f->end - f->start);
}

static void check_message(const fn_framer *f, const char *msg, size_t len)
{
    CHECK((uint64_t)len <= f->max);
    CHECK(len == 0 || (msg >= f->buf && msg + len <= f->buf + f->end));
    if (f->kind == FN_FRAME_LINE) {
        if (f->flags & FN_LINE_BARE_LF)
            CHECK(len == 0 || memchr(msg, '\n', len) == NULL);
        for (size_t i = 0; i + 1 < len; i++)
            CHECK(!(msg[i] == '\r' && msg[i + 1] == '\n'));
    }
}

/* next() until it needs data or fails; records into r. */
static void drain(fn_framer *f, run *r)
{
    const char *msg = NULL;
    size_t len = 0;

    if (r->err) {
        size_t before = fn_framer_buffered(f);

        CHECK(fn_framer_next(f, &msg, &len) == r->err);
        CHECK(f->err_value == r->err_value);
        CHECK(fn_framer_buffered(f) == before);
        return;
    }
    for (;;) {
        int rc = fn_framer_next(f, &msg, &len);

        check_layout(f);
        if (rc == FN_NEED_DATA)
            return;
        if (rc != FN_MESSAGE) {
            CHECK(rc == FN_E_FRAMER_TOO_LARGE || rc == FN_E_FRAMER_LINE_TOO_LONG
                  || rc == FN_E_FRAMER_BAD_HEADER);
            r->err = rc;
            r->err_value = f->err_value;
            CHECK(fn_framer_next(f, &msg, &len) == rc);  /* sticky */
            return;
        }
        check_message(f, msg, len);
        memcpy(r->rec + r->rec_len, &(uint64_t){len}, 8);
        if (len)
            memcpy(r->rec + r->rec_len + 8, msg, len);
        r->rec_len += 8 + len;
        if (f->kind == FN_FRAME_BE32)
            r->consumed += 4 + len;
        else if (f->kind == FN_FRAME_VARINT) {
            uint8_t head[FN_VARINT_MAX_BYTES];

            r->consumed += (uint64_t)fn_uvarint_encode(len, head) + len;
        }
    }
}

static void feed_piece(fn_framer *f, run *r, const uint8_t *p, size_t n, int zero_copy)
{
    size_t before = fn_framer_buffered(f);

    if (zero_copy) {
        size_t room = 0;
        char *w = fn_framer_reserve(f, n, &room);

        CHECK(w != NULL && room >= n);
        check_layout(f);
        memcpy(w, p, n);
        fn_framer_commit(f, n);
    } else {
        CHECK(fn_framer_feed(f, (const char *)p, n) == 0);
    }
    check_layout(f);
    if (r->err)
        CHECK(fn_framer_buffered(f) == before);  /* dropped after an error */
    drain(f, r);
}

static int same_error(int kind, const run *a, const run *b)
{
    if (a->err != b->err)
        return 0;
    return kind == FN_FRAME_LINE || a->err_value == b->err_value;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int KINDS[3] = {FN_FRAME_BE32, FN_FRAME_VARINT, FN_FRAME_LINE};
    fn_framer *f;
    run whole = {0}, split = {0}, again = {0};
    fuzz_rng rng;
    int kind, flags;
    uint64_t max;

    if (size < 2)
        return 0;
    kind = KINDS[data[0] % 3];
    flags = kind == FN_FRAME_LINE && (data[0] & 4) ? FN_LINE_BARE_LF : 0;
    max = LIMITS[data[1] & 7];
    rng = fuzz_rng_of(data, size);
    data += 2;
    size -= 2;

    /* Every message costs at least one byte of input, 8 of record. */
    whole.rec = malloc(9 * size + 16);
    split.rec = malloc(9 * size + 16);
    again.rec = malloc(9 * size + 16);
    f = fn_framer_new(kind, max, flags);
    CHECK(whole.rec && split.rec && again.rec && f);

    if (size)
        feed_piece(f, &whole, data, size, 0);
    else
        drain(f, &whole);
    if (!whole.err && kind != FN_FRAME_LINE)
        CHECK(fn_framer_buffered(f) == size - whole.consumed);
    fn_framer_free(f);

    f = fn_framer_new(kind, max, flags);
    CHECK(f != NULL);
    for (size_t off = 0, i = 0; off < size; i++) {
        size_t n = fuzz_chunk(&rng, size - off);

        feed_piece(f, &split, data + off, n, (int)(i & 1));
        off += n;
    }
    drain(f, &split);
    CHECK(split.rec_len == whole.rec_len);
    CHECK(memcmp(split.rec, whole.rec, whole.rec_len) == 0);
    CHECK(same_error(kind, &whole, &split));
    if (!split.err && kind != FN_FRAME_LINE)
        CHECK(fn_framer_buffered(f) == size - split.consumed);

    fn_framer_reset(f);
    CHECK(fn_framer_buffered(f) == 0 && f->err == 0);
    check_layout(f);
    if (size)
        feed_piece(f, &again, data, size, 1);
    CHECK(again.rec_len == whole.rec_len);
    CHECK(memcmp(again.rec, whole.rec, whole.rec_len) == 0);
    CHECK(again.err == whole.err && again.err_value == whole.err_value);

    fn_framer_free(f);
    free(whole.rec);
    free(split.rec);
    free(again.rec);
    return 0;
}
