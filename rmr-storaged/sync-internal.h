/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The resync's state, shared by sync.c (the workers, the gate) and
 * sync-flush.c (the durable clear of synced chunks).  Private to those.
 */
#ifndef RMR_SYNC_INTERNAL_H
#define RMR_SYNC_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "internal.h"

#define QUIET_RETRY_MS 200 /* a chunk kept at its clear, not yet quiet */
#define FLUSH_MS 100
#define FLUSH_CHUNKS 256
#define MAX_WORKERS 16
#define RETRY_TRIES 12 /* an on-demand fetch refused: about 2 s */
#define RETRY_US 10000
#define RECONCILE_MS 2000       /* again soon: something was found */
#define RECONCILE_IDLE_MS 10000 /* again later: all peers agreed */
#define IDLE_MAX_MS 1000   /* an idle worker looks again at the latest then */
#define SLOW_STEP_MS 10000 /* a step of one chunk this long is logged */

enum chunk_state { CH_FETCHING, CH_WATCHING, CH_CLAIMED, CH_SYNCED };

/* The sync peers that watch a chunk (mask), the member that watched
 * through each (by): the clear goes to that member only (rmr.h), and the
 * slots some watcher holds behind there (behind): never a source.
 */
struct watchers {
  uint32_t mask;
  uint32_t by[RMR_MAX_MEMBERS];
  uint32_t behind;
};

struct chunk_ent {
  uint64_t chunk;
  enum chunk_state state;
  /* An IO waits for it: queued ahead of the background, and a refused
   * fetch is tried again (set under the lock, read by the worker
   * without it while it fetches).
   */
  atomic_bool on_demand;
  bool owned;              /* claimed: a write holds the claim */
  struct watchers watched; /* who watches it (rmr_sync_watch) */
  uint64_t ferr;           /* store_flush_errors before its data write */
  struct sync_waiter *head, *tail;
  /* What the status shows of it (sync_status): since when it is in
   * hand, and the step its worker is at (NULL: the state says it).
   */
  int64_t since;
  _Atomic (const char *) doing;
};

/* A synced chunk waiting for its clear. */
struct synced {
  uint64_t chunk;
  struct watchers watched;
  uint64_t ferr; /* store_flush_errors before its data write */
};

struct srv_sync {
  struct srv_pool *pool;
  struct store *st;
  struct srv_maps *maps;
  struct rmr_pool *peers;
  int slot;
  unsigned shift;
  uint64_t nchunks;
  uint64_t mapped_size;
  unsigned nworkers; /* at most (sync_parallel) */
  GThread *workers[MAX_WORKERS];

  GMutex lock;        /* protects everything below */
  GCond cond;         /* work for the workers; idle for stop */
  GHashTable *chunks; /* chunk -> struct chunk_ent */
  GQueue demand;      /* chunks to fetch first */
  GArray *synced;     /* struct synced: bits to clear */
  int64_t last_flush;
  bool flushing;
  bool stop;       /* workers end */
  bool normal;     /* pool normal: sync may run */
  bool bg_stopped; /* `sync stop` */
  uint64_t generation;
  uint64_t cursor; /* background: next chunk to look at */
  unsigned busy_workers;
  unsigned nstarted;    /* workers[0..nstarted) run; more once all are busy */
  atomic_uint ntable;   /* entries in chunks (lock-free reads) */
  int64_t reconcile_at; /* ask the peers for our bits (idle), µs */
  int64_t timer_at;     /* a worker waits until then; INT64_MAX: none */
  /* Progress of the current run. */
  uint64_t done, bytes, failures;
  uint64_t zero_chunks;  /* of done: came as zeroes, without payload */
  int64_t last_done;     /* the last chunk synced, µs */
  int64_t started;       /* first chunk of this run, µs */
  int64_t finished;      /* the last dirty bit cleared, µs */
  struct sync_pace pace; /* the background's rate (sync-pace.c) */
  uint64_t pace_gen;     /* bumped by sync_set_rate */
  char last_error[RMR_ERRMSG_MAX + 200];
  /* Chunks some watcher kept at their clear (or could not be asked):
   * chunk -> the time (µs) before which they are not looked at again.
   * Fetched again only where quiet here (sync-flush.c).
   */
  GHashTable *requiet;
};

static inline void
update_active_unlocked (struct srv_sync *s)
{
  atomic_store (&s->ntable, g_hash_table_size (s->chunks));
}

/* Make the synced chunks durable, then clear them at the peers that
 * watched them, and here unless one of those kept its bit (sync-flush.c).
 * Called by one worker at a time (flushing), lock held on entry and exit.
 */
void sync_flush_unlocked (struct srv_sync *s);
/* A chunk kept at its clear may be fetched again only where quiet here
 * (sync-flush.c).  Lock not held.  0: go on (not kept, or quiet now);
 * -EAGAIN (error set): not now, and not looked at again for a while.
 */
int sync_requiet_check (struct srv_sync *s, uint64_t c, uint64_t off,
                        uint32_t len);
/* Whether the background walk passes c by for now (lock held). */
bool sync_requiet_deferred_unlocked (struct srv_sync *s, uint64_t c,
                                     int64_t now);

#endif
