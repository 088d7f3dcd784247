#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-checker.sh: self-test of tests/rmr-checker, the workload checker,
# against plain nbdkit servers (no rmr).  A clean run verifies; a block
# overwritten with garbage, half of another write (torn), another block's
# write (misplaced), zeroes (lost) or its own older write (stale) fails
# verify and is named; failed writes (error filter) are journalled and
# verify; kill -9 of the server (file plugin) mid-run ends the writer
# with status 3 and an intact journal that verifies --strict-flushed, and
# a second run continues it; a server that brings back an old copy of its
# disk fails verify; two writers on disjoint ranges both verify, and
# overlapping ones do not; SIGTERM stops the writer cleanly, kill -9 of
# the writer leaves a journal that verifies; a server that stops
# answering ends the writer with status 3; bad use exits 2.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"

checker=$SRC_DIR/tests/rmr-checker
requires /usr/bin/python3 -c 'import nbd'
requires nbdsh --version
requires nbdkit --version
requires nbdkit --filter=error --filter=delay file --version
make_tmpdir
bs=4096

# srv_start NAME ARGS...: nbdkit ARGS on $tmpdir/NAME.sock; sets SRV_PID.
srv_start ()
{
  local name=$1
  shift
  rm -f "$tmpdir/$name.sock"
  start_bg "$tmpdir/$name.pid" nbdkit -f -U "$tmpdir/$name.sock" "$@"
  SRV_PID=$BG_PID
  _wait_until 10 test -S "$tmpdir/$name.sock" ||
    fail_test "nbdkit $* did not start"
}

uri ()
{
  echo "nbd+unix:///?socket=$tmpdir/$1.sock"
}

# chk ARGS...: run the checker; sets $rc and $out (its stdout, also
# copied to our stderr for the log).
chk ()
{
  rc=0
  out=$("$checker" "$@") || rc=$?
  [[ -z "$out" ]] || printf '%s\n' "$out" >&2
}

# blk_get SERVER BLOCK FILE / blk_put SERVER BLOCK FILE: copy one block
# out of / into the export.
blk_get ()
{
  nbdsh -u "$(uri "$1")" -c 'import sys' \
    -c "sys.stdout.buffer.write(h.pread($bs, $2 * $bs))" >"$3"
}

blk_put ()
{
  F=$3 nbdsh -u "$(uri "$1")" -c 'import os' \
    -c "h.pwrite(open(os.environ['F'], 'rb').read(), $2 * $bs)"
}

# verify_bad SERVER JOURNAL BLOCK WHAT DESC [ARGS]: verify fails with
# status 1 and names BLOCK as WHAT.
verify_bad ()
{
  chk verify "$(uri "$1")" "$2" "${@:6}"
  is "$rc" 1 "$5: verify fails"
  ok "$5: verify names block $3 as $4" \
    grep -q "^  block $3 (offset $(($3 * bs))): $4" <<<"$out"
}

# flushes JOURNAL: how many flushes it records.
flushes ()
{
  grep -c '^flush ' "$1" 2>/dev/null || true
}

# has_flushes JOURNAL N: it records at least N flushes.
has_flushes ()
{
  [[ $(flushes "$1") -ge $2 ]]
}

# --- a clean run, then damaged blocks -----------------------------------

srv_start m memory 64M
j=$tmpdir/m.journal
chk write "$(uri m)" "$j" --seconds 2 --seed 1
is "$rc" 0 "a 2 s write run exits 0"
is "$(tail -n 1 "$j" | cut -d' ' -f1,3)" "end seconds" \
  "the journal ends with an end record"
is "$(head -n 1 "$j" | cut -d' ' -f1,3-6)" "run 1 0 4096 $bs" \
  "the journal starts with the run record"
chk verify "$(uri m)" "$j"
is "$rc" 0 "verify passes"
ok "verify prints OK" grep -q "OK: 4096 blocks checked" <<<"$out"
chk verify "$(uri m)" "$j" --strict-flushed
is "$rc" 0 "verify --strict-flushed passes"

# b: the last block acknowledged; c: another acknowledged block.
b=$(awk '$1 == "ack" { b = $2 } END { print b }' "$j")
c=$(awk -v b="$b" '$1 == "ack" && $2 != b { print $2; exit }' "$j")
blk_get m "$b" "$tmpdir/b.orig"
blk_get m "$c" "$tmpdir/c.orig"

head -c "$bs" /dev/urandom >"$tmpdir/garbage"
blk_put m "$b" "$tmpdir/garbage"
verify_bad m "$j" "$b" garbage "random bytes"

