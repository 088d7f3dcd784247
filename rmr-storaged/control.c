/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's control interface: the admin guide's rmr-server and
 * brmr-server trees as one command table (common/ctl.h), served on the
 * control socket and used by rmradm.  The same table gives the help, the
 * status and the JSON.
 *
 * Sizes are shown as the admin guide shows them: mapped_size and dev_size
 * in 512-byte sectors.  Every set is checked completely before anything
 * changes, and its outcome is logged.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "error.h"
#include "internal.h"
#include "parse.h"
#include "util.h"

static struct ctl_server *g_ctl;

static int
fail (GString *err, int r)
{
  g_string_append (err, rmr_get_error () ? rmr_get_error ()
                                         : strerror (r < 0 ? -r : r));
  return -1;
}

/* Pool from args[0] with a reference, or NULL with err set. */
static struct srv_pool *
arg_pool (char **args, GString *err)
{
  struct srv_pool *p = pool_find (args[0]);

  if (!p)
    g_string_append_printf (err, "no such pool '%s'", args[0]);
  return p;
}

int
control_join_pool (const char *pool, uint32_t member_id, uint32_t chunk_size)
{
  if (rmr_check_pool_name ("poolname", pool) < 0)
    return -EINVAL;
  return pool_create (pool, member_id, chunk_size);
}

/* A replacement disk for p (replace.c): the pool's size checked, then
 * the disk formatted as a replacement.
 */
static int
replace_store (struct srv_pool *p, const char *device, uint64_t mapped_size,
               bool force, struct store **st)
{
  g_autoptr (GString) err = g_string_new (NULL);
  struct replace_known k;
  uint64_t size;

  unsigned i;
  int r;

  g_mutex_lock (&p->lock);
  k = p->known;
  g_mutex_unlock (&p->lock);
  /* After a restart: the pool as a peer that holds it says. */
  for (i = 0; !k.known && i < rmr_sync_npeers (p->peers); i++) {
    uint32_t cs;
    if (rmr_sync_peer_pool (p->peers, i, &k.mapped_size, &cs, &k.generation) ==
          0 &&
        k.generation) {
      k.known = true;
      k.chunk_size = cs;
      snprintf (k.from, sizeof k.from, "as member %" PRIu32 " holds it",
                rmr_sync_peer_member (p->peers, i));
    }
  }
  r = replace_decide (&k, p->name, mapped_size, &size, err);
  if (r < 0)
    return rmr_err (-r, "%s", err->str);
  g_mutex_lock (&p->lock);
  if (!p->known.known)
    p->known = k;
  g_mutex_unlock (&p->lock);
  return store_create_replacement (device, p->name, p->member_id, size, force,
                                   st);
}

int
control_add_store (const char *device, const char *pool, uint64_t mapped_size,
                   enum store_mode mode, bool force)
{
  struct srv_pool *p = pool_find (pool), *other;
  struct store *st;
  int r;

  if (!p)
    return rmr_err (ENOENT, "pool: no such pool '%s' (join_pool first)", pool);
  if (p->store) {
    r = rmr_err (EBUSY, "pool: pool '%s' has a store already (%s)", pool,
                 p->store->path);
    goto out;
  }
  other = pool_find_store_path (device);
  if (other) {
    r = rmr_err (EBUSY, "device: %s is the store of pool '%s' already", device,
                 other->name);
    pool_put (other);
    goto out;
  }
  switch (mode) {
  case STORE_MODE_CREATE:
    r = store_create (device, pool, p->member_id, mapped_size, force, &st);
    break;
  case STORE_MODE_ATTACH:
  case STORE_MODE_ADD:
    r = store_open (device, pool, p->member_id, mapped_size, p->cfg_chunk_size,
                    &st);
    /* The admin guide: add_store of a disk without metadata is a
     * replacement (a disk that does not exist is no disk).
     */
    if (r == -ENODATA && mode == STORE_MODE_ADD) {
      g_message ("pool %s: %s has no rmr metadata: add_store mode=add "
                 "treats it as a replacement",
                 pool, device);
      r = replace_store (p, device, mapped_size, force, &st);
    }
    break;
  case STORE_MODE_REPLACE:
    r = replace_store (p, device, mapped_size, force, &st);
    break;
  default: abort ();
  }
  if (r < 0)
    goto out;
  r = pool_attach_store (p, st);
  if (r < 0)
    store_close (st);
out:
  pool_put (p);
  return r;
}

