/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Server pools [rmr_srv_pool] and their state machine (DESIGN 3):
 *
 *   empty --store attached--> registered --create join--> created
 *   created/no_io --enable--> normal --client lost--> no_io
 *   registered/no_io --assemble join--> no_io (waits for an enable)
 *   normal --enable of a new member table by the enabled client, its IO
 *            frozen (a live leg add or delete)--> normal, new generation
 *   normal --last session leaves gracefully--> registered
 *   any --store removed--> empty
 *
 * The registry (g_pools, by name) holds one reference on each pool; every
 * lookup returns a new one.  A pool leaves the registry only without a
 * store and without sessions (leave_pool), so a pointer held by a
 * session is always valid.
 *
 * Locking: g_pools_lock protects the registry; a pool's lock protects its
 * state, store pointer, sessions and counters.  The store's superblock is
 * written under the store's md_lock, taken inside the pool lock.  Every
 * transition is logged.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "internal.h"
#include "jhash.h"
#include "util.h"

static GMutex g_pools_lock;
static GHashTable *g_pools; /* name -> struct srv_pool (one ref) */

const char *
pool_state_name (enum rmr_srv_pool_state s)
{
  return rmr_srv_pool_state_name (s);
}

static void
set_state_unlocked (struct srv_pool *p, enum rmr_srv_pool_state s,
                    const char *why)
{
  if (p->state == s)
    return;
  g_message ("pool %s: %s -> %s (%s)", p->name, pool_state_name (p->state),
             pool_state_name (s), why);
  p->state = s;
  if (p->store)
    p->store->state = s == RMR_POOL_NORMAL ? STORE_MAPPED : STORE_OPEN;
  sync_set_normal (p->sync, s == RMR_POOL_NORMAL, p->generation);
}

/* Start the resync machinery once the pool has maps and we have a slot
 * (lock held).  A failure is logged: the pool serves, without resync.
 */
static void
start_sync_unlocked (struct srv_pool *p)
{
  if (p->sync || !p->maps || p->my_slot < 0)
    return;
  if (sync_open (p, p->store, p->maps, p->my_slot, p->peers, p->sync_parallel,
                 p->sync_rate, p->sync_min_rate, p->sync_manual, &p->sync) < 0)
    g_warning ("pool %s: %s", p->name, rmr_get_error ());
  else
    sync_set_normal (p->sync, p->state == RMR_POOL_NORMAL, p->generation);
}

/* This member's slot in the store's member table, or -1. */
static int
find_slot (const struct store *st, uint32_t member_id)
{
  unsigned i;

  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    if (st->sb.members[i].member_id == member_id)
      return i;
  return -1;
}

int
pool_create (const char *name, uint32_t member_id, uint32_t chunk_size)
{
  struct srv_pool *p;

  g_mutex_lock (&g_pools_lock);
  if (!g_pools)
    g_pools = g_hash_table_new (g_str_hash, g_str_equal);
  p = g_hash_table_lookup (g_pools, name);
  if (p && p->server_left) {
    /* Its sync pool stayed (see pool_delete): the server pool is back.
     * It has no store, so it may take another member_id.
     */
    p->server_left = false;
    p->member_id = member_id;
    p->cfg_chunk_size = chunk_size;
    g_mutex_unlock (&g_pools_lock);
    g_message ("pool %s: joined again as member %" PRIu32 ", state empty", name,
               member_id);
    return 0;
  }
  if (p) {
    g_mutex_unlock (&g_pools_lock);
    return rmr_err (EEXIST, "poolname: pool '%s' exists already", name);
  }
  p = g_new0 (struct srv_pool, 1);
  p->peers = rmr_sync_pool_new (name, 0);
  if (!p->peers) {
    g_mutex_unlock (&g_pools_lock);
    g_free (p);
    return -EAGAIN;
  }
  snprintf (p->name, sizeof p->name, "%s", name);
  p->group_id = rmr_group_id (name);
  p->member_id = member_id;
  p->cfg_chunk_size = chunk_size;
  atomic_store (&p->refs, 1);
  g_mutex_init (&p->lock);
  g_cond_init (&p->idle);
  p->state = RMR_POOL_EMPTY;
  p->my_slot = -1;
  p->sessions = g_ptr_array_new ();
  p->sync_parallel = 4;
  p->sync_min_rate = SYNC_MIN_RATE_DEFAULT;
  p->al_shift = AL_DEFAULT_SHIFT;
  p->al_extents = AL_DEFAULT_EXTENTS;
  g_hash_table_insert (g_pools, p->name, p);
  g_mutex_unlock (&g_pools_lock);
  g_message ("pool %s: joined as member %" PRIu32 " (group_id %" PRIu32
             "), state empty",
             name, member_id, p->group_id);
  return 0;
}

