/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rmradm: the admin tool (DESIGN 8, rmradm.pod).  Every verb but
 * store-info is one request line to a control socket (common/ctl.h) of
 * rmr-storaged or of the nbdkit plugin, whose reply body is printed as
 * received; store-info reads a store's superblock directly (common/md.h),
 * without a daemon.
 *
 * Structure: main () parses the global options (-s, --help, --version) up
 * to the verb with getopt_long in "stop at the first non-option" mode; each
 * verb then parses its own arguments with getopt_long again, so "set PATH
 * -1" sends the value "-1" while "get --bogus" is refused.  store-info
 * writes its fields through one small emitter that prints either
 * "key: value" lines or one JSON object, so both forms list the same fields
 * in the same order.
 *
 * Errors: one line "rmradm: MESSAGE" on stderr and exit status 1; usage
 * errors exit with status 2.  Single threaded, no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "alrec.h"
#include "ctl.h"
#include "error.h"
#include "md.h"
#include "parse.h"
#include "rmradm.h"
#include "util.h"

#ifndef RMR_VERSION
#define RMR_VERSION "unknown"
#endif

#define DEFAULT_SOCKET "/run/rmr/storaged.sock"

#define EXIT_USAGE 2

static const char usage_text[] =
  "Usage:\n"
  "  rmradm [-s SOCKET] get PATH\n"
  "  rmradm [-s SOCKET] set PATH 'key=value ...'\n"
  "  rmradm [-s SOCKET] ls [PATH]\n"
  "  rmradm [-s SOCKET] status [--json] [PATH]\n"
  "  rmradm [-s SOCKET] help\n"
  "  rmradm [-s SOCKET] metrics\n"
  "  rmradm [-s SOCKET] sync POOL [--start | --stop] [--wait] [--timeout S]\n"
  "  rmradm [-s SOCKET] verify POOL [--source MEMBER] [--rate R] [--wait]\n"
  "                     [--timeout S] | verify POOL --stop\n"
  "  rmradm [-s CLIENT] leg add POOL ADDR [--member N] [--sessname S]\n"
  "                     [--wait] [--timeout S]\n"
  "  rmradm [-s CLIENT] leg remove POOL MEMBER [--mode disassemble|delete]\n"
  "                     [--wait] [--timeout S]\n"
  "  rmradm store-info DEVICE [--json]\n"
  "  rmradm --help | --version\n"
  "\n"
  "Read and change the state of an rmr storage daemon (rmr-storaged) or\n"
  "of the nbdkit rmr plugin through its control socket.  PATH names an\n"
  "attribute of the admin guide's sysfs tree without /sys/class, e.g.\n"
  "rmr-server/pools/vol1/state.\n"
  "\n"
  "  get PATH        print an attribute\n"
  "  set PATH VALUE  write an attribute; the remaining arguments are\n"
  "                  joined by spaces: 'poolname=vol1 member_id=42', or a\n"
  "                  single value such as 1.  A value with blanks is quoted\n"
  "                  inside: 'key=\"a b\"'\n"
  "  ls [PATH]       every attribute at or below PATH, writable ones\n"
  "                  marked \" (w)\"\n"
  "  status          every readable attribute as \"PATH: VALUE\"; --json:\n"
  "                  one JSON object nesting the path segments\n"
  "  help            the paths the daemon knows, with their keys\n"
  "  metrics         the daemon's or the plugin's metrics in the\n"
  "                  Prometheus text format (as their /metrics serves)\n"
  "  sync POOL       the resync of POOL on this storage node: progress;\n"
  "                  --start/--stop the background sync; --wait until in\n"
  "                  sync (a progress bar on a terminal, else a line every\n"
  "                  few seconds; --timeout S: give up with status 1)\n"
  "  verify POOL     compare every chunk of POOL with the peers by\n"
  "                  checksum (IO goes on); members that differ from\n"
  "                  --source MEMBER, or from a majority of three or more,\n"
  "                  are marked outdated and resync the chunk; with two\n"
  "                  members and no --source, differences are reported\n"
  "                  only.  --rate R (bytes/s, K/M/G; default the pool's\n"
  "                  sync_rate); --wait until done (a progress bar, then\n"
  "                  the result; status 1 if it failed or was stopped);\n"
  "                  --stop ends a running verify\n"
  "  leg add         (nbdkit's socket) add a leg to an open pool: ADDR's\n"
  "                  fresh store joins and resyncs from the others;\n"
  "                  --wait until it is up to date (a progress bar)\n"
  "  leg remove      (nbdkit's socket) remove member MEMBER's leg from an\n"
  "                  open pool; --mode delete takes it out of the pool for\n"
  "                  good; --wait until every remaining leg is up to date\n"
  "  store-info      read a store's metadata directly (no daemon); sizes\n"
  "                  and offsets in bytes\n"
  "\n"
  "Options:\n"
  "  -s, --socket SOCKET  the control socket (default: $RMR_CONTROL, else\n"
  "                       " DEFAULT_SOCKET ")\n"
  "  -h, --help           this help\n"
  "  -V, --version        the version\n"
  "\n"
  "Exit status: 0 success, 1 the command failed, 2 usage error.\n";

