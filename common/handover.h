/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hand-over (handover.c): what a member missed, given to the members,
 * and whether a member may serve.  Client side, used by client-recover.c
 * and client-pool.c.  Errors: -errno with a message (error.h).
 */
#ifndef RMR_HANDOVER_H
#define RMR_HANDOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "rmr/rmr.h"

struct rmr_pool;
struct clt_leg;
struct clt_sess;

/* Pure decisions (unit-tested without a transport). */

/* The chunks set in al (the union of the recent-write records, nchunks
 * bits) may differ between members: for each, the source is the first
 * slot of order[0..norder) (present members, preferred first) that is
 * current there (its bit clear in umap) and did not stop uncleanly with
 * the chunk in its own record (unclean[s], NULL: clean); failing that,
 * the first current one whatever its record (counted in *lossy: a write
 * it acknowledged there may be lost).  Every other present slot and every
 * slot in absent gets the chunk set in umap.  umap[s] must be allocated
 * for every slot in order and in absent.  Returns the chunks for which no
 * present member is current (left as they are).
 */
uint64_t ho_assemble_bits (uint64_t nchunks, const uint8_t *al,
                           uint8_t *const umap[RMR_MAX_MEMBERS],
                           uint8_t *const unclean[RMR_MAX_MEMBERS],
                           const int *order, unsigned norder, uint32_t absent,
                           uint64_t *lossy);

/* A returning member (slot self) stopped uncleanly: the chunks of its
 * record (rec) may have lost writes it acknowledged and had not made
 * durable.  With normal members (slot mask normal), each is made dirty for
 * it (umap[self]) where one of them is current (its union bit umap[s]
 * clear), to be fetched from there; where every normal member is behind,
 * the returning member is the best copy there is and keeps the chunk:
 * counted in the return (a write acknowledged there may be lost).  With
 * none, every chunk is made dirty for it (it waits for a member that may
 * be current: IO there fails with EIO until one is back), unless every
 * other used member (used) is in proven: members whose every write the
 * returning one holds durably (the departure barrier); then it keeps
 * them all, counted.  umap[s] must be allocated for self and every slot in
 * normal.
 */
uint64_t ho_record_bits (uint64_t nchunks, const uint8_t *rec,
                         uint8_t *const umap[RMR_MAX_MEMBERS], uint32_t normal,
                         uint32_t used, uint32_t proven, int self);

/* May the member of slot come back while no member is normal?  Only if
 * it missed no acknowledged request (outdated: slot mask) since it was
 * last handed its map by a normal member.
 */
bool ho_may_enable_alone (uint32_t outdated, int slot);

/* With a transport. */

uint64_t ho_nchunks (const struct rmr_pool *pool);
/* OR leg from's map of slot (on session s) into bits (every chunk). */
int ho_collect (struct rmr_pool *pool, struct clt_leg *from, struct clt_sess *s,
                int slot, uint8_t *bits);
/* The hand-over of a returning leg on session s (IO frozen, leg joined):
 * refuses (-EAGAIN, message naming the members needed) a member that
 * missed acknowledged writes when no member is normal;
 * else gives it every slot's union of the normal members' maps, and its
 * recent-write record if it stopped uncleanly.  *from_peers: a normal
 * member took part; *ndirty: the chunks it was handed for itself.
 */
int ho_reconnect (struct rmr_pool *pool, struct clt_leg *leg,
                  struct clt_sess *s, bool *from_peers, uint64_t *ndirty);

/* Assemble: every slot's union of the maps of the joined members that
 * are not new, with the record chunks (al) made dirty for all but one
 * source per chunk (ho_assemble_bits), given to the joined legs in
 * `give` (ho_assemble_prepare computes, ho_assemble_give sends, and may
 * be called again for other legs; ho_union_free releases).
 */
struct ho_union {
  uint8_t *umap[RMR_MAX_MEMBERS];
};
struct clt_plan;
int ho_assemble_prepare (struct rmr_pool *pool, unsigned joined,
                         const struct clt_plan *plan, struct ho_union *u);
int ho_assemble_give (struct rmr_pool *pool, unsigned give,
                      const struct ho_union *u);
/* The chunks of slot's union (0 for an unused slot). */
uint64_t ho_union_count (const struct rmr_pool *pool, const struct ho_union *u,
                         int slot);
void ho_union_free (struct ho_union *u);

#endif /* RMR_HANDOVER_H */
