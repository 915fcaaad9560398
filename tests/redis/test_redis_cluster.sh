#!/usr/bin/env bash
# Redis Cluster redirections at the Lua level: starts its own 3-master
# cluster and runs tests/redis/cluster.lua, which migrates the slot of one
# item key to another master through this script's "ctl" mode: first
# MIGRATING/IMPORTING + MIGRATE of the key (the client must follow ASK), then
# MIGRATE of the slot's other keys and CLUSTER SETSLOT ... NODE (the
# client's map is stale: it must follow MOVED). Then a client whose map
# is older still creates a cache: its markers of the moved slot go to the
# wrong node first, and every marker must end up written.
# The servers' error and command statistics show that both happened.
#   usage: test_redis_cluster.sh KURA_BINARY
#          test_redis_cluster.sh ctl DIR migrate-start KEY|migrate-finish|check|empty
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/servers.sh"

cli() { redis-cli -p "$1" "${@:2}"; }

# The port of the master that owns slot $1.
owner() {
  local p r lo hi
  for p in $(cat "$dir/ports"); do
    for r in $(cli "$p" cluster nodes | grep myself | cut -d' ' -f9-); do
      [[ $r == \[* ]] && continue
      lo=${r%-*} hi=${r#*-}
      if [ "$1" -ge "$lo" ] && [ "$1" -le "$hi" ]; then echo "$p"; return; fi
    done
  done
}

# Counter $3 of INFO section $2 on port $1: "calls" of a cmdstat, "count" of an errorstat.
stat() { cli "$1" info "$2" | tr -d '\r' | grep "^$3:" | sed 's/^[^:]*:[a-z]*=\([0-9]*\).*/\1/'; }

ctl() {
  dir=$1
  local ports p
  ports=$(cat "$dir/ports")
  case $2 in
    migrate-start)
      local slot src dst
      slot=$(cli "${ports%% *}" cluster keyslot "$3")
      src=$(owner "$slot")
      for p in $ports; do [ "$p" != "$src" ] && dst=$p && break; done
      for p in $ports; do cli "$p" config resetstat >/dev/null; done
      cli "$dst" cluster setslot "$slot" importing "$(cli "$src" cluster myid)" >/dev/null
      cli "$src" cluster setslot "$slot" migrating "$(cli "$dst" cluster myid)" >/dev/null
      [ "$(cli "$src" migrate 127.0.0.1 "$dst" "$3" 0 5000)" = OK ] || return 1
      # The rest of the slot (the cache's marker in it) moves at the end, as
      # a resharding moves every key of a slot before it hands the slot over.
      echo "$slot $src $dst" >"$dir/migration" ;;
    migrate-finish)
      local slot src dst id k
      read -r slot src dst <"$dir/migration"
      for k in $(cli "$src" cluster getkeysinslot "$slot" 1000); do
        [ "$(cli "$src" migrate 127.0.0.1 "$dst" "$k" 0 5000)" = OK ] || return 1
      done
      id=$(cli "$dst" cluster myid)
      for p in $ports; do cli "$p" cluster setslot "$slot" node "$id" >/dev/null; done ;;
    check)
      local slot src dst ask moved asking
      read -r slot src dst <"$dir/migration"
      ask=$(stat "$src" errorstats errorstat_ASK) moved=$(stat "$src" errorstats errorstat_MOVED)
      asking=$(stat "$dst" commandstats cmdstat_asking)
      echo "slot $slot moved from :$src to :$dst; ASK replies ${ask:-0}, MOVED replies ${moved:-0}, ASKING ${asking:-0}"
      [ "${ask:-0}" -ge 1 ] && [ "${moved:-0}" -ge 1 ] && [ "${asking:-0}" -ge 1 ] ;;
    empty)
      for p in $ports; do [ "$(cli "$p" dbsize)" = 0 ] || return 1; done ;;
    markers) # CACHE COUNT: the cache has COUNT markers over all the nodes
      local n=0
      for p in $ports; do
        n=$((n + $(cli "$p" --scan --pattern "kura:m:{???}$3" | wc -l)))
      done
      echo "cache $3: $n markers"
      [ "$n" = "$4" ] ;;
    sets) # SET commands run by the nodes since the migration started
      local n=0
      for p in $ports; do n=$((n + $(stat "$p" commandstats cmdstat_set || echo 0))); done
      echo "$n single SET commands" ;;
  esac
}

if [ "${1:-}" = ctl ]; then
  ctl "$2" "$3" "${4:-}" "${5:-}"
  exit
fi

kura=${1:?usage: test_redis_cluster.sh KURA_BINARY}
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
dir=$(mktemp -d /tmp/kura-cluster.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

read -r -a ports < <(redis_cluster_ports 3)
echo "${ports[*]}" >"$dir/ports"
start_redis_cluster "$dir" "${ports[@]}"

KURA_CLUSTER_CTL="bash $here/test_redis_cluster.sh ctl $dir" \
  "$kura" run --backend "redis-cluster://127.0.0.1:${ports[0]}" "$here/cluster.lua"
