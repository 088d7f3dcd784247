#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-verify.sh RF: online verify (rmradm verify) of an RF-leg pool with
# a writer running on the first half of the device.
#   - identical legs, written with no flush and the client idle since:
#     0 differing, every chunk checked (the idle client's horizon);
#   - a node stopped, bytes flipped in its store's data area (offsets from
#     rmradm store-info) in chunks of the second half, started again:
#     verify --wait reports exactly the chunks flipped (no chunk a write
#     in flight made differ for a moment);
#   - RF=2: without --source it reports only (the legs still differ);
#     with the good member as --source it marks the others outdated, they
#     resync, and every leg holds the same bytes; the same from the
#     flipped node itself (its own chunks outdated);
#   - RF=3: the majority rule repairs without a source;
#   - bad input (an unknown source, a bad rate, a verify while one runs)
#     is refused with the field named; --stop ends a running verify;
#     rmradm status shows the last verify.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

rf=${1:-2}
size=$((32 << 20))
chunk=$((64 << 10))
nchunks=$((size / chunk))
requires fio --version
requires nbdsh --version
requires nbdcopy --version
requires python3 --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init "$rf"

for ((i = 1; i <= rf; i++)); do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(seq 1 "$rf")) chunk-size=64K
uri=$(nbd_uri e)
nbdsh -u "$uri" -c '
import os
for off in range(0, 32 << 20, 1 << 20):
    h.pwrite(os.urandom(1 << 20), off)'
# No flush: the members learn that the last writes are done on every leg
# from the horizon the client sends once idle (1-2 s; the verify compares
# only settled ranges, and would skip the last ones).
sleep 4

# verify_field OUT KEY: the value of "KEY: value" in a verify's output.
verify_field ()
{
  awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' <<<"$1"
}

# flip NODE CHUNK...: flip one byte in the middle of each chunk of NODE's
# stopped store.
flip ()
{
  local node=$1 off
  shift
  off=$(store_data_offset "$node")
  python3 - "${NODE_STORE[$node]}" "$off" "$chunk" "$@" <<'PY'
import sys
path, off, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    for c in sys.argv[4:]:
        pos = off + int(c) * chunk + 1000
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0xff]))
PY
}

all_clean ()
{
  local i j
  for ((i = 1; i <= rf; i++)); do
    _in_sync "$i" || return 1
    for ((j = 1; j <= rf; j++)); do
      [[ "$(dirty_count "$i" $((40 + j)))" == 0 ]] || return 1
    done
  done
}

# Identical legs first.
out=$(rmradm_n 1 verify p --wait 2>&1) || true
diag "$out"
is "$(verify_field "$out" state)" "done" "verify of identical legs finishes"
is "$(verify_field "$out" differing)" 0 "and finds 0 differing chunks"
is "$(verify_field "$out" checked)" "$nchunks" "after checking all $nchunks chunks"

# A writer on the first half of the device for the rest of the test.
start_bg "$tmpdir/fio.pid" fio --name=w --ioengine=nbd --uri="$uri" \
  --rw=randwrite --bs=4k --offset=0 --size=16M --iodepth=4 --rate_iops=400 \
  --time_based --runtime=600 --output="$tmpdir/fio.out"
fio_pid=$BG_PID
sleep 1

# Bad input changes nothing.
out=$(rmradm_n 1 verify p --source 99 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"source: member 99"* ]] &&
  ok "an unknown --source is refused, naming the source" ||
  not_ok "an unknown --source is refused, naming the source ($out)"
out=$(rmradm_n 1 verify p --rate fast 2>&1) && rc=0 || rc=$?
[[ $rc -eq 2 && "$out" == *"--rate"* ]] &&
  ok "a bad --rate is a usage error naming --rate" ||
  not_ok "a bad --rate is a usage error naming --rate ($out)"
out=$(rmradm_n 1 set rmr-server/pools/p/verify op=begin 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"op: 'begin'"* ]] &&
  ok "an unknown op is refused, naming op" ||
  not_ok "an unknown op is refused, naming op ($out)"
ok "a slow verify starts" rmradm_n 1 verify p --rate 256K
out=$(rmradm_n 1 verify p 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"a verify is running"* ]] &&
  ok "a second verify while one runs is refused" ||
  not_ok "a second verify while one runs is refused ($out)"
ok "verify --stop ends it" rmradm_n 1 verify p --stop
out=$(rmradm_n 1 get rmr-server/pools/p/verify)
is "$(verify_field "$out" state)" stopped "and its state says stopped"

