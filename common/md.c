/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* On-disk metadata of a store (md.h, DESIGN 7): the layout of the regions,
 * the encoding of a superblock copy, and reading, writing and wiping the
 * two copies crash-safely.
 *
 * Decoding is strict: every byte of a copy is either a field that is
 * checked or reserved space that must be zero, so a copy that decodes
 * encodes back to the very same 4096 bytes (the fuzz target checks it).
 * Anything else is -EBADMSG with a message naming the field, so a damaged
 * or foreign block is never half-trusted.
 *
 * Crash safety: md_write () puts sequence number seq in copy seq % 2 and
 * never touches the other copy, which holds seq - 1.  A torn write leaves
 * a copy that fails its CRC, and md_read () falls back to the other.  If
 * the write fails, sb->seq is put back, so a retry goes to the same copy
 * and never overwrites the last good one.  md_write () also refuses
 * (-EINVAL) a superblock that would not decode, and (-EOVERFLOW) to wrap
 * seq, which would make the older copy win.
 *
 * The IO buffers are 4096-byte aligned and the IO is whole 4096-byte
 * blocks at 4096-byte offsets, so fd may be opened with O_DIRECT.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "error.h"
#include "fdio.h"
#include "jhash.h"
#include "md.h"
#include "parse.h"
#include "util.h"

/* Offsets of the fields of one copy (md.h). */
#define OFF_MAGIC 0
#define OFF_VERSION 8
#define OFF_CRC 12
#define OFF_SEQ 16
#define OFF_POOL_NAME 24
#define POOL_NAME_FIELD 64
#define OFF_GROUP_ID 88
#define OFF_MEMBER_ID 92
#define OFF_CHUNK_SIZE 96
#define OFF_QUEUE_DEPTH 100
#define OFF_MAPPED_SIZE 104
#define OFF_GENERATION 112
#define OFF_MAP_VERSION 120
#define OFF_DATA_OFFSET 128
#define OFF_MAP_OFFSET 136
#define OFF_MAP_SLOT_BYTES 144
#define OFF_AL_OFFSET 152
#define OFF_AL_BYTES 160
#define OFF_FLAGS 168
#define OFF_MIN_LEGS 172
#define OFF_MEMBERS 176
#define MEMBER_SLOT 16
#define OFF_END (OFF_MEMBERS + RMR_MAX_MEMBERS * MEMBER_SLOT)

#define MD_ALIGN 4096
#define MD_KNOWN_FLAGS (RMR_SB_F_RESERVED | RMR_SB_F_ZEROED | RMR_SB_F_REPLACED)
/* Every offset of the store must fit in off_t. */
#define MD_MAX_STORE_BYTES ((uint64_t) INT64_MAX)

_Static_assert(OFF_END == 304, "superblock fields end at 304 (md.h)");
_Static_assert(POOL_NAME_FIELD == RMR_POOL_NAME_MAX + 1,
               "pool_name field holds a maximal name and its NUL");
_Static_assert(RMR_AL_OFFSET + RMR_AL_BYTES <= RMR_MAP_OFFSET,
               "recent-write record ends before the map region");
_Static_assert(2 * RMR_SB_SIZE <= RMR_AL_OFFSET,
               "superblock copies end before the recent-write record");

/* Map region of one member for a store of mapped_size bytes: one bit per
 * RMR_MIN_CHUNK_SIZE chunk, in pages of RMR_MAP_PAGE_BITS bits.  Written
 * so that no step overflows for any 64-bit mapped_size.
 */
static uint64_t
map_slot_bytes (uint64_t mapped_size)
{
  uint64_t nchunks, npages;

  nchunks =
    mapped_size / RMR_MIN_CHUNK_SIZE + (mapped_size % RMR_MIN_CHUNK_SIZE != 0);
  npages = nchunks / RMR_MAP_PAGE_BITS + (nchunks % RMR_MAP_PAGE_BITS != 0);
  return round_up (npages * RMR_MAP_PAGE_SIZE, 4096);
}

void
md_layout (struct rmr_sb *sb)
{
  uint64_t slot = map_slot_bytes (sb->mapped_size);

  sb->al_offset = RMR_AL_OFFSET;
  sb->al_bytes = RMR_AL_BYTES;
  sb->map_offset = RMR_MAP_OFFSET;
  sb->map_slot_bytes = slot;
  sb->data_offset =
    round_up (RMR_MAP_OFFSET + RMR_MAX_MEMBERS * slot, RMR_DATA_ALIGN);
}

