/* Internal layout of the embedded store, shared by store.c (registry,
 * caches, the item calls that write), store_read.c (gets), store_log.c (one
 * shard's segments, index and eviction) and store_pool.c (their memory).
 * Nothing here is part of the store's contract.
 *
 * A store is split into KR_NSHARDS shards by key hash; each shard has its own
 * lock, sequence counter, index, segment logs, ghost table and statistics,
 * so threads touching different shards never write the same cache line.
 * Items live packed in segments (append-only byte arrays); the index holds
 * one 8-byte slot per item: a 26-bit fingerprint (which also gives the
 * slot's home position, so the table can grow or delete without reading
 * items) and a 38-bit location (22-bit segment number, 16-bit offset), and
 * beside it 2 bits of hit frequency (hints).
 *
 * Writers hold the shard's lock and keep its sequence counter odd while they
 * change anything a reader looks at. Gets take no lock: they read the
 * counter, look the key up, copy the value out, and keep the result only if
 * the counter has not moved (store_read.c, "optimistic reads"). So the
 * memory a reader touches (index tables, hints, segment data, segment maps)
 * is never given back while the store lives (store_pool.c), and what it
 * reads is read atomically or in two guarded places (see "pool memory"
 * below).
 */
#ifndef KR_STORE_INT_H
#define KR_STORE_INT_H

#include <endian.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "core/store/store.h"

#define KR_NSHARDS 64u
#define KR_MAX_CACHES 4096u          /* caches per store (slot numbers) */
#define KR_SLOT_BITS 12
#define KR_SEG_MAX (64u * 1024u)     /* largest normal segment block */
#define KR_SEG_MIN 1024u
#define KR_SEG_PAD 32u               /* readable bytes after a segment's data (see rd_item, store_read.c) */
#define KR_SMALL 0                   /* S3-FIFO's probation log */
#define KR_MAIN 1                    /* S3-FIFO's main log */
#define KR_POOL_MINCLS 8             /* pool blocks: 256 B ... */
#define KR_POOL_MAXCLS 16            /* ... 64 KiB */
#define KR_STRIPES 64                /* hit counters: one per thread (see kr_stripe) */

/* A segment's header lives apart from its data, so that a block of data is
 * only ever item bytes (readers may read a block after it was freed). */
typedef struct kr_seg {
  struct kr_seg *older, *newer; /* FIFO order within its queue */
  uint8_t *data;                /* bsize bytes: cap of data, then KR_SEG_PAD */
  void *raw;                    /* a dedicated segment's malloc'd block, data within */
  uint64_t max_exp;             /* latest expiry of its items; UINT64_MAX: one never expires */
  uint32_t idx;                 /* number in the shard's segment table (>= 1) */
  uint32_t cap, used;           /* data bytes allocated / appended */
  uint32_t bsize;               /* bytes of the data block */
  uint32_t live_bytes, live_items;
  uint8_t queue;                /* KR_SMALL or KR_MAIN */
  uint8_t dedicated;            /* holds one large item at offset 0; malloc'd, read under the lock */
} kr_seg;

typedef struct kr_queue {
  kr_seg *oldest, *newest;
  kr_seg *open;                 /* the segment appends go to, or NULL */
  uint64_t bytes;               /* data bytes of its segments */
} kr_queue;

/* Per-cache counters kept per shard, summed on demand. Hits and misses of
 * lock-free gets are counted in the store's stripes instead. */
typedef struct kr_cstat {
  uint64_t items, bytes, hits, misses, evictions, expirations;
} kr_cstat;

typedef struct kr_lock {
  atomic_int v;
} kr_lock;

