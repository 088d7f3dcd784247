/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The role table (issue 9, DESIGN 9, docs/protocol.md "Roles"): which
 * message the pool's client and a peer's sync session may send.
 *
 * Only the decision lives here, pure and without state or lock; sess.c
 * asks it for every message of a joined session and, on a refusal, logs
 * the violation and closes the connection.  Apart, it can be spelled out
 * case by case (tests/test-role.c) and fuzzed (tests/fuzz/fuzz-role.c).
 *
 * The decision reads the role, the type and the flags a rule names
 * (sync_flags), nothing else: the decoder (common/proto.c) has already
 * refused unknown types, flags a type may not carry and bad lengths, and
 * the handlers check the rest against the pool.  Replies never get here
 * (sess.c discards them first).  A type beyond the table or without a
 * rule is refused to both roles: JOIN comes before any role, KEEPALIVE
 * never reaches the daemon's sessions.
 */
#include <stddef.h>

#include "internal.h"

static const struct role_rule {
  uint8_t roles;       /* who may send it */
  uint16_t sync_flags; /* flags only a sync session may set */
  uint16_t sync_needs; /* flags a sync session must set */
} role_table[RMR_MSG_TYPE_MAX + 1] = {
  [RMR_MSG_ENABLE] = {ROLE_CLIENT, 0, 0},
  [RMR_MSG_LEAVE] = {ROLE_CLIENT | ROLE_SYNC, 0, 0},
  [RMR_MSG_READ] = {ROLE_CLIENT | ROLE_SYNC, 0, 0},
  [RMR_MSG_WRITE] = {ROLE_CLIENT, 0, 0},
  [RMR_MSG_FLUSH] = {ROLE_CLIENT, 0, 0},
  [RMR_MSG_TRIM] = {ROLE_CLIENT, 0, 0},
  [RMR_MSG_ZERO] = {ROLE_CLIENT, 0, 0},
  /* The client hands maps over (add, get, clear of another member's
   * slot); a peer watches and clears what it resynced, only with the
   * watch (a bit set again since is kept), and reads what it reconciles
   * (also the marks another member's online verify left in its own map
   * for this one: verify.c).
   */
  [RMR_MSG_MAP_ADD] = {ROLE_CLIENT, 0, 0},
  [RMR_MSG_MAP_GET] = {ROLE_CLIENT | ROLE_SYNC, RMR_HF_WATCH, 0},
  [RMR_MSG_MAP_CLEAR] = {ROLE_CLIENT | ROLE_SYNC, RMR_HF_WATCH, RMR_HF_WATCH},
  [RMR_MSG_AL_GET] = {ROLE_CLIENT, 0, 0},
  [RMR_MSG_CSUM] = {ROLE_SYNC, 0, 0}, /* a peer's online verify */
};

bool
role_allows (enum role role, const struct rmr_hdr *hdr, const char **why)
{
  const char *reason = NULL;

  if (role != ROLE_CLIENT && role != ROLE_SYNC)
    reason = "no such role";
  else if (hdr->type > RMR_MSG_TYPE_MAX || role_table[hdr->type].roles == 0)
    reason = "no joined session sends this type";
  else if (!(role_table[hdr->type].roles & role))
    reason = role == ROLE_SYNC ? "only the pool's client sends it"
                               : "only a sync session sends it";
  else if (role == ROLE_CLIENT &&
           (hdr->flags & role_table[hdr->type].sync_flags))
    reason = "a flag only a sync session sets";
  else if (role == ROLE_SYNC &&
           (hdr->flags & role_table[hdr->type].sync_needs) !=
             role_table[hdr->type].sync_needs)
    reason = "a peer clears only what it watched (the watch flag)";
  if (why)
    *why = reason;
  return reason == NULL;
}