/* rmr-server/ctl/join_pool poolname= member_id= [chunk_size=] */
static int
set_join_pool (void *o, char **args, const char *value, const struct ctl_kv *kv,
               GString *out, GString *err)
{
  const char *cs = ctl_kv_get (kv, "chunk_size");
  uint32_t member_id;
  uint64_t chunk = 0;
  int r;

  if (rmr_parse_member_id ("member_id", ctl_kv_get (kv, "member_id"),
                           &member_id) < 0 ||
      (cs && rmr_parse_bytes ("chunk_size", cs, &chunk) < 0))
    return fail (err, -EINVAL);
  if (cs && (!is_power_of_2 (chunk) || chunk < RMR_MIN_CHUNK_SIZE ||
             chunk > RMR_MAX_CHUNK_SIZE)) {
    g_string_append_printf (err,
                            "chunk_size: '%s' is not a power of two "
                            "from 4K to 64M",
                            cs);
    return -1;
  }
  r = control_join_pool (ctl_kv_get (kv, "poolname"), member_id, chunk);
  return r < 0 ? fail (err, r) : 0;
}

static int
set_store (const struct ctl_kv *kv, GString *err, bool create)
{
  const char *mode = ctl_kv_get (kv, "mode");
  const char *ms = ctl_kv_get (kv, "mapped_size");
  const char *f = ctl_kv_get (kv, "force");
  uint64_t mapped_size = 0;
  bool force = false;
  int r;

  enum store_mode sm = create ? STORE_MODE_CREATE : STORE_MODE_ADD;

  if (!create && mode && strcmp (mode, "replace") == 0)
    sm = STORE_MODE_REPLACE;
  else if (!create && mode && strcmp (mode, "add") != 0) {
    g_string_append_printf (err, "mode: '%s' is not add or replace", mode);
    return -1;
  }
  if (ms && rmr_parse_sectors_or_bytes ("mapped_size", ms, &mapped_size) < 0)
    return fail (err, -EINVAL);
  if (create && mapped_size == 0) {
    g_string_append (err, "mapped_size: must be greater than 0");
    return -1;
  }
  if (f && rmr_parse_bool ("force", f, &force) < 0)
    return fail (err, -EINVAL);
  r = control_add_store (ctl_kv_get (kv, "device"), ctl_kv_get (kv, "pool"),
                         mapped_size, sm, force);
  if (r == -EMEDIUMTYPE) {
    /* The store names what it found; the way on is this command's. */
    fail (err, r);
    g_string_append (err, "; add force=1 to overwrite it");
    return -1;
  }
  return r < 0 ? fail (err, r) : 0;
}

static int
set_create_store (void *o, char **args, const char *value,
                  const struct ctl_kv *kv, GString *out, GString *err)
{
  return set_store (kv, err, true);
}

static int
set_add_store (void *o, char **args, const char *value, const struct ctl_kv *kv,
               GString *out, GString *err)
{
  return set_store (kv, err, false);
}

static int
list_pools (void *o, char **args, GPtrArray *names)
{
  g_autoptr (GPtrArray) all = pool_names ();
  unsigned i;

  for (i = 0; i < all->len; i++)
    g_ptr_array_add (names, g_strdup (g_ptr_array_index (all, i)));
  return 0;
}

