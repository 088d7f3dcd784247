/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by every unit of librmr, the daemon and the plugin:
 * cleanup attributes, little-endian accessors, checked arithmetic.
 * Header only; nothing here allocates.
 */
#ifndef RMR_UTIL_H
#define RMR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))

/* The struct of type that holds ptr in its member.  (clang-format would
 * take the minus for a unary one.)
 */
/* clang-format off */
#define container_of(ptr, type, member) \
  ((type *) ((char *) (ptr) - offsetof (type, member)))
/* clang-format on */

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* Unwinding: a variable declared CLEANUP_FREE is free()d, CLEANUP_CLOSE is
 * close()d when it goes out of scope.  Use g_autofree for g_malloc memory.
 */
static inline void
cleanup_free (void *ptr)
{
  free (*(void **) ptr);
}
#define CLEANUP_FREE __attribute__ ((cleanup (cleanup_free)))

static inline void
cleanup_close (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
#define CLEANUP_CLOSE __attribute__ ((cleanup (cleanup_close)))

/* Whether n bytes at p are all zero: the first 16 one by one, then each
 * byte equal to the one 16 before it (memcmp runs vectorised).
 */
static inline bool
buf_is_zero (const void *p, size_t n)
{
  const uint8_t *b = p;
  size_t i;

  for (i = 0; i < n && i < 16; i++)
    if (b[i])
      return false;
  return n <= 16 || memcmp (b, b + 16, n - 16) == 0;
}

static inline bool
is_power_of_2 (uint64_t v)
{
  return v != 0 && (v & (v - 1)) == 0;
}

static inline unsigned
log_2_bits (uint64_t v)
{
  return 63 - __builtin_clzll (v);
}

/* Checked arithmetic on every offset and length that came from outside:
 * returns true on overflow (and leaves *r undefined).
 */
#define ADD_OVERFLOW(a, b, r) __builtin_add_overflow ((a), (b), (r))
#define MUL_OVERFLOW(a, b, r) __builtin_mul_overflow ((a), (b), (r))

static inline uint64_t
round_up (uint64_t v, uint64_t align)
{
  return (v + align - 1) & ~(align - 1);
}

/* Little-endian accessors for the wire and on-disk formats: explicit byte
 * order, no alignment assumptions.
 */
static inline void
put_le16 (uint8_t *p, uint16_t v)
{
  p[0] = v;
  p[1] = v >> 8;
}

static inline void
put_le32 (uint8_t *p, uint32_t v)
{
  put_le16 (p, v);
  put_le16 (p + 2, v >> 16);
}

static inline void
put_le64 (uint8_t *p, uint64_t v)
{
  put_le32 (p, v);
  put_le32 (p + 4, v >> 32);
}

static inline uint16_t
get_le16 (const uint8_t *p)
{
  return p[0] | (uint16_t) p[1] << 8;
}

static inline uint32_t
get_le32 (const uint8_t *p)
{
  return get_le16 (p) | (uint32_t) get_le16 (p + 2) << 16;
}

static inline uint64_t
get_le64 (const uint8_t *p)
{
  return get_le32 (p) | (uint64_t) get_le32 (p + 4) << 32;
}

#endif /* RMR_UTIL_H */
