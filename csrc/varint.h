/* varint.h - unsigned LEB128 (up to 64 bits) and zigzag.
 *
 * Encoding: 7 bits per byte, least significant group first, high bit set
 * on every byte but the last. A uint64 needs at most 10 bytes.
 *
 * Decoding is strict, because an untrusted peer chooses the bytes:
 *   - truncated: the input ends while the high bit is still set;
 *   - overlong:  a byte after the first is the last one and is zero
 *                (e.g. 80 00 for 0): the value had a shorter encoding;
 *   - overflow:  the value does not fit in 64 bits (a 10th byte > 1, or an
 *                11th byte).
 * Checks are applied in input order: the first byte that proves the input
 * bad decides the error. A 10th byte > 1 is overflow even if it is the
 * last, never overlong.
 */
#ifndef FASTNET_VARINT_H
#define FASTNET_VARINT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* cdef: begin */
#define FN_VARINT_MAX_BYTES 10

/* fn_uvarint_decode() errors: varint's block of status.h, -100 .. -199. */
#define FN_E_VARINT_TRUNCATED -100
#define FN_E_VARINT_OVERLONG -101
#define FN_E_VARINT_OVERFLOW -102

/* Write the encoding of value to out (room for FN_VARINT_MAX_BYTES);
 * return the number of bytes written (1..10). */
int fn_uvarint_encode(uint64_t value, uint8_t *out);

/* Decode one varint from buf[0..len). On success store it in *value and
 * return the number of bytes consumed (1..10); otherwise return one of
 * FN_E_VARINT_TRUNCATED / FN_E_VARINT_OVERLONG / FN_E_VARINT_OVERFLOW. */
int fn_uvarint_decode(const uint8_t *buf, size_t len, uint64_t *value);

uint64_t fn_zigzag_encode(int64_t value);
int64_t fn_zigzag_decode(uint64_t value);
/* cdef: end */

#endif
