/* The floor of "speed from Lua" (scripts/bench/lua_client.sh): a bare C
 * module whose get/set do nothing but one lookup in an open-addressing
 * string -> string hash table, called with the same Lua pattern as kura's
 * client (t:get(cache, key), t:set(cache, key, value), and through a handle
 * h:get(key), h:set(key, value)). What kura's client costs beyond this is
 * the price of its binding, its store and its semantics.
 *
 * The program creates a kura runtime, registers the module as
 * package.preload["kura_floor"] and runs the benchmark script with it:
 *   lua_floor scripts/bench/lua_client.lua [args...]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua/binding.h"
#include "runtime/runtime.h"

#define FLOOR_TABLE "kura_floor.table"
#define FLOOR_HANDLE "kura_floor.handle"

typedef struct floor_slot {
  uint64_t hash; /* 0: empty slot */
  char *kv;      /* malloc'd: the key's klen bytes, then the value's vlen */
  uint32_t klen;
  uint32_t vlen;
} floor_slot;

typedef struct floor_table {
  floor_slot *slots;
  size_t mask; /* capacity - 1, a power of two */
  size_t count;
} floor_table;

/* A handle is bound to a table; the table userdata is its user value. */
typedef struct floor_handle {
  floor_table *t;
} floor_handle;

/* A multiplicative hash over the key, eight bytes at a time (the floor
 * should not lose time to a byte loop); never 0, which marks an empty slot. */
static uint64_t floor_hash(const char *p, size_t n)
{
  uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
  for (; n >= 8; p += 8, n -= 8) {
    memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  if (n) {
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
  }
  h ^= h >> 29;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 32;
  return h ? h : 1;
}

/* The slot holding key, or the empty slot where it would go. */
static floor_slot *floor_find(floor_table *t, const char *key, size_t klen, uint64_t h)
{
  size_t i = (size_t)h & t->mask;
  for (;;) {
    floor_slot *s = &t->slots[i];
    if (s->hash == 0)
      return s;
    if (s->hash == h && s->klen == klen && memcmp(s->kv, key, klen) == 0)
      return s;
    i = (i + 1) & t->mask;
  }
}

static void floor_grow(lua_State *L, floor_table *t)
{
  size_t old_cap = t->mask + 1, cap = old_cap * 2;
  floor_slot *old = t->slots;
  t->slots = calloc(cap, sizeof *t->slots);
  if (!t->slots) {
    t->slots = old;
    luaL_error(L, "out of memory");
  }
  t->mask = cap - 1;
  for (size_t i = 0; i < old_cap; i++) {
    if (old[i].hash)
      *floor_find(t, old[i].kv, old[i].klen, old[i].hash) = old[i];
  }
  free(old);
}

/* A fresh key + value block. */
static char *floor_block(lua_State *L, const char *key, size_t klen, const char *val,
                         size_t vlen)
{
  char *d = malloc(klen + vlen + 1);
  if (!d)
    luaL_error(L, "out of memory");
  memcpy(d, key, klen);
  memcpy(d + klen, val, vlen);
  return d;
}

static void floor_put(lua_State *L, floor_table *t, const char *key, size_t klen,
                      const char *val, size_t vlen)
{
  uint64_t h = floor_hash(key, klen);
  floor_slot *s = floor_find(t, key, klen, h);
  if (klen > UINT32_MAX || vlen > UINT32_MAX)
    luaL_error(L, "too long");
  if (s->hash) {
    if (s->vlen != vlen) {
      char *nkv = floor_block(L, key, klen, val, vlen);
      free(s->kv);
      s->kv = nkv;
      s->vlen = (uint32_t)vlen;
    } else {
      memcpy(s->kv + klen, val, vlen);
    }
    return;
  }
  s->kv = floor_block(L, key, klen, val, vlen);
  s->klen = (uint32_t)klen;
  s->vlen = (uint32_t)vlen;
  s->hash = h;
  if (++t->count * 2 > t->mask + 1)
    floor_grow(L, t);
}

static int floor_get_in(lua_State *L, floor_table *t, int karg)
{
  size_t klen;
  const char *key = luaL_checklstring(L, karg, &klen);
  floor_slot *s = floor_find(t, key, klen, floor_hash(key, klen));
  if (s->hash)
    lua_pushlstring(L, s->kv + s->klen, s->vlen);
  else
    lua_pushnil(L);
  return 1;
}

static int floor_set_in(lua_State *L, floor_table *t, int karg)
{
  size_t klen, vlen;
  const char *key = luaL_checklstring(L, karg, &klen);
  const char *val = luaL_checklstring(L, karg + 1, &vlen);
  floor_put(L, t, key, klen, val, vlen);
  lua_pushboolean(L, 1);
  return 1;
}

/* --- t:get(cache, key), t:set(cache, key, value), t:cache(name) ------------ */

static floor_table *floor_check(lua_State *L)
{
  return luaL_checkudata(L, 1, FLOOR_TABLE);
}

static int floor_t_get(lua_State *L)
{
  floor_table *t = floor_check(L);
  luaL_checkstring(L, 2); /* the cache name: checked, as kura checks it */
  return floor_get_in(L, t, 3);
}

static int floor_t_set(lua_State *L)
{
  floor_table *t = floor_check(L);
  luaL_checkstring(L, 2);
  return floor_set_in(L, t, 3);
}

static int floor_t_cache(lua_State *L)
{
  floor_table *t = floor_check(L);
  luaL_checkstring(L, 2);
  floor_handle *h = lua_newuserdatauv(L, sizeof *h, 1);
  h->t = t;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1); /* keeps the table alive */
  luaL_setmetatable(L, FLOOR_HANDLE);
  return 1;
}

