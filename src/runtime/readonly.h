/* Read-only proxies of tables, for the sandbox's library tables
 * (readonly.c). */
#ifndef KR_READONLY_H
#define KR_READONLY_H

#include <lua.h>

/* Once per state, before any proxy: keeps Lua's `next` for the proxies'
 * __pairs, and replaces getmetatable (read-only views of the metatables
 * that belong to C) and rawset (refused on proxies) in the globals. */
void kr_readonly_open(lua_State *L);
/* Pushes a read-only proxy of the table at idx. */
void kr_readonly_push(lua_State *L, int idx);
/* Replaces the table at idx by its proxy. */
void kr_readonly_replace(lua_State *L, int idx);
/* 1 if the value at idx is a proxy. */
int kr_readonly_is(lua_State *L, int idx);
/* getmetatable("") gives a read-only view from now on (its __index is the
 * global `string`, which must be a proxy already). */
void kr_readonly_strings(lua_State *L);

#endif
