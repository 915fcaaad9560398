#!/usr/bin/env bash
# The momento (gRPC) backend beside Momento's official JS SDK, same emulator
# (tests/momento/emulator.js), same run: 50 kura tasks vs 50 SDK promises
# doing `get` of one 100-byte item for SECONDS each, ROUNDS times
# interleaved. For each: throughput and the client's CPU time per call
# (process CPU time / calls), and the ratios kura/SDK (goals: CPU per call
# <= 0.25x, throughput >= 1x). Two transports, each for both clients:
#   plaintext  h2c, as the SDKs' forMomentoLocal; Debian 12's libcurl (7.88)
#              cannot reuse such a connection, so kura opens one per call;
#   tls        HTTP/2 over TLS, as Momento's own endpoints are served (the
#              emulator with a throwaway certificate; kura trusts it through
#              KURA_CA_FILE, the SDK through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH).
# usage: scripts/bench/momento.sh [--plaintext|--tls] [SECONDS [ROUNDS]]
#        (default: both transports; KURA_BUILD_DIR: the build folder)
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
modes="plaintext tls"
case "${1:-}" in --plaintext) modes=plaintext; shift ;; --tls) modes=tls; shift ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
secs=${1:-3}
rounds=${2:-1}
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura
mdir=$root/tests/momento
[ -d "$mdir/node_modules" ] || (cd "$mdir" && npm ci --no-audit --no-fund --loglevel=error)
dir=$(mktemp -d /tmp/kura-bench-momento.XXXXXX)
secret=bench-$$-$RANDOM
emu=""
trap '[ -n "$emu" ] && kill $emu 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
key=$(cd "$mdir" && node -e "process.stdout.write(require('./sdk').v1Key(process.argv[1]))" "$secret")
hz=$(getconf CLK_TCK)
emu_ticks() { awk '{ print $14 + $15 }' "/proc/$emu/stat"; }
emu_cpu() { awk -v a="$1" -v b="$(emu_ticks)" -v hz="$hz" 'BEGIN{printf "%.2f", (b-a)/hz}'; }
field() { sed -n "s|.* = \([0-9.]*\) $1.*|\1|p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# start_emulator [--tls CERT KEY]: a fresh emulator; sets $emu and $port.
start_emulator() {
  [ -n "$emu" ] && { kill "$emu" 2>/dev/null; wait "$emu" 2>/dev/null || true; }
  node "$mdir/emulator.js" --port 0 --key "$secret" "$@" > "$dir/emulator.log" 2>&1 &
  emu=$!
  for _ in $(seq 200); do grep -q '^listening ' "$dir/emulator.log" && break; sleep 0.05; done
  port=$(awk '/^listening /{print $2; exit}' "$dir/emulator.log")
  [ -n "$port" ] || { cat "$dir/emulator.log"; exit 1; }
}

echo "# $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg); node $(node --version), $(curl --version | head -1 | cut -d' ' -f1-2)"
for mode in $modes; do
  if [ "$mode" = tls ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
    start_emulator --tls "$dir/tls.crt" "$dir/tls.key"
    url="https://localhost:$port" sdk_tls=--tls
  else
    start_emulator
    url="http://127.0.0.1:$port" sdk_tls=""
  fi
  echo "== $mode ($url)"
  for round in $(seq "$rounds"); do
    t0=$(emu_ticks)
    k=$(cd "$mdir" && KURA_CA_FILE="$dir/tls.crt" MOMENTO_API_KEY=$key KURA_LUA_PATH=$root/lua \
          "$build/kura" run --backend momento --momento-endpoint "$url" bench_get.lua 50 "$secs")
    echo "$k, emulator cpu $(emu_cpu "$t0") s"
    t0=$(emu_ticks)
    s=$(cd "$mdir" && GRPC_DEFAULT_SSL_ROOTS_FILE_PATH="$dir/tls.crt" \
          node sdk_bench.js --port "$port" --key "$secret" $sdk_tls 50 "$secs")
    echo "$s, emulator cpu $(emu_cpu "$t0") s"
    echo "$mode round $round: kura/sdk throughput $(ratio "$(echo "$k" | field calls/s)" "$(echo "$s" | field calls/s)")x," \
         "cpu per call $(ratio "$(echo "$k" | field us/call)" "$(echo "$s" | field us/call)")x"
  done
done
