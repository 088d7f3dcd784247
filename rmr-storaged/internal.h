/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rmr-storaged internals: one section per file (the store layer's in
 * store.h).
 */
#ifndef RMR_STORAGED_INTERNAL_H
#define RMR_STORAGED_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "rmr/rmr.h"
#include "md.h"
#include "metrics.h"
#include "proto.h"
#include "store.h"
#include "transport.h"

/* log.c ------------------------------------------------------------------ */

/* The daemon logs through GLib's structured log with domain "rmr-storaged"
 * (g_message, g_warning, g_info, g_debug); log.c installs the writer that
 * prints "LEVEL: message" lines to stderr filtered by --log-level.
 */
enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
void log_init (enum log_level level);
int log_parse_level (const char *s, enum log_level *level);

/* pool.c, pool-io.c ------------------------------------------------------- */

/* A server pool [rmr_srv_pool]: this node's membership in one pool, with
 * its store and the client sessions joined to it.  Pools are refcounted:
 * the registry holds one reference, every lookup returns another
 * (pool_put drops it).
 */
struct srv_psess;

/* What this node knows of a pool's identity, to check a replacement
 * against (replace.c): from the store that last held it here.
 */
struct replace_known {
  bool known;
  uint64_t mapped_size; /* bytes */
  uint32_t chunk_size;  /* 0: never created */
  uint64_t generation;
  char from[320]; /* where it was learnt, for messages */
};

/* What metrics.c shows of a pool's IO (relaxed atomics, no lock): client
 * requests on this member, and what its resync fetched.
 */
enum srv_op { SRV_OP_READ, SRV_OP_WRITE, SRV_OP_FLUSH, SRV_NOPS };
struct srv_metrics {
  atomic_uint_fast64_t reads, writes; /* writes: also trims and zeroes */
  atomic_uint_fast64_t read_bytes, write_bytes;
  atomic_uint_fast64_t errors;
  atomic_int inflight;
  struct metrics_hist latency[SRV_NOPS];
  atomic_uint_fast64_t resync_chunks, resync_bytes, resync_failures;
  atomic_uint_fast64_t resync_zero_chunks;
};

struct srv_pool {
  char name[RMR_POOL_NAME_MAX + 1];
  uint32_t group_id;
  uint32_t member_id;
  uint32_t cfg_chunk_size; /* 0: whatever the client asks */
  atomic_int refs;

  GMutex lock; /* protects everything below */
  GCond idle;  /* inflight reached 0 */
  enum rmr_srv_pool_state state;
  struct store *store;   /* NULL in state empty */
  GPtrArray *sessions;   /* struct srv_psess * */
  uint64_t generation;   /* in force (persisted) */
  unsigned inflight;     /* IOs submitted to the store */
  unsigned idle_waiters; /* threads waiting on idle */
  uint64_t reads, writes;
  struct srv_maps *maps;     /* once the chunk size is known */
  int my_slot;               /* this member's slot, -1 if none yet */
  struct srv_sync *sync;     /* with maps, once we have a slot */
  struct srv_psess *enabler; /* joined, pool enable pending */
  struct io_ctx *wlist;      /* client writes admitted, not completed */
  /* Bumped when a client session joins or goes: IO admitted under an
   * older value is from a session the client gave up on, and must not
   * reach the store if it is still parked (sess.c submit_io).
   */
  atomic_uint sess_epoch;
  /* Client IOs admitted (pool_io_begin): the resync's pace watches it. */
  atomic_uint_fast64_t client_ios;
  bool write_failed; /* since the last enable: no resync source */
  /* store_flush_errors at the last enable: a sync of the store failed
   * since (a client's flush, the map flusher, the resync's flush), so
   * writes acknowledged here may be gone: no resync source either.
   */
  uint64_t flush_errors_seen;
  struct rmr_pool *peers;    /* the sync pool: a session per peer */
  unsigned sync_parallel;    /* chunks fetched at once */
  uint64_t sync_rate;        /* bytes/s, 0: unlimited */
  uint64_t sync_min_rate;    /* bytes/s while clients do IO, 0: no slowing */
  bool sync_manual;          /* background sync waits for sync start */
  struct srv_verify *verify; /* the last online verify, or NULL */
  /* The pool's identity from the store last removed (replace.c). */
  struct replace_known known;
  /* The admin guide leaves the server pool (rmr-server) and its sync pool
   * (rmr-client) apart: the pool is gone once both left (pool.c).  Under
   * pool.c's registry lock.
   */
  bool server_left, sync_left;
  unsigned al_shift;   /* recent-write record: extent size */
  unsigned al_extents; /* and how many extents it holds */
  /* Test-only fault injection (--enable-fault-injection): the next
   * fault_count IOs of kind fault_op fail with fault_errno.
   */
  atomic_int fault_op;    /* enum fault_op */
  atomic_int fault_count; /* -1: every one */
  atomic_int fault_errno;
  struct srv_metrics m;
};