typedef struct kr_shard {
  /* What readers read, on one line: written only under the lock, and
   * tab, cap and smap only while seq is odd. */
  kr_lock lock;
  _Atomic uint32_t seq;         /* odd while a writer changes what readers see */
  uint64_t tabw;                /* for readers: the index slots and their block (kr_span) */
  uint64_t hintw;               /* ... and their frequency hints (see kr_hint_get) */
  uint32_t cap, count;          /* slots, occupied slots */
  uint64_t *smap;               /* [0]: entries; [i]: data of segment i | log2 of its block or SMAP_LOCKED; 0: none */
  uint64_t *tab;                /* tabw's and hintw's addresses, for writers; a slot 0 is empty */
  uint8_t *hint;
  size_t tab_bytes, hint_bytes; /* their pool blocks */
  uint64_t **retired;           /* earlier segment maps, kept for readers (see smap_grow) */
  uint32_t nretired, capretired;
  struct kr_store *store;
  uint64_t now;                 /* clock of the current call (ms) */
  uint64_t slack;               /* now may lag the exact clock by this much */
  kr_seg **segs;                /* segment table, [0] unused */
  uint32_t segcap, nsegs;       /* table size, next never-used number */
  uint32_t *freeidx, nfree, freecap; /* recycled segment numbers */
  kr_queue q[2];
  uint32_t *ghost, gmask;       /* fingerprints of items recently evicted from SMALL */
  _Atomic uint64_t bytes;       /* memory held; written under the lock only */
  uint64_t hits, misses, evictions, expirations;
  kr_cstat *cst;                /* indexed by cache slot */
  uint32_t ncst;
  uint32_t sweep_pos;           /* index position where the sweep goes on */
  uint32_t pending;             /* segment to compact or free after this call */
} __attribute__((aligned(64))) kr_shard;

/* Memory that stays readable while the store lives (store_pool.c). */
typedef struct kr_ptrent {
  void *p;
  size_t size;
} kr_ptrent;

typedef struct kr_ptrvec {
  kr_ptrent *a;
  size_t n, cap;
} kr_ptrvec;

typedef struct kr_pool {
  pthread_mutex_t mu;
  int huge;                     /* segment pool: huge-page chunks, large blocks split when freed */
  size_t page;                  /* the system's page size */
  size_t nchunks;               /* 2 MiB chunks mapped */
  kr_ptrvec free[KR_POOL_MAXCLS + 1]; /* free blocks by log2 of their size */
  kr_ptrvec maps;               /* every mapping, unmapped with the store */
  kr_ptrvec large;              /* index pool: freed large tables, emptied */
  uint8_t *bump;                /* index pool: where the next large table is carved */
  size_t bump_left;
} kr_pool;

void kr_pool_init(kr_pool *p, int huge);
void kr_pool_destroy(kr_pool *p);
/* A block of at least size bytes (*got: its size), or NULL. */
void *kr_pool_alloc(kr_pool *p, size_t size, size_t *got);
void kr_pool_free(kr_pool *p, void *ptr, size_t size);

/* The hits and misses of one thread's gets that take no lock. A thread
 * claims a stripe on its first get (by its thread pointer) and is the only
 * one to write it, so plain loads and stores count exactly without a locked
 * instruction. A thread that finds no stripe free counts under a shard
 * lock. */
typedef struct kr_stripe {
  _Atomic uintptr_t owner;      /* the thread that counts here; 0 free */
  _Atomic(_Atomic uint64_t *) per_cache; /* [2 * slot]: hits, [2 * slot + 1]: misses */
} __attribute__((aligned(64))) kr_stripe;

struct kr_store {
  kr_shard shards[KR_NSHARDS];
  kr_stripe stripes[KR_STRIPES];
  _Atomic uint64_t retired[2];  /* hits, misses of the stripes' slots reset since */
  _Atomic uint64_t used;        /* sum of the shards' bytes */
  kr_pool pool;                 /* segment data and segment maps */
  kr_pool ipool;                /* index tables */
  kr_pool hpool;                /* their hints */
  _Atomic uint64_t max_memory;
  kr_clock_fn clock;
  void *clock_ud;
  uint32_t coarse_ms;           /* > 0: reads may use the coarse clock */
  uint64_t hash_key;            /* random, per store: see kr_hash */
  atomic_uint victim;           /* cursor for evicting from other shards */
  atomic_uint sweep_shard;      /* cursor for kr_store_sweep */
  atomic_int refs;
  pthread_mutex_t mu;           /* guards the cache list below */
  struct kr_cache **caches;     /* live caches sorted by name */
  size_t ncaches, capcaches;
  struct kr_cache *by_slot[KR_MAX_CACHES];
  _Atomic uint32_t slot_gen[KR_MAX_CACHES]; /* 0: slot free */
  uint32_t next_gen;
  char *name;                   /* NULL for a private store */
  struct kr_store *next;        /* registry list */
};

struct kr_cache {
  kr_store *store;
  uint64_t seed[2];             /* kr_seeds(store, slot) */
  atomic_int refs;
  _Atomic uint32_t gen;         /* changes on flush; items carry it */
  _Atomic uint64_t head;        /* kr_cid_head of gen; 0 once deleted */
  atomic_int alive;
  uint32_t slot;
  size_t len;
  char name[];
};

