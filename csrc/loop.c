/* loop.c - fastnet's epoll engine. The contract is in loop.h; this comment
 * is the strategy.
 *
 * Poll round (fn_loop_poll), in order:
 *   1. free what the previous round may still have had views into: dead
 *      connections, input buffers left big by a big message, and the
 *      buffers of connections quiet for COLD_NS (a busy connection keeps
 *      its input and output buffers from one message to the next: no
 *      malloc and free per message);
 *   2. deliver CLOSED events queued outside a round (or when the array was
 *      full), then messages left buffered by a full array (pending list);
 *   3. write queued output (dirty list), like redis's beforeSleep;
 *   4. epoll_wait (not at all if step 2 found work) and handle what is
 *      ready: accept, finish connects, write, read + frame (+ echo: sent
 *      straight from the input buffer, as a hand-written echo server
 *      does, so one recv and one send per readable connection);
 *   5. write again, so echo replies leave before Python runs.
 *
 * Buffer lifetime (the one rule views depend on): a connection's input
 * framer is only reserved into (which may move or free its buffer) by a
 * recv, and a connection is never read in a round that already handed out
 * views of its input. Closed connections keep their framer on a dead list
 * until the round after their CLOSED event, so views outlive a close too.
 *
 * Events that cannot wait for room (CLOSED, produced by errors while writing
 * or by calls between rounds) are queued on the connection itself, which
 * lives on the closed queue until the event is out: no allocation can fail
 * on that path. Every other event is produced only while the array has room
 * (with level-triggered epoll an fd skipped now is reported again next time).
 *
 * Threats: the peer picks the bytes and the pace. Input is framed with the
 * caller's limits (framer.h); a connection with more than high_water bytes
 * of output is not read (it cannot make us buffer unbounded replies); one
 * recv of at most READ_CHUNK per connection per round and at most
 * ACCEPT_BATCH accepts per listener per round keep one peer from starving
 * the others; quiet connections own no buffers.
 *
 * Choices loop.h leaves open:
 *   - input not yet delivered when a connection closes (any reason) is
 *     dropped: no FN_EV_MESSAGE ever follows FN_EV_CLOSED;
 *   - fn_loop_pause also holds messages already buffered;
 *   - send/send_msg on a closing connection still queue output, which goes
 *     out before the close completes (an error reply, typically);
 *   - a graceful close of a connection still connecting closes it at once;
 *   - stats: `open` counts established connections only, so a failed or
 *     abandoned connect counts in neither `connected` nor `closed`;
 *   - IPv6 listeners are IPV6_V6ONLY ("::" does not take IPv4), as asyncio.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http1.h"
#include "loop.h"
#include "varint.h"
#include "wire.h"

#define READ_CHUNK (256 * 1024)    /* most bytes one recv may take */
#define READ_SMALL (16 * 1024)     /* room reserved unless the last read filled its room */
#define READ_KEEP (2 * READ_CHUNK) /* an empty input buffer larger than this is freed after its round */
#define OUT_KEEP (256 * 1024)      /* a drained output buffer larger than this is freed at once */
#define COLD_NS 1000000000u        /* a connection quiet this long gives its buffers back */
#define SLICE_NS 10000000u         /* most time a poll goes on with work that makes no event */
#define OUT_MIN 4096               /* first output allocation */
#define ACCEPT_BATCH 64            /* accepts per listener per round */
#define EPOLL_BATCH 256            /* epoll_wait maxevents */
#define DRAIN_ROUNDS 4             /* recv(MSG_TRUNC) calls before a graceful close */
#define GEN_MAX 0x7fffffffu        /* ids stay positive as int64 */
#define WAKER_TAG UINT64_MAX       /* epoll data of the waker fd */
/* epoll data: a conn id has a generation >= 1 in its high half; a listener
 * is its index (high half 0); the waker is WAKER_TAG. */

enum { ST_CONNECTING = 1, ST_OPEN = 2 };
enum { L_DIRTY, L_PENDING, L_READ, L_ERRORED, L_IDLE, L_WARM, L_SEND, N_LISTS };
/* L_ERRORED: echo conns that reported FN_EV_ERROR this round; their close
 * waits until Python has seen the event (and maybe queued an error reply).
 * L_IDLE: open conns, oldest activity first (see fn_loop_set_idle_timeout).
 * L_WARM: conns that may own buffers, least recently used first (see
 * sweep_cold).
 * L_SEND: conns with output pending, longest without write progress first
 * (see fn_loop_set_send_timeout). */

typedef struct fn_conn fn_conn;

typedef struct { fn_conn *prev, *next; } fn_link;
typedef struct { fn_conn *head, *tail; } fn_list;

struct fn_conn {
    uint64_t id;
    int fd;
    int state;               /* ST_* */
    fn_conn_opts opts;
    fn_framer in;
    char *out;               /* owned output: out[out_off .. out_off+out_len) */
    size_t out_off, out_len, out_cap;
    uint32_t events;         /* epoll mask registered now */
    unsigned read_done : 1;  /* EOF or framing error seen: never read again */
    unsigned paused : 1;     /* fn_loop_pause */
    unsigned backpressured : 1;
    unsigned want_out : 1;   /* a write was left incomplete: EPOLLOUT armed */
    unsigned closing : 1;    /* graceful close: flush, then close_code */
    unsigned last_read_full : 1;
    unsigned counted_open : 1;
    unsigned kata : 1;       /* fn_loop_http_kata on */
    unsigned kata_clean : 1; /* Python's session holds nothing: C may answer */
    size_t kata_line, kata_head, kata_fields; /* the session's head limits */
    unsigned http : 1;       /* fn_loop_http on */
    unsigned http_clean : 1; /* Python's session holds nothing: C may parse for it */
    unsigned wire_on : 1;    /* fn_loop_wire on: the loop frames wire itself */
    fn_wire_conn wire;       /* its version, max_body, compression threshold */
    int close_code;          /* FN_CLOSE_* once closing or closed */
    int close_err;
    uint64_t viewed_round;   /* round that handed out views of `in` */
    uint64_t last_in_ns;     /* when a byte last arrived (or the conn opened) */
    uint64_t idle_mark_ns;   /* last_in_ns, or when FN_EV_IDLE was last reported */
    uint64_t warm_ns;        /* when it last read or queued output (L_WARM order) */
    uint64_t send_mark_ns;   /* output pending since, or last write progress (L_SEND order) */
    unsigned char on[N_LISTS];
    fn_link link[N_LISTS];
    fn_conn *next_dead;      /* closed queue / dead list */
};

typedef struct {
    fn_conn *conn;
    uint32_t gen;            /* generation of the last conn on this fd */
} fn_slot;

typedef struct {
    int fd;                  /* -1 once unlistened */
    int starved;             /* accept failed for lack of resources */
    fn_conn_opts opts;
} fn_listener;

struct fn_loop {
    int epfd;
    int waker;               /* caller's fd, or -1 */
    fn_slot *slots;          /* indexed by fd */
    size_t nslots;
    fn_listener *listeners;  /* indexed by listener id, never reused */
    size_t nlisteners, caplisteners;
    int starved;             /* listeners currently starved */
    uint64_t starve_retry_ns; /* when starved listeners are tried again */
    uint64_t accept_retry_ns; /* fn_loop_set_accept_retry, 0: only on a close */
    uint64_t send_ns;        /* send timeout, 0: off */
    fn_list lists[N_LISTS];
    fn_conn *closed_head, *closed_tail; /* CLOSED events not yet delivered */
    fn_conn *dead;           /* CLOSED delivered; free next round */
    uint64_t round;
    uint64_t idle_ns;        /* idle timeout, 0: off */
    uint64_t now_ns;         /* the clock, read once per epoll_wait */
    fn_event *evs;           /* the caller's array during a round, else NULL */
    int nev, maxev;
    int woken;               /* this poll: the waker fired or a signal came */
    char *kata_reply;        /* fn_loop_set_http_kata_reply's bytes */
    size_t kata_len;
    int64_t kata_sec;        /* the wall-clock second of its Date */
    size_t *kata_fields;     /* field spans of a head, 4 per field */
    size_t kata_cap;         /* fields kata_fields has room for */
    size_t *http_words;      /* this round's simple requests (fn_loop_http_words) */
    size_t http_nwords, http_cap;
    fn_wire_work *wire_work; /* fn_loop_set_wire's (not owned) */
    fn_wire_poll *wire_poll; /* owned: this round's wire requests */
    fn_loop_stats stats;
    struct epoll_event ready[EPOLL_BATCH];
};

/* ---- small helpers ---------------------------------------------------- */

static int room(const fn_loop *loop) { return loop->nev < loop->maxev; }

/* a + b, or UINT64_MAX where that would wrap: a deadline far away stays
 * far away (an idle timeout of 1.8e10 s must not land in the past). */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t ms_to_ns(uint64_t ms)
{
    return ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u;
}

/* A failed system call's return code (status.h): out of memory is
 * FN_E_NOMEM wherever it comes from. */
static int sys_error(int err)
{
    return err == ENOMEM ? FN_E_NOMEM : FN_E_SYS - err;
}