/* Stores are named by their pool, as in the admin guide. */
static int
list_stores (void *o, char **args, GPtrArray *names)
{
  g_autoptr (GPtrArray) all = pool_names ();
  unsigned i;

  for (i = 0; i < all->len; i++) {
    struct srv_pool *p = pool_find (g_ptr_array_index (all, i));
    if (!p)
      continue;
    g_mutex_lock (&p->lock);
    if (p->store)
      g_ptr_array_add (names, g_strdup (p->name));
    g_mutex_unlock (&p->lock);
    pool_put (p);
  }
  return 0;
}

enum pool_attr {
  PA_STATE,
  PA_MEMBER_ID,
  PA_GROUP_ID,
  PA_GENERATION,
  PA_CHUNK_SIZE,
  PA_SESSIONS,
  PA_MEMBERS,
  PA_MEMBER_STATES,
  PA_MAP_SUMMARY,
  PA_MAP,
};

/* map_summary of a pool that has no maps yet (its store was never
 * enabled, as after the admin guide's sync pool setup, before the first
 * IO): what is known, in the same form.  The members of the store's table
 * (none yet: this member alone); nothing dirty, except on a replacement
 * disk, which is behind everywhere (replace.c).  Chunks counted with the
 * store's chunk size, else the one of the store it replaces, else the
 * pool's configured one, else the default a client creates with.  Lock
 * held.
 */
uint64_t
control_nchunks_without_maps_unlocked (struct srv_pool *p)
{
  const struct rmr_sb *sb = &p->store->sb;
  uint32_t cs = sb->chunk_size        ? sb->chunk_size
                : p->known.chunk_size ? p->known.chunk_size
                : p->cfg_chunk_size   ? p->cfg_chunk_size
                                      : RMR_DEFAULT_CHUNK_SIZE;

  return (sb->mapped_size + cs - 1) / cs;
}

static void
summary_without_maps_unlocked (struct srv_pool *p, GString *out)
{
  const struct rmr_sb *sb = &p->store->sb;
  uint64_t n = control_nchunks_without_maps_unlocked (p), c;
  bool any = false, replaced = sb->flags & RMR_SB_F_REPLACED;
  unsigned i;

  for (i = 0; i <= RMR_MAX_MEMBERS; i++) {
    uint32_t m = i < RMR_MAX_MEMBERS ? sb->members[i].member_id : p->member_id;
    if (m == RMR_MEMBER_NONE || (i == RMR_MAX_MEMBERS && any))
      continue;
    any = true;
    g_string_append_printf (out, "member %" PRIu32 ": [", m);
    if (replaced && m == p->member_id) {
      for (c = 0; c < n && c < 30; c++)
        g_string_append_printf (out, "%s%" PRIu64, c ? " " : "", c);
      g_string_append_printf (out, "] %" PRIu64 "/%" PRIu64 " dirty\n", n, n);
    }
    else
      g_string_append_printf (out, "] 0/%" PRIu64 " dirty\n", n);
  }
}

