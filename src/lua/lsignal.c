/* Terminal and signal helpers for scripts that run long (load tests, bulk
 * loads): kura.isatty(fd) and kura.on_signal(name, fn).
 *
 *   local w = kura.on_signal("int", function(name) stop = true end)
 *   ...
 *   w:stop()
 *
 * While a watcher is active the signal no longer has its default effect
 * (Ctrl-C does not kill the process); fn(name) runs from the loop each time
 * the signal arrives, outside any task, so it must not suspend (it may set a
 * flag or kura.spawn a task). Its errors are printed and the run goes on.
 * A watcher does not keep the loop alive, and the last one stopped gives
 * the signal its default effect back. It is stopped when collected too.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <uv.h>

#include "lua/binding.h"
#include "runtime/runtime.h"

#define SIGWATCH_MT "kura.signal"

typedef struct sigwatch {
  uv_signal_t handle;  /* handle.data: this struct; freed in the close callback */
  lua_State *L;        /* the runtime's main state */
  int fn_ref;          /* registry: the Lua function */
  int self_ref;        /* registry: the userdata, while active */
  const char *name;    /* "int", "term", ... (static) */
} sigwatch;

static const struct {
  const char *name;
  int signum;
} signals[] = {
  {"int", SIGINT}, {"term", SIGTERM}, {"hup", SIGHUP}, {"usr1", SIGUSR1}, {"usr2", SIGUSR2},
};

static int find_signal(const char *s, const char **name)
{
  if (strncasecmp(s, "SIG", 3) == 0)
    s += 3;
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
    if (strcasecmp(s, signals[i].name) == 0) {
      *name = signals[i].name;
      return signals[i].signum;
    }
  }
  return 0;
}

static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

static void on_signal(uv_signal_t *h, int signum)
{
  (void)signum;
  sigwatch *w = h->data;
  lua_State *L = w->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, w->fn_ref);
  lua_pushstring(L, w->name);
  if (lua_pcall(L, 1, 0, top + 1) != LUA_OK)
    fprintf(stderr, "kura: error in the handler of signal %s: %s\n", w->name,
            lua_tostring(L, -1));
  lua_settop(L, top);
}

static void on_close(uv_handle_t *h)
{
  free(h->data);
}

/* Stops the watcher for good: releases the function and the anchor. */
static void watch_stop(lua_State *L, sigwatch **slot)
{
  sigwatch *w = *slot;
  if (!w)
    return;
  *slot = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, w->fn_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, w->self_ref);
  uv_close((uv_handle_t *)&w->handle, on_close);
}

static int l_stop(lua_State *L)
{
  watch_stop(L, luaL_checkudata(L, 1, SIGWATCH_MT));
  return 0;
}

/* kura.on_signal(name, fn) -> watcher, or nil, err when the loop refuses. */
static int l_on_signal(lua_State *L)
{
  const char *name = NULL;
  int signum = find_signal(luaL_checkstring(L, 1), &name);
  luaL_argcheck(L, signum != 0, 1, "unknown signal (int, term, hup, usr1, usr2)");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (!rt)
    return luaL_error(L, "kura.on_signal: no kura runtime runs this Lua state");
  sigwatch **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  luaL_setmetatable(L, SIGWATCH_MT);
  sigwatch *w = calloc(1, sizeof *w);
  if (!w)
    return luaL_error(L, "kura.on_signal: out of memory");
  uv_signal_init(kr_runtime_loop(rt), &w->handle);
  w->handle.data = w;
  w->L = kr_runtime_lua(rt);
  w->name = name;
  int rc = uv_signal_start(&w->handle, on_signal, signum);
  if (rc != 0) {
    uv_close((uv_handle_t *)&w->handle, on_close);
    lua_pushnil(L);
    lua_pushfstring(L, "kura.on_signal: %s", uv_strerror(rc));
    return 2;
  }
  uv_unref((uv_handle_t *)&w->handle);
  lua_pushvalue(L, 2);
  w->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  w->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  *slot = w;
  return 1;
}

/* kura.isatty(fd) -> boolean: whether fd (0, 1, 2, ...) is a terminal. */
static int l_isatty(lua_State *L)
{
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "not a file descriptor");
  lua_pushboolean(L, uv_guess_handle((uv_file)fd) == UV_TTY);
  return 1;
}

void kr_lua_open_signal(lua_State *L)
{
  if (luaL_newmetatable(L, SIGWATCH_MT)) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_stop);
    lua_setfield(L, -2, "stop");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_stop);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_stop);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_on_signal);
  lua_setfield(L, -2, "on_signal");
  lua_pushcfunction(L, l_isatty);
  lua_setfield(L, -2, "isatty");
}
