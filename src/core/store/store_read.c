/* The embedded store's gets: kr_store_get, kr_store_exists and
 * kr_store_get_batch read a shard without taking its lock (see "optimistic
 * reads" below), and fall back to the locked path for what they leave: an
 * item near its expiry, one in a dedicated segment, a shard busy with
 * writes. Their hits and misses are counted per thread (kr_stripe); a hit
 * raises its slot's frequency hint.
 */
#include <endian.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/store_int.h"

#define BATCH_STACK 512 /* a batch's value buffer on the stack; larger ones are malloc'd */

/* --- the locked path ----------------------------------------------------------- */

/* A hit under the lock: its frequency (lazy promotion, no list move) and
 * the counters. */
static void count_get(kr_op *o, kr_cache *c, int hit, uint32_t pos)
{
  kr_cstat *st = kr_shard_cst_fast(o->sh, c->slot);
  if (hit) {
    kr_hint_bump(o->sh->hint, pos);
    o->sh->hits++;
    if (st)
      st->hits++;
  } else {
    o->sh->misses++;
    if (st)
      st->misses++;
  }
}

/* Copies a value of n bytes out. Up to 256 bytes, when cap allows, it goes
 * in whole 16-byte blocks: the stores' addresses are then buf + 16i, which
 * the CPU knows before the item arrives from memory. memcpy's last store
 * ends at buf + n, an address that waits for the item, and by all signs that
 * holds back the loads of the caller's next get: store_speed's gets ran
 * 3.3-3.8 M/s with memcpy, 4.0-4.2 with the blocks (alternated). The blocks
 * read up to 15 bytes past the value (segments keep KR_SEG_PAD bytes after
 * their data) and write up to 15 past it in buf, within cap. */
static inline void copy_value(uint8_t *buf, size_t cap, const uint8_t *val, size_t n)
{
  if (n <= 256 && ((n + 15) & ~(size_t)15) <= cap) {
    for (size_t i = 0; i < n; i += 16) {
      uint8_t b[16];
      memcpy(b, val + i, 16);
      memcpy(buf + i, b, 16);
    }
  } else if (n) {
    memcpy(buf, val, n);
  }
}

/* A get under the lock: for what the lock-free read leaves (an item near or
 * past its expiry, one in a dedicated segment, a shard busy with writes). */
static __attribute__((noinline)) int get_locked(kr_cache *c, const void *key, size_t klen,
                                                void *buf, size_t cap, size_t *vlen)
{
  kr_op o;
  int r = kr_op_begin(c, key, klen, 0, &o);
  if (r)
    return r;
  kr_item it;
  uint32_t pos;
  if (!kr_shard_find(o.sh, o.h, o.cid, key, klen, &pos, &it)) {
    count_get(&o, c, 0, 0);
    return kr_op_end(&o, KURA_MISS);
  }
  *vlen = it.vlen;
  if (it.vlen > cap)
    return kr_op_end(&o, KURA_ERANGE); /* counted when the caller retries */
  copy_value(buf, cap, it.val, it.vlen);
  count_get(&o, c, 1, pos);
  return kr_op_end(&o, KURA_HIT);
}

/* --- optimistic reads -------------------------------------------------------------
 * A get takes no lock and writes nothing a writer writes: it reads the
 * shard's sequence counter, looks the key up, copies the value into the
 * caller's buffer, and keeps the result only if the counter still has the
 * same even value (writers keep it odd while they change the shard). Gets
 * of several threads then share nothing but what they read, and a batch
 * takes no lock per key.
 *
 * What a reader reads may be stale: a table, map or segment freed and
 * reused meanwhile. It stays mapped (store_pool.c; old segment maps are
 * kept), every table and map carries its own size, a map holds only 0 or
 * block addresses with their sizes, and each offset is checked against the
 * size of what it points into before it is read at: so a stale read stays
 * inside memory of the store and is thrown away at the final check.
 *
 * A hit raises its slot's frequency hint (store_int.h) with plain byte
 * stores, while it is below the maximum (a hot item stops writing). A
 * compare-and-swap on the slot itself, KR_HEAT = 16 hits at a time, cost
 * single gets 10-15% (store_speed, 10 alternated runs: 0.41x against 0.47x
 * of the inline table per CPU-second without it). */

enum { RD_NOMATCH = -1, RD_MISS = KURA_MISS, RD_HIT = KURA_HIT, RD_RANGE = 2, RD_LOCK = 3, RD_AGAIN = 4 };

