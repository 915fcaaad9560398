/* The Redis backend: every call of LUA_API.md on one Redis server, over the
 * auto-pipelining RESP connection of resp.c.
 *
 * Layout in Redis. The set "kura:caches" lists the caches. An item of cache
 * C with key K lives at "kura:<len(C)>:C:K": the length makes the prefix
 * unambiguous (cache "a:b" key "c" differs from cache "a" key "b:c") and the
 * key carries no hash tag of ours, so that in a cluster a cache's items
 * spread over all slots.
 *
 * Atomicity. Every item call must fail with NOT_FOUND_ERROR on a cache that
 * does not exist. Reads (get, delete, key_exists, keys_exist, get_batch,
 * item_get_ttl) send SISMEMBER and the command in the same pipeline, one
 * round trip, and discard the result when the cache is missing: they cannot
 * leave anything behind. Writes that could create keys (set, the conditional
 * sets, increment, set_batch) and the TTL changes run as Lua scripts that
 * check membership and act atomically; the scripts are loaded with SCRIPT
 * LOAD and called with EVALSHA, with EVAL while the SHA is unknown and as the
 * fallback on NOSCRIPT (the script did not run, so sending it again is safe).
 *
 * delete_cache (SREM) and flush_cache remove the cache's items incrementally:
 * SCAN with a MATCH on the prefix, COUNT bounded, UNLINK of each batch, one
 * batch per reply, so no loop turn does unbounded work. Known limit: a cache
 * created again under the same name while its deletion still scans loses
 * the items written meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/resp.h"

#define CACHES_KEY "kura:caches"
#define SCAN_COUNT "512"

enum { S_SET, S_SET_IF, S_INCR, S_TTL_SET, S_SET_BATCH, S_COUNT_ };

#define CHECK_CACHE                                                         \
  "if redis.call('SISMEMBER',KEYS[1],ARGV[1])==0 then "                     \
  "return redis.error_reply('KURA_NOTFOUND cache') end "

static const char *const scripts[S_COUNT_] = {
  [S_SET] = CHECK_CACHE
  "redis.call('SET',KEYS[2],ARGV[2],'PX',ARGV[3]) return 1",
  [S_SET_IF] = CHECK_CACHE
  "local v=redis.call('GET',KEYS[2]) local c=ARGV[4] local ok "
  "if c=='1' then ok=not v elseif c=='2' then ok=v~=false "
  "elseif c=='3' then ok=v==ARGV[5] elseif c=='4' then ok=v~=ARGV[5] "
  "elseif c=='5' then ok=v~=false and v~=ARGV[5] "
  "elseif c=='6' then ok=(not v) or v==ARGV[5] else ok=true end "
  "if not ok then return 0 end "
  "redis.call('SET',KEYS[2],ARGV[2],'PX',ARGV[3]) return 1",
  /* The new value comes back as the stored string: a Lua number (double)
   * would lose int64 precision. */
  [S_INCR] = CHECK_CACHE
  "local e=redis.call('EXISTS',KEYS[2]) "
  "local r=redis.pcall('INCRBY',KEYS[2],ARGV[2]) "
  "if type(r)=='table' and r.err then return redis.error_reply('KURA_PRECOND '..r.err) end "
  "if e==0 then redis.call('PEXPIRE',KEYS[2],ARGV[3]) end "
  "return redis.call('GET',KEYS[2])",
  [S_TTL_SET] = CHECK_CACHE
  "local t=redis.call('PTTL',KEYS[2]) if t==-2 then return -1 end "
  "local n=tonumber(ARGV[2]) "
  "if ARGV[3]=='1' and (t<0 or n<=t) then return 0 end "
  "if ARGV[3]=='2' and t>=0 and n>=t then return 0 end "
  "redis.call('PEXPIRE',KEYS[2],ARGV[2]) return 1",
  [S_SET_BATCH] = CHECK_CACHE
  "for i=2,#KEYS do redis.call('SET',KEYS[i],ARGV[2*i-2],'PX',ARGV[2*i-1]) end return 1",
};

