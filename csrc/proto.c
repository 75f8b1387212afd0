/* proto.c - the Protocol Buffers wire codec (see proto.h). */
#include "proto.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* descriptor.proto's field types */
enum {
    T_DOUBLE = 1, T_FLOAT = 2, T_INT64 = 3, T_UINT64 = 4, T_INT32 = 5, T_FIXED64 = 6,
    T_FIXED32 = 7, T_BOOL = 8, T_STRING = 9, T_GROUP = 10, T_MESSAGE = 11, T_BYTES = 12,
    T_UINT32 = 13, T_ENUM = 14, T_SFIXED32 = 15, T_SFIXED64 = 16, T_SINT32 = 17, T_SINT64 = 18
};

/* The wire type of each field type (index: type). */
static const uint8_t WIRE[19] = {0, 1, 5, 0, 0, 0, 1, 5, 0, 2, 3, 2, 2, 0, 0, 5, 1, 0, 0};

/* The smallest magnitude that rounds to infinity as a float (2^128 - 2^103). */
#define FLOAT_OVERFLOW 340282356779733661637539395458142568448.0

/* NaNs cross between float and double by their bits (sign, payload, the
 * quiet bit), so a signaling NaN in a float field comes back as it was, as
 * upb keeps it; a conversion by the FPU would quiet it. */
static double nan_to_double(uint32_t f)
{
    uint64_t b = (uint64_t)(f >> 31) << 63 | 0x7ff0000000000000ull | (uint64_t)(f & 0x7fffffu) << 29;
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static uint32_t nan_to_float(double d)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    uint32_t m = (uint32_t)((b >> 29) & 0x7fffffu);
    if (!m)
        m = 0x400000u;   /* a payload only in the low bits: keep it a (quiet) NaN */
    return (uint32_t)(b >> 63) << 31 | 0x7f800000u | m;
}

static int packable(int t) { return WIRE[t] == 0 || WIRE[t] == 1 || WIRE[t] == 5; }

/* marshal's type codes (CPython Python/marshal.c) */
#define M_NULL '0'
#define M_NONE 'N'
#define M_FALSE 'F'
#define M_TRUE 'T'
#define M_INT 'i'
#define M_LONG 'l'
#define M_BFLOAT 'g'
#define M_STRING 's'
#define M_UNICODE 'u'
#define M_TUPLE '('
#define M_LIST '['
#define M_DICT '{'
#define M_FLAG_REF 0x80

/* ------------------------------------------------------------------------ */
/* Growable arrays                                                          */

static int grow_slow(void **arr, size_t *cap, size_t need, size_t size)
{
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2 / size)
            return FN_E_NOMEM;
        cap2 *= 2;
    }
    void *p = realloc(*arr, cap2 * size);
    if (!p)
        return FN_E_NOMEM;
    *arr = p;
    *cap = cap2;
    return 0;
}

static inline int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    return need <= *cap ? 0 : grow_slow(arr, cap, need, size);
}

/* A marshal node (encoder input), in pre-order: a container's first child
 * follows it, `next` is the node after its whole subtree. */
typedef struct mnode {
    uint8_t kind;            /* marshal type code; 'l' only when over 64 bits is 'L' */
    uint8_t neg;             /* integers: negative */
    uint32_t count;          /* containers: items (dict: pairs) */
    uint32_t next;
    const uint8_t *p;        /* str / bytes data */
    uint64_t u;              /* integer magnitude, str/bytes length, double bits */
} mnode;

typedef struct eframe {
    uint32_t msg;
    uint32_t fi;             /* next field */
    uint32_t vnode;          /* node of field fi's value */
    uint32_t item;           /* repeated message: next element node; map: next order index */
    uint32_t left;           /* elements still to write of the current field */
    uint32_t depth;
    size_t mark;             /* placeholder byte of this message's length */
    size_t entry_mark;       /* map value: the entry's length placeholder */
    uint8_t close;           /* 0 top, 1 length, 2 end group, 3 map value */
} eframe;

typedef struct mapkey {
    uint64_t k;              /* order key of ints and bools */
    const uint8_t *p;        /* strings */
    uint64_t len;
    uint32_t key;            /* key node */
} mapkey;

typedef struct occ {
    const uint8_t *p;        /* value start; NULL: bytes made here, in work.synth */
    const uint8_t *end;      /* value end */
    uint32_t next;           /* next occurrence of the same field, 0 if none */
    uint32_t soff, slen;     /* p == NULL: synth[soff .. soff + slen) */
    uint8_t wt;
} occ;

typedef struct dframe {
    uint32_t msg;
    uint32_t fi;
    uint32_t heads;          /* offset in heads[]: (head, tail) per field, then unknown */
    uint32_t occ_mark;       /* occurrences to drop when the frame pops */
    uint32_t cur;            /* the occurrence to emit next (repeated message, map) */
    uint32_t depth;
    uint8_t busy;            /* 0, or the field being emitted element by element: 1 list, 2 map */
    uint8_t map_entry;
} dframe;

typedef struct work {
    mnode *nodes; size_t nodes_cap;
    uint32_t *nstack; size_t nstack_cap;   /* marshal parse: open containers */
    eframe *ef; size_t ef_cap;
    mapkey *keys; size_t keys_cap;
    uint32_t *order; size_t order_cap;
    occ *occs; size_t occs_cap;
    uint32_t *heads; size_t heads_cap;
    dframe *df; size_t df_cap;
    uint32_t *groups; size_t groups_cap;
    uint8_t *synth; size_t synth_len, synth_cap;   /* unknown fields made from closed enums */
} work;

fn_proto_ctx *fn_proto_ctx_new(void)
{
    fn_proto_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->priv = calloc(1, sizeof(work));
    if (!c->priv) {
        free(c);
        return NULL;
    }
    return c;
}

void fn_proto_ctx_free(fn_proto_ctx *c)
{
    if (!c)
        return;
    work *w = c->priv;
    free(w->nodes);
    free(w->nstack);
    free(w->ef);
    free(w->keys);
    free(w->order);
    free(w->occs);
    free(w->heads);
    free(w->df);
    free(w->groups);
    free(w->synth);
    free(w);
    free(c->out);
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

static int reserve_slow(fn_proto_ctx *c, size_t n)
{
    if (c->out_len + n < c->out_len)
        return FN_E_NOMEM;
    return grow_slow((void **)&c->out, &c->out_cap, c->out_len + n, 1);
}

static inline int reserve(fn_proto_ctx *c, size_t n)
{
    return c->out_cap - c->out_len >= n ? 0 : reserve_slow(c, n);
}

static inline void put_u8(fn_proto_ctx *c, uint8_t b) { c->out[c->out_len++] = b; }

static void put_bytes(fn_proto_ctx *c, const void *p, size_t n)
{
    if (n)
        memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* n (2, 4 or 8) little-endian bytes of v; room reserved by the caller. */
static inline void put_le(fn_proto_ctx *c, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));   /* compilers make this one store */
    memcpy(c->out + c->out_len, b, (size_t)n);
    c->out_len += (size_t)n;
}

