/* c_echo.c - a minimal hand-written epoll echo server in plain C: the
 * ceiling of what a C event loop achieves on this machine, against which
 * fastnet's C engine (and everything else) is measured.
 *
 *   c_echo PORT        (0: any free port)
 *
 * Listens on 127.0.0.1, prints "listening PORT" once ready and serves until
 * SIGTERM or SIGINT, then exits 0.
 *
 * What it does, and nothing more: level-triggered epoll; accept4 straight to
 * non-blocking sockets with TCP_NODELAY; per readable event one recv into the
 * connection's buffer and one send of what was read. If the send is partial
 * the rest stays in the buffer, the connection stops reading (EPOLLIN off)
 * and waits for EPOLLOUT; once the rest is out it reads again. So output is
 * bounded by one buffer per connection, and a peer that does not read stops
 * being read. Each connection owns one buffer of BUF_SIZE bytes, the same
 * most-bytes-per-recv as fastnet's engine (READ_CHUNK), allocated at accept.
 *
 * Build: gcc -O2 -Wall -Wextra -o c_echo c_echo.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)   /* most bytes one recv takes (fastnet: READ_CHUNK) */
#define MAX_EVENTS 256          /* epoll_wait batch (fastnet: EPOLL_BATCH) */
#define ACCEPT_BATCH 64         /* accepts per readiness of the listener */

typedef struct conn {
    int fd;
    size_t off, len;            /* unsent output: buf[off .. off+len) */
    char buf[BUF_SIZE];
} conn;

static volatile sig_atomic_t stopping;
static int listener_tag;        /* its address marks the listener in epoll data */

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void conn_close(conn *c)
{
    close(c->fd);               /* also removes it from the epoll set */
    free(c);
}

static int set_events(int ep, conn *c, uint32_t events)
{
    struct epoll_event ev;
    ev.events = events;
    ev.data.ptr = c;
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void accept_some(int ep, int lfd)
{
    int i, one = 1;
    for (i = 0; i < ACCEPT_BATCH; i++) {
        struct epoll_event ev;
        conn *c;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;             /* EAGAIN: backlog empty (or out of fds: retried later) */
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->off = c->len = 0;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            conn_close(c);
    }
}

/* Send buf[off .. off+len). Returns 0, or -1 if the connection must close. */
static int send_pending(conn *c)
{
    ssize_t w;
    do
        w = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    c->off += (size_t)w;
    c->len -= (size_t)w;
    return 0;
}

static void conn_ready(int ep, conn *c)
{
    ssize_t r;
    if (c->len) {               /* only EPOLLOUT is armed: finish the output */
        if (send_pending(c) < 0) {
            conn_close(c);
            return;
        }
        if (c->len == 0 && set_events(ep, c, EPOLLIN) < 0)
            conn_close(c);
        return;
    }
    do
        r = recv(c->fd, c->buf, BUF_SIZE, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r <= 0) {               /* EOF or error */
        conn_close(c);
        return;
    }
    c->off = 0;
    c->len = (size_t)r;
    if (send_pending(c) < 0) {
        conn_close(c);
        return;
    }
    if (c->len && set_events(ep, c, EPOLLOUT) < 0)  /* partial: wait for room */
        conn_close(c);
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    struct epoll_event ev, ready[MAX_EVENTS];
    struct sigaction sa;
    socklen_t alen = sizeof addr;
    int lfd, ep, one = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;  /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    (void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0)
        die("bind/listen");
    if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0)
        die("getsockname");
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    ev.events = EPOLLIN;
    ev.data.ptr = &listener_tag;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");
    printf("listening %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    while (!stopping) {
        int i, n = epoll_wait(ep, ready, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            if (ready[i].data.ptr == &listener_tag)
                accept_some(ep, lfd);
            else
                conn_ready(ep, ready[i].data.ptr);
        }
    }
    return 0;
}
