/* kura.http: non-blocking HTTP for scripts, on the runtime's loop.
 *
 *   kura.http.request{ method=, url=, headers=, body=, timeout=, max_size= }
 *   kura.http.get(url [, opts])
 *     -> { status=, headers= { ["content-type"]=..., ... }, body= }  or  nil, err
 *
 * A request suspends only the calling task. Response header names are
 * lower-cased; repeated headers are joined with ", ". Errors are the client's
 * error tables (CONNECTION_ERROR, TIMEOUT_ERROR, INVALID_ARGUMENT_ERROR for a
 * bad URL, INTERNAL_SERVER_ERROR for an answer that is not valid HTTP: no
 * status line, a garbled one, an unknown HTTP version; LIMIT_EXCEEDED_ERROR
 * for a body over max_size, default 64 MiB, for a header line over
 * libcurl's 100 KB or headers over its 300 KB, and for a body that would
 * take the responses in flight over the budget below). A request that is
 * not idempotent (POST, PATCH, any method but GET, HEAD, PUT, DELETE and
 * OPTIONS) that failed after it may have reached the server has
 * err.uncertain = true and err.retryable = false.
 * An HTTP error status is not an error: it is in `status`; redirects are not
 * followed (the 3xx is the result). The method is upper-cased ("post" is
 * POST); timeout is in seconds (default 30), max_size in bytes.
 *
 * The budget: all the responses in flight of a runtime hold at most
 * KURA_HTTP_MAX_BUFFERED bytes of bodies together (read from the
 * environment when kura.http is first used: a number of bytes, or of KiB,
 * MiB, GiB with a K, M or G after it; default 256M), so that many large
 * answers at once (128 in flight, each up to 64 MiB) cannot take the
 * process's memory; a response that would go past it fails with
 * LIMIT_EXCEEDED_ERROR, the others go on.
 *
 * One kr_http (one curl multi handle, so one connection cache) per runtime,
 * made on first use and held by a userdata in the registry; its __gc, which
 * runs when the runtime closes its Lua state, closes it and so cancels what
 * is still in flight (the waiting tasks are then gone with the state).
 */
#include <ctype.h>
#include <stdint.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/net/http.h"
#include "lua/binding.h"
#include "runtime/runtime.h"

static const char state_key = 'h'; /* registry: the runtime's lstate userdata */

#define STATE_NAME "kura.http.state"
#define MAX_HEADERS 256
/* Connections per host, and transfers inside curl at once: enough to keep a
 * server busy, few enough that curl's search for a free connection stays
 * cheap. More requests wait in kr_http's queue, which costs nothing per event
 * (curl's own queue does: twice the CPU per request at 1,000 concurrent).
 * Between MIN_ACTIVE and this, the number in curl adapts: it grows while
 * requests wait on a slow server, and shrinks while the loop is busy, where
 * fewer in flight cost less per request (see kr_http_next_active). */
#define MAX_HOST_CONNECTIONS 128
#define MIN_ACTIVE 32

/* The header lines of the last response, one slot per line number: a
 * server sends the same names (and mostly the same values) in the same
 * order on every answer, and a line equal to its slot's gets the Lua
 * string the slot holds (in the state's cache table) instead of a new one
 * to hash and intern, and to lower-case for a name. ~40% of building a
 * headers table, which costs ~9% of a small GET. */
#define HC_SLOTS 24
#define HC_BYTES 62
typedef struct hc_slot {
  unsigned char nlen;       /* 0: empty (a header name is never empty) */
  unsigned char vlen;       /* the value's length + 1, 0: empty */
  char name[HC_BYTES], value[HC_BYTES];
} hc_slot;

typedef struct lstate {
  kr_http *h;   /* NULL until first use, and after close */
  int closing;  /* __gc ran: completions must not touch Lua */
  int hc_ref;   /* registry: the cache table, [2i+1] name and [2i+2] value of slot i */
  hc_slot hc[HC_SLOTS];
} lstate;

typedef struct call {
  lstate *st;
  kr_task *task;
  int idempotent; /* GET, HEAD, PUT, DELETE, OPTIONS: sending it twice is harmless */
} call;

