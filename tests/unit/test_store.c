/* Unit tests of the embedded store (src/core/store/store.h): every item call,
 * expiry through an injected clock, eviction under a budget, increments at
 * the int64 limits, the six conditional sets, caches, size limits, the sweep,
 * the registry and several threads sharing one store. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/store/store.h"
#include "core/store/store_int.h"
#include "ktest.h"

typedef struct fake_clock {
  uint64_t now;
} fake_clock;

static uint64_t fake_now(void *ud)
{
  return ((fake_clock *)ud)->now;
}

/* A private store with cache "c" and, when clk is given, a fake clock. */
static kr_cache *setup(kr_store **s, fake_clock *clk)
{
  if (kr_store_new(s) != 0)
    return NULL;
  if (clk)
    kr_store_set_clock(*s, fake_now, clk);
  kr_cache *c = NULL;
  if (kr_store_create_cache(*s, "c", 1) != 0 || kr_store_cache(*s, "c", 1, &c) != 0)
    return NULL;
  return c;
}

static void teardown(kr_store *s, kr_cache *c)
{
  kr_cache_release(c);
  kr_store_release(s);
}

static int set_str(kr_cache *c, const char *k, const char *v, uint64_t ttl)
{
  return kr_store_set(c, k, strlen(k), v, strlen(v), ttl);
}

/* 1 when key k holds exactly v. */
static int has(kr_cache *c, const char *k, const char *v)
{
  char buf[256];
  size_t n = 0;
  int r = kr_store_get(c, k, strlen(k), buf, sizeof buf, &n);
  return r == KURA_HIT && n == strlen(v) && memcmp(buf, v, n) == 0;
}

static int absent(kr_cache *c, const char *k)
{
  char buf[8];
  size_t n;
  return kr_store_get(c, k, strlen(k), buf, sizeof buf, &n) == KURA_MISS;
}

KTEST(set_get_delete)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  KCHECK(absent(c, "a"));
  KCHECK_EQ(set_str(c, "a", "one", 0), KURA_HIT);
  KCHECK(has(c, "a", "one"));
  KCHECK_EQ(set_str(c, "a", "uno-overwritten", 0), KURA_HIT);
  KCHECK(has(c, "a", "uno-overwritten"));
  KCHECK_EQ(kr_store_exists(c, "a", 1), KURA_HIT);
  KCHECK_EQ(kr_store_exists(c, "b", 1), KURA_MISS);
  KCHECK_EQ(kr_store_delete(c, "a", 1), KURA_HIT);
  KCHECK_EQ(kr_store_delete(c, "a", 1), KURA_MISS);
  KCHECK(absent(c, "a"));
  KCHECK_EQ(set_str(c, "empty", "", 0), KURA_HIT);
  KCHECK(has(c, "empty", ""));
  kr_store_stats st;
  kr_store_cache_stats(s, "c", 1, &st);
  KCHECK_EQ(st.items, 1);
  KCHECK_EQ(st.hits, 3);
  KCHECK_EQ(st.misses, 2);
  KCHECK(st.bytes > 0);
  kr_store_stats_get(s, &st);
  KCHECK_EQ(st.items, 1);
  KCHECK_EQ(st.hits, 3);
  teardown(s, c);
}

KTEST(binary_keys_values)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  const char k1[] = {'k', 0, 'x'}, k2[] = {'k', 0, 'y'};
  const char v1[] = {0, 1, 0, 2, 0};
  KCHECK_EQ(kr_store_set(c, k1, 3, v1, 5, 0), KURA_HIT);
  KCHECK_EQ(kr_store_set(c, k2, 3, "y", 1, 0), KURA_HIT);
  char buf[16];
  size_t n = 0;
  KCHECK_EQ(kr_store_get(c, k1, 3, buf, sizeof buf, &n), KURA_HIT);
  KCHECK_EQ(n, 5);
  KCHECK(memcmp(buf, v1, 5) == 0);
  KCHECK_EQ(kr_store_get(c, k2, 3, buf, sizeof buf, &n), KURA_HIT);
  KCHECK_EQ(n, 1);
  KCHECK_EQ(kr_store_get(c, "k", 1, buf, sizeof buf, &n), KURA_MISS);
  teardown(s, c);
}

KTEST(get_erange_retry)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  KCHECK_EQ(set_str(c, "k", "0123456789", 0), KURA_HIT);
  char small[4], big[16];
  size_t n = 0;
  KCHECK_EQ(kr_store_get(c, "k", 1, small, sizeof small, &n), KURA_ERANGE);
  KCHECK_EQ(n, 10);
  KCHECK_EQ(kr_store_get(c, "k", 1, big, n, &n), KURA_HIT);
  KCHECK(memcmp(big, "0123456789", 10) == 0);
  kr_store_stats st;
  kr_store_cache_stats(s, "c", 1, &st);
  KCHECK_EQ(st.hits, 1);
  KCHECK_EQ(st.misses, 0);
  teardown(s, c);
}

KTEST(expiry_lazy)
{
  fake_clock clk = {1000};
  kr_store *s;
  kr_cache *c = setup(&s, &clk);
  KCHECK(c);
  KCHECK_EQ(set_str(c, "t", "v", 100), KURA_HIT);
  KCHECK_EQ(set_str(c, "forever", "v", KR_TTL_NONE), KURA_HIT);
  clk.now = 1099;
  KCHECK(has(c, "t", "v"));
  clk.now = 1100;
  KCHECK(absent(c, "t"));
  KCHECK_EQ(kr_store_exists(c, "t", 1), KURA_MISS);
  clk.now = 1000000000;
  KCHECK(has(c, "forever", "v"));
  kr_store_stats st;
  kr_store_cache_stats(s, "c", 1, &st);
  KCHECK_EQ(st.expirations, 1);
  KCHECK_EQ(st.items, 1);
  teardown(s, c);
}

/* The default clock: reads use a coarse clock, writes and TTL calls the
 * exact one; an item far from its expiry is simply there. */
KTEST(default_clock)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  KCHECK_EQ(set_str(c, "k", "v", 60000), KURA_HIT);
  KCHECK(has(c, "k", "v"));
  KCHECK_EQ(kr_store_exists(c, "k", 1), KURA_HIT);
  uint64_t rem = 0;
  KCHECK_EQ(kr_store_ttl_get(c, "k", 1, &rem), KURA_HIT);
  KCHECK(rem <= 60000 && rem > 50000);
  kr_store_set_clock(s, NULL, NULL);
  KCHECK(has(c, "k", "v"));
  teardown(s, c);
}

