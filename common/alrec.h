/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* On-disk format of a store's recent-write record (DESIGN 6 and 7): the
 * extents of the data area that writes have touched since the store was
 * last durable and clean.  The daemon keeps it (rmr-storaged/al.c);
 * rmradm store-info reads it.
 *
 * Two 4 KiB copies at al_offset and al_offset + 4096, written alternately
 * by seq (copy seq % 2), each with a CRC-32C; the valid copy with the
 * highest seq is in force.  One copy (little-endian, unused bytes zero):
 *
 *   0  u8[8]  magic "RMRAL001"     24 u32 extent_shift (12..40)
 *   8  u32    crc32c (field 0)     28 u32 flags (RMR_ALREC_F_*)
 *   12 u32    n                    32 u64 writes (admitted, a tie-breaker)
 *   16 u64    seq                  40 u8[40] boot id of the writer's kernel
 *                                  80 u32 extents[n]
 */
#ifndef RMR_ALREC_H
#define RMR_ALREC_H

#include <stdint.h>

#include <glib.h>

#define RMR_ALREC_MAGIC "RMRAL001"
#define RMR_ALREC_BLOCK 4096
#define RMR_ALREC_BOOT_ID_LEN 40
#define RMR_ALREC_MAX_EXTENTS 1004 /* (4096 - 80) / 4 */
#define RMR_ALREC_F_CLEAN 0x1      /* saved at a clean stop */
#define RMR_ALREC_F_SUSPECT                                                    \
  0x2 /* a flush failed: the writes of these
                                    * extents may be lost here */

struct rmr_alrec {
  uint64_t seq;
  uint32_t shift; /* extents are 1 << shift bytes */
  uint32_t flags;
  uint64_t writes;
  uint8_t boot_id[RMR_ALREC_BOOT_ID_LEN]; /* NUL padded */
};

/* This kernel's boot id, NUL padded (all zero if unknown). */
void rmr_boot_id (uint8_t *out);

/* Encode one copy of n (<= RMR_ALREC_MAX_EXTENTS) extents into buf. */
void rmr_alrec_encode (const struct rmr_alrec *rec, const uint32_t *extents,
                       uint32_t n, uint8_t *buf);

/* Decode one copy: 0, -ENODATA (all zero: never written) or -EBADMSG
 * (one-line message set).  extents (uint32_t) is replaced on success;
 * *rec is untouched on failure.
 */
int rmr_alrec_decode (const uint8_t *buf, struct rmr_alrec *rec,
                      GArray *extents);

/* Read both copies at off and return the one in force: 0, -ENODATA
 * (neither copy ever written), -EBADMSG (no valid copy) or -errno.
 */
int rmr_alrec_read (int fd, uint64_t off, struct rmr_alrec *rec,
                    GArray *extents);

#endif /* RMR_ALREC_H */
