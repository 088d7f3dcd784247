/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control protocol (ctl.h, DESIGN 8): the one dispatcher that runs a
 * request line against a command table, the walk that expands the table's
 * '*' segments into concrete paths for ls, status and JSON, the Unix socket
 * server that feeds the dispatcher, and the client.
 *
 * Data structures: a dispatch splits every path pattern of the table into
 * segments once (struct tab, freed when the request is answered); nothing
 * survives between requests.  The walk treats the table as an implicit
 * tree: at depth d the candidate entries share the same first d pattern
 * segments; they are grouped by their next segment, a literal group is
 * descended once, a '*' group once per name its list entry gives.  The
 * concrete path and the '*' captures (args) are stacks in struct walk.
 *
 * A set value is parsed into struct ctl_kv by copying it into one scratch
 * buffer of the same size: keys and unquoted values are copied, quotes
 * dropped, each piece NUL-terminated, and kv points into that buffer for
 * the duration of the handler call.
 *
 * Locking: the dispatcher has no state and takes no lock.  A server has one
 * thread that answers one connection at a time, so the handlers of one
 * server never run concurrently with each other; they take their own locks
 * against the rest of the process.  struct ctl_server is written before the
 * thread starts and only read afterwards; stop is signalled through an
 * eventfd that the thread polls together with the socket.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "error.h"
#include "util.h"

#define KV_MAX ((unsigned) ARRAY_SIZE (((struct ctl_kv *) 0)->key))

/* Table split into segments ---------------------------------------------- */

struct pat {
  gchar **seg;
  unsigned nseg;
  unsigned nstar;
};

struct tab {
  const struct ctl_cmd *cmd;
  size_t n;
  void *opaque;
  struct pat *pat; /* n entries */
};

static bool
is_star (const char *seg)
{
  return seg[0] == '*' && seg[1] == '\0';
}

static bool
is_blank (char c)
{
  return c == ' ' || c == '\t';
}

static void
tab_init (struct tab *t, const struct ctl_cmd *table, size_t n, void *opaque)
{
  t->cmd = table;
  t->n = n;
  t->opaque = opaque;
  t->pat = g_new0 (struct pat, n);
  for (size_t i = 0; i < n; i++) {
    struct pat *p = &t->pat[i];

    p->seg = g_strsplit (table[i].path ? table[i].path : "", "/", -1);
    p->nseg = g_strv_length (p->seg);
    for (unsigned j = 0; j < p->nseg; j++)
      p->nstar += is_star (p->seg[j]);
  }
}

static void
tab_cleanup (struct tab *t)
{
  for (size_t i = 0; i < t->n; i++)
    g_strfreev (t->pat[i].seg);
  g_free (t->pat);
}
#define CLEANUP_TAB __attribute__ ((cleanup (tab_cleanup)))

/* Do the first len segments of two patterns agree? */
static bool
pat_prefix_equal (const struct pat *a, const struct pat *b, unsigned len)
{
  if (a->nseg < len || b->nseg < len)
    return false;
  for (unsigned i = 0; i < len; i++)
    if (strcmp (a->seg[i], b->seg[i]) != 0)
      return false;
  return true;
}

/* Split a request path into segments; NULL if a segment is empty. */
static gchar **
path_split (const char *path, unsigned *nseg)
{
  gchar **seg = g_strsplit (path, "/", -1);
  unsigned n = g_strv_length (seg);

  for (unsigned i = 0; i < n; i++)
    if (seg[i][0] == '\0') {
      g_strfreev (seg);
      return NULL;
    }
  if (n == 0) {
    g_strfreev (seg);
    return NULL;
  }
  *nseg = n;
  return seg;
}

/* Does pattern p match the request segments?  Fills args with the '*'
 * captures (NULL-terminated).
 */
static bool
pat_match (const struct pat *p, gchar **req, unsigned nreq, char **args)
{
  unsigned k = 0;

  if (p->nseg != nreq || p->nstar > CTL_MAX_ARGS)
    return false;
  for (unsigned i = 0; i < nreq; i++) {
    if (is_star (p->seg[i]))
      args[k++] = req[i];
    else if (strcmp (p->seg[i], req[i]) != 0)
      return false;
  }
  args[k] = NULL;
  return true;
}

/* Of two patterns matching the same path, is a more specific than b (a
 * literal where b has a '*' at the first place they differ)?
 */
static bool
pat_more_specific (const struct pat *a, const struct pat *b)
{
  for (unsigned i = 0; i < a->nseg; i++) {
    bool sa = is_star (a->seg[i]), sb = is_star (b->seg[i]);

    if (sa != sb)
      return sb;
  }
  return false;
}

/* The entry matching the request segments, or -1; args as pat_match. */
static ssize_t
tab_find (const struct tab *t, gchar **req, unsigned nreq, char **args)
{
  char *a[CTL_MAX_ARGS + 1];
  ssize_t best = -1;

  for (size_t i = 0; i < t->n; i++) {
    if (!pat_match (&t->pat[i], req, nreq, a))
      continue;
    if (best == -1 || pat_more_specific (&t->pat[i], &t->pat[best])) {
      best = i;
      memcpy (args, a, sizeof a);
    }
  }
  return best;
}

/* The list entry for the first len segments of pattern p: its path is
 * those segments (ending in '*') and it has a list function; or -1.
 */
static ssize_t
tab_find_list (const struct tab *t, const struct pat *p, unsigned len)
{
  for (size_t i = 0; i < t->n; i++)
    if (t->cmd[i].list && t->pat[i].nseg == len &&
        pat_prefix_equal (&t->pat[i], p, len))
      return i;
  return -1;
}

/* Is the request path a proper prefix of some entry (a directory)? */
static bool
tab_is_dir (const struct tab *t, gchar **req, unsigned nreq)
{
  for (size_t i = 0; i < t->n; i++) {
    const struct pat *p = &t->pat[i];
    unsigned j;

    if (p->nseg <= nreq)
      continue;
    for (j = 0; j < nreq; j++)
      if (!is_star (p->seg[j]) && strcmp (p->seg[j], req[j]) != 0)
        break;
    if (j == nreq)
      return true;
  }
  return false;
}

/* "no such pool: NAME": the kind is the literal segment before the '*'
 * without a plural 's' ("sessions" -> "session").
 */
static void
append_no_such (GString *err, const struct pat *p, unsigned star,
                const char *name)
{
  const char *kind = star > 0 ? p->seg[star - 1] : NULL;
  size_t len;

  if (kind == NULL || is_star (kind)) {
    g_string_append_printf (err, "no such entry: %s", name);
    return;
  }
  len = strlen (kind);
  if (len > 1 && kind[len - 1] == 's' && kind[len - 2] != 's')
    len--;
  g_string_append_printf (err, "no such %.*s: %s", (int) len, kind, name);
}

