/* The HTTP server's listener, connections and HTTP/2 side (nghttp2). See
 * h2_server.h for what it promises, h2_server_int.h for its shape, and
 * h1_conn.c for HTTP/1.1.
 *
 * Output: nghttp2_session_mem_send copies frames into the connection's out
 * buffer, up to OUT_HIGH bytes at a time; uv_try_write sends what the
 * socket takes and a uv_write the rest. While a write is in flight with
 * more than OUT_HIGH bytes queued behind it, the connection stops reading:
 * a peer that does not read its answers stops being read.
 *
 * Requests answered inside a read are flushed at the end of that read (one
 * write for every answer a read produced); answered later (a backend's
 * reply), the connection joins the flush list that a check handle drains
 * after the loop's poll phase, with an idle handle so that the poll does
 * not block first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/net/h2_server_int.h"
#include "kura_client.h"

#define OUT_HIGH (1u << 20)           /* bytes queued before mem_send waits */
#define STREAM_WINDOW (1u << 20)      /* per stream, for the peer's uploads */
#define CONN_WINDOW (16u << 20)       /* per connection */
#define REFUSING_MAX 64               /* connections being refused at once */
/* Under the sanitizers every request is malloc's own, so that a use after
 * free is still caught. */
#ifdef KURA_SANITIZED
#define REUSE 0
#else
#define REUSE 1
#endif
static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN (sizeof preface - 1)

static void conn_settle(kr_h2s_conn *c);
static void conn_close(kr_h2s_conn *c);
static void check_drained(kr_h2s *s);
static void maybe_free(kr_h2s *s);

/* --- buffers ------------------------------------------------------------------ */

int kr_h2s_buf_add(kr_h2s_buf *b, const void *p, size_t len)
{
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len)
      cap *= 2;
    uint8_t *np = realloc(b->p, cap);
    if (!np)
      return KURA_ENOMEM;
    b->p = np, b->cap = cap;
  }
  memcpy(b->p + b->len, p, len);
  b->len += len;
  return 0;
}

