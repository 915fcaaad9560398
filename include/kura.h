/* kura: the public C API of the kura cache runtime, for programs that embed it
 * (game servers and other hosts): runtimes that run Lua scripts on a libuv
 * loop. It includes kura_client.h, the cache client alone (libkura-core),
 * whose error codes, results and cache calls it shares; everything else in
 * the tree is internal.
 *
 * Every function returns 0 (KURA_OK) on success or a negative KURA_E* code
 * (kura_client.h: kura_errname, kura_strerror).
 *
 * The minimal host:
 *
 *     kura_runtime *rt;
 *     kura_options opts = {0};                 // own loop, no limits
 *     if (kura_runtime_new(&opts, &rt) != KURA_OK) ...
 *     if (kura_load_file(rt, "game.lua") != KURA_OK)
 *       fprintf(stderr, "%s\n", kura_errmsg(rt));
 *     kura_value arg = kura_int(42), res;
 *     if (kura_call(rt, "on_tick", &arg, 1, &res, 1) == KURA_OK && res.type == KURA_TINT)
 *       printf("%lld\n", (long long)res.i);
 *     kura_tick(rt);                           // once per game tick
 *     kura_runtime_free(rt);
 *
 * Threads: a runtime (and its client) belongs to the thread that created it
 * (like a lua_State or a uv_loop_t). Several runtimes may run on several
 * threads at once; their memory clients share a named store's caches.
 */
#ifndef KURA_H
#define KURA_H

#include <stddef.h>
#include <stdint.h>

#include "kura_client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================= */
/* Runtimes                                                                   */
/* ========================================================================= */

typedef struct kura_runtime kura_runtime;

/* Options of kura_runtime_new. Zero-initialize, then set what you need: all
 * zeros is a runtime on its own loop, memory backend, no sandbox, no limits.
 * Strings are copied. For scripts the host does not fully trust, set
 * sandbox, instruction_budget and memory_limit together: what they
 * guarantee, and what they do not, is stated under "The sandbox" below. */
typedef struct kura_options {
  struct uv_loop_s *loop;      /* the host's libuv loop; NULL: the runtime makes
                                * and owns one (drive it with kura_tick/kura_run) */
  const char *lua_path;        /* prepended to package.path, e.g.
                                * "/srv/game/scripts/?.lua"; NULL: Lua's default.
                                * In the sandbox the only place require reads
                                * Lua files from */
  int sandbox;                 /* 1: scripts the host does not fully trust */
  uint64_t instruction_budget; /* what one call into Lua may spend (a
                                * kura_call, the main chunk of kura_load_*, one
                                * resume of a task), in VM instructions plus the
                                * work done in C on the script's behalf; beyond
                                * it the call fails with KURA_ELIMIT
                                * ("instruction budget exceeded"). Also bounds
                                * one kura_tick. 0: unlimited */
  size_t memory_limit;         /* bytes the Lua state may hold while a call
                                * runs; past it the call fails with KURA_ENOMEM
                                * ("memory limit exceeded"), not the process.
                                * Also the default of store_max_memory.
                                * 0: unlimited. Must exceed the ~100 KB a fresh
                                * state uses */
  const char *backend;         /* the shared client's backend: "memory",
                                * "redis://host:port", ...; NULL: $KURA_BACKEND,
                                * else "memory" */
  double default_ttl;          /* seconds; <= 0: $MOMENTO_TTL_SECONDS, else 60 */
  const char *store;           /* memory backend: the named store of this
                                * runtime's clients (kura_client_get and the
                                * scripts' kura.client()); NULL: "default".
                                * Runtimes that name the same store share its
                                * items and its byte budget */
  size_t store_max_memory;     /* memory backend: that store's byte budget,
                                * keys, values and overhead counted; a set
                                * beyond it evicts other items, an item larger
                                * than it fails with KURA_ELIMIT. Set when a
                                * client opens the store (the last runtime to
                                * do so sets it). 0: memory_limit when that is
                                * set, else the store's as it is */
  const char *momento_endpoint; /* the shared client's Momento endpoint (backend
                                * momento or momento-http); http://host:port is
                                * plaintext. NULL: $KURA_MOMENTO_ENDPOINT, else
                                * the one the credential names */
  double load_timeout;         /* seconds kura_load_* wait for the script's main
                                * chunk to finish (it may wait on a remote
                                * backend); past it KURA_ETIMEOUT. 0:
                                * KURA_LOAD_TIMEOUT_DEFAULT */
} kura_options;

