/* h2frame.h - HTTP/2 frames (RFC 9113 sections 4 and 6): an incremental
 * parser, many frames per call.
 *
 * The rules, and the order they are checked in, are those of
 * fastnet/codec/h2frame/py.py (the pure-Python twin; its docstring is the
 * specification of both). A frame's declared length is checked against the
 * caller's max_frame_size from its 9-byte header, before its payload is
 * buffered. Connection errors are sticky; stream errors are reported on
 * the frame (error != 0).
 */
#ifndef FASTNET_H2FRAME_H
#define FASTNET_H2FRAME_H

#include <stddef.h>
#include <stdint.h>

/* cdef: begin */
#define FN_E_H2_TOO_LARGE -801
#define FN_E_H2_EXPECTED_CONTINUATION -802
#define FN_E_H2_UNEXPECTED_CONTINUATION -803
#define FN_E_H2_STREAM_ZERO -804
#define FN_E_H2_STREAM_NONZERO -805
#define FN_E_H2_PAD_MISSING -806
#define FN_E_H2_PAD_TOO_LONG -807
#define FN_E_H2_TOO_SHORT -808
#define FN_E_H2_BAD_LENGTH -809
#define FN_E_H2_SETTINGS_ACK_PAYLOAD -810
#define FN_E_H2_SETTINGS_LENGTH -811
#define FN_E_H2_ENABLE_PUSH -812
#define FN_E_H2_INITIAL_WINDOW -813
#define FN_E_H2_MAX_FRAME_SIZE -814
#define FN_E_H2_WINDOW_ZERO -815

/* Stream errors, in fn_h2_frame.error (0: none) */
#define FN_H2_STREAM_PRIORITY_LENGTH 1
#define FN_H2_STREAM_SELF_DEPENDENCY 2
#define FN_H2_STREAM_WINDOW_ZERO 3

typedef struct {
    uint8_t type, flags, pad_length, error;
    uint8_t exclusive;
    uint16_t weight;                 /* 1..256 */
    uint32_t stream_id;
    uint32_t data_off, data_len;     /* into fn_h2_parser_buffer() */
    uint32_t depends_on, promised_stream_id, error_code, last_stream_id, increment;
    uint32_t settings_off, settings_count;  /* 6-byte entries, into the buffer */
} fn_h2_frame;

typedef struct fn_h2_parser fn_h2_parser;

fn_h2_parser *fn_h2_parser_new(void);
void fn_h2_parser_free(fn_h2_parser *p);
/* Append in[0..len) and parse up to cap complete frames into out. Return
 * how many (call again with len 0 while it returns cap), or a negative
 * FN_E_H2_* (sticky; fn_h2_parser_parsed() frames were parsed before it),
 * FN_E_NOMEM (nothing appended). Offsets are valid until the next call. */
int fn_h2_parse(fn_h2_parser *p, const uint8_t *in, size_t len, uint32_t max_frame_size,
                fn_h2_frame *out, size_t cap);
int fn_h2_parser_parsed(const fn_h2_parser *p);
const uint8_t *fn_h2_parser_buffer(const fn_h2_parser *p);
/* cdef: end */

#endif
