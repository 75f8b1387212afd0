/* fuzz_http1.c - libFuzzer target for csrc/http1.c.
 *
 * Input: one byte of flags (which parser, the split step, small limits),
 * then the bytes. Checks, beyond memory safety:
 *   - a head parsed whole and parsed from growing prefixes (step bytes
 *     more each call) gives the same answer: the same head and spans or
 *     the same error code, never a different one for a different split;
 *   - every span lies inside the head, in order; no more fields than
 *     max_fields; a complete head is never longer than max_header_bytes
 *     (plus skipped empty lines);
 *   - errors are sticky: the next call returns the same code;
 *   - the chunked decoder, whole and in steps, gives the same data bytes,
 *     position and result, and never more data than max_body;
 *   - fn_http1_simple_requests (flag 8) with room for many records and with
 *     room for one (called again from *pos) writes the same words and stops
 *     at the same place; each record is the head fn_http1_parse_request
 *     finds there, HTTP/1.1, ends where the next begins; the words taken
 *     from the prefix that ends at *pos are the same.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define MAX_FIELDS 8

static int head_once(int response, const uint8_t *buf, size_t len, size_t step,
                     size_t line, size_t bytes, fn_http1_head *head, size_t *fields)
{
    fn_http1_head_state st;
    memset(&st, 0, sizeof st);
    int rc = FN_HTTP1_NEED_MORE;
    size_t end = step ? 0 : len;
    for (;;) {
        if (step)
            end = end + step < len ? end + step : len;
        rc = response ? fn_http1_parse_response(&st, buf, 0, end, bytes, MAX_FIELDS, head, fields)
                      : fn_http1_parse_request(&st, buf, 0, end, line, bytes, MAX_FIELDS, head,
                                               fields);
        if (rc != FN_HTTP1_NEED_MORE || end == len)
            break;
    }
    if (rc < 0) {
        int again = response ? fn_http1_parse_response(&st, buf, 0, len, bytes, MAX_FIELDS, head, fields)
                             : fn_http1_parse_request(&st, buf, 0, len, line, bytes, MAX_FIELDS,
                                                      head, fields);
        assert(again == rc);
    }
    return rc;
}

static int chunked_once(const uint8_t *buf, size_t len, size_t step, uint64_t max_body,
                        uint8_t *out, size_t *out_len, size_t *pos_out)
{
    fn_http1_chunked ch;
    memset(&ch, 0, sizeof ch);
    size_t spans[8], n, pos = 0, end = step ? 0 : len;
    int rc = FN_HTTP1_NEED_MORE;
    *out_len = 0;
    for (;;) {
        if (step)
            end = end + step < len ? end + step : len;
        do {
            rc = fn_http1_chunked_decode(&ch, buf, pos, end, max_body, 64, 4, 32, spans, 4, &n,
                                         &pos);
            for (size_t i = 0; rc >= 0 && i < n; i++) {
                assert(spans[2 * i] <= spans[2 * i + 1] && spans[2 * i + 1] <= end);
                memcpy(out + *out_len, buf + spans[2 * i], spans[2 * i + 1] - spans[2 * i]);
                *out_len += spans[2 * i + 1] - spans[2 * i];
            }
        } while (rc == FN_HTTP1_NEED_MORE && n == 4);
        if (rc != FN_HTTP1_NEED_MORE || end == len)
            break;
    }
    assert(*out_len <= max_body);
    if (rc < 0)
        assert(fn_http1_chunked_decode(&ch, buf, pos, len, max_body, 64, 4, 32, spans, 4, &n,
                                       &pos) == rc);
    *pos_out = pos;
    return rc;
}

#define RECORD (FN_HTTP1_REQ_WORDS + 4 * MAX_FIELDS)

/* fn_http1_simple_requests into words[0..max_words), again from *pos while
 * it stops for room; the words written in all, the stop in *pos. */
static size_t simple_all(const uint8_t *buf, size_t len, size_t line, size_t bytes,
                         size_t *words, size_t max_words, size_t *pos)
{
    size_t total = 0, at = 0;
    for (;;) {
        fn_http1_batch b = {line, bytes, MAX_FIELDS, words + total, max_words, 0};
        int64_t n = fn_http1_simple_requests((const char *)buf, at, len, &b);
        assert(n >= 0 && (size_t)n <= max_words);
        assert(b.pos >= at && b.pos <= len && (n == 0) == (b.pos == at));
        *pos = b.pos;
        total += (size_t)n;
        if (n == 0 || max_words - (size_t)n >= RECORD)
            return total;
        at = b.pos;
    }
}

