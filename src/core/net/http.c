/* HTTP client on the libuv loop (see http.h).
 *
 * curl's multi-socket interface tells us which sockets to watch (kr_http_on_socket)
 * and when to call it back (kr_http_on_curl_timer); we watch with one uv_poll_t per
 * socket and one uv_timer_t, and hand events back with
 * curl_multi_socket_action. Finished transfers are collected with
 * curl_multi_info_read after every such call and completed from there, so a
 * completion always runs from the loop.
 *
 * Closing: completion callbacks run with `in_callback` raised; a close asked
 * for meanwhile waits until they return. The close cancels every transfer
 * (KURA_ECANCELLED), closes the poll handles before the multi handle (curl
 * closes the sockets in curl_multi_cleanup, and a poll must never outlive
 * its descriptor), then the timer, and frees the struct once all handles
 * have called their close callbacks.
 *
 * Poll handles are parked, not closed, when curl stops watching a socket
 * (an idle connection back in its cache) and taken up again when curl
 * watches that descriptor number next, which saves the handle's set-up on
 * every request on a kept-alive connection; one that watched for reading
 * goes on watching, unreferenced, so that reuse costs no epoll_ctl either.
 * A parked handle is closed when curl closes its descriptor
 * (CURLOPT_CLOSESOCKETFUNCTION), and before it does: closing a poll handle
 * removes its descriptor number from the epoll set, which must not hit a
 * descriptor that someone else opened since.
 *
 * The sockets and the timer are in http_sock.c, the structures both files
 * share in http_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/net/http_int.h"

/* --- buffers --------------------------------------------------------------- */

/* Appends len bytes and keeps a NUL after them; -1 when out of memory. */
static int buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
  if (*len + n + 1 > *cap) {
    size_t c = *cap ? *cap : 1024;
    while (c < *len + n + 1)
      c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
      return -1;
    *buf = b, *cap = c;
  }
  memcpy(*buf + *len, p, n);
  *len += n;
  (*buf)[*len] = '\0';
  return 0;
}

/* --- transfers ------------------------------------------------------------- */

/* Grows x's body buffer to hold `need` bytes: to `exact` when given (the
 * Content-Length), else doubling from 1 KiB; within kr_http's budget of
 * response bytes (kr_http_config.max_buffered), which counts the body
 * buffers of the transfers in curl. -1 over the budget or out of memory. */
static int body_reserve(xfer *x, size_t need, size_t exact)
{
  kr_http *h = x->h;
  if (need <= x->body_cap)
    return 0;
  size_t c = exact ? exact : x->body_cap ? x->body_cap : 1024;
  while (c < need)
    c *= 2;
  if (h->buffered > h->max_buffered || c - x->body_cap > h->max_buffered - h->buffered) {
    x->over_budget = 1;
    return -1;
  }
  char *b = realloc(x->body, c);
  if (!b) {
    x->oom = 1;
    return -1;
  }
  h->buffered += c - x->body_cap;
  x->body = b, x->body_cap = c;
  return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
  xfer *x = ud;
  size_t len = size * n;
  if (len > x->max_body - x->body_len) {
    x->too_large = 1;
    return 0; /* curl stops with CURLE_WRITE_ERROR */
  }
  if (!x->body_len) { /* first bytes: size the buffer from Content-Length */
    curl_off_t cl = -1;
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (cl > 0 && (size_t)cl <= x->max_body && (size_t)cl >= len &&
        body_reserve(x, (size_t)cl + 1, (size_t)cl + 1))
      return 0;
  }
  if (body_reserve(x, x->body_len + len + 1, 0))
    return 0;
  memcpy(x->body + x->body_len, p, len);
  x->body_len += len;
  x->body[x->body_len] = '\0';
  return len;
}

/* Keeps the header lines of the last response (a 100 Continue or a
 * redirect starts over at its status line) plus trailers. */
static size_t on_head(char *p, size_t size, size_t n, void *ud)
{
  xfer *x = ud;
  size_t len = size * n, l = len;
  while (l && (p[l - 1] == '\n' || p[l - 1] == '\r'))
    l--;
  if (x->on_header)
    x->on_header(x->udata, p, l);
  if (l >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    x->head_len = 0;
    return len;
  }
  if (l == 0)
    return len;
  if (buf_append(&x->head, &x->head_len, &x->head_cap, p, l) ||
      buf_append(&x->head, &x->head_len, &x->head_cap, "\r\n", 2)) {
    x->oom = 1;
    return 0;
  }
  return len;
}

