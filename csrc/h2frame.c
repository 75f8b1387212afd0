/* h2frame.c - HTTP/2 frame parser; see h2frame.h and fastnet/codec/h2frame/py.py. */
#include "h2frame.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

#define HEADER_SIZE 9
#define MASK31 0x7fffffffu
enum { DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION };
#define F_END_HEADERS 0x4
#define F_PADDED 0x8
#define F_PRIORITY 0x20
#define F_ACK 0x1

struct fn_h2_parser {
    uint8_t *buf;
    size_t len, cap, pos;   /* unparsed bytes are buf[pos..len) */
    uint32_t continuing;    /* the stream whose field block is open, or 0 */
    int error, parsed;
};

fn_h2_parser *fn_h2_parser_new(void)
{
    return calloc(1, sizeof(fn_h2_parser));
}

void fn_h2_parser_free(fn_h2_parser *p)
{
    if (p) {
        free(p->buf);
        free(p);
    }
}

int fn_h2_parser_parsed(const fn_h2_parser *p)
{
    return p->parsed;
}

const uint8_t *fn_h2_parser_buffer(const fn_h2_parser *p)
{
    return p->buf;
}

static uint32_t get32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void priority(fn_h2_frame *f, const uint8_t *b)
{
    uint32_t dep = get32(b);
    f->exclusive = (uint8_t)(dep >> 31);
    f->depends_on = dep & MASK31;
    f->weight = (uint16_t)(b[4] + 1);
    if (f->depends_on == f->stream_id)
        f->error = FN_H2_STREAM_SELF_DEPENDENCY;
}

/* Check and describe one whole frame at p->buf + at. */
static int frame(fn_h2_parser *p, size_t at, uint32_t length, fn_h2_frame *f)
{
    const uint8_t *h = p->buf + at, *payload = h + HEADER_SIZE;
    uint8_t type = h[3], flags = h[4];
    uint32_t sid = get32(h + 5) & MASK31;
    memset(f, 0, sizeof *f);
    f->type = type;
    f->flags = flags;
    f->stream_id = sid;
    f->weight = 16;
    f->data_off = (uint32_t)(at + HEADER_SIZE);
    f->data_len = length;
    if (type > CONTINUATION)
        return FN_OK;
    if (sid == 0 && (type == DATA || type == HEADERS || type == PRIORITY || type == RST_STREAM
                     || type == PUSH_PROMISE || type == CONTINUATION))
        return FN_E_H2_STREAM_ZERO;
    if (sid && (type == SETTINGS || type == PING || type == GOAWAY))
        return FN_E_H2_STREAM_NONZERO;
    if ((type == RST_STREAM && length != 4) || (type == PING && length != 8)
        || (type == WINDOW_UPDATE && length != 4))
        return FN_E_H2_BAD_LENGTH;
    uint32_t off = 0, n = length;  /* the body: payload[off .. off + n) */
    if ((type == DATA || type == HEADERS || type == PUSH_PROMISE) && (flags & F_PADDED)) {
        if (length == 0)
            return FN_E_H2_PAD_MISSING;
        uint8_t pad = payload[0];
        if (pad >= length)
            return FN_E_H2_PAD_TOO_LONG;
        f->pad_length = pad;
        off = 1;
        n = length - 1 - pad;
    }
    switch (type) {
    case HEADERS:
        if (flags & F_PRIORITY) {
            if (n < 5)
                return FN_E_H2_TOO_SHORT;
            priority(f, payload + off);
            off += 5;
            n -= 5;
        }
        if (!(flags & F_END_HEADERS))
            p->continuing = sid;
        break;
    case PRIORITY:
        if (length != 5)
            f->error = FN_H2_STREAM_PRIORITY_LENGTH;
        else
            priority(f, payload);
        n = 0;
        break;
    case RST_STREAM:
        f->error_code = get32(payload);
        n = 0;
        break;
    case SETTINGS:
        n = 0;
        if (flags & F_ACK) {
            if (length)
                return FN_E_H2_SETTINGS_ACK_PAYLOAD;
            break;
        }
        if (length % 6)
            return FN_E_H2_SETTINGS_LENGTH;
        for (uint32_t i = 0; i < length; i += 6) {
            uint16_t id = (uint16_t)(payload[i] << 8 | payload[i + 1]);
            uint32_t v = get32(payload + i + 2);
            if (id == 0x2 && v > 1)
                return FN_E_H2_ENABLE_PUSH;
            if (id == 0x4 && v > MASK31)
                return FN_E_H2_INITIAL_WINDOW;
            if (id == 0x5 && (v < (1u << 14) || v > (1u << 24) - 1))
                return FN_E_H2_MAX_FRAME_SIZE;
        }
        f->settings_off = (uint32_t)(at + HEADER_SIZE);
        f->settings_count = length / 6;
        break;
    case PUSH_PROMISE:
        if (n < 4)
            return FN_E_H2_TOO_SHORT;
        f->promised_stream_id = get32(payload + off) & MASK31;
        off += 4;
        n -= 4;
        if (!(flags & F_END_HEADERS))
            p->continuing = sid;
        break;
    case GOAWAY:
        if (length < 8)
            return FN_E_H2_TOO_SHORT;
        f->last_stream_id = get32(payload) & MASK31;
        f->error_code = get32(payload + 4);
        off = 8;
        n = length - 8;
        break;
    case WINDOW_UPDATE:
        f->increment = get32(payload) & MASK31;
        n = 0;
        if (f->increment == 0) {
            if (sid == 0)
                return FN_E_H2_WINDOW_ZERO;
            f->error = FN_H2_STREAM_WINDOW_ZERO;
        }
        break;
    case CONTINUATION:
        if (!p->continuing)
            return FN_E_H2_UNEXPECTED_CONTINUATION;
        if (flags & F_END_HEADERS)
            p->continuing = 0;
        break;
    default:  /* DATA, PING: the body as it is */
        break;
    }
    f->data_off = (uint32_t)(at + HEADER_SIZE + off);
    f->data_len = n;
    return FN_OK;
}

