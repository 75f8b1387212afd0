/* hpack.c - HPACK (RFC 7541); see hpack.h and fastnet/codec/hpack/py.py. */
#include "hpack.h"

#include <stdlib.h>
#include <string.h>

#include "hpack_tables.h"
#include "marshal.h"
#include "status.h"

#define ENTRY_OVERHEAD 32u
#define INITIAL_TABLE_SIZE 4096u
#define MAX_INTEGER_BYTES 5  /* continuation bytes: 5 * 7 bits cover 32 */
#define EOS 256

/* ---- the dynamic table: a ring of entries, newest at head ---------------- */

typedef struct {
    uint8_t *data;  /* name then value, one allocation */
    uint32_t name_len, value_len;
} entry;

typedef struct {
    entry *ring;
    size_t cap, head, count;  /* entry i (0 = newest) is ring[(head + i) % cap] */
    uint32_t size, max_size;
} table;

static entry *table_at(const table *t, size_t i)
{
    return &t->ring[(t->head + i) % t->cap];
}

static void table_evict(table *t, uint64_t room)
{
    while (t->count && (uint64_t)t->size + room > t->max_size) {
        entry *old = table_at(t, t->count - 1);
        t->size -= old->name_len + old->value_len + ENTRY_OVERHEAD;
        free(old->data);
        old->data = NULL;
        t->count--;
    }
}

static void table_resize(table *t, uint32_t max_size)
{
    t->max_size = max_size;
    table_evict(t, 0);
}

static void table_clear(table *t)
{
    table_resize(t, 0);
    free(t->ring);
    t->ring = NULL;
    t->cap = 0;
}

static int table_add(table *t, const uint8_t *name, uint32_t name_len,
                     const uint8_t *value, uint32_t value_len)
{
    uint64_t cost = (uint64_t)name_len + value_len + ENTRY_OVERHEAD;
    if (cost > t->max_size) {  /* a larger entry empties the table (4.4) */
        table_evict(t, cost);
        return FN_OK;
    }
    /* Copy first: name may point into an entry that eviction frees. */
    uint8_t *data = malloc((size_t)name_len + value_len + 1);
    if (!data)
        return FN_E_NOMEM;
    memcpy(data, name, name_len);
    memcpy(data + name_len, value, value_len);
    table_evict(t, cost);
    if (t->count == t->cap) {  /* at most max_size / 32 entries: bounded */
        size_t cap = t->cap ? t->cap * 2 : 16;
        entry *ring = malloc(cap * sizeof *ring);
        if (!ring) {
            free(data);
            return FN_E_NOMEM;
        }
        for (size_t i = 0; i < t->count; i++)
            ring[i] = *table_at(t, i);
        free(t->ring);
        t->ring = ring;
        t->cap = cap;
        t->head = 0;
    }
    t->head = (t->head + t->cap - 1) % t->cap;
    entry *e = &t->ring[t->head];
    e->data = data;
    e->name_len = name_len;
    e->value_len = value_len;
    t->count++;
    t->size += (uint32_t)cost;
    return FN_OK;
}

/* The field at 1-based index over static then dynamic: FN_OK or FN_E_HPACK_INDEX. */
static int table_get(const table *t, uint64_t index, const uint8_t **name, uint32_t *name_len,
                     const uint8_t **value, uint32_t *value_len)
{
    if (index >= 1 && index <= FN_HPACK_STATIC_LEN) {
        *name = (const uint8_t *)fn_hpack_static[index - 1].name;
        *name_len = fn_hpack_static[index - 1].name_len;
        *value = (const uint8_t *)fn_hpack_static[index - 1].value;
        *value_len = fn_hpack_static[index - 1].value_len;
        return FN_OK;
    }
    if (index > FN_HPACK_STATIC_LEN && index - FN_HPACK_STATIC_LEN <= t->count) {
        const entry *e = table_at(t, index - FN_HPACK_STATIC_LEN - 1);
        *name = e->data;
        *name_len = e->name_len;
        *value = e->data + e->name_len;
        *value_len = e->value_len;
        return FN_OK;
    }
    return FN_E_HPACK_INDEX;
}

