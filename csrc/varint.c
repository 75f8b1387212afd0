/* varint.c - unsigned LEB128 and zigzag, see varint.h for the rules. */
#include "varint.h"

int fn_uvarint_encode(uint64_t value, uint8_t *out)
{
    int n = 0;

    while (value >= 0x80) {
        out[n++] = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    out[n++] = (uint8_t)value;
    return n;
}

int fn_uvarint_decode(const uint8_t *buf, size_t len, uint64_t *value)
{
    uint64_t v = 0;

    /* Checks run byte by byte in input order, so a prefix of a bad varint
     * already reports the error that the whole input would. The loop never
     * reaches an 11th byte: a 10th byte with its high bit set is > 1. */
    for (size_t i = 0; i < len && i < FN_VARINT_MAX_BYTES; i++) {
        uint8_t b = buf[i];

        if (i == FN_VARINT_MAX_BYTES - 1 && b > 1)
            return FN_E_VARINT_OVERFLOW;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                return FN_E_VARINT_OVERLONG;
            *value = v;
            return (int)i + 1;
        }
    }
    return FN_E_VARINT_TRUNCATED;
}

uint64_t fn_zigzag_encode(int64_t value)
{
    /* Written without shifting a negative number (implementation-defined). */
    return ((uint64_t)value << 1) ^ (value < 0 ? UINT64_MAX : 0);
}

int64_t fn_zigzag_decode(uint64_t value)
{
    int64_t half = (int64_t)(value >> 1);  /* <= INT64_MAX: no overflow */

    return (value & 1) ? -half - 1 : half;
}
