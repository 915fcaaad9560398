#!/usr/bin/env bash
# kura serve checked with Momento's official JS SDK, on one backend:
#   1. forMomentoLocal (no key): tests/momento/sdk_serve.js (the cheat sheet's
#      calls, TTL expiry, conditional sets, batches, binary keys, 1 and 4 MiB
#      values, 300 concurrent increments, many streams and connections,
#      missing caches, flush, delete, list) and tests/momento/sdk_check.js;
#   2. kura's own momento backend runs scripts/cheatsheet.lua against it;
#   3. with --auth-token: the right key passes, a wrong one gets
#      AUTHENTICATION_ERROR, and the token is in no output;
#   4. SIGTERM: drained, exit 0 (no sanitizer report).
# usage: test_serve_sdk.sh KURA_BINARY BACKEND_URL
set -euo pipefail
kura=$1
backend=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/kura-serve-sdk.XXXXXX)
. "$here/serve_lib.sh"
cd "$root/tests/momento"
export KURA_LUA_PATH=$root/lua

step "1. the SDK on $backend, as forMomentoLocal"
start_serve open --backend "$backend"
grep -q "backend $backend" "$serve_log" || { cat "$serve_log"; fail "the start line names no backend"; }
node sdk_serve.js --port "$port"
node sdk_check.js --port "$port"

step "2. kura's momento backend: scripts/cheatsheet.lua"
"$kura" run --backend momento --momento-endpoint "http://127.0.0.1:$port" \
  "$root/scripts/cheatsheet.lua" > "$work/cheat.log" 2>&1 || { cat "$work/cheat.log"; fail "cheat sheet"; }
tail -1 "$work/cheat.log"
stop_serve TERM

step "3. --auth-token: the right key, a wrong key"
SECRET=serve-secret-$$-$RANDOM
start_serve keyed --backend "$backend" --auth-token "$SECRET"
node sdk_check.js --port "$port" --key "$SECRET"
node sdk_check.js --port "$port" --key "wrong-$SECRET" auth
KEY=$(node -e "process.stdout.write(require('./sdk').v1Key(process.argv[1]))" "$SECRET")
MOMENTO_API_KEY=$KEY "$kura" run --backend momento --momento-endpoint "http://127.0.0.1:$port" \
  "$root/scripts/cheatsheet.lua" > "$work/cheat2.log" 2>&1 || { cat "$work/cheat2.log"; fail "cheat sheet with the key"; }
stop_serve INT
if grep -qF "$SECRET" "$serve_log"; then fail "the token appears in the server's output"; fi
echo "serve sdk on $backend: all ok"
