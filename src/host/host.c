/* The host layer: the public runtime API of include/kura.h for programs
 * that embed kura (and for the kura command, src/main.c): runtimes with
 * options and limits, loading scripts, calling Lua handlers with tagged
 * values, driving the loop, the runtime's shared client for C. It composes
 * the runtime (src/runtime/: runtime.h, rt_internal.h, the sandbox) and the
 * binding (src/lua/: the `kura` module); neither of them knows this layer.
 * Nothing here is visible to the host but the kura_ functions.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/client.h"
#include "host/host.h"
#include "kura.h"
#include "lua/binding.h"
#include "runtime/budget.h"
#include "runtime/rt_internal.h"
#include "runtime/sandbox.h"

struct kura_runtime {
  kr_runtime *rt;
  lua_State *L;         /* rt's main state */
  kr_client *client;    /* the C side of the shared client, made on first use */
  int sandbox;          /* load only text chunks */
  int msgh;             /* stack slots of the main state that stay for good: */
  int globals;          /* the traceback handler and the globals table */
  char *err;            /* the last error message (malloc'd), or NULL */
  char *rbuf;           /* the string results of the last kura_call */
  size_t rcap;
  double load_timeout;  /* seconds kura_load_* waits for the main chunk */
  int in_loop;          /* > 0 while kura_tick/kura_run turn the loop */
  struct acall *calls;  /* kura_call_async calls not yet answered */
  kura_options opts;    /* as made, strings in opt_strings (kura.thread) */
  char *opt_strings;
  kr_host_thread *threads; /* kura.thread threads not yet finished */
};

/* A kura_call_async call: its task holds it until it answers. */
typedef struct acall {
  struct acall *prev, *next;
  kura_runtime *k;
  kura_call_cb cb;
  void *udata;
} acall;

/* --- errors ----------------------------------------------------------------- */

static int fail(kura_runtime *k, int err, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static int fail(kura_runtime *k, int err, const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  free(k->err);
  k->err = strdup(buf);
  return err;
}

/* The error object on top of L becomes the message; pops it. */
static void take_error(kura_runtime *k)
{
  const char *msg = lua_tostring(k->L, -1);
  free(k->err);
  k->err = strdup(msg ? msg : "(error object is not a string)");
  lua_pop(k->L, 1);
}

static void clear_error(kura_runtime *k)
{
  free(k->err);
  k->err = NULL;
}

const char *kura_errmsg(const kura_runtime *k)
{
  return k && k->err ? k->err : "";
}

/* The code for a failed protected call that ended with `status`. */
static int code_of(kura_runtime *k, int status)
{
  int stop = kr_budget_stopped(k->rt);
  if (stop == KR_STOP_MEMORY || status == LUA_ERRMEM)
    return KURA_ENOMEM;
  if (stop == KR_STOP_BUDGET)
    return KURA_ELIMIT;
  return KURA_EUNKNOWN;
}

/* After a call stopped by a limit, the message names the limit even when
 * what reached the host was Lua's own "not enough memory". */
static void name_the_limit(kura_runtime *k, int rc)
{
  char why[96];
  if (rc != KURA_ENOMEM || !k->rt->mem_limit || strstr(kura_errmsg(k), "memory limit"))
    return;
  kr_budget_stop_message(k->rt, KR_STOP_MEMORY, why, sizeof why);
  char *msg = malloc(strlen(why) + strlen(kura_errmsg(k)) + 3);
  if (!msg)
    return;
  sprintf(msg, "%s: %s", why, kura_errmsg(k));
  free(k->err);
  k->err = msg;
}

/* Message handler of kura_call: the message with a traceback. */
static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (!msg)
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* --- life cycle ----------------------------------------------------------------- */

/* Runs on the main state, protected: the binding with the shared client's
 * configuration, the path and the sandbox. */
static int setup(lua_State *L)
{
  const char *path = lua_tostring(L, 1);
  int sandbox = lua_toboolean(L, 2);
  kr_lua_open(L, lua_touserdata(L, 3));
  if (!sandbox) /* threads are not for scripts the host does not trust */
    kr_host_open_thread(L, lua_touserdata(L, 4));
  if (path) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s;%s", path, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
  }
  if (sandbox) {
    lua_pushcfunction(L, kr_sandbox_open);
    lua_call(L, 0, 0);
  }
  return 0;
}

