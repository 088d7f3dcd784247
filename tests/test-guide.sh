#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-guide.sh: the admin guide (seeds/002), flow by flow in its own
# order, with its paths, names and parameters, through rmradm get/set
# (the guide's cat/echo).  Two storage nodes start with nothing but a
# listener and a control socket; nbdkit starts with only control=.
#
#   configure: client join_pool; rmr-server join_pool (members 42, 43);
#     create_store; add_sess mode=create + enable per session; the sync
#     pools (join_pool sync=y, add_sess, add_clt); initial sync (sync
#     start, map_summary); map_device; the device as brmr0;
#   IO and the health checks the guide shows (pool and session states,
#     member_id, device state and size, store state, mapped_size,
#     bdev_name, dev_size, map_summary);
#   storage node crash (kill -9), writes while it is away, its map on the
#     survivor, recovery as the guide says (join_pool, add_store mode=add,
#     sync pool again), the client's automatic reconnect;
#   compute client crash (kill -9): no_io on the nodes, assemble in a new
#     nbdkit, map_device;
#   disk replacement (remove_store, add_store mode=replace, sync start),
#     with a wrong mapped_size refused;
#   graceful disassemble and reassemble;
#   deleting the legs one by one.
# After every resync the data is checked through the pool against a
# reference file, and by comparing the stores' data areas, each leg
# read alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires nbdcopy --version
requires nbdkit --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

POOL=ionos_pool
SECTORS=204800 # the guide's 100 MB
BYTES=$((SECTORS * 512))
cluster_init 2
declare -A SESS SYNC MEMBER
MEMBER[1]=42
MEMBER[2]=43
SESS[1]=psrv0@stg-rmr0
SESS[2]=psrv0@stg-rmr1
SYNC[1]=stg-rmr0@stg-rmr1 # node 1's sync session, to node 2
SYNC[2]=stg-rmr1@stg-rmr0

# A storage node with nothing configured: the guide's modprobe.
node_bare ()
{
  NODE_STORE[$1]=${NODE_STORE[$1]:-$tmpdir/sda$1.img}
  node_start "$1" -
}

# The guide's path of node I: its "ip:HOST:PORT" form, which means tcp;
# under ucx the node's ucx:HOST:PORT.
path_of ()
{
  if [[ $RMR_TEST_TRANSPORT == tcp ]]; then
    echo "ip:${NODE_ADDR[$1]}"
  else
    node_url "$1"
  fi
}

n () { rmradm_n "$@"; }
c () { rmradm_c c "$@"; }
other () { echo $((3 - $1)); }

# The guide's sync pool on node i: join, a session to the other node,
# attach it to the server pool.
sync_pool ()
{
  local i=$1 j
  j=$(other "$i")
  n "$i" set rmr-client/ctl/join_pool "poolname=$POOL chunk_size=131072 sync=y" &&
    n "$i" set "rmr-client/pools/$POOL/add_sess" \
      "sessname=${SYNC[$i]} path=$(path_of "$j")" &&
    n "$i" set "rmr-server/pools/$POOL/add_clt" "$POOL"
}

# The reference copy of what the device must hold.
truncate -s "$BYTES" "$tmpdir/expect.img"

# pwrite_ref OFF LEN: LEN random bytes at OFF through the device, and
# into the reference.
pwrite_ref ()
{
  local off=$1 len=$2
  head -c "$len" /dev/urandom >"$tmpdir/blk"
  nbdsh -u "$(nbd_uri c)" -c "
with open('$tmpdir/blk', 'rb') as f:
    h.pwrite(f.read(), $off)
h.flush()" &&
    dd if="$tmpdir/blk" of="$tmpdir/expect.img" bs=64K seek="$off" \
      oflag=seek_bytes conv=notrunc status=none
}

# Some writes spread over the device (chunks of 128K).
write_some ()
{
  local k
  for k in "$@"; do
    pwrite_ref $((k * 131072 + 4096)) 65536 || return 1
  done
}

# The device reads as the reference, through the pool.
pool_matches ()
{
  rm -f "$tmpdir/dev.img"
  nbdcopy "$(nbd_uri c)" "$tmpdir/dev.img" &&
    cmp "$tmpdir/dev.img" "$tmpdir/expect.img"
}

# Node i's map of itself clean and its sync idle.
synced ()
{
  n "$1" get "rmr-server/pools/$POOL/sync" 2>/dev/null | grep -q '^dirty: 0$'
}

# Every leg read alone: each store's data area is the reference.
legs_match ()
{
  local i
  for i in "$@"; do
    store_cmp "$i" "$tmpdir/expect.img" "$BYTES" || return 1
  done
}