/* An item as parsed from its segment bytes. */
typedef struct kr_item {
  uint8_t *p;                   /* header start */
  uint8_t *expp;                /* the 5-byte expiry */
  uint8_t *key, *val;
  uint64_t cid;                 /* kr_cid(gen, slot) */
  uint64_t exp;                 /* 0 = never */
  uint32_t klen, vlen, size;
  uint32_t seg;                 /* number of its segment */
} kr_item;

#define KR_FREQ_MAX 3u
#define KR_EXP_MAX ((1ull << 40) - 1)

/* --- spinlock and sequence counter ------------------------------------------ */
void kr_lock_slow(kr_lock *l);
static inline void kr_lock_acquire(kr_lock *l)
{
  if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
    return;
  kr_lock_slow(l);
}
static inline int kr_lock_try(kr_lock *l)
{
  return !atomic_load_explicit(&l->v, memory_order_relaxed) &&
         !atomic_exchange_explicit(&l->v, 1, memory_order_acquire);
}
static inline void kr_lock_release(kr_lock *l)
{
  atomic_store_explicit(&l->v, 0, memory_order_release);
}

/* A writer's section: seq is odd from before its first change to after its
 * last. The release fence keeps the changes after the odd value for a
 * reader that sees one of them (its acquire fence pairs with this one); the
 * final store releases them all with the even value. ThreadSanitizer does
 * not model fences: its build takes the read-modify-write forms of both
 * sides instead (Boehm, "Can seqlocks get along with programming language
 * memory models?", 2012), which it does. */
