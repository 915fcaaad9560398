#!/usr/bin/env bash
# kura serve (memory backend) measured two ways, each beside its reference in
# the same run:
#  1. The same load through Momento's official JS SDK (tests/serve/
#     sdk_load.js: 50 promises doing `get` of one 100-byte item, WARMUP s
#     unmeasured, then SECONDS measured) against kura serve and against the
#     test emulator (tests/momento/emulator.js, grpc-js), ROUNDS times
#     alternating. For each server: the calls/s the SDK made in the measured
#     window and the server's CPU time per call over that window only, read
#     by the load itself at the window's start and end: nanoseconds on a CPU
#     summed over every thread (/proc/PID/task/*/schedstat: node's collector
#     and compiler threads are the emulator's work too), with utime + stime
#     of /proc/PID/stat (clock ticks, the whole process) beside it, and the
#     calls per wakeup of the server's main thread (its voluntary context
#     switches: each is a sleep in epoll and a wakeup, which on this kind of
#     virtual machine costs tens of microseconds, so the fewer calls a turn
#     of the event loop serves, the more CPU each costs). Goal:
#     kura's CPU per call at most 0.05x the emulator's; the median round's
#     ratio is the figure.
#  2. `kura bench --backend momento` (50 tasks, get:80 set:20, 100-byte
#     values) against kura serve beside `redis-benchmark -c 50 -P 1` (GET and
#     SET) against redis-server: requests/s and the server's CPU per request.
#     kura serve does more per call than redis-server: HTTP/2 frames and HPACK
#     headers, protobuf, gRPC status trailers, a deadline per call; and
#     Debian 12's libcurl (7.88) opens a TCP connection per call to a
#     plaintext HTTP/2 server, which the server pays too (accept, SETTINGS,
#     close).
# KURA_BASELINE=PATH/kura adds a second kura serve (another build, e.g. the
# one before a change) to every round of part 1, with its own ratio: a
# before/after in the same run.
# The machine's load average is printed first: on a shared machine the CPU
# per call (not the throughput) is the figure to compare.
# usage: scripts/bench/serve.sh [SECONDS [ROUNDS [WARMUP]]]   (KURA_BUILD_DIR: the build folder)
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
secs=${1:-5}
rounds=${2:-5}
warmup=${3:-1}
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura
mdir=$root/tests/momento
[ -d "$mdir/node_modules" ] || (cd "$mdir" && npm ci --no-audit --no-fund --loglevel=error)
. "$root/tests/redis/servers.sh"
dir=$(mktemp -d /tmp/kura-bench-serve.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
hz=$(getconf CLK_TCK)

# start NAME PATTERN CMD...: runs CMD, waits for PATTERN in its output;
# sets $pid and $port (the number after "listening on HOST:" or "listening ").
start() {
  local name=$1 pat=$2; shift 2
  "$@" > "$dir/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 400); do grep -q "$pat" "$dir/$name.log" && break; sleep 0.05; done
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p; s/^listening \([0-9][0-9]*\)$/\1/p' \
           "$dir/$name.log" | head -1)
  [ -n "$port" ] || { cat "$dir/$name.log"; exit 1; }
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# ns PID: nanoseconds on a CPU, every thread of PID
ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'; }
# per_call NS0 NS1 CALLS -> microseconds
per_call() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (n > 0 ? (b - a) / 1e3 / n : 0) }'; }

echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); node $(node --version)"
start kura 'listening on' "$build/kura" serve --port 0
kpid=$pid kport=$port
start emulator '^listening ' node "$mdir/emulator.js" --port 0
epid=$pid eport=$port
if [ -n "${KURA_BASELINE:-}" ]; then
  start baseline 'listening on' "$KURA_BASELINE" serve --port 0
  bpid=$pid bport=$port
fi

# sdk_round PID PORT -> "CALLS RATE US_PER_CALL TICKS CALLS_PER_WAKEUP"
sdk_round() {
  local out f
  out=$(cd "$root/tests/serve" && node sdk_load.js --port "$2" --server-pid "$1" 50 "$secs" "$warmup")
  f=$(sed -n 's/^load: \([0-9]*\) calls in .* = \([0-9]*\) calls\/s, server \([0-9]*\) ns on CPU (\([0-9]*\) ticks), \([0-9]*\) wakeups.*/\1 \2 \3 \4 \5/p' <<< "$out")
  [ -n "$f" ] || { echo "sdk_load.js printed no figures: $out" >&2; exit 1; }
  read -r n rate cpu tk w <<< "$f"
  echo "$n $rate $(per_call 0 "$cpu" "$n") $tk $(awk -v n="$n" -v w="$w" 'BEGIN { printf "%.1f", (w > 0 ? n / w : 0) }')"
}

