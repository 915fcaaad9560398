/* The embedded store: the process-wide registry of named stores, caches
 * (named, counted handles, O(1) flush and delete by generation) and the item
 * calls of store.h that write. Gets are in store_read.c, storage itself in
 * store_log.c, one shard at a time, memory in store_pool.c.
 *
 * Every item call hashes the key (seeded with the cache's slot) and works in
 * the one shard the hash names; nothing on that path writes memory shared
 * with other shards. Writes lock the shard; gets take no lock. Flush and
 * delete change the cache's generation under all shard locks (no item work):
 * items of an old generation are never found again and are reclaimed later
 * by eviction, compaction or the sweep.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/store/store_int.h"

#define INT_TEXT_MAX 20 /* "-9223372036854775808" */

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static kr_store *registry; /* the named stores: the one process global */

/* --- stores ------------------------------------------------------------------- */

static uint64_t monotonic_ms(void *ud)
{
  (void)ud;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The coarse clock costs no fence (no rdtsc); used by reads when its
 * resolution is a few ms, with kr_shard_expired refining near an expiry. */
static uint32_t coarse_slack_ms(void)
{
  struct timespec r;
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &r) != 0 || r.tv_sec || r.tv_nsec > 10000000)
    return 0;
  return (uint32_t)(r.tv_nsec / 1000000) + 2;
}

/* The store's hash key: random, so that no one can choose keys that collide
 * (see kr_hash); the clock and an address when the kernel has no entropy. */
