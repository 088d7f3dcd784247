/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the resync (sync.c) shows of itself: the status of `rmr-server/
 * pools/NAME/sync` and the progress of the pool's other views.  Besides
 * the counts, what a resync that moves no more waits for: the chunks in
 * hand and the step the oldest is at, the chunks put off until quiet
 * here, and the time since the last chunk was synced.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "sync-internal.h"

static const char *
chunk_state_name (enum chunk_state st)
{
  switch (st) {
  case CH_FETCHING: return "fetching";
  case CH_WATCHING: return "watching for a claim";
  case CH_CLAIMED: return "claimed by a write";
  case CH_SYNCED: return "synced, its clear waits for a flush";
  }
  return "?";
}

/* The chunks in hand and the oldest of them, those put off until quiet,
 * and the time since the last chunk was synced (lock held): what a
 * resync that moves no more waits for.
 */
static void
status_in_hand_unlocked (struct srv_sync *s, GString *out, bool running)
{
  int64_t now = g_get_monotonic_time ();
  const struct chunk_ent *old = NULL;
  GHashTableIter it;
  gpointer v;
  guint n;

  g_hash_table_iter_init (&it, s->chunks);
  while (g_hash_table_iter_next (&it, NULL, &v))
    if (!old || ((const struct chunk_ent *) v)->since < old->since)
      old = v;
  if (old) {
    const char *doing = atomic_load (&old->doing);
    g_string_append_printf (
      out, "in_hand: %u (oldest: chunk %" PRIu64 ", %s%s%s, for %.1f s)\n",
      g_hash_table_size (s->chunks), old->chunk, chunk_state_name (old->state),
      doing && old->state == CH_FETCHING ? ": " : "",
      doing && old->state == CH_FETCHING ? doing : "",
      (now - old->since) / 1e6);
  }
  n = g_hash_table_size (s->requiet);
  if (n)
    g_string_append_printf (out,
                            "kept_until_quiet: %u (fetched again once no "
                            "write of this member there may be in flight)\n",
                            n);
  if (running && s->last_done)
    g_string_append_printf (out, "last_chunk_synced: %.1f s ago\n",
                            (now - s->last_done) / 1e6);
}

bool
sync_status (struct srv_sync *s, GString *out)
{
  uint64_t left, total, rate = 0;
  int64_t elapsed;
  bool running;

  g_mutex_lock (&s->lock);
  left = maps_count (s->maps, s->slot);
  total = s->done + left;
  elapsed =
    !s->started
      ? 0
      : (s->finished ? s->finished : g_get_monotonic_time ()) - s->started;
  if (elapsed > 0)
    rate = s->bytes * 1000000 / elapsed;
  running = s->normal && !s->bg_stopped && left > 0;
  g_string_append_printf (out, "state: %s\n",
                          left == 0       ? "idle (in sync)"
                          : s->bg_stopped ? "stopped"
                          : !s->normal    ? "waiting (pool not normal)"
                                          : "running");
  g_string_append_printf (
    out, "done: %" PRIu64 "\ntotal: %" PRIu64 "\ndirty: %" PRIu64 "\n", s->done,
    total, left);
  g_string_append_printf (out, "bytes: %" PRIu64 "\n", s->bytes);
  g_string_append_printf (out, "zero_chunks: %" PRIu64 "\n", s->zero_chunks);
  g_string_append_printf (out, "elapsed: %.3f s\n", elapsed / 1e6);
  g_string_append_printf (out, "rate: %.1f MB/s\n", rate / 1e6);
  if (running && rate)
    g_string_append_printf (out, "eta: %" PRIu64 " s\n",
                            (left << s->shift) / rate);
  else
    g_string_append (out, "eta: -\n");
  if (s->pace.rate)
    g_string_append_printf (out, "rate_limit: %.1f MB/s\n", s->pace.rate / 1e6);
  else
    g_string_append (out, "rate_limit: unlimited\n");
  if (s->pace.min_rate)
    g_string_append_printf (out, "min_rate: %.1f MB/s\n",
                            s->pace.min_rate / 1e6);
  else
    g_string_append (out, "min_rate: off\n");
  /* IO since the last fetch or the last look counts as busy. */
  g_string_append_printf (out, "clients: %s\n",
                          sync_pace_note (&s->pace,
                                          atomic_load (&s->pool->client_ios),
                                          g_get_monotonic_time ())
                            ? "busy"
                            : "idle");
  g_string_append_printf (out, "parallel: %u\n", s->nworkers);
  status_in_hand_unlocked (s, out, running);
  if (s->failures)
    g_string_append_printf (out, "failures: %" PRIu64 "\n", s->failures);
  if (s->last_error[0])
    g_string_append_printf (out, "last_error: %s\n", s->last_error);
  g_mutex_unlock (&s->lock);
  return left == 0;
}

void
sync_progress (struct srv_sync *s, struct sync_progress *pr)
{
  int64_t elapsed;

  g_mutex_lock (&s->lock);
  pr->left = maps_count (s->maps, s->slot);
  pr->done = s->done;
  pr->total = s->done + pr->left;
  pr->state = pr->left == 0   ? "idle"
              : s->bg_stopped ? "stopped"
              : !s->normal    ? "waiting"
                              : "running";
  elapsed = s->started ? g_get_monotonic_time () - s->started : 0;
  pr->rate = strcmp (pr->state, "running") == 0 && elapsed > 0
               ? s->bytes * 1000000 / elapsed
               : 0;
  g_mutex_unlock (&s->lock);
}
