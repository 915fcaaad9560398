/* The client's counts by cache name: an open-addressing table of entries
 * allocated one by one (a kr_counts pointer stays valid while the table
 * grows), and the entry of the previous call kept, since most calls name the
 * cache the previous one named. */
#include "core/client_stats.h"

#include <stdlib.h>
#include <string.h>

typedef kr_stats_entry entry;

static uint32_t name_hash(const char *s, size_t len)
{
  uint32_t h = 2166136261u; /* FNV-1a: names are short */
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static entry **slot_of(entry **slots, size_t nslots, const char *name, size_t len, uint32_t h)
{
  size_t mask = nslots - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    entry *e = slots[i];
    if (!e || (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0))
      return &slots[i];
  }
}

static int grow(kr_stats *s)
{
  size_t n = s->nslots ? s->nslots * 2 : 16;
  entry **slots = calloc(n, sizeof *slots);
  if (!slots)
    return -1;
  for (size_t i = 0; i < s->nslots; i++) {
    entry *e = s->slots[i];
    if (e)
      *slot_of(slots, n, e->name, e->len, e->hash) = e;
  }
  free(s->slots);
  s->slots = slots;
  s->nslots = n;
  return 0;
}

kr_stats *kr_stats_new(void)
{
  return calloc(1, sizeof(kr_stats));
}

void kr_stats_free(kr_stats *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->nslots; i++)
    free(s->slots[i]);
  free(s->slots);
  free(s);
}

static entry *add(kr_stats *s, const char *name, size_t len, uint32_t h)
{
  if (s->n >= KR_STATS_MAX_CACHES || ((s->n + 1) * 2 > s->nslots && grow(s)))
    return NULL;
  entry *e = calloc(1, sizeof *e + len);
  if (!e)
    return NULL;
  e->hash = h;
  e->len = len;
  memcpy(e->name, name, len);
  *slot_of(s->slots, s->nslots, name, len, h) = e;
  s->n++;
  return e;
}

kr_counts *kr_stats_cache_lookup(kr_stats *s, const char *name, size_t len)
{
  uint32_t h = name_hash(name, len);
  entry *e = s->nslots ? *slot_of(s->slots, s->nslots, name, len, h) : NULL;
  if (!e && !(e = add(s, name, len, h)))
    return NULL;
  s->last = e;
  return &e->counts;
}

const kr_counts *kr_stats_find(const kr_stats *s, const char *name, size_t len)
{
  if (!s->nslots)
    return NULL;
  entry *e = *slot_of(s->slots, s->nslots, name, len, name_hash(name, len));
  return e ? &e->counts : NULL;
}

kr_counts *kr_stats_other(kr_stats *s) { return &s->other; }

static void add_counts(kr_counts *to, const kr_counts *k)
{
  to->calls += k->calls;
  to->hits += k->hits;
  to->misses += k->misses;
  for (int i = 0; i < KR_STATS_NERR; i++)
    to->errors[i] += k->errors[i];
}

void kr_stats_total(const kr_stats *s, kr_counts *out)
{
  *out = s->other;
  for (size_t i = 0; i < s->nslots; i++)
    if (s->slots[i])
      add_counts(out, &s->slots[i]->counts);
}

void kr_stats_each(const kr_stats *s, void (*fn)(void *ud, const char *name, size_t len,
                                                 const kr_counts *k), void *ud)
{
  for (size_t i = 0; i < s->nslots; i++)
    if (s->slots[i])
      fn(ud, s->slots[i]->name, s->slots[i]->len, &s->slots[i]->counts);
}
