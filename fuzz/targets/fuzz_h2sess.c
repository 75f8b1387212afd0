/* fuzz_h2sess.c - libFuzzer target for csrc/h2sess.c (HTTP/2's per-read batch).
 *
 * Input: one configuration byte (bits 0-1: max_header_list_size 64, 512,
 * 4096 or 65536; bits 2-3: max_field_block 100, 1000, 16384 or 65536;
 * bits 4-5: max_continuations 0, 1, 4 or 64; bit 6: max_frame_size 16384
 * or 2**24-1), then the bytes of a connection after the preface. Checks,
 * beyond memory safety:
 *   - the stream read whole and read in random pieces give the same tuples
 *     (the items of the marshal lists, concatenated) and the same error;
 *   - every batch is a well-formed marshal list header with its count;
 *   - errors are sticky: the batch after one is exactly that error's tuple
 *     again, whatever is fed;
 *   - what a batch holds is bounded by the input: no tuple without bytes.
 */
#include "fuzz_util.h"
#include "h2sess.h"
#include "marshal.h"
#include "status.h"

typedef struct {
    uint32_t list, block, conts, frame;
} config;

static void run(const uint8_t *data, size_t size, const config *c, fuzz_rng *rng, int split,
                fuzz_rec *rec)
{
    fn_h2sess *s = fn_h2sess_new(4096);
    CHECK(s != NULL);
    size_t fed = 0;
    uint32_t tuples = 0;
    while (fed < size || !fed) {
        size_t n = split ? fuzz_chunk(rng, size - fed) : size - fed;
        const char *out;
        int64_t len = fn_h2sess_read(s, data + fed, n, c->frame, c->list, c->block, c->conts, &out);
        fed += n;
        CHECK(len >= 5);
        CHECK(out[0] == FN_MARSHAL_LIST);
        uint32_t count = fn_marshal_get32((const unsigned char *)out + 1);
        tuples += count;
        CHECK(tuples <= fed / 9 + 1);  /* a tuple per frame (9 bytes at least), or the error */
        if (len > 5)
            fuzz_put(rec, out + 5, (size_t)len - 5);
        const char *rule = fn_h2sess_error(s);
        if (rule) {
            rec->err = 1;
            /* Sticky: the next batch is that error's tuple alone, input ignored. */
            size_t tail = 2 + 5 + 2 + strlen(rule);
            CHECK((size_t)len >= 5 + tail && tail <= 64);
            char last[64];
            memcpy(last, out + len - tail, tail);  /* the next call reuses the buffer */
            const char *again;
            int64_t len2 = fn_h2sess_read(s, data, size, c->frame, c->list, c->block, c->conts,
                                          &again);
            CHECK(len2 == (int64_t)(5 + tail));
            CHECK(fn_marshal_get32((const unsigned char *)again + 1) == 1);
            CHECK(memcmp(again + 5, last, tail) == 0);
            break;
        }
        if (!size)
            break;
    }
    fn_h2sess_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint32_t lists[] = {64, 512, 4096, 65536};
    static const uint32_t blocks[] = {100, 1000, 16384, 65536};
    static const uint32_t conts[] = {0, 1, 4, 64};
    config c = {lists[data[0] & 3], blocks[(data[0] >> 2) & 3], conts[(data[0] >> 4) & 3],
                (data[0] & 0x40) ? (1u << 24) - 1 : 1u << 14};
    fuzz_rng rng = fuzz_rng_of(data, size);
    fuzz_rec whole = {0}, pieces = {0};
    run(data + 1, size - 1, &c, &rng, 0, &whole);
    run(data + 1, size - 1, &c, &rng, 1, &pieces);
    CHECK(fuzz_same(&whole, &pieces));
    free(whole.rec);
    free(pieces.rec);
    return 0;
}