static gint
cmp_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static bool
names_contain (GPtrArray *names, const char *name)
{
  for (guint i = 0; i < names->len; i++)
    if (strcmp (g_ptr_array_index (names, i), name) == 0)
      return true;
  return false;
}

static void
append_joined (GString *out, gchar **seg, unsigned n)
{
  for (unsigned i = 0; i < n; i++) {
    if (i > 0)
      g_string_append_c (out, '/');
    g_string_append (out, seg[i]);
  }
}

/* Check that every instance named by a '*' of entry idx exists, as far as
 * the table can list it.
 */
static int
check_instances (const struct tab *t, size_t idx, gchar **req, char **args,
                 GString *err)
{
  const struct pat *p = &t->pat[idx];
  unsigned k = 0;

  for (unsigned i = 0; i < p->nseg; i++) {
    char *a[CTL_MAX_ARGS + 1];
    ssize_t l;

    if (!is_star (p->seg[i]))
      continue;
    l = tab_find_list (t, p, i + 1);
    if (l >= 0) {
      g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

      memcpy (a, args, k * sizeof a[0]);
      a[k] = NULL;
      if (t->cmd[l].list (t->opaque, a, names) != 0) {
        g_string_append (err, "cannot list ");
        append_joined (err, req, i);
        return -1;
      }
      if (!names_contain (names, args[k])) {
        append_no_such (err, p, i, args[k]);
        return -1;
      }
    }
    k++;
  }
  return 0;
}

/* Replies ---------------------------------------------------------------- */

/* Make err one line: no trailing blanks, newlines turned into spaces. */
static void
err_one_line (GString *err)
{
  while (err->len > 0 && g_ascii_isspace (err->str[err->len - 1]))
    g_string_truncate (err, err->len - 1);
  for (gsize i = 0; i < err->len; i++)
    if (err->str[i] == '\n' || err->str[i] == '\r')
      err->str[i] = ' ';
}

static int
reply_error (GString *reply, GString *err)
{
  err_one_line (err);
  g_string_truncate (reply, 0);
  g_string_append (reply, "error: ");
  g_string_append_len (reply, err->str, err->len);
  g_string_append_c (reply, '\n');
  return -1;
}

static int G_GNUC_PRINTF (2, 3)
  reply_errorf (GString *reply, const char *fmt, ...)
{
  g_autoptr (GString) err = g_string_new (NULL);
  va_list ap;

  va_start (ap, fmt);
  g_string_append_vprintf (err, fmt, ap);
  va_end (ap);
  return reply_error (reply, err);
}

static int
reply_ok (GString *reply, const GString *body)
{
  g_string_truncate (reply, 0);
  g_string_append (reply, "ok\n");
  if (body && body->len > 0) {
    g_string_append_len (reply, body->str, body->len);
    if (body->str[body->len - 1] != '\n')
      g_string_append_c (reply, '\n');
  }
  return 0;
}

/* Handler failure: its message, or "VERB PATH: failed" if it gave none. */
static int
reply_handler_error (GString *reply, GString *err, const char *verb,
                     const char *path)
{
  err_one_line (err);
  if (err->len == 0)
    g_string_append_printf (err, "%s %s: failed", verb, path);
  return reply_error (reply, err);
}

/* key=value ---------------------------------------------------------------- */

const char *
ctl_kv_get (const struct ctl_kv *kv, const char *key)
{
  for (unsigned i = 0; i < kv->n && i < KV_MAX; i++)
    if (strcmp (kv->key[i], key) == 0)
      return kv->value[i];
  return NULL;
}

/* Parse src (blank-separated key=value tokens) into kv, pointing into buf
 * (at least strlen (src) + 1 bytes).  Messages are prefixed with what.
 */
static int
kv_parse (const char *what, const char *src, char *buf, struct ctl_kv *kv,
          GString *err)
{
  const char *r = src;
  char *w = buf;

  kv->n = 0;
  for (;;) {
    const char *tok, *key;
    char *kout, *vout;
    size_t klen;

    while (is_blank (*r))
      r++;
    if (*r == '\0')
      return 0;

    tok = key = r;
    while (*r != '\0' && *r != '=' && !is_blank (*r))
      r++;
    klen = r - key;
    if (*r != '=' || klen == 0) {
      while (*r != '\0' && !is_blank (*r))
        r++;
      g_string_append_printf (err, "%s: expected key=value, got '%.*s'", what,
                              (int) (r - tok), tok);
      return -1;
    }
    for (size_t i = 0; i < klen; i++)
      if (!g_ascii_isalnum (key[i]) && !strchr ("_.-", key[i])) {
        g_string_append_printf (err,
                                "%s: bad key '%.*s' (letters, digits, '_', "
                                "'.', '-')",
                                what, (int) klen, key);
        return -1;
      }
    r++; /* '=' */
    kout = w;
    memcpy (w, key, klen);
    w += klen;
    *w++ = '\0';

    vout = w;
    if (*r == '\'' || *r == '"') {
      char q = *r++;

      while (*r != '\0' && *r != q)
        *w++ = *r++;
      if (*r == '\0') {
        g_string_append_printf (err, "%s: unterminated quote in value of '%s'",
                                what, kout);
        return -1;
      }
      r++; /* closing quote */
      if (*r != '\0' && !is_blank (*r)) {
        g_string_append_printf (err,
                                "%s: unexpected text after the closing quote "
                                "in value of '%s'",
                                what, kout);
        return -1;
      }
    }
    else {
      while (*r != '\0' && !is_blank (*r)) {
        if (*r == '\'' || *r == '"') {
          g_string_append_printf (err,
                                  "%s: unexpected quote in value of '%s' "
                                  "(quote the whole value)",
                                  what, kout);
          return -1;
        }
        *w++ = *r++;
      }
    }
    *w++ = '\0';

    if (*vout == '\0') {
      g_string_append_printf (err, "%s: empty value for key '%s'", what, kout);
      return -1;
    }
    if (ctl_kv_get (kv, kout) != NULL) {
      g_string_append_printf (err, "%s: duplicate key '%s'", what, kout);
      return -1;
    }
    if (kv->n == KV_MAX) {
      g_string_append_printf (err, "%s: too many keys (at most %u)", what,
                              KV_MAX);
      return -1;
    }
    kv->key[kv->n] = kout;
    kv->value[kv->n] = vout;
    kv->n++;
  }
}