static void buf_free(kr_h2s_buf *b)
{
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* --- requests ----------------------------------------------------------------- */

/* A request is a few KiB, past what malloc serves from its per-thread
 * cache: freed ones are kept (up to KR_H2S_SPARE_MAX) for the next. */
kr_h2s_rq *kr_h2s_rq_new(kr_h2s_conn *c)
{
  kr_h2s *s = c->s;
  kr_h2s_rq *r = s->spare;
  if (r)
    s->spare = r->next, s->nspare--;
  else if (!(r = malloc(sizeof *r)))
    return NULL;
  memset(r, 0, offsetof(kr_h2s_rq, small_arena));
  r->c = c;
  r->arena = r->small_arena, r->acap = sizeof r->small_arena;
  r->hdrs = r->small_hdrs, r->caphdrs = KR_H2S_SMALL_HEADERS;
  r->body = r->small_body, r->bcap = sizeof r->small_body;
  r->method_off = r->path_off = SIZE_MAX;
  kr_h2_fields_init(&r->fields);
  r->next = c->reqs;
  if (c->reqs)
    c->reqs->prev = r;
  c->reqs = r;
  c->s->nreqs++;
  return r;
}

static void account(kr_h2s_rq *r, size_t more)
{
  r->accounted += more;
  r->c->s->buffered += more;
}

void kr_h2s_rq_free(kr_h2s_rq *r)
{
  kr_h2s_conn *c = r->c;
  if (c->last == r)
    c->last = NULL;
  if (r->prev)
    r->prev->next = r->next;
  else
    c->reqs = r->next;
  if (r->next)
    r->next->prev = r->prev;
  c->s->nreqs--;
  c->s->buffered -= r->accounted;
  if (r->arena != r->small_arena)
    free(r->arena);
  if (r->hdrs != r->small_hdrs)
    free(r->hdrs);
  if (r->body != r->small_body)
    free(r->body);
  free(r->rbody);
  if (r->trailers_owned)
    free(r->trailers);
  kr_h2s *s = c->s;
  if (REUSE && s->nspare < KR_H2S_SPARE_MAX && !s->closing) {
    r->next = s->spare;
    s->spare = r, s->nspare++;
  } else {
    free(r);
  }
}

/* Room for `need` more arena bytes; header pointers follow a move. */
static int arena_reserve(kr_h2s_rq *r, size_t need)
{
  if (r->alen + need <= r->acap)
    return 0;
  size_t cap = r->acap * 2;
  while (cap < r->alen + need)
    cap *= 2;
  char *na = r->arena == r->small_arena ? malloc(cap) : realloc(r->arena, cap);
  if (!na)
    return KURA_ENOMEM;
  if (r->arena == r->small_arena)
    memcpy(na, r->small_arena, r->alen);
  for (size_t i = 0; i < r->nhdrs; i++) {
    r->hdrs[i].name = na + (r->hdrs[i].name - r->arena);
    r->hdrs[i].value = na + (r->hdrs[i].value - r->arena);
  }
  account(r, cap - r->acap);
  r->arena = na, r->acap = cap;
  return 0;
}

static size_t arena_put(kr_h2s_rq *r, const char *s, size_t len)
{
  size_t off = r->alen;
  memcpy(r->arena + off, s, len);
  r->arena[off + len] = '\0';
  r->alen += len + 1;
  return off;
}

int kr_h2s_rq_set_pseudo(kr_h2s_rq *r, size_t *off, const char *v, size_t vl)
{
  if (arena_reserve(r, vl + 1))
    return KURA_ENOMEM;
  *off = arena_put(r, v, vl);
  return 0;
}

int kr_h2s_rq_add_header(kr_h2s_rq *r, const char *n, size_t nl, const char *v, size_t vl)
{
  if (r->nhdrs == r->caphdrs) {
    size_t cap = r->caphdrs * 2;
    kr_h2s_header *nh = r->hdrs == r->small_hdrs ? malloc(cap * sizeof *nh)
                                                 : realloc(r->hdrs, cap * sizeof *nh);
    if (!nh)
      return KURA_ENOMEM;
    if (r->hdrs == r->small_hdrs)
      memcpy(nh, r->small_hdrs, sizeof r->small_hdrs);
    account(r, (cap - r->caphdrs) * sizeof *nh);
    r->hdrs = nh, r->caphdrs = cap;
  }
  if (arena_reserve(r, nl + vl + 2))
    return KURA_ENOMEM;
  kr_h2s_header *h = &r->hdrs[r->nhdrs++];
  h->name = r->arena + arena_put(r, n, nl), h->nlen = nl;
  h->value = r->arena + arena_put(r, v, vl), h->vlen = vl;
  return 0;
}

/* Appends body bytes. KURA_ELIMIT past max_body (the body is dropped and
 * flagged), KURA_ENOMEM when the server holds max_buffered bytes. */
int kr_h2s_rq_add_body(kr_h2s_rq *r, const uint8_t *p, size_t len)
{
  kr_h2s *s = r->c->s;
  if (r->pub.body_too_large)
    return 0;
  if (r->blen + len > s->cfg.max_body) {
    r->pub.body_too_large = 1;
    return KURA_ELIMIT;
  }
  if (r->blen + len > r->bcap) {
    size_t cap = r->bcap * 2;
    while (cap < r->blen + len)
      cap *= 2;
    if (s->buffered + (cap - r->bcap) > s->cfg.max_buffered)
      return KURA_ENOMEM;
    uint8_t *nb = r->body == r->small_body ? malloc(cap) : realloc(r->body, cap);
    if (!nb)
      return KURA_ENOMEM;
    if (r->body == r->small_body)
      memcpy(nb, r->small_body, r->blen);
    account(r, cap - r->bcap);
    r->body = nb, r->bcap = cap;
  }
  memcpy(r->body + r->blen, p, len);
  r->blen += len;
  return 0;
}

/* The user's view of the request so far. */
static void rq_publish(kr_h2s_rq *r)
{
  kr_h2s_req *q = &r->pub;
  q->http_version = r->c->proto == KR_H2S_HTTP2 ? 2 : 1;
  q->method = r->method_off != SIZE_MAX ? r->arena + r->method_off : "";
  q->path = r->path_off != SIZE_MAX ? r->arena + r->path_off : "";
  q->path_len = strlen(q->path);
  q->headers = r->hdrs, q->nheaders = r->nhdrs;
  q->body = r->pub.body_too_large ? (const uint8_t *)"" : r->body;
  q->body_len = r->pub.body_too_large ? 0 : r->blen;
}

/* The published request goes to the user. */
static void rq_hand_over(kr_h2s_rq *r)
{
  kr_h2s *s = r->c->s;
  r->state = KR_H2S_WITH_USER;
  s->cfg.on_request(s->cfg.udata, &r->pub);
}

/* The request is complete: hand it to the user. */
void kr_h2s_rq_dispatch(kr_h2s_rq *r)
{
  rq_publish(r);
  rq_hand_over(r);
}

const char *kr_h2s_header_get(const kr_h2s_req *req, const char *name, size_t *len)
{
  size_t nl = strlen(name);
  for (size_t i = 0; i < req->nheaders; i++) {
    const kr_h2s_header *h = &req->headers[i];
    if (h->nlen == nl && strncasecmp(h->name, name, nl) == 0) {
      if (len)
        *len = h->vlen;
      return h->value;
    }
  }
  return NULL;
}

/* The request ends without an answer: tell the user if it has it. */
static void rq_end(kr_h2s_rq *r)
{
  kr_h2s *s = r->c->s;
  if (r->state == KR_H2S_WITH_USER)
    s->cfg.on_cancel(s->cfg.udata, &r->pub);
  kr_h2s_rq_free(r);
}

/* --- HTTP/2: nghttp2's callbacks ---------------------------------------------- */

/* The request of stream id. nghttp2 finds it in a hash map; a request's
 * frames come one after the other (a dozen headers, DATA, END_STREAM), so
 * the last one found is kept: a stream id names one request for the life
 * of the connection, and a freed request is forgotten (kr_h2s_rq_free). */
static kr_h2s_rq *stream_rq(kr_h2s_conn *c, int32_t id)
{
  if (c->last && c->last->stream_id == id)
    return c->last;
  kr_h2s_rq *r = nghttp2_session_get_stream_user_data(c->h2, id);
  if (r)
    c->last = r;
  return r;
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
  kr_h2s_conn *c = ud;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  kr_h2s_rq *r = kr_h2s_rq_new(c);
  if (!r)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  r->stream_id = f->hd.stream_id;
  nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, r);
  c->last = r;
  return 0;
}

