#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# functions.sh: helpers shared by rmr's shell integration tests.  Every
# shell test prints TAP (meson runs it with protocol: 'tap').  Written for
# rmr after the model of nbdkit's tests/functions.sh.in.
#
# Use:
#   #!/usr/bin/env bash
#   # SPDX-License-Identifier: LGPL-2.1-or-later
#   # test-foo-bar.sh: what this test checks.
#   set -euo pipefail
#   source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
#   requires nbdsh --version
#   requires_file "$RMR_STORAGED"
#   make_tmpdir                      # sets $tmpdir, removed at exit
#   port=$(free_port)
#   start_bg "$tmpdir/d.pid" "$RMR_STORAGED" --config "$tmpdir/d.conf" \
#     --foreground                   # sets $BG_PID, killed at exit
#   wait_for_port 127.0.0.1 "$port" 10
#   is "$(some command)" "expected" "the thing works"
#   done_testing
#
# Environment (set by meson; defaults for running a test by hand from the
# source tree with a build in ./build):
#   SRC_DIR       source root
#   BUILD_DIR     build root
#   RMR_STORAGED  rmr-storaged binary
#   RMRADM        rmradm binary
#   RMR_PLUGIN    nbdkit-rmr-plugin.so
#   CI=true       a missing requirement fails the test instead of skipping
#   RMR_VALGRIND=1, RMR_ASAN=1   set by the valgrind and asan test setups
#
# TAP:       plan N, ok DESC [CMD...], not_ok DESC, is GOT EXPECTED DESC,
#            diag MSG..., skip DESC REASON, skip_all REASON, fail_test MSG,
#            done_testing
# Needs:     requires CMD [ARGS...], requires_file PATH..., requires_root
# Cleanup:   cleanup_fn CMD [ARGS...]  (run at exit, last registered first)
# Processes: start_bg PIDFILE CMD..., track_pidfile PIDFILE, kill_pid PID [SIG]
# Waiting:   wait_for_file PATH SECS, wait_for_socket PATH SECS,
#            wait_for_port HOST PORT SECS [NS], wait_for_pidfile PATH SECS
# Files:     make_tmpdir (sets $tmpdir), free_port
# Networks:  netns_add NAME, netns_link NS1 NS2 IP1 IP2, netns_host NAME IP,
#            netns_exec NAME CMD..., netns_name NAME, netns_cut NAME,
#            netns_restore NAME
#
# Every background process writes its stdout to our stderr: stdout is the
# TAP stream and must carry nothing else.  functions.sh owns the EXIT, INT
# and TERM traps: register cleanups with cleanup_fn, never with trap.

# Never let a test's nbdsh pick a python without the nbd module.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH

: "${SRC_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${BUILD_DIR:=$SRC_DIR/build}"
: "${RMR_STORAGED:=$BUILD_DIR/rmr-storaged/rmr-storaged}"
: "${RMRADM:=$BUILD_DIR/rmr-storaged/rmradm}"
: "${RMR_PLUGIN:=$BUILD_DIR/nbdkit-plugin/nbdkit-rmr-plugin.so}"
export SRC_DIR BUILD_DIR RMR_STORAGED RMRADM RMR_PLUGIN

# ---------------------------------------------------------------------
# TAP

_tap_n=0          # tests reported so far
_tap_failed=0     # of which failed
_tap_plan=""      # the plan if printed
_tap_done=false   # done_testing or skip_all was called
_tap_skipped=false

plan ()
{
  _tap_plan=$1
  echo "1..$1"
}

diag ()
{
  local line
  while IFS= read -r line; do
    echo "# $line"
  done <<<"$*"
}

