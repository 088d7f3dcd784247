/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* librmr: the public C API of the RMR client.
 *
 * A pool is a group of storage nodes (members, at most RMR_MAX_MEMBERS)
 * that mirror one device.  rmr_pool_open () connects one leg to every
 * member, joins the pool (creating it on fresh stores, or assembling it
 * from stores that already know it) and enables IO.  Every write then goes
 * straight to every leg (one network hop); a read is served by one leg.
 *
 * Errors: functions returning int return 0 on success and -errno on
 * failure; functions returning a pointer return NULL with errno set.  In
 * both cases rmr_get_error () gives a one-line message naming what was
 * wrong.  librmr never prints.
 *
 * Threads: every function may be called from any thread, concurrently,
 * except rmr_pool_close (), which the caller must not race with IO on the
 * same pool.  Connections to the same storage node are shared by all pools
 * of the process and multiplexed by group_id.
 */
#ifndef RMR_RMR_H
#define RMR_RMR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h> /* struct iovec */

#ifdef __cplusplus
extern "C" {
#endif

#define RMR_MAX_MEMBERS 8
#define RMR_POOL_NAME_MAX 63
#define RMR_SESS_NAME_MAX 63
#define RMR_MEMBER_ID_MAX 0xfffffffeU
#define RMR_MEMBER_NONE 0xffffffffU
#define RMR_DEFAULT_PORT 7700
#define RMR_DEFAULT_CHUNK_SIZE (128U * 1024)
#define RMR_MIN_CHUNK_SIZE 4096U
#define RMR_MAX_CHUNK_SIZE (64U * 1024 * 1024)
#define RMR_DEFAULT_QUEUE_DEPTH 128U
#define RMR_MAX_QUEUE_DEPTH 4096U
/* The largest single IO, and so the transport's largest payload. */
#define RMR_MAX_IO_SIZE (32U * 1024 * 1024)
#define RMR_DEFAULT_TIMEOUT_MS 30000U

/* Last error of the calling thread: a one-line message (NULL if none) and
 * its errno.  Valid until the next librmr call on the same thread.
 */
const char *rmr_get_error (void);
int rmr_get_errno (void);

enum rmr_transport_kind {
  RMR_TRANSPORT_TCP = 0,
  RMR_TRANSPORT_UCX = 1,
};

/* A storage node's address: "tcp:HOST:PORT", "tcp:[V6]:PORT". */
struct rmr_addr {
  enum rmr_transport_kind kind;
  char host[256]; /* no brackets around IPv6 addresses */
  uint16_t port;
};

enum rmr_pool_mode {
  RMR_MODE_AUTO = 0, /* create on fresh stores, else assemble */
  RMR_MODE_CREATE = 1,
  RMR_MODE_ASSEMBLE = 2,
};

enum rmr_read_policy {
  RMR_READ_ROUND_ROBIN = 0,
  RMR_READ_LEAST_BUSY = 1,
  RMR_READ_MEMBER = 2, /* always read_member while it is normal */
};

struct rmr_leg_config {
  struct rmr_addr addr;
  char sessname[RMR_SESS_NAME_MAX + 1]; /* "" = derived from the address */
  /* rmr_pool_leg_add only: with check_member, the node must answer as
   * member member_id (else -EINVAL, nothing changed).
   */
  int check_member;
  uint32_t member_id;
};

struct rmr_pool_config {
  char pool_name[RMR_POOL_NAME_MAX + 1];
  uint32_t chunk_size; /* 0 = the stores' or the default */
  uint64_t size;       /* bytes; 0 = the stores' mapped_size */
  enum rmr_pool_mode mode;
  enum rmr_read_policy read_policy;
  uint32_t read_member; /* with RMR_READ_MEMBER */
  unsigned min_legs;    /* 0 = 1 */
  unsigned queue_depth; /* 0 = RMR_DEFAULT_QUEUE_DEPTH */
  uint64_t timeout_ms;  /* request deadline, and how long an
                         * open waits for servers; 0 = default */
  int force;            /* assemble without a member that may
                         * hold the latest writes */
  /* Members to take out of the pool at this open (an assemble): each
   * must be away (its store deleted); the enable persists the member
   * table without them and the members drop their dirty bits.  Refused
   * when no member here is up to date (the current data may be on a
   * deleted one).  An id no longer in the table is ignored, so the
   * delete can be repeated.  The offline form of rmr_pool_leg_remove
   * with RMR_LEG_DELETE.
   */
  unsigned ndelete;
  uint32_t delete_members[RMR_MAX_MEMBERS];
  unsigned nlegs;
  struct rmr_leg_config legs[RMR_MAX_MEMBERS];
};

/* Fill a configuration with the defaults (no pool name, no legs). */
void rmr_pool_config_init (struct rmr_pool_config *cfg);

struct rmr_pool;

/* Connect every leg, join, create or assemble, and enable the pool.  On
 * failure every leg that joined is left again and NULL is returned.  The
 * caller owns the pool and frees it with rmr_pool_close ().
 */
struct rmr_pool *rmr_pool_open (const struct rmr_pool_config *cfg);

/* For an assemble (cfg->mode RMR_MODE_ASSEMBLE): ask every leg's member
 * what it knows of the pool, without joining (nothing changes on the
 * members).  0: every leg answered and every member of the newest member
 * table has a leg, so rmr_pool_open () would find the pool complete.
 * -EAGAIN: a leg is not reachable yet, or a member has no leg (the
 * message names which).  Other -errno: a member refused (wrong pool,
 * size, fresh store, fenced client: its message), or a bad cfg.  Waits at
 * most 5 s per leg.
 */
int rmr_pool_probe (const struct rmr_pool_config *cfg);

/* Join leg i of a create-mode pool that is not open yet and keep it
 * joined, as the admin guide's session enable does: the member's pool
 * shows `created` and takes no other client's join meanwhile.  NULL with
 * the member's refusal or the connection error.  rmr_pool_open () joins
 * by itself: release every hold of the pool (rmr_leg_unhold: a graceful
 * leave) before it.
 */
struct rmr_leg_hold;
struct rmr_leg_hold *rmr_leg_hold (const struct rmr_pool_config *cfg,
                                   unsigned i);
/* NULL allowed. */
void rmr_leg_unhold (struct rmr_leg_hold *h);

/* Leave the pool gracefully (the stores keep their data and metadata) and
 * free it.  No IO may be in flight.  NULL is allowed.
 */
void rmr_pool_close (struct rmr_pool *pool);

const char *rmr_pool_name (const struct rmr_pool *pool);
uint64_t rmr_pool_size (const struct rmr_pool *pool);
uint32_t rmr_pool_chunk_size (const struct rmr_pool *pool);
/* The largest logical block size of the stores (a good minimum IO). */
uint32_t rmr_pool_block_size (const struct rmr_pool *pool);

/* IO flags. */
#define RMR_IO_FUA 0x1       /* durable on every leg before completion */
#define RMR_IO_MAY_TRIM 0x2  /* zero: the range may be deallocated */
#define RMR_IO_FAST_ZERO 0x4 /* zero: fail with -ENOTSUP unless fast */

/* IO on the pool.  count is at most RMR_MAX_IO_SIZE, offset + count at
 * most the pool size (else -EINVAL).  buf must stay valid until return.
 * Return 0 or -errno (-EIO when fewer than min_legs legs completed).
 */
int rmr_pool_pread (struct rmr_pool *pool, void *buf, uint32_t count,
                    uint64_t offset, unsigned flags);
int rmr_pool_pwrite (struct rmr_pool *pool, const void *buf, uint32_t count,
                     uint64_t offset, unsigned flags);
int rmr_pool_flush (struct rmr_pool *pool, unsigned flags);
int rmr_pool_trim (struct rmr_pool *pool, uint32_t count, uint64_t offset,
                   unsigned flags);
int rmr_pool_zero (struct rmr_pool *pool, uint32_t count, uint64_t offset,
                   unsigned flags);

/* Vectored IO: the same as rmr_pool_pread and rmr_pool_pwrite with the
 * buffer given as iovcnt segments, filled or sent in order.  iovcnt is
 * 1 .. RMR_MAX_IOVCNT; the total length (the sum of iov_len, which may
 * include empty segments) is 1 .. RMR_MAX_IO_SIZE, and offset + total at
 * most the pool size; a segment with a length and no base is refused.
 * Each of these gives -EINVAL, and nothing is sent.  The segments must
 * stay valid, and must not overlap (preadv), until return.
 *
 * flags as for those: RMR_IO_FUA for pwritev.  Other errors as for them.
 *
 * pwritev sends the caller's segments to every leg as they are (no copy).
 * preadv receives in place when only one segment has a length; with more
 * the reply goes through one buffer of the total length allocated for
 * the call (-ENOMEM if that fails), then to the segments.
 */
#define RMR_MAX_IOVCNT 64
int rmr_pool_preadv (struct rmr_pool *pool, const struct iovec *iov, int iovcnt,
                     uint64_t offset, unsigned flags);
int rmr_pool_pwritev (struct rmr_pool *pool, const struct iovec *iov,
                      int iovcnt, uint64_t offset, unsigned flags);

/* What a leg looks like now, for status displays. */
struct rmr_leg_info {
  char sessname[RMR_SESS_NAME_MAX + 1];
  char addr[300];
  uint32_t member_id;
  const char *state;   /* "created", "normal", "failed", ... */
  uint64_t bytes_sent; /* of the shared transport connection */
  uint64_t bytes_received;
  uint64_t reads, writes; /* requests of this leg */
  unsigned inflight;
  int enabled; /* 0: disabled by the admin */
  /* The member's data as this client knows it: "up-to-date", or
   * "outdated" (it missed acknowledged requests that no normal member
   * has handed it yet: it cannot come back while no member that has
   * them is normal).
   */
  const char *data_state;
  /* A leg added to the open pool (rmr_pool_leg_add) while it catches up:
   * the chunks still dirty for its member on its own node, of
   * resync_total; both 0 for a leg that is not catching up.
   */
  uint64_t resync_left, resync_total;
  char last_error[RMR_SESS_NAME_MAX + 400]; /* why it last failed */
  /* How the leg's connection is protected: "plaintext", or the TLS
   * session ("TLS1.3 ECDHE-PSK AES-128-GCM (userspace)"); "" when not
   * connected.
   */
  char security[112];
  /* How the bytes travel: "tcp", or "ucx" and the transports UCX chose
   * for the connection ("ucx tcp/eth0", "ucx rc_mlx5/mlx5_0:1"); "" when
   * not connected.
   */
  char transport[96];
  /* Payload bytes the connection sent straight from the caller's buffers
   * by rendezvous (ucx: zero-copy; 0 on tcp).
   */
  uint64_t zcopy_bytes_sent;
};

unsigned rmr_pool_nlegs (const struct rmr_pool *pool);
/* -ENOENT if i >= rmr_pool_nlegs (). */
int rmr_pool_leg_info (struct rmr_pool *pool, unsigned i,
                       struct rmr_leg_info *info);
/* Admin: disable a leg (it turns failed, and is not reconnected, the
 * others record what it misses) or enable it again (it reconnects).
 */
int rmr_pool_leg_set_enabled (struct rmr_pool *pool, unsigned i, int enabled);

/* Reconnect leg i now, optionally to a new address (NULL: the same), and
 * hand it its dirty map: 0 once it is normal again, or -errno.
 */
int rmr_pool_leg_reconnect (struct rmr_pool *pool, unsigned i,
                            const struct rmr_addr *addr);

/* Live legs (issue 10).  Add a leg to an open pool, under IO: the node at
 * lc->addr must serve the pool with a fresh store (never enabled) of the
 * pool's mapped_size, whose member id is not in the pool yet.  Before the
 * member enters any member table, every up-to-date member records every
 * chunk dirty for it (persisted); then, with IO frozen for a moment, the
 * members persist the new member table in a new generation, the new
 * member is enabled and handed what it missed, and IO goes on to every
 * leg.  The new member resyncs from its peers (storage node to storage
 * node) and serves no read while it catches up (its data_state is
 * "syncing": resync_left/resync_total); it turns "up-to-date" once no
 * member records a chunk dirty for it.  Returns the new leg's index
 * (rmr_pool_nlegs () - 1), or -errno with nothing changed on any member
 * (-EEXIST: that node or member is a leg already; -ENOSPC: the pool has
 * RMR_MAX_MEMBERS members; a refusal of the node, e.g. a wrong
 * mapped_size or a store of another pool, is the node's message).  If the
 * new member fails after the members took it into their table, the leg
 * stays in the pool, failed, and is reconnected like any other.
 */
int rmr_pool_leg_add (struct rmr_pool *pool, const struct rmr_leg_config *lc);

enum rmr_leg_remove_mode {
  /* The member stays in the member table: the others record every write
   * it misses, and it can come back (rmr_pool_leg_add of the same node).
   */
  RMR_LEG_DISASSEMBLE = 0,
  /* The member is deleted from every remaining member's table (persisted,
   * in a new generation) and its dirty bits are dropped: the pool later
   * opens without it, without force.
   */
  RMR_LEG_DELETE = 1,
};
/* Remove leg i from an open pool, under IO (IO is frozen for a moment).
 * Refused (-EBUSY, nothing changed) when it is the last leg, when fewer
 * than min-legs legs would remain, or when no remaining leg would be up
 * to date (normal, and recorded dirty by no member): the message says
 * which.  Later legs move down by one.
 */
int rmr_pool_leg_remove (struct rmr_pool *pool, unsigned i,
                         enum rmr_leg_remove_mode mode);

/* Try every failed (and not disabled) leg now; 0 if all legs are normal
 * afterwards, else -errno of the last failure.
 */
int rmr_pool_enable (struct rmr_pool *pool);

/* The pool's generation (a new one per create or assemble). */
uint64_t rmr_pool_generation (const struct rmr_pool *pool);

/* Sync pools.  A storage node reads the chunks it missed straight from
 * its peers through a sync pool [the kernel's client pool with sync=y]:
 * one leg per peer, joined with the sync flag (no create, no enable: a
 * peer serves a sync session's reads while its own pool is normal in the
 * same generation, and only chunks it is not dirty for itself).  Legs
 * connect on first use and again after a failure.
 */
struct rmr_pool *rmr_sync_pool_new (const char *pool_name, uint64_t timeout_ms);
/* Add (or, with the same session name, re-point) a peer.  With check,
 * join it now: a peer that answers with a refusal (it does not serve this
 * pool, say) is not added and the refusal is the error; a peer that
 * cannot be reached yet is added and joined on first use.
 */
int rmr_sync_pool_add_sess (struct rmr_pool *pool, const char *sessname,
                            const struct rmr_addr *addr, int check);
int rmr_sync_pool_del_sess (struct rmr_pool *pool, const char *sessname);
/* Peers are named by their index in the sync pool (0 .. npeers - 1); a
 * mask of peers has bit i for peer i.  rmr_sync_peer_member is the member
 * id of peer i as it answered its last join, joining it first if it never
 * did (RMR_MEMBER_NONE: it could not be reached).
 *
 * An index is no lasting name for a member: del_sess frees it for the
 * next add_sess, add_sess of the same name points it elsewhere, and a node
 * replaced at the same address joins as another member.  So the calls
 * that act on what a chosen member holds take the member the caller chose
 * and refuse an answer from any other with -ECANCELED.
 */
unsigned rmr_sync_npeers (struct rmr_pool *pool);
uint32_t rmr_sync_peer_member (struct rmr_pool *pool, unsigned i);
/* Ask every reachable peer to watch chunks [first, first + n) of member
 * slot `slot` (DESIGN 6, watched clears); *peers gets the peers that did,
 * and members (if not NULL, RMR_MAX_MEMBERS entries) the member that
 * answered through each of them (RMR_MEMBER_NONE for the others).
 * *behind gets the other slots that some watching peer holds dirty there
 * (or has a client write in flight to there that misses them): a member
 * may be behind without knowing it (two members missed the same write),
 * and none of those may be the source.  Returns 0 (even if none did).
 */
int rmr_sync_watch (struct rmr_pool *pool, uint64_t generation, unsigned slot,
                    uint64_t first, uint64_t n, uint32_t *peers,
                    uint32_t *members, uint32_t *behind);
/* Read count bytes at offset from the first peer in `peers` that can
 * serve them; members[i] (if members is not NULL) is the member the caller
 * chose peer i for: another member answering there does not count.
 * *member (if not NULL) is the member that did.  -EAGAIN when no peer
 * could (each was tried once).
 */
int rmr_sync_read (struct rmr_pool *pool, uint64_t generation, uint32_t peers,
                   const uint32_t *members, void *buf, uint32_t count,
                   uint64_t offset, uint32_t *member);
/* The same for a resync: a peer may answer a range that reads as zeroes
 * without sending them; *zeroes says whether it did (buf is zeroed
 * then), so that the caller need not write them where its store already
 * reads as zeroes.
 */
int rmr_sync_read_sparse (struct rmr_pool *pool, uint64_t generation,
                          uint32_t peers, const uint32_t *members, void *buf,
                          uint32_t count, uint64_t offset, uint32_t *member,
                          int *zeroes);
/* The crc32c of each chunk of [offset, offset + count) as peer i holds
 * them (online verify; count: whole chunks, the last may end at the
 * device's end; crc gets nchunks values), member: the member the caller
 * took peer i for.  0, -EAGAIN when the peer refuses for now (a client
 * write to the range in flight there, or it is itself stale there),
 * -ECANCELED when another member answered, or -errno.
 */
int rmr_sync_csum (struct rmr_pool *pool, unsigned i, uint32_t member,
                   uint64_t generation, uint64_t offset, uint32_t count,
                   uint32_t nchunks, uint32_t *crc);
/* The watched clear of [first, first + n) for slot on the peers in
 * `peers`, each by the member that watched through it (members[i], from
 * rmr_sync_watch; NULL: any): kept (ceil (n / 8) bytes, zeroed here) gets
 * the chunks that at least one of them keeps (its bit was set again since
 * its watch began, it could not be asked, or another member answered).
 * Returns 0, or -errno if a peer failed.
 */
int rmr_sync_clear_watched (struct rmr_pool *pool, uint64_t generation,
                            unsigned slot, uint64_t first, uint64_t n,
                            uint32_t peers, const uint32_t *members,
                            uint8_t *kept);
/* Read peer i's map of slot for chunks [first, first + n) into bits
 * (ceil (n / 8) bytes); member: the member the caller took peer i for
 * (RMR_MEMBER_NONE: any).  0, -ECANCELED when another member answered, or
 * -errno.
 */
int rmr_sync_map_get (struct rmr_pool *pool, unsigned i, uint32_t member,
                      uint64_t generation, unsigned slot, uint64_t first,
                      uint64_t n, uint8_t *bits);
/* The pool as peer i holds it, from its join (joining it now if it is
 * not joined): mapped_size in bytes, chunk_size (0: never created) and
 * generation (0: never enabled).  0, or -errno when it cannot be reached
 * or refuses.
 */
int rmr_sync_peer_pool (struct rmr_pool *pool, unsigned i,
                        uint64_t *mapped_size, uint32_t *chunk_size,
                        uint64_t *generation);
void rmr_sync_pool_close (struct rmr_pool *pool);

/* TLS 1.3 with pre-shared keys (DESIGN 9), process-wide, for every
 * connection librmr opens from now on (legs, sync sessions) and every
 * node listener.
 *
 * mode: RMR_TLS_OFF (plaintext), RMR_TLS_ON (TLS when the other side
 * offers it: a client asks for it and goes on in plaintext if the node
 * has no keys; a node accepts both), RMR_TLS_REQUIRE (refuse plaintext).
 * psk_file: nbdkit's --tls-psk format, "USERNAME:HEXKEY" per line as
 * psktool writes it (required unless mode is off); every identity in it
 * is accepted by a listener.  username: the identity this process
 * connects as, which must be in the file (NULL: the host name).
 *
 * The whole file is checked first; on error nothing changes and the
 * message names the file, the line and the field.  Sessions already
 * open keep the configuration they were opened with.
 */
enum rmr_tls_mode {
  RMR_TLS_OFF = 0,
  RMR_TLS_ON = 1,
  RMR_TLS_REQUIRE = 2,
};
int rmr_tls_setup (enum rmr_tls_mode mode, const char *psk_file,
                   const char *username);

/* Process-wide: stop every background thread of librmr (no IO may be in
 * flight) so the process can fork, and start them again in the process
 * that goes on.  Connections survive.
 */
int rmr_threads_suspend (void);
int rmr_threads_resume (void);

/* The admin guide's client side, for any program (the nbdkit plugin is
 * one).  A control socket serves the guide's rmr-client/ and
 * brmr-client/ trees (rmradm(8)): pools are joined, given sessions,
 * enabled, mapped as devices, unmapped and left at run time.  The
 * program uses the mapped devices: it takes a reference on one for as
 * long as it does IO on its pool, and a device's pool is closed only when
 * it is unmapped and unreferenced.  Process-wide; every function is
 * thread-safe.
 */

/* Called once per control request: failed is 1 for a change (set) that
 * was refused; reply is "ok" or the one-line error.
 */
typedef void (*rmr_admin_log_fn) (void *opaque, int failed, const char *request,
                                  const char *reply);

/* Options of the pools configured through the control socket (timeouts,
 * read policy, queue depth...; name, size and legs are ignored).
 */
void rmr_admin_set_template (const struct rmr_pool_config *tmpl);
/* Serve the control socket at path (created with mode 0600; a stale one
 * is replaced).  log may be NULL.  0 or -errno.
 */
int rmr_admin_start (const char *path, rmr_admin_log_fn log, void *opaque);
/* Stop the control socket and close every pool (every leg leaves
 * gracefully).  No IO may be in flight on any device.
 */
void rmr_admin_stop (void);
/* Register a pool the program opened as a mapped device named after the
 * pool; the registry owns it from now on (rmr_admin_stop () closes it).
 * cfg is the configuration it was opened with.
 */
void rmr_admin_add_pool (struct rmr_pool *pool,
                         const struct rmr_pool_config *cfg);

struct rmr_device;
/* The mapped device named name (a pool name or its alias brmrN; "" for
 * the first mapped device), referenced until rmr_device_put (); *pool is
 * its open pool.  NULL with errno ENOENT and a message when there is no
 * such device.
 */
struct rmr_device *rmr_device_get (const char *name, struct rmr_pool **pool);
void rmr_device_put (struct rmr_device *dev);
/* The names of the mapped devices, a NULL-terminated array, or NULL with
 * errno ENOMEM.  Free with rmr_strv_free ().
 */
char **rmr_device_names (void);
/* The first mapped device's name (free ()), or NULL when none is. */
char *rmr_device_default (void);
void rmr_strv_free (char **v);

#ifdef __cplusplus
}
#endif

#endif /* RMR_RMR_H */