typedef struct rop rop;

typedef struct rbe {
  kr_client *client;
  kr_resp *conn;
  uint64_t timeout_ms;
  char sha[S_COUNT_][48];   /* "" until SCRIPT LOAD answered */
  int loading[S_COUNT_];    /* a SCRIPT LOAD is on its way */
  uv_timer_t defer;         /* completes requests that failed in submit */
  rop *deferred;            /* their list */
  int closing, conn_closed, defer_closed;
} rbe;

/* One request in flight: the commands it sent and what came back so far. */
struct rop {
  rop *next;                /* in rbe.deferred */
  rbe *b;
  const kr_request *req;    /* the client's copy: valid until we complete */
  kr_client_cb cb;
  void *udata;
  int pending;              /* commands sent whose reply has not come */
  int idx;                  /* replies received */
  int err;
  int notfound;
  int eval;                 /* scripts go as EVAL (NOSCRIPT seen) */
  kr_result res;
  uint8_t *flags;           /* keys_exist */
  const void **vals;        /* get_batch */
  size_t *vlens;
  char cursor[32];          /* flush/delete scan */
  char msg[200];
};

/* --- building commands ------------------------------------------------------ */

/* An argv under construction; strings it builds live in one block that was
 * sized up front, so pointers into it stay valid. */
typedef struct args {
  int n;
  const char **v;
  size_t *l;
  char *buf, *at;
} args;

static int args_init(args *a, size_t nargs, size_t bytes)
{
  a->n = 0;
  a->v = malloc(nargs * (sizeof *a->v + sizeof *a->l) + bytes);
  if (!a->v)
    return KURA_ENOMEM;
  a->l = (size_t *)(a->v + nargs);
  a->buf = a->at = (char *)(a->l + nargs);
  return 0;
}

static void args_add(args *a, const void *p, size_t len)
{
  a->v[a->n] = p;
  a->l[a->n++] = len;
}

static void args_num(args *a, long long x)
{
  int len = snprintf(a->at, 24, "%lld", x);
  args_add(a, a->at, (size_t)len);
  a->at += len;
}

/* Bytes of the item key prefix "kura:<len>:<cache>:" */
static size_t prefix_len(const kr_request *r)
{
  char tmp[24];
  return 5 + (size_t)snprintf(tmp, sizeof tmp, "%zu", r->cache_len) + 1 + r->cache_len + 1;
}

static void args_key(args *a, const kr_request *r, const void *key, size_t klen)
{
  char *p = a->at;
  int n = sprintf(p, "kura:%zu:", r->cache_len);
  memcpy(p + n, r->cache, r->cache_len);
  p[n + r->cache_len] = ':';
  size_t pl = (size_t)n + r->cache_len + 1;
  memcpy(p + pl, key, klen);
  args_add(a, p, pl + klen);
  a->at += pl + klen;
}

/* --- completion --------------------------------------------------------------- */

static void op_free(rop *o)
{
  free(o->flags);
  free(o->vals);
  free(o->vlens);
  free(o);
}

static void finish(rop *o)
{
  kr_result res = o->res;
  if (o->err) {
    res = (kr_result){.err = o->err, .msg = o->msg};
  } else if (o->notfound) {
    snprintf(o->msg, sizeof o->msg, "cache '%.*s' does not exist",
             (int)(o->req->cache_len < 100 ? o->req->cache_len : 100), o->req->cache);
    res = (kr_result){.err = KURA_ENOTFOUND, .msg = o->msg};
  }
  o->cb(o->udata, o->req, &res);
  op_free(o);
}

