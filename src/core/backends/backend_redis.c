/* The Redis backends: every call of docs/lua-api.md on one Redis server
 * (redis://) or on a Redis Cluster (redis-cluster://, routed by
 * backend_redis_cluster.c), over the auto-pipelining connections of resp.c.
 * The layout in Redis, the cache check, what is guaranteed and what is
 * relaxed: backend_redis.h.
 *
 * A request (kr_rop) sends one or more commands, each tagged with its index
 * (replies are matched to it whatever node answers first), and completes
 * when the last reply has come. Command 0 is the cache check when the
 * request sends one (`checked`); in a cluster's pairs, 2k is key k's check
 * and 2k + 1 its command.
 *
 * Shared checks (single server, struct kr_rchk). The calls of one write batch
 * (those made in one loop turn while connected: resp.c's auto-pipelining)
 * that check the same cache send ONE SISMEMBER, the first one's, and all
 * take its reply. Redis runs a connection's commands in order, so it still
 * runs before the commands of each of them, as if each had sent its own: a
 * set told the cache is missing gets NOT_FOUND and its compensating DEL.
 * create_cache and delete_cache end the sharing, so that a call made after
 * them in the same turn is checked after them. A set then costs the server
 * one PSETEX plus its share of one SISMEMBER.
 *
 * Scripts go as EVALSHA (EVAL while the SHA is unknown, and again as EVAL
 * after NOSCRIPT: a node restarted, or one that never saw the script).
 *
 * Batches: a pipeline of pairs in a cluster (each routed to its node), MGET
 * and one script on a single server.
 *
 * What a reply that is not an error means for the call's result:
 * backend_redis_reply.c; the cache calls: backend_redis_caches.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backends/backend_redis.h"
#include "core/client.h"
#include "core/wipe.h"

/* Single server: one SISMEMBER shared by the requests that check the same
 * cache within one write batch (kr_resp_batch). Redis runs the commands of
 * a connection in order, so it still runs before the commands of each of
 * them. Freed when its reply (or failure) has been handed to all of them. */
struct kr_rchk {
  kr_rbe *b;
  const char *cache;        /* the first subscriber's name: that request */
  size_t cache_len;         /* cannot complete before this check does */
  uint64_t batch;           /* kr_resp_batch when sent */
  kr_rop *subs, **tail;     /* the subscribers, linked by kr_rop.chk_next */
};

/* A value copied out of a reply that is freed before the request completes. */
struct kr_rcopy {
  kr_rcopy *next;
  char data[];
};

/* --- completion --------------------------------------------------------------- */

static void op_free(kr_rop *o)
{
  while (o->copies) {
    kr_rcopy *c = o->copies;
    o->copies = c->next;
    free(c);
  }
  if (o->subs != o->sub_inline)
    free(o->subs);
  free(o->flags);
  free(o->vals);
  free(o->vlens);
  kr_rbe *b = o->b;
  if (b->nspare < KR_ROP_SPARE && !b->closing) {
    o->chk_next = b->spare;
    b->spare = o;
    b->nspare++;
  } else {
    free(o);
  }
}

static kr_rop *op_new(kr_rbe *b)
{
  kr_rop *o = b->spare;
  if (!o)
    return malloc(sizeof *o);
  b->spare = o->chk_next;
  b->nspare--;
  return o;
}

static void spares_free(kr_rbe *b)
{
  while (b->spare) {
    kr_rop *o = b->spare;
    b->spare = o->chk_next;
    free(o);
  }
  b->nspare = 0;
}

static void finish(kr_rop *o)
{
  kr_result res = o->res;
  if (o->err) {
    res = (kr_result){.err = o->err, .msg = o->msg};
  } else if (o->notfound) {
    snprintf(o->msg, sizeof o->msg, "cache '%.*s' does not exist",
             (int)(o->req->cache_len < 100 ? o->req->cache_len : 100), o->req->cache);
    res = (kr_result){.err = KURA_ENOTFOUND, .msg = o->msg};
  }
  res.unapplied = res.err && !o->ran;
  o->cb(o->udata, o->req, &res);
  op_free(o);
}

/* Whether r names its keys in keys[0..n) (maybe none) rather than in key. */
static int is_batch(const kr_request *r)
{
  return r->op == KR_OP_KEYS_EXIST || r->op == KR_OP_GET_BATCH || r->op == KR_OP_SET_BATCH;
}

