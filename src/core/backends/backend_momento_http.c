/* The momento-http backend: the item calls of docs/lua-api.md over Momento's HTTP
 * API, on the loop through core/net/http.c.
 *
 *   GET    {base}/cache/{cache}?key_base64={key}                 -> 200 value
 *   PUT    {base}/cache/{cache}?key_base64={key}&ttl_seconds={s} (body: value)
 *   DELETE {base}/cache/{cache}?key_base64={key}
 *
 * {base} is https://api.cache.<endpoint> from the credential, or the
 * momento_endpoint option: a URL ("http://127.0.0.1:9000", plaintext, for
 * emulators) is used as it is, a bare host name replaces the credential's
 * endpoint. The key is sent in the Authorization header as it is.
 *
 * Status codes (Momento's HTTP API documentation; tests/momento_http/
 * emulator.py answers the same way):
 *   2xx  success
 *   404  the body says which: "Cache not found" (any body that contains
 *        "cache not found", case-insensitive) -> NOT_FOUND_ERROR; anything
 *        else ("Key not found", or an empty body) is a miss: get -> nil,
 *        delete -> true
 *   400 BAD_REQUEST_ERROR, 401 AUTHENTICATION_ERROR, 403 PERMISSION_ERROR,
 *   413 / 414 / 429 LIMIT_EXCEEDED_ERROR, 500 INTERNAL_SERVER_ERROR,
 *   502 / 503 SERVER_UNAVAILABLE, 504 TIMEOUT_ERROR, others UNKNOWN_ERROR.
 * The client core retries the idempotent calls on the transient ones.
 *
 * What the HTTP API has no call for returns UNSUPPORTED_OPERATION_ERROR
 * naming the call: cache management, increment, the conditional sets and the
 * TTL calls. key_exists is a GET whose value is dropped; the batches run as
 * concurrent single calls (the first failure fails the batch). TTLs are whole
 * seconds in this API: a TTL is rounded up to the next second. The key
 * travels base64-encoded in the URL, so very long keys (beyond ~48 KiB with
 * the emulator, less behind many proxies) meet the server's request-line
 * limit: 414, LIMIT_EXCEEDED_ERROR.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backends/defer.h"
#include "core/client.h"
#include "core/credential.h"
#include "core/net/http.h"
#include "core/wipe.h"

/* Connections per host: HTTP/2 multiplexes on one; over HTTP/1.1 (local
 * emulators) more transfers queue inside curl. */
#define MAX_HOST_CONNECTIONS 16

typedef struct mbe mbe;
typedef struct mop mop;

typedef struct msub {
  mop *op;
  size_t i;                /* index in the request's batch (0 for single calls) */
} msub;

struct mop {
  mbe *b;
  const kr_request *req;   /* the client's copy: valid until we complete (not after) */
  size_t n;                /* req->n, for freeing after the completion */
  kr_client_cb cb;
  void *udata;
  size_t remaining;        /* HTTP calls not yet answered */
  int err;                 /* the first failure */
  char msg[256];
  uint8_t *flags;          /* keys_exist */
  uint8_t *skip;           /* set_batch: items a later one of the same key supersedes */
  void **vals;             /* get_batch: copies of the hits */
  size_t *vlens;
  kr_deferred deferred;    /* in mbe.defer */
  msub subs[];             /* one per HTTP call */
};

struct mbe {
  kr_client *client;
  kr_http *http;
  char *base;              /* no trailing '/' */
  char *auth;              /* "Authorization: <secret>", or NULL; wiped on free */
  size_t auth_len;
  uint64_t timeout_ms;
  kr_defer defer;          /* completes calls that need no HTTP call */
  int closing, http_closed, defer_closed;
};

/* --- completing ------------------------------------------------------------- */

static void op_free(mop *o)
{
  if (o->vals)
    for (size_t i = 0; i < o->n; i++)
      free(o->vals[i]);
  free(o->vals);
  free(o->vlens);
  free(o->flags);
  free(o->skip);
  free(o);
}

/* Completes a batch (or an empty / failed call) from what o gathered. */
static void op_complete(mop *o)
{
  kr_result res = {.err = o->err, .msg = o->err ? o->msg : NULL, .outcome = KURA_HIT};
  if (!o->err) {
    res.count = o->req->n;
    res.flags = o->flags;
    res.vals = (const void *const *)o->vals;
    res.vlens = o->vlens;
  }
  o->cb(o->udata, o->req, &res);
  op_free(o);
}

