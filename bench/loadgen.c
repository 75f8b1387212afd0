/* loadgen.c - fastnet's load generator, on fastnet's own C engine (client mode).
 *
 * It links csrc/loop.c and friends directly (they are plain C), opens N
 * client connections and drives them in one of two modes:
 *
 *   closed loop  each connection keeps --pipeline requests in flight and sends
 *                a new one as each reply completes. Latency: send -> reply.
 *   open loop    (--rate R) a timer-driven sender issues request k at its
 *                intended time start + k/R, round-robin over the connections,
 *                whatever the replies are doing. Latency is measured from the
 *                *intended* send time, so a server that stalls is charged for
 *                every request it held up (the coordinated-omission correction
 *                wrk2 made well known). At most --max-inflight requests wait
 *                per connection; past that the schedule stalls but keeps its
 *                intended times.
 *
 * Protocols: raw (bytes echoed as they come: a request completes once --size
 * more bytes came back; nothing is framed, bytes are just counted), be32
 * (4-byte big-endian length + --size payload bytes, one message per reply),
 * resp (pipelined PING / SET key:NNNNNN <size bytes> / GET key:NNNNNN; replies
 * counted by scanning just enough RESP framing; "-" replies are errors),
 * wire (a fastnet wire v1 REQUEST, no HELLO, whose body is a MessagePack bin
 * of --size bytes; replies are read frame by frame: a RESPONSE completes a
 * request, an ERROR completes one as an error, anything else is skipped),
 * be32pack (be32 whose payload is that MessagePack bin: the msgpack +
 * length prefix peer's input). --request-file replaces the request's bytes
 * (for be32 kinds, the payload) with a file's, and --hello-file sends a
 * file's bytes first on every connection (wire v2: a HELLO, then v2
 * REQUESTs, possibly compressed, built by the caller).
 *
 * Per request the only work beyond the engine's is one histogram increment:
 * send times are taken once per poll batch (bytes leave at the next flush
 * anyway). Latencies go into a log-linear histogram, 64 sub-buckets per
 * power of two of nanoseconds: a bucket's width is at most 1/64 (1.6%) of
 * its lower bound.
 *
 * Prints "recording" on stderr when the measured window opens (after all
 * connections are up and --warmup has passed), and one JSON object on stdout
 * at the end. Exit status 0, 1 on a lost connection or system error, 2 on
 * bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#include "loop.h"

#define SUB_BITS 6
#define SUB (1 << SUB_BITS)
#define BUCKETS (64 * SUB)
#define MAX_CONNS 65536
#define MAX_INFLIGHT 65536
#define KEY_DIGITS 6 /* key:NNNNNN, so --keyspace <= 10^6 */

enum proto { P_RAW, P_BE32, P_RESP, P_WIRE, P_BE32PACK };

/* Incremental RESP reply scanner: enough framing to know where each reply
 * ends. `outstanding` counts the elements an aggregate still owes, so nested
 * arrays need no stack. */
typedef struct {
    char type;           /* type byte of the header being read, 0 between headers */
    int neg;             /* header number had a '-' */
    uint64_t num;        /* header number ($N, *N) */
    uint64_t skip;       /* bulk payload + CRLF bytes still to skip */
    uint64_t outstanding;/* elements the current top-level aggregate still owes */
    int is_error;        /* the current top-level reply is a '-' error */
} resp_reader;

typedef struct {
    uint64_t id;
    uint64_t *sent_at;   /* ring of send (or intended) times, oldest first */
    uint32_t head, count;
    uint64_t partial;    /* raw: bytes of the oldest request already back */
    resp_reader rd;
    uint8_t wh[12];      /* wire: the frame header being read */
    uint32_t wh_len;     /* its bytes so far */
    uint64_t wbody;      /* wire: body bytes of the current frame still to skip */
} client;

static uint64_t hist[BUCKETS];
static uint64_t lat_sum, lat_max;
static client *clients;
static int nclients;
static uint32_t ring_mask, inflight_cap;
static enum proto proto;
static size_t size;        /* raw/be32: payload bytes per request */
static char *request;      /* bytes of one request (resp: a template) */
static size_t request_len;
static size_t key_at;      /* resp set/get: offset of the key digits */
static uint64_t keyspace, next_key;
static uint64_t done, errors_seen;
static char *hello;        /* --hello-file: sent first on every connection */
static size_t hello_len;
static int recording, open_loop;

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
    int e = 63 - __builtin_clzll(v); /* e >= SUB_BITS */
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

