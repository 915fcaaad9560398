/* Limits and the sandbox for scripts a host does not fully trust: the
 * instruction budget per call into Lua (a count hook), the memory cap of the
 * runtime's Lua allocator, and the trimmed set of globals (sandbox.c).
 */
#ifndef KR_SANDBOX_H
#define KR_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "runtime/runtime.h"

/* A lua_CFunction: trims the globals of L (run it with lua_pcall, once, on
 * the runtime's main state). `lua_path` (upvalue-free argument 1, may be nil)
 * is the only path `require` searches for Lua files afterwards. */
int kr_sandbox_open(lua_State *L);

/* Instructions one call into Lua may run; 0 removes the limit. Installs the
 * count hook on the main state; coroutines and tasks created later inherit
 * it. */
void kr_budget_set(kr_runtime *rt, uint64_t instructions);
/* Gives the whole budget again before a call into Lua on L. */
void kr_budget_reset(kr_runtime *rt, lua_State *L);
/* 1 when the hook stopped a call since the last kr_budget_reset. */
int kr_budget_exceeded(const kr_runtime *rt);

/* Caps the bytes the Lua state may hold; 0 removes the cap. */
void kr_memory_limit_set(kr_runtime *rt, size_t bytes);
/* Allocations the cap refused so far (to tell a memory error apart). */
uint64_t kr_memory_refused(const kr_runtime *rt);
/* The cap holds only while a task runs (rt->current) or a host call runs
 * Lua (rt->in_call, set by kura_call): never where the memory error it
 * causes could not be caught. */

#endif
