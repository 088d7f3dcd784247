/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dirty maps (DESIGN 5): one bit per chunk for one member of a pool,
 * "this member's copy of the chunk may be stale and must be resynced".
 *
 * In memory a two-level structure: a first-level array of page pointers,
 * second-level pages of DMAP_PAGE_BITS bits allocated on first use and
 * freed when they become clean again, so a clean terabyte costs only the
 * first level.  A page here is exactly one on-disk map page (md.h): 16
 * bytes of header (crc32c, page number, slot, zero) and 4080 bytes of
 * bits, so persisting a changed page is one 4 KiB write.
 *
 * Every change marks its page "unsaved"; the owner writes unsaved pages
 * (dmap_page_encode) and calls dmap_page_saved.  Reading back a page whose
 * checksum fails marks every chunk of that page dirty: a damaged map can
 * cost extra resync, never a missed one.
 *
 * Not thread-safe: the owner serialises access.
 */
#ifndef RMR_DMAP_H
#define RMR_DMAP_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "md.h"

#define DMAP_PAGE_BITS RMR_MAP_PAGE_BITS
#define DMAP_NONE UINT64_MAX

struct dmap;

/* A clean map of nchunks chunks; NULL on allocation failure. */
struct dmap *dmap_new (uint64_t nchunks);
void dmap_free (struct dmap *m);

uint64_t dmap_nchunks (const struct dmap *m);
/* Number of dirty chunks. */
uint64_t dmap_count (const struct dmap *m);
bool dmap_test (const struct dmap *m, uint64_t chunk);
/* Any dirty chunk in [first, first + n)? */
bool dmap_any (const struct dmap *m, uint64_t first, uint64_t n);

/* Set / clear [first, first + n) (clipped to the map); return how many
 * bits changed.  -1 (and nothing changed) if a page cannot be allocated.
 */
int64_t dmap_set_range (struct dmap *m, uint64_t first, uint64_t n);
int64_t dmap_clear_range (struct dmap *m, uint64_t first, uint64_t n);
/* Clear every bit. */
void dmap_clear_all (struct dmap *m);

/* OR n bits (LSB first within each byte) into [first, first + n). */
int64_t dmap_or_bits (struct dmap *m, uint64_t first, uint64_t n,
                      const uint8_t *bits);
/* Copy [first, first + n) out as bits (LSB first), ceil (n / 8) bytes. */
void dmap_get_bits (const struct dmap *m, uint64_t first, uint64_t n,
                    uint8_t *bits);

/* The first dirty chunk >= from, or DMAP_NONE. */
uint64_t dmap_next (const struct dmap *m, uint64_t from);

/* The admin guide's summary: "[12 28 80] 3/800 dirty" (at most max chunk
 * numbers in the brackets).
 */
void dmap_summary (const struct dmap *m, unsigned max, GString *out);

/* On-disk pages. */
uint32_t dmap_npages (const struct dmap *m);
/* The first unsaved page >= from, or UINT32_MAX. */
uint32_t dmap_next_unsaved (const struct dmap *m, uint32_t from);
void dmap_page_saved (struct dmap *m, uint32_t page);
/* Encode page into buf (RMR_MAP_PAGE_SIZE bytes) for member slot. */
void dmap_page_encode (const struct dmap *m, unsigned slot, uint32_t page,
                       uint8_t *buf);
/* Load page from buf.  An all-zero block is a clean page never written.
 * Returns 0, or -EBADMSG when the checksum, page number or slot do not
 * match: then every chunk of the page is set dirty (and a message says
 * why).  The page is "saved" afterwards unless it was damaged.
 */
int dmap_page_decode (struct dmap *m, unsigned slot, uint32_t page,
                      const uint8_t *buf);

#endif /* RMR_DMAP_H */