static void finish_deferred(kr_deferred *d)
{
  op_complete(KR_DEFERRED_OF(d, mop, deferred));
}

static void defer(mop *o)
{
  kr_defer_push(&o->b->defer, &o->deferred);
}

static void set_err(mop *o, int err, const char *fmt, const char *a, const char *b2)
{
  if (o->err)
    return;
  o->err = err;
  snprintf(o->msg, sizeof o->msg, fmt, a, b2);
}

/* --- status codes ----------------------------------------------------------- */

static int contains_ci(const char *s, size_t n, const char *needle)
{
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++) {
    size_t j = 0;
    while (j < m && tolower((unsigned char)s[i + j]) == needle[j])
      j++;
    if (j == m)
      return 1;
  }
  return 0;
}

static int status_error(long status)
{
  switch (status) {
  case 400: return KURA_EBADREQ;
  case 401: return KURA_EAUTH;
  case 403: return KURA_EPERM;
  case 413:
  case 414:
  case 429: return KURA_ELIMIT;
  case 500: return KURA_EINTERNAL;
  case 502:
  case 503: return KURA_EUNAVAIL;
  case 504: return KURA_ETIMEOUT;
  default: return KURA_EUNKNOWN;
  }
}

/* The printable start of a response body, for messages. */
static void body_excerpt(char *out, size_t cap, const char *body, size_t len)
{
  size_t o = 0;
  for (size_t i = 0; i < len && o + 1 < cap && i < 120; i++)
    out[o++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
  out[o] = '\0';
}


/* Classifies an answer: 0 success, 1 a miss (404 for the item), or a
 * KURA_E* code with o->msg set. */
static int classify(mop *o, const kr_http_response *res)
{
  char cache[80], detail[128];
  snprintf(cache, sizeof cache, "%.*s", (int)(o->req->cache_len < 64 ? o->req->cache_len : 64),
           o->req->cache);
  if (res->err) {
    set_err(o, res->err, "%s: %s", kr_call_name(o->req), res->msg);
    return res->err;
  }
  if (res->status >= 200 && res->status < 300)
    return 0;
  if (res->status == 404 && !contains_ci(res->body, res->body_len, "cache not found"))
    return 1;
  if (res->status == 404) {
    set_err(o, KURA_ENOTFOUND, "%s: cache '%s' does not exist", kr_call_name(o->req), cache);
    return KURA_ENOTFOUND;
  }
  int err = status_error(res->status);
  if (!o->err) {
    body_excerpt(detail, sizeof detail, res->body, res->body_len);
    o->err = err;
    snprintf(o->msg, sizeof o->msg, "%s on cache '%s': HTTP %ld from Momento's HTTP API%s%s",
             kr_call_name(o->req), cache, res->status, detail[0] ? ": " : "", detail);
  }
  return err;
}

/* --- answers ---------------------------------------------------------------- */

/* A single get / key_exists / set / delete: completes at once, the value
 * pointing into the response (valid during the callback). */
static void on_single(void *udata, const kr_http_response *res)
{
  msub *s = udata;
  mop *o = s->op;
  int c = classify(o, res);
  kr_result r = {.err = c < 0 ? o->err : 0, .outcome = KURA_HIT};
  if (r.err) {
    r.msg = o->msg;
  } else if (c == 1) {
    r.outcome = o->req->op == KR_OP_DELETE ? KURA_HIT : KURA_MISS;
  } else if (o->req->op == KR_OP_GET) {
    r.val = res->body;
    r.vlen = res->body_len;
  }
  o->cb(o->udata, o->req, &r);
  op_free(o);
}

/* One call of a batch: records its part, completes the batch after the last. */
static void on_batch_part(void *udata, const kr_http_response *res)
{
  msub *s = udata;
  mop *o = s->op;
  int c = classify(o, res);
  if (c == 0 && o->flags)
    o->flags[s->i] = 1;
  if (c == 0 && o->vals && !o->err) {
    o->vals[s->i] = malloc(res->body_len ? res->body_len : 1);
    if (!o->vals[s->i])
      set_err(o, KURA_ENOMEM, "%s%s", "get_batch: out of memory", "");
    else
      memcpy(o->vals[s->i], res->body, res->body_len), o->vlens[s->i] = res->body_len;
  }
  if (--o->remaining == 0)
    op_complete(o);
}

/* --- requests --------------------------------------------------------------- */

static size_t pct_encode(char *out, const void *in, size_t len)
{
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p = in;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = p[i];
    if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out[o++] = (char)ch;
    } else {
      out[o++] = '%', out[o++] = hex[ch >> 4], out[o++] = hex[ch & 15];
    }
  }
  return o;
}

