/* wire.c - see wire.h. */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

#include "framer.h"
#include "marshal.h"
#include "status.h"

struct fn_wire_decoder {
    fn_framer raw;       /* the buffer; only its RAW storage is used */
    uint64_t max_body;
    size_t pending;      /* bytes of the frame last returned, dropped on the next call */
    int err;
    uint64_t err_value;
};

fn_wire_decoder *fn_wire_new(uint64_t max_body)
{
    fn_wire_decoder *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    fn_framer_init(&d->raw, FN_FRAME_RAW, 0, 0);
    d->max_body = max_body;
    return d;
}

void fn_wire_free(fn_wire_decoder *d)
{
    if (d == NULL)
        return;
    fn_framer_release(&d->raw);
    free(d);
}

void fn_wire_reset(fn_wire_decoder *d)
{
    fn_framer_reset(&d->raw);
    d->pending = 0;
    d->err = 0;
    d->err_value = 0;
}

static void drop_pending(fn_wire_decoder *d)
{
    if (d->pending) {
        fn_framer_skip(&d->raw, d->pending);
        d->pending = 0;
    }
}

int fn_wire_feed(fn_wire_decoder *d, const char *data, size_t len)
{
    if (d->err)
        return FN_OK;  /* discarded after an error */
    drop_pending(d);
    return fn_framer_feed(&d->raw, data, len) == 0 ? FN_OK : FN_E_NOMEM;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int fail(fn_wire_decoder *d, int err, uint64_t value)
{
    d->err = err;
    d->err_value = value;
    return err;
}

int fn_wire_next(fn_wire_decoder *d, fn_wire_frame *out)
{
    const uint8_t *h;
    size_t avail;
    uint32_t len;

    if (d->err)
        return d->err;
    drop_pending(d);
    avail = fn_framer_buffered(&d->raw);
    if (avail == 0)
        return FN_WIRE_NEED_DATA;
    h = (const uint8_t *)d->raw.buf + d->raw.start;
    /* Each header byte is judged as soon as it is buffered. */
    if (h[0] != FN_WIRE_MAGIC)
        return fail(d, FN_E_WIRE_MAGIC, h[0]);
    if (avail >= 2 && h[1] == 0)
        return fail(d, FN_E_WIRE_VERSION, 0);
    if (avail >= 3 && (h[2] < FN_WIRE_HELLO || h[2] > FN_WIRE_GOAWAY))
        return fail(d, FN_E_WIRE_TYPE, h[2]);
    if (avail < FN_WIRE_HEADER_SIZE)
        return FN_WIRE_NEED_DATA;
    len = be32(h + 8);
    if (len > d->max_body)
        return fail(d, FN_E_WIRE_TOO_LARGE, len);
    if (avail - FN_WIRE_HEADER_SIZE < len)
        return FN_WIRE_NEED_DATA;
    out->version = h[1];
    out->type = h[2];
    out->flags = h[3];
    out->request_id = be32(h + 4);
    out->body = (const char *)h + FN_WIRE_HEADER_SIZE;
    out->len = len;
    d->pending = FN_WIRE_HEADER_SIZE + (size_t)len;
    return FN_WIRE_FRAME;
}

size_t fn_wire_buffered(const fn_wire_decoder *d)
{
    return fn_framer_buffered(&d->raw) - d->pending;
}

uint64_t fn_wire_err_value(const fn_wire_decoder *d)
{
    return d->err_value;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int fn_wire_header(uint8_t version, uint8_t type, uint8_t flags,
                   uint32_t request_id, uint64_t len, uint8_t *out)
{
    if (version == 0)
        return FN_E_WIRE_VERSION;
    if (type < FN_WIRE_HELLO || type > FN_WIRE_GOAWAY)
        return FN_E_WIRE_TYPE;
    if (len > FN_WIRE_MAX_BODY)
        return FN_E_WIRE_TOO_LARGE;
    out[0] = FN_WIRE_MAGIC;
    out[1] = version;
    out[2] = type;
    out[3] = flags;
    put_be32(out + 4, request_id);
    put_be32(out + 8, (uint32_t)len);
    return FN_WIRE_HEADER_SIZE;
}

void fn_wire_unread(fn_wire_decoder *d)
{
    d->pending = 0;
}

/* ------------------------------------------------------------------------ */
/* The server session: a read's requests in, its replies out                 */

struct fn_wire_sess {
    fn_wire_decoder dec;
    uint8_t version;     /* REQUESTs of this version are batched; 0: none */
    uint32_t *ids;       /* owned; the request ids of the batch */
    size_t nids;
    size_t ids_cap;
    char *scratch;       /* owned; the batch's MessagePack array, then the reply frames */
    size_t scratch_cap;
};

/* A scratch buffer past this is released after use, so a connection that
 * once sent a large read does not keep its size while idle. */
#define SCRATCH_KEEP 65536

fn_wire_sess *fn_wire_sess_new(uint64_t max_body)
{
    fn_wire_sess *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    fn_framer_init(&s->dec.raw, FN_FRAME_RAW, 0, 0);
    s->dec.max_body = max_body;
    return s;
}

void fn_wire_sess_free(fn_wire_sess *s)
{
    if (s == NULL)
        return;
    fn_framer_release(&s->dec.raw);
    free(s->ids);
    free(s->scratch);
    free(s);
}

fn_wire_decoder *fn_wire_sess_decoder(fn_wire_sess *s)
{
    return &s->dec;
}

void fn_wire_sess_set_version(fn_wire_sess *s, uint8_t version)
{
    s->version = version;
}

/* Make a scratch buffer (*buf, *cap) hold at least need bytes: 0 or
 * FN_E_NOMEM. */
static int buf_room(char **buf, size_t *bcap, size_t need)
{
    size_t cap;
    char *p;

    if (need <= *bcap)
        return 0;
    cap = *bcap ? *bcap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return FN_E_NOMEM;
        cap *= 2;
    }
    p = realloc(*buf, cap);
    if (p == NULL)
        return FN_E_NOMEM;
    *buf = p;
    *bcap = cap;
    return 0;
}

static void buf_trim(char **buf, size_t *cap)
{
    if (*cap > SCRATCH_KEEP) {
        free(*buf);
        *buf = NULL;
        *cap = 0;
    }
}

static int scratch_room(fn_wire_sess *s, size_t need)
{
    return buf_room(&s->scratch, &s->scratch_cap, need);
}

static void scratch_trim(fn_wire_sess *s)
{
    buf_trim(&s->scratch, &s->scratch_cap);
}

/* Append a request id to (*ids, *n, *cap): FN_OK or FN_E_NOMEM. */
static int push_u32(uint32_t **ids, size_t *n, size_t *ncap, uint32_t v)
{
    if (*n == *ncap) {
        size_t cap = *ncap ? 2 * *ncap : 16;
        uint32_t *p;
        if (cap > SIZE_MAX / sizeof *p)
            return FN_E_NOMEM;
        p = realloc(*ids, cap * sizeof *p);
        if (p == NULL)
            return FN_E_NOMEM;
        *ids = p;
        *ncap = cap;
    }
    (*ids)[(*n)++] = v;
    return FN_OK;
}

int fn_wire_sess_push_id(fn_wire_sess *s, uint32_t request_id)
{
    return push_u32(&s->ids, &s->nids, &s->ids_cap, request_id);
}

const uint32_t *fn_wire_sess_ids(const fn_wire_sess *s, size_t *n)
{
    *n = s->nids;
    return s->ids;
}

/* The MessagePack array header of the batch: 0xdd and a 32-bit count. */
#define BATCH_HEAD 5

fn_wire_work *fn_wire_work_new(const fn_pack_limits *lim, int flags, uint64_t max_buffer,
                               uint64_t max_depth, char *into, size_t into_cap)
{
    fn_wire_work *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->pd = fn_pack_dec_new(lim, flags);
    w->enc = fn_pack_enc_new();
    if (w->pd == NULL || w->enc == NULL) {
        fn_wire_work_free(w);
        return NULL;
    }
    w->lim = *lim;
    w->flags = flags;
    w->max_buffer = max_buffer;
    w->max_depth = max_depth;
    w->into = into;
    w->into_cap = into_cap;
    return w;
}

void fn_wire_work_free(fn_wire_work *w)
{
    if (w == NULL)
        return;
    fn_pack_dec_free(w->pd);
    fn_pack_enc_free(w->enc);
    free(w);
}

/* Hand len bytes at p to the caller: copied into w->into when they fit. */
static int64_t hand_over(fn_wire_work *w, const char *p, size_t len, int shift, int into_flag)
{
    w->out = p;
    if (len <= w->into_cap) {
        if (len)  /* p may be NULL then (no scratch yet) */
            memcpy(w->into, p, len);
        return ((int64_t)len << shift) | into_flag;
    }
    return (int64_t)len << shift;
}

/* The marshal stream of the n bodies lying behind BATCH_HEAD in the
 * scratch buffer (*buf, *cap; used bytes), each checked alone by
 * fn_pack_unpackb already (last_ok: the last check was the last body's, so
 * w->pd->out still holds its stream): (length << 3) | FN_WIRE_SESS_INTO,
 * the stream at w->into when it fits, else at w->out; or FN_E_NOMEM. */
static int64_t bodies_stream(fn_wire_work *w, char **buf, size_t *cap, size_t used, uint64_t n,
                             int last_ok)
{
    fn_pack_limits batch_lim;
    fn_pack_dec *pd = w->pd;
    int64_t rc;

    if (n == 1) {
        /* The body's own stream (its check wrote it, unless a refused body
         * came after) under a list header: no second transcoding. A list
         * without FLAG_REF takes no reference index, so the body's
         * references stay as they are. */
        size_t total;
        char *dst;
        if (!last_ok && fn_pack_unpackb(pd, *buf + BATCH_HEAD, used - BATCH_HEAD, &w->lim,
                                        w->flags) < 0)
            return FN_E_NOMEM;  /* it decoded a moment ago: only memory can fail */
        total = 5 + pd->out_len;
        dst = total <= w->into_cap ? w->into : NULL;
        if (dst == NULL) {
            if (buf_room(buf, cap, total) < 0)
                return FN_E_NOMEM;
            dst = *buf;
        }
        fn_marshal_header(dst, FN_MARSHAL_LIST, 1);
        memcpy(dst + 5, pd->out, pd->out_len);
        w->out = dst;
        return ((int64_t)total << 3) | (dst == w->into ? FN_WIRE_SESS_INTO : 0);
    }
    (*buf)[0] = (char)0xdd;
    put_be32((uint8_t *)*buf + 1, (uint32_t)n);
    batch_lim = w->lim;
    batch_lim.max_depth = w->lim.max_depth + 1;  /* the array around the bodies */
    rc = fn_pack_unpackb(pd, *buf, used, &batch_lim, w->flags);
    buf_trim(buf, cap);
    if (rc < 0) {
        /* Every body decoded alone and n is within max_array, so this is
         * out of memory (anything else would be a bug in the checks). */
        return rc == FN_E_NOMEM ? FN_E_NOMEM : FN_E_ARG;
    }
    return hand_over(w, pd->out, (size_t)rc, 3, FN_WIRE_SESS_INTO);
}

int64_t fn_wire_sess_read(fn_wire_sess *s, fn_wire_work *w, const char *data, size_t len,
                          int append)
{
    fn_wire_frame f;
    const fn_pack_limits *lim = &w->lim;
    fn_pack_dec *pd = w->pd;
    size_t used = BATCH_HEAD, first = append ? s->nids : 0;
    uint64_t n = 0;
    int64_t rc;
    int why = FN_WIRE_SESS_NEED_DATA, last_ok = 0;

    w->out = NULL;
    scratch_trim(s);  /* the last replies were copied out */
    if (len && fn_wire_feed(&s->dec, data, len) != FN_OK)
        return FN_E_NOMEM;
    s->nids = first;
    for (;;) {
        int r = fn_wire_next(&s->dec, &f);
        if (r == FN_WIRE_NEED_DATA)
            break;
        if (r != FN_WIRE_FRAME) {  /* a sticky error: the caller raises it */
            why = FN_WIRE_SESS_CALLER;
            break;
        }
        if (f.type == FN_WIRE_PONG || f.type == FN_WIRE_GOAWAY)
            continue;
        if (f.type != FN_WIRE_REQUEST || s->version == 0 || f.version != s->version
            || (f.flags & (FN_WIRE_FLAG_CODEC_MASK | FN_WIRE_FLAG_METADATA))
            || f.len > w->max_buffer || n >= lim->max_array || n >= UINT32_MAX) {
            fn_wire_unread(&s->dec);
            why = FN_WIRE_SESS_CALLER;
            break;
        }
        /* Each body must be one object alone, or the array's boundaries
         * would not be the frames'. */
        rc = fn_pack_unpackb(pd, f.body, f.len, lim, w->flags);
        last_ok = rc >= 0;  /* pd->out holds this body's stream */
        if (rc < 0) {
            if (rc == FN_E_NOMEM)
                return FN_E_NOMEM;
            fn_wire_unread(&s->dec);
            why = rc == FN_E_PACK_FALLBACK ? FN_WIRE_SESS_FALLBACK : FN_WIRE_SESS_CALLER;
            break;
        }
        if (scratch_room(s, used + f.len) < 0 || fn_wire_sess_push_id(s, f.request_id) < 0) {
            fn_wire_unread(&s->dec);
            return FN_E_NOMEM;
        }
        memcpy(s->scratch + used, f.body, f.len);
        used += f.len;
        n++;
    }
    if (n == 0)
        return why;
    rc = bodies_stream(w, &s->scratch, &s->scratch_cap, used, n, last_ok);
    return rc < 0 ? rc : rc | why;
}

/* The length of the MessagePack item at p[0..len) including what it
 * contains, or 0 if it does not end within len. Counts the items still due
 * instead of recursing. The input is fn_pack_encode's output, but the walk
 * checks every length against len anyway. */
static size_t msgpack_span(const uint8_t *p, size_t len)
{
    size_t pos = 0;
    uint64_t due = 1;

    while (due) {
        uint8_t b;
        uint64_t skip = 0, more = 0;
        size_t w = 0;

        if (pos >= len)
            return 0;
        b = p[pos++];
        due--;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            continue;
        if (b <= 0x8f) {
            more = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            more = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: w = 1; goto sized;
            case 0xc5: case 0xda: w = 2; goto sized;
            case 0xc6: case 0xdb: w = 4; goto sized;
            case 0xc7: w = 1; skip = 1; goto sized;
            case 0xc8: w = 2; skip = 1; goto sized;
            case 0xc9: w = 4; skip = 1; goto sized;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xde: w = 2; goto counted;
            case 0xdd: case 0xdf: w = 4; goto counted;
            default: return 0;  /* 0xc1 */
            }
        }
        goto advance;
    sized:
    counted:
        if (len - pos < w)
            return 0;
        {
            uint64_t v = 0;
            for (size_t i = 0; i < w; i++)
                v = (v << 8) | p[pos + i];
            pos += w;
            if (b == 0xdc || b == 0xdd)
                more = v;
            else if (b == 0xde || b == 0xdf)
                more = 2 * v;
            else
                skip += v;
        }
    advance:
        if (skip > len - pos)
            return 0;
        pos += (size_t)skip;
        due += more;
    }
    return pos;
}