/* A lock-free read of one key. */
typedef struct rd {
  kr_shard *sh;
  uint64_t h;
  uint64_t head;           /* the first bytes of the key's item: cid and klen varints */
  uint64_t head_mask;      /* covers them; 0: they take more than 8 bytes */
  uint64_t cid_head;       /* kr_cid_head of the cache's generation */
  uint64_t expire_below;   /* an expiry below this needs the locked path */
  size_t head_len;         /* bytes of head */
  const uint8_t *key;
  size_t klen;
  uint8_t *buf;            /* where the value goes; NULL: only whether it is there */
  size_t cap;
  size_t vlen;             /* of a hit or RD_RANGE */
  uint8_t *hint;           /* the table's hints, their bytes, a hit's slot */
  uint64_t hbytes;
  uint32_t hpos;
  uint32_t s0;             /* the counter the pass started at */
  uint32_t tcap, pos;      /* the table's slots; where the search goes on */
  uint64_t *tab;
  const uint64_t *smap;
  uint64_t nseg;           /* entries of smap */
  const uint8_t *p;        /* the located item and the data left from it */
  uint64_t end;
  int staged;              /* a batch's rd_locate, from rd_stage */
} rd;

/* Item bytes are read plainly, in rd_item alone: shifting them out of
 * aligned atomic words cost a get more than half its speed (a test harness,
 * 1M keys), as every instruction on a get's path takes room the CPU needs
 * to run ahead into the next get. C11 has no racy byte copy (C++'s proposed
 * atomic_load_per_byte_memcpy would be one); what rd_item returns is used
 * only once the counter has said no writer was there. Every length and
 * offset it depends on is loaded exactly once (volatile) and checked against
 * the segment's block before anything past it is read, so a torn or stale
 * item can only be thrown away. ThreadSanitizer is told not to look in
 * rd_item (its build makes it a call, as an inlined body would be checked
 * as part of its caller, and copies without memcpy, whose interceptor would
 * look); writers write item bytes plainly under the lock. */
#if defined(__SANITIZE_THREAD__)
#define RD_RACY __attribute__((no_sanitize("thread"), noinline))
#define RD_NO_MEMCPY 1
#else
#define RD_RACY inline __attribute__((always_inline))
#define RD_NO_MEMCPY 0
#endif

struct __attribute__((packed)) rd_u64 {
  uint64_t v;
};
#define RD_ONCE(p) le64toh(((const volatile struct rd_u64 *)(const void *)(p))->v)
#define RD64(p) __extension__({ uint64_t v_; __builtin_memcpy(&v_, (p), 8); v_; })

/* A header rd_item's one compare does not take (a key of 128 bytes or
 * more, a value of 16 KiB or more): *o, *vlen, *exp, or 0 when it is not
 * the key's. */
static RD_RACY int rd_head_slow(const rd *r, const uint8_t *p, size_t *o, uint64_t *vlen,
                                uint64_t *exp)
{
  uint8_t hb[48] = {0};
  uint64_t w[3] = {RD_ONCE(p), RD_ONCE(p + 8), RD_ONCE(p + 16)}, cid, klen;
  __builtin_memcpy(hb, w, sizeof w);
  *o = item_head(hb, &cid, &klen, vlen, exp);
  return kr_cid_head(cid) == r->cid_head && klen == r->klen;
}

/* The value into buf: in 16-byte blocks when cap allows (see copy_value),
 * which read up to 15 bytes past it (segments keep KR_SEG_PAD). */
static RD_RACY void rd_copy(uint8_t *buf, size_t cap, const uint8_t *src, size_t n)
{
  size_t i = 0;
  if (((n + 15) & ~(size_t)15) <= cap && (RD_NO_MEMCPY || n <= 256)) {
    for (; i < n; i += 16) {
      uint64_t a = RD64(src + i), b = RD64(src + i + 8);
      __builtin_memcpy(buf + i, &a, 8);
      __builtin_memcpy(buf + i + 8, &b, 8);
    }
  } else if (!RD_NO_MEMCPY) {
    memcpy(buf, src, n);
  } else {
    for (; i < n; i++)
      buf[i] = src[i];
  }
}

static RD_RACY int rd_key_eq(const uint8_t *p, const uint8_t *key, size_t n)
{
  if (n >= 8 && n <= 16)
    return ((RD64(p) ^ RD64(key)) | (RD64(p + n - 8) ^ RD64(key + n - 8))) == 0;
  uint64_t d = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    d |= RD64(p + i) ^ RD64(key + i);
  for (; i < n; i++)
    d |= (uint64_t)(p[i] ^ key[i]);
  return d == 0;
}