static int varint_len(uint64_t v)
{
    int n = 1;
    while (v > 0x7f) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void put_varint(fn_proto_ctx *c, uint64_t v)
{
    while (v > 0x7f) {
        c->out[c->out_len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    c->out[c->out_len++] = (uint8_t)v;
}

/* ------------------------------------------------------------------------ */
/* UTF-8 (strict: no overlong forms, surrogates or values past U+10FFFF)    */

static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            if (!(x & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf)
            need = 1;
        else if (b >= 0xe0 && b <= 0xef) {
            need = 2;
            if (b == 0xe0)
                lo = 0xa0;
            else if (b == 0xed)
                hi = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            need = 3;
            if (b == 0xf0)
                lo = 0x90;
            else if (b == 0xf4)
                hi = 0x8f;
        } else
            return 0;
        if (n - i - 1 < need)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += need + 1;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Encoder: marshal stream -> nodes                                         */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* Parse a whole marshal stream (the subset marshal.dumps(flat, 2) writes
 * for flat forms) into w->nodes. Returns the node count or FN_E_*. */
static int64_t parse_marshal(work *w, const uint8_t *s, size_t len)
{
    size_t pos = 0, n = 0, sp = 0;
    for (;;) {
        if (pos >= len)
            return FN_E_PROTO_FLAT;
        uint8_t t = s[pos++];
        if (t & M_FLAG_REF)
            return FN_E_PROTO_FLAT;
        if (t == M_NULL) {
            /* closes the innermost dict */
            if (!sp)
                return FN_E_PROTO_FLAT;
            mnode *d = &w->nodes[w->nstack[sp - 1]];
            if (d->kind != M_DICT || (d->count & 1))
                return FN_E_PROTO_FLAT;
            d->count /= 2;
            d->next = (uint32_t)n;
            sp--;
            goto closed;
        }
        if (n >= UINT32_MAX)
            return FN_E_PROTO_FLAT;
        if (grow((void **)&w->nodes, &w->nodes_cap, n + 1, sizeof(mnode)))
            return FN_E_NOMEM;
        mnode *x = &w->nodes[n];
        x->kind = t;
        x->neg = 0;
        x->count = 0;
        x->next = 0;
        x->p = NULL;
        x->u = 0;
        switch (t) {
        case M_NONE: case M_TRUE: case M_FALSE:
            break;
        case M_INT: {
            if (len - pos < 4)
                return FN_E_PROTO_FLAT;
            int32_t v = (int32_t)rd32(s + pos);
            pos += 4;
            x->neg = v < 0;
            x->u = v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v;
            break;
        }
        case M_LONG: {
            if (len - pos < 4)
                return FN_E_PROTO_FLAT;
            int32_t nd = (int32_t)rd32(s + pos);
            pos += 4;
            x->neg = nd < 0;
            uint64_t digits = nd < 0 ? (uint64_t)(-(int64_t)nd) : (uint64_t)nd;
            if (digits > (len - pos) / 2)
                return FN_E_PROTO_FLAT;
            uint64_t mag = 0;
            for (uint64_t i = 0; i < digits; i++) {
                uint64_t d = (uint64_t)s[pos + 2 * i] | (uint64_t)s[pos + 2 * i + 1] << 8;
                if (i >= 5 || (i == 4 && d > 0xf))
                    x->kind = 'L';  /* over 64 bits */
                else
                    mag |= d << (15 * i);
            }
            pos += 2 * digits;
            x->u = mag;
            break;
        }
        case M_BFLOAT:
            if (len - pos < 8)
                return FN_E_PROTO_FLAT;
            x->u = rd64(s + pos);
            pos += 8;
            break;
        case M_STRING: case M_UNICODE: {
            if (len - pos < 4)
                return FN_E_PROTO_FLAT;
            uint32_t l = rd32(s + pos);
            pos += 4;
            if (l > len - pos)
                return FN_E_PROTO_FLAT;
            x->p = s + pos;
            x->u = l;
            pos += l;
            break;
        }
        case M_TUPLE: case M_LIST: {
            if (len - pos < 4)
                return FN_E_PROTO_FLAT;
            x->count = rd32(s + pos);
            pos += 4;
            x->kind = M_LIST;
            if (x->count > len - pos)   /* each item takes a byte at least */
                return FN_E_PROTO_FLAT;
            break;
        }
        case M_DICT:
            break;
        default:
            return FN_E_PROTO_FLAT;
        }
        n++;
        if (t == M_DICT || ((t == M_TUPLE || t == M_LIST) && x->count)) {
            if (grow((void **)&w->nstack, &w->nstack_cap, sp + 1, sizeof(uint32_t)))
                return FN_E_NOMEM;
            w->nstack[sp++] = (uint32_t)(n - 1);
            continue;
        }
        x->next = (uint32_t)n;
    closed:
        /* count the finished item in its container; close finished lists */
        while (sp) {
            mnode *top = &w->nodes[w->nstack[sp - 1]];
            if (top->kind == M_DICT) {
                top->count++;
                break;
            }
            /* lists count down in `u` */
            if (++top->u < top->count)
                break;
            top->next = (uint32_t)n;
            sp--;
        }
        if (!sp)
            break;
    }
    if (pos != len)
        return FN_E_PROTO_FLAT;
    return (int64_t)n;
}

/* ------------------------------------------------------------------------ */
/* Encoder: nodes -> wire                                                   */

/* An integer node as (negative, magnitude); bools are 0 and 1. */
static int node_int(const mnode *x, int *neg, uint64_t *mag)
{
    switch (x->kind) {
    case M_INT: case M_LONG: case 'L':
        *neg = x->neg;
        *mag = x->u;
        return x->kind == 'L' ? FN_E_PROTO_RANGE : 0;
    case M_TRUE: *neg = 0; *mag = 1; return 0;
    case M_FALSE: *neg = 0; *mag = 0; return 0;
    default:
        return FN_E_PROTO_TYPE;
    }
}

static int node_double(const mnode *x, double *d)
{
    int neg, rc;
    uint64_t mag;
    if (x->kind == M_BFLOAT) {
        memcpy(d, &x->u, 8);
        return 0;
    }
    if ((rc = node_int(x, &neg, &mag)))
        return rc;   /* over 64 bits: FN_E_PROTO_RANGE, as the Python twin */
    *d = neg ? -(double)mag : (double)mag;
    return 0;
}

/* Write one value of type t (no tag). *zero tells whether it is the
 * type's proto3 default (floats by their bits, as upb). */
static int put_value(fn_proto_ctx *c, int t, const mnode *x, int *zero)
{
    int neg = 0, rc;
    uint64_t mag = 0, v;
    double d;
    if ((rc = reserve(c, 16)))
        return rc;
    switch (t) {
    case T_INT32: case T_ENUM: case T_SINT32: case T_SFIXED32:
        if ((rc = node_int(x, &neg, &mag)))
            return rc;
        if (neg ? mag > 0x80000000ull : mag > 0x7fffffffull)
            return FN_E_PROTO_RANGE;
        break;
    case T_UINT32: case T_FIXED32:
        if ((rc = node_int(x, &neg, &mag)))
            return rc;
        if ((neg && mag) || mag > 0xffffffffull)
            return FN_E_PROTO_RANGE;
        break;
    case T_INT64: case T_SINT64: case T_SFIXED64:
        if ((rc = node_int(x, &neg, &mag)))
            return rc;
        if (neg ? mag > 0x8000000000000000ull : mag > 0x7fffffffffffffffull)
            return FN_E_PROTO_RANGE;
        break;
    case T_UINT64: case T_FIXED64:
        if ((rc = node_int(x, &neg, &mag)))
            return rc;
        if (neg && mag)
            return FN_E_PROTO_RANGE;
        break;
    case T_BOOL:
        rc = node_int(x, &neg, &mag);
        if (rc == FN_E_PROTO_TYPE)
            return rc;
        mag = rc == FN_E_PROTO_RANGE || mag != 0;
        neg = 0;
        break;
    case T_DOUBLE: case T_FLOAT:
        if ((rc = node_double(x, &d)))
            return rc;
        break;
    case T_STRING: case T_BYTES:
        if (x->kind != (t == T_STRING ? M_UNICODE : M_STRING))
            return FN_E_PROTO_TYPE;
        if (t == T_STRING && !utf8_valid(x->p, (size_t)x->u))
            return FN_E_PROTO_BAD_STR;
        if ((rc = reserve(c, 10 + (size_t)x->u)))
            return rc;
        *zero = x->u == 0;
        put_varint(c, x->u);
        put_bytes(c, x->p, (size_t)x->u);
        return 0;
    default:
        return FN_E_PROTO_FLAT;
    }
    v = neg ? (uint64_t)0 - mag : mag;   /* two's complement */
    switch (t) {
    case T_INT32: case T_ENUM: case T_INT64: case T_UINT32: case T_UINT64: case T_BOOL:
        put_varint(c, v);
        *zero = v == 0;
        return 0;
    case T_SINT32:
        v = (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)((int32_t)(uint32_t)v >> 31));
        put_varint(c, v);
        *zero = v == 0;
        return 0;
    case T_SINT64:
        v = (v << 1) ^ (uint64_t)((int64_t)v >> 63);
        put_varint(c, v);
        *zero = v == 0;
        return 0;
    case T_FIXED32: case T_SFIXED32:
        put_le(c, v, 4);
        *zero = (uint32_t)v == 0;
        return 0;
    case T_FIXED64: case T_SFIXED64:
        put_le(c, v, 8);
        *zero = v == 0;
        return 0;
    case T_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &d, 8);
        put_le(c, bits, 8);
        *zero = bits == 0;
        return 0;
    }
    default: { /* T_FLOAT: past float's range (after rounding) is infinity */
        float f;
        uint32_t bits;
        if (isnan(d)) {
            bits = nan_to_float(d);
        } else {
            if (isfinite(d) && fabs(d) >= FLOAT_OVERFLOW)
                f = d > 0 ? INFINITY : -INFINITY;
            else if (isfinite(d) && fabs(d) > FLT_MAX)
                f = d > 0 ? FLT_MAX : -FLT_MAX;   /* rounds down to the largest float */
            else
                f = (float)d;
            memcpy(&bits, &f, 4);
        }
        put_le(c, bits, 4);
        *zero = bits == 0;
        return 0;
    }
    }
}

static int put_tag(fn_proto_ctx *c, uint32_t number, int wt)
{
    int rc = reserve(c, 5);
    if (!rc)
        put_varint(c, (uint64_t)number << 3 | (uint64_t)wt);
    return rc;
}

/* Start a length-delimited body: one placeholder byte for its length. */
static int open_len(fn_proto_ctx *c, size_t *mark)
{
    int rc = reserve(c, 1);
    if (rc)
        return rc;
    *mark = c->out_len;
    put_u8(c, 0);
    return 0;
}

/* Write the body's length at its placeholder, moving the body if the
 * length takes more than one byte. */
static int close_len(fn_proto_ctx *c, size_t mark)
{
    size_t body = c->out_len - mark - 1;
    int k = varint_len(body);
    if (k > 1) {
        int rc = reserve(c, (size_t)k - 1);
        if (rc)
            return rc;
        memmove(c->out + mark + k, c->out + mark + 1, body);
        c->out_len += (size_t)k - 1;
    }
    size_t save = c->out_len;
    c->out_len = mark;
    put_varint(c, body);
    c->out_len = save;
    return 0;
}

/* The order upb's deterministic serialization writes map entries in (it
 * encodes backwards over its sorted entries): integers and bools by their
 * 64-bit two's complement, largest first; strings by memcmp, where one is
 * a prefix of the other the longer first. */
static int cmp_key(const void *a, const void *b)
{
    const mapkey *x = a, *y = b;
    if (x->p || y->p) {
        size_t n = x->len < y->len ? (size_t)x->len : (size_t)y->len;
        int r = n ? memcmp(x->p, y->p, n) : 0;
        if (r)
            return r;
        if (x->len != y->len)
            return x->len < y->len ? 1 : -1;
    } else if (x->k != y->k) {
        return x->k < y->k ? 1 : -1;
    }
    /* equal keys (only a raw marshal stream can repeat one): keep their order */
    return x->key < y->key ? -1 : x->key > y->key;
}

static int push_eframe(work *w, size_t *sp, uint32_t msg, uint32_t node,
                       uint32_t depth, uint8_t close, size_t mark, uint32_t max_depth,
                       const fn_proto_schema *s)
{
    if (depth > max_depth)
        return FN_E_PROTO_ENC_DEPTH;
    const mnode *x = &w->nodes[node];
    if (x->kind != M_LIST || x->count != s->msgs[msg].count + 1)
        return FN_E_PROTO_TYPE;
    if (grow((void **)&w->ef, &w->ef_cap, *sp + 1, sizeof(eframe)))
        return FN_E_NOMEM;
    eframe *f = &w->ef[(*sp)++];
    memset(f, 0, sizeof *f);
    f->msg = msg;
    f->vnode = node + 1;
    f->depth = depth;
    f->close = close;
    f->mark = mark;
    return 0;
}

/* Sort a map's entries by key into w->order (appended at *base). */
static int sort_map(work *w, const fn_proto_field *kf, uint32_t dict, size_t base)
{
    const mnode *d = &w->nodes[dict];
    uint32_t n = d->count, node = dict + 1;
    if (grow((void **)&w->keys, &w->keys_cap, n, sizeof(mapkey))
        || grow((void **)&w->order, &w->order_cap, base + n, sizeof(uint32_t)))
        return FN_E_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const mnode *k = &w->nodes[node];
        mapkey *e = &w->keys[i];
        e->key = node;
        e->p = NULL;
        e->len = 0;
        if (kf->type == T_STRING) {
            if (k->kind != M_UNICODE)
                return FN_E_PROTO_TYPE;
            e->p = k->p ? k->p : (const uint8_t *)"";
            e->len = k->u;
        } else {
            int neg;
            uint64_t mag;
            int rc = node_int(k, &neg, &mag);
            if (rc)
                return rc;
            if (kf->type == T_BOOL)
                mag = mag != 0;   /* (over 64 bits is FN_E_PROTO_RANGE above) */
            e->k = neg ? (uint64_t)0 - mag : mag;
        }
        node = k->next;           /* the value */
        node = w->nodes[node].next;
    }
    qsort(w->keys, n, sizeof(mapkey), cmp_key);
    for (uint32_t i = 0; i < n; i++)
        w->order[base + i] = w->keys[i].key;
    return 0;
}