{ head -c $((bs / 2)) "$tmpdir/b.orig"; tail -c $((bs / 2)) "$tmpdir/c.orig"; } \
  >"$tmpdir/torn"
blk_put m "$b" "$tmpdir/torn"
verify_bad m "$j" "$b" "torn or damaged" "half of another write (torn)"

# Byte 3000 inverted (setting it to a fixed value left it unchanged
# whenever the write's own data had that value there: 1 run in 256).
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[3000] ^= 0xff; open(sys.argv[2], "wb").write(b)' \
  "$tmpdir/b.orig" "$tmpdir/flip"
blk_put m "$b" "$tmpdir/flip"
verify_bad m "$j" "$b" "torn or damaged" "one byte changed"

blk_put m "$b" "$tmpdir/c.orig"
verify_bad m "$j" "$b" misplaced "block $c's write in block $b"

head -c "$bs" /dev/zero >"$tmpdir/zero"
blk_put m "$b" "$tmpdir/zero"
verify_bad m "$j" "$b" lost "zeroes (the write lost)" --strict-flushed

blk_put m "$b" "$tmpdir/b.orig"
chk verify "$(uri m)" "$j"
is "$rc" 0 "the block put back, verify passes again"

# A second run on block b alone continues the journal and rewrites b;
# putting b's older write back is a stale value.
chk write "$(uri m)" "$j" --first-block "$b" --blocks 1 --writes 3
is "$rc" 0 "a second run on block $b alone"
is "$(grep -c '^run ' "$j")" 2 "the journal has two runs"
seq0=$(awk '$1 == "run" { s = $3 } END { print s }' "$j")
max1=$(awk -v s="$seq0" '$1 == "issue" && $3 < s { m = $3 } END { print m }' "$j")
is "$seq0" $((max1 + 1)) "the second run continues the sequence numbers"
chk verify "$(uri m)" "$j"
is "$rc" 0 "verify passes after the second run"
blk_put m "$b" "$tmpdir/b.orig"
verify_bad m "$j" "$b" stale "block $b's older write"
kill_pid "$SRV_PID"

# --- failed writes ------------------------------------------------------

srv_start e --filter=error memory 64M error-pwrite=EIO error-pwrite-rate=10%
j=$tmpdir/e.journal
chk write "$(uri e)" "$j" --writes 500
is "$rc" 1 "a run with failed writes exits 1"
n=$(grep -c '^err [0-9]* [0-9]* EIO$' "$j" || true)
ok "the journal records writes failed with EIO ($n)" test "$n" -gt 0
chk verify "$(uri e)" "$j"
is "$rc" 0 "verify passes with failed writes"
kill_pid "$SRV_PID"

# --- kill -9 of the server mid-run, restart, continue ---------------------

disk=$tmpdir/disk
truncate -s 64M "$disk"
srv_start f file "$disk"
j=$tmpdir/f.journal
start_bg "$tmpdir/w.pid" "$checker" write "$(uri f)" "$j"
wpid=$BG_PID
_wait_until 20 has_flushes "$j" 20 ||
  fail_test "the writer recorded no flushes"
kill_pid "$SRV_PID" KILL
ok "nbdkit killed with SIGKILL during the run"
rc=0
wait "$wpid" || rc=$?
is "$rc" 3 "the writer exits 3 when the server goes away"
is "$(tail -c 1 "$j" | od -An -c | tr -d ' ')" '\n' \
  "the journal ends with a complete line"
is "$(grep -c '^end ' "$j" || true)" 0 "no end record after a crash"
srv_start f file "$disk"
chk verify "$(uri f)" "$j" --strict-flushed
is "$rc" 0 "after the restart verify --strict-flushed passes"
chk verify "$(uri f)" "$j"
is "$rc" 0 "verify passes too (the file plugin lost no acknowledged write)"
chk write "$(uri f)" "$j" --writes 2000
is "$rc" 0 "a second run continues the journal"
chk verify "$(uri f)" "$j"
is "$rc" 0 "verify passes after the second run"

# --- a server that brings back an old copy of its disk ------------------

kill_pid "$SRV_PID"
cp "$disk" "$tmpdir/disk.old"
srv_start f file "$disk"
chk write "$(uri f)" "$j" --writes 3000
is "$rc" 0 "a third run"
chk verify "$(uri f)" "$j" --strict-flushed
is "$rc" 0 "verify passes after the third run"
kill_pid "$SRV_PID"
cp "$tmpdir/disk.old" "$disk"
srv_start f file "$disk"
chk verify "$(uri f)" "$j" --strict-flushed
is "$rc" 1 "the old disk back: verify --strict-flushed fails"
ok "verify reports stale blocks" \
  grep -q '^  block [0-9]* (offset [0-9]*): stale: ' <<<"$out"