/* Bytes of the store, or UINT64_MAX if that does not fit in 64 bits
 * (no device is that large, so a size check against it fails).
 */
uint64_t
md_store_bytes (uint64_t mapped_size)
{
  struct rmr_sb sb = {.mapped_size = mapped_size};
  uint64_t total;

  md_layout (&sb);
  if (ADD_OVERFLOW (sb.data_offset, mapped_size, &total))
    return UINT64_MAX;
  return total;
}

/* mapped_size is usable: non-zero, whole sectors, and the store's end
 * fits in off_t.  Fills why on failure.
 */
static bool
check_mapped_size (uint64_t mapped_size, char *why, size_t n)
{
  if (mapped_size == 0)
    snprintf (why, n, "mapped_size 0: must not be zero");
  else if (mapped_size % 512 != 0)
    snprintf (why, n, "mapped_size %" PRIu64 ": not a multiple of 512 bytes",
              mapped_size);
  else if (md_store_bytes (mapped_size) > MD_MAX_STORE_BYTES)
    snprintf (why, n,
              "mapped_size %" PRIu64 ": too large (the store would end "
              "beyond 2^63 bytes)",
              mapped_size);
  else
    return true;
  return false;
}

int
md_init (struct rmr_sb *sb, const char *pool_name, uint32_t member_id,
         uint64_t mapped_size)
{
  char why[160];
  size_t i;
  int r;

  /* "" is a store that is not in a pool yet (md.h). */
  if (pool_name == NULL)
    pool_name = "";
  if (*pool_name != '\0') {
    r = rmr_check_pool_name ("pool_name", pool_name);
    if (r < 0)
      return r;
  }
  if (!check_mapped_size (mapped_size, why, sizeof why))
    return rmr_err (EINVAL, "%s", why);

  memset (sb, 0, sizeof *sb);
  sb->version = RMR_MD_VERSION;
  memcpy (sb->pool_name, pool_name, strlen (pool_name) + 1);
  sb->group_id = rmr_group_id (pool_name);
  sb->member_id = member_id;
  sb->mapped_size = mapped_size;
  md_layout (sb);
  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    sb->members[i].member_id = RMR_MEMBER_NONE;
    sb->members[i].state = RMR_MEMBER_ABSENT;
  }
  return 0;
}

void
md_encode (const struct rmr_sb *sb, uint8_t *buf)
{
  size_t i, len;

  memset (buf, 0, RMR_SB_SIZE);
  memcpy (buf + OFF_MAGIC, RMR_SB_MAGIC, 8);
  put_le32 (buf + OFF_VERSION, sb->version);
  put_le64 (buf + OFF_SEQ, sb->seq);
  len = strnlen (sb->pool_name, RMR_POOL_NAME_MAX);
  memcpy (buf + OFF_POOL_NAME, sb->pool_name, len);
  put_le32 (buf + OFF_GROUP_ID, sb->group_id);
  put_le32 (buf + OFF_MEMBER_ID, sb->member_id);
  put_le32 (buf + OFF_CHUNK_SIZE, sb->chunk_size);
  put_le32 (buf + OFF_QUEUE_DEPTH, sb->queue_depth);
  put_le64 (buf + OFF_MAPPED_SIZE, sb->mapped_size);
  put_le64 (buf + OFF_GENERATION, sb->generation);
  put_le64 (buf + OFF_MAP_VERSION, sb->map_version);
  put_le64 (buf + OFF_DATA_OFFSET, sb->data_offset);
  put_le64 (buf + OFF_MAP_OFFSET, sb->map_offset);
  put_le64 (buf + OFF_MAP_SLOT_BYTES, sb->map_slot_bytes);
  put_le64 (buf + OFF_AL_OFFSET, sb->al_offset);
  put_le64 (buf + OFF_AL_BYTES, sb->al_bytes);
  put_le32 (buf + OFF_FLAGS, sb->flags);
  put_le32 (buf + OFF_MIN_LEGS, sb->min_legs);
  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    uint8_t *slot = buf + OFF_MEMBERS + i * MEMBER_SLOT;

    put_le32 (slot, sb->members[i].member_id);
    put_le32 (slot + 4, sb->members[i].state);
    put_le64 (slot + 8, sb->members[i].since);
  }
  put_le32 (buf + OFF_CRC, rmr_crc32c (0, buf, RMR_SB_SIZE));
}

/* The pool_name field: NUL-terminated within its 64 bytes, NUL-padded,
 * and "" or a valid pool name.
 */
