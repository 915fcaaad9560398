/* The embedded store's engine for one shard: items packed in log segments,
 * an open-addressing index of 8-byte slots, S3-FIFO eviction over the
 * segments, compaction of mostly dead segments, and the expiry sweep.
 * Every function here runs with the shard's lock held and its sequence
 * counter odd (store_int.h), except kr_pm_zero.
 *
 * Item layout in a segment (no alignment, no per-item pointers, no flags;
 * KR_SEG_PAD bytes follow the data, so short reads past an item stay inside):
 *   cid varint | klen varint | vlen varint | expiry (5 bytes LE, ms, 0 =
 *   never) | key | value
 * An item is live while an index slot points at it; the slot also holds its
 * hit frequency, which readers raise without the lock. Nothing a reader
 * writes is in a segment, so a writer reads item bytes plainly.
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
  return varint_len(cid) + varint_len(klen) + varint_len(vlen) + 5 + klen + vlen;
}

void kr_pm_zero(uint64_t *w, size_t words)
{
  for (size_t i = 0; i < words; i++)
    pm_st(&w[i], 0);
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
  kr_cstat *c = kr_shard_cst_fast(sh, kr_cid_slot(cid));
  if (!c)
    return;
  c->items += (uint64_t)(int64_t)sign;
  c->bytes += (uint64_t)((int64_t)sign * (int64_t)(size + 8));
}

static void count_drop(kr_shard *sh, uint64_t cid, int why)
{
  kr_cstat *c = kr_cid_live(sh->store, cid)
                    ? kr_shard_cst(sh, kr_cid_slot(cid))
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

/* The readers' segment map, grown to n entries: a new array with the
 * entries copied, then published. A reader may still read the old one, and
 * follows what it reads there before it checks the shard's counter, so an
 * old map is never freed or reused until the shard is: every map only ever
 * holds its own size in [0], and 0 or a segment block's address beyond. */
static int smap_grow(kr_shard *sh, uint32_t n)
{
  if (sh->smap && sh->nretired == sh->capretired) {
    uint32_t nc = sh->capretired ? sh->capretired * 2 : 8;
    uint64_t **r = realloc(sh->retired, nc * sizeof *r);
    if (!r)
      return KURA_ENOMEM;
    sh->retired = r;
    sh->capretired = nc;
  }
  uint64_t *m = calloc(n, sizeof *m);
  if (!m)
    return KURA_ENOMEM;
  pm_st(&m[0], n);
  for (uint32_t i = 1; i < sh->segcap; i++)
    pm_st(&m[i], pm_ld(&sh->smap[i]));
  if (sh->smap)
    sh->retired[sh->nretired++] = sh->smap;
  __atomic_store_n(&sh->smap, m, __ATOMIC_RELEASE);
  charge(sh, (int64_t)n * 8);
  return 0;
}

