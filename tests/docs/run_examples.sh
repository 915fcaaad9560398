#!/usr/bin/env bash
# Runs every example of the documentation: each ```lua block of docs/*.md
# and README.md under `kura run` (in a scratch folder, on the embedded
# store), each ```c block compiled against libkura and run, and each ```sh
# block of docs/*.md with bash -e, the kura under test first on PATH (in a
# scratch folder where scripts/ is the source tree's). A block is one whole
# program; it passes when it exits 0 (the examples assert what they claim).
# ```text blocks are output, or commands that need a server or a place of
# their own (a Redis, an install prefix); README's ```sh blocks are the
# commands that build and test kura itself, run by the suite as it is.
# Usage: run_examples.sh KURA SOURCE_DIR CFLAGS_AND_LIBS...
#   KURA          the kura binary to run the Lua examples with
#   SOURCE_DIR    the tree whose docs/ and README.md hold the examples
#   the rest      how to compile against libkura, e.g. $(pkg-config --cflags
#                 --libs kura) -Wl,-rpath,PREFIX/lib
# Prints one line per example and "N passed, N failed"; exits 1 on a failure.
set -u
KURA=${1:?usage: run_examples.sh KURA SOURCE_DIR CFLAGS_AND_LIBS...}
src=${2:?usage: run_examples.sh KURA SOURCE_DIR CFLAGS_AND_LIBS...}
shift 2
case $KURA in /*) ;; *) KURA=$PWD/$KURA ;; esac
dir=$(mktemp -d /tmp/kura-examples.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0

# Every fenced block of FILE as $dir/blocks/<name>-<line>.<lua|c>.
extract() {
  local file=$1 name
  name=$(basename "$file" .md)
  local run_sh=1
  [ "$name" = README ] && run_sh=0
  awk -v out="$dir/blocks" -v name="$name" -v run_sh="$run_sh" '
    /^```/ {
      if (lang != "") { close(path); lang = ""; next }
      lang = substr($0, 4); sub(/[ \t].*$/, "", lang)
      if (lang == "sh" && run_sh == 1 || lang == "lua" || lang == "c") {
        path = sprintf("%s/%s-%04d.%s", out, name, NR + 1, lang)
      } else { lang = "skip" }
      next
    }
    lang == "lua" || lang == "c" || lang == "sh" { print > path }
  ' "$file"
}

mkdir -p "$dir/blocks" "$dir/run"
for f in "$src"/docs/*.md "$src/README.md"; do [ -f "$f" ] && extract "$f"; done
count=$(ls "$dir/blocks" | wc -l)
[ "$count" -gt 0 ] || { echo "no examples found under $src/docs"; exit 1; }

for b in "$dir"/blocks/*; do
  where=$(basename "$b")          # lua-api-0123.lua: the file and the line it starts on
  rm -rf "$dir/run" && mkdir -p "$dir/run"
  t0=$SECONDS
  case $b in
    *.lua) (cd "$dir/run" && timeout 120 "$KURA" run "$b") >"$dir/out" 2>&1 </dev/null ;;
    *.c) cc -std=c11 -Wall -Wextra -Werror -o "$dir/run/example" "$b" "$@" >"$dir/out" 2>&1 \
           && (cd "$dir/run" && timeout 120 ./example) >>"$dir/out" 2>&1 </dev/null ;;
    *.sh) ln -s "$src/scripts" "$dir/run/scripts"
          (cd "$dir/run" && PATH=$(dirname "$KURA"):$PATH timeout 120 bash -e "$b") >"$dir/out" 2>&1 </dev/null ;;
  esac
  status=$?
  if [ $status = 0 ]; then
    passed=$((passed + 1)); echo "ok   $where ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); echo "FAIL $where (status $status)"
    sed 's/^/    /' "$dir/out" | tail -15
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
