/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of common/md.c: the store layout, the byte encoding of a
 * superblock copy (pinned offset by offset against md.h), strict decoding
 * (every field check fires on its own: the test corrupts one field and
 * fixes the CRC up, so the field check and not the CRC rejects it), and
 * the two-copy protocol on real temporary files: alternation, a torn
 * newer copy, both copies bad, no metadata, wipe, refusal to write an
 * invalid superblock, and IO errors.
 */
#undef NDEBUG

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "crc32c.h"
#include "error.h"
#include "jhash.h"
#include "md.h"
#include "util.h"

#define MiB (1024ULL * 1024)
#define GiB (1024ULL * MiB)

/* A superblock with every field set to something non-default. */
static void
make_sb (struct rmr_sb *sb)
{
  g_assert_cmpint (md_init (sb, "pool1", 3, GiB), ==, 0);
  sb->seq = 42;
  sb->chunk_size = 128 * 1024;
  sb->queue_depth = 128;
  sb->generation = 7;
  sb->map_version = 9;
  sb->flags = RMR_SB_F_RESERVED;
  sb->members[0].member_id = 3;
  sb->members[0].state = RMR_MEMBER_NORMAL;
  sb->members[1].member_id = 5;
  sb->members[1].state = RMR_MEMBER_DIRTY;
  sb->members[2].member_id = 0;
  sb->members[2].state = RMR_MEMBER_ABSENT;
}

static void
assert_sb_equal (const struct rmr_sb *a, const struct rmr_sb *b)
{
  size_t i;

  g_assert_cmpuint (a->version, ==, b->version);
  g_assert_cmpuint (a->seq, ==, b->seq);
  g_assert_cmpstr (a->pool_name, ==, b->pool_name);
  g_assert_cmphex (a->group_id, ==, b->group_id);
  g_assert_cmpuint (a->member_id, ==, b->member_id);
  g_assert_cmpuint (a->chunk_size, ==, b->chunk_size);
  g_assert_cmpuint (a->queue_depth, ==, b->queue_depth);
  g_assert_cmpuint (a->mapped_size, ==, b->mapped_size);
  g_assert_cmpuint (a->generation, ==, b->generation);
  g_assert_cmpuint (a->map_version, ==, b->map_version);
  g_assert_cmpuint (a->data_offset, ==, b->data_offset);
  g_assert_cmpuint (a->map_offset, ==, b->map_offset);
  g_assert_cmpuint (a->map_slot_bytes, ==, b->map_slot_bytes);
  g_assert_cmpuint (a->al_offset, ==, b->al_offset);
  g_assert_cmpuint (a->al_bytes, ==, b->al_bytes);
  g_assert_cmphex (a->flags, ==, b->flags);
  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    g_assert_cmpuint (a->members[i].member_id, ==, b->members[i].member_id);
    g_assert_cmpuint (a->members[i].state, ==, b->members[i].state);
  }
}

/* Recompute the CRC of a copy after a test changed it. */
static void
fix_crc (uint8_t *buf)
{
  put_le32 (buf + 12, 0);
  put_le32 (buf + 12, rmr_crc32c (0, buf, RMR_SB_SIZE));
}

/* Layout of md.h: copies at 0 and 4096, recent-write record at 64 KiB,
 * map region at 1 MiB sized for 4 KiB chunks, data aligned to 1 MiB.
 */
static void
test_layout (void)
{
  static const struct {
    uint64_t mapped_size, slot, data_offset;
  } cases[] = {
    {512, 4096, 2 * MiB},
    /* 32640 chunks of 4 KiB fill one map page exactly; one more sector
     * needs a second page.
     */
    {32640ULL * 4096, 4096, 2 * MiB},
    {32640ULL * 4096 + 512, 8192, 2 * MiB},
    {100 * MiB, 4096, 2 * MiB},
    {GiB, 36864, 2 * MiB},
    {1024 * GiB, 33689600, 271581184},
    {1ULL << 60, 35322350022656ULL, 282578802180096ULL},
  };
  size_t i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    struct rmr_sb sb;

    memset (&sb, 0, sizeof sb);
    sb.mapped_size = cases[i].mapped_size;
    md_layout (&sb);
    g_assert_cmpuint (sb.al_offset, ==, RMR_AL_OFFSET);
    g_assert_cmpuint (sb.al_bytes, ==, RMR_AL_BYTES);
    g_assert_cmpuint (sb.map_offset, ==, RMR_MAP_OFFSET);
    g_assert_cmpuint (sb.map_slot_bytes, ==, cases[i].slot);
    g_assert_cmpuint (sb.data_offset, ==, cases[i].data_offset);
    g_assert_cmpuint (sb.data_offset % RMR_DATA_ALIGN, ==, 0);
    g_assert_cmpuint (sb.map_offset + RMR_MAX_MEMBERS * sb.map_slot_bytes, <=,
                      sb.data_offset);
    g_assert_cmpuint (md_store_bytes (cases[i].mapped_size), ==,
                      cases[i].data_offset + cases[i].mapped_size);
  }
  /* Too large to add up: saturates, so a size check against it fails. */
  g_assert_cmpuint (md_store_bytes (UINT64_MAX - 511), ==, UINT64_MAX);
}

