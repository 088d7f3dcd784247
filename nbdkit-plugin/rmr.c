/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbdkit-rmr-plugin: one NBD export per RMR pool.  Only glue: parameters
 * become a struct rmr_pool_config, the NBD callbacks call librmr, and
 * librmr's one-line errors become nbdkit errors with the right errno.
 *
 * Two ways to get pools (DESIGN 8):
 * - pool=NAME server=... on the command line: the pool is opened in
 *   .get_ready, before nbdkit forks into the background, so a bad
 *   parameter, an unreachable server or a refused join makes nbdkit exit
 *   with the error on the terminal.  librmr's threads are stopped across
 *   the fork and started again in .after_fork (threads do not survive
 *   fork).  A pool with a ucx: leg is opened in .after_fork instead: UCX
 *   does not survive a fork at all (its own threads and connection
 *   manager stay in the parent), so nothing of UCX may exist before it.
 *   With nbdkit -f (no fork) its errors still reach the terminal.
 * - control=PATH: the admin guide's flow through rmradm (join_pool,
 *   add_sess, pool_enable, map_device, ...), served by librmr
 *   (rmr_admin_start).  The control thread starts in .after_fork, so
 *   these pools are opened after the fork.
 * Both can be combined; then the command-line pool exists from the start,
 * enabled and mapped.  Pool options given without pool= (timeout,
 * read-policy, ...) apply to the pools configured through the socket.
 *
 * Exports: librmr's mapped devices, each under its pool's name (or the
 * guide's alias brmrN); the default export is the first one (the
 * command-line pool while it is mapped).  A handle holds a reference on
 * its device (rmr_device_get), so the pool is not closed while a
 * connection uses it.
 *
 * Thread model: parallel; librmr is thread-safe and needs no per-handle
 * state beyond the pool.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "rmr/rmr.h"
#include "admin.h"
#include "metrics.h"
#include "parse.h"
#include "ratelimit.h"
#include "tls.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* Configuration, from the command line. */
static struct rmr_pool_config cfg;
static const char *control_path;
static const char *tls_mode; /* off, on, require; NULL: by tls_psk */
static const char *tls_psk;
static const char *tls_username;
static const char *metrics_addr; /* metrics=tcp:ADDR:PORT */
static struct metrics_access metrics_acc = {.sep = '-'};
/* Read at .config_complete, before nbdkit changes user and directory. */
static struct metrics_creds *metrics_creds;

/* The /metrics endpoint, from .after_fork (its thread would not survive
 * the fork) to .unload.
 */
static struct metrics_http *metrics_srv;

/* librmr's threads were stopped in .get_ready (a command-line pool). */
static bool suspended;

/* One per NBD connection. */
struct handle {
  struct rmr_device *dev; /* reference, dropped in .close */
  struct rmr_pool *rp;    /* dev's open pool */
};

/* librmr logs through GLib (a leg's change of state, hand-overs,
 * assemble warnings): one line each on nbdkit's stderr, the journal
 * under systemd, as "nbdkit: rmr: info: pool p: member 42 (tcp:stor1:
 * 7700): normal -> failed (reason)".  Debug lines go to nbdkit_debug
 * (nbdkit -v), errors to nbdkit_error.  GLib's default writer dropped
 * the info lines and formatted the others its own way.
 */
