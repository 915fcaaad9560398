/* Library functions of the sandbox whose work in C is charged to the
 * instruction budget before it is done (budget.h), where the allocator's
 * charge (one instruction per KR_ALLOC_BYTES bytes made) would come too
 * late or not at all:
 *
 * - string.rep: its work is known before it is done (n copies of the piece,
 *   and the bytes of the result): charged, and refused at once ("memory
 *   limit exceeded") when the result cannot fit under the memory cap,
 *   instead of trying a terabyte allocation.
 * - print: each line costs a write to the host's stdout (KR_LINE_COST plus
 *   its bytes), like kura.log's lines (llog.c).
 * - collectgarbage: "collect" and "step" cost a pass over the heap; the
 *   options that change how the collector runs for every script of the
 *   runtime ("stop", "incremental", ...) are refused.
 * - table.sort without an order function: Lua compares with C's strcmp,
 *   where no hook fires; here the comparison is a C function that charges
 *   the length of the strings it compares (sorting long strings costs as
 *   much as it should).
 * - load: the chunk's bytes (the compiler runs in C), piece by piece when a
 *   reader function gives it.
 *
 * Each checks the arguments Lua's function would refuse before calling it:
 * an error raised inside the original, called from C, would not know the
 * name the script called it by ("bad argument #1 to '?'").
 */
#include <string.h>

#include <lauxlib.h>

#include "runtime/budget.h"
#include "runtime/charge.h"
#include "runtime/rt_internal.h"

static kr_runtime *rt_of(lua_State *L)
{
  return kr_runtime_from_lua(L);
}

/* Calls the original (upvalue 1) with the arguments as they are. */
static int call_original(lua_State *L)
{
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* string.rep(s, n [, sep]) */
static int charged_rep(lua_State *L)
{
  size_t ls, lsep = 0;
  luaL_checklstring(L, 1, &ls);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  kr_runtime *rt = rt_of(L);
  if (n > 0 && ls + lsep > 0 && rt) {
    /* the size in doubles: no overflow, and a near miss does not matter */
    double size = (double)n * (double)(ls + lsep);
    if (rt->mem_limit && rt->running &&
        (rt->lua_bytes >= rt->mem_limit || size > (double)(rt->mem_limit - rt->lua_bytes)))
      kr_budget_stop(L, rt, KR_STOP_MEMORY);
    /* Lua copies the piece n times: n steps, plus the bytes */
    double cost = (double)n + size / KR_ALLOC_BYTES;
    kr_budget_charge(L, rt, cost < 1e18 ? (uint64_t)cost : (uint64_t)1e18);
  }
  return call_original(L);
}

/* print(...) */
static int charged_print(lua_State *L)
{
  uint64_t bytes = 0;
  for (int i = 1; i <= lua_gettop(L); i++)
    if (lua_type(L, i) == LUA_TSTRING)
      bytes += lua_rawlen(L, i);
  kr_budget_charge(L, rt_of(L), KR_LINE_COST + (bytes >> KR_ALLOC_SHIFT));
  return call_original(L);
}

/* collectgarbage([opt [, arg]]) */
static int charged_collect(lua_State *L)
{
  /* Lua 5.4's options, in its order; the first six are refused */
  static const char *const opts[] = {"stop", "restart", "setpause", "setstepmul",
                                     "incremental", "generational", "collect", "step",
                                     "count", "isrunning", NULL};
  int o = luaL_checkoption(L, 1, "collect", opts);
  const char *opt = opts[o];
  if (o < 6)
    return luaL_error(L, "collectgarbage: option '%s' is not allowed in the sandbox "
                         "(the collector is shared by every script of the runtime)", opt);
  kr_runtime *rt = rt_of(L);
  /* a full collection visits the whole heap: about 1 instruction's time
   * per 4 bytes */
  if (rt && (strcmp(opt, "collect") == 0 || strcmp(opt, "step") == 0))
    kr_budget_charge(L, rt, rt->lua_bytes >> 2);
  return call_original(L);
}

/* The order of table.sort without a function: a < b, charged. */
static int charged_less(lua_State *L)
{
  uint64_t n = 1;
  if (lua_type(L, 1) == LUA_TSTRING && lua_type(L, 2) == LUA_TSTRING)
    n += (lua_rawlen(L, 1) + lua_rawlen(L, 2)) >> KR_ALLOC_SHIFT;
  kr_budget_charge(L, rt_of(L), n);
  lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
  return 1;
}

/* table.sort(t [, comp]) */
static int charged_sort(lua_State *L)
{
  if (!lua_istable(L, 1)) { /* the message Lua's sort gives */
    if (luaL_getmetafield(L, 1, "__index") == LUA_TNIL)
      luaL_checktype(L, 1, LUA_TTABLE);
    lua_pop(L, 1);
  }
  if (!lua_isnoneornil(L, 2) && luaL_len(L, 1) > 1) /* Lua checks it only then */
    luaL_checktype(L, 2, LUA_TFUNCTION);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_pushcfunction(L, charged_less);
  }
  return call_original(L);
}

/* A reader of load (upvalue 1), charged for each piece it gives. */
static int charged_reader(lua_State *L)
{
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_call(L, 0, 1);
  if (lua_type(L, -1) == LUA_TSTRING)
    kr_budget_charge(L, rt_of(L), lua_rawlen(L, -1) >> KR_ALLOC_SHIFT);
  return 1;
}

/* load(chunk [, name [, mode [, env]]]): charged for the chunk's bytes, then
 * the sandbox's load (upvalue 1). */
static int charged_load(lua_State *L)
{
  if (lua_type(L, 1) != LUA_TSTRING)
    luaL_checktype(L, 1, LUA_TFUNCTION);
  if (lua_type(L, 1) == LUA_TSTRING) {
    kr_budget_charge(L, rt_of(L), lua_rawlen(L, 1) >> KR_ALLOC_SHIFT);
  } else if (lua_type(L, 1) == LUA_TFUNCTION) {
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, charged_reader, 1);
    lua_replace(L, 1);
  }
  return call_original(L);
}

static void wrap(lua_State *L, int idx, const char *name, lua_CFunction fn)
{
  idx = lua_absindex(L, idx);
  if (lua_getfield(L, idx, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, idx, name);
}

void kr_charge_open(lua_State *L)
{
  lua_pushglobaltable(L);
  wrap(L, -1, "print", charged_print);
  wrap(L, -1, "collectgarbage", charged_collect);
  wrap(L, -1, "load", charged_load);
  lua_pop(L, 1);
  if (lua_getglobal(L, "string") == LUA_TTABLE)
    wrap(L, -1, "rep", charged_rep);
  lua_pop(L, 1);
  if (lua_getglobal(L, "table") == LUA_TTABLE)
    wrap(L, -1, "sort", charged_sort);
  lua_pop(L, 1);
}
