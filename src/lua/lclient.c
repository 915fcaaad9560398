/* The Lua face of the client: kura.client([opts]), its methods (every call of
 * docs/lua-api.md), cache handles (c:cache(name)), error tables, and
 * kura.credential.
 *
 * Each call builds a kr_request on the C stack and submits it with a
 * completion that pushes the results. A memory client completes before
 * submit returns: the results are then on the caller's stack and the method
 * returns them at once (no allocation, no yield: the hot path). A remote
 * client suspends the task and the completion pushes onto the task's state
 * and wakes it. One push function per result shape serves both paths.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/credential.h"
#include "lua/binding.h"
#include "runtime/budget.h"
#include "runtime/runtime.h"

/* Registry keys (addresses only: no global state). */
static const char client_mt_key = 'c';
static const char handle_mt_key = 'h';
static const char error_mt_key = 'e';
static const char cred_mt_key = 'k';
static const char shared_key = 's';

#define CLIENT_NAME "kura.client"
#define HANDLE_NAME "kura.cache"
#define CRED_NAME "kura.credential"
#define NUMBUF 48

typedef struct lclient {
  kr_client *c;  /* NULL once closed */
  int is_inline; /* kr_client_is_inline(c), read on the hot path */
} lclient;

typedef struct lhandle {
  lclient *lc;   /* the client's userdata, kept alive as our user value */
  size_t len;
  char name[];   /* the cache name */
} lhandle;

typedef struct lcred {
  int kind;                         /* enum kr_cred_kind */
  char endpoint[KR_CRED_HOST_MAX];  /* not secret: "" when the key names none */
  size_t len;
  char secret[]; /* the key as given; zeroed on __gc */
} lcred;

/* An inline client's request, on the C stack (a remote one's completion
 * gets the waiting task instead: on_remote_done). */
typedef struct call {
  lua_State *L; /* where the results go */
  int nres;
} call;

/* --- errors ---------------------------------------------------------------- */

/* Pushes nil, err with the shared metatable. Returns 2. The err table:
 *   code       the Momento error code ("TIMEOUT_ERROR")
 *   message    what went wrong, naming the cache or key where that helps
 *   retryable  true: the call was not applied and trying it again may
 *              succeed (kura_err_retryable of the code); false: trying again
 *              cannot help, or the outcome is unknown
 *   uncertain  only present, as true, when the outcome is unknown: a call
 *              that is not idempotent (increment, the conditional sets, the
 *              TTL changes) failed after its request may have reached the
 *              server (no answer within the timeout, the connection lost
 *              while the answer was on its way): it may or may not have been
 *              applied. retryable is then false: read the item to find out
 *              before doing it again. */
static int push_error_ex(lua_State *L, int err, const char *msg, int uncertain)
{
  lua_pushnil(L);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kura_errname(err));
  lua_setfield(L, -2, "code");
  lua_pushstring(L, msg && *msg ? msg : kura_strerror(err));
  lua_setfield(L, -2, "message");
  lua_pushboolean(L, kura_err_retryable(err) && !uncertain);
  lua_setfield(L, -2, "retryable");
  if (uncertain) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "uncertain");
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &error_mt_key);
  lua_setmetatable(L, -2);
  return 2;
}

static int push_error(lua_State *L, int err, const char *msg)
{
  return push_error_ex(L, err, msg, 0);
}

static int error_tostring(lua_State *L)
{
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "message");
  lua_pushfstring(L, "%s: %s", luaL_optstring(L, -2, "UNKNOWN_ERROR"),
                  luaL_optstring(L, -1, ""));
  return 1;
}

/* --- arguments ------------------------------------------------------------- */

/* A key or value: a string as is, a number as its decimal text (integers
 * without ".0", floats with "%.14g") written into buf; anything else raises. */
static const char *arg_bytes(lua_State *L, int idx, size_t *len, char buf[NUMBUF])
{
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING)
    return lua_tolstring(L, idx, len);
  if (t != LUA_TNUMBER)
    luaL_typeerror(L, idx, "string");
  if (lua_isinteger(L, idx))
    *len = (size_t)snprintf(buf, NUMBUF, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
  else
    *len = (size_t)snprintf(buf, NUMBUF, LUA_NUMBER_FMT, (LUAI_UACNUMBER)lua_tonumber(L, idx));
  return buf;
}

static const char *arg_name(lua_State *L, int idx, size_t *len)
{
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_typeerror(L, idx, "string");
  return lua_tolstring(L, idx, len);
}

/* ttl: none/nil -> 0 (the default); a positive finite number -> ms;
 * other numbers -> KURA_EINVAL with a message in msg; other types raise. */
static int arg_ttl(lua_State *L, int idx, uint64_t *ms, char *msg, size_t cap)
{
  *ms = 0;
  int t = lua_type(L, idx);
  if (t == LUA_TNONE || t == LUA_TNIL)
    return 0;
  if (t != LUA_TNUMBER)
    luaL_typeerror(L, idx, "number");
  double s = lua_tonumber(L, idx);
  if (kr_seconds_to_ms(s, ms) == 0)
    return 0;
  snprintf(msg, cap, "ttl must be a number of seconds > 0 and <= %d (ten years), got %g",
           KURA_TTL_MAX_SECONDS, s);
  return KURA_EINVAL;
}

/* --- results: one push function per shape ---------------------------------- */

static int push_value(lua_State *L, const kr_result *res)
{
  if (res->outcome == KURA_HIT)
    lua_pushlstring(L, res->val, res->vlen);
  else
    lua_pushnil(L);
  return 1;
}

static int push_ttl(lua_State *L, const kr_result *res)
{
  if (res->outcome != KURA_HIT)
    lua_pushnil(L);
  else if (res->ttl_ms == UINT64_MAX)
    lua_pushnumber(L, HUGE_VAL);
  else
    lua_pushnumber(L, (lua_Number)res->ttl_ms / 1000.0);
  return 1;
}

/* update_ttl: true / nil; increase_ttl, decrease_ttl: true / false / nil. */
static int push_ttl_set(lua_State *L, const kr_request *req, const kr_result *res)
{
  if (res->outcome == KURA_MISS || (req->ttl_mode == KURA_TTL_UPDATE && res->outcome != KURA_HIT))
    lua_pushnil(L);
  else
    lua_pushboolean(L, res->outcome == KURA_HIT);
  return 1;
}