/* Check kv against the entry's keys spec ("a! b c"). */
static int
kv_check (const char *what, const char *spec, const struct ctl_kv *kv,
          GString *err)
{
  g_auto (GStrv) tok = g_strsplit_set (spec ? spec : "", " \t", -1);
  g_autoptr (GString) allowed = g_string_new (NULL);

  for (gchar **s = tok; *s; s++) {
    size_t len = strlen (*s);

    if (len > 0 && (*s)[len - 1] == '!')
      (*s)[len - 1] = '\0';
    if (**s != '\0')
      g_string_append_printf (allowed, "%s%s", allowed->len ? " " : "", *s);
  }

  for (unsigned i = 0; i < kv->n; i++) {
    bool ok = false;

    for (gchar **s = tok; *s && !ok; s++)
      ok = **s != '\0' && strcmp (*s, kv->key[i]) == 0;
    if (!ok) {
      g_string_append_printf (err, "%s: unknown key '%s' (allowed: %s)", what,
                              kv->key[i], allowed->len ? allowed->str : "none");
      return -1;
    }
  }

  /* Required keys: the spec again, this time looking at the '!'. */
  g_strfreev (g_steal_pointer (&tok));
  tok = g_strsplit_set (spec ? spec : "", " \t", -1);
  for (gchar **s = tok; *s; s++) {
    size_t len = strlen (*s);

    if (len < 2 || (*s)[len - 1] != '!')
      continue;
    (*s)[len - 1] = '\0';
    if (ctl_kv_get (kv, *s) == NULL) {
      g_string_append_printf (err, "%s: missing required key '%s'", what, *s);
      return -1;
    }
  }
  return 0;
}

/* get and set ------------------------------------------------------------ */

/* Find the entry for path and check its instances; -1 with the reply set
 * on error.
 */
static ssize_t
resolve (const struct tab *t, const char *verb, const char *path,
         gchar ***req_out, char **args, GString *reply)
{
  g_autoptr (GString) err = g_string_new (NULL);
  g_auto (GStrv) req = NULL;
  unsigned nreq = 0;
  ssize_t idx = -1;

  req = path_split (path, &nreq);
  if (req)
    idx = tab_find (t, req, nreq, args);
  if (idx >= 0 && check_instances (t, idx, req, args, err) == -1) {
    reply_error (reply, err);
    return -1;
  }
  if (idx < 0 || (t->cmd[idx].get == NULL && t->cmd[idx].set == NULL)) {
    if (req && (idx >= 0 || tab_is_dir (t, req, nreq)))
      reply_errorf (reply, "%s %s: is a directory (try: ls %s)", verb, path,
                    path);
    else
      reply_errorf (reply, "no such attribute: %s", path);
    return -1;
  }
  *req_out = g_steal_pointer (&req);
  return idx;
}

static int
do_get (const struct tab *t, const char *path, GString *reply)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);
  g_auto (GStrv) req = NULL;
  char *args[CTL_MAX_ARGS + 1];
  ssize_t idx;

  idx = resolve (t, "get", path, &req, args, reply);
  if (idx < 0)
    return -1;
  if (t->cmd[idx].get == NULL)
    return reply_errorf (reply, "get %s: not readable (write-only)", path);
  if (t->cmd[idx].get (t->opaque, args, out, err) != 0)
    return reply_handler_error (reply, err, "get", path);
  return reply_ok (reply, out);
}

static int
do_set (const struct tab *t, const char *path, const char *value,
        GString *reply)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);
  g_autofree char *what = g_strdup_printf ("set %s", path);
  g_autofree char *buf = NULL;
  g_auto (GStrv) req = NULL;
  char *args[CTL_MAX_ARGS + 1];
  const struct ctl_cmd *c;
  struct ctl_kv kv = {0};
  ssize_t idx;

  idx = resolve (t, "set", path, &req, args, reply);
  if (idx < 0)
    return -1;
  c = &t->cmd[idx];
  if (c->set == NULL)
    return reply_errorf (reply, "set %s: not writable", path);

  if (c->flags & CTL_F_RAW_VALUE) {
    if (*value == '\0')
      return reply_errorf (reply, "set %s: missing value", path);
  }
  else if (c->keys == NULL || c->keys[0] == '\0') {
    if (*value != '\0')
      return reply_errorf (reply, "set %s: takes no value", path);
  }
  else {
    buf = g_malloc (strlen (value) + 1);
    if (kv_parse (what, value, buf, &kv, err) == -1 ||
        kv_check (what, c->keys, &kv, err) == -1)
      return reply_error (reply, err);
  }

  if (c->set (t->opaque, args, value, &kv, out, err) != 0)
    return reply_handler_error (reply, err, "set", path);
  return reply_ok (reply, out);
}

/* The walk: ls, status, status --json ------------------------------------- */

struct walk;

struct walk_ops {
  bool (*want) (const struct ctl_cmd *c); /* a leaf to visit? */
  void (*enter) (struct walk *w, const char *seg);
  void (*leave) (struct walk *w);
  void (*leaf) (struct walk *w, size_t idx);
};

struct walk {
  const struct tab *t;
  const struct walk_ops *ops;
  gchar **filter; /* request path (may be empty) */
  unsigned nfilter;
  GPtrArray *path; /* concrete segments (not owned) */
  char *args[CTL_MAX_ARGS + 1];
  unsigned nargs;
  bool matched;  /* reached the end of filter */
  GString *miss; /* why filter did not match */
  GString *err;  /* fatal error */
  GString *out;
  GArray *first; /* JSON: per open object, no member yet */
};

static void
walk_append_path (struct walk *w, GString *s)
{
  append_joined (s, (gchar **) w->path->pdata, w->path->len);
}

/* Can the walk reach entry idx: does every '*' of it have a list entry
 * or a name in the filter?
 */
static bool
walk_reachable (const struct walk *w, size_t idx)
{
  const struct pat *p = &w->t->pat[idx];

  for (unsigned i = w->nfilter; i < p->nseg; i++)
    if (is_star (p->seg[i]) && tab_find_list (w->t, p, i + 1) < 0)
      return false;
  return true;
}

/* Does the group hold a leaf the walk wants and can reach? */
static bool
walk_group_wanted (const struct walk *w, GArray *sub)
{
  for (guint i = 0; i < sub->len; i++) {
    size_t idx = g_array_index (sub, size_t, i);
    const struct ctl_cmd *c = &w->t->cmd[idx];

    if ((c->get || c->set) && w->ops->want (c) && walk_reachable (w, idx))
      return true;
  }
  return false;
}

static int walk_node (struct walk *w, GArray *cands, unsigned depth);

/* Descend into the group sub (its entries' segment at depth is seg, or
 * '*' with seg the name).  enter and leave only for a directory; a leaf
 * names itself.
 */
static int
walk_descend (struct walk *w, GArray *sub, unsigned depth, const char *seg)
{
  bool dir = false;
  int r;

  for (guint i = 0; i < sub->len && !dir; i++)
    dir = w->t->pat[g_array_index (sub, size_t, i)].nseg > depth + 1;
  if (dir)
    w->ops->enter (w, seg);
  g_ptr_array_add (w->path, (gpointer) seg);
  r = walk_node (w, sub, depth + 1);
  g_ptr_array_set_size (w->path, w->path->len - 1);
  if (dir)
    w->ops->leave (w);
  return r;
}

