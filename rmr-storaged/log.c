/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's log: GLib's log functions (g_warning, g_message, g_info,
 * g_debug) with domain "rmr-storaged", written as one line each to stderr
 * ("rmr-storaged: LEVEL: message"), filtered by --log-level.  When stderr
 * is not a terminal (a daemon started by an init system or a test), each
 * line starts with a timestamp.  When stderr is systemd's journal stream
 * (JOURNAL_STREAM names its device and inode, systemd.exec(5)), the
 * journal stamps the lines itself: each starts with its syslog priority
 * instead ("<4>" for a warning), which journald takes as the entry's
 * priority (sd-daemon(3)), so 'journalctl -p warning' finds warnings.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static enum log_level g_level = LOG_INFO;
static gboolean g_stamp;
static gboolean g_journal;

static enum log_level
level_of (GLogLevelFlags f)
{
  if (f & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return LOG_ERROR;
  if (f & G_LOG_LEVEL_WARNING)
    return LOG_WARNING;
  if (f & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    return LOG_INFO;
  return LOG_DEBUG;
}

static const char *
name_of (GLogLevelFlags f)
{
  if (f & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return "error";
  if (f & G_LOG_LEVEL_WARNING)
    return "warning";
  if (f & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    return "info";
  return "debug";
}

static GLogWriterOutput
writer (GLogLevelFlags flags, const GLogField *fields, gsize n, gpointer data)
{
  const char *msg = NULL;
  char stamp[64] = "";
  gsize i;

  if (level_of (flags) > g_level)
    return G_LOG_WRITER_HANDLED;
  for (i = 0; i < n; i++)
    if (strcmp (fields[i].key, "MESSAGE") == 0)
      msg = fields[i].value;
  if (g_journal) {
    /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG of syslog.h. */
    static const int prio[] = {3, 4, 6, 7};
    snprintf (stamp, sizeof stamp, "<%d>", prio[level_of (flags)]);
  }
  else if (g_stamp) {
    struct timespec ts;
    struct tm tm;
    clock_gettime (CLOCK_REALTIME, &ts);
    localtime_r (&ts.tv_sec, &tm);
    strftime (stamp, sizeof stamp, "%F %T", &tm);
    snprintf (stamp + strlen (stamp), sizeof stamp - strlen (stamp), ".%03ld ",
              ts.tv_nsec / 1000000);
  }
  fprintf (stderr, "%srmr-storaged: %s: %s\n", stamp, name_of (flags),
           msg ? msg : "");
  return G_LOG_WRITER_HANDLED;
}

int
log_parse_level (const char *s, enum log_level *level)
{
  static const char *const names[] = {"error", "warning", "info", "debug"};
  unsigned i;

  for (i = 0; i < G_N_ELEMENTS (names); i++)
    if (strcmp (s, names[i]) == 0) {
      *level = i;
      return 0;
    }
  return -1;
}

/* Is stderr the stream JOURNAL_STREAM ("DEVICE:INODE") names?  A child
 * of a service whose stderr was redirected inherits the variable, hence
 * the comparison.
 */
static gboolean
stderr_is_journal (void)
{
  const char *js = getenv ("JOURNAL_STREAM");
  uintmax_t dev, ino;
  struct stat st;

  if (!js || sscanf (js, "%ju:%ju", &dev, &ino) != 2 ||
      fstat (STDERR_FILENO, &st) < 0)
    return FALSE;
  return st.st_dev == dev && st.st_ino == ino;
}

void
log_init (enum log_level level)
{
  g_level = level;
  g_stamp = !isatty (STDERR_FILENO);
  g_journal = stderr_is_journal ();
  g_log_set_writer_func (writer, NULL, NULL);
}
