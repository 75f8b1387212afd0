/* http1.c - see http1.h; fastnet/codec/http1/py.py is the reference. */
#include "http1.h"

#include <string.h>

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value's bytes: VCHAR, obs-text, SP, HTAB. */
static int is_value_byte(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* The first "\r\n" (n = 2) or "\r\n\r\n" (n = 4) wholly inside [from, to), or -1. */
static long find_crlf(const uint8_t *buf, size_t from, size_t to, size_t n)
{
    if (to < from + n)
        return -1;
    size_t last = to - n;
    for (size_t i = from; i <= last;) {
        const uint8_t *p = memchr(buf + i, '\r', last + 1 - i);
        if (p == NULL)
            return -1;
        i = (size_t)(p - buf);
        if (buf[i + 1] == '\n' && (n == 2 || (buf[i + 2] == '\r' && buf[i + 3] == '\n')))
            return (long)i;
        i++;
    }
    return -1;
}

static int fail(fn_http1_head_state *st, int code, size_t a, size_t b)
{
    st->error = code;
    st->err_a = a;
    st->err_b = b;
    return code;
}

/* The blank line's end (> 0), 0 if the head is incomplete, or an error. */
static long scan(fn_http1_head_state *st, const uint8_t *buf, size_t origin, size_t start,
                 size_t len, size_t line_limit, size_t max_header_bytes)
{
    size_t frm = start + (st->searched > 3 ? st->searched - 3 : 0);
    if (!st->line_seen) {
        long eol = find_crlf(buf, frm, len, 2);
        if (eol < 0) {
            if (line_limit && len - origin > line_limit + 1)
                return fail(st, FN_E_HTTP1_LINE_TOO_LONG, 0, 0);
        } else {
            if (line_limit && (size_t)eol - origin > line_limit)
                return fail(st, FN_E_HTTP1_LINE_TOO_LONG, (size_t)eol - origin, 0);
            st->line_seen = 1;
            frm = (size_t)eol;
        }
    }
    size_t stop = len < origin + max_header_bytes ? len : origin + max_header_bytes;
    long found = find_crlf(buf, frm, stop, 4);
    if (found < 0) {
        if (len - origin >= max_header_bytes)
            return fail(st, FN_E_HTTP1_HEAD_TOO_LARGE, 0, 0);
        st->searched = len - start;
        return 0;
    }
    return found + 4;
}

/* One field line buf[pos..eol): its spans, or an error code. */
static int field(const uint8_t *buf, size_t pos, size_t eol, size_t *out)
{
    size_t i = pos;
    while (i < eol && is_tchar(buf[i]))
        i++;
    if (i == pos || i == eol || buf[i] != ':') {
        /* py: a colon whose name part ends in SP/HTAB is the smuggling case. */
        const uint8_t *colon = memchr(buf + pos, ':', eol - pos);
        if (colon != NULL && colon > buf + pos && (colon[-1] == ' ' || colon[-1] == '\t'))
            return FN_E_HTTP1_SPACE_BEFORE_COLON;
        return FN_E_HTTP1_BAD_FIELD;
    }
    size_t vs = i + 1;
    while (vs < eol && (buf[vs] == ' ' || buf[vs] == '\t'))
        vs++;
    size_t ve = eol;
    while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
        ve--;
    for (size_t k = vs; k < ve; k++)
        if (!is_value_byte(buf[k]))
            return FN_E_HTTP1_BAD_FIELD;
    out[0] = pos;
    out[1] = i;
    out[2] = vs;
    out[3] = ve;
    return 0;
}

/* The field lines of buf[pos..end), end being the blank line's CRLF. */
static int fields_of(fn_http1_head_state *st, const uint8_t *buf, size_t pos, size_t end,
                     size_t max_fields, size_t *fields, size_t *nfields)
{
    size_t n = 0;
    while (pos < end) {
        size_t eol = (size_t)find_crlf(buf, pos, end + 2, 2);
        if (buf[pos] == ' ' || buf[pos] == '\t')
            return fail(st, FN_E_HTTP1_OBS_FOLD, pos, eol);
        size_t spans[4];
        int rc = field(buf, pos, eol, spans);
        if (rc < 0)
            return fail(st, rc, pos, eol);
        if (n == max_fields)
            return fail(st, FN_E_HTTP1_TOO_MANY_FIELDS, 0, 0);
        memcpy(fields + 4 * n, spans, sizeof spans);
        n++;
        pos = eol + 2;
    }
    *nfields = n;
    return 0;
}

static int digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

int fn_http1_parse_request(fn_http1_head_state *st, const uint8_t *buf, size_t start,
                           size_t len, size_t max_request_line, size_t max_header_bytes,
                           size_t max_fields, fn_http1_head *head, size_t *fields)
{
    if (st->error)
        return st->error;
    size_t origin = start;
    while (start + 2 <= len && buf[start] == '\r' && buf[start + 1] == '\n'
           && start - origin < max_request_line)
        start += 2;
    long head_end = scan(st, buf, origin, start, len, max_request_line, max_header_bytes);
    if (head_end <= 0)
        return (int)head_end;
    size_t line_end = (size_t)find_crlf(buf, start, (size_t)head_end, 2);
    /* token SP target SP "HTTP/" DIGIT "." DIGIT, exactly. */
    size_t i = start;
    while (i < line_end && is_tchar(buf[i]))
        i++;
    size_t method_end = i;
    int ok = i > start && i < line_end && buf[i] == ' ';
    size_t target_start = ++i, target_end = i;
    if (ok) {
        while (i < line_end && buf[i] >= 0x21 && buf[i] <= 0x7e)
            i++;
        target_end = i;
        ok = i > target_start && line_end - i == 9 && memcmp(buf + i, " HTTP/", 6) == 0
             && digit(buf[i + 6]) && buf[i + 7] == '.' && digit(buf[i + 8]);
    }
    if (!ok || buf[line_end - 3] != '1') {
        static const char preface[] = "PRI * HTTP/2.0";
        if (line_end - start == sizeof preface - 1 && memcmp(buf + start, preface, sizeof preface - 1) == 0)
            return fail(st, FN_E_HTTP1_H2_PREFACE, 0, 0);
        if (ok)
            return fail(st, FN_E_HTTP1_VERSION, line_end - 3, 0);
        return fail(st, FN_E_HTTP1_BAD_REQUEST_LINE, start, line_end);
    }
    size_t nfields;
    int rc = fields_of(st, buf, line_end + 2, (size_t)head_end - 2, max_fields, fields, &nfields);
    if (rc < 0)
        return rc;
    st->searched = 0;
    st->line_seen = 0;
    head->start = start;
    head->end = (size_t)head_end;
    head->a = start;
    head->b = method_end;
    head->c = target_start;
    head->d = target_end;
    head->minor = buf[line_end - 1] - '0';
    head->status = 0;
    head->nfields = nfields;
    return FN_HTTP1_DONE;
}

int fn_http1_parse_response(fn_http1_head_state *st, const uint8_t *buf, size_t start,
                            size_t len, size_t max_header_bytes, size_t max_fields,
                            fn_http1_head *head, size_t *fields)
{
    if (st->error)
        return st->error;
    long head_end = scan(st, buf, start, start, len, 0, max_header_bytes);
    if (head_end <= 0)
        return (int)head_end;
    size_t line_end = (size_t)find_crlf(buf, start, (size_t)head_end, 2);
    /* "HTTP/1." DIGIT SP 3DIGIT [SP reason] */
    const uint8_t *p = buf + start;
    size_t n = line_end - start;
    int ok = n >= 12 && memcmp(p, "HTTP/1.", 7) == 0 && digit(p[7]) && p[8] == ' '
             && digit(p[9]) && digit(p[10]) && digit(p[11]) && (n == 12 || p[12] == ' ');
    for (size_t k = 13; ok && k < n; k++)
        ok = is_value_byte(p[k]);
    if (!ok)
        return fail(st, FN_E_HTTP1_BAD_STATUS_LINE, start, line_end);
    size_t nfields;
    int rc = fields_of(st, buf, line_end + 2, (size_t)head_end - 2, max_fields, fields, &nfields);
    if (rc < 0)
        return rc;
    st->searched = 0;
    st->line_seen = 0;
    head->start = start;
    head->end = (size_t)head_end;
    head->a = n > 12 ? start + 13 : line_end;
    head->b = line_end;
    head->c = head->d = 0;
    head->minor = p[7] - '0';
    head->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    head->nfields = nfields;
    return FN_HTTP1_DONE;
}

enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER = FN_HTTP1_CHUNKED_TRAILERS,
       CH_DONE = FN_HTTP1_CHUNKED_DONE };

