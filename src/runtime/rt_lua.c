/* The runtime's Lua functions: kura.spawn, kura.sleep, kura.after,
 * kura.every, kura.now, kura.set_exit_status (tasks and timers themselves are
 * in task.c and timeout.c). */
#include <lauxlib.h>

#include "lua/binding.h"
#include "runtime/budget.h"
#include "runtime/rt_internal.h"

static kr_runtime *check_runtime(lua_State *L, const char *what)
{
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (!rt || rt->closing)
    luaL_error(L, "%s: no kura runtime runs this Lua state", what);
  return rt;
}

/* kura.spawn(fn, ...) -> task */
static int l_spawn(lua_State *L)
{
  kr_runtime *rt = check_runtime(L, "kura.spawn");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  kr_budget_charge(L, rt, KR_THREAD_COST);
  kr_task_spawn(rt, L, lua_gettop(L) - 1, 0);
  return 1;
}

/* kura.sleep([seconds]): suspends the task; 0 (or none) lets the other
 * ready tasks run. */
static int l_sleep(lua_State *L)
{
  double s = lua_isnoneornil(L, 1) ? 0 : kr_check_seconds(L, 1, 0);
  return kr_task_sleep(L, s);
}

static int l_after(lua_State *L)
{
  return kr_timer_start(L, 0);
}

static int l_every(lua_State *L)
{
  return kr_timer_start(L, 1);
}

/* kura.now(): monotonic seconds. */
static int l_now(lua_State *L)
{
  lua_pushnumber(L, (double)uv_hrtime() / 1e9);
  return 1;
}

/* kura.set_exit_status(n): the run ends with at least status n. */
static int l_set_exit_status(lua_State *L)
{
  kr_runtime *rt = check_runtime(L, "kura.set_exit_status");
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 255, 1, "must be in 0..255");
  kr_runtime_set_exit_status(rt, (int)n);
  return 0;
}

void kr_lua_open_runtime(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"spawn", l_spawn}, {"sleep", l_sleep}, {"after", l_after},
    {"every", l_every}, {"now", l_now}, {"set_exit_status", l_set_exit_status},
    {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  kr_lua_open_log(L);
}
