/* fuzz_pack.c - libFuzzer target for csrc/pack.c.
 *
 * Input: one flags byte, then bytes. Checks, beyond memory safety:
 *   - fn_pack_unpackb on the whole input and the streaming decoder fed the
 *     same bytes in pieces (split points from the flags byte) agree: the
 *     same first object (same marshal stream, same length) or the same
 *     error code, never a different answer for a different split;
 *   - errors are sticky: after one, next() returns it again;
 *   - the work counter stays within bytes fed plus calls (no rescans);
 *   - the encoder, given the input as a marshal stream, never crashes, and
 *     decode -> encode -> decode gives the same marshal stream back (the
 *     encoder reads every form the decoder writes, references included).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"
#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fn_pack_limits lim = {64, 1 << 20, 1 << 20, 1 << 20, 1 << 16, 1 << 16};
    int flags, whole, rc = 0;
    int64_t once;
    size_t step, fed = 0, calls = 0;
    fn_pack_dec *one, *stream;
    fn_pack_enc *enc;

    if (size < 1)
        return 0;
    flags = data[0] & (FN_PACK_RAW | FN_PACK_TUPLES | FN_PACK_STRICT_KEYS | FN_PACK_TS_DATETIME);
    step = (size_t)(data[0] >> 5) + 1;
    data++;
    size--;

    one = fn_pack_dec_new(&lim, flags);
    stream = fn_pack_dec_new(&lim, flags);
    enc = fn_pack_enc_new();
    if (!one || !stream || !enc)
        abort();

    once = fn_pack_unpackb(one, (const char *)data, size, &lim, flags);
    whole = once >= 0 || once == FN_E_PACK_FALLBACK ? FN_PACK_OBJECT : (int)once;
    assert(once < 0 || (size_t)once == one->out_len);

    /* Stream the same bytes in pieces of step bytes until the first object
     * or error. */
    while (fed < size || rc == FN_PACK_NEED_DATA) {
        size_t n = size - fed < step ? size - fed : step;
        if (fn_pack_dec_feed(stream, (const char *)data + fed, n) != FN_OK)
            abort();
        fed += n;
        rc = fn_pack_dec_next(stream);
        calls++;
        if (rc != FN_PACK_NEED_DATA || fed == size)
            break;
    }
    assert(stream->work <= fed + calls);
    if (rc == FN_PACK_OBJECT) {
        /* the same object as the one-shot decode (which may add EXTRA) */
        assert(whole == FN_PACK_OBJECT || whole == FN_E_PACK_EXTRA);
        assert(stream->obj_len == one->obj_len);
        assert(stream->out_len == one->out_len);
        assert(memcmp(stream->out, one->out, one->out_len) == 0);
        assert(stream->fallback == one->fallback);
        if (!one->fallback) {
            /* marshal -> MessagePack -> marshal is the identity: the
             * encoder writes what the decoder read (in canonical form) */
            fn_pack_dec *again = fn_pack_dec_new(&lim, flags);
            int64_t erc = fn_pack_encode(enc, one->out, one->out_len, 64, 0);
            if (!again)
                abort();
            assert(erc >= 0 && (size_t)erc == enc->out_len);
            assert(fn_pack_unpackb(again, enc->out, enc->out_len, &lim, flags) == (int64_t)one->out_len);
            assert(again->out_len == one->out_len);
            assert(memcmp(again->out, one->out, one->out_len) == 0);
            fn_pack_dec_free(again);
        }
    } else if (rc == FN_PACK_NEED_DATA) {
        assert(whole == FN_E_TRUNCATED);
    } else {
        assert(rc < 0);
        assert(whole == rc);
        assert(fn_pack_dec_next(stream) == rc); /* sticky */
    }

    /* The input as an untrusted marshal stream. */
    once = fn_pack_encode(enc, (const char *)data, size, 64, flags & FN_PACK_RAW ? FN_PACK_NO_BIN : 0);
    assert(once >= 0 || (once <= -500 && once > -600) || once == FN_E_NOMEM);

    /* Leaving UTF-8 to marshal.loads changes nothing but which invalid
     * str is refused here: the same stream or FN_E_PACK_UTF8. */
    if (whole == FN_PACK_OBJECT && !one->fallback && !(flags & FN_PACK_RAW)) {
        size_t out_len = one->out_len;
        char *copy = malloc(out_len ? out_len : 1);
        if (!copy)
            abort();
        memcpy(copy, one->out, out_len);
        once = fn_pack_unpackb(one, (const char *)data, size, &lim, flags | FN_PACK_LOADS_UTF8);
        assert(once == (int64_t)out_len || once == FN_E_PACK_EXTRA);
        assert(memcmp(copy, one->out, out_len) == 0);
        free(copy);
    }

    fn_pack_dec_free(one);
    fn_pack_dec_free(stream);
    fn_pack_enc_free(enc);
    return 0;
}
