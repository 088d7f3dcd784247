#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-librmr-api.sh: librmr as an external program sees it, from the
# tree 'meson install' makes (DESTDIR): the shared library exports
# exactly the functions declared in rmr/rmr.h (nothing internal leaks,
# nothing is missing), each with the symbol version LIBRMR_0; the
# installed header compiles alone as C11 with -pedantic and as C++; the
# example builds with 'cc $(pkg-config --cflags --libs rmr)' against the
# installed tree only, runs with the installed library, and reports a
# bad argument; librmr(3) names every public function.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"

requires meson --version
requires pkg-config --version
requires nm --version
requires readelf --version
requires cc --version
make_tmpdir

root=$tmpdir/root
if ! DESTDIR=$root meson install -C "$BUILD_DIR" --no-rebuild --quiet \
     >"$tmpdir/install.log" 2>&1; then
  diag "$(tail -n 20 "$tmpdir/install.log")"
  fail_test "meson install into DESTDIR"
fi
ok "meson install into DESTDIR"

dirs=$(meson introspect "$BUILD_DIR" --buildoptions |
  /usr/bin/python3 -c 'import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
p = o["prefix"]
print(*[d if d.startswith("/") else p + "/" + d
        for d in (o["libdir"], o["includedir"], o["mandir"])])')
read -r libdir includedir mandir <<<"$dirs"
lib=$root$libdir/librmr.so.0
header=$root$includedir/rmr/rmr.h
requires_file "$lib" "$header"

# The functions the header declares: every "rmr_NAME (" once comments
# and macros are gone (the preprocessor removes them).
cc -E -P "$header" | grep -oE '\brmr_[a-z0-9_]+ *\(' | sed 's/ *($//' |
  sort -u >"$tmpdir/declared"
# What the library exports: defined dynamic symbols, without the version
# node itself (type A).
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' |
  sort -u >"$tmpdir/exported.v"
sed 's/@.*//' "$tmpdir/exported.v" | sort -u >"$tmpdir/exported"

n=$(wc -l <"$tmpdir/declared")
if [[ $n -ge 30 ]]; then
  ok "rmr.h declares $n functions"
else
  not_ok "rmr.h declares $n functions (the parse found too few)"
fi
if cmp -s "$tmpdir/declared" "$tmpdir/exported"; then
  ok "librmr.so.0 exports exactly the $n functions of rmr.h"
else
  not_ok "librmr.so.0 exports exactly the functions of rmr.h"
  diag "exported, not declared (internals leaking):"
  diag "$(comm -13 "$tmpdir/declared" "$tmpdir/exported")"
  diag "declared, not exported (missing from common/librmr.syms):"
  diag "$(comm -23 "$tmpdir/declared" "$tmpdir/exported")"
fi
unversioned=$(grep -v '@@LIBRMR_0$' "$tmpdir/exported.v" || true)
is "$unversioned" "" "every exported function has the version LIBRMR_0"
is "$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" \
  librmr.so.0 "the soname is librmr.so.0"
is "$(readlink "$root$libdir/librmr.so")" librmr.so.0 \
  "librmr.so links to the soname (for -lrmr)"

# The header alone, strictly: C11 as the standard says it, and C++.
cat >"$tmpdir/hdr.c" <<'EOF'
#include <rmr/rmr.h>
int
main (void)
{
  struct rmr_pool_config cfg;
  struct iovec iov = {0, 0};

  rmr_pool_config_init (&cfg);
  return rmr_pool_preadv ((struct rmr_pool *) 0, &iov, 1, 0, RMR_IO_FUA) +
         (int) cfg.nlegs;
}
EOF
ok "rmr.h compiles alone with -std=c11 -pedantic-errors -Wall -Wextra" \
  cc -std=c11 -pedantic-errors -Wall -Wextra -Werror -I"$root$includedir" \
  -c -o "$tmpdir/hdr.o" "$tmpdir/hdr.c"
if c++ --version >/dev/null 2>&1; then
  cp "$tmpdir/hdr.c" "$tmpdir/hdr.cc"
  ok "rmr.h compiles alone as C++11 with -pedantic-errors" \
    c++ -std=c++11 -pedantic-errors -Wall -Wextra -Werror \
    -I"$root$includedir" -c -o "$tmpdir/hdr.o" "$tmpdir/hdr.cc"
else
  skip "rmr.h compiles as C++" "no c++ compiler"
fi

# pkg-config from the installed tree: the sysroot maps the .pc file's
# prefix into DESTDIR.
export PKG_CONFIG_PATH=$root$libdir/pkgconfig PKG_CONFIG_LIBDIR=''
export PKG_CONFIG_SYSROOT_DIR=$root
flags=$(pkg-config --cflags --libs rmr) ||
  fail_test "pkg-config --cflags --libs rmr"
is "$(pkg-config --modversion rmr)" \
  "$(meson introspect "$BUILD_DIR" --projectinfo |
     /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')" \
  "pkg-config knows rmr's version"
# shellcheck disable=SC2086 # flags: words
printf '%s\n' $flags | sort >"$tmpdir/flags"
printf '%s\n' "-I$root$includedir" "-L$root$libdir" -lrmr | sort \
  >"$tmpdir/flags.expect"
if cmp -s "$tmpdir/flags" "$tmpdir/flags.expect"; then
  ok "pkg-config rmr points into the installed tree: $flags"
else
  not_ok "pkg-config rmr points into the installed tree: $flags"
fi

# shellcheck disable=SC2086 # flags: words
ok "the example builds with cc \$(pkg-config --cflags --libs rmr)" \
  cc -std=c11 -pedantic -Wall -Wextra -Werror -o "$tmpdir/rmr-example" \
  "$SRC_DIR/examples/rmr-example.c" $flags
is "$(readelf -d "$tmpdir/rmr-example" |
      sed -n 's/.*Shared library: \[\(librmr[^]]*\)\]/\1/p')" librmr.so.0 \
  "the example needs librmr.so.0"
resolved=$(LD_LIBRARY_PATH=$root$libdir ldd "$tmpdir/rmr-example" |
  awk '$1 == "librmr.so.0" { print $3 }')
is "$resolved" "$lib" "the example loads the installed librmr.so.0"

# In a sanitizer build the library needs its runtimes first in the
# process, which this program (built without them) must preload.
run=(env LD_LIBRARY_PATH="$root$libdir")
if [[ "${RMR_ASAN:-}" == 1 ]]; then
  run+=(LD_PRELOAD="${RMR_ASAN_PRELOAD:-}")
fi
rc=0
"${run[@]}" "$tmpdir/rmr-example" pool=p server=tcp:127.0.0.1:notaport \
  >"$tmpdir/out" 2>&1 || rc=$?
if [[ $rc -eq 1 ]] && grep -q 'bad argument: server=tcp:127.0.0.1:notaport' \
     "$tmpdir/out"; then
  ok "the example runs and refuses a bad address with status 1"
else
  not_ok "the example runs and refuses a bad address with status 1"
  diag "status $rc: $(cat "$tmpdir/out")"
fi

# librmr(3): installed, and names every public function.
man3=$root$mandir/man3/librmr.3
if [[ -s "$man3" ]]; then
  ok "librmr.3 installed"
  undocumented=()
  while read -r f; do
    grep -qF "B<$f>" "$SRC_DIR/docs/librmr.pod" || undocumented+=("$f")
  done <"$tmpdir/declared"
  is "${undocumented[*]}" "" "librmr(3) documents every function of rmr.h"
else
  not_ok "librmr.3 installed"
fi

done_testing
