#!/usr/bin/env bash
# kura serve under faults, with Momento's JS SDK as the load:
#   1. a client killed (SIGKILL) while its 1 MiB uploads are in flight, and
#      connections reset while the server writes 4 MiB answers on them: the
#      server drops those calls and goes on serving (a write to a peer that
#      is gone must not end the process with SIGPIPE);
#   2. SIGTERM in the middle of a load on 4 connections: the server drains,
#      exits 0 with no sanitizer report, and every call of the load ends
#      (answered, or failed once the server is gone), none hangs;
#   3. SIGTERM while 20 gets wait on a slow kura.serve.on_miss: the drain
#      answers each of them with its value.
# usage: test_serve_faults.sh KURA_BINARY [BACKEND_URL]
set -euo pipefail
kura=$1
backend=${2:-memory}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/kura-serve-faults.XXXXXX)
. "$here/serve_lib.sh"
cd "$root/tests/momento"

# wait_started FILE: until the load in FILE says it runs (node is slow to start).
wait_started() {
  for _ in $(seq 600); do
    grep -q '^started' "$1" && return 0
    sleep 0.05
  done
  cat "$1"
  fail "the load did not start"
}

step "1. a client killed in the middle of 1 MiB uploads ($backend)"
start_serve faults --backend "$backend"
node sdk_load.js --port "$port" --seconds 30 --size 1048576 --concurrency 16 \
  > "$work/victim.out" 2>&1 &
victim=$!
pids+=("$victim")
wait_started "$work/victim.out"
sleep 1
kill -9 "$victim"
wait "$victim" 2>/dev/null || true
node sdk_check.js --port "$port" | grep -v INFO
kill -0 "$serve_pid" || { cat "$serve_log"; fail "the server died"; }

step "1b. connections reset while the server writes 4 MiB answers to them"
(cd "$root" && MOMENTO_API_KEY=x "$kura" run --backend momento --momento-endpoint \
  "http://127.0.0.1:$port" -e 'assert(kura.client():create_cache("resets") ~= nil)')
python3 "$here/reset_peer.py" "$port" 20
kill -0 "$serve_pid" || { cat "$serve_log"; fail "the server died (SIGPIPE?)"; }
node sdk_check.js --port "$port" | grep -v INFO

step "2. SIGTERM under load"
node sdk_load.js --port "$port" --clients 4 --concurrency 32 --seconds 5 > "$work/load.out" 2>&1 &
load=$!
pids+=("$load")
wait_started "$work/load.out"
sleep 1.5
t0=$(date +%s)
stop_serve TERM
grep -q 'draining' "$serve_log" || { cat "$serve_log"; fail "no drain line"; }
if grep -q 'timed out' "$serve_log"; then cat "$serve_log"; fail "the drain timed out"; fi
echo "drained and exited in $(( $(date +%s) - t0 )) s: $(grep draining "$serve_log" | sed 's/.*draining //')"
st=0
wait "$load" || st=$?
[ "$st" = 0 ] || { cat "$work/load.out"; fail "the load failed ($st)"; }
result=$(grep '^{' "$work/load.out")
echo "load: $result"
node -e '
  const r = JSON.parse(process.argv[1]);
  if (r.pending !== 0) throw new Error("calls still pending: " + r.pending);
  if (r.ok < 100) throw new Error("too few calls answered before the drain: " + r.ok);
' "$result"
step "3. SIGTERM while 20 calls wait on on_miss: each is answered"
export KURA_TEST_MISS_LOG=$work/misses
start_serve drain --backend "$backend" "$here/on_miss.lua"
node sdk_drain.js --port "$port" 20 > "$work/drain.out" 2>&1 &
drainer=$!
pids+=("$drainer")
arrived() { cat "$work/misses" 2>/dev/null | wc -l; }
for _ in $(seq 600); do
  [ "$(arrived)" -ge 20 ] && break
  sleep 0.05
done
[ "$(arrived)" -ge 20 ] || { cat "$work/drain.out"; fail "the gets did not arrive"; }
stop_serve TERM
grep -q 'draining 20 call(s)' "$serve_log" || { cat "$serve_log"; fail "not 20 calls in flight"; }
st=0
wait "$drainer" || st=$?
grep -v '^\[' "$work/drain.out" | tail -1
[ "$st" = 0 ] || { cat "$work/drain.out"; fail "calls in flight were not answered"; }
echo "serve faults on $backend: all ok"
