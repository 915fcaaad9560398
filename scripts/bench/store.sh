#!/usr/bin/env bash
# scripts/bench/store.sh: build and run the embedded store's benchmarks
# (memory per item, throughput, hit ratio), each beside its reference measured
# in the same run, and print a summary with PASS/MISS against the targets.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/setup.sh"

usage() {
  cat <<USAGE
usage: scripts/bench/store.sh [--no-redis] [--no-memcached] [--quick] [--no-build]

Builds store_mem, store_speed and store_hitratio (Release, in build-bench/ or
\$KURA_BUILD_DIR) and runs them:
  store_mem       1M items (16 B keys, 32 B values, TTL) into a fresh store:
                  RSS and accounted bytes per item, beside Redis (a throwaway
                  redis-server on 127.0.0.1, free port from 6399) and memcached
                  (when installed; free port from 11299); then kura alone
                  at 0.6M to 1.4M items, and the mean (one count moves in
                  steps of several bytes per item).
  store_speed     90/10 get/set over 1M uniform keys vs a plain chained hash
                  table; 2-thread scaling; gets alone, single and batched,
                  vs a bare table of 64-byte inline slots (one cache line per
                  key: the memory system's limit), median of 3 alternated
                  rounds; then the latency of one dependent load (pointer
                  chase) and how many gets each side overlaps.
  store_hitratio  Zipf(1.0), 10M requests over 1M keys, store at 10% of its
                  accounted working set vs an exact LRU at equal items.
--quick runs smaller sizes (a smoke test; the figures are not the targets').
--no-build runs the binaries already in the build folder.
First the references (chained hash table, Zipf trace, LRU) check themselves.
Run time: under 3 minutes on 2 cores. Each program also runs alone (--help).
USAGE
}

WITH_REDIS=1
WITH_MEMCACHED=1
QUICK=0
BUILD_FIRST=1
for a in "$@"; do
  case "$a" in
    -h|--help) usage; exit 0 ;;
    --no-redis) WITH_REDIS=0 ;;
    --no-memcached) WITH_MEMCACHED=0 ;;
    --quick) QUICK=1 ;;
    --no-build) BUILD_FIRST=0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

BUILD=${KURA_BUILD_DIR:-$KURA_ROOT/build-bench}
OUT=$(mktemp -d /tmp/kura-bench.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$OUT"
}
trap cleanup EXIT

build() {
  mkdir -p "$BUILD"
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$KURA_ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/configure.log" 2>&1 ||
      { cat "$OUT/configure.log" >&2; kura_log "cmake configure failed"; exit 1; }
  fi
  cmake --build "$BUILD" -j2 --target store_mem store_speed store_hitratio \
    >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log" >&2; kura_log "build failed"; exit 1; }
}

