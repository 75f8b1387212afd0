/* pack.h - MessagePack <-> CPython marshal transcoding (fastnet.pack).
 *
 * The boundary: csrc/ has no Python.h, so C never touches a Python object.
 * Both directions go through CPython's marshal format (marshal.h), which
 * CPython reads and writes in its own C code:
 *
 *   pack:   Python: marshal.dumps(obj, 4)   C: marshal -> MessagePack
 *   unpack: C: MessagePack -> marshal       Python: marshal.loads(stream)
 *
 * What marshal cannot carry (ExtType, datetime, subclasses, objects for
 * default=, sets, ints over 64 bits, str with lone surrogates, reference
 * cycles, anything over a limit) makes the C side return an error code and
 * Python hands that object to the pure-Python twin (fastnet/pack/py.py),
 * which produces the result or the error; the twins cannot disagree on an
 * error because only one of them ever words it.
 *
 * Encoding (fn_pack_encode) reads an untrusted marshal stream as safely as
 * untrusted MessagePack: explicit stack, every length checked against the
 * bytes present, output grown geometrically as it is written. Reference
 * records (FLAG_REF / TYPE_REF) are resolved by copying the MessagePack
 * bytes already written for the referenced object; a reference to a
 * container still open is a container that contains itself
 * (FN_E_PACK_CYCLE). A dict's pair count is only known at its end: its
 * header is written as a fixmap and widened in place if it reaches 16.
 *
 * Decoding (fn_pack_dec_*) is incremental and sans-IO: feed() copies bytes
 * into an owned buffer (framer.h, RAW); next() transcodes one object into
 * the marshal stream at out[0..out_len). An item (a header and, for
 * str/bin/ext, its whole payload) is transcoded once, when all of it is
 * buffered; the open containers stay on an explicit stack between feeds,
 * so decoding is O(bytes fed) and never rescans. Declared lengths are
 * checked against the limits as soon as their header is read and never
 * used to preallocate. Errors are sticky until reset.
 */
#ifndef FASTNET_PACK_H
#define FASTNET_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "framer.h"

/* cdef: begin */
/* fn_pack_dec_next() / fn_pack_unpackb() results */
#define FN_PACK_NEED_DATA 0
#define FN_PACK_OBJECT 1

/* Encode: a value Python must pack itself (the twin words any error). */
#define FN_E_PACK_UNSUPPORTED -500  /* a marshal type with no MessagePack form here */
#define FN_E_PACK_INT_RANGE -501    /* an int outside [-2**63, 2**64) */
#define FN_E_PACK_DEPTH -502        /* containers nested over max_depth */
#define FN_E_PACK_CYCLE -503        /* a reference to a container still open */
#define FN_E_PACK_SURROGATE -504    /* a str holding a lone surrogate */
#define FN_E_PACK_MARSHAL -505      /* not a well-formed marshal stream */
/* Decode */
#define FN_E_PACK_RESERVED -510     /* the reserved byte 0xc1 */
#define FN_E_PACK_UTF8 -511         /* a str that is not UTF-8 */
#define FN_E_PACK_LIMIT -512        /* a length or the depth over its limit */
#define FN_E_PACK_MAP_KEY -513      /* a map as a key, or a non-str key with FN_PACK_STRICT_KEYS */
#define FN_E_PACK_EXTRA -514        /* fn_pack_unpackb(): bytes after the object */
#define FN_E_PACK_TIMESTAMP -516    /* a timestamp (ext -1) of a wrong size, or its value out of range */
#define FN_E_PACK_FALLBACK -517     /* fn_pack_unpackb: a whole, valid object marshal cannot carry */

/* Flags */
#define FN_PACK_RAW 1               /* decode: str as bytes */
#define FN_PACK_TUPLES 2            /* decode: arrays as tuples */
#define FN_PACK_STRICT_KEYS 4       /* decode: map keys must be str or bin */
#define FN_PACK_NO_BIN 8            /* encode: bytes as str (use_bin_type=False) */
#define FN_PACK_TS_DATETIME 16      /* decode: timestamps become datetimes (range-checked) */
#define FN_PACK_LOADS_UTF8 32       /* fn_pack_unpackb: refuse only surrogates in a str and leave
                                       the rest of UTF-8 validation to marshal.loads (which
                                       accepts surrogates and refuses every other invalid form) */