/* A request that breaks RFC 9113's rules for its fields or its body is
 * reset with PROTOCOL_ERROR; the connection goes on. One still receiving
 * never reaches the user; one handed over early (config.whole) keeps its
 * state, so that closing the stream tells the user (on_cancel) if it still
 * has it, and is reset once. */
static int malformed(kr_h2s_conn *c, kr_h2s_rq *r)
{
  if (r->early)
    r->early = 0;
  else
    r->state = KR_H2S_DROPPED;
  c->s->stats.streams_malformed++;
  nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_PROTOCOL_ERROR);
  return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
  kr_h2s_conn *c = ud;
  kr_h2s_rq *r = stream_rq(c, f->hd.stream_id);
  if (r && r->early && f->headers.cat != NGHTTP2_HCAT_REQUEST)
    return kr_h2_trailer_ok(name, nl, value, vl) ? 0 : malformed(c, r);
  if (!r || r->state != KR_H2S_RECEIVING)
    return 0;
  if (f->headers.cat != NGHTTP2_HCAT_REQUEST) /* trailers: checked, not kept */
    return kr_h2_trailer_ok(name, nl, value, vl) ? 0 : malformed(c, r);
  enum kr_h2_field k = kr_h2_field_check(name, nl, value, vl);
  if (kr_h2_fields_add(&r->fields, k, value, vl) == KR_H2F_BAD)
    return malformed(c, r);
  r->header_bytes += nl + vl + 32;
  const char *n = (const char *)name, *v = (const char *)value;
  if (k == KR_H2F_METHOD)
    return kr_h2s_rq_set_pseudo(r, &r->method_off, v, vl) ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
  if (k == KR_H2F_PATH)
    return kr_h2s_rq_set_pseudo(r, &r->path_off, v, vl) ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
  if (k == KR_H2F_SCHEME || k == KR_H2F_AUTHORITY)
    return 0;
  if (r->header_bytes > c->s->cfg.max_header_bytes) {
    r->pub.headers_too_large = 1; /* the rest is dropped; the user answers */
    return 0;
  }
  return kr_h2s_rq_add_header(r, n, nl, v, vl) ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

/* Resets a stream the server cannot hold; the user never sees it. */
static void refuse_stream(kr_h2s_conn *c, kr_h2s_rq *r)
{
  r->state = KR_H2S_DROPPED;
  c->s->stats.streams_refused++;
  nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_REFUSED_STREAM);
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *ud)
{
  kr_h2s_conn *c = ud;
  kr_h2s_rq *r = stream_rq(c, id);
  if (r && r->early && len)
    return malformed(c, r); /* a body taken whole goes on */
  if (!r || r->state != KR_H2S_RECEIVING)
    return 0;
  r->rx_body += len;
  if (r->fields.content_length >= 0 && r->rx_body > (uint64_t)r->fields.content_length)
    return malformed(c, r); /* more than it said */
  if (kr_h2s_rq_add_body(r, data, len) == KURA_ENOMEM)
    refuse_stream(c, r);
  return 0;
}