void kr_rop_fail(kr_rop *o, int err, const char *fmt, const char *detail)
{
  if (o->err)
    return;
  o->err = err;
  const kr_request *r = o->req;
  char k[64];
  kr_format_key(k, sizeof k, r->key, r->klen);
  int n = snprintf(o->msg, sizeof o->msg, "%s of ", kr_op_name(r->op));
  if (r->op < KR_OP_CREATE_CACHE && !is_batch(r) && n > 0 && (size_t)n < sizeof o->msg)
    n += snprintf(o->msg + n, sizeof o->msg - (size_t)n, "key '%s' in ", k);
  if (r->op != KR_OP_LIST_CACHES && n > 0 && (size_t)n < sizeof o->msg)
    n += snprintf(o->msg + n, sizeof o->msg - (size_t)n, "cache '%.*s': ",
                  (int)(r->cache_len < 64 ? r->cache_len : 64), r->cache ? r->cache : "");
  else if (n > 1 && (size_t)n < sizeof o->msg)
    o->msg[n - 1] = ':', o->msg[n++] = ' ', o->msg[n] = 0; /* "list_caches: " */
  if (n > 0 && (size_t)n < sizeof o->msg)
    snprintf(o->msg + n, sizeof o->msg - (size_t)n, fmt, detail);
}

/* See backend_redis.h. */
const void *kr_rop_keep(kr_rop *o, const char *p, size_t len)
{
  if (o->pending == 0)
    return p;
  kr_rcopy *c = malloc(sizeof *c + len + 1);
  if (!c) {
    kr_rop_fail(o, KURA_ENOMEM, "%s", "out of memory");
    return NULL;
  }
  memcpy(c->data, p, len);
  c->data[len] = 0;
  c->next = o->copies;
  o->copies = c;
  return c->data;
}

static void finish_deferred(kr_deferred *d)
{
  finish(KR_DEFERRED_OF(d, kr_rop, deferred));
}

static void cancel_deferred(kr_deferred *d)
{
  kr_rop *o = KR_DEFERRED_OF(d, kr_rop, deferred);
  if (!o->err)
    kr_rop_fail(o, KURA_ECANCELLED, "%s", "the client is closed");
}

/* A request that could not be sent completes from the loop, never from
 * inside submit. */
static void defer(kr_rop *o)
{
  kr_defer_push(&o->b->defer, &o->deferred);
}

/* --- sending ---------------------------------------------------------------------- */

static int send_op(kr_rop *o);

/* Room for n indexed commands; called before the first is sent. */
static int subs_reserve(kr_rop *o, size_t n)
{
  if (n <= sizeof o->sub_inline / sizeof o->sub_inline[0]) {
    o->subs = o->sub_inline;
    o->nsubs = (int)(sizeof o->sub_inline / sizeof o->sub_inline[0]);
    return 0;
  }
  if (n > (size_t)1 << 30 || !(o->subs = malloc(n * sizeof *o->subs)))
    return KURA_ENOMEM;
  o->nsubs = (int)n;
  return 0;
}

/* Send a built command tagged `sub` (NULL: the next index); key_arg is the
 * argument that routes it in a cluster (-1: to the master being scanned).
 * Frees the argv. */
int kr_rop_send(kr_rop *o, kr_rargs *a, int key_arg, kr_rsub *sub)
{
  kr_rbe *b = o->b;
  int rc;
  if (!sub) {
    if (o->nsent >= o->nsubs) {
      kr_rargs_free(a);
      return KURA_EINTERNAL;
    }
    sub = &o->subs[o->nsent];
    sub->o = o;
    sub->i = o->nsent++;
  }
  if (!b->cl)
    rc = kr_resp_command(b->conn, a->n, a->v, a->l, b->timeout_ms, kr_rop_on_reply, sub);
  else if (key_arg >= 0)
    rc = kr_rcl_command(b->cl, a->n, a->v, a->l, key_arg, b->timeout_ms, kr_rop_on_reply, sub);
  else
    rc = kr_rcl_command_master(b->cl, o->node, a->n, a->v, a->l, b->timeout_ms,
                               kr_rop_on_reply, sub);
  kr_rargs_free(a);
  if (rc == 0)
    o->pending++;
  return rc;
}

int kr_rop_send_args(kr_rop *o, kr_rargs *a, int key_arg)
{
  return kr_rop_send(o, a, key_arg, NULL);
}

/* One command on the cache list with the cache name: SISMEMBER, SADD, SREM. */
int kr_rop_send_list_cmd(kr_rop *o, const char *cmd)
{
  kr_rargs a;
  kr_rargs_init(&a, 3, 0); /* inline: cannot fail */
  kr_rargs_add(&a, cmd, strlen(cmd));
  kr_rargs_add(&a, o->b->caches_key, strlen(o->b->caches_key));
  kr_rargs_add(&a, o->req->cache, o->req->cache_len);
  return kr_rop_send_args(o, &a, 1);
}