static int
walk_star (struct walk *w, GArray *sub, unsigned depth)
{
  const struct tab *t = w->t;
  const struct pat *p = &t->pat[g_array_index (sub, size_t, 0)];
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  ssize_t l = tab_find_list (t, p, depth + 1);
  int r = 0;

  if (w->nargs >= CTL_MAX_ARGS)
    return 0;
  w->args[w->nargs] = NULL;
  if (l < 0) {
    /* Cannot be enumerated; a name in the filter is taken on trust, as
     * get and set do.
     */
    if (depth >= w->nfilter)
      return 0;
    g_ptr_array_add (names, g_strdup (w->filter[depth]));
  }
  else if (t->cmd[l].list (t->opaque, w->args, names) != 0) {
    g_string_append (w->err, "cannot list ");
    walk_append_path (w, w->err);
    return -1;
  }
  g_ptr_array_sort (names, cmp_names);
  if (depth < w->nfilter && !names_contain (names, w->filter[depth])) {
    if (w->miss->len == 0)
      append_no_such (w->miss, p, depth, w->filter[depth]);
    return 0;
  }
  for (guint i = 0; i < names->len && r == 0; i++) {
    const char *name = g_ptr_array_index (names, i);

    /* A name that cannot be a path segment is not reachable. */
    if (name[0] == '\0' || strchr (name, '/') || is_star (name))
      continue;
    if (depth < w->nfilter && strcmp (name, w->filter[depth]) != 0)
      continue;
    w->args[w->nargs++] = (char *) name;
    r = walk_descend (w, sub, depth, name);
    w->nargs--;
  }
  return r;
}

/* Visit the node whose candidate entries (indices, in table order) all
 * share the first depth pattern segments.
 */
static int
walk_node (struct walk *w, GArray *cands, unsigned depth)
{
  const struct tab *t = w->t;

  if (depth == w->nfilter)
    w->matched = true;

  if (depth >= w->nfilter)
    for (guint i = 0; i < cands->len; i++) {
      size_t idx = g_array_index (cands, size_t, i);
      const struct ctl_cmd *c = &t->cmd[idx];

      if (t->pat[idx].nseg == depth && (c->get || c->set) && w->ops->want (c))
        w->ops->leaf (w, idx);
    }

  for (guint i = 0; i < cands->len; i++) {
    const struct pat *p = &t->pat[g_array_index (cands, size_t, i)];
    g_autoptr (GArray) sub = NULL;
    const char *seg;
    bool seen = false;
    int r;

    if (p->nseg <= depth)
      continue;
    seg = p->seg[depth];
    for (guint j = 0; j < i && !seen; j++) {
      const struct pat *q = &t->pat[g_array_index (cands, size_t, j)];

      seen = q->nseg > depth && strcmp (q->seg[depth], seg) == 0;
    }
    if (seen)
      continue;

    sub = g_array_new (FALSE, FALSE, sizeof (size_t));
    for (guint j = i; j < cands->len; j++) {
      size_t idx = g_array_index (cands, size_t, j);
      const struct pat *q = &t->pat[idx];

      if (q->nseg > depth && strcmp (q->seg[depth], seg) == 0)
        g_array_append_val (sub, idx);
    }
    if (!walk_group_wanted (w, sub))
      continue;

    if (is_star (seg))
      r = walk_star (w, sub, depth);
    else if (depth < w->nfilter && strcmp (seg, w->filter[depth]) != 0)
      r = 0;
    else
      r = walk_descend (w, sub, depth, seg);
    if (r == -1)
      return -1;
  }
  return 0;
}

/* Run the walk over the whole table, below filter_path (NULL or ""). */
static int
walk_run (const struct tab *t, const struct walk_ops *ops,
          const char *filter_path, GString *out, GString *err)
{
  g_autoptr (GArray) cands = g_array_new (FALSE, FALSE, sizeof (size_t));
  g_autoptr (GPtrArray) path = g_ptr_array_new ();
  g_autoptr (GString) miss = g_string_new (NULL);
  g_autoptr (GArray) first = g_array_new (FALSE, FALSE, sizeof (bool));
  g_auto (GStrv) filter = NULL;
  g_autofree char *fp = g_strdup (filter_path ? filter_path : "");
  struct walk w = {
    .t = t,
    .ops = ops,
    .path = path,
    .miss = miss,
    .err = err,
    .out = out,
    .first = first,
  };
  size_t len = strlen (fp);
  bool root_first = true;

  g_array_append_val (first, root_first); /* the root object */
  while (len > 0 && fp[len - 1] == '/')
    fp[--len] = '\0';
  if (filter_path && filter_path[0] != '\0') {
    filter = path_split (fp, &w.nfilter);
    if (filter == NULL) {
      g_string_append_printf (err, "no such path: %s", filter_path);
      return -1;
    }
    w.filter = filter;
  }

  for (size_t i = 0; i < t->n; i++)
    if (t->pat[i].nseg > 0 && t->pat[i].nstar <= CTL_MAX_ARGS)
      g_array_append_val (cands, i);
  if (walk_node (&w, cands, 0) == -1)
    return -1;
  if (!w.matched) {
    if (miss->len)
      g_string_append_len (err, miss->str, miss->len);
    else
      g_string_append_printf (err, "no such path: %s", filter_path);
    return -1;
  }
  return 0;
}

static void
walk_nop_enter (struct walk *w, const char *seg)
{
}

static void
walk_nop_leave (struct walk *w)
{
}

/* Call the get of entry idx at the current path: 0 with the value (no
 * trailing newlines) in val, or -1 with the one-line message in val.
 */
static int
walk_get (struct walk *w, size_t idx, GString *val)
{
  g_autoptr (GString) err = g_string_new (NULL);
  int r;

  w->args[w->nargs] = NULL;
  r = w->t->cmd[idx].get (w->t->opaque, w->args, val, err);
  if (r != 0) {
    err_one_line (err);
    if (err->len == 0)
      g_string_append (err, "failed");
    g_string_truncate (val, 0);
    g_string_append_len (val, err->str, err->len);
    return -1;
  }
  while (val->len > 0 && val->str[val->len - 1] == '\n')
    g_string_truncate (val, val->len - 1);
  return 0;
}

/* ls */

static bool
want_ls (const struct ctl_cmd *c)
{
  return true;
}

static void
ls_leaf (struct walk *w, size_t idx)
{
  walk_append_path (w, w->out);
  g_string_append (w->out, w->t->cmd[idx].set ? " (w)\n" : "\n");
}

static const struct walk_ops ls_ops = {
  .want = want_ls,
  .enter = walk_nop_enter,
  .leave = walk_nop_leave,
  .leaf = ls_leaf,
};

/* status */

static bool
want_status (const struct ctl_cmd *c)
{
  return c->get && !(c->flags & CTL_F_NO_STATUS);
}

