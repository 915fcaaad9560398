/* The runtime's C API as the client binding uses it: suspending a task with
 * kr_task_prepare_wait and resuming it with kr_task_wake from a loop callback
 * or synchronously, the refusal to suspend where Lua cannot yield, exit
 * statuses, a borrowed loop, and memory accounting. This test links the
 * runtime and the core only (not the binding): the link itself shows that
 * the runtime does not depend on the layers above it. Its scripts get a
 * small `kura` table of the runtime's own task functions. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ktest.h"
#include "kura.h"
#include "runtime/runtime.h"

/* --- C functions that suspend the calling task -------------------------------- */

struct pending {
  uv_timer_t timer;
  kr_task *task;
  lua_Integer value;
};

static void pending_closed(uv_handle_t *h)
{
  free(h->data);
}

static void pending_fire(uv_timer_t *h)
{
  struct pending *p = h->data;
  lua_State *co = kr_task_state(p->task);
  lua_pushinteger(co, p->value);
  lua_pushliteral(co, "async");
  kr_task_wake(p->task, 2);
  uv_close((uv_handle_t *)&p->timer, pending_closed);
}

/* wait_async(ms, v) -> v, "async": completes later from a uv timer. */
static int wait_async(lua_State *L)
{
  lua_Integer ms = luaL_checkinteger(L, 1);
  lua_Integer v = luaL_checkinteger(L, 2);
  kr_task *t = kr_task_prepare_wait(L, "wait_async");
  kr_runtime *rt = kr_runtime_from_lua(L);
  struct pending *p = calloc(1, sizeof *p);
  p->task = t;
  p->value = v;
  p->timer.data = p;
  uv_timer_init(kr_runtime_loop(rt), &p->timer);
  uv_timer_start(&p->timer, pending_fire, (uint64_t)ms, 0);
  return lua_yield(L, 0);
}

/* wait_sync(v) -> v, "sync": the completion runs before the yield. */
static int wait_sync(lua_State *L)
{
  lua_Integer v = luaL_checkinteger(L, 1);
  kr_task *t = kr_task_prepare_wait(L, "wait_sync");
  lua_pushinteger(kr_task_state(t), v);
  lua_pushliteral(kr_task_state(t), "sync");
  kr_task_wake(t, 2);
  lua_pushliteral(kr_task_state(t), "second wake is dropped");
  kr_task_wake(t, 1);
  return lua_yield(L, 0);
}

/* --- the task functions of the runtime, without the binding ------------------- */

static int t_spawn(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  kr_runtime_spawn(L, kr_runtime_from_lua(L), lua_gettop(L) - 1);
  return 1;
}

static int t_sleep(lua_State *L)
{
  return kr_task_sleep(L, lua_isnoneornil(L, 1) ? 0 : kr_check_seconds(L, 1, 0));
}

static int t_set_exit_status(lua_State *L)
{
  kr_runtime_set_exit_status(kr_runtime_from_lua(L), (int)luaL_checkinteger(L, 1));
  return 0;
}

static kr_runtime *new_runtime(uv_loop_t *loop)
{
  static const luaL_Reg fns[] = {{"spawn", t_spawn}, {"sleep", t_sleep},
                                 {"set_exit_status", t_set_exit_status}, {NULL, NULL}};
  kr_runtime *rt = NULL;
  if (kr_runtime_new(loop, &rt) != KURA_OK)
    return NULL;
  lua_State *L = kr_runtime_lua(rt);
  lua_register(L, "wait_async", wait_async);
  lua_register(L, "wait_sync", wait_sync);
  luaL_newlib(L, fns);
  lua_setglobal(L, "kura");
  return rt;
}

static int run(const char *code)
{
  kr_runtime *rt = new_runtime(NULL);
  if (!rt)
    return -1;
  int status = kr_runtime_run_string(rt, code, "=test");
  kr_runtime_free(rt);
  return status;
}

/* --- tests ------------------------------------------------------------------------ */

KTEST(from_lua_finds_the_runtime)
{
  kr_runtime *rt = new_runtime(NULL);
  KCHECK(rt != NULL);
  lua_State *L = kr_runtime_lua(rt);
  KCHECK(kr_runtime_from_lua(L) == rt);
  lua_State *co = lua_newthread(L);
  KCHECK(kr_runtime_from_lua(co) == rt);
  lua_pop(L, 1);
  kr_runtime_free(rt);
}