static int apply_options(kura_runtime *k, const kura_options *o, kr_lua_config *cfg)
{
  lua_pushcfunction(k->L, setup);
  lua_pushstring(k->L, o->lua_path);
  lua_pushboolean(k->L, o->sandbox);
  lua_pushlightuserdata(k->L, cfg);
  lua_pushlightuserdata(k->L, k);
  if (lua_pcall(k->L, 4, 0, 0) != LUA_OK) {
    take_error(k);
    return KURA_EINTERNAL;
  }
  k->sandbox = o->sandbox != 0;
  k->load_timeout = o->load_timeout > 0 ? o->load_timeout : KURA_LOAD_TIMEOUT_DEFAULT;
  /* kura_call reuses these instead of pushing them for every call. */
  lua_pushcfunction(k->L, traceback);
  k->msgh = lua_gettop(k->L);
  lua_rawgeti(k->L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  k->globals = lua_gettop(k->L);
  kr_budget_set(k->rt, o->instruction_budget);
  kr_memory_limit_set(k->rt, o->memory_limit);
  return KURA_OK;
}

/* What the host set in opts, as the runtime takes it: KURA_EINVAL with
 * why naming the field. */
static int check_fields(const kura_options *o, char *why, size_t cap)
{
  char msg[256];
  if (!(o->load_timeout >= 0 && o->load_timeout <= KURA_TTL_MAX_SECONDS)) {
    snprintf(why, cap, "load_timeout: %g is not a number of seconds >= 0", o->load_timeout);
    return KURA_EINVAL;
  }
  if (!(o->default_ttl <= KURA_TTL_MAX_SECONDS)) {
    snprintf(why, cap, "default_ttl: %g is not a number of seconds <= %d (ten years)",
             o->default_ttl, KURA_TTL_MAX_SECONDS);
    return KURA_EINVAL;
  }
  if (o->backend && kr_backend_check(o->backend, msg, sizeof msg)) {
    snprintf(why, cap, "backend: %s", msg);
    return KURA_EINVAL;
  }
  return KURA_OK;
}

int kura_runtime_new(const kura_options *opts, kura_runtime **out)
{
  static const kura_options defaults;
  if (!out)
    return KURA_EINVAL;
  *out = NULL;
  if (!opts)
    opts = &defaults;
  char why[320];
  if (check_fields(opts, why, sizeof why)) {
    fprintf(stderr, "kura: cannot create the runtime: %s\n", why);
    return KURA_EINVAL;
  }
  kura_runtime *k = calloc(1, sizeof *k);
  if (!k || kr_host_options_copy(opts, &k->opts, &k->opt_strings)) {
    free(k);
    return KURA_ENOMEM;
  }
  k->opts.loop = opts->loop;
  kr_lua_config cfg = {
    .backend = opts->backend,
    .default_ttl = opts->default_ttl,
    .momento_endpoint = opts->momento_endpoint,
    .store = opts->store,
    /* memory_limit covers the store too, unless the host says otherwise */
    .store_max_memory = opts->store_max_memory ? opts->store_max_memory : opts->memory_limit,
  };
  int rc = kr_runtime_new((uv_loop_t *)opts->loop, &k->rt);
  if (rc == KURA_OK) {
    k->L = kr_runtime_lua(k->rt);
    rc = apply_options(k, opts, &cfg);
  }
  if (rc != KURA_OK) {
    if (k->err)
      fprintf(stderr, "kura: cannot create the runtime: %s\n", k->err);
    kura_runtime_free(k);
    return rc;
  }
  *out = k;
  return KURA_OK;
}

static void cancel_calls(kura_runtime *k); /* kura_call_async's, below */

static void client_closed(void *ud)
{
  *(int *)ud = 1;
}

/* Closes the C client: its pending requests complete with KURA_ECANCELLED,
 * then the loop turns until its handles have closed. */
static void close_client(kura_runtime *k)
{
  int closed = 0;
  kr_client_close(k->client, client_closed, &closed);
  k->client = NULL;
  uv_loop_t *loop = kr_runtime_loop(k->rt);
  for (int i = 0; !closed && i < 1000; i++)
    uv_run(loop, UV_RUN_NOWAIT);
}

void kura_runtime_free(kura_runtime *k)
{
  if (!k)
    return;
  cancel_calls(k);
  if (k->threads)
    kr_host_threads_end(k->threads, kr_runtime_loop(k->rt));
  if (k->client)
    close_client(k);
  kr_runtime_free(k->rt);
  free(k->opt_strings);
  free(k->err);
  free(k->rbuf);
  free(k);
}

size_t kura_lua_bytes(const kura_runtime *k)
{
  return kr_runtime_lua_bytes(k->rt);
}

/* --- scripts ------------------------------------------------------------------- */

static int finished(const kr_task *t)
{
  return t->state == KR_TASK_DONE || t->state == KR_TASK_FAILED;
}

static void on_load_timeout(uv_timer_t *timer)
{
  *(int *)timer->data = 1;
}

static void free_handle(uv_handle_t *h)
{
  free(h);
}

/* Turns the loop until the main task t has finished, so that what its chunk
 * defines after a wait (create_cache on Redis, say) exists when kura_load_*
 * returns. At most load_timeout seconds: KURA_ETIMEOUT then, the task left
 * waiting (it goes on as the loop turns; kura_runtime_free ends it). */
static int wait_main(kura_runtime *k, kr_task *t)
{
  if (finished(t))
    return KURA_OK;
  if (k->in_loop)
    return fail(k, KURA_EINVAL, "the script's main chunk waits, and kura_load_* was called from "
                                "inside the runtime's loop (a callback), which it cannot turn");
  uv_loop_t *loop = kr_runtime_loop(k->rt);
  uv_timer_t *timer = malloc(sizeof *timer);
  if (!timer)
    return fail(k, KURA_ENOMEM, "out of memory");
  int expired = 0, rc = KURA_OK;
  uv_timer_init(loop, timer);
  timer->data = &expired;
  uv_timer_start(timer, on_load_timeout, (uint64_t)(k->load_timeout * 1000 + 0.5), 0);
  k->in_loop++;
  while (!finished(t) && !expired)
    uv_run(loop, UV_RUN_ONCE);
  k->in_loop--;
  if (!finished(t))
    rc = fail(k, KURA_ETIMEOUT, "the script's main chunk still waits after %g s (load_timeout): "
                                "it goes on as the loop turns", k->load_timeout);
  uv_close((uv_handle_t *)timer, free_handle);
  return rc;
}

/* The chunk loaded with `status` is on top of the stack (or its error):
 * runs it as the main task until it finishes (wait_main). */
static int run_main(kura_runtime *k, int status)
{
  lua_State *L = k->L;
  if (status != LUA_OK) {
    take_error(k);
    return status == LUA_ERRMEM ? KURA_ENOMEM : KURA_EINVAL;
  }
  kr_runtime *rt = k->rt;
  kr_task *t = kr_task_new(rt, L, 0, 0); /* pushes the task object */
  kr_budget_host_entry(rt);
  kr_task_resume(rt, t); /* at once: tasks already queued wait for the loop */
  int rc = wait_main(k, t);
  if (rc == KURA_OK && t->state == KR_TASK_FAILED) {
    t->joined = 1; /* the error goes to the host: not an uncaught one */
    lua_getiuservalue(L, -1, 2);
    rc = code_of(k, LUA_ERRRUN);
    take_error(k);
    name_the_limit(k, rc);
  }
  lua_pop(L, 1);
  return rc;
}

int kura_load_file(kura_runtime *k, const char *path)
{
  if (!k || !path)
    return KURA_EINVAL;
  clear_error(k);
  return run_main(k, luaL_loadfilex(k->L, path, k->sandbox ? "t" : NULL));
}

int kura_load_string(kura_runtime *k, const char *code, const char *name)
{
  if (!k || !code)
    return KURA_EINVAL;
  clear_error(k);
  int st = luaL_loadbufferx(k->L, code, strlen(code), name ? name : "=(string)",
                           k->sandbox ? "t" : NULL);
  return run_main(k, st);
}

/* --- values ----------------------------------------------------------------------- */

kura_value kura_str(const char *s)
{
  return kura_lstr(s, s ? strlen(s) : 0);
}

static int push_value(lua_State *L, const kura_value *v)
{
  switch (v->type) {
  case KURA_TNIL: lua_pushnil(L); return 0;
  case KURA_TBOOL: lua_pushboolean(L, v->b); return 0;
  case KURA_TINT: lua_pushinteger(L, (lua_Integer)v->i); return 0;
  case KURA_TNUM: lua_pushnumber(L, (lua_Number)v->n); return 0;
  case KURA_TSTR:
    if (!v->s && v->len)
      return -1;
    lua_pushlstring(L, v->s ? v->s : "", v->len);
    return 0;
  default: return -1;
  }
}

/* Pushes fn (a global, read raw: no metamethod runs outside the protected
 * call) and the arguments. Returns 0, or an error with the stack as it was. */
static int push_call(kura_runtime *k, const char *fn, const kura_value *args, int nargs)
{
  lua_State *L = k->L;
  if (nargs + 2 > LUA_MINSTACK && !lua_checkstack(L, nargs + 2))
    return fail(k, KURA_EINVAL, "kura_call: too many arguments (%d)", nargs);
  lua_pushstring(L, fn);
  if (lua_rawget(L, k->globals) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return fail(k, KURA_ENOTFOUND, "kura_call: no global function '%s'", fn);
  }
  for (int i = 0; i < nargs; i++) {
    if (push_value(L, &args[i]) != 0) {
      lua_pop(L, i + 1);
      return fail(k, KURA_EINVAL, "kura_call: argument %d of '%s' has no valid type", i + 1, fn);
    }
  }
  return 0;
}

/* Appends the string at idx to k->rbuf; returns its offset there, or -1. */
static long keep_string(kura_runtime *k, int idx, size_t *used, size_t *len)
{
  const char *s = lua_tolstring(k->L, idx, len);
  size_t need = *used + *len + 1;
  if (need > k->rcap) {
    size_t cap = k->rcap ? k->rcap : 64;
    while (cap < need)
      cap *= 2;
    char *p = realloc(k->rbuf, cap);
    if (!p)
      return -1;
    k->rbuf = p, k->rcap = cap;
  }
  long off = (long)*used;
  memcpy(k->rbuf + off, s, *len);
  k->rbuf[off + (long)*len] = '\0';
  *used = need;
  return off;
}

/* Copies the n results at first.. of L into res, strings into k->rbuf. One
 * pass: string offsets are kept in .i and turned into pointers at the end,
 * once the buffer no longer moves. */
static int copy_results(kura_runtime *k, int first, kura_value *res, int n)
{
  lua_State *L = k->L;
  size_t used = 0;
  int strings = 0;
  for (int i = 0; i < n; i++) {
    int idx = first + i;
    kura_value *v = &res[i];
    *v = (kura_value){KURA_TNIL, 0, 0, 0, NULL, 0};
    switch (lua_type(L, idx)) {
    case LUA_TNIL: break;
    case LUA_TBOOLEAN: v->type = KURA_TBOOL, v->b = lua_toboolean(L, idx); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        v->type = KURA_TINT, v->i = (int64_t)lua_tointeger(L, idx);
      else
        v->type = KURA_TNUM, v->n = (double)lua_tonumber(L, idx);
      break;
    case LUA_TSTRING:
      v->type = KURA_TSTR, v->i = keep_string(k, idx, &used, &v->len);
      if (v->i < 0)
        return fail(k, KURA_ENOMEM, "kura_call: out of memory for the results");
      strings = 1;
      break;
    default:
      v->type = KURA_TOTHER, v->s = luaL_typename(L, idx), v->len = strlen(v->s);
    }
  }
  for (int i = 0; strings && i < n; i++)
    if (res[i].type == KURA_TSTR)
      res[i].s = k->rbuf + res[i].i, res[i].i = 0;
  return KURA_OK;
}

int kura_call(kura_runtime *k, const char *fn, const kura_value *args, int nargs,
              kura_value *res, int nres)
{
  if (!k || !fn || nargs < 0 || nres < 0 || (nargs && !args) || (nres && !res))
    return KURA_EINVAL;
  lua_State *L = k->L;
  int rc = push_call(k, fn, args, nargs);
  if (rc)
    return rc;
  kr_runtime *rt = k->rt;
  lua_State *was = rt->running; /* the limits hold during the call (budget.h) */
  rt->running = L;
  kr_budget_host_entry(rt);
  kr_budget_begin(rt, L);
  int st = lua_pcall(L, nargs, nres, k->msgh);
  rt->running = was;
  if (st == LUA_OK && kr_budget_stopped(rt)) {
    /* the script caught the stop's error and returned at once: still a stop */
    char why[96];
    lua_pop(L, nres);
    rc = code_of(k, st);
    fail(k, rc, "%s", kr_budget_stop_message(rt, kr_budget_stopped(rt), why, sizeof why));
  } else if (st != LUA_OK) {
    rc = code_of(k, st);
    take_error(k);
    name_the_limit(k, rc);
    if (k->err && strstr(k->err, "cannot suspend here"))
      fail(k, rc, "kura_call: '%s' waits (a remote cache call, kura.sleep...), which a "
                  "synchronous call cannot: call it with kura_call_async. %.300s", fn, k->err);
  } else if (nres) {
    rc = copy_results(k, lua_gettop(L) - nres + 1, res, nres);
    lua_pop(L, nres);
  }
  return rc;
}

int kura_spawn(kura_runtime *k, const char *fn, const kura_value *args, int nargs)
{
  if (!k || !fn || nargs < 0 || (nargs && !args))
    return KURA_EINVAL;
  int rc = push_call(k, fn, args, nargs);
  if (rc)
    return rc;
  kr_task_spawn(k->rt, k->L, nargs, 1); /* detached: its error is printed */
  lua_pop(k->L, 1);
  return KURA_OK;
}

/* --- kura_call_async ---------------------------------------------------------------- */

static void acall_unlink(acall *a)
{
  if (a->prev)
    a->prev->next = a->next;
  else
    a->k->calls = a->next;
  if (a->next)
    a->next->prev = a->prev;
}

/* The results on L's stack from `first` on, as kura_values whose strings
 * point into L (valid while they stay there: during the callback). */
static void answer(acall *a, lua_State *L, int first)
{
  kura_value small[16];
  int n = lua_gettop(L) - first + 1;
  kura_value *res = n <= 16 ? small : malloc((size_t)n * sizeof *res);
  if (!res) {
    a->cb(a->udata, fail(a->k, KURA_ENOMEM, "kura_call_async: out of memory for the results"),
          NULL, 0);
    return;
  }
  for (int i = 0; i < n; i++) {
    int idx = first + i;
    kura_value *v = &res[i];
    *v = kura_nil();
    switch (lua_type(L, idx)) {
    case LUA_TNIL: break;
    case LUA_TBOOLEAN: *v = kura_bool(lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
      *v = lua_isinteger(L, idx) ? kura_int((int64_t)lua_tointeger(L, idx))
                                 : kura_num((double)lua_tonumber(L, idx));
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      *v = kura_lstr(s, len);
      break;
    }
    default:
      v->type = KURA_TOTHER, v->s = luaL_typename(L, idx), v->len = strlen(v->s);
    }
  }
  a->cb(a->udata, KURA_OK, res, n);
  if (res != small)
    free(res);
}

/* After fn returned or raised (at once, or after it waited). The stack:
 * the record, the message handler, then fn's results or its error. */
static int async_done(lua_State *L, int status, lua_KContext ctx)
{
  acall *a = (acall *)ctx;
  kura_runtime *k = a->k;
  acall_unlink(a);
  int stop = kr_budget_stopped(k->rt);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (stop) {
      char why[96];
      a->cb(a->udata, fail(k, stop == KR_STOP_MEMORY ? KURA_ENOMEM : KURA_ELIMIT, "%s",
                           kr_budget_stop_message(k->rt, stop, why, sizeof why)), NULL, 0);
    } else {
      answer(a, L, 3);
    }
  } else {
    int rc = code_of(k, status);
    const char *msg = lua_tostring(L, -1);
    fail(k, rc, "%s", msg ? msg : "(error object is not a string)");
    name_the_limit(k, rc);
    a->cb(a->udata, rc, NULL, 0);
  }
  free(a);
  return 0;
}

