/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A server pool's IO admission (pool.c keeps the pool's registry, its
 * state machine and its sessions): what a client or sync session may
 * read or write now (pool_io_begin: state, generation, fencing, a stale
 * range never served to a peer's resync, a peer's read of a range a
 * client write is in flight on refused with "try again"), map messages
 * (pool_map_begin), the in-flight count that a drain waits for
 * (pool_io_end), a peer's resync watch that begins flagged over a client
 * write in flight that the peer misses and names the other members behind
 * there (pool_watch), a failed write (pool_write_failed), the resync's
 * wake-up when a map add touched our own slot (pool_sync_kick), and the
 * injected faults of the fault-injection option.
 *
 * Locking: everything under the pool's lock, as in pool.c; the in-flight
 * writes (p->wlist) are linked there and read by the resync
 * (pool_writes_overlap).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "internal.h"
#include "util.h"

bool g_fault_injection;

int
pool_fault_hit (struct srv_pool *p, enum store_op op)
{
  int f = atomic_load (&p->fault_op), n;

  if (f == FAULT_OFF || (f == FAULT_READ && op != STORE_READ) ||
      (f == FAULT_WRITE && op != STORE_WRITE && op != STORE_ZERO &&
       op != STORE_TRIM))
    return 0;
  n = atomic_load (&p->fault_count);
  if (n == 0)
    return 0;
  if (n > 0 && !atomic_compare_exchange_strong (&p->fault_count, &n, n - 1))
    return 0; /* another IO took it */
  g_warning ("pool %s: injected fault: %s fails with errno %d", p->name,
             op == STORE_READ ? "read" : "write",
             atomic_load (&p->fault_errno));
  return atomic_load (&p->fault_errno);
}

/* Is any chunk of [off, off + len) stale here, so that a peer must not
 * read it (a replacement is stale everywhere until resynced)?  Without a
 * resync object (it failed to start) the map says.  Lock held.
 */
static bool
stale_here_unlocked (struct srv_pool *p, uint64_t off, uint32_t len)
{
  unsigned shift;

  if (len == 0)
    return false;
  if (p->sync)
    return sync_dirty_here (p->sync, off, len);
  if (!p->maps || p->my_slot < 0)
    return false;
  shift = maps_chunk_shift (p->maps);
  return maps_any (p->maps, p->my_slot, off >> shift,
                   ((off + len - 1) >> shift) - (off >> shift) + 1);
}

/* May writes acknowledged here since the last enable be gone (lock
 * held)?  A client write failed here, or a sync of the store failed
 * (whichever sync it was: the kernel reports a writeback error once).
 * Then this member is no resync source, compares with nobody and serves
 * no client IO, until the client hands it over again (its record is
 * suspect: al.c).
 */
static bool
lost_writes_unlocked (struct srv_pool *p)
{
  return p->write_failed ||
         (p->store && store_flush_errors (p->store) != p->flush_errors_seen);
}

/* Is [off, off + len) quiet here (lock held)?  0: no client write to it
 * is in flight here, and every write this member did there is done on
 * every leg (the recent-write record's horizon, al.c); -EAGAIN: not now;
 * -EOPNOTSUPP: this member keeps no record (al_extents=0), so nothing
 * can tell.  What a copy is compared or fetched on (verify.c, sync.c
 * reconcile): a write done here but still on its way to another member
 * would otherwise look like a difference, or be overwritten by a fetch
 * from a member that does not have it yet.  parked_ok: a write parked at
 * the resync's gate does not count (it waits for the fetch asked about).
 */
static int
quiet_unlocked (struct srv_pool *p, uint64_t off, uint64_t len, bool parked_ok)
{
  struct io_ctx *w;

  for (w = p->wlist; w; w = w->wnext)
    if (w->wstart < off + len && off < w->wend &&
        !(parked_ok && w->parked && atomic_load (w->parked)))
      return -EAGAIN;
  if (!p->maps || !p->al_extents)
    return -EOPNOTSUPP;
  return al_settled (maps_al (p->maps), off, len) ? 0 : -EAGAIN;
}

/* A bit for any member in this member's maps over [off, off + len)
 * (lock held, maps present).
 */