KTEST(async_wake_returns_the_pushed_values)
{
  KCHECK_EQ(run("local v, how = wait_async(5, 7)\n"
                "assert(v == 7 and how == 'async')\n"
                "kura.set_exit_status(v == 7 and 0 or 9)"), 0);
}

KTEST(sync_wake_before_yield_and_double_wake)
{
  KCHECK_EQ(run("local v, how, extra = wait_sync(3)\n"
                "if v ~= 3 or how ~= 'sync' or extra ~= nil then kura.set_exit_status(9) end"),
            0);
}

KTEST(many_tasks_wait_at_once)
{
  KCHECK_EQ(run("local ts = {}\n"
                "for i = 1, 500 do ts[i] = kura.spawn(function() return (wait_async(i % 5, i)) end) end\n"
                "local sum = 0\n"
                "for i = 1, 500 do sum = sum + ts[i]:join() end\n"
                "if sum ~= 500 * 501 // 2 then kura.set_exit_status(9) end"),
            0);
}

KTEST(no_suspend_where_lua_cannot_yield)
{
  KCHECK_EQ(run("local ok, err = pcall(table.sort, {2, 1}, function(a, b) wait_sync(1) return a < b end)\n"
                "assert(not ok and err:find('wait_sync: cannot suspend here', 1, true), err)\n"
                "local co = coroutine.wrap(function() return pcall(wait_async, 1, 1) end)\n"
                "local ok2, err2 = co()\n"
                "assert(not ok2 and err2:find('not called from a kura task', 1, true), err2)"),
            0);
}

KTEST(outside_any_task_the_call_raises)
{
  kr_runtime *rt = new_runtime(NULL);
  KCHECK(rt != NULL);
  lua_State *L = kr_runtime_lua(rt);
  KCHECK(luaL_dostring(L, "return wait_sync(1)") != LUA_OK);
  KCHECK(strstr(lua_tostring(L, -1), "cannot suspend here") != NULL);
  lua_pop(L, 1);
  kr_runtime_free(rt);
}

KTEST(exit_statuses)
{
  KCHECK_EQ(run("local x = 1"), 0);
  KCHECK_EQ(run("error('uncaught')"), 1);
  KCHECK_EQ(run("kura.spawn(function() error('in a task') end)"), 1);
  KCHECK_EQ(run("local v, e = kura.spawn(function() error('x') end):join()"), 0);
  KCHECK_EQ(run("x = = 1"), 2);
}

KTEST(free_with_tasks_still_waiting)
{
  /* A runtime freed while a task waits on C: the pending completion must
   * not run afterwards, so the test drives only until the task is parked. */
  kr_runtime *rt = new_runtime(NULL);
  KCHECK(rt != NULL);
  lua_State *L = kr_runtime_lua(rt);
  KCHECK(luaL_dostring(L, "kura.spawn(function() kura.sleep(3600) end)") == LUA_OK);
  uv_run(kr_runtime_loop(rt), UV_RUN_NOWAIT);
  kr_runtime_free(rt);
}

KTEST(borrowed_loop_stays_usable)
{
  uv_loop_t loop;
  KCHECK_EQ(uv_loop_init(&loop), 0);
  kr_runtime *rt = new_runtime(&loop);
  KCHECK(rt != NULL);
  KCHECK(kr_runtime_loop(rt) == &loop);
  KCHECK_EQ(kr_runtime_run_string(rt, "kura.sleep(0.001) local v = wait_async(1, 2)", "=t"), 0);
  kr_runtime_free(rt);
  KCHECK_EQ(uv_loop_close(&loop), 0);
}

KTEST(lua_memory_is_counted)
{
  kr_runtime *rt = new_runtime(NULL);
  KCHECK(rt != NULL);
  size_t before = kr_runtime_lua_bytes(rt);
  KCHECK(before > 0);
  KCHECK(luaL_dostring(kr_runtime_lua(rt), "big = string.rep('x', 1 << 20)") == LUA_OK);
  KCHECK(kr_runtime_lua_bytes(rt) >= before + (1u << 20));
  kr_runtime_free(rt);
}

KTEST_MAIN(KENTRY(from_lua_finds_the_runtime), KENTRY(async_wake_returns_the_pushed_values),
           KENTRY(sync_wake_before_yield_and_double_wake), KENTRY(many_tasks_wait_at_once),
           KENTRY(no_suspend_where_lua_cannot_yield), KENTRY(outside_any_task_the_call_raises),
           KENTRY(exit_statuses), KENTRY(free_with_tasks_still_waiting),
           KENTRY(borrowed_loop_stays_usable), KENTRY(lua_memory_is_counted))
