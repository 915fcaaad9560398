#!/usr/bin/env bash
# `kura bench` against a Redis of its own (with a password):
#  - --connections N opens N connections (redis-benchmark -c N's terms);
#  - killing Redis mid-run gives a non-zero exit (99: the default errors<1%
#    threshold fails) and the outage shows in the report: the errors by
#    code, the failed share of the load, the seconds with errors, the
#    throughput's fall in the series, in text, JSON and HTML;
#  - the password appears nowhere.
# Usage: test_bench_outage.sh KURA_BINARY. Prints one line per check and
# "N passed, N failed"; exits 1 on a failure.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KURA=${1:?usage: test_bench_outage.sh KURA_BINARY}
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
dir=$(mktemp -d /tmp/kura-outage.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

. "$here/servers.sh"
port=$(redis_free_port)
pass="outage-pw-$RANDOM$RANDOM"
start_redis "$dir/redis" "$port" --requirepass "$pass" || exit 1
redis_pid=${pids[-1]}
url="redis://:$pass@127.0.0.1:$port"
rcli() { redis-cli -p "$port" -a "$pass" --no-auth-warning "$@"; }

# Connections the server holds for kura (all but redis-cli's own), while
# `kura bench -c 8 --connections N` runs.
connections_during() {
  "$KURA" bench --backend "$url" -d 3 -c 8 --connections "$1" --no-progress >"$dir/c.out" 2>&1 &
  local bench=$! most=0 n
  for _ in $(seq 40); do
    sleep 0.1
    n=$(rcli CLIENT LIST | grep -vc 'cmd=client')
    [ "$n" -gt "$most" ] && most=$n
  done
  wait "$bench"
  echo "$most"
}
for n in 1 4; do
  got=$(connections_during "$n")
  if [ "$got" = "$n" ]; then ok "--connections $n: $got at the server"
  else fail "--connections $n" "$got at the server"; fi
done
# The cache line: the gets' hit ratio from the clients' own counts (all hits:
# the keys were set first); Redis gives no evictions to kura.
if grep -Eq '^ +cache: hit ratio 100\.00% \([0-9,]+ hits, 0 misses\)$' "$dir/c.out"; then
  ok "the hit ratio on Redis, without evictions"
else
  fail "the hit ratio on Redis, without evictions" "$(grep cache: "$dir/c.out")"
fi
grep -q "^ *backend: redis://:\*\*\*@127.0.0.1:$port, 4 connections (pipelined: 8 users share them)$" "$dir/c.out" \
  && ok "the header states the connections" || fail "the header states the connections" "$(head -3 "$dir/c.out")"

# The outage: Redis killed once the first second was measured.
"$KURA" bench --backend "$url" -d 4 -c 50 --progress --json "$dir/r.json" --html "$dir/r.html" \
  >"$dir/out" 2>"$dir/err" &
bench=$!
for _ in $(seq 300); do grep -q '\[ *1s\]' "$dir/err" && break; sleep 0.05; done
{ kill -9 "$redis_pid"; wait "$redis_pid"; } 2>/dev/null
wait "$bench"
status=$?
if [ "$status" = 99 ]; then ok "killed Redis: exit 99"; else fail "killed Redis: exit 99" "status $status"; fi
check() { if grep -Eq -- "$2" "$dir/out"; then ok "$1"; else fail "$1" "no /$2/ in the report"; fi; }
check "errors by code" '^ +(CONNECTION_ERROR|TIMEOUT_ERROR): [1-9][0-9]* '
check "the failed share" '^ +failed share: ([2-9][0-9]|1[0-9])\.[0-9]+% of the load'
check "the seconds with errors" '^ +[0-9.]+ s to +[0-9.]+ s: [1-9][0-9]* errors'
check "the default threshold fails" '^  FAIL errors<1% +[0-9.]+%  \(default\)$'
if "$KURA" -e '
    local j = assert(kura.json.decode(io.open(arg[1]):read("a")))
    assert(j.ok == false and j.error_percent > 10 and #j.error_periods >= 1, "flags")
    local first, low = j.series[1].throughput, math.huge
    for i = 2, #j.series do low = math.min(low, j.series[i].throughput) end
    assert(low < first / 10, "throughput " .. first .. " -> " .. low)' "$dir/r.json" 2>"$dir/jerr"; then
  ok "JSON: failed, error periods, throughput dip"
else
  fail "JSON: failed, error periods, throughput dip" "$(cat "$dir/jerr")"
fi
grep -q 'seconds with errors' "$dir/r.html" && grep -q '<li class="fail"><b>FAIL</b> errors&lt;1%' "$dir/r.html" \
  && ok "HTML: the outage shaded, the threshold failed" || fail "HTML: the outage" "not in the page"
if grep -q -- "$pass" "$dir/out" "$dir/err" "$dir/r.json" "$dir/r.html" "$dir/c.out"; then
  fail "no password in the output" "found"
else
  ok "no password in the output"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
