/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum of
 * the on-disk metadata (superblock copies, dirty-map pages).
 *
 * Portable slice-by-8: eight 256-entry tables let the loop fold eight
 * input bytes per step with eight lookups.  table[0] is the classic
 * byte-at-a-time table; table[k][b] is the CRC of byte b followed by k
 * zero bytes, so the eight lookups of one step add up (xor) to the CRC of
 * the eight bytes.  The input is read byte by byte as little-endian words
 * (util.h), so the result does not depend on the host's byte order or on
 * the buffer's alignment.
 *
 * The tables (8 KiB) are computed once, on first use, under pthread_once;
 * afterwards they are read-only and shared by every thread.  Metadata
 * blocks are a few KiB, so no hardware CRC instruction is needed.
 */
#include <pthread.h>
#include <stdlib.h>

#include "crc32c.h"
#include "util.h"

#define CRC32C_POLY 0x82f63b78U

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void
table_init (void)
{
  unsigned i, j, k;

  for (i = 0; i < 256; i++) {
    uint32_t c = i;

    for (j = 0; j < 8; j++)
      c = (c >> 1) ^ (c & 1 ? CRC32C_POLY : 0);
    table[0][i] = c;
  }
  for (k = 1; k < 8; k++)
    for (i = 0; i < 256; i++) {
      uint32_t c = table[k - 1][i];

      table[k][i] = (c >> 8) ^ table[0][c & 0xff];
    }
}

uint32_t
rmr_crc32c (uint32_t crc, const void *buf, size_t len)
{
  const uint8_t *p = buf;
  uint32_t c = ~crc;

  if (pthread_once (&table_once, table_init) != 0)
    abort ();

  while (len >= 8) {
    uint32_t lo = get_le32 (p) ^ c;
    uint32_t hi = get_le32 (p + 4);

    c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
        table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24];
    c ^= table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
         table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len > 0) {
    c = (c >> 8) ^ table[0][(c ^ *p) & 0xff];
    p++;
    len--;
  }
  return ~c;
}
