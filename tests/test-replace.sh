#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-replace.sh: the admin guide's "Replace BRMR block device on an
# active pool group" under IO, at RF=2, with the acknowledged-write
# checker writing (rmr-storaged/replace.c has the invariants).
#
#   1. a writer goes on while node 2's store is removed (remove_store);
#   2. refusals, each a one-line error and nothing changed: a wrong
#      mapped_size, another pool's name, a disk that has rmr metadata;
#   3. add_store mode=replace of a new file, `sync start` right away (the
#      guide's order, before the leg is back): map_summary shows member
#      42 dirty everywhere, the leg comes back by itself and resyncs fully
#      from node 1;
#   4. again with the pool idle and the resync stopped, so that counts
#      are exact: mode=add of a disk without metadata is a replacement;
#      node 1 records every chunk for member 42, node 2 is behind
#      everywhere, and so it stays through
#   5. a compute-host crash and assemble, and a crash of node 2;
#   6. the compute host dies and the disk is replaced before it is back:
#      the assemble takes the replacement as a member without data;
#   7. node 2 loses its disk and restarts with a config file that formats
#      a new store: it becomes a replacement when the client enables it;
#      killed in the middle of its resync, it keeps what it has to fetch;
#   8. after a restart with no pool configured, the size comes from the
#      peer (a wrong one is refused naming it);
#   9. every acknowledged write reads back through the pool, through each
#      member alone, and from each store's data area; the data areas are
#      identical.
#  10. both disks replaced with no client up: the open is refused (the
#      pool is not created anew on disks that hold nothing).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

seq_init 2
# A raw plaintext sync session probes node 2 (part 4): under the tls test
# setup the nodes take TLS and plaintext (tls=on), the plugin uses TLS.
[[ -z "$CLUSTER_TLS" ]] || cluster_tls on

node_start 1 p 32M
node_start 2 p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s chunk-size=64K
ok "write A on both legs" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 4000 --flush-every 64

# ---------------------------------------------------------------------
# 1. The store goes, under IO.

start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
  --queue 8 --flush-every 64 --seconds 25 --timeout 20
w=$BG_PID
sleep 2
ok "remove_store on node 2 under IO" \
  rmradm_n 2 set brmr-server/stores/p/remove_store 1
is "$(rmradm_n 2 get rmr-server/pools/p/state)" empty "node 2's pool is empty"

# ---------------------------------------------------------------------
# 2. Refusals: one line naming the field, nothing changed.

new=$tmpdir/store2-new.img
# refused CMD...: the set fails with one line that matches PATTERN.
refused ()
{
  local desc=$1 pattern=$2 out rc=0
  shift 2
  out=$("$@" 2>&1) || rc=$?
  if [[ $rc -ne 0 && $(wc -l <<<"$out") -eq 1 ]] && grep -q -- "$pattern" <<<"$out"; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "status $rc: $out"
  fi
}
# like TEXT ERE DESC: TEXT has a line matching ERE.
like ()
{
  if grep -qE -- "$2" <<<"$1"; then
    ok "$3"
  else
    not_ok "$3"
    diag "$1"
  fi
}
refused "replace with a wrong mapped_size is refused, naming mapped_size" \
  "mapped_size: .*pool 'p' has 65536" \
  rmradm_n 2 set brmr-server/ctl/add_store \
  "device=$new pool=p mapped_size=1000 mode=replace"
[[ ! -e "$new" ]] && ok "the new disk was not touched" ||
  not_ok "the new disk was not touched"
rmradm_n 2 set rmr-server/ctl/join_pool 'poolname=q member_id=42' >&2
refused "replace into another pool (q, unknown here) is refused, naming mapped_size" \
  "mapped_size: the size of pool 'q' is not known" \
  rmradm_n 2 set brmr-server/ctl/add_store \
  "device=$new pool=q mapped_size=65536 mode=replace"
[[ ! -e "$new" ]] && ok "the new disk was still not touched" ||
  not_ok "the new disk was still not touched"