static int push_names(lua_State *L, const kr_result *res)
{
  lua_createtable(L, (int)res->count, 0);
  for (size_t i = 0; i < res->count; i++) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, res->names[i]);
    lua_setfield(L, -2, "name");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int push_flags(lua_State *L, const kr_result *res)
{
  lua_createtable(L, (int)res->count, 0);
  for (size_t i = 0; i < res->count; i++) {
    lua_pushboolean(L, res->flags[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int push_hits(lua_State *L, const kr_request *req, const kr_result *res)
{
  lua_createtable(L, 0, (int)res->count);
  for (size_t i = 0; i < res->count; i++) {
    if (!res->vals[i])
      continue;
    lua_pushlstring(L, req->keys[i], req->klens[i]);
    lua_pushlstring(L, res->vals[i], res->vlens[i]);
    lua_rawset(L, -3);
  }
  return 1;
}

static int push_result(lua_State *L, const kr_request *req, const kr_result *res)
{
  if (res->err)
    return push_error_ex(L, res->err, res->msg, res->uncertain);
  switch (req->op) {
  case KR_OP_GET:
    return push_value(L, res);
  case KR_OP_SET_IF:
  case KR_OP_KEY_EXISTS:
  case KR_OP_CREATE_CACHE:
    lua_pushboolean(L, res->outcome == KURA_HIT);
    return 1;
  case KR_OP_INCREMENT:
    lua_pushinteger(L, (lua_Integer)res->integer);
    return 1;
  case KR_OP_TTL_GET:
    return push_ttl(L, res);
  case KR_OP_TTL_SET:
    return push_ttl_set(L, req, res);
  case KR_OP_LIST_CACHES:
    return push_names(L, res);
  case KR_OP_KEYS_EXIST:
    return push_flags(L, res);
  case KR_OP_GET_BATCH:
    return push_hits(L, req, res);
  default: /* set, delete, set_batch, delete_cache, flush_cache */
    lua_pushboolean(L, 1);
    return 1;
  }
}

/* --- running a request ----------------------------------------------------- */

static void on_done(void *udata, const kr_request *req, const kr_result *res)
{
  call *k = udata;
  k->nres = push_result(k->L, req, res);
}

/* A remote call's completion: udata is the waiting task itself. */
static void on_remote_done(void *udata, const kr_request *req, const kr_result *res)
{
  kr_task *t = udata;
  kr_task_wake(t, push_result(kr_task_state(t), req, res));
}

/* nil, INVALID_ARGUMENT for a request refused before it reached the client,
 * counted in the client's statistics all the same. */
static int refuse(lua_State *L, lclient *lc, const kr_request *req, const char *msg)
{
  if (lc->c)
    kr_client_count_refused(lc->c, req, KURA_EINVAL);
  return push_error(L, KURA_EINVAL, msg);
}

static int run_remote(lua_State *L, lclient *lc, kr_request *req)
{
  if (kr_client_validate(lc->c, req))
    return refuse(L, lc, req, kr_client_errstr(lc->c));
  /* Raises when L cannot yield: before anything is allocated or sent. */
  kr_task *t = kr_task_prepare_wait(L, kr_op_name(req->op));
  int rc = kr_client_submit_valid(lc->c, req, on_remote_done, t);
  if (rc) /* the task was prepared: it must still be woken, with the error */
    kr_task_wake(t, push_error(kr_task_state(t), rc, kr_client_errstr(lc->c)));
  return lua_yield(L, 0);
}

/* What a request copies (into the store, or into a request for a server)
 * is charged to the instruction budget (budget.h) when it is large. */
static void charge_bytes(lua_State *L, const kr_request *req)
{
  size_t n = req->klen + req->vlen + req->cmplen;
  for (size_t i = 0; req->vlens && i < req->n; i++)
    n += req->klens[i] + req->vlens[i];
  if (n >= 1024)
    kr_budget_charge(L, kr_runtime_from_lua(L), n >> KR_ALLOC_SHIFT);
}

/* Submits req and returns the number of results on L's stack. */
static inline int run(lua_State *L, lclient *lc, kr_request *req)
{
  if (!lc->c)
    return push_error(L, KURA_ECANCELLED, "the client is closed");
  charge_bytes(L, req);
  if (!lc->is_inline)
    return run_remote(L, lc, req);
  call k = {.L = L, .nres = 0};
  int rc = kr_client_submit(lc->c, req, on_done, &k);
  if (rc)
    return push_error(L, rc, kr_client_errstr(lc->c));
  return k.nres;
}

/* --- item calls ------------------------------------------------------------ */
/* Each op_* serves both c:op(cache, ...) and h:op(...): `a` is the stack
 * index of the first argument after the cache. */

#define REQ(opcode) kr_request req = {.op = (opcode), .cache = cache, .cache_len = clen}

static int op_get(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  char kb[NUMBUF];
  REQ(KR_OP_GET);
  req.key = arg_bytes(L, a, &req.klen, kb);
  return run(L, lc, &req);
}

static int op_set(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  char kb[NUMBUF], vb[NUMBUF], msg[128];
  REQ(KR_OP_SET);
  req.key = arg_bytes(L, a, &req.klen, kb);
  req.val = arg_bytes(L, a + 1, &req.vlen, vb);
  if (lua_gettop(L) >= a + 2 && arg_ttl(L, a + 2, &req.ttl_ms, msg, sizeof msg))
    return refuse(L, lc, &req, msg);
  return run(L, lc, &req);
}

static int op_key(lua_State *L, lclient *lc, const char *cache, size_t clen, int a,
                  enum kr_op opcode)
{
  char kb[NUMBUF];
  REQ(opcode);
  req.key = arg_bytes(L, a, &req.klen, kb);
  return run(L, lc, &req);
}

static int op_delete(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_key(L, lc, cache, clen, a, KR_OP_DELETE);
}

static int op_key_exists(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_key(L, lc, cache, clen, a, KR_OP_KEY_EXISTS);
}

static int op_item_get_ttl(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_key(L, lc, cache, clen, a, KR_OP_TTL_GET);
}

/* amount: none/nil -> 1; an integer-valued number (or numeric string); a
 * fraction -> KURA_EINVAL; other types raise. */
static int arg_amount(lua_State *L, int idx, int64_t *out)
{
  int isint = 0;
  *out = 1;
  if (lua_isnoneornil(L, idx))
    return 0;
  if (!lua_isnumber(L, idx))
    luaL_typeerror(L, idx, "number");
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint)
    return KURA_EINVAL;
  *out = (int64_t)v;
  return 0;
}

static int op_increment(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  char kb[NUMBUF], msg[128];
  REQ(KR_OP_INCREMENT);
  req.key = arg_bytes(L, a, &req.klen, kb);
  int bad_amount = arg_amount(L, a + 1, &req.amount);
  if (arg_ttl(L, a + 2, &req.ttl_ms, msg, sizeof msg)) /* types first: both may raise */
    return refuse(L, lc, &req, msg);
  if (bad_amount)
    return refuse(L, lc, &req, lua_pushfstring(L, "increment amount must be an integer, "
                                                      "got %s", lua_tostring(L, a + 1)));
  return run(L, lc, &req);
}

/* The conditional sets: (key, value [, cmp], [ttl]). */
static int op_set_if(lua_State *L, lclient *lc, const char *cache, size_t clen, int a,
                     enum kura_set_cond cond)
{
  char kb[NUMBUF], vb[NUMBUF], cb[NUMBUF], msg[128];
  int has_cmp = cond != KURA_SET_IF_ABSENT && cond != KURA_SET_IF_PRESENT;
  REQ(KR_OP_SET_IF);
  req.cond = cond;
  req.key = arg_bytes(L, a, &req.klen, kb);
  req.val = arg_bytes(L, a + 1, &req.vlen, vb);
  if (has_cmp)
    req.cmp = arg_bytes(L, a + 2, &req.cmplen, cb);
  if (arg_ttl(L, a + 2 + has_cmp, &req.ttl_ms, msg, sizeof msg))
    return refuse(L, lc, &req, msg);
  return run(L, lc, &req);
}

static int op_set_if_absent(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_set_if(L, lc, cache, clen, a, KURA_SET_IF_ABSENT);
}

static int op_set_if_present(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_set_if(L, lc, cache, clen, a, KURA_SET_IF_PRESENT);
}

static int op_set_if_equal(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_set_if(L, lc, cache, clen, a, KURA_SET_IF_EQUAL);
}

static int op_set_if_not_equal(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_set_if(L, lc, cache, clen, a, KURA_SET_IF_NOT_EQUAL);
}

static int op_set_if_present_and_not_equal(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_set_if(L, lc, cache, clen, a, KURA_SET_IF_PRESENT_AND_NOT_EQUAL);
}

static int op_set_if_absent_or_equal(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_set_if(L, lc, cache, clen, a, KURA_SET_IF_ABSENT_OR_EQUAL);
}

static int op_ttl_set(lua_State *L, lclient *lc, const char *cache, size_t clen, int a,
                      enum kura_ttl_mode mode)
{
  char kb[NUMBUF], msg[128];
  REQ(KR_OP_TTL_SET);
  req.ttl_mode = mode;
  req.key = arg_bytes(L, a, &req.klen, kb);
  luaL_checktype(L, a + 1, LUA_TNUMBER);
  if (arg_ttl(L, a + 1, &req.ttl_ms, msg, sizeof msg))
    return refuse(L, lc, &req, msg);
  return run(L, lc, &req);
}

static int op_update_ttl(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_ttl_set(L, lc, cache, clen, a, KURA_TTL_UPDATE);
}

static int op_increase_ttl(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_ttl_set(L, lc, cache, clen, a, KURA_TTL_INCREASE);
}

static int op_decrease_ttl(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_ttl_set(L, lc, cache, clen, a, KURA_TTL_DECREASE);
}

/* --- batches --------------------------------------------------------------- */

/* Arrays for n items, in a userdata pushed on the stack (so a raise on a bad
 * element frees them), followed by a table that anchors the strings made
 * from number elements. */
typedef struct barrays {
  const void **keys;
  size_t *klens;
  const void **vals;
  size_t *vlens;
  uint64_t *ttls;
} barrays;

static void batch_alloc(lua_State *L, size_t n, barrays *b)
{
  size_t per = 2 * sizeof(void *) + 2 * sizeof(size_t) + sizeof(uint64_t);
  char *m = lua_newuserdatauv(L, n * per + 1, 0);
  b->keys = (const void **)m;
  b->vals = b->keys + n;
  b->klens = (size_t *)(b->vals + n);
  b->vlens = b->klens + n;
  b->ttls = (uint64_t *)(b->vlens + n);
  lua_newtable(L);
}

/* The string or number on top of the stack as bytes; pops it. Numbers become
 * strings anchored in the table at `anchor`. Other types raise, naming the
 * argument `arg` and the element. */
static const void *elem_bytes(lua_State *L, int anchor, int arg, const char *what,
                              lua_Integer i, size_t *len)
{
  const void *p;
  if (lua_type(L, -1) == LUA_TNUMBER) {
    char buf[NUMBUF];
    const char *s = arg_bytes(L, -1, len, buf);
    lua_pushlstring(L, s, *len);
    p = lua_tostring(L, -1);
    lua_rawseti(L, anchor, (lua_Integer)lua_rawlen(L, anchor) + 1);
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    p = lua_tolstring(L, -1, len); /* still referenced by the argument table */
  } else {
    luaL_argerror(L, arg, lua_pushfstring(L, "%s #%I: string expected, got %s", what, i,
                                          luaL_typename(L, -1)));
    return NULL;
  }
  lua_pop(L, 1);
  return p;
}

/* A key of a table as a message shows it: 'name', 12, or its type. */
static void describe_key(lua_State *L, int idx, char *out, size_t cap)
{
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *k = lua_tolstring(L, idx, &len);
    char shown[64];
    kr_format_key(shown, sizeof shown, k, len);
    snprintf(out, cap, "'%s'", shown);
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    snprintf(out, cap, "%s", lua_tostring(L, idx)); /* a copy: the key is not touched */
  } else {
    snprintf(out, cap, "a %s", luaL_typename(L, idx));
  }
}

/* Whether the table at idx, read as an array of n elements (its length),
 * holds any other key: 1 with that key described in out. */
static int array_extra(lua_State *L, int idx, size_t n, char *out, size_t cap)
{
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
    if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
        (lua_Unsigned)lua_tointeger(L, -2) <= (lua_Unsigned)n)
      continue;
    lua_pushvalue(L, -2); /* lua_tostring must not change the key next() reads */
    describe_key(L, lua_gettop(L), out, cap);
    lua_pop(L, 3);
    return 1;
  }
  return 0;
}

