/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The config file: a GLib key file, so a restarted daemon needs no typing.
 *
 *   [storaged]
 *   listen=tcp:127.0.0.1:7700        (several: separated by ';' or ',')
 *   control=/run/rmr/storaged.sock
 *   pidfile=/run/rmr/storaged.pid
 *   log-level=info
 *   tls=require                      (off, on, require; default: require
 *                                    if tls_psk is set, else off)
 *   tls_psk=/etc/rmr/keys.psk        (USERNAME:HEXKEY lines, psktool)
 *   tls_username=node1               (default: the host name)
 *   max_connections=256              (sessions at once)
 *   max_handshakes=32                (hello + TLS in progress at once)
 *   handshake_timeout=10s
 *   metrics=tcp:127.0.0.1:9750       (GET /metrics, Prometheus text)
 *   metrics_tls_cert=FILE, metrics_tls_key=FILE (PEM: HTTPS only)
 *   metrics_auth=FILE                 (USER:PASSWORD lines: basic auth)
 *
 *   [pool ionos_pool]
 *   member_id=42
 *   store=/var/lib/rmr/ionos_pool.img  (regular file, created sparse if
 *                                      missing, or block device)
 *   mapped_size=100M                   (bare number = 512-byte sectors)
 *   chunk_size=128K                    (optional: refuse other sizes)
 *
 * The whole file is read and checked (unknown groups and keys, bad values,
 * duplicate member stores) before anything is applied; each error names
 * the file, the group and the key.  Applying joins every pool and then
 * creates each store that has no metadata, or attaches (add_store
 * mode=add) the one that has, after checking it belongs to this pool and
 * member.
 *
 * The config never forces a create over a foreign signature (no
 * force_create key): it is applied again at every start, and a device
 * name can point to another disk after a reboot (/dev/sdb), so a standing
 * "overwrite whatever is there" would one day format the wrong disk.
 * Forcing is a decision about one device, taken once, by create_store
 * force=1 (or wipefs).
 *
 * Reload (SIGHUP, config_reload): the file given at start is read and
 * checked again, whole, before anything changes; a file that does not
 * parse is refused with the same one-line error as at start.  Pools new
 * in the file are applied as at start (join, settings, peers, store), one
 * pool at a time: one that fails is undone and named, the others go on.
 * A running pool whose section changed is left as it is, with one line
 * naming the pool and the keys; so are [storaged] keys (restart to apply)
 * and pools gone from the file (they keep running).  The file as last
 * accepted (g_file) and each pool's section as applied (g_applied) are
 * what a reload compares against; main's thread alone touches them (at
 * start, and on SIGHUP through sigwait), so they need no lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "internal.h"
#include "parse.h"
#include "tls.h"
#include "util.h"

struct pool_cfg {
  char *name;
  uint32_t member_id;
  char *store;
  uint64_t mapped_size;
  uint64_t chunk_size;
  char **peers;           /* addresses of the other members */
  uint64_t sync_rate;     /* bytes/s, 0: unlimited */
  uint64_t sync_min_rate; /* bytes/s while clients do IO, 0: off */
  uint64_t sync_parallel; /* 0: default */
  bool sync_manual;       /* sync_start=manual */
  uint64_t al_extents;    /* recent-write record: 0 = off */
  uint64_t al_extent_size;
};

static const char *const storaged_keys[] = {
  "listen",
  "control",
  "pidfile",
  "log-level",
  "tls",
  "tls_psk",
  "tls_username",
  "max_connections",
  "max_handshakes",
  "handshake_timeout",
  "metrics",
  "metrics_tls_cert",
  "metrics_tls_key",
  "metrics_auth",
  NULL,
};
static const char *const pool_keys[] = {
  "member_id",  "store",      "mapped_size",    "chunk_size",
  "peers",      "sync_rate",  "sync_min_rate",  "sync_parallel",
  "sync_start", "al_extents", "al_extent_size", NULL,
};

/* The file as last accepted, and each pool's section as applied from it
 * (name -> struct pool_cfg *): what a reload compares against.  Main's
 * thread only.
 */
static GKeyFile *g_file;
static GHashTable *g_applied;