/* Frame a marshal stream of results (m, len): a list of count items, item
 * i becoming a RESPONSE (flags 0) to ids[i] of version reqs[i].version,
 * refused at reqs[i].threshold body bytes or more, its frame ending at
 * reqs[i].end (reqs NULL: version and threshold for every item, no ends).
 * The frames go to w->into when they fit, else to the scratch buffer (*buf,
 * *cap); w->out is where. (length << 1) | FN_WIRE_SESS_INTO_REPLY (into),
 * FN_E_NOMEM, or FN_E_WIRE_REPLY (see fn_wire_sess_replies). */
static int64_t frame_results(fn_wire_work *w, char **buf, size_t *cap, const char *m,
                             size_t len, size_t count_due, const uint32_t *ids,
                             fn_wire_req *reqs, uint8_t version, uint64_t threshold)
{
    fn_pack_enc *e = w->enc;
    const uint8_t *p;
    uint8_t *dst;
    size_t plen, pos, used = 0, total;
    uint64_t count;
    int64_t rc;

    w->out = NULL;
    buf_trim(buf, cap);
    rc = fn_pack_encode(e, m, len, w->max_depth + 1, 0);  /* + 1: the list around them */
    if (rc < 0)
        return FN_E_WIRE_REPLY;
    p = (const uint8_t *)e->out;
    plen = (size_t)rc;
    if (plen == 0)
        return FN_E_WIRE_REPLY;
    if ((p[0] & 0xf0) == 0x90) {
        count = p[0] & 0x0f;
        pos = 1;
    } else if (p[0] == 0xdc && plen >= 3) {
        count = ((uint64_t)p[1] << 8) | p[2];
        pos = 3;
    } else if (p[0] == 0xdd && plen >= 5) {
        count = be32(p + 1);
        pos = 5;
    } else {
        return FN_E_WIRE_REPLY;  /* not a list */
    }
    if (count != count_due || (reqs == NULL && version == 0))
        return FN_E_WIRE_REPLY;
    total = plen - pos + FN_WIRE_HEADER_SIZE * (size_t)count;
    if (total <= w->into_cap) {  /* straight into the caller's buffer */
        dst = (uint8_t *)w->into;
    } else {
        if (buf_room(buf, cap, total) < 0)
            return FN_E_NOMEM;
        dst = (uint8_t *)*buf;
    }
    for (size_t i = 0; i < count; i++) {
        size_t span = msgpack_span(p + pos, plen - pos);
        uint8_t *h = dst + used;
        if (span == 0 || span >= (reqs ? reqs[i].threshold : threshold) ||
            span > FN_WIRE_MAX_BODY)
            return FN_E_WIRE_REPLY;
        h[0] = FN_WIRE_MAGIC;
        h[1] = reqs ? reqs[i].version : version;
        h[2] = FN_WIRE_RESPONSE;
        h[3] = 0;
        put_be32(h + 4, ids[i]);
        put_be32(h + 8, (uint32_t)span);
        memcpy(h + FN_WIRE_HEADER_SIZE, p + pos, span);
        used += FN_WIRE_HEADER_SIZE + span;
        pos += span;
        if (reqs)
            reqs[i].end = used;
    }
    if (pos != plen)
        return FN_E_WIRE_REPLY;
    w->out = (const char *)dst;
    return ((int64_t)used << 1) | (dst == (uint8_t *)w->into ? FN_WIRE_SESS_INTO_REPLY : 0);
}

