/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whole-length positioned IO (fdio.h). */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fdio.h"

int
rmr_pread_full (int fd, void *buf, size_t len, uint64_t off)
{
  while (len > 0) {
    ssize_t r = pread (fd, buf, len, off);

    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if (r == 0) {
      memset (buf, 0, len);
      return 0;
    }
    buf = (char *) buf + r;
    len -= r;
    off += r;
  }
  return 0;
}

int
rmr_pwrite_full (int fd, const void *buf, size_t len, uint64_t off, int flags)
{
  while (len > 0) {
    struct iovec iov = {.iov_base = (void *) buf, .iov_len = len};
    ssize_t r = pwritev2 (fd, &iov, 1, off, flags);

    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return r < 0 ? -errno : -EIO;
    buf = (const char *) buf + r;
    len -= r;
    off += r;
  }
  return 0;
}
