#!/usr/bin/env bash
# Runs conformance files (tests/conformance/test_*.lua) on the momento-http
# backend against a fresh emulator (emulator.py) on a free loopback port:
#   run_conformance.sh KURA_BINARY FILE...
# Each file runs under conformance.lua, which creates the suite's caches
# through the emulator (the HTTP API has no control plane) and skips the
# tests that need a call the HTTP API lacks, listing them.
set -euo pipefail
kura=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(mktemp -d /tmp/kura-mhttp.XXXXXX)
key="conformance-key-$RANDOM$RANDOM"
python3 "$here/emulator.py" --api-key "$key" --port 0 --port-file "$dir/port" --parent $$ \
  >"$dir/emulator.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 500); do
  [ -s "$dir/port" ] && break
  sleep 0.02
done
[ -s "$dir/port" ] || { cat "$dir/emulator.log" >&2; echo "the emulator did not start" >&2; exit 1; }
url="http://127.0.0.1:$(cut -d' ' -f1 "$dir/port")"
status=0
for f in "$@"; do
  echo "== $(basename "$f") on momento-http ($url)"
  MOMENTO_API_KEY=$key KURA_MOMENTO_ENDPOINT=$url \
    "$kura" run --backend momento-http --momento-endpoint "$url" "$here/conformance.lua" "$f" ||
    status=1
done
exit $status