# A disk with metadata (another pool's store) is never overwritten.
other=$tmpdir/other.img
rmradm_n 2 set brmr-server/ctl/create_store "device=$other pool=q mapped_size=8M" >&2
rmradm_n 2 set brmr-server/stores/q/remove_store 1 >&2
before=$(md5sum <"$other")
refused "replace with a disk that has rmr metadata is refused (clear it first)" \
  "device: .*has rmr metadata of pool 'q' member 42.*clear it first" \
  rmradm_n 2 set brmr-server/ctl/add_store \
  "device=$other pool=p mode=replace"
is "$(md5sum <"$other")" "$before" "that disk is unchanged"
ok "leave pool q" rmradm_n 2 set rmr-server/pools/q/leave_pool 1
refused "node 2 still has no store for p" "no such store" \
  rmradm_n 2 get brmr-server/stores/p/state
is "$(rmradm_n 2 get rmr-server/pools/p/state)" empty "and its pool is still empty"

# ---------------------------------------------------------------------
# 3. The replacement, then `sync start` at once, as the guide does.

ok "add_store mode=replace of a new disk" \
  rmradm_n 2 set brmr-server/ctl/add_store \
  "device=$new pool=p mapped_size=65536 mode=replace"
NODE_STORE[2]=$new
ok "sync start right after (before the leg is back)" \
  rmradm_n 2 set rmr-server/pools/p/sync start
wait_leg_normal e 2 30
is "$(leg_state e 2)" normal "the leg to node 2 came back by itself"
# The writer goes on through the resync, then a little beyond it (its
# --seconds 25 only bounds it).
wait_in_sync 2 25 || true
rc=0
writer_stop "$w" 2000 || rc=$?
is "$rc" 0 "the writer saw no error through the replacement"
diag "node 1: $(rmradm_n 1 get rmr-server/pools/p/member_states | tr '\n' ';')"
diag "node 2: $(rmradm_n 2 get rmr-server/pools/p/sync | head -n 4 | tr '\n' ';')"
wait_in_sync 2 90 && ok "node 2 resynced everything from node 1" ||
  not_ok "node 2 resynced everything from node 1"
maps_clean 30 "every map is clean on both nodes"

# ---------------------------------------------------------------------
# 4. Again with the pool idle, so that the counts are exact: mode=add of
#    a disk without metadata is a replacement too; the new store is
#    behind for every chunk on both nodes before anything resyncs.

chunks=$((size / 65536))
ok "sync stop (kept for the next resync)" \
  rmradm_n 2 set rmr-server/pools/p/sync stop
ok "remove_store on node 2" rmradm_n 2 set brmr-server/stores/p/remove_store 1
new2=$tmpdir/store2-new2.img
truncate -s 40M "$new2"   # a new disk: no metadata, nothing at all
ok "add_store mode=add of a disk without metadata (a replacement)" \
  rmradm_n 2 set brmr-server/ctl/add_store \
  "device=$new2 pool=p mapped_size=65536 mode=add"
NODE_STORE[2]=$new2
like "$(rmradm_n 2 get rmr-server/pools/p/map_summary)" \
  "member 42: \\[0 1 2 .*\\] $chunks/$chunks dirty" \
  "before the leg is back, map_summary shows member 42 behind everywhere"
like "$(rmradm_n 2 get rmr-server/pools/p/sync)" "^dirty: $chunks\$" \
  "its resync status counts every chunk as still to do"
wait_leg_normal e 2 30
is "$(leg_state e 2)" normal "the leg to node 2 came back by itself"
is "$(dirty_count 1 42)" "$chunks" "node 1 recorded every chunk dirty for member 42"
is "$(dirty_count 2 42)" "$chunks" "node 2 is behind for every chunk of its own"
like "$(rmradm_n 1 get rmr-server/pools/p/member_states)" \
  "member 42: outdated" "node 1 sees member 42 outdated"
like "$(rmradm_n 2 get rmr-server/pools/p/member_states)" \
  "member 42: inconsistent .*(this member)" "node 2 sees itself inconsistent"