/* A whole header block or the end of the body: the request's fields are
 * checked as a whole, and at its end it goes to the user. */
static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
  if (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS)
    return 0;
  int ends = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  kr_h2s_conn *c = ud;
  kr_h2s_rq *r = stream_rq(c, f->hd.stream_id);
  if (r && r->early) {
    if (f->hd.type == NGHTTP2_HEADERS && !ends)
      return malformed(c, r); /* trailers that do not end it */
    return 0;
  }
  if (!r || r->state != KR_H2S_RECEIVING)
    return 0;
  if (f->hd.type == NGHTTP2_HEADERS) {
    int request = f->headers.cat == NGHTTP2_HCAT_REQUEST;
    if (request ? kr_h2_fields_complete(&r->fields) != 0 : !ends)
      return malformed(c, r); /* pseudo-fields missing; trailers that do not end it */
  }
  if (!ends) {
    kr_h2s *s = c->s;
    if (f->hd.type == NGHTTP2_DATA && s->cfg.whole && r->fields.content_length < 0 &&
        !r->pub.body_too_large) {
      rq_publish(r);
      if (s->cfg.whole(s->cfg.udata, &r->pub)) {
        r->early = 1;
        rq_hand_over(r);
      }
    }
    return 0;
  }
  if (r->fields.content_length >= 0 && r->rx_body != (uint64_t)r->fields.content_length)
    return malformed(c, r);
  kr_h2s_rq_dispatch(r);
  return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t code, void *ud)
{
  kr_h2s_rq *r = stream_rq(ud, id);
  if (r) {
    nghttp2_session_set_stream_user_data(h2, id, NULL);
    rq_end(r);
  }
  return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
  kr_h2s_conn *c = ud;
  if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR &&
      !c->refusing)
    c->s->stats.protocol_errors++;
  return 0;
}

