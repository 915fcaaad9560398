/* Internals shared by the runtime's files (runtime.c, task.c, timeout.c):
 * the runtime struct, tasks and the deadline heap. Not for the binding.
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

struct kr_runtime {
  uv_loop_t *loop;
  uv_loop_t own_loop;      /* used when the runtime owns its loop */
  int owns_loop;
  lua_State *L;            /* main thread; also the `from` of every resume */
  kr_runtime_config cfg;   /* strings are owned copies */
  size_t lua_bytes;        /* memory held by the Lua state */
  /* Blocks the Lua state freed, kept for its next allocations of the same
   * size class (runtime.c): a list per 16 bytes up to KR_FREE_MAX bytes. */
  void *free_lists[KR_FREE_CLASSES];
  size_t free_bytes;       /* in the lists, at most KR_FREE_BUDGET */
  size_t mem_limit;        /* cap on lua_bytes, 0: none (sandbox.c) */
  int in_call;             /* a protected host call into Lua runs (embed.c) */
  uint64_t mem_refused;    /* allocations the cap refused */
  uint64_t budget;         /* instructions per call into Lua, 0: none */
  uint64_t budget_step;    /* instructions between two count hooks */
  uint64_t budget_used;    /* charged since the last reset (every resume) */
  int budget_hit;          /* the hook stopped a call */

  uv_check_t check;        /* drains the ready queue */
  uv_idle_t idle;          /* keeps poll non-blocking while tasks are ready */
  uv_timer_t timer;        /* armed for the earliest deadline of the heap */
  int handles_open;        /* handles not yet closed (for kr_runtime_free) */
  int queue_active;        /* check + idle started */

  kr_task *ready_head, *ready_tail;
  kr_task *current;        /* the task being resumed, or NULL */
  int ntasks;              /* tasks not finished */
  int ntimers;             /* kura.after/every timers not stopped or fired */
  int uncaught;            /* uncaught task errors printed */
  int exit_status;         /* set by kura.set_exit_status */
  int closing;             /* lua_close is running: wakes are ignored */

  kr_timeout **heap;       /* binary min-heap of deadlines */
  size_t heap_len, heap_cap;
  uint64_t heap_seq;
};

/* task.c */
void kr_task_open(lua_State *L);
/* Fn and its nargs arguments are on top of L: pops them and starts a task on
 * them; pushes the task object. */
kr_task *kr_task_spawn(kr_runtime *rt, lua_State *L, int nargs, int detached);
int kr_task_join(lua_State *L);
int kr_task_sleep(lua_State *L, double seconds);
/* Prints the failed tasks that nobody joined; called once the loop is idle. */
void kr_task_report_unjoined(kr_runtime *rt);
void kr_task_queue_drain(kr_runtime *rt);
void kr_task_resume(kr_runtime *rt, kr_task *t);

/* runtime.c */
void kr_runtime_on_idle(uv_idle_t *h);
void kr_runtime_on_check(uv_check_t *h);

/* timeout.c */
void kr_timeout_init(kr_timeout *to, void (*fire)(kr_runtime *, kr_timeout *));
int kr_timeout_add(kr_runtime *rt, kr_timeout *to, uint64_t due);
void kr_timeout_remove(kr_runtime *rt, kr_timeout *to);
void kr_timeout_on_timer(uv_timer_t *h);
uint64_t kr_deadline(double seconds);
void kr_timer_open(lua_State *L);
/* kura.after / kura.every: (seconds, fn) on the stack; pushes the timer. */
int kr_timer_start(lua_State *L, int repeat);
/* Argument arg as a duration in seconds for kura.sleep/after/every: a
 * number (else a type error), finite and >= min (else an argument error
 * that says so: NaN, negatives and infinity are mistakes, not "at once" or
 * "never"). */
double kr_check_seconds(lua_State *L, int arg, double min);

#endif