static void set_err(rop *o, int err, const char *fmt, const char *detail)
{
  if (o->err)
    return;
  o->err = err;
  char k[64];
  kr_format_key(k, sizeof k, o->req->key, o->req->klen);
  int n = snprintf(o->msg, sizeof o->msg, "%s of ", kr_op_name(o->req->op));
  if (o->req->key && n > 0 && (size_t)n < sizeof o->msg)
    n += snprintf(o->msg + n, sizeof o->msg - (size_t)n, "key '%s' in ", k);
  if (n > 0 && (size_t)n < sizeof o->msg)
    n += snprintf(o->msg + n, sizeof o->msg - (size_t)n, "cache '%.*s': ",
                  (int)(o->req->cache_len < 64 ? o->req->cache_len : 64),
                  o->req->cache ? o->req->cache : "");
  if (n > 0 && (size_t)n < sizeof o->msg)
    snprintf(o->msg + n, sizeof o->msg - (size_t)n, fmt, detail);
}

static void on_deferred(uv_timer_t *t)
{
  rbe *b = t->data;
  rop *list = b->deferred;
  b->deferred = NULL;
  while (list) {
    rop *o = list;
    list = o->next;
    finish(o);
  }
}

/* A request that could not be sent completes from the loop, never from
 * inside submit. */
static void defer(rop *o)
{
  rbe *b = o->b;
  o->next = b->deferred;
  b->deferred = o;
  if (!b->closing)
    uv_timer_start(&b->defer, on_deferred, 0, 0);
}

/* --- replies -------------------------------------------------------------------- */

static void on_reply(kr_resp *conn, int status, const redisReply *reply, void *udata);
static int send_op(rop *o);

static int send_args(rop *o, args *a)
{
  int rc = kr_resp_command(o->b->conn, a->n, a->v, a->l, o->b->timeout_ms, on_reply, o);
  free(a->v);
  if (rc == 0)
    o->pending++;
  return rc;
}

/* "-ERR ...", "-NOAUTH ..." and our scripts' errors -> KURA_E* codes. */
static int map_error(const char *s)
{
  static const struct { const char *p; int err; } map[] = {
    {"NOAUTH", KURA_EAUTH},      {"WRONGPASS", KURA_EAUTH},   {"NOPERM", KURA_EPERM},
    {"OOM", KURA_ELIMIT},        {"LOADING", KURA_EUNAVAIL},  {"BUSY", KURA_EUNAVAIL},
    {"MASTERDOWN", KURA_EUNAVAIL}, {"TRYAGAIN", KURA_EUNAVAIL}, {"CLUSTERDOWN", KURA_EUNAVAIL},
    {"READONLY", KURA_EUNAVAIL}, {"MOVED", KURA_EUNAVAIL},    {"ASK", KURA_EUNAVAIL},
  };
  if (strstr(s, "KURA_NOTFOUND"))
    return KURA_ENOTFOUND;
  if (strstr(s, "KURA_PRECOND"))
    return KURA_EPRECOND;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strncmp(s, map[i].p, strlen(map[i].p)) == 0)
      return map[i].err;
  return KURA_EBADREQ;
}

static void on_error_reply(rop *o, const redisReply *reply)
{
  int err = map_error(reply->str);
  if (err == KURA_ENOTFOUND) {
    o->notfound = 1;
  } else if (err == KURA_EPRECOND) {
    set_err(o, err, "%s", "the value is not an integer, or the result is outside int64");
  } else {
    set_err(o, err, "redis: %s", reply->str);
  }
}

static void scan_next(rop *o);

/* A SCAN reply [cursor, keys]: UNLINK the keys, continue from the cursor. */
static void on_scan(rop *o, const redisReply *r)
{
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !r->element[1] ||
      r->element[1]->type != REDIS_REPLY_ARRAY) {
    set_err(o, KURA_EINTERNAL, "%s", "unexpected SCAN reply");
    return;
  }
  const redisReply *keys = r->element[1];
  if (keys->elements) {
    args a;
    if (args_init(&a, keys->elements + 1, 0) == 0) {
      args_add(&a, "UNLINK", 6);
      for (size_t i = 0; i < keys->elements; i++)
        args_add(&a, keys->element[i]->str, keys->element[i]->len);
      if (send_args(o, &a))
        set_err(o, KURA_ECONN, "%s", "could not send UNLINK");
    }
  }
  snprintf(o->cursor, sizeof o->cursor, "%.*s", (int)r->element[0]->len, r->element[0]->str);
  if (strcmp(o->cursor, "0") != 0)
    scan_next(o);
}