KTEST(ttl_calls)
{
  fake_clock clk = {5000};
  kr_store *s;
  kr_cache *c = setup(&s, &clk);
  KCHECK(c);
  uint64_t rem = 0;
  KCHECK_EQ(kr_store_ttl_get(c, "k", 1, &rem), KURA_MISS);
  KCHECK_EQ(kr_store_ttl_set(c, "k", 1, 10, KURA_TTL_UPDATE), KURA_MISS);
  KCHECK_EQ(set_str(c, "k", "v", 1000), KURA_HIT);
  clk.now += 250;
  KCHECK_EQ(kr_store_ttl_get(c, "k", 1, &rem), KURA_HIT);
  KCHECK_EQ(rem, 750);
  KCHECK_EQ(kr_store_ttl_set(c, "k", 1, 500, KURA_TTL_INCREASE), KURA_SKIPPED);
  KCHECK_EQ(kr_store_ttl_set(c, "k", 1, 900, KURA_TTL_DECREASE), KURA_SKIPPED);
  KCHECK_EQ(kr_store_ttl_set(c, "k", 1, 2000, KURA_TTL_INCREASE), KURA_HIT);
  KCHECK_EQ(kr_store_ttl_get(c, "k", 1, &rem), KURA_HIT);
  KCHECK_EQ(rem, 2000);
  KCHECK_EQ(kr_store_ttl_set(c, "k", 1, 100, KURA_TTL_DECREASE), KURA_HIT);
  KCHECK_EQ(kr_store_ttl_get(c, "k", 1, &rem), KURA_HIT);
  KCHECK_EQ(rem, 100);
  KCHECK_EQ(kr_store_ttl_set(c, "k", 1, 50000, KURA_TTL_UPDATE), KURA_HIT);
  KCHECK_EQ(kr_store_ttl_set(c, "k", 1, 10, KURA_TTL_UPDATE), KURA_HIT);
  clk.now += 10;
  KCHECK(absent(c, "k"));
  KCHECK_EQ(set_str(c, "n", "v", KR_TTL_NONE), KURA_HIT);
  KCHECK_EQ(kr_store_ttl_get(c, "n", 1, &rem), KURA_HIT);
  KCHECK(rem == UINT64_MAX);
  KCHECK_EQ(kr_store_ttl_set(c, "n", 1, 10, KURA_TTL_INCREASE), KURA_SKIPPED);
  KCHECK_EQ(kr_store_ttl_set(c, "n", 1, 10, KURA_TTL_DECREASE), KURA_HIT);
  KCHECK_EQ(kr_store_ttl_get(c, "n", 1, &rem), KURA_HIT);
  KCHECK_EQ(rem, 10);
  teardown(s, c);
}

KTEST(increment)
{
  fake_clock clk = {0};
  kr_store *s;
  kr_cache *c = setup(&s, &clk);
  KCHECK(c);
  int64_t v = 0;
  KCHECK_EQ(kr_store_increment(c, "n", 1, 5, 100, &v), KURA_HIT);
  KCHECK_EQ(v, 5);
  KCHECK(has(c, "n", "5"));
  uint64_t rem = 0;
  KCHECK_EQ(kr_store_ttl_get(c, "n", 1, &rem), KURA_HIT);
  KCHECK_EQ(rem, 100);
  KCHECK_EQ(kr_store_increment(c, "n", 1, 5, 99999, &v), KURA_HIT);
  KCHECK_EQ(v, 10);
  KCHECK(has(c, "n", "10"));
  KCHECK_EQ(kr_store_ttl_get(c, "n", 1, &rem), KURA_HIT);
  KCHECK_EQ(rem, 100); /* an existing item keeps its TTL */
  KCHECK_EQ(kr_store_increment(c, "n", 1, -25, 0, &v), KURA_HIT);
  KCHECK_EQ(v, -15);
  KCHECK(has(c, "n", "-15"));
  const char *bad[] = {"abc", "", "-", "007", "-0", "+5", " 5", "5 ", "1.5", "00",
                       "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    KCHECK_EQ(set_str(c, "b", bad[i], 0), KURA_HIT);
    KCHECK_EQ(kr_store_increment(c, "b", 1, 1, 0, &v), KURA_EPRECOND);
  }
  KCHECK_EQ(set_str(c, "z", "0", 0), KURA_HIT);
  KCHECK_EQ(kr_store_increment(c, "z", 1, 0, 0, &v), KURA_HIT);
  KCHECK_EQ(v, 0);
  teardown(s, c);
}

KTEST(increment_limits)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  int64_t v = 0;
  KCHECK_EQ(set_str(c, "max", "9223372036854775807", 0), KURA_HIT);
  KCHECK_EQ(kr_store_increment(c, "max", 3, 1, 0, &v), KURA_EPRECOND);
  KCHECK(has(c, "max", "9223372036854775807"));
  KCHECK_EQ(kr_store_increment(c, "max", 3, 0, 0, &v), KURA_HIT);
  KCHECK(v == INT64_MAX);
  KCHECK_EQ(set_str(c, "min", "-9223372036854775808", 0), KURA_HIT);
  KCHECK_EQ(kr_store_increment(c, "min", 3, 0, 0, &v), KURA_HIT);
  KCHECK(v == INT64_MIN);
  KCHECK_EQ(kr_store_increment(c, "min", 3, -1, 0, &v), KURA_EPRECOND);
  KCHECK_EQ(kr_store_increment(c, "min", 3, 1, 0, &v), KURA_HIT);
  KCHECK(v == INT64_MIN + 1);
  KCHECK(has(c, "min", "-9223372036854775807"));
  KCHECK_EQ(set_str(c, "over", "9223372036854775808", 0), KURA_HIT);
  KCHECK_EQ(kr_store_increment(c, "over", 4, 0, 0, &v), KURA_EPRECOND);
  KCHECK_EQ(set_str(c, "under", "-9223372036854775809", 0), KURA_HIT);
  KCHECK_EQ(kr_store_increment(c, "under", 5, 0, 0, &v), KURA_EPRECOND);
  KCHECK_EQ(kr_store_increment(c, "new", 3, INT64_MIN, 0, &v), KURA_HIT);
  KCHECK(has(c, "new", "-9223372036854775808"));
  teardown(s, c);
}

/* One conditional set on key k (absent, or holding "old") with cmp. */
static int cond_case(kr_cache *c, enum kura_set_cond cond, int present, const char *cmp)
{
  kr_store_delete(c, "k", 1);
  if (present)
    set_str(c, "k", "old", 0);
  return kr_store_set_if(c, cond, "k", 1, "new", 3, cmp, strlen(cmp), 0);
}

KTEST(conditional_sets)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  /* Each row: absent, present & equal, present & not equal. */
  static const struct {
    enum kura_set_cond cond;
    int absent, equal, differ;
  } rows[] = {
      {KURA_SET_ALWAYS, KURA_HIT, KURA_HIT, KURA_HIT},
      {KURA_SET_IF_ABSENT, KURA_HIT, KURA_SKIPPED, KURA_SKIPPED},
      {KURA_SET_IF_PRESENT, KURA_SKIPPED, KURA_HIT, KURA_HIT},
      {KURA_SET_IF_EQUAL, KURA_SKIPPED, KURA_HIT, KURA_SKIPPED},
      {KURA_SET_IF_NOT_EQUAL, KURA_HIT, KURA_SKIPPED, KURA_HIT},
      {KURA_SET_IF_PRESENT_AND_NOT_EQUAL, KURA_SKIPPED, KURA_SKIPPED, KURA_HIT},
      {KURA_SET_IF_ABSENT_OR_EQUAL, KURA_HIT, KURA_HIT, KURA_SKIPPED},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    KCHECK_EQ(cond_case(c, rows[i].cond, 0, "old"), rows[i].absent);
    KCHECK(rows[i].absent == KURA_HIT ? has(c, "k", "new") : absent(c, "k"));
    KCHECK_EQ(cond_case(c, rows[i].cond, 1, "old"), rows[i].equal);
    KCHECK(has(c, "k", rows[i].equal == KURA_HIT ? "new" : "old"));
    KCHECK_EQ(cond_case(c, rows[i].cond, 1, "other"), rows[i].differ);
    KCHECK(has(c, "k", rows[i].differ == KURA_HIT ? "new" : "old"));
  }
  teardown(s, c);
}