static inline void kr_seq_open(kr_shard *sh)
{
#if defined(__SANITIZE_THREAD__)
  atomic_fetch_add_explicit(&sh->seq, 1, memory_order_acq_rel);
#else
  uint32_t v = atomic_load_explicit(&sh->seq, memory_order_relaxed);
  atomic_store_explicit(&sh->seq, v + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
#endif
}
static inline void kr_seq_close(kr_shard *sh)
{
  uint32_t v = atomic_load_explicit(&sh->seq, memory_order_relaxed);
  atomic_store_explicit(&sh->seq, v + 1, memory_order_release);
}
/* The lock of a call that may change the shard. */
static inline void kr_shard_lock(kr_shard *sh)
{
  kr_lock_acquire(&sh->lock);
  kr_seq_open(sh);
}
static inline void kr_shard_unlock(kr_shard *sh)
{
  kr_seq_close(sh);
  kr_lock_release(&sh->lock);
}

/* A reader's window: valid while seq_same holds for the value seq_read gave
 * (an even one). The acquire fence orders the window's loads before the
 * second read of seq. */
static inline uint32_t kr_seq_read(kr_shard *sh)
{
  return atomic_load_explicit(&sh->seq, memory_order_acquire);
}
static inline int kr_seq_same(kr_shard *sh, uint32_t s0)
{
#if defined(__SANITIZE_THREAD__)
  return atomic_fetch_add_explicit(&sh->seq, 0, memory_order_acq_rel) == s0;
#else
  atomic_thread_fence(memory_order_acquire);
  return atomic_load_explicit(&sh->seq, memory_order_relaxed) == s0;
#endif
}

/* --- pool memory --------------------------------------------------------------
 * Index tables, hints and segment maps may be read by a lock-free reader at
 * any time, even after they are freed, and readers raise hints, so every
 * access to them is atomic (relaxed: the sequence counter orders them).
 * Item bytes are written plainly under the lock and read by readers in two
 * guarded places only (rd_item and fast_item, store_read.c). */

static inline uint64_t pm_ld(const uint64_t *w)
{
  return __atomic_load_n(w, __ATOMIC_RELAXED);
}
static inline void pm_st(uint64_t *w, uint64_t v)
{
  __atomic_store_n(w, v, __ATOMIC_RELAXED);
}

void kr_pm_zero(uint64_t *w, size_t words);

/* --- item bytes and index slots ----------------------------------------------
 * Inline, with kr_hash and kr_shard_find, because a get is fast only while
 * the CPU runs ahead into the caller's next get while this one's item is
 * still on its way from memory, and that stops at a call or a longer path to
 * the next get's index prefetch. Measured in a test harness (90% gets, 1M
 * keys, alternated runs): the same lookup behind a function call ran 3.6-3.9
 * against 4.6-5.5 M gets/s inline. Item layout: see store_log.c. */

#define FP_SHIFT 38                        /* slot: 26-bit fingerprint above */
#define LOC_MASK ((1ull << FP_SHIFT) - 1)  /* 22-bit segment number, 16-bit offset */
#define IDX_MAX ((1u << 22) - 1)

/* What a reader needs of a table in one word, so that a stale one is still
 * read within its own block: its address (aligned to 256 bytes) and its
 * block's size in 256-byte units (up to 4 GiB). */
static inline uint64_t kr_span(const void *p, size_t bytes)
{
  return (uint64_t)(uintptr_t)p >> 8 | (uint64_t)(bytes >> 8) << 40;
}
static inline void *kr_span_ptr(uint64_t w)
{
  return (void *)(uintptr_t)((w & ((1ull << 40) - 1)) << 8);
}
static inline uint64_t kr_span_bytes(uint64_t w)
{
  return (w >> 40) << 8;
}

/* Hints: the hit frequency (S3-FIFO's, 0..KR_FREQ_MAX) of index slot pos,
 * two bits of hint[pos / 4]. Readers raise them with plain byte stores (no
 * locked instruction on a get), so a raise that races another is lost, and
 * one on a table replaced meanwhile lands on another slot's hint: hints
 * only steer eviction. Their memory only ever holds hints (store_pool.c). */
static inline unsigned kr_hint_get(const uint8_t *hint, uint32_t pos)
{
  return (unsigned)(__atomic_load_n(&hint[pos >> 2], __ATOMIC_RELAXED) >> (2 * (pos & 3))) &
         KR_FREQ_MAX;
}
static inline void kr_hint_set(uint8_t *hint, uint32_t pos, unsigned f)
{
  unsigned sh = 2 * (pos & 3);
  uint8_t b = __atomic_load_n(&hint[pos >> 2], __ATOMIC_RELAXED);
  __atomic_store_n(&hint[pos >> 2], (uint8_t)((b & ~(KR_FREQ_MAX << sh)) | f << sh),
                   __ATOMIC_RELAXED);
}
static inline void kr_hint_bump(uint8_t *hint, uint32_t pos)
{
  unsigned sh = 2 * (pos & 3);
  uint8_t b = __atomic_load_n(&hint[pos >> 2], __ATOMIC_RELAXED);
  if (((b >> sh) & KR_FREQ_MAX) < KR_FREQ_MAX)
    __atomic_store_n(&hint[pos >> 2], (uint8_t)(b + (1u << sh)), __ATOMIC_RELAXED);
}

static inline uint64_t rd64(const uint8_t *p)
{
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* A slot's home position: from the fingerprint alone, so the index grows and
 * deletes without reading items. Monotonic in the fingerprint, so a table
 * rehashes into a larger one in one forward pass. */
static inline uint32_t home(uint64_t fp, uint32_t cap)
{
  return (uint32_t)((fp * cap) >> (64 - FP_SHIFT));
}

/* A segment map entry: the data's address (aligned to SMAP_ALIGN) and, in
 * the low bits, the log2 of its pool block, or SMAP_LOCKED for the data of
 * a dedicated segment (malloc'd, read only under the lock). */
#define SMAP_ALIGN 256u
#define SMAP_LOCKED 0x80u

static inline uint8_t *loc_ptr(kr_shard *sh, uint64_t loc)
{
  uint64_t e = pm_ld(&sh->smap[(loc >> 16) & IDX_MAX]);
  return (uint8_t *)(uintptr_t)(e & ~(uint64_t)(SMAP_ALIGN - 1)) + (loc & 0xffff);
}

static inline uint64_t kr_mix(uint64_t a, uint64_t b)
{
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t kr_hash_long(const void *key, size_t n, uint64_t seed);

/* The hash of a key, with a cache's two seed words (kr_seeds). A key of up
 * to 16 bytes takes one multiply of its two (overlapping) words: every cycle
 * from a get's start to its index prefetch counts (see above). In the same
 * harness, one more dependent multiply here cost 20% of the gets, and seeds
 * computed per call from the store's key (a load and a multiply) 15%; so a
 * cache keeps its seeds. They carry
 * the store's random key, so that keys which collide (a zero product) cannot
 * be chosen from outside. */
static inline uint64_t kr_hash(const void *key, size_t n, const uint64_t seed[2])
{
  const uint8_t *p = key;
  uint64_t a, b;
  if (n > 16)
    return kr_hash_long(key, n, seed[0]);
  if (n >= 8) {
    a = rd64(p);
    b = rd64(p + n - 8);
  } else if (n >= 4) {
    uint32_t x, y;
    memcpy(&x, p, 4);
    memcpy(&y, p + n - 4, 4);
    a = x;
    b = y;
  } else {
    a = n ? (uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1] : 0;
    b = 0;
  }
  return kr_mix(a ^ seed[0], b ^ seed[1] ^ n);
}

/* Lengths and cache ids are almost always 1 or 2 bytes: those decode
 * without a loop. */
static inline size_t varint_get(const uint8_t *p, uint64_t *v)
{
  if (!(p[0] & 0x80)) {
    *v = p[0];
    return 1;
  }
  if (!(p[1] & 0x80)) {
    *v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
    return 2;
  }
  uint64_t r = 0;
  size_t n = 0;
  for (unsigned sh = 0;; sh += 7) {
    uint8_t b = p[n++];
    r |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80) || n == 10)
      break;
  }
  *v = r;
  return n;
}

static inline uint64_t exp_get(const uint8_t *p)
{
  uint32_t lo;
  memcpy(&lo, p, 4);
  return (uint64_t)le32toh(lo) | (uint64_t)p[4] << 32;
}

/* Key equality without a library call: keys are mostly short, and a
 * memcmp call costs more than the compare. Words overlap at the tail. */
static inline int key_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
  if (n < 8)
    return n == 0 || memcmp(a, b, n) == 0;
  if (n <= 16)
    return ((rd64(a) ^ rd64(b)) | (rd64(a + n - 8) ^ rd64(b + n - 8))) == 0;
  uint64_t d = 0;
  size_t i = 0;
  for (; i + 8 < n; i += 8)
    d |= rd64(a + i) ^ rd64(b + i);
  return (d | (rd64(a + n - 8) ^ rd64(b + n - 8))) == 0;
}

