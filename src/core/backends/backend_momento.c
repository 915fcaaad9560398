/* The momento backend: every call of docs/lua-api.md on Momento's gRPC services
 * (cache_client.Scs for items, control_client.ScsControl for caches), over
 * core/net/grpc.c, with the messages of src/core/proto/ encoded by protobuf-c.
 *
 *   get / set / delete          Get / Set / Delete
 *   set_if_*                    SetIf with its condition (present, absent,
 *                               equal, not_equal, present_and_not_equal,
 *                               absent_or_equal)
 *   key_exists / keys_exist     KeysExist
 *   increment                   Increment
 *   get_batch / set_batch       GetBatch / SetBatch (server streaming: one
 *                               answer per item, in order)
 *   item_get_ttl                ItemGetTtl
 *   update/increase/decrease_ttl UpdateTtl (overwrite_to / increase_to /
 *                               decrease_to)
 *   create/delete/flush/list    CreateCache / DeleteCache / FlushCache /
 *                               ListCaches (following next_token)
 *
 * Endpoints: the credential's cache.<endpoint> and control.<endpoint> on port
 * 443 over TLS, or the momento_endpoint option: a URL ("http://host:port",
 * plaintext HTTP/2 as the SDKs' forMomentoLocal) serves both services, a
 * bare host name replaces the credential's endpoint. Metadata as the SDKs
 * send it: authorization (the key), cache (data calls), agent.
 *
 * Results are the memory backend's: create of an existing cache
 * (ALREADY_EXISTS) is success with KURA_SKIPPED, list is sorted. A gRPC status
 * becomes the error code the SDKs give it (kr_grpc_status_error). Deadlines
 * and retries are the client core's; each call also carries the timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cacheclient.pb-c.h"
#include "controlclient.pb-c.h"
#include "core/backends/defer.h"
#include "core/client.h"
#include "core/credential.h"
#include "core/net/grpc.h"
#include "core/wipe.h"

#define AGENT "agent: kura:" KURA_VERSION_STRING

typedef struct mbe mbe;
typedef struct mop mop;

struct mop {
  mbe *b;
  const kr_request *req;     /* the client's copy: valid until we complete */
  kr_client_cb cb;
  void *udata;
  int err;
  int unapplied;             /* with err: the call did not reach the server
                                (never sent, or no connection was made) */
  char msg[320];
  char **names;              /* list_caches: gathered over pages */
  size_t nnames, capnames;
  kr_deferred deferred;      /* in mbe.defer */
};

struct mbe {
  kr_client *client;
  kr_grpc *data;             /* cache_client.Scs */
  kr_grpc *control;          /* control_client.ScsControl */
  uint64_t timeout_ms;
  kr_defer defer;            /* completes calls that failed before sending */
  int closing;
  int open;                  /* data, control, defer: not yet closed */
};

/* --- completing ------------------------------------------------------------- */

static void op_free(mop *o)
{
  for (size_t i = 0; i < o->nnames; i++)
    free(o->names[i]);
  free(o->names);
  free(o);
}

/* Completes o with res, or with its error; res NULL: an empty success. */
static void complete(mop *o, kr_result *res)
{
  kr_result empty = {.outcome = KURA_HIT};
  if (!res)
    res = &empty;
  if (o->err) {
    kr_result e = {.err = o->err, .msg = o->msg, .unapplied = o->unapplied};
    o->cb(o->udata, o->req, &e);
  } else {
    o->cb(o->udata, o->req, res);
  }
  op_free(o);
}

static void finish_deferred(kr_deferred *d)
{
  complete(KR_DEFERRED_OF(d, mop, deferred), NULL);
}

static void defer(mop *o)
{
  o->unapplied = 1; /* it failed before it was sent */
  kr_defer_push(&o->b->defer, &o->deferred);
}


static void set_err(mop *o, int err, const char *detail)
{
  int cl = (int)(o->req->cache_len < 80 ? o->req->cache_len : 80);
  o->err = err;
  if (err == KURA_ENOTFOUND && o->req->op != KR_OP_LIST_CACHES)
    snprintf(o->msg, sizeof o->msg, "cache '%.*s' does not exist (%s: %s)", cl,
             o->req->cache, kr_call_name(o->req), detail);
  else if (o->req->op == KR_OP_LIST_CACHES)
    snprintf(o->msg, sizeof o->msg, "list_caches: %s", detail);
  else
    snprintf(o->msg, sizeof o->msg, "%s on cache '%.*s': %s", kr_call_name(o->req), cl,
             o->req->cache, detail);
}

