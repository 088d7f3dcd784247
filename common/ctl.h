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
 *
 * Conventions of the dispatcher (ctl_dispatch):
 *
 * - Words are separated by spaces or tabs; a request containing another
 *   control character (or a NUL, on the socket) or longer than
 *   CTL_LINE_MAX bytes (without its '\n') is refused.  One trailing "\n"
 *   or "\r\n" is ignored.
 * - Paths have no leading '/'; segments are separated by one '/'.  A '*'
 *   segment matches exactly one non-empty segment; where a literal entry
 *   and a '*' entry both match, the literal one wins.  At most one entry
 *   per path, and an attribute (get or set) is never a prefix of another
 *   path, as a sysfs file is not a directory (ctl_table_check ()).
 * - Instances must exist: for each '*' of the matched entry, if the table
 *   has a list entry for the path up to that '*', the name must be in its
 *   list, otherwise "no such pool: NAME" (the segment before the '*',
 *   without its plural 's').  Handlers still check, since an instance can
 *   vanish between the check and the call.
 * - set VALUE: the rest of the line without surrounding blanks.  Unless
 *   CTL_F_RAW_VALUE, it is a list of key=value tokens; a value may be
 *   quoted whole with '...' or "..." (no escapes inside) to hold blanks;
 *   a quote anywhere else is an error.  Keys must be allowed by the
 *   entry's keys, given once, required ones present, and values must not
 *   be empty.  An entry with neither keys nor CTL_F_RAW_VALUE takes no
 *   value; a CTL_F_RAW_VALUE entry needs a non-empty one.
 * - A handler fails by returning non-zero; its err text (newlines turned
 *   into spaces) becomes the "error: " line.  On success the body is what
 *   it appended to out, with a '\n' added if missing.
 * - ls [PATH]: every concrete attribute path at or below PATH (a trailing
 *   '/' is ignored), one per line, with " (w)" appended to writable ones.
 *   Order: the table's order, each '*' expanded to its instances sorted by
 *   name (strcmp) and grouped per instance.  A '*' whose path has no list
 *   entry cannot be enumerated and is left out of ls and status.
 * - status [--json] [PATH]: every attribute with a get and without
 *   CTL_F_NO_STATUS, at or below PATH, in the order of ls.  Text: one
 *   "PATH: VALUE" line (the value without its trailing newlines); a
 *   multi-line value is written as "PATH:" followed by its lines indented
 *   by two spaces; a failed get as "PATH: error: MESSAGE".
 * - status --json: one compact JSON object on one line, nesting the path
 *   segments as objects: {"pools":{"alpha":{"state":"normal","id":42}}}.
 *   Values are strings (trailing newlines removed), except that a value
 *   that is a decimal integer in JSON syntax (-?(0|[1-9][0-9]*), at most
 *   20 digits) is emitted as a number.  A failed get is emitted as
 *   {"error":"MESSAGE"}.  A '*' with no instances gives an empty object.
 * - help: one line per table entry: the verbs ("get", "set", "get,set",
 *   or "ls" for a pure list entry), the path pattern, the help text, and
 *   for set "[required: K...; optional: K...]" or "[value]".
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
                           const struct ctl_kv *kv, GString *out, GString *err);
/* Append the names a '*' can take at this point (args hold the names of
 * the earlier '*'s) to names (g_strdup'd strings).
 */
typedef int (*ctl_list_fn) (void *opaque, char **args, GPtrArray *names);
/* Whether name (the last of args) exists at this point, also when the
 * list does not show it (an alias, as a device's brmrN).
 */
typedef bool (*ctl_has_fn) (void *opaque, char **args);

#define CTL_F_NO_STATUS 0x1 /* not shown by status (large or slow) */
#define CTL_F_RAW_VALUE 0x2 /* set takes a raw value, not key=value */

struct ctl_cmd {
  const char *path; /* "rmr-server/pools/STAR/state" (STAR = *) */
  ctl_get_fn get;
  ctl_set_fn set;
  ctl_list_fn list; /* for paths ending in '*': enumerate */
  ctl_has_fn has;   /* with list, optional: the names that exist when the
                     * list does not show them all */
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

/* Additions ---------------------------------------------------------- */

/* Details of the declarations above:
 * - ctl_dispatch () replaces the contents of reply; ctl_request () appends
 *   to out and err.  ctl_request () refuses locally a line longer than
 *   CTL_LINE_MAX or containing '\n'; its connection errors read "control
 *   socket PATH: connect: STRERROR".
 * - A list function returns 0, or non-zero when it cannot list: the
 *   request then fails with "cannot list PATH".
 * - args, value and kv are valid only during the handler call.
 */

/* The server reads a request and writes its reply each within this time. */
#define CTL_IO_TIMEOUT_MS 5000
/* ctl_request waits this long for the reply (handlers may be slow: a
 * join can wait for a peer's timeout).
 */
#define CTL_CLIENT_TIMEOUT_MS 120000
/* The largest reply ctl_request accepts. */
#define CTL_REPLY_MAX (64 * 1024 * 1024)

/* Check a table against the rules above (path syntax, at most
 * CTL_MAX_ARGS '*', no duplicate path, no attribute that is also a
 * directory, list only on paths ending in '*', keys only with a set and
 * not with CTL_F_RAW_VALUE, well-formed keys).  Returns 0, or -1 with a
 * message naming the entry in err.  ctl_server_start () refuses a table
 * that fails it.
 */
int ctl_table_check (const struct ctl_cmd *table, size_t n, GString *err);

/* Called by the server thread after each request with the request line,
 * ctl_dispatch's result (0 or -1) and the reply, so the process can log
 * the outcome through its own log domain (common/ never prints).
 */
typedef void (*ctl_log_fn) (void *opaque, const char *request, int result,
                            const char *reply);

/* ctl_server_start () with a log hook (NULL: none).
 *
 * Both return NULL with errno set and a message (error.h): EADDRINUSE if
 * a live server listens on path (a stale socket, one nobody listens on, is
 * replaced), EEXIST if path exists and is not a socket, ENAMETOOLONG,
 * EINVAL for a bad table, or the errno of the failing call.  The socket
 * has mode 0600.  ctl_server_stop () unlinks it only if it is still the
 * file this server created.
 */
struct ctl_server *ctl_server_start_full (const char *path,
                                          const struct ctl_cmd *table, size_t n,
                                          void *opaque, ctl_log_fn log);

#endif /* RMR_CTL_H */