/* {base}/cache/{cache}?key_base64={key}[&ttl_seconds={s}] in a new buffer. */
static char *item_url(mbe *b, const kr_request *r, const void *key, size_t klen, uint64_t ttl_ms)
{
  size_t blen = strlen(b->base), b64cap = 4 * ((klen + 2) / 3) + 1;
  char *url = malloc(blen + 3 * r->cache_len + 3 * b64cap + 64);
  char *b64 = malloc(b64cap);
  if (!url || !b64) {
    free(url), free(b64);
    return NULL;
  }
  size_t n = kr_base64_encode(key, klen, b64), o = 0;
  memcpy(url, b->base, blen), o = blen;
  memcpy(url + o, "/cache/", 7), o += 7;
  o += pct_encode(url + o, r->cache, r->cache_len);
  memcpy(url + o, "?key_base64=", 12), o += 12;
  o += pct_encode(url + o, b64, n);
  if (ttl_ms)
    o += (size_t)sprintf(url + o, "&ttl_seconds=%llu", (unsigned long long)((ttl_ms + 999) / 1000));
  url[o] = '\0';
  free(b64);
  return url;
}

/* Sends one HTTP call for item i (or the single item when the request is no
 * batch). Returns 0 or a code (the callback is then not called). */
static int send_call(mop *o, msub *s, const char *method, const void *key, size_t klen,
                     const void *val, size_t vlen, uint64_t ttl_ms, kr_http_cb cb)
{
  mbe *b = o->b;
  const char *headers[2];
  size_t nh = 0;
  if (b->auth)
    headers[nh++] = b->auth;
  if (val)
    headers[nh++] = "Content-Type: application/octet-stream";
  char *url = item_url(b, o->req, key, klen, val ? ttl_ms : 0);
  if (!url)
    return KURA_ENOMEM;
  kr_http_request hr = {.method = method, .url = url, .headers = headers, .nheaders = nh,
                        .body = val, .body_len = vlen, .timeout_ms = b->timeout_ms};
  int rc = kr_http_submit(b->http, &hr, cb, s);
  if (rc)
    set_err(o, rc, "%s: %s", kr_call_name(o->req), kr_http_errstr(b->http));
  free(url);
  return rc;
}

static mop *op_new(mbe *b, const kr_request *req, kr_client_cb cb, void *udata, size_t nsubs)
{
  mop *o = calloc(1, sizeof *o + nsubs * sizeof(msub));
  if (!o)
    return NULL;
  o->b = b, o->req = req, o->n = req->n, o->cb = cb, o->udata = udata;
  for (size_t i = 0; i < nsubs; i++)
    o->subs[i].op = o, o->subs[i].i = i;
  return o;
}

static void submit_single(mbe *b, mop *o)
{
  const kr_request *r = o->req;
  int rc;
  if (r->op == KR_OP_SET)
    rc = send_call(o, &o->subs[0], "PUT", r->key, r->klen, r->val ? r->val : "", r->vlen,
                   r->ttl_ms, on_single);
  else
    rc = send_call(o, &o->subs[0], r->op == KR_OP_DELETE ? "DELETE" : "GET", r->key, r->klen,
                   NULL, 0, 0, on_single);
  if (rc)
    defer(o);
  (void)b;
}

static int batch_arrays(mop *o)
{
  size_t n = o->req->n ? o->req->n : 1;
  if (o->req->op == KR_OP_KEYS_EXIST)
    return (o->flags = calloc(n, 1)) ? 0 : KURA_ENOMEM;
  if (o->req->op == KR_OP_GET_BATCH) {
    o->vals = calloc(n, sizeof *o->vals);
    o->vlens = calloc(n, sizeof *o->vlens);
    return o->vals && o->vlens ? 0 : KURA_ENOMEM;
  }
  return (o->skip = calloc(n, 1)) ? 0 : KURA_ENOMEM; /* set_batch */
}

/* The answer to an empty batch's probe: only whether the cache exists
 * counts (a missing item is fine). */