/* The response body, then the trailers (which end the stream). */
static ssize_t read_body(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
  kr_h2s_rq *r = src->ptr;
  size_t n = r->rlen - r->roff;
  if (n > len)
    n = len;
  if (n)
    memcpy(buf, r->rbody + r->roff, n);
  r->roff += n;
  if (r->roff < r->rlen)
    return (ssize_t)n;
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  if (r->ntrailers) {
    *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    if (nghttp2_submit_trailer(h2, id, r->trailers, r->ntrailers) != 0)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return (ssize_t)n;
}

static int setup_callbacks(kr_h2s *s)
{
  if (nghttp2_session_callbacks_new(&s->cbs) || nghttp2_option_new(&s->opt))
    return KURA_ENOMEM;
  nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(s->cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(s->cbs, on_frame_send);
  /* nghttp2 itself bounds what a peer can make it queue or replay: SETTINGS
   * entries, unanswered PINGs and SETTINGS, CONTINUATION frames, and the
   * rate of streams the peer resets (the "rapid reset" attack). */
  nghttp2_option_set_max_settings(s->opt, 64);
  nghttp2_option_set_max_outbound_ack(s->opt, 1000);
  nghttp2_option_set_max_continuations(s->opt, 16);
  nghttp2_option_set_stream_reset_rate_limit(s->opt, 1000, 100);
  /* The fields' rules are checked in on_header (h2_fields.c), more cheaply. */
  nghttp2_option_set_no_http_messaging(s->opt, 1);
  return 0;
}

/* --- HTTP/2: responses ------------------------------------------------------------- */

/* The trailers as nghttp2 takes them, valid until the stream ends: static
 * ones are pointed at from the request's own small array (no copy);
 * others are copied into one block the request owns. */
static int keep_trailers(kr_h2s_rq *r, const kr_h2s_response *res)
{
  const kr_h2s_header *t = res->trailers;
  size_t n = res->ntrailers;
  if (res->static_trailers && n <= KR_H2S_STATIC_TRAILERS) {
    for (size_t i = 0; i < n; i++)
      r->static_nv[i] = (nghttp2_nv){(uint8_t *)(uintptr_t)t[i].name,
                                     (uint8_t *)(uintptr_t)t[i].value, t[i].nlen, t[i].vlen,
                                     NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
    r->trailers = r->static_nv, r->ntrailers = n;
    return 0;
  }
  size_t bytes = n * sizeof(nghttp2_nv);
  for (size_t i = 0; i < n; i++)
    bytes += t[i].nlen + t[i].vlen;
  uint8_t *blk = malloc(bytes ? bytes : 1);
  if (!blk)
    return KURA_ENOMEM;
  nghttp2_nv *nv = (nghttp2_nv *)blk;
  uint8_t *p = blk + n * sizeof(nghttp2_nv);
  for (size_t i = 0; i < n; i++) {
    memcpy(p, t[i].name, t[i].nlen);
    nv[i].name = p, nv[i].namelen = t[i].nlen, p += t[i].nlen;
    memcpy(p, t[i].value, t[i].vlen);
    nv[i].value = p, nv[i].valuelen = t[i].vlen, p += t[i].vlen;
    nv[i].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  }
  r->trailers = nv, r->ntrailers = n, r->trailers_owned = 1;
  return 0;
}

static nghttp2_nv nv_of(const char *n, size_t nl, const char *v, size_t vl)
{
  nghttp2_nv nv = {(uint8_t *)(uintptr_t)n, (uint8_t *)(uintptr_t)v, nl, vl,
                   NGHTTP2_NV_FLAG_NONE};
  return nv;
}

static int h2_respond(kr_h2s_rq *r, const kr_h2s_response *res)
{
  kr_h2s_conn *c = r->c;
  char status[8];
  int sl = res->status == 200 ? (memcpy(status, "200", 4), 3)
                              : snprintf(status, sizeof status, "%d", res->status);
  nghttp2_nv small[16], *nva = small;
  if (res->nheaders + 1 > sizeof small / sizeof small[0] &&
      !(nva = malloc((res->nheaders + 1) * sizeof *nva)))
    return KURA_ENOMEM;
  nva[0] = nv_of(":status", 7, status, (size_t)sl);
  for (size_t i = 0; i < res->nheaders; i++)
    nva[i + 1] = nv_of(res->headers[i].name, res->headers[i].nlen, res->headers[i].value,
                       res->headers[i].vlen);
  int rc = res->ntrailers ? keep_trailers(r, res) : 0;
  nghttp2_data_provider prd = {.source.ptr = r, .read_callback = read_body};
  int with_data = res->body_len > 0 || res->ntrailers > 0;
  if (!rc && nghttp2_submit_response(c->h2, r->stream_id, nva, res->nheaders + 1,
                                     with_data ? &prd : NULL) != 0)
    rc = KURA_EINTERNAL;
  if (nva != small)
    free(nva);
  return rc;
}

static void on_kick(uv_idle_t *i)
{
  (void)i; /* only keeps the poll phase from blocking before the flush */
}

/* Queues c for the flush after this loop turn's poll phase. */
static void mark_dirty(kr_h2s_conn *c)
{
  kr_h2s *s = c->s;
  if (c->in_read || c->dirty || c->closing)
    return;
  c->dirty = 1;
  c->next_dirty = s->dirty;
  s->dirty = c;
  if (!s->kicking) {
    s->kicking = 1;
    uv_idle_start(&s->kick, on_kick);
  }
}

static void on_flush(uv_check_t *h)
{
  kr_h2s *s = h->data;
  while (s->dirty) {
    kr_h2s_conn *c = s->dirty;
    s->dirty = c->next_dirty;
    c->dirty = 0;
    conn_settle(c);
  }
  if (s->kicking) {
    s->kicking = 0;
    uv_idle_stop(&s->kick);
  }
}

int kr_h2s_respond(kr_h2s_req *req, const kr_h2s_response *res)
{
  kr_h2s_rq *r = (kr_h2s_rq *)req;
  kr_h2s_conn *c = r->c;
  r->state = KR_H2S_RESPONDED;
  r->rbody = res->body, r->rlen = res->body_len; /* moved: freed with r */
  int rc;
  if (c->proto == KR_H2S_HTTP1) {
    rc = kr_h2s_h1_respond(r, res);
  } else {
    rc = h2_respond(r, res);
    if (rc)
      nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id,
                                NGHTTP2_INTERNAL_ERROR);
  }
  mark_dirty(c);
  return rc;
}

/* --- connections: output ------------------------------------------------------------ */

static void on_written(uv_write_t *w, int status)
{
  kr_h2s_conn *c = w->data;
  free(c->wmem);
  c->wmem = NULL;
  c->writing = 0;
  if (c->closing)
    return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  conn_settle(c);
}

/* Writes what c->out holds: at once what the socket takes, the rest with
 * one uv_write that owns the buffer. */
void kr_h2s_conn_write(kr_h2s_conn *c)
{
  if (c->writing || c->out.len == 0 || c->closing)
    return;
  uv_buf_t b = uv_buf_init((char *)c->out.p, (unsigned)c->out.len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == (int)c->out.len) {
    c->out.len = 0;
    if (c->out.cap > 4 * OUT_HIGH)
      buf_free(&c->out); /* do not keep a burst's buffer */
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    c->want_close = 1, c->out.len = 0;
    return;
  }
  size_t done = n > 0 ? (size_t)n : 0;
  c->wmem = c->out.p;
  c->wbuf = uv_buf_init((char *)c->out.p + done, (unsigned)(c->out.len - done));
  c->out.p = NULL, c->out.len = c->out.cap = 0;
  c->writing = 1;
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &c->wbuf, 1, on_written) != 0) {
    free(c->wmem);
    c->wmem = NULL, c->writing = 0, c->want_close = 1;
  }
}

