#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# seq-functions.sh: helpers shared by the fault-sequence tests
# (tests/test-seq-*.sh) and scripts/nemesis, on top of functions.sh and
# cluster.sh (source those first, then this).
#
#   seq_init N
#       the common start of a test-seq-*.sh: sets checker (the workload
#       checker tests/rmr-checker), skips unless python3's nbd module, ip
#       and nbdkit's offset filter are there, make_tmpdir, cluster_init N
#       net, and sets size (32 MiB, the checker's range), J (the checker's
#       journal $tmpdir/journal) and uri (the NBD URI of nbdkit "e").
#   leg_path NAME I ATTR    nbdkit NAME's control path of leg I's ATTR
#                           (reads NODE_ADDR)
#   leg_get NAME I ATTR     the value of that attribute
#   try_nbdkit NAME ARGS    like nbdkit_start, but returns 1 (the output
#                           in $tmpdir/NAME.log) if nbdkit exits instead
#                           of serving; sets NBDKIT_PID
#   verify DESC URI|STORE:I [ARGS...]
#       ok DESC if the checker's verify of journal $J (with ARGS, such as
#       --strict-flushed) passes, through the
#       pool at URI or offline on node I's data area (first $size bytes,
#       nbdkit's file plugin, read only); else not_ok DESC and the
#       checker's report (its first VERIFY_LINES lines, default 25) as
#       diag.  Returns 0 and sets VERIFY_RC to the checker's status.
#   maps_clean SECS DESC
#       ok DESC once every node's map_summary has 0 dirty for every
#       member (_maps_clean, reads CLUSTER_N) within SECS; else not_ok and
#       each node's map_summary as diag
#   verify_member I DESC [ARGS...]
#       verify DESC (ARGS: the checker's) through $uri (nbdkit e started with
#       read-policy=member:(40+I)): leg I must be normal and serve reads
#   all_nodes               the node numbers 1..CLUSTER_N, one a line
#   every NOUNS             "both NOUNS" (CLUSTER_N 2), else "all N
#                           NOUNS": for descriptions ("every nodes")
#   all_legs_identical LEN  legs_identical 1 I LEN for every other node I
#   writer_stop PID N
#       end the checker's write run PID (started with start_bg, journal
#       $J) once it has N more acknowledged writes than now: SIGTERM (it
#       drains, flushes, writes "end" and exits 0), then return its exit
#       status.  A run that ends by itself first (its --seconds, an
#       error) is waited for as it is.  For runs whose --seconds only
#       bounds a fault sequence that is over sooner.
#
# Globals read: tmpdir (functions.sh), NODE_ADDR, NODE_STORE, CLUSTER_N,
# NBDKIT_PID (cluster.sh), checker, size, J and uri (set by seq_init, or
# by the script that sources this file), VERIFY_LINES (optional).
# Globals set: those of seq_init, NBDKIT_PID (try_nbdkit), VERIFY_RC.

# checker, size, J and uri are set here (seq_init) or by the sourcing
# script and read by it; tmpdir comes from functions.sh.
# shellcheck disable=SC2154,SC2034

seq_init ()   # seq_init N
{
  checker=$SRC_DIR/tests/rmr-checker
  requires /usr/bin/python3 -c 'import nbd'
  requires ip -V
  requires nbdkit --filter=offset null --version
  requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN" "$checker"
  make_tmpdir
  cluster_init "$1" net

  size=$((32 << 20))
  J=$tmpdir/journal
  uri=$(nbd_uri e)
}

# leg_path NAME I ATTR: nbdkit NAME's control path of leg I's ATTR.
leg_path ()
{
  local s
  s=$(rmradm_c "$1" ls rmr-client/pools/p/sessions |
    grep -F "@${NODE_ADDR[$2]}/state" | head -1)
  [[ -n "$s" ]] && echo "${s%/state}/$3"
}

leg_get ()
{
  rmradm_c "$1" get "$(leg_path "$1" "$2" "$3")"
}

# try_nbdkit NAME ARGS: like nbdkit_start, but returns 1 (and leaves the
# output in $tmpdir/NAME.log) if nbdkit exits instead of serving.
try_nbdkit ()
{
  local name=$1
  shift
  rm -f "$tmpdir/$name.sock" "$tmpdir/$name.ctl"
  # shellcheck disable=SC2016,SC2046 # for the inner bash; words
  start_bg "$tmpdir/$name.pid" bash -c 'exec 2> >(tee "$0" >&2); exec "$@"' \
    "$tmpdir/$name.log" ip netns exec "$(netns_name cli)" \
    nbdkit -f -U "$tmpdir/$name.sock" "$RMR_PLUGIN" "$@" \
    control="$tmpdir/$name.ctl" $(plugin_tls_args)
  NBDKIT_PID=$BG_PID
  _wait_until 30 _serving_or_gone "$name"
  [[ -S "$tmpdir/$name.ctl" ]] && _is_ours_alive "$NBDKIT_PID"
}