static int
check_keys (GKeyFile *kf, const char *file, const char *group,
            const char *const *allowed)
{
  g_auto (GStrv) keys = g_key_file_get_keys (kf, group, NULL, NULL);
  unsigned i;

  for (i = 0; keys && keys[i]; i++)
    if (!g_strv_contains (allowed, keys[i])) {
      g_autofree char *list = g_strjoinv (", ", (char **) allowed);
      return rmr_err (EINVAL, "%s: [%s]: unknown key '%s' (allowed: %s)", file,
                      group, keys[i], list);
    }
  return 0;
}

/* Value of a key, trimmed; NULL if absent. */
static char *
get (GKeyFile *kf, const char *group, const char *key)
{
  char *v = g_key_file_get_value (kf, group, key, NULL);

  return v ? g_strstrip (v) : NULL;
}

static int
parse_pool (GKeyFile *kf, const char *file, const char *group,
            struct pool_cfg *pc)
{
  g_autofree char *member = get (kf, group, "member_id");
  g_autofree char *size = get (kf, group, "mapped_size");
  g_autofree char *chunk = get (kf, group, "chunk_size");
  g_autofree char *peers = get (kf, group, "peers");
  g_autofree char *rate = get (kf, group, "sync_rate");
  g_autofree char *min_rate = get (kf, group, "sync_min_rate");
  g_autofree char *parallel = get (kf, group, "sync_parallel");
  g_autofree char *start = get (kf, group, "sync_start");
  g_autofree char *alx = get (kf, group, "al_extents");
  g_autofree char *als = get (kf, group, "al_extent_size");
  struct rmr_addr a;
  char what[400];
  unsigned i;

  pc->name = g_strstrip (g_strdup (group + strlen ("pool ")));
  pc->store = get (kf, group, "store");
  snprintf (what, sizeof what, "%s: [%s]: pool name", file, group);
  if (rmr_check_pool_name (what, pc->name) < 0)
    return -EINVAL;
#define REQUIRE(v, key)                                                        \
  if (!(v) || !*(v))                                                           \
    return rmr_err (EINVAL, "%s: [%s]: %s: missing", file, group, key);
  REQUIRE (member, "member_id");
  REQUIRE (pc->store, "store");
  REQUIRE (size, "mapped_size");
#undef REQUIRE
  snprintf (what, sizeof what, "%s: [%s]: member_id", file, group);
  if (rmr_parse_member_id (what, member, &pc->member_id) < 0)
    return -EINVAL;
  snprintf (what, sizeof what, "%s: [%s]: mapped_size", file, group);
  if (rmr_parse_sectors_or_bytes (what, size, &pc->mapped_size) < 0)
    return -EINVAL;
  if (pc->mapped_size == 0)
    return rmr_err (EINVAL, "%s: [%s]: mapped_size: must be greater than 0",
                    file, group);
  if (chunk) {
    snprintf (what, sizeof what, "%s: [%s]: chunk_size", file, group);
    if (rmr_parse_bytes (what, chunk, &pc->chunk_size) < 0)
      return -EINVAL;
    if (!is_power_of_2 (pc->chunk_size) ||
        pc->chunk_size < RMR_MIN_CHUNK_SIZE ||
        pc->chunk_size > RMR_MAX_CHUNK_SIZE)
      return rmr_err (EINVAL,
                      "%s: [%s]: chunk_size: '%s' is not a power "
                      "of two from 4K to 64M",
                      file, group, chunk);
  }
  /* peers=tcp:HOST:PORT,...: the sync pool's sessions. */
  pc->peers = g_strsplit_set (peers ? peers : "", ",;", -1);
  for (i = 0; pc->peers[i]; i++) {
    g_strstrip (pc->peers[i]);
    snprintf (what, sizeof what, "%s: [%s]: peers", file, group);
    if (*pc->peers[i] && rmr_addr_parse (what, pc->peers[i], &a) < 0)
      return -EINVAL;
  }
  if (i > RMR_MAX_MEMBERS - 1)
    return rmr_err (EINVAL, "%s: [%s]: peers: %u given, at most %u", file,
                    group, i, RMR_MAX_MEMBERS - 1);
  snprintf (what, sizeof what, "%s: [%s]: sync_rate", file, group);
  if (rate && rmr_parse_bytes (what, rate, &pc->sync_rate) < 0)
    return -EINVAL;
  pc->sync_min_rate = SYNC_MIN_RATE_DEFAULT;
  snprintf (what, sizeof what, "%s: [%s]: sync_min_rate", file, group);
  if (min_rate && rmr_parse_bytes (what, min_rate, &pc->sync_min_rate) < 0)
    return -EINVAL;
  snprintf (what, sizeof what, "%s: [%s]: sync_parallel", file, group);
  if (parallel &&
      rmr_parse_uint (what, parallel, 1, 16, &pc->sync_parallel) < 0)
    return -EINVAL;
  if (start && strcmp (start, "auto") != 0 && strcmp (start, "manual") != 0)
    return rmr_err (EINVAL,
                    "%s: [%s]: sync_start: '%s' is not auto or "
                    "manual",
                    file, group, start);
  pc->sync_manual = start && strcmp (start, "manual") == 0;
  pc->al_extents = AL_DEFAULT_EXTENTS;
  pc->al_extent_size = UINT64_C (1) << AL_DEFAULT_SHIFT;
  snprintf (what, sizeof what, "%s: [%s]: al_extents", file, group);
  if (alx && rmr_parse_uint (what, alx, 0, AL_MAX_EXTENTS, &pc->al_extents) < 0)
    return -EINVAL;
  snprintf (what, sizeof what, "%s: [%s]: al_extent_size", file, group);
  if (als && rmr_parse_bytes (what, als, &pc->al_extent_size) < 0)
    return -EINVAL;
  if (!is_power_of_2 (pc->al_extent_size) ||
      pc->al_extent_size < (UINT64_C (1) << 16) ||
      pc->al_extent_size > (UINT64_C (1) << 32))
    return rmr_err (EINVAL,
                    "%s: [%s]: al_extent_size: '%s' is not a power "
                    "of two from 64K to 4G",
                    file, group, als);
  return 0;
}