/* ---- Huffman (canonical code: codes of one length are consecutive) ------- */

static struct {
    int ready;
    uint32_t first[32], count[32], offset[32];
    uint16_t symbols[257];
} huff;

static void huff_init(void)
{
    if (huff.ready)
        return;
    size_t n = 0;
    for (unsigned len = 5; len <= 30; len++)
        for (unsigned s = 0; s <= EOS; s++)
            if (fn_hpack_huff_len[s] == len) {
                if (huff.count[len] == 0) {
                    huff.first[len] = fn_hpack_huff_code[s];
                    huff.offset[len] = (uint32_t)n;
                }
                huff.count[len]++;
                huff.symbols[n++] = (uint16_t)s;
            }
    huff.ready = 1;
}

size_t fn_hpack_huffman_encode(const uint8_t *in, size_t len, uint8_t *out)
{
    uint64_t acc = 0;
    unsigned bits = 0;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        acc = acc << fn_hpack_huff_len[in[i]] | fn_hpack_huff_code[in[i]];
        bits += fn_hpack_huff_len[in[i]];
        while (bits >= 8) {
            bits -= 8;
            out[w++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits)
        out[w++] = (uint8_t)(acc << (8 - bits) | (0xffu >> bits));
    return w;
}

static size_t huffman_length(const uint8_t *in, size_t len)
{
    uint64_t bits = 0;
    for (size_t i = 0; i < len; i++)
        bits += fn_hpack_huff_len[in[i]];
    return (size_t)((bits + 7) / 8);
}

int64_t fn_hpack_huffman_decode(const uint8_t *in, size_t len, uint8_t *out)
{
    huff_init();
    uint32_t code = 0;
    unsigned length = 0;
    size_t w = 0;
    for (size_t i = 0; i < len; i++)
        for (int shift = 7; shift >= 0; shift--) {
            code = code << 1 | ((in[i] >> shift) & 1u);
            length++;
            uint32_t index = code - huff.first[length];
            if (code >= huff.first[length] && index < huff.count[length]) {
                uint16_t symbol = huff.symbols[huff.offset[length] + index];
                if (symbol == EOS)
                    return FN_E_HPACK_HUFFMAN;
                out[w++] = (uint8_t)symbol;
                code = 0;
                length = 0;
            }
        }
    if (length > 7 || code != (1u << length) - 1)
        return FN_E_HPACK_HUFFMAN;
    return (int64_t)w;
}

/* ---- integers and strings (5.1, 5.2) -------------------------------------- */

static int get_integer(const uint8_t *in, size_t len, size_t *pos, unsigned prefix, uint64_t *value)
{
    uint64_t mask = (1u << prefix) - 1;
    uint64_t v = in[*pos] & mask;
    size_t p = *pos + 1;
    if (v < mask) {
        *value = v;
        *pos = p;
        return FN_OK;
    }
    for (int k = 0; k < MAX_INTEGER_BYTES; k++) {
        if (p >= len)
            return FN_E_HPACK_TRUNCATED;
        uint8_t byte = in[p++];
        v += (uint64_t)(byte & 0x7f) << (7 * k);
        if (v > FN_HPACK_MAX_INTEGER)
            return FN_E_HPACK_INTEGER;
        if (!(byte & 0x80)) {
            *value = v;
            *pos = p;
            return FN_OK;
        }
    }
    return FN_E_HPACK_INTEGER;
}

/* ---- the decoder ----------------------------------------------------------- */

struct fn_hpack_decoder {
    table table;
    uint32_t allowed;
    int error;      /* the sticky error, or 0 */
    char *out;      /* the marshal stream of the last block */
    size_t out_len, out_cap;
    uint8_t *scratch;  /* Huffman-decoded strings of the current field */
    size_t scratch_cap;
};

fn_hpack_decoder *fn_hpack_decoder_new(uint32_t max_table_size)
{
    fn_hpack_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->allowed = max_table_size;
    d->table.max_size = max_table_size;
    return d;
}

void fn_hpack_decoder_free(fn_hpack_decoder *d)
{
    if (!d)
        return;
    table_clear(&d->table);
    free(d->out);
    free(d->scratch);
    free(d);
}

void fn_hpack_decoder_set_allowed(fn_hpack_decoder *d, uint32_t max_table_size)
{
    d->allowed = max_table_size;
}

uint32_t fn_hpack_decoder_table_size(const fn_hpack_decoder *d)
{
    return d->table.size;
}

static int out_reserve(fn_hpack_decoder *d, size_t more)
{
    if (d->out_cap - d->out_len >= more)
        return FN_OK;
    size_t cap = d->out_cap ? d->out_cap : 256;
    while (cap - d->out_len < more)
        cap *= 2;
    char *out = realloc(d->out, cap);
    if (!out)
        return FN_E_NOMEM;
    d->out = out;
    d->out_cap = cap;
    return FN_OK;
}

/* Read the string literal at in[*pos]; Huffman strings are decoded into
 * d->scratch from offset at (both of a field's strings live there). */
static int get_string(fn_hpack_decoder *d, const uint8_t *in, size_t len, size_t *pos,
                      size_t at, const uint8_t **s, uint32_t *s_len)
{
    if (*pos >= len)
        return FN_E_HPACK_TRUNCATED;
    int huffman = in[*pos] & 0x80;
    uint64_t n;
    int rc = get_integer(in, len, pos, 7, &n);
    if (rc < 0)
        return rc;
    if (n > len - *pos)
        return FN_E_HPACK_TRUNCATED;
    const uint8_t *raw = in + *pos;
    *pos += (size_t)n;
    if (!huffman) {
        *s = raw;
        *s_len = (uint32_t)n;
        return FN_OK;
    }
    size_t need = at + (size_t)n * 8 / 5 + 1;  /* every code has at least 5 bits */
    if (need > d->scratch_cap) {
        size_t cap = d->scratch_cap ? d->scratch_cap : 256;
        while (cap < need)
            cap *= 2;
        uint8_t *scratch = realloc(d->scratch, cap);
        if (!scratch)
            return FN_E_NOMEM;
        d->scratch = scratch;
        d->scratch_cap = cap;
    }
    int64_t w = fn_hpack_huffman_decode(raw, (size_t)n, d->scratch + at);
    if (w < 0)
        return (int)w;
    *s = d->scratch + at;
    *s_len = (uint32_t)w;
    return FN_OK;
}

static char *put_bytes(char *w, const uint8_t *s, uint32_t n)
{
    w = fn_marshal_header(w, FN_MARSHAL_STRING, n);
    memcpy(w, s, n);
    return w + n;
}

static int64_t decode(fn_hpack_decoder *d, const uint8_t *in, size_t len, size_t limit, size_t *never)
{
    table *t = &d->table;
    size_t pos = 0, fields = 0;
    uint64_t used = 0;
    d->out_len = 0;
    int rc = out_reserve(d, 5);
    if (rc < 0)
        return rc;
    d->out_len = 5;  /* the list header, written when the count is known */
    while (pos < len) {
        uint8_t byte = in[pos];
        const uint8_t *name, *value;
        uint32_t name_len, value_len;
        uint64_t index;
        int is_never = 0;
        if (byte & 0x80) {  /* indexed field (6.1) */
            if ((rc = get_integer(in, len, &pos, 7, &index)) < 0)
                return rc;
            if ((rc = table_get(t, index, &name, &name_len, &value, &value_len)) < 0)
                return rc;
        } else if ((byte & 0xe0) == 0x20) {  /* dynamic table size update (6.3) */
            if (fields)
                return FN_E_HPACK_TABLE_SIZE;
            uint64_t size;
            if ((rc = get_integer(in, len, &pos, 5, &size)) < 0)
                return rc;
            if (size > d->allowed)
                return FN_E_HPACK_TABLE_SIZE;
            table_resize(t, (uint32_t)size);
            continue;
        } else {  /* literal: 01 incremental, 0001 never indexed, 0000 without */
            int indexing = byte & 0x40;
            is_never = !indexing && (byte & 0x10);
            if ((rc = get_integer(in, len, &pos, indexing ? 6 : 4, &index)) < 0)
                return rc;
            size_t at = 0;
            int name_huffman = 0;
            if (index) {
                const uint8_t *unused;
                uint32_t unused_len;
                if ((rc = table_get(t, index, &name, &name_len, &unused, &unused_len)) < 0)
                    return rc;
            } else {
                name_huffman = pos < len && (in[pos] & 0x80);
                if ((rc = get_string(d, in, len, &pos, 0, &name, &name_len)) < 0)
                    return rc;
                if (name_huffman)
                    at = name_len;  /* the value goes after the name in scratch */
            }
            if ((rc = get_string(d, in, len, &pos, at, &value, &value_len)) < 0)
                return rc;
            if (name_huffman)  /* the value's decoding may have moved scratch */
                name = d->scratch;
        }
        used += (uint64_t)name_len + value_len + ENTRY_OVERHEAD;
        if (used > limit)
            return FN_E_HPACK_LIST_TOO_LARGE;
        /* a field's marshal: a 2-byte tuple header, two 5-byte string
         * headers, a 1-byte None if never indexed (13 < the 32 it counts) */
        if ((rc = out_reserve(d, (size_t)name_len + value_len + 13)) < 0)
            return rc;
        char *w = d->out + d->out_len;
        *w++ = FN_MARSHAL_SMALL_TUPLE;
        *w++ = is_never ? 3 : 2;
        w = put_bytes(w, name, name_len);
        w = put_bytes(w, value, value_len);
        if (is_never) {
            *w++ = FN_MARSHAL_NONE;
            (*never)++;
        }
        d->out_len = (size_t)(w - d->out);
        fields++;
        if ((byte & 0xc0) == 0x40 && (rc = table_add(t, name, name_len, value, value_len)) < 0)
            return rc;
    }
    fn_marshal_header(d->out, FN_MARSHAL_LIST, (uint32_t)fields);
    return (int64_t)d->out_len;
}

int64_t fn_hpack_decode(fn_hpack_decoder *d, const uint8_t *in, size_t len,
                        size_t max_header_list_size, const char **out, size_t *never)
{
    if (d->error)
        return FN_E_STICKY;
    *never = 0;
    int64_t n = decode(d, in, len, max_header_list_size, never);
    if (n < 0) {
        d->error = (int)n;
        return n;
    }
    *out = d->out;
    return n;
}

/* ---- the encoder ----------------------------------------------------------- */

struct fn_hpack_encoder {
    table table;
    int huffman;
    int pending;  /* size updates owed at the next block's start */
    uint32_t pending_min, pending_last;
};

fn_hpack_encoder *fn_hpack_encoder_new(uint32_t max_table_size, int huffman)
{
    fn_hpack_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->table.max_size = max_table_size;
    e->huffman = huffman;
    if (max_table_size != INITIAL_TABLE_SIZE) {  /* the peer's decoder starts at 4096 */
        e->pending = 1;
        e->pending_min = e->pending_last = max_table_size;
    }
    return e;
}

void fn_hpack_encoder_free(fn_hpack_encoder *e)
{
    if (!e)
        return;
    table_clear(&e->table);
    free(e);
}

void fn_hpack_encoder_set_max_table_size(fn_hpack_encoder *e, uint32_t max_table_size)
{
    if (max_table_size == e->table.max_size && !e->pending)
        return;
    if (!e->pending || max_table_size < e->pending_min)
        e->pending_min = max_table_size;
    e->pending = 1;
    e->pending_last = max_table_size;
    table_resize(&e->table, max_table_size);
}

uint32_t fn_hpack_encoder_table_size(const fn_hpack_encoder *e)
{
    return e->table.size;
}

size_t fn_hpack_encode_bound(size_t n, size_t data_len)
{
    /* two size updates of 6 bytes; per field two integers of 6 bytes */
    return 12 + 12 * n + data_len;
}

static uint8_t *put_integer(uint8_t *w, uint8_t flags, unsigned prefix, uint64_t value)
{
    uint64_t mask = (1u << prefix) - 1;
    if (value < mask) {
        *w++ = (uint8_t)(flags | value);
        return w;
    }
    *w++ = (uint8_t)(flags | mask);
    value -= mask;
    while (value >= 0x80) {
        *w++ = (uint8_t)((value & 0x7f) | 0x80);
        value >>= 7;
    }
    *w++ = (uint8_t)value;
    return w;
}

static uint8_t *put_string(const fn_hpack_encoder *e, uint8_t *w, const uint8_t *s, uint32_t n)
{
    if (e->huffman) {
        size_t coded = huffman_length(s, n);
        if (coded < n) {
            w = put_integer(w, 0x80, 7, coded);
            return w + fn_hpack_huffman_encode(s, n, w);
        }
    }
    w = put_integer(w, 0x00, 7, n);
    memcpy(w, s, n);
    return w + n;
}

/* The 1-based index of the first static entry with this name (and value,
 * if value is not NULL), or 0. */
static uint64_t static_index(const uint8_t *name, uint32_t name_len, const uint8_t *value, uint32_t value_len)
{
    for (unsigned i = 0; i < FN_HPACK_STATIC_LEN; i++)
        if (fn_hpack_static[i].name_len == name_len && !memcmp(fn_hpack_static[i].name, name, name_len)
            && (!value || (fn_hpack_static[i].value_len == value_len
                           && !memcmp(fn_hpack_static[i].value, value, value_len))))
            return i + 1;
    return 0;
}

/* The index of the newest dynamic entry with this name (and value), or 0. */
static uint64_t dynamic_index(const table *t, const uint8_t *name, uint32_t name_len,
                              const uint8_t *value, uint32_t value_len)
{
    for (size_t i = 0; i < t->count; i++) {
        const entry *en = table_at(t, i);
        if (en->name_len == name_len && !memcmp(en->data, name, name_len)
            && (!value || (en->value_len == value_len && !memcmp(en->data + name_len, value, value_len))))
            return FN_HPACK_STATIC_LEN + 1 + i;
    }
    return 0;
}

int64_t fn_hpack_encode(fn_hpack_encoder *e, const uint8_t *data, const uint32_t *lens,
                        const uint8_t *sensitive, size_t n, uint8_t *out, size_t cap)
{
    size_t total = 0;
    for (size_t i = 0; i < 2 * n; i++)
        total += lens[i];
    if (cap < fn_hpack_encode_bound(n, total))
        return FN_E_ARG;
    uint8_t *w = out;
    if (e->pending) {
        if (e->pending_min < e->pending_last)
            w = put_integer(w, 0x20, 5, e->pending_min);
        w = put_integer(w, 0x20, 5, e->pending_last);
        e->pending = 0;
    }
    table *t = &e->table;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *name = data, *value = data + lens[2 * i];
        uint32_t name_len = lens[2 * i], value_len = lens[2 * i + 1];
        data += (size_t)name_len + value_len;
        if (!sensitive[i]) {
            uint64_t index = static_index(name, name_len, value, value_len);
            if (!index)
                index = dynamic_index(t, name, name_len, value, value_len);
            if (index) {
                w = put_integer(w, 0x80, 7, index);
                continue;
            }
        }
        uint64_t name_index = static_index(name, name_len, NULL, 0);
        if (!name_index)
            name_index = dynamic_index(t, name, name_len, NULL, 0);
        int add = 0;
        if (sensitive[i]) {
            w = put_integer(w, 0x10, 4, name_index);
        } else if ((uint64_t)name_len + value_len + ENTRY_OVERHEAD <= t->max_size) {
            w = put_integer(w, 0x40, 6, name_index);
            add = 1;
        } else {
            w = put_integer(w, 0x00, 4, name_index);
        }
        if (!name_index)
            w = put_string(e, w, name, name_len);
        w = put_string(e, w, value, value_len);
        if (add) {
            int rc = table_add(t, name, name_len, value, value_len);
            if (rc < 0)
                return rc;
        }
    }
    return (int64_t)(w - out);
}
