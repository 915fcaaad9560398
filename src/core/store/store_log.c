/* The embedded store's engine for one shard: items packed in log segments,
 * an open-addressing index of 8-byte slots, S3-FIFO eviction over the
 * segments, compaction of mostly dead segments, and the expiry sweep.
 * Every function here runs with the shard's lock held (see store_int.h).
 *
 * Item layout in a segment (no alignment, no per-item pointers; KR_SEG_PAD
 * zero bytes follow the data, so short reads past an item stay inside):
 *   flags (1: freq bits 0-1, dead bit 7) | cid varint | klen varint |
 *   vlen varint | expiry (5 bytes LE, ms, 0 = never) | key | value
 *
 * Eviction is S3-FIFO at segment granularity: new items go to the SMALL
 * log; evicting SMALL's oldest segment moves the items that were read since
 * (freq > 0) to MAIN and drops the others, remembering their fingerprints
 * in a ghost table; a new item whose fingerprint is in the ghost goes to
 * MAIN directly. Evicting MAIN's oldest segment re-appends items with
 * freq > 0 (decremented) and drops the rest. A hit only sets freq bits.
 */
#include <endian.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/store_int.h"

#define SEG_OVERHEAD (sizeof(kr_seg) + KR_SEG_PAD + 16)
#define MAX_LOAD_NUM 17 /* grow the index past 85% load */
#define MAX_LOAD_DEN 20

enum { DROP_DELETE, DROP_EXPIRED, DROP_EVICTED, DROP_GARBAGE };

void kr_lock_slow(kr_lock *l)
{
  for (;;) {
    for (int n = 0; atomic_load_explicit(&l->v, memory_order_relaxed); n++) {
      if (n > 64) {
        sched_yield();
        n = 0;
      }
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
      return;
  }
}

/* --- hashing and encoding ----------------------------------------------------- */

/* Keys over 16 bytes: 16 bytes per multiply, then a final mix. */
uint64_t kr_hash_long(const void *key, size_t n, uint64_t seed)
{
  const uint8_t *p = key;
  uint64_t h = kr_mix(seed ^ 0x9e3779b97f4a7c15ull, n ^ 0xa0761d6478bd642full);
  for (; n >= 16; p += 16, n -= 16)
    h = kr_mix(rd64(p) ^ 0xe7037ed1a0b428dbull, rd64(p + 8) ^ h);
  if (n >= 8) {
    h = kr_mix(rd64(p) ^ 0x8ebc6af09c88c6e3ull, h ^ 0x589965cc75374cc3ull);
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t t = 0;
    memcpy(&t, p, n);
    h = kr_mix(t ^ 0x1d8e4e27c47d124full, h ^ n);
  }
  return kr_mix(h ^ (h >> 29), 0xbf58476d1ce4e5b9ull);
}

static inline size_t varint_len(uint64_t v)
{
  size_t n = 1;
  for (; v >= 0x80; v >>= 7)
    n++;
  return n;
}

static inline size_t varint_put(uint8_t *p, uint64_t v)
{
  size_t n = 0;
  for (; v >= 0x80; v >>= 7)
    p[n++] = (uint8_t)(v | 0x80);
  p[n++] = (uint8_t)v;
  return n;
}

static inline void exp_put(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 5; i++, v >>= 8)
    p[i] = (uint8_t)v;
}

size_t kr_item_size(uint64_t cid, size_t klen, size_t vlen)
{
  return 1 + varint_len(cid) + varint_len(klen) + varint_len(vlen) + 5 + klen + vlen;
}

/* --- accounting --------------------------------------------------------------- */

static void charge(kr_shard *sh, int64_t delta)
{
  uint64_t b = atomic_load_explicit(&sh->bytes, memory_order_relaxed);
  atomic_store_explicit(&sh->bytes, b + (uint64_t)delta, memory_order_relaxed);
  atomic_fetch_add_explicit(&sh->store->used, (uint64_t)delta, memory_order_relaxed);
}

kr_cstat *kr_shard_cst(kr_shard *sh, uint32_t slot)
{
  if (slot >= sh->ncst) {
    uint32_t n = slot + 8;
    kr_cstat *c = realloc(sh->cst, n * sizeof *c);
    if (!c)
      return NULL;
    memset(c + sh->ncst, 0, (n - sh->ncst) * sizeof *c);
    charge(sh, (int64_t)((n - sh->ncst) * sizeof *c));
    sh->cst = c;
    sh->ncst = n;
  }
  return &sh->cst[slot];
}