KTEST(caches)
{
  kr_store *s;
  KCHECK_EQ(kr_store_new(&s), 0);
  KCHECK_EQ(kr_store_create_cache(s, "beta", 4), 0);
  KCHECK_EQ(kr_store_create_cache(s, "alpha", 5), 0);
  KCHECK_EQ(kr_store_create_cache(s, "alp", 3), 0);
  KCHECK_EQ(kr_store_create_cache(s, "beta", 4), KURA_EEXIST);
  KCHECK_EQ(kr_store_create_cache(s, "", 0), KURA_EINVAL);
  KCHECK_EQ(kr_store_create_cache(s, "  ", 2), KURA_EINVAL);
  KCHECK_EQ(kr_store_create_cache(s, "a\0b", 3), KURA_EINVAL);
  KCHECK_EQ(kr_store_delete_cache(s, "gamma", 5), KURA_ENOTFOUND);
  KCHECK_EQ(kr_store_flush_cache(s, "gamma", 5), KURA_ENOTFOUND);
  char **names;
  size_t n;
  KCHECK_EQ(kr_store_list_caches(s, &names, &n), 0);
  KCHECK_EQ(n, 3);
  KCHECK(strcmp(names[0], "alp") == 0 && strcmp(names[1], "alpha") == 0 &&
         strcmp(names[2], "beta") == 0);
  kr_store_free_names(names, n);

  kr_cache *a, *b;
  KCHECK_EQ(kr_store_cache(s, "alpha", 5, &a), 0);
  KCHECK_EQ(kr_store_cache(s, "beta", 4, &b), 0);
  KCHECK_EQ(set_str(a, "k", "in-alpha", 0), KURA_HIT);
  KCHECK_EQ(set_str(b, "k", "in-beta", 0), KURA_HIT);
  KCHECK(has(a, "k", "in-alpha") && has(b, "k", "in-beta"));

  KCHECK_EQ(kr_store_flush_cache(s, "alpha", 5), 0);
  KCHECK(absent(a, "k"));
  KCHECK(has(b, "k", "in-beta"));
  kr_store_stats st;
  KCHECK_EQ(kr_store_cache_stats(s, "alpha", 5, &st), 0);
  KCHECK_EQ(st.items, 0);
  KCHECK_EQ(st.bytes, 0);
  KCHECK_EQ(set_str(a, "k2", "v", 0), KURA_HIT);
  KCHECK(has(a, "k2", "v"));

  KCHECK_EQ(kr_store_delete_cache(s, "alpha", 5), 0);
  KCHECK(!kr_cache_alive(a));
  KCHECK(kr_cache_alive(b));
  char buf[8];
  size_t vl;
  KCHECK_EQ(kr_store_get(a, "k2", 2, buf, sizeof buf, &vl), KURA_ENOTFOUND);
  KCHECK_EQ(set_str(a, "k", "v", 0), KURA_ENOTFOUND);
  KCHECK_EQ(kr_store_cache(s, "alpha", 5, &a), 0 - 0 + KURA_ENOTFOUND);
  KCHECK_EQ(kr_store_cache_stats(s, "alpha", 5, &st), KURA_ENOTFOUND);

  /* The same name again is a new, empty cache; the old handle stays dead. */
  KCHECK_EQ(kr_store_create_cache(s, "alpha", 5), 0);
  kr_cache *a2;
  KCHECK_EQ(kr_store_cache(s, "alpha", 5, &a2), 0);
  KCHECK(absent(a2, "k2"));
  KCHECK_EQ(kr_store_get(a, "k2", 2, buf, sizeof buf, &vl), KURA_ENOTFOUND);
  KCHECK_EQ(set_str(a2, "k2", "again", 0), KURA_HIT);
  KCHECK(has(a2, "k2", "again"));
  kr_cache_release(a);
  kr_cache_release(a2);
  kr_cache_release(b);
  kr_store_release(s);
}

KTEST(size_limits)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  size_t big = KR_STORE_MAX_ITEM + 1;
  char *buf = calloc(1, big);
  char *out = malloc(big);
  KCHECK(buf && out);
  KCHECK_EQ(kr_store_set(c, buf, KR_STORE_MAX_KEY, "v", 1, 0), KURA_HIT);
  size_t n = 0;
  KCHECK_EQ(kr_store_get(c, buf, KR_STORE_MAX_KEY, out, big, &n), KURA_HIT);
  KCHECK_EQ(kr_store_set(c, buf, KR_STORE_MAX_KEY + 1, "v", 1, 0), KURA_EINVAL);
  KCHECK_EQ(kr_store_get(c, buf, KR_STORE_MAX_KEY + 1, out, big, &n), KURA_EINVAL);
  buf[100] = 7;
  KCHECK_EQ(kr_store_set(c, "big", 3, buf, KR_STORE_MAX_ITEM - 3, 0), KURA_HIT);
  KCHECK_EQ(kr_store_get(c, "big", 3, out, big, &n), KURA_HIT);
  KCHECK_EQ(n, KR_STORE_MAX_ITEM - 3);
  KCHECK(memcmp(out, buf, n) == 0);
  KCHECK_EQ(kr_store_set(c, "big", 3, buf, KR_STORE_MAX_ITEM - 2, 0), KURA_EINVAL);
  KCHECK_EQ(kr_store_delete(c, "big", 3), KURA_HIT);
  kr_store_set_max_memory(s, 1 << 20);
  KCHECK_EQ(kr_store_set(c, "big", 3, buf, 2 << 20, 0), KURA_ELIMIT);
  KCHECK_EQ(kr_store_set(c, "mid", 3, buf, 512 << 10, 0), KURA_HIT);
  KCHECK_EQ(kr_store_get(c, "mid", 3, out, big, &n), KURA_HIT);
  free(buf);
  free(out);
  teardown(s, c);
}

static void key_of(char *k, unsigned i)
{
  snprintf(k, 32, "key:%012u", i);
}

KTEST(eviction_budget)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  const uint64_t max = 4u << 20;
  kr_store_set_max_memory(s, max);
  char k[32], v[100], buf[128];
  memset(v, 'x', sizeof v);
  size_t n;
  unsigned total = 200000;
  for (unsigned i = 0; i < total; i++) {
    key_of(k, i);
    KCHECK_EQ(kr_store_set(c, k, strlen(k), v, sizeof v, 0), KURA_HIT);
    if (i % 16 == 0) /* a hot key read often must survive */
      KCHECK_EQ(kr_store_get(c, "hot", 3, buf, sizeof buf, &n), i ? KURA_HIT : KURA_MISS);
    if (i == 0)
      KCHECK_EQ(set_str(c, "hot", "h", 0), KURA_HIT);
  }
  kr_store_stats st;
  kr_store_stats_get(s, &st);
  KCHECK(st.bytes <= max);
  KCHECK(st.evictions > 0);
  KCHECK(st.items + st.evictions == total + 1);
  KCHECK(st.items > 20000); /* the budget is used, not wasted */
  key_of(k, total - 1);
  KCHECK_EQ(kr_store_get(c, k, strlen(k), buf, sizeof buf, &n), KURA_HIT);
  key_of(k, 0);
  KCHECK_EQ(kr_store_get(c, k, strlen(k), buf, sizeof buf, &n), KURA_MISS);
  kr_store_stats cs;
  kr_store_cache_stats(s, "c", 1, &cs);
  KCHECK_EQ(cs.items, st.items);
  KCHECK_EQ(cs.evictions, st.evictions);
  teardown(s, c);
}

