/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The walk of the control table (ctl.h, DESIGN 8): ls, status and
 * status --json expand the table's '*' segments into concrete paths; help
 * prints the same table; ctl_table_check () checks a table against the
 * dispatcher's rules; ctl_json_string () escapes a string for JSON.
 *
 * Data structures: the walk treats the table as an implicit tree: at depth
 * d the candidate entries share the same first d pattern segments; they
 * are grouped by their next segment, a literal group is descended once, a
 * '*' group once per name its list entry gives (sorted by strcmp).  The
 * concrete path and the '*' captures (args) are stacks in struct walk; a
 * struct walk_ops per verb decides which leaves to visit and what to print
 * on entering a directory, at a leaf and on leaving.  Nothing survives
 * the request.
 *
 * Locking: none; the list and get handlers take what they need (ctl.h).
 */
#include <assert.h>
#include <string.h>

#include "ctl.h"
#include "ctl-internal.h"
#include "util.h"

/* The walk: ls, status, status --json ------------------------------------- */

static gint
cmp_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

struct walk;

struct walk_ops {
  bool (*want) (const struct ctl_cmd *c); /* a leaf to visit? */
  void (*enter) (struct walk *w, const char *seg);
  void (*leave) (struct walk *w);
  void (*leaf) (struct walk *w, size_t idx);
};

struct walk {
  const struct ctl_tab *t;
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
  ctl_append_joined (s, (gchar **) w->path->pdata, w->path->len);
}

/* Can the walk reach entry idx: does every '*' of it have a list entry
 * or a name in the filter?
 */
static bool
walk_reachable (const struct walk *w, size_t idx)
{
  const struct ctl_pat *p = &w->t->pat[idx];

  for (unsigned i = w->nfilter; i < p->nseg; i++)
    if (ctl_is_star (p->seg[i]) && ctl_tab_find_list (w->t, p, i + 1) < 0)
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
  const struct ctl_tab *t = w->t;
  const struct ctl_pat *p = &t->pat[g_array_index (sub, size_t, 0)];
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  ssize_t l = ctl_tab_find_list (t, p, depth + 1);
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
  if (depth < w->nfilter && !ctl_names_contain (names, w->filter[depth])) {
    if (w->miss->len == 0)
      ctl_append_no_such (w->miss, p, depth, w->filter[depth]);
    return 0;
  }
  for (guint i = 0; i < names->len && r == 0; i++) {
    const char *name = g_ptr_array_index (names, i);

    /* A name that cannot be a path segment is not reachable. */
    if (name[0] == '\0' || strchr (name, '/') || ctl_is_star (name))
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
  const struct ctl_tab *t = w->t;

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
    const struct ctl_pat *p = &t->pat[g_array_index (cands, size_t, i)];
    g_autoptr (GArray) sub = NULL;
    const char *seg;
    bool seen = false;
    int r;

    if (p->nseg <= depth)
      continue;
    seg = p->seg[depth];
    for (guint j = 0; j < i && !seen; j++) {
      const struct ctl_pat *q = &t->pat[g_array_index (cands, size_t, j)];

      seen = q->nseg > depth && strcmp (q->seg[depth], seg) == 0;
    }
    if (seen)
      continue;

    sub = g_array_new (FALSE, FALSE, sizeof (size_t));
    for (guint j = i; j < cands->len; j++) {
      size_t idx = g_array_index (cands, size_t, j);
      const struct ctl_pat *q = &t->pat[idx];

      if (q->nseg > depth && strcmp (q->seg[depth], seg) == 0)
        g_array_append_val (sub, idx);
    }
    if (!walk_group_wanted (w, sub))
      continue;

    if (ctl_is_star (seg))
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
walk_run (const struct ctl_tab *t, const struct walk_ops *ops,
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
    filter = ctl_path_split (fp, &w.nfilter);
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
    ctl_err_one_line (err);
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

int
ctl_do_walk (const struct ctl_tab *t, enum ctl_walk_kind kind,
             const char *filter_path, GString *reply)
{
  static const struct walk_ops *const ops[] = {
    [CTL_WALK_LS] = &ls_ops,
    [CTL_WALK_STATUS] = &status_ops,
    [CTL_WALK_JSON] = &json_ops,
  };
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);
  bool json = kind == CTL_WALK_JSON;
  int r;

  assert (kind < ARRAY_SIZE (ops));
  if (json)
    g_string_append_c (out, '{');
  r = walk_run (t, ops[kind], filter_path, out, err);
  if (r == -1)
    return ctl_reply_error (reply, err);
  if (json)
    g_string_append (out, "}\n");
  return ctl_reply_ok (reply, out);
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

int
ctl_do_help (const struct ctl_tab *t, GString *reply)
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
  return ctl_reply_ok (reply, out);
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
  if (count > CTL_KV_MAX) {
    g_string_append_printf (err, "%s: more than %u keys", c->path, CTL_KV_MAX);
    return -1;
  }
  return 0;
}

int
ctl_table_check (const struct ctl_cmd *table, size_t n, GString *err)
{
  CTL_CLEANUP_TAB struct ctl_tab t = {0};

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

  ctl_tab_init (&t, table, n, NULL);
  for (size_t i = 0; i < n; i++) {
    const struct ctl_cmd *c = &table[i];
    const struct ctl_pat *p = &t.pat[i];

    for (unsigned j = 0; j < p->nseg; j++) {
      if (p->seg[j][0] == '\0') {
        g_string_append_printf (err, "%s: empty path segment", c->path);
        return -1;
      }
      if (strchr (p->seg[j], '*') && !ctl_is_star (p->seg[j])) {
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
    if (c->list && !ctl_is_star (p->seg[p->nseg - 1])) {
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
      const struct ctl_pat *q = &t.pat[j];

      if (j == i)
        continue;
      if (j < i && strcmp (table[j].path, c->path) == 0) {
        g_string_append_printf (err, "%s: duplicate path", c->path);
        return -1;
      }
      if ((c->get || c->set) && q->nseg > p->nseg &&
          ctl_pat_prefix_equal (p, q, p->nseg)) {
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