#define KURA_LOAD_TIMEOUT_DEFAULT 30.0

/* The sandbox (sandbox = 1, with instruction_budget and memory_limit set).
 *
 * What it guarantees, for any script and any number of them:
 *
 * - No file, no native code, no process, no environment. Gone: io, debug,
 *   dofile, loadfile, string.dump, package.loadlib, package.searchpath, the C
 *   searchers, os but os.time/clock/date, kura.json.lines, kura.on_signal,
 *   kura.credential.from_env. load compiles text only (never bytecode);
 *   require finds package.preload, the kura.* modules and Lua text files on
 *   lua_path, whatever a script puts in package.path.
 * - No call runs past its budget. The budget is spent by VM instructions, by
 *   the work C does for the script (pattern matching step by step, 1 per 32
 *   bytes the Lua state allocates, string.rep, 1000 per line of kura.log or
 *   print, a pass over the heap for collectgarbage, table.sort's comparisons,
 *   load, the bytes a cache call copies, 1000 per coroutine or task made),
 *   and by CPU time: a call whose instructions average more than 50 ns of
 *   CPU is charged its CPU time (so a budget of 10^7 is at most about 0.5 s
 *   of CPU, however slow each instruction is). Every path a script's code
 *   runs on is under it: message handlers, __close, coroutines,
 *   metamethods, gsub and sort callbacks; finalizers written in Lua (__gc)
 *   are refused. The stop comes soon after the budget is spent: within 1000
 *   instructions (64 while the state holds strings or tables of 256 KiB or
 *   more), at once for charged C work, and within about 5 ms of CPU once a
 *   call's instructions are seen to be slow (the first steps of a call, up
 *   to 32 + 1000 instructions, or 4 + 64, are measured after the fact).
 * - Once a limit is passed, nothing of that script runs again in that call,
 *   even if it catches the error: the call fails with KURA_ELIMIT
 *   ("instruction budget exceeded (N instructions)") or KURA_ENOMEM
 *   ("memory limit exceeded (N bytes)"), and the host's next call starts
 *   afresh. A task that passes a limit fails with that message.
 * - Memory: while a call runs the Lua state holds at most memory_limit. Past
 *   memory_limit - min(memory_limit / 8, 1 MiB) the call stops at its next
 *   instruction, after at most one full collection per entry of the host
 *   (kura_call, kura_load_*, kura_tick) or per quarter of the limit
 *   allocated: failing at the cap is cheap. The store holds at most
 *   store_max_memory; scripts can neither name another store nor set its
 *   budget (kura.client{store = ...} or {max_memory = ...} give nil and a
 *   PERMISSION_ERROR).
 * - One kura_tick runs ready tasks until they have spent instruction_budget
 *   or have run for 10 ns per instruction of it, and fires at most
 *   instruction_budget / 1000 timers; the others wait for the next tick. A
 *   script that spawns without end slows its own tasks, not the host. The
 *   task of a timer's beat is made under memory_limit too: kura.every skips
 *   a beat while the task of its last one waits to run, and a timer whose
 *   task cannot start at the memory limit stops (with a line on stderr).
 * - The library tables (string, table, math, coroutine, utf8, os, package,
 *   kura and its tables, the kura.* modules) and the string metatable are
 *   read-only; getmetatable gives a read-only view of the metatables that
 *   belong to C; collectgarbage cannot stop or retune the collector.
 *
 * What it does not guarantee:
 *
 * - Isolation between scripts of one runtime: they share the globals, the
 *   tables of the modules a host's lua_path provides, and the store. Give
 *   scripts that must not see each other a runtime each.
 * - The network: kura.http and remote backends (kura.client{backend =
 *   "redis://..."}) reach any host this process can. Their buffers, like
 *   libuv's and libcurl's, are outside memory_limit.
 * - Wall time: the bounds are in CPU time; on a loaded host a call takes
 *   longer. The budget counts CPU time too, so a script that leans on slow C
 *   functions runs fewer instructions than the budget says.
 * - Output: a call may still write about instruction_budget / 1000 lines to
 *   stdout and stderr, and a write blocks while the host's stream does.
 * - Lua's own behaviour in every detail: coroutines nest about 100 deep
 *   instead of 200 (each runs under a pcall of its own), library tables are
 *   proxies (rawget and next see them empty, and a library function called
 *   through pcall is named '?' in its argument errors), and a script's
 *   budget runs out sooner the more CPU its instructions take.
 * - Anything without sandbox = 1: instruction_budget and memory_limit then
 *   bound scripts that cooperate (debug.sethook can remove the hook), and a
 *   xpcall handler or a coroutine's __close may run unbudgeted.
 * - What the host does outside calls: the arguments it pushes, compiling a
 *   chunk it loads. */

