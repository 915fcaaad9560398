/* The embedded store: process-wide named stores, each holding named caches
 * of binary-safe items with per-item TTLs, a byte budget with eviction, and
 * atomic increments and conditional sets. Thread-safe: writes lock one shard
 * of the store, gets take no lock (a get that overlaps a write of its shard
 * reads again), so threads reading one store do not wait on each other.
 * Knows nothing of Lua or of the loop (the owner drives kr_store_sweep from a
 * timer).
 *
 * Return values: negative KURA_E* codes are errors (kura_client.h). Item calls that
 * have an outcome return one of enum kura_outcome (>= 0).
 *
 * Caches are reached through counted handles (kr_cache) so that the hot path
 * does not look the name up on every call. A handle stays valid after its
 * cache is deleted (item calls then return KURA_ENOTFOUND); a cache created
 * again under the same name is a new cache, reached through a new handle.
 */
#ifndef KR_STORE_H
#define KR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "kura_client.h"

typedef struct kr_store kr_store;
typedef struct kr_cache kr_cache;

/* Size limits (Momento's). Beyond them calls return KURA_EINVAL. */
#define KR_STORE_MAX_KEY (64u * 1024u)           /* key bytes */
#define KR_STORE_MAX_ITEM (5u * 1024u * 1024u)   /* key + value bytes */
#define KR_STORE_MAX_CACHE_NAME 255u

/* ttl_ms of 0 means "never expires" (for hosts; the client always sends one). */
#define KR_TTL_NONE 0

/* Outcomes, conditions of sets and TTL modes: kura_outcome, kura_set_cond
 * and kura_ttl_mode of kura_client.h. */

/* Milliseconds from an arbitrary monotonic origin. */
typedef uint64_t (*kr_clock_fn)(void *ud);

typedef struct kr_store_stats {
  uint64_t items;       /* live items (expired ones not yet swept may count) */
  uint64_t bytes;       /* bytes accounted: keys, values and all overhead */
  uint64_t hits;        /* of gets; counted per thread, summed when read */
  uint64_t misses;
  uint64_t evictions;   /* items removed to stay within max_memory */
  uint64_t expirations; /* items removed because their TTL ran out */
  uint64_t index_bytes; /* of the index tables (whole store only; in bytes) */
} kr_store_stats;

/* --- stores ---------------------------------------------------------------- */

/* The process-wide store called `name`: every caller, from any thread, gets
 * the same store. Counted: each successful open needs one kr_store_release.
 * The last release frees it. */
int kr_store_open(const char *name, kr_store **out);
/* A private store outside the registry (tests, benchmarks). Release frees. */
int kr_store_new(kr_store **out);
void kr_store_release(kr_store *s);

/* Byte budget for the whole store; 0 = unbounded. Lowering it evicts at the
 * next writes. */
void kr_store_set_max_memory(kr_store *s, uint64_t bytes);
uint64_t kr_store_max_memory(kr_store *s);
/* Replace the clock (tests); NULL restores the monotonic clock. Set it before
 * other threads use the store. With the default clock, reads (get, exists,
 * delete, batch get) use CLOCK_MONOTONIC_COARSE and re-check with
 * CLOCK_MONOTONIC only for an item within a tick of its expiry; writes and
 * TTL calls use CLOCK_MONOTONIC. */
void kr_store_set_clock(kr_store *s, kr_clock_fn fn, void *ud);
/* Store-wide totals over all caches. */
void kr_store_stats_get(kr_store *s, kr_store_stats *out);

/* Remove expired items, doing at most `budget` units of work (roughly items
 * examined). Returns the number of items removed. Never scans the whole store
 * in one call. Safe to call from any thread. */
size_t kr_store_sweep(kr_store *s, size_t budget);

/* --- caches ---------------------------------------------------------------- */

/* 0 created; KURA_EEXIST if it exists; KURA_EINVAL for a bad name (empty,
 * whitespace only, a NUL byte, longer than KR_STORE_MAX_CACHE_NAME); KURA_ELIMIT past
 * 4096 caches in one store. */
