/* Tests of the Redis backend (src/core/backends/backend_redis.c) through the client
 * API, against a real redis-server started by the test: the key layout,
 * incremental flush, the NOSCRIPT fallback, the cache checks shared by the
 * calls of one loop turn, and the faults (server killed
 * mid-load and restarted, wrong password, a server that never answers). The
 * semantics of each call are covered by the conformance suite. */
#include "core/client.h"
#include "core/net/resp.h"
#include "kura_client.h"
#include "ktest.h"
#include "redis_server.h"

/* One completed call, copied out of the callback. */
struct out {
  int done, err, outcome;
  int64_t integer;
  size_t count, vlen;
  char val[256];
};

static void on_done(void *udata, const kr_request *req, const kr_result *res)
{
  struct out *o = udata;
  o->done = 1;
  o->err = res->err;
  o->outcome = res->outcome;
  o->integer = res->integer;
  o->count = res->count;
  o->vlen = res->vlen;
  if (res->val && res->vlen < sizeof o->val)
    memcpy(o->val, res->val, res->vlen);
}

static int call(uv_loop_t *loop, kr_client *c, kr_request *r, struct out *o)
{
  memset(o, 0, sizeof *o);
  if (kr_client_submit(c, r, on_done, o))
    return -1;
  return run_until(loop, &o->done);
}

static kr_client *open_client(uv_loop_t *loop, const char *url, double timeout)
{
  kr_client_config cfg = {.backend = url, .default_ttl = 60, .timeout = timeout,
                          .max_attempts = 1};
  kr_client *c = NULL;
  char err[200];
  if (kr_client_new(loop, &cfg, &c, err, sizeof err)) {
    fprintf(stderr, "  kr_client_new(%s): %s\n", url, err);
    return NULL;
  }
  return c;
}

static void on_client_closed(void *ud)
{
  *(int *)ud = 1;
}

static int close_client(uv_loop_t *loop, kr_client *c)
{
  int closed = 0;
  kr_client_close(c, on_client_closed, &closed);
  uv_run(loop, UV_RUN_DEFAULT);
  return closed && uv_loop_close(loop) == 0;
}

static void url_of(char *buf, size_t cap, const char *auth, int port)
{
  snprintf(buf, cap, "redis://%s127.0.0.1:%d", auth, port);
}

static size_t slen(const char *s)
{
  return s ? strlen(s) : 0;
}

#define REQ(op_, cache_, key_) \
  (kr_request){.op = (op_), .cache = (cache_), .cache_len = strlen(cache_), \
               .key = (key_), .klen = slen(key_)}

static int cache_op(uv_loop_t *loop, kr_client *c, enum kr_op op, const char *name,
                    struct out *o)
{
  kr_request r = REQ(op, name, NULL);
  return call(loop, c, &r, o);
}

static int set(uv_loop_t *loop, kr_client *c, const char *cache, const char *k,
               const char *v, struct out *o)
{
  kr_request r = REQ(KR_OP_SET, cache, k);
  r.val = v, r.vlen = strlen(v);
  return call(loop, c, &r, o);
}

/* A raw connection, to look at what the backend stored. */
struct raw {
  int done, type;
  long long integer;
  char str[8192];
};

static void on_raw(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  struct raw *r = udata;
  r->done = 1;
  r->type = status ? -1 : reply->type;
  r->integer = status ? 0 : reply->integer;
  if (!status && reply->type == REDIS_REPLY_STRING)
    snprintf(r->str, sizeof r->str, "%.*s", (int)reply->len, reply->str);
}

static int raw(uv_loop_t *loop, int port, int argc, const char **argv, struct raw *r)
{
  kr_resp_opts o = {.host = "127.0.0.1", .port = port};
  kr_resp *c;
  memset(r, 0, sizeof *r);
  if (kr_resp_open(loop, &o, &c) || kr_resp_command(c, argc, argv, NULL, 0, on_raw, r))
    return -1;
  int rc = run_until(loop, &r->done);
  kr_resp_close(c, NULL, NULL);
  return rc;
}

/* --- tests ------------------------------------------------------------------ */

