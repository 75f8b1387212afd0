/* loop.h - fastnet's epoll engine (redis ae.c in spirit, batched for Python).
 *
 * One fn_loop owns an epoll instance, listening sockets and connections,
 * all non-blocking, all driven with raw syscalls. Python drives the loop:
 * fn_loop_poll() first writes queued output (before the loop sleeps, like
 * redis's beforeSleep), then waits in epoll_wait, reads, frames, and fills
 * the caller's event array. C never calls back into Python.
 *
 * Connections are named by a 64-bit id: (generation << 32) | fd. An id whose
 * fd was closed and reused never matches the new connection.
 *
 * Messages (FN_EV_MESSAGE) are views into the connection's read buffer,
 * valid until the next fn_loop_poll() call. Closed connections keep their
 * buffers until then too.
 *
 * Backpressure: while a connection has more than opts.high_water bytes
 * queued for output it is not read; reading resumes once the queue drains to
 * opts.low_water. EPOLLOUT is armed only while output is pending.
 *
 * Protocol errors (FN_EV_ERROR) stop reading from that connection but leave
 * it open, so Python can answer in the protocol's own error form and then
 * fn_loop_close() it. End of input (FN_EV_EOF) likewise leaves the write side
 * open (half-close). With opts.echo set, C echoes every message itself (no
 * FN_EV_MESSAGE); on EOF it closes after flushing (FN_CLOSE_PEER, no
 * FN_EV_EOF); on a framing error it still reports FN_EV_ERROR, then closes
 * after flushing (FN_CLOSE_PROTOCOL); output queued while handling that
 * FN_EV_ERROR (an error reply) is flushed before the close.
 *
 * An accept that fails for lack of descriptors (EMFILE/ENFILE/ENOBUFS/ENOMEM)
 * is reported as FN_EV_LISTEN_ERROR and that listener is not polled again
 * until some connection closes or the accept retry delay has passed
 * (fn_loop_set_accept_retry; nginx and Redis retry on a timer too), so the
 * loop never spins on it and never stops accepting for good. A retry that
 * fails again is reported again.
 *
 * fn_loop is opaque. fn_event, fn_batch, fn_conn_opts and fn_loop_stats
 * are the boundary's data, written and read by Python by design (one
 * struct per batch, no call per field).
 *
 * Return codes follow status.h: >= 0 success; FN_E_NOMEM, FN_E_ARG (a bad
 * argument), FN_E_LIMIT, loop's own block below, or FN_E_SYS - errno for a
 * failed system call. FN_EV_CLOSED and FN_EV_LISTEN_ERROR carry a plain
 * errno in `value`.
 */
#ifndef FASTNET_LOOP_H
#define FASTNET_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "framer.h"
#include "status.h"

/* cdef: begin */
/* loop's block of status.h, -400 .. -499 */
#define FN_E_LOOP_NO_CONN -400    /* unknown or closed connection (or listener) */
#define FN_E_LOOP_LINE_BREAK -401 /* send_msg on a LINE conn: the payload holds "\r" or "\n" */
#define FN_E_LOOP_TOO_LONG -402   /* send_msg: the payload does not fit the frame header */
/* A failed system call: FN_E_SYS - errno (below every module's block). */
#define FN_E_SYS -1000

/* event types */
#define FN_EV_ACCEPT 1     /* conn accepted on listener `value` */
#define FN_EV_CONNECTED 2  /* outgoing conn established */
#define FN_EV_MESSAGE 3    /* one whole message: data, len */
#define FN_EV_EOF 4        /* peer shut its write side; reading stopped */
#define FN_EV_ERROR 5      /* framing error: code = FN_ERR_*, value = detail */
#define FN_EV_CLOSED 6     /* conn gone: code = FN_CLOSE_*, value = errno or 0 */
#define FN_EV_LISTEN_ERROR 7 /* accept failed (EMFILE...) on listener `conn`: value = errno */
#define FN_EV_IDLE 8       /* nothing received for the idle timeout: value = ms since
                            * the last byte arrived; reported again after each
                            * further timeout of silence */
#define FN_EV_WIRE 20      /* wire requests the loop took (wire.h, fn_loop_wire):
                            * value = how many */
#define FN_EV_HTTP 21      /* simple HTTP/1.1 requests the loop parsed (fn_loop_http):
                            * data, len their bytes; value the end of their words */

