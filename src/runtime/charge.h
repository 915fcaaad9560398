/* Library functions of the sandbox charged to the instruction budget before
 * their work in C (charge.c): string.rep, print, collectgarbage, table.sort,
 * load. */
#ifndef KR_CHARGE_H
#define KR_CHARGE_H

#include <lua.h>

/* Wraps those functions in L's globals (before the tables become
 * read-only). */
void kr_charge_open(lua_State *L);

#endif