int64_t fn_wire_sess_replies(fn_wire_sess *s, fn_wire_work *w, const char *m, size_t len,
                             uint64_t threshold)
{
    return frame_results(w, &s->scratch, &s->scratch_cap, m, len, s->nids, s->ids, NULL,
                         s->version, threshold);
}

/* ------------------------------------------------------------------------ */
/* The engine's side: the requests of every wire connection of a poll       */

fn_wire_poll *fn_wire_poll_new(void)
{
    return calloc(1, sizeof(fn_wire_poll));
}

void fn_wire_poll_free(fn_wire_poll *p)
{
    if (p == NULL)
        return;
    free(p->scratch);
    free(p->reqs);
    free(p->ids);
    free(p);
}

void fn_wire_poll_reset(fn_wire_poll *p)
{
    p->n = 0;
    p->used = BATCH_HEAD;
    p->last_ok = 0;
    buf_trim(&p->scratch, &p->scratch_cap);
}

int fn_wire_scan(const char *buf, size_t len, uint64_t max_body, fn_wire_frame *f)
{
    const uint8_t *h = (const uint8_t *)buf;
    uint32_t body;

    if (len == 0)
        return FN_WIRE_NEED_DATA;
    if (h[0] != FN_WIRE_MAGIC)
        return FN_E_WIRE_MAGIC;
    if (len >= 2 && h[1] == 0)
        return FN_E_WIRE_VERSION;
    if (len >= 3 && (h[2] < FN_WIRE_HELLO || h[2] > FN_WIRE_GOAWAY))
        return FN_E_WIRE_TYPE;
    if (len < FN_WIRE_HEADER_SIZE)
        return FN_WIRE_NEED_DATA;
    body = be32(h + 8);
    if (body > max_body)
        return FN_E_WIRE_TOO_LARGE;
    if (len - FN_WIRE_HEADER_SIZE < body)
        return FN_WIRE_NEED_DATA;
    f->version = h[1];
    f->type = h[2];
    f->flags = h[3];
    f->request_id = be32(h + 4);
    f->body = buf + FN_WIRE_HEADER_SIZE;
    f->len = body;
    return FN_WIRE_FRAME;
}