static void on_shared_check(kr_resp *conn, int status, const redisReply *reply, void *udata);

/* Subscribe to a shared check, as command 0. */
static void chk_join(kr_rchk *k, kr_rop *o)
{
  o->chk_next = NULL;
  *k->tail = o;
  k->tail = &o->chk_next;
  o->nsent = 1;
  o->pending++;
}

/* The check of this cache in the batch being filled, or NULL and in *slot
 * the place for one: a free slot, one of an older batch, else the oldest. */
static kr_rchk *chk_find(kr_rbe *b, const kr_request *r, uint64_t batch, kr_rchk ***slot)
{
  *slot = NULL;
  for (int i = 0; i < KR_RCHK_SLOTS; i++) {
    kr_rchk *k = b->chk[i];
    if (k && k->batch == batch && k->cache_len == r->cache_len &&
        memcmp(k->cache, r->cache, r->cache_len) == 0)
      return k;
    if (!*slot && (!k || k->batch != batch))
      *slot = &b->chk[i];
  }
  if (!*slot)
    *slot = &b->chk[b->chk_victim++ % KR_RCHK_SLOTS];
  return NULL;
}

/* Forget the checks of the batch being filled: a change of the cache list
 * (create_cache, delete_cache) must be checked again by the calls after it. */
void kr_rbe_chk_forget(kr_rbe *b)
{
  memset(b->chk, 0, sizeof b->chk);
}

/* Single server, connected: share the SISMEMBER of this cache that is
 * already in the batch being filled, or send one that later calls of the
 * batch can share. (While not connected, batches can wait a whole connect
 * timeout, longer than a call's deadline: no sharing then.) */
static int send_shared_check(kr_rop *o)
{
  kr_rbe *b = o->b;
  const kr_request *r = o->req;
  uint64_t batch = kr_resp_batch(b->conn);
  kr_rchk **slot, *k = chk_find(b, r, batch, &slot);
  if (k) {
    chk_join(k, o);
    return 0;
  }
  k = malloc(sizeof *k);
  if (!k)
    return KURA_ENOMEM;
  *k = (kr_rchk){.b = b, .cache = r->cache, .cache_len = r->cache_len, .batch = batch};
  k->tail = &k->subs;
  const char *argv[3] = {"SISMEMBER", b->caches_key, r->cache};
  size_t lens[3] = {9, strlen(b->caches_key), r->cache_len};
  int rc = kr_resp_command(b->conn, 3, argv, lens, b->timeout_ms, on_shared_check, k);
  if (rc) {
    free(k);
    return rc;
  }
  chk_join(k, o);
  *slot = k;
  return 0;
}

/* Command 0: is the cache there? */
int kr_rop_send_check(kr_rop *o)
{
  o->checked = 1;
  if (o->b->conn && kr_resp_ready(o->b->conn))
    return send_shared_check(o);
  return kr_rop_send_list_cmd(o, "SISMEMBER");
}

/* cmd key for one key: GET, DEL, EXISTS, PTTL; or with a value, PSETEX key
 * ttl val (SET key val PX ttl with one argument less to parse). */
static int send_key_cmd(kr_rop *o, const char *cmd, const void *key, size_t klen,
                        const void *val, size_t vlen, uint64_t ttl_ms, kr_rsub *sub)
{
  kr_rargs a;
  if (kr_rargs_init(&a, 5, kr_ritem_prefix_len(o->req) + klen + 24))
    return KURA_ENOMEM;
  kr_rargs_add(&a, cmd, strlen(cmd));
  kr_rargs_key(&a, o->req, key, klen);
  if (val) {
    kr_rargs_num(&a, (long long)ttl_ms);
    kr_rargs_add(&a, val, vlen);
  }
  return kr_rop_send(o, &a, 1, sub);
}

/* The keys of the request: its batch (maybe empty), or its one key. The op
 * says which: an empty batch is no single key. */
static size_t req_keys(const kr_request *r, const void *const **keys, const size_t **klens)
{
  if (!is_batch(r)) {
    *keys = &r->key, *klens = &r->klen;
    return 1;
  }
  *keys = r->keys, *klens = r->klens;
  return r->n;
}

