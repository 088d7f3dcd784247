/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rmradm sync and rmradm verify: start, stop and follow a resync or an
 * online verify of a pool on a storage node (the daemon's attributes
 * rmr-server/pools/NAME/sync and .../verify), with a progress bar.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "ctl.h"
#include "error.h"
#include "parse.h"
#include "rmradm.h"

/* sync POOL: progress of a resync, start/stop, wait. */

/* The value of "key: value" in a sync status, or def. */
static uint64_t
status_u64 (const char *text, const char *key, uint64_t def)
{
  g_autofree char *k = g_strdup_printf ("\n%s: ", key);
  g_autofree char *t = g_strdup_printf ("\n%s", text);
  const char *p = strstr (t, k);

  return p ? g_ascii_strtoull (p + strlen (k), NULL, 10) : def;
}

static char *
status_str (const char *text, const char *key)
{
  g_autofree char *k = g_strdup_printf ("\n%s: ", key);
  g_autofree char *t = g_strdup_printf ("\n%s", text);
  const char *p = strstr (t, k);

  return p ? g_strndup (p + strlen (k), strcspn (p + strlen (k), "\n"))
           : g_strdup ("?");
}

/* The progress bar of sync --wait and verify --wait (a terminal). */
static void
draw_bar (uint64_t done, uint64_t total, const char *rate, const char *eta)
{
  unsigned pct = total ? done * 100 / total : 100, i;
  char bar[41];

  for (i = 0; i < 40; i++)
    bar[i] = i < pct * 40 / 100 ? '#' : '.';
  bar[40] = '\0';
  printf ("\r[%s] %3u%% %" PRIu64 "/%" PRIu64 " chunks  %s  eta %s  ", bar, pct,
          done, total, rate, eta);
  fflush (stdout);
}

int
cmd_sync (const char *sock, int argc, char **argv)
{
  static const struct option opts[] = {
    {"start", no_argument, NULL, 'a'},
    {"stop", no_argument, NULL, 'o'},
    {"wait", no_argument, NULL, 'w'},
    {"timeout", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
  };
  g_autofree char *path = NULL, *line = NULL;
  bool wait = false, tty = isatty (STDOUT_FILENO);
  const char *cmd = NULL;
  uint64_t timeout = 0, done, total, last_done = UINT64_MAX;
  gint64 deadline = 0, last_print = 0;
  int c;

  optind = 0; /* re-initialise getopt: options anywhere */
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":", opts, NULL)) != -1) {
    switch (c) {
    case 'a': cmd = "start"; break;
    case 'o': cmd = "stop"; break;
    case 'w': wait = true; break;
    case 't':
      if (rmr_parse_uint ("--timeout", optarg, 1, 86400, &timeout) < 0)
        usage_error ("sync: %s", rmr_get_error ());
      break;
    default: bad_option ("sync", c, argv);
    }
  }
  if (argc - optind != 1)
    usage_error ("sync: expected one POOL");
  if (rmr_check_pool_name ("sync", argv[optind]) < 0)
    usage_error ("%s", rmr_get_error ());
  path = g_strdup_printf ("rmr-server/pools/%s/sync", argv[optind]);
  if (cmd) {
    g_autoptr (GString) out = g_string_new (NULL);
    g_autoptr (GString) err = g_string_new (NULL);
    line = g_strdup_printf ("set %s %s", path, cmd);
    if (ctl_request (sock, line, out, err) != 0)
      die ("%s", err->str);
    g_free (line);
  }
  line = g_strdup_printf ("get %s", path);
  if (!wait)
    return request (sock, line);
  if (timeout)
    deadline = g_get_monotonic_time () + (gint64) timeout * 1000000;

  for (;;) {
    g_autoptr (GString) out = g_string_new (NULL);
    g_autoptr (GString) err = g_string_new (NULL);
    g_autofree char *rate = NULL, *eta = NULL, *state = NULL;
    uint64_t dirty;
    gint64 now = g_get_monotonic_time ();

    if (ctl_request (sock, line, out, err) != 0)
      die ("%s", err->str);
    done = status_u64 (out->str, "done", 0);
    total = status_u64 (out->str, "total", 0);
    dirty = status_u64 (out->str, "dirty", 1);
    rate = status_str (out->str, "rate");
    eta = status_str (out->str, "eta");
    state = status_str (out->str, "state");
    if (tty)
      draw_bar (done, total, rate, eta);
    else if (done != last_done && (now - last_print >= 2000000 || !dirty)) {
      printf ("%s: %" PRIu64 "/%" PRIu64 " chunks, %s, eta %s\n", state, done,
              total, rate, eta);
      fflush (stdout);
      last_done = done;
      last_print = now;
    }
    if (dirty == 0) {
      if (tty)
        printf ("\nin sync\n");
      else
        printf ("in sync\n");
      write_out (NULL, 0);
      return EXIT_SUCCESS;
    }
    if (deadline && now > deadline) {
      if (tty)
        printf ("\n");
      die ("sync %s: not in sync after %" PRIu64 " s (%" PRIu64 " chunks left)",
           argv[optind], timeout, dirty);
    }
    g_usleep (tty ? 200000 : 100000);
  }
}