/* The option set of a transfer, as far as it can differ between two
 * requests: 0 for one that needs a handle reset and set up in full (a
 * method other than GET, a body, request headers), else a code of what
 * set_options sets the same way for every such request. A handle that ran
 * a request of shape n != 0 goes back to the pool as it is, and the next
 * request of shape n takes it and sets only what is its own (URL, buffers,
 * limits): curl_easy_reset and twenty options cost ~5,000 instructions,
 * a twentieth of a small GET. */
static unsigned xfer_shape(const xfer *x)
{
  if (x->req_body || x->hdrs || x->fresh || (x->method[0] && strcmp(x->method, "GET") != 0))
    return 0;
  return 1u | (unsigned)(x->url->tls != 0) << 1 | (unsigned)(x->h2_prior_knowledge != 0) << 2 |
         (unsigned)(x->insecure != 0) << 3;
}

/* A handle for a request of this shape; *ready: it is set up for that
 * shape already (see xfer_shape), else it is reset or new. Of the handles
 * most recently put back, one of the same shape is preferred. */
static CURL *easy_get(kr_http *h, unsigned shape, int *ready)
{
  *ready = 0;
  if (!h->npool)
    return curl_easy_init();
  int top = h->npool - 1;
  for (int i = top; shape && i >= 0 && i > top - 8; i--) {
    if (h->pool_shape[i] == shape) {
      CURL *e = h->pool[i];
      h->pool[i] = h->pool[top], h->pool_shape[i] = h->pool_shape[top];
      h->npool--;
      *ready = 1;
      return e;
    }
  }
  CURL *e = h->pool[top];
  if (h->pool_shape[top])
    curl_easy_reset(e);
  h->npool--;
  return e;
}

/* Back to the pool: kept set up when shape != 0, but pointing at nothing
 * of the finished transfer's (its parsed URL and error buffer may go). */
static void easy_put(kr_http *h, CURL *e, unsigned shape)
{
  if (h->npool >= POOL_MAX || h->closing) {
    curl_easy_cleanup(e);
    return;
  }
  if (shape) {
    curl_easy_setopt(e, CURLOPT_CURLU, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
  } else {
    curl_easy_reset(e);
  }
  h->pool_shape[h->npool] = (uint8_t)shape;
  h->pool[h->npool++] = e;
}

/* --- parsed URLs ------------------------------------------------------------ */

static void url_release(url_ent *u)
{
  if (u && !--u->refs && !u->cached) {
    curl_url_cleanup(u->u);
    free(u);
  }
}

static void url_uncache(url_ent *u)
{
  if (u) {
    u->cached = 0;
    u->refs++; /* url_release frees it when nothing else holds it */
    url_release(u);
  }
}

static int parse_url(const char *url, CURLU **out, int *tls, char *msg, size_t cap);

/* url, parsed, held by the caller (url_release); from the cache when a
 * recent request named the same string. Fails as parse_url does. */
static int url_hold(kr_http *h, const char *url, url_ent **out)
{
  size_t len = url ? strlen(url) : 0;
  for (unsigned i = 0; i < URL_CACHE; i++) {
    url_ent *u = h->urls[i];
    if (u && u->len == len && memcmp(u->url, url, len) == 0) {
      u->refs++;
      *out = u;
      return 0;
    }
  }
  CURLU *cu;
  int tls = 0;
  int rc = parse_url(url, &cu, &tls, h->errstr, sizeof h->errstr);
  if (rc)
    return rc;
  url_ent *u = malloc(sizeof *u + len + 1);
  if (!u) {
    curl_url_cleanup(cu);
    snprintf(h->errstr, sizeof h->errstr, "out of memory");
    return KURA_ENOMEM;
  }
  u->u = cu, u->refs = 1, u->cached = 1, u->tls = tls, u->len = len;
  memcpy(u->url, url, len + 1);
  unsigned slot = h->url_next++ % URL_CACHE;
  url_uncache(h->urls[slot]);
  h->urls[slot] = u;
  *out = u;
  return 0;
}

static void xfer_free(xfer *x)
{
  if (x->easy)
    easy_put(x->h, x->easy, xfer_shape(x));
  url_release(x->url);
  curl_slist_free_all(x->hdrs);
  free(x->req_body);
  kr_http *h = x->h;
  if (h->nspare < SPARE_MAX && !h->closing && x->body_cap <= SPARE_BUF_MAX &&
      x->head_cap <= SPARE_BUF_MAX) {
    char *body = x->body, *head = x->head;
    size_t body_cap = x->body_cap, head_cap = x->head_cap;
    memset(x, 0, sizeof *x);
    x->body = body, x->body_cap = body_cap;
    x->head = head, x->head_cap = head_cap;
    x->next = h->spare;
    h->spare = x;
    h->nspare++;
    return;
  }
  free(x->body);
  free(x->head);
  free(x);
}

/* A zeroed transfer, with the buffers of a finished one where there is one. */
static xfer *xfer_alloc(kr_http *h)
{
  xfer *x = h->spare;
  if (!x)
    return calloc(1, sizeof(xfer));
  h->spare = x->next;
  h->nspare--;
  x->next = NULL;
  return x;
}

static void spares_free(kr_http *h)
{
  for (xfer *x; (x = h->spare) != NULL; h->nspare--) {
    h->spare = x->next;
    free(x->body);
    free(x->head);
    free(x);
  }
}

static void xfer_unlink(kr_http *h, xfer *x)
{
  if (x->prev)
    x->prev->next = x->next;
  else
    h->xfers = x->next;
  if (x->next)
    x->next->prev = x->prev;
  h->nxfers--;
}

/* A limit of ours, or of libcurl's on the response headers: KURA_ELIMIT
 * with a message that says which, else 0. libcurl 7.88 refuses a header
 * line over 100 KB with CURLE_OUT_OF_MEMORY (its message: "Out of memory"),
 * and a header block over 300 KB with "Too large response headers"; before
 * the body, with our own buffers intact, an "out of memory" is that. */
static int limit_error(xfer *x, CURLcode rc, const char *detail, char *msg, size_t cap)
{
  if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED)
    snprintf(msg, cap, "the response body is over the limit of %zu bytes", x->max_body);
  else if (x->over_budget)
    snprintf(msg, cap, "the responses in flight would hold over %zu bytes, the HTTP "
             "client's budget for them all (KURA_HTTP_MAX_BUFFERED)", x->h->max_buffered);
  else if (rc == CURLE_OUT_OF_MEMORY && !x->oom && !x->body_len)
    snprintf(msg, cap, "a response header line is over libcurl's limit (100 KB)");
  else if (strstr(detail, "Too large response headers"))
    snprintf(msg, cap, "the response headers are over libcurl's limit: %s", detail);
  else
    return 0;
  return KURA_ELIMIT;
}