void
pool_put (struct srv_pool *p)
{
  if (!p || atomic_fetch_sub (&p->refs, 1) != 1)
    return;
  g_ptr_array_unref (p->sessions);
  verify_free (p->verify); /* stopped with the store */
  rmr_sync_pool_close (p->peers);
  g_mutex_clear (&p->lock);
  g_cond_clear (&p->idle);
  g_free (p);
}

/* The admin guide joins and leaves the server pool (rmr-server) and its
 * sync pool (rmr-client, sync=y) apart; here both are one srv_pool that
 * leaves the registry once both halves left (g_pools_lock held).
 */
static int
leave_half_unlocked (struct srv_pool *p, bool sync_half)
{
  if (sync_half)
    p->sync_left = true;
  else
    p->server_left = true;
  if (!p->server_left || !p->sync_left) {
    g_message ("pool %s: %s pool left; its %s pool stays (leave_pool there "
               "too)",
               p->name, sync_half ? "sync" : "server",
               sync_half ? "server" : "sync");
    return 0;
  }
  g_hash_table_remove (g_pools, p->name);
  g_message ("pool %s: left", p->name);
  pool_put (p);
  return 0;
}

int
pool_delete (const char *name)
{
  struct srv_pool *p;
  int r;

  g_mutex_lock (&g_pools_lock);
  p = g_pools ? g_hash_table_lookup (g_pools, name) : NULL;
  if (!p || p->server_left) {
    g_mutex_unlock (&g_pools_lock);
    return rmr_err (ENOENT, "no such pool '%s'", name);
  }
  g_mutex_lock (&p->lock);
  /* The admin guide's deletion rule 2: not while a store is registered. */
  if (p->store || p->sessions->len) {
    int busy = p->store != NULL;
    g_mutex_unlock (&p->lock);
    g_mutex_unlock (&g_pools_lock);
    return rmr_err (EBUSY,
                    busy ? "pool '%s' still has a store (remove_store or "
                           "delete_store first)"
                         : "pool '%s' still has sessions",
                    name);
  }
  g_mutex_unlock (&p->lock);
  r = leave_half_unlocked (p, false);
  g_mutex_unlock (&g_pools_lock);
  return r;
}

int
pool_sync_leave (const char *name)
{
  g_autoptr (GString) names = g_string_new (NULL);
  struct rmr_leg_info info;
  struct srv_pool *p;
  unsigned i;
  int r;

  g_mutex_lock (&g_pools_lock);
  p = g_pools ? g_hash_table_lookup (g_pools, name) : NULL;
  if (!p || p->sync_left) {
    g_mutex_unlock (&g_pools_lock);
    return rmr_err (ENOENT, "no such pool '%s'", name);
  }
  /* The admin guide's deletion rule 1: a client pool with sessions
   * cannot go.
   */
  for (i = 0; i < rmr_pool_nlegs (p->peers); i++)
    if (rmr_pool_leg_info (p->peers, i, &info) == 0 && info.sessname[0])
      g_string_append_printf (names, "%s%s", names->len ? ", " : "",
                              info.sessname);
  if (names->len) {
    g_mutex_unlock (&g_pools_lock);
    return rmr_err (EBUSY,
                    "pool '%s' still has sync sessions (%s): del_sess them "
                    "first",
                    name, names->str);
  }
  r = leave_half_unlocked (p, true);
  g_mutex_unlock (&g_pools_lock);
  return r;
}

