#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-functions.sh: self-test of tests/functions.sh, the helpers every
# shell integration test uses: TAP output and exit status, requires under
# CI=true and not, cleanup order, start/kill by PID, waiting for files,
# sockets and ports, free_port, make_tmpdir, and (as root) network
# namespaces, links, cut and restore.  Child tests run as separate scripts
# so that what happens at their exit can be checked.

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=functions.sh
source "$here/functions.sh"

make_tmpdir

# child NAME: write a child test script from stdin; it sources functions.sh.
child ()
{
  {
    echo '#!/usr/bin/env bash'
    echo 'set -euo pipefail'
    printf 'source %q\n' "$here/functions.sh"
    cat
  } >"$tmpdir/$1.sh"
}

# run_child NAME [ENV...]: run it, set $out (stdout) and $rc.
run_child ()
{
  local name=$1
  shift
  rc=0
  out=$(env "$@" bash "$tmpdir/$name.sh" 2>"$tmpdir/$name.err") || rc=$?
}

# --- TAP output and exit status ---------------------------------------

child pass <<'EOF'
ok "first"
is "a" "a" "second"
ok "third" true
done_testing
EOF
run_child pass
is "$out" $'ok 1 - first\nok 2 - second\nok 3 - third\n1..3' "passing child prints TAP"
is "$rc" 0 "passing child exits 0"

child fail <<'EOF'
plan 2
is "got" "want" "mismatch"
ok "command" false
EOF
run_child fail
is "$(grep -c '^not ok' <<<"$out")" 2 "failing is and ok CMD print not ok"
is "$(grep -c "^# *expected: 'want'" <<<"$out")" 1 "is prints what was expected"
is "$rc" 1 "failing child exits 1"

child dies <<'EOF'
ok "before"
false
ok "never"
EOF
run_child dies
is "$out" $'ok 1 - before\nnot ok 2 - test script exited with status 1\n# last command: false\n1..2' \
  "a child killed by set -e reports a failure and a plan"
is "$rc" 1 "... and exits 1"

child failtest <<'EOF'
fail_test "stop here"
ok "never"
EOF
run_child failtest
is "$out" $'not ok 1 - stop here\n1..1' "fail_test stops the test"
is "$rc" 1 "... with status 1"

# --- requires ------------------------------------------------------------

child req <<'EOF'
requires true
requires_file /
requires no-such-command-rmr --version
ok "never"
EOF
run_child req CI=
is "$out" "1..0 # SKIP 'no-such-command-rmr --version' failed" "requires skips"
is "$rc" 0 "... exit 0"
run_child req CI=true
is "$out" $'not ok 1 - requirement not met under CI=true: \'no-such-command-rmr --version\' failed\n1..1' \
  "requires fails under CI=true"
is "$rc" 1 "... exit 1"

child reqfile <<'EOF'
requires_file /no/such/file
EOF
run_child reqfile CI=
is "$out" "1..0 # SKIP /no/such/file not found" "requires_file skips"

# --- cleanup order, make_tmpdir, processes killed at exit ----------------

child cleanup <<'EOF'
log=$CHILD_LOG
make_tmpdir
d=$tmpdir
echo "$d" >"$log.dir"
cleanup_fn sh -c "echo first >>'$log'"
cleanup_fn sh -c "echo second >>'$log'"
cleanup_fn sh -c "echo 'with  spaces' >>'$log'"
start_bg "$d/sleep.pid" sleep 1000
echo "$BG_PID" >"$log.pid"
ok "registered"
EOF
run_child cleanup CHILD_LOG="$tmpdir/cleanup.log"
is "$rc" 0 "cleanup child exits 0"
is "$(cat "$tmpdir/cleanup.log")" $'with  spaces\nsecond\nfirst' \
  "cleanups run in reverse order, arguments intact"
d=$(cat "$tmpdir/cleanup.log.dir")
case "$d" in
  "${TMPDIR:-/tmp}"/rmr-test.*) ok "make_tmpdir under \${TMPDIR:-/tmp}" ;;
  *) not_ok "make_tmpdir under \${TMPDIR:-/tmp}: $d" ;;
esac
ok "make_tmpdir removed at exit" test ! -e "$d"
p=$(cat "$tmpdir/cleanup.log.pid")
if [[ -e /proc/$p ]] && grep -q sleep "/proc/$p/comm"; then
  not_ok "start_bg process killed at exit"