sess_state () { c get "rmr-client/pools/$POOL/sessions/${SESS[$1]}/state"; }
sess_data () { c get "rmr-client/pools/$POOL/sessions/${SESS[$1]}/data_state"; }
srv_state () { n "$1" get "rmr-server/pools/$POOL/state"; }
sync_state () { n "$1" get "rmr-client/pools/$POOL/sessions/${SYNC[$1]}/state"; }
# is_state WHAT I STATE: the state getter WHAT of node or leg I is STATE.
is_state () { [[ "$("$1" "$2" 2>/dev/null)" == "$3" ]]; }

# ---------------------------------------------------------------------
# Configure RMR pool on storage and client.
node_bare 1
node_bare 2
nbdkit_start c
wait_for_socket "$tmpdir/c.ctl" 15

ok "client: join_pool" \
  c set rmr-client/ctl/join_pool "poolname=$POOL chunk_size=131072"
for i in 1 2; do
  ok "storage $i: join_pool member_id=${MEMBER[$i]}" \
    n "$i" set rmr-server/ctl/join_pool "poolname=$POOL member_id=${MEMBER[$i]}"
  is "$(srv_state "$i")" empty "storage $i: pool empty before a store"
  truncate -s 200M "${NODE_STORE[$i]}"
  ok "storage $i: create_store" \
    n "$i" set brmr-server/ctl/create_store \
    "device=${NODE_STORE[$i]} pool=$POOL mapped_size=$SECTORS"
  is "$(srv_state "$i")" registered "storage $i: pool registered"
done
for i in 1 2; do
  ok "client: add_sess ${SESS[$i]} mode=create" \
    c set "rmr-client/pools/$POOL/add_sess" \
    "sessname=${SESS[$i]} path=$(path_of "$i") mode=create"
  ok "client: enable ${SESS[$i]}" \
    c set "rmr-client/pools/$POOL/sessions/${SESS[$i]}/enable" 1
  is "$(srv_state "$i")" created \
    "storage $i: pool created (a create-mode session joined)"
  is "$(sess_state "$i")" created "client: ${SESS[$i]} created"
done

# Create sync pool, on each storage node.
for i in 1 2; do
  ok "storage $i: sync pool (join_pool sync=y, add_sess, add_clt)" sync_pool "$i"
done

# Initial sync: the guide starts it on the node that joined second, and
# watches map_summary.
ok "storage 2: sync start" n 2 set "rmr-server/pools/$POOL/sync" start
ok "storage 2: map_summary" n 2 get "rmr-server/pools/$POOL/map_summary"

# Map the BRMR block device on the client.
ok "client: map_device" \
  c set brmr-client/ctl/map_device "pool=$POOL size=$SECTORS"
is "$(c get brmr-client/ctl/devices/brmr0/state)" ready "brmr0 is ready"
is "$(c get brmr-client/ctl/devices/brmr0/block/size)" "$SECTORS" \
  "brmr0 block/size"

# ---------------------------------------------------------------------
# IO, and the health checks.
ok "writes through the device" write_some 0 3 17 100 799
ok "the device reads back" pool_matches
for i in 1 2; do
  is "$(srv_state "$i")" normal "storage $i: pool normal"
  is "$(sess_state "$i")" normal "client: ${SESS[$i]} normal"
  is "$(c get "rmr-client/pools/$POOL/sessions/${SESS[$i]}/member_id")" \
    "${MEMBER[$i]}" "client: ${SESS[$i]} is member ${MEMBER[$i]}"
  is "$(n "$i" get "rmr-server/pools/$POOL/member_id")" "${MEMBER[$i]}" \
    "storage $i: member_id"
  is "$(n "$i" get "rmr-client/pools/$POOL/sessions/${SYNC[$i]}/state")" \
    normal "storage $i: sync session normal"
  is "$(n "$i" get "brmr-server/stores/$POOL/state" | tr '\n' ' ')" \
    "open mapped " "storage $i: store open, mapped"
  is "$(n "$i" get "brmr-server/stores/$POOL/mapped_size")" "$SECTORS" \
    "storage $i: store mapped_size"
  is "$(n "$i" get "brmr-server/stores/$POOL/bdev_name")" \
    "$(basename "${NODE_STORE[$i]}")" "storage $i: bdev_name"
  is "$(n "$i" get "brmr-server/stores/$POOL/dev_size")" $((200 << 11)) \
    "storage $i: dev_size (sectors of the disk)"
done
is "$(n 1 get "rmr-server/pools/$POOL/map_summary")" \
  "member 42: [] 0/800 dirty
