#!/usr/bin/env bash
# `kura bench`: a short run exits 0 and prints the report in Momento loadgen's
# layout; --json and --html write their files; --help; usage errors exit 2.
# Usage: test_bench.sh PATH/TO/kura. Prints one line per check and
# "N passed, N failed"; exits 1 on a failure.
set -u
KURA=${1:?usage: test_bench.sh PATH/TO/kura}
dir=$(mktemp -d /tmp/kura-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; sed 's/^/    /' "$dir/err" | head -20; }

# run NAME WANT_STATUS -- ARGS...: runs kura with ARGS into $dir/out, $dir/err
run() {
  local name=$1 want=$2
  shift 3
  "$KURA" "$@" >"$dir/out" 2>"$dir/err" </dev/null
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

if run "bench -d 1" 0 -- bench -d 1 -c 8 --mix get:80,set:20 --keys 1000 --no-progress \
     --json "$dir/r.json" --html "$dir/r.html"; then
  has "bench -d 1: report layout" "$dir/out" \
    '^cumulative stats:$' '^ +total requests: [0-9]+ \([0-9]+ tps\) in [0-9.]+ s$' \
    '^ +success: [0-9]+ \(100\.00%\)$' '^cumulative get latencies \(ms\):$' \
    '^cumulative set latencies \(ms\):$' '^ +count: [0-9]+$' '^ +p50: [0-9]+\.[0-9]{3,5}$' \
    '^ +p99\.9: [0-9]+\.[0-9]{3,5}$' '^ +max: [0-9]+\.[0-9]{3,5}$'
  if "$KURA" -e 'local j = assert(kura.json.decode(io.open(arg[1]):read("a")))
      assert(j.ops > 0 and j.latency.get.p99 and j.latency.set.count > 0 and #j.series >= 1)' \
      "$dir/r.json" 2>"$dir/err"; then ok "bench --json decodes"; else fail "bench --json decodes" "bad JSON"; fi
  has "bench --html" "$dir/r.html" '^<!DOCTYPE html>' '<svg ' 'Latency by percentile'
  [ -s "$dir/err" ] && ! grep -q . "$dir/err" || true
fi

if run "bench zipf, rate, ops" 0 -- bench -n 2000 --rate 4000 -c 2 --dist zipf --value-size 10 \
     --mix get --no-progress; then
  has "bench -n 2000: exact count" "$dir/out" '^ +total requests: 2000 ' '^cumulative get latencies'
fi

if run "bench --help" 0 -- bench --help; then
  has "bench --help text" "$dir/out" '^usage: kura bench' '--rate R' '--mix LIST' '--backend URL'
fi

if run "bench bad option" 2 -- bench --frobnicate; then
  has "bench bad option message" "$dir/err" 'unknown option .--frobnicate.'
fi
if run "bench bad mix" 2 -- bench --mix fly:10; then
  has "bench bad mix message" "$dir/err" "unknown operation 'fly'"
fi
if run "bench bad number" 2 -- bench -c many; then
  has "bench bad number message" "$dir/err" '-c wants an integer'
fi
if run "bench bad backend" 2 -- bench --backend nope://x -d 1; then
  ok "bench bad backend"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