/* The task's body: fn(args...) under a message handler, then the answer. */
static int async_body(lua_State *L)
{
  acall *a = lua_touserdata(L, 1);
  lua_pushcfunction(L, traceback);
  lua_insert(L, 2);
  int st = lua_pcallk(L, lua_gettop(L) - 3, LUA_MULTRET, 2, (lua_KContext)a, async_done);
  return async_done(L, st, (lua_KContext)a);
}

int kura_call_async(kura_runtime *k, const char *fn, const kura_value *args, int nargs,
                    kura_call_cb cb, void *udata)
{
  if (!k || !fn || !cb || nargs < 0 || (nargs && !args))
    return KURA_EINVAL;
  acall *a = calloc(1, sizeof *a);
  if (!a)
    return fail(k, KURA_ENOMEM, "kura_call_async: out of memory");
  lua_State *L = k->L;
  lua_pushcfunction(L, async_body);
  lua_pushlightuserdata(L, a);
  int rc = push_call(k, fn, args, nargs);
  if (rc) {
    lua_pop(L, 2);
    free(a);
    return rc;
  }
  a->k = k, a->cb = cb, a->udata = udata;
  a->next = k->calls;
  if (k->calls)
    k->calls->prev = a;
  k->calls = a;
  kr_runtime *rt = k->rt;
  /* Its errors go to cb, not to stderr as a task's that no one joined (a
   * limit's stop still ends the task after async_done has answered). */
  if (rt->current) { /* from inside a task (a callback): it runs as the loop turns */
    kr_task_spawn(rt, L, nargs + 2, 1)->joined = 1;
  } else { /* at once, as kura_load_* does: a handler that never waits answers now */
    kr_task *t = kr_task_new(rt, L, nargs + 2, 1);
    t->joined = 1;
    kr_budget_host_entry(rt);
    kr_task_resume(rt, t);
  }
  lua_pop(L, 1);
  return KURA_OK;
}