static void
test_init (void)
{
  struct rmr_sb sb, before;
  size_t i;

  g_assert_cmpint (md_init (&sb, "pool1", 3, GiB), ==, 0);
  g_assert_cmpuint (sb.version, ==, RMR_MD_VERSION);
  g_assert_cmpuint (sb.seq, ==, 0);
  g_assert_cmpstr (sb.pool_name, ==, "pool1");
  g_assert_cmphex (sb.group_id, ==, rmr_group_id ("pool1"));
  g_assert_cmpuint (sb.member_id, ==, 3);
  g_assert_cmpuint (sb.chunk_size, ==, 0);
  g_assert_cmpuint (sb.queue_depth, ==, 0);
  g_assert_cmpuint (sb.mapped_size, ==, GiB);
  g_assert_cmpuint (sb.generation, ==, 0);
  g_assert_cmpuint (sb.map_version, ==, 0);
  g_assert_cmpuint (sb.data_offset, ==, 2 * MiB);
  g_assert_cmpuint (sb.flags, ==, 0);
  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    g_assert_cmpuint (sb.members[i].member_id, ==, RMR_MEMBER_NONE);
    g_assert_cmpuint (sb.members[i].state, ==, RMR_MEMBER_ABSENT);
  }

  /* "" is a store not in a pool yet. */
  g_assert_cmpint (md_init (&sb, "", RMR_MEMBER_NONE, 512), ==, 0);
  g_assert_cmpstr (sb.pool_name, ==, "");
  g_assert_cmphex (sb.group_id, ==, 0xdeadbeef);

  /* Rejections name the field and leave sb alone. */
  make_sb (&before);
  sb = before;
  g_assert_cmpint (md_init (&sb, "bad/name", 1, GiB), ==, -EINVAL);
  g_assert_true (g_str_has_prefix (rmr_get_error (), "pool_name: "));
  g_assert_cmpint (md_init (&sb,
                            "0123456789012345678901234567890123456789"
                            "012345678901234567890123",
                            1, GiB),
                   ==, -EINVAL);
  g_assert_true (g_str_has_prefix (rmr_get_error (), "pool_name: "));
  g_assert_cmpint (md_init (&sb, "pool1", 1, 0), ==, -EINVAL);
  g_assert_true (g_str_has_prefix (rmr_get_error (), "mapped_size 0: "));
  g_assert_cmpint (md_init (&sb, "pool1", 1, 1000), ==, -EINVAL);
  g_assert_true (g_str_has_prefix (rmr_get_error (), "mapped_size 1000: "));
  g_assert_cmpint (md_init (&sb, "pool1", 1, 1ULL << 63), ==, -EINVAL);
  g_assert_cmpint (md_init (&sb, "pool1", 1, UINT64_MAX - 511), ==, -EINVAL);
  g_assert_cmpint (errno, ==, EINVAL);
  assert_sb_equal (&sb, &before);
}

