/* The runtime: owns one libuv loop (or borrows the host's) and one lua_State,
 * runs a script's main chunk as a task and drives the loop until no task and
 * no timer is left. Scheduling itself is in task.c and timeout.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/client.h"
#include "kura.h"
#include "lua/binding.h"
#include "runtime/budget.h"
#include "runtime/rt_internal.h"

/* --- allocation and panics ------------------------------------------------------ */

/* The Lua state's blocks of up to KR_FREE_MAX bytes are sized to their
 * 16-byte class, and a freed one goes to its class's list for the next
 * allocation of that class (Lua tells the size of a block it frees, so a
 * block needs no header). A script that makes and drops tables and strings
 * at a steady rate (a response per request, say) then reuses the same
 * blocks where malloc would go through its bins, consolidate its fast bins
 * before a request of 1 KB or more, and coalesce on free. The lists hold at
 * most KR_FREE_BUDGET bytes; beyond that, freed blocks go back to malloc. */
static size_t block_class(size_t n)
{
  return (n + 15) >> 4;
}

/* Under the sanitizers every block is malloc's own, so that a use after
 * free or an overrun inside the Lua state's memory is still caught. */
#ifdef KURA_SANITIZED
#define KR_FREE_CACHE 0
#else
#define KR_FREE_CACHE 1
#endif

static void *block_alloc(kr_runtime *rt, size_t n)
{
  if (!KR_FREE_CACHE || n > KR_FREE_MAX)
    return malloc(n);
  size_t c = block_class(n);
  void *p = rt->free_lists[c];
  if (p) {
    rt->free_lists[c] = *(void **)p;
    rt->free_bytes -= c << 4;
    return p;
  }
  return malloc(c << 4);
}

static void block_free(kr_runtime *rt, void *p, size_t n)
{
  size_t c = block_class(n);
  if (!KR_FREE_CACHE || n > KR_FREE_MAX || rt->free_bytes + (c << 4) > KR_FREE_BUDGET) {
    free(p);
    return;
  }
  *(void **)p = rt->free_lists[c];
  rt->free_lists[c] = p;
  rt->free_bytes += c << 4;
}

static void blocks_release(kr_runtime *rt)
{
  for (size_t c = 0; c < KR_FREE_CLASSES; c++) {
    while (rt->free_lists[c]) {
      void *p = rt->free_lists[c];
      rt->free_lists[c] = *(void **)p;
      free(p);
    }
  }
  rt->free_bytes = 0;
}

/* The limits of the call that runs (budget.h) on an allocation that grows
 * the state by `more` bytes: charged to the budget; 1 if the memory cap
 * refuses it. */
static int limited(kr_runtime *rt, size_t more)
{
  if (rt->budget) {
    rt->budget_used += more >> KR_ALLOC_SHIFT;
    if (rt->budget_used > rt->budget)
      kr_budget_arm(rt);
  }
  if (!rt->mem_limit)
    return 0;
  rt->mem_grown += more;
  size_t want = rt->lua_bytes + more;
  if (want <= rt->mem_soft)
    return 0;
  if (want > rt->mem_limit) {
    kr_memory_refuse(rt);
    return 1;
  }
  if (!rt->mem_over) {
    rt->mem_over = 1;
    kr_budget_arm(rt);
  }
  return 0;
}

/* Counts the live blocks of KR_BIG_BLOCK bytes or more (budget.c). */
static void count_big(kr_runtime *rt, size_t old, size_t nsize)
{
  int was = old >= KR_BIG_BLOCK, is = nsize >= KR_BIG_BLOCK;
  if (is && !was && rt->big_live++ == 0)
    kr_budget_big_block(rt);
  else if (was && !is)
    rt->big_live--;
}

/* Every allocation of the Lua state comes here, so the runtime knows (and
 * may limit) how much memory its scripts hold. */
static void *rt_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  kr_runtime *rt = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    if (ptr)
      block_free(rt, ptr, osize);
    rt->lua_bytes -= old;
    count_big(rt, old, 0);
    return NULL;
  }
  /* The limits hold only while a protected call runs Lua (rt->running: a
   * task resume, a host's kura_call), where the memory error a refusal
   * causes is always caught. */
  if (nsize > old && rt->running && limited(rt, nsize - old))
    return NULL;
  void *p;
  if (!ptr) {
    p = block_alloc(rt, nsize);
  } else if (!KR_FREE_CACHE || (old > KR_FREE_MAX && nsize > KR_FREE_MAX)) {
    p = realloc(ptr, nsize);
  } else if (old <= KR_FREE_MAX && nsize <= KR_FREE_MAX &&
             block_class(old) == block_class(nsize)) {
    p = ptr; /* the block has room already */
  } else if ((p = block_alloc(rt, nsize)) != NULL) {
    memcpy(p, ptr, old < nsize ? old : nsize);
    block_free(rt, ptr, old);
  }
  if (p) {
    rt->lua_bytes += nsize - old;
    count_big(rt, old, nsize);
  }
  return p;
}