/* keys_exist, get_batch: keys is an array of keys. Another entry (a map
 * part) is INVALID_ARGUMENT_ERROR: it would be ignored. */
static int op_keys(lua_State *L, lclient *lc, const char *cache, size_t clen, int a,
                   enum kr_op opcode)
{
  barrays b;
  char extra[96];
  luaL_checktype(L, a, LUA_TTABLE);
  size_t n = lua_rawlen(L, a);
  batch_alloc(L, n, &b);
  int anchor = lua_gettop(L);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, a, (lua_Integer)i + 1);
    b.keys[i] = elem_bytes(L, anchor, a, "key", (lua_Integer)i + 1, &b.klens[i]);
  }
  REQ(opcode);
  if (array_extra(L, a, n, extra, sizeof extra))
    return refuse(L, lc, &req, lua_pushfstring(L, "%s: keys must be an array of keys; "
                  "the table also has the key %s", kr_op_name(opcode), extra));
  req.n = n, req.keys = b.keys, req.klens = b.klens;
  return run(L, lc, &req);
}

static int op_keys_exist(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_keys(L, lc, cache, clen, a, KR_OP_KEYS_EXIST);
}

static int op_get_batch(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  return op_keys(L, lc, cache, clen, a, KR_OP_GET_BATCH);
}

