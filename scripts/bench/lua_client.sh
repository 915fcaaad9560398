#!/usr/bin/env bash
# scripts/bench/lua_client.sh: "speed from Lua". c:get / c:set and h:get /
# h:set from one Lua loop against kura's embedded store, printed beside a bare
# C module that does one hash lookup per call with the same Lua calling
# pattern (scripts/bench/lua_floor.c), measured in the same run.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/setup.sh"

usage() {
  cat <<USAGE
usage: scripts/bench/lua_client.sh [--ops N] [--keys N] [--value-size N] [--rounds N]

Builds kura (Release) and the lua_floor program, then runs
scripts/bench/lua_client.lua: N gets and N sets (default 10000000 each) over
--keys keys (default 100000) with --value-size byte values (default 32),
through c:get/c:set and h:get/h:set, beside the C floor. Each figure is the
best of --rounds rounds (default 5). Goals: get >= 0.8x the floor, set >= 0.7x.
Environment: KURA_BUILD_DIR (default: build-bench-lua/ in the source tree),
KURA_BACKEND (default: memory).
USAGE
}
for a in "$@"; do
  case "$a" in -h|--help) usage; exit 0 ;; esac
done

build=${KURA_BUILD_DIR:-$KURA_ROOT/build-bench-lua}
mkdir -p "$build"
kura_install $KURA_BUILD_PKGS
# Only what the benchmark needs: the runtime library and lua_floor.
cmake -S "$KURA_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKURA_SANITIZE=OFF \
  -DKURA_BUILD_TESTS=OFF >"$build/configure.log" 2>&1 || {
  cat "$build/configure.log" >&2; kura_log "cmake configure failed"; exit 1; }
cmake --build "$build" --target lua_floor -j 2 >"$build/lua_floor.build.log" 2>&1 || {
  cat "$build/lua_floor.build.log" >&2; kura_log "building lua_floor failed"; exit 1; }
exec "$build/lua_floor" "$KURA_ROOT/scripts/bench/lua_client.lua" "$@"