/* Every offset of md.h, read back from the encoded bytes. */
static void
test_encoding (void)
{
  static uint8_t buf[RMR_SB_SIZE], copy[RMR_SB_SIZE];
  struct rmr_sb sb;
  size_t i;

  make_sb (&sb);
  md_encode (&sb, buf);
  g_assert_cmpmem (buf, 8, "RMRSTORE", 8);
  g_assert_cmpuint (get_le32 (buf + 8), ==, RMR_MD_VERSION);
  g_assert_cmpuint (get_le64 (buf + 16), ==, 42);
  g_assert_cmpmem (buf + 24, 6, "pool1", 6);
  for (i = 24 + 5; i < 88; i++)
    g_assert_cmpuint (buf[i], ==, 0);
  g_assert_cmphex (get_le32 (buf + 88), ==, rmr_group_id ("pool1"));
  g_assert_cmpuint (get_le32 (buf + 92), ==, 3);
  g_assert_cmpuint (get_le32 (buf + 96), ==, 128 * 1024);
  g_assert_cmpuint (get_le32 (buf + 100), ==, 128);
  g_assert_cmpuint (get_le64 (buf + 104), ==, GiB);
  g_assert_cmpuint (get_le64 (buf + 112), ==, 7);
  g_assert_cmpuint (get_le64 (buf + 120), ==, 9);
  g_assert_cmpuint (get_le64 (buf + 128), ==, 2 * MiB);
  g_assert_cmpuint (get_le64 (buf + 136), ==, RMR_MAP_OFFSET);
  g_assert_cmpuint (get_le64 (buf + 144), ==, 36864);
  g_assert_cmpuint (get_le64 (buf + 152), ==, RMR_AL_OFFSET);
  g_assert_cmpuint (get_le64 (buf + 160), ==, RMR_AL_BYTES);
  g_assert_cmpuint (get_le32 (buf + 168), ==, RMR_SB_F_RESERVED);
  g_assert_cmpuint (get_le32 (buf + 172), ==, 0);
  g_assert_cmpuint (get_le32 (buf + 176), ==, 3);
  g_assert_cmpuint (get_le32 (buf + 180), ==, RMR_MEMBER_NORMAL);
  g_assert_cmpuint (get_le64 (buf + 184), ==, 0);
  g_assert_cmpuint (get_le32 (buf + 192), ==, 5);
  g_assert_cmpuint (get_le32 (buf + 196), ==, RMR_MEMBER_DIRTY);
  g_assert_cmpuint (get_le32 (buf + 208), ==, 0);
  g_assert_cmpuint (get_le32 (buf + 212), ==, RMR_MEMBER_ABSENT);
  for (i = 3; i < RMR_MAX_MEMBERS; i++) {
    g_assert_cmphex (get_le32 (buf + 176 + 16 * i), ==, RMR_MEMBER_NONE);
    g_assert_cmpuint (get_le32 (buf + 180 + 16 * i), ==, 0);
    g_assert_cmpuint (get_le64 (buf + 184 + 16 * i), ==, 0);
  }
  for (i = 304; i < RMR_SB_SIZE; i++)
    g_assert_cmpuint (buf[i], ==, 0);

  /* The CRC covers the whole block with its own field zeroed. */
  memcpy (copy, buf, sizeof copy);
  put_le32 (copy + 12, 0);
  g_assert_cmphex (get_le32 (buf + 12), ==, rmr_crc32c (0, copy, sizeof copy));
}

static void
test_round_trip (void)
{
  static uint8_t buf[RMR_SB_SIZE], again[RMR_SB_SIZE];
  struct rmr_sb sb, out;
  size_t i;

  make_sb (&sb);
  md_encode (&sb, buf);
  g_assert_cmpint (md_decode (buf, &out), ==, 0);
  assert_sb_equal (&sb, &out);
  md_encode (&out, again);
  g_assert_cmpmem (buf, sizeof buf, again, sizeof again);

  /* A maximal name, every slot used, extreme values. */
  g_assert_cmpint (md_init (&sb,
                            "abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMN"
                            "OPQRSTUVWXYZ.01234567_",
                            RMR_MEMBER_ID_MAX, (1ULL << 60)),
                   ==, 0);
  g_assert_cmpuint (strlen (sb.pool_name), ==, RMR_POOL_NAME_MAX);
  sb.seq = UINT64_MAX;
  sb.chunk_size = RMR_MAX_CHUNK_SIZE;
  sb.queue_depth = RMR_MAX_QUEUE_DEPTH;
  sb.generation = UINT64_MAX;
  sb.map_version = UINT64_MAX;
  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    sb.members[i].member_id = i == 0 ? RMR_MEMBER_ID_MAX : i;
    sb.members[i].state = i % 3;
  }
  md_encode (&sb, buf);
  g_assert_cmpint (md_decode (buf, &out), ==, 0);
  assert_sb_equal (&sb, &out);

  /* A store not in a pool yet, at the smallest chunk size. */
  g_assert_cmpint (md_init (&sb, "", RMR_MEMBER_NONE, 512), ==, 0);
  sb.chunk_size = RMR_MIN_CHUNK_SIZE;
  md_encode (&sb, buf);
  g_assert_cmpint (md_decode (buf, &out), ==, 0);
  assert_sb_equal (&sb, &out);
}

/* Apply a change to a valid copy, fix the CRC, and expect -EBADMSG with a
 * message naming the field.
 */
#define EXPECT_BAD(change, field)                                              \
  do {                                                                         \
    static uint8_t b_[RMR_SB_SIZE];                                            \
    struct rmr_sb o_;                                                          \
    uint8_t *buf = b_;                                                         \
                                                                               \
    md_encode (&good, b_);                                                     \
    change;                                                                    \
    fix_crc (b_);                                                              \
    memset (&o_, 0xa5, sizeof o_);                                             \
    rmr_err_clear ();                                                          \
    g_assert_cmpint (md_decode (b_, &o_), ==, -EBADMSG);                       \
    g_assert_cmpint (rmr_get_errno (), ==, EBADMSG);                           \
    g_test_message ("%s", rmr_get_error ());                                   \
    g_assert_true (g_str_has_prefix (rmr_get_error (), "superblock: " field)); \
    g_assert_cmphex (o_.seq, ==, 0xa5a5a5a5a5a5a5a5);                          \
    (void) buf;                                                                \
  } while (0)