/* The item at p (end bytes of its segment's data from p on), if it is the
 * key's. Most headers take one compare of their first bytes (cid and klen
 * varints) and a one- or two-byte vlen. */
static RD_RACY int rd_item(rd *r, const uint8_t *p, uint64_t end)
{
  size_t o = r->head_len;
  uint64_t vlen, exp;
  uint64_t v = RD_ONCE(p + o);
  if (!r->head_mask || (v & 0x8080) == 0x8080) {
    if (!rd_head_slow(r, p, &o, &vlen, &exp))
      return RD_NOMATCH;
  } else {
    if ((RD_ONCE(p) ^ r->head) & r->head_mask)
      return RD_NOMATCH;
    vlen = v & 0x7f;
    if (v & 0x80) {
      vlen |= (v >> 1) & 0x3f80;
      o++;
    }
    exp = RD_ONCE(p + o + 1) & KR_EXP_MAX;
    o += 6;
  }
  if (o + r->klen + vlen > end)
    return RD_AGAIN; /* past the segment's data: stale */
  if (!rd_key_eq(p + o, r->key, r->klen))
    return RD_NOMATCH;
  if (exp - 1 < r->expire_below) /* 0 (never) wraps to the largest value */
    return RD_LOCK;
  r->vlen = vlen;
  if (r->buf && vlen > r->cap)
    return RD_RANGE;
  if (r->buf)
    rd_copy(r->buf, r->cap, p + o + r->klen, vlen);
  return RD_HIT;
}

/* The slots a reader may probe: the shard's cap, within the table's block
 * (a stale table and a new cap do not go together, but are read within the
 * block all the same). */
static inline uint32_t rd_bound(uint64_t tabw, uint32_t cap)
{
  uint64_t n = kr_span_bytes(tabw) / 8;
  return cap < n ? cap : (uint32_t)n;
}

/* Reads the shard's table, hints and segment map. Each comes with its own
 * size (tabw's and hintw's spans, smap[0]), so a stale one is read within
 * its own bounds. */
static inline __attribute__((always_inline)) void rd_shard(rd *r, uint32_t s0)
{
  kr_shard *sh = r->sh;
  uint64_t tw = __atomic_load_n(&sh->tabw, __ATOMIC_ACQUIRE);
  uint64_t hw = __atomic_load_n(&sh->hintw, __ATOMIC_ACQUIRE);
  r->tab = kr_span_ptr(tw);
  r->tcap = rd_bound(tw, __atomic_load_n(&sh->cap, __ATOMIC_RELAXED));
  r->hint = kr_span_ptr(hw);
  r->hbytes = kr_span_bytes(hw);
  r->smap = __atomic_load_n(&sh->smap, __ATOMIC_ACQUIRE);
  r->nseg = pm_ld(r->smap);
  r->s0 = s0;
  r->pos = home(r->h >> FP_SHIFT, r->tcap);
}

/* The next slot from r->pos on whose fingerprint is the key's: RD_HIT with
 * r->p (the item's first byte), r->end (data left in its segment from
 * there) and r->hpos (the slot's); RD_MISS at an empty slot; RD_LOCK for an
 * item in a dedicated segment; RD_AGAIN when what it read cannot be
 * current. A map entry is 0 or a segment block's address with the log2 of
 * its size, so the item is read within a block that stays mapped. */
static inline __attribute__((always_inline)) int rd_locate(rd *r)
{
  uint64_t fp = r->h >> FP_SHIFT;
  for (uint32_t n = 0; n < r->tcap; n++) {
    uint32_t at = r->pos;
    uint64_t s = pm_ld(&r->tab[at]);
    if (++r->pos == r->tcap)
      r->pos = 0;
    if (!s)
      return RD_MISS;
    if ((s >> FP_SHIFT) != fp)
      continue;
    uint64_t idx = (s >> 16) & IDX_MAX, off = s & 0xffff;
    uint64_t e = idx < r->nseg ? pm_ld(&r->smap[idx]) : 0;
    if (!e || (e & SMAP_LOCKED))
      return RD_LOCK; /* a dedicated segment, or stale */
    uint64_t bsize = (uint64_t)1 << (e & 0x3f);
    /* rd_item reads 24 bytes before it knows the size: within the pad */
    if (off + KR_SEG_PAD >= bsize)
      return RD_AGAIN;
    r->end = bsize - KR_SEG_PAD - off;
    r->p = (const uint8_t *)(uintptr_t)(e & ~(uint64_t)0xff) + off;
    r->hpos = at;
    return RD_HIT;
  }
  return RD_LOCK;
}

