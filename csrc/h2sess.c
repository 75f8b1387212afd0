/* h2sess.c - HTTP/2's per-read batch; see h2sess.h and fastnet/codec/h2sess/py.py. */
#include "h2sess.h"

#include <stdlib.h>
#include <string.h>

#include "h2frame.h"
#include "hpack.h"
#include "marshal.h"
#include "status.h"

enum { DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION };
enum { EV_ERROR = -1, EV_UNKNOWN = 10 };
#define F_END_STREAM 0x1
#define F_ACK 0x1
#define F_END_HEADERS 0x4
#define F_PADDED 0x8
#define BATCH 64
/* RFC 9113 7 error codes a frame's stream error carries. */
#define PROTOCOL_ERROR 0x1
#define FRAME_SIZE_ERROR 0x6

struct fn_h2sess {
    fn_h2_parser *frames;
    fn_hpack_decoder *hpack;
    fn_h2_frame batch[BATCH];
    char *out;                 /* the marshal list being written */
    size_t out_len, out_cap;
    uint32_t count;            /* tuples in it */
    uint8_t *block;            /* an open field block (HEADERS without END_HEADERS) */
    size_t block_len, block_cap;
    int block_open;
    uint32_t block_sid, block_conts;
    int block_end;
    uint32_t block_error;
    const char *error;         /* the sticky error's rule, or NULL */
};

fn_h2sess *fn_h2sess_new(uint32_t header_table_size)
{
    fn_h2sess *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->frames = fn_h2_parser_new();
    s->hpack = fn_hpack_decoder_new(header_table_size);
    if (!s->frames || !s->hpack) {
        fn_h2sess_free(s);
        return NULL;
    }
    return s;
}

void fn_h2sess_free(fn_h2sess *s)
{
    if (!s)
        return;
    fn_h2_parser_free(s->frames);
    fn_hpack_decoder_free(s->hpack);
    free(s->out);
    free(s->block);
    free(s);
}

void fn_h2sess_set_table_size(fn_h2sess *s, uint32_t header_table_size)
{
    fn_hpack_decoder_set_allowed(s->hpack, header_table_size);
}

const char *fn_h2sess_error(const fn_h2sess *s)
{
    return s->error;
}

/* ---- writing the marshal list ------------------------------------------------ */

static int reserve(fn_h2sess *s, size_t n)
{
    if (n <= s->out_cap - s->out_len)
        return FN_OK;
    size_t cap = s->out_cap ? s->out_cap : 4096;
    while (cap - s->out_len < n) {
        if (cap > SIZE_MAX / 2)
            return FN_E_NOMEM;
        cap *= 2;
    }
    char *grown = realloc(s->out, cap);
    if (!grown)
        return FN_E_NOMEM;
    s->out = grown;
    s->out_cap = cap;
    return FN_OK;
}

/* Each put_* has had its room reserved by the caller. */
static void put_byte(fn_h2sess *s, char c)
{
    s->out[s->out_len++] = c;
}

/* An int as marshal writes it: int32, or a long of 15-bit digits. */
static void put_long(fn_h2sess *s, int64_t v)
{
    char *w = s->out + s->out_len;
    if (v >= -0x7fffffffLL - 1 && v <= 0x7fffffffLL) {
        w = fn_marshal_header(w, FN_MARSHAL_INT, (uint32_t)(int32_t)v);
    } else {
        uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        int32_t digits = 0;
        for (uint64_t t = m; t; t >>= 15)
            digits++;
        w = fn_marshal_header(w, FN_MARSHAL_LONG, (uint32_t)(v < 0 ? -digits : digits));
        for (int32_t i = 0; i < digits; i++, m >>= 15) {
            *w++ = (char)(m & 0xff);
            *w++ = (char)((m >> 8) & 0x7f);
        }
    }
    s->out_len = (size_t)(w - s->out);
}

static void put_int(fn_h2sess *s, uint32_t v)
{
    put_long(s, (int64_t)v);
}

static void put_bool(fn_h2sess *s, int v)
{
    put_byte(s, v ? FN_MARSHAL_TRUE : FN_MARSHAL_FALSE);
}

