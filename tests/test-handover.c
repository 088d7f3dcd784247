/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the hand-over decisions (common/handover.c) that need no
 * transport: which member is the source of each chunk of the recent-write
 * records after a crash, and when a member may come back with no normal
 * member to tell it what it missed.  The scenarios are those of issue 8
 * at RF=2 and RF=3; the network half (collect, give) runs in the
 * integration tests.
 */
#undef NDEBUG

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "handover.h"

#define NCH 64

struct maps {
  uint8_t b[RMR_MAX_MEMBERS][NCH / 8 + 8];
  uint8_t *p[RMR_MAX_MEMBERS];
};

static void
maps_init (struct maps *m)
{
  unsigned s;

  memset (m->b, 0, sizeof m->b);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    m->p[s] = m->b[s];
}

static bool
bit (const uint8_t *b, unsigned c)
{
  return b[c / 8] & 1 << (c % 8);
}

static void
set (uint8_t *b, unsigned c)
{
  b[c / 8] |= 1 << (c % 8);
}

/* RF=2, a client crash: the record says chunk 3 may differ.  The
 * preferred source (slot 0) is current there: slot 1 gets it dirty.
 */
static void
test_source_current (void)
{
  struct maps m;
  uint8_t al[NCH / 8] = {0};
  int order[] = {0, 1};
  uint64_t lossy;

  maps_init (&m);
  set (al, 3);
  g_assert_cmpuint (ho_assemble_bits (NCH, al, m.p, NULL, order, 2, 0, &lossy),
                    ==, 0);
  g_assert_false (bit (m.p[0], 3));
  g_assert_true (bit (m.p[1], 3));
  g_assert_false (bit (m.p[1], 4));
}

/* Scenario 1 (long outage, then a client crash): member 1 missed chunk 7
 * (slot 0's map says so) and the record also holds chunk 7.  The record
 * must not make the preferred source (slot 1, say it wrote more) the
 * source where it is behind: slot 0 is, and slot 1 stays dirty.
 */
static void
test_source_behind_uses_next (void)
{
  struct maps m;
  uint8_t al[NCH / 8] = {0};
  int order[] = {1, 0};
  uint64_t lossy;

  maps_init (&m);
  set (m.p[1], 7); /* the union of the maps: member of slot 1 missed 7 */
  set (al, 7);
  set (al, 8);
  g_assert_cmpuint (ho_assemble_bits (NCH, al, m.p, NULL, order, 2, 0, &lossy),
                    ==, 0);
  g_assert_false (bit (m.p[0], 7)); /* source of 7 */
  g_assert_true (bit (m.p[1], 7));
  g_assert_false (bit (m.p[1], 8)); /* source of 8 */
  g_assert_true (bit (m.p[0], 8));
}

/* RF=3, scenario 1 after a double outage: the preferred source (slot 0)
 * and slot 1 are behind at chunk 4 (slot 2's writes, recorded in the
 * union of the maps), which the records also hold: slot 2 is the source
 * there; elsewhere slot 0 stays the source.
 */
static void
test_rf3_source_per_chunk (void)
{
  struct maps m;
  uint8_t al[NCH / 8] = {0};
  int order[] = {0, 1, 2};
  uint64_t lossy;

  maps_init (&m);
  set (m.p[0], 4);
  set (m.p[1], 4);
  set (al, 4);
  set (al, 6);
  g_assert_cmpuint (ho_assemble_bits (NCH, al, m.p, NULL, order, 3, 0, &lossy),
                    ==, 0);
  g_assert_true (bit (m.p[0], 4));
  g_assert_true (bit (m.p[1], 4));
  g_assert_false (bit (m.p[2], 4));
  g_assert_false (bit (m.p[0], 6));
  g_assert_true (bit (m.p[1], 6));
  g_assert_true (bit (m.p[2], 6));
}

/* RF=3 with a member away: the record chunks are dirty for it too; and a
 * chunk every present member is behind on is left alone (its data is on
 * the member away) and counted.
 */
static void
test_absent_and_no_source (void)
{
  struct maps m;
  uint8_t al[NCH / 8] = {0};
  int order[] = {0, 1};
  uint64_t lossy;

  maps_init (&m);
  set (al, 1);
  set (al, 2);
  set (m.p[0], 2);
  set (m.p[1], 2);
  g_assert_cmpuint (
    ho_assemble_bits (NCH, al, m.p, NULL, order, 2, 1u << 2, &lossy), ==, 1);
  g_assert_false (bit (m.p[0], 1));
  g_assert_true (bit (m.p[1], 1));
  g_assert_true (bit (m.p[2], 1));
  /* Chunk 2: untouched (no present source), the absent slot not marked
   * by the record either (its own map decides).
   */
  g_assert_true (bit (m.p[0], 2));
  g_assert_true (bit (m.p[1], 2));
  g_assert_false (bit (m.p[2], 2));
}

/* A member whose flush failed (or that lost power) may have lost what
 * its own record holds: it is not the source there while a member that
 * stopped cleanly is current, even if it is preferred; when every member
 * stopped uncleanly, one of them still is (counted), or the chunk could
 * never be read again.
 */
