#!/usr/bin/env bash
# The momento (gRPC) backend against tests/momento/emulator.js, checked with
# Momento's official JS SDK in the same run:
#   1. the SDK drives the emulator (every call kura uses; forMomentoLocal
#      without a key, then with a key, then a wrong key);
#   2. data written by kura is read back through the SDK, and data written
#      by the SDK is read by kura;
#   3. faults: a wrong key (AUTHENTICATION_ERROR, the key in no output), a
#      server that never answers (TIMEOUT_ERROR on time), a hostile server
#      (hostile.js), the emulator killed and restarted under load;
#   4. scripts/cheatsheet.lua runs unchanged on the emulator;
#   5. over TLS (a test certificate, KURA_CA_FILE): 3,000 concurrent
#      increments count exactly, a 1 MiB value round-trips.
# usage: test_momento.sh KURA_BINARY     (needs node, `npm ci` in tests/momento, openssl)
set -euo pipefail

kura=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/kura-momento.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$here"

SECRET=kura-test-secret-$$-$RANDOM
KEY=$(node -e "process.stdout.write(require('./sdk').v1Key(process.argv[1]))" "$SECRET")

# start NAME CMD...: runs a server that prints "listening PORT"; sets $port
# and records the pid in $last_pid.
start() {
  local name=$1; shift
  "$@" > "$work/$name.out" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
  for _ in $(seq 300); do # up to 30 s: node starts slowly on a busy machine
    grep -q '^listening ' "$work/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  port=$(awk '/^listening /{print $2; exit}' "$work/$name.out")
  [ -n "$port" ] || { echo "FAIL: $name did not start"; cat "$work/$name.out"; exit 1; }
}

step() { echo "--- $*"; }

run_kura() { # PORT SCRIPT ARGS...
  local p=$1; shift
  MOMENTO_API_KEY=$KEY KURA_LUA_PATH=$root/lua \
    "$kura" run --backend momento --momento-endpoint "http://127.0.0.1:$p" "$@"
}

step "1. the official SDK against the emulator"
start open node emulator.js --port 0
node sdk_check.js --port "$port"
start keyed node emulator.js --port 0 --key "$SECRET"
kport=$port kpid=$last_pid
node sdk_check.js --port "$kport" --key "$SECRET"
node sdk_check.js --port "$kport" --key wrong-key auth

step "2. kura -> SDK and SDK -> kura"
run_kura "$kport" cross.lua write crossed
node sdk_cross.js --port "$kport" --key "$SECRET" read-kura crossed
node sdk_cross.js --port "$kport" --key "$SECRET" write crossed
run_kura "$kport" cross.lua read-sdk crossed

step "3a. a wrong key: AUTHENTICATION_ERROR, and the key is in no output"
WRONG=wrong-secret-$$-$RANDOM
WRONG_KEY=$(node -e "process.stdout.write(require('./sdk').v1Key(process.argv[1]))" "$WRONG")
MOMENTO_API_KEY=$WRONG_KEY KURA_LUA_PATH=$root/lua "$kura" run --backend momento \
  --momento-endpoint "http://127.0.0.1:$kport" faults.lua auth > "$work/auth.log" 2>&1 \
  || { cat "$work/auth.log"; exit 1; }
cat "$work/auth.log"
if grep -qF -e "$WRONG" -e "$WRONG_KEY" "$work/auth.log"; then
  echo "FAIL: the key appears in the output"; exit 1
fi

step "3b. a server that never answers: TIMEOUT_ERROR on time"
start hang node hang.js
run_kura "$port" faults.lua hang

step "3c. a hostile server: bad answers are errors, long messages keep the status"
start hostile node hostile.js
run_kura "$port" faults.lua hostile

step "3d. the emulator killed and restarted under load"
run_kura "$kport" faults.lua load 6 > "$work/load.log" 2>&1 &
load_pid=$!
sleep 2
kill -9 "$kpid"
sleep 2
start keyed2 node emulator.js --port "$kport" --key "$SECRET"
if ! wait "$load_pid"; then cat "$work/load.log"; exit 1; fi
cat "$work/load.log"

step "4. scripts/cheatsheet.lua on the emulator"
run_kura "$kport" "$root/scripts/cheatsheet.lua"

step "5. over TLS: concurrent increments past 1,000 calls stay exact"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
start tls node emulator.js --port 0 --key "$SECRET" --tls "$work/tls.crt" "$work/tls.key"
KURA_CA_FILE=$work/tls.crt MOMENTO_API_KEY=$KEY KURA_LUA_PATH=$root/lua \
  "$kura" run --backend momento --momento-endpoint "https://localhost:$port" tls.lua

echo "momento: all ok"