/* Per-cache items/bytes of live generations only: a flushed cache's items
 * stop counting for it at the flush. */
static void account(kr_shard *sh, uint64_t cid, uint32_t size, int sign)
{
  if (!kr_cid_live(sh->store, cid))
    return;
  kr_cstat *c = kr_shard_cst_fast(sh, (uint32_t)(cid & (KR_MAX_CACHES - 1)));
  if (!c)
    return;
  c->items += (uint64_t)(int64_t)sign;
  c->bytes += (uint64_t)((int64_t)sign * (int64_t)(size + 8));
}

static void count_drop(kr_shard *sh, uint64_t cid, int why)
{
  kr_cstat *c = kr_cid_live(sh->store, cid)
                    ? kr_shard_cst(sh, (uint32_t)(cid & (KR_MAX_CACHES - 1)))
                    : NULL;
  if (why == DROP_EXPIRED) {
    sh->expirations++;
    if (c)
      c->expirations++;
  } else if (why == DROP_EVICTED) {
    sh->evictions++;
    if (c)
      c->evictions++;
  }
}

/* --- segments ----------------------------------------------------------------- */

static int seg_table_grow(kr_shard *sh)
{
  uint32_t n = sh->segcap ? sh->segcap * 2 : 64;
  kr_seg **t = realloc(sh->segs, n * sizeof *t);
  if (!t)
    return KURA_ENOMEM;
  memset(t + sh->segcap, 0, (n - sh->segcap) * sizeof *t);
  charge(sh, (int64_t)((n - sh->segcap) * sizeof *t));
  sh->segs = t;
  sh->segcap = n;
  return 0;
}

static uint32_t seg_number(kr_shard *sh)
{
  if (sh->nfree)
    return sh->freeidx[--sh->nfree];
  if (sh->nsegs >= IDX_MAX)
    return 0;
  if (sh->nsegs + 1 >= sh->segcap && seg_table_grow(sh) < 0)
    return 0;
  return ++sh->nsegs;
}

static void q_link(kr_queue *q, kr_seg *g)
{
  g->older = q->newest;
  g->newer = NULL;
  if (q->newest)
    q->newest->newer = g;
  else
    q->oldest = g;
  q->newest = g;
  q->bytes += g->cap;
}

static void q_unlink(kr_queue *q, kr_seg *g)
{
  if (g->older)
    g->older->newer = g->newer;
  else
    q->oldest = g->newer;
  if (g->newer)
    g->newer->older = g->older;
  else
    q->newest = g->older;
  q->bytes -= g->cap;
  if (q->open == g)
    q->open = NULL;
}

static kr_seg *seg_new(kr_shard *sh, int q, uint32_t cap, int dedicated)
{
  uint32_t idx = seg_number(sh);
  if (!idx)
    return NULL;
#ifdef KURA_SANITIZED
  int pooled = 0; /* every segment its own allocation, bounds-checked */
#else
  int pooled = sizeof(kr_seg) + cap + KR_SEG_PAD == KR_SEG_MAX;
#endif
  kr_seg *g = pooled ? kr_pool_get(&sh->store->pool) : malloc(sizeof *g + cap + KR_SEG_PAD);
  if (!g) {
    if (idx == sh->nsegs)
      sh->nsegs--;
    else
      sh->freeidx[sh->nfree++] = idx; /* it came from there: room exists */
    return NULL;
  }
  memset(g, 0, sizeof *g);
  memset(g->data + cap, 0, KR_SEG_PAD);
  g->idx = idx;
  g->cap = cap;
  g->queue = (uint8_t)q;
  g->dedicated = (uint8_t)dedicated;
  g->pooled = (uint8_t)pooled;
  sh->segs[idx] = g;
  q_link(&sh->q[q], g);
  charge(sh, (int64_t)(SEG_OVERHEAD + cap));
  return g;
}