static void
pool_cfg_clear (gpointer p)
{
  struct pool_cfg *pc = p;

  g_free (pc->name);
  g_free (pc->store);
  g_strfreev (pc->peers);
}

static void
pool_cfg_free (gpointer p)
{
  pool_cfg_clear (p);
  g_free (p);
}

/* A heap copy of *pc that takes its strings (pc is left empty). */
static struct pool_cfg *
pool_cfg_steal (struct pool_cfg *pc)
{
  struct pool_cfg *copy = g_memdup2 (pc, sizeof *pc);

  memset (pc, 0, sizeof *pc);
  return copy;
}

/* The same peers, in the same order, empty entries aside. */
static bool
peers_equal (char **a, char **b)
{
  for (;;) {
    while (*a && !**a)
      a++;
    while (*b && !**b)
      b++;
    if (!*a || !*b)
      return !*a && !*b;
    if (strcmp (*a++, *b++) != 0)
      return false;
  }
}

/* The keys whose values differ between a and b, comma-separated. */
static void
pool_cfg_diff (const struct pool_cfg *a, const struct pool_cfg *b, GString *out)
{
#define DIFF(cond, key)                                                        \
  if (cond)                                                                    \
    g_string_append_printf (out, "%s%s", out->len ? ", " : "", key);
  DIFF (a->member_id != b->member_id, "member_id");
  DIFF (strcmp (a->store, b->store) != 0, "store");
  DIFF (a->mapped_size != b->mapped_size, "mapped_size");
  DIFF (a->chunk_size != b->chunk_size, "chunk_size");
  DIFF (!peers_equal (a->peers, b->peers), "peers");
  DIFF (a->sync_rate != b->sync_rate, "sync_rate");
  DIFF (a->sync_min_rate != b->sync_min_rate, "sync_min_rate");
  DIFF (a->sync_parallel != b->sync_parallel, "sync_parallel");
  DIFF (a->sync_manual != b->sync_manual, "sync_start");
  DIFF (a->al_extents != b->al_extents, "al_extents");
  DIFF (a->al_extent_size != b->al_extent_size, "al_extent_size");
#undef DIFF
}

