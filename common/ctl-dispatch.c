/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control dispatcher (ctl.h, DESIGN 8): the one place that runs a
 * request line against a command table.  It checks the line, splits it
 * into a verb and its words, matches the path against the table's
 * patterns (a literal segment beats a '*'), checks that every instance a
 * '*' names exists, parses and checks a set's key=value arguments, calls
 * the handler and formats the reply.  ls, status and help are the walk's
 * (ctl-walk.c); the socket server and the client are in ctl-socket.c.
 *
 * Data structures: a dispatch splits every path pattern of the table into
 * segments once (struct ctl_tab, ctl-internal.h, freed when the request is
 * answered); nothing survives between requests.
 *
 * A set value is parsed into struct ctl_kv by copying it into one scratch
 * buffer of the same size: keys and unquoted values are copied, quotes
 * dropped, each piece NUL-terminated, and kv points into that buffer for
 * the duration of the handler call.
 *
 * Locking: the dispatcher has no state and takes no lock; the handlers
 * take what they need (ctl.h).
 */
#include <stdarg.h>
#include <string.h>

#include "ctl.h"
#include "ctl-internal.h"
#include "util.h"

/* Table split into segments ---------------------------------------------- */

void
ctl_tab_init (struct ctl_tab *t, const struct ctl_cmd *table, size_t n,
              void *opaque)
{
  t->cmd = table;
  t->n = n;
  t->opaque = opaque;
  t->pat = g_new0 (struct ctl_pat, n);
  for (size_t i = 0; i < n; i++) {
    struct ctl_pat *p = &t->pat[i];

    p->seg = g_strsplit (table[i].path ? table[i].path : "", "/", -1);
    p->nseg = g_strv_length (p->seg);
    for (unsigned j = 0; j < p->nseg; j++)
      p->nstar += ctl_is_star (p->seg[j]);
  }
}

void
ctl_tab_cleanup (struct ctl_tab *t)
{
  for (size_t i = 0; i < t->n; i++)
    g_strfreev (t->pat[i].seg);
  g_free (t->pat);
}

/* Do the first len segments of two patterns agree? */
bool
ctl_pat_prefix_equal (const struct ctl_pat *a, const struct ctl_pat *b,
                      unsigned len)
{
  if (a->nseg < len || b->nseg < len)
    return false;
  for (unsigned i = 0; i < len; i++)
    if (strcmp (a->seg[i], b->seg[i]) != 0)
      return false;
  return true;
}

