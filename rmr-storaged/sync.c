/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Resync of the chunks this member missed, straight from its peers
 * (DESIGN 5): one hop, the compute host not involved.
 *
 * The chunks dirty for this member (its own slot of the dirty map) are
 * fetched from a clean peer through the pool's sync pool (rmr_sync_read)
 * and written to the store.  Two ways in:
 *   - the background sync: worker threads walk the dirty chunks, at the
 *     pace of sync-pace.c (sync_rate, and sync_min_rate while clients do
 *     IO here), as soon as the pool is normal (unless stopped by `sync
 *     stop`);
 *   - on demand: a client IO that touches a dirty chunk waits while the
 *     chunk is fetched first (sync_gate), then goes on.  A write that
 *     covers whole dirty chunks claims them instead: no fetch, the write
 *     itself makes them current; only while every other member of the
 *     table watches (else a member away keeps its record of us there,
 *     and an assemble's union gives it back: see every_member_watches).
 *
 * A chunk being handled has an entry in `chunks`: fetching (a worker
 * reads it), watching (a worker asks the peers to watch it for a write
 * that will claim it), claimed (a whole-chunk write is on it) or synced
 * (current on this store, its bit not yet cleared).  IOs that touch a
 * chunk in any state but synced wait on its entry, in arrival order.
 *
 * Clears are watched (DESIGN 6, map.c): before a chunk is fetched or
 * claimed, every reachable peer starts watching it for this member's
 * slot; the data comes only from a watching peer that is current there in
 * this member's view (its own bit clear at the peer, no bit for it in our
 * map, and none at any watcher: the watch's reply names the members a
 * watcher holds behind there, for a member that missed the same write as
 * we did knows it no more than we do); the clear is conditional at every
 * watching peer, and our own bit goes only if none of them kept its bit.
 * (Our own bit is not watched: keeping it for a mark here during the
 * fetch would fetch the chunk again after writes this member did there
 * since, unguarded by the quiet rule; such a mark comes back through the
 * reconcile, which is guarded.)  So a write this member missed after the
 * fetch (the client no longer counts it normal, and the peers recorded
 * the write for it) keeps the chunk dirty everywhere, and a peer that is
 * itself behind never serves it.  The peer refuses a read
 * while a client write to the range is in flight there (pool.c): that
 * write's mark may predate the watch.  A chunk kept at its clear is
 * fetched again only once quiet here (sync-flush.c): this member took
 * client writes to it since, and one may still be on its way to the
 * source.
 *
 * Reconcile (sync-reconcile.c): when this member's own bits run out, an
 * idle worker takes the bits a current peer still holds for our slot,
 * where the chunk is quiet here, and they are fetched like any other.
 *
 * Durability (sync-flush.c): a synced chunk's bit is cleared, here and
 * at the peers, only after an fdatasync of the store made the chunk
 * durable (batched: at most every FLUSH_MS or FLUSH_CHUNKS), and no other
 * sync of the store failed since its data was written.  A crash before
 * that leaves the bit set: the chunk is fetched again, never forgotten.
 *
 * Idle workers sleep on cond until work arrives or something falls due,
 * never on a fixed tick: with many pools per daemon and several workers
 * per pool a 100 ms poll cost hundreds of wake-ups a second doing nothing
 * (issue 12, item 5).  Whatever makes work (an IO waiting for a chunk,
 * `sync start`, the pool turning normal, a map add for our own slot:
 * sync_kick, a flush or a reconcile ending) broadcasts cond.  What falls
 * due by time alone (a batched flush FLUSH_MS after the last one, the next
 * reconcile) is waited for by one worker at a time, the one that armed
 * the earliest deadline (timer_at); the others wait untimed.  No deadline
 * is further than IDLE_MAX_MS away, a bound on anything missed.
 *
 * Locking: lock protects everything below it in struct srv_sync; no
 * store, map-flusher or network call is made with it held.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dmap.h"