enum fault_op { FAULT_OFF, FAULT_READ, FAULT_WRITE, FAULT_ANY };
extern bool g_fault_injection;
/* Does this IO (store op) hit an injected fault?  Its errno, or 0. */
int pool_fault_hit (struct srv_pool *p, enum store_op op);

/* What an admitted IO needs; valid until pool_io_end. */
struct io_ctx {
  struct store *st;
  struct srv_maps *maps;
  struct srv_al *al;
  struct srv_sync *sync;
  int my_slot;
  /* A client write in flight, on the pool's list (p->lock); wmask: the
   * member slots that miss it (its dirty_mask).
   */
  uint64_t wstart, wend;
  uint32_t wmask;
  struct io_ctx *wprev, *wnext;
  bool wlinked;
  bool client;     /* from a client session (not a sync session) */
  unsigned epoch;  /* p->sess_epoch at admission */
  unsigned al_era; /* al_era (al) at admission */
  /* Its resync gate waiter's parked flag (writes of wlist), or NULL. */
  const atomic_bool *parked;
};

/* A client's session in a pool [rmr_srv_pool_sess]. */
struct srv_psess {
  struct srv_pool *pool;
  struct srv_conn *conn;
  char sessname[RMR_SESS_NAME_MAX + 1];
  char peer[300];
  uint8_t mode;
  bool sync;
  bool enabled;
  uint64_t generation; /* of its last enable (under the pool lock) */
  /* What a client session was told by its last AL_GET (or saw at its
   * join): its enable forgets only failures up to then (pool lock).
   */
  uint64_t flush_errors_mark;
  unsigned suspicions_mark;
};

/* join_pool: a new pool in state empty.  -EEXIST etc. with a message. */
int pool_create (const char *name, uint32_t member_id, uint32_t chunk_size);
/* rmr-server leave_pool: only a pool without store and sessions (the
 * admin guide's deletion rule 2).  Its sync pool stays until it left too.
 */
int pool_delete (const char *name);
/* rmr-client leave_pool of the sync pool: only without sync sessions
 * (deletion rule 1).  -ENOENT, -EBUSY with a message.
 */
int pool_sync_leave (const char *name);
/* rmr-client join_pool sync=y: the sync half is back. */
void pool_sync_join (struct srv_pool *p);
/* Lookups of the server half (pool_find, pool_find_gid) and of the sync
 * half (pool_find_sync), with a reference; NULL if that half left.
 */
struct srv_pool *pool_find (const char *name);
struct srv_pool *pool_find_sync (const char *name);
struct srv_pool *pool_find_gid (uint32_t group_id);
void pool_put (struct srv_pool *p);
/* The names of every server pool / sync pool (g_strdup'd), sorted. */
GPtrArray *pool_names (void);
GPtrArray *pool_sync_names (void);

/* Stores. */
int pool_attach_store (struct srv_pool *p, struct store *st);
/* remove_store (wipe false) or delete_store (wipe true): new IO is
 * refused at once, IO in flight completes, then the store is closed.
 */
int pool_remove_store (struct srv_pool *p, bool wipe);
/* The pool whose store is at path (canonicalised), or NULL. */
struct srv_pool *pool_find_store_path (const char *path);

/* A client session is told of the store's failures so far (its join,
 * an AL_GET): its enable forgets only those (pool lock held).
 */
void pool_mark_seen_unlocked (struct srv_pool *p, struct srv_psess *ps);

/* The client protocol, called by sess.c on a connection's receive
 * thread.  Each fills err with a one-line reason on failure and returns
 * -errno.
 */
/* generation: the client's (0: a client that has none yet, opening).
 * ps NULL: a probe (RMR_JOIN_REQ_F_PROBE): checked and answered, nothing
 * joins. */
int pool_sess_join (struct srv_pool *p, struct srv_psess *ps,
                    const struct rmr_join_req *req, uint64_t generation,
                    struct rmr_join_rep *rep, GString *err);
int pool_sess_enable (struct srv_psess *ps, const struct rmr_enable_req *req,
                      GString *err);
/* A session goes: graceful (LEAVE) or not (connection lost). */
/* quiesced: the client has no write in flight on any leg (it closes). */
void pool_sess_leave (struct srv_psess *ps, bool graceful, bool quiesced);

/* IO admission: checks state, generation and bounds, counts the IO in
 * flight and returns the store (0), or -errno with err filled.
 */
int pool_io_begin (struct srv_psess *ps, const struct rmr_hdr *hdr,
                   struct io_ctx *io, GString *err);
/* Admission of a map message (chunk units; allowed before the session is
 * enabled, for the hand-over).  Counts as IO in flight like the above.
 */
int pool_map_begin (struct srv_psess *ps, const struct rmr_hdr *hdr,
                    struct io_ctx *io, GString *err);