/* cmd key per key of the request, each its own command. */
static int send_each(kr_rop *o, const char *cmd)
{
  const void *const *keys;
  const size_t *klens;
  size_t n = req_keys(o->req, &keys, &klens);
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++)
    rc = send_key_cmd(o, cmd, keys[i], klens[i], NULL, 0, 0, NULL);
  return rc;
}

/* See backend_redis.h. */
void kr_rop_compensate(kr_rop *o)
{
  const kr_request *r = o->req;
  const void *const *keys;
  const size_t *klens;
  size_t n = req_keys(r, &keys, &klens);
  for (size_t i = 0; i < n; i++)
    if (send_key_cmd(o, "DEL", keys[i], klens[i], NULL, 0, 0, &o->ignore))
      kr_rop_fail(o, KURA_ECONN, "%s", "could not send DEL");
}

static int batch_arrays(kr_rop *o)
{
  size_t n = o->req->n ? o->req->n : 1;
  if (o->req->op == KR_OP_KEYS_EXIST)
    o->flags = calloc(n, 1);
  else
    o->vals = calloc(n, sizeof *o->vals), o->vlens = calloc(n, sizeof *o->vlens);
  return (o->flags || (o->vals && o->vlens)) ? 0 : KURA_ENOMEM;
}

/* MGET key... (single server). */
static int send_mget(kr_rop *o)
{
  const kr_request *r = o->req;
  size_t bytes = 0;
  for (size_t i = 0; i < r->n; i++)
    bytes += kr_ritem_prefix_len(r) + r->klens[i];
  kr_rargs a;
  if (kr_rargs_init(&a, r->n + 1, bytes))
    return KURA_ENOMEM;
  kr_rargs_add(&a, "MGET", 4);
  for (size_t i = 0; i < r->n; i++)
    kr_rargs_key(&a, r, r->keys[i], r->klens[i]);
  return kr_rop_send_args(o, &a, 1);
}

/* --- cluster: the cache's marker in every slot ----------------------------------- */

/* Key k's pair: EXISTS of the cache's marker in the key's slot (command 2k)
 * and the key's command (2k + 1), which the cluster routes to the one node
 * that holds both, on one connection: one round trip. A set (PSETEX) whose
 * marker turns out missing is undone (compensate). */
static int send_pair(kr_rop *o, const char *cmd, size_t k)
{
  const kr_request *r = o->req;
  const void *const *keys;
  const size_t *klens;
  req_keys(r, &keys, &klens);
  unsigned slot;
  kr_rargs a;
  int rc = kr_ritem_slot(r, keys[k], klens[k], &slot);
  if (rc || (rc = kr_rargs_init(&a, 2, KR_RMARKER_BYTES(r))))
    return rc;
  kr_rargs_add(&a, "EXISTS", 6);
  kr_rargs_slot_marker(&a, o->b->slot_tags, r, slot);
  if ((rc = kr_rop_send_args(o, &a, 1)))
    return rc;
  if (strcmp(cmd, "PSETEX") != 0)
    return send_key_cmd(o, cmd, keys[k], klens[k], NULL, 0, 0, NULL);
  int batch = is_batch(r);
  const void *v = batch ? r->vals[k] : r->val;
  size_t vlen = batch ? r->vlens[k] : r->vlen;
  uint64_t ttl = batch && r->ttls && r->ttls[k] ? r->ttls[k] : r->ttl_ms;
  return send_key_cmd(o, cmd, keys[k], klens[k], v ? v : "", vlen, ttl, NULL);
}

/* A cluster's reads, set and set_batch: one pair per key. An empty batch
 * checks the cache list instead (it has no key, so no slot). */
static int send_pairs(kr_rop *o, const char *cmd)
{
  const kr_request *r = o->req;
  int rc = 0;
  if (is_batch(r) && r->n == 0) {
    o->checked = 1;
    return kr_rop_send_list_cmd(o, "SISMEMBER");
  }
  if ((r->op == KR_OP_KEYS_EXIST || r->op == KR_OP_GET_BATCH) && (rc = batch_arrays(o)))
    return rc;
  o->pairs = 1;
  size_t n = is_batch(r) ? r->n : 1;
  for (size_t k = 0; k < n && !rc; k++)
    rc = send_pair(o, cmd, k);
  return rc;
}

/* A read: SISMEMBER then the command(s), in one pipeline. */
static int send_read(kr_rop *o, const char *cmd)
{
  if (o->b->cl)
    return send_pairs(o, cmd);
  int rc = kr_rop_send_check(o);
  if (rc || o->req->op == KR_OP_KEYS_EXIST || o->req->op == KR_OP_GET_BATCH) {
    if (rc || o->req->n == 0)
      return rc;
    if ((rc = batch_arrays(o)))
      return rc;
    if (o->req->op == KR_OP_GET_BATCH && !o->b->cl)
      return send_mget(o);
  }
  return send_each(o, cmd);
}