/* Moves nghttp2's frames into c->out, up to OUT_HIGH bytes. */
static int h2_produce(kr_h2s_conn *c)
{
  while (c->out.len < OUT_HIGH) { /* also after a fatal error: its GOAWAY */
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(c->h2, &data);
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    if (kr_h2s_buf_add(&c->out, data, (size_t)n))
      return -1;
  }
  return 0;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/* Reading stops while the output backs up, and starts again once it drains. */
static void flow(kr_h2s_conn *c)
{
  int backed_up = c->writing && c->out.len >= OUT_HIGH;
  if (backed_up && !c->paused) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->paused = 1;
  } else if (!backed_up && c->paused && !c->want_close) {
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->paused = 0;
  }
}

/* A safe point: produce, write, go on parsing HTTP/1.1, close when done. */
static void conn_settle(kr_h2s_conn *c)
{
  if (c->closing)
    return;
  /* A write the socket took whole frees the buffer for more: go on until
   * nghttp2 has nothing more to send (or the peer's window is shut, or a
   * write waits for the socket and on_written takes over). */
  size_t produced;
  do {
    size_t before = c->out.len;
    if (c->h2 && h2_produce(c) != 0)
      c->want_close = 1;
    produced = c->out.len - before;
    if (c->proto == KR_H2S_HTTP1 && !c->h1_cur && !c->want_close && c->in.len)
      kr_h2s_h1_feed(c);
    kr_h2s_conn_write(c);
  } while (produced && c->h2 && !c->writing && !c->closing && !c->want_close);
  flow(c);
  int idle = !c->writing && c->out.len == 0;
  if (c->h2 && idle && !nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
    c->want_close = 1;
  if (c->proto == KR_H2S_HTTP1 && c->draining && !c->h1_cur && idle)
    c->want_close = 1;
  if (c->want_close && idle)
    conn_close(c);
}

/* --- connections: life cycle ------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
  kr_h2s_conn *c = h->data;
  kr_h2s *s = c->s;
  if (c->dirty) { /* not flushed yet: take it off the list */
    kr_h2s_conn **pp = &s->dirty;
    while (*pp != c)
      pp = &(*pp)->next_dirty;
    *pp = c->next_dirty;
  }
  buf_free(&c->in);
  buf_free(&c->out);
  free(c->wmem);
  free(c);
  s->live_conns--;
  check_drained(s);
  maybe_free(s);
}

/* Ends every request, drops the session and closes the socket. */
static void conn_close(kr_h2s_conn *c)
{
  kr_h2s *s = c->s;
  if (c->closing)
    return;
  c->closing = 1;
  while (c->reqs)
    rq_end(c->reqs);
  c->h1_cur = NULL;
  if (c->h2) {
    nghttp2_session_del(c->h2);
    c->h2 = NULL;
  }
  s->buffered -= c->in_accounted;
  c->in_accounted = 0;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  if (c->refusing)
    s->nrefusing--;
  else
    s->nconns--;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static int h2_start(kr_h2s_conn *c)
{
  kr_h2s *s = c->s;
  if (nghttp2_session_server_new3(&c->h2, s->cbs, c, s->opt, &s->pool.mem) != 0)
    return -1;
  nghttp2_settings_entry iv[] = {
    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_streams},
    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)s->cfg.max_header_bytes},
    /* No RFC 7540 priority tree: nothing here orders streams, and nghttp2
     * skips its bookkeeping per stream. */
    {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) ||
      nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW))
    return -1;
  if (c->refusing) {
    static const char why[] = "kura serve: too many connections";
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_REFUSED_STREAM,
                          (const uint8_t *)why, sizeof why - 1);
  } else if (s->draining) {
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
  }
  return 0;
}