/* Creates a runtime. opts may be NULL (all defaults). On failure *out is NULL:
 * KURA_EINVAL for a backend this kura does not have or cannot read (an
 * unknown scheme, a bad port, rediss://) and for a default_ttl that is NaN
 * or over KURA_TTL_MAX_SECONDS. */
KURA_API int kura_runtime_new(const kura_options *opts, kura_runtime **out);
/* Closes scripts, the shared client (pending C requests complete with
 * KURA_ECANCELLED) and, when the runtime owns it, the loop. With the host's
 * loop it runs that loop without blocking until its own handles have closed.
 * Not from inside a callback of this runtime. NULL is a no-op. */
KURA_API void kura_runtime_free(kura_runtime *rt);

/* The message of the last failed call on rt (never NULL; "" when none):
 * what the script raised, with its traceback, or why a call was refused.
 * Valid until the next call on rt. */
KURA_API const char *kura_errmsg(const kura_runtime *rt);

/* Bytes the runtime's Lua state holds. */
KURA_API size_t kura_lua_bytes(const kura_runtime *rt);

/* ========================================================================= */
/* Scripts                                                                    */
/* ========================================================================= */

/* Loads a script (a file, or a string with a name for messages) and runs its
 * main chunk as the main task until it has finished, waits included: a chunk
 * that awaits create_cache on Redis and then defines its handlers has them
 * defined when this returns. While the chunk waits, these functions turn the
 * runtime's loop, the host's loop when the runtime runs on it (its other
 * handles run meanwhile too); so call them outside that loop's callbacks
 * (from inside kura_tick, kura_run or a kura_call_async callback a chunk that
 * waits fails with KURA_EINVAL). Tasks the chunk spawned go on as the loop
 * turns. Typical scripts define their handlers as globals.
 * Errors: KURA_ETIMEOUT the chunk still waits after load_timeout seconds (it
 * goes on as the loop turns; kura_runtime_free ends it);
 * KURA_EINVAL the script cannot be read or does not compile;
 * KURA_EUNKNOWN it raised an error; KURA_ELIMIT it ran out of its instruction
 * budget; KURA_ENOMEM out of memory. kura_errmsg says more. Binary (precompiled)
 * chunks are refused when the sandbox is on. */
KURA_API int kura_load_file(kura_runtime *rt, const char *path);
KURA_API int kura_load_string(kura_runtime *rt, const char *code, const char *name);

/* A value passed to or returned from Lua. */
typedef enum kura_type {
  KURA_TNIL = 0,
  KURA_TBOOL,   /* b */
  KURA_TINT,    /* i (a Lua integer) */
  KURA_TNUM,    /* n (a Lua float) */
  KURA_TSTR,    /* s, len: binary-safe; results are NUL-terminated too */
  KURA_TOTHER   /* a result of another Lua type (table, function...): s names
                 * the type ("table"); never valid as an argument */
} kura_type;

typedef struct kura_value {
  kura_type type;
  int b;
  int64_t i;
  double n;
  const char *s;
  size_t len;
} kura_value;

