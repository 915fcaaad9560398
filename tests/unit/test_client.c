/* Tests of the client core (src/core/client.c) and the memory backend:
 * presets, the retry policy, validation with Momento's codes and messages,
 * inline completion, cache handle re-resolution, and, through a fake remote
 * backend that completes from the loop, retries, deadlines and closing with
 * requests pending. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/client.h"
#include "core/credential.h"
#include "ktest.h"

/* --- a recorder of completions ---------------------------------------------- */

typedef struct rec {
  int calls;
  int err;
  int outcome;
  char msg[256];
  char val[64];
  size_t vlen;
  int64_t integer;
  uint64_t ttl_ms;
  int uncertain;
} rec;

static void on_rec(void *udata, const kr_request *req, const kr_result *res)
{
  rec *r = udata;
  (void)req;
  r->calls++;
  r->err = res->err;
  r->outcome = res->outcome;
  r->integer = res->integer;
  r->ttl_ms = res->ttl_ms;
  r->uncertain = res->uncertain;
  snprintf(r->msg, sizeof r->msg, "%s", res->msg ? res->msg : "");
  r->vlen = res->val ? res->vlen : 0;
  if (res->val)
    memcpy(r->val, res->val, res->vlen < sizeof r->val ? res->vlen : sizeof r->val);
}

static kr_request item(enum kr_op op, const char *cache, const char *key, const char *val)
{
  kr_request r = {.op = op, .cache = cache, .cache_len = strlen(cache), .key = key,
                  .klen = key ? strlen(key) : 0, .val = val, .vlen = val ? strlen(val) : 0};
  return r;
}

static kr_client *memory_client(uv_loop_t *loop, const char *store)
{
  kr_client_config cfg = {.backend = "memory", .store = store, .default_ttl = 30};
  kr_client *c = NULL;
  char err[128];
  if (kr_client_new(loop, &cfg, &c, err, sizeof err) != 0)
    fprintf(stderr, "  kr_client_new: %s\n", err);
  return c;
}

/* --- policy ----------------------------------------------------------------- */

KTEST(presets)
{
  enum kr_preset p;
  KCHECK_EQ(kr_preset_parse("laptop", &p), 0);
  KCHECK_EQ(p, KR_PRESET_LAPTOP);
  KCHECK_EQ(kr_preset_timeout_ms(p), 5000);
  KCHECK_EQ(kr_preset_parse("in_region", &p), 0);
  KCHECK_EQ(kr_preset_timeout_ms(p), 1100);
  KCHECK_EQ(kr_preset_parse("low_latency", &p), 0);
  KCHECK_EQ(kr_preset_timeout_ms(p), 500);
  KCHECK_EQ(kr_preset_parse("lambda", &p), 0);
  KCHECK_EQ(kr_preset_timeout_ms(p), 1100);
  for (int i = 0; i < KR_PRESET_COUNT_; i++)
    KCHECK_EQ(kr_preset_max_attempts((enum kr_preset)i), 3);
  KCHECK_EQ(kr_preset_parse("Laptop", &p), KURA_EINVAL);
  KCHECK_EQ(kr_preset_parse("", &p), KURA_EINVAL);
  KCHECK(strcmp(kr_preset_name(KR_PRESET_LOW_LATENCY), "low_latency") == 0);
}

