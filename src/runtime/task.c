/* Tasks: coroutines scheduled on the loop. A task object (userdata
 * "kura.task") owns its coroutine; while the task has not finished a registry
 * reference anchors it, so a suspended task is never collected.
 *
 * Uncaught errors. A task that raises is "failed". If someone is waiting in
 * join() the error goes to them. Otherwise the error is kept: a later join()
 * still receives it, and it is printed (and makes the exit status 1) when the
 * task object is collected or, if it is still reachable, once the loop is
 * idle at the end of the run. Tasks that have no handle at all (the main
 * chunk, timer callbacks) print their error at once.
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "runtime/budget.h"
#include "runtime/rt_internal.h"

/* The cost, in instructions, of a resume beyond what it runs (for the bound
 * on one turn of the queue). */
#define KR_RESUME_COST 100

/* Registry key of a weak-valued table: task address -> failed, unjoined task. */
static const char failed_key = 'f';

/* --- the ready queue -------------------------------------------------------- */

static void enqueue(kr_runtime *rt, kr_task *t)
{
  t->state = KR_TASK_READY;
  t->next = NULL;
  if (rt->ready_tail)
    rt->ready_tail->next = t;
  else
    rt->ready_head = t;
  rt->ready_tail = t;
  if (!rt->queue_active && !rt->closing) {
    uv_idle_start(&rt->idle, kr_runtime_on_idle);
    uv_check_start(&rt->check, kr_runtime_on_check);
    rt->queue_active = 1;
  }
}

static kr_task *dequeue(kr_runtime *rt)
{
  kr_task *t = rt->ready_head;
  if (t) {
    rt->ready_head = t->next;
    if (!rt->ready_head)
      rt->ready_tail = NULL;
    t->next = NULL;
  }
  return t;
}

void kr_task_queue_drain(kr_runtime *rt)
{
  /* Only the tasks queued before this turn run now; the ones they wake run on
   * the next turn, so a task that keeps yielding cannot starve the loop.
   * With an instruction budget, a turn also ends once its resumes have spent
   * a budget's worth (kr_budget_turn_spent): the rest wait for the next
   * turn, so that one kura_tick stays bounded however many tasks a script
   * makes. */
  kr_task *last = rt->ready_tail;
  kr_task *t;
  kr_budget_turn_begin(rt);
  while (last && (t = dequeue(rt)) != NULL) {
    kr_task_resume(rt, t);
    if (t == last || kr_budget_turn_spent(rt))
      break;
  }
  if (!rt->ready_head && rt->queue_active) {
    uv_idle_stop(&rt->idle);
    uv_check_stop(&rt->check);
    rt->queue_active = 0;
  }
}

/* --- uncaught errors ---------------------------------------------------------- */

/* Prints the error of the task object at index idx of L, once. */
static void report(kr_task *t, lua_State *L, int idx)
{
  if (t->reported || t->joined)
    return;
  t->reported = 1;
  t->rt->uncaught++;
  lua_getiuservalue(L, idx, 2);
  fprintf(stderr, "kura: error in task: %s\n", lua_tostring(L, -1));
  fflush(stderr);
  lua_pop(L, 1);
}

void kr_task_report_unjoined(kr_runtime *rt)
{
  lua_State *L = rt->L;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &failed_key);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    kr_task *t = lua_touserdata(L, -1);
    report(t, L, lua_gettop(L));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int task_gc(lua_State *L)
{
  kr_task *t = lua_touserdata(L, 1);
  if (t->state == KR_TASK_FAILED)
    report(t, L, 1);
  return 0;
}

/* --- creating, running and finishing ------------------------------------------ */

/* The traceback of the error that ends the task running on L, kept as its
 * user value 2 for keep_error (the pcall of task_body unwinds the stack
 * before the task sees the error). */
static int stash_traceback(lua_State *L)
{
  kr_task *t = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
  luaL_traceback(L, L, NULL, 2); /* from the function that raised */
  lua_setiuservalue(L, -2, 2);
  return 0;
}