/* Calls still unanswered when the runtime goes: KURA_ECANCELLED, once. */
static void cancel_calls(kura_runtime *k)
{
  while (k->calls) {
    acall *a = k->calls;
    acall_unlink(a);
    fail(k, KURA_ECANCELLED, "the runtime was freed before the call answered");
    a->cb(a->udata, KURA_ECANCELLED, NULL, 0);
    free(a);
  }
}

/* --- the loop -------------------------------------------------------------------------- */

static int pending(kura_runtime *k)
{
  size_t n = (size_t)k->rt->ntasks + (size_t)k->rt->ntimers;
  if (k->client)
    n += kr_client_pending(k->client);
  return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
}

int kura_tick(kura_runtime *k)
{
  if (!k)
    return KURA_EINVAL;
  k->in_loop++;
  uv_run(kr_runtime_loop(k->rt), UV_RUN_NOWAIT);
  k->in_loop--;
  return pending(k);
}

int kura_run(kura_runtime *k)
{
  if (!k)
    return KURA_EINVAL;
  kr_runtime *rt = k->rt;
  int uncaught = rt->uncaught, rc = KURA_OK;
  while (pending(k) > 0) {
    k->in_loop++;
    int alive = uv_run(kr_runtime_loop(rt), UV_RUN_ONCE);
    k->in_loop--;
    if (alive == 0 && pending(k) > 0) {
      rc = fail(k, KURA_ECANCELLED, "%d task(s) wait for something that can no longer "
                                    "happen (deadlock)", rt->ntasks);
      break;
    }
  }
  lua_gc(k->L, LUA_GCCOLLECT); /* unreachable failed tasks report themselves */
  kr_task_report_unjoined(rt);
  if (rc == KURA_OK && rt->uncaught > uncaught)
    rc = fail(k, KURA_EUNKNOWN, "%d task(s) raised an error no one caught (see stderr)",
              rt->uncaught - uncaught);
  return rc;
}