# free_port FIRST: the first port from FIRST on that nothing listens on.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# wait_port PORT: up to 5 s for a listener.
wait_port() {
  local i
  for i in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

start_redis() {
  command -v redis-server >/dev/null || { kura_log "no redis-server: Redis skipped"; return 1; }
  REDIS_PORT=$(free_port 6399)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >"$OUT/redis.log" 2>&1 &
  PIDS+=($!)
  wait_port "$REDIS_PORT" || { kura_log "redis-server did not start"; return 1; }
}

start_memcached() {
  command -v memcached >/dev/null || { kura_log "no memcached: skipped (apt-get install memcached)"; return 1; }
  MEMCACHED_PORT=$(free_port 11299)
  local user=()
  [ "$(id -u)" -eq 0 ] && user=(-u "$(id -un memcache 2>/dev/null || echo nobody)")
  memcached "${user[@]}" -p "$MEMCACHED_PORT" -l 127.0.0.1 -U 0 -m 2048 >"$OUT/memcached.log" 2>&1 &
  PIDS+=($!)
  wait_port "$MEMCACHED_PORT" || { kura_log "memcached did not start"; return 1; }
}

# run NAME ARGS...: runs one benchmark (bounded), shows and keeps its output.
run() {
  local name=$1; shift
  printf '\n=== %s %s\n' "$name" "$*"
  timeout 150 "$BUILD/$name" "$@" | tee "$OUT/$name.out" || kura_log "$name failed (rc $?)"
}

[ "$BUILD_FIRST" -eq 1 ] && build
# The references must be right before their figures mean anything.
{ "$BUILD/store_speed" --check && "$BUILD/store_hitratio" --check; } ||
  { kura_log "a reference failed its self-check"; exit 1; }
MEM_ARGS=() SPEED_ARGS=() HIT_ARGS=()
if [ "$QUICK" -eq 1 ]; then
  MEM_ARGS=(--items 100000)
  SPEED_ARGS=(--keys 100000 --ops 1000000 --secs 0.5 --rounds 1 --get-rounds 1)
  HIT_ARGS=(--keys 100000 --requests 1000000)
fi
[ "$WITH_REDIS" -eq 1 ] && start_redis && MEM_ARGS+=(--redis "$REDIS_PORT")
[ "$WITH_MEMCACHED" -eq 1 ] && start_memcached && MEM_ARGS+=(--memcached "$MEMCACHED_PORT")
run store_mem "${MEM_ARGS[@]}"
# One count of items lands wherever the 64 shards' open segments (up to 64 KiB
# each) and the index's last growth happen to be: the figure moves in steps
# of several bytes per item from one count to the next. The mean over five
# counts around it judges a change of the item layout better.
if [ "$QUICK" -eq 0 ]; then
  printf '\n=== store_mem at 0.6M to 1.4M items (kura only)\n'
  for n in 600000 800000 1000000 1200000 1400000; do
    "$BUILD/store_mem" --items "$n" | sed -n 's/^RESULT kura_\(rss\|acct\)_per_item /\1 /p'
  done | awk '{ s[$1] += $2; n[$1]++; printf "  %s %s\n", $1, $2 }
    END { printf "RESULT kura_rss_mean %.1f\nRESULT kura_acct_mean %.1f\n", s["rss"] / n["rss"], s["acct"] / n["acct"] }' |
    tee "$OUT/store_mem_sizes.out"
fi
run store_speed "${SPEED_ARGS[@]+"${SPEED_ARGS[@]}"}"
run store_hitratio "${HIT_ARGS[@]+"${HIT_ARGS[@]}"}"

# --- summary -------------------------------------------------------------------
declare -A R
while read -r _ k v; do R[$k]=$v; done < <(cat "$OUT"/*.out | grep '^RESULT ')
val() { echo "${R[$1]:--}"; }
# verdict VALUE OP TARGET: PASS or MISS (awk compares the floats).
verdict() {
  { [ "$1" = "-" ] || [ "$3" = "-" ]; } && { echo "n/a"; return; }
  awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
    ok = (op == "<=") ? a + 0 <= b + 0 : a + 0 >= b + 0; print ok ? "PASS" : "MISS" }'
}
pct() { [ "$1" = "-" ] && echo "-" || awk -v a="$1" 'BEGIN { printf "%.2f%%", 100 * a }'; }

row() { printf '%-30s %-12s %-36s %-9s %s\n' "$@"; }
printf '\n=== summary (store: %s)\n' "$(cd "$KURA_ROOT" && git log -1 --format=%h 2>/dev/null || echo '?') + work tree"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (noise: see cpu % in store_speed)"
row "figure" "kura" "reference (same run)" "target" "verdict"
row "memory: RSS B/item" "$(val kura_rss_per_item)" \
  "redis $(val redis_rss_per_item) RSS, $(val redis_used_per_item) used" "<= 64" \
  "$(verdict "$(val kura_rss_per_item)" "<=" 64)"
row "memory: overhead B/item" "$(val kura_overhead_per_item)" "RSS growth minus 48 B of key+value" "<= 24" \
  "$(verdict "$(val kura_overhead_per_item)" "<=" 24) (stretch)"
row "memory: accounted B/item" "$(val kura_acct_per_item)" \
  "memcached $(val memcached_rss_per_item) RSS, $(val memcached_bytes_per_item) bytes" "<= 80" \
  "$(verdict "$(val kura_acct_per_item)" "<=" 80)"
row "" "" "mean at 0.6-1.4M items: RSS $(val kura_rss_mean), accounted $(val kura_acct_mean)" "" "(info)"
# On a busy machine the threads got only part of the wall time: judge the
# per-CPU-second figures then (store_speed prints both).
RATIO=speed_ratio SCALING=speed_scaling BY=""
if [ "$(val speed_busy)" = 1 ]; then RATIO=speed_ratio_cpu SCALING=speed_scaling_cpu BY=" (cpu)"; fi
row "90/10 get/set M ops/s" "$(val speed_kura_mops)" \
  "chained hash $(val speed_ref_mops); ratio $(val speed_ratio)x" ">= 1.5x" \
  "$(verdict "$(val $RATIO)" ">=" 1.5)$BY"
row "2 threads, M ops/s" "$(val speed_threads_mops)" \
  "1 thread $(val speed_kura_mops); scaling $(val speed_scaling)x" ">= 1.6x" \
  "$(verdict "$(val $SCALING)" ">=" 1.6)$BY"
row "" "" "per CPU-second: ratio $(val speed_ratio_cpu)x, scaling $(val speed_scaling_cpu)x" "" \
  "$([ -n "$BY" ] && echo "busy machine: verdicts above use these" || echo "(info)")"
GRATIO=get_ratio BRATIO=batch_ratio GBY=""
if [ "$(val get_busy)" = 1 ]; then GRATIO=get_ratio_cpu BRATIO=batch_ratio_cpu GBY=" (cpu)"; fi
row "single gets M/s" "$(val get_kura_mops)" \
  "inline table $(val get_inline_mops); ratio $(val get_ratio)x" ">= 0.6x" \
  "$(verdict "$(val $GRATIO)" ">=" 0.6)$GBY"
row "batched gets (16) M/s" "$(val get_batch_mops)" \
  "inline table $(val batch_inline_mops); ratio $(val batch_ratio)x" ">= 1.0x" \
  "$(verdict "$(val $BRATIO)" ">=" 1.0)$GBY"
row "" "" "per CPU-second: single $(val get_ratio_cpu)x, batched $(val batch_ratio_cpu)x" "" \
  "$([ -n "$GBY" ] && echo "busy machine: verdicts above use these" || echo "(info)")"
row "" "" "gets in flight: inline $(val inflight_inline), kura $(val inflight_kura) (DRAM $(val dram_ns) ns)" "" \
  "(info: see 'memory:')"
row "hit ratio Zipf 1.0, 10%" "$(pct "$(val hit_kura)")" \
  "LRU $(pct "$(val hit_lru_same)") at $(val kura_avg_items) items" ">= LRU" \
  "$(verdict "$(val hit_kura)" ">=" "$(val hit_lru_same)")"
row "" "" "(LRU at 10% of keys: $(pct "$(val hit_lru_pct)"))" "" ""
[ "$QUICK" -eq 1 ] && echo "(--quick: reduced sizes, verdicts are indicative only)"
exit 0