static void
status_leaf (struct walk *w, size_t idx)
{
  g_autoptr (GString) val = g_string_new (NULL);
  int r = walk_get (w, idx, val);

  walk_append_path (w, w->out);
  g_string_append_c (w->out, ':');
  if (r == -1)
    g_string_append_printf (w->out, " error: %s\n", val->str);
  else if (strchr (val->str, '\n') == NULL)
    g_string_append_printf (w->out, "%s%s\n", val->len ? " " : "", val->str);
  else {
    g_auto (GStrv) lines = g_strsplit (val->str, "\n", -1);

    g_string_append_c (w->out, '\n');
    for (gchar **l = lines; *l; l++)
      g_string_append_printf (w->out, "  %s\n", *l);
  }
}

static const struct walk_ops status_ops = {
  .want = want_status,
  .enter = walk_nop_enter,
  .leave = walk_nop_leave,
  .leaf = status_leaf,
};

/* status --json */

static bool
is_json_int (const char *s)
{
  size_t n = 0;

  if (*s == '-')
    s++;
  if (*s == '0')
    return s[1] == '\0';
  while (g_ascii_isdigit (s[n]))
    n++;
  return n > 0 && n <= 20 && s[n] == '\0';
}

static void
json_member (struct walk *w, const char *key)
{
  bool *first = &g_array_index (w->first, bool, w->first->len - 1);

  if (!*first)
    g_string_append_c (w->out, ',');
  *first = false;
  ctl_json_string (w->out, key);
  g_string_append_c (w->out, ':');
}

static void
json_enter (struct walk *w, const char *seg)
{
  bool t = true;

  json_member (w, seg);
  g_string_append_c (w->out, '{');
  g_array_append_val (w->first, t);
}

static void
json_leave (struct walk *w)
{
  g_string_append_c (w->out, '}');
  g_array_set_size (w->first, w->first->len - 1);
}

static void
json_leaf (struct walk *w, size_t idx)
{
  g_autoptr (GString) val = g_string_new (NULL);
  int r = walk_get (w, idx, val);

  json_member (w, w->path->len ? g_ptr_array_index (w->path, w->path->len - 1)
                               : "");
  if (r == -1) {
    g_string_append (w->out, "{\"error\":");
    ctl_json_string (w->out, val->str);
    g_string_append_c (w->out, '}');
  }
  else if (is_json_int (val->str))
    g_string_append_len (w->out, val->str, val->len);
  else
    ctl_json_string (w->out, val->str);
}

static const struct walk_ops json_ops = {
  .want = want_status,
  .enter = json_enter,
  .leave = json_leave,
  .leaf = json_leaf,
};

static int
do_walk (const struct tab *t, const struct walk_ops *ops, bool json,
         const char *filter_path, GString *reply)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);
  int r;

  if (json)
    g_string_append_c (out, '{');
  r = walk_run (t, ops, filter_path, out, err);
  if (r == -1)
    return reply_error (reply, err);
  if (json)
    g_string_append (out, "}\n");
  return reply_ok (reply, out);
}

/* help ------------------------------------------------------------------- */

static void
help_keys (GString *out, const struct ctl_cmd *c)
{
  g_auto (GStrv) tok = NULL;
  g_autoptr (GString) req = g_string_new (NULL);
  g_autoptr (GString) opt = g_string_new (NULL);

  if (c->set == NULL)
    return;
  if (c->flags & CTL_F_RAW_VALUE) {
    g_string_append (out, "  [value]");
    return;
  }
  tok = g_strsplit_set (c->keys ? c->keys : "", " \t", -1);
  for (gchar **s = tok; *s; s++) {
    size_t len = strlen (*s);
    GString *to = opt;

    if (len == 0)
      continue;
    if ((*s)[len - 1] == '!') {
      (*s)[--len] = '\0';
      to = req;
    }
    g_string_append_printf (to, "%s%s", to->len ? " " : "", *s);
  }
  if (req->len == 0 && opt->len == 0)
    return;
  g_string_append (out, "  [");
  if (req->len)
    g_string_append_printf (out, "required: %s", req->str);
  if (req->len && opt->len)
    g_string_append (out, "; ");
  if (opt->len)
    g_string_append_printf (out, "optional: %s", opt->str);
  g_string_append_c (out, ']');
}

static int
do_help (const struct tab *t, GString *reply)
{
  g_autoptr (GString) out = g_string_new (NULL);
  int width = 0;

  for (size_t i = 0; i < t->n; i++)
    if (t->cmd[i].path)
      width = MAX (width, (int) MIN (strlen (t->cmd[i].path), 60));

  for (size_t i = 0; i < t->n; i++) {
    const struct ctl_cmd *c = &t->cmd[i];
    const char *verbs = c->get && c->set ? "get,set"
                        : c->get         ? "get"
                        : c->set         ? "set"
                                         : "ls";
    gsize start = out->len;

    g_string_append_printf (out, "%-7s  %-*s", verbs, width,
                            c->path ? c->path : "");
    if (c->help && c->help[0])
      g_string_append_printf (out, "  %s", c->help);
    help_keys (out, c);
    while (out->len > start && out->str[out->len - 1] == ' ')
      g_string_truncate (out, out->len - 1);
    g_string_append_c (out, '\n');
  }
  return reply_ok (reply, out);
}

/* The dispatcher --------------------------------------------------------- */

/* Next blank-separated word of *s (NULL at the end), advancing *s. */
static char *
next_word (char **s)
{
  char *p = *s, *word;

  while (is_blank (*p))
    p++;
  if (*p == '\0') {
    *s = p;
    return NULL;
  }
  word = p;
  while (*p != '\0' && !is_blank (*p))
    p++;
  if (*p != '\0')
    *p++ = '\0';
  *s = p;
  return word;
}

int
ctl_dispatch (const struct ctl_cmd *table, size_t n, void *opaque,
              const char *line, GString *reply)
{
  CLEANUP_TAB struct tab t = {0};
  g_autofree char *copy = NULL;
  size_t len = strnlen (line, CTL_LINE_MAX + 3);
  char *rest, *verb, *path, *end;

  /* One trailing "\n" or "\r\n" is the line's terminator. */
  if (len > 0 && line[len - 1] == '\n' && len <= CTL_LINE_MAX + 2) {
    len--;
    if (len > 0 && line[len - 1] == '\r')
      len--;
  }
  if (len > CTL_LINE_MAX)
    return reply_errorf (reply, "request too long (more than %d bytes)",
                         CTL_LINE_MAX);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = line[i];

    if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
      return reply_errorf (reply, "request contains a control character");
  }

  copy = g_strndup (line, len);
  rest = copy;
  /* Trailing blanks belong to no word and to no value. */
  end = copy + len;
  while (end > copy && is_blank (end[-1]))
    *--end = '\0';

  verb = next_word (&rest);
  if (verb == NULL)
    return reply_errorf (reply, "empty request");

  tab_init (&t, table, n, opaque);

  if (strcmp (verb, "get") == 0) {
    path = next_word (&rest);
    if (path == NULL || next_word (&rest) != NULL)
      return reply_errorf (reply, "usage: get PATH");
    return do_get (&t, path, reply);
  }
  if (strcmp (verb, "set") == 0) {
    path = next_word (&rest);
    if (path == NULL)
      return reply_errorf (reply, "usage: set PATH VALUE");
    while (is_blank (*rest))
      rest++;
    return do_set (&t, path, rest, reply);
  }
  if (strcmp (verb, "ls") == 0) {
    path = next_word (&rest);
    if (path != NULL && next_word (&rest) != NULL)
      return reply_errorf (reply, "usage: ls [PATH]");
    return do_walk (&t, &ls_ops, false, path, reply);
  }
  if (strcmp (verb, "status") == 0) {
    bool json = false;
    char *w;

    path = NULL;
    while ((w = next_word (&rest)) != NULL) {
      if (strcmp (w, "--json") == 0)
        json = true;
      else if (w[0] == '-')
        return reply_errorf (reply, "status: unknown option '%s'", w);
      else if (path == NULL)
        path = w;
      else
        return reply_errorf (reply, "usage: status [--json] [PATH]");
    }
    return do_walk (&t, json ? &json_ops : &status_ops, json, path, reply);
  }
  if (strcmp (verb, "help") == 0) {
    if (next_word (&rest) != NULL)
      return reply_errorf (reply, "usage: help");
    return do_help (&t, reply);
  }
  return reply_errorf (reply,
                       "unknown command '%s' (expected get, set, ls, status "
                       "or help)",
                       verb);
}

