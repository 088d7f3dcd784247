/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the control dispatcher (common/ctl-dispatch.c and
 * the walk of common/ctl-walk.c): arbitrary bytes as a request line to
 * ctl_dispatch () over a small fake table whose instance names come from
 * the input too, so paths, key=value values, quoting and hostile names
 * (with '/', quotes, control bytes, invalid UTF-8) all reach the parser,
 * the walk and the JSON writer.
 *
 * Input layout: byte 0 chooses a verb prefix to start from (or none, so
 * the verb itself is fuzzed); the bytes up to the first NUL are the
 * request; the NUL-separated pieces after it are the pool names the list
 * function returns.  Checked on every input: the return value agrees with
 * the reply, a reply is "ok\n..." or exactly one "error: ...\n" line, and
 * a status --json reply is valid UTF-8 without raw control characters;
 * ctl_json_string () of the request is valid UTF-8 in quotes without raw
 * control characters.
 *
 * Built with clang -fsanitize=fuzzer, libFuzzer's main () drives it;
 * without libFuzzer, the weak main () of fuzz-main.c replays files or the
 * built-in inputs of fuzz_builtin () below (tests/fuzz/README).
 */
#undef NDEBUG

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "ctl.h"
#include "fuzz.h"
#include "util.h"

struct input {
  GPtrArray *pools; /* names, from the input */
};

static int
list_pools (void *opaque, char **args, GPtrArray *names)
{
  struct input *in = opaque;

  assert (args[0] == NULL);
  for (guint i = 0; i < in->pools->len; i++)
    g_ptr_array_add (names, g_strdup (g_ptr_array_index (in->pools, i)));
  return 0;
}

static int
list_sessions (void *opaque, char **args, GPtrArray *names)
{
  assert (args[0] != NULL && args[1] == NULL);
  g_ptr_array_add (names, g_strdup ("s1"));
  g_ptr_array_add (names, g_strdup (args[0]));
  return 0;
}

/* Echo the captures: names reach the output. */
static int
get_args (void *opaque, char **args, GString *out, GString *err)
{
  for (unsigned i = 0; args[i]; i++) {
    assert (i < CTL_MAX_ARGS);
    g_string_append_printf (out, "%s%s", i ? " " : "", args[i]);
  }
  return 0;
}

static int
get_number (void *opaque, char **args, GString *out, GString *err)
{
  g_string_append_printf (out, "%zu\n", strlen (args[0]));
  return 0;
}

static int
get_fail (void *opaque, char **args, GString *out, GString *err)
{
  g_string_append_printf (err, "cannot read %s\n(second line)", args[0]);
  return -1;
}

static int
set_echo (void *opaque, char **args, const char *value, const struct ctl_kv *kv,
          GString *out, GString *err)
{
  assert (kv->n <= ARRAY_SIZE (kv->key));
  for (unsigned i = 0; i < kv->n; i++) {
    assert (kv->key[i][0] != '\0' && kv->value[i][0] != '\0');
    assert (ctl_kv_get (kv, kv->key[i]) == kv->value[i]);
    g_string_append_printf (out, "%s=%s\n", kv->key[i], kv->value[i]);
  }
  g_string_append (out, value);
  return value[0] == 'x' ? -1 : 0;
}

static const struct ctl_cmd table[] = {
  {.path = "pools/*", .list = list_pools},
  {.path = "pools/*/state", .get = get_args, .help = "state"},
  {.path = "pools/*/size", .get = get_number},
  {.path = "pools/*/map", .get = get_args, .flags = CTL_F_NO_STATUS},
  {.path = "pools/*/sync",
   .get = get_args,
   .set = set_echo,
   .flags = CTL_F_RAW_VALUE},
  {.path = "pools/*/broken", .get = get_fail},
  {.path = "pools/*/sessions/*", .list = list_sessions},
  {.path = "pools/*/sessions/*/state", .get = get_args},
  {.path = "pools/*/sessions/*/del_sess", .set = set_echo, .keys = "mode"},
  {.path = "ctl/join_pool",
   .set = set_echo,
   .keys = "poolname! member_id! chunk_size sync"},
  {.path = "ctl/trigger", .set = set_echo},
  {.path = "loose/*/*/x", .get = get_args},
};

