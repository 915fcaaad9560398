#!/usr/bin/env bash
# Redis Cluster under faults, with increments whose every outcome is counted
# (tests/redis/cluster_faults.lua). Starts its own cluster on free loopback
# ports, with AOF and appendfsync always so that Redis itself loses nothing
# that it acknowledged, and changes it under load through this script's
# "ctl" mode. Scenarios:
#   kill      (the default, run by ctest) 3 masters; each in turn is killed
#             (SIGKILL), left down, started again; then one slot is taken
#             from the cluster (CLUSTER DELSLOTS: CLUSTERDOWN for its keys)
#             and given back
#   reshard   3 masters; 2,500 slots move from one master to another, live
#   failover  3 masters with a replica each; each replica in turn takes over
#             its master (CLUSTER FAILOVER, graceful)
#   addnode   3 masters; a fourth joins and 1,500 slots move to it, live
#   usage: test_redis_cluster_faults.sh [--scenario NAME] KURA_BINARY
#          test_redis_cluster_faults.sh ctl DIR CMD [ARGS]   (used by the Lua side)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/servers.sh"

cli() { redis-cli -p "$1" "${@:2}"; }

# A node: AOF with fsync always; the node timeout is long enough that a
# master down for a few seconds is not failed over or marked FAIL (the test
# is about the client); a slot without an owner stops only its own keys.
node_start() {
  local dir=$1 port=$2 d="$1/$2"
  mkdir -p "$d"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --logfile "$d/redis.log" \
    --pidfile "$d/redis.pid" --daemonize yes --save '' --appendonly yes --appendfsync always \
    --cluster-enabled yes --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 15000 \
    --cluster-require-full-coverage no >/dev/null
  for _ in $(seq 1000); do redis_port_open "$port" && return 0; sleep 0.01; done
  echo "redis-server did not start on port $port" >&2
  return 1
}

node_kill() {
  local d="$1/$2"
  [ -f "$d/redis.pid" ] && kill -9 "$(cat "$d/redis.pid")" 2>/dev/null || true
  for _ in $(seq 500); do redis_port_open "$2" || return 0; sleep 0.01; done
  return 1
}

wait_ok() {
  local p
  for _ in $(seq 1500); do
    local ok=1
    for p in "$@"; do cli "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0; done
    [ $ok = 1 ] && return 0
    sleep 0.02
  done
  echo "the cluster did not reach cluster_state:ok" >&2
  return 1
}

# Waits until every node in $dir/ports agrees on the owner of every slot
# (after a failover or a resharding, gossip takes a moment).
wait_agree() {
  local p first=""
  for _ in $(seq 500); do
    local same=1 m
    for p in $(cat "$dir/ports"); do
      m=$(cli "$p" cluster slots 2>/dev/null | md5sum)
      [ -z "$first" ] && first=$m
      [ "$m" = "$first" ] || same=0
    done
    [ $same = 1 ] && return 0
    first=""
    sleep 0.05
  done
  return 1
}

# The first live node of the cluster.
any_port() {
  local p
  for p in $(cat "$dir/ports"); do redis_port_open "$p" && { echo "$p"; return 0; }; done
  return 1
}

id_of() { cli "$1" cluster myid; }

