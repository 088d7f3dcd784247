/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the control dispatcher and walk (common/ctl-dispatch.c,
 * common/ctl-walk.c): ctl_dispatch () with every verb and every error it
 * reports, key=value parsing and quoting, the ls/status/JSON walk over the
 * fake table of test-ctl-fake.h (JSON checked byte for byte and by a small
 * validator), help, ctl_json_string () and the table check.  The socket
 * server and client are tested by test-ctl-socket.c.
 */
#undef NDEBUG

#include <assert.h>
#include <string.h>

#include <glib.h>

#include "ctl.h"
#include "util.h"

#include "test-ctl-fake.h"

/* Dispatch line; the result must agree with the reply. */
static char *
run (const char *line)
{
  GString *reply = g_string_new ("garbage that must be replaced");
  int r = ctl_dispatch (table, ARRAY_SIZE (table), &fake, line, reply);

  if (r == 0)
    g_assert_true (g_str_has_prefix (reply->str, "ok\n"));
  else {
    g_assert_cmpint (r, ==, -1);
    g_assert_true (g_str_has_prefix (reply->str, "error: "));
    /* One line exactly. */
    g_assert_true (strchr (reply->str, '\n') == reply->str + reply->len - 1);
  }
  return g_string_free (reply, FALSE);
}

static void
check (const char *line, const char *expected)
{
  g_autofree char *got = run (line);

  if (strcmp (got, expected) != 0)
    g_test_message ("request: %s", line);
  g_assert_cmpstr (got, ==, expected);
}

/* A tiny JSON validator (RFC 8259): the whole text must be one value
 * (plus a final newline), UTF-8, with valid escapes and no raw control
 * characters in strings.
 */
static bool json_value (const char **p, int depth);

static void
json_ws (const char **p)
{
  while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
    (*p)++;
}

static bool
json_string (const char **p)
{
  if (**p != '"')
    return false;
  (*p)++;
  for (;;) {
    unsigned char c = **p;

    if (c == '"') {
      (*p)++;
      return true;
    }
    if (c < 0x20)
      return false;
    if (c == '\\') {
      (*p)++;
      if (strchr ("\"\\/bfnrt", **p) && **p != '\0')
        (*p)++;
      else if (**p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!g_ascii_isxdigit ((*p)[i]))
            return false;
        *p += 5;
      }
      else
        return false;
      continue;
    }
    (*p)++;
  }
}

static bool
json_number (const char **p)
{
  const char *s = *p;

  if (*s == '-')
    s++;
  if (*s == '0')
    s++;
  else if (*s >= '1' && *s <= '9')
    while (g_ascii_isdigit (*s))
      s++;
  else
    return false;
  if (*s == '.') {
    s++;
    if (!g_ascii_isdigit (*s))
      return false;
    while (g_ascii_isdigit (*s))
      s++;
  }
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-')
      s++;
    if (!g_ascii_isdigit (*s))
      return false;
    while (g_ascii_isdigit (*s))
      s++;
  }
  *p = s;
  return true;
}

static bool
json_container (const char **p, char close, int depth)
{
  (*p)++;
  json_ws (p);
  if (**p == close) {
    (*p)++;
    return true;
  }
  for (;;) {
    json_ws (p);
    if (close == '}') {
      if (!json_string (p))
        return false;
      json_ws (p);
      if (**p != ':')
        return false;
      (*p)++;
    }
    if (!json_value (p, depth + 1))
      return false;
    json_ws (p);
    if (**p == close) {
      (*p)++;
      return true;
    }
    if (**p != ',')
      return false;
    (*p)++;
  }
}

static bool
json_value (const char **p, int depth)
{
  if (depth > 64)
    return false;
  json_ws (p);
  switch (**p) {
  case '{': return json_container (p, '}', depth);
  case '[': return json_container (p, ']', depth);
  case '"': return json_string (p);
  case 't': return strncmp (*p, "true", 4) == 0 && (*p += 4);
  case 'f': return strncmp (*p, "false", 5) == 0 && (*p += 5);
  case 'n': return strncmp (*p, "null", 4) == 0 && (*p += 4);
  default: return json_number (p);
  }
}

static bool
json_valid (const char *text)
{
  const char *p = text;

  if (!g_utf8_validate (text, -1, NULL))
    return false;
  if (!json_value (&p, 0))
    return false;
  json_ws (&p);
  return *p == '\0';
}