/* One pass over the shard; the caller checks the counter after it. */
static inline __attribute__((always_inline)) int rd_pass(rd *r, uint32_t s0)
{
  rd_shard(r, s0);
  for (;;) {
    int v = rd_locate(r);
    if (v != RD_HIT || (v = rd_item(r, r->p, r->end)) != RD_NOMATCH)
      return v;
  }
}

/* RD_HIT, RD_MISS, RD_RANGE, or RD_LOCK for the locked path. */
static inline __attribute__((always_inline)) int rd_get(rd *r)
{
  for (int tries = 0; tries < 8; tries++) {
    uint32_t s0 = kr_seq_read(r->sh);
    if (s0 & 1) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    int v = rd_pass(r, s0);
    if (kr_seq_same(r->sh, s0))
      return v == RD_AGAIN ? RD_LOCK : v; /* AGAIN on a still state: take no chance */
  }
  return RD_LOCK;
}

/* Sets up a read of key (hashed h) in cache c: 0, or KURA_ENOTFOUND once the
 * cache is deleted. */
static inline __attribute__((always_inline)) int rd_begin(kr_cache *c, uint64_t h,
                                                          const void *key, size_t klen,
                                                          uint64_t expire_below, rd *r)
{
  uint64_t head = atomic_load_explicit(&c->head, memory_order_relaxed);
  unsigned n = (unsigned)(head >> 56);
  r->sh = &c->store->shards[h & (KR_NSHARDS - 1)];
  r->h = h;
  r->key = key;
  r->klen = klen;
  r->expire_below = expire_below;
  r->cid_head = head;
  r->head = (head & ~(0xffull << 56)) | (uint64_t)klen << (8 * n);
  r->head_mask = klen < 128 ? ~0ull >> (56 - 8 * n) : 0; /* n <= 7 */
  r->head_len = n + 1;
  r->hint = NULL;
  r->hbytes = 0;
  r->hpos = 0;
  return head ? 0 : KURA_ENOTFOUND;
}

/* Raises the hint of a hit at slot pos of a table whose hints (hbytes of
 * them) the read took (see above). */
static inline void hint_raise(uint8_t *hint, uint64_t hbytes, uint32_t pos)
{
  if (hint && pos / 4 < hbytes)
    kr_hint_bump(hint, pos);
}

/* --- hit and miss counters (kr_stripe) --------------------------------------------- */

static __attribute__((noinline)) kr_stripe *stripe_claim(kr_store *s, uintptr_t me, unsigned i)
{
  for (unsigned k = 0; k < KR_STRIPES; k++) {
    kr_stripe *st = &s->stripes[(i + k) % KR_STRIPES];
    uintptr_t o = atomic_load_explicit(&st->owner, memory_order_relaxed);
    if (o == me)
      return st;
    if (!o && atomic_compare_exchange_strong(&st->owner, &o, me))
      return st;
  }
  return NULL;
}

/* The calling thread's stripe, or NULL when all are taken. The thread
 * pointer is what pthread_self returns on Linux, without the call. */
static inline __attribute__((always_inline)) kr_stripe *my_stripe(kr_store *s)
{
#if defined(__GNUC__) && __GNUC__ >= 11 && (defined(__x86_64__) || defined(__aarch64__))
  uintptr_t me = (uintptr_t)__builtin_thread_pointer();
#else
  uintptr_t me = (uintptr_t)pthread_self();
#endif
  unsigned i = (unsigned)(((uint64_t)me * 0x9e3779b97f4a7c15ull) >> 58);
  kr_stripe *st = &s->stripes[i];
  if (atomic_load_explicit(&st->owner, memory_order_relaxed) == me)
    return st;
  return stripe_claim(s, me, i);
}

static inline void stripe_add(_Atomic uint64_t *c, uint64_t n)
{
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                        memory_order_relaxed);
}

/* Counts in stripe st (its per-cache table allocated here), or under a
 * shard lock for a thread without a stripe. */