/* Is a client write to [off, off + len) in flight here that is not
 * waiting for a chunk fetch (it passed the resync gate, or has yet to
 * reach it)?  A fetch must not overwrite it (sync.c).
 */
bool pool_writes_overlap (struct srv_pool *p, uint64_t off, uint64_t len);
/* Whether [off, off + len) is quiet here: no client write to it in
 * flight here (but those parked at the gate, which wait for the resync),
 * and every write this member did there done on every leg (the
 * recent-write record's horizon).  Without a record (al_extents=0)
 * nothing can tell: false, always (the reconcile takes nothing then).
 */
bool pool_quiet (struct srv_pool *p, uint64_t off, uint64_t len);
/* A client write failed here: no resync reads are served until the
 * next pool enable (the client's hand-over).
 */
void pool_write_failed (struct srv_pool *p);
/* The IO admitted with io (NULL: a map message) is done. */
void pool_io_end (struct srv_pool *p, struct io_ctx *io, bool write);
/* Bits were added to this member's own slot: its resync looks now. */
void pool_sync_kick (struct srv_pool *p);
struct map_waiter;
struct srv_maps;
/* The online verify's own read of [off, off + len), admitted as a peer's
 * checksum request is (pool-io.c csum_admit_unlocked: 0, -ECANCELED,
 * -EINVAL, -EBUSY, -EAGAIN, -EOPNOTSUPP, err says why); counted in
 * flight, so a store removal waits for pool_local_end.
 */
int pool_local_begin (struct srv_pool *p, uint64_t gen, uint64_t off,
                      uint64_t len, struct store **st, GString *err);
void pool_local_end (struct srv_pool *p);
/* Mark chunk outdated for the member slots in `slots` in this member's
 * maps (the online verify), while the pool is normal in generation gen
 * and no client is joining; for this member's own slot only if the chunk
 * is quiet here (no write it did there may still be on its way to
 * another member: -EAGAIN) and dirty for nobody (-EBUSY).  Like
 * maps_mark: 0 saved, 1 w is called once saved, or -errno (err set);
 * unless -errno, counted in flight until pool_local_end.
 */
int pool_mark_outdated (struct srv_pool *p, uint64_t gen, uint64_t chunk,
                        uint32_t slots, struct map_waiter *w, GString *err);
/* A peer's resync watches chunks [first, first + n) of slot here (the
 * map-get with the watch flag; maps is the session's): under the pool's
 * lock, so that a client write that slot misses is either in flight now,
 * and the watch of each chunk it touches begins flagged (its bit may be
 * set already while the member fetched from has not the write yet), or
 * marks after the watch began (maps_mark flags it).  A write the slot's
 * member gets too flags nothing: it is not behind for it (a whole-chunk
 * write that claims a chunk on it is one).  *behind gets the other
 * slots that are behind there, by the maps (only where this member is
 * current itself) or by a client write in flight that misses them: such a member must not serve the chunk to the
 * watcher (it may not know; rmr.h, rmr_sync_watch).  0 or -errno
 * (maps_watch).
 */
int pool_watch (struct srv_pool *p, struct srv_maps *maps, unsigned slot,
                uint64_t first, uint64_t n, uint32_t *behind);
/* The reconcile's take of bits for our own slot (sync.c): the chunks of
 * bits (n from first) that are not quiet here are dropped from bits (a
 * later reconcile takes them), the rest are ORed into slot's map, at
 * once as far as a write's admission is concerned.  Without a record
 * (al_extents=0) none is quiet, none taken.
 */
void pool_take_quiet (struct srv_pool *p, struct srv_maps *maps, unsigned slot,
                      uint64_t first, uint64_t n, uint8_t *bits);

const char *pool_state_name (enum rmr_srv_pool_state s);
void pool_shutdown_all (void);

/* al.c ------------------------------------------------------------------- */

/* The recent-write record (activity log) of a store: the extents that
 * may differ between legs after a crash (DESIGN 6).  Saved by the map
 * flusher (map.c) before the writes that need it are submitted.
 */
#define AL_MAX_EXTENTS 1000 /* what one 4 KiB record holds */
#define AL_DEFAULT_EXTENTS 256
#define AL_DEFAULT_SHIFT 22 /* 4 MiB extents: a 1 GiB window */

struct srv_al;

/* What a member reports to an assemble or a hand-over. */
struct al_info {
  bool clean;      /* nothing it wrote can be lost: a clean
                    * stop, a kill without a reboot, or new */
  bool lost;       /* the record could not be read */
  unsigned shift;  /* extent size of extents */
  uint64_t writes; /* writes admitted (a tie-breaker) */
  GArray *extents; /* uint32_t, sorted; caller frees */
};

int al_open (struct store *st, unsigned shift, unsigned capacity,
             struct srv_al **out);
void al_close (struct srv_al *al);
/* A write waiting for room in the record. */
struct al_waiter {
  void (*resume) (struct al_waiter *w);
  struct al_waiter *next;
};

