#!/usr/bin/env bash
# The layers point down only (README, "Layout"): src/core includes no Lua
# header and nothing above it (no kura.h once include/kura_client.h is
# the core's header), src/runtime nothing of src/lua or src/host, src/lua
# nothing of src/host, src/main.c nothing of src/ (only the public headers
# in include/). No file under src/ calls lua_getextraspace: a Lua state's
# extra space belongs to whoever made the state, which kura.so and a host's
# own state do not leave to kura.
#
# The link of each layer's own tests shows much of this too; this check
# also catches an include that only uses a header's types or macros, which
# links fine. It reads every #include (quoted or angled, with any path
# spelling: "../lua/x.h" too) of the files under SOURCE_DIR/src.
#
# Usage: check_includes.sh SOURCE_DIR    exits 1 and lists each include
#                                        that points up
#        check_includes.sh --self-test SOURCE_DIR
#                                        copies src/ and include/ to a scratch
#                                        folder, puts one upward include in
#                                        each layer in turn, and fails unless
#                                        the check finds each one
set -euo pipefail

# Prints "file: include" for every include under $1/src that points up.
violations() {
  local root=$1 core_forbids_kura_h=0
  [ -f "$root/include/kura_client.h" ] && core_forbids_kura_h=1
  (cd "$root" && grep -rEnH '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^">]+[">]' src \
      --include='*.c' --include='*.h') |
    awk -v forbid_kura_h="$core_forbids_kura_h" '
      {
        file = $0; sub(/:.*/, "", file)
        inc = $0; sub(/^[^#]*#[[:space:]]*include[[:space:]]*/, "", inc)
        quoted = substr(inc, 1, 1) == "\""
        path = substr(inc, 2); sub(/[">].*/, "", path)
        # the path as it names a layer: "../lua/x.h" and "lua/x.h" alike
        norm = "/" path; while (gsub(/\/\.\.?\//, "/", norm)) {}; gsub(/\/+/, "/", norm)
        lua_h = norm ~ /^\/(lua|lauxlib|lualib|luaconf)\.h$/
        bad = ""
        if (file ~ /^src\/core\//) {
          if (lua_h) bad = "a Lua header in the core"
          else if (norm ~ /^\/(src\/)?(runtime|lua|host)\//) bad = "the core includes a layer above it"
          else if (forbid_kura_h && norm ~ /\/kura\.h$/) bad = "the core includes kura.h (the runtime API): kura_client.h is its header"
        } else if (file ~ /^src\/runtime\//) {
          if (norm ~ /^\/(src\/)?(lua|host)\//) bad = "the runtime includes the binding or the host layer"
        } else if (file ~ /^src\/lua\//) {
          if (norm ~ /^\/(src\/)?host\//) bad = "the binding includes the host layer"
        } else if (file == "src/main.c") {
          if (quoted && norm !~ /^\/kura(_client)?\.h$/) bad = "main.c uses more than the public API of include/"
        }
        if (bad != "") print file ": #include " substr(inc, 1, length(path) + 2) "  (" bad ")"
      }'
  (cd "$root" && grep -rnH 'lua_getextraspace[[:space:]]*(' src --include='*.c' --include='*.h' |
     sed 's/$/  (the extra space is the host'"'"'s)/') || true
}

check() {
  local out
  out=$(violations "$1")
  if [ -n "$out" ]; then
    printf 'includes that point up the layers:\n%s\n' "$out"
    return 1
  fi
}

self_test() {
  local src=$1 failed=0
  tmp=$(mktemp -d /tmp/kura-layers.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  cp -r "$src/src" "$src/include" "$tmp/"
  check "$tmp" || { echo "self-test: the tree as it is fails the check"; exit 1; }
  # file | a line that must be found
  local cases=(
    'src/core/error.c|#include <lua.h>'
    'src/core/net/resp.c|#include "lauxlib.h"'
    'src/core/store/store.c|#include "runtime/runtime.h"'
    'src/core/store/store.c|#include "../../lua/binding.h"'
    'src/runtime/runtime.c|#include "lua/binding.h"'
    'src/runtime/task.c|  #  include "host/host.h"'
    'src/runtime/task.c|#include "../lua/embedded.h"'
    'src/lua/ltask.c|#include "host/host.h"'
    'src/lua/lclient.c|#include "src/host/host.h"'
    'src/main.c|#include "core/client.h"'
    'src/main.c|#include "runtime/runtime.h"'
    'src/lua/ltask.c|static void *x(lua_State *L) { return lua_getextraspace (L); }'
  )
  [ -f "$tmp/include/kura_client.h" ] && cases+=('src/core/hist.c|#include "kura.h"')
  local c file line
  for c in "${cases[@]}"; do
    file=${c%%|*} line=${c#*|}
    cp "$tmp/$file" "$tmp/$file.orig"
    printf '%s\n' "$line" >>"$tmp/$file"
    if check "$tmp" >/dev/null; then
      echo "self-test: not found: '$line' in $file"; failed=1
    fi
    mv "$tmp/$file.orig" "$tmp/$file"
  done
  [ $failed = 0 ] || exit 1
  echo "self-test: each of ${#cases[@]} upward includes found"
}

if [ "${1:-}" = "--self-test" ]; then
  self_test "${2:?usage: check_includes.sh --self-test SOURCE_DIR}"
  check "$2"
else
  check "${1:?usage: check_includes.sh [--self-test] SOURCE_DIR}"
fi
echo "the layers point down only"
