#!/usr/bin/env bash
# Runs conformance files (tests/conformance/test_*.lua) on the momento (gRPC)
# backend against a fresh emulator (emulator.js) on a free loopback port;
# with --tls over HTTP/2 with TLS, the emulator serving a throwaway
# certificate that kura trusts through KURA_CA_FILE:
#   run_conformance.sh [--tls] KURA_BINARY FILE...
set -euo pipefail
tls=0
[ "${1:-}" = --tls ] && { tls=1; shift; }
kura=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(mktemp -d /tmp/kura-momento-conf.XXXXXX)
secret="conformance-$RANDOM$RANDOM"
emu_tls=()
if [ "$tls" = 1 ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
  emu_tls=(--tls "$dir/tls.crt" "$dir/tls.key")
  export KURA_CA_FILE=$dir/tls.crt
fi
node "$here/emulator.js" --port 0 --key "$secret" "${emu_tls[@]}" > "$dir/emulator.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 600); do
  grep -q '^listening ' "$dir/emulator.log" && break
  sleep 0.05
done
port=$(awk '/^listening /{print $2; exit}' "$dir/emulator.log")
[ -n "$port" ] || { cat "$dir/emulator.log" >&2; echo "the emulator did not start" >&2; exit 1; }
key=$(cd "$here" && node -e "process.stdout.write(require('./sdk').v1Key(process.argv[1]))" "$secret")
url="http://127.0.0.1:$port"
[ "$tls" = 1 ] && url="https://localhost:$port"
status=0
for f in "$@"; do
  echo "== $(basename "$f") on momento ($url)"
  (cd "$(dirname "$f")" && MOMENTO_API_KEY=$key \
    "$kura" run --backend momento --momento-endpoint "$url" "$(basename "$f")") || status=1
done
exit $status
