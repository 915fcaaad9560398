/* The Redis backends: every call of LUA_API.md on one Redis server
 * (redis://) or on a Redis Cluster (redis-cluster://, routed by
 * backend_redis_cluster.c), over the auto-pipelining connections of resp.c.
 * The layout in Redis, the cache check, what is guaranteed and what is
 * relaxed: backend_redis.h.
 *
 * A request (rop) sends one or more commands, each tagged with its index
 * (replies are matched to it whatever node answers first), and completes
 * when the last reply has come. Command 0 is the cache check when the
 * request sends one (`checked`); in a cluster's pairs, 2k is key k's check
 * and 2k + 1 its command.
 *
 * Shared checks (single server, struct rchk). The calls of one write batch
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
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend_redis.h"
#include "core/client.h"

#define SCAN_COUNT "512"
#define CHK_SLOTS 4 /* caches whose checks one write batch can share */

typedef struct rop rop;
typedef struct rchk rchk;

/* A SCRIPT LOAD on its way: which script of which backend. */
typedef struct rload {
  struct rbe *b;
  int s;
  int busy;
} rload;

typedef struct rbe {
  kr_client *client;
  kr_resp *conn;            /* single server, or NULL */
  kr_rcl *cl;               /* cluster, or NULL */
  const char *caches_key;   /* the cache list */
  uint64_t timeout_ms;
  char sha[KR_RS_COUNT_][48];   /* "" until SCRIPT LOAD answered */
  rload loading[KR_RS_COUNT_];  /* a SCRIPT LOAD is on its way */
  char *slot_tags;          /* cluster: the marker's hash tag of each slot */
  uv_timer_t defer;         /* completes requests that failed in submit */
  rop *deferred;            /* their list */
  rchk *chk[CHK_SLOTS];     /* recent shared checks, NULL when answered */
  unsigned chk_victim;      /* the slot to reuse when none is free */
  int closing, conn_closed, defer_closed;
} rbe;

/* The tag of one command of a request: its index (0 is the cache check when
 * the request sends one; in a cluster's pairs, 2k is key k's check and
 * 2k + 1 its command), or one of these. */
enum { I_SCAN = -1, I_IGNORE = -2, I_MARK = -3 };
typedef struct rsub {
  rop *o;
  int i;
} rsub;

/* Single server: one SISMEMBER shared by the requests that check the same
 * cache within one write batch (kr_resp_batch). Redis runs the commands of
 * a connection in order, so it still runs before the commands of each of
 * them. Freed when its reply (or failure) has been handed to all of them. */
struct rchk {
  rbe *b;
  const char *cache;        /* the first subscriber's name: that request */
  size_t cache_len;         /* cannot complete before this check does */
  uint64_t batch;           /* kr_resp_batch when sent */
  rop *subs, **tail;        /* the subscribers, linked by rop.chk_next */
};

/* A value copied out of a reply that is freed before the request completes. */
typedef struct rcopy {
  struct rcopy *next;
  char data[];
} rcopy;

/* One request in flight: the commands it sent and what came back so far. */
struct rop {
  rop *next;                /* in rbe.deferred */
  rop *chk_next;            /* in rchk.subs */
  rbe *b;
  const kr_request *req;    /* the client's copy: valid until we complete */
  kr_client_cb cb;
  void *udata;
  int pending;              /* commands sent whose reply has not come */
  int nsent;                /* tagged commands sent (indexes given) */
  int nsubs;                /* room in subs */
  int checked;              /* command 0 is SISMEMBER on the cache list
                               (maybe shared: then pending counts it too) */
  int pairs;                /* cluster: each key's command follows the check
                               of its slot's marker (see send_pair) */
  int err;
  int notfound;
  int compensated;          /* the compensating DELs are sent */
  int ran;                  /* a command answered, or failed after it was
                               written: something may have run */
  int eval;                 /* scripts go as EVAL (NOSCRIPT seen) */
  size_t marks_left;        /* cluster create/delete_cache: marker writes
                               not answered yet */
  size_t node;              /* cluster scan: the master being scanned */
  kr_result res;
  uint8_t *flags;           /* keys_exist */
  const void **vals;        /* get_batch */
  size_t *vlens;
  rcopy *copies;            /* values kept past their reply */
  rsub *subs;               /* tags of the indexed commands */
  rsub sub_inline[4];        /* a single key's commands, in a cluster too */
  rsub scan, ignore, mark;  /* tags of SCAN/UNLINK, compensating DELs and
                               the markers of a cluster's create/delete_cache */
  /* Not zeroed on allocation (most calls never use them): */
  char cursor[32];          /* flush/delete scan */
  char msg[200];
};

/* --- completion --------------------------------------------------------------- */

