/* The runtime: one libuv loop and one lua_State, with tasks (coroutines)
 * scheduled on the loop. The binding (src/lua/) suspends tasks while a
 * request is in flight and wakes them from completion callbacks.
 */
#ifndef KR_RUNTIME_H
#define KR_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <uv.h>

typedef struct kr_runtime kr_runtime;
typedef struct kr_task kr_task;

/* What the command line or the host configures for the runtime's shared
 * client. Strings are owned by the runtime (copied). */
typedef struct kr_runtime_config {
  const char *backend;          /* NULL: KURA_BACKEND, else "memory". In the copy
                                 * kr_runtime_config_get returns, NULL still means
                                 * "not set" (memory, or momento with a credential) */
  double default_ttl;           /* seconds; <= 0: MOMENTO_TTL_SECONDS or 60 */
  const char *momento_endpoint; /* NULL: KURA_MOMENTO_ENDPOINT */
  const char *store;            /* memory backend: the named store; NULL: "default" */
  uint64_t store_max_memory;    /* memory backend: the store's byte budget; 0: as is */
} kr_runtime_config;

/* loop NULL: the runtime makes and owns its loop. */
int kr_runtime_new(uv_loop_t *loop, const kr_runtime_config *cfg, kr_runtime **out);
/* Closes the state, the handles and (if owned) the loop. */
void kr_runtime_free(kr_runtime *rt);

lua_State *kr_runtime_lua(kr_runtime *rt);
uv_loop_t *kr_runtime_loop(kr_runtime *rt);
const kr_runtime_config *kr_runtime_config_get(kr_runtime *rt);
/* The runtime that owns L (any coroutine of it); NULL outside a runtime.
 * Cheap: reads lua_getextraspace. */
kr_runtime *kr_runtime_from_lua(lua_State *L);

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
/* Bytes the Lua state holds (all its allocations go through the runtime). */
size_t kr_runtime_lua_bytes(kr_runtime *rt);
/* Set once the sandbox is on (sandbox.c): the binding then refuses what
 * scripts may not do there (their own stores, a store's budget). */
void kr_runtime_set_sandboxed(kr_runtime *rt);
int kr_runtime_sandboxed(const kr_runtime *rt);

/* --- kura serve -------------------------------------------------------------- */

typedef struct kr_runtime_serve_opts {
  const char *host;             /* NULL: 127.0.0.1 */
  int port;                     /* 0: a free port */
  const char *auth_token;       /* NULL: any token is accepted */
  unsigned max_connections;     /* 0: the server's default */
  unsigned max_streams;         /* per connection; 0: the server's default */
  const char *script;           /* NULL: none */
  int argc;                     /* the script's arguments, as for run_file */
  char **argv;
  int script_index;
} kr_runtime_serve_opts;

/* kura serve (serve_run.c): starts the script, serves Momento's protocols
 * through the shared client until SIGINT / SIGTERM, drains, returns the
 * exit status (0 after a drain; 1 when it could not start, 2 when the
 * script could not be loaded). Messages go to stderr. */
int kr_runtime_serve(kr_runtime *rt, const kr_runtime_serve_opts *o);

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

#endif