ctl() {
  dir=$1
  local cmd=$2
  shift 2
  case $cmd in
    kill) node_kill "$dir" "$1" ;;
    # A restarted master refuses its slots for a while (Redis waits 2 s
    # before it takes writes again, CLUSTER_WRITABLE_DELAY): it is back once
    # it says cluster_state:ok. Prints how long that took.
    start) local t0; t0=$(date +%s%N)
      node_start "$dir" "$1" && wait_ok "$1" && echo $((($(date +%s%N) - t0) / 1000000)) ;;
    # "LO HI PORT" per range of slots, from a live node
    slots) cli "$(any_port)" --no-raw cluster slots | tr -d '\r' | awk '
             /^[0-9]+\) 1\) \(integer\)/ { lo = $4; n = 1; next }
             n == 1 && /\(integer\)/ { hi = $3; n = 2; next }
             n == 2 && /\(integer\)/ { print lo, hi, $3; n = 0 }' ;;
    resetstat) for p in $(cat "$dir/ports"); do cli "$p" config resetstat >/dev/null; done ;;
    # MOVED replies sent by all nodes since resetstat
    moved) local p n t=0
      for p in $(cat "$dir/ports"); do
        n=$(cli "$p" info errorstats | tr -d '\r' | sed -n 's/^errorstat_MOVED:count=\([0-9]*\).*/\1/p')
        t=$((t + ${n:-0}))
      done
      echo $t ;;
    delslot) local p; for p in $(cat "$dir/masters"); do cli "$p" cluster delslots "$1" >/dev/null; done ;;
    addslot) cli "$2" cluster addslots "$1" >/dev/null; wait_agree ;;
    reshard) # FROM_PORT TO_PORT NSLOTS
      redis-cli --cluster reshard "127.0.0.1:$1" --cluster-from "$(id_of "$1")" \
        --cluster-to "$(id_of "$2")" --cluster-slots "$3" --cluster-yes \
        >"$dir/reshard.log" 2>&1 || { tail -5 "$dir/reshard.log" >&2; return 1; }
      wait_agree ;;
    failover) # MASTER_PORT: its replica takes over
      local r
      r=$(cat "$dir/replica.$1")
      cli "$r" cluster failover >/dev/null
      for _ in $(seq 500); do
        cli "$r" role | head -1 | grep -q master && { wait_agree; return 0; }
        sleep 0.02
      done
      echo "the replica on port $r did not take over" >&2; return 1 ;;
    addnode) # NEW_PORT NSLOTS
      node_start "$dir" "$1"
      redis-cli --cluster add-node "127.0.0.1:$1" "127.0.0.1:$(any_port)" >"$dir/add.log" 2>&1 ||
        { tail -5 "$dir/add.log" >&2; return 1; }
      echo " $1" >>"$dir/ports"
      wait_ok $(cat "$dir/ports")
      local from
      for from in $(cat "$dir/masters"); do
        redis-cli --cluster reshard "127.0.0.1:$from" --cluster-from "$(id_of "$from")" \
          --cluster-to "$(id_of "$1")" --cluster-slots $(($2 / 3)) --cluster-yes \
          >>"$dir/reshard.log" 2>&1 || { tail -5 "$dir/reshard.log" >&2; return 1; }
      done
      wait_agree ;;
    *) echo "unknown ctl command $cmd" >&2; return 2 ;;
  esac
}

if [ "${1:-}" = ctl ]; then
  ctl "$2" "$3" "${@:4}"
  exit
fi

scenario=kill
if [ "${1:-}" = --scenario ]; then scenario=$2; shift 2; fi
kura=${1:?usage: test_redis_cluster_faults.sh [--scenario kill|reshard|failover|addnode] KURA_BINARY}
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
dir=$(mktemp -d /tmp/kura-cluster-faults.XXXXXX)
cleanup() {
  local f
  for f in "$dir"/*/redis.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

nreplicas=0
[ "$scenario" = failover ] && nreplicas=1
read -r -a ports < <(redis_cluster_ports $((3 * (1 + nreplicas) + 1)))
spare=${ports[-1]}
unset 'ports[-1]'
masters=("${ports[@]}")
echo "${ports[*]}" >"$dir/ports"
echo "${masters[*]}" >"$dir/masters"
for p in "${ports[@]}"; do node_start "$dir" "$p"; done
addrs=()
for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$nreplicas" --cluster-yes \
  >"$dir/create.log" 2>&1 || { cat "$dir/create.log" >&2; exit 1; }
wait_ok "${ports[@]}"
if [ $nreplicas = 1 ]; then # who became what: redis-cli chooses
  masters=()
  for p in "${ports[@]}"; do cli "$p" role | head -1 | grep -q master && masters+=("$p"); done
  echo "${masters[*]}" >"$dir/masters"
  for p in "${masters[@]}"; do
    id=$(id_of "$p") r=""
    for _ in $(seq 500); do
      r=$(cli "$p" cluster nodes | grep -E "[ ,]slave $id" | head -1 | cut -d' ' -f2 |
          sed 's/.*:\([0-9]*\)@.*/\1/') || true # not known yet: grep finds nothing
      [ -n "$r" ] && break
      sleep 0.02
    done
    [ -n "$r" ] || { echo "no replica of the master on port $p" >&2; exit 1; }
    echo "$r" >"$dir/replica.$p"
  done
fi

KURA_CF_SCENARIO=$scenario KURA_CF_SPARE=$spare KURA_CF_MASTERS="${masters[*]}" \
KURA_CF_CTL="bash $here/test_redis_cluster_faults.sh ctl $dir" \
  "$kura" run --backend "redis-cluster://127.0.0.1:${masters[0]},127.0.0.1:${masters[1]}" \
  "$here/cluster_faults.lua"