int kr_store_create_cache(kr_store *s, const char *name, size_t len);
/* 0 deleted (its items are freed, incrementally if large); KURA_ENOTFOUND. */
int kr_store_delete_cache(kr_store *s, const char *name, size_t len);
/* 0 emptied; KURA_ENOTFOUND. */
int kr_store_flush_cache(kr_store *s, const char *name, size_t len);
/* Names of all caches sorted bytewise: *names is one malloc'd array of
 * NUL-terminated strings (free with kr_store_free_names). */
int kr_store_list_caches(kr_store *s, char ***names, size_t *count);
void kr_store_free_names(char **names, size_t count);
int kr_store_cache_stats(kr_store *s, const char *name, size_t len, kr_store_stats *out);

/* A counted handle to the cache `name`; KURA_ENOTFOUND if there is none. */
int kr_store_cache(kr_store *s, const char *name, size_t len, kr_cache **out);
void kr_cache_release(kr_cache *c);
/* 1 while the cache behind the handle exists (not deleted). */
int kr_cache_alive(const kr_cache *c);

/* --- items ----------------------------------------------------------------- */
/* Key and value sizes are checked (KURA_EINVAL); a write of one item larger
 * than max_memory gives KURA_ELIMIT; a deleted cache gives KURA_ENOTFOUND. */

/* KURA_HIT with the value copied into buf (cap bytes) and *vlen set; KURA_MISS;
 * KURA_ERANGE when cap is too small (*vlen is then the size needed and the
 * hit is not counted twice when the caller retries). The bytes of buf past
 * *vlen may be overwritten (the copy goes in 16-byte blocks). */
int kr_store_get(kr_cache *c, const void *key, size_t klen,
                 void *buf, size_t cap, size_t *vlen);
/* KURA_HIT (stored). */
int kr_store_set(kr_cache *c, const void *key, size_t klen,
                 const void *val, size_t vlen, uint64_t ttl_ms);
/* KURA_HIT stored, KURA_SKIPPED not stored. cmp is used by the EQUAL conditions. */
int kr_store_set_if(kr_cache *c, enum kura_set_cond cond,
                    const void *key, size_t klen, const void *val, size_t vlen,
                    const void *cmp, size_t cmplen, uint64_t ttl_ms);
/* KURA_HIT deleted, KURA_MISS was absent. */
int kr_store_delete(kr_cache *c, const void *key, size_t klen);
/* KURA_HIT present, KURA_MISS absent. */
int kr_store_exists(kr_cache *c, const void *key, size_t klen);
/* Adds amount to the base-10 int64 value (absent = 0; ttl_ms applies when
 * this call creates the item; an existing item keeps its TTL). *out is the
 * new value. KURA_EPRECOND for a non-canonical integer or an overflow.
 * Canonical (as Redis's string2ll): optional '-', then digits with no
 * leading zero ("0" itself is fine; "007", "-0", "+1", " 1" are not).
 * Returns KURA_HIT on success. */
int kr_store_increment(kr_cache *c, const void *key, size_t klen,
                       int64_t amount, uint64_t ttl_ms, int64_t *out);
/* KURA_HIT with *remaining_ms (UINT64_MAX if it never expires), or KURA_MISS. */
int kr_store_ttl_get(kr_cache *c, const void *key, size_t klen, uint64_t *remaining_ms);
/* KURA_HIT changed, KURA_SKIPPED not changed (INCREASE/DECREASE rule), KURA_MISS. */
int kr_store_ttl_set(kr_cache *c, const void *key, size_t klen,
                     uint64_t ttl_ms, enum kura_ttl_mode mode);

/* Batched get: looks up n keys (prefetching index slots) and calls fn once per
 * key, in order, with the value or NULL on a miss. fn runs without any store
 * lock held; `val` is valid only during the call. Returns 0 or KURA_E*. */
typedef void (*kr_store_batch_fn)(void *ud, size_t i, const void *val, size_t vlen);
int kr_store_get_batch(kr_cache *c, size_t n, const void *const *keys,
                       const size_t *klens, kr_store_batch_fn fn, void *ud);

/* Batched set: stores n items (ttls_ms NULL: none expire). Sizes are all
 * checked before anything is stored; then items are stored in order and the
 * first failure is returned (earlier items stay stored). 0 or KURA_E*. */
int kr_store_set_batch(kr_cache *c, size_t n, const void *const *keys,
                       const size_t *klens, const void *const *vals,
                       const size_t *vlens, const uint64_t *ttls_ms);

#endif
