/* Momento's gRPC services in kura serve (serve.h): a call's request message
 * becomes a kr_request, the client's result becomes the response message,
 * an error becomes the status Momento's servers answer it with.
 *
 * Framing as gRPC over HTTP/2 has it: a POST to /package.Service/Method
 * with content-type application/grpc[+proto] and one length-prefixed
 * message (1 byte "compressed" flag, 4 bytes big-endian length); the answer
 * is HEADERS, the length-prefixed response messages (one, or one per item
 * for GetBatch and SetBatch, which stream), and the status in trailers; an
 * error is a "trailers-only" answer (grpc-status in the only HEADERS).
 * Compressed messages are refused (UNIMPLEMENTED): the SDKs send none
 * unless configured to.
 *
 * The request checks, in order: method known (UNIMPLEMENTED), authorization
 * (UNAUTHENTICATED), calls in flight (RESOURCE_EXHAUSTED), sizes
 * (RESOURCE_EXHAUSTED), framing and protobuf (INTERNAL, as gRPC servers
 * answer an undecodable message), grpc-timeout, the `cache` metadata of
 * data-plane calls and the fields (INVALID_ARGUMENT: a TTL of 0, no
 * condition), then the client's own validation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cacheclient.pb-c.h"
#include "controlclient.pb-c.h"
#include "core/serve/serve_int.h"
#include "kura_client.h"

enum {
  M_GET, M_SET, M_DELETE, M_SET_IF, M_KEYS_EXIST, M_INCREMENT, M_UPDATE_TTL,
  M_ITEM_GET_TTL, M_GET_BATCH, M_SET_BATCH, M_CREATE_CACHE, M_DELETE_CACHE,
  M_FLUSH_CACHE, M_LIST_CACHES, M_COUNT
};

#define STATUS_OK 0
#define STATUS_CANCELLED 1
#define STATUS_UNKNOWN 2
#define STATUS_INVALID_ARGUMENT 3
#define STATUS_DEADLINE_EXCEEDED 4
#define STATUS_NOT_FOUND 5
#define STATUS_ALREADY_EXISTS 6
#define STATUS_PERMISSION_DENIED 7
#define STATUS_RESOURCE_EXHAUSTED 8
#define STATUS_FAILED_PRECONDITION 9
#define STATUS_OUT_OF_RANGE 11
#define STATUS_UNIMPLEMENTED 12
#define STATUS_INTERNAL 13
#define STATUS_UNAVAILABLE 14
#define STATUS_UNAUTHENTICATED 16

static const struct method {
  const char *path;
  const ProtobufCMessageDescriptor *desc;
  int data_plane; /* the cache comes from the `cache` metadata */
} methods[M_COUNT] = {
  [M_GET] = {"/cache_client.Scs/Get", &cache_client____get_request__descriptor, 1},
  [M_SET] = {"/cache_client.Scs/Set", &cache_client____set_request__descriptor, 1},
  [M_DELETE] = {"/cache_client.Scs/Delete", &cache_client____delete_request__descriptor, 1},
  [M_SET_IF] = {"/cache_client.Scs/SetIf", &cache_client____set_if_request__descriptor, 1},
  [M_KEYS_EXIST] = {"/cache_client.Scs/KeysExist",
                    &cache_client____keys_exist_request__descriptor, 1},
  [M_INCREMENT] = {"/cache_client.Scs/Increment",
                   &cache_client____increment_request__descriptor, 1},
  [M_UPDATE_TTL] = {"/cache_client.Scs/UpdateTtl",
                    &cache_client____update_ttl_request__descriptor, 1},
  [M_ITEM_GET_TTL] = {"/cache_client.Scs/ItemGetTtl",
                      &cache_client____item_get_ttl_request__descriptor, 1},
  [M_GET_BATCH] = {"/cache_client.Scs/GetBatch",
                   &cache_client____get_batch_request__descriptor, 1},
  [M_SET_BATCH] = {"/cache_client.Scs/SetBatch",
                   &cache_client____set_batch_request__descriptor, 1},
  [M_CREATE_CACHE] = {"/control_client.ScsControl/CreateCache",
                      &control_client____create_cache_request__descriptor, 0},
  [M_DELETE_CACHE] = {"/control_client.ScsControl/DeleteCache",
                      &control_client____delete_cache_request__descriptor, 0},
  [M_FLUSH_CACHE] = {"/control_client.ScsControl/FlushCache",
                     &control_client____flush_cache_request__descriptor, 0},
  [M_LIST_CACHES] = {"/control_client.ScsControl/ListCaches",
                     &control_client____list_caches_request__descriptor, 0},
};