static void seg_free(kr_shard *sh, kr_seg *g)
{
  if (sh->nfree == sh->freecap) {
    uint32_t n = sh->freecap ? sh->freecap * 2 : 64;
    uint32_t *f = realloc(sh->freeidx, n * sizeof *f);
    if (!f)
      return; /* keep the segment rather than lose track of its number */
    charge(sh, (int64_t)((n - sh->freecap) * sizeof *f));
    sh->freeidx = f;
    sh->freecap = n;
  }
  q_unlink(&sh->q[g->queue], g);
  sh->segs[g->idx] = NULL;
  sh->freeidx[sh->nfree++] = g->idx;
  charge(sh, -(int64_t)(SEG_OVERHEAD + g->cap));
  if (g->pooled)
    kr_pool_put(&sh->store->pool, g);
  else
    free(g);
}

/* Data bytes of the largest normal segment: 64 KiB allocations, or fewer
 * under a small budget so that each shard still has ~32 segments to evict. */
static uint32_t seg_limit(kr_shard *sh)
{
  uint64_t m = atomic_load_explicit(&sh->store->max_memory, memory_order_relaxed);
  uint32_t sz = KR_SEG_MAX;
  if (m) {
    uint64_t per = m / KR_NSHARDS / 32;
    for (sz = KR_SEG_MIN; sz < KR_SEG_MAX && (uint64_t)sz * 2 <= per;)
      sz *= 2;
  }
  return sz - (uint32_t)(sizeof(kr_seg) + KR_SEG_PAD); /* allocations are powers of 2 */
}

/* Data bytes of a new open segment: small while the shard is small (a
 * nearly empty store holds little), the limit once it holds 4 of them. */
static uint32_t seg_size(kr_shard *sh, size_t item)
{
  const uint32_t head = (uint32_t)(sizeof(kr_seg) + KR_SEG_PAD);
  uint32_t limit = seg_limit(sh) + head;
  uint64_t held = atomic_load_explicit(&sh->bytes, memory_order_relaxed);
  uint32_t sz = limit < 4096 ? limit : 4096;
  while (sz < limit && ((uint64_t)sz * 4 <= held || sz - head < item * 4))
    sz *= 2;
  return sz - head;
}

/* --- index ------------------------------------------------------------------- */

static void index_place(uint64_t *t, uint32_t cap, uint64_t slot)
{
  uint32_t i = home(slot >> FP_SHIFT, cap);
  while (t[i])
    if (++i == cap)
      i = 0;
  t[i] = slot;
}

static int index_resize(kr_shard *sh, uint32_t ncap)
{
  uint64_t *t = calloc(ncap, sizeof *t);
  if (!t)
    return KURA_ENOMEM;
  for (uint32_t i = 0; i < sh->cap; i++)
    if (sh->tab[i])
      index_place(t, ncap, sh->tab[i]);
  free(sh->tab);
  charge(sh, ((int64_t)ncap - (int64_t)sh->cap) * 8);
  /* Atomic stores: kr_shard_prefetch reads these without the lock. */
  __atomic_store_n(&sh->tab, t, __ATOMIC_RELAXED);
  __atomic_store_n(&sh->cap, ncap, __ATOMIC_RELAXED);
  return 0;
}

/* Backward-shift deletion: later slots of the probe run move up, so no
 * tombstones accumulate. Homes come from the fingerprints, not the items. */
static void index_del(kr_shard *sh, uint32_t i)
{
  uint64_t *t = sh->tab;
  uint32_t cap = sh->cap, j = i;
  for (;;) {
    if (++j == cap)
      j = 0;
    uint64_t s = t[j];
    if (!s)
      break;
    uint32_t k = home(s >> FP_SHIFT, cap);
    if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
      continue;
    t[i] = s;
    i = j;
  }
  t[i] = 0;
  sh->count--;
}

static uint32_t index_find_loc(kr_shard *sh, uint64_t fp, uint64_t loc)
{
  uint32_t cap = sh->cap, i = home(fp, cap);
  for (;;) {
    uint64_t s = sh->tab[i];
    if (!s)
      return UINT32_MAX;
    if ((s & LOC_MASK) == loc)
      return i;
    if (++i == cap)
      i = 0;
  }
}

/* An item's hash, from its own bytes (its cache may be gone). */
static uint64_t item_hash(kr_shard *sh, const kr_item *it)
{
  uint64_t seed[2];
  kr_seeds(sh->store, (uint32_t)(it->cid & (KR_MAX_CACHES - 1)), seed);
  return kr_hash(it->key, it->klen, seed);
}

static uint64_t item_fp(kr_shard *sh, kr_item *it)
{
  return item_hash(sh, it) >> FP_SHIFT;
}