/* curl's result -> a kura code, and the message for it. The URL's scheme
 * was checked before the transfer (parse_url), so an "unsupported protocol"
 * is the server's answer: no status line (HTTP/0.9), a status line that
 * does not parse, an HTTP version curl does not speak. That is the
 * server's failure, like a garbled answer: INTERNAL_SERVER_ERROR (retried
 * by the client where the call is idempotent), not the caller's mistake. */
static int map_error(xfer *x, CURLcode rc, char *msg, size_t cap)
{
  const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
  int err = limit_error(x, rc, detail, msg, cap);
  if (err)
    return err;
  snprintf(msg, cap, "%s", detail);
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    return KURA_ETIMEOUT;
  case CURLE_URL_MALFORMAT:
  case CURLE_BAD_FUNCTION_ARGUMENT:
    return KURA_EINVAL;
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_WEIRD_SERVER_REPLY:
    snprintf(msg, cap, "the server's answer is not valid HTTP: %s", detail);
    return KURA_EINTERNAL;
  case CURLE_OUT_OF_MEMORY:
    return KURA_ENOMEM;
  case CURLE_WRITE_ERROR:
    return x->oom ? KURA_ENOMEM : KURA_EUNKNOWN;
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return KURA_ECONN;
  default:
    return KURA_EUNKNOWN;
  }
}

/* The request cannot have reached a server: no connection was made. */
static int never_sent(CURLcode rc)
{
  return rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_COULDNT_RESOLVE_HOST ||
         rc == CURLE_COULDNT_CONNECT;
}

/* x leaves curl: its body buffer no longer counts against the budget. */
static void budget_release(xfer *x)
{
  x->h->buffered -= x->body_cap;
}