/* Items too large for a shared segment get their own; they are evicted
 * and freed like the others, and a lowered budget applies at next writes. */
KTEST(eviction_large_items)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  kr_store_set_max_memory(s, 4u << 20);
  size_t vlen = 100 * 1024;
  char *v = calloc(1, vlen), *out = malloc(vlen), k[32];
  KCHECK(v && out);
  size_t n;
  for (unsigned i = 0; i < 200; i++) {
    key_of(k, i);
    v[0] = (char)i;
    KCHECK_EQ(kr_store_set(c, k, strlen(k), v, vlen, 0), KURA_HIT);
    KCHECK_EQ(kr_store_get(c, k, strlen(k), out, vlen, &n), KURA_HIT);
    KCHECK(n == vlen && out[0] == (char)i);
  }
  kr_store_stats st;
  kr_store_stats_get(s, &st);
  KCHECK(st.bytes <= 4u << 20);
  KCHECK(st.evictions > 0);
  KCHECK(st.items >= 20);
  kr_store_set_max_memory(s, 2u << 20);
  for (unsigned i = 200; i < 230; i++) {
    key_of(k, i);
    KCHECK_EQ(kr_store_set(c, k, strlen(k), v, vlen, 0), KURA_HIT);
  }
  kr_store_stats_get(s, &st);
  KCHECK(st.bytes <= 2u << 20);
  KCHECK_EQ(kr_store_get(c, k, strlen(k), out, vlen, &n), KURA_HIT);
  free(v);
  free(out);
  teardown(s, c);
}

/* Deleting items gives their memory back (mostly dead segments are
 * compacted or freed). */
KTEST(delete_frees_memory)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  kr_store_stats empty, full, after;
  kr_store_stats_get(s, &empty);
  char k[32], v[200] = {0};
  for (unsigned i = 0; i < 20000; i++) {
    key_of(k, i);
    KCHECK_EQ(kr_store_set(c, k, strlen(k), v, sizeof v, 0), KURA_HIT);
  }
  kr_store_stats_get(s, &full);
  for (unsigned i = 0; i < 20000; i++) {
    key_of(k, i);
    KCHECK_EQ(kr_store_delete(c, k, strlen(k)), KURA_HIT);
  }
  kr_store_stats_get(s, &after);
  KCHECK_EQ(after.items, 0);
  /* What stays: the grown index and at most two open segments per shard. */
  KCHECK(after.bytes - empty.bytes < (full.bytes - empty.bytes) / 2);
  kr_store_stats cs;
  kr_store_cache_stats(s, "c", 1, &cs);
  KCHECK_EQ(cs.items, 0);
  KCHECK_EQ(cs.bytes, 0);
  teardown(s, c);
}

KTEST(overwrites_stay_bounded)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  char k[32], v[64];
  memset(v, 'v', sizeof v);
  for (unsigned i = 0; i < 2000; i++) {
    key_of(k, i);
    KCHECK_EQ(kr_store_set(c, k, strlen(k), v, sizeof v, 0), KURA_HIT);
  }
  kr_store_stats first, st;
  kr_store_stats_get(s, &first);
  /* Sizes alternate so every overwrite appends a new version (a same-size
   * one is written in place, see in_place_overwrite). */
  for (unsigned r = 0; r < 200; r++)
    for (unsigned i = 0; i < 2000; i++) {
      key_of(k, i);
      KCHECK_EQ(kr_store_set(c, k, strlen(k), v, sizeof v - (r & 1), 0), KURA_HIT);
    }
  kr_store_stats_get(s, &st);
  KCHECK_EQ(st.items, 2000);
  /* 400,000 overwrites of 2,000 keys: dead bytes are reclaimed by compaction. */
  KCHECK(st.bytes < first.bytes * 3);
  teardown(s, c);
}

KTEST(sweep_bounded)
{
  fake_clock clk = {0};
  kr_store *s;
  kr_cache *c = setup(&s, &clk);
  KCHECK(c);
  char k[32];
  for (unsigned i = 0; i < 10000; i++) {
    key_of(k, i);
    KCHECK_EQ(kr_store_set(c, k, strlen(k), "v", 1, i < 5000 ? 10 : 1000000), KURA_HIT);
  }
  KCHECK_EQ(kr_store_sweep(s, 1000), 0);
  clk.now = 10;
  size_t total = 0, calls = 0;
  kr_store_stats st;
  do {
    size_t got = kr_store_sweep(s, 640);
    KCHECK(got <= 640);
    total += got;
    KCHECK(++calls < 10000);
    kr_store_stats_get(s, &st);
  } while (st.items > 5000);
  KCHECK(calls > 5); /* bounded: not all in one call */
  KCHECK_EQ(total, 5000);
  KCHECK_EQ(st.items, 5000);
  KCHECK_EQ(st.expirations, 5000);
  key_of(k, 9999);
  KCHECK(has(c, k, "v"));
  teardown(s, c);
}

KTEST(flush_garbage_reclaimed)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  char k[32];
  for (unsigned i = 0; i < 5000; i++) {
    key_of(k, i);
    KCHECK_EQ(kr_store_set(c, k, strlen(k), "v", 1, 0), KURA_HIT);
  }
  KCHECK_EQ(kr_store_flush_cache(s, "c", 1), 0);
  kr_store_stats st;
  kr_store_stats_get(s, &st);
  KCHECK_EQ(st.items, 5000); /* garbage until reclaimed */
  for (int i = 0; i < 200; i++)
    kr_store_sweep(s, 1000);
  kr_store_stats_get(s, &st);
  KCHECK_EQ(st.items, 0);
  KCHECK_EQ(st.expirations, 0);
  teardown(s, c);
}

static void collect(void *ud, size_t i, const void *val, size_t vlen)
{
  char *got = ud;
  got[i] = val ? (vlen ? *(const char *)val : 'E') : '-';
}

KTEST(batches)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  enum { N = 40 };
  char kb[N][8], vb[N][2];
  const void *keys[N], *vals[N];
  size_t klens[N], vlens[N];
  uint64_t ttls[N];
  for (int i = 0; i < N; i++) {
    snprintf(kb[i], sizeof kb[i], "b%d", i);
    vb[i][0] = (char)('A' + i % 26);
    keys[i] = kb[i];
    klens[i] = strlen(kb[i]);
    vals[i] = vb[i];
    vlens[i] = (i == 7) ? 0 : 1;
    ttls[i] = 0;
  }
  KCHECK_EQ(kr_store_set_batch(c, N / 2, keys, klens, vals, vlens, ttls), 0);
  KCHECK_EQ(kr_store_set_batch(c, 1, keys + N - 1, klens + N - 1, vals, vlens, NULL), 0);
  char got[N + 1] = {0};
  KCHECK_EQ(kr_store_get_batch(c, N, keys, klens, collect, got), 0);
  for (int i = 0; i < N; i++) {
    char want = i < N / 2 ? (i == 7 ? 'E' : vb[i][0]) : (i == N - 1 ? 'A' : '-');
    KCHECK_EQ(got[i], want);
  }
  size_t bad = KR_STORE_MAX_KEY + 1;
  KCHECK_EQ(kr_store_get_batch(c, 1, keys, &bad, collect, got), KURA_EINVAL);
  KCHECK_EQ(kr_store_set_batch(c, 1, keys, &bad, vals, vlens, NULL), KURA_EINVAL);
  teardown(s, c);
}