#include "error.h"
#include "internal.h"
#include "sync-internal.h"
#include "util.h"

/* Anything to do for an IO: own bits set, or chunks being handled.  Read
 * from the maps themselves, so bits a hand-over or an assemble just
 * added count at once, whatever the background sync is doing.
 */
static bool
active (struct srv_sync *s)
{
  return atomic_load (&s->ntable) > 0 || maps_count_fast (s->maps, s->slot) > 0;
}

static struct chunk_ent *
new_ent_unlocked (struct srv_sync *s, uint64_t c, enum chunk_state state)
{
  struct chunk_ent *e = g_new0 (struct chunk_ent, 1);

  e->chunk = c;
  e->state = state;
  e->since = g_get_monotonic_time ();
  g_hash_table_insert (s->chunks, &e->chunk, e);
  return e;
}

/* The gate proper (lock held).  0: w may go now; 1: queued on an entry
 * (and a fetch requested if needed); -EIO: the sync is stopped.
 */
static int
gate_unlocked (struct srv_sync *s, struct sync_waiter *w)
{
  uint64_t c, cs = UINT64_C (1) << s->shift;
  struct chunk_ent *e;
  bool whole;

  if (s->stop)
    return -EIO; /* sync_stop: nobody would fetch; the store goes away */
  for (c = w->first; c <= w->last; c++) {
    whole = w->write && w->offset <= c * cs &&
            w->offset + w->len >= MIN ((c + 1) * cs, s->mapped_size);
    e = g_hash_table_lookup (s->chunks, &c);
    if (e) {
      if (e->state == CH_SYNCED)
        continue;
      /* A background fetch that an IO now waits for gets the retries of
       * an on-demand one: a peer's "write in flight, try again" must not
       * fail the IO (it failed the client's leg, which then bounced).
       * A worker waiting for the pace with it (throttle) goes now.
       */
      if (!atomic_exchange (&e->on_demand, true))
        g_cond_broadcast (&s->cond);
      /* Watched for a claim and not taken yet: a whole write takes it;
       * anything else makes it a fetch (the claim would never come).
       */
      if (e->state == CH_CLAIMED && !e->owned) {
        if (whole && !e->head)
          continue;
        e->state = CH_FETCHING;
        e->on_demand = true;
        g_queue_push_tail (&s->demand, e);
        g_cond_broadcast (&s->cond);
      }
      goto wait;
    }
    if (!maps_test (s->maps, s->slot, c))
      continue;
    /* Dirty for us: fetched first, or for a write covering all of it,
     * watched first (no fetch; the write itself makes it current).
     */
    e = new_ent_unlocked (s, c, whole ? CH_WATCHING : CH_FETCHING);
    e->on_demand = true;
    g_queue_push_tail (&s->demand, e);
    g_cond_broadcast (&s->cond);
    goto wait;
  }

  /* Nothing to wait for: take the claims a write covers. */
  w->claimed = 0;
  if (w->write)
    for (c = w->first; c <= w->last; c++) {
      e = g_hash_table_lookup (s->chunks, &c);
      if (e && e->state == CH_CLAIMED && !e->owned) {
        e->owned = true;
        w->claimed++;
      }
    }
  return 0;

wait:
  atomic_store (&w->parked, true);
  w->next = NULL;
  if (e->tail)
    e->tail->next = w;
  else
    e->head = w;
  e->tail = w;
  return 1;
}

bool
sync_active (struct srv_sync *s)
{
  return s && active (s);
}

int
sync_gate (struct srv_sync *s, struct sync_waiter *w, uint64_t offset,
           uint32_t len, bool write)
{
  int r;

  w->claimed = 0;
  if (!s || len == 0 || !active (s))
    return 0;
  w->offset = offset;
  w->len = len;
  w->write = write;
  w->first = offset >> s->shift;
  w->last = (offset + len - 1) >> s->shift;
  g_mutex_lock (&s->lock);
  r = gate_unlocked (s, w);
  g_mutex_unlock (&s->lock);
  if (r < 0) {
    w->go (w, r);
    return 1;
  }
  return r;
}

