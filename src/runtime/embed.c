/* The cache from C (include/kura.h): kura_get, kura_set, ... on a kura_client
 * with callbacks. A thin layer over the client (core/client.h); the runtime's
 * shared client (kura_client_get) is the host layer's (src/host/host.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "kura.h"

const char *kura_client_errmsg(const kura_client *c)
{
  return c ? kr_client_errstr((const kr_client *)c) : "no client";
}

/* The host's callback, carried through the client: on the C stack when the
 * backend completes inline, else on the heap until the completion. */
typedef struct ccall {
  kura_cb cb;
  void *udata;
  int heap;
} ccall;

static void on_done(void *udata, const kr_request *req, const kr_result *res)
{
  ccall *cc = udata;
  kura_cb cb = cc->cb;
  void *ud = cc->udata;
  if (cc->heap)
    free(cc);
  if (!cb)
    return;
  kura_result r = {
    .err = res->err,
    .errmsg = res->err && res->msg ? res->msg : "",
    .outcome = res->outcome,
    .value = res->val,
    .vlen = res->vlen,
    .integer = res->integer,
    .uncertain = res->uncertain,
  };
  if (req->op == KR_OP_TTL_GET && res->outcome == KR_HIT)
    r.ttl = res->ttl_ms == UINT64_MAX ? HUGE_VAL : (double)res->ttl_ms / 1000.0;
  cb(ud, &r);
}

static int submit(kura_client *c, kr_request *req, kura_cb cb, void *udata)
{
  kr_client *kc = (kr_client *)c;
  if (kr_client_is_inline(kc)) {
    ccall cc = {cb, udata, 0};
    return kr_client_submit(kc, req, on_done, &cc);
  }
  ccall *cc = malloc(sizeof *cc);
  if (!cc)
    return kr_client_fail(kc, KURA_ENOMEM, "out of memory");
  *cc = (ccall){cb, udata, 1};
  int rc = kr_client_submit(kc, req, on_done, cc);
  if (rc)
    free(cc);
  return rc;
}

/* Fills the request's cache (and checks the client); 0 or a refusal. */
static int start(kura_client *c, kr_request *req, enum kr_op op, const char *cache)
{
  if (!c)
    return KURA_EINVAL;
  if (!cache)
    return kr_client_fail((kr_client *)c, KURA_EINVAL, "the cache name is NULL");
  memset(req, 0, sizeof *req);
  req->op = op;
  req->cache = cache;
  req->cache_len = strlen(cache);
  return 0;
}

/* ttl seconds -> req->ttl_ms; <= 0 (when `optional`) keeps the default. */
static int set_ttl(kura_client *c, kr_request *req, double ttl, int optional)
{
  if (optional && ttl <= 0)
    return 0;
  if (kr_seconds_to_ms(ttl, &req->ttl_ms) != 0)
    return kr_client_fail((kr_client *)c, KURA_EINVAL,
                          "ttl must be a number of seconds > 0 and <= %d (ten years), got %g",
                          KURA_TTL_MAX_SECONDS, ttl);
  return 0;
}

#define START(opcode)                             \
  kr_request req;                                 \
  int rc_ = start(c, &req, (opcode), cache);      \
  if (rc_)                                        \
    return rc_;                                   \
  req.key = key, req.klen = klen

int kura_get(kura_client *c, const char *cache, const void *key, size_t klen,
             kura_cb cb, void *udata)
{
  START(KR_OP_GET);
  return submit(c, &req, cb, udata);
}

int kura_set(kura_client *c, const char *cache, const void *key, size_t klen,
             const void *val, size_t vlen, double ttl, kura_cb cb, void *udata)
{
  START(KR_OP_SET);
  req.val = val, req.vlen = vlen;
  if ((rc_ = set_ttl(c, &req, ttl, 1)) != 0)
    return rc_;
  return submit(c, &req, cb, udata);
}

int kura_delete(kura_client *c, const char *cache, const void *key, size_t klen,
                kura_cb cb, void *udata)
{
  START(KR_OP_DELETE);
  return submit(c, &req, cb, udata);
}

int kura_increment(kura_client *c, const char *cache, const void *key, size_t klen,
                   int64_t amount, double ttl, kura_cb cb, void *udata)
{
  START(KR_OP_INCREMENT);
  req.amount = amount;
  if ((rc_ = set_ttl(c, &req, ttl, 1)) != 0)
    return rc_;
  return submit(c, &req, cb, udata);
}

int kura_set_if(kura_client *c, const char *cache, const void *key, size_t klen,
                const void *val, size_t vlen, kura_set_cond cond,
                const void *cmp, size_t cmplen, double ttl, kura_cb cb, void *udata)
{
  START(KR_OP_SET_IF);
  if (cond < KURA_SET_IF_ABSENT || cond > KURA_SET_IF_ABSENT_OR_EQUAL)
    return kr_client_fail((kr_client *)c, KURA_EINVAL, "unknown set_if condition %d", (int)cond);
  req.val = val, req.vlen = vlen;
  req.cond = (enum kr_set_cond)cond; /* the same numbering as enum kr_set_cond */
  req.cmp = cmp, req.cmplen = cmplen;
  if ((rc_ = set_ttl(c, &req, ttl, 1)) != 0)
    return rc_;
  return submit(c, &req, cb, udata);
}

int kura_key_exists(kura_client *c, const char *cache, const void *key, size_t klen,
                    kura_cb cb, void *udata)
{
  START(KR_OP_KEY_EXISTS);
  return submit(c, &req, cb, udata);
}

int kura_item_get_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                      kura_cb cb, void *udata)
{
  START(KR_OP_TTL_GET);
  return submit(c, &req, cb, udata);
}

int kura_update_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                    double ttl, kura_cb cb, void *udata)
{
  START(KR_OP_TTL_SET);
  req.ttl_mode = KR_TTL_UPDATE;
  if ((rc_ = set_ttl(c, &req, ttl, 0)) != 0)
    return rc_;
  return submit(c, &req, cb, udata);
}

static int manage(kura_client *c, enum kr_op op, const char *cache, kura_cb cb, void *udata)
{
  kr_request req;
  int rc = start(c, &req, op, cache);
  return rc ? rc : submit(c, &req, cb, udata);
}

int kura_create_cache(kura_client *c, const char *cache, kura_cb cb, void *udata)
{
  return manage(c, KR_OP_CREATE_CACHE, cache, cb, udata);
}

int kura_delete_cache(kura_client *c, const char *cache, kura_cb cb, void *udata)
{
  return manage(c, KR_OP_DELETE_CACHE, cache, cb, udata);
}

int kura_flush_cache(kura_client *c, const char *cache, kura_cb cb, void *udata)
{
  return manage(c, KR_OP_FLUSH_CACHE, cache, cb, udata);
}