static int
read_file (const char *path, GKeyFile **out, GArray **pools)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) gerr = NULL;
  g_autoptr (GArray) arr = g_array_new (FALSE, TRUE, sizeof (struct pool_cfg));
  g_auto (GStrv) groups = NULL;
  unsigned i, j;

  g_array_set_clear_func (arr, pool_cfg_clear);
  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &gerr))
    return rmr_err (EINVAL, "config %s: %s", path, gerr->message);
  groups = g_key_file_get_groups (kf, NULL);
  for (i = 0; groups[i]; i++) {
    if (strcmp (groups[i], "storaged") == 0) {
      if (check_keys (kf, path, groups[i], storaged_keys) < 0)
        return -EINVAL;
    }
    else if (g_str_has_prefix (groups[i], "pool ")) {
      struct pool_cfg pc = {0};
      if (check_keys (kf, path, groups[i], pool_keys) < 0 ||
          parse_pool (kf, path, groups[i], &pc) < 0) {
        pool_cfg_clear (&pc);
        return -EINVAL;
      }
      g_array_append_val (arr, pc);
    }
    else
      return rmr_err (EINVAL,
                      "config %s: unknown group [%s] (expected "
                      "[storaged] or [pool NAME])",
                      path, groups[i]);
  }
  for (i = 0; i < arr->len; i++)
    for (j = 0; j < i; j++) {
      struct pool_cfg *a = &g_array_index (arr, struct pool_cfg, i);
      struct pool_cfg *b = &g_array_index (arr, struct pool_cfg, j);
      if (strcmp (a->store, b->store) == 0)
        return rmr_err (EINVAL,
                        "config %s: [pool %s]: store: %s is the "
                        "store of [pool %s] too",
                        path, a->name, a->store, b->name);
    }
  *out = g_steal_pointer (&kf);
  *pools = g_steal_pointer (&arr);
  return 0;
}

/* The TLS and limit keys of [storaged], checked here so that an error
 * names the file; main applies them (the command line wins).
 */
static int
check_security (GKeyFile *kf, const char *path)
{
  g_autofree char *tls = get (kf, "storaged", "tls");
  g_autofree char *psk = get (kf, "storaged", "tls_psk");
  g_autofree char *maxc = get (kf, "storaged", "max_connections");
  g_autofree char *maxh = get (kf, "storaged", "max_handshakes");
  g_autofree char *tmo = get (kf, "storaged", "handshake_timeout");
  enum rmr_tls_mode mode;
  char what[400];
  uint64_t v;

  snprintf (what, sizeof what, "%s: [storaged]: tls", path);
  if (tls && rmr_tls_parse_mode (tls, what, &mode) < 0)
    return -EINVAL;
  if (tls && mode != RMR_TLS_OFF && !psk)
    return rmr_err (EINVAL,
                    "%s: [storaged]: tls=%s needs tls_psk (a key "
                    "file: psktool -u NAME -p FILE)",
                    path, tls);
  snprintf (what, sizeof what, "%s: [storaged]: max_connections", path);
  if (maxc && rmr_parse_uint (what, maxc, 1, 65536, &v) < 0)
    return -EINVAL;
  snprintf (what, sizeof what, "%s: [storaged]: max_handshakes", path);
  if (maxh && rmr_parse_uint (what, maxh, 1, 4096, &v) < 0)
    return -EINVAL;
  snprintf (what, sizeof what, "%s: [storaged]: handshake_timeout", path);
  if (tmo && rmr_parse_duration_ms (what, tmo, &v) < 0)
    return -EINVAL;
  return 0;
}

/* Every value of [storaged] that main uses, checked so that an error
 * names the file: the listen addresses, the log level, TLS and limits,
 * and the files of /metrics' access.  On a reload a bad one of those is
 * only warned about (main.c reads them again on its own, and a broken
 * one refuses nothing else), for the next start would fail on it.
 */
static int
check_storaged (GKeyFile *kf, const char *path, bool at_start)
{
  g_autofree char *listen = get (kf, "storaged", "listen");
  g_autofree char *level = get (kf, "storaged", "log-level");
  g_autofree char *metrics = get (kf, "storaged", "metrics");
  g_autofree char *cert = get (kf, "storaged", "metrics_tls_cert");
  g_autofree char *key = get (kf, "storaged", "metrics_tls_key");
  g_autofree char *auth = get (kf, "storaged", "metrics_auth");
  struct metrics_access acc = {
    .tls_cert = cert, .tls_key = key, .auth = auth, .sep = '_'};
  g_auto (GStrv) addrs = NULL;
  enum log_level l;
  struct rmr_addr a;
  char what[400];
  unsigned i;

  addrs = g_strsplit_set (listen ? listen : "", ";,", -1);
  for (i = 0; addrs[i]; i++) {
    g_strstrip (addrs[i]);
    snprintf (what, sizeof what, "%s: [storaged]: listen", path);
    if (*addrs[i] && rmr_addr_parse (what, addrs[i], &a) < 0)
      return -EINVAL;
  }
  if (level && log_parse_level (level, &l) < 0)
    return rmr_err (EINVAL,
                    "%s: [storaged]: log-level: '%s' is not error, "
                    "warning, info or debug",
                    path, level);
  snprintf (what, sizeof what, "%s: [storaged]: metrics", path);
  if (metrics && metrics_addr_check (what, metrics) < 0)
    return -EINVAL;
  snprintf (what, sizeof what, "%s: [storaged]", path);
  if (metrics_access_check (what, &acc) < 0) {
    if (at_start)
      return -EINVAL;
    g_warning ("%s (the next start would fail on it)", rmr_get_error ());
  }
  return check_security (kf, path);
}

