/* kura serve's core (core/serve/serve.h over core/net/h2_server.h) over
 * HTTP/2, in one process (tests/unit/serve_peer.h): calls and their gRPC
 * statuses, malformed calls, fuzzed frames and messages, floods, huge
 * header blocks, the limits on connections, streams and calls, deadlines,
 * read-through, peers that reset or leave, drain, close, and values of
 * several MiB both ways.
 *
 * The fuzz test's seed is KURA_FUZZ_SEED (default fixed), its rounds
 * KURA_FUZZ_ROUNDS.
 */
#include "ktest.h"
#include "serve_peer.h"

/* --- calls and their statuses ------------------------------------------------------- */

static int response_value(const sres *r, const char *want)
{
  int res;
  const uint8_t *v;
  size_t vl;
  if (r->grpc_status != 0 || get_response(r->body, r->blen, &res, &v, &vl) != 0)
    return 0;
  if (!want)
    return res == 3;
  return res == 2 && vl == strlen(want) && memcmp(v, want, vl) == 0;
}

KTEST(grpc_calls)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  sres *r = do_set(&p, "k", "hello", 5);
  KCHECK_EQ(r->status, 200);
  KCHECK_EQ(r->grpc_status, 0);
  r = start_get(&p, "k", NULL, 0);
  wait_stream(&p, r);
  KCHECK(response_value(r, "hello"));
  r = start_get(&p, "nope", NULL, 0); /* the hook answers nil: a miss */
  wait_stream(&p, r);
  KCHECK(response_value(r, NULL));
  KCHECK_EQ(f.hook_calls, 1);
  r = start_get(&p, "", NULL, 0); /* the empty key (protobuf-c: NULL bytes) */
  wait_stream(&p, r);
  KCHECK(response_value(r, NULL));
  KCHECK_EQ(f.hook_calls, 2);
  r = do_set(&p, "", "e", 1);
  KCHECK_EQ(r->grpc_status, 0);
  r = start_get(&p, "", NULL, 0);
  wait_stream(&p, r);
  KCHECK(response_value(r, "e"));
  buf m = {.len = 0};
  pb_bytes(&m, 1, "k", 1);
  r = call_msg(&p, "/cache_client.Scs/Get", "no-such-cache", &m);
  wait_stream(&p, r);
  KCHECK_EQ(r->grpc_status, 5); /* NOT_FOUND */
  KCHECK(strstr(r->grpc_message, "no-such-cache") != NULL);
  buf cm = {.len = 0};
  pb_bytes(&cm, 1, "c", 1);
  r = call_msg(&p, "/control_client.ScsControl/CreateCache", NULL, &cm);
  wait_stream(&p, r);
  KCHECK_EQ(r->grpc_status, 6); /* ALREADY_EXISTS */
  peer_close(&p);
  fx_close(&f);
}

/* One malformed call: its body (framed or not), path, headers, status. */
typedef struct bad_call {
  const char *what, *path, *cache;
  const uint8_t *body;
  size_t blen;
  nghttp2_nv extra;
  int nextra, want;
} bad_call;

KTEST(grpc_malformed_calls_get_statuses)
{
  fx f;
  peer p;
  kr_serve_config sc = {.max_message = 1024};
  KCHECK(fx_open(&f, &sc) == 0);
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  static const uint8_t short_body[] = {0, 0, 0};
  static const uint8_t longer_prefix[] = {0, 0, 0, 0, 10, 0x0a, 1, 'k'};
  static const uint8_t compressed[] = {1, 0, 0, 0, 0};
  static const uint8_t bad_pb[] = {0, 0, 0, 0, 3, 0xff, 0xff, 0xff};
  static const uint8_t cut_field[] = {0, 0, 0, 0, 2, 0x0a, 5};
  static const uint8_t two_msgs[] = {0, 0, 0, 0, 3, 0x0a, 1, 'k', 0, 0, 0, 0, 3, 0x0a, 1, 'k'};
  static const uint8_t get_k[] = {0, 0, 0, 0, 3, 0x0a, 1, 'k'};
  static const uint8_t set_ttl0[] = {0, 0, 0, 0, 6, 0x0a, 1, 'k', 0x12, 1, 'v'};
  static const uint8_t setif_none[] = {0, 0, 0, 0, 8, 0x0a, 1, 'k', 0x12, 1, 'v', 0x18, 5};
  static const uint8_t create_empty[] = {0, 0, 0, 0, 0};
  static uint8_t big[2000 + 16];
  buf m = {.len = 0};
  pb_bytes(&m, 1, "k", 1);
  pb_bytes(&m, 2, big, 2000);
  size_t big_len = grpc_frame(big, &m);
  const char *Get = "/cache_client.Scs/Get";
  bad_call calls[] = {
    {"3-byte body", Get, "c", short_body, sizeof short_body, {0}, 0, 13},
    {"prefix longer than the body", Get, "c", longer_prefix, sizeof longer_prefix, {0}, 0, 13},
    {"two messages", Get, "c", two_msgs, sizeof two_msgs, {0}, 0, 13},
    {"compressed", Get, "c", compressed, sizeof compressed, {0}, 0, 12},
    {"undecodable protobuf", Get, "c", bad_pb, sizeof bad_pb, {0}, 0, 13},
    {"a field cut short", Get, "c", cut_field, sizeof cut_field, {0}, 0, 13},
    {"unknown method", "/cache_client.Scs/DictionaryGet", "c", get_k, sizeof get_k, {0}, 0, 12},
    {"unknown service", "/foo.Bar/Baz", "c", get_k, sizeof get_k, {0}, 0, 12},
    {"no cache metadata", Get, NULL, get_k, sizeof get_k, {0}, 0, 3},
    {"empty cache metadata", Get, "", get_k, sizeof get_k, {0}, 0, 3},
    {"ttl 0", "/cache_client.Scs/Set", "c", set_ttl0, sizeof set_ttl0, {0}, 0, 3},
    {"SetIf without a condition", "/cache_client.Scs/SetIf", "c", setif_none, sizeof setif_none,
     {0}, 0, 3},
    {"CreateCache of an empty name", "/control_client.ScsControl/CreateCache", NULL,
     create_empty, sizeof create_empty, {0}, 0, 3},
    {"malformed grpc-timeout", Get, "c", get_k, sizeof get_k, NV("grpc-timeout", "soon"), 1, 13},
    {"message over max_message", "/cache_client.Scs/Set", "c", big, big_len, {0}, 0, 8},
  };
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    bad_call *b = &calls[i];
    sres *r = call_raw(&p, b->path, b->cache, &b->extra, (size_t)b->nextra, b->body, b->blen);
    wait_stream(&p, r);
    if (r->grpc_status != b->want)
      fprintf(stderr, "  %s: grpc-status %d (%s), want %d\n", b->what, r->grpc_status,
              r->grpc_message, b->want);
    KCHECK_EQ(r->grpc_status, b->want);
    KCHECK_EQ(r->status, 200);
  }
  sres *r = start_get(&p, "k", NULL, 0); /* the connection still serves */
  wait_stream(&p, r);
  KCHECK_EQ(r->grpc_status, 0);
  KCHECK(!p.goaway);
  peer_close(&p);
  fx_close(&f);
}

