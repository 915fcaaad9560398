/* The instruction budget, the memory cap's stop, and how a call that passes
 * either stops (budget.h).
 *
 * The count hook fires every `step` VM instructions of a thread and charges
 * them to the runtime (count hooks are per thread, so the charge is shared
 * through the runtime). Besides instructions, two things spend a call's
 * budget:
 *
 * - Work done in C on the script's behalf, charged by the code that does it
 *   (kr_budget_charge): pattern matching (pattern.c), coroutines and spawns,
 *   log lines, and one instruction per KR_ALLOC_BYTES bytes the Lua state
 *   allocates (the allocator), which covers `..`, string.rep, string.format,
 *   table.concat and every other operation whose cost grows with what it
 *   makes.
 * - CPU time: the hook reads the thread's CPU clock now and then, and a
 *   call is charged the CPU time it used at KR_NS_PER_INSN per instruction
 *   when that is more than its count. The VM runs an instruction in less
 *   (7-45 ns here, with the hook on), so an ordinary script is charged its
 *   instructions; one whose instructions are slow because of C work that
 *   makes nothing (comparing two long strings, say) is charged its time.

 * So that the stop comes soon after the budget is spent, the first hook of a
 * call comes after a few instructions (KR_FIRST_STEP); while the state holds
 * blocks of KR_BIG_BLOCK bytes or more (only with such strings or tables can
 * one instruction take long) the hook fires every KR_STEP_BIG instructions
 * instead of KR_STEP; and once the CPU clock shows heavy instructions, steps
 * of about KR_SLACK_NS of CPU.
 *
 * Lua runs a hook with hooks off (allowhook), and an error raised from a hook
 * leaves them off in that thread until a protected call turns them back on.
 * The stop's error is raised from the hook only where every way out of it
 * turns them on before any Lua code of the script runs: the sandbox's xpcall
 * does not call a script's message handler for a stop, and every coroutine
 * and task runs its function under a pcall of its own (guard.c, task.c).
 *
 * The memory cap (kr_memory_limit_set): the allocator lets an allocation
 * past the soft mark through, and the hook, at the next instruction, either
 * runs a full collection (when one is due: see collection_due) or, if that
 * does not bring the state back under the mark, stops the call. An
 * allocation past the cap itself fails; Lua then runs its own emergency
 * collection, so the allocator stops the call at once unless a collection is
 * due: a script at the cap costs a handful of collections, not one per
 * failed allocation (the issue measured 27 ms each at 8 MB).
 */
#include <stdio.h>
#include <time.h>

#include <lauxlib.h>

#include "runtime/budget.h"
#include "runtime/rt_internal.h"

#define KR_STEP 1000        /* instructions between two hooks */
#define KR_STEP_BIG 64      /* the same while big blocks are alive */
#define KR_NS_PER_INSN 50   /* CPU time charged as one instruction */
#define KR_SLOW_NS 200      /* a step slower than this per instruction is slow */
#define KR_CPU_EVERY 16     /* hooks between two readings of the CPU clock */
#define KR_SLACK_NS 5000000 /* CPU a step of heavy instructions may take */
#define KR_TICK_NS 10        /* a turn of the task queue: this per instruction */
#define KR_SOFT_MAX (1u << 20)

/* The wall clock times a step, to see that it is slow; the thread's CPU
 * clock (a system call: read once in KR_CPU_EVERY hooks, or at every hook
 * while steps are slow) measures what to charge, so that time the thread
 * spent waiting for the CPU (a loaded host) is never charged. */
static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The step while steps are fast. */
static int base_step(const kr_runtime *rt)
{
  uint64_t s = rt->big_live ? KR_STEP_BIG : KR_STEP;
  return (int)(rt->budget && rt->budget < s ? rt->budget : s);
}

static void set_count(lua_State *L, int count)
{
  if (lua_gethook(L) != kr_budget_hook || lua_gethookcount(L) != count)
    lua_sethook(L, kr_budget_hook, LUA_MASKCOUNT, count);
}

const char *kr_budget_stop_message(const kr_runtime *rt, int why, char *buf, size_t cap)
{
  if (why == KR_STOP_MEMORY)
    snprintf(buf, cap, "memory limit exceeded (%zu bytes)", rt->mem_limit);
  else
    snprintf(buf, cap, "instruction budget exceeded (%llu instructions)",
             (unsigned long long)rt->budget);
  return buf;
}

