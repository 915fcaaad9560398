/* Momento's HTTP API in kura serve (serve.h):
 *
 *   GET    /cache/{cache}?key=K | key_base64=B        200 the value | 404
 *   PUT    /cache/{cache}?key=..&ttl_seconds=S  (body: the value)  204
 *   DELETE /cache/{cache}?key=..                      204
 *
 * key is text (percent-decoded, '+' is a space, as in any query string);
 * key_base64 is base64 (URL-safe or standard, padding optional) for binary
 * keys. The token is the Authorization header or ?token=. Statuses as
 * Momento's HTTP API answers them: 400 a missing or malformed key or TTL
 * (or anything the client rejects as invalid), 401 a wrong token, 404 with
 * "Key not found" for a miss and "Cache not found: NAME" for a missing
 * cache (clients tell the two apart by the body), 405 another method, 413
 * a body over the size limit, 429 too many calls in flight, 503 / 504 when
 * the backend is down or late, 500 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/credential.h"
#include "core/serve/serve_int.h"
#include "kura_client.h"

enum { H_GET, H_PUT, H_DELETE, H_OTHER };

static const kr_h2s_header text_type = {"content-type", 12, "text/plain; charset=utf-8", 25};

void kr_serve_http_text(kr_serve_call *call, int status, const char *text)
{
  size_t n = strlen(text);
  uint8_t *body = malloc(n + 1);
  if (body)
    memcpy(body, text, n), body[n] = '\n';
  if (status >= 400)
    call->s->stats.errors++;
  kr_h2s_header allow = {"allow", 5, "GET, PUT, DELETE", 16};
  kr_h2s_header h[2] = {text_type, allow};
  kr_h2s_response res = {.status = status, .headers = h, .nheaders = status == 405 ? 2 : 1,
                         .body = body, .body_len = body ? n + 1 : 0};
  kr_serve_respond(call, &res);
}

static int http_status(int err)
{
  switch (err) {
  case KURA_EINVAL:
  case KURA_EBADREQ:
  case KURA_EPRECOND: return 400;
  case KURA_EAUTH: return 401;
  case KURA_EPERM: return 403;
  case KURA_ENOTFOUND: return 404;
  case KURA_ELIMIT:
  case KURA_ENOMEM: return 429;
  case KURA_EUNSUPPORTED: return 501;
  case KURA_ECONN:
  case KURA_EUNAVAIL:
  case KURA_ECANCELLED: return 503;
  case KURA_ETIMEOUT: return 504;
  default: return 500;
  }
}

static void http_error(kr_serve_call *call, int err, const char *msg)
{
  char text[400];
  if (err == KURA_ENOTFOUND) /* the words clients look for, then the detail */
    snprintf(text, sizeof text, "Cache not found: %s", msg ? msg : "");
  else
    snprintf(text, sizeof text, "%s", msg && *msg ? msg : kura_strerror(err));
  kr_serve_http_text(call, http_status(err), text);
}

static void http_value(kr_serve_call *call, const void *val, size_t vlen)
{
  if (!val) {
    kr_serve_http_text(call, 404, "Key not found");
    return;
  }
  uint8_t *body = malloc(vlen ? vlen : 1);
  if (!body) {
    kr_serve_http_text(call, 429, "kura serve: out of memory");
    return;
  }
  memcpy(body, val, vlen);
  static const kr_h2s_header h = {"content-type", 12, "application/octet-stream", 24};
  kr_h2s_response res = {.status = 200, .headers = &h, .nheaders = 1, .body = body,
                         .body_len = vlen};
  kr_serve_respond(call, &res);
}

static void http_result(kr_serve_call *call, const kr_request *req, const kr_result *res)
{
  if (res->err)
    http_error(call, res->err, res->msg);
  else if (call->method != H_GET)
    kr_serve_respond(call, &(kr_h2s_response){.status = 204});
  else if (res->outcome == KURA_HIT)
    http_value(call, res->vlen ? res->val : "", res->vlen);
  else if (call->s->on_miss)
    kr_serve_miss_join(call, req->cache, req->cache_len, req->key, req->klen);
  else
    http_value(call, NULL, 0);
}

static const kr_serve_kind http_kind = {http_result, http_value, http_error};

/* --- the request ------------------------------------------------------------------ */