/* SCAN cursor MATCH kura:<len>:<cache>:* with the glob characters of the
 * name escaped. */
static void scan_next(rop *o)
{
  const kr_request *r = o->req;
  args a;
  if (o->err || args_init(&a, 6, prefix_len(r) + r->cache_len + 2)) {
    set_err(o, KURA_ENOMEM, "%s", "out of memory");
    return;
  }
  char *p = a.at;
  int n = sprintf(p, "kura:%zu:", r->cache_len);
  for (size_t i = 0; i < r->cache_len; i++) {
    char ch = r->cache[i];
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
      p[n++] = '\\';
    p[n++] = ch;
  }
  p[n++] = ':';
  p[n++] = '*';
  args_add(&a, "SCAN", 4);
  args_add(&a, o->cursor, strlen(o->cursor));
  args_add(&a, "MATCH", 5);
  args_add(&a, p, (size_t)n);
  args_add(&a, "COUNT", 5);
  args_add(&a, SCAN_COUNT, strlen(SCAN_COUNT));
  if (send_args(o, &a))
    set_err(o, KURA_ECONN, "%s", "could not send SCAN");
}

static int cmp_names(const void *x, const void *y)
{
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* SMEMBERS -> sorted names; completes here while the reply is valid. */
static void on_list(rop *o, const redisReply *r)
{
  const char **names = malloc((r->elements + 1) * sizeof *names);
  if (!names) {
    set_err(o, KURA_ENOMEM, "%s", "out of memory");
    return;
  }
  size_t n = 0;
  for (size_t i = 0; i < r->elements; i++)
    if (r->element[i]->type == REDIS_REPLY_STRING)
      names[n++] = r->element[i]->str;
  qsort(names, n, sizeof *names, cmp_names);
  o->res.names = names;
  o->res.count = n;
  o->vals = (const void **)names; /* freed with the op */
}

static void on_get_batch(rop *o, const redisReply *r)
{
  for (size_t i = 0; i < o->req->n && i < r->elements; i++) {
    const redisReply *e = r->element[i];
    o->vals[i] = e->type == REDIS_REPLY_STRING ? e->str : NULL;
    o->vlens[i] = e->type == REDIS_REPLY_STRING ? e->len : 0;
  }
  o->res.count = o->req->n;
  o->res.vals = o->vals;
  o->res.vlens = o->vlens;
}

static void on_increment(rop *o, const redisReply *r)
{
  char buf[32];
  snprintf(buf, sizeof buf, "%.*s", (int)(r->len < 31 ? r->len : 31), r->str ? r->str : "");
  o->res.integer = strtoll(buf, NULL, 10);
  o->res.outcome = KR_HIT;
}

static int outcome3(long long x)
{
  return x > 0 ? KR_HIT : x == 0 ? KR_SKIPPED : KR_MISS;
}

/* Reply `i` of the request (0 is SISMEMBER/SREM/SADD/SMEMBERS for the calls
 * that send it first). */
static void on_value(rop *o, int i, const redisReply *r)
{
  const kr_request *q = o->req;
  long long x = r->integer;
  switch (q->op) {
  case KR_OP_GET:
  case KR_OP_DELETE:
  case KR_OP_KEY_EXISTS:
  case KR_OP_KEYS_EXIST:
  case KR_OP_GET_BATCH:
  case KR_OP_TTL_GET:
  case KR_OP_FLUSH_CACHE:
    if (i == 0) {
      o->notfound = r->type == REDIS_REPLY_INTEGER && x == 0;
      if (q->op == KR_OP_FLUSH_CACHE && !o->notfound)
        scan_next(o);
      return;
    }
    break;
  default:
    break;
  }
  switch (q->op) {
  case KR_OP_GET:
    o->res.outcome = r->type == REDIS_REPLY_STRING ? KR_HIT : KR_MISS;
    o->res.val = r->str;
    o->res.vlen = r->type == REDIS_REPLY_STRING ? r->len : 0;
    break;
  case KR_OP_DELETE:
  case KR_OP_KEY_EXISTS:
    o->res.outcome = x > 0 ? KR_HIT : KR_MISS;
    break;
  case KR_OP_KEYS_EXIST:
    o->flags[i - 1] = x > 0;
    o->res.flags = o->flags;
    o->res.count = q->n;
    break;
  case KR_OP_GET_BATCH:
    on_get_batch(o, r);
    break;
  case KR_OP_TTL_GET:
    o->res.outcome = x == -2 ? KR_MISS : KR_HIT;
    o->res.ttl_ms = x == -1 ? UINT64_MAX : x >= 0 ? (uint64_t)x : 0;
    break;
  case KR_OP_SET:
  case KR_OP_SET_BATCH:
    o->res.outcome = KR_HIT;
    break;
  case KR_OP_SET_IF:
  case KR_OP_TTL_SET:
    o->res.outcome = outcome3(x);
    break;
  case KR_OP_INCREMENT:
    on_increment(o, r);
    break;
  case KR_OP_CREATE_CACHE:
    o->res.outcome = x > 0 ? KR_HIT : KR_SKIPPED;
    break;
  case KR_OP_DELETE_CACHE:
    if (r->type == REDIS_REPLY_INTEGER && i == 0) {
      o->notfound = x == 0;
      if (x > 0)
        scan_next(o);
      return;
    } /* then SCAN and UNLINK replies, as for flush_cache */
    /* fall through */
  case KR_OP_FLUSH_CACHE:
    if (r->type == REDIS_REPLY_ARRAY)
      on_scan(o, r);
    o->res.outcome = KR_HIT;
    break;
  case KR_OP_LIST_CACHES:
    on_list(o, r);
    break;
  default:
    break;
  }
}

static void on_reply(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  rop *o = udata;
  o->pending--;
  int i = o->idx++;
  if (status < 0) {
    set_err(o, status, "redis: %s",
            status == KURA_ECONN && conn->errstr[0] ? conn->errstr
            : status == KURA_ETIMEOUT ? "no reply within the timeout"
                                      : kura_strerror(status));
  } else if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
             !o->eval && !o->b->closing) {
    o->eval = 1; /* the script did not run: send it in full */
    o->idx--;
    if (send_op(o))
      set_err(o, KURA_ECONN, "%s", "could not send EVAL");
  } else if (reply->type == REDIS_REPLY_ERROR) {
    on_error_reply(o, reply);
  } else if (!o->err && !o->notfound) {
    on_value(o, i, reply);
  }
  if (o->pending == 0)
    finish(o); /* reply (and what res points into) is still valid here */
}