static void on_probe(void *udata, const kr_http_response *res)
{
  msub *s = udata;
  mop *o = s->op;
  classify(o, res);
  op_complete(o);
}

static uint64_t key_hash(const void *key, size_t len)
{
  const unsigned char *p = key;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/* set_batch's items whose key comes again later in the batch: 1 in
 * superseded[i]. Each item is its own PUT and PUTs run concurrently, so
 * the server may take two of one key in either order; sending only the
 * last gives the state of setting them one after the other (the last
 * wins, as on every backend). 0, or -1 without memory. */
static int superseded_items(const kr_request *r, uint8_t *superseded)
{
  size_t cap = 16;
  while (cap < 2 * r->n)
    cap *= 2;
  size_t *slot = malloc(cap * sizeof *slot); /* index + 1 of the last seen; 0: empty */
  if (!slot)
    return -1;
  memset(slot, 0, cap * sizeof *slot);
  for (size_t i = r->n; i-- > 0;) { /* from the end: the first seen is the last given */
    size_t at = (size_t)key_hash(r->keys[i], r->klens[i]) & (cap - 1);
    for (; slot[at]; at = (at + 1) & (cap - 1)) {
      size_t j = slot[at] - 1;
      if (r->klens[j] == r->klens[i] && memcmp(r->keys[j], r->keys[i], r->klens[i]) == 0)
        break;
    }
    superseded[i] = slot[at] != 0;
    if (!slot[at])
      slot[at] = i + 1;
  }
  free(slot);
  return 0;
}

static void submit_batch(mop *o)
{
  const kr_request *r = o->req;
  if (r->n == 0) {
    /* Nothing to read or write, but a missing cache is NOT_FOUND_ERROR as on
     * every backend: a GET of an arbitrary key asks (the HTTP API has no
     * other way to name a cache). */
    if (send_call(o, &o->subs[0], "GET", "kura-probe", 10, NULL, 0, 0, on_probe))
      defer(o);
    return;
  }
  if (batch_arrays(o) || (o->skip && superseded_items(r, o->skip))) {
    set_err(o, KURA_ENOMEM, "%s: %s", kr_call_name(r), "out of memory");
    defer(o);
    return;
  }
  o->remaining = 1; /* held until every call is sent */
  for (size_t i = 0; i < r->n && !o->err; i++) {
    int rc;
    if (o->skip && o->skip[i])
      continue;
    o->remaining++;
    if (r->op == KR_OP_SET_BATCH)
      rc = send_call(o, &o->subs[i], "PUT", r->keys[i], r->klens[i],
                     r->vals[i] ? r->vals[i] : "", r->vlens[i],
                     r->ttls && r->ttls[i] ? r->ttls[i] : r->ttl_ms, on_batch_part);
    else
      rc = send_call(o, &o->subs[i], "GET", r->keys[i], r->klens[i], NULL, 0, 0,
                     on_batch_part);
    if (rc)
      o->remaining--;
  }
  if (--o->remaining == 0)
    defer(o); /* nothing in flight (empty batch or all failed): complete from the loop */
}

static void mh_submit(void *state, const kr_request *req, kr_client_cb cb, void *udata)
{
  mbe *b = state;
  int batch = req->op == KR_OP_KEYS_EXIST || req->op == KR_OP_GET_BATCH ||
              req->op == KR_OP_SET_BATCH;
  mop *o = op_new(b, req, cb, udata, batch && req->n ? req->n : 1);
  if (!o) {
    kr_result res = {.err = KURA_ENOMEM, .msg = "out of memory"};
    cb(udata, req, &res); /* no memory even to defer: the one inline failure */
    return;
  }
  if (b->closing) {
    set_err(o, KURA_ECANCELLED, "%s: %s", kr_call_name(req), "the client is closed");
    defer(o);
  } else if (batch) {
    submit_batch(o);
  } else {
    submit_single(b, o); /* get, set, delete, key_exists: the client refuses the rest */
  }
}

/* --- open and close --------------------------------------------------------- */

static int set_base(mbe *b, const kr_client_config *cfg, const kr_credential *cred)
{
  char buf[512];
  const char *ep = cfg->momento_endpoint;
  if (ep && *ep && strstr(ep, "://"))
    snprintf(buf, sizeof buf, "%s", ep);
  else if (ep && *ep)
    snprintf(buf, sizeof buf, "https://api.cache.%s", ep);
  else if (!cred || kr_credential_http_base(cred, buf, sizeof buf))
    return kr_client_fail(b->client, KURA_EINVAL, "momento-http: " KR_CRED_NO_ENDPOINT);
  size_t n = strlen(buf);
  while (n && buf[n - 1] == '/')
    buf[--n] = '\0';
  char msg[160];
  if (kr_http_check_url(buf, msg, sizeof msg))
    return kr_client_fail(b->client, KURA_EINVAL, "momento-http: endpoint: %s", msg);
  b->base = strdup(buf);
  return b->base ? 0 : KURA_ENOMEM;
}

static int set_auth(mbe *b, const kr_credential *cred)
{
  b->auth_len = cred->secret_len + sizeof "Authorization: ";
  b->auth = malloc(b->auth_len);
  if (!b->auth)
    return KURA_ENOMEM;
  snprintf(b->auth, b->auth_len, "Authorization: %s", cred->secret);
  return 0;
}

static void be_free(mbe *b)
{
  kr_client *c = b->client;
  kr_wipe_free(b->auth, b->auth_len);
  free(b->base);
  free(b);
  if (c)
    kr_client_backend_closed(c);
}

static int setup(mbe *b, const kr_client_config *cfg)
{
  kr_credential cred;
  char err[256];
  int none = kr_credential_open("momento-http", cfg->credential, cfg->credential_len,
                                cfg->momento_endpoint, &cred, err, sizeof err);
  if (none < 0)
    return kr_client_fail(b->client, none, "%s", err);
  int rc = set_base(b, cfg, none ? NULL : &cred);
  if (!rc && !none)
    rc = set_auth(b, &cred);
  if (!none)
    kr_credential_free(&cred);
  return rc;
}

static int mh_open(kr_client *c, const kr_client_config *cfg, void **state)
{
  mbe *b = calloc(1, sizeof *b);
  if (!b)
    return KURA_ENOMEM;
  b->client = c;
  b->timeout_ms = kr_client_timeout_ms(c);
  int rc = setup(b, cfg);
  kr_http_config hc = {.max_host_connections = MAX_HOST_CONNECTIONS, .max_active = 128};
  if (!rc && (rc = kr_http_new(kr_client_loop(c), &hc, &b->http)) != 0)
    kr_client_fail(c, rc, "momento-http: cannot start the HTTP client");
  if (rc) {
    b->client = NULL; /* open failed: the client does not expect a close */
    be_free(b);
    return rc;
  }
  kr_defer_init(&b->defer, kr_client_loop(c), finish_deferred);
  *state = b;
  return 0;
}

static void maybe_done(mbe *b)
{
  if (b->http_closed && b->defer_closed)
    be_free(b);
}

static void on_http_closed(void *ud)
{
  mbe *b = ud;
  b->http_closed = 1;
  maybe_done(b);
}

static void cancel_deferred(kr_deferred *d)
{
  mop *o = KR_DEFERRED_OF(d, mop, deferred);
  set_err(o, KURA_ECANCELLED, "%s: %s", kr_call_name(o->req), "the client is closed");
}

static void on_defer_closed(void *ud)
{
  mbe *b = ud;
  b->defer_closed = 1;
  maybe_done(b);
}

static void mh_close(void *state)
{
  mbe *b = state;
  b->closing = 1;
  /* Cancels what is in flight: each call completes with KURA_ECANCELLED. */
  kr_http_close(b->http, on_http_closed, b);
  kr_defer_close(&b->defer, cancel_deferred, on_defer_closed, b);
}

const kr_backend_ops kr_backend_momento_http_ops = {
  .name = "momento-http",
  .supports = KR_OP_BIT(KR_OP_GET) | KR_OP_BIT(KR_OP_SET) | KR_OP_BIT(KR_OP_DELETE) |
              KR_OP_BIT(KR_OP_KEY_EXISTS) | KR_OP_BIT(KR_OP_KEYS_EXIST) |
              KR_OP_BIT(KR_OP_GET_BATCH) | KR_OP_BIT(KR_OP_SET_BATCH),
  .lacks = "Momento's HTTP API has get, set, delete and key_exists only (and batches "
           "of them); the gRPC backend 'momento' has every call",
  .flags = 0,
  .open = mh_open,
  .submit = mh_submit,
  .close = mh_close,
};
