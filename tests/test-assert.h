/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the unit tests share to check a refusal. */
#ifndef RMR_TEST_ASSERT_H
#define RMR_TEST_ASSERT_H

#include <string.h>

#include <glib.h>

#include "error.h"

/* r is -errnum and the recorded one-line error contains word. */
static inline void
assert_error (int r, int errnum, const char *word)
{
  const char *msg = rmr_get_error ();

  g_test_message ("expected error: %s", msg ? msg : "(none)");
  g_assert_cmpint (r, ==, -errnum);
  g_assert_nonnull (msg);
  if (!strstr (msg, word))
    g_error ("error '%s' lacks '%s'", msg, word);
}

#endif /* RMR_TEST_ASSERT_H */