/* The errno a FN_EV_CLOSED event carries for a send that could not queue. */
static int errno_of(int rc)
{
    if (rc <= FN_E_SYS)
        return FN_E_SYS - rc;
    return rc == FN_E_NOMEM ? ENOMEM : rc == FN_E_LOOP_TOO_LONG ? EMSGSIZE : EINVAL;
}

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static fn_event *emit(fn_loop *loop, int type, uint64_t conn)
{
    fn_event *ev = &loop->evs[loop->nev++];
    ev->type = type;
    ev->code = 0;
    ev->conn = conn;
    ev->value = 0;
    ev->data = NULL;
    ev->len = 0;
    return ev;
}

static void list_push(fn_loop *loop, int which, fn_conn *c)
{
    fn_list *l = &loop->lists[which];
    if (c->on[which])
        return;
    c->on[which] = 1;
    c->link[which].prev = l->tail;
    c->link[which].next = NULL;
    if (l->tail)
        l->tail->link[which].next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_remove(fn_loop *loop, int which, fn_conn *c)
{
    fn_list *l = &loop->lists[which];
    fn_link *k = &c->link[which];
    if (!c->on[which])
        return;
    c->on[which] = 0;
    if (k->prev)
        k->prev->link[which].next = k->next;
    else
        l->head = k->next;
    if (k->next)
        k->next->link[which].prev = k->prev;
    else
        l->tail = k->prev;
    k->prev = k->next = NULL;
}

static fn_conn *list_pop(fn_loop *loop, int which)
{
    fn_conn *c = loop->lists[which].head;
    if (c)
        list_remove(loop, which, c);
    return c;
}

static fn_conn *lookup(const fn_loop *loop, uint64_t id)
{
    uint64_t fd = id & 0xffffffffu;
    fn_conn *c;
    if (fd >= loop->nslots)
        return NULL;
    c = loop->slots[fd].conn;
    return c && c->id == id ? c : NULL;
}

static int so_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

static void set_int_opt(int fd, int level, int name, int value)
{
    /* Best effort: a socket without TCP_NODELAY still works. */
    (void)setsockopt(fd, level, name, &value, sizeof value);
}

/* Options every established connection gets. */
static void tune_socket(int fd, const fn_conn_opts *o)
{
    set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (o->keepalive) {
        set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
        if (o->keepalive_idle)
            set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, o->keepalive_idle);
        if (o->keepalive_interval)
            set_int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, o->keepalive_interval);
        if (o->keepalive_count)
            set_int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, o->keepalive_count);
    }
}

/* Activity (or a report) on c: it moves to the tail of the idle list, which
 * stays ordered because marks are taken from a clock that never goes back. */
static void idle_touch(fn_loop *loop, fn_conn *c, uint64_t mark)
{
    c->idle_mark_ns = mark;
    list_remove(loop, L_IDLE, c);
    list_push(loop, L_IDLE, c);
}

/* c read or queued output: its buffers are in use. It moves to the tail of
 * the warm list, which stays ordered for the same reason as the idle list. */
static void warm_touch(fn_loop *loop, fn_conn *c)
{
    c->warm_ns = loop->now_ns;
    if (loop->lists[L_WARM].tail == c)
        return;
    list_remove(loop, L_WARM, c);
    list_push(loop, L_WARM, c);
}

/* A connection became established. */
static void conn_opened(fn_loop *loop, fn_conn *c)
{
    c->state = ST_OPEN;
    c->counted_open = 1;
    loop->stats.open++;
    c->last_in_ns = loop->now_ns;
    idle_touch(loop, c, loop->now_ns);
}

static int valid_opts(const fn_conn_opts *o)
{
    return o && o->framing >= FN_FRAME_RAW && o->framing <= FN_FRAME_LINE &&
           o->max > 0 && o->low_water <= o->high_water &&
           o->keepalive_idle >= 0 && o->keepalive_interval >= 0 && o->keepalive_count >= 0;
}

/* Numeric IPv4 or IPv6 address -> sockaddr. 0 or FN_E_ARG. */
static int parse_addr(const char *host, int port, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (!host || port < 0 || port > 65535)
        return FN_E_ARG;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return 0;
    }
    return FN_E_ARG;
}

/* ---- epoll interest --------------------------------------------------- */

static int can_read(const fn_conn *c)
{
    return c->state == ST_OPEN && !c->read_done && !c->closing && !c->paused &&
           !c->backpressured && !c->on[L_PENDING];
}

static uint32_t wanted_events(const fn_conn *c)
{
    if (c->state == ST_CONNECTING)
        return EPOLLOUT;
    return (can_read(c) ? EPOLLIN : 0) | (c->want_out ? EPOLLOUT : 0);
}

/* Keep the registered mask equal to what the state asks for; one epoll_ctl
 * only on a change. */
static void sync_events(fn_loop *loop, fn_conn *c)
{
    struct epoll_event ev;
    uint32_t want = wanted_events(c);
    if (want == c->events)
        return;
    ev.events = want;
    ev.data.u64 = c->id;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = want;
}

/* ---- listeners -------------------------------------------------------- */

static void listener_set_events(fn_loop *loop, size_t id, uint32_t events)
{
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = id;
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_MOD, loop->listeners[id].fd, &ev);
}

/* A connection closed, so a descriptor may be free again: poll the listeners
 * that ran out of them. */
static void wake_starved_listeners(fn_loop *loop)
{
    size_t i;
    if (!loop->starved)
        return;
    for (i = 0; i < loop->nlisteners; i++) {
        fn_listener *l = &loop->listeners[i];
        if (l->fd >= 0 && l->starved) {
            l->starved = 0;
            listener_set_events(loop, i, EPOLLIN);
        }
    }
    loop->starved = 0;
}

/* ---- connection lifetime ---------------------------------------------- */

static int ensure_slot(fn_loop *loop, int fd)
{
    size_t want = (size_t)fd + 1, cap = loop->nslots ? loop->nslots : 64;
    fn_slot *s;
    if (want <= loop->nslots)
        return 0;
    while (cap < want)
        cap *= 2;
    s = realloc(loop->slots, cap * sizeof *s);
    if (!s)
        return FN_E_NOMEM;
    memset(s + loop->nslots, 0, (cap - loop->nslots) * sizeof *s);
    loop->slots = s;
    loop->nslots = cap;
    return 0;
}

/* Wrap fd (owned from now on, closed on failure) in a registered conn. */
static fn_conn *conn_new(fn_loop *loop, int fd, const fn_conn_opts *opts, int state)
{
    struct epoll_event ev;
    fn_slot *slot;
    fn_conn *c;
    if (ensure_slot(loop, fd) < 0 || !(c = calloc(1, sizeof *c))) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    slot = &loop->slots[fd];
    slot->gen = slot->gen >= GEN_MAX ? 1 : slot->gen + 1;
    c->id = ((uint64_t)slot->gen << 32) | (uint32_t)fd;
    c->fd = fd;
    c->state = state;
    c->opts = *opts;
    fn_framer_init(&c->in, opts->framing, opts->max, opts->frame_flags);
    c->events = wanted_events(c);
    ev.events = c->events;
    ev.data.u64 = c->id;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = errno;
        fn_framer_release(&c->in);
        free(c);
        close(fd);
        errno = err;
        return NULL;
    }
    slot->conn = c;
    if (state == ST_OPEN)
        conn_opened(loop, c);
    return c;
}

static void conn_free(fn_conn *c)
{
    fn_framer_release(&c->in);
    free(c->out);
    free(c);
}

static void out_clear(fn_conn *c)
{
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
}

/* Close the socket and retire the conn. Its input buffer stays alive (dead
 * list) until the round after its CLOSED event. */
static void conn_destroy(fn_loop *loop, fn_conn *c, int code, int err)
{
    int which;
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    for (which = 0; which < N_LISTS; which++)
        list_remove(loop, which, c);
    loop->slots[c->fd].conn = NULL;
    c->fd = -1;
    out_clear(c);
    if (c->counted_open) {
        loop->stats.closed++;
        loop->stats.open--;
    }
    c->close_code = code;
    c->close_err = err;
    if (room(loop) && !loop->closed_head) {
        fn_event *ev = emit(loop, FN_EV_CLOSED, c->id);
        ev->code = code;
        ev->value = (uint64_t)err;
        c->next_dead = loop->dead;
        loop->dead = c;
    } else {
        c->next_dead = NULL;
        if (loop->closed_tail)
            loop->closed_tail->next_dead = c;
        else
            loop->closed_head = c;
        loop->closed_tail = c;
    }
    wake_starved_listeners(loop);
}

/* Read and discard what the peer already sent, so that close() sends a FIN
 * rather than a RST (a RST can destroy the reply we just flushed). Bounded:
 * a peer that keeps sending gets its RST. */
