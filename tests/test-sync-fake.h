/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fake sync pool of the resync's unit tests (test-sync-watch*.c):
 * rmr-storaged/sync.c with the real map.c and store layer against fake
 * peers.  The sync pool's calls (rmr_sync_*) are answered here by peers
 * whose dirty maps are a real srv_maps on their own store and whose data
 * is a buffer, and hooks let a test act at the exact point of an
 * interleaving ("a write the member missed lands right after its chunk
 * was fetched").
 *
 * Member R (slot 0, member 1) resyncs from peer P (slot 1, member 2), and
 * at RF=3 also from Q (slot 2, member 3), which the sync pool tries first.
 */
#ifndef RMR_TEST_SYNC_FAKE_H
#define RMR_TEST_SYNC_FAKE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "internal.h"
#include "test-tmp.h"
#include "util.h"

#define MiB (1024 * 1024)
#define MAPPED (4 * MiB)
#define CS (64 * 1024)
#define R_SLOT 0
#define P_SLOT 1
#define Q_SLOT 2

struct node {
  struct tmp tmp;
  struct store *st;
  struct srv_maps *maps;
};

extern struct node R, P, Q;
extern uint8_t *pdata, *qdata; /* P's and Q's data areas */
extern struct srv_pool fake_pool;

/* The sync pool's peers, in the order it tries them: P alone (RF=2), or
 * Q first, then P (RF=3); peer index i leads to node via[i] (i unless a
 * test re-points it: its session now leads to another node, rmr.h).
 */
extern unsigned npeer;
extern struct node *peer[2];
extern uint8_t *peer_data[2];
extern uint32_t peer_member[2];
extern unsigned peer_slot[2];
extern unsigned via[2];

/* Test hooks, called by the fake peer (under hook_lock). */
extern GMutex hook_lock;
extern void (*after_read) (uint64_t chunk);
extern void (*before_read) (void);
/* The next fail_flushes flushes of R's store fail with EIO; after each
 * of the next fail_elsewhere writes to R's store, another sync of it
 * fails (a client's flush, the map flusher: store_flush_failed); after
 * the next fail_late writes, another sync of it begins, and fails only
 * after the resync's own flush returned.
 */
extern atomic_uint fail_flushes, failed_flushes, fail_elsewhere, fail_late;
extern unsigned reads, watches;
/* Peers (by index) that are unreachable: no watch, no read. */
extern unsigned away;
/* The peer's "a write to that range is in flight here; try again": the
 * next `refusals` reads are refused; the first waits for refusal_go
 * (under refuse_lock, refuse_cond), with refusing set meanwhile.
 */
extern GMutex refuse_lock;
extern GCond refuse_cond;
extern unsigned refusals;
extern bool refusing, refusal_go;
/* The reconcile's take: every chunk is quiet on R but `unquiet`. */
extern uint64_t unquiet;

struct done_flag {
  struct map_waiter w;
  struct sync_waiter sw;
  GMutex lock;
  GCond cond;
  bool done;
  int err;
};

void flag_init (struct done_flag *f);
void flag_set (struct done_flag *f, int err);
int flag_wait (struct done_flag *f);
void map_done (struct map_waiter *w, int err);
void gate_done (struct sync_waiter *w, int err);
/* Mark chunk c of slot on node n, durably. */
void mark (struct node *n, unsigned slot, uint64_t c);
void fill (uint8_t *p, uint64_t c, uint8_t v);
/* R's byte at the start of chunk c. */
uint8_t r_byte (uint64_t c);
/* Wait until R's own bits are gone and its sync has nothing in hand. */
/* Gate an IO on s and wait until it may go: 0, or the error it got. */
int gate_wait (struct srv_sync *s, struct done_flag *f, uint64_t offset,
               uint32_t len, bool write);
bool wait_clean (struct srv_sync *s, unsigned secs);
struct srv_sync *start_paced (bool stopped, uint64_t rate);
/* The same with parallel workers. */
struct srv_sync *start_parallel (bool stopped, uint64_t rate,
                                 unsigned parallel);
struct srv_sync *start (bool stopped);
void setup_rf (unsigned rf);
void setup (void);
void teardown (void);

#endif