/* --- the cache from C ------------------------------------------------------------------- */

kura_client *kura_client_get(kura_runtime *k)
{
  if (!k)
    return NULL;
  if (k->client)
    return k->client;
  const kr_lua_config *rc = kr_lua_config_get(k->L);
  kr_client_config cfg = {
    .backend = rc->backend ? rc->backend : "memory",
    .default_ttl = rc->default_ttl,
    .momento_endpoint = rc->momento_endpoint,
    .store = rc->store,
    .max_memory = rc->store_max_memory,
  };
  char err[256];
  if (kr_client_new(kr_runtime_loop(k->rt), &cfg, &k->client, err, sizeof err) != KURA_OK) {
    k->client = NULL;
    fail(k, KURA_EINVAL, "kura_client: %s", err);
    return NULL;
  }
  return k->client;
}

/* --- for the host layer's other files -------------------------------------------- */

const kura_options *kr_host_options(kura_runtime *k)
{
  return &k->opts;
}

static char *put_string(char **at, const char *s)
{
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  memcpy(*at, s, n);
  char *out = *at;
  *at += n;
  return out;
}

int kr_host_options_copy(const kura_options *in, kura_options *out, char **strings)
{
  const char *const parts[] = {in->backend, in->store, in->momento_endpoint, in->lua_path};
  size_t bytes = 1;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    bytes += parts[i] ? strlen(parts[i]) + 1 : 0;
  char *at = *strings = malloc(bytes);
  if (!at)
    return KURA_ENOMEM;
  *out = *in;
  out->loop = NULL;
  out->backend = put_string(&at, in->backend);
  out->store = put_string(&at, in->store);
  out->momento_endpoint = put_string(&at, in->momento_endpoint);
  out->lua_path = put_string(&at, in->lua_path);
  return KURA_OK;
}

