/* The sandbox for scripts a host does not fully trust (mods, live-ops
 * scripts), and the two limits that keep a script from taking the host down:
 *
 * - An instruction budget per call into Lua. A count hook fires every
 *   `budget_step` VM instructions of a thread and charges them to the
 *   runtime; past the budget it raises "instruction budget exceeded". Count
 *   hooks are per thread, so the charge is shared through the runtime rather
 *   than kept per thread, and creating a coroutine costs one step: otherwise a
 *   script could run forever in fresh coroutines that each stop just short of
 *   a hook. Once exceeded the hook fires at every instruction, so a script
 *   that catches the error with pcall cannot go on either. The budget is
 *   given again per kura_call and per task resume (task.c).
 * - A memory cap: the runtime's allocator (runtime.c) refuses to grow the
 *   state past it, and Lua raises a memory error in the call that asked.
 *
 * The trimmed globals: no io, os only time/clock/date, no debug, no
 * string.dump, load only of text chunks, no dofile/loadfile, require finds
 * Lua modules only (text, on the path the host gave) and kura.* modules, and
 * package.loadlib and the C searchers are gone. No finalizers written in Lua
 * either: Lua runs __gc with hooks off, out of the budget's reach, so
 * setmetatable refuses a __gc field and getmetatable gives only a read-only
 * view of the metatables of userdata (the C objects' __gc stays theirs).
 */
#include <string.h>

#include <lauxlib.h>

#include "runtime/rt_internal.h"
#include "runtime/sandbox.h"

#define BUDGET_STEP_MAX 1000u

/* --- the instruction budget ---------------------------------------------- */

static void budget_hook(lua_State *L, lua_Debug *ar);

/* Charges n instructions; raises once the budget is spent. */
static void budget_charge(lua_State *L, kr_runtime *rt, uint64_t n)
{
  rt->budget_used += n;
  if (rt->budget_used <= rt->budget)
    return;
  rt->budget_hit = 1;
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1); /* every instruction fails now */
  luaL_error(L, "instruction budget exceeded (%I instructions)", (lua_Integer)rt->budget);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
  (void)ar;
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (rt && rt->budget)
    budget_charge(L, rt, rt->budget_step);
}

void kr_budget_set(kr_runtime *rt, uint64_t instructions)
{
  rt->budget = instructions;
  rt->budget_step = instructions < BUDGET_STEP_MAX ? instructions : BUDGET_STEP_MAX;
  rt->budget_used = 0;
  rt->budget_hit = 0;
  if (instructions)
    lua_sethook(rt->L, budget_hook, LUA_MASKCOUNT, (int)rt->budget_step);
  else
    lua_sethook(rt->L, NULL, 0, 0);
}

void kr_budget_reset(kr_runtime *rt, lua_State *L)
{
  rt->budget_used = 0;
  if (rt->budget_hit) { /* the hook fires at every instruction: back to normal */
    rt->budget_hit = 0;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, (int)rt->budget_step);
  }
}

int kr_budget_exceeded(const kr_runtime *rt)
{
  return rt->budget_hit;
}

/* --- the memory cap --------------------------------------------------------- */

void kr_memory_limit_set(kr_runtime *rt, size_t bytes)
{
  rt->mem_limit = bytes;
}

uint64_t kr_memory_refused(const kr_runtime *rt)
{
  return rt->mem_refused;
}

/* --- the trimmed globals ------------------------------------------------------ */

/* coroutine.create / coroutine.wrap: charged one budget step, then the
 * original (upvalue 1). */
static int charged_coroutine(lua_State *L)
{
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (rt && rt->budget)
    budget_charge(L, rt, rt->budget_step);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

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

static int readonly_newindex(lua_State *L)
{
  return luaL_error(L, "the metatable of a userdata is read-only in the sandbox");
}

/* getmetatable(v) by the original (upvalue 1); for a userdata, whose
 * metatable belongs to C (its __gc must not be replaced by Lua code), a
 * read-only view of it: reads go through, writes raise. */
static int getmetatable_readonly(lua_State *L)
{
  int ud = lua_type(L, 1) == LUA_TUSERDATA;
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 1, 1);
  if (!ud || !lua_istable(L, 1))
    return 1;
  lua_newtable(L);                 /* the view */
  lua_createtable(L, 0, 3);        /* its metatable */
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, readonly_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  return 1;
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

/* package: no loadlib, no C path, searchers = preload, kura.*, text files. */
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
    int keep = lua_rawlen(L, old) >= 5 ? 2 : 1;
    for (int i = 1; i <= keep; i++) {
      lua_rawgeti(L, old, i);
      lua_rawseti(L, -2, ++n);
    }
  }
  lua_pushvalue(L, path_idx);
  lua_getfield(L, pkg, "searchpath");
  lua_pushcclosure(L, search_text, 2);
  lua_rawseti(L, -2, ++n);
  lua_setfield(L, pkg, "searchers");
  lua_pop(L, 2);
}

static void remove_global(lua_State *L, int loaded, const char *name)
{
  lua_pushnil(L);
  lua_setglobal(L, name);
  lua_pushnil(L);
  lua_setfield(L, loaded, name);
}

int kr_sandbox_open(lua_State *L)
{
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
  lua_pushglobaltable(L);
  wrap_field(L, -1, "load", load_text);
  wrap_field(L, -1, "setmetatable", setmetatable_nogc);
  wrap_field(L, -1, "getmetatable", getmetatable_readonly);
  lua_pop(L, 1);
  if (lua_getglobal(L, "string") == LUA_TTABLE) {
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
  }
  lua_pop(L, 1);
  if (lua_getglobal(L, "coroutine") == LUA_TTABLE) {
    wrap_field(L, -1, "create", charged_coroutine);
    wrap_field(L, -1, "wrap", charged_coroutine);
  }
  lua_pop(L, 1);
  if (lua_getglobal(L, "kura") == LUA_TTABLE) { /* the host owns the signals */
    lua_pushnil(L);
    lua_setfield(L, -2, "on_signal");
    if (lua_getfield(L, -1, "json") == LUA_TTABLE) { /* reads files, like io */
      lua_pushnil(L);
      lua_setfield(L, -2, "lines");
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return 0;
}