/* Removes x from the multi handle, completes it and frees it. */
static void finish(kr_http *h, xfer *x, CURLcode rc, int cancelled)
{
  kr_http_response res = {0};
  char msg[CURL_ERROR_SIZE + 64];
  curl_multi_remove_handle(h->multi, x->easy);
  xfer_unlink(h, x);
  if (cancelled) {
    res.err = KURA_ECANCELLED;
    res.msg = "the HTTP client was closed";
  } else if (rc != CURLE_OK || x->oom) {
    res.err = map_error(x, rc, msg, sizeof msg);
    res.msg = msg;
    res.unsent = never_sent(rc);
  } else {
    long v = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &res.status);
    curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &v);
    res.http_version = v == CURL_HTTP_VERSION_2_0 ? 2 : 1;
    res.headers = x->head_len ? x->head : ""; /* a reused buffer holds old bytes */
    res.headers_len = x->head_len;
    res.body = x->body_len ? x->body : "";
    res.body_len = x->body_len;
  }
  x->cb(x->udata, &res);
  budget_release(x);
  xfer_free(x);
}

static void do_close(kr_http *h);

/* --- the queue --------------------------------------------------------------
 * curl's own queue of transfers waiting for a connection costs work per
 * event that grows with its length; beyond max_active, transfers wait here
 * instead, in order, and their waiting counts against their deadline. A
 * waiting transfer holds its request but no easy handle (one is taken from
 * the pool when it starts), so the pool need only be as large as the number
 * in curl, not the number submitted. */

static void queue_push(kr_http *h, xfer *x)
{
  x->queued = 1;
  x->next = NULL;
  x->prev = h->qtail;
  if (h->qtail)
    h->qtail->next = x;
  else
    h->qhead = x;
  h->qtail = x;
  h->nqueued++;
}

static xfer *queue_pop(kr_http *h)
{
  xfer *x = h->qhead;
  if (!x)
    return NULL;
  h->qhead = x->next;
  if (h->qhead)
    h->qhead->prev = NULL;
  else
    h->qtail = NULL;
  x->next = x->prev = NULL;
  x->queued = 0;
  h->nqueued--;
  return x;
}

static int set_options(xfer *x, int ready);

/* Gives x an easy handle set up for its request and hands it to curl; on
 * failure x keeps no handle (the caller frees or completes it). */
static CURLMcode activate(kr_http *h, xfer *x, uint64_t timeout_ms)
{
  int ready;
  if (!(x->easy = easy_get(h, xfer_shape(x), &ready)))
    return CURLM_OUT_OF_MEMORY;
  CURLMcode mc = CURLM_OUT_OF_MEMORY;
  if (set_options(x, ready) == 0 &&
      curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms) == CURLE_OK)
    mc = curl_multi_add_handle(h->multi, x->easy);
  if (mc != CURLM_OK) {
    easy_put(h, x->easy, 0); /* reset: its options may be half set */
    x->easy = NULL;
    return mc;
  }
  x->prev = NULL;
  x->next = h->xfers;
  if (h->xfers)
    h->xfers->prev = x;
  h->xfers = x;
  h->nxfers++;
  h->buffered += x->body_cap; /* a reused buffer counts from here on */
  return CURLM_OK;
}

/* Completes a transfer that never reached curl. */
static void complete_unsent(xfer *x, int err, const char *msg)
{
  kr_http_response res = {.err = err, .msg = msg, .unsent = 1};
  x->cb(x->udata, &res);
  xfer_free(x);
}

unsigned kr_http_next_active(unsigned cur, unsigned min, unsigned max, int waiting, double idle)
{
  if (waiting && idle > 0.10)
    cur = cur > max / 2 ? max : cur * 2;
  else if (idle < 0.03)
    cur -= cur / 4;
  return cur < min ? min : cur > max ? max : cur;
}

/* One step of the adaptive limit, at most every KR_HTTP_ADAPT_MS. The
 * loop's idle share tells a server that keeps transfers waiting (more in
 * flight helps) from a loop that is itself the bottleneck (fewer in flight
 * cost less per request: curl's work per transfer grows with the number
 * it holds, and at 128 in flight a small GET costs ~17% more CPU than at 32
 * on loopback). Idle time counts the loop's other work as busy, so a loop
 * loaded by something else keeps fewer transfers in flight. */
static void adapt(kr_http *h)
{
  uint64_t now = uv_now(h->loop);
  if (now - h->adapt_at < KR_HTTP_ADAPT_MS)
    return;
  uint64_t hr = uv_hrtime(), idle = uv_metrics_idle_time(h->loop);
  double share = hr > h->adapt_hr ? (double)(idle - h->adapt_idle) / (double)(hr - h->adapt_hr) : 0;
  h->cap = kr_http_next_active(h->cap, h->min_active, h->max_active, h->qhead != NULL, share);
  h->adapt_at = now, h->adapt_hr = hr, h->adapt_idle = idle;
}