static int
get_pool_attr (char **args, GString *out, GString *err, enum pool_attr a)
{
  struct srv_pool *p = arg_pool (args, err);
  unsigned i;

  if (!p)
    return -1;
  g_mutex_lock (&p->lock);
  switch (a) {
  case PA_STATE:
    g_string_append_printf (out, "%s\n", pool_state_name (p->state));
    break;
  case PA_MEMBER_ID:
    g_string_append_printf (out, "%" PRIu32 "\n", p->member_id);
    break;
  case PA_GROUP_ID:
    g_string_append_printf (out, "%" PRIu32 "\n", p->group_id);
    break;
  case PA_GENERATION:
    g_string_append_printf (out, "%" PRIu64 "\n", p->generation);
    break;
  case PA_CHUNK_SIZE:
    g_string_append_printf (out, "%" PRIu32 "\n",
                            p->store ? p->store->sb.chunk_size
                                     : p->cfg_chunk_size);
    break;
  case PA_SESSIONS:
    for (i = 0; i < p->sessions->len; i++) {
      struct srv_psess *ps = g_ptr_array_index (p->sessions, i);
      g_string_append_printf (out, "%s %s %s%s\n", ps->sessname, ps->peer,
                              ps->enabled ? "enabled" : "joined",
                              ps->sync ? " sync" : "");
    }
    break;
  case PA_MAP_SUMMARY:
  case PA_MAP:
    if (!p->maps && p->store && a == PA_MAP_SUMMARY) {
      g_mutex_lock (&p->store->md_lock);
      summary_without_maps_unlocked (p, out);
      g_mutex_unlock (&p->store->md_lock);
      break;
    }
    if (!p->maps) {
      g_string_append_printf (err,
                              "pool '%s' has no dirty map yet (the "
                              "pool was never enabled)",
                              p->name);
      g_mutex_unlock (&p->lock);
      pool_put (p);
      return -1;
    }
    if (a == PA_MAP_SUMMARY)
      maps_summary (p->maps, p->store->sb.members, out);
    else
      maps_dump (p->maps, p->store->sb.members, out);
    break;
  case PA_MEMBER_STATES:
    if (p->store) {
      struct rmr_member_md m[RMR_MAX_MEMBERS];
      g_mutex_lock (&p->store->md_lock);
      memcpy (m, p->store->sb.members, sizeof m);
      g_mutex_unlock (&p->store->md_lock);
      for (i = 0; i < RMR_MAX_MEMBERS; i++) {
        uint64_t n;
        if (m[i].member_id == RMR_MEMBER_NONE)
          continue;
        n = p->maps ? maps_count (p->maps, i) : 0;
        g_string_append_printf (
          out, "member %" PRIu32 ": %s since generation %" PRIu64,
          m[i].member_id,
          m[i].state != RMR_MEMBER_DIRTY ? "up-to-date"
          : (int) i == p->my_slot        ? "inconsistent"
                                         : "outdated",
          m[i].since);
        if (n)
          g_string_append_printf (out, ", %" PRIu64 " chunks to resync", n);
        if ((int) i == p->my_slot)
          g_string_append (out, " (this member)");
        g_string_append_c (out, '\n');
      }
    }
    break;
  case PA_MEMBERS:
    if (p->store) {
      g_mutex_lock (&p->store->md_lock);
      for (i = 0; i < RMR_MAX_MEMBERS; i++)
        if (p->store->sb.members[i].member_id != RMR_MEMBER_NONE)
          g_string_append_printf (out, "slot %u: member %" PRIu32 "\n", i,
                                  p->store->sb.members[i].member_id);
      g_mutex_unlock (&p->store->md_lock);
    }
    break;
  }
  g_mutex_unlock (&p->lock);
  pool_put (p);
  return 0;
}

#define POOL_GETTER(fn, attr)                                                  \
  static int fn (void *o, char **args, GString *out, GString *err)             \
  {                                                                            \
    return get_pool_attr (args, out, err, attr);                               \
  }
POOL_GETTER (get_pool_state, PA_STATE)
POOL_GETTER (get_pool_member_id, PA_MEMBER_ID)
POOL_GETTER (get_pool_group_id, PA_GROUP_ID)
POOL_GETTER (get_pool_generation, PA_GENERATION)
POOL_GETTER (get_pool_chunk_size, PA_CHUNK_SIZE)
POOL_GETTER (get_pool_sessions, PA_SESSIONS)
POOL_GETTER (get_pool_members, PA_MEMBERS)
POOL_GETTER (get_pool_member_states, PA_MEMBER_STATES)
POOL_GETTER (get_pool_map_summary, PA_MAP_SUMMARY)
POOL_GETTER (get_pool_map, PA_MAP)

static bool
is_one (const char *value, GString *err)
{
  if (strcmp (value, "1") == 0)
    return true;
  g_string_append_printf (err, "value: '%s', write 1 to confirm", value);
  return false;
}

static int
set_leave_pool (void *o, char **args, const char *value,
                const struct ctl_kv *kv, GString *out, GString *err)
{
  int r;

  if (!is_one (value, err))
    return -1;
  r = pool_delete (args[0]);
  return r < 0 ? fail (err, r) : 0;
}

