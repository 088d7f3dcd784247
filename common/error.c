/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Thread-local last error of librmr (see error.h).  One fixed buffer per
 * thread, so recording an error never allocates and never fails.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "util.h"

static __thread char last_msg[512];
static __thread int last_errno;

int
rmr_verr (int errnum, const char *fmt, va_list ap)
{
  vsnprintf (last_msg, sizeof last_msg, fmt, ap);
  last_errno = errnum;
  errno = errnum;
  return -errnum;
}

int
rmr_err (int errnum, const char *fmt, ...)
{
  va_list ap;
  int r;

  va_start (ap, fmt);
  r = rmr_verr (errnum, fmt, ap);
  va_end (ap);
  return r;
}

void
rmr_err_prefix (const char *fmt, ...)
{
  char prefix[256], old[sizeof last_msg];
  size_t n, m;
  va_list ap;
  int saved = errno;

  va_start (ap, fmt);
  vsnprintf (prefix, sizeof prefix, fmt, ap);
  va_end (ap);
  memcpy (old, last_msg, sizeof old);
  n = strlen (prefix);
  memcpy (last_msg, prefix, n);
  m = MIN (strlen (old), sizeof last_msg - 1 - n);
  memcpy (last_msg + n, old, m);
  last_msg[n + m] = '\0';
  errno = saved;
}

void
rmr_err_clear (void)
{
  last_msg[0] = '\0';
  last_errno = 0;
}

const char *
rmr_get_error (void)
{
  return last_msg[0] ? last_msg : NULL;
}

int
rmr_get_errno (void)
{
  return last_errno;
}
