#!/usr/bin/env bash
# kura serve with a script (tests/serve/on_miss.lua): the script runs before
# the port opens, kura.serve.on_miss loads what gets miss (one load per key
# at a time, its TTL, nil, errors), checked through Momento's JS SDK and the
# HTTP API; an error in on_miss is printed on the server's stderr. Then a
# script that fails at start: kura serve refuses to serve (exit 1). Then the
# command line: --help, wrong options (exit 2), a port in use or a host
# that is no address (exit 1, saying why).
# usage: test_serve_lua.sh KURA_BINARY [BACKEND_URL]
set -euo pipefail
kura=$1
backend=${2:-memory}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/kura-serve-lua.XXXXXX)
. "$here/serve_lib.sh"
export KURA_LUA_PATH=$root/lua

step "1. read-through on $backend"
start_serve lua --backend "$backend" --default-ttl 30 "$here/on_miss.lua"
(cd "$root/tests/momento" && node sdk_read_through.js --port "$port")
grep -q "kura.serve.on_miss failed: .*the origin exploded" "$serve_log" ||
  { cat "$serve_log"; fail "the on_miss error is not on stderr"; }
stop_serve TERM

step "2. a script that fails before serving"
printf 'error("not today")\n' > "$work/bad.lua"
st=0
"$kura" serve --port 0 "$work/bad.lua" > "$work/bad.log" 2>&1 || st=$?
[ "$st" = 1 ] || { cat "$work/bad.log"; fail "exit $st, want 1"; }
grep -q "not serving" "$work/bad.log" || { cat "$work/bad.log"; fail "no reason given"; }
check_log "$work/bad.log"
st=0
"$kura" serve --port 0 "$work/missing.lua" > "$work/missing.log" 2>&1 || st=$?
[ "$st" = 2 ] || { cat "$work/missing.log"; fail "a missing script: exit $st, want 2"; }
step "3. the command line"
"$kura" serve --help | grep -q -- '--auth-token' || fail "kura serve --help"
"$kura" help serve | grep -q 'forMomentoLocal' || fail "kura help serve"
expect_exit() { # STATUS PATTERN ARGS...: kura serve ARGS exits STATUS saying PATTERN
  local want=$1 pat=$2 st=0; shift 2
  "$kura" serve "$@" > "$work/cli.log" 2>&1 || st=$?
  [ "$st" = "$want" ] && grep -q -- "$pat" "$work/cli.log" ||
    { cat "$work/cli.log"; fail "kura serve $*: exit $st, want $want and '$pat'"; }
}
expect_exit 2 "from 0 to 65535" --port 70000
expect_exit 2 "unknown option" --bogus
expect_exit 2 "needs a value" --port
expect_exit 1 "not an IPv4 or IPv6 address" --port 0 --host nowhere.invalid
start_serve busy --backend "$backend"
expect_exit 1 "cannot listen on 127.0.0.1 port $port" --port "$port"
stop_serve TERM
echo "serve lua on $backend: all ok"
