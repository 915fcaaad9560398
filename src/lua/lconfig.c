/* The binding's own state: the configuration of the shared client
 * (kura.client()) that the command line or the host gives, kept in the Lua
 * state's registry under a key of this file's (a userdata that frees its
 * strings when the state closes). Never in the state's extra space: that is
 * the host's.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/client.h"
#include "lua/binding.h"
#include "runtime/runtime.h"

static const char config_key = 'c'; /* registry: the binding's kr_lua_config */

static char *dup_or_null(const char *s)
{
  return s && *s ? strdup(s) : NULL;
}

/* What src leaves open comes from the environment, by the core's one rule
 * (kr_client_config_env). */
static void config_copy(kr_lua_config *dst, const kr_lua_config *src)
{
  kr_lua_config none = {0};
  if (!src)
    src = &none;
  kr_client_config env = {.backend = src->backend, .default_ttl = src->default_ttl,
                          .momento_endpoint = src->momento_endpoint};
  char why[8];
  /* A MOMENTO_TTL_SECONDS that is no number of seconds leaves 0 (unset):
   * kura.client() then reads it again and says what is wrong. */
  if (kr_client_config_env(&env, why, sizeof why))
    env.default_ttl = 0;
  dst->backend = dup_or_null(env.backend);
  dst->momento_endpoint = dup_or_null(env.momento_endpoint);
  dst->store = dup_or_null(src->store);
  dst->store_max_memory = src->store_max_memory;
  dst->default_ttl = env.default_ttl;
}

static void config_free(kr_lua_config *c)
{
  free((char *)c->backend);
  free((char *)c->momento_endpoint);
  free((char *)c->store);
  memset(c, 0, sizeof *c);
}

static int config_gc(lua_State *L)
{
  config_free(lua_touserdata(L, 1));
  return 0;
}

/* The configuration userdata of L, made (from cfg, or the environment) when
 * there is none yet or cfg replaces it. */
static kr_lua_config *config_set(lua_State *L, const kr_lua_config *cfg)
{
  kr_lua_config *c;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &config_key) == LUA_TUSERDATA) {
    c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!cfg)
      return c;
    config_free(c);
  } else {
    lua_pop(L, 1);
    c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, config_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &config_key);
  }
  config_copy(c, cfg);
  if (cfg && ((cfg->backend && *cfg->backend && !c->backend) ||
              (cfg->store && *cfg->store && !c->store)))
    luaL_error(L, "kura: out of memory");
  return c;
}

const kr_lua_config *kr_lua_config_get(lua_State *L)
{
  const kr_lua_config *c = NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &config_key) == LUA_TUSERDATA)
    c = lua_touserdata(L, -1);
  lua_pop(L, 1); /* the registry still holds it */
  return c;
}

void kr_lua_config_init(lua_State *L)
{
  config_set(L, NULL);
}

void kr_lua_open(lua_State *L, const kr_lua_config *cfg)
{
  kr_runtime_join(L); /* before any object of the binding: see runtime.c */
  config_set(L, cfg ? cfg : &(kr_lua_config){0});
  luaL_requiref(L, "kura", luaopen_kura, 1);
  lua_pop(L, 1);
}