/* The message handler of task_body: the error object stays as it is. */
static int task_msgh(lua_State *L)
{
  kr_runtime *rt = kr_runtime_from_lua(L);
  kr_task *t = rt ? rt->current : NULL;
  lua_settop(L, 1);
  if (t && t->co == L && t->self_ref != LUA_NOREF) {
    lua_pushcfunction(L, stash_traceback);
    lua_pushlightuserdata(L, t);
    lua_pcall(L, 1, 0, 0); /* out of memory: no traceback, the error stays */
    lua_settop(L, 1);
  }
  return 1;
}

static int task_body_done(lua_State *L, int status, lua_KContext ctx)
{
  (void)ctx;
  if (status != LUA_OK && status != LUA_YIELD)
    return lua_error(L); /* again, with hooks on and nothing left to close */
  return lua_gettop(L) - 1;
}

/* The function every task's coroutine runs, with the task's function and
 * its arguments as arguments: the function under a pcall of its own, so that
 * an error raised by the count hook (budget.c), which leaves hooks off,
 * turns them back on before the task's to-be-closed variables run. */
static int task_body(lua_State *L)
{
  lua_pushcfunction(L, task_msgh);
  lua_insert(L, 1);
  int st = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 1, 0, task_body_done);
  return task_body_done(L, st, 0);
}

kr_task *kr_task_new(kr_runtime *rt, lua_State *L, int nargs, int detached)
{
  kr_task *t = lua_newuserdatauv(L, sizeof *t, 2);
  memset(t, 0, sizeof *t);
  t->rt = rt;
  t->self_ref = LUA_NOREF;
  t->detached = detached ? 1 : 0;
  kr_timeout_init(&t->sleep, NULL);
  luaL_setmetatable(L, KR_TASK_MT);
  t->co = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  lua_insert(L, -(nargs + 2));    /* the task below fn and its arguments */
  luaL_checkstack(t->co, nargs + 2, "kura.spawn");
  lua_pushcfunction(t->co, task_body);
  lua_xmove(L, t->co, nargs + 1); /* move fn + arguments onto the coroutine */
  lua_pushvalue(L, -1);
  t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->nargs = nargs + 1;           /* fn is task_body's first argument */
  t->state = KR_TASK_READY;
  rt->ntasks++;
  return t;
}

kr_task *kr_task_spawn(kr_runtime *rt, lua_State *L, int nargs, int detached)
{
  kr_task *t = kr_task_new(rt, L, nargs, detached);
  enqueue(rt, t);
  return t;
}