/* Moves waiting transfers into curl while there is room (from the loop). */
static void start_queued(kr_http *h)
{
  if (h->min_active)
    adapt(h);
  while (h->qhead && !h->close_requested && h->nxfers < h->cap) {
    xfer *x = queue_pop(h);
    uint64_t waited = uv_now(h->loop) - x->since;
    if (waited >= x->timeout_ms) {
      complete_unsent(x, KURA_ETIMEOUT, "timed out waiting for a free connection");
      continue;
    }
    CURLMcode mc = activate(h, x, x->timeout_ms - waited);
    if (mc != CURLM_OK)
      complete_unsent(x, mc == CURLM_OUT_OF_MEMORY ? KURA_ENOMEM : KURA_EINTERNAL,
                      "cannot start the transfer");
  }
}

/* A kept-alive connection can die under a request: the server closed it
 * (its idle timeout) as the request went out. curl then sends the request
 * again, up to 5 times, but on other connections from its cache, which a
 * server that closes idle connections soon after each answer may have
 * closed as well (seen in tests: "Connection died, tried 5 times"). A GET
 * or HEAD that got nothing back is sent once more here, on a connection of
 * its own, within what is left of its time. 1 when it was. */
static int retry_fresh(kr_http *h, xfer *x, CURLcode rc)
{
  if (x->fresh || h->close_requested || x->req_body || x->body_len || x->head_len ||
      (rc != CURLE_SEND_ERROR && rc != CURLE_RECV_ERROR && rc != CURLE_GOT_NOTHING))
    return 0;
  if (x->method[0] && strcmp(x->method, "GET") != 0 && strcmp(x->method, "HEAD") != 0)
    return 0;
  uint64_t waited = uv_now(h->loop) - x->since;
  if (waited >= x->timeout_ms)
    return 0;
  curl_multi_remove_handle(h->multi, x->easy);
  x->fresh = 1; /* its handle is reset when it goes back to the pool */
  x->errbuf[0] = 0;
  if (curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
      curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)(x->timeout_ms - waited)) != CURLE_OK ||
      curl_multi_add_handle(h->multi, x->easy) != CURLM_OK)
    return 0; /* finish reports the first failure; removing again is harmless */
  return 1;
}

/* Ends a stretch of completion callbacks: a close one of them asked for
 * happens now. */
static void callbacks_done(kr_http *h)
{
  if (!--h->in_callback && h->close_requested && !h->closing)
    do_close(h);
}

/* Transfers that finish free room for queued ones, which start here, all
 * together once the loop has run every callback of its poll phase: in the
 * check phase just after it, or at the next turn's idle phase when that
 * comes first (a finish in the timer phase). Started one by one as each
 * answer is read, their requests went out between the reads, and the
 * server, woken for each, took a small GET at ~45 us of kura's CPU where
 * this takes ~30 (1,000 tasks, 32 in curl). The idle handle alone would
 * do, a turn later: 31.0k requests/s against 32.3k with the check handle
 * (alternated runs). */
static void start_pending(kr_http *h)
{
  uv_idle_stop(&h->kick);
  if (!h->qhead || h->closing || h->close_requested)
    return;
  h->in_callback++;
  start_queued(h);
  callbacks_done(h);
}

static void on_starter(uv_check_t *c)
{
  start_pending(c->data);
}

static void on_kick(uv_idle_t *i)
{
  start_pending(i->data);
}

/* Completes the transfers curl has finished. */
void kr_http_check_done(kr_http *h)
{
  CURLMsg *m;
  int left;
  h->in_callback++;
  while (!h->close_requested && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    xfer *x = NULL;
    CURLcode rc = m->data.result; /* m is invalid once the handle is removed */
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    if (!retry_fresh(h, x, rc))
      finish(h, x, rc, 0);
  }
  if (h->qhead && h->nxfers < h->cap)
    uv_idle_start(&h->kick, on_kick);
  callbacks_done(h);
}

/* --- requests -------------------------------------------------------------- */

static int fail(kr_http *h, int err, const char *fmt, const char *detail)
{
  snprintf(h->errstr, sizeof h->errstr, fmt, detail);
  return err;
}

/* Parses url into *out (the caller's to free), or fails with a message.
 * The flags are those curl parses a CURLOPT_URL with, for an absolute URL of
 * a scheme it supports: handing the result to curl (CURLOPT_CURLU) spares
 * it a second parse of the same string. *tls: the scheme is https. */