static void layout(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  char url[128];
  struct out o;
  struct raw rr;
  uv_loop_init(loop);
  url_of(url, sizeof url, "", s->port);
  kr_client *c = open_client(loop, url, 5);
  KCHECK(c != NULL);
  KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "a:b", &o) == 0 && o.outcome == KURA_HIT);
  KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "a", &o) == 0 && o.outcome == KURA_HIT);
  KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "a", &o) == 0 && o.outcome == KURA_SKIPPED);
  KCHECK(set(loop, c, "a:b", "c", "first", &o) == 0 && o.err == 0);
  KCHECK(set(loop, c, "a", "b:c", "second", &o) == 0 && o.err == 0);
  kr_request g = REQ(KR_OP_GET, "a:b", "c");
  KCHECK(call(loop, c, &g, &o) == 0 && o.outcome == KURA_HIT);
  KCHECK(o.vlen == 5 && memcmp(o.val, "first", 5) == 0);
  g = REQ(KR_OP_GET, "a", "b:c");
  KCHECK(call(loop, c, &g, &o) == 0 && o.outcome == KURA_HIT);
  KCHECK(o.vlen == 6 && memcmp(o.val, "second", 6) == 0);
  const char *ex[] = {"EXISTS", "kura:3:a:b:c", "kura:1:a:b:c"};
  KCHECK(raw(loop, s->port, 3, ex, &rr) == 0);
  KCHECK_EQ(rr.integer, 2);
  const char *sm[] = {"SISMEMBER", "kura:caches", "a:b"};
  KCHECK(raw(loop, s->port, 3, sm, &rr) == 0);
  KCHECK_EQ(rr.integer, 1);
  const char *mk[] = {"EXISTS", "kura:c:a:b", "kura:c:a"}; /* the markers */
  KCHECK(raw(loop, s->port, 3, mk, &rr) == 0);
  KCHECK_EQ(rr.integer, 2);
  KCHECK(close_client(loop, c));
}