# The control socket appears once .after_fork is done: the command-line
# pool is open by then.  (Not the NBD socket: nbdkit makes it before
# .after_fork, where a pool with ucx legs is opened, and may still fail.)
_serving_or_gone ()
{
  [[ -S "$tmpdir/$1.ctl" ]] || ! _is_ours_alive "$NBDKIT_PID"
}

# verify DESC URI|STORE:I [ARGS...]: the checker's verify of journal $J, through
# the pool or offline on node I's data area (nbdkit's file plugin, read
# only); its report (the first VERIFY_LINES lines, default 25) goes to the
# TAP log when it fails.  Returns 0; the checker's status is left in
# VERIFY_RC.
verify ()
{
  local desc=$1 what=$2 out rc=0 off
  shift 2
  if [[ "$what" == STORE:* ]]; then
    off=$(store_data_offset "${what#STORE:}")
    out=$(nbdkit -r -U - --filter=offset file "${NODE_STORE[${what#STORE:}]}" \
      offset="$off" range="$size" \
      --run "'$checker' verify \"\$uri\" '$J' $*" 2>&1) || rc=$?
  else
    out=$(timeout 120 "$checker" verify "$what" "$J" "$@" 2>&1) || rc=$?
  fi
  VERIFY_RC=$rc
  if [[ $rc -eq 0 ]]; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "checker verify: status $rc"
    diag "$(head -n "${VERIFY_LINES:-25}" <<<"$out")"
  fi
}

# Every node's map_summary: 0 dirty for every member.
_maps_clean ()
{
  local i out
  for ((i = 1; i <= CLUSTER_N; i++)); do
    out=$(rmradm_n "$i" get rmr-server/pools/p/map_summary 2>/dev/null) ||
      return 1
    grep -q 'dirty$' <<<"$out" || return 1
    grep 'dirty$' <<<"$out" | grep -qv ' 0/[0-9]* dirty$' && return 1
  done
  return 0
}

maps_clean ()   # maps_clean SECS DESC
{
  local i
  if _wait_until "$1" _maps_clean; then
    ok "$2"
  else
    not_ok "$2"
    for ((i = 1; i <= CLUSTER_N; i++)); do
      diag "node $i after $1 s: $(rmradm_n "$i" get rmr-server/pools/p/map_summary 2>&1)"
    done
  fi
}

# verify_member I DESC [ARGS...]: the checker's verify through nbdkit e
# started with read-policy=member:(40+I): leg I must be normal and serve
# the reads.
verify_member ()
{
  local i=$1 desc=$2 r0 r1
  shift 2
  wait_leg_normal e "$i" 20
  r0=$(leg_get e "$i" reads)
  verify "$desc" "$uri" "$@"
  r1=$(leg_get e "$i" reads)
  [[ "$(leg_get e "$i" state)" == normal && $((r1 - r0)) -gt 0 ]] &&
    ok "member $((40 + i)) served those reads ($((r1 - r0)))" ||
    not_ok "member $((40 + i)) served those reads (reads $r0 -> $r1, state $(leg_get e "$i" state))"
}

all_nodes ()
{
  seq 1 "$CLUSTER_N"
}

every ()
{
  if [[ $CLUSTER_N -eq 2 ]]; then echo "both $1"; else echo "all $CLUSTER_N $1"; fi
}

# all_legs_identical LEN: the first LEN data bytes of every node's store
# match node 1's.
all_legs_identical ()
{
  local i
  for ((i = 2; i <= CLUSTER_N; i++)); do
    legs_identical 1 "$i" "$1" || { echo "legs 1 and $i differ" >&2; return 1; }
  done
}

_acks ()
{
  grep -c '^ack ' "$J" || true
}

_acked_or_gone ()
{
  [[ $(_acks) -ge $1 ]] || ! _is_ours_alive "$2"
}

writer_stop ()
{
  local w=$1 target rc=0
  target=$(($(_acks) + $2))
  # 60 s: far more than any run's --seconds here, whose end comes first.
  _wait_until 60 _acked_or_gone "$target" "$w" || true
  if _is_ours_alive "$w"; then
    kill -s TERM "$w" 2>/dev/null || true
  fi
  wait "$w" || rc=$?
  return "$rc"
}
