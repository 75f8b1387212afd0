/* fuzz_wire_poll.c - libFuzzer target for csrc/wire.c's engine side: what
 * csrc/loop.c does with a wire connection's input (fn_wire_poll_take,
 * fn_wire_poll_finish, fn_wire_poll_frame).
 *
 * Input: one byte (the connection's version 1..3, or 0: negotiating with a
 * table of two versions and two codecs; max_body; threshold), then the
 * stream. The stream is taken the way conn_wire takes it:
 * whole in one round, and in pieces (split at points from the input's own
 * PRNG), one round per piece, a round ending at WAIT or NEED_DATA and the
 * stream ending at the first CALLER. Checks, beyond memory safety:
 *   - both ways take the same requests (ids, in order), answer the same
 *     PINGs, and stop at the same byte with the same verdict;
 *   - every frame taken is the frame fn_wire_next returns at that byte
 *     (same fields and body), and where the stream stops with CALLER
 *     fn_wire_next returns a frame or an error there, never need-data;
 *   - WAIT comes only after a request of the same round; HELLO is taken only
 *     while no version is set, and sets one the table has;
 *   - a round's batch has a marshal stream exactly when it took requests,
 *     and the round's stream of bodies, taken as the results, is framed
 *     whole: one RESPONSE per request, its id, the connection's version.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "pack.h"
#include "status.h"
#include "wire.h"

#define MAX_LOG 8192

typedef struct {
    uint64_t log[MAX_LOG];  /* requests (id), PINGs (1 << 40 | id), in order */
    size_t n;
    size_t stop;            /* bytes consumed when it stopped */
    int verdict;            /* CALLER, or NEED_DATA at the end */
} trace;

static fn_pack_limits lim = {512, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 19};
static char into[4096];

