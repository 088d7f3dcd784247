#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-librmr-iov.sh: rmr_pool_pwritev and rmr_pool_preadv through a real
# pool of two storage nodes (tests/librmr-iov.c, linked with the shared
# librmr): a write of RMR_MAX_IOVCNT segments cut at random points (some
# empty) reads back through preadv cut elsewhere, through preadv with one
# segment among empty ones, and through pread; refused vectors change
# nothing; a FUA pwritev and a flush.  Then each leg alone holds exactly
# what was written (its store's data area at the offset 'rmradm
# store-info' gives), so the scatter list reached every leg in order.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

: "${RMR_IOV:=$BUILD_DIR/tests/librmr-iov}"
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_IOV"
make_tmpdir

node_start 1 p 64M
node_start 2 p 64M

off=$((5 << 20))
tls=()
for a in $(plugin_tls_args); do
  [[ "$a" == tls=* ]] || tls+=("$a")
done
rc=0
# shellcheck disable=SC2046 # servers: words
"${CHECKED[@]}" "$RMR_IOV" pool=p $(servers 1 2) offset="$off" \
  out="$tmpdir/expect" seed="${RMR_IOV_SEED:-$$}" "${tls[@]}" \
  >"$tmpdir/out" 2>&1 || rc=$?
while read -r word rest; do
  case "$word" in
    ok) ok "$rest" ;;
    FAIL) not_ok "$rest" ;;
    *) diag "$word $rest" ;;
  esac
done <"$tmpdir/out"
is "$rc" 0 "librmr-iov exits with status 0"
# Every step reported (a crash would stop the list).
is "$(grep -c '^ok ' "$tmpdir/out")" 11 "librmr-iov passed all 11 steps"

len=$(stat -c %s "$tmpdir/expect" 2>/dev/null || echo 0)
is "$len" $(((8 << 20) + 3 * 4096)) "librmr-iov saved what it wrote"
for i in 1 2; do
  if cmp "$tmpdir/expect" <(dd if="${NODE_STORE[$i]}" \
       iflag=skip_bytes,count_bytes skip=$(($(store_data_offset "$i") + off)) \
       count="$len" status=none) >&2; then
    ok "store of member $((40 + i)) holds exactly what the vectors wrote"
  else
    not_ok "store of member $((40 + i)) holds exactly what the vectors wrote"
  fi
done

done_testing