static void op_free(rop *o)
{
  while (o->copies) {
    rcopy *c = o->copies;
    o->copies = c->next;
    free(c);
  }
  if (o->subs != o->sub_inline)
    free(o->subs);
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
  res.unapplied = res.err && !o->ran;
  o->cb(o->udata, o->req, &res);
  op_free(o);
}

static void set_err(rop *o, int err, const char *fmt, const char *detail)
{
  if (o->err)
    return;
  o->err = err;
  const kr_request *r = o->req;
  char k[64];
  kr_format_key(k, sizeof k, r->key, r->klen);
  int n = snprintf(o->msg, sizeof o->msg, "%s of ", kr_op_name(r->op));
  if (r->op < KR_OP_CREATE_CACHE && !r->n && n > 0 && (size_t)n < sizeof o->msg)
    n += snprintf(o->msg + n, sizeof o->msg - (size_t)n, "key '%s' in ", k);
  if (r->op != KR_OP_LIST_CACHES && n > 0 && (size_t)n < sizeof o->msg)
    n += snprintf(o->msg + n, sizeof o->msg - (size_t)n, "cache '%.*s': ",
                  (int)(r->cache_len < 64 ? r->cache_len : 64), r->cache ? r->cache : "");
  else if (n > 1 && (size_t)n < sizeof o->msg)
    o->msg[n - 1] = ':', o->msg[n++] = ' ', o->msg[n] = 0; /* "list_caches: " */
  if (n > 0 && (size_t)n < sizeof o->msg)
    snprintf(o->msg + n, sizeof o->msg - (size_t)n, fmt, detail);
}

/* A pointer to `len` bytes of a reply that stays valid until the request
 * completes: the reply itself when it is the last one awaited, else a copy. */
static const void *keep(rop *o, const char *p, size_t len)
{
  if (o->pending == 0)
    return p;
  rcopy *c = malloc(sizeof *c + len + 1);
  if (!c) {
    set_err(o, KURA_ENOMEM, "%s", "out of memory");
    return NULL;
  }
  memcpy(c->data, p, len);
  c->data[len] = 0;
  c->next = o->copies;
  o->copies = c;
  return c->data;
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

/* --- sending ---------------------------------------------------------------------- */

static void on_reply(kr_resp *conn, int status, const redisReply *reply, void *udata);
static int send_op(rop *o);

/* Room for n indexed commands; called before the first is sent. */
static int subs_reserve(rop *o, size_t n)
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
static int send_tagged(rop *o, kr_rargs *a, int key_arg, rsub *sub)
{
  rbe *b = o->b;
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
    rc = kr_resp_command(b->conn, a->n, a->v, a->l, b->timeout_ms, on_reply, sub);
  else if (key_arg >= 0)
    rc = kr_rcl_command(b->cl, a->n, a->v, a->l, key_arg, b->timeout_ms, on_reply, sub);
  else
    rc = kr_rcl_command_master(b->cl, o->node, a->n, a->v, a->l, b->timeout_ms, on_reply, sub);
  kr_rargs_free(a);
  if (rc == 0)
    o->pending++;
  return rc;
}

static int send_args(rop *o, kr_rargs *a, int key_arg)
{
  return send_tagged(o, a, key_arg, NULL);
}

/* One command on the cache list with the cache name: SISMEMBER, SADD, SREM. */
static int send_cache_cmd(rop *o, const char *cmd)
{
  kr_rargs a;
  kr_rargs_init(&a, 3, 0); /* inline: cannot fail */
  kr_rargs_add(&a, cmd, strlen(cmd));
  kr_rargs_add(&a, o->b->caches_key, strlen(o->b->caches_key));
  kr_rargs_add(&a, o->req->cache, o->req->cache_len);
  return send_args(o, &a, 1);
}

static void on_shared_check(kr_resp *conn, int status, const redisReply *reply, void *udata);

/* Subscribe to a shared check, as command 0. */
static void chk_join(rchk *k, rop *o)
{
  o->chk_next = NULL;
  *k->tail = o;
  k->tail = &o->chk_next;
  o->nsent = 1;
  o->pending++;
}

/* The check of this cache in the batch being filled, or NULL and in *slot
 * the place for one: a free slot, one of an older batch, else the oldest. */
static rchk *chk_find(rbe *b, const kr_request *r, uint64_t batch, rchk ***slot)
{
  *slot = NULL;
  for (int i = 0; i < CHK_SLOTS; i++) {
    rchk *k = b->chk[i];
    if (k && k->batch == batch && k->cache_len == r->cache_len &&
        memcmp(k->cache, r->cache, r->cache_len) == 0)
      return k;
    if (!*slot && (!k || k->batch != batch))
      *slot = &b->chk[i];
  }
  if (!*slot)
    *slot = &b->chk[b->chk_victim++ % CHK_SLOTS];
  return NULL;
}

/* Forget the checks of the batch being filled: a change of the cache list
 * (create_cache, delete_cache) must be checked again by the calls after it. */
static void chk_forget(rbe *b)
{
  memset(b->chk, 0, sizeof b->chk);
}

/* Single server, connected: share the SISMEMBER of this cache that is
 * already in the batch being filled, or send one that later calls of the
 * batch can share. (While not connected, batches can wait a whole connect
 * timeout, longer than a call's deadline: no sharing then.) */
static int send_shared_check(rop *o)
{
  rbe *b = o->b;
  const kr_request *r = o->req;
  uint64_t batch = kr_resp_batch(b->conn);
  rchk **slot, *k = chk_find(b, r, batch, &slot);
  if (k) {
    chk_join(k, o);
    return 0;
  }
  k = malloc(sizeof *k);
  if (!k)
    return KURA_ENOMEM;
  *k = (rchk){.b = b, .cache = r->cache, .cache_len = r->cache_len, .batch = batch};
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
static int send_check(rop *o)
{
  o->checked = 1;
  if (o->b->conn && kr_resp_ready(o->b->conn))
    return send_shared_check(o);
  return send_cache_cmd(o, "SISMEMBER");
}

/* cmd key for one key: GET, DEL, EXISTS, PTTL; or with a value, PSETEX key
 * ttl val (SET key val PX ttl with one argument less to parse). */
static int send_key_cmd(rop *o, const char *cmd, const void *key, size_t klen,
                        const void *val, size_t vlen, uint64_t ttl_ms, rsub *sub)
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
  return send_tagged(o, &a, 1, sub);
}

/* The keys of the request: its batch, or its one key. */
static size_t req_keys(const kr_request *r, const void *const **keys, const size_t **klens)
{
  *keys = r->n ? r->keys : &r->key;
  *klens = r->n ? r->klens : &r->klen;
  return r->n ? r->n : 1;
}

/* cmd key per key of the request, each its own command. */
static int send_each(rop *o, const char *cmd)
{
  const void *const *keys;
  const size_t *klens;
  size_t n = req_keys(o->req, &keys, &klens);
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++)
    rc = send_key_cmd(o, cmd, keys[i], klens[i], NULL, 0, 0, NULL);
  return rc;
}