/* Constructors for arguments (C and C++). */
static inline kura_value kura_nil(void) { kura_value v = {KURA_TNIL, 0, 0, 0, 0, 0}; return v; }
static inline kura_value kura_bool(int b) { kura_value v = {KURA_TBOOL, b != 0, 0, 0, 0, 0}; return v; }
static inline kura_value kura_int(int64_t i) { kura_value v = {KURA_TINT, 0, i, 0, 0, 0}; return v; }
static inline kura_value kura_num(double n) { kura_value v = {KURA_TNUM, 0, 0, n, 0, 0}; return v; }
/* s must stay valid during the call only (Lua copies it); NULL is nil. */
static inline kura_value kura_lstr(const char *s, size_t len)
{
  kura_value v = {s ? KURA_TSTR : KURA_TNIL, 0, 0, 0, s, s ? len : 0};
  return v;
}
KURA_API kura_value kura_str(const char *s); /* NUL-terminated; NULL is nil */

/* Calls the global function `fn` with nargs arguments and copies its first
 * nres results into res (missing ones are nil; extra ones are dropped; res may
 * be NULL when nres is 0). The call runs synchronously and may not suspend:
 * cache calls on the memory backend work; a handler that must wait (a remote
 * backend, kura.sleep) fails at once with a message that names
 * kura_call_async, which runs it as a task. The instruction budget restarts
 * for every call.
 *
 * Ownership: string results (s) point into a buffer of rt that stays valid
 * until the next kura_call, kura_load_* or kura_runtime_free on rt. Copy what
 * you keep.
 * Errors: KURA_ENOTFOUND no global function `fn`; KURA_EINVAL bad arguments;
 * KURA_EUNKNOWN the function raised an error (kura_errmsg: message +
 * traceback); KURA_ELIMIT instruction budget exceeded; KURA_ENOMEM memory cap
 * or out of memory. The runtime stays usable after any of them. */
KURA_API int kura_call(kura_runtime *rt, const char *fn, const kura_value *args, int nargs,
                       kura_value *res, int nres);

/* Starts the global function `fn` as a task (a coroutine that may suspend on
 * remote cache calls, kura.sleep, ...). It runs on the next kura_tick or
 * kura_run; its results are dropped and an error it raises is printed on
 * stderr as an uncaught task error. String arguments are copied. */
KURA_API int kura_spawn(kura_runtime *rt, const char *fn, const kura_value *args, int nargs);

/* Runs the global `fn` with nargs arguments as a task that may wait (remote
 * cache calls, kura.sleep), and once it has finished calls
 *   cb(udata, err, res, nres)
 * with its results (err KURA_OK; strings point into the Lua state: valid
 * during the callback only) or its error (KURA_EUNKNOWN it raised,
 * KURA_ELIMIT / KURA_ENOMEM a limit of the sandbox, which applies per resume
 * as for every task; kura_errmsg says more, as for kura_call; res NULL). The
 * task starts at once and runs until it first waits; the rest runs as the
 * loop turns (kura_tick, kura_run, or the host's loop). So a handler that
 * never waits (the memory backend) has called cb before kura_call_async
 * returns, as kura_get does there; called from inside a callback of rt, the
 * task starts as the loop turns.
 * KURA_OK means cb will be called exactly once: with KURA_ECANCELLED if the
 * runtime is freed first. Any other return refuses the call (no such global
 * function, bad arguments) and cb is never called. cb may call kura_* on rt. */
typedef void (*kura_call_cb)(void *udata, int err, const kura_value *res, int nres);
KURA_API int kura_call_async(kura_runtime *rt, const char *fn, const kura_value *args, int nargs,
                             kura_call_cb cb, void *udata);

/* ========================================================================= */
/* The loop                                                                   */
/* ========================================================================= */

/* One non-blocking turn of the runtime's loop: due timers fire, ready tasks
 * run (with an instruction budget, until they have spent it: see "The
 * sandbox"), finished I/O completes. For hosts that tick (call it once per
 * frame).
 * Returns the number of tasks, timers and C requests still pending (>= 0);
 * 0 means idle. With the host's loop the host may instead run that loop
 * itself; kura_tick then runs one non-blocking turn of it. */
KURA_API int kura_tick(kura_runtime *rt);
/* Runs the loop until no task, timer or C request is left (blocking while
 * they wait). KURA_OK, KURA_EUNKNOWN if a task raised an error no one caught
 * (printed on stderr), KURA_ECANCELLED if tasks wait for something that can
 * no longer happen. */