static int tostring_protected(lua_State *L)
{
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* The error object is on top of the task's coroutine: keeps
 * "message\nstack traceback:..." as user value 2 of the task at idx (the
 * traceback task_msgh kept there, or that of the coroutine). A message that
 * is not a string is turned into one by tostring, under the limits of the
 * resume that failed: if that was stopped, nothing of the script runs. */
static void keep_error(kr_runtime *rt, kr_task *t, int idx, int stopped)
{
  lua_State *L = rt->L;
  lua_xmove(t->co, L, 1);
  int ty = lua_type(L, -1);
  char why[96];
  if (stopped) /* the message names the limit, whatever the script raised */
    kr_budget_stop_message(rt, stopped, why, sizeof why);
  if (stopped && !(ty == LUA_TSTRING && strstr(lua_tostring(L, -1), why))) {
    lua_pushfstring(L, "%s: %s", why,
                    ty == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    lua_replace(L, -2);
  } else if (ty != LUA_TSTRING && ty != LUA_TNUMBER) {
    lua_State *was = rt->running;
    rt->running = L;
    lua_pushcfunction(L, tostring_protected);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushfstring(L, "(error object is a %s value)", lua_typename(L, ty));
    }
    rt->running = was;
  }
  if (lua_getiuservalue(L, idx, 2) == LUA_TSTRING) {
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  } else {
    lua_pop(L, 1);
    luaL_traceback(L, t->co, lua_tostring(L, -1), 0);
    lua_remove(L, -2);
  }
  lua_setiuservalue(L, idx, 2);
}

/* The task returned nres values (on top of its coroutine): keeps them as
 * user value 1 (one value as is, several in a table) in place of the
 * coroutine, which can then be collected while the task object lives on. */
static void keep_results(lua_State *L, kr_task *t, int idx, int nres)
{
  if (nres == 1) {
    lua_xmove(t->co, L, 1);
  } else if (nres == 0) {
    lua_pushnil(L);
  } else {
    lua_createtable(L, nres, 0);
    for (int i = 1; i <= nres; i++) {
      lua_pushvalue(t->co, i);
      lua_xmove(t->co, L, 1);
      lua_rawseti(L, -2, i);
    }
  }
  lua_setiuservalue(L, idx, 1);
  t->nres = nres;
}

/* Pushes what join() returns for a finished task (at idx of L) onto `to`;
 * returns how many values. */
int kr_task_outcome(kr_task *t, lua_State *L, int idx, lua_State *to)
{
  int n = 2;
  if (t->state == KR_TASK_DONE) {
    n = t->nres;
    luaL_checkstack(L, n + 1, "join");
    luaL_checkstack(to, n, "join");
    lua_getiuservalue(L, idx, 1);
    if (n > 1) {
      int tab = lua_gettop(L);
      for (int i = 1; i <= n; i++)
        lua_rawgeti(L, tab, i);
      lua_remove(L, tab);
    } else if (n == 0) {
      lua_pop(L, 1);
    }
  } else {
    t->joined = 1;
    lua_pushnil(L);
    lua_getiuservalue(L, idx, 2);
  }
  if (L != to)
    lua_xmove(L, to, n);
  return n;
}

static void wake_joiners(kr_runtime *rt, kr_task *t, int idx)
{
  while (t->joiners) {
    kr_task *j = t->joiners;
    t->joiners = j->next_joiner;
    j->next_joiner = NULL;
    kr_task_wake(j, kr_task_outcome(t, rt->L, idx, j->co));
  }
  t->joiners_tail = NULL;
}

/* A failed task keeps, beside its message (user value 2), the error object
 * itself when it is not a string (a table, say) as user value 1, for
 * kura.run to raise as it was raised; else nil. Pushes it onto L. */
static void push_error_object(lua_State *co, lua_State *L, int stopped)
{
  if (!stopped && !lua_isstring(co, -1) && lua_checkstack(co, 1)) {
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
  } else {
    lua_pushnil(L);
  }
}

static void finish(kr_runtime *rt, kr_task *t, int status, int nres, int stopped)
{
  lua_State *L = rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref); /* keeps t alive meanwhile */
  int idx = lua_gettop(L);
  if (status == LUA_OK) {
    t->state = KR_TASK_DONE;
    keep_results(L, t, idx, nres);
  } else {
    t->state = KR_TASK_FAILED;
    push_error_object(t->co, L, stopped);
    keep_error(rt, t, idx, stopped);
    lua_resetthread(t->co);
    lua_setiuservalue(L, idx, 1); /* in place of the coroutine, which can go */
  }
  t->co = NULL;
  wake_joiners(rt, t, idx);
  if (t->state == KR_TASK_FAILED && !t->joined) {
    if (t->detached) {
      report(t, L, idx);
    } else {
      lua_rawgetp(L, LUA_REGISTRYINDEX, &failed_key);
      lua_pushvalue(L, idx);
      lua_rawsetp(L, -2, t);
      lua_pop(L, 1);
    }
  }
  luaL_unref(L, LUA_REGISTRYINDEX, t->self_ref);
  t->self_ref = LUA_NOREF;
  rt->ntasks--;
  lua_settop(L, idx - 1);
}

void kr_task_resume(kr_runtime *rt, kr_task *t)
{
  int nargs = t->nargs, nres = 0;
  t->nargs = 0;
  t->state = KR_TASK_RUNNING;
  lua_State *was = rt->running;
  rt->current = t;
  rt->running = t->co;
  kr_budget_begin(rt, t->co); /* each resume gets the whole budget */
  int status = lua_resume(t->co, rt->L, nargs, &nres);
  rt->running = was;
  rt->current = NULL;
  rt->tick_used += rt->budget_used + KR_RESUME_COST;
  if (status == LUA_YIELD) {
    if (t->state == KR_TASK_RUNNING) {
      /* A plain coroutine.yield() in a task: give the others a turn. */
      lua_pop(t->co, nres);
      enqueue(rt, t);
    }
    return;
  }
  int stopped = kr_budget_stopped(rt);
  if (status == LUA_OK && stopped) {
    /* the task caught the stop's error and returned at once: still a stop */
    char why[96];
    lua_pop(t->co, nres);
    lua_pushstring(t->co, kr_budget_stop_message(rt, stopped, why, sizeof why));
    status = LUA_ERRRUN;
  }
  finish(rt, t, status, nres, status == LUA_OK ? 0 : stopped);
}