static bool
decode_pool_name (const uint8_t *field, char *name, char *why, size_t n)
{
  const uint8_t *nul = memchr (field, '\0', POOL_NAME_FIELD);
  size_t len;

  if (nul == NULL) {
    snprintf (why, n, "pool_name: not NUL-terminated");
    return false;
  }
  len = nul - field;
  if (!buf_is_zero (nul, POOL_NAME_FIELD - len)) {
    snprintf (why, n, "pool_name: bytes after the NUL are not zero");
    return false;
  }
  memcpy (name, field, len + 1);
  if (len > 0 && rmr_check_pool_name ("pool_name", name) < 0) {
    snprintf (why, n, "%s", rmr_get_error ());
    return false;
  }
  return true;
}

/* Decode one copy into *sb (which may be changed even on failure).
 * Returns 0, -ENODATA (no magic) or -EBADMSG, with the reason in why.
 */
static int
decode (const uint8_t *buf, struct rmr_sb *sb, char *why, size_t n)
{
  static const uint8_t zero_crc[4];
  struct rmr_sb layout;
  uint32_t crc, want;
  size_t i, j;

  if (memcmp (buf + OFF_MAGIC, RMR_SB_MAGIC, 8) != 0) {
    snprintf (why, n, "no rmr superblock (magic missing)");
    return -ENODATA;
  }

  memset (sb, 0, sizeof *sb);
  /* Before the CRC: a newer format may checksum differently. */
  sb->version = get_le32 (buf + OFF_VERSION);
  if (sb->version != RMR_MD_VERSION) {
    snprintf (why, n, "version %" PRIu32 ": unsupported (expected %u)",
              sb->version, RMR_MD_VERSION);
    return -EBADMSG;
  }
  /* The CRC of the block with the crc field read as zero. */
  crc = get_le32 (buf + OFF_CRC);
  want = rmr_crc32c (0, buf, OFF_CRC);
  want = rmr_crc32c (want, zero_crc, sizeof zero_crc);
  want = rmr_crc32c (want, buf + OFF_CRC + 4, RMR_SB_SIZE - OFF_CRC - 4);
  if (crc != want) {
    snprintf (why, n,
              "crc 0x%08" PRIx32 ": checksum mismatch (computed 0x%08" PRIx32
              ")",
              crc, want);
    return -EBADMSG;
  }

  sb->seq = get_le64 (buf + OFF_SEQ);
  if (!decode_pool_name (buf + OFF_POOL_NAME, sb->pool_name, why, n))
    return -EBADMSG;
  sb->group_id = get_le32 (buf + OFF_GROUP_ID);
  if (sb->group_id != rmr_group_id (sb->pool_name)) {
    snprintf (why, n,
              "group_id 0x%08" PRIx32 ": not the hash of pool_name '%s' "
              "(0x%08" PRIx32 ")",
              sb->group_id, sb->pool_name, rmr_group_id (sb->pool_name));
    return -EBADMSG;
  }
  /* Any value: an id, or RMR_MEMBER_NONE before the store joins a pool. */
  sb->member_id = get_le32 (buf + OFF_MEMBER_ID);

  sb->chunk_size = get_le32 (buf + OFF_CHUNK_SIZE);
  if (sb->chunk_size != 0 &&
      (!is_power_of_2 (sb->chunk_size) || sb->chunk_size < RMR_MIN_CHUNK_SIZE ||
       sb->chunk_size > RMR_MAX_CHUNK_SIZE)) {
    snprintf (why, n,
              "chunk_size %" PRIu32 ": not 0 or a power of two from %u to "
              "%u",
              sb->chunk_size, RMR_MIN_CHUNK_SIZE, RMR_MAX_CHUNK_SIZE);
    return -EBADMSG;
  }
  sb->queue_depth = get_le32 (buf + OFF_QUEUE_DEPTH);
  if (sb->queue_depth > RMR_MAX_QUEUE_DEPTH) {
    snprintf (why, n, "queue_depth %" PRIu32 ": more than %u", sb->queue_depth,
              RMR_MAX_QUEUE_DEPTH);
    return -EBADMSG;
  }
  sb->mapped_size = get_le64 (buf + OFF_MAPPED_SIZE);
  if (!check_mapped_size (sb->mapped_size, why, n))
    return -EBADMSG;
  sb->generation = get_le64 (buf + OFF_GENERATION);
  sb->map_version = get_le64 (buf + OFF_MAP_VERSION);

  sb->data_offset = get_le64 (buf + OFF_DATA_OFFSET);
  sb->map_offset = get_le64 (buf + OFF_MAP_OFFSET);
  sb->map_slot_bytes = get_le64 (buf + OFF_MAP_SLOT_BYTES);
  sb->al_offset = get_le64 (buf + OFF_AL_OFFSET);
  sb->al_bytes = get_le64 (buf + OFF_AL_BYTES);
  layout.mapped_size = sb->mapped_size;
  md_layout (&layout);
  {
    static const struct {
      const char *name;
      size_t off;
    } fields[] = {
      {"data_offset", offsetof (struct rmr_sb, data_offset)},
      {"map_offset", offsetof (struct rmr_sb, map_offset)},
      {"map_slot_bytes", offsetof (struct rmr_sb, map_slot_bytes)},
      {"al_offset", offsetof (struct rmr_sb, al_offset)},
      {"al_bytes", offsetof (struct rmr_sb, al_bytes)},
    };

    for (i = 0; i < ARRAY_SIZE (fields); i++) {
      uint64_t got, expect;

      memcpy (&got, (const char *) sb + fields[i].off, sizeof got);
      memcpy (&expect, (const char *) &layout + fields[i].off, sizeof expect);
      if (got != expect) {
        snprintf (why, n,
                  "%s %" PRIu64 ": does not match the layout of mapped_size "
                  "%" PRIu64 " (expected %" PRIu64 ")",
                  fields[i].name, got, sb->mapped_size, expect);
        return -EBADMSG;
      }
    }
  }

  sb->flags = get_le32 (buf + OFF_FLAGS);
  if ((sb->flags & ~MD_KNOWN_FLAGS) != 0) {
    snprintf (why, n, "flags 0x%" PRIx32 ": unknown flags 0x%" PRIx32,
              sb->flags, sb->flags & ~MD_KNOWN_FLAGS);
    return -EBADMSG;
  }
  sb->min_legs = get_le32 (buf + OFF_MIN_LEGS);
  if (sb->min_legs > RMR_MAX_MEMBERS) {
    snprintf (why, n, "min_legs %" PRIu32 ": more than %u members",
              sb->min_legs, RMR_MAX_MEMBERS);
    return -EBADMSG;
  }

  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    const uint8_t *slot = buf + OFF_MEMBERS + i * MEMBER_SLOT;
    struct rmr_member_md *m = &sb->members[i];

    m->member_id = get_le32 (slot);
    m->state = get_le32 (slot + 4);
    m->since = get_le64 (slot + 8);
    if (m->since > sb->generation ||
        (m->member_id == RMR_MEMBER_NONE && m->since)) {
      snprintf (why, n,
                "members[%zu].since %" PRIu64 ": beyond generation %" PRIu64
                " or set on an empty slot",
                i, m->since, sb->generation);
      return -EBADMSG;
    }
    if (m->member_id == RMR_MEMBER_NONE) {
      if (m->state != RMR_MEMBER_ABSENT) {
        snprintf (why, n,
                  "members[%zu].state %" PRIu32 ": not absent in an empty "
                  "slot",
                  i, m->state);
        return -EBADMSG;
      }
      continue;
    }
    if (m->state != RMR_MEMBER_ABSENT && m->state != RMR_MEMBER_NORMAL &&
        m->state != RMR_MEMBER_DIRTY) {
      snprintf (why, n, "members[%zu].state %" PRIu32 ": unknown state", i,
                m->state);
      return -EBADMSG;
    }
    for (j = 0; j < i; j++)
      if (sb->members[j].member_id == m->member_id) {
        snprintf (why, n,
                  "members[%zu].member_id %" PRIu32 ": also in members[%zu]", i,
                  m->member_id, j);
        return -EBADMSG;
      }
  }

  if (!buf_is_zero (buf + OFF_END, RMR_SB_SIZE - OFF_END)) {
    for (i = OFF_END; buf[i] == 0; i++)
      ;
    snprintf (why, n, "unused byte %zu: not zero", i);
    return -EBADMSG;
  }
  return 0;
}

