/* fuzz_resp_reply.c - csrc/resp.c: RESP2 and RESP3 replies.
 *
 * Input: byte 0 picks the limits, the rest is the stream, parsed whole and
 * split at random points (feed + parse after every piece). Checked:
 *   - both give the same tokens (type and values; the bytes of each span)
 *     and the same error (code and detail);
 *   - offsets: done_bytes <= pos <= scan <= buffered, spans in the batch;
 *   - limits: no bulk over max_bulk, no aggregate over max_count, no more
 *     than max_depth aggregates open, no line over its limit;
 *   - aggregates in the batch are whole: each declares as many children as
 *     follow it;
 *   - errors are sticky and input after one is dropped;
 *   - fn_resp_bulk_array: the stream cut into items at random points is
 *     written as an array of bulk strings no longer than its cap, and that
 *     parses back to exactly those items (a '*' of their count, then one
 *     '$' span per item, holding its bytes).
 */
#include <string.h>

#include "fuzz_util.h"
#include "resp.h"

static const uint64_t BULK[4] = {0, 5, 64, 512u << 20};
static const uint64_t COUNT[4] = {0, 1, 3, ((uint64_t)1 << 62) - 1};
static const uint64_t LINE[4] = {0, 4, 16, 512u << 20};
static const uint64_t DEPTH[4] = {0, 1, 4, 128};


static int has_span(int64_t t)
{
    return t == '+' || t == '-' || t == '$' || t == ',' || t == '(' || t == '=';
}

static int is_aggregate(int64_t t)
{
    return t == '*' || t == '%' || t == '~' || t == '>';
}

static void check_layout(const fn_resp_reply *r)
{
    size_t avail = r->raw.end - r->raw.start;

    CHECK(r->done_bytes <= r->pos && r->pos <= r->scan && r->scan <= avail);
    CHECK(r->done_tok <= r->ntok && r->ntok % 3 == 0 && r->done_tok % 3 == 0);
    CHECK((uint64_t)r->depth <= r->lim.max_depth);
    CHECK(r->skip <= r->depth);
    CHECK(fn_resp_reply_buffered(r) == avail - r->done_bytes);
}

/* The batch's tokens; each top-level value is whole. */
static void record(const fn_resp_reply *r, fuzz_rec *out)
{
    const char *data = fn_resp_reply_data(r);
    uint64_t open = 0;  /* values still owed by the aggregates read so far */

    for (size_t i = 0; i < r->done_tok; i += 3) {
        const int64_t *t = r->tok + i;

        if (open)
            open--;
        fuzz_put(out, t, 8);
        if (has_span(t[0])) {
            CHECK(t[1] >= 0 && t[1] <= t[2] && (uint64_t)t[2] <= r->done_bytes);
            if (t[0] == '$' || t[0] == '=')
                CHECK((uint64_t)(t[2] - t[1]) <= r->lim.max_bulk);
            if (t[0] == '+')
                CHECK((uint64_t)(t[2] - t[1]) <= r->lim.max_line);
            if (t[0] == '=')
                CHECK(t[2] - t[1] >= 4 && data[t[1] + 3] == ':');
            fuzz_put(out, &(uint64_t){(uint64_t)(t[2] - t[1])}, 8);
            fuzz_put(out, data + t[1], (size_t)(t[2] - t[1]));
        } else {
            fuzz_put(out, t + 1, 16);
            if (is_aggregate(t[0])) {
                uint64_t pairs = t[0] == '%' ? (uint64_t)t[1] / 2 : (uint64_t)t[1];

                CHECK(t[1] >= 0 && pairs <= r->lim.max_count);
                CHECK(t[0] != '%' || t[1] % 2 == 0);
                open += (uint64_t)t[1];
            }
        }
    }
    CHECK(open == 0);
}

static void parse(fn_resp_reply *r, fuzz_rec *out)
{
    int rc = fn_resp_reply_parse(r);

    check_layout(r);
    record(r, out);
    if (rc == FN_OK)
        return;
    CHECK(rc <= FN_E_RESP_MULTIBULK_LEN && rc > FN_E_RESP_MULTIBULK_LEN - 100);
    CHECK(rc != FN_E_RESP_QUERY_BUFFER);
    if (out->err) {
        CHECK(rc == out->err && r->err_value == out->err_value);
        return;
    }
    out->err = rc;
    out->err_value = r->err_value;
    CHECK(fn_resp_reply_parse(r) == rc);  /* sticky, and reports nothing new */
    CHECK(r->done_tok == 0);
}