/* --- sending requests ------------------------------------------------------------ */

static void on_script_loaded(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  int *loading = udata;
  *loading = 0;
  if (status == 0 && reply->type == REDIS_REPLY_STRING && reply->len < 48) {
    rbe *b = conn->data;
    char *sha = b->sha[loading - b->loading];
    memcpy(sha, reply->str, reply->len);
    sha[reply->len] = 0;
  }
}

static void load_script(rbe *b, int s)
{
  if (b->loading[s] || b->closing)
    return;
  const char *argv[3] = {"SCRIPT", "LOAD", scripts[s]};
  if (kr_resp_command(b->conn, 3, argv, NULL, 0, on_script_loaded, &b->loading[s]) == 0)
    b->loading[s] = 1;
}

/* EVALSHA sha nkeys "kura:caches" key... name args... (EVAL while the SHA is
 * not known yet). `a` was sized with 4 leading slots. */
static void script_head(rop *o, args *a, int s, int nkeys)
{
  rbe *b = o->b;
  if (o->eval || !b->sha[s][0]) {
    args_add(a, "EVAL", 4);
    args_add(a, scripts[s], strlen(scripts[s]));
    if (!b->sha[s][0])
      load_script(b, s);
  } else {
    args_add(a, "EVALSHA", 7);
    args_add(a, b->sha[s], strlen(b->sha[s]));
  }
  args_num(a, nkeys + 1);
  args_add(a, CACHES_KEY, strlen(CACHES_KEY));
}