int fn_wire_poll_add(fn_wire_poll *p, fn_wire_work *w, uint64_t conn, const fn_wire_frame *f,
                     uint64_t threshold)
{
    int64_t rc;
    fn_wire_req *r;

    if (f->len > w->max_buffer || p->n >= w->lim.max_array || p->n >= UINT32_MAX)
        return FN_WIRE_SESS_CALLER;
    rc = fn_pack_unpackb(w->pd, f->body, f->len, &w->lim, w->flags);
    if (rc < 0) {
        p->last_ok = 0;
        return rc == FN_E_NOMEM ? FN_E_NOMEM : FN_WIRE_SESS_CALLER;
    }
    p->last_ok = 1;
    if (p->n == p->reqs_cap) {
        size_t cap = p->reqs_cap ? 2 * p->reqs_cap : 64;
        if (cap > SIZE_MAX / sizeof *p->reqs)
            return FN_E_NOMEM;
        r = realloc(p->reqs, cap * sizeof *r);
        if (r == NULL)
            return FN_E_NOMEM;
        p->reqs = r;
        p->reqs_cap = cap;
    }
    if (buf_room(&p->scratch, &p->scratch_cap, p->used + f->len) < 0 ||
        push_u32(&p->ids, &p->n, &p->ids_cap, f->request_id) < 0) {
        p->last_ok = 0;
        return FN_E_NOMEM;
    }
    r = &p->reqs[p->n - 1];
    r->conn = conn;
    r->threshold = threshold;
    r->version = f->version;
    r->end = 0;
    memcpy(p->scratch + p->used, f->body, f->len);
    p->used += f->len;
    return 0;
}