static uint64_t random_key(const void *salt)
{
  uint64_t k = 0;
  if (getrandom(&k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    k = kr_mix((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)salt, (uint64_t)ts.tv_sec | 1);
  }
  return k;
}

static void store_free(kr_store *s)
{
  for (size_t i = 0; i < s->ncaches; i++)
    free(s->caches[i]);
  free(s->caches);
  for (unsigned i = 0; i < KR_NSHARDS; i++)
    kr_shard_free(&s->shards[i]);
  for (unsigned i = 0; i < KR_STRIPES; i++)
    free((void *)atomic_load(&s->stripes[i].per_cache));
  kr_pool_destroy(&s->pool);
  kr_pool_destroy(&s->ipool);
  kr_pool_destroy(&s->hpool);
  pthread_mutex_destroy(&s->mu);
  free(s->name);
  free(s);
}

int kr_store_new(kr_store **out)
{
  kr_store *s = calloc(1, sizeof *s);
  if (!s)
    return KURA_ENOMEM;
  pthread_mutex_init(&s->mu, NULL);
  kr_pool_init(&s->pool, 1);
  kr_pool_init(&s->ipool, 0);
  kr_pool_init(&s->hpool, 0);
  s->clock = monotonic_ms;
  s->coarse_ms = coarse_slack_ms();
  s->hash_key = random_key(s);
  s->next_gen = 1;
  atomic_init(&s->refs, 1);
  for (unsigned i = 0; i < KR_NSHARDS; i++) {
    if (kr_shard_init(&s->shards[i], s) < 0) {
      store_free(s);
      return KURA_ENOMEM;
    }
  }
  *out = s;
  return 0;
}

int kr_store_open(const char *name, kr_store **out)
{
  if (!name)
    return KURA_EINVAL;
  pthread_mutex_lock(&registry_mu);
  kr_store *s = registry;
  while (s && strcmp(s->name, name) != 0)
    s = s->next;
  int r = 0;
  if (s) {
    atomic_fetch_add(&s->refs, 1);
  } else if ((r = kr_store_new(&s)) == 0) {
    if (!(s->name = strdup(name))) {
      store_free(s);
      r = KURA_ENOMEM;
    } else {
      s->next = registry;
      registry = s;
    }
  }
  pthread_mutex_unlock(&registry_mu);
  if (r == 0)
    *out = s;
  return r;
}

static void registry_unlink(kr_store *s)
{
  kr_store **pp = &registry;
  while (*pp && *pp != s)
    pp = &(*pp)->next;
  if (*pp)
    *pp = s->next;
}

void kr_store_release(kr_store *s)
{
  if (!s)
    return;
  if (!s->name) {
    if (atomic_fetch_sub(&s->refs, 1) == 1)
      store_free(s);
    return;
  }
  /* Named: the last release and a concurrent open are ordered by the
   * registry lock, so an open never revives a store being freed. */
  pthread_mutex_lock(&registry_mu);
  int last = atomic_fetch_sub(&s->refs, 1) == 1;
  if (last)
    registry_unlink(s);
  pthread_mutex_unlock(&registry_mu);
  if (last)
    store_free(s);
}

void kr_store_set_max_memory(kr_store *s, uint64_t bytes)
{
  atomic_store(&s->max_memory, bytes);
}

uint64_t kr_store_max_memory(kr_store *s)
{
  return atomic_load(&s->max_memory);
}

void kr_store_set_clock(kr_store *s, kr_clock_fn fn, void *ud)
{
  s->clock = fn ? fn : monotonic_ms;
  s->clock_ud = fn ? ud : NULL;
  s->coarse_ms = fn ? 0 : coarse_slack_ms();
}

static void lock_all(kr_store *s)
{
  for (unsigned i = 0; i < KR_NSHARDS; i++)
    kr_shard_lock(&s->shards[i]);
}

static void unlock_all(kr_store *s)
{
  for (unsigned i = KR_NSHARDS; i-- > 0;)
    kr_shard_unlock(&s->shards[i]);
}

void kr_store_stats_get(kr_store *s, kr_store_stats *out)
{
  memset(out, 0, sizeof *out);
  kr_stripes_sum(s, KR_MAX_CACHES, out);
  for (unsigned i = 0; i < KR_NSHARDS; i++) {
    kr_shard *sh = &s->shards[i];
    kr_lock_acquire(&sh->lock);
    out->items += sh->count;
    out->bytes += atomic_load_explicit(&sh->bytes, memory_order_relaxed);
    out->hits += sh->hits;
    out->misses += sh->misses;
    out->evictions += sh->evictions;
    out->expirations += sh->expirations;
    out->index_bytes += sh->cap * sizeof(uint64_t);
    kr_lock_release(&sh->lock);
  }
}

size_t kr_store_sweep(kr_store *s, size_t budget)
{
  /* A small budget visits a few shards (at least 64 units each), so that
   * frequent small calls do not take all the shard locks every time. */
  uint64_t now = s->clock(s->clock_ud);
  size_t per = budget / KR_NSHARDS, removed = 0;
  if (per < 64)
    per = 64;
  size_t visits = budget / per;
  if (visits < 1)
    visits = 1;
  if (visits > KR_NSHARDS)
    visits = KR_NSHARDS;
  unsigned start = atomic_fetch_add(&s->sweep_shard, (unsigned)visits);
  for (unsigned k = 0; k < visits; k++) {
    kr_shard *sh = &s->shards[(start + k) % KR_NSHARDS];
    kr_shard_lock(sh);
    sh->now = now;
    sh->slack = 0;
    removed += kr_shard_sweep(sh, per);
    kr_shard_unlock(sh);
  }
  return removed;
}

/* --- caches -------------------------------------------------------------------- */

/* A cache name: 1..255 bytes, not whitespace only, no NUL (names are listed
 * as C strings). */
static int name_ok(const char *name, size_t len)
{
  if (!name || len == 0 || len > KR_STORE_MAX_CACHE_NAME || memchr(name, 0, len))
    return 0;
  for (size_t i = 0; i < len; i++)
    if (name[i] != ' ' && name[i] != '\t' && name[i] != '\n' && name[i] != '\r')
      return 1;
  return 0; /* whitespace only */
}

static int name_cmp(const kr_cache *c, const char *name, size_t len)
{
  size_t n = c->len < len ? c->len : len;
  int r = memcmp(c->name, name, n);
  if (r)
    return r;
  return c->len < len ? -1 : c->len > len;
}

/* Position of `name` in the sorted list; *found says whether it is there. */
static size_t cache_pos(kr_store *s, const char *name, size_t len, int *found)
{
  size_t lo = 0, hi = s->ncaches;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int r = name_cmp(s->caches[mid], name, len);
    if (r == 0) {
      *found = 1;
      return mid;
    }
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

static int free_slot(kr_store *s)
{
  for (unsigned i = 0; i < KR_MAX_CACHES; i++)
    if (!s->by_slot[i])
      return (int)i;
  return -1;
}

static int cache_insert(kr_store *s, kr_cache *c, size_t pos)
{
  if (s->ncaches == s->capcaches) {
    size_t n = s->capcaches ? s->capcaches * 2 : 8;
    kr_cache **a = realloc(s->caches, n * sizeof *a);
    if (!a)
      return KURA_ENOMEM;
    s->caches = a;
    s->capcaches = n;
  }
  memmove(s->caches + pos + 1, s->caches + pos, (s->ncaches - pos) * sizeof *s->caches);
  s->caches[pos] = c;
  s->ncaches++;
  return 0;
}

/* A new generation for slot `slot` (0 = none), set under all shard locks so
 * that every item call sees the change and the per-shard counters together. */
static void set_generation(kr_store *s, kr_cache *c, uint32_t gen, int clear_all)
{
  lock_all(s);
  if (clear_all)
    kr_stripes_reset(s, c->slot);
  atomic_store_explicit(&s->slot_gen[c->slot], gen, memory_order_relaxed);
  atomic_store_explicit(&c->gen, gen, memory_order_relaxed);
  atomic_store_explicit(&c->head, gen ? kr_cid_head(kr_cid(gen, c->slot)) : 0,
                        memory_order_relaxed);
  for (unsigned i = 0; i < KR_NSHARDS; i++) {
    kr_shard *sh = &s->shards[i];
    if (c->slot >= sh->ncst)
      continue;
    kr_cstat *st = &sh->cst[c->slot];
    if (clear_all)
      memset(st, 0, sizeof *st);
    st->items = st->bytes = 0;
  }
  if (!gen)
    atomic_store(&c->alive, 0);
  unlock_all(s);
}

static int cache_new(kr_store *s, const char *name, size_t len, kr_cache **out)
{
  int slot = free_slot(s);
  if (slot < 0)
    return KURA_ELIMIT;
  kr_cache *c = calloc(1, sizeof *c + len + 1);
  if (!c)
    return KURA_ENOMEM;
  c->store = s;
  c->slot = (uint32_t)slot;
  kr_seeds(s, c->slot, c->seed);
  c->len = len;
  memcpy(c->name, name, len);
  atomic_init(&c->refs, 1); /* the store's reference */
  atomic_init(&c->alive, 1);
  *out = c;
  return 0;
}

int kr_store_create_cache(kr_store *s, const char *name, size_t len)
{
  if (!name_ok(name, len))
    return KURA_EINVAL;
  pthread_mutex_lock(&s->mu);
  int found, r;
  size_t pos = cache_pos(s, name, len, &found);
  kr_cache *c = NULL;
  if (found)
    r = KURA_EEXIST;
  else if ((r = cache_new(s, name, len, &c)) == 0 && (r = cache_insert(s, c, pos)) < 0)
    free(c);
  if (r == 0) {
    s->by_slot[c->slot] = c;
    set_generation(s, c, s->next_gen++, 1);
  }
  pthread_mutex_unlock(&s->mu);
  return r;
}

static void cache_unref(kr_cache *c)
{
  if (atomic_fetch_sub(&c->refs, 1) == 1)
    free(c);
}

int kr_store_delete_cache(kr_store *s, const char *name, size_t len)
{
  pthread_mutex_lock(&s->mu);
  int found;
  size_t pos = cache_pos(s, name, len, &found);
  kr_cache *c = found ? s->caches[pos] : NULL;
  if (c) {
    set_generation(s, c, 0, 1);
    s->by_slot[c->slot] = NULL;
    memmove(s->caches + pos, s->caches + pos + 1, (s->ncaches - pos - 1) * sizeof *s->caches);
    s->ncaches--;
  }
  pthread_mutex_unlock(&s->mu);
  if (!c)
    return KURA_ENOTFOUND;
  cache_unref(c); /* the store's reference; handles keep theirs */
  return 0;
}

int kr_store_flush_cache(kr_store *s, const char *name, size_t len)
{
  pthread_mutex_lock(&s->mu);
  int found;
  size_t pos = cache_pos(s, name, len, &found);
  if (found)
    set_generation(s, s->caches[pos], s->next_gen++, 0);
  pthread_mutex_unlock(&s->mu);
  return found ? 0 : KURA_ENOTFOUND;
}

int kr_store_list_caches(kr_store *s, char ***names, size_t *count)
{
  pthread_mutex_lock(&s->mu);
  size_t n = s->ncaches, bytes = 0;
  for (size_t i = 0; i < n; i++)
    bytes += s->caches[i]->len + 1;
  char **a = malloc(n * sizeof *a + bytes + 1);
  if (a) {
    char *p = (char *)(a + n);
    for (size_t i = 0; i < n; i++) {
      a[i] = p;
      memcpy(p, s->caches[i]->name, s->caches[i]->len + 1);
      p += s->caches[i]->len + 1;
    }
  }
  pthread_mutex_unlock(&s->mu);
  if (!a)
    return KURA_ENOMEM;
  *names = a;
  *count = n;
  return 0;
}

void kr_store_free_names(char **names, size_t count)
{
  (void)count;
  free(names);
}

int kr_store_cache_stats(kr_store *s, const char *name, size_t len, kr_store_stats *out)
{
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->mu);
  int found;
  size_t pos = cache_pos(s, name, len, &found);
  uint32_t slot = found ? s->caches[pos]->slot : 0;
  if (found) {
    kr_stripes_sum(s, slot, out);
    for (unsigned i = 0; i < KR_NSHARDS; i++) {
      kr_shard *sh = &s->shards[i];
      kr_lock_acquire(&sh->lock);
      if (slot < sh->ncst) {
        kr_cstat *c = &sh->cst[slot];
        out->items += c->items;
        out->bytes += c->bytes;
        out->hits += c->hits;
        out->misses += c->misses;
        out->evictions += c->evictions;
        out->expirations += c->expirations;
      }
      kr_lock_release(&sh->lock);
    }
  }
  pthread_mutex_unlock(&s->mu);
  return found ? 0 : KURA_ENOTFOUND;
}

int kr_store_cache(kr_store *s, const char *name, size_t len, kr_cache **out)
{
  pthread_mutex_lock(&s->mu);
  int found;
  size_t pos = cache_pos(s, name, len, &found);
  if (found) {
    *out = s->caches[pos];
    atomic_fetch_add(&(*out)->refs, 1);
    atomic_fetch_add(&s->refs, 1); /* a handle keeps its store */
  }
  pthread_mutex_unlock(&s->mu);
  return found ? 0 : KURA_ENOTFOUND;
}

void kr_cache_release(kr_cache *c)
{
  if (!c)
    return;
  kr_store *s = c->store;
  cache_unref(c);
  kr_store_release(s);
}

int kr_cache_alive(const kr_cache *c)
{
  return atomic_load(&((kr_cache *)c)->alive);
}

/* --- items --------------------------------------------------------------------- */

static uint64_t exp_of(uint64_t now, uint64_t ttl_ms)
{
  if (ttl_ms == KR_TTL_NONE)
    return 0;
  return ttl_ms >= KR_EXP_MAX - now ? KR_EXP_MAX : now + ttl_ms;
}

static int check_item(kr_cache *c, size_t klen, size_t vlen)
{
  if (klen > KR_STORE_MAX_KEY || vlen > KR_STORE_MAX_ITEM || klen + vlen > KR_STORE_MAX_ITEM)
    return KURA_EINVAL;
  uint64_t max = atomic_load_explicit(&c->store->max_memory, memory_order_relaxed);
  if (max && klen + vlen + 64 > max)
    return KURA_ELIMIT;
  return 0;
}

static int cond_holds(enum kura_set_cond cond, int found, const kr_item *it,
                      const void *cmp, size_t cmplen)
{
  int eq = found && it->vlen == cmplen && (cmplen == 0 || memcmp(it->val, cmp, cmplen) == 0);
  switch (cond) {
  case KURA_SET_ALWAYS:
    return 1;
  case KURA_SET_IF_ABSENT:
    return !found;
  case KURA_SET_IF_PRESENT:
    return found;
  case KURA_SET_IF_EQUAL:
    return eq;
  case KURA_SET_IF_NOT_EQUAL:
    return !eq;
  case KURA_SET_IF_PRESENT_AND_NOT_EQUAL:
    return found && !eq;
  case KURA_SET_IF_ABSENT_OR_EQUAL:
    return !found || eq;
  }
  return 0;
}

/* Appends the new version into dst (reserved) and retires the old one. */
static void put_item(kr_op *o, kr_seg *dst, int found, uint32_t pos, kr_item *old,
                     const void *key, size_t klen, const void *val, size_t vlen,
                     uint64_t exp)
{
  uint64_t loc = kr_shard_append(o->sh, dst, o->cid, key, klen, val, vlen, exp);
  if (found) {
    kr_shard_replace(o->sh, pos, loc, kr_hint_get(o->sh->hint, pos));
    kr_shard_kill(o->sh, old);
  } else {
    kr_shard_insert(o->sh, o->h, loc);
  }
}

/* Reserves room for an item of vlen bytes. */
static int reserve(kr_op *o, size_t klen, size_t vlen, kr_seg **dst)
{
  int q = kr_shard_ghost_has(o->sh, o->h) ? KR_MAIN : KR_SMALL;
  return kr_shard_reserve(o->sh, q, kr_item_size(o->cid, klen, vlen), dst);
}

/* Reserves room, then finds the current item (the reservation may have
 * evicted or moved it). */
static int reserve_find(kr_op *o, const void *key, size_t klen, size_t vlen,
                        kr_seg **dst, uint32_t *pos, kr_item *it)
{
  int r = reserve(o, klen, vlen, dst);
  if (r < 0)
    return r;
  return kr_shard_find(o->sh, o->h, o->cid, key, klen, pos, it);
}

int kr_store_set_if(kr_cache *c, enum kura_set_cond cond,
                    const void *key, size_t klen, const void *val, size_t vlen,
                    const void *cmp, size_t cmplen, uint64_t ttl_ms)
{
  int r = check_item(c, klen, vlen);
  kr_op o;
  if (r || (r = kr_op_begin(c, key, klen, 1, &o)))
    return r;
  kr_seg *dst;
  kr_item it;
  uint32_t pos;
  /* A value of the same size (counters, fixed-size records: the common
   * overwrite) is written in place: no append, and no dead copy for the
   * compactor to reclaim later. The item keeps its queue position and
   * frequency, as an appended new version would. A reader that saw a part
   * of the write sees the shard's counter move and reads again. */
  int found = kr_shard_find(o.sh, o.h, o.cid, key, klen, &pos, &it);
  if (found > 0 && it.vlen == vlen) {
    if (!cond_holds(cond, 1, &it, cmp, cmplen))
      return kr_op_end(&o, KURA_SKIPPED);
    kr_shard_write_val(&it, val);
    kr_shard_set_exp(o.sh, &it, exp_of(o.sh->now, ttl_ms));
    return kr_op_end(&o, KURA_HIT);
  }
  if (found) {
    found = reserve_find(&o, key, klen, vlen, &dst, &pos, &it);
  } else { /* absent stays absent: a reservation only evicts */
    if (!cond_holds(cond, 0, NULL, cmp, cmplen))
      return kr_op_end(&o, KURA_SKIPPED);
    int rr = reserve(&o, klen, vlen, &dst);
    if (rr < 0)
      found = rr;
  }
  if (found < 0)
    return kr_op_end(&o, found);
  if (!cond_holds(cond, found, &it, cmp, cmplen)) {
    kr_shard_discard(o.sh, dst);
    return kr_op_end(&o, KURA_SKIPPED);
  }
  put_item(&o, dst, found, pos, &it, key, klen, val, vlen, exp_of(o.sh->now, ttl_ms));
  return kr_op_end(&o, KURA_HIT);
}

int kr_store_set(kr_cache *c, const void *key, size_t klen,
                 const void *val, size_t vlen, uint64_t ttl_ms)
{
  return kr_store_set_if(c, KURA_SET_ALWAYS, key, klen, val, vlen, NULL, 0, ttl_ms);
}

int kr_store_set_batch(kr_cache *c, size_t n, const void *const *keys,
                       const size_t *klens, const void *const *vals,
                       const size_t *vlens, const uint64_t *ttls_ms)
{
  for (size_t i = 0; i < n; i++) {
    int r = check_item(c, klens[i], vlens[i]);
    if (r)
      return r;
  }
  for (size_t i = 0; i < n; i++) {
    int r = kr_store_set(c, keys[i], klens[i], vals[i], vlens[i],
                         ttls_ms ? ttls_ms[i] : KR_TTL_NONE);
    if (r < 0)
      return r;
  }
  return 0;
}

int kr_store_delete(kr_cache *c, const void *key, size_t klen)
{
  if (klen > KR_STORE_MAX_KEY)
    return KURA_EINVAL;
  kr_op o;
  int r = kr_op_begin(c, key, klen, 0, &o);
  if (r)
    return r;
  kr_item it;
  uint32_t pos;
  if (!kr_shard_find(o.sh, o.h, o.cid, key, klen, &pos, &it))
    return kr_op_end(&o, KURA_MISS);
  kr_shard_delete(o.sh, pos, &it);
  return kr_op_end(&o, KURA_HIT);
}

/* Canonical base-10 int64: optional '-', digits, no leading zero except "0"
 * itself, no "-0" (as Redis's string2ll). Accumulates negatively so that
 * INT64_MIN parses. */
static int parse_i64(const uint8_t *p, size_t n, int64_t *out)
{
  size_t i = 0;
  int neg = n > 0 && p[0] == '-';
  i = (size_t)neg;
  if (i == n || n - i > 19 || (p[i] == '0' && (n - i > 1 || neg)))
    return -1;
  int64_t v = 0;
  for (; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    int d = p[i] - '0';
    if (v < (INT64_MIN + d) / 10)
      return -1;
    v = v * 10 - d;
  }
  if (!neg && v == INT64_MIN)
    return -1;
  *out = neg ? v : -v;
  return 0;
}

int kr_store_increment(kr_cache *c, const void *key, size_t klen,
                       int64_t amount, uint64_t ttl_ms, int64_t *out)
{
  int r = check_item(c, klen, INT_TEXT_MAX);
  kr_op o;
  if (r || (r = kr_op_begin(c, key, klen, 1, &o)))
    return r;
  kr_seg *dst;
  kr_item it;
  uint32_t pos;
  int found = reserve_find(&o, key, klen, INT_TEXT_MAX, &dst, &pos, &it);
  if (found < 0)
    return kr_op_end(&o, found);
  int64_t cur = 0, nv;
  if ((found && parse_i64(it.val, it.vlen, &cur) < 0) ||
      __builtin_add_overflow(cur, amount, &nv)) {
    kr_shard_discard(o.sh, dst);
    return kr_op_end(&o, KURA_EPRECOND);
  }
  char text[INT_TEXT_MAX + 4];
  size_t n = (size_t)snprintf(text, sizeof text, "%lld", (long long)nv);
  if (found && n == it.vlen) {
    kr_shard_write_val(&it, text); /* same length: rewrite in place */
    kr_shard_discard(o.sh, dst);
  } else {
    uint64_t exp = found ? it.exp : exp_of(o.sh->now, ttl_ms);
    put_item(&o, dst, found, pos, &it, key, klen, text, n, exp);
  }
  *out = nv;
  return kr_op_end(&o, KURA_HIT);
}

int kr_store_ttl_get(kr_cache *c, const void *key, size_t klen, uint64_t *remaining_ms)
{
  if (klen > KR_STORE_MAX_KEY)
    return KURA_EINVAL;
  kr_op o;
  int r = kr_op_begin(c, key, klen, 1, &o);
  if (r)
    return r;
  kr_item it;
  uint32_t pos;
  if (!kr_shard_find(o.sh, o.h, o.cid, key, klen, &pos, &it))
    return kr_op_end(&o, KURA_MISS);
  *remaining_ms = it.exp ? it.exp - o.sh->now : UINT64_MAX;
  return kr_op_end(&o, KURA_HIT);
}

int kr_store_ttl_set(kr_cache *c, const void *key, size_t klen,
                     uint64_t ttl_ms, enum kura_ttl_mode mode)
{
  if (klen > KR_STORE_MAX_KEY)
    return KURA_EINVAL;
  kr_op o;
  int r = kr_op_begin(c, key, klen, 1, &o);
  if (r)
    return r;
  kr_item it;
  uint32_t pos;
  if (!kr_shard_find(o.sh, o.h, o.cid, key, klen, &pos, &it))
    return kr_op_end(&o, KURA_MISS);
  uint64_t cur = it.exp ? it.exp - o.sh->now : UINT64_MAX;
  uint64_t want = ttl_ms == KR_TTL_NONE ? UINT64_MAX : ttl_ms;
  if ((mode == KURA_TTL_INCREASE && want <= cur) || (mode == KURA_TTL_DECREASE && want >= cur))
    return kr_op_end(&o, KURA_SKIPPED);
  kr_shard_set_exp(o.sh, &it, exp_of(o.sh->now, ttl_ms));
  return kr_op_end(&o, KURA_HIT);
}

