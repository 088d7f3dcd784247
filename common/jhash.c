/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bob Jenkins' lookup3 hash as the Linux kernel's jhash () computes it
 * (include/linux/jhash.h), so that a pool's group_id matches the one the
 * kernel RMR derives from the same name.
 *
 * The key is consumed in 12-byte blocks into three 32-bit words (a, b, c),
 * mixed after each block; the last 1-12 bytes are added and the state goes
 * through the final avalanche; c is the hash.  A zero-length key returns
 * the initial state unmixed.  This is lookup3's hashlittle () too.
 *
 * Byte order: the kernel loads the words with get_unaligned_cpu32 () and
 * builds the tail from bytes shifted as little-endian, so on x86 every
 * byte lands little-endian.  We read bytes little-endian explicitly, which
 * gives the same group_id on any host.  The kernel's length is a u32: it
 * enters the initial state truncated to 32 bits, and so does ours.
 */
#include <string.h>

#include "jhash.h"
#include "util.h"

#define JHASH_INITVAL 0xdeadbeefU

static inline uint32_t
rol32 (uint32_t w, unsigned s)
{
  return (w << s) | (w >> (32 - s));
}

/* One row of the kernel's __jhash_mix: x -= z; x ^= rol32 (z, s); z += y. */
static inline void
mix_row (uint32_t *x, uint32_t *y, uint32_t *z, unsigned s)
{
  *x -= *z;
  *x ^= rol32 (*z, s);
  *z += *y;
}

/* Reversible mixing of one block into the state (__jhash_mix). */
static inline void
jhash_mix (uint32_t *a, uint32_t *b, uint32_t *c)
{
  mix_row (a, b, c, 4);
  mix_row (b, c, a, 6);
  mix_row (c, a, b, 8);
  mix_row (a, b, c, 16);
  mix_row (b, c, a, 19);
  mix_row (c, a, b, 4);
}

/* One row of the kernel's __jhash_final: x ^= y; x -= rol32 (y, s). */
static inline void
final_row (uint32_t *x, uint32_t y, unsigned s)
{
  *x ^= y;
  *x -= rol32 (y, s);
}

/* Final avalanche of (a, b) into c (__jhash_final). */
static inline void
jhash_final (uint32_t *a, uint32_t *b, uint32_t *c)
{
  final_row (c, *b, 14);
  final_row (a, *c, 11);
  final_row (b, *a, 25);
  final_row (c, *b, 16);
  final_row (a, *c, 4);
  final_row (b, *a, 14);
  final_row (c, *b, 24);
}

uint32_t
rmr_jhash (const void *key, size_t length, uint32_t initval)
{
  const uint8_t *k = key;
  uint8_t tail[12];
  uint32_t a, b, c;

  a = b = c = JHASH_INITVAL + (uint32_t) length + initval;

  while (length > 12) {
    a += get_le32 (k);
    b += get_le32 (k + 4);
    c += get_le32 (k + 8);
    jhash_mix (&a, &b, &c);
    length -= 12;
    k += 12;
  }

  if (length == 0)
    return c;

  /* The kernel's tail switch adds byte i shifted by 8 * (i % 4) into the
   * word i / 4: that is a little-endian load of the zero-padded tail.
   */
  memset (tail, 0, sizeof tail);
  memcpy (tail, k, length);
  a += get_le32 (tail);
  b += get_le32 (tail + 4);
  c += get_le32 (tail + 8);
  jhash_final (&a, &b, &c);
  return c;
}

uint32_t
rmr_group_id (const char *pool_name)
{
  return rmr_jhash (pool_name, strlen (pool_name), 0);
}
