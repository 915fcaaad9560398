# Shared by scripts/bench/json.sh and scripts/bench/warmup.sh. Source it
# after scripts/lib/setup.sh; it defines:
#   bench_jsonl_data ITEMS  -> path of ITEMS JSON Lines items (made once in /tmp):
#                              {"key":"user:0000001","value":"<48 chars>","ttl":3600}
#   bench_ref_kura REV      -> path of a kura built from revision REV (once, in
#                              /tmp/kura-ref-REV), for figures beside an earlier build

bench_jsonl_data() {
  local items=$1 data=/tmp/kura-warmup-$1.jsonl
  if [ ! -s "$data" ]; then
    awk -v n="$items" 'BEGIN {
      srand(1); al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
      for (i = 0; i < 4096; i++) base = base substr(al, int(rand() * 64) + 1, 1)
      for (i = 0; i < n; i++)
        printf "{\"key\":\"user:%07d\",\"value\":\"%s\",\"ttl\":3600}\n", i,
               substr(base, (i * 7) % 4000 + 1, 48)
    }' > "$data.tmp"
    mv "$data.tmp" "$data"
  fi
  echo "$data"
}

bench_ref_kura() {
  local rev=$1 dir=/tmp/kura-ref-$1
  if [ ! -x "$dir/build/kura" ]; then
    kura_log "building the reference kura at $rev in $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    git -C "$KURA_ROOT" archive "$rev" | tar -x -C "$dir"
    cmake -S "$dir" -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKURA_BUILD_TESTS=OFF \
      >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log" >&2; return 1; }
    cmake --build "$dir/build" -j"$(nproc 2>/dev/null || echo 2)" --target kura \
      >"$dir/build.log" 2>&1 || { tail -20 "$dir/build.log" >&2; return 1; }
  fi
  echo "$dir/build/kura"
}