/* --- answers ---------------------------------------------------------------- */

static ProtobufCMessage *unpack_one(mop *o, const ProtobufCMessageDescriptor *d,
                                    const kr_grpc_reply *rep)
{
  ProtobufCMessage *m = NULL;
  if (rep->nmsgs == 1)
    m = protobuf_c_message_unpack(d, NULL, rep->lens[0], rep->msgs[0]);
  if (!m)
    set_err(o, KURA_EINTERNAL, rep->nmsgs == 1 ? "malformed answer from the server"
                                               : "expected one answer message");
  return m;
}

static void answer_get(mop *o, const kr_grpc_reply *rep, kr_result *res)
{
  CacheClient__GetResponse *m = (CacheClient__GetResponse *)
    unpack_one(o, &cache_client____get_response__descriptor, rep);
  if (!m) {
    complete(o, res);
    return;
  }
  if (m->result == CACHE_CLIENT__ECACHE_RESULT__Hit) {
    res->outcome = KURA_HIT;
    res->val = m->cache_body.data ? (const void *)m->cache_body.data : "";
    res->vlen = m->cache_body.len;
  } else if (m->result == CACHE_CLIENT__ECACHE_RESULT__Miss) {
    res->outcome = KURA_MISS;
  } else {
    set_err(o, KURA_EINTERNAL, "get answered neither hit nor miss");
  }
  complete(o, res);
  protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void answer_set_if(mop *o, const kr_grpc_reply *rep, kr_result *res)
{
  CacheClient__SetIfResponse *m = (CacheClient__SetIfResponse *)
    unpack_one(o, &cache_client____set_if_response__descriptor, rep);
  if (m && m->result_case == CACHE_CLIENT____SET_IF_RESPONSE__RESULT_STORED)
    res->outcome = KURA_HIT;
  else if (m && m->result_case == CACHE_CLIENT____SET_IF_RESPONSE__RESULT_NOT_STORED)
    res->outcome = KURA_SKIPPED;
  else if (m)
    set_err(o, KURA_EINTERNAL, "SetIf answered neither stored nor not stored");
  complete(o, res);
  if (m)
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void answer_keys_exist(mop *o, const kr_grpc_reply *rep, kr_result *res)
{
  CacheClient__KeysExistResponse *m = (CacheClient__KeysExistResponse *)
    unpack_one(o, &cache_client____keys_exist_response__descriptor, rep);
  size_t n = o->req->op == KR_OP_KEY_EXISTS ? 1 : o->req->n;
  uint8_t *flags = NULL;
  if (m && m->n_exists != n)
    set_err(o, KURA_EINTERNAL, "KeysExist answered for a different number of keys");
  else if (m && !(flags = malloc(n ? n : 1)))
    set_err(o, KURA_ENOMEM, "out of memory");
  for (size_t i = 0; flags && i < n; i++)
    flags[i] = m->exists[i] ? 1 : 0;
  if (flags && o->req->op == KR_OP_KEY_EXISTS)
    res->outcome = flags[0] ? KURA_HIT : KURA_MISS;
  res->count = n, res->flags = flags;
  complete(o, res);
  free(flags);
  if (m)
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void answer_increment(mop *o, const kr_grpc_reply *rep, kr_result *res)
{
  CacheClient__IncrementResponse *m = (CacheClient__IncrementResponse *)
    unpack_one(o, &cache_client____increment_response__descriptor, rep);
  if (m)
    res->integer = m->value;
  complete(o, res);
  if (m)
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void answer_ttl_get(mop *o, const kr_grpc_reply *rep, kr_result *res)
{
  CacheClient__ItemGetTtlResponse *m = (CacheClient__ItemGetTtlResponse *)
    unpack_one(o, &cache_client____item_get_ttl_response__descriptor, rep);
  if (m && m->result_case == CACHE_CLIENT____ITEM_GET_TTL_RESPONSE__RESULT_FOUND)
    res->outcome = KURA_HIT, res->ttl_ms = m->found->remaining_ttl_millis;
  else if (m && m->result_case == CACHE_CLIENT____ITEM_GET_TTL_RESPONSE__RESULT_MISSING)
    res->outcome = KURA_MISS;
  else if (m)
    set_err(o, KURA_EINTERNAL, "ItemGetTtl answered neither found nor missing");
  complete(o, res);
  if (m)
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void answer_ttl_set(mop *o, const kr_grpc_reply *rep, kr_result *res)
{
  CacheClient__UpdateTtlResponse *m = (CacheClient__UpdateTtlResponse *)
    unpack_one(o, &cache_client____update_ttl_response__descriptor, rep);
  if (m && m->result_case == CACHE_CLIENT____UPDATE_TTL_RESPONSE__RESULT_SET)
    res->outcome = KURA_HIT;
  else if (m && m->result_case == CACHE_CLIENT____UPDATE_TTL_RESPONSE__RESULT_NOT_SET)
    res->outcome = KURA_SKIPPED;
  else if (m && m->result_case == CACHE_CLIENT____UPDATE_TTL_RESPONSE__RESULT_MISSING)
    res->outcome = KURA_MISS;
  else if (m)
    set_err(o, KURA_EINTERNAL, "UpdateTtl answered neither set, not set nor missing");
  complete(o, res);
  if (m)
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* GetBatch: one _GetResponse per key, in the order of the keys. */
static void answer_get_batch(mop *o, const kr_grpc_reply *rep, kr_result *res)
{
  size_t n = o->req->n;
  CacheClient__GetResponse **ms = calloc(n ? n : 1, sizeof *ms);
  const void **vals = calloc(n ? n : 1, sizeof *vals);
  size_t *vlens = calloc(n ? n : 1, sizeof *vlens);
  if (!ms || !vals || !vlens)
    set_err(o, KURA_ENOMEM, "out of memory");
  else if (rep->nmsgs != n)
    set_err(o, KURA_EINTERNAL, "GetBatch answered for a different number of keys");
  for (size_t i = 0; !o->err && i < n; i++) {
    ms[i] = cache_client____get_response__unpack(NULL, rep->lens[i], rep->msgs[i]);
    if (!ms[i])
      set_err(o, KURA_EINTERNAL, "malformed answer from the server");
    else if (ms[i]->result == CACHE_CLIENT__ECACHE_RESULT__Hit)
      vals[i] = ms[i]->cache_body.data ? (const void *)ms[i]->cache_body.data : "",
      vlens[i] = ms[i]->cache_body.len;
  }
  res->count = n, res->vals = vals, res->vlens = vlens;
  complete(o, res);
  for (size_t i = 0; ms && i < n; i++)
    if (ms[i])
      cache_client____get_response__free_unpacked(ms[i], NULL);
  free(ms), free(vals), free(vlens);
}

/* Calls whose answer carries nothing we use still get it checked: an answer
 * that is not the message the call returns (or not as many as it returns)
 * is an error, not a success. */
static void answer_ack(mop *o, const kr_grpc_reply *rep, kr_result *res)
{
  const ProtobufCMessageDescriptor *d;
  size_t n = 1;
  switch (o->req->op) {
  case KR_OP_SET: d = &cache_client____set_response__descriptor; break;
  case KR_OP_SET_BATCH: d = &cache_client____set_response__descriptor, n = o->req->n; break;
  case KR_OP_DELETE: d = &cache_client____delete_response__descriptor; break;
  case KR_OP_CREATE_CACHE: d = &control_client____create_cache_response__descriptor; break;
  case KR_OP_DELETE_CACHE: d = &control_client____delete_cache_response__descriptor; break;
  default: d = &control_client____flush_cache_response__descriptor; break;
  }
  if (rep->nmsgs != n)
    set_err(o, KURA_EINTERNAL, "malformed answer from the server (not one message per item)");
  for (size_t i = 0; !o->err && i < n; i++) {
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, rep->lens[i], rep->msgs[i]);
    if (!m)
      set_err(o, KURA_EINTERNAL, "malformed answer from the server");
    else
      protobuf_c_message_free_unpacked(m, NULL);
  }
  complete(o, res);
}

static int cmp_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int send_list(mop *o, const char *token);

/* ListCaches: gathers the names of this page, asks for the next one. */
static void answer_list(mop *o, const kr_grpc_reply *rep, kr_result *res)
{
  ControlClient__ListCachesResponse *m = (ControlClient__ListCachesResponse *)
    unpack_one(o, &control_client____list_caches_response__descriptor, rep);
  for (size_t i = 0; m && !o->err && i < m->n_cache; i++) {
    if (o->nnames == o->capnames) {
      size_t cap = o->capnames ? 2 * o->capnames : 16;
      char **nn = realloc(o->names, cap * sizeof *nn);
      if (!nn) {
        set_err(o, KURA_ENOMEM, "out of memory");
        break;
      }
      o->names = nn, o->capnames = cap;
    }
    if (!(o->names[o->nnames] = strdup(m->cache[i]->cache_name)))
      set_err(o, KURA_ENOMEM, "out of memory");
    else
      o->nnames++;
  }
  int more = m && !o->err && m->next_token && *m->next_token;
  if (more && send_list(o, m->next_token) == 0) {
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return;
  }
  if (m)
    protobuf_c_message_free_unpacked(&m->base, NULL);
  if (!o->err && o->nnames)
    qsort(o->names, o->nnames, sizeof *o->names, cmp_names);
  res->count = o->nnames, res->names = (const char *const *)o->names;
  complete(o, res);
}

static void on_reply(void *udata, const kr_grpc_reply *rep)
{
  mop *o = udata;
  kr_result res = {.outcome = KURA_HIT};
  if (rep->err == KURA_EEXIST && o->req->op == KR_OP_CREATE_CACHE) {
    res.outcome = KURA_SKIPPED;
    complete(o, &res);
    return;
  }
  if (rep->err) {
    char detail[280];
    if (rep->status >= 0)
      snprintf(detail, sizeof detail, "%s: %s", kr_grpc_status_name(rep->status), rep->msg);
    else
      snprintf(detail, sizeof detail, "%s", rep->msg ? rep->msg : kura_strerror(rep->err));
    set_err(o, rep->err, detail);
    o->unapplied = rep->unsent;
    complete(o, &res);
    return;
  }
  switch (o->req->op) {
  case KR_OP_GET: answer_get(o, rep, &res); break;
  case KR_OP_SET_IF: answer_set_if(o, rep, &res); break;
  case KR_OP_KEY_EXISTS:
  case KR_OP_KEYS_EXIST: answer_keys_exist(o, rep, &res); break;
  case KR_OP_INCREMENT: answer_increment(o, rep, &res); break;
  case KR_OP_TTL_GET: answer_ttl_get(o, rep, &res); break;
  case KR_OP_TTL_SET: answer_ttl_set(o, rep, &res); break;
  case KR_OP_GET_BATCH: answer_get_batch(o, rep, &res); break;
  case KR_OP_LIST_CACHES: answer_list(o, rep, &res); break;
  default: answer_ack(o, rep, &res); break; /* set, delete, set_batch, cache calls */
  }
}

/* --- requests --------------------------------------------------------------- */

static ProtobufCBinaryData bin(const void *p, size_t len)
{
  ProtobufCBinaryData d = {len, (uint8_t *)(uintptr_t)p}; /* only read by pack */
  return d;
}

/* Packs m and sends it on g. Returns 0, or a code with o's error set. */
static int send_msg(mop *o, kr_grpc *g, const char *method, const ProtobufCMessage *m,
                    int with_cache)
{
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  char *cache_md = NULL;
  const char *md[1];
  if (buf && with_cache && (cache_md = malloc(o->req->cache_len + 8)) != NULL) {
    memcpy(cache_md, "cache: ", 7);
    memcpy(cache_md + 7, o->req->cache, o->req->cache_len);
    cache_md[7 + o->req->cache_len] = '\0';
    md[0] = cache_md;
  }
  int rc = KURA_ENOMEM;
  if (buf && (!with_cache || cache_md)) {
    protobuf_c_message_pack(m, buf);
    kr_grpc_call call = {.method = method, .msg = buf, .len = len, .metadata = md,
                         .nmetadata = with_cache ? 1 : 0, .timeout_ms = o->b->timeout_ms};
    rc = kr_grpc_submit(g, &call, on_reply, o);
    if (rc)
      set_err(o, rc, kr_grpc_errstr(g));
  } else {
    set_err(o, rc, "out of memory");
  }
  free(buf);
  free(cache_md);
  return rc;
}

static int send_list(mop *o, const char *token)
{
  ControlClient__ListCachesRequest m = CONTROL_CLIENT____LIST_CACHES_REQUEST__INIT;
  m.next_token = (char *)(uintptr_t)(token ? token : "");
  return send_msg(o, o->b->control, "/control_client.ScsControl/ListCaches", &m.base, 0);
}

static int send_cache_call(mop *o)
{
  const kr_request *r = o->req;
  char *name = malloc(r->cache_len + 1);
  if (!name)
    return set_err(o, KURA_ENOMEM, "out of memory"), KURA_ENOMEM;
  memcpy(name, r->cache, r->cache_len);
  name[r->cache_len] = '\0';
  /* The three requests have the same shape: cache_name = 1. */
  ControlClient__CreateCacheRequest cr = CONTROL_CLIENT____CREATE_CACHE_REQUEST__INIT;
  ControlClient__DeleteCacheRequest dr = CONTROL_CLIENT____DELETE_CACHE_REQUEST__INIT;
  ControlClient__FlushCacheRequest fr = CONTROL_CLIENT____FLUSH_CACHE_REQUEST__INIT;
  cr.cache_name = dr.cache_name = fr.cache_name = name;
  int rc;
  if (r->op == KR_OP_CREATE_CACHE)
    rc = send_msg(o, o->b->control, "/control_client.ScsControl/CreateCache", &cr.base, 0);
  else if (r->op == KR_OP_DELETE_CACHE)
    rc = send_msg(o, o->b->control, "/control_client.ScsControl/DeleteCache", &dr.base, 0);
  else
    rc = send_msg(o, o->b->control, "/control_client.ScsControl/FlushCache", &fr.base, 0);
  free(name);
  return rc;
}

static int send_set_if(mop *o)
{
  const kr_request *r = o->req;
  CacheClient__SetIfRequest m = CACHE_CLIENT____SET_IF_REQUEST__INIT;
  Common__Present present = COMMON__PRESENT__INIT;
  Common__Absent absent = COMMON__ABSENT__INIT;
  Common__Equal eq = COMMON__EQUAL__INIT;
  Common__NotEqual ne = COMMON__NOT_EQUAL__INIT;
  Common__PresentAndNotEqual pne = COMMON__PRESENT_AND_NOT_EQUAL__INIT;
  Common__AbsentOrEqual aoe = COMMON__ABSENT_OR_EQUAL__INIT;
  eq.value_to_check = ne.value_to_check = pne.value_to_check = aoe.value_to_check =
    bin(r->cmp, r->cmplen);
  m.cache_key = bin(r->key, r->klen);
  m.cache_body = bin(r->val, r->vlen);
  m.ttl_milliseconds = r->ttl_ms;
  switch (r->cond) {
  case KURA_SET_IF_ABSENT:
    m.condition_case = CACHE_CLIENT____SET_IF_REQUEST__CONDITION_ABSENT, m.absent = &absent;
    break;
  case KURA_SET_IF_PRESENT:
    m.condition_case = CACHE_CLIENT____SET_IF_REQUEST__CONDITION_PRESENT, m.present = &present;
    break;
  case KURA_SET_IF_EQUAL:
    m.condition_case = CACHE_CLIENT____SET_IF_REQUEST__CONDITION_EQUAL, m.equal = &eq;
    break;
  case KURA_SET_IF_NOT_EQUAL:
    m.condition_case = CACHE_CLIENT____SET_IF_REQUEST__CONDITION_NOT_EQUAL, m.not_equal = &ne;
    break;
  case KURA_SET_IF_PRESENT_AND_NOT_EQUAL:
    m.condition_case = CACHE_CLIENT____SET_IF_REQUEST__CONDITION_PRESENT_AND_NOT_EQUAL;
    m.present_and_not_equal = &pne;
    break;
  case KURA_SET_IF_ABSENT_OR_EQUAL:
    m.condition_case = CACHE_CLIENT____SET_IF_REQUEST__CONDITION_ABSENT_OR_EQUAL;
    m.absent_or_equal = &aoe;
    break;
  default: { /* KURA_SET_ALWAYS: a plain set that answers "stored" */
    CacheClient__SetRequest s = CACHE_CLIENT____SET_REQUEST__INIT;
    s.cache_key = m.cache_key, s.cache_body = m.cache_body, s.ttl_milliseconds = r->ttl_ms;
    return send_msg(o, o->b->data, "/cache_client.Scs/Set", &s.base, 1);
  }
  }
  return send_msg(o, o->b->data, "/cache_client.Scs/SetIf", &m.base, 1);
}

static int send_keys_exist(mop *o)
{
  const kr_request *r = o->req;
  CacheClient__KeysExistRequest m = CACHE_CLIENT____KEYS_EXIST_REQUEST__INIT;
  size_t n = r->op == KR_OP_KEY_EXISTS ? 1 : r->n;
  ProtobufCBinaryData *keys = malloc((n ? n : 1) * sizeof *keys);
  if (!keys)
    return set_err(o, KURA_ENOMEM, "out of memory"), KURA_ENOMEM;
  for (size_t i = 0; i < n; i++)
    keys[i] = r->op == KR_OP_KEY_EXISTS ? bin(r->key, r->klen) : bin(r->keys[i], r->klens[i]);
  m.n_cache_keys = n, m.cache_keys = keys;
  int rc = send_msg(o, o->b->data, "/cache_client.Scs/KeysExist", &m.base, 1);
  free(keys);
  return rc;
}

static int send_get_batch(mop *o)
{
  const kr_request *r = o->req;
  size_t n = r->n ? r->n : 1;
  CacheClient__GetBatchRequest m = CACHE_CLIENT____GET_BATCH_REQUEST__INIT;
  CacheClient__GetRequest *items = malloc(n * sizeof *items);
  CacheClient__GetRequest **ptrs = malloc(n * sizeof *ptrs);
  int rc = KURA_ENOMEM;
  if (items && ptrs) {
    for (size_t i = 0; i < r->n; i++) {
      CacheClient__GetRequest g = CACHE_CLIENT____GET_REQUEST__INIT;
      g.cache_key = bin(r->keys[i], r->klens[i]);
      items[i] = g, ptrs[i] = &items[i];
    }
    m.n_items = r->n, m.items = ptrs;
    rc = send_msg(o, o->b->data, "/cache_client.Scs/GetBatch", &m.base, 1);
  } else {
    set_err(o, rc, "out of memory");
  }
  free(items), free(ptrs);
  return rc;
}

static int send_set_batch(mop *o)
{
  const kr_request *r = o->req;
  size_t n = r->n ? r->n : 1;
  CacheClient__SetBatchRequest m = CACHE_CLIENT____SET_BATCH_REQUEST__INIT;
  CacheClient__SetRequest *items = malloc(n * sizeof *items);
  CacheClient__SetRequest **ptrs = malloc(n * sizeof *ptrs);
  int rc = KURA_ENOMEM;
  if (items && ptrs) {
    for (size_t i = 0; i < r->n; i++) {
      CacheClient__SetRequest s = CACHE_CLIENT____SET_REQUEST__INIT;
      s.cache_key = bin(r->keys[i], r->klens[i]);
      s.cache_body = bin(r->vals[i], r->vlens[i]);
      s.ttl_milliseconds = r->ttls && r->ttls[i] ? r->ttls[i] : r->ttl_ms;
      items[i] = s, ptrs[i] = &items[i];
    }
    m.n_items = r->n, m.items = ptrs;
    rc = send_msg(o, o->b->data, "/cache_client.Scs/SetBatch", &m.base, 1);
  } else {
    set_err(o, rc, "out of memory");
  }
  free(items), free(ptrs);
  return rc;
}

/* The single-key calls. */
static int send_item(mop *o)
{
  const kr_request *r = o->req;
  kr_grpc *g = o->b->data;
  ProtobufCBinaryData key = bin(r->key, r->klen);
  switch (r->op) {
  case KR_OP_GET: {
    CacheClient__GetRequest m = CACHE_CLIENT____GET_REQUEST__INIT;
    m.cache_key = key;
    return send_msg(o, g, "/cache_client.Scs/Get", &m.base, 1);
  }
  case KR_OP_SET: {
    CacheClient__SetRequest m = CACHE_CLIENT____SET_REQUEST__INIT;
    m.cache_key = key, m.cache_body = bin(r->val, r->vlen), m.ttl_milliseconds = r->ttl_ms;
    return send_msg(o, g, "/cache_client.Scs/Set", &m.base, 1);
  }
  case KR_OP_DELETE: {
    CacheClient__DeleteRequest m = CACHE_CLIENT____DELETE_REQUEST__INIT;
    m.cache_key = key;
    return send_msg(o, g, "/cache_client.Scs/Delete", &m.base, 1);
  }
  case KR_OP_INCREMENT: {
    CacheClient__IncrementRequest m = CACHE_CLIENT____INCREMENT_REQUEST__INIT;
    m.cache_key = key, m.amount = r->amount, m.ttl_milliseconds = r->ttl_ms;
    return send_msg(o, g, "/cache_client.Scs/Increment", &m.base, 1);
  }
  case KR_OP_TTL_GET: {
    CacheClient__ItemGetTtlRequest m = CACHE_CLIENT____ITEM_GET_TTL_REQUEST__INIT;
    m.cache_key = key;
    return send_msg(o, g, "/cache_client.Scs/ItemGetTtl", &m.base, 1);
  }
  default: { /* KR_OP_TTL_SET */
    CacheClient__UpdateTtlRequest m = CACHE_CLIENT____UPDATE_TTL_REQUEST__INIT;
    m.cache_key = key;
    if (r->ttl_mode == KURA_TTL_INCREASE)
      m.update_ttl_case = CACHE_CLIENT____UPDATE_TTL_REQUEST__UPDATE_TTL_INCREASE_TO_MILLISECONDS,
      m.increase_to_milliseconds = r->ttl_ms;
    else if (r->ttl_mode == KURA_TTL_DECREASE)
      m.update_ttl_case = CACHE_CLIENT____UPDATE_TTL_REQUEST__UPDATE_TTL_DECREASE_TO_MILLISECONDS,
      m.decrease_to_milliseconds = r->ttl_ms;
    else
      m.update_ttl_case = CACHE_CLIENT____UPDATE_TTL_REQUEST__UPDATE_TTL_OVERWRITE_TO_MILLISECONDS,
      m.overwrite_to_milliseconds = r->ttl_ms;
    return send_msg(o, g, "/cache_client.Scs/UpdateTtl", &m.base, 1);
  }
  }
}

/* A cache name travels as a header value: no control bytes. */
static int header_safe(const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  return 1;
}

static int send_op(mop *o)
{
  const kr_request *r = o->req;
  if (r->op != KR_OP_LIST_CACHES && !header_safe(r->cache, r->cache_len))
    return set_err(o, KURA_EINVAL, "the cache name holds control characters"), KURA_EINVAL;
  switch (r->op) {
  case KR_OP_LIST_CACHES: return send_list(o, NULL);
  case KR_OP_CREATE_CACHE:
  case KR_OP_DELETE_CACHE:
  case KR_OP_FLUSH_CACHE: return send_cache_call(o);
  case KR_OP_SET_IF: return send_set_if(o);
  case KR_OP_KEY_EXISTS:
  case KR_OP_KEYS_EXIST: return send_keys_exist(o);
  case KR_OP_GET_BATCH: return send_get_batch(o);
  case KR_OP_SET_BATCH: return send_set_batch(o);
  case KR_OP_GET:
  case KR_OP_SET:
  case KR_OP_DELETE:
  case KR_OP_INCREMENT:
  case KR_OP_TTL_GET:
  case KR_OP_TTL_SET: return send_item(o);
  default:
    set_err(o, KURA_EUNSUPPORTED, "not supported by the momento backend");
    return KURA_EUNSUPPORTED;
  }
}

static void mg_submit(void *state, const kr_request *req, kr_client_cb cb, void *udata)
{
  mbe *b = state;
  mop *o = calloc(1, sizeof *o);
  if (!o) {
    kr_result res = {.err = KURA_ENOMEM, .msg = "out of memory"};
    cb(udata, req, &res); /* no memory even to defer: the one inline failure */
    return;
  }
  o->b = b, o->req = req, o->cb = cb, o->udata = udata;
  if (b->closing) {
    set_err(o, KURA_ECANCELLED, "the client is closed");
    defer(o);
  } else if (send_op(o)) { /* an empty batch too: the server still checks the cache */
    defer(o);
  }
}

/* --- open and close --------------------------------------------------------- */

/* The targets of both services, from the option or the credential. */
static int targets(mbe *b, const kr_client_config *cfg, const kr_credential *cred,
                   char *data, char *control, size_t cap)
{
  const char *ep = cfg->momento_endpoint;
  if (ep && *ep && strstr(ep, "://")) {
    snprintf(data, cap, "%s", ep);
    snprintf(control, cap, "%s", ep);
  } else if (ep && *ep) {
    snprintf(data, cap, "https://cache.%s:443", ep);
    snprintf(control, cap, "https://control.%s:443", ep);
  } else if (cred && cred->cache_endpoint[0] && cred->control_endpoint[0]) {
    snprintf(data, cap, "https://%s:443", cred->cache_endpoint);
    snprintf(control, cap, "https://%s:443", cred->control_endpoint);
  } else {
    return kr_client_fail(b->client, KURA_EINVAL, "momento: " KR_CRED_NO_ENDPOINT);
  }
  return 0;
}

/* "authorization: <secret>" (wiped by the caller) and the agent. */
static int open_channels(mbe *b, const char *data, const char *control, const kr_credential *cred)
{
  char *auth = NULL;
  const char *md[2] = {AGENT, NULL};
  size_t nmd = 1, alen = 0;
  if (cred) {
    alen = cred->secret_len + sizeof "authorization: ";
    if (!(auth = malloc(alen)))
      return KURA_ENOMEM;
    snprintf(auth, alen, "authorization: %s", cred->secret);
    md[nmd++] = auth;
  }
  char err[192];
  kr_grpc_config dc = {.target = data, .metadata = md, .nmetadata = nmd};
  kr_grpc_config cc = {.target = control, .metadata = md, .nmetadata = nmd, .max_connections = 1};
  int rc = kr_grpc_new(kr_client_loop(b->client), &dc, &b->data, err, sizeof err);
  if (!rc && (rc = kr_grpc_new(kr_client_loop(b->client), &cc, &b->control, err, sizeof err)))
    kr_grpc_close(b->data, NULL, NULL), b->data = NULL;
  if (rc)
    kr_client_fail(b->client, rc, "momento: endpoint: %s", err);
  kr_wipe_free(auth, alen);
  return rc;
}

static int setup(mbe *b, const kr_client_config *cfg)
{
  kr_credential cred;
  char data[600], control[600], err[256];
  /* No key: said first (not that the missing key names no endpoint). */
  int none = kr_credential_open("momento", cfg->credential, cfg->credential_len,
                                cfg->momento_endpoint, &cred, err, sizeof err);
  if (none < 0)
    return kr_client_fail(b->client, none, "%s", err);
  int rc = targets(b, cfg, none ? NULL : &cred, data, control, sizeof data);
  if (!rc)
    rc = open_channels(b, data, control, none ? NULL : &cred);
  if (!none)
    kr_credential_free(&cred);
  return rc;
}

static int mg_open(kr_client *c, const kr_client_config *cfg, void **state)
{
  mbe *b = calloc(1, sizeof *b);
  if (!b)
    return KURA_ENOMEM;
  b->client = c;
  b->timeout_ms = kr_client_timeout_ms(c);
  int rc = setup(b, cfg);
  if (rc) {
    free(b); /* open failed: the client does not expect a close */
    return rc;
  }
  kr_defer_init(&b->defer, kr_client_loop(c), finish_deferred);
  b->open = 3;
  *state = b;
  return 0;
}

static void part_closed(mbe *b)
{
  if (--b->open > 0)
    return;
  kr_client *c = b->client;
  free(b);
  kr_client_backend_closed(c);
}

static void on_channel_closed(void *ud) { part_closed(ud); }
static void cancel_deferred(kr_deferred *d)
{
  mop *o = KR_DEFERRED_OF(d, mop, deferred);
  if (!o->err)
    set_err(o, KURA_ECANCELLED, "the client is closed");
}

static void mg_close(void *state)
{
  mbe *b = state;
  b->closing = 1;
  /* Cancels what is in flight: each call completes with KURA_ECANCELLED. */
  kr_grpc_close(b->data, on_channel_closed, b);
  kr_grpc_close(b->control, on_channel_closed, b);
  kr_defer_close(&b->defer, cancel_deferred, on_channel_closed, b);
}

const kr_backend_ops kr_backend_momento_ops = {
  .name = "momento",
  .supports = KR_OPS_ALL,
  .flags = 0,
  .open = mg_open,
  .submit = mg_submit,
  .close = mg_close,
};