/* --- the per-runtime state -------------------------------------------------- */

static int state_gc(lua_State *L)
{
  lstate *st = lua_touserdata(L, 1);
  st->closing = 1;
  if (st->h) {
    kr_http *h = st->h;
    st->h = NULL;
    kr_http_close(h, NULL, NULL); /* the cancellations see `closing` */
  }
  return 0;
}

/* A size from the environment: bytes, or KiB / MiB / GiB with a K, M or G
 * after the number; 0 when unset; raises when it does not read as one. */
static size_t env_bytes(lua_State *L, const char *name)
{
  const char *v = getenv(name);
  if (!v || !*v)
    return 0;
  char *end;
  unsigned long long n = strtoull(v, &end, 10);
  int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20
            : *end == 'G' || *end == 'g' ? 30 : 0;
  end += shift != 0;
  if (end == v || *end || n == 0 || n > (SIZE_MAX >> shift))
    luaL_error(L, "%s must be a number of bytes (or with K, M or G), not '%s'", name, v);
  return (size_t)n << shift;
}

/* The runtime's HTTP client, made on first use; raises outside a runtime. */
static lstate *get_state(lua_State *L)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key) == LUA_TUSERDATA) {
    lstate *st = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return st;
  }
  lua_pop(L, 1);
  kr_runtime *rt = kr_runtime_from_lua(L);
  if (!rt)
    luaL_error(L, "kura.http needs a kura runtime (its event loop)");
  size_t budget = env_bytes(L, "KURA_HTTP_MAX_BUFFERED"); /* may raise: before anything */
  lstate *st = lua_newuserdatauv(L, sizeof *st, 0);
  st->h = NULL;
  st->closing = 0;
  memset(st->hc, 0, sizeof st->hc);
  lua_createtable(L, 2 * HC_SLOTS, 0);
  st->hc_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (luaL_newmetatable(L, STATE_NAME)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  kr_http_config cfg = {.max_host_connections = MAX_HOST_CONNECTIONS,
                        .max_cached_connections = 2 * MAX_HOST_CONNECTIONS,
                        .max_active = MAX_HOST_CONNECTIONS,
                        .min_active = MIN_ACTIVE,
                        .max_buffered = budget};
  if (kr_http_new(kr_runtime_loop(rt), &cfg, &st->h) != 0)
    luaL_error(L, "kura.http: cannot start the HTTP client");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  return st;
}

/* --- results --------------------------------------------------------------- */

/* Building one response's headers table, on the Lua stack: the table at
 * `headers`, the cache table at `cache`, and from the first repeated name
 * on, at `multi`, a table name -> array of that name's values, joined once
 * at the end (join_repeated): joining at each repeat would copy the value
 * so far every time, quadratic in the repeats of a name. */
typedef struct hbuild {
  lua_State *L;
  lstate *st;
  int cache, headers, multi;   /* absolute stack indexes; multi 0: none yet */
  int line;                    /* the line's number in the response */
  const void *names[HC_SLOTS]; /* this response's names so far (interned strings) */
} hbuild;

/* Pushes the lower-cased name, from slot i when it holds these bytes. */
static void push_name(hbuild *b, int i, const char *name, size_t nlen)
{
  lua_State *L = b->L;
  hc_slot *sl = i < HC_SLOTS ? &b->st->hc[i] : NULL;
  if (sl && sl->nlen == nlen && memcmp(sl->name, name, nlen) == 0) {
    lua_rawgeti(L, b->cache, 2 * i + 1);
    return;
  }
  char stack[128] = {0}; /* (only on a miss; quiets -Wmaybe-uninitialized) */
  char *low = nlen <= sizeof stack ? stack : lua_newuserdatauv(L, nlen, 0);
  for (size_t k = 0; k < nlen; k++) /* ASCII only, as header names are */
    low[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] + ('a' - 'A') : name[k]);
  lua_pushlstring(L, low, nlen);
  if (low != stack)
    lua_remove(L, -2); /* the scratch userdata */
  if (sl && nlen <= HC_BYTES) {
    memcpy(sl->name, name, nlen);
    sl->nlen = (unsigned char)nlen;
    lua_pushvalue(L, -1);
    lua_rawseti(L, b->cache, 2 * i + 1);
  }
}