member 43: [] 0/800 dirty" "map_summary: nothing dirty"
ok "legs identical to the reference" legs_match 1 2

# ---------------------------------------------------------------------
# Recover after storage node crash.
node_kill 2 KILL
ok "writes while storage 2 is down" write_some 5 6 400
ok "client: ${SESS[2]} failed" _wait_until 10 is_state sess_state 2 failed
ok "storage 1 records 3 chunks dirty for member 43" \
  grep -q '^member 43: \[5 6 400\] 3/800 dirty' \
  <<<"$(n 1 get "rmr-server/pools/$POOL/map_summary")"
node_bare 2
ok "storage 2: join_pool again" \
  n 2 set rmr-server/ctl/join_pool "poolname=$POOL member_id=43"
ok "storage 2: add_store mode=add" \
  n 2 set brmr-server/ctl/add_store \
  "device=${NODE_STORE[2]} pool=$POOL mapped_size=$SECTORS mode=add"
ok "storage 2: sync pool again" sync_pool 2
ok "client reconnects ${SESS[2]} by itself" \
  _wait_until 30 is_state sess_state 2 normal
ok "storage 2 resynced" _wait_until 30 synced 2
ok "storage 1's sync session to the returned node is normal" \
  _wait_until 15 is_state sync_state 1 normal
ok "the device reads back" pool_matches
ok "legs identical to the reference" legs_match 1 2

# ---------------------------------------------------------------------
# Recover after compute client crash.
kill_pid "$NBDKIT_PID" KILL
for i in 1 2; do
  ok "storage $i: no_io after the client crash" \
    _wait_until 20 is_state srv_state "$i" no_io
done
nbdkit_start c
wait_for_socket "$tmpdir/c.ctl" 15
ok "client: join_pool" \
  c set rmr-client/ctl/join_pool "poolname=$POOL chunk_size=131072"
for i in 1 2; do
  ok "client: add_sess ${SESS[$i]} mode=assemble" \
    c set "rmr-client/pools/$POOL/add_sess" \
    "sessname=${SESS[$i]} path=$(path_of "$i") mode=assemble"
done
for i in 1 2; do
  is "$(srv_state "$i")" normal \
    "storage $i: normal, the client enabled the pool by itself"
done
ok "client: map_device" \
  c set brmr-client/ctl/map_device "pool=$POOL size=$SECTORS"
ok "the device reads back after the client crash" pool_matches
ok "writes after the assemble" write_some 7 8
ok "legs identical to the reference" legs_match 1 2

# ---------------------------------------------------------------------
# Replace BRMR block device on an active pool group.
ok "storage 2: remove_store" n 2 set "brmr-server/stores/$POOL/remove_store" 1
ok "writes while storage 2 has no disk" write_some 20 21
ok "client: ${SESS[2]} failed" _wait_until 10 is_state sess_state 2 failed
truncate -s 200M "$tmpdir/sda2-new.img"
adm_refused ()
{
  local out
  if out=$(n "$@" 2>&1); then
    return 1
  fi
  diag "$out"
  [[ "$out" == *mapped_size* ]]
}
ok "storage 2: add_store mode=replace with a wrong mapped_size is refused" \
  adm_refused 2 set brmr-server/ctl/add_store \
  "device=$tmpdir/sda2-new.img pool=$POOL mapped_size=1000 mode=replace"
ok "storage 2: add_store mode=replace of the new disk" \
  n 2 set brmr-server/ctl/add_store \
  "device=$tmpdir/sda2-new.img pool=$POOL mapped_size=$SECTORS mode=replace"
NODE_STORE[2]=$tmpdir/sda2-new.img
ok "storage 2: sync start" n 2 set "rmr-server/pools/$POOL/sync" start
ok "client: ${SESS[2]} normal again" _wait_until 30 is_state sess_state 2 normal
ok "storage 2 resynced the whole disk" _wait_until 60 synced 2
# The client hears of it a moment later; until then it refuses to take
# out the other leg (the only one it knows to be up to date).
ok "client: ${SESS[2]} up to date" _wait_until 30 is_state sess_data 2 up-to-date
ok "the device reads back after the replacement" pool_matches
ok "legs identical to the reference" legs_match 1 2

# ---------------------------------------------------------------------
# Graceful exit: disassemble (data preserved), then assemble again.
ok "client: unmap_device brmr0" c set brmr-client/ctl/devices/brmr0/unmap_device 1
for i in 1 2; do
  ok "storage $i: del_sess ${SYNC[$i]} mode=disassemble" \
    n "$i" set "rmr-client/pools/$POOL/sessions/${SYNC[$i]}/del_sess" \
    mode=disassemble
