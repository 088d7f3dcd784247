/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Error reporting inside librmr.  librmr never prints: a failing function
 * records a one-line message naming the bad field in a thread-local buffer
 * and returns -errno (or NULL with errno set).  The caller reads the message
 * with rmr_get_error () and adds its own context.
 */
#ifndef RMR_ERROR_H
#define RMR_ERROR_H

#include <stdarg.h>

#include "rmr/rmr.h"

/* Record the message (printf format) and errnum; sets errno = errnum and
 * returns -errnum, so "return rmr_err (EINVAL, "...")" reads naturally.
 */
int rmr_err (int errnum, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
int rmr_verr (int errnum, const char *fmt, va_list ap)
  __attribute__ ((format (printf, 2, 0)));

/* Prefix the current message with more context ("server tcp:...: " + old). */
void rmr_err_prefix (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));

/* Forget the last error. */
void rmr_err_clear (void);

#endif /* RMR_ERROR_H */
