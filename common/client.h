/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internals of the RMR client (librmr), shared by client-sess.c (the
 * transport connections shared by pools, and the tag table) and
 * client-pool.c / client-io.c (pools, legs, the IO path).
 *
 * Objects (the kernel's names in brackets):
 *   struct clt_sess  [rmr_clt_sess]      one transport connection to one
 *                                        storage node, shared by every pool
 *                                        of the process, refcounted
 *   struct clt_leg   [rmr_clt_pool_sess] one pool's leg to one member
 *   struct rmr_pool  [rmr_clt_pool]      the pool
 *   struct clt_req                       one request of the caller, on its
 *                                        stack, with one clt_sub per leg
 *
 * A sub-request is found from its reply through the session's tag table:
 * tag = seq << 32 | slot.  Slots are taken by submitters and released
 * only by the session's receive thread (on the reply, or when the
 * connection goes down), so a buffer is never written after its owner
 * stopped waiting: a caller whose deadline passes shuts the connection
 * down and waits for the receive thread to fail every slot.
 */
#ifndef RMR_CLIENT_H
#define RMR_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "metrics.h"
#include "proto.h"
#include "rmr/rmr.h"
#include "transport.h"

#define CLT_NSLOTS 4096

enum clt_leg_state {
  LEG_CREATED,
  LEG_NORMAL,
  LEG_FAILED,
  LEG_RECONNECTING,
};
const char *clt_leg_state_name (enum clt_leg_state s);

struct clt_req;

/* Ops of the latency histograms: read; write, trim and zero; flush. */
enum clt_op { CLT_OP_READ, CLT_OP_WRITE, CLT_OP_FLUSH, CLT_NOPS };
extern const char *const clt_op_name[CLT_NOPS];

/* One leg's part of a request. */
struct clt_sub {
  struct clt_req *req;
  struct clt_leg *leg;
  struct clt_sess *sess; /* the leg's session when added */
  void *rbuf;            /* READ: destination; JOIN: reply buffer */
  uint32_t rlen;
  int status;       /* 0 or -errno, valid when done */
  bool any_len;     /* a reply of up to rlen bytes will do */
  bool may_zero;    /* READ: zeroes without payload will do (proto.h) */
  bool zeroed;      /* ...and that is what came: rbuf was zeroed */
  uint32_t got_len; /* the reply's payload length */
  uint32_t from;    /* the member that answered (RMR_MEMBER_NONE: none) */
  uint32_t rmask;   /* the reply's dirty_mask (a watch's: slots behind) */
  atomic_bool done;
  int64_t t_done; /* monotonic µs of the completion (metrics) */
  char errmsg[RMR_ERRMSG_MAX + 1];
  struct rmr_send snd; /* the request, queued on the session */
};

/* A request of the caller, on its stack.  pending counts the subs not
 * done and the subs' sends not finished (a queued send reads the
 * caller's header and payload until its done ()); the caller sleeps on
 * it with a futex (one wake-up per request, no lock), and a sub's
 * results are written before its decrement.
 */
struct clt_req {
  atomic_uint pending;
  struct clt_sub sub[RMR_MAX_MEMBERS];
};

struct clt_slot {
  struct clt_sub *sub; /* NULL: free */
  uint32_t seq;
  int next_free;
};

struct clt_sess {
  char key[300]; /* canonical address, "tcp:HOST:PORT" */
  struct rmr_addr addr;
  struct rmr_conn *conn;
  unsigned refs; /* legs using it; under g_sess_lock */

  GMutex lock; /* protects everything below */
  GCond cond;  /* a slot or a credit became free */
  unsigned waiters;
  bool down;
  char down_reason[600];
  struct clt_slot *slots; /* CLT_NSLOTS */
  int free_head;
  GPtrArray *legs; /* struct clt_leg * using this session */
};