static int parse_url(const char *url, CURLU **out, int *tls, char *msg, size_t cap)
{
  *out = NULL;
  if (!url || !*url)
    return snprintf(msg, cap, "the URL is empty"), KURA_EINVAL;
  if (kr_curl_load(msg, cap) != 0)
    return KURA_EUNSUPPORTED;
  CURLU *u = curl_url();
  if (!u)
    return snprintf(msg, cap, "out of memory"), KURA_ENOMEM;
  char *scheme = NULL;
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  int rc = 0;
  if (uc != CURLUE_OK) {
    snprintf(msg, cap, "invalid URL: %s", curl_url_strerror(uc));
    rc = KURA_EINVAL;
  } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    snprintf(msg, cap, "invalid URL: the scheme must be http or https");
    rc = KURA_EINVAL;
  } else if (tls) {
    *tls = scheme[4] == 's';
  }
  curl_free(scheme);
  if (rc)
    curl_url_cleanup(u);
  else
    *out = u;
  return rc;
}

int kr_http_check_url(const char *url, char *msg, size_t cap)
{
  CURLU *u;
  int rc = parse_url(url, &u, NULL, msg, cap);
  curl_url_cleanup(u);
  return rc;
}

/* A method is an HTTP token: letters only, as every real method is. */
static int valid_method(const char *m)
{
  if (!*m || strlen(m) > 32)
    return 0;
  for (const char *p = m; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '-'))
      return 0;
  return 1;
}

static int set_method(xfer *x)
{
  CURL *e = x->easy;
  const char *m = x->method;
  int rc = 0;
  if (x->req_body) {
    rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->req_body_len);
    rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req_body);
    if (*m && strcmp(m, "POST") != 0)
      rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
  } else if (!*m || strcmp(m, "GET") == 0) {
    rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(m, "HEAD") == 0) {
    rc |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
  }
  return rc;
}

/* The request header lines, owned by x from here on. */
static int build_headers(xfer *x, const kr_http_request *req)
{
  for (size_t i = 0; i < req->nheaders; i++) {
    struct curl_slist *l = curl_slist_append(x->hdrs, req->headers[i]);
    if (!l)
      return -1;
    x->hdrs = l;
  }
  if (req->body) { /* no "Expect: 100-continue" round trip before the body */
    struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:");
    if (!l)
      return -1;
    x->hdrs = l;
  }
  return 0;
}

/* Sets x's easy handle up for x's request (all but the timeout). `ready`:
 * the handle is set up for a request of x's shape already (see xfer_shape),
 * so only x's own options are set. */
static int set_options(xfer *x, int ready)
{
  CURL *e = x->easy;
  kr_http *h = x->h;
  int tls = x->url->tls;
  int rc = 0;
  /* Both: curl connects by the parsed URL (it takes precedence) and keeps
   * the string as the transfer's URL, where from the CURLU alone it would
   * print the string back (in curl_url_get, a few us per request). */
  rc |= curl_easy_setopt(e, CURLOPT_CURLU, x->url->u);
  rc |= curl_easy_setopt(e, CURLOPT_URL, x->url->url);
  rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
  rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  rc |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body);
  if (ready)
    return rc;
  /* What every request of a shape sets the same way, from here on. */
  rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_head);
  rc |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, x->h2_prior_knowledge
                         ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_2TLS);
  /* Wait for an HTTP/2 connection being set up rather than open another. */
  rc |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, (tls || x->h2_prior_knowledge) ? 1L : 0L);
  rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, x->insecure ? 0L : 1L);
  rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, x->insecure ? 0L : 2L);
  if (tls && h->ca_file) /* KURA_CA_FILE: a private CA (see kr_http_new) */
    rc |= curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
  /* The proxy settings curl would read from the environment, read once:
   * set, even to "" (none), curl does not look them up on every request. */
  rc |= curl_easy_setopt(e, CURLOPT_PROXY, h->proxy[tls] ? h->proxy[tls] : "");
  rc |= curl_easy_setopt(e, CURLOPT_NOPROXY, h->noproxy ? h->noproxy : "");
  rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, kr_http_on_close_socket);
  rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h);
  if (x->hdrs)
    rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
  /* libcurl before 8.0.0 breaks a reused prior-knowledge HTTP/2 connection
   * ("Error in the HTTP2 framing layer", curl issue #10634, fixed by PR
   * #10643): there, every such transfer gets a connection of its own. TLS
   * connections (ALPN h2) are reused and multiplexed as usual. */
  if (x->h2_prior_knowledge && h->h2c_no_reuse) {
    rc |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, 0L);
  }
  return rc | set_method(x);
}

