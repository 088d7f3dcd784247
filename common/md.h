/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* On-disk metadata of a store (DESIGN 7): the superblock and the layout of
 * the regions that follow it.
 *
 * Layout (all offsets in bytes from the start of the store):
 *
 *   0        superblock copy 0   (RMR_SB_SIZE)
 *   4096     superblock copy 1   (RMR_SB_SIZE)
 *   65536    recent-write record (al_bytes, RMR_AL_BYTES)
 *   1 MiB    dirty-map region: RMR_MAX_MEMBERS slots of map_slot_bytes
 *   ...      data area at data_offset (a multiple of 1 MiB), mapped_size
 *
 * The map region is sized for the smallest chunk size (RMR_MIN_CHUNK_SIZE),
 * so the layout depends only on mapped_size and is fixed when the store is
 * created, before the pool (and its chunk size) exists.  Each slot holds
 * one bit per chunk in RMR_MAP_PAGE_SIZE pages of RMR_MAP_PAGE_BITS bits
 * (a page also carries its own checksum header).
 *
 * Crash safety: the superblock is written alternately to copy 0 and copy
 * 1, each with a sequence number and a CRC-32C over the whole 4 KiB block.
 * md_read () takes the valid copy with the highest sequence, so a torn
 * write of one copy leaves the other, older one in force.
 *
 * Encoding of one superblock copy (little-endian; unused bytes are zero):
 *   0    u8[8]  magic "RMRSTORE"
 *   8    u32    format version (RMR_MD_VERSION)
 *   12   u32    crc32c of the 4096-byte block with this field zeroed
 *   16   u64    seq
 *   24   u8[64] pool_name, NUL padded ("" = store not in a pool yet)
 *   88   u32    group_id (jhash of pool_name)
 *   92   u32    member_id
 *   96   u32    chunk_size (0 = pool not created yet)
 *   100  u32    queue_depth
 *   104  u64    mapped_size (bytes)
 *   112  u64    generation (0 = pool never enabled on this store)
 *   120  u64    map_version
 *   128  u64    data_offset
 *   136  u64    map_offset
 *   144  u64    map_slot_bytes
 *   152  u64    al_offset
 *   160  u64    al_bytes
 *   168  u32    flags (RMR_SB_F_*)
 *   172  u32    min_legs the pool was last enabled with (0: unknown)
 *   176  8 x { u32 member_id (RMR_MEMBER_NONE = empty slot), u32 state,
 *              u64 since (generation the state was set in; 0 for an
 *              empty slot, at most the store's generation) }  srv_md[]
 *   304  ...    zero
 */
#ifndef RMR_MD_H
#define RMR_MD_H

#include <stdbool.h>
#include <stdint.h>

#include "rmr/rmr.h"

#define RMR_SB_SIZE 4096
#define RMR_SB_MAGIC "RMRSTORE"
#define RMR_MD_VERSION 1
#define RMR_AL_OFFSET (64 * 1024)
#define RMR_AL_BYTES (960 * 1024)
#define RMR_MAP_OFFSET (1024 * 1024)
#define RMR_MAP_PAGE_SIZE 4096
#define RMR_MAP_PAGE_HDR 16
#define RMR_MAP_PAGE_BITS ((RMR_MAP_PAGE_SIZE - RMR_MAP_PAGE_HDR) * 8)
#define RMR_DATA_ALIGN (1024 * 1024)

/* flags */
#define RMR_SB_F_RESERVED                                                      \
  0x1 /* never set; accepted on read (the clean mark
       * is the recent-write record's, alrec.h) */
#define RMR_SB_F_ZEROED                                                        \
  0x2 /* data area known to read as zeroes (set by
       * create_store, cleared when the pool is
       * created on the store) */
#define RMR_SB_F_REPLACED                                                      \
  0x4 /* a new disk replacing a member's store
       * (add_store mode=replace): it holds none of
       * the pool's data.  Cleared only once every
       * chunk is saved dirty for this member in its
       * own map (rmr-storaged/replace.c); older
       * daemons refuse the store while it is set */

/* State of a member in srv_md: this store's view of that member's data
 * (DESIGN 3, member data states).  NORMAL: up to date as far as this
 * store knows; DIRTY: this store records chunks the member lacks (for
 * the store's own slot: it is being resynced, "inconsistent"; for
 * another: "outdated").  Saved before the write that makes it true is
 * acknowledged (map.c); never reset by a new generation.
 */
enum rmr_member_state {
  RMR_MEMBER_ABSENT = 0,
  RMR_MEMBER_NORMAL = 1,
  RMR_MEMBER_DIRTY = 2, /* has dirty chunks to resync */
};

struct rmr_member_md {
  uint32_t member_id; /* RMR_MEMBER_NONE: slot unused */
  uint32_t state;     /* enum rmr_member_state */
  uint64_t since;     /* generation the state was set in */
};

/* A decoded superblock.  Strings are NUL-terminated. */
struct rmr_sb {
  uint32_t version;
  uint64_t seq;
  char pool_name[RMR_POOL_NAME_MAX + 1];
  uint32_t group_id;
  uint32_t member_id;
  uint32_t chunk_size;
  uint32_t queue_depth;
  uint64_t mapped_size;
  uint64_t generation;
  uint64_t map_version;
  uint64_t data_offset;
  uint64_t map_offset;
  uint64_t map_slot_bytes;
  uint64_t al_offset;
  uint64_t al_bytes;
  uint32_t flags;
  uint32_t min_legs;
  struct rmr_member_md members[RMR_MAX_MEMBERS];
};

/* Initialise sb for a new store of a pool: version, name, group_id,
 * member_id, mapped_size and the layout (md_layout); chunk_size 0,
 * generation 0, seq 0, every member slot empty.  -EINVAL (message naming
 * the field) for a bad pool name or a mapped_size that is 0 or not a
 * multiple of 512.
 */
int md_init (struct rmr_sb *sb, const char *pool_name, uint32_t member_id,
             uint64_t mapped_size);

/* Fill the layout fields of sb from sb->mapped_size. */
void md_layout (struct rmr_sb *sb);

/* Bytes a device needs to hold a store of this mapped_size. */
uint64_t md_store_bytes (uint64_t mapped_size);

/* Encode sb into one 4096-byte copy (computes the CRC). */
void md_encode (const struct rmr_sb *sb, uint8_t *buf);

/* Decode and validate one copy: magic, version, CRC, pool name, group_id
 * = jhash (pool_name), chunk_size (0 or a power of two in range),
 * mapped_size, layout consistent with md_layout (), member slots (member
 * ids unique, states known).  Returns 0, -ENODATA if the block has no
 * magic (not ours), or -EBADMSG with a message naming the bad field.
 */
int md_decode (const uint8_t *buf, struct rmr_sb *sb);

/* Read both copies from fd and return the valid one with the highest
 * seq.  *which (if not NULL) is set to the copy used (0 or 1).  Returns 0;
 * -ENODATA if neither copy has the magic (no rmr metadata: a fresh
 * device); -EBADMSG if a magic is present but no copy is valid (message
 * names the problem of each copy); -EIO etc. on read errors.
 */
int md_read (int fd, struct rmr_sb *sb, int *which);

/* Persist sb: increments sb->seq, writes it to copy (seq % 2), and makes
 * it durable (fdatasync) before returning.  The other copy is untouched,
 * so a crash during the write leaves the previous superblock valid.
 */
int md_write (int fd, struct rmr_sb *sb);

/* Apply the member table of a pool enable (members[], by slot) to sb, in
 * a new generation (DESIGN 3: a new generation changes no member's
 * state).  A slot that keeps its member keeps its state; a slot that
 * gets a member gets DIRTY if this store already holds dirty bits for
 * that slot (ndirty[slot] > 0: a member added to an open pool, marked
 * dirty for every chunk before it enters any table) and NORMAL
 * otherwise (a member of a new pool); a slot that loses its member (a
 * member deleted for good) becomes empty.  Returns the mask of slots that
 * lost their member: the caller drops their bits.  Nothing is written.
 */
uint32_t md_apply_members (struct rmr_sb *sb,
                           const uint32_t members[RMR_MAX_MEMBERS],
                           const uint64_t ndirty[RMR_MAX_MEMBERS],
                           uint64_t generation);

/* Wipe both superblock copies (delete_store), durably. */
int md_wipe (int fd);

#endif /* RMR_MD_H */