/* An entry is gone (synced, or failed with err): re-gate its waiters in
 * order; those that may go are called (outside the lock).
 */
static void
release_unlocked (struct srv_sync *s, struct chunk_ent *e, int err,
                  struct sync_waiter **go, struct sync_waiter **fail)
{
  struct sync_waiter *w, *next, *head = e->head;
  int r;

  /* Waiters may queue on e again while they are gated anew. */
  e->head = e->tail = NULL;
  for (w = head; w; w = next) {
    next = w->next;
    atomic_store (&w->parked, false);
    r = err ? err : gate_unlocked (s, w);
    if (r < 0) {
      w->err = r;
      w->next = *fail;
      *fail = w;
    }
    else if (r == 0) {
      w->next = *go;
      *go = w;
    }
  }
}

/* Call the waiters collected by release_unlocked (lists are reversed). */
static void
run_waiters (struct sync_waiter *go, struct sync_waiter *fail)
{
  struct sync_waiter *rev = NULL, *w;

  while (go) {
    w = go;
    go = w->next;
    w->next = rev;
    rev = w;
  }
  while (rev) {
    w = rev;
    rev = w->next;
    w->go (w, 0);
  }
  while (fail) {
    w = fail;
    fail = w->next;
    w->go (w, w->err);
  }
}

void
sync_io_done (struct srv_sync *s, struct sync_waiter *w, int res)
{
  struct sync_waiter *go = NULL, *fail = NULL;
  struct chunk_ent *e;
  uint64_t c;

  if (!s || !w->claimed)
    return;
  g_mutex_lock (&s->lock);
  for (c = w->first; c <= w->last; c++) {
    e = g_hash_table_lookup (s->chunks, &c);
    if (!e || e->state != CH_CLAIMED || !e->owned)
      continue;
    if (res == 0) {
      struct synced sy = {.chunk = c, .watched = e->watched, .ferr = e->ferr};
      e->state = CH_SYNCED;
      g_array_append_val (s->synced, sy);
      s->last_done = g_get_monotonic_time ();
      s->done++;
    }
    release_unlocked (s, e, 0, &go, &fail);
    if (res != 0)
      g_hash_table_remove (s->chunks, &c);
  }
  w->claimed = 0;
  update_active_unlocked (s);
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  run_waiters (go, fail);
}

/* The peers that watch chunk c and may serve it: current there in our
 * view (no bit for them in our map) and in every watcher's (not behind:
 * a member that missed the same write as we did does not know it, and
 * neither did we).  The peer refuses by itself if its own bit is set.
 * The member that watched through each peer is the one
 * this decides on; the read refuses an answer from any other there (the
 * session may lead elsewhere by then: rmr.h).
 */
static uint32_t
sources (struct srv_sync *s, const struct watchers *w, uint64_t c)
{
  uint32_t ok = 0, member;
  unsigned i;
  int k;

  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    if (!(w->mask & 1u << i))
      continue;
    member = w->by[i];
    if (member == RMR_MEMBER_NONE)
      continue;
    k = store_member_slot (s->st, member);
    if (k >= 0 && k != s->slot && !(w->behind & 1u << k) &&
        !maps_test (s->maps, (unsigned) k, c))
      ok |= 1u << i;
  }
  return ok;
}

/* Read chunk c (len bytes at off) from one of its sources.  None: say
 * why, so that an operator sees which members' records hold it back
 * (a watcher's record of a member may outlive that member's clear where
 * the watcher could not be reached; that member's reconcile drains it).
 */
static int
fetch (struct srv_sync *s, const struct watchers *w, uint64_t c, void *buf,
       uint32_t len, uint64_t off, uint64_t gen, int *zeroes)
{
  uint32_t src = sources (s, w, c);

  if (!src && w->mask)
    return rmr_err (EAGAIN,
                    "no source: every peer that watched is behind there "
                    "by this member's map or by a watcher's record (slots "
                    "0x%" PRIx32 " behind at a watcher)",
                    w->behind);
  return rmr_sync_read_sparse (s->peers, gen, src, w->by, buf, len, off, NULL,
                               zeroes);
}