KTEST(key_layout)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  layout(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

/* Calls of the server's command `name` so far (INFO commandstats). */
static long long calls_of(uv_loop_t *loop, int port, const char *name)
{
  const char *info[] = {"INFO", "commandstats"};
  struct raw rr;
  char pat[64];
  if (raw(loop, port, 2, info, &rr))
    return -1;
  snprintf(pat, sizeof pat, "cmdstat_%s:calls=", name);
  const char *p = strstr(rr.str, pat);
  return p ? strtoll(p + strlen(pat), NULL, 10) : 0;
}

/* Calls submitted together, in one loop turn, then awaited. */
enum { NTURN = 64 };
struct turn;
struct tcall {
  struct turn *t;
  kr_request req;
  char key[16];
  struct out out;
};
struct turn {
  struct tcall call[NTURN];
  int n, left, done;
};

static void on_turn(void *udata, const kr_request *req, const kr_result *res)
{
  struct tcall *k = udata;
  on_done(&k->out, req, res);
  k->t->done = --k->t->left == 0;
}

/* Add a call to the turn; returns its index. */
static int add(struct turn *t, enum kr_op op, const char *cache, const char *key)
{
  struct tcall *k = &t->call[t->n];
  k->t = t;
  snprintf(k->key, sizeof k->key, "%s", key ? key : "");
  k->req = REQ(op, cache, key ? k->key : NULL);
  k->req.val = "v", k->req.vlen = 1;
  return t->n++;
}

/* Submit every call of the turn, then run the loop until all completed. */
static int run_turn(uv_loop_t *loop, kr_client *c, struct turn *t)
{
  t->left = t->n;
  t->done = 0;
  for (int i = 0; i < t->n; i++) {
    memset(&t->call[i].out, 0, sizeof t->call[i].out);
    if (kr_client_submit(c, &t->call[i].req, on_turn, &t->call[i]))
      return -1;
  }
  return run_until(loop, &t->done);
}

/* set_batch of n keys "k<i>" = "v" into cache. */
static int fill(uv_loop_t *loop, kr_client *c, const char *cache, int n, struct out *o)
{
  char (*names)[16] = malloc((size_t)n * sizeof *names);
  const void **keys = malloc((size_t)n * sizeof *keys), **vals = malloc((size_t)n * sizeof *vals);
  size_t *klens = malloc((size_t)n * sizeof *klens), *vlens = malloc((size_t)n * sizeof *vlens);
  for (int i = 0; i < n; i++) {
    klens[i] = (size_t)snprintf(names[i], sizeof names[i], "k%d", i);
    keys[i] = names[i], vals[i] = "v", vlens[i] = 1;
  }
  kr_request r = REQ(KR_OP_SET_BATCH, cache, NULL);
  r.n = (size_t)n, r.keys = keys, r.klens = klens, r.vals = vals, r.vlens = vlens;
  int rc = call(loop, c, &r, o);
  free(names), free(keys), free(vals), free(klens), free(vlens);
  return rc;
}

static void flush(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  char url[128];
  struct out o;
  struct raw rr;
  uv_loop_init(loop);
  url_of(url, sizeof url, "", s->port);
  kr_client *c = open_client(loop, url, 5);
  KCHECK(c != NULL);
  KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "big*[x]", &o) == 0 && o.err == 0);
  KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "big", &o) == 0 && o.err == 0);
  KCHECK(fill(loop, c, "big*[x]", 5000, &o) == 0 && o.err == 0);
  KCHECK(fill(loop, c, "big", 10, &o) == 0 && o.err == 0);
  const char *db[] = {"DBSIZE"};
  KCHECK(raw(loop, s->port, 1, db, &rr) == 0);
  KCHECK_EQ(rr.integer, 5000 + 10 + 1 + 2); /* items, kura:caches, the markers */
  KCHECK(cache_op(loop, c, KR_OP_FLUSH_CACHE, "big*[x]", &o) == 0 && o.err == 0);
  KCHECK(raw(loop, s->port, 1, db, &rr) == 0);
  KCHECK_EQ(rr.integer, 10 + 1 + 2); /* the other cache, kura:caches, markers stay */
  KCHECK(fill(loop, c, "big*[x]", 700, &o) == 0 && o.err == 0);
  KCHECK(cache_op(loop, c, KR_OP_DELETE_CACHE, "big*[x]", &o) == 0 && o.err == 0);
  KCHECK(raw(loop, s->port, 1, db, &rr) == 0);
  KCHECK_EQ(rr.integer, 10 + 1 + 1); /* its marker went with it */
  KCHECK(cache_op(loop, c, KR_OP_DELETE_CACHE, "big*[x]", &o) == 0);
  KCHECK_EQ(o.err, KURA_ENOTFOUND);
  KCHECK(set(loop, c, "big*[x]", "k", "v", &o) == 0);
  KCHECK_EQ(o.err, KURA_ENOTFOUND);
  KCHECK(raw(loop, s->port, 1, db, &rr) == 0);
  KCHECK_EQ(rr.integer, 10 + 1 + 1); /* the refused set left nothing behind */
  KCHECK(close_client(loop, c));
}