/* close reasons (FN_EV_CLOSED code) */
#define FN_CLOSE_LOCAL 1          /* fn_loop_close(graceful) finished flushing */
#define FN_CLOSE_ABORT 2          /* fn_loop_close(abort), or fn_loop_free */
#define FN_CLOSE_PEER 3           /* echo conn: peer EOF, output flushed */
#define FN_CLOSE_RESET 4          /* socket error (ECONNRESET, EPIPE, ...) */
#define FN_CLOSE_CONNECT_FAILED 5 /* outgoing connect failed */
#define FN_CLOSE_PROTOCOL 6       /* echo conn: framing error, output flushed */
#define FN_CLOSE_SEND_TIMEOUT 7   /* output pending and no write progress for the
                                   * send timeout (also while closing): aborted */

typedef struct fn_event {
    int type;
    int code;
    uint64_t conn;
    uint64_t value;
    const char *data;
    size_t len;
} fn_event;

typedef struct fn_conn_opts {
    int framing;        /* FN_FRAME_* */
    int frame_flags;    /* FN_LINE_BARE_LF */
    uint64_t max;       /* max frame payload / max line */
    int echo;           /* 1: echo every message in C */
    size_t high_water;  /* stop reading above this many queued output bytes */
    size_t low_water;   /* resume reading at or below this */
    int keepalive;          /* 1: TCP keep-alive (SO_KEEPALIVE), with: seconds idle */
    int keepalive_idle;     /* before the first probe, seconds between probes, and */
    int keepalive_interval; /* probes unanswered before the kernel resets (each 0: */
    int keepalive_count;    /* the kernel's default) */
} fn_conn_opts;

typedef struct fn_loop_stats {
    uint64_t accepted;
    uint64_t connected;
    uint64_t closed;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t messages_in;
    uint64_t open;       /* connections currently open */
} fn_loop_stats;

typedef struct fn_loop fn_loop;

fn_loop *fn_loop_new(void);
/* Close every socket (no events) and free everything. */
void fn_loop_free(fn_loop *loop);
/* The epoll fd: readable when fn_loop_poll has work (for asyncio add_reader). */
int fn_loop_fd(const fn_loop *loop);
/* Register fd (owned by the caller, non-blocking: an eventfd or a pipe's read
 * end) as the loop's waker: when it is readable, fn_loop_poll reads it once
 * and returns, so a write to it from another thread or a signal handler ends
 * a sleeping poll. One waker per loop; fd -1 removes it. 0 or a status.h code. */
int fn_loop_set_waker(fn_loop *loop, int fd);

/* Bind and listen. host is a numeric IPv4/IPv6 address. Returns a listener
 * id >= 0 or a status.h code. */
int fn_loop_listen(fn_loop *loop, const char *host, int port, int backlog,
                   const fn_conn_opts *opts);
/* The port a listener is bound to (useful with port 0), or a status.h code. */
int fn_loop_listener_port(const fn_loop *loop, int listener);
/* Stop listening: close the socket (new connects are refused). 0 or a status.h code. */
int fn_loop_unlisten(fn_loop *loop, int listener);

/* Start a non-blocking connect; FN_EV_CONNECTED or FN_EV_CLOSED follows.
 * Returns a conn id (> 0) or a status.h code. */
int64_t fn_loop_connect(fn_loop *loop, const char *host, int port,
                        const fn_conn_opts *opts);

/* Flush queued output, wait up to timeout_ms (-1: forever, 0: not at all)
 * and fill evs[0..max) with events. Returns how many, or a status.h code. Does not
 * sleep while messages remain buffered from an earlier call. Work that
 * makes no event (echo) does not end it early: once awake it goes on for up
 * to 10 ms while there are no events, so it may return 0 before the timeout
 * (as it does when the waker fires or a signal interrupts the wait). */
int fn_loop_poll(fn_loop *loop, fn_event *evs, int max, int timeout_ms);
/* The same poll for a caller that crosses into C per batch, not per event
 * (Python through cffi, where each struct field read, each int made and each
 * call costs about as much as a small message). The events go to b->evs as
 * with fn_loop_poll, and are also summed up in b->words (b->nwords of them):
 *   FN_EV_MESSAGE, conn, k, end_1 .. end_k   k messages of conn in a row, each
 *       of at most FN_BATCH_INLINE bytes, copied back to back into b->blob:
 *       message i is blob[end_(i-1) .. end_i), where the end before the first
 *       is the last end of the previous such record (0 for the first);
 *   FN_EV_WIRE, conn, k                      k wire requests of conn (wire.h)
 *   FN_EV_HTTP, conn, end, wend              simple HTTP/1.1 requests of conn
 *       (fn_loop_http): their bytes in blob, ending at end as a message's
 *       do; their words in fn_loop_http_words up to wend (from the previous
 *       HTTP record's wend, 0 for the first); FN_EV_HTTP_REF, conn, index,
 *       wend: the same with the bytes in evs[index] (not copied)
 *   type, conn, index                        any other event (FN_EV_MESSAGE_REF:
 *       a message that was not copied): its details are in evs[index].
 * So one read of words and one of blob give every small message, and a
 * connection's id appears once per run of its messages. b->blob_len: bytes
 * of blob used. words needs room for 4 * max. */