/* With the lock held: prefetches the item the slot for h points at (its
 * first two lines), without reading it, so that a later find overlaps. */
void kr_shard_prefetch_item(kr_shard *sh, uint64_t h)
{
  uint64_t fp = h >> FP_SHIFT;
  uint32_t cap = sh->cap, i = home(fp, cap);
  for (uint64_t s; (s = sh->tab[i]) != 0;) {
    if ((s >> FP_SHIFT) == fp) {
      const uint8_t *p = loc_ptr(sh, s & LOC_MASK);
      __builtin_prefetch(p);
      __builtin_prefetch(p + 63);
      return;
    }
    if (++i == cap)
      i = 0;
  }
}

/* A coarse `now` (reads) lags the real time by less than `slack`: only an
 * expiry inside that window needs the exact clock. */
int kr_shard_expired(kr_shard *sh, uint64_t exp)
{
  if (!exp || exp > sh->now + sh->slack)
    return 0;
  if (exp <= sh->now)
    return 1;
  kr_store *s = sh->store;
  sh->now = s->clock(s->clock_ud);
  sh->slack = 0;
  return exp <= sh->now;
}

int kr_shard_drop_if_expired(kr_shard *sh, uint32_t pos)
{
  uint64_t s = sh->tab[pos];
  kr_item it;
  item_parse(loc_ptr(sh, s & LOC_MASK), (uint32_t)(s >> 16) & IDX_MAX, &it);
  if (!kr_shard_expired(sh, it.exp))
    return 0;
  kr_shard_delete(sh, pos, &it);
  count_drop(sh, it.cid, DROP_EXPIRED);
  return 1;
}

void kr_shard_insert(kr_shard *sh, uint64_t h, uint64_t loc)
{
  index_place(sh->tab, sh->cap, (h >> FP_SHIFT) << FP_SHIFT | loc);
  sh->count++;
}

void kr_shard_replace(kr_shard *sh, uint32_t pos, uint64_t loc)
{
  sh->tab[pos] = (sh->tab[pos] & ~LOC_MASK) | loc;
}

/* --- ghost: fingerprints of items dropped from SMALL ---------------------------- */

int kr_shard_ghost_has(kr_shard *sh, uint64_t h)
{
  if (!sh->ghost)
    return 0;
  return sh->ghost[(h >> 6) & sh->gmask] == ((uint32_t)(h >> 32) | 1);
}

static void ghost_put(kr_shard *sh, uint64_t h)
{
  uint32_t want = 64;
  while (want < sh->count && want < (1u << 24))
    want *= 2;
  if (!sh->ghost || want > (sh->gmask + 1) * 2) {
    uint32_t *g = calloc(want, sizeof *g);
    if (!g)
      return;
    if (sh->ghost)
      charge(sh, -(int64_t)((sh->gmask + 1) * sizeof *g));
    free(sh->ghost);
    sh->ghost = g;
    sh->gmask = want - 1;
    charge(sh, (int64_t)(want * sizeof *g));
  }
  sh->ghost[(h >> 6) & sh->gmask] = (uint32_t)(h >> 32) | 1;
}

/* --- items -------------------------------------------------------------------- */

static void seg_note_exp(kr_seg *g, uint64_t exp)
{
  uint64_t e = exp ? exp : UINT64_MAX;
  if (e > g->max_exp)
    g->max_exp = e;
}

uint64_t kr_shard_append(kr_shard *sh, kr_seg *dst, uint64_t cid,
                         const void *key, size_t klen, const void *val,
                         size_t vlen, uint64_t exp, unsigned freq)
{
  uint8_t *p = dst->data + dst->used;
  size_t o = 0;
  p[o++] = (uint8_t)(freq & KR_ITEM_FREQ);
  o += varint_put(p + o, cid);
  o += varint_put(p + o, klen);
  o += varint_put(p + o, vlen);
  exp_put(p + o, exp);
  o += 5;
  if (klen)
    memcpy(p + o, key, klen);
  if (vlen)
    memcpy(p + o + klen, val, vlen);
  uint32_t size = (uint32_t)(o + klen + vlen);
  uint64_t loc = (uint64_t)dst->idx << 16 | dst->used;
  dst->used += size;
  dst->live_bytes += size;
  dst->live_items++;
  seg_note_exp(dst, exp);
  account(sh, cid, size, 1);
  return loc;
}