/* --- suspending and waking ------------------------------------------------------ */

kr_task *kr_task_prepare_wait(lua_State *L, const char *what)
{
  kr_runtime *rt = kr_runtime_from_lua(L);
  const char *why = NULL;
  if (!rt || rt->closing)
    why = "no kura runtime runs this Lua state";
  else if (!rt->current || rt->current->co != L)
    why = "not called from a kura task (a plain coroutine cannot suspend)";
  else if (!lua_isyieldable(L))
    why = "a C function (e.g. table.sort, a __gc or __tostring handler) is on the stack";
  if (why)
    luaL_error(L, "%s: cannot suspend here (not inside a task, or inside a "
                  "metamethod/C callback): %s", what, why);
  rt->current->state = KR_TASK_WAITING;
  return rt->current;
}

lua_State *kr_task_state(kr_task *t)
{
  return t->co;
}

void kr_task_wake(kr_task *t, int nres)
{
  kr_runtime *rt = t->rt;
  if (rt->closing || !t->co)
    return; /* the state is being closed, or the task has finished (a bug) */
  if (t->state != KR_TASK_WAITING) {
    lua_pop(t->co, nres); /* a second wake: drop its values, keep the first's */
    return;
  }
  t->nargs = nres;
  enqueue(rt, t);
}

static void sleep_fire(kr_runtime *rt, kr_timeout *to)
{
  kr_task *t = (kr_task *)((char *)to - offsetof(kr_task, sleep));
  (void)rt;
  kr_task_wake(t, 0);
}

int kr_task_sleep(lua_State *L, double seconds)
{
  kr_task *t = kr_task_prepare_wait(L, "kura.sleep");
  if (seconds > 0) {
    kr_timeout_init(&t->sleep, sleep_fire);
    if (kr_timeout_add(t->rt, &t->sleep, kr_deadline(seconds)) != 0) {
      t->state = KR_TASK_RUNNING;
      return luaL_error(L, "kura.sleep: out of memory");
    }
  } else {
    kr_task_wake(t, 0); /* sleep(0): back of the queue, behind the others */
  }
  return lua_yield(L, 0);
}

/* --- the task object -------------------------------------------------------------- */

int kr_task_join(lua_State *L)
{
  kr_task *t = luaL_checkudata(L, 1, KR_TASK_MT);
  if (t->state == KR_TASK_DONE || t->state == KR_TASK_FAILED)
    return kr_task_outcome(t, L, 1, L);
  if (t->rt->current == t)
    return luaL_error(L, "task:join: a task cannot join itself");
  kr_task *self = kr_task_prepare_wait(L, "task:join");
  self->next_joiner = NULL;
  if (t->joiners_tail)
    t->joiners_tail->next_joiner = self;
  else
    t->joiners = self;
  t->joiners_tail = self;
  return lua_yield(L, 0);
}

static int task_tostring(lua_State *L)
{
  static const char *const names[] = {"ready", "running", "waiting", "done", "failed"};
  kr_task *t = luaL_checkudata(L, 1, KR_TASK_MT);
  lua_pushfstring(L, "kura.task (%s): %p", names[t->state], (void *)t);
  return 1;
}

/* task:status() -> "ready" | "running" | "waiting" | "done" | "failed" */
static int task_status(lua_State *L)
{
  static const char *const names[] = {"ready", "running", "waiting", "done", "failed"};
  kr_task *t = luaL_checkudata(L, 1, KR_TASK_MT);
  lua_pushstring(L, names[t->state]);
  return 1;
}

void kr_task_open(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"join", kr_task_join}, {"status", task_status}, {NULL, NULL}};
  luaL_newmetatable(L, KR_TASK_MT);
  lua_pushcfunction(L, task_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, task_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &failed_key);
}

void kr_runtime_spawn(lua_State *L, kr_runtime *rt, int nargs)
{
  kr_budget_charge(L, rt, KR_THREAD_COST);
  kr_task_spawn(rt, L, nargs, 0);
}