static void drain_input(int fd)
{
    int i;
    for (i = 0; i < DRAIN_ROUNDS; i++) {
        ssize_t r = recv(fd, NULL, READ_CHUNK, MSG_TRUNC | MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
    }
}

/* Output is flushed: finish a graceful close. */
static void conn_finish_close(fn_loop *loop, fn_conn *c)
{
    drain_input(c->fd);
    (void)shutdown(c->fd, SHUT_WR);
    conn_destroy(loop, c, c->close_code, 0);
}

/* Stop reading and close once output is flushed (graceful close). */
static void conn_begin_close(fn_loop *loop, fn_conn *c, int code)
{
    c->closing = 1;
    c->close_code = code;
    list_remove(loop, L_PENDING, c);  /* undelivered input is dropped */
    list_remove(loop, L_IDLE, c);
    sync_events(loop, c);
    if (!c->want_out)
        list_push(loop, L_DIRTY, c);  /* the next flush finishes the close */
}

/* Close at once with a RST (nothing queued is sent). */
static void conn_abort(fn_loop *loop, fn_conn *c, int code)
{
    struct linger lg = {1, 0};
    (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    conn_destroy(loop, c, code, 0);
}

/* The socket reported HUP/ERR while we are not reading it. Level-triggered
 * HUP would be reported forever, so the connection must go now. */
static void conn_dead_socket(fn_loop *loop, fn_conn *c, uint32_t revents)
{
    int err = so_error(c->fd);
    if (!err)
        err = (revents & EPOLLERR) ? ECONNRESET : EPIPE;
    conn_destroy(loop, c, FN_CLOSE_RESET, err);
}

/* ---- output ----------------------------------------------------------- */

/* Room for n more bytes at the end of the output; NULL on ENOMEM. Compacts
 * only when at least as many bytes were consumed as are left to move, so
 * appends stay O(1) amortised however slowly the peer reads. */
static char *out_reserve(fn_conn *c, size_t n)
{
    size_t end = c->out_off + c->out_len, cap;
    char *p;
    if (n <= c->out_cap - end)
        return c->out + end;
    if (c->out_off >= c->out_len && n <= c->out_cap - c->out_len) {
        memmove(c->out, c->out + c->out_off, c->out_len);
        c->out_off = 0;
        return c->out + c->out_len;
    }
    if (n > SIZE_MAX - c->out_len)
        return NULL;
    cap = c->out_cap ? c->out_cap : OUT_MIN;
    while (cap < c->out_len + n)
        cap = cap > SIZE_MAX / 2 ? c->out_len + n : cap * 2;
    p = malloc(cap);
    if (!p)
        return NULL;
    if (c->out_len)
        memcpy(p, c->out + c->out_off, c->out_len);
    free(c->out);
    c->out = p;
    c->out_cap = cap;
    c->out_off = 0;
    return p + c->out_len;
}

static int out_append(fn_conn *c, const char *data, size_t len)
{
    if (len == 0)
        return 0;  /* nothing to queue (and no buffer to reserve it in) */
    char *p = out_reserve(c, len);
    if (!p)
        return FN_E_NOMEM;
    if (len)
        memcpy(p, data, len);
    c->out_len += len;
    return 0;
}

/* Output was appended: schedule the write and apply backpressure. */
static void output_queued(fn_loop *loop, fn_conn *c)
{
    warm_touch(loop, c);
    if (!c->want_out && c->state == ST_OPEN && c->out_len)
        list_push(loop, L_DIRTY, c);
    if (!c->backpressured && c->out_len > c->opts.high_water) {
        c->backpressured = 1;
        sync_events(loop, c);
    }
}

/* Write as much output as the socket takes. Returns 1 if the conn is still
 * there, 0 if it was closed (error, or a graceful close completed). */
/* Output is still pending after a write: a conn that made progress (or
 * just got output to wait on) starts its send timeout anew, at the tail. */
static void send_touch(fn_loop *loop, fn_conn *c)
{
    c->send_mark_ns = loop->now_ns;
    list_remove(loop, L_SEND, c);
    list_push(loop, L_SEND, c);
}

static int conn_flush(fn_loop *loop, fn_conn *c)
{
    size_t before = c->out_len;
    list_remove(loop, L_DIRTY, c);
    if (c->state != ST_OPEN)
        return 1;  /* connecting: flushed once connected */
    while (c->out_len > 0) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_destroy(loop, c, FN_CLOSE_RESET, errno);
            return 0;
        }
        loop->stats.bytes_out += (uint64_t)w;
        if ((size_t)w < c->out_len) {
            c->out_off += (size_t)w;
            c->out_len -= (size_t)w;
            break;  /* short write: the socket buffer is full */
        }
        c->out_off = c->out_len = 0;
    }
    if (c->backpressured && c->out_len <= c->opts.low_water)
        c->backpressured = 0;
    if (c->out_len == 0) {
        list_remove(loop, L_SEND, c);
        /* Kept for the next reply (sweep_cold frees it once the connection
         * is quiet), unless a burst made it big. */
        if (c->out_cap > OUT_KEEP)
            out_clear(c);
        c->want_out = 0;
        if (c->closing && !c->on[L_ERRORED]) {
            conn_finish_close(loop, c);
            return 0;
        }
    } else {
        c->want_out = 1;
        if (c->out_len < before || !c->on[L_SEND])
            send_touch(loop, c);
    }
    sync_events(loop, c);
    return 1;
}

static void flush_dirty(fn_loop *loop)
{
    fn_conn *c;
    while ((c = list_pop(loop, L_DIRTY)))
        conn_flush(loop, c);
}

/* ---- input ------------------------------------------------------------ */

/* Hand out buffered messages as views while the array has room; what does
 * not fit stays buffered and the conn waits on the pending list (and is not
 * read) until a later round has delivered it. */
static void conn_deliver(fn_loop *loop, fn_conn *c)
{
    const char *msg;
    size_t len;
    while (room(loop)) {
        int r = fn_framer_next(&c->in, &msg, &len);
        if (r == FN_MESSAGE) {
            fn_event *ev = emit(loop, FN_EV_MESSAGE, c->id);
            ev->data = msg ? msg : "";  /* never NULL, even when empty */
            ev->len = len;
            loop->stats.messages_in++;
            c->viewed_round = loop->round;
            continue;
        }
        list_remove(loop, L_PENDING, c);
        if (r == FN_E_NOMEM) {
            conn_destroy(loop, c, FN_CLOSE_RESET, ENOMEM);
            return;
        }
        if (r != FN_NEED_DATA) {
            fn_event *ev = emit(loop, FN_EV_ERROR, c->id);
            ev->code = r;
            ev->value = c->in.err_value;
            c->read_done = 1;
        }
        sync_events(loop, c);
        return;
    }
    list_push(loop, L_PENDING, c);
    sync_events(loop, c);
}

static void conn_wire(fn_loop *loop, fn_conn *c);

/* Only the conns pending when the round began: a wire conn put back (its
 * next frame waits for the replies of this round's requests) is the next
 * round's. */
static void deliver_pending(fn_loop *loop)
{
    fn_conn *c, *last = loop->lists[L_PENDING].tail;
    while (last && room(loop) && (c = list_pop(loop, L_PENDING))) {
        int was_last = c == last;
        if (c->wire_on)
            conn_wire(loop, c);
        else
            conn_deliver(loop, c);
        if (was_last)
            break;
    }
}

static size_t uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Echo bytes that are views of c's input: sent straight from there when
 * nothing is queued before them (one send and no copy, as a hand-written
 * echo server does); what the socket does not take is queued, and EPOLLOUT
 * armed at once (a retry now would only meet EAGAIN). A hard error is left
 * for the flush to find and report, as for queued output. */
static int echo_write(fn_loop *loop, fn_conn *c, const char *data, size_t len)
{
    if (c->out_len == 0 && !c->want_out) {
        ssize_t w;
        do
            w = send(c->fd, data, len, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w >= 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
            if (w > 0) {
                loop->stats.bytes_out += (uint64_t)w;
                data += w;
                len -= (size_t)w;
            }
            if (len == 0)
                return 0;
            c->want_out = 1;  /* the socket is full */
        }
    }
    return out_append(c, data, len);
}

/* Echo every whole message in C. Messages that are contiguous on the wire
 * (BE32, VARINT, strict LINE, RAW) are copied as one span: a message's wire
 * bytes are its header (always the shortest encoding: the framer rejects
 * overlong varints) + payload (+ "\r\n" for a strict line). Bare-LF lines
 * are re-terminated with "\r\n" one by one. */