/* SISMEMBER then PSETEX (set); in a cluster, a pair per key (set, set_batch). */
static int send_sets(kr_rop *o)
{
  const kr_request *r = o->req;
  if (o->b->cl)
    return send_pairs(o, "PSETEX");
  int rc = kr_rop_send_check(o); /* single server: set only (set_batch is a script) */
  return rc ? rc : send_key_cmd(o, "PSETEX", r->key, r->klen, r->val, r->vlen, r->ttl_ms, NULL);
}

static void on_script_loaded(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  kr_rload *l = udata;
  (void)conn;
  l->busy = 0;
  if (status == 0 && reply->type == REDIS_REPLY_STRING && reply->len < 48) {
    char *sha = l->b->sha[l->s];
    memcpy(sha, reply->str, reply->len);
    sha[reply->len] = 0;
  }
}

/* SCRIPT LOAD, for the SHA that EVALSHA names. In a cluster it goes to one
 * node: the SHA is the same everywhere, and a node that does not know the
 * script answers NOSCRIPT, upon which the call goes again as EVAL (which
 * teaches it the script). */
static void load_script(kr_rbe *b, int s)
{
  kr_rload *l = &b->loading[s];
  if (l->busy || b->closing)
    return;
  const char *argv[3] = {"SCRIPT", "LOAD", kr_redis_scripts[b->cl != NULL][s]};
  l->b = b, l->s = s;
  int rc = b->cl ? kr_rcl_command_any(b->cl, 3, argv, NULL, 0, on_script_loaded, l)
                 : kr_resp_command(b->conn, 3, argv, NULL, 0, on_script_loaded, l);
  l->busy = rc == 0;
}

/* EVALSHA sha nkeys+1 <check key> (EVAL while the SHA is not known yet, or
 * after NOSCRIPT). The check key, KEYS[1], is the cache list on a single
 * server, and the cache's marker in the item key's slot in a cluster (all
 * of a script's keys must be in one slot there). `a` has room for 4 more
 * arguments and KR_RMARKER_BYTES. */
int kr_rop_script_head(kr_rop *o, kr_rargs *a, int s, int nkeys)
{
  kr_rbe *b = o->b;
  const char *body = kr_redis_scripts[b->cl != NULL][s];
  if (o->eval || !b->sha[s][0]) {
    kr_rargs_add(a, "EVAL", 4);
    kr_rargs_add(a, body, strlen(body));
    if (!b->sha[s][0])
      load_script(b, s);
  } else {
    kr_rargs_add(a, "EVALSHA", 7);
    kr_rargs_add(a, b->sha[s], strlen(b->sha[s]));
  }
  kr_rargs_num(a, nkeys + 1);
  if (!b->cl) {
    kr_rargs_add(a, b->caches_key, strlen(b->caches_key));
    return 0;
  }
  unsigned slot;
  int rc = kr_ritem_slot(o->req, o->req->key, o->req->klen, &slot);
  if (!rc)
    kr_rargs_slot_marker(a, b->slot_tags, o->req, slot);
  return rc;
}

/* The conditional sets, increment and the TTL changes: one script that
 * checks the cache and acts, atomically, on one node. */
static int script_single(kr_rop *o, int s)
{
  const kr_request *r = o->req;
  kr_rargs a;
  int rc = kr_rargs_init(&a, 12, KR_RMARKER_BYTES(r) + kr_ritem_prefix_len(r) + r->klen + 4 * 24);
  if (rc || (rc = kr_rop_script_head(o, &a, s, 1))) {
    kr_rargs_free(&a);
    return rc;
  }
  kr_rargs_key(&a, r, r->key, r->klen);
  kr_rargs_add(&a, r->cache, r->cache_len);
  switch (r->op) {
  case KR_OP_SET_IF:
    kr_rargs_add(&a, r->val, r->vlen);
    kr_rargs_num(&a, (long long)r->ttl_ms);
    kr_rargs_num(&a, (long long)r->cond);
    kr_rargs_add(&a, r->cmp ? r->cmp : "", r->cmplen);
    break;
  case KR_OP_INCREMENT:
    kr_rargs_num(&a, (long long)r->amount);
    kr_rargs_num(&a, (long long)r->ttl_ms);
    break;
  default: /* KR_OP_TTL_SET */
    kr_rargs_num(&a, (long long)r->ttl_ms);
    kr_rargs_num(&a, (long long)r->ttl_mode);
    break;
  }
  return kr_rop_send_args(o, &a, 3);
}