static void
test_reject_fields (void)
{
  struct rmr_sb good;
  uint64_t slot = 36864;

  make_sb (&good);

  EXPECT_BAD (put_le32 (buf + 8, 2), "version 2");
  EXPECT_BAD (put_le32 (buf + 8, 0), "version 0");

  /* pool_name: a bad character, no NUL, junk after the NUL, a name of 64
   * bytes, and a changed name whose group_id no longer matches.
   */
  EXPECT_BAD (buf[25] = '/', "pool_name: 'p/ol1': invalid character");
  EXPECT_BAD (buf[25] = 0x80, "pool_name: 'p?ol1': invalid byte 0x80");
  EXPECT_BAD (memset (buf + 24, 'a', 64), "pool_name: not NUL-terminated");
  EXPECT_BAD (buf[24 + 40] = 'x', "pool_name: bytes after the NUL");
  EXPECT_BAD (buf[24 + 63] = 'x', "pool_name: bytes after the NUL");
  EXPECT_BAD (buf[24] = 'P', "group_id");
  EXPECT_BAD (put_le32 (buf + 88, get_le32 (buf + 88) ^ 1), "group_id");

  EXPECT_BAD (put_le32 (buf + 96, 128 * 1024 + 4096), "chunk_size 135168");
  EXPECT_BAD (put_le32 (buf + 96, 2048), "chunk_size 2048");
  EXPECT_BAD (put_le32 (buf + 96, 128 * 1024 * 1024), "chunk_size");
  EXPECT_BAD (put_le32 (buf + 96, 0x80000000), "chunk_size");
  EXPECT_BAD (put_le32 (buf + 100, RMR_MAX_QUEUE_DEPTH + 1), "queue_depth");

  EXPECT_BAD (put_le64 (buf + 104, 0), "mapped_size 0");
  EXPECT_BAD (put_le64 (buf + 104, GiB + 1), "mapped_size 1073741825");
  EXPECT_BAD (put_le64 (buf + 104, UINT64_MAX - 511), "mapped_size");
  EXPECT_BAD (put_le64 (buf + 104, 1ULL << 63), "mapped_size");
  /* A mapped_size whose layout differs from the stored one. */
  EXPECT_BAD (put_le64 (buf + 104, 2 * GiB), "map_slot_bytes 36864");

  EXPECT_BAD (put_le64 (buf + 128, 3 * MiB), "data_offset 3145728");
  EXPECT_BAD (put_le64 (buf + 128, 0), "data_offset 0");
  EXPECT_BAD (put_le64 (buf + 136, RMR_MAP_OFFSET + 4096), "map_offset");
  EXPECT_BAD (put_le64 (buf + 144, slot + 4096), "map_slot_bytes 40960");
  EXPECT_BAD (put_le64 (buf + 144, slot - 4096), "map_slot_bytes");
  EXPECT_BAD (put_le64 (buf + 152, RMR_AL_OFFSET + 1), "al_offset");
  EXPECT_BAD (put_le64 (buf + 160, RMR_AL_BYTES - 4096), "al_bytes");

  EXPECT_BAD (put_le32 (buf + 168, 0x8), "flags 0x8: unknown flags 0x8");
  EXPECT_BAD (put_le32 (buf + 168, 0x80000001), "flags 0x80000001");
  EXPECT_BAD (buf[172] = 9, "min_legs 9: more than 8 members");
  EXPECT_BAD (buf[175] = 0x80, "min_legs 2147483648");

  /* Member slots: duplicate ids, unknown states, a state in an empty
   * slot, reserved bytes.
   */
  EXPECT_BAD (put_le32 (buf + 192, 3),
              "members[1].member_id 3: also in members[0]");
  EXPECT_BAD (put_le32 (buf + 176 + 16 * 7, 5),
              "members[7].member_id 5: also in members[1]");
  EXPECT_BAD (put_le32 (buf + 180, 3), "members[0].state 3: unknown state");
  EXPECT_BAD (put_le32 (buf + 196, 0xffffffff), "members[1].state");
  EXPECT_BAD (put_le32 (buf + 180 + 16 * 4, RMR_MEMBER_NORMAL),
              "members[4].state 1: not absent in an empty slot");
  EXPECT_BAD (buf[191] = 1, "members[0].since 72057594037927936: beyond");
  EXPECT_BAD (buf[191 + 16 * 7] = 1, "members[7].since");

  /* The unused rest of the block. */
  EXPECT_BAD (buf[304] = 1, "unused byte 304");
  EXPECT_BAD (buf[2000] = 0xff, "unused byte 2000");
  EXPECT_BAD (buf[4095] = 1, "unused byte 4095");

  /* The CRC itself (no fix-up here). */
  {
    static uint8_t b[RMR_SB_SIZE];
    struct rmr_sb o;

    md_encode (&good, b);
    b[3000] ^= 1;
    g_assert_cmpint (md_decode (b, &o), ==, -EBADMSG);
    g_assert_true (g_str_has_prefix (rmr_get_error (), "superblock: crc "));
    g_assert_nonnull (strstr (rmr_get_error (), "checksum mismatch"));
    md_encode (&good, b);
    b[12] ^= 0x10;
    g_assert_cmpint (md_decode (b, &o), ==, -EBADMSG);
  }
}