static int script_single(rop *o, int s)
{
  const kr_request *r = o->req;
  args a;
  if (args_init(&a, 12, prefix_len(r) + r->klen + 4 * 24))
    return KURA_ENOMEM;
  script_head(o, &a, s, 1);
  args_key(&a, r, r->key, r->klen);
  args_add(&a, r->cache, r->cache_len);
  switch (r->op) {
  case KR_OP_SET:
  case KR_OP_SET_IF:
    args_add(&a, r->val, r->vlen);
    args_num(&a, (long long)r->ttl_ms);
    if (r->op == KR_OP_SET_IF) {
      args_num(&a, (long long)r->cond);
      args_add(&a, r->cmp ? r->cmp : "", r->cmplen);
    }
    break;
  case KR_OP_INCREMENT:
    args_num(&a, (long long)r->amount);
    args_num(&a, (long long)r->ttl_ms);
    break;
  default: /* KR_OP_TTL_SET */
    args_num(&a, (long long)r->ttl_ms);
    args_num(&a, (long long)r->ttl_mode);
    break;
  }
  return send_args(o, &a);
}

static int script_set_batch(rop *o)
{
  const kr_request *r = o->req;
  size_t bytes = 24 + r->n * (prefix_len(r) + 24);
  for (size_t i = 0; i < r->n; i++)
    bytes += r->klens[i];
  args a;
  if (args_init(&a, 5 + 3 * r->n, bytes))
    return KURA_ENOMEM;
  script_head(o, &a, S_SET_BATCH, (int)r->n);
  for (size_t i = 0; i < r->n; i++)
    args_key(&a, r, r->keys[i], r->klens[i]);
  args_add(&a, r->cache, r->cache_len);
  for (size_t i = 0; i < r->n; i++) {
    args_add(&a, r->vals[i], r->vlens[i]);
    args_num(&a, (long long)(r->ttls && r->ttls[i] ? r->ttls[i] : r->ttl_ms));
  }
  return send_args(o, &a);
}

/* One command with the cache name: SISMEMBER, SADD, SREM. */
static int send_cache_cmd(rop *o, const char *cmd)
{
  args a;
  if (args_init(&a, 3, 0))
    return KURA_ENOMEM;
  args_add(&a, cmd, strlen(cmd));
  args_add(&a, CACHES_KEY, strlen(CACHES_KEY));
  args_add(&a, o->req->cache, o->req->cache_len);
  return send_args(o, &a);
}

/* cmd key... with every key of the request, or its one key. */
static int send_keys_cmd(rop *o, const char *cmd, int per_key)
{
  const kr_request *r = o->req;
  size_t n = r->n ? r->n : 1, bytes = 0;
  const void *const *keys = r->n ? r->keys : &r->key;
  const size_t *klens = r->n ? r->klens : &r->klen;
  for (size_t i = 0; i < n; i++)
    bytes += prefix_len(r) + klens[i];
  args a;
  if (args_init(&a, n + 1, bytes))
    return KURA_ENOMEM;
  args_add(&a, cmd, strlen(cmd));
  for (size_t i = 0; i < n; i++)
    args_key(&a, r, keys[i], klens[i]);
  if (!per_key)
    return send_args(o, &a);
  /* EXISTS one key at a time (EXISTS k1 k2 only counts): n commands. */
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    rc = kr_resp_command(o->b->conn, 2, (const char *[]){a.v[0], a.v[i + 1]},
                         (size_t[]){a.l[0], a.l[i + 1]}, o->b->timeout_ms, on_reply, o);
    o->pending += rc == 0;
  }
  free(a.v);
  return rc;
}