# A peer's resync read of the replacement, on the wire: refused.
# (A raw plaintext tcp socket, rmrwire.py: no raw socket speaks UCX.)
if [[ $RMR_TEST_TRANSPORT == tcp ]]; then
  out=$(ip netns exec "$(netns_name cli)" python3 - "${NODE_ADDR[2]%:*}" \
    "${NODE_ADDR[2]##*:}" <<'PY'
import os, struct, sys

sys.path.insert(0, os.environ["SRC_DIR"] + "/tests")
from rmrwire import connect, jhash  # noqa: E402

HDR = "<IBBHIIQQQIIII8x"
def hdr(type, gid, gen, tag, off, length, plen, mask, flags=0):
    return struct.pack(HDR, 0x31524d52, 1, type, flags, gid, 0xffffffff, gen,
                       tag, off, length, plen, 0, mask)
def recv_msg(s):
    h = b""
    while len(h) < 64:
        d = s.recv(64 - len(h))
        if not d:
            return None, b""
        h += d
    f = struct.unpack(HDR, h)
    p = b""
    while len(p) < f[10]:
        p += s.recv(f[10] - len(p))
    return f, p

s = connect(int(sys.argv[2]), host=sys.argv[1])
s.settimeout(20)
gid = jhash(b"p")
join = (b"p".ljust(64, b"\0") + b"probe".ljust(64, b"\0") +
        struct.pack("<BBHIIIQ", 0, 2, 0, 0, 16, 0, 0))
s.sendall(hdr(1, gid, 0, 1, 0, 0, len(join), 0) + join)
f, p = recv_msg(s)
assert f[11] == 0, ("join refused", p)
gen = struct.unpack_from("<Q", p, 24)[0]
for off in (0, 200 * 65536):
    s.sendall(hdr(4, gid, gen, 2, off, 65536, 0, 0))
    f, p = recv_msg(s)
    print("read", off, f[11], p.decode(errors="replace"))
PY
  ) || true
  diag "$out"
  [[ $(grep -c "^read .* 11 .*itself stale there" <<<"$out") -eq 2 ]] &&
    ok "a peer's resync read of the replacement is refused (stale there)" ||
    not_ok "a peer's resync read of the replacement is refused (stale there)"
else
  skip "a peer's resync read of the replacement is refused (stale there)" \
    "raw wire messages need tcp"
fi

# 5. Sequences: the compute host dies right after, then assembles; node 2
#    is killed and restarted before its resync began.  The new store is
#    never a source: it stays behind everywhere until it resynced.
kill_pid "$NBDKIT_PID" KILL
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s
is "$(dirty_count 2 42)" "$chunks" "after the assemble node 2 is still behind everywhere"
is "$(dirty_count 1 42)" "$chunks" "and node 1 still records it"
node_kill 2 KILL
node_start 2 p 32M sync_start=manual
wait_leg_normal e 2 30
is "$(dirty_count 2 42)" "$chunks" "after a crash of node 2 it is still behind everywhere"
verify_member 1 "every acknowledged write reads back through member 41"
ok "sync start, as the guide shows" rmradm_n 2 set rmr-server/pools/p/sync start
wait_in_sync 2 90 && ok "node 2 resynced everything again" ||
  not_ok "node 2 resynced everything again"
maps_clean 30 "every map is clean on both nodes"

# open_refused SOCK PATTERN DESC: an nbdkit open of pool p on every node
# (socket $tmpdir/SOCK.sock) exits with an error whose output matches the
# glob PATTERN.
open_refused ()
{
  local rc=0 out
  # shellcheck disable=SC2046
  out=$(netns_exec cli timeout 60 nbdkit -f -U "$tmpdir/$1.sock" "$RMR_PLUGIN" \
    pool=p $(servers $(all_nodes)) timeout=3s $(plugin_tls_args) 2>&1) || rc=$?
  # shellcheck disable=SC2053
  [[ $rc -ne 0 && "$out" == $2 ]] && ok "$3" || { not_ok "$3"; diag "$out"; }
}

