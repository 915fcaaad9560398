/* The embedded store's memory pools: segment data, index tables, hints.
 *
 * Readers look items up without the shard lock (store_read.c, "optimistic
 * reads"): a reader may still hold the address of a segment or an index
 * table that a writer has just freed, and reads it before it learns, from
 * the shard's sequence counter, that what it read is stale. So this memory
 * is never handed back to the system while the store lives: a freed block
 * returns to its pool and stays mapped and readable. A large freed index
 * table is emptied with MADV_DONTNEED (its pages read as zeros and cost no
 * RSS) and kept for a later table.
 *
 * Blocks are powers of two from 256 B to 64 KiB, carved from 64 KiB blocks
 * that come from 2 MiB chunks; the segment pool advises its chunks (but
 * the first) MADV_HUGEPAGE, so that random reads over a large store miss
 * the TLB far less. Larger segment requests are mappings of their own, split into
 * 64 KiB blocks when freed. Index and hint pools give what is above a page
 * in whole pages, carved from 2 MiB mappings (a table's size follows the
 * shard's, and a power of two would waste up to half). Pools never trade
 * memory: readers write to hints, and a stale one must only ever meet
 * another hint.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/store/store_int.h"

#define CHUNK (2u * 1024u * 1024u)
#define BLOCK ((size_t)1 << KR_POOL_MAXCLS)

static int push(kr_ptrvec *v, void *p, size_t size)
{
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 64;
    kr_ptrent *a = realloc(v->a, nc * sizeof *a);
    if (!a)
      return -1;
    v->a = a;
    v->cap = nc;
  }
  v->a[v->n++] = (kr_ptrent){p, size};
  return 0;
}

/* A mapping of len bytes (a multiple of the page), recorded for destroy. */
static uint8_t *map_new(kr_pool *p, size_t len)
{
  uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  if (push(&p->maps, m, len) < 0) {
    munmap(m, len);
    return NULL;
  }
  return m;
}

/* A 2 MiB-aligned chunk (map twice the size, trim the ends), cut into
 * 64 KiB blocks. */
static int chunk_add(kr_pool *p)
{
  size_t len = 2 * (size_t)CHUNK;
  uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return -1;
  uint8_t *q = (uint8_t *)(((uintptr_t)m + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
  if (q > m)
    munmap(m, (size_t)(q - m));
  if (q + CHUNK < m + len)
    munmap(q + CHUNK, (size_t)(m + len - (q + CHUNK)));
  if (push(&p->maps, q, CHUNK) < 0) {
    munmap(q, CHUNK);
    return -1;
  }
#ifdef MADV_HUGEPAGE
  /* Not the first: a huge page is all resident at its first touch, and a
   * store holding a few items should not cost 2 MiB. */
  if (p->huge && p->nchunks++)
    madvise(q, CHUNK, MADV_HUGEPAGE);
#endif
  for (size_t off = CHUNK; off >= BLOCK; off -= BLOCK)
    if (push(&p->free[KR_POOL_MAXCLS], q + off - BLOCK, BLOCK) < 0)
      return -1;
  return 0;
}

static unsigned class_of(size_t size)
{
  unsigned k = KR_POOL_MINCLS;
  while (((size_t)1 << k) < size)
    k++;
  return k;
}

/* A block of class k; a larger free block is cut in two as often as needed. */
static void *small_get(kr_pool *p, unsigned k)
{
  kr_ptrvec *f = &p->free[k];
  if (f->n)
    return f->a[--f->n].p;
  if (k == KR_POOL_MAXCLS)
    return chunk_add(p) == 0 ? small_get(p, k) : NULL;
  uint8_t *b = small_get(p, k + 1);
  if (b && push(f, b + ((size_t)1 << k), (size_t)1 << k) < 0) {
    push(&p->free[k + 1], b, (size_t)2 << k); /* room exists: it came from there */
    return NULL;
  }
  return b;
}

/* len bytes (a multiple of the page) for an index pool, carved from the
 * current mapping, or from a new one of 2 MiB (or len). */
static void *large_carve(kr_pool *p, size_t len)
{
  if (len > p->bump_left) {
    size_t mlen = len > CHUNK ? len : CHUNK;
    uint8_t *m = map_new(p, mlen);
    if (!m)
      return NULL;
    p->bump = m;
    p->bump_left = mlen;
  }
  void *r = p->bump;
  p->bump += len;
  p->bump_left -= len;
  return r;
}

/* A freed large index table of at least len bytes (and not much more). */
static void *large_reuse(kr_pool *p, size_t len, size_t *got)
{
  for (size_t i = 0; i < p->large.n; i++) {
    kr_ptrent e = p->large.a[i];
    if (e.size >= len && e.size <= 2 * len) {
      p->large.a[i] = p->large.a[--p->large.n];
      *got = e.size;
      return e.p;
    }
  }
  return NULL;
}

/* Up to 64 KiB a power of two (a segment pool: always), else whole pages
 * (an index pool) or 64 KiB blocks (a segment pool). */
void *kr_pool_alloc(kr_pool *p, size_t size, size_t *got)
{
  void *r = NULL;
  pthread_mutex_lock(&p->mu);
  if (size <= BLOCK && (p->huge || size <= p->page)) {
    unsigned k = class_of(size);
    r = small_get(p, k);
    *got = (size_t)1 << k;
  } else if (p->huge) {
    size_t len = (size + BLOCK - 1) & ~(BLOCK - 1);
    r = map_new(p, len);
    *got = len;
  } else {
    size_t len = (size + p->page - 1) & ~(p->page - 1);
    if (!(r = large_reuse(p, len, got))) {
      r = large_carve(p, len);
      *got = len;
    }
  }
  pthread_mutex_unlock(&p->mu);
  return r;
}

/* When push fails (realloc did), the block stays mapped, unused, until the
 * store is freed. */
void kr_pool_free(kr_pool *p, void *ptr, size_t size)
{
  pthread_mutex_lock(&p->mu);
  if (size <= BLOCK && (p->huge || size <= p->page)) {
    push(&p->free[class_of(size)], ptr, size);
  } else if (p->huge) {
    for (size_t off = 0; off < size; off += BLOCK)
      push(&p->free[KR_POOL_MAXCLS], (uint8_t *)ptr + off, BLOCK);
  } else {
    /* An index pool's freed tables are rarely wanted again (every shard
     * grows past them together): their pages go back to the system. */
    madvise(ptr, size, MADV_DONTNEED);
    push(&p->large, ptr, size);
  }
  pthread_mutex_unlock(&p->mu);
}

void kr_pool_init(kr_pool *p, int huge)
{
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  p->huge = huge;
  long pg = sysconf(_SC_PAGESIZE);
  p->page = pg > 0 ? (size_t)pg : 4096;
}

void kr_pool_destroy(kr_pool *p)
{
  for (size_t i = 0; i < p->maps.n; i++)
    munmap(p->maps.a[i].p, p->maps.a[i].size);
  free(p->maps.a);
  free(p->large.a);
  for (unsigned k = 0; k <= KR_POOL_MAXCLS; k++)
    free(p->free[k].a);
  pthread_mutex_destroy(&p->mu);
}