static __attribute__((noinline)) void count_read_slow(kr_cache *c, kr_stripe *st, int hit)
{
  _Atomic uint64_t *pc = st ? calloc(2 * KR_MAX_CACHES, sizeof *pc) : NULL;
  if (pc) {
    atomic_store_explicit(&st->per_cache, pc, memory_order_release);
    stripe_add(&pc[2 * c->slot + !hit], 1);
  } else {
    kr_shard *sh = &c->store->shards[0];
    kr_lock_acquire(&sh->lock);
    sh->hits += (uint64_t)hit;
    sh->misses += (uint64_t)!hit;
    kr_cstat *cs = kr_shard_cst_fast(sh, c->slot);
    if (cs) {
      cs->hits += (uint64_t)hit;
      cs->misses += (uint64_t)!hit;
    }
    kr_lock_release(&sh->lock);
  }
}

/* Counts a lock-free hit or miss of cache c in the thread's stripe. */
static inline __attribute__((always_inline)) void count_read(kr_cache *c, int hit)
{
  kr_stripe *st = my_stripe(c->store);
  _Atomic uint64_t *pc = st ? atomic_load_explicit(&st->per_cache, memory_order_relaxed) : NULL;
  if (!pc) {
    count_read_slow(c, st, hit);
    return;
  }
  stripe_add(&pc[2 * c->slot + !hit], 1);
}

/* --- gets ------------------------------------------------------------------------ */

/* The index slot is prefetched before the clock is read, so that its miss
 * overlaps the rest. */
/* A get in general: any key, any header, retries, a value larger than the
 * buffer, the locked path. */
static __attribute__((noinline)) int get_general(kr_cache *c, uint64_t h, const void *key,
                                                 size_t klen, uint64_t expire_below,
                                                 uint8_t *buf, size_t cap, size_t *vlen)
{
  rd r;
  if (rd_begin(c, h, key, klen, expire_below, &r))
    return KURA_ENOTFOUND;
  r.buf = buf;
  r.cap = cap;
  int v = rd_get(&r);
  if (v == RD_LOCK)
    return get_locked(c, key, klen, buf, cap, vlen);
  if (v == RD_RANGE) {
    *vlen = r.vlen;
    return KURA_ERANGE; /* counted when the caller retries */
  }
  if (v == RD_HIT) {
    *vlen = r.vlen;
    hint_raise(r.hint, r.hbytes, r.hpos);
  }
  count_read(c, v == RD_HIT);
  return v;
}

enum { RD_SLOW = 5 };

/* What the fast path compares an item with, computed before its index slot
 * arrives: every instruction left between one get's item miss and the next
 * get's costs single gets (see store_int.h). */
typedef struct fast_key {
  uint64_t pre, mask;      /* the item's first bytes (cid and klen varints) */
  uint64_t k0, k1;         /* the key's first and last 8 bytes */
  size_t o, ko, kend;      /* offsets of vlen, of the key, of the value */
  size_t klen;
  uint64_t lim;            /* the largest vlen taken: one varint byte, whole 16-byte blocks in buf */
  uint64_t below;          /* an expiry below this needs the locked path */
} fast_key;

/* fast_get's item: RD_HIT (value copied, *vlen set), RD_NOMATCH, or
 * RD_SLOW for anything the fast path does not take. Reads as rd_item: one
 * load gives vlen and the expiry after it; end (data left in the segment
 * from p) bounds what follows. The first 16-byte block is copied whatever
 * vlen is (buf has room for it, and the segment's pad for the read). */
static RD_RACY int fast_item(const uint8_t *p, uint64_t end, fast_key k, uint8_t *buf,
                             size_t *vlen)
{
  if ((RD_ONCE(p) ^ k.pre) & k.mask)
    return RD_NOMATCH;
  uint64_t v = RD_ONCE(p + k.o), n = (uint8_t)v, exp = (v << 16) >> 24;
  if (n > k.lim || k.kend + n > end || exp - 1 < k.below)
    return RD_SLOW; /* exp - 1: 0 (never) wraps to the largest value */
  if ((RD64(p + k.ko) ^ k.k0) | (RD64(p + k.ko + k.klen - 8) ^ k.k1))
    return RD_NOMATCH;
  const uint8_t *src = p + k.kend;
  for (size_t i = 0; i == 0 || i < n; i += 16) {
    uint64_t a = RD64(src + i), b = RD64(src + i + 8);
    __builtin_memcpy(buf + i, &a, 8);
    __builtin_memcpy(buf + i + 8, &b, 8);
  }
  *vlen = n;
  return RD_HIT;
}