static bool
dirty_any_unlocked (struct srv_pool *p, uint64_t off, uint64_t len)
{
  unsigned shift = maps_chunk_shift (p->maps), slot;
  uint64_t first = off >> shift, n = ((off + len - 1) >> shift) - first + 1;

  for (slot = 0; slot < RMR_MAX_MEMBERS; slot++)
    if (maps_any (p->maps, slot, first, n))
      return true;
  return false;
}

/* The admission of a checksum request, and of the online verify's own
 * read (lock held): whether this member's copy of [off, off + len) may be
 * compared now.  0, or -errno with err set: -ECANCELED the pool is not
 * normal or in another generation (the verify ends); -EINVAL not whole
 * units (proto.h) or beyond the device; -EBUSY stale here, dirty for some
 * member here, or a write failed here (not comparable: skipped);
 * -EAGAIN a write may be in flight (try again); -EOPNOTSUPP no record.
 */
static int
csum_admit_unlocked (struct srv_pool *p, uint64_t gen, uint64_t off,
                     uint64_t len, GString *err)
{
  uint64_t unit;
  int r;

  if (p->state != RMR_POOL_NORMAL || !p->maps || p->generation != gen) {
    g_string_printf (
      err, "pool '%s' is %s in generation %" PRIu64 " (asked: %" PRIu64 ")",
      p->name, pool_state_name (p->state), p->generation, gen);
    return -ECANCELED;
  }
  unit = csum_unit (maps_chunk_shift (p->maps));
  if (len == 0 || off + len > p->store->sb.mapped_size || off % unit ||
      (len % unit && off + len != p->store->sb.mapped_size)) {
    g_string_printf (err,
                     "checksums of %" PRIu64 " bytes at %" PRIu64
                     ": not whole units of %" PRIu64 " bytes of the device",
                     len, off, unit);
    return -EINVAL;
  }
  if (lost_writes_unlocked (p) || stale_here_unlocked (p, off, len) ||
      dirty_any_unlocked (p, off, len)) {
    g_string_printf (err,
                     "member %" PRIu32 " has that range dirty, stale or "
                     "after a failed write or flush: not comparable now",
                     p->member_id);
    return -EBUSY;
  }
  r = quiet_unlocked (p, off, len, false);
  if (r == -EAGAIN)
    g_string_printf (err,
                     "member %" PRIu32 ": a write to that range may be in "
                     "flight; try again",
                     p->member_id);
  else if (r == -EOPNOTSUPP)
    g_string_printf (err,
                     "member %" PRIu32 " keeps no recent-write record "
                     "(al_extents=0): it cannot tell a write in flight",
                     p->member_id);
  return r;
}

int
pool_io_begin (struct srv_psess *ps, const struct rmr_hdr *hdr,
               struct io_ctx *io, GString *err)
{
  struct srv_pool *p = ps->pool;
  uint64_t end = hdr->offset + hdr->length; /* no overflow: decoder */