static const char *const prefixes[] = {
  "get pools/", "set pools/", "set ctl/join_pool ", "ls ", "status --json ",
  "status ",    "help",       "ls pools/",
};

static void
check_reply (int r, const GString *reply)
{
  if (r == 0) {
    assert (strncmp (reply->str, "ok\n", 3) == 0);
    return;
  }
  assert (r == -1);
  assert (strncmp (reply->str, "error: ", 7) == 0);
  assert (reply->len > 7 && reply->str[reply->len - 1] == '\n');
  assert (memchr (reply->str, '\n', reply->len) == reply->str + reply->len - 1);
}

/* Is line a status --json request, word for word as ctl_dispatch () reads
 * it (blank-separated words, one trailing "\n" or "\r\n" ignored)?  A
 * path that merely contains "--json" asks for text, which need not be
 * UTF-8.
 */
static bool
is_status_json (const char *line)
{
  g_autofree char *copy = g_strdup (line);
  g_auto (GStrv) words = NULL;
  size_t len = strlen (copy);
  bool status = false, json = false;
  unsigned n = 0;

  if (len > 0 && copy[len - 1] == '\n') {
    copy[--len] = '\0';
    if (len > 0 && copy[len - 1] == '\r')
      copy[--len] = '\0';
  }
  words = g_strsplit_set (copy, " \t", -1);
  for (gchar **w = words; *w; w++) {
    if (**w == '\0')
      continue;
    if (n++ == 0)
      status = strcmp (*w, "status") == 0;
    else
      json |= strcmp (*w, "--json") == 0;
  }
  return status && json;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GString) line = g_string_new (NULL);
  g_autoptr (GString) reply = g_string_new (NULL);
  g_autoptr (GString) js = g_string_new (NULL);
  g_autoptr (GPtrArray) pools = g_ptr_array_new_with_free_func (g_free);
  struct input in = {.pools = pools};
  const uint8_t *nul;
  size_t len;
  int r;

  static bool table_checked;

  if (!table_checked) {
    g_autoptr (GString) err = g_string_new (NULL);

    assert (ctl_table_check (table, ARRAY_SIZE (table), err) == 0);
    table_checked = true;
  }
  if (size == 0 || size > 3 * CTL_LINE_MAX)
    return 0;
  if (data[0] < ARRAY_SIZE (prefixes))
    g_string_append (line, prefixes[data[0]]);
  data++;
  size--;

  nul = memchr (data, '\0', size);
  len = nul ? (size_t) (nul - data) : size;
  g_string_append_len (line, (const char *) data, len);
  if (nul) {
    const uint8_t *p = nul + 1, *end = data + size;

    while (p <= end) {
      const uint8_t *q = memchr (p, '\0', end - p);

      if (q == NULL)
        q = end;
      g_ptr_array_add (pools, g_strndup ((const char *) p, q - p));
      p = q + 1;
    }
  }
  else {
    g_ptr_array_add (pools, g_strdup ("alpha"));
    g_ptr_array_add (pools, g_strdup ("beta"));
  }

  r = ctl_dispatch (table, ARRAY_SIZE (table), &in, line->str, reply);
  check_reply (r, reply);
  if (r == 0 && is_status_json (line->str)) {
    assert (g_utf8_validate (reply->str, reply->len, NULL));
    for (gsize i = 3; i + 1 < reply->len; i++)
      assert ((unsigned char) reply->str[i] >= 0x20);
    assert (reply->str[3] == '{' && reply->str[reply->len - 2] == '}');
  }

  /* The JSON string writer on the raw bytes. */
  ctl_json_string (js, line->str);
  assert (g_utf8_validate (js->str, js->len, NULL));
  for (gsize i = 0; i < js->len; i++)
    assert ((unsigned char) js->str[i] >= 0x20);
  assert (js->len >= 2 && js->str[0] == '"' && js->str[js->len - 1] == '"');
  return 0;
}