int
config_load (const char *path, struct config *cfg)
{
  g_autoptr (GKeyFile) kf = NULL;
  g_autoptr (GArray) pools = NULL;
  g_autofree char *listen = NULL;
  g_auto (GStrv) addrs = NULL;
  unsigned i;

  if (read_file (path, &kf, &pools) < 0 || check_storaged (kf, path, true) < 0)
    return -EINVAL;
  listen = get (kf, "storaged", "listen");
  addrs = g_strsplit_set (listen ? listen : "", ";,", -1);
  for (i = 0; addrs[i]; i++) {
    g_strstrip (addrs[i]);
    if (*addrs[i])
      g_ptr_array_add (cfg->listen, g_strdup (addrs[i]));
  }
  if (!cfg->control)
    cfg->control = get (kf, "storaged", "control");
  if (!cfg->pidfile)
    cfg->pidfile = get (kf, "storaged", "pidfile");
  if (!cfg->log_level)
    cfg->log_level = get (kf, "storaged", "log-level");
  if (!cfg->tls)
    cfg->tls = get (kf, "storaged", "tls");
  if (!cfg->tls_psk)
    cfg->tls_psk = get (kf, "storaged", "tls_psk");
  if (!cfg->tls_username)
    cfg->tls_username = get (kf, "storaged", "tls_username");
  if (!cfg->max_connections)
    cfg->max_connections = get (kf, "storaged", "max_connections");
  if (!cfg->max_handshakes)
    cfg->max_handshakes = get (kf, "storaged", "max_handshakes");
  if (!cfg->handshake_timeout)
    cfg->handshake_timeout = get (kf, "storaged", "handshake_timeout");
  /* Checked (check_storaged) even when --metrics wins: the file must be
   * right for the next start without it.
   */
  if (!cfg->metrics)
    cfg->metrics = get (kf, "storaged", "metrics");
  /* A certificate and its key come as a pair, from one place. */
  if (!cfg->metrics_tls_cert && !cfg->metrics_tls_key) {
    cfg->metrics_tls_cert = get (kf, "storaged", "metrics_tls_cert");
    cfg->metrics_tls_key = get (kf, "storaged", "metrics_tls_key");
  }
  if (!cfg->metrics_auth)
    cfg->metrics_auth = get (kf, "storaged", "metrics_auth");
  return 0;
}

void
config_clear (struct config *cfg)
{
  g_clear_pointer (&cfg->listen, g_ptr_array_unref);
  g_clear_pointer (&cfg->control, g_free);
  g_clear_pointer (&cfg->pidfile, g_free);
  g_clear_pointer (&cfg->log_level, g_free);
  g_clear_pointer (&cfg->tls, g_free);
  g_clear_pointer (&cfg->tls_psk, g_free);
  g_clear_pointer (&cfg->tls_username, g_free);
  g_clear_pointer (&cfg->max_connections, g_free);
  g_clear_pointer (&cfg->max_handshakes, g_free);
  g_clear_pointer (&cfg->handshake_timeout, g_free);
  g_clear_pointer (&cfg->metrics, g_free);
  g_clear_pointer (&cfg->metrics_tls_cert, g_free);
  g_clear_pointer (&cfg->metrics_tls_key, g_free);
  g_clear_pointer (&cfg->metrics_auth, g_free);
}

/* Applying a pool, first step: join it, its resync and record settings,
 * its peers.  The error names the file and the pool.  *joined: the join
 * itself succeeded (so it is ours to undo).
 */