static int floor_t_gc(lua_State *L)
{
  floor_table *t = floor_check(L);
  if (!t->slots)
    return 0;
  for (size_t i = 0; i <= t->mask; i++) {
    if (t->slots[i].hash)
      free(t->slots[i].kv);
  }
  free(t->slots);
  t->slots = NULL;
  return 0;
}

/* --- h:get(key), h:set(key, value) ------------------------------------------ */

static int floor_h_get(lua_State *L)
{
  floor_handle *h = luaL_checkudata(L, 1, FLOOR_HANDLE);
  return floor_get_in(L, h->t, 2);
}

static int floor_h_set(lua_State *L)
{
  floor_handle *h = luaL_checkudata(L, 1, FLOOR_HANDLE);
  return floor_set_in(L, h->t, 2);
}

/* --- the module ------------------------------------------------------------- */

static int floor_new(lua_State *L)
{
  floor_table *t = lua_newuserdatauv(L, sizeof *t, 0);
  t->count = 0;
  t->mask = 1023;
  t->slots = calloc(t->mask + 1, sizeof *t->slots);
  if (!t->slots)
    return luaL_error(L, "out of memory");
  luaL_setmetatable(L, FLOOR_TABLE);
  return 1;
}

static int floor_stderr_tty(lua_State *L)
{
  lua_pushboolean(L, isatty(STDERR_FILENO));
  return 1;
}

static void floor_metatable(lua_State *L, const char *name, const luaL_Reg *methods)
{
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static int floor_open(lua_State *L)
{
  static const luaL_Reg table_methods[] = {
    {"get", floor_t_get}, {"set", floor_t_set}, {"cache", floor_t_cache},
    {"__gc", floor_t_gc}, {NULL, NULL}};
  static const luaL_Reg handle_methods[] = {
    {"get", floor_h_get}, {"set", floor_h_set}, {NULL, NULL}};
  static const luaL_Reg module[] = {
    {"new", floor_new}, {"stderr_is_tty", floor_stderr_tty}, {NULL, NULL}};
  floor_metatable(L, FLOOR_TABLE, table_methods);
  floor_metatable(L, FLOOR_HANDLE, handle_methods);
  luaL_newlib(L, module);
  return 1;
}

static int open_kura(lua_State *L)
{
  kr_lua_open(L, NULL);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: %s scripts/bench/lua_client.lua [args...]\n", argv[0]);
    return 2;
  }
  kr_runtime *rt;
  if (kr_runtime_new(NULL, &rt) != 0) {
    fprintf(stderr, "lua_floor: cannot create a kura runtime\n");
    return 1;
  }
  lua_State *L = kr_runtime_lua(rt);
  lua_pushcfunction(L, open_kura);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "lua_floor: %s\n", lua_tostring(L, -1));
    return 1;
  }
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, floor_open);
  lua_setfield(L, -2, "kura_floor");
  lua_pop(L, 1);
  int status = kr_runtime_run_file(rt, argv[1], argc, argv, 1);
  kr_runtime_free(rt);
  return status;
}
