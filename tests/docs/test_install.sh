#!/usr/bin/env bash
# What a user gets from `cmake --install`: into a fresh prefix, then the man
# page read with `man -l` (and checked by groff for warnings), the installed
# `kura --help` and `kura help bench`, libcurl declared for packagers, every
# example of the installed guides run with the installed kura and compiled
# against the installed library, and `--target uninstall` removing it all.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR. Exits 77 (a skip) when
# neither man nor groff is installed.
set -euo pipefail
build=${1:?usage: test_install.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: test_install.sh BUILD_DIR SOURCE_DIR}
prefix=$(mktemp -d /tmp/kura-prefix.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
step() { printf '== %s\n' "$*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

if ! command -v man >/dev/null && ! command -v groff >/dev/null; then
  echo "SKIP: neither man nor groff is installed (apt-get install man-db groff-base)"
  exit 77
fi

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/kura lib/libkura.so lib/libkura.a include/kura.h share/man/man1/kura.1 \
         lib/pkgconfig/kura.pc lib/cmake/kura/kuraConfig.cmake share/doc/kura/lua-api.md \
         share/doc/kura/embedding.md share/doc/kura/backends.md share/doc/kura/load-testing.md \
         share/doc/kura/README.md share/doc/kura/LICENSE share/doc/kura/CHANGELOG.md; do
  [ -f "$prefix/$f" ] || die "missing after install: $f"
done
for f in "$src"/docs/*.md; do
  cmp -s "$f" "$prefix/share/doc/kura/$(basename "$f")" || die "installed $(basename "$f") differs"
done
kura=$prefix/bin/kura

step "the man page"
page=$prefix/share/man/man1/kura.1
if command -v groff >/dev/null; then
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  [ -z "$warnings" ] || die "groff warns about kura.1: $warnings"
fi
if command -v man >/dev/null; then
  MANWIDTH=80 MANPAGER=cat man -l "$page" >"$prefix/man.txt" 2>"$prefix/man.err" \
    || die "man -l failed: $(cat "$prefix/man.err")"
  # found by name too, from the prefix's man folder
  MANPATH=$prefix/share/man MANPAGER=cat man kura >/dev/null 2>&1 || die "man kura: not found in MANPATH"
else
  groff -man -Tutf8 "$page" >"$prefix/man.txt"
fi
for want in 'kura - run Lua cache scripts' 'BENCH OPTIONS' '--threshold expr' 'EXIT STATUS' \
            'MOMENTO_API_KEY'; do
  grep -q -- "$want" "$prefix/man.txt" || die "the man page has no '$want'"
done
version=$("$kura" --version | awk '{ print $2 }')
grep -q "^\.TH KURA 1 \"[0-9-]*\" \"kura $version\"" "$page" || die "kura.1 is not of version $version"
echo "kura.1: $(wc -l <"$prefix/man.txt") lines, version $version"

step "kura --help, kura help bench"
"$kura" --help | grep -q '^usage: kura <command>' || die "kura --help"
"$kura" help bench | grep -q '^usage: kura bench' || die "kura help bench"
"$kura" -e 'print(kura.version)' | grep -qx "$version" || die "the installed kura does not run"

step "libcurl declared for packagers"
grep -q '^Requires.private:.* libcurl' "$prefix/lib/pkgconfig/kura.pc" || die "kura.pc: no libcurl"
grep -q '^Requires.private:.* libcurl' "$prefix/lib/pkgconfig/kura-static.pc" || die "kura-static.pc: no libcurl"
grep -q 'set(kura_RUNTIME_DEPENDENCIES "libcurl.so.4")' "$prefix/lib/cmake/kura/kuraConfig.cmake" \
  || die "kuraConfig.cmake: no libcurl"
PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --print-requires-private kura | grep -qx 'libcurl' \
  || die "pkg-config --print-requires-private kura: no libcurl"

step "every example of the installed guides, with the installed kura and library"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046
env -u KURA_LUA_PATH -u KURA_DEV bash "$src/tests/docs/run_examples.sh" "$kura" "$src" -pthread \
  $(pkg-config --cflags --libs kura libuv lua5.4) -Wl,-rpath,"$prefix/lib" >"$prefix/examples.txt" 2>&1 \
  || { cat "$prefix/examples.txt"; die "an example failed"; }
tail -1 "$prefix/examples.txt"

step "cmake --build $build --target uninstall"
cmake --build "$build" --target uninstall >/dev/null
left=$(find "$prefix" -path "$prefix/*.txt" -prune -o -path "$prefix/*.err" -prune -o -type f -print)
[ -z "$left" ] || die "files left after uninstall: $left"
[ ! -e "$prefix/share/doc/kura" ] || die "share/doc/kura left after uninstall"
step "ok"
