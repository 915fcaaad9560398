/* The public cache client of include/kura_client.h: kura_client_open and
 * kura_client_close on the host's loop, and the cache calls, each a request
 * to the client (client.h) whose completion becomes a kura_result. A
 * kura_client is the client itself (client.h names it kr_client), so the
 * runtime's shared client (kura_client_get) answers the same calls.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "kura_client.h"

/* --- opening and closing ---------------------------------------------------- */

static int open_fail(const kura_client_options *o, int err, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static int open_fail(const kura_client_options *o, int err, const char *fmt, ...)
{
  if (o && o->errbuf && o->errbuf_len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->errbuf, o->errbuf_len, fmt, ap);
    va_end(ap);
  }
  return err;
}

/* The options as the client's configuration; KURA_EINVAL for a bad preset
 * name or a bad number. */
static int options_config(const kura_client_options *o, kr_client_config *cfg)
{
  *cfg = (kr_client_config){
    .backend = o->backend, .default_ttl = o->default_ttl, .timeout = o->timeout,
    .credential = o->credential, .momento_endpoint = o->momento_endpoint,
    .store = o->store, .max_memory = o->max_memory,
  };
  if (o->credential)
    cfg->credential_len = o->credential_len ? o->credential_len : strlen(o->credential);
  uint64_t ms;
  if (o->configuration && kr_preset_parse(o->configuration, &cfg->preset))
    return open_fail(o, KURA_EINVAL, "unknown configuration '%.40s' (expected laptop, "
                     "in_region, low_latency or lambda)", o->configuration);
  if (o->default_ttl > 0 || isnan(o->default_ttl)) {
    if (kr_seconds_to_ms(o->default_ttl, &ms))
      return open_fail(o, KURA_EINVAL, "default_ttl must be a number of seconds > 0 and "
                       "<= %d (ten years), got %g", KURA_TTL_MAX_SECONDS, o->default_ttl);
  }
  if ((o->timeout > 0 || isnan(o->timeout)) && kr_seconds_to_ms(o->timeout, &ms))
    return open_fail(o, KURA_EINVAL, "timeout must be a number of seconds > 0 and <= %d "
                     "(ten years), got %g", KURA_TTL_MAX_SECONDS, o->timeout);
  return 0;
}

int kura_client_open(struct uv_loop_s *loop, const kura_client_options *opts,
                     kura_client **out)
{
  static const kura_client_options defaults;
  if (!out)
    return open_fail(opts, KURA_EINVAL, "kura_client_open: out is NULL");
  *out = NULL;
  if (!opts)
    opts = &defaults;
  if (opts->errbuf && opts->errbuf_len)
    opts->errbuf[0] = '\0';
  kr_client_config cfg;
  int rc = options_config(opts, &cfg);
  if (rc)
    return rc;
  char err[256];
  rc = kr_client_new(loop, &cfg, out, err, sizeof err);
  if (rc)
    return open_fail(opts, rc, "%s", err);
  return KURA_OK;
}

void kura_client_close(kura_client *c)
{
  if (c)
    kr_client_close(c, NULL, NULL);
}

const char *kura_client_backend(const kura_client *c)
{
  return c ? kr_client_backend_name(c) : "";
}

size_t kura_client_pending(const kura_client *c)
{
  return c ? kr_client_pending(c) : 0;
}

const char *kura_client_errmsg(const kura_client *c)
{
  return c ? kr_client_errstr(c) : "no client";
}

int kura_client_stats(kura_client *c, const char *cache, kura_stats *out)
{
  if (!c || !out)
    return KURA_EINVAL;
  kr_client_stats st;
  kr_client_stats_get(c, cache, cache ? strlen(cache) : 0, &st);
  memset(out, 0, sizeof *out);
  out->calls = st.counts.calls;
  out->hits = st.counts.hits;
  out->misses = st.counts.misses;
  for (int i = 0; i < KURA_STATS_NERR && i < KR_STATS_NERR; i++)
    out->errors[i] = st.counts.errors[i];
  out->has_backend = st.has_backend;
  out->items = st.backend.items;
  out->bytes = st.backend.bytes;
  out->evictions = st.backend.evictions;
  out->expirations = st.backend.expirations;
  return KURA_OK;
}

