#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-librmr-example.sh: the librmr example program (examples/, linked
# with the shared librmr like any external program) against a real pool
# of two storage nodes.  It creates the pool on fresh stores, writes a
# pattern with rmr_pool_pwritev, reads it back with rmr_pool_preadv and
# rmr_pool_pread, flushes and closes (status 0); a second run assembles
# the pool and does the same elsewhere.  Then other readers check the
# data: each store's data area at the offset 'rmradm store-info' gives
# (both legs got every vectored write), and nbdkit rmr read with nbdsh
# (another client assembling the pool).  An IO past the device's end
# fails with status 1 and the library's message.  Under the tls test
# setup the example connects with TLS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

: "${RMR_EXAMPLE:=$BUILD_DIR/examples/rmr-example}"
requires nbdsh --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN" "$RMR_EXAMPLE"
make_tmpdir

size=$((64 << 20))
node_start 1 p 64M
node_start 2 p 64M

# pattern OFFSET LENGTH OUT: the bytes the example writes there.
pattern ()
{
  /usr/bin/python3 -c 'import sys
off, n = int(sys.argv[1]), int(sys.argv[2])
sys.stdout.buffer.write(bytes((x ^ x >> 8 ^ x >> 16) & 0xff
                              for x in range(off, off + n)))' "$1" "$2" >"$3"
}

# run_example OFFSET LENGTH: run it; its output goes to $tmpdir/out.
# With TLS (the tls test setup) it takes the plugin's key file and
# identity.
run_example ()
{
  local a tls=()
  for a in $(plugin_tls_args); do
    [[ "$a" == tls=* ]] || tls+=("$a")
  done
  # shellcheck disable=SC2046 # servers: words
  "${CHECKED[@]}" "$RMR_EXAMPLE" pool=p $(servers 1 2) offset="$1" \
    length="$2" "${tls[@]}" >"$tmpdir/out" 2>&1
}

# Two runs: the first creates the pool, the second assembles it.  The
# ranges are not chunk aligned and span chunks (128 KiB).
ranges=("1052672 3145728" "20000768 1200128")
for r in "${ranges[@]}"; do
  read -r off len <<<"$r"
  rc=0
  run_example "$off" "$len" || rc=$?
  if [[ $rc -eq 0 ]] &&
     grep -qx "pool p: $size bytes, 2 legs, chunk 131072" "$tmpdir/out" &&
     grep -qx "wrote, read back and flushed $len bytes at $off" \
       "$tmpdir/out"; then
    ok "rmr-example wrote $len bytes at $off and read them back (pwritev, preadv, pread)"
  else
    not_ok "rmr-example wrote $len bytes at $off and read them back"
    diag "status $rc: $(cat "$tmpdir/out")"
  fi
  for i in 1 2; do
    is "$(rmradm_n "$i" get rmr-server/pools/p/state)" registered \
      "member $((40 + i)) registered after the example closed the pool"
  done
done

# Each leg alone holds the pattern: the data area, not the pool.
for r in "${ranges[@]}"; do
  read -r off len <<<"$r"
  pattern "$off" "$len" "$tmpdir/expect"
  dataoff=$(store_data_offset 1)
  [[ -n "$dataoff" ]] || fail_test "rmradm store-info gives no data_offset"
  for i in 1 2; do
    if cmp "$tmpdir/expect" <(dd if="${NODE_STORE[$i]}" \
         iflag=skip_bytes,count_bytes skip=$(($(store_data_offset "$i") + off)) \
         count="$len" status=none) >&2; then
      ok "store of member $((40 + i)) holds the pattern at $off"
    else
      not_ok "store of member $((40 + i)) holds the pattern at $off"
    fi
  done
done
ok "the two stores' data areas are identical" legs_identical 1 2 "$size"

# Another client: nbdkit rmr assembles the pool, nbdsh reads through it.
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2)
for r in "${ranges[@]}"; do
  read -r off len <<<"$r"
  pattern "$off" "$len" "$tmpdir/expect"
  ok "nbdsh reads the pattern at $off through nbdkit rmr" \
    nbdsh -u "$(nbd_uri e)" -c "
with open('$tmpdir/expect', 'rb') as f:
    expect = f.read()
assert h.pread($len, $off) == expect
assert h.pread(4096, $off - 4096) == bytes(4096)
"
done
kill_pid "$NBDKIT_PID"

# The library's errors reach the program: past the end of the device.
rc=0
run_example $((size - 4096)) 8192 || rc=$?
if [[ $rc -eq 1 ]] &&
   grep -q '^rmr-example: pwritev: .*beyond the device size' "$tmpdir/out"; then
  ok "an IO past the end fails with status 1 and librmr's message"
else
  not_ok "an IO past the end fails with status 1 and librmr's message"
  diag "status $rc: $(cat "$tmpdir/out")"
fi

done_testing