/* Raises the stop's error on L, whose hook then fires at every instruction:
 * a script that catches the error runs no further. */
static int raise_stop(lua_State *L, kr_runtime *rt)
{
  char msg[96];
  set_count(L, 1);
  return luaL_error(L, "%s", kr_budget_stop_message(rt, rt->stop, msg, sizeof msg));
}

void kr_budget_stop(lua_State *L, kr_runtime *rt, int why)
{
  if (!rt->stop)
    rt->stop = why;
  raise_stop(L, rt);
}

/* --- the hook ---------------------------------------------------------------- */

/* A full collection is worth its cost once per entry of the host into Lua
 * (a kura_call, a load, a turn of the task queue) and once per quarter of
 * the cap allocated since the last: at the cap, a script that keeps
 * allocating costs a few collections, not one per allocation, and garbage
 * left by a call that was stopped is collected when the host comes back. */
static int collection_due(const kr_runtime *rt)
{
  return rt->mem_gc_entry != rt->entry_seq || rt->mem_grown - rt->mem_gc_at >= rt->mem_limit / 4;
}

static void collection_done(kr_runtime *rt)
{
  rt->mem_gc_at = rt->mem_grown;
  rt->mem_gc_entry = rt->entry_seq;
}

int kr_memory_room(lua_State *L, kr_runtime *rt)
{
  if (!rt->mem_limit || rt->lua_bytes <= rt->mem_soft)
    return 1;
  if (collection_due(rt)) {
    collection_done(rt);
    lua_gc(L, LUA_GCCOLLECT);
  }
  return rt->lua_bytes <= rt->mem_soft;
}

/* An allocation passed the soft mark since the last hook. */
static void memory_check(lua_State *L, kr_runtime *rt)
{
  rt->mem_over = 0;
  if (!kr_memory_room(L, rt))
    kr_budget_stop(L, rt, KR_STOP_MEMORY);
}

/* Charges the CPU time since the last reading, past what the instructions
 * of that window were charged, and starts a new window. */
static void charge_cpu(kr_runtime *rt)
{
  uint64_t cpu = cpu_ns();
  if (rt->cpu_at && rt->cpu_insns) {
    uint64_t used = cpu - rt->cpu_at, by_cpu = used / KR_NS_PER_INSN;
    if (by_cpu > rt->cpu_insns)
      rt->budget_used += by_cpu - rt->cpu_insns;
    rt->cpu_slow = used > rt->cpu_insns * KR_SLOW_NS;
    /* heavy instructions: a step of about KR_SLACK_NS of CPU, no more */
    uint64_t per = used / rt->cpu_insns;
    rt->step_cap = per > KR_SLACK_NS / KR_STEP_BIG ? (int)(KR_SLACK_NS / per) + 1 : KR_STEP;
  }
  rt->cpu_at = cpu;
  rt->cpu_insns = 0;
}

/* Charges the step that just ended (n instructions), and the CPU time when
 * it reads it: once in KR_CPU_EVERY hooks, and at every hook after a step
 * that took long (by the wall clock: slow work, or the thread waited for
 * the CPU) and while the CPU clock says steps are slow. */
static void spend(lua_State *L, kr_runtime *rt, int n)
{
  uint64_t now = now_ns(), dt = 0;
  if (rt->hook_seq != rt->call_seq) { /* the first hook of this call */
    rt->hook_seq = rt->call_seq;
    rt->hooks = 0;
    rt->cpu_at = 0; /* a window starts within this call */
    rt->cpu_slow = 0;
    rt->step_cap = KR_STEP;
  } else {
    dt = now - rt->hook_t;
  }
  rt->hook_t = now;
  rt->hooks++;
  rt->budget_used += (uint64_t)n;
  rt->cpu_insns += (uint64_t)n;
  if (dt > (uint64_t)n * KR_SLOW_NS || rt->cpu_slow || rt->hooks % KR_CPU_EVERY == 2)
    charge_cpu(rt);
  if (rt->budget_used > rt->budget)
    kr_budget_stop(L, rt, KR_STOP_BUDGET);
  int base = base_step(rt);
  rt->step = rt->cpu_slow && rt->step_cap < base ? rt->step_cap : base;
  set_count(L, rt->step);
}

