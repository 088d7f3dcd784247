/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Disk replacement on an active pool (admin guide, "Replace BRMR block
 * device on an active pool group"): remove_store, then add_store
 * mode=replace of a new empty disk (or mode=add of a disk without
 * metadata, which the guide treats as a replacement), then the member
 * resyncs everything from its peers, one hop.
 *
 * Decisions and the invariant each one keeps:
 *
 *   1. Which pool, which size (replace_decide, pure).  A replacement
 *      joins the pool this node is a member of: the server pool named by
 *      pool= (its member_id is the node's, from join_pool: the member
 *      keeps it).  Its mapped_size is the pool's: the one of the store
 *      removed from this server pool since the daemon started
 *      (pool->known), or else, after a restart, the one a peer of the
 *      pool's sync pool answers its join with (the pool as its members
 *      hold it).  A mapped_size given that differs is refused, naming
 *      mapped_size, before anything is written.  A pool nobody here can
 *      vouch for (no store removed, no peer answering: another pool's
 *      name, a pool never created) has nothing to replace: refused.
 *
 *   2. Which disk (store_create_replacement).  Only a disk without rmr
 *      metadata: a disk with metadata of any pool, or damaged metadata,
 *      is refused ("clear it first"), so a replacement can never
 *      overwrite a store that may hold the only copy of something.  A
 *      foreign signature (file system, partition table) is refused
 *      unless force=1, as create_store does.
 *
 *   3. The new store holds none of the pool's data.  Its superblock
 *      carries RMR_SB_F_REPLACED from its first write.  While the flag is
 *      set the store is never a source of anything: it has no generation
 *      (it serves no IO and no peer reads until a pool enable), it refuses
 *      a create-mode join (it must not found a new pool with its empty
 *      data), and every client treats it as a member with a fresh store:
 *      the assemble excludes it from the sources and the reconnect's
 *      hand-over first makes every surviving member save every chunk
 *      dirty for it (client-recover.c).
 *
 *      The same holds for any store that never held the pool and is
 *      enabled into a pool that holds data (an assemble, a reconnect:
 *      a config file formats a missing store as new, or a live add:
 *      any enable after the create's generation 1): pool.c sets the
 *      flag in the very superblock write that gives it its generation.
 *      Only a create, where every store is new, leaves it unset.
 *
 *   4. Settling (replace_settle).  When the store gets its maps (the first
 *      pool enable gives it the chunk size, or a restart finds the flag
 *      still set), every chunk is marked dirty in its own slot and saved
 *      (with its member state "inconsistent") before the flag is cleared
 *      in the superblock, and both before the pool turns normal.  So from
 *      the moment the store could serve anything its own map says it is
 *      current nowhere: it fetches each chunk before serving it (the
 *      resync gate), refuses peers' resync reads of it (sync_dirty_here),
 *      and an assemble sees it stale.  A crash between the two writes
 *      leaves the flag set: settling again marks everything again, which
 *      only costs a resync already being done.  Only the member's own
 *      resync clears those bits, chunk by chunk, after the chunk is
 *      written (sync.c).
 *
 * Locking: replace_settle runs with the pool lock held and the store's
 * md_lock not held (the map flusher takes md_lock to save member states).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "internal.h"

int
replace_decide (const struct replace_known *k, const char *pool, uint64_t given,
                uint64_t *size, GString *err)
{
  if (k->known) {
    if (given && given != k->mapped_size) {
      g_string_printf (err,
                       "mapped_size: %" PRIu64 " sectors, but pool '%s' has "
                       "%" PRIu64 " (%s); a replacement must match the pool",
                       given / 512, pool, k->mapped_size / 512, k->from);
      return -EINVAL;
    }
    *size = k->mapped_size;
    return 0;
  }
  g_string_printf (err,
                   "mapped_size: the size of pool '%s' is not known on this "
                   "node (no store of it was removed since the daemon "
                   "started, and no peer of its sync pool answers): add the "
                   "sync sessions first, or use create_store for a new pool",
                   pool);
  return -ENXIO;
}

int
replace_join_check (uint32_t sb_flags, uint8_t mode, const char *pool,
                    uint32_t member_id, GString *err)
{
  if (!(sb_flags & RMR_SB_F_REPLACED) || mode != RMR_MODE_CREATE)
    return 0;
  g_string_printf (err,
                   "mode=create, but the store of pool '%s' on member "
                   "%" PRIu32 " is a replacement disk: it joins the pool's "
                   "members (mode=assemble), it cannot found a pool",
                   pool, member_id);
  return -EINVAL;
}

bool
replace_joins_data (uint64_t generation, uint32_t sb_flags, uint8_t enable_mode,
                    uint8_t join_mode, uint64_t enable_generation)
{
  if (sb_flags & RMR_SB_F_REPLACED)
    return true;
  /* A create is generation 1 (client-assemble.c decide_create): a store
   * that never held the pool and is enabled in a later one joins data,
   * whatever the modes say.  A member added live to a pool its client
   * created joins with mode=auto and is enabled with that pool's md,
   * whose mode is still create (common/client-legs.c, step 4).
   */
  return generation == 0 &&
         (enable_mode == RMR_MODE_ASSEMBLE || join_mode == RMR_MODE_ASSEMBLE ||
          enable_generation > 1);
}

int
replace_settle (struct store *st, struct srv_maps *m, int slot)
{
  uint64_t n;
  int r;

  g_mutex_lock (&st->md_lock);
  if (!(st->sb.flags & RMR_SB_F_REPLACED)) {
    g_mutex_unlock (&st->md_lock);
    return 0;
  }
  g_mutex_unlock (&st->md_lock);
  if (!m)
    return rmr_err (EINVAL, "store %s: a replacement without a dirty map",
                    st->path);
  if (slot < 0)
    return rmr_err (EINVAL,
                    "store %s: a replacement for a member that is not in "
                    "the pool's member table",
                    st->path);

  /* Every chunk dirty for this member, on disk (with its state) ... */
  n = maps_nchunks (m);
  r = maps_mark (m, 1u << slot, 0, n, NULL);
  if (r >= 0)
    r = maps_sync (m);
  if (r < 0) {
    rmr_err_prefix ("store %s: marking the replacement dirty: ", st->path);
    return r;
  }
  /* ... before the flag goes. */
  g_mutex_lock (&st->md_lock);
  st->sb.flags &= ~RMR_SB_F_REPLACED;
  r = store_write_sb_unlocked (st);
  if (r < 0)
    st->sb.flags |= RMR_SB_F_REPLACED;
  g_mutex_unlock (&st->md_lock);
  if (r < 0)
    return r;
  g_message ("store %s: replacement disk: all %" PRIu64 " chunks saved dirty "
             "for this member; it resyncs them from its peers",
             st->path, n);
  return 0;
}
