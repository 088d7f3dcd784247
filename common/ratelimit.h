/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A few log lines a second of one kind of event, the rest counted.
 *
 * A bad disk, a client refused again and again, or an NBD client that
 * keeps writing to a pool with no leg left would otherwise log one line
 * per event: hundreds of thousands a minute, each costing the host CPU
 * and the journal space.  Each second, the first per_second events are
 * logged one by one; the others are counted, and the count is reported
 * in one line with the next event of a later second.
 */
#ifndef RMR_RATELIMIT_H
#define RMR_RATELIMIT_H

#include <stdbool.h>

#include <glib.h>

struct rmr_ratelimit {
  unsigned per_second; /* lines a second, set at initialisation */
  GMutex lock;         /* protects the three below */
  gint64 second;       /* the second counted (monotonic) */
  unsigned logged;     /* events logged in it */
  unsigned dropped;    /* events not logged in it */
};

/* Zero-filled otherwise: a GMutex in static storage needs no init. */
#define RMR_RATELIMIT_INIT(n)                                                  \
  {                                                                            \
    .per_second = (n)                                                          \
  }

/* Count one event at now_us (g_get_monotonic_time ()).  True if it is to
 * be logged.  *dropped gets how many events of an earlier second were
 * not logged (0 unless this is the first event of a new second), for the
 * caller to say in one line.
 */
bool rmr_ratelimit (struct rmr_ratelimit *rl, gint64 now_us, unsigned *dropped);

#endif /* RMR_RATELIMIT_H */
