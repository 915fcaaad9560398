/* Throughput of the embedded store beside a plain chained hash table.
 *
 * One thread, 1M keys of 16 bytes, 32-byte values, uniform random keys, 90%
 * gets and 10% sets, every set with a TTL (so TTL bookkeeping is paid), all
 * keys loaded before timing. The reference, in this file, is what a careful
 * programmer writes first: FNV-1a, a power-of-two bucket array that doubles
 * at load 1.0, one malloc per item holding key and value, overwrite in place
 * when the size matches. It checks the expiry time on get, like the store.
 * Both sides read the same precomputed trace of uniform random keys, in
 * order, and each run is repeated (best of --rounds) to damp the noise of a
 * shared machine. The trace is read sequentially so that, as for a real
 * caller who has just built or received its key, the key bytes are in the
 * cache: drawing them at random from the 16 MB key array instead adds a
 * DRAM and TLB miss per op to both sides that belongs to neither table
 * (--gather measures that way, for comparison). Then the store runs with
 * 2 threads on one cache (each its own key order, same mix) for the
 * scaling ratio.
 *
 * Last, gets alone against the memory system's limit: a bare open-addressing
 * table whose 64-byte slots hold key, value and expiry inline, so a get is
 * one cache line (one DRAM miss). Single gets go through a function call on
 * both sides; batches of 16 keys through the store's kr_store_get_batch and
 * the bare table's own batch, which prefetches the 16 slots first. Rounds
 * alternate the four runs; the figure is the median of the per-round ratios.
 *
 * Lines starting with "RESULT " are for scripts/bench/store.sh. */
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "core/store/store.h"

#define CHUNK 4096 /* ops between two looks at the clock */
#define BATCH 16
#define SET_PER_65536 6554 /* 10% sets */

typedef struct opts {
  uint32_t keys;
  uint64_t ops;   /* per run (per thread when threaded) */
  double secs;    /* time limit per run */
  int threads;
  int rounds;
  int get_rounds; /* alternated rounds of the gets-only comparison */
  int gather;     /* keys drawn at random from the key array, not a trace */
  int gets_only;  /* only the comparison with the inline table */
  uint64_t ttl_ms;
} opts;

typedef struct result {
  uint64_t ops;
  uint64_t gets;
  uint64_t hits;
  double secs;    /* wall time (the longest thread's) */
  double cpu;     /* CPU time of the running thread(s), summed */
} result;

static double rate(const result *r) { return (double)r->ops / r->secs / 1e6; }

/* The share of the wall time the thread(s) ran: below ~0.9 per thread the
 * machine was busy with something else and the rate understates. */
static double cpu_share(const result *r) { return r->cpu / r->secs; }

static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *key_at(const char *keys, uint32_t i) {
  return keys + (size_t)i * BU_KEY_LEN;
}

/* --- the reference: a plain chained hash table ----------------------------- */

typedef struct bnode {
  struct bnode *next;
  uint64_t hash;
  uint64_t expire_ms; /* 0 = never */
  uint32_t klen, vlen;
  char data[];        /* key then value */
} bnode;

typedef struct btable {
  bnode **b;
  size_t mask;
  size_t count;
} btable;

static uint64_t fnv1a(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
  return h;
}

static uint64_t coarse_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void bt_init(btable *t) {
  t->mask = 1023;
  t->count = 0;
  t->b = calloc(t->mask + 1, sizeof *t->b);
}

static void bt_free(btable *t) {
  for (size_t i = 0; i <= t->mask; i++) {
    for (bnode *n = t->b[i], *next; n; n = next) {
      next = n->next;
      free(n);
    }
  }
  free(t->b);
}

static void bt_grow(btable *t) {
  size_t nmask = t->mask * 2 + 1;
  bnode **nb = calloc(nmask + 1, sizeof *nb);
  for (size_t i = 0; i <= t->mask; i++) {
    for (bnode *n = t->b[i], *next; n; n = next) {
      next = n->next;
      n->next = nb[n->hash & nmask];
      nb[n->hash & nmask] = n;
    }
  }
  free(t->b);
  t->b = nb;
  t->mask = nmask;
}

/* The link that points at the node for key (or the bucket's final NULL). */
static bnode **bt_find(btable *t, const void *key, uint32_t klen, uint64_t h) {
  bnode **l = &t->b[h & t->mask];
  while (*l && !((*l)->hash == h && (*l)->klen == klen && !memcmp((*l)->data, key, klen)))
    l = &(*l)->next;
  return l;
}

