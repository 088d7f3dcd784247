/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's metrics (issue 13) in the Prometheus text format, for
 * GET /metrics (--metrics, [storaged] metrics=) and rmr-server/metrics of
 * the control socket (rmradm metrics).  Labels: pool, and member (the
 * member id, as map_summary names members).
 *
 * Per pool: state, generation, client requests on this member (counted
 * with relaxed atomics on the IO path, sess-io.c), latency by op, dirty
 * chunks per member slot (the dirty maps, read without their lock), the
 * members' data states (the superblock), the resync's progress and what
 * it fetched; per store: failed IOs.  Read under p->lock (and the
 * store's md_lock for the superblock, the sync's lock for its progress:
 * the order pool.c uses), never on the IO path.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static struct metrics_http *g_http;

static void
pool_metrics_unlocked (struct srv_pool *p, struct prom *pr)
{
  static const char *const op_name[SRV_NOPS] = {"read", "write", "flush"};
  static const char *const data_states[] = {"up-to-date", "outdated",
                                            "inconsistent"};
  char me[16];
  const char *const pl[] = {"pool", p->name, NULL};
  const char *const l[] = {"pool", p->name, "member", me, NULL};
  struct srv_metrics *m = &p->m;
  unsigned i, j;

  snprintf (me, sizeof me, "%" PRIu32, p->member_id);
  for (i = RMR_POOL_EMPTY; i <= RMR_POOL_NO_IO; i++) {
    const char *const ls[] = {
      "pool", p->name, "member", me, "state", pool_state_name (i), NULL};
    prom_gauge (pr, "rmr_pool_state",
                "1 for the server pool's state (empty, registered, created, "
                "normal, no_io), 0 for the others",
                ls, p->state == (enum rmr_srv_pool_state) i);
  }
  prom_gauge (pr, "rmr_pool_generation", "Pool generation in force here", pl,
              (double) p->generation);
  prom_counter (pr, "rmr_member_reads_total", "Client reads this member served",
                l, atomic_load (&m->reads));
  prom_counter (pr, "rmr_member_writes_total",
                "Client writes, trims and zeroes this member completed", l,
                atomic_load (&m->writes));
  prom_counter (pr, "rmr_member_read_bytes_total",
                "Payload bytes of the client reads this member served", l,
                atomic_load (&m->read_bytes));
  prom_counter (pr, "rmr_member_written_bytes_total",
                "Payload bytes of the client writes this member completed", l,
                atomic_load (&m->write_bytes));
  prom_counter (pr, "rmr_member_errors_total",
                "Client requests this member refused or failed", l,
                atomic_load (&m->errors));
  prom_gauge (pr, "rmr_member_inflight_requests",
              "Client requests in flight on this member", l,
              atomic_load (&m->inflight));
  for (j = 0; j < SRV_NOPS; j++) {
    const char *const lo[] = {"pool", p->name,    "member", me,
                              "op",   op_name[j], NULL};
    struct metrics_hist_snap h;
    memset (&h, 0, sizeof h);
    metrics_hist_read (&m->latency[j], &h);
    prom_histogram (pr, "rmr_member_request_duration_seconds",
                    "Latency of the client requests this member completed, "
                    "from admission to reply, by op (read; write, trim and "
                    "zero; flush)",
                    lo, &h);
  }

  if (p->store) {
    struct rmr_member_md mm[RMR_MAX_MEMBERS];
    const char *const lst[] = {"pool",   p->name,        "member", me,
                               "device", p->store->path, NULL};

    g_mutex_lock (&p->store->md_lock);
    memcpy (mm, p->store->sb.members, sizeof mm);
    g_mutex_unlock (&p->store->md_lock);
    for (i = 0; i < RMR_MAX_MEMBERS; i++) {
      char id[16];
      const char *const lm[] = {"pool", p->name, "member", id, NULL};
      const char *state;
      if (mm[i].member_id == RMR_MEMBER_NONE)
        continue;
      snprintf (id, sizeof id, "%" PRIu32, mm[i].member_id);
      if (p->maps)
        prom_gauge (pr, "rmr_dirty_chunks",
                    "Chunks this member's dirty map records for a member "
                    "(to resync on it)",
                    lm, maps_count_fast (p->maps, i));
      state = mm[i].state != RMR_MEMBER_DIRTY ? "up-to-date"
              : (int) i == p->my_slot         ? "inconsistent"
                                              : "outdated";
      for (j = 0; j < G_N_ELEMENTS (data_states); j++) {
        const char *const ls[] = {"pool",  p->name,        "member", id,
                                  "state", data_states[j], NULL};
        prom_gauge (pr, "rmr_member_data_state",
                    "1 for a member's data state as this member's superblock "
                    "records it (up-to-date, outdated, inconsistent)",
                    ls, strcmp (state, data_states[j]) == 0);
      }
    }
    if (p->maps)
      prom_gauge (pr, "rmr_pool_chunks", "Chunks of the device", pl,
                  maps_nchunks (p->maps));
    prom_counter (pr, "rmr_store_io_errors_total",
                  "IOs that failed on the store", lst,
                  atomic_load (&p->store->io_errors));
  }

  if (p->sync) {
    static const char *const sync_states[] = {"idle", "running", "stopped",
                                              "waiting"};
    struct sync_progress sp;
    sync_progress (p->sync, &sp);
    prom_gauge (pr, "rmr_resync_done_chunks",
                "Chunks the current resync run fetched", l, sp.done);
    prom_gauge (pr, "rmr_resync_total_chunks",
                "Chunks of the current resync run (done and left)", l,
                sp.total);
    prom_gauge (pr, "rmr_resync_rate_bytes_per_second",
                "Average rate of the running resync (0 when none runs)", l,
                sp.rate);
    for (j = 0; j < G_N_ELEMENTS (sync_states); j++) {
      const char *const ls[] = {"pool",  p->name,        "member", me,
                                "state", sync_states[j], NULL};
      prom_gauge (pr, "rmr_resync_state",
                  "1 for the resync's state (idle, running, stopped, "
                  "waiting for the pool), 0 for the others",
                  ls, strcmp (sp.state, sync_states[j]) == 0);
    }
  }
  prom_counter (pr, "rmr_resync_chunks_total",
                "Chunks this member fetched from its peers", l,
                atomic_load (&m->resync_chunks));
  prom_counter (pr, "rmr_resync_bytes_total",
                "Bytes of the chunks this member synced from its peers", l,
                atomic_load (&m->resync_bytes));
  prom_counter (pr, "rmr_resync_zero_chunks_total",
                "Chunks of those that came as zeroes, without their bytes", l,
                atomic_load (&m->resync_zero_chunks));
  prom_counter (pr, "rmr_resync_failures_total",
                "Chunk fetches of the resync that failed", l,
                atomic_load (&m->resync_failures));
}

void
srv_metrics_render (void *opaque, GString *out)
{
  g_autoptr (GPtrArray) names = pool_names ();
  struct prom *pr = prom_new ();
  unsigned i;

  for (i = 0; i < names->len; i++) {
    struct srv_pool *p = pool_find (g_ptr_array_index (names, i));
    if (!p)
      continue;
    g_mutex_lock (&p->lock);
    pool_metrics_unlocked (p, pr);
    g_mutex_unlock (&p->lock);
    pool_put (p);
  }
  prom_finish (pr, out);
}

int
srv_metrics_start (const char *addr, struct metrics_creds *creds)
{
  g_http =
    metrics_http_start ("metrics", addr, creds, srv_metrics_render, NULL);
  return g_http ? 0 : -errno;
}

int
srv_metrics_reload (struct metrics_creds *creds)
{
  if (!g_http) {
    metrics_creds_free (creds);
    return 0;
  }
  return metrics_http_reload (g_http, creds);
}

void
srv_metrics_stop (void)
{
  metrics_http_stop (g_http);
  g_http = NULL;
}
