/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The admin guide's client side as librmr's public API (rmr_admin_*,
 * rmr_device_*), used by a program that is not nbdkit: the control socket
 * answers the guide's tree, requests reach the program's log hook with
 * their outcome, and the device side sees only mapped pools.  No storage
 * node is needed for these steps (nothing connects before pool_enable).
 */
#undef NDEBUG
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "ctl.h"
#include "rmr/rmr.h"

static char *sock;
static unsigned nlog, nfailed;
static char last[512];

static void
log_hook (void *opaque, int failed, const char *request, const char *reply)
{
  g_assert_true (opaque == &nlog);
  nlog++;
  nfailed += failed;
  g_snprintf (last, sizeof last, "%s -> %s", request, reply);
}

/* One request; its reply (ok body or error) in out. */
static int
req (const char *line, GString *out)
{
  g_autoptr (GString) err = g_string_new (NULL);
  int r;

  g_string_truncate (out, 0);
  r = ctl_request (sock, line, out, err);
  if (r < 0)
    g_string_assign (out, err->str);
  return r;
}

static void
test_flow (void)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autofree char *dir = g_dir_make_tmp ("rmr-admin-XXXXXX", NULL);
  struct rmr_pool_config tmpl;
  struct rmr_pool *pool = NULL;
  char **names;

  g_assert_nonnull (dir);
  sock = g_build_filename (dir, "c.ctl", NULL);
  rmr_pool_config_init (&tmpl);
  tmpl.timeout_ms = 2000;
  rmr_admin_set_template (&tmpl);
  g_assert_cmpint (rmr_admin_start (sock, log_hook, &nlog), ==, 0);

  g_assert_cmpint (req ("set rmr-client/ctl/join_pool poolname=a", out), ==, 0);
  g_assert_cmpint (req ("get rmr-client/pools/a/state", out), ==, 0);
  g_assert_cmpstr (out->str, ==, "joined\n");
  g_assert_cmpint (req ("set rmr-client/pools/a/add_sess "
                        "sessname=s1 path=tcp:127.0.0.1:1 mode=create",
                        out),
                   ==, 0);
  g_assert_cmpuint (nlog, ==, 3);
  g_assert_cmpuint (nfailed, ==, 0);

  /* A refused change reaches the hook as failed, with the message. */
  g_assert_cmpint (req ("set rmr-client/pools/a/leave_pool 1", out), <, 0);
  g_assert_nonnull (strstr (out->str, "still has 1 session"));
  g_assert_cmpuint (nfailed, ==, 1);
  g_assert_nonnull (strstr (last, "leave_pool 1 -> pool 'a' still has"));

  /* Joined is no device. */
  g_assert_null (rmr_device_get ("a", &pool));
  g_assert_cmpint (errno, ==, ENOENT);
  g_assert_nonnull (strstr (rmr_get_error (), "not mapped"));
  g_assert_null (rmr_device_get ("brmr0", &pool));
  g_assert_null (rmr_device_default ());
  names = rmr_device_names ();
  g_assert_nonnull (names);
  g_assert_null (names[0]);
  rmr_strv_free (names);

  g_assert_cmpint (req ("set rmr-client/pools/a/sessions/s1/del_sess "
                        "mode=delete",
                        out),
                   ==, 0);
  g_assert_cmpint (req ("set rmr-client/pools/a/leave_pool 1", out), ==, 0);
  g_assert_cmpint (req ("ls rmr-client/pools", out), ==, 0);
  g_assert_cmpstr (out->str, ==, "");

  rmr_admin_stop ();
  g_assert_false (g_file_test (sock, G_FILE_TEST_EXISTS));
  g_rmdir (dir);
  g_free (sock);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/admin/flow", test_flow);
  return g_test_run ();
}