/* Requests whose header fields break RFC 9113's rules: each stream is reset
 * with PROTOCOL_ERROR and never reaches the server's user, the connection
 * goes on serving, and the server counts them. The fields are checked by
 * kura (h2_fields.c), not by nghttp2: this is what holds them to the rules. */
typedef struct bad_fields {
  const char *what;
  nghttp2_nv nv[10];
  size_t n;
  size_t body; /* bytes of body to send (a framed get needs 8) */
} bad_fields;

#define NVL(n, v, vl) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE}
#define BASE NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/cache_client.Scs/Get")
#define GRPC NV("content-type", "application/grpc"), NV("cache", "c")

/* What a raw peer got on stream id: the RST_STREAM code (0: none) and
 * whether a frame ended the stream (the trailers of an answer). */
typedef struct stream_seen {
  uint32_t rst;
  int ended;
} stream_seen;

static stream_seen seen_on(const peer *p, uint32_t want)
{
  stream_seen r = {0};
  for (size_t i = 0; i + 9 <= p->inlen;) {
    const uint8_t *h = p->in + i;
    size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
    uint32_t id = ((uint32_t)h[5] & 0x7f) << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8];
    if (i + 9 + len > p->inlen)
      break;
    if (id == want && h[3] == NGHTTP2_RST_STREAM && len == 4)
      r.rst = (uint32_t)h[9] << 24 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 8 | h[12];
    if (id == want && h[3] == NGHTTP2_HEADERS && (h[4] & NGHTTP2_FLAG_END_STREAM))
      r.ended = 1;
    i += 9 + len;
  }
  return r;
}

typedef struct last_stream {
  peer *p;
  uint32_t id;
} last_stream;

static int last_answered(void *arg)
{
  last_stream *l = arg;
  return seen_on(l->p, l->id).ended || l->p->eof;
}

static int last_reset(void *arg)
{
  last_stream *l = arg;
  return seen_on(l->p, l->id).rst != 0 || l->p->eof;
}

/* A gRPC call whose stream stays open after its one message is answered at
 * once: grpc-js often sends a stream's end in a later write, and the call
 * must not wait for it. The message comes in two DATA frames (whole only
 * after the second); the end, after the answer, is fine; a call sent the
 * usual way still works on the same connection. Fails when the server
 * waits for END_STREAM: nothing is answered until the end is sent. */
KTEST(grpc_call_answered_before_its_stream_ends)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  KCHECK(peer_open(&p, &f, 0, 0, 0) == 0);
  static const uint8_t get_k[] = {0, 0, 0, 0, 3, 0x0a, 1, 'k'};
  nghttp2_hd_deflater *d;
  KCHECK(nghttp2_hd_deflate_new(&d, 4096) == 0);
  static buf b;
  uint8_t blk[512];
  raw_start(&p, &b);
  size_t hl = get_headers(d, blk, sizeof blk);
  put_frame(&b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, blk, hl);
  put_frame(&b, 3, NGHTTP2_DATA, 0, 1, get_k, 3);
  put_frame(&b, 5, NGHTTP2_DATA, 0, 1, get_k + 3, 5);
  peer_write(&p, b.p, b.len);
  last_stream l = {&p, 1};
  run_until(&f, last_answered, &l, 30000);
  stream_seen got = seen_on(&p, 1);
  KCHECK(got.ended);
  KCHECK_EQ(got.rst, 0);
  b.len = 0;
  put_frame(&b, 0, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, NULL, 0);
  hl = get_headers(d, blk, sizeof blk);
  put_frame(&b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 3, blk, hl);
  put_frame(&b, sizeof get_k, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 3, get_k, sizeof get_k);
  nghttp2_hd_deflate_del(d);
  peer_write(&p, b.p, b.len);
  l.id = 3;
  run_until(&f, last_answered, &l, 30000);
  got = seen_on(&p, 3);
  KCHECK(got.ended);
  KCHECK_EQ(got.rst, 0);
  KCHECK_EQ(seen_on(&p, 1).rst, 0);
  KCHECK_EQ(scan(&p).goaways, 0);
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.streams_malformed, 0);
  KCHECK_EQ(st.protocol_errors, 0);
  KCHECK_EQ(st.in_flight, 0);
  peer_close(&p);
  fx_close(&f);
}