/* set_batch: one script on a single server, SISMEMBER + SETs in a cluster. */
static int send_set_batch(kr_rop *o)
{
  const kr_request *r = o->req;
  if (o->b->cl)
    return send_sets(o);
  size_t bytes = 24 + r->n * (kr_ritem_prefix_len(r) + 24);
  for (size_t i = 0; i < r->n; i++)
    bytes += r->klens[i];
  kr_rargs a;
  if (kr_rargs_init(&a, 5 + 3 * r->n, bytes))
    return KURA_ENOMEM;
  kr_rop_script_head(o, &a, KR_RS_SET_BATCH, (int)r->n); /* single server: cannot fail */
  for (size_t i = 0; i < r->n; i++)
    kr_rargs_key(&a, r, r->keys[i], r->klens[i]);
  kr_rargs_add(&a, r->cache, r->cache_len);
  for (size_t i = 0; i < r->n; i++) {
    kr_rargs_add(&a, r->vals[i], r->vlens[i]);
    kr_rargs_num(&a, (long long)(r->ttls && r->ttls[i] ? r->ttls[i] : r->ttl_ms));
  }
  return kr_rop_send_args(o, &a, 3);
}

static int send_get(kr_rop *o)
{
  const kr_request *r = o->req;
  kr_rargs a;
  if (kr_rargs_init(&a, 3, 7 + r->cache_len + kr_ritem_prefix_len(r) + r->klen))
    return KURA_ENOMEM;
  kr_rargs_add(&a, "MGET", 4);
  kr_rargs_cache_marker(&a, r);
  kr_rargs_key(&a, r, r->key, r->klen);
  return kr_rop_send_args(o, &a, 1);
}

static int send_op(kr_rop *o)
{
  switch (o->req->op) {
  case KR_OP_GET: return o->b->cl ? send_read(o, "GET") : send_get(o);
  case KR_OP_DELETE: return send_read(o, "DEL");
  case KR_OP_KEY_EXISTS: return send_read(o, "EXISTS");
  case KR_OP_KEYS_EXIST: return send_read(o, "EXISTS");
  case KR_OP_GET_BATCH: return send_read(o, "GET");
  case KR_OP_TTL_GET: return send_read(o, "PTTL");
  case KR_OP_SET: return send_sets(o);
  case KR_OP_SET_IF: return script_single(o, KR_RS_SET_IF);
  case KR_OP_INCREMENT: return script_single(o, KR_RS_INCR);
  case KR_OP_TTL_SET: return script_single(o, KR_RS_TTL_SET);
  case KR_OP_SET_BATCH: return send_set_batch(o);
  case KR_OP_CREATE_CACHE:
  case KR_OP_DELETE_CACHE:
  case KR_OP_FLUSH_CACHE:
  case KR_OP_LIST_CACHES: return kr_rop_send_cache_op(o);
  default: return KURA_EUNSUPPORTED;
  }
}

static void on_error_reply(kr_rop *o, const redisReply *reply)
{
  int err = kr_redis_map_error(reply->str);
  if (err == KURA_ENOTFOUND) {
    o->notfound = 1;
  } else if (err == KURA_EPRECOND) {
    kr_rop_fail(o, err, "%s", "the value is not an integer, or the result is outside int64");
  } else {
    kr_rop_fail(o, err, "redis: %s", reply->str);
  }
}

/* --- replies (their values: backend_redis_reply.c) ------------------------------- */