static void note_sparse(kr_shard *sh, kr_seg *g)
{
  if (g->live_items == 0 ||
      (g != sh->q[g->queue].open && !g->dedicated && g->live_bytes * 4 <= g->used))
    sh->pending = g->idx;
}

static void kill_in(kr_shard *sh, kr_seg *g, kr_item *it, int track)
{
  it->p[0] |= KR_ITEM_DEAD;
  g->live_bytes -= it->size;
  g->live_items--;
  account(sh, it->cid, it->size, -1);
  if (track)
    note_sparse(sh, g);
}

void kr_shard_kill(kr_shard *sh, kr_item *it)
{
  kill_in(sh, sh->segs[it->seg], it, 1);
}

void kr_shard_delete(kr_shard *sh, uint32_t pos, kr_item *it)
{
  index_del(sh, pos);
  kr_shard_kill(sh, it);
}

void kr_shard_set_exp(kr_shard *sh, uint32_t pos, kr_item *it, uint64_t exp)
{
  (void)pos;
  exp_put(it->expp, exp);
  it->exp = exp;
  seg_note_exp(sh->segs[it->seg], exp);
}

/* A dedicated segment reserved for an item that was finally not stored. */
void kr_shard_discard(kr_shard *sh, kr_seg *dst)
{
  if (dst->dedicated && dst->used == 0)
    seg_free(sh, dst);
}

/* --- moving and dropping items ---------------------------------------------------- */

static inline uint64_t item_loc(kr_shard *sh, kr_item *it)
{
  return (uint64_t)it->seg << 16 | (uint64_t)(it->p - sh->segs[it->seg]->data);
}

/* The open segment of queue q with room for size bytes, opened without
 * eviction: moves make room overall, so they may overshoot for a moment. */
static kr_seg *open_for_move(kr_shard *sh, int q, uint32_t size)
{
  kr_seg *o = sh->q[q].open;
  if (o && o->cap - o->used >= size)
    return o;
  if (o) {
    sh->q[q].open = NULL;
    note_sparse(sh, o);
  }
  uint32_t cap = seg_size(sh, size);
  o = seg_new(sh, q, cap > size ? cap : size, 0);
  sh->q[q].open = o;
  return o;
}

/* Copies a live item to the open segment of q with new flags and points its
 * index slot there. The old copy becomes dead bytes. */
static int move_item(kr_shard *sh, kr_item *it, uint64_t fp, int q, unsigned freq)
{
  uint64_t loc = item_loc(sh, it);
  uint32_t pos = index_find_loc(sh, fp, loc);
  if (pos == UINT32_MAX)
    return -1;
  kr_seg *d = open_for_move(sh, q, it->size);
  if (!d)
    return -1;
  memcpy(d->data + d->used, it->p, it->size);
  d->data[d->used] = (uint8_t)(freq & KR_ITEM_FREQ);
  kr_shard_replace(sh, pos, (uint64_t)d->idx << 16 | d->used);
  d->used += it->size;
  d->live_bytes += it->size;
  d->live_items++;
  seg_note_exp(d, it->exp);
  kr_seg *g = sh->segs[it->seg];
  it->p[0] |= KR_ITEM_DEAD;
  g->live_bytes -= it->size;
  g->live_items--;
  return 0;
}

static void drop_item(kr_shard *sh, kr_item *it, uint64_t fp, int why, int track)
{
  uint32_t pos = index_find_loc(sh, fp, item_loc(sh, it));
  if (pos != UINT32_MAX)
    index_del(sh, pos);
  count_drop(sh, it->cid, why);
  kill_in(sh, sh->segs[it->seg], it, track);
}

static int drop_reason(kr_shard *sh, kr_item *it)
{
  if (kr_shard_expired(sh, it->exp))
    return DROP_EXPIRED;
  if (!kr_cid_live(sh->store, it->cid))
    return DROP_GARBAGE;
  return -1;
}

/* One live item of a segment being evicted from queue `from`. */
static void settle(kr_shard *sh, kr_item *it, int from)
{
  uint64_t h = item_hash(sh, it);
  unsigned f = it->p[0] & KR_ITEM_FREQ;
  int why = drop_reason(sh, it);
  if (why >= 0) {
    drop_item(sh, it, h >> FP_SHIFT, why, 0);
  } else if (f == 0) {
    if (from == KR_SMALL)
      ghost_put(sh, h);
    drop_item(sh, it, h >> FP_SHIFT, DROP_EVICTED, 0);
  } else if (move_item(sh, it, h >> FP_SHIFT, KR_MAIN, from == KR_SMALL ? 0 : f - 1) < 0) {
    drop_item(sh, it, h >> FP_SHIFT, DROP_EVICTED, 0);
  }
}