static void
test_unclean_record_not_source (void)
{
  struct maps m;
  uint8_t al[NCH / 8] = {0}, un0[NCH / 8 + 8] = {0}, un1[NCH / 8 + 8] = {0};
  uint8_t *unclean[RMR_MAX_MEMBERS] = {un0, NULL};
  int order[] = {0, 1};
  uint64_t lossy;

  maps_init (&m);
  set (al, 5);
  set (un0, 5);
  g_assert_cmpuint (
    ho_assemble_bits (NCH, al, m.p, unclean, order, 2, 0, &lossy), ==, 0);
  g_assert_cmpuint (lossy, ==, 0);
  g_assert_true (bit (m.p[0], 5));
  g_assert_false (bit (m.p[1], 5));

  maps_init (&m);
  unclean[1] = un1;
  set (un1, 5);
  g_assert_cmpuint (
    ho_assemble_bits (NCH, al, m.p, unclean, order, 2, 0, &lossy), ==, 0);
  g_assert_cmpuint (lossy, ==, 1);
  g_assert_false (bit (m.p[0], 5)); /* the preferred one, by default */
  g_assert_true (bit (m.p[1], 5));
}

/* Scenario 4 (double failure): member of slot 1 missed acknowledged
 * writes; with no normal member it may not come back alone.  Slot 0 did
 * not miss any and may.
 */
static void
test_enable_alone (void)
{
  uint32_t outdated = 1u << 1;

  g_assert_false (ho_may_enable_alone (outdated, 1));
  g_assert_true (ho_may_enable_alone (outdated, 0));
  g_assert_true (ho_may_enable_alone (0, 1));
}

/* A member (slot 0) comes back after a power loss, alone: every chunk of
 * its record (5, 6) waits for a member that may be current, even one its
 * own map records behind there (a member that missed a write once may
 * have caught up and taken the writes slot 0 lost before it went).
 */
static void
test_record_bits_alone (void)
{
  struct maps m;
  uint8_t rec[NCH / 8 + 8] = {0};

  maps_init (&m);
  set (rec, 5);
  set (rec, 6);
  g_assert_cmpuint (ho_record_bits (NCH, rec, m.p, 0, 3, 0, 0), ==, 0);
  g_assert_true (bit (m.p[0], 5));
  g_assert_true (bit (m.p[0], 6));
  g_assert_false (bit (m.p[0], 7));

  /* Slot 1 left while slot 0 was normal, and slot 0 made every write
   * slot 1 can hold durable then (the departure barrier): slot 0 keeps
   * its record (found by the nemesis: kill_node(2), then power(1), at
   * RF=2, every such chunk was dirty for both once slot 1 was back).
   */
  maps_init (&m);
  g_assert_cmpuint (ho_record_bits (NCH, rec, m.p, 0, 3, 1u << 1, 0), ==, 2);
  g_assert_false (bit (m.p[0], 5));
  g_assert_false (bit (m.p[0], 6));
  /* RF=3: slot 2 not proven: wait for it. */
  g_assert_cmpuint (ho_record_bits (NCH, rec, m.p, 0, 7, 1u << 1, 0), ==, 0);
  g_assert_true (bit (m.p[0], 5));
}

/* RF=3, slot 0 back after a power loss, slot 1 normal, slot 2 away.
 * Chunk 5: slot 1 current there: fetched from it.  Chunks 6 and 7: slot
 * 1 behind: slot 0 keeps them (counted), whatever is known of slot 2
 * (waiting for it while a normal member is behind would make that member
 * wait too: with slot 2 replaced or gone, never readable again); slot 1
 * resyncs them from slot 0.
 */
static void
test_record_bits_rf3 (void)
{
  struct maps m;
  uint8_t rec[NCH / 8 + 8] = {0};

  maps_init (&m);
  set (rec, 5);
  set (rec, 6);
  set (rec, 7);
  set (m.p[1], 6);
  set (m.p[1], 7);
  set (m.p[2], 7);
  g_assert_cmpuint (ho_record_bits (NCH, rec, m.p, 1u << 1, 7, 0, 0), ==, 2);
  g_assert_true (bit (m.p[0], 5));
  g_assert_false (bit (m.p[0], 6));
  g_assert_false (bit (m.p[0], 7));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/handover/source-current", test_source_current);
  g_test_add_func ("/handover/source-behind-uses-next",
                   test_source_behind_uses_next);
  g_test_add_func ("/handover/absent-and-no-source", test_absent_and_no_source);
  g_test_add_func ("/handover/rf3-source-per-chunk", test_rf3_source_per_chunk);
  g_test_add_func ("/handover/unclean-record-not-source",
                   test_unclean_record_not_source);
  g_test_add_func ("/handover/enable-alone", test_enable_alone);
  g_test_add_func ("/handover/record-bits-alone", test_record_bits_alone);
  g_test_add_func ("/handover/record-bits-rf3", test_record_bits_rf3);
  return g_test_run ();
}