/* Built-in inputs: byte 0 (the index in prefixes, or NONE for none) and
 * the rest (request, then NUL-separated pool names).
 */
#define NONE 0xff
#define IN(prefix, s)                                                          \
  {                                                                            \
    (prefix), (s), sizeof (s) - 1                                              \
  }

static const struct {
  uint8_t prefix;
  const char *rest;
  size_t len;
} builtin[] = {
  IN (0, "alpha/state"),
  IN (0, "beta/size\n"),
  IN (0, "gamma/state"),
  IN (0, "alpha/broken"),
  IN (0, "alpha/sessions/alpha/state"),
  IN (0, "alpha"),
  IN (1, "alpha/sync start now"),
  IN (1, "alpha/sync xfail"),
  IN (1, "alpha/sync"),
  IN (1, "alpha/state 1"),
  IN (1, "beta/sessions/s1/del_sess mode=force"),
  IN (1, "beta/sessions/s1/del_sess mode='a b'"),
  IN (1, "beta/sessions/s1/del_sess mode=\"a\"b"),
  IN (2, "poolname=p member_id=3 chunk_size=\"1 2\""),
  IN (2, "poolname=p member_id=3 sync=x\tchunk_size=4k"),
  IN (2, "poolname=p"),
  IN (2, "poolname=p member_id=3 bogus=1"),
  IN (2, "poolname=p poolname=q member_id="),
  IN (2, "poolname='p member_id=3"),
  IN (2, "b@d=1"),
  IN (3, ""),
  IN (3, "pools/alpha/"),
  IN (3, "loose/a"),
  IN (3, "pools//alpha"),
  IN (4, ""),
  IN (4, "pools\0we\"ird\\\0\x01\xff\xc3\x28\0a/b\0*\0\0z"),
  IN (5, "\0alpha\0\0beta"),
  IN (5, "pools/beta/sessions"),
  /* Text status, not JSON: a path containing "--json" (a harness false
   * alarm of the first fuzzing run).
   */
  IN (5, "loose/beets/\xff--json!\xff"),
  IN (4, "loose/\xc3\x28/b"),
  IN (6, ""),
  IN (6, " extra"),
  IN (7, "alpha/sessions/beta"),
  IN (NONE, "get loose/a/b/x"),
  IN (NONE, "get pools/alpha/state\r\n"),
  IN (NONE, "get pools/alpha/state\n\n"),
  IN (NONE, "bogus verb"),
  IN (NONE, "\tset\tctl/trigger\t"),
  IN (NONE, "set ctl/trigger x"),
  IN (NONE, "status --bad"),
  IN (NONE, "status a b"),
  IN (NONE, "   "),
  IN (NONE, ""),
};

void
fuzz_builtin (void)
{
  static char line[CTL_LINE_MAX + 16];

  fuzz_input ("", 0);
  for (size_t i = 0; i < ARRAY_SIZE (builtin); i++) {
    assert (builtin[i].len < sizeof line);
    line[0] = (char) builtin[i].prefix;
    memcpy (line + 1, builtin[i].rest, builtin[i].len);
    fuzz_input (line, 1 + builtin[i].len);
  }

  /* The longest line accepted, and one byte more. */
  line[0] = (char) NONE;
  memcpy (line + 1, "get ", 4);
  memset (line + 5, 'x', CTL_LINE_MAX - 4);
  fuzz_input (line, 1 + CTL_LINE_MAX);
  line[1 + CTL_LINE_MAX] = 'x';
  fuzz_input (line, 2 + CTL_LINE_MAX);
  line[1 + CTL_LINE_MAX] = '\n';
  fuzz_input (line, 2 + CTL_LINE_MAX);
}
