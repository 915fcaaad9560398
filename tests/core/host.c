/* A C host of kura's cache client alone (include/kura_client.h, libkura-core):
 * its own uv_loop_t, no Lua runtime anywhere. For each backend URL given it
 * runs the cache calls (create, set, get, increment, delete, the conditional
 * sets, the TTL calls, the batches, list_caches, the client's statistics)
 * and the promises of the header from the outside: NULL and empty arguments refused, calls in flight
 * when the client closes completing with KURA_ECANCELLED (also when it
 * closes from inside a callback), the loop closing cleanly afterwards, and a
 * Redis that is not there answering CONNECTION_ERROR within the timeout.
 *
 * usage: host BACKEND...     e.g. host memory redis://127.0.0.1:6379
 * Exit status 0 when every check held. Built in the tree (under the
 * sanitizers too) and by tests/core/install_test.sh against an installed
 * libkura-core through pkg-config. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include <kura_client.h>

static int failures;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                          \
    }                                                                      \
  } while (0)

/* What the last completion said, copied out of the callback. */
typedef struct seen {
  int calls, err, outcome, uncertain;
  char value[64];
  size_t vlen;
  int64_t integer;
  double ttl;
  size_t count;
  char names[4][32];
  uint8_t present[4];
  char batch[4][16];
  int batch_hit[4];
} seen;

static void copy_batch(seen *s, const kura_result *r)
{
  for (size_t i = 0; i < r->count && i < 4; i++) {
    if (r->names)
      snprintf(s->names[i], sizeof s->names[i], "%s", r->names[i]);
    if (r->present)
      s->present[i] = r->present[i];
    if (r->values) {
      s->batch_hit[i] = r->values[i] != NULL;
      snprintf(s->batch[i], sizeof s->batch[i], "%.*s",
               r->values[i] ? (int)r->vlens[i] : 0, r->values[i] ? (const char *)r->values[i] : "");
    }
  }
}

static void record(void *udata, const kura_result *r)
{
  seen *s = udata;
  s->calls++;
  s->err = r->err, s->outcome = r->outcome, s->uncertain = r->uncertain;
  s->vlen = r->vlen < sizeof s->value ? r->vlen : sizeof s->value - 1;
  if (r->value)
    memcpy(s->value, r->value, s->vlen);
  s->value[s->vlen] = '\0';
  s->integer = r->integer, s->ttl = r->ttl, s->count = r->count;
  copy_batch(s, r);
  if (r->err)
    CHECK(r->errmsg && r->errmsg[0]);
}

/* Runs one call to completion: starts it with `s` reset, turns the loop
 * until its callback ran. Returns the call's own return code. */
#define RUN(loop, s, call)                                      \
  (memset(&(s), 0, sizeof(s)), run_until((loop), &(s), (call)))

static int run_until(uv_loop_t *loop, seen *s, int rc)
{
  while (rc == KURA_OK && s->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  CHECK(rc != KURA_OK || s->calls == 1);
  return rc;
}

static kura_client *open_on(uv_loop_t *loop, const char *backend, double timeout)
{
  char why[256] = "";
  kura_client_options o = {.backend = backend, .timeout = timeout,
                           .errbuf = why, .errbuf_len = sizeof why};
  kura_client *c = NULL;
  int rc = kura_client_open(loop, &o, &c);
  if (rc != KURA_OK)
    fprintf(stderr, "kura_client_open(%s): %s: %s\n", backend, kura_errname(rc), why);
  CHECK(rc == KURA_OK && c);
  return c;
}

/* Closes c, runs the loop until its handles closed, closes the loop. */
static void close_all(uv_loop_t *loop, kura_client *c)
{
  kura_client_close(c);
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(loop) == 0);
}

/* --- the calls ------------------------------------------------------------- */