/* --- completions -------------------------------------------------------------- */

/* The host's callback, carried through the client: on the C stack when the
 * backend completes inline, else on the heap until the completion. */
typedef struct ccall {
  kura_cb cb;
  void *udata;
  int heap;
} ccall;

static void result_of(const kr_request *req, const kr_result *res, kura_result *r)
{
  *r = (kura_result){
    .err = res->err,
    .errmsg = res->err && res->msg ? res->msg : "",
    .outcome = res->outcome,
    .value = res->val,
    .vlen = res->vlen,
    .integer = res->integer,
    .uncertain = res->uncertain,
  };
  if (res->err)
    return;
  switch (req->op) {
  case KR_OP_TTL_GET:
    if (res->outcome == KURA_HIT)
      r->ttl = res->ttl_ms == UINT64_MAX ? HUGE_VAL : (double)res->ttl_ms / 1000.0;
    break;
  case KR_OP_LIST_CACHES: r->count = res->count, r->names = res->names; break;
  case KR_OP_KEYS_EXIST: r->count = res->count, r->present = res->flags; break;
  case KR_OP_GET_BATCH:
    r->count = res->count, r->values = res->vals, r->vlens = res->vlens;
    break;
  default: break;
  }
}

static void on_done(void *udata, const kr_request *req, const kr_result *res)
{
  ccall *cc = udata;
  kura_cb cb = cc->cb;
  void *ud = cc->udata;
  if (cc->heap)
    free(cc);
  if (!cb)
    return;
  kura_result r;
  result_of(req, res, &r);
  cb(ud, &r);
}

static int submit(kura_client *c, kr_request *req, kura_cb cb, void *udata)
{
  if (kr_client_is_inline(c)) {
    ccall cc = {cb, udata, 0};
    return kr_client_submit(c, req, on_done, &cc);
  }
  ccall *cc = malloc(sizeof *cc);
  if (!cc)
    return kr_client_fail(c, KURA_ENOMEM, "out of memory");
  *cc = (ccall){cb, udata, 1};
  int rc = kr_client_submit(c, req, on_done, cc);
  if (rc)
    free(cc);
  return rc;
}

/* --- requests ------------------------------------------------------------------ */

/* Fills the request's cache (and checks the client); 0 or a refusal. */
static int start(kura_client *c, kr_request *req, enum kr_op op, const char *cache)
{
  if (!c)
    return KURA_EINVAL;
  if (!cache)
    return kr_client_fail(c, KURA_EINVAL, "the cache name is NULL");
  memset(req, 0, sizeof *req);
  req->op = op;
  req->cache = cache;
  req->cache_len = strlen(cache);
  return 0;
}

/* An item call: start() and the key. */
static int start_item(kura_client *c, kr_request *req, enum kr_op op, const char *cache,
                      const void *key, size_t klen)
{
  int rc = start(c, req, op, cache);
  if (rc)
    return rc;
  if (!key && klen)
    return kr_client_fail(c, KURA_EINVAL, "the key is NULL with %zu bytes", klen);
  req->key = key, req->klen = klen;
  return 0;
}

/* ttl seconds -> ms; <= 0 (when `optional`) keeps *ms (0: the default). */
static int ttl_ms(kura_client *c, double ttl, int optional, uint64_t *ms)
{
  if (optional && ttl <= 0)
    return 0;
  if (kr_seconds_to_ms(ttl, ms) != 0)
    return kr_client_fail(c, KURA_EINVAL,
                          "ttl must be a number of seconds > 0 and <= %d (ten years), got %g",
                          KURA_TTL_MAX_SECONDS, ttl);
  return 0;
}

/* A value of vlen bytes: NULL is refused unless it is empty. */
static int check_bytes(kura_client *c, const void *p, size_t len, const char *what)
{
  if (!p && len)
    return kr_client_fail(c, KURA_EINVAL, "the %s is NULL with %zu bytes", what, len);
  return 0;
}

