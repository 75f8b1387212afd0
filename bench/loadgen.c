/* loadgen.c - a closed-loop echo load generator on fastnet's own C engine.
 *
 * It links csrc/loop.c, framer.c and varint.c directly (they are plain C),
 * opens N client connections, keeps `pipeline` messages in flight on each,
 * and sends a new message as each echo completes. Latency is measured per
 * message, from its send to the arrival of its last echoed byte, into a
 * log-linear histogram (64 sub-buckets per power of two: under 1.6% error).
 *
 *   loadgen HOST PORT CONNS PIPELINE SIZE SECONDS WARMUP FRAMING
 *
 * FRAMING is "raw" (bytes echoed as they come; a message completes once SIZE
 * more bytes came back) or "be32" (length-prefixed; SIZE is the payload).
 * Prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "loop.h"

#define SUB_BITS 6
#define SUB (1 << SUB_BITS)
#define BUCKETS (64 * SUB)
#define MAX_CONNS 65536
#define MAX_PIPELINE 1024

typedef struct {
    uint64_t id;
    uint64_t sent_at[MAX_PIPELINE]; /* ring of send times, oldest first */
    int head, count;
    uint64_t partial;               /* raw: echoed bytes of the oldest message */
} client;

static uint64_t hist[BUCKETS];
static client *clients;
static int nclients, pipeline, raw;
static size_t size;
static char *payload;
static uint64_t done, errors_seen, recording;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int bucket_of(uint64_t v)
{
    if (v < SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v);           /* e >= SUB_BITS */
    int sub = (int)((v >> (e - SUB_BITS)) & (SUB - 1));
    return (e - SUB_BITS + 1) * SUB + sub;
}

static uint64_t bucket_low(int b)
{
    if (b < SUB)
        return (uint64_t)b;
    int e = b / SUB + SUB_BITS - 1;
    uint64_t sub = (uint64_t)(b % SUB);
    return (1ull << e) | (sub << (e - SUB_BITS));
}

static uint64_t percentile(double p)
{
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < BUCKETS; i++)
        total += hist[i];
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)total);
    if (rank >= total)
        rank = total - 1;
    for (int i = 0; i < BUCKETS; i++) {
        seen += hist[i];
        if (seen > rank)
            return bucket_low(i);
    }
    return 0;
}

/* Connection ids are (generation << 32) | fd, so the fd indexes a table. */
#define MAX_FD (1 << 17)
static client *by_fd[MAX_FD];

static client *find(uint64_t id)
{
    client *c = by_fd[id & (MAX_FD - 1)];
    return c && c->id == id ? c : NULL;
}

static void send_one(fn_loop *loop, client *c)
{
    int rc = raw ? fn_loop_send(loop, c->id, payload, size)
                 : fn_loop_send_msg(loop, c->id, payload, size);
    if (rc != 0) {
        errors_seen++;
        return;
    }
    c->sent_at[(c->head + c->count) % MAX_PIPELINE] = now_ns();
    c->count++;
}

static void complete_one(fn_loop *loop, client *c, uint64_t t)
{
    if (c->count == 0) {
        errors_seen++;
        return;
    }
    uint64_t lat = t - c->sent_at[c->head];
    c->head = (c->head + 1) % MAX_PIPELINE;
    c->count--;
    if (recording) {
        hist[bucket_of(lat)]++;
        done++;
    }
    send_one(loop, c);
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s HOST PORT CONNS PIPELINE SIZE SECONDS WARMUP raw|be32\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    nclients = atoi(argv[3]);
    pipeline = atoi(argv[4]);
    size = (size_t)atol(argv[5]);
    double seconds = atof(argv[6]), warmup = atof(argv[7]);
    raw = strcmp(argv[8], "raw") == 0;
    if (nclients < 1 || nclients > MAX_CONNS || pipeline < 1 || pipeline > MAX_PIPELINE || size < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nclients + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    payload = malloc(size);
    clients = calloc((size_t)nclients, sizeof *clients);
    fn_loop *loop = fn_loop_new();
    if (!payload || !clients || !loop) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memset(payload, 'x', size);
    fn_conn_opts opts = {
        .framing = raw ? FN_FRAME_RAW : FN_FRAME_BE32,
        .max = size + 16,
        .high_water = (size_t)64 << 20,
        .low_water = (size_t)16 << 20,
    };
    for (int i = 0; i < nclients; i++) {
        int64_t id = fn_loop_connect(loop, host, port, &opts);
        if (id < 0) {
            fprintf(stderr, "connect: %s\n", strerror((int)-id));
            return 1;
        }
        clients[i].id = (uint64_t)id;
        by_fd[(uint64_t)id & (MAX_FD - 1)] = &clients[i];
    }
    enum { NEV = 4096 };
    static fn_event evs[NEV];
    int connected = 0;
    uint64_t start = now_ns(), rec_start = 0, end = 0;
    uint64_t warm_ns = (uint64_t)(warmup * 1e9), run_ns = (uint64_t)(seconds * 1e9);
    struct rusage ru0, ru1;
    for (;;) {
        uint64_t t = now_ns();
        if (!recording && connected == nclients && t - start >= warm_ns) {
            recording = 1;
            rec_start = t;
            getrusage(RUSAGE_SELF, &ru0);
        }
        if (recording && t - rec_start >= run_ns) {
            end = t;
            break;
        }
        if (t - start > warm_ns + run_ns + 30ull * 1000000000u) {
            fprintf(stderr, "gave up: %d of %d connected\n", connected, nclients);
            return 1;
        }
        int n = fn_loop_poll(loop, evs, NEV, 10);
        if (n < 0) {
            fprintf(stderr, "poll: %s\n", strerror(-n));
            return 1;
        }
        t = now_ns();
        for (int i = 0; i < n; i++) {
            fn_event *ev = &evs[i];
            client *c = find(ev->conn);
            if (!c)
                continue;
            switch (ev->type) {
            case FN_EV_CONNECTED:
                connected++;
                for (int k = 0; k < pipeline; k++)
                    send_one(loop, c);
                break;
            case FN_EV_MESSAGE:
                if (raw) {
                    c->partial += ev->len;
                    while (c->partial >= size) {
                        c->partial -= size;
                        complete_one(loop, c, t);
                    }
                } else {
                    complete_one(loop, c, t);
                }
                break;
            case FN_EV_CLOSED:
            case FN_EV_EOF:
            case FN_EV_ERROR:
                fprintf(stderr, "connection lost (event %d, code %d, value %" PRIu64 ")\n",
                        ev->type, ev->code, ev->value);
                return 1;
            default:
                break;
            }
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    double secs = (double)(end - rec_start) / 1e9;
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec)
               + (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    printf("{\"messages\": %" PRIu64 ", \"seconds\": %.3f, \"rate\": %.1f, "
           "\"p50_us\": %.1f, \"p95_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f, "
           "\"client_cpu\": %.3f, \"errors\": %" PRIu64 "}\n",
           done, secs, (double)done / secs,
           percentile(50) / 1e3, percentile(95) / 1e3, percentile(99) / 1e3,
           percentile(99.9) / 1e3, percentile(100) / 1e3, cpu / secs, errors_seen);
    fn_loop_free(loop);
    free(clients);
    free(payload);
    return 0;
}