/* verify POOL: an online verify of POOL from this storage node. */
int
cmd_verify (const char *sock, int argc, char **argv)
{
  static const struct option opts[] = {
    {"wait", no_argument, NULL, 'w'},
    {"stop", no_argument, NULL, 'o'},
    {"source", required_argument, NULL, 's'},
    {"rate", required_argument, NULL, 'r'},
    {"timeout", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
  };
  g_autofree char *path = NULL, *line = NULL;
  g_autoptr (GString) set = g_string_new (NULL);
  bool wait = false, stop = false, tty = isatty (STDOUT_FILENO);
  const char *source = NULL, *rate_s = NULL;
  uint64_t timeout = 0, bytes, done, total, last_done = UINT64_MAX;
  gint64 deadline = 0, last_print = 0;
  uint32_t member;
  int c;

  optind = 0; /* re-initialise getopt: options anywhere */
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":", opts, NULL)) != -1) {
    switch (c) {
    case 'w': wait = true; break;
    case 'o': stop = true; break;
    case 's':
      if (rmr_parse_member_id ("--source", optarg, &member) < 0)
        usage_error ("verify: %s", rmr_get_error ());
      source = optarg;
      break;
    case 'r':
      if (rmr_parse_bytes ("--rate", optarg, &bytes) < 0)
        usage_error ("verify: %s", rmr_get_error ());
      rate_s = optarg;
      break;
    case 't':
      if (rmr_parse_uint ("--timeout", optarg, 1, 86400 * 30, &timeout) < 0)
        usage_error ("verify: %s", rmr_get_error ());
      break;
    default: bad_option ("verify", c, argv);
    }
  }
  if (argc - optind != 1)
    usage_error ("verify: expected one POOL");
  if (rmr_check_pool_name ("verify", argv[optind]) < 0)
    usage_error ("%s", rmr_get_error ());
  if (stop && (source || rate_s || wait))
    usage_error ("verify: --stop takes no --source, --rate or --wait");
  path = g_strdup_printf ("rmr-server/pools/%s/verify", argv[optind]);
  g_string_printf (set, "set %s op=%s", path, stop ? "stop" : "start");
  if (source)
    g_string_append_printf (set, " source=%s", source);
  if (rate_s)
    g_string_append_printf (set, " rate=%s", rate_s);
  {
    g_autoptr (GString) out = g_string_new (NULL);
    g_autoptr (GString) err = g_string_new (NULL);
    if (ctl_request (sock, set->str, out, err) != 0)
      die ("%s", err->str);
  }
  line = g_strdup_printf ("get %s", path);
  if (!wait)
    return request (sock, line);
  if (timeout)
    deadline = g_get_monotonic_time () + (gint64) timeout * 1000000;

  for (;;) {
    g_autoptr (GString) out = g_string_new (NULL);
    g_autoptr (GString) err = g_string_new (NULL);
    g_autofree char *rate = NULL, *eta = NULL, *state = NULL;
    gint64 now = g_get_monotonic_time ();

    if (ctl_request (sock, line, out, err) != 0)
      die ("%s", err->str);
    done = status_u64 (out->str, "done", 0);
    total = status_u64 (out->str, "total", 0);
    rate = status_str (out->str, "rate");
    eta = status_str (out->str, "eta");
    state = status_str (out->str, "state");
    if (strcmp (state, "running") != 0) {
      if (tty)
        printf ("\n");
      write_out (out->str, out->len);
      if (strcmp (state, "done") != 0)
        die ("verify %s: %s", argv[optind], state);
      return EXIT_SUCCESS;
    }
    if (tty)
      draw_bar (done, total, rate, eta);
    else if (done != last_done && now - last_print >= 2000000) {
      printf ("verifying: %" PRIu64 "/%" PRIu64 " chunks, %s, eta %s\n", done,
              total, rate, eta);
      fflush (stdout);
      last_done = done;
      last_print = now;
    }
    if (deadline && now > deadline) {
      if (tty)
        printf ("\n");
      die ("verify %s: not done after %" PRIu64 " s (%" PRIu64 "/%" PRIu64
           " chunks; it goes on: rmradm verify --stop ends it)",
           argv[optind], timeout, done, total);
    }
    g_usleep (tty ? 200000 : 100000);
  }
}