/* A write of [off, off + len) (data-area bytes) is about to be
 * submitted: 0 with its extents pinned (*need_save: the record changed
 * and must be saved first), or 1 when every slot is pinned by other
 * writes: w waits, and is returned by the al_end that makes room (the
 * caller of al_end resumes it).  al_end unpins when the write completed
 * and returns the waiters to resume (a list through next), or NULL.
 */
/* wseq and horizon are the write's (hdr.wseq, hdr.horizon): an extent
 * leaves the record only once every write to it completed on every leg.
 * era: al_era () when the write was admitted; a write of an older era
 * (its client has left, its numbering is not the current client's) is
 * refused (-ECANCELED), and so is a flush's horizon (ignored).
 */
int al_begin (struct srv_al *al, uint64_t off, uint32_t len, uint32_t wseq,
              uint32_t horizon, unsigned era, bool *need_save,
              struct al_waiter *w);
struct al_waiter *al_end (struct srv_al *al, uint64_t off, uint32_t len);
/* Flusher: encode the record into buf if it changed; *sync_data_first
 * when an extent was evicted (its writes must be durable before).
 */
bool al_prepare_save (struct srv_al *al, uint8_t *buf, bool *sync_data_first);
uint64_t al_copy_offset (struct srv_al *al, const uint8_t *buf);
/* The copy in buf (from al_prepare_save) is durable. */
void al_saved (struct srv_al *al, const uint8_t *buf);
/* Clean stop: data durable, then a record with nothing in flight. */
int al_mark_clean (struct srv_al *al);
void al_info (struct srv_al *al, struct al_info *info);
/* A pool enable took the record into account, as the enabling client
 * read it (AL_GET) when al_suspicions () was seen: a flush that failed
 * since keeps the record suspect.
 */
void al_consumed (struct srv_al *al, unsigned seen);
/* Failed flushes so far (al_suspect). */
unsigned al_suspicions (struct srv_al *al);
/* A flush failed: the extents are suspect here (saved with the next
 * save; maps_sync makes it durable).
 */
void al_suspect (struct srv_al *al);
/* No write is in flight on any leg: every extent may leave. */
void al_settle (struct srv_al *al);
unsigned al_count (struct srv_al *al);
/* Is every write this member did to [off, off + len) done here and on
 * every leg (no write in flight here, and the client's horizon past the
 * newest one, or settled by an enable)?  An extent not in the record is.
 */
bool al_settled (struct srv_al *al, uint64_t off, uint64_t len);
/* A flush's horizon (proto.h): every write older is done on every leg;
 * era as for al_begin.
 */
void al_horizon (struct srv_al *al, uint32_t horizon, unsigned era);
/* The client numbering the record's horizons follows: it changes with
 * every settle (an enable, a clean leave).  Read at admission, under the
 * pool lock that al_consumed and al_settle are called under.
 */
unsigned al_era (struct srv_al *al);

/* map.c ------------------------------------------------------------------ */

/* The dirty maps of a server pool (DESIGN 5): one dmap per member slot,
 * persisted in the store's map region.  Setting bits is durable before
 * the waiter is told (group commit by one flusher thread per pool);
 * clearing is lazy (a stale set bit costs an extra resync, never data).
 */
struct map_waiter {
  uint64_t need; /* change generation that must be saved */
  void (*done) (struct map_waiter *w, int err);
  struct map_waiter *next;
};

struct srv_maps;

/* Maps for a pool whose chunk size is known: loaded from the store (or
 * zeroed on it when fresh is true), flusher started.  -errno + message.
 */
int maps_open (struct store *st, bool fresh, unsigned al_shift,
               unsigned al_extents, struct srv_maps **out);
/* The store's recent-write record, saved with the maps. */
struct srv_al *maps_al (struct srv_maps *m);
/* Queue w for the next save (the record changed): like maps_mark. */
int maps_save_wait (struct srv_maps *m, struct map_waiter *w);
/* Clean stop: the maps saved, the data durable, the record clean. */
int maps_mark_clean (struct srv_maps *m);
/* Save what is unsaved, stop the flusher, free.  NULL allowed. */
void maps_close (struct srv_maps *m);

uint64_t maps_nchunks (const struct srv_maps *m);
unsigned maps_chunk_shift (const struct srv_maps *m);

/* Mark [first, first + n) dirty for every slot in mask.  Returns 0 when
 * that is already durable (w not used), 1 when w->done will be called
 * (from the flusher thread) once it is, or -errno.
 */
int maps_mark (struct srv_maps *m, uint32_t mask, uint64_t first, uint64_t n,
               struct map_waiter *w);
/* OR a bitmap of n chunks from first into slot's map; like maps_mark (w
 * NULL: saved with the next save, no waiting).
 */
int maps_or_bits (struct srv_maps *m, unsigned slot, uint64_t first, uint64_t n,
                  const uint8_t *bits, struct map_waiter *w);
