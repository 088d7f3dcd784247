/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Control handlers of the resync side of a storage node (control.c has
 * the table): the admin guide's sync pool, i.e. the rmr-client tree of a
 * storage node (join_pool sync=y, add_sess, sessions, del_sess), the
 * server pool's add_clt, and `sync` (start, stop, progress).
 *
 * Every server pool owns its sync pool (pool->peers), so join_pool sync=y
 * and add_clt only check that they name a server pool with a matching
 * chunk size: the admin guide's steps work, and a config file needs none
 * of them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "error.h"
#include "internal.h"
#include "parse.h"
#include "util.h"

static int
fail (GString *err)
{
  g_string_append (err, rmr_get_error () ? rmr_get_error () : "failed");
  return -1;
}

static struct srv_pool *
need_pool (const char *name, GString *err)
{
  struct srv_pool *p = pool_find (name);

  if (!p)
    g_string_append_printf (err,
                            "no such pool '%s' (rmr-server/ctl/"
                            "join_pool first)",
                            name);
  return p;
}

/* The sync pool (rmr-client tree), unless it left. */
static struct srv_pool *
need_sync_pool (const char *name, GString *err)
{
  struct srv_pool *p = pool_find_sync (name);

  if (!p)
    g_string_append_printf (err,
                            "no such sync pool '%s' (rmr-client/ctl/"
                            "join_pool sync=y first)",
                            name);
  return p;
}

int
control_sync_settings (const char *pool, unsigned parallel, uint64_t rate_bps,
                       uint64_t min_rate_bps, bool manual)
{
  struct srv_pool *p = pool_find (pool);

  if (!p)
    return rmr_err (ENOENT, "no such pool '%s'", pool);
  g_mutex_lock (&p->lock);
  if (parallel)
    p->sync_parallel = parallel;
  p->sync_rate = rate_bps;
  p->sync_min_rate = min_rate_bps;
  p->sync_manual = manual;
  g_mutex_unlock (&p->lock);
  pool_put (p);
  return 0;
}

int
control_sync_rate (const char *pool, uint64_t rate_bps, uint64_t min_rate_bps)
{
  struct srv_pool *p = pool_find (pool);

  if (!p)
    return rmr_err (ENOENT, "no such pool '%s'", pool);
  g_mutex_lock (&p->lock);
  p->sync_rate = rate_bps;
  p->sync_min_rate = min_rate_bps;
  if (p->sync)
    sync_set_rate (p->sync, rate_bps, min_rate_bps);
  g_mutex_unlock (&p->lock);
  pool_put (p);
  return 0;
}

int
control_al_settings (const char *pool, unsigned extents, unsigned shift)
{
  struct srv_pool *p = pool_find (pool);

  if (!p)
    return rmr_err (ENOENT, "no such pool '%s'", pool);
  g_mutex_lock (&p->lock);
  p->al_extents = extents;
  p->al_shift = shift;
  g_mutex_unlock (&p->lock);
  if (!extents)
    g_warning ("pool %s: al_extents=0: no recent-write record; after a "
               "compute-host crash the legs may differ unnoticed (for "
               "measurements only)",
               pool);
  pool_put (p);
  return 0;
}

int
control_add_peer (const char *pool, const char *sessname, const char *addr,
                  bool check)
{
  struct srv_pool *p = pool_find_sync (pool);
  char name[RMR_SESS_NAME_MAX + 1], *c;
  struct rmr_addr a;
  int r;

  if (!p)
    return rmr_err (ENOENT, "no such pool '%s'", pool);
  r = rmr_addr_parse ("path", addr, &a);
  if (r == 0) {
    if (!sessname) {
      /* "POOL@HOST:PORT" in the characters a session name allows,
       * cut to its length.
       */
      g_autofree char *full =
        g_strdup_printf ("%s@%s:%u", pool, a.host, a.port);
      g_strlcpy (name, full, sizeof name);
      for (c = name; *c; c++)
        if (!g_ascii_isalnum (*c) && !strchr ("._@:-", *c))
          *c = '_';
      sessname = name;
    }
    r = rmr_sync_pool_add_sess (p->peers, sessname, &a, check);
  }
  if (r == 0)
    g_message ("pool %s: sync session %s to %s", pool, sessname, addr);
  pool_put (p);
  return r;
}

