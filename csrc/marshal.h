/* marshal.h - CPython's marshal format (Python/marshal.c), the bridge by
 * which C hands Python objects to Python and takes them back: C writes a
 * marshal stream and marshal.loads() builds the objects in CPython's own C
 * code (resp.c: request batches; pack.c: MessagePack -> objects), or
 * marshal.dumps() flattens objects for C to read (pack.c: objects ->
 * MessagePack).
 *
 * Version 4 (marshal.dumps' default since 3.4): a type byte, with
 * FN_MARSHAL_FLAG_REF set when the object enters the reference table (its
 * index: how many flagged objects came before it), then its body. Sizes
 * and counts are little-endian int32. Internal header: no cdef block.
 */
#ifndef FASTNET_MARSHAL_H
#define FASTNET_MARSHAL_H

#include <stdint.h>

#define FN_MARSHAL_NULL '0'           /* ends a dict's key/value pairs */
#define FN_MARSHAL_NONE 'N'
#define FN_MARSHAL_FALSE 'F'
#define FN_MARSHAL_TRUE 'T'
#define FN_MARSHAL_INT 'i'            /* int32 */
#define FN_MARSHAL_LONG 'l'           /* int32 n (sign = sign of value), |n| 15-bit digits (uint16), least significant first */
#define FN_MARSHAL_BINARY_FLOAT 'g'   /* 8 bytes: IEEE double, little-endian */
#define FN_MARSHAL_STRING 's'         /* bytes: int32 size, data */
#define FN_MARSHAL_INTERNED 't'       /* str: int32 size, UTF-8 (surrogatepass) */
#define FN_MARSHAL_UNICODE 'u'        /* str: int32 size, UTF-8 (surrogatepass) */
#define FN_MARSHAL_ASCII 'a'          /* str: int32 size, ASCII */
#define FN_MARSHAL_ASCII_INTERNED 'A'
#define FN_MARSHAL_SHORT_ASCII 'z'    /* str: uint8 size, ASCII */
#define FN_MARSHAL_SHORT_ASCII_INTERNED 'Z'
#define FN_MARSHAL_TUPLE '('          /* int32 count, items */
#define FN_MARSHAL_SMALL_TUPLE ')'    /* uint8 count, items */
#define FN_MARSHAL_LIST '['           /* int32 count, items */
#define FN_MARSHAL_DICT '{'           /* key, value, ... FN_MARSHAL_NULL */
#define FN_MARSHAL_REF 'r'            /* int32 index into the reference table */
#define FN_MARSHAL_FLAG_REF 0x80

/* Sizes and counts are int32: nothing longer fits in one item. */
#define FN_MARSHAL_MAX_SIZE 0x7fffffffu

/* Write a little-endian 32-bit value; return the position after it. */
static inline char *fn_marshal_put32(char *w, uint32_t n)
{
    w[0] = (char)(n & 0xff);
    w[1] = (char)((n >> 8) & 0xff);
    w[2] = (char)((n >> 16) & 0xff);
    w[3] = (char)((n >> 24) & 0xff);
    return w + 4;
}

/* A type byte and a 32-bit size or count (5 bytes). */
static inline char *fn_marshal_header(char *w, char type, uint32_t n)
{
    *w++ = type;
    return fn_marshal_put32(w, n);
}

static inline uint32_t fn_marshal_get32(const unsigned char *r)
{
    return (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
}

#endif
