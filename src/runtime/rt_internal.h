/* Internals shared by the runtime's files (runtime.c, task.c, timeout.c):
 * the runtime struct, tasks and the deadline heap. Not for the binding,
 * which has runtime.h; the host layer (src/host/host.c), which sits on top
 * and sets the runtime's limits, reads them here.
 *
 * Scheduling in one paragraph: a task is a coroutine wrapped in a userdata
 * (kura.task). A task that can run sits in the ready queue; the queue is
 * drained from a uv_check handle (a uv_idle handle keeps the poll from
 * blocking while the queue is not empty). Everything that suspends a task
 * (sleep, join, the client binding) goes through kr_task_prepare_wait and is
 * undone by kr_task_wake, which only ever queues: a task is never resumed from
 * inside another task's C call. Sleeps and kura.after/every share one binary
 * heap of deadlines behind a single uv_timer_t.
 */
#ifndef KR_RT_INTERNAL_H
#define KR_RT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <uv.h>

#include "runtime/runtime.h"

#define KR_TASK_MT "kura.task"
#define KR_TIMER_MT "kura.timer"

/* An entry of the deadline heap, embedded in whatever waits. */
typedef struct kr_timeout kr_timeout;
struct kr_timeout {
  uint64_t due;                                   /* uv_hrtime() nanoseconds */
  uint64_t seq;                                   /* ties break in FIFO order */
  size_t idx;                                     /* position in the heap, or SIZE_MAX */
  void (*fire)(kr_runtime *rt, kr_timeout *to);   /* called once it is due */
};

enum kr_task_state {
  KR_TASK_READY,   /* in the ready queue (new, woken, or yielded) */
  KR_TASK_RUNNING, /* being resumed right now */
  KR_TASK_WAITING, /* suspended by kr_task_prepare_wait */
  KR_TASK_DONE,    /* returned; its results are user value 1 */
  KR_TASK_FAILED,  /* raised; the message + traceback is user value 2 */
};

struct kr_task {
  kr_runtime *rt;
  lua_State *co;          /* the coroutine (user value 1 keeps it alive); NULL
                           * once finished, when user value 1 holds the results */
  int state;              /* enum kr_task_state */
  int self_ref;           /* registry ref while the task has not finished */
  int nargs;              /* values to pass on the next resume */
  int nres;               /* results once DONE */
  unsigned detached : 1;  /* no handle was given out (main chunk, timers) */
  unsigned joined : 1;    /* someone joined it: its error is not uncaught */
  unsigned reported : 1;  /* its uncaught error was printed */
  kr_task *next;          /* ready queue link */
  kr_task *joiners;       /* tasks waiting in join(), FIFO */
  kr_task *joiners_tail;
  kr_task *next_joiner;
  kr_timeout sleep;       /* kura.sleep deadline */
};

#define KR_FREE_MAX 1088                 /* a 1 KB string (24 + 1025 B) still fits */
#define KR_FREE_CLASSES (KR_FREE_MAX / 16 + 1)
#define KR_FREE_BUDGET (512 * 1024)
#define KR_BIG_BLOCK (256 * 1024)        /* see budget.c */

struct kr_runtime {
  uv_loop_t *loop;
  uv_loop_t own_loop;      /* used when the runtime owns its loop */
  int owns_loop;
  lua_State *L;            /* the `from` of every resume: the main thread of
                            * the runtime's own state, or a thread of its own
                            * in a state it joined (kr_runtime_join) */
  int joined;              /* the state is not the runtime's (kr_runtime_join) */
  int driving;             /* the loop is being run by kr_runtime_run_function
                            * or kr_runtime_poll: it cannot be entered again */
  size_t lua_bytes;        /* memory held by the Lua state */
  /* Blocks the Lua state freed, kept for its next allocations of the same
   * size class (runtime.c): a list per 16 bytes up to KR_FREE_MAX bytes. */
  void *free_lists[KR_FREE_CLASSES];
  size_t free_bytes;       /* in the lists, at most KR_FREE_BUDGET */
  /* The limits of a call into Lua (budget.c; the allocator in runtime.c). */
  lua_State *running;      /* the thread a protected call runs Lua on now, or
                            * NULL: the limits hold only while it is set */
  uint64_t budget;         /* instructions per call, 0: none */
  uint64_t budget_used;    /* charged to the current call */
  int step;                /* instructions between two count hooks */
  int stop;                /* enum kr_stop: why the current call stops */
  int armed;               /* the running thread's hook fires at once */
  unsigned call_seq;       /* +1 per call: the hook sees a new call begin */
  unsigned hook_seq;       /* call_seq when the hook last fired */
  unsigned hooks;          /* hooks fired in the current call */
  uint64_t hook_t;         /* ns, wall clock: the last hook */
  uint64_t cpu_at;         /* ns, thread CPU clock: the last reading, 0: none yet */
  uint64_t cpu_insns;      /* instructions charged since then */
  int cpu_slow;            /* the last CPU window ran slow instructions */
  int step_cap;            /* then: the step that takes about KR_SLACK_NS */
  uint64_t tick_used;      /* instructions of the current turn of the queue */
  uint64_t tick_t0;        /* ns: when it began */
  size_t mem_limit;        /* cap on lua_bytes during a call, 0: none */
  size_t mem_soft;         /* past it the call stops */
  int mem_over;            /* an allocation passed mem_soft: the hook decides */
  uint64_t mem_grown;      /* bytes allocated under the cap, for the back-off */
  uint64_t mem_gc_at;      /* mem_grown at the last full collection it caused */
  unsigned entry_seq;      /* +1 each time the host enters Lua */
  unsigned mem_gc_entry;   /* entry_seq at that collection */
  uint64_t mem_refused;    /* allocations the cap refused */
  size_t big_live;         /* live blocks of KR_BIG_BLOCK bytes or more */

