/* kura.histogram(): the core latency histogram (core/hist.h) as a userdata.
 * Lua sees seconds; the histogram keeps nanoseconds.
 *
 *   h:record(seconds)              h:record_n(seconds, n)
 *   h:record_corrected(seconds, expected_interval)
 *   h:record_since(t0) -> now      records kura.now() - t0, one clock read
 *   h:time(fn, ...) -> fn(...)     calls fn, records how long it took
 *   h:percentile(p)                p in 0..100, seconds
 *   h:percentiles{p1, p2, ...}     ascending or not, one pass when ascending
 *   h:count() h:mean() h:min() h:max()
 *   h:merge(other) h:reset()
 *
 * The counters live inside the userdata (about 270 KB), so Lua's memory
 * accounting sees them and no __gc is needed.
 */
#include <math.h>

#include <lauxlib.h>
#include <uv.h>

#include "core/hist.h"
#include "lua/binding.h"

#define HIST_MT "kura.histogram"
#define MAX_BATCH 64 /* percentiles computed per pass */

/* Every method has the metatable as upvalue 1: comparing with it is
 * cheaper than luaL_checkudata's lookup by name, on the hot path. */
static kr_hist *check_hist(lua_State *L, int idx)
{
  void *p = lua_touserdata(L, idx);
  if (p && lua_getmetatable(L, idx)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same)
      return p;
  }
  return luaL_checkudata(L, idx, HIST_MT); /* raises the usual message */
}

static uint64_t to_ns(lua_State *L, int idx)
{
  double s = luaL_checknumber(L, idx);
  luaL_argcheck(L, s >= 0 && s < 1e9, idx, "seconds must be >= 0 and finite");
  return (uint64_t)llround(s * 1e9);
}

static double to_seconds(uint64_t ns)
{
  return (double)ns / 1e9;
}

static int l_histogram(lua_State *L)
{
  void *mem = lua_newuserdatauv(L, kr_hist_bytes(), 0);
  kr_hist_init(mem);
  luaL_setmetatable(L, HIST_MT);
  return 1;
}

static int l_record(lua_State *L)
{
  kr_hist_record(check_hist(L, 1), to_ns(L, 2));
  return 0;
}

static int l_record_n(lua_State *L)
{
  kr_hist *h = check_hist(L, 1);
  uint64_t ns = to_ns(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  luaL_argcheck(L, n >= 0, 3, "count must be >= 0");
  kr_hist_record_n(h, ns, (uint64_t)n);
  return 0;
}

static int l_record_corrected(lua_State *L)
{
  kr_hist *h = check_hist(L, 1);
  kr_hist_record_corrected(h, to_ns(L, 2), to_ns(L, 3));
  return 0;
}

/* The clock is kura.now()'s: uv_hrtime() in seconds. A t0 from the future
 * (it cannot come from kura.now()) records 0. */
static int l_record_since(lua_State *L)
{
  kr_hist *h = check_hist(L, 1);
  double t0 = luaL_checknumber(L, 2);
  double now = (double)uv_hrtime() / 1e9;
  double d = now - t0;
  kr_hist_record(h, d > 0 && d < 1e9 ? (uint64_t)llround(d * 1e9) : 0);
  lua_pushnumber(L, now);
  return 1;
}

/* After fn returned (directly or after the task was resumed): record. */
static int time_done(lua_State *L, int status, lua_KContext ctx)
{
  (void)status;
  uint64_t t0 = (uint64_t)ctx;
  kr_hist_record(lua_touserdata(L, 1), uv_hrtime() - t0);
  return lua_gettop(L) - 1;
}

/* h:time(fn, ...) -> fn(...): calls fn and records how long it took. One
 * call from Lua instead of kura.now() + fn + h:record_since(); fn may
 * suspend the task (a remote client) and is timed until it returns. */
static int l_time(lua_State *L)
{
  check_hist(L, 1);
  luaL_checkany(L, 2);
  uint64_t t0 = uv_hrtime();
  lua_callk(L, lua_gettop(L) - 2, LUA_MULTRET, (lua_KContext)t0, time_done);
  return time_done(L, LUA_OK, (lua_KContext)t0);
}

static double check_p(lua_State *L, int idx)
{
  double p = luaL_checknumber(L, idx);
  luaL_argcheck(L, p >= 0 && p <= 100, idx, "percentile must be in 0..100");
  return p;
}

static int l_percentile(lua_State *L)
{
  kr_hist *h = check_hist(L, 1);
  lua_pushnumber(L, to_seconds(kr_hist_percentile(h, check_p(L, 2))));
  return 1;
}

/* h:percentiles(list) -> array of seconds, in the order of list. */
static int l_percentiles(lua_State *L)
{
  kr_hist *h = check_hist(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  lua_createtable(L, (int)(n > 0 ? n : 0), 0);
  double ps[MAX_BATCH];
  uint64_t vs[MAX_BATCH];
  for (lua_Integer i = 1; i <= n; i += MAX_BATCH) {
    size_t m = 0;
    for (lua_Integer j = i; j <= n && m < MAX_BATCH; j++, m++) {
      lua_geti(L, 2, j);
      ps[m] = check_p(L, -1);
      lua_pop(L, 1);
    }
    int sorted = 1;
    for (size_t k = 1; k < m; k++)
      sorted = sorted && ps[k - 1] <= ps[k];
    if (sorted)
      kr_hist_percentiles(h, ps, vs, m);
    else
      for (size_t k = 0; k < m; k++)
        vs[k] = kr_hist_percentile(h, ps[k]);
    for (size_t k = 0; k < m; k++) {
      lua_pushnumber(L, to_seconds(vs[k]));
      lua_seti(L, -2, i + (lua_Integer)k);
    }
  }
  return 1;
}

static int l_count(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)kr_hist_count(check_hist(L, 1)));
  return 1;
}