void
die (const char *fmt, ...)
{
  va_list ap;

  fflush (stdout);
  fputs ("rmradm: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  exit (EXIT_FAILURE);
}

void
usage_error (const char *fmt, ...)
{
  va_list ap;

  fputs ("rmradm: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputs ("\nTry 'rmradm --help'.\n", stderr);
  exit (EXIT_USAGE);
}

/* Report a getopt_long failure (opterr is 0; optstring starts with ':'). */
void
bad_option (const char *verb, int c, char **argv)
{
  const char *arg = argv[optind - 1];
  const char *ctx = verb ? verb : "";
  const char *sep = verb ? ": " : "";

  if (c == ':')
    usage_error ("%s%soption '%s' needs an argument", ctx, sep, arg);
  if (optopt && strncmp (arg, "--", 2) != 0)
    usage_error ("%s%sunknown option '-%c'", ctx, sep, optopt);
  usage_error ("%s%sunknown option '%s'", ctx, sep, arg);
}

/* Parse a verb's options: only --json where json is not NULL.  Returns
 * the index in argv of the first operand.
 */
static int
verb_options (const char *verb, int argc, char **argv, bool *json)
{
  static const struct option with_json[] = {
    {"json", no_argument, NULL, 'j'},
    {NULL, 0, NULL, 0},
  };
  static const struct option none[] = {
    {NULL, 0, NULL, 0},
  };
  int c;

  /* "+": options only before the operands, so a value such as "-1"
   * after the path is an operand; --json may follow a path, though.
   */
  optind = 0;
  while ((c = getopt_long (argc, argv, json ? ":" : "+:",
                           json ? with_json : none, NULL)) != -1) {
    if (c == 'j')
      *json = true;
    else
      bad_option (verb, c, argv);
  }
  return optind;
}

/* A path is one word of the request line. */
static void
check_path (const char *verb, const char *path)
{
  if (path[0] == '\0')
    usage_error ("%s: empty PATH", verb);
  for (const char *p = path; *p; p++)
    if ((unsigned char) *p <= ' ' || *p == 0x7f)
      usage_error ("%s: PATH must not contain blanks or control characters",
                   verb);
}

void
write_out (const char *buf, size_t len)
{
  if (len > 0 && fwrite (buf, 1, len, stdout) != len)
    die ("writing to standard output: %s", g_strerror (errno));
  if (fflush (stdout) == EOF || ferror (stdout))
    die ("writing to standard output: %s", g_strerror (errno));
}

int
request (const char *sock, const char *line)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);

  if (ctl_request (sock, line, out, err) != 0)
    die ("%s", err->len ? err->str : "request failed");
  write_out (out->str, out->len);
  return EXIT_SUCCESS;
}

/* Control verbs ---------------------------------------------------------- */

static int
cmd_get (const char *sock, int argc, char **argv)
{
  g_autofree char *line = NULL;
  int i = verb_options ("get", argc, argv, NULL);

  if (argc - i != 1)
    usage_error (argc - i == 0 ? "get: missing PATH"
                               : "get: expected one PATH");
  check_path ("get", argv[i]);
  line = g_strdup_printf ("get %s", argv[i]);
  return request (sock, line);
}