void kr_budget_hook(lua_State *L, lua_Debug *ar)
{
  (void)ar;
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (!rt)
    return;
  int n = lua_gethookcount(L);
  rt->armed = 0;
  if (rt->stop)
    raise_stop(L, rt);
  if (rt->mem_over)
    memory_check(L, rt);
  if (rt->budget)
    spend(L, rt, n);
  else
    lua_sethook(L, NULL, 0, 0); /* it was set only to stop at once */
}

/* --- calls --------------------------------------------------------------------- */

void kr_budget_set(kr_runtime *rt, uint64_t instructions)
{
  rt->budget = instructions;
  rt->budget_used = 0;
  rt->stop = KR_STOP_NONE;
  rt->step = base_step(rt);
  if (instructions)
    lua_sethook(rt->L, kr_budget_hook, LUA_MASKCOUNT, rt->step);
  else
    lua_sethook(rt->L, NULL, 0, 0);
}

void kr_budget_host_entry(kr_runtime *rt)
{
  rt->entry_seq++;
}

void kr_budget_turn_begin(kr_runtime *rt)
{
  rt->tick_used = 0;
  rt->tick_t0 = rt->budget ? now_ns() : 0;
  kr_budget_host_entry(rt);
}

int kr_budget_turn_spent(const kr_runtime *rt)
{
  return rt->budget && (rt->tick_used >= rt->budget ||
                        now_ns() - rt->tick_t0 >= rt->budget * KR_TICK_NS);
}

void kr_budget_begin_slow(kr_runtime *rt, lua_State *L)
{
  rt->stop = rt->mem_over = rt->armed = 0;
  if (rt->budget)
    lua_sethook(L, kr_budget_hook, LUA_MASKCOUNT, kr_budget_first_step(rt));
}

void kr_budget_enter(kr_runtime *rt, lua_State *L)
{
  if (rt->budget)
    set_count(L, rt->step);
}

void kr_budget_charge(lua_State *L, kr_runtime *rt, uint64_t n)
{
  if (!rt || !rt->running)
    return;
  if (rt->stop)
    raise_stop(L, rt);
  if (!rt->budget)
    return;
  rt->budget_used += n;
  if (rt->budget_used > rt->budget)
    kr_budget_stop(L, rt, KR_STOP_BUDGET);
}

void kr_budget_check(lua_State *L, kr_runtime *rt)
{
  if (rt && rt->stop)
    raise_stop(L, rt);
}

void kr_budget_arm(kr_runtime *rt)
{
  if (rt->running && !rt->armed) {
    rt->armed = 1;
    lua_sethook(rt->running, kr_budget_hook, LUA_MASKCOUNT, 1);
  }
}

void kr_budget_big_block(kr_runtime *rt)
{
  if (rt->budget && rt->step > KR_STEP_BIG) {
    rt->step = KR_STEP_BIG;
    if (rt->running && !rt->armed) /* soon: its next instructions may be slow */
      set_count(rt->running, KR_FIRST_STEP_BIG);
  }
}

/* --- the memory cap ---------------------------------------------------------------- */

void kr_memory_limit_set(kr_runtime *rt, size_t bytes)
{
  size_t reserve = bytes / 8 < KR_SOFT_MAX ? bytes / 8 : KR_SOFT_MAX;
  rt->mem_limit = bytes;
  rt->mem_soft = bytes - reserve;
  rt->mem_grown = 0;
  rt->mem_gc_at = 0;
  rt->mem_gc_entry = rt->entry_seq - 1; /* the first collection is due at once */
}

uint64_t kr_memory_refused(const kr_runtime *rt)
{
  return rt->mem_refused;
}

void kr_memory_refuse(kr_runtime *rt)
{
  rt->mem_refused++;
  if (collection_due(rt)) {
    /* Lua collects and tries again: let it, once in a while */
    collection_done(rt);
    rt->mem_over = 1;
  } else if (!rt->stop) {
    rt->stop = KR_STOP_MEMORY;
  }
  kr_budget_arm(rt);
}