static void put_bytes(fn_h2sess *s, const uint8_t *p, size_t n)
{
    char *w = fn_marshal_header(s->out + s->out_len, FN_MARSHAL_STRING, (uint32_t)n);
    if (n)
        memcpy(w, p, n);
    s->out_len = (size_t)(w - s->out) + n;
}

/* A tuple of n items whose first is the event kind. */
static void put_tuple(fn_h2sess *s, uint8_t n, int kind)
{
    put_byte(s, FN_MARSHAL_SMALL_TUPLE);
    put_byte(s, (char)n);
    char *w = fn_marshal_header(s->out + s->out_len, FN_MARSHAL_INT, (uint32_t)kind);
    s->out_len = (size_t)(w - s->out);
    s->count++;
}

/* Room for a tuple of up to 8 ints and bools plus extra bytes. */
#define ROOM(extra) (2 + 8 * 16 + (extra))

static int error(fn_h2sess *s, const char *rule)
{
    size_t n = strlen(rule);
    if (reserve(s, ROOM(n)) < 0)
        return FN_E_NOMEM;
    s->error = rule;
    put_tuple(s, 2, EV_ERROR);
    put_byte(s, FN_MARSHAL_SHORT_ASCII);
    put_byte(s, (char)n);
    memcpy(s->out + s->out_len, rule, n);
    s->out_len += n;
    return FN_OK;
}

static const char *frame_rule(int rc)
{
    switch (rc) {
    case FN_E_H2_TOO_LARGE: return "too_large";
    case FN_E_H2_EXPECTED_CONTINUATION: return "expected_continuation";
    case FN_E_H2_UNEXPECTED_CONTINUATION: return "unexpected_continuation";
    case FN_E_H2_STREAM_ZERO: return "stream_zero";
    case FN_E_H2_STREAM_NONZERO: return "stream_nonzero";
    case FN_E_H2_PAD_MISSING: return "pad_missing";
    case FN_E_H2_PAD_TOO_LONG: return "pad_too_long";
    case FN_E_H2_TOO_SHORT: return "too_short";
    case FN_E_H2_BAD_LENGTH: return "bad_length";
    case FN_E_H2_SETTINGS_ACK_PAYLOAD: return "settings_ack_payload";
    case FN_E_H2_SETTINGS_LENGTH: return "settings_length";
    case FN_E_H2_ENABLE_PUSH: return "enable_push";
    case FN_E_H2_INITIAL_WINDOW: return "initial_window";
    case FN_E_H2_MAX_FRAME_SIZE: return "max_frame_size";
    default: return "window_zero";  /* FN_E_H2_WINDOW_ZERO, the last one */
    }
}

static const char *hpack_rule(int64_t rc)
{
    switch (rc) {
    case FN_E_HPACK_TRUNCATED: return "hpack_truncated";
    case FN_E_HPACK_INTEGER: return "hpack_integer";
    case FN_E_HPACK_INDEX: return "hpack_index";
    case FN_E_HPACK_HUFFMAN: return "hpack_huffman";
    case FN_E_HPACK_TABLE_SIZE: return "hpack_table_size";
    default: return "header_list_too_large";  /* FN_E_HPACK_LIST_TOO_LARGE */
    }
}

/* ---- checking a decoded header list (RFC 9113 8.2, 8.3.1) ------------------- */

typedef struct {
    const uint8_t *at, *end;
    uint32_t left;
} walker;

typedef struct {
    const uint8_t *name, *value;
    uint32_t name_len, value_len;
} field;

static void walk(walker *w, const char *list, size_t len)
{
    w->at = (const uint8_t *)list + 5;  /* '[' and the count */
    w->end = (const uint8_t *)list + len;
    w->left = fn_marshal_get32((const uint8_t *)list + 1);
}

/* The next field of hpack.c's list: ')' n 's' name 's' value ['N']. */
static int next(walker *w, field *f)
{
    if (!w->left)
        return 0;
    w->left--;
    uint8_t items = w->at[1];
    const uint8_t *r = w->at + 2;
    f->name_len = fn_marshal_get32(r + 1);
    f->name = r + 5;
    r = f->name + f->name_len;
    f->value_len = fn_marshal_get32(r + 1);
    f->value = r + 5;
    w->at = f->value + f->value_len + (items == 3);
    return 1;
}

