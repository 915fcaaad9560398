#!/usr/bin/env bash
# Instructions per call in kura serve, counted by callgrind: the server runs
# under valgrind while Momento's JS SDK makes a fixed workload
# (tests/serve/sdk_waves.js: WAVES waves of 50 concurrent gets of one
# 100-byte item, plus 3 setup calls); the figure is the instructions of the
# server's read callback (on_read, inclusive: HTTP/2, protobuf, the call
# through the client and the store, the answer) divided by the calls.
# Deterministic to a fraction of a percent where CPU time on a shared
# machine is not: the figure for changes too small for scripts/bench/
# serve.sh to resolve. KURA_BASELINE=PATH/kura counts a second build too.
# usage: scripts/bench/serve_instructions.sh [WAVES]   (KURA_BUILD_DIR: the build folder)
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KURA_BUILD_DIR:-$root/build}
waves=${1:-40}
command -v valgrind > /dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
[ -x "$build/kura" ] || cmake --build "$build" -j2 --target kura
mdir=$root/tests/momento
[ -d "$mdir/node_modules" ] || (cd "$mdir" && npm ci --no-audit --no-fund --loglevel=error)
dir=$(mktemp -d /tmp/kura-bench-serve-instr.XXXXXX)
vpid=
trap '[ -z "$vpid" ] || kill "$vpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

# count TAG LABEL KURA -> one line with the instructions per call
count() {
  local tag=$1 label=$2
  shift
  valgrind --tool=callgrind --callgrind-out-file="$dir/$tag.out" "$2" serve --port 0 \
    > "$dir/$tag.log" 2>&1 &
  vpid=$!
  local port=
  for _ in $(seq 600); do
    port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$dir/$tag.log")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$dir/$tag.log"; exit 1; }
  local out calls ins
  out=$(cd "$root/tests/serve" && node sdk_waves.js --port "$port" "$waves" 50 2>/dev/null)
  kill -INT "$vpid"; wait "$vpid" || true; vpid=
  calls=$((waves * 50 + 3))
  ins=$(callgrind_annotate --inclusive=yes "$dir/$tag.out" 2>/dev/null |
          sed -n 's/^ *\([0-9,]*\) .*h2_server.c:on_read \[.*/\1/p' | head -1 | tr -d ,)
  [ -n "$ins" ] || { echo "no figure for on_read in $label's profile" >&2; exit 1; }
  echo "$label: $(awk -v i="$ins" -v n="$calls" 'BEGIN { printf "%.0f", i / n }') instructions per call ($ins in on_read for $calls calls; the SDK said: $out)"
}

count new "kura serve" "$build/kura"
[ -z "${KURA_BASELINE:-}" ] || count base "baseline $KURA_BASELINE" "$KURA_BASELINE"