  g_mutex_lock (&p->lock);
  if (hdr->type == RMR_MSG_CSUM) {
    int r =
      csum_admit_unlocked (p, hdr->generation, hdr->offset, hdr->length, err);
    if (r < 0) {
      g_mutex_unlock (&p->lock);
      return r;
    }
  }
  if (p->state != RMR_POOL_NORMAL || (!ps->enabled && !ps->sync)) {
    g_string_printf (err, "pool '%s' is %s%s", p->name,
                     pool_state_name (p->state),
                     ps->enabled || ps->sync ? "" : " (session not enabled)");
    g_mutex_unlock (&p->lock);
    return -EAGAIN;
  }
  /* Writes acknowledged here may be gone, and the client may not know
   * (a sync of the store failed in the background: the map flusher, the
   * resync, the probe): no more client IO until it hands this member
   * over again, reading its suspect record, as for a failed flush.
   */
  if (!ps->sync && lost_writes_unlocked (p)) {
    g_string_printf (err,
                     "member %" PRIu32 ": a write or a sync of its store "
                     "failed, writes acknowledged here may be lost; it "
                     "serves again once handed over (reconnect)",
                     p->member_id);
    g_mutex_unlock (&p->lock);
    return -EIO;
  }
  if (ps->sync && hdr->type != RMR_MSG_READ && hdr->type != RMR_MSG_CSUM) {
    g_string_printf (err, "a sync session only reads");
    g_mutex_unlock (&p->lock);
    return -EPERM;
  }
  if (hdr->generation != p->generation) {
    g_string_printf (err,
                     "pool '%s': generation %" PRIu64 " is stale "
                     "(now %" PRIu64 ")",
                     p->name, hdr->generation, p->generation);
    g_mutex_unlock (&p->lock);
    return -ESTALE;
  }
  if (end > p->store->sb.mapped_size) {
    g_string_printf (err,
                     "offset %" PRIu64 " + length %" PRIu32
                     " beyond mapped_size %" PRIu64,
                     hdr->offset, hdr->length, p->store->sb.mapped_size);
    g_mutex_unlock (&p->lock);
    return -EINVAL;
  }
  if (hdr->dirty_mask && !p->maps) {
    g_string_printf (err, "pool '%s' has no dirty map", p->name);
    g_mutex_unlock (&p->lock);
    return -EIO;
  }
  /* A peer syncing from us must get only what is current here, and
   * never data that a client write admitted here has yet to change: that
   * write's mark for the peer may predate the peer's watch, so its
   * watched clear could not tell (map.c).
   */
  if (ps->sync && lost_writes_unlocked (p)) {
    g_string_printf (err,
                     "member %" PRIu32 " had a write or a flush fail: no "
                     "resync source until the client hands it over again",
                     p->member_id);
    g_mutex_unlock (&p->lock);
    return -EAGAIN;
  }
  if (ps->sync && stale_here_unlocked (p, hdr->offset, hdr->length)) {
    g_string_printf (err, "member %" PRIu32 " is itself stale there",
                     p->member_id);
    g_mutex_unlock (&p->lock);
    return -EAGAIN;
  }
  if (ps->sync) {
    struct io_ctx *w;
    for (w = p->wlist; w; w = w->wnext)
      if (w->wstart < end && hdr->offset < w->wend) {
        g_string_printf (err,
                         "member %" PRIu32 ": a write to that range is in "
                         "flight here; try again",
                         p->member_id);
        g_mutex_unlock (&p->lock);
        return -EAGAIN;
      }
  }
  io->wlinked = false;
  io->client = !ps->sync;
  io->epoch = atomic_load (&p->sess_epoch);
  if (!ps->sync && (hdr->type == RMR_MSG_WRITE || hdr->type == RMR_MSG_TRIM ||
                    hdr->type == RMR_MSG_ZERO)) {
    io->wstart = hdr->offset;
    io->wend = end;
    io->wmask = hdr->dirty_mask;
    io->wprev = NULL;
    io->wnext = p->wlist;
    if (p->wlist)
      p->wlist->wprev = io;
    p->wlist = io;
    io->wlinked = true;
  }
  p->inflight++;
  if (!ps->sync)
    atomic_fetch_add_explicit (&p->client_ios, 1, memory_order_relaxed);
  io->st = p->store;
  io->maps = p->maps;
  io->al = p->maps && p->al_extents ? maps_al (p->maps) : NULL;
  io->al_era = io->al ? al_era (io->al) : 0;
  io->sync = ps->sync ? NULL : p->sync;
  io->my_slot = p->my_slot;
  g_mutex_unlock (&p->lock);
  return 0;
}

int
pool_map_begin (struct srv_psess *ps, const struct rmr_hdr *hdr,
                struct io_ctx *io, GString *err)
{
  struct srv_pool *p = ps->pool;
  uint64_t n;