/* A pool by name, with a reference: its server half (sync false) or its
 * sync half, or NULL if that half left.
 */
static struct srv_pool *
find (const char *name, bool sync_half)
{
  struct srv_pool *p;

  g_mutex_lock (&g_pools_lock);
  p = g_pools ? g_hash_table_lookup (g_pools, name) : NULL;
  if (p && (sync_half ? p->sync_left : p->server_left))
    p = NULL;
  if (p)
    atomic_fetch_add (&p->refs, 1);
  g_mutex_unlock (&g_pools_lock);
  return p;
}

struct srv_pool *
pool_find (const char *name)
{
  return find (name, false);
}

struct srv_pool *
pool_find_sync (const char *name)
{
  return find (name, true);
}

void
pool_sync_join (struct srv_pool *p)
{
  g_mutex_lock (&g_pools_lock);
  p->sync_left = false;
  g_mutex_unlock (&g_pools_lock);
}

struct srv_pool *
pool_find_gid (uint32_t group_id)
{
  GHashTableIter it;
  gpointer k, v;
  struct srv_pool *found = NULL;

  g_mutex_lock (&g_pools_lock);
  if (g_pools) {
    g_hash_table_iter_init (&it, g_pools);
    while (g_hash_table_iter_next (&it, &k, &v))
      if (((struct srv_pool *) v)->group_id == group_id &&
          !((struct srv_pool *) v)->server_left) {
        found = v;
        atomic_fetch_add (&found->refs, 1);
        break;
      }
  }
  g_mutex_unlock (&g_pools_lock);
  return found;
}

static gint
cmp_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static GPtrArray *
names (bool sync_half)
{
  GPtrArray *list = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer k, v;

  g_mutex_lock (&g_pools_lock);
  if (g_pools) {
    g_hash_table_iter_init (&it, g_pools);
    while (g_hash_table_iter_next (&it, &k, &v)) {
      const struct srv_pool *p = v;
      if (!(sync_half ? p->sync_left : p->server_left))
        g_ptr_array_add (list, g_strdup (k));
    }
  }
  g_mutex_unlock (&g_pools_lock);
  g_ptr_array_sort (list, cmp_str);
  return list;
}

GPtrArray *
pool_names (void)
{
  return names (false);
}

GPtrArray *
pool_sync_names (void)
{
  return names (true);
}

struct srv_pool *
pool_find_store_path (const char *path)
{
  g_autoptr (GPtrArray) names = pool_names ();
  g_autofree char *want = realpath (path, NULL);
  struct srv_pool *p, *found = NULL;
  unsigned i;

  if (!want)
    return NULL;
  for (i = 0; i < names->len && !found; i++) {
    p = pool_find (g_ptr_array_index (names, i));
    if (!p)
      continue;
    g_mutex_lock (&p->lock);
    if (p->store) {
      char *have = realpath (p->store->path, NULL);
      if (have && strcmp (have, want) == 0)
        found = p;
      free (have);
    }
    g_mutex_unlock (&p->lock);
    if (found != p)
      pool_put (p);
  }
  return found;
}

/* Remember the pool's identity from a store that held it (lock held,
 * md_lock held): a replacement disk is checked against it (replace.c).
 */
static void
remember_unlocked (struct srv_pool *p, const struct store *st)
{
  if (st->sb.generation == 0)
    return;
  p->known.known = true;
  p->known.mapped_size = st->sb.mapped_size;
  p->known.chunk_size = st->sb.chunk_size;
  p->known.generation = st->sb.generation;
  snprintf (p->known.from, sizeof p->known.from,
            "from its store %s, generation %" PRIu64, st->path,
            st->sb.generation);
}