static GLogWriterOutput
log_writer (GLogLevelFlags flags, const GLogField *fields, gsize n,
            gpointer data)
{
  const char *msg = "";
  gsize i;

  for (i = 0; i < n; i++)
    if (strcmp (fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
      msg = fields[i].value;
  if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    nbdkit_error ("%s", msg);
  else if (flags & G_LOG_LEVEL_WARNING)
    fprintf (stderr, "nbdkit: rmr: warning: %s\n", msg);
  else if (flags & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    fprintf (stderr, "nbdkit: rmr: info: %s\n", msg);
  else
    nbdkit_debug ("%s", msg);
  return G_LOG_WRITER_HANDLED;
}

static void
rmr_load (void)
{
  rmr_pool_config_init (&cfg);
  g_log_set_writer_func (log_writer, NULL, NULL);
}

static void
rmr_unload (void)
{
  metrics_http_stop (metrics_srv); /* it reads the pools */
  metrics_srv = NULL;
  metrics_creds_free (metrics_creds); /* never started */
  metrics_creds = NULL;
  rmr_admin_stop ();
  rmr_tls_cleanup (); /* no connection is left */
}

/* Report librmr's last error as an nbdkit error, prefixed with what. */
static int
fail (const char *what, int r)
{
  const char *msg = rmr_get_error ();

  if (msg)
    nbdkit_error ("%s: %s", what, msg);
  else
    nbdkit_error ("%s: %s", what, strerror (-r));
  nbdkit_set_error (-r);
  return -1;
}

/* A request that failed: its error goes back to the NBD client always,
 * to the log at most five lines a second.  A client that keeps writing
 * to a pool with no leg left would otherwise log a line per request,
 * hundreds of thousands a minute of the compute host's CPU and journal.
 */
static struct rmr_ratelimit io_errors = RMR_RATELIMIT_INIT (5);

static int
fail_io (const char *what, int r)
{
  unsigned dropped;
  bool log = rmr_ratelimit (&io_errors, g_get_monotonic_time (), &dropped);

  if (dropped)
    nbdkit_error ("%u more failed requests in an earlier second (not "
                  "logged one by one)",
                  dropped);
  if (log)
    return fail (what, r);
  nbdkit_set_error (-r);
  return -1;
}

static int
parse_size (const char *key, const char *value, uint64_t *out)
{
  int64_t v = nbdkit_parse_size (value);

  if (v < 0)
    return -1; /* nbdkit printed the error */
  if (v == 0) {
    nbdkit_error ("%s: '%s' must be greater than 0", key, value);
    return -1;
  }
  *out = v;
  return 0;
}

static int
rmr_config (const char *key, const char *value)
{
  uint64_t v;

  if (strcmp (key, "pool") == 0) {
    if (rmr_check_pool_name ("pool", value) < 0)
      goto bad;
    snprintf (cfg.pool_name, sizeof cfg.pool_name, "%s", value);
  }
  else if (strcmp (key, "server") == 0) {
    if (cfg.nlegs == RMR_MAX_MEMBERS) {
      nbdkit_error ("server: more than %u servers (one per leg)",
                    RMR_MAX_MEMBERS);
      return -1;
    }
    if (rmr_addr_parse ("server", value, &cfg.legs[cfg.nlegs].addr) < 0)
      goto bad;
    cfg.nlegs++;
  }
  else if (strcmp (key, "chunk-size") == 0) {
    if (parse_size (key, value, &v) < 0)
      return -1;
    if ((v & (v - 1)) != 0 || v < RMR_MIN_CHUNK_SIZE ||
        v > RMR_MAX_CHUNK_SIZE) {
      nbdkit_error ("chunk-size: '%s' is not a power of two from 4K to 64M",
                    value);
      return -1;
    }
    cfg.chunk_size = v;
  }
  else if (strcmp (key, "size") == 0) {
    if (parse_size (key, value, &cfg.size) < 0)
      return -1;
    if (cfg.size % 512) {
      nbdkit_error ("size: '%s' is not a multiple of 512", value);
      return -1;
    }
  }
  else if (strcmp (key, "mode") == 0) {
    if (strcmp (value, "auto") == 0)
      cfg.mode = RMR_MODE_AUTO;
    else if (strcmp (value, "create") == 0)
      cfg.mode = RMR_MODE_CREATE;
    else if (strcmp (value, "assemble") == 0)
      cfg.mode = RMR_MODE_ASSEMBLE;
    else {
      nbdkit_error ("mode: '%s' is not auto, create or assemble", value);
      return -1;
    }
  }
  else if (strcmp (key, "read-policy") == 0) {
    if (strcmp (value, "round-robin") == 0)
      cfg.read_policy = RMR_READ_ROUND_ROBIN;
    else if (strcmp (value, "least-busy") == 0)
      cfg.read_policy = RMR_READ_LEAST_BUSY;
    else if (strncmp (value, "member:", 7) == 0) {
      if (rmr_parse_member_id ("read-policy", value + 7, &cfg.read_member) < 0)
        goto bad;
      cfg.read_policy = RMR_READ_MEMBER;
    }
    else {
      nbdkit_error ("read-policy: '%s' is not round-robin, least-busy or "
                    "member:ID",
                    value);
      return -1;
    }
  }
  else if (strcmp (key, "min-legs") == 0) {
    uint64_t n;
    if (rmr_parse_uint ("min-legs", value, 1, RMR_MAX_MEMBERS, &n) < 0)
      goto bad;
    cfg.min_legs = n;
  }
  else if (strcmp (key, "queue-depth") == 0) {
    uint64_t n;
    if (rmr_parse_uint ("queue-depth", value, 1, RMR_MAX_QUEUE_DEPTH, &n) < 0)
      goto bad;
    cfg.queue_depth = n;
  }
  else if (strcmp (key, "timeout") == 0) {
    if (rmr_parse_duration_ms ("timeout", value, &cfg.timeout_ms) < 0)
      goto bad;
    if (cfg.timeout_ms < 100) {
      nbdkit_error ("timeout: '%s' is shorter than 100ms", value);
      return -1;
    }
  }
  else if (strcmp (key, "force") == 0) {
    bool b;
    if (rmr_parse_bool ("force", value, &b) < 0)
      goto bad;
    cfg.force = b;
  }
  else if (strcmp (key, "delete-member") == 0) {
    uint64_t n;
    if (cfg.ndelete == RMR_MAX_MEMBERS) {
      nbdkit_error ("delete-member: more than %u given", RMR_MAX_MEMBERS);
      return -1;
    }
    if (rmr_parse_uint ("delete-member", value, 0, RMR_MEMBER_ID_MAX, &n) < 0)
      goto bad;
    cfg.delete_members[cfg.ndelete++] = n;
  }
  else if (strcmp (key, "control") == 0)
    control_path = value;
  else if (strcmp (key, "tls") == 0) {
    enum rmr_tls_mode m;
    if (rmr_tls_parse_mode (value, "tls", &m) < 0)
      goto bad;
    tls_mode = value;
  }
  else if (strcmp (key, "tls-psk") == 0)
    tls_psk = value;
  else if (strcmp (key, "tls-username") == 0)
    tls_username = value;
  else if (strcmp (key, "metrics") == 0) {
    if (metrics_addr_check ("metrics", value) < 0)
      goto bad;
    metrics_addr = value;
  }
  else if (strcmp (key, "metrics-tls-cert") == 0)
    metrics_acc.tls_cert = value;
  else if (strcmp (key, "metrics-tls-key") == 0)
    metrics_acc.tls_key = value;
  else if (strcmp (key, "metrics-auth") == 0)
    metrics_acc.auth = value;
  else {
    nbdkit_error ("unknown parameter '%s' (see nbdkit rmr --help)", key);
    return -1;
  }
  return 0;

bad:
  nbdkit_error ("%s", rmr_get_error ());
  return -1;
}

/* TLS on the legs (DESIGN 9): the mode defaults to require when a key
 * file is given, as nbdkit's own --tls does.
 */
static int
setup_tls (void)
{
  enum rmr_tls_mode mode = tls_psk ? RMR_TLS_REQUIRE : RMR_TLS_OFF;
  unsigned i;

  if (tls_mode)
    rmr_tls_parse_mode (tls_mode, "tls", &mode);
  if (mode != RMR_TLS_OFF && !tls_psk) {
    nbdkit_error ("tls=%s: needs tls-psk=FILE (a key file: psktool -u NAME "
                  "-p FILE)",
                  tls_mode);
    return -1;
  }
  if (mode == RMR_TLS_OFF && tls_username) {
    nbdkit_error ("tls-username: needs tls-psk=FILE");
    return -1;
  }
  if (rmr_tls_setup (mode, tls_psk, tls_username) < 0) {
    nbdkit_error ("%s", rmr_get_error ());
    return -1;
  }
  for (i = 0; i < cfg.nlegs; i++) {
    char name[300];
    if (rmr_addr_is_loopback (&cfg.legs[i].addr))
      continue;
    rmr_addr_format (&cfg.legs[i].addr, name, sizeof name);
    if (cfg.legs[i].addr.kind == RMR_TRANSPORT_UCX && mode != RMR_TLS_OFF) {
      fprintf (stderr,
               "nbdkit: rmr: warning: leg %s: ucx is authenticated by the "
               "keys but never encrypted: use it on a trusted fabric\n",
               name);
      break;
    }
    if (mode == RMR_TLS_REQUIRE)
      continue;
    fprintf (
      stderr,
      "nbdkit: rmr: warning: leg %s %s: anyone on the network can "
      "read and forge this pool's traffic (tls-psk=FILE)\n",
      name, mode == RMR_TLS_OFF ? "without TLS" : "may fall back to plaintext");
    break;
  }
  return 0;
}

static int
rmr_config_complete (void)
{
  if (setup_tls () < 0)
    return -1;
  /* The files are read now, so that a bad one stops nbdkit at start. */
  if ((metrics_acc.tls_cert || metrics_acc.tls_key || metrics_acc.auth) &&
      !metrics_addr) {
    nbdkit_error ("%s: needs metrics=tcp:ADDR:PORT",
                  metrics_acc.auth       ? "metrics-auth"
                  : metrics_acc.tls_cert ? "metrics-tls-cert"
                                         : "metrics-tls-key");
    return -1;
  }
  if (metrics_addr &&
      metrics_creds_load ("metrics", &metrics_acc, &metrics_creds) < 0) {
    nbdkit_error ("%s", rmr_get_error ());
    return -1;
  }
  rmr_admin_set_template (&cfg);
  if (!cfg.pool_name[0]) {
    if (!control_path) {
      nbdkit_error ("pool: missing (pool=NAME, or control=PATH to configure "
                    "pools through rmradm)");
      return -1;
    }
    if (cfg.nlegs) {
      nbdkit_error ("server: needs pool=NAME (a pool configured through "
                    "control= gets its sessions with add_sess)");
      return -1;
    }
    if (cfg.size) {
      nbdkit_error ("size: needs pool=NAME (map_device takes size= for a "
                    "pool configured through control=)");
      return -1;
    }
    return 0;
  }
  if (cfg.nlegs == 0) {
    nbdkit_error ("server: missing (server=tcp:HOST:PORT, one per leg)");
    return -1;
  }
  if (cfg.min_legs > cfg.nlegs) {
    nbdkit_error ("min-legs: %u, but only %u servers", cfg.min_legs, cfg.nlegs);
    return -1;
  }
  return 0;
}

#define rmr_config_help                                                        \
  "pool=NAME                 pool name (required without control=)\n"          \
  "server=tcp:HOST:PORT      a storage node, one per leg (1-8, with pool=)\n"  \
  "chunk-size=128K           dirty-tracking unit, when creating\n"             \
  "size=SIZE                 expected device size (the stores' mapped_size)\n" \
  "mode=auto|create|assemble create on fresh stores, else assemble\n"          \
  "read-policy=round-robin|least-busy|member:ID\n"                             \
  "min-legs=1                writes fail when fewer legs complete\n"           \
  "queue-depth=128           requests in flight per leg\n"                     \
  "timeout=30s               request deadline; a late leg is failed; how\n"    \
  "                          long an open waits for servers\n"                 \
  "force=false               assemble without a member that may hold the\n"    \
  "                          latest writes (see the man page)\n"               \
  "delete-member=ID          take member ID (away, store deleted) out of\n"    \
  "                          the pool at this assemble (repeatable)\n"         \
  "control=PATH              control socket for rmradm; alone: pools are\n"    \
  "                          configured through it (join_pool, add_sess,\n"    \
  "                          map_device, as in the admin guide)\n"             \
  "tls=off|on|require        TLS on the legs (default: require with\n"         \
  "                          tls-psk, else off)\n"                             \
  "tls-psk=FILE              pre-shared keys, USERNAME:HEXKEY (psktool)\n"     \
  "tls-username=NAME         our identity in FILE (default: host name)\n"      \
  "metrics=tcp:ADDR:PORT     serve Prometheus metrics on http://.../metrics\n" \
  "metrics-tls-cert=FILE     with metrics-tls-key=FILE (PEM): HTTPS only\n"    \
  "metrics-auth=FILE         USER:PASSWORD lines: basic authentication"

/* The control socket's requests: changes at debug level, refused
 * changes as errors (nbdkit -v shows everything).
 */
static void
log_control (void *opaque, int failed, const char *request, const char *reply)
{
  if (failed)
    nbdkit_error ("control: %s: %s", request, reply);
  else
    nbdkit_debug ("control: %s: %s", request, reply);
}

static bool
uses_ucx (void)
{
  unsigned i;

  for (i = 0; i < cfg.nlegs; i++)
    if (cfg.legs[i].addr.kind == RMR_TRANSPORT_UCX)
      return true;
  return false;
}

/* The command-line pool: open, enable and map it. */
static int
open_pool (void)
{
  struct rmr_pool *pool;

  pool = rmr_pool_open (&cfg);
  if (!pool)
    return fail ("pool", -errno);
  rmr_admin_add_pool (pool, &cfg);
  nbdkit_debug ("rmr: pool %s: %" PRIu64 " bytes, chunk_size %" PRIu32
                ", generation %" PRIu64 ", %u legs",
                rmr_pool_name (pool), rmr_pool_size (pool),
                rmr_pool_chunk_size (pool), rmr_pool_generation (pool),
                rmr_pool_nlegs (pool));
  return 0;
}

static int
rmr_get_ready (void)
{
  int r;

  if (!cfg.pool_name[0] || uses_ucx ())
    return 0; /* opened in .after_fork (the top) */
  if (open_pool () < 0)
    return -1;
  r = rmr_threads_suspend ();
  if (r < 0)
    return fail ("pool", r);
  suspended = true;
  return 0;
}

static void
render_metrics (void *opaque, GString *out)
{
  pools_metrics (out);
}

static int
rmr_after_fork (void)
{
  int r;

  if (cfg.pool_name[0] && uses_ucx () && open_pool () < 0)
    return -1;
  if (suspended) {
    r = rmr_threads_resume ();
    if (r < 0)
      return fail ("pool", r);
    suspended = false;
  }
  if (control_path &&
      (r = rmr_admin_start (control_path, log_control, NULL)) < 0)
    return fail ("control", r);
  if (metrics_addr) {
    metrics_srv = metrics_http_start ("metrics", metrics_addr, metrics_creds,
                                      render_metrics, NULL);
    metrics_creds = NULL; /* the server's now */
    if (!metrics_srv)
      return fail ("metrics", -errno);
  }
  return 0;
}

static const char *
rmr_default_export (int readonly, int is_tls)
{
  g_autofree char *name = rmr_device_default ();

  /* With nothing mapped, "" makes .open say so. */
  return nbdkit_strdup_intern (name ? name : "");
}

static int
rmr_list_exports (int readonly, int is_tls, struct nbdkit_exports *exports)
{
  char **names = rmr_device_names ();
  int r = 0;
  size_t i;

  if (!names)
    return fail ("list_exports", -errno);
  for (i = 0; names[i] && r == 0; i++)
    r = nbdkit_add_export (exports, names[i], "replicated RMR pool");
  rmr_strv_free (names);
  return r;
}

static void *
rmr_open (int readonly)
{
  const char *name = nbdkit_export_name ();
  struct handle *h = g_new0 (struct handle, 1);

  h->dev = rmr_device_get (name ? name : "", &h->rp);
  if (!h->dev) {
    nbdkit_error ("%s", rmr_get_error ());
    g_free (h);
    return NULL;
  }
  return h;
}

static void
rmr_close (void *handle)
{
  struct handle *h = handle;

  rmr_device_put (h->dev);
  g_free (h);
}

static int64_t
rmr_get_size (void *handle)
{
  struct handle *h = handle;

  return rmr_pool_size (h->rp);
}

static int
rmr_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                uint32_t *maximum)
{
  struct handle *h = handle;
  uint32_t bs = rmr_pool_block_size (h->rp);

  *minimum = 512;
  *preferred = bs > 4096 ? bs : 4096;
  *maximum = RMR_MAX_IO_SIZE;
  return 0;
}

static int
rmr_can_multi_conn (void *h)
{
  return 1;
}

static int
rmr_can_write (void *h)
{
  return 1;
}

static int
rmr_can_flush (void *h)
{
  return 1;
}

static int
rmr_can_fua (void *h)
{
  return NBDKIT_FUA_NATIVE;
}

static int
rmr_can_trim (void *h)
{
  return 1;
}

static int
rmr_can_zero (void *h)
{
  return 1;
}

static int
rmr_can_fast_zero (void *h)
{
  return 1;
}

static unsigned
io_flags (uint32_t flags)
{
  unsigned f = 0;

  if (flags & NBDKIT_FLAG_FUA)
    f |= RMR_IO_FUA;
  if (flags & NBDKIT_FLAG_MAY_TRIM)
    f |= RMR_IO_MAY_TRIM;
  if (flags & NBDKIT_FLAG_FAST_ZERO)
    f |= RMR_IO_FAST_ZERO;
  return f;
}

static struct rmr_pool *
pool_of (void *handle)
{
  return ((struct handle *) handle)->rp;
}

static int
rmr_pread (void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  int r = rmr_pool_pread (pool_of (h), buf, count, offset, 0);

  return r < 0 ? fail_io ("pread", r) : 0;
}

static int
rmr_pwrite (void *h, const void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  int r = rmr_pool_pwrite (pool_of (h), buf, count, offset, io_flags (flags));

  return r < 0 ? fail_io ("pwrite", r) : 0;
}

static int
rmr_flush (void *h, uint32_t flags)
{
  int r = rmr_pool_flush (pool_of (h), 0);

  return r < 0 ? fail_io ("flush", r) : 0;
}

static int
rmr_trim (void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
  int r = rmr_pool_trim (pool_of (h), count, offset, io_flags (flags));

  return r < 0 ? fail_io ("trim", r) : 0;
}

static int
rmr_zero (void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
  int r = rmr_pool_zero (pool_of (h), count, offset, io_flags (flags));

  if (r == -ENOTSUP && (flags & NBDKIT_FLAG_FAST_ZERO)) {
    /* The client asked to be told, and falls back by itself. */
    nbdkit_set_error (ENOTSUP);
    return -1;
  }
  return r < 0 ? fail_io ("zero", r) : 0;
}

static struct nbdkit_plugin plugin = {
  .name = "rmr",
  .version = PACKAGE_VERSION,
  .longname = "nbdkit RMR replicated pool plugin",
  .description = "Active-active, single-hop replication to RMR storage "
                 "nodes",
  .load = rmr_load,
  .unload = rmr_unload,
  .config = rmr_config,
  .config_complete = rmr_config_complete,
  .config_help = rmr_config_help,
  .get_ready = rmr_get_ready,
  .after_fork = rmr_after_fork,
  .default_export = rmr_default_export,
  .list_exports = rmr_list_exports,
  .open = rmr_open,
  .close = rmr_close,
  .get_size = rmr_get_size,
  .block_size = rmr_block_size,
  .can_multi_conn = rmr_can_multi_conn,
  .can_write = rmr_can_write,
  .can_flush = rmr_can_flush,
  .can_fua = rmr_can_fua,
  .can_trim = rmr_can_trim,
  .can_zero = rmr_can_zero,
  .can_fast_zero = rmr_can_fast_zero,
  .pread = rmr_pread,
  .pwrite = rmr_pwrite,
  .flush = rmr_flush,
  .trim = rmr_trim,
  .zero = rmr_zero,
  .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN (plugin)