/* The probe from slot i of tab (tcap slots, read at counter s0) on, for
 * fast_get. A map entry's block size bounds the item: an empty entry (0)
 * and a dedicated segment's (SMAP_LOCKED, size bits 0) fail the same
 * check. */
static inline __attribute__((always_inline)) int fast_probe(kr_shard *sh, uint32_t s0,
                                                            const uint64_t *tab,
                                                            uint32_t tcap, uint32_t i,
                                                            uint64_t fp, fast_key k,
                                                            uint8_t *buf, size_t *vlen)
{
  uint64_t hw = __atomic_load_n(&sh->hintw, __ATOMIC_ACQUIRE);
  const uint64_t *smap = __atomic_load_n(&sh->smap, __ATOMIC_ACQUIRE);
  uint64_t nseg = pm_ld(smap);
  for (uint32_t n = 0; n < tcap; n++) {
    uint64_t s = pm_ld(&tab[i]);
    uint32_t at = i;
    if (!s)
      return kr_seq_same(sh, s0) ? RD_MISS : RD_SLOW;
    if (++i == tcap)
      i = 0;
    if ((s >> FP_SHIFT) != fp)
      continue;
    uint64_t idx = (s >> 16) & IDX_MAX, off = s & 0xffff;
    uint64_t e = idx < nseg ? pm_ld(&smap[idx]) : 0, bsize = (uint64_t)1 << (e & 0x3f);
    if (off + KR_SEG_PAD >= bsize)
      return RD_SLOW;
    int v = fast_item((const uint8_t *)(uintptr_t)(e & ~(uint64_t)0xff) + off,
                      bsize - KR_SEG_PAD - off, k, buf, vlen);
    if (v == RD_HIT) {
      if (!kr_seq_same(sh, s0))
        return RD_SLOW;
      hint_raise(kr_span_ptr(hw), kr_span_bytes(hw), at);
      return RD_HIT;
    }
    if (v == RD_SLOW)
      return RD_SLOW;
  }
  return RD_SLOW;
}

/* A get's common case, whole and short: a key of 8 to 16 bytes, a cache id
 * of up to 6 varint bytes, a value under 128 bytes that fits buf in 16-byte
 * blocks (buf of 16 bytes or more), in a normal segment, no expiry near,
 * the shard unchanged during the pass. Else RD_SLOW. The counter is read
 * first, so the table the slot is prefetched from is the one searched. */
static inline __attribute__((always_inline)) int fast_get(kr_cache *c, kr_shard *sh, uint64_t h,
                                                          const uint8_t *key, size_t klen,
                                                          uint8_t *buf, size_t cap, size_t *vlen,
                                                          uint64_t *below)
{
  kr_store *s = c->store;
  uint32_t s0 = kr_seq_read(sh);
  uint64_t tw = __atomic_load_n(&sh->tabw, __ATOMIC_ACQUIRE), fp = h >> FP_SHIFT, slack;
  const uint64_t *tab = kr_span_ptr(tw);
  uint32_t tcap = rd_bound(tw, __atomic_load_n(&sh->cap, __ATOMIC_RELAXED)), i = home(fp, tcap);
  __builtin_prefetch(tab + i);
  *below = kr_op_clock(s, 0, &slack) + slack;
  uint64_t head = atomic_load_explicit(&c->head, memory_order_relaxed);
  unsigned hb = (unsigned)(head >> 53) & ~7u; /* 8 x the cid varint's bytes; 0: deleted */
  if (klen - 8 > 8 || hb - 8 > 40 || cap < 16 || (s0 & 1))
    return RD_SLOW;
  /* head's top byte (its length) lies outside mask for up to 6 bytes */
  fast_key k = {.pre = head | (uint64_t)klen << hb, .mask = ~0ull >> (56 - hb),
                .k0 = rd64(key), .k1 = rd64(key + klen - 8), .o = hb / 8 + 1,
                .ko = hb / 8 + 7, .kend = hb / 8 + 7 + klen, .klen = klen,
                .lim = cap < 128 ? cap & ~(size_t)15 : 127, .below = *below};
  int v = fast_probe(sh, s0, tab, tcap, i, fp, k, buf, vlen);
  if (v != RD_SLOW)
    count_read(c, v == RD_HIT);
  return v;
}

