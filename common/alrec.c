/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recent-write record's on-disk format (alrec.h). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "alrec.h"
#include "crc32c.h"
#include "error.h"
#include "fdio.h"
#include "util.h"

#define OFF_CRC 8
#define OFF_N 12
#define OFF_SEQ 16
#define OFF_SHIFT 24
#define OFF_FLAGS 28
#define OFF_WRITES 32
#define OFF_BOOT_ID 40
#define OFF_EXTENTS 80

void
rmr_boot_id (uint8_t *out)
{
  g_autofree char *text = NULL;

  memset (out, 0, RMR_ALREC_BOOT_ID_LEN);
  if (g_file_get_contents ("/proc/sys/kernel/random/boot_id", &text, NULL,
                           NULL)) {
    g_strstrip (text);
    memcpy (out, text, MIN (strlen (text), RMR_ALREC_BOOT_ID_LEN));
  }
}

void
rmr_alrec_encode (const struct rmr_alrec *rec, const uint32_t *extents,
                  uint32_t n, uint8_t *buf)
{
  uint32_t i;

  g_assert (n <= RMR_ALREC_MAX_EXTENTS);
  memset (buf, 0, RMR_ALREC_BLOCK);
  memcpy (buf, RMR_ALREC_MAGIC, 8);
  put_le32 (buf + OFF_N, n);
  put_le64 (buf + OFF_SEQ, rec->seq);
  put_le32 (buf + OFF_SHIFT, rec->shift);
  put_le32 (buf + OFF_FLAGS, rec->flags);
  put_le64 (buf + OFF_WRITES, rec->writes);
  memcpy (buf + OFF_BOOT_ID, rec->boot_id, RMR_ALREC_BOOT_ID_LEN);
  for (i = 0; i < n; i++)
    put_le32 (buf + OFF_EXTENTS + 4 * i, extents[i]);
  put_le32 (buf + OFF_CRC, rmr_crc32c (0, buf, RMR_ALREC_BLOCK));
}

static uint32_t
crc_of (const uint8_t *buf)
{
  uint8_t copy[RMR_ALREC_BLOCK];

  memcpy (copy, buf, RMR_ALREC_BLOCK);
  put_le32 (copy + OFF_CRC, 0);
  return rmr_crc32c (0, copy, RMR_ALREC_BLOCK);
}

int
rmr_alrec_decode (const uint8_t *buf, struct rmr_alrec *rec, GArray *extents)
{
  uint32_t n, shift, flags, i;

  for (i = 0; i < RMR_ALREC_BLOCK && !buf[i]; i++)
    ;
  if (i == RMR_ALREC_BLOCK)
    return rmr_err (ENODATA, "recent-write record: never written");
  if (memcmp (buf, RMR_ALREC_MAGIC, 8) != 0)
    return rmr_err (EBADMSG, "recent-write record: magic: not %s",
                    RMR_ALREC_MAGIC);
  if (crc_of (buf) != get_le32 (buf + OFF_CRC))
    return rmr_err (EBADMSG, "recent-write record: crc32c: mismatch");
  n = get_le32 (buf + OFF_N);
  shift = get_le32 (buf + OFF_SHIFT);
  flags = get_le32 (buf + OFF_FLAGS);
  if (n > RMR_ALREC_MAX_EXTENTS)
    return rmr_err (EBADMSG,
                    "recent-write record: n %" PRIu32 ": more than %d extents",
                    n, RMR_ALREC_MAX_EXTENTS);
  if (shift < 12 || shift > 40)
    return rmr_err (
      EBADMSG, "recent-write record: extent_shift %" PRIu32 ": not in 12..40",
      shift);
  if (flags & ~(RMR_ALREC_F_CLEAN | RMR_ALREC_F_SUSPECT))
    return rmr_err (EBADMSG,
                    "recent-write record: flags 0x%" PRIx32 ": unknown flags",
                    flags);
  for (i = OFF_EXTENTS + 4 * n; i < RMR_ALREC_BLOCK; i++)
    if (buf[i])
      return rmr_err (EBADMSG,
                      "recent-write record: byte %" PRIu32 " after the %" PRIu32
                      " extents: not zero",
                      i, n);

  rec->seq = get_le64 (buf + OFF_SEQ);
  rec->shift = shift;
  rec->flags = flags;
  rec->writes = get_le64 (buf + OFF_WRITES);
  memcpy (rec->boot_id, buf + OFF_BOOT_ID, RMR_ALREC_BOOT_ID_LEN);
  g_array_set_size (extents, 0);
  for (i = 0; i < n; i++) {
    uint32_t e = get_le32 (buf + OFF_EXTENTS + 4 * i);
    g_array_append_val (extents, e);
  }
  return 0;
}

int
rmr_alrec_read (int fd, uint64_t off, struct rmr_alrec *rec, GArray *extents)
{
  g_autofree uint8_t *buf = g_malloc (2 * RMR_ALREC_BLOCK);
  g_autoptr (GArray) e1 = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  struct rmr_alrec r1;
  int d0, d1, r;

  r = rmr_pread_full (fd, buf, 2 * RMR_ALREC_BLOCK, off);
  if (r < 0)
    return rmr_err (-r, "reading the recent-write record: %s", strerror (-r));
  d0 = rmr_alrec_decode (buf, rec, extents);
  d1 = rmr_alrec_decode (buf + RMR_ALREC_BLOCK, &r1, e1);
  if (d0 == -ENODATA && d1 == -ENODATA)
    return rmr_err (ENODATA, "recent-write record: never written");
  if (d0 < 0 && d1 < 0)
    return rmr_err (EBADMSG, "recent-write record: both copies damaged");
  if (d1 == 0 && (d0 < 0 || r1.seq > rec->seq)) {
    *rec = r1;
    g_array_set_size (extents, 0);
    g_array_append_vals (extents, e1->data, e1->len);
  }
  return 0;
}