/* Table check ------------------------------------------------------------ */

static bool
valid_key_name (const char *s, size_t len)
{
  if (len == 0)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!g_ascii_isalnum (s[i]) && !strchr ("_.-", s[i]))
      return false;
  return true;
}

static int
check_keys_spec (const struct ctl_cmd *c, GString *err)
{
  g_auto (GStrv) tok = g_strsplit_set (c->keys, " ", -1);
  unsigned count = 0;

  for (gchar **s = tok; *s; s++) {
    size_t len = strlen (*s);

    if (len == 0)
      continue;
    if ((*s)[len - 1] == '!')
      len--;
    if (!valid_key_name (*s, len)) {
      g_string_append_printf (err, "%s: bad key '%s' in keys", c->path, *s);
      return -1;
    }
    for (gchar **o = tok; o < s; o++)
      if (strncmp (*o, *s, len) == 0 &&
          ((*o)[len] == '\0' || ((*o)[len] == '!' && (*o)[len + 1] == '\0'))) {
        g_string_append_printf (err, "%s: key '%.*s' listed twice", c->path,
                                (int) len, *s);
        return -1;
      }
    count++;
  }
  if (count > KV_MAX) {
    g_string_append_printf (err, "%s: more than %u keys", c->path, KV_MAX);
    return -1;
  }
  return 0;
}

int
ctl_table_check (const struct ctl_cmd *table, size_t n, GString *err)
{
  CLEANUP_TAB struct tab t = {0};

  for (size_t i = 0; i < n; i++) {
    const struct ctl_cmd *c = &table[i];

    if (c->path == NULL || c->path[0] == '\0') {
      g_string_append_printf (err, "entry %zu: empty path", i);
      return -1;
    }
    for (const char *p = c->path; *p; p++)
      if ((unsigned char) *p <= ' ' || *p == 0x7f) {
        g_string_append_printf (err, "%s: blank or control character in path",
                                c->path);
        return -1;
      }
  }

  tab_init (&t, table, n, NULL);
  for (size_t i = 0; i < n; i++) {
    const struct ctl_cmd *c = &table[i];
    const struct pat *p = &t.pat[i];

    for (unsigned j = 0; j < p->nseg; j++) {
      if (p->seg[j][0] == '\0') {
        g_string_append_printf (err, "%s: empty path segment", c->path);
        return -1;
      }
      if (strchr (p->seg[j], '*') && !is_star (p->seg[j])) {
        g_string_append_printf (err, "%s: '*' must be a whole segment",
                                c->path);
        return -1;
      }
    }
    if (p->nstar > CTL_MAX_ARGS) {
      g_string_append_printf (err, "%s: more than %d '*'", c->path,
                              CTL_MAX_ARGS);
      return -1;
    }
    if (!c->get && !c->set && !c->list) {
      g_string_append_printf (err, "%s: no get, set or list", c->path);
      return -1;
    }
    if (c->list && !is_star (p->seg[p->nseg - 1])) {
      g_string_append_printf (err, "%s: a list entry must end in '*'", c->path);
      return -1;
    }
    if (!c->set && (c->keys || (c->flags & CTL_F_RAW_VALUE))) {
      g_string_append_printf (err, "%s: keys or raw value without a set",
                              c->path);
      return -1;
    }
    if (c->keys && (c->flags & CTL_F_RAW_VALUE)) {
      g_string_append_printf (err, "%s: keys with a raw value", c->path);
      return -1;
    }
    if (c->flags & ~(unsigned) (CTL_F_NO_STATUS | CTL_F_RAW_VALUE)) {
      g_string_append_printf (err, "%s: unknown flags", c->path);
      return -1;
    }
    if (c->keys && check_keys_spec (c, err) == -1)
      return -1;

    for (size_t j = 0; j < n; j++) {
      const struct pat *q = &t.pat[j];

      if (j == i)
        continue;
      if (j < i && strcmp (table[j].path, c->path) == 0) {
        g_string_append_printf (err, "%s: duplicate path", c->path);
        return -1;
      }
      if ((c->get || c->set) && q->nseg > p->nseg &&
          pat_prefix_equal (p, q, p->nseg)) {
        g_string_append_printf (err,
                                "%s: an attribute is also a directory of "
                                "%s",
                                c->path, table[j].path);
        return -1;
      }
    }
  }
  return 0;
}

/* JSON ------------------------------------------------------------------- */

void
ctl_json_string (GString *out, const char *s)
{
  const char *end = s + strlen (s);

  g_string_append_c (out, '"');
  while (s < end) {
    const char *valid_end;
    unsigned char c = *s;

    /* Invalid UTF-8 would make the document invalid: one U+FFFD per bad
     * byte.
     */
    if (c >= 0x80) {
      g_utf8_validate_len (s, end - s, &valid_end);
      if (valid_end == s) {
        g_string_append (out, "\\ufffd");
        s++;
        continue;
      }
      /* Copy the valid run up to the next ASCII byte. */
      while (s < valid_end && (unsigned char) *s >= 0x80)
        g_string_append_c (out, *s++);
      continue;
    }
    switch (c) {
    case '"': g_string_append (out, "\\\""); break;
    case '\\': g_string_append (out, "\\\\"); break;
    case '\b': g_string_append (out, "\\b"); break;
    case '\f': g_string_append (out, "\\f"); break;
    case '\n': g_string_append (out, "\\n"); break;
    case '\r': g_string_append (out, "\\r"); break;
    case '\t': g_string_append (out, "\\t"); break;
    default:
      if (c < 0x20)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, c);
    }
    s++;
  }
  g_string_append_c (out, '"');
}