# 6. The compute host dies, and the disk is replaced before it is back:
#    the assemble finds a replacement, a member without data whose old
#    disk may have held writes node 1 lacks (min-legs 1), so it refuses
#    until force=1; then it takes it as a member without data (not a
#    source), dirty for everything.
write_more ()
{
  ok "$1" "$checker" write "$uri" "$J" --blocks 4096 --writes 2000 \
    --flush-every 64
}
write_more "write C"
ok "sync stop" rmradm_n 2 set rmr-server/pools/p/sync stop
kill_pid "$NBDKIT_PID" KILL
ok "remove_store on node 2 (no client)" \
  rmradm_n 2 set brmr-server/stores/p/remove_store 1
new3=$tmpdir/store2-new3.img
ok "add_store mode=replace before the client is back" \
  rmradm_n 2 set brmr-server/ctl/add_store "device=$new3 pool=p mode=replace"
NODE_STORE[2]=$new3
like "$("$RMRADM" store-info "$new3")" "^state: +replacement" \
  "store-info says replacement"
open_refused x "*member 42 has a new store*force=1*" \
  "assemble with member 42's disk replaced is refused, naming it"
like "$("$RMRADM" store-info "$new3")" "^state: +replacement" \
  "the refusal changed nothing on the new store"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s force=1
wait_leg_normal e 2 30
is "$(dirty_count 1 42)" "$chunks" "assemble: node 1 records every chunk for member 42"
is "$(dirty_count 2 42)" "$chunks" "assemble: node 2 is behind everywhere"
like "$("$RMRADM" store-info "$new3")" "^state: +used" \
  "the replacement settled (its own map says it all)"
verify_member 1 "every acknowledged write reads back through member 41"

# 7. The disk is lost with the node: node 2 is killed and restarts with
#    a config file whose store is a new empty file (formatted as new);
#    it becomes a replacement when the client enables it.
node_kill 2 KILL
NODE_STORE[2]=$tmpdir/store2-new4.img
slow="sync_start=manual
sync_rate=4M"
node_start 2 p 32M "$slow"
wait_leg_normal e 2 30
is "$(leg_state e 2)" normal "the leg to the restarted node 2 is back"
is "$(dirty_count 1 42)" "$chunks" "node 1 records every chunk for member 42"
is "$(dirty_count 2 42)" "$chunks" "the new store is behind everywhere"
write_more "write D"
#    And it is killed in the middle of its resync (4 MB/s), restarted,
#    and finishes: what it had not fetched is still dirty, on both nodes.
ok "sync start (slow)" rmradm_n 2 set rmr-server/pools/p/sync start
_partly_synced ()
{
  local n
  n=$(dirty_count 2 42)
  [[ -n "$n" && $n -lt $((chunks - 64)) ]]
}
_wait_until 20 _partly_synced && ok "node 2 resynced part of it" ||
  not_ok "node 2 resynced part of it ($(dirty_count 2 42) left)"
# Clears reach the disk up to CLEAR_DELAY_MS (1 s, map.c) after they
# happen: give the first ones time to be saved before the crash, or all
# of them may come back (a burst of the rate limiter can finish 64
# chunks well within that second).
sleep 1.5
node_kill 2 KILL
node_start 2 p 32M "$slow"
wait_leg_normal e 2 30
left=$(dirty_count 2 42)
[[ ${left:-0} -gt 0 && ${left:-0} -lt $chunks ]] &&
  ok "after the crash mid-resync node 2 is still behind for $left chunks" ||
  not_ok "after the crash mid-resync node 2 is still behind for some chunks (${left:-?})"
# A chunk leaves node 1's map for member 42 only after node 2 fetched it
# and before node 2 clears its own bit (clears are saved lazily: more may
# come back after the crash, never fewer).
n1=$(dirty_count 1 42)
[[ ${left:-0} -ge ${n1:-1} ]] &&
  ok "node 2 still has every chunk node 1 records for it ($n1)" ||
  not_ok "node 2 still has every chunk node 1 records for it ($left < $n1)"