enum store_attr {
  SA_STATE,
  SA_MAPPED_SIZE,
  SA_BDEV_NAME,
  SA_DEV_SIZE,
  SA_PATH,
  SA_DATA_OFFSET
};

static int
get_store_attr (char **args, GString *out, GString *err, enum store_attr a)
{
  struct srv_pool *p = arg_pool (args, err);
  struct store *st;
  int r = 0;

  if (!p)
    return -1;
  g_mutex_lock (&p->lock);
  st = p->store;
  if (!st) {
    g_string_append_printf (err, "no such store '%s'", args[0]);
    r = -1;
  }
  else
    switch (a) {
    case SA_STATE:
      g_string_append (out,
                       st->state == STORE_MAPPED ? "open\nmapped\n" : "open\n");
      break;
    case SA_MAPPED_SIZE:
      g_string_append_printf (out, "%" PRIu64 "\n", st->sb.mapped_size / 512);
      break;
    case SA_BDEV_NAME:
      g_string_append_printf (out, "%s\n", st->bdev_name);
      break;
    case SA_DEV_SIZE:
      g_string_append_printf (out, "%" PRIu64 "\n", st->dev_size / 512);
      break;
    case SA_PATH: g_string_append_printf (out, "%s\n", st->path); break;
    case SA_DATA_OFFSET:
      g_string_append_printf (out, "%" PRIu64 "\n", st->sb.data_offset);
      break;
    }
  g_mutex_unlock (&p->lock);
  pool_put (p);
  return r;
}

#define STORE_GETTER(fn, attr)                                                 \
  static int fn (void *o, char **args, GString *out, GString *err)             \
  {                                                                            \
    return get_store_attr (args, out, err, attr);                              \
  }
STORE_GETTER (get_store_state, SA_STATE)
STORE_GETTER (get_store_mapped_size, SA_MAPPED_SIZE)
STORE_GETTER (get_store_bdev_name, SA_BDEV_NAME)
STORE_GETTER (get_store_dev_size, SA_DEV_SIZE)
STORE_GETTER (get_store_path, SA_PATH)
STORE_GETTER (get_store_data_offset, SA_DATA_OFFSET)

static int
remove_store (char **args, const char *value, GString *err, bool wipe)
{
  struct srv_pool *p;
  int r;

  if (!is_one (value, err))
    return -1;
  p = arg_pool (args, err);
  if (!p)
    return -1;
  r = pool_remove_store (p, wipe);
  pool_put (p);
  return r < 0 ? fail (err, r) : 0;
}

static int
set_remove_store (void *o, char **args, const char *value,
                  const struct ctl_kv *kv, GString *out, GString *err)
{
  return remove_store (args, value, err, false);
}

static int
set_delete_store (void *o, char **args, const char *value,
                  const struct ctl_kv *kv, GString *out, GString *err)
{
  return remove_store (args, value, err, true);
}

/* brmr-server/stores/NAME/fault: op=read|write|any|off [count=N|always]
 * [errno=EIO|ENOSPC|EROFS] -- only with --enable-fault-injection.
 */