echo "== 1. Momento's JS SDK, 50 promises of get, ${secs} s measured after ${warmup} s: kura serve vs the emulator"
# median of the arguments
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
ratios=() bratios=()
for r in $(seq "$rounds"); do
  # with a baseline, it goes first every other round (then the emulator, then the other)
  if [ -n "${bpid:-}" ] && [ $((r % 2)) = 0 ]; then b=$(sdk_round "$bpid" "$bport") || exit 1; fi
  k=$(sdk_round "$kpid" "$kport") && e=$(sdk_round "$epid" "$eport") || exit 1
  if [ -n "${bpid:-}" ] && [ $((r % 2)) = 1 ]; then b=$(sdk_round "$bpid" "$bport") || exit 1; fi
  read -r kc kr ku kt kw <<< "$k"
  read -r ec er eu et ew <<< "$e"
  ratios+=("$(ratio "$ku" "$eu")")
  printf 'round %d: kura serve %s calls/s, %s us/call (%s ticks of %s Hz for %s calls, %s calls/wakeup);' \
    "$r" "$kr" "$ku" "$kt" "$hz" "$kc" "$kw"
  printf ' emulator %s calls/s, %s us/call (%s ticks for %s calls, %s calls/wakeup); ratio %sx\n' \
    "$er" "$eu" "$et" "$ec" "$ew" "${ratios[-1]}"
  if [ -n "${bpid:-}" ]; then
    read -r bc br bu bt bw <<< "$b"
    bratios+=("$(ratio "$bu" "$eu")")
    printf '  baseline %s: %s calls/s, %s us/call (%s ticks for %s calls, %s calls/wakeup); ratio %sx\n' \
      "$KURA_BASELINE" "$br" "$bu" "$bt" "$bc" "$bw" "${bratios[-1]}"
  fi
done
echo "server CPU per call, kura serve / emulator: median $(median "${ratios[@]}")x (goal <= 0.05x)"
[ -z "${bpid:-}" ] || echo "baseline / emulator: median $(median "${bratios[@]}")x"

echo "== 2. kura bench --backend momento vs redis-benchmark -P 1 (50 clients, ${secs} s)"
rport=$(redis_free_port)
start_redis "$dir/redis" "$rport"
rpid=${pids[-1]}
t0=$(ticks "$kpid") n0=$(ns "$kpid")
out=$(KURA_MOMENTO_ENDPOINT="http://127.0.0.1:$kport" KURA_LUA_PATH=$root/lua \
        "$build/kura" bench --backend momento -c 50 -d "$secs" --keys 1000 --no-prefill \
        --no-progress --json "$dir/bench.json" 2>&1)
n1=$(ns "$kpid") t1=$(ticks "$kpid")
kops=$(sed -n 's/.*total requests: \([0-9]*\) (\([0-9.]*\) tps).*/\1 \2/p' <<< "$out")
read -r kn ktps <<< "$kops"
echo "kura bench -> kura serve: $ktps requests/s, server $(per_call "$n0" "$n1" "$kn") us/request ($((t1 - t0)) ticks for $kn)"
for cmd in GET SET; do
  t0=$(ticks "$rpid") n0=$(ns "$rpid")
  line=$(redis-benchmark -p "$rport" -c 50 -P 1 -d 100 -r 1000 -n $((20000 * secs)) -t "$cmd" -q 2>/dev/null |
           tr '\r' '\n' | grep -E "^$cmd: [0-9]" | tail -1)
  n1=$(ns "$rpid") t1=$(ticks "$rpid")
  rps=$(sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' <<< "$line")
  echo "redis-benchmark $cmd -> redis-server: $rps requests/s, server $(per_call "$n0" "$n1" $((20000 * secs))) us/request ($((t1 - t0)) ticks)"
done
echo "kura serve does more per call than redis-server (HTTP/2, HPACK, protobuf, gRPC trailers,"
echo "and here a TCP connection per call from libcurl 7.88 over plaintext HTTP/2)."