/* Pushes the value, from slot i when it holds these bytes. */
static void push_value(hbuild *b, int i, const char *value, size_t vlen)
{
  lua_State *L = b->L;
  hc_slot *sl = i < HC_SLOTS ? &b->st->hc[i] : NULL;
  if (sl && sl->vlen == vlen + 1 && memcmp(sl->value, value, vlen) == 0) {
    lua_rawgeti(L, b->cache, 2 * i + 2);
    return;
  }
  lua_pushlstring(L, value, vlen);
  if (sl && vlen < HC_BYTES) {
    memcpy(sl->value, value, vlen);
    sl->vlen = (unsigned char)(vlen + 1); /* +1: an empty value is cached too */
    lua_pushvalue(L, -1);
    lua_rawseti(L, b->cache, 2 * i + 2);
  }
}

/* A name that came before in this response is at -2, its first value at
 * -1. Adds `value` to the name's array in b->multi (made with the first
 * value on the second); pops the name and the value. */
static void add_repeat(hbuild *b, const char *value, size_t vlen)
{
  lua_State *L = b->L;
  if (!b->multi) {
    lua_newtable(L);
    lua_insert(L, -3); /* below the name and the value, for good */
    b->multi = lua_gettop(L) - 2;
  }
  lua_pushvalue(L, -2);
  if (lua_rawget(L, b->multi) != LUA_TTABLE) { /* second value: {first} */
    lua_pop(L, 1);
    lua_createtable(L, 4, 0);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -2);
    lua_rawset(L, b->multi);
  }
  lua_pushlstring(L, value, vlen);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 3); /* the array, the first value, the name */
}

static void add_header(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
  hbuild *b = ud;
  lua_State *L = b->L;
  int i = b->line++;
  push_name(b, i, name, nlen);
  /* A name seen before in this response is joined to the earlier values.
   * Names up to 40 bytes are interned by Lua, so one string each: it is
   * found among this response's names by address. Past those (and past
   * the names kept), the table itself is asked. */
  int seen = i >= HC_SLOTS || nlen > 40;
  const void *id = lua_topointer(L, -1);
  for (int k = 0; !seen && k < i; k++)
    seen = b->names[k] == id;
  if (i < HC_SLOTS)
    b->names[i] = id;
  if (seen) {
    lua_pushvalue(L, -1);
    if (lua_rawget(L, b->headers) == LUA_TSTRING) {
      add_repeat(b, value, vlen);
      return;
    }
    lua_pop(L, 1);
  }
  push_value(b, i, value, vlen);
  lua_rawset(L, b->headers);
}

/* Each repeated name's values, joined with ", " in the order they came. */
static void join_repeated(hbuild *b)
{
  lua_State *L = b->L;
  for (lua_pushnil(L); lua_next(L, b->multi); lua_pop(L, 1)) {
    luaL_Buffer buf;
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    lua_pushvalue(L, -2); /* the name, for the rawset */
    luaL_buffinit(L, &buf);
    for (lua_Integer k = 1; k <= n; k++) {
      if (k > 1)
        luaL_addlstring(&buf, ", ", 2);
      lua_rawgeti(L, -3, k); /* the array: below the name and the buffer's slot */
      luaL_addvalue(&buf);
    }
    luaL_pushresult(&buf);
    lua_rawset(L, b->headers);
  }
}

static int push_response(lua_State *L, lstate *st, const kr_http_response *res, int idempotent)
{
  if (res->err)
    return kr_lua_push_error_uncertain(L, res->err, res->msg, !idempotent && !res->unsent &&
                                                                kr_err_indeterminate(res->err));
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, res->status);
  lua_setfield(L, -2, "status");
  /* Sized for every line up front: growing a table rehashes it at each power
   * of two, which cost more than the headers themselves. */
  int nlines = 0;
  for (const char *p = res->headers, *end = p + res->headers_len;
       (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
    nlines++;
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->hc_ref);
  lua_createtable(L, 0, nlines);
  hbuild b = {.L = L, .st = st, .cache = lua_absindex(L, -2), .headers = lua_absindex(L, -1)};
  kr_http_headers_each(res->headers, res->headers_len, add_header, &b);
  if (b.multi) {
    join_repeated(&b);
    lua_pop(L, 1); /* multi, on top again */
  }
  lua_remove(L, -2); /* the cache table */
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, res->body, res->body_len);
  lua_setfield(L, -2, "body");
  return 1;
}

