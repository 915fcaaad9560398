#!/usr/bin/env bash
# kura bench --threads 2 beside --threads 1, same run, alternated rounds: on
# the embedded store (goal: >= 1.6x the ops/s of one thread on 2 cores) and
# on a 3-master Redis Cluster started here on loopback (goal: no slower; the
# servers take the other core). Prints each round and the median ratio.
# usage: scripts/bench/threads.sh [SECONDS [ROUNDS]]   (defaults 3 and 3;
#        KURA_BUILD_DIR: the build folder)
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
secs=${1:-3}
rounds=${2:-3}
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura
dir=$(mktemp -d /tmp/kura-bench-threads.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

# ops/s of one run, from its JSON report
ops() {
  KURA_LUA_PATH=$root/lua "$build/kura" bench --no-progress -d "$secs" --json "$dir/r.json" "$@" \
    >/dev/null
  "$build/kura" -e 'local r = kura.json.decode(io.open(arg[1]):read("a"))
    print(string.format("%.0f", r.throughput))' "$dir/r.json"
}

compare() { # label, bench options...
  local label=$1 ratios=()
  shift
  echo "== $label"
  for r in $(seq "$rounds"); do
    one=$(ops --threads 1 "$@")
    two=$(ops --threads 2 "$@")
    ratio=$(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.2f", a / b }')
    ratios+=("$ratio")
    echo "round $r: --threads 1 $one ops/s, --threads 2 $two ops/s: ${ratio}x"
  done
  printf '%s\n' "${ratios[@]}" | sort -n | awk -v l="$label" '{ v[NR] = $1 }
    END { printf "median over %d rounds (%s): %.2fx\n", NR, l, v[int((NR + 1) / 2)] }'
}

compare "memory" --mix get:90,set:10 -c 50
if command -v redis-server >/dev/null; then
  . "$root/tests/redis/servers.sh"
  p1=$(redis_free_port); p2=$(redis_free_port); p3=$(redis_free_port)
  start_redis_cluster "$dir/cluster" "$p1" "$p2" "$p3"
  compare "redis-cluster, 3 masters, -c 50 --connections 2" \
    --backend "redis-cluster://127.0.0.1:$p1" --mix get:90,set:10 -c 50 --connections 2
fi
