/* h2sess.h - HTTP/2's per-read batch (RFC 9113): one call turns every
 * complete frame of a read into one marshal list of event tuples.
 *
 * Inside: the frame parser (h2frame.c) with its frame-level rules, field
 * blocks reassembled from HEADERS and CONTINUATION (bounded by the caller's
 * max_field_block bytes and max_continuations frames) and HPACK-decoded
 * (hpack.c, the table in C, each list bounded by max_header_list_size),
 * and each decoded list checked as a request (RFC 9113 8.2, 8.3.1) and as
 * trailers. The tuples, the rules and the error names are those of
 * fastnet/codec/h2sess/py.py, the pure-Python twin (its docstring is the
 * specification of both). Errors are sticky: the list ends with
 * (-1, rule), and every later call returns [(-1, rule)].
 *
 * The stream states, flow control and flood debts stay with the caller
 * (fastnet.h2.H2Connection), which reads the list in order.
 */
#ifndef FASTNET_H2SESS_H
#define FASTNET_H2SESS_H

#include <stddef.h>
#include <stdint.h>

/* cdef: begin */
/* h2sess's own errors: the h2 block (-800 .. -899), after h2frame's. */
#define FN_E_H2S_FIELD_BLOCK -850       /* a field block over max_field_block bytes */
#define FN_E_H2S_CONTINUATIONS -851     /* a field block in more than max_continuations frames */
#define FN_E_H2S_CONTINUATION_BLOCK -852 /* the same, found while CONTINUATIONs came */

typedef struct fn_h2sess fn_h2sess;

/* A reader whose peer's HPACK table may grow to header_table_size (our
 * SETTINGS_HEADER_TABLE_SIZE). NULL if out of memory. */
fn_h2sess *fn_h2sess_new(uint32_t header_table_size);
void fn_h2sess_free(fn_h2sess *s);
/* Our SETTINGS_HEADER_TABLE_SIZE changed (in force from the next block). */
void fn_h2sess_set_table_size(fn_h2sess *s, uint32_t header_table_size);
/* Parse every complete frame of in[0..len) (after what earlier calls left).
 * Return the length of the marshal stream in *out (a list of tuples, valid
 * until the next call), or FN_E_NOMEM (the reader is unusable after it). */
int64_t fn_h2sess_read(fn_h2sess *s, const uint8_t *in, size_t len, uint32_t max_frame_size,
                       uint32_t max_header_list_size, uint32_t max_field_block,
                       uint32_t max_continuations, const char **out);
/* The rule of the sticky error (what the ERROR tuple says), or NULL. */
const char *fn_h2sess_error(const fn_h2sess *s);
/* cdef: end */

#endif