static int
cmd_set (const char *sock, int argc, char **argv)
{
  g_autoptr (GString) line = g_string_new ("set ");
  int i = verb_options ("set", argc, argv, NULL);

  if (argc - i < 1)
    usage_error ("set: missing PATH");
  check_path ("set", argv[i]);
  g_string_append (line, argv[i]);
  for (int j = i + 1; j < argc; j++)
    g_string_append_printf (line, " %s", argv[j]);
  return request (sock, line->str);
}

static int
cmd_ls (const char *sock, int argc, char **argv)
{
  g_autofree char *line = NULL;
  int i = verb_options ("ls", argc, argv, NULL);

  if (argc - i > 1)
    usage_error ("ls: expected at most one PATH");
  if (argc - i == 1)
    check_path ("ls", argv[i]);
  line =
    g_strdup_printf ("ls%s%s", argc - i ? " " : "", argc - i ? argv[i] : "");
  return request (sock, line);
}

static int
cmd_status (const char *sock, int argc, char **argv)
{
  g_autofree char *line = NULL;
  bool json = false;
  int i = verb_options ("status", argc, argv, &json);

  if (argc - i > 1)
    usage_error ("status: expected at most one PATH");
  if (argc - i == 1)
    check_path ("status", argv[i]);
  line = g_strdup_printf ("status%s%s%s", json ? " --json" : "",
                          argc - i ? " " : "", argc - i ? argv[i] : "");
  return request (sock, line);
}

/* The daemon answers rmr-server/metrics, the plugin rmr-client/metrics:
 * ask for one, then the other.
 */
static int
cmd_metrics (const char *sock, int argc, char **argv)
{
  static const char *const paths[] = {"get rmr-server/metrics",
                                      "get rmr-client/metrics"};
  g_autoptr (GString) first = g_string_new (NULL);
  unsigned k;
  int i = verb_options ("metrics", argc, argv, NULL);

  if (argc - i != 0)
    usage_error ("metrics: takes no argument");
  for (k = 0; k < G_N_ELEMENTS (paths); k++) {
    g_autoptr (GString) out = g_string_new (NULL);
    g_autoptr (GString) err = g_string_new (NULL);
    if (ctl_request (sock, paths[k], out, err) == 0) {
      write_out (out->str, out->len);
      return EXIT_SUCCESS;
    }
    if (k == 0)
      g_string_assign (first, err->len ? err->str : "request failed");
    if (strstr (err->str, "connect"))
      break;
  }
  die ("%s", first->str);
}

static int
cmd_help (const char *sock, int argc, char **argv)
{
  int i = verb_options ("help", argc, argv, NULL);

  if (argc - i != 0)
    usage_error ("help: unexpected argument '%s'", argv[i]);
  return request (sock, "help");
}

/* store-info ------------------------------------------------------------- */

/* Writes fields as "key: value" lines or as one JSON object. */
struct emit {
  GString *out;
  bool json;
  bool first;
};

static void
emit_key (struct emit *e, const char *key)
{
  if (e->json) {
    g_string_append (e->out, e->first ? "{" : ",");
    ctl_json_string (e->out, key);
    g_string_append_c (e->out, ':');
  }
  else
    g_string_append_printf (e->out, "%s: ", key);
  e->first = false;
}

static void
emit_end_field (struct emit *e)
{
  if (!e->json)
    g_string_append_c (e->out, '\n');
}

static void
emit_u64 (struct emit *e, const char *key, uint64_t v)
{
  emit_key (e, key);
  g_string_append_printf (e->out, "%" PRIu64, v);
  emit_end_field (e);
}

static void
emit_str (struct emit *e, const char *key, const char *v)
{
  emit_key (e, key);
  if (e->json)
    ctl_json_string (e->out, v);
  else
    g_string_append (e->out, v);
  emit_end_field (e);
}

static void
emit_bool (struct emit *e, const char *key, bool v)
{
  emit_key (e, key);
  if (e->json)
    g_string_append (e->out, v ? "true" : "false");
  else
    g_string_append (e->out, v ? "yes" : "no");
  emit_end_field (e);
}

