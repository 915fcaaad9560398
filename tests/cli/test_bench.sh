#!/usr/bin/env bash
# `kura bench`: a short run exits 0 and prints what ran and the report in
# Momento loadgen's layout, latencies with units; --json and --html write
# their files; every bad option exits 2 at once (no hang, the option named,
# no internal file); thresholds exit 99 when one fails; --help and
# `kura help bench`. Usage: test_bench.sh PATH/TO/kura. Prints one line per
# check and "N passed, N failed"; exits 1 on a failure.
set -u
KURA=${1:?usage: test_bench.sh PATH/TO/kura}
dir=$(mktemp -d /tmp/kura-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; sed 's/^/    /' "$dir/err" | head -20; }

# run NAME WANT_STATUS -- ARGS...: runs kura with ARGS into $dir/out,
# $dir/err; 60 s at most, so a hang fails instead of blocking the suite.
run() {
  local name=$1 want=$2
  shift 3
  timeout 60 "$KURA" "$@" >"$dir/out" 2>"$dir/err" </dev/null
  local got=$?
  if [ "$got" != "$want" ]; then fail "$name" "status $got, wanted $want"; return 1; fi
  return 0
}

# has NAME FILE REGEX...: every regex matches a line of FILE
has() {
  local name=$1 file=$2
  shift 2
  for re in "$@"; do
    if ! grep -Eq -- "$re" "$file"; then fail "$name" "no line matches /$re/ in $(basename "$file")"; return 1; fi
  done
  ok "$name"
}

