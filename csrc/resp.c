/* resp.c - incremental RESP parsing, see resp.h for the contract.
 *
 * Invariants (both parsers): offsets count from raw.start; done_bytes <=
 * pos <= scan <= buffered bytes (raw.end - raw.start); tokens [0, done_tok)
 * describe bytes [0, done_bytes); tokens [done_tok, ntok) belong to the
 * message in progress. Memory only moves in feed (framer growth/compaction) and in
 * drop_done(), and both run only after Python has copied out a batch.
 *
 * Every step function returns 1 (progress: a whole unit parsed), 0 (needs
 * more bytes: nothing consumed that cannot be resumed) or an FN_RESP_E_*
 * code (< 0).
 */
#include <stdlib.h>
#include <string.h>

#include "marshal.h"
#include "resp.h"

#define MODE_INLINE 1
#define MODE_MULTIBULK 2

/* Token arrays and reply stacks with room for more items than this are
 * freed once no message is in progress (after one huge message, idle
 * memory goes back). */
#define KEEP_TOKENS 4096
/* Input buffers larger than this are freed once empty (fn_framer_trim). */
#define KEEP_BUFFER (64 * 1024)

/* Free an array with room for more than KEEP_TOKENS items (none in use). */
#define TRIM_ARRAY(arr, cap)            \
    do {                                \
        if ((cap) > KEEP_TOKENS) {      \
            free(arr);                  \
            (arr) = NULL;               \
            (cap) = 0;                  \
        }                               \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                            */

/* Redis's string2ll (util.c), which hiredis copies: a strict signed 64-bit
 * decimal. No "+", no leading zero (so no "-0"), no blanks, fewer than 21
 * bytes. Returns 1 and sets *value, or 0. */
static int string2ll(const char *s, size_t slen, int64_t *value)
{
    size_t i = 0;
    int negative = 0;
    uint64_t v;

    if (slen == 0 || slen > FN_RESP_LONG_STR_MAX)
        return 0;
    if (slen == 1 && s[0] == '0') {
        *value = 0;
        return 1;
    }
    if (s[0] == '-') {
        negative = 1;
        if (++i == slen)
            return 0;
    }
    if (s[i] < '1' || s[i] > '9')
        return 0;
    v = (uint64_t)(s[i++] - '0');
    for (; i < slen && s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t digit = (uint64_t)(s[i] - '0');

        if (v > UINT64_MAX / 10 || v * 10 > UINT64_MAX - digit)
            return 0;
        v = v * 10 + digit;
    }
    if (i < slen)
        return 0;
    if (negative) {
        if (v > (uint64_t)INT64_MAX + 1)
            return 0;
        *value = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return 0;
        *value = (int64_t)v;
    }
    return 1;
}

/* Make room in an array of n items of size bytes (capacity *cap) for need
 * more: capacity becomes max(2 * cap, n + need, 16), so growth is geometric
 * and driven by what is actually stored (a reservation for a declared count
 * is exact). Returns the array, possibly moved, or NULL when out of memory
 * (arr is then untouched and still the caller's). */
static void *reserve(void *arr, size_t *cap, size_t n, size_t need, size_t size)
{
    size_t want, newcap;
    void *na;

    if (need > SIZE_MAX / size - n)
        return NULL;
    want = n + need;
    if (want <= *cap)
        return arr;
    newcap = *cap > SIZE_MAX / size / 2 ? want : *cap * 2;
    if (newcap < want)
        newcap = want;
    if (newcap < 16)
        newcap = 16;
    na = realloc(arr, newcap * size);
    if (na)
        *cap = newcap;
    return na;
}

static size_t buffered_bytes(const fn_framer *raw)
{
    return raw->end - raw->start;
}

/* The first unconsumed byte. Only called once bytes are buffered. */
static char *base_of(const fn_framer *raw)
{
    return raw->buf + raw->start;
}

static uint64_t clamp(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : v;
}

static void set_limits(fn_resp_limits *dst, const fn_resp_limits *src)
{
    dst->max_bulk = clamp(src->max_bulk);
    dst->max_count = clamp(src->max_count);
    dst->max_line = clamp(src->max_line);
    dst->max_depth = clamp(src->max_depth);
    dst->max_double = clamp(src->max_double);
    dst->max_big_number = clamp(src->max_big_number);
    dst->max_query = clamp(src->max_query);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

static void req_clear(fn_resp_req *p)
{
    p->done_bytes = p->done_tok = 0;
    p->pos = p->scan = 0;
    p->mode = 0;
    p->stuck = 0;
    p->left = 0;
    p->bulk = -1;
    p->ntok = 0;
    p->err = 0;
    p->err_value = 0;
}

fn_resp_req *fn_resp_req_new(const fn_resp_limits *lim)
{
    fn_resp_req *p = calloc(1, sizeof *p);

    if (!p)
        return NULL;
    fn_framer_init(&p->raw, FN_FRAME_RAW, 0, 0);
    set_limits(&p->lim, lim);
    req_clear(p);
    return p;
}

void fn_resp_req_free(fn_resp_req *p)
{
    if (p) {
        fn_framer_release(&p->raw);
        free(p->tok);
        free(p->out);
        free(p);
    }
}

void fn_resp_req_reset(fn_resp_req *p)
{
    fn_framer_reset(&p->raw);
    fn_framer_trim(&p->raw, KEEP_BUFFER);
    TRIM_ARRAY(p->tok, p->tok_cap);
    if (p->out_cap > KEEP_BUFFER) {
        free(p->out);
        p->out = NULL;
        p->out_cap = 0;
    }
    req_clear(p);
}

/* Forget the batch the last parse reported: its bytes and tokens. The
 * command in progress moves to the front of the token array, its offsets
 * rebased: at most once, since it is at the front afterwards. */
static void req_drop_done(fn_resp_req *p)
{
    size_t d = p->done_bytes, keep = p->ntok - p->done_tok, i;

    if (d == 0 && p->done_tok == 0)
        return;
    fn_framer_skip(&p->raw, d);
    /* Only a multibulk command is ever in progress: argc, then pairs. */
    for (i = 0; i < keep; i++) {
        uint64_t t = p->tok[p->done_tok + i];

        p->tok[i] = i == 0 ? t : t - d;
    }
    p->ntok = keep;
    p->pos -= d;
    p->scan -= d;
    p->done_bytes = p->done_tok = 0;
    if (keep == 0)
        TRIM_ARRAY(p->tok, p->tok_cap);
    if (buffered_bytes(&p->raw) == 0)
        fn_framer_trim(&p->raw, KEEP_BUFFER);
}

int fn_resp_req_feed(fn_resp_req *p, const char *data, size_t len)
{
    if (p->err || len == 0)
        return 0;  /* after an error, input is discarded */
    req_drop_done(p);
    return fn_framer_feed(&p->raw, data, len);
}

const char *fn_resp_req_data(const fn_resp_req *p)
{
    return p->raw.buf ? base_of(&p->raw) : NULL;
}

size_t fn_resp_req_buffered(const fn_resp_req *p)
{
    return buffered_bytes(&p->raw) - p->done_bytes;
}

/* Reserve room for need more request tokens. 0 or FN_E_NOMEM. */
static int req_reserve(fn_resp_req *p, size_t need)
{
    uint64_t *tok = reserve(p->tok, &p->tok_cap, p->ntok, need, sizeof *tok);

    if (!tok)
        return FN_E_NOMEM;
    p->tok = tok;
    return 0;
}

static int push_tok(fn_resp_req *p, uint64_t t)
{
    if (p->ntok == p->tok_cap && req_reserve(p, 1) < 0)
        return FN_E_NOMEM;
    p->tok[p->ntok++] = t;
    return 0;
}

/* Find the current line's delimiter the way Redis's strchr() does: a NUL
 * before it hides it, for good (the line can then only grow too long).
 * Must be O(bytes read): the search resumes at scan. Returns 1 with *at
 * set, 0 while it has not arrived, or err for a line over max_line.
 *
 * Redis checks the limit only while the delimiter is missing, so whether it
 * accepts a longer line depends on how its reads split the input; here the
 * bytes before the delimiter are checked too, so the outcome does not. */
static int find_line_end(fn_resp_req *p, int delim, int err, size_t *at)
{
    const char *base = base_of(&p->raw);
    size_t avail = buffered_bytes(&p->raw);

    if (!p->stuck) {
        const char *d = memchr(base + p->scan, delim, avail - p->scan);
        size_t stop = d ? (size_t)(d - base) : avail;

        if (memchr(base + p->scan, '\0', stop - p->scan)) {
            p->stuck = 1;
        } else if (d) {
            if ((uint64_t)(stop - p->pos) > p->lim.max_line)
                return err;
            p->scan = stop;
            *at = stop;
            return 1;
        }
    }
    p->scan = avail;
    if ((uint64_t)(avail - p->pos) > p->lim.max_line)
        return err;
    return 0;
}

/* isspace() in the C locale: what sdssplitargs() skips between arguments. */
static int is_blank(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char unescape(char c)
{
    switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'b': return '\b';
    case 'a': return '\a';
    default: return c;
    }
}

/* sdssplitargs() over the line at off (len bytes, no NUL, no final
 * delimiter), decoding each argument in place: the write offset w never
 * passes the read offset r, so no unread byte is overwritten. Emits argc
 * and (start, end) pairs; nothing for a blank line. 0 or an error. */
static int split_args(fn_resp_req *p, size_t off, size_t len)
{
    char *s = base_of(&p->raw) + off;
    size_t first = p->ntok, r = 0, w = 0;
    uint64_t argc = 0;

/* The byte at i, or 0 past the end: the NUL sdssplitargs() would see. */
#define AT(i) ((i) < len ? (unsigned char)s[i] : 0)
    if (push_tok(p, 0) < 0)
        return FN_E_NOMEM;
    for (;;) {
        size_t start;
        int in_double = 0, in_single = 0, done = 0;

        while (r < len && is_blank((unsigned char)s[r]))
            r++;
        if (r == len)
            break;
        start = w;
        while (!done) {
            int c = AT(r);

            if (in_double) {
                if (c == '\\' && AT(r + 1) == 'x' && hex_value(AT(r + 2)) >= 0
                    && hex_value(AT(r + 3)) >= 0) {
                    s[w++] = (char)(hex_value(AT(r + 2)) * 16 + hex_value(AT(r + 3)));
                    r += 3;
                } else if (c == '\\' && AT(r + 1)) {
                    r++;
                    s[w++] = unescape(s[r]);
                } else if (c == '"') {
                    /* A closing quote must be followed by a blank or the end. */
                    if (AT(r + 1) && !is_blank(AT(r + 1)))
                        goto unbalanced;
                    done = 1;
                } else if (!c) {
                    goto unbalanced;
                } else {
                    s[w++] = (char)c;
                }
            } else if (in_single) {
                if (c == '\\' && AT(r + 1) == '\'') {
                    r++;
                    s[w++] = '\'';
                } else if (c == '\'') {
                    if (AT(r + 1) && !is_blank(AT(r + 1)))
                        goto unbalanced;
                    done = 1;
                } else if (!c) {
                    goto unbalanced;
                } else {
                    s[w++] = (char)c;
                }
            } else {
                switch (c) {
                case ' ': case '\n': case '\r': case '\t': case 0:
                    done = 1;  /* not "\v" or "\f": those are argument bytes */
                    break;
                case '"':
                    in_double = 1;
                    break;
                case '\'':
                    in_single = 1;
                    break;
                default:
                    s[w++] = (char)c;
                }
            }
            if (r < len)
                r++;
        }
        if (push_tok(p, off + start) < 0 || push_tok(p, off + w) < 0)
            return FN_E_NOMEM;
        argc++;
    }
#undef AT
    if (argc == 0)
        p->ntok = first;  /* a blank line: no command */
    else
        p->tok[first] = argc;
    return 0;

unbalanced:
    p->ntok = first;
    return FN_E_RESP_UNBALANCED;
}

/* A part of the command in progress is complete (its count line, an
 * argument, its inline line): FN_E_RESP_QUERY_BUFFER if the command now
 * holds more than max_query (resp.h), else 0. Checked at these points only,
 * which do not move with how the input is split; the part still arriving
 * is bounded by its own limit (max_bulk, max_line). */
static int check_query(const fn_resp_req *p)
{
    uint64_t held = (uint64_t)(p->pos - p->done_bytes)
                  + 8 * (uint64_t)(p->ntok - p->done_tok);

    return held > p->lim.max_query ? FN_E_RESP_QUERY_BUFFER : 0;
}

static int parse_inline(fn_resp_req *p)
{
    size_t newline, len;
    int rc = find_line_end(p, '\n', FN_E_RESP_INLINE_TOO_BIG, &newline);

    if (rc <= 0)
        return rc;
    len = newline - p->pos;
    if (len && base_of(&p->raw)[newline - 1] == '\r')
        len--;
    rc = split_args(p, p->pos, len);
    if (rc < 0)
        return rc;
    p->pos = p->scan = newline + 1;
    return check_query(p) ? FN_E_RESP_QUERY_BUFFER : 1;
}

/* A "*<count>" or "$<length>" line: 1 with *cr at its "\r" once the byte
 * after the "\r" has arrived too (Redis skips that byte unread). */
static int count_line(fn_resp_req *p, int err, size_t *cr)
{
    int rc = find_line_end(p, '\r', err, cr);

    if (rc <= 0)
        return rc;
    return *cr + 1 < buffered_bytes(&p->raw);
}

static int parse_multibulk(fn_resp_req *p)
{
    const char *base = base_of(&p->raw);
    size_t cr;
    int64_t n;
    int rc;

    if (p->left == 0) {
        rc = count_line(p, FN_E_RESP_MBULK_COUNT_TOO_BIG, &cr);
        if (rc <= 0)
            return rc;
        /* base[pos] is the "*" that chose this mode, so cr > pos. */
        if (!string2ll(base + p->pos + 1, cr - p->pos - 1, &n)
            || (n > 0 && (uint64_t)n > p->lim.max_count))
            return FN_E_RESP_MULTIBULK_LEN;
        p->pos = p->scan = cr + 2;
        if (n <= 0)  /* "*0", "*-1": an empty command, skipped */
            return check_query(p) ? FN_E_RESP_QUERY_BUFFER : 1;
        /* Never trust a declared count: reserve min(n, FN_RESP_PREALLOC). */
        if (req_reserve(p, 1 + 2 * (size_t)(n < FN_RESP_PREALLOC ? n : FN_RESP_PREALLOC)) < 0
            || push_tok(p, (uint64_t)n) < 0)
            return FN_E_NOMEM;
        p->left = n;
        if ((rc = check_query(p)) < 0)
            return rc;
    }
    while (p->left) {
        if (p->bulk < 0) {
            rc = count_line(p, FN_E_RESP_BULK_COUNT_TOO_BIG, &cr);
            if (rc <= 0)
                return rc;
            if (base[p->pos] != '$') {
                p->err_value = (unsigned char)base[p->pos];
                return FN_E_RESP_EXPECTED_DOLLAR;
            }
            if (!string2ll(base + p->pos + 1, cr - p->pos - 1, &n) || n < 0
                || (uint64_t)n > p->lim.max_bulk)
                return FN_E_RESP_BULK_LEN;
            p->pos = p->scan = cr + 2;
            p->bulk = n;
        }
        /* The argument and the two bytes after it, which Redis skips
         * unread. bulk <= INT64_MAX, so + 2 cannot wrap. */
        if ((uint64_t)(buffered_bytes(&p->raw) - p->pos) < (uint64_t)p->bulk + 2)
            return 0;
        if (push_tok(p, p->pos) < 0 || push_tok(p, p->pos + (size_t)p->bulk) < 0)
            return FN_E_NOMEM;
        p->pos = p->scan = p->pos + (size_t)p->bulk + 2;
        p->bulk = -1;
        p->left--;
        if ((rc = check_query(p)) < 0)
            return rc;
    }
    return 1;
}

int fn_resp_req_parse(fn_resp_req *p)
{
    req_drop_done(p);
    if (p->err)
        return p->err;
    for (;;) {
        int rc;

        if (p->mode == 0) {
            if (p->pos == buffered_bytes(&p->raw))
                return FN_OK;
            p->mode = base_of(&p->raw)[p->pos] == '*' ? MODE_MULTIBULK : MODE_INLINE;
        }
        rc = p->mode == MODE_INLINE ? parse_inline(p) : parse_multibulk(p);
        if (rc == 0)
            return FN_OK;
        if (rc < 0)
            return p->err = rc;
        /* A command is complete (or skipped). */
        p->mode = 0;
        p->stuck = 0;
        p->scan = p->pos;
        p->done_bytes = p->pos;
        p->done_tok = p->ntok;
    }
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                   */

static void reply_clear(fn_resp_reply *r)
{
    r->done_bytes = r->done_tok = 0;
    r->pos = r->scan = 0;
    r->body = -1;
    r->body_type = 0;
    r->ntok = 0;
    r->depth = 0;
    r->skip = 0;
    r->err = 0;
    r->err_value = 0;
}

fn_resp_reply *fn_resp_reply_new(const fn_resp_limits *lim)
{
    fn_resp_reply *r = calloc(1, sizeof *r);

    if (!r)
        return NULL;
    fn_framer_init(&r->raw, FN_FRAME_RAW, 0, 0);
    set_limits(&r->lim, lim);
    reply_clear(r);
    return r;
}

void fn_resp_reply_free(fn_resp_reply *r)
{
    if (r) {
        fn_framer_release(&r->raw);
        free(r->tok);
        free(r->stack);
        free(r);
    }
}

void fn_resp_reply_reset(fn_resp_reply *r)
{
    fn_framer_reset(&r->raw);
    fn_framer_trim(&r->raw, KEEP_BUFFER);
    TRIM_ARRAY(r->tok, r->tok_cap);
    TRIM_ARRAY(r->stack, r->stack_cap);
    reply_clear(r);
}

/* Token types whose (a, b) are offsets. */
static int has_span(int64_t type)
{
    return type == '+' || type == '-' || type == '$' || type == ','
        || type == '(' || type == '=';
}

/* As req_drop_done(): the reply in progress moves to the front, once. */
static void reply_drop_done(fn_resp_reply *r)
{
    size_t d = r->done_bytes, keep = r->ntok - r->done_tok, i;

    if (d == 0 && r->done_tok == 0)
        return;
    fn_framer_skip(&r->raw, d);
    for (i = 0; i < keep; i += 3) {
        int64_t *from = r->tok + r->done_tok + i, *to = r->tok + i;
        int span = has_span(from[0]);

        to[0] = from[0];
        to[1] = span ? from[1] - (int64_t)d : from[1];
        to[2] = span ? from[2] - (int64_t)d : from[2];
    }
    r->ntok = keep;
    r->pos -= d;
    r->scan -= d;
    r->done_bytes = r->done_tok = 0;
    if (keep == 0)
        TRIM_ARRAY(r->tok, r->tok_cap);
    if (r->depth == 0)
        TRIM_ARRAY(r->stack, r->stack_cap);
    if (buffered_bytes(&r->raw) == 0)
        fn_framer_trim(&r->raw, KEEP_BUFFER);
}

int fn_resp_reply_feed(fn_resp_reply *r, const char *data, size_t len)
{
    if (r->err || len == 0)
        return 0;
    reply_drop_done(r);
    return fn_framer_feed(&r->raw, data, len);
}

const char *fn_resp_reply_data(const fn_resp_reply *r)
{
    return r->raw.buf ? base_of(&r->raw) : NULL;
}

size_t fn_resp_reply_buffered(const fn_resp_reply *r)
{
    return buffered_bytes(&r->raw) - r->done_bytes;
}

/* Emit one token, unless inside an attribute. 0 or FN_E_NOMEM. */
static int emit(fn_resp_reply *r, int type, int64_t a, int64_t b)
{
    int64_t *tok;

    if (r->skip)
        return 0;
    tok = reserve(r->tok, &r->tok_cap, r->ntok, 3, sizeof *tok);
    if (!tok)
        return FN_E_NOMEM;
    r->tok = tok;
    r->tok[r->ntok++] = type;
    r->tok[r->ntok++] = a;
    r->tok[r->ntok++] = b;
    return 0;
}

/* A value is finished: count it in the open aggregates, closing each one it
 * completes. 1 if it completes a top-level reply, else 2 (more follows). */
static int value_done(fn_resp_reply *r)
{
    while (r->depth) {
        fn_resp_frame *f = &r->stack[r->depth - 1];

        if (--f->left)
            return 2;
        r->depth--;
        if (f->type == '|') {
            r->skip--;
            return 2;  /* an attribute annotates the next value: not a value */
        }
    }
    return 1;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* s[0..3) equals word (lower case) in any case. */
static int equals_word3(const char *s, const char *word)
{
    return ascii_lower((unsigned char)s[0]) == word[0]
        && ascii_lower((unsigned char)s[1]) == word[1]
        && ascii_lower((unsigned char)s[2]) == word[2];
}

static size_t count_digits(const char *s, size_t len, size_t i)
{
    size_t start = i;

    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    return i - start;
}

/* A RESP3 double, as fastnet/codec/resp/_common.py DOUBLE_RE: inf, -inf, nan,
 * -nan in any case (hiredis), or [+-]digits[.digits][(e|E)[+-]digits]. */
static int valid_double(const char *s, size_t len)
{
    size_t i = 0, n;

    if (len == 3 || (len == 4 && s[0] == '-')) {
        const char *w = s + len - 3;

        if (equals_word3(w, "inf") || equals_word3(w, "nan"))
            return 1;
    }
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    if ((n = count_digits(s, len, i)) == 0)
        return 0;
    i += n;
    if (i < len && s[i] == '.') {
        if ((n = count_digits(s, len, ++i)) == 0)
            return 0;
        i += n;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if ((n = count_digits(s, len, i)) == 0)
            return 0;
        i += n;
    }
    return i == len;
}

/* A RESP3 big number: [+-]digits, at most max digits. */
static int valid_big_number(const char *s, size_t len, uint64_t max)
{
    size_t i = len && (s[0] == '+' || s[0] == '-');
    size_t n = count_digits(s, len, i);

    return n > 0 && i + n == len && (uint64_t)n <= max;
}

/* The longest content a line of this type can have, and the error for a
 * longer one: checked while the line still arrives, so a peer cannot make
 * us buffer (and wait for) a line we will refuse. 0 for an unknown type. */
static int line_limit(const fn_resp_reply *r, int type, uint64_t *limit)
{
    switch (type) {
    case '+': case '-':
        *limit = r->lim.max_line;
        return FN_E_RESP_LINE;
    case ':':
        *limit = FN_RESP_LONG_STR_MAX;
        return FN_E_RESP_INTEGER;
    case ',':
        *limit = r->lim.max_double;
        return FN_E_RESP_DOUBLE;
    case '#':
        *limit = 1;
        return FN_E_RESP_BOOL;
    case '_':
        *limit = 0;
        return FN_E_RESP_NULL;
    case '(':
        *limit = r->lim.max_big_number + 1;  /* and a sign */
        return FN_E_RESP_BIG_NUMBER;
    case '$': case '!': case '=':
        *limit = FN_RESP_LONG_STR_MAX;
        return FN_E_RESP_BULK;
    case '*': case '%': case '~': case '>': case '|':
        *limit = FN_RESP_LONG_STR_MAX;
        return FN_E_RESP_COUNT;
    default:
        return 0;
    }
}

/* The line at pos ends at the first "\r\n". Must be O(bytes read): the
 * search resumes at scan, which stays on a final "\r" that may start
 * "\r\n". Returns 1 with *end at its "\r", 0 until it arrives, or err for
 * content over limit (a final "\r" is not counted as content). */
static int reply_line(fn_resp_reply *r, uint64_t limit, int err, size_t *end)
{
    const char *base = base_of(&r->raw);
    size_t avail = buffered_bytes(&r->raw);
    size_t from = r->scan > r->pos + 1 ? r->scan : r->pos + 1;
    size_t content;

    while (from < avail) {
        const char *cr = memchr(base + from, '\r', avail - from);
        size_t i;

        if (!cr)
            break;
        i = (size_t)(cr - base);
        if (i + 1 == avail) {
            r->scan = i;
            content = i - r->pos - 1;
            return (uint64_t)content > limit ? err : 0;
        }
        if (base[i + 1] == '\n') {
            if ((uint64_t)(i - r->pos - 1) > limit)
                return err;
            *end = i;
            return 1;
        }
        from = i + 1;
    }
    r->scan = avail;
    content = avail - r->pos - 1;
    return (uint64_t)content > limit ? err : 0;
}

/* Open an aggregate of n declared elements (pairs for % and |). n <=
 * max_count, which Python caps at 2^62 - 1 for replies, so the number of
 * values fits in an int64 token. */
static int open_aggregate(fn_resp_reply *r, int type, int64_t n)
{
    uint64_t values = (uint64_t)n * (type == '%' || type == '|' ? 2 : 1);
    fn_resp_frame *f;

    if ((uint64_t)r->depth >= r->lim.max_depth)
        return FN_E_RESP_DEPTH;
    if (type != '|' && emit(r, type, (int64_t)values, 0) < 0)
        return FN_E_NOMEM;
    if (values == 0)
        return type == '|' ? 2 : value_done(r);
    f = reserve(r->stack, &r->stack_cap, r->depth, 1, sizeof *f);
    if (!f)
        return FN_E_NOMEM;
    r->stack = f;
    f = &r->stack[r->depth++];
    f->left = values;
    f->type = type;
    if (type == '|')
        r->skip++;
    return 2;
}

/* The body of a bulk, blob error or verbatim string, once its length line
 * is parsed. */
static int reply_body(fn_resp_reply *r)
{
    const char *base = base_of(&r->raw);
    size_t start = r->pos, len = (size_t)r->body;
    int type = r->body_type;

    if ((uint64_t)(buffered_bytes(&r->raw) - start) < (uint64_t)r->body + 2)
        return 0;
    if (base[start + len] != '\r' || base[start + len + 1] != '\n')
        return FN_E_RESP_CRLF;
    if (type == '=' && (len < 4 || base[start + 3] != ':'))
        return FN_E_RESP_VERBATIM;
    if (emit(r, type == '!' ? '-' : type, (int64_t)start, (int64_t)(start + len)) < 0)
        return FN_E_NOMEM;
    r->pos = r->scan = start + len + 2;
    r->body = -1;
    return value_done(r);
}

/* Parse one element: 1 if it completes a reply, 2 if the reply goes on,
 * 0 until its bytes arrive, or an error. */
static int reply_element(fn_resp_reply *r)
{
    const char *base, *s;
    size_t end, start, len;
    uint64_t limit = 0;
    int64_t v;
    int type, err, rc;

    if (r->body >= 0)
        return reply_body(r);
    if (r->pos == buffered_bytes(&r->raw))
        return 0;
    base = base_of(&r->raw);
    type = (unsigned char)base[r->pos];
    err = line_limit(r, type, &limit);
    if (!err) {
        r->err_value = (uint64_t)type;
        return FN_E_RESP_TYPE_BYTE;
    }
    rc = reply_line(r, limit, err, &end);
    if (rc <= 0)
        return rc;
    start = r->pos + 1;
    s = base + start;
    len = end - start;
    r->pos = r->scan = end + 2;
    switch (type) {
    case '+': case '-':
        rc = emit(r, type, (int64_t)start, (int64_t)end);
        break;
    case ':':
        if (!string2ll(s, len, &v))
            return FN_E_RESP_INTEGER;
        rc = emit(r, type, v, 0);
        break;
    case ',':
        if (!valid_double(s, len))
            return FN_E_RESP_DOUBLE;
        rc = emit(r, type, (int64_t)start, (int64_t)end);
        break;
    case '#':
        if (len != 1 || (s[0] != 't' && s[0] != 'f'))
            return FN_E_RESP_BOOL;
        rc = emit(r, type, s[0] == 't', 0);
        break;
    case '_':
        rc = emit(r, type, 0, 0);  /* len is 0: line_limit() saw to it */
        break;
    case '(':
        if (!valid_big_number(s, len, r->lim.max_big_number))
            return FN_E_RESP_BIG_NUMBER;
        rc = emit(r, type, (int64_t)start, (int64_t)end);
        break;
    case '$': case '!': case '=':
        if (!string2ll(s, len, &v) || v < -1 || (v == -1 && type != '$'))
            return FN_E_RESP_BULK;
        if (v == -1) {
            rc = emit(r, '_', 0, 0);  /* $-1: the RESP2 null bulk */
            break;
        }
        if ((uint64_t)v > r->lim.max_bulk)
            return FN_E_RESP_BULK_RANGE;
        r->body = v;
        r->body_type = type;
        return reply_body(r);
    default:  /* * % ~ > | */
        if (!string2ll(s, len, &v) || v < -1 || (v == -1 && type != '*'))
            return FN_E_RESP_COUNT;
        if (v == -1) {
            rc = emit(r, '_', 0, 0);  /* *-1: the RESP2 null array */
            break;
        }
        if ((uint64_t)v > r->lim.max_count)
            return FN_E_RESP_COUNT_RANGE;
        return open_aggregate(r, type, v);
    }
    return rc < 0 ? rc : value_done(r);
}

int fn_resp_reply_parse(fn_resp_reply *r)
{
    reply_drop_done(r);
    if (r->err)
        return r->err;
    for (;;) {
        int rc = reply_element(r);

        if (rc == 0)
            return FN_OK;
        if (rc < 0)
            return r->err = rc;
        if (rc == 1) {
            r->done_bytes = r->pos;
            r->done_tok = r->ntok;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Requests as a marshal stream                                             */

const char *fn_resp_req_marshal(fn_resp_req *p, size_t *len)
{
    const uint64_t *t = p->tok;
    size_t n = p->done_tok, i = 0, need = 5, commands = 0;

    *len = 0;
    /* First pass: the exact size, and refuse what marshal cannot hold. */
    while (i < n) {
        uint64_t argc = t[i++];
        commands++;
        need += 5;
        for (uint64_t a = 0; a < argc; a++, i += 2) {
            uint64_t arg = t[i + 1] - t[i];
            if (arg > FN_MARSHAL_MAX_SIZE)
                return NULL;
            need += 5 + (size_t)arg;
        }
    }
    if (commands > FN_MARSHAL_MAX_SIZE)
        return NULL;
    if (need > p->out_cap) {
        size_t cap = p->out_cap ? p->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *out = malloc(cap);
        if (!out)
            return NULL;
        free(p->out);
        p->out = out;
        p->out_cap = cap;
    }
    const char *data = fn_resp_req_data(p);
    char *w = fn_marshal_header(p->out, FN_MARSHAL_LIST, (uint32_t)commands);
    for (i = 0; i < n;) {
        uint64_t argc = t[i++];
        w = fn_marshal_header(w, FN_MARSHAL_LIST, (uint32_t)argc);
        for (uint64_t a = 0; a < argc; a++, i += 2) {
            size_t arg = (size_t)(t[i + 1] - t[i]);
            w = fn_marshal_header(w, FN_MARSHAL_STRING, (uint32_t)arg);
            memcpy(w, data + t[i], arg);
            w += arg;
        }
    }
    *len = (size_t)(w - p->out);
    return p->out;
}

int fn_resp_req_feed_parse(fn_resp_req *p, const char *data, size_t len)
{
    p->out_len = 0;
    if (fn_resp_req_feed(p, data, len) != 0)
        return FN_E_NOMEM;
    int rc = fn_resp_req_parse(p);
    if (p->done_tok && !fn_resp_req_marshal(p, &p->out_len))
        return FN_E_NOMEM;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Accessors (Python reads no struct field)                                 */

const char *fn_resp_req_output(const fn_resp_req *p, size_t *len)
{
    *len = p->out_len;
    return p->out;
}

size_t fn_resp_req_done_tokens(const fn_resp_req *p)
{
    return p->done_tok;
}

uint64_t fn_resp_req_error_value(const fn_resp_req *p)
{
    return p->err_value;
}

const int64_t *fn_resp_reply_tokens(const fn_resp_reply *r, size_t *n)
{
    *n = r->done_tok;
    return r->tok;
}

size_t fn_resp_reply_done_bytes(const fn_resp_reply *r)
{
    return r->done_bytes;
}

uint64_t fn_resp_reply_error_value(const fn_resp_reply *r)
{
    return r->err_value;
}

/* ---- replies: an array of bulk strings ------------------------------------------ */

/* "$" or "*", up to 20 digits, "\r\n" (and a bulk's closing "\r\n"). */
#define BULK_HEAD_MAX 25

size_t fn_resp_bulk_array_cap(size_t n, size_t data_len)
{
    /* Saturates instead of wrapping: a cap of SIZE_MAX can never be allocated. */
    if (data_len > SIZE_MAX - BULK_HEAD_MAX
        || n > (SIZE_MAX - BULK_HEAD_MAX - data_len) / BULK_HEAD_MAX)
        return SIZE_MAX;
    return BULK_HEAD_MAX + n * BULK_HEAD_MAX + data_len;
}

/* c, the decimal digits of v, "\r\n" at out; returns the bytes written (at most 23). */
static size_t put_head(char *out, char c, uint64_t v)
{
    char digits[20];
    size_t nd = 0, k = 0;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    out[k++] = c;
    while (nd)
        out[k++] = digits[--nd];
    out[k++] = '\r';
    out[k++] = '\n';
    return k;
}

int64_t fn_resp_bulk_array(const char *data, size_t data_len, const uint64_t *lens, size_t n,
                           char *out, size_t cap)
{
    size_t at = 0, used = 0;
    if (cap < fn_resp_bulk_array_cap(n, data_len) || cap > (size_t)INT64_MAX)
        return FN_E_ARG;
    at += put_head(out, '*', n);
    for (size_t i = 0; i < n; i++) {
        uint64_t len = lens[i];
        if (len > data_len - used)
            return FN_E_ARG;
        at += put_head(out + at, '$', len);
        memcpy(out + at, data + used, (size_t)len);
        at += (size_t)len;
        used += (size_t)len;
        out[at++] = '\r';
        out[at++] = '\n';
    }
    if (used != data_len)
        return FN_E_ARG;
    return (int64_t)at;
}
