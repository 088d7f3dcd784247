/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bob Jenkins' lookup3 hash, bit-compatible with the Linux kernel's
 * jhash () (include/linux/jhash.h), which the kernel RMR uses to derive a
 * pool's group_id from its name.
 */
#ifndef RMR_JHASH_H
#define RMR_JHASH_H

#include <stddef.h>
#include <stdint.h>

/* jhash (key, length, initval) exactly as Linux computes it. */
uint32_t rmr_jhash (const void *key, size_t length, uint32_t initval);

/* group_id of a pool: jhash of the name bytes (no NUL), initval 0. */
uint32_t rmr_group_id (const char *pool_name);

#endif /* RMR_JHASH_H */