# ok DESC             report a passing test
# ok DESC CMD [ARGS]  run CMD; pass if it exits 0
ok ()
{
  local desc=$1
  shift
  if [[ $# -gt 0 ]]; then
    local rc=0
    "$@" >&2 || rc=$?
    if [[ $rc -ne 0 ]]; then
      not_ok "$desc"
      diag "command failed with status $rc: $*"
      return 0
    fi
  fi
  _tap_n=$((_tap_n + 1))
  echo "ok $_tap_n - $desc"
}

not_ok ()
{
  _tap_n=$((_tap_n + 1))
  _tap_failed=$((_tap_failed + 1))
  echo "not ok $_tap_n - $1"
}

is ()
{
  local got=$1 expected=$2 desc=$3
  if [[ "$got" == "$expected" ]]; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "     got: '$got'"
    diag "expected: '$expected'"
  fi
}

# Report a failure and end the test now (cleanups still run).
fail_test ()
{
  not_ok "$*"
  exit 1
}

# skip DESC REASON: report one test as skipped.
skip ()
{
  _tap_n=$((_tap_n + 1))
  echo "ok $_tap_n - $1 # SKIP $2"
}

# Skip the whole test.  Must come before any test line.
skip_all ()
{
  if [[ $_tap_n -eq 0 && -z "$_tap_plan" ]]; then
    echo "1..0 # SKIP $*"
  else
    # Too late for a whole-test skip: report the rest as one skipped test.
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n # SKIP $*"
  fi
  _tap_done=true
  _tap_skipped=true
  exit 0
}

done_testing ()
{
  # The plan comes at exit, after the cleanups (a valgrind check may add
  # a result there).
  _tap_done=true
}

# A requirement is missing: skip, or under CI=true fail.
_unmet ()
{
  if [[ "${CI:-}" == true ]]; then
    not_ok "requirement not met under CI=true: $*"
    exit 1
  fi
  skip_all "$*"
}

# requires CMD [ARGS...]: run the command (output discarded); if it fails
# the test is skipped.  Example: requires qemu-img --version
requires ()
{
  if ! "$@" </dev/null >/dev/null 2>&1; then
    _unmet "'$*' failed"
  fi
}

# requires_file PATH...: each path must exist (built binaries and such).
requires_file ()
{
  local f
  for f in "$@"; do
    [[ -e "$f" ]] || _unmet "$f not found"
  done
}

requires_root ()
{
  [[ $(id -u) -eq 0 ]] || _unmet "must run as root"
}

# ---------------------------------------------------------------------
# Cleanup, run by the EXIT trap in reverse order of registration.

_cleanups=()

cleanup_fn ()
{
  local cmd
  printf -v cmd '%q ' "$@"
  _cleanups+=("$cmd")
}

_on_exit ()
{
  local rc=$? last=$BASH_COMMAND i
  set +e
  trap - EXIT

  for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
    eval "${_cleanups[i]}" </dev/null >&2
  done
  _release_ports

  if ! $_tap_skipped; then
    _valgrind_report
    _asan_report
    if [[ $rc -ne 0 ]] && ! $_tap_done && [[ $_tap_failed -eq 0 ]]; then
      not_ok "test script exited with status $rc"
      diag "last command: $last"
    fi
    if [[ -z "$_tap_plan" ]]; then
      plan "$_tap_n"
    fi
    if [[ $_tap_failed -gt 0 && $rc -eq 0 ]]; then
      rc=1
    fi
  fi
  exit "$rc"
}

trap _on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------
# Processes: started by us, killed by PID only.
#
# Each tracked PID is stored with the process's start time (field 22 of
# /proc/PID/stat), so a PID reused by some other process after ours died
# is never signalled.

# Global (-g): scripts/nemesis sources this file inside a function, and a
# table local to it would be gone when the EXIT trap runs kill_pid, which
# then refuses every PID and leaves the round's daemons running.
declare -gA _pid_start=()
BG_PID=""

_starttime ()
{
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }   # fields from 3 on; comm may hold spaces
  # shellcheck disable=SC2206
  local f=($rest)
  echo "${f[19]}"
}

_pid_state ()
{
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  echo "${rest%% *}"
}

# True while PID is the very process we tracked and has not exited.
_is_ours_alive ()
{
  local pid=$1 st
  [[ -n "${_pid_start[$pid]:-}" ]] || return 1
  st=$(_starttime "$pid") || return 1
  [[ "$st" == "${_pid_start[$pid]}" ]] || return 1
  [[ "$(_pid_state "$pid")" != Z ]]
}

_track ()
{
  local st
  st=$(_starttime "$1") || return 1
  _pid_start[$1]=$st
  cleanup_fn kill_pid "$1"
}

# start_bg PIDFILE CMD [ARGS...]: start CMD in the background (it must stay
# in the foreground: use --foreground, -f), write its PID to PIDFILE, set
# BG_PID, and have it killed at exit.  Its stdout and stderr go to our
# stderr.  'ip netns exec NS CMD' keeps the PID, so it may be used here.
start_bg ()
{
  local pidfile=$1
  shift
  "$@" </dev/null >&2 &
  BG_PID=$!
  echo "$BG_PID" >"$pidfile"
  _track "$BG_PID" || diag "start_bg: $1 exited at once"
}

# track_pidfile PIDFILE: adopt a daemon that wrote its own pidfile (for
# example nbdkit -P FILE without -f) so that it is killed at exit.  Sets
# BG_PID.
track_pidfile ()
{
  local pid
  pid=$(<"$1")
  [[ "$pid" =~ ^[0-9]+$ ]] || fail_test "track_pidfile: bad pid in $1"
  BG_PID=$pid
  _track "$pid" || diag "track_pidfile: $pid is not running"
}

# _stacks PID: every thread's stack of a process we started, as diag
# lines (what a hung process was doing: the next failure explains
# itself).  Needs gdb; without it, says so.
_stacks ()
{
  if ! command -v gdb >/dev/null 2>&1; then
    diag "stacks of $1: gdb not installed"
    return 0
  fi
  diag "$(timeout 60 gdb -p "$1" -batch -nx -ex 'set pagination off' \
    -ex 'thread apply all bt 16' 2>&1 | grep -E '^(Thread|#)' || true)"
}

# kill_pid PID [SIGNAL]: signal (default TERM) a process we started, wait
# up to KILL_GRACE seconds (default 10) for it to exit, then SIGKILL it.
# Only for PIDs from start_bg or track_pidfile; a process already gone is
# not an error.  Use 'kill_pid PID KILL' to crash a process.
kill_pid ()
{
  local pid=$1 sig=${2:-TERM} i n=$((${KILL_GRACE:-10} * 10))
  if [[ -z "${_pid_start[$pid]:-}" ]]; then
    diag "kill_pid: refusing to signal $pid: not started by this test"
    return 1
  fi
  if _is_ours_alive "$pid"; then
    kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < n; i++)); do
      _is_ours_alive "$pid" || break
      sleep 0.1
    done
    if _is_ours_alive "$pid"; then
      diag "kill_pid: $pid still alive after SIG$sig, sending SIGKILL"
      _stacks "$pid"
      kill -s KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Reap it if it is our child (no-op otherwise).
  wait "$pid" 2>/dev/null || true
  return 0
}