/* A background fetch put off (lock not held): its entry goes, the bit
 * stays for later.  Not if an IO waits for it by now (false).
 */
static bool
put_off (struct srv_sync *s, struct chunk_ent *e)
{
  g_mutex_lock (&s->lock);
  if (atomic_load (&e->on_demand)) {
    g_mutex_unlock (&s->lock);
    return false;
  }
  s->busy_workers--;
  g_hash_table_remove (s->chunks, &e->chunk);
  update_active_unlocked (s);
  g_mutex_unlock (&s->lock);
  return true;
}

/* Next chunk for a worker (lock held): on-demand first, then the
 * background walk.  Returns an entry in state fetching, or NULL.
 */
static struct chunk_ent *
next_work_unlocked (struct srv_sync *s)
{
  int64_t now = g_get_monotonic_time ();
  struct chunk_ent *e;
  uint64_t c;

  e = g_queue_pop_head (&s->demand);
  if (e)
    return e;
  if (!s->normal || s->bg_stopped)
    return NULL;
  for (c = maps_next (s->maps, s->slot, s->cursor); c != DMAP_NONE;
       c = maps_next (s->maps, s->slot, c + 1))
    if (!g_hash_table_lookup (s->chunks, &c) &&
        !sync_requiet_deferred_unlocked (s, c, now))
      break;
  if (c == DMAP_NONE) {
    s->cursor = 0; /* a later hand-over may add chunks */
    return NULL;
  }
  s->cursor = c + 1;
  return new_ent_unlocked (s, c, CH_FETCHING);
}

/* Wait for the pace (background fetches only), on cond: an IO that
 * starts waiting for e (on_demand) or a stop ends the wait at once, so
 * neither waits out the pace of the background; a new rate takes the
 * pace again.  Chunks synced meanwhile are made durable and cleared
 * when due, from here: every worker may be waiting for the pace (at a
 * low rate, for long), and the flush is otherwise a worker's between
 * two chunks.
 */
static void
throttle (struct srv_sync *s, struct chunk_ent *e, uint64_t bytes)
{
  uint64_t ios =
    atomic_load_explicit (&s->pool->client_ios, memory_order_relaxed);
  int64_t now, wait, t, until, due;
  uint64_t gen;

  g_mutex_lock (&s->lock);
again:
  now = g_get_monotonic_time ();
  wait = sync_pace_take (&s->pace, bytes, ios, now);
  gen = s->pace_gen;
  while (wait > 0 && !s->stop && !atomic_load (&e->on_demand) &&
         s->pace_gen == gen) {
    t = g_get_monotonic_time ();
    until = now + wait;
    if (t >= until)
      break;
    if (s->synced->len && !s->flushing) {
      due = s->last_flush + FLUSH_MS * 1000;
      if (t >= due) {
        sync_flush_unlocked (s);
        continue;
      }
      until = MIN (until, due);
    }
    g_cond_wait_until (&s->cond, &s->lock, until);
  }
  if (wait > 0 && !s->stop && !atomic_load (&e->on_demand) &&
      s->pace_gen != gen)
    goto again; /* a new rate (sync_set_rate) */
  g_mutex_unlock (&s->lock);
}

/* A local write that passed the gate before the chunk turned dirty here
 * (a hand-over or a reconcile just added it) lands first: the fetched
 * data must not overwrite it.  Writes queued on e are parked and wait
 * for us instead.  One that does not land is logged, once.
 */