/* --- answers -------------------------------------------------------------------- */

static const kr_h2s_header ok_headers[] = {{"content-type", 12, "application/grpc", 16}};
static const kr_h2s_header ok_trailers[] = {{"grpc-status", 11, "0", 1}};

int kr_serve_grpc_status(int err)
{
  switch (err) {
  case 0: return STATUS_OK;
  case KURA_EINVAL: return STATUS_INVALID_ARGUMENT;
  case KURA_ENOTFOUND: return STATUS_NOT_FOUND;
  case KURA_EEXIST: return STATUS_ALREADY_EXISTS;
  case KURA_EPRECOND: return STATUS_FAILED_PRECONDITION;
  case KURA_ELIMIT:
  case KURA_ENOMEM: return STATUS_RESOURCE_EXHAUSTED;
  case KURA_ETIMEOUT: return STATUS_DEADLINE_EXCEEDED;
  case KURA_ECONN:
  case KURA_EUNAVAIL: return STATUS_UNAVAILABLE;
  case KURA_EAUTH: return STATUS_UNAUTHENTICATED;
  case KURA_EPERM: return STATUS_PERMISSION_DENIED;
  case KURA_ECANCELLED: return STATUS_CANCELLED;
  case KURA_EBADREQ: return STATUS_OUT_OF_RANGE; /* the SDKs: BAD_REQUEST_ERROR */
  case KURA_EINTERNAL: return STATUS_INTERNAL;
  case KURA_EUNSUPPORTED: return STATUS_UNIMPLEMENTED;
  default: return STATUS_UNKNOWN;
  }
}

/* grpc-message: percent-encoded outside printable ASCII, and '%' itself. */
static size_t encode_message(const char *msg, char *out, size_t cap)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)msg; *p && n + 4 < cap; p++) {
    if (*p >= 0x20 && *p < 0x7f && *p != '%') {
      out[n++] = (char)*p;
    } else {
      out[n++] = '%';
      out[n++] = hex[*p >> 4];
      out[n++] = hex[*p & 15];
    }
  }
  out[n] = '\0';
  return n;
}

/* A trailers-only answer: the status in the one HEADERS frame. */
static void fail_response(kr_h2s_response *res, kr_h2s_header h[3], char *st, char *enc,
                          size_t cap, int status, const char *msg)
{
  int sl = snprintf(st, 4, "%d", status);
  size_t ml = encode_message(msg ? msg : "", enc, cap);
  h[0] = ok_headers[0];
  h[1] = (kr_h2s_header){"grpc-status", 11, st, (size_t)sl};
  h[2] = (kr_h2s_header){"grpc-message", 12, enc, ml};
  *res = (kr_h2s_response){.status = 200, .headers = h, .nheaders = ml ? 3 : 2};
}

void kr_serve_grpc_fail(kr_serve_call *call, int status, const char *msg)
{
  kr_h2s_header h[3];
  char st[4], enc[1024];
  kr_h2s_response res;
  fail_response(&res, h, st, enc, sizeof enc, status, msg);
  call->s->stats.errors++;
  kr_serve_respond(call, &res);
}

/* Without a call (out of memory for one). */
static void fail_bare(kr_h2s_req *req, int status, const char *msg)
{
  kr_h2s_header h[3];
  char st[4], enc[256];
  kr_h2s_response res;
  fail_response(&res, h, st, enc, sizeof enc, status, msg);
  kr_h2s_respond(req, &res);
}

/* Answers OK with the n messages, each length-prefixed. */
static void send_msgs(kr_serve_call *call, const ProtobufCMessage *const *ms, size_t n)
{
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += 5 + protobuf_c_message_get_packed_size(ms[i]);
  uint8_t *body = malloc(total ? total : 1), *p = body;
  if (!body) {
    kr_serve_grpc_fail(call, STATUS_RESOURCE_EXHAUSTED, "kura serve: out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    size_t len = protobuf_c_message_pack(ms[i], p + 5);
    p[0] = 0;
    p[1] = (uint8_t)(len >> 24), p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8), p[4] = (uint8_t)len;
    p += 5 + len;
  }
  kr_h2s_response res = {.status = 200, .headers = ok_headers, .nheaders = 1, .body = body,
                         .body_len = total, .trailers = ok_trailers, .ntrailers = 1,
                         .static_trailers = 1};
  kr_serve_respond(call, &res);
}