int kr_store_get(kr_cache *c, const void *key, size_t klen,
                 void *buf, size_t cap, size_t *vlen)
{
  if (klen > KR_STORE_MAX_KEY)
    return KURA_EINVAL;
  uint64_t h = kr_hash(key, klen, c->seed), below;
  kr_shard *sh = &c->store->shards[h & (KR_NSHARDS - 1)];
  int v = fast_get(c, sh, h, key, klen, buf, cap, vlen, &below);
  if (v != RD_SLOW)
    return v;
  return get_general(c, h, key, klen, below, buf, cap, vlen);
}

int kr_store_exists(kr_cache *c, const void *key, size_t klen)
{
  if (klen > KR_STORE_MAX_KEY)
    return KURA_EINVAL;
  uint64_t h = kr_hash(key, klen, c->seed), slack;
  uint64_t now = kr_op_clock(c->store, 0, &slack);
  rd r;
  if (rd_begin(c, h, key, klen, now + slack, &r))
    return KURA_ENOTFOUND;
  r.buf = NULL;
  int v = rd_get(&r);
  if (v != RD_LOCK)
    return v;
  kr_op o;
  if ((v = kr_op_begin(c, key, klen, 0, &o)))
    return v;
  kr_item it;
  uint32_t pos;
  int found = kr_shard_find(o.sh, o.h, o.cid, key, klen, &pos, &it);
  return kr_op_end(&o, found ? KURA_HIT : KURA_MISS);
}

/* One key of a batch under the lock: the value is copied into *buf (grown
 * as needed). */
static int batch_locked(kr_cache *c, const void *key, size_t klen, uint8_t **buf, size_t *cap,
                        size_t *vlen)
{
  kr_op o;
  if (kr_op_begin(c, key, klen, 0, &o) < 0)
    return 0; /* deleted during the batch: a miss */
  kr_item it;
  uint32_t pos = 0;
  int found = kr_shard_find(o.sh, o.h, o.cid, key, klen, &pos, &it);
  if (found && it.vlen > *cap) {
    uint8_t *b = *cap > BATCH_STACK ? realloc(*buf, it.vlen) : malloc(it.vlen);
    if (!b)
      return kr_op_end(&o, KURA_ENOMEM);
    *buf = b;
    *cap = it.vlen;
  }
  if (found) {
    memcpy(*buf, it.val, it.vlen);
    *vlen = it.vlen;
  }
  count_get(&o, c, found, pos);
  return kr_op_end(&o, found);
}

/* A batch's second stage: locates the key's item (reading its index slot,
 * prefetched in the first stage) and prefetches the item's two lines. */
static inline __attribute__((always_inline)) void rd_stage(rd *r)
{
  uint32_t s0 = kr_seq_read(r->sh);
  if (s0 & 1) {
    r->staged = RD_AGAIN;
    return;
  }
  rd_shard(r, s0);
  r->staged = rd_locate(r);
  if (r->staged == RD_HIT) {
    __builtin_prefetch(r->p);
    __builtin_prefetch(r->p + 63);
    __builtin_prefetch(r->hint + r->hpos / 4, 1);
  }
}

/* One key of a batch, counted: its value in *buf (grown as needed), 1 hit,
 * 0 miss. The staged item is read if the shard has not changed since; else
 * the key is read again. */
static int batch_one(kr_cache *c, rd *r, uint8_t **buf, size_t *cap, size_t *vlen)
{
  r->buf = *buf;
  r->cap = *cap;
  int v = r->staged;
  if (v == RD_HIT)
    v = rd_item(r, r->p, r->end);
  if ((v != RD_HIT && v != RD_MISS && v != RD_RANGE) || !kr_seq_same(r->sh, r->s0))
    v = rd_get(r);
  for (;;) {
    if (v == RD_LOCK)
      return batch_locked(c, r->key, r->klen, buf, cap, vlen);
    if (v != RD_RANGE) {
      *vlen = r->vlen;
      if (v == RD_HIT)
        hint_raise(r->hint, r->hbytes, r->hpos);
      count_read(c, v == RD_HIT);
      return v;
    }
    uint8_t *b = *cap > BATCH_STACK ? realloc(*buf, r->vlen) : malloc(r->vlen);
    if (!b)
      return KURA_ENOMEM;
    *buf = r->buf = b;
    *cap = r->cap = r->vlen;
    v = rd_get(r);
  }
}

/* A batch's first stage: hashes key i into its read and prefetches its
 * index slot. */
