#!/usr/bin/env bash
# kura.http beside wrk, same server (nginx serving a 1 KB file on loopback),
# same run: 1,000 concurrent kura.http.get tasks vs `wrk -c 1000`, one thread
# each (kura runs one loop on one core), and the ratio (goal: >= 0.5x wrk).
# Also `curl --parallel` (at most 300 at once, the tool's limit) and
# scripts/bench/http_floor.c (libcurl driven bare, no Lua) as floors of
# libcurl itself, which kura.http runs on: wrk is a bare load generator,
# libcurl a full client, so they bound what is possible.
# usage: scripts/bench/http.sh [SECONDS] [CONCURRENCY] [ROUNDS]
#        (KURA_BUILD_DIR: the build folder, default build/)
# ROUNDS (default 3) alternates kura and wrk that many times and prints the
# median of the per-round ratios: on a shared machine one pair of runs can
# be 10% off either way.
# Installs wrk and nginx-light when they are missing (benchmarks only: the
# tests do not need them).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$root/scripts/lib/setup.sh"
build=${KURA_BUILD_DIR:-$root/build}
secs=${1:-5}
conc=${2:-1000}
rounds=${3:-3}
case "$secs$conc$rounds" in *[!0-9]*) echo "usage: scripts/bench/http.sh [SECONDS] [CONCURRENCY] [ROUNDS]" >&2; exit 2 ;; esac
[ "$rounds" -ge 1 ] || rounds=1

command -v wrk >/dev/null && command -v nginx >/dev/null || kura_install wrk nginx-light
[ -x "$build/kura" ] || kura_build "$build"

dir=$(mktemp -d /tmp/kura-bench-http.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

# --- nginx on a free loopback port, one worker, a 1 KB file ------------------
# The port is taken below the ephemeral range: thousands of client sockets
# (and those in TIME_WAIT from an earlier run) hold ports inside it, which
# the connect probe below does not see but nginx's bind() fails on.
eph_lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$eph_lo" -gt 12000 ] 2>/dev/null || eph_lo=32768
port=""
for _ in $(seq 100); do
  p=$((10000 + RANDOM % (eph_lo - 10000)))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port" >&2; exit 1; }
mkdir -p "$dir/www"
chmod a+rx "$dir" "$dir/www" # nginx workers run as another user when root starts it
head -c 1024 /dev/zero | tr '\0' 'x' >"$dir/www/1k"
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true
cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  server {
    listen 127.0.0.1:$port;
    root $dir/www;
  }
}
CONF
mkdir -p "$dir/tmp"
nginx -c "$dir/nginx.conf" -p "$dir" &
pids+=($!)
for _ in $(seq 250); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.02
done
url="http://127.0.0.1:$port/1k"
curl -fsS "$url" | wc -c | grep -qx 1024 || { cat "$dir/error.log" >&2; exit 1; }

# The nginx worker's CPU ticks (user + system) so far: how busy the server
# was during each client's run tells a client that keeps it waiting.
worker_ticks() {
  local w
  w=$(pgrep -P "${pids[0]}" | head -1)
  if [ -n "$w" ]; then awk '{ print $14 + $15 }' "/proc/$w/stat"; else echo 0; fi
}

# --- kura: CONC tasks, each getting the URL in a loop for SECS seconds -------
cat >"$dir/bench.lua" <<'LUA'
local url, conc, secs = arg[1], tonumber(arg[2]), tonumber(arg[3])
local n, errors, bad = 0, 0, 0
local stop_at
local function worker()
  while kura.now() < stop_at do
    local r, err = kura.http.get(url)
    if not r then
      errors = errors + 1
      if errors == 1 then kura.log.warn("%s", tostring(err)) end
    elseif r.status ~= 200 or #r.body ~= 1024 then
      bad = bad + 1
    else
      n = n + 1
    end
  end
end
local function round(seconds)
  stop_at = kura.now() + seconds
  local tasks = {}
  for i = 1, conc do tasks[i] = kura.spawn(worker) end
  for i = 1, conc do tasks[i]:join() end
end
round(0.5) -- warm-up: connections open
n, errors, bad = 0, 0, 0
local t0 = kura.now()
round(secs)
local dt = kura.now() - t0
print(string.format("kura.http.get: %d requests in %.2f s, %d concurrent: %.0f requests/s " ..
                    "(%d errors, %d bad answers)", n, dt, conc, n / dt, errors, bad))
LUA
# CPU seconds (user + system) of a command: on a shared machine the rates
# move with the load, the CPU each request costs much less.
have_time=0
[ -x /usr/bin/time ] && have_time=1
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
hz=$(getconf CLK_TCK)

