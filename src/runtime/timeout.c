/* Deadlines: one binary min-heap behind a single uv_timer_t serves every
 * sleeping task and every kura.after/every timer, so 10,000 sleepers cost
 * 10,000 heap slots rather than 10,000 libuv handles to open and close.
 * Equal deadlines fire in the order they were added.
 *
 * Timer objects (userdata "kura.timer") run their function as a new task
 * each time they fire. An active timer is anchored by a registry reference;
 * an inactive one may be collected and needs no cleanup (it holds no handle).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "runtime/budget.h"
#include "runtime/rt_internal.h"

/* --- the heap ---------------------------------------------------------------- */

static int before(const kr_timeout *a, const kr_timeout *b)
{
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(kr_runtime *rt, size_t i, kr_timeout *to)
{
  rt->heap[i] = to;
  to->idx = i;
}

static void sift_up(kr_runtime *rt, size_t i)
{
  kr_timeout *to = rt->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(to, rt->heap[parent]))
      break;
    place(rt, i, rt->heap[parent]);
    i = parent;
  }
  place(rt, i, to);
}

static void sift_down(kr_runtime *rt, size_t i)
{
  kr_timeout *to = rt->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= rt->heap_len)
      break;
    if (c + 1 < rt->heap_len && before(rt->heap[c + 1], rt->heap[c]))
      c++;
    if (!before(rt->heap[c], to))
      break;
    place(rt, i, rt->heap[c]);
    i = c;
  }
  place(rt, i, to);
}

/* Arms the uv timer for the earliest deadline (or stops it). */
static void arm(kr_runtime *rt)
{
  if (rt->heap_len == 0 || rt->closing) {
    uv_timer_stop(&rt->timer);
    return;
  }
  uint64_t now = uv_hrtime(), due = rt->heap[0]->due;
  uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
  uv_update_time(rt->loop); /* the timer counts from the loop's clock */
  uv_timer_start(&rt->timer, kr_timeout_on_timer, ms, 0);
}

void kr_timeout_init(kr_timeout *to, void (*fire)(kr_runtime *, kr_timeout *))
{
  to->due = 0;
  to->seq = 0;
  to->idx = SIZE_MAX;
  to->fire = fire;
}

int kr_timeout_add(kr_runtime *rt, kr_timeout *to, uint64_t due)
{
  if (rt->heap_len == rt->heap_cap) {
    size_t cap = rt->heap_cap ? rt->heap_cap * 2 : 64;
    kr_timeout **h = realloc(rt->heap, cap * sizeof *h);
    if (!h)
      return -1;
    rt->heap = h;
    rt->heap_cap = cap;
  }
  to->due = due;
  to->seq = rt->heap_seq++;
  rt->heap_len++;
  place(rt, rt->heap_len - 1, to);
  sift_up(rt, rt->heap_len - 1);
  if (to->idx == 0)
    arm(rt);
  return 0;
}

void kr_timeout_remove(kr_runtime *rt, kr_timeout *to)
{
  size_t i = to->idx;
  if (i == SIZE_MAX)
    return;
  to->idx = SIZE_MAX;
  kr_timeout *last = rt->heap[--rt->heap_len];
  if (last != to) {
    place(rt, i, last);
    sift_up(rt, i);
    sift_down(rt, last->idx);
  }
  if (i == 0)
    arm(rt);
}

static kr_timeout *pop(kr_runtime *rt)
{
  kr_timeout *top = rt->heap[0];
  kr_timeout *last = rt->heap[--rt->heap_len];
  top->idx = SIZE_MAX;
  if (rt->heap_len > 0) {
    place(rt, 0, last);
    sift_down(rt, 0);
  }
  return top;
}

void kr_timeout_on_timer(uv_timer_t *h)
{
  kr_runtime *rt = h->data;
  uint64_t now = uv_hrtime();
  uint64_t seq_end = rt->heap_seq; /* entries added by the callbacks wait */
  /* With an instruction budget, one turn fires at most as many as a budget
   * pays threads for (each starts a task); the rest fire on the next turn,
   * so that a script's thousands of timers cannot stretch one kura_tick. */
  uint64_t left = rt->budget ? rt->budget / KR_THREAD_COST + 1 : UINT64_MAX;
  while (left-- > 0 && rt->heap_len > 0 && rt->heap[0]->due <= now &&
         rt->heap[0]->seq < seq_end) {
    kr_timeout *to = pop(rt);
    to->fire(rt, to);
  }
  arm(rt);
}

uint64_t kr_deadline(double seconds)
{
  uint64_t now = uv_hrtime();
  double ns = seconds * 1e9;
  if (!(ns > 0))
    return now;
  if (ns >= (double)(UINT64_MAX - now))
    return UINT64_MAX;
  return now + (uint64_t)ns;
}

/* --- kura.after / kura.every ------------------------------------------------- */

typedef struct kr_timer {
  kr_runtime *rt;
  kr_timeout to;
  uint64_t interval;   /* nanoseconds; 0 for kura.after */
  int self_ref;        /* registry ref while active */
} kr_timer;