ok "sync start again" rmradm_n 2 set rmr-server/pools/p/sync start
wait_in_sync 2 90 && ok "node 2 finished its resync" ||
  not_ok "node 2 finished its resync"
maps_clean 30 "every map is clean on both nodes"
verify "node 2's data area alone holds every acknowledged write" "STORE:2"

# 8. Replacement after a restart, step by step: node 2 comes back with no
#    pool configured; it learns the pool's size from its peer.
node_kill 2 KILL
cat >"$tmpdir/n2-bare.conf" <<EOC
[storaged]
listen=$(node_url 2)
control=${NODE_CTL[2]}
EOC
rm -f "${NODE_CTL[2]}"
start_bg "$tmpdir/n2.pid" ip netns exec "$(netns_name n2)" "$RMR_STORAGED" \
  --config "$tmpdir/n2-bare.conf" --foreground --log-level info
NODE_PID[2]=$BG_PID
wait_for_socket "${NODE_CTL[2]}" 10
rmradm_n 2 set rmr-server/ctl/join_pool 'poolname=p member_id=42' >&2
rmradm_n 2 set rmr-client/ctl/join_pool 'poolname=p sync=y' >&2
ok "sync session to node 1" rmradm_n 2 set rmr-client/pools/p/add_sess \
  "sessname=n2@n1 path=$(node_url 1)"
new5=$tmpdir/store2-new5.img
ok "sync stop before any store (kept for the resync to come)" \
  rmradm_n 2 set rmr-server/pools/p/sync stop
refused "after a restart a wrong mapped_size is refused with the peer's" \
  "mapped_size: 1000 sectors, but pool 'p' has 65536 .as member 41 holds it" \
  rmradm_n 2 set brmr-server/ctl/add_store \
  "device=$new5 pool=p mapped_size=1000 mode=replace"
ok "add_store mode=replace after a restart" \
  rmradm_n 2 set brmr-server/ctl/add_store \
  "device=$new5 pool=p mapped_size=65536 mode=replace"
NODE_STORE[2]=$new5
wait_leg_normal e 2 30
is "$(leg_state e 2)" normal "the leg to node 2 is back"
is "$(dirty_count 2 42)" "$chunks" "the replacement is behind everywhere"
ok "sync start" rmradm_n 2 set rmr-server/pools/p/sync start
wait_in_sync 2 90 && ok "node 2 resynced everything" ||
  not_ok "node 2 resynced everything"
maps_clean 30 "every map is clean on both nodes"

# ---------------------------------------------------------------------
# 9. Every acknowledged write, everywhere.

verify "every acknowledged write reads back through the pool" "$uri"
kill_pid "$NBDKIT_PID"
for i in 1 2; do
  # shellcheck disable=SC2046
  nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s \
    read-policy=member:$((40 + i))
  verify_member "$i" "every acknowledged write reads back through member $((40 + i)) alone"
  kill_pid "$NBDKIT_PID"
done
for i in 1 2; do
  verify "node $i's data area alone holds every acknowledged write" "STORE:$i"
done
ok "the data areas are identical" all_legs_identical "$size"

# 10. Both disks replaced while no client is up: every store is new, so
#     the pool's data is on none of them; the client must not create the
#     pool on them (each would wait forever for a source) but refuse,
#     naming the replaced disks.
for i in 1 2; do
  ok "remove_store on node $i" rmradm_n "$i" set brmr-server/stores/p/remove_store 1
  ok "add_store mode=replace on node $i" rmradm_n "$i" set brmr-server/ctl/add_store \
    "device=$tmpdir/store$i-last.img pool=p mode=replace"
done
open_refused y "*no store here holds the pool*member 41, 42 is a replaced disk*" \
  "every disk replaced: the open is refused, naming them"
for i in 1 2; do
  like "$("$RMRADM" store-info "$tmpdir/store$i-last.img")" "^state: +replacement" \
    "and node $i's new store is untouched"
done
done_testing
