/* fuzz_wire.c - libFuzzer target for csrc/wire.c.
 *
 * Input: one byte (max_body selector and split step), then the stream.
 * Checks, beyond memory safety:
 *   - the stream fed whole and fed in pieces (step from the first byte)
 *     yields the same frames (same fields, same body bytes) and the same
 *     final result (need-data or the same error code and error value);
 *   - every frame respects max_body, and its header re-encodes to the
 *     bytes it came from;
 *   - errors are sticky: after one, next() returns it again, even after
 *     more input;
 *   - buffered() never exceeds the bytes fed.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "wire.h"

#define MAX_FRAMES 4096

typedef struct {
    fn_wire_frame f;
    uint64_t hash;
} seen;

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    return h;
}

/* Drain d into out[]; return the final rc (need-data or an error). */
static int drain(fn_wire_decoder *d, seen *out, size_t *count, uint64_t max_body)
{
    fn_wire_frame f;
    int rc;
    while ((rc = fn_wire_next(d, &f)) == FN_WIRE_FRAME) {
        uint8_t h[FN_WIRE_HEADER_SIZE];
        assert(f.len <= max_body);
        assert(fn_wire_header(f.version, f.type, f.flags, f.request_id, f.len, h)
               == FN_WIRE_HEADER_SIZE);
        assert(memcmp(h, f.body - FN_WIRE_HEADER_SIZE, FN_WIRE_HEADER_SIZE) == 0);
        if (*count < MAX_FRAMES) {
            out[*count].f = f;
            out[*count].f.body = NULL;
            out[*count].hash = fnv(f.body, f.len);
        }
        (*count)++;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static seen whole[MAX_FRAMES], split[MAX_FRAMES];
    size_t nwhole = 0, nsplit = 0, fed = 0, step;
    uint64_t max_body;
    int rc_whole, rc_split = FN_WIRE_NEED_DATA;
    fn_wire_decoder *a, *b;

    if (size < 1)
        return 0;
    max_body = (uint64_t)(data[0] & 0x0f) * 16;
    step = (size_t)(data[0] >> 4) + 1;
    data++;
    size--;

    a = fn_wire_new(max_body);
    b = fn_wire_new(max_body);
    if (!a || !b)
        abort();

    if (fn_wire_feed(a, (const char *)data, size) != FN_OK)
        abort();
    rc_whole = drain(a, whole, &nwhole, max_body);

    while (fed < size) {
        size_t n = size - fed < step ? size - fed : step;
        if (fn_wire_feed(b, (const char *)data + fed, n) != FN_OK)
            abort();
        fed += n;
        assert(fn_wire_buffered(b) <= fed);
        rc_split = drain(b, split, &nsplit, max_body);
        if (rc_split < 0)
            break;
    }

    assert(rc_whole == rc_split);
    assert(nwhole == nsplit);
    for (size_t i = 0; i < nwhole && i < MAX_FRAMES; i++) {
        assert(whole[i].f.version == split[i].f.version);
        assert(whole[i].f.type == split[i].f.type);
        assert(whole[i].f.flags == split[i].f.flags);
        assert(whole[i].f.request_id == split[i].f.request_id);
        assert(whole[i].f.len == split[i].f.len);
        assert(whole[i].hash == split[i].hash);
    }
    if (rc_whole < 0) {
        fn_wire_frame f;
        assert(fn_wire_err_value(a) == fn_wire_err_value(b));
        if (fn_wire_feed(a, "\xfb\x01\x05\0\0\0\0\0\0\0\0\0", 12) != FN_OK)
            abort();
        assert(fn_wire_next(a, &f) == rc_whole);
    }

    fn_wire_free(a);
    fn_wire_free(b);
    return 0;
}