/* Batches mixing what the fast path takes (keys of 8 to 16 bytes, values
 * under 128 bytes) with what it leaves to the general read (short and long
 * keys, values of 128 bytes and over, one over the batch's 512-byte stack
 * buffer), over three groups of 16: every value comes back whole, in
 * order, and hits and misses are counted exactly (a group's are added at
 * once). */
typedef struct mixed_batch {
  int bad, hits;
  size_t n;
} mixed_batch;

static size_t mixed_key(char *k, size_t i)
{
  if (i % 7 == 3)
    return (size_t)snprintf(k, 40, "m%zu", i); /* short */
  if (i % 7 == 5)
    return (size_t)snprintf(k, 40, "mixed-batch-long-key-%zu", i);
  return (size_t)snprintf(k, 40, "mixed-%04zu", i); /* 10 bytes */
}

static size_t mixed_vlen(size_t i)
{
  return i == 9 ? 1000 : i % 5 == 1 ? 130 + i : i % 40;
}

static void mixed_cb(void *ud, size_t i, const void *val, size_t vlen)
{
  mixed_batch *m = ud;
  m->bad += i != m->n++;
  if (i % 4 == 2) {
    m->bad += val != NULL; /* never stored */
    return;
  }
  m->hits++;
  m->bad += !val || vlen != mixed_vlen(i);
  for (size_t j = 0; val && j < vlen && j < mixed_vlen(i); j++)
    m->bad += ((const uint8_t *)val)[j] != (uint8_t)(i * 7 + j);
}

KTEST(batches_mixed)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  enum { N = 40 };
  static char kb[N][40];
  static uint8_t val[1000];
  const void *keys[N];
  size_t klens[N];
  for (size_t i = 0; i < N; i++) {
    klens[i] = mixed_key(kb[i], i);
    keys[i] = kb[i];
    for (size_t j = 0; j < sizeof val; j++)
      val[j] = (uint8_t)(i * 7 + j);
    if (i % 4 != 2)
      KCHECK_EQ(kr_store_set(c, kb[i], klens[i], val, mixed_vlen(i), 60000), KURA_HIT);
  }
  kr_store_stats st0, st1;
  kr_store_stats_get(s, &st0);
  mixed_batch m = {0, 0, 0};
  KCHECK_EQ(kr_store_get_batch(c, N, keys, klens, mixed_cb, &m), 0);
  KCHECK_EQ(m.bad, 0);
  KCHECK_EQ(m.n, N);
  KCHECK_EQ(m.hits, N - N / 4);
  kr_store_stats_get(s, &st1);
  KCHECK_EQ(st1.hits - st0.hits, (uint64_t)(N - N / 4));
  KCHECK_EQ(st1.misses - st0.misses, (uint64_t)(N / 4));
  teardown(s, c);
}

static void *open_default(void *arg)
{
  kr_store *s = NULL;
  if (kr_store_open("test-registry", &s) != 0)
    return NULL;
  *(kr_store **)arg = s;
  return s;
}

