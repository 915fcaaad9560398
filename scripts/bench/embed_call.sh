#!/usr/bin/env bash
# scripts/bench/embed_call.sh: the cost of calling a Lua handler from C through
# kura_call, printed beside a bare lua_pcall of the same function in the same
# run (scripts/bench/embed_call.c), kura_call_async's round trip beside
# them, and on a local Redis kura_call_async of a handler that waits beside
# the Lua client's own calls. Goals: kura_call <= 1.5x the bare call, <= 2x
# in a sandboxed runtime.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/setup.sh"

usage() {
  cat <<USAGE
usage: scripts/bench/embed_call.sh [--calls N] [--rounds N] [--instructions]

Builds kura (Release) and the embed_call program, then times N calls
(default 2000000) of an empty handler and of on_tick(tick, dt) -> number:
a bare lua_getglobal + lua_pcall in a plain lua_State, kura_call, and
kura_call in a sandboxed runtime with an instruction budget and a memory cap.
Each figure is the best of --rounds rounds (default 5), in CPU time.
--instructions counts instructions per call instead, with valgrind's
callgrind (the same on any machine, however busy): each variant runs N and
2N calls (N = --calls, default 100000 then) and the difference is divided.
Environment: KURA_BUILD_DIR (default: build-bench-embed/ in the source tree).
USAGE
}
calls=
rounds=5
instructions=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --calls) calls=${2:?--calls needs a number}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    --instructions) instructions=1; shift ;;
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
if [ $instructions = 0 ]; then
  "$build/embed_call" "${calls:-2000000}" "$rounds"
  # On Redis: kura_call_async of a handler that waits, beside the same gets
  # made by the script's own tasks.
  command -v redis-server >/dev/null || kura_install redis-server
  . "$KURA_ROOT/tests/redis/servers.sh"
  port=$(redis_free_port)
  dir=$(mktemp -d /tmp/kura-bench-embed.XXXXXX)
  pids=()
  trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
  start_redis "$dir" "$port"
  "$build/embed_call" --backend "redis://127.0.0.1:$port" 200000 3
  exit 0
fi

# Instructions per call of one variant and shape: callgrind's totals for
# N and 2N calls, differenced.
command -v valgrind >/dev/null || kura_install valgrind
calls=${calls:-100000}
ir_total() {
  local out="$build/callgrind.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$build/embed_call" "$1" 1 "$2" "$3" \
    >/dev/null 2>&1 || { kura_log "embed_call failed under valgrind"; exit 1; }
  callgrind_annotate "$out" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
echo "embed_call: instructions per call (callgrind, $calls and $((2 * calls)) calls)"
for shape in 0 1; do
  [ $shape = 0 ] && echo "on_empty() (no arguments, no results):" ||
    echo "on_tick(tick, dt) -> number (2 integer arguments, 1 result):"
  bare=
  for variant in 0 1 2; do
    a=$(ir_total "$calls" $variant $shape)
    b=$(ir_total $((2 * calls)) $variant $shape)
    per=$(( (b - a) / calls ))
    case $variant in
      0) bare=$per; printf '  %-34s %6d instructions/call\n' "bare lua_getglobal + lua_pcall" "$per" ;;
      1) printf '  %-34s %6d instructions/call   %s the bare lua_pcall\n' "kura_call" "$per" \
           "$(awk -v a="$per" -v b="$bare" 'BEGIN { printf "%.2fx", a / b }')" ;;
      2) printf '  %-34s %6d instructions/call   %s the bare lua_pcall\n' \
           "kura_call, sandbox + budget + cap" "$per" \
           "$(awk -v a="$per" -v b="$bare" 'BEGIN { printf "%.2fx", a / b }')" ;;
    esac
  done
done