KTEST(retry_policy_table)
{
  static const enum kr_op yes[] = {KR_OP_GET, KR_OP_SET, KR_OP_DELETE, KR_OP_KEY_EXISTS,
                                   KR_OP_KEYS_EXIST, KR_OP_TTL_GET, KR_OP_GET_BATCH,
                                   KR_OP_SET_BATCH};
  static const enum kr_op no[] = {KR_OP_INCREMENT, KR_OP_SET_IF, KR_OP_TTL_SET,
                                  KR_OP_CREATE_CACHE, KR_OP_DELETE_CACHE, KR_OP_FLUSH_CACHE};
  static const int transient[] = {KURA_ETIMEOUT, KURA_ECONN, KURA_EUNAVAIL, KURA_EINTERNAL};
  /* LIMIT_EXCEEDED included: an answer over a size limit is over it again */
  static const int permanent[] = {KURA_EINVAL, KURA_ENOTFOUND, KURA_EPRECOND, KURA_EAUTH,
                                  KURA_EPERM, KURA_ECANCELLED, KURA_EUNKNOWN, KURA_ENOMEM,
                                  KURA_ELIMIT};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    KCHECK(kr_op_idempotent(yes[i]));
    KCHECK(kr_should_retry(yes[i], KURA_EUNAVAIL, 1, 3));
    KCHECK(kr_should_retry(yes[i], KURA_ETIMEOUT, 2, 3));
    KCHECK(!kr_should_retry(yes[i], KURA_EUNAVAIL, 3, 3)); /* 3 attempts in all */
  }
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
    KCHECK(!kr_op_idempotent(no[i]));
    KCHECK(!kr_should_retry(no[i], KURA_EUNAVAIL, 1, 3));
  }
  for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
    KCHECK(kr_err_transient(transient[i]));
  for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++) {
    KCHECK(!kr_err_transient(permanent[i]));
    KCHECK(!kr_should_retry(KR_OP_GET, permanent[i], 1, 3));
  }
  KCHECK(!kura_err_retryable(KURA_ELIMIT));
}

/* uncertain: a failed call that is not idempotent, whose error does not say
 * it was refused, and that the backend does not know did not run. */
KTEST(uncertain_outcomes)
{
  kr_result r = {.err = KURA_ETIMEOUT};
  KCHECK(kr_result_uncertain(KR_OP_INCREMENT, &r));
  KCHECK(kr_result_uncertain(KR_OP_SET_IF, &r));
  KCHECK(kr_result_uncertain(KR_OP_TTL_SET, &r));
  KCHECK(!kr_result_uncertain(KR_OP_SET, &r)); /* idempotent: sending again is safe */
  KCHECK(!kr_result_uncertain(KR_OP_GET, &r));
  static const int maybe[] = {KURA_ETIMEOUT, KURA_ECONN, KURA_EUNAVAIL, KURA_EINTERNAL,
                              KURA_EUNKNOWN, KURA_ECANCELLED};
  static const int refused[] = {KURA_EINVAL, KURA_ENOTFOUND, KURA_EPRECOND, KURA_ELIMIT,
                                KURA_EAUTH, KURA_EPERM, KURA_EBADREQ, KURA_EUNSUPPORTED};
  for (size_t i = 0; i < sizeof maybe / sizeof maybe[0]; i++) {
    r = (kr_result){.err = maybe[i]};
    KCHECK(kr_result_uncertain(KR_OP_INCREMENT, &r));
    r.unapplied = 1; /* e.g. never sent: a retry cannot apply it twice */
    KCHECK(!kr_result_uncertain(KR_OP_INCREMENT, &r));
  }
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    r = (kr_result){.err = refused[i]};
    KCHECK(!kr_result_uncertain(KR_OP_INCREMENT, &r));
  }
  r = (kr_result){0};
  KCHECK(!kr_result_uncertain(KR_OP_INCREMENT, &r));
}

KTEST(seconds_to_ms)
{
  uint64_t ms = 0;
  KCHECK_EQ(kr_seconds_to_ms(0, &ms), KURA_EINVAL);
  KCHECK_EQ(kr_seconds_to_ms(-1, &ms), KURA_EINVAL);
  KCHECK_EQ(kr_seconds_to_ms(NAN, &ms), KURA_EINVAL);
  KCHECK_EQ(kr_seconds_to_ms(INFINITY, &ms), KURA_EINVAL);
  KCHECK_EQ(kr_seconds_to_ms(1.5, &ms), 0);
  KCHECK_EQ(ms, 1500);
  KCHECK_EQ(kr_seconds_to_ms(0.0001, &ms), 0);
  KCHECK_EQ(ms, 1); /* never 0, which would mean "no expiry" */
  KCHECK_EQ(kr_seconds_to_ms(0.0016, &ms), 0);
  KCHECK_EQ(ms, 2);
}

KTEST(format_key_escapes_and_truncates)
{
  char out[64];
  kr_format_key(out, sizeof out, "ab\0c\n'", 6);
  KCHECK(strcmp(out, "ab\\x00c\\x0a\\x27") == 0);
  char big[200];
  memset(big, 'x', sizeof big);
  kr_format_key(out, sizeof out, big, sizeof big);
  KCHECK(strlen(out) < sizeof out);
  KCHECK(strcmp(out + strlen(out) - 3, "...") == 0);
  char tiny[8];
  kr_format_key(tiny, sizeof tiny, "\x01\x02\x03\x04", 4);
  KCHECK(strlen(tiny) < sizeof tiny);
}