static int batch_arrays(rop *o)
{
  size_t n = o->req->n ? o->req->n : 1;
  if (o->req->op == KR_OP_KEYS_EXIST)
    o->flags = calloc(n, 1);
  else
    o->vals = calloc(n, sizeof *o->vals), o->vlens = calloc(n, sizeof *o->vlens);
  return (o->flags || (o->vals && o->vlens)) ? 0 : KURA_ENOMEM;
}

/* A read: SISMEMBER then the command, in one pipeline. */
static int send_read(rop *o, const char *cmd, int per_key)
{
  int rc = send_cache_cmd(o, "SISMEMBER");
  if (!rc && (o->req->op == KR_OP_KEYS_EXIST || o->req->op == KR_OP_GET_BATCH)) {
    if (o->req->n == 0)
      return 0;
    rc = batch_arrays(o);
  }
  return rc ? rc : send_keys_cmd(o, cmd, per_key);
}

static int send_op(rop *o)
{
  switch (o->req->op) {
  case KR_OP_GET: return send_read(o, "GET", 0);
  case KR_OP_DELETE: return send_read(o, "DEL", 0);
  case KR_OP_KEY_EXISTS: return send_read(o, "EXISTS", 0);
  case KR_OP_KEYS_EXIST: return send_read(o, "EXISTS", 1);
  case KR_OP_GET_BATCH: return send_read(o, "MGET", 0);
  case KR_OP_TTL_GET: return send_read(o, "PTTL", 0);
  case KR_OP_SET: return script_single(o, S_SET);
  case KR_OP_SET_IF: return script_single(o, S_SET_IF);
  case KR_OP_INCREMENT: return script_single(o, S_INCR);
  case KR_OP_TTL_SET: return script_single(o, S_TTL_SET);
  case KR_OP_SET_BATCH: return script_set_batch(o);
  case KR_OP_CREATE_CACHE: return send_cache_cmd(o, "SADD");
  case KR_OP_DELETE_CACHE: return send_cache_cmd(o, "SREM");
  case KR_OP_FLUSH_CACHE: return send_cache_cmd(o, "SISMEMBER");
  case KR_OP_LIST_CACHES: {
    const char *argv[2] = {"SMEMBERS", CACHES_KEY};
    int rc = kr_resp_command(o->b->conn, 2, argv, NULL, o->b->timeout_ms, on_reply, o);
    o->pending += rc == 0;
    return rc;
  }
  default: return KURA_EUNSUPPORTED;
  }
}

static void redis_submit(void *state, const kr_request *req, kr_client_cb cb, void *udata)
{
  rbe *b = state;
  rop *o = calloc(1, sizeof *o);
  if (!o) {
    kr_result res = {.err = KURA_ENOMEM, .msg = "out of memory"};
    cb(udata, req, &res); /* nothing else can be done without memory */
    return;
  }
  o->b = b;
  o->req = req;
  o->cb = cb;
  o->udata = udata;
  o->cursor[0] = '0';
  int rc = send_op(o);
  if (rc)
    set_err(o, rc == KURA_ENOMEM ? KURA_ENOMEM : rc, "%s", kura_strerror(rc));
  if (o->pending == 0)
    defer(o);
}

/* --- life cycle -------------------------------------------------------------------- */