static void h2_feed(kr_h2s_conn *c, const uint8_t *p, size_t len)
{
  ssize_t n = nghttp2_session_mem_recv(c->h2, p, len);
  if (n < 0) {
    /* A fatal error (a flood, too many CONTINUATION frames): nghttp2 queues
     * no GOAWAY for those; the peer gets one that says why, then the close. */
    const char *why = nghttp2_strerror((int)n);
    uint32_t code = n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                      ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->h2), code,
                          (const uint8_t *)why, strlen(why));
    c->s->stats.protocol_errors++;
    c->want_close = 1;
  }
}

/* The first bytes decide: the HTTP/2 preface, or HTTP/1.1. */
static void sniff(kr_h2s_conn *c, const uint8_t *p, size_t len)
{
  if (kr_h2s_buf_add(&c->in, p, len)) {
    c->want_close = 1;
    return;
  }
  size_t n = c->in.len < PREFACE_LEN ? c->in.len : PREFACE_LEN;
  int h2 = memcmp(c->in.p, preface, n) == 0;
  if (h2 && c->in.len < PREFACE_LEN)
    return; /* wait for the rest of the preface */
  if (h2) {
    c->proto = KR_H2S_HTTP2;
    if (h2_start(c) != 0) {
      c->want_close = 1;
      return;
    }
    kr_h2s_buf in = c->in;
    c->in = (kr_h2s_buf){0};
    if (!c->refusing)
      h2_feed(c, in.p, in.len);
    buf_free(&in);
    return;
  }
  c->proto = KR_H2S_HTTP1;
  if (c->refusing)
    kr_h2s_h1_reject(c, 503, "kura serve: too many connections\n");
  else
    kr_h2s_h1_feed(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  kr_h2s_conn *c = h->data;
  *buf = uv_buf_init((char *)c->s->readbuf, sizeof c->s->readbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
  kr_h2s_conn *c = st->data;
  if (nread == 0 || c->closing)
    return;
  if (nread < 0) { /* EOF or an error: nothing more will arrive */
    uv_read_stop(st);
    c->want_close = 1;
    conn_close(c);
    return;
  }
  const uint8_t *p = (const uint8_t *)buf->base;
  c->in_read = 1;
  if (c->proto == KR_H2S_HTTP2 && !c->refusing)
    h2_feed(c, p, (size_t)nread);
  else if (c->proto == KR_H2S_SNIFF)
    sniff(c, p, (size_t)nread);
  else if (c->proto == KR_H2S_HTTP1 && !c->refusing && !c->want_close) {
    if (kr_h2s_buf_add(&c->in, p, (size_t)nread) == 0)
      kr_h2s_h1_feed(c);
    else
      c->want_close = 1;
  }
  c->in_read = 0;
  conn_settle(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
  kr_h2s *s = ls->data;
  if (status < 0)
    return;
  kr_h2s_conn *c = calloc(1, sizeof *c);
  if (!c || uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    return;
  }
  c->s = s;
  c->tcp.data = c;
  s->live_conns++;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0 ||
      (s->nconns >= s->cfg.max_connections && s->nrefusing >= REFUSING_MAX)) {
    c->closing = 1; /* never listed: closed at once */
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    s->stats.refused++;
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  if (s->nconns >= s->cfg.max_connections) {
    c->refusing = 1;
    s->nrefusing++;
    s->stats.refused++;
  } else {
    s->nconns++;
    s->stats.accepted++;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* --- the server ---------------------------------------------------------------------- */

static int bind_listen(kr_h2s *s, char *err, size_t errlen)
{
  struct sockaddr_storage sa;
  const char *host = s->cfg.host && *s->cfg.host ? s->cfg.host : "127.0.0.1";
  if (uv_ip4_addr(host, s->cfg.port, (struct sockaddr_in *)&sa) != 0 &&
      uv_ip6_addr(host, s->cfg.port, (struct sockaddr_in6 *)&sa) != 0) {
    snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", host);
    return KURA_EINVAL;
  }
  uv_tcp_init(s->loop, &s->listener);
  s->listener.data = s;
  s->handles_open++;
  s->listening = 1; /* the handle is open (stop_listening closes it) */
  int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "cannot listen on %s port %d: %s", host, s->cfg.port,
             uv_strerror(rc));
    return KURA_ECONN;
  }
  return 0;
}

static void defaults(kr_h2s_config *c)
{
  if (!c->max_connections)
    c->max_connections = 1024;
  if (!c->max_streams)
    c->max_streams = 128;
  if (!c->max_body)
    c->max_body = 32u << 20;
  if (!c->max_buffered)
    c->max_buffered = 512u << 20;
  if (!c->max_header_bytes) /* an HTTP API URL holds a 64 KiB key in base64 */
    c->max_header_bytes = 128u << 10;
}

/* Frees s once its own handles and every connection have closed. */
static void maybe_free(kr_h2s *s)
{
  if (!s->closing || s->handles_open > 0 || s->live_conns > 0)
    return;
  void (*closed)(void *) = s->closed;
  void *ud = s->closed_ud;
  while (s->spare) {
    kr_h2s_rq *r = s->spare;
    s->spare = r->next;
    free(r);
  }
  nghttp2_session_callbacks_del(s->cbs);
  nghttp2_option_del(s->opt);
  kr_h2_pool_release(&s->pool);
  free(s);
  if (closed)
    closed(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
  kr_h2s *s = h->data;
  s->handles_open--;
  maybe_free(s);
}

static void check_drained(kr_h2s *s)
{
  if (!s->draining || s->nconns + s->nrefusing > 0 || !s->drained)
    return;
  void (*cb)(void *) = s->drained;
  s->drained = NULL; /* once */
  cb(s->drained_ud);
}

static void stop_listening(kr_h2s *s)
{
  if (!s->listening)
    return;
  s->listening = 0;
  uv_close((uv_handle_t *)&s->listener, on_handle_closed);
}

/* Asks c to end: GOAWAY naming the last stream it took (HTTP/2), or close
 * after the current response (HTTP/1.1); a connection that has not said
 * which it speaks closes now. */
static void conn_drain(kr_h2s_conn *c)
{
  if (c->closing || c->draining)
    return;
  c->draining = 1;
  if (c->h2) {
    int32_t last = nghttp2_session_get_last_proc_stream_id(c->h2);
    static const char why[] = "kura serve: shutting down";
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR,
                          (const uint8_t *)why, sizeof why - 1);
  } else if (c->proto == KR_H2S_SNIFF) {
    c->want_close = 1;
  } else {
    c->h1_close = 1;
  }
  conn_settle(c);
}

void kr_h2s_drain(kr_h2s *s, void (*drained)(void *ud), void *ud)
{
  s->draining = 1;
  s->drained = drained, s->drained_ud = ud;
  stop_listening(s);
  for (kr_h2s_conn *c = s->conns, *next; c; c = next) {
    next = c->next; /* c may close */
    conn_drain(c);
  }
  check_drained(s);
}

void kr_h2s_close(kr_h2s *s, void (*closed)(void *ud), void *ud)
{
  s->closing = 1;
  s->drained = NULL;
  s->closed = closed, s->closed_ud = ud;
  stop_listening(s);
  while (s->conns)
    conn_close(s->conns);
  uv_close((uv_handle_t *)&s->flusher, on_handle_closed);
  uv_close((uv_handle_t *)&s->kick, on_handle_closed);
}

int kr_h2s_port(const kr_h2s *s)
{
  struct sockaddr_storage sa;
  int len = sizeof sa;
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &len) != 0)
    return -1;
  if (sa.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
  return ntohs(((struct sockaddr_in *)&sa)->sin_port);
}

void kr_h2s_get_stats(const kr_h2s *s, kr_h2s_stats *out)
{
  *out = s->stats;
  out->connections = s->nconns;
  out->requests = s->nreqs;
}

int kr_h2s_new(uv_loop_t *loop, const kr_h2s_config *cfg, kr_h2s **out, char *err,
               size_t errlen)
{
  *out = NULL;
  kr_h2s *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return KURA_ENOMEM;
  }
  s->loop = loop;
  s->cfg = *cfg;
  defaults(&s->cfg);
  kr_h2_pool_init(&s->pool);
  if (setup_callbacks(s)) {
    nghttp2_session_callbacks_del(s->cbs);
    nghttp2_option_del(s->opt);
    free(s);
    snprintf(err, errlen, "out of memory");
    return KURA_ENOMEM;
  }
  uv_check_init(loop, &s->flusher);
  uv_idle_init(loop, &s->kick);
  s->flusher.data = s->kick.data = s;
  s->handles_open = 2;
  uv_check_start(&s->flusher, on_flush);
  uv_unref((uv_handle_t *)&s->flusher);
  int rc = bind_listen(s, err, errlen);
  if (rc) {
    kr_h2s_close(s, NULL, NULL);
    return rc;
  }
  *out = s;
  return 0;
}
