/* The embedded store's pool of full-size segments. Segments of exactly
 * KR_SEG_MAX bytes come from 2 MiB chunks mapped with MADV_HUGEPAGE, so that
 * random reads over a large store miss the TLB far less (a miss costs a page
 * walk, two-dimensional under virtualization). Freed segments go back to the
 * store's pool for any shard; chunks are unmapped with the store.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/store/store_int.h"

#define CHUNK (2u * 1024u * 1024u)

/* A 2 MiB-aligned chunk: map twice the size, trim the ends. */
static uint8_t *chunk_map(void)
{
  size_t len = 2 * (size_t)CHUNK;
  uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  uintptr_t a = ((uintptr_t)p + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1);
  uint8_t *q = (uint8_t *)a;
  if (q > p)
    munmap(p, (size_t)(q - p));
  if (q + CHUNK < p + len)
    munmap(q + CHUNK, (size_t)(p + len - (q + CHUNK)));
#ifdef MADV_HUGEPAGE
  madvise(q, CHUNK, MADV_HUGEPAGE);
#endif
  return q;
}

static int push(void ***a, size_t *n, size_t *cap, void *v)
{
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    void **b = realloc(*a, nc * sizeof *b);
    if (!b)
      return -1;
    *a = b;
    *cap = nc;
  }
  (*a)[(*n)++] = v;
  return 0;
}

static int pool_grow(kr_pool *p)
{
  uint8_t *c = chunk_map();
  if (!c)
    return -1;
  if (push(&p->chunks, &p->nchunks, &p->capchunks, c) < 0) {
    munmap(c, CHUNK);
    return -1;
  }
  for (size_t off = CHUNK; off >= KR_SEG_MAX; off -= KR_SEG_MAX)
    if (push(&p->free, &p->nfree, &p->capfree, c + off - KR_SEG_MAX) < 0)
      return -1;
  return 0;
}

void *kr_pool_get(kr_pool *p)
{
  pthread_mutex_lock(&p->mu);
  void *v = NULL;
  if (p->nfree || pool_grow(p) == 0)
    v = p->nfree ? p->free[--p->nfree] : NULL;
  pthread_mutex_unlock(&p->mu);
  return v;
}

void kr_pool_put(kr_pool *p, void *seg)
{
  pthread_mutex_lock(&p->mu);
  /* push cannot fail here: free has room for every slot ever mapped. */
  push(&p->free, &p->nfree, &p->capfree, seg);
  pthread_mutex_unlock(&p->mu);
}

void kr_pool_init(kr_pool *p)
{
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
}

void kr_pool_destroy(kr_pool *p)
{
  for (size_t i = 0; i < p->nchunks; i++)
    munmap(p->chunks[i], CHUNK);
  free(p->chunks);
  free(p->free);
  pthread_mutex_destroy(&p->mu);
}
