#!/usr/bin/env bash
# scripts/bench/report_screenshot.sh: the HTML report of `kura bench` as a
# real browser draws it. Runs a short load test (or takes a report you
# give), opens it in headless Chromium and writes a PNG of the whole page,
# to look at the charts, their legends, ticks and layout.
#
# usage: scripts/bench/report_screenshot.sh [--html FILE] [--out PNG]
#            [--width PX] [-- kura bench options...]
#   --html FILE   screenshot this report instead of making one
#   --out PNG     where the screenshot goes (default: build/report.png)
#   --width PX    window width (default 1600; 800 shows the narrow layout)
#   after --, options for the run (default: -d 6 -c 16 --mix
#   get:70,set:20,delete:10 --dist zipf)
# Needs Debian's chromium package (installed when missing).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/setup.sh"

html="" out="$KURA_ROOT/build/report.png" width=1600
bench_args=(-d 6 -c 16 --mix get:70,set:20,delete:10 --dist zipf)
while [ $# -gt 0 ]; do
  case "$1" in
    --html) html=$2; shift ;;
    --out) out=$2; shift ;;
    --width) width=$2; shift ;;
    --) shift; bench_args=("$@"); break ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "report_screenshot.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$width" in ''|*[!0-9]*) echo "report_screenshot.sh: --width wants pixels, not '$width'" >&2; exit 2 ;; esac

kura_install $KURA_BUILD_PKGS chromium fonts-dejavu-core
work=$(mktemp -d /tmp/kura-shot.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -z "$html" ]; then
  kura_build "$KURA_ROOT/build"
  html=$work/report.html
  status=0
  "$KURA_ROOT/build/kura" bench --no-progress --html "$html" "${bench_args[@]}" >"$work/bench.txt" || status=$?
  # 99: a threshold failed; the report is still worth a look.
  if [ "$status" != 0 ] && [ "$status" != 99 ]; then
    cat "$work/bench.txt" >&2
    echo "report_screenshot.sh: kura bench failed (status $status)" >&2
    exit 1
  fi
fi
[ -f "$html" ] || { echo "report_screenshot.sh: $html: no such file" >&2; exit 2; }

# Chromium's screenshot is the window: size it to the page, as the CSS lays
# it out (charts at least 520 px wide side by side, ~0.42 as high as wide,
# below ~600 px of header and table).
charts=$(grep -o '<svg ' "$html" | wc -l)
content=$(( (width < 1800 ? width : 1800) - 64 ))
cols=$(( (content + 32) / 552 )); [ "$cols" -ge 1 ] || cols=1
rows=$(( (charts + cols - 1) / cols ))
height=$(( 620 + rows * (content / cols * 42 / 100 + 24) ))
mkdir -p "$(dirname "$out")"
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --hide-scrollbars --window-size="$width,$height" \
  --screenshot="$out" "file://$(realpath "$html")" >"$work/chromium.log" 2>&1 || {
  tail -20 "$work/chromium.log" >&2
  echo "report_screenshot.sh: chromium failed" >&2
  exit 1
}
[ -s "$out" ] || { echo "report_screenshot.sh: no screenshot written" >&2; exit 1; }
echo "$out"