/* A call answered before its stream ended whose stream then goes on
 * against the rules: more body, trailers that do not end it, trailers with
 * a pseudo-field. Each stream is reset with PROTOCOL_ERROR and counted;
 * one whose answer is still pending (held in the miss hook) is cancelled,
 * and its late answer goes nowhere; the connection goes on serving. */
KTEST(grpc_body_after_a_whole_call_resets_the_stream)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  f.hold = 1; /* a get that misses waits in the hook */
  KCHECK(peer_open(&p, &f, 0, 0, 0) == 0);
  static const uint8_t get_k[] = {0, 0, 0, 0, 3, 0x0a, 1, 'k'};
  static const uint8_t get_m[] = {0, 0, 0, 0, 3, 0x0a, 1, 'm'};
  static const uint8_t get_n[] = {0, 0, 0, 0, 3, 0x0a, 1, 'n'};
  nghttp2_hd_deflater *d;
  KCHECK(nghttp2_hd_deflate_new(&d, 4096) == 0);
  static buf b;
  uint8_t blk[512], tr[256];
  raw_start(&p, &b);
  /* stream 1: whole call, held in the hook, then a second message */
  size_t hl = get_headers(d, blk, sizeof blk);
  put_frame(&b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, blk, hl);
  put_frame(&b, sizeof get_k, NGHTTP2_DATA, 0, 1, get_k, sizeof get_k);
  put_frame(&b, sizeof get_k, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, get_k, sizeof get_k);
  /* stream 3: trailers that do not end the stream */
  hl = get_headers(d, blk, sizeof blk);
  put_frame(&b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 3, blk, hl);
  put_frame(&b, sizeof get_m, NGHTTP2_DATA, 0, 3, get_m, sizeof get_m);
  nghttp2_nv t1[] = {NV("x-trailer", "1")};
  size_t tl = hpack(d, tr, sizeof tr, t1, 1);
  put_frame(&b, tl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 3, tr, tl);
  /* stream 5: trailers with a pseudo-field */
  hl = get_headers(d, blk, sizeof blk);
  put_frame(&b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 5, blk, hl);
  put_frame(&b, sizeof get_n, NGHTTP2_DATA, 0, 5, get_n, sizeof get_n);
  nghttp2_nv t2[] = {NV(":path", "/x")};
  tl = hpack(d, tr, sizeof tr, t2, 1);
  put_frame(&b, tl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 5, tr,
            tl);
  nghttp2_hd_deflate_del(d);
  peer_write(&p, b.p, b.len);
  last_stream l = {&p, 5};
  run_until(&f, last_reset, &l, 30000);
  for (uint32_t id = 1; id <= 5; id += 2) {
    stream_seen got = seen_on(&p, id);
    if (got.rst != NGHTTP2_PROTOCOL_ERROR)
      fprintf(stderr, "  stream %u: reset code %u, answered %d\n", id, got.rst, got.ended);
    KCHECK_EQ(got.rst, NGHTTP2_PROTOCOL_ERROR);
  }
  KCHECK_EQ(scan(&p).goaways, 0);
  KCHECK_EQ(f.nheld, 3); /* each call (its own key) reached the hook before its stream went wrong */
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.streams_malformed, 3);
  KCHECK_EQ(st.protocol_errors, 0);
  KCHECK_EQ(st.cancelled, 3);
  KCHECK_EQ(st.in_flight, 0);
  for (int i = 0; i < 3; i++)
    hook_answer(&f, i, "late"); /* nobody waits: stored, sent nowhere */
  f.hold = 0;
  KCHECK(server_alive(&f));
  peer_close(&p);
  fx_close(&f);
}