done
for i in 1 2; do
  ok "client: del_sess ${SESS[$i]} mode=disassemble" \
    c set "rmr-client/pools/$POOL/sessions/${SESS[$i]}/del_sess" \
    mode=disassemble
done
for i in 1 2; do
  ok "storage $i: remove_store" n "$i" set "brmr-server/stores/$POOL/remove_store" 1
done
ok "client: leave_pool" c set "rmr-client/pools/$POOL/leave_pool" 1
for i in 1 2; do
  ok "storage $i: rmr-server leave_pool" \
    n "$i" set "rmr-server/pools/$POOL/leave_pool" 1
  ok "storage $i: rmr-client leave_pool (the sync pool)" \
    n "$i" set "rmr-client/pools/$POOL/leave_pool" 1
  is "$(n "$i" ls rmr-server/pools)" "" "storage $i: no pool left"
done

for i in 1 2; do
  ok "storage $i: join_pool" \
    n "$i" set rmr-server/ctl/join_pool "poolname=$POOL member_id=${MEMBER[$i]}"
  ok "storage $i: add_store mode=add (metadata kept)" \
    n "$i" set brmr-server/ctl/add_store \
    "device=${NODE_STORE[$i]} pool=$POOL mapped_size=$SECTORS mode=add"
done
for i in 1 2; do
  ok "storage $i: sync pool" sync_pool "$i"
done
ok "client: join_pool" \
  c set rmr-client/ctl/join_pool "poolname=$POOL chunk_size=131072"
for i in 1 2; do
  ok "client: add_sess ${SESS[$i]} mode=assemble" \
    c set "rmr-client/pools/$POOL/add_sess" \
    "sessname=${SESS[$i]} path=$(path_of "$i") mode=assemble"
done
ok "client: map_device" \
  c set brmr-client/ctl/map_device "pool=$POOL size=$SECTORS"
ok "the device reads back after disassemble and assemble" pool_matches
ok "writes after the reassemble" write_some 9 10 11
ok "legs identical to the reference" legs_match 1 2

# ---------------------------------------------------------------------
# Delete a leg, and eventually the full pool.
ok "client: unmap_device" c set brmr-client/ctl/devices/brmr0/unmap_device 1
ok "storage 2: del_sess ${SYNC[2]} (the deleted leg's sync session)" \
  n 2 set "rmr-client/pools/$POOL/sessions/${SYNC[2]}/del_sess" mode=disassemble
ok "storage 1: del_sess ${SYNC[1]} (the peer's, toward the deleted leg)" \
  n 1 set "rmr-client/pools/$POOL/sessions/${SYNC[1]}/del_sess" mode=disassemble
ok "client: del_sess ${SESS[2]} mode=delete" \
  c set "rmr-client/pools/$POOL/sessions/${SESS[2]}/del_sess" mode=delete
ok "storage 2: delete_store" n 2 set "brmr-server/stores/$POOL/delete_store" 1
ok "storage 2: rmr-server leave_pool" n 2 set "rmr-server/pools/$POOL/leave_pool" 1
ok "storage 2: rmr-client leave_pool" n 2 set "rmr-client/pools/$POOL/leave_pool" 1
ok "storage 2's disk has no metadata left" \
  bash -c "! '$RMRADM' store-info '${NODE_STORE[2]}' >/dev/null 2>&1"
ok "the pool maps again on the remaining leg, without force" \
  c set brmr-client/ctl/map_device "pool=$POOL size=$SECTORS"
ok "the device reads back on one leg" pool_matches
ok "writes on one leg" write_some 12
ok "storage 1 records nothing for the deleted member" \
  bash -c "! grep -q 'member 43' <<<\"\$('$RMRADM' -s '${NODE_CTL[1]}' get rmr-server/pools/$POOL/map_summary)\""
ok "storage 1 is the reference" legs_match 1

ok "client: unmap_device" c set brmr-client/ctl/devices/brmr0/unmap_device 1
ok "client: del_sess ${SESS[1]} mode=delete" \
  c set "rmr-client/pools/$POOL/sessions/${SESS[1]}/del_sess" mode=delete
ok "storage 1: delete_store" n 1 set "brmr-server/stores/$POOL/delete_store" 1
ok "storage 1: rmr-server leave_pool" n 1 set "rmr-server/pools/$POOL/leave_pool" 1
ok "storage 1: rmr-client leave_pool" n 1 set "rmr-client/pools/$POOL/leave_pool" 1
ok "client: leave_pool" c set "rmr-client/pools/$POOL/leave_pool" 1
is "$(c ls rmr-client/pools)" "" "client: no pool left"

done_testing