KTEST(registry)
{
  pthread_t t[4];
  kr_store *got[4] = {0};
  for (int i = 0; i < 4; i++)
    KCHECK_EQ(pthread_create(&t[i], NULL, open_default, &got[i]), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  kr_store *mine, *other;
  KCHECK_EQ(kr_store_open("test-registry", &mine), 0);
  KCHECK_EQ(kr_store_open("test-registry-2", &other), 0);
  KCHECK(other != mine);
  for (int i = 0; i < 4; i++)
    KCHECK(got[i] == mine);
  KCHECK_EQ(kr_store_create_cache(mine, "shared", 6), 0);
  KCHECK_EQ(kr_store_create_cache(got[2], "shared", 6), KURA_EEXIST);
  for (int i = 0; i < 4; i++)
    kr_store_release(got[i]);
  kr_store_release(mine);
  kr_store_release(other);
  KCHECK_EQ(kr_store_open("test-registry", &mine), 0);
  char **names;
  size_t n;
  KCHECK_EQ(kr_store_list_caches(mine, &names, &n), 0);
  KCHECK_EQ(n, 0); /* the last release freed it; this is a new store */
  kr_store_free_names(names, n);
  kr_store_release(mine);
}

enum { HAMMER_N = 20000, HAMMER_COUNTERS = 8 };

typedef struct hammer {
  kr_store *s;
  unsigned id;
  int errors;
} hammer;

static void *hammer_run(void *arg)
{
  hammer *h = arg;
  kr_cache *c;
  if (kr_store_cache(h->s, "c", 1, &c) != 0) {
    h->errors++;
    return NULL;
  }
  char k[32], v[64], buf[64];
  size_t n;
  int64_t out;
  for (unsigned i = 0; i < HAMMER_N; i++) {
    unsigned key = (i * 7919u + h->id) % 512;
    key_of(k, key);
    snprintf(v, sizeof v, "value-%u-%u", h->id, i);
    size_t kl = strlen(k);
    switch (i % 5) {
    case 0:
      h->errors += kr_store_set(c, k, kl, v, strlen(v), 1000000) != KURA_HIT;
      break;
    case 1:
      h->errors += kr_store_get(c, k, kl, buf, sizeof buf, &n) < 0;
      break;
    case 2:
      h->errors += kr_store_delete(c, k, kl) < 0;
      break;
    default:
      h->errors += kr_store_set_if(c, KURA_SET_IF_ABSENT, k, kl, v, strlen(v), NULL, 0, 0) < 0;
      break;
    }
    snprintf(k, sizeof k, "counter-%u", i % HAMMER_COUNTERS);
    h->errors += kr_store_increment(c, k, strlen(k), 1, 0, &out) != KURA_HIT;
    if (i % 1000 == 0)
      kr_store_sweep(h->s, 100);
  }
  kr_cache_release(c);
  return NULL;
}

KTEST(threads_hammer)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  kr_store_set_max_memory(s, 8u << 20);
  pthread_t t[4];
  hammer h[4];
  for (unsigned i = 0; i < 4; i++) {
    h[i] = (hammer){s, i, 0};
    KCHECK_EQ(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  int64_t sum = 0, v;
  for (unsigned i = 0; i < HAMMER_COUNTERS; i++) {
    char k[32];
    snprintf(k, sizeof k, "counter-%u", i);
    KCHECK_EQ(kr_store_increment(c, k, strlen(k), 0, 0, &v), KURA_HIT);
    sum += v;
  }
  for (int i = 0; i < 4; i++)
    KCHECK_EQ(h[i].errors, 0);
  KCHECK_EQ(sum, 4 * HAMMER_N);
  teardown(s, c);
}

static void *evict_run(void *arg)
{
  hammer *h = arg;
  kr_cache *c;
  if (kr_store_cache(h->s, "c", 1, &c) != 0) {
    h->errors++;
    return NULL;
  }
  char k[32], v[100], buf[128];
  memset(v, 'e', sizeof v);
  size_t n;
  for (unsigned i = 0; i < HAMMER_N; i++) {
    snprintf(k, sizeof k, "t%u-%u", h->id, i);
    h->errors += kr_store_set(c, k, strlen(k), v, sizeof v, 0) != KURA_HIT;
    /* Another thread may already have evicted it: only errors count. */
    h->errors += kr_store_get(c, k, strlen(k), buf, sizeof buf, &n) < 0;
  }
  kr_cache_release(c);
  return NULL;
}

/* Four threads writing distinct keys into a small budget: eviction takes
 * segments from other shards (try-locks) while they are in use. */
KTEST(threads_evict)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  kr_store_set_max_memory(s, 2u << 20);
  pthread_t t[4];
  hammer h[4];
  for (unsigned i = 0; i < 4; i++) {
    h[i] = (hammer){s, i, 0};
    KCHECK_EQ(pthread_create(&t[i], NULL, evict_run, &h[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < 4; i++)
    KCHECK_EQ(h[i].errors, 0);
  kr_store_stats st;
  kr_store_stats_get(s, &st);
  KCHECK(st.bytes <= 2u << 20);
  KCHECK_EQ(st.items + st.evictions, 4 * HAMMER_N);
  KCHECK(st.evictions > 0);
  teardown(s, c);
}

/* Keys of every length 1..40 (and 300) that differ only in one byte: the
 * word-wise key compare must tell each apart, at the head, middle and tail.
 * Values of 200 and 20000 bytes take multi-byte length fields. */
KTEST(key_lengths)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  static char k[300], buf[20000], val[20000];
  memset(k, 'a', sizeof k);
  for (size_t i = 0; i < sizeof val; i++)
    val[i] = (char)(i * 7);
  size_t n = 0;
  for (size_t len = 1; len <= 41; len++) {
    size_t klen = len == 41 ? sizeof k : len, vlen = len % 2 ? 200 : sizeof val;
    KCHECK_EQ(kr_store_set(c, k, klen, val, vlen, 0), KURA_HIT);
    for (size_t at = 0; at < klen; at++) {
      k[at] = 'b'; /* same length, one byte different: never the stored key */
      KCHECK_EQ(kr_store_get(c, k, klen, buf, sizeof buf, &n), KURA_MISS);
      k[at] = 'a';
    }
    KCHECK_EQ(kr_store_get(c, k, klen, buf, sizeof buf, &n), KURA_HIT);
    KCHECK_EQ(n, vlen);
    KCHECK(memcmp(buf, val, vlen) == 0);
    KCHECK_EQ(kr_store_delete(c, k, klen), KURA_HIT);
  }
  teardown(s, c);
}

/* Same-size overwrites: written in place, with the new TTL, conditions
 * honoured, and no growth of the store's bytes. */
KTEST(in_place_overwrite)
{
  kr_store *s;
  fake_clock clk = {1000};
  kr_cache *c = setup(&s, &clk);
  KCHECK(c);
  KCHECK_EQ(set_str(c, "k", "aaaa", 1000), KURA_HIT);
  kr_store_stats before, after;
  kr_store_stats_get(s, &before);
  for (int i = 0; i < 10000; i++)
    KCHECK_EQ(set_str(c, "k", i & 1 ? "bbbb" : "cccc", 5000), KURA_HIT);
  kr_store_stats_get(s, &after);
  KCHECK_EQ(after.items, before.items);
  KCHECK_EQ(after.bytes, before.bytes);
  KCHECK(has(c, "k", "bbbb"));
  clk.now += 2000; /* past the first TTL, within the second */
  KCHECK(has(c, "k", "bbbb"));
  uint64_t left = 0;
  KCHECK_EQ(kr_store_ttl_get(c, "k", 1, &left), KURA_HIT);
  KCHECK_EQ(left, 3000);
  KCHECK_EQ(kr_store_set_if(c, KURA_SET_IF_EQUAL, "k", 1, "dddd", 4, "xxxx", 4, 5000), KURA_SKIPPED);
  KCHECK(has(c, "k", "bbbb"));
  KCHECK_EQ(kr_store_set_if(c, KURA_SET_IF_EQUAL, "k", 1, "dddd", 4, "bbbb", 4, 5000), KURA_HIT);
  KCHECK(has(c, "k", "dddd"));
  KCHECK_EQ(kr_store_set_if(c, KURA_SET_IF_ABSENT, "k", 1, "eeee", 4, NULL, 0, 5000), KURA_SKIPPED);
  KCHECK(has(c, "k", "dddd"));
  KCHECK_EQ(set_str(c, "k", "", 5000), KURA_HIT); /* a size change still works */
  KCHECK(has(c, "k", ""));
  clk.now += 6000;
  KCHECK(absent(c, "k"));
  teardown(s, c);
}

/* Gets copy in 16-byte blocks: every size from 0 to 300 bytes (and two
 * larger) comes back whole with buffers of exactly the value's size, of its
 * size rounded to 16, of 15 and 16 bytes where it fits them, and larger;
 * nothing is written past the buffer's capacity. Keys of 6 to 8 bytes and of
 * 16 (the get's fast path: 8 to 16) both. Under a small budget segments are
 * small, and items over about 120 bytes get a segment of their own that
 * ends with the value, so the sanitizers see a block read past it (this
 * test fails there without KR_SEG_PAD). */
static void copy_sizes_check(int *ktest_failed_, kr_cache *c, const char *fmt,
                             const uint8_t *val, uint8_t *buf, size_t bufsize)
{
  const size_t sizes_extra[] = {1000, 4999};
  char key[32];
  for (size_t i = 0; i < 303; i++) {
    size_t vlen = i < 301 ? i : sizes_extra[i - 301];
    int klen = snprintf(key, sizeof key, fmt, vlen);
    KCHECK_EQ(kr_store_set(c, key, (size_t)klen, val + i % 16, vlen, 0), KURA_HIT);
  }
  for (size_t i = 0; i < 303; i++) {
    size_t vlen = i < 301 ? i : sizes_extra[i - 301];
    int klen = snprintf(key, sizeof key, fmt, vlen);
    const size_t caps[] = {vlen, (vlen + 15) & ~(size_t)15, 15, 16, bufsize - 64};
    for (int k = 0; k < 5; k++) {
      if (caps[k] < vlen)
        continue;
      memset(buf, 0xAA, bufsize);
      size_t n = 0;
      KCHECK_EQ(kr_store_get(c, key, (size_t)klen, buf, caps[k], &n), KURA_HIT);
      KCHECK_EQ(n, vlen);
      KCHECK(memcmp(buf, val + i % 16, vlen) == 0);
      for (size_t j = caps[k]; j < caps[k] + 64 && j < bufsize; j++)
        KCHECK_EQ(buf[j], 0xAA);
    }
  }
}

KTEST(value_copy_sizes)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  kr_store_set_max_memory(s, 1u << 20);
  static uint8_t val[5000 + 16], buf[5000 + 64];
  for (size_t i = 0; i < sizeof val; i++)
    val[i] = (uint8_t)(i * 31 + 7);
  copy_sizes_check(ktest_failed_, c, "copy-%zu", val, buf, sizeof buf);
  copy_sizes_check(ktest_failed_, c, "copy-value-%05zu", val, buf, sizeof buf);
  teardown(s, c);
}

/* Same-size overwrites of items whose key and value lengths take two-byte
 * varints: the in-place write lands on the value and the expiry. */
KTEST(in_place_overwrite_long)
{
  kr_store *s;
  fake_clock clk = {1000};
  kr_cache *c = setup(&s, &clk);
  KCHECK(c);
  static char key[200], a[300], b[300], buf[400];
  memset(key, 'k', sizeof key);
  memset(a, 'a', sizeof a);
  memset(b, 'b', sizeof b);
  KCHECK_EQ(kr_store_set(c, key, sizeof key, a, sizeof a, 1000), KURA_HIT);
  KCHECK_EQ(kr_store_set(c, key, sizeof key, b, sizeof b, 5000), KURA_HIT);
  size_t n = 0;
  KCHECK_EQ(kr_store_get(c, key, sizeof key, buf, sizeof buf, &n), KURA_HIT);
  KCHECK_EQ(n, sizeof b);
  KCHECK(memcmp(buf, b, sizeof b) == 0);
  clk.now += 2000; /* past the first TTL, within the second */
  uint64_t left = 0;
  KCHECK_EQ(kr_store_ttl_get(c, key, sizeof key, &left), KURA_HIT);
  KCHECK_EQ(left, 3000);
  KCHECK_EQ(kr_store_get(c, key, sizeof key, buf, sizeof buf, &n), KURA_HIT);
  KCHECK(memcmp(buf, b, sizeof b) == 0);
  clk.now += 4000;
  KCHECK_EQ(kr_store_get(c, key, sizeof key, buf, sizeof buf, &n), KURA_MISS);
  teardown(s, c);
}

/* --- lock-free reads under concurrent writes ----------------------------------
 * Every value written here describes itself: the key's number, its own
 * length, a version, and bytes that follow from those three. A reader that
 * got a torn value (half of one write, half of another), a value of another
 * key, or bytes of a freed and reused segment would see it. */

enum { STRESS_KEYS = 1500 };

static uint8_t stress_byte(uint32_t key, uint64_t ver, size_t i)
{
  return (uint8_t)((key * 131u) ^ (uint32_t)(ver * 7u) ^ (uint32_t)(i * 29u));
}

/* A value of key `key`, version ver, len >= 16 bytes. */
static void stress_val(uint8_t *v, uint32_t key, uint64_t ver, size_t len)
{
  uint32_t l = (uint32_t)len;
  memcpy(v, &key, 4);
  memcpy(v + 4, &l, 4);
  memcpy(v + 8, &ver, 8);
  for (size_t i = 16; i < len; i++)
    v[i] = stress_byte(key, ver, i);
}

/* 1 when v (n bytes) is a whole value of key `key`. */
static int stress_ok(const uint8_t *v, size_t n, uint32_t key)
{
  uint32_t k, l;
  uint64_t ver;
  if (n < 16)
    return 0;
  memcpy(&k, v, 4);
  memcpy(&l, v + 4, 4);
  memcpy(&ver, v + 8, 8);
  if (k != key || l != n)
    return 0;
  for (size_t i = 16; i < n; i++)
    if (v[i] != stress_byte(key, ver, i))
      return 0;
  return 1;
}

static void stress_key(char *k, uint32_t i)
{
  snprintf(k, 32, "stress-%u", i);
}

typedef struct stress {
  kr_store *s;
  kr_cache *c;
  unsigned id;
  _Atomic int *stop;
  uint32_t nkeys;       /* readers: keys 0..nkeys-1 */
  int must_hit;         /* readers: every key is there (no budget, no deletes) */
  uint64_t reads, hits, bad;
  int errors;
} stress;

/* Sizes around the fast paths' edges: 16-byte blocks, the 256-byte copy
 * limit, a two-byte vlen varint, and (under a small budget) dedicated
 * segments. */
static size_t stress_len(uint64_t x)
{
  static const size_t lens[] = {16, 17, 31, 32, 33, 48, 100, 255, 256, 257, 300, 1000, 3000};
  return lens[x % (sizeof lens / sizeof lens[0])];
}

static void *stress_writer(void *arg)
{
  stress *w = arg;
  static uint8_t vbuf[4][4096];
  uint8_t *v = vbuf[w->id % 4];
  char k[32];
  uint64_t x = 88172645463325252ull + w->id;
  for (uint64_t n = 0; !atomic_load(w->stop); n++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint32_t key = (uint32_t)(x % w->nkeys);
    stress_key(k, key);
    /* mostly the key's own size (rewritten in place), now and then another;
     * with few keys, large values, whose rewrite takes longest */
    size_t len = stress_len((x >> 20) % 8 ? key + (w->nkeys < 8 ? 10 : 0) : x >> 24);
    stress_val(v, key, n << 8 | w->id, len);
    unsigned op = (unsigned)(x >> 40) % 16;
    int r;
    if (op < 9)
      r = kr_store_set(w->c, k, strlen(k), v, len, 0);
    else if (op < 12)
      r = kr_store_set(w->c, k, strlen(k), v, len, 1 + (x >> 50) % 3); /* expires at once */
    else if (op < 14)
      r = kr_store_delete(w->c, k, strlen(k));
    else if (op < 15)
      r = kr_store_set_if(w->c, KURA_SET_IF_PRESENT, k, strlen(k), v, len, NULL, 0, 0);
    else
      r = (int)kr_store_sweep(w->s, 200);
    w->errors += r < 0;
    if (n % 20000 == 19999 && w->id == 0)
      w->errors += kr_store_flush_cache(w->s, "c", 1) != 0;
  }
  return NULL;
}

typedef struct stress_batch {
  stress *r;
  const uint32_t *keys;
} stress_batch;

static void stress_cb(void *ud, size_t i, const void *val, size_t vlen)
{
  stress_batch *b = ud;
  b->r->reads++;
  if (!val)
    return;
  b->r->hits++;
  b->r->bad += !stress_ok(val, vlen, b->keys[i]);
}

static void stress_read_batch(stress *r, uint64_t *x)
{
  char kb[16][32];
  const void *kp[16];
  size_t kl[16];
  uint32_t keys[16];
  for (int j = 0; j < 16; j++) {
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    keys[j] = (uint32_t)(*x % r->nkeys);
    stress_key(kb[j], keys[j]);
    kp[j] = kb[j];
    kl[j] = strlen(kb[j]);
  }
  stress_batch b = {r, keys};
  uint64_t hits = r->hits;
  r->errors += kr_store_get_batch(r->c, 16, kp, kl, stress_cb, &b) != 0;
  if (r->must_hit && r->hits - hits != 16)
    r->bad++;
}

static void *stress_reader(void *arg)
{
  stress *r = arg;
  uint8_t buf[4096 + 16];
  char k[32];
  uint64_t x = 0x9e3779b97f4a7c15ull * (r->id + 1);
  while (!atomic_load(r->stop)) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint32_t key = (uint32_t)(x % r->nkeys);
    stress_key(k, key);
    size_t n = 0, cap = x >> 60 ? sizeof buf - 16 : 100; /* sometimes too small */
    int g = kr_store_get(r->c, k, strlen(k), buf, cap, &n);
    r->reads++;
    if (g == KURA_HIT) {
      r->hits++;
      r->bad += !stress_ok(buf, n, key);
    } else if (g == KURA_ERANGE) {
      r->bad += n <= cap;
    } else {
      r->errors += g != KURA_MISS;
      r->bad += r->must_hit;
    }
    int e = kr_store_exists(r->c, k, strlen(k));
    r->bad += r->must_hit && e != KURA_HIT;
    if ((x & 7) == 0)
      stress_read_batch(r, &x);
  }
  return NULL;
}

/* Runs nw writers (fn) and nr readers for about `ms` milliseconds. */
static int stress_run(stress *t, int nw, int nr, void *(*wfn)(void *), unsigned ms)
{
  pthread_t th[8];
  for (int i = 0; i < nw + nr; i++)
    if (pthread_create(&th[i], NULL, i < nw ? wfn : stress_reader, &t[i]) != 0)
      return -1;
  struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&d, NULL);
  atomic_store(t[0].stop, 1);
  for (int i = 0; i < nw + nr; i++)
    pthread_join(th[i], NULL);
  return 0;
}