static const char *
member_state_name (uint32_t state)
{
  switch (state) {
  case RMR_MEMBER_ABSENT: return "absent";
  case RMR_MEMBER_NORMAL: return "up-to-date";
  case RMR_MEMBER_DIRTY: return "outdated";
  default: return "unknown";
  }
}

/* members: "42=normal 43=dirty" or [{"member_id":42,"state":"normal"}]. */
static void
emit_members (struct emit *e, const struct rmr_sb *sb)
{
  bool any = false;

  emit_key (e, "members");
  if (e->json)
    g_string_append_c (e->out, '[');
  for (unsigned i = 0; i < RMR_MAX_MEMBERS; i++) {
    const struct rmr_member_md *m = &sb->members[i];

    if (m->member_id == RMR_MEMBER_NONE)
      continue;
    if (e->json)
      g_string_append_printf (
        e->out, "%s{\"member_id\":%" PRIu32 ",\"state\":\"%s\"}",
        any ? "," : "", m->member_id, member_state_name (m->state));
    else
      g_string_append_printf (e->out, "%s%" PRIu32 "=%s", any ? " " : "",
                              m->member_id, member_state_name (m->state));
    any = true;
  }
  if (e->json)
    g_string_append_c (e->out, ']');
  else if (!any)
    g_string_append (e->out, "none");
  emit_end_field (e);
}

/* Size of the device or file; -1 if neither. */
static int
device_size (int fd, uint64_t *size)
{
  struct stat st;

  if (fstat (fd, &st) == -1)
    return -1;
  if (S_ISBLK (st.st_mode))
    return ioctl (fd, BLKGETSIZE64, size) == -1 ? -1 : 0;
  if (S_ISREG (st.st_mode)) {
    *size = st.st_size;
    return 0;
  }
  return -1;
}

/* What the recent-write record says: how the store was last stopped and
 * the extents that may differ from its peers.
 */
static void
emit_record (struct emit *e, int fd, const struct rmr_sb *sb)
{
  g_autoptr (GArray) ext = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  struct rmr_alrec rec = {0};
  const char *state;
  int r;

  r = rmr_alrec_read (fd, sb->al_offset, &rec, ext);
  state = r == 0          ? "ok"
          : r == -ENODATA ? "never-written"
          : r == -EBADMSG ? "damaged"
                          : "unreadable";
  /* A store never written to has nothing to lose. */
  emit_bool (e, "clean_shutdown",
             r == -ENODATA || (r == 0 && (rec.flags & RMR_ALREC_F_CLEAN)));
  emit_str (e, "recent_write_record", state);
  emit_u64 (e, "recent_write_extents", ext->len);
  emit_u64 (e, "recent_write_extent_size",
            r == 0 ? UINT64_C (1) << rec.shift : 0);
}

