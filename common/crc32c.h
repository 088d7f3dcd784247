/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CRC-32C (Castagnoli), the checksum of every on-disk metadata block.
 * Standard parameters: reflected, init 0xffffffff, final xor 0xffffffff;
 * crc32c ("123456789") == 0xe3069283.
 */
#ifndef RMR_CRC32C_H
#define RMR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: rmr_crc32c (0, buf, n) is the CRC of buf; passing a
 * previous result as crc extends it over more bytes.
 */
uint32_t rmr_crc32c (uint32_t crc, const void *buf, size_t len);

#endif /* RMR_CRC32C_H */