# One round: kura, then wrk, against the same server. The rounds alternate
# the two clients, so that a change in the machine's load between them
# shows up as a spread of the per-round ratios rather than as a bias.
ratios=()
for r in $(seq "$rounds"); do
  [ "$rounds" -gt 1 ] && echo "--- round $r of $rounds"
  t_start=$(worker_ticks)
  if [ $have_time = 1 ]; then
    kline=$(/usr/bin/time -f "%U %S" -o "$dir/kcpu" env KURA_LUA_PATH="$root/lua" \
            "$build/kura" run "$dir/bench.lua" "$url" "$conc" "$secs")
  else
    kline=$(KURA_LUA_PATH=$root/lua "$build/kura" run "$dir/bench.lua" "$url" "$conc" "$secs")
  fi
  echo "$kline"
  t_kura=$(worker_ticks)
  krps=$(echo "$kline" | sed 's/.*concurrent: \([0-9.]*\) requests.*/\1/')

  if [ $have_time = 1 ]; then
    /usr/bin/time -f "%U %S" -o "$dir/wcpu" wrk -t1 -c"$conc" -d"${secs}s" "$url" >"$dir/wrk.out"
  else
    wrk -t1 -c"$conc" -d"${secs}s" "$url" >"$dir/wrk.out"
  fi
  t_wrk=$(worker_ticks)
  wline=$(awk '/Requests\/sec/ { print $2 }' "$dir/wrk.out")
  echo "wrk -t1 -c$conc -d${secs}s: $wline requests/s ($(grep -E 'requests in' "$dir/wrk.out" | sed 's/^ *//'))"
  grep -E "Socket errors|Non-2xx" "$dir/wrk.out" || true
  ratios+=("$(ratio "$krps" "$wline")")
  echo "kura.http / wrk this round: ${ratios[-1]}x"
  echo "nginx worker busy: $(awk -v a="$t_start" -v b="$t_kura" -v hz="$hz" -v s="$secs" \
    'BEGIN { printf "%.0f", (b - a) / hz / (s + 0.5) * 100 }')% during kura.http, $(awk -v a="$t_kura" \
    -v b="$t_wrk" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.0f", (b - a) / hz / s * 100 }')% during wrk"
  if [ $have_time = 1 ]; then
    # requests counted: the measured ones plus the 0.5 s warm-up (estimated at the same rate)
    kreq=$(awk -v r="$krps" -v s="$secs" 'BEGIN { print r * (s + 0.5) }')
    wreq=$(grep -E 'requests in' "$dir/wrk.out" | awk '{ print $1 }')
    echo "CPU per request: kura $(awk -v c="$(awk '{ print $1 + $2 }' "$dir/kcpu")" -v n="$kreq" \
      'BEGIN { printf "%.0f", c / n * 1e6 }') us, wrk $(awk -v c="$(awk '{ print $1 + $2 }' "$dir/wcpu")" \
      -v n="$wreq" 'BEGIN { printf "%.0f", c / n * 1e6 }') us (user + system)"
  fi
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')

# --- curl --parallel: libcurl's own command-line client ----------------------
n=$((secs * 4000))
t0=$(date +%s.%N)
curl -s --parallel --parallel-immediate --parallel-max 300 -o /dev/null "$url?[1-$n]" 2>/dev/null
t1=$(date +%s.%N)
crps=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
echo "curl --parallel --parallel-max 300: $n requests: $crps requests/s"

# --- libcurl alone: the floor under kura.http (scripts/bench/http_floor.c) ---
# With nothing of kura around it: CONC transfers on CONC connections (what a
# plain libcurl program does), and 32 transfers at once: kura.http hands curl
# between 32 and 128 and queues the rest itself, and a loop as busy as this
# one keeps it at 32 (fewer in flight cost curl less per request).
floor_bin="$build/http_floor"
if [ ! -x "$floor_bin" ] || [ "$root/scripts/bench/http_floor.c" -nt "$floor_bin" ]; then
  cc -O2 -o "$floor_bin" "$root/scripts/bench/http_floor.c" -lcurl
fi
fline=$("$floor_bin" "$url" "$secs" "$conc" "$conc" || true)
echo "$fline"
fline2=$("$floor_bin" "$url" "$secs" 32 32 || true)
echo "$fline2"
frps2=$(echo "$fline2" | sed -n 's/.*connections: \([0-9.]*\) requests.*/\1/p')

echo "=> kura.http / wrk: median $(printf '%sx' "$median") of ${rounds} round(s) (${ratios[*]}) (goal >= 0.5x); last round: kura.http / curl --parallel = $(ratio "$krps" "$crps")x, kura.http / libcurl alone (32 at once) = $(ratio "$krps" "${frps2:-0}")x"
