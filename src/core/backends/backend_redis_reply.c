/* What the Redis backends make of a reply that is not an error: the value,
 * outcome, counts or flags of the call's result (kr_rop_on_value), the
 * cache check's answer, and the follow-ups a reply sets going (the
 * compensating DEL of a set whose cache is missing, the scan of a
 * delete_cache or flush_cache). Sending, errors and completion are in
 * backend_redis.c; the layout in Redis: backend_redis.h.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/backends/backend_redis.h"

/* A value of get_batch: the MGET array (k = -1) or the GET of key k. */
static void on_batch_value(kr_rop *o, long k, const redisReply *r)
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
    o->vals[k] = kr_rop_keep(o, r->str, r->len);
    o->vlens[k] = r->len;
  }
}

static void on_increment(kr_rop *o, const redisReply *r)
{
  char buf[32];
  snprintf(buf, sizeof buf, "%.*s", (int)(r->len < 31 ? r->len : 31), r->str ? r->str : "");
  o->res.integer = strtoll(buf, NULL, 10);
  o->res.outcome = KURA_HIT;
}

static int outcome3(long long x)
{
  return x > 0 ? KURA_HIT : x == 0 ? KURA_SKIPPED : KURA_MISS;
}

/* The cache is missing: the call fails with NOT_FOUND_ERROR, and a plain
 * set sent beside the check is undone first (once). */
static void cache_missing(kr_rop *o)
{
  o->notfound = 1;
  if ((o->req->op == KR_OP_SET || o->req->op == KR_OP_SET_BATCH) && !o->compensated) {
    o->compensated = 1;
    kr_rop_compensate(o);
  }
}

/* The reply to SISMEMBER (command 0 of a checked request), or to EXISTS of
 * a marker (pairs). */
static void on_check(kr_rop *o, const redisReply *r)
{
  if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
    cache_missing(o);
  else if (o->req->op == KR_OP_FLUSH_CACHE && !o->notfound)
    kr_rop_scan_start(o);
}

/* See backend_redis.h. */
void kr_rop_on_value(kr_rop *o, int i, const redisReply *r)
{
  const kr_request *q = o->req;
  long long x = r->integer;
  if ((o->checked && i == 0) || (o->pairs && i % 2 == 0)) {
    on_check(o, r);
    return;
  }
  int k = o->pairs ? i / 2 : i - o->checked;
  if (o->b->cl && (q->op == KR_OP_CREATE_CACHE || q->op == KR_OP_DELETE_CACHE)) {
    kr_rop_on_cache_step(o, i, x);
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
    o->res.outcome = r->type == REDIS_REPLY_STRING ? KURA_HIT : KURA_MISS;
    o->res.vlen = r->type == REDIS_REPLY_STRING ? r->len : 0;
    o->res.val = r->type == REDIS_REPLY_STRING ? kr_rop_keep(o, r->str, r->len) : NULL;
    break;
  case KR_OP_DELETE:
  case KR_OP_KEY_EXISTS:
    o->res.outcome = x > 0 ? KURA_HIT : KURA_MISS;
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
    o->res.outcome = x == -2 ? KURA_MISS : KURA_HIT;
    o->res.ttl_ms = x == -1 ? UINT64_MAX : x >= 0 ? (uint64_t)x : 0;
    break;
  case KR_OP_SET:
  case KR_OP_SET_BATCH:
    o->res.outcome = KURA_HIT;
    break;
  case KR_OP_SET_IF:
  case KR_OP_TTL_SET:
    o->res.outcome = outcome3(x);
    break;
  case KR_OP_INCREMENT:
    on_increment(o, r);
    break;
  case KR_OP_CREATE_CACHE:
    o->res.outcome = x > 0 ? KURA_HIT : KURA_SKIPPED;
    break;
  case KR_OP_DELETE_CACHE:
    o->notfound = x == 0;
    if (x > 0)
      kr_rop_scan_start(o);
    break;
  case KR_OP_LIST_CACHES:
    kr_rop_on_list(o, r);
    break;
  default:
    break;
  }
}
