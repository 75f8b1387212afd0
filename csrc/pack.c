/* pack.c - MessagePack <-> marshal transcoding, see pack.h for the contract.
 *
 * Invariants (decoder): offsets count from the first byte of the object in
 * progress (fn_pack_dec_data()); pos <= buffered bytes; out[0..out_len) is
 * the marshal stream of every item before pos; stack[0..depth) are the
 * containers those items left open. A step either transcodes one whole item
 * and advances pos, or changes nothing (need more bytes / an error).
 */
#include <stdlib.h>
#include <string.h>

#include "marshal.h"
#include "pack.h"
#include "status.h"

/* Buffers larger than this are freed between objects (after one huge
 * object, idle memory goes back). */
#define KEEP_BYTES (64 * 1024)
#define KEEP_FRAMES 1024

enum { K_ARRAY, K_TUPLE, K_MAP };

/* Grow *buf (capacity *cap) to hold need more bytes after len: geometric,
 * driven by what is written. 0, or FN_E_NOMEM (buffer untouched). */
static int grow(char **buf, size_t *cap, size_t len, size_t need)
{
    size_t want, newcap;
    char *nb;

    if (need > SIZE_MAX - len)
        return FN_E_NOMEM;
    want = len + need;
    if (want <= *cap)
        return 0;
    newcap = *cap > SIZE_MAX / 2 ? want : *cap * 2;
    if (newcap < want)
        newcap = want;
    if (newcap < 256)
        newcap = 256;
    nb = realloc(*buf, newcap);
    if (!nb)
        return FN_E_NOMEM;
    *buf = nb;
    *cap = newcap;
    return 0;
}

/* Room for n items of size bytes in an array of capacity *cap. */
static int grow_items(void **arr, size_t *cap, size_t n, size_t size)
{
    size_t newcap;
    void *na;

    if (n < *cap)
        return 0;
    newcap = *cap ? *cap * 2 : 16;
    if (newcap <= n || newcap > SIZE_MAX / size)
        return FN_E_NOMEM;
    na = realloc(*arr, newcap * size);
    if (!na)
        return FN_E_NOMEM;
    *arr = na;
    *cap = newcap;
    return 0;
}

static uint16_t be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                      */

/* 1 if s[0..n) is ASCII. */
static int is_ascii(const unsigned char *s, size_t n)
{
    size_t i = 0;
    uint64_t acc = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= s[i];
    return (acc & 0x8080808080808080ull) == 0;
}

/* 1 if s[0..n) is strict UTF-8 (what Python's "utf-8" codec accepts: no
 * overlong forms, no surrogates, nothing over U+10FFFF). */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c < 0xC2 || c > 0xF4)
            return 0;
        if (c < 0xE0) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        } else if (c < 0xF0) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0))
                return 0;
            i += 3;
        } else {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 ||
                (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] >= 0x90))
                return 0;
            i += 4;
        }
    }
    return 1;
}

