/* fuzz_h2frame.c - libFuzzer target for csrc/h2frame.c.
 *
 * Input: one byte choosing max_frame_size and a split step, then a byte
 * stream. Checks, beyond memory safety:
 *   - the stream parsed whole and fed in pieces of `step` bytes gives the
 *     same frames (type, flags, stream, fields, payload bytes) and then the
 *     same error or none;
 *   - every frame's payload lies inside the buffer and within
 *     max_frame_size; settings entries inside the payload;
 *   - errors are sticky: after one, every call returns FN_E_STICKY;
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2frame.h"
#include "status.h"

#define CAP 8
#define MAX_FRAMES 4096

typedef struct {
    fn_h2_frame f;
    uint32_t hash;
} seen;

static uint32_t hash(const uint8_t *b, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

/* Feed data in pieces of step bytes; record frames; return the final error or 0. */
static int run(const uint8_t *data, size_t size, size_t step, uint32_t max, seen *out, size_t *count)
{
    fn_h2_parser *p = fn_h2_parser_new();
    fn_h2_frame frames[CAP];
    if (!p)
        abort();
    int err = 0;
    *count = 0;
    for (size_t fed = 0; fed < size && !err;) {
        size_t n = size - fed < step ? size - fed : step;
        const uint8_t *in = data + fed;
        fed += n;
        for (;;) {
            int rc = fn_h2_parse(p, in, n, max, frames, CAP);
            in = NULL;
            n = 0;
            assert(rc != FN_E_NOMEM);
            int got = rc >= 0 ? rc : fn_h2_parser_parsed(p);
            const uint8_t *base = fn_h2_parser_buffer(p);
            for (int i = 0; i < got; i++) {
                fn_h2_frame *f = &frames[i];
                assert(f->data_len <= max);
                if (f->settings_count)
                    assert(6u * f->settings_count <= max);
                if (*count < MAX_FRAMES) {
                    out[*count].f = *f;
                    out[*count].f.data_off = out[*count].f.settings_off = 0;
                    out[*count].hash = hash(base + f->data_off, f->data_len)
                        ^ (f->settings_count ? hash(base + f->settings_off, 6 * f->settings_count) : 0);
                    (*count)++;
                }
            }
            if (rc < 0) {
                err = rc;
                assert(fn_h2_parse(p, data, 1, max, frames, CAP) == FN_E_STICKY);
                break;
            }
            if (rc < CAP)
                break;
        }
    }
    fn_h2_parser_free(p);
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static seen a[MAX_FRAMES], b[MAX_FRAMES];
    if (size < 1)
        return 0;
    uint32_t max = (data[0] & 1) ? (1u << 14) : (1u << 24) - 1;
    size_t step = (size_t)(data[0] >> 1) + 1;
    data++;
    size--;
    size_t na, nb;
    int ea = run(data, size, size ? size : 1, max, a, &na);
    int eb = run(data, size, step, max, b, &nb);
    assert(ea == eb && na == nb);
    for (size_t i = 0; i < na; i++)
        assert(!memcmp(&a[i].f, &b[i].f, sizeof a[i].f) && a[i].hash == b[i].hash);
    return 0;
}
