/*
 * status.h: the one return-code convention of every C module in csrc/.
 *
 * A function returns a value >= 0 on success (FN_OK, a count, a length, or
 * a module's own non-negative status such as "need more data" / "one
 * message") and a negative FN_E_* code on failure. Never -1 for one thing
 * in one header and another thing in the next.
 *
 * Codes shared by every module are -1 .. -99. Each module owns a block of
 * one hundred for its own errors, so a code names its module and its cause
 * wherever it surfaces (a log line, a fuzz target's assertion):
 *
 *     varint  -100 .. -199        pack    -500 .. -599
 *     framer  -200 .. -299        proto   -600 .. -699
 *     resp    -300 .. -399        http1   -700 .. -799
 *     loop    -400 .. -499        h2      -800 .. -899
 *                                 hpack   -900 .. -999
 *                                 wire   -1100 .. -1199
 *
 * Modules define their codes as FN_E_<MODULE>_<CAUSE> in their own header.
 * Python reads every value from `lib` (cffi), never types a number twice.
 */
#ifndef FASTNET_STATUS_H
#define FASTNET_STATUS_H

/* cdef: begin */
#define FN_OK 0
#define FN_E_NOMEM -1       /* an allocation failed: the object stays valid, nothing was consumed */
#define FN_E_ARG -2         /* the caller broke the API contract (a length, a state) */
#define FN_E_TRUNCATED -3   /* the input ended inside an item where a whole one was required */
#define FN_E_LIMIT -4       /* a caller-given limit was exceeded (the module says which) */
#define FN_E_STICKY -5      /* an earlier error stands: reset before feeding more */
/* cdef: end */

#endif