/* The lower bound of the bucket holding the p-th percentile, in ns. */
static uint64_t percentile(double p)
{
    uint64_t seen = 0;
    if (done == 0)
        return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)done);
    if (rank >= done)
        rank = done - 1;
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

/* Queue one request on c, stamped `at` (its send or intended time). */
static void send_one(fn_loop *loop, client *c, uint64_t at)
{
    int rc;
    if (key_at) {
        uint64_t k = next_key++;
        if (next_key == keyspace)
            next_key = 0;
        for (int i = KEY_DIGITS - 1; i >= 0; i--, k /= 10)
            request[key_at + (size_t)i] = (char)('0' + k % 10);
    }
    rc = proto == P_BE32 || proto == P_BE32PACK ? fn_loop_send_msg(loop, c->id, request, request_len)
                         : fn_loop_send(loop, c->id, request, request_len);
    if (rc != 0) {
        errors_seen++;
        return;
    }
    c->sent_at[(c->head + c->count) & ring_mask] = at;
    c->count++;
}

static void complete_one(fn_loop *loop, client *c, uint64_t t, int is_error)
{
    if (c->count == 0) { /* a reply nobody asked for */
        errors_seen++;
        return;
    }
    uint64_t lat = t > c->sent_at[c->head] ? t - c->sent_at[c->head] : 0;
    c->head = (c->head + 1) & ring_mask;
    c->count--;
    if (recording) {
        hist[bucket_of(lat)]++;
        lat_sum += lat;
        if (lat > lat_max)
            lat_max = lat;
        done++;
        errors_seen += (uint64_t)is_error;
    }
    if (!open_loop)
        send_one(loop, c, t);
}

/* One RESP element's header or payload ended. */
static void resp_element_done(fn_loop *loop, client *c, uint64_t t, int array_len)
{
    resp_reader *r = &c->rd;
    if (array_len > 0) {        /* a non-empty array: owes array_len elements */
        r->outstanding = r->outstanding ? r->outstanding - 1 + (uint64_t)array_len
                                        : (uint64_t)array_len;
        return;
    }
    if (r->outstanding && --r->outstanding)
        return;
    complete_one(loop, c, t, r->is_error);
    r->is_error = 0;
}