/* Readers take no lock while writers overwrite (in place and not), delete,
 * expire, sweep, flush and evict under a small budget, so segments are
 * freed and reused under the readers: every value read must be a whole
 * value of its key. Fails (a torn value) when a get keeps what it read
 * without checking the shard's counter after. */
KTEST(optimistic_reads)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  for (int round = 0; round < 2; round++) {
    /* Two hot keys with large values (in normal segments: a budget of 64 MiB
     * allows items up to 8 KiB there), then many keys under a 1 MiB budget
     * (items over ~120 bytes get dedicated segments, read under the lock). */
    kr_store_set_max_memory(s, round ? 1u << 20 : 64u << 20);
    _Atomic int stop = 0;
    stress t[4];
    for (unsigned i = 0; i < 4; i++)
      t[i] = (stress){.s = s, .c = c, .id = i, .stop = &stop, .nkeys = round ? STRESS_KEYS : 2};
    KCHECK_EQ(stress_run(t, 1, 3, stress_writer, 1500), 0);
    uint64_t reads = 0, hits = 0;
    for (int i = 0; i < 4; i++) {
      KCHECK_EQ(t[i].errors, 0);
      KCHECK_EQ(t[i].bad, 0);
      reads += t[i].reads;
      hits += t[i].hits;
    }
    KCHECK(reads > 1000);
    KCHECK(hits > 0 && hits < reads); /* both outcomes happened */
  }
  teardown(s, c);
}