static void conn_echo(fn_loop *loop, fn_conn *c)
{
    const char *msg, *span = NULL;
    size_t len, span_len = 0;
    int kind = c->opts.framing, rc = 0, r;
    int bare_lf = kind == FN_FRAME_LINE && (c->opts.frame_flags & FN_LINE_BARE_LF);
    while ((r = fn_framer_next(&c->in, &msg, &len)) == FN_MESSAGE) {
        size_t head = kind == FN_FRAME_BE32 ? 4 : kind == FN_FRAME_VARINT ? uvarint_len(len) : 0;
        size_t tail = kind == FN_FRAME_LINE ? 2 : 0;
        loop->stats.messages_in++;
        if (bare_lf) {
            rc = out_append(c, msg, len);
            if (rc == 0)
                rc = out_append(c, "\r\n", 2);
        } else if (span && span + span_len == msg - head) {
            span_len += head + len + tail;
        } else {
            if (span)
                rc = echo_write(loop, c, span, span_len);
            span = msg - head;
            span_len = head + len + tail;
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && span)
        rc = echo_write(loop, c, span, span_len);
    if (rc < 0 || r == FN_E_NOMEM) {
        conn_destroy(loop, c, FN_CLOSE_RESET, ENOMEM);
        return;
    }
    output_queued(loop, c);
    sync_events(loop, c);  /* EPOLLOUT if echo_write was left short */
    if (r != FN_NEED_DATA) {
        fn_event *ev = emit(loop, FN_EV_ERROR, c->id);  /* room: checked before the read */
        ev->code = r;
        ev->value = c->in.err_value;
        c->read_done = 1;
        conn_begin_close(loop, c, FN_CLOSE_PROTOCOL);
        list_push(loop, L_ERRORED, c);  /* see release_errored */
    }
}

/* End of a round: echo conns that reported a framing error may finish
 * closing at the next flush, which comes after Python has handled the
 * FN_EV_ERROR (and queued any error reply). */
static void release_errored(fn_loop *loop)
{
    fn_conn *c;
    while ((c = list_pop(loop, L_ERRORED)))
        if (!c->want_out)
            list_push(loop, L_DIRTY, c);
}

static void conn_eof(fn_loop *loop, fn_conn *c)
{
    c->read_done = 1;
    /* An unfinished message can never complete: free it now. Safe: this
     * conn handed out no views this round (see conn_ready). */
    fn_framer_reset(&c->in);
    if (c->opts.echo) {
        conn_begin_close(loop, c, FN_CLOSE_PEER);
        return;
    }
    emit(loop, FN_EV_EOF, c->id);  /* room: checked before the read */
    sync_events(loop, c);
}

/* ---- HTTP/1.1 kata (fn_loop_http_kata) --------------------------------- */

static int name_is(const char *buf, const size_t *f, const char *lower)
{
    size_t n = f[1] - f[0], i;
    if (n != strlen(lower))
        return 0;
    for (i = 0; i < n; i++) {
        char ch = buf[f[0] + i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch + 32);
        if (ch != lower[i])
            return 0;
    }
    return 1;
}

enum { KATA_OTHER, KATA_CLEAN, KATA_ANSWER };

/* What the head at h is to the fast path: KATA_ANSWER, the kata's own GET /;
 * KATA_CLEAN, a bodiless HTTP/1.1 request with no Connection, Expect,
 * Upgrade or framing field (Python answers it and is left holding nothing,
 * or closes the conn); KATA_OTHER, anything else. The kind is decided by the
 * fields, as KataSession decides (fastnet/http/server.py). */
static int kata_kind(const char *buf, const fn_http1_head *h, const size_t *fields)
{
    size_t i, hosts = 0;
    if (h->minor != 1)
        return KATA_OTHER;
    for (i = 0; i < h->nfields; i++) {
        const size_t *f = fields + 4 * i;
        if (name_is(buf, f, "host"))
            hosts++;
        else if (name_is(buf, f, "connection") || name_is(buf, f, "transfer-encoding") ||
                 name_is(buf, f, "content-length") || name_is(buf, f, "expect") ||
                 name_is(buf, f, "upgrade"))
            return KATA_OTHER;
    }
    if (hosts != 1)
        return KATA_CLEAN;  /* Python's 400, then the close */
    if (h->b - h->a == 3 && memcmp(buf + h->a, "GET", 3) == 0 && h->d - h->c == 1 &&
        buf[h->c] == '/')
        return KATA_ANSWER;
    return KATA_CLEAN;
}

static int64_t wall_second(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* Answer the read's leading kata requests and consume them; decide whether
 * Python will still hold nothing once it has the rest. */
static void conn_kata(fn_loop *loop, fn_conn *c)
{
    fn_framer *in = &c->in;
    size_t pos = in->start;
    int answer;
    if (!c->kata_clean)
        return;
    answer = loop->kata_len && wall_second() == loop->kata_sec;
    while (pos < in->end) {
        fn_http1_head_state st;
        fn_http1_head h;
        int kind, rc;
        memset(&st, 0, sizeof st);
        rc = fn_http1_parse_request(&st, (const uint8_t *)in->buf, pos, in->end, c->kata_line,
                                    c->kata_head, c->kata_fields, &h, loop->kata_fields);
        kind = rc == FN_HTTP1_DONE ? kata_kind(in->buf, &h, loop->kata_fields) : KATA_OTHER;
        if (kind == KATA_OTHER) {
            c->kata_clean = 0;  /* Python may hold part of it: its conn from now on */
            return;
        }
        if (answer && kind == KATA_ANSWER) {
            if (out_append(c, loop->kata_reply, loop->kata_len) < 0) {
                c->kata_clean = 0;
                break;
            }
            loop->stats.messages_in++;
            in->start = in->scan = h.end;
        } else {
            answer = 0;  /* Python answers it: and, in order, all after it */
        }
        pos = h.end;
    }
    if (in->start == in->end)
        in->start = in->end = in->scan = 0;
    output_queued(loop, c);
}

/* ---- HTTP/1.1 simple requests parsed in the poll (fn_loop_http) -------- */

/* Words one request record may need (fn_http1_simple_requests stops when
 * the next might not fit), and the most a round keeps (past it, the read's
 * rest is a message: Python parses it itself). */
#define HTTP_RECORD(fields) (FN_HTTP1_REQ_WORDS + 4 * (fields))
#define HTTP_WORDS_MAX (64 * 1024)

/* Room for at least `need` more words in the round's array; 0 or FN_E_NOMEM. */
static int http_words_room(fn_loop *loop, size_t need)
{
    size_t cap = loop->http_cap ? loop->http_cap : 1024;
    size_t *p;
    if (loop->http_cap - loop->http_nwords >= need)
        return 0;
    while (cap - loop->http_nwords < need)
        cap *= 2;
    if (cap > HTTP_WORDS_MAX && loop->http_nwords + need <= HTTP_WORDS_MAX)
        cap = HTTP_WORDS_MAX;
    if (cap > HTTP_WORDS_MAX)
        return FN_E_NOMEM;  /* the round's share is used up: the rest is Python's */
    p = realloc(loop->http_words, cap * sizeof *p);
    if (!p)
        return FN_E_NOMEM;
    loop->http_words = p;
    loop->http_cap = cap;
    return 0;
}

/* Take the read's leading simple requests (fn_http1_simple_requests, the
 * session's limits) as one FN_EV_HTTP event: data, len the requests' bytes
 * (a view, valid until the next poll; consumed from the input), value the
 * end of their words in the round's array (they start where the previous
 * FN_EV_HTTP's end). Anything after them is a message for Python as
 * before, and from then on the conn is Python's until it says it holds
 * nothing again (fn_loop_http on). */
static void conn_http(fn_loop *loop, fn_conn *c)
{
    fn_framer *in = &c->in;
    fn_http1_batch b;
    const char *base = in->buf + in->start;
    size_t len = in->end - in->start, pos = 0, record = HTTP_RECORD(c->kata_fields);
    size_t first = loop->http_nwords, requests = 0, i;
    fn_event *ev;
    if (!c->http_clean || len == 0)
        return;
    b.max_request_line = c->kata_line;
    b.max_header_bytes = c->kata_head;
    b.max_fields = c->kata_fields;
    while (pos < len && http_words_room(loop, record) == 0) {
        size_t room_words = loop->http_cap - loop->http_nwords;
        int64_t n;
        b.words = loop->http_words + loop->http_nwords;
        b.max_words = room_words;
        n = fn_http1_simple_requests(base, pos, len, &b);
        if (n <= 0)
            break;
        loop->http_nwords += (size_t)n;
        pos = b.pos;
        if (room_words - (size_t)n >= record)
            break;  /* it stopped at a head that is not simple (or the end) */
    }
    if (pos < len)
        c->http_clean = 0;  /* Python may hold part of the rest: its conn for now */
    if (pos == 0)
        return;
    for (i = first; i < loop->http_nwords; i += HTTP_RECORD(loop->http_words[i + 5]))
        requests++;
    ev = emit(loop, FN_EV_HTTP, c->id);  /* room: checked before the read */
    ev->data = base;
    ev->len = pos;
    ev->value = loop->http_nwords;
    loop->stats.messages_in += requests;
    c->viewed_round = loop->round;  /* the view must not move: no more reads this round */
    in->start += pos;
    in->scan = in->start;
    if (in->start == in->end)
        in->start = in->end = in->scan = 0;
}

/* ---- wire framed in the loop (wire.h, fn_loop_wire) -------------------- */

/* Take the frames at the head of c's input the loop serves itself (see
 * wire.h); stop at the first Python must see. Requests are copied into the
 * round's batch, so no view of the input is handed out. */
static void conn_wire(fn_loop *loop, fn_conn *c)
{
    fn_framer *in = &c->in;
    uint64_t taken = 0;
    int r = FN_WIRE_TAKE_NEED_DATA, wrote = 0;
    list_remove(loop, L_PENDING, c);
    while (in->start < in->end) {
        fn_wire_frame f;
        r = fn_wire_poll_take(loop->wire_poll, loop->wire_work, c->id, &c->wire,
                              in->buf + in->start, in->end - in->start, taken != 0, &f);
        if (r == FN_WIRE_TAKE_REQUEST) {
            taken++;
        } else if (r == FN_WIRE_TAKE_PING) {
            uint8_t h[FN_WIRE_HEADER_SIZE];
            /* before any version: v1's, as the session answers */
            fn_wire_header(c->wire.version ? c->wire.version : 1, FN_WIRE_PONG, 0, f.request_id,
                           f.len, h);
            if (out_append(c, (const char *)h, sizeof h) < 0 ||
                out_append(c, f.body, f.len) < 0)
                r = FN_E_NOMEM;
            wrote = 1;
        } else if (r == FN_WIRE_TAKE_HELLO) {
            size_t n;
            const char *reply = fn_wire_hello_reply(&c->wire, &n);
            if (out_append(c, reply, n) < 0)
                r = FN_E_NOMEM;
            wrote = 1;
        } else if (r != FN_WIRE_TAKE_DROP && r != FN_E_NOMEM) {
            break;
        }
        if (r == FN_E_NOMEM) {
            conn_destroy(loop, c, FN_CLOSE_RESET, ENOMEM);
            return;
        }
        in->start += FN_WIRE_HEADER_SIZE + f.len;
    }
    if (in->start == in->end)
        in->start = in->end = in->scan = 0;
    if (wrote)
        output_queued(loop, c);
    if (taken) {
        fn_event *ev = emit(loop, FN_EV_WIRE, c->id);  /* room: checked by the caller */
        ev->value = taken;
        loop->stats.messages_in += taken;
        if (r == FN_WIRE_TAKE_WAIT)
            list_push(loop, L_PENDING, c);  /* the rest, next round */
    } else if (r == FN_WIRE_TAKE_CALLER) {
        c->wire_on = 0;  /* Python's from now on: the rest as a RAW message */
        conn_deliver(loop, c);
        return;
    }
    sync_events(loop, c);
}

/* One recv straight into the framer, then frame. The room asked for is
 * small unless the previous read filled its room (a bulk sender), so a
 * request/response connection never holds a READ_CHUNK buffer. */
static void conn_read(fn_loop *loop, fn_conn *c)
{
    size_t room_left;
    ssize_t r;
    char *p = fn_framer_reserve(&c->in, c->last_read_full ? READ_CHUNK : READ_SMALL, &room_left);
    if (!p) {
        conn_destroy(loop, c, FN_CLOSE_RESET, ENOMEM);
        return;
    }
    if (room_left > READ_CHUNK)
        room_left = READ_CHUNK;
    list_push(loop, L_READ, c);  /* buffer trimmed next round if big and empty */
    warm_touch(loop, c);
    do
        r = recv(c->fd, p, room_left, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        c->last_read_full = 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_destroy(loop, c, FN_CLOSE_RESET, errno);
        return;
    }
    if (r == 0) {
        c->last_read_full = 0;
        conn_eof(loop, c);
        return;
    }
    fn_framer_commit(&c->in, (size_t)r);
    c->last_read_full = (size_t)r == room_left;
    c->last_in_ns = loop->now_ns;
    if (!c->closing)
        idle_touch(loop, c, loop->now_ns);
    loop->stats.bytes_in += (uint64_t)r;
    if (c->opts.echo)
        conn_echo(loop, c);
    else if (c->wire_on)
        conn_wire(loop, c);
    else {
        if (c->kata)
            conn_kata(loop, c);
        else if (c->http)
            conn_http(loop, c);
        conn_deliver(loop, c);
    }
}

/* Start of a round: the connections read last round may hold a big input
 * buffer with nothing in it (after a big message). Drop it; one that fits a
 * bulk read (READ_CHUNK, plus the tail of a message) is kept for the next. */
static void trim_read_buffers(fn_loop *loop)
{
    fn_conn *c;
    while ((c = list_pop(loop, L_READ)))
        fn_framer_trim(&c->in, READ_KEEP);
}

/* Start of a round: connections that neither read nor queued output for
 * COLD_NS give their (empty) buffers back, so a quiet connection owns no
 * memory, while a busy one reuses its buffers instead of a malloc and a free
 * per message. Only the cold ones are looked at, from the head of the warm
 * list. Views of their input died with the previous round. */
static void sweep_cold(fn_loop *loop)
{
    fn_conn *c;
    while ((c = loop->lists[L_WARM].head) && c->warm_ns + COLD_NS <= loop->now_ns) {
        if (c->out_len) {
            warm_touch(loop, c);  /* still writing: its buffer is in use */
            continue;
        }
        list_remove(loop, L_WARM, c);
        fn_framer_trim(&c->in, 0);  /* only if nothing is buffered */
        out_clear(c);
    }
}

/* ---- readiness -------------------------------------------------------- */

static void finish_connect(fn_loop *loop, fn_conn *c)
{
    int err = so_error(c->fd);
    if (err) {
        conn_destroy(loop, c, FN_CLOSE_CONNECT_FAILED, err);
        return;
    }
    tune_socket(c->fd, &c->opts);
    conn_opened(loop, c);
    loop->stats.connected++;
    emit(loop, FN_EV_CONNECTED, c->id);
    if (c->out_len)
        list_push(loop, L_DIRTY, c);
    sync_events(loop, c);
}

static void conn_ready(fn_loop *loop, fn_conn *c, uint32_t revents)
{
    if (c->state == ST_CONNECTING) {
        if (room(loop))
            finish_connect(loop, c);
        return;
    }
    if ((revents & EPOLLOUT) && c->want_out && !conn_flush(loop, c))
        return;
    if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    if (can_read(c)) {
        /* A conn whose views were handed out this round must not be read:
         * reserve could move the buffer under them. Level-triggered epoll
         * reports it again next round. */
        if (room(loop) && c->viewed_round != loop->round)
            conn_read(loop, c);
        return;
    }
    if (revents & (EPOLLHUP | EPOLLERR))
        conn_dead_socket(loop, c, revents);
}

static void starve_listener(fn_loop *loop, size_t id, int err)
{
    fn_event *ev;
    loop->listeners[id].starved = 1;
    loop->starved++;
    loop->starve_retry_ns = loop->accept_retry_ns ? sat_add(loop->now_ns, loop->accept_retry_ns)
                                                  : UINT64_MAX;
    listener_set_events(loop, id, 0);
    ev = emit(loop, FN_EV_LISTEN_ERROR, id);
    ev->value = (uint64_t)err;
}

static void listener_ready(fn_loop *loop, size_t id)
{
    fn_listener *l;
    int i;
    if (id >= loop->nlisteners)
        return;
    l = &loop->listeners[id];
    for (i = 0; i < ACCEPT_BATCH && l->fd >= 0 && !l->starved && room(loop); i++) {
        fn_conn *c;
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM)
                continue;  /* this one connection failed; try the next */
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
                starve_listener(loop, id, err);
            return;  /* EAGAIN: backlog empty */
        }
        tune_socket(fd, &l->opts);
        c = conn_new(loop, fd, &l->opts, ST_OPEN);
        if (!c) {
            starve_listener(loop, id, errno);
            return;
        }
        loop->stats.accepted++;
        emit(loop, FN_EV_ACCEPT, c->id)->value = id;
    }
}

