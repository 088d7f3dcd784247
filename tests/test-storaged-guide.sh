#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-storaged-guide.sh: the admin guide's storage-node steps in its own
# order, typed at the control interface (issue 10):
#   - "Create sync pool" and "Initial sync": map_summary and `sync start`
#     right after the sync pool setup, before any client enabled the pool
#     (map_summary in the guide's form, `sync start` accepted and kept);
#   - the deletion rules: rmr-client/pools/NAME/leave_pool is refused
#     while the sync pool has sessions (rule 1), rmr-server/pools/NAME/
#     leave_pool while a store is registered (rule 2), each a one-line
#     error, nothing changed;
#   - "Graceful exit" step 5 on a storage node: both leave_pools, in the
#     guide's order and in the other, and joining again afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
CLUSTER_TLS=

requires_file "$RMR_STORAGED" "$RMRADM"
make_tmpdir

# Two daemons with nothing configured but their address and socket.
declare -A ADDR CTL
for i in 1 2; do
  ADDR[$i]=127.0.0.1:$(free_port)
  CTL[$i]=$tmpdir/ctl$i.sock
  cat >"$tmpdir/n$i.conf" <<EOC
[storaged]
listen=$(transport_url "${ADDR[$i]}")
control=${CTL[$i]}
EOC
  start_bg "$tmpdir/n$i.pid" "$RMR_STORAGED" --config "$tmpdir/n$i.conf" \
    --foreground --log-level info
  wait_for_socket "${CTL[$i]}" 10
done
adm ()
{
  local i=$1
  shift
  "$RMRADM" -s "${CTL[$i]}" "$@"
}
# refused DESC PATTERN CMD...: fails with one line matching PATTERN.
refused ()
{
  local desc=$1 pattern=$2 out rc=0
  shift 2
  out=$("$@" 2>&1) || rc=$?
  if [[ $rc -ne 0 && $(wc -l <<<"$out") -eq 1 ]] && grep -qE -- "$pattern" <<<"$out"; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "status $rc: $out"
  fi
}

# "Create RMR pool", "Create (BRMR) Store", "Create sync pool".
for i in 1 2; do
  j=$((3 - i))
  ok "node $i: join_pool" adm "$i" set rmr-server/ctl/join_pool \
    "poolname=ionos_pool member_id=$((41 + i))"
  ok "node $i: create_store" adm "$i" set brmr-server/ctl/create_store \
    "device=$tmpdir/store$i.img pool=ionos_pool mapped_size=204800"
done
for i in 1 2; do
  j=$((3 - i))
  ok "node $i: sync pool" adm "$i" set rmr-client/ctl/join_pool \
    'poolname=ionos_pool chunk_size=131072 sync=y'
  ok "node $i: sync session" adm "$i" set rmr-client/pools/ionos_pool/add_sess \
    "sessname=stg$i@stg$j path=$(transport_url "${ADDR[$j]}")"
  ok "node $i: add_clt" adm "$i" set rmr-server/pools/ionos_pool/add_clt ionos_pool
done

# "Initial sync", before any client: the guide's commands work.
is "$(adm 2 get rmr-server/pools/ionos_pool/map_summary)" \
  "member 43: [] 0/800 dirty" "map_summary before the first IO, in the guide's form"
ok "sync start before the first IO is accepted" \
  adm 2 set rmr-server/pools/ionos_pool/sync start
grep -q "starts by itself" <<<"$(adm 2 get rmr-server/pools/ionos_pool/sync)" &&
  ok "the sync status says the resync starts with the pool's maps" ||
  not_ok "the sync status says the resync starts with the pool's maps"
ok "rmradm sync --wait: nothing to resync yet" \
  "$RMRADM" -s "${CTL[2]}" sync ionos_pool --wait --timeout 5
is "$(adm 2 get rmr-server/pools/ionos_pool/state)" registered "state registered"

# Deletion rules 1 and 2.
refused "rule 1: the sync pool's leave_pool is refused while it has sessions" \
  "still has sync sessions \(stg1@stg2\): del_sess them first" \
  adm 1 set rmr-client/pools/ionos_pool/leave_pool 1
refused "rule 2: the server pool's leave_pool is refused while a store is registered" \
  "still has a store" adm 1 set rmr-server/pools/ionos_pool/leave_pool 1
is "$(adm 1 ls rmr-client/pools/ionos_pool/sessions | grep -c '/state' || true)" 1 \
  "nothing changed: the session is there"
is "$(adm 1 get rmr-server/pools/ionos_pool/state)" registered \
  "nothing changed: the pool still has its store"

# "Graceful exit", on the storage nodes: node 1 in the guide's order
# (server pool, then sync pool), node 2 the other way round.
for i in 1 2; do
  j=$((3 - i))
  ok "node $i: del_sess" adm "$i" set \
    "rmr-client/pools/ionos_pool/sessions/stg$i@stg$j/del_sess" mode=disassemble
  ok "node $i: remove_store" adm "$i" set brmr-server/stores/ionos_pool/remove_store 1
done
ok "node 1: rmr-server leave_pool" adm 1 set rmr-server/pools/ionos_pool/leave_pool 1
is "$(adm 1 ls rmr-server/pools | grep -c ionos_pool || true)" 0 "node 1: the server pool is gone"
adm 1 ls rmr-client/pools | grep -q '^rmr-client/pools/ionos_pool/leave_pool' &&
  ok "node 1: its sync pool is still there" ||
  not_ok "node 1: its sync pool is still there"
ok "node 1: rmr-client leave_pool" adm 1 set rmr-client/pools/ionos_pool/leave_pool 1
is "$(adm 1 ls rmr-client/pools | grep -c ionos_pool || true)" 0 "node 1: the sync pool is gone"
refused "node 1: a second leave_pool names the pool" "no such pool: ionos_pool" \
  adm 1 set rmr-client/pools/ionos_pool/leave_pool 1

ok "node 2: rmr-client leave_pool first" adm 2 set rmr-client/pools/ionos_pool/leave_pool 1
refused "node 2: a left sync pool takes no session" "no such pool: ionos_pool" \
  adm 2 set rmr-client/pools/ionos_pool/add_sess "sessname=x path=$(transport_url "${ADDR[1]}")"
ok "node 2: rmr-server leave_pool" adm 2 set rmr-server/pools/ionos_pool/leave_pool 1
is "$(adm 2 ls rmr-server/pools rmr-client/pools 2>/dev/null | grep -c ionos_pool || true)" 0 \
  "node 2: the pool is gone"

# And back, as after a reboot: the store kept its metadata (add_store).
ok "node 1: join_pool again" adm 1 set rmr-server/ctl/join_pool \
  "poolname=ionos_pool member_id=42"
ok "node 1: add_store mode=add of the kept store" adm 1 set brmr-server/ctl/add_store \
  "device=$tmpdir/store1.img pool=ionos_pool mapped_size=204800 mode=add"
ok "node 1: the sync pool again" adm 1 set rmr-client/ctl/join_pool \
  'poolname=ionos_pool chunk_size=131072 sync=y'
done_testing