/* Socket helpers --------------------------------------------------------- */

static int64_t
now_ms (void)
{
  struct timespec ts;

  if (clock_gettime (CLOCK_MONOTONIC, &ts) == -1)
    abort ();
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
fill_sockaddr (const char *path, struct sockaddr_un *sa)
{
  size_t len = strlen (path);

  if (len == 0)
    return rmr_err (EINVAL, "control socket: empty path");
  if (len >= sizeof sa->sun_path)
    return rmr_err (ENAMETOOLONG,
                    "control socket %s: path too long (at most %zu bytes)",
                    path, sizeof sa->sun_path - 1);
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy (sa->sun_path, path, len + 1);
  return 0;
}

/* Wait until fd is ready for events or the deadline passes; wake_fd (or
 * -1) interrupts.  Returns 1 ready, 0 timed out or woken, -1 error.
 */
static int
wait_fd (int fd, short events, int wake_fd, int64_t deadline)
{
  for (;;) {
    struct pollfd p[2] = {
      {.fd = fd, .events = events},
      {.fd = wake_fd, .events = POLLIN},
    };
    int64_t left = deadline - now_ms ();
    int r;

    if (left <= 0)
      return 0;
    r = poll (p, wake_fd >= 0 ? 2 : 1, (int) MIN (left, INT32_MAX));
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (wake_fd >= 0 && p[1].revents)
      return 0;
    if (p[0].revents)
      return 1;
  }
}

/* Send all of buf on a non-blocking socket before the deadline. */
static int
send_all (int fd, const char *buf, size_t len, int wake_fd, int64_t deadline)
{
  while (len > 0) {
    ssize_t r = send (fd, buf, len, MSG_NOSIGNAL);

    if (r == -1) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
      r = wait_fd (fd, POLLOUT, wake_fd, deadline);
      if (r == 0)
        errno = ETIMEDOUT;
      if (r <= 0)
        return -1;
      continue;
    }
    buf += r;
    len -= r;
  }
  return 0;
}

/* Server ----------------------------------------------------------------- */

struct ctl_server {
  char *path;
  const struct ctl_cmd *table;
  size_t n;
  void *opaque;
  ctl_log_fn log;
  int fd;      /* listening socket */
  int wake_fd; /* eventfd: written by stop */
  dev_t dev;   /* the socket file we created */
  ino_t ino;
  GThread *thread;
};

/* Read one request line (without its '\n') into line; returns 0, or -1
 * with the error reply in reply, or -2 when there is nothing to answer
 * (peer gone, server stopping).
 */
static int
serve_read (struct ctl_server *srv, int c, GString *line, GString *reply)
{
  int64_t deadline = now_ms () + CTL_IO_TIMEOUT_MS;
  g_autofree char *buf = g_malloc (CTL_LINE_MAX + 2);
  size_t len = 0;

  for (;;) {
    char *nl = memchr (buf, '\n', len);
    ssize_t r;

    if (nl) {
      len = nl - buf;
      break;
    }
    if (len == CTL_LINE_MAX + 2) {
      reply_errorf (reply, "request too long (more than %d bytes)",
                    CTL_LINE_MAX);
      return -1;
    }
    r = read (c, buf + len, CTL_LINE_MAX + 2 - len);
    if (r == 0) {
      if (len == 0)
        return -2;
      break; /* a last line without '\n' */
    }
    if (r == -1) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -2;
      r = wait_fd (c, POLLIN, srv->wake_fd, deadline);
      if (r == -1)
        return -2;
      if (r == 0) {
        if (now_ms () < deadline)
          return -2; /* stopping */
        reply_errorf (reply, "timed out waiting for the request");
        return -1;
      }
      continue;
    }
    len += r;
  }
  if (memchr (buf, '\0', len)) {
    reply_errorf (reply, "request contains a NUL byte");
    return -1;
  }
  g_string_append_len (line, buf, len);
  return 0;
}

static void
serve_one (struct ctl_server *srv, int c)
{
  g_autoptr (GString) line = g_string_new (NULL);
  g_autoptr (GString) reply = g_string_new (NULL);
  int r;

  r = serve_read (srv, c, line, reply);
  if (r == -2)
    return;
  if (r == 0)
    r = ctl_dispatch (srv->table, srv->n, srv->opaque, line->str, reply);
  if (srv->log)
    srv->log (srv->opaque, line->str, r, reply->str);
  /* The peer may be gone; nothing to do about a failed send. */
  (void) send_all (c, reply->str, reply->len, srv->wake_fd,
                   now_ms () + CTL_IO_TIMEOUT_MS);
}

static bool
server_stopping (struct ctl_server *srv)
{
  struct pollfd p = {.fd = srv->wake_fd, .events = POLLIN};

  return poll (&p, 1, 0) == 1;
}

static gpointer
server_thread (gpointer data)
{
  struct ctl_server *srv = data;

  for (;;) {
    struct pollfd p[2] = {
      {.fd = srv->fd, .events = POLLIN},
      {.fd = srv->wake_fd, .events = POLLIN},
    };
    int c;

    if (poll (p, 2, -1) == -1) {
      if (errno == EINTR)
        continue;
      g_usleep (100000); /* ENOMEM: transient */
      continue;
    }
    if (p[1].revents)
      break;
    if (!(p[0].revents & POLLIN))
      continue;
    c = accept4 (srv->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c == -1) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM)
        g_usleep (100000); /* do not spin while out of descriptors */
      continue;
    }
    serve_one (srv, c);
    close (c);
    if (server_stopping (srv))
      break;
  }
  return NULL;
}

/* Is a server listening on the socket at path?  1 yes, 0 no (stale), -1
 * error (message set).
 */
static int
socket_is_live (const char *path, const struct sockaddr_un *sa)
{
  CLEANUP_CLOSE int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd == -1)
    return rmr_err (errno, "control socket %s: socket: %s", path,
                    g_strerror (errno));
  if (connect (fd, (const struct sockaddr *) sa, sizeof *sa) == 0)
    return 1;
  if (errno == ECONNREFUSED)
    return 0;
  return rmr_err (errno, "control socket %s: connect: %s", path,
                  g_strerror (errno));
}

static void
server_free (struct ctl_server *srv)
{
  if (srv->fd >= 0)
    close (srv->fd);
  if (srv->wake_fd >= 0)
    close (srv->wake_fd);
  g_free (srv->path);
  g_free (srv);
}

static void
server_unlink (struct ctl_server *srv)
{
  struct stat st;

  if (stat (srv->path, &st) == 0 && st.st_dev == srv->dev &&
      st.st_ino == srv->ino)
    unlink (srv->path);
}

