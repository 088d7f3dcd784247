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
  if (r == 0 && strstr (line->str, "--json") &&
      strncmp (line->str, "status", 6) == 0) {
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

/* Byte 0 of each: the index in prefixes, or 0xff for none. */
void
fuzz_builtin (void)
{
  char line[CTL_LINE_MAX + 16];

  FUZZ_INPUT_LITERAL ("\x00alpha/state");
  FUZZ_INPUT_LITERAL ("\x00beta/size\n");
  FUZZ_INPUT_LITERAL ("\x00gamma/state");
  FUZZ_INPUT_LITERAL ("\x00alpha/broken");
  FUZZ_INPUT_LITERAL ("\x00alpha/sessions/alpha/state");
  FUZZ_INPUT_LITERAL ("\x00alpha");
  FUZZ_INPUT_LITERAL ("\x01alpha/sync start now");
  FUZZ_INPUT_LITERAL ("\x01alpha/sync xfail");
  FUZZ_INPUT_LITERAL ("\x01alpha/sync");
  FUZZ_INPUT_LITERAL ("\x01alpha/state 1");
  FUZZ_INPUT_LITERAL ("\x01beta/sessions/s1/del_sess mode=force");
  FUZZ_INPUT_LITERAL ("\x01beta/sessions/s1/del_sess mode='a b'");
  FUZZ_INPUT_LITERAL ("\x01beta/sessions/s1/del_sess mode=\"a\"b");
  FUZZ_INPUT_LITERAL ("\x02poolname=p member_id=3 chunk_size=\"1 2\"");
  FUZZ_INPUT_LITERAL ("\x02poolname=p member_id=3 sync=x\tchunk_size=4k");
  FUZZ_INPUT_LITERAL ("\x02poolname=p");
  FUZZ_INPUT_LITERAL ("\x02poolname=p member_id=3 bogus=1");
  FUZZ_INPUT_LITERAL ("\x02poolname=p poolname=q member_id=");
  FUZZ_INPUT_LITERAL ("\x02poolname='p member_id=3");
  FUZZ_INPUT_LITERAL ("\x02b@d=1");
  FUZZ_INPUT_LITERAL ("\x03");
  FUZZ_INPUT_LITERAL ("\x03pools/alpha/");
  FUZZ_INPUT_LITERAL ("\x03loose/a");
  FUZZ_INPUT_LITERAL ("\x03pools//alpha");
  FUZZ_INPUT_LITERAL ("\x04");
  FUZZ_INPUT_LITERAL ("\x04pools\0we\"ird\\\0\x01\xff\xc3\x28\0a/b\0*\0\0z");
  FUZZ_INPUT_LITERAL ("\x05\0alpha\0\0beta");
  FUZZ_INPUT_LITERAL ("\x05pools/beta/sessions");
  FUZZ_INPUT_LITERAL ("\x06");
  FUZZ_INPUT_LITERAL ("\x06 extra");
  FUZZ_INPUT_LITERAL ("\x07alpha/sessions/beta");
  FUZZ_INPUT_LITERAL ("\xffget loose/a/b/x");
  FUZZ_INPUT_LITERAL ("\xffget pools/alpha/state\r\n");
  FUZZ_INPUT_LITERAL ("\xffget pools/alpha/state\n\n");
  FUZZ_INPUT_LITERAL ("\xffbogus verb");
  FUZZ_INPUT_LITERAL ("\xff\tset\tctl/trigger\t");
  FUZZ_INPUT_LITERAL ("\xffset ctl/trigger x");
  FUZZ_INPUT_LITERAL ("\xffstatus --bad");
  FUZZ_INPUT_LITERAL ("\xffstatus a b");
  FUZZ_INPUT_LITERAL ("\xff   ");
  FUZZ_INPUT_LITERAL ("\xff");
  FUZZ_INPUT_LITERAL ("");

  /* The longest line accepted, and one byte more. */
  line[0] = (char) 0xff;
  memcpy (line + 1, "get ", 4);
  memset (line + 5, 'x', CTL_LINE_MAX - 4);
  fuzz_input (line, 1 + CTL_LINE_MAX);
  line[1 + CTL_LINE_MAX] = 'x';
  fuzz_input (line, 2 + CTL_LINE_MAX);
  line[1 + CTL_LINE_MAX] = '\n';
  fuzz_input (line, 2 + CTL_LINE_MAX);
}
