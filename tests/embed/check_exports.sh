#!/usr/bin/env bash
# Checks that libkura.so exports only the public API: kura_* functions and
# luaopen_kura (nm -D --defined-only). Usage: check_exports.sh LIBKURA.so
set -euo pipefail
lib=${1:?usage: check_exports.sh LIBKURA.so}
syms=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }')
[ -n "$syms" ] || { echo "no exported symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -Ev '^(kura_[A-Za-z0-9_]+|luaopen_kura)$' || true)
if [ -n "$bad" ]; then
  echo "libkura.so exports internal names:"
  printf '  %s\n' $bad
  exit 1
fi
for need in kura_runtime_new kura_call kura_get kura_strerror luaopen_kura; do
  # A here-string, not a pipe: grep -q quits at the first match, and under
  # pipefail the writer's SIGPIPE would fail the check now and then.
  grep -qx "$need" <<<"$syms" || { echo "missing export: $need"; exit 1; }
done
echo "ok: $(printf '%s\n' "$syms" | wc -l) exports, all kura_* or luaopen_kura"
