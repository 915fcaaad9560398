/* The sandbox for scripts a host does not fully trust (sandbox.c): the
 * trimmed globals, read-only library tables, and the guards that keep every
 * script's code under the instruction budget. The limits themselves are in
 * budget.h. */
#ifndef KR_SANDBOX_H
#define KR_SANDBOX_H

#include <lua.h>

/* A lua_CFunction: sets the sandbox up in L (run it with lua_pcall, once, on
 * the runtime's main state, before any script). `lua_path` (argument 1, may
 * be nil) is the only path `require` searches for Lua files afterwards. */
int kr_sandbox_open(lua_State *L);

#endif