/* Clear [first, first + n) for every slot in mask (saved lazily). */
void maps_clear (struct srv_maps *m, uint32_t mask, uint64_t first, uint64_t n);
/* Watched clears (map.c's opening comment): start watching [first,
 * first + n) of slot (0, or -EINVAL for a bad range), flagged from the
 * start where flagged (NULL, or ceil (n / 8) bytes) has the chunk's bit,
 * and OR into *behind (if not NULL) every other slot with a bit there;
 * clear those still watched and unflagged, end the watches, and set in
 * kept (ceil (n / 8) bytes, zeroed first) the chunks whose bit stays.
 */
int maps_watch (struct srv_maps *m, unsigned slot, uint64_t first, uint64_t n,
                const uint8_t *flagged, uint32_t *behind);
void maps_clear_watched (struct srv_maps *m, unsigned slot, uint64_t first,
                         uint64_t n, uint8_t *kept);
void maps_get_bits (struct srv_maps *m, unsigned slot, uint64_t first,
                    uint64_t n, uint8_t *bits);
bool maps_test (struct srv_maps *m, unsigned slot, uint64_t chunk);
bool maps_any (struct srv_maps *m, unsigned slot, uint64_t first, uint64_t n);
uint64_t maps_count (struct srv_maps *m, unsigned slot);
/* The same without the lock (may lag a change in progress). */
uint64_t maps_count_fast (struct srv_maps *m, unsigned slot);
/* The next dirty chunk of slot at or after from (DMAP_NONE: none). */
uint64_t maps_next (struct srv_maps *m, unsigned slot, uint64_t from);
/* "member 43: [12 28 ...] 30/800 dirty" per used slot (members[]). */
void maps_summary (struct srv_maps *m, const struct rmr_member_md *members,
                   GString *out);
/* Every dirty chunk number of every used slot. */
void maps_dump (struct srv_maps *m, const struct rmr_member_md *members,
                GString *out);
/* Write every unsaved page now and wait for it (clean shutdown). */
int maps_sync (struct srv_maps *m);

/* sync.c ----------------------------------------------------------------- */

/* Resync of this member's dirty chunks from its peers (one hop). */
struct srv_sync;

/* A client IO waiting for the chunks it touches to be current here. */
struct sync_waiter {
  void (*go) (struct sync_waiter *w, int err);
  struct sync_waiter *next;
  uint64_t offset, first, last;
  uint32_t len;
  bool write;       /* a write (may claim whole chunks) */
  unsigned claimed; /* whole dirty chunks this write claimed */
  int err;
  atomic_bool parked; /* queued on a chunk being fetched (s->lock) */
};

/* The pace of the background resync (sync-pace.c). */
#define PACE_BUSY_US 200000 /* clients busy this long after their last IO */
/* sync_min_rate unless configured: bytes/s (bench-resync chose it). */
#define SYNC_MIN_RATE_DEFAULT (UINT64_C (16) << 20)
struct sync_pace {
  uint64_t rate;      /* bytes/s, 0: unlimited */
  uint64_t min_rate;  /* bytes/s while clients do IO, 0: never slow down */
  int64_t next;       /* token bucket: the next fetch may start, µs */
  uint64_t seen_ios;  /* the client IO count at the last fetch */
  int64_t busy_until; /* clients count as busy until then, µs */
};
void sync_pace_init (struct sync_pace *sp, uint64_t rate, uint64_t min_rate,
                     uint64_t client_ios);
/* Note the client IO count at now: true while clients count as busy. */
bool sync_pace_note (struct sync_pace *sp, uint64_t client_ios, int64_t now);
/* The rate in force at now (0: unlimited). */
uint64_t sync_pace_rate (const struct sync_pace *sp, int64_t now);
/* A background fetch of bytes at now, the pool's client IO count being
 * client_ios: the µs to wait before it.
 */
int64_t sync_pace_take (struct sync_pace *sp, uint64_t bytes,
                        uint64_t client_ios, int64_t now);

/* The slot of member in the store's member table, or -1 (md_lock taken). */
int store_member_slot (struct store *st, uint32_t member);
/* The reconcile (sync-reconcile.c, lock of the sync not held): take into
 * slot's map of maps (n chunks) the bits of our slot that a current peer
 * holds, where quiet here.  Returns how many chunks were added; *missed:
 * a peer could not be asked.
 */
uint64_t sync_reconcile (struct srv_pool *pool, struct rmr_pool *peers,
                         struct store *st, struct srv_maps *maps, int slot,
                         uint64_t n, uint64_t gen, bool *missed);

int sync_open (struct srv_pool *p, struct store *st, struct srv_maps *maps,
               int slot, struct rmr_pool *peers, unsigned parallel,
               uint64_t rate_bps, uint64_t min_rate_bps, bool stopped,
               struct srv_sync **out);
/* Stop the workers; IOs still waiting, and any gated from now on, fail
 * with EIO; the object stays valid for IOs that still hold it.  Again
 * allowed; NULL allowed.
 */
