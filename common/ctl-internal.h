/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internals shared by the files of the control protocol (ctl.h), not part
 * of librmr's API:
 *
 *   ctl-dispatch.c  the table split into path segments, path matching,
 *                   replies, key=value parsing and checking, get, set and
 *                   the dispatcher (ctl_dispatch, ctl_kv_get);
 *   ctl-walk.c      the walk behind ls, status and status --json, help,
 *                   the table check and JSON string escaping;
 *   ctl-socket.c    the Unix socket server and the client.
 *
 * Everything here is valid for one dispatch: a struct ctl_tab lives on the
 * dispatcher's stack and is freed when the request is answered.
 */
#ifndef RMR_CTL_INTERNAL_H
#define RMR_CTL_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>

#include <glib.h>

#include "ctl.h"
#include "util.h"

/* The most key=value pairs of one set (the size of struct ctl_kv). */
#define CTL_KV_MAX ((unsigned) ARRAY_SIZE (((struct ctl_kv *) 0)->key))

/* ctl-dispatch.c ----------------------------------------------------------- */

/* One path pattern of the table split at '/'. */
struct ctl_pat {
  gchar **seg;
  unsigned nseg;
  unsigned nstar; /* how many segments are '*' */
};

/* The table of one dispatch, each pattern split once. */
struct ctl_tab {
  const struct ctl_cmd *cmd;
  size_t n;
  void *opaque;
  struct ctl_pat *pat; /* n entries */
};

static inline bool
ctl_is_star (const char *seg)
{
  return seg[0] == '*' && seg[1] == '\0';
}

static inline bool
ctl_is_blank (char c)
{
  return c == ' ' || c == '\t';
}

/* Split every path of table; ctl_tab_cleanup () frees what this allocates
 * (CTL_CLEANUP_TAB on the variable).
 */
void ctl_tab_init (struct ctl_tab *t, const struct ctl_cmd *table, size_t n,
                   void *opaque);
void ctl_tab_cleanup (struct ctl_tab *t);
#define CTL_CLEANUP_TAB __attribute__ ((cleanup (ctl_tab_cleanup)))

/* Do the first len segments of two patterns agree? */
bool ctl_pat_prefix_equal (const struct ctl_pat *a, const struct ctl_pat *b,
                           unsigned len);
/* Split a request path into segments (g_strfreev); NULL if a segment is
 * empty.
 */
gchar **ctl_path_split (const char *path, unsigned *nseg);
/* The list entry for the first len segments of pattern p, or -1. */
ssize_t ctl_tab_find_list (const struct ctl_tab *t, const struct ctl_pat *p,
                           unsigned len);
/* "no such pool: NAME" for the '*' at segment star of p. */
void ctl_append_no_such (GString *err, const struct ctl_pat *p, unsigned star,
                         const char *name);
bool ctl_names_contain (GPtrArray *names, const char *name);
/* The n segments joined with '/'. */
void ctl_append_joined (GString *out, gchar **seg, unsigned n);

/* Replies: each replaces the contents of reply and returns what
 * ctl_dispatch () returns (0 for ok, -1 for an error).
 */
/* Make err one line: no trailing blanks, newlines turned into spaces. */
void ctl_err_one_line (GString *err);
int ctl_reply_error (GString *reply, GString *err);
int ctl_reply_errorf (GString *reply, const char *fmt, ...)
  G_GNUC_PRINTF (2, 3);
int ctl_reply_ok (GString *reply, const GString *body);

/* ctl-walk.c --------------------------------------------------------------- */

enum ctl_walk_kind {
  CTL_WALK_LS,
  CTL_WALK_STATUS,
  CTL_WALK_JSON,
};

/* ls, status or status --json below filter_path (NULL: everything). */
int ctl_do_walk (const struct ctl_tab *t, enum ctl_walk_kind kind,
                 const char *filter_path, GString *reply);
int ctl_do_help (const struct ctl_tab *t, GString *reply);

#endif /* RMR_CTL_INTERNAL_H */