static int
apply_join (const char *path, const struct pool_cfg *pc, bool *joined)
{
  char **peer;
  int r;

  r = control_join_pool (pc->name, pc->member_id, pc->chunk_size);
  *joined = r == 0;
  if (r == 0)
    r = control_sync_settings (pc->name, pc->sync_parallel, pc->sync_rate,
                               pc->sync_min_rate, pc->sync_manual);
  if (r == 0)
    r = control_al_settings (pc->name, pc->al_extents,
                             log_2_bits (pc->al_extent_size));
  for (peer = pc->peers; r == 0 && *peer; peer++)
    if (**peer)
      r = control_add_peer (pc->name, NULL, *peer, false);
  if (r < 0)
    rmr_err_prefix ("config %s: [pool %s]: ", path, pc->name);
  return r;
}

/* A running pool's resync rates changed in the file: applied at once,
 * also to a resync running (DRBD's resync-rate, changed live); was, the
 * applied config, takes them.
 */
static void
apply_rates (const char *path, const struct pool_cfg *pc, struct pool_cfg *was)
{
  if (was->sync_rate == pc->sync_rate &&
      was->sync_min_rate == pc->sync_min_rate)
    return;
  if (control_sync_rate (pc->name, pc->sync_rate, pc->sync_min_rate) < 0) {
    g_warning ("config %s: [pool %s]: sync_rate: %s", path, pc->name,
               rmr_get_error ());
    return;
  }
  g_message ("config %s: [pool %s]: sync_rate=%" PRIu64
             " sync_min_rate=%" PRIu64 " (bytes/s) applied",
             path, pc->name, pc->sync_rate, pc->sync_min_rate);
  was->sync_rate = pc->sync_rate;
  was->sync_min_rate = pc->sync_min_rate;
}

/* Second step: attach the store if it has metadata; format it only if
 * it has none at all.
 */
static int
apply_store (const char *path, const struct pool_cfg *pc)
{
  int r;

  r = control_add_store (pc->store, pc->name, pc->mapped_size,
                         STORE_MODE_ATTACH, false);
  /* store_create refuses a missing path in /dev (a mistyped device). */
  if (r == -ENODATA || r == -ENOENT)
    r = control_add_store (pc->store, pc->name, pc->mapped_size,
                           STORE_MODE_CREATE, false);
  if (r == -EMEDIUMTYPE) {
    g_autofree char *msg = g_strdup (rmr_get_error ());
    rmr_err (EMEDIUMTYPE,
             "%s; if it may go, wipe it (wipefs -a) or format it with "
             "create_store force=1",
             msg);
  }
  if (r < 0)
    rmr_err_prefix ("config %s: [pool %s]: ", path, pc->name);
  return r;
}

/* Undo apply_join of a pool that failed on reload: its peers, its sync
 * half (unless it was there before: had_sync) and its server half go,
 * so the reload leaves no trace of it.  The error of the failure is
 * kept.
 */
static void
undo_pool (const char *name, bool had_sync)
{
  g_autofree char *err = g_strdup (rmr_get_error ());
  g_autoptr (GPtrArray) sess = g_ptr_array_new_with_free_func (g_free);
  struct rmr_leg_info info;
  struct srv_pool *p;
  unsigned i;

  p = pool_find_sync (name);
  if (p && !had_sync) {
    for (i = 0; i < rmr_pool_nlegs (p->peers); i++)
      if (rmr_pool_leg_info (p->peers, i, &info) == 0 && info.sessname[0])
        g_ptr_array_add (sess, g_strdup (info.sessname));
    for (i = 0; i < sess->len; i++)
      rmr_sync_pool_del_sess (p->peers, sess->pdata[i]);
  }
  if (p)
    pool_put (p);
  if ((!had_sync && pool_sync_leave (name) < 0) || pool_delete (name) < 0)
    g_warning ("pool %s: undoing the join: %s", name, rmr_get_error ());
  rmr_err (EINVAL, "%s", err ? err : "failed");
}

/* Keep pools as applied (pools is emptied), and the file of the start:
 * its [storaged] is the one in force until a restart.
 */
static void
remember (GKeyFile *kf, GArray *pools)
{
  unsigned i;

  if (!g_applied)
    g_applied =
      g_hash_table_new_full (g_str_hash, g_str_equal, NULL, pool_cfg_free);
  for (i = 0; i < pools->len; i++) {
    struct pool_cfg *pc =
      pool_cfg_steal (&g_array_index (pools, struct pool_cfg, i));
    g_hash_table_replace (g_applied, pc->name, pc);
  }
  if (!g_file)
    g_file = g_key_file_ref (kf);
}