void kr_host_thread_remember(kura_runtime *k, kr_host_thread *t)
{
  *kr_host_thread_link(t) = k->threads;
  k->threads = t;
}

void kr_host_thread_forget(kura_runtime *k, kr_host_thread *t)
{
  for (kr_host_thread **p = &k->threads; *p; p = kr_host_thread_link(*p)) {
    if (*p == t) {
      *p = *kr_host_thread_link(t);
      return;
    }
  }
}

kr_runtime *kr_host_runtime(kura_runtime *k)
{
  return k->rt;
}


lua_State *kr_host_lua(kura_runtime *k)
{
  return k->L;
}

/* --- the kura command's ways -------------------------------------------------------- */

int kura_run_script(kura_runtime *k, const char *path, const char *code, int argc,
                    char **argv, int script_index)
{
  if (!k || (!path && !code))
    return 2;
  if (k->sandbox) {
    fprintf(stderr, "kura: kura_run_script is not for the sandbox (use kura_load_file)\n");
    return 2;
  }
  if (!code)
    return kr_runtime_run_file(k->rt, path, argc, argv, script_index);
  if (argv)
    kr_runtime_set_args(k->rt, argc, argv, script_index);
  return kr_runtime_run_string(k->rt, code, "=(command line)");
}

/* --- checking options before anything runs ---------------------------------------- */