static int
cmd_store_info (const char *sock, int argc, char **argv)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autofree char *hex = NULL;
  CLEANUP_CLOSE int fd = -1;
  struct emit e = {.out = out, .first = true};
  struct rmr_sb sb;
  uint64_t dev_size;
  const char *path;
  int which = -1;
  int i, r;

  i = verb_options ("store-info", argc, argv, &e.json);
  if (argc - i != 1)
    usage_error (argc - i == 0 ? "store-info: missing DEVICE"
                               : "store-info: expected one DEVICE");
  path = argv[i];

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    die ("%s: %s", path, g_strerror (errno));
  rmr_err_clear ();
  r = md_read (fd, &sb, &which);
  if (r == -ENODATA)
    die ("%s: no rmr metadata (not a store)", path);
  if (r < 0)
    die ("%s: %s", path, rmr_get_error () ? rmr_get_error () : g_strerror (-r));

  hex = g_strdup_printf ("0x%08" PRIx32, sb.group_id);
  emit_str (&e, "pool", sb.pool_name);
  emit_u64 (&e, "group_id", sb.group_id);
  emit_str (&e, "group_id_hex", hex);
  emit_u64 (&e, "member_id", sb.member_id);
  emit_u64 (&e, "chunk_size", sb.chunk_size);
  emit_u64 (&e, "mapped_size", sb.mapped_size);
  emit_u64 (&e, "generation", sb.generation);
  emit_u64 (&e, "data_offset", sb.data_offset);
  emit_u64 (&e, "mapped_sectors", sb.mapped_size / 512);
  emit_str (&e, "state",
            sb.flags & RMR_SB_F_REPLACED ? "replacement"
            : sb.generation == 0         ? "fresh"
                                         : "used");
  emit_record (&e, fd, &sb);
  emit_members (&e, &sb);
  emit_u64 (&e, "queue_depth", sb.queue_depth);
  emit_u64 (&e, "map_version", sb.map_version);
  emit_u64 (&e, "version", sb.version);
  emit_u64 (&e, "seq", sb.seq);
  emit_u64 (&e, "superblock_copy", which);
  emit_u64 (&e, "map_offset", sb.map_offset);
  emit_u64 (&e, "map_slot_bytes", sb.map_slot_bytes);
  emit_u64 (&e, "al_offset", sb.al_offset);
  emit_u64 (&e, "al_bytes", sb.al_bytes);
  if (device_size (fd, &dev_size) == 0)
    emit_u64 (&e, "dev_size", dev_size);
  if (e.json)
    g_string_append (out, "}\n");
  write_out (out->str, out->len);
  return EXIT_SUCCESS;
}

/* main ------------------------------------------------------------------- */

/* leg add|remove: live legs of a client pool (nbdkit's control socket). */

/* GET path into out (trailing newline cut); dies on failure. */
static void
ctl_get (const char *sock, const char *path, GString *out)
{
  g_autoptr (GString) err = g_string_new (NULL);
  g_autofree char *line = g_strdup_printf ("get %s", path);

  g_string_truncate (out, 0);
  if (ctl_request (sock, line, out, err) != 0)
    die ("%s", err->len ? err->str : "request failed");
  while (out->len && out->str[out->len - 1] == '\n')
    g_string_truncate (out, out->len - 1);
}

/* The session names of pool's legs (one per element). */
static GPtrArray *
leg_sessions (const char *sock, const char *pool)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);
  g_autofree char *line =
    g_strdup_printf ("ls rmr-client/pools/%s/sessions", pool);
  g_autofree char *prefix =
    g_strdup_printf ("rmr-client/pools/%s/sessions/", pool);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) lines = NULL;

  if (ctl_request (sock, line, out, err) != 0)
    die ("%s", err->len ? err->str : "request failed");
  lines = g_strsplit (out->str, "\n", -1);
  for (char **l = lines; *l; l++) {
    const char *rest;
    size_t n;
    if (!g_str_has_prefix (*l, prefix))
      continue;
    rest = *l + strlen (prefix);
    n = strcspn (rest, "/");
    if (strcmp (rest + n, "/state") == 0)
      g_ptr_array_add (names, g_strndup (rest, n));
  }
  return names;
}