static void
wait_local_writes (struct srv_sync *s, struct chunk_ent *e, uint64_t off,
                   uint32_t len)
{
  int64_t t0 = g_get_monotonic_time ();
  bool said = false;

  atomic_store (&e->doing, "waiting for a local write to land");
  while (pool_writes_overlap (s->pool, off, len) && !s->stop) {
    if (!said && g_get_monotonic_time () - t0 >= SLOW_STEP_MS * 1000) {
      g_warning ("pool %s: sync: chunk %" PRIu64 " waits for a client write "
                 "in flight here for %d s",
                 s->pool->name, e->chunk, SLOW_STEP_MS / 1000);
      said = true;
    }
    g_usleep (1000);
  }
}

/* Does every other member of the pool's table watch?  A claim clears
 * our bit with no source behind it: a member that did not watch keeps
 * its record of us there, and an assemble gives that record back to us
 * (the union of the maps) while what we wrote there may be on us alone:
 * the chunk would then be dirty for every member, its acknowledged write
 * readable nowhere.  A fetch has a watching source by construction.
 */
static bool
every_member_watches (struct srv_sync *s, const struct watchers *w)
{
  uint32_t member;
  unsigned k, i;
  bool all = true;

  g_mutex_lock (&s->st->md_lock);
  for (k = 0; k < RMR_MAX_MEMBERS && all; k++) {
    member = s->st->sb.members[k].member_id;
    if (k == (unsigned) s->slot || member == RMR_MEMBER_NONE)
      continue;
    for (i = 0; i < RMR_MAX_MEMBERS; i++)
      if ((w->mask & 1u << i) && w->by[i] == member)
        break;
    all = i < RMR_MAX_MEMBERS;
  }
  g_mutex_unlock (&s->st->md_lock);
  return all;
}

/* Watch chunk e for a claim (CH_WATCHING), lock not held: then it may be
 * taken by a whole-chunk write.  Unless a member of the table did not
 * watch (it is away): then e is fetched instead (false: the caller goes
 * on with the fetch), and with no source the write fails, as a partial
 * one does.
 */
static bool
watch_for_claim (struct srv_sync *s, struct chunk_ent *e, uint64_t gen)
{
  struct sync_waiter *go = NULL, *fail = NULL;
  struct watchers watched;

  rmr_sync_watch (s->peers, gen, s->slot, e->chunk, 1, &watched.mask,
                  watched.by, &watched.behind);
  if (!every_member_watches (s, &watched)) {
    g_mutex_lock (&s->lock);
    e->state = CH_FETCHING;
    g_mutex_unlock (&s->lock);
    return false;
  }
  g_mutex_lock (&s->lock);
  e->watched = watched;
  e->ferr = store_flush_errors (s->st); /* before the claiming write */
  e->state = CH_CLAIMED;
  release_unlocked (s, e, 0, &go, &fail);
  if (!e->owned && !e->head && e->state == CH_CLAIMED) {
    /* Nobody took it (the write went elsewhere): the bit stays. */
    g_hash_table_remove (s->chunks, &e->chunk);
  }
  s->busy_workers--;
  update_active_unlocked (s);
  g_mutex_unlock (&s->lock);
  run_waiters (go, fail);
  return true;
}

static gpointer worker (gpointer arg);

/* A worker turns busy (lock held): when every started one is, start one
 * more, up to sync_parallel, so that a fetch an IO waits for always finds
 * an idle worker (or sync_parallel busy ones).  An idle pool keeps one
 * thread, not sync_parallel (memory per pool).
 */
static void
busy_unlocked (struct srv_sync *s)
{
  s->busy_workers++;
  if (s->busy_workers >= s->nstarted && s->nstarted < s->nworkers && !s->stop) {
    s->workers[s->nstarted] = g_thread_try_new ("sync", worker, s, NULL);
    if (s->workers[s->nstarted])
      s->nstarted++;
  }
}

/* Can the idle worker reconcile now, time aside?  (lock held) */
static bool
may_reconcile_unlocked (struct srv_sync *s)
{
  return s->normal && !s->bg_stopped && !s->flushing && s->busy_workers == 0 &&
         s->synced->len == 0 && maps_count (s->maps, s->slot) == 0;
}