KURA_API int kura_run(kura_runtime *rt);

/* ========================================================================= */
/* The kura command's ways, for any host                                      */
/* ========================================================================= */

/* Runs a script as `kura run` does: sets the global `arg` from argv as the
 * stock lua command does (arg[0] = argv[script_index], the script's
 * arguments at 1.., what comes before at negative indices; argv may be NULL:
 * no `arg`), loads the file at path ("-": standard input) or, when code is
 * not NULL, the chunk code (named "(command line)"), runs it as the main
 * task with arg[1..n] as `...`, then the loop until every task and timer
 * has ended. Messages (load errors, uncaught task errors, a deadlock) go to
 * stderr. Returns the exit status of `kura run`: 0; 1 if a task raised an
 * error no one caught or tasks wait for something that can no longer
 * happen; 2 if the script could not be loaded; or more, when the script
 * set it with kura.set_exit_status. Not in the sandbox (returns 2: use
 * kura_load_*, which refuse bytecode there). */
KURA_API int kura_run_script(kura_runtime *rt, const char *path, const char *code, int argc,
                             char **argv, int script_index);

/* Options of kura_serve (zero-initialize, then set what you need). */
typedef struct kura_serve_options {
  const char *host;             /* the address to listen on; NULL: 127.0.0.1 */
  int port;                     /* 0: a free port (shown on stderr) */
  const char *auth_token;       /* answer only calls that present it; NULL: any */
  unsigned max_connections;     /* 0: 1024 */
  unsigned max_streams;         /* concurrent calls per connection; 0: 128 */
  const char *script;           /* run first, as kura_run_script does, up to its
                                 * first wait; it may set kura.serve.on_miss.
                                 * NULL: none */
  int argc;                     /* the script's `arg`, as for kura_run_script */
  char **argv;
  int script_index;
} kura_serve_options;

/* Serves the runtime's shared client over Momento's protocols (gRPC and
 * the HTTP API, one port) on the runtime's loop, as `kura serve` does,
 * until SIGINT or SIGTERM: then the calls in flight are answered and it
 * returns 0 (a second signal closes at once). 1 when it cannot start (the
 * port, the backend), 2 when the script cannot be loaded. Messages go to
 * stderr. Blocks: it drives the loop itself. */
KURA_API int kura_serve(kura_runtime *rt, const kura_serve_options *opts);

/* Checks opts as kura_runtime_new and the runtime's shared client take
 * them, with what they leave open taken from the environment by the same
 * rule (KURA_BACKEND, MOMENTO_TTL_SECONDS): for a host that refuses a bad
 * configuration before anything runs, as the kura command does. KURA_OK,
 * or KURA_EINVAL with a message in why (cap bytes; may be NULL) that starts
 * with where the value came from: the field ("backend: unknown backend
 * 'x' ...", "default_ttl: ...") or the variable ("KURA_BACKEND: ...",
 * "MOMENTO_TTL_SECONDS: ..."). */
KURA_API int kura_options_check(const kura_options *opts, char *why, size_t cap);
/* Parses text as a number of seconds for a TTL, as --default-ttl and
 * MOMENTO_TTL_SECONDS are read: a decimal > 0 and <= KURA_TTL_MAX_SECONDS
 * ("60", "0.5"). KURA_OK with *out set, else KURA_EINVAL with why saying
 * what is wrong (the text shown escaped and cut short). */
KURA_API int kura_seconds_parse(const char *text, double *out, char *why, size_t cap);

/* ========================================================================= */
/* The cache from C                                                           */
/* ========================================================================= */

/* The runtime's shared client: the same backend, default TTL and (memory
 * backend) the same named store ("default") as kura.client() in its scripts,
 * so both see the same caches. Owned by rt: never free it. NULL if the
 * backend cannot be opened (kura_errmsg says why). */
KURA_API kura_client *kura_client_get(kura_runtime *rt);
#define kura_client(rt) kura_client_get(rt)

/* The cache calls on it (kura_get, kura_set, ...) and their results are
 * those of kura_client.h. */

#ifdef __cplusplus
}
#endif
#endif
