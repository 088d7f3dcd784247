/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whole-length positioned IO on a file descriptor, for metadata and the
 * synchronous paths of a store (the fast path goes through io_uring).
 */
#ifndef RMR_FDIO_H
#define RMR_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* Read len bytes at off, retrying short reads and EINTR.  What lies past
 * the end of the file reads as zeroes (a store file may be shorter than
 * its last block).  0 or -errno.
 */
int rmr_pread_full (int fd, void *buf, size_t len, uint64_t off);

/* Write len bytes at off with pwritev2 flags (RWF_*, or 0), retrying
 * short writes and EINTR; a write that makes no progress is -EIO.
 * 0 or -errno.
 */
int rmr_pwrite_full (int fd, const void *buf, size_t len, uint64_t off,
                     int flags);

#endif /* RMR_FDIO_H */
