#!/usr/bin/env bash
# scripts/bench/json.sh: kura.json.decode (objects, numbers, strings with
# escapes, one JSON Lines line) and kura.json.lines over 1,000,000 lines,
# this tree's kura beside a reference kura built from an earlier revision
# (default 57a329c, the last with cJSON's decoder), in the same run: rounds
# alternate between the two binaries, each figure is the median of its
# rounds, rates are per CPU second of the process (os.clock: other load on a
# shared machine disturbs them less than wall time). Goal: every ratio >=
# 1.00 (kura at least as fast as the reference). The warm-up of the same
# lines beside the reference: scripts/bench/warmup.sh --ref REV.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/setup.sh"

usage() {
  cat <<USAGE
usage: scripts/bench/json.sh [--rev REV] [--rounds N] [--items N]

  --rev REV     the reference revision (default 57a329c); built once into
                /tmp/kura-ref-REV
  --rounds N    rounds per binary (default 5)
  --items N     JSON Lines items (default 1000000; the file is made once in /tmp)
Environment: KURA_BUILD_DIR (default: build/ in the source tree).
USAGE
}

REV=57a329c ROUNDS=5 ITEMS=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --rev) REV=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --items) ITEMS=$2; shift ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

BUILD=${KURA_BUILD_DIR:-$KURA_ROOT/build}
kura_install $KURA_BUILD_PKGS libcjson-dev # the reference still links cJSON
kura_build "$BUILD" >/dev/null
KURA=$BUILD/kura

. "$KURA_ROOT/scripts/lib/bench_ref.sh"
REF=$(bench_ref_kura "$REV")
DATA=$(bench_jsonl_data "$ITEMS")

# One round of a binary: "case MB/s calls/s" lines (json_decode.lua).
round() {
  "$1" run "$KURA_ROOT/scripts/bench/json_decode.lua" 0.5 "$DATA"
}

out=$(mktemp /tmp/kura-json-bench.XXXXXX)
trap 'rm -f "$out"' EXIT
for r in $(seq "$ROUNDS"); do
  round "$KURA" | sed 's/^/kura /' >>"$out"
  round "$REF" | sed 's/^/ref /' >>"$out"
  kura_log "round $r of $ROUNDS done"
done

echo "kura.json: $KURA vs reference $REV, median of $ROUNDS alternated rounds (per CPU second)"
awk '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { v[$1 " " $2] = v[$1 " " $2] " " $3; if (!seen[$2]++) order[++n] = $2 }
  END {
    printf "%-16s %14s %14s %8s\n", "case", "kura", "reference", "ratio"
    for (i = 1; i <= n; i++) {
      c = order[i]; a = median(v["kura " c]); b = median(v["ref " c])
      printf("%-16s %9.1f MB/s %9.1f MB/s %7.2fx\n", c, a, b, (b > 0) ? a / b : 0)
    }
  }' "$out"