static void drain_waker(fn_loop *loop)
{
    char buf[64];
    /* One read: resets an eventfd; a pipe with more left is reported again. */
    if (read(loop->waker, buf, sizeof buf) < 0 && errno == EBADF)
        loop->waker = -1;
    loop->woken = 1;
}

static int wait_and_dispatch(fn_loop *loop, int timeout_ms)
{
    int i, k;
    k = epoll_wait(loop->epfd, loop->ready, EPOLL_BATCH, timeout_ms < -1 ? -1 : timeout_ms);
    loop->now_ns = clock_ns();
    if (k < 0) {
        loop->woken = 1;  /* EINTR: the caller's signal handlers must run */
        return errno == EINTR ? 0 : sys_error(errno);
    }
    for (i = 0; i < k; i++) {
        uint64_t tag = loop->ready[i].data.u64;
        if (tag == WAKER_TAG) {
            drain_waker(loop);
        } else if ((tag >> 32) == 0) {
            listener_ready(loop, (size_t)tag);
        } else {
            fn_conn *c = lookup(loop, tag);  /* NULL: closed earlier this batch */
            if (c)
                conn_ready(loop, c, loop->ready[i].events);
        }
    }
    return 0;
}

/* The earliest timer deadline: the idle head's, the send-timeout head's,
 * the starved listeners' retry; UINT64_MAX for none. */
