/* The Lua functions of tasks and timers: kura.spawn, kura.sleep, kura.after,
 * kura.every, kura.run, kura.poll, kura.now, kura.set_exit_status (the tasks
 * and timers themselves are the runtime's: src/runtime/task.c, timeout.c).
 */
#include <lauxlib.h>
#include <uv.h>

#include "lua/binding.h"
#include "runtime/runtime.h"

static kr_runtime *check_runtime(lua_State *L, const char *what)
{
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (!rt || kr_runtime_closing(rt))
    luaL_error(L, "%s: no kura runtime runs this Lua state", what);
  return rt;
}

/* kura.spawn(fn, ...) -> task */
static int l_spawn(lua_State *L)
{
  kr_runtime *rt = check_runtime(L, "kura.spawn");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  kr_runtime_spawn(L, rt, lua_gettop(L) - 1);
  return 1;
}

/* kura.run(fn, ...) -> fn's results: fn as the main task, and the loop
 * until every task and timer has ended (a state kura does not own). */
static int l_run(lua_State *L)
{
  kr_runtime *rt = check_runtime(L, "kura.run");
  luaL_checktype(L, 1, LUA_TFUNCTION);
  return kr_runtime_run_function(L, rt, lua_gettop(L) - 1);
}

/* kura.poll([seconds]) -> tasks and timers still pending: one turn of the
 * loop, for a host that has a main loop of its own. */
static int l_poll(lua_State *L)
{
  kr_runtime *rt = check_runtime(L, "kura.poll");
  double s = lua_isnoneornil(L, 1) ? 0 : kr_check_seconds(L, 1, 0);
  lua_pushinteger(L, kr_runtime_poll(L, rt, s));
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
    {"every", l_every}, {"run", l_run}, {"poll", l_poll}, {"now", l_now},
    {"set_exit_status", l_set_exit_status},
    {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  kr_lua_open_log(L);
}
