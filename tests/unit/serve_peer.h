/* Shared by the kura serve tests (test_serve.c, test_serve_http1.c): a
 * server on a memory client in this process, with a miss hook the test
 * controls, and peers on the same loop: nghttp2 client sessions (for calls
 * whose answers are checked header by header) or raw bytes (malformed
 * frames, floods, HTTP/1.1). Protobuf is written and read by hand here,
 * independently of the server's protobuf-c. */
#ifndef KR_TEST_SERVE_PEER_H
#define KR_TEST_SERVE_PEER_H

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/serve/serve.h"

/* --- the fixture ---------------------------------------------------------------- */

static inline void ignore_result(void *ud, const kr_request *req, const kr_result *res)
{
  (void)ud, (void)req, (void)res;
}

typedef struct hook_call {
  kr_serve_miss_done done;
  void *done_ud;
  char key[64];
} hook_call;

typedef struct fx {
  uv_loop_t loop;
  kr_client *client;
  kr_serve *srv;
  int port;
  int closed, drained;
  /* The miss hook: answers at once with `answer` (NULL: a miss), or holds
   * the calls when `hold` (the test answers them). */
  int hook_calls, hold;
  const char *answer;
  hook_call held[64];
  int nheld;
} fx;

static inline void test_hook(void *ud, const char *cache, size_t clen, const void *key, size_t klen,
                      kr_serve_miss_done done, void *done_ud)
{
  fx *f = ud;
  f->hook_calls++;
  if (f->hold && f->nheld < 64) {
    hook_call *h = &f->held[f->nheld++];
    h->done = done, h->done_ud = done_ud;
    snprintf(h->key, sizeof h->key, "%.*s", (int)klen, (const char *)key);
    return;
  }
  done(done_ud, 0, NULL, f->answer, f->answer ? strlen(f->answer) : 0, 0);
}

static inline int fx_open(fx *f, const kr_serve_config *extra)
{
  memset(f, 0, sizeof *f);
  uv_loop_init(&f->loop);
  static int stores; /* each fixture its own store: no state between tests */
  char store[64], err[256];
  snprintf(store, sizeof store, "test-serve-%d", ++stores);
  kr_client_config cc = {.backend = "memory", .store = store};
  if (kr_client_new(&f->loop, &cc, &f->client, err, sizeof err)) {
    fprintf(stderr, "client: %s\n", err);
    return -1;
  }
  kr_serve_config sc = extra ? *extra : (kr_serve_config){0};
  sc.port = 0;
  sc.on_miss = test_hook, sc.miss_ud = f;
  if (kr_serve_new(&f->loop, f->client, &sc, &f->srv, err, sizeof err)) {
    fprintf(stderr, "serve: %s\n", err);
    return -1;
  }
  f->port = kr_serve_port(f->srv);
  kr_request r = {.op = KR_OP_CREATE_CACHE, .cache = "c", .cache_len = 1};
  return kr_client_submit(f->client, &r, ignore_result, NULL);
}

static inline void on_srv_closed(void *ud)
{
  ((fx *)ud)->closed = 1;
}

static inline void on_drained(void *ud)
{
  ((fx *)ud)->drained = 1;
}

