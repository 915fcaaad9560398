/* Lua's pattern matching with its work charged to the instruction budget
 * (pattern.c): string.find, match, gmatch and gsub for the sandbox. */
#ifndef KR_PATTERN_H
#define KR_PATTERN_H

#include <lua.h>

#include "runtime/runtime.h"

/* Sets find, match, gmatch and gsub of the table at idx to the charged
 * functions of runtime rt (NULL: charged to nothing). */
void kr_pattern_install(lua_State *L, int idx, kr_runtime *rt);
/* A lua_CFunction that pushes a table of the four functions, charged to
 * nothing (for tests that compare them with Lua's own). */
int kr_pattern_open(lua_State *L);

#endif