else
  ok "start_bg process killed at exit"
fi

# Sourced inside a function, as scripts/nemesis's rounds do: the processes
# are still killed at exit, after the function returned.
{
  echo '#!/usr/bin/env bash'
  echo 'set -euo pipefail'
  echo 'round ()'
  echo '{'
  printf '  source %q\n' "$here/functions.sh"
  cat <<'EOF'
  make_tmpdir
  start_bg "$tmpdir/sleep.pid" sleep 1000
  echo "$BG_PID" >"$CHILD_LOG"
  ok "started"
}
round
EOF
} >"$tmpdir/infunc.sh"
run_child infunc CHILD_LOG="$tmpdir/infunc.pid"
p=$(cat "$tmpdir/infunc.pid")
if [[ -e /proc/$p ]] && grep -q sleep "/proc/$p/comm"; then
  not_ok "sourced in a function: start_bg process killed at exit"
  kill "$p"
else
  ok "sourced in a function: start_bg process killed at exit"
fi

# --- start_bg / kill_pid --------------------------------------------------

start_bg "$tmpdir/s.pid" sleep 1000
s_pid=$BG_PID
is "$(cat "$tmpdir/s.pid")" "$s_pid" "start_bg writes the pidfile and BG_PID"
ok "started process runs" kill -0 "$s_pid"
kill_pid "$s_pid"
ok "kill_pid ends it" test ! -e "/proc/$s_pid"
ok "kill_pid of a dead process is not an error" kill_pid "$s_pid"

# A process that ignores SIGTERM (ignored signals survive exec).
start_bg "$tmpdir/t.pid" bash -c 'trap "" TERM; exec sleep 1000'
t_pid=$BG_PID
sleep 0.2
KILL_GRACE=1 kill_pid "$t_pid"
ok "kill_pid falls back to SIGKILL" test ! -e "/proc/$t_pid"

kill_rc=0
kill_pid 1 2>/dev/null || kill_rc=$?
is "$kill_rc" 1 "kill_pid refuses a PID this test did not start"

# --- waiting ---------------------------------------------------------------

(sleep 0.3; touch "$tmpdir/late") &
wait_for_file "$tmpdir/late" 5
ok "wait_for_file"
wait

if command -v nbdkit >/dev/null; then
  start_bg "$tmpdir/u.pid" nbdkit -f -U "$tmpdir/u.sock" memory 1M
  wait_for_socket "$tmpdir/u.sock" 10
  ok "wait_for_socket"
  port=$(free_port)
  start_bg "$tmpdir/p.pid" nbdkit -f -i 127.0.0.1 -p "$port" memory 2M
  wait_for_port 127.0.0.1 "$port" 10
  ok "wait_for_port"
  if command -v nbdsh >/dev/null; then
    is "$(nbdsh -u "nbd://127.0.0.1:$port" -c 'print(h.get_size())')" \
      2097152 "nbdsh works with PATH from functions.sh"
  else
    skip "nbdsh works with PATH from functions.sh" "nbdsh not installed"
  fi
  kill_pid "$BG_PID"
else
  skip "wait_for_socket" "nbdkit not installed"
  skip "wait_for_port" "nbdkit not installed"
  skip "nbdsh" "nbdkit not installed"
fi

child waitfail <<'EOF'
wait_for_file /no/such/file 0.3
ok "never"
EOF
run_child waitfail
is "$out" $'not ok 1 - timed out after 0.3 s waiting for file /no/such/file\n1..1' \
  "a timed-out wait fails the test"

# --- free_port ---------------------------------------------------------------

p1=$(free_port)
p2=$(free_port)
if [[ "$p1" =~ ^[0-9]+$ && $p1 -ge 1024 && $p1 -lt 65536 ]]; then
  ok "free_port prints a port ($p1)"
else
  not_ok "free_port prints a port ($p1)"
fi
if [[ "$p1" != "$p2" ]]; then ok "free_port twice gives two ports"
else not_ok "free_port twice gives two ports"; fi
is "$(cat "${TMPDIR:-/tmp}/rmr-ports/$p1/owner")" "$$" "free_port reserves the port"
if ss -Htan "( sport = :$p1 )" | grep -q .; then
  not_ok "free_port's port is not in use"
else
  ok "free_port's port is not in use"
fi