/* A cache id: the generation and the slot of the cache an item belongs to.
 * Every item starts with it as a varint, so the ids of most stores should
 * be small: slots are taken lowest first, so a store of up to 8 caches has
 * slots 0-7 only, and those take 3 bits instead of KR_SLOT_BITS:
 *   slot < 8:  (gen << 3 | slot) << 1
 *   else:      (gen << KR_SLOT_BITS | slot) << 1 | 1
 * Generations under 8 then make one-byte ids where gen << KR_SLOT_BITS |
 * slot took two (one byte of 57 per item with 16-byte keys and 32-byte
 * values), and under 1024 two where it took up to three; the other slots
 * pay one bit more than that did. */
#define KR_CID_SMALL 3u /* bits of a small slot */
static inline uint64_t kr_cid(uint32_t gen, uint32_t slot)
{
  if (slot < (1u << KR_CID_SMALL))
    return ((uint64_t)gen << KR_CID_SMALL | slot) << 1;
  return ((uint64_t)gen << KR_SLOT_BITS | slot) << 1 | 1;
}
static inline uint32_t kr_cid_slot(uint64_t cid)
{
  return (uint32_t)(cid >> 1) & (cid & 1 ? (1u << KR_SLOT_BITS) - 1 : (1u << KR_CID_SMALL) - 1);
}
static inline uint32_t kr_cid_gen(uint64_t cid)
{
  return (uint32_t)(cid >> (cid & 1 ? KR_SLOT_BITS + 1 : KR_CID_SMALL + 1));
}

/* The first bytes of the items of cache id cid, for readers to compare in
 * one go: its varint in the low bytes, their number in the top byte. */
static inline uint64_t kr_cid_head(uint64_t cid)
{
  uint64_t v = 0;
  unsigned n = 0;
  for (; cid >= 0x80 && n < 7; cid >>= 7, n++)
    v |= (uint64_t)((cid & 0x7f) | 0x80) << (8 * n);
  return v | cid << (8 * n) | (uint64_t)(n + 1) << 56;
}

/* The header of the item at p: the number of bytes before its key, with
 * *cid, *klen, *vlen and *exp set. */
static inline size_t item_head(const uint8_t *p, uint64_t *cid, uint64_t *klen,
                               uint64_t *vlen, uint64_t *exp)
{
  size_t o = varint_get(p, cid);
  o += varint_get(p + o, klen);
  o += varint_get(p + o, vlen);
  *exp = exp_get(p + o);
  return o + 5;
}