void sync_stop (struct srv_sync *s);
/* sync_stop, then free it: no IO may hold it any more.  NULL allowed. */
void sync_close (struct srv_sync *s);
/* The pool turned normal (sync may run) or left it. */
void sync_set_normal (struct srv_sync *s, bool normal, uint64_t generation);
/* Whether the resync has anything in hand or to do (NULL: false). */
bool sync_active (struct srv_sync *s);
/* Client IO: 0 to go now, 1 when w->go will be called (0, or -errno). */
int sync_gate (struct srv_sync *s, struct sync_waiter *w, uint64_t offset,
               uint32_t len, bool write);
/* A write that went through the gate completed with res. */
void sync_io_done (struct srv_sync *s, struct sync_waiter *w, int res);
/* Work may have arrived (bits added to our own slot): wake the idle
 * workers, which otherwise sleep until a deadline.  NULL allowed.
 */
void sync_kick (struct srv_sync *s);
/* `sync start` / `sync stop` of the background sync. */
int sync_command (struct srv_sync *s, bool start);
void sync_set_rate (struct srv_sync *s, uint64_t rate_bps,
                    uint64_t min_rate_bps);
/* Progress lines ("state: ...", "done: N", ...); true when in sync. */
bool sync_status (struct srv_sync *s, GString *out);
/* The progress of the current run, for metrics.c. */
struct sync_progress {
  uint64_t done, total, left;
  uint64_t rate;     /* bytes/s of the run while it runs, else 0 */
  const char *state; /* idle, running, stopped, waiting */
};
void sync_progress (struct srv_sync *s, struct sync_progress *pr);
/* Is any chunk of the range stale here (a peer must not read it)? */
bool sync_dirty_here (struct srv_sync *s, uint64_t offset, uint32_t len);

/* replace.c -------------------------------------------------------------- */

/* Disk replacement (the file's opening comment has the invariants). */

/* The mapped_size (bytes) a replacement disk of pool gets: given (0: not
 * given) checked against k.  0 with *size set, or -EINVAL (a mismatch)
 * or -ENXIO (k not known) with err (one line naming mapped_size).  Pure.
 */
int replace_decide (const struct replace_known *k, const char *pool,
                    uint64_t given, uint64_t *size, GString *err);
/* May a session join (mode) a store with these superblock flags?  A
 * replacement refuses mode=create.  0, or -EINVAL with err.  Pure.
 */
int replace_join_check (uint32_t sb_flags, uint8_t mode, const char *pool,
                        uint32_t member_id, GString *err);
/* Is a store (its superblock's generation and flags) that a pool enable
 * (enable_mode, in enable_generation) of a session that joined with
 * join_mode gives a generation a member without the pool's data?  A
 * replacement, or a store that never held the pool enabled into one that
 * holds data (an assemble, a reconnect, which joins with mode=assemble,
 * or a live add: any generation after the create's 1); not at a create.
 * Pure.
 */
bool replace_joins_data (uint64_t generation, uint32_t sb_flags,
                         uint8_t enable_mode, uint8_t join_mode,
                         uint64_t enable_generation);
/* A store with RMR_SB_F_REPLACED that has its maps: every chunk saved
 * dirty for slot, then the flag cleared (md_lock not held).  0 (also when
 * the flag is not set) or -errno with a message.
 */
int replace_settle (struct store *st, struct srv_maps *m, int slot);

/* verify.c, verify-rule.c: online verify (verify.h) */
#include "verify.h"

/* role.c ----------------------------------------------------------------- */

/* Who may send what (issue 9, DESIGN 9): the pool's client and a peer's
 * sync session (struct srv_psess's sync flag).
 */
enum role { ROLE_CLIENT = 1, ROLE_SYNC = 2 };
/* May a session of role send hdr (a decoded request)?  If not, *why (when
 * why is not NULL) is a static one-line reason, else NULL.  Pure: no
 * state, no lock, no logging.
 */
bool role_allows (enum role role, const struct rmr_hdr *hdr, const char **why);

/* sess.c, sess-io.c ------------------------------------------------------ */

/* Connections from clients and peers [rmr_srv_sess] (sess.c) and the IO
 * path from admission to reply (sess-io.c).
 */
#define BATCH_MAX 64

/* The credits of one pool session of a connection, by group_id.  Kept
 * until the connection is freed (a session that left may still have
 * requests in flight; a JOIN again reuses it).
 */
struct srv_credit {
  uint32_t group_id;
  unsigned limit;    /* the JOIN's queue_depth */
  unsigned inflight; /* requests holding a credit */
};