  g_mutex_lock (&p->lock);
  if (!p->maps) {
    g_string_printf (err, "pool '%s' has no dirty map (not created yet)",
                     p->name);
    g_mutex_unlock (&p->lock);
    return -EAGAIN;
  }
  /* The client that joined last may be of a newer generation than this
   * member has seen (a member absent at the last assemble): it hands the
   * member its map before the enable.  Anyone else must match.
   */
  if (hdr->generation < p->generation ||
      (hdr->generation > p->generation && p->enabler != ps)) {
    g_string_printf (err,
                     "pool '%s': generation %" PRIu64 " is stale "
                     "(now %" PRIu64 ")",
                     p->name, hdr->generation, p->generation);
    g_mutex_unlock (&p->lock);
    return -ESTALE;
  }
  n = maps_nchunks (p->maps);
  if (hdr->offset >= n || hdr->length > n - hdr->offset) {
    g_string_printf (err,
                     "chunks %" PRIu64 "+%" PRIu32 " beyond the "
                     "device's %" PRIu64 " chunks",
                     hdr->offset, hdr->length, n);
    g_mutex_unlock (&p->lock);
    return -EINVAL;
  }
  p->inflight++;
  io->wlinked = false;
  io->client = false;
  io->st = p->store;
  io->maps = p->maps;
  io->al = NULL;
  io->sync = NULL;
  io->my_slot = p->my_slot;
  g_mutex_unlock (&p->lock);
  return 0;
}

void
pool_write_failed (struct srv_pool *p)
{
  g_mutex_lock (&p->lock);
  if (!p->write_failed)
    g_warning ("pool %s: a client write failed here: member %" PRIu32
               " serves no resync reads until the client hands it over "
               "again",
               p->name, p->member_id);
  p->write_failed = true;
  g_mutex_unlock (&p->lock);
}

bool
pool_quiet (struct srv_pool *p, uint64_t off, uint64_t len)
{
  int r;

  g_mutex_lock (&p->lock);
  r = quiet_unlocked (p, off, len, true);
  g_mutex_unlock (&p->lock);
  /* No record (al_extents=0): nothing tells when a write done here is on
   * every leg, so never; the chunk stays kept (a map that does not
   * drain, never a fetch over a write still on its way).
   */
  return r == 0;
}

bool
pool_writes_overlap (struct srv_pool *p, uint64_t off, uint64_t len)
{
  struct io_ctx *w;
  bool r = false;

  g_mutex_lock (&p->lock);
  for (w = p->wlist; w && !r; w = w->wnext)
    r = w->wstart < off + len && off < w->wend &&
        !(w->parked && atomic_load (w->parked));
  g_mutex_unlock (&p->lock);
  return r;
}

void
pool_io_end (struct srv_pool *p, struct io_ctx *io, bool write)
{
  g_mutex_lock (&p->lock);
  if (io && io->wlinked) {
    if (io->wprev)
      io->wprev->wnext = io->wnext;
    else
      p->wlist = io->wnext;
    if (io->wnext)
      io->wnext->wprev = io->wprev;
    io->wlinked = false;
  }
  if (write)
    p->writes++;
  else
    p->reads++;
  /* GLib's broadcast is a system call even with nobody waiting, and
   * with IO done inline inflight reaches 0 after every request.
   */
  if (--p->inflight == 0 && p->idle_waiters)
    g_cond_broadcast (&p->idle);
  g_mutex_unlock (&p->lock);
}

int
pool_local_begin (struct srv_pool *p, uint64_t gen, uint64_t off, uint64_t len,
                  struct store **st, GString *err)
{
  int r;

  g_mutex_lock (&p->lock);
  r = csum_admit_unlocked (p, gen, off, len, err);
  if (r == 0) {
    p->inflight++;
    *st = p->store;
  }
  g_mutex_unlock (&p->lock);
  return r;
}