static int is(const field *f, const char *name, uint32_t n)
{
    return f->name_len == n && memcmp(f->name, name, n) == 0;
}

/* 8.2.1: no NUL, CR or LF, no leading or trailing space or tab. */
static int bad_value(const uint8_t *v, uint32_t n)
{
    if (!n)
        return 0;
    if (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t')
        return 1;
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == 0 || v[i] == '\r' || v[i] == '\n')
            return 1;
    return 0;
}

/* 8.2.1: a lowercase token without ':' (0x21..0x7e less A-Z and ':'). */
static int bad_name(const uint8_t *p, uint32_t n)
{
    if (!n)
        return 1;
    for (uint32_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f || (p[i] >= 'A' && p[i] <= 'Z') || p[i] == ':')
            return 1;
    return 0;
}

/* Regular fields from w on: their content-length (-1 if none), or -2 if
 * malformed. trailers: content-length is not read (a trailing block's). */
static int64_t check_fields(walker *w, const field *first, int trailers)
{
    int64_t length = -1;
    field f = *first;
    int have = first->name != NULL;
    while (have) {
        if (f.name_len && f.name[0] == ':')
            return -2;
        if (bad_name(f.name, f.name_len) || bad_value(f.value, f.value_len))
            return -2;
        if (is(&f, "connection", 10) || is(&f, "keep-alive", 10) || is(&f, "proxy-connection", 16)
            || is(&f, "transfer-encoding", 17) || is(&f, "upgrade", 7))
            return -2;
        if (is(&f, "te", 2) && !(f.value_len == 8 && memcmp(f.value, "trailers", 8) == 0))
            return -2;
        if (!trailers && is(&f, "content-length", 14)) {
            if (!f.value_len || f.value_len > 18)
                return -2;
            int64_t v = 0;
            for (uint32_t i = 0; i < f.value_len; i++) {
                if (f.value[i] < '0' || f.value[i] > '9')
                    return -2;
                v = v * 10 + (f.value[i] - '0');
            }
            if (length >= 0 && v != length)
                return -2;
            length = v;
        }
        have = next(w, &f);
    }
    return length;
}

enum { P_METHOD = 1, P_SCHEME = 2, P_PATH = 4, P_AUTHORITY = 8 };

/* A request's list (8.3.1): its content-length, -1 if none, -2 if malformed. */
static int64_t check_request(const char *list, size_t len)
{
    walker w;
    field f = {0};
    walk(&w, list, len);
    int seen = 0, connect = 0, have;
    while ((have = next(&w, &f)) && f.name_len && f.name[0] == ':') {
        int bit = is(&f, ":method", 7) ? P_METHOD : is(&f, ":scheme", 7) ? P_SCHEME
                : is(&f, ":path", 5) ? P_PATH : is(&f, ":authority", 10) ? P_AUTHORITY : 0;
        if (!bit || (seen & bit))
            return -2;
        if ((bit != P_AUTHORITY && !f.value_len) || bad_value(f.value, f.value_len))
            return -2;
        if (bit == P_METHOD)
            connect = f.value_len == 7 && memcmp(f.value, "CONNECT", 7) == 0;
        seen |= bit;
    }
    if (!(seen & P_METHOD))
        return -2;
    if (connect ? (!(seen & P_AUTHORITY) || (seen & (P_SCHEME | P_PATH)))
                : (seen & (P_SCHEME | P_PATH)) != (P_SCHEME | P_PATH))
        return -2;
    if (!have)
        f.name = NULL;
    return check_fields(&w, &f, 0);
}

static int check_trailers(const char *list, size_t len)
{
    walker w;
    field f = {0};
    walk(&w, list, len);
    if (!next(&w, &f))
        return 1;
    return check_fields(&w, &f, 1) >= -1;
}

/* ---- events ---------------------------------------------------------------------- */