static int
set_fault (void *o, char **args, const char *value, const struct ctl_kv *kv,
           GString *out, GString *err)
{
  static const char *const ops[] = {"off", "read", "write", "any"};
  const char *op = ctl_kv_get (kv, "op"), *count = ctl_kv_get (kv, "count");
  const char *e = ctl_kv_get (kv, "errno");
  struct srv_pool *p;
  uint64_t n = 1;
  int i, errnum = EIO;

  if (!g_fault_injection) {
    g_string_append (err, "fault injection is disabled (start rmr-storaged "
                          "with --enable-fault-injection, for tests only)");
    return -1;
  }
  for (i = 0; i < (int) ARRAY_SIZE (ops) && strcmp (op, ops[i]); i++)
    ;
  if (i == (int) ARRAY_SIZE (ops)) {
    g_string_append_printf (err, "op: '%s' is not read, write, any or off", op);
    return -1;
  }
  if (count && strcmp (count, "always") != 0 &&
      rmr_parse_uint ("count", count, 1, 1000000, &n) < 0)
    return fail (err, -EINVAL);
  if (e && strcmp (e, "EIO") && strcmp (e, "ENOSPC") && strcmp (e, "EROFS")) {
    g_string_append_printf (err, "errno: '%s' is not EIO, ENOSPC or EROFS", e);
    return -1;
  }
  if (e)
    errnum = !strcmp (e, "ENOSPC")  ? ENOSPC
             : !strcmp (e, "EROFS") ? EROFS
                                    : EIO;
  p = arg_pool (args, err);
  if (!p)
    return -1;
  atomic_store (&p->fault_errno, errnum);
  atomic_store (&p->fault_count,
                count && !strcmp (count, "always") ? -1 : (int) n);
  atomic_store (&p->fault_op, i);
  pool_put (p);
  return 0;
}

static int
get_fault (void *o, char **args, GString *out, GString *err)
{
  static const char *const ops[] = {"off", "read", "write", "any"};
  struct srv_pool *p = arg_pool (args, err);
  int n;

  if (!p)
    return -1;
  n = atomic_load (&p->fault_count);
  g_string_append_printf (out, "op=%s ", ops[atomic_load (&p->fault_op)]);
  if (n < 0)
    g_string_append (out, "count=always");
  else
    g_string_append_printf (out, "count=%d", n);
  g_string_append_printf (out, " errno=%d\n", atomic_load (&p->fault_errno));
  pool_put (p);
  return 0;
}

static int
get_metrics (void *o, char **args, GString *out, GString *err)
{
  srv_metrics_render (NULL, out);
  return 0;
}