/* Answers the held hook calls that are left, closes everything. */
static inline void fx_close(fx *f)
{
  for (int i = 0; i < f->nheld; i++)
    if (f->held[i].done)
      f->held[i].done(f->held[i].done_ud, KURA_ECANCELLED, "test over", NULL, 0, 0);
  if (!f->closed)
    kr_serve_close(f->srv, on_srv_closed, f);
  kr_client_close(f->client, NULL, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  uv_loop_close(&f->loop);
}

static inline void hook_answer(fx *f, int i, const char *val)
{
  kr_serve_miss_done done = f->held[i].done;
  f->held[i].done = NULL;
  done(f->held[i].done_ud, 0, NULL, val, val ? strlen(val) : 0, 0);
}

/* Runs the loop until cond(arg) or `ms` pass; returns cond's last value. */
static inline void on_tick(uv_timer_t *t)
{
  *(int *)t->data = 1;
}

static inline int run_until(fx *f, int (*cond)(void *), void *arg, int ms)
{
  uv_timer_t t;
  int expired = 0;
  uv_timer_init(&f->loop, &t);
  t.data = &expired;
  uv_timer_start(&t, on_tick, (uint64_t)ms, 0);
  while (!(cond && cond(arg)) && !expired)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return cond ? cond(arg) : 0;
}

/* --- protobuf by hand ------------------------------------------------------------- */

typedef struct buf {
  uint8_t p[1 << 16];
  size_t len;
} buf;

static inline void pb_varint_raw(buf *b, uint64_t v)
{
  while (v >= 0x80) {
    b->p[b->len++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b->p[b->len++] = (uint8_t)v;
}

static inline void pb_varint(buf *b, int field, uint64_t v)
{
  pb_varint_raw(b, (uint64_t)field << 3);
  pb_varint_raw(b, v);
}

static inline void pb_bytes(buf *b, int field, const void *p, size_t n)
{
  pb_varint_raw(b, (uint64_t)field << 3 | 2);
  pb_varint_raw(b, n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* A gRPC body: the 5-byte prefix, then the message. */
static inline size_t grpc_frame(uint8_t *out, const buf *m)
{
  out[0] = 0;
  out[1] = (uint8_t)(m->len >> 24), out[2] = (uint8_t)(m->len >> 16);
  out[3] = (uint8_t)(m->len >> 8), out[4] = (uint8_t)m->len;
  memcpy(out + 5, m->p, m->len);
  return m->len + 5;
}

/* Reads _GetResponse from a gRPC body: result (2 hit, 3 miss) and the value. */
static inline int get_response(const uint8_t *p, size_t n, int *result, const uint8_t **val,
                        size_t *vlen)
{
  if (n < 5)
    return -1;
  size_t i = 5, end = 5 + ((size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4]);
  *result = 0, *val = NULL, *vlen = 0;
  while (i < end && end <= n) {
    uint8_t tag = p[i++];
    uint64_t v = 0;
    for (int s = 0; i < end; s += 7) {
      v |= (uint64_t)(p[i] & 0x7f) << s;
      if (!(p[i++] & 0x80))
        break;
    }
    if (tag == 0x08)
      *result = (int)v;
    else if (tag == 0x12)
      *val = p + i, *vlen = v, i += v;
    else
      return -1;
  }
  return 0;
}

/* --- peers ------------------------------------------------------------------------ */

#define MAXS 256

typedef struct sres {
  int32_t id;
  int status, grpc_status, closed;
  uint32_t rst;                   /* RST_STREAM or close error code */
  char grpc_message[512];
  uint8_t *body;
  size_t blen, bcap;
  uint8_t *req;                   /* the request body being sent */
  size_t reqlen, reqoff;
} sres;

typedef struct peer {
  fx *f;
  uv_tcp_t tcp;
  uv_connect_t creq;
  int connected, eof, tcp_closed;
  uint8_t *in;                    /* raw bytes received, NUL-terminated */
  size_t inlen, incap;
  nghttp2_session *h2;            /* NULL: a raw peer */
  sres s[MAXS];
  int ns;
  int goaway;
  uint32_t goaway_code;
} peer;

static inline sres *sres_of(peer *p, int32_t id)
{
  for (int i = 0; i < p->ns; i++)
    if (p->s[i].id == id)
      return &p->s[i];
  return NULL;
}

static inline void on_peer_written(uv_write_t *w, int status)
{
  (void)status;
  free(w->data);
  free(w);
}

static inline void peer_write(peer *p, const void *data, size_t len)
{
  if (p->tcp_closed || p->eof || len == 0)
    return;
  uv_write_t *w = malloc(sizeof *w);
  w->data = malloc(len);
  memcpy(w->data, data, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(w, (uv_stream_t *)&p->tcp, &b, 1, on_peer_written) != 0) {
    free(w->data);
    free(w);
  }
}

static inline void peer_flush(peer *p)
{
  const uint8_t *data;
  ssize_t n;
  while (p->h2 && (n = nghttp2_session_mem_send(p->h2, &data)) > 0)
    peer_write(p, data, (size_t)n);
}

static inline void peer_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
  (void)h;
  b->base = malloc(hint);
  b->len = hint;
}

static inline void peer_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
  peer *p = st->data;
  if (n < 0)
    p->eof = 1;
  if (n > 0) {
    if (p->inlen + (size_t)n + 1 > p->incap) { /* + 1: kept NUL-terminated */
      p->incap = (p->inlen + (size_t)n + 1) * 2;
      p->in = realloc(p->in, p->incap);
    }
    memcpy(p->in + p->inlen, b->base, (size_t)n);
    p->inlen += (size_t)n;
    p->in[p->inlen] = 0;
    ssize_t rv;
    if (p->h2 && (rv = nghttp2_session_mem_recv(p->h2, (const uint8_t *)b->base, (size_t)n)) < 0) {
      fprintf(stderr, "  peer: %s\n", nghttp2_strerror((int)rv));
      p->eof = 1;
    }
    peer_flush(p);
  }
  free(b->base);
}

static inline void on_peer_connected(uv_connect_t *c, int status)
{
  peer *p = c->data;
  p->connected = status == 0 ? 1 : -1;
  if (status == 0)
    uv_read_start((uv_stream_t *)&p->tcp, peer_alloc, peer_read);
}

static inline int is_connected(void *arg)
{
  return ((peer *)arg)->connected != 0;
}

/* nghttp2 client callbacks: what each stream answered. */
static inline int cb_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *n, size_t nl,
                     const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
  sres *r = sres_of(ud, fr->hd.stream_id);
  if (!r)
    return 0;
  if (nl == 7 && memcmp(n, ":status", 7) == 0)
    r->status = atoi((const char *)v);
  else if (nl == 11 && memcmp(n, "grpc-status", 11) == 0)
    r->grpc_status = atoi((const char *)v);
  else if (nl == 12 && memcmp(n, "grpc-message", 12) == 0)
    snprintf(r->grpc_message, sizeof r->grpc_message, "%.*s", (int)vl, (const char *)v);
  return 0;
}

static inline int cb_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
                   void *ud)
{
  sres *r = sres_of(ud, id);
  if (r) {
    if (r->blen + len + 1 > r->bcap) { /* geometric: ASan's realloc always copies */
      r->bcap = (r->blen + len + 1) * 2;
      r->body = realloc(r->body, r->bcap);
    }
    memcpy(r->body + r->blen, d, len);
    r->blen += len;
  }
  return 0;
}

static inline int cb_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
  sres *r = sres_of(ud, id);
  if (r)
    r->closed = 1, r->rst = code;
  return 0;
}

