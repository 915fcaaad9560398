/* kura serve's core: the server object, the life of a call, deadlines,
 * authorization, drain and close. The protocols are in serve_grpc.c and
 * serve_http.c, read-through in serve_miss.c.
 *
 * Deadlines live in one binary heap of calls behind one timer: only calls
 * that are still waiting after their submit (a network backend, a hook)
 * enter it, so a memory backend, which answers inside submit, never
 * touches it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/serve/serve_int.h"
#include "kura_client.h"

#define DEFAULT_MAX_CALLS 16384

static void maybe_free(kr_serve *s);

/* --- deadlines ------------------------------------------------------------------- */

static void heap_swap(kr_serve *s, size_t a, size_t b)
{
  kr_serve_call *t = s->heap[a];
  s->heap[a] = s->heap[b];
  s->heap[b] = t;
  s->heap[a]->heap_idx = a;
  s->heap[b]->heap_idx = b;
}

static void heap_up(kr_serve *s, size_t i)
{
  while (i > 0 && s->heap[(i - 1) / 2]->deadline > s->heap[i]->deadline) {
    heap_swap(s, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void heap_down(kr_serve *s, size_t i)
{
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < s->heap_len && s->heap[l]->deadline < s->heap[m]->deadline)
      m = l;
    if (r < s->heap_len && s->heap[r]->deadline < s->heap[m]->deadline)
      m = r;
    if (m == i)
      return;
    heap_swap(s, i, m);
    i = m;
  }
}

static void on_deadline(uv_timer_t *t);

static void arm(kr_serve *s)
{
  if (s->heap_len == 0 || s->closing) {
    uv_timer_stop(&s->timer);
    return;
  }
  uint64_t now = uv_hrtime(), due = s->heap[0]->deadline;
  uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
  uv_timer_start(&s->timer, on_deadline, ms, 0);
}

static void heap_add(kr_serve_call *call)
{
  kr_serve *s = call->s;
  if (s->heap_len == s->heap_cap) {
    size_t cap = s->heap_cap ? 2 * s->heap_cap : 64;
    kr_serve_call **nh = realloc(s->heap, cap * sizeof *nh);
    if (!nh)
      return; /* no deadline then: the client's own timeout still ends it */
    s->heap = nh, s->heap_cap = cap;
  }
  call->heap_idx = s->heap_len;
  s->heap[s->heap_len++] = call;
  heap_up(s, call->heap_idx);
  if (call->heap_idx == 0)
    arm(s);
}

static void heap_remove(kr_serve_call *call)
{
  kr_serve *s = call->s;
  size_t i = call->heap_idx;
  if (i == SIZE_MAX)
    return;
  call->heap_idx = SIZE_MAX;
  s->heap_len--;
  if (i == s->heap_len)
    return;
  s->heap[i] = s->heap[s->heap_len];
  s->heap[i]->heap_idx = i;
  heap_up(s, i);
  heap_down(s, s->heap[i]->heap_idx);
}

static void on_deadline(uv_timer_t *t)
{
  kr_serve *s = t->data;
  uint64_t now = uv_hrtime();
  while (s->heap_len && s->heap[0]->deadline <= now) {
    kr_serve_call *call = s->heap[0];
    heap_remove(call);
    s->stats.deadlines++;
    call->kind->error(call, KURA_ETIMEOUT, "the call's deadline (grpc-timeout) passed");
    kr_serve_call_release(call);
  }
  arm(s);
}

/* grpc-timeout reaches 99999999 hours, past what 64 bits of nanoseconds
 * hold (some values wrap to a deadline already gone): beyond a year it is
 * no deadline at all. */
#define DEADLINE_MAX_MS (366ull * 24 * 3600 * 1000)

void kr_serve_set_deadline(kr_serve_call *call, uint64_t ms)
{
  if (ms > DEADLINE_MAX_MS)
    return;
  call->deadline = uv_hrtime() + ms * 1000000u;
  if (!call->deadline)
    call->deadline = 1;
}

int64_t kr_serve_parse_timeout(const char *v, size_t len)
{
  if (len < 2 || len > 9)
    return -1;
  int64_t n = 0;
  for (size_t i = 0; i + 1 < len; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    n = n * 10 + (v[i] - '0');
  }
  switch (v[len - 1]) {
  case 'H': return n * 3600000;
  case 'M': return n * 60000;
  case 'S': return n * 1000;
  case 'm': return n;
  case 'u': return (n + 999) / 1000;
  case 'n': return (n + 999999) / 1000000;
  default: return -1;
  }
}

/* --- calls ------------------------------------------------------------------------- */

kr_serve_call *kr_serve_call_new(kr_serve *s, kr_h2s_req *req, const kr_serve_kind *kind,
                                 int method)
{
  kr_serve_call *call = calloc(1, sizeof *call);
  if (!call)
    return NULL;
  call->s = s, call->req = req, call->kind = kind, call->method = method;
  call->heap_idx = SIZE_MAX;
  call->busy = 1; /* the handler's, until kr_serve_call_unref */
  req->data = call;
  s->in_flight++;
  s->live_calls++;
  return call;
}

/* The call has its answer (or no one to give it to). The request is not
 * touched: it may be gone already. */
static void forget(kr_serve_call *call)
{
  if (!call->req)
    return;
  call->req = NULL;
  call->s->in_flight--;
  heap_remove(call);
}

void kr_serve_call_release(kr_serve_call *call)
{
  if (call->busy || call->req || call->pending || call->flight)
    return;
  kr_serve *s = call->s;
  free(call);
  s->live_calls--;
  maybe_free(s);
}

void kr_serve_call_unref(kr_serve_call *call)
{
  call->busy--;
  kr_serve_call_release(call);
}

void kr_serve_respond(kr_serve_call *call, const kr_h2s_response *res)
{
  if (!call->req) { /* answered already (a deadline): this one is not sent */
    free(res->body);
    return;
  }
  kr_h2s_req *req = call->req;
  req->data = NULL;
  forget(call);
  kr_h2s_respond(req, res); /* req may be freed inside (HTTP/1.1) */
}

static void on_done(void *ud, const kr_request *req, const kr_result *res)
{
  kr_serve_call *call = ud;
  call->pending = 0;
  call->busy++; /* result() may end the call (a hook answering at once) */
  if (call->req)
    call->kind->result(call, req, res);
  call->busy--;
  kr_serve_call_release(call);
}

void kr_serve_submit(kr_serve_call *call, kr_request *r)
{
  kr_serve *s = call->s;
  call->pending = 1;
  call->busy++; /* a completion inside submit must not free the call */
  int rc = kr_client_submit(s->client, r, on_done, call);
  if (rc) {
    call->pending = 0;
    call->kind->error(call, rc, kr_client_errstr(s->client));
  }
  call->busy--;
  if (call->req && call->deadline && call->heap_idx == SIZE_MAX)
    heap_add(call);
}

int kr_serve_authorized(const kr_serve *s, const char *tok, size_t len)
{
  if (!s->auth)
    return 1;
  if (!tok)
    return 0;
  /* Every byte is compared whatever the first difference: the time taken
   * tells nothing of the token. */
  volatile unsigned char diff = (unsigned char)(len != s->auth_len);
  for (size_t i = 0; i < s->auth_len; i++)
    diff |= (unsigned char)(s->auth[i] ^ (i < len ? tok[i] : 0));
  return diff == 0;
}

/* --- the transport's callbacks ------------------------------------------------------ */

static void on_request(void *ud, kr_h2s_req *req)
{
  kr_serve *s = ud;
  req->data = NULL;
  s->stats.calls++;
  if (kr_serve_is_grpc(req))
    kr_serve_grpc(s, req);
  else
    kr_serve_http(s, req);
}

static int whole(void *ud, const kr_h2s_req *req)
{
  (void)ud;
  return kr_serve_grpc_whole(req);
}

static void on_cancel(void *ud, kr_h2s_req *req)
{
  kr_serve *s = ud;
  kr_serve_call *call = req->data;
  if (!call)
    return;
  s->stats.cancelled++;
  forget(call);
  kr_serve_call_release(call);
}

/* --- life cycle --------------------------------------------------------------------- */

void kr_serve_set_miss_hook(kr_serve *s, kr_serve_miss_fn fn, void *ud)
{
  s->on_miss = fn;
  s->miss_ud = ud;
}

int kr_serve_port(const kr_serve *s)
{
  return kr_h2s_port(s->h2s);
}

void kr_serve_get_stats(const kr_serve *s, kr_serve_stats *out)
{
  kr_h2s_stats hs;
  *out = s->stats;
  out->in_flight = s->in_flight;
  kr_h2s_get_stats(s->h2s, &hs);
  out->connections = hs.connections;
  out->accepted = hs.accepted, out->refused = hs.refused;
  out->protocol_errors = hs.protocol_errors, out->streams_refused = hs.streams_refused;
  out->streams_malformed = hs.streams_malformed;
}

static void free_auth(kr_serve *s)
{
  if (!s->auth)
    return;
  volatile char *p = s->auth;
  for (size_t i = 0; i < s->auth_len; i++)
    p[i] = 0;
  free(s->auth);
  s->auth = NULL;
}

static void maybe_free(kr_serve *s)
{
  if (!s->closing || s->net_open > 0 || s->live_calls > 0)
    return;
  free_auth(s);
  free(s->heap);
  free(s->flights);
  free(s);
}

static void on_net_closed(void *ud)
{
  kr_serve *s = ud;
  if (--s->net_open > 0)
    return;
  void (*closed)(void *) = s->closed;
  void *cud = s->closed_ud;
  s->closed = NULL;
  maybe_free(s); /* before `closed`: it may go on to close the client */
  if (closed)
    closed(cud);
}

static void on_timer_closed(uv_handle_t *h)
{
  on_net_closed(h->data);
}

static void on_drained(void *ud)
{
  kr_serve *s = ud;
  void (*cb)(void *) = s->drained;
  s->drained = NULL;
  if (cb)
    cb(s->drained_ud);
}

void kr_serve_drain(kr_serve *s, void (*drained)(void *ud), void *ud)
{
  s->drained = drained, s->drained_ud = ud;
  kr_h2s_drain(s->h2s, on_drained, s);
}

void kr_serve_close(kr_serve *s, void (*closed)(void *ud), void *ud)
{
  s->closing = 1;
  s->drained = NULL;
  s->closed = closed, s->closed_ud = ud;
  kr_serve_miss_detach_all(s);
  while (s->heap_len) /* the transport's close answers nothing now */
    heap_remove(s->heap[0]);
  uv_timer_stop(&s->timer);
  kr_h2s_close(s->h2s, on_net_closed, s);
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

int kr_serve_new(uv_loop_t *loop, kr_client *client, const kr_serve_config *cfg,
                 kr_serve **out, char *err, size_t errlen)
{
  *out = NULL;
  kr_serve *s = calloc(1, sizeof *s);
  if (!s || (cfg->auth_token && !(s->auth = malloc(cfg->auth_token_len + 1)))) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return KURA_ENOMEM;
  }
  s->loop = loop, s->client = client;
  if (s->auth) {
    memcpy(s->auth, cfg->auth_token, cfg->auth_token_len);
    s->auth_len = cfg->auth_token_len;
  }
  s->on_miss = cfg->on_miss, s->miss_ud = cfg->miss_ud;
  s->max_calls = cfg->max_calls ? cfg->max_calls : DEFAULT_MAX_CALLS;
  s->max_message = cfg->max_message ? cfg->max_message : (32u << 20);
  kr_h2s_config hc = {.host = cfg->host, .port = cfg->port,
                      .max_connections = cfg->max_connections,
                      .max_streams = cfg->max_streams,
                      .max_body = s->max_message + 5, /* the gRPC message prefix */
                      .max_buffered = cfg->max_buffered,
                      .on_request = on_request, .on_cancel = on_cancel, .whole = whole,
                      .udata = s};
  int rc = kr_h2s_new(loop, &hc, &s->h2s, err, errlen);
  if (rc) {
    free_auth(s);
    free(s);
    return rc;
  }
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  s->net_open = 2; /* the transport, the timer */
  *out = s;
  return 0;
}