#define FAIL(code) do { rc = (code); goto fail; } while (0)

int64_t fn_proto_encode(fn_proto_ctx *c, const fn_proto_schema *s, uint32_t msg,
                        const uint8_t *flat, size_t len, uint32_t max_depth)
{
    work *w = c->priv;
    int rc = 0;
    size_t sp = 0, nord = 0;
    c->out_len = 0;
    c->err_msg = c->err_field = -1;
    if (msg >= s->nmsgs)
        return FN_E_ARG;
    int64_t nn = parse_marshal(w, flat, len);
    if (nn < 0)
        return nn;
    if ((rc = push_eframe(w, &sp, msg, 0, 0, 0, 0, max_depth, s)))
        goto fail_here;
    while (sp) {
        eframe *F = &w->ef[sp - 1];
        const fn_proto_msg *m = &s->msgs[F->msg];
        if (F->left) {
            /* the next element of a repeated message or map field */
            const fn_proto_field *f = &s->fields[m->first + F->fi];
            F->left--;
            if (f->flags & FN_PROTO_F_MAP) {
                const fn_proto_msg *em = &s->msgs[f->sub];
                const fn_proto_field *kf = &s->fields[em->first], *vf = kf + 1;
                uint32_t key = w->order[F->item++];
                uint32_t val = w->nodes[key].next;
                size_t emark, vmark;
                int zero;
                if ((rc = put_tag(c, f->number, 2)) || (rc = open_len(c, &emark))
                    || (rc = put_tag(c, 1, WIRE[kf->type])))
                    goto fail;
                if ((rc = put_value(c, kf->type, &w->nodes[key], &zero))) {
                    c->err_msg = f->sub;
                    c->err_field = 0;
                    goto fail_here;
                }
                if (vf->type == T_MESSAGE) {
                    if ((rc = put_tag(c, 2, 2)) || (rc = open_len(c, &vmark)))
                        goto fail;
                    uint32_t depth = F->depth + 2;
                    if (w->nodes[val].kind != M_LIST) {
                        c->err_msg = f->sub;
                        c->err_field = 1;
                        rc = FN_E_PROTO_TYPE;
                        goto fail_here;
                    }
                    if ((rc = push_eframe(w, &sp, vf->sub, val, depth, 3, vmark, max_depth, s)))
                        goto fail;
                    w->ef[sp - 1].entry_mark = emark;
                    continue;
                }
                if ((rc = put_tag(c, 2, WIRE[vf->type])))
                    goto fail;
                if ((rc = put_value(c, vf->type, &w->nodes[val], &zero))) {
                    c->err_msg = f->sub;
                    c->err_field = 1;
                    goto fail_here;
                }
                if ((rc = close_len(c, emark)))
                    goto fail;
            } else {
                uint32_t el = F->item;
                F->item = w->nodes[el].next;
                size_t mark = 0;
                int group = f->type == T_GROUP;
                if ((rc = put_tag(c, f->number, group ? 3 : 2)))
                    goto fail;
                if (!group && (rc = open_len(c, &mark)))
                    goto fail;
                if ((rc = push_eframe(w, &sp, f->sub, el, F->depth + 1, group ? 2 : 1,
                                      mark, max_depth, s)))
                    goto fail;
                if (group)
                    w->ef[sp - 1].mark = f->number;
                continue;
            }
            if (!F->left) {
                F->fi++;
                if (f->flags & FN_PROTO_F_MAP)
                    nord -= w->nodes[F->vnode].count;
                F->vnode = w->nodes[F->vnode].next;
            }
            continue;
        }
        if (F->fi == m->count) {
            /* unknown fields, then close the message */
            const mnode *u = &w->nodes[F->vnode];
            if (u->kind == M_STRING) {
                if ((rc = reserve(c, (size_t)u->u)))
                    goto fail;
                put_bytes(c, u->p, (size_t)u->u);
            } else if (u->kind != M_NONE) {
                rc = FN_E_PROTO_TYPE;
                goto fail_here;
            }
            eframe done = *F;
            sp--;
            if (done.close == 1 || done.close == 3) {
                if ((rc = close_len(c, done.mark)))
                    goto fail;
                if (done.close == 3 && (rc = close_len(c, done.entry_mark)))
                    goto fail;
            } else if (done.close == 2) {
                if ((rc = put_tag(c, (uint32_t)done.mark, 4)))
                    goto fail;
            }
            if (sp) {
                /* the parent's element is written: advance past the field if it was the last */
                eframe *P = &w->ef[sp - 1];
                const fn_proto_field *pf = &s->fields[s->msgs[P->msg].first + P->fi];
                if (!P->left) {
                    if (pf->flags & FN_PROTO_F_MAP)
                        nord -= w->nodes[P->vnode].count;
                    P->fi++;
                    P->vnode = w->nodes[P->vnode].next;
                }
            }
            continue;
        }
        const fn_proto_field *f = &s->fields[m->first + F->fi];
        uint32_t vn = F->vnode;
        const mnode *x = &w->nodes[vn];
        int zero;
        if (f->flags & FN_PROTO_F_MAP) {
            if (x->kind != M_DICT)
                FAIL(FN_E_PROTO_TYPE);
            if (x->count) {
                const fn_proto_field *kf = &s->fields[s->msgs[f->sub].first];
                if (F->depth + 1 > max_depth)
                    FAIL(FN_E_PROTO_ENC_DEPTH);
                if ((rc = sort_map(w, kf, vn, nord))) {
                    if (rc == FN_E_NOMEM)
                        goto fail;
                    c->err_msg = f->sub;
                    c->err_field = 0;
                    goto fail_here;
                }
                F->item = (uint32_t)nord;
                nord += x->count;
                F->left = x->count;
                continue;
            }
        } else if (f->flags & FN_PROTO_F_REPEATED) {
            if (x->kind != M_LIST)
                FAIL(FN_E_PROTO_TYPE);
            if (x->count && (f->type == T_MESSAGE || f->type == T_GROUP)) {
                F->item = vn + 1;
                F->left = x->count;
                continue;
            }
            uint32_t el = vn + 1;
            if (x->count && (f->flags & FN_PROTO_F_PACKED)) {
                size_t mark;
                if ((rc = put_tag(c, f->number, 2)) || (rc = open_len(c, &mark)))
                    goto fail;
                for (uint32_t i = 0; i < x->count; i++, el = w->nodes[el].next)
                    if ((rc = put_value(c, f->type, &w->nodes[el], &zero)))
                        FAIL(rc);
                if ((rc = close_len(c, mark)))
                    goto fail;
            } else {
                for (uint32_t i = 0; i < x->count; i++, el = w->nodes[el].next) {
                    if ((rc = put_tag(c, f->number, WIRE[f->type])))
                        goto fail;
                    if ((rc = put_value(c, f->type, &w->nodes[el], &zero)))
                        FAIL(rc);
                }
            }
        } else if (f->type == T_MESSAGE || f->type == T_GROUP) {
            if (x->kind != M_NONE) {
                size_t mark = 0;
                int group = f->type == T_GROUP;
                if (x->kind != M_LIST)
                    FAIL(FN_E_PROTO_TYPE);
                if ((rc = put_tag(c, f->number, group ? 3 : 2)))
                    goto fail;
                if (!group && (rc = open_len(c, &mark)))
                    goto fail;
                if ((rc = push_eframe(w, &sp, f->sub, vn, F->depth + 1, group ? 2 : 1, mark,
                                      max_depth, s)))
                    goto fail;
                if (group)
                    w->ef[sp - 1].mark = f->number;
                continue;   /* the frame's pop advances the parent */
            }
        } else if (!(x->kind == M_NONE && (f->flags & FN_PROTO_F_PRESENCE))) {
            size_t at = c->out_len;
            if ((rc = put_tag(c, f->number, WIRE[f->type])))
                goto fail;
            if ((rc = put_value(c, f->type, x, &zero)))
                FAIL(rc);
            if (zero && !(f->flags & FN_PROTO_F_PRESENCE))
                c->out_len = at;
        }
        F->fi++;
        F->vnode = x->next;
    }
    return (int64_t)c->out_len;
fail:
    if (rc != FN_E_NOMEM && sp) {
        eframe *F = &w->ef[sp - 1];
        c->err_msg = (int32_t)F->msg;
        c->err_field = (int32_t)F->fi;
    }
fail_here:
    c->out_len = 0;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Decoder                                                                  */

/* A varint of up to 10 bytes (overlong forms allowed, bits past 64 dropped). */
static inline int read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *v = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t value = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end)
            return FN_E_PROTO_TRUNCATED;
        uint8_t b = *p++;
        value |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *v = value;
            *pp = p;
            return 0;
        }
    }
    return FN_E_PROTO_VARINT;
}

