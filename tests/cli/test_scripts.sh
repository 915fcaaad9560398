#!/usr/bin/env bash
# The ready-made scripts (scripts/*.lua) as a user runs them: --help; every
# bad option exits 2 in one line that names it (no traceback); a warm-up
# with rejected lines exits 1; a missing file is named once; a live
# progress line on a terminal (a pseudo-terminal from script(1)) and none
# with --quiet or into a pipe; loadtest.lua's thresholds exit 99.
# Usage: test_scripts.sh PATH/TO/kura. Prints one line per check and
# "N passed, N failed"; exits 1 on a failure.
set -u
KURA=${1:?usage: test_scripts.sh PATH/TO/kura}
case $KURA in /*) ;; *) KURA=$PWD/$KURA ;; esac   # the checks run in a scratch folder
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
S=$root/scripts
dir=$(mktemp -d /tmp/kura-scripts.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
  failed=$((failed + 1)); echo "FAIL $1: $2"
  sed 's/^/    out: /' "$dir/out" | head -10; sed 's/^/    err: /' "$dir/err" | head -10
}

# check NAME WANT_STATUS STDERR_REGEX -- ARGS...: kura ARGS, at most 120 s;
# the regex EMPTY wants nothing on stderr.
check() {
  local name=$1 want=$2 re=$3
  shift 4
  (cd "$dir" && timeout 120 "$KURA" "$@" >"$dir/out" 2>"$dir/err" </dev/null)
  local got=$?
  if [ "$got" != "$want" ]; then fail "$name" "status $got, wanted $want"; return 1; fi
  if [ "$re" = EMPTY ]; then
    [ -s "$dir/err" ] && { fail "$name" "stderr is not empty"; return 1; }
  elif ! grep -Eq -- "$re" "$dir/err"; then
    fail "$name" "stderr does not match /$re/"; return 1
  fi
  ok "$name"
}

# usage NAME REGEX -- ARGS: status 2, one line, no traceback or Lua position.
usage() {
  local name=$1 re=$2
  shift 3
  check "$name" 2 "$re" -- "$@" || return
  if [ "$(wc -l <"$dir/err")" != 1 ] || grep -Eq 'traceback|\.lua:[0-9]+:' "$dir/err"; then
    failed=$((failed + 1)); passed=$((passed - 1)); echo "FAIL $name: not one clean line"
  fi
}

for s in warmup counters ttl_refresh loadtest cheatsheet read_through; do
  check "$s.lua --help" 0 EMPTY -- "$S/$s.lua" --help
  grep -q . "$dir/out" || fail "$s.lua --help" "no text"
done

usage "read_through --stale -1" "^read_through\.lua: --stale: a number >= 0, not '-1'" \
  -- "$S/read_through.lua" --stale -1
# A run against its own local origin: stale values served at once, one
# reload, absent products remembered, stale values after the origin is gone.
if command -v python3 >/dev/null; then
  if check "read_through.lua runs" 0 "reloading product:1 .* failed, serving the stale value" \
       -- run "$S/read_through.lua"; then
    for want in "1\. cold read of every product: +15 found, 5 absent, 0 failed" \
                "2\. warm read: +15 found, 5 absent, 0 failed in [0-9.]+ s; 0 origin request" \
                "3\. 50 readers of a stale product: +50/50 got the stale value in [0-9.]+ s; 1 origin request" \
                "4\. the origin is gone, read again: +15 found \(stale\), 5 absent, 0 failed"; do
      grep -Eq "$want" "$dir/out" && ok "read_through: $want" || fail "read_through" "no /$want/"
    done
  fi
fi
usage "warmup --format xml" "^warmup\.lua: --format: json, jsonl, csv, not 'xml'" -- "$S/warmup.lua" --format xml x.dat
usage "warmup --concurrency 0" "^warmup\.lua: --concurrency: an integer from 1 to 10000, not '0'" \
  -- "$S/warmup.lua" --concurrency 0
usage "warmup --jitter 2" "^warmup\.lua: --jitter: a number from 0 to 0\.9" -- "$S/warmup.lua" --jitter 2
usage "warmup unknown option" "^warmup\.lua: unknown option '-x'" -- "$S/warmup.lua" -x
usage "warmup --ttl without value" "^warmup\.lua: option --ttl needs a value" -- "$S/warmup.lua" --ttl
usage "counters --players 0" "^counters\.lua: --players: an integer from 1 to 100000, not '0'" \
  -- "$S/counters.lua" --players 0
usage "counters --window 0" "^counters\.lua: --window: a number >= 0\.01" -- "$S/counters.lua" --window 0
usage "counters stray argument" "^counters\.lua: unexpected argument 'now'" -- "$S/counters.lua" now
usage "ttl_refresh --ttl 0" "^ttl_refresh\.lua: --ttl: a number >= 0\.1" -- "$S/ttl_refresh.lua" --ttl 0
usage "loadtest --duration 2x" "^loadtest\.lua: --duration: a number > 0, not '2x'" \
  -- "$S/loadtest.lua" --duration 2x
usage "loadtest abc" "^loadtest\.lua: SECONDS: a number > 0, not 'abc'" -- "$S/loadtest.lua" abc
usage "loadtest bad threshold" "^loadtest\.lua: threshold 'p99<2': give the latency a unit" \
  -- "$S/loadtest.lua" --threshold 'p99<2'
usage "loadtest --json in a missing folder" "^loadtest\.lua: --json: $dir/no/l\.json: No such file" \
  -- "$S/loadtest.lua" --json "$dir/no/l.json"
usage "loadtest --threads 0" "^loadtest\.lua: --threads: an integer from 1 to 256, or auto" \
  -- "$S/loadtest.lua" --threads 0
usage "cheatsheet stray argument" "^cheatsheet\.lua: unexpected argument 'x'" -- "$S/cheatsheet.lua" x

# Warm-up: 4 of 7 lines rejected is a failure (exit 1), and says so.
printf '%s\n' '{"key":"a","value":"1"}' 'not json' '{"value":"no key"}' '{"key":"b","value":"2"}' \
  '[1]' '{"key":"c","value":"3"}' '{"key":"d"}' >"$dir/mixed.jsonl"
if check "warmup with rejected lines: exit 1" 1 '' -- "$S/warmup.lua" --quiet "$dir/mixed.jsonl"; then
  grep -q "mixed.jsonl: 3 loaded, 4 failed, 0 skipped" "$dir/out" && ok "warmup counts them" \
    || fail "warmup counts them" "no '3 loaded, 4 failed'"
fi
check "warmup of good lines: exit 0" 0 EMPTY -- "$S/warmup.lua" --quiet "$S/data/players.jsonl"
if check "warmup of a missing file: exit 1" 1 "^warmup\.lua: $dir/nope\.csv: No such file or directory$" \
     -- "$S/warmup.lua" "$dir/nope.csv"; then
  [ "$(grep -o "nope.csv" "$dir/err" | wc -l)" = 1 ] && ok "the missing path once" \
    || fail "the missing path once" "printed more than once"
fi

# Progress: a live line on a terminal only.
on_tty() { (cd "$dir" && timeout 120 script -qec "$*" /dev/null) >"$dir/out" 2>&1 </dev/null; }
on_tty "'$KURA' '$S/warmup.lua' '$S/data/players.jsonl'"
grep -q $'\rwarm-up: 1000 loaded' "$dir/out" && ok "warmup: progress on a terminal" \
  || fail "warmup: progress on a terminal" "no live line"
on_tty "'$KURA' '$S/warmup.lua' --quiet '$S/data/players.jsonl'"
grep -q 'warm-up: ' "$dir/out" && fail "warmup --quiet" "a live line" || ok "warmup --quiet: no live line"
check "warmup into a pipe: no live line" 0 EMPTY -- "$S/warmup.lua" "$S/data/players.jsonl"
on_tty "'$KURA' '$S/counters.lua' --seconds 1 --events 100"
grep -q $'\r  [0-9.]* s of 1 s' "$dir/out" && ok "counters: progress on a terminal" \
  || fail "counters: progress on a terminal" "no live line"
on_tty "'$KURA' '$S/loadtest.lua' -d 1.5 -c 2 --json '$dir/l.json' --html '$dir/l.html'"
grep -q $'\r\[ *1s\]' "$dir/out" && ok "loadtest: progress on a terminal" \
  || fail "loadtest: progress on a terminal" "no live line"

# loadtest.lua: thresholds decide the exit status.
check "loadtest threshold fails: 99" 99 EMPTY -- "$S/loadtest.lua" -d 0.5 -c 2 --json "$dir/l.json" \
  --html "$dir/l.html" --threshold 'p99<1ns'
grep -q '^  FAIL p99<1ns' "$dir/out" && ok "loadtest prints the failed threshold" \
  || fail "loadtest prints the failed threshold" "no FAIL line"
check "loadtest thresholds hold: 0" 0 EMPTY -- "$S/loadtest.lua" 0.5 2 --json "$dir/l.json" \
  --html "$dir/l.html" --threshold 'p99<10s'

# loadtest.lua --threads 2: the session workload file loaded by both threads,
# one merged report that says so.
check "loadtest --threads 2: 0" 0 EMPTY -- "$S/loadtest.lua" -d 0.5 -c 4 --threads 2 \
  --json "$dir/l.json" --html "$dir/l.html"
grep -q ', 2 threads$' "$dir/out" && grep -q 'iterations: [1-9]' "$dir/out" \
  && ok "loadtest --threads 2: the report says 2 threads" \
  || fail "loadtest --threads 2: the report says 2 threads" "$(head -4 "$dir/out")"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
