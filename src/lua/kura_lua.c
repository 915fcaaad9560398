/* luaopen_kura: builds the `kura` module table from the binding's parts and
 * installs the searcher that makes the Lua library (lua/kura/NAME.lua)
 * require-able as kura.<name>.
 *
 * The library is compiled into the binary (kr_lualib), so an installed kura
 * depends on no file. For development a directory can take precedence:
 * KURA_LUA_PATH=DIR (DIR/kura/<name>.lua), or, with KURA_DEV=1, the source
 * tree the binary was built from. A module missing there still comes from
 * the embedded copy. Modules load on demand: start-up loads none of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua/binding.h"
#include "runtime/lualib.h"

static const char searcher_key = 's'; /* registry: searcher installed */

static const char *override_dir(void)
{
  const char *dir = getenv("KURA_LUA_PATH");
  if (dir && *dir)
    return dir;
#ifdef KURA_SOURCE_LUA_DIR
  const char *dev = getenv("KURA_DEV");
  if (dev && strcmp(dev, "1") == 0)
    return KURA_SOURCE_LUA_DIR;
#endif
  return NULL;
}

/* Tries DIR/kura/a/b.lua for "kura.a.b": pushes loader + file name and
 * returns 2, or returns 0 (pushes nothing) when there is no such file. */
static int search_dir(lua_State *L, const char *dir, const char *name)
{
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, dir);
  luaL_addchar(&b, '/');
  for (const char *p = name; *p; p++)
    luaL_addchar(&b, *p == '.' ? '/' : *p);
  luaL_addstring(&b, ".lua");
  luaL_pushresult(&b);
  const char *file = lua_tostring(L, -1);
  FILE *f = fopen(file, "r");
  if (!f) {
    lua_pop(L, 1);
    return 0;
  }
  fclose(f);
  if (luaL_loadfilex(L, file, "t") != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
                      lua_tostring(L, -1));
  lua_insert(L, -2);
  return 2;
}

static int search_embedded(lua_State *L, const char *name)
{
  for (const struct kr_lualib_entry *e = kr_lualib; e->name; e++) {
    if (strcmp(e->name, name) != 0)
      continue;
    const char *chunkname = lua_pushfstring(L, "=%s.lua", name);
    if (luaL_loadbufferx(L, e->src, e->len, chunkname, "t") != LUA_OK)
      return luaL_error(L, "error loading embedded module '%s':\n\t%s", name,
                        lua_tostring(L, -1));
    lua_pushfstring(L, "[embedded] %s.lua", name);
    return 2;
  }
  return 0;
}

/* A package.searchers entry for "kura.*" names. */
static int searcher(lua_State *L)
{
  const char *name = luaL_checkstring(L, 1);
  if (strncmp(name, "kura.", 5) != 0) {
    lua_pushliteral(L, "\n\tno kura module (not a kura.* name)");
    return 1;
  }
  const char *dir = override_dir();
  int n = dir ? search_dir(L, dir, name) : 0;
  if (n == 0)
    n = search_embedded(L, name);
  if (n == 0)
    lua_pushfstring(L, "\n\tno embedded module '%s'%s%s", name, dir ? " and none in " : "",
                    dir ? dir : "");
  return n ? n : 1;
}

static void install_searcher(lua_State *L)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &searcher_key) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &searcher_key);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, LUA_LOADLIBNAME) == LUA_TTABLE) {
    if (lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
      /* After package.preload's searcher, before the path searchers. */
      for (lua_Integer i = (lua_Integer)lua_rawlen(L, -1); i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
      }
      lua_pushcfunction(L, searcher);
      lua_rawseti(L, -2, 2);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

int luaopen_kura(lua_State *L)
{
  install_searcher(L);
  lua_createtable(L, 0, 24);
  kr_lua_open_runtime(L);
  kr_lua_open_json(L);
  kr_lua_open_client(L);
  kr_lua_open_http(L);
  kr_lua_open_histogram(L);
  kr_lua_open_refresh(L);
  kr_lua_open_signal(L);
  kr_lua_open_serve(L);
  lua_pushliteral(L, KURA_VERSION_STRING);
  lua_setfield(L, -2, "version");
  return 1;
}