/* The cache turned out missing after a write was sent: delete what the write
 * may have created, on the connection it went to, before completing. */
static void compensate(rop *o)
{
  const kr_request *r = o->req;
  const void *const *keys;
  const size_t *klens;
  size_t n = req_keys(r, &keys, &klens);
  for (size_t i = 0; i < n; i++)
    if (send_key_cmd(o, "DEL", keys[i], klens[i], NULL, 0, 0, &o->ignore))
      set_err(o, KURA_ECONN, "%s", "could not send DEL");
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

/* MGET key... (single server). */
static int send_mget(rop *o)
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
  return send_args(o, &a, 1);
}

/* --- cluster: the cache's marker in every slot ----------------------------------- */

/* "kura:m:{TAG}<cache>": the marker of r's cache in `slot` (TAG: the
 * slot's three letters or digits, rbe.slot_tags); MARKER_BYTES of the
 * argument block. */
#define TAG_LEN 3
#define MARKER_BYTES(r) (9 + TAG_LEN + (r)->cache_len)
static void args_slot_marker(kr_rargs *a, const rbe *b, const kr_request *r, unsigned slot)
{
  char *p = a->at;
  memcpy(p, "kura:m:{", 8);
  memcpy(p + 8, b->slot_tags + TAG_LEN * slot, TAG_LEN);
  p[8 + TAG_LEN] = '}';
  memcpy(p + 9 + TAG_LEN, r->cache, r->cache_len);
  kr_rargs_add(a, p, MARKER_BYTES(r));
  a->at += MARKER_BYTES(r);
}

/* For each slot, three letters or digits whose CRC16 lands in it, so that
 * a marker "kura:m:{TAG}..." lives in that slot (and reads well in
 * redis-cli). The 238,328 strings of three such characters cover every
 * slot; the search stops once all are found. CRC16 by table here: one
 * table lookup per byte instead of eight shifts. */
