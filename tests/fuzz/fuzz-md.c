/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the superblock decoder (common/md.c).
 *
 * Each input is up to two 4096-byte superblock copies (zero-padded).
 * Copy 0 is decoded three ways: as given; with its CRC fixed up; and with
 * the magic and version forced and the CRC fixed up, so the fuzzer gets
 * past the checksum to every field check.  Both copies then go through
 * md_read () on a memfd.  Invariants checked:
 *   - md_decode () returns 0, -ENODATA or -EBADMSG, with a one-line message
 *     and *sb untouched on failure;
 *   - a copy that decodes encodes back to exactly the same 4096 bytes, and
 *     its layout matches md_layout () and fits in off_t;
 *   - md_read () picks a copy that decodes, with the highest seq, and
 *     returns -ENODATA only if neither copy has the magic;
 *   - md_write () of what md_read () returned is read back identically
 *     from copy seq % 2 (or refused with -EOVERFLOW at the last seq).
 *
 * The 4 KiB buffers are static (the target runs on one thread) to keep
 * stack frames under -Wframe-larger-than.
 *
 * Built with clang -fsanitize=fuzzer, libFuzzer's main () drives it;
 * without libFuzzer, the weak main () of fuzz-main.c replays files or the
 * built-in inputs of fuzz_builtin () below (tests/fuzz/README).
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crc32c.h"
#include "error.h"
#include "fuzz.h"
#include "md.h"
#include "util.h"

static void
fix_crc (uint8_t *buf)
{
  put_le32 (buf + 12, 0);
  put_le32 (buf + 12, rmr_crc32c (0, buf, RMR_SB_SIZE));
}

static bool
sb_equal (const struct rmr_sb *a, const struct rmr_sb *b)
{
  static uint8_t ea[RMR_SB_SIZE], eb[RMR_SB_SIZE];

  /* The encoding covers every field (the round trip shows it). */
  md_encode (a, ea);
  md_encode (b, eb);
  return memcmp (ea, eb, RMR_SB_SIZE) == 0;
}

/* Decode one copy and check the invariants; returns md_decode's result. */
static int
decode_one (const uint8_t *buf, struct rmr_sb *sb)
{
  static uint8_t again[RMR_SB_SIZE];
  struct rmr_sb layout;
  int r;

  memset (sb, 0xa5, sizeof *sb);
  r = md_decode (buf, sb);
  if (r < 0) {
    struct rmr_sb untouched;

    assert (r == -ENODATA || r == -EBADMSG);
    fuzz_check_message (r);
    memset (&untouched, 0xa5, sizeof untouched);
    assert (memcmp (sb, &untouched, sizeof untouched) == 0);
    return r;
  }

  md_encode (sb, again);
  assert (memcmp (buf, again, RMR_SB_SIZE) == 0);
  assert (strlen (sb->pool_name) <= RMR_POOL_NAME_MAX);
  layout = *sb;
  md_layout (&layout);
  assert (layout.data_offset == sb->data_offset);
  assert (layout.map_slot_bytes == sb->map_slot_bytes);
  assert (sb->mapped_size > 0 && sb->mapped_size % 512 == 0);
  assert (md_store_bytes (sb->mapped_size) <= (uint64_t) INT64_MAX);
  assert (sb->data_offset >=
          sb->map_offset + RMR_MAX_MEMBERS * sb->map_slot_bytes);
  return 0;
}

static int memfd = -1;

static void
check_read_write (const uint8_t *copies)
{
  struct rmr_sb d[2], sb, back;
  int rd[2], r, which = -1, which2 = -1, i;

  for (i = 0; i < 2; i++)
    rd[i] = decode_one (copies + i * RMR_SB_SIZE, &d[i]);

  if (memfd < 0) {
    memfd = memfd_create ("fuzz-md", MFD_CLOEXEC);
    assert (memfd >= 0);
  }
  assert (ftruncate (memfd, 0) == 0);
  assert (pwrite (memfd, copies, 2 * RMR_SB_SIZE, 0) == 2 * RMR_SB_SIZE);

  r = md_read (memfd, &sb, &which);
  if (rd[0] < 0 && rd[1] < 0) {
    assert (r ==
            (rd[0] == -ENODATA && rd[1] == -ENODATA ? -ENODATA : -EBADMSG));
    fuzz_check_message (r);
    assert (which == -1);
    return;
  }
  assert (r == 0);
  assert (which == 0 || which == 1);
  assert (rd[which] == 0);
  assert (sb_equal (&sb, &d[which]));
  if (rd[!which] == 0)
    assert (d[!which].seq <= sb.seq);

  /* Persist it again and read it back: the next seq, in copy seq % 2. */
  if (sb.seq == UINT64_MAX) {
    assert (md_write (memfd, &sb) == -EOVERFLOW);
    assert (sb.seq == UINT64_MAX);
    return;
  }
  r = md_write (memfd, &sb);
  assert (r == 0);
  r = md_read (memfd, &back, &which2);
  assert (r == 0);
  assert (sb_equal (&sb, &back));
  assert (which2 == (int) (sb.seq % 2));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static uint8_t copies[2 * RMR_SB_SIZE];
  static uint8_t buf[RMR_SB_SIZE];
  struct rmr_sb sb;

  memset (copies, 0, sizeof copies);
  memcpy (copies, data, MIN (size, sizeof copies));

  /* As given: almost always stopped by the magic or the CRC. */
  decode_one (copies, &sb);

  /* CRC fixed up: every field check is reachable. */
  memcpy (buf, copies, RMR_SB_SIZE);
  fix_crc (buf);
  decode_one (buf, &sb);

  /* Magic and version forced too. */
  memcpy (buf, RMR_SB_MAGIC, 8);
  put_le32 (buf + 8, RMR_MD_VERSION);
  fix_crc (buf);
  decode_one (buf, &sb);

  check_read_write (copies);
  return 0;
}

void
fuzz_builtin (void)
{
  static uint8_t in[2 * RMR_SB_SIZE];
  struct rmr_sb sb;
  size_t i;

  memset (in, 0, sizeof in);
  fuzz_input (in, 0);
  fuzz_input (in, sizeof in);

  if (md_init (&sb, "pool1", 1, 1024 * 1024 * 1024) != 0)
    abort ();
  sb.seq = 2;
  md_encode (&sb, in);
  sb.seq = 1;
  md_encode (&sb, in + RMR_SB_SIZE);
  fuzz_input (in, sizeof in);
  fuzz_input (in, RMR_SB_SIZE);

  /* Every byte of the first copy changed in turn. */
  for (i = 0; i < RMR_SB_SIZE; i += 7) {
    in[i] ^= 0x41;
    fuzz_input (in, sizeof in);
    in[i] ^= 0x41;
  }
}