KTEST(cache_names)
{
  char msg[128], name[300];
  KCHECK_EQ(kr_check_cache_name("", 0, msg, sizeof msg), KURA_EINVAL);
  KCHECK(strstr(msg, "empty"));
  KCHECK_EQ(kr_check_cache_name(" \t\n", 3, msg, sizeof msg), KURA_EINVAL);
  KCHECK(strstr(msg, "blank"));
  memset(name, 'n', sizeof name);
  KCHECK_EQ(kr_check_cache_name(name, 256, msg, sizeof msg), KURA_EINVAL);
  KCHECK_EQ(kr_check_cache_name(name, 255, msg, sizeof msg), 0);
  KCHECK_EQ(kr_check_cache_name(" a ", 3, msg, sizeof msg), 0);
  KCHECK_EQ(kr_check_cache_name("a\x01" "b", 3, msg, sizeof msg), KURA_EINVAL);
  KCHECK(strstr(msg, "control character (byte 1)"));
  /* Through the client: cache management checks the name whole, though it
   * starts with a visible byte (NUL inside, which list_caches could not
   * return). */
  kr_client *c = memory_client(NULL, "test-cache-names");
  KCHECK(c);
  kr_request r = {.op = KR_OP_CREATE_CACHE, .cache = "x\0nul", .cache_len = 5};
  KCHECK_EQ(kr_client_validate(c, &r), KURA_EINVAL);
  KCHECK(strstr(kr_client_errstr(c), "control character"));
  r.cache = "x\x7f";
  r.cache_len = 2;
  KCHECK_EQ(kr_client_validate(c, &r), KURA_EINVAL);
  /* An item call on the embedded store: such a cache cannot exist. */
  kr_request g = {.op = KR_OP_GET, .cache = "x\0nul", .cache_len = 5, .key = "k", .klen = 1};
  KCHECK_EQ(kr_client_validate(c, &g), 0);
  kr_client_close(c, NULL, NULL);
}

KTEST(backend_strings)
{
  kr_client_config cfg = {0};
  kr_client *c = NULL;
  char err[256];
  cfg.backend = "redis-cluster://127.0.0.1:7000";
  KCHECK_EQ(kr_client_new(NULL, &cfg, &c, err, sizeof err), KURA_EINVAL);
  KCHECK(c == NULL);
  KCHECK(strstr(err, "backend 'redis-cluster' needs an event loop")); /* built: no loop given */
  cfg.backend = "momento-http";
  KCHECK_EQ(kr_client_new(NULL, &cfg, &c, err, sizeof err), KURA_EINVAL);
  KCHECK(strstr(err, "'momento-http'"));
  cfg.backend = "memcached://x";
  KCHECK_EQ(kr_client_new(NULL, &cfg, &c, err, sizeof err), KURA_EINVAL);
  KCHECK(strstr(err, "unknown backend 'memcached://x'"));
  cfg.backend = "memory";
  cfg.default_ttl = -1; /* <= 0 means the default, 60 s */
  KCHECK_EQ(kr_client_new(NULL, &cfg, &c, err, sizeof err), 0);
  KCHECK_EQ(kr_client_default_ttl_ms(c), 60000);
  KCHECK_EQ(kr_client_timeout_ms(c), 5000);
  KCHECK(strcmp(kr_client_backend_name(c), "memory") == 0);
  kr_client_close(c, NULL, NULL);
}

/* --- the memory backend ------------------------------------------------------ */