/* Nothing to do now: sleep until woken (cond) or until the earliest of
 * what falls due by time alone, at most IDLE_MAX_MS.  Only the worker
 * with the earliest deadline waits timed.  (lock held)
 */
static void
idle_wait_unlocked (struct srv_sync *s)
{
  int64_t now = g_get_monotonic_time ();
  int64_t due = now + IDLE_MAX_MS * 1000;

  if (s->synced->len && !s->flushing)
    due = MIN (due, s->last_flush + FLUSH_MS * 1000);
  if (may_reconcile_unlocked (s))
    due = MIN (due, s->reconcile_at);
  if (due >= s->timer_at) {
    g_cond_wait (&s->cond, &s->lock); /* an earlier timer is armed */
    return;
  }
  s->timer_at = due;
  g_cond_wait_until (&s->cond, &s->lock, due);
  /* Whoever disarms looks again: a deadline is never dropped. */
  if (s->timer_at == due)
    s->timer_at = INT64_MAX;
}

static gpointer
worker (gpointer arg)
{
  struct srv_sync *s = arg;
  uint64_t cs = UINT64_C (1) << s->shift;
  void *buf = store_buf_alloc (cs);
  struct sync_waiter *go, *fail;
  struct chunk_ent *e;
  uint64_t off, gen, ferr;
  struct watchers watched;
  uint32_t len;
  int r, zeroes;

  g_mutex_lock (&s->lock);
  while (!s->stop) {
    if (s->synced->len && !s->flushing &&
        (s->synced->len >= FLUSH_CHUNKS || s->busy_workers == 0 ||
         g_get_monotonic_time () - s->last_flush >= FLUSH_MS * 1000)) {
      sync_flush_unlocked (s);
      continue;
    }
    e = next_work_unlocked (s);
    if (!e) {
      /* Idle: every own bit done.  See whether a peer knows more. */
      if (may_reconcile_unlocked (s) &&
          g_get_monotonic_time () >= s->reconcile_at) {
        uint64_t added;
        bool missed = false;
        busy_unlocked (s);
        gen = s->generation;
        g_mutex_unlock (&s->lock);
        added = sync_reconcile (s->pool, s->peers, s->st, s->maps, s->slot,
                                s->nchunks, gen, &missed);
        g_mutex_lock (&s->lock);
        s->busy_workers--;
        s->reconcile_at =
          g_get_monotonic_time () +
          (added || missed ? RECONCILE_MS : RECONCILE_IDLE_MS) * 1000;
        if (added) {
          g_message ("pool %s: sync: %" PRIu64 " more chunks that peers "
                     "still record for this member",
                     s->pool->name, added);
          s->cursor = 0;
          g_cond_broadcast (&s->cond); /* work for every idle worker */
        }
        update_active_unlocked (s);
        continue;
      }
      idle_wait_unlocked (s);
      continue;
    }
    busy_unlocked (s);
    if (s->started == 0)
      s->started = g_get_monotonic_time ();
    gen = s->generation;
    g_mutex_unlock (&s->lock);

    if (e->state == CH_WATCHING && watch_for_claim (s, e, gen)) {
      g_mutex_lock (&s->lock);
      continue;
    }

    off = e->chunk << s->shift;
    len = MIN (cs, s->mapped_size - off);
    zeroes = 0;
    /* Kept at its clear: only once quiet here (sync-flush.c).  Not yet:
     * the background comes back later (before its pace is charged), an
     * IO gets a few tries, then fails.
     */
    r = sync_requiet_check (s, e->chunk, off, len);
    if (r == -EAGAIN && put_off (s, e)) {
      g_mutex_lock (&s->lock);
      continue;
    }
    atomic_store (&e->doing, "waiting until quiet here");
    for (int t = 0; r == -EAGAIN && e->on_demand && t < RETRY_TRIES && !s->stop;
         t++) {
      g_usleep (RETRY_US << MIN (t, 4));
      r = sync_requiet_check (s, e->chunk, off, len);
    }
    atomic_store (&e->doing, "waiting for the pace");
    if (r == 0 && !e->on_demand)
      throttle (s, e, len);
    if (r == 0)
      wait_local_writes (s, e, off, len);
    if (r == 0) {
      atomic_store (&e->doing, "reading from a peer");
      rmr_sync_watch (s->peers, gen, s->slot, e->chunk, 1, &watched.mask,
                      watched.by, &watched.behind);
      r = fetch (s, &watched, e->chunk, buf, len, off, gen, &zeroes);
      /* A peer refuses while a client write to the chunk is in flight
       * there: that passes.  An IO waiting for this chunk gets a few
       * tries before it fails (the background comes back later).
       */
      for (int t = 0;
           r == -EAGAIN && e->on_demand && t < RETRY_TRIES && !s->stop; t++) {
        g_usleep (RETRY_US << MIN (t, 4));
        r = fetch (s, &watched, e->chunk, buf, len, off, gen, &zeroes);
      }
    }
    ferr = store_flush_errors (s->st);
    atomic_store (&e->doing, "writing to the store");
    if (r == 0)
      r = zeroes ? store_zero_wait (s->st, off, len)
                 : store_io_wait (s->st, STORE_WRITE, buf, off, len);

    g_mutex_lock (&s->lock);
    s->busy_workers--;
    go = fail = NULL;
    if (r == 0) {
      struct synced sy = {.chunk = e->chunk, .watched = watched, .ferr = ferr};
      e->state = CH_SYNCED;
      e->watched = watched;
      g_array_append_val (s->synced, sy);
      s->last_done = g_get_monotonic_time ();
      s->done++;
      s->bytes += len;
      s->zero_chunks += zeroes;
      metrics_add (&s->pool->m.resync_chunks, 1);
      metrics_add (&s->pool->m.resync_bytes, len);
      metrics_add (&s->pool->m.resync_zero_chunks, zeroes);
      release_unlocked (s, e, 0, &go, &fail);
    }
    else {
      s->failures++;
      metrics_add (&s->pool->m.resync_failures, 1);
      snprintf (s->last_error, sizeof s->last_error, "chunk %" PRIu64 ": %s",
                e->chunk, rmr_get_error () ? rmr_get_error () : strerror (-r));
      release_unlocked (s, e, -EIO, &go, &fail);
      g_hash_table_remove (s->chunks, &e->chunk);
      update_active_unlocked (s);
      /* The background walk backs off; on demand, the IO fails. */
      g_mutex_unlock (&s->lock);
      g_warning ("pool %s: sync: %s", s->pool->name, s->last_error);
      run_waiters (go, fail);
      g_usleep (100000);
      g_mutex_lock (&s->lock);
      continue;
    }
    update_active_unlocked (s);
    g_mutex_unlock (&s->lock);
    run_waiters (go, fail);
    g_mutex_lock (&s->lock);
  }
  if (s->synced->len && !s->flushing)
    sync_flush_unlocked (s);
  g_mutex_unlock (&s->lock);
  store_buf_free (buf);
  return NULL;
}