KTEST(flush_and_delete_scan)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  flush(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

/* Keys of `cache` among "<prefix>0".."<prefix>n-1" that exist in Redis. */
static long long existing(uv_loop_t *loop, int port, const char *cache, const char *prefix,
                          int n)
{
  char keys[NTURN][64];
  const char *argv[NTURN + 1] = {"EXISTS"};
  struct raw rr;
  for (int i = 0; i < n && i < NTURN; i++) {
    snprintf(keys[i], sizeof keys[i], "kura:%zu:%s:%s%d", strlen(cache), cache, prefix, i);
    argv[i + 1] = keys[i];
  }
  return raw(loop, port, n + 1, argv, &rr) ? -1 : rr.integer;
}

/* 1 if the item `key` of `cache` exists in Redis. */
static long long stored(uv_loop_t *loop, int port, const char *cache, const char *key)
{
  char k[128];
  const char *argv[2] = {"EXISTS", k};
  struct raw rr;
  snprintf(k, sizeof k, "kura:%zu:%s:%s", strlen(cache), cache, key);
  return raw(loop, port, 2, argv, &rr) ? -1 : rr.integer;
}

/* The calls of one loop turn that check the same cache share ONE SISMEMBER:
 * each still gets its own answer, a set refused for a missing cache leaves
 * nothing behind, and create_cache/delete_cache in the middle of the turn
 * are seen by the calls after them. */
static void shared(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  char url[128], key[16];
  struct out o;
  struct turn *t = calloc(1, sizeof *t);
  KCHECK(t != NULL);
  uv_loop_init(loop);
  url_of(url, sizeof url, "", s->port);
  kr_client *c = open_client(loop, url, 5);
  KCHECK(c != NULL);
  KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "here", &o) == 0 && o.err == 0);
  KCHECK(set(loop, c, "here", "x", "1", &o) == 0 && o.err == 0);

  /* 40 sets of an existing cache, 20 of a missing one, interleaved, and a
   * read of each: 2 SISMEMBERs instead of 62. */
  long long before = calls_of(loop, s->port, "sismember");
  KCHECK(before >= 0);
  for (int i = 0, h = 0, m = 0; i < 60; i++) {
    if (i % 3 == 2) {
      snprintf(key, sizeof key, "m%d", m++);
      add(t, KR_OP_SET, "missing", key);
    } else {
      snprintf(key, sizeof key, "h%d", h++);
      add(t, KR_OP_SET, "here", key);
    }
  }
  int rd_here = add(t, KR_OP_KEY_EXISTS, "here", "x");
  int rd_missing = add(t, KR_OP_KEY_EXISTS, "missing", "x");
  KCHECK(run_turn(loop, c, t) == 0);
  for (int i = 0; i < 60; i++)
    KCHECK_EQ(t->call[i].out.err, i % 3 == 2 ? KURA_ENOTFOUND : 0);
  KCHECK(t->call[rd_here].out.err == 0 && t->call[rd_here].out.outcome == KURA_HIT);
  KCHECK_EQ(t->call[rd_missing].out.err, KURA_ENOTFOUND);
  long long after = calls_of(loop, s->port, "sismember");
  KCHECK_EQ(after - before, 2); /* one per cache, not one per call */
  KCHECK_EQ(existing(loop, s->port, "here", "h", 40), 40);
  KCHECK_EQ(existing(loop, s->port, "missing", "m", 20), 0);

  /* More caches in one turn than the backend keeps shared checks for:
   * e0, e2, e4 exist, e1, e3, e5 do not. */
  char names[6][4];
  for (int i = 0; i < 6; i++) {
    snprintf(names[i], sizeof names[i], "e%d", i);
    if (i % 2 == 0)
      KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, names[i], &o) == 0 && o.err == 0);
  }
  t->n = 0;
  for (int i = 0; i < 36; i++) {
    snprintf(key, sizeof key, "k%d", i);
    add(t, KR_OP_SET, names[i % 6 == 5 ? 0 : (i * 7 + i / 6) % 6], key);
  }
  KCHECK(run_turn(loop, c, t) == 0);
  for (int i = 0; i < 36; i++) {
    int even = t->call[i].req.cache[1] % 2 == 0;
    KCHECK_EQ(t->call[i].out.err, even ? 0 : KURA_ENOTFOUND);
    KCHECK_EQ(stored(loop, s->port, t->call[i].req.cache, t->call[i].key), even);
  }

  /* A set refused, create_cache, then a set that succeeds; and a set
   * accepted, delete_cache, then a set refused: all in one turn. */
  t->n = 0;
  int a = add(t, KR_OP_SET, "late", "r0");
  int cr = add(t, KR_OP_CREATE_CACHE, "late", NULL);
  int b = add(t, KR_OP_SET, "late", "a0");
  int d = add(t, KR_OP_SET, "here", "d0");
  int dl = add(t, KR_OP_DELETE_CACHE, "here", NULL);
  int e = add(t, KR_OP_SET, "here", "e0");
  int f = add(t, KR_OP_KEY_EXISTS, "here", "x");
  KCHECK(run_turn(loop, c, t) == 0);
  KCHECK_EQ(t->call[a].out.err, KURA_ENOTFOUND);
  KCHECK(t->call[cr].out.err == 0 && t->call[cr].out.outcome == KURA_HIT);
  KCHECK_EQ(t->call[b].out.err, 0);
  KCHECK_EQ(t->call[d].out.err, 0);
  KCHECK_EQ(t->call[dl].out.err, 0);
  KCHECK_EQ(t->call[e].out.err, KURA_ENOTFOUND);
  KCHECK_EQ(t->call[f].out.err, KURA_ENOTFOUND);
  KCHECK_EQ(existing(loop, s->port, "late", "r", 1), 0);
  KCHECK_EQ(existing(loop, s->port, "late", "a", 1), 1);

  /* Closing the client with shared checks in flight cancels every call. */
  t->n = 0;
  for (int i = 0; i < 10; i++)
    add(t, KR_OP_SET, "late", "z");
  t->left = t->n;
  t->done = 0;
  for (int i = 0; i < t->n; i++)
    KCHECK(kr_client_submit(c, &t->call[i].req, on_turn, &t->call[i]) == 0);
  KCHECK(close_client(loop, c));
  KCHECK(t->done);
  for (int i = 0; i < t->n; i++)
    KCHECK_EQ(t->call[i].out.err, KURA_ECANCELLED);
  free(t);
}