/* A surviving large item changes queue without being copied. */
static void settle_dedicated(kr_shard *sh, kr_seg *g, int from)
{
  kr_item it;
  item_parse(g->data, g->idx, &it);
  if (g->used && !(it.p[0] & KR_ITEM_DEAD)) {
    unsigned f = it.p[0] & KR_ITEM_FREQ;
    if (drop_reason(sh, &it) < 0 && f > 0) {
      it.p[0] = (uint8_t)(from == KR_SMALL ? 0 : f - 1);
      q_unlink(&sh->q[from], g);
      g->queue = KR_MAIN;
      q_link(&sh->q[KR_MAIN], g);
      return;
    }
    settle(sh, &it, from);
  }
  seg_free(sh, g);
}

static int evict_seg(kr_shard *sh)
{
  kr_queue *sq = &sh->q[KR_SMALL], *mq = &sh->q[KR_MAIN];
  int from;
  if (!sq->oldest && !mq->oldest)
    return 0;
  if (!mq->oldest)
    from = KR_SMALL;
  else if (!sq->oldest)
    from = KR_MAIN;
  else
    from = sq->bytes * 10 >= sq->bytes + mq->bytes ? KR_SMALL : KR_MAIN;
  kr_seg *g = sh->q[from].oldest;
  if (sh->q[from].open == g)
    sh->q[from].open = NULL;
  if (g->dedicated) {
    settle_dedicated(sh, g, from);
    return 1;
  }
  for (uint32_t off = 0; off < g->used;) {
    kr_item it;
    item_parse(g->data + off, g->idx, &it);
    off += it.size;
    if (!(it.p[0] & KR_ITEM_DEAD))
      settle(sh, &it, from);
  }
  seg_free(sh, g);
  return 1;
}

/* Evicts from a shard over its fair share, without waiting for its lock. */
static int steal(kr_shard *sh, uint64_t fair)
{
  kr_store *s = sh->store;
  for (unsigned k = 0; k < KR_NSHARDS; k++) {
    unsigned v = atomic_fetch_add_explicit(&s->victim, 1, memory_order_relaxed);
    kr_shard *o = &s->shards[v % KR_NSHARDS];
    if (o == sh || atomic_load_explicit(&o->bytes, memory_order_relaxed) <= fair)
      continue;
    if (!kr_lock_try(&o->lock))
      continue;
    o->now = sh->now;
    o->slack = sh->slack;
    int r = evict_seg(o);
    kr_lock_release(&o->lock);
    if (r)
      return 1;
  }
  return 0;
}

/* Evicts until `need` more bytes fit in the budget, or nothing is left to
 * evict (then the store overshoots rather than refuse the write). */
static void ensure_budget(kr_shard *sh, uint64_t need)
{
  kr_store *s = sh->store;
  uint64_t max = atomic_load_explicit(&s->max_memory, memory_order_relaxed);
  if (!max)
    return;
  uint64_t fair = max / KR_NSHARDS;
  for (unsigned guard = 0; guard < (1u << 20); guard++) {
    if (atomic_load_explicit(&s->used, memory_order_relaxed) + need <= max)
      return;
    if (atomic_load_explicit(&sh->bytes, memory_order_relaxed) < fair && steal(sh, fair))
      continue;
    if (!evict_seg(sh))
      return;
  }
}

