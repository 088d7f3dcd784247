#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# power.sh: storage nodes whose machine can lose power, for tests, on top
# of functions.sh and cluster.sh (source those first, then this).
#
#   power_init
#       skips unless volatile-fs was built (VOLATILE_FS, needs fuse3),
#       /dev/fuse is there and this runs as root (mounts)
#   power_disk I
#       before node I's first node_start: its store goes on a disk with a
#       volatile write cache (tests/volatile-fs over $tmpdir/disk-I.back,
#       mounted at $tmpdir/disk-I), and the node runs with a boot id of
#       its own ($tmpdir/boot-I, through tests/with-boot-id)
#   power_cut I [SEED]
#       node I's machine loses power: its daemon is killed (-9), what its
#       disk had not made durable is lost (all of it, or with SEED about
#       half, chosen from SEED), and its next start sees a new boot id
#   power_blackout PID I...
#       every machine at once: process PID (the compute host's nbdkit)
#       and the daemons of nodes I... killed by one kill -9; their disks'
#       caches are still there, for power_cut I [SEED] each
#
# Sets NODE_STORE[I] and NODE_PREFIX[I] (cluster.sh).

# tmpdir and NODE_* come from functions.sh and cluster.sh, which reads
# the NODE_* set here.
# (NODE_* are associative: keys are strings, so "$i", not i.)
# shellcheck disable=SC2154,SC2034,SC2004

power_init ()
{
  requires_root
  [[ -n "${VOLATILE_FS:-}" ]] ||
    _unmet "volatile-fs was not built (needs libfuse3-dev)"
  requires_file "$VOLATILE_FS" /dev/fuse
}

_new_boot_id ()
{
  cat /proc/sys/kernel/random/uuid >"$tmpdir/boot-$1"
}

power_disk ()
{
  local i=$1 d=$tmpdir/disk-$1
  mkdir -p "$d" "$d.back"
  start_bg "$tmpdir/disk-$i.pid" "$VOLATILE_FS" "$d.back" "$d" -f \
    -o max_threads=16
  _wait_until 10 mountpoint -q "$d" ||
    fail_test "volatile-fs did not mount $d"
  NODE_STORE[$i]=$d/store$i.img
  _new_boot_id "$i"
  NODE_PREFIX[$i]="$SRC_DIR/tests/with-boot-id $tmpdir/boot-$i"
}

power_cut ()
{
  local i=$1 seed=${2:-}
  node_kill "$i" KILL
  echo "cut${seed:+ $seed}" >"$tmpdir/disk-$i/.power"
  _new_boot_id "$i"
}

power_blackout ()
{
  local pid=$1 i pids=()
  shift
  for i in "$@"; do pids+=("${NODE_PID[$i]}"); done
  # One signal for all: none of them sees another go and reacts (a
  # daemon whose client vanished would make its writes durable).
  kill -s KILL "$pid" "${pids[@]}" 2>/dev/null || true
  kill_pid "$pid" KILL
  for i in "$@"; do node_kill "$i" KILL; done
}
