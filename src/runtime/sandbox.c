/* The sandbox for scripts a host does not fully trust (mods, designer
 * scripts, per-match logic): what kr_sandbox_open does to a runtime's Lua
 * state, once, before the host loads any script.
 *
 * - Gone: io, debug, dofile, loadfile, string.dump, package.loadlib,
 *   package.searchpath and the C searchers (nothing that reads the file
 *   system or loads native code), os but time/clock/date, kura.on_signal
 *   (the host owns the signals), kura.json.lines (reads files) and
 *   kura.credential.from_env (reads the host's environment).
 * - load compiles text only; require finds preloaded modules, kura.* (whose
 *   tables it hands out read-only), and Lua text files on the path the host
 *   gave, whatever a script puts in package.path.
 * - No finalizers written in Lua: Lua runs __gc with hooks off, out of the
 *   budget's reach, so setmetatable refuses a __gc field (one added to the
 *   metatable later is never called: Lua marks an object for finalization
 *   only in setmetatable).
 * - The library tables and the string metatable are read-only (readonly.c).
 * - Every path on which a script's code runs is under the instruction
 *   budget: the hook itself (budget.c), xpcall and coroutines (guard.c),
 *   pattern matching (pattern.c) and the library functions whose work in C
 *   is charged (charge.c).
 */
#include <string.h>

#include <lauxlib.h>

#include "runtime/charge.h"
#include "runtime/guard.h"
#include "runtime/pattern.h"
#include "runtime/readonly.h"
#include "runtime/rt_internal.h"
#include "runtime/sandbox.h"

/* --- the trimmed globals ------------------------------------------------------ */

/* load(chunk [, name [, mode [, env]]]): the original (upvalue 1) with mode
 * forced to "t", whatever the caller asked: no binary chunks. */
static int load_text(lua_State *L)
{
  int n = lua_gettop(L) < 3 ? 3 : lua_gettop(L); /* an absent env stays absent */
  lua_settop(L, n);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

/* A package.searchers entry: Lua files (text only) on the path fixed when the
 * sandbox was set up (upvalue 1), found by package.searchpath as it was then
 * (upvalue 2), so that a script cannot point require at other files. */
static int search_text(lua_State *L)
{
  const char *name = luaL_checkstring(L, 1);
  if (!lua_isstring(L, lua_upvalueindex(1)) || !lua_isfunction(L, lua_upvalueindex(2))) {
    lua_pushliteral(L, "\n\tno module path in the sandbox");
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2))
    return 1; /* the message of searchpath: where it looked */
  lua_pop(L, 1);
  const char *file = lua_tostring(L, -1);
  if (luaL_loadfilex(L, file, "t") != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
                      lua_tostring(L, -1));
  lua_pushstring(L, file);
  return 2;
}

/* setmetatable(t, mt): refuses a metatable with a __gc field. Finalizers run
 * with hooks off (Lua's GCTM), so no budget could stop one that loops, at a
 * collection or when the runtime closes. A __gc added to mt later is never
 * called: Lua marks an object for finalization only here. */
static int setmetatable_nogc(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, lua_type(L, 2) == LUA_TNIL || lua_type(L, 2) == LUA_TTABLE, 2,
                   "nil or table");
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox");
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* Replaces the function t[name] (t at idx) by fn with the original as its
 * upvalue. */
static void wrap_field(lua_State *L, int idx, const char *name, lua_CFunction fn)
{
  idx = lua_absindex(L, idx);
  lua_getfield(L, idx, name);
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, idx, name);
}

/* os keeps time, clock and date; the new table also replaces package.loaded.os. */
static void trim_os(lua_State *L, int loaded)
{
  static const char *const keep[] = {"time", "clock", "date", NULL};
  lua_getglobal(L, "os");
  int os = lua_gettop(L);
  lua_createtable(L, 0, 3);
  for (int i = 0; keep[i] && lua_istable(L, os); i++) {
    lua_getfield(L, os, keep[i]);
    lua_setfield(L, -2, keep[i]);
  }
  lua_pushvalue(L, -1);
  lua_setglobal(L, "os");
  lua_setfield(L, loaded, "os");
  lua_pop(L, 1);
}

/* A loader of a kura.* module (upvalue 1): the module's table read-only. */
static int load_readonly(lua_State *L)
{
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  if (lua_istable(L, -1) && !kr_readonly_is(L, -1))
    kr_readonly_replace(L, -1);
  return 1;
}

/* kura's searcher (upvalue 1), with its loaders wrapped in load_readonly. */
static int search_kura(lua_State *L)
{
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 2);
  if (lua_isfunction(L, -2)) {
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, load_readonly, 1);
    lua_replace(L, -3);
  }
  return 2;
}

/* package: no loadlib, no C path, no searchpath; searchers = preload,
 * kura.*, text files on the path. */