int
pool_attach_store (struct srv_pool *p, struct store *st)
{
  g_mutex_lock (&p->lock);
  if (p->store) {
    g_mutex_unlock (&p->lock);
    return rmr_err (EBUSY, "pool: pool '%s' has a store already (%s)", p->name,
                    p->store->path);
  }
  g_mutex_lock (&st->md_lock);
  if (st->sb.chunk_size &&
      maps_open (st, false, p->al_shift, p->al_extents, &p->maps) < 0) {
    g_mutex_unlock (&st->md_lock);
    g_mutex_unlock (&p->lock);
    return -EIO;
  }
  p->generation = st->sb.generation;
  p->my_slot = find_slot (st, p->member_id);
  remember_unlocked (p, st);
  g_mutex_unlock (&st->md_lock);
  /* A replacement that got its generation but not yet its dirty bits
   * (a crash between the two): settled before anything can use it.
   */
  if (p->maps && replace_settle (st, p->maps, p->my_slot) < 0) {
    maps_close (p->maps);
    p->maps = NULL;
    p->my_slot = -1;
    g_mutex_unlock (&p->lock);
    return -EIO;
  }
  p->store = st;
  start_sync_unlocked (p);
  set_state_unlocked (p, RMR_POOL_REGISTERED, "store attached");
  g_mutex_unlock (&p->lock);
  g_message ("pool %s: store %s attached (generation %" PRIu64 ")", p->name,
             st->path, p->generation);
  return 0;
}

int
pool_remove_store (struct srv_pool *p, bool wipe)
{
  struct srv_sync *sync;
  struct store *st;
  int r = 0;

  g_mutex_lock (&p->lock);
  st = p->store;
  if (!st) {
    g_mutex_unlock (&p->lock);
    return rmr_err (ENOENT, "pool '%s' has no store", p->name);
  }
  /* New IO is refused from here on; IO waiting for a resync fails (the
   * resync stops), then what is in flight completes.
   */
  set_state_unlocked (p, RMR_POOL_EMPTY,
                      wipe ? "store deleted" : "store removed");
  /* A client still joined must notice now, not at its next IO (an idle
   * pool would show the leg normal with no store behind it): its
   * connection is broken, the client fails the leg and its reconnects are
   * refused until a store is back (a replacement: replace.c).  Legs of
   * other pools on that connection reconnect at once.
   */
  for (unsigned i = 0; i < p->sessions->len; i++) {
    struct srv_psess *ps = g_ptr_array_index (p->sessions, i);
    if (ps->sync)
      continue;
    g_message ("pool %s: closing the connection of client session %s from "
               "%s: the store is gone",
               p->name, ps->sessname, ps->peer);
    rmr_conn_shutdown (ps->conn->conn);
  }
  sync = p->sync;
  p->sync = NULL;
  g_mutex_unlock (&p->lock);
  /* A verify reads the store and marks the maps: it ends first (the
   * pool is empty now, so no new one starts).
   */
  verify_stop (p);
  /* IO admitted before holds sync (io->sync): stopped now (what waits
   * for a fetch fails), freed once that IO is done.
   */
  sync_stop (sync);
  g_mutex_lock (&p->lock);
  p->idle_waiters++;
  while (p->inflight > 0)
    g_cond_wait (&p->idle, &p->lock);
  p->idle_waiters--;
  sync_close (sync); /* stopped: frees only (p->lock before its lock) */
  p->store = NULL;
  /* Nothing is in flight: a clean stop for the recent-write record. */
  if (p->maps && maps_mark_clean (p->maps) < 0)
    g_warning ("pool %s: %s", p->name, rmr_get_error ());
  maps_close (p->maps);
  p->maps = NULL;
  p->my_slot = -1;
  g_mutex_unlock (&p->lock);

  if (wipe) {
    /* Deleted: this member's copy of the pool is gone for good. */
    g_mutex_lock (&p->lock);
    memset (&p->known, 0, sizeof p->known);
    g_mutex_unlock (&p->lock);
    r = store_wipe (st);
  }
  g_message ("pool %s: store %s %s", p->name, st->path,
             wipe ? "deleted (metadata wiped)" : "removed (metadata kept)");
  store_close (st);
  return r;
}

