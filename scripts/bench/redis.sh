#!/usr/bin/env bash
# The Redis backend beside redis-benchmark, same server, same run:
# throughput of GET/SET with 50 tasks vs `redis-benchmark -c 50 -P 1` and
# `-P 16`, and p50/p99 of single GETs at 1 task vs `redis-benchmark -c 1 -P 1`.
# usage: scripts/bench/redis.sh [SECONDS]   (KURA_BUILD_DIR: the build folder)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
secs=${1:-3}
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura
port=$((20000 + RANDOM % 40000))
dir=$(mktemp -d /tmp/kura-bench-redis.XXXXXX)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" --daemonize no &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 250); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.02; done

kura() { KURA_LUA_PATH=$root/lua "$build/kura" run --backend "redis://127.0.0.1:$port" \
           "$root/scripts/bench/redis_tasks.lua" "$@"; }
rb() { redis-benchmark -p "$port" -d 3 -q "$@" | tr '\r' '\n' | grep 'requests per second'; }

n=$((secs * 60000))
for op in get set; do
  kura throughput "$op" 50 "$secs"
  rb -t "$op" -c 50 -P 1 -n "$n" | sed 's/^/redis-benchmark -c 50 -P 1:  /'
  rb -t "$op" -c 50 -P 16 -n $((n * 6)) | sed 's/^/redis-benchmark -c 50 -P 16: /'
done
kura latency 20000
rb -t get -c 1 -P 1 -n 20000 --precision 3 | sed 's/^/redis-benchmark -c 1 -P 1:   /'
