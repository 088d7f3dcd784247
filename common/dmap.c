/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Two-level dirty maps (dmap.h).
 *
 * pages[p] is NULL while page p is clean, else DMAP_PAGE_WORDS words in
 * which bit i of the page is bit i % 64 of word i / 64.  page_count[p]
 * counts its set bits, so a page that becomes clean is freed at once;
 * count is the sum.  unsaved[p] says page p changed since it was last
 * written to the store.  Bits past nchunks in the last page are never set.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "dmap.h"
#include "error.h"
#include "util.h"

#define DMAP_PAGE_WORDS (DMAP_PAGE_BITS / 64)
_Static_assert(DMAP_PAGE_BITS % 64 == 0, "map pages hold whole words");
_Static_assert(RMR_MAP_PAGE_HDR + DMAP_PAGE_WORDS * 8 == RMR_MAP_PAGE_SIZE,
               "a map page is a header and its bits");

struct dmap {
  uint64_t nchunks;
  uint32_t npages;
  uint64_t count;
  uint64_t **pages;
  uint32_t *page_count;
  uint8_t *unsaved;
};

struct dmap *
dmap_new (uint64_t nchunks)
{
  struct dmap *m = calloc (1, sizeof *m);

  if (!m)
    return NULL;
  m->nchunks = nchunks;
  m->npages = (nchunks + DMAP_PAGE_BITS - 1) / DMAP_PAGE_BITS;
  m->pages = calloc (m->npages ? m->npages : 1, sizeof *m->pages);
  m->page_count = calloc (m->npages ? m->npages : 1, sizeof *m->page_count);
  m->unsaved = calloc (m->npages ? m->npages : 1, 1);
  if (!m->pages || !m->page_count || !m->unsaved) {
    dmap_free (m);
    return NULL;
  }
  return m;
}

void
dmap_free (struct dmap *m)
{
  uint32_t p;

  if (!m)
    return;
  for (p = 0; m->pages && p < m->npages; p++)
    free (m->pages[p]);
  free (m->pages);
  free (m->page_count);
  free (m->unsaved);
  free (m);
}

uint64_t
dmap_nchunks (const struct dmap *m)
{
  return m->nchunks;
}

uint64_t
dmap_count (const struct dmap *m)
{
  return m->count;
}

uint32_t
dmap_npages (const struct dmap *m)
{
  return m->npages;
}

bool
dmap_test (const struct dmap *m, uint64_t c)
{
  const uint64_t *w;

  if (c >= m->nchunks)
    return false;
  w = m->pages[c / DMAP_PAGE_BITS];
  c %= DMAP_PAGE_BITS;
  return w && (w[c / 64] >> (c % 64) & 1);
}

/* Clip [first, first + n) to the map; false if empty. */
static bool
clip (const struct dmap *m, uint64_t *first, uint64_t *n)
{
  if (*first >= m->nchunks || *n == 0)
    return false;
  *n = MIN (*n, m->nchunks - *first);
  return true;
}

/* Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 64. */
static uint64_t
word_mask (unsigned lo, unsigned hi)
{
  uint64_t m = hi == 64 ? ~UINT64_C (0) : (UINT64_C (1) << hi) - 1;

  return m & ~((UINT64_C (1) << lo) - 1);
}

/* Apply set (or clear) to bits [lo, hi) of page p; returns the change. */
static uint64_t
page_apply (struct dmap *m, uint32_t p, uint64_t lo, uint64_t hi, bool set)
{
  uint64_t *w = m->pages[p], changed = 0, old;
  uint64_t i;

  for (i = lo; i < hi;) {
    unsigned b = i % 64, e = MIN (64, b + (hi - i));
    uint64_t mask = word_mask (b, e);
    old = w[i / 64];
    if (set) {
      changed += __builtin_popcountll (~old & mask);
      w[i / 64] = old | mask;
    }
    else {
      changed += __builtin_popcountll (old & mask);
      w[i / 64] = old & ~mask;
    }
    i += e - b;
  }
  return changed;
}