/* Tests ------------------------------------------------------------------ */

static void
test_get (void)
{
  fake_reset ();
  check ("get pools/alpha/state", "ok\nnormal\n");
  check ("get pools/beta/state\n", "ok\nno_io\n");
  check ("get pools/beta/state\r\n", "ok\nno_io\n");
  check ("  get\tpools/alpha/member_id  ", "ok\n42\n");
  check ("get pools/alpha/sessions/s2@x/state", "ok\nnormal\n");
  check ("get pools/alpha/info", "ok\na: 1\nb: 2\n\n");
  /* A '*' without a list entry: any name reaches the handler. */
  check ("get loose/anything/x", "ok\nloose anything\n");
  check ("get ctl/version", "ok\n1.0 \"beta\" \\ tab\t\n");
}

static void
test_get_errors (void)
{
  fake_reset ();
  check ("get nope", "error: no such attribute: nope\n");
  check ("get pools/alpha/nope",
         "error: no such attribute: pools/alpha/nope\n");
  check ("get /pools/alpha/state",
         "error: no such attribute: /pools/alpha/state\n");
  check ("get pools//state", "error: no such attribute: pools//state\n");
  check ("get pools/alpha/state/", "error: no such attribute: "
                                   "pools/alpha/state/\n");
  check ("get pools/zeta/state", "error: no such pool: zeta\n");
  check ("get pools/zeta", "error: no such pool: zeta\n");
  check ("get pools/beta/sessions/s1/state", "error: no such session: s1\n");
  check ("get pools/alpha/sessions/s9/del_sess",
         "error: no such session: s9\n");
  check ("get pools", "error: get pools: is a directory (try: ls pools)\n");
  check ("get pools/alpha",
         "error: get pools/alpha: is a directory (try: ls pools/alpha)\n");
  check ("get ctl", "error: get ctl: is a directory (try: ls ctl)\n");
  check ("get ctl/join_pool",
         "error: get ctl/join_pool: not readable (write-only)\n");
  check ("get pools/alpha/sessions/s1/del_sess",
         "error: get pools/alpha/sessions/s1/del_sess: not readable "
         "(write-only)\n");
  check ("get", "error: usage: get PATH\n");
  check ("get a b", "error: usage: get PATH\n");
  /* The handler's message, one line; its partial output dropped. */
  check ("get pools/alpha/broken", "error: disk on fire second line\n");

  fake.list_fails = true;
  check ("get pools/alpha/state", "error: cannot list pools\n");
}

static void
test_set (void)
{
  fake_reset ();
  check ("set ctl/join_pool poolname=ionos_pool member_id=42", "ok\n");
  g_assert_cmpstr (fake.log->str, ==, "join ionos_pool 42 -");
  g_string_truncate (fake.log, 0);
  check ("set ctl/join_pool\tmember_id=7   poolname=p chunk_size=128K ",
         "ok\n");
  g_assert_cmpstr (fake.log->str, ==, "join p 7 128K");

  check ("set ctl/echo a='x y' b=\"it's\" c=''\"'",
         "error: set ctl/echo: unexpected text after the closing quote in "
         "value of 'c'\n");
  check (
    "set ctl/echo a='x y'  b=\"it's\"\tc=\"'\"",
    "ok\na=[x y]\nb=[it's]\nc=[']\nvalue=[a='x y'  b=\"it's\"\tc=\"'\"]\n");
  check ("set ctl/echo c=1 a==2", "ok\nc=[1]\na=[=2]\nvalue=[c=1 a==2]\n");
  check ("set ctl/echo", "ok\nvalue=[]\n");

  g_string_truncate (fake.log, 0);
  check ("set pools/alpha/sync   start now  ", "ok\n");
  g_assert_cmpstr (fake.log->str, ==, "sync alpha [start now]");
  g_string_truncate (fake.log, 0);
  check ("set pools/alpha/sync k='v w'", "ok\n");
  g_assert_cmpstr (fake.log->str, ==, "sync alpha [k='v w']");

  g_string_truncate (fake.log, 0);
  check ("set pools/alpha/sessions/s1/del_sess mode=disassemble", "ok\n");
  g_assert_cmpstr (fake.log->str, ==, "del_sess alpha s1 mode=disassemble");
  g_string_truncate (fake.log, 0);
  check ("set pools/alpha/sessions/s2@x/del_sess", "ok\n");
  g_assert_cmpstr (fake.log->str, ==, "del_sess alpha s2@x mode=(none)");
}