KTEST(shared_cache_checks)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  shared(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

static void noscript(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  char url[128];
  struct out o;
  struct raw rr;
  uv_loop_init(loop);
  url_of(url, sizeof url, "", s->port);
  kr_client *c = open_client(loop, url, 5);
  KCHECK(c != NULL);
  KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "n", &o) == 0 && o.err == 0);
  KCHECK(set(loop, c, "n", "k", "1", &o) == 0 && o.err == 0);
  const char *fl[] = {"SCRIPT", "FLUSH"};
  KCHECK(raw(loop, s->port, 2, fl, &rr) == 0);
  kr_request r = REQ(KR_OP_INCREMENT, "n", "k");
  r.amount = 41;
  KCHECK(call(loop, c, &r, &o) == 0);
  KCHECK_EQ(o.err, 0);
  KCHECK_EQ(o.integer, 42);
  KCHECK(close_client(loop, c));
}

KTEST(noscript_falls_back_to_eval)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  noscript(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

/* 50 chains of get/set through the client; the server is killed mid-way. */
struct load {
  uv_loop_t *loop;
  kr_client *c;
  struct server *srv;
  int ok, econn, etimeout, eother, active, finished, killed;
  kr_request req;
};

static void on_load(void *udata, const kr_request *req, const kr_result *res)
{
  struct load *l = udata;
  if (res->err) {
    l->econn += res->err == KURA_ECONN;
    l->etimeout += res->err == KURA_ETIMEOUT;
    l->eother += res->err != KURA_ECONN && res->err != KURA_ETIMEOUT;
    l->finished = --l->active == 0;
    return;
  }
  if (++l->ok == 2000 && !l->killed) {
    server_stop(l->srv, SIGKILL);
    l->killed = 1;
  }
  kr_request r = l->req;
  r.op = l->ok % 2 ? KR_OP_GET : KR_OP_SET;
  if (kr_client_submit(l->c, &r, on_load, l))
    l->finished = --l->active == 0;
}

static void killed(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  char url[128];
  struct out o;
  uv_loop_init(loop);
  url_of(url, sizeof url, "", s->port);
  kr_client *c = open_client(loop, url, 1);
  KCHECK(c != NULL);
  KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "load", &o) == 0 && o.err == 0);
  struct load l = {.loop = loop, .c = c, .srv = s};
  l.req = REQ(KR_OP_GET, "load", "key");
  l.req.val = "value", l.req.vlen = 5;
  for (int i = 0; i < 50; i++, l.active++) {
    kr_request r = l.req;
    KCHECK(kr_client_submit(c, &r, on_load, &l) == 0);
  }
  KCHECK(run_until(loop, &l.finished) == 0); /* no call hangs */
  KCHECK(l.killed);
  KCHECK_EQ(l.eother, 0);
  KCHECK_EQ(l.econn + l.etimeout, 50);
  KCHECK(server_start(s, NULL) == 0); /* same port; the cache list is gone */
  int ok = 0;
  for (int i = 0; i < 100 && !ok; i++) {
    KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "load", &o) == 0);
    ok = o.err == 0;
    KCHECK(ok || o.err == KURA_ECONN || o.err == KURA_ETIMEOUT);
  }
  KCHECK(ok);
  KCHECK(set(loop, c, "load", "k", "v", &o) == 0 && o.err == 0);
  KCHECK(close_client(loop, c));
}