KTEST(validation_refuses_without_callback)
{
  kr_client *c = memory_client(NULL, "test-client-validate");
  KCHECK(c);
  rec r = {0};
  /* First, on a client that has checked no name yet: the memo of the last
   * good name must not let an empty one through. */
  kr_request q = item(KR_OP_GET, "", "k", NULL);
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), KURA_EINVAL);
  KCHECK(strstr(kr_client_errstr(c), "empty"));
  q = item(KR_OP_GET, "  ", "k", NULL);
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), KURA_EINVAL);
  KCHECK_EQ(r.calls, 0);
  KCHECK(strstr(kr_client_errstr(c), "blank"));
  static char big[KR_STORE_MAX_KEY + 1];
  memset(big, 'k', sizeof big);
  q = item(KR_OP_GET, "c", NULL, NULL);
  q.key = big, q.klen = sizeof big;
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), KURA_EINVAL);
  KCHECK(strstr(kr_client_errstr(c), "65537 bytes"));
  KCHECK(strstr(kr_client_errstr(c), "cache 'c'"));
  q = item(KR_OP_SET, "c", "k", NULL);
  q.val = malloc(KR_STORE_MAX_ITEM);
  q.vlen = KR_STORE_MAX_ITEM;
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), KURA_EINVAL);
  free((void *)q.val);
  KCHECK_EQ(r.calls, 0);
  kr_client_close(c, NULL, NULL);
}

KTEST(memory_completes_inline)
{
  kr_client *c = memory_client(NULL, "test-client-inline");
  KCHECK(c && kr_client_is_inline(c));
  rec r = {0};
  kr_request q = {.op = KR_OP_CREATE_CACHE, .cache = "c", .cache_len = 1};
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  KCHECK_EQ(r.calls, 1); /* before submit returned */
  KCHECK_EQ(r.outcome, KURA_HIT);
  q = item(KR_OP_SET, "c", "k", "hello");
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  KCHECK_EQ(r.calls, 2);
  KCHECK_EQ(q.ttl_ms, 30000); /* the default TTL was filled in */
  q = item(KR_OP_GET, "c", "k", NULL);
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  KCHECK_EQ(r.calls, 3);
  KCHECK_EQ(r.outcome, KURA_HIT);
  KCHECK(r.vlen == 5 && memcmp(r.val, "hello", 5) == 0);
  q = item(KR_OP_TTL_GET, "c", "k", NULL);
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  KCHECK(r.ttl_ms > 29000 && r.ttl_ms <= 30000);
  q = item(KR_OP_GET, "c", "absent", NULL);
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  KCHECK_EQ(r.outcome, KURA_MISS);
  KCHECK_EQ(r.err, 0);
  kr_client_close(c, NULL, NULL);
}

KTEST(memory_errors_name_cache_and_key)
{
  kr_client *c = memory_client(NULL, "test-client-errors");
  rec r = {0};
  kr_request q = item(KR_OP_GET, "nosuch", "k", NULL);
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  KCHECK_EQ(r.err, KURA_ENOTFOUND);
  KCHECK(strstr(r.msg, "'nosuch'"));
  q = (kr_request){.op = KR_OP_CREATE_CACHE, .cache = "c", .cache_len = 1};
  kr_client_submit(c, &q, on_rec, &r);
  q = item(KR_OP_SET, "c", "n\x01", "abc");
  kr_client_submit(c, &q, on_rec, &r);
  q = item(KR_OP_INCREMENT, "c", "n\x01", NULL);
  q.amount = 1;
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  KCHECK_EQ(r.err, KURA_EPRECOND);
  KCHECK(strstr(r.msg, "'n\\x01'"));
  KCHECK(strstr(r.msg, "cache 'c'"));
  q = (kr_request){.op = KR_OP_CREATE_CACHE, .cache = "c", .cache_len = 1};
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  KCHECK_EQ(r.err, 0);
  KCHECK_EQ(r.outcome, KURA_SKIPPED); /* already existed */
  kr_client_close(c, NULL, NULL);
}

KTEST(memory_reresolves_recreated_cache)
{
  kr_client *a = memory_client(NULL, "test-client-recreate");
  kr_client *b = memory_client(NULL, "test-client-recreate");
  rec r = {0};
  kr_request mk = {.op = KR_OP_CREATE_CACHE, .cache = "c", .cache_len = 1};
  kr_request del = {.op = KR_OP_DELETE_CACHE, .cache = "c", .cache_len = 1};
  kr_client_submit(a, &mk, on_rec, &r);
  kr_request q = item(KR_OP_SET, "c", "k", "v1");
  kr_client_submit(a, &q, on_rec, &r);
  q = item(KR_OP_GET, "c", "k", NULL);
  kr_client_submit(a, &q, on_rec, &r); /* a now holds a handle to c */
  KCHECK_EQ(r.outcome, KURA_HIT);
  kr_client_submit(b, &del, on_rec, &r); /* deleted behind a's back */
  KCHECK_EQ(r.err, 0);
  q = item(KR_OP_GET, "c", "k", NULL);
  kr_client_submit(a, &q, on_rec, &r);
  KCHECK_EQ(r.err, KURA_ENOTFOUND);
  kr_client_submit(b, &mk, on_rec, &r); /* a new cache under the old name */
  q = item(KR_OP_GET, "c", "k", NULL);
  kr_client_submit(a, &q, on_rec, &r);
  KCHECK_EQ(r.err, 0);
  KCHECK_EQ(r.outcome, KURA_MISS);
  q = item(KR_OP_SET, "c", "k", "v2");
  kr_client_submit(a, &q, on_rec, &r);
  q = item(KR_OP_GET, "c", "k", NULL);
  kr_client_submit(b, &q, on_rec, &r);
  KCHECK(r.outcome == KURA_HIT && memcmp(r.val, "v2", 2) == 0);
  kr_client_close(a, NULL, NULL);
  kr_client_close(b, NULL, NULL);
}