# ---------------------------------------------------------------------
# Waiting.  SECS may be fractional.

# _wait_until SECS CMD...: poll CMD every 0.1 s.
_wait_until ()
{
  local secs=$1 i n
  shift
  n=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 10 }')
  for ((i = 0; i <= n; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

wait_for_file ()
{
  _wait_until "$2" test -e "$1" ||
    fail_test "timed out after $2 s waiting for file $1"
}

# A pidfile holding a complete PID (nbdkit writes it after listening).
_pidfile_ready ()
{
  [[ -s "$1" && "$(<"$1")" =~ ^[0-9]+$ ]]
}

wait_for_pidfile ()
{
  _wait_until "$2" _pidfile_ready "$1" ||
    fail_test "timed out after $2 s waiting for pidfile $1"
}

wait_for_socket ()
{
  _wait_until "$2" test -S "$1" ||
    fail_test "timed out after $2 s waiting for socket $1"
}

_port_listening ()
{
  local host=$1 port=$2 ns=${3:-} addr
  local -a ss_cmd=(ss -Hltn)
  if [[ -n "$ns" ]]; then
    ss_cmd=(ip netns exec "$(netns_name "$ns")" ss -Hltn)
  fi
  while read -r _ _ _ addr _; do
    case "$addr" in
      "$host:$port" | "[$host]:$port" | "0.0.0.0:$port" | "*:$port" | "[::]:$port")
        return 0 ;;
    esac
  done < <("${ss_cmd[@]}" 2>/dev/null)
  return 1
}

# wait_for_port HOST PORT SECS [NETNS]: a TCP listener on HOST:PORT (checked
# with ss, so nothing connects to it), in the test namespace NETNS if given.
wait_for_port ()
{
  _wait_until "$3" _port_listening "$1" "$2" "${4:-}" ||
    fail_test "timed out after $3 s waiting for a listener on $1:$2"
}

# ---------------------------------------------------------------------
# Files and ports

# make_tmpdir: create a directory under ${TMPDIR:-/tmp}, store its path
# in $tmpdir, remove it at exit.
# shellcheck disable=SC2034  # tmpdir is for the tests that source us
tmpdir=""

make_tmpdir ()
{
  tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/rmr-test.XXXXXX")
  cleanup_fn rm -rf --one-file-system "$tmpdir"
  _valgrind_init
  _asan_init
}

# ---------------------------------------------------------------------
# Valgrind (meson test --setup valgrind sets RMR_VALGRIND=1).  CHECKED is
# the prefix for our daemons and nbdkit: empty normally, valgrind with a
# log per process in $tmpdir under the setup.  After every process was
# stopped, each log that holds an error becomes a failed test.

CHECKED=()

_valgrind_init ()
{
  [[ "${RMR_VALGRIND:-}" == 1 ]] || return 0
  # shellcheck disable=SC2034 # used by cluster.sh
  CHECKED=("$SRC_DIR/tests/valgrind-wrap")
  export RMR_VALGRIND_LOG="$tmpdir/valgrind.%p.log"
  # nbdkit keeps the plugin loaded, so leaks in it have symbols.
  export NBDKIT_VALGRIND=1
  # Registered after the removal of $tmpdir: runs before it, and after
  # the processes (registered later) were stopped.
  cleanup_fn _valgrind_check
}

_valgrind_errors=()

# Runs as a cleanup (output to stderr): keep the reports for _on_exit.
_valgrind_check ()
{
  local log text
  for log in "$tmpdir"/valgrind.*.log; do
    [[ -s "$log" ]] || continue
    # Not an error: UCX probes huge pages for shared memory at start, and
    # valgrind says it ignores the flag.
    text=$(grep -v 'WARNING: valgrind ignores shmget(shmflg) SHM_HUGETLB' "$log" |
      head -n 60) || true
    [[ -n "$text" ]] || continue
    _valgrind_errors+=("${log##*/}" "$text")
  done
}

_valgrind_report ()
{
  local i l
  for ((i = 0; i < ${#_valgrind_errors[@]}; i += 2)); do
    not_ok "valgrind: errors in ${_valgrind_errors[i]}"
    while IFS= read -r l; do diag "$l"; done <<<"${_valgrind_errors[i + 1]}"
  done
}

# ---------------------------------------------------------------------
# AddressSanitizer and UBSan (meson test --setup asan, defined in a build
# with -Db_sanitize=address,undefined, sets RMR_ASAN=1 and the sanitizer
# options).  Our daemons and rmradm are ASan executables and run as they
# are; the distribution's nbdkit gets the ASan runtime preloaded by
# tests/asan/nbdkit, which comes first on PATH.  Any report fails the test:
#
#  - ASan and LeakSanitizer write theirs to $RMR_ASAN_DIR/asan.PID
#    (log_path, checked after every process was stopped).  A daemon
#    stopped with SIGTERM exits normally, so LeakSanitizer checks it; one
#    killed with SIGKILL reports nothing, which is fine.
#  - UBSan's go to stderr whatever its log_path says: gcc's libubsan is a
#    runtime apart from libasan, and its log_path only redirects libasan's
#    reports (both export __sanitizer_set_report_path; libasan's wins).  So
#    the test's stderr, where every process it starts writes, is copied to
#    $RMR_ASAN_DIR/stderr.PID and searched for "runtime error:".
#
# A script run by a test that sources this file (scripts/nemesis's rounds,
# test-functions' children) inherits RMR_ASAN_DIR; the test that made it
# checks it when it exits.

_asan_tee=""
_asan_stderr=""
_asan_errors=()

_asan_init ()
{
  [[ "${RMR_ASAN:-}" == 1 ]] || return 0
  # Again in a nested script: sourcing this file put /usr/bin first.
  PATH=$SRC_DIR/tests/asan:$PATH
  if [[ -z "${RMR_ASAN_DIR:-}" || ! -d "$RMR_ASAN_DIR" ]]; then
    export RMR_ASAN_DIR=$tmpdir/asan
    mkdir "$RMR_ASAN_DIR"
    # Runs before the removal of $tmpdir, after the processes (registered
    # later) were stopped.
    cleanup_fn _asan_check
  else
    cleanup_fn _asan_flush
  fi
  # The same path for both runtimes: libubsan's initialisation sets
  # libasan's report path from UBSAN_OPTIONS (see above).
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$RMR_ASAN_DIR/asan
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$RMR_ASAN_DIR/asan
  # Through a FIFO rather than 2> >(tee): a disowned job, so that a
  # test's plain 'wait' does not wait for it.
  local fifo=$RMR_ASAN_DIR/stderr.$$.fifo
  mkfifo "$fifo"
  exec {_asan_stderr}>&2
  tee -a "$RMR_ASAN_DIR/stderr.$$" <"$fifo" >&"$_asan_stderr" &
  _asan_tee=$!
  disown "$_asan_tee"
  exec 2>"$fifo"
  rm -f "$fifo"
}

_asan_tee_done ()
{
  local st
  st=$(_pid_state "$_asan_tee") || return 0
  [[ "$st" == Z ]]
}

# Stop copying stderr and let tee write the rest.  Runs as a cleanup, with
# stdout on the copied stderr: both go back to the real stderr, so that
# tee sees the end once every process we started is gone.
_asan_flush ()
{
  [[ -n "$_asan_tee" ]] || return 0
  exec 2>&"$_asan_stderr" >&2
  _wait_until 5 _asan_tee_done ||
    diag "asan: stderr copy still open (a process left running?)"
  _asan_tee=""
}

# Runs as a cleanup (output to stderr): keep the reports for _on_exit.
_asan_check ()
{
  local f
  _asan_flush
  for f in "$RMR_ASAN_DIR"/asan.*; do
    [[ -s "$f" ]] || continue
    cat "$f" >&2
    _asan_errors+=("report in ${f##*/}" "$(head -n 80 "$f")")
  done
  for f in "$RMR_ASAN_DIR"/stderr.*; do
    [[ -f "$f" ]] || continue
    grep -q -E ': runtime error: ' "$f" || continue
    _asan_errors+=("UBSan report in the stderr of ${f##*/}"
      "$(grep -E -A 30 ': runtime error: ' "$f" | head -n 80)")
  done
}

_asan_report ()
{
  local i l
  for ((i = 0; i < ${#_asan_errors[@]}; i += 2)); do
    not_ok "sanitizer: ${_asan_errors[i]}"
    while IFS= read -r l; do diag "$l"; done <<<"${_asan_errors[i + 1]}"
  done
}

# free_port: print a TCP port free on 127.0.0.1, outside the ephemeral
# range.  Ports are reserved in ${TMPDIR:-/tmp}/rmr-ports so that tests
# running in parallel never get the same one; a reservation is released
# when its test exits (or found stale when its test is gone).
_port_dir=${TMPDIR:-/tmp}/rmr-ports

free_port ()
{
  local port owner i
  # Sticky and world-writable like /tmp: root and user tests may share it.
  [[ -d "$_port_dir" ]] || mkdir -m 1777 "$_port_dir" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 12000))
    if ! mkdir "$_port_dir/$port" 2>/dev/null; then
      owner=$(cat "$_port_dir/$port/owner" 2>/dev/null) || continue
      if [[ -n "$owner" ]] && kill -0 "$owner" 2>/dev/null; then
        continue
      fi
      # Stale reservation of a test that is gone: take it over.
    fi
    echo "$$" >"$_port_dir/$port/owner"
    if ss -Htan "( sport = :$port or dport = :$port )" 2>/dev/null |
        grep -q .; then
      continue   # in use: keep it reserved so no one else tries it
    fi
    echo "$port"
    return 0
  done
  echo "free_port: no free port found" >&2
  return 1
}

_release_ports ()
{
  local d
  [[ -d "$_port_dir" ]] || return 0
  for d in "$_port_dir"/*/; do
    [[ -f "$d/owner" && "$(cat "$d/owner" 2>/dev/null)" == "$$" ]] &&
      rm -rf "$d"
  done
  return 0
}

# ---------------------------------------------------------------------
# Network namespaces: each test host is a namespace.  Names given to these
# functions are short logical names (n1, client); the real namespace is
# "$NETNS_PREFIX-NAME", unique per test so that tests may run in parallel.
# Every namespace is deleted at exit (which removes its links too).
#
# Two hosts:       netns_add a; netns_add b; netns_link a b 10.99.0.1 10.99.0.2
# Three or more:   netns_host n1 10.99.0.1; netns_host n2 10.99.0.2; ...
#                  (each gets eth0 on a bridge in namespace "br")
# Run on a host:   netns_exec n1 CMD...  or  start_bg F ip netns exec \
#                    "$(netns_name n1)" CMD...
# Faults:          netns_cut n1 / netns_restore n1 (its links down / up)
#
# Addresses are local to these namespaces; they never reach a real network.

NETNS_PREFIX=rmrt$$
_netns_links=0

netns_name ()
{
  echo "$NETNS_PREFIX-$1"
}

netns_add ()
{
  local ns
  ns=$(netns_name "$1")
  if _netns_exists "$1"; then
    ip netns del "$ns"   # left over from a dead test with our PID
  fi
  ip netns add "$ns" || fail_test "ip netns add $ns failed"
  cleanup_fn ip netns del "$ns"
  ip -n "$ns" link set lo up
}

_netns_exists ()
{
  [[ -e "/run/netns/$(netns_name "$1")" ]]
}

_with_prefixlen ()
{
  if [[ "$1" == */* ]]; then echo "$1"; else echo "$1/24"; fi
}

# netns_link NS1 NS2 IP1 IP2: a veth pair between two namespaces (created
# if needed).  IPs default to /24.
netns_link ()
{
  local a b
  _netns_exists "$1" || netns_add "$1"
  _netns_exists "$2" || netns_add "$2"
  a=$(netns_name "$1")
  b=$(netns_name "$2")
  _netns_links=$((_netns_links + 1))
  local ia="v$_netns_links-$2" ib="v$_netns_links-$1"
  ia=${ia:0:15}
  ib=${ib:0:15}
  ip link add name "$ia" netns "$a" type veth peer name "$ib" netns "$b" ||
    fail_test "netns_link $1 $2 failed"
  ip -n "$a" addr add "$(_with_prefixlen "$3")" dev "$ia"
  ip -n "$b" addr add "$(_with_prefixlen "$4")" dev "$ib"
  ip -n "$a" link set "$ia" up
  ip -n "$b" link set "$ib" up
}

# netns_host NAME IP: a host on the shared bridge (namespace "br", bridge
# br0), with its address on eth0.
netns_host ()
{
  local br h
  if ! _netns_exists br; then
    netns_add br
    br=$(netns_name br)
    ip -n "$br" link add br0 type bridge || fail_test "bridge failed"
    ip -n "$br" link set br0 up
  fi
  br=$(netns_name br)
  _netns_exists "$1" || netns_add "$1"
  h=$(netns_name "$1")
  local port="p-$1"
  port=${port:0:15}
  ip link add name eth0 netns "$h" type veth peer name "$port" netns "$br" ||
    fail_test "netns_host $1 failed"
  ip -n "$br" link set "$port" master br0
  ip -n "$br" link set "$port" up
  ip -n "$h" addr add "$(_with_prefixlen "$2")" dev eth0
  ip -n "$h" link set eth0 up
}

netns_exec ()
{
  local ns
  ns=$(netns_name "$1")
  shift
  ip netns exec "$ns" "$@"
}

_netns_set_links ()
{
  local ns dev
  ns=$(netns_name "$1")
  while read -r dev; do
    dev=${dev%%@*}
    [[ "$dev" == lo ]] && continue
    ip -n "$ns" link set "$dev" "$2"
  done < <(ip -n "$ns" -o link show | awk -F': ' '{ print $2 }')
}

# Cut a host off the network (every link but lo down), and back.
netns_cut ()
{
  _netns_set_links "$1" down
}

netns_restore ()
{
  _netns_set_links "$1" up
}