static int hexval(char ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  ch = (char)(ch | 0x20);
  return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decodes [p, p+n) into out (room for n bytes); '+' is a space in
 * a query. Returns the length, or -1 for a malformed escape. */
static long pct_decode(const char *p, size_t n, char *out, int query)
{
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '%') {
      int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return -1;
      out[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else {
      out[o++] = query && p[i] == '+' ? ' ' : p[i];
    }
  }
  return (long)o;
}

/* What the query and path say, decoded into one buffer the caller frees. */
typedef struct hquery {
  char *mem;
  const char *cache, *key, *token, *ttl;
  size_t clen, klen, tlen, ttl_len;
  int has_key;
} hquery;

/* One name=value pair of the query. Returns 0, or 400 for a bad escape. */
static int query_pair(hquery *q, const char *p, size_t n, char **at)
{
  const char *eq = memchr(p, '=', n);
  size_t nl = eq ? (size_t)(eq - p) : n;
  const char *v = eq ? eq + 1 : p + n;
  size_t vl = (size_t)(p + n - v);
  char *out = *at;
  long len = pct_decode(v, vl, out, 1);
  if (len < 0)
    return 400;
  *at += len + 1;
  if (nl == 10 && memcmp(p, "key_base64", 10) == 0) {
    char *raw = *at;
    long k = kr_base64_decode(out, (size_t)len, (unsigned char *)raw, (size_t)len);
    if (k < 0)
      return 400;
    *at += k + 1;
    q->key = raw, q->klen = (size_t)k, q->has_key = 1;
  } else if (nl == 3 && memcmp(p, "key", 3) == 0 && !q->has_key) {
    q->key = out, q->klen = (size_t)len, q->has_key = 1;
  } else if (nl == 11 && memcmp(p, "ttl_seconds", 11) == 0) {
    q->ttl = out, q->ttl_len = (size_t)len;
  } else if (nl == 5 && memcmp(p, "token", 5) == 0) {
    q->token = out, q->tlen = (size_t)len;
  }
  return 0;
}

/* Parses "/cache/{cache}?query". 0, 404 (another path) or 400. */
static int parse_target(const kr_h2s_req *req, hquery *q)
{
  const char *p = req->path, *end = p + req->path_len;
  if (req->path_len < 8 || memcmp(p, "/cache/", 7) != 0)
    return 404;
  const char *qm = memchr(p, '?', req->path_len);
  const char *name = p + 7, *name_end = qm ? qm : end;
  if (name == name_end || memchr(name, '/', (size_t)(name_end - name)))
    return 404;
  if (!(q->mem = malloc(2 * req->path_len + 2)))
    return 429;
  char *at = q->mem;
  long cl = pct_decode(name, (size_t)(name_end - name), at, 0);
  if (cl < 0)
    return 400;
  q->cache = at, q->clen = (size_t)cl, at += cl + 1;
  for (const char *s = qm ? qm + 1 : end; s < end;) {
    const char *amp = memchr(s, '&', (size_t)(end - s));
    const char *e = amp ? amp : end;
    if (e > s && query_pair(q, s, (size_t)(e - s), &at))
      return 400;
    s = e + 1;
  }
  return 0;
}

/* ttl_seconds: a positive integer of seconds. */
static int parse_ttl(const hquery *q, uint64_t *ms)
{
  uint64_t v = 0;
  if (!q->ttl || q->ttl_len == 0 || q->ttl_len > 12)
    return -1;
  for (size_t i = 0; i < q->ttl_len; i++) {
    if (q->ttl[i] < '0' || q->ttl[i] > '9')
      return -1;
    v = v * 10 + (uint64_t)(q->ttl[i] - '0');
  }
  *ms = v * 1000;
  return v > 0 ? 0 : -1;
}

static int verb(const char *m)
{
  if (strcmp(m, "GET") == 0)
    return H_GET;
  if (strcmp(m, "PUT") == 0)
    return H_PUT;
  if (strcmp(m, "DELETE") == 0)
    return H_DELETE;
  return H_OTHER;
}

/* The checks; 0, or the call is answered. */
static int check(kr_serve_call *call, hquery *q, kr_request *r)
{
  kr_serve *s = call->s;
  kr_h2s_req *req = call->req;
  int st = parse_target(req, q);
  size_t al;
  const char *auth = kr_h2s_header_get(req, "authorization", &al);
  if (!auth)
    auth = q->token, al = q->tlen;
  const char *why = "Bad request: malformed path or query";
  if (st == 404)
    why = "Not found: the HTTP API serves /cache/{cache}?key=...";
  else if (!st && call->method == H_OTHER)
    st = 405, why = "Method not allowed: GET, PUT or DELETE";
  else if (!st && !kr_serve_authorized(s, auth, auth ? al : 0))
    st = 401, why = "Unauthorized: invalid or missing authorization";
  else if (!st && s->in_flight > s->max_calls)
    st = 429, why = "Too many requests: kura serve has too many calls in flight";
  else if (!st && (req->body_too_large || req->headers_too_large))
    st = 413, why = "Content too large";
  else if (!st && !q->has_key)
    st = 400, why = "Bad request: give the key as ?key= or ?key_base64=";
  else if (!st && call->method == H_PUT && parse_ttl(q, &r->ttl_ms))
    st = 400, why = "Bad request: ttl_seconds must be a positive integer";
  if (st)
    kr_serve_http_text(call, st, why);
  return st;
}

void kr_serve_http(kr_serve *s, kr_h2s_req *req)
{
  kr_serve_call *call = kr_serve_call_new(s, req, &http_kind, verb(req->method));
  if (!call) {
    kr_h2s_respond(req, &(kr_h2s_response){.status = 503});
    return;
  }
  hquery q = {0};
  kr_request r = {0};
  if (check(call, &q, &r) == 0) {
    static const enum kr_op ops[] = {[H_GET] = KR_OP_GET, [H_PUT] = KR_OP_SET,
                                     [H_DELETE] = KR_OP_DELETE};
    r.op = ops[call->method];
    r.cache = q.cache, r.cache_len = q.clen;
    r.key = q.key, r.klen = q.klen;
    r.val = req->body, r.vlen = req->body_len;
    kr_serve_submit(call, &r);
  }
  free(q.mem);
  kr_serve_call_unref(call);
}