KTEST(malformed_header_fields_reset_the_stream)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  KCHECK(peer_open(&p, &f, 0, 0, 0) == 0);
  static const uint8_t get_k[] = {0, 0, 0, 0, 3, 0x0a, 1, 'k'};
  bad_fields cases[] = {
    {"uppercase name", {BASE, GRPC, NV("Agent", "x")}, 6, 8},
    {"space in a name", {BASE, GRPC, NV("my agent", "x")}, 6, 8},
    {"byte over 0x7f in a name", {BASE, GRPC, NV("agent\xc3\xa9", "x")}, 6, 8},
    {"empty name", {BASE, GRPC, NVL("", "x", 1)}, 6, 8},
    {"NUL in a value", {BASE, GRPC, NVL("agent", "a\0b", 3)}, 6, 8},
    {"CR in a value", {BASE, GRPC, NV("agent", "a\rb")}, 6, 8},
    {"LF in a value", {BASE, GRPC, NV("agent", "a\nb")}, 6, 8},
    {"no :path", {NV(":method", "POST"), NV(":scheme", "http"), GRPC}, 4, 8},
    {"no :method", {NV(":scheme", "http"), NV(":path", "/cache_client.Scs/Get"), GRPC}, 4, 8},
    {"no :scheme", {NV(":method", "POST"), NV(":path", "/cache_client.Scs/Get"), GRPC}, 4, 8},
    {"two :path", {BASE, NV(":path", "/cache_client.Scs/Get"), GRPC}, 6, 8},
    {"pseudo-field after a regular one", {NV(":method", "POST"), NV(":scheme", "http"), GRPC,
                                          NV(":path", "/cache_client.Scs/Get")}, 5, 8},
    {"unknown pseudo-field", {BASE, NV(":foo", "x"), GRPC}, 6, 8},
    {":status in a request", {BASE, NV(":status", "200"), GRPC}, 6, 8},
    {"empty :path", {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", ""), GRPC}, 5, 8},
    {"connection", {BASE, GRPC, NV("connection", "keep-alive")}, 6, 8},
    {"transfer-encoding", {BASE, GRPC, NV("transfer-encoding", "chunked")}, 6, 8},
    {"upgrade", {BASE, GRPC, NV("upgrade", "h2c")}, 6, 8},
    {"te other than trailers", {BASE, GRPC, NV("te", "gzip")}, 6, 8},
    {"content-length not a number", {BASE, GRPC, NV("content-length", "8x")}, 6, 8},
    {"content-length under the body", {BASE, GRPC, NV("content-length", "3")}, 6, 8},
    {"content-length over the body", {BASE, GRPC, NV("content-length", "9")}, 6, 8},
    {"content-length without a body", {BASE, GRPC, NV("content-length", "8")}, 6, 0},
  };
  size_t ncases = sizeof cases / sizeof cases[0];
  /* then what is allowed still is: te: trailers, a matching content-length,
   * tabs and bytes over 0x7f in values, a name of symbols */
  bad_fields fine = {"allowed", {BASE, GRPC, NV("te", "trailers"), NV("content-length", "8"),
                                 NV("agent", "a\tb \xc3\xa9"), NV("x-!#$%&'*+.^_`|~", "1")}, 9, 8};
  nghttp2_hd_deflater *d;
  KCHECK(nghttp2_hd_deflate_new(&d, 4096) == 0);
  static buf b;
  raw_start(&p, &b);
  uint8_t blk[1024];
  for (size_t i = 0; i <= ncases; i++) {
    bad_fields *c = i < ncases ? &cases[i] : &fine;
    uint32_t id = 2 * (uint32_t)i + 1;
    size_t hl = hpack(d, blk, sizeof blk, c->nv, c->n);
    KCHECK(hl > 0);
    put_frame(&b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | (c->body ? 0 : NGHTTP2_FLAG_END_STREAM),
              id, blk, hl);
    if (c->body)
      put_frame(&b, c->body, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, id, get_k, c->body);
  }
  nghttp2_hd_deflate_del(d);
  peer_write(&p, b.p, b.len);
  last_stream l = {&p, 2 * (uint32_t)ncases + 1};
  run_until(&f, last_answered, &l, 30000);
  for (size_t i = 0; i < ncases; i++) {
    stream_seen got = seen_on(&p, 2 * (uint32_t)i + 1);
    if (got.rst != NGHTTP2_PROTOCOL_ERROR || got.ended)
      fprintf(stderr, "  %s: reset code %u, answered %d\n", cases[i].what, got.rst, got.ended);
    KCHECK_EQ(got.rst, NGHTTP2_PROTOCOL_ERROR);
    KCHECK(!got.ended);
  }
  stream_seen ok = seen_on(&p, l.id);
  KCHECK_EQ(ok.rst, 0);
  KCHECK(ok.ended);
  KCHECK_EQ(scan(&p).goaways, 0);
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.streams_malformed, ncases);
  KCHECK_EQ(st.protocol_errors, 0);
  KCHECK_EQ(st.in_flight, 0);
  peer_close(&p);
  fx_close(&f);
}

/* --- fuzz ----------------------------------------------------------------------------- */

static uint32_t rnd(unsigned *seed, uint32_t n)
{
  return n ? (uint32_t)rand_r(seed) % n : 0;
}

static void rnd_bytes(unsigned *seed, uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)rand_r(seed);
}

/* One frame of a fuzz round: random bytes, a random frame, a valid header
 * block with random values, DATA with a random gRPC prefix, or a whole
 * valid call carrying random protobuf. */
static void fuzz_frame(unsigned *seed, nghttp2_hd_deflater *d, buf *b)
{
  uint8_t pl[300], blk[2048];
  size_t n = rnd(seed, sizeof pl);
  uint32_t id = rnd(seed, 4) ? 2 * rnd(seed, 8) + 1 : rnd(seed, 16);
  rnd_bytes(seed, pl, n);
  switch (rnd(seed, 6)) {
  case 0: /* bytes */
    memcpy(b->p + b->len, pl, n);
    b->len += n;
    break;
  case 1: /* a frame whose declared length may lie */
    put_frame(b, rnd(seed, 3) ? n : rnd(seed, 1u << 24), (int)rnd(seed, 12),
              (int)rnd(seed, 256), id, pl, n);
    break;
  case 2: { /* headers with random values, some not allowed */
    char v1[16], v2[16];
    for (int i = 0; i < 15; i++)
      v1[i] = (char)(rnd(seed, 2) ? 'a' + rnd(seed, 26) : rnd(seed, 256)), v2[i] = (char)rnd(seed, 128);
    v1[15] = v2[15] = 0;
    const char *method = rnd(seed, 2) ? "POST" : v1; /* NV reads its value twice */
    const char *path = rnd(seed, 2) ? "/cache_client.Scs/Set" : v2;
    const char *type = rnd(seed, 2) ? "application/grpc" : v1;
    nghttp2_nv nv[] = {NV(":method", method), NV(":scheme", "http"), NV(":path", path),
                       NV("content-type", type), NV("cache", v2), NV("grpc-timeout", v1)};
    size_t hl = hpack(d, blk, sizeof blk, nv, 2 + rnd(seed, 5));
    put_frame(b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | (int)rnd(seed, 2), id, blk, hl);
    break;
  }
  case 3: /* DATA with a random length prefix */
    if (n >= 5)
      pl[0] = (uint8_t)rnd(seed, 3);
    put_frame(b, n, NGHTTP2_DATA, (int)rnd(seed, 2), id, pl, n);
    break;
  case 4: { /* control frames with random payloads */
    static const int types[] = {NGHTTP2_RST_STREAM, NGHTTP2_WINDOW_UPDATE, NGHTTP2_PRIORITY,
                                NGHTTP2_PING, NGHTTP2_SETTINGS, NGHTTP2_GOAWAY};
    size_t len = rnd(seed, 12);
    put_frame(b, len, types[rnd(seed, 6)], (int)rnd(seed, 2), id, pl, len);
    break;
  }
  default: { /* a whole call with random protobuf */
    size_t hl = get_headers(d, blk, sizeof blk);
    put_frame(b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id | 1, blk, hl);
    size_t m = n < 40 ? n : 40;
    uint8_t body[45] = {0, 0, 0, 0, (uint8_t)m};
    memcpy(body + 5, pl, m);
    put_frame(b, m + 5, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, id | 1, body, m + 5);
    break;
  }
  }
}