UNIT='[0-9]+(\.[0-9]+)? (ns|µs|ms|s)$'
if run "bench -d 1" 0 -- bench -d 1 -c 8 --mix get:80,set:20 --keys 1000 --no-progress \
     --json "$dir/r.json" --html "$dir/r.html"; then
  has "bench -d 1: the run's context" "$dir/out" \
    '^kura [0-9.]+ load test, [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' \
    '^ +backend: memory, in this process \(no connection\)$' \
    '^ +load: closed loop, 8 virtual users, 1 s$' '^ +mix: get 80%, set 20%$' \
    '^ +keys: 1,000, uniform; values of 100 bytes$' '^ +thresholds: errors<1%$'
  has "bench -d 1: report layout" "$dir/out" \
    '^cumulative stats:$' '^ +total requests: [0-9]+ \([0-9]+ tps\) in [0-9.]+ s$' \
    '^ +success: [0-9]+ \(100\.00%\)$' '^cumulative get latencies:$' \
    '^cumulative set latencies:$' '^ +count: [0-9]+$' "^ +p50: $UNIT" \
    "^ +p99\.9: $UNIT" "^ +max: $UNIT" '^  ok   errors<1% +0\.00%  \(default\)$'
  if "$KURA" -e 'local j = assert(kura.json.decode(io.open(arg[1]):read("a")))
      assert(j.ops > 0 and j.latency.get.p99 and j.latency.set.count > 0 and #j.series >= 1)
      assert(j.units.latency == "s" and j.backend == "memory" and j.version == kura.version)
      assert(j.date and j.config.concurrency == 8 and j.config.keyspace == 1000 and j.ok == true)' \
      "$dir/r.json" 2>"$dir/err"; then ok "bench --json decodes"; else fail "bench --json decodes" "bad JSON"; fi
  has "bench --html" "$dir/r.html" '^<!DOCTYPE html>' '<svg ' 'Latency by percentile'
  # nothing on stderr: no progress asked, no error
  if [ -s "$dir/err" ]; then fail "bench -d 1: quiet stderr" "stderr is not empty"; else ok "bench -d 1: quiet stderr"; fi
fi

if run "bench zipf, rate, ops" 0 -- bench -n 2000 --rate 4000 -c 2 --dist zipf --value-size 10 \
     --mix get --no-progress; then
  has "bench -n 2000: exact count" "$dir/out" '^ +total requests: 2000 ' '^cumulative get latencies' \
    '^ +load: open loop at 4,000 ops/s over 2 virtual users, 2,000 operations$' \
    '^ +keys: 10,000, zipf \(alpha 0\.99\); values of 10 bytes$'
fi

# Thresholds: one that fails exits 99 (as k6) with the report; all holding: 0.
if run "bench --threshold fails: 99" 99 -- bench -n 3000 -c 2 --no-progress \
     --threshold 'p99<1ns' --threshold 'get.p99<10s'; then
  has "bench --threshold: the results" "$dir/out" '^thresholds:$' '^  FAIL p99<1ns +[0-9.]+ (ns|µs|ms)$' \
    '^  ok   get\.p99<10s ' '^  ok   errors<1% '
fi
run "bench --threshold holds: 0" 0 -- bench -n 3000 -c 2 --no-progress --threshold 'p99<10s' \
  --threshold 'throughput>1' --threshold='errors<1' && ok "bench --threshold holds: 0"

if run "bench --help" 0 -- bench --help; then
  has "bench --help text" "$dir/out" '^usage: kura bench' '--rate R' '--mix LIST' '--backend URL' \
    '--connections N' '--threshold EXPR' '^Exit status: ' 'virtual users, 1\.\.100000'
fi
if run "kura help bench" 0 -- help bench; then
  has "kura help bench text" "$dir/out" '^usage: kura bench'
fi

# usage_error NAME REGEX -- ARGS: status 2 at once, one line naming what is
# wrong, no internal file or line, no report.
usage_error() {
  local name=$1 re=$2
  shift 3
  run "$name" 2 -- "$@" || return
  if grep -Eq '\.lua:[0-9]+|stack traceback|kura\.(loadtest|bench_cli)' "$dir/err"; then
    fail "$name" "an internal file or traceback in the message"
  elif [ "$(wc -l <"$dir/err")" != 1 ]; then
    fail "$name" "not one line on stderr"
  elif [ -s "$dir/out" ]; then
    fail "$name" "something on stdout"
  else
    has "$name" "$dir/err" "^kura bench: $re"
  fi
}
usage_error "bad option" "unknown option '--frobnicate'" -- bench --frobnicate
usage_error "bad mix" "--mix: unknown operation 'fly'" -- bench --mix fly:10
usage_error "empty mix" "--mix" -- bench --mix ,
usage_error "bad number" "-c wants an integer, not 'many'" -- bench -c many
usage_error "--threads 2.5" "--threads wants an integer or \"auto\", not '2.5'" -- bench --threads 2.5
usage_error "--threads 0" "--threads: an integer from 1 to 256, or \"auto\"" -- bench --threads 0
usage_error "-c 0" "-c: an integer from 1 to 100000, not 0" -- bench -c 0
usage_error "-c over the bound" "-c: an integer from 1 to 100000, not 100001" -- bench -c 100001
usage_error "--dist zipfy" "--dist: uniform, zipf, gaussian or sequential, not 'zipfy'" -- bench --dist zipfy -d 1
usage_error "-d 0" "-d: a number > 0, not 0" -- bench -d 0
usage_error "--rate 0" "--rate: a number > 0" -- bench --rate 0
usage_error "--keys 0" "--keys: an integer from 1 to 10000000" -- bench --keys 0
usage_error "--value-size huge" "--value-size: an integer from 0 to 4194304" -- bench --value-size 9999999
usage_error "--spin 5" "--spin: a number from 0 to 1" -- bench --spin 5
usage_error "--ttl 0" "--ttl: a number > 0" -- bench --ttl 0
usage_error "--zipf-alpha 0" "--zipf-alpha: a number > 0" -- bench --zipf-alpha 0
usage_error "--cache ''" "--cache wants a value" -- bench --cache ''
usage_error "flag with a value" "--no-prefill takes no value" -- bench --no-prefill=1
usage_error "option without value" "option --rate needs a value" -- bench --rate
usage_error "--threshold without unit" "threshold 'p99<2': give the latency a unit" -- bench --threshold 'p99<2'
usage_error "--threshold unknown metric" "threshold 'fast>1': unknown metric 'fast'" -- bench --threshold 'fast>1'
usage_error "--connections 0" "--connections: an integer from 1 to 1024" -- bench --connections 0
usage_error "--connections over -c" "--connections: at most one per virtual user \(concurrency 4\)" \
  -- bench -c 4 --connections 5
usage_error "--connections on memory" "--connections: the memory backend has none" \
  -- bench --connections 2 -d 1
usage_error "bad backend" "unknown backend 'nope://x'" -- bench --backend nope://x -d 1
# A report that cannot be written is known before the run: its path once.
usage_error "--html in a missing folder" "--html: $dir/no/x\.html: No such file or directory" \
  -- bench --html "$dir/no/x.html" -d 5
usage_error "--json in a missing folder" "--json: $dir/no/x\.json: No such file or directory" \
  -- bench --json "$dir/no/x.json" -d 5
if [ "$(grep -o "$dir/no/x.json" "$dir/err" | wc -l)" = 1 ]; then ok "the path once"; else fail "the path once" "count"; fi
[ ! -e "$dir/no" ] && ok "nothing created by the check" || fail "nothing created by the check" "$dir/no exists"

# A Momento backend without a key says which variable to set (it used to
# ask for MOMENTO_ENDPOINT, the endpoint of the key it did not have).
for b in momento momento-http; do
  if env -u MOMENTO_API_KEY -u MOMENTO_AUTH_TOKEN -u KURA_MOMENTO_ENDPOINT timeout 60 "$KURA" bench \
       --backend "$b" -d 1 >"$dir/out" 2>"$dir/err" </dev/null; then
    fail "bench --backend $b without a key" "status 0"
  else
    has "bench --backend $b without a key" "$dir/err" "^kura bench: cannot start: AUTHENTICATION_ERROR: $b: MOMENTO_API_KEY is not set"
  fi
done
env -u MOMENTO_API_KEY -u MOMENTO_AUTH_TOKEN -u KURA_MOMENTO_ENDPOINT "$KURA" run --backend momento \
  -e 'print(select(2, kura.client()))' >"$dir/out" 2>"$dir/err"
has "kura.client() on momento without a key" "$dir/out" 'MOMENTO_API_KEY is not set'
MOMENTO_API_KEY=opaque-key env -u MOMENTO_ENDPOINT -u KURA_MOMENTO_ENDPOINT "$KURA" run --backend momento \
  -e 'print(select(2, kura.client()))' >"$dir/out" 2>"$dir/err"
has "a key without an endpoint names KURA_MOMENTO_ENDPOINT" "$dir/out" \
  'the key names no endpoint: set KURA_MOMENTO_ENDPOINT'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
