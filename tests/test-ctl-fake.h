/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fake control table shared by the control protocol's unit tests
 * (test-ctl-dispatch.c and test-ctl-socket.c; each test program is one .c
 * file, so the fake is a header of static definitions that each includes
 * once).
 *
 * The fake: pools "beta" and "alpha" (listed unsorted on purpose), alpha
 * has sessions "s1" and "s2@x"; set handlers record what they got in
 * fake.log.  The server test calls the handlers from the server thread
 * while the test thread waits in ctl_request (), so they never overlap.
 * json_all is what "status --json" answers over the whole table.
 */
#ifndef RMR_TEST_CTL_FAKE_H
#define RMR_TEST_CTL_FAKE_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "ctl.h"

/* lock protects fake.log, log_calls and log_result: the server test runs
 * the handlers and the log hook on the server thread.  (The socket already
 * orders them before the reply; the lock makes that visible to race
 * checkers such as helgrind, which does not see GMutex.)
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

struct fake {
  GString *log; /* what the set handlers received */
  bool list_fails;
  bool weird_pool;    /* add a pool with a hostile name */
  unsigned log_calls; /* server log hook */
  int log_result;
};

static struct fake fake;

static const char weird_name[] = "we\"ird\\\x01\xff";

static int
list_pools (void *opaque, char **args, GPtrArray *names)
{
  struct fake *f = opaque;

  assert (args[0] == NULL);
  if (f->list_fails)
    return -1;
  g_ptr_array_add (names, g_strdup ("beta"));
  g_ptr_array_add (names, g_strdup ("alpha"));
  if (f->weird_pool)
    g_ptr_array_add (names, g_strdup (weird_name));
  return 0;
}

static int
list_sessions (void *opaque, char **args, GPtrArray *names)
{
  assert (args[0] != NULL && args[1] == NULL);
  if (strcmp (args[0], "alpha") == 0) {
    g_ptr_array_add (names, g_strdup ("s2@x"));
    g_ptr_array_add (names, g_strdup ("s1"));
  }
  return 0;
}

static int
get_state (void *opaque, char **args, GString *out, GString *err)
{
  assert (args[0] != NULL && args[1] == NULL);
  g_string_append (out, strcmp (args[0], "alpha") == 0 ? "normal" : "no_io");
  return 0;
}

static int
get_member_id (void *opaque, char **args, GString *out, GString *err)
{
  g_string_append (out, strcmp (args[0], "alpha") == 0 ? "42\n" : "43\n");
  return 0;
}

static int
get_map (void *opaque, char **args, GString *out, GString *err)
{
  g_string_append (out, "0 1 1 0\n");
  return 0;
}

static int
get_sync (void *opaque, char **args, GString *out, GString *err)
{
  g_string_append (out, "idle\n");
  return 0;
}

static int
set_sync (void *opaque, char **args, const char *value, const struct ctl_kv *kv,
          GString *out, GString *err)
{
  struct fake *f = opaque;

  assert (kv->n == 0);
  pthread_mutex_lock (&lock);
  g_string_append_printf (f->log, "sync %s [%s]", args[0], value);
  pthread_mutex_unlock (&lock);
  return 0;
}

static int
get_info (void *opaque, char **args, GString *out, GString *err)
{
  g_string_append (out, "a: 1\nb: 2\n\n");
  return 0;
}

static int
get_broken (void *opaque, char **args, GString *out, GString *err)
{
  g_string_append (out, "partial output that must not be shown");
  g_string_append (err, "disk on fire\nsecond line\n");
  return -1;
}

static int
get_sess_state (void *opaque, char **args, GString *out, GString *err)
{
  assert (args[0] && args[1] && args[2] == NULL);
  g_string_append (out, "normal\n");
  return 0;
}

static int
set_del_sess (void *opaque, char **args, const char *value,
              const struct ctl_kv *kv, GString *out, GString *err)
{
  struct fake *f = opaque;
  const char *mode = ctl_kv_get (kv, "mode");

  pthread_mutex_lock (&lock);
  g_string_append_printf (f->log, "del_sess %s %s mode=%s", args[0], args[1],
                          mode ? mode : "(none)");
  pthread_mutex_unlock (&lock);
  return 0;
}