int fn_h2_parse(fn_h2_parser *p, const uint8_t *in, size_t len, uint32_t max_frame_size,
                fn_h2_frame *out, size_t cap)
{
    p->parsed = 0;
    if (p->error)
        return FN_E_STICKY;
    if (p->pos) {  /* drop what earlier calls parsed */
        memmove(p->buf, p->buf + p->pos, p->len - p->pos);
        p->len -= p->pos;
        p->pos = 0;
    }
    if (len > p->cap - p->len) {
        size_t ncap = p->cap ? p->cap : 4096;
        while (ncap - p->len < len)
            ncap *= 2;
        uint8_t *nbuf = realloc(p->buf, ncap);
        if (!nbuf)
            return FN_E_NOMEM;
        p->buf = nbuf;
        p->cap = ncap;
    }
    if (len)
        memcpy(p->buf + p->len, in, len);
    p->len += len;
    size_t count = 0;
    while (count < cap && p->len - p->pos >= HEADER_SIZE) {
        const uint8_t *h = p->buf + p->pos;
        uint32_t length = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
        int rc = FN_OK;
        if (length > max_frame_size)
            rc = FN_E_H2_TOO_LARGE;
        else if (p->continuing && (h[3] != CONTINUATION || (get32(h + 5) & MASK31) != p->continuing))
            rc = FN_E_H2_EXPECTED_CONTINUATION;
        else if (p->len - p->pos - HEADER_SIZE < length)
            break;
        else
            rc = frame(p, p->pos, length, &out[count]);
        if (rc < 0) {
            p->error = rc;
            p->parsed = (int)count;
            return rc;
        }
        p->pos += HEADER_SIZE + length;
        count++;
    }
    p->parsed = (int)count;
    return (int)count;
}
