/* Several runtimes on several threads share the embedded store by name.
 * Four threads, each with its own loop and runtime made through the public
 * API only, increment shared counters from Lua (kura.client()) and from C
 * (kura_increment) at the same time; the final sums must be exact. Run it
 * under ASan and TSan too (-DKURA_SANITIZE=ON / thread). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura.h"
#include "ktest.h"

#define NTHREADS 4
#define ROUNDS 2000

static const char script[] =
  "local c = kura.client()\n"
  "function bump(id, n)\n"
  "  for i = 1, n do\n"
  "    assert(c:increment('threads', 'lua_total'))\n"
  "    assert(c:increment('threads', 'lua_' .. id, 2))\n"
  "  end\n"
  "  return true\n"
  "end\n";

struct worker {
  int id;
  int rc;              /* first failure, or 0 */
  char msg[256];
  int64_t c_last;      /* last value our C increments saw */
  int c_errors;
};

static void on_incr(void *udata, const kura_result *res)
{
  struct worker *w = udata;
  if (res->err)
    w->c_errors++;
  else
    w->c_last = res->integer;
}

/* One round: a Lua handler call plus C increments, interleaved. */
static int work(struct worker *w, kura_runtime *rt)
{
  kura_client *c = kura_client(rt);
  if (!c)
    return KURA_EINTERNAL;
  char key[32];
  snprintf(key, sizeof key, "c_%d", w->id);
  kura_value args[2] = {kura_int(w->id), kura_int(10)}, r;
  for (int i = 0; i < ROUNDS / 10; i++) {
    int rc = kura_call(rt, "bump", args, 2, &r, 1);
    if (rc != KURA_OK)
      return rc;
    for (int j = 0; j < 10; j++) {
      if ((rc = kura_increment(c, "threads", "c_total", 7, 1, 0, on_incr, w)) != KURA_OK ||
          (rc = kura_increment(c, "threads", key, strlen(key), 3, 0, on_incr, w)) != KURA_OK)
        return rc;
    }
    kura_tick(rt);
  }
  return kura_run(rt);
}

static void *thread_main(void *arg)
{
  struct worker *w = arg;
  kura_options o = {0};
  o.backend = "memory";
  o.default_ttl = 600;
  kura_runtime *rt = NULL;
  w->rc = kura_runtime_new(&o, &rt);
  if (w->rc == KURA_OK)
    w->rc = kura_load_string(rt, script, "=threads");
  if (w->rc == KURA_OK)
    w->rc = work(w, rt);
  if (w->rc != KURA_OK)
    snprintf(w->msg, sizeof w->msg, "%s", kura_errmsg(rt));
  kura_runtime_free(rt);
  return NULL;
}

struct got {
  int err;
  int64_t value;
};

static void on_get(void *udata, const kura_result *res)
{
  struct got *g = udata;
  g->err = res->err;
  g->value = -1;
  if (!res->err && res->outcome == KURA_HIT) {
    char buf[32];
    size_t n = res->vlen < sizeof buf - 1 ? res->vlen : sizeof buf - 1;
    memcpy(buf, res->value, n);
    buf[n] = '\0';
    g->value = strtoll(buf, NULL, 10);
  }
}

static int64_t read_counter(kura_client *c, const char *key)
{
  struct got g = {0, -1};
  if (kura_get(c, "threads", key, strlen(key), on_get, &g) != KURA_OK || g.err)
    return -2;
  return g.value;
}

KTEST(four_threads_share_counters)
{
  kura_runtime *rt;
  KCHECK_EQ(kura_runtime_new(NULL, &rt), KURA_OK);
  kura_client *c = kura_client(rt);
  KCHECK(c);
  KCHECK_EQ(kura_create_cache(c, "threads", NULL, NULL), KURA_OK);

  pthread_t th[NTHREADS];
  struct worker w[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].id = i;
    KCHECK_EQ(pthread_create(&th[i], NULL, thread_main, &w[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < NTHREADS; i++) {
    if (w[i].rc)
      fprintf(stderr, "  thread %d: %s (%s)\n", i, kura_errname(w[i].rc), w[i].msg);
    KCHECK_EQ(w[i].rc, KURA_OK);
    KCHECK_EQ(w[i].c_errors, 0);
    KCHECK_EQ(w[i].c_last, 3 * ROUNDS);
  }
  KCHECK_EQ(read_counter(c, "lua_total"), (int64_t)NTHREADS * ROUNDS);
  KCHECK_EQ(read_counter(c, "c_total"), (int64_t)NTHREADS * ROUNDS);
  for (int i = 0; i < NTHREADS; i++) {
    char key[32];
    snprintf(key, sizeof key, "lua_%d", i);
    KCHECK_EQ(read_counter(c, key), 2 * ROUNDS);
    snprintf(key, sizeof key, "c_%d", i);
    KCHECK_EQ(read_counter(c, key), 3 * ROUNDS);
  }
  KCHECK_EQ(kura_delete_cache(c, "threads", NULL, NULL), KURA_OK);
  kura_runtime_free(rt);
}

int main(int argc, char **argv)
{
  static const struct ktest tests[] = {KENTRY(four_threads_share_counters)};
  return ktest_run(tests, sizeof tests / sizeof tests[0], argc, argv);
}