KTEST(h2_fuzz_frames)
{
  fx f;
  KCHECK(fx_open(&f, NULL) == 0);
  const char *e = getenv("KURA_FUZZ_SEED"), *r = getenv("KURA_FUZZ_ROUNDS");
  unsigned seed0 = e ? (unsigned)strtoul(e, NULL, 10) : 20231, seed = seed0;
  int rounds = r ? atoi(r) : 300, goaways = 0;
  static buf b;
  for (int i = 0; i < rounds; i++) {
    peer p;
    KCHECK(peer_open(&p, &f, 0, 0, 0) == 0);
    nghttp2_hd_deflater *d;
    nghttp2_hd_deflate_new(&d, 4096);
    raw_start(&p, &b);
    for (uint32_t k = 1 + rnd(&seed, 12); k > 0 && b.len < sizeof b.p - 4096; k--)
      fuzz_frame(&seed, d, &b);
    peer_write(&p, b.p, b.len);
    run_until(&f, peer_eof, &p, 15);
    goaways += scan(&p).goaways > 0;
    nghttp2_hd_deflate_del(d);
    peer_close(&p);
  }
  printf("  %d rounds (seed %u): %d answered with GOAWAY\n", rounds, seed0, goaways);
  KCHECK(goaways > 0);
  KCHECK(server_alive(&f));
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.in_flight, 0);
  KCHECK(st.protocol_errors > 0 && st.protocol_errors <= (uint64_t)rounds);
  KCHECK_EQ(st.accepted, rounds + 1);
  fx_close(&f);
}

/* Random gRPC bodies to every method, over valid HTTP/2: each gets a status. */
KTEST(grpc_fuzz_messages)
{
  static const char *paths[] = {
    "/cache_client.Scs/Get", "/cache_client.Scs/Set", "/cache_client.Scs/Delete",
    "/cache_client.Scs/SetIf", "/cache_client.Scs/KeysExist", "/cache_client.Scs/Increment",
    "/cache_client.Scs/UpdateTtl", "/cache_client.Scs/ItemGetTtl", "/cache_client.Scs/GetBatch",
    "/cache_client.Scs/SetBatch", "/control_client.ScsControl/CreateCache",
    "/control_client.ScsControl/DeleteCache", "/control_client.ScsControl/FlushCache",
    "/control_client.ScsControl/ListCaches"};
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  unsigned seed = 7;
  int answered = 0, total = 120;
  for (int round = 0; round < 4; round++) {
    sres *rs[120 / 4];
    for (int i = 0; i < total / 4; i++) {
      uint8_t body[64];
      size_t n = 5 + rnd(&seed, 59);
      rnd_bytes(&seed, body, n);
      body[0] = 0, body[1] = body[2] = body[3] = 0;
      body[4] = rnd(&seed, 4) ? (uint8_t)(n - 5) : (uint8_t)rnd(&seed, 256);
      const char *cache = rnd(&seed, 3) ? "c" : "no-such";
      rs[i] = call_raw(&p, paths[rnd(&seed, 14)], cache, NULL, 0, body, n);
    }
    for (int i = 0; i < total / 4; i++) {
      wait_stream(&p, rs[i]);
      answered += rs[i]->closed && rs[i]->grpc_status >= 0;
    }
  }
  KCHECK_EQ(answered, total);
  KCHECK(server_alive(&f));
  peer_close(&p);
  fx_close(&f);
}

/* --- floods and huge headers ------------------------------------------------------- */

/* Streams opened and reset at once, thousands of them: nghttp2's rate
 * limit ends the connection; the server goes on. */
KTEST(rst_flood_ends_the_connection)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  KCHECK(peer_open(&p, &f, 0, 0, 0) == 0);
  static buf b;
  uint8_t blk[256], code[4] = {0, 0, 0, NGHTTP2_CANCEL};
  nghttp2_hd_deflater *d;
  nghttp2_hd_deflate_new(&d, 4096);
  raw_start(&p, &b);
  peer_write(&p, b.p, b.len);
  for (uint32_t i = 0; i < 4000; i++) {
    if (b.len > sizeof b.p - 512) {
      peer_write(&p, b.p, b.len);
      b.len = 0;
    }
    size_t hl = get_headers(d, blk, sizeof blk);
    put_frame(&b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 2 * i + 1, blk, hl);
    put_frame(&b, 4, NGHTTP2_RST_STREAM, 0, 2 * i + 1, code, 4);
  }
  peer_write(&p, b.p, b.len);
  nghttp2_hd_deflate_del(d);
  run_until(&f, peer_eof, &p, 5000);
  seen s = scan(&p);
  KCHECK(p.eof);
  KCHECK(s.goaways >= 1);
  peer_close(&p);
  KCHECK(server_alive(&f));
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.in_flight, 0);
  fx_close(&f);
}

static int stream_done(void *arg)
{
  return ((sres *)arg)->closed;
}

/* Metadata past the limit: RESOURCE_EXHAUSTED. One header field larger than
 * HPACK allows, or a header block in more CONTINUATION frames than nghttp2
 * takes: GOAWAY and the connection closes. */
