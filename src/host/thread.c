/* kura.thread: runtimes in threads of their own, as wrk runs a Lua state per
 * thread. A thread gets a new runtime with its parent's backend, store and
 * default TTL (on the embedded store all threads share the named store, as
 * a game server's threads would), loads a chunk that defines main, calls
 * main(...) as a task (it may wait) and runs that runtime's loop until it is
 * idle. Values cross as copies: nil, booleans, numbers and strings (binary
 * safe) both ways; tables travel as strings (kura.json, h:dump()).
 *
 *   kura.thread.run(code, ...) -> thread      code: a Lua chunk defining main
 *   thread:join() -> main's results, or nil, err (waits without blocking
 *                    the loop: other tasks run meanwhile)
 *   kura.thread.cores() -> the CPUs this process may use
 *
 * Not in the sandbox. A runtime freed while its threads run waits for them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <uv.h>

#include "host/host.h"
#include "runtime/rt_internal.h"

#define THREAD_NAME "kura.thread"

struct kr_host_thread {
  kura_runtime *parent;
  uv_thread_t tid;
  uv_async_t done;               /* on the parent's loop */
  kura_options opts;             /* strings point into `strings` */
  char *strings;
  char *code;
  kura_value *args;              /* strings point into argbuf */
  int nargs;
  char *argbuf;
  int err;                       /* the outcome */
  char *msg;
  kura_value *res;
  int nres;
  char *resbuf;
  kr_task *waiter;
  unsigned started : 1, finished : 1, joined : 1, collected : 1, closed : 1;
  kr_host_thread *next;          /* the parent's live threads */
};

kr_host_thread **kr_host_thread_link(kr_host_thread *t)
{
  return &t->next;
}

/* --- values that cross ------------------------------------------------------ */

/* Copies n values; their strings into one buffer (*buf). 0 or KURA_ENOMEM. */
static int copy_values(const kura_value *in, int n, kura_value **out, char **buf)
{
  size_t bytes = 0;
  for (int i = 0; i < n; i++)
    if (in[i].type == KURA_TSTR)
      bytes += in[i].len + 1;
  *out = calloc((size_t)(n ? n : 1), sizeof **out);
  *buf = malloc(bytes ? bytes : 1);
  if (!*out || !*buf)
    return KURA_ENOMEM;
  char *at = *buf;
  for (int i = 0; i < n; i++) {
    (*out)[i] = in[i];
    if (in[i].type == KURA_TSTR) {
      memcpy(at, in[i].s, in[i].len);
      at[in[i].len] = '\0';
      (*out)[i].s = at;
      at += in[i].len + 1;
    } else if (in[i].type == KURA_TOTHER) {
      (*out)[i] = kura_nil(); /* a table or function: does not cross */
    }
  }
  return 0;
}

static void push_values(lua_State *L, const kura_value *v, int n)
{
  for (int i = 0; i < n; i++) {
    switch (v[i].type) {
    case KURA_TBOOL: lua_pushboolean(L, v[i].b); break;
    case KURA_TINT: lua_pushinteger(L, (lua_Integer)v[i].i); break;
    case KURA_TNUM: lua_pushnumber(L, (lua_Number)v[i].n); break;
    case KURA_TSTR: lua_pushlstring(L, v[i].s, v[i].len); break;
    default: lua_pushnil(L);
    }
  }
}

/* --- the thread -------------------------------------------------------------- */

/* A result that cannot be copied fails the join rather than arrive as nil. */
static int refuse_other(kr_host_thread *t, const kura_value *res, int nres)
{
  for (int i = 0; i < nres; i++)
    if (res[i].type == KURA_TOTHER) {
      char msg[160];
      snprintf(msg, sizeof msg, "main's result #%d is a table or a function, which does not "
                                "cross threads: encode it (kura.json.encode, h:dump())", i + 1);
      t->msg = strdup(msg);
      return KURA_EINVAL;
    }
  return KURA_OK;
}

static void on_main_done(void *udata, int err, const kura_value *res, int nres)
{
  kr_host_thread *t = udata;
  t->err = err ? err : refuse_other(t, res, nres);
  if (t->err)
    return;
  if (copy_values(res, nres, &t->res, &t->resbuf) == 0)
    t->nres = nres;
  else
    t->err = KURA_ENOMEM;
}

static void thread_main(void *arg)
{
  kr_host_thread *t = arg;
  kura_runtime *rt = NULL;
  t->err = KURA_EUNKNOWN;
  int rc = kura_runtime_new(&t->opts, &rt);
  if (rc == KURA_OK)
    rc = kura_load_string(rt, t->code, "=thread");
  if (rc == KURA_OK)
    rc = kura_call_async(rt, "main", t->args, t->nargs, on_main_done, t);
  if (rc == KURA_OK)
    rc = kura_run(rt);
  if (rc != KURA_OK || t->err != KURA_OK) {
    if (t->err == KURA_OK)
      t->err = rc;
    if (!t->msg)
      t->msg = strdup(rt ? kura_errmsg(rt) : "cannot create the thread's runtime");
  }
  kura_runtime_free(rt);
  uv_async_send(&t->done);
}

/* --- the parent's side ------------------------------------------------------- */

static void thread_free(kr_host_thread *t)
{
  free(t->strings);
  free(t->code);
  free(t->args);
  free(t->argbuf);
  free(t->msg);
  free(t->res);
  free(t->resbuf);
  free(t);
}

static void on_closed(uv_handle_t *h)
{
  kr_host_thread *t = h->data;
  t->closed = 1;
  if (t->collected)
    thread_free(t);
}

