#!/usr/bin/env bash
# scripts/bench/property.sh: the property test (tests/conformance/
# test_property.lua: random operations against a model) run long, with one
# seed, on the embedded store, a local redis-server and a 3-master Redis
# Cluster started here on free loopback ports. Prints per backend the
# operations, the differences found (the goal: 0) and the time taken.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/setup.sh"

usage() {
  cat <<USAGE
usage: scripts/bench/property.sh [--ops N] [--seed S]

  --ops N    operations per backend (default 100000)
  --seed S   the seed (default: from the clock); a difference names it, and
             KURA_PROP_SEED=S kura run tests/conformance/test_property.lua
             replays it (KURA_PROP_TRACE=1 prints every operation)
Environment: KURA_BUILD_DIR (default: build/ in the source tree).
USAGE
}

OPS=100000 SEED=$(( $(date +%s) % 1000000 * 1000 + RANDOM % 1000 ))
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --ops) OPS=$2; shift ;;
    --seed) SEED=$2; shift ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

BUILD=${KURA_BUILD_DIR:-$KURA_ROOT/build}
kura_install $KURA_BUILD_PKGS redis-server
kura_build "$BUILD" >/dev/null

. "$KURA_ROOT/tests/redis/servers.sh"
dir=$(mktemp -d /tmp/kura-bench-property.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
port=$(redis_free_port)
start_redis "$dir/redis" "$port"
read -r -a cports < <(redis_cluster_ports 3)
start_redis_cluster "$dir/cluster" "${cports[@]}"

status=0
echo "property test: $OPS operations per backend, seed $SEED"
for backend in memory "redis://127.0.0.1:$port" \
               "redis-cluster://127.0.0.1:${cports[0]},127.0.0.1:${cports[1]}"; do
  start=$(date +%s.%N)
  if out=$(cd "$KURA_ROOT/tests/conformance" && KURA_PROP_OPS=$OPS KURA_PROP_SEED=$SEED \
           KURA_LUA_PATH=$KURA_ROOT/lua "$BUILD/kura" run --backend "$backend" test_property.lua 2>&1); then
    line=$(grep '^property: ' <<<"$out")
  else
    status=1
    line="FAILED: $(grep -a 'difference at' <<<"$out" | head -1 | sed 's/^ *//')"
    [ -n "${line#FAILED: }" ] || line="FAILED: $(tail -3 <<<"$out")"
  fi
  awk -v s="$start" -v e="$(date +%s.%N)" -v l="$line" 'BEGIN { printf "%s (%.1f s)\n", l, e - s }'
done
exit $status