static int build_slot_tags(rbe *b)
{
  static const char al[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint16_t crc[256];
  for (unsigned i = 0; i < 256; i++) {
    unsigned c = i << 8;
    for (int k = 0; k < 8; k++)
      c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    crc[i] = (uint16_t)c;
  }
  if (!(b->slot_tags = malloc(TAG_LEN * KR_REDIS_SLOTS)))
    return KURA_ENOMEM;
  memset(b->slot_tags, 0, TAG_LEN * KR_REDIS_SLOTS);
  unsigned found = 0, n = sizeof al - 1;
  for (unsigned v = 0; v < n * n * n && found < KR_REDIS_SLOTS; v++) {
    char t[TAG_LEN] = {al[v / (n * n)], al[v / n % n], al[v % n]};
    unsigned c = 0;
    for (int k = 0; k < TAG_LEN; k++)
      c = ((c << 8) ^ crc[((c >> 8) ^ (unsigned char)t[k]) & 0xff]) & 0xffff;
    char *at = b->slot_tags + TAG_LEN * (c % KR_REDIS_SLOTS);
    if (!at[0])
      memcpy(at, t, TAG_LEN), found++;
  }
  return found == KR_REDIS_SLOTS ? 0 : KURA_EINTERNAL;
}

/* The slot of r's item key for `key`. */
static int item_slot(const kr_request *r, const void *key, size_t klen, unsigned *slot)
{
  kr_rargs a;
  if (kr_rargs_init(&a, 1, kr_ritem_prefix_len(r) + klen))
    return KURA_ENOMEM;
  kr_rargs_key(&a, r, key, klen);
  *slot = kr_redis_slot(a.v[0], a.l[0]);
  kr_rargs_free(&a);
  return 0;
}

/* Key k's pair: EXISTS of the cache's marker in the key's slot (command 2k)
 * and the key's command (2k + 1), which the cluster routes to the one node
 * that holds both, on one connection: one round trip. A set (PSETEX) whose
 * marker turns out missing is undone (compensate). */
static int send_pair(rop *o, const char *cmd, size_t k)
{
  const kr_request *r = o->req;
  const void *const *keys;
  const size_t *klens;
  req_keys(r, &keys, &klens);
  unsigned slot;
  kr_rargs a;
  int rc = item_slot(r, keys[k], klens[k], &slot);
  if (rc || (rc = kr_rargs_init(&a, 2, MARKER_BYTES(r))))
    return rc;
  kr_rargs_add(&a, "EXISTS", 6);
  args_slot_marker(&a, o->b, r, slot);
  if ((rc = send_args(o, &a, 1)))
    return rc;
  if (strcmp(cmd, "PSETEX") != 0)
    return send_key_cmd(o, cmd, keys[k], klens[k], NULL, 0, 0, NULL);
  const void *v = r->n ? r->vals[k] : r->val;
  size_t vlen = r->n ? r->vlens[k] : r->vlen;
  uint64_t ttl = r->n && r->ttls && r->ttls[k] ? r->ttls[k] : r->ttl_ms;
  return send_key_cmd(o, cmd, keys[k], klens[k], v ? v : "", vlen, ttl, NULL);
}

/* A cluster's reads, set and set_batch: one pair per key. An empty batch
 * checks the cache list instead (it has no key, so no slot). */
static int send_pairs(rop *o, const char *cmd)
{
  const kr_request *r = o->req;
  int batch = r->op == KR_OP_KEYS_EXIST || r->op == KR_OP_GET_BATCH || r->op == KR_OP_SET_BATCH;
  int rc = 0;
  if (batch && r->n == 0) {
    o->checked = 1;
    return send_cache_cmd(o, "SISMEMBER");
  }
  if ((r->op == KR_OP_KEYS_EXIST || r->op == KR_OP_GET_BATCH) && (rc = batch_arrays(o)))
    return rc;
  o->pairs = 1;
  for (size_t k = 0; k < (r->n ? r->n : 1) && !rc; k++)
    rc = send_pair(o, cmd, k);
  return rc;
}

static void send_failed(rop *o, int rc);

/* SET (create_cache) or DEL (delete_cache) the cache's marker in every slot,
 * each to the node that holds it. A bounded burst of 16,384 commands: a
 * cache management call, not an item call. */
static void send_markers(rop *o, const char *cmd)
{
  int set = strcmp(cmd, "SET") == 0;
  for (unsigned slot = 0; slot < KR_REDIS_SLOTS && !o->err; slot++) {
    kr_rargs a;
    int rc = kr_rargs_init(&a, 3, MARKER_BYTES(o->req));
    if (!rc) {
      kr_rargs_add(&a, cmd, strlen(cmd));
      args_slot_marker(&a, o->b, o->req, slot);
      if (set)
        kr_rargs_add(&a, "1", 1);
      rc = send_tagged(o, &a, 1, &o->mark);
    }
    if (rc)
      send_failed(o, rc);
    else
      o->marks_left++;
  }
}

/* Every marker write answered: delete_cache goes on with SREM (command 1),
 * then the scan. */
static void marks_done(rop *o)
{
  if (!o->err && o->req->op == KR_OP_DELETE_CACHE) {
    int rc = send_cache_cmd(o, "SREM");
    if (rc)
      send_failed(o, rc);
  }
}

/* A read: SISMEMBER then the command(s), in one pipeline. */
static int send_read(rop *o, const char *cmd)
{
  if (o->b->cl)
    return send_pairs(o, cmd);
  int rc = send_check(o);
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

/* SISMEMBER then PSETEX per key (set); in a cluster, pairs (set, set_batch). */
static int send_sets(rop *o)
{
  const kr_request *r = o->req;
  if (o->b->cl)
    return send_pairs(o, "PSETEX");
  int rc = send_check(o);
  if (!r->n)
    return rc ? rc : send_key_cmd(o, "PSETEX", r->key, r->klen, r->val, r->vlen, r->ttl_ms, NULL);
  for (size_t i = 0; i < r->n && !rc; i++)
    rc = send_key_cmd(o, "PSETEX", r->keys[i], r->klens[i], r->vals[i], r->vlens[i],
                      r->ttls && r->ttls[i] ? r->ttls[i] : r->ttl_ms, NULL);
  return rc;
}

static void on_script_loaded(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  rload *l = udata;
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
static void load_script(rbe *b, int s)
{
  rload *l = &b->loading[s];
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
 * arguments and MARKER_BYTES. */
static int script_head(rop *o, kr_rargs *a, int s, int nkeys)
{
  rbe *b = o->b;
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
  int rc = item_slot(o->req, o->req->key, o->req->klen, &slot);
  if (!rc)
    args_slot_marker(a, b, o->req, slot);
  return rc;
}

/* The conditional sets, increment and the TTL changes: one script that
 * checks the cache and acts, atomically, on one node. */
static int script_single(rop *o, int s)
{
  const kr_request *r = o->req;
  kr_rargs a;
  int rc = kr_rargs_init(&a, 12, MARKER_BYTES(r) + kr_ritem_prefix_len(r) + r->klen + 4 * 24);
  if (rc || (rc = script_head(o, &a, s, 1))) {
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
  return send_args(o, &a, 3);
}

/* set_batch: one script on a single server, SISMEMBER + SETs in a cluster. */
static int send_set_batch(rop *o)
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
  script_head(o, &a, KR_RS_SET_BATCH, (int)r->n); /* single server: cannot fail */
  for (size_t i = 0; i < r->n; i++)
    kr_rargs_key(&a, r, r->keys[i], r->klens[i]);
  kr_rargs_add(&a, r->cache, r->cache_len);
  for (size_t i = 0; i < r->n; i++) {
    kr_rargs_add(&a, r->vals[i], r->vlens[i]);
    kr_rargs_num(&a, (long long)(r->ttls && r->ttls[i] ? r->ttls[i] : r->ttl_ms));
  }
  return send_args(o, &a, 3);
}

/* Single server: "kura:c:<cache>", a key that exists while the cache does,
 * so that a get is one command, MGET marker item (no item key starts with
 * "kura:c:": item keys go on with the name's length). */
static void args_marker(kr_rargs *a, const kr_request *r)
{
  memcpy(a->at, "kura:c:", 7);
  memcpy(a->at + 7, r->cache, r->cache_len);
  kr_rargs_add(a, a->at, 7 + r->cache_len);
  a->at += 7 + r->cache_len;
}

static int send_get(rop *o)
{
  const kr_request *r = o->req;
  kr_rargs a;
  if (kr_rargs_init(&a, 3, 7 + r->cache_len + kr_ritem_prefix_len(r) + r->klen))
    return KURA_ENOMEM;
  kr_rargs_add(&a, "MGET", 4);
  args_marker(&a, r);
  kr_rargs_key(&a, r, r->key, r->klen);
  return send_args(o, &a, 1);
}

/* create_cache, delete_cache on a single server: the list and the marker. */
static int script_marker(rop *o, int s)
{
  const kr_request *r = o->req;
  kr_rargs a;
  if (kr_rargs_init(&a, 6, 7 + r->cache_len + 24))
    return KURA_ENOMEM;
  script_head(o, &a, s, 1); /* single server: cannot fail */
  args_marker(&a, r);
  kr_rargs_add(&a, r->cache, r->cache_len);
  return send_args(o, &a, 3);
}

static int send_op(rop *o)
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
  case KR_OP_CREATE_CACHE: /* cluster: SADD, then the markers */
    if (o->b->cl)
      return send_cache_cmd(o, "SADD");
    chk_forget(o->b);
    return script_marker(o, KR_RS_CREATE);
  case KR_OP_DELETE_CACHE: /* cluster: SISMEMBER, the markers, SREM, the scan */
    if (o->b->cl)
      return send_cache_cmd(o, "SISMEMBER");
    chk_forget(o->b);
    return script_marker(o, KR_RS_DROP);
  case KR_OP_FLUSH_CACHE: return send_check(o);
  case KR_OP_LIST_CACHES: {
    kr_rargs a;
    kr_rargs_init(&a, 2, 0);
    kr_rargs_add(&a, "SMEMBERS", 8);
    kr_rargs_add(&a, o->b->caches_key, strlen(o->b->caches_key));
    return send_args(o, &a, 1);
  }
  default: return KURA_EUNSUPPORTED;
  }
}
static void on_error_reply(rop *o, const redisReply *reply)
{
  int err = kr_redis_map_error(reply->str);
  if (err == KURA_ENOTFOUND) {
    o->notfound = 1;
  } else if (err == KURA_EPRECOND) {
    set_err(o, err, "%s", "the value is not an integer, or the result is outside int64");
  } else {
    set_err(o, err, "redis: %s", reply->str);
  }
}

/* --- delete_cache / flush_cache: SCAN + UNLINK ------------------------------------ */

/* SCAN cursor MATCH kura:<len>:<cache>:* (glob characters of the name
 * escaped) to the master being scanned. */
static void scan_next(rop *o)
{
  const kr_request *r = o->req;
  kr_rargs a;
  if (o->err)
    return;
  if (kr_rargs_init(&a, 6, kr_ritem_prefix_len(r) + r->cache_len + 2)) {
    set_err(o, KURA_ENOMEM, "%s", "out of memory");
    return;
  }
  char *p = a.at;
  memcpy(p, "kura:", 5);
  size_t n = 5 + kr_rput_uint(p + 5, r->cache_len);
  p[n++] = ':';
  for (size_t i = 0; i < r->cache_len; i++) {
    char ch = r->cache[i];
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
      p[n++] = '\\';
    p[n++] = ch;
  }
  p[n++] = ':';
  p[n++] = '*';
  kr_rargs_add(&a, "SCAN", 4);
  kr_rargs_add(&a, o->cursor, strlen(o->cursor));
  kr_rargs_add(&a, "MATCH", 5);
  kr_rargs_add(&a, p, n);
  kr_rargs_add(&a, "COUNT", 5);
  kr_rargs_add(&a, SCAN_COUNT, strlen(SCAN_COUNT));
  if (send_tagged(o, &a, -1, &o->scan))
    set_err(o, KURA_ECONN, "%s", "could not send SCAN");
}

/* The first SCAN, after the cache check (flush) or SREM (delete). */
static void scan_start(rop *o)
{
  o->res.outcome = KR_HIT;
  o->node = 0;
  if (o->b->cl && kr_rcl_masters(o->b->cl) == 0) {
    set_err(o, KURA_EUNAVAIL, "%s", "the cluster's slot map is not known");
    return;
  }
  scan_next(o);
}

/* UNLINK the keys a SCAN found: one command on a single server, one per key
 * in a cluster (the keys of one node may lie in several slots). */
static int unlink_keys(rop *o, const redisReply *keys)
{
  size_t per = o->b->cl ? 1 : keys->elements;
  for (size_t at = 0; at < keys->elements; at += per) {
    kr_rargs a;
    if (kr_rargs_init(&a, per + 1, 0))
      return KURA_ENOMEM;
    kr_rargs_add(&a, "UNLINK", 6);
    for (size_t i = at; i < at + per; i++)
      kr_rargs_add(&a, keys->element[i]->str, keys->element[i]->len);
    int rc = send_tagged(o, &a, 1, &o->scan);
    if (rc)
      return rc;
  }
  return 0;
}

/* A SCAN reply [cursor, keys]: UNLINK the keys, continue from the cursor,
 * then with the next master. UNLINK replies (integers) need nothing. */
static void on_scan(rop *o, const redisReply *r)
{
  if (r->type == REDIS_REPLY_INTEGER)
    return;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !r->element[1] ||
      r->element[1]->type != REDIS_REPLY_ARRAY) {
    set_err(o, KURA_EINTERNAL, "%s", "unexpected SCAN reply");
    return;
  }
  if (unlink_keys(o, r->element[1]))
    set_err(o, KURA_ECONN, "%s", "could not send UNLINK");
  snprintf(o->cursor, sizeof o->cursor, "%.*s", (int)r->element[0]->len, r->element[0]->str);
  if (strcmp(o->cursor, "0") == 0) {
    if (!o->b->cl || ++o->node >= kr_rcl_masters(o->b->cl))
      return;
  }
  scan_next(o);
}

/* --- replies ------------------------------------------------------------------------ */

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

/* A value of get_batch: the MGET array (k = -1) or the GET of key k. */
static void on_batch_value(rop *o, long k, const redisReply *r)
{
  o->res.count = o->req->n;
  o->res.vals = o->vals;
  o->res.vlens = o->vlens;
  if (k < 0) {
    for (size_t i = 0; i < o->req->n && i < r->elements; i++)
      on_batch_value(o, (long)i, r->element[i]);
    return;
  }
  if (r->type == REDIS_REPLY_STRING && (size_t)k < o->req->n) {
    o->vals[k] = keep(o, r->str, r->len);
    o->vlens[k] = r->len;
  }
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

/* The cache is missing: the call fails with NOT_FOUND_ERROR, and a plain
 * set sent beside the check is undone first (once). */
static void cache_missing(rop *o)
{
  o->notfound = 1;
  if ((o->req->op == KR_OP_SET || o->req->op == KR_OP_SET_BATCH) && !o->compensated) {
    o->compensated = 1;
    compensate(o);
  }
}

/* The reply to SISMEMBER (command 0 of a checked request), or to EXISTS of
 * a marker (pairs). */
static void on_check(rop *o, const redisReply *r)
{
  if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
    cache_missing(o);
  else if (o->req->op == KR_OP_FLUSH_CACHE && !o->notfound)
    scan_start(o);
}

/* A cluster's create_cache (SADD, then the markers) and delete_cache
 * (SISMEMBER, then the markers, then SREM and the scan). */
static void on_cache_step(rop *o, int i, long long x)
{
  if (o->req->op == KR_OP_CREATE_CACHE) {
    o->res.outcome = x > 0 ? KR_HIT : KR_SKIPPED;
    send_markers(o, "SET");
  } else if (i == 0) {
    if (x == 0)
      o->notfound = 1;
    else
      send_markers(o, "DEL");
  } else {
    o->notfound = x == 0; /* another client's delete_cache came first */
    if (x > 0)
      scan_start(o);
  }
}

/* Reply `i` of the request: k = i - checked is the data index. */
static void on_value(rop *o, int i, const redisReply *r)
{
  const kr_request *q = o->req;
  long long x = r->integer;
  if ((o->checked && i == 0) || (o->pairs && i % 2 == 0)) {
    on_check(o, r);
    return;
  }
  int k = o->pairs ? i / 2 : i - o->checked;
  if (o->b->cl && (q->op == KR_OP_CREATE_CACHE || q->op == KR_OP_DELETE_CACHE)) {
    on_cache_step(o, i, x);
    return;
  }
  switch (q->op) {
  case KR_OP_GET:
    if (r->type == REDIS_REPLY_ARRAY) { /* MGET marker item */
      if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
        o->notfound = 1;
        return;
      }
      r = r->element[1];
    }
    o->res.outcome = r->type == REDIS_REPLY_STRING ? KR_HIT : KR_MISS;
    o->res.vlen = r->type == REDIS_REPLY_STRING ? r->len : 0;
    o->res.val = r->type == REDIS_REPLY_STRING ? keep(o, r->str, r->len) : NULL;
    break;
  case KR_OP_DELETE:
  case KR_OP_KEY_EXISTS:
    o->res.outcome = x > 0 ? KR_HIT : KR_MISS;
    break;
  case KR_OP_KEYS_EXIST:
    if ((size_t)k < q->n)
      o->flags[k] = x > 0;
    o->res.flags = o->flags;
    o->res.count = q->n;
    break;
  case KR_OP_GET_BATCH:
    on_batch_value(o, o->b->cl ? k : -1, r);
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
    o->notfound = x == 0;
    if (x > 0)
      scan_start(o);
    break;
  case KR_OP_LIST_CACHES:
    on_list(o, r);
    break;
  default:
    break;
  }
}

/* Reply `i` of request `o` (see on_reply). */
static void op_reply(rop *o, int i, kr_resp *conn, int status, const redisReply *reply)
{
  o->pending--;
  if (i == I_IGNORE) {
    /* a compensating DEL: nothing to report */
  } else if (status < 0) {
    /* conn is NULL when the cluster router failed it unsent */
    o->ran |= conn && !kr_resp_unsent(conn);
    set_err(o, status, "redis: %s",
            status == KURA_ECONN && conn && conn->errstr[0] ? conn->errstr
            : status == KURA_ETIMEOUT ? "no reply within the timeout"
                                      : kura_strerror(status));
  } else if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
             !o->eval && !o->b->closing) {
    o->eval = 1; /* the script did not run: send it in full */
    o->nsent = 0;
    int rc = send_op(o);
    if (rc)
      send_failed(o, rc);
  } else if (reply->type == REDIS_REPLY_ERROR) {
    on_error_reply(o, reply); /* refused: it did not run */
  } else {
    o->ran = 1;
    if (i == I_SCAN)
      on_scan(o, reply);
    else if (i != I_MARK && !o->err && (!o->notfound || (o->checked && i == 0)))
      on_value(o, i, reply); /* (a written marker is counted below) */
  }
  if (i == I_MARK && --o->marks_left == 0)
    marks_done(o);
  if (o->pending == 0)
    finish(o); /* reply (and what res points into) is still valid here */
}