KTEST(server_killed_mid_load)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  killed(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

static void auth(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  char url[128];
  struct out o;
  uv_loop_init(loop);
  url_of(url, sizeof url, ":wrong@", s->port);
  kr_client *c = open_client(loop, url, 2);
  KCHECK(c != NULL);
  KCHECK(cache_op(loop, c, KR_OP_LIST_CACHES, "", &o) == 0);
  KCHECK_EQ(o.err, KURA_EAUTH);
  KCHECK(close_client(loop, c));

  uv_loop_init(loop);
  url_of(url, sizeof url, "default:s%33cret@", s->port); /* %33 is '3' */
  c = open_client(loop, url, 2);
  KCHECK(c != NULL);
  KCHECK(cache_op(loop, c, KR_OP_CREATE_CACHE, "x", &o) == 0);
  KCHECK_EQ(o.err, 0);
  KCHECK(close_client(loop, c));
}

KTEST(wrong_password)
{
  struct server s = {0};
  KCHECK(server_start(&s, "s3cret") == 0);
  auth(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

/* A listener that accepts and never answers. */
static void on_conn(uv_stream_t *l, int status)
{
  uv_tcp_t *peer = malloc(sizeof *peer);
  uv_tcp_init(l->loop, peer);
  if (uv_accept(l, (uv_stream_t *)peer) == 0)
    l->data = peer;
  else
    uv_close((uv_handle_t *)peer, (uv_close_cb)free);
}

static void silent(int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_tcp_t listener;
  struct sockaddr_in a;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char url[128];
  struct out o;
  uv_loop_init(loop);
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &listener);
  listener.data = NULL;
  KCHECK(uv_tcp_bind(&listener, (struct sockaddr *)&a, 0) == 0);
  KCHECK(uv_listen((uv_stream_t *)&listener, 4, on_conn) == 0);
  uv_tcp_getsockname(&listener, (struct sockaddr *)&ss, &len);
  url_of(url, sizeof url, "", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  kr_client *c = open_client(loop, url, 0.3);
  KCHECK(c != NULL);
  uint64_t t0 = uv_now(loop);
  kr_request r = REQ(KR_OP_GET, "c", "k");
  KCHECK(call(loop, c, &r, &o) == 0);
  KCHECK_EQ(o.err, KURA_ETIMEOUT);
  KCHECK(uv_now(loop) - t0 >= 300);
  struct turn *t = calloc(1, sizeof *t); /* sets that share one check */
  KCHECK(t != NULL);
  for (int i = 0; i < 5; i++)
    add(t, KR_OP_SET, "c", "k");
  KCHECK(run_turn(loop, c, t) == 0);
  for (int i = 0; i < 5; i++)
    KCHECK_EQ(t->call[i].out.err, KURA_ETIMEOUT);
  free(t);
  if (listener.data)
    uv_close((uv_handle_t *)listener.data, (uv_close_cb)free);
  uv_close((uv_handle_t *)&listener, NULL);
  KCHECK(close_client(loop, c));
}

KTEST(silent_server_times_out)
{
  silent(ktest_failed_);
}

KTEST(bad_urls)
{
  uv_loop_t lp;
  uv_loop_init(&lp);
  const char *bad[] = {"redis://", "redis://host:0", "redis://host:99999", "redis://h:1/x",
                       "redis://h:1/2/3", "redis://h:port"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    kr_client_config cfg = {.backend = bad[i]};
    kr_client *c = NULL;
    char err[200] = "";
    KCHECK_EQ(kr_client_new(&lp, &cfg, &c, err, sizeof err), KURA_EINVAL);
    KCHECK(c == NULL && strstr(err, "redis"));
  }
  KCHECK(uv_loop_close(&lp) == 0);
}

KTEST_MAIN(KENTRY(key_layout), KENTRY(flush_and_delete_scan), KENTRY(shared_cache_checks),
           KENTRY(noscript_falls_back_to_eval),
           KENTRY(server_killed_mid_load), KENTRY(wrong_password), KENTRY(silent_server_times_out),
           KENTRY(bad_urls))