void
pool_mark_seen_unlocked (struct srv_pool *p, struct srv_psess *ps)
{
  if (p->store)
    ps->flush_errors_mark = store_flush_errors (p->store);
  if (p->maps)
    ps->suspicions_mark = al_suspicions (maps_al (p->maps));
}

int
pool_sess_join (struct srv_pool *p, struct srv_psess *ps,
                const struct rmr_join_req *req, uint64_t generation,
                struct rmr_join_rep *rep, GString *err)
{
  struct store *st;
  bool fresh, replaced;
  unsigned i;

  g_mutex_lock (&p->lock);
  st = p->store;
  /* (A store being removed is still there, in state empty.) */
  if (!st || p->state == RMR_POOL_EMPTY) {
    g_mutex_unlock (&p->lock);
    g_string_printf (err,
                     "pool '%s' on member %" PRIu32 " has no store "
                     "(create_store or add_store first)",
                     p->name, p->member_id);
    return -ENODEV;
  }
  g_mutex_lock (&st->md_lock);
  /* A replacement that has yet to settle holds nothing either, whatever
   * its generation (its settle failed at an enable): fresh to a client.
   */
  replaced = st->sb.flags & RMR_SB_F_REPLACED;
  fresh = st->sb.generation == 0 || replaced;
  memset (rep, 0, sizeof *rep);
  rep->member_id = p->member_id;
  rep->fresh = fresh;
  if (fresh && (st->sb.flags & RMR_SB_F_ZEROED))
    rep->flags |= RMR_JOIN_F_ZEROED;
  /* For a client only: a peer's sync session never creates a pool, and
   * a peer daemon of the version before would refuse the flag.
   */
  if (replaced && !req->sync)
    rep->flags |= RMR_JOIN_F_REPLACED;
  rep->chunk_size = st->sb.chunk_size;
  rep->queue_depth = st->sb.queue_depth ? st->sb.queue_depth : req->queue_depth;
  rep->mapped_size = st->sb.mapped_size;
  rep->generation = st->sb.generation;
  rep->min_legs = st->sb.min_legs;
  rep->block_size = st->block_size;
  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    rep->members[i] = st->sb.members[i].member_id;
  g_mutex_unlock (&st->md_lock);

  /* A client of an older generation was fenced: it must not even make
   * the pool wait for it.
   */
  if (!req->sync && generation && generation < rep->generation) {
    g_string_printf (err,
                     "generation %" PRIu64 " is older than pool '%s''s %" PRIu64
                     ": another client took the pool over",
                     generation, p->name, rep->generation);
    g_mutex_unlock (&p->lock);
    return -ESTALE;
  }
  if (req->mapped_size && req->mapped_size != rep->mapped_size) {
    g_string_printf (err,
                     "size %" PRIu64 " requested, but pool '%s' has "
                     "mapped_size %" PRIu64,
                     req->mapped_size, p->name, rep->mapped_size);
    goto refuse;
  }
  if (req->chunk_size) {
    uint32_t have = rep->chunk_size ? rep->chunk_size : p->cfg_chunk_size;
    if (have && have != req->chunk_size) {
      g_string_printf (err,
                       "chunk_size %" PRIu32 " requested, but pool "
                       "'%s' has chunk_size %" PRIu32,
                       req->chunk_size, p->name, have);
      goto refuse;
    }
  }
  if (req->mode == RMR_MODE_CREATE && !fresh) {
    g_string_printf (err,
                     "mode=create, but the store of pool '%s' already "
                     "holds the pool (generation %" PRIu64 "); use "
                     "mode=assemble",
                     p->name, rep->generation);
    goto refuse;
  }
  if (replace_join_check (replaced ? RMR_SB_F_REPLACED : 0, req->mode, p->name,
                          p->member_id, err) < 0)
    goto refuse;
  /* mode=assemble on a fresh store: a replacement disk, or a new store
   * of a member whose disk was lost (a config file formats a missing
   * store): it joins a pool that holds data, and becomes a replacement
   * at its enable (replace.c).  A client assembling a pool that exists
   * nowhere is refused by the client itself.
   */

