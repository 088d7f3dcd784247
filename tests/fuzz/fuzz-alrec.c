/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the recent-write record decoder (common/alrec.c).
 *
 * Each input is up to two 4096-byte record copies (zero-padded).  Copy 0
 * is decoded as given and again with its magic forced and its CRC fixed
 * up, so the fuzzer gets past the checksum to every field check.  Both
 * copies then go through rmr_alrec_read () on a memfd.  Invariants:
 *   - rmr_alrec_decode () returns 0, -ENODATA or -EBADMSG with a one-line
 *     message, and leaves *rec untouched on failure;
 *   - a copy that decodes encodes back to exactly the same 4096 bytes;
 *   - rmr_alrec_read () picks a copy that decodes, with the highest seq,
 *     -ENODATA only when both are all zero, -EBADMSG when neither decodes.
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alrec.h"
#include "crc32c.h"
#include "error.h"
#include "fuzz.h"
#include "util.h"

/* Decode one copy and check the invariants; returns the decoder's result. */
static int
decode_one (const uint8_t *buf, struct rmr_alrec *rec, GArray *ext)
{
  static uint8_t again[RMR_ALREC_BLOCK];
  struct rmr_alrec untouched;
  int r;

  memset (rec, 0xa5, sizeof *rec);
  memset (&untouched, 0xa5, sizeof untouched);
  r = rmr_alrec_decode (buf, rec, ext);
  if (r < 0) {
    assert (r == -ENODATA || r == -EBADMSG);
    fuzz_check_message (r);
    assert (memcmp (rec, &untouched, sizeof untouched) == 0);
    return r;
  }
  assert (ext->len <= RMR_ALREC_MAX_EXTENTS);
  assert (rec->shift >= 12 && rec->shift <= 40);
  rmr_alrec_encode (rec, (const uint32_t *) ext->data, ext->len, again);
  assert (memcmp (buf, again, RMR_ALREC_BLOCK) == 0);
  return 0;
}

static int memfd = -1;

static void
check_read (const uint8_t *copies)
{
  g_autoptr (GArray) e0 = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  g_autoptr (GArray) e1 = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  g_autoptr (GArray) e = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  struct rmr_alrec d0, d1, rec;
  int r0, r1, r;

  r0 = decode_one (copies, &d0, e0);
  r1 = decode_one (copies + RMR_ALREC_BLOCK, &d1, e1);
  if (memfd < 0) {
    memfd = memfd_create ("fuzz-alrec", MFD_CLOEXEC);
    assert (memfd >= 0);
  }
  assert (ftruncate (memfd, 0) == 0);
  assert (pwrite (memfd, copies, 2 * RMR_ALREC_BLOCK, 4096) ==
          2 * RMR_ALREC_BLOCK);

  r = rmr_alrec_read (memfd, 4096, &rec, e);
  if (r0 < 0 && r1 < 0) {
    assert (r == (r0 == -ENODATA && r1 == -ENODATA ? -ENODATA : -EBADMSG));
    fuzz_check_message (r);
    return;
  }
  assert (r == 0);
  if (r1 == 0 && (r0 < 0 || d1.seq > d0.seq)) {
    assert (memcmp (&rec, &d1, sizeof rec) == 0);
    assert (e->len == e1->len);
    assert (e->len == 0 ||
            memcmp (e->data, e1->data, 4 * (size_t) e->len) == 0);
  }
  else {
    assert (memcmp (&rec, &d0, sizeof rec) == 0);
    assert (e->len == e0->len);
    assert (e->len == 0 ||
            memcmp (e->data, e0->data, 4 * (size_t) e->len) == 0);
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static uint8_t copies[2 * RMR_ALREC_BLOCK];
  static uint8_t buf[RMR_ALREC_BLOCK];
  g_autoptr (GArray) ext = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  struct rmr_alrec rec;

  memset (copies, 0, sizeof copies);
  memcpy (copies, data, MIN (size, sizeof copies));

  /* Magic forced and CRC fixed up: every field check is reachable. */
  memcpy (buf, copies, RMR_ALREC_BLOCK);
  memcpy (buf, RMR_ALREC_MAGIC, 8);
  put_le32 (buf + 8, 0);
  put_le32 (buf + 8, rmr_crc32c (0, buf, RMR_ALREC_BLOCK));
  decode_one (buf, &rec, ext);

  check_read (copies);
  return 0;
}

void
fuzz_builtin (void)
{
  static uint8_t in[2 * RMR_ALREC_BLOCK];
  struct rmr_alrec rec = {.seq = 7, .shift = 22, .writes = 1000};
  uint32_t ext[3] = {0, 5, 4000000};
  size_t i;

  memset (in, 0, sizeof in);
  fuzz_input (in, 0);
  fuzz_input (in, sizeof in);

  memcpy (rec.boot_id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", 36);
  rmr_alrec_encode (&rec, ext, 3, in);
  rec.seq = 8;
  rec.flags = RMR_ALREC_F_CLEAN;
  rmr_alrec_encode (&rec, NULL, 0, in + RMR_ALREC_BLOCK);
  fuzz_input (in, sizeof in);
  fuzz_input (in, RMR_ALREC_BLOCK);

  /* Every byte of the first copy changed in turn. */
  for (i = 0; i < 200; i += 3) {
    in[i] ^= 0x41;
    fuzz_input (in, sizeof in);
    in[i] ^= 0x41;
  }
}