static int seg_table_grow(kr_shard *sh)
{
  uint32_t n = sh->segcap ? sh->segcap * 2 : 64;
  kr_seg **t = realloc(sh->segs, n * sizeof *t);
  if (!t)
    return KURA_ENOMEM;
  memset(t + sh->segcap, 0, (n - sh->segcap) * sizeof *t);
  sh->segs = t;
  if (smap_grow(sh, n) < 0)
    return KURA_ENOMEM; /* segs is larger, segcap not: the next call tries again */
  charge(sh, (int64_t)((n - sh->segcap) * sizeof *t));
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

static void seg_number_back(kr_shard *sh, uint32_t idx)
{
  if (idx == sh->nsegs)
    sh->nsegs--;
  else
    sh->freeidx[sh->nfree++] = idx; /* it came from there: room exists */
}

/* A dedicated segment's data is malloc'd, and read only under the lock (its
 * map entry says so); a normal one's is a pool block, which readers may
 * read. The map needs the data aligned to SMAP_ALIGN: a dedicated one takes
 * that much more from malloc (posix_memalign left glibc's heap fragmented:
 * 1,500 sets of 1 MB under an 8 MB budget peaked at 40 MB of RSS, against
 * 11 MB with malloc). */
static kr_seg *seg_new(kr_shard *sh, int q, uint32_t cap, int dedicated)
{
  uint32_t idx = seg_number(sh);
  if (!idx)
    return NULL;
  kr_seg *g = calloc(1, sizeof *g);
  size_t got = (size_t)cap + KR_SEG_PAD;
  uint8_t *d = NULL;
  if (g && dedicated && (g->raw = malloc(got + SMAP_ALIGN)))
    d = (uint8_t *)(((uintptr_t)g->raw + SMAP_ALIGN - 1) & ~(uintptr_t)(SMAP_ALIGN - 1));
  else if (g && !dedicated)
    d = kr_pool_alloc(&sh->store->pool, got, &got);
  if (!d) {
    free(g);
    seg_number_back(sh, idx);
    return NULL;
  }
  if (dedicated)
    memset(d + cap, 0, KR_SEG_PAD);
  g->data = d;
  g->bsize = (uint32_t)got;
  g->idx = idx;
  g->cap = cap;
  g->queue = (uint8_t)q;
  g->dedicated = (uint8_t)dedicated;
  sh->segs[idx] = g;
  pm_st(&sh->smap[idx], (uint64_t)(uintptr_t)d | (dedicated ? SMAP_LOCKED : (uint64_t)__builtin_ctzll(got)));
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
  pm_st(&sh->smap[g->idx], 0);
  sh->freeidx[sh->nfree++] = g->idx;
  charge(sh, -(int64_t)(SEG_OVERHEAD + g->cap));
  if (g->dedicated)
    free(g->raw);
  else
    kr_pool_free(&sh->store->pool, g->data, g->bsize);
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
  return sz - KR_SEG_PAD; /* pool blocks are powers of 2 */
}

/* Data bytes of a new open segment: small while the shard is small (a
 * nearly empty store holds little), the limit once it holds 4 of them. */
static uint32_t seg_size(kr_shard *sh, size_t item)
{
  const uint32_t head = KR_SEG_PAD;
  uint32_t limit = seg_limit(sh) + head;
  uint64_t held = atomic_load_explicit(&sh->bytes, memory_order_relaxed);
  uint32_t sz = limit < 4096 ? limit : 4096;
  while (sz < limit && ((uint64_t)sz * 4 <= held || sz - head < item * 4))
    sz *= 2;
  return sz - head;
}

/* --- index ------------------------------------------------------------------- */

/* Slots and hints are read by readers (and hints raised), so every access
 * to them is atomic (pm_ld, pm_st, kr_hint_*). An empty slot's hint is 0
 * (index_del clears it), or was raised by a stale reader: a hint either
 * way, so a new item's 0 is not written. */
static void index_place(uint64_t *t, uint8_t *hint, uint32_t cap, uint64_t slot, unsigned f)
{
  uint32_t i = home(slot >> FP_SHIFT, cap);
  while (pm_ld(&t[i]))
    if (++i == cap)
      i = 0;
  pm_st(&t[i], slot);
  if (f)
    kr_hint_set(hint, i, f);
}

/* A table of cap slots from the index pool, empty. */
static uint64_t *index_new(kr_shard *sh, uint32_t cap, size_t *got)
{
  uint64_t *b = kr_pool_alloc(&sh->store->ipool, (size_t)cap * 8, got);
  if (b)
    kr_pm_zero(b, cap);
  return b;
}

/* The hints of a table of cap slots, all 0 (4 a byte). */
static uint8_t *hint_new(kr_shard *sh, uint32_t cap, size_t *got)
{
  size_t words = ((size_t)cap + 31) / 32;
  uint64_t *b = kr_pool_alloc(&sh->store->hpool, words * 8, got);
  if (b)
    kr_pm_zero(b, words);
  return (uint8_t *)b;
}

/* Makes a table and its hints the shard's, for readers too (a reader reads
 * cap apart, so the spans bound what it reads). */
static void index_publish(kr_shard *sh, uint64_t *t, size_t tbytes, uint8_t *hint,
                          size_t hbytes, uint32_t cap)
{
  sh->tab = t;
  sh->hint = hint;
  sh->tab_bytes = tbytes;
  sh->hint_bytes = hbytes;
  __atomic_store_n(&sh->tabw, kr_span(t, tbytes), __ATOMIC_RELEASE);
  __atomic_store_n(&sh->hintw, kr_span(hint, hbytes), __ATOMIC_RELEASE);
  __atomic_store_n(&sh->cap, cap, __ATOMIC_RELAXED);
}

/* The new table is published while readers may still be in the old one,
 * which goes back to the index pool and stays readable (store_pool.c). */
static int index_resize(kr_shard *sh, uint32_t ncap)
{
  size_t got, hgot;
  uint64_t *t = index_new(sh, ncap, &got);
  uint8_t *hint = t ? hint_new(sh, ncap, &hgot) : NULL;
  if (!hint) {
    if (t)
      kr_pool_free(&sh->store->ipool, t, got);
    return KURA_ENOMEM;
  }
  for (uint32_t i = 0; i < sh->cap; i++) {
    uint64_t s = pm_ld(&sh->tab[i]);
    if (s)
      index_place(t, hint, ncap, s, kr_hint_get(sh->hint, i));
  }
  uint64_t *old = sh->tab;
  uint8_t *oldh = sh->hint;
  size_t oldb = sh->tab_bytes, oldhb = sh->hint_bytes;
  charge(sh, ((int64_t)got + (int64_t)hgot) - ((int64_t)oldb + (int64_t)oldhb));
  index_publish(sh, t, got, hint, hgot, ncap);
  kr_pool_free(&sh->store->ipool, old, oldb);
  kr_pool_free(&sh->store->hpool, oldh, oldhb);
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
    uint64_t s = pm_ld(&t[j]);
    if (!s)
      break;
    uint32_t k = home(s >> FP_SHIFT, cap);
    if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
      continue;
    pm_st(&t[i], s);
    kr_hint_set(sh->hint, i, kr_hint_get(sh->hint, j));
    i = j;
  }
  pm_st(&t[i], 0);
  kr_hint_set(sh->hint, i, 0);
  sh->count--;
}

