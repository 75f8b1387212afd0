/* proto.h - the Protocol Buffers wire codec over a compiled schema.
 *
 * The schema (fastnet/proto/wire/_table.py compiles it from descriptors) is
 * a flat table: every message is a run of fields sorted by number, each
 * field its number, its descriptor.proto type, flags and the index of its
 * submessage. Both directions walk that table with an explicit stack of
 * frames, never C recursion, so untrusted input cannot exhaust the C stack;
 * max_depth (fastnet.limits.PROTO_MAX_DEPTH) bounds the frames.
 *
 * The boundary: cffi cannot build or read Python objects, so a message
 * crosses as its flat form (see _table.py) in CPython's marshal format:
 *   encode  Python marshal.dumps(flat, 2) -> fn_proto_encode reads the
 *           stream (version 2: no references) -> wire bytes in c->out;
 *   decode  wire bytes -> fn_proto_decode writes the flat form as a
 *           marshal stream in c->out -> Python marshal.loads.
 * Both are one call per message; the cost is measured in ARCHITECTURE.md.
 *
 * Decoding works per message in two passes, exactly as the Python twin
 * (fastnet/proto/wire/py.py) does, so both fail on the same input with the
 * same code: scan the message's bytes whole (framing, tags, wire types,
 * groups; each field's occurrences chained, unknown fields set aside), then
 * emit its fields in number order, pushing a frame per submessage. A
 * singular submessage seen several times is one frame over all its
 * occurrences (protobuf's merge); a scalar keeps its last occurrence.
 * Memory: the occurrences and slot heads of the frames on the stack, and
 * the output; all owned by the context and reused across calls.
 */
#ifndef FASTNET_PROTO_H
#define FASTNET_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* cdef: begin */
/* decode errors: the peer's bytes */
#define FN_E_PROTO_TRUNCATED -601   /* input ends in a field, or a length runs past its message */
#define FN_E_PROTO_VARINT -602      /* a varint longer than 10 bytes */
#define FN_E_PROTO_TAG -603         /* tag 0 (field number 0) or over 32 bits */
#define FN_E_PROTO_WIRE_TYPE -604   /* wire type 6 or 7 */
#define FN_E_PROTO_GROUP -605       /* an end-group tag that closes nothing open, or a group left open */
#define FN_E_PROTO_PACKED -606      /* a packed body that does not hold whole values */
#define FN_E_PROTO_UTF8 -607        /* a string field that is not valid UTF-8 */
#define FN_E_PROTO_DEPTH -608       /* nested deeper than max_depth */
#define FN_E_PROTO_SIZE -609        /* input longer than max_size */
/* encode errors: the caller's values (err_msg / err_field say where) */
#define FN_E_PROTO_TYPE -620        /* a value of the wrong type for its field */
#define FN_E_PROTO_RANGE -621       /* an integer out of its field's range */
#define FN_E_PROTO_BAD_STR -622     /* a str that is not UTF-8 (a lone surrogate) */
#define FN_E_PROTO_ENC_DEPTH -623   /* messages nested deeper than max_depth */
#define FN_E_PROTO_FLAT -624        /* not a flat form (shape or marshal stream) */

/* Field flags. */
#define FN_PROTO_F_REPEATED 1
#define FN_PROTO_F_PACKED 2         /* repeated scalar written packed */
#define FN_PROTO_F_PRESENCE 4       /* None is unset; set defaults are written */
#define FN_PROTO_F_UTF8 8           /* string */
#define FN_PROTO_F_MAP 16           /* repeated map entries; a dict in the flat form */
#define FN_PROTO_F_CLOSED 32        /* a closed (proto2) enum: numbers it does not define
                                       are unknown fields, as upb keeps them */

typedef struct fn_proto_field {
    uint32_t number;
    uint8_t type;                   /* descriptor.proto's FieldDescriptorProto.Type */
    uint8_t flags;
    uint16_t oneof;                 /* 1 + index of its (real) oneof in the message, 0 if none */
    int32_t sub;                    /* message index (message, group, map entry), else -1 */
    uint32_t closed_first;          /* FN_PROTO_F_CLOSED: its numbers, sorted, are */
    uint32_t closed_count;          /* closed[closed_first .. + closed_count) */
} fn_proto_field;

typedef struct fn_proto_msg {
    uint32_t first;                 /* index of its first field in fields[] */
    uint32_t count;
    uint32_t map_entry;             /* 1: a map entry (key 1, value 2) */
} fn_proto_msg;

typedef struct fn_proto_schema {
    const fn_proto_msg *msgs;
    uint32_t nmsgs;
    const fn_proto_field *fields;
    uint32_t nfields;
    const int32_t *closed;          /* the closed enums' numbers */
    uint32_t nclosed;
} fn_proto_schema;

typedef struct fn_proto_ctx {
    char *out;                      /* owned: the last call's output */
    size_t out_len;
    size_t out_cap;
    int32_t err_msg;                /* encode errors: message and field index, or -1 */
    int32_t err_field;
    void *priv;                     /* owned work arrays */
} fn_proto_ctx;

/* A context for one thread at a time (ffi.gc(c, lib.fn_proto_ctx_free));
 * NULL when out of memory. */
fn_proto_ctx *fn_proto_ctx_new(void);
void fn_proto_ctx_free(fn_proto_ctx *c);

/* Encode message msg from its flat form flat[0..len) (marshal version 2).
 * Returns the length of the wire bytes at c->out, or a negative FN_E_*. */
int64_t fn_proto_encode(fn_proto_ctx *c, const fn_proto_schema *s, uint32_t msg,
                        const uint8_t *flat, size_t len, uint32_t max_depth);

/* Decode message msg from data[0..len). Returns the length of its flat form
 * as a marshal stream at c->out, or a negative FN_E_*. */
int64_t fn_proto_decode(fn_proto_ctx *c, const fn_proto_schema *s, uint32_t msg,
                        const uint8_t *data, size_t len, uint32_t max_depth, uint64_t max_size);
/* cdef: end */

#endif
