#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-nemesis.sh: a short randomized fault campaign with a fixed seed
# (scripts/nemesis --seed 1 --rounds 3): storage nodes and nbdkit killed
# -9, links cut, IO errors injected, legs disabled, outages longer than
# the recent-write record, ordered double faults; after the repair of
# each round every acknowledged write reads back through the pool, through
# each leg alone and from each store, every map is clean and the legs are
# byte-identical.  The rounds' logs are kept in the test's log on failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"

requires_root
requires ip -V
requires nbdkit --filter=offset null --version
requires /usr/bin/python3 -c 'import nbd'
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

rc=0
out=$("$SRC_DIR/scripts/nemesis" --seed 1 --rounds 3 --build "$BUILD_DIR" \
  --logs "$tmpdir/logs" 2>&1) || rc=$?
diag "$out"
summary=$(tail -n 1 <<<"$out")
if [[ $rc -ne 0 ]]; then
  for f in "$tmpdir"/logs/round*.log; do
    [[ -f "$f" ]] || continue
    echo "===== $f" >&2
    cat "$f" >&2
  done
fi
[[ "$summary" =~ ^rounds\ 3,\ faults\ [0-9]+,\ lost\ 0,\ divergent\ 0$ && $rc -eq 0 ]] &&
  ok "nemesis seed 1, 3 rounds: $summary" ||
  not_ok "nemesis seed 1, 3 rounds: $summary (status $rc)"
done_testing
