/* fuzz_varint.c - csrc/varint.c: fn_uvarint_decode and the zigzag pair.
 *
 * Invariants checked (varint.h is the contract):
 *   - a decode consumes 1..10 bytes or fails with one of the three codes;
 *   - a success is canonical: re-encoding the value gives back exactly the
 *     bytes consumed (overlong forms are refused, so only one exists);
 *   - input order decides: every prefix shorter than the decoded length is
 *     TRUNCATED, and a prefix that reaches the byte proving an error gives
 *     that error; bytes after a decoded varint never change the result;
 *   - zigzag decode inverts encode for every 64-bit value.
 */
#include <string.h>

#include "fuzz_util.h"
#include "varint.h"

static int is_error(int rc)
{
    return rc == FN_E_VARINT_TRUNCATED || rc == FN_E_VARINT_OVERLONG
        || rc == FN_E_VARINT_OVERFLOW;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t value = 0, v2 = 0;
    uint8_t out[FN_VARINT_MAX_BYTES];
    int rc = fn_uvarint_decode(data, size, &value);

    if (rc > 0) {
        CHECK(rc <= FN_VARINT_MAX_BYTES && (size_t)rc <= size);
        CHECK(fn_uvarint_encode(value, out) == rc);
        CHECK(memcmp(out, data, (size_t)rc) == 0);
        for (int n = 0; n < rc; n++)
            CHECK(fn_uvarint_decode(data, (size_t)n, &v2) == FN_E_VARINT_TRUNCATED);
    } else {
        CHECK(is_error(rc));
        /* The error is decided by a byte within the first 10; the first
         * prefix that is not TRUNCATED already gives it, and so does every
         * longer one. */
        int seen = 0;

        for (size_t n = 0; n <= size && n <= FN_VARINT_MAX_BYTES + 1; n++) {
            int r = fn_uvarint_decode(data, n, &v2);

            CHECK(r < 0);
            if (seen)
                CHECK(r == rc);
            else if (r != FN_E_VARINT_TRUNCATED) {
                CHECK(r == rc);
                seen = 1;
            }
        }
        CHECK(seen || rc == FN_E_VARINT_TRUNCATED);
    }
    if (size >= 8) {
        uint64_t u;
        int64_t s;

        memcpy(&u, data, 8);
        memcpy(&s, data, 8);
        CHECK(fn_zigzag_encode(fn_zigzag_decode(u)) == u);
        CHECK(fn_zigzag_decode(fn_zigzag_encode(s)) == s);
        /* Small magnitudes get small codes: |s| < 2^k -> code < 2^(k+1). */
        CHECK((fn_zigzag_encode(s) >> 1) == (s < 0 ? ~(uint64_t)s : (uint64_t)s));
    }
    return 0;
}
