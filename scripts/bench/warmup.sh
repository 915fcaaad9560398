#!/usr/bin/env bash
# Warm-up of 1,000,000 JSON Lines items (kura.warmup): into the embedded store
# (items/s and peak RSS against the file's size; goals >= 500k items/s, RSS
# < 2x the data), then into a local redis-server, beside
# `redis-benchmark -t set -c 64 -P 1` against the same server in the same
# run (goal: at least as fast).
# With --ref REV, the warm-up into the store first runs ROUNDS times (default
# 5) alternating with a kura built from revision REV (once, in
# /tmp/kura-ref-REV), and prints both medians and their ratio (goal: >= 1).
# usage: scripts/bench/warmup.sh [ITEMS] [--ref REV [--rounds N]]
#        (KURA_BUILD_DIR: the build folder; the data file is generated once
#        in /tmp and reused)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/setup.sh"
. "$KURA_ROOT/scripts/lib/bench_ref.sh"
root=$KURA_ROOT
build=${KURA_BUILD_DIR:-$root/build}
items=1000000 ref_rev="" rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    --ref) ref_rev=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    *) items=$1 ;;
  esac
  shift
done
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura

# --- the data: {"key":"user:0000001","value":"<48 chars>","ttl":3600} -------
data=$(bench_jsonl_data "$items")
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
  KURA_LUA_PATH=${KURA_LIB:-$root/lua} "${KURA_BIN:-$build/kura}" run "$@" - "$data" "$conc" $skip <<'LUA'
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

# --ref: the warm-up into the store, this kura and the reference in turns.
if [ -n "$ref_rev" ]; then
  ref=$(bench_ref_kura "$ref_rev")
  for r in $(seq "$rounds"); do
    kura_warm 64 | awk '{ print "kura", $4, $7 }'
    KURA_BIN=$ref KURA_LIB=$(dirname "$ref")/../lua kura_warm 64 | awk '{ print "ref", $4, $7 }'
  done | awk -v rev="$ref_rev" -v n="$rounds" '
    function median(list,   k, a, i, j, t) {
      k = split(list, a, " ")
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    { wall[$1] = wall[$1] " " $2; cpu[$1] = cpu[$1] " " $3 }
    END {
      kw = median(wall["kura"]); rw = median(wall["ref"]); kc = median(cpu["kura"]); rc = median(cpu["ref"])
      printf("memory, median of %d alternated runs: kura %.0f items/s (%.0f per CPU second), " \
             "reference %s %.0f items/s (%.0f per CPU second)\n", n, kw, kc, rev, rw, rc)
      printf("=> kura / reference = %.2fx wall, %.2fx CPU\n", (rw > 0) ? kw / rw : 0, (rc > 0) ? kc / rc : 0)
    }'
fi

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
