/* Read-only library tables for the sandbox (readonly.h).
 *
 * Every script of a runtime sees the same library tables (string, table,
 * math, ..., kura and the kura.* modules) and the same string metatable, so
 * a script that could write to them would change what `("x"):upper()` or
 * kura.log does for every other script, and for the kura.* modules written
 * in Lua. In the sandbox each of these tables is reached only through a
 * proxy: an empty table whose metatable reads from the real one (__index),
 * refuses writes (__newindex), iterates the real one (__pairs), gives its
 * length (__len) and is itself protected (__metatable). rawset on a proxy is
 * refused too (the sandbox's rawset), or a script could shadow a library
 * function in the proxy; rawget and next see an empty table.
 *
 * getmetatable gives such a read-only view of every metatable that belongs
 * to C: the string metatable, those of userdata (their __gc is C's), and
 * those registered by name with luaL_newmetatable (kura's error tables).
 * A script's own metatables stay its own.
 */
#include <lauxlib.h>

#include "runtime/readonly.h"

/* Registry keys: a weak table metatable -> its view; the mark of proxies;
 * Lua's `next` as it was when the sandbox was set up. */
static const char views_key = 'v';
static const char mark_key = 'm';
static const char next_key = 'n';

static int refuse_write(lua_State *L)
{
  return luaL_error(L, "attempt to modify a read-only table (%s) in the sandbox",
                    lua_isstring(L, 2) ? lua_tostring(L, 2) : luaL_typename(L, 2));
}

/* __pairs: next, the real table, nil. */
static int proxy_pairs(lua_State *L)
{
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushnil(L);
  return 3;
}

static int proxy_len(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
  return 1;
}

void kr_readonly_push(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  lua_createtable(L, 0, 6);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, refuse_write);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &next_key);
  lua_pushcclosure(L, proxy_pairs, 2);
  lua_setfield(L, -2, "__pairs");
  lua_pushvalue(L, idx);
  lua_pushcclosure(L, proxy_len, 1);
  lua_setfield(L, -2, "__len");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &mark_key);
  lua_setmetatable(L, -2);
}

int kr_readonly_is(lua_State *L, int idx)
{
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
    return 0;
  int marked = lua_rawgetp(L, -1, &mark_key) != LUA_TNIL;
  lua_pop(L, 2);
  return marked;
}

void kr_readonly_replace(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  kr_readonly_push(L, idx);
  lua_replace(L, idx);
}

/* --- getmetatable, rawset ------------------------------------------------------- */

/* Whether the metatable on top of the stack belongs to C: registered by
 * luaL_newmetatable under its __name. */
static int registered(lua_State *L)
{
  if (lua_getfield(L, -1, "__name") != LUA_TSTRING) {
    lua_pop(L, 1);
    return 0;
  }
  lua_rawget(L, LUA_REGISTRYINDEX);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 1);
  return same;
}

/* Replaces the metatable on top by its read-only view (one per metatable). */
static void to_view(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &views_key);
  lua_pushvalue(L, -2);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pop(L, 1);
    kr_readonly_push(L, -2);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* getmetatable(v): Lua's (upvalue 1); a view when the metatable is C's. */
static int getmetatable_view(lua_State *L)
{
  luaL_checkany(L, 1);
  int ud = lua_type(L, 1) == LUA_TUSERDATA;
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 1, 1);
  if (lua_istable(L, 1) && !kr_readonly_is(L, 1) && (ud || registered(L)))
    to_view(L);
  return 1;
}

/* rawset(t, k, v): Lua's (upvalue 1), except on a read-only proxy. */
static int rawset_guarded(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  if (kr_readonly_is(L, 1))
    return refuse_write(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static void wrap_global(lua_State *L, const char *name, lua_CFunction fn)
{
  lua_getglobal(L, name);
  lua_pushcclosure(L, fn, 1);
  lua_setglobal(L, name);
}

/* The string metatable's view: its fields, with __index the proxy of the
 * string table; getmetatable("") gives it (through __metatable). */
static void protect_string_metatable(lua_State *L)
{
  lua_pushliteral(L, "");
  if (!lua_getmetatable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  int mt = lua_gettop(L);
  lua_newtable(L);
  for (lua_pushnil(L); lua_next(L, mt); lua_pop(L, 1)) {
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -5);
  }
  lua_getglobal(L, "string"); /* the proxy by now */
  lua_setfield(L, -2, "__index");
  kr_readonly_replace(L, -1);
  lua_setfield(L, mt, "__metatable");
  lua_pop(L, 2);
}

void kr_readonly_open(lua_State *L)
{
  lua_getglobal(L, "next");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &next_key);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &views_key);
  wrap_global(L, "getmetatable", getmetatable_view);
  wrap_global(L, "rawset", rawset_guarded);
}

void kr_readonly_strings(lua_State *L)
{
  protect_string_metatable(L);
}