static uint64_t next_deadline(const fn_loop *loop)
{
    const fn_conn *idle = loop->lists[L_IDLE].head, *send = loop->lists[L_SEND].head;
    uint64_t deadline = loop->starved ? loop->starve_retry_ns : UINT64_MAX, d;
    if (loop->idle_ns && idle && (d = sat_add(idle->idle_mark_ns, loop->idle_ns)) < deadline)
        deadline = d;
    if (loop->send_ns && send && (d = sat_add(send->send_mark_ns, loop->send_ns)) < deadline)
        deadline = d;
    return deadline;
}

/* How long epoll_wait may sleep: the caller's timeout, cut short by the
 * next timer deadline. */
static int timer_wait_ms(fn_loop *loop, int timeout_ms)
{
    uint64_t deadline = next_deadline(loop), now, ms;
    if (deadline == UINT64_MAX)
        return timeout_ms;
    now = clock_ns();
    ms = deadline <= now ? 0 : (deadline - now + 999999u) / 1000000u;
    if (ms > 0x7fffffff)
        ms = 0x7fffffff;
    return timeout_ms < 0 || (uint64_t)timeout_ms > ms ? (int)ms : timeout_ms;
}

/* Abort the connections whose output made no progress for the send
 * timeout (a peer that stopped reading, a close that cannot finish). */
static void expire_send(fn_loop *loop)
{
    fn_conn *c;
    if (!loop->send_ns)
        return;
    while ((c = loop->lists[L_SEND].head) &&
           sat_add(c->send_mark_ns, loop->send_ns) <= loop->now_ns)
        conn_abort(loop, c, FN_CLOSE_SEND_TIMEOUT);
}

/* Starved listeners whose retry delay passed are polled again. */
static void retry_starved(fn_loop *loop)
{
    if (loop->starved && loop->starve_retry_ns <= loop->now_ns)
        wake_starved_listeners(loop);
}

/* Report the connections whose silence reached the idle timeout: only the
 * expired ones are looked at, from the head of the list. */
static void expire_idle(fn_loop *loop)
{
    fn_conn *c;
    if (!loop->idle_ns)
        return;
    while (room(loop) && (c = loop->lists[L_IDLE].head) &&
           sat_add(c->idle_mark_ns, loop->idle_ns) <= loop->now_ns) {
        emit(loop, FN_EV_IDLE, c->id)->value = (loop->now_ns - c->last_in_ns) / 1000000u;
        idle_touch(loop, c, loop->now_ns);
    }
}

static void free_dead(fn_loop *loop)
{
    while (loop->dead) {
        fn_conn *c = loop->dead;
        loop->dead = c->next_dead;
        conn_free(c);
    }
}

static void deliver_closed(fn_loop *loop)
{
    while (room(loop) && loop->closed_head) {
        fn_conn *c = loop->closed_head;
        fn_event *ev = emit(loop, FN_EV_CLOSED, c->id);
        ev->code = c->close_code;
        ev->value = (uint64_t)c->close_err;
        loop->closed_head = c->next_dead;
        if (!loop->closed_head)
            loop->closed_tail = NULL;
        c->next_dead = loop->dead;
        loop->dead = c;
    }
}

/* ---- public API ------------------------------------------------------- */

fn_loop *fn_loop_new(void)
{
    fn_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->now_ns = clock_ns();
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop->waker = -1;
    return loop;
}

void fn_loop_free(fn_loop *loop)
{
    size_t i;
    if (!loop)
        return;
    for (i = 0; i < loop->nslots; i++) {
        fn_conn *c = loop->slots[i].conn;
        if (c) {
            close(c->fd);
            conn_free(c);
        }
    }
    free_dead(loop);
    while (loop->closed_head) {
        fn_conn *c = loop->closed_head;
        loop->closed_head = c->next_dead;
        conn_free(c);
    }
    for (i = 0; i < loop->nlisteners; i++)
        if (loop->listeners[i].fd >= 0)
            close(loop->listeners[i].fd);
    close(loop->epfd);
    free(loop->kata_reply);
    free(loop->kata_fields);
    free(loop->http_words);
    fn_wire_poll_free(loop->wire_poll);
    free(loop->slots);
    free(loop->listeners);
    free(loop);
}

int fn_loop_fd(const fn_loop *loop)
{
    return loop ? loop->epfd : FN_E_ARG;
}

int fn_loop_set_waker(fn_loop *loop, int fd)
{
    struct epoll_event ev;
    if (!loop)
        return FN_E_ARG;
    if (loop->waker >= 0)
        (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, loop->waker, NULL);
    loop->waker = -1;
    if (fd < 0)
        return 0;
    ev.events = EPOLLIN;
    ev.data.u64 = WAKER_TAG;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return sys_error(errno);
    loop->waker = fd;
    return 0;
}

int fn_loop_listen(fn_loop *loop, const char *host, int port, int backlog,
                   const fn_conn_opts *opts)
{
    struct sockaddr_storage ss;
    struct epoll_event ev;
    socklen_t len;
    int fd, rc;
    if (!loop)
        return FN_E_ARG;
    if (!valid_opts(opts) || (rc = parse_addr(host, port, &ss, &len)) < 0)
        return FN_E_ARG;
    if (loop->nlisteners == loop->caplisteners) {
        size_t cap = loop->caplisteners ? loop->caplisteners * 2 : 4;
        fn_listener *l = realloc(loop->listeners, cap * sizeof *l);
        if (!l)
            return FN_E_NOMEM;
        loop->listeners = l;
        loop->caplisteners = cap;
    }
    if (loop->nlisteners > INT32_MAX)
        return FN_E_LIMIT;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sys_error(errno);
    set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (ss.ss_family == AF_INET6)
        set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);  /* "::" means IPv6 only, as in asyncio */
    ev.events = EPOLLIN;
    ev.data.u64 = loop->nlisteners;
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0 ||
        epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        rc = sys_error(errno);
        close(fd);
        return rc;
    }
    loop->listeners[loop->nlisteners].fd = fd;
    loop->listeners[loop->nlisteners].starved = 0;
    loop->listeners[loop->nlisteners].opts = *opts;
    return (int)loop->nlisteners++;
}

int fn_loop_listener_port(const fn_loop *loop, int listener)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!loop || listener < 0 || (size_t)listener >= loop->nlisteners ||
        loop->listeners[listener].fd < 0)
        return FN_E_LOOP_NO_CONN;
    if (getsockname(loop->listeners[listener].fd, (struct sockaddr *)&ss, &len) < 0)
        return sys_error(errno);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int fn_loop_unlisten(fn_loop *loop, int listener)
{
    fn_listener *l;
    if (!loop || listener < 0 || (size_t)listener >= loop->nlisteners)
        return FN_E_LOOP_NO_CONN;
    l = &loop->listeners[listener];
    if (l->fd < 0)
        return FN_E_LOOP_NO_CONN;
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    close(l->fd);
    l->fd = -1;
    if (l->starved) {
        l->starved = 0;
        loop->starved--;
    }
    return 0;
}

/* connect() errors that concern the remote end become FN_EV_CLOSED
 * (CONNECT_FAILED), like those found later by SO_ERROR; the rest (bad
 * address, no ports, no memory) are returned. */
static int remote_connect_error(int err)
{
    return err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH ||
           err == ETIMEDOUT || err == ECONNRESET;
}

int64_t fn_loop_connect(fn_loop *loop, const char *host, int port,
                        const fn_conn_opts *opts)
{
    struct sockaddr_storage ss;
    socklen_t len;
    fn_conn *c;
    int fd, r, err = 0;
    if (!loop)
        return FN_E_ARG;
    if (!valid_opts(opts) || parse_addr(host, port, &ss, &len) < 0)
        return FN_E_ARG;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sys_error(errno);
    set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    r = connect(fd, (struct sockaddr *)&ss, len);
    if (r < 0) {
        err = errno;
        if (err == EINPROGRESS || err == EINTR)  /* EINTR: it goes on anyway */
            err = 0;
        else if (!remote_connect_error(err)) {
            close(fd);
            return sys_error(err);
        }
    }
    /* Even an immediate success is reported through EPOLLOUT, so
     * FN_EV_CONNECTED always comes from a poll. */
    c = conn_new(loop, fd, opts, ST_CONNECTING);
    if (!c)
        return sys_error(errno);
    if (err) {
        uint64_t id = c->id;
        conn_destroy(loop, c, FN_CLOSE_CONNECT_FAILED, err);
        return (int64_t)id;
    }
    return (int64_t)c->id;
}