/* Wait until the legs (sessions; NULL: all) of pool are up to date. */
static int
leg_wait (const char *sock, const char *pool, const char *only,
          uint64_t timeout)
{
  bool tty = isatty (STDOUT_FILENO);
  gint64 deadline =
    timeout ? g_get_monotonic_time () + (gint64) timeout * 1000000 : 0;
  gint64 last_print = 0;
  g_autoptr (GString) v = g_string_new (NULL);

  for (;;) {
    g_autoptr (GPtrArray) names = leg_sessions (sock, pool);
    uint64_t left = 0, total = 0;
    unsigned behind = 0;
    gint64 now = g_get_monotonic_time ();

    for (unsigned i = 0; i < names->len; i++) {
      const char *s = names->pdata[i];
      g_autofree char *p = NULL;
      if (only && strcmp (s, only) != 0)
        continue;
      p =
        g_strdup_printf ("rmr-client/pools/%s/sessions/%s/data_state", pool, s);
      ctl_get (sock, p, v);
      if (strcmp (v->str, "up-to-date") == 0)
        continue;
      behind++;
      g_free (p);
      p = g_strdup_printf ("rmr-client/pools/%s/sessions/%s/resync", pool, s);
      ctl_get (sock, p, v);
      left += g_ascii_strtoull (v->str, NULL, 10);
      total += g_ascii_strtoull (
        strchr (v->str, '/') ? strchr (v->str, '/') + 1 : "0", NULL, 10);
    }
    if (tty) {
      unsigned pct = total ? (total - left) * 100 / total : 100, i;
      char bar[41];
      for (i = 0; i < 40; i++)
        bar[i] = i < pct * 40 / 100 ? '#' : '.';
      bar[40] = '\0';
      printf ("\r[%s] %3u%% %" PRIu64 "/%" PRIu64 " chunks  ", bar, pct,
              total - left, total);
      fflush (stdout);
    }
    else if (behind && now - last_print >= 2000000) {
      printf ("syncing: %" PRIu64 "/%" PRIu64 " chunks, %u leg%s behind\n",
              total - left, total, behind, behind == 1 ? "" : "s");
      fflush (stdout);
      last_print = now;
    }
    if (!behind) {
      printf ("%sup to date\n", tty ? "\n" : "");
      write_out (NULL, 0);
      return EXIT_SUCCESS;
    }
    if (deadline && now > deadline) {
      if (tty)
        printf ("\n");
      die ("leg: pool %s: %u leg%s not up to date after %" PRIu64 " s "
           "(%" PRIu64 " chunks left)",
           pool, behind, behind == 1 ? "" : "s", timeout, left);
    }
    g_usleep (tty ? 200000 : 500000);
  }
}

static int
cmd_leg (const char *sock, int argc, char **argv)
{
  static const struct option opts[] = {
    {"wait", no_argument, NULL, 'w'},
    {"timeout", required_argument, NULL, 't'},
    {"sessname", required_argument, NULL, 'n'},
    {"mode", required_argument, NULL, 'm'},
    {"member", required_argument, NULL, 'M'},
    {NULL, 0, NULL, 0},
  };
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);
  g_autofree char *line = NULL, *sessname = NULL;
  const char *mode = NULL, *sub, *pool;
  g_autofree char *member_kv = NULL;
  uint64_t timeout = 0, want;
  bool wait = false;
  int c;

  optind = 0;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":", opts, NULL)) != -1) {
    switch (c) {
    case 'w': wait = true; break;
    case 't':
      if (rmr_parse_uint ("--timeout", optarg, 1, 86400, &timeout) < 0)
        usage_error ("leg: %s", rmr_get_error ());
      break;
    case 'n':
      if (rmr_check_sess_name ("--sessname", optarg) < 0)
        usage_error ("leg: %s", rmr_get_error ());
      sessname = g_strdup (optarg);
      break;
    case 'M':
      if (rmr_parse_uint ("--member", optarg, 0, RMR_MEMBER_ID_MAX, &want) < 0)
        usage_error ("leg: %s", rmr_get_error ());
      g_free (member_kv);
      member_kv = g_strdup_printf (" member_id=%" PRIu64, want);
      break;
    case 'm':
      if (strcmp (optarg, "disassemble") != 0 && strcmp (optarg, "delete") != 0)
        usage_error ("leg: --mode: '%s' is not disassemble or delete", optarg);
      mode = optarg;
      break;
    default: bad_option ("leg", c, argv);
    }
  }
  if (argc - optind != 3 || (strcmp (argv[optind], "add") != 0 &&
                             strcmp (argv[optind], "remove") != 0))
    usage_error ("leg: expected 'add POOL ADDR' or 'remove POOL MEMBER'");
  sub = argv[optind];
  pool = argv[optind + 1];
  if (rmr_check_pool_name ("leg", pool) < 0)
    usage_error ("%s", rmr_get_error ());

  if (strcmp (sub, "add") == 0) {
    struct rmr_addr addr;
    if (mode)
      usage_error ("leg add: --mode is for leg remove");
    if (rmr_addr_parse ("leg add: ADDR", argv[optind + 2], &addr) < 0)
      usage_error ("%s", rmr_get_error ());
    if (!sessname) {
      /* as the plugin names its sessions: CLIENTHOST@HOST:PORT, in the
       * characters of a session name
       */
      sessname =
        g_strdup_printf ("%s@%s:%u", g_get_host_name (), addr.host, addr.port);
      for (char *p = sessname; *p; p++)
        if (!g_ascii_isalnum (*p) && !strchr ("._@:-", *p))
          *p = '_';
    }
    line = g_strdup_printf ("set rmr-client/pools/%s/add_sess "
                            "sessname=%s path=%s%s",
                            pool, sessname, argv[optind + 2],
                            member_kv ? member_kv : "");
    if (ctl_request (sock, line, out, err) != 0)
      die ("leg add: %s", err->len ? err->str : "request failed");
    write_out (out->str, out->len);
    printf ("leg %s added to pool %s\n", sessname, pool);
    return wait ? leg_wait (sock, pool, sessname, timeout) : EXIT_SUCCESS;
  }

  {
    uint64_t member;
    g_autoptr (GPtrArray) names = NULL;
    g_autoptr (GString) v = g_string_new (NULL);
    if (sessname || member_kv)
      usage_error ("leg remove: --sessname and --member are for leg add");
    if (rmr_parse_uint ("leg remove: MEMBER", argv[optind + 2], 0,
                        RMR_MEMBER_ID_MAX, &member) < 0)
      usage_error ("%s", rmr_get_error ());
    names = leg_sessions (sock, pool);
    for (unsigned i = 0; i < names->len && !line; i++) {
      g_autofree char *p =
        g_strdup_printf ("rmr-client/pools/%s/sessions/%s/member_id", pool,
                         (char *) names->pdata[i]);
      g_autoptr (GString) e2 = g_string_new (NULL);
      g_autofree char *l2 = g_strdup_printf ("get %s", p);
      g_string_truncate (v, 0);
      if (ctl_request (sock, l2, v, e2) == 0 &&
          g_ascii_strtoull (v->str, NULL, 10) == member && v->len)
        line = g_strdup_printf ("set rmr-client/pools/%s/sessions/%s/del_sess "
                                "mode=%s",
                                pool, (char *) names->pdata[i],
                                mode ? mode : "disassemble");
    }
    if (!line)
      die ("leg remove: MEMBER: pool %s has no leg of member %" PRIu64, pool,
           member);
    if (ctl_request (sock, line, out, err) != 0)
      die ("leg remove: %s", err->len ? err->str : "request failed");
    write_out (out->str, out->len);
    return wait ? leg_wait (sock, pool, NULL, timeout) : EXIT_SUCCESS;
  }
}