static int rt_panic(lua_State *L)
{
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "kura: PANIC: unprotected error in a call to Lua: %s\n",
          msg ? msg : "(error object is not a string)");
  return 0; /* Lua aborts the process */
}

/* --- life cycle ------------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
  return s && *s ? strdup(s) : NULL;
}

static void config_copy(kr_runtime_config *dst, const kr_runtime_config *src)
{
  kr_runtime_config none = {0};
  if (!src)
    src = &none;
  kr_client_config env = {.backend = src->backend, .default_ttl = src->default_ttl,
                          .momento_endpoint = src->momento_endpoint};
  char why[8];
  /* A MOMENTO_TTL_SECONDS that is no number of seconds leaves 0 (unset):
   * kura.client() then reads it again and says what is wrong. */
  if (kr_client_config_env(&env, why, sizeof why))
    env.default_ttl = 0;
  dst->backend = dup_or_null(env.backend);
  dst->momento_endpoint = dup_or_null(env.momento_endpoint);
  dst->store = dup_or_null(src->store);
  dst->store_max_memory = src->store_max_memory;
  dst->default_ttl = env.default_ttl;
}

static int open_libs(lua_State *L)
{
  luaL_openlibs(L);
  kr_task_open(L);
  kr_timer_open(L);
  luaL_requiref(L, "kura", luaopen_kura, 1);
  return 0;
}

static void on_close(uv_handle_t *h)
{
  kr_runtime *rt = h->data;
  rt->handles_open--;
}

static void handles_init(kr_runtime *rt)
{
  uv_check_init(rt->loop, &rt->check);
  uv_idle_init(rt->loop, &rt->idle);
  uv_timer_init(rt->loop, &rt->timer);
  rt->check.data = rt->idle.data = rt->timer.data = rt;
  rt->handles_open = 3;
}

int kr_runtime_new(uv_loop_t *loop, const kr_runtime_config *cfg, kr_runtime **out)
{
  *out = NULL;
  kr_runtime *rt = calloc(1, sizeof *rt);
  if (!rt)
    return KURA_ENOMEM;
  config_copy(&rt->cfg, cfg);
  rt->loop = loop;
  if (!loop) {
    if (uv_loop_init(&rt->own_loop) != 0) {
      kr_runtime_free(rt);
      return KURA_EINTERNAL;
    }
    rt->loop = &rt->own_loop;
    rt->owns_loop = 1;
  }
  handles_init(rt);
  rt->L = lua_newstate(rt_alloc, rt);
  if (!rt->L) {
    kr_runtime_free(rt);
    return KURA_ENOMEM;
  }
  *(kr_runtime **)lua_getextraspace(rt->L) = rt;
  lua_atpanic(rt->L, rt_panic);
  lua_pushcfunction(rt->L, open_libs);
  if (lua_pcall(rt->L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "kura: cannot start the runtime: %s\n", lua_tostring(rt->L, -1));
    kr_runtime_free(rt);
    return KURA_EINTERNAL;
  }
  *out = rt;
  return KURA_OK;
}

