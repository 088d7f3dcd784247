/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A few log lines a second of one kind of event (ratelimit.h). */
#include "ratelimit.h"

bool
rmr_ratelimit (struct rmr_ratelimit *rl, gint64 now_us, unsigned *dropped)
{
  gint64 sec = now_us / G_USEC_PER_SEC;
  bool log;

  *dropped = 0;
  g_mutex_lock (&rl->lock);
  if (sec != rl->second) {
    *dropped = rl->dropped;
    rl->second = sec;
    rl->logged = rl->dropped = 0;
  }
  log = rl->logged < rl->per_second;
  if (log)
    rl->logged++;
  else
    rl->dropped++;
  g_mutex_unlock (&rl->lock);
  return log;
}
