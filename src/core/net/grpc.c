/* gRPC calls over core/net/http.c (see grpc.h).
 *
 * Each call is one HTTP/2 POST carried by the channel's kr_http: the request
 * message framed as gRPC wants it (a compressed flag byte, a 4-byte
 * big-endian length, the bytes), the headers content-type: application/grpc,
 * te: trailers and grpc-timeout, and the channel's and the call's metadata.
 * http.c buffers the answer: the body holds the framed response messages;
 * the header block holds the response headers followed by the trailers, so
 * the last grpc-status in it is the call's status whether the server sent
 * trailers or a trailers-only answer. A transport failure (no status at all)
 * keeps http.c's code: KURA_ECONN for a dropped connection, KURA_ETIMEOUT
 * when the deadline passed.
 *
 * Connections are renewed every ROTATE_CALLS calls (TLS targets). libcurl
 * 7.88 (Debian 12's) ends every finished HTTP/2 stream with RST_STREAM
 * (STREAM_CLOSED), and servers built on nghttp2 1.57 or later count those
 * against their rapid-reset limit (CVE-2023-44487): after about 1,000
 * streams they refuse new ones and the connection dies. Seen here with
 * grpc-js (node 20) and with the curl tool alone. curl then re-sends, on a
 * new connection, the requests of the dead one that had no answer yet, which
 * duplicated increments. So after ROTATE_CALLS calls the channel starts a new
 * kr_http (a new connection pool) for the calls that follow, and closes the
 * old one once its calls have all completed. The price, per ROTATE_CALLS
 * calls: a new multi handle and a full TLS handshake (likely a reload of
 * the CA bundle too: libcurl caches it per multi handle; not measured
 * apart); at 900 calls it is within the noise of
 * scripts/bench/momento.sh --tls (~87 us of CPU per call). Plaintext targets
 * on libcurl < 8 open a connection per call anyway (http.c), so they do not
 * rotate.
 */
#include "core/net/grpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/net/http.h"
#include "core/wipe.h"

#define DEFAULT_MAX_CONNECTIONS 4
#define MAX_HEADERS 24
#define ROTATE_CALLS 900           /* calls per connection pool (TLS): under
                                      nghttp2's burst of 1,000 resets */
#define MAX_RETIRED 8              /* old pools still finishing their calls */

typedef struct gcall gcall;

struct kr_grpc {
  kr_http *http;             /* the pool new calls go to */
  uv_loop_t *loop;
  kr_http_config hc;
  uint32_t ncalls;           /* calls submitted to http */
  kr_http *retired[MAX_RETIRED]; /* older pools, closed once idle */
  size_t nretired;
  int nopen;                 /* pools not closed yet (closing included) */
  char *target;              /* no trailing '/' */
  int plaintext;             /* h2c with prior knowledge */
  int closing;
  char **meta;               /* the channel's metadata lines */
  size_t nmeta;
  void (*closed)(void *ud);
  void *closed_ud;
  char errstr[256];
};

struct gcall {
  kr_grpc *g;
  kr_grpc_cb cb;
  void *udata;
};

static void on_pool_closed(void *ud);

/* Closes the retired pools whose calls have all completed. */
static void reap(kr_grpc *g)
{
  for (size_t i = 0; i < g->nretired;) {
    if (kr_http_pending(g->retired[i]) == 0) {
      kr_http_close(g->retired[i], on_pool_closed, g);
      g->retired[i] = g->retired[--g->nretired];
    } else {
      i++;
    }
  }
}

/* A new pool for the calls to come; the current one retires. */
static void rotate(kr_grpc *g)
{
  kr_http *h;
  if (g->nretired == MAX_RETIRED || kr_http_new(g->loop, &g->hc, &h) != 0)
    return; /* the current pool goes on; a later call tries again */
  g->nopen++;
  g->retired[g->nretired++] = g->http;
  g->http = h;
  g->ncalls = 0;
  reap(g);
}

/* --- statuses -------------------------------------------------------------- */

static const char *const status_names[] = {
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
  "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
  "UNAUTHENTICATED"};

const char *kr_grpc_status_name(int status)
{
  if (status >= 0 && status < (int)(sizeof status_names / sizeof status_names[0]))
    return status_names[status];
  return "UNKNOWN";
}