static inline int cb_frame(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
  peer *p = ud;
  if (fr->hd.type == NGHTTP2_GOAWAY)
    p->goaway = 1, p->goaway_code = fr->goaway.error_code;
  return 0;
}

/* window: the client's stream window (0: nghttp2's default). With a
 * window the peer sends no WINDOW_UPDATE of its own. big_headers: the peer
 * sends header blocks of any size (nghttp2 stops at 64 KiB by default). */
static inline int peer_open(peer *p, fx *f, int h2, uint32_t window, int big_headers)
{
  memset(p, 0, sizeof *p);
  p->f = f;
  uv_tcp_init(&f->loop, &p->tcp);
  p->tcp.data = p;
  p->creq.data = p;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", f->port, &sa);
  uv_tcp_connect(&p->creq, &p->tcp, (const struct sockaddr *)&sa, on_peer_connected);
  run_until(f, is_connected, p, 5000);
  if (p->connected != 1 || !h2)
    return p->connected == 1 ? 0 : -1;
  nghttp2_session_callbacks *cbs;
  nghttp2_option *opt;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_option_new(&opt);
  nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_close);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame);
  if (window)
    nghttp2_option_set_no_auto_window_update(opt, 1);
  if (big_headers)
    nghttp2_option_set_max_send_header_block_length(opt, 4u << 20);
  nghttp2_session_client_new2(&p->h2, cbs, p, opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window}};
  nghttp2_submit_settings(p->h2, NGHTTP2_FLAG_NONE, iv, window ? 1 : 0);
  if (window)
    nghttp2_session_set_local_window_size(p->h2, NGHTTP2_FLAG_NONE, 0, (int32_t)window);
  peer_flush(p);
  return 0;
}