/* The items are data cut at random points; encode, then parse back. */
static void check_bulk_array(const uint8_t *data, size_t size, fuzz_rng rng)
{
    fn_resp_limits lim = {UINT64_MAX >> 1, UINT64_MAX >> 1, UINT64_MAX >> 1, 4, 325, 4300, 0};
    uint64_t *lens = malloc((2 * size + 1) * sizeof *lens);  /* at most size of each kind */
    size_t n = 0, cap;
    char *out;
    int64_t len;
    fn_resp_reply *r;

    CHECK(lens != NULL);
    for (size_t off = 0; off < size; n++) {
        size_t piece = fuzz_chunk(&rng, size - off);

        if ((fuzz_next(&rng) & 7) == 0 && n < size)
            piece = 0;  /* empty items too */
        lens[n] = piece;
        off += piece;
    }
    cap = fn_resp_bulk_array_cap(n, size);
    out = malloc(cap ? cap : 1);
    CHECK(out != NULL);
    len = fn_resp_bulk_array((const char *)data, size, lens, n, out, cap);
    CHECK(len > 0 && (size_t)len <= cap);
    CHECK(fn_resp_bulk_array((const char *)data, size, lens, n, out, cap - 1) == FN_E_ARG);

    r = fn_resp_reply_new(&lim);
    CHECK(r != NULL);
    CHECK(fn_resp_reply_feed(r, out, (size_t)len) == 0);
    CHECK(fn_resp_reply_parse(r) == FN_OK);
    CHECK(fn_resp_reply_done_bytes(r) == (size_t)len && r->done_tok == 3 * (n + 1));
    CHECK(r->tok[0] == '*' && r->tok[1] == (int64_t)n);
    for (size_t i = 0, at = 0; i < n; i++) {
        const int64_t *t = r->tok + 3 * (i + 1);

        CHECK(t[0] == '$' && (uint64_t)(t[2] - t[1]) == lens[i]);
        CHECK(memcmp(fn_resp_reply_data(r) + t[1], data + at, (size_t)lens[i]) == 0);
        at += (size_t)lens[i];
    }
    fn_resp_reply_free(r);
    free(out);
    free(lens);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fn_resp_limits lim = {0};
    fn_resp_reply *r;
    fuzz_rec whole = {0}, split = {0};
    fuzz_rng rng;

    if (size < 1)
        return 0;
    lim.max_bulk = BULK[data[0] & 3];
    lim.max_count = COUNT[(data[0] >> 2) & 3];
    lim.max_line = LINE[(data[0] >> 4) & 3];
    lim.max_depth = DEPTH[(data[0] >> 6) & 3];
    lim.max_double = 325;
    lim.max_big_number = 4300;
    rng = fuzz_rng_of(data, size);
    data++;
    size--;

    r = fn_resp_reply_new(&lim);
    CHECK(r != NULL);
    CHECK(fn_resp_reply_feed(r, (const char *)data, size) == 0);
    parse(r, &whole);
    if (whole.err) {
        size_t before = fn_resp_reply_buffered(r);

        CHECK(fn_resp_reply_feed(r, "+OK\r\n", 5) == 0);
        CHECK(fn_resp_reply_parse(r) == whole.err && fn_resp_reply_buffered(r) <= before);
    }
    fn_resp_reply_free(r);

    r = fn_resp_reply_new(&lim);
    CHECK(r != NULL);
    for (size_t off = 0; off < size;) {
        size_t n = fuzz_chunk(&rng, size - off);

        CHECK(fn_resp_reply_feed(r, (const char *)data + off, n) == 0);
        parse(r, &split);
        off += n;
    }
    CHECK(fuzz_same(&split, &whole));

    fn_resp_reply_free(r);
    free(whole.rec);
    free(split.rec);
    check_bulk_array(data, size, rng);
    return 0;
}
