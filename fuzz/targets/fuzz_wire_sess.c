/* fuzz_wire_sess.c - libFuzzer target for csrc/wire.c's server session
 * (fn_wire_sess_read, fn_wire_sess_replies).
 *
 * Input: one byte (session version 0..3 and split step), then the stream.
 * The stream is read whole by one session and in pieces by another, each
 * drained the way the wire session drains it (a CALLER stop takes one
 * frame with fn_wire_next, a FALLBACK stop takes the frame, keeps its id
 * and reads on with append). Checks, beyond memory safety:
 *   - both see the same requests: the same ids in the same order, and the
 *     same frames handed to the caller, and end the same way;
 *   - every batch's stream is non-empty exactly when it holds requests,
 *     and the ids kept are the batch's count (plus those pushed);
 *   - buffered bytes never exceed the bytes fed;
 *   - the input fed to fn_wire_sess_replies as an untrusted marshal stream
 *     never crashes it, and what it frames is whole RESPONSE frames.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"
#include "status.h"
#include "wire.h"

#define MAX_LOG 8192

typedef struct {
    uint64_t log[MAX_LOG];  /* ids, and frames handed over as (1 << 40 | type << 32 | id) */
    size_t n;
    int end;                /* the final decoder result */
} trace;

static void note(trace *t, uint64_t v)
{
    if (t->n < MAX_LOG)
        t->log[t->n] = v;
    t->n++;
}

static fn_pack_limits lim = {512, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 19};
static char into[4096];

/* Read what is buffered until the session needs data or fails. */
static void drain(fn_wire_sess *s, fn_wire_work *w, const char *data, size_t len, trace *t,
                  size_t fed)
{
    int append = 0;
    size_t before = 0;
    for (;;) {
        int64_t r = fn_wire_sess_read(s, w, data, len, append);
        size_t nids;
        const uint32_t *ids;
        fn_wire_frame f;
        int rc;

        if (r < 0)
            abort();  /* out of memory: not what this target looks for */
        data = NULL;
        len = 0;
        ids = fn_wire_sess_ids(s, &nids);
        assert(nids >= before);
        assert(((r >> 3) == 0) == (nids == before));
        for (size_t i = before; i < nids; i++)
            note(t, ids[i]);
        assert(fn_wire_buffered(fn_wire_sess_decoder(s)) <= fed);
        if ((r & 3) == FN_WIRE_SESS_NEED_DATA)
            return;
        rc = fn_wire_next(fn_wire_sess_decoder(s), &f);
        if (rc != FN_WIRE_FRAME) {
            t->end = rc;
            return;
        }
        if ((r & 3) == FN_WIRE_SESS_FALLBACK) {
            /* the caller decodes it, keeps its id and reads on (append) */
            assert(f.type == FN_WIRE_REQUEST);
            note(t, f.request_id);
            if (fn_wire_sess_push_id(s, f.request_id) != FN_OK)
                abort();
            before = nids + 1;
            append = 1;
            continue;
        }
        note(t, (1ull << 40) | ((uint64_t)f.type << 32) | f.request_id);
        before = 0;
        append = 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static trace whole, split;
    size_t step, fed = 0;
    uint8_t version;
    fn_wire_sess *a, *b;
    fn_wire_work *w;
    int64_t r;
    const char *in;

    if (size < 1)
        return 0;
    version = data[0] & 3;
    step = (size_t)(data[0] >> 2) + 1;
    in = (const char *)data + 1;
    size--;

    w = fn_wire_work_new(&lim, 0, 1 << 20, 512, into, sizeof into);
    a = fn_wire_sess_new(1 << 16);
    b = fn_wire_sess_new(1 << 16);
    if (!w || !a || !b)
        abort();
    fn_wire_sess_set_version(a, version);
    fn_wire_sess_set_version(b, version);
    memset(&whole, 0, sizeof whole);
    memset(&split, 0, sizeof split);

    drain(a, w, in, size, &whole, size);
    while (fed < size && split.end == 0) {
        size_t n = size - fed < step ? size - fed : step;
        fed += n;
        drain(b, w, in + fed - n, n, &split, fed);
    }
    assert(whole.end == split.end);
    assert(whole.n == split.n);
    assert(memcmp(whole.log, split.log, (whole.n < MAX_LOG ? whole.n : MAX_LOG) * 8) == 0);

    /* The input as the results' marshal stream: refused or framed whole. */
    r = fn_wire_sess_replies(a, w, in, size, size & 1 ? 64 : UINT64_MAX);
    if (r >= 0) {
        size_t n = (size_t)(r >> 1), pos = 0, frames = 0, nids;
        const char *p = (r & FN_WIRE_SESS_INTO_REPLY) ? into : w->out;
        fn_wire_sess_ids(a, &nids);
        while (pos < n) {
            const uint8_t *h = (const uint8_t *)p + pos;
            assert(n - pos >= FN_WIRE_HEADER_SIZE && h[0] == FN_WIRE_MAGIC && h[2] == FN_WIRE_RESPONSE);
            pos += FN_WIRE_HEADER_SIZE
                 + (((size_t)h[8] << 24) | ((size_t)h[9] << 16) | ((size_t)h[10] << 8) | h[11]);
            frames++;
        }
        assert(pos == n && frames == nids);
    }
    fn_wire_sess_free(a);
    fn_wire_sess_free(b);
    fn_wire_work_free(w);
    return 0;
}