/* A complete field block: decode it, check it, (1, sid, end, headers, req, trl, error, never). */
static int headers_event(fn_h2sess *s, uint32_t sid, int end, uint32_t frame_error,
                         const uint8_t *block, size_t len, uint32_t max_header_list_size)
{
    const char *list;
    size_t never;
    int64_t n = fn_hpack_decode(s->hpack, block, len, max_header_list_size, &list, &never);
    if (n == FN_E_NOMEM)
        return FN_E_NOMEM;
    if (n < 0)
        return error(s, hpack_rule(n));
    int64_t req = check_request(list, (size_t)n);
    int trl = check_trailers(list, (size_t)n);
    if (reserve(s, ROOM((size_t)n)) < 0)
        return FN_E_NOMEM;
    put_tuple(s, 8, HEADERS);
    put_int(s, sid);
    put_bool(s, end);
    memcpy(s->out + s->out_len, list, (size_t)n);
    s->out_len += (size_t)n;
    put_long(s, req);
    put_bool(s, trl);
    put_int(s, frame_error);
    put_int(s, (uint32_t)never);
    return FN_OK;
}

static int block_append(fn_h2sess *s, const uint8_t *p, size_t n)
{
    if (!n)
        return FN_OK;
    if (n > s->block_cap - s->block_len) {
        size_t cap = s->block_cap ? s->block_cap : 1024;
        while (cap - s->block_len < n)
            cap *= 2;
        uint8_t *grown = realloc(s->block, cap);
        if (!grown)
            return FN_E_NOMEM;
        s->block = grown;
        s->block_cap = cap;
    }
    memcpy(s->block + s->block_len, p, n);
    s->block_len += n;
    return FN_OK;
}

static uint32_t stream_error(const fn_h2_frame *f)
{
    if (!f->error)
        return 0;
    return f->error == FN_H2_STREAM_PRIORITY_LENGTH ? FRAME_SIZE_ERROR : PROTOCOL_ERROR;
}