static void on_reply(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  rsub *s = udata;
  op_reply(s->o, s->i, conn, status, reply);
}

/* A shared check answered (or failed): command 0 of every subscriber. None
 * of them can have completed before (each counts the check as pending), and
 * none completes before its own commands' replies unless they all failed;
 * a completing one may submit new calls, which find the slot cleared. */
static void on_shared_check(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  rchk *k = udata;
  rop *o = k->subs;
  for (int i = 0; i < CHK_SLOTS; i++)
    if (k->b->chk[i] == k)
      k->b->chk[i] = NULL;
  free(k);
  while (o) {
    rop *next = o->chk_next;
    op_reply(o, 0, conn, status, reply);
    o = next;
  }
}

static void redis_submit(void *state, const kr_request *req, kr_client_cb cb, void *udata)
{
  rbe *b = state;
  rop *o = malloc(sizeof *o);
  if (!o) {
    kr_result res = {.err = KURA_ENOMEM, .msg = "out of memory"};
    cb(udata, req, &res); /* nothing else can be done without memory */
    return;
  }
  memset(o, 0, offsetof(rop, cursor));
  o->b = b;
  o->req = req;
  o->cb = cb;
  o->udata = udata;
  memcpy(o->cursor, "0", 2);
  o->msg[0] = 0;
  o->scan = (rsub){o, I_SCAN};
  o->ignore = (rsub){o, I_IGNORE};
  o->mark = (rsub){o, I_MARK};
  /* list_caches returns C strings: a name with a NUL byte could not come back. */
  if (req->op == KR_OP_CREATE_CACHE && memchr(req->cache, 0, req->cache_len)) {
    set_err(o, KURA_EINVAL, "%s", "a cache name with a NUL byte is not supported by redis");
    defer(o);
    return;
  }
  /* indexed commands: a check and one per key (a pair per key in a
   * cluster), and room for a later SREM */
  int rc = subs_reserve(o, (b->cl ? 2 : 1) * (req->n ? req->n : 1) + 2);
  if (!rc)
    rc = send_op(o);
  if (rc)
    send_failed(o, rc);
  if (o->pending == 0)
    defer(o);
}