static void
test_set_errors (void)
{
  g_autoptr (GString) many = g_string_new ("set ctl/echo");

  fake_reset ();
  check ("set ctl/join_pool poolname=p member_id=1 foo=bar",
         "error: set ctl/join_pool: unknown key 'foo' (allowed: poolname "
         "member_id chunk_size)\n");
  check ("set ctl/join_pool poolname=p",
         "error: set ctl/join_pool: missing required key 'member_id'\n");
  check ("set ctl/join_pool",
         "error: set ctl/join_pool: missing required key 'poolname'\n");
  check ("set ctl/join_pool poolname=p member_id=1 poolname=q",
         "error: set ctl/join_pool: duplicate key 'poolname'\n");
  check ("set ctl/echo a=", "error: set ctl/echo: empty value for key 'a'\n");
  check ("set ctl/echo a=''", "error: set ctl/echo: empty value for key 'a'\n");
  check ("set ctl/echo a=\"\"",
         "error: set ctl/echo: empty value for key 'a'\n");
  check ("set ctl/echo a='x y",
         "error: set ctl/echo: unterminated quote in value of 'a'\n");
  check ("set ctl/echo a=\"x",
         "error: set ctl/echo: unterminated quote in value of 'a'\n");
  check ("set ctl/echo a='x'y",
         "error: set ctl/echo: unexpected text after the closing quote in "
         "value of 'a'\n");
  check ("set ctl/echo a=x'y'",
         "error: set ctl/echo: unexpected quote in value of 'a' (quote the "
         "whole value)\n");
  check ("set ctl/echo a=1 foo",
         "error: set ctl/echo: expected key=value, got 'foo'\n");
  check ("set ctl/echo =x",
         "error: set ctl/echo: expected key=value, got '=x'\n");
  check ("set ctl/echo 'a=x y'",
         "error: set ctl/echo: bad key ''a' (letters, digits, '_', '.', "
         "'-')\n");
  for (int i = 0; i < 33; i++)
    g_string_append_printf (many, " k%d=%d", i, i);
  check (many->str, "error: set ctl/echo: too many keys (at most 32)\n");

  check ("set pools/alpha/state x",
         "error: set pools/alpha/state: not writable\n");
  check ("set pools/zeta/sync start", "error: no such pool: zeta\n");
  check ("set pools/alpha/sessions/nope/del_sess mode=delete",
         "error: no such session: nope\n");
  check ("set pools/alpha/sync",
         "error: set pools/alpha/sync: missing value\n");
  check ("set pools/alpha/sync   ",
         "error: set pools/alpha/sync: missing value\n");
  check ("set ctl/fail x", "error: set ctl/fail: takes no value\n");
  check ("set ctl/fail", "error: set ctl/fail: failed\n");
  check ("set nope a=b", "error: no such attribute: nope\n");
  check ("set ctl a=b", "error: set ctl: is a directory (try: ls ctl)\n");
  check ("set", "error: usage: set PATH VALUE\n");
  g_assert_cmpuint (fake.log->len, ==, 0);
}

static void
test_request_errors (void)
{
  g_autofree char *longline = NULL;
  g_autofree char *maxline = NULL;
  g_autofree char *expect = NULL;

  fake_reset ();
  check ("", "error: empty request\n");
  check ("\n", "error: empty request\n");
  check (" \t ", "error: empty request\n");
  check ("frobnicate x", "error: unknown command 'frobnicate' (expected get, "
                         "set, ls, status or help)\n");
  check ("GET pools/alpha/state", "error: unknown command 'GET' (expected "
                                  "get, set, ls, status or help)\n");
  check ("get pools/alpha/state\nget x",
         "error: request contains a control character\n");
  check ("get pools/al\x1b[2Jpha/state",
         "error: request contains a control character\n");
  check ("get pools/alpha/state\r",
         "error: request contains a control character\n");
  check ("help me", "error: usage: help\n");
  check ("ls a b", "error: usage: ls [PATH]\n");
  check ("status --yaml", "error: status: unknown option '--yaml'\n");
  check ("status a b", "error: usage: status [--json] [PATH]\n");

  /* Exactly CTL_LINE_MAX bytes is parsed; one more is refused. */
  maxline = g_strnfill (CTL_LINE_MAX, 'x');
  memcpy (maxline, "get ", 4);
  expect = g_strdup_printf ("error: no such attribute: %s\n", maxline + 4);
  check (maxline, expect);
  longline = g_strnfill (CTL_LINE_MAX + 1, 'x');
  memcpy (longline, "get ", 4);
  check (longline, "error: request too long (more than 4096 bytes)\n");
}