#define FN_BATCH_INLINE 4096
#define FN_EV_MESSAGE_REF 64  /* in fn_batch words only: see evs[index] */
#define FN_EV_HTTP_REF 65     /* in fn_batch words only: an FN_EV_HTTP not copied */
typedef struct fn_batch {
    fn_event *evs;      /* room for max events */
    int max;
    uint64_t *words;    /* room for 4 * max words */
    size_t nwords;      /* out */
    char *blob;         /* room for blob_cap bytes */
    size_t blob_cap;
    size_t blob_len;    /* out: bytes of blob used */
    int64_t wire;       /* out: the wire requests' marshal stream (wire.h) or 0,
                         * | FN_BATCH_WIRE_ONLY when every event is FN_EV_WIRE */
} fn_batch;
#define FN_BATCH_WIRE_ONLY 1  /* in fn_batch.wire: the poll holds wire requests only */
int fn_loop_poll_batch(fn_loop *loop, fn_batch *b, int timeout_ms);
/* 1 when the last poll ended because the waker fired or a signal interrupted
 * its wait (whoever owns the waker has work of its own), else 0. */
int fn_loop_woken(const fn_loop *loop);
/* 1 when a poll would return events without waiting (buffered messages or
 * queued CLOSED events). */
int fn_loop_has_pending(const fn_loop *loop);

/* Queue bytes for output, as they are (send) or framed per the connection's
 * framing (send_msg: length header first, or "\r\n" after a LINE).
 * 0, FN_E_LOOP_NO_CONN, FN_E_NOMEM; send_msg also FN_E_LOOP_LINE_BREAK (a
 * LINE payload holding "\r" or "\n": it would be two lines) and
 * FN_E_LOOP_TOO_LONG (over 4 GiB with a BE32 header). */
int fn_loop_send(fn_loop *loop, uint64_t conn, const char *data, size_t len);
int fn_loop_send_msg(fn_loop *loop, uint64_t conn, const char *data, size_t len);
/* Write queued output now (fn_loop_poll does it before sleeping). */
void fn_loop_flush(fn_loop *loop);
/* send_msg for n messages at once, lying back to back in data (data_len
 * bytes). The words (native uint64, given as bytes so a caller can pass one
 * packed string; 2 * nconns + n of them) are nconns conn ids, then nconns
 * firsts, then n lengths: message i is lens[i] bytes, and the messages go to
 * the conns in runs, conns[j] getting messages firsts[j] .. firsts[j+1] - 1
 * (the last run ends at n). Checked before anything is queued: firsts start
 * at 0, never decrease and stay below n, and the lengths add up to exactly
 * data_len (FN_E_ARG otherwise). A message for an unknown or closed conn is
 * dropped (as its output would be); a conn whose message cannot be queued
 * (out of memory, too long for its header, a line break in a LINE payload)
 * is closed with FN_CLOSE_RESET. Returns how many messages were not queued. */
int64_t fn_loop_send_batch(fn_loop *loop, const char *words, size_t nconns,
                           const char *data, size_t data_len, size_t n);

/* graceful (abort=0): stop reading, flush, shutdown(SHUT_WR), close, then
 * FN_EV_CLOSED(FN_CLOSE_LOCAL). abort=1: close at once with RST, then
 * FN_EV_CLOSED(FN_CLOSE_ABORT). 0 or FN_E_LOOP_NO_CONN. */
int fn_loop_close(fn_loop *loop, uint64_t conn, int abort);
/* Stop (1) or resume (0) reading from a connection. 0 or FN_E_LOOP_NO_CONN. */
int fn_loop_pause(fn_loop *loop, uint64_t conn, int paused);
/* Bytes queued for output on a connection, or 0 if unknown. */
size_t fn_loop_output_size(const fn_loop *loop, uint64_t conn);
/* Peer address as text ("1.2.3.4" / "::1") and port; 0 or a status.h code. */
int fn_loop_peer(const fn_loop *loop, uint64_t conn, char *host, size_t hostlen, int *port);