/* Pushes the thread's outcome; returns how many values. */
static int push_outcome(lua_State *L, kr_host_thread *t)
{
  t->joined = 1;
  if (t->err != KURA_OK) {
    lua_pushnil(L);
    lua_pushfstring(L, "thread: %s", t->msg ? t->msg : kura_strerror(t->err));
    return 2;
  }
  push_values(L, t->res, t->nres);
  return t->nres;
}

static void on_thread_done(uv_async_t *a)
{
  kr_host_thread *t = a->data;
  uv_thread_join(&t->tid);
  t->finished = 1;
  kr_host_thread_forget(t->parent, t);
  uv_close((uv_handle_t *)&t->done, on_closed);
  if (t->waiter) {
    kr_task *w = t->waiter;
    t->waiter = NULL;
    lua_State *co = kr_task_state(w);
    lua_checkstack(co, t->nres + 2);
    kr_task_wake(w, push_outcome(co, t));
  }
}

static kr_host_thread **check_thread(lua_State *L, int idx)
{
  return luaL_checkudata(L, idx, THREAD_NAME);
}

/* thread:join() */
static int l_join(lua_State *L)
{
  kr_host_thread *t = *check_thread(L, 1);
  if (t->joined || t->waiter)
    return luaL_error(L, "thread:join: this thread was joined already");
  if (t->finished)
    return push_outcome(L, t);
  t->waiter = kr_task_prepare_wait(L, "thread:join");
  return lua_yield(L, 0);
}

static int l_gc(lua_State *L)
{
  kr_host_thread *t = *check_thread(L, 1);
  if (!t)
    return 0;
  t->collected = 1;
  if (t->closed)
    thread_free(t);
  return 0;
}

/* The options, the code and arguments 1..n of L, copied for the thread. */
static int prepare(lua_State *L, int n, kr_host_thread *t, const kura_options *parent)
{
  size_t len;
  const char *code = luaL_checklstring(L, 1, &len);
  int nargs = n - 1;
  kura_value *args = calloc((size_t)(nargs > 0 ? nargs : 1), sizeof *args);
  if (!args)
    return KURA_ENOMEM;
  for (int i = 0; i < nargs; i++) {
    int idx = i + 2;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: args[i] = kura_nil(); break;
    case LUA_TBOOLEAN: args[i] = kura_bool(lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
      args[i] = lua_isinteger(L, idx) ? kura_int(lua_tointeger(L, idx))
                                      : kura_num(lua_tonumber(L, idx));
      break;
    case LUA_TSTRING: {
      size_t sl;
      const char *s = lua_tolstring(L, idx, &sl);
      args[i] = kura_lstr(s, sl);
      break;
    }
    default:
      free(args);
      return luaL_argerror(L, idx, "a thread takes nil, booleans, numbers and strings "
                                   "(encode tables, e.g. with kura.json.encode)");
    }
  }
  int rc = copy_values(args, nargs, &t->args, &t->argbuf);
  free(args);
  t->nargs = nargs;
  t->code = malloc(len + 1);
  if (rc || !t->code)
    return KURA_ENOMEM;
  memcpy(t->code, code, len);
  t->code[len] = '\0';
  return kr_host_options_copy(parent, &t->opts, &t->strings);
}

/* kura.thread.run(code, ...) -> thread */
static int l_run(lua_State *L)
{
  kura_runtime *k = lua_touserdata(L, lua_upvalueindex(1));
  int n = lua_gettop(L);
  kr_host_thread **ud = lua_newuserdatauv(L, sizeof *ud, 0); /* owns t from here on */
  *ud = NULL;
  luaL_setmetatable(L, THREAD_NAME);
  kr_host_thread *t = calloc(1, sizeof *t);
  if (!t)
    return luaL_error(L, "kura.thread.run: out of memory");
  t->closed = 1; /* no handle to close until it starts */
  *ud = t;
  if (prepare(L, n, t, kr_host_options(k)) != 0)
    return luaL_error(L, "kura.thread.run: out of memory");
  uv_loop_t *loop = kr_runtime_loop(kr_host_runtime(k));
  uv_async_init(loop, &t->done, on_thread_done);
  t->done.data = t;
  t->closed = 0;
  t->parent = k;
  if (uv_thread_create(&t->tid, thread_main, t) != 0) {
    t->finished = 1;
    uv_close((uv_handle_t *)&t->done, on_closed);
    return luaL_error(L, "kura.thread.run: cannot start a thread");
  }
  t->started = 1;
  kr_host_thread_remember(k, t);
  return 1;
}

/* kura.thread.cores() */
static int l_cores(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)uv_available_parallelism());
  return 1;
}

void kr_host_open_thread(lua_State *L, kura_runtime *k)
{
  static const luaL_Reg methods[] = {{"join", l_join}, {NULL, NULL}};
  if (luaL_newmetatable(L, THREAD_NAME)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_getglobal(L, "kura");
  lua_newtable(L);
  lua_pushlightuserdata(L, k);
  lua_pushcclosure(L, l_run, 1);
  lua_setfield(L, -2, "run");
  lua_pushcfunction(L, l_cores);
  lua_setfield(L, -2, "cores");
  lua_setfield(L, -2, "thread");
  lua_pop(L, 1);
}

/* kura_runtime_free: waits for the threads still running, then closes
 * their handles (the loop turns until they have closed). */
void kr_host_threads_end(kr_host_thread *list, uv_loop_t *loop)
{
  int open = 0;
  for (kr_host_thread *t = list; t; t = t->next) {
    uv_thread_join(&t->tid);
    t->finished = 1;
    t->waiter = NULL; /* its task ends with the runtime */
    uv_close((uv_handle_t *)&t->done, on_closed);
    open++;
  }
  for (int i = 0; open && i < 1000; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    open = 0;
    for (kr_host_thread *t = list; t; t = t->next)
      open += !t->closed;
  }
}
