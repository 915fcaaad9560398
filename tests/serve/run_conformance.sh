#!/usr/bin/env bash
# Runs conformance files (tests/conformance/test_*.lua) with kura's momento
# (gRPC) or momento-http backend against a fresh `kura serve` (on BACKEND,
# memory by default) that requires a token:
#   run_conformance.sh KURA_BINARY momento|momento-http FILE [BACKEND]
# The momento-http files run under tests/momento_http/conformance.lua, which
# skips what Momento's HTTP API has no call for and creates the caches
# through the server's gRPC control plane.
set -euo pipefail
kura=$1
mode=$2
file=$3
backend=${4:-memory}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/kura-serve-conf.XXXXXX)
. "$here/serve_lib.sh"
secret="conformance-$RANDOM$RANDOM"
start_serve conf --backend "$backend" --auth-token "$secret"
url="http://127.0.0.1:$port"
echo "== $(basename "$file") on $mode against kura serve ($url, backend $backend)"
status=0
cd "$(dirname "$file")"
if [ "$mode" = momento ]; then
  MOMENTO_API_KEY=$secret "$kura" run --backend momento --momento-endpoint "$url" \
    "$(basename "$file")" || status=1
else
  MOMENTO_API_KEY=$secret KURA_MOMENTO_ENDPOINT=$url KURA_SERVE_CONTROL=1 \
    "$kura" run --backend momento-http --momento-endpoint "$url" \
    "$root/tests/momento_http/conformance.lua" "$file" || status=1
fi
stop_serve TERM
exit $status
