#!/usr/bin/env bash
# scripts/bench/startup.sh: start-up cost of kura. Builds kura (Release, in
# build-bench/ or $KURA_BUILD_DIR), then times `kura run empty.lua` beside
# `lua5.4 empty.lua` in ONE hyperfine run (-N: no shell, --warmup 20), and
# prints both means and their ratio. Target: kura <= 3x lua5.4.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/setup.sh"

usage() {
  cat <<USAGE
usage: scripts/bench/startup.sh [--no-build] [--runs N]

  --no-build  use the kura already built in the build folder
  --runs N    timed runs per command (default: hyperfine decides, >= 100)
Environment: KURA_BUILD_DIR (default: build-bench/ in the source tree).
USAGE
}

BUILD=${KURA_BUILD_DIR:-$KURA_ROOT/build-bench}
BUILD_FIRST=1
RUNS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --no-build) BUILD_FIRST=0 ;;
    --runs) RUNS=(--runs "$2"); shift ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

kura_install $KURA_BUILD_PKGS lua5.4 hyperfine
if [ $BUILD_FIRST = 1 ]; then
  mkdir -p "$BUILD"
  cmake -S "$KURA_ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKURA_SANITIZE=OFF \
    >"$BUILD.configure.log" 2>&1 || { cat "$BUILD.configure.log" >&2; exit 1; }
  cmake --build "$BUILD" -j2 --target kura >"$BUILD.build.log" 2>&1 ||
    { tail -40 "$BUILD.build.log" >&2; kura_log "build failed"; exit 1; }
fi
KURA="$BUILD/kura"
EMPTY="$KURA_ROOT/scripts/bench/empty.lua"
json=$(mktemp /tmp/kura-startup.XXXXXX.json)
trap 'rm -f "$json"' EXIT

hyperfine -N --warmup 20 ${RUNS[@]+"${RUNS[@]}"} --export-json "$json" \
  -n "kura run empty.lua" "$KURA run $EMPTY" \
  -n "lua5.4 empty.lua" "lua5.4 $EMPTY"

# The summary, computed by kura itself from hyperfine's JSON.
"$KURA" -e '
  local f = assert(io.open(arg[1], "rb"))
  local r = assert(kura.json.decode(f:read("a"))).results
  f:close()
  local k, l = r[1], r[2]
  local ratio = k.mean / l.mean
  print(string.format("kura run empty.lua: %.3f ms +- %.3f (median %.3f)",
    k.mean * 1e3, k.stddev * 1e3, k.median * 1e3))
  print(string.format("lua5.4 empty.lua:   %.3f ms +- %.3f (median %.3f)",
    l.mean * 1e3, l.stddev * 1e3, l.median * 1e3))
  print(string.format("ratio (means): %.2fx  (median ratio %.2fx)  target <= 3x: %s",
    ratio, k.median / l.median, ratio <= 3 and "PASS" or "MISS"))
' "$json"
