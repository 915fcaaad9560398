/* embed_call: what a host pays to call a Lua handler through kura_call,
 * printed beside a bare lua_pcall of the same function in a plain lua_State
 * (luaL_newstate), measured in the same run. Two shapes: an empty handler
 * with no arguments, and a handler that takes two integers and returns one
 * (on_tick(tick, dt) -> n). Also with the sandbox and an instruction budget,
 * which add a count hook. Goals: kura_call <= 1.5x the bare lua_pcall, and
 * <= 2x with the sandbox.
 *
 * Times are CPU time of the process (CLOCK_PROCESS_CPUTIME_ID), not wall
 * time, so that other work on a shared machine disturbs them less; each
 * figure is the best of several rounds, the three variants interleaved.
 *
 * kura_call_async's round trip (the call, then the loop turned until its
 * callback ran) is printed beside them too. With a backend URL (--backend,
 * e.g. a local Redis), the cost per call of a handler that makes one c:get
 * there, 50 in flight, called from C with kura_call_async, beside the same
 * gets made by 50 tasks of a Lua script (the Lua client's own cost).
 *
 * usage: embed_call [calls] [rounds]   (default 2000000 calls, best of 5)
 *        embed_call calls 1 VARIANT SHAPE   (one of them, for callgrind)
 *        embed_call --backend URL [calls] [rounds] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include <time.h>

#include "kura.h"

static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char handlers[] =
  "function on_empty() end\n"
  "function on_one() return 1 end\n"
  "function on_tick(tick, dt) return tick + dt end\n";

/* The floor: lua_getglobal + lua_pcall, the least a C host writes. */
static double bare(lua_State *L, long calls, int with_args)
{
  long sum = 0;
  double t0 = cpu_now();
  for (long i = 0; i < calls; i++) {
    if (with_args) {
      lua_getglobal(L, "on_tick");
      lua_pushinteger(L, i);
      lua_pushinteger(L, 1);
      if (lua_pcall(L, 2, 1, 0) != LUA_OK)
        return -1;
      sum += (long)lua_tointeger(L, -1);
      lua_pop(L, 1);
    } else {
      lua_getglobal(L, "on_empty");
      if (lua_pcall(L, 0, 0, 0) != LUA_OK)
        return -1;
    }
  }
  double t = cpu_now() - t0;
  if (with_args && sum <= 0)
    return -1;
  return t;
}

static double via_kura(kura_runtime *rt, long calls, int with_args)
{
  long sum = 0;
  kura_value args[2], res;
  double t0 = cpu_now();
  for (long i = 0; i < calls; i++) {
    if (with_args) {
      args[0] = kura_int(i);
      args[1] = kura_int(1);
      if (kura_call(rt, "on_tick", args, 2, &res, 1) != KURA_OK)
        return -1;
      sum += (long)res.i;
    } else if (kura_call(rt, "on_empty", NULL, 0, NULL, 0) != KURA_OK) {
      return -1;
    }
  }
  double t = cpu_now() - t0;
  if (with_args && sum <= 0)
    return -1;
  return t;
}

/* kura_call_async's round trip: each call answered before the next. */
static void on_answer(void *udata, int err, const kura_value *res, int nres)
{
  long *sum = udata;
  if (err == KURA_OK && nres == 1)
    *sum += res[0].type == KURA_TINT ? (long)res[0].i : 1;
  else
    *sum = -1000000000L;
}

static double via_async(kura_runtime *rt, long calls, int with_args)
{
  long sum = 0, want = 0;
  kura_value args[2];
  double t0 = cpu_now();
  for (long i = 0; i < calls; i++) {
    long before = sum;
    args[0] = kura_int(i);
    args[1] = kura_int(1);
    if (kura_call_async(rt, with_args ? "on_tick" : "on_one", args, with_args ? 2 : 0,
                        on_answer, &sum) != KURA_OK)
      return -1;
    while (sum == before) /* answered already: the handler does not wait */
      kura_tick(rt);
    want += with_args ? i + 1 : 1;
  }
  double t = cpu_now() - t0;
  return sum == want ? t : -1;
}

static kura_runtime *runtime(int sandbox)
{
  kura_options o = {0};
  o.sandbox = sandbox;
  o.instruction_budget = sandbox ? 1000000 : 0;
  o.memory_limit = sandbox ? 64u << 20 : 0;
  kura_runtime *rt = NULL;
  if (kura_runtime_new(&o, &rt) != KURA_OK || kura_load_string(rt, handlers, "=bench") != KURA_OK) {
    fprintf(stderr, "embed_call: %s\n", rt ? kura_errmsg(rt) : "no runtime");
    exit(1);
  }
  return rt;
}

static void row(const char *name, double secs, long calls, double floor_ns)
{
  double ns = secs * 1e9 / (double)calls;
  printf("  %-34s %8.1f ns/call %8.2f Mcalls/s", name, ns, (double)calls / secs / 1e6);
  if (floor_ns > 0)
    printf("   %.2fx the bare lua_pcall", ns / floor_ns);
  printf("\n");
}

static double best(double a, double b)
{
  return a < 0 ? b : (b < a ? b : a);
}

/* One variant (0 bare, 1 kura_call, 2 sandboxed) and shape, once: for
 * counting instructions under callgrind (embed_call.sh --instructions). */
