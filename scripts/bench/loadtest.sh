#!/usr/bin/env bash
# kura bench, the load generator, measured two ways:
#  1. GET throughput at 50 concurrent against one local redis-server, beside
#     `redis-benchmark -c 50 -P 1 -t get` (and memtier_benchmark when it is
#     installed: Debian 12 does not package it) against the same server, in
#     the same run, same value size and keyspace, keys set beforehand.
#  2. Against the embedded store: kura bench's GET rate on one core with
#     every latency recorded (goal: >= 1 M ops/s), and the cost of one
#     operation taken apart: the bare get, key choice, the clock reads and
#     the histogram record.
# usage: scripts/bench/loadtest.sh [SECONDS]   (KURA_BUILD_DIR: the build folder)
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
secs=${1:-3}
keys=10000
vsize=100
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura
. "$root/tests/redis/servers.sh"
port=$(redis_free_port)
dir=$(mktemp -d /tmp/kura-bench-lt.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
start_redis "$dir" "$port"

kb() { KURA_LUA_PATH=$root/lua "$build/kura" bench --no-progress "$@"; }
# kura bench output -> "TPS P50 P99 CPU_TPS" (latencies as "124_µs"; CPU_TPS:
# ops per second of the generator's own CPU time, the figure that holds on a
# busy machine)
kb_summary() {
  awk '/total requests:/ { gsub(/\(/, "", $4); tps = $4 }
       /generator cpu:/ { gsub(/\(/, "", $5); cpu = $5 }
       /latencies/ { inget = ($2 == "get") }
       inget && $1 == "p50:" { p50 = $2 "_" $3 }  inget && $1 == "p99:" { p99 = $2 "_" $3 }
       END { print tps, p50, p99, cpu }'
}
# redis-benchmark ARGS -> "RPS P50 P99" (msec, from its summary)
rb() {
  redis-benchmark -p "$port" "$@" 2>/dev/null | tr '\r' '\n' | awk '
    /throughput summary/ { rps = $3 }
    /avg +min +p50/ { getline; p50 = $3; p99 = $5 }
    END { print rps, p50, p99 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "== GET, 50 concurrent, redis-server on 127.0.0.1:$port, $keys keys of $vsize bytes, ${secs} s"
read -r ktps kp50 kp99 _ < <(kb --backend "redis://127.0.0.1:$port" -c 50 -d "$secs" --mix get:100 \
  --keys "$keys" --value-size "$vsize" | kb_summary)
echo "kura bench -c 50 --mix get:100:        $ktps ops/s  p50=$kp50 p99=$kp99"
read -r ctps cp50 cp99 _ < <(kb --backend "redis://127.0.0.1:$port" -c 50 --connections 50 -d "$secs" \
  --mix get:100 --keys "$keys" --value-size "$vsize" | kb_summary)
echo "kura bench -c 50 --connections 50:     $ctps ops/s  p50=$cp50 p99=$cp99"
# redis-benchmark's own keys (key:__rand_int__ -> key:000000001234), set first
redis-benchmark -p "$port" -t set -r "$keys" -n $((keys * 5)) -d "$vsize" -c 50 -q >/dev/null 2>&1
read -r rrps rp50 rp99 < <(rb -t get -c 50 -P 1 -r "$keys" -d "$vsize" -n $((secs * 60000)))
echo "redis-benchmark -c 50 -P 1 -t get:     $rrps requests/s  p50=$rp50 p99=$rp99 ms"
echo "=> kura bench / redis-benchmark = $(ratio "$ktps" "$rrps")x  (kura's 50 VUs share one"
echo "   auto-pipelined connection; redis-benchmark -P 1 has 50 connections, 1 request each)"
echo "=> on equal terms (--connections 50): $(ratio "$ctps" "$rrps")x"
if command -v memtier_benchmark >/dev/null; then
  memtier_benchmark -s 127.0.0.1 -p "$port" -t 1 -c 50 --ratio 0:1 --key-maximum "$keys" \
    -d "$vsize" --test-time "$secs" --hide-histogram 2>/dev/null | grep -E '^(Gets|Totals)'
else
  echo "memtier_benchmark: not installed (Debian 12 has no memtier-benchmark package)"
fi

echo
echo "== GET against the embedded store, one core, every latency recorded, ${secs} s"
echo "(ops/s on the wall clock; per cpu-s: ops per second of the process's CPU time, start-up"
echo " and prefill included: the generator's speed when the machine is shared)"
for mix in get:100 get:80,set:20; do
  for c in 1 50; do
    read -r tps p50 p99 cpu < <(kb -c "$c" -d "$secs" --mix "$mix" --keys "$keys" \
      --value-size "$vsize" | kb_summary)
    printf 'kura bench -c %-2s --mix %-13s %8.0f ops/s  %8.0f ops per cpu-s  get p50=%s p99=%s\n' \
      "$c" "$mix" "$tps" "$cpu" "$p50" "$p99"
  done
done

echo
echo "== one operation taken apart (ns per op, best of 3 rounds of 2 M, one Lua loop)"
KURA_LUA_PATH=$root/lua "$build/kura" run - <<'LUA'
local c = kura.client()
c:create_cache("floor")
local h = c:cache("floor")
local keys, value = {}, string.rep("x", 100)
for i = 1, 10000 do keys[i] = "key:" .. i; h:set(keys[i], value) end
local get, now, random = h.get, kura.now, math.random
local hist = kura.histogram()
local time, record_since = hist.time, hist.record_since
local N = 2000000
local loops = {
  { "loop + random key",               function() for _ = 1, N do local k = keys[random(10000)] end end },
  { "get(key), no timing",             function() for _ = 1, N do get(h, keys[random(10000)]) end end },
  { "kura.now() x2 + get",             function() for _ = 1, N do local t0 = now(); get(h, keys[random(10000)]); local t1 = now() end end },
  { "now + get + h:record_since(t0)",  function() for _ = 1, N do local t0 = now(); get(h, keys[random(10000)]); record_since(hist, t0) end end },
  { "h:time(get, h, key) (kura bench)", function() for _ = 1, N do time(hist, get, h, keys[random(10000)]) end end },
}
for _, l in ipairs(loops) do
  local best = math.huge
  for _ = 1, 3 do
    local t0 = os.clock()
    l[2]()
    best = math.min(best, os.clock() - t0)
  end
  print(string.format("%-36s %6.0f ns  (%.2f M ops/s)", l[1], best / N * 1e9, N / best / 1e6))
end
LUA
