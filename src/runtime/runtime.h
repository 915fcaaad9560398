/* The runtime: one libuv loop and one lua_State, with tasks (coroutines)
 * scheduled on the loop. It knows Lua, not the `kura` module: the binding
 * (src/lua/) sits on it, suspends tasks while a request is in flight and
 * wakes them from completion callbacks.
 */
#ifndef KR_RUNTIME_H
#define KR_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <uv.h>

typedef struct kr_runtime kr_runtime;
typedef struct kr_task kr_task;

/* Makes a runtime with a Lua state of its own (the standard libraries
 * open, no `kura` module: the host layer opens the binding on it). loop
 * NULL: the runtime makes and owns its loop. */
int kr_runtime_new(uv_loop_t *loop, kr_runtime **out);
/* Closes the state, the handles and (if owned) the loop. */
void kr_runtime_free(kr_runtime *rt);
/* The runtime of a Lua state kura does not own (the stock lua5.4, a game
 * server's state), made on first use with a loop of its own: the state's
 * registry anchors it under a key of the runtime's, and lua_close frees it.
 * The state's extra space is never touched: it is the host's. Raises a Lua
 * error when it cannot be made. Returns the runtime of a state the runtime
 * owns as is. */
kr_runtime *kr_runtime_join(lua_State *L);

lua_State *kr_runtime_lua(kr_runtime *rt);
uv_loop_t *kr_runtime_loop(kr_runtime *rt);
/* The runtime of L (any coroutine of it): the one that made the state (its
 * allocator's data: no lookup), else the one kr_runtime_join anchored in
 * its registry; NULL when there is none. */
kr_runtime *kr_runtime_from_lua(lua_State *L);
/* 1 while the runtime's state is being closed: nothing may start then. */
int kr_runtime_closing(const kr_runtime *rt);

/* Run the chunk in `src` (from a file: kr_runtime_run_file) as the main task,
 * then the loop until no task and no timer is left. Returns the exit status
 * kura uses: 0, 1 if any task raised an error no one caught, 2 if the script
 * could not be loaded (the message is printed on stderr). `argv` becomes the
 * global `arg` as the stock `lua` command sets it. */
int kr_runtime_run_file(kr_runtime *rt, const char *path, int argc, char **argv, int script_index);
int kr_runtime_run_string(kr_runtime *rt, const char *chunk, const char *chunkname);
/* Loads the script at path (not "-") and starts it as the main task without
 * running the loop: it runs from the loop's next turn, and the caller
 * drives the loop (kura serve does). Returns 0, or 2 when the script cannot
 * be loaded (the message is printed on stderr). */
int kr_runtime_start_file(kr_runtime *rt, const char *path, int argc, char **argv,
                          int script_index);
/* Task errors no one caught so far (printed on stderr). */
int kr_runtime_uncaught(const kr_runtime *rt);
/* Sets the global `arg` as lua.c does: arg[0] = argv[script_index], the
 * script's arguments at 1.., the interpreter's before it at negative indices.
 * run_file does this itself when given argv; the main chunk gets arg[1..n]
 * as `...`. */
void kr_runtime_set_args(kr_runtime *rt, int argc, char **argv, int script_index);
/* The status kr_runtime_run_* return is the highest of this and 1 if a task
 * error went uncaught (kura.set_exit_status from Lua). */
void kr_runtime_set_exit_status(kr_runtime *rt, int status);
int kr_runtime_exit_status(const kr_runtime *rt);
/* Bytes the Lua state holds (all its allocations go through the runtime). */
size_t kr_runtime_lua_bytes(kr_runtime *rt);
/* Set once the sandbox is on (sandbox.c): the binding then refuses what
 * scripts may not do there (their own stores, a store's budget). */
void kr_runtime_set_sandboxed(kr_runtime *rt);
int kr_runtime_sandboxed(const kr_runtime *rt);

/* --- suspending tasks from C ----------------------------------------------- */

/* The task running in L, prepared to be suspended: returns a handle to pass to
 * a completion callback. Raises a Lua error ("<what>: cannot suspend here
 * (...): <reason>") if L cannot yield (not a task, or inside a metamethod or a
 * C callback). After this the C function must `return lua_yield(L, 0);`. The
 * task stays anchored until it finishes, so the handle is valid until the
 * wake (and, while the runtime lives, after it). */
kr_task *kr_task_prepare_wait(lua_State *L, const char *what);
/* The task's coroutine: push the results onto it, then kr_task_wake. */
lua_State *kr_task_state(kr_task *t);
/* Resume the task on the loop with the `nres` values pushed onto its state as
 * the results of the call that suspended it. Safe from any loop callback,
 * including while another task runs, and even before the C function that
 * prepared the wait has yielded: the resume is always queued and happens from
 * the loop (a uv_check handle), never from inside the caller. A second wake,
 * or a wake while the runtime is being freed, is ignored. */
void kr_task_wake(kr_task *t, int nres);

/* --- tasks and timers for the binding ---------------------------------------- */

/* kura.spawn: fn and its nargs arguments on top of L become a task (charged
 * to the budget); pushes the task object. */
void kr_runtime_spawn(lua_State *L, kr_runtime *rt, int nargs);
/* kura.sleep: suspends the running task for `seconds` (0: behind the other
 * ready tasks); returns lua_yield's result. Raises outside a task. */
int kr_task_sleep(lua_State *L, double seconds);
/* kura.after / kura.every: (seconds, fn) on the stack; pushes the timer. */
int kr_timer_start(lua_State *L, int repeat);
/* Argument arg as a duration in seconds for kura.sleep/after/every: a
 * number (else a type error), finite and >= min (else an argument error
 * that says so: NaN, negatives and infinity are mistakes, not "at once" or
 * "never"). */
double kr_check_seconds(lua_State *L, int arg, double min);

/* kura.run: runs fn(...) (fn and its nargs arguments on top of L) as a
 * task and drives the loop until no task and no timer is left. Pushes fn's
 * results and returns their number; raises fn's error (message and
 * traceback; an error object that is no string as it is), or the
 * deadlock's. Raises as well when the loop is being
 * driven already or a task or a host's call runs: the loop cannot be
 * entered twice. */
int kr_runtime_run_function(lua_State *L, kr_runtime *rt, int nargs);
/* kura.poll: one turn of the loop, waiting at most `seconds` for something
 * to happen; returns the tasks and timers still pending. Raises as
 * kr_runtime_run_function does when the loop cannot be entered. */
int kr_runtime_poll(lua_State *L, kr_runtime *rt, double seconds);

#endif