int
sync_open (struct srv_pool *p, struct store *st, struct srv_maps *maps,
           int slot, struct rmr_pool *peers, unsigned parallel,
           uint64_t rate_bps, uint64_t min_rate_bps, bool stopped,
           struct srv_sync **out)
{
  struct srv_sync *s;

  if (slot < 0)
    return rmr_err (EINVAL, "sync: this member has no slot in the pool");
  s = g_new0 (struct srv_sync, 1);
  s->pool = p;
  s->st = st;
  s->maps = maps;
  s->peers = peers;
  s->slot = slot;
  s->shift = maps_chunk_shift (maps);
  s->nchunks = maps_nchunks (maps);
  s->mapped_size = st->sb.mapped_size;
  sync_pace_init (&s->pace, rate_bps, min_rate_bps,
                  atomic_load (&p->client_ios));
  s->bg_stopped = stopped;
  s->nworkers = CLAMP (parallel, 1, MAX_WORKERS);
  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  s->chunks = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, g_free);
  s->requiet = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_queue_init (&s->demand);
  s->synced = g_array_new (FALSE, FALSE, sizeof (struct synced));
  s->last_flush = g_get_monotonic_time ();
  s->timer_at = INT64_MAX;
  update_active_unlocked (s);
  s->nstarted = 1;
  s->workers[0] = g_thread_new ("sync", worker, s);
  *out = s;
  return 0;
}

