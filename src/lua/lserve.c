/* kura.serve: what a `kura serve` script configures, and the bridge from the
 * server's miss hook (core/serve/serve.h) to Lua.
 *
 *   kura.serve.on_miss = function(cache, key) ... return value [, ttl] end
 *
 * Each hook call runs on_miss(cache, key) in a task of its own (so it may
 * wait on kura.http, kura.sleep or the cache), protected: an error, or a
 * result that is not a string, a number or nil (or a bad ttl), fails the
 * waiting gets with INTERNAL_SERVER_ERROR and is printed on stderr. nil is
 * a miss. The value is stored for ttl seconds (nil: the client's default).
 *
 * The hook's promise (done is called once, always) is kept by a registry-
 * anchored userdata that lists the calls in progress: when the Lua state
 * closes with some still running, its __gc completes them with
 * KURA_ECANCELLED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/client.h"
#include "lua/binding.h"
#include "runtime/runtime.h"

#define STATE_NAME "kura.serve.state"
#define NUMBUF 48

static const char state_key = 's'; /* registry: the calls in progress */

typedef struct miss_call {
  kr_serve_miss_done done;
  void *done_ud;
  struct miss_call *prev, *next;
} miss_call;

typedef struct serve_state {
  miss_call *calls;  /* in progress */
} serve_state;

static void call_unlink(serve_state *st, miss_call *m)
{
  if (m->prev)
    m->prev->next = m->next;
  else
    st->calls = m->next;
  if (m->next)
    m->next->prev = m->prev;
}

static serve_state *get_state(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key);
  serve_state *st = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return st;
}

/* Completes m exactly once and frees it. */
static void finish(lua_State *L, miss_call *m, int err, const char *msg, const void *val,
                   size_t vlen, uint64_t ttl_ms)
{
  call_unlink(get_state(L), m);
  kr_serve_miss_done done = m->done;
  void *ud = m->done_ud;
  free(m);
  done(ud, err, msg, val, vlen, ttl_ms);
}

static int state_gc(lua_State *L)
{
  serve_state *st = luaL_checkudata(L, 1, STATE_NAME);
  while (st->calls) {
    miss_call *m = st->calls;
    st->calls = m->next;
    m->done(m->done_ud, KURA_ECANCELLED, "kura serve is shutting down", NULL, 0, 0);
    free(m);
  }
  return 0;
}

/* --- the task ---------------------------------------------------------------------- */

static void report(lua_State *L, miss_call *m, const char *why)
{
  char msg[512];
  snprintf(msg, sizeof msg, "kura.serve.on_miss failed: %s", why);
  fprintf(stderr, "kura serve: %s\n", msg);
  finish(L, m, KURA_EINTERNAL, msg, NULL, 0, 0);
}

/* on_miss returned (its value and ttl at 4 and 5) or raised. */
static int miss_task_done(lua_State *L, int status, lua_KContext ctx)
{
  miss_call *m = (miss_call *)ctx;
  if (status != LUA_OK && status != LUA_YIELD) {
    report(L, m, luaL_tolstring(L, -1, NULL));
    return 0;
  }
  int t = lua_type(L, 4);
  size_t vlen = 0;
  const char *val = NULL;
  char num[NUMBUF];
  if (t == LUA_TSTRING) {
    val = lua_tolstring(L, 4, &vlen);
  } else if (t == LUA_TNUMBER) {
    if (lua_isinteger(L, 4))
      snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, 4));
    else
      snprintf(num, sizeof num, LUA_NUMBER_FMT, (LUAI_UACNUMBER)lua_tonumber(L, 4));
    val = num;
    vlen = strlen(num);
  } else if (t != LUA_TNIL && t != LUA_TNONE) {
    report(L, m, lua_pushfstring(L, "it returned a %s (a string, a number or nil expected)",
                                 luaL_typename(L, 4)));
    return 0;
  }
  uint64_t ttl_ms = 0;
  if (val && !lua_isnoneornil(L, 5) &&
      (!lua_isnumber(L, 5) || kr_seconds_to_ms(lua_tonumber(L, 5), &ttl_ms) != 0)) {
    report(L, m, "its ttl must be a positive number of seconds (or nil)");
    return 0;
  }
  finish(L, m, 0, NULL, val, vlen, ttl_ms);
  return 0;
}