/* The fields of the item table on top: only key, value and ttl. 0, or
 * KURA_EINVAL with the first other one in msg. */
static int item_fields(lua_State *L, lua_Integer ix, char *msg, size_t cap)
{
  int item = lua_gettop(L);
  for (lua_pushnil(L); lua_next(L, item); lua_pop(L, 1)) {
    const char *f = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (strcmp(f, "key") == 0 || strcmp(f, "value") == 0 || strcmp(f, "ttl") == 0)
      continue;
    char what[80];
    lua_pushvalue(L, -2);
    describe_key(L, lua_gettop(L), what, sizeof what);
    lua_pop(L, 3);
    snprintf(msg, cap, "set_batch: item #%lld has the field %s; an item has only key, "
             "value and ttl", (long long)ix, what);
    return KURA_EINVAL;
  }
  return 0;
}

/* set_batch items as an array of {key=, value=, ttl=}: fills b. Types
 * raise; values (a bad ttl, an unknown field) return KURA_EINVAL with the
 * first one in msg (when msg is not NULL), once every item's types are
 * checked. */
static int items_array(lua_State *L, int a, size_t n, barrays *b, int anchor,
                       char *msg, size_t cap)
{
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    lua_Integer ix = (lua_Integer)i + 1;
    char m[256];
    if (lua_rawgeti(L, a, ix) != LUA_TTABLE)
      luaL_argerror(L, a, lua_pushfstring(L, "item #%I: table expected", ix));
    lua_getfield(L, -1, "key");
    b->keys[i] = elem_bytes(L, anchor, a, "key of item", ix, &b->klens[i]);
    lua_getfield(L, -1, "value");
    b->vals[i] = elem_bytes(L, anchor, a, "value of item", ix, &b->vlens[i]);
    if (!bad && item_fields(L, ix, m, sizeof m)) {
      bad = KURA_EINVAL;
      if (msg)
        snprintf(msg, cap, "%s", m);
    }
    lua_getfield(L, -1, "ttl");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TNUMBER)
      luaL_argerror(L, a, lua_pushfstring(L, "ttl of item #%I: number expected", ix));
    if (arg_ttl(L, lua_gettop(L), &b->ttls[i], m, sizeof m) && !bad) {
      bad = KURA_EINVAL;
      if (msg)
        snprintf(msg, cap, "item #%lld: %s", (long long)ix, m);
    }
    lua_pop(L, 2);
  }
  return bad;
}

/* set_batch items as a map key -> value: fills b. A key that is not a
 * string (a number would be ambiguous with the array form) returns
 * KURA_EINVAL with msg, once every value's type is checked. */
static int items_map(lua_State *L, int a, barrays *b, int anchor, char *msg, size_t cap)
{
  size_t i = 0;
  int bad = 0;
  lua_pushnil(L);
  while (lua_next(L, a)) {
    if (lua_type(L, -2) != LUA_TSTRING && !bad) {
      char what[80];
      lua_pushvalue(L, -2);
      describe_key(L, lua_gettop(L), what, sizeof what);
      lua_pop(L, 1);
      bad = KURA_EINVAL;
      if (msg)
        snprintf(msg, cap, "set_batch: a map of items has string keys, not the key %s (or "
                 "give an array of {key=, value=, ttl=} items)", what);
    }
    lua_pushvalue(L, -2); /* a copy of the key: elem_bytes pops it */
    b->keys[i] = bad ? "" : elem_bytes(L, anchor, a, "key", (lua_Integer)i + 1, &b->klens[i]);
    if (bad)
      lua_pop(L, 1);
    b->vals[i] = elem_bytes(L, anchor, a, "value", (lua_Integer)i + 1, &b->vlens[i]);
    b->ttls[i] = 0;
    i++;
  }
  return bad;
}

/* items: an array of {key=, value=, ttl=} (items[1] is a table) or a map
 * key -> value; a table that mixes the two is INVALID_ARGUMENT_ERROR, as
 * the entries of one form would be ignored. */
static int op_set_batch(lua_State *L, lclient *lc, const char *cache, size_t clen, int a)
{
  barrays b;
  char msg[320], extra[96];
  luaL_checktype(L, a, LUA_TTABLE);
  REQ(KR_OP_SET_BATCH);
  int bad = arg_ttl(L, a + 1, &req.ttl_ms, msg, sizeof msg);
  int is_array = lua_rawgeti(L, a, 1) == LUA_TTABLE;
  lua_pop(L, 1);
  size_t n = 0;
  if (is_array) {
    n = lua_rawlen(L, a);
  } else {
    for (lua_pushnil(L); lua_next(L, a); lua_pop(L, 1))
      n++;
  }
  batch_alloc(L, n, &b);
  int anchor = lua_gettop(L);
  if (is_array)
    bad |= items_array(L, a, n, &b, anchor, bad ? NULL : msg, sizeof msg);
  else
    bad |= items_map(L, a, &b, anchor, bad ? NULL : msg, sizeof msg);
  if (!bad && is_array && array_extra(L, a, n, extra, sizeof extra)) {
    snprintf(msg, sizeof msg, "set_batch: items mix an array of {key=, value=} items with the "
             "key %s", extra);
    bad = KURA_EINVAL;
  }
  if (bad)
    return refuse(L, lc, &req, msg);
  req.n = n, req.keys = b.keys, req.klens = b.klens;
  req.vals = b.vals, req.vlens = b.vlens, req.ttls = b.ttls;
  return run(L, lc, &req);
}

/* --- for other parts of the binding ------------------------------------------ */

kr_client *const *kr_lua_client_slot(lua_State *L, int idx)
{
  lclient *lc = luaL_testudata(L, idx, CLIENT_NAME);
  return lc ? &lc->c : NULL;
}

int kr_lua_client_push_result(lua_State *L, const kr_request *req, const kr_result *res)
{
  return push_result(L, req, res);
}