int
md_decode (const uint8_t *buf, struct rmr_sb *sb)
{
  struct rmr_sb tmp;
  char why[256];
  int r;

  r = decode (buf, &tmp, why, sizeof why);
  if (r < 0)
    return rmr_err (-r, "superblock: %s", why);
  *sb = tmp;
  return 0;
}

/* Record "what: strerror" for -errnum and return it. */
static int
io_err (int errnum, const char *what)
{
  errno = -errnum;
  return rmr_err (-errnum, "%s: %m", what);
}

static uint8_t *
md_buf_alloc (size_t len)
{
  void *p;

  if (posix_memalign (&p, MD_ALIGN, len) != 0)
    return NULL;
  return p;
}

int
md_read (int fd, struct rmr_sb *sb, int *which)
{
  CLEANUP_FREE uint8_t *buf = md_buf_alloc (2 * RMR_SB_SIZE);
  struct rmr_sb copy[2];
  char why[2][256];
  int r[2], best, i, e;

  if (buf == NULL)
    return rmr_err (ENOMEM, "reading the superblock: out of memory");
  e = rmr_pread_full (fd, buf, 2 * RMR_SB_SIZE, 0);
  if (e < 0)
    return io_err (e, "reading the superblock");

  best = -1;
  for (i = 0; i < 2; i++) {
    r[i] = decode (buf + i * RMR_SB_SIZE, &copy[i], why[i], sizeof why[i]);
    if (r[i] == 0 && (best < 0 || copy[i].seq > copy[best].seq))
      best = i;
  }
  if (best < 0) {
    if (r[0] == -ENODATA && r[1] == -ENODATA)
      return rmr_err (ENODATA, "no rmr superblock (no magic in either copy)");
    return rmr_err (EBADMSG,
                    "superblock: no valid copy: copy 0: %s; copy 1: "
                    "%s",
                    why[0], why[1]);
  }
  *sb = copy[best];
  if (which)
    *which = best;
  return 0;
}