static void close_loop(kr_runtime *rt)
{
  uv_handle_t *hs[] = {(uv_handle_t *)&rt->check, (uv_handle_t *)&rt->idle,
                       (uv_handle_t *)&rt->timer};
  for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
    uv_close(hs[i], on_close);
  while (rt->handles_open > 0)
    uv_run(rt->loop, UV_RUN_NOWAIT);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void kr_runtime_free(kr_runtime *rt)
{
  if (!rt)
    return;
  rt->closing = 1;
  if (rt->L)
    lua_close(rt->L); /* finalizers run; wakes they cause are ignored */
  rt->L = NULL;
  blocks_release(rt);
  if (rt->loop)
    close_loop(rt);
  if (rt->owns_loop && uv_loop_close(&rt->own_loop) == UV_EBUSY) {
    /* Handles someone forgot: close them so the loop can go. */
    uv_walk(&rt->own_loop, close_leftover, NULL);
    uv_run(&rt->own_loop, UV_RUN_DEFAULT);
    uv_loop_close(&rt->own_loop);
  }
  free(rt->heap);
  free((char *)rt->cfg.backend);
  free((char *)rt->cfg.momento_endpoint);
  free((char *)rt->cfg.store);
  free(rt);
}

/* --- accessors -------------------------------------------------------------------- */

lua_State *kr_runtime_lua(kr_runtime *rt)
{
  return rt->L;
}

uv_loop_t *kr_runtime_loop(kr_runtime *rt)
{
  return rt->loop;
}

const kr_runtime_config *kr_runtime_config_get(kr_runtime *rt)
{
  return &rt->cfg;
}

kr_runtime *kr_runtime_from_lua(lua_State *L)
{
  return *(kr_runtime **)lua_getextraspace(L);
}

size_t kr_runtime_lua_bytes(kr_runtime *rt)
{
  return rt->lua_bytes;
}

void kr_runtime_set_sandboxed(kr_runtime *rt)
{
  rt->sandboxed = 1;
}

int kr_runtime_sandboxed(const kr_runtime *rt)
{
  return rt->sandboxed;
}

void kr_runtime_set_exit_status(kr_runtime *rt, int status)
{
  if (status > rt->exit_status)
    rt->exit_status = status;
}

void kr_runtime_on_idle(uv_idle_t *h)
{
  (void)h; /* Only here so that the poll phase does not block. */
}

void kr_runtime_on_check(uv_check_t *h)
{
  kr_task_queue_drain(h->data);
}

/* --- running scripts ------------------------------------------------------------------ */

void kr_runtime_set_args(kr_runtime *rt, int argc, char **argv, int script_index)
{
  lua_State *L = rt->L;
  lua_createtable(L, argc - script_index, script_index + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script_index);
  }
  lua_setglobal(L, "arg");
}

/* Runs the loop until no task and no timer is left; returns the exit status. */
static int drive(kr_runtime *rt)
{
  while (rt->ntasks > 0 || rt->ntimers > 0) {
    if (uv_run(rt->loop, UV_RUN_ONCE) == 0 && (rt->ntasks > 0 || rt->ntimers > 0)) {
      fprintf(stderr, "kura: %d task(s) wait for something that can no longer "
                      "happen (deadlock)\n", rt->ntasks);
      kr_runtime_set_exit_status(rt, 1);
      break;
    }
  }
  lua_gc(rt->L, LUA_GCCOLLECT); /* unreachable failed tasks report themselves */
  kr_task_report_unjoined(rt);
  if (rt->uncaught > 0)
    kr_runtime_set_exit_status(rt, 1);
  return rt->exit_status;
}

/* The loaded chunk is on top of the stack: start it as the main task with
 * the script's arguments (arg[1..n]) as `...`; it runs on the loop. */
static void start_main(kr_runtime *rt)
{
  lua_State *L = rt->L;
  int n = 0;
  if (lua_getglobal(L, "arg") == LUA_TTABLE) {
    n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 2, "too many arguments");
    for (int i = 1; i <= n; i++)
      lua_rawgeti(L, -i, i);
    lua_remove(L, -n - 1);
  } else {
    lua_pop(L, 1);
  }
  kr_task_spawn(rt, L, n, 1);
  lua_pop(L, 1);
}

static int run_main(kr_runtime *rt)
{
  start_main(rt);
  return drive(rt);
}

static int load_failed(kr_runtime *rt)
{
  fprintf(stderr, "kura: %s\n", lua_tostring(rt->L, -1));
  lua_pop(rt->L, 1);
  return 2;
}

int kr_runtime_run_file(kr_runtime *rt, const char *path, int argc, char **argv, int script_index)
{
  if (argv)
    kr_runtime_set_args(rt, argc, argv, script_index);
  if (path && strcmp(path, "-") == 0)
    path = NULL; /* standard input */
  if (luaL_loadfilex(rt->L, path, NULL) != LUA_OK)
    return load_failed(rt);
  return run_main(rt);
}

int kr_runtime_start_file(kr_runtime *rt, const char *path, int argc, char **argv,
                          int script_index)
{
  kr_runtime_set_args(rt, argc, argv, script_index);
  if (luaL_loadfilex(rt->L, path, NULL) != LUA_OK)
    return load_failed(rt);
  start_main(rt);
  return 0;
}

int kr_runtime_uncaught(const kr_runtime *rt)
{
  return rt->uncaught;
}

int kr_runtime_run_string(kr_runtime *rt, const char *chunk, const char *chunkname)
{
  if (luaL_loadbufferx(rt->L, chunk, strlen(chunk), chunkname, "t") != LUA_OK)
    return load_failed(rt);
  return run_main(rt);
}
