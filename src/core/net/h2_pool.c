/* A pool for nghttp2's allocations in the HTTP server (nghttp2_mem): free
 * lists by 16-byte size class for blocks of up to KR_H2_POOL_MAX bytes, at
 * most KR_H2_POOL_BUDGET bytes kept; larger blocks go to malloc and back.
 *
 * Why: a connection with 50 calls in flight frees its 50 streams, their
 * frames and their header buffers in a burst, and malloc's per-thread
 * cache keeps only 7 blocks of a size; the rest go through its bins. A
 * block carries its capacity in a 16-byte header (nghttp2's free does not
 * say the size), which keeps the alignment malloc gives. Under the
 * sanitizers every block is malloc's own.
 */
#include <stdlib.h>
#include <string.h>

#include "core/net/h2_pool.h"

#define HDR 16

#ifdef KURA_SANITIZED
#define POOLED 0
#else
#define POOLED 1
#endif

/* The header holds the block's capacity: a multiple of 16 up to
 * KR_H2_POOL_MAX for the pooled sizes, the size asked for beyond. */
static size_t capacity(size_t n)
{
  return n <= KR_H2_POOL_MAX ? (n + 15) & ~(size_t)15 : n;
}

static void *pool_malloc(size_t n, void *ud)
{
  kr_h2_pool *p = ud;
  size_t cap = capacity(n), c = cap >> 4;
  uint8_t *b;
  if (POOLED && cap <= KR_H2_POOL_MAX && p->lists[c]) {
    b = p->lists[c];
    p->lists[c] = *(void **)(b + HDR);
    p->bytes -= cap;
  } else if (!(b = malloc(HDR + (cap ? cap : 16)))) {
    return NULL;
  }
  *(size_t *)b = cap;
  return b + HDR;
}

static void pool_free(void *ptr, void *ud)
{
  kr_h2_pool *p = ud;
  if (!ptr)
    return;
  uint8_t *b = (uint8_t *)ptr - HDR;
  size_t cap = *(size_t *)b;
  if (!POOLED || cap > KR_H2_POOL_MAX || cap == 0 || p->bytes + cap > KR_H2_POOL_BUDGET) {
    free(b);
    return;
  }
  *(void **)ptr = p->lists[cap >> 4];
  p->lists[cap >> 4] = b;
  p->bytes += cap;
}

static void *pool_calloc(size_t nmemb, size_t size, void *ud)
{
  if (size && nmemb > SIZE_MAX / size)
    return NULL;
  void *ptr = pool_malloc(nmemb * size, ud);
  if (ptr)
    memset(ptr, 0, nmemb * size);
  return ptr;
}

static void *pool_realloc(void *ptr, size_t n, void *ud)
{
  if (!ptr)
    return pool_malloc(n, ud);
  size_t have = *(size_t *)((uint8_t *)ptr - HDR);
  if (n <= have)
    return ptr;
  void *np = pool_malloc(n, ud);
  if (!np)
    return NULL;
  memcpy(np, ptr, have);
  pool_free(ptr, ud);
  return np;
}

void kr_h2_pool_init(kr_h2_pool *p)
{
  memset(p, 0, sizeof *p);
  p->mem.mem_user_data = p;
  p->mem.malloc = pool_malloc;
  p->mem.free = pool_free;
  p->mem.calloc = pool_calloc;
  p->mem.realloc = pool_realloc;
}

void kr_h2_pool_release(kr_h2_pool *p)
{
  for (size_t c = 0; c < KR_H2_POOL_CLASSES; c++) {
    while (p->lists[c]) {
      uint8_t *b = p->lists[c];
      p->lists[c] = *(void **)(b + HDR);
      free(b);
    }
  }
  p->bytes = 0;
}