struct clt_leg {
  struct rmr_pool *pool;
  struct clt_sess *sess;
  char sessname[RMR_SESS_NAME_MAX + 1];
  struct rmr_addr addr;
  char addr_name[300];
  uint32_t member_id;
  int slot; /* member slot in pool_md */
  uint32_t block_size;
  bool new_member;      /* joined with a fresh store (opening) */
  bool new_slot;        /* ...and its member was not in the table */
  bool missed_open;     /* its generation was older than the pool's at its
                         * last join: an open (assemble) went on without
                         * it, and nobody read its recent-write record */
  atomic_int state;     /* enum clt_leg_state */
  atomic_uint inflight; /* requests in flight (credits) */
  unsigned queue_depth;
  atomic_uint_fast64_t reads, writes;
  /* Metrics (metrics.h): payload bytes of completed reads and writes,
   * requests this leg failed, times it turned failed, latency by op
   * (enum clt_op).
   */
  atomic_uint_fast64_t read_bytes, write_bytes, errors, failures;
  struct metrics_hist latency[CLT_NOPS];
  atomic_bool disabled; /* by the admin: no reconnect */
  /* Sync pools: what the peer said of the pool at its last join. */
  uint64_t peer_size, peer_generation;
  uint32_t peer_chunk_size;
  /* Added to the open pool (client-legs.c), or handed chunks it missed
   * (a reconnect, an assemble): serves reads only when no other leg can
   * (or read-policy names it), until no member records a chunk dirty for
   * it.
   */
  atomic_bool catching_up;
  atomic_uint_fast64_t resync_left, resync_total;
  /* A sync pool's leg joined with sync 3: its reads may ask for zeroes
   * without payload (proto.h, RMR_JOIN_SYNC).
   */
  atomic_bool zeroes;
  /* Reconnection (under pool->reconn_lock). */
  unsigned backoff_ms;
  int64_t next_try; /* monotonic µs */
  char last_error[RMR_ERRMSG_MAX + 100];
};

struct rmr_pool {
  struct rmr_pool_config cfg;
  bool sync;  /* a sync pool (client-sync.c) */
  bool probe; /* joins are probes (client-probe.c) */
  uint32_t group_id;
  uint64_t size;
  uint32_t chunk_size;
  uint32_t block_size;
  uint64_t generation;
  unsigned nlegs;
  struct clt_leg legs[RMR_MAX_MEMBERS];
  atomic_uint rr;     /* round-robin cursor */
  atomic_bool fenced; /* another client took the pool over */
  /* Member slots that missed an acknowledged request since a normal
   * member last handed them their map (handover.c).
   */
  atomic_uint outdated;
  /* The departure barrier (client-io.c): for a slot in outdated, the
   * slots of the members that made every write it may hold durable (a
   * flush, once each write that was in flight when it left had
   * completed), or 0.  A member back alone from a power loss keeps its
   * record's chunks against members whose departure it made durable
   * (handover.c).  Under barrier_lock; dep_clears counts the clears of
   * outdated bits (a barrier that saw one go by records nothing).
   */
  GMutex barrier_lock;
  uint32_t dep_synced[RMR_MAX_MEMBERS];
  atomic_uint dep_tried; /* slots whose barrier ran (or runs) */
  atomic_uint dep_clears;
  /* Chunk ranges a write changed on some legs and not others with no
   * member left to record it (every map-add failed): the legs differ
   * there, so each leg handed over while one is normal resyncs them
   * (handover.c).  Emptied once every leg is normal.  Under pending_lock.
   */
  GMutex pending_lock;
  GArray *pending; /* struct clt_range, in chunks */

  GMutex ov_lock; /* protects ov_head, ov_waiters and the horizon fields */
  GCond ov_cond;
  struct clt_range *ov_head; /* writes in flight */
  unsigned ov_waiters;
  uint32_t wseq; /* the last write sequence number given */
  /* The idle horizon (clt_horizon_due): the last horizon sent, how many
   * requests carried one, that count at the last look, and whether that
   * look found the client idle (its next write kicks the thread).
   */
  uint32_t hz_sent;
  uint64_t hz_sends, hz_seen;
  bool hz_idle;

  /* Slots of the members deleted at this open (cfg.delete_members). */
  uint32_t deleted_slots;
  /* The pool_md this client enabled (slot table). */
  struct rmr_enable_req md;

  /* The IO gate: IO runs between clt_gate_enter and clt_gate_leave; a
   * hand-over freezes it (no request in flight) and thaws it.
   */
  atomic_uint active;
  atomic_bool frozen;
  GMutex gate_lock; /* protects waiting on gate_cond */
  GCond gate_cond;

  /* Failed legs come back through the reconnect thread. */
  GMutex reconn_lock; /* serialises reconnects and hand-overs */
  GMutex legs_lock;   /* protects legs[].sess for readers that
                       * are not IO (status) */
  GMutex thread_lock; /* protects stop, kick */
  GCond thread_cond;
  bool stop, kick;
  GThread *reconn_thread;
  /* The idle horizon's thread (client-horizon.c). */
  GMutex hz_lock; /* protects hz_stop, hz_kick */
  GCond hz_cond;
  bool hz_stop, hz_kick;
  GThread *hz_thread;
};

