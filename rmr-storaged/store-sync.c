/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The syncs of a store's file, counted: which are in flight, and how
 * many failed.
 *
 * The kernel reports a writeback error of a file once, to whichever sync
 * of it comes first (a client's flush, the map flusher, the recent-write
 * record, the resync's own flush).  So a sync that succeeds says nothing
 * of writes made before another one failed.  What wants to know whether
 * its writes are durable (the resync, before it clears a chunk's bit)
 * samples the failure count (store_flush_errors) before its write, and
 * after its own sync compares it, once every sync that began before its
 * own ended (store_syncs_wait): one still in flight may have taken the
 * error and not counted it yet.
 *
 * Every sync of a store's fd goes through here: store_fdatasync, and the
 * store IO path's flush and FUA steps (store-io.c) with store_sync_begin
 * and store_sync_end.
 *
 * Locking: sync_lock protects the tickets; the failure count is atomic.
 */
#include <errno.h>
#include <unistd.h>

#include "internal.h"

#define SYNCS_WAIT_MS 5000 /* a sync that never ends (a stopped backend) */

void
store_syncs_init (struct store *st)
{
  g_mutex_init (&st->sync_lock);
  g_cond_init (&st->sync_cond);
  st->syncs = g_array_new (FALSE, FALSE, sizeof (uint64_t));
  st->sync_next = 1;
}

void
store_syncs_fini (struct store *st)
{
  g_array_unref (st->syncs);
  g_mutex_clear (&st->sync_lock);
  g_cond_clear (&st->sync_cond);
}

uint64_t
store_sync_begin (struct store *st)
{
  uint64_t t;

  g_mutex_lock (&st->sync_lock);
  t = st->sync_next++;
  g_array_append_val (st->syncs, t);
  g_mutex_unlock (&st->sync_lock);
  return t;
}

void
store_sync_end (struct store *st, uint64_t ticket, int res)
{
  guint i;

  /* Counted before the ticket goes: a waiter sees both or neither. */
  if (res < 0 && res != -EINTR && res != -EAGAIN)
    store_flush_failed (st);
  g_mutex_lock (&st->sync_lock);
  for (i = 0; i < st->syncs->len; i++)
    if (g_array_index (st->syncs, uint64_t, i) == ticket) {
      g_array_remove_index_fast (st->syncs, i);
      break;
    }
  g_cond_broadcast (&st->sync_cond);
  g_mutex_unlock (&st->sync_lock);
}

/* Is a sync with a ticket before `before` in flight (lock held)? */
static bool
older_unlocked (struct store *st, uint64_t before)
{
  guint i;

  for (i = 0; i < st->syncs->len; i++)
    if (g_array_index (st->syncs, uint64_t, i) < before)
      return true;
  return false;
}

bool
store_syncs_wait (struct store *st)
{
  gint64 until = g_get_monotonic_time () + SYNCS_WAIT_MS * 1000;
  uint64_t before;
  bool ok = true;

  g_mutex_lock (&st->sync_lock);
  before = st->sync_next;
  while (ok && older_unlocked (st, before))
    ok = g_cond_wait_until (&st->sync_cond, &st->sync_lock, until) ||
         !older_unlocked (st, before);
  g_mutex_unlock (&st->sync_lock);
  return ok;
}

int
store_fdatasync (struct store *st)
{
  uint64_t t = store_sync_begin (st);
  int r = fdatasync (st->fd) < 0 ? -errno : 0;

  store_sync_end (st, t, r);
  return r;
}
