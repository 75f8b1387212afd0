/* stub: replaced by the real implementation */
#include "varint.h"
int fn_uvarint_encode(uint64_t value, uint8_t *out) { (void)value; (void)out; return 0; }
int fn_uvarint_decode(const uint8_t *buf, size_t len, uint64_t *value) { (void)buf; (void)len; (void)value; return FN_VARINT_TRUNCATED; }
uint64_t fn_zigzag_encode(int64_t value) { (void)value; return 0; }
int64_t fn_zigzag_decode(uint64_t value) { (void)value; return 0; }
