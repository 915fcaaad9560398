/* Hit ratio of the embedded store's eviction beside an exact LRU.
 *
 * A Zipf(alpha) trace (alpha 1.0 by default) of 10M requests over 1M keys,
 * deterministic from a seed: ranks are drawn by binary search of a uniform
 * draw in the precomputed CDF, and a shuffled rank -> key map keeps popular
 * keys apart. Each request is a get; a miss is followed by a set (16-byte
 * key, 32-byte value). The store runs with max_memory = 10% of the bytes it
 * accounts for the whole working set (measured by loading every key into an
 * unbounded store first). The reference is an exact LRU simulated here, at
 * the same number of items the store keeps on average once it is full (the
 * fair comparison: equal items), and at 10% of the keys.
 *
 * Lines starting with "RESULT " are for scripts/bench/store.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "core/store/store.h"

#define TTL_MS (3600u * 1000u)
#define SAMPLE_EVERY 10000 /* requests between two looks at the item count */

typedef struct opts {
  uint32_t keys;
  uint64_t requests;
  double alpha;
  double budget_pct;
  uint64_t seed;
} opts;

/* --- the trace --------------------------------------------------------------- */

/* cdf[k] = P(rank <= k) for ranks 0..n-1 with P(k) ~ 1 / (k+1)^alpha. */
static double *zipf_cdf(uint32_t n, double alpha) {
  double *cdf = malloc((size_t)n * sizeof *cdf), sum = 0;
  if (!cdf) abort();
  for (uint32_t k = 0; k < n; k++) {
    sum += 1.0 / pow(k + 1.0, alpha);
    cdf[k] = sum;
  }
  for (uint32_t k = 0; k < n; k++) cdf[k] /= sum;
  cdf[n - 1] = 1.0;
  return cdf;
}