/* A write's byte range, on the writer's stack while it is in flight. */
struct clt_range {
  uint64_t start, end;
  uint32_t seq; /* write sequence number (hdr.wseq) */
  struct clt_range *next;
};

/* client-sess.c */
int clt_sess_get (const struct rmr_addr *addr, uint64_t timeout_ms,
                  struct clt_sess **out);
void clt_sess_ref (struct clt_sess *s);
void clt_sess_put (struct clt_sess *s);
void clt_sess_add_leg (struct clt_sess *s, struct clt_leg *leg);
void clt_sess_del_leg (struct clt_sess *s, struct clt_leg *leg);

/* Send a request for sub (its leg's session) with hdr (tag is filled in)
 * and payload.  Waits for a slot and a credit.  On failure the sub is
 * completed with the error (so the caller always waits for it).
 */
void clt_sess_submit (struct clt_sub *sub, struct rmr_hdr *hdr,
                      const struct iovec *iov, int iovcnt);

/* Requests. */
void clt_req_init (struct clt_req *req);
void clt_req_clear (struct clt_req *req);
/* Add a sub for leg (pending++). */
struct clt_sub *clt_req_add (struct clt_req *req, unsigned i,
                             struct clt_leg *leg);
/* Wait until every sub is done; past deadline (monotonic µs, 0 = none)
 * the sessions of the late subs are shut down (which completes them).
 */
void clt_req_wait (struct clt_req *req, int64_t deadline);
void clt_sub_complete (struct clt_sub *sub, int status, const char *msg);

int clt_threads_suspend (void);
int clt_threads_resume (void);

/* client-pool.c */
/* "CLIENTHOST@SERVERHOST:PORT" in the characters of a session name. */
void clt_default_sessname (const struct rmr_addr *addr, char *out, size_t n);
/* The deadline of a request sent now: the pool's timeout from now
 * (monotonic µs, as clt_req_wait takes it).
 */
int64_t clt_deadline (const struct rmr_pool *pool);
/* One request on one session for leg, waited for the pool's timeout
 * (control messages).  The reply's payload goes to rbuf: exactly rlen
 * bytes, or with got != NULL up to rlen and its length in *got.  On
 * failure the error (the server's message if it sent one) is set.  On
 * return hdr->member_id is the member that answered (RMR_MEMBER_NONE if
 * none did), and hdr->dirty_mask the reply's.  A read with RMR_HF_ZEROES
 * in hdr->flags takes zeroes without payload (rbuf is zeroed); on return
 * the flag says whether that is what came.
 */
int clt_leg_call (struct clt_leg *leg, struct clt_sess *s, struct rmr_hdr *hdr,
                  const void *payload, size_t plen, void *rbuf, uint32_t rlen,
                  uint32_t *got);
/* The same addressed to member `to` (a sync session's read, checksum and
 * map requests; RMR_MEMBER_NONE: any): a node that is another member
 * refuses it with ECANCELED before it acts (protocol.md).
 */
int clt_leg_call_to (struct clt_leg *leg, struct clt_sess *s, uint32_t to,
                     struct rmr_hdr *hdr, const void *payload, size_t plen,
                     void *rbuf, uint32_t rlen, uint32_t *got);
/* JOIN the pool on session s for leg; fills rep. */
int clt_leg_join (struct clt_leg *leg, struct clt_sess *s,
                  struct rmr_join_rep *rep);
/* Take a session for leg (its address) and join on it; on failure the
 * leg keeps no session.
 */
int clt_leg_join_new (struct clt_leg *leg, struct rmr_join_rep *rep);

/* client-assemble.c */
struct clt_plan {
  uint8_t *bits;              /* chunks that may differ (g_free) */
  int order[RMR_MAX_MEMBERS]; /* present slots, preferred source first */
  unsigned norder;
  uint32_t absent; /* slots of members that are not here */
  int source;      /* the leg the others follow */
  /* Per present slot, the chunks of its own record when it stopped
   * uncleanly (power loss, failed flush): it may have lost them (g_free;
   * NULL when clean).
   */
  uint8_t *unclean[RMR_MAX_MEMBERS];
};
void clt_plan_clear (struct clt_plan *plan);
/* A join's error that is the member's refusal (it answered), not a
 * member out of reach.
 */
