/* fuzz_hpack.c - libFuzzer target for csrc/hpack.c.
 *
 * Input: one byte choosing the decoder's table size and header-list limit,
 * then header blocks, each one length byte and that many bytes, decoded in
 * order by one decoder. Checks, beyond memory safety:
 *   - the marshal stream is well formed: a list of 2- or 3-tuples of bytes
 *     whose strings exactly fill it, never-indexed ones counted in *never;
 *   - the list respects the limit (name + value + 32 per field);
 *   - the dynamic table never exceeds the allowed size;
 *   - errors are sticky: after one, every call returns FN_E_STICKY;
 *   - every decoded list, re-encoded by our encoder (never-indexed kept)
 *     and decoded by a second decoder, gives the same marshal stream back;
 *   - Huffman: decode(encode(block)) == block for every block.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hpack.h"
#include "marshal.h"
#include "status.h"

#define MAX_FIELDS 4096

static uint32_t sizes[4] = {0, 64, 256, 4096};
static size_t limits[4] = {64, 512, 4096, 65536};

/* Walk a decoded stream; fill the encoder's arrays. Return the field count. */
static size_t walk(const char *s, size_t n, size_t limit, size_t never, uint8_t *data,
                   uint32_t *lens, uint8_t *sensitive)
{
    const unsigned char *r = (const unsigned char *)s, *end = r + n;
    assert(n >= 5 && r[0] == FN_MARSHAL_LIST);
    size_t count = fn_marshal_get32(r + 1), used = 0, nevers = 0, w = 0;
    r += 5;
    assert(count <= MAX_FIELDS);
    for (size_t i = 0; i < count; i++) {
        assert(end - r >= 2 && r[0] == FN_MARSHAL_SMALL_TUPLE && (r[1] == 2 || r[1] == 3));
        int three = r[1] == 3;
        r += 2;
        for (int k = 0; k < 2; k++) {
            assert(end - r >= 5 && r[0] == FN_MARSHAL_STRING);
            uint32_t len = fn_marshal_get32(r + 1);
            r += 5;
            assert((size_t)(end - r) >= len);
            memcpy(data + w, r, len);
            w += len;
            lens[2 * i + k] = len;
            used += len;
            r += len;
        }
        used += 32;
        sensitive[i] = (uint8_t)three;
        if (three) {
            assert(end - r >= 1 && r[0] == FN_MARSHAL_NONE);
            r++;
            nevers++;
        }
    }
    assert(r == end && used <= limit && nevers == never);
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t table = sizes[in[0] & 3];
    size_t limit = limits[(in[0] >> 2) & 3];
    in++;
    size--;
    fn_hpack_decoder *d = fn_hpack_decoder_new(table), *d2 = fn_hpack_decoder_new(4096);
    fn_hpack_encoder *e = fn_hpack_encoder_new(4096, 1);
    uint8_t *data = malloc(limits[3]), *out = malloc(fn_hpack_encode_bound(MAX_FIELDS, limits[3]));
    uint32_t *lens = malloc(2 * MAX_FIELDS * sizeof *lens);
    uint8_t *sensitive = malloc(MAX_FIELDS), *huff = malloc(4 * 256), *back = malloc(8 * 4 * 256 / 5 + 1);
    if (!d || !d2 || !e || !data || !out || !lens || !sensitive || !huff || !back)
        abort();
    int failed = 0;
    while (size) {
        size_t n = in[0] < size - 1 ? in[0] : size - 1;
        const uint8_t *block = in + 1;
        in += n + 1;
        size -= n + 1;

        size_t hn = fn_hpack_huffman_encode(block, n, huff);
        assert(fn_hpack_huffman_decode(huff, hn, back) == (int64_t)n && !memcmp(back, block, n));

        const char *s, *s2;
        size_t never, never2;
        int64_t rc = fn_hpack_decode(d, block, n, limit, &s, &never);
        if (failed) {
            assert(rc == FN_E_STICKY);
            continue;
        }
        if (rc < 0) {
            assert(rc <= -901 && rc >= -906);
            failed = 1;
            continue;
        }
        assert(fn_hpack_decoder_table_size(d) <= table);
        size_t count = walk(s, (size_t)rc, limit, never, data, lens, sensitive);
        int64_t en = fn_hpack_encode(e, data, lens, sensitive, count, out,
                                     fn_hpack_encode_bound(MAX_FIELDS, limits[3]));
        assert(en >= 0);
        int64_t rc2 = fn_hpack_decode(d2, out, (size_t)en, (size_t)-1, &s2, &never2);
        assert(rc2 == rc && never2 == never && !memcmp(s, s2, (size_t)rc));
    }
    fn_hpack_decoder_free(d);
    fn_hpack_decoder_free(d2);
    fn_hpack_encoder_free(e);
    free(data);
    free(out);
    free(lens);
    free(sensitive);
    free(huff);
    free(back);
    return 0;
}