KTEST(huge_headers)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  KCHECK(peer_open(&p, &f, 1, 0, 1) == 0);
  static char pad[10 * 1024 + 1];
  memset(pad, 'p', sizeof pad - 1);
  nghttp2_nv extra[15];
  static char names[15][8];
  for (int i = 0; i < 15; i++) {
    snprintf(names[i], sizeof names[i], "x-pad%d", i);
    extra[i] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)pad, strlen(names[i]),
                            sizeof pad - 1, NGHTTP2_NV_FLAG_NONE};
  }
  sres *r = start_get(&p, "k", extra, 15); /* 150 KiB of metadata */
  run_until(&f, stream_done, r, 5000);
  KCHECK_EQ(r->grpc_status, 8);
  static char huge[100 * 1024 + 1];
  memset(huge, 'h', sizeof huge - 1);
  nghttp2_nv one = {(uint8_t *)"x-huge", (uint8_t *)huge, 6, sizeof huge - 1, NGHTTP2_NV_FLAG_NONE};
  r = start_get(&p, "k", &one, 1);
  run_until(&f, peer_eof, &p, 5000);
  KCHECK(p.goaway);
  peer_close(&p);

  /* CONTINUATION after CONTINUATION, 1.6 MB of header block. */
  KCHECK(peer_open(&p, &f, 0, 0, 0) == 0);
  static buf b;
  static uint8_t blk[2 << 20];
  nghttp2_hd_deflater *d;
  nghttp2_hd_deflate_new(&d, 4096);
  nghttp2_nv nv[200];
  for (int i = 0; i < 200; i++)
    nv[i] = (nghttp2_nv){(uint8_t *)"x-many", (uint8_t *)pad, 6, 8000, NGHTTP2_NV_FLAG_NONE};
  size_t hl = hpack(d, blk, sizeof blk, nv, 200);
  nghttp2_hd_deflate_del(d);
  raw_start(&p, &b);
  peer_write(&p, b.p, b.len);
  for (size_t off = 0; off < hl; off += 16384) {
    size_t n = hl - off < 16384 ? hl - off : 16384;
    b.len = 0;
    put_frame(&b, n, off ? NGHTTP2_CONTINUATION : NGHTTP2_HEADERS, 0, 1, blk + off, n);
    peer_write(&p, b.p, b.len);
  }
  run_until(&f, peer_eof, &p, 5000);
  KCHECK(p.eof);
  KCHECK(scan(&p).goaways >= 1);
  peer_close(&p);
  KCHECK(server_alive(&f));
  fx_close(&f);
}

/* --- limits --------------------------------------------------------------------------- */

KTEST(connection_limit_refuses_clearly)
{
  fx f;
  kr_serve_config sc = {.max_connections = 2};
  KCHECK(fx_open(&f, &sc) == 0);
  peer a, b2, c, h;
  KCHECK(peer_open(&a, &f, 1, 0, 0) == 0);
  KCHECK(peer_open(&b2, &f, 1, 0, 0) == 0);
  sres *r = start_get(&a, "k", NULL, 0);
  wait_stream(&a, r);
  KCHECK_EQ(r->grpc_status, 0);
  KCHECK(peer_open(&c, &f, 1, 0, 0) == 0); /* the third: GOAWAY, closed */
  r = start_get(&c, "k", NULL, 0);
  run_until(&f, peer_eof, &c, 5000);
  KCHECK(c.goaway);
  KCHECK_EQ(c.goaway_code, NGHTTP2_REFUSED_STREAM);
  KCHECK(contains(c.in, c.inlen, "too many connections"));
  KCHECK(!r->closed || r->grpc_status != 0);
  KCHECK(peer_open(&h, &f, 0, 0, 0) == 0); /* over HTTP/1.1: 503 */
  static const char get[] = "GET /cache/c?key=k HTTP/1.1\r\nHost: x\r\n\r\n";
  peer_write(&h, get, sizeof get - 1);
  run_until(&f, peer_eof, &h, 5000);
  KCHECK(h.inlen > 12 && memcmp(h.in, "HTTP/1.1 503", 12) == 0);
  peer_close(&c);
  peer_close(&h);
  peer_close(&b2); /* a place frees up */
  run_until(&f, NULL, NULL, 50);
  KCHECK(server_alive(&f));
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.refused, 2);
  KCHECK_EQ(st.protocol_errors, 0);
  peer_close(&a);
  fx_close(&f);
}

/* Streams past SETTINGS_MAX_CONCURRENT_STREAMS, from a client that ignores
 * it: before it acknowledged the SETTINGS, each excess stream is refused
 * (REFUSED_STREAM) and the others go on; after, the connection ends with
 * GOAWAY (nghttp2's rule). */
static void open_streams(peer *p, int ack, int n)
{
  static buf b;
  uint8_t blk[256];
  nghttp2_hd_deflater *d;
  nghttp2_hd_deflate_new(&d, 4096);
  raw_start(p, &b);
  if (ack)
    put_frame(&b, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, NULL, 0);
  for (int i = 0; i < n; i++) { /* left open: no END_STREAM */
    size_t hl = get_headers(d, blk, sizeof blk);
    put_frame(&b, hl, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, (uint32_t)(2 * i + 1), blk, hl);
  }
  peer_write(p, b.p, b.len);
  nghttp2_hd_deflate_del(d);
}

KTEST(stream_limit_refuses_excess_streams)
{
  fx f;
  kr_serve_config sc = {.max_streams = 2};
  KCHECK(fx_open(&f, &sc) == 0);
  peer p;
  KCHECK(peer_open(&p, &f, 0, 0, 0) == 0);
  open_streams(&p, 0, 5);
  run_until(&f, NULL, NULL, 300);
  seen s = scan(&p);
  KCHECK_EQ(s.refused, 3);
  KCHECK_EQ(s.goaways, 0);
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.protocol_errors, 0); /* refused streams do not end the connection */
  peer_close(&p);
  KCHECK(peer_open(&p, &f, 0, 0, 0) == 0);
  open_streams(&p, 1, 5);
  run_until(&f, peer_eof, &p, 5000);
  KCHECK(p.eof);
  KCHECK_EQ(scan(&p).goaways, 1);
  KCHECK(contains(p.in, p.inlen, "max concurrent streams exceeded"));
  peer_close(&p);
  KCHECK(server_alive(&f));
  fx_close(&f);
}