/* Fields that take any value decode and round-trip after a change. */
static void
test_free_fields (void)
{
  static const size_t offsets[] = {16, 23, 92, 95, 112, 119, 120, 127};
  static uint8_t buf[RMR_SB_SIZE], again[RMR_SB_SIZE];
  struct rmr_sb good, out;
  size_t i;

  make_sb (&good);
  for (i = 0; i < G_N_ELEMENTS (offsets); i++) {
    md_encode (&good, buf);
    buf[offsets[i]] ^= 0x5a;
    fix_crc (buf);
    g_assert_cmpint (md_decode (buf, &out), ==, 0);
    md_encode (&out, again);
    g_assert_cmpmem (buf, sizeof buf, again, sizeof again);
  }
}

/* Every single-bit flip: caught by the CRC (or, in the magic, reported as
 * no metadata).  With the CRC fixed up, the copy is either refused or
 * decodes to a superblock that encodes back to exactly the same bytes:
 * no byte is ignored.
 */
static void
test_bit_flips (void)
{
  static uint8_t buf[RMR_SB_SIZE], again[RMR_SB_SIZE];
  struct rmr_sb good, out;
  unsigned accepted = 0;
  size_t i;
  int bit, r;

  make_sb (&good);
  for (i = 0; i < RMR_SB_SIZE; i++)
    for (bit = 0; bit < 8; bit++) {
      md_encode (&good, buf);
      buf[i] ^= 1 << bit;
      r = md_decode (buf, &out);
      g_assert_cmpint (r, ==, i < 8 ? -ENODATA : -EBADMSG);

      fix_crc (buf);
      r = md_decode (buf, &out);
      if (i < 8)
        g_assert_cmpint (r, ==, -ENODATA);
      else if (r == 0) {
        accepted++;
        md_encode (&out, again);
        g_assert_cmpmem (buf, sizeof buf, again, sizeof again);
      }
      else
        g_assert_cmpint (r, ==, -EBADMSG);
    }
  g_test_message ("%u of %u bit flips decode (free fields)", accepted,
                  RMR_SB_SIZE * 8);
  /* seq, member_id, generation, map_version: 224 bits; and a few more
   * (flags bit 0, member ids and states that stay valid).
   */
  g_assert_cmpuint (accepted, >=, 224);
  g_assert_cmpuint (accepted, <, 600);
}

static void
test_no_magic (void)
{
  uint8_t buf[RMR_SB_SIZE];
  struct rmr_sb sb, good;

  memset (buf, 0, sizeof buf);
  g_assert_cmpint (md_decode (buf, &sb), ==, -ENODATA);
  g_assert_cmpint (rmr_get_errno (), ==, ENODATA);
  memset (buf, 0xff, sizeof buf);
  g_assert_cmpint (md_decode (buf, &sb), ==, -ENODATA);

  make_sb (&good);
  md_encode (&good, buf);
  memcpy (buf, "RMRSTORF", 8);
  g_assert_cmpint (md_decode (buf, &sb), ==, -ENODATA);
}

/* A temporary file, already unlinked, of size bytes. */
static int
tmp_file (off_t size)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *path = NULL;
  int fd;

  fd = g_file_open_tmp ("test-md-XXXXXX", &path, &err);
  g_assert_no_error (err);
  g_assert_cmpint (unlink (path), ==, 0);
  g_assert_cmpint (ftruncate (fd, size), ==, 0);
  return fd;
}

static void
read_copy (int fd, int copy, uint8_t *buf)
{
  g_assert_cmpint (pread (fd, buf, RMR_SB_SIZE, copy * RMR_SB_SIZE), ==,
                   RMR_SB_SIZE);
}

static void
write_copy (int fd, int copy, const uint8_t *buf)
{
  g_assert_cmpint (pwrite (fd, buf, RMR_SB_SIZE, copy * RMR_SB_SIZE), ==,
                   RMR_SB_SIZE);
}

