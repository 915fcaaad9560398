#!/usr/bin/env bash
# The Redis backend beside redis-benchmark, same server, same run:
# throughput of GET/SET with 50 tasks vs `redis-benchmark -c 50 -P 1` and
# `-P 16`, and p50/p99 of single GETs at 1 task vs `redis-benchmark -c 1 -P 1`,
# with the ratios (goals: >= 3x the -P 1 throughput, p50 within 1.3x); then
# `kura bench -c 50 --mix get:100` (50 users, one pipelined connection) vs
# scripts/bench/redis_luv.lua, a lua5.4 + luv client that keeps 50 of the same
# gets in flight on one connection (goal: >= 1.0x), by wall time and per
# client CPU-second.
# The throughput pairs run ROUNDS times, interleaved, and the median ratio is
# reported: on a shared machine one pair alone says little. Beside each
# figure: the server's CPU time per request (from /proc), which does not
# depend on how busy the machine is.
# usage: scripts/bench/redis.sh [SECONDS [ROUNDS]]   (KURA_BUILD_DIR: the build folder)
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
secs=${1:-2}
rounds=${2:-3}
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura
. "$root/tests/redis/servers.sh"
port=$(redis_free_port)
dir=$(mktemp -d /tmp/kura-bench-redis.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
start_redis "$dir" "$port"
srv=${pids[0]}
hz=$(getconf CLK_TCK)

kura() { KURA_LUA_PATH=$root/lua "$build/kura" run --backend "redis://127.0.0.1:$port" \
           "$root/scripts/bench/redis_tasks.lua" "$@"; }
srv_ticks() { awk '{ print $14 + $15 }' "/proc/$srv/stat"; }
# Server CPU microseconds per request: us_per TICKS_BEFORE RPS SECONDS
us_per() { awk -v t0="$1" -v t1="$(srv_ticks)" -v r="$2" -v s="$3" -v hz="$hz" \
             'BEGIN { printf "%.2f", (r * s > 0 ? (t1 - t0) / hz * 1e6 / (r * s) : 0) }'; }
# redis-benchmark ARGS -> "RPS P50 P99 SECONDS" (latencies in msec, from its summary).
rb() {
  local t0 t1
  t0=$(date +%s.%N)
  redis-benchmark -p "$port" -d 3 "$@" 2>/dev/null | tr '\r' '\n' | awk -v t0="$t0" '
    /throughput summary/ { rps = $3 }
    /avg +min +p50/ { getline; p50 = $3; p99 = $5 }
    END { "date +%s.%N" | getline t1; print rps, p50, p99, t1 - t0 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# kura bench ARGS -> "RPS CPU_SECONDS" (from its report).
kb() { KURA_LUA_PATH=$root/lua "$build/kura" bench --backend "redis://127.0.0.1:$port" --no-progress "$@" |
         awk '/total requests:/ { gsub(/\(/, "", $4); r = $4 } /generator cpu:/ { c = $3 } END { print r, c }'; }
# redis_luv.lua SECONDS -> "RPS CPU_SECONDS"
luv() { lua5.4 "$root/scripts/bench/redis_luv.lua" "$port" "$1" |
          sed 's/^luv: \([0-9]*\) requests.*cpu \([0-9.]*\) s)/\1 \2/'; }
luv_ok=1
lua5.4 -e 'require("luv")' 2>/dev/null || {
  . "$root/scripts/lib/setup.sh"
  kura_install lua5.4 lua-luv && lua5.4 -e 'require("luv")' 2>/dev/null
} || { echo "# no lua5.4 + luv (apt-get install lua5.4 lua-luv): the luv reference is skipped" >&2; luv_ok=0; }

echo "# $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg); redis $(redis-server --version | cut -d' ' -f3)"
n=$((secs * 60000))
for op in get set; do
  r1s="" r16s=""
  for round in $(seq "$rounds"); do
    t0=$(srv_ticks)
    line=$(kura throughput "$op" 50 "$secs")
    k=$(echo "$line" | sed 's/.*: \([0-9.]*\) requests.*/\1/')
    echo "$line, server $(us_per "$t0" "$k" "$secs") us/request"
    t0=$(srv_ticks)
    read -r r1 p50 p99 s < <(rb -t "$op" -c 50 -P 1 -n "$n")
    echo "redis-benchmark -c 50 -P 1:  ${op^^}: $r1 requests per second, p50=$p50 p99=$p99 msec, server $(us_per "$t0" "$r1" "$s") us/request"
    t0=$(srv_ticks)
    read -r r16 p50 p99 s < <(rb -t "$op" -c 50 -P 16 -n $((n * 6)))
    echo "redis-benchmark -c 50 -P 16: ${op^^}: $r16 requests per second, p50=$p50 p99=$p99 msec, server $(us_per "$t0" "$r16" "$s") us/request"
    r1s="$r1s $(ratio "$k" "$r1")" r16s="$r16s $(ratio "$k" "$r16")"
  done
  echo "=> kura ${op^^} / (-c 50 -P 1): median $(echo "$r1s" | median)x of [$r1s ]; / (-c 50 -P 16): median $(echo "$r16s" | median)x of [$r16s ]"
done
if [ "$luv_ok" = 1 ]; then
  ws="" cs=""
  for round in $(seq "$rounds"); do
    read -r k kc < <(kb -c 50 --mix get:100 -d "$secs")
    read -r l lc < <(luv "$secs")
    echo "kura bench -c 50 --mix get:100: $k requests per second (client cpu ${kc}s); redis_luv.lua (50 in flight): $l requests per second (client cpu ${lc}s)"
    ws="$ws $(ratio "$k" "$l")"
    cs="$cs $(awk -v k="$k" -v kc="$kc" -v l="$l" -v lc="$lc" 'BEGIN { printf "%.2f", (kc > 0 && lc > 0 && l > 0 ? (k / kc) / (l / lc) : 0) }')"
  done
  echo "=> kura bench / luv client: median $(echo "$ws" | median)x of [$ws ] by wall time; per client CPU-second $(echo "$cs" | median)x of [$cs ] (goal >= 1.0x)"
fi
line=$(kura latency 20000)
echo "$line"
kp50=$(echo "$line" | sed 's/.*p50=\([0-9.]*\).*/\1/')
read -r r1 p50 p99 s < <(rb -t get -c 1 -P 1 -n 20000)
echo "redis-benchmark -c 1 -P 1:   GET: p50=$p50 msec p99=$p99 msec ($r1 requests per second)"
echo "=> kura p50 / redis-benchmark p50 = $(ratio "$kp50" "$p50")x"
