/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pace of the background resync (sync.c): a token bucket at the
 * pool's sync_rate, slowed to sync_min_rate while clients do IO on the
 * pool here (DRBD's c-min-rate, in spirit): a resync on an idle pool runs
 * at full speed, a busy one leaves the disks and the links to the
 * tenants and still moves at sync_min_rate.
 *
 * Client IO is seen through a counter the IO path bumps (pool_io_begin,
 * client sessions only: a peer's resync reads do not count).  The pace
 * compares it at every background fetch: a change since the last fetch
 * means clients are busy, and they count as busy for PACE_BUSY_US after
 * the last change seen, so a pause between two bursts does not let the
 * resync run at full speed into the next one.
 *
 * Only the pace is decided here; the wait itself is the caller's (pure,
 * so the unit test drives it with its own clock).  On-demand fetches (an
 * IO waits for the chunk) never go through the pace, and a background
 * fetch waiting for it goes at once when an IO starts waiting for its
 * chunk (sync.c, throttle).
 */
#include "internal.h"

void
sync_pace_init (struct sync_pace *sp, uint64_t rate, uint64_t min_rate,
                uint64_t client_ios)
{
  *sp = (struct sync_pace){
    .rate = rate, .min_rate = min_rate, .seen_ios = client_ios};
}

uint64_t
sync_pace_rate (const struct sync_pace *sp, int64_t now)
{
  if (!sp->min_rate || now >= sp->busy_until)
    return sp->rate;
  return sp->rate ? MIN (sp->rate, sp->min_rate) : sp->min_rate;
}

bool
sync_pace_note (struct sync_pace *sp, uint64_t client_ios, int64_t now)
{
  if (client_ios != sp->seen_ios) {
    sp->seen_ios = client_ios;
    sp->busy_until = now + PACE_BUSY_US;
  }
  return now < sp->busy_until;
}

int64_t
sync_pace_take (struct sync_pace *sp, uint64_t bytes, uint64_t client_ios,
                int64_t now)
{
  uint64_t rate;
  int64_t wait;

  sync_pace_note (sp, client_ios, now);
  rate = sync_pace_rate (sp, now);
  if (!rate) {
    sp->next = now; /* unlimited: nothing owed when a limit comes back */
    return 0;
  }
  if (sp->next < now)
    sp->next = now; /* no credit saved up while idle */
  wait = sp->next - now;
  sp->next += (int64_t) (bytes * 1000000 / rate);
  return wait;
}
