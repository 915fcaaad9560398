#!/usr/bin/env bash
# kura as a plain Lua 5.4 module: installs kura into a scratch prefix and,
# with the stock lua5.4 (Debian's package) finding the installed kura.so
# through LUA_CPATH, runs tests/module/stock.lua (kura.run, kura.poll, tasks,
# timers, a client) and the cheat sheet (scripts/cheatsheet.lua) on each
# backend given. The module must not link liblua (the interpreter provides
# the Lua API). No lua5.4: a skip (77).
# Usage: test_stock_lua.sh BUILD_DIR SOURCE_DIR BACKEND_URL...
set -euo pipefail
build=${1:?usage: test_stock_lua.sh BUILD_DIR SOURCE_DIR BACKEND_URL...}
src=${2:?usage: test_stock_lua.sh BUILD_DIR SOURCE_DIR BACKEND_URL...}
shift 2
[ $# -gt 0 ] || set -- memory
command -v lua5.4 >/dev/null || { echo "skip: no lua5.4 (apt-get install lua5.4)"; exit 77; }
prefix=$(mktemp -d /tmp/kura-module.XXXXXX)
trap 'rm -rf "$prefix"' EXIT

step() { printf '== %s\n' "$*"; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
so=$prefix/lib/lua/5.4/kura.so
[ -f "$so" ] || { echo "missing after install: lib/lua/5.4/kura.so"; exit 1; }
if ldd "$so" | grep -q liblua; then
  echo "kura.so links liblua: a module takes the Lua API from its interpreter"; exit 1
fi
exports=$(nm -D --defined-only "$so" | awk '$2 == "T" && $3 !~ /^kura_/ { print $3 }' | sort)
[ "$exports" = "luaopen_kura" ] || { echo "kura.so exports more than luaopen_kura: $exports"; exit 1; }

# With the prefix /usr/local (cmake's default) no LUA_CPATH is needed: the
# stock interpreter looks in PREFIX/lib/lua/5.4 already.
env -u LUA_CPATH -u LUA_CPATH_5_4 lua5.4 -e 'assert(package.cpath:find("/usr/local/lib/lua/5.4/?.so", 1, true), package.cpath)' ||
  { echo "lua5.4 does not look in /usr/local/lib/lua/5.4 (KURA_LUA_CMOD_DIR)"; exit 1; }

# Only the installed module: nothing from the build or source tree.
export LUA_CPATH="$prefix/lib/lua/5.4/?.so"
export LUA_PATH=""
unset KURA_LUA_PATH KURA_DEV
cd "$prefix"
for url in "$@"; do
  step "stock.lua on $url"
  lua5.4 "$src/tests/module/stock.lua" "$url"
  step "lua5.4 ends with a call on $url in flight and a task asleep: lua_close ends them"
  URL=$url lua5.4 -e 'local kura = require "kura"
    local c = assert(kura.client{ backend = os.getenv("URL") })
    kura.spawn(function() c:get("no-cache", "k") end)
    kura.spawn(function() kura.sleep(3600) end)
    kura.every(0.01, function() end)
    assert(kura.poll() >= 2)'
  step "the cheat sheet on $url"
  out=$(KURA_BACKEND=$url lua5.4 "$src/tests/module/run.lua" "$src/scripts/cheatsheet.lua")
  for want in 'hit: "hello"' 'visits = 8' NOT_FOUND_ERROR; do
    grep -qF "$want" <<<"$out" || { echo "cheat sheet: no '$want' in:"; echo "$out"; exit 1; }
  done
done
step "a script that fails exits non-zero in lua5.4 too"
if lua5.4 -e 'local kura = require "kura"; kura.run(function() error("expected") end)' 2>/dev/null
then
  echo "kura.run did not raise"; exit 1
fi
step "tasks that wait on each other make kura.run raise (deadlock)"
lua5.4 -e 'local kura = require "kura"
  local ok, err = pcall(kura.run, function()
    local a, b
    a = kura.spawn(function() kura.sleep(0) return b:join() end)
    b = kura.spawn(function() kura.sleep(0) return a:join() end)
    return a:join()
  end)
  assert(not ok and err:find("deadlock", 1, true), err)'
step ok
