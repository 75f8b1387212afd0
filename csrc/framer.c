/* stub: replaced by the real implementation */
#include <stdlib.h>
#include <string.h>
#include "framer.h"
void fn_framer_init(fn_framer *f, int kind, uint64_t max, int flags) { memset(f, 0, sizeof *f); f->kind = kind; f->max = max; f->flags = flags; }
void fn_framer_release(fn_framer *f) { free(f->buf); f->buf = NULL; }
fn_framer *fn_framer_new(int kind, uint64_t max, int flags) { fn_framer *f = malloc(sizeof *f); if (f) fn_framer_init(f, kind, max, flags); return f; }
void fn_framer_free(fn_framer *f) { if (f) { fn_framer_release(f); free(f); } }
void fn_framer_reset(fn_framer *f) { (void)f; }
int fn_framer_feed(fn_framer *f, const char *data, size_t len) { (void)f; (void)data; (void)len; return FN_ERR_NO_MEMORY; }
char *fn_framer_reserve(fn_framer *f, size_t min_room, size_t *room) { (void)f; (void)min_room; (void)room; return NULL; }
void fn_framer_commit(fn_framer *f, size_t n) { (void)f; (void)n; }
int fn_framer_next(fn_framer *f, const char **msg, size_t *len) { (void)f; (void)msg; (void)len; return FN_NEED_DATA; }
size_t fn_framer_buffered(const fn_framer *f) { (void)f; return 0; }
int fn_frame_header(int kind, uint64_t len, uint8_t *out) { (void)kind; (void)len; (void)out; return 0; }
void fn_framer_trim(fn_framer *f, size_t keep) { (void)f; (void)keep; }