static void bt_set(btable *t, const void *key, uint32_t klen, const void *val,
                   uint32_t vlen, uint64_t ttl_ms) {
  uint64_t h = fnv1a(key, klen);
  bnode **l = bt_find(t, key, klen, h), *n = *l;
  if (!n || n->vlen != vlen) {
    bnode *nn = realloc(n, sizeof *nn + klen + vlen);
    if (!nn) abort();
    if (!n) {
      nn->next = NULL;
      t->count++;
    }
    *l = n = nn;
    n->hash = h;
    n->klen = klen;
    n->vlen = vlen;
    memcpy(n->data, key, klen);
  }
  memcpy(n->data + klen, val, vlen);
  n->expire_ms = ttl_ms ? coarse_ms() + ttl_ms : 0;
  if (t->count > t->mask + 1) bt_grow(t);
}

/* 1 hit (value copied), 0 miss. */
static int bt_get(btable *t, const void *key, uint32_t klen, void *buf, size_t cap,
                  size_t *vlen) {
  bnode *n = *bt_find(t, key, klen, fnv1a(key, klen));
  if (!n || (n->expire_ms && n->expire_ms <= coarse_ms())) return 0;
  *vlen = n->vlen;
  memcpy(buf, n->data + klen, n->vlen < cap ? n->vlen : cap);
  return 1;
}

/* --check: the reference must be a correct table, or its rate means nothing:
 * values round-trip through growth, a size change replaces the item, absent
 * keys miss, and an expired item misses. Returns the number of failures. */
static int check_reference(void) {
  btable t;
  char k[BU_KEY_LEN], v[BU_VAL_LEN], buf[64];
  size_t vl;
  int bad = 0;
  bt_init(&t);
  for (uint32_t i = 0; i < 300000; i++) {
    bu_key(k, i);
    bu_val(v, i);
    bt_set(&t, k, BU_KEY_LEN, v, BU_VAL_LEN, i % 2 ? 3600000 : 0);
  }
  for (uint32_t i = 0; i < 300000; i += 7) {
    bu_key(k, i);
    bu_val(v, i);
    bad += !bt_get(&t, k, BU_KEY_LEN, buf, sizeof buf, &vl) || vl != BU_VAL_LEN ||
           memcmp(buf, v, BU_VAL_LEN) != 0;
  }
  bu_key(k, 5);
  bt_set(&t, k, BU_KEY_LEN, "short", 5, 0);
  bad += !bt_get(&t, k, BU_KEY_LEN, buf, sizeof buf, &vl) || vl != 5 || memcmp(buf, "short", 5);
  bu_key(k, 300000);
  bad += bt_get(&t, k, BU_KEY_LEN, buf, sizeof buf, &vl);
  bu_key(k, 6);
  bt_set(&t, k, BU_KEY_LEN, "x", 1, 1);
  usleep(20000); /* the coarse clock ticks every few ms */
  bad += bt_get(&t, k, BU_KEY_LEN, buf, sizeof buf, &vl);
  bad += t.count != 300000 || t.mask + 1 < t.count;
  bt_free(&t);
  printf("reference table check: %s\n", bad ? "FAILED" : "ok");
  return bad;
}

/* --- the limit: a bare table with one cache line per key ------------------- */

/* A slot is one aligned cache line: expiry, key and value inline. Only the
 * benchmark's shape (16-byte keys, 32-byte values) fits: it is the floor a
 * get cannot beat, not a store. meta: 0 empty, else 1 | expiry ms << 1. */
typedef struct islot {
  uint64_t meta;
  uint8_t key[BU_KEY_LEN];
  uint8_t val[BU_VAL_LEN];
  uint64_t pad;
} __attribute__((aligned(64))) islot;

typedef struct itable {
  islot *t;
  uint64_t mask;
  size_t bytes;
  uint64_t seed[2];
} itable;

/* The store's own hash shape for 16-byte keys (one 64x64->128 multiply of
 * the key's two words), so neither side gains on hashing. */