static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

/* The task's body: (fn, cache, key) with the call as upvalue 1. A yieldable
 * pcall, so on_miss may wait. */
static int miss_task(lua_State *L)
{
  miss_call *m = lua_touserdata(L, lua_upvalueindex(1));
  lua_settop(L, 3);
  lua_pushcfunction(L, traceback);
  lua_insert(L, 1); /* handler, fn, cache, key */
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 4);
  lua_remove(L, 2); /* handler, cache, key, fn, cache, key */
  int status = lua_pcallk(L, 2, 2, 1, (lua_KContext)m, miss_task_done);
  return miss_task_done(L, status, (lua_KContext)m);
}

/* --- the hook ------------------------------------------------------------------------ */

/* Pushes kura.serve.on_miss (or nil). */
static int push_on_miss(lua_State *L)
{
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "kura");
  lua_remove(L, -2);
  if (lua_type(L, -1) != LUA_TTABLE || lua_getfield(L, -1, "serve") != LUA_TTABLE) {
    lua_pop(L, lua_type(L, -1) == LUA_TTABLE ? 2 : 1);
    lua_pushnil(L);
    return LUA_TNIL;
  }
  lua_getfield(L, -1, "on_miss");
  lua_replace(L, -3);
  lua_pop(L, 1);
  return lua_type(L, -1);
}

/* Protected: spawns miss_task(fn, cache, key) with kura.spawn. */
static int spawn_miss(lua_State *L)
{
  miss_call *m = lua_touserdata(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "kura");
  lua_getfield(L, -1, "spawn");
  lua_pushlightuserdata(L, m);
  lua_pushcclosure(L, miss_task, 1);
  lua_pushvalue(L, 2); /* fn */
  lua_pushvalue(L, 3); /* cache */
  lua_pushvalue(L, 4); /* key */
  lua_call(L, 4, 0);
  return 0;
}

void kr_lua_serve_miss(void *ud, const char *cache, size_t clen, const void *key, size_t klen,
                       kr_serve_miss_done done, void *done_ud)
{
  lua_State *L = ud;
  int top = lua_gettop(L);
  serve_state *st = get_state(L);
  miss_call *m = st ? calloc(1, sizeof *m) : NULL;
  if (!m) {
    done(done_ud, KURA_ENOMEM, "kura serve: out of memory", NULL, 0, 0);
    return;
  }
  m->done = done, m->done_ud = done_ud;
  m->next = st->calls;
  if (st->calls)
    st->calls->prev = m;
  st->calls = m;
  if (push_on_miss(L) != LUA_TFUNCTION) { /* no hook: a miss is a miss */
    lua_settop(L, top);
    finish(L, m, 0, NULL, NULL, 0, 0);
    return;
  }
  lua_pushcfunction(L, spawn_miss);
  lua_pushlightuserdata(L, m);
  lua_pushvalue(L, -3);
  lua_pushlstring(L, cache, clen);
  lua_pushlstring(L, key, klen);
  if (lua_pcall(L, 4, 0, 0) != LUA_OK)
    report(L, m, lua_tostring(L, -1));
  lua_settop(L, top);
}

void kr_lua_open_serve(lua_State *L)
{
  if (luaL_newmetatable(L, STATE_NAME)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key) == LUA_TNIL) {
    serve_state *st = lua_newuserdatauv(L, sizeof *st, 0);
    st->calls = NULL;
    luaL_setmetatable(L, STATE_NAME);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_setfield(L, -2, "serve");
}