int kr_shard_reserve(kr_shard *sh, int q, size_t size, kr_seg **dst)
{
  if ((uint64_t)(sh->count + 1) * MAX_LOAD_DEN > (uint64_t)sh->cap * MAX_LOAD_NUM) {
    uint32_t ncap = sh->cap + sh->cap / 2;
    ensure_budget(sh, (uint64_t)(ncap - sh->cap) * 8);
    if (index_resize(sh, ncap) < 0)
      return KURA_ENOMEM;
  }
  if (size > seg_limit(sh) / 8) {
    ensure_budget(sh, SEG_OVERHEAD + size);
    *dst = seg_new(sh, q, (uint32_t)size, 1);
    return *dst ? 0 : KURA_ENOMEM;
  }
  for (int tries = 0;; tries++) {
    kr_seg *o = sh->q[q].open;
    if (o && o->cap - o->used >= size) {
      *dst = o;
      return 0;
    }
    uint32_t segsz = seg_size(sh, size);
    if (tries == 0) {
      ensure_budget(sh, SEG_OVERHEAD + segsz);
      continue;
    }
    if (o) {
      sh->q[q].open = NULL;
      if (o->live_items == 0)
        seg_free(sh, o);
    }
    if (!(sh->q[q].open = seg_new(sh, q, segsz, 0)))
      return KURA_ENOMEM;
  }
}

/* --- compaction and sweep ------------------------------------------------------------ */

static void compact(kr_shard *sh, kr_seg *g)
{
  for (uint32_t off = 0; off < g->used;) {
    kr_item it;
    item_parse(g->data + off, g->idx, &it);
    off += it.size;
    if (it.p[0] & KR_ITEM_DEAD)
      continue;
    if (move_item(sh, &it, item_fp(sh, &it), g->queue, it.p[0] & KR_ITEM_FREQ) < 0)
      return;
  }
  seg_free(sh, g);
}

void kr_shard_maintain(kr_shard *sh)
{
  uint32_t idx = sh->pending;
  sh->pending = 0;
  if (!idx || idx > sh->nsegs || !sh->segs[idx])
    return;
  kr_seg *g = sh->segs[idx];
  if (g->live_items == 0)
    seg_free(sh, g); /* an empty open segment too: the next write opens one */
  else if (g != sh->q[g->queue].open && !g->dedicated && g->live_bytes * 4 <= g->used)
    compact(sh, g);
}

/* Frees an oldest segment whose items have all expired. */
static size_t drop_segment(kr_shard *sh, kr_seg *g)
{
  size_t n = 0;
  for (uint32_t off = 0; off < g->used;) {
    kr_item it;
    item_parse(g->data + off, g->idx, &it);
    off += it.size;
    if (it.p[0] & KR_ITEM_DEAD)
      continue;
    int why = drop_reason(sh, &it);
    drop_item(sh, &it, item_fp(sh, &it), why < 0 ? DROP_EXPIRED : why, 0);
    n++;
  }
  seg_free(sh, g);
  return n;
}

size_t kr_shard_sweep(kr_shard *sh, size_t budget)
{
  size_t removed = 0, work = 0;
  for (int q = 0; q < 2; q++) {
    kr_seg *g;
    while ((g = sh->q[q].oldest) && g->used && g->max_exp <= sh->now &&
           work + g->live_items + 1 <= budget) {
      work += g->live_items + 1;
      removed += drop_segment(sh, g);
    }
  }
  uint32_t i = sh->sweep_pos;
  while (work < budget && sh->count) {
    if (i >= sh->cap)
      i = 0;
    uint64_t s = sh->tab[i];
    work++;
    if (s) {
      kr_item it;
      item_parse(loc_ptr(sh, s & LOC_MASK), (uint32_t)(s >> 16) & IDX_MAX, &it);
      int why = drop_reason(sh, &it);
      if (why >= 0) {
        drop_item(sh, &it, s >> FP_SHIFT, why, 1);
        kr_shard_maintain(sh);
        removed++;
        continue; /* a later slot may have shifted into i */
      }
    }
    i++;
  }
  sh->sweep_pos = i;
  return removed;
}

/* --- shard life ------------------------------------------------------------------ */

int kr_shard_init(kr_shard *sh, kr_store *s)
{
  memset(sh, 0, sizeof *sh);
  sh->store = s;
  sh->cap = 20;
  sh->tab = calloc(sh->cap, sizeof *sh->tab);
  if (!sh->tab)
    return KURA_ENOMEM;
  charge(sh, (int64_t)(sh->cap * sizeof *sh->tab));
  return 0;
}

void kr_shard_free(kr_shard *sh)
{
  for (uint32_t i = 1; i <= sh->nsegs && i < sh->segcap; i++)
    if (sh->segs[i] && !sh->segs[i]->pooled)
      free(sh->segs[i]);
  free(sh->segs);
  free(sh->freeidx);
  free(sh->tab);
  free(sh->ghost);
  free(sh->cst);
}