static inline uint64_t it_hash(const itable *t, const void *key) {
  uint64_t a, b;
  memcpy(&a, key, 8);
  memcpy(&b, (const char *)key + 8, 8);
  __uint128_t r = (__uint128_t)(a ^ t->seed[0]) * (b ^ t->seed[1]);
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Power-of-two slots at most 3/4 full, on huge pages where the kernel gives
 * them (as the store's segments are). */
static void it_init(itable *t, uint32_t n) {
  size_t cap = 1024;
  while (cap * 3 < (size_t)n * 4) cap *= 2;
  t->mask = cap - 1;
  t->bytes = cap * sizeof(islot);
  t->t = mmap(NULL, t->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (t->t == MAP_FAILED) abort();
#ifdef MADV_HUGEPAGE
  madvise(t->t, t->bytes, MADV_HUGEPAGE);
#endif
  t->seed[0] = 0x243f6a8885a308d3ull;
  t->seed[1] = 0x13198a2e03707344ull;
}

static void it_free(itable *t) { munmap(t->t, t->bytes); }

static inline int it_key_eq(const islot *s, const void *key) {
  uint64_t a, b, x, y;
  memcpy(&a, key, 8);
  memcpy(&b, (const char *)key + 8, 8);
  memcpy(&x, s->key, 8);
  memcpy(&y, s->key + 8, 8);
  return ((a ^ x) | (b ^ y)) == 0;
}

static void it_set(itable *t, const void *key, const void *val, uint64_t ttl_ms) {
  for (uint64_t i = it_hash(t, key) & t->mask;; i = (i + 1) & t->mask) {
    islot *s = &t->t[i];
    if (!s->meta || it_key_eq(s, key)) {
      s->meta = 1 | (ttl_ms ? coarse_ms() + ttl_ms : 0) << 1;
      memcpy(s->key, key, BU_KEY_LEN);
      memcpy(s->val, val, BU_VAL_LEN);
      return;
    }
  }
}

/* The slot holding key, unexpired at `now`, or NULL. */
static inline const islot *it_find(const itable *t, const void *key, uint64_t h, uint64_t now) {
  for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
    const islot *s = &t->t[i];
    if (!s->meta) return NULL;
    if (it_key_eq(s, key)) {
      uint64_t exp = s->meta >> 1;
      return exp && exp <= now ? NULL : s;
    }
  }
}

/* A call, as the store's get is; the value is copied out, as the store's is. */
__attribute__((noinline)) static int it_get(const itable *t, const void *key, void *buf) {
  const islot *s = it_find(t, key, it_hash(t, key), coarse_ms());
  if (!s) return 0;
  memcpy(buf, s->val, BU_VAL_LEN);
  return 1;
}

/* The store's batch contract: fn once per key, in order; the 16 slots are
 * prefetched before the first is read. */
__attribute__((noinline)) static void it_get_batch(const itable *t, size_t n,
                                                   const void *const *keys,
                                                   kr_store_batch_fn fn, void *ud) {
  uint64_t now = coarse_ms(), hs[16];
  for (size_t base = 0; base < n; base += 16) {
    size_t m = n - base < 16 ? n - base : 16;
    for (size_t j = 0; j < m; j++) {
      hs[j] = it_hash(t, keys[base + j]);
      __builtin_prefetch(&t->t[hs[j] & t->mask]);
    }
    for (size_t j = 0; j < m; j++) {
      const islot *s = it_find(t, keys[base + j], hs[j], now);
      fn(ud, base + j, s ? s->val : NULL, s ? BU_VAL_LEN : 0);
    }
  }
}

/* --check for the bare table: what it stores comes back, single and batched;
 * absent and expired keys miss. Returns the number of failures. */
typedef struct it_check_ud {
  const char *want[8];
  int bad;
} it_check_ud;

static void it_check_cb(void *ud, size_t i, const void *val, size_t vlen) {
  it_check_ud *c = ud;
  if (!c->want[i]) c->bad += val != NULL;
  else c->bad += !val || vlen != BU_VAL_LEN || memcmp(val, c->want[i], BU_VAL_LEN) != 0;
}

static int check_inline(void) {
  itable t;
  char k[8][BU_KEY_LEN], v[8][BU_VAL_LEN], buf[BU_VAL_LEN];
  int bad = 0;
  it_init(&t, 200000);
  for (uint32_t i = 0; i < 200000; i++) {
    bu_key(k[0], i);
    bu_val(v[0], i);
    it_set(&t, k[0], v[0], i % 2 ? 3600000 : 0);
  }
  for (uint32_t i = 0; i < 200000; i += 13) {
    bu_key(k[0], i);
    bu_val(v[0], i);
    bad += !it_get(&t, k[0], buf) || memcmp(buf, v[0], BU_VAL_LEN) != 0;
  }
  it_check_ud ud = {.bad = 0};
  const void *kp[8];
  for (int j = 0; j < 8; j++) {
    bu_key(k[j], (uint32_t)j * 1000 + (j == 5 ? 900000 : 0)); /* key 5 is absent */
    bu_val(v[j], (uint32_t)j * 1000);
    kp[j] = k[j];
    ud.want[j] = j == 5 ? NULL : v[j];
  }
  it_get_batch(&t, 8, kp, it_check_cb, &ud);
  bad += ud.bad;
  bu_key(k[0], 7);
  it_set(&t, k[0], v[1], 1);
  usleep(20000); /* the coarse clock ticks every few ms */
  bad += it_get(&t, k[0], buf);
  it_free(&t);
  printf("inline table check: %s\n", bad ? "FAILED" : "ok");
  return bad;
}

/* --- workloads --------------------------------------------------------------- */

/* What a timed loop runs against: the store or the reference. */
typedef struct target {
  kr_cache *cache; /* NULL: use a reference table */
  kr_store *store; /* the cache's */
  btable *table;
  itable *inl;     /* the bare inline table (gets only) */
  const char *keys;
  uint32_t nkeys;
  const opts *o;
} target;

static int do_get(const target *t, const char *key, char *buf, size_t cap) {
  size_t vlen;
  if (t->cache) return kr_store_get(t->cache, key, BU_KEY_LEN, buf, cap, &vlen) == KURA_HIT;
  if (t->inl) return it_get(t->inl, key, buf);
  return bt_get(t->table, key, BU_KEY_LEN, buf, cap, &vlen);
}

static void do_set(const target *t, const char *key, const char *val) {
  if (t->cache) {
    if (kr_store_set(t->cache, key, BU_KEY_LEN, val, BU_VAL_LEN, t->o->ttl_ms) < 0) abort();
  } else if (t->inl) {
    it_set(t->inl, key, val, t->o->ttl_ms);
  } else {
    bt_set(t->table, key, BU_KEY_LEN, val, BU_VAL_LEN, t->o->ttl_ms);
  }
}

static void populate(const target *t) {
  char val[BU_VAL_LEN];
  for (uint32_t i = 0; i < t->nkeys; i++) {
    bu_val(val, i);
    do_set(t, key_at(t->keys, i), val);
  }
}

/* The keys of a run, drawn before the clock starts: TRACE uniform random
 * keys copied in op order (replayed if the run is longer), or with --gather
 * only a pointer into the key array per op. */
#define TRACE (1u << 20)

typedef struct trace {
  char *keys;          /* TRACE keys in op order; NULL with --gather */
  const target *t;
  bu_rng r;            /* --gather: draws the key of each op */
  uint32_t next;
} trace;

static void trace_init(trace *tr, const target *t, uint64_t seed) {
  tr->t = t;
  tr->next = 0;
  tr->keys = NULL;
  bu_rng_seed(&tr->r, seed ^ 0x7472616365ull);
  if (t->o->gather) return;
  tr->keys = malloc((size_t)TRACE * BU_KEY_LEN);
  if (!tr->keys) abort();
  for (uint32_t i = 0; i < TRACE; i++)
    memcpy(tr->keys + (size_t)i * BU_KEY_LEN, key_at(t->keys, bu_rng_below(&tr->r, t->nkeys)),
           BU_KEY_LEN);
}

static inline const char *trace_key(trace *tr) {
  if (!tr->keys) return key_at(tr->t->keys, bu_rng_below(&tr->r, tr->t->nkeys));
  return tr->keys + (size_t)(tr->next++ & (TRACE - 1)) * BU_KEY_LEN;
}

/* The 90/10 mix: the trace gives the key, one draw the op (low bits). */
static void run_mix(const target *t, uint64_t seed, int gets_only, result *out) {
  char buf[64], val[BU_VAL_LEN];
  bu_rng r;
  trace tr;
  trace_init(&tr, t, seed);
  bu_rng_seed(&r, seed);
  bu_val(val, seed);
  uint64_t ops = 0, gets = 0, hits = 0;
  double t0 = bu_now(), now = t0, c0 = thread_cpu();
  while (ops < t->o->ops && now - t0 < t->o->secs) {
    for (int i = 0; i < CHUNK; i++) {
      uint64_t x = bu_rng_next(&r);
      const char *key = trace_key(&tr);
      if (!gets_only && ((x >> 8) & 0xffff) < SET_PER_65536) {
        memcpy(val, &x, sizeof x);
        do_set(t, key, val);
      } else {
        gets++;
        hits += (uint64_t)do_get(t, key, buf, sizeof buf);
      }
    }
    ops += CHUNK;
    now = bu_now();
  }
  *out = (result){.ops = ops, .gets = gets, .hits = hits, .secs = now - t0,
                  .cpu = thread_cpu() - c0};
  free(tr.keys);
}

/* Gets only, in batches of BATCH: kr_store_get_batch or the bare table's. */
typedef struct batch_ud {
  char buf[64];
  uint64_t hits;
} batch_ud;

static void batch_cb(void *ud, size_t i, const void *val, size_t vlen) {
  batch_ud *b = ud;
  if (!val) return;
  memcpy(b->buf, val, vlen < sizeof b->buf ? vlen : sizeof b->buf);
  b->hits++;
}

static void run_batch(const target *t, uint64_t seed, result *out) {
  const void *kp[BATCH];
  size_t kl[BATCH];
  batch_ud ud = {.hits = 0};
  trace tr;
  trace_init(&tr, t, seed);
  for (int i = 0; i < BATCH; i++) kl[i] = BU_KEY_LEN;
  uint64_t ops = 0;
  double t0 = bu_now(), now = t0, c0 = thread_cpu();
  while (ops < t->o->ops && now - t0 < t->o->secs) {
    for (int i = 0; i < CHUNK; i += BATCH) {
      for (int j = 0; j < BATCH; j++) kp[j] = trace_key(&tr);
      if (t->inl)
        it_get_batch(t->inl, BATCH, kp, batch_cb, &ud);
      else if (kr_store_get_batch(t->cache, BATCH, kp, kl, batch_cb, &ud) < 0)
        abort();
    }
    ops += CHUNK;
    now = bu_now();
  }
  *out = (result){.ops = ops, .gets = ops, .hits = ud.hits, .secs = now - t0,
                  .cpu = thread_cpu() - c0};
  free(tr.keys);
}

/* --- threads ----------------------------------------------------------------- */

typedef struct worker {
  pthread_t th;
  pthread_barrier_t *start;
  const target *t;
  uint64_t seed;
  result res;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  pthread_barrier_wait(w->start);
  run_mix(w->t, w->seed, 0, &w->res);
  return NULL;
}

/* Runs the mix on n threads at once; ops are summed over the longest time. */
static void run_threads(const target *t, int n, uint64_t seed, result *out) {
  worker *w = calloc((size_t)n, sizeof *w);
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) {
    w[i] = (worker){.start = &start, .t = t, .seed = seed + (uint64_t)i * 7919};
    if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) abort();
  }
  *out = (result){0};
  for (int i = 0; i < n; i++) {
    pthread_join(w[i].th, NULL);
    out->ops += w[i].res.ops;
    out->gets += w[i].res.gets;
    out->hits += w[i].res.hits;
    out->cpu += w[i].res.cpu;
    if (w[i].res.secs > out->secs) out->secs = w[i].res.secs;
  }
  pthread_barrier_destroy(&start);
  free(w);
}

