/* The two limits of a call into Lua (budget.c): the instruction budget and
 * the memory cap, and how a call that passes either is stopped.
 *
 * A "call" is one kura_call, one load of a main chunk, or one resume of a
 * task: each starts with kr_budget_begin and gets the whole budget. Once a
 * limit is passed the call is "stopped": every count hook of every thread of
 * the runtime raises the stop's error ("instruction budget exceeded" or
 * "memory limit exceeded") at its next instruction, so that a script that
 * catches the error with pcall cannot run on. The stop lasts until the next
 * kr_budget_begin.
 */
#ifndef KR_BUDGET_H
#define KR_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "runtime/runtime.h"

void kr_budget_hook(lua_State *L, lua_Debug *ar);

enum kr_stop {
  KR_STOP_NONE = 0,
  KR_STOP_BUDGET,  /* "instruction budget exceeded" */
  KR_STOP_MEMORY,  /* "memory limit exceeded" */
};

/* Instructions one call may run; 0 removes the limit. Installs the count
 * hook on the main state; threads created later inherit it. */
void kr_budget_set(kr_runtime *rt, uint64_t instructions);

/* Caps the bytes the Lua state may hold while a call runs; 0 removes the
 * cap. Past a soft mark a little below the cap an allocation still succeeds
 * but the call stops at its next instruction (after at most one full
 * collection per quarter of the cap allocated, if that frees enough); an
 * allocation past the cap itself fails (Lua's memory error). */
void kr_memory_limit_set(kr_runtime *rt, size_t bytes);
/* 1 when the state is under the memory cap's soft mark, after a full
 * collection if one is due (budget.c); for C code that is about to make
 * objects outside a call, where failing allocation by allocation would cost
 * Lua an emergency collection each. */
int kr_memory_room(lua_State *L, kr_runtime *rt);
/* Allocations the cap refused so far. */
uint64_t kr_memory_refused(const kr_runtime *rt);

/* The host enters Lua: a kura_call, a load, a turn of the task queue (for
 * the memory cap's collections, see budget.c). */
void kr_budget_host_entry(kr_runtime *rt);
/* A turn of the task queue (task.c) runs tasks while this says it may:
 * until their instructions (and KR_RESUME_COST per resume, counted in
 * rt->tick_used) add up to the budget, or it has run for the time of that
 * many instructions at KR_TICK_NS each (failing tasks cost more than their
 * instructions: errors, tracebacks, collections). 0 without a budget. */
void kr_budget_turn_begin(kr_runtime *rt);
int kr_budget_turn_spent(const kr_runtime *rt);
/* kr_budget_begin (start a call) and kr_budget_stopped are inline, in
 * rt_internal.h. */
void kr_budget_begin_slow(kr_runtime *rt, lua_State *L);

/* L (re)starts running within the current call (a resumed coroutine): its
 * count hook at the step the runtime uses now. */
void kr_budget_enter(kr_runtime *rt, lua_State *L);

/* The message of a stop `why` ("instruction budget exceeded (N
 * instructions)"). */
const char *kr_budget_stop_message(const kr_runtime *rt, int why, char *buf, size_t cap);

/* Charges n instructions of work done in C on the script's behalf to the
 * call that runs on L (pattern matching, big strings, log lines, spawns):
 * raises the stop's error once a limit is passed, or if the call was
 * stopped already. No-op without a runtime or a budget. */
void kr_budget_charge(lua_State *L, kr_runtime *rt, uint64_t n);
/* The charge of starting a coroutine or a task: one step of the hook, so
 * that fresh threads that each stop short of a hook still pay. */
#define KR_THREAD_COST 1000
/* The charge of writing a line (kura.log, print): a system call. */
#define KR_LINE_COST 1000
/* Stops the current call for `why` (unless it was stopped already) and
 * raises the stop's error. */
void kr_budget_stop(lua_State *L, kr_runtime *rt, int why);
/* Raises the error of the stop if the current call was stopped; for C
 * functions that are about to run Lua code on another thread. */
void kr_budget_check(lua_State *L, kr_runtime *rt);

/* For the allocator (runtime.c), which cannot raise. Allocations charge
 * one instruction per KR_ALLOC_BYTES bytes. */
#define KR_ALLOC_SHIFT 5
#define KR_ALLOC_BYTES (1u << KR_ALLOC_SHIFT)
/* Makes the running thread's hook fire at its next instruction, where it
 * stops the call or checks the memory (lua_sethook may be called from
 * anywhere, even a signal handler). */
void kr_budget_arm(kr_runtime *rt);
/* A block of KR_BIG_BLOCK bytes or more now lives: shorter steps. */
void kr_budget_big_block(kr_runtime *rt);
/* The allocator refuses an allocation past the cap (Lua runs an emergency
 * collection and tries once more): stops the call unless a collection is
 * due. */
void kr_memory_refuse(kr_runtime *rt);

/* The count hook. */
void kr_budget_hook(lua_State *L, lua_Debug *ar);

#endif