static void trim_package(lua_State *L, int path_idx)
{
  if (lua_getglobal(L, "package") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  int pkg = lua_gettop(L);
  lua_pushnil(L);
  lua_setfield(L, pkg, "loadlib");
  lua_pushliteral(L, "");
  lua_setfield(L, pkg, "cpath");
  lua_getfield(L, pkg, "searchers");
  int old = lua_gettop(L);
  lua_createtable(L, 3, 0);
  int n = 0;
  if (lua_istable(L, old)) {
    /* luaopen_kura put its searcher second, after the preload searcher, in
     * front of Lua's four: keep those two (and drop Lua's file and C ones). */
    lua_rawgeti(L, old, 1);
    lua_rawseti(L, -2, ++n);
    if (lua_rawlen(L, old) >= 5) {
      lua_rawgeti(L, old, 2);
      lua_pushcclosure(L, search_kura, 1);
      lua_rawseti(L, -2, ++n);
    }
  }
  lua_pushvalue(L, path_idx);
  lua_getfield(L, pkg, "searchpath");
  lua_pushcclosure(L, search_text, 2);
  lua_rawseti(L, -2, ++n);
  lua_setfield(L, pkg, "searchers");
  lua_pushnil(L); /* it tells which files exist */
  lua_setfield(L, pkg, "searchpath");
  lua_pop(L, 2);
}

static void remove_global(lua_State *L, int loaded, const char *name)
{
  lua_pushnil(L);
  lua_setglobal(L, name);
  lua_pushnil(L);
  lua_setfield(L, loaded, name);
}

/* Sets t.name (t on top) to nil, if t is a table. */
static void remove_field(lua_State *L, const char *name)
{
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    lua_setfield(L, -2, name);
  }
}

/* What goes from kura and from string. */
static void trim_libraries(lua_State *L)
{
  lua_getglobal(L, "string");
  remove_field(L, "dump");
  lua_pop(L, 1);
  lua_getglobal(L, "kura");
  remove_field(L, "on_signal");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "json");
    remove_field(L, "lines");
    lua_getfield(L, -2, "credential");
    remove_field(L, "from_env");
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* Replaces the table on top by a read-only proxy; its fields that are
 * tables become proxies too (to `depth` levels), in place. */
static void readonly_tree(lua_State *L, int depth)
{
  int t = lua_gettop(L);
  if (depth > 0)
    lua_pushnil(L);
  while (depth > 0 && lua_next(L, t)) {
    if (lua_istable(L, -1) && !kr_readonly_is(L, -1)) {
      readonly_tree(L, depth - 1);
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, t); /* an existing key: lua_next goes on */
    } else {
      lua_pop(L, 1);
    }
  }
  kr_readonly_replace(L, t);
}

/* The library `name` becomes read-only, as a global and in package.loaded. */
static void readonly_library(lua_State *L, int loaded, const char *name, int depth)
{
  if (lua_getglobal(L, name) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  readonly_tree(L, depth);
  lua_pushvalue(L, -1);
  lua_setglobal(L, name);
  lua_setfield(L, loaded, name);
}

/* package stays as it is for require (which reads package.searchers);
 * scripts get a read-only copy whose loaded, preload and searchers are
 * read-only views of the real ones. */
static void readonly_package(lua_State *L, int loaded)
{
  if (lua_getglobal(L, "package") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  int pkg = lua_gettop(L);
  lua_newtable(L);
  for (lua_pushnil(L); lua_next(L, pkg); lua_pop(L, 1)) {
    lua_pushvalue(L, -2);
    if (lua_istable(L, -2))
      kr_readonly_push(L, -2);
    else
      lua_pushvalue(L, -2);
    lua_rawset(L, -5);
  }
  kr_readonly_replace(L, -1);
  lua_pushvalue(L, -1);
  lua_setglobal(L, "package");
  lua_setfield(L, loaded, "package");
  lua_pop(L, 1);
}

static void readonly_libraries(lua_State *L, int loaded)
{
  static const char *const libs[] = {"string", "table", "math", "coroutine", "utf8", "os", NULL};
  for (int i = 0; libs[i]; i++)
    readonly_library(L, loaded, libs[i], 0);
  readonly_library(L, loaded, "kura", 2);
  readonly_package(L, loaded);
  kr_readonly_strings(L);
}

int kr_sandbox_open(lua_State *L)
{
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (lua_isnoneornil(L, 1)) { /* the path require searches: package.path now */
    lua_settop(L, 0);
    lua_getglobal(L, "package");
    if (lua_istable(L, 1))
      lua_getfield(L, 1, "path");
    else
      lua_pushnil(L);
    lua_remove(L, 1);
  }
  lua_settop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  int loaded = lua_gettop(L);
  static const char *const gone[] = {"io", "debug", "dofile", "loadfile", NULL};
  for (int i = 0; gone[i]; i++)
    remove_global(L, loaded, gone[i]);
  trim_os(L, loaded);
  trim_package(L, 1);
  trim_libraries(L);
  lua_pushglobaltable(L);
  wrap_field(L, -1, "load", load_text);
  wrap_field(L, -1, "setmetatable", setmetatable_nogc);
  lua_pop(L, 1);
  if (lua_getglobal(L, "string") == LUA_TTABLE)
    kr_pattern_install(L, -1, rt);
  lua_pop(L, 1);
  kr_guard_open(L);
  kr_charge_open(L);
  kr_readonly_open(L);
  readonly_libraries(L, loaded);
  if (rt)
    kr_runtime_set_sandboxed(rt);
  return 0;
}