static int hexval(int ch)
{
  return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
       : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* Copy [s, e) into out (cap bytes) with %XX decoded. */
static int url_part(char *out, size_t cap, const char *s, const char *e)
{
  size_t n = 0;
  for (; s < e; s++) {
    int ch = (unsigned char)*s;
    if (ch == '%' && e - s >= 3 && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
      ch = hexval(s[1]) * 16 + hexval(s[2]);
      s += 2;
    }
    if (n + 1 >= cap)
      return -1;
    out[n++] = (char)ch;
  }
  out[n] = 0;
  return 0;
}

typedef struct rurl {
  char host[256], user[128], pass[256];
  int port, db, has_user, has_pass;
} rurl;

/* redis://[[user]:password@]host[:port][/db] ("password@" alone: the
 * password of the default user). */
static int parse_url(const char *url, rurl *u)
{
  memset(u, 0, sizeof *u);
  u->port = 6379;
  if (strncmp(url, "redis://", 8) != 0)
    return -1;
  const char *s = url + 8, *at = strrchr(s, '@'), *end;
  if (at) {
    const char *colon = memchr(s, ':', (size_t)(at - s));
    if (colon) {
      u->has_user = colon > s;
      if (url_part(u->user, sizeof u->user, s, colon))
        return -1;
      s = colon + 1;
    }
    u->has_pass = 1;
    if (url_part(u->pass, sizeof u->pass, s, at))
      return -1;
    s = at + 1;
  }
  if (*s == '[') {
    end = strchr(s, ']');
    if (!end || url_part(u->host, sizeof u->host, s + 1, end))
      return -1;
    s = end + 1;
  } else {
    end = s + strcspn(s, ":/");
    if (url_part(u->host, sizeof u->host, s, end))
      return -1;
    s = end;
  }
  if (*s == ':') {
    char *e;
    long p = strtol(s + 1, &e, 10);
    if (e == s + 1 || p <= 0 || p > 65535)
      return -1;
    u->port = (int)p;
    s = e;
  }
  if (*s == '/' && s[1]) {
    char *e;
    long d = strtol(s + 1, &e, 10);
    if (e == s + 1 || *e || d < 0 || d > 1 << 20)
      return -1;
    u->db = (int)d;
  } else if (*s && strcmp(s, "/") != 0) {
    return -1;
  }
  return u->host[0] ? 0 : -1;
}

static int redis_open(kr_client *c, const kr_client_config *cfg, void **state)
{
  rurl u;
  if (!cfg->backend || parse_url(cfg->backend, &u))
    return kr_client_fail(c, KURA_EINVAL,
                          "bad redis URL (expected redis://[user:password@]host:port[/db])");
  rbe *b = calloc(1, sizeof *b);
  if (!b)
    return kr_client_fail(c, KURA_ENOMEM, "out of memory");
  b->client = c;
  b->timeout_ms = kr_client_timeout_ms(c);
  kr_resp_opts o = {.host = u.host, .port = u.port, .db = u.db,
                    .user = u.has_user ? u.user : NULL, .password = u.has_pass ? u.pass : NULL,
                    .connect_timeout_ms = b->timeout_ms, .timeout_ms = b->timeout_ms};
  int rc = kr_resp_open(kr_client_loop(c), &o, &b->conn);
  memset(u.pass, 0, sizeof u.pass);
  if (rc) {
    free(b);
    return kr_client_fail(c, rc, "redis: cannot open a connection to %s:%d", u.host, u.port);
  }
  b->conn->data = b;
  uv_timer_init(kr_client_loop(c), &b->defer);
  b->defer.data = b;
  for (int s = 0; s < S_COUNT_; s++)
    load_script(b, s);
  *state = b;
  return 0;
}

static void maybe_closed(rbe *b)
{
  if (b->conn_closed && b->defer_closed) {
    kr_client *c = b->client;
    free(b);
    kr_client_backend_closed(c);
  }
}

static void on_conn_closed(kr_resp *conn, void *udata)
{
  rbe *b = udata;
  b->conn_closed = 1;
  maybe_closed(b);
}

static void on_defer_closed(uv_handle_t *h)
{
  rbe *b = h->data;
  b->defer_closed = 1;
  maybe_closed(b);
}

static void redis_close(void *state)
{
  rbe *b = state;
  if (b->closing)
    return;
  b->closing = 1;
  for (rop *o = b->deferred; o; o = o->next)
    if (!o->err)
      set_err(o, KURA_ECANCELLED, "%s", "the client is closed");
  on_deferred(&b->defer);
  uv_close((uv_handle_t *)&b->defer, on_defer_closed);
  kr_resp_close(b->conn, on_conn_closed, b);
}

const kr_backend_ops kr_backend_redis_ops = {
  .name = "redis",
  .flags = 0,
  .open = redis_open,
  .submit = redis_submit,
  .close = redis_close,
};