static void on_done(void *udata, const kr_http_response *res)
{
  call *k = udata;
  kr_task *t = k->task;
  lstate *st = k->st;
  int idempotent = k->idempotent;
  free(k);
  if (st->closing)
    return; /* the Lua state is being closed: no one waits any more */
  lua_State *co = kr_task_state(t);
  if (!lua_checkstack(co, 16))
    return;
  kr_task_wake(t, push_response(co, st, res, idempotent));
}

/* --- arguments ------------------------------------------------------------- */

static const char *const option_names[] = {
  "method", "url", "headers", "body", "timeout", "max_size", NULL,
};

static void check_option_names(lua_State *L, int idx)
{
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
    int known = 0;
    for (int i = 0; option_names[i] && lua_type(L, -2) == LUA_TSTRING; i++)
      known |= strcmp(option_names[i], lua_tostring(L, -2)) == 0;
    if (!known)
      luaL_error(L, "unknown option '%s' to 'kura.http.request'", luaL_tolstring(L, -2, NULL));
  }
}

/* Field `name` of the table at idx as a string (numbers converted), or NULL
 * when absent; other types raise. Leaves the value on the stack. */
static const char *opt_string(lua_State *L, int idx, const char *name, size_t *len)
{
  int t = lua_getfield(L, idx, name);
  if (t == LUA_TNIL)
    return NULL;
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "bad option '%s' to 'kura.http.request' (string expected, got %s)", name,
               luaL_typename(L, -1));
  return lua_tolstring(L, -1, len);
}

static double opt_number(lua_State *L, int idx, const char *name, double dflt)
{
  int t = lua_getfield(L, idx, name);
  double v = dflt;
  if (t == LUA_TNUMBER)
    v = lua_tonumber(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "bad option '%s' to 'kura.http.request' (number expected, got %s)", name,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

static int has_crlf(const char *s, size_t n)
{
  return memchr(s, '\r', n) || memchr(s, '\n', n) || memchr(s, '\0', n);
}

/* Builds "Name: value" lines from the headers table at idx into lines[]
 * (strings anchored in a table pushed on the stack). Returns the count, or
 * -1 with a message pushed for a header that would break the request. */
static int read_headers(lua_State *L, int idx, const char **lines)
{
  int n = 0;
  lua_newtable(L);
  int anchor = lua_gettop(L);
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING &&
                                           lua_type(L, -1) != LUA_TNUMBER))
      luaL_error(L, "bad option 'headers' to 'kura.http.request' (string names and "
                    "string values expected)");
    size_t nl, vl;
    const char *name = lua_tolstring(L, -2, &nl);
    lua_pushvalue(L, -1); /* tolstring on a copy: lua_next needs the key as is */
    const char *value = lua_tolstring(L, -1, &vl);
    if (n == MAX_HEADERS || nl == 0 || memchr(name, ':', nl) || has_crlf(name, nl) ||
        has_crlf(value, vl)) {
      lua_pushfstring(L, n == MAX_HEADERS ? "too many request headers"
                                          : "invalid request header '%s'", name);
      return -1;
    }
    lines[n] = lua_pushfstring(L, "%s: %s", name, value);
    lua_rawseti(L, anchor, n + 1);
    lua_pop(L, 1);
    n++;
  }
  return n;
}

/* --- kura.http.request / get ----------------------------------------------- */

/* GET, HEAD, PUT, DELETE, OPTIONS (RFC 9110's idempotent methods but TRACE);
 * no method is GET, or POST with a body. */