  uv_check_t check;        /* drains the ready queue */
  uv_idle_t idle;          /* keeps poll non-blocking while tasks are ready */
  uv_timer_t timer;        /* armed for the earliest deadline of the heap */
  uv_timer_t poll_timer;   /* bounds the wait of kr_runtime_poll */
  int handles_open;        /* handles not yet closed (for kr_runtime_free) */
  int queue_active;        /* check + idle started */

  kr_task *ready_head, *ready_tail;
  kr_task *current;        /* the task being resumed, or NULL */
  int ntasks;              /* tasks not finished */
  int ntimers;             /* kura.after/every timers not stopped or fired */
  int uncaught;            /* uncaught task errors printed */
  int exit_status;         /* set by kura.set_exit_status */
  int closing;             /* lua_close is running: wakes are ignored */
  int sandboxed;           /* kr_sandbox_open ran */

  kr_timeout **heap;       /* binary min-heap of deadlines */
  size_t heap_len, heap_cap;
  uint64_t heap_seq;
};

/* task.c */
void kr_task_open(lua_State *L);
/* Fn and its nargs arguments are on top of L: pops them and starts a task on
 * them; pushes the task object. */
kr_task *kr_task_spawn(kr_runtime *rt, lua_State *L, int nargs, int detached);
/* The same, but the task is not queued: the caller resumes it. */
kr_task *kr_task_new(kr_runtime *rt, lua_State *L, int nargs, int detached);
int kr_task_join(lua_State *L);
/* Pushes onto `to` what join() gives for the finished task at idx of L:
 * its results, or nil and its error (which then counts as caught). */
int kr_task_outcome(kr_task *t, lua_State *L, int idx, lua_State *to);
/* Prints the failed tasks that nobody joined; called once the loop is idle. */
void kr_task_report_unjoined(kr_runtime *rt);
void kr_task_queue_drain(kr_runtime *rt);
void kr_task_resume(kr_runtime *rt, kr_task *t);

/* runtime.c */
void kr_runtime_on_idle(uv_idle_t *h);
void kr_runtime_on_check(uv_check_t *h);

/* budget.c (the rest is in budget.h) */
void kr_budget_hook(lua_State *L, lua_Debug *ar);
void kr_budget_begin_slow(kr_runtime *rt, lua_State *L);
/* Instructions before the first hook of a call (fewer while big blocks
 * live: then one instruction can be slow). */
#define KR_FIRST_STEP 32
#define KR_FIRST_STEP_BIG 4
/* Starts a call that runs Lua on L: the whole budget again, no stop, and
 * L's first hook after a few instructions, where the call's clock starts
 * (the hook then fires every step). Inline: the hot path of kura_call. */
static inline int kr_budget_first_step(const kr_runtime *rt)
{
  int first = rt->big_live ? KR_FIRST_STEP_BIG : KR_FIRST_STEP;
  return rt->step < first ? rt->step : first;
}

static inline void kr_budget_begin(kr_runtime *rt, lua_State *L)
{
  rt->budget_used = 0;
  rt->call_seq++;
  if (rt->stop | rt->mem_over | rt->armed)
    kr_budget_begin_slow(rt, L);
  else if (rt->budget)
    lua_sethook(L, kr_budget_hook, LUA_MASKCOUNT, kr_budget_first_step(rt));
}
/* Why the current (or last) call was stopped: enum kr_stop (budget.h). */
static inline int kr_budget_stopped(const kr_runtime *rt)
{
  return rt->stop;
}

/* timeout.c */
void kr_timeout_init(kr_timeout *to, void (*fire)(kr_runtime *, kr_timeout *));
int kr_timeout_add(kr_runtime *rt, kr_timeout *to, uint64_t due);
void kr_timeout_remove(kr_runtime *rt, kr_timeout *to);
void kr_timeout_on_timer(uv_timer_t *h);
uint64_t kr_deadline(double seconds);
void kr_timer_open(lua_State *L);

#endif