/* A transfer holding its own copy of req, not yet set up in curl. */
static int xfer_new(kr_http *h, const kr_http_request *req, xfer **out)
{
  *out = NULL;
  xfer *x = xfer_alloc(h);
  if (!x)
    return fail(h, KURA_ENOMEM, "%s", "out of memory");
  x->h = h;
  int rc = url_hold(h, req->url, &x->url);
  if (!rc && req->method && !valid_method(req->method))
    rc = fail(h, KURA_EINVAL, "%s", "invalid HTTP method");
  if (rc) {
    xfer_free(x);
    return rc;
  }
  if (req->method)
    memcpy(x->method, req->method, strlen(req->method) + 1); /* valid_method: <= 32 */
  x->h2_prior_knowledge = req->h2_prior_knowledge;
  x->insecure = req->insecure;
  x->on_header = req->on_header;
  x->max_body = req->max_body ? req->max_body : KR_HTTP_DEFAULT_MAX_BODY;
  x->timeout_ms = req->timeout_ms ? req->timeout_ms : KR_HTTP_DEFAULT_TIMEOUT_MS;
  x->since = uv_now(h->loop);
  if (req->body) {
    x->req_body_len = req->body_len;
    if ((x->req_body = malloc(req->body_len ? req->body_len : 1)) != NULL)
      memcpy(x->req_body, req->body, req->body_len);
  }
  if ((req->body && !x->req_body) ||
      build_headers(x, req) != 0) {
    xfer_free(x);
    return fail(h, KURA_ENOMEM, "%s", "out of memory");
  }
  *out = x;
  return 0;
}

int kr_http_submit(kr_http *h, const kr_http_request *req, kr_http_cb cb, void *udata)
{
  if (h->closing || h->close_requested)
    return fail(h, KURA_ECANCELLED, "%s", "the HTTP client is closed");
  xfer *x;
  int rc = xfer_new(h, req, &x);
  if (rc)
    return rc;
  x->cb = cb, x->udata = udata;
  if (h->cap && (h->nxfers >= h->cap || h->qhead)) { /* first in, first out */
    queue_push(h, x);
    if (h->nxfers < h->cap)
      uv_idle_start(&h->kick, on_kick);
    return 0;
  }
  CURLMcode mc = activate(h, x, x->timeout_ms);
  if (mc != CURLM_OK) {
    xfer_free(x);
    return fail(h, mc == CURLM_OUT_OF_MEMORY ? KURA_ENOMEM : KURA_EINTERNAL, "%s",
                curl_multi_strerror(mc));
  }
  return 0;
}

/* --- life cycle ------------------------------------------------------------ */

/* What kr_http_new read from the environment. */
static void settings_free(kr_http *h)
{
  free(h->ca_file);
  free(h->proxy[0]);
  free(h->proxy[1]);
  free(h->noproxy);
}

/* The first of the variables that is set, copied; 0, or -1 out of memory. */
static int env_first(char **out, const char *const *names)
{
  *out = NULL;
  for (; *names; names++) {
    const char *v = getenv(*names);
    if (v)
      return (*out = strdup(v)) ? 0 : -1;
  }
  return 0;
}

/* The proxy environment as curl reads it for each transfer that sets no
 * proxy (detect_proxy in its url.c): http_proxy (never HTTP_PROXY, which a
 * CGI request could set), https_proxy or HTTPS_PROXY, then all_proxy or
 * ALL_PROXY for either; no_proxy or NO_PROXY for the hosts that skip it.
 * Read once here: a process's proxy settings are those it starts with. */