static void simple_requests(const uint8_t *buf, size_t len, size_t line, size_t bytes)
{
    enum { MANY = 64 * RECORD };
    static size_t a[MANY], b[MANY * 2], c[MANY];
    size_t pa, pb, pc;
    fn_http1_batch small = {line, bytes, MAX_FIELDS, a, RECORD - 1, 0};
    assert(fn_http1_simple_requests((const char *)buf, 0, len, &small) == FN_E_ARG);
    size_t na = simple_all(buf, len, line, bytes, a, MANY, &pa);
    size_t nb = simple_all(buf, len, line, bytes, b, RECORD, &pb);
    if (na + RECORD > MANY)
        return;  /* more records than a's room: compared as far as both go below */
    assert(na == nb && pa == pb && memcmp(a, b, na * sizeof *a) == 0);
    size_t nc = simple_all(buf, pa, line, bytes, c, MANY, &pc);
    assert(nc == na && pc == pa && memcmp(a, c, na * sizeof *a) == 0);
    size_t i = 0, start = 0;
    while (i < na) {
        fn_http1_head_state st;
        fn_http1_head h;
        size_t fields[4 * MAX_FIELDS];
        memset(&st, 0, sizeof st);
        assert(fn_http1_parse_request(&st, buf, start, len, line, bytes, MAX_FIELDS, &h,
                                      fields) == FN_HTTP1_DONE);
        assert(h.minor == 1 && a[i] == h.end && a[i + 1] == h.a && a[i + 2] == h.b);
        assert(a[i + 3] == h.c && a[i + 4] == h.d && a[i + 5] == h.nfields);
        assert(memcmp(a + i + FN_HTTP1_REQ_WORDS, fields, 4 * h.nfields * sizeof *a) == 0);
        start = h.end;
        i += FN_HTTP1_REQ_WORDS + 4 * h.nfields;
    }
    assert(i == na && start == pa);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    const uint8_t *buf = data + 1;
    size_t len = size - 1;
    size_t step = (size_t)(flags >> 4) + 1;
    int small = flags & 2;
    size_t line = small ? 24 : 8192, bytes = small ? 64 : 65536;

    if (flags & 1) {
        uint8_t *a = malloc(len + 1), *b = malloc(len + 1);
        size_t alen, blen, apos, bpos;
        if (!a || !b)
            abort();
        uint64_t max_body = small ? 16 : 1 << 20;
        int ra = chunked_once(buf, len, 0, max_body, a, &alen, &apos);
        int rb = chunked_once(buf, len, step, max_body, b, &blen, &bpos);
        assert(ra == rb);
        if (ra >= 0) {
            assert(alen == blen && memcmp(a, b, alen) == 0);
            if (ra == FN_HTTP1_DONE)
                assert(apos == bpos);
        }
        free(a);
        free(b);
        return 0;
    }
    if (flags & 8) {
        simple_requests(buf, len, line, bytes);
        return 0;
    }
    int response = flags & 4;
    fn_http1_head h1, h2;
    size_t f1[4 * MAX_FIELDS], f2[4 * MAX_FIELDS];
    int r1 = head_once(response, buf, len, 0, line, bytes, &h1, f1);
    int r2 = head_once(response, buf, len, step, line, bytes, &h2, f2);
    assert(r1 == r2);
    if (r1 == FN_HTTP1_DONE) {
        assert(memcmp(&h1, &h2, sizeof h1) == 0);
        assert(memcmp(f1, f2, 4 * h1.nfields * sizeof(size_t)) == 0);
        assert(h1.nfields <= MAX_FIELDS && h1.start <= h1.end && h1.end <= len);
        assert(h1.end - h1.start <= bytes);
        size_t last = h1.start;
        for (size_t i = 0; i < h1.nfields; i++) {
            size_t *f = f1 + 4 * i;
            assert(last <= f[0] && f[0] < f[1] && f[1] < f[2] && f[2] <= f[3] && f[3] <= h1.end);
            last = f[3];
        }
    }
    return 0;
}