/* rmr-client/ctl/join_pool poolname= chunk_size= sync=y */
int
ctl_sync_join_pool (void *o, char **args, const char *value,
                    const struct ctl_kv *kv, GString *out, GString *err)
{
  const char *sync = ctl_kv_get (kv, "sync");
  const char *cs = ctl_kv_get (kv, "chunk_size");
  struct srv_pool *p;
  uint64_t chunk = 0;
  bool y = false;
  int r = 0;

  if (!sync || rmr_parse_bool ("sync", sync, &y) < 0 || !y) {
    g_string_append (err, "sync: a storage node only has sync pools "
                          "(sync=y); the IO pool is nbdkit's");
    return -1;
  }
  if (cs && rmr_parse_bytes ("chunk_size", cs, &chunk) < 0)
    return fail (err);
  p = need_pool (ctl_kv_get (kv, "poolname"), err);
  if (!p)
    return -1;
  g_mutex_lock (&p->lock);
  if (chunk && p->store && p->store->sb.chunk_size &&
      p->store->sb.chunk_size != chunk) {
    g_string_append_printf (err,
                            "chunk_size: %" PRIu64 ", but pool '%s' "
                            "has %" PRIu32,
                            chunk, p->name, p->store->sb.chunk_size);
    r = -1;
  }
  g_mutex_unlock (&p->lock);
  if (r == 0)
    pool_sync_join (p);
  pool_put (p);
  return r;
}

/* rmr-client/pools/NAME/leave_pool: the admin guide's "Graceful exit"
 * step 5 on a storage node; refused while the sync pool has sessions.
 */
int
ctl_sync_leave_pool (void *o, char **args, const char *value,
                     const struct ctl_kv *kv, GString *out, GString *err)
{
  if (strcmp (value, "1") != 0) {
    g_string_append_printf (err, "value: '%s', write 1 to confirm", value);
    return -1;
  }
  return pool_sync_leave (args[0]) < 0 ? fail (err) : 0;
}

int
ctl_sync_add_clt (void *o, char **args, const char *value,
                  const struct ctl_kv *kv, GString *out, GString *err)
{
  struct srv_pool *p;

  if (strcmp (value, args[0]) != 0) {
    g_string_append_printf (err,
                            "value: '%s': a server pool uses the sync "
                            "pool of its own name ('%s')",
                            value, args[0]);
    return -1;
  }
  p = need_pool (args[0], err);
  if (!p)
    return -1;
  pool_put (p);
  return 0;
}

int
ctl_sync_list_pools (void *o, char **args, GPtrArray *names)
{
  g_autoptr (GPtrArray) all = pool_sync_names ();
  unsigned i;

  for (i = 0; i < all->len; i++)
    g_ptr_array_add (names, g_strdup (g_ptr_array_index (all, i)));
  return 0;
}

int
ctl_sync_add_sess (void *o, char **args, const char *value,
                   const struct ctl_kv *kv, GString *out, GString *err)
{
  const char *sessname = ctl_kv_get (kv, "sessname");
  struct srv_pool *p;

  if (rmr_check_sess_name ("sessname", sessname) < 0)
    return fail (err);
  p = need_sync_pool (args[0], err);
  if (!p)
    return -1;
  pool_put (p);
  return control_add_peer (args[0], sessname, ctl_kv_get (kv, "path"), true) < 0
           ? fail (err)
           : 0;
}

int
ctl_sync_list_sessions (void *o, char **args, GPtrArray *names)
{
  struct srv_pool *p = pool_find_sync (args[0]);
  struct rmr_leg_info info;
  unsigned i;

  if (!p)
    return 0;
  for (i = 0; i < rmr_pool_nlegs (p->peers); i++)
    if (rmr_pool_leg_info (p->peers, i, &info) == 0 && info.sessname[0])
      g_ptr_array_add (names, g_strdup (info.sessname));
  pool_put (p);
  return 0;
}

enum sess_attr {
  S_STATE,
  S_MEMBER_ID,
  S_PATH,
  S_SENT,
  S_RECEIVED,
  S_READS,
  S_LAST_ERROR,
  S_TRANSPORT
};