int fn_loop_poll(fn_loop *loop, fn_event *evs, int max, int timeout_ms)
{
    int n, rc = 0;
    if (!loop)
        return FN_E_ARG;
    if (!evs || max <= 0)
        return FN_E_ARG;
    loop->round++;
    loop->http_nwords = 0;
    if (loop->wire_poll)
        fn_wire_poll_reset(loop->wire_poll);
    free_dead(loop);
    trim_read_buffers(loop);
    sweep_cold(loop);
    loop->evs = evs;
    loop->nev = 0;
    loop->maxev = max;
    deliver_closed(loop);
    deliver_pending(loop);
    flush_dirty(loop);
    if (room(loop)) {
        int wait = loop->nev > 0 || fn_loop_has_pending(loop) ? 0 : timeout_ms;
        uint64_t deadline = wait > 0 ? clock_ns() + (uint64_t)wait * 1000000u : UINT64_MAX;
        uint64_t end = 0;
        loop->woken = 0;
        for (;;) {
            rc = wait_and_dispatch(loop, wait == 0 ? 0 : timer_wait_ms(loop, wait));
            expire_idle(loop);
            expire_send(loop);
            retry_starved(loop);
            flush_dirty(loop);
            /* Work that made no event for the caller (echo connections):
             * wait again here rather than return empty-handed (a Python
             * round costs more than an echo), for at most SLICE_NS after
             * the first wait, so the caller's signal handlers still run soon
             * under a steady load (a signal may land while we are not in
             * epoll_wait); the waker, a signal that interrupts the wait, and
             * the caller's timeout end it at once. */
            if (loop->nev || rc || loop->woken || wait == 0 || fn_loop_has_pending(loop) ||
                loop->now_ns >= deadline)
                break;
            if (!end)  /* the slice starts when the first wait ends */
                end = deadline - loop->now_ns > SLICE_NS ? loop->now_ns + SLICE_NS : deadline;
            if (loop->now_ns >= end)
                break;
            wait = (int)((end - loop->now_ns + 999999u) / 1000000u);
            trim_read_buffers(loop);  /* no views were handed out */
            sweep_cold(loop);
        }
    }
    release_errored(loop);
    n = loop->nev;
    loop->evs = NULL;
    loop->nev = loop->maxev = 0;
    return n > 0 || rc == 0 ? n : rc;
}

int fn_loop_woken(const fn_loop *loop)
{
    return loop ? loop->woken : 0;
}

int fn_loop_poll_batch(fn_loop *loop, fn_batch *b, int timeout_ms)
{
    uint64_t *w, *run = NULL;  /* run: the k of the open message record */
    uint64_t run_conn = 0;
    size_t used = 0;
    int i, n, wire_only;
    if (!b || !b->words || (!b->blob && b->blob_cap))
        return FN_E_ARG;
    b->nwords = b->blob_len = 0;
    b->wire = 0;
    n = fn_loop_poll(loop, b->evs, b->max, timeout_ms);
    w = b->words;
    wire_only = n > 0;
    for (i = 0; i < n; i++) {
        const fn_event *ev = &b->evs[i];
        if (ev->type != FN_EV_WIRE)
            wire_only = 0;
        if (ev->type == FN_EV_MESSAGE && ev->len <= FN_BATCH_INLINE &&
            ev->len <= b->blob_cap - used) {
            if (!run || run_conn != ev->conn) {
                *w++ = FN_EV_MESSAGE;
                *w++ = run_conn = ev->conn;
                run = w++;
                *run = 0;
            }
            memcpy(b->blob + used, ev->data, ev->len);
            used += ev->len;
            *w++ = used;
            ++*run;
            continue;
        }
        run = NULL;
        if (ev->type == FN_EV_HTTP) {
            if (ev->len <= FN_BATCH_INLINE && ev->len <= b->blob_cap - used) {
                memcpy(b->blob + used, ev->data, ev->len);
                used += ev->len;
                *w++ = FN_EV_HTTP;
                *w++ = ev->conn;
                *w++ = used;
            } else {
                *w++ = FN_EV_HTTP_REF;
                *w++ = ev->conn;
                *w++ = (uint64_t)i;
            }
            *w++ = ev->value;
            continue;
        }
        *w++ = ev->type == FN_EV_MESSAGE ? FN_EV_MESSAGE_REF : (uint64_t)ev->type;
        *w++ = ev->conn;
        *w++ = ev->type == FN_EV_WIRE ? ev->value : (uint64_t)i;
    }
    b->nwords = (size_t)(w - b->words);
    b->blob_len = used;
    b->wire = loop && loop->wire_poll ? fn_wire_poll_finish(loop->wire_poll, loop->wire_work) : 0;
    if (wire_only && b->wire > 0)  /* the stream's low bits are free (wire.h) */
        b->wire |= FN_BATCH_WIRE_ONLY;
    return n;
}

int fn_loop_has_pending(const fn_loop *loop)
{
    return loop && (loop->closed_head || loop->lists[L_PENDING].head);
}

/* A conn that may still take output: open, connecting or closing. */
static fn_conn *writable_conn(fn_loop *loop, uint64_t id)
{
    return loop ? lookup(loop, id) : NULL;
}

int fn_loop_send(fn_loop *loop, uint64_t conn, const char *data, size_t len)
{
    fn_conn *c = writable_conn(loop, conn);
    if (!c)
        return FN_E_LOOP_NO_CONN;
    if (out_append(c, data, len) < 0)
        return FN_E_NOMEM;
    output_queued(loop, c);
    return 0;
}

int fn_loop_send_msg(fn_loop *loop, uint64_t conn, const char *data, size_t len)
{
    uint8_t head[FN_VARINT_MAX_BYTES];
    fn_conn *c = writable_conn(loop, conn);
    size_t hlen, tlen, total;
    char *p;
    int h;
    if (!c)
        return FN_E_LOOP_NO_CONN;
    if (c->opts.framing == FN_FRAME_LINE && len &&
        (memchr(data, '\r', len) || memchr(data, '\n', len)))
        return FN_E_LOOP_LINE_BREAK;  /* it would go out as more than one line */
    h = fn_frame_header(c->opts.framing, len, head);
    if (h < 0)
        return FN_E_LOOP_TOO_LONG;  /* BE32: len does not fit the header */
    hlen = (size_t)h;
    tlen = c->opts.framing == FN_FRAME_LINE ? 2 : 0;
    if (len > SIZE_MAX - hlen - tlen)
        return FN_E_NOMEM;
    total = hlen + len + tlen;
    if (total == 0)
        return 0;  /* an empty raw message: nothing to queue */
    p = out_reserve(c, total);
    if (!p)
        return FN_E_NOMEM;
    memcpy(p, head, hlen);
    if (len)
        memcpy(p + hlen, data, len);
    memcpy(p + hlen + len, "\r\n", tlen);
    c->out_len += total;
    output_queued(loop, c);
    return 0;
}

static uint64_t word_at(const char *words, size_t i)
{
    uint64_t w;
    memcpy(&w, words + i * sizeof w, sizeof w);  /* bytes need not be aligned */
    return w;
}

int64_t fn_loop_send_batch(fn_loop *loop, const char *words, size_t nconns,
                           const char *data, size_t data_len, size_t n)
{
    size_t i, j = 0, off = 0;
    int64_t failed = 0;
    uint64_t conn, next_first, total = 0, prev = 0;
    if (!loop || (n && (!words || !data)))
        return FN_E_ARG;
    if (nconns == 0)
        return n == 0 ? 0 : FN_E_ARG;
    if (n > INT64_MAX || nconns > SIZE_MAX / sizeof(uint64_t) / 3 ||
        n > SIZE_MAX / sizeof(uint64_t) - 2 * nconns)
        return FN_E_ARG;
    /* Check the caller's words before trusting any: the runs start at 0
     * and never go backwards or past n, and the lengths add up to exactly
     * data_len, so no message is read past the data. */
    for (j = 0; j < nconns; j++) {
        uint64_t first = word_at(words, nconns + j);
        if ((j == 0 && first != 0) || first < prev || first >= n)
            return FN_E_ARG;
        prev = first;
    }
    for (i = 0; i < n; i++) {
        uint64_t len = word_at(words, 2 * nconns + i);
        if (len > data_len - total)
            return FN_E_ARG;
        total += len;
    }
    if (total != data_len)
        return FN_E_ARG;
    j = 0;
    conn = word_at(words, 0);
    next_first = nconns > 1 ? word_at(words, nconns + 1) : UINT64_MAX;
    for (i = 0; i < n; i++) {
        uint64_t len = word_at(words, 2 * nconns + i);
        int rc;
        while (i >= next_first) {
            j++;
            conn = word_at(words, j);
            next_first = j + 1 < nconns ? word_at(words, nconns + j + 1) : UINT64_MAX;
        }
        rc = fn_loop_send_msg(loop, conn, data + off, (size_t)len);
        off += (size_t)len;
        if (rc == 0)
            continue;
        failed++;
        if (rc != FN_E_LOOP_NO_CONN) {
            fn_conn *c = lookup(loop, conn);
            if (c)
                conn_destroy(loop, c, FN_CLOSE_RESET, errno_of(rc));
        }
    }
    return failed;
}

void fn_loop_flush(fn_loop *loop)
{
    if (loop)
        flush_dirty(loop);
}

int fn_loop_close(fn_loop *loop, uint64_t conn, int abort)
{
    fn_conn *c = loop ? lookup(loop, conn) : NULL;
    if (!c)
        return FN_E_LOOP_NO_CONN;
    if (abort)
        conn_abort(loop, c, FN_CLOSE_ABORT);
    else if (c->state == ST_CONNECTING)
        conn_destroy(loop, c, FN_CLOSE_LOCAL, 0);  /* nothing was sent yet */
    else if (!c->closing)
        conn_begin_close(loop, c, FN_CLOSE_LOCAL);
    return 0;
}