/* --- main -------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: store_speed [--keys N] [--ops N] [--secs S] [--threads T] [--rounds R]\n"
          "                   [--get-rounds G] [--gather] [--gets-only]\n"
          "       store_speed --check\n"
          "Store vs a plain chained hash table: 90/10 get/set over N (1000000)\n"
          "uniform keys, up to N ops (10000000) or S seconds (2) per run, best of\n"
          "R rounds (2); then T threads (2) on one cache. Last, gets alone, single and\n"
          "in batches of 16, beside a bare table of 64-byte inline slots (one cache\n"
          "line per key): G alternated rounds (3), median of the ratios; --gets-only\n"
          "runs only that.\n"
          "Keys come from a precomputed trace read in order (the caller's key is\n"
          "in cache); --gather draws each from the 1M-key array instead (a DRAM\n"
          "miss per op on both sides). --check tests the references and exits.\n");
}

static int parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){.keys = 1000000, .ops = 10000000, .secs = 2.0, .threads = 2,
              .rounds = 2, .get_rounds = 3, .ttl_ms = 3600 * 1000};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
    if (!strcmp(a, "--check")) exit(check_reference() + check_inline() ? 1 : 0);
    if (!strcmp(a, "--gather")) { o->gather = 1; continue; }
    if (!strcmp(a, "--gets-only")) { o->gets_only = 1; continue; }
    if (!v) { usage(stderr); return -1; }
    if (!strcmp(a, "--keys")) o->keys = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--ops")) o->ops = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--secs")) o->secs = strtod(v, NULL);
    else if (!strcmp(a, "--threads")) o->threads = atoi(v);
    else if (!strcmp(a, "--rounds")) o->rounds = atoi(v);
    else if (!strcmp(a, "--get-rounds")) o->get_rounds = atoi(v);
    else { usage(stderr); return -1; }
    i++;
  }
  return o->keys && o->ops && o->secs > 0 && o->threads > 0 && o->rounds > 0 &&
                 o->get_rounds > 0 && o->get_rounds <= 64
             ? 0
             : -1;
}

static char *make_keys(uint32_t n) {
  char *keys = malloc((size_t)n * BU_KEY_LEN);
  if (!keys) abort();
  for (uint32_t i = 0; i < n; i++) bu_key(keys + (size_t)i * BU_KEY_LEN, i);
  return keys;
}

static void keep_best(result *best, const result *r) {
  if (best->secs == 0 || rate(r) > rate(best)) *best = *r;
}

static void print_run(const char *what, const result *r) {
  printf("  %-34s %7.2f M ops/s  (%llu ops in %.2f s, cpu %3.0f%%, %.1f%% of gets hit)\n",
         what, rate(r), (unsigned long long)r->ops, r->secs, 100 * cpu_share(r),
         100.0 * (double)r->hits / (double)(r->gets ? r->gets : 1));
}

/* Ops per CPU-second: what the rate would be on an otherwise idle core. */
static double cpu_rate(const result *r) { return (double)r->ops / r->cpu / 1e6; }