struct srv_req {
  struct store_io io;
  struct map_waiter mw;  /* waiting for dirty bits to be saved */
  struct sync_waiter sw; /* waiting for stale chunks to resync */
  struct al_waiter aw;   /* waiting for room in the recent-write record */
  struct srv_conn *conn;
  struct srv_pool *pool; /* outlives the IO: see pool.c */
  struct io_ctx ctx;
  bool al_held; /* its extents are pinned in the recent-write record */
  int64_t t0;   /* admitted, monotonic µs (metrics) */
  struct rmr_hdr hdr;
  void *buf;
  size_t bufcap;
  struct srv_credit *credit; /* held while not on the free list */
  struct srv_req *next;
};

struct srv_conn {
  struct rmr_conn *conn;
  atomic_int refs;

  GMutex free_lock; /* protects everything down to waiters */
  GCond free_cond;  /* a request was released */
  struct srv_req *free_reqs;
  unsigned nfree;     /* requests on free_reqs */
  size_t free_bytes;  /* their buffers */
  unsigned free_max;  /* bound on nfree */
  size_t buf_bytes;   /* every request buffer, in flight or free */
  GPtrArray *credits; /* struct srv_credit *, limit and inflight */
  unsigned waiters;   /* the receive thread waits on free_cond */

  /* Receive thread only. */
  GPtrArray *psess;         /* struct srv_psess * joined here */
  struct srv_req *cur;      /* request whose payload is arriving */
  struct srv_credit *admit; /* the session of the message being received */
  bool violated;            /* protocol violation: ignore the rest */
  uint8_t ctlbuf[RMR_ERRMSG_MAX + RMR_JOIN_REQ_SIZE];
  /* Replies of IO completed on the receive thread during one receive
   * batch, sent together at its end (their requests kept until then).
   */
  struct rmr_msg pend[BATCH_MAX];
  struct srv_req *pend_req[BATCH_MAX];
  unsigned npend;
};

/* Limits of every listener and of the connections it hands over
 * (DESIGN 9): set before the first sess_listen ().
 */
#define SESS_DEFAULT_MAX_CONNECTIONS 256
struct sess_limits {
  unsigned max_connections; /* srv_conns at once; more are closed */
  unsigned max_handshakes;  /* rmr_listen_opts */
  uint64_t handshake_timeout_ms;
};
void sess_set_limits (const struct sess_limits *limits);
int sess_listen (const struct rmr_addr *addr);
void sess_stop_listeners (void);
/* sess.c, for sess-io.c.  Replies (status: 0 or -errno; a failed send
 * means the connection is going down, its receive thread tidies up).
 */
void sess_reply (struct srv_conn *c, const struct rmr_hdr *req, int status,
                 const void *payload, size_t len, uint32_t member_id);
/* A success reply whose header carries dirty_mask (a watch's reply:
 * the other members behind there, pool_watch).
 */
void sess_reply_mask (struct srv_conn *c, const struct rmr_hdr *req,
                      const void *payload, size_t len, uint32_t member_id,
                      uint32_t dirty_mask);
/* A read's success reply of zeroes without payload (RMR_HF_ZEROES). */
void sess_reply_zeroes (struct srv_conn *c, const struct rmr_hdr *req,
                        uint32_t member_id);
void sess_reply_error (struct srv_conn *c, const struct rmr_hdr *req,
                       int status, const char *msg, struct srv_psess *ps);
/* A request for the message being received (len: buffer bytes), or NULL
 * (ENOMEM); released by sess_req_put.
 */
struct srv_req *sess_req_get (struct srv_conn *c, size_t len);
void sess_req_put (struct srv_req *r);
/* Send the replies gathered during the receive batch. */
void sess_flush_replies (struct srv_conn *c);
/* Is this thread c's receive thread, in a receive batch? */
bool sess_on_receive_thread (const struct srv_conn *c);
/* sess-io.c: an admitted IO message (r: its request if its payload came
 * with it) and a map message.
 */
void sess_handle_io (struct srv_conn *c, const struct rmr_hdr *hdr,
                     struct srv_psess *ps, struct srv_req *r);
void sess_handle_map (struct srv_conn *c, const struct rmr_hdr *hdr,
                      struct srv_psess *ps, struct srv_req *r);

/* control.c -------------------------------------------------------------- */

int control_start (const char *path);
void control_stop (void);
/* The operations the config file and the control interface share. */
int control_join_pool (const char *pool, uint32_t member_id,
                       uint32_t chunk_size);
/* Resync settings (before the store is attached): parallel 0 keeps the
 * default.
 */
int control_sync_settings (const char *pool, unsigned parallel,
                           uint64_t rate_bps, uint64_t min_rate_bps,
                           bool manual);
/* The resync's rates, also of a resync running (a config reload). */
int control_sync_rate (const char *pool, uint64_t rate_bps,
                       uint64_t min_rate_bps);
/* A peer of the sync pool (sessname NULL: "POOL@ADDR"). */
/* Recent-write record settings (before the store is attached); extents
 * 0 turns the record off (measurements only).
 */
int control_al_settings (const char *pool, unsigned extents, unsigned shift);
int control_add_peer (const char *pool, const char *sessname, const char *addr,
                      bool check);