static inline void on_peer_closed(uv_handle_t *h)
{
  ((peer *)h->data)->tcp_closed = 2;
}

static inline int peer_gone(void *arg)
{
  return ((peer *)arg)->tcp_closed == 2;
}

static inline void peer_close(peer *p)
{
  if (!p->tcp_closed) {
    p->tcp_closed = 1;
    uv_close((uv_handle_t *)&p->tcp, on_peer_closed);
    run_until(p->f, peer_gone, p, 5000);
  }
  if (p->h2)
    nghttp2_session_del(p->h2);
  p->h2 = NULL;
  for (int i = 0; i < p->ns; i++)
    free(p->s[i].body), free(p->s[i].req);
  free(p->in);
  p->in = NULL;
}

static inline ssize_t req_body(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
  sres *r = src->ptr;
  size_t n = r->reqlen - r->reqoff < len ? r->reqlen - r->reqoff : len;
  memcpy(out, r->req + r->reqoff, n);
  r->reqoff += n;
  if (r->reqoff == r->reqlen)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

/* A gRPC call: POST path with the body as given (already framed) and the
 * extra headers. Returns the stream's result slot. */
static inline sres *call_raw(peer *p, const char *path, const char *cache, const nghttp2_nv *extra,
                      size_t nextra, const uint8_t *body, size_t blen)
{
  nghttp2_nv nv[40] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", path),
                       NV(":authority", "localhost"), NV("content-type", "application/grpc"),
                       NV("te", "trailers")};
  size_t n = 6;
  if (cache)
    nv[n++] = (nghttp2_nv)NV("cache", cache);
  for (size_t i = 0; i < nextra && n < sizeof nv / sizeof nv[0]; i++)
    nv[n++] = extra[i];
  sres *r = &p->s[p->ns++];
  memset(r, 0, sizeof *r);
  r->grpc_status = -1;
  r->req = malloc(blen ? blen : 1);
  memcpy(r->req, body, blen);
  r->reqlen = blen;
  nghttp2_data_provider prd = {.source.ptr = r, .read_callback = req_body};
  r->id = nghttp2_submit_request(p->h2, NULL, nv, n, &prd, NULL);
  peer_flush(p);
  return r;
}

static inline sres *call_msg(peer *p, const char *path, const char *cache, const buf *m)
{
  static uint8_t body[(1 << 16) + 5];
  size_t n = grpc_frame(body, m);
  return call_raw(p, path, cache, NULL, 0, body, n);
}

static inline int is_closed(void *arg)
{
  return ((sres *)arg)->closed;
}

/* Generous: the machine may be busy and the build sanitized. */
static inline int wait_stream(peer *p, sres *r)
{
  return run_until(p->f, is_closed, r, 30000);
}

static inline sres *do_set(peer *p, const char *key, const void *val, size_t vlen)
{
  static buf m;
  m.len = 0;
  pb_bytes(&m, 1, key, strlen(key));
  pb_bytes(&m, 2, val, vlen);
  pb_varint(&m, 3, 60000);
  sres *r = call_msg(p, "/cache_client.Scs/Set", "c", &m);
  wait_stream(p, r);
  return r;
}