static void warn_busy(const char *what, const result *r, int threads) {
  if (cpu_share(r) >= 0.9 * threads) return;
  printf("  warning: %s ran %.0f%% of the wall time on %d thread(s): the machine was\n"
         "  busy, wall-time rates understate (per-CPU-second figures are printed too)\n",
         what, 100 * cpu_share(r), threads);
  printf("RESULT speed_busy 1\n");
}

/* Reference and store, alternately, best of rounds. Returns the store's. */
static result compare_single(target *ref, target *kura, const opts *o) {
  result rb = {0}, rk = {0}, r;
  for (int round = 0; round < o->rounds; round++) {
    run_mix(ref, 1 + (uint64_t)round, 0, &r);
    keep_best(&rb, &r);
    run_mix(kura, 1 + (uint64_t)round, 0, &r);
    keep_best(&rk, &r);
  }
  printf("90/10 get/set, 1 thread (best of %d):\n", o->rounds);
  print_run("chained hash (reference)", &rb);
  print_run("kura store", &rk);
  printf("  ratio kura / reference: %.2fx (target >= 1.5); per CPU-second: %.2fx\n",
         rate(&rk) / rate(&rb), cpu_rate(&rk) / cpu_rate(&rb));
  warn_busy("the reference", &rb, 1);
  warn_busy("the store", &rk, 1);
  printf("RESULT speed_ref_mops %.2f\nRESULT speed_kura_mops %.2f\n", rate(&rb), rate(&rk));
  printf("RESULT speed_ratio %.2f\n", rate(&rk) / rate(&rb));
  printf("RESULT speed_ratio_cpu %.2f\n", cpu_rate(&rk) / cpu_rate(&rb));
  return rk;
}