static int event(fn_h2sess *s, const fn_h2_frame *f, const uint8_t *base,
                 uint32_t max_header_list_size, uint32_t max_field_block,
                 uint32_t max_continuations)
{
    const uint8_t *data = base + f->data_off;
    uint32_t n = f->data_len;
    switch (f->type) {
    case DATA:
        if (reserve(s, ROOM(n)) < 0)
            return FN_E_NOMEM;
        put_tuple(s, 5, DATA);
        put_int(s, f->stream_id);
        put_bool(s, f->flags & F_END_STREAM);
        put_bytes(s, data, n);
        put_int(s, n + ((f->flags & F_PADDED) ? (uint32_t)f->pad_length + 1 : 0));
        return FN_OK;
    case HEADERS:
        if (f->flags & F_END_HEADERS) {
            if (n > max_field_block)
                return error(s, "field_block");
            return headers_event(s, f->stream_id, f->flags & F_END_STREAM, stream_error(f), data,
                                 n, max_header_list_size);
        }
        s->block_open = 1;
        s->block_sid = f->stream_id;
        s->block_end = f->flags & F_END_STREAM;
        s->block_error = stream_error(f);
        s->block_conts = 0;
        s->block_len = 0;
        return block_append(s, data, n);
    case CONTINUATION:
        if (!s->block_open)
            return FN_OK;  /* a PUSH_PROMISE's: the connection ends at the PUSH_PROMISE */
        if (++s->block_conts > max_continuations)
            return error(s, "continuations");
        if (n > max_field_block || s->block_len > max_field_block - n)
            return error(s, "continuation_block");
        if (block_append(s, data, n) < 0)
            return FN_E_NOMEM;
        if (!(f->flags & F_END_HEADERS))
            return FN_OK;
        s->block_open = 0;
        return headers_event(s, s->block_sid, s->block_end, s->block_error, s->block,
                             s->block_len, max_header_list_size);
    case PRIORITY:
        if (reserve(s, ROOM(0)) < 0)
            return FN_E_NOMEM;
        put_tuple(s, 6, PRIORITY);
        put_int(s, f->stream_id);
        put_int(s, f->depends_on);
        put_int(s, f->weight);
        put_bool(s, f->exclusive);
        put_int(s, stream_error(f));
        return FN_OK;
    case RST_STREAM:
        if (reserve(s, ROOM(0)) < 0)
            return FN_E_NOMEM;
        put_tuple(s, 3, RST_STREAM);
        put_int(s, f->stream_id);
        put_int(s, f->error_code);
        return FN_OK;
    case SETTINGS: {
        uint32_t count = f->settings_count;
        if (reserve(s, ROOM((size_t)count * 24)) < 0)
            return FN_E_NOMEM;
        put_tuple(s, 3, SETTINGS);
        put_bool(s, f->flags & F_ACK);
        char *w = fn_marshal_header(s->out + s->out_len, FN_MARSHAL_TUPLE, count);
        s->out_len = (size_t)(w - s->out);
        const uint8_t *p = base + f->settings_off;
        for (uint32_t i = 0; i < count; i++, p += 6) {
            put_byte(s, FN_MARSHAL_SMALL_TUPLE);
            put_byte(s, 2);
            put_int(s, (uint32_t)p[0] << 8 | p[1]);
            put_int(s, (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5]);
        }
        return FN_OK;
    }
    case PUSH_PROMISE:
        if (reserve(s, ROOM(0)) < 0)
            return FN_E_NOMEM;
        put_tuple(s, 2, PUSH_PROMISE);
        put_int(s, f->stream_id);
        return FN_OK;
    case PING:
        if (reserve(s, ROOM(n)) < 0)
            return FN_E_NOMEM;
        put_tuple(s, 3, PING);
        put_bool(s, f->flags & F_ACK);
        put_bytes(s, data, n);
        return FN_OK;
    case GOAWAY:
        if (reserve(s, ROOM(n)) < 0)
            return FN_E_NOMEM;
        put_tuple(s, 4, GOAWAY);
        put_int(s, f->last_stream_id);
        put_int(s, f->error_code);
        put_bytes(s, data, n);
        return FN_OK;
    case WINDOW_UPDATE:
        if (reserve(s, ROOM(0)) < 0)
            return FN_E_NOMEM;
        put_tuple(s, 4, WINDOW_UPDATE);
        put_int(s, f->stream_id);
        put_int(s, f->increment);
        put_int(s, stream_error(f));
        return FN_OK;
    default:
        if (reserve(s, ROOM(0)) < 0)
            return FN_E_NOMEM;
        put_tuple(s, 2, EV_UNKNOWN);
        put_int(s, f->type);
        return FN_OK;
    }
}

int64_t fn_h2sess_read(fn_h2sess *s, const uint8_t *in, size_t len, uint32_t max_frame_size,
                       uint32_t max_header_list_size, uint32_t max_field_block,
                       uint32_t max_continuations, const char **out)
{
    s->out_len = 0;
    s->count = 0;
    if (reserve(s, 5) < 0)
        return FN_E_NOMEM;
    s->out_len = 5;  /* '[' and the count, written at the end */
    if (s->error) {
        if (error(s, s->error) < 0)
            return FN_E_NOMEM;
    } else {
        int rc;
        do {
            rc = fn_h2_parse(s->frames, in, len, max_frame_size, s->batch, BATCH);
            in = NULL;
            len = 0;
            if (rc == FN_E_NOMEM)
                return FN_E_NOMEM;
            int parsed = rc >= 0 ? rc : fn_h2_parser_parsed(s->frames);
            const uint8_t *base = fn_h2_parser_buffer(s->frames);
            for (int i = 0; i < parsed && !s->error; i++) {
                int e = event(s, &s->batch[i], base, max_header_list_size, max_field_block,
                              max_continuations);
                if (e < 0)
                    return e;
            }
            if (rc < 0 && !s->error && error(s, frame_rule(rc)) < 0)
                return FN_E_NOMEM;
        } while (rc == BATCH && !s->error);
    }
    fn_marshal_header(s->out, FN_MARSHAL_LIST, s->count);
    *out = s->out;
    return (int64_t)s->out_len;
}
