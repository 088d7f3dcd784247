/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The resync's durable clear of the chunks it synced (sync.c), and the
 * quiet rule for a chunk fetched again after its clear was kept.
 *
 * Invariant: a bit is cleared, here and at a peer, only once the chunk's
 * data is durable here: the store's flush succeeded, and no other sync of
 * the store failed since the data was written (the kernel reports a
 * writeback error once, to whichever sync comes first).  Our own bit
 * goes only if every watching peer cleared its bit.
 *
 * A chunk whose clear was kept (a peer marked it again since its watch
 * began, or could not be asked), or whose batch was not durable, is
 * fetched again, but only once it is quiet here: no client write to it
 * in flight here, and every write this member did there done on every
 * leg (pool_quiet: the recent-write record's horizon).  After the first fetch this member took client
 * writes to the chunk; one may still be on its way to the member the
 * next fetch reads from, which would serve the chunk without it, and the
 * fetch would overwrite an acknowledged write here.  (The first fetch
 * needs no such wait: writes wait at the gate from the moment the chunk
 * is dirty here, and a chunk that turns dirty while a write is on its way
 * does so by a hand-over, with IO frozen, or by the reconcile, which
 * takes only quiet chunks.)  A background fetch of a chunk that is not
 * quiet is put off for QUIET_RETRY_MS; an IO waiting for it gets the
 * on-demand retries, then fails, as when the peers refuse.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "internal.h"
#include "sync-internal.h"
#include "util.h"

void
sync_flush_unlocked (struct srv_sync *s)
{
  g_autoptr (GArray) batch = s->synced;
  g_autoptr (GArray) again = g_array_new (FALSE, FALSE, sizeof (uint64_t));
  g_autoptr (GArray) cleared = g_array_new (FALSE, FALSE, sizeof (uint64_t));
  uint64_t gen = s->generation, nkept = 0;
  uint8_t kept[FLUSH_CHUNKS / 8 + 1];
  int r;
  guint i, j;

  s->synced = g_array_new (FALSE, FALSE, sizeof (struct synced));
  s->flushing = true;
  g_mutex_unlock (&s->lock);

  r = store_io_wait (s->st, STORE_FLUSH, NULL, 0, 0);
  /* Another sync of the store failed since a chunk's data was written
   * (a client's flush, the map flusher): the writeback error of that
   * data may have gone to it, and ours succeeding says nothing.  As if
   * ours had failed.  One still in flight may have taken it and not
   * counted it yet: they end first (store-sync.c).
   */
  if (r == 0 && !store_syncs_wait (s->st))
    r = -ETIMEDOUT; /* not known yet: fetched again, nothing failed */
  for (i = 0; r == 0 && i < batch->len; i++)
    if (g_array_index (batch, struct synced, i).ferr !=
        store_flush_errors (s->st))
      r = -EIO;
  if (r < 0 && r != -ETIMEDOUT) {
    /* As a client's failed flush (sess-io.c): writes acknowledged here
     * before it may be gone, and a later flush that succeeds would not
     * say so (the kernel reports a writeback error once).  The record
     * says so, durably: they are resynced when this member comes back.
     */
    al_suspect (maps_al (s->maps));
    if (maps_sync (s->maps) < 0)
      g_warning ("pool %s: saving the suspect record failed", s->pool->name);
  }
  for (i = 0; r == 0 && i < batch->len; i = j) {
    const struct synced *a = &g_array_index (batch, struct synced, i);
    uint64_t n = 1, k;
    /* Runs of consecutive chunks watched by the same peers go as one. */
    for (j = i + 1; j < batch->len && n < FLUSH_CHUNKS; j++, n++) {
      const struct synced *b = &g_array_index (batch, struct synced, j);
      if (b->chunk != a->chunk + n || b->watched.mask != a->watched.mask ||
          memcmp (b->watched.by, a->watched.by, sizeof a->watched.by))
        break;
    }
    if (a->watched.mask &&
        rmr_sync_clear_watched (s->peers, gen, s->slot, a->chunk, n,
                                a->watched.mask, a->watched.by, kept) < 0)
      g_info ("pool %s: %s (the chunks stay dirty: fetched again later)",
              s->pool->name, rmr_get_error ());
    else if (!a->watched.mask)
      memset (kept, 0, sizeof kept);
    for (k = 0; k < n; k++) {
      if (kept[k / 8] & 1 << (k % 8)) {
        uint64_t c = a->chunk + k;
        nkept++;
        g_array_append_val (again, c);
        continue;
      }
      uint64_t c = a->chunk + k;
      maps_clear (s->maps, 1u << s->slot, c, 1);
      g_array_append_val (cleared, c);
    }
  }
  if (nkept)
    g_info ("pool %s: sync: %" PRIu64 " chunks were written again while "
            "being fetched; they are fetched again",
            s->pool->name, nkept);

  g_mutex_lock (&s->lock);
  /* Fetched again only once quiet: the kept ones, and all of a batch
   * that is not durable (client writes passed the gate meanwhile).
   */
  for (i = 0; i < again->len; i++)
    g_hash_table_insert (s->requiet,
                         GSIZE_TO_POINTER (g_array_index (again, uint64_t, i)),
                         GSIZE_TO_POINTER (0));
  for (i = 0; i < cleared->len; i++)
    g_hash_table_remove (
      s->requiet, GSIZE_TO_POINTER (g_array_index (cleared, uint64_t, i)));
  for (i = 0; i < batch->len; i++) {
    uint64_t c = g_array_index (batch, struct synced, i).chunk;
    struct chunk_ent *e = g_hash_table_lookup (s->chunks, &c);
    if (r < 0)
      g_hash_table_insert (s->requiet, GSIZE_TO_POINTER (c),
                           GSIZE_TO_POINTER (0));
    /* Done, or not durable (the bit stays, fetched again). */
    if (e && e->state == CH_SYNCED)
      g_hash_table_remove (s->chunks, &c);
  }
  if (r == -ETIMEDOUT)
    snprintf (s->last_error, sizeof s->last_error,
              "another sync of the store did not end in time: the chunks "
              "just synced are fetched again");
  else if (r < 0)
    snprintf (s->last_error, sizeof s->last_error, "flushing the store: %s",
              strerror (-r));
  if (nkept)
    s->done -= MIN (s->done, nkept);
  s->last_flush = g_get_monotonic_time ();
  s->flushing = false;
  update_active_unlocked (s);
  if (s->started && !s->finished && maps_count (s->maps, s->slot) == 0)
    s->finished = s->last_flush;
  if (maps_count (s->maps, s->slot) == 0)
    s->reconcile_at = 0; /* done: see what the peers say */
  g_cond_broadcast (&s->cond);
}

bool
sync_requiet_deferred_unlocked (struct srv_sync *s, uint64_t c, int64_t now)
{
  gpointer v;

  if (!g_hash_table_lookup_extended (s->requiet, GSIZE_TO_POINTER (c), NULL,
                                     &v))
    return false;
  return (int64_t) GPOINTER_TO_SIZE (v) > now;
}

int
sync_requiet_check (struct srv_sync *s, uint64_t c, uint64_t off, uint32_t len)
{
  bool kept;

  g_mutex_lock (&s->lock);
  kept = g_hash_table_contains (s->requiet, GSIZE_TO_POINTER (c));
  g_mutex_unlock (&s->lock);
  if (!kept)
    return 0;
  if (pool_quiet (s->pool, off, len)) {
    g_mutex_lock (&s->lock);
    g_hash_table_remove (s->requiet, GSIZE_TO_POINTER (c));
    g_mutex_unlock (&s->lock);
    return 0;
  }
  g_mutex_lock (&s->lock);
  g_hash_table_insert (
    s->requiet, GSIZE_TO_POINTER (c),
    GSIZE_TO_POINTER (g_get_monotonic_time () + QUIET_RETRY_MS * 1000));
  g_mutex_unlock (&s->lock);
  return rmr_err (EAGAIN,
                  "chunk %" PRIu64 " was kept at its clear and is not quiet "
                  "here yet (a write this member did there may still be on "
                  "its way to the peers)",
                  c);
}