/* Reply `i` of request `o` (see kr_rop_on_reply). */
static void op_reply(kr_rop *o, int i, kr_resp *conn, int status, const redisReply *reply)
{
  o->pending--;
  if (i == KR_RI_MARKS) { /* a master's markers: on failure, the slow way */
    o->ran |= status == 0 && reply->type != REDIS_REPLY_ERROR;
    o->marks_redo |= status < 0 || reply->type == REDIS_REPLY_ERROR;
  } else if (i == KR_RI_IGNORE) {
    /* a compensating DEL: nothing to report */
  } else if (status < 0) {
    /* conn is NULL when the cluster router failed it unsent (and says why) */
    o->ran |= conn && !kr_resp_unsent(conn);
    kr_rop_fail(o, status, "redis: %s",
            status == KURA_ECONN && conn && conn->errstr[0] ? conn->errstr
            : status == KURA_ECONN && !conn && o->b->cl ? kr_rcl_errstr(o->b->cl)
            : status == KURA_ETIMEOUT ? "no reply within the timeout"
                                      : kura_strerror(status));
  } else if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
             !o->eval && !o->b->closing) {
    o->eval = 1; /* the script did not run: send it in full */
    o->nsent = 0;
    int rc = send_op(o);
    if (rc)
      kr_rop_send_failed(o, rc);
  } else if (reply->type == REDIS_REPLY_ERROR) {
    on_error_reply(o, reply); /* refused: it did not run */
  } else {
    o->ran = 1;
    if (i == KR_RI_SCAN)
      kr_rop_on_scan(o, reply);
    else if (i != KR_RI_MARK && !o->err && (!o->notfound || (o->checked && i == 0)))
      kr_rop_on_value(o, i, reply); /* (a written marker is counted below) */
  }
  if ((i == KR_RI_MARK || i == KR_RI_MARKS) && --o->marks_left == 0)
    kr_rop_marks_done(o);
  if (o->pending == 0)
    finish(o); /* reply (and what res points into) is still valid here */
}

void kr_rop_on_reply(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  kr_rsub *s = udata;
  op_reply(s->o, s->i, conn, status, reply);
}

/* A shared check answered (or failed): command 0 of every subscriber. None
 * of them can have completed before (each counts the check as pending), and
 * none completes before its own commands' replies unless they all failed;
 * a completing one may submit new calls, which find the slot cleared. */
static void on_shared_check(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  kr_rchk *k = udata;
  kr_rop *o = k->subs;
  for (int i = 0; i < KR_RCHK_SLOTS; i++)
    if (k->b->chk[i] == k)
      k->b->chk[i] = NULL;
  free(k);
  while (o) {
    kr_rop *next = o->chk_next;
    op_reply(o, 0, conn, status, reply);
    o = next;
  }
}

static void redis_submit(void *state, const kr_request *req, kr_client_cb cb, void *udata)
{
  kr_rbe *b = state;
  kr_rop *o = op_new(b);
  if (!o) {
    kr_result res = {.err = KURA_ENOMEM, .msg = "out of memory"};
    cb(udata, req, &res); /* nothing else can be done without memory */
    return;
  }
  memset(o, 0, offsetof(kr_rop, cursor));
  o->b = b;
  o->req = req;
  o->cb = cb;
  o->udata = udata;
  memcpy(o->cursor, "0", 2);
  o->msg[0] = 0;
  o->scan = (kr_rsub){o, KR_RI_SCAN};
  o->ignore = (kr_rsub){o, KR_RI_IGNORE};
  o->mark = (kr_rsub){o, KR_RI_MARK};
  o->marks = (kr_rsub){o, KR_RI_MARKS};
  /* list_caches returns C strings: a name with a NUL byte could not come back. */
  if (req->op == KR_OP_CREATE_CACHE && memchr(req->cache, 0, req->cache_len)) {
    kr_rop_fail(o, KURA_EINVAL, "%s", "a cache name with a NUL byte is not supported by redis");
    defer(o);
    return;
  }
  /* indexed commands: a check and one per key (a pair per key in a
   * cluster), and room for a later SREM */
  int rc = subs_reserve(o, (b->cl ? 2 : 1) * (req->n ? req->n : 1) + 2);
  if (!rc)
    rc = send_op(o);
  if (rc)
    kr_rop_send_failed(o, rc);
  if (o->pending == 0)
    defer(o);
}

/* A command that could not be sent: it did not run. The cluster router
 * says why (a node known to be down, no slot map). */
void kr_rop_send_failed(kr_rop *o, int rc)
{
  kr_rop_fail(o, rc, "%s", o->b->cl && kr_rcl_errstr(o->b->cl)[0] ? kr_rcl_errstr(o->b->cl)
                                                             : kura_strerror(rc));
}

/* --- life cycle -------------------------------------------------------------------- */

static void maybe_closed(kr_rbe *b)
{
  if (b->conn_closed && b->defer_closed) {
    kr_client *c = b->client;
    spares_free(b);
    free(b->slot_tags);
    free(b);
    kr_client_backend_closed(c);
  }
}

static void on_conn_closed(kr_resp *conn, void *udata)
{
  kr_rbe *b = udata;
  b->conn_closed = 1;
  maybe_closed(b);
}

static void on_cluster_closed(void *udata)
{
  on_conn_closed(NULL, udata);
}

static void on_defer_closed(void *ud)
{
  kr_rbe *b = ud;
  b->defer_closed = 1;
  maybe_closed(b);
}