int
config_apply (const char *path)
{
  g_autoptr (GKeyFile) kf = NULL;
  g_autoptr (GArray) pools = NULL;
  unsigned i;
  int r;

  if (read_file (path, &kf, &pools) < 0)
    return -EINVAL;
  for (i = 0; i < pools->len; i++) {
    bool joined;
    r = apply_join (path, &g_array_index (pools, struct pool_cfg, i), &joined);
    if (r < 0)
      return r;
  }
  for (i = 0; i < pools->len; i++) {
    r = apply_store (path, &g_array_index (pools, struct pool_cfg, i));
    if (r < 0)
      return r;
  }
  remember (kf, pools);
  return 0;
}

/* Is name a [pool NAME] of pools? */
static bool
has_pool (GArray *pools, const char *name)
{
  unsigned i;

  for (i = 0; i < pools->len; i++)
    if (g_strcmp0 (g_array_index (pools, struct pool_cfg, i).name, name) == 0)
      return true;
  return false;
}

int
config_reload (const char *path, unsigned *added, unsigned *failed)
{
  g_autoptr (GKeyFile) kf = NULL;
  g_autoptr (GArray) pools = NULL;
  g_autoptr (GArray) fresh = NULL;
  GHashTableIter it;
  gpointer key, value;
  unsigned i;

  *added = *failed = 0;
  if (read_file (path, &kf, &pools) < 0 ||
      check_storaged (kf, path, false) < 0) /* a reload */
    return -EINVAL;

  /* [storaged]: taken at start only. */
  for (i = 0; storaged_keys[i]; i++) {
    g_autofree char *was =
      g_file ? get (g_file, "storaged", storaged_keys[i]) : NULL;
    g_autofree char *now = get (kf, "storaged", storaged_keys[i]);
    if (g_strcmp0 (was, now) != 0)
      g_message ("config %s: [storaged]: %s changed in the config; left as "
                 "it is (restart to apply)",
                 path, storaged_keys[i]);
  }

  fresh = g_array_new (FALSE, TRUE, sizeof (struct pool_cfg));
  g_array_set_clear_func (fresh, pool_cfg_clear);
  for (i = 0; i < pools->len; i++) {
    struct pool_cfg *pc = &g_array_index (pools, struct pool_cfg, i);
    struct pool_cfg *was =
      g_applied ? g_hash_table_lookup (g_applied, pc->name) : NULL;
    struct srv_pool *p = pool_find (pc->name), *sync;
    bool had_sync, joined;

    if (p) {
      g_autoptr (GString) keys = g_string_new (NULL);
      pool_put (p);
      if (!was)
        g_message ("config %s: [pool %s]: the pool exists already (joined "
                   "through the control socket); left as it is",
                   path, pc->name);
      else {
        apply_rates (path, pc, was);
        pool_cfg_diff (was, pc, keys);
        if (keys->len)
          g_message ("config %s: [pool %s]: %s changed in the config; left "
                     "as it is (restart, or apply it with rmradm)",
                     path, pc->name, keys->str);
      }
      continue;
    }
    if (was) {
      g_message ("config %s: [pool %s]: not running (it left through the "
                 "control socket); left so (restart to apply the config)",
                 path, pc->name);
      continue;
    }
    /* New in the file: applied as at start, or not at all. */
    sync = pool_find_sync (pc->name);
    had_sync = sync != NULL;
    if (sync)
      pool_put (sync);
    if (apply_join (path, pc, &joined) < 0 || apply_store (path, pc) < 0) {
      /* Not a pool someone joined through the control socket meanwhile. */
      if (joined)
        undo_pool (pc->name, had_sync); /* keeps the error */
      g_warning ("%s", rmr_get_error ());
      (*failed)++;
      continue;
    }
    g_message ("config %s: [pool %s]: added", path, pc->name);
    g_array_append_val (fresh, *pc);
    memset (pc, 0, sizeof *pc);
    (*added)++;
  }

  if (g_applied) {
    g_hash_table_iter_init (&it, g_applied);
    while (g_hash_table_iter_next (&it, &key, &value)) {
      struct srv_pool *p;
      if (has_pool (pools, key) || has_pool (fresh, key))
        continue;
      p = pool_find (key);
      if (p) {
        g_message ("config %s: [pool %s]: gone from the config; still "
                   "running (leave_pool through rmradm to remove it)",
                   path, (const char *) key);
        pool_put (p);
      }
    }
  }
  remember (kf, fresh);
  return 0;
}
