/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rmradm's verbs, split by concern: rmradm.c (the tool, the attribute
 * verbs, store-info, leg), rmradm-sync.c (sync and verify, with their
 * progress).  What the files share.
 */
#ifndef RMRADM_H
#define RMRADM_H

#include <stddef.h>

/* "rmradm: message" on stderr, exit 1. */
void die (const char *fmt, ...) G_GNUC_NORETURN G_GNUC_PRINTF (1, 2);
/* The same with a hint at --help, exit 2. */
void usage_error (const char *fmt, ...) G_GNUC_NORETURN G_GNUC_PRINTF (1, 2);
/* A getopt_long failure of verb (opterr 0, optstring starting with ':'). */
void bad_option (const char *verb, int c, char **argv) G_GNUC_NORETURN;
/* Write to stdout and flush; dies on failure. */
void write_out (const char *buf, size_t len);
/* Send one control line, print the answer; dies on failure. */
int request (const char *sock, const char *line);

int cmd_sync (const char *sock, int argc, char **argv);
int cmd_verify (const char *sock, int argc, char **argv);

#endif
