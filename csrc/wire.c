/* wire.c - see wire.h. */
#include "wire.h"

#include <stdlib.h>

#include "framer.h"
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