static void on_big(void *udata, const kr_request *req, const kr_result *res)
{
  size_t *got = udata;
  (void)req;
  *got = res->outcome == KURA_HIT ? res->vlen : 0;
}

KTEST(memory_grows_value_buffer)
{
  kr_client *c = memory_client(NULL, "test-client-big");
  rec r = {0};
  kr_request mk = {.op = KR_OP_CREATE_CACHE, .cache = "c", .cache_len = 1};
  kr_client_submit(c, &mk, on_rec, &r);
  size_t n = 1 << 20, got = 0;
  char *v = malloc(n);
  memset(v, 'v', n);
  kr_request q = item(KR_OP_SET, "c", "big", NULL);
  q.val = v, q.vlen = n;
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  free(v);
  KCHECK_EQ(r.err, 0);
  q = item(KR_OP_GET, "c", "big", NULL);
  KCHECK_EQ(kr_client_submit(c, &q, on_big, &got), 0);
  KCHECK_EQ(got, n);
  kr_client_close(c, NULL, NULL);
}

static void on_close_inside(void *udata, const kr_request *req, const kr_result *res)
{
  kr_client **c = udata;
  (void)req, (void)res;
  kr_client_close(*c, NULL, NULL); /* the free waits until the request returns */
}

static void on_closed_flag(void *ud)
{
  *(int *)ud = 1;
}

KTEST(memory_close_from_callback_and_with_loop)
{
  kr_client *c = memory_client(NULL, "test-client-close");
  kr_request q = {.op = KR_OP_LIST_CACHES};
  KCHECK_EQ(kr_client_submit(c, &q, on_close_inside, &c), 0);
  /* closed and freed (ASan would flag a use after free or a leak) */
  uv_loop_t loop;
  uv_loop_init(&loop);
  int closed = 0;
  c = memory_client(&loop, "test-client-close");
  KCHECK(c);
  KCHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0); /* the sweep timer is unref'd */
  kr_client_close(c, on_closed_flag, &closed);
  KCHECK_EQ(closed, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  KCHECK_EQ(closed, 1);
  KCHECK_EQ(uv_loop_close(&loop), 0);
}

/* --- a fake remote backend --------------------------------------------------
 * Completes each request from a loop timer; the first `fail` attempts fail
 * with `fail_err`; with `hold` set it never answers until closed. */

typedef struct fake_op {
  struct fake_op *next;
  kr_client_cb cb;
  void *udata;
  const kr_request *req;
} fake_op;

typedef struct fake {
  kr_client *client;
  uv_timer_t timer;
  fake_op *ops;
  int attempts;
} fake;

static int fake_fail, fake_err, fake_hold, fake_submits, fake_unapplied;

static void fake_finish(fake *f, int err)
{
  fake_op *list = f->ops;
  f->ops = NULL;
  while (list) {
    fake_op *o = list;
    list = o->next;
    kr_result res = {.err = err, .msg = err ? kura_strerror(err) : NULL, .outcome = KURA_HIT,
                     .unapplied = fake_unapplied};
    o->cb(o->udata, o->req, &res);
    free(o);
  }
}

static void fake_tick(uv_timer_t *t)
{
  fake *f = t->data;
  if (fake_hold)
    return;
  fake_finish(f, fake_fail > 0 ? fake_err : 0);
  if (fake_fail > 0)
    fake_fail--;
}

