#!/usr/bin/env bash
# Fault tests of the Redis backend at the Lua level: starts its own
# redis-server (with a password) on a free loopback port and runs
# tests/redis/faults.lua, which kills, freezes (SIGSTOP) and restarts that
# server through this same script's "ctl" mode. Then checks that no password
# appears anywhere in the output.
#   usage: test_redis_faults.sh KURA_BINARY
#          test_redis_faults.sh ctl DIR start|kill|stop|cont   (used by faults.lua)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ctl() {
  local dir=$1 port pass
  port=$(cat "$dir/port")
  pass=$(cat "$dir/pass")
  case $2 in
    start)
      redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" --daemonize yes \
        --requirepass "$pass" >/dev/null
      for _ in $(seq 250); do port_open "$port" && return 0; sleep 0.02; done
      echo "redis-server did not start on port $port" >&2; return 1 ;;
    kill)
      kill -9 "$(cat "$dir/redis.pid")"
      for _ in $(seq 250); do port_open "$port" || return 0; sleep 0.02; done
      return 1 ;;
    stop) kill -STOP "$(cat "$dir/redis.pid")" ;;
    cont) kill -CONT "$(cat "$dir/redis.pid")" ;;
  esac
}

if [ "${1:-}" = ctl ]; then
  ctl "$2" "$3"
  exit
fi

kura=${1:?usage: test_redis_faults.sh KURA_BINARY}
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
dir=$(mktemp -d /tmp/kura-faults.XXXXXX)
cleanup() {
  if [ -f "$dir/redis.pid" ]; then
    kill -CONT "$(cat "$dir/redis.pid")" 2>/dev/null || true
    kill -9 "$(cat "$dir/redis.pid")" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

. "$here/servers.sh"
port=$(redis_free_port)
pass="kura-pw-$RANDOM$RANDOM-secret"
wrong="wrong-pw-$RANDOM$RANDOM-guess"
echo "$port" >"$dir/port"
echo "$pass" >"$dir/pass"
ctl "$dir" start

status=0
KURA_FAULT_PORT=$port KURA_FAULT_PASS=$pass KURA_FAULT_WRONG=$wrong \
KURA_FAULT_CTL="bash $here/test_redis_faults.sh ctl $dir" \
  "$kura" run "$here/faults.lua" >"$dir/out" 2>&1 || status=$?
cat "$dir/out"
if grep -qF -e "$pass" -e "$wrong" "$dir/out"; then
  echo "FAIL: a password appears in the output" >&2
  status=1
fi
exit $status