static int l_mean(lua_State *L)
{
  lua_pushnumber(L, kr_hist_mean(check_hist(L, 1)) / 1e9);
  return 1;
}

static int l_min(lua_State *L)
{
  lua_pushnumber(L, to_seconds(kr_hist_min(check_hist(L, 1))));
  return 1;
}

static int l_max(lua_State *L)
{
  lua_pushnumber(L, to_seconds(kr_hist_max(check_hist(L, 1))));
  return 1;
}

/* h:merge(other): other is a histogram, or the string h:dump() made of one
 * (in another Lua state, another thread). A string that is no dump raises. */
static int l_merge(lua_State *L)
{
  kr_hist *h = check_hist(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, 2, &len);
    if (kr_hist_merge_encoded(h, (const uint8_t *)s, len))
      luaL_argerror(L, 2, "not a histogram's dump (h:dump())");
  } else {
    kr_hist_merge(h, check_hist(L, 2));
  }
  lua_settop(L, 1);
  return 1;
}

/* h:dump() -> the histogram as a string, for h:merge in another state. */
static int l_dump(lua_State *L)
{
  kr_hist *h = check_hist(L, 1);
  luaL_Buffer b;
  size_t n = kr_hist_encode(h, (uint8_t *)luaL_buffinitsize(L, &b, kr_hist_encoded_max(h)));
  luaL_pushresultsize(&b, n);
  return 1;
}

static int l_reset(lua_State *L)
{
  kr_hist_reset(check_hist(L, 1));
  lua_settop(L, 1);
  return 1;
}

static int l_tostring(lua_State *L)
{
  kr_hist *h = check_hist(L, 1);
  lua_pushfstring(L, "kura.histogram (count %I, p50 %f s, max %f s)",
                  (lua_Integer)kr_hist_count(h), to_seconds(kr_hist_percentile(h, 50)),
                  to_seconds(kr_hist_max(h)));
  return 1;
}

void kr_lua_open_histogram(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"record", l_record}, {"record_n", l_record_n},
    {"record_corrected", l_record_corrected}, {"record_since", l_record_since},
    {"time", l_time},
    {"percentile", l_percentile}, {"percentiles", l_percentiles},
    {"count", l_count}, {"mean", l_mean}, {"min", l_min}, {"max", l_max},
    {"merge", l_merge}, {"dump", l_dump}, {"reset", l_reset}, {NULL, NULL}};
  if (luaL_newmetatable(L, HIST_MT)) {
    luaL_newlibtable(L, methods);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_tostring, 1);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_histogram);
  lua_setfield(L, -2, "histogram");
}