static int fake_open(kr_client *c, const kr_client_config *cfg, void **state)
{
  fake *f = calloc(1, sizeof *f);
  (void)cfg;
  f->client = c;
  uv_timer_init(kr_client_loop(c), &f->timer);
  f->timer.data = f;
  *state = f;
  return 0;
}

static void fake_submit(void *state, const kr_request *req, kr_client_cb cb, void *udata)
{
  fake *f = state;
  fake_op *o = calloc(1, sizeof *o);
  o->cb = cb, o->udata = udata, o->req = req;
  o->next = f->ops;
  f->ops = o;
  f->attempts++;
  fake_submits++;
  if (!fake_hold)
    uv_timer_start(&f->timer, fake_tick, 1, 0);
}

static void fake_closed(uv_handle_t *h)
{
  fake *f = h->data;
  kr_client *c = f->client;
  free(f);
  kr_client_backend_closed(c);
}

static void fake_close(void *state)
{
  fake *f = state;
  fake_finish(f, KURA_ECANCELLED);
  uv_close((uv_handle_t *)&f->timer, fake_closed);
}

static const kr_backend_ops fake_ops = {.name = "fake", .supports = KR_OPS_ALL, .open = fake_open,
                                        .submit = fake_submit, .close = fake_close};

static kr_client *fake_client(uv_loop_t *loop, double timeout)
{
  kr_client_config cfg = {.timeout = timeout};
  kr_client *c = NULL;
  kr_client_new_with(loop, &cfg, &fake_ops, &c, NULL, 0);
  return c;
}

static int submit_and_run(uv_loop_t *loop, kr_client *c, kr_request *q, rec *r)
{
  int rc = kr_client_submit(c, q, on_rec, r);
  if (rc == 0 && r->calls == 0)
    uv_run(loop, UV_RUN_DEFAULT);
  return rc;
}