static int64_t
change_range (struct dmap *m, uint64_t first, uint64_t n, bool set)
{
  uint64_t end, c, changed = 0, d;
  uint32_t p;

  if (!clip (m, &first, &n))
    return 0;
  end = first + n;
  /* Allocate every page first, so a failure changes nothing. */
  if (set)
    for (p = first / DMAP_PAGE_BITS; p <= (end - 1) / DMAP_PAGE_BITS; p++)
      if (!m->pages[p] &&
          !(m->pages[p] = calloc (DMAP_PAGE_WORDS, sizeof (uint64_t))))
        return rmr_err (ENOMEM, "dirty map: out of memory"), -1;

  for (c = first; c < end;) {
    uint64_t lo, hi;
    p = c / DMAP_PAGE_BITS;
    lo = c % DMAP_PAGE_BITS;
    hi = MIN ((uint64_t) DMAP_PAGE_BITS, lo + (end - c));
    c += hi - lo;
    if (!m->pages[p])
      continue; /* clearing a clean page */
    d = page_apply (m, p, lo, hi, set);
    if (d == 0)
      continue;
    changed += d;
    m->unsaved[p] = 1;
    if (set) {
      m->page_count[p] += d;
      m->count += d;
    }
    else {
      m->page_count[p] -= d;
      m->count -= d;
    }
  }
  if (!set)
    for (p = first / DMAP_PAGE_BITS; p <= (end - 1) / DMAP_PAGE_BITS; p++)
      if (m->pages[p] && m->page_count[p] == 0) {
        free (m->pages[p]);
        m->pages[p] = NULL;
      }
  return changed;
}

int64_t
dmap_set_range (struct dmap *m, uint64_t first, uint64_t n)
{
  return change_range (m, first, n, true);
}

int64_t
dmap_clear_range (struct dmap *m, uint64_t first, uint64_t n)
{
  return change_range (m, first, n, false);
}

void
dmap_clear_all (struct dmap *m)
{
  dmap_clear_range (m, 0, m->nchunks);
}

bool
dmap_any (const struct dmap *m, uint64_t first, uint64_t n)
{
  uint64_t next;

  if (!clip (m, &first, &n))
    return false;
  next = dmap_next (m, first);
  return next != DMAP_NONE && next < first + n;
}

int64_t
dmap_or_bits (struct dmap *m, uint64_t first, uint64_t n, const uint8_t *bits)
{
  uint64_t i, run_start = 0, changed = 0;
  bool in_run = false;
  int64_t r;

  /* Runs of set bits become ranges: maps handed over are mostly sparse. */
  for (i = 0; i <= n; i++) {
    bool bit = i < n && (bits[i / 8] >> (i % 8) & 1);
    if (bit && !in_run) {
      run_start = i;
      in_run = true;
    }
    else if (!bit && in_run) {
      r = dmap_set_range (m, first + run_start, i - run_start);
      if (r < 0)
        return r;
      changed += r;
      in_run = false;
    }
  }
  return changed;
}

void
dmap_get_bits (const struct dmap *m, uint64_t first, uint64_t n, uint8_t *bits)
{
  uint64_t i;

  memset (bits, 0, (n + 7) / 8);
  for (i = dmap_next (m, first); i != DMAP_NONE && i < first + n;
       i = dmap_next (m, i + 1))
    bits[(i - first) / 8] |= 1 << ((i - first) % 8);
}

uint64_t
dmap_next (const struct dmap *m, uint64_t from)
{
  uint32_t p;
  uint64_t i;

  for (p = from / DMAP_PAGE_BITS; from < m->nchunks && p < m->npages; p++) {
    const uint64_t *w = m->pages[p];
    uint64_t base = (uint64_t) p * DMAP_PAGE_BITS;
    i = from > base ? from - base : 0;
    if (!w)
      continue;
    while (i < DMAP_PAGE_BITS) {
      uint64_t word = w[i / 64] & ~((UINT64_C (1) << (i % 64)) - 1);
      if (word)
        return base + (i / 64) * 64 + __builtin_ctzll (word);
      i = (i / 64 + 1) * 64;
    }
  }
  return DMAP_NONE;
}