static inline sres *start_get(peer *p, const char *key, const nghttp2_nv *extra, size_t nextra)
{
  buf m = {.len = 0};
  static uint8_t body[300];
  pb_bytes(&m, 1, key, strlen(key));
  size_t n = grpc_frame(body, &m);
  return call_raw(p, "/cache_client.Scs/Get", "c", extra, nextra, body, n);
}

/* --- raw frames --------------------------------------------------------------------- */

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* Appends a frame header declaring `len`, then plen payload bytes. */
static inline void put_frame(buf *b, size_t len, int type, int flags, uint32_t id, const void *payload,
                      size_t plen)
{
  uint8_t *o = b->p + b->len;
  o[0] = (uint8_t)(len >> 16), o[1] = (uint8_t)(len >> 8), o[2] = (uint8_t)len;
  o[3] = (uint8_t)type, o[4] = (uint8_t)flags;
  o[5] = (uint8_t)(id >> 24 & 0x7f), o[6] = (uint8_t)(id >> 16);
  o[7] = (uint8_t)(id >> 8), o[8] = (uint8_t)id;
  b->len += 9;
  if (plen)
    memcpy(b->p + b->len, payload, plen);
  b->len += plen;
}

static inline void raw_start(peer *p, buf *b)
{
  b->len = 0;
  memcpy(b->p, preface, sizeof preface - 1);
  b->len = sizeof preface - 1;
  put_frame(b, 0, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
  (void)p;
}

/* The frames the server sent a raw peer: counts of GOAWAY (with the last
 * one's code) and of RST_STREAM per code. */
typedef struct seen {
  int goaways, rsts, refused;
  uint32_t goaway_code;
  int32_t rst_ids[64];
} seen;

static inline seen scan(const peer *p)
{
  seen s = {0};
  size_t i = 0;
  while (i + 9 <= p->inlen) {
    const uint8_t *h = p->in + i;
    size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
    uint32_t id = ((uint32_t)h[5] & 0x7f) << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8];
    if (i + 9 + len > p->inlen)
      break;
    const uint8_t *pl = h + 9;
    if (h[3] == NGHTTP2_GOAWAY && len >= 8)
      s.goaways++, s.goaway_code = (uint32_t)pl[4] << 24 | (uint32_t)pl[5] << 16 |
                                   (uint32_t)pl[6] << 8 | pl[7];
    if (h[3] == NGHTTP2_RST_STREAM && len == 4) {
      if (s.rsts < 64)
        s.rst_ids[s.rsts] = (int32_t)id;
      s.rsts++;
      if (pl[3] == NGHTTP2_REFUSED_STREAM)
        s.refused++;
    }
    i += 9 + len;
  }
  return s;
}

static inline int contains(const uint8_t *p, size_t n, const char *s)
{
  size_t sl = strlen(s);
  for (size_t i = 0; i + sl <= n; i++)
    if (memcmp(p + i, s, sl) == 0)
      return 1;
  return 0;
}

static inline int peer_eof(void *arg)
{
  return ((peer *)arg)->eof;
}

static inline size_t hpack(nghttp2_hd_deflater *d, uint8_t *out, size_t cap, const nghttp2_nv *nv,
                    size_t n)
{
  ssize_t r = nghttp2_hd_deflate_hd(d, out, cap, nv, n);
  return r < 0 ? 0 : (size_t)r;
}

/* A valid gRPC Get's header block. */
static inline size_t get_headers(nghttp2_hd_deflater *d, uint8_t *out, size_t cap)
{
  nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "http"),
                     NV(":path", "/cache_client.Scs/Get"), NV(":authority", "x"),
                     NV("content-type", "application/grpc"), NV("cache", "c")};
  return hpack(d, out, cap, nv, sizeof nv / sizeof nv[0]);
}

/* A call still works on a fresh connection. */
static inline int server_alive(fx *f)
{
  peer q;
  if (peer_open(&q, f, 1, 0, 0) != 0)
    return 0;
  sres *r = start_get(&q, "alive", NULL, 0);
  wait_stream(&q, r);
  int ok = r->grpc_status == 0;
  peer_close(&q);
  return ok;
}

#endif