static inline int read_tag(const uint8_t **pp, const uint8_t *end, uint32_t *tag)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80 && *p >= 8) {
        *tag = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t value = 0;
    for (int i = 0; i < 5; i++) {
        if (p >= end)
            return FN_E_PROTO_TRUNCATED;
        uint8_t b = *p++;
        value |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            if (value > 0xffffffffull || (value >> 3) == 0)
                return FN_E_PROTO_TAG;
            *tag = (uint32_t)value;
            *pp = p;
            return 0;
        }
    }
    return FN_E_PROTO_TAG;
}

/* Skip one value of wire type tag & 7 at *pp; a group (wt 3) is skipped
 * whole, its nesting checked against max_depth (depth: the group's own).
 * *gend gets where a skipped group's end tag starts. */
static int skip_value(work *w, const uint8_t **pp, const uint8_t *end, uint32_t tag,
                      uint32_t depth, uint32_t max_depth, const uint8_t **gend)
{
    const uint8_t *p = *pp;
    uint64_t v;
    int rc;
    switch (tag & 7) {
    case 0:
        if ((rc = read_varint(&p, end, &v)))
            return rc;
        break;
    case 1: case 5: {
        size_t n = (tag & 7) == 1 ? 8 : 4;
        if ((size_t)(end - p) < n)
            return FN_E_PROTO_TRUNCATED;
        p += n;
        break;
    }
    case 2:
        if ((rc = read_varint(&p, end, &v)))
            return rc;
        if (v > (uint64_t)(end - p))
            return FN_E_PROTO_TRUNCATED;
        p += v;
        break;
    case 3: {
        /* an explicit stack of the open groups' numbers */
        size_t open = 0;
        if (grow((void **)&w->groups, &w->groups_cap, 1, sizeof(uint32_t)))
            return FN_E_NOMEM;
        if (depth > max_depth)
            return FN_E_PROTO_DEPTH;
        w->groups[open++] = tag >> 3;
        for (;;) {
            if (p >= end)
                return FN_E_PROTO_GROUP;
            const uint8_t *at = p;
            uint32_t t;
            if ((rc = read_tag(&p, end, &t)))
                return rc;
            int wt = t & 7;
            if (wt == 4) {
                if (t >> 3 != w->groups[open - 1])
                    return FN_E_PROTO_GROUP;
                if (--open == 0) {
                    *gend = at;
                    break;
                }
            } else if (wt == 3) {
                if (depth + open > max_depth)
                    return FN_E_PROTO_DEPTH;
                if (grow((void **)&w->groups, &w->groups_cap, open + 1, sizeof(uint32_t)))
                    return FN_E_NOMEM;
                w->groups[open++] = t >> 3;
            } else if (wt >= 6) {
                return FN_E_PROTO_WIRE_TYPE;
            } else {
                const uint8_t *unused;
                if ((rc = skip_value(w, &p, end, t, 0, max_depth, &unused)))
                    return rc;
            }
        }
        break;
    }
    case 4:
        break;
    default:
        return FN_E_PROTO_WIRE_TYPE;
    }
    *pp = p;
    return 0;
}

