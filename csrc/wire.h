/* wire.h - the fastnet wire protocol's frame codec: incremental, sans-IO.
 *
 * Every frame is a 12-byte header and a body (see README "The wire
 * protocol" for the byte-by-byte layout):
 *
 *   0      magic 0xFB
 *   1      protocol_version (1..255; 0 is malformed)
 *   2      frame type (FN_WIRE_HELLO .. FN_WIRE_GOAWAY)
 *   3      flags: bits 0-2 compression codec, bit 3 metadata present,
 *          bits 4-7 reserved (sent as 0, ignored on receipt)
 *   4..7   request id, unsigned 32-bit big-endian
 *   8..11  body length, unsigned 32-bit big-endian
 *
 * A decoder owns a RAW fn_framer as its buffer. Bytes go in with
 * fn_wire_feed() (a copy); fn_wire_next() returns one frame whose body is a
 * view into that buffer, valid until the next feed/next/reset/free call.
 * The header is checked as soon as its 12 bytes are buffered: a bad magic,
 * version 0, an unknown frame type or a body length above max_body is an
 * error before any byte of the body arrives. A declared length is never
 * used to preallocate: the buffer grows with the bytes that arrive.
 *
 * Errors are sticky: once fn_wire_next() has returned an FN_E_WIRE_* code
 * it returns the same code until fn_wire_reset(); bytes fed after it are
 * discarded. fn_wire_err_value() gives the offending value (the magic byte,
 * the type, the declared length).
 */
#ifndef FASTNET_WIRE_H
#define FASTNET_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* cdef: begin */
#define FN_WIRE_HEADER_SIZE 12
#define FN_WIRE_MAGIC 0xFB
#define FN_WIRE_MAX_BODY 4294967295

#define FN_WIRE_HELLO 1
#define FN_WIRE_REQUEST 2
#define FN_WIRE_RESPONSE 3
#define FN_WIRE_ERROR 4
#define FN_WIRE_PING 5
#define FN_WIRE_PONG 6
#define FN_WIRE_GOAWAY 7

#define FN_WIRE_FLAG_CODEC_MASK 7
#define FN_WIRE_FLAG_METADATA 8

/* fn_wire_next() results */
#define FN_WIRE_NEED_DATA 0
#define FN_WIRE_FRAME 1
#define FN_E_WIRE_MAGIC -1100       /* err_value = the first byte */
#define FN_E_WIRE_VERSION -1101     /* err_value = the version byte (0) */
#define FN_E_WIRE_TYPE -1102        /* err_value = the type byte */
#define FN_E_WIRE_TOO_LARGE -1103   /* err_value = declared body length */

typedef struct fn_wire_frame {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint32_t request_id;
    const char *body;    /* view into the decoder's buffer */
    size_t len;
} fn_wire_frame;

typedef struct fn_wire_decoder fn_wire_decoder;

/* A decoder refusing bodies longer than max_body; NULL on ENOMEM. */
fn_wire_decoder *fn_wire_new(uint64_t max_body);
void fn_wire_free(fn_wire_decoder *d);
void fn_wire_reset(fn_wire_decoder *d);
/* Append a copy of data[0..len): FN_OK or FN_E_NOMEM. */
int fn_wire_feed(fn_wire_decoder *d, const char *data, size_t len);
/* FN_WIRE_FRAME with *out set, FN_WIRE_NEED_DATA, or a sticky FN_E_WIRE_*. */
int fn_wire_next(fn_wire_decoder *d, fn_wire_frame *out);
size_t fn_wire_buffered(const fn_wire_decoder *d);
uint64_t fn_wire_err_value(const fn_wire_decoder *d);

/* Write a header to out (FN_WIRE_HEADER_SIZE bytes): returns
 * FN_WIRE_HEADER_SIZE, FN_E_WIRE_TOO_LARGE when len > FN_WIRE_MAX_BODY,
 * FN_E_WIRE_VERSION for version 0 or FN_E_WIRE_TYPE for an unknown type. */
int fn_wire_header(uint8_t version, uint8_t type, uint8_t flags,
                   uint32_t request_id, uint64_t len, uint8_t *out);
/* cdef: end */

#endif
