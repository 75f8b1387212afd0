/* hpack.h - HPACK, HTTP/2 header compression (RFC 7541): a decoder and an
 * encoder, each owning one dynamic table (one per connection direction).
 *
 * The rules are those of fastnet/codec/hpack/py.py, the pure-Python twin
 * (its docstring is the specification of both): strict decoding, integers
 * up to FN_HPACK_MAX_INTEGER, the decoded header list bounded by the
 * caller's max_header_list_size as each field is decoded (RFC 9113 6.5.2
 * accounting: name + value + 32), errors sticky, and a fixed encoding
 * strategy so both twins write the same bytes.
 *
 * A decoded block is handed to Python as a CPython marshal stream (see
 * marshal.h): a list of (name, value) tuples of bytes, never-indexed ones
 * as (name, value, None). It lives in the decoder until the next call.
 */
#ifndef FASTNET_HPACK_H
#define FASTNET_HPACK_H

#include <stddef.h>
#include <stdint.h>

/* cdef: begin */
#define FN_HPACK_MAX_INTEGER 0xffffffffu

#define FN_E_HPACK_TRUNCATED -901       /* the block ends inside a field */
#define FN_E_HPACK_INTEGER -902         /* an integer above FN_HPACK_MAX_INTEGER */
#define FN_E_HPACK_INDEX -903           /* index 0, or past the static and dynamic tables */
#define FN_E_HPACK_HUFFMAN -904         /* EOS inside a string, or bad padding */
#define FN_E_HPACK_TABLE_SIZE -905      /* a size update above the allowed size, or after a field */
#define FN_E_HPACK_LIST_TOO_LARGE -906  /* the header list would exceed max_header_list_size */

typedef struct fn_hpack_decoder fn_hpack_decoder;
typedef struct fn_hpack_encoder fn_hpack_encoder;

/* A decoder whose peer may use a table of up to max_table_size bytes (our
 * SETTINGS_HEADER_TABLE_SIZE; the table starts at that size). NULL if out
 * of memory. */
fn_hpack_decoder *fn_hpack_decoder_new(uint32_t max_table_size);
void fn_hpack_decoder_free(fn_hpack_decoder *d);
/* Our setting changed: later size updates may go up to max_table_size. */
void fn_hpack_decoder_set_allowed(fn_hpack_decoder *d, uint32_t max_table_size);
/* Bytes the dynamic table holds (RFC 7541 4.1). */
uint32_t fn_hpack_decoder_table_size(const fn_hpack_decoder *d);
/* Decode the complete header block in[0..len). On success return the
 * length of the marshal stream stored in *out (valid until the next call)
 * and the number of never-indexed fields in *never; otherwise a negative
 * FN_E_HPACK_* code, FN_E_NOMEM, or FN_E_STICKY after an earlier error. */
int64_t fn_hpack_decode(fn_hpack_decoder *d, const uint8_t *in, size_t len,
                        size_t max_header_list_size, const char **out, size_t *never);

/* An encoder with a table of max_table_size bytes (announced in the first
 * block unless it is the protocol's initial 4096). NULL if out of memory. */
fn_hpack_encoder *fn_hpack_encoder_new(uint32_t max_table_size, int huffman);
void fn_hpack_encoder_free(fn_hpack_encoder *e);
/* Use a table of max_table_size bytes, announced at the next block's start. */
void fn_hpack_encoder_set_max_table_size(fn_hpack_encoder *e, uint32_t max_table_size);
uint32_t fn_hpack_encoder_table_size(const fn_hpack_encoder *e);
/* Encode n fields: field i's name is the next lens[2i] bytes of data, its
 * value the next lens[2i+1]; sensitive[i] != 0 sends it never-indexed.
 * Write the block to out[0..cap) and return its length; FN_E_ARG if cap is
 * too small (fn_hpack_encode_bound is always enough), FN_E_NOMEM. */
int64_t fn_hpack_encode(fn_hpack_encoder *e, const uint8_t *data, const uint32_t *lens,
                        const uint8_t *sensitive, size_t n, uint8_t *out, size_t cap);
/* Room fn_hpack_encode may need for n fields of data_len bytes in all. */
size_t fn_hpack_encode_bound(size_t n, size_t data_len);

/* The Huffman code of in[0..len) into out (room for 4 * len bytes);
 * return its length. */
size_t fn_hpack_huffman_encode(const uint8_t *in, size_t len, uint8_t *out);
/* Decode a Huffman string into out (room for 8 * len / 5 + 1 bytes);
 * return its length or FN_E_HPACK_HUFFMAN. */
int64_t fn_hpack_huffman_decode(const uint8_t *in, size_t len, uint8_t *out);
/* cdef: end */

#endif