  if (!ps) {
    /* A probe: checked and answered, nothing joins. */
    rep->state = p->state;
    g_mutex_unlock (&p->lock);
    return 0;
  }

  /* Fencing: one client session at a time is between its join and its
   * pool enable; while it is, the pool serves no IO, so a client that
   * was presumed dead cannot write behind the new one's back (its IO is
   * refused now, and with a stale generation once the new one enabled).
   */
  if (!ps->sync && p->enabler) {
    g_string_printf (err,
                     "pool '%s' is being enabled by session %s from %s; "
                     "try again when it is done",
                     p->name, p->enabler->sessname, p->enabler->peer);
    g_mutex_unlock (&p->lock);
    return -EBUSY;
  }
  g_ptr_array_add (p->sessions, ps);
  if (!ps->sync) {
    pool_mark_seen_unlocked (p, ps);
    atomic_fetch_add (&p->sess_epoch, 1);
    p->enabler = ps;
    bool creates = fresh && !replaced && req->mode != RMR_MODE_ASSEMBLE;
    set_state_unlocked (p, creates ? RMR_POOL_CREATED : RMR_POOL_NO_IO,
                        creates ? "create-mode session joined"
                                : "a client joins: IO waits for its pool "
                                  "enable");
  }
  rep->state = p->state;
  g_mutex_unlock (&p->lock);
  g_message ("pool %s: session %s from %s joined (%s)", p->name, ps->sessname,
             ps->peer,
             ps->sync   ? "sync session of a peer"
             : replaced ? "replacement disk: resyncs everything"
             : fresh    ? "fresh store"
                        : "assemble");
  return 0;

refuse:
  g_mutex_unlock (&p->lock);
  return -EINVAL;
}

