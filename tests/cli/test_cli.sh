#!/usr/bin/env bash
# The kura command line: exit statuses (0, 1 for an uncaught task error while
# the other tasks finish, 2 for a missing file, a syntax error or bad usage),
# scripts from stdin, -e, version, --help. Usage: test_cli.sh PATH/TO/kura
# Prints one line per check and "N passed, N failed"; exits 1 on a failure.
set -u
KURA=${1:?usage: test_cli.sh PATH/TO/kura}
dir=$(mktemp -d /tmp/kura-cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0

# matches FILE REGEX: the file has a line matching REGEX; the regex EMPTY
# wants an empty file instead, and an empty regex accepts anything.
matches() {
  if [ -z "$2" ]; then return 0; fi
  if [ "$2" = EMPTY ]; then [ ! -s "$1" ]; else grep -Eq -- "$2" "$1"; fi
}

# check NAME WANT_STATUS WANT_STDOUT_REGEX WANT_STDERR_REGEX -- CMD...
check() {
  local name=$1 want=$2 out_re=$3 err_re=$4
  shift 5
  "$@" >"$dir/out" 2>"$dir/err" </dev/null
  local got=$? why=""
  [ "$got" = "$want" ] || why="status $got, wanted $want"
  [ -z "$why" ] && ! matches "$dir/out" "$out_re" && why="stdout does not match /$out_re/"
  [ -z "$why" ] && ! matches "$dir/err" "$err_re" && why="stderr does not match /$err_re/"
  if [ -z "$why" ]; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name: $why"
    sed 's/^/    out: /' "$dir/out"; sed 's/^/    err: /' "$dir/err"
  fi
}

# Like check, with the script on standard input.
check_stdin() {
  local input=$1; shift
  local name=$1 want=$2 out_re=$3 err_re=$4
  shift 5
  printf '%s\n' "$input" | "$@" >"$dir/out" 2>"$dir/err"
  local got=$?
  if [ "$got" = "$want" ] && matches "$dir/out" "$out_re" && matches "$dir/err" "$err_re"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name: status $got"
    sed 's/^/    out: /' "$dir/out"; sed 's/^/    err: /' "$dir/err"
  fi
}

# Exactly one line on stderr.
one_line() { [ "$(wc -l <"$dir/err")" = 1 ] || { failed=$((failed + 1)); echo "FAIL $1: stderr is not one line"; }; }

cat >"$dir/ok.lua" <<'EOF'
print("hello", arg[0]:match("ok.lua"), ...)
EOF
cat >"$dir/syntax.lua" <<'EOF'
local x = = 1
EOF
cat >"$dir/taskerr.lua" <<'EOF'
kura.spawn(function() kura.sleep(0.01) error("task blew up") end)
kura.spawn(function() kura.sleep(0.05) print("other task finished") end)
EOF

check "run a file" 0 '^hello	ok.lua	a	b$' EMPTY -- "$KURA" run "$dir/ok.lua" a b
check "FILE without run" 0 '^hello	ok.lua$' EMPTY -- "$KURA" "$dir/ok.lua"
check "options before FILE" 0 '^hello' EMPTY -- "$KURA" run --backend memory --default-ttl 5 "$dir/ok.lua"
check "option=value form" 0 '^hello' EMPTY -- "$KURA" run --backend=memory "$dir/ok.lua"
check "missing file: status 2" 2 EMPTY '^kura: cannot open .*nope.lua: No such file or directory$' \
  -- "$KURA" run "$dir/nope.lua"
one_line "missing file: one line"
check "syntax error: status 2" 2 EMPTY "^kura: .*syntax.lua:1: unexpected symbol near '='$" \
  -- "$KURA" run "$dir/syntax.lua"
one_line "syntax error: one line"
check "syntax error in -e: status 2" 2 EMPTY '^kura: ' -- "$KURA" -e 'x = = 1'
check "uncaught task error: status 1, the others finish" 1 '^other task finished$' \
  'kura: error in task: .*task blew up' -- "$KURA" run "$dir/taskerr.lua"
check "uncaught error has a traceback" 1 '' '^stack traceback:' -- "$KURA" run "$dir/taskerr.lua"
check "-e runs code" 0 '^42$' EMPTY -- "$KURA" -e 'print(6 * 7)'
check "-e gets its arguments" 0 '^x	y	2$' EMPTY -- "$KURA" -e 'print(arg[1], arg[2], select("#", ...))' x y
check "run -e" 0 '^ok$' EMPTY -- "$KURA" run --backend memory -e 'print("ok")'
check "-e error: status 1" 1 '' 'kura: error in task: .*bad' -- "$KURA" -e 'error("bad")'
check_stdin 'print("from stdin", ...)' "script from stdin (-)" 0 '^from stdin	p$' EMPTY -- "$KURA" - p
check_stdin 'print("from stdin")' "run - reads stdin" 0 '^from stdin$' EMPTY -- "$KURA" run -
check "version" 0 '^kura [0-9]+\.[0-9]+\.[0-9]+ \(Lua 5\.4' EMPTY -- "$KURA" version
check "--version" 0 '^kura [0-9]+\.[0-9]+\.[0-9]+' EMPTY -- "$KURA" --version
check "--help" 0 '^usage: kura <command>' EMPTY -- "$KURA" --help
check "help run" 0 '^usage: kura run' EMPTY -- "$KURA" help run
check "run --help" 0 '--backend URL' EMPTY -- "$KURA" run --help
check "version --help" 0 '^usage: kura version' EMPTY -- "$KURA" version --help
check "no arguments: usage, status 2" 2 EMPTY 'usage: kura' -- "$KURA"
check "unknown option: status 2" 2 EMPTY "unknown option '--frobnicate'" -- "$KURA" run --frobnicate x.lua
check "option without value: status 2" 2 EMPTY 'needs a value' -- "$KURA" run --backend
check "bad --default-ttl: status 2" 2 EMPTY 'default-ttl' -- "$KURA" run --default-ttl -3 "$dir/ok.lua"
check "run without FILE: status 2" 2 EMPTY 'no script' -- "$KURA" run

# Backends and values that cannot work are usage errors before the script
# runs (it would print "ran"): status 2, one line that says what to do.
cat >"$dir/ran.lua" <<'EOF2'
print("ran")
EOF2
check "unknown backend: status 2, not run" 2 EMPTY \
  "^kura: --backend: unknown backend 'bogus://x' \(expected memory, redis://" \
  -- "$KURA" run --backend bogus://x "$dir/ran.lua"
one_line "unknown backend: one line"
check "redis port out of range: status 2" 2 EMPTY \
  "^kura: --backend: bad backend URL 'redis://host:99999999': expected redis://.*port is 1-65535" \
  -- "$KURA" run --backend redis://host:99999999 "$dir/ran.lua"
check "redis-cluster bad port: status 2" 2 EMPTY "bad backend URL 'redis-cluster://a:1,b:0'" \
  -- "$KURA" run --backend redis-cluster://a:1,b:0 "$dir/ran.lua"
check "rediss: TLS to Redis is not supported" 2 EMPTY \
  '^kura: --backend: TLS to Redis \(rediss://\) is not supported: use redis:// ' \
  -- "$KURA" run --backend rediss://user:hunter2@host:6380 "$dir/ran.lua"
check "a password in a bad URL is not shown" 2 EMPTY "'redis://\*\*\*@host:0'" \
  -- "$KURA" run --backend redis://user:hunter2@host:0 "$dir/ran.lua"
if grep -q hunter2 "$dir/err"; then failed=$((failed + 1)); echo "FAIL the password was shown"; fi
for bad in inf nan -1 abc 0 1e10 0x10 " 5" "5 " ""; do
  check "--default-ttl '$bad': status 2, not run" 2 EMPTY \
    "^kura: --default-ttl: '$bad' is not a number of seconds > 0 and <= 315360000" \
    -- "$KURA" run --default-ttl "$bad" "$dir/ran.lua"
done
check "--default-ttl 0.5 and 315360000 are fine" 0 '^ran$' EMPTY \
  -- "$KURA" run --default-ttl 0.5 --default-ttl 315360000 "$dir/ran.lua"
check "bad KURA_BACKEND: status 2" 2 EMPTY "^kura: KURA_BACKEND: unknown backend 'nope'" \
  -- env KURA_BACKEND=nope "$KURA" run "$dir/ran.lua"
check "--backend wins over a bad KURA_BACKEND" 0 '^ran$' EMPTY \
  -- env KURA_BACKEND=nope "$KURA" run --backend memory "$dir/ran.lua"
check "bad MOMENTO_TTL_SECONDS: status 2" 2 EMPTY "^kura: MOMENTO_TTL_SECONDS: 'soon' is not" \
  -- env MOMENTO_TTL_SECONDS=soon "$KURA" run "$dir/ran.lua"
check "--default-ttl wins over a bad MOMENTO_TTL_SECONDS" 0 '^ran$' EMPTY \
  -- env MOMENTO_TTL_SECONDS=soon "$KURA" run --default-ttl 5 "$dir/ran.lua"
check "-e with a bad backend: status 2" 2 EMPTY 'unknown backend' \
  -- "$KURA" run --backend memory:// -e 'print("ran")'
check "a directory as the script: status 2" 2 EMPTY '^kura: cannot read .*: Is a directory$' \
  -- "$KURA" run "$dir"
check "timers keep the process alive" 0 '^fired$' EMPTY -- "$KURA" -e 'kura.after(0.02, function() print("fired") end)'

# A reader that goes away: the write fails (io.write returns nil, err) and the
# script goes on; SIGPIPE does not end kura without a word (status 141).
cat > "$dir/pipe.lua" <<'LUA'
local line = string.rep("x", 1000) .. "\n"
io.stdout:setvbuf("no")
for i = 1, 2000 do
  local ok, err = io.stdout:write(line)
  if not ok then io.stderr:write("write failed: ", tostring(err), "\n") return end
end
io.stderr:write("the reader never went\n")
LUA
"$KURA" run "$dir/pipe.lua" 2>"$dir/err" | head -c 1 >/dev/null
status=${PIPESTATUS[0]}
if [ "$status" = 0 ] && grep -q "write failed: .*[Bb]roken pipe" "$dir/err"; then
  passed=$((passed + 1)); echo "ok   a closed pipe is a write error, not SIGPIPE"
else
  failed=$((failed + 1)); echo "FAIL a closed pipe is a write error, not SIGPIPE: status $status"
  sed 's/^/    err: /' "$dir/err"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
