/* fuzz_resp_req.c - csrc/resp.c: Redis requests (multibulk and inline).
 *
 * Input: byte 0 picks the limits, the rest is the stream. It is parsed
 * whole (feed, parse, commands read from the tokens) and split at random
 * points (fn_resp_req_feed_parse, the server's path: commands read back
 * from its marshal stream). Checked:
 *   - both give the same commands and the same error (code and detail);
 *   - the marshal stream says what the tokens say;
 *   - offsets: done_bytes <= pos <= scan <= buffered, tokens in the batch;
 *   - limits: every argument of a multibulk command is at most max_bulk
 *     bytes, a command has 1 .. max(max_count, inline line) arguments, and
 *     the command in progress never holds more than its query limit
 *     (bytes of its finished parts + 8 per token, resp.h) plus the part
 *     still arriving, itself within max_bulk or max_line;
 *   - errors are sticky and input after one is dropped.
 */
#include <string.h>

#include "fuzz_util.h"
#include "resp.h"

static const uint64_t BULK[4] = {0, 5, 64, 512u << 20};
static const uint64_t COUNT[4] = {0, 1, 3, 2147483647};
static const uint64_t LINE[4] = {0, 4, 16, 65536};
static const uint64_t QUERY[4] = {48, 256, 4096, 1u << 30};


static void check_layout(const fn_resp_req *p)
{
    size_t avail = p->raw.end - p->raw.start;

    CHECK(p->done_bytes <= p->pos && p->pos <= p->scan && p->scan <= avail);
    CHECK(p->done_tok <= p->ntok && p->ntok <= p->tok_cap);
    CHECK(fn_resp_req_buffered(p) == avail - p->done_bytes);
}

/* The command in progress: its finished parts within max_query, the part
 * still arriving within its own limit. An argument whose "$<length>" line
 * has been read but whose payload has not is still arriving: pos is past
 * that line (at most max_line bytes and its CRLF), which max_query does
 * not count until the argument completes. */
static void check_held(const fn_resp_req *p)
{
    uint64_t held = (p->pos - p->done_bytes) + 8 * (uint64_t)(p->ntok - p->done_tok);
    uint64_t part = (p->raw.end - p->raw.start) - p->pos;
    uint64_t bound = p->lim.max_bulk > p->lim.max_line ? p->lim.max_bulk : p->lim.max_line;
    uint64_t header = p->bulk >= 0 ? p->lim.max_line + 2 : 0;

    CHECK(held <= p->lim.max_query + header);
    CHECK(part <= bound + 2);
}

/* The batch's commands, from its tokens. */
static void record_tokens(const fn_resp_req *p, fuzz_rec *r)
{
    const char *data = fn_resp_req_data(p);
    size_t i = 0;

    while (i < p->done_tok) {
        uint64_t argc = p->tok[i++];

        CHECK(argc >= 1 && i + 2 * argc <= p->done_tok);
        CHECK(argc <= p->lim.max_count || argc <= p->lim.max_line / 2 + 1);
        fuzz_put(r, &argc, 8);
        for (uint64_t a = 0; a < argc; a++, i += 2) {
            uint64_t start = p->tok[i], end = p->tok[i + 1];

            CHECK(start <= end && end <= p->done_bytes);
            CHECK(end - start <= p->lim.max_bulk || end - start <= p->lim.max_line);
            fuzz_put(r, &(uint64_t){end - start}, 8);
            fuzz_put(r, data + start, (size_t)(end - start));
        }
    }
}

static uint64_t u32_at(const char *s)
{
    const uint8_t *u = (const uint8_t *)s;

    return u[0] | (uint64_t)u[1] << 8 | (uint64_t)u[2] << 16 | (uint64_t)u[3] << 24;
}

/* The batch's commands, from the marshal stream (a list of lists of bytes). */
static void record_marshal(const char *s, size_t n, fuzz_rec *r)
{
    const char *end = s + n;
    uint64_t commands;

    CHECK(n >= 5 && s[0] == '[');
    commands = u32_at(s + 1);
    s += 5;
    for (uint64_t c = 0; c < commands; c++) {
        uint64_t argc;

        CHECK(end - s >= 5 && s[0] == '[');
        argc = u32_at(s + 1);
        s += 5;
        fuzz_put(r, &argc, 8);
        for (uint64_t a = 0; a < argc; a++) {
            uint64_t len;

            CHECK(end - s >= 5 && s[0] == 's');
            len = u32_at(s + 1);
            s += 5;
            CHECK((uint64_t)(end - s) >= len);
            fuzz_put(r, &len, 8);
            fuzz_put(r, s, (size_t)len);
            s += len;
        }
    }
    CHECK(s == end);
}

static void after_parse(fn_resp_req *p, fuzz_rec *r, int rc)
{
    check_layout(p);
    if (rc == FN_OK) {
        check_held(p);
        return;
    }
    CHECK(rc <= FN_E_RESP_MULTIBULK_LEN && rc > FN_E_RESP_MULTIBULK_LEN - 100);
    if (r->err) {
        CHECK(rc == r->err && p->err_value == r->err_value);
        return;
    }
    r->err = rc;
    r->err_value = p->err_value;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fn_resp_limits lim = {0};
    fn_resp_req *p;
    fuzz_rec whole = {0}, split = {0};
    fuzz_rng rng;
    int rc;

    if (size < 1)
        return 0;
    lim.max_bulk = BULK[data[0] & 3];
    lim.max_count = COUNT[(data[0] >> 2) & 3];
    lim.max_line = LINE[(data[0] >> 4) & 3];
    lim.max_query = QUERY[(data[0] >> 6) & 3];
    rng = fuzz_rng_of(data, size);
    data++;
    size--;

    p = fn_resp_req_new(&lim);
    CHECK(p != NULL);
    CHECK(fn_resp_req_feed(p, (const char *)data, size) == 0);
    rc = fn_resp_req_parse(p);
    after_parse(p, &whole, rc);
    record_tokens(p, &whole);
    if (rc != FN_OK) {
        size_t before = fn_resp_req_buffered(p);

        CHECK(fn_resp_req_parse(p) == rc);  /* sticky */
        CHECK(fn_resp_req_feed(p, "*1\r\n$4\r\nPING\r\n", 14) == 0);
        CHECK(fn_resp_req_parse(p) == rc && fn_resp_req_buffered(p) <= before);
    }
    fn_resp_req_free(p);

    p = fn_resp_req_new(&lim);
    CHECK(p != NULL);
    for (size_t off = 0; off < size;) {
        size_t n = fuzz_chunk(&rng, size - off);

        rc = fn_resp_req_feed_parse(p, (const char *)data + off, n);
        CHECK(rc != FN_E_NOMEM);
        after_parse(p, &split, rc);
        if (p->out_len)
            record_marshal(p->out, p->out_len, &split);
        off += n;
    }
    CHECK(fuzz_same(&split, &whole));

    fn_resp_req_free(p);
    free(whole.rec);
    free(split.rec);
    return 0;
}