int
pool_mark_outdated (struct srv_pool *p, uint64_t gen, uint64_t chunk,
                    uint32_t slots, struct map_waiter *w, GString *err)
{
  unsigned shift;
  int r;

  g_mutex_lock (&p->lock);
  if (p->state != RMR_POOL_NORMAL || !p->maps || p->generation != gen ||
      p->enabler) {
    g_string_printf (err,
                     "pool '%s' is %s in generation %" PRIu64 "%s (the "
                     "verify began in %" PRIu64 ")",
                     p->name, pool_state_name (p->state), p->generation,
                     p->enabler ? ", a client joining" : "", gen);
    g_mutex_unlock (&p->lock);
    return -ECANCELED;
  }
  shift = maps_chunk_shift (p->maps);
  /* This member's own copy is about to be fetched again: only if no
   * write it did there may still be on its way to the member it fetches
   * from; from here on a write waits for the fetch (sync_gate).
   */
  if (p->my_slot >= 0 && (slots & 1u << p->my_slot)) {
    r = quiet_unlocked (p, chunk << shift, UINT64_C (1) << shift, false);
    if (r == 0 && dirty_any_unlocked (p, chunk << shift, UINT64_C (1) << shift))
      r = -EBUSY;
    if (r < 0) {
      g_string_printf (err, "chunk %" PRIu64 " is not quiet here", chunk);
      g_mutex_unlock (&p->lock);
      return r;
    }
  }
  p->inflight++;
  r = maps_mark (p->maps, slots, chunk, 1, w);
  g_mutex_unlock (&p->lock);
  if (r < 0) {
    g_string_printf (err, "%s", rmr_get_error () ? rmr_get_error () : "");
    pool_local_end (p);
  }
  return r;
}

int
pool_watch (struct srv_pool *p, struct srv_maps *maps, unsigned slot,
            uint64_t first, uint64_t n, uint32_t *behind)
{
  unsigned shift = maps_chunk_shift (maps);
  uint8_t few[8] = {0}, *flagged = few;
  g_autofree uint8_t *many = NULL;
  struct io_ctx *w;
  uint64_t a, b, c;
  int r;

  *behind = 0;
  if (n == 0 || n > maps_nchunks (maps))
    return maps_watch (maps, slot, first, n, NULL, NULL); /* its error */
  if ((n + 7) / 8 > sizeof few)
    flagged = many = g_malloc0 ((n + 7) / 8);
  g_mutex_lock (&p->lock);
  for (w = p->wlist; w; w = w->wnext) {
    if (w->wend <= w->wstart || (w->wstart >> shift) >= first + n ||
        ((w->wend - 1) >> shift) < first)
      continue;
    *behind |= w->wmask & ~(1u << slot);
    if (!(w->wmask & 1u << slot))
      continue;
    a = MAX (w->wstart >> shift, first);
    b = MIN ((w->wend - 1) >> shift, first + n - 1);
    for (c = a; c <= b; c++)
      flagged[(c - first) / 8] |= 1u << ((c - first) % 8);
  }
  /* What this member's maps say of others counts only where it is
   * current itself: a bit it marked for a write that then failed here,
   * or one whose clear it missed while it was away, may be stale, and
   * every leg that did the write records the same, current there.
   */
  r = maps_watch (maps, slot, first, n, flagged,
                  p->my_slot >= 0 && (unsigned) p->my_slot != slot &&
                      maps_any (maps, (unsigned) p->my_slot, first, n)
                    ? NULL
                    : behind);
  g_mutex_unlock (&p->lock);
  return r;
}

void
pool_take_quiet (struct srv_pool *p, struct srv_maps *maps, unsigned slot,
                 uint64_t first, uint64_t n, uint8_t *bits)
{
  unsigned shift = maps_chunk_shift (maps);
  uint64_t k;

  g_mutex_lock (&p->lock);
  /* Without a record nothing is known quiet (pool_quiet): none taken. */
  for (k = 0; k < n; k++)
    if ((bits[k / 8] & 1u << (k % 8)) &&
        quiet_unlocked (p, (first + k) << shift, UINT64_C (1) << shift, false) <
          0)
      bits[k / 8] &= ~(1u << (k % 8));
  maps_or_bits (maps, slot, first, n, bits, NULL);
  g_mutex_unlock (&p->lock);
}

void
pool_local_end (struct srv_pool *p)
{
  g_mutex_lock (&p->lock);
  if (--p->inflight == 0 && p->idle_waiters)
    g_cond_broadcast (&p->idle);
  g_mutex_unlock (&p->lock);
}

void
pool_sync_kick (struct srv_pool *p)
{
  /* Under p->lock: sync_close runs only after p->sync was taken away
   * under it, so the object lives while we hold it (p->lock before the
   * sync's lock, as in set_state_unlocked).
   */
  g_mutex_lock (&p->lock);
  sync_kick (p->sync);
  g_mutex_unlock (&p->lock);
}