/* A command that could not be sent: it did not run. The cluster router
 * says why (a node known to be down, no slot map). */
static void send_failed(rop *o, int rc)
{
  set_err(o, rc, "%s", o->b->cl && kr_rcl_errstr(o->b->cl)[0] ? kr_rcl_errstr(o->b->cl)
                                                             : kura_strerror(rc));
}

/* --- life cycle -------------------------------------------------------------------- */

static void maybe_closed(rbe *b)
{
  if (b->conn_closed && b->defer_closed) {
    kr_client *c = b->client;
    free(b->slot_tags);
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

static void on_cluster_closed(void *udata)
{
  on_conn_closed(NULL, udata);
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
  if (b->cl)
    kr_rcl_close(b->cl, on_cluster_closed, b);
  else
    kr_resp_close(b->conn, on_conn_closed, b);
}

static rbe *rbe_new(kr_client *c)
{
  rbe *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->client = c;
  b->timeout_ms = kr_client_timeout_ms(c);
  return b;
}

static void rbe_started(rbe *b, void **state)
{
  uv_timer_init(kr_client_loop(b->client), &b->defer);
  b->defer.data = b;
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
  rbe *b = rbe_new(c);
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
  rbe *b = rbe_new(c);
  if (!b)
    return kr_client_fail(c, KURA_ENOMEM, "out of memory");
  b->caches_key = "kura:{caches}";
  kr_resp_opts o[KR_RURL_MAX_NODES];
  for (size_t i = 0; i < u.nhosts; i++)
    o[i] = resp_opts(&u, i, b->timeout_ms);
  int rc = build_slot_tags(b);
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

const kr_backend_ops kr_backend_redis_ops = {
  .name = "redis",
  .flags = 0,
  .open = redis_open,
  .submit = redis_submit,
  .close = redis_close,
};

const kr_backend_ops kr_backend_redis_cluster_ops = {
  .name = "redis-cluster",
  .flags = 0,
  .open = cluster_open,
  .submit = redis_submit,
  .close = redis_close,
};
