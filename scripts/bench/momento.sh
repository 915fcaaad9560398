#!/usr/bin/env bash
# The momento (gRPC) backend beside Momento's official JS SDK, same emulator
# (tests/momento/emulator.js), same run: 50 kura tasks vs 50 SDK promises
# doing `get` of one 100-byte item for SECONDS each, ROUNDS times
# interleaved. For each: throughput and the client's CPU time per call
# (process CPU time / calls), and the ratios kura/SDK (goals: CPU per call
# <= 0.25x, throughput >= 1x).
# usage: scripts/bench/momento.sh [SECONDS [ROUNDS]]   (KURA_BUILD_DIR: the build folder)
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
secs=${1:-3}
rounds=${2:-1}
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura
mdir=$root/tests/momento
[ -d "$mdir/node_modules" ] || (cd "$mdir" && npm ci --no-audit --no-fund --loglevel=error)
dir=$(mktemp -d /tmp/kura-bench-momento.XXXXXX)
secret=bench-$$-$RANDOM
node "$mdir/emulator.js" --port 0 --key "$secret" > "$dir/emulator.log" 2>&1 &
emu=$!
trap 'kill $emu 2>/dev/null; wait $emu 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do grep -q '^listening ' "$dir/emulator.log" && break; sleep 0.05; done
port=$(awk '/^listening /{print $2; exit}' "$dir/emulator.log")
[ -n "$port" ] || { cat "$dir/emulator.log"; exit 1; }
key=$(cd "$mdir" && node -e "process.stdout.write(require('./sdk').v1Key(process.argv[1]))" "$secret")
hz=$(getconf CLK_TCK)
emu_ticks() { awk '{ print $14 + $15 }' "/proc/$emu/stat"; }
field() { sed -n "s|.* = \([0-9.]*\) $1.*|\1|p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "# $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg); node $(node --version), $(curl --version | head -1 | cut -d' ' -f1-2)"
for round in $(seq "$rounds"); do
  t0=$(emu_ticks)
  k=$(cd "$mdir" && MOMENTO_API_KEY=$key KURA_LUA_PATH=$root/lua "$build/kura" run \
        --backend momento --momento-endpoint "http://127.0.0.1:$port" bench_get.lua 50 "$secs")
  echo "$k, emulator cpu $(awk -v a="$t0" -v b="$(emu_ticks)" -v hz="$hz" 'BEGIN{printf "%.2f", (b-a)/hz}') s"
  t0=$(emu_ticks)
  s=$(cd "$mdir" && node sdk_bench.js --port "$port" --key "$secret" 50 "$secs")
  echo "$s, emulator cpu $(awk -v a="$t0" -v b="$(emu_ticks)" -v hz="$hz" 'BEGIN{printf "%.2f", (b-a)/hz}') s"
  echo "round $round: kura/sdk throughput $(ratio "$(echo "$k" | field calls/s)" "$(echo "$s" | field calls/s)")x," \
       "cpu per call $(ratio "$(echo "$k" | field us/call)" "$(echo "$s" | field us/call)")x"
done