static int method_idempotent(const kr_http_request *req)
{
  static const char *const m[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
  if (!req->method)
    return !req->body;
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
    if (strcmp(req->method, m[i]) == 0)
      return 1;
  return 0;
}

/* Sends req and yields until the response. */
static int send_request(lua_State *L, const kr_http_request *req)
{
  lstate *st = get_state(L);
  if (!st->h)
    return kr_lua_push_error(L, KURA_ECANCELLED, "kura.http is closed");
  /* Raises when L cannot yield: before anything is sent. */
  kr_task *t = kr_task_prepare_wait(L, "kura.http.request");
  call *k = malloc(sizeof *k);
  int rc = KURA_ENOMEM;
  const char *why = "out of memory";
  if (k) {
    k->st = st, k->task = t, k->idempotent = method_idempotent(req);
    if ((rc = kr_http_submit(st->h, req, on_done, k)) != 0) {
      free(k);
      why = kr_http_errstr(st->h);
    }
  }
  if (rc) /* the task was prepared: it must still be woken, with the error */
    kr_task_wake(t, kr_lua_push_error(kr_task_state(t), rc, why));
  return lua_yield(L, 0);
}

/* Reads method (upper-cased into `method`), timeout and max_size of the
 * options table at idx. Returns 0, or pushes nil, err and returns 2. */
static int read_scalars(lua_State *L, int idx, kr_http_request *req, char method[40])
{
  size_t mlen = 0;
  const char *m = opt_string(L, idx, "method", &mlen);
  if (m) {
    if (mlen >= 40 || !mlen)
      return kr_lua_push_error(L, KURA_EINVAL, "invalid HTTP method");
    for (size_t i = 0; i <= mlen; i++)
      method[i] = (char)toupper((unsigned char)m[i]);
    req->method = method;
  }
  double timeout = opt_number(L, idx, "timeout", KR_HTTP_DEFAULT_TIMEOUT_MS / 1000.0);
  double max_size = opt_number(L, idx, "max_size", (double)KR_HTTP_DEFAULT_MAX_BODY);
  if (!(timeout > 0) || timeout > 1e9)
    return kr_lua_push_error(L, KURA_EINVAL, "timeout must be a positive number of seconds");
  if (!(max_size >= 1) || max_size > 1e15)
    return kr_lua_push_error(L, KURA_EINVAL, "max_size must be a positive number of bytes");
  req->timeout_ms = (uint64_t)(timeout * 1000.0 + 0.5);
  req->timeout_ms += req->timeout_ms == 0;
  req->max_body = (size_t)max_size;
  return 0;
}

/* The options table is at idx; `url` (may be NULL) overrides its url and
 * `get` its method. Returns an immediate nil, err, or yields until the
 * response. */
static int do_request(lua_State *L, int idx, const char *url, int get)
{
  const char *lines[MAX_HEADERS];
  char method[40];
  kr_http_request req = {0};
  check_option_names(L, idx);
  int n = read_scalars(L, idx, &req, method);
  if (n)
    return n;
  if (get)
    req.method = "GET";
  req.url = url ? url : opt_string(L, idx, "url", NULL);
  if (!req.url)
    luaL_error(L, "bad option 'url' to 'kura.http.request' (string expected, got nil)");
  req.body = opt_string(L, idx, "body", &req.body_len);
  if (lua_getfield(L, idx, "headers") == LUA_TTABLE) {
    if ((n = read_headers(L, lua_gettop(L), lines)) < 0)
      return kr_lua_push_error(L, KURA_EINVAL, lua_tostring(L, -1));
    req.headers = lines, req.nheaders = (size_t)n;
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "bad option 'headers' to 'kura.http.request' (table expected, got %s)",
               luaL_typename(L, -1));
  }
  return send_request(L, &req);
}

static int l_request(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  return do_request(L, 1, NULL, 0);
}

/* get(url [, opts]): opts as for request, but the method is GET and the url
 * the argument. Without opts, the fast path: no option table to read. */
static int l_get(lua_State *L)
{
  const char *url = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    return do_request(L, 2, url, 1);
  }
  kr_http_request req = {.method = "GET", .url = url,
                         .timeout_ms = KR_HTTP_DEFAULT_TIMEOUT_MS,
                         .max_body = KR_HTTP_DEFAULT_MAX_BODY};
  return send_request(L, &req);
}

void kr_lua_open_http(lua_State *L)
{
  static const luaL_Reg fns[] = {{"request", l_request}, {"get", l_get}, {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "http");
}