/* A call that names a key and nothing else. */
static int key_only(kura_client *c, enum kr_op op, const char *cache, const void *key,
                    size_t klen, kura_cb cb, void *udata)
{
  kr_request req;
  int rc = start_item(c, &req, op, cache, key, klen);
  return rc ? rc : submit(c, &req, cb, udata);
}

int kura_get(kura_client *c, const char *cache, const void *key, size_t klen,
             kura_cb cb, void *udata)
{
  return key_only(c, KR_OP_GET, cache, key, klen, cb, udata);
}

int kura_set(kura_client *c, const char *cache, const void *key, size_t klen,
             const void *val, size_t vlen, double ttl, kura_cb cb, void *udata)
{
  kr_request req;
  int rc = start_item(c, &req, KR_OP_SET, cache, key, klen);
  if (!rc)
    rc = check_bytes(c, val, vlen, "value");
  if (!rc)
    rc = ttl_ms(c, ttl, 1, &req.ttl_ms);
  req.val = val, req.vlen = vlen;
  return rc ? rc : submit(c, &req, cb, udata);
}

int kura_delete(kura_client *c, const char *cache, const void *key, size_t klen,
                kura_cb cb, void *udata)
{
  return key_only(c, KR_OP_DELETE, cache, key, klen, cb, udata);
}

int kura_increment(kura_client *c, const char *cache, const void *key, size_t klen,
                   int64_t amount, double ttl, kura_cb cb, void *udata)
{
  kr_request req;
  int rc = start_item(c, &req, KR_OP_INCREMENT, cache, key, klen);
  if (!rc)
    rc = ttl_ms(c, ttl, 1, &req.ttl_ms);
  req.amount = amount;
  return rc ? rc : submit(c, &req, cb, udata);
}

int kura_set_if(kura_client *c, const char *cache, const void *key, size_t klen,
                const void *val, size_t vlen, kura_set_cond cond,
                const void *cmp, size_t cmplen, double ttl, kura_cb cb, void *udata)
{
  kr_request req;
  int rc = start_item(c, &req, KR_OP_SET_IF, cache, key, klen);
  if (rc)
    return rc;
  if (cond < KURA_SET_IF_ABSENT || cond > KURA_SET_IF_ABSENT_OR_EQUAL)
    return kr_client_fail(c, KURA_EINVAL, "unknown set_if condition %d", (int)cond);
  if (cond == KURA_SET_IF_ABSENT || cond == KURA_SET_IF_PRESENT)
    cmp = NULL, cmplen = 0; /* ignored: not compared */
  if ((rc = check_bytes(c, val, vlen, "value")) || (rc = check_bytes(c, cmp, cmplen, "cmp")) ||
      (rc = ttl_ms(c, ttl, 1, &req.ttl_ms)))
    return rc;
  req.val = val, req.vlen = vlen;
  req.cond = cond;
  req.cmp = cmp, req.cmplen = cmplen;
  return submit(c, &req, cb, udata);
}

int kura_key_exists(kura_client *c, const char *cache, const void *key, size_t klen,
                    kura_cb cb, void *udata)
{
  return key_only(c, KR_OP_KEY_EXISTS, cache, key, klen, cb, udata);
}

int kura_item_get_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                      kura_cb cb, void *udata)
{
  return key_only(c, KR_OP_TTL_GET, cache, key, klen, cb, udata);
}

static int ttl_set(kura_client *c, const char *cache, const void *key, size_t klen,
                   double ttl, kura_ttl_mode mode, kura_cb cb, void *udata)
{
  kr_request req;
  int rc = start_item(c, &req, KR_OP_TTL_SET, cache, key, klen);
  if (!rc)
    rc = ttl_ms(c, ttl, 0, &req.ttl_ms);
  req.ttl_mode = mode;
  return rc ? rc : submit(c, &req, cb, udata);
}

int kura_update_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                    double ttl, kura_cb cb, void *udata)
{
  return ttl_set(c, cache, key, klen, ttl, KURA_TTL_UPDATE, cb, udata);
}