/* Read a MessagePack str, array or map header at p[*pos..len) (kind: 0xa0,
 * 0x90 or 0x80): its length or count, or -1 for another kind. */
static int64_t mp_header(const uint8_t *p, size_t len, size_t *pos, uint8_t kind)
{
    uint8_t b;
    size_t w;
    uint64_t v = 0;
    if (*pos >= len)
        return -1;
    b = p[(*pos)++];
    if (kind == 0xa0 && (b & 0xe0) == 0xa0)
        return b & 0x1f;
    if (kind != 0xa0 && (b & 0xf0) == kind)
        return b & 0x0f;
    if (kind == 0xa0 && b >= 0xd9 && b <= 0xdb)
        w = (size_t)1 << (b - 0xd9);
    else if (kind == 0x90 && (b == 0xdc || b == 0xdd))
        w = b == 0xdc ? 2 : 4;
    else if (kind == 0x80 && (b == 0xde || b == 0xdf))
        w = b == 0xde ? 2 : 4;
    else
        return -1;
    if (len - *pos < w)
        return -1;
    for (size_t i = 0; i < w; i++)
        v = (v << 8) | p[(*pos)++];
    return (int64_t)v;
}

/* An unsigned int at p[*pos..len), or -1 for anything else. */
static int64_t mp_uint(const uint8_t *p, size_t len, size_t *pos)
{
    uint8_t b;
    size_t w;
    uint64_t v = 0;
    if (*pos >= len)
        return -1;
    b = p[(*pos)++];
    if (b <= 0x7f)
        return b;
    if (b < 0xcc || b > 0xcf)
        return -1;
    w = (size_t)1 << (b - 0xcc);
    if (len - *pos < w)
        return -1;
    for (size_t i = 0; i < w; i++)
        v = (v << 8) | p[(*pos)++];
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Negotiate a HELLO body as WireSession._hello does, when it is well formed
 * (wire.h, fn_loop_wire): 0 with c's version, mask and threshold set, or
 * -1 (Python decides). The body is first checked whole by fn_pack_unpackb,
 * so the walk below reads a valid object. */
static int hello_negotiate(fn_wire_work *w, fn_wire_conn *c, const fn_wire_frame *f)
{
    const fn_wire_hello *h = c->hello;
    const uint8_t *p = (const uint8_t *)f->body;
    size_t len = f->len, pos = 0;
    uint64_t versions = 0;
    unsigned codecs = 0;
    int seen_versions = 0, seen_codecs = 0, v;
    int64_t n;

    if (!h || f->len > w->max_buffer ||
        fn_pack_unpackb(w->pd, f->body, f->len, &w->lim, w->flags) < 0)
        return -1;
    if ((n = mp_header(p, len, &pos, 0x80)) < 0)
        return -1;
    for (int64_t k = 0; k < n; k++) {
        int64_t klen = mp_header(p, len, &pos, 0xa0), items;
        int is_versions, is_codecs;
        if (klen < 0 || (uint64_t)klen > len - pos)
            return -1;  /* a key that is not a str */
        is_versions = klen == 8 && memcmp(p + pos, "versions", 8) == 0;
        is_codecs = klen == 6 && memcmp(p + pos, "codecs", 6) == 0;
        pos += (size_t)klen;
        if (!is_versions && !is_codecs) {  /* another key: ignored */
            size_t span = msgpack_span(p + pos, len - pos);
            if (span == 0)
                return -1;
            pos += span;
            continue;
        }
        if ((is_versions && seen_versions++) || (is_codecs && seen_codecs++))
            return -1;  /* twice: the last would win in Python */
        if ((items = mp_header(p, len, &pos, 0x90)) < 0)
            return -1;
        for (int64_t i = 0; i < items; i++) {
            if (is_versions) {
                int64_t ver = mp_uint(p, len, &pos);
                if (ver < 0)
                    return -1;
                if (ver >= 1 && ver <= h->max_version)
                    versions |= (uint64_t)1 << ver;
            } else {
                int64_t slen = mp_header(p, len, &pos, 0xa0);
                const char *name = h->names;
                if (slen < 0 || (uint64_t)slen > len - pos)
                    return -1;
                for (unsigned j = 0; j < h->ncodecs; j++) {
                    size_t nlen = strlen(name);
                    if (nlen == (size_t)slen && memcmp(name, p + pos, nlen) == 0)
                        codecs |= 1u << j;
                    name += nlen + 1;
                }
                pos += (size_t)slen;
            }
        }
    }
    if (!seen_versions || versions == 0 || pos != len)
        return -1;  /* no versions (Python's KeyError), or none in common: Python's ERROR */
    for (v = 63; !(versions & ((uint64_t)1 << v)); v--)
        ;
    c->version = (uint8_t)v;
    c->mask = v >= 2 ? (uint8_t)codecs : 0;
    c->threshold = UINT64_MAX;
    for (unsigned j = 0; j < h->ncodecs; j++)
        if (c->mask & (1u << j)) {
            c->threshold = h->thresholds[j];
            break;
        }
    return 0;
}

const char *fn_wire_hello_reply(const fn_wire_conn *c, size_t *len)
{
    const fn_wire_hello *h = c->hello;
    size_t i = ((size_t)(c->version - 1) << h->ncodecs) | c->mask;
    uint64_t from = i ? h->ends[i - 1] : 0;
    *len = (size_t)(h->ends[i] - from);
    return h->replies + from;
}

int fn_wire_poll_take(fn_wire_poll *p, fn_wire_work *w, uint64_t conn, fn_wire_conn *c,
                      const char *buf, size_t len, int taken, fn_wire_frame *f)
{
    int r = fn_wire_scan(buf, len, c->max_body, f);
    if (r == FN_WIRE_NEED_DATA)
        return FN_WIRE_TAKE_NEED_DATA;
    if (r != FN_WIRE_FRAME)
        return taken ? FN_WIRE_TAKE_WAIT : FN_WIRE_TAKE_CALLER;  /* Python's decoder says it */
    if (c->version == 0 && f->type == FN_WIRE_HELLO) {  /* no request came before it */
        p->last_ok = 0;  /* the check below uses the decoder */
        return hello_negotiate(w, c, f) == 0 ? FN_WIRE_TAKE_HELLO : FN_WIRE_TAKE_CALLER;
    }
    if (f->type == FN_WIRE_REQUEST && (f->version == c->version ||
                                       (c->version == 0 && f->version == 1)) &&
        !(f->flags & (FN_WIRE_FLAG_CODEC_MASK | FN_WIRE_FLAG_METADATA))) {
        r = fn_wire_poll_add(p, w, conn, f, c->version ? c->threshold : UINT64_MAX);
        if (r == FN_E_NOMEM)
            return FN_E_NOMEM;
        if (r == 0) {
            if (c->version == 0) {  /* a v1 peer that sent no HELLO */
                c->version = 1;
                c->threshold = UINT64_MAX;
            }
            return FN_WIRE_TAKE_REQUEST;
        }
    } else if (f->type == FN_WIRE_PING) {
        /* its PONG must follow the replies of the requests before it */
        return taken ? FN_WIRE_TAKE_WAIT : FN_WIRE_TAKE_PING;
    } else if (f->type == FN_WIRE_PONG || f->type == FN_WIRE_GOAWAY) {
        return FN_WIRE_TAKE_DROP;
    }
    return taken ? FN_WIRE_TAKE_WAIT : FN_WIRE_TAKE_CALLER;
}

int64_t fn_wire_poll_finish(fn_wire_poll *p, fn_wire_work *w)
{
    w->out = NULL;
    if (p->n == 0)
        return 0;
    return bodies_stream(w, &p->scratch, &p->scratch_cap, p->used, p->n, p->last_ok);
}

int64_t fn_wire_poll_frame(fn_wire_poll *p, fn_wire_work *w, const char *m, size_t len)
{
    return frame_results(w, &p->scratch, &p->scratch_cap, m, len, p->n, p->ids, p->reqs, 0, 0);
}