static const fn_proto_field *find_field(const fn_proto_schema *s, const fn_proto_msg *m,
                                        uint32_t number, uint32_t *index)
{
    const fn_proto_field *f = s->fields + m->first;
    uint32_t lo = 0, hi = m->count;
    /* fields are dense in most messages: try number - 1 first */
    if (number - 1 < hi && f[number - 1].number == number) {
        *index = number - 1;
        return &f[number - 1];
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (f[mid].number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < m->count && f[lo].number == number) {
        *index = lo;
        return &f[lo];
    }
    return NULL;
}

static int add_occ(work *w, uint32_t *nocc, const uint8_t *p, const uint8_t *end, int wt,
                   uint32_t *head, int append)
{
    uint32_t i;
    if (!append && head[0]) {
        i = head[0];   /* a scalar keeps its last value: reuse its occurrence */
    } else {
        if (grow((void **)&w->occs, &w->occs_cap, (size_t)*nocc + 1, sizeof(occ)))
            return FN_E_NOMEM;
        i = (*nocc)++;
    }
    occ *o = &w->occs[i];
    o->p = p;
    o->end = end;
    o->wt = (uint8_t)wt;
    o->next = 0;
    o->soff = o->slen = 0;
    if (append && head[0])
        w->occs[head[1]].next = i;
    else
        head[0] = i;
    head[1] = i;
    return 0;
}

/* Whether closed enum field f defines number v. */
static int closed_known(const fn_proto_schema *s, const fn_proto_field *f, int32_t v)
{
    const int32_t *a = s->closed + f->closed_first;
    uint32_t lo = 0, hi = f->closed_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->closed_count && a[lo] == v;
}

/* Append bytes made here (a closed enum's undefined number, as upb writes
 * it: a varint field) to the unknown chain at uh, merged with the previous
 * such piece when they touch. */
static int add_synth(work *w, uint32_t *nocc, uint32_t *uh, uint32_t number, uint64_t v)
{
    uint8_t tmp[20];
    size_t n = 0;
    uint64_t t = (uint64_t)number << 3;
    while (t > 0x7f) { tmp[n++] = (uint8_t)(t | 0x80); t >>= 7; }
    tmp[n++] = (uint8_t)t;
    while (v > 0x7f) { tmp[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    tmp[n++] = (uint8_t)v;
    if (grow((void **)&w->synth, &w->synth_cap, w->synth_len + n, 1))
        return FN_E_NOMEM;
    memcpy(w->synth + w->synth_len, tmp, n);
    if (uh[0] && !w->occs[uh[1]].p
        && w->occs[uh[1]].soff + w->occs[uh[1]].slen == w->synth_len) {
        w->occs[uh[1]].slen += (uint32_t)n;
    } else {
        int rc = add_occ(w, nocc, NULL, NULL, 0, uh, 1);
        if (rc)
            return rc;
        w->occs[uh[1]].soff = (uint32_t)w->synth_len;
        w->occs[uh[1]].slen = (uint32_t)n;
    }
    w->synth_len += n;
    return 0;
}

/* Whether a map entry holds only its key and value (with their wire types):
 * upb keeps any other entry among the unknown fields. 1, 0 or FN_E_*. */
static int entry_clean(work *w, const fn_proto_schema *s, const fn_proto_field *f,
                       const uint8_t *p, const uint8_t *end, uint32_t depth, uint32_t max_depth)
{
    const fn_proto_field *kf = &s->fields[s->msgs[f->sub].first], *vf = kf + 1;
    uint32_t kt = 8 | WIRE[kf->type], vt = 16 | WIRE[vf->type];
    int clean = 1, undefined = 0, rc;
    while (p < end) {
        uint32_t tag;
        const uint8_t *gend, *vp;
        if ((rc = read_tag(&p, end, &tag)))
            return rc;
        if ((tag & 7) == 4)
            return FN_E_PROTO_GROUP;
        vp = p;
        if ((rc = skip_value(w, &p, end, tag, depth + 2, max_depth, &gend)))
            return rc;
        if (tag != kt && tag != vt)
            clean = 0;
        else if (tag == vt && (vf->flags & FN_PROTO_F_CLOSED)) {
            uint64_t v = 0;
            read_varint(&vp, end, &v);
            undefined = !closed_known(s, vf, (int32_t)(uint32_t)v);   /* the last one counts */
        }
    }
    /* upb keeps an entry whose closed enum value is undefined unknown too */
    return clean && !undefined;
}

typedef struct dstate {
    fn_proto_ctx *c;
    work *w;
    const fn_proto_schema *s;
    uint32_t nocc;
    uint32_t nheads;
    uint32_t max_depth;
    size_t sp;
} dstate;

/* Push a frame for message msg over the occurrence chain from seg (only seg
 * itself if single; none if seg is 0) and scan its bytes. */
static int push_dframe(dstate *d, uint32_t msg, uint32_t seg, int single, uint32_t depth,
                       int map_entry)
{
    work *w = d->w;
    const fn_proto_schema *s = d->s;
    const fn_proto_msg *m = &s->msgs[msg];
    int rc;
    if (depth > d->max_depth)
        return FN_E_PROTO_DEPTH;
    if (grow((void **)&w->df, &w->df_cap, d->sp + 1, sizeof(dframe)))
        return FN_E_NOMEM;
    size_t nh = 2 * ((size_t)m->count + 1);
    if (grow((void **)&w->heads, &w->heads_cap, d->nheads + nh, sizeof(uint32_t)))
        return FN_E_NOMEM;
    dframe *F = &w->df[d->sp++];
    memset(F, 0, sizeof *F);
    F->msg = msg;
    F->heads = d->nheads;
    F->occ_mark = d->nocc;
    F->depth = depth;
    F->map_entry = (uint8_t)map_entry;
    uint32_t *heads = w->heads + d->nheads;
    memset(heads, 0, nh * sizeof(uint32_t));
    d->nheads += (uint32_t)nh;
    for (uint32_t o = seg; o; o = single ? 0 : w->occs[o].next) {
        const uint8_t *p = w->occs[o].p, *end = w->occs[o].end;
        while (p < end) {
            const uint8_t *start = p, *vstart, *vend;
            uint32_t tag, index;
            if ((rc = read_tag(&p, end, &tag)))
                return rc;
            int wt = tag & 7;
            if (wt == 4)
                return FN_E_PROTO_GROUP;
            if (wt >= 6)
                return FN_E_PROTO_WIRE_TYPE;
            vstart = p;
            if ((rc = skip_value(w, &p, end, tag, depth + 1, d->max_depth, &vend)))
                return rc;
            if (wt == 2) {
                uint64_t n;
                const uint8_t *q = vstart;
                read_varint(&q, end, &n);
                vstart = q;
                vend = p;
            } else if (wt != 3) {
                vend = p;
            }
            const fn_proto_field *f = find_field(s, m, tag >> 3, &index);
            if (f) {
                int ft = WIRE[f->type];
                if (ft == wt || (wt == 2 && (f->flags & FN_PROTO_F_REPEATED) && packable(f->type))) {
                    if (f->flags & FN_PROTO_F_MAP) {
                        rc = entry_clean(w, s, f, vstart, vend, depth, d->max_depth);
                        if (rc < 0)
                            return rc;
                    } else if ((f->flags & FN_PROTO_F_CLOSED) && wt == 0) {
                        uint64_t v = 0;
                        const uint8_t *q = vstart;
                        read_varint(&q, vend, &v);
                        rc = closed_known(s, f, (int32_t)(uint32_t)v);
                    } else if (f->flags & FN_PROTO_F_CLOSED) {
                        /* packed: undefined numbers become unknown varint
                         * fields now; the emit pass skips them */
                        const uint8_t *q = vstart;
                        while (q < vend) {
                            uint64_t v;
                            if (read_varint(&q, vend, &v))
                                return FN_E_PROTO_PACKED;
                            int32_t e = (int32_t)(uint32_t)v;
                            if (!closed_known(s, f, e)
                                && (rc = add_synth(w, &d->nocc, heads + 2 * m->count, f->number,
                                                   (uint64_t)(int64_t)e)))
                                return rc;
                        }
                        rc = 1;
                    } else
                        rc = 1;
                    if (rc) {
                        int append = (f->flags & FN_PROTO_F_REPEATED) || f->sub >= 0;
                        if (f->oneof) {
                            /* a oneof keeps its last member: the others are unset */
                            const fn_proto_field *g = s->fields + m->first;
                            for (uint32_t k = 0; k < m->count; k++)
                                if (g[k].oneof == f->oneof && k != index)
                                    heads[2 * k] = heads[2 * k + 1] = 0;
                        }
                        if ((rc = add_occ(w, &d->nocc, vstart, vend, wt, heads + 2 * index, append)))
                            return rc;
                        continue;
                    }
                }
            }
            /* unknown (or a wire type the field cannot have): kept raw; a run
             * of them is one occurrence, so they cost no memory per field */
            uint32_t *uh = heads + 2 * m->count;
            if (uh[0] && w->occs[uh[1]].p && w->occs[uh[1]].end == start)
                w->occs[uh[1]].end = p;
            else if ((rc = add_occ(w, &d->nocc, start, p, wt, uh, 1)))
                return rc;
        }
    }
    if (!map_entry) {
        fn_proto_ctx *c = d->c;
        if ((rc = reserve(c, 5)))
            return rc;
        put_u8(c, M_LIST);
        put_le(c, m->count + 1, 4);
    }
    return 0;
}

/* marshal an integer: 'i' when it fits 32 bits signed, else 'l' digits. */
static inline int emit_int(fn_proto_ctx *c, int neg, uint64_t mag)
{
    int rc = reserve(c, 20);
    if (rc)
        return rc;
    if (neg ? mag <= 0x80000000ull : mag <= 0x7fffffffull) {
        put_u8(c, M_INT);
        put_le(c, neg ? (uint64_t)0 - mag : mag, 4);
        return 0;
    }
    int nd = 0;
    for (uint64_t m = mag; m; m >>= 15)
        nd++;
    put_u8(c, M_LONG);
    put_le(c, (uint64_t)(uint32_t)(neg ? -nd : nd), 4);
    for (int i = 0; i < nd; i++)
        put_le(c, (mag >> (15 * i)) & 0x7fff, 2);
    return 0;
}

static int emit_signed(fn_proto_ctx *c, int64_t v)
{
    return v < 0 ? emit_int(c, 1, (uint64_t)0 - (uint64_t)v) : emit_int(c, 0, (uint64_t)v);
}

static int emit_double(fn_proto_ctx *c, double d)
{
    int rc = reserve(c, 9);
    if (rc)
        return rc;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    put_u8(c, M_BFLOAT);
    put_le(c, bits, 8);
    return 0;
}

/* One value of type t from p (framing checked by the scan) as marshal. */
static int emit_value(fn_proto_ctx *c, int t, const uint8_t *p, const uint8_t *end)
{
    uint64_t v = 0;
    int rc;
    if (WIRE[t] == 0) {
        read_varint(&p, end, &v);
        switch (t) {
        case T_INT32: case T_ENUM: return emit_signed(c, (int32_t)(uint32_t)v);
        case T_INT64: return emit_signed(c, (int64_t)v);
        case T_UINT32: return emit_int(c, 0, (uint32_t)v);
        case T_UINT64: return emit_int(c, 0, v);
        case T_SINT32: {
            uint32_t u = (uint32_t)v;
            return emit_signed(c, (int32_t)((u >> 1) ^ (0u - (u & 1))));
        }
        case T_SINT64: return emit_signed(c, (int64_t)((v >> 1) ^ (0 - (v & 1))));
        default:
            if ((rc = reserve(c, 1)))
                return rc;
            put_u8(c, v ? M_TRUE : M_FALSE);
            return 0;
        }
    }
    if (WIRE[t] == 5) {
        uint32_t u = rd32(p);
        if (t == T_FIXED32) return emit_int(c, 0, u);
        if (t == T_SFIXED32) return emit_signed(c, (int32_t)u);
        if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu))
            return emit_double(c, nan_to_double(u));
        float f;
        memcpy(&f, &u, 4);
        return emit_double(c, (double)f);
    }
    if (WIRE[t] == 1) {
        v = rd64(p);
        if (t == T_FIXED64) return emit_int(c, 0, v);
        if (t == T_SFIXED64) return emit_signed(c, (int64_t)v);
        double d;
        memcpy(&d, &v, 8);
        return emit_double(c, d);
    }
    size_t n = (size_t)(end - p);
    if (t == T_STRING && !utf8_valid(p, n))
        return FN_E_PROTO_UTF8;
    if ((rc = reserve(c, 5 + n)))
        return rc;
    put_u8(c, t == T_STRING ? M_UNICODE : M_STRING);
    put_le(c, n, 4);
    put_bytes(c, p, n);
    return 0;
}

static int emit_default(fn_proto_ctx *c, int t)
{
    static const uint8_t zero8[8];
    switch (t) {
    case T_STRING: case T_BYTES:
        return emit_value(c, t, zero8, zero8);
    case T_DOUBLE: case T_FLOAT:
        return emit_double(c, 0.0);
    case T_BOOL:
        return emit_value(c, t, zero8, zero8 + 1);
    default:
        return emit_int(c, 0, 0);
    }
}

/* Count a repeated scalar's values over its occurrences, checking packed bodies. */
static int count_values(const work *w, const fn_proto_schema *s, const fn_proto_field *f,
                        uint32_t head, uint64_t *count)
{
    int t = f->type;
    int closed = (f->flags & FN_PROTO_F_CLOSED) != 0;
    uint64_t n = 0;
    for (uint32_t o = head; o; o = w->occs[o].next) {
        const occ *x = &w->occs[o];
        if (x->wt != 2 || !packable(t)) {
            n++;
            continue;
        }
        size_t len = (size_t)(x->end - x->p);
        if (WIRE[t] == 1 || WIRE[t] == 5) {
            size_t size = WIRE[t] == 1 ? 8 : 4;
            if (len % size)
                return FN_E_PROTO_PACKED;
            n += len / size;
            continue;
        }
        const uint8_t *p = x->p;
        while (p < x->end) {
            uint64_t v;
            if (read_varint(&p, x->end, &v))
                return FN_E_PROTO_PACKED;
            n += !closed || closed_known(s, f, (int32_t)(uint32_t)v);
        }
    }
    *count = n;
    return 0;
}

static int emit_repeated(fn_proto_ctx *c, const work *w, const fn_proto_schema *s,
                         const fn_proto_field *f, uint32_t head)
{
    uint64_t n;
    int t = f->type;
    int closed = (f->flags & FN_PROTO_F_CLOSED) != 0;
    int rc = count_values(w, s, f, head, &n);
    if (rc)
        return rc;
    if (n > 0x7fffffffu)
        return FN_E_PROTO_SIZE;
    if ((rc = reserve(c, 5)))
        return rc;
    put_u8(c, M_LIST);
    put_le(c, n, 4);
    for (uint32_t o = head; o; o = w->occs[o].next) {
        const occ *x = &w->occs[o];
        if (x->wt != 2 || !packable(t)) {
            if ((rc = emit_value(c, t, x->p, x->end)))
                return rc;
            continue;
        }
        size_t size = WIRE[t] == 1 ? 8 : WIRE[t] == 5 ? 4 : 0;
        const uint8_t *p = x->p;
        if (t == T_INT32 || t == T_ENUM) {
            /* the common packed case: every value is a 5-byte 'i' */
            if ((rc = reserve(c, 5 * (size_t)(x->end - p))))
                return rc;
            while (p < x->end) {
                uint64_t v = 0;
                read_varint(&p, x->end, &v);
                if (closed && !closed_known(s, f, (int32_t)(uint32_t)v))
                    continue;   /* it went to the unknown fields */
                put_u8(c, M_INT);
                put_le(c, (uint32_t)v, 4);
            }
            continue;
        }
        while (p < x->end) {
            const uint8_t *q = p;
            if (size)
                q += size;
            else {
                uint64_t v;
                read_varint(&q, x->end, &v);
            }
            if ((rc = emit_value(c, t, p, q)))
                return rc;
            p = q;
        }
    }
    return 0;
}

int64_t fn_proto_decode(fn_proto_ctx *c, const fn_proto_schema *s, uint32_t msg,
                        const uint8_t *data, size_t len, uint32_t max_depth, uint64_t max_size)
{
    work *w = c->priv;
    dstate d = {c, w, s, 1, 0, max_depth, 0};
    int rc;
    c->out_len = 0;
    c->err_msg = c->err_field = -1;
    if (msg >= s->nmsgs)
        return FN_E_ARG;
    if ((uint64_t)len > max_size)
        return FN_E_PROTO_SIZE;
    /* occurrence 0 means "none"; occurrence 1 is the whole input */
    if (grow((void **)&w->occs, &w->occs_cap, 2, sizeof(occ)))
        return FN_E_NOMEM;
    w->synth_len = 0;
    w->occs[1].p = data;
    w->occs[1].end = data + len;
    w->occs[1].next = 0;
    w->occs[1].wt = 2;
    d.nocc = 2;
    if ((rc = push_dframe(&d, msg, 1, 1, 0, 0)))
        goto fail;
    while (d.sp) {
        dframe *F = &w->df[d.sp - 1];
        const fn_proto_msg *m = &s->msgs[F->msg];
        uint32_t *heads = w->heads + F->heads;
        if (F->busy) {
            const fn_proto_field *f = &s->fields[m->first + F->fi];
            if (F->cur) {
                uint32_t o = F->cur;
                F->cur = w->occs[o].next;
                if ((rc = push_dframe(&d, f->sub, o, 1, F->depth + 1, F->busy == 2)))
                    goto fail;
                continue;
            }
            if (F->busy == 2) {
                if ((rc = reserve(c, 1)))
                    goto fail;
                put_u8(c, M_NULL);
            }
            F->busy = 0;
            F->fi++;
            continue;
        }
        if (F->fi == m->count) {
            if (!F->map_entry) {
                uint32_t head = heads[2 * m->count];
                if (!head) {
                    if ((rc = reserve(c, 1)))
                        goto fail;
                    put_u8(c, M_NONE);
                } else {
                    size_t total = 0;
                    for (uint32_t o = head; o; o = w->occs[o].next)
                        total += w->occs[o].p ? (size_t)(w->occs[o].end - w->occs[o].p)
                                              : w->occs[o].slen;
                    if ((rc = reserve(c, 5 + total)))
                        goto fail;
                    put_u8(c, M_STRING);
                    put_le(c, total, 4);
                    for (uint32_t o = head; o; o = w->occs[o].next) {
                        const occ *x = &w->occs[o];
                        if (x->p)
                            put_bytes(c, x->p, (size_t)(x->end - x->p));
                        else
                            put_bytes(c, w->synth + x->soff, x->slen);
                    }
                }
            }
            d.nocc = F->occ_mark;
            d.nheads = F->heads;
            d.sp--;
            continue;
        }
        const fn_proto_field *f = &s->fields[m->first + F->fi];
        uint32_t head = heads[2 * F->fi], tail = heads[2 * F->fi + 1];
        if (f->flags & FN_PROTO_F_MAP) {
            if ((rc = reserve(c, 1)))
                goto fail;
            put_u8(c, M_DICT);
            F->busy = 2;
            F->cur = head;
            continue;
        }
        if (f->sub >= 0 && (f->flags & FN_PROTO_F_REPEATED)) {
            uint32_t n = 0;
            for (uint32_t o = head; o; o = w->occs[o].next)
                n++;
            if ((rc = reserve(c, 5)))
                goto fail;
            put_u8(c, M_LIST);
            put_le(c, n, 4);
            F->busy = 1;
            F->cur = head;
            continue;
        }
        if (f->sub >= 0) {
            F->fi++;
            if (head || F->map_entry) {
                if ((rc = push_dframe(&d, f->sub, head, 0, F->depth + 1, 0)))
                    goto fail;
            } else {
                if ((rc = reserve(c, 1)))
                    goto fail;
                put_u8(c, M_NONE);
            }
            continue;
        }
        if (f->flags & FN_PROTO_F_REPEATED)
            rc = emit_repeated(c, w, s, f, head);
        else if (tail)
            rc = emit_value(c, f->type, w->occs[tail].p, w->occs[tail].end);
        else if (f->flags & FN_PROTO_F_PRESENCE) {
            rc = reserve(c, 1);
            if (!rc)
                put_u8(c, M_NONE);
        } else
            rc = emit_default(c, f->type);
        if (rc)
            goto fail;
        F->fi++;
    }
    return (int64_t)c->out_len;
fail:
    c->out_len = 0;
    return rc;
}