static const char ls_all[] = "ok\n"
                             "pools/alpha/state\n"
                             "pools/alpha/member_id\n"
                             "pools/alpha/map\n"
                             "pools/alpha/sync (w)\n"
                             "pools/alpha/info\n"
                             "pools/alpha/broken\n"
                             "pools/alpha/sessions/s1/state\n"
                             "pools/alpha/sessions/s1/del_sess (w)\n"
                             "pools/alpha/sessions/s2@x/state\n"
                             "pools/alpha/sessions/s2@x/del_sess (w)\n"
                             "pools/beta/state\n"
                             "pools/beta/member_id\n"
                             "pools/beta/map\n"
                             "pools/beta/sync (w)\n"
                             "pools/beta/info\n"
                             "pools/beta/broken\n"
                             "ctl/join_pool (w)\n"
                             "ctl/echo (w)\n"
                             "ctl/fail (w)\n"
                             "ctl/version\n";

static void
test_ls (void)
{
  fake_reset ();
  check ("ls", ls_all);
  check ("ls pools/alpha/sessions", "ok\n"
                                    "pools/alpha/sessions/s1/state\n"
                                    "pools/alpha/sessions/s1/del_sess (w)\n"
                                    "pools/alpha/sessions/s2@x/state\n"
                                    "pools/alpha/sessions/s2@x/del_sess (w)\n");
  check ("ls pools/alpha/sessions/s1/", "ok\n"
                                        "pools/alpha/sessions/s1/state\n"
                                        "pools/alpha/sessions/s1/del_sess "
                                        "(w)\n");
  check ("ls pools/beta/sync", "ok\npools/beta/sync (w)\n");
  check ("ls ctl", "ok\nctl/join_pool (w)\nctl/echo (w)\nctl/fail (w)\n"
                   "ctl/version\n");
  /* A pool without sessions: the directory exists, nothing below. */
  check ("ls pools/beta/sessions", "ok\n");
  check ("ls pools/zeta", "error: no such pool: zeta\n");
  check ("ls pools/alpha/sessions/s9", "error: no such session: s9\n");
  check ("ls pools/alpha/nope", "error: no such path: pools/alpha/nope\n");
  check ("ls nope", "error: no such path: nope\n");
  check ("ls pools//alpha", "error: no such path: pools//alpha\n");
  /* The star of "loose" has no list entry: not enumerated, but a name given is
   * taken on trust, as get does.
   */
  check ("ls loose", "error: no such path: loose\n");
  check ("ls loose/any", "ok\nloose/any/x\n");
  check ("status loose/any", "ok\nloose/any/x: loose any\n");

  fake.list_fails = true;
  check ("ls", "error: cannot list pools\n");
}

static const char status_all[] =
  "ok\n"
  "pools/alpha/state: normal\n"
  "pools/alpha/member_id: 42\n"
  "pools/alpha/sync: idle\n"
  "pools/alpha/info:\n"
  "  a: 1\n"
  "  b: 2\n"
  "pools/alpha/broken: error: disk on fire second line\n"
  "pools/alpha/sessions/s1/state: normal\n"
  "pools/alpha/sessions/s2@x/state: normal\n"
  "pools/beta/state: no_io\n"
  "pools/beta/member_id: 43\n"
  "pools/beta/sync: idle\n"
  "pools/beta/info:\n"
  "  a: 1\n"
  "  b: 2\n"
  "pools/beta/broken: error: disk on fire second line\n"
  "ctl/version: 1.0 \"beta\" \\ tab\t\n";

static void
test_status (void)
{
  fake_reset ();
  check ("status", status_all);
  check ("status pools/alpha/sessions",
         "ok\n"
         "pools/alpha/sessions/s1/state: normal\n"
         "pools/alpha/sessions/s2@x/state: normal\n");
  check ("status pools/zeta", "error: no such pool: zeta\n");
}