# --- sanitizer reports (the asan test setup) --------------------------------
# Each child owns its report directory (RMR_ASAN_DIR empty); a report of
# any process it started, ASan's in a log file or UBSan's on stderr, is a
# failed test after its own.

child asan_clean <<'EOF'
make_tmpdir
start_bg "$tmpdir/s.pid" sh -c 'echo "a line on stderr" >&2; exec sleep 1000'
ok "clean"
EOF
run_child asan_clean RMR_ASAN=1 RMR_ASAN_DIR=
is "$out" $'ok 1 - clean\n1..1' "asan: a clean test passes"
is "$rc" 0 "... exit 0"

child asan_log <<'EOF'
make_tmpdir
echo '==4242==ERROR: LeakSanitizer: detected memory leaks' \
  >"$RMR_ASAN_DIR/asan.4242"
ok "leaky"
EOF
run_child asan_log RMR_ASAN=1 RMR_ASAN_DIR=
is "$(head -n 3 <<<"$out")" \
  $'ok 1 - leaky\nnot ok 2 - sanitizer: report in asan.4242\n# ==4242==ERROR: LeakSanitizer: detected memory leaks' \
  "asan: a report in the log directory fails the test"
is "$rc" 1 "... exit 1"

child asan_ubsan <<'EOF'
make_tmpdir
start_bg "$tmpdir/s.pid" sh -c \
  'echo "x.c:1:2: runtime error: signed integer overflow" >&2; exec sleep 1000'
sleep 0.2
ok "undefined"
EOF
run_child asan_ubsan RMR_ASAN=1 RMR_ASAN_DIR=
is "$(head -n 3 <<<"$out" | sed 's/stderr\.[0-9]*$/stderr.PID/')" \
  $'ok 1 - undefined\nnot ok 2 - sanitizer: UBSan report in the stderr of stderr.PID\n# x.c:1:2: runtime error: signed integer overflow' \
  "asan: a UBSan report on stderr fails the test"
is "$rc" 1 "... exit 1"

# --- network namespaces (root only) -----------------------------------------

if [[ $(id -u) -ne 0 ]] || ! command -v nbdkit >/dev/null ||
   ! command -v nbdinfo >/dev/null; then
  for t in "netns created" "hosts on a bridge talk" "netns_cut cuts" \
           "netns_restore restores" "netns_link pair talks" "netns deleted at exit"; do
    skip "$t" "needs root, nbdkit and nbdinfo"
  done
else
  child netns <<'EOF'
names=$NAMES_FILE
netns_host n1 10.99.0.1
netns_host n2 10.99.0.2
netns_host n3 10.99.0.3
netns_link a b 10.98.0.1 10.98.0.2
{ netns_name n1; netns_name n2; netns_name n3; netns_name br
  netns_name a; netns_name b; } >"$names"
ok "netns created" test -e "/run/netns/$(netns_name n3)"

make_tmpdir
start_bg "$tmpdir/n.pid" ip netns exec "$(netns_name n1)" \
  nbdkit -f -i 10.99.0.1 -p 10809 memory 3M
wait_for_port 10.99.0.1 10809 10 n1
is "$(netns_exec n3 timeout 10 nbdinfo --size nbd://10.99.0.1)" 3145728 \
  "hosts on a bridge talk"
netns_cut n1
if netns_exec n3 timeout 3 nbdinfo --size nbd://10.99.0.1 >/dev/null 2>&1; then
  not_ok "netns_cut cuts"
else
  ok "netns_cut cuts"
fi
netns_restore n1
is "$(netns_exec n2 timeout 10 nbdinfo --size nbd://10.99.0.1)" 3145728 \
  "netns_restore restores"

start_bg "$tmpdir/a.pid" ip netns exec "$(netns_name a)" \
  nbdkit -f -i 10.98.0.1 -p 10809 memory 1M
wait_for_port 10.98.0.1 10809 10 a
is "$(netns_exec b timeout 10 nbdinfo --size nbd://10.98.0.1)" 1048576 \
  "netns_link pair talks"
EOF
  run_child netns NAMES_FILE="$tmpdir/ns.names"
  diag "$out"
  is "$rc" 0 "netns child passes"
  left=0
  while read -r ns; do
    [[ -e /run/netns/$ns ]] && left=$((left + 1))
  done <"$tmpdir/ns.names"
  is "$left" 0 "netns deleted at exit"
fi

done_testing