KTEST(remote_retries_idempotent_only)
{
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_client *c = fake_client(&loop, 5);
  KCHECK(c && !kr_client_is_inline(c));
  KCHECK_EQ(kr_client_max_attempts(c), 3);
  fake_hold = 0, fake_err = KURA_EUNAVAIL, fake_fail = 2, fake_submits = 0;
  rec r = {0};
  char key[] = "k";
  kr_request q = item(KR_OP_GET, "c", key, NULL);
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  KCHECK_EQ(r.calls, 0); /* not inline */
  key[0] = 'x';          /* the client copied the request */
  uv_run(&loop, UV_RUN_DEFAULT);
  KCHECK_EQ(r.calls, 1);
  KCHECK_EQ(r.err, 0); /* third attempt succeeded */
  KCHECK_EQ(fake_submits, 3);
  fake_fail = 3;
  memset(&r, 0, sizeof r);
  submit_and_run(&loop, c, &q, &r);
  KCHECK_EQ(r.err, KURA_EUNAVAIL); /* three attempts, all failed */
  KCHECK_EQ(fake_fail, 0);
  fake_fail = 1;
  memset(&r, 0, sizeof r);
  q = item(KR_OP_INCREMENT, "c", "k", NULL);
  submit_and_run(&loop, c, &q, &r);
  KCHECK_EQ(r.err, KURA_EUNAVAIL); /* never retried */
  KCHECK_EQ(r.uncertain, 1);       /* the backend did not say it did not run */
  KCHECK_EQ(fake_submits, 7);
  fake_fail = 1, fake_unapplied = 1; /* the backend knows it did not run */
  memset(&r, 0, sizeof r);
  submit_and_run(&loop, c, &q, &r);
  KCHECK_EQ(r.err, KURA_EUNAVAIL);
  KCHECK_EQ(r.uncertain, 0);
  KCHECK_EQ(fake_submits, 8); /* still never retried */
  fake_unapplied = 0;
  fake_fail = 1, fake_err = KURA_EINVAL;
  memset(&r, 0, sizeof r);
  q = item(KR_OP_GET, "c", "k", NULL);
  submit_and_run(&loop, c, &q, &r);
  KCHECK_EQ(r.err, KURA_EINVAL); /* not transient */
  KCHECK_EQ(fake_submits, 9);
  fake_fail = 1, fake_err = KURA_ELIMIT; /* not transient either */
  memset(&r, 0, sizeof r);
  submit_and_run(&loop, c, &q, &r);
  KCHECK_EQ(r.err, KURA_ELIMIT);
  KCHECK_EQ(fake_submits, 10);
  KCHECK_EQ(kr_client_pending(c), 0);
  kr_client_close(c, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  KCHECK_EQ(uv_loop_close(&loop), 0);
}

KTEST(remote_deadline_then_close)
{
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_client *c = fake_client(&loop, 0.02);
  KCHECK_EQ(kr_client_timeout_ms(c), 20);
  fake_hold = 1, fake_fail = 0;
  rec r = {0};
  kr_request q = item(KR_OP_GET, "c", "k", NULL);
  KCHECK_EQ(kr_client_submit(c, &q, on_rec, &r), 0);
  uv_run(&loop, UV_RUN_ONCE);
  while (r.calls == 0)
    uv_run(&loop, UV_RUN_ONCE);
  KCHECK_EQ(r.err, KURA_ETIMEOUT);
  KCHECK(strstr(r.msg, "cache 'c'"));
  KCHECK_EQ(r.uncertain, 0); /* a get: sending it again is safe */
  KCHECK_EQ(kr_client_pending(c), 1); /* still held by the backend */
  rec ri = {0}; /* an increment past the client's deadline may have run */
  kr_request qi = item(KR_OP_INCREMENT, "c", "k", NULL);
  KCHECK_EQ(kr_client_submit(c, &qi, on_rec, &ri), 0);
  while (ri.calls == 0)
    uv_run(&loop, UV_RUN_ONCE);
  KCHECK_EQ(ri.err, KURA_ETIMEOUT);
  KCHECK_EQ(ri.uncertain, 1);
  rec r2 = {0};
  kr_request q2 = item(KR_OP_SET, "c", "k", "v");
  KCHECK_EQ(kr_client_submit(c, &q2, on_rec, &r2), 0);
  int closed = 0;
  kr_client_close(c, on_closed_flag, &closed);
  KCHECK_EQ(r2.calls, 1);
  KCHECK_EQ(r2.err, KURA_ECANCELLED); /* pending requests fail on close */
  KCHECK_EQ(r.calls, 1);              /* the timed-out one is not told twice */
  rec r3 = {0};
  KCHECK_EQ(kr_client_submit(c, &q2, on_rec, &r3), KURA_ECANCELLED);
  KCHECK_EQ(r3.calls, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  KCHECK_EQ(closed, 1);
  KCHECK_EQ(uv_loop_close(&loop), 0);
  fake_hold = 0;
}

/* The environment's defaults (kr_client_config_env): what the options
 * leave open, and only that; empty variables are unset; a bad TTL is
 * refused with the variable's name; a Momento key only for Momento. */
static void env_clear(void)
{
  const char *names[] = {"KURA_BACKEND", "KURA_MOMENTO_ENDPOINT", "MOMENTO_TTL_SECONDS",
                         "MOMENTO_API_KEY", "MOMENTO_AUTH_TOKEN"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    unsetenv(names[i]);
}

KTEST(environment_defaults)
{
  char msg[200] = "";
  env_clear();
  kr_client_config cfg = {0};
  KCHECK_EQ(kr_client_config_env(&cfg, msg, sizeof msg), 0);
  KCHECK(cfg.backend == NULL && cfg.momento_endpoint == NULL && cfg.credential == NULL);
  KCHECK(cfg.default_ttl == 60);
  setenv("KURA_BACKEND", "redis://127.0.0.1:1", 1);
  setenv("MOMENTO_TTL_SECONDS", "2.5", 1);
  setenv("KURA_MOMENTO_ENDPOINT", "localhost:1", 1);
  setenv("MOMENTO_API_KEY", "key-a", 1);
  setenv("MOMENTO_AUTH_TOKEN", "token-b", 1);
  cfg = (kr_client_config){0};
  KCHECK_EQ(kr_client_config_env(&cfg, msg, sizeof msg), 0);
  KCHECK(strcmp(cfg.backend, "redis://127.0.0.1:1") == 0 && cfg.default_ttl == 2.5);
  KCHECK(strcmp(cfg.momento_endpoint, "localhost:1") == 0);
  KCHECK(cfg.credential == NULL); /* not a Momento backend: no key */
  cfg = (kr_client_config){.backend = "momento-http", .default_ttl = 7,
                           .momento_endpoint = "mine"};
  KCHECK_EQ(kr_client_config_env(&cfg, msg, sizeof msg), 0);
  KCHECK(cfg.default_ttl == 7 && strcmp(cfg.momento_endpoint, "mine") == 0);
  KCHECK(cfg.credential && strcmp(cfg.credential, "key-a") == 0 && cfg.credential_len == 5);
  unsetenv("MOMENTO_API_KEY");
  setenv("KURA_BACKEND", "", 1); /* empty: unset */
  cfg = (kr_client_config){.credential = "given", .credential_len = 5};
  KCHECK_EQ(kr_client_config_env(&cfg, msg, sizeof msg), 0);
  KCHECK(strcmp(cfg.backend, "momento") == 0 && strcmp(cfg.credential, "given") == 0);
  cfg = (kr_client_config){.backend = "momento"};
  KCHECK_EQ(kr_client_config_env(&cfg, msg, sizeof msg), 0);
  KCHECK(strcmp(cfg.credential, "token-b") == 0);
  setenv("MOMENTO_TTL_SECONDS", "soon", 1);
  cfg = (kr_client_config){0};
  KCHECK_EQ(kr_client_config_env(&cfg, msg, sizeof msg), KURA_EINVAL);
  KCHECK(strstr(msg, "MOMENTO_TTL_SECONDS") && cfg.default_ttl == 0);
  /* kr_client_new applies it: the refusal reaches whoever opens a client */
  kr_client *c = NULL;
  KCHECK_EQ(kr_client_new(NULL, &cfg, &c, msg, sizeof msg), KURA_EINVAL);
  KCHECK(c == NULL && strstr(msg, "MOMENTO_TTL_SECONDS"));
  unsetenv("MOMENTO_TTL_SECONDS");
  setenv("KURA_BACKEND", "memory", 1);
  KCHECK_EQ(kr_client_new(NULL, &cfg, &c, msg, sizeof msg), 0);
  KCHECK(strcmp(kr_client_backend_name(c), "memory") == 0);
  KCHECK_EQ(kr_client_default_ttl_ms(c), 60000);
  kr_client_close(c, NULL, NULL);
  env_clear();
}

/* The one credential set-up of the Momento backends. */
KTEST(credential_open)
{
  char err[300] = "";
  kr_credential cred;
  unsetenv("MOMENTO_ENDPOINT");
  KCHECK_EQ(kr_credential_open("momento", NULL, 0, NULL, &cred, err, sizeof err), KURA_EAUTH);
  KCHECK(strncmp(err, "momento: MOMENTO_API_KEY is not set", 35) == 0);
  KCHECK_EQ(kr_credential_open("momento-http", NULL, 0, "http://127.0.0.1:1", &cred, err,
                               sizeof err), 1); /* a plaintext emulator needs no key */
  const char *bad = "eyJzZWNyZXQtaW4taGVyZSI6MX0.bm90LWpzb24"; /* a JWT with no claims */
  int rc = kr_credential_open("momento", bad, strlen(bad), NULL, &cred, err, sizeof err);
  if (rc == 0)
    kr_credential_free(&cred);
  KCHECK(rc == 0 || (strncmp(err, "momento: ", 9) == 0 && !strstr(err, bad)));
  KCHECK_EQ(kr_credential_open("momento", "opaque-key", 10, NULL, &cred, err, sizeof err), 0);
  KCHECK(cred.secret_len == 10 && memcmp(cred.secret, "opaque-key", 10) == 0);
  kr_credential_free(&cred);
}

KTEST_MAIN(KENTRY(presets), KENTRY(retry_policy_table), KENTRY(seconds_to_ms),
           KENTRY(format_key_escapes_and_truncates), KENTRY(cache_names),
           KENTRY(backend_strings), KENTRY(validation_refuses_without_callback),
           KENTRY(memory_completes_inline), KENTRY(memory_errors_name_cache_and_key),
           KENTRY(memory_reresolves_recreated_cache), KENTRY(memory_grows_value_buffer),
           KENTRY(memory_close_from_callback_and_with_loop),
           KENTRY(remote_retries_idempotent_only), KENTRY(remote_deadline_then_close),
           KENTRY(uncertain_outcomes), KENTRY(environment_defaults),
           KENTRY(credential_open))