static void timer_deactivate(kr_runtime *rt, kr_timer *tm)
{
  if (tm->self_ref == LUA_NOREF)
    return;
  kr_timeout_remove(rt, &tm->to);
  luaL_unref(rt->L, LUA_REGISTRYINDEX, tm->self_ref);
  tm->self_ref = LUA_NOREF;
  rt->ntimers--;
}

/* Makes the task of a beat: fn(timer) on top of L. */
static int spawn_beat(lua_State *L)
{
  kr_task_spawn(kr_runtime_from_lua(L), L, 1, 1);
  return 1;
}

/* Starts fn(timer) as a task for the timer at idx of rt->L, unless the task
 * of its last beat has not run yet: a beat is skipped rather than piled up.
 * The task is made under the memory cap, as in a call (rt->running): the
 * timers a script made cannot make the host hold more. 0 when it could not
 * start (then the timer stops, with a message on stderr). */
static int beat(kr_runtime *rt, int idx)
{
  lua_State *L = rt->L;
  if (lua_getiuservalue(L, idx, 2) == LUA_TUSERDATA &&
      ((kr_task *)lua_touserdata(L, -1))->state == KR_TASK_READY) {
    lua_pop(L, 1);
    return 1;
  }
  lua_pop(L, 1);
  if (!kr_memory_room(L, rt)) { /* else each allocation would fail, at a collection each */
    fprintf(stderr, "kura: a timer stops: its task cannot start: the memory limit is reached\n");
    return 0;
  }
  lua_pushcfunction(L, spawn_beat);
  lua_getiuservalue(L, idx, 1); /* fn */
  lua_pushvalue(L, idx);        /* fn(timer) */
  lua_State *was = rt->running;
  rt->running = L;
  int st = lua_pcall(L, 2, 1, 0);
  rt->running = was;
  if (st != LUA_OK) {
    fprintf(stderr, "kura: a timer stops: its task cannot start: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  lua_setiuservalue(L, idx, 2); /* the task, to skip beats while it waits */
  return 1;
}

static void timer_fire(kr_runtime *rt, kr_timeout *to)
{
  kr_timer *tm = (kr_timer *)((char *)to - offsetof(kr_timer, to));
  lua_State *L = rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, tm->self_ref); /* the timer */
  if (beat(rt, lua_gettop(L)) && tm->interval > 0) {
    /* Keep the beat (no drift), but skip beats that were missed. */
    uint64_t now = uv_hrtime(), due = tm->to.due + tm->interval;
    if (due <= now)
      due = now + tm->interval;
    if (kr_timeout_add(rt, &tm->to, due) != 0)
      timer_deactivate(rt, tm);
  } else {
    timer_deactivate(rt, tm);
  }
  lua_pop(L, 1); /* the timer */
}

double kr_check_seconds(lua_State *L, int arg, double min)
{
  if (lua_type(L, arg) != LUA_TNUMBER)
    luaL_typeerror(L, arg, "number"); /* "5" too: a duration is a number */
  double s = lua_tonumber(L, arg);
  if (!(s >= min) || isinf(s))
    luaL_argerror(L, arg, lua_pushfstring(L, "seconds must be a finite number >= %s, got %s",
                                          min > 0 ? "0.001" : "0", lua_tostring(L, arg)));
  return s;
}

int kr_timer_start(lua_State *L, int repeat)
{
  kr_runtime *rt = kr_runtime_from_lua(L);
  double s = kr_check_seconds(L, 1, repeat ? 0.001 : 0);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  const char *name = repeat ? "kura.every" : "kura.after";
  if (!rt || rt->closing)
    return luaL_error(L, "%s: no kura runtime runs this Lua state", name);
  kr_timer *tm = lua_newuserdatauv(L, sizeof *tm, 2); /* fn, last beat's task */
  memset(tm, 0, sizeof *tm);
  tm->rt = rt;
  tm->self_ref = LUA_NOREF;
  tm->interval = repeat ? (uint64_t)(s * 1e9) : 0;
  kr_timeout_init(&tm->to, timer_fire);
  luaL_setmetatable(L, KR_TIMER_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  if (kr_timeout_add(rt, &tm->to, kr_deadline(s)) != 0)
    return luaL_error(L, "%s: out of memory", name);
  lua_pushvalue(L, -1);
  tm->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rt->ntimers++;
  return 1;
}

/* timer:stop(): no more runs; true if it was still active. */
static int timer_stop(lua_State *L)
{
  kr_timer *tm = luaL_checkudata(L, 1, KR_TIMER_MT);
  int active = tm->self_ref != LUA_NOREF;
  if (active && !tm->rt->closing)
    timer_deactivate(tm->rt, tm);
  lua_pushboolean(L, active);
  return 1;
}

/* timer:active(): true until stopped (or, for kura.after, fired). */
static int timer_active(lua_State *L)
{
  kr_timer *tm = luaL_checkudata(L, 1, KR_TIMER_MT);
  lua_pushboolean(L, tm->self_ref != LUA_NOREF);
  return 1;
}

void kr_timer_open(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"stop", timer_stop}, {"active", timer_active}, {NULL, NULL}};
  luaL_newmetatable(L, KR_TIMER_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