void
sync_stop (struct srv_sync *s)
{
  struct sync_waiter *go = NULL, *fail = NULL;
  GHashTableIter it;
  gpointer k, v;
  unsigned i, n;

  if (!s)
    return;
  g_mutex_lock (&s->lock);
  s->stop = true;
  g_cond_broadcast (&s->cond);
  n = s->nstarted;
  s->nstarted = 0; /* joined once, here */
  g_mutex_unlock (&s->lock);
  /* No worker starts once stop is set (under the lock). */
  for (i = 0; i < n; i++)
    g_thread_join (s->workers[i]);
  /* IOs still waiting fail: the store is going away.  Gates from now on
   * fail at once (gate_unlocked).
   */
  g_mutex_lock (&s->lock);
  g_queue_clear (&s->demand);
  g_hash_table_iter_init (&it, s->chunks);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    release_unlocked (s, v, -EIO, &go, &fail);
    g_hash_table_iter_remove (&it);
  }
  update_active_unlocked (s);
  g_mutex_unlock (&s->lock);
  run_waiters (go, fail);
}

void
sync_close (struct srv_sync *s)
{
  if (!s)
    return;
  sync_stop (s);
  g_hash_table_unref (s->chunks);
  g_hash_table_unref (s->requiet);
  g_queue_clear (&s->demand);
  g_array_unref (s->synced);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s);
}

void
sync_set_normal (struct srv_sync *s, bool normal, uint64_t generation)
{
  if (!s)
    return;
  g_mutex_lock (&s->lock);
  if (normal && !s->normal) {
    /* A new run: progress from here. */
    s->done = s->bytes = s->failures = 0;
    s->started = s->finished = 0;
    s->cursor = 0;
    s->last_error[0] = '\0';
  }
  s->normal = normal;
  s->generation = generation;
  update_active_unlocked (s);
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

void
sync_kick (struct srv_sync *s)
{
  if (!s)
    return;
  g_mutex_lock (&s->lock);
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

void
sync_set_rate (struct srv_sync *s, uint64_t rate_bps, uint64_t min_rate_bps)
{
  g_mutex_lock (&s->lock);
  s->pace.rate = rate_bps;
  s->pace.min_rate = min_rate_bps;
  /* What was owed at the old rate is forgiven; a worker waiting for the
   * pace takes it again at the new one (throttle).
   */
  s->pace.next = g_get_monotonic_time ();
  s->pace_gen++;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

int
sync_command (struct srv_sync *s, bool start)
{
  g_mutex_lock (&s->lock);
  s->bg_stopped = !start;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  return 0;
}

bool
sync_dirty_here (struct srv_sync *s, uint64_t offset, uint32_t len)
{
  uint64_t c, first, last;
  struct chunk_ent *e;
  bool dirty = false;

  if (!s || len == 0 || !active (s))
    return false;
  first = offset >> s->shift;
  last = (offset + len - 1) >> s->shift;
  g_mutex_lock (&s->lock);
  for (c = first; c <= last && !dirty; c++) {
    e = g_hash_table_lookup (s->chunks, &c);
    if (e)
      dirty = e->state != CH_SYNCED;
    else
      dirty = maps_test (s->maps, s->slot, c);
  }
  g_mutex_unlock (&s->lock);
  return dirty;
}