/* --- the client and handle userdata ---------------------------------------- */

/* Argument 1 is ours when its metatable is the upvalue: cheaper than
 * luaL_checkudata's registry lookup on the hot path. */
static inline void *check_self(lua_State *L, int up, const char *tname)
{
  void *p = lua_touserdata(L, 1);
  if (p && lua_getmetatable(L, 1)) {
    int ok = lua_rawequal(L, -1, lua_upvalueindex(up));
    lua_pop(L, 1);
    if (ok)
      return p;
  }
  luaL_typeerror(L, 1, tname);
  return NULL;
}

#define CLIENT_UP 1 /* upvalue 1 of every method: the client metatable */
#define HANDLE_UP 2 /* upvalue 2: the handle metatable */

/* The client and the cache of a call: c:op(cache, ...) or h:op(...). */
typedef struct target {
  lclient *lc;
  const char *cache;
  size_t clen;
} target;

#define CLIENT_ARG 3 /* c:op(cache, key, ...): the first argument after the cache */
#define HANDLE_ARG 2 /* h:op(key, ...) */

static inline target client_target(lua_State *L)
{
  target t;
  t.lc = check_self(L, CLIENT_UP, CLIENT_NAME);
  t.cache = arg_name(L, 2, &t.clen);
  return t;
}

static inline target handle_target(lua_State *L)
{
  lhandle *h = check_self(L, HANDLE_UP, HANDLE_NAME);
  target t = {h->lc, h->name, h->len};
  return t;
}

/* The methods of clients (c_*) and of cache handles (h_*): each reads its
 * target and runs the op_* of its call. */