/* As Momento's SDKs map them (the JS SDK's cache-service-error-mapper). */
int kr_grpc_status_error(int status)
{
  switch (status) {
  case KR_GRPC_OK: return 0;
  case KR_GRPC_CANCELLED: return KURA_ECANCELLED;
  case KR_GRPC_INVALID_ARGUMENT: return KURA_EINVAL;
  case KR_GRPC_DEADLINE_EXCEEDED: return KURA_ETIMEOUT;
  case KR_GRPC_NOT_FOUND: return KURA_ENOTFOUND;
  case KR_GRPC_ALREADY_EXISTS: return KURA_EEXIST;
  case KR_GRPC_PERMISSION_DENIED: return KURA_EPERM;
  case KR_GRPC_RESOURCE_EXHAUSTED: return KURA_ELIMIT;
  case KR_GRPC_FAILED_PRECONDITION: return KURA_EPRECOND;
  case KR_GRPC_ABORTED:
  case KR_GRPC_INTERNAL:
  case KR_GRPC_DATA_LOSS: return KURA_EINTERNAL;
  case KR_GRPC_OUT_OF_RANGE:
  case KR_GRPC_UNIMPLEMENTED: return KURA_EBADREQ;
  case KR_GRPC_UNAVAILABLE: return KURA_EUNAVAIL;
  case KR_GRPC_UNAUTHENTICATED: return KURA_EAUTH;
  default: return KURA_EUNKNOWN;
  }
}