static int
set_join_pool (void *opaque, char **args, const char *value,
               const struct ctl_kv *kv, GString *out, GString *err)
{
  struct fake *f = opaque;
  const char *cs = ctl_kv_get (kv, "chunk_size");

  assert (args[0] == NULL);
  pthread_mutex_lock (&lock);
  g_string_append_printf (f->log, "join %s %s %s", ctl_kv_get (kv, "poolname"),
                          ctl_kv_get (kv, "member_id"), cs ? cs : "-");
  pthread_mutex_unlock (&lock);
  return 0;
}

static int
set_echo (void *opaque, char **args, const char *value, const struct ctl_kv *kv,
          GString *out, GString *err)
{
  for (unsigned i = 0; i < kv->n; i++)
    g_string_append_printf (out, "%s=[%s]\n", kv->key[i], kv->value[i]);
  g_string_append_printf (out, "value=[%s]", value);
  return 0;
}

static int
set_fail (void *opaque, char **args, const char *value, const struct ctl_kv *kv,
          GString *out, GString *err)
{
  return -1;
}

static int
get_version (void *opaque, char **args, GString *out, GString *err)
{
  g_string_append (out, "1.0 \"beta\" \\ tab\t");
  return 0;
}

static int
get_loose (void *opaque, char **args, GString *out, GString *err)
{
  g_string_append_printf (out, "loose %s", args[0]);
  return 0;
}

static const struct ctl_cmd table[] = {
  {.path = "pools/*", .list = list_pools, .help = "the pools"},
  {.path = "pools/*/state", .get = get_state, .help = "state of the pool"},
  {.path = "pools/*/member_id", .get = get_member_id},
  {.path = "pools/*/map", .get = get_map, .flags = CTL_F_NO_STATUS},
  {.path = "pools/*/sync",
   .get = get_sync,
   .set = set_sync,
   .flags = CTL_F_RAW_VALUE,
   .help = "start or stop the resync"},
  {.path = "pools/*/info", .get = get_info},
  {.path = "pools/*/broken", .get = get_broken},
  {.path = "pools/*/sessions/*", .list = list_sessions},
  {.path = "pools/*/sessions/*/state", .get = get_sess_state},
  {.path = "pools/*/sessions/*/del_sess", .set = set_del_sess, .keys = "mode"},
  {.path = "ctl/join_pool",
   .set = set_join_pool,
   .keys = "poolname! member_id! chunk_size",
   .help = "join a pool"},
  {.path = "ctl/echo", .set = set_echo, .keys = "a b c"},
  {.path = "ctl/fail", .set = set_fail},
  {.path = "ctl/version", .get = get_version},
  {.path = "loose/*/x", .get = get_loose},
};

static void
fake_reset (void)
{
  if (fake.log)
    g_string_free (fake.log, TRUE);
  memset (&fake, 0, sizeof fake);
  fake.log = g_string_new (NULL);
}

static const char json_all[] =
  "ok\n"
  "{\"pools\":{"
  "\"alpha\":{\"state\":\"normal\",\"member_id\":42,\"sync\":\"idle\","
  "\"info\":\"a: 1\\nb: 2\","
  "\"broken\":{\"error\":\"disk on fire second line\"},"
  "\"sessions\":{\"s1\":{\"state\":\"normal\"},"
  "\"s2@x\":{\"state\":\"normal\"}}},"
  "\"beta\":{\"state\":\"no_io\",\"member_id\":43,\"sync\":\"idle\","
  "\"info\":\"a: 1\\nb: 2\","
  "\"broken\":{\"error\":\"disk on fire second line\"},"
  "\"sessions\":{}}},"
  "\"ctl\":{\"version\":\"1.0 \\\"beta\\\" \\\\ tab\\t\"}}\n";

#endif /* RMR_TEST_CTL_FAKE_H */
