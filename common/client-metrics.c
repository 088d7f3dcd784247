/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A client pool's metrics (issue 13) in the text format (metrics.h): per
 * leg (labels pool, member) the requests, bytes, errors, requests in
 * flight, latency by op and state; per pool the generation.  The IO path
 * (client-io.c) counts with relaxed atomics; this file only reads them,
 * under legs_lock (a live leg removal moves the legs), as
 * rmr_pool_leg_info () does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client.h"

const char *const clt_op_name[CLT_NOPS] = {"read", "write", "flush"};

void
clt_pool_metrics (struct rmr_pool *pool, const char *name, struct prom *p)
{
  static const enum clt_leg_state states[] = {LEG_CREATED, LEG_NORMAL,
                                              LEG_FAILED, LEG_RECONNECTING};
  const char *const pl[] = {"pool", name, NULL};
  unsigned i, j;

  prom_gauge (p, "rmr_pool_generation",
              "Generation of the pool this client enabled", pl,
              (double) pool->generation);
  g_mutex_lock (&pool->legs_lock);
  for (i = 0; i < pool->nlegs; i++) {
    struct clt_leg *leg = &pool->legs[i];
    char member[16];
    const char *const l[] = {"pool", name, "member", member, NULL};
    int state = atomic_load (&leg->state);

    if (leg->member_id == RMR_MEMBER_NONE)
      snprintf (member, sizeof member, "none");
    else
      snprintf (member, sizeof member, "%" PRIu32, leg->member_id);
    prom_counter (p, "rmr_leg_reads_total", "Reads this leg served", l,
                  atomic_load (&leg->reads));
    prom_counter (p, "rmr_leg_writes_total",
                  "Writes, trims and zeroes this leg completed", l,
                  atomic_load (&leg->writes));
    prom_counter (p, "rmr_leg_read_bytes_total",
                  "Payload bytes of the reads this leg served", l,
                  atomic_load (&leg->read_bytes));
    prom_counter (p, "rmr_leg_written_bytes_total",
                  "Payload bytes of the writes this leg completed", l,
                  atomic_load (&leg->write_bytes));
    prom_counter (p, "rmr_leg_errors_total",
                  "Requests that failed on this leg (the leg failed)", l,
                  atomic_load (&leg->errors));
    prom_counter (p, "rmr_leg_failures_total",
                  "Times the leg turned failed (link down, IO error, "
                  "timeout, disabled)",
                  l, atomic_load (&leg->failures));
    prom_gauge (p, "rmr_leg_inflight_requests",
                "Requests in flight on this leg", l,
                atomic_load (&leg->inflight));
    for (j = 0; j < CLT_NOPS; j++) {
      const char *const lo[] = {"pool", name,           "member", member,
                                "op",   clt_op_name[j], NULL};
      struct metrics_hist_snap h;
      memset (&h, 0, sizeof h);
      metrics_hist_read (&leg->latency[j], &h);
      prom_histogram (p, "rmr_leg_request_duration_seconds",
                      "Latency of the requests this leg completed, by op "
                      "(read; write, trim and zero; flush)",
                      lo, &h);
    }
    for (j = 0; j < G_N_ELEMENTS (states); j++) {
      const char *const ls[] = {"pool", name,    "member",
                                member, "state", clt_leg_state_name (states[j]),
                                NULL};
      prom_gauge (p, "rmr_leg_state",
                  "1 for the leg's state (created, normal, failed, "
                  "reconnecting), 0 for the others",
                  ls, state == (int) states[j]);
    }
    prom_gauge (
      p, "rmr_leg_resync_left_chunks",
      "Chunks a leg added live still misses (0 once up to date)", l,
      atomic_load (&leg->catching_up) ? atomic_load (&leg->resync_left) : 0);
  }
  g_mutex_unlock (&pool->legs_lock);
}