/* The slot pointing at loc, or UINT32_MAX: an item is live while one does. */
static uint32_t index_find_loc(kr_shard *sh, uint64_t fp, uint64_t loc)
{
  uint32_t cap = sh->cap, i = home(fp, cap);
  for (;;) {
    uint64_t s = pm_ld(&sh->tab[i]);
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
  kr_seeds(sh->store, kr_cid_slot(it->cid), seed);
  return kr_hash(it->key, it->klen, seed);
}

static inline uint64_t item_loc(kr_shard *sh, kr_item *it)
{
  return (uint64_t)it->seg << 16 | (uint64_t)(it->p - sh->segs[it->seg]->data);
}

/* The index slot of a live item, UINT32_MAX for a dead one. */
static uint32_t item_pos(kr_shard *sh, kr_item *it, uint64_t h)
{
  return index_find_loc(sh, h >> FP_SHIFT, item_loc(sh, it));
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
  uint64_t s = pm_ld(&sh->tab[pos]);
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
  index_place(sh->tab, sh->hint, sh->cap, (h >> FP_SHIFT) << FP_SHIFT | loc, 0);
  sh->count++;
}

void kr_shard_replace(kr_shard *sh, uint32_t pos, uint64_t loc, unsigned freq)
{
  uint64_t fp = pm_ld(&sh->tab[pos]) >> FP_SHIFT;
  pm_st(&sh->tab[pos], fp << FP_SHIFT | loc);
  kr_hint_set(sh->hint, pos, freq);
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
                         size_t vlen, uint64_t exp)
{
  uint8_t *p = dst->data + dst->used;
  size_t o = varint_put(p, cid);
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

/* The item's bytes are dead once no slot points at them: only the counts
 * change. */
static void kill_in(kr_shard *sh, kr_seg *g, kr_item *it, int track)
{
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

void kr_shard_set_exp(kr_shard *sh, kr_item *it, uint64_t exp)
{
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

/* Copies the live item of slot pos to the open segment of q, points the
 * slot there with frequency freq. The old copy becomes dead bytes. */
static int move_item(kr_shard *sh, kr_item *it, uint32_t pos, int q, unsigned freq)
{
  kr_seg *d = open_for_move(sh, q, it->size);
  if (!d)
    return -1;
  memcpy(d->data + d->used, it->p, it->size);
  kr_shard_replace(sh, pos, (uint64_t)d->idx << 16 | d->used, freq);
  d->used += it->size;
  d->live_bytes += it->size;
  d->live_items++;
  seg_note_exp(d, it->exp);
  kr_seg *g = sh->segs[it->seg];
  g->live_bytes -= it->size;
  g->live_items--;
  return 0;
}

static void drop_item(kr_shard *sh, kr_item *it, uint32_t pos, int why, int track)
{
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

/* One item of a segment being evicted from queue `from` (a dead one is
 * skipped). */
static void settle(kr_shard *sh, kr_item *it, int from)
{
  uint64_t h = item_hash(sh, it);
  uint32_t pos = item_pos(sh, it, h);
  if (pos == UINT32_MAX)
    return;
  unsigned f = kr_hint_get(sh->hint, pos);
  int why = drop_reason(sh, it);
  if (why >= 0) {
    drop_item(sh, it, pos, why, 0);
  } else if (f == 0) {
    if (from == KR_SMALL)
      ghost_put(sh, h);
    drop_item(sh, it, pos, DROP_EVICTED, 0);
  } else if (move_item(sh, it, pos, KR_MAIN, from == KR_SMALL ? 0 : f - 1) < 0) {
    drop_item(sh, it, pos, DROP_EVICTED, 0);
  }
}

/* A surviving large item changes queue without being copied. */
static void settle_dedicated(kr_shard *sh, kr_seg *g, int from)
{
  kr_item it;
  item_parse(g->data, g->idx, &it);
  uint32_t pos = g->live_items ? item_pos(sh, &it, item_hash(sh, &it)) : UINT32_MAX;
  if (pos != UINT32_MAX) {
    unsigned f = kr_hint_get(sh->hint, pos);
    if (drop_reason(sh, &it) < 0 && f > 0) {
      kr_shard_replace(sh, pos, item_loc(sh, &it), from == KR_SMALL ? 0 : f - 1);
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
  for (uint32_t off = 0; off < g->used && g->live_items;) {
    kr_item it;
    item_parse(g->data + off, g->idx, &it);
    off += it.size;
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
    kr_seq_open(o);
    o->now = sh->now;
    o->slack = sh->slack;
    int r = evict_seg(o);
    kr_shard_unlock(o);
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
  for (uint32_t off = 0; off < g->used && g->live_items;) {
    kr_item it;
    item_parse(g->data + off, g->idx, &it);
    off += it.size;
    uint32_t pos = item_pos(sh, &it, item_hash(sh, &it));
    if (pos == UINT32_MAX)
      continue;
    if (move_item(sh, &it, pos, g->queue, kr_hint_get(sh->hint, pos)) < 0)
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
  for (uint32_t off = 0; off < g->used && g->live_items;) {
    kr_item it;
    item_parse(g->data + off, g->idx, &it);
    off += it.size;
    uint32_t pos = item_pos(sh, &it, item_hash(sh, &it));
    if (pos == UINT32_MAX)
      continue;
    int why = drop_reason(sh, &it);
    drop_item(sh, &it, pos, why < 0 ? DROP_EXPIRED : why, 0);
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
    uint64_t s = pm_ld(&sh->tab[i]);
    work++;
    if (s) {
      kr_item it;
      item_parse(loc_ptr(sh, s & LOC_MASK), (uint32_t)(s >> 16) & IDX_MAX, &it);
      int why = drop_reason(sh, &it);
      if (why >= 0) {
        drop_item(sh, &it, i, why, 1);
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
  size_t got, hgot;
  uint32_t cap = 32; /* a 256-byte block */
  uint64_t *t;
  uint8_t *hint;
  if (seg_table_grow(sh) < 0 || !(t = index_new(sh, cap, &got)) ||
      !(hint = hint_new(sh, cap, &hgot)))
    return KURA_ENOMEM;
  index_publish(sh, t, got, hint, hgot, cap);
  charge(sh, (int64_t)(got + hgot));
  return 0;
}

/* Index tables and normal segments' data go with the pools. */
void kr_shard_free(kr_shard *sh)
{
  for (uint32_t i = 0; i < sh->nretired; i++)
    free(sh->retired[i]);
  free(sh->retired);
  free(sh->smap);
  for (uint32_t i = 1; i <= sh->nsegs && i < sh->segcap; i++) {
    kr_seg *g = sh->segs[i];
    if (g && g->dedicated)
      free(g->raw);
    free(g);
  }
  free(sh->segs);
  free(sh->freeidx);
  free(sh->ghost);
  free(sh->cst);
}
