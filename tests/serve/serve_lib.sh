# Shared by tests/serve/test_*.sh: start and stop `kura serve` on a free port.
# Source it after setting $kura (the binary) and $work (a scratch folder);
# it keeps the pids it starts in $pids and kills what is left on exit.

pids=()
serve_cleanup() {
  local p
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap serve_cleanup EXIT

step() { echo "--- $*"; }
fail() { echo "FAIL: $*"; exit 1; }

# start_serve NAME [kura serve options...]: sets $port, $serve_pid and
# $serve_log (its stderr and stdout).
start_serve() {
  local name=$1; shift
  serve_log=$work/$name.log
  "$kura" serve --port 0 "$@" > "$serve_log" 2>&1 &
  serve_pid=$!
  pids+=("$serve_pid")
  for _ in $(seq 400); do # up to 20 s: a sanitized build on a busy machine
    grep -q 'listening on' "$serve_log" 2>/dev/null && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.05
  done
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\) .*/\1/p' "$serve_log" | head -1)
  [ -n "$port" ] || { cat "$serve_log"; fail "kura serve $* did not start"; }
}

# stop_serve [SIGNAL]: signals the server (TERM by default) and checks that
# it drained and exited 0 with no sanitizer report.
stop_serve() {
  kill -"${1:-TERM}" "$serve_pid"
  local st=0
  wait "$serve_pid" || st=$?
  check_log "$serve_log"
  [ "$st" = 0 ] || { cat "$serve_log"; fail "kura serve exited $st after SIG${1:-TERM}"; }
  grep -q 'stopped after' "$serve_log" || { cat "$serve_log"; fail "no 'stopped' line"; }
}

# check_log FILE: no sanitizer report, no crash.
check_log() {
  if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|PANIC' "$1"; then
    cat "$1"
    fail "a sanitizer or panic report in $1"
  fi
}