static void
test_file_fresh (void)
{
  struct rmr_sb sb;
  int fd, which = 7;

  /* Empty file, shorter than both copies, zeroed device. */
  fd = tmp_file (0);
  g_assert_cmpint (md_read (fd, &sb, &which), ==, -ENODATA);
  g_assert_cmpint (which, ==, 7);
  close (fd);
  fd = tmp_file (5000);
  g_assert_cmpint (md_read (fd, &sb, NULL), ==, -ENODATA);
  close (fd);
  fd = tmp_file (4 * MiB);
  g_assert_cmpint (md_read (fd, &sb, NULL), ==, -ENODATA);
  g_assert_cmpint (rmr_get_errno (), ==, ENODATA);
  g_assert_nonnull (rmr_get_error ());
  close (fd);
}

/* seq 1 goes to copy 1, seq 2 to copy 0, and so on; the other copy keeps
 * the previous superblock.
 */
static void
test_file_alternate (void)
{
  uint8_t raw[RMR_SB_SIZE];
  struct rmr_sb sb, out;
  int fd, which, i;

  fd = tmp_file (4 * MiB);
  make_sb (&sb);
  sb.seq = 0;
  for (i = 1; i <= 5; i++) {
    sb.generation = 100 + i;
    g_assert_cmpint (md_write (fd, &sb), ==, 0);
    g_assert_cmpuint (sb.seq, ==, i);

    which = -1;
    g_assert_cmpint (md_read (fd, &out, &which), ==, 0);
    g_assert_cmpint (which, ==, i % 2);
    assert_sb_equal (&sb, &out);

    read_copy (fd, i % 2, raw);
    g_assert_cmpuint (get_le64 (raw + 16), ==, i);
    g_assert_cmpuint (get_le64 (raw + 112), ==, 100 + i);
    if (i > 1) {
      read_copy (fd, (i + 1) % 2, raw);
      g_assert_cmpuint (get_le64 (raw + 16), ==, i - 1);
      g_assert_cmpuint (get_le64 (raw + 112), ==, 100 + i - 1);
    }
  }
  /* Only the two superblock blocks were written. */
  {
    uint8_t *rest = g_malloc (64 * 1024);

    g_assert_cmpint (pread (fd, rest, 64 * 1024, 2 * RMR_SB_SIZE), ==,
                     64 * 1024);
    for (i = 0; i < 64 * 1024; i++)
      g_assert_cmpuint (rest[i], ==, 0);
    g_free (rest);
  }
  close (fd);
}

/* A torn write of the newer copy: the older one is used, and the next
 * write replaces the torn copy, not the good one.
 */
static void
test_file_torn (void)
{
  uint8_t raw[RMR_SB_SIZE];
  struct rmr_sb sb, out;
  int fd, which;

  fd = tmp_file (4 * MiB);
  make_sb (&sb);
  sb.seq = 0;
  sb.generation = 1;
  g_assert_cmpint (md_write (fd, &sb), ==, 0); /* seq 1, copy 1 */
  sb.generation = 2;
  g_assert_cmpint (md_write (fd, &sb), ==, 0); /* seq 2, copy 0 */

  /* Half of copy 0 from a later write that never finished. */
  read_copy (fd, 0, raw);
  put_le64 (raw + 16, 3);
  put_le64 (raw + 112, 3);
  memset (raw + 2048, 0x77, 2048);
  write_copy (fd, 0, raw);

  which = -1;
  g_assert_cmpint (md_read (fd, &out, &which), ==, 0);
  g_assert_cmpint (which, ==, 1);
  g_assert_cmpuint (out.seq, ==, 1);
  g_assert_cmpuint (out.generation, ==, 1);

  /* Carry on from what was read: seq 2 overwrites the torn copy 0. */
  out.generation = 4;
  g_assert_cmpint (md_write (fd, &out), ==, 0);
  g_assert_cmpuint (out.seq, ==, 2);
  g_assert_cmpint (md_read (fd, &sb, &which), ==, 0);
  g_assert_cmpint (which, ==, 0);
  g_assert_cmpuint (sb.generation, ==, 4);
  read_copy (fd, 1, raw);
  g_assert_cmpuint (get_le64 (raw + 16), ==, 1);

  /* A copy torn into zeroes (no magic) beside a good one is fine too. */
  memset (raw, 0, sizeof raw);
  write_copy (fd, 0, raw);
  g_assert_cmpint (md_read (fd, &sb, &which), ==, 0);
  g_assert_cmpint (which, ==, 1);
  g_assert_cmpuint (sb.seq, ==, 1);
  close (fd);
}

