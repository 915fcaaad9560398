/* kura.log: leveled log lines on stderr,
 *   2026-11-25T14:00:00.123Z INFO message
 * kura.log.debug/info/warn/error(fmt, ...) format like string.format (a single
 * argument of any type is printed with tostring). The threshold comes from
 * KURA_LOG (debug, info, warn, error; default info), read when the module
 * opens; kura.log.level([name]) reads or changes it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua/binding.h"
#include "runtime/budget.h"

static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const level_tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};

/* The threshold lives in a full userdata shared as an upvalue, so that each
 * Lua state (runtime) has its own. */
static int *threshold(lua_State *L)
{
  return lua_touserdata(L, lua_upvalueindex(1));
}

static void timestamp(char *buf, size_t size)
{
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static int log_at(lua_State *L, int level)
{
  if (level < *threshold(L))
    return 0;
  int n = lua_gettop(L);
  if (n == 0) {
    lua_pushliteral(L, "");
  } else if (n == 1) {
    luaL_tolstring(L, 1, NULL);
  } else {
    lua_pushvalue(L, lua_upvalueindex(2)); /* string.format */
    lua_insert(L, 1);
    lua_call(L, n, 1);
  }
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  char ts[40];
  timestamp(ts, sizeof ts);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, ts);
  luaL_addchar(&b, ' ');
  luaL_addstring(&b, level_tags[level]);
  luaL_addchar(&b, ' ');
  luaL_addlstring(&b, msg, len);
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  const char *line = lua_tolstring(L, -1, &len);
  /* a write to the host's stderr: charged, so that a flood of lines ends
   * with the budget like a loop would */
  kr_budget_charge(L, kr_runtime_from_lua(L), KR_LINE_COST + (len >> KR_ALLOC_SHIFT));
  fwrite(line, 1, len, stderr); /* one write: lines from tasks do not mix */
  return 0;
}

static int l_debug(lua_State *L) { return log_at(L, 0); }
static int l_info(lua_State *L) { return log_at(L, 1); }
static int l_warn(lua_State *L) { return log_at(L, 2); }
static int l_error(lua_State *L) { return log_at(L, 3); }

/* kura.log.level([name]) -> the threshold's name (before any change). */
static int l_level(lua_State *L)
{
  int *th = threshold(L);
  lua_pushstring(L, level_names[*th]);
  if (!lua_isnoneornil(L, 1))
    *th = luaL_checkoption(L, 1, NULL, level_names);
  return 1;
}

static int level_from_env(void)
{
  const char *e = getenv("KURA_LOG");
  for (int i = 0; e && level_names[i]; i++)
    if (strcasecmp(e, level_names[i]) == 0)
      return i;
  return 1;
}

void kr_lua_open_log(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"debug", l_debug}, {"info", l_info}, {"warn", l_warn},
    {"error", l_error}, {"level", l_level}, {NULL, NULL}};
  lua_createtable(L, 0, 5);
  int *th = lua_newuserdatauv(L, sizeof *th, 0);
  *th = level_from_env();
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, LUA_STRLIBNAME);
  lua_getfield(L, -1, "format");
  lua_replace(L, -3);
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 2);
  lua_setfield(L, -2, "log");
}