static void
test_json (void)
{
  g_autofree char *all = NULL;
  g_autofree char *weird = NULL;

  fake_reset ();
  check ("status --json", json_all);
  all = run ("status --json");
  g_assert_true (json_valid (all + 3));
  check ("status pools/alpha/sessions/s1 --json",
         "ok\n{\"pools\":{\"alpha\":{\"sessions\":{\"s1\":{\"state\":"
         "\"normal\"}}}}}\n");
  check ("status --json ctl", "ok\n{\"ctl\":{\"version\":\"1.0 \\\"beta\\\" "
                              "\\\\ tab\\t\"}}\n");

  /* A hostile instance name still gives valid JSON. */
  fake.weird_pool = true;
  weird = run ("status --json");
  g_assert_true (g_str_has_prefix (weird, "ok\n"));
  g_assert_true (json_valid (weird + 3));
  g_assert_nonnull (strstr (weird, "\"we\\\"ird\\\\\\u0001\\ufffd\":{"));
}

static void
test_json_string (void)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
    {"", "\"\""},
    {"plain", "\"plain\""},
    {"q\"b\\s/", "\"q\\\"b\\\\s/\""},
    {"\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""},
    {"\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\""},
    {"caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\""},
    {"bad\xff\xc3(x", "\"bad\\ufffd\\ufffd(x\""},
    {"\xe2\x82", "\"\\ufffd\\ufffd\""},
  };

  for (size_t i = 0; i < ARRAY_SIZE (cases); i++) {
    g_autoptr (GString) s = g_string_new ("prefix:");

    ctl_json_string (s, cases[i].in);
    g_assert_cmpstr (s->str + 7, ==, cases[i].out);
    g_assert_true (json_valid (s->str + 7));
  }
  g_assert_false (json_valid ("{\"a\":1,}"));
  g_assert_false (json_valid ("\"\x01\""));
  g_assert_true (json_valid ("{\"a\":[1,-0.5e3,true,null,\"\\u00e9\"]}\n"));
}

static void
test_help (void)
{
  g_autofree char *help = NULL;
  g_auto (GStrv) lines = NULL;

  fake_reset ();
  help = run ("help");
  g_assert_true (g_str_has_prefix (help, "ok\nls       pools/*  "));
  g_assert_nonnull (strstr (help, "\nget      pools/*/state  "));
  g_assert_nonnull (strstr (help, "  state of the pool\n"));
  g_assert_nonnull (strstr (help, "\nget,set  pools/*/sync  "));
  g_assert_nonnull (strstr (help, "  start or stop the resync  [value]\n"));
  g_assert_nonnull (strstr (help, "\nset      ctl/join_pool  "));
  g_assert_nonnull (strstr (help, "  join a pool  [required: poolname "
                                  "member_id; optional: chunk_size]\n"));
  g_assert_nonnull (strstr (help, "  [optional: mode]\n"));
  g_assert_nonnull (strstr (help, "\nget      ctl/version\n"));
  /* One line per entry. */
  lines = g_strsplit (help, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, ARRAY_SIZE (table) + 2);
}

static int
get_dummy (void *opaque, char **args, GString *out, GString *err)
{
  return 0;
}

static int
set_dummy (void *opaque, char **args, const char *value,
           const struct ctl_kv *kv, GString *out, GString *err)
{
  return 0;
}

static void
check_bad_table (const struct ctl_cmd *t, size_t n, const char *msg)
{
  g_autoptr (GString) err = g_string_new (NULL);

  g_assert_cmpint (ctl_table_check (t, n, err), ==, -1);
  g_assert_cmpstr (err->str, ==, msg);
}

