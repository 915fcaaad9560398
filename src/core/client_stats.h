/* What a client counts of its own calls, per cache: calls, gets' hits and
 * misses, errors by code. Kept by the client (client.c) for every backend;
 * the backend's own figures (items, bytes, evictions, expirations) come
 * from kr_backend_ops.stats where the backend knows them.
 *
 * The table is bounded: past KR_STATS_MAX_CACHES names (a script naming
 * caches that do not exist, in a loop), further names are counted in the
 * client's totals only. */
#ifndef KR_CLIENT_STATS_H
#define KR_CLIENT_STATS_H

#include <stddef.h>
#include <stdint.h>

#define KR_STATS_NERR 18        /* KURA_E* codes are -1 .. -17: errors[-err] */
#define KR_STATS_MAX_CACHES 4096

typedef struct kr_counts {
  uint64_t calls;
  uint64_t hits;                /* get: a hit; get_batch: each key found */
  uint64_t misses;
  uint64_t errors[KR_STATS_NERR];
} kr_counts;

typedef struct kr_stats_entry {
  kr_counts counts;
  uint32_t hash;
  size_t len;
  char name[]; /* len bytes */
} kr_stats_entry;

/* Open for the inline lookup below; the rest is client_stats.c's. */
typedef struct kr_stats {
  kr_stats_entry **slots;
  size_t nslots, n;  /* nslots: 0 or a power of two; load at most 1/2 */
  kr_stats_entry *last;
  kr_counts other;
} kr_stats;

kr_stats *kr_stats_new(void);
void kr_stats_free(kr_stats *s);
/* kr_stats_cache when the name is not the previous call's. */
kr_counts *kr_stats_cache_lookup(kr_stats *s, const char *name, size_t len);

/* Equal names, compared in words: cache names are short, and a call to
 * memcmp costs more than the comparison (this runs on every call). */
static inline int kr_stats_same(const char *a, const char *b, size_t n)
{
  for (; n >= 8; a += 8, b += 8, n -= 8) {
    uint64_t x, y;
    __builtin_memcpy(&x, a, 8);
    __builtin_memcpy(&y, b, 8);
    if (x != y)
      return 0;
  }
  for (; n; a++, b++, n--)
    if (*a != *b)
      return 0;
  return 1;
}

/* The counts of the cache `name`, created on first use; NULL when the table
 * is full or out of memory (the caller then counts in the totals only). */
static inline kr_counts *kr_stats_cache(kr_stats *s, const char *name, size_t len)
{
  kr_stats_entry *e = s->last;
  if (e && e->len == len && kr_stats_same(e->name, name, len))
    return &e->counts;
  return kr_stats_cache_lookup(s, name, len);
}
/* Calls that name no cache (list_caches) or a cache past the bound: they
 * count in the totals only. */
kr_counts *kr_stats_other(kr_stats *s);
/* The client's totals: every cache's counts and the others', summed. */
void kr_stats_total(const kr_stats *s, kr_counts *out);
/* The counts of `name` if the client has counted any, else NULL. */
const kr_counts *kr_stats_find(const kr_stats *s, const char *name, size_t len);
/* Calls fn for each cache counted (in no particular order). */
void kr_stats_each(const kr_stats *s, void (*fn)(void *ud, const char *name, size_t len,
                                                 const kr_counts *k), void *ud);

#endif
