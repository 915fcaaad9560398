#!/usr/bin/env bash
# scripts/bench/embed_call.sh: the cost of calling a Lua handler from C through
# kura_call, printed beside a bare lua_pcall of the same function in the same
# run (scripts/bench/embed_call.c). Goal: kura_call <= 1.5x the bare call.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/setup.sh"

usage() {
  cat <<USAGE
usage: scripts/bench/embed_call.sh [--calls N] [--rounds N]

Builds kura (Release) and the embed_call program, then times N calls
(default 2000000) of an empty handler and of on_tick(tick, dt) -> number:
a bare lua_getglobal + lua_pcall in a plain lua_State, kura_call, and
kura_call in a sandboxed runtime with an instruction budget and a memory cap.
Each figure is the best of --rounds rounds (default 5), in CPU time.
Environment: KURA_BUILD_DIR (default: build-bench-embed/ in the source tree).
USAGE
}
calls=2000000
rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --calls) calls=${2:?--calls needs a number}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    *) echo "embed_call.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

build=${KURA_BUILD_DIR:-$KURA_ROOT/build-bench-embed}
mkdir -p "$build"
kura_install $KURA_BUILD_PKGS
cmake -S "$KURA_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKURA_SANITIZE=OFF \
  -DKURA_BUILD_TESTS=OFF >"$build/configure.log" 2>&1 || {
  cat "$build/configure.log" >&2; kura_log "cmake configure failed"; exit 1; }
cmake --build "$build" --target embed_call -j 2 >"$build/embed_call.build.log" 2>&1 || {
  cat "$build/embed_call.build.log" >&2; kura_log "building embed_call failed"; exit 1; }
exec "$build/embed_call" "$calls" "$rounds"