int fn_loop_pause(fn_loop *loop, uint64_t conn, int paused)
{
    fn_conn *c = loop ? lookup(loop, conn) : NULL;
    if (!c)
        return FN_E_LOOP_NO_CONN;
    c->paused = paused != 0;
    if (c->paused)
        list_remove(loop, L_PENDING, c);  /* buffered messages wait too */
    else if (c->state == ST_OPEN && !c->read_done && !c->closing &&
             fn_framer_buffered(&c->in) > 0)
        list_push(loop, L_PENDING, c);    /* they may hold whole messages */
    sync_events(loop, c);
    return 0;
}

size_t fn_loop_output_size(const fn_loop *loop, uint64_t conn)
{
    const fn_conn *c = loop ? lookup(loop, conn) : NULL;
    return c ? c->out_len : 0;
}

int fn_loop_peer(const fn_loop *loop, uint64_t conn, char *host, size_t hostlen, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    const fn_conn *c = loop ? lookup(loop, conn) : NULL;
    const void *addr;
    if (!c)
        return FN_E_LOOP_NO_CONN;
    if (!host || !port)
        return FN_E_ARG;
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
        return sys_error(errno);
    if (ss.ss_family == AF_INET6) {
        addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        addr = &((struct sockaddr_in *)&ss)->sin_addr;
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (hostlen > INT32_MAX)
        hostlen = INT32_MAX;
    if (!inet_ntop(ss.ss_family, addr, host, (socklen_t)hostlen))
        return sys_error(errno);
    return 0;
}

void fn_loop_set_idle_timeout(fn_loop *loop, uint64_t ms)
{
    if (loop)
        loop->idle_ns = ms_to_ns(ms);  /* deadlines saturate: never wrap */
}

void fn_loop_set_send_timeout(fn_loop *loop, uint64_t ms)
{
    if (loop)
        loop->send_ns = ms_to_ns(ms);
}

void fn_loop_set_accept_retry(fn_loop *loop, uint64_t ms)
{
    if (loop)
        loop->accept_retry_ns = ms_to_ns(ms);
}

int fn_loop_idle_wait_ms(fn_loop *loop)
{
    return loop ? timer_wait_ms(loop, -1) : -1;
}

int fn_loop_conn_fd(const fn_loop *loop, uint64_t conn)
{
    const fn_conn *c = loop ? lookup(loop, conn) : NULL;
    return c ? c->fd : FN_E_LOOP_NO_CONN;
}

void fn_loop_get_stats(const fn_loop *loop, fn_loop_stats *out)
{
    if (!out)
        return;
    if (loop)
        *out = loop->stats;
    else
        memset(out, 0, sizeof *out);
}

int fn_loop_http_kata(fn_loop *loop, uint64_t conn, int on, size_t max_request_line,
                      size_t max_header_bytes, size_t max_fields)
{
    fn_conn *c = loop ? lookup(loop, conn) : NULL;
    if (!c)
        return FN_E_LOOP_NO_CONN;
    if (c->opts.framing != FN_FRAME_RAW || c->opts.echo || max_fields > SIZE_MAX / 4 - 1)
        return FN_E_ARG;
    if (!on) {
        c->kata = c->kata_clean = 0;
        return 0;
    }
    if (max_fields + 1 > loop->kata_cap) {
        size_t *p = realloc(loop->kata_fields, 4 * (max_fields + 1) * sizeof *p);
        if (!p)
            return FN_E_NOMEM;
        loop->kata_fields = p;
        loop->kata_cap = max_fields + 1;
    }
    c->kata_line = max_request_line;
    c->kata_head = max_header_bytes;
    c->kata_fields = max_fields;
    if (!c->kata)
        c->kata = c->kata_clean = fn_framer_buffered(&c->in) == 0;
    return 0;
}

int fn_loop_set_http_kata_reply(fn_loop *loop, const char *data, size_t len, int64_t second)
{
    char *p;
    if (!loop || (!data && len))
        return FN_E_ARG;
    p = malloc(len ? len : 1);
    if (!p)
        return FN_E_NOMEM;
    if (len)
        memcpy(p, data, len);
    free(loop->kata_reply);
    loop->kata_reply = p;
    loop->kata_len = len;
    loop->kata_sec = second;
    return 0;
}

int fn_loop_http(fn_loop *loop, uint64_t conn, int on, size_t max_request_line,
                 size_t max_header_bytes, size_t max_fields)
{
    fn_conn *c = loop ? lookup(loop, conn) : NULL;
    if (!c)
        return FN_E_LOOP_NO_CONN;
    if (c->opts.framing != FN_FRAME_RAW || c->opts.echo || c->kata ||
        max_fields > (HTTP_WORDS_MAX - FN_HTTP1_REQ_WORDS) / 4)
        return FN_E_ARG;
    if (!on) {
        c->http = c->http_clean = 0;
        return 0;
    }
    c->kata_line = max_request_line;
    c->kata_head = max_header_bytes;
    c->kata_fields = max_fields;
    c->http = 1;
    c->http_clean = fn_framer_buffered(&c->in) == 0;
    return 0;
}

const size_t *fn_loop_http_words(const fn_loop *loop, size_t *n)
{
    *n = loop ? loop->http_nwords : 0;
    return loop ? loop->http_words : NULL;
}

/* ---- wire framed in the loop: the calls (wire.h) ------------------------ */

int fn_loop_set_wire(fn_loop *loop, fn_wire_work *w)
{
    size_t fd;
    if (!loop)
        return FN_E_ARG;
    if (w && !loop->wire_poll) {
        loop->wire_poll = fn_wire_poll_new();
        if (!loop->wire_poll)
            return FN_E_NOMEM;
        fn_wire_poll_reset(loop->wire_poll);
    }
    if (!w)
        for (fd = 0; fd < loop->nslots; fd++)
            if (loop->slots[fd].conn && loop->slots[fd].conn->wire_on)
                fn_loop_wire(loop, loop->slots[fd].conn->id, 0, 0, 0, 0, NULL);
    loop->wire_work = w;
    return 0;
}

int fn_loop_wire(fn_loop *loop, uint64_t conn, int on, uint8_t version, uint64_t max_body,
                 uint64_t threshold, const fn_wire_hello *hello)
{
    fn_conn *c = loop ? lookup(loop, conn) : NULL;
    if (!c)
        return FN_E_LOOP_NO_CONN;
    if (!on) {
        if (c->wire_on && fn_framer_buffered(&c->in) > 0 && !c->paused && !c->read_done &&
            !c->closing)
            list_push(loop, L_PENDING, c);  /* what it holds goes to Python */
        c->wire_on = 0;
        sync_events(loop, c);
        return 0;
    }
    if (c->opts.framing != FN_FRAME_RAW || !loop->wire_work || fn_framer_buffered(&c->in) > 0 ||
        (version == 0 && (!hello || hello->max_version == 0 || hello->max_version > 63 ||
                          hello->ncodecs > FN_WIRE_MAX_CODECS)))
        return FN_E_ARG;
    c->wire_on = 1;
    c->wire.version = version;
    c->wire.mask = 0;
    c->wire.max_body = max_body;
    c->wire.threshold = threshold;
    c->wire.hello = version ? NULL : hello;
    return 0;
}

int fn_loop_wire_state(const fn_loop *loop, uint64_t conn, uint8_t *version, uint8_t *mask)
{
    fn_conn *c = loop ? lookup(loop, conn) : NULL;
    if (!c)
        return FN_E_LOOP_NO_CONN;
    *version = c->wire.version;
    *mask = c->wire.mask;
    return 0;
}

int64_t fn_loop_wire_replies(fn_loop *loop, const char *m, size_t len)
{
    fn_wire_poll *p = loop ? loop->wire_poll : NULL;
    const char *frames;
    size_t i, from = 0;
    int64_t rc;
    if (!p || !loop->wire_work || (!m && len))
        return FN_E_ARG;
    rc = fn_wire_poll_frame(p, loop->wire_work, m, len);
    if (rc < 0)
        return rc;
    frames = loop->wire_work->out;
    for (i = 0; i < p->n; i++) {
        fn_conn *c;
        if (i + 1 < p->n && p->reqs[i + 1].conn == p->reqs[i].conn)
            continue;  /* one append per run of a connection's replies */
        c = lookup(loop, p->reqs[i].conn);
        if (c) {
            if (out_append(c, frames + from, p->reqs[i].end - from) < 0)
                conn_destroy(loop, c, FN_CLOSE_RESET, ENOMEM);
            else
                output_queued(loop, c);
        }
        from = p->reqs[i].end;
    }
    p->n = 0;  /* answered */
    return 0;
}

const uint32_t *fn_loop_wire_ids(const fn_loop *loop, size_t *n)
{
    *n = loop && loop->wire_poll ? loop->wire_poll->n : 0;
    return *n ? loop->wire_poll->ids : NULL;
}
