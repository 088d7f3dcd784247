/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Waiting on a word without a lock: a thread sleeps while *addr still
 * holds val, another wakes it after changing the word.  A wake-up may go
 * to a word whose owner returned already (harmless: nobody sleeps there).
 */
#ifndef RMR_FUTEX_H
#define RMR_FUTEX_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void
rmr_futex_wait (atomic_uint *addr, unsigned val, const struct timespec *tmo)
{
  syscall (SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tmo, NULL, 0);
}

static inline void
rmr_futex_wake (atomic_uint *addr)
{
  syscall (SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#endif /* RMR_FUTEX_H */