static int read_proxy_env(kr_http *h)
{
  static const char *const http[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
  static const char *const https[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                                      NULL};
  static const char *const no[] = {"no_proxy", "NO_PROXY", NULL};
  return env_first(&h->proxy[0], http) | env_first(&h->proxy[1], https) |
         env_first(&h->noproxy, no);
}

int kr_http_new(uv_loop_t *loop, const kr_http_config *cfg, kr_http **out)
{
  *out = NULL;
  if (kr_curl_load(NULL, 0) != 0) /* kr_curl_load's message: kr_http_check_url */
    return KURA_EUNSUPPORTED;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) /* reference counted */
    return KURA_EINTERNAL;
  kr_http *h = calloc(1, sizeof *h);
  if (!h || !(h->multi = curl_multi_init())) {
    free(h);
    curl_global_cleanup();
    return KURA_ENOMEM;
  }
  h->loop = loop;
  h->max_buffered = cfg && cfg->max_buffered ? cfg->max_buffered : KR_HTTP_DEFAULT_MAX_BUFFERED;
  h->h2c_no_reuse = curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
  /* TLS peers are verified against the system's CAs, or against the PEM
   * bundle KURA_CA_FILE names instead (endpoints with a private CA, tests). */
  const char *ca = getenv("KURA_CA_FILE");
  if ((ca && *ca && !(h->ca_file = strdup(ca))) || read_proxy_env(h) != 0) {
    curl_multi_cleanup(h->multi);
    settings_free(h);
    free(h);
    curl_global_cleanup();
    return KURA_ENOMEM;
  }
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  uv_check_init(loop, &h->starter);
  h->starter.data = h;
  uv_check_start(&h->starter, on_starter);
  uv_unref((uv_handle_t *)&h->starter);
  uv_idle_init(loop, &h->kick);
  h->kick.data = h;
  h->open_handles = 3;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, kr_http_on_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, kr_http_on_curl_timer);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (cfg && cfg->max_host_connections)
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->max_host_connections);
  if (cfg)
    h->max_active = h->cap = cfg->max_active;
  /* The adaptive limit needs the loop's idle time (libuv >= 1.39), which
   * libuv counts from here on; without it the limit stays at max_active. */
  if (cfg && cfg->min_active && cfg->min_active < cfg->max_active &&
      uv_loop_configure(loop, UV_METRICS_IDLE_TIME) == 0) {
    h->min_active = h->cap = cfg->min_active;
    h->adapt_at = uv_now(loop);
    h->adapt_hr = uv_hrtime();
    h->adapt_idle = uv_metrics_idle_time(loop);
  }
  if (cfg && cfg->max_cached_connections)
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)cfg->max_cached_connections);
  *out = h;
  return 0;
}

void kr_http_maybe_free(kr_http *h)
{
  if (!h->closing || h->open_handles > 0 || h->in_callback)
    return;
  void (*closed)(void *) = h->closed;
  void *ud = h->closed_ud;
  free(h->byfd);
  settings_free(h);
  free(h);
  curl_global_cleanup();
  if (closed)
    closed(ud);
}

static void do_close(kr_http *h)
{
  h->closing = 1;
  h->in_callback++;
  while (h->xfers)
    finish(h, h->xfers, CURLE_OK, 1);
  for (xfer *x; (x = queue_pop(h)) != NULL;)
    complete_unsent(x, KURA_ECANCELLED, "the HTTP client was closed");
  h->in_callback--;
  spares_free(h);
  while (h->npool)
    curl_easy_cleanup(h->pool[--h->npool]);
  for (unsigned i = 0; i < URL_CACHE; i++) { /* the transfers let theirs go above */
    url_uncache(h->urls[i]);
    h->urls[i] = NULL;
  }
  while (h->socks) /* before curl closes the descriptors */
    kr_http_sock_close(h, h->socks);
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, kr_http_on_handle_closed);
  uv_close((uv_handle_t *)&h->starter, kr_http_on_handle_closed);
  uv_close((uv_handle_t *)&h->kick, kr_http_on_handle_closed);
}

void kr_http_close(kr_http *h, void (*closed)(void *ud), void *ud)
{
  if (h->closing || h->close_requested)
    return;
  h->closed = closed;
  h->closed_ud = ud;
  h->close_requested = 1;
  if (!h->in_callback)
    do_close(h);
}

size_t kr_http_pending(const kr_http *h) { return h->nxfers + h->nqueued; }
unsigned kr_http_active_limit(const kr_http *h) { return h->cap; }
const char *kr_http_errstr(const kr_http *h) { return h->errstr; }

/* --- header blocks --------------------------------------------------------- */

static size_t trim(const char **p, size_t n)
{
  while (n && (**p == ' ' || **p == '\t'))
    (*p)++, n--;
  while (n && ((*p)[n - 1] == ' ' || (*p)[n - 1] == '\t'))
    n--;
  return n;
}

void kr_http_headers_each(const char *block, size_t len,
                          void (*fn)(void *ud, const char *name, size_t nlen,
                                     const char *value, size_t vlen),
                          void *ud)
{
  const char *p = block, *end = block + len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *next = eol ? eol + 1 : end;
    size_t l = (size_t)((eol ? eol : end) - p);
    if (l && p[l - 1] == '\r')
      l--;
    const char *colon = memchr(p, ':', l);
    if (colon && colon > p) {
      const char *name = p, *value = colon + 1;
      size_t nlen = trim(&name, (size_t)(colon - p));
      size_t vlen = trim(&value, (size_t)(p + l - value));
      fn(ud, name, nlen, value, vlen);
    }
    p = next;
  }
}