bool clt_is_refusal (int r);
/* Join every leg, waiting for those not reachable yet (see the file). */
int clt_join_all (struct rmr_pool *pool, struct rmr_join_rep *rep,
                  unsigned *joined);
int clt_decide (struct rmr_pool *pool, const struct rmr_join_rep *rep,
                unsigned joined, struct rmr_enable_req *en);
int clt_al_get (struct clt_leg *leg, struct clt_sess *s, struct rmr_al_rep *al);
void clt_al_to_bits (const struct rmr_pool *pool, const struct rmr_al_rep *al,
                     uint8_t *bits);
/* MAP_ADD the chunks set in bits (nchunks of the pool) for slot. */
int clt_send_bits (struct rmr_pool *pool, struct clt_leg *leg,
                   struct clt_sess *s, int slot, const uint8_t *bits,
                   uint64_t *ndirty);
int clt_assemble_plan (struct rmr_pool *pool, const struct rmr_join_rep *rep,
                       unsigned joined, struct clt_plan *plan);
/* What each slot of the member table is at an assemble, for
 * clt_assemble_absent.
 */
struct clt_presence {
  bool present[RMR_MAX_MEMBERS];  /* here, with its store's data */
  bool newslot[RMR_MAX_MEMBERS];  /* being added: not a member yet */
  bool replaced[RMR_MAX_MEMBERS]; /* here, with a new store */
  bool stale[RMR_MAX_MEMBERS];    /* recorded stale by a member here */
};
/* The members an assemble may go on without (see the file). */
int clt_assemble_absent (const char *pool_name, const uint32_t *members,
                         const struct clt_presence *pr, unsigned min_legs,
                         bool force, uint32_t *absent);
/* Mark every chunk dirty for the new members (fresh stores) on the legs
 * in `on`.
 */
int clt_mark_new_members (struct rmr_pool *pool, unsigned joined, unsigned on);

/* client-legs.c */
/* What the pure decisions of live legs know of a leg. */
struct clt_leg_view {
  uint32_t member_id;
  const char *addr;
  bool uptodate; /* normal, not catching up, dirty for nobody */
};
/* May the node that answered rep join the open pool (members: its
 * table; legs: its nlegs legs; size: its mapped_size)?  0: a new member,
 * *slot the free slot it takes; 1: a member of the table coming back
 * (*slot its slot); -errno with the message otherwise.
 */
int clt_leg_add_verdict (const uint32_t members[RMR_MAX_MEMBERS],
                         const struct clt_leg_view *legs, unsigned nlegs,
                         uint64_t size, const struct rmr_join_rep *rep,
                         const char *addr, int *slot);
/* May leg i of nlegs go?  0, or -EBUSY (-ENOENT) with the message. */
int clt_leg_remove_verdict (const struct clt_leg_view *legs, unsigned nlegs,
                            unsigned min_legs, unsigned i);
/* Poll the legs that catch up (reconnect thread, reconn_lock held):
 * progress, and the end of their resync.  Returns whether any leg still
 * catches up (poll again soon).
 */
/* leg lacks n chunks (n > 0): it catches up until every member records
 * it clean (clt_legs_poll_unlocked).
 */
void clt_leg_catch_up (struct clt_leg *leg, uint64_t n);
bool clt_legs_poll_unlocked (struct rmr_pool *pool);
/* MAP_ADD every chunk for slot on leg (its session). */
int clt_mark_all (struct rmr_pool *pool, struct clt_leg *leg, int slot);

/* client-recover.c */
/* Stop IO (wait until no request is in flight) and let it go on. */
void clt_freeze (struct rmr_pool *pool);
void clt_thaw (struct rmr_pool *pool);
/* The hand-over of a leg on session s, IO frozen (client-recover.c):
 * what it missed, enable, normal.
 */
int clt_handover (struct rmr_pool *pool, struct clt_leg *leg,
                  struct clt_sess *s);
void clt_gate_enter (struct rmr_pool *pool);
void clt_gate_leave (struct rmr_pool *pool);
/* client-io.c: the idle horizon, at a look.  CLT_HZ_WAIT: requests went
 * out since the last look, or writes are in flight (the horizon will
 * move; look again soon); CLT_HZ_DUE: neither, and the members have not
 * been sent the horizon: send a flush, which carries it; CLT_HZ_IDLE:
 * nothing to send (or the pool is fenced: nothing may be sent).
 */