static int
sess_attr (char **args, GString *out, GString *err, enum sess_attr a)
{
  struct srv_pool *p = need_sync_pool (args[0], err);
  struct rmr_leg_info info;
  unsigned i;
  int r = -1;

  if (!p)
    return -1;
  for (i = 0; i < rmr_pool_nlegs (p->peers); i++)
    if (rmr_pool_leg_info (p->peers, i, &info) == 0 &&
        strcmp (info.sessname, args[1]) == 0) {
      r = 0;
      break;
    }
  pool_put (p);
  if (r < 0) {
    g_string_append_printf (err, "no such session '%s'", args[1]);
    return -1;
  }
  switch (a) {
  case S_STATE: g_string_append_printf (out, "%s\n", info.state); break;
  case S_MEMBER_ID:
    if (info.member_id != RMR_MEMBER_NONE)
      g_string_append_printf (out, "%" PRIu32 "\n", info.member_id);
    break;
  case S_PATH: g_string_append_printf (out, "%s\n", info.addr); break;
  case S_SENT:
    g_string_append_printf (out, "%" PRIu64 "\n", info.bytes_sent);
    break;
  case S_RECEIVED:
    g_string_append_printf (out, "%" PRIu64 "\n", info.bytes_received);
    break;
  case S_READS:
    g_string_append_printf (out, "%" PRIu64 "\n", info.reads);
    break;
  case S_LAST_ERROR:
    if (info.last_error[0])
      g_string_append_printf (out, "%s\n", info.last_error);
    break;
  case S_TRANSPORT:
    if (info.transport[0])
      g_string_append_printf (out, "%s\n", info.transport);
    break;
  }
  return 0;
}

#define SESS_GETTER(fn, attr)                                                  \
  int fn (void *o, char **args, GString *out, GString *err)                    \
  {                                                                            \
    return sess_attr (args, out, err, attr);                                   \
  }
SESS_GETTER (ctl_sync_sess_state, S_STATE)
SESS_GETTER (ctl_sync_sess_member_id, S_MEMBER_ID)
SESS_GETTER (ctl_sync_sess_path, S_PATH)
SESS_GETTER (ctl_sync_sess_bytes_sent, S_SENT)
SESS_GETTER (ctl_sync_sess_bytes_received, S_RECEIVED)
SESS_GETTER (ctl_sync_sess_reads, S_READS)
SESS_GETTER (ctl_sync_sess_last_error, S_LAST_ERROR)
SESS_GETTER (ctl_sync_sess_transport, S_TRANSPORT)

int
ctl_sync_del_sess (void *o, char **args, const char *value,
                   const struct ctl_kv *kv, GString *out, GString *err)
{
  const char *mode = ctl_kv_get (kv, "mode");
  struct srv_pool *p;
  int r;

  if (mode && strcmp (mode, "disassemble") != 0 &&
      strcmp (mode, "delete") != 0) {
    g_string_append_printf (err, "mode: '%s' is not disassemble or delete",
                            mode);
    return -1;
  }
  p = need_sync_pool (args[0], err);
  if (!p)
    return -1;
  r = rmr_sync_pool_del_sess (p->peers, args[1]);
  pool_put (p);
  return r < 0 ? fail (err) : 0;
}

/* rmr-server/pools/NAME/sync: progress; write start or stop. */
int
ctl_sync_get (void *o, char **args, GString *out, GString *err)
{
  struct srv_pool *p = need_pool (args[0], err);
  int r = 0;

  if (!p)
    return -1;
  g_mutex_lock (&p->lock);
  if (p->sync)
    sync_status (p->sync, out);
  else if (p->store) {
    /* The admin guide reads this right after the sync pool setup.  A
     * replacement is behind for every chunk; anything else has nothing
     * to resync yet (rmradm sync --wait goes by dirty).
     */
    uint64_t n;
    g_mutex_lock (&p->store->md_lock);
    n = control_nchunks_without_maps_unlocked (p);
    if (!(p->store->sb.flags & RMR_SB_F_REPLACED))
      n = 0;
    g_mutex_unlock (&p->store->md_lock);
    g_string_append_printf (
      out,
      "state: waiting (no dirty map until a client "
      "enables the pool; the resync then %s)\n"
      "done: 0\ntotal: %" PRIu64 "\ndirty: %" PRIu64 "\n",
      p->sync_manual ? "waits for sync start" : "starts by itself", n, n);
  }
  else {
    g_string_append_printf (err, "pool '%s' has no store", p->name);
    r = -1;
  }
  g_mutex_unlock (&p->lock);
  pool_put (p);
  return r;
}