static int only(lua_State *L, long calls, int variant, int shape)
{
  kura_runtime *rt = variant ? runtime(variant == 2) : NULL;
  double t = rt ? via_kura(rt, calls, shape) : bare(L, calls, shape);
  kura_runtime_free(rt);
  return t < 0;
}

/* --- on a remote backend ------------------------------------------------ */

static const char remote_handlers[] =
  "local c = assert(kura.client())\n"
  "c:create_cache('bench-embed')\n"
  "assert(c:set('bench-embed', 'k', 'v'))\n"
  "function on_get() return c:get('bench-embed', 'k') end\n"
  "function lua_gets(tasks, n)\n"
  "  local ts = {}\n"
  "  for i = 1, tasks do\n"
  "    ts[i] = kura.spawn(function() for _ = 1, n do assert(c:get('bench-embed', 'k')) end end)\n"
  "  end\n"
  "  for i = 1, tasks do ts[i]:join() end\n"
  "  return true\n"
  "end\n";

enum { IN_FLIGHT = 50 };

/* calls of on_get from C, IN_FLIGHT at a time: CPU seconds. */
static double remote_async(kura_runtime *rt, long calls)
{
  long done = 0, issued = 0;
  double t0 = cpu_now();
  while (done < calls) {
    while (issued - done < IN_FLIGHT && issued < calls) {
      if (kura_call_async(rt, "on_get", NULL, 0, on_answer, &done) != KURA_OK)
        return -1;
      issued++;
    }
    kura_tick(rt);
    if (done < 0)
      return -1;
  }
  return cpu_now() - t0;
}

/* The same gets from IN_FLIGHT tasks of the script: CPU seconds. */
static double remote_lua(kura_runtime *rt, long calls)
{
  kura_value args[2] = {kura_int(IN_FLIGHT), kura_int(calls / IN_FLIGHT)};
  long done = 0;
  double t0 = cpu_now();
  if (kura_call_async(rt, "lua_gets", args, 2, on_answer, &done) != KURA_OK)
    return -1;
  while (done == 0)
    kura_tick(rt);
  return done > 0 ? cpu_now() - t0 : -1;
}

static int remote(const char *backend, long calls, int rounds)
{
  kura_options o = {0};
  o.backend = backend;
  kura_runtime *rt = NULL;
  if (kura_runtime_new(&o, &rt) != KURA_OK ||
      kura_load_string(rt, remote_handlers, "=remote") != KURA_OK) {
    fprintf(stderr, "embed_call: %s\n", rt ? kura_errmsg(rt) : "no runtime");
    return 1;
  }
  double ta = -1, tl = -1;
  for (int r = 0; r < rounds; r++) {
    ta = best(ta, remote_async(rt, calls));
    tl = best(tl, remote_lua(rt, calls));
  }
  kura_runtime_free(rt);
  if (ta < 0 || tl < 0) {
    fprintf(stderr, "embed_call: a call failed\n");
    return 1;
  }
  printf("a handler making one c:get on %s, %d in flight, %ld calls, best of %d (CPU):\n",
         backend, IN_FLIGHT, calls, rounds);
  double lua_ns = tl * 1e9 / (double)calls;
  printf("  %-34s %8.1f ns/call\n", "c:get from 50 Lua tasks", lua_ns);
  printf("  %-34s %8.1f ns/call   %.2fx the Lua client's own\n", "kura_call_async(on_get)",
         ta * 1e9 / (double)calls, ta * 1e9 / (double)calls / lua_ns);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc > 2 && strcmp(argv[1], "--backend") == 0)
    return remote(argv[2], argc > 3 ? atol(argv[3]) : 200000, argc > 4 ? atoi(argv[4]) : 3);
  long calls = argc > 1 ? atol(argv[1]) : 2000000;
  int rounds = argc > 2 ? atoi(argv[2]) : 5;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, handlers) != LUA_OK)
    return 1;
  if (argc > 4)
    return only(L, calls, atoi(argv[3]), atoi(argv[4]));
  kura_runtime *plain = runtime(0), *boxed = runtime(1);
  printf("embed_call: %ld calls per measurement, best of %d rounds (kura %s, %s)\n", calls,
         rounds, kura_version(), LUA_RELEASE);
  for (int shape = 0; shape < 2; shape++) {
    double tb = -1, tk = -1, ts = -1, ta = -1;
    for (int r = 0; r < rounds; r++) {
      tb = best(tb, bare(L, calls, shape));
      tk = best(tk, via_kura(plain, calls, shape));
      ts = best(ts, via_kura(boxed, calls, shape));
      ta = best(ta, via_async(plain, calls / 4, shape));
    }
    if (tb < 0 || tk < 0 || ts < 0 || ta < 0) {
      fprintf(stderr, "embed_call: a call failed\n");
      return 1;
    }
    double floor_ns = tb * 1e9 / (double)calls;
    printf("%s\n", shape ? "on_tick(tick, dt) -> number (2 integer arguments, 1 result):"
                         : "on_empty() (no arguments, no results):");
    row("bare lua_getglobal + lua_pcall", tb, calls, 0);
    row("kura_call", tk, calls, floor_ns);
    row("kura_call, sandbox + budget + cap", ts, calls, floor_ns);
    row("kura_call_async round trip", ta, calls / 4, floor_ns);
  }
  kura_runtime_free(plain);
  kura_runtime_free(boxed);
  lua_close(L);
  return 0;
}