struct ctl_server *
ctl_server_start_full (const char *path, const struct ctl_cmd *table, size_t n,
                       void *opaque, ctl_log_fn log)
{
  g_autoptr (GString) terr = g_string_new (NULL);
  g_autofree char *dir = NULL;
  g_autoptr (GError) gerr = NULL;
  struct ctl_server *srv;
  struct sockaddr_un sa;
  struct stat st;
  int e;

  if (fill_sockaddr (path, &sa) < 0)
    return NULL;
  if (ctl_table_check (table, n, terr) == -1) {
    rmr_err (EINVAL, "control table: %s", terr->str);
    return NULL;
  }

  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0755) == -1) {
    e = errno;
    rmr_err (e, "control socket %s: mkdir %s: %s", path, dir, g_strerror (e));
    return NULL;
  }

  if (lstat (path, &st) == 0) {
    if (!S_ISSOCK (st.st_mode)) {
      rmr_err (EEXIST, "control socket %s: exists and is not a socket", path);
      return NULL;
    }
    switch (socket_is_live (path, &sa)) {
    case 1:
      rmr_err (EADDRINUSE,
               "control socket %s: another server is listening on it", path);
      return NULL;
    case 0:
      if (unlink (path) == -1 && errno != ENOENT) {
        e = errno;
        rmr_err (e, "control socket %s: removing the stale socket: %s", path,
                 g_strerror (e));
        return NULL;
      }
      break;
    default: return NULL;
    }
  }
  else if (errno != ENOENT) {
    e = errno;
    rmr_err (e, "control socket %s: %s", path, g_strerror (e));
    return NULL;
  }

  srv = g_new0 (struct ctl_server, 1);
  srv->path = g_strdup (path);
  srv->table = table;
  srv->n = n;
  srv->opaque = opaque;
  srv->log = log;
  srv->wake_fd = -1;
  srv->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (srv->fd == -1) {
    e = errno;
    rmr_err (e, "control socket %s: socket: %s", path, g_strerror (e));
    goto err;
  }
  if (bind (srv->fd, (struct sockaddr *) &sa, sizeof sa) == -1) {
    e = errno;
    rmr_err (e, "control socket %s: bind: %s", path, g_strerror (e));
    goto err;
  }
  if (stat (path, &st) == -1) {
    e = errno;
    rmr_err (e, "control socket %s: %s", path, g_strerror (e));
    goto err_unlink_path;
  }
  srv->dev = st.st_dev;
  srv->ino = st.st_ino;
  /* Before listen (): nobody can connect while the mode is still wider. */
  if (chmod (path, 0600) == -1 || listen (srv->fd, 16) == -1) {
    e = errno;
    rmr_err (e, "control socket %s: %s", path, g_strerror (e));
    goto err_unlink;
  }
  srv->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (srv->wake_fd == -1) {
    e = errno;
    rmr_err (e, "control socket %s: eventfd: %s", path, g_strerror (e));
    goto err_unlink;
  }
  srv->thread = g_thread_try_new ("rmr-ctl", server_thread, srv, &gerr);
  if (srv->thread == NULL) {
    rmr_err (EAGAIN, "control socket %s: starting the thread: %s", path,
             gerr->message);
    goto err_unlink;
  }
  return srv;

err_unlink:
  server_unlink (srv);
  goto err;
err_unlink_path:
  unlink (path);
err:
  e = errno;
  server_free (srv);
  errno = e;
  return NULL;
}

struct ctl_server *
ctl_server_start (const char *path, const struct ctl_cmd *table, size_t n,
                  void *opaque)
{
  return ctl_server_start_full (path, table, n, opaque, NULL);
}

void
ctl_server_stop (struct ctl_server *srv)
{
  uint64_t one = 1;

  if (srv == NULL)
    return;
  if (write (srv->wake_fd, &one, sizeof one) != sizeof one)
    abort (); /* an eventfd write of 1 cannot fail */
  g_thread_join (srv->thread);
  server_unlink (srv);
  server_free (srv);
}

/* Client ----------------------------------------------------------------- */

int
ctl_request (const char *path, const char *line, GString *out, GString *err)
{
  g_autoptr (GString) reply = g_string_new (NULL);
  g_autoptr (GString) req = NULL;
  CLEANUP_CLOSE int fd = -1;
  struct sockaddr_un sa;
  int64_t deadline;
  char buf[4096];

  if (strlen (line) > CTL_LINE_MAX) {
    g_string_append_printf (err, "request too long (more than %d bytes)",
                            CTL_LINE_MAX);
    return -1;
  }
  if (strchr (line, '\n')) {
    g_string_append (err, "request contains a newline");
    return -1;
  }
  if (fill_sockaddr (path, &sa) < 0) {
    g_string_append (err, rmr_get_error ());
    return -1;
  }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    g_string_append_printf (err, "control socket %s: socket: %s", path,
                            g_strerror (errno));
    return -1;
  }
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) == -1) {
    g_string_append_printf (err, "control socket %s: connect: %s", path,
                            g_strerror (errno));
    return -1;
  }
  if (fcntl (fd, F_SETFL, O_NONBLOCK) == -1) {
    g_string_append_printf (err, "control socket %s: fcntl: %s", path,
                            g_strerror (errno));
    return -1;
  }

  deadline = now_ms () + CTL_CLIENT_TIMEOUT_MS;
  req = g_string_new (line);
  g_string_append_c (req, '\n');
  /* A server that refused the request early may have closed already:
   * its reply, if any, is still to be read.
   */
  if (send_all (fd, req->str, req->len, -1, deadline) == -1 && errno != EPIPE &&
      errno != ECONNRESET) {
    g_string_append_printf (err, "control socket %s: send: %s", path,
                            g_strerror (errno));
    return -1;
  }
  shutdown (fd, SHUT_WR);

  for (;;) {
    ssize_t r = read (fd, buf, sizeof buf);

    if (r == 0)
      break;
    if (r > 0) {
      if (reply->len + r > CTL_REPLY_MAX) {
        g_string_append_printf (err, "control socket %s: reply too large",
                                path);
        return -1;
      }
      g_string_append_len (reply, buf, r);
      continue;
    }
    if (errno == EINTR)
      continue;
    /* A server that closes without reading all we sent resets the
     * connection after its reply (which is read first): the end.
     */
    if (errno == ECONNRESET)
      break;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      r = wait_fd (fd, POLLIN, -1, deadline);
      if (r == 1)
        continue;
      if (r == 0)
        errno = ETIMEDOUT;
    }
    g_string_append_printf (err, "control socket %s: receive: %s", path,
                            g_strerror (errno));
    return -1;
  }

  if (g_str_has_prefix (reply->str, "ok\n")) {
    g_string_append_len (out, reply->str + 3, reply->len - 3);
    return 0;
  }
  if (g_str_has_prefix (reply->str, "error: ")) {
    g_string_erase (reply, 0, strlen ("error: "));
    err_one_line (reply);
    g_string_append_len (err, reply->str, reply->len);
    return -1;
  }
  if (reply->len == 0)
    g_string_append_printf (err,
                            "control socket %s: the server closed the "
                            "connection without a reply",
                            path);
  else
    g_string_append_printf (err, "control socket %s: malformed reply", path);
  return -1;
}