/* gRPC's mapping of an HTTP status that came without a grpc-status. */
static int http_to_status(long http)
{
  switch (http) {
  case 400: return KR_GRPC_INTERNAL;
  case 401: return KR_GRPC_UNAUTHENTICATED;
  case 403: return KR_GRPC_PERMISSION_DENIED;
  case 404: return KR_GRPC_UNIMPLEMENTED;
  case 429:
  case 502:
  case 503:
  case 504: return KR_GRPC_UNAVAILABLE;
  default: return KR_GRPC_UNKNOWN;
  }
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

size_t kr_grpc_decode_message(const char *in, size_t len, char *out, size_t cap)
{
  size_t o = 0;
  if (!cap)
    return 0;
  for (size_t i = 0; i < len && o + 1 < cap; i++) {
    unsigned char ch = (unsigned char)in[i];
    int hi, lo;
    if (ch == '%' && i + 2 < len && (hi = hexval(in[i + 1])) >= 0 &&
        (lo = hexval(in[i + 2])) >= 0) {
      ch = (unsigned char)(hi << 4 | lo);
      i += 2;
    }
    out[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
  }
  out[o] = '\0';
  return o;
}

/* --- answers --------------------------------------------------------------- */

typedef struct trailer {
  int status;                /* last grpc-status, -1: none */
  const char *msg;           /* last grpc-message */
  size_t msg_len;
} trailer;

static void on_trailer(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
  trailer *t = ud;
  if (nlen == 11 && strncasecmp(name, "grpc-status", 11) == 0) {
    int s = 0;
    for (size_t i = 0; i < vlen && i < 6; i++)
      s = (value[i] >= '0' && value[i] <= '9') ? s * 10 + (value[i] - '0') : KR_GRPC_UNKNOWN;
    t->status = vlen ? s : KR_GRPC_UNKNOWN;
  } else if (nlen == 12 && strncasecmp(name, "grpc-message", 12) == 0) {
    t->msg = value, t->msg_len = vlen;
  }
}

/* Splits the body into messages: the count, or -1 for a malformed or
 * compressed frame. With msgs NULL it only counts. */
static long split_frames(const uint8_t *p, size_t len, const uint8_t **msgs, size_t *lens)
{
  size_t off = 0;
  long n = 0;
  while (off < len) {
    if (len - off < 5 || p[off] != 0)
      return -1;
    size_t m = (size_t)p[off + 1] << 24 | (size_t)p[off + 2] << 16 |
               (size_t)p[off + 3] << 8 | (size_t)p[off + 4];
    if (m > len - off - 5)
      return -1;
    if (msgs)
      msgs[n] = p + off + 5, lens[n] = m;
    n++;
    off += 5 + m;
  }
  return n;
}

static void deliver_ok(gcall *c, const kr_http_response *res, kr_grpc_reply *r)
{
  const uint8_t *body = (const uint8_t *)res->body;
  long n = split_frames(body, res->body_len, NULL, NULL);
  if (n < 0) {
    r->err = KURA_EINTERNAL, r->status = KR_GRPC_INTERNAL;
    r->msg = "malformed or compressed gRPC message in the response";
    c->cb(c->udata, r);
    return;
  }
  const uint8_t **msgs = malloc((size_t)(n ? n : 1) * sizeof *msgs);
  size_t *lens = malloc((size_t)(n ? n : 1) * sizeof *lens);
  if (!msgs || !lens) {
    r->err = KURA_ENOMEM, r->msg = "out of memory";
  } else {
    split_frames(body, res->body_len, msgs, lens);
    r->nmsgs = (size_t)n, r->msgs = msgs, r->lens = lens;
  }
  c->cb(c->udata, r);
  free(msgs);
  free(lens);
}

/* A 200 without grpc-status. Servers always send one; what happens is that
 * the trailers are lost on the way: libcurl 7.88 (with nghttp2) drops an
 * HTTP/2 header block that holds a field over 64 KiB encoded, such as a very
 * long grpc-message, and still reports the transfer as complete. The real
 * status cannot be known then: the call fails as INTERNAL (its outcome
 * unknown), saying so rather than blaming the server. */
#define LOST_STATUS                                                              \
  "the answer's status never arrived: its trailers were lost on the way (the " \
  "HTTP/2 layer drops a header field over 64 KiB, such as a very long grpc-message)"

/* The answer of an HTTP exchange that completed: status and messages. */
static void deliver_answer(gcall *c, const kr_http_response *res)
{
  kr_grpc_reply r = {.status = -1};
  char msg[256];
  trailer t = {.status = -1};
  kr_http_headers_each(res->headers, res->headers_len, on_trailer, &t);
  if (t.status < 0 && res->status != 200)
    t.status = http_to_status(res->status);
  else if (t.status < 0) /* see LOST_STATUS */
    t.status = KR_GRPC_INTERNAL, t.msg = LOST_STATUS, t.msg_len = sizeof LOST_STATUS - 1;
  r.status = t.status;
  r.err = kr_grpc_status_error(t.status);
  if (!r.err) {
    deliver_ok(c, res, &r);
    return;
  }
  if (t.msg)
    kr_grpc_decode_message(t.msg, t.msg_len, msg, sizeof msg);
  else
    snprintf(msg, sizeof msg, "HTTP status %ld", res->status);
  r.msg = msg;
  c->cb(c->udata, &r);
}

/* A transport failure: no gRPC status. Anything but a deadline, a close or
 * a local limit means the connection failed (a plaintext peer that is no
 * HTTP/2 server makes curl report odd codes such as "HTTP/0.9"). */
static void deliver_failure(gcall *c, int err, const char *why, int unsent)
{
  if (err != KURA_ETIMEOUT && err != KURA_ECANCELLED && err != KURA_ENOMEM && err != KURA_ELIMIT)
    err = KURA_ECONN;
  kr_grpc_reply r = {.err = err, .status = -1, .msg = why, .unsent = unsent};
  c->cb(c->udata, &r);
}

static void on_http_done(void *udata, const kr_http_response *res)
{
  gcall *c = udata;
  kr_grpc *g = c->g;
  if (res->err)
    deliver_failure(c, res->err, res->msg, res->unsent);
  else
    deliver_answer(c, res);
  free(c);
  if (g->nretired && !g->closing)
    reap(g);
}

/* --- calls ----------------------------------------------------------------- */

static void fmt_timeout(char *out, size_t cap, uint64_t ms)
{
  if (ms < 100000000u) /* at most 8 digits, as the spec wants */
    snprintf(out, cap, "grpc-timeout: %llum", (unsigned long long)ms);
  else
    snprintf(out, cap, "grpc-timeout: %lluS", (unsigned long long)(ms / 1000 > 99999999u
                                                                    ? 99999999u : ms / 1000));
}

static int fail(kr_grpc *g, int err, const char *what)
{
  snprintf(g->errstr, sizeof g->errstr, "%s", what);
  return err;
}

/* The request message with gRPC's 5-byte prefix: flag 0 (not compressed)
 * and the length, big-endian. */
static uint8_t *frame_message(const kr_grpc_call *call)
{
  uint8_t *f = malloc(call->len + 5);
  if (!f)
    return NULL;
  f[0] = 0;
  f[1] = (uint8_t)(call->len >> 24), f[2] = (uint8_t)(call->len >> 16);
  f[3] = (uint8_t)(call->len >> 8), f[4] = (uint8_t)call->len;
  if (call->len)
    memcpy(f + 5, call->msg, call->len);
  return f;
}

/* Plaintext calls go with prior knowledge. (http.c gives each its own
 * connection on libcurl < 8, which breaks reused prior-knowledge
 * connections; TLS connections multiplex everywhere.) */
int kr_grpc_submit(kr_grpc *g, const kr_grpc_call *call, kr_grpc_cb cb, void *udata)
{
  const char *headers[MAX_HEADERS];
  char tmo[48], url[512];
  size_t nh = 0;
  if (g->closing)
    return fail(g, KURA_ECANCELLED, "the gRPC channel is closed");
  if (g->nmeta + call->nmetadata + 3 > MAX_HEADERS)
    return fail(g, KURA_EINVAL, "too much metadata");
  if ((size_t)snprintf(url, sizeof url, "%s%s", g->target, call->method) >= sizeof url)
    return fail(g, KURA_EINVAL, "the method name is too long");
  if (call->len > UINT32_MAX - 5)
    return fail(g, KURA_ELIMIT, "the request message is over 4 GiB");
  headers[nh++] = "Content-Type: application/grpc";
  headers[nh++] = "TE: trailers";
  if (call->timeout_ms) {
    fmt_timeout(tmo, sizeof tmo, call->timeout_ms);
    headers[nh++] = tmo;
  }
  for (size_t i = 0; i < g->nmeta; i++)
    headers[nh++] = g->meta[i];
  for (size_t i = 0; i < call->nmetadata; i++)
    headers[nh++] = call->metadata[i];
  uint8_t *frame = frame_message(call);
  gcall *c = malloc(sizeof *c);
  if (!frame || !c) {
    free(frame), free(c);
    return fail(g, KURA_ENOMEM, "out of memory");
  }
  c->g = g, c->cb = cb, c->udata = udata;
  if (!g->plaintext && ++g->ncalls > ROTATE_CALLS)
    rotate(g);
  kr_http_request hr = {.method = "POST", .url = url, .headers = headers, .nheaders = nh,
                        .body = frame, .body_len = call->len + 5,
                        .timeout_ms = call->timeout_ms, .max_body = call->max_response,
                        .h2_prior_knowledge = g->plaintext};
  int rc = kr_http_submit(g->http, &hr, on_http_done, c); /* copies the body */
  free(frame);
  if (rc) {
    free(c);
    return fail(g, rc, kr_http_errstr(g->http));
  }
  return 0;
}

/* --- channels -------------------------------------------------------------- */

static void grpc_free(kr_grpc *g)
{
  for (size_t i = 0; i < g->nmeta; i++) /* may hold the API key */
    kr_wipe_free(g->meta[i], g->meta[i] ? strlen(g->meta[i]) : 0);
  free(g->meta);
  free(g->target);
  free(g);
}

static int copy_config(kr_grpc *g, const kr_grpc_config *cfg)
{
  size_t n = strlen(cfg->target);
  while (n && cfg->target[n - 1] == '/')
    n--;
  g->target = malloc(n + 1);
  g->meta = calloc(cfg->nmetadata ? cfg->nmetadata : 1, sizeof *g->meta);
  if (!g->target || !g->meta)
    return KURA_ENOMEM;
  memcpy(g->target, cfg->target, n);
  g->target[n] = '\0';
  g->plaintext = strncmp(g->target, "http://", 7) == 0;
  for (size_t i = 0; i < cfg->nmetadata; i++, g->nmeta++)
    if (!(g->meta[i] = strdup(cfg->metadata[i])))
      return KURA_ENOMEM;
  return 0;
}

int kr_grpc_new(uv_loop_t *loop, const kr_grpc_config *cfg, kr_grpc **out,
                char *err, size_t errlen)
{
  *out = NULL;
  int rc = kr_http_check_url(cfg->target, err, errlen);
  if (rc)
    return rc;
  kr_grpc *g = calloc(1, sizeof *g);
  if (!g)
    return snprintf(err, errlen, "out of memory"), KURA_ENOMEM;
  rc = copy_config(g, cfg);
  g->loop = loop;
  g->hc = (kr_http_config){.max_host_connections = cfg->max_connections
                                                       ? cfg->max_connections
                                                       : DEFAULT_MAX_CONNECTIONS};
  if (!rc)
    rc = kr_http_new(loop, &g->hc, &g->http);
  if (!rc)
    g->nopen = 1;
  if (rc) {
    grpc_free(g);
    snprintf(err, errlen, "cannot start the gRPC channel: %s", kura_strerror(rc));
    return rc;
  }
  *out = g;
  return 0;
}

/* One pool has closed; the channel is gone with the last one. */
static void on_pool_closed(void *ud)
{
  kr_grpc *g = ud;
  if (--g->nopen > 0 || !g->closing)
    return;
  void (*closed)(void *) = g->closed;
  void *cud = g->closed_ud;
  grpc_free(g);
  if (closed)
    closed(cud);
}

void kr_grpc_close(kr_grpc *g, void (*closed)(void *ud), void *ud)
{
  g->closed = closed, g->closed_ud = ud;
  g->closing = 1;
  for (size_t i = 0; i < g->nretired; i++)
    kr_http_close(g->retired[i], on_pool_closed, g);
  g->nretired = 0;
  kr_http_close(g->http, on_pool_closed, g);
}

size_t kr_grpc_pending(const kr_grpc *g)
{
  size_t n = kr_http_pending(g->http);
  for (size_t i = 0; i < g->nretired; i++)
    n += kr_http_pending(g->retired[i]);
  return n;
}
const char *kr_grpc_errstr(const kr_grpc *g) { return g->errstr; }