/* The valid copy with the highest seq wins, whichever slot it is in. */
static void
test_file_highest_seq (void)
{
  uint8_t raw[RMR_SB_SIZE];
  struct rmr_sb sb, out;
  int fd, which;

  fd = tmp_file (4 * MiB);
  make_sb (&sb);
  sb.seq = 10;
  md_encode (&sb, raw);
  write_copy (fd, 1, raw);
  sb.seq = 9;
  md_encode (&sb, raw);
  write_copy (fd, 0, raw);
  g_assert_cmpint (md_read (fd, &out, &which), ==, 0);
  g_assert_cmpint (which, ==, 1);
  g_assert_cmpuint (out.seq, ==, 10);

  sb.seq = 11;
  md_encode (&sb, raw);
  write_copy (fd, 0, raw);
  g_assert_cmpint (md_read (fd, &out, &which), ==, 0);
  g_assert_cmpint (which, ==, 0);
  g_assert_cmpuint (out.seq, ==, 11);
  close (fd);
}

static void
test_file_both_bad (void)
{
  uint8_t raw[RMR_SB_SIZE];
  struct rmr_sb sb, out;
  const char *msg;
  int fd, which = 7;

  fd = tmp_file (4 * MiB);
  make_sb (&sb);
  sb.seq = 0;
  g_assert_cmpint (md_write (fd, &sb), ==, 0);
  g_assert_cmpint (md_write (fd, &sb), ==, 0);

  read_copy (fd, 0, raw);
  raw[1000] ^= 1;
  write_copy (fd, 0, raw);
  read_copy (fd, 1, raw);
  put_le32 (raw + 96, 3000);
  fix_crc (raw);
  write_copy (fd, 1, raw);

  memset (&out, 0xa5, sizeof out);
  g_assert_cmpint (md_read (fd, &out, &which), ==, -EBADMSG);
  g_assert_cmpint (which, ==, 7);
  g_assert_cmpuint (out.seq, ==, 0xa5a5a5a5a5a5a5a5);
  msg = rmr_get_error ();
  g_test_message ("%s", msg);
  g_assert_nonnull (strstr (msg, "copy 0: crc"));
  g_assert_nonnull (strstr (msg, "copy 1: chunk_size 3000"));
  g_assert_null (strchr (msg, '\n'));

  /* One copy without magic, the other damaged: still damaged metadata,
   * not a fresh device.
   */
  memset (raw, 0, sizeof raw);
  write_copy (fd, 0, raw);
  g_assert_cmpint (md_read (fd, &out, NULL), ==, -EBADMSG);
  g_assert_nonnull (strstr (rmr_get_error (), "copy 0: no rmr superblock"));
  close (fd);
}

static void
test_file_wipe (void)
{
  struct rmr_sb sb, out;
  int fd;

  fd = tmp_file (4 * MiB);
  make_sb (&sb);
  g_assert_cmpint (md_write (fd, &sb), ==, 0);
  g_assert_cmpint (md_write (fd, &sb), ==, 0);
  g_assert_cmpint (md_read (fd, &out, NULL), ==, 0);
  g_assert_cmpint (md_wipe (fd), ==, 0);
  g_assert_cmpint (md_read (fd, &out, NULL), ==, -ENODATA);
  /* Wiping a store with no metadata is fine too. */
  g_assert_cmpint (md_wipe (fd), ==, 0);
  g_assert_cmpint (md_read (fd, &out, NULL), ==, -ENODATA);
  close (fd);
}

/* md_write refuses a superblock that md_read would not accept, and
 * leaves both the disk and sb->seq as they were.
 */
static void
test_file_refuse_invalid (void)
{
  uint8_t raw[RMR_SB_SIZE];
  struct rmr_sb sb, out;
  int fd;

  fd = tmp_file (4 * MiB);
  make_sb (&sb);
  sb.seq = 0;
  g_assert_cmpint (md_write (fd, &sb), ==, 0);

  sb.chunk_size = 1000;
  g_assert_cmpint (md_write (fd, &sb), ==, -EINVAL);
  g_assert_cmpuint (sb.seq, ==, 1);
  g_assert_nonnull (strstr (rmr_get_error (), "chunk_size 1000"));
  read_copy (fd, 0, raw);
  g_assert_cmpuint (get_le64 (raw), ==, 0);

  sb.chunk_size = 4096;
  sb.data_offset += 4096;
  g_assert_cmpint (md_write (fd, &sb), ==, -EINVAL);
  g_assert_nonnull (strstr (rmr_get_error (), "data_offset"));
  md_layout (&sb);
  g_assert_cmpint (md_write (fd, &sb), ==, 0);
  g_assert_cmpuint (sb.seq, ==, 2);
  g_assert_cmpint (md_read (fd, &out, NULL), ==, 0);
  assert_sb_equal (&sb, &out);
  close (fd);
}