static void redis_close(void *state)
{
  kr_rbe *b = state;
  if (b->closing)
    return;
  b->closing = 1;
  kr_defer_close(&b->defer, cancel_deferred, on_defer_closed, b);
  if (b->cl)
    kr_rcl_close(b->cl, on_cluster_closed, b);
  else
    kr_resp_close(b->conn, on_conn_closed, b);
}

static kr_rbe *rbe_new(kr_client *c)
{
  kr_rbe *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->client = c;
  b->timeout_ms = kr_client_timeout_ms(c);
  return b;
}

static void rbe_started(kr_rbe *b, void **state)
{
  kr_defer_init(&b->defer, kr_client_loop(b->client), finish_deferred);
  *state = b;
}

static kr_resp_opts resp_opts(const kr_rurl *u, size_t i, uint64_t timeout_ms)
{
  return (kr_resp_opts){.host = u->host[i], .port = u->port[i], .db = u->db,
                        .user = u->has_user ? u->user : NULL,
                        .password = u->has_pass ? u->pass : NULL,
                        .connect_timeout_ms = timeout_ms, .timeout_ms = timeout_ms};
}

static int redis_open(kr_client *c, const kr_client_config *cfg, void **state)
{
  kr_rurl u;
  if (!cfg->backend || strncmp(cfg->backend, "redis://", 8) || kr_rurl_parse(cfg->backend, &u))
    return kr_client_fail(c, KURA_EINVAL,
                          "bad redis URL (expected redis://[user:password@]host:port[/db])");
  kr_rbe *b = rbe_new(c);
  if (!b)
    return kr_client_fail(c, KURA_ENOMEM, "out of memory");
  b->caches_key = "kura:caches";
  kr_resp_opts o = resp_opts(&u, 0, b->timeout_ms);
  int rc = kr_resp_open(kr_client_loop(c), &o, &b->conn);
  memset(u.pass, 0, sizeof u.pass);
  if (rc) {
    free(b);
    return kr_client_fail(c, rc, "redis: cannot open a connection to %s:%d", u.host[0], u.port[0]);
  }
  b->conn->data = b;
  rbe_started(b, state);
  for (int s = 0; s < KR_RS_COUNT_; s++)
    load_script(b, s);
  return 0;
}

static int cluster_open(kr_client *c, const kr_client_config *cfg, void **state)
{
  kr_rurl u;
  if (!cfg->backend || kr_rurl_parse(cfg->backend, &u) || u.db)
    return kr_client_fail(c, KURA_EINVAL, "bad redis-cluster URL (expected "
                          "redis-cluster://[user:password@]host:port[,host:port]...)");
  kr_rbe *b = rbe_new(c);
  if (!b)
    return kr_client_fail(c, KURA_ENOMEM, "out of memory");
  b->caches_key = "kura:{caches}";
  kr_resp_opts o[KR_RURL_MAX_NODES];
  for (size_t i = 0; i < u.nhosts; i++)
    o[i] = resp_opts(&u, i, b->timeout_ms);
  int rc = kr_rslot_tags_build(&b->slot_tags);
  if (!rc)
    rc = kr_rcl_open(kr_client_loop(c), o, u.nhosts, &b->cl);
  memset(u.pass, 0, sizeof u.pass);
  if (rc) {
    free(b->slot_tags);
    free(b);
    return kr_client_fail(c, rc, "redis-cluster: cannot open connections");
  }
  rbe_started(b, state);
  return 0;
}

/* The URL's form, its password wiped from the stack. */
static int check_spec(const char *spec)
{
  kr_rurl u;
  int rc = kr_rurl_parse(spec, &u);
  kr_wipe(u.pass, sizeof u.pass);
  return rc ? KURA_EINVAL : 0;
}

const kr_backend_ops kr_backend_redis_ops = {
  .name = "redis",
  .supports = KR_OPS_ALL,
  .flags = 0,
  .open = redis_open,
  .submit = redis_submit,
  .close = redis_close,
  .check_spec = check_spec,
  .usage = "redis://[[user]:password@]host[:port][/db] (a port is 1-65535, db a number)",
};

const kr_backend_ops kr_backend_redis_cluster_ops = {
  .name = "redis-cluster",
  .supports = KR_OPS_ALL,
  .flags = 0,
  .open = cluster_open,
  .submit = redis_submit,
  .close = redis_close,
  .check_spec = check_spec,
  .usage = "redis-cluster://[[user]:password@]host[:port][,host[:port]]... (a port is 1-65535)",
};