int
md_write (int fd, struct rmr_sb *sb)
{
  CLEANUP_FREE uint8_t *buf = md_buf_alloc (RMR_SB_SIZE);
  struct rmr_sb check;
  char why[256];
  int r, copy;

  if (buf == NULL)
    return rmr_err (ENOMEM, "writing the superblock: out of memory");
  /* A wrapped seq would make the older copy look newer. */
  if (sb->seq == UINT64_MAX)
    return rmr_err (
      EOVERFLOW,
      "superblock not written: seq %" PRIu64 " cannot be incremented", sb->seq);

  sb->seq++;
  md_encode (sb, buf);
  /* Never put on disk what md_read () would refuse. */
  r = decode (buf, &check, why, sizeof why);
  if (r < 0) {
    sb->seq--;
    return rmr_err (EINVAL, "superblock not written: %s", why);
  }

  copy = sb->seq % 2;
  r = rmr_pwrite_full (fd, buf, RMR_SB_SIZE, (uint64_t) copy * RMR_SB_SIZE, 0);
  if (r == 0 && fdatasync (fd) < 0)
    r = -errno;
  if (r < 0) {
    sb->seq--;
    return io_err (r, copy ? "writing superblock copy 1"
                           : "writing superblock copy 0");
  }
  return 0;
}

int
md_wipe (int fd)
{
  CLEANUP_FREE uint8_t *buf = md_buf_alloc (2 * RMR_SB_SIZE);
  int r;

  if (buf == NULL)
    return rmr_err (ENOMEM, "wiping the superblock: out of memory");
  memset (buf, 0, 2 * RMR_SB_SIZE);
  r = rmr_pwrite_full (fd, buf, 2 * RMR_SB_SIZE, 0, 0);
  if (r == 0 && fdatasync (fd) < 0)
    r = -errno;
  if (r < 0)
    return io_err (r, "wiping the superblock");
  return 0;
}

uint32_t
md_apply_members (struct rmr_sb *sb, const uint32_t members[RMR_MAX_MEMBERS],
                  const uint64_t ndirty[RMR_MAX_MEMBERS], uint64_t generation)
{
  uint32_t dropped = 0;
  unsigned i;

  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    struct rmr_member_md *m = &sb->members[i];
    if (m->member_id == members[i] && members[i] != RMR_MEMBER_NONE)
      continue;
    if (members[i] == RMR_MEMBER_NONE) {
      if (m->member_id != RMR_MEMBER_NONE)
        dropped |= 1u << i;
      m->member_id = RMR_MEMBER_NONE;
      m->state = RMR_MEMBER_ABSENT;
      m->since = 0;
      continue;
    }
    m->member_id = members[i];
    m->state = ndirty && ndirty[i] ? RMR_MEMBER_DIRTY : RMR_MEMBER_NORMAL;
    m->since = generation;
  }
  return dropped;
}