int
pool_sess_enable (struct srv_psess *ps, const struct rmr_enable_req *req,
                  GString *err)
{
  struct srv_pool *p = ps->pool;
  struct store *st;
  struct rmr_sb saved;
  uint64_t ndirty[RMR_MAX_MEMBERS];
  uint32_t dropped = 0;
  unsigned i;
  bool me = false, relive;
  int r;

  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    if (req->members[i] == p->member_id)
      me = true;
  if (!me) {
    g_string_printf (err,
                     "pool enable: member %" PRIu32 " is not in the "
                     "member table",
                     p->member_id);
    return -EINVAL;
  }

  g_mutex_lock (&p->lock);
  st = p->store;
  if (!st) {
    g_mutex_unlock (&p->lock);
    g_string_printf (err, "pool '%s' has no store", p->name);
    return -ENODEV;
  }
  /* The session that joined last enables; or the enabled client of the
   * pool changes its member table (a leg added or deleted while the pool
   * is open, common/client-legs.c) in a new generation, with its IO
   * frozen: no other client is between a join and its enable then.
   */
  relive = p->enabler == NULL && ps->enabled && !ps->sync &&
           ps->generation == p->generation && p->state == RMR_POOL_NORMAL &&
           p->maps && req->generation > p->generation;
  if (p->enabler != ps && !relive) {
    g_string_printf (err,
                     "pool enable: session %s is not the one that "
                     "joined last (%s)",
                     ps->sessname, p->enabler ? p->enabler->sessname : "none");
    g_mutex_unlock (&p->lock);
    return -ESTALE;
  }
  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    ndirty[i] = p->maps ? maps_count_fast (p->maps, i) : 0;
  g_mutex_lock (&st->md_lock);
  if (req->mapped_size != st->sb.mapped_size ||
      (st->sb.chunk_size && req->chunk_size != st->sb.chunk_size)) {
    g_string_printf (err,
                     "pool enable: mapped_size %" PRIu64 "/chunk_size "
                     "%" PRIu32 " differ from the store's %" PRIu64 "/%" PRIu32,
                     req->mapped_size, req->chunk_size, st->sb.mapped_size,
                     st->sb.chunk_size);
    r = -EINVAL;
    goto out;
  }
  if (req->generation < st->sb.generation) {
    g_string_printf (err,
                     "pool enable: generation %" PRIu64 " is older "
                     "than the store's %" PRIu64,
                     req->generation, st->sb.generation);
    r = -ESTALE;
    goto out;
  }
  if (req->generation == st->sb.generation) {
    /* A client coming back (reconnect): same pool_md, nothing to write. */
    for (i = 0; i < RMR_MAX_MEMBERS; i++)
      if (st->sb.members[i].member_id != req->members[i]) {
        g_string_printf (err,
                         "pool enable: generation %" PRIu64 " with "
                         "another member table than the store's",
                         req->generation);
        r = -ESTALE;
        goto out;
      }
    /* A replacement whose settle failed at its first enable. */
    g_mutex_unlock (&st->md_lock);
    r = replace_settle (st, p->maps, p->my_slot);
    g_mutex_lock (&st->md_lock);
    if (r < 0) {
      g_string_printf (err, "pool enable: %s", rmr_get_error ());
      goto out;
    }
  }
  else {
    bool fresh = st->sb.chunk_size == 0;
    /* A store that never held the pool, enabled into a pool that holds
     * data (an assemble, a reconnect: its session joined with
     * mode=assemble, or a live add: a generation after the create's),
     * holds none of it: it is a replacement from this
     * very superblock write on (replace.c).  Not at a create, where
     * every store is new and the client decides the initial sync.
     */
    bool joins_data = replace_joins_data (st->sb.generation, st->sb.flags,
                                          req->mode, ps->mode, req->generation);
    saved = st->sb;
    st->sb.generation = req->generation;
    st->sb.min_legs = req->min_legs;
    st->sb.chunk_size = req->chunk_size;
    st->sb.queue_depth = req->queue_depth;
    /* A new generation changes no member's state: what this store knows
     * of a member stays until its map says otherwise (map.c).  A member
     * new in the table is outdated here if this store holds bits for it
     * (an added member); a member gone from it is dropped with its bits.
     */
    dropped = md_apply_members (&st->sb, req->members, ndirty, req->generation);
    st->sb.flags &= ~(RMR_SB_F_RESERVED | RMR_SB_F_ZEROED);
    if (joins_data)
      st->sb.flags |= RMR_SB_F_REPLACED;
    r = store_write_sb_unlocked (st);
    if (r < 0) {
      st->sb = saved;
      g_string_printf (err, "pool enable: writing the superblock: %s",
                       rmr_get_error () ? rmr_get_error () : strerror (-r));
      goto out;
    }
    if (!p->maps &&
        maps_open (st, fresh, p->al_shift, p->al_extents, &p->maps) < 0) {
      g_string_printf (err, "pool enable: %s", rmr_get_error ());
      r = -EIO;
      goto out;
    }
    p->my_slot = find_slot (st, p->member_id);
    remember_unlocked (p, st);
    /* A replacement is dirty for everything, on disk, before it can
     * serve (replace.c); the map flusher takes md_lock.
     */
    g_mutex_unlock (&st->md_lock);
    r = replace_settle (st, p->maps, p->my_slot);
    g_mutex_lock (&st->md_lock);
    if (r < 0) {
      g_string_printf (err, "pool enable: %s", rmr_get_error ());
      goto out;
    }
    start_sync_unlocked (p);
  }
  p->generation = req->generation;
  /* Only a session enabled in the pool's current generation may change
   * the member table later: a client fenced by a newer assemble keeps
   * its session, but not the right to re-enable behind its back.
   */
  ps->generation = req->generation;
  if (dropped && p->maps) {
    /* Clears are saved lazily: after a crash the bits of a deleted
     * member may come back in its empty slot, which costs a member that
     * takes the slot later a few extra chunks of resync, nothing else.
     */
    maps_clear (p->maps, dropped, 0, maps_nchunks (p->maps));
    g_message ("pool %s: dirty bits of slot mask 0x%" PRIx32 " dropped "
               "(members deleted from the pool)",
               p->name, dropped);
  }
  if (relive)
    sync_set_normal (p->sync, true, req->generation);
  ps->enabled = true;
  p->enabler = NULL;
  /* The client read the recent-write record before this enable (not
   * before a member-table change: its writes are only frozen).
   */
  if (!relive) {
    p->write_failed = false;
    /* MIN: a mark taken on a store since replaced says nothing here. */
    p->flush_errors_seen =
      MIN (ps->flush_errors_mark, store_flush_errors (p->store));
    al_consumed (maps_al (p->maps), ps->suspicions_mark);
  }
  set_state_unlocked (p, RMR_POOL_NORMAL, "pool enabled");
  r = 0;
out:
  g_mutex_unlock (&st->md_lock);
  g_mutex_unlock (&p->lock);
  if (r == 0)
    g_message ("pool %s: enabled by %s, generation %" PRIu64
               ", chunk_size %" PRIu32,
               p->name, ps->sessname, req->generation, req->chunk_size);
  return r;
}