int
ctl_sync_set (void *o, char **args, const char *value, const struct ctl_kv *kv,
              GString *out, GString *err)
{
  struct srv_pool *p;
  bool start;
  int r = 0;

  if (strcmp (value, "start") == 0)
    start = true;
  else if (strcmp (value, "stop") == 0)
    start = false;
  else {
    g_string_append_printf (err, "value: '%s' is not start or stop", value);
    return -1;
  }
  p = need_pool (args[0], err);
  if (!p)
    return -1;
  g_mutex_lock (&p->lock);
  /* The last word holds for a resync made later too (a store attached
   * again, a replacement).
   */
  p->sync_manual = !start;
  if (p->sync)
    sync_command (p->sync, start);
  else {
    /* No maps yet (the admin guide starts the sync right after the sync
     * pool setup, or right after a replacement disk is added): the
     * setting holds for the resync the pool gets with its maps.
     */
    g_string_append_printf (out,
                            "pool '%s' has no dirty map yet: the resync "
                            "%s once a client enables the pool\n",
                            p->name, start ? "starts" : "waits for sync start");
  }
  g_mutex_unlock (&p->lock);
  pool_put (p);
  return r;
}

/* rmr-server/pools/NAME/sync_rate: the resync's pace, read and set on a
 * running pool (also a running resync: sync_set_rate).  The config's
 * sync_rate and sync_min_rate, until a restart or a reload that changes
 * them in the file.
 */
int
ctl_sync_rate_get (void *o, char **args, GString *out, GString *err)
{
  struct srv_pool *p = need_pool (args[0], err);

  if (!p)
    return -1;
  g_mutex_lock (&p->lock);
  g_string_append_printf (out, "rate: %" PRIu64 "\nmin_rate: %" PRIu64 "\n",
                          p->sync_rate, p->sync_min_rate);
  g_mutex_unlock (&p->lock);
  pool_put (p);
  return 0;
}

int
ctl_sync_rate_set (void *o, char **args, const char *value,
                   const struct ctl_kv *kv, GString *out, GString *err)
{
  const char *rate_s = ctl_kv_get (kv, "rate");
  const char *min_s = ctl_kv_get (kv, "min_rate");
  uint64_t rate, min_rate;
  struct srv_pool *p;

  if (!rate_s && !min_s) {
    g_string_append (err, "give rate=BYTES/s, min_rate=BYTES/s or both");
    return -1;
  }
  if (rate_s && rmr_parse_bytes ("rate", rate_s, &rate) < 0)
    return fail (err);
  if (min_s && rmr_parse_bytes ("min_rate", min_s, &min_rate) < 0)
    return fail (err);
  p = need_pool (args[0], err);
  if (!p)
    return -1;
  g_mutex_lock (&p->lock);
  if (!rate_s)
    rate = p->sync_rate;
  if (!min_s)
    min_rate = p->sync_min_rate;
  g_mutex_unlock (&p->lock);
  pool_put (p);
  if (control_sync_rate (args[0], rate, min_rate) < 0)
    return fail (err);
  g_message ("pool %s: sync_rate=%" PRIu64 " sync_min_rate=%" PRIu64
             " (bytes/s) set through the control socket",
             args[0], rate, min_rate);
  return 0;
}

/* rmr-server/pools/NAME/verify: the last online verify; write op=start
 * [source=MEMBER] [rate=R] or op=stop (verify.c).
 */
int
ctl_verify_get (void *o, char **args, GString *out, GString *err)
{
  struct srv_pool *p = need_pool (args[0], err);

  if (!p)
    return -1;
  g_mutex_lock (&p->lock);
  verify_status (p->verify, out);
  g_mutex_unlock (&p->lock);
  pool_put (p);
  return 0;
}

int
ctl_verify_set (void *o, char **args, const char *value,
                const struct ctl_kv *kv, GString *out, GString *err)
{
  const char *op = ctl_kv_get (kv, "op"), *src = ctl_kv_get (kv, "source");
  const char *rate_s = ctl_kv_get (kv, "rate");
  uint32_t source = RMR_MEMBER_NONE;
  uint64_t rate = 0;
  struct srv_pool *p;
  int r;

  if (strcmp (op, "start") && strcmp (op, "stop")) {
    g_string_append_printf (err, "op: '%s' is not start or stop", op);
    return -1;
  }
  if (!strcmp (op, "stop") && (src || rate_s)) {
    g_string_append (err, "op=stop takes no source or rate");
    return -1;
  }
  if (src && rmr_parse_member_id ("source", src, &source) < 0)
    return fail (err);
  if (rate_s && rmr_parse_bytes ("rate", rate_s, &rate) < 0)
    return fail (err);
  p = need_pool (args[0], err);
  if (!p)
    return -1;
  if (!strcmp (op, "stop")) {
    verify_stop (p);
    r = 0;
  }
  else
    r = verify_start (p, source, rate, err);
  pool_put (p);
  return r;
}