enum clt_hz { CLT_HZ_IDLE, CLT_HZ_WAIT, CLT_HZ_DUE };
enum clt_hz clt_horizon_due (struct rmr_pool *pool);
/* client-horizon.c: the thread that sends an idle client's horizon. */
int clt_horizon_start (struct rmr_pool *pool);
void clt_horizon_stop (struct rmr_pool *pool);
void clt_horizon_kick (struct rmr_pool *pool);
/* Slots of the members that miss writes now (legs not normal, members of
 * the pool without a leg).
 */
uint32_t clt_dirty_mask (struct rmr_pool *pool);
/* May the ranges no member recorded (pool->pending) be forgotten: has
 * every member of the table been handed them (a normal leg each)?
 */
bool clt_pending_may_clear (struct rmr_pool *pool);
/* A write (type, range) failed on the legs in failed_mask and was done
 * by those in ok_mask: record it on the latter before it may complete,
 * for the failed legs' slots and again for missing, the slots its dirty
 * mask already named.  Returns the legs (mask) that did both.
 */
/* client-io.c: the departure barrier.  Clear slots (mask) from
 * outdated, and what the barrier knew of them.
 */
void clt_outdated_clear (struct rmr_pool *pool, uint32_t mask);
/* The slots in outdated whose departure the member of slot made durable
 * (pool->dep_synced).
 */
uint32_t clt_dep_proven (struct rmr_pool *pool, int slot);

/* A range the legs may hold differently with nobody recording it (a
 * write that failed on every leg, or whose record failed): every leg
 * that comes back through a normal one resyncs it (handover.c).
 */
void clt_remember_range (struct rmr_pool *pool, uint64_t offset, uint64_t len);
unsigned clt_record_missed (struct rmr_pool *pool, unsigned ok_legs,
                            unsigned failed_legs, uint32_t missing,
                            uint64_t offset, uint64_t len);
/* The slots clt_record_missed records: the failed legs' (those with a
 * slot), and with them missing; 0 when no failed leg has a slot.
 */
uint32_t clt_missed_slots (struct rmr_pool *pool, unsigned failed_legs,
                           uint32_t missing);
/* A pool not joined yet with its legs set up from cfg (checked), or
 * NULL with the error set; freed with clt_pool_free ().
 */
struct rmr_pool *clt_pool_from_config (const struct rmr_pool_config *cfg);
/* A pool with its locks initialised (client-pool.c), and its release. */
struct rmr_pool *clt_pool_alloc (void);
void clt_pool_free (struct rmr_pool *pool);
/* Leave gracefully on leg's session (a leg not failed; no IO in flight). */
void clt_leg_leave (struct clt_leg *leg, enum rmr_leave_mode mode);
/* The same on session s (a reference held), whatever the leg's state. */
void clt_leg_leave_sess (struct clt_leg *leg, struct clt_sess *s,
                         enum rmr_leave_mode mode);
/* Drop a leg's session reference (the session lives on while shared). */
void clt_leg_release (struct clt_leg *leg);
/* Mark a leg failed (once), waking the reconnect thread. */
void clt_leg_fail (struct clt_leg *leg, const char *why);
/* One info line per change of a leg's state (DESIGN 3: every transition
 * is logged), naming the pool, the member, its address and why; never
 * per IO.  Through GLib's log, which the process directs (the daemon's
 * writer, the plugin's).
 */
void clt_leg_log_state (const struct clt_leg *leg, enum clt_leg_state from,
                        enum clt_leg_state to, const char *why);
int clt_recover_start (struct rmr_pool *pool);
void clt_recover_stop (struct rmr_pool *pool);
/* Reconnect leg i now (addr: a new address, or NULL). */
int clt_reconnect (struct rmr_pool *pool, unsigned i,
                   const struct rmr_addr *addr);
/* clt_reconnect of leg, with reconn_lock held. */
int clt_reconnect_leg_locked (struct rmr_pool *pool, struct clt_leg *leg,
                              const struct rmr_addr *addr);
/* One reconnect attempt of leg (reconn_lock held). */
int clt_reconnect_unlocked (struct rmr_pool *pool, struct clt_leg *leg);

/* client-metrics.c: the pool's metrics (labels pool=name, member), added
 * to p.  Safe while IO runs.
 */
void clt_pool_metrics (struct rmr_pool *pool, const char *name, struct prom *p);

#endif /* RMR_CLIENT_H */