int kura_seconds_parse(const char *text, double *out, char *why, size_t cap)
{
  char dummy[8];
  if (!why || cap == 0)
    why = dummy, cap = sizeof dummy;
  if (!text || !out) {
    snprintf(why, cap, "no text to read seconds from");
    return KURA_EINVAL;
  }
  return kr_seconds_parse(text, out, why, cap) ? KURA_EINVAL : KURA_OK;
}

int kura_options_check(const kura_options *opts, char *why, size_t cap)
{
  static const kura_options none;
  char dummy[8], msg[256];
  if (!why || cap == 0)
    why = dummy, cap = sizeof dummy;
  if (!opts)
    opts = &none;
  if (check_fields(opts, why, cap))
    return KURA_EINVAL;
  /* what opts leave open, by the core's one rule for the environment */
  kr_client_config env = {.backend = opts->backend, .default_ttl = opts->default_ttl,
                          .momento_endpoint = opts->momento_endpoint};
  char ttl_msg[256];
  int ttl_bad = kr_client_config_env(&env, ttl_msg, sizeof ttl_msg); /* fills the rest too */
  if (env.backend && env.backend != opts->backend &&
      kr_backend_check(env.backend, msg, sizeof msg)) {
    snprintf(why, cap, "KURA_BACKEND: %s", msg);
    return KURA_EINVAL;
  }
  if (ttl_bad) {
    snprintf(why, cap, "%s", ttl_msg); /* names MOMENTO_TTL_SECONDS */
    return KURA_EINVAL;
  }
  return KURA_OK;
}