typedef struct fn_pack_limits {
    uint64_t max_depth;
    uint64_t max_str;
    uint64_t max_bin;
    uint64_t max_ext;
    uint64_t max_array;
    uint64_t max_map;
} fn_pack_limits;

typedef struct fn_pack_frame {
    uint64_t left;            /* items still to come (a map counts keys and values) */
    int kind;                 /* array, tuple or map */
    int key;                  /* inside a map key: arrays are tuples, maps refused */
} fn_pack_frame;

typedef struct fn_pack_dec {
    fn_pack_limits lim;
    int flags;
    fn_framer raw;            /* FN_FRAME_RAW: the bytes not yet dropped */
    size_t pos;               /* next byte to transcode, from the object's first */
    size_t drop;              /* bytes of the object last returned, dropped by the next call */
    fn_pack_frame *stack;     /* owned; the open containers, innermost last */
    size_t depth;
    size_t stack_cap;
    char *out;                /* owned; the object's marshal stream */
    size_t out_len;
    size_t out_cap;
    int fallback;             /* Python decodes the object: it holds an ext (written as None)
                                 or a str/bin/array over marshal's 2**31 - 1 */
    size_t obj_len;           /* FN_PACK_OBJECT: the object's bytes at fn_pack_dec_data() */
    uint64_t work;            /* items transcoded (each once: the O(bytes fed) bound) */
    int err;                  /* sticky error, 0 if none */
    void *keys;               /* owned; the object's short map keys seen so far */
    uint32_t key_gen;         /* keys entries of other generations are empty */
    uint32_t nrefs;           /* marshal references written for this object */
} fn_pack_dec;

fn_pack_dec *fn_pack_dec_new(const fn_pack_limits *lim, int flags);
void fn_pack_dec_free(fn_pack_dec *d);
/* Forget buffered bytes, the object in progress and any error. */
void fn_pack_dec_reset(fn_pack_dec *d);
/* Drop the object returned last, then append a copy of data[0..len): FN_OK
 * or FN_E_NOMEM. Discarded after an error. */
int fn_pack_dec_feed(fn_pack_dec *d, const char *data, size_t len);
/* Drop the object returned last, then transcode the next one: FN_PACK_OBJECT
 * (out, out_len, fallback, obj_len set), FN_PACK_NEED_DATA, or a sticky
 * FN_E_* code (the failing object's bytes so far start at fn_pack_dec_data()). */
int fn_pack_dec_next(fn_pack_dec *d);
/* The first byte of the object in progress (or returned last). */
const char *fn_pack_dec_data(const fn_pack_dec *d);
/* Bytes fed and not yet returned in an object (the object in progress and
 * what follows it). */
size_t fn_pack_dec_buffered(const fn_pack_dec *d);
/* Transcode exactly one object from data[0..len) with these limits and
 * flags (data is not copied; d's buffer is untouched). Returns the length
 * of its marshal stream at out (>= 0), or FN_E_PACK_FALLBACK (an ext, or
 * a str/bin/array over marshal's sizes), FN_E_TRUNCATED, FN_E_PACK_EXTRA
 * (obj_len: the object's size) or another FN_E_* code. Not sticky. */
int64_t fn_pack_unpackb(fn_pack_dec *d, const char *data, size_t len, const fn_pack_limits *lim,
                    int flags);

typedef struct fn_pack_enc {
    char *out;                /* owned; the MessagePack bytes */
    size_t out_len;
    size_t out_cap;
    void *stack;              /* owned; open containers */
    size_t stack_cap;
    void *refs;               /* owned; marshal's reference table */
    size_t refs_cap;
} fn_pack_enc;

fn_pack_enc *fn_pack_enc_new(void);
void fn_pack_enc_free(fn_pack_enc *e);
/* Transcode one marshal (version <= 4) object m[0..len) to MessagePack at
 * out[0..out_len). Returns out_len (>= 0) or an FN_E_* code. */
int64_t fn_pack_encode(fn_pack_enc *e, const char *m, size_t len, uint64_t max_depth, int flags);
/* cdef: end */

#endif