/* Request bytes past max_buffered across the server: the stream that
 * would cross it is refused (REFUSED_STREAM), the server goes on. */
KTEST(buffered_limit_refuses_the_stream)
{
  fx f;
  peer p;
  kr_serve_config sc = {.max_buffered = 64 * 1024};
  KCHECK(fx_open(&f, &sc) == 0);
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  static uint8_t body[200 * 1024];
  memset(body, 0, 5);
  body[2] = (uint8_t)((sizeof body - 5) >> 16), body[3] = (uint8_t)((sizeof body - 5) >> 8);
  body[4] = (uint8_t)(sizeof body - 5);
  sres *r = call_raw(&p, "/cache_client.Scs/Set", "c", NULL, 0, body, sizeof body);
  wait_stream(&p, r);
  KCHECK(r->closed);
  KCHECK_EQ(r->rst, NGHTTP2_REFUSED_STREAM);
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.streams_refused, 1);
  r = start_get(&p, "k", NULL, 0); /* the connection goes on */
  wait_stream(&p, r);
  KCHECK_EQ(r->grpc_status, 0);
  peer_close(&p);
  fx_close(&f);
}

/* Past max_calls over the whole server: RESOURCE_EXHAUSTED at once. */
KTEST(calls_limit_answers_resource_exhausted)
{
  fx f;
  kr_serve_config sc = {.max_calls = 2};
  KCHECK(fx_open(&f, &sc) == 0);
  f.hold = 1;
  peer p;
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  sres *a = start_get(&p, "a", NULL, 0), *b = start_get(&p, "b", NULL, 0);
  sres *c = start_get(&p, "c", NULL, 0);
  wait_stream(&p, c);
  KCHECK_EQ(c->grpc_status, 8);
  KCHECK(strstr(c->grpc_message, "too many calls") != NULL);
  KCHECK(!a->closed && !b->closed);
  hook_answer(&f, 0, "1");
  hook_answer(&f, 1, "2");
  wait_stream(&p, a);
  wait_stream(&p, b);
  KCHECK_EQ(a->grpc_status, 0);
  KCHECK_EQ(b->grpc_status, 0);
  peer_close(&p);
  fx_close(&f);
}

/* --- deadlines, read-through, cancel, drain, close ---------------------------------- */

static int count_closed(peer *p, sres **rs, int n)
{
  int k = 0;
  for (int i = 0; i < n; i++)
    k += rs[i]->closed;
  (void)p;
  return k;
}

typedef struct many {
  peer *p;
  sres **rs;
  int n;
} many;

static int all_closed(void *arg)
{
  many *m = arg;
  return count_closed(m->p, m->rs, m->n) == m->n;
}

static int hook_called(void *arg)
{
  return ((fx *)arg)->hook_calls > 0;
}

static int hook_called_twice(void *arg)
{
  return ((fx *)arg)->hook_calls >= 2;
}

KTEST(deadline_answers_before_the_hook)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  f.hold = 1;
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  nghttp2_nv to = NV("grpc-timeout", "100m");
  uint64_t t0 = uv_hrtime();
  sres *r = start_get(&p, "slow", &to, 1);
  wait_stream(&p, r);
  double took = (double)(uv_hrtime() - t0) / 1e9;
  KCHECK_EQ(r->grpc_status, 4); /* DEADLINE_EXCEEDED */
  KCHECK(took >= 0.09 && took < 3.0);
  KCHECK_EQ(f.nheld, 1);
  hook_answer(&f, 0, "late"); /* the hook answers after the deadline: stored */
  r = start_get(&p, "slow", NULL, 0);
  wait_stream(&p, r);
  KCHECK(response_value(r, "late"));
  KCHECK_EQ(f.hook_calls, 1);
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.deadlines, 1);
  /* 35868669 hours in nanoseconds wraps 64 bits to 116 s before now (on a
   * machine up longer than that): past a year, no deadline at all. */
  nghttp2_nv far = NV("grpc-timeout", "35868669H");
  r = start_get(&p, "far", &far, 1);
  run_until(&f, hook_called_twice, &f, 5000);
  run_until(&f, NULL, NULL, 100);
  KCHECK(!r->closed);
  hook_answer(&f, 1, "later");
  wait_stream(&p, r);
  KCHECK(response_value(r, "later"));
  peer_close(&p);
  fx_close(&f);
}

/* Twenty gets of one missing key: one hook call, twenty answers. */
KTEST(read_through_is_one_call_per_key)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  f.hold = 1;
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  sres *rs[21];
  for (int i = 0; i < 20; i++)
    rs[i] = start_get(&p, "sf", NULL, 0);
  rs[20] = start_get(&p, "other", NULL, 0);
  run_until(&f, NULL, NULL, 200);
  KCHECK_EQ(f.hook_calls, 2);
  KCHECK_EQ(count_closed(&p, rs, 21), 0);
  int sf = strcmp(f.held[0].key, "sf") == 0 ? 0 : 1;
  hook_answer(&f, sf, "loaded");
  many m = {&p, rs, 20};
  run_until(&f, all_closed, &m, 5000);
  for (int i = 0; i < 20; i++)
    KCHECK(response_value(rs[i], "loaded"));
  KCHECK(!rs[20]->closed);
  hook_answer(&f, 1 - sf, NULL); /* nil: a miss */
  wait_stream(&p, rs[20]);
  KCHECK(response_value(rs[20], NULL));
  sres *r = start_get(&p, "sf", NULL, 0); /* stored: no hook call now */
  wait_stream(&p, r);
  KCHECK(response_value(r, "loaded"));
  KCHECK_EQ(f.hook_calls, 2);
  peer_close(&p);
  fx_close(&f);
}