static void note(trace *t, uint64_t v)
{
    if (t->n < MAX_LOG)
        t->log[t->n] = v;
    t->n++;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* One round over buf[pos..end): returns the new pos; sets *verdict. */
static size_t round_of(fn_wire_poll *p, fn_wire_work *w, fn_wire_conn *c,
                       const char *buf, size_t pos, size_t end, trace *t, int *verdict,
                       fn_wire_decoder *ref)
{
    size_t taken = 0;
    int r = FN_WIRE_TAKE_NEED_DATA;
    fn_wire_poll_reset(p);
    while (pos < end) {
        fn_wire_frame f, g;
        uint8_t before = c->version;
        r = fn_wire_poll_take(p, w, 7, c, buf + pos, end - pos, taken != 0, &f);
        if (r == FN_E_NOMEM)
            abort();
        if (r == FN_WIRE_TAKE_WAIT)
            CHECK(taken > 0);
        if (r == FN_WIRE_TAKE_HELLO) {
            size_t n;
            const char *reply;
            CHECK(before == 0 && taken == 0 && f.type == FN_WIRE_HELLO);
            CHECK(c->version >= 1 && c->version <= c->hello->max_version);
            reply = fn_wire_hello_reply(c, &n);
            CHECK(c->version == 1 ? c->mask == 0 && n == 2 && memcmp(reply, "h1", 2) == 0
                                  : n == 3 && reply[2] == "abcd"[c->mask]);
            CHECK(c->threshold == (c->mask & 1 ? 64 : c->mask & 2 ? 128 : UINT64_MAX));
            note(t, (2ull << 40) | ((uint64_t)c->version << 8) | c->mask);
        } else {
            CHECK(c->version == before || (before == 0 && r == FN_WIRE_TAKE_REQUEST));
        }
        if (r == FN_WIRE_TAKE_REQUEST || r == FN_WIRE_TAKE_PING || r == FN_WIRE_TAKE_DROP ||
            r == FN_WIRE_TAKE_HELLO) {
            /* the reference decoder sees the same frame here */
            CHECK(fn_wire_next(ref, &g) == FN_WIRE_FRAME);
            CHECK(g.version == f.version && g.type == f.type && g.flags == f.flags &&
                  g.request_id == f.request_id && g.len == f.len &&
                  memcmp(g.body, f.body, f.len) == 0);
            CHECK(f.len <= c->max_body);
            if (r == FN_WIRE_TAKE_REQUEST) {
                CHECK(f.type == FN_WIRE_REQUEST && f.version == c->version);
                note(t, f.request_id);
                taken++;
            } else if (r == FN_WIRE_TAKE_PING) {
                CHECK(f.type == FN_WIRE_PING && taken == 0);
                note(t, (1ull << 40) | f.request_id);
            } else if (r == FN_WIRE_TAKE_DROP) {
                CHECK(f.type == FN_WIRE_PONG || f.type == FN_WIRE_GOAWAY);
            }
            pos += FN_WIRE_HEADER_SIZE + f.len;
            continue;
        }
        break;
    }
    if (r == FN_WIRE_TAKE_REQUEST || r == FN_WIRE_TAKE_PING || r == FN_WIRE_TAKE_DROP ||
        r == FN_WIRE_TAKE_HELLO)
        r = FN_WIRE_TAKE_NEED_DATA;  /* it took every byte there was */
    *verdict = r;
    {
        int64_t s = fn_wire_poll_finish(p, w);
        CHECK(s >= 0);
        CHECK((s > 0) == (taken > 0));
        CHECK(p->n == taken);
        if (s > 0) {
            /* the bodies' own stream as the results: echoed, framed whole */
            size_t len = (size_t)(s >> 3), n, at = 0, i = 0;
            char *m = malloc(len);
            int64_t fr;
            if (!m)
                abort();
            memcpy(m, (s & FN_WIRE_SESS_INTO) ? into : w->out, len);
            fr = fn_wire_poll_frame(p, w, m, len);
            CHECK(fr >= 0 || fr == FN_E_WIRE_REPLY);
            if (fr >= 0) {
                const uint8_t *out = (const uint8_t *)w->out;
                n = (size_t)(fr >> 1);
                while (at < n) {
                    CHECK(n - at >= FN_WIRE_HEADER_SIZE && i < taken);
                    CHECK(out[at] == FN_WIRE_MAGIC && out[at + 1] == p->reqs[i].version &&
                          out[at + 2] == FN_WIRE_RESPONSE && out[at + 3] == 0);
                    CHECK(be32(out + at + 4) == p->ids[i]);
                    at += FN_WIRE_HEADER_SIZE + be32(out + at + 8);
                    CHECK(at == p->reqs[i].end);
                    i++;
                }
                CHECK(at == n && i == taken);
            }
            free(m);
        }
    }
    return pos;
}

static void take_all(const char *buf, size_t size, const fn_wire_conn *c0, const size_t *cuts,
                     size_t ncuts, trace *t, fn_wire_work *w)
{
    fn_wire_conn conn = *c0, *c = &conn;
    fn_wire_poll *p = fn_wire_poll_new();
    fn_wire_decoder *ref = fn_wire_new(c->max_body);
    size_t pos = 0, k = 0, avail;
    int verdict = FN_WIRE_TAKE_NEED_DATA;
    if (!p || !ref || fn_wire_feed(ref, buf, size) != FN_OK)
        abort();
    for (;;) {
        avail = k < ncuts ? cuts[k] : size;
        if (avail < pos)
            avail = pos;
        pos = round_of(p, w, c, buf, pos, avail, t, &verdict, ref);
        if (verdict == FN_WIRE_TAKE_CALLER)
            break;
        if (verdict == FN_WIRE_TAKE_WAIT)
            continue;  /* the next round goes on from there, with no new bytes */
        if (k >= ncuts)
            break;
        k++;
    }
    if (verdict == FN_WIRE_TAKE_CALLER) {
        /* Python's decoder has a frame or an error there, not need-data */
        fn_wire_frame g;
        CHECK(fn_wire_next(ref, &g) != FN_WIRE_NEED_DATA);
    }
    t->stop = pos;
    t->verdict = verdict;
    fn_wire_poll_free(p);
    fn_wire_free(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static trace whole, split;
    size_t cuts[16], ncuts = 0;
    fn_wire_conn c;
    fn_wire_work *w;
    fuzz_rng rng;
    const char *in;

    if (size < 1)
        return 0;
    static const uint64_t thresholds[2] = {64, 128};
    /* (v - 1) << 2 | mask: v1 "h1" (every mask), v2 "h2a" .. "h2d" by mask */
    static const uint64_t ends[8] = {2, 4, 6, 8, 11, 14, 17, 20};
    static const fn_wire_hello hello = {2, 2, "zstd\0lz4", thresholds, "h1h1h1h1h2ah2bh2ch2d",
                                        ends};
    memset(&c, 0, sizeof c);
    c.version = (uint8_t)(data[0] & 3);
    c.hello = c.version ? NULL : &hello;
    c.max_body = (uint64_t)((data[0] >> 2) & 7) * 32;
    c.threshold = data[0] & 0x20 ? 64 : UINT64_MAX;
    in = (const char *)data + 1;
    size--;
    rng = fuzz_rng_of(data, size + 1);
    while (ncuts < 16 && size && (fuzz_next(&rng) & 3)) {
        size_t cut = (size_t)(fuzz_next(&rng) % (size + 1));
        size_t i = ncuts++;
        while (i > 0 && cuts[i - 1] > cut) {  /* keep them sorted */
            cuts[i] = cuts[i - 1];
            i--;
        }
        cuts[i] = cut;
    }
    w = fn_wire_work_new(&lim, 0, 1 << 20, 512, into, sizeof into);
    if (!w)
        abort();
    memset(&whole, 0, sizeof whole);
    memset(&split, 0, sizeof split);
    take_all(in, size, &c, NULL, 0, &whole, w);
    take_all(in, size, &c, cuts, ncuts, &split, w);
    CHECK(whole.verdict == split.verdict);
    CHECK(whole.stop == split.stop);
    CHECK(whole.n == split.n);
    CHECK(memcmp(whole.log, split.log, (whole.n < MAX_LOG ? whole.n : MAX_LOG) * 8) == 0);
    fn_wire_work_free(w);
    return 0;
}