void
pool_sess_leave (struct srv_psess *ps, bool graceful, bool quiesced)
{
  struct srv_pool *p = ps->pool;
  unsigned i, enabled = 0;

  g_mutex_lock (&p->lock);
  g_ptr_array_remove (p->sessions, ps);
  if (!ps->sync)
    atomic_fetch_add (&p->sess_epoch, 1);
  if (p->enabler == ps)
    p->enabler = NULL;
  for (i = 0; i < p->sessions->len; i++)
    enabled +=
      ((struct srv_psess *) g_ptr_array_index (p->sessions, i))->enabled;
  if (p->store && p->state != RMR_POOL_EMPTY && enabled == 0 && !ps->sync) {
    if (graceful) {
      /* The client that did the IO stopped cleanly: nothing may differ
       * between legs.  (Not a client that left before its enable: what
       * the record holds is still to be reconciled.)
       */
      bool clean = ps->enabled && p->state == RMR_POOL_NORMAL;
      if (clean && quiesced && p->maps)
        al_settle (maps_al (p->maps));
      set_state_unlocked (p, RMR_POOL_REGISTERED, "last session left");
      if (clean && p->maps && p->inflight == 0 && maps_mark_clean (p->maps) < 0)
        g_warning ("pool %s: %s", p->name, rmr_get_error ());
    }
    else if (p->state == RMR_POOL_NORMAL || p->state == RMR_POOL_CREATED)
      set_state_unlocked (p, RMR_POOL_NO_IO,
                          "client lost without leaving: waits for assemble");
  }
  g_mutex_unlock (&p->lock);
  g_message ("pool %s: session %s from %s %s", p->name, ps->sessname, ps->peer,
             graceful ? "left" : "lost");
}

/* At exit: stores are closed cleanly (sessions are gone by now). */
void
pool_shutdown_all (void)
{
  g_autoptr (GPtrArray) names = pool_names ();
  unsigned i;

  for (i = 0; i < names->len; i++) {
    struct srv_pool *p = pool_find (g_ptr_array_index (names, i));
    if (!p)
      continue;
    if (p->store)
      pool_remove_store (p, false);
    pool_put (p);
  }
}