static void resp_scan(fn_loop *loop, client *c, const char *p, size_t len, uint64_t t)
{
    resp_reader *r = &c->rd;
    const char *end = p + len;
    while (p < end) {
        if (r->skip) {
            size_t avail = (size_t)(end - p);
            size_t take = avail < r->skip ? avail : (size_t)r->skip;
            p += take;
            r->skip -= take;
            if (r->skip == 0)
                resp_element_done(loop, c, t, 0);
            continue;
        }
        if (!r->type) {
            r->type = *p++;
            r->neg = 0;
            r->num = 0;
            if (r->type == '-' && r->outstanding == 0)
                r->is_error = 1;
            continue;
        }
        if (r->type == '$' || r->type == '*') {
            char ch = *p++;
            if (ch >= '0' && ch <= '9')
                r->num = r->num * 10 + (uint64_t)(ch - '0');
            else if (ch == '-')
                r->neg = 1;
            else if (ch == '\n') {
                char type = r->type;
                r->type = 0;
                if (type == '$' && !r->neg)
                    r->skip = r->num + 2;
                else
                    resp_element_done(loop, c, t,
                                      type == '*' && !r->neg && r->num ? (int)r->num : 0);
            }
            continue;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return;
        p = nl + 1;
        r->type = 0;
        resp_element_done(loop, c, t, 0);
    }
}

/* Wire frames: a RESPONSE or ERROR completes the oldest request. */
static void wire_scan(fn_loop *loop, client *c, const char *data, size_t len, uint64_t t)
{
    const uint8_t *p = (const uint8_t *)data, *end = p + len;
    while (p < end) {
        if (c->wbody) {
            size_t k = (size_t)(end - p) < c->wbody ? (size_t)(end - p) : (size_t)c->wbody;
            p += k;
            c->wbody -= k;
            continue;
        }
        c->wh[c->wh_len++] = *p++;
        if (c->wh_len < 12)
            continue;
        c->wh_len = 0;
        c->wbody = ((uint64_t)c->wh[8] << 24) | ((uint64_t)c->wh[9] << 16)
                 | ((uint64_t)c->wh[10] << 8) | c->wh[11];
        if (c->wh[2] == 3 || c->wh[2] == 4)  /* RESPONSE, ERROR */
            complete_one(loop, c, t, c->wh[2] == 4);
    }
}

static void on_message(fn_loop *loop, client *c, const char *data, size_t len, uint64_t t)
{
    switch (proto) {
    case P_WIRE:
        wire_scan(loop, c, data, len, t);
        break;
    case P_RAW:
        c->partial += len;
        while (c->partial >= request_len) {
            c->partial -= request_len;
            complete_one(loop, c, t, 0);
        }
        break;
    case P_BE32:
    case P_BE32PACK:
        complete_one(loop, c, t, 0);
        break;
    case P_RESP:
        resp_scan(loop, c, data, len, t);
        break;
    }
}

/* Build the bytes of one request. 0, or -1 for out of memory. */
static int build_request(const char *cmd)
{
    char head[96];
    int n;
    if (proto == P_WIRE || proto == P_BE32PACK) {
        size_t bin = size < 256 ? 2 : size < 65536 ? 3 : 5;
        size_t head_len = proto == P_WIRE ? 12 : 0;
        size_t body = bin + size;
        uint8_t *r;
        request_len = head_len + body;
        request = malloc(request_len);
        if (!request)
            return -1;
        r = (uint8_t *)request;
        if (proto == P_WIRE) {
            const uint8_t h[8] = {0xFB, 1, 2, 0, 0, 0, 0, 0};
            memcpy(r, h, 8);
            r[8] = (uint8_t)(body >> 24);
            r[9] = (uint8_t)(body >> 16);
            r[10] = (uint8_t)(body >> 8);
            r[11] = (uint8_t)body;
        }
        r += head_len;
        if (bin == 2) {
            r[0] = 0xc4;
            r[1] = (uint8_t)size;
        } else if (bin == 3) {
            r[0] = 0xc5;
            r[1] = (uint8_t)(size >> 8);
            r[2] = (uint8_t)size;
        } else {
            r[0] = 0xc6;
            r[1] = (uint8_t)(size >> 24);
            r[2] = (uint8_t)(size >> 16);
            r[3] = (uint8_t)(size >> 8);
            r[4] = (uint8_t)size;
        }
        memset(r + bin, 'x', size);
        return 0;
    }
    if (proto != P_RESP) {
        request_len = size;
        request = malloc(size);
        if (request)
            memset(request, 'x', size);
        return request ? 0 : -1;
    }
    if (strcmp(cmd, "ping") == 0)
        n = snprintf(head, sizeof head, "*1\r\n$4\r\nPING\r\n");
    else if (strcmp(cmd, "get") == 0)
        n = snprintf(head, sizeof head, "*2\r\n$3\r\nGET\r\n$%d\r\nkey:%0*d\r\n",
                     4 + KEY_DIGITS, KEY_DIGITS, 0);
    else
        n = snprintf(head, sizeof head, "*3\r\n$3\r\nSET\r\n$%d\r\nkey:%0*d\r\n$%zu\r\n",
                     4 + KEY_DIGITS, KEY_DIGITS, 0, size);
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    int is_set = strcmp(cmd, "set") == 0;
    request_len = (size_t)n + (is_set ? size + 2 : 0);
    request = malloc(request_len);
    if (!request)
        return -1;
    memcpy(request, head, (size_t)n);
    if (is_set) {
        memset(request + n, 'x', size);
        memcpy(request + (size_t)n + size, "\r\n", 2);
    }
    if (strcmp(cmd, "ping") != 0)
        key_at = (size_t)(strstr(request, "key:") - request) + 4;
    return 0;
}

/* A file's bytes (malloc'ed, *len set), or NULL. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0
        && (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --port P [--host 127.0.0.1] [--conns 1] [--pipeline 1] [--size 64]\n"
            "          [--seconds 5] [--warmup 1] [--proto raw|be32|resp|wire|be32pack] [--cmd ping|set|get]\n"
            "          [--rate R (open loop, requests/s)] [--max-inflight 1024] [--keyspace 100000]\n"
            "          [--request-file PATH] [--hello-file PATH]\n",
            argv0);
}

static void print_json(double secs, double cpu, double rate, const char *cmd)
{
    printf("{\"requests\": %" PRIu64 ", \"seconds\": %.3f, \"rate\": %.1f, \"errors\": %" PRIu64
           ", \"mean_us\": %.2f, \"p50_us\": %.2f, \"p95_us\": %.2f, \"p99_us\": %.2f"
           ", \"p999_us\": %.2f, \"max_us\": %.2f, \"client_cpu\": %.3f"
           ", \"mode\": \"%s\", \"target_rate\": %.1f, \"proto\": \"%s\", \"cmd\": \"%s\""
           ", \"conns\": %d, \"inflight\": %u, \"size\": %zu, \"histogram\": [",
           done, secs, (double)done / secs, errors_seen,
           done ? (double)lat_sum / (double)done / 1e3 : 0.0,
           percentile(50) / 1e3, percentile(95) / 1e3, percentile(99) / 1e3,
           percentile(99.9) / 1e3, (double)lat_max / 1e3, cpu / secs,
           open_loop ? "open" : "closed", rate,
           proto == P_RAW ? "raw" : proto == P_BE32 ? "be32" : proto == P_WIRE ? "wire"
           : proto == P_BE32PACK ? "be32pack" : "resp",
           proto == P_RESP ? cmd : "", nclients, inflight_cap, size);
    const char *sep = "";
    for (int i = 0; i < BUCKETS; i++) {
        if (hist[i]) {
            printf("%s[%.3f, %" PRIu64 "]", sep, bucket_low(i) / 1e3, hist[i]);
            sep = ", ";
        }
    }
    printf("]}\n");
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
         + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *cmd = "ping";
    int port = -1, pipeline = 1, max_inflight = 1024;
    double seconds = 5, warmup = 1, rate = 0;
    long long size_arg = 64, keyspace_arg = 100000;
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'h'},     {"port", required_argument, 0, 'p'},
        {"conns", required_argument, 0, 'c'},    {"pipeline", required_argument, 0, 'P'},
        {"size", required_argument, 0, 's'},     {"seconds", required_argument, 0, 't'},
        {"warmup", required_argument, 0, 'w'},   {"proto", required_argument, 0, 'x'},
        {"cmd", required_argument, 0, 'm'},      {"rate", required_argument, 0, 'r'},
        {"max-inflight", required_argument, 0, 'i'},
        {"keyspace", required_argument, 0, 'k'},
        {"request-file", required_argument, 0, 'R'}, {"hello-file", required_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    const char *proto_name = "raw", *request_file = NULL, *hello_file = NULL;
    int opt;
    nclients = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': nclients = atoi(optarg); break;
        case 'P': pipeline = atoi(optarg); break;
        case 's': size_arg = atoll(optarg); break;
        case 't': seconds = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'x': proto_name = optarg; break;
        case 'm': cmd = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 'i': max_inflight = atoi(optarg); break;
        case 'k': keyspace_arg = atoll(optarg); break;
        case 'R': request_file = optarg; break;
        case 'H': hello_file = optarg; break;
        default: usage(argv[0]); return 2;
        }
    }
    proto = strcmp(proto_name, "raw") == 0 ? P_RAW : strcmp(proto_name, "be32") == 0 ? P_BE32
          : strcmp(proto_name, "resp") == 0 ? P_RESP : strcmp(proto_name, "wire") == 0 ? P_WIRE
          : strcmp(proto_name, "be32pack") == 0 ? P_BE32PACK : (enum proto)-1;
    open_loop = rate > 0;
    inflight_cap = (uint32_t)(open_loop ? max_inflight : pipeline);
    if (optind != argc || port < 0 || port > 65535 || (int)proto < 0 || nclients < 1 ||
        nclients > MAX_CONNS || pipeline < 1 || max_inflight < 1 || inflight_cap > MAX_INFLIGHT ||
        size_arg < 1 || size_arg > (1ll << 30) || seconds <= 0 || warmup < 0 || rate < 0 ||
        keyspace_arg < 1 || keyspace_arg > 1000000 ||
        (strcmp(cmd, "ping") && strcmp(cmd, "set") && strcmp(cmd, "get"))) {
        usage(argv[0]);
        return 2;
    }
    size = (size_t)size_arg;
    keyspace = (uint64_t)keyspace_arg;
    ring_mask = 1;
    while (ring_mask < inflight_cap)
        ring_mask <<= 1;
    ring_mask--;
    /* Sleep to the microsecond in open loop, not the default 50 us slack. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nclients + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int status = 1;
    fn_loop *loop = fn_loop_new();
    clients = calloc((size_t)nclients, sizeof *clients);
    if (!loop || !clients || build_request(cmd) < 0) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    if (request_file) {
        free(request);
        request = read_file(request_file, &request_len);
        if (!request || request_len == 0) {
            fprintf(stderr, "--request-file %s: cannot read it (or it is empty)\n", request_file);
            goto out;
        }
    }
    if (hello_file && !(hello = read_file(hello_file, &hello_len))) {
        fprintf(stderr, "--hello-file %s: cannot read it\n", hello_file);
        goto out;
    }
    fn_conn_opts opts = {
        .framing = proto == P_BE32 || proto == P_BE32PACK ? FN_FRAME_BE32 : FN_FRAME_RAW,
        .max = (request_len > size ? request_len : size) + 32,
        .high_water = (size_t)64 << 20,
        .low_water = (size_t)16 << 20,
    };
    for (int i = 0; i < nclients; i++) {
        clients[i].sent_at = malloc(((size_t)ring_mask + 1) * sizeof(uint64_t));
        if (!clients[i].sent_at) {
            fprintf(stderr, "out of memory\n");
            goto out;
        }
        int64_t id = fn_loop_connect(loop, host, port, &opts);
        if (id < 0) {
            fprintf(stderr, "connect: %s\n", strerror((int)-id));
            goto out;
        }
        clients[i].id = (uint64_t)id;
        by_fd[(uint64_t)id & (MAX_FD - 1)] = &clients[i];
    }
    enum { NEV = 4096 };
    static fn_event evs[NEV];
    int connected = 0, epfd = fn_loop_fd(loop);
    uint64_t t0 = now_ns(), up = 0, rec_start = 0, rec_end = 0, next_req = 0;
    uint64_t warm_ns = (uint64_t)(warmup * 1e9), run_ns = (uint64_t)(seconds * 1e9);
    double ns_per_req = open_loop ? 1e9 / rate : 0, cpu0 = 0;
    for (;;) {
        uint64_t t = now_ns();
        if (!up && t - t0 > 30ull * 1000000000u) {
            fprintf(stderr, "gave up: %d of %d connected after 30 s\n", connected, nclients);
            goto out;
        }
        if (up && !recording && t - up >= warm_ns) {
            recording = 1;
            rec_start = t;
            cpu0 = cpu_seconds();
            fprintf(stderr, "recording\n");
        }
        if (recording && t - rec_start >= run_ns) {
            rec_end = t;
            break;
        }
        int timeout_ms = 10;
        if (open_loop && up) {
            /* Issue every request whose intended time has come. */
            uint64_t stop = up + warm_ns + run_ns;
            for (;;) {
                uint64_t due = up + (uint64_t)((double)next_req * ns_per_req);
                if (due > t || due >= stop)
                    break;
                client *c = &clients[next_req % (uint64_t)nclients];
                if (c->count >= inflight_cap)
                    break; /* stalled: later requests keep their intended times */
                send_one(loop, c, due);
                next_req++;
            }
            /* Sleep precisely until the next one is due (or an event). */
            fn_loop_flush(loop);
            uint64_t due = up + (uint64_t)((double)next_req * ns_per_req);
            uint64_t wait = due > t ? due - t : 0;
            if (wait > 10000000u)
                wait = 10000000u;
            if (!fn_loop_has_pending(loop) && wait > 0) {
                struct pollfd pfd = {.fd = epfd, .events = POLLIN};
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)wait};
                ppoll(&pfd, 1, &ts, NULL);
            }
            timeout_ms = 0;
        }
        int n = fn_loop_poll(loop, evs, NEV, timeout_ms);
        if (n < 0) {
            fprintf(stderr, "poll: %s\n", strerror(-n));
            goto out;
        }
        t = now_ns();
        for (int i = 0; i < n; i++) {
            fn_event *ev = &evs[i];
            client *c = find(ev->conn);
            if (!c)
                continue;
            switch (ev->type) {
            case FN_EV_CONNECTED:
                if (++connected == nclients)
                    up = t;
                if (hello_len && fn_loop_send(loop, c->id, hello, hello_len) != 0)
                    errors_seen++;
                if (!open_loop)
                    for (int k = 0; k < pipeline; k++)
                        send_one(loop, c, t);
                break;
            case FN_EV_MESSAGE:
                on_message(loop, c, ev->data, ev->len, t);
                break;
            case FN_EV_CLOSED:
            case FN_EV_EOF:
            case FN_EV_ERROR:
                fprintf(stderr, "connection lost (event %d, code %d, value %" PRIu64 ")\n",
                        ev->type, ev->code, ev->value);
                goto out;
            default:
                break;
            }
        }
    }
    print_json((double)(rec_end - rec_start) / 1e9, cpu_seconds() - cpu0, rate, cmd);
    status = 0;
out:
    fn_loop_free(loop);
    if (clients)
        for (int i = 0; i < nclients; i++)
            free(clients[i].sent_at);
    free(clients);
    free(request);
    free(hello);
    return status;
}
