/* The sandbox's xpcall and coroutine functions: the places where Lua could
 * run a script's code with hooks off, out of the budget's reach (budget.c
 * says why hooks can be off).
 *
 * - xpcall: Lua calls the message handler where the error is raised, and an
 *   error raised by the count hook (a stop) is raised with hooks off: a
 *   handler written in Lua would then run with no budget at all. The
 *   sandbox's xpcall passes the handler through a C guard that hands a
 *   stop's error on untouched, without calling the script's handler.
 * - Coroutines: one that dies by an error raised from the hook keeps hooks
 *   off, and its pending to-be-closed variables would run unhooked when
 *   coroutine.close (or coroutine.wrap) closes it. Here every coroutine runs
 *   its function under a pcall of its own (a C body with a continuation, so
 *   that it still yields): the pcall turns hooks back on before it closes the
 *   variables, then the body raises the error again, with hooks on and
 *   nothing left to close.
 * - resume, wrap and close tell the runtime which thread runs (the allocator
 *   stops that one at once when a limit is passed), and raise the stop's
 *   error as soon as control comes back: no other thread of the script runs
 *   on after a stop.
 * create and wrap charge a step of the budget (KR_THREAD_COST): a script
 * cannot escape the budget through fresh coroutines that each stop just
 * short of a hook. Otherwise they behave as Lua 5.4's own (lcorolib.c):
 * same results, same messages.
 */
#include <lauxlib.h>

#include "runtime/budget.h"
#include "runtime/guard.h"
#include "runtime/rt_internal.h"

/* --- xpcall ------------------------------------------------------------------- */

/* The message handler xpcall installs: the script's (upvalue 1), except for
 * the error of a stop. */
static int guard_handler(lua_State *L)
{
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (rt && rt->stop)
    return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int xpcall_done(lua_State *L, int status, lua_KContext extra)
{
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

/* xpcall(f, msgh, ...) */
static int guarded_xpcall(lua_State *L)
{
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guard_handler, 1);
  lua_replace(L, 2);
  lua_pushboolean(L, 1);  /* the first result if f returns */
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);    /* [f, guard, true, f, args...] */
  return xpcall_done(L, lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, xpcall_done), 2);
}

/* --- the body of a coroutine --------------------------------------------------- */

static int body_done(lua_State *L, int status, lua_KContext ctx)
{
  (void)ctx;
  if (status != LUA_OK && status != LUA_YIELD)
    return lua_error(L); /* again, now with hooks on and nothing to close */
  return lua_gettop(L);
}

/* The function of every sandbox coroutine: the script's (upvalue 1) under a
 * pcall. */
static int body(lua_State *L)
{
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  return body_done(L, lua_pcallk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, 0, body_done), 0);
}

/* --- create, resume, wrap, close ------------------------------------------------- */

/* coroutine.create(f) */
static int co_create(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  kr_budget_charge(L, kr_runtime_from_lua(L), KR_THREAD_COST);
  lua_settop(L, 1);
  lua_pushcclosure(L, body, 1);
  lua_State *co = lua_newthread(L);
  lua_insert(L, -2);
  lua_xmove(L, co, 1);
  return 1;
}

/* Runs `co` for the call in progress (rt->running) during fn(co). */
static int run_on(lua_State *L, lua_State *co, int (*fn)(lua_State *co, lua_State *L, int n),
                  int n)
{
  kr_runtime *rt = kr_runtime_from_lua(L);
  lua_State *was = NULL;
  if (rt) {
    was = rt->running;
    rt->running = co;
    kr_budget_enter(rt, co);
  }
  int r = fn(co, L, n);
  if (rt) {
    rt->running = was;
    kr_budget_check(L, rt); /* a stop in co: L stops too */
  }
  return r;
}

static int do_resume(lua_State *co, lua_State *L, int narg)
{
  int nres = 0, st = lua_resume(co, L, narg, &nres);
  return st == LUA_OK || st == LUA_YIELD ? nres : -1;
}

/* Resumes co with the narg values on top of L: the number of results moved
 * onto L, or -1 with the error on top of L. */
static int resume(lua_State *L, lua_State *co, int narg)
{
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  int nres = run_on(L, co, do_resume, narg);
  if (nres < 0) {
    lua_xmove(co, L, 1);
    return -1;
  }
  if (!lua_checkstack(L, nres + 1)) {
    lua_pop(co, nres);
    lua_pushliteral(L, "too many results to resume");
    return -1;
  }
  lua_xmove(co, L, nres);
  return nres;
}

/* coroutine.resume(co, ...) */
static int co_resume(lua_State *L)
{
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "thread");
  int n = resume(L, co, lua_gettop(L) - 1);
  if (n < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(n + 1));
  return n + 1;
}

static int do_close(lua_State *co, lua_State *L, int n)
{
  (void)L, (void)n;
  return lua_resetthread(co);
}

/* The function coroutine.wrap returns. */
static int wrap_call(lua_State *L)
{
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int n = resume(L, co, lua_gettop(L));
  if (n >= 0)
    return n;
  int st = lua_status(co);
  if (st != LUA_OK && st != LUA_YIELD) { /* it died: close it */
    st = run_on(L, co, do_close, 0);
    lua_xmove(co, L, 1);
  }
  if (st != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

/* coroutine.wrap(f) */
static int co_wrap(lua_State *L)
{
  co_create(L);
  lua_pushcclosure(L, wrap_call, 1);
  return 1;
}

enum { CO_RUNNING, CO_DEAD, CO_SUSPENDED, CO_NORMAL };

static int status_of(lua_State *L, lua_State *co)
{
  lua_Debug ar;
  if (L == co)
    return CO_RUNNING;
  if (lua_status(co) == LUA_YIELD)
    return CO_SUSPENDED;
  if (lua_status(co) != LUA_OK)
    return CO_DEAD;
  if (lua_getstack(co, 0, &ar))
    return CO_NORMAL;
  return lua_gettop(co) == 0 ? CO_DEAD : CO_SUSPENDED;
}

/* coroutine.close(co) */
static int co_close(lua_State *L)
{
  static const char *const names[] = {"running", "dead", "suspended", "normal"};
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "thread");
  kr_budget_check(L, kr_runtime_from_lua(L));
  int st = status_of(L, co);
  if (st != CO_DEAD && st != CO_SUSPENDED)
    return luaL_error(L, "cannot close a %s coroutine", names[st]);
  if (run_on(L, co, do_close, 0) == LUA_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1);
  return 2;
}

void kr_guard_open(lua_State *L)
{
  static const luaL_Reg co_fns[] = {
    {"create", co_create}, {"resume", co_resume}, {"wrap", co_wrap},
    {"close", co_close}, {NULL, NULL}};
  lua_pushcfunction(L, guarded_xpcall);
  lua_setglobal(L, "xpcall");
  if (lua_getglobal(L, "coroutine") == LUA_TTABLE)
    luaL_setfuncs(L, co_fns, 0);
  lua_pop(L, 1);
}
