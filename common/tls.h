/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TLS 1.3 with pre-shared keys on legs and sync sessions (DESIGN 9),
 * through GnuTLS, the library nbdkit and libnbd use.
 *
 * One configuration per process (rmr_tls_setup () in rmr.h): the mode, the
 * key file (nbdkit's --tls-psk format, as psktool writes it: one
 * "USERNAME:HEXKEY" line per identity) and the username this process
 * connects as.  A connecting side presents that username and its key; a
 * listening side accepts every identity of the file, each with its own
 * key.  Knowing the key is the authentication, both ways: the handshake
 * fails on either side if the other does not hold the same key.
 *
 * A session (struct rmr_tls_sess) wraps one connected socket after the
 * handshake.  Threads: one thread may send (under the connection's send
 * lock) while another receives, as GnuTLS allows; never two of either.
 * Sends are staged in a buffer of one record, so a message of a header
 * and a small payload goes out as one record and one system call.
 */
#ifndef RMR_TLS_H
#define RMR_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "rmr/rmr.h"

#define RMR_TLS_ID_MAX 128

struct rmr_tls;
struct rmr_tls_sess;

/* The process's configuration (never NULL: mode RMR_TLS_OFF when none
 * was set up).  Valid for the life of the process.
 */
const struct rmr_tls *rmr_tls_current (void);
enum rmr_tls_mode rmr_tls_mode (const struct rmr_tls *t);
/* The identity this process connects as ("" when off). */
const char *rmr_tls_username (const struct rmr_tls *t);

/* Free every configuration set up so far and go back to off: only when
 * no session or listener is left (a plugin's unload, after its pools
 * closed).
 */
void rmr_tls_cleanup (void);

/* The key of identity in t's key file (valid as long as t): 0, or
 * -ENOKEY when the file has no such identity (or t is off).
 */
int rmr_tls_key (const struct rmr_tls *t, const char *identity,
                 const uint8_t **key, size_t *len);

/* "off", "on" or "require" to the mode; -EINVAL naming `what`. */
int rmr_tls_parse_mode (const char *s, const char *what,
                        enum rmr_tls_mode *out);
const char *rmr_tls_mode_name (enum rmr_tls_mode m);

/* Handshake on the connected blocking socket fd within timeout_ms: as the
 * connecting side (client) or the listening side (server).  peer names
 * the other side in errors.  On failure -errno with a one-line reason;
 * for a server, *identity (RMR_TLS_ID_MAX + 1 bytes) gets the identity
 * the peer presented ("" if none), so the refusal can be logged with it.
 * The session does not own fd.
 */
int rmr_tls_client_handshake (const struct rmr_tls *t, int fd,
                              uint64_t timeout_ms, const char *peer,
                              struct rmr_tls_sess **out);
int rmr_tls_server_handshake (const struct rmr_tls *t, int fd,
                              uint64_t timeout_ms, const char *peer,
                              char *identity, struct rmr_tls_sess **out);

/* Send the whole iovec (blocking); *sent += the plaintext bytes sent.
 * -errno once the connection broke.
 */
int rmr_tls_send (struct rmr_tls_sess *s, const struct iovec *iov, int iovcnt,
                  size_t *sent);
/* Receive up to len bytes (blocks until one record arrived): > 0 bytes,
 * 0 at the peer's end of stream, -EAGAIN to try again, -errno on error
 * (with the reason recorded).
 */
ssize_t rmr_tls_recv (struct rmr_tls_sess *s, void *buf, size_t len);
/* Start a TLS 1.3 key update of our sending direction now, as GnuTLS
 * does by itself before the cipher's record limit (the caller holds the
 * connection's send lock, as a sender would).  Tests use it to run one
 * while traffic flows both ways.  0 or -errno.
 */
int rmr_tls_key_update (struct rmr_tls_sess *s);
/* Bytes already decrypted and waiting (receive them before polling). */
size_t rmr_tls_pending (struct rmr_tls_sess *s);
/* The peer's identity (the server side), or our own (the client side). */
const char *rmr_tls_identity (const struct rmr_tls_sess *s);
/* "TLS1.3 ECDHE-PSK AES-256-GCM (userspace)" or "(kernel TLS)". */
const char *rmr_tls_describe (const struct rmr_tls_sess *s);
void rmr_tls_sess_free (struct rmr_tls_sess *s);

#endif /* RMR_TLS_H */