static void
test_table_check (void)
{
  g_autoptr (GString) err = g_string_new (NULL);

  g_assert_cmpint (ctl_table_check (table, ARRAY_SIZE (table), err), ==, 0);
  g_assert_cmpuint (err->len, ==, 0);

#define BAD(msg, ...)                                                          \
  do {                                                                         \
    const struct ctl_cmd t[] = {__VA_ARGS__};                                  \
    check_bad_table (t, ARRAY_SIZE (t), msg);                                  \
  } while (0)

  BAD ("entry 0: empty path", {.path = "", .get = get_dummy});
  BAD ("a//b: empty path segment", {.path = "a//b", .get = get_dummy});
  BAD ("/a: empty path segment", {.path = "/a", .get = get_dummy});
  BAD ("a b: blank or control character in path",
       {.path = "a b", .get = get_dummy});
  BAD ("a/b*: '*' must be a whole segment", {.path = "a/b*", .get = get_dummy});
  BAD ("*/*/*/*/*: more than 4 '*'", {.path = "*/*/*/*/*", .get = get_dummy});
  BAD ("a: no get, set or list", {.path = "a"});
  BAD ("a/b: a list entry must end in '*'",
       {.path = "a/b", .list = list_pools});
  BAD ("a: keys or raw value without a set",
       {.path = "a", .get = get_dummy, .keys = "x"});
  BAD ("a: keys with a raw value",
       {.path = "a", .set = set_dummy, .keys = "x", .flags = CTL_F_RAW_VALUE});
  BAD ("a: bad key 'x=' in keys",
       {.path = "a", .set = set_dummy, .keys = "x="});
  BAD ("a: key 'x' listed twice",
       {.path = "a", .set = set_dummy, .keys = "x y! x!"});
  BAD ("a: unknown flags", {.path = "a", .get = get_dummy, .flags = 0x80});
  BAD ("a/b: duplicate path", {.path = "a/b", .get = get_dummy},
       {.path = "a/b", .set = set_dummy});
  BAD ("a/*: an attribute is also a directory of a/*/b",
       {.path = "a/*", .get = get_dummy, .list = list_pools},
       {.path = "a/*/b", .get = get_dummy});
#undef BAD
}

/* A literal entry beats a '*' entry matching the same path. */
static int
get_special (void *opaque, char **args, GString *out, GString *err)
{
  assert (args[0] == NULL);
  g_string_append (out, "special");
  return 0;
}

static void
test_literal_wins (void)
{
  static const struct ctl_cmd t[] = {
    {.path = "x/*/v", .get = get_loose},
    {.path = "x/special/v", .get = get_special},
  };
  g_autoptr (GString) reply = g_string_new (NULL);

  g_assert_cmpint (ctl_dispatch (t, 2, NULL, "get x/special/v", reply), ==, 0);
  g_assert_cmpstr (reply->str, ==, "ok\nspecial\n");
  g_assert_cmpint (ctl_dispatch (t, 2, NULL, "get x/other/v", reply), ==, 0);
  g_assert_cmpstr (reply->str, ==, "ok\nloose other\n");
}

/* A list entry with a has callback: names the list does not show (an
 * alias) reach the handler; unknown ones are refused; ls shows only the
 * listed names.
 */
static bool
has_alias (void *opaque, char **args)
{
  assert (args[0] != NULL && args[1] == NULL);
  return strcmp (args[0], "dev") == 0 || strcmp (args[0], "d0") == 0;
}

static int
list_dev (void *opaque, char **args, GPtrArray *names)
{
  g_ptr_array_add (names, g_strdup ("dev"));
  return 0;
}

static void
test_has (void)
{
  static const struct ctl_cmd t[] = {
    {.path = "devices/*", .list = list_dev, .has = has_alias},
    {.path = "devices/*/v", .get = get_loose},
  };
  g_autoptr (GString) reply = g_string_new (NULL);

  g_assert_cmpint (ctl_dispatch (t, 2, NULL, "get devices/d0/v", reply), ==, 0);
  g_assert_cmpstr (reply->str, ==, "ok\nloose d0\n");
  g_assert_cmpint (ctl_dispatch (t, 2, NULL, "get devices/d1/v", reply), ==,
                   -1);
  g_assert_cmpstr (reply->str, ==, "error: no such device: d1\n");
  g_assert_cmpint (ctl_dispatch (t, 2, NULL, "ls devices", reply), ==, 0);
  g_assert_cmpstr (reply->str, ==, "ok\ndevices/dev/v\n");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ctl/get", test_get);
  g_test_add_func ("/ctl/get-errors", test_get_errors);
  g_test_add_func ("/ctl/set", test_set);
  g_test_add_func ("/ctl/set-errors", test_set_errors);
  g_test_add_func ("/ctl/request-errors", test_request_errors);
  g_test_add_func ("/ctl/ls", test_ls);
  g_test_add_func ("/ctl/status", test_status);
  g_test_add_func ("/ctl/json", test_json);
  g_test_add_func ("/ctl/json-string", test_json_string);
  g_test_add_func ("/ctl/help", test_help);
  g_test_add_func ("/ctl/table-check", test_table_check);
  g_test_add_func ("/ctl/literal-wins", test_literal_wins);
  g_test_add_func ("/ctl/has", test_has);
  return g_test_run ();
}