static void send_one(kr_serve_call *call, const ProtobufCMessage *m)
{
  send_msgs(call, &m, 1);
}

static ProtobufCBinaryData bin(const void *p, size_t len)
{
  ProtobufCBinaryData d = {len, (uint8_t *)(uintptr_t)p}; /* only read by pack */
  return d;
}

/* Get's answer: a hit with val, or a miss (val NULL). */
static void send_get(kr_serve_call *call, const void *val, size_t vlen)
{
  CacheClient__GetResponse m = CACHE_CLIENT____GET_RESPONSE__INIT;
  m.result = val ? CACHE_CLIENT__ECACHE_RESULT__Hit : CACHE_CLIENT__ECACHE_RESULT__Miss;
  if (val)
    m.cache_body = bin(val, vlen);
  send_one(call, &m.base);
}

static void send_get_batch(kr_serve_call *call, const kr_result *res)
{
  size_t n = res->count;
  CacheClient__GetResponse *ms = malloc((n ? n : 1) * sizeof *ms);
  const ProtobufCMessage **ps = malloc((n ? n : 1) * sizeof *ps);
  if (!ms || !ps) {
    free(ms), free(ps);
    kr_serve_grpc_fail(call, STATUS_RESOURCE_EXHAUSTED, "kura serve: out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    CacheClient__GetResponse g = CACHE_CLIENT____GET_RESPONSE__INIT;
    g.result = res->vals[i] ? CACHE_CLIENT__ECACHE_RESULT__Hit : CACHE_CLIENT__ECACHE_RESULT__Miss;
    if (res->vals[i])
      g.cache_body = bin(res->vals[i], res->vlens[i]);
    ms[i] = g, ps[i] = &ms[i].base;
  }
  send_msgs(call, ps, n);
  free(ms), free(ps);
}

static void send_set_batch(kr_serve_call *call, size_t n)
{
  CacheClient__SetResponse ok = CACHE_CLIENT____SET_RESPONSE__INIT;
  ok.result = CACHE_CLIENT__ECACHE_RESULT__Ok;
  const ProtobufCMessage **ps = malloc((n ? n : 1) * sizeof *ps);
  if (!ps) {
    kr_serve_grpc_fail(call, STATUS_RESOURCE_EXHAUSTED, "kura serve: out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++)
    ps[i] = &ok.base;
  send_msgs(call, ps, n);
  free(ps);
}

static void send_keys_exist(kr_serve_call *call, const kr_result *res)
{
  CacheClient__KeysExistResponse m = CACHE_CLIENT____KEYS_EXIST_RESPONSE__INIT;
  protobuf_c_boolean *ex = malloc((res->count ? res->count : 1) * sizeof *ex);
  if (!ex) {
    kr_serve_grpc_fail(call, STATUS_RESOURCE_EXHAUSTED, "kura serve: out of memory");
    return;
  }
  for (size_t i = 0; i < res->count; i++)
    ex[i] = res->flags[i] ? 1 : 0;
  m.n_exists = res->count, m.exists = ex;
  send_one(call, &m.base);
  free(ex);
}

static void send_list(kr_serve_call *call, const kr_result *res)
{
  size_t n = res->count;
  ControlClient__Cache *cs = malloc((n ? n : 1) * sizeof *cs);
  ControlClient__Cache **ps = malloc((n ? n : 1) * sizeof *ps);
  if (!cs || !ps) {
    free(cs), free(ps);
    kr_serve_grpc_fail(call, STATUS_RESOURCE_EXHAUSTED, "kura serve: out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    ControlClient__Cache c = CONTROL_CLIENT____CACHE__INIT;
    c.cache_name = (char *)(uintptr_t)res->names[i];
    cs[i] = c, ps[i] = &cs[i];
  }
  ControlClient__ListCachesResponse m = CONTROL_CLIENT____LIST_CACHES_RESPONSE__INIT;
  m.n_cache = n, m.cache = ps, m.next_token = "";
  send_one(call, &m.base);
  free(cs), free(ps);
}

static void send_set_if(kr_serve_call *call, int stored)
{
  CacheClient__SetIfResponse m = CACHE_CLIENT____SET_IF_RESPONSE__INIT;
  CacheClient__SetIfResponse__Stored st = CACHE_CLIENT____SET_IF_RESPONSE____STORED__INIT;
  CacheClient__SetIfResponse__NotStored ns = CACHE_CLIENT____SET_IF_RESPONSE____NOT_STORED__INIT;
  if (stored)
    m.result_case = CACHE_CLIENT____SET_IF_RESPONSE__RESULT_STORED, m.stored = &st;
  else
    m.result_case = CACHE_CLIENT____SET_IF_RESPONSE__RESULT_NOT_STORED, m.not_stored = &ns;
  send_one(call, &m.base);
}

static void send_update_ttl(kr_serve_call *call, int outcome)
{
  CacheClient__UpdateTtlResponse m = CACHE_CLIENT____UPDATE_TTL_RESPONSE__INIT;
  CacheClient__UpdateTtlResponse__Set set = CACHE_CLIENT____UPDATE_TTL_RESPONSE____SET__INIT;
  CacheClient__UpdateTtlResponse__NotSet ns = CACHE_CLIENT____UPDATE_TTL_RESPONSE____NOT_SET__INIT;
  CacheClient__UpdateTtlResponse__Missing mi = CACHE_CLIENT____UPDATE_TTL_RESPONSE____MISSING__INIT;
  if (outcome == KURA_HIT)
    m.result_case = CACHE_CLIENT____UPDATE_TTL_RESPONSE__RESULT_SET, m.set = &set;
  else if (outcome == KURA_SKIPPED)
    m.result_case = CACHE_CLIENT____UPDATE_TTL_RESPONSE__RESULT_NOT_SET, m.not_set = &ns;
  else
    m.result_case = CACHE_CLIENT____UPDATE_TTL_RESPONSE__RESULT_MISSING, m.missing = &mi;
  send_one(call, &m.base);
}

static void send_item_ttl(kr_serve_call *call, const kr_result *res)
{
  CacheClient__ItemGetTtlResponse m = CACHE_CLIENT____ITEM_GET_TTL_RESPONSE__INIT;
  CacheClient__ItemGetTtlResponse__Found f = CACHE_CLIENT____ITEM_GET_TTL_RESPONSE____FOUND__INIT;
  CacheClient__ItemGetTtlResponse__Missing mi = CACHE_CLIENT____ITEM_GET_TTL_RESPONSE____MISSING__INIT;
  if (res->outcome == KURA_HIT) {
    f.remaining_ttl_millis = res->ttl_ms;
    m.result_case = CACHE_CLIENT____ITEM_GET_TTL_RESPONSE__RESULT_FOUND, m.found = &f;
  } else {
    m.result_case = CACHE_CLIENT____ITEM_GET_TTL_RESPONSE__RESULT_MISSING, m.missing = &mi;
  }
  send_one(call, &m.base);
}

/* The answers with no fields, or one. */
static void send_simple(kr_serve_call *call, const kr_result *res)
{
  CacheClient__SetResponse set = CACHE_CLIENT____SET_RESPONSE__INIT;
  CacheClient__DeleteResponse del = CACHE_CLIENT____DELETE_RESPONSE__INIT;
  CacheClient__IncrementResponse inc = CACHE_CLIENT____INCREMENT_RESPONSE__INIT;
  ControlClient__CreateCacheResponse cc = CONTROL_CLIENT____CREATE_CACHE_RESPONSE__INIT;
  ControlClient__DeleteCacheResponse dc = CONTROL_CLIENT____DELETE_CACHE_RESPONSE__INIT;
  ControlClient__FlushCacheResponse fc = CONTROL_CLIENT____FLUSH_CACHE_RESPONSE__INIT;
  set.result = CACHE_CLIENT__ECACHE_RESULT__Ok;
  inc.value = res->integer;
  switch (call->method) {
  case M_SET: send_one(call, &set.base); break;
  case M_DELETE: send_one(call, &del.base); break;
  case M_INCREMENT: send_one(call, &inc.base); break;
  case M_CREATE_CACHE: send_one(call, &cc.base); break;
  case M_DELETE_CACHE: send_one(call, &dc.base); break;
  default: send_one(call, &fc.base); break;
  }
}

static void grpc_error(kr_serve_call *call, int err, const char *msg)
{
  kr_serve_grpc_fail(call, kr_serve_grpc_status(err), msg && *msg ? msg : kura_strerror(err));
}

static void grpc_value(kr_serve_call *call, const void *val, size_t vlen)
{
  send_get(call, val, vlen);
}

static void grpc_result(kr_serve_call *call, const kr_request *req, const kr_result *res)
{
  if (res->err) {
    grpc_error(call, res->err, res->msg);
    return;
  }
  switch (call->method) {
  case M_GET:
    if (res->outcome == KURA_HIT)
      send_get(call, res->vlen ? res->val : "", res->vlen);
    else if (call->s->on_miss)
      kr_serve_miss_join(call, req->cache, req->cache_len, req->key, req->klen);
    else
      send_get(call, NULL, 0);
    break;
  case M_SET_IF: send_set_if(call, res->outcome == KURA_HIT); break;
  case M_KEYS_EXIST: send_keys_exist(call, res); break;
  case M_UPDATE_TTL: send_update_ttl(call, res->outcome); break;
  case M_ITEM_GET_TTL: send_item_ttl(call, res); break;
  case M_GET_BATCH: send_get_batch(call, res); break;
  case M_SET_BATCH: send_set_batch(call, req->n); break;
  case M_LIST_CACHES: send_list(call, res); break;
  case M_CREATE_CACHE:
    if (res->outcome == KURA_SKIPPED) {
      char msg[320];
      snprintf(msg, sizeof msg, "cache '%.*s' already exists",
               (int)(req->cache_len < 255 ? req->cache_len : 255), req->cache);
      kr_serve_grpc_fail(call, STATUS_ALREADY_EXISTS, msg);
      break;
    }
    /* fall through */
  default: send_simple(call, res); break;
  }
}

static const kr_serve_kind grpc_kind = {grpc_result, grpc_value, grpc_error};

/* --- requests ------------------------------------------------------------------- */

/* The bytes of a field: protobuf-c leaves an empty one NULL, and NULL is
 * no key to hash or copy (even for 0 bytes); the empty key is "". */
static const void *bytes(ProtobufCBinaryData d)
{
  return d.data ? (const void *)d.data : "";
}

/* Answers INVALID_ARGUMENT unless ttl is positive; returns 0 when it is. */
static int check_ttl(kr_serve_call *call, uint64_t ttl, const char *field)
{
  if (ttl > 0)
    return 0;
  char msg[96];
  snprintf(msg, sizeof msg, "%s must be positive", field);
  kr_serve_grpc_fail(call, STATUS_INVALID_ARGUMENT, msg);
  return -1;
}

static int bad_field(kr_serve_call *call, const char *msg)
{
  kr_serve_grpc_fail(call, STATUS_INVALID_ARGUMENT, msg);
  return -1;
}

/* The arrays of a batch request, in one block the caller frees. */
static int batch_arrays(kr_serve_call *call, kr_request *r, size_t n, void **block)
{
  size_t m = n ? n : 1;
  char *b = malloc(m * (2 * sizeof(void *) + 2 * sizeof(size_t) + sizeof(uint64_t)));
  if (!b) {
    kr_serve_grpc_fail(call, STATUS_RESOURCE_EXHAUSTED, "kura serve: out of memory");
    return -1;
  }
  *block = b;
  const void **keys = (const void **)b, **vals = keys + m;
  size_t *klens = (size_t *)(vals + m), *vlens = klens + m;
  uint64_t *ttls = (uint64_t *)(vlens + m);
  r->n = n, r->keys = keys, r->klens = klens, r->vals = vals, r->vlens = vlens, r->ttls = ttls;
  return 0;
}

static int build_set_if(kr_serve_call *call, const CacheClient__SetIfRequest *m, kr_request *r)
{
  const Common__Equal *cmp = NULL;
  switch (m->condition_case) {
  case CACHE_CLIENT____SET_IF_REQUEST__CONDITION_PRESENT: r->cond = KURA_SET_IF_PRESENT; break;
  case CACHE_CLIENT____SET_IF_REQUEST__CONDITION_ABSENT: r->cond = KURA_SET_IF_ABSENT; break;
  case CACHE_CLIENT____SET_IF_REQUEST__CONDITION_EQUAL:
    r->cond = KURA_SET_IF_EQUAL, cmp = m->equal;
    break;
  case CACHE_CLIENT____SET_IF_REQUEST__CONDITION_NOT_EQUAL: /* same shape as Equal */
    r->cond = KURA_SET_IF_NOT_EQUAL, cmp = (const Common__Equal *)m->not_equal;
    break;
  case CACHE_CLIENT____SET_IF_REQUEST__CONDITION_PRESENT_AND_NOT_EQUAL:
    r->cond = KURA_SET_IF_PRESENT_AND_NOT_EQUAL, cmp = (const Common__Equal *)m->present_and_not_equal;
    break;
  case CACHE_CLIENT____SET_IF_REQUEST__CONDITION_ABSENT_OR_EQUAL:
    r->cond = KURA_SET_IF_ABSENT_OR_EQUAL, cmp = (const Common__Equal *)m->absent_or_equal;
    break;
  default: return bad_field(call, "SetIf needs a condition");
  }
  if (check_ttl(call, m->ttl_milliseconds, "ttl_milliseconds"))
    return -1;
  r->op = KR_OP_SET_IF;
  r->key = bytes(m->cache_key), r->klen = m->cache_key.len;
  r->val = bytes(m->cache_body), r->vlen = m->cache_body.len;
  r->ttl_ms = m->ttl_milliseconds;
  if (cmp)
    r->cmp = bytes(cmp->value_to_check), r->cmplen = cmp->value_to_check.len;
  return 0;
}

static int build_update_ttl(kr_serve_call *call, const CacheClient__UpdateTtlRequest *m,
                            kr_request *r)
{
  r->op = KR_OP_TTL_SET;
  r->key = bytes(m->cache_key), r->klen = m->cache_key.len;
  switch (m->update_ttl_case) {
  case CACHE_CLIENT____UPDATE_TTL_REQUEST__UPDATE_TTL_INCREASE_TO_MILLISECONDS:
    r->ttl_mode = KURA_TTL_INCREASE, r->ttl_ms = m->increase_to_milliseconds;
    break;
  case CACHE_CLIENT____UPDATE_TTL_REQUEST__UPDATE_TTL_DECREASE_TO_MILLISECONDS:
    r->ttl_mode = KURA_TTL_DECREASE, r->ttl_ms = m->decrease_to_milliseconds;
    break;
  case CACHE_CLIENT____UPDATE_TTL_REQUEST__UPDATE_TTL_OVERWRITE_TO_MILLISECONDS:
    r->ttl_mode = KURA_TTL_UPDATE, r->ttl_ms = m->overwrite_to_milliseconds;
    break;
  default: return bad_field(call, "UpdateTtl needs a TTL");
  }
  return check_ttl(call, r->ttl_ms, "the TTL");
}

/* KeysExist and GetBatch: keys only (no values or TTLs for the client to
 * read). */
static int build_keys(kr_serve_call *call, const ProtobufCMessage *msg, kr_request *r,
                      void **block)
{
  if (call->method == M_KEYS_EXIST) {
    const CacheClient__KeysExistRequest *m = (const void *)msg;
    if (batch_arrays(call, r, m->n_cache_keys, block))
      return -1;
    r->vals = NULL, r->vlens = NULL, r->ttls = NULL;
    for (size_t i = 0; i < m->n_cache_keys; i++)
      ((const void **)r->keys)[i] = bytes(m->cache_keys[i]),
      ((size_t *)r->klens)[i] = m->cache_keys[i].len;
    r->op = KR_OP_KEYS_EXIST;
    return 0;
  }
  const CacheClient__GetBatchRequest *m = (const void *)msg;
  if (batch_arrays(call, r, m->n_items, block))
    return -1;
  r->vals = NULL, r->vlens = NULL, r->ttls = NULL;
  for (size_t i = 0; i < m->n_items; i++)
    ((const void **)r->keys)[i] = bytes(m->items[i]->cache_key),
    ((size_t *)r->klens)[i] = m->items[i]->cache_key.len;
  r->op = KR_OP_GET_BATCH;
  return 0;
}

static int build_set_batch(kr_serve_call *call, const CacheClient__SetBatchRequest *m,
                           kr_request *r, void **block)
{
  for (size_t i = 0; i < m->n_items; i++)
    if (check_ttl(call, m->items[i]->ttl_milliseconds, "ttl_milliseconds"))
      return -1;
  if (batch_arrays(call, r, m->n_items, block))
    return -1;
  for (size_t i = 0; i < m->n_items; i++) {
    const CacheClient__SetRequest *s = m->items[i];
    ((const void **)r->keys)[i] = bytes(s->cache_key), ((size_t *)r->klens)[i] = s->cache_key.len;
    ((const void **)r->vals)[i] = bytes(s->cache_body), ((size_t *)r->vlens)[i] = s->cache_body.len;
    ((uint64_t *)r->ttls)[i] = s->ttl_milliseconds;
  }
  r->op = KR_OP_SET_BATCH;
  return 0;
}

static int build_single(kr_serve_call *call, const ProtobufCMessage *msg, kr_request *r)
{
  switch (call->method) {
  case M_GET: {
    const CacheClient__GetRequest *m = (const void *)msg;
    r->op = KR_OP_GET, r->key = bytes(m->cache_key), r->klen = m->cache_key.len;
    return 0;
  }
  case M_SET: {
    const CacheClient__SetRequest *m = (const void *)msg;
    r->op = KR_OP_SET, r->key = bytes(m->cache_key), r->klen = m->cache_key.len;
    r->val = bytes(m->cache_body), r->vlen = m->cache_body.len, r->ttl_ms = m->ttl_milliseconds;
    return check_ttl(call, r->ttl_ms, "ttl_milliseconds");
  }
  case M_DELETE: {
    const CacheClient__DeleteRequest *m = (const void *)msg;
    r->op = KR_OP_DELETE, r->key = bytes(m->cache_key), r->klen = m->cache_key.len;
    return 0;
  }
  case M_INCREMENT: {
    const CacheClient__IncrementRequest *m = (const void *)msg;
    r->op = KR_OP_INCREMENT, r->key = bytes(m->cache_key), r->klen = m->cache_key.len;
    r->amount = m->amount, r->ttl_ms = m->ttl_milliseconds;
    return check_ttl(call, r->ttl_ms, "ttl_milliseconds");
  }
  default: { /* M_ITEM_GET_TTL */
    const CacheClient__ItemGetTtlRequest *m = (const void *)msg;
    r->op = KR_OP_TTL_GET, r->key = bytes(m->cache_key), r->klen = m->cache_key.len;
    return 0;
  }
  }
}

/* Control calls: the cache is the message's cache_name (the three
 * requests that name one share its shape). */
static int build_control(kr_serve_call *call, const ProtobufCMessage *msg, kr_request *r)
{
  static const enum kr_op ops[] = {[M_CREATE_CACHE] = KR_OP_CREATE_CACHE,
                                   [M_DELETE_CACHE] = KR_OP_DELETE_CACHE,
                                   [M_FLUSH_CACHE] = KR_OP_FLUSH_CACHE,
                                   [M_LIST_CACHES] = KR_OP_LIST_CACHES};
  r->op = ops[call->method];
  if (call->method != M_LIST_CACHES) {
    const ControlClient__CreateCacheRequest *m = (const void *)msg;
    r->cache = m->cache_name, r->cache_len = strlen(m->cache_name);
  }
  return 0;
}

static int build(kr_serve_call *call, const ProtobufCMessage *msg, kr_request *r, void **block)
{
  switch (call->method) {
  case M_SET_IF: return build_set_if(call, (const void *)msg, r);
  case M_UPDATE_TTL: return build_update_ttl(call, (const void *)msg, r);
  case M_KEYS_EXIST:
  case M_GET_BATCH: return build_keys(call, msg, r, block);
  case M_SET_BATCH: return build_set_batch(call, (const void *)msg, r, block);
  case M_CREATE_CACHE:
  case M_DELETE_CACHE:
  case M_FLUSH_CACHE:
  case M_LIST_CACHES: return build_control(call, msg, r);
  default: return build_single(call, msg, r);
  }
}

/* Request messages are decoded into a buffer on the stack: a call's message
 * is a few small blocks (the message, its key), so decoding allocates
 * nothing; what does not fit (a large value, a batch) comes from malloc. */
typedef struct arena {
  ProtobufCAllocator a;
  uint8_t *p;
  size_t used, cap;
} arena;

static void *arena_alloc(void *ud, size_t n)
{
  arena *ar = ud;
  n = (n + 15) & ~(size_t)15;
  if (n <= ar->cap - ar->used) {
    void *p = ar->p + ar->used;
    ar->used += n;
    return p;
  }
  return malloc(n);
}

static void arena_free(void *ud, void *p)
{
  arena *ar = ud;
  if ((uint8_t *)p < ar->p || (uint8_t *)p >= ar->p + ar->cap)
    free(p);
}

int kr_serve_is_grpc(const kr_h2s_req *req)
{
  size_t n;
  const char *ct = kr_h2s_header_get(req, "content-type", &n);
  return ct && n >= 16 && strncmp(ct, "application/grpc", 16) == 0 &&
         (n == 16 || ct[16] == '+' || ct[16] == ';');
}

/* 1 when body (n >= 5 bytes) is one framed gRPC message: its length prefix
 * names the rest. */
static int one_message(const uint8_t *b, size_t n)
{
  return ((size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4]) == n - 5;
}

int kr_serve_grpc_whole(const kr_h2s_req *req)
{
  return req->body_len >= 5 && one_message(req->body, req->body_len) && kr_serve_is_grpc(req);
}

static int find_method(const kr_h2s_req *req)
{
  for (int i = 0; i < M_COUNT; i++)
    if (strcmp(req->path, methods[i].path) == 0)
      return i;
  return -1;
}

/* The checks before the message is decoded; 0, or the call is answered. */
static int check_call(kr_serve_call *call, const uint8_t **msg, size_t *len)
{
  kr_serve *s = call->s;
  kr_h2s_req *req = call->req;
  size_t al, n = req->body_len;
  const char *auth = kr_h2s_header_get(req, "authorization", &al);
  char why[160];
  const char *fail = NULL;
  int st = 0;
  if (call->method < 0)
    snprintf(why, sizeof why, "method %.100s is not implemented by kura serve", req->path),
      st = STATUS_UNIMPLEMENTED, fail = why;
  else if (!kr_serve_authorized(s, auth, auth ? al : 0))
    st = STATUS_UNAUTHENTICATED, fail = "Invalid authorization token";
  else if (s->in_flight > s->max_calls)
    snprintf(why, sizeof why, "kura serve: too many calls in flight (limit %u)", s->max_calls),
      st = STATUS_RESOURCE_EXHAUSTED, fail = why;
  else if (req->body_too_large || (n > 5 && n - 5 > s->max_message))
    snprintf(why, sizeof why, "request message larger than %zu bytes", s->max_message),
      st = STATUS_RESOURCE_EXHAUSTED, fail = why;
  else if (req->headers_too_large)
    st = STATUS_RESOURCE_EXHAUSTED, fail = "request metadata too large";
  else if (n < 5 || req->body[0] > 1)
    st = STATUS_INTERNAL, fail = "malformed gRPC message (a 5-byte prefix, then the message)";
  else if (req->body[0] == 1)
    st = STATUS_UNIMPLEMENTED, fail = "compressed messages are not supported";
  else if (!one_message(req->body, n))
    st = STATUS_INTERNAL, fail = "the gRPC length prefix does not match the request body "
                                 "(one message per call)";
  if (fail) {
    kr_serve_grpc_fail(call, st, fail);
    return -1;
  }
  *msg = req->body + 5, *len = n - 5;
  return 0;
}

/* grpc-timeout and the `cache` metadata; 0, or the call is answered. */
static int read_metadata(kr_serve_call *call, kr_request *r)
{
  size_t len;
  const char *v = kr_h2s_header_get(call->req, "grpc-timeout", &len);
  if (v) {
    int64_t ms = kr_serve_parse_timeout(v, len);
    if (ms < 0) {
      kr_serve_grpc_fail(call, STATUS_INTERNAL, "malformed grpc-timeout");
      return -1;
    }
    kr_serve_set_deadline(call, (uint64_t)ms);
  }
  if (!methods[call->method].data_plane)
    return 0;
  v = kr_h2s_header_get(call->req, "cache", &len);
  if (!v || !len)
    return bad_field(call, "the cache metadata (the cache's name) is missing");
  r->cache = v, r->cache_len = len;
  return 0;
}

void kr_serve_grpc(kr_serve *s, kr_h2s_req *req)
{
  kr_serve_call *call = kr_serve_call_new(s, req, &grpc_kind, find_method(req));
  if (!call) {
    fail_bare(req, STATUS_RESOURCE_EXHAUSTED, "kura serve: out of memory");
    return;
  }
  const uint8_t *data;
  size_t len;
  kr_request r = {0};
  if (check_call(call, &data, &len) || read_metadata(call, &r)) {
    kr_serve_call_unref(call);
    return;
  }
  _Alignas(16) uint8_t stack[1024];
  arena ar = {{arena_alloc, arena_free, NULL}, stack, 0, sizeof stack};
  ar.a.allocator_data = &ar;
  ProtobufCMessage *msg = protobuf_c_message_unpack(methods[call->method].desc, &ar.a, len, data);
  void *block = NULL;
  if (!msg)
    kr_serve_grpc_fail(call, STATUS_INTERNAL, "the request message could not be decoded");
  else if (build(call, msg, &r, &block) == 0)
    kr_serve_submit(call, &r);
  free(block);
  if (msg)
    protobuf_c_message_free_unpacked(msg, &ar.a);
  kr_serve_call_unref(call);
}
