/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing of user input shared by the daemon, rmradm and the plugin:
 * sizes, transport addresses, pool names, member ids.  Every function
 * returns 0, or -EINVAL (-ERANGE for out-of-range numbers) with a one-line
 * message naming the field (error.h).  `what` is the field name used in
 * that message ("mapped_size", "chunk-size", "server", ...).  Nothing is
 * written to the outputs on failure.
 */
#ifndef RMR_PARSE_H
#define RMR_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "rmr/rmr.h"

/* A size in bytes: a decimal integer with an optional suffix K, M, G, T
 * (binary multiples, case-insensitive, optionally followed by "iB" or "B"):
 * "131072", "128K", "100M", "1GiB".  Rejects empty strings, signs, spaces,
 * junk after the number and overflow of 64 bits.
 */
int rmr_parse_bytes (const char *what, const char *s, uint64_t *bytes);

/* A size in the admin guide's control syntax: a bare integer counts
 * 512-byte sectors ("204800" = 100 MiB), a K/M/G/T suffix means bytes as
 * above.  The result is in bytes and always a multiple of 512 (a suffixed
 * size that is not is rejected).
 */
int rmr_parse_sectors_or_bytes (const char *what, const char *s,
                                uint64_t *bytes);

/* An unsigned decimal integer in [min, max]. */
int rmr_parse_uint (const char *what, const char *s, uint64_t min, uint64_t max,
                    uint64_t *v);

/* A boolean: 1/0, y/n, yes/no, true/false, on/off (case-insensitive). */
int rmr_parse_bool (const char *what, const char *s, bool *b);

/* A duration: a decimal number with an optional unit ms, s, m (default s):
 * "30s", "500ms", "2m", "10".  Result in milliseconds, at most one day.
 */
int rmr_parse_duration_ms (const char *what, const char *s, uint64_t *ms);

/* Pool names: ASCII, 1-63 bytes of [A-Za-z0-9._-] (DESIGN 2). */
int rmr_check_pool_name (const char *what, const char *name);

/* Session names (sessname): 1-63 bytes of [A-Za-z0-9._@:-]. */
int rmr_check_sess_name (const char *what, const char *name);

/* member_id: 0 to RMR_MEMBER_ID_MAX. */
int rmr_parse_member_id (const char *what, const char *s, uint32_t *id);

/* Transport addresses (DESIGN 10):
 *   tcp:HOST:PORT   tcp:[V6ADDR]:PORT   ucx:HOST:PORT   ucx:[V6ADDR]:PORT
 *   ip:HOST[:PORT]  (the admin guide's form; tcp, default port)
 *   HOST:PORT       (tcp)
 * HOST is a name, an IPv4 address or (in brackets) an IPv6 address; PORT is
 * 1-65535.  A port-less form uses RMR_DEFAULT_PORT.
 */
int rmr_addr_parse (const char *what, const char *s, struct rmr_addr *addr);
/* Only this host can reach addr: localhost, 127.0.0.0/8 or ::1 (a host
 * name other than localhost counts as reachable from outside).
 */
bool rmr_addr_is_loopback (const struct rmr_addr *addr);

/* Canonical text of an address, "tcp:127.0.0.1:7700" or "tcp:[::1]:7700";
 * always NUL-terminated, truncated to n bytes.
 */
void rmr_addr_format (const struct rmr_addr *addr, char *buf, size_t n);

#endif /* RMR_PARSE_H */