/* 1 if UTF-8 (surrogatepass) text s[0..n) encodes a surrogate (ED A0..BF). */
static int has_surrogate(const char *s, size_t n)
{
    const char *end = s + n, *p = s;

    while ((p = memchr(p, 0xED, (size_t)(end - p))) != NULL) {
        if (p + 1 < end && (unsigned char)p[1] >= 0xA0)
            return 1;
        p++;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Decoding: MessagePack -> marshal                                           */

/* Short map keys repeat (a list of records): the first is written with
 * FN_MARSHAL_FLAG_REF and the others as references to it, so
 * marshal.loads builds each distinct key once per object, as msgpack
 * interns keys. Open addressing; a full table just stops sharing. */
#define KEY_SLOTS 512
#define KEY_MAX_LEN 64
#define KEY_PROBES 8

typedef struct key_slot {
    uint32_t gen;
    uint32_t ref;
    uint32_t hash;
    uint32_t len;
    size_t off;               /* from the object's first byte */
} key_slot;

/* A new object: forget its predecessor's keys and references. */
static void new_object(fn_pack_dec *d)
{
    d->nrefs = 0;
    if (++d->key_gen == 0) {
        if (d->keys)
            memset(d->keys, 0, KEY_SLOTS * sizeof(key_slot));
        d->key_gen = 1;
    }
}

static void dec_clear(fn_pack_dec *d)
{
    new_object(d);
    d->pos = 0;
    d->drop = 0;
    d->depth = 0;
    d->out_len = 0;
    d->fallback = 0;
    d->obj_len = 0;
    d->err = 0;
}

fn_pack_dec *fn_pack_dec_new(const fn_pack_limits *lim, int flags)
{
    fn_pack_dec *d = calloc(1, sizeof *d);

    if (!d)
        return NULL;
    d->lim = *lim;
    d->flags = flags;
    d->key_gen = 1; /* calloc'd key slots (generation 0) are empty */
    fn_framer_init(&d->raw, FN_FRAME_RAW, 0, 0);
    return d;
}

void fn_pack_dec_free(fn_pack_dec *d)
{
    if (!d)
        return;
    fn_framer_release(&d->raw);
    free(d->stack);
    free(d->out);
    free(d->keys);
    free(d);
}

void fn_pack_dec_reset(fn_pack_dec *d)
{
    fn_framer_reset(&d->raw);
    dec_clear(d);
}

/* Drop the object returned last (Python has taken it), and give back the
 * memory one huge object left behind. */
static void dec_drop(fn_pack_dec *d)
{
    if (!d->drop)
        return;
    fn_framer_skip(&d->raw, d->drop);
    fn_framer_trim(&d->raw, KEEP_BYTES);
    d->drop = 0;
    d->pos = 0;
    d->out_len = 0;
    d->fallback = 0;
    new_object(d);
    if (d->out_cap > KEEP_BYTES) {
        free(d->out);
        d->out = NULL;
        d->out_cap = 0;
    }
    if (d->stack_cap > KEEP_FRAMES) {
        free(d->stack);
        d->stack = NULL;
        d->stack_cap = 0;
    }
}

int fn_pack_dec_feed(fn_pack_dec *d, const char *data, size_t len)
{
    if (d->err)
        return FN_OK;
    dec_drop(d);
    return fn_framer_feed(&d->raw, data, len) == 0 ? FN_OK : FN_E_NOMEM;
}

const char *fn_pack_dec_data(const fn_pack_dec *d)
{
    return d->raw.buf ? d->raw.buf + d->raw.start : "";
}

size_t fn_pack_dec_buffered(const fn_pack_dec *d)
{
    return d->raw.end - d->raw.start - d->drop;
}

static inline int emit(fn_pack_dec *d, const void *p, size_t n)
{
    if (d->out_cap - d->out_len < n && grow(&d->out, &d->out_cap, d->out_len, n))
        return FN_E_NOMEM;
    memcpy(d->out + d->out_len, p, n);
    d->out_len += n;
    return 0;
}

/* One byte. */
static inline int put1(fn_pack_dec *d, char c)
{
    if (d->out_len == d->out_cap && grow(&d->out, &d->out_cap, d->out_len, 1))
        return FN_E_NOMEM;
    d->out[d->out_len++] = c;
    return 0;
}

static int emit_sized(fn_pack_dec *d, int type, const void *p, size_t n)
{
    char head[5];

    if (n > FN_MARSHAL_MAX_SIZE) {
        d->fallback = 1; /* too long for marshal: the Python twin decodes this object */
        return put1(d, FN_MARSHAL_NONE);
    }
    if (grow(&d->out, &d->out_cap, d->out_len, 5 + n))
        return FN_E_NOMEM;
    fn_marshal_header(head, (char)type, (uint32_t)n);
    memcpy(d->out + d->out_len, head, 5);
    memcpy(d->out + d->out_len + 5, p, n);
    d->out_len += 5 + n;
    return 0;
}

/* An int: TYPE_INT when it fits 32 bits, else TYPE_LONG's 15-bit digits. */
static inline int emit_int(fn_pack_dec *d, int negative, uint64_t magnitude)
{
    char *w, *start;

    if (d->out_cap - d->out_len < 15 && grow(&d->out, &d->out_cap, d->out_len, 15))
        return FN_E_NOMEM;
    w = start = d->out + d->out_len;
    if (magnitude <= (negative ? 0x80000000u : 0x7fffffffu)) {
        uint32_t v = negative ? (uint32_t)(0u - (uint32_t)magnitude) : (uint32_t)magnitude;
        fn_marshal_header(w, FN_MARSHAL_INT, v);
        d->out_len += 5;
        return 0;
    } else {
        int32_t digits = 0;
        char *count = w + 1;
        *w = FN_MARSHAL_LONG;
        w += 5;
        while (magnitude) {
            unsigned digit = (unsigned)(magnitude & 0x7fff);
            *w++ = (char)(digit & 0xff);
            *w++ = (char)(digit >> 8);
            magnitude >>= 15;
            digits++;
        }
        fn_marshal_put32(count, (uint32_t)(negative ? -digits : digits));
    }
    d->out_len += (size_t)(w - start);
    return 0;
}

static int emit_double(fn_pack_dec *d, double v)
{
    uint64_t bits;
    char *w;

    if (d->out_cap - d->out_len < 9 && grow(&d->out, &d->out_cap, d->out_len, 9))
        return FN_E_NOMEM;
    w = d->out + d->out_len;
    memcpy(&bits, &v, 8);
    w[0] = FN_MARSHAL_BINARY_FLOAT;
    for (int i = 0; i < 8; i++)
        w[1 + i] = (char)((bits >> (8 * i)) & 0xff);
    d->out_len += 9;
    return 0;
}

/* A str (flag: FN_MARSHAL_FLAG_REF or 0). */
static int emit_str(fn_pack_dec *d, const unsigned char *s, size_t n, int flag)
{
    if (d->flags & FN_PACK_RAW)
        return emit_sized(d, FN_MARSHAL_STRING | flag, s, n);
    if (is_ascii(s, n)) {
        if (n < 256) {
            char head[2] = {(char)(FN_MARSHAL_SHORT_ASCII | flag), (char)n};
            if (grow(&d->out, &d->out_cap, d->out_len, 2 + n))
                return FN_E_NOMEM;
            memcpy(d->out + d->out_len, head, 2);
            memcpy(d->out + d->out_len + 2, s, n);
            d->out_len += 2 + n;
            return 0;
        }
        return emit_sized(d, FN_MARSHAL_ASCII | flag, s, n);
    }
    if ((d->flags & FN_PACK_LOADS_UTF8) ? has_surrogate((const char *)s, n) : !valid_utf8(s, n))
        return FN_E_PACK_UTF8;
    return emit_sized(d, FN_MARSHAL_UNICODE | flag, s, n);
}

/* A str or bin (flag: FN_MARSHAL_FLAG_REF or 0). */
static int emit_str_or_bin(fn_pack_dec *d, int bin, const unsigned char *s, size_t n, int flag)
{
    return bin ? emit_sized(d, FN_MARSHAL_STRING | flag, s, n) : emit_str(d, s, n, flag);
}

/* A str or bin that is a map key: a reference to an equal key of this
 * object when there is one (base: the object's first byte). */
static int emit_key(fn_pack_dec *d, const unsigned char *base, int bin, const unsigned char *s,
                    size_t n)
{
    key_slot *keys = d->keys;
    uint32_t h = 2166136261u ^ (uint32_t)bin, len = (uint32_t)n | (bin ? 0x80000000u : 0);
    size_t i;

    if (n > KEY_MAX_LEN)
        return emit_str_or_bin(d, bin, s, n, 0);
    if (!keys) {
        keys = d->keys = calloc(KEY_SLOTS, sizeof(key_slot));
        if (!keys)
            return emit_str_or_bin(d, bin, s, n, 0);
    }
    for (i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    i = h;
    for (int probe = 0; probe < KEY_PROBES; probe++, i++) {
        key_slot *k = &keys[i & (KEY_SLOTS - 1)];
        if (k->gen != d->key_gen) {
            int rc = emit_str_or_bin(d, bin, s, n, FN_MARSHAL_FLAG_REF);
            if (rc)
                return rc;
            k->gen = d->key_gen;
            k->ref = d->nrefs++;
            k->hash = h;
            k->len = len;
            k->off = (size_t)(s - base);
            return 0;
        }
        if (k->hash == h && k->len == len && memcmp(base + k->off, s, n) == 0) {
            char ref[5];
            fn_marshal_header(ref, FN_MARSHAL_REF, k->ref);
            return emit(d, ref, 5);
        }
    }
    return emit_str_or_bin(d, bin, s, n, 0);
}

/* Open a container of n items (a map: n pairs). */
static int open_container(fn_pack_dec *d, int map, uint64_t n, int in_key)
{
    char head[5];
    int kind;

    if (d->depth >= d->lim.max_depth)
        return FN_E_PACK_LIMIT;
    if (map) {
        if (n > d->lim.max_map)
            return FN_E_PACK_LIMIT;
        if (in_key)
            return FN_E_PACK_MAP_KEY;
        kind = K_MAP;
        if (put1(d, FN_MARSHAL_DICT))
            return FN_E_NOMEM;
    } else {
        if (n > d->lim.max_array)
            return FN_E_PACK_LIMIT;
        if (n > FN_MARSHAL_MAX_SIZE)
            d->fallback = 1; /* the stream is never loaded: its count may be clipped */
        kind = (in_key || (d->flags & FN_PACK_TUPLES)) ? K_TUPLE : K_ARRAY;
        if (kind == K_TUPLE && n < 256) {
            head[0] = FN_MARSHAL_SMALL_TUPLE;
            head[1] = (char)n;
            if (emit(d, head, 2))
                return FN_E_NOMEM;
        } else {
            fn_marshal_header(head, kind == K_TUPLE ? FN_MARSHAL_TUPLE : FN_MARSHAL_LIST,
                              (uint32_t)(n & FN_MARSHAL_MAX_SIZE));
            if (emit(d, head, 5))
                return FN_E_NOMEM;
        }
    }
    if (n == 0)
        return map ? put1(d, FN_MARSHAL_NULL) : 0;
    if (grow_items((void **)&d->stack, &d->stack_cap, d->depth, sizeof *d->stack))
        return FN_E_NOMEM;
    d->stack[d->depth].left = map ? 2 * n : n;
    d->stack[d->depth].kind = kind;
    d->stack[d->depth].key = in_key;
    d->depth++;
    return 1;
}

/* The item just transcoded completes the containers it ends. A scalar key
 * of a map under FN_PACK_STRICT_KEYS must be a str or a bin. Returns 1. */
static int attach_slow(fn_pack_dec *d, int stringy)
{
    while (d->depth) {
        fn_pack_frame *top = &d->stack[d->depth - 1];
        if (top->kind == K_MAP && top->left % 2 == 0 && !stringy && (d->flags & FN_PACK_STRICT_KEYS))
            return FN_E_PACK_MAP_KEY;
        stringy = 1; /* a closing container was checked at its header */
        if (--top->left)
            return 1;
        if (top->kind == K_MAP && put1(d, FN_MARSHAL_NULL))
            return FN_E_NOMEM;
        d->depth--;
    }
    return 1;
}

static inline int attach(fn_pack_dec *d, int stringy)
{
    /* the common case: an item inside an array that goes on */
    if (d->depth) {
        fn_pack_frame *top = &d->stack[d->depth - 1];
        if (top->kind != K_MAP && top->left > 1) {
            top->left--;
            return 1;
        }
    }
    return attach_slow(d, stringy);
}

/* A container header of hdr bytes declaring n items. */
static int container(fn_pack_dec *d, int map, uint64_t n, size_t hdr)
{
    fn_pack_frame *top = d->depth ? &d->stack[d->depth - 1] : NULL;
    int is_key = top && top->kind == K_MAP && top->left % 2 == 0;
    int rc;

    if (d->depth >= d->lim.max_depth)
        return FN_E_PACK_LIMIT;
    if (is_key && (d->flags & FN_PACK_STRICT_KEYS))
        return FN_E_PACK_MAP_KEY;
    rc = open_container(d, map, n, is_key || (top && top->key));
    if (rc < 0)
        return rc;
    d->pos += hdr;
    return rc == 1 ? 2 : attach(d, 1);
}

/* The timestamp extension's payload: a valid size, nanoseconds under 1e9
 * and, for a datetime, seconds within years 1..9999. */
static int check_timestamp(const fn_pack_dec *d, const unsigned char *p, uint64_t n)
{
    int64_t seconds;

    if (n == 4)
        return 0;
    if (n == 8)
        return (be64(p) >> 34) < 1000000000u ? 0 : FN_E_PACK_TIMESTAMP;
    if (n != 12 || be32(p) >= 1000000000u)
        return FN_E_PACK_TIMESTAMP;
    seconds = (int64_t)be64(p + 4);
    if ((d->flags & FN_PACK_TS_DATETIME) && (seconds < -62135596800LL || seconds > 253402300799LL))
        return FN_E_PACK_TIMESTAMP;
    return 0;
}

/* A str, bin or ext: type byte, hdr length bytes, (ext) a type code, the
 * payload. kind: 0 str, 1 bin, 2 ext; fixed: an ext's size from its type
 * byte (hdr 0). */
static int sized(fn_pack_dec *d, const unsigned char *base, const unsigned char *p, size_t avail,
                 size_t hdr, int kind, uint64_t fixed)
{
    uint64_t n, limit;
    size_t head = 1 + hdr + (kind == 2);
    int rc;

    if (avail < 1 + hdr)
        return 0;
    n = hdr == 0 ? fixed : hdr == 1 ? p[1] : hdr == 2 ? be16(p + 1) : be32(p + 1);
    limit = kind == 0 ? d->lim.max_str : kind == 1 ? d->lim.max_bin : d->lim.max_ext;
    if (n > limit)
        return FN_E_PACK_LIMIT;
    if (avail - head < n || avail < head)
        return 0;
    if (kind != 2) {
        const fn_pack_frame *top = d->depth ? &d->stack[d->depth - 1] : NULL;
        int bytes = kind == 1 || (d->flags & FN_PACK_RAW); /* both make a bytes object */
        if (top && top->kind == K_MAP && top->left % 2 == 0)
            rc = emit_key(d, base, bytes, p + head, (size_t)n);
        else
            rc = emit_str_or_bin(d, bytes, p + head, (size_t)n, 0);
    } else {
        if (p[head - 1] == 0xff && (rc = check_timestamp(d, p + head, n)) != 0)
            return rc;
        d->fallback = 1;
        rc = put1(d, FN_MARSHAL_NONE);
    }
    if (rc)
        return rc;
    d->pos += head + (size_t)n;
    return attach(d, kind != 2);
}

/* A fixed-size scalar of 1 + size bytes. */
static int scalar(fn_pack_dec *d, const unsigned char *p, size_t avail, unsigned b)
{
    static const unsigned char sizes[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8}; /* ca .. d3 */
    size_t size = sizes[b - 0xCA];
    int rc;

    if (avail < 1 + size)
        return 0;
    p++;
    switch (b) {
    case 0xCA: {
        uint32_t bits = be32(p);
        float f;
        memcpy(&f, &bits, 4);
        rc = emit_double(d, (double)f);
        break;
    }
    case 0xCB: {
        uint64_t bits = be64(p);
        double v;
        memcpy(&v, &bits, 8);
        rc = emit_double(d, v);
        break;
    }
    case 0xCC: rc = emit_int(d, 0, p[0]); break;
    case 0xCD: rc = emit_int(d, 0, be16(p)); break;
    case 0xCE: rc = emit_int(d, 0, be32(p)); break;
    case 0xCF: rc = emit_int(d, 0, be64(p)); break;
    default: {
        int64_t v = b == 0xD0 ? (int8_t)p[0] : b == 0xD1 ? (int16_t)be16(p)
                  : b == 0xD2 ? (int32_t)be32(p) : (int64_t)be64(p);
        rc = v < 0 ? emit_int(d, 1, 0 - (uint64_t)v) : emit_int(d, 0, (uint64_t)v);
        break;
    }
    }
    if (rc)
        return rc;
    d->pos += 1 + size;
    return attach(d, 0);
}

/* Transcode one item at buf[d->pos..end): 1 (an item done and attached),
 * 2 (a container opened), 0 (need more bytes; nothing changed) or FN_E_*. */
static int dec_item(fn_pack_dec *d, const unsigned char *buf, size_t end)
{
    size_t avail = end - d->pos;
    const unsigned char *p = buf + d->pos;
    unsigned b;
    int rc;

    if (!avail)
        return 0;
    d->work++;
    b = p[0];
    if (b < 0x80 || b >= 0xE0) {
        rc = b < 0x80 ? emit_int(d, 0, b) : emit_int(d, 1, 0x100 - b);
        if (rc)
            return rc;
        d->pos++;
        return attach(d, 0);
    }
    if (b < 0xA0)
        return container(d, b < 0x90, b & 0x0F, 1);
    if (b < 0xC0)
        return sized(d, buf, p, avail, 0, 0, b & 0x1F);
    switch (b) {
    case 0xC0:
    case 0xC2:
    case 0xC3:
        if (put1(d, b == 0xC0 ? FN_MARSHAL_NONE : b == 0xC2 ? FN_MARSHAL_FALSE : FN_MARSHAL_TRUE))
            return FN_E_NOMEM;
        d->pos++;
        return attach(d, 0);
    case 0xC1: return FN_E_PACK_RESERVED;
    case 0xC4: return sized(d, buf, p, avail, 1, 1, 0);
    case 0xC5: return sized(d, buf, p, avail, 2, 1, 0);
    case 0xC6: return sized(d, buf, p, avail, 4, 1, 0);
    case 0xC7: return sized(d, buf, p, avail, 1, 2, 0);
    case 0xC8: return sized(d, buf, p, avail, 2, 2, 0);
    case 0xC9: return sized(d, buf, p, avail, 4, 2, 0);
    case 0xD4: return sized(d, buf, p, avail, 0, 2, 1);
    case 0xD5: return sized(d, buf, p, avail, 0, 2, 2);
    case 0xD6: return sized(d, buf, p, avail, 0, 2, 4);
    case 0xD7: return sized(d, buf, p, avail, 0, 2, 8);
    case 0xD8: return sized(d, buf, p, avail, 0, 2, 16);
    case 0xD9: return sized(d, buf, p, avail, 1, 0, 0);
    case 0xDA: return sized(d, buf, p, avail, 2, 0, 0);
    case 0xDB: return sized(d, buf, p, avail, 4, 0, 0);
    case 0xDC: return avail < 3 ? 0 : container(d, 0, be16(p + 1), 3);
    case 0xDD: return avail < 5 ? 0 : container(d, 0, be32(p + 1), 5);
    case 0xDE: return avail < 3 ? 0 : container(d, 1, be16(p + 1), 3);
    case 0xDF: return avail < 5 ? 0 : container(d, 1, be32(p + 1), 5);
    default: return scalar(d, p, avail, b);
    }
}

/* Transcode items until an object is complete (FN_PACK_OBJECT, obj_len
 * set), the bytes run out (FN_PACK_NEED_DATA) or an error. */
static int dec_run(fn_pack_dec *d, const unsigned char *buf, size_t end)
{
    for (;;) {
        int rc = dec_item(d, buf, end);
        if (rc <= 0)
            return rc;
        if (rc == 1 && d->depth == 0) {
            d->obj_len = d->pos;
            return FN_PACK_OBJECT;
        }
    }
}

int fn_pack_dec_next(fn_pack_dec *d)
{
    int rc;

    if (d->err)
        return d->err;
    dec_drop(d);
    rc = dec_run(d, (const unsigned char *)fn_pack_dec_data(d), fn_pack_dec_buffered(d));
    if (rc == FN_PACK_OBJECT)
        d->drop = d->obj_len;
    else if (rc < 0)
        d->err = rc;
    return rc;
}

int64_t fn_pack_unpackb(fn_pack_dec *d, const char *data, size_t len, const fn_pack_limits *lim,
                        int flags)
{
    int rc;

    d->lim = *lim;
    d->flags = flags;
    dec_clear(d);
    rc = dec_run(d, (const unsigned char *)data, len);
    if (rc == FN_PACK_NEED_DATA)
        return FN_E_TRUNCATED;
    if (rc != FN_PACK_OBJECT)
        return rc;
    if (d->obj_len != len)
        return FN_E_PACK_EXTRA;
    if (d->fallback)
        return FN_E_PACK_FALLBACK;
    return (int64_t)d->out_len;
}

/* ------------------------------------------------------------------------ */
/* Encoding: marshal -> MessagePack                                           */

typedef struct enc_frame {
    size_t hdr;               /* a dict: where its header byte is */
    uint64_t items;           /* a list: items still to come; a dict: keys and values so far */
    size_t ref_base;          /* a dict: its first inner reference */
    int64_t ref;              /* this container's reference index, -1 if none */
    uint32_t height;          /* the highest finished child */
    int dict;
} enc_frame;

typedef struct enc_ref {
    size_t start, end;        /* its MessagePack bytes in out */
    uint32_t height;          /* containers nested in it, itself included */
    int open;                 /* a container not yet closed */
} enc_ref;

fn_pack_enc *fn_pack_enc_new(void)
{
    return calloc(1, sizeof(fn_pack_enc));
}

void fn_pack_enc_free(fn_pack_enc *e)
{
    if (!e)
        return;
    free(e->out);
    free(e->stack);
    free(e->refs);
    free(e);
}

static inline int put(fn_pack_enc *e, const void *p, size_t n)
{
    if (e->out_cap - e->out_len < n && grow(&e->out, &e->out_cap, e->out_len, n))
        return FN_E_NOMEM;
    memcpy(e->out + e->out_len, p, n);
    e->out_len += n;
    return 0;
}

/* A type byte and a big-endian length of size bytes. */
static inline int put_head(fn_pack_enc *e, unsigned type, uint64_t n, int size)
{
    unsigned char *w;

    if (e->out_cap - e->out_len < 9 && grow(&e->out, &e->out_cap, e->out_len, 9))
        return FN_E_NOMEM;
    w = (unsigned char *)e->out + e->out_len;
    w[0] = (unsigned char)type;
    for (int i = 0; i < size; i++)
        w[1 + i] = (unsigned char)(n >> (8 * (size - 1 - i)));
    e->out_len += (size_t)(1 + size);
    return 0;
}

/* Room for n more bytes of output. */
static inline int room(fn_pack_enc *e, size_t n)
{
    if (e->out_cap - e->out_len < n && grow(&e->out, &e->out_cap, e->out_len, n))
        return FN_E_NOMEM;
    return 0;
}

/* Write v big-endian in size bytes at w; return the position after. */
static inline unsigned char *be_put(unsigned char *w, uint64_t v, int size)
{
    for (int i = size - 1; i >= 0; i--)
        *w++ = (unsigned char)(v >> (8 * i));
    return w;
}

static inline int put_int(fn_pack_enc *e, int negative, uint64_t m)
{
    unsigned char *w, *start;

    if (room(e, 9))
        return FN_E_NOMEM;
    w = start = (unsigned char *)e->out + e->out_len;
    if (!negative) {
        if (m < 0x80) {
            *w++ = (unsigned char)m;
        } else if (m < 0x100) {
            *w++ = 0xCC;
            *w++ = (unsigned char)m;
        } else if (m < 0x10000) {
            *w++ = 0xCD;
            w = be_put(w, m, 2);
        } else if (m < 0x100000000ull) {
            *w++ = 0xCE;
            w = be_put(w, m, 4);
        } else {
            *w++ = 0xCF;
            w = be_put(w, m, 8);
        }
    } else if (m <= 0x20) {
        *w++ = (unsigned char)(0x100 - m);
    } else if (m <= 0x80) {
        *w++ = 0xD0;
        *w++ = (unsigned char)(0 - m);
    } else if (m <= 0x8000) {
        *w++ = 0xD1;
        w = be_put(w, 0 - m, 2);
    } else if (m <= 0x80000000ull) {
        *w++ = 0xD2;
        w = be_put(w, 0 - m, 4);
    } else {
        *w++ = 0xD3;
        w = be_put(w, 0 - m, 8);
    }
    e->out_len += (size_t)(w - start);
    return 0;
}

/* A str (or, bin: a bin) of n bytes: the smallest header, then the bytes. */
static inline int put_raw(fn_pack_enc *e, const char *s, size_t n, int bin, int flags)
{
    unsigned char *w;

    if (room(e, n + 5))
        return FN_E_NOMEM;
    w = (unsigned char *)e->out + e->out_len;
    if (bin && !(flags & FN_PACK_NO_BIN)) {
        if (n < 0x100) {
            *w++ = 0xC4;
            *w++ = (unsigned char)n;
        } else if (n < 0x10000) {
            *w++ = 0xC5;
            w = be_put(w, n, 2);
        } else {
            *w++ = 0xC6;
            w = be_put(w, n, 4);
        }
    } else if (n < 32) {
        *w++ = (unsigned char)(0xA0 | n);
    } else if (n < 256 && !(flags & FN_PACK_NO_BIN)) {
        *w++ = 0xD9;
        *w++ = (unsigned char)n;
    } else if (n < 0x10000) {
        *w++ = 0xDA;
        w = be_put(w, n, 2);
    } else {
        *w++ = 0xDB;
        w = be_put(w, n, 4);
    }
    memcpy(w, s, n);
    e->out_len = (size_t)((char *)w + n - e->out);
    return 0;
}

/* A dict of count pairs closes: write its header, widening it in place
 * (moving its pairs; the caller moves their references) when count >= 16. */
static int close_dict(fn_pack_enc *e, const enc_frame *f)
{
    uint64_t count = f->items / 2;
    size_t extra, body = e->out_len - f->hdr - 1;
    unsigned char *h;

    if (count < 16) {
        e->out[f->hdr] = (char)(0x80 | count);
        return 0;
    }
    if (count > 0xffffffffu)
        return FN_E_PACK_MARSHAL;
    extra = count < 0x10000 ? 2 : 4;
    if (grow(&e->out, &e->out_cap, e->out_len, extra))
        return FN_E_NOMEM;
    memmove(e->out + f->hdr + 1 + extra, e->out + f->hdr + 1, body);
    h = (unsigned char *)e->out + f->hdr;
    if (extra == 2) {
        h[0] = 0xDE;
        h[1] = (unsigned char)(count >> 8);
        h[2] = (unsigned char)count;
    } else {
        h[0] = 0xDF;
        h[1] = (unsigned char)(count >> 24);
        h[2] = (unsigned char)(count >> 16);
        h[3] = (unsigned char)(count >> 8);
        h[4] = (unsigned char)count;
    }
    e->out_len += extra;
    return 0;
}

int64_t fn_pack_encode(fn_pack_enc *e, const char *m, size_t len, uint64_t max_depth, int flags)
{
    const unsigned char *u = (const unsigned char *)m;
    size_t p = 0, depth = 0, nrefs = 0;
    enc_frame *stack = e->stack;
    enc_ref *refs = e->refs;
    int rc;

    e->out_len = 0;
    /* MessagePack is rarely longer than marshal: one allocation, usually. */
    if (grow(&e->out, &e->out_cap, 0, len + 64))
        return FN_E_NOMEM;
    for (;;) {
        uint32_t height = 0;
        int64_t ref = -1;
        unsigned code;

        if (p < len && u[p] == FN_MARSHAL_NULL) {
            /* a dict ends (TYPE_NULL means nothing else): it is the item
             * just finished */
            enc_frame *f;
            if (!depth || !stack[depth - 1].dict || stack[depth - 1].items % 2)
                return FN_E_PACK_MARSHAL;
            f = &stack[--depth];
            p++;
            if ((rc = close_dict(e, f)) != 0)
                return rc;
            if (f->items / 2 >= 16) {
                size_t extra = f->items / 2 < 0x10000 ? 2 : 4;
                for (size_t i = f->ref_base; i < nrefs; i++) {
                    refs[i].start += extra;
                    refs[i].end += extra;
                }
            }
            height = f->height + 1;
            ref = f->ref;
            goto done;
        }
        if (p >= len)
            return FN_E_PACK_MARSHAL;
        code = u[p++];
        if (code & FN_MARSHAL_FLAG_REF) {
            code &= ~(unsigned)FN_MARSHAL_FLAG_REF;
            if (nrefs >= e->refs_cap &&
                grow_items((void **)&e->refs, &e->refs_cap, nrefs, sizeof *refs))
                return FN_E_NOMEM;
            refs = e->refs;
            ref = (int64_t)nrefs++;
            refs[ref].start = e->out_len;
            refs[ref].open = 1;
            refs[ref].height = 0;
        }
        switch (code) {
        case FN_MARSHAL_NONE:
            rc = put_head(e, 0xC0, 0, 0);
            break;
        case FN_MARSHAL_FALSE:
            rc = put_head(e, 0xC2, 0, 0);
            break;
        case FN_MARSHAL_TRUE:
            rc = put_head(e, 0xC3, 0, 0);
            break;
        case FN_MARSHAL_INT: {
            int32_t v;
            if (len - p < 4)
                return FN_E_PACK_MARSHAL;
            v = (int32_t)fn_marshal_get32(u + p);
            p += 4;
            rc = v < 0 ? put_int(e, 1, 0 - (uint64_t)(int64_t)v) : put_int(e, 0, (uint64_t)v);
            break;
        }
        case FN_MARSHAL_LONG: {
            int32_t n;
            uint32_t digits;
            uint64_t v = 0;
            if (len - p < 4)
                return FN_E_PACK_MARSHAL;
            n = (int32_t)fn_marshal_get32(u + p);
            p += 4;
            digits = n < 0 ? 0u - (uint32_t)n : (uint32_t)n;
            if (digits > 5)
                return FN_E_PACK_INT_RANGE;
            if ((len - p) / 2 < digits)
                return FN_E_PACK_MARSHAL;
            for (uint32_t i = 0; i < digits; i++) {
                uint64_t digit = (uint64_t)u[p + 2 * i] | (uint64_t)u[p + 2 * i + 1] << 8;
                if (digit > 0x7fff)
                    return FN_E_PACK_MARSHAL;
                if (i == 4 && digit > 0xf)
                    return FN_E_PACK_INT_RANGE;
                v |= digit << (15 * i);
            }
            p += 2 * (size_t)digits;
            if (n < 0 && v > 0x8000000000000000ull)
                return FN_E_PACK_INT_RANGE;
            rc = put_int(e, n < 0 && v, v);
            break;
        }
        case FN_MARSHAL_BINARY_FLOAT: {
            unsigned char h[9];
            if (len - p < 8)
                return FN_E_PACK_MARSHAL;
            h[0] = 0xCB;
            for (int i = 0; i < 8; i++)
                h[1 + i] = u[p + 7 - i];
            p += 8;
            rc = put(e, h, 9);
            break;
        }
        case FN_MARSHAL_STRING:
        case FN_MARSHAL_ASCII:
        case FN_MARSHAL_ASCII_INTERNED:
        case FN_MARSHAL_UNICODE:
        case FN_MARSHAL_INTERNED:
        case FN_MARSHAL_SHORT_ASCII:
        case FN_MARSHAL_SHORT_ASCII_INTERNED: {
            size_t n;
            if (code == FN_MARSHAL_SHORT_ASCII || code == FN_MARSHAL_SHORT_ASCII_INTERNED) {
                if (len - p < 1)
                    return FN_E_PACK_MARSHAL;
                n = u[p++];
            } else {
                if (len - p < 4)
                    return FN_E_PACK_MARSHAL;
                n = fn_marshal_get32(u + p);
                p += 4;
                if (n > FN_MARSHAL_MAX_SIZE)
                    return FN_E_PACK_MARSHAL;
            }
            if (len - p < n)
                return FN_E_PACK_MARSHAL;
            if ((code == FN_MARSHAL_UNICODE || code == FN_MARSHAL_INTERNED) && has_surrogate(m + p, n))
                return FN_E_PACK_SURROGATE;
            rc = put_raw(e, m + p, n, code == FN_MARSHAL_STRING, flags);
            p += n;
            break;
        }
        case FN_MARSHAL_REF: {
            uint32_t idx;
            enc_ref r;
            if (ref >= 0 || len - p < 4)
                return FN_E_PACK_MARSHAL;
            idx = fn_marshal_get32(u + p);
            p += 4;
            if (idx >= nrefs)
                return FN_E_PACK_MARSHAL;
            r = refs[idx];
            if (r.open)
                return FN_E_PACK_CYCLE;
            if (depth + r.height > max_depth)
                return FN_E_PACK_DEPTH;
            if (room(e, r.end - r.start))
                return FN_E_NOMEM;
            if (r.end - r.start <= 16) {
                /* most references are to a key or a small int: no libc call */
                for (size_t i = r.start; i < r.end; i++)
                    e->out[e->out_len++] = e->out[i];
            } else {
                memcpy(e->out + e->out_len, e->out + r.start, r.end - r.start);
                e->out_len += r.end - r.start;
            }
            height = r.height;
            rc = 0;
            break;
        }
        case FN_MARSHAL_TUPLE:
        case FN_MARSHAL_SMALL_TUPLE:
        case FN_MARSHAL_LIST:
        case FN_MARSHAL_DICT: {
            uint64_t n = 0;
            enc_frame *f;
            if (depth >= max_depth)
                return FN_E_PACK_DEPTH;
            if (code == FN_MARSHAL_SMALL_TUPLE) {
                if (len - p < 1)
                    return FN_E_PACK_MARSHAL;
                n = u[p++];
            } else if (code != FN_MARSHAL_DICT) {
                if (len - p < 4)
                    return FN_E_PACK_MARSHAL;
                n = fn_marshal_get32(u + p);
                p += 4;
                if (n > FN_MARSHAL_MAX_SIZE || n > len - p)
                    return FN_E_PACK_MARSHAL; /* every item takes a byte at least */
            }
            if (code != FN_MARSHAL_DICT) {
                rc = n < 16 ? put_head(e, 0x90 | (unsigned)n, 0, 0)
                   : n < 0x10000 ? put_head(e, 0xDC, n, 2) : put_head(e, 0xDD, n, 4);
                if (rc)
                    return rc;
                if (n == 0) {
                    height = 1;
                    break;
                }
            }
            if (grow_items((void **)&e->stack, &e->stack_cap, depth, sizeof *stack))
                return FN_E_NOMEM;
            stack = e->stack;
            f = &stack[depth++];
            f->dict = code == FN_MARSHAL_DICT;
            f->items = f->dict ? 0 : n;
            f->hdr = e->out_len;
            f->ref = ref;
            f->height = 0;
            if (f->dict && put_head(e, 0x80, 0, 0))
                return FN_E_NOMEM;
            f->ref_base = nrefs;
            continue;
        }
        default:
            return FN_E_PACK_UNSUPPORTED;
        }
        if (rc)
            return rc;
    done:
        /* An item is finished: close its reference record, then count it
         * in the containers it completes. */
        for (;;) {
            enc_frame *f;
            if (ref >= 0) {
                refs[ref].end = e->out_len;
                refs[ref].height = height;
                refs[ref].open = 0;
            }
            if (depth == 0)
                return p == len ? (int64_t)e->out_len : FN_E_PACK_MARSHAL;
            f = &stack[depth - 1];
            if (height > f->height)
                f->height = height;
            if (f->dict) {
                f->items++;
                break;
            }
            if (--f->items)
                break;
            depth--;
            height = f->height + 1;
            ref = f->ref;
        }
    }
}