static void *grow_writer(void *arg)
{
  stress *w = arg;
  uint8_t v[64];
  char k[32];
  for (uint32_t i = 0; !atomic_load(w->stop); i++) {
    snprintf(k, sizeof k, "grow-%u-%u", w->id, i);
    stress_val(v, i, 1, sizeof v);
    w->errors += kr_store_set(w->c, k, strlen(k), v, sizeof v, 0) != KURA_HIT;
  }
  return NULL;
}

/* Keys that are always there must always be found while writers make every
 * shard's index grow (tables replaced under the readers) and open segments. */
KTEST(optimistic_reads_resize)
{
  kr_store *s;
  kr_cache *c = setup(&s, NULL);
  KCHECK(c);
  uint8_t v[300];
  char k[32];
  for (uint32_t i = 0; i < STRESS_KEYS; i++) {
    stress_key(k, i);
    stress_val(v, i, 0, 16 + i % 280);
    KCHECK_EQ(kr_store_set(c, k, strlen(k), v, 16 + i % 280, 0), KURA_HIT);
  }
  _Atomic int stop = 0;
  stress t[4];
  for (unsigned i = 0; i < 4; i++)
    t[i] = (stress){.s = s, .c = c, .id = i, .stop = &stop, .nkeys = STRESS_KEYS, .must_hit = 1};
  KCHECK_EQ(stress_run(t, 2, 2, grow_writer, 1500), 0);
  for (int i = 0; i < 4; i++) {
    KCHECK_EQ(t[i].errors, 0);
    KCHECK_EQ(t[i].bad, 0);
  }
  KCHECK(t[2].reads > 1000);
  teardown(s, c);
}

/* Bytes of v as a varint. */
static unsigned varint_bytes(uint64_t v)
{
  unsigned n = 1;
  for (; v >= 0x80; v >>= 7)
    n++;
  return n;
}

/* Cache ids (kr_cid): every slot and generation comes back out of its id;
 * distinct caches have distinct ids; the first 8 slots with generations
 * under 8 make one-byte ids, under 1024 two; no id takes more than one
 * byte over gen << 12 | slot (the layout before). */
KTEST(cache_ids_round_trip_and_stay_short)
{
  size_t pairs = 0;
  for (uint32_t slot = 0; slot < KR_MAX_CACHES; slot += slot < 64 ? 1 : 37) {
    for (uint64_t g = 1; g <= UINT32_MAX; g = g < 1100 ? g + 1 : g * 3 + 1) {
      uint32_t gen = (uint32_t)g;
      uint64_t cid = kr_cid(gen, slot);
      KCHECK_EQ(kr_cid_slot(cid), slot);
      KCHECK_EQ(kr_cid_gen(cid), gen);
      unsigned was = varint_bytes((uint64_t)gen << 12 | slot);
      KCHECK(varint_bytes(cid) <= was + 1);
      if (slot < 8)
        KCHECK(varint_bytes(cid) <= was);
      if (slot < 8 && gen < 1024)
        KCHECK(varint_bytes(cid) <= 2);
      pairs++;
    }
    KCHECK_EQ(kr_cid_gen(kr_cid(UINT32_MAX, slot)), UINT32_MAX);
    KCHECK_EQ(kr_cid_slot(kr_cid(UINT32_MAX, slot)), slot);
  }
  KCHECK(pairs > 100000);
  for (uint32_t gen = 0; gen < 8; gen++)
    for (uint32_t slot = 0; slot < 8; slot++)
      KCHECK(kr_cid(gen, slot) < 0x80);
  /* one id, one cache: across slots of a generation and generations of a slot */
  for (uint32_t a = 0; a < 4096; a += 7)
    for (uint32_t b = a + 1; b < 4096; b += 331)
      KCHECK(kr_cid(5, a) != kr_cid(5, b) && kr_cid(a + 1, 5) != kr_cid(b + 1, 5) &&
             kr_cid(a, 3) != kr_cid(b, 300));
}

KTEST_MAIN(KENTRY(cache_ids_round_trip_and_stay_short),
           KENTRY(set_get_delete), KENTRY(binary_keys_values), KENTRY(key_lengths),
           KENTRY(value_copy_sizes), KENTRY(in_place_overwrite_long), KENTRY(get_erange_retry),
           KENTRY(expiry_lazy), KENTRY(default_clock), KENTRY(ttl_calls), KENTRY(increment),
           KENTRY(increment_limits), KENTRY(conditional_sets), KENTRY(caches),
           KENTRY(size_limits), KENTRY(eviction_budget), KENTRY(eviction_large_items),
           KENTRY(delete_frees_memory), KENTRY(overwrites_stay_bounded), KENTRY(in_place_overwrite),
           KENTRY(sweep_bounded), KENTRY(flush_garbage_reclaimed), KENTRY(batches), KENTRY(batches_mixed),
           KENTRY(registry), KENTRY(threads_hammer), KENTRY(threads_evict),
           KENTRY(optimistic_reads), KENTRY(optimistic_reads_resize))