static inline __attribute__((always_inline)) void batch_begin(kr_cache *c, rd *r,
                                                              const void *key, size_t klen,
                                                              uint64_t expire_below)
{
  uint64_t h = kr_hash(key, klen, c->seed);
  kr_shard_prefetch(&c->store->shards[h & (KR_NSHARDS - 1)], h);
  if (rd_begin(c, h, key, klen, expire_below, r))
    r->sh = NULL; /* deleted during the batch: a miss */
}

/* Batched gets, lock-free like kr_store_get, in groups of 16: first the 16
 * index slots are prefetched, then (reading them) the 16 items located and
 * prefetched, then each key is read and handed to fn. A pipeline over the
 * keys (key i read while the item of i + 8 is located and the slot of
 * i + 16 prefetched) measured slower for batches of 16: 0.43x against 0.57x
 * of the inline table per CPU-second (store_speed, 5 alternated runs). */
int kr_store_get_batch(kr_cache *c, size_t n, const void *const *keys,
                       const size_t *klens, kr_store_batch_fn fn, void *ud)
{
  enum { GROUP = 16 };
  for (size_t i = 0; i < n; i++)
    if (klens[i] > KR_STORE_MAX_KEY)
      return KURA_EINVAL;
  uint8_t stack[BATCH_STACK], *buf = stack;
  size_t cap = sizeof stack;
  uint64_t slack, now = kr_op_clock(c->store, 0, &slack);
  rd q[GROUP];
  if (!atomic_load_explicit(&c->head, memory_order_relaxed))
    return KURA_ENOTFOUND;
  int r = 0;
  for (size_t base = 0; base < n && r >= 0; base += GROUP) {
    size_t m = n - base < GROUP ? n - base : GROUP;
    for (size_t j = 0; j < m; j++)
      batch_begin(c, &q[j], keys[base + j], klens[base + j], now + slack);
    for (size_t j = 0; j < m; j++)
      if (q[j].sh)
        rd_stage(&q[j]);
    for (size_t j = 0; j < m && r >= 0; j++) {
      size_t vlen = 0;
      r = q[j].sh ? batch_one(c, &q[j], &buf, &cap, &vlen) : RD_MISS;
      if (r >= 0)
        fn(ud, base + j, r == RD_HIT ? buf : NULL, vlen); /* no lock held */
    }
  }
  if (buf != stack)
    free(buf);
  return r < 0 ? r : 0;
}

/* --- hit and miss totals -------------------------------------------------------- */

/* Adds the stripes' hits and misses of cache `slot`, or of all caches and
 * those reset since (slot KR_MAX_CACHES; every slot of every stripe: only
 * stats read this). */
void kr_stripes_sum(kr_store *s, uint32_t slot, kr_store_stats *out)
{
  uint32_t lo = slot == KR_MAX_CACHES ? 0 : slot, hi = slot == KR_MAX_CACHES ? slot : slot + 1;
  if (slot == KR_MAX_CACHES) {
    out->hits += atomic_load_explicit(&s->retired[0], memory_order_relaxed);
    out->misses += atomic_load_explicit(&s->retired[1], memory_order_relaxed);
  }
  for (unsigned i = 0; i < KR_STRIPES; i++) {
    _Atomic uint64_t *pc = atomic_load_explicit(&s->stripes[i].per_cache, memory_order_acquire);
    for (uint32_t k = lo; pc && k < hi; k++) {
      out->hits += atomic_load_explicit(&pc[2 * k], memory_order_relaxed);
      out->misses += atomic_load_explicit(&pc[2 * k + 1], memory_order_relaxed);
    }
  }
}

/* A slot's hits and misses start again from 0 (for a cache created in it
 * or deleted from it); the store's totals keep them. Their owners count
 * with plain loads and stores, so a get of the slot's old cache running at
 * this moment may undo a reset. */
void kr_stripes_reset(kr_store *s, uint32_t slot)
{
  kr_store_stats was = {0};
  kr_stripes_sum(s, slot, &was);
  atomic_fetch_add_explicit(&s->retired[0], was.hits, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->retired[1], was.misses, memory_order_relaxed);
  for (unsigned i = 0; i < KR_STRIPES; i++) {
    _Atomic uint64_t *pc = atomic_load_explicit(&s->stripes[i].per_cache, memory_order_acquire);
    if (pc) {
      atomic_store_explicit(&pc[2 * slot], 0, memory_order_relaxed);
      atomic_store_explicit(&pc[2 * slot + 1], 0, memory_order_relaxed);
    }
  }
}
