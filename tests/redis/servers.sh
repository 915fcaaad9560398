# Shell functions that start Redis servers on free loopback ports, for
# scripts/test and the tests in tests/redis/. Source it; the caller owns
# cleanup (kill the pids the functions append to the array `pids`).
#   redis_free_port                  -> a port nobody listens on
#   redis_cluster_ports N            -> N ports for cluster nodes
#   start_redis DIR PORT [ARGS...]   -> one redis-server (no persistence)
#   start_redis_cluster DIR P1 P2 P3 -> a 3-master cluster, waits for cluster_state:ok

redis_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports stay below Linux's ephemeral range (32768-60999), where outgoing
# connections would make a bind fail. Cluster nodes take 10000-15999 and also
# listen on port + 10000 (the cluster bus, 20000-25999); single servers take
# 26000-31999: the ranges never meet.
redis_free_port() {
  local p
  for _ in $(seq 100); do
    p=$((26000 + RANDOM % 6000))
    redis_port_open "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# N distinct free ports for cluster nodes (their bus ports free too).
redis_cluster_ports() {
  local n=$1 p got=" "
  for _ in $(seq 200); do
    p=$((10000 + RANDOM % 6000))
    [[ $got == *" $p "* ]] && continue
    redis_port_open "$p" || redis_port_open $((p + 10000)) || got="$got$p "
    [ "$(echo $got | wc -w)" -ge "$n" ] && { echo $got; return 0; }
  done
  return 1
}

start_redis() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --daemonize no "$@" &
  local pid=$!
  pids+=($pid)
  # Up to 20 s: a loaded machine can be slow; stop early if it exited.
  for _ in $(seq 1000); do
    redis_port_open "$port" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  echo "redis-server did not start on port $port:" >&2
  tail -5 "$dir/redis.log" >&2 2>/dev/null || true
  return 1
}

start_redis_cluster() {
  local dir=$1 p
  shift
  for p in "$@"; do
    start_redis "$dir/$p" "$p" --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
      --cluster-node-timeout 5000 || return 1
  done
  local addrs=()
  for p in "$@"; do addrs+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 ||
    { cat "$dir/create.log" >&2; return 1; }
  for _ in $(seq 500); do
    local ok=1
    for p in "$@"; do
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.02
  done
  echo "the cluster on ports $* did not reach cluster_state:ok" >&2
  return 1
}
