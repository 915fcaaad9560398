#!/usr/bin/env bash
# Warm-up of 1,000,000 JSON Lines items (kura.warmup): into the embedded store
# (items/s and peak RSS against the file's size; goals >= 500k items/s, RSS
# < 2x the data), then into a local redis-server, beside
# `redis-benchmark -t set -c 64 -P 1` against the same server in the same
# run (goal: at least as fast).
# usage: scripts/bench/warmup.sh [ITEMS]   (KURA_BUILD_DIR: the build folder;
#        the data file is generated once in /tmp and reused)
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
items=${1:-1000000}
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura

# --- the data: {"key":"user:0000001","value":"<48 chars>","ttl":3600} -------
data=/tmp/kura-warmup-$items.jsonl
if [ ! -s "$data" ]; then
  awk -v n="$items" 'BEGIN {
    srand(1); al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for (i = 0; i < 4096; i++) base = base substr(al, int(rand() * 64) + 1, 1)
    for (i = 0; i < n; i++)
      printf "{\"key\":\"user:%07d\",\"value\":\"%s\",\"ttl\":3600}\n", i,
             substr(base, (i * 7) % 4000 + 1, 48)
  }' > "$data.tmp"
  mv "$data.tmp" "$data"
fi
bytes=$(stat -c %s "$data")
echo "data: $data, $items items, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB"

# kura_warm [kura run options] CONCURRENCY [skip]: runs the warm-up (with
# "skip", a transform skips every item: only the reading is measured), prints
# "LOADED FAILED SECONDS RATE RSS_BEFORE_KB PEAK_RSS_KB CPU_RATE" (CPU_RATE:
# items per second of the process's CPU time, which other load on a shared
# machine disturbs less than the wall-clock RATE).
kura_warm() {
  local skip=""
  if [ "${*: -1}" = skip ]; then skip=skip; set -- "${@:1:$#-1}"; fi
  local conc=${*: -1}
  set -- "${@:1:$#-1}"
  KURA_LUA_PATH=$root/lua "$build/kura" run "$@" - "$data" "$conc" $skip <<'LUA'
local function status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local v = f:read("a"):match(field .. ":%s*(%d+)")
  f:close()
  return tonumber(v)
end
local before, cpu0 = status_kb("VmRSS"), os.clock()
local stats = assert(require("kura.warmup").run{
  cache = "bench-warmup", source = arg[1], concurrency = tonumber(arg[2]), progress = false,
  transform = arg[3] == "skip" and function() return nil end or nil })
print(stats.loaded, stats.failed, string.format("%.3f", stats.seconds),
      string.format("%.0f", stats.rate), before, status_kb("VmHWM"),
      string.format("%.0f", (stats.loaded + stats.skipped) / (os.clock() - cpu0)))
LUA
}

read -r loaded failed secs rate rss0 peak cpu < <(kura_warm 64)
echo "memory: $loaded loaded, $failed failed in $secs s: $rate items/s ($cpu per CPU second)"
awk -v p="$peak" -v r="$rss0" -v b="$bytes" 'BEGIN {
  printf "memory: peak RSS %.1f MB (%.2fx the data; %.1f MB before the warm-up)\n",
         p / 1024, p * 1024 / b, r / 1024 }'

read -r _ _ secs rate rss0 peak cpu < <(kura_warm 64 skip)
echo "reading only (every item skipped): $rate items/s ($cpu per CPU second)," \
     "peak RSS $((peak / 1024)) MB: the reader streams"

# --- Redis ------------------------------------------------------------------------
. "$root/tests/redis/servers.sh"
port=$(redis_free_port)
dir=$(mktemp -d /tmp/kura-bench-warmup.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
start_redis "$dir" "$port"
redis-cli -p "$port" flushall >/dev/null
read -r loaded failed secs rate _ _ _ < <(kura_warm --backend "redis://127.0.0.1:$port" 64)
echo "redis: $loaded loaded, $failed failed in $secs s: $rate items/s (64 writes in flight)"
redis-cli -p "$port" flushall >/dev/null
rb=$(redis-benchmark -p "$port" -t set -c 64 -P 1 -n "$items" -d 48 -r "$items" 2>/dev/null |
     tr '\r' '\n' | awk '/throughput summary/ { print $3 } /requests per second/ { print $(NF-3) }' |
     tail -1)
echo "redis-benchmark -t set -c 64 -P 1 -n $items -d 48: $rb requests per second"
awk -v a="$rate" -v b="$rb" 'BEGIN { printf "=> kura warm-up / redis-benchmark = %.2fx\n", (b > 0 ? a / b : 0) }'
