#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-sync-rejoin.sh: a sync session comes back by itself, promptly,
# when its peer returns (issue 10).  Regression: after node 2 was killed
# and restarted, node 1's sync session to it stayed failed ("connection
# closed by peer") for about a minute, until node 1 happened to need a
# chunk from it: a sync leg was joined again only on use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires_file "$RMR_STORAGED" "$RMRADM"
make_tmpdir
cluster_init 2

node_start 1 p 32M
node_start 2 p 32M
# The session node 1's config made to node 2.
sess=$(rmradm_n 1 ls rmr-client/pools/p/sessions | grep -F "${NODE_ADDR[2]}" |
  grep '/state' | head -1)
sess=${sess% (*}
[[ -n "$sess" ]] && ok "node 1 has a sync session to node 2" ||
  fail_test "node 1 has no sync session to node 2"

_sess_is ()
{
  [[ "$(rmradm_n 1 get "$sess" 2>/dev/null)" == "$1" ]]
}
# wait_state STATE SECS: the session is in STATE within SECS; prints the
# seconds it took.
wait_state ()
{
  local start=$SECONDS
  _wait_until "$2" _sess_is "$1" || return 1
  echo $((SECONDS - start))
}

t=$(wait_state normal 5) && ok "it joins by itself, without a resync using it (${t}s)" ||
  not_ok "it joins by itself, without a resync using it"
node_kill 2 KILL
t=$(wait_state failed 10) && ok "node 2 killed: the session is failed (${t}s)" ||
  not_ok "node 2 killed: the session is failed"
diag "last_error: $(rmradm_n 1 get "${sess%/state}/last_error")"
sleep 2
_sess_is failed && ok "it stays failed while node 2 is down" ||
  not_ok "it stays failed while node 2 is down"
node_start 2 p 32M
t=$(wait_state normal 5) && ok "node 2 back: normal again within 5 s (${t}s)" ||
  not_ok "node 2 back: normal again within 5 s (state $(rmradm_n 1 get "$sess"), last_error $(rmradm_n 1 get "${sess%/state}/last_error"))"
is "$(rmradm_n 1 get "${sess%/state}/member_id")" 42 "it is member 42 again"
done_testing
