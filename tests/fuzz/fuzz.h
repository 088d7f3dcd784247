/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The interface between a fuzz target (tests/fuzz/fuzz-*.c) and the
 * standalone driver fuzz-main.c.
 *
 * A target defines LLVMFuzzerTestOneInput (), which libFuzzer calls, and
 * fuzz_builtin (), which feeds a few hand-made inputs (valid messages,
 * boundary values, known past bugs) through fuzz_input ().  fuzz-main.c
 * defines fuzz_input () and a weak main (): without libFuzzer that main
 * replays files or the built-in inputs (see tests/fuzz/README); built with
 * -fsanitize=fuzzer, libFuzzer's own main () wins and fuzz_builtin () is
 * not called.
 */
#ifndef RMR_FUZZ_H
#define RMR_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The target: check every invariant on one input; a broken invariant
 * aborts.  Returns 0 (libFuzzer's convention).
 */
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* The target: run its built-in inputs, each through fuzz_input (). */
void fuzz_builtin (void);

/* The driver: run one input through LLVMFuzzerTestOneInput () and count
 * it (or, with --seed-corpus, write it to the corpus directory).  The
 * driver copies data into a buffer of exactly size bytes first, so ASan
 * sees a read past the end.
 */
void fuzz_input (const void *data, size_t size);

/* A refusal with result r (-errno): rmr_get_errno () says the same, and
 * rmr_get_error () is a non-empty message on one line.
 */
void fuzz_check_message (int r);

/* fuzz_input () on a string literal, embedded NULs included. */
#define FUZZ_INPUT_LITERAL(s) fuzz_input ((s), sizeof (s) - 1)

#endif /* RMR_FUZZ_H */