/* A failed write leaves sb->seq alone, so a retry targets the same copy
 * and the last good copy is never overwritten.
 */
static void
test_file_io_errors (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *path = NULL;
  struct rmr_sb sb, out;
  int fd, rdonly, wronly;

  fd = g_file_open_tmp ("test-md-XXXXXX", &path, &err);
  g_assert_no_error (err);
  g_assert_cmpint (ftruncate (fd, 4 * MiB), ==, 0);
  rdonly = open (path, O_RDONLY | O_CLOEXEC);
  wronly = open (path, O_WRONLY | O_CLOEXEC);
  g_assert_cmpint (rdonly, >=, 0);
  g_assert_cmpint (wronly, >=, 0);
  unlink (path);

  make_sb (&sb);
  sb.seq = 4;
  g_assert_cmpint (md_write (rdonly, &sb), ==, -EBADF);
  g_assert_cmpuint (sb.seq, ==, 4);
  g_assert_true (
    g_str_has_prefix (rmr_get_error (), "writing superblock copy 1: "));
  g_assert_cmpint (md_wipe (rdonly), ==, -EBADF);
  g_assert_cmpint (md_read (wronly, &out, NULL), ==, -EBADF);
  g_assert_true (
    g_str_has_prefix (rmr_get_error (), "reading the superblock: "));
  g_assert_cmpint (md_read (-1, &out, NULL), ==, -EBADF);

  g_assert_cmpint (md_write (wronly, &sb), ==, 0);
  g_assert_cmpuint (sb.seq, ==, 5);

  /* The last seq: incrementing it would wrap and make the older copy win. */
  sb.seq = UINT64_MAX;
  g_assert_cmpint (md_write (wronly, &sb), ==, -EOVERFLOW);
  g_assert_cmpuint (sb.seq, ==, UINT64_MAX);
  sb.seq = 5;
  g_assert_cmpint (md_read (rdonly, &out, NULL), ==, 0);
  g_assert_cmpuint (out.seq, ==, 5);
  close (rdonly);
  close (wronly);
  close (fd);
}

/* The store may hand md_* an O_DIRECT descriptor: aligned buffers and
 * whole blocks make that work.  Skipped where the file system refuses
 * O_DIRECT (tmpfs on older kernels).
 */
static void
test_file_odirect (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *path = NULL;
  struct rmr_sb sb, out;
  int fd, dfd, which;

  fd = g_file_open_tmp ("test-md-XXXXXX", &path, &err);
  g_assert_no_error (err);
  g_assert_cmpint (ftruncate (fd, 4 * MiB), ==, 0);
  dfd = open (path, O_RDWR | O_DIRECT | O_CLOEXEC);
  unlink (path);
  close (fd);
  if (dfd < 0) {
    g_test_skip ("O_DIRECT not supported in the temporary directory");
    return;
  }
  g_assert_cmpint (md_read (dfd, &out, NULL), ==, -ENODATA);
  make_sb (&sb);
  sb.seq = 0;
  g_assert_cmpint (md_write (dfd, &sb), ==, 0);
  g_assert_cmpint (md_write (dfd, &sb), ==, 0);
  g_assert_cmpint (md_read (dfd, &out, &which), ==, 0);
  g_assert_cmpint (which, ==, 0);
  assert_sb_equal (&sb, &out);
  g_assert_cmpint (md_wipe (dfd), ==, 0);
  g_assert_cmpint (md_read (dfd, &out, NULL), ==, -ENODATA);
  close (dfd);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/md/layout", test_layout);
  g_test_add_func ("/md/init", test_init);
  g_test_add_func ("/md/encoding", test_encoding);
  g_test_add_func ("/md/round-trip", test_round_trip);
  g_test_add_func ("/md/reject-fields", test_reject_fields);
  g_test_add_func ("/md/free-fields", test_free_fields);
  g_test_add_func ("/md/bit-flips", test_bit_flips);
  g_test_add_func ("/md/no-magic", test_no_magic);
  g_test_add_func ("/md/file/fresh", test_file_fresh);
  g_test_add_func ("/md/file/alternate", test_file_alternate);
  g_test_add_func ("/md/file/torn", test_file_torn);
  g_test_add_func ("/md/file/highest-seq", test_file_highest_seq);
  g_test_add_func ("/md/file/both-bad", test_file_both_bad);
  g_test_add_func ("/md/file/wipe", test_file_wipe);
  g_test_add_func ("/md/file/refuse-invalid", test_file_refuse_invalid);
  g_test_add_func ("/md/file/io-errors", test_file_io_errors);
  g_test_add_func ("/md/file/odirect", test_file_odirect);
  return g_test_run ();
}