void
dmap_summary (const struct dmap *m, unsigned max, GString *out)
{
  uint64_t c;
  unsigned n = 0;

  g_string_append_c (out, '[');
  for (c = dmap_next (m, 0); c != DMAP_NONE && n < max;
       c = dmap_next (m, c + 1), n++)
    g_string_append_printf (out, "%s%" PRIu64, n ? " " : "", c);
  g_string_append_printf (out, "] %" PRIu64 "/%" PRIu64 " dirty", m->count,
                          m->nchunks);
}

uint32_t
dmap_next_unsaved (const struct dmap *m, uint32_t from)
{
  uint32_t p;

  for (p = from; p < m->npages; p++)
    if (m->unsaved[p])
      return p;
  return UINT32_MAX;
}

void
dmap_page_saved (struct dmap *m, uint32_t page)
{
  if (page < m->npages)
    m->unsaved[page] = 0;
}

void
dmap_page_encode (const struct dmap *m, unsigned slot, uint32_t page,
                  uint8_t *buf)
{
  const uint64_t *w = page < m->npages ? m->pages[page] : NULL;
  unsigned i;

  memset (buf, 0, RMR_MAP_PAGE_SIZE);
  put_le32 (buf + 4, page);
  put_le32 (buf + 8, slot);
  if (w)
    for (i = 0; i < DMAP_PAGE_WORDS; i++)
      put_le64 (buf + RMR_MAP_PAGE_HDR + 8 * i, w[i]);
  put_le32 (buf, rmr_crc32c (0, buf, RMR_MAP_PAGE_SIZE));
}

int
dmap_page_decode (struct dmap *m, unsigned slot, uint32_t page,
                  const uint8_t *buf)
{
  static const uint8_t zero4[4];
  uint64_t base = (uint64_t) page * DMAP_PAGE_BITS, *words;
  uint64_t valid = MIN ((uint64_t) DMAP_PAGE_BITS, m->nchunks - base);
  const char *why = NULL;
  uint64_t n = 0;
  unsigned i;

  if (page >= m->npages)
    return rmr_err (EINVAL, "dirty map: page %" PRIu32 " beyond %" PRIu32, page,
                    m->npages);
  dmap_clear_range (m, base, valid);
  if (buf_is_zero (buf, RMR_MAP_PAGE_SIZE)) {
    m->unsaved[page] = 0;
    return 0;
  }
  if (rmr_crc32c (rmr_crc32c (0, zero4, 4), buf + 4, RMR_MAP_PAGE_SIZE - 4) !=
      get_le32 (buf))
    why = "checksum mismatch";
  else if (get_le32 (buf + 4) != page)
    why = "page number mismatch";
  else if (get_le32 (buf + 8) != slot)
    why = "slot mismatch";
  else if (get_le32 (buf + 12) != 0)
    why = "reserved bytes not zero";
  if (why) {
    /* Conservative: everything this page covers may be stale. */
    dmap_set_range (m, base, valid);
    return rmr_err (EBADMSG,
                    "dirty map slot %u page %" PRIu32 ": %s: its %" PRIu64
                    " chunks are taken as dirty",
                    slot, page, why, valid);
  }
  words = calloc (DMAP_PAGE_WORDS, sizeof *words);
  if (!words)
    return rmr_err (ENOMEM, "dirty map: out of memory");
  for (i = 0; i < DMAP_PAGE_WORDS; i++) {
    uint64_t lo = (uint64_t) i * 64;
    words[i] = get_le64 (buf + RMR_MAP_PAGE_HDR + 8 * i);
    /* Bits past the end of the map are ignored. */
    if (lo >= valid)
      words[i] = 0;
    else if (valid - lo < 64)
      words[i] &= (UINT64_C (1) << (valid - lo)) - 1;
    n += __builtin_popcountll (words[i]);
  }
  /* The page is clean after dmap_clear_range above: not allocated. */
  if (n) {
    m->pages[page] = words;
    m->page_count[page] = n;
    m->count += n;
  }
  else
    free (words);
  m->unsaved[page] = 0;
  return 0;
}