int kura_increase_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                      double ttl, kura_cb cb, void *udata)
{
  return ttl_set(c, cache, key, klen, ttl, KURA_TTL_INCREASE, cb, udata);
}

int kura_decrease_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                      double ttl, kura_cb cb, void *udata)
{
  return ttl_set(c, cache, key, klen, ttl, KURA_TTL_DECREASE, cb, udata);
}

/* --- batches ------------------------------------------------------------------- */

/* A batch request over n keys (and values when vals/vlens are given). */
static int start_batch(kura_client *c, kr_request *req, enum kr_op op, const char *cache,
                       size_t n, const void *const *keys, const size_t *klens,
                       const void *const *vals, const size_t *vlens)
{
  int rc = start(c, req, op, cache);
  if (rc)
    return rc;
  if (n && (!keys || !klens))
    return kr_client_fail(c, KURA_EINVAL, "a batch of %zu keys without keys or lengths", n);
  if (op == KR_OP_SET_BATCH && n && (!vals || !vlens))
    return kr_client_fail(c, KURA_EINVAL, "a batch of %zu items without values or lengths", n);
  for (size_t i = 0; i < n; i++) {
    if ((rc = check_bytes(c, keys[i], klens[i], "key")) ||
        (vals && (rc = check_bytes(c, vals[i], vlens[i], "value"))))
      return rc;
  }
  req->n = n;
  req->keys = keys, req->klens = klens;
  req->vals = vals, req->vlens = vlens;
  return 0;
}

int kura_keys_exist(kura_client *c, const char *cache, size_t n,
                    const void *const *keys, const size_t *klens, kura_cb cb, void *udata)
{
  kr_request req;
  int rc = start_batch(c, &req, KR_OP_KEYS_EXIST, cache, n, keys, klens, NULL, NULL);
  return rc ? rc : submit(c, &req, cb, udata);
}

int kura_get_batch(kura_client *c, const char *cache, size_t n,
                   const void *const *keys, const size_t *klens, kura_cb cb, void *udata)
{
  kr_request req;
  int rc = start_batch(c, &req, KR_OP_GET_BATCH, cache, n, keys, klens, NULL, NULL);
  return rc ? rc : submit(c, &req, cb, udata);
}

/* Submits req with its per-item TTLs in ms (the seconds of ttls converted;
 * 0, for an entry <= 0, is req's own TTL). */
static int submit_ttls(kura_client *c, kr_request *req, const double *ttls,
                       kura_cb cb, void *udata)
{
  uint64_t one[1];
  uint64_t *ms = req->n <= 1 ? one : malloc(req->n * sizeof *ms);
  if (!ms)
    return kr_client_fail(c, KURA_ENOMEM, "out of memory for %zu TTLs", req->n);
  int rc = 0;
  for (size_t i = 0; i < req->n && !rc; i++) {
    ms[i] = 0;
    rc = ttl_ms(c, ttls[i], 1, &ms[i]);
  }
  req->ttls = ms;
  if (!rc)
    rc = submit(c, req, cb, udata);
  if (ms != one)
    free(ms);
  return rc;
}

int kura_set_batch(kura_client *c, const char *cache, size_t n,
                   const void *const *keys, const size_t *klens,
                   const void *const *vals, const size_t *vlens,
                   const double *ttls, double ttl, kura_cb cb, void *udata)
{
  kr_request req;
  int rc = start_batch(c, &req, KR_OP_SET_BATCH, cache, n, keys, klens, vals, vlens);
  if (!rc)
    rc = ttl_ms(c, ttl, 1, &req.ttl_ms);
  if (rc)
    return rc;
  return ttls ? submit_ttls(c, &req, ttls, cb, udata) : submit(c, &req, cb, udata);
}

/* --- caches -------------------------------------------------------------------- */

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

int kura_list_caches(kura_client *c, kura_cb cb, void *udata)
{
  kr_request req;
  if (!c)
    return KURA_EINVAL;
  memset(&req, 0, sizeof req);
  req.op = KR_OP_LIST_CACHES;
  return submit(c, &req, cb, udata);
}