KTEST(peer_reset_while_the_hook_runs)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  f.hold = 1;
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  sres *r = start_get(&p, "w", NULL, 0);
  run_until(&f, hook_called, &f, 5000);
  nghttp2_submit_rst_stream(p.h2, NGHTTP2_FLAG_NONE, r->id, NGHTTP2_CANCEL);
  peer_flush(&p);
  run_until(&f, NULL, NULL, 100);
  kr_serve_stats st;
  kr_serve_get_stats(f.srv, &st);
  KCHECK_EQ(st.cancelled, 1);
  KCHECK_EQ(st.in_flight, 0);
  hook_answer(&f, 0, "v"); /* nobody waits: stored all the same */
  r = start_get(&p, "w", NULL, 0);
  wait_stream(&p, r);
  KCHECK(response_value(r, "v"));
  peer_close(&p); /* the connection goes while a call waits */
  fx_close(&f);
}

KTEST(drain_answers_calls_in_flight)
{
  fx f;
  peer p, late;
  KCHECK(fx_open(&f, NULL) == 0);
  f.hold = 1;
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  sres *rs[5];
  for (int i = 0; i < 5; i++)
    rs[i] = start_get(&p, "d", NULL, 0);
  run_until(&f, hook_called, &f, 5000);
  kr_serve_drain(f.srv, on_drained, &f);
  run_until(&f, NULL, NULL, 100);
  KCHECK(p.goaway);
  KCHECK_EQ(p.goaway_code, NGHTTP2_NO_ERROR);
  KCHECK(!f.drained);
  KCHECK(peer_open(&late, &f, 0, 0, 0) != 0); /* no new connections */
  peer_close(&late);
  hook_answer(&f, 0, "answered");
  many m = {&p, rs, 5};
  run_until(&f, all_closed, &m, 5000);
  for (int i = 0; i < 5; i++)
    KCHECK(response_value(rs[i], "answered"));
  run_until(&f, peer_eof, &p, 5000);
  run_until(&f, NULL, NULL, 50);
  KCHECK(f.drained);
  peer_close(&p);
  fx_close(&f);
}

/* Closed with a hook call and a network call in flight: nothing is
 * answered, nothing leaks (the hook answers later, into nothing). */
KTEST(close_with_calls_in_flight)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  f.hold = 1;
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  sres *r = start_get(&p, "x", NULL, 0);
  run_until(&f, hook_called, &f, 5000);
  kr_serve_close(f.srv, on_srv_closed, &f);
  run_until(&f, peer_eof, &p, 5000);
  KCHECK(p.eof);
  KCHECK(!r->closed || r->grpc_status != 0);
  hook_answer(&f, 0, "too late");
  peer_close(&p);
  fx_close(&f);
  KCHECK(f.closed);
}

/* A response of several MiB to a peer that opened a wide window and sends
 * nothing more (as curl does): it must arrive whole without any prompt. */
KTEST(large_values_both_ways)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  KCHECK(peer_open(&p, &f, 1, 16u << 20, 0) == 0);
  size_t n = 3u << 20;
  uint8_t *val = malloc(n), *body = malloc(n + 64);
  for (size_t i = 0; i < n; i++)
    val[i] = (uint8_t)(i * 31 + (i >> 13));
  static buf m;
  m.len = 0;
  pb_bytes(&m, 1, "big", 3);
  pb_varint_raw(&m, 2 << 3 | 2);
  pb_varint_raw(&m, n);
  size_t head = m.len, mlen = head + n + 4; /* then ttl_milliseconds = 60000 */
  body[0] = 0;
  body[1] = (uint8_t)(mlen >> 24), body[2] = (uint8_t)(mlen >> 16);
  body[3] = (uint8_t)(mlen >> 8), body[4] = (uint8_t)mlen;
  memcpy(body + 5, m.p, head);
  memcpy(body + 5 + head, val, n);
  memcpy(body + 5 + head + n, "\x18\xe0\xd4\x03", 4);
  sres *r = call_raw(&p, "/cache_client.Scs/Set", "c", NULL, 0, body, mlen + 5);
  wait_stream(&p, r);
  KCHECK_EQ(r->grpc_status, 0);
  r = start_get(&p, "big", NULL, 0);
  wait_stream(&p, r);
  int res;
  const uint8_t *v;
  size_t vl;
  KCHECK(get_response(r->body, r->blen, &res, &v, &vl) == 0);
  KCHECK_EQ(res, 2);
  KCHECK(vl == n && memcmp(v, val, n) == 0);
  free(val), free(body);
  peer_close(&p);
  fx_close(&f);
}

KTEST_MAIN(KENTRY(grpc_calls), KENTRY(grpc_malformed_calls_get_statuses),
           KENTRY(grpc_call_answered_before_its_stream_ends),
           KENTRY(grpc_body_after_a_whole_call_resets_the_stream),
           KENTRY(malformed_header_fields_reset_the_stream),
           KENTRY(h2_fuzz_frames), KENTRY(grpc_fuzz_messages),
           KENTRY(rst_flood_ends_the_connection), KENTRY(huge_headers),
           KENTRY(connection_limit_refuses_clearly),
           KENTRY(stream_limit_refuses_excess_streams),
           KENTRY(buffered_limit_refuses_the_stream), KENTRY(calls_limit_answers_resource_exhausted),
           KENTRY(deadline_answers_before_the_hook), KENTRY(read_through_is_one_call_per_key),
           KENTRY(peer_reset_while_the_hook_runs), KENTRY(drain_answers_calls_in_flight),
           KENTRY(close_with_calls_in_flight), KENTRY(large_values_both_ways))