static int c_get(lua_State *L)
{
  target t = client_target(L);
  return op_get(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_get(lua_State *L)
{
  target t = handle_target(L);
  return op_get(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_set(lua_State *L)
{
  target t = client_target(L);
  return op_set(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_set(lua_State *L)
{
  target t = handle_target(L);
  return op_set(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_delete(lua_State *L)
{
  target t = client_target(L);
  return op_delete(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_delete(lua_State *L)
{
  target t = handle_target(L);
  return op_delete(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_increment(lua_State *L)
{
  target t = client_target(L);
  return op_increment(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_increment(lua_State *L)
{
  target t = handle_target(L);
  return op_increment(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_set_if_absent(lua_State *L)
{
  target t = client_target(L);
  return op_set_if_absent(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_set_if_absent(lua_State *L)
{
  target t = handle_target(L);
  return op_set_if_absent(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_set_if_present(lua_State *L)
{
  target t = client_target(L);
  return op_set_if_present(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_set_if_present(lua_State *L)
{
  target t = handle_target(L);
  return op_set_if_present(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_set_if_equal(lua_State *L)
{
  target t = client_target(L);
  return op_set_if_equal(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_set_if_equal(lua_State *L)
{
  target t = handle_target(L);
  return op_set_if_equal(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_set_if_not_equal(lua_State *L)
{
  target t = client_target(L);
  return op_set_if_not_equal(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_set_if_not_equal(lua_State *L)
{
  target t = handle_target(L);
  return op_set_if_not_equal(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_set_if_present_and_not_equal(lua_State *L)
{
  target t = client_target(L);
  return op_set_if_present_and_not_equal(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_set_if_present_and_not_equal(lua_State *L)
{
  target t = handle_target(L);
  return op_set_if_present_and_not_equal(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_set_if_absent_or_equal(lua_State *L)
{
  target t = client_target(L);
  return op_set_if_absent_or_equal(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_set_if_absent_or_equal(lua_State *L)
{
  target t = handle_target(L);
  return op_set_if_absent_or_equal(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_key_exists(lua_State *L)
{
  target t = client_target(L);
  return op_key_exists(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_key_exists(lua_State *L)
{
  target t = handle_target(L);
  return op_key_exists(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_keys_exist(lua_State *L)
{
  target t = client_target(L);
  return op_keys_exist(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_keys_exist(lua_State *L)
{
  target t = handle_target(L);
  return op_keys_exist(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_get_batch(lua_State *L)
{
  target t = client_target(L);
  return op_get_batch(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_get_batch(lua_State *L)
{
  target t = handle_target(L);
  return op_get_batch(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_set_batch(lua_State *L)
{
  target t = client_target(L);
  return op_set_batch(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_set_batch(lua_State *L)
{
  target t = handle_target(L);
  return op_set_batch(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_item_get_ttl(lua_State *L)
{
  target t = client_target(L);
  return op_item_get_ttl(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_item_get_ttl(lua_State *L)
{
  target t = handle_target(L);
  return op_item_get_ttl(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_update_ttl(lua_State *L)
{
  target t = client_target(L);
  return op_update_ttl(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_update_ttl(lua_State *L)
{
  target t = handle_target(L);
  return op_update_ttl(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_increase_ttl(lua_State *L)
{
  target t = client_target(L);
  return op_increase_ttl(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_increase_ttl(lua_State *L)
{
  target t = handle_target(L);
  return op_increase_ttl(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_decrease_ttl(lua_State *L)
{
  target t = client_target(L);
  return op_decrease_ttl(L, t.lc, t.cache, t.clen, CLIENT_ARG);
}

static int h_decrease_ttl(lua_State *L)
{
  target t = handle_target(L);
  return op_decrease_ttl(L, t.lc, t.cache, t.clen, HANDLE_ARG);
}

static int c_manage(lua_State *L, enum kr_op opcode)
{
  lclient *lc = check_self(L, CLIENT_UP, CLIENT_NAME);
  size_t clen = 0;
  const char *cache = opcode == KR_OP_LIST_CACHES ? NULL : arg_name(L, 2, &clen);
  REQ(opcode);
  return run(L, lc, &req);
}

static int c_create_cache(lua_State *L) { return c_manage(L, KR_OP_CREATE_CACHE); }
static int c_delete_cache(lua_State *L) { return c_manage(L, KR_OP_DELETE_CACHE); }
static int c_flush_cache(lua_State *L) { return c_manage(L, KR_OP_FLUSH_CACHE); }
static int c_list_caches(lua_State *L) { return c_manage(L, KR_OP_LIST_CACHES); }

/* --- statistics ------------------------------------------------------------ */

static void set_count(lua_State *L, const char *field, uint64_t n)
{
  lua_pushinteger(L, (lua_Integer)n);
  lua_setfield(L, -2, field);
}

/* errors = { CODE = n }: codes that share a Momento name (ENOMEM is
 * LIMIT_EXCEEDED_ERROR) add up. */
static void push_error_counts(lua_State *L, const kr_counts *k)
{
  lua_newtable(L);
  for (int i = 1; i < KR_STATS_NERR; i++) {
    if (!k->errors[i])
      continue;
    const char *code = kura_errname(-i);
    lua_Integer prior = lua_getfield(L, -1, code) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    lua_pushinteger(L, prior + (lua_Integer)k->errors[i]);
    lua_setfield(L, -2, code);
  }
}

static int push_stats(lua_State *L, lclient *lc, const char *cache, size_t len)
{
  if (!lc->c)
    return push_error(L, KURA_ECANCELLED, "the client is closed");
  kr_client_stats st;
  kr_client_stats_get(lc->c, cache, len, &st);
  lua_createtable(L, 0, 8);
  set_count(L, "calls", st.counts.calls);
  set_count(L, "hits", st.counts.hits);
  set_count(L, "misses", st.counts.misses);
  push_error_counts(L, &st.counts);
  lua_setfield(L, -2, "errors");
  if (st.has_backend) {
    set_count(L, "items", st.backend.items);
    set_count(L, "bytes", st.backend.bytes);
    set_count(L, "evictions", st.backend.evictions);
    set_count(L, "expirations", st.backend.expirations);
  }
  return 1;
}

/* c:stats([cache]) -> the counts of one cache, or of every cache the client
 * has named. */
static int c_stats(lua_State *L)
{
  lclient *lc = check_self(L, CLIENT_UP, CLIENT_NAME);
  size_t len = 0;
  const char *cache = lua_isnoneornil(L, 2) ? NULL : arg_name(L, 2, &len);
  return push_stats(L, lc, cache, len);
}

/* c:default_ttl() -> the seconds an item set without a TTL lives. */
static int c_default_ttl(lua_State *L)
{
  lclient *lc = check_self(L, CLIENT_UP, CLIENT_NAME);
  if (!lc->c)
    return push_error(L, KURA_ECANCELLED, "the client is closed");
  lua_pushnumber(L, (lua_Number)kr_client_default_ttl_ms(lc->c) / 1000);
  return 1;
}

static int h_stats(lua_State *L)
{
  lhandle *h = check_self(L, HANDLE_UP, HANDLE_NAME);
  return push_stats(L, h->lc, h->name, h->len);
}

/* c:cache(name) -> a handle bound to that cache. */
static int c_cache(lua_State *L)
{
  lclient *lc = check_self(L, CLIENT_UP, CLIENT_NAME);
  size_t len;
  const char *name = arg_name(L, 2, &len);
  lhandle *h = lua_newuserdatauv(L, sizeof *h + len + 1, 1);
  h->lc = lc;
  h->len = len;
  memcpy(h->name, name, len);
  h->name[len] = '\0';
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1); /* the handle keeps its client alive */
  lua_pushvalue(L, lua_upvalueindex(HANDLE_UP));
  lua_setmetatable(L, -2);
  return 1;
}

static int c_gc(lua_State *L)
{
  lclient *lc = luaL_checkudata(L, 1, CLIENT_NAME);
  if (lc->c) {
    kr_client_close(lc->c, NULL, NULL);
    lc->c = NULL;
  }
  return 0;
}

static int c_tostring(lua_State *L)
{
  lclient *lc = luaL_checkudata(L, 1, CLIENT_NAME);
  if (lc->c)
    lua_pushfstring(L, CLIENT_NAME "(%s): %p", kr_client_backend_name(lc->c), (void *)lc);
  else
    lua_pushfstring(L, CLIENT_NAME "(closed): %p", (void *)lc);
  return 1;
}

static int h_tostring(lua_State *L)
{
  lhandle *h = luaL_checkudata(L, 1, HANDLE_NAME);
  lua_pushfstring(L, HANDLE_NAME "(%s)", h->name);
  return 1;
}

/* --- kura.credential ------------------------------------------------------- */

/* Parses the key (Momento's formats, see core/credential.h) and pushes a
 * credential, or nil, err. The message never holds the key. A key that names
 * no endpoint takes MOMENTO_ENDPOINT's. */
static int push_cred(lua_State *L, const char *secret, size_t len)
{
  kr_credential cred;
  char err[192];
  int rc = kr_credential_parse(secret, len, getenv("MOMENTO_ENDPOINT"), &cred, err, sizeof err);
  if (rc)
    return push_error(L, rc, err);
  lcred *k = lua_newuserdatauv(L, sizeof *k + len + 1, 0);
  k->kind = (int)cred.kind;
  memcpy(k->endpoint, cred.endpoint, sizeof k->endpoint);
  kr_credential_free(&cred);
  k->len = len;
  memcpy(k->secret, secret, len);
  k->secret[len] = '\0';
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cred_mt_key);
  lua_setmetatable(L, -2);
  return 1;
}

static int cred_from_env(lua_State *L)
{
  const char *name = luaL_checkstring(L, 1);
  const char *v = getenv(name);
  if (!v || !*v)
    return push_error(L, KURA_EINVAL,
                      lua_pushfstring(L, "environment variable '%s' is not set or empty", name));
  int n = push_cred(L, v, strlen(v));
  if (n == 2) { /* name the variable, not its value */
    lua_getfield(L, -1, "message");
    lua_pushfstring(L, "%s (from the environment variable '%s')", lua_tostring(L, -1), name);
    lua_setfield(L, -3, "message");
    lua_pop(L, 1);
  }
  return n;
}

static int cred_from_string(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  if (len == 0)
    return push_error(L, KURA_EINVAL, "the credential string is empty");
  return push_cred(L, s, len);
}

/* cred.endpoint (the Momento endpoint the key names, or nil) and cred.kind
 * ("v1", "jwt" or "opaque"); nothing gives the secret back. */
static int cred_index(lua_State *L)
{
  static const char *const kinds[] = {"?", "v1", "jwt", "opaque"};
  lcred *k = luaL_checkudata(L, 1, CRED_NAME);
  const char *field = luaL_checkstring(L, 2);
  if (strcmp(field, "endpoint") == 0 && k->endpoint[0])
    lua_pushstring(L, k->endpoint);
  else if (strcmp(field, "kind") == 0 && k->kind >= 0 && k->kind <= 3)
    lua_pushstring(L, kinds[k->kind]);
  else
    lua_pushnil(L);
  return 1;
}

int kr_lua_push_error(lua_State *L, int err, const char *msg)
{
  return push_error(L, err, msg);
}

int kr_lua_push_error_uncertain(lua_State *L, int err, const char *msg, int uncertain)
{
  return push_error_ex(L, err, msg, uncertain);
}

static int cred_gc(lua_State *L)
{
  lcred *k = luaL_checkudata(L, 1, CRED_NAME);
  volatile char *p = k->secret;
  for (size_t i = 0; i < k->len; i++)
    p[i] = 0;
  k->len = 0;
  return 0;
}

static int cred_tostring(lua_State *L)
{
  lua_pushliteral(L, CRED_NAME "(<redacted>)");
  return 1;
}

/* --- kura.client([opts]) --------------------------------------------------- */

/* The options a client takes, besides the runtime's defaults. */
typedef struct copts {
  kr_client_config cfg;
  int has_cred;
} copts;

static const char *const option_names[] = {
  "backend", "default_ttl", "configuration", "timeout", "credential",
  "momento_endpoint", "max_memory", "store", NULL,
};

static int opt_field(lua_State *L, const char *name, int type)
{
  int t = lua_getfield(L, 1, name);
  if (t != LUA_TNIL && t != type)
    luaL_error(L, "bad option '%s' to 'client' (%s expected, got %s)", name,
               lua_typename(L, type), luaL_typename(L, -1));
  return t != LUA_TNIL;
}

static void check_option_names(lua_State *L)
{
  for (lua_pushnil(L); lua_next(L, 1); lua_pop(L, 1)) {
    int known = 0;
    for (int i = 0; option_names[i] && lua_type(L, -2) == LUA_TSTRING; i++)
      known |= strcmp(option_names[i], lua_tostring(L, -2)) == 0;
    if (!known)
      luaL_error(L, "unknown option '%s' to 'client'", luaL_tolstring(L, -2, NULL));
  }
}

/* Reads the number options; KURA_EINVAL with a message for bad values. */
static int read_numbers(lua_State *L, copts *o, char *msg, size_t cap)
{
  uint64_t ms;
  if (opt_field(L, "default_ttl", LUA_TNUMBER)) {
    o->cfg.default_ttl = lua_tonumber(L, -1);
    if (kr_seconds_to_ms(o->cfg.default_ttl, &ms))
      return snprintf(msg, cap, "default_ttl must be a number of seconds > 0 and <= %d (ten "
                      "years), got %g", KURA_TTL_MAX_SECONDS, o->cfg.default_ttl), KURA_EINVAL;
  }
  if (opt_field(L, "timeout", LUA_TNUMBER)) {
    o->cfg.timeout = lua_tonumber(L, -1);
    if (kr_seconds_to_ms(o->cfg.timeout, &ms))
      return snprintf(msg, cap, "timeout must be a number of seconds > 0 and <= %d (ten "
                      "years), got %g", KURA_TTL_MAX_SECONDS, o->cfg.timeout), KURA_EINVAL;
  }
  if (opt_field(L, "max_memory", LUA_TNUMBER)) {
    double m = lua_tonumber(L, -1);
    if (!(m >= 1 && m < 1.8e19))
      return snprintf(msg, cap, "max_memory must be a positive number of bytes"), KURA_EINVAL;
    o->cfg.max_memory = (uint64_t)m;
  }
  lua_pop(L, 3);
  return 0;
}

/* Reads opts (argument 1) into o; strings stay on the stack (anchored).
 * Returns 0 or KURA_EINVAL with msg. */
static int read_options(lua_State *L, copts *o, char *msg, size_t cap)
{
  check_option_names(L);
  if (opt_field(L, "backend", LUA_TSTRING))
    o->cfg.backend = lua_tostring(L, -1);
  if (opt_field(L, "momento_endpoint", LUA_TSTRING))
    o->cfg.momento_endpoint = lua_tostring(L, -1);
  if (opt_field(L, "store", LUA_TSTRING))
    o->cfg.store = lua_tostring(L, -1);
  if (opt_field(L, "configuration", LUA_TSTRING) &&
      kr_preset_parse(lua_tostring(L, -1), &o->cfg.preset))
    return snprintf(msg, cap, "unknown configuration '%s' (expected laptop, in_region, "
                    "low_latency or lambda)", lua_tostring(L, -1)), KURA_EINVAL;
  if (lua_getfield(L, 1, "credential") != LUA_TNIL) {
    lcred *k = luaL_testudata(L, -1, CRED_NAME);
    if (!k)
      luaL_error(L, "bad option 'credential' to 'client' (" CRED_NAME " expected, got %s)",
                 luaL_typename(L, -1));
    o->cfg.credential = k->secret, o->cfg.credential_len = k->len;
    o->has_cred = 1;
  }
  return read_numbers(L, o, msg, cap);
}

/* Fills what opts left open from the binding's configuration; the
 * environment fills the rest in kr_client_new (kr_client_config_env: a
 * MOMENTO_TTL_SECONDS that is no number of seconds is refused there). */
static void apply_defaults(lua_State *L, copts *o)
{
  const kr_lua_config *rc = kr_lua_config_get(L);
  if (!rc)
    return;
  if (!o->cfg.backend)
    o->cfg.backend = rc->backend;
  if (o->cfg.default_ttl <= 0 && rc->default_ttl > 0)
    o->cfg.default_ttl = rc->default_ttl;
  if (!o->cfg.momento_endpoint)
    o->cfg.momento_endpoint = rc->momento_endpoint;
  if (!o->cfg.store)
    o->cfg.store = rc->store;
  if (!o->cfg.max_memory)
    o->cfg.max_memory = rc->store_max_memory;
}

/* In the sandbox a script uses the store the host gave the runtime, with the
 * host's budget (kura_options.store, store_max_memory): it may neither name
 * another store nor set a budget. KURA_EPERM with msg, or 0. */
static int sandbox_options(lua_State *L, char *msg, size_t cap)
{
  static const char *const refused[] = {"store", "max_memory", NULL};
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (!rt || !kr_runtime_sandboxed(rt))
    return 0;
  for (int i = 0; refused[i]; i++) {
    int t = lua_getfield(L, 1, refused[i]);
    lua_pop(L, 1);
    if (t != LUA_TNIL)
      return snprintf(msg, cap, "option '%s' is not allowed in the sandbox: the host sets the "
                      "store and its memory budget", refused[i]), KURA_EPERM;
  }
  return 0;
}

/* Pushes a new client userdata for o, or nil, err. */
static int new_client(lua_State *L, copts *o)
{
  char err[256];
  kr_runtime *rt = kr_runtime_from_lua(L);
  apply_defaults(L, o);
  lclient *lc = lua_newuserdatauv(L, sizeof *lc, 0);
  lc->c = NULL;
  lc->is_inline = 1;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &client_mt_key);
  lua_setmetatable(L, -2);
  int rc = kr_client_new(rt ? kr_runtime_loop(rt) : NULL, &o->cfg, &lc->c, err, sizeof err);
  if (rc)
    return push_error(L, rc, err);
  lc->is_inline = kr_client_is_inline(lc->c);
  return 1;
}

/* kura.client(): the runtime's shared client, made on first use. */
static int shared_client(lua_State *L)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &shared_key) == LUA_TUSERDATA)
    return 1;
  lua_pop(L, 1);
  copts o = {0};
  int n = new_client(L, &o);
  if (n == 1) {
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &shared_key);
  }
  return n;
}

static int shared_client_p(lua_State *L)
{
  return shared_client(L);
}

kr_client *kr_lua_shared_client(lua_State *L, char *err, size_t cap)
{
  int top = lua_gettop(L);
  kr_client *c = NULL;
  lua_pushcfunction(L, shared_client_p);
  if (lua_pcall(L, 0, 2, 0) != LUA_OK) {
    snprintf(err, cap, "%s", lua_tostring(L, -1));
  } else if (lua_type(L, -2) == LUA_TUSERDATA) {
    c = ((lclient *)lua_touserdata(L, -2))->c;
  } else {
    lua_getfield(L, -1, "message");
    snprintf(err, cap, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "no client");
  }
  lua_settop(L, top);
  return c;
}

static int l_client(lua_State *L)
{
  if (lua_isnoneornil(L, 1))
    return shared_client(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  copts o = {0};
  char msg[256];
  if (read_options(L, &o, msg, sizeof msg))
    return push_error(L, KURA_EINVAL, msg);
  if (sandbox_options(L, msg, sizeof msg))
    return push_error(L, KURA_EPERM, msg);
  return new_client(L, &o);
}

/* --- registration ---------------------------------------------------------- */

static void new_metatable(lua_State *L, const void *key, const char *name,
                          const luaL_Reg *meta)
{
  lua_newtable(L);
  luaL_setfuncs(L, meta, 0);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, name); /* for luaL_checkudata/testudata */
}

/* Sets __index of the metatables at -2 (client) and -1 (handle): method
 * tables whose functions carry both metatables as upvalues. */
static void set_methods(lua_State *L)
{
  static const luaL_Reg cm[] = {
    {"get", c_get}, {"set", c_set}, {"delete", c_delete}, {"increment", c_increment},
    {"set_if_absent", c_set_if_absent}, {"set_if_present", c_set_if_present},
    {"set_if_equal", c_set_if_equal}, {"set_if_not_equal", c_set_if_not_equal},
    {"set_if_present_and_not_equal", c_set_if_present_and_not_equal},
    {"set_if_absent_or_equal", c_set_if_absent_or_equal}, {"key_exists", c_key_exists},
    {"keys_exist", c_keys_exist}, {"get_batch", c_get_batch}, {"set_batch", c_set_batch},
    {"item_get_ttl", c_item_get_ttl}, {"update_ttl", c_update_ttl},
    {"increase_ttl", c_increase_ttl}, {"decrease_ttl", c_decrease_ttl},
    {"create_cache", c_create_cache}, {"delete_cache", c_delete_cache},
    {"flush_cache", c_flush_cache}, {"list_caches", c_list_caches}, {"cache", c_cache},
    {"stats", c_stats}, {"default_ttl", c_default_ttl}, {NULL, NULL}};
  static const luaL_Reg hm[] = {
    {"get", h_get}, {"set", h_set}, {"delete", h_delete}, {"increment", h_increment},
    {"set_if_absent", h_set_if_absent}, {"set_if_present", h_set_if_present},
    {"set_if_equal", h_set_if_equal}, {"set_if_not_equal", h_set_if_not_equal},
    {"set_if_present_and_not_equal", h_set_if_present_and_not_equal},
    {"set_if_absent_or_equal", h_set_if_absent_or_equal}, {"key_exists", h_key_exists},
    {"keys_exist", h_keys_exist}, {"get_batch", h_get_batch}, {"set_batch", h_set_batch},
    {"item_get_ttl", h_item_get_ttl}, {"update_ttl", h_update_ttl},
    {"increase_ttl", h_increase_ttl}, {"decrease_ttl", h_decrease_ttl}, {"stats", h_stats},
    {NULL, NULL}};
  int cmt = lua_gettop(L) - 1, hmt = lua_gettop(L);
  lua_newtable(L);
  lua_pushvalue(L, cmt);
  lua_pushvalue(L, hmt);
  luaL_setfuncs(L, cm, 2);
  lua_setfield(L, cmt, "__index");
  lua_newtable(L);
  lua_pushvalue(L, cmt);
  lua_pushvalue(L, hmt);
  luaL_setfuncs(L, hm, 2);
  lua_setfield(L, hmt, "__index");
}

void kr_lua_open_client(lua_State *L)
{
  static const luaL_Reg client_meta[] = {
    {"__gc", c_gc}, {"__close", c_gc}, {"__tostring", c_tostring}, {NULL, NULL}};
  static const luaL_Reg handle_meta[] = {{"__tostring", h_tostring}, {NULL, NULL}};
  static const luaL_Reg error_meta[] = {{"__tostring", error_tostring}, {NULL, NULL}};
  static const luaL_Reg cred_meta[] = {
    {"__gc", cred_gc}, {"__close", cred_gc}, {"__tostring", cred_tostring},
    {"__index", cred_index}, {NULL, NULL}};
  static const luaL_Reg cred_funcs[] = {
    {"from_env", cred_from_env}, {"from_string", cred_from_string}, {NULL, NULL}};
  /* Once per state: a second luaopen_kura (require after package.loaded.kura
   * = nil) keeps the metatables, whose __gc the clients made so far need
   * (luaL_checkudata against a new one would fail, and their connections
   * would never close). */
  int fresh = lua_rawgetp(L, LUA_REGISTRYINDEX, &client_mt_key) != LUA_TTABLE;
  lua_pop(L, 1);
  if (fresh) {
    new_metatable(L, &client_mt_key, CLIENT_NAME, client_meta);
    new_metatable(L, &handle_mt_key, HANDLE_NAME, handle_meta);
    set_methods(L);
    lua_pop(L, 2);
    new_metatable(L, &error_mt_key, "kura.error", error_meta);
    new_metatable(L, &cred_mt_key, CRED_NAME, cred_meta);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable"); /* no getmetatable() peeking at internals */
    lua_pop(L, 2);
  }
  lua_pushcfunction(L, l_client);
  lua_setfield(L, -2, "client");
  luaL_newlib(L, cred_funcs);
  lua_setfield(L, -2, "credential");
}