static int ch_fail(fn_http1_chunked *ch, int code, size_t a, size_t b)
{
    ch->error = code;
    ch->err_a = a;
    ch->err_b = b;
    return code;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int fn_http1_chunked_decode(fn_http1_chunked *ch, const uint8_t *buf, size_t start, size_t len,
                            uint64_t max_body, size_t max_trailer_bytes, size_t max_fields,
                            size_t max_chunk_line, size_t *spans, size_t max_spans,
                            size_t *nspans, size_t *pos_out)
{
    size_t pos = start, n = 0;
    *nspans = 0;
    *pos_out = start;
    if (ch->error)
        return ch->error;
    while (pos < len || ch->state == CH_DONE) {
        if (ch->state == CH_DONE)
            break;
        if (ch->state == CH_DATA) {
            if (n == max_spans)
                break;
            uint64_t take = len - pos < ch->remaining ? len - pos : ch->remaining;
            spans[2 * n] = pos;
            spans[2 * n + 1] = pos + (size_t)take;
            n++;
            pos += (size_t)take;
            ch->remaining -= take;
            if (ch->remaining)
                break;
            ch->state = CH_DATA_END;
        } else if (ch->state == CH_DATA_END) {
            if (len - pos < 2) {
                if (buf[pos] != '\r')
                    return ch_fail(ch, FN_E_HTTP1_NO_CHUNK_CRLF, 0, 0);
                break;
            }
            if (buf[pos] != '\r' || buf[pos + 1] != '\n')
                return ch_fail(ch, FN_E_HTTP1_NO_CHUNK_CRLF, 0, 0);
            pos += 2;
            ch->state = CH_SIZE;
        } else if (ch->state == CH_SIZE) {
            size_t stop = len - pos < max_chunk_line + 2 ? len : pos + max_chunk_line + 2;
            long eol = find_crlf(buf, pos, stop, 2);
            if (eol < 0 && len - pos >= max_chunk_line + 2)
                return ch_fail(ch, FN_E_HTTP1_CHUNK_LINE_TOO_LONG, 0, 0);
            if (eol < 0)
                break;
            size_t e = (size_t)eol, i = pos;
            uint64_t size = 0;
            while (i < e && hexval(buf[i]) >= 0 && i - pos < 17) {
                size = (size << 4) | (uint64_t)hexval(buf[i]);
                i++;
            }
            int ok = i > pos && i - pos <= 16;
            while (ok && i < e && (buf[i] == ' ' || buf[i] == '\t'))
                i++;
            if (ok && i < e) {
                ok = buf[i] == ';';
                for (i++; ok && i < e; i++)
                    ok = is_value_byte(buf[i]);
            }
            if (!ok)
                return ch_fail(ch, FN_E_HTTP1_BAD_CHUNK_SIZE, pos, e);
            if (size > max_body - ch->total)
                return ch_fail(ch, FN_E_HTTP1_BODY_TOO_LARGE, 0, 0);
            ch->total += size;
            pos = e + 2;
            if (size) {
                ch->remaining = size;
                ch->state = CH_DATA;
            } else {
                ch->state = CH_TRAILER;
            }
        } else { /* CH_TRAILER */
            size_t room = max_trailer_bytes - ch->trailer_bytes;
            size_t limit = room > 2 ? room - 2 : 0;
            size_t stop = len - pos < limit + 2 ? len : pos + limit + 2;
            long eol = find_crlf(buf, pos, stop, 2);
            if (eol < 0 && len - pos >= limit + 2)
                return ch_fail(ch, FN_E_HTTP1_TRAILER_TOO_LARGE, limit, 0);
            if (eol < 0)
                break;
            size_t e = (size_t)eol;
            ch->trailer_bytes += e + 2 - pos;
            if (e == pos) {
                ch->state = CH_DONE;
                pos += 2;
                continue;
            }
            if (ch->trailer_fields == max_fields)
                return ch_fail(ch, FN_E_HTTP1_TOO_MANY_TRAILERS, 0, 0);
            if (buf[pos] == ' ' || buf[pos] == '\t')
                return ch_fail(ch, FN_E_HTTP1_OBS_FOLD, pos, e);
            size_t tmp[4];
            int rc = field(buf, pos, e, tmp);
            if (rc < 0)
                return ch_fail(ch, rc, pos, e);
            ch->trailer_fields++;
            pos = e + 2;
        }
    }
    *nspans = n;
    *pos_out = pos;
    return ch->state == CH_DONE ? FN_HTTP1_DONE : FN_HTTP1_NEED_MORE;
}

/* buf[f[0]..f[1]) is the lower-case name `lower` of n bytes, in any case. */
static int name_is(const uint8_t *buf, const size_t *f, const char *lower, size_t n)
{
    if (f[1] - f[0] != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = buf[f[0] + i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (uint8_t)(ch + 32);
        if (ch != (uint8_t)lower[i])
            return 0;
    }
    return 1;
}

/* Whether a parsed HTTP/1.1 head is simple (see fn_http1_simple_requests). */
static int is_simple(const uint8_t *buf, const size_t *fields, size_t nfields)
{
    size_t hosts = 0;
    for (size_t i = 0; i < nfields; i++) {
        const size_t *f = fields + 4 * i;
        switch (f[1] - f[0]) {
        case 4:
            hosts += (size_t)name_is(buf, f, "host", 4);
            break;
        case 6:
            if (name_is(buf, f, "expect", 6))
                return 0;
            break;
        case 7:
            if (name_is(buf, f, "upgrade", 7))
                return 0;
            break;
        case 10:
            if (name_is(buf, f, "connection", 10))
                return 0;
            break;
        case 14:
            if (name_is(buf, f, "content-length", 14))
                return 0;
            break;
        case 17:
            if (name_is(buf, f, "transfer-encoding", 17))
                return 0;
            break;
        default:
            break;
        }
    }
    return hosts == 1;
}

int64_t fn_http1_simple_requests(const char *data, size_t start, size_t len,
                                 fn_http1_batch *b)
{
    const uint8_t *buf = (const uint8_t *)data;
    size_t n = 0, max_fields = b->max_fields, record = FN_HTTP1_REQ_WORDS + 4 * max_fields;
    b->pos = start;
    if (max_fields > (SIZE_MAX - FN_HTTP1_REQ_WORDS) / 4 || b->max_words < record)
        return FN_E_ARG;
    while (start < len && b->max_words - n >= record) {
        fn_http1_head_state st;
        fn_http1_head h;
        size_t *w = b->words + n;
        memset(&st, 0, sizeof st);
        if (fn_http1_parse_request(&st, buf, start, len, b->max_request_line,
                                   b->max_header_bytes, max_fields, &h,
                                   w + FN_HTTP1_REQ_WORDS) != FN_HTTP1_DONE
            || h.minor != 1 || !is_simple(buf, w + FN_HTTP1_REQ_WORDS, h.nfields))
            break;
        w[0] = h.end;
        w[1] = h.a;
        w[2] = h.b;
        w[3] = h.c;
        w[4] = h.d;
        w[5] = h.nfields;
        n += FN_HTTP1_REQ_WORDS + 4 * h.nfields;
        start = b->pos = h.end;
    }
    return (int64_t)n;
}