void fn_loop_get_stats(const fn_loop *loop, fn_loop_stats *out);

/* Report FN_EV_IDLE for an open connection that has received nothing for ms
 * milliseconds (0: never). Connections sit on a list ordered by their last
 * activity (moved to its tail on every read, O(1)), and a poll looks only at
 * the head: the cost of idle detection grows with the connections that
 * expire, not with the connections that are open. epoll_wait sleeps no
 * longer than until the head's deadline. Closing connections are exempt. */
void fn_loop_set_idle_timeout(fn_loop *loop, uint64_t ms);
/* Abort (FN_CLOSE_SEND_TIMEOUT) a connection that has output pending and
 * has made no write progress for ms milliseconds (0: never), closing or
 * not: a peer that stops reading cannot hold a descriptor and its output
 * forever (nginx's send_timeout). Kept on a list ordered like the idle
 * one: the cost grows with the connections that expire. */
void fn_loop_set_send_timeout(fn_loop *loop, uint64_t ms);
/* Poll starved listeners (FN_EV_LISTEN_ERROR) again after ms milliseconds
 * (0: only when a connection closes). */
void fn_loop_set_accept_retry(fn_loop *loop, uint64_t ms);
/* Milliseconds (rounded up) until the next timer deadline (the idle one of
 * the connection quiet for longest, the send timeout, the accept retry), 0
 * if it has passed, -1 if there is none: for a caller that sleeps outside
 * fn_loop_poll (asyncio), so it polls in time. Deadlines saturate: a huge
 * timeout never wraps into the past. */
int fn_loop_idle_wait_ms(fn_loop *loop);
/* The connection's socket, for getsockopt/setsockopt, or FN_E_LOOP_NO_CONN. */
int fn_loop_conn_fd(const fn_loop *loop, uint64_t conn);

/* HTTP/1.1 answered in C (fastnet.http's built-in kata, on a RAW conn): each
 * read's leading requests that are a plain `GET / HTTP/1.1` (exactly one
 * Host field, nothing that frames a body or asks for Connection, Expect,
 * Upgrade or Transfer-Encoding handling) are answered with the loop's kata
 * reply and consumed; the read's rest, from the first other request on, is
 * an FN_EV_MESSAGE as before, for Python to answer. Heads are parsed by
 * fn_http1_parse_request with the limits given (the session's). C answers
 * only while Python's session can hold nothing: once it was handed bytes
 * that are not whole bodiless keep-alive heads (a split head, a body, an
 * HTTP/1.0 request, an error), the conn is Python's for good; and only
 * while the reply is for the current wall-clock second (`second`: its Date),
 * else the read goes to Python, which is to set a fresh reply.
 * fn_loop_http_kata: on = 1 starts, 0 stops it for conn. 0, FN_E_LOOP_NO_CONN,
 * FN_E_ARG (not RAW), FN_E_NOMEM. set_http_kata_reply copies the reply:
 * 0 or FN_E_NOMEM. */
int fn_loop_http_kata(fn_loop *loop, uint64_t conn, int on, size_t max_request_line,
                      size_t max_header_bytes, size_t max_fields);
int fn_loop_set_http_kata_reply(fn_loop *loop, const char *data, size_t len, int64_t second);

/* HTTP/1.1's simple requests parsed in the poll, for Python (a RAW conn
 * whose session answers them; not with the kata on): each read's leading
 * requests that fn_http1_simple_requests takes (with these limits, the
 * session's) are consumed and reported as one FN_EV_HTTP event, their
 * words (fn_http1_simple_requests's records, offsets from the event's
 * data) in the round's array, fn_loop_http_words, valid until the next
 * poll. The read's rest, from the first other head on, is an FN_EV_MESSAGE
 * as before; it makes the conn Python's (no more parsing here) until
 * fn_loop_http(on = 1) again, which the session calls once it holds
 * nothing (it takes effect only if nothing is buffered here either). A
 * round keeps at most 64 Ki words: past them the rest is a message too.
 * 0, FN_E_LOOP_NO_CONN, FN_E_ARG (not RAW, echo, the kata on, max_fields
 * too large). */
int fn_loop_http(fn_loop *loop, uint64_t conn, int on, size_t max_request_line,
                 size_t max_header_bytes, size_t max_fields);
/* The round's simple-request words and how many (*n; NULL before any). */
const size_t *fn_loop_http_words(const fn_loop *loop, size_t *n);
/* cdef: end */

#endif
