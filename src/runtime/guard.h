/* The sandbox's xpcall and coroutine functions (guard.c): the same as Lua's,
 * except that a script's code never runs with hooks off. */
#ifndef KR_GUARD_H
#define KR_GUARD_H

#include <lua.h>

/* Replaces xpcall and coroutine.create/resume/wrap/close in L's globals. */
void kr_guard_open(lua_State *L);

#endif
