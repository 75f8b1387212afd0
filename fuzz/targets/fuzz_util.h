/* fuzz_util.h - what every libFuzzer target in fuzz/targets/ shares.
 *
 * A target checks invariants, not only crashes: CHECK() aborts (libFuzzer
 * then saves the input as a crash) with the file, line and condition. Split
 * points come from a PRNG seeded by the input itself, so a saved input
 * replays exactly.
 */
#ifndef FASTNET_FUZZ_UTIL_H
#define FASTNET_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,       \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* splitmix64: a small, good PRNG. */
typedef struct fuzz_rng {
    uint64_t s;
} fuzz_rng;

static inline uint64_t fuzz_next(fuzz_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Seeded by every byte of the input (FNV-1a), so each input has its splits. */
static inline fuzz_rng fuzz_rng_of(const uint8_t *data, size_t size)
{
    fuzz_rng r = {0xcbf29ce484222325u};

    for (size_t i = 0; i < size; i++)
        r.s = (r.s ^ data[i]) * 0x100000001b3u;
    return r;
}

/* The length of the next chunk of a random split of `left` bytes: mostly
 * short (1..8 bytes, where parsers resume mid-token), sometimes long. */
static inline size_t fuzz_chunk(fuzz_rng *r, size_t left)
{
    uint64_t x = fuzz_next(r);
    size_t n = (x & 3) ? 1 + (size_t)(x >> 8) % 8 : 1 + (size_t)(x >> 8) % (left ? left : 1);

    return n < left ? n : left;
}

/* A growable record of what a parser produced, to compare two runs. */
typedef struct fuzz_rec {
    uint8_t *rec;
    size_t len, cap;
    int err;             /* the first error code seen, 0 if none */
    uint64_t err_value;  /* its detail */
} fuzz_rec;

static inline void fuzz_put(fuzz_rec *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2;
        r->rec = realloc(r->rec, r->cap);
        CHECK(r->rec != NULL);
    }
    memcpy(r->rec + r->len, p, n);
    r->len += n;
}

/* Two runs recorded the same things and ended with the same error. */
static inline int fuzz_same(const fuzz_rec *a, const fuzz_rec *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->rec, b->rec, a->len) == 0)
        && a->err == b->err && a->err_value == b->err_value;
}

#endif