/* Split a request path into segments; NULL if a segment is empty. */
gchar **
ctl_path_split (const char *path, unsigned *nseg)
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
pat_match (const struct ctl_pat *p, gchar **req, unsigned nreq, char **args)
{
  unsigned k = 0;

  if (p->nseg != nreq || p->nstar > CTL_MAX_ARGS)
    return false;
  for (unsigned i = 0; i < nreq; i++) {
    if (ctl_is_star (p->seg[i]))
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
pat_more_specific (const struct ctl_pat *a, const struct ctl_pat *b)
{
  for (unsigned i = 0; i < a->nseg; i++) {
    bool sa = ctl_is_star (a->seg[i]), sb = ctl_is_star (b->seg[i]);

    if (sa != sb)
      return sb;
  }
  return false;
}

/* The entry matching the request segments, or -1; args as pat_match. */
static ssize_t
tab_find (const struct ctl_tab *t, gchar **req, unsigned nreq, char **args)
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
ssize_t
ctl_tab_find_list (const struct ctl_tab *t, const struct ctl_pat *p,
                   unsigned len)
{
  for (size_t i = 0; i < t->n; i++)
    if (t->cmd[i].list && t->pat[i].nseg == len &&
        ctl_pat_prefix_equal (&t->pat[i], p, len))
      return i;
  return -1;
}

/* Is the request path a proper prefix of some entry (a directory)? */
static bool
tab_is_dir (const struct ctl_tab *t, gchar **req, unsigned nreq)
{
  for (size_t i = 0; i < t->n; i++) {
    const struct ctl_pat *p = &t->pat[i];
    unsigned j;

    if (p->nseg <= nreq)
      continue;
    for (j = 0; j < nreq; j++)
      if (!ctl_is_star (p->seg[j]) && strcmp (p->seg[j], req[j]) != 0)
        break;
    if (j == nreq)
      return true;
  }
  return false;
}

/* "no such pool: NAME": the kind is the literal segment before the '*'
 * without a plural 's' ("sessions" -> "session").
 */
void
ctl_append_no_such (GString *err, const struct ctl_pat *p, unsigned star,
                    const char *name)
{
  const char *kind = star > 0 ? p->seg[star - 1] : NULL;
  size_t len;

  if (kind == NULL || ctl_is_star (kind)) {
    g_string_append_printf (err, "no such entry: %s", name);
    return;
  }
  len = strlen (kind);
  if (len > 1 && kind[len - 1] == 's' && kind[len - 2] != 's')
    len--;
  g_string_append_printf (err, "no such %.*s: %s", (int) len, kind, name);
}

bool
ctl_names_contain (GPtrArray *names, const char *name)
{
  for (guint i = 0; i < names->len; i++)
    if (strcmp (g_ptr_array_index (names, i), name) == 0)
      return true;
  return false;
}

void
ctl_append_joined (GString *out, gchar **seg, unsigned n)
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
check_instances (const struct ctl_tab *t, size_t idx, gchar **req, char **args,
                 GString *err)
{
  const struct ctl_pat *p = &t->pat[idx];
  unsigned k = 0;

  for (unsigned i = 0; i < p->nseg; i++) {
    char *a[CTL_MAX_ARGS + 1];
    ssize_t l;

    if (!ctl_is_star (p->seg[i]))
      continue;
    l = ctl_tab_find_list (t, p, i + 1);
    if (l >= 0 && t->cmd[l].has) {
      memcpy (a, args, (k + 1) * sizeof a[0]);
      a[k + 1] = NULL;
      if (!t->cmd[l].has (t->opaque, a)) {
        ctl_append_no_such (err, p, i, args[k]);
        return -1;
      }
    }
    else if (l >= 0) {
      g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

      memcpy (a, args, k * sizeof a[0]);
      a[k] = NULL;
      if (t->cmd[l].list (t->opaque, a, names) != 0) {
        g_string_append (err, "cannot list ");
        ctl_append_joined (err, req, i);
        return -1;
      }
      if (!ctl_names_contain (names, args[k])) {
        ctl_append_no_such (err, p, i, args[k]);
        return -1;
      }
    }
    k++;
  }
  return 0;
}

/* Replies ---------------------------------------------------------------- */

/* Make err one line: no trailing blanks, newlines turned into spaces. */
void
ctl_err_one_line (GString *err)
{
  while (err->len > 0 && g_ascii_isspace (err->str[err->len - 1]))
    g_string_truncate (err, err->len - 1);
  for (gsize i = 0; i < err->len; i++)
    if (err->str[i] == '\n' || err->str[i] == '\r')
      err->str[i] = ' ';
}

int
ctl_reply_error (GString *reply, GString *err)
{
  ctl_err_one_line (err);
  g_string_truncate (reply, 0);
  g_string_append (reply, "error: ");
  g_string_append_len (reply, err->str, err->len);
  g_string_append_c (reply, '\n');
  return -1;
}

int
ctl_reply_errorf (GString *reply, const char *fmt, ...)
{
  g_autoptr (GString) err = g_string_new (NULL);
  va_list ap;

  va_start (ap, fmt);
  g_string_append_vprintf (err, fmt, ap);
  va_end (ap);
  return ctl_reply_error (reply, err);
}

int
ctl_reply_ok (GString *reply, const GString *body)
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
  ctl_err_one_line (err);
  if (err->len == 0)
    g_string_append_printf (err, "%s %s: failed", verb, path);
  return ctl_reply_error (reply, err);
}

/* key=value ---------------------------------------------------------------- */

const char *
ctl_kv_get (const struct ctl_kv *kv, const char *key)
{
  for (unsigned i = 0; i < kv->n && i < CTL_KV_MAX; i++)
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

    while (ctl_is_blank (*r))
      r++;
    if (*r == '\0')
      return 0;

    tok = key = r;
    while (*r != '\0' && *r != '=' && !ctl_is_blank (*r))
      r++;
    klen = r - key;
    if (*r != '=' || klen == 0) {
      while (*r != '\0' && !ctl_is_blank (*r))
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
      if (*r != '\0' && !ctl_is_blank (*r)) {
        g_string_append_printf (err,
                                "%s: unexpected text after the closing quote "
                                "in value of '%s'",
                                what, kout);
        return -1;
      }
    }
    else {
      while (*r != '\0' && !ctl_is_blank (*r)) {
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
    if (kv->n == CTL_KV_MAX) {
      g_string_append_printf (err, "%s: too many keys (at most %u)", what,
                              CTL_KV_MAX);
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
resolve (const struct ctl_tab *t, const char *verb, const char *path,
         gchar ***req_out, char **args, GString *reply)
{
  g_autoptr (GString) err = g_string_new (NULL);
  g_auto (GStrv) req = NULL;
  unsigned nreq = 0;
  ssize_t idx = -1;

  req = ctl_path_split (path, &nreq);
  if (req)
    idx = tab_find (t, req, nreq, args);
  if (idx >= 0 && check_instances (t, idx, req, args, err) == -1) {
    ctl_reply_error (reply, err);
    return -1;
  }
  if (idx < 0 || (t->cmd[idx].get == NULL && t->cmd[idx].set == NULL)) {
    if (req && (idx >= 0 || tab_is_dir (t, req, nreq)))
      ctl_reply_errorf (reply, "%s %s: is a directory (try: ls %s)", verb, path,
                        path);
    else
      ctl_reply_errorf (reply, "no such attribute: %s", path);
    return -1;
  }
  *req_out = g_steal_pointer (&req);
  return idx;
}

static int
do_get (const struct ctl_tab *t, const char *path, GString *reply)
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
    return ctl_reply_errorf (reply, "get %s: not readable (write-only)", path);
  if (t->cmd[idx].get (t->opaque, args, out, err) != 0)
    return reply_handler_error (reply, err, "get", path);
  return ctl_reply_ok (reply, out);
}

static int
do_set (const struct ctl_tab *t, const char *path, const char *value,
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
    return ctl_reply_errorf (reply, "set %s: not writable", path);

  if (c->flags & CTL_F_RAW_VALUE) {
    if (*value == '\0')
      return ctl_reply_errorf (reply, "set %s: missing value", path);
  }
  else if (c->keys == NULL || c->keys[0] == '\0') {
    if (*value != '\0')
      return ctl_reply_errorf (reply, "set %s: takes no value", path);
  }
  else {
    buf = g_malloc (strlen (value) + 1);
    if (kv_parse (what, value, buf, &kv, err) == -1 ||
        kv_check (what, c->keys, &kv, err) == -1)
      return ctl_reply_error (reply, err);
  }

  if (c->set (t->opaque, args, value, &kv, out, err) != 0)
    return reply_handler_error (reply, err, "set", path);
  return ctl_reply_ok (reply, out);
}

/* The dispatcher --------------------------------------------------------- */

/* Next blank-separated word of *s (NULL at the end), advancing *s. */
static char *
next_word (char **s)
{
  char *p = *s, *word;

  while (ctl_is_blank (*p))
    p++;
  if (*p == '\0') {
    *s = p;
    return NULL;
  }
  word = p;
  while (*p != '\0' && !ctl_is_blank (*p))
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
  CTL_CLEANUP_TAB struct ctl_tab t = {0};
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
    return ctl_reply_errorf (reply, "request too long (more than %d bytes)",
                             CTL_LINE_MAX);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = line[i];

    if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
      return ctl_reply_errorf (reply, "request contains a control character");
  }

  copy = g_strndup (line, len);
  rest = copy;
  /* Trailing blanks belong to no word and to no value. */
  end = copy + len;
  while (end > copy && ctl_is_blank (end[-1]))
    *--end = '\0';

  verb = next_word (&rest);
  if (verb == NULL)
    return ctl_reply_errorf (reply, "empty request");

  ctl_tab_init (&t, table, n, opaque);

  if (strcmp (verb, "get") == 0) {
    path = next_word (&rest);
    if (path == NULL || next_word (&rest) != NULL)
      return ctl_reply_errorf (reply, "usage: get PATH");
    return do_get (&t, path, reply);
  }
  if (strcmp (verb, "set") == 0) {
    path = next_word (&rest);
    if (path == NULL)
      return ctl_reply_errorf (reply, "usage: set PATH VALUE");
    while (ctl_is_blank (*rest))
      rest++;
    return do_set (&t, path, rest, reply);
  }
  if (strcmp (verb, "ls") == 0) {
    path = next_word (&rest);
    if (path != NULL && next_word (&rest) != NULL)
      return ctl_reply_errorf (reply, "usage: ls [PATH]");
    return ctl_do_walk (&t, CTL_WALK_LS, path, reply);
  }
  if (strcmp (verb, "status") == 0) {
    bool json = false;
    char *w;

    path = NULL;
    while ((w = next_word (&rest)) != NULL) {
      if (strcmp (w, "--json") == 0)
        json = true;
      else if (w[0] == '-')
        return ctl_reply_errorf (reply, "status: unknown option '%s'", w);
      else if (path == NULL)
        path = w;
      else
        return ctl_reply_errorf (reply, "usage: status [--json] [PATH]");
    }
    return ctl_do_walk (&t, json ? CTL_WALK_JSON : CTL_WALK_STATUS, path,
                        reply);
  }
  if (strcmp (verb, "help") == 0) {
    if (next_word (&rest) != NULL)
      return ctl_reply_errorf (reply, "usage: help");
    return ctl_do_help (&t, reply);
  }
  return ctl_reply_errorf (
    reply,
    "unknown command '%s' (expected get, set, ls, status "
    "or help)",
    verb);
}