kill_pid "$SRV_PID"

# --- two writers, SIGTERM, kill -9 of the writer --------------------------

srv_start m memory 64M
chk_bg ()
{
  start_bg "$tmpdir/$1.pid" "$checker" write "$(uri m)" "${@:2}"
}
chk_bg w1 "$tmpdir/w1.journal" --first-block 0 --blocks 2048 --seed 1 \
  --seconds 2
w1=$BG_PID
chk_bg w2 "$tmpdir/w2.journal" --first-block 2048 --blocks 2048 --seed 2 \
  --seconds 2
w2=$BG_PID
rc=0
wait "$w1" || rc=$?
is "$rc" 0 "writer 1 (blocks 0..2047) exits 0"
rc=0
wait "$w2" || rc=$?
is "$rc" 0 "writer 2 (blocks 2048..4095) exits 0"
chk verify "$(uri m)" "$tmpdir/w1.journal"
is "$rc" 0 "writer 1's journal verifies"
ok "verify reads writer 1's 2048 blocks" \
  grep -q "OK: 2048 blocks checked" <<<"$out"
chk verify "$(uri m)" "$tmpdir/w2.journal"
is "$rc" 0 "writer 2's journal verifies"
chk write "$(uri m)" "$tmpdir/w3.journal" --first-block 1024 --blocks 2048 \
  --writes 4000
chk verify "$(uri m)" "$tmpdir/w1.journal"
is "$rc" 1 "a writer on an overlapping range: writer 1's verify fails"
ok "verify reports writes of another journal" \
  grep -q 'unknown write: ' <<<"$out"

kill_pid "$SRV_PID"
srv_start m memory 64M
j=$tmpdir/t.journal
chk_bg t "$j"
wpid=$BG_PID
_wait_until 20 has_flushes "$j" 10 ||
  fail_test "the writer recorded no flushes"
chk write "$(uri m)" "$j" --writes 1
is "$rc" 2 "a second writer on the same journal exits 2"
kill -s TERM "$wpid"
rc=0
wait "$wpid" || rc=$?
is "$rc" 0 "SIGTERM stops the writer with status 0"
is "$(tail -n 1 "$j" | cut -d' ' -f1,3)" "end signal" \
  "the journal ends with an end record"
is "$(tail -n 2 "$j" | head -n 1 | cut -d' ' -f1)" flush \
  "after a final flush"
chk verify "$(uri m)" "$j"
is "$rc" 0 "verify passes after SIGTERM"

printf 'issue 1' >>"$j"
chk verify "$(uri m)" "$j"
is "$rc" 0 "verify ignores an incomplete last line"
chk_bg k "$j"
wpid=$BG_PID
n=$(flushes "$j")
_wait_until 20 has_flushes "$j" $((n + 10)) ||
  fail_test "the writer recorded no flushes"
kill_pid "$wpid" KILL
ok "the writer killed with SIGKILL"
chk verify "$(uri m)" "$j"
is "$rc" 0 "its journal verifies"
kill_pid "$SRV_PID"

# --- a server that stops answering; bad use -----------------------------

srv_start d --filter=delay memory 64M wdelay=5
start=$SECONDS
chk write "$(uri d)" "$tmpdir/d.journal" --timeout 1 --writes 100
is "$rc" 3 "a server that does not answer: the writer exits 3"
ok "after --timeout ($((SECONDS - start)) s)" test $((SECONDS - start)) -lt 5
kill_pid "$SRV_PID"

srv_start m memory 64M
chk verify "$(uri m)" "$tmpdir/none.journal"
is "$rc" 2 "verify without a journal exits 2"
chk write "$(uri m)" "$tmpdir/u.journal" --blocks 100000
is "$rc" 2 "write past the export's end exits 2"
printf 'run 0123456789abcdef 1 0 16 4096 1\nbogus 1 2\n' >"$tmpdir/bad.journal"
chk verify "$(uri m)" "$tmpdir/bad.journal"
is "$rc" 2 "verify of a bad journal exits 2"
chk write "$(uri m)" "$tmpdir/m2.journal" --block-size 512 --writes 10
chk write "$(uri m)" "$tmpdir/m2.journal" --writes 10
is "$rc" 2 "continuing a journal with another block size exits 2"
chk nonsense
is "$rc" 2 "an unknown command exits 2"

done_testing
