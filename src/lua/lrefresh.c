/* The hit path of kura.refresh.get_or_load in C.
 *
 * A loop of get_or_load hits with the same client, cache, loader and
 * options costs a c:get, one table read (the key's "safe" time: before it
 * no XFetch recomputation can fire) and the clock. Written in Lua, the
 * function's own call and the two calls it makes (c:get, kura.now) cost
 * half a c:get again on Debian's Lua. Here the arguments are compared by
 * address with those of the call that set_last recorded (the userdata keeps
 * them alive, so an address cannot be reused by another object meanwhile),
 * and the get goes to the client directly. Everything else (the first call,
 * misses, a safe time passed, a client that is not kura's or not
 * in-process, other arguments) goes to the Lua implementation, which keeps
 * all the rules.
 *
 * kura._refresh_hit(lua_get_or_load, checked) -> get_or_load, set_last
 *   get_or_load(c, cache, key, loader, opts): the fast path, else
 *     lua_get_or_load(...) or, once it made the get, checked(c, cache, key,
 *     loader, opts, v, err);
 *   set_last(c, cache, loader, opts, safe): the arguments the fast path
 *     accepts and the table key -> time (on kura.now()'s clock) before which
 *     a hit needs no check. */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "lua/binding.h"

enum { UP_LUA = 1, UP_CHECKED, UP_LAST };          /* get_or_load's upvalues */
enum { KEEP_C = 1, KEEP_CACHE, KEEP_LOADER, KEEP_OPTS, KEEP_SAFE, KEEP_N = KEEP_SAFE };

/* What set_last recorded; its user values keep those objects alive. */
typedef struct last {
  const void *c, *loader, *opts;  /* lua_topointer of each; c NULL: none */
  kr_client *const *slot;         /* where c keeps its kr_client */
  const char *cache;              /* the string's bytes, kept by KEEP_CACHE */
  size_t cache_len;
} last;

/* lua_callk's continuation: the callee's results are what we return. */
static int pass_results(lua_State *L, int status, lua_KContext base)
{
  (void)status;
  return lua_gettop(L) - (int)base;
}

/* Calls upvalue `fn` with the stack's values from 1 up (5 arguments, or 7
 * with v and err) and returns its results, across yields. */
static int call_lua(lua_State *L, int fn, int nargs)
{
  lua_pushvalue(L, lua_upvalueindex(fn));
  lua_insert(L, 1);
  lua_callk(L, nargs, LUA_MULTRET, 0, pass_results);
  return pass_results(L, LUA_OK, 0);
}

typedef struct got {
  lua_State *L;
  int nres;
  int hit;
} got;

static void on_get(void *udata, const kr_request *req, const kr_result *res)
{
  got *g = udata;
  g->nres = kr_lua_client_push_result(g->L, req, res);
  g->hit = !res->err && res->outcome == KURA_HIT;
}

/* 1 when the key (argument 3) has a safe time still to come. */
static int still_safe(lua_State *L)
{
  lua_getiuservalue(L, lua_upvalueindex(UP_LAST), KEEP_SAFE);
  lua_pushvalue(L, 3);
  int safe = lua_rawget(L, -2) == LUA_TNUMBER && (double)uv_hrtime() / 1e9 < lua_tonumber(L, -1);
  lua_pop(L, 2);
  return safe;
}

/* The recorded client when the arguments are the recorded ones, else NULL. */
static kr_client *matching(lua_State *L, const last *l, size_t *clen)
{
  const char *cache;
  if (!l->c || lua_topointer(L, 1) != l->c || lua_topointer(L, 4) != l->loader ||
      lua_topointer(L, 5) != l->opts || lua_type(L, 3) != LUA_TSTRING ||
      lua_type(L, 2) != LUA_TSTRING)
    return NULL;
  cache = lua_tolstring(L, 2, clen);
  if (cache != l->cache && !(*clen == l->cache_len && memcmp(cache, l->cache, *clen) == 0))
    return NULL;
  return *l->slot;
}

static int get_or_load(lua_State *L)
{
  lua_settop(L, 5);
  const last *l = lua_touserdata(L, lua_upvalueindex(UP_LAST));
  kr_request req = {.op = KR_OP_GET};
  kr_client *kc = matching(L, l, &req.cache_len);
  if (!kc || !kr_client_is_inline(kc))
    return call_lua(L, UP_LUA, 5);
  req.cache = l->cache;
  req.key = lua_tolstring(L, 3, &req.klen);
  got g = {L, 0, 0};
  if (kr_client_submit(kc, &req, on_get, &g) != 0)
    return call_lua(L, UP_LUA, 5); /* refused (a closed client): Lua says why */
  if (g.hit && still_safe(L))
    return 1;
  lua_settop(L, 7); /* v, err: what the get pushed (a value, nil, or nil and err) */
  return call_lua(L, UP_CHECKED, 7);
}

static int set_last(lua_State *L)
{
  last *l = lua_touserdata(L, lua_upvalueindex(1));
  lua_settop(L, KEEP_N);
  l->c = NULL;
  kr_client *const *slot = kr_lua_client_slot(L, 1);
  if (!slot || lua_type(L, 2) != LUA_TSTRING || lua_type(L, 5) != LUA_TTABLE)
    return 0; /* not a kura client (or no safe table): the Lua path serves it */
  l->slot = slot;
  l->cache = lua_tolstring(L, 2, &l->cache_len);
  l->loader = lua_topointer(L, 3);
  l->opts = lua_topointer(L, 4);
  const void *c = lua_topointer(L, 1);
  for (int i = KEEP_N; i >= 1; i--)
    lua_setiuservalue(L, lua_upvalueindex(1), i);
  l->c = c;
  return 0;
}

/* kura._refresh_hit(lua_get_or_load, checked) -> get_or_load, set_last */
static int refresh_hit(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  last *l = lua_newuserdatauv(L, sizeof *l, KEEP_N);
  l->c = NULL; /* nothing recorded: no call matches */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_pushcclosure(L, get_or_load, 3);
  lua_pushvalue(L, 3);
  lua_pushcclosure(L, set_last, 1);
  return 2;
}

void kr_lua_open_refresh(lua_State *L)
{
  lua_pushcfunction(L, refresh_hit);
  lua_setfield(L, -2, "_refresh_hit");
}