static const struct ctl_cmd table[] = {
  {.path = "rmr-server/metrics",
   .get = get_metrics,
   .flags = CTL_F_NO_STATUS,
   .help = "every metric of the pools and stores in the Prometheus text "
           "format (rmradm metrics; --metrics serves it over HTTP)"},
  {.path = "rmr-server/ctl/join_pool",
   .set = set_join_pool,
   .keys = "poolname! member_id! chunk_size",
   .help = "create a server pool (state empty) with this node's member_id"},
  {.path = "rmr-server/pools/*",
   .list = list_pools,
   .help = "server pools on this node"},
  {.path = "rmr-server/pools/*/state",
   .get = get_pool_state,
   .help = "empty, registered, created, normal or no_io"},
  {.path = "rmr-server/pools/*/member_id",
   .get = get_pool_member_id,
   .help = "this node's member id in the pool"},
  {.path = "rmr-server/pools/*/group_id",
   .get = get_pool_group_id,
   .help = "jhash of the pool name, carried in every message"},
  {.path = "rmr-server/pools/*/generation",
   .get = get_pool_generation,
   .help = "pool generation in force (one per create or assemble)"},
  {.path = "rmr-server/pools/*/chunk_size",
   .get = get_pool_chunk_size,
   .help = "chunk size in bytes (0 before the pool is created)"},
  {.path = "rmr-server/pools/*/members",
   .get = get_pool_members,
   .help = "the pool's member slots as persisted on the store"},
  {.path = "rmr-server/pools/*/member_states",
   .get = get_pool_member_states,
   .help = "per member, this store's view of its data: up-to-date, "
           "outdated (it missed writes recorded here) or inconsistent "
           "(this member, resyncing), with the generation it was set in"},
  {.path = "rmr-server/pools/*/map_summary",
   .get = get_pool_map_summary,
   .help = "per member: the first 30 dirty chunks and N/TOTAL dirty"},
  {.path = "rmr-server/pools/*/map",
   .get = get_pool_map,
   .flags = CTL_F_NO_STATUS,
   .help = "per member: every dirty chunk number"},
  {.path = "rmr-server/pools/*/sessions",
   .get = get_pool_sessions,
   .help = "client sessions joined: name, peer, enabled or joined"},
  {.path = "rmr-server/pools/*/leave_pool",
   .set = set_leave_pool,
   .flags = CTL_F_RAW_VALUE,
   .help = "write 1: delete the server pool (refused while a store is "
           "registered or sessions are joined; the pool is gone once its "
           "sync pool left too)"},
  {.path = "rmr-server/pools/*/sync",
   .get = ctl_sync_get,
   .set = ctl_sync_set,
   .flags = CTL_F_RAW_VALUE,
   .help = "resync progress (done, total, rate, eta); write start or stop "
           "(the background sync; IO still resyncs what it touches)"},
  {.path = "rmr-server/pools/*/sync_rate",
   .get = ctl_sync_rate_get,
   .set = ctl_sync_rate_set,
   .keys = "rate min_rate",
   .help = "the resync's pace in bytes/s (0: unlimited) and its floor while "
           "clients do IO here (min_rate, 0: no slowing); write rate=R "
           "and/or min_rate=R to change it at once, also for a running "
           "resync (until a restart, or a reload that changes the config's "
           "sync_rate or sync_min_rate)"},
  {.path = "rmr-server/pools/*/verify",
   .get = ctl_verify_get,
   .set = ctl_verify_set,
   .keys = "op! source rate",
   .help = "online verify: the last one's result and progress; write "
           "op=start [source=MEMBER] [rate=BYTES/s] to compare every chunk "
           "with the peers by checksum (members that differ from the source, "
           "or from a majority of three or more, are marked outdated and "
           "resync the chunk), op=stop to end it"},
  {.path = "rmr-server/pools/*/add_clt",
   .set = ctl_sync_add_clt,
   .flags = CTL_F_RAW_VALUE,
   .help = "write the pool's name: use its sync pool for resync (every "
           "pool does already)"},
  {.path = "rmr-client/ctl/join_pool",
   .set = ctl_sync_join_pool,
   .keys = "poolname! chunk_size sync!",
   .help = "the sync pool of a server pool (sync=y): exists with it"},
  {.path = "rmr-client/pools/*",
   .list = ctl_sync_list_pools,
   .help = "sync pools: one per server pool"},
  {.path = "rmr-client/pools/*/leave_pool",
   .set = ctl_sync_leave_pool,
   .flags = CTL_F_RAW_VALUE,
   .help = "write 1: leave the sync pool (refused while it has sessions; "
           "the pool is gone once its server pool left too)"},
  {.path = "rmr-client/pools/*/add_sess",
   .set = ctl_sync_add_sess,
   .keys = "sessname! path!",
   .help = "a session to a peer member (path=tcp:HOST:PORT or ip:HOST)"},
  {.path = "rmr-client/pools/*/sessions/*",
   .list = ctl_sync_list_sessions,
   .help = "the sync pool's sessions to peers"},
  {.path = "rmr-client/pools/*/sessions/*/state",
   .get = ctl_sync_sess_state,
   .help = "normal when joined to the peer, else failed"},
  {.path = "rmr-client/pools/*/sessions/*/member_id",
   .get = ctl_sync_sess_member_id,
   .help = "the peer's member id"},
  {.path = "rmr-client/pools/*/sessions/*/path",
   .get = ctl_sync_sess_path,
   .help = "the peer's address"},
  {.path = "rmr-client/pools/*/sessions/*/bytes_sent",
   .get = ctl_sync_sess_bytes_sent,
   .help = "bytes sent to the peer (connection shared by pools)"},
  {.path = "rmr-client/pools/*/sessions/*/bytes_received",
   .get = ctl_sync_sess_bytes_received,
   .help = "bytes received from the peer (resync reads)"},
  {.path = "rmr-client/pools/*/sessions/*/reads",
   .get = ctl_sync_sess_reads,
   .help = "chunks read from the peer"},
  {.path = "rmr-client/pools/*/sessions/*/last_error",
   .get = ctl_sync_sess_last_error,
   .help = "why the session last failed"},
  {.path = "rmr-client/pools/*/sessions/*/transport",
   .get = ctl_sync_sess_transport,
   .help = "how the bytes travel: tcp, or ucx and the transports UCX "
           "chose"},
  {.path = "rmr-client/pools/*/sessions/*/del_sess",
   .set = ctl_sync_del_sess,
   .keys = "mode",
   .help = "remove the session (mode=disassemble|delete)"},
  {.path = "brmr-server/ctl/create_store",
   .set = set_create_store,
   .keys = "device! pool! mapped_size! force",
   .help = "format a device or file as the pool's store and attach it "
           "(mapped_size: sectors, or bytes with K/M/G/T); refused on a "
           "symbolic link, a store in use or with rmr metadata, and on a "
           "foreign signature (file system, partition table...) unless "
           "force=1, which wipes it"},
  {.path = "brmr-server/ctl/add_store",
   .set = set_add_store,
   .keys = "device! pool! mapped_size mode force",
   .help = "mode=add (default): attach a store that has this pool's "
           "metadata, or, for a disk without metadata, replace the member's "
           "store; mode=replace: a new empty disk replaces the member's "
           "store (same pool and mapped_size; it resyncs everything from "
           "its peers); force=1 wipes a foreign signature"},
  {.path = "brmr-server/stores/*",
   .list = list_stores,
   .help = "stores, named by their pool"},
  {.path = "brmr-server/stores/*/state",
   .get = get_store_state,
   .help = "open, and mapped while a client uses it"},
  {.path = "brmr-server/stores/*/mapped_size",
   .get = get_store_mapped_size,
   .help = "device size in 512-byte sectors"},
  {.path = "brmr-server/stores/*/bdev_name",
   .get = get_store_bdev_name,
   .help = "name of the device or file"},
  {.path = "brmr-server/stores/*/dev_size",
   .get = get_store_dev_size,
   .help = "size of the device or file in 512-byte sectors"},
  {.path = "brmr-server/stores/*/path",
   .get = get_store_path,
   .help = "path of the device or file"},
  {.path = "brmr-server/stores/*/data_offset",
   .get = get_store_data_offset,
   .help = "bytes from the start of the store to the data area"},
  {.path = "brmr-server/stores/*/fault",
   .get = get_fault,
   .set = set_fault,
   .keys = "op! count errno",
   .flags = CTL_F_NO_STATUS,
   .help = "tests only (--enable-fault-injection): make the next count IOs "
           "(op=read|write|any|off) fail with errno"},
  {.path = "brmr-server/stores/*/remove_store",
   .set = set_remove_store,
   .flags = CTL_F_RAW_VALUE,
   .help = "write 1: detach the store, keeping its metadata"},
  {.path = "brmr-server/stores/*/delete_store",
   .set = set_delete_store,
   .flags = CTL_F_RAW_VALUE,
   .help = "write 1: detach the store and wipe its metadata"},
};

/* Every change through the control socket is logged with its outcome;
 * reads are logged at debug level only.
 */
static void
log_request (void *opaque, const char *request, int result, const char *reply)
{
  int len = strcspn (reply, "\n");

  if (g_str_has_prefix (request, "set ")) {
    if (result == 0)
      g_message ("control: %s: ok", request);
    else
      g_warning ("control: %s: %.*s", request, len, reply);
  }
  else if (result == 0)
    g_debug ("control: %s: ok", request);
  else
    g_debug ("control: %s: %.*s", request, len, reply);
}

int
control_start (const char *path)
{
  g_ctl =
    ctl_server_start_full (path, table, ARRAY_SIZE (table), NULL, log_request);
  if (!g_ctl)
    return -errno;
  g_message ("control socket %s", path);
  return 0;
}

void
control_stop (void)
{
  ctl_server_stop (g_ctl);
  g_ctl = NULL;
}