/* The smallest rank whose cdf exceeds u. */
static uint32_t zipf_draw(const double *cdf, uint32_t n, double u) {
  uint32_t lo = 0, hi = n - 1;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/* trace[i] is the key id of request i. */
static uint32_t *make_trace(const opts *o) {
  bu_rng r;
  bu_rng_seed(&r, o->seed);
  uint32_t *perm = malloc((size_t)o->keys * sizeof *perm);
  uint32_t *trace = malloc(o->requests * sizeof *trace);
  if (!perm || !trace) abort();
  for (uint32_t i = 0; i < o->keys; i++) perm[i] = i;
  for (uint32_t i = o->keys - 1; i > 0; i--) {
    uint32_t j = bu_rng_below(&r, i + 1), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  double *cdf = zipf_cdf(o->keys, o->alpha);
  for (uint64_t i = 0; i < o->requests; i++)
    trace[i] = perm[zipf_draw(cdf, o->keys, bu_rng_unit(&r))];
  free(cdf);
  free(perm);
  return trace;
}

/* --- the store ----------------------------------------------------------------- */

typedef struct store_run {
  uint64_t hits;
  double avg_items; /* mean resident items once the budget was reached */
  kr_store_stats end;
} store_run;

static int open_cache(kr_store **s, kr_cache **c) {
  if (kr_store_new(s) < 0 || kr_store_create_cache(*s, "bench", 5) < 0 ||
      kr_store_cache(*s, "bench", 5, c) < 0) {
    fprintf(stderr, "store_hitratio: cannot create the store\n");
    return -1;
  }
  return 0;
}

static void close_cache(kr_store *s, kr_cache *c) {
  kr_cache_release(c);
  kr_store_release(s);
}

static int set_item(kr_cache *c, uint32_t id) {
  char key[BU_KEY_LEN], val[BU_VAL_LEN];
  bu_key(key, id);
  bu_val(val, id);
  int rc = kr_store_set(c, key, sizeof key, val, sizeof val, TTL_MS);
  if (rc < 0) fprintf(stderr, "kr_store_set: %s\n", kura_strerror(rc));
  return rc;
}

/* The bytes the store accounts for every key at once, unbounded. */
static int working_set_bytes(const opts *o, uint64_t *bytes) {
  kr_store *s;
  kr_cache *c;
  if (open_cache(&s, &c) < 0) return -1;
  for (uint32_t id = 0; id < o->keys; id++)
    if (set_item(c, id) < 0) return -1;
  kr_store_stats st;
  kr_store_stats_get(s, &st);
  *bytes = st.bytes;
  close_cache(s, c);
  return 0;
}

static int run_kura(const opts *o, const uint32_t *trace, uint64_t budget, store_run *out) {
  kr_store *s;
  kr_cache *c;
  char key[BU_KEY_LEN], buf[64];
  size_t vlen;
  double sum = 0;
  uint64_t samples = 0;
  if (open_cache(&s, &c) < 0) return -1;
  kr_store_set_max_memory(s, budget);
  *out = (store_run){0};
  for (uint64_t i = 0; i < o->requests; i++) {
    bu_key(key, trace[i]);
    int rc = kr_store_get(c, key, sizeof key, buf, sizeof buf, &vlen);
    if (rc == KURA_HIT) out->hits++;
    else if (rc < 0 || set_item(c, trace[i]) < 0) return -1;
    if (i % SAMPLE_EVERY == SAMPLE_EVERY - 1) {
      kr_store_stats_get(s, &out->end);
      if (out->end.evictions > 0) {
        sum += (double)out->end.items;
        samples++;
      }
    }
  }
  kr_store_stats_get(s, &out->end);
  out->avg_items = samples ? sum / (double)samples : (double)out->end.items;
  close_cache(s, c);
  return 0;
}

/* --- the reference: an exact LRU ------------------------------------------ */

/* Key ids are 0..n-1, so the LRU's map from key to node is an array indexed
 * by id (a perfect hash); the recency list is doubly linked through prev and
 * next, with node n as the sentinel (next = most recent). */
typedef struct lru {
  uint32_t *prev, *next;
  unsigned char *in;
  uint32_t n, size, cap;
} lru;

static void lru_unlink(lru *l, uint32_t x) {
  l->next[l->prev[x]] = l->next[x];
  l->prev[l->next[x]] = l->prev[x];
}

static void lru_push_front(lru *l, uint32_t x) {
  uint32_t h = l->n;
  l->prev[x] = h;
  l->next[x] = l->next[h];
  l->prev[l->next[h]] = x;
  l->next[h] = x;
}

/* 1 hit; 0 miss (then the key is inserted, evicting the least recent). */
static int lru_access(lru *l, uint32_t x) {
  if (l->in[x]) {
    lru_unlink(l, x);
    lru_push_front(l, x);
    return 1;
  }
  if (l->size == l->cap) {
    uint32_t victim = l->prev[l->n];
    lru_unlink(l, victim);
    l->in[victim] = 0;
    l->size--;
  }
  lru_push_front(l, x);
  l->in[x] = 1;
  l->size++;
  return 0;
}

static uint64_t run_lru(const opts *o, const uint32_t *trace, uint32_t cap) {
  lru l = {.n = o->keys, .cap = cap ? cap : 1};
  l.prev = malloc(((size_t)o->keys + 1) * sizeof *l.prev);
  l.next = malloc(((size_t)o->keys + 1) * sizeof *l.next);
  l.in = calloc(o->keys, 1);
  if (!l.prev || !l.next || !l.in) abort();
  l.prev[l.n] = l.next[l.n] = l.n;
  uint64_t hits = 0;
  for (uint64_t i = 0; i < o->requests; i++) hits += (uint64_t)lru_access(&l, trace[i]);
  free(l.prev);
  free(l.next);
  free(l.in);
  return hits;
}

/* --- --check: the references themselves ----------------------------------- */

/* LRU by the definition: ids ordered by recency in an array, O(cap) a step. */
static uint64_t naive_lru(const uint32_t *trace, uint64_t n, uint32_t cap) {
  uint32_t *a = malloc((size_t)cap * sizeof *a), size = 0, j;
  uint64_t hits = 0;
  if (!a) abort();
  for (uint64_t i = 0; i < n; i++) {
    for (j = 0; j < size && a[j] != trace[i]; j++) {}
    if (j < size) hits++;
    else if (size < cap) j = size++;
    else j = size - 1;
    memmove(a + 1, a, (size_t)j * sizeof *a);
    a[0] = trace[i];
  }
  free(a);
  return hits;
}

/* The trace's five most requested keys must appear with Zipf's frequencies
 * 1/(k H_n) (within 5%), and the LRU must agree with the naive one. */
static int check_references(void) {
  opts o = {.keys = 100000, .requests = 2000000, .alpha = 1.0, .seed = 7};
  uint32_t *trace = make_trace(&o), *count = calloc(o.keys, sizeof *count), top[5] = {0};
  int bad = 0;
  if (!count) abort();
  for (uint64_t i = 0; i < o.requests; i++) count[trace[i]]++;
  for (uint32_t i = 0; i < o.keys; i++) {
    uint32_t c = count[i];
    for (int j = 0; j < 5; j++) {
      if (c > top[j]) {
        uint32_t t = top[j];
        top[j] = c;
        c = t;
      }
    }
  }
  double h = 0;
  for (uint32_t k = 1; k <= o.keys; k++) h += 1.0 / k;
  for (int j = 0; j < 5; j++) {
    double want = (double)o.requests / ((j + 1) * h);
    bad += fabs((double)top[j] - want) > 0.05 * want;
  }
  opts small = o;
  small.requests = 200000;
  uint32_t caps[] = {1, 10, 1000, 5000};
  for (size_t i = 0; i < sizeof caps / sizeof *caps; i++)
    bad += run_lru(&small, trace, caps[i]) != naive_lru(trace, small.requests, caps[i]);
  free(count);
  free(trace);
  printf("Zipf trace and LRU checks: %s\n", bad ? "FAILED" : "ok");
  return bad;
}

/* --- main -------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: store_hitratio [--keys K] [--requests R] [--alpha A] [--budget-pct P]\n"
          "                      [--seed S]\n"
          "       store_hitratio --check\n"
          "Zipf(A, default 1.0) trace of R (10000000) requests over K (1000000) keys;\n"
          "the store at P%% (10) of its accounted working set vs an exact LRU.\n"
          "--check tests the Zipf generator and the LRU, and exits.\n");
}

static int parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){.keys = 1000000, .requests = 10000000, .alpha = 1.0, .budget_pct = 10,
              .seed = 42};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
    if (!strcmp(a, "--check")) exit(check_references() ? 1 : 0);
    if (!v) { usage(stderr); return -1; }
    if (!strcmp(a, "--keys")) o->keys = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--requests")) o->requests = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--alpha")) o->alpha = strtod(v, NULL);
    else if (!strcmp(a, "--budget-pct")) o->budget_pct = strtod(v, NULL);
    else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
    else { usage(stderr); return -1; }
    i++;
  }
  return o->keys > 1 && o->requests && o->alpha > 0 && o->budget_pct > 0 ? 0 : -1;
}

static void report(const opts *o, const store_run *k, uint64_t lru_same, uint32_t same_cap,
                   uint64_t lru_pct, uint32_t pct_cap) {
  double n = (double)o->requests, hk = (double)k->hits / n;
  double hs = (double)lru_same / n, hp = (double)lru_pct / n;
  printf("  %-44s %6.2f%%  (avg %.0f items, %llu at end, %llu evictions)\n",
         "kura store", 100 * hk, k->avg_items, (unsigned long long)k->end.items,
         (unsigned long long)k->end.evictions);
  printf("  %-44s %6.2f%%  (%u items)\n", "exact LRU, same items as kura (fair)", 100 * hs,
         same_cap);
  printf("  %-44s %6.2f%%  (%u items)\n", "exact LRU, 10%-of-keys items", 100 * hp, pct_cap);
  printf("verdict: kura %s LRU at equal items by %+.2f points (fair comparison: LRU\n"
         "         holding as many items as kura keeps on average at its budget)\n",
         hk >= hs ? "beats" : "trails", 100 * (hk - hs));
  printf("RESULT hit_kura %.4f\nRESULT hit_lru_same %.4f\nRESULT hit_lru_pct %.4f\n", hk,
         hs, hp);
  printf("RESULT kura_avg_items %.0f\n", k->avg_items);
}

int main(int argc, char **argv) {
  opts o;
  if (parse_opts(argc, argv, &o) < 0) return 2;
  double t0 = bu_now();
  uint32_t *trace = make_trace(&o);
  double t1 = bu_now();
  uint64_t ws = 0;
  if (working_set_bytes(&o, &ws) < 0) return 1;
  uint64_t budget = (uint64_t)((double)ws * o.budget_pct / 100.0);
  printf("Zipf(%.2f) trace: %llu requests over %u keys (seed %llu, %.1f s to build)\n",
         o.alpha, (unsigned long long)o.requests, o.keys, (unsigned long long)o.seed,
         t1 - t0);
  printf("working set as the store accounts it: %llu B (%.1f B/item); budget %.0f%% = %llu B\n",
         (unsigned long long)ws, (double)ws / o.keys, o.budget_pct,
         (unsigned long long)budget);
  store_run k;
  if (run_kura(&o, trace, budget, &k) < 0) return 1;
  uint32_t same_cap = (uint32_t)(k.avg_items + 0.5);
  uint32_t pct_cap = (uint32_t)((double)o.keys * o.budget_pct / 100.0);
  uint64_t lru_same = run_lru(&o, trace, same_cap);
  uint64_t lru_pct = run_lru(&o, trace, pct_cap);
  printf("hit ratio over all %llu requests (get; set on miss):\n",
         (unsigned long long)o.requests);
  report(&o, &k, lru_same, same_cap, lru_pct, pct_cap);
  free(trace);
  return 0;
}