static void items(uv_loop_t *lp, kura_client *c, const char *cache)
{
  seen s;
  CHECK(RUN(lp, s, kura_set(c, cache, "k", 1, "v\0w", 3, 0, record, &s)) == KURA_OK && !s.err);
  CHECK(RUN(lp, s, kura_get(c, cache, "k", 1, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_HIT && s.vlen == 3 && memcmp(s.value, "v\0w", 3) == 0);
  CHECK(RUN(lp, s, kura_get(c, cache, "nope", 4, record, &s)) == KURA_OK && s.outcome == KURA_MISS);
  CHECK(RUN(lp, s, kura_increment(c, cache, "n", 1, 5, 0, record, &s)) == KURA_OK);
  CHECK(!s.err && s.integer == 5);
  CHECK(RUN(lp, s, kura_increment(c, cache, "n", 1, -7, 0, record, &s)) == KURA_OK && s.integer == -2);
  CHECK(RUN(lp, s, kura_increment(c, cache, "k", 1, 1, 0, record, &s)) == KURA_OK);
  CHECK(s.err == KURA_EPRECOND);
  CHECK(RUN(lp, s, kura_delete(c, cache, "k", 1, record, &s)) == KURA_OK && !s.err);
  CHECK(RUN(lp, s, kura_key_exists(c, cache, "k", 1, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_MISS);
  CHECK(RUN(lp, s, kura_get(c, "no-such-cache-x", "k", 1, record, &s)) == KURA_OK);
  CHECK(s.err == KURA_ENOTFOUND);
}

static void conditions(uv_loop_t *lp, kura_client *c, const char *cache)
{
  seen s;
  CHECK(RUN(lp, s, kura_set_if(c, cache, "c", 1, "1", 1, KURA_SET_IF_ABSENT, NULL, 0, 0,
                               record, &s)) == KURA_OK && s.outcome == KURA_HIT);
  CHECK(RUN(lp, s, kura_set_if(c, cache, "c", 1, "2", 1, KURA_SET_IF_ABSENT, NULL, 0, 0,
                               record, &s)) == KURA_OK && s.outcome != KURA_HIT);
  CHECK(RUN(lp, s, kura_set_if(c, cache, "c", 1, "3", 1, KURA_SET_IF_EQUAL, "1", 1, 0,
                               record, &s)) == KURA_OK && s.outcome == KURA_HIT);
  CHECK(RUN(lp, s, kura_set_if(c, cache, "c", 1, "4", 1, KURA_SET_IF_NOT_EQUAL, "3", 1, 0,
                               record, &s)) == KURA_OK && s.outcome != KURA_HIT);
  CHECK(RUN(lp, s, kura_get(c, cache, "c", 1, record, &s)) == KURA_OK && strcmp(s.value, "3") == 0);
}

static void ttls(uv_loop_t *lp, kura_client *c, const char *cache)
{
  seen s;
  CHECK(RUN(lp, s, kura_set(c, cache, "t", 1, "v", 1, 100, record, &s)) == KURA_OK);
  CHECK(RUN(lp, s, kura_item_get_ttl(c, cache, "t", 1, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_HIT && s.ttl > 90 && s.ttl <= 100);
  CHECK(RUN(lp, s, kura_increase_ttl(c, cache, "t", 1, 50, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_SKIPPED);
  CHECK(RUN(lp, s, kura_decrease_ttl(c, cache, "t", 1, 50, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_HIT);
  CHECK(RUN(lp, s, kura_update_ttl(c, cache, "t", 1, 500, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_HIT);
  CHECK(RUN(lp, s, kura_item_get_ttl(c, cache, "t", 1, record, &s)) == KURA_OK && s.ttl > 400);
  CHECK(RUN(lp, s, kura_update_ttl(c, cache, "absent", 6, 5, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_MISS);
}

/* 200 items with their own TTLs (more than a backend keeps on its stack). */
static void big_batch(uv_loop_t *lp, kura_client *c, const char *cache)
{
  enum { N = 200 };
  static char names[N][8];
  const void *keys[N];
  size_t klens[N];
  double per_item[N];
  for (int i = 0; i < N; i++) {
    klens[i] = (size_t)snprintf(names[i], sizeof names[i], "b%d", i);
    keys[i] = names[i];
    per_item[i] = i % 2 ? 1000 + i : 0;
  }
  seen s;
  CHECK(RUN(lp, s, kura_set_batch(c, cache, N, keys, klens, keys, klens, per_item, 50,
                                  record, &s)) == KURA_OK && !s.err);
  CHECK(RUN(lp, s, kura_get(c, cache, "b199", 4, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_HIT && strcmp(s.value, "b199") == 0);
  CHECK(RUN(lp, s, kura_item_get_ttl(c, cache, "b199", 4, record, &s)) == KURA_OK);
  CHECK(s.ttl > 1100 && s.ttl <= 1199);
  CHECK(RUN(lp, s, kura_item_get_ttl(c, cache, "b198", 4, record, &s)) == KURA_OK);
  CHECK(s.ttl > 40 && s.ttl <= 50);
}

static void batches(uv_loop_t *lp, kura_client *c, const char *cache)
{
  const void *keys[3] = {"a", "b", "zz"};
  const size_t klens[3] = {1, 1, 2};
  const void *vals[2] = {"1", "22"};
  const size_t vlens[2] = {1, 2};
  const double per_item[2] = {0, 30};
  seen s;
  CHECK(RUN(lp, s, kura_set_batch(c, cache, 2, keys, klens, vals, vlens, per_item, 0,
                                  record, &s)) == KURA_OK && !s.err);
  CHECK(RUN(lp, s, kura_get_batch(c, cache, 3, keys, klens, record, &s)) == KURA_OK);
  CHECK(!s.err && s.count == 3 && s.batch_hit[0] && s.batch_hit[1] && !s.batch_hit[2]);
  CHECK(strcmp(s.batch[0], "1") == 0 && strcmp(s.batch[1], "22") == 0);
  CHECK(RUN(lp, s, kura_keys_exist(c, cache, 3, keys, klens, record, &s)) == KURA_OK);
  CHECK(s.count == 3 && s.present[0] && s.present[1] && !s.present[2]);
  CHECK(RUN(lp, s, kura_item_get_ttl(c, cache, "b", 1, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_HIT && s.ttl <= 30);
  CHECK(RUN(lp, s, kura_get_batch(c, cache, 0, NULL, NULL, record, &s)) == KURA_OK);
  CHECK(!s.err && s.count == 0);
  big_batch(lp, c, cache);
}

static void caches(uv_loop_t *lp, kura_client *c, const char *cache)
{
  seen s;
  CHECK(RUN(lp, s, kura_delete_cache(c, cache, record, &s)) == KURA_OK);
  CHECK(RUN(lp, s, kura_create_cache(c, cache, record, &s)) == KURA_OK);
  CHECK(!s.err && s.outcome == KURA_HIT);
  CHECK(RUN(lp, s, kura_create_cache(c, cache, record, &s)) == KURA_OK);
  CHECK(!s.err && s.outcome == KURA_SKIPPED);
  CHECK(RUN(lp, s, kura_list_caches(c, record, &s)) == KURA_OK && !s.err && s.count >= 1);
}

static void cleanup(uv_loop_t *lp, kura_client *c, const char *cache)
{
  seen s;
  CHECK(RUN(lp, s, kura_set(c, cache, "k", 1, "v", 1, 0, record, &s)) == KURA_OK);
  CHECK(RUN(lp, s, kura_flush_cache(c, cache, record, &s)) == KURA_OK && !s.err);
  CHECK(RUN(lp, s, kura_get(c, cache, "k", 1, record, &s)) == KURA_OK && s.outcome == KURA_MISS);
  CHECK(RUN(lp, s, kura_delete_cache(c, cache, record, &s)) == KURA_OK && !s.err);
  CHECK(RUN(lp, s, kura_delete_cache(c, cache, record, &s)) == KURA_OK);
  CHECK(s.err == KURA_ENOTFOUND);
}

/* --- hostile input ----------------------------------------------------------- */

static void refusals(kura_client *c, const char *cache)
{
  seen s = {0};
  CHECK(kura_get(NULL, cache, "k", 1, record, &s) == KURA_EINVAL);
  CHECK(kura_get(c, NULL, "k", 1, record, &s) == KURA_EINVAL);
  CHECK(kura_get(c, "", "k", 1, record, &s) == KURA_EINVAL);
  CHECK(strstr(kura_client_errmsg(c), "cache") != NULL);
  CHECK(kura_get(c, cache, NULL, 3, record, &s) == KURA_EINVAL);
  CHECK(kura_set(c, cache, "k", 1, NULL, 5, 0, record, &s) == KURA_EINVAL);
  CHECK(kura_set(c, cache, "k", 1, "v", 1, NAN, record, &s) == KURA_EINVAL);
  CHECK(kura_set(c, cache, "k", 1, "v", 1, KURA_TTL_MAX_SECONDS + 1.0, record, &s) == KURA_EINVAL);
  CHECK(kura_update_ttl(c, cache, "k", 1, 0, record, &s) == KURA_EINVAL);
  CHECK(kura_set_if(c, cache, "k", 1, "v", 1, KURA_SET_ALWAYS, NULL, 0, 0, record, &s) == KURA_EINVAL);
  CHECK(kura_set_if(c, cache, "k", 1, "v", 1, (kura_set_cond)99, NULL, 0, 0, record, &s) == KURA_EINVAL);
  CHECK(kura_set_if(c, cache, "k", 1, "v", 1, KURA_SET_IF_EQUAL, NULL, 4, 0, record, &s) == KURA_EINVAL);
  CHECK(kura_get_batch(c, cache, 2, NULL, NULL, record, &s) == KURA_EINVAL);
  const void *keys[1] = {NULL};
  const size_t klens[1] = {1};
  CHECK(kura_keys_exist(c, cache, 1, keys, klens, record, &s) == KURA_EINVAL);
  CHECK(kura_set_batch(c, cache, 1, keys, klens, NULL, NULL, NULL, 0, record, &s) == KURA_EINVAL);
  CHECK(kura_list_caches(NULL, record, &s) == KURA_EINVAL);
  CHECK(s.calls == 0); /* a refused call never calls back */
}

static void bad_opens(uv_loop_t *lp)
{
  char why[256];
  kura_client *c = (kura_client *)&why;
  kura_client_options o = {.backend = "bogus://x", .errbuf = why, .errbuf_len = sizeof why};
  CHECK(kura_client_open(lp, &o, &c) == KURA_EINVAL && c == NULL && strstr(why, "bogus"));
  o.backend = "redis://u:secret@127.0.0.1:99999";
  CHECK(kura_client_open(lp, &o, &c) == KURA_EINVAL && !strstr(why, "secret"));
  o.backend = "redis://127.0.0.1:1";
  CHECK(kura_client_open(NULL, &o, &c) == KURA_EINVAL && strstr(why, "loop"));
  o.backend = NULL, o.default_ttl = NAN;
  CHECK(kura_client_open(lp, &o, &c) == KURA_EINVAL && strstr(why, "default_ttl"));
  o.default_ttl = 0, o.configuration = "warp";
  CHECK(kura_client_open(lp, &o, &c) == KURA_EINVAL && strstr(why, "warp"));
  CHECK(kura_client_open(lp, NULL, NULL) == KURA_EINVAL);
  kura_client_close(NULL);
}

/* One item of exactly the size limit (key + value) with every byte value. */
typedef struct bigseen {
  int calls, err, outcome;
  size_t vlen, wrong; /* bytes of the value read back that differ */
} bigseen;

static void on_big(void *udata, const kura_result *r)
{
  bigseen *b = udata;
  const unsigned char *v = r->value;
  b->calls++;
  b->err = r->err, b->outcome = r->outcome, b->vlen = r->vlen;
  for (size_t i = 0; v && i < r->vlen; i++)
    b->wrong += v[i] != (unsigned char)(i * 7);
}

static void big_value(uv_loop_t *lp, kura_client *c, const char *cache,
                      const unsigned char *v, size_t vlen)
{
  bigseen b = {0};
  int rc = kura_set(c, cache, "big", 3, v, vlen, 0, on_big, &b);
  CHECK(rc == KURA_OK);
  while (rc == KURA_OK && !b.calls)
    uv_run(lp, UV_RUN_ONCE);
  CHECK(b.err == KURA_OK);
  b = (bigseen){0};
  rc = kura_get(c, cache, "big", 3, on_big, &b);
  while (rc == KURA_OK && !b.calls)
    uv_run(lp, UV_RUN_ONCE);
  CHECK(b.err == KURA_OK && b.outcome == KURA_HIT && b.vlen == vlen && b.wrong == 0);
}

/* Values and keys at their edges on a live client: the empty key is a key
 * like any other, an empty value is stored and read back as empty, every
 * byte value survives, an item at the size limit is stored, one byte more is
 * refused at once (no callback), a fire-and-forget call (cb NULL) completes
 * silently, and a blank cache name is refused. */
static void edges(uv_loop_t *lp, kura_client *c, const char *cache)
{
  seen s;
  CHECK(RUN(lp, s, kura_set(c, cache, "", 0, "empty-key", 9, 0, record, &s)) == KURA_OK && !s.err);
  CHECK(RUN(lp, s, kura_get(c, cache, NULL, 0, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_HIT && strcmp(s.value, "empty-key") == 0);
  CHECK(RUN(lp, s, kura_set(c, cache, "e", 1, NULL, 0, 0, record, &s)) == KURA_OK && !s.err);
  CHECK(RUN(lp, s, kura_get(c, cache, "e", 1, record, &s)) == KURA_OK);
  CHECK(s.outcome == KURA_HIT && s.vlen == 0);
  enum { MAX_ITEM = 5 * 1024 * 1024 };
  unsigned char *big = malloc(MAX_ITEM + 1);
  CHECK(big != NULL);
  if (!big)
    return;
  for (size_t i = 0; i <= MAX_ITEM; i++)
    big[i] = (unsigned char)(i * 7);
  big_value(lp, c, cache, big, MAX_ITEM - 3);
  memset(&s, 0, sizeof s);
  CHECK(kura_set(c, cache, "big", 3, big, MAX_ITEM - 2, 0, record, &s) == KURA_EINVAL);
  CHECK(strstr(kura_client_errmsg(c), "limit") != NULL && s.calls == 0);
  CHECK(kura_set(c, cache, big, 64 * 1024 + 1, "v", 1, 0, record, &s) == KURA_EINVAL);
  CHECK(kura_set(c, "   ", "k", 1, "v", 1, 0, record, &s) == KURA_EINVAL && s.calls == 0);
  free(big);
  CHECK(kura_set(c, cache, "ff", 2, "v", 1, 0, NULL, NULL) == KURA_OK);
  CHECK(RUN(lp, s, kura_get(c, cache, "ff", 2, record, &s)) == KURA_OK && s.outcome == KURA_HIT);
}

/* A backend that lacks a call refuses it at once, naming the call and the
 * backend (Momento's HTTP API has no increment, no TTL calls, no caches);
 * what it has is accepted (and fails here: nobody listens on the port). */
static void unsupported(void)
{
  uv_loop_t lp;
  uv_loop_init(&lp);
  kura_client_options o = {.backend = "momento-http", .momento_endpoint = "http://127.0.0.1:1",
                           .timeout = 2.0};
  kura_client *c = NULL;
  CHECK(kura_client_open(&lp, &o, &c) == KURA_OK && c);
  if (!c)
    return;
  seen s = {0};
  CHECK(kura_increment(c, "x", "n", 1, 1, 0, record, &s) == KURA_EUNSUPPORTED);
  CHECK(strstr(kura_client_errmsg(c), "increment is not supported by the momento-http") != NULL);
  CHECK(kura_set_if(c, "x", "k", 1, "v", 1, KURA_SET_IF_ABSENT, NULL, 0, 0, record, &s) ==
        KURA_EUNSUPPORTED);
  CHECK(strstr(kura_client_errmsg(c), "set_if_absent ") != NULL);
  CHECK(kura_decrease_ttl(c, "x", "k", 1, 5, record, &s) == KURA_EUNSUPPORTED);
  CHECK(strstr(kura_client_errmsg(c), "decrease_ttl ") != NULL);
  CHECK(kura_list_caches(c, record, &s) == KURA_EUNSUPPORTED && s.calls == 0);
  CHECK(RUN(&lp, s, kura_get(c, "x", "k", 1, record, &s)) == KURA_OK);
  CHECK(s.err == KURA_ECONN || s.err == KURA_ETIMEOUT);
  close_all(&lp, c);
}

/* --- closing with calls in flight ------------------------------------------- */

typedef struct flight {
  int done, cancelled, other;
  int closed;            /* kura_client_close has run */
  int late;              /* callbacks after it that were not cancelled */
  kura_client *close_me; /* closed from inside the first callback */
} flight;

static void on_flight(void *udata, const kura_result *r)
{
  flight *f = udata;
  f->done++;
  if (getenv("HOST_DEBUG"))
    fprintf(stderr, "flight %d: %s %s\n", f->done, kura_errname(r->err), r->errmsg);
  if (r->err == KURA_ECANCELLED)
    f->cancelled++;
  else
    f->other++;
  f->late += f->closed && r->err != KURA_ECANCELLED;
  if (f->close_me) {
    kura_client *c = f->close_me;
    f->close_me = NULL;
    f->closed = 1;
    kura_client_close(c);
  }
}

/* n calls in flight, then close: each completes once, cancelled (a memory
 * client has none in flight: its calls are done when they return). From
 * inside the first callback: the answers to the others are then likely in
 * the buffer being read already (they are all NOT_FOUND_ERROR: the cache
 * does not exist), and still every one completes cancelled. */
static void close_in_flight(const char *backend, int from_callback)
{
  uv_loop_t lp;
  uv_loop_init(&lp);
  kura_client *c = open_on(&lp, backend, 0);
  if (!c)
    return;
  flight f = {0};
  seen s;
  RUN(&lp, s, kura_delete_cache(c, "flight", record, &s));
  int n = 50, accepted = 0;
  for (int i = 0; i < n; i++)
    accepted += kura_set(c, "flight", "k", 1, "v", 1, 0, on_flight, &f) == KURA_OK;
  CHECK(accepted == n);
  int remote = strcmp(backend, "memory") != 0;
  if (from_callback && remote) {
    f.close_me = c;
    uv_run(&lp, UV_RUN_DEFAULT); /* the first answer closes it; the rest are cancelled */
    CHECK(uv_loop_close(&lp) == 0);
  } else {
    CHECK(kura_client_pending(c) == (size_t)(remote ? n : 0));
    f.closed = 1;
    close_all(&lp, c);
  }
  CHECK(f.done == n && f.late == 0);
  if (f.done != n || f.late || (remote && f.cancelled < n - from_callback))
    fprintf(stderr, "%s: %d calls, %d done, %d cancelled, %d not cancelled after the close\n",
            backend, n, f.done, f.cancelled, f.late);
  if (remote)
    CHECK(f.cancelled >= n - from_callback);
}

/* A redis:// URL of a loopback port nobody listens on. */
static void dead_url(char *url, size_t cap)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
  close(fd); /* nobody listens there now */
  snprintf(url, cap, "redis://127.0.0.1:%d", ntohs(a.sin_port));
}

/* A Redis that is not there: CONNECTION_ERROR, well within the timeout; 50
 * calls in flight towards it when the client closes are all cancelled. */
static void dead_redis(void)
{
  char url[64];
  dead_url(url, sizeof url);
  close_in_flight(url, 0);
  close_in_flight(url, 1);
  uv_loop_t lp;
  uv_loop_init(&lp);
  kura_client *c = open_on(&lp, url, 2.0);
  if (!c)
    return;
  seen s;
  uint64_t t0 = uv_hrtime();
  CHECK(RUN(&lp, s, kura_get(c, "dead", "k", 1, record, &s)) == KURA_OK);
  double took = (double)(uv_hrtime() - t0) / 1e9;
  CHECK(s.err == KURA_ECONN);
  CHECK(took < 2.0 + 1.0);
  if (s.err != KURA_ECONN || took >= 3.0)
    fprintf(stderr, "dead redis: %s after %.3f s\n", kura_errname(s.err), took);
  close_all(&lp, c);
}

/* kura_client_stats: the calls made, the gets' hits and misses, errors by
 * code, the store's figures on memory only. */
static void stats(uv_loop_t *lp, kura_client *c, const char *cache, int is_memory)
{
  kura_stats a, b, m, all;
  seen s;
  CHECK(kura_client_stats(c, cache, &a) == KURA_OK);
  CHECK(RUN(lp, s, kura_set(c, cache, "st", 2, "v", 1, 0, record, &s)) == KURA_OK);
  RUN(lp, s, kura_get(c, cache, "st", 2, record, &s));
  RUN(lp, s, kura_get(c, cache, "st-none", 7, record, &s));
  RUN(lp, s, kura_get(c, "core-host-none", "k", 1, record, &s));
  CHECK(kura_client_stats(c, cache, &b) == KURA_OK);
  CHECK(b.calls == a.calls + 3 && b.hits == a.hits + 1 && b.misses == a.misses + 1);
  CHECK(b.has_backend == is_memory);
  if (is_memory)
    CHECK(b.items >= 1 && b.bytes > 0);
  CHECK(kura_client_stats(c, "core-host-none", &m) == KURA_OK);
  CHECK(m.calls == 1 && m.errors[-KURA_ENOTFOUND] == 1 && m.hits + m.misses == 0);
  CHECK(kura_client_stats(c, NULL, &all) == KURA_OK && all.calls >= b.calls + 1);
  CHECK(kura_client_stats(NULL, cache, &all) == KURA_EINVAL);
  CHECK(kura_client_stats(c, cache, NULL) == KURA_EINVAL);
}

/* --- main ------------------------------------------------------------------------ */

static void run_backend(const char *backend)
{
  uv_loop_t lp;
  uv_loop_init(&lp);
  kura_client *c = open_on(&lp, backend, 0);
  if (!c)
    return;
  const char *cache = "core-host";
  seen s;
  RUN(&lp, s, kura_delete_cache(c, cache, record, &s));
  CHECK(RUN(&lp, s, kura_create_cache(c, cache, record, &s)) == KURA_OK && !s.err);
  items(&lp, c, cache);
  conditions(&lp, c, cache);
  ttls(&lp, c, cache);
  batches(&lp, c, cache);
  refusals(c, cache);
  edges(&lp, c, cache);
  caches(&lp, c, cache);
  stats(&lp, c, cache, strcmp(backend, "memory") == 0);
  cleanup(&lp, c, cache);
  CHECK(strcmp(kura_client_backend(c), strncmp(backend, "redis-cluster", 13) == 0 ? "redis-cluster"
                                       : strncmp(backend, "redis", 5) == 0 ? "redis" : "memory") == 0);
  close_all(&lp, c);
  close_in_flight(backend, 0);
  close_in_flight(backend, 1);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: host BACKEND...   (memory, redis://host:port, ...)\n");
    return 2;
  }
  uv_loop_t lp;
  uv_loop_init(&lp);
  bad_opens(&lp);
  CHECK(uv_loop_close(&lp) == 0);
  for (int i = 1; i < argc; i++) {
    int before = failures;
    run_backend(argv[i]);
    printf("%s: %s\n", argv[i], failures == before ? "ok" : "FAILED");
  }
  dead_redis();
  printf("dead redis: CONNECTION_ERROR checked\n");
  unsupported();
  printf("unsupported calls: refused at once\n");
  /* The memory client without a loop: its calls complete as they return. */
  kura_client *c = open_on(NULL, "memory", 0);
  seen s = {0};
  CHECK(c && kura_create_cache(c, "loopless", record, &s) == KURA_OK && s.calls == 1);
  kura_client_close(c);
  return failures ? 1 : 0;
}