/* Under the lock (plain reads: only the lock holder writes item bytes). */
static inline void item_parse(uint8_t *p, uint32_t seg, kr_item *it)
{
  uint64_t k, v;
  size_t o = item_head(p, &it->cid, &k, &v, &it->exp);
  it->p = p;
  it->seg = seg;
  it->klen = (uint32_t)k;
  it->vlen = (uint32_t)v;
  it->expp = p + o - 5;
  it->key = p + o;
  it->val = it->key + it->klen;
  it->size = (uint32_t)(o + it->klen + it->vlen);
}

/* --- store_log.c: one shard, called with its lock held ---------------------- */
size_t kr_item_size(uint64_t cid, size_t klen, size_t vlen);
int kr_shard_init(kr_shard *sh, struct kr_store *s);
void kr_shard_free(kr_shard *sh);
kr_cstat *kr_shard_cst(kr_shard *sh, uint32_t slot);
int kr_shard_ghost_has(kr_shard *sh, uint64_t h);
/* 1 when exp (0 = never) has passed; refines a coarse `now` if needed. */
int kr_shard_expired(kr_shard *sh, uint64_t exp);
/* 1 (and the item deleted and counted) when the item in index slot pos has
 * expired. It parses the item again rather than take the caller's kr_item,
 * whose address would then escape and keep it out of registers: passed,
 * store_speed's 90/10 ratio was 1.37-1.42x against 1.52-1.61x (alternated). */
int kr_shard_drop_if_expired(kr_shard *sh, uint32_t pos);
/* Makes room (evicting if over budget) for one item of `size` bytes in queue
 * q and one more index slot; *dst is where kr_shard_append must write it. No
 * eviction happens after it until the call ends, so finds stay valid. */
int kr_shard_reserve(kr_shard *sh, int q, size_t size, kr_seg **dst);
/* Writes an item into dst (reserved) and returns its location. */
uint64_t kr_shard_append(kr_shard *sh, kr_seg *dst, uint64_t cid,
                         const void *key, size_t klen, const void *val,
                         size_t vlen, uint64_t exp);
void kr_shard_insert(kr_shard *sh, uint64_t h, uint64_t loc);
/* Points slot pos at loc with frequency freq. */
void kr_shard_replace(kr_shard *sh, uint32_t pos, uint64_t loc, unsigned freq);
/* The item stays findable no longer: its bytes become dead. */
void kr_shard_kill(kr_shard *sh, kr_item *it);
void kr_shard_delete(kr_shard *sh, uint32_t pos, kr_item *it);
void kr_shard_set_exp(kr_shard *sh, kr_item *it, uint64_t exp);
/* Rewrites the item's value in place (same length). */
static inline void kr_shard_write_val(kr_item *it, const void *val)
{
  if (it->vlen)
    memcpy(it->val, val, it->vlen);
}
void kr_shard_discard(kr_shard *sh, kr_seg *dst);
/* Work deferred to the end of a call: compaction of a mostly dead segment. */
void kr_shard_maintain(kr_shard *sh);
size_t kr_shard_sweep(kr_shard *sh, size_t budget);

/* The cache's counters in this shard; the table grows out of line. */
static inline kr_cstat *kr_shard_cst_fast(kr_shard *sh, uint32_t slot)
{
  return slot < sh->ncst ? &sh->cst[slot] : kr_shard_cst(sh, slot);
}

/* Under the lock: 1 and *pos, *it when a live item matches; an expired
 * match is dropped. Only an expiry within the clock's slack (or past) leaves
 * the inline path. */
static inline int kr_shard_find(kr_shard *sh, uint64_t h, uint64_t cid, const void *key,
                                size_t klen, uint32_t *pos, kr_item *it)
{
  uint64_t fp = h >> FP_SHIFT;
  uint32_t cap = sh->cap, i = home(fp, cap);
  for (;;) {
    uint64_t s = pm_ld(&sh->tab[i]);
    if (!s)
      return 0;
    if ((s >> FP_SHIFT) == fp) {
      item_parse(loc_ptr(sh, s & LOC_MASK), (uint32_t)(s >> 16) & IDX_MAX, it);
      if (it->cid == cid && it->klen == klen && key_eq(it->key, key, klen)) {
        if (it->exp - 1 < sh->now + sh->slack && kr_shard_drop_if_expired(sh, i))
          return 0; /* exp - 1: 0 (never) wraps to the largest value */
        *pos = i;
        return 1;
      }
    }
    if (++i == cap)
      i = 0;
  }
}

