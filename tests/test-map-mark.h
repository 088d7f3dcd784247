/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Mark dirty bits on a server's maps and wait until they are saved, as a
 * write's marks are before it is acknowledged (rmr-storaged/map.c).
 */
#ifndef RMR_TEST_MAP_MARK_H
#define RMR_TEST_MAP_MARK_H

#include <glib.h>

#include "internal.h"
#include "util.h"

struct map_mark_wait {
  struct map_waiter w;
  GMutex lock;
  GCond cond;
  bool done;
  int err;
};

static inline void
map_mark_saved (struct map_waiter *w, int err)
{
  struct map_mark_wait *f = container_of (w, struct map_mark_wait, w);

  g_mutex_lock (&f->lock);
  f->done = true;
  f->err = err;
  g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);
}

/* Mark chunks [first, first + n) of every slot in mask, durably. */
static inline void
map_mark (struct srv_maps *maps, uint32_t mask, uint64_t first, uint64_t n)
{
  struct map_mark_wait f = {.w.done = map_mark_saved};
  int r;

  g_mutex_init (&f.lock);
  g_cond_init (&f.cond);
  r = maps_mark (maps, mask, first, n, &f.w);
  g_assert_cmpint (r, >=, 0);
  if (r == 1) {
    g_mutex_lock (&f.lock);
    while (!f.done)
      g_cond_wait (&f.cond, &f.lock);
    g_mutex_unlock (&f.lock);
    g_assert_cmpint (f.err, ==, 0);
  }
  g_mutex_clear (&f.lock);
  g_cond_clear (&f.cond);
}

#endif