/* The store on o->threads threads at once, against its 1-thread rate. */
static void compare_threads(target *kura, const opts *o, const result *one) {
  result rt = {0}, r;
  for (int round = 0; round < o->rounds; round++) {
    run_threads(kura, o->threads, 100 + (uint64_t)round * 31, &r);
    keep_best(&rt, &r);
  }
  char what[64];
  snprintf(what, sizeof what, "kura store, %d threads (total)", o->threads);
  print_run(what, &rt);
  /* Per-CPU-second efficiency times the threads: the scaling the store would
   * show with every thread on a core of its own. */
  double cpu_scaling = cpu_rate(&rt) * o->threads / cpu_rate(one);
  printf("  scaling %d threads / 1 thread: %.2fx (target >= 1.6 for 2); "
         "from per-CPU-second rates: %.2fx\n",
         o->threads, rate(&rt) / rate(one), cpu_scaling);
  warn_busy("the threaded run", &rt, o->threads);
  printf("RESULT speed_threads_mops %.2f\nRESULT speed_scaling %.2f\n", rate(&rt),
         rate(&rt) / rate(one));
  printf("RESULT speed_scaling_cpu %.2f\n", cpu_scaling);
  printf("RESULT speed_threads_cpu_share %.2f\n", cpu_share(&rt));
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
  double s[64];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Nanoseconds per dependent load over `bytes` of memory (huge pages where
 * the system gives them, as the inline table has): a pointer chase through
 * one 64-byte line per step in a random cycle, so no load can start before
 * the one before it ends. */
static double chase_ns(size_t bytes) {
  size_t n = bytes / 64;
  uint64_t *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint32_t *perm = malloc(n * sizeof *perm);
  if (a == MAP_FAILED || !perm) abort();
#ifdef MADV_HUGEPAGE
  madvise(a, bytes, MADV_HUGEPAGE);
#endif
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates with xorshift */
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t j = x % (i + 1);
    uint32_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
  for (size_t i = 0; i < n; i++) a[(size_t)perm[i] * 8] = (uint64_t)perm[(i + 1) % n] * 8;
  free(perm);
  uint64_t p = 0, steps = 4000000;
  for (uint64_t i = 0; i < n; i++) p = a[p]; /* once round: pages touched, TLB warm */
  double t0 = bu_now();
  for (uint64_t i = 0; i < steps; i++) p = a[p];
  double ns = (bu_now() - t0) / (double)steps * 1e9;
  munmap(a, bytes);
  return p == 1 ? ns + 1e-9 : ns; /* p kept alive */
}

/* What the memory allows, beside the figures of compare_gets: a get whose
 * key is not in cache waits for its misses, so single gets run at most
 * 1 / (misses x latency) one at a time, and faster only by overlapping gets
 * (the CPU running ahead into the next get while one waits). */
static void memory_bounds(double inline_mops, double kura_mops, double kura_index_mib) {
  double idx_mib = kura_index_mib * 1.25 + 1;
  double idx = chase_ns((size_t)idx_mib << 20), dram = chase_ns((size_t)128 << 20);
  double in_flight_inline = inline_mops * dram / 1000, in_flight_kura = kura_mops * (idx + dram) / 1000;
  double need = 0.6 * inline_mops * (idx + dram) / 1000;
  printf("  memory: a dependent load takes %.0f ns over 128 MiB and %.0f ns over %.0f MiB (the\n"
         "  store's index is %.1f MiB); the inline table's get is one miss, kura's two in a row\n"
         "  (its index slot, then the item): one get at a time, %.1f and %.1f M/s; measured %.1f\n"
         "  and %.1f M/s, so %.2f and %.2f gets overlap; kura at 0.6x the inline table needs %.2f\n"
         "  of its gets in flight: %.1fx what the inline table reaches\n",
         dram, idx, idx_mib, kura_index_mib, 1000 / dram, 1000 / (idx + dram), inline_mops,
         kura_mops, in_flight_inline, in_flight_kura, need, need / in_flight_inline);
  printf("RESULT dram_ns %.0f\nRESULT index_chase_ns %.0f\nRESULT inflight_inline %.2f\n"
         "RESULT inflight_kura %.2f\n", dram, idx, in_flight_inline, in_flight_kura);
}

/* Gets alone, the store against the bare inline table: single and batched,
 * the four runs alternated in each round; medians of the per-round ratios
 * (by wall time, and by CPU time for a busy machine). */
static void compare_gets(target *inl, target *kura, const opts *o) {
  enum { SINGLE, BATCHED };
  int n = o->get_rounds;
  double ratio[2][64] = {{0}}, ratio_cpu[2][64] = {{0}}, mops[2][2][64] = {{{0}}};
  /* mops: [single or batched][inline table, kura][round] */
  int busy = 0;
  printf("gets only, 1 thread, vs a bare table of 64-byte inline slots (%d rounds):\n", n);
  for (int r = 0; r < n; r++) {
    result res[2][2];
    uint64_t seed = 50 + (uint64_t)r;
    run_mix(inl, seed, 1, &res[SINGLE][0]);
    run_mix(kura, seed, 1, &res[SINGLE][1]);
    run_batch(inl, seed, &res[BATCHED][0]);
    run_batch(kura, seed, &res[BATCHED][1]);
    for (int k = 0; k < 2; k++) {
      for (int w = 0; w < 2; w++) {
        mops[k][w][r] = rate(&res[k][w]);
        busy |= cpu_share(&res[k][w]) < 0.9;
      }
      ratio[k][r] = mops[k][1][r] / mops[k][0][r];
      ratio_cpu[k][r] = cpu_rate(&res[k][1]) / cpu_rate(&res[k][0]);
    }
    printf("  round %d: single %6.2f vs %6.2f M/s (%.2fx)   batch16 %6.2f vs %6.2f M/s (%.2fx)"
           "   cpu %3.0f%%\n", r + 1, mops[SINGLE][1][r], mops[SINGLE][0][r], ratio[SINGLE][r],
           mops[BATCHED][1][r], mops[BATCHED][0][r], ratio[BATCHED][r],
           100 * cpu_share(&res[BATCHED][1]));
  }
  printf("  median: kura single gets %.2fx the inline table (target >= 0.6), batched %.2fx"
         " (target >= 1.0); per CPU-second %.2fx and %.2fx\n", median(ratio[SINGLE], n),
         median(ratio[BATCHED], n), median(ratio_cpu[SINGLE], n), median(ratio_cpu[BATCHED], n));
  if (busy)
    printf("  warning: some runs got under 90%% of a CPU: the machine was busy\nRESULT get_busy 1\n");
  printf("RESULT get_inline_mops %.2f\nRESULT get_kura_mops %.2f\n", median(mops[SINGLE][0], n),
         median(mops[SINGLE][1], n));
  printf("RESULT batch_inline_mops %.2f\nRESULT get_batch_mops %.2f\n",
         median(mops[BATCHED][0], n), median(mops[BATCHED][1], n));
  printf("RESULT get_ratio %.2f\nRESULT get_ratio_cpu %.2f\n", median(ratio[SINGLE], n),
         median(ratio_cpu[SINGLE], n));
  printf("RESULT batch_ratio %.2f\nRESULT batch_ratio_cpu %.2f\n", median(ratio[BATCHED], n),
         median(ratio_cpu[BATCHED], n));
  kr_store_stats st;
  kr_store_stats_get(kura->store, &st);
  memory_bounds(median(mops[SINGLE][0], n), median(mops[SINGLE][1], n),
                (double)st.index_bytes / (1 << 20));
}

int main(int argc, char **argv) {
  opts o;
  if (parse_opts(argc, argv, &o) < 0) return 2;
  char *keys = make_keys(o.keys);
  btable table;
  itable inline_table;
  bt_init(&table);
  it_init(&inline_table, o.keys);
  kr_store *s = NULL;
  kr_cache *c = NULL;
  if (kr_store_new(&s) < 0 || kr_store_create_cache(s, "bench", 5) < 0 ||
      kr_store_cache(s, "bench", 5, &c) < 0) {
    fprintf(stderr, "store_speed: cannot create the store\n");
    return 1;
  }
  target ref = {.table = &table, .keys = keys, .nkeys = o.keys, .o = &o};
  target kura = {.cache = c, .store = s, .keys = keys, .nkeys = o.keys, .o = &o};
  target inl = {.inl = &inline_table, .keys = keys, .nkeys = o.keys, .o = &o};
  if (!o.gets_only) populate(&ref);
  populate(&kura);
  populate(&inl);
  printf("%u keys of %d B, values of %d B, TTL %llu s on every set, keys %s\n", o.keys,
         BU_KEY_LEN, BU_VAL_LEN, (unsigned long long)(o.ttl_ms / 1000),
         o.gather ? "gathered from the key array" : "from a precomputed trace");
  if (!o.gets_only) {
    result one = compare_single(&ref, &kura, &o);
    compare_threads(&kura, &o, &one);
  }
  compare_gets(&inl, &kura, &o);
  bt_free(&table);
  it_free(&inline_table);
  kr_cache_release(c);
  kr_store_release(s);
  free(keys);
  return 0;
}
