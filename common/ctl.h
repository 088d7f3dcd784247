/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control interface (DESIGN 8): a Unix socket per process that exposes
 * the admin guide's sysfs tree ("rmr-server/pools/NAME/state", ...), and
 * the one command table that drives its dispatcher, its help and its JSON.
 *
 * Protocol: one request per connection.  The client sends one line (at
 * most CTL_LINE_MAX bytes, terminated by '\n'):
 *
 *   get PATH            read an attribute
 *   set PATH VALUE...   write an attribute (VALUE: the rest of the line,
 *                       usually 'key=value ...', or '1', 'start', ...)
 *   ls [PATH]           the paths below PATH (every instance of a '*')
 *   status              every readable attribute, one "PATH: VALUE" line
 *   status --json       the same as one JSON object (a tree of paths)
 *   help                every command of the table with its help text
 *
 * The server answers "ok\n" followed by the body, or one line
 * "error: MESSAGE\n", and closes the connection.
 *
 * The table: each entry is a path pattern in which a '*' segment matches
 * one name (pool, store, session); the names matched are passed to the
 * handlers as args[0], args[1], ...  Entries with a list function
 * enumerate the names a '*' can take (for ls, status and JSON).
 */
#ifndef RMR_CTL_H
#define RMR_CTL_H

#include <stdbool.h>

#include <glib.h>

#define CTL_LINE_MAX 4096
#define CTL_MAX_ARGS 4

/* key=value arguments of a set, parsed and checked against the entry's
 * keys before the handler runs.
 */
struct ctl_kv {
  unsigned n;
  char *key[32];
  char *value[32];
};

/* Value of key, or NULL when absent. */
const char *ctl_kv_get (const struct ctl_kv *kv, const char *key);

/* Handlers return 0, or -1 with a one-line message appended to err.
 * Handlers are called with no lock held; they take what they need.
 */
typedef int (*ctl_get_fn) (void *opaque, char **args, GString *out,
                           GString *err);
typedef int (*ctl_set_fn) (void *opaque, char **args, const char *value,
                           const struct ctl_kv *kv, GString *out,
                           GString *err);
/* Append the names a '*' can take at this point (args hold the names of
 * the earlier '*'s) to names (g_strdup'd strings).
 */
typedef int (*ctl_list_fn) (void *opaque, char **args, GPtrArray *names);

#define CTL_F_NO_STATUS 0x1     /* not shown by status (large or slow) */
#define CTL_F_RAW_VALUE 0x2     /* set takes a raw value, not key=value */

struct ctl_cmd {
  const char *path;             /* "rmr-server/pools/STAR/state" (STAR = *) */
  ctl_get_fn get;
  ctl_set_fn set;
  ctl_list_fn list;             /* for paths ending in '*': enumerate */
  /* For set with key=value: the allowed keys, space separated, a
   * trailing '!' marks a required key: "poolname! member_id!".
   */
  const char *keys;
  unsigned flags;
  const char *help;
};

/* Run one request line against a table (the dispatcher): match the path,
 * check the keys (unknown key, missing required key, duplicate key: error
 * naming it), call the handler.  On success "ok\n" + body is in reply; on
 * error "error: ...\n".  Returns 0 or -1 (as the reply says).
 */
int ctl_dispatch (const struct ctl_cmd *table, size_t n, void *opaque,
                  const char *line, GString *reply);

/* A control server listening on a Unix socket path (created, replacing a
 * stale socket; the parent directory is created if missing) with one
 * thread accepting connections and answering them one at a time through
 * ctl_dispatch ().
 */
struct ctl_server;
struct ctl_server *ctl_server_start (const char *path,
                                     const struct ctl_cmd *table, size_t n,
                                     void *opaque);
/* Stop the thread, close and unlink the socket, free.  NULL allowed. */
void ctl_server_stop (struct ctl_server *srv);

/* Client side: send one request line to the socket at path and collect
 * the reply body in out.  Returns 0 on "ok"; -1 with the server's message
 * (or a connection error naming the socket) in err.
 */
int ctl_request (const char *path, const char *line, GString *out,
                 GString *err);

/* JSON string escaping (RFC 8259) appended to out, with the quotes. */
void ctl_json_string (GString *out, const char *s);

#endif /* RMR_CTL_H */
