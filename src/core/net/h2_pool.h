/* A pool for nghttp2's allocations (h2_pool.c): one per HTTP server, used
 * from its loop's thread only. */
#ifndef KR_H2_POOL_H
#define KR_H2_POOL_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

#define KR_H2_POOL_MAX 1024                      /* largest pooled block */
#define KR_H2_POOL_CLASSES (KR_H2_POOL_MAX / 16 + 1)
#define KR_H2_POOL_BUDGET (1u << 20)             /* bytes kept in the lists */

typedef struct kr_h2_pool {
  nghttp2_mem mem;                /* give &pool.mem to nghttp2_session_*_new3 */
  void *lists[KR_H2_POOL_CLASSES];
  size_t bytes;                   /* in the lists */
} kr_h2_pool;

void kr_h2_pool_init(kr_h2_pool *p);
/* Frees what the lists hold (blocks still in use stay valid). */
void kr_h2_pool_release(kr_h2_pool *p);

#endif