/* The hash seeds of the cache in `slot`: the store's random key and the
 * slot, so that one key hashes differently in each cache. */
static inline void kr_seeds(const struct kr_store *s, uint32_t slot, uint64_t seed[2])
{
  seed[0] = s->hash_key ^ ((uint64_t)slot << 40);
  seed[1] = kr_mix(seed[0], 0x9e3779b97f4a7c15ull);
}

/* Prefetches the index slot where h's search starts; no lock needed (tab
 * and cap may not match each other: a prefetch never faults). */
static inline void kr_shard_prefetch(kr_shard *sh, uint64_t h)
{
  const uint64_t *t = kr_span_ptr(__atomic_load_n(&sh->tabw, __ATOMIC_RELAXED));
  uint32_t cap = __atomic_load_n(&sh->cap, __ATOMIC_RELAXED);
  __builtin_prefetch(t + home(h >> FP_SHIFT, cap));
}

static inline int kr_cid_live(struct kr_store *s, uint64_t cid)
{
  return atomic_load_explicit(&s->slot_gen[kr_cid_slot(cid)], memory_order_relaxed) ==
         kr_cid_gen(cid);
}

/* --- store.c: one locked item call ------------------------------------------- */

/* The key's shard, locked, with the call's clock. */
typedef struct kr_op {
  kr_shard *sh;
  uint64_t h;
  uint64_t cid;
} kr_op;

/* CLOCK_MONOTONIC_COARSE in ms (see coarse_slack_ms, store.c). Inline: a
 * get reads it. */
static inline uint64_t kr_coarse_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Locks h's shard for cache c: 0, or KURA_ENOTFOUND (deleted; not locked).
 * Inline, as what follows (see "item bytes and index slots"). */
static inline __attribute__((always_inline)) int kr_op_begin_hashed(kr_cache *c, uint64_t h,
                                                                    uint64_t now, uint64_t slack,
                                                                    kr_op *o)
{
  o->h = h;
  o->sh = &c->store->shards[h & (KR_NSHARDS - 1)];
  kr_shard_lock(o->sh);
  o->sh->now = now;
  o->sh->slack = slack;
  uint32_t gen = atomic_load_explicit(&c->gen, memory_order_relaxed);
  if (!gen) {
    kr_shard_unlock(o->sh);
    return KURA_ENOTFOUND;
  }
  o->cid = kr_cid(gen, c->slot);
  return 0;
}

/* Deferred work, then unlocks; returns r. */
static inline int kr_op_end(kr_op *o, int r)
{
  if (o->sh->pending)
    kr_shard_maintain(o->sh);
  kr_shard_unlock(o->sh);
  return r;
}

/* The call's clock: exact for calls that compute expiries or remaining
 * TTLs; reads may take the coarse clock (see kr_shard_expired). */
static inline uint64_t kr_op_clock(kr_store *s, int exact, uint64_t *slack)
{
  *slack = exact ? 0 : s->coarse_ms;
  return *slack ? kr_coarse_now() : s->clock(s->clock_ud);
}

/* The index slot is prefetched before the clock is read and the lock taken,
 * so that its cache miss overlaps both. Inline (see above): called,
 * store_speed's 90/10 ratio was 1.37-1.41x against 1.52-1.60x inline. */
static inline __attribute__((always_inline)) int kr_op_begin(kr_cache *c, const void *key,
                                                             size_t klen, int exact, kr_op *o)
{
  kr_store *s = c->store;
  uint64_t h = kr_hash(key, klen, c->seed), slack;
  kr_shard_prefetch(&s->shards[h & (KR_NSHARDS - 1)], h);
  uint64_t now = kr_op_clock(s, exact, &slack);
  return kr_op_begin_hashed(c, h, now, slack, o);
}

/* --- store_read.c: gets without the lock's exclusion --------------------------- */

/* Adds the stripes' hits and misses (of cache `slot`, or of all when slot
 * is KR_MAX_CACHES). */
void kr_stripes_sum(kr_store *s, uint32_t slot, kr_store_stats *out);
/* A slot's hits and misses start again from 0. */
void kr_stripes_reset(kr_store *s, uint32_t slot);

#endif