# Flip bytes on the last node while it is down.
last=$rf
if [[ $rf -eq 2 ]]; then
  flipped=(300 301 450)
  node_kill "$last"
  flip "$last" "${flipped[@]}"
else
  # One chunk on node 3, another on node 2: a majority for each.
  flipped=(300 301)
  node_kill 3
  flip 3 300
  node_kill 2
  flip 2 301
  node_start 2 p 32M
fi
node_start "$last" p 32M
for ((i = 2; i <= rf; i++)); do wait_leg_normal e "$i" 30; done
_wait_until 60 all_clean || diag "not every map clean before the verify"

want_first=""
for c in "${flipped[@]}"; do want_first+="${want_first:+ }$((c * chunk))"; done

if [[ $rf -eq 2 ]]; then
  out=$(rmradm_n 1 verify p --wait 2>&1) || true
  diag "$out"
  is "$(verify_field "$out" differing)" "${#flipped[@]}" \
    "verify reports exactly the ${#flipped[@]} chunks flipped"
  is "$(verify_field "$out" first)" "$want_first" "at their offsets"
  is "$(verify_field "$out" repaired)" 0 \
    "two members and no --source: reported only"
  if legs_identical 1 2 "$size" >/dev/null 2>&1; then
    not_ok "and the legs still differ"
  else
    ok "and the legs still differ"
  fi
  rmradm_n 1 status | grep -A1 "^rmr-server/pools/p/verify:" |
    grep -q "^  last verify: .*, ${#flipped[@]} differing" &&
    ok "rmradm status shows the last verify" ||
    not_ok "rmradm status shows the last verify"

  out=$(rmradm_n 1 verify p --source 41 --wait 2>&1) || true
  diag "$out"
  is "$(verify_field "$out" differing)" "${#flipped[@]}" \
    "verify --source 41 finds them again"
  is "$(verify_field "$out" repaired)" "${#flipped[@]}" "and marks them"
  is "$(verify_field "$out" outdated)" "member 42: ${#flipped[@]} chunks" \
    "outdated on member 42"
  _wait_until 60 all_clean && ok "member 42 resynced them" ||
    not_ok "member 42 resynced them"
  out=$(rmradm_n 1 verify p --wait 2>&1) || true
  is "$(verify_field "$out" differing)" 0 "a verify after the repair: 0"

  # From the flipped node itself: its own chunks are outdated.
  node_kill 2
  flip 2 460
  node_start 2 p 32M
  wait_leg_normal e 2 30
  _wait_until 60 all_clean || diag "not every map clean before the verify"
  out=$(rmradm_n 2 verify p --source 41 --wait 2>&1) || true
  diag "$out"
  is "$(verify_field "$out" first)" $((460 * chunk)) \
    "verify on the flipped node finds its chunk"
  is "$(verify_field "$out" outdated)" "member 42: 1 chunks" \
    "and marks itself outdated"
  _wait_until 60 all_clean && ok "it resynced the chunk" ||
    not_ok "it resynced the chunk"
else
  out=$(rmradm_n 1 verify p --wait 2>&1) || true
  diag "$out"
  is "$(verify_field "$out" differing)" "${#flipped[@]}" \
    "verify reports exactly the chunks flipped"
  is "$(verify_field "$out" first)" "$want_first" "at their offsets"
  is "$(verify_field "$out" rule)" majority "three members: the majority rule"
  is "$(verify_field "$out" repaired)" "${#flipped[@]}" "marks them"
  is "$(verify_field "$out" outdated)" \
    "member 42: 1 chunks; member 43: 1 chunks" "on the member that differs"
  _wait_until 60 all_clean && ok "the members resynced them" ||
    not_ok "the members resynced them"
fi

kill_pid "$fio_pid"
kill_pid "$NBDKIT_PID"
_wait_until 30 all_clean || diag "not every map clean at the end"
for ((i = 2; i <= rf; i++)); do
  ok "leg $i is byte-identical to leg 1" legs_identical 1 "$i" "$size"
done
# Every leg read alone through the export (an assemble whose reads go to
# that member only).
for ((i = 1; i <= rf; i++)); do
  # shellcheck disable=SC2046
  nbdkit_start "r$i" pool=p $(servers $(seq 1 "$rf")) \
    read-policy=member:$((40 + i))
  sum[i]=$(nbdcopy "$(nbd_uri "r$i")" - | sha256sum)
  kill_pid "$NBDKIT_PID"
done
for ((i = 2; i <= rf; i++)); do
  is "${sum[i]}" "${sum[1]}" "leg $i read alone matches leg 1 read alone"
done
done_testing