enum store_mode {
  STORE_MODE_CREATE,  /* create_store: format a disk without metadata */
  STORE_MODE_ATTACH,  /* a disk with this pool's metadata only (config) */
  STORE_MODE_ADD,     /* add_store mode=add: attach, or if the disk has no
                       * metadata at all, replace (the admin guide) */
  STORE_MODE_REPLACE, /* add_store mode=replace (replace.c) */
};
int control_add_store (const char *device, const char *pool,
                       uint64_t mapped_size, enum store_mode mode, bool force);
/* The chunks of a pool with a store but no maps yet, counted as its
 * map_summary counts them (p->lock and the store's md_lock held).
 */
uint64_t control_nchunks_without_maps_unlocked (struct srv_pool *p);

/* control-sync.c: handlers of the resync entries of control.c's table.
 * (struct ctl_kv is from common/ctl.h.)
 */
struct ctl_kv;
int ctl_sync_join_pool (void *o, char **args, const char *value,
                        const struct ctl_kv *kv, GString *out, GString *err);
int ctl_sync_add_clt (void *o, char **args, const char *value,
                      const struct ctl_kv *kv, GString *out, GString *err);
int ctl_sync_list_pools (void *o, char **args, GPtrArray *names);
int ctl_sync_leave_pool (void *o, char **args, const char *value,
                         const struct ctl_kv *kv, GString *out, GString *err);
int ctl_sync_add_sess (void *o, char **args, const char *value,
                       const struct ctl_kv *kv, GString *out, GString *err);
int ctl_sync_list_sessions (void *o, char **args, GPtrArray *names);
int ctl_sync_sess_state (void *o, char **args, GString *out, GString *err);
int ctl_sync_sess_member_id (void *o, char **args, GString *out, GString *err);
int ctl_sync_sess_path (void *o, char **args, GString *out, GString *err);
int ctl_sync_sess_bytes_sent (void *o, char **args, GString *out, GString *err);
int ctl_sync_sess_bytes_received (void *o, char **args, GString *out,
                                  GString *err);
int ctl_sync_sess_reads (void *o, char **args, GString *out, GString *err);
int ctl_sync_sess_last_error (void *o, char **args, GString *out, GString *err);
int ctl_sync_sess_transport (void *o, char **args, GString *out, GString *err);
int ctl_sync_del_sess (void *o, char **args, const char *value,
                       const struct ctl_kv *kv, GString *out, GString *err);
int ctl_sync_get (void *o, char **args, GString *out, GString *err);
int ctl_sync_set (void *o, char **args, const char *value,
                  const struct ctl_kv *kv, GString *out, GString *err);
int ctl_sync_rate_get (void *o, char **args, GString *out, GString *err);
int ctl_sync_rate_set (void *o, char **args, const char *value,
                       const struct ctl_kv *kv, GString *out, GString *err);
int ctl_verify_get (void *o, char **args, GString *out, GString *err);
int ctl_verify_set (void *o, char **args, const char *value,
                    const struct ctl_kv *kv, GString *out, GString *err);

/* metrics.c: every pool's and store's metrics in the text format (out);
 * the /metrics endpoint (--metrics, [storaged] metrics=) and
 * rmr-server/metrics of the control socket.
 */
void srv_metrics_render (void *opaque, GString *out);
int srv_metrics_start (const char *addr, struct metrics_creds *creds);
/* SIGHUP: serve with creds (owned) from now on; metrics_http_reload's
 * answer (0 also without --metrics).
 */
int srv_metrics_reload (struct metrics_creds *creds);
void srv_metrics_stop (void);

/* config.c --------------------------------------------------------------- */

struct config {
  GPtrArray *listen; /* char * addresses */
  char *control;
  char *pidfile;
  char *log_level;
  char *tls; /* the rest as written; main checks them */
  char *tls_psk;
  char *tls_username;
  char *max_connections;
  char *max_handshakes;
  char *handshake_timeout;
  char *metrics; /* tcp:ADDR:PORT of /metrics */
  char *metrics_tls_cert, *metrics_tls_key, *metrics_auth; /* files */
};
/* Load, check and apply a config file: every pool joined, every store
 * created or attached.  Nothing is applied unless the whole file is
 * valid.  Listen/control/pidfile values are returned in cfg for main.
 */
int config_load (const char *path, struct config *cfg);
int config_apply (const char *path);
void config_clear (struct config *cfg);
/* Reload (SIGHUP): the file read and checked again, whole; -EINVAL with
 * a one-line error naming the file, group and key, and nothing changed,
 * if it does not parse.  Otherwise pools new in the file are applied as
 * by config_apply (*added; *failed ones are undone and logged), and what
 * changed in running pools or [storaged] is logged, not applied.  Main's
 * thread only.
 */
int config_reload (const char *path, unsigned *added, unsigned *failed);

#endif /* RMR_STORAGED_INTERNAL_H */
