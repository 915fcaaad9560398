#!/usr/bin/env bash
# Read-through on a hit: refresh.get_or_load beside a plain c:get over the
# same keys, same run, on the embedded store and on a local redis-server
# (started here on a free loopback port). Prints CPU time per call of the
# kura process for both, alternated rounds, medians and the ratio (goal:
# get_or_load <= 1.5x c:get). On Redis both wait for the server; the CPU
# time is the client's side.
# usage: scripts/bench/refresh.sh [OPS [ROUNDS [KEYS]]]
#        (defaults 500000 hits per round on memory, 1/20 of it on Redis,
#        5 rounds, 10000 keys; KURA_BUILD_DIR: the build folder)
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura
run() { KURA_LUA_PATH=$root/lua "$build/kura" run "$@"; }

echo "== memory"
run "$root/scripts/bench/refresh.lua" "$@"

if command -v redis-server >/dev/null; then
  . "$root/tests/redis/servers.sh"
  port=$(redis_free_port)
  dir=$(mktemp -d /tmp/kura-bench-refresh.XXXXXX)
  pids=()
  trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
  start_redis "$dir" "$port"
  echo "== redis (127.0.0.1:$port)"
  KURA_BENCH_NETWORK=1 run --backend "redis://127.0.0.1:$port" \
    "$root/scripts/bench/refresh.lua" "$@"
else
  echo "== redis: skipped (redis-server is not installed: apt-get install redis-server)"
fi