static const struct verb {
  const char *name;
  int (*run) (const char *sock, int argc, char **argv);
} verbs[] = {
  {"get", cmd_get},         {"set", cmd_set},   {"ls", cmd_ls},
  {"status", cmd_status},   {"help", cmd_help}, {"store-info", cmd_store_info},
  {"sync", cmd_sync},       {"leg", cmd_leg},   {"verify", cmd_verify},
  {"metrics", cmd_metrics},
};

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    {"socket", required_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
  };
  const char *sock = getenv ("RMR_CONTROL");
  int c;

  if (sock == NULL || sock[0] == '\0')
    sock = DEFAULT_SOCKET;
  opterr = 0;
  while ((c = getopt_long (argc, argv, "+:s:hV", opts, NULL)) != -1) {
    switch (c) {
    case 's':
      if (optarg[0] == '\0')
        usage_error ("option '-s' needs a socket path");
      sock = optarg;
      break;
    case 'h': write_out (usage_text, strlen (usage_text)); return EXIT_SUCCESS;
    case 'V':
      printf ("rmradm %s\n", RMR_VERSION);
      write_out (NULL, 0);
      return EXIT_SUCCESS;
    default: bad_option (NULL, c, argv);
    }
  }
  if (optind == argc)
    usage_error ("missing command (get, set, ls, status, help, sync, leg "
                 "or store-info)");

  for (size_t i = 0; i < ARRAY_SIZE (verbs); i++)
    if (strcmp (argv[optind], verbs[i].name) == 0)
      return verbs[i].run (sock, argc - optind, argv + optind);
  usage_error ("unknown command '%s' (expected get, set, ls, status, help, "
               "sync, leg or store-info)",
               argv[optind]);
}
